//! What a job computes and how it runs: [`EngineConfig`], [`Parallelism`],
//! start [`Position`]s and the bad-record policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tidemark_sources::{Key, PartitionId};
use tidemark_windows::{AggKind, Aggregator, EventTime, Metrics, Policy, WindowSpec};

use crate::aggregator::JobAggregator;
use crate::error::{EngineError, Result};

/// Where a partition starts reading (kept here with the checkpoints that
/// record it).
pub use crate::checkpoint::Position;
pub use crate::options::{Options, DEFAULT_COMMIT_INTERVAL, DEFAULT_CONNECT_TIMEOUT};

/// How many Timely workers, in how many processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// `n` worker threads in this process.
    Workers(usize),
    /// Timely's own multi-process mode: `workers` threads in each process,
    /// this one being `process` of the `hosts` (one `host:port` each).
    ///
    /// Before any record is read the processes connect (within
    /// [`Options::connect_timeout`](crate::Options::connect_timeout)) and compare their jobs: window,
    /// aggregation, policy, input, workers per process and host list must
    /// be the same everywhere, or every process refuses to run with an
    /// [`EngineError::Config`] naming the setting and both values. A
    /// process that goes away mid-run makes [`run`](crate::run) return
    /// [`EngineError::PeerLost`] on the others, their outputs holding what
    /// the completed frontiers held.
    Cluster {
        /// Worker threads per process.
        workers: usize,
        /// This process's index in `hosts`.
        process: usize,
        /// Every process's address.
        hosts: Vec<String>,
    },
}

/// How bad records are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadRecords {
    /// Send them to the dead-letter output and go on.
    #[default]
    Skip,
    /// Stop the job with an error naming the record.
    Fail,
}

impl std::str::FromStr for BadRecords {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "skip" => Ok(BadRecords::Skip),
            "fail" => Ok(BadRecords::Fail),
            other => Err(format!(
                "unknown bad-record policy \"{other}\" (expected skip or fail)"
            )),
        }
    }
}

/// Window state to start from, for aggregator `A`: a snapshot of the state
/// of all keys, as [`WindowState::snapshot`](tidemark_windows::WindowState::snapshot)
/// takes it; each worker keeps its own keys.
pub type StateSnapshot<A = Metrics> =
    tidemark_windows::Snapshot<Key, <A as Aggregator>::Acc, <A as Aggregator>::Output>;

/// What a job computes, with aggregator `A` (by default the built-in
/// [`Metrics`]).
pub struct EngineConfig<A: JobAggregator = Metrics> {
    /// The windows.
    pub window: WindowSpec,
    /// Delay, allowed lateness and emit mode.
    pub policy: Policy,
    /// The aggregation.
    pub aggregator: A,
    /// Where partitions start (partitions not listed start at offset 0).
    pub start: BTreeMap<PartitionId, Position>,
    /// Window state to resume from (with `start` positions: the state after
    /// every record before them). Its window spec and policy must be the
    /// job's.
    pub initial_state: Option<Arc<StateSnapshot<A>>>,
    /// Take checkpoints (and resume from the newest valid one); see
    /// [`CheckpointConfig`].
    pub checkpoint: Option<CheckpointConfig>,
    /// Reprocess: write only the output from this point on (see
    /// [`EmitFrom`]). The input is still read from the start (or from the
    /// newest checkpoint at or before the point).
    pub emit_from: Option<EmitFrom>,
    /// Replay the time decisions (idle releases, a stop) a followed run
    /// recorded in this checkpoint directory, instead of taking any: the
    /// output is then the live run's (see
    /// [`checkpoint::decisions`](crate::checkpoint::decisions)).
    pub replay_decisions: Option<std::path::PathBuf>,
    /// Write a stats log: a JSON line per multiple of an interval of stream
    /// time (see [`StatsLog`]).
    pub stats_log: Option<StatsLog>,
    /// The engine's options (batch size, bad records, commit interval, …;
    /// see [`Options`]). `config.batch_size` reads and sets them
    /// through `Deref`.
    pub options: Options,
    /// Tables and the enrichment of the stream from them (none by default;
    /// see [`Tables`](crate::table::Tables)).
    pub tables: crate::table::Tables,
}

/// A stats log: at the first multiple of `every` ms of stream time after
/// what was applied changed, one JSON line of what every record with a
/// stream time below that cut did. Per partition, the next offset, the
/// stream time and the watermark. In all, records, late dropped and
/// applied, unassigned, dead letters; the global watermark, the partition
/// holding it, the event-time lag. A last line at the end has `at` null.
/// Every field is a function of the log, so two runs write the same lines
/// whatever the worker count, except the object `wall`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsLog {
    /// The file, created or truncated.
    pub path: std::path::PathBuf,
    /// The interval, ms of stream time.
    pub every: tidemark_windows::Millis,
}

