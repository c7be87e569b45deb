//! The Timely dataflow of a job: ingest → window operator → sink.
//!
//! ```text
//!  worker i: ingest(partitions p ≡ i mod workers) ──exchange by key──▶ window ──exchange to 0──▶ sink
//! ```
//!
//! **Time.** The Timely timestamp is stream time (`i64`, epoch ms). The
//! ingest operator of each worker reads its partitions in batches; every
//! record carries its partition's stream time in the data, and a batch is
//! sent at the ingest operator's capability, which it holds at the lowest
//! stream time any of its partitions may still produce. So the frontier seen
//! downstream is the smallest stream time still to come over all partitions,
//! and the global watermark is that frontier minus the delay. Timely
//! timestamps are created per batch round, not per millisecond.
//!
//! **Batches.** Records travel as columnar batches, one per (partition,
//! destination worker) and read round: the ingest splits what it read by key
//! hash, and each batch crosses the exchange as one item.
//!
//! **Order.** The window operator queues batches per partition (a
//! partition's batches arrive in offset order, with non-decreasing stream
//! times) and applies the records the frontier has passed in (stream time,
//! partition, offset) order by merging the queues, driving a [`WindowState`]
//! step by step (see `tidemark_windows::state`).
//! Rows carry a logical time; the sink, on worker 0, writes them once the
//! frontier passes that time, in the canonical order. Output is therefore
//! byte-identical whatever the number of workers or processes, the batch
//! sizes or the timing.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};
use tidemark_sources::{
    DeadLetter, Decoded, Key, PartitionId, PartitionReader, ReadStatus, Source, Value,
};
use tidemark_windows::watermark::StreamTime;
use tidemark_windows::{
    AggKind, Change, ChangeKind, EventTime, MetricValues, Metrics, MetricsAcc, Number, Policy,
    Window, WindowSpec, WindowState,
};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::{source, Operator};
use timely::dataflow::operators::{Capability, Probe};
use timely::dataflow::ProbeHandle;
use timely::dataflow::{Scope, Stream};

use crate::error::{EngineError, Result};
use crate::output::{format_row, BadRecords, Outputs, Writer};
use crate::stats::{Stats, Summary};

/// A decoded record on its way to the window operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its partition's stream time at this record.
    pub stream_time: EventTime,
    /// Partition.
    pub partition: PartitionId,
    /// Offset in the partition.
    pub offset: u64,
    /// Grouping key.
    pub key: Key,
    /// Event time.
    pub time: EventTime,
    /// Value.
    pub value: Number,
}

/// Where a partition starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The next offset to read.
    pub offset: u64,
    /// The partition's stream time before that offset (`None` if no record
    /// was read yet).
    pub stream_time: Option<EventTime>,
}

/// How many Timely workers, in how many processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// `n` worker threads in this process.
    Workers(usize),
    /// Timely's own multi-process mode: `workers` threads in each process,
    /// this one being `process` of the `hosts` (one `host:port` each).
    Cluster {
        /// Worker threads per process.
        workers: usize,
        /// This process's index in `hosts`.
        process: usize,
        /// Every process's address.
        hosts: Vec<String>,
    },
}

/// Window state to start from: a snapshot of the state of all keys, as
/// [`WindowState::snapshot`] takes it; each worker keeps its own keys.
pub type StateSnapshot = tidemark_windows::Snapshot<Key, MetricsAcc, MetricValues>;

/// What a job computes.
#[derive(Clone)]
pub struct EngineConfig {
    /// The windows.
    pub window: WindowSpec,
    /// Delay, allowed lateness and emit mode.
    pub policy: Policy,
    /// The aggregations, in output order.
    pub aggs: Vec<AggKind>,
    /// Records read from a partition per batch.
    pub batch_size: usize,
    /// What to do with records that cannot be decoded.
    pub bad_records: BadRecords,
    /// Where partitions start (partitions not listed start at offset 0).
    pub start: BTreeMap<PartitionId, Position>,
    /// For followed inputs: a partition that has been caught up this long
    /// stops holding the watermark back until it produces records again.
    /// Off by default, since it makes results depend on timing: a record of
    /// a partition that was idle is judged against the watermark the others
    /// advanced meanwhile.
    pub idle_after: Option<Duration>,
    /// Window state to resume from (with `start` positions: the state after
    /// every record before them). Its window spec and policy must be the
    /// job's.
    pub initial_state: Option<Arc<StateSnapshot>>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("window", &self.window)
            .field("policy", &self.policy)
            .field("aggs", &self.aggs)
            .field("batch_size", &self.batch_size)
            .field("bad_records", &self.bad_records)
            .field("start", &self.start)
            .field("idle_after", &self.idle_after)
            .field("initial_state", &self.initial_state.is_some())
            .finish()
    }
}

