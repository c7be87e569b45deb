//! Running a job on Timely workers ([`run`]): its plan (`plan`: ingest →
//! window operator → sink) built on every worker, in one process or a
//! cluster; the windowing operators on a stream of the caller's own are
//! [`windowed`](crate::windowed).
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
//! driving a [`WindowState`](tidemark_windows::WindowState) step by step (see `tidemark_windows::state`).
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
use std::sync::Arc;
use std::time::Duration;

use tidemark_sources::Source;
use timely::communication::AllocatorBuilder;
use timely::dataflow::operators::vec::{Broadcast, ToStream};
use timely::dataflow::operators::Inspect;
use timely::execute::execute_from;
use timely::worker::Worker;
use timely::WorkerConfig;

use crate::aggregator::JobAggregator;
use crate::cluster::{self, Link, Network};
use crate::config::{EngineConfig, Parallelism};
use crate::error::{EngineError, Result};
use crate::plan::{Plan, Prepared};
use crate::sink::Sinks;
use crate::stats::{Stats, Summary};

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
/// A job that fails (a bad record with [`BadRecords::Fail`](crate::BadRecords::Fail), an I/O error)
/// returns the error; its outputs then hold exactly what the frontier had
/// completed, up to [`Stats::frontier`].
///
/// In cluster mode ([`Parallelism::Cluster`]) the processes first connect
/// and compare their jobs: a process started with a different job makes
/// every process return [`EngineError::Config`] naming the setting, and
/// processes not connected within [`Options::connect_timeout`](crate::Options::connect_timeout) give
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
    let (plan, control) =
        match Plan::prepare(Arc::clone(&source), config, &parallelism, outputs, &stats)? {
            Prepared::Complete(summary) => return Ok(summary),
            Prepared::Run(plan, control) => (Arc::new(*plan), control),
        };
    let (builders, others, network) = start(
        &parallelism,
        plan.config(),
        &*source,
        plan.partition_count(),
    )?;
    let link = network.as_ref().map(|n| Arc::clone(&n.link));
    let loss = link.clone();
    let per_process = plan.layout.per_process;
    let worker_plan = Arc::clone(&plan);
    let worker_control = Arc::clone(&control);
    let work = move |worker: &mut Worker| {
        let index = worker.index();
        let end = worker_plan.build(worker, &worker_control);
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
        let mine =
            first.then(|| worker_plan.process_summary(&worker_control.stats, index / per_process));
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
    Ok(plan.finish(&stats, &parallelism, all))
}