/// How often checkpoints are taken. Either way the cut points are a
/// function of the log, so every worker cuts at the same place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointEvery {
    /// At each multiple of this many milliseconds of stream time: the
    /// checkpoint at `k·ms` holds every record whose stream time is below
    /// it. When the frontier passes several multiples at once, the newest
    /// is written.
    EventTime(tidemark_windows::Millis),
    /// Every this many offsets of each partition: after the record at an
    /// offset `o` with `(o + 1) % n == 0`, a cut just after its stream
    /// time. With `p` partitions of similar rate that is about one
    /// checkpoint per `n` records overall.
    Records(u64),
}

impl std::fmt::Display for CheckpointEvery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointEvery::EventTime(ms) => write!(f, "{ms}ms"),
            CheckpointEvery::Records(n) => write!(f, "{n}records"),
        }
    }
}

/// Checkpointing a job: where, how often, how many to keep, and the
/// identity of the input (part of the job fingerprint that guards a
/// resume).
///
/// With a checkpoint configuration, [`run`](crate::run) first looks for
/// the newest valid checkpoint in `dir` (skipping torn or corrupt ones,
/// with a notice on [`Stats`](crate::Stats)); if there is one, the job's
/// fingerprint must equal its own, the file outputs are cut back to their
/// committed length (after checking their digest) and the job resumes from
/// its positions and window state. Without one (or with `rebuild`) the job
/// starts from offset 0 and replaces the outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// The checkpoint directory.
    pub dir: std::path::PathBuf,
    /// How often.
    pub every: CheckpointEvery,
    /// How many complete checkpoints are kept.
    pub keep: std::num::NonZeroUsize,
    /// Ignore (and delete) the checkpoints in `dir`: start from offset 0.
    pub rebuild: bool,
    /// The input's identity (paths, partition names), for the fingerprint.
    pub input: crate::checkpoint::InputIdentity,
    /// Further settings that change the results (field mapping, time
    /// format…), for the fingerprint, by name.
    pub settings: BTreeMap<String, String>,
}

impl CheckpointConfig {
    /// Checkpoints in `dir` with the command line's defaults: every 10 s
    /// of event time, the newest [`DEFAULT_KEEP`](crate::checkpoint::DEFAULT_KEEP)
    /// kept, resuming rather than rebuilding, the input's identity left to
    /// the job builder (the source's description and partitions) and no
    /// further settings.
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        CheckpointConfig {
            dir: dir.into(),
            every: CheckpointEvery::EventTime(10_000),
            keep: std::num::NonZeroUsize::new(crate::checkpoint::DEFAULT_KEEP)
                .unwrap_or(std::num::NonZeroUsize::MIN),
            rebuild: false,
            input: crate::checkpoint::InputIdentity::default(),
            settings: BTreeMap::new(),
        }
    }

    /// Checkpoints this often.
    pub fn every(mut self, every: CheckpointEvery) -> Self {
        self.every = every;
        self
    }

    /// Keeps the newest `keep` complete checkpoints (at least 1).
    pub fn keep(mut self, keep: usize) -> Self {
        self.keep = std::num::NonZeroUsize::new(keep).unwrap_or(std::num::NonZeroUsize::MIN);
        self
    }

    /// Deletes the checkpoints and starts from offset 0, replacing the
    /// outputs.
    pub fn rebuild(mut self, rebuild: bool) -> Self {
        self.rebuild = rebuild;
        self
    }
}

/// Where the output of a reprocessing run begins.
///
/// The output of a run with `emit_from` is exactly the suffix of a full
/// run's output made of the items (result rows, late records, dead
/// letters) of the frontier steps at or after a stream time `T`:
///
/// - [`EmitFrom::Time`]`(t)`: `T = t`;
/// - [`EmitFrom::Offsets`]: `T` is the first frontier step whose records
///   all lie at or beyond the requested offsets: one more than the largest
///   stream time of a partition just before its requested offset (a
///   partition not named starts at 0 and sets no bound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmitFrom {
    /// From this stream time (epoch ms).
    Time(EventTime),
    /// From these offsets, by partition.
    Offsets(BTreeMap<PartitionId, u64>),
}

