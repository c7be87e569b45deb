//! The wiring of a job: ingest → window operator → sink, run on Timely
//! workers ([`run`]), or the windowing operators on a stream of the
//! caller's own ([`windowed`]).
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
//! **Order.** The window operator applies the records the frontier has
//! passed in (stream time, partition, offset) order (the `order` module),
//! driving a [`WindowState`] step by step (see `tidemark_windows::state`).
//! Rows carry a logical time; the sink, on worker 0, writes them once the
//! frontier passes that time, in the canonical order. Output is therefore
//! byte-identical whatever the number of workers or processes, the batch
//! sizes or the timing.
//!
//! **Ends and aborts.** Each partition's end is announced to every window
//! operator, and each window operator announces its own end to the sink.
//! An input that stops without them (an error, a stop request, a lost
//! peer) fires no open window: the outputs hold exactly what the completed
//! frontiers hold.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidemark_sources::{DeadLetter, Key, Source};
use tidemark_windows::{EventTime, WindowState};
use timely::communication::AllocatorBuilder;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::vec::{Broadcast, ToStream};
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{ProbeHandle, Stream};
use timely::execute::execute_from;
use timely::worker::Worker;
use timely::WorkerConfig;

use crate::aggregator::JobAggregator;
use crate::cluster::{self, Link, Network};
use crate::collection::{changelog, Changelog};
use crate::config::{BadRecords, CheckpointEvery, EngineConfig, Parallelism};
use crate::error::{EngineError, Result};
use crate::event::{Batch, Emit, Event, Ingest, LateRecord, Row};
use crate::operators::checkpointer::Checkpointer;
use crate::operators::cuts::{CutTracker, Schedule};
use crate::operators::ingest::{ingest, IngestSettings};
use crate::operators::sink::sink;
use crate::operators::window::window;
use crate::operators::{key_hash, Control};
use crate::prepare;
use crate::sink::Sinks;
use crate::stats::{Stats, Summary};

/// This worker's share of the window state: a fresh state, or the keys of
/// the initial snapshot that the exchange routes here.
fn worker_state<A: JobAggregator>(
    config: &EngineConfig<A>,
    index: usize,
    peers: usize,
) -> Result<WindowState<Key, A>> {
    let state = match &config.initial_state {
        Some(snapshot) => {
            let mut s = WindowState::restore(config.aggregator.clone(), (**snapshot).clone())?;
            if (s.spec(), s.policy()) != (config.window, config.policy) {
                return Err(tidemark_windows::WindowError::SnapshotMismatch.into());
            }
            s.retain_keys(|k| key_hash(k) % peers as u64 == index as u64);
            s
        }
        None => WindowState::try_new(config.window, config.policy, config.aggregator.clone())?,
    };
    Ok(state)
}

/// How often a worker of a cluster looks whether a peer was lost while it
/// has nothing to do.
const LOSS_POLL: Duration = Duration::from_millis(50);

/// How one worker's part of a run ended.
enum Outcome {
    /// The dataflow completed; on the first worker of each process of a
    /// cluster, the summary of every process.
    Done(Option<Vec<Summary>>),
    /// A cluster peer was lost before the dataflow completed.
    Lost,
}

/// Steps `worker` until its dataflows complete (`false`) or a cluster peer
/// is lost (`true`).
fn drive(worker: &mut Worker, link: Option<&Link>) -> bool {
    let poll = link.map(|_| LOSS_POLL);
    loop {
        if link.is_some_and(Link::is_lost) {
            return true;
        }
        if !worker.step_or_park(poll) {
            return false;
        }
    }
}

/// Drops the worker's dataflows, so that it can end although they did not
/// complete.
fn drop_dataflows(worker: &mut Worker) {
    for id in worker.installed_dataflows() {
        worker.drop_dataflow(id);
    }
}

/// After the job, the first worker of each process sends its process's
/// summary to every worker; returns them all (`None` when a peer was lost
/// meanwhile).
fn gather(worker: &mut Worker, mine: Option<Summary>, link: &Link) -> Option<Vec<Summary>> {
    let got: Rc<RefCell<Vec<Summary>>> = Rc::default();
    let into = Rc::clone(&got);
    worker.dataflow::<u64, _, _>(move |scope| {
        mine.into_iter()
            .to_stream(scope)
            .broadcast()
            .inspect(move |s| into.borrow_mut().push(s.clone()));
    });
    if drive(worker, Some(link)) {
        drop_dataflows(worker);
        return None;
    }
    Some(got.take())
}

