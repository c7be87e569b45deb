//! The ingest operator: reads a worker's partitions in batches and sends
//! each record at its partition's stream time.
//!
//! The operator holds its capability at the lowest stream time any of its
//! partitions may still produce, so the frontier seen downstream is the
//! smallest stream time still to come over all partitions. When a
//! partition reaches its end, every window operator is told
//! ([`Ingest::End`]). When the job must stop early (an error, a stop
//! request), the operator tells every window operator where it stopped
//! ([`Ingest::Stop`], at its capability) before letting the capability go:
//! the input is then complete only below that time, and no open window is
//! fired as if the input had ended.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_sources::{Decoded, PartitionId, ReadStatus, Source};
use tidemark_windows::watermark::StreamTime;
use tidemark_windows::EventTime;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source as timely_source;
use timely::dataflow::operators::Capability;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use super::partition::{future_letter, is_future, report_stopped, Partition};
use super::{key_hash, Control};
use crate::checkpoint::decisions::{Decision, Replay};
use crate::config::{BadRecords, Options, Position};
use crate::counts::Counts;
use crate::error::EngineError;
use crate::event::{Batch, Ingest};
use crate::stats::Stats;

/// How the ingest reads.
#[derive(Clone)]
pub(crate) struct IngestSettings {
    /// The input.
    pub(crate) source: Arc<dyn Source>,
    /// Its partitions; each worker reads those `p ≡ worker (mod workers)`.
    pub(crate) partitions: Vec<PartitionId>,
    pub(crate) start: BTreeMap<PartitionId, Position>,
    /// The engine's options (batch size, bad records, idle release, future
    /// skew).
    pub(crate) options: Options,
    /// Checkpoints every this many offsets of each partition: announce a
    /// cut after each such offset ([`Ingest::Cut`]).
    pub(crate) cut_every_offsets: Option<u64>,
    /// Time decisions to replay instead of taking any.
    pub(crate) replay: Option<Arc<Replay>>,
    /// The frontier of the checkpoint this run resumed from: every record
    /// with a stream time below it was applied before.
    pub(crate) resumed_at: Option<EventTime>,
    /// How many named fields each record carries to the aggregation.
    pub(crate) stride: usize,
    /// What the input is: the stream, or table `i` (whose counts go to
    /// its own report, and which holds no window back by itself).
    pub(crate) table: Option<usize>,
    /// Send every record and marker to this worker's own next operator
    /// (an enrichment, which routes them on) instead of splitting them by
    /// key over the window operators.
    pub(crate) local: bool,
    /// A table: how long after its stream time a stream record is looked
    /// up (an idle table holds its frontier that far past the stream's).
    pub(crate) shift: EventTime,
}

/// How far (in stream time) a worker's ingest may run ahead of what the
/// window operators have completed. Only flow control: it bounds buffering
/// when one worker's partitions are faster, and never changes results.
const MAX_LEAD: EventTime = 1_000;

/// What becomes of the ingest's capability after an activation.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Far ahead of the completed frontier: activate again after this
    /// long, sending nothing.
    Wait(Duration),
    /// Hold the capability at this time (if later), and activate again at
    /// once, or after a while when every partition is caught up.
    Hold(EventTime, Option<Duration>),
    /// Let the capability go: every partition ended, or the ingest
    /// stopped.
    Release,
}

/// The ingest operator's logic for one worker: its partitions, and what
/// it reads from them at each activation ([`IngestOperator::on_activation`]).
struct IngestOperator {
    parts: Vec<Partition>,
    control: Arc<Control>,
    index: usize,
    peers: usize,
    batch_size: usize,
    /// Named fields per record.
    stride: usize,
    fail_on_bad: bool,
    idle_after: Option<Duration>,
    max_future_skew: Option<EventTime>,
    cut_every: Option<u64>,
    replay_stop: Option<EventTime>,
    table: Option<usize>,
    local: bool,
    shift: EventTime,
    /// The capability's time before the last batch was sent.
    lead_from: EventTime,
    decoded: Vec<Decoded>,
    batches: Vec<Batch>,
    extra: Vec<Ingest>,
}