impl<A: JobAggregator> Clone for EngineConfig<A> {
    fn clone(&self) -> Self {
        EngineConfig {
            window: self.window,
            policy: self.policy,
            aggregator: self.aggregator.clone(),
            start: self.start.clone(),
            initial_state: self.initial_state.clone(),
            checkpoint: self.checkpoint.clone(),
            emit_from: self.emit_from.clone(),
            replay_decisions: self.replay_decisions.clone(),
            stats_log: self.stats_log.clone(),
            options: self.options.clone(),
            tables: self.tables.clone(),
        }
    }
}

impl<A: JobAggregator> std::fmt::Debug for EngineConfig<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("window", &self.window)
            .field("policy", &self.policy)
            .field("fields", &self.aggregator.field_names())
            .field("start", &self.start)
            .field("initial_state", &self.initial_state.is_some())
            .field("checkpoint", &self.checkpoint)
            .field("emit_from", &self.emit_from)
            .field("replay_decisions", &self.replay_decisions)
            .field("stats_log", &self.stats_log)
            .field("options", &self.options)
            .finish()
    }
}

impl<A: JobAggregator> std::ops::Deref for EngineConfig<A> {
    type Target = Options;
    fn deref(&self) -> &Options {
        &self.options
    }
}

impl<A: JobAggregator> std::ops::DerefMut for EngineConfig<A> {
    fn deref_mut(&mut self) -> &mut Options {
        &mut self.options
    }
}

impl EngineConfig<Metrics> {
    /// A job with `window`, `policy` and the built-in aggregations `aggs`,
    /// default batch size (1024), skipping bad records, reading every
    /// partition from offset 0.
    pub fn new(window: WindowSpec, policy: Policy, aggs: Vec<AggKind>) -> Self {
        EngineConfig::with_aggregator(window, policy, Metrics::new(&aggs))
    }
}

impl<A: JobAggregator> EngineConfig<A> {
    /// A job with `window`, `policy` and any aggregator, with the same
    /// defaults as [`EngineConfig::new`].
    pub fn with_aggregator(window: WindowSpec, policy: Policy, aggregator: A) -> Self {
        EngineConfig {
            window,
            policy,
            aggregator,
            start: BTreeMap::new(),
            initial_state: None,
            checkpoint: None,
            emit_from: None,
            replay_decisions: None,
            stats_log: None,
            options: Options::default(),
            tables: crate::table::Tables::default(),
        }
    }

    /// Checks the window, policy and options.
    pub fn validate(&self) -> Result<()> {
        self.window.validate()?;
        self.policy.validate()?;
        if self.aggregator.field_names().is_empty() {
            return Err(EngineError::Config(
                "at least one aggregation is needed".into(),
            ));
        }
        if self.max_future_skew.is_some_and(|s| s < 0) {
            return Err(EngineError::Config(
                "the maximum future skew must not be negative".into(),
            ));
        }
        if self.replay_decisions.is_some() && self.idle_after.is_some() {
            return Err(EngineError::Config(
                "a run that replays time decisions takes none of its own: it cannot release idle partitions"
                    .into(),
            ));
        }
        if let Some(c) = &self.checkpoint {
            if self.replay_decisions.as_ref() == Some(&c.dir) {
                return Err(EngineError::Config(
                    "replay the time decisions of another checkpoint directory than this run's own"
                        .into(),
                ));
            }
            match c.every {
                CheckpointEvery::EventTime(ms) if ms <= 0 => {
                    return Err(EngineError::Config(
                        "the checkpoint interval must be greater than 0".into(),
                    ))
                }
                CheckpointEvery::Records(0) => {
                    return Err(EngineError::Config(
                        "the checkpoint interval must be greater than 0 records".into(),
                    ))
                }
                _ => {}
            }
        }
        if self.batch_size == 0 {
            return Err(EngineError::Config(
                "batch size must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

// (Here rather than beside the fingerprint, so that the checkpoint module
// does not depend on the configuration that depends on it.)
impl crate::checkpoint::JobFingerprint {
    /// The fingerprint of the job `config` computes over `input`, with the
    /// caller's named `settings` (for example `"time format" →
    /// "rfc3339"`, `"key field" → "user"`).
    pub fn of<A: JobAggregator>(
        config: &EngineConfig<A>,
        input: crate::checkpoint::InputIdentity,
        settings: BTreeMap<String, String>,
    ) -> Self {
        crate::checkpoint::JobFingerprint {
            window: config.window,
            fields: config.aggregator.describe(),
            policy: config.policy,
            options: config.options.identity(),
            settings,
            input,
        }
    }
}