/// What [`start`] returns: the workers' allocators, what must live as long
/// as they run, and this process's connections in cluster mode.
type Started = (Vec<AllocatorBuilder>, Box<dyn Any + Send>, Option<Network>);

/// The Timely allocators of this process's workers, and in cluster mode
/// the connections to the other processes (made, and the jobs compared,
/// here).
fn start<A: JobAggregator>(
    parallelism: &Parallelism,
    config: &EngineConfig<A>,
    source: &dyn Source,
    partitions: usize,
) -> Result<Started> {
    let local = |c: timely::CommunicationConfig| {
        c.try_build()
            .map(|(builders, others)| (builders, others, None))
            .map_err(EngineError::Runtime)
    };
    match parallelism {
        Parallelism::Workers(n) if *n <= 1 => local(timely::CommunicationConfig::Thread),
        Parallelism::Workers(n) => local(timely::CommunicationConfig::Process(*n)),
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
            let workers = (*workers).max(1);
            let fingerprint = cluster::fingerprint(config, source, partitions, workers, hosts);
            let (network, builders) = Network::start(
                hosts,
                *process,
                workers,
                &fingerprint,
                config.connect_timeout,
            )?;
            Ok((builders, Box::new(()), Some(network)))
        }
    }
}

/// Runs a job to completion and returns its summary.
///
/// `outputs` are [`Outputs`](crate::Outputs) (three JSON-lines targets) or
/// [`Sinks`] (any [`Sink`](crate::Sink)s); they are opened and written by
/// worker 0 only. `stats` may be read while the job runs (progress bars),
/// and [`Stats::request_stop`] ends it early: what the completed frontiers
/// hold is written and committed, the windows still open are not.
///
/// A job that fails (a bad record with [`BadRecords::Fail`], an I/O error)
/// returns the error; its outputs then hold exactly what the frontier had
/// completed, up to [`Stats::frontier`].
///
/// In cluster mode ([`Parallelism::Cluster`]) the processes first connect
/// and compare their jobs: a process started with a different job makes
/// every process return [`EngineError::Config`] naming the setting, and
/// processes not connected within [`EngineConfig::connect_timeout`] give
/// [`EngineError::Unreachable`]. A process that goes away while the job
/// runs gives [`EngineError::PeerLost`] on the others, their outputs
/// ending at the last completed frontier. Each process's summary names
/// the process, has the job's final watermark and holds the cluster's
/// totals ([`Summary::cluster`]).
pub fn run<A: JobAggregator>(
    source: Arc<dyn Source>,
    config: EngineConfig<A>,
    parallelism: Parallelism,
    outputs: impl Into<Sinks<A::Output>>,
    stats: Arc<Stats>,
) -> Result<Summary> {
    let result = run_job(
        Arc::clone(&source),
        config,
        parallelism,
        outputs.into(),
        stats,
    );
    // Whatever happened, nobody reads the source any more.
    source.job_ended();
    result
}