impl EngineConfig {
    /// A job with `window`, `policy` and `aggs`, default batch size (1024),
    /// skipping bad records, reading every partition from offset 0.
    pub fn new(window: WindowSpec, policy: Policy, aggs: Vec<AggKind>) -> Self {
        EngineConfig {
            window,
            policy,
            aggs,
            batch_size: 1024,
            bad_records: BadRecords::Skip,
            start: BTreeMap::new(),
            idle_after: None,
            initial_state: None,
        }
    }

    /// Checks the window, policy and options.
    pub fn validate(&self) -> Result<()> {
        self.window.validate()?;
        self.policy.validate()?;
        if self.aggs.is_empty() {
            return Err(EngineError::Config(
                "at least one aggregation is needed".into(),
            ));
        }
        if self.batch_size == 0 {
            return Err(EngineError::Config(
                "batch size must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

/// Records of one partition bound for one worker, in offset order, as
/// columns: one exchange item carries a whole batch, and the window operator
/// walks the columns without moving 80-byte rows around.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Batch {
    /// The worker the batch is for.
    dest: u32,
    /// The partition the records come from.
    partition: PartitionId,
    /// The partition's stream time at each record (non-decreasing).
    stream_times: Vec<EventTime>,
    offsets: Vec<u64>,
    keys: Vec<Key>,
    times: Vec<EventTime>,
    values: Vec<Number>,
}

impl Batch {
    fn with_capacity(dest: u32, partition: PartitionId, capacity: usize) -> Self {
        Batch {
            dest,
            partition,
            stream_times: Vec::with_capacity(capacity),
            offsets: Vec::with_capacity(capacity),
            keys: Vec::with_capacity(capacity),
            times: Vec::with_capacity(capacity),
            values: Vec::with_capacity(capacity),
        }
    }

    fn push(
        &mut self,
        stream_time: EventTime,
        offset: u64,
        key: Key,
        time: EventTime,
        value: Number,
    ) {
        self.stream_times.push(stream_time);
        self.offsets.push(offset);
        self.keys.push(key);
        self.times.push(time);
        self.values.push(value);
    }

    /// The record at `i` as an [`Event`].
    fn event(&self, i: usize) -> Event {
        Event {
            stream_time: self.stream_times[i],
            partition: self.partition,
            offset: self.offsets[i],
            key: self.keys[i].clone(),
            time: self.times[i],
            value: self.values[i],
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Ingest {
    Records(Batch),
    Dead { at: EventTime, letter: DeadLetter },
}

/// Batches waiting in order, and how far the first one has been consumed:
/// the window operator keeps one per partition, the sink one per worker.
struct Cursor<B> {
    batches: VecDeque<B>,
    pos: usize,
}

impl<B> Default for Cursor<B> {
    fn default() -> Self {
        Cursor {
            batches: VecDeque::new(),
            pos: 0,
        }
    }
}

/// A batch of items a [`Cursor`] walks through.
trait Items {
    fn len(&self) -> usize;
}

impl<B: Items> Cursor<B> {
    /// The first batch not yet consumed, and the position in it.
    fn front(&self) -> Option<(&B, usize)> {
        self.batches.front().map(|b| (b, self.pos))
    }

    /// Moves past one item, dropping the first batch once it is consumed.
    fn advance(&mut self) {
        self.pos += 1;
        if self.batches.front().is_some_and(|b| self.pos >= b.len()) {
            self.batches.pop_front();
            self.pos = 0;
        }
    }
}

impl Items for Batch {
    fn len(&self) -> usize {
        self.stream_times.len()
    }
}

impl Cursor<Batch> {
    /// The stream time of the next record to apply.
    fn head(&self) -> Option<EventTime> {
        self.front().map(|(b, i)| b.stream_times[i])
    }
}

/// The canonical position of a result row: its change without the value
/// (ordered by `Change::canonical_cmp`).
type RowHead = Change<Key, ()>;

/// The result rows one window operator produced in one activation, in
/// canonical order, already formatted: one exchange item for all of them.
/// A worker's successive batches continue its canonical order, so the sink
/// only merges the workers' streams.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Rows {
    worker: u32,
    heads: Vec<RowHead>,
    /// The rows' lines, concatenated; row `i` ends at `ends[i]` (byte
    /// offsets: one activation's rows can exceed 4 GiB at the end of input).
    text: String,
    ends: Vec<usize>,
}

impl Items for Rows {
    fn len(&self) -> usize {
        self.heads.len()
    }
}

impl Cursor<Rows> {
    /// The next row to write.
    fn head(&self) -> Option<&RowHead> {
        self.front().map(|(b, i)| &b.heads[i])
    }
}

impl Rows {
    fn line(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Emit {
    Rows(Rows),
    Late { event: Event, missed: Vec<Window> },
    Dead { at: EventTime, letter: DeadLetter },
}

/// State shared by the workers of one process.
struct Shared {
    config: EngineConfig,
    source: Arc<dyn Source>,
    partitions: Vec<PartitionId>,
    outputs: Outputs,
    stats: Arc<Stats>,
    error: Mutex<Option<EngineError>>,
    abort: AtomicBool,
}

impl Shared {
    fn fail(&self, error: EngineError) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(error);
        }
        self.abort.store(true, Ordering::SeqCst);
    }
}

fn key_hash(key: &str) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Runs a job to completion and returns its summary.
///
/// `stats` may be read while the job runs (progress bars).
pub fn run(
    source: Arc<dyn Source>,
    config: EngineConfig,
    parallelism: Parallelism,
    outputs: Outputs,
    stats: Arc<Stats>,
) -> Result<Summary> {
    config.validate()?;
    let partitions = source.partitions()?;
    let delay = config.policy.delay;
    let timely_config = match &parallelism {
        Parallelism::Workers(n) if *n <= 1 => timely::Config::thread(),
        Parallelism::Workers(n) => timely::Config::process(*n),
        Parallelism::Cluster {
            workers,
            process,
            hosts,
        } => {
            if *process >= hosts.len() {
                return Err(EngineError::Config(format!(
                    "process {process} is not in the host list of {} processes",
                    hosts.len()
                )));
            }
            timely::Config {
                communication: timely::CommunicationConfig::Cluster {
                    threads: (*workers).max(1),
                    process: *process,
                    addresses: hosts.clone(),
                    report: false,
                    zerocopy: false,
                },
                worker: timely::WorkerConfig::default(),
            }
        }
    };
    let shared = Arc::new(Shared {
        config,
        source,
        partitions,
        outputs,
        stats: Arc::clone(&stats),
        error: Mutex::new(None),
        abort: AtomicBool::new(false),
    });
    let worker_shared = Arc::clone(&shared);
    let guards = timely::execute(timely_config, move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let shared = Arc::clone(&worker_shared);
        worker.dataflow::<EventTime, _, _>(move |scope| {
            let probe = ProbeHandle::new();
            let ingested = ingest(scope, &shared, index, peers, probe.clone());
            let emitted = window(ingested, &shared, index, peers).probe_with(&probe);
            sink(emitted, &shared, index);
        });
    })
    .map_err(EngineError::Runtime)?;
    for result in guards.join() {
        result.map_err(EngineError::Worker)?;
    }
    if let Some(error) = shared.error.lock().ok().and_then(|mut e| e.take()) {
        return Err(error);
    }
    Ok(stats.summary(delay))
}

struct Partition {
    id: PartitionId,
    reader: Box<dyn PartitionReader>,
    stream_time: StreamTime,
    ended: bool,
    /// Since when a followed partition has had nothing new.
    caught_up_since: Option<Instant>,
    /// Released from holding the watermark (see `EngineConfig::idle_after`).
    idle: bool,
}

impl Partition {
    fn hold(&self) -> EventTime {
        self.stream_time.get().unwrap_or(EventTime::MIN)
    }
}

/// How far (in stream time) a worker's ingest may run ahead of what the
/// window operators have completed. Only flow control: it bounds buffering
/// when one worker's partitions are faster, and never changes results.
const MAX_LEAD: EventTime = 1_000;

/// The ingest operator: reads this worker's partitions in batches.
fn ingest<'scope>(
    scope: Scope<'scope, EventTime>,
    shared: &Arc<Shared>,
    index: usize,
    peers: usize,
    probe: ProbeHandle<EventTime>,
) -> Stream<'scope, EventTime, Vec<Ingest>> {
    let shared = Arc::clone(shared);
    source::<_, CapacityContainerBuilder<Vec<Ingest>>, _, _>(scope, "Ingest", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut parts: Vec<Partition> = Vec::new();
        for &id in shared
            .partitions
            .iter()
            .filter(|&&p| p as usize % peers == index)
        {
            let start = shared.config.start.get(&id).copied().unwrap_or_default();
            match shared.source.open(id, start.offset) {
                Ok(reader) => parts.push(Partition {
                    id,
                    reader,
                    stream_time: start
                        .stream_time
                        .map_or_else(StreamTime::new, StreamTime::at),
                    ended: false,
                    caught_up_since: None,
                    idle: false,
                }),
                Err(e) => shared.fail(e.into()),
            }
        }
        Stats::add(&shared.stats.partitions, parts.len() as u64);
        let mut cap: Option<Capability<EventTime>> = Some(cap);
        // The capability's time before the last batch was sent.
        let mut lead_from = EventTime::MIN;
        let mut decoded: Vec<Decoded> = Vec::new();
        let mut batches: Vec<Batch> = Vec::new();
        let mut dead_letters: Vec<Ingest> = Vec::new();
        let batch_size = shared.config.batch_size;
        let fail_on_bad = shared.config.bad_records == BadRecords::Fail;
        let idle_after = shared.config.idle_after;
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            if shared.abort.load(Ordering::Relaxed) {
                cap = None;
                return;
            }
            // Wait while this worker is far ahead of the completed frontier
            // (the worker holding that frontier back is never made to wait).
            // Measured from where the last batch started, so one batch that
            // spans more than the lead (sparse input) never waits for itself.
            let completed = probe.with_frontier(|f| f.first().copied());
            if completed.is_some_and(|done| lead_from > done.saturating_add(MAX_LEAD)) {
                activator.activate_after(Duration::from_micros(200));
                return;
            }
            let (mut records, mut dead) = (0u64, 0u64);
            let mut caught_up = false;
            for part in parts.iter_mut().filter(|p| !p.ended) {
                decoded.clear();
                match part.reader.read(batch_size, &mut decoded) {
                    Ok(ReadStatus::End) => part.ended = true,
                    Ok(ReadStatus::CaughtUp) if decoded.is_empty() => {
                        caught_up = true;
                        let since = *part.caught_up_since.get_or_insert_with(Instant::now);
                        if let Some(after) = idle_after {
                            if !part.idle && since.elapsed() >= after {
                                part.idle = true;
                                Stats::add(&shared.stats.idle_releases, 1);
                            }
                        }
                    }
                    Ok(_) => {
                        part.caught_up_since = None;
                        part.idle = false;
                    }
                    Err(e) => {
                        shared.fail(e.into());
                        part.ended = true;
                    }
                }
                let partition = part.id;
                batches.clear();
                // Room for a fair share of the batch and some skew.
                let capacity =
                    (decoded.len() / peers + decoded.len() / (4 * peers) + 16).min(decoded.len());
                batches.extend(
                    (0..peers).map(|d| Batch::with_capacity(d as u32, partition, capacity)),
                );
                for d in decoded.drain(..) {
                    match d {
                        Ok(r) => {
                            let stream_time = part.stream_time.observe(r.event_time);
                            records += 1;
                            let dest = if peers == 1 {
                                0
                            } else {
                                (key_hash(&r.key) % peers as u64) as usize
                            };
                            let value = match r.value {
                                Value::Int(i) => Number::Int(i),
                                Value::Float(f) => Number::Float(f),
                            };
                            batches[dest].push(stream_time, r.offset, r.key, r.event_time, value);
                        }
                        Err(letter) => {
                            dead += 1;
                            if fail_on_bad {
                                shared.fail(EngineError::BadRecord {
                                    partition: letter.partition,
                                    offset: letter.offset,
                                    reason: letter.reason.clone(),
                                });
                                part.ended = true;
                                break;
                            }
                            let at = part.stream_time.get().unwrap_or(EventTime::MIN);
                            dead_letters.push(Ingest::Dead { at, letter });
                        }
                    }
                }
                let mut session = output.session(&*c);
                for b in batches.drain(..).filter(|b| b.len() > 0) {
                    session.give(Ingest::Records(b));
                }
                session.give_iterator(dead_letters.drain(..));
            }
            Stats::add(&shared.stats.records, records);
            Stats::add(&shared.stats.dead_letters, dead);
            // Hold the capability at the lowest stream time a partition may
            // still send. Idle partitions do not hold it back; when every
            // open partition is idle it stays at the highest stream time seen.
            let open = || parts.iter().filter(|p| !p.ended);
            let hold = open()
                .filter(|p| !p.idle)
                .map(Partition::hold)
                .min()
                .or_else(|| open().map(Partition::hold).max());
            match hold {
                Some(t) => {
                    lead_from = *c.time();
                    if t > *c.time() {
                        c.downgrade(&t);
                    }
                    if caught_up {
                        // Followed input with nothing new: look again shortly.
                        activator.activate_after(Duration::from_millis(10));
                    } else {
                        activator.activate();
                    }
                }
                None => {
                    Stats::add(&shared.stats.partitions_done, parts.len() as u64);
                    cap = None;
                }
            }
        }
    })
}

/// Removes and returns the items whose time the frontier `upto` has passed
/// (all of them once the input is done, `upto == None`).
fn take_ready<T>(
    pending: &mut BTreeMap<EventTime, Vec<T>>,
    upto: Option<EventTime>,
) -> BTreeMap<EventTime, Vec<T>> {
    match upto {
        Some(f) => {
            let rest = pending.split_off(&f);
            std::mem::replace(pending, rest)
        }
        None => std::mem::take(pending),
    }
}

/// The window operator: applies records in event order to the window state.
fn window<'scope>(
    input: Stream<'scope, EventTime, Vec<Ingest>>,
    shared: &Arc<Shared>,
    index: usize,
    peers: usize,
) -> Stream<'scope, EventTime, Vec<Emit>> {
    let shared = Arc::clone(shared);
    let pact = Exchange::new(|item: &Ingest| match item {
        Ingest::Records(b) => u64::from(b.dest),
        Ingest::Dead { letter, .. } => letter.partition as u64,
    });
    input.unary_frontier::<CapacityContainerBuilder<Vec<Emit>>, _, _, _>(
        pact,
        "Window",
        move |cap, _info| {
            let config = &shared.config;
            let metrics = Metrics::new(&config.aggs);
            let built = match &config.initial_state {
                Some(snapshot) => {
                    WindowState::restore(metrics, (**snapshot).clone()).and_then(|mut s| {
                        if (s.spec(), s.policy()) != (config.window, config.policy) {
                            return Err(tidemark_windows::WindowError::SnapshotMismatch);
                        }
                        // This worker's share: the keys the exchange routes here.
                        s.retain_keys(|k| key_hash(k) % peers as u64 == index as u64);
                        Ok(s)
                    })
                }
                None => WindowState::try_new(config.window, config.policy, metrics),
            };
            let mut state: Option<WindowState<Key, Metrics>> = match built {
                Ok(s) => Some(s),
                Err(e) => {
                    shared.fail(e.into());
                    None
                }
            };
            let mut cap = Some(cap);
            // Batches by partition, in offset order: they are applied in
            // (stream time, partition, offset) order by merging the queues.
            let mut queues: BTreeMap<PartitionId, Cursor<Batch>> = BTreeMap::new();
            let mut changes: Vec<Change<Key, MetricValues>> = Vec::new();
            let mut emitted: Vec<Emit> = Vec::new();
            let mut missed: Vec<Window> = Vec::new();
            let kinds = config.aggs.clone();
            let shared = Arc::clone(&shared);
            move |(input, frontier), output| {
                input.for_each(|_time, data| {
                    for item in data.drain(..) {
                        match item {
                            Ingest::Records(b) => {
                                queues.entry(b.partition).or_default().batches.push_back(b)
                            }
                            // A dead letter's time is at or above the
                            // capability, so it may go on at once.
                            Ingest::Dead { at, letter } => emitted.push(Emit::Dead { at, letter }),
                        }
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let Some(state) = state.as_mut() else { return };
                let upto = frontier.frontier().first().copied();
                let (mut late_dropped, mut late_applied, mut unassigned) = (0u64, 0u64, 0u64);
                loop {
                    // The next step: the smallest stream time waiting that
                    // the frontier has passed.
                    let step = queues
                        .values()
                        .filter_map(Cursor::<Batch>::head)
                        .filter(|&s| upto.is_none_or(|f| s < f))
                        .min();
                    let Some(s) = step else { break };
                    state.advance(s, &mut changes);
                    for q in queues.values_mut() {
                        while let Some((b, i)) = q.front() {
                            if b.stream_times[i] != s {
                                break;
                            }
                            missed.clear();
                            match state.apply(
                                b.keys[i].clone(),
                                b.times[i],
                                &b.values[i],
                                &mut missed,
                            ) {
                                Ok(applied) => {
                                    if applied.late > 0 {
                                        late_applied += 1;
                                    }
                                    if applied.windows == 0 && applied.missed == 0 {
                                        unassigned += 1;
                                    }
                                    if applied.is_dropped() {
                                        late_dropped += 1;
                                        emitted.push(Emit::Late {
                                            event: b.event(i),
                                            missed: missed.clone(),
                                        });
                                    }
                                }
                                Err(e) => {
                                    unassigned += 1;
                                    emitted.push(Emit::Dead {
                                        at: s,
                                        letter: DeadLetter {
                                            partition: b.partition,
                                            offset: b.offsets[i],
                                            file: None,
                                            line: None,
                                            reason: e.to_string(),
                                            raw: String::new(),
                                        },
                                    });
                                }
                            }
                            q.advance();
                        }
                    }
                    state.end_step(&mut changes);
                }
                match upto {
                    Some(f) => state.advance(f, &mut changes),
                    None => state.finish(&mut changes),
                }
                Stats::add(&shared.stats.late_dropped, late_dropped);
                Stats::add(&shared.stats.late_applied, late_applied);
                Stats::add(&shared.stats.unassigned, unassigned);
                if !changes.is_empty() {
                    let mut rows = Rows {
                        worker: index as u32,
                        heads: Vec::with_capacity(changes.len()),
                        text: String::with_capacity(changes.len() * 80),
                        ends: Vec::with_capacity(changes.len()),
                    };
                    for c in changes.drain(..) {
                        format_row(&c, &kinds, &mut rows.text);
                        rows.ends.push(rows.text.len());
                        rows.heads.push(Change {
                            time: c.time,
                            phase: c.phase,
                            kind: c.kind,
                            key: c.key,
                            window: c.window,
                            value: (),
                        });
                    }
                    emitted.push(Emit::Rows(rows));
                }
                if !emitted.is_empty() {
                    output.session(&*c).give_iterator(emitted.drain(..));
                }
                match upto {
                    Some(f) => {
                        if f > *c.time() {
                            c.downgrade(&f);
                        }
                    }
                    None => cap = None,
                }
            }
        },
    )
}

struct Writers {
    results: Writer,
    late: Writer,
    dead: Writer,
}

/// The sink, on worker 0: writes what the frontier has completed, in the
/// canonical order.
fn sink(emitted: Stream<'_, EventTime, Vec<Emit>>, shared: &Arc<Shared>, index: usize) {
    let shared = Arc::clone(shared);
    let mut writers = None;
    if index == 0 {
        let open = || -> Result<Writers> {
            Ok(Writers {
                results: shared.outputs.results.open("results")?,
                late: shared.outputs.late.open("late records")?,
                dead: shared.outputs.dead_letters.open("dead letters")?,
            })
        };
        match open() {
            Ok(w) => writers = Some(w),
            Err(e) => shared.fail(e),
        }
    }
    // Late records and dead letters by time; rows per worker, in order.
    let mut pending: BTreeMap<EventTime, Vec<Emit>> = BTreeMap::new();
    let mut rows: BTreeMap<u32, Cursor<Rows>> = BTreeMap::new();
    let mut done = false;
    emitted.sink(
        Exchange::new(|_: &Emit| 0u64),
        "Sink",
        move |(input, frontier)| {
            input.for_each(|_time, data| {
                for item in data.drain(..) {
                    match item {
                        Emit::Rows(r) => rows.entry(r.worker).or_default().batches.push_back(r),
                        Emit::Late { ref event, .. } => {
                            pending.entry(event.stream_time).or_default().push(item)
                        }
                        Emit::Dead { at, .. } => pending.entry(at).or_default().push(item),
                    }
                }
            });
            if done {
                return;
            }
            let upto = frontier.frontier().first().copied();
            let ready = take_ready(&mut pending, upto);
            if let Some(w) = writers.as_mut() {
                let result = write_rows(w, &mut rows, upto, &shared.stats)
                    .and_then(|()| write_ready(w, ready));
                if let Err(e) = result {
                    shared.fail(e);
                    writers = None;
                }
            }
            match upto {
                Some(f) => shared.stats.frontier.store(f, Ordering::Relaxed),
                None => {
                    shared
                        .stats
                        .frontier
                        .store(EventTime::MAX, Ordering::Relaxed);
                    if let Some(w) = writers.as_mut() {
                        for r in [w.results.flush(), w.late.flush(), w.dead.flush()] {
                            if let Err(e) = r {
                                shared.fail(e);
                            }
                        }
                    }
                    done = true;
                }
            }
        },
    );
}

/// Writes the rows whose time the frontier `upto` has passed (all once the
/// input is done), merging the workers' ordered streams.
fn write_rows(
    w: &mut Writers,
    queues: &mut BTreeMap<u32, Cursor<Rows>>,
    upto: Option<EventTime>,
    stats: &Stats,
) -> Result<()> {
    let ready = |h: &RowHead| upto.is_none_or(|f| h.time < f);
    let (mut finals, mut corrections) = (0u64, 0u64);
    loop {
        // The smallest ready head over the workers.
        let mut best: Option<(&u32, &RowHead)> = None;
        for (worker, q) in queues.iter() {
            if let Some(h) = q.head().filter(|h| ready(h)) {
                if best.is_none_or(|(_, b)| h.canonical_cmp(b).is_lt()) {
                    best = Some((worker, h));
                }
            }
        }
        let Some((&worker, _)) = best else { break };
        let Some(q) = queues.get_mut(&worker) else {
            break;
        };
        if let Some((b, i)) = q.front() {
            match b.heads[i].kind {
                ChangeKind::Final => finals += 1,
                _ => corrections += 1,
            }
            w.results.line(b.line(i))?;
        }
        q.advance();
    }
    Stats::add(&stats.windows_emitted, finals);
    Stats::add(&stats.corrections, corrections);
    Ok(())
}

/// Writes late records and dead letters, each time's in (partition,
/// offset) order.
fn write_ready(w: &mut Writers, ready: BTreeMap<EventTime, Vec<Emit>>) -> Result<()> {
    for (_, mut items) in ready {
        let mut late = Vec::new();
        let mut dead = Vec::new();
        for item in items.drain(..) {
            match item {
                Emit::Rows(_) => {}
                Emit::Late { event, missed } => late.push((event, missed)),
                Emit::Dead { letter, .. } => dead.push(letter),
            }
        }
        late.sort_by_key(|(e, _)| (e.partition, e.offset));
        dead.sort_by_key(|d| (d.partition, d.offset));
        for (event, missed) in &late {
            w.late.late(event, missed)?;
        }
        for letter in &dead {
            w.dead.dead(letter)?;
        }
    }
    Ok(())
}