impl IngestOperator {
    /// Opens worker `index`'s partitions (`p ≡ index (mod peers)`) of
    /// `settings` at their start positions.
    fn open(settings: &IngestSettings, control: Arc<Control>, index: usize, peers: usize) -> Self {
        let mine = settings
            .partitions
            .iter()
            .copied()
            .filter(|&p| p as usize % peers == index);
        let mut parts: Vec<Partition> = Vec::new();
        for id in mine {
            let start = settings.start.get(&id).copied().unwrap_or_default();
            match settings.source.open(id, start.offset) {
                Ok(reader) => parts.push(Partition {
                    id,
                    reader,
                    stream_time: start
                        .stream_time
                        .map_or_else(StreamTime::new, StreamTime::at),
                    ended: false,
                    caught_up_since: None,
                    idle: false,
                    jumps: settings
                        .replay
                        .as_ref()
                        .and_then(|r| r.resumes.get(&id))
                        .map(|list| {
                            list.iter()
                                .copied()
                                .filter(|(o, _)| *o >= start.offset)
                                .collect()
                        })
                        .unwrap_or_default(),
                    // A replay makes the recorded jumps only.
                    floor: settings.resumed_at.filter(|_| settings.replay.is_none()),
                }),
                Err(e) => control.fail(e.into()),
            }
        }
        if let Some(t) = settings.table {
            control.stats.tables.update(t, |s| {
                for part in &parts {
                    s.parts.insert(part.id, (part.stream_time.get(), false));
                }
            });
        } else {
            Stats::add(&control.stats.partitions, parts.len() as u64);
            for part in &parts {
                control.stats.report_partition(part.id, |live| {
                    live.next_offset = part.reader.position();
                    live.stream_time = part.stream_time.get();
                });
            }
        }
        IngestOperator {
            parts,
            control,
            index,
            peers,
            batch_size: settings.options.batch_size,
            stride: settings.stride,
            fail_on_bad: settings.options.bad_records == BadRecords::Fail,
            idle_after: settings.options.idle_after,
            max_future_skew: settings.options.max_future_skew,
            cut_every: settings.cut_every_offsets.filter(|&n| n > 0),
            replay_stop: settings.replay.as_ref().and_then(|r| r.stop),
            table: settings.table,
            local: settings.local,
            shift: settings.shift,
            lead_from: EventTime::MIN,
            decoded: Vec::new(),
            batches: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// With the capability at `held` and the window operators' completed
    /// frontier at `completed`: reads a batch from each partition that is
    /// not too far ahead, pushes what goes on (at `held`) to `out`, and
    /// says what becomes of the capability.
    fn on_activation(
        &mut self,
        held: EventTime,
        completed: Option<EventTime>,
        out: &mut Vec<Ingest>,
    ) -> Next {
        if self.control.stopping() {
            return self.stop(held, out);
        }
        // Wait while this worker is far ahead of the completed frontier (the
        // worker holding that frontier back is never made to wait).
        // Measured from where the last batch started, so one batch that
        // spans more than the lead (sparse input) never waits for itself.
        // A table is measured against the stream's readers instead: the
        // windows wait for the table, so waiting for them would wait for
        // itself.
        let completed = match self.table {
            Some(_) => Some(self.control.least_stream_cap().saturating_add(self.shift)),
            None => completed,
        };
        if completed.is_some_and(|done| self.lead_from > done.saturating_add(MAX_LEAD)) {
            return Next::Wait(Duration::from_micros(200));
        }
        let (mut records, mut dead) = (0u64, 0u64);
        let mut caught_up = false;
        // Flow control between this worker's own partitions: one far ahead
        // of the slowest waits for it (what it would read could only be
        // buffered downstream).
        let floor = self
            .parts
            .iter()
            .filter(|p| !p.ended && !p.idle)
            .map(Partition::hold)
            .min()
            .unwrap_or(EventTime::MAX);
        for i in 0..self.parts.len() {
            let part = &self.parts[i];
            if part.ended || part.hold() > floor.saturating_add(MAX_LEAD) {
                continue;
            }
            let (r, d, c) = self.read_partition(i, held, out);
            records += r;
            dead += d;
            caught_up |= c;
        }
        self.control.stats.counts.add(&Counts {
            records: if self.table.is_some() { 0 } else { records },
            dead_letters: dead,
            ..Counts::default()
        });
        if let Some(t) = self.table {
            let parts = &self.parts;
            self.control.stats.tables.update(t, |s| {
                s.records += records;
                s.dead_letters += dead;
                for p in parts {
                    s.parts
                        .insert(p.id, (p.stream_time.get(), p.ended || p.idle));
                }
            });
        }
        if self.control.stopping() {
            // Stopped while reading (a bad record with `fail`, an I/O
            // error): the capability stays where it is until the window
            // operators know; a stopped partition must not let the frontier
            // pass it.
            return self.stop(held, out);
        }
        self.hold(held, caught_up, out)
    }

    /// Reads a batch from partition `i` and pushes its records (split by
    /// destination worker), dead letters, cut and end markers to `out`:
    /// the records and dead letters read, and whether it was caught up.
    fn read_partition(
        &mut self,
        i: usize,
        held: EventTime,
        out: &mut Vec<Ingest>,
    ) -> (u64, u64, bool) {
        // Where records may go, and which workers markers are for.
        let (peers, first) = if self.local {
            (1, self.index as u32)
        } else {
            (self.peers, 0)
        };
        let control = &self.control;
        let part = &mut self.parts[i];
        let decoded = &mut self.decoded;
        let batches = &mut self.batches;
        let extra = &mut self.extra;
        let (mut records, mut dead) = (0u64, 0u64);
        decoded.clear();
        let mut reached_end = false;
        let mut caught_up = false;
        match part.reader.read(self.batch_size, decoded) {
            Ok(ReadStatus::End) => reached_end = true,
            Ok(ReadStatus::CaughtUp) if decoded.is_empty() => {
                caught_up = true;
                let since = *part.caught_up_since.get_or_insert_with(Instant::now);
                if let Some(after) = self.idle_after {
                    if !part.idle && since.elapsed() >= after {
                        part.idle = true;
                        Stats::add(&control.stats.idle_releases, 1);
                    }
                }
            }
            Ok(_) => {
                part.caught_up_since = None;
                let released = std::mem::replace(&mut part.idle, false);
                if part.rejoins_below(decoded, held) || released {
                    // Back from an idle release: the frontier may have
                    // passed this partition's stream time; its records
                    // arrive at this capability's time.
                    let first = decoded.first().map(|d| match d {
                        Ok(r) => r.offset,
                        Err(letter) => letter.offset,
                    });
                    if let Some(offset) = first {
                        if part.stream_time.get().is_none_or(|st| st < held) {
                            part.jumps.push_front((offset, held));
                            control.decide(Decision::Resume {
                                partition: part.id,
                                offset,
                                stream_time: held,
                            });
                        }
                    }
                }
            }
            Err(e) => {
                control.fail(e.into());
                part.ended = true;
            }
        }
        let partition = part.id;
        batches.clear();
        // Room for a fair share of the batch and some skew.
        let capacity =
            (decoded.len() / peers + decoded.len() / (4 * peers) + 16).min(decoded.len());
        let stride = self.stride;
        batches.extend(
            (0..peers).map(|d| Batch::with_capacity(first + d as u32, partition, capacity, stride)),
        );
        for d in decoded.drain(..) {
            let at_offset = match &d {
                Ok(r) => r.offset,
                Err(letter) => letter.offset,
            };
            while let Some(&(offset, at)) = part.jumps.front() {
                if offset > at_offset {
                    break;
                }
                part.stream_time.observe(at);
                part.jumps.pop_front();
            }
            match d {
                Ok(r) if is_future(self.max_future_skew, &part.stream_time, r.event_time) => {
                    dead += 1;
                    let at = part.hold();
                    let skew = self.max_future_skew.unwrap_or_default();
                    extra.push(Ingest::Dead {
                        at,
                        letter: future_letter(&r, at, skew),
                    });
                }
                Ok(r) => {
                    let stream_time = part.stream_time.observe(r.event_time);
                    records += 1;
                    let dest = if peers == 1 {
                        0
                    } else {
                        (key_hash(&r.key) % peers as u64) as usize
                    };
                    let value = crate::event::number(r.value);
                    batches[dest].push(stream_time, r.offset, r.key, r.event_time, value, r.fields);
                }
                Err(letter) => {
                    dead += 1;
                    if self.fail_on_bad {
                        control.fail(EngineError::BadRecord {
                            partition: letter.partition,
                            offset: letter.offset,
                            file: letter.file.clone(),
                            line: letter.line,
                            reason: letter.reason.clone(),
                        });
                        part.ended = true;
                        reached_end = false;
                        break;
                    }
                    let at = part.dead_letter_time(letter.offset);
                    extra.push(Ingest::Dead { at, letter });
                }
            }
            if let Some(n) = self.cut_every {
                if at_offset.saturating_add(1) % n == 0 {
                    // A cut just after this record's stream time (sent
                    // below it, at this capability).
                    if let Some(st) = part.stream_time.get() {
                        let at = st.saturating_add(1);
                        extra.extend((0..peers).map(|d| Ingest::Cut {
                            dest: first + d as u32,
                            at,
                        }));
                    }
                }
            }
        }
        if let Some(&(offset, _)) = part.jumps.front().filter(|_| reached_end) {
            // A replayed decision past the partition's end: the decisions
            // are not this input's.
            control.fail(EngineError::Config(format!(
                "the time decisions replayed name offset {offset} of partition {partition}, past its end ({} records): they were recorded over another input",
                part.reader.position()
            )));
            reached_end = false;
            part.ended = true;
        }
        if reached_end {
            part.ended = true;
            extra.extend((0..peers).map(|d| Ingest::End {
                dest: first + d as u32,
                partition,
            }));
        }
        // A table's partitions are reported with the table (see
        // `on_activation`).
        if self.table.is_none() {
            control.stats.report_partition(partition, |live| {
                live.next_offset = part.reader.position();
                live.stream_time = part.stream_time.get();
                live.records += records;
                live.dead_letters += dead;
                live.state = if part.ended {
                    crate::stats::PartitionState::Ended
                } else if part.idle {
                    crate::stats::PartitionState::Idle
                } else if caught_up {
                    crate::stats::PartitionState::CaughtUp
                } else {
                    crate::stats::PartitionState::Reading
                };
            });
        }
        out.extend(
            batches
                .drain(..)
                .filter(|b| b.len() > 0)
                .map(Ingest::Records),
        );
        out.append(extra);
        (records, dead, caught_up)
    }

    /// The markers that tell every window operator (or with `local`, this
    /// worker's next operator) this ingest stops at `at`.
    fn stop_markers(&self, at: EventTime) -> Vec<Ingest> {
        if self.local {
            return vec![Ingest::Stop {
                dest: self.index as u32,
                at,
            }];
        }
        (0..self.peers)
            .map(|d| Ingest::Stop { dest: d as u32, at })
            .collect()
    }

    /// Stops at `held`: tells every window operator, and lets the
    /// capability go.
    fn stop(&mut self, held: EventTime, out: &mut Vec<Ingest>) -> Next {
        out.extend(self.stop_markers(held));
        if self.table.is_none() {
            report_stopped(&self.control.stats, &self.parts);
            self.control.publish_hold(self.index, None);
            self.control.publish_stream_cap(self.index, None);
        }
        Next::Release
    }

    /// Where the capability goes after reading: the lowest stream time a
    /// partition may still send. Idle partitions do not hold it back; when
    /// every open partition is idle it stays at the highest stream time
    /// seen.
    fn hold(&mut self, held: EventTime, caught_up: bool, out: &mut Vec<Ingest>) -> Next {
        let open = || self.parts.iter().filter(|p| !p.ended);
        let own = open().filter(|p| !p.idle).map(Partition::hold).min();
        if self.table.is_none() {
            self.control.publish_hold(self.index, own);
        }
        // Every open partition idle: hold the capability at the newest
        // stream time seen, or where the process's other workers hold the
        // frontier if that is further (this worker then does not hold it
        // back; the global frontier is still the least over every worker).
        let hold = own.or_else(|| {
            let newest = open().map(Partition::hold).max();
            if self.table.is_some() {
                // An idle table follows the stream: it holds no lookup
                // back (a stream record is looked up `shift` after its
                // stream time).
                let stream = self.control.least_stream_cap();
                if stream == EventTime::MAX {
                    // Every stream reader ended: no lookup is left to
                    // hold back, and the idle table ends too.
                    return None;
                }
                return newest.map(|n| n.max(stream.saturating_add(self.shift)));
            }
            match (newest, self.control.others_hold(self.index)) {
                (Some(n), Some(o)) => Some(n.max(o)),
                (n, _) => n,
            }
        });
        if let Some(stop) = self.replay_stop {
            if hold.is_none_or(|t| t >= stop) {
                // Replaying a run that was stopped: stop where it did.
                out.extend(self.stop_markers(stop));
                return Next::Release;
            }
        }
        if self.table.is_none() {
            self.control.publish_stream_cap(self.index, hold);
        }
        match hold {
            Some(t) => {
                self.lead_from = held;
                // Followed input with nothing new: look again shortly.
                Next::Hold(t, caught_up.then_some(Duration::from_millis(10)))
            }
            None => {
                if self.table.is_none() {
                    Stats::add(&self.control.stats.partitions_done, self.parts.len() as u64);
                    self.control.publish_hold(self.index, None);
                }
                Next::Release
            }
        }
    }
}

/// The ingest operator of worker `index` of `peers`: the thin Timely
/// source around an [`IngestOperator`], reading the partitions
/// `p ≡ index (mod peers)` of the settings' partitions.
pub(crate) fn ingest<'scope>(
    scope: Scope<'scope, EventTime>,
    settings: IngestSettings,
    control: Arc<Control>,
    index: usize,
    peers: usize,
    probe: ProbeHandle<EventTime>,
) -> Stream<'scope, EventTime, Vec<Ingest>> {
    timely_source::<_, CapacityContainerBuilder<Vec<Ingest>>, _, _>(
        scope,
        "Ingest",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut op = IngestOperator::open(&settings, control, index, peers);
            let mut cap = cap;
            if let Some(at) = settings.resumed_at {
                // Everything below the checkpoint's frontier was applied
                // before: nothing is sent below it.
                if at > *cap.time() {
                    cap.downgrade(&at);
                }
            }
            let mut cap: Option<Capability<EventTime>> = Some(cap);
            let mut out: Vec<Ingest> = Vec::new();
            move |output| {
                let Some(c) = cap.as_mut() else { return };
                let completed = probe.with_frontier(|f| f.first().copied());
                let next = op.on_activation(*c.time(), completed, &mut out);
                if !out.is_empty() {
                    output.session(&*c).give_iterator(out.drain(..));
                }
                match next {
                    Next::Wait(after) => activator.activate_after(after),
                    Next::Hold(t, again) => {
                        if t > *c.time() {
                            c.downgrade(&t);
                        }
                        match again {
                            Some(after) => activator.activate_after(after),
                            None => activator.activate(),
                        }
                    }
                    Next::Release => cap = None,
                }
            }
        },
    )
}