fn run_job<A: JobAggregator>(
    source: Arc<dyn Source>,
    config: EngineConfig<A>,
    parallelism: Parallelism,
    outputs: Sinks<A::Output>,
    stats: Arc<Stats>,
) -> Result<Summary> {
    config.validate()?;
    let mut config = config;
    stats.sample_state.store(
        config.sample_state.map_or(0, |ms| ms.max(1)),
        std::sync::atomic::Ordering::Relaxed,
    );
    let partitions = source.partitions()?;
    let delay = config.policy.delay;
    stats
        .delay
        .store(delay, std::sync::atomic::Ordering::Relaxed);
    // The sink runs on worker 0, in process 0.
    let sink_here = match &parallelism {
        Parallelism::Workers(_) => true,
        Parallelism::Cluster { process, .. } => *process == 0,
    };
    let mut files = outputs.files();
    if let Some(log) = &config.stats_log {
        files.push(("stats", log.path.clone()));
    }
    let begin = prepare::prepare(&mut config, &*source, &stats, sink_here, &files)?;
    if let Some((id, at)) = begin.resumed {
        if sink_here {
            stats.counts.set(&begin.counters.counts);
        }
        if !begin.complete {
            stats.notice(format!(
                "resuming from checkpoint {id} at stream time {} ({} partition positions)",
                crate::checkpoint::time_text(at),
                config.start.len()
            ));
        }
    }
    if begin.complete {
        // A job that completed: its outputs must still be the committed
        // ones; nothing more to do.
        if sink_here {
            outputs.open(
                &config.aggregator,
                begin.outputs.as_ref(),
                true,
                config.output_times,
            )?;
        }
        if let Some((id, _)) = begin.resumed {
            stats.notice(format!(
                "checkpoint {id} marks this job complete: nothing to do (a rebuild runs it again)"
            ));
        }
        Stats::add(&stats.partitions, partitions.len() as u64);
        let mut summary = stats.summary(delay);
        summary.final_watermark = None;
        summary.resumed_from = begin.resumed.map(|(id, _)| id.0);
        summary.records_before = summary.records;
        summary.already_complete = true;
        return Ok(summary);
    }
    let (builders, others, network) = start(&parallelism, &config, &*source, partitions.len())?;
    let link = network.as_ref().map(|n| Arc::clone(&n.link));
    let loss = link.clone();
    let per_process = match &parallelism {
        Parallelism::Cluster { workers, .. } => (*workers).max(1),
        Parallelism::Workers(n) => (*n).max(1),
    };
    let mut control = Control::new(Arc::clone(&stats), per_process);
    control.decisions = match (&parallelism, begin.decisions.clone()) {
        (Parallelism::Cluster { .. }, Some(_)) => {
            stats.notice(
                "time decisions (idle releases) are not recorded in cluster mode: this run cannot be replayed".into(),
            );
            None
        }
        (_, log) => log,
    };
    let control = Arc::new(control);
    let replay = begin.replay.clone();
    let sinks = Arc::new(Mutex::new(Some(outputs)));
    let resume_outputs = begin.outputs;
    let tracking = begin.dir.is_some();
    let emit_from = begin.emit_from;
    let every = config.checkpoint.as_ref().map(|c| c.every);
    let total_workers = per_process
        * match &parallelism {
            Parallelism::Cluster { hosts, .. } => hosts.len(),
            Parallelism::Workers(_) => 1,
        };
    let passed = begin
        .resumed
        .map_or(tidemark_sources::MIN_EVENT_TIME - 1, |(_, at)| at);
    let checkpointer = match (begin.dir, begin.fingerprint, every) {
        (Some(dir), Some(fingerprint), Some(every)) if sink_here => Some(Checkpointer::new(
            dir,
            fingerprint,
            config.start.clone(),
            begin.counters.clone(),
            total_workers,
            passed,
            match every {
                CheckpointEvery::EventTime(ms) => Some(ms),
                CheckpointEvery::Records(_) => None,
            },
            Arc::clone(&source),
        )),
        _ => None,
    };
    let checkpointer = Arc::new(Mutex::new(checkpointer));
    let cuts_every = every.filter(|_| tracking);
    let stats_log = config.stats_log.clone();
    // A resumed stats log goes on from its checkpoint's lines.
    let stats_log_resumed = begin
        .resumed
        .and(begin.counters.stats_log.clone())
        .filter(|_| tracking);
    if let (Some(log), Some(_)) = (&stats_log, begin.resumed) {
        let kept = stats_log_resumed
            .as_ref()
            .is_some_and(|state| state.every == log.every);
        if !kept && sink_here && !crate::sink::target::is_special(&log.path) {
            stats.notice(format!(
                "the stats log \"{}\" starts over: the checkpoint resumed from holds no stats log of this interval; its counts are this run's only",
                log.path.display()
            ));
        }
    }
    let total_peers = total_workers;
    let settings = IngestSettings {
        start: config.start.clone(),
        batch_size: config.batch_size,
        fail_on_bad: config.bad_records == BadRecords::Fail,
        idle_after: config.idle_after,
        max_future_skew: config.max_future_skew,
        replay,
        cut_every_offsets: match cuts_every {
            Some(CheckpointEvery::Records(n)) => Some(n),
            _ => None,
        },
        resumed_at: begin.resumed.map(|(_, at)| at),
    };
    let worker_control = Arc::clone(&control);
    let work = move |worker: &mut Worker| {
        let index = worker.index();
        let peers = worker.peers();
        let control = Arc::clone(&worker_control);
        let opened = if index == 0 {
            let taken = sinks.lock().ok().and_then(|mut s| s.take());
            taken.and_then(|s| {
                match s.open(
                    &config.aggregator,
                    resume_outputs.as_ref(),
                    tracking,
                    config.output_times,
                ) {
                    Ok(open) => Some(open),
                    Err(e) => {
                        control.fail(e);
                        None
                    }
                }
            })
        } else {
            None
        };
        let state = match worker_state(&config, index, peers) {
            Ok(s) => Some(s),
            Err(e) => {
                control.fail(e);
                None
            }
        };
        let checkpointer = if index == 0 {
            checkpointer.lock().ok().and_then(|mut c| c.take())
        } else {
            None
        };
        let stats_writer = match (&stats_log, index == 0 && sink_here) {
            (Some(log), true) => {
                match crate::operators::stats_log::StatsLogWriter::create(
                    &log.path,
                    total_peers,
                    delay,
                    log.every,
                    tracking,
                    stats_log_resumed.as_ref(),
                ) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        control.fail(e);
                        None
                    }
                }
            }
            _ => None,
        };
        let mut cuts: Vec<CutTracker> = cuts_every
            .map(|every| CutTracker::new(Schedule::new(every), index as u32, passed))
            .into_iter()
            .collect();
        if let Some(log) = &stats_log {
            cuts.push(CutTracker::for_stats_log(log.every, index as u32, passed));
        }
        let source = Arc::clone(&source);
        let settings = settings.clone();
        let commit_interval = config.commit_interval;
        let partitions = partitions.clone();
        let sink_control = Arc::clone(&control);
        let end = worker.dataflow::<EventTime, _, _>(move |scope| {
            let probe = ProbeHandle::new();
            let ingested = ingest(
                scope,
                source,
                &partitions,
                settings,
                Arc::clone(&sink_control),
                index,
                peers,
                probe.clone(),
            );
            let emitted = window(
                ingested,
                state,
                Arc::clone(&sink_control.stats),
                Some(partitions.len()),
                index,
                sink_here,
                cuts,
            )
            .probe_with(&probe);
            sink(
                emitted,
                opened,
                sink_control,
                peers,
                commit_interval,
                checkpointer,
                emit_from,
                stats_writer,
            )
        });
        let link = link.as_deref();
        if drive(worker, link) {
            // The outputs end at the last completed frontier.
            end.abandon();
            drop_dataflows(worker);
            return Outcome::Lost;
        }
        let Some(link) = link else {
            return Outcome::Done(None);
        };
        let first = index.is_multiple_of(per_process);
        let mine = first.then(|| {
            let mut s = control.stats.summary(delay);
            s.process = Some(index / per_process);
            s
        });
        let all = gather(worker, mine, link);
        Outcome::Done(all.filter(|_| first))
    };
    let guards = execute_from(builders, others, WorkerConfig::default(), work)
        .map_err(EngineError::Runtime)?;
    let results = guards.join();
    if let Some(network) = network {
        network.close();
    }
    let mut lost = false;
    let mut all = None;
    for result in results {
        match result.map_err(EngineError::Worker)? {
            Outcome::Lost => lost = true,
            Outcome::Done(Some(summaries)) => all = Some(summaries),
            Outcome::Done(None) => {}
        }
    }
    if let Some(link) = loss.filter(|_| lost) {
        return Err(link.error());
    }
    if let Some(error) = control.take_error() {
        return Err(error);
    }
    let mut summary = stats.summary(delay);
    summary.resumed_from = begin.resumed.map(|(id, _)| id.0);
    // (The counters of the run before are loaded where the sink runs.)
    summary.records_before = match begin.resumed {
        Some(_) if sink_here => begin.counters.records,
        _ => 0,
    };
    if let Parallelism::Cluster { process, .. } = parallelism {
        summary.process = Some(process);
        if let Some(all) = all {
            // Process 0 writes the outputs: its watermark is the job's.
            if let Some(first) = all.iter().find(|s| s.process == Some(0)) {
                summary.final_watermark = first.final_watermark;
            }
            summary.cluster = Some(Box::new(Summary::total(&all, summary.final_watermark)));
        }
    }
    Ok(summary)
}

/// The streams [`windowed`] returns, on each worker: that worker's share of
/// the results (each worker's rows in canonical order; merged over workers
/// in that order they are the rows a job writes), late records and dead
/// letters, and the counters of its window operator.
pub struct Windowed<'scope, O> {
    /// Result rows, each at a Timely time at or before its `time`.
    pub results: Stream<'scope, EventTime, Vec<Row<O>>>,
    /// Records dropped from at least one window as too late.
    pub late: Stream<'scope, EventTime, Vec<LateRecord>>,
    /// Records no window could take (window bounds out of range).
    pub dead_letters: Stream<'scope, EventTime, Vec<DeadLetter>>,
    /// Counters of this worker's window operator.
    pub stats: Arc<Stats>,
}

impl<'scope, O> Windowed<'scope, O>
where
    O: Clone + 'static,
{
    /// The results as a differential-dataflow collection (see
    /// [`changelog`]).
    pub fn collection(&self) -> Changelog<'scope, O> {
        changelog(self.results.clone())
    }
}

/// Builds the windowing operators on a stream of the caller's own, inside
/// their Timely worker, and returns the result, late and dead-letter
/// streams.
///
/// # The caller's contract
///
/// The determinism model rests on how `events` is produced, as the
/// built-in ingest does it:
///
/// - each event carries its partition's **stream time** (the largest event
///   time of that partition up to and including it) in `stream_time`, and
///   its partition and offset (offsets increase within a partition);
/// - each event is sent at a Timely time **no later than its stream time**
///   (a batch may be sent at the lowest stream time in it), and a partition's
///   events are sent in offset order;
/// - the source **holds its capability at the lowest stream time any
///   partition may still send**, so the frontier is the smallest stream time
///   still to come; when the frontier becomes empty the input has ended and
///   every window fires.
///
/// Events may arrive at any worker: they are exchanged by key. Under this
/// contract the rows, merged over workers in canonical order, are the same
/// whatever the number of workers, the batching or the timing.
///
/// ```
/// use timely::dataflow::operators::capture::{Capture, Event as Captured};
/// use timely::dataflow::operators::vec::ToStream;
/// use tidemark_engine::{windowed, EngineConfig, Event};
/// use tidemark_windows::{AggKind, Number, Policy, WindowSpec};
///
/// let config = EngineConfig::new(WindowSpec::tumbling(1_000), Policy::default(), vec![AggKind::Count]);
/// let captured = timely::execute_directly(move |worker| {
///     worker.dataflow::<i64, _, _>(|scope| {
///         // One partition, its events in offset order, all sent at the
///         // smallest time (no later than any stream time).
///         let events = (0..4i64).map(|i| Event {
///             stream_time: i * 400,
///             partition: 0,
///             offset: i as u64,
///             key: "k".into(),
///             time: i * 400,
///             value: Number::Int(1),
///         });
///         let out = windowed(events.to_stream(scope), &config, scope.index(), scope.peers())
///             .expect("a valid job");
///         out.results.capture()
///     })
/// });
/// let rows: Vec<_> = captured
///     .try_iter()
///     .filter_map(|e| match e {
///         Captured::Messages(_, rows) => Some(rows),
///         _ => None,
///     })
///     .flatten()
///     .collect();
/// let counts: Vec<_> = rows.iter().map(|r| (r.window.start, r.value.count)).collect();
/// assert_eq!(counts, vec![(0, Some(3)), (1_000, Some(1))]);
/// ```
pub fn windowed<'scope, A: JobAggregator>(
    events: Stream<'scope, EventTime, Vec<Event>>,
    config: &EngineConfig<A>,
    worker: usize,
    workers: usize,
) -> Result<Windowed<'scope, A::Output>> {
    config.validate()?;
    if worker >= workers {
        return Err(EngineError::Config(format!(
            "worker {worker} is not one of {workers} workers (pass scope.index() and scope.peers())"
        )));
    }
    let state = worker_state(config, worker, workers)?;
    let batched = events.unary::<CapacityContainerBuilder<Vec<Ingest>>, _, _, _>(
        Pipeline,
        "Batch",
        move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut batches: Vec<Batch> = Vec::new();
                    for e in data.drain(..) {
                        let dest = (key_hash(&e.key) % workers as u64) as u32;
                        let fits = batches
                            .last()
                            .is_some_and(|b| b.dest == dest && b.partition == e.partition);
                        if !fits {
                            batches.push(Batch::with_capacity(dest, e.partition, 16));
                        }
                        if let Some(b) = batches.last_mut() {
                            b.push(e.stream_time, e.offset, e.key, e.time, e.value);
                        }
                    }
                    output
                        .session(&cap)
                        .give_iterator(batches.into_iter().map(Ingest::Records));
                });
            }
        },
    );
    let stats = Arc::new(Stats::default());
    let emitted = window(
        batched,
        Some(state),
        Arc::clone(&stats),
        None,
        worker,
        false,
        Vec::new(),
    );
    let results = emitted.clone().flat_map(|e| match e {
        Emit::Rows(r) => r.rows,
        _ => Vec::new(),
    });
    let late = emitted.clone().flat_map(|e| match e {
        Emit::Late(l) => Some(l),
        _ => None,
    });
    let dead_letters = emitted.flat_map(|e| match e {
        Emit::Dead { letter, .. } => Some(letter),
        _ => None,
    });
    Ok(Windowed {
        results,
        late,
        dead_letters,
        stats,
    })
}
