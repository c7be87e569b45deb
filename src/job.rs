//! The job: what to read, how to window and aggregate it, where to write —
//! as a builder for Rust programs and as a [`JobSpec`](crate::JobSpec) for job files and
//! the command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tidemark_engine::table::{EnrichDef, TableDef, Tables};
use tidemark_engine::{
    BadRecords, CheckpointConfig, EmitFrom, EngineConfig, EngineError, JobAggregator, LateRecord,
    Options, Output, Parallelism, Position, Row, Sink, Sinks, StateSnapshot, Stats, Summary,
};
use tidemark_sources::{DeadLetter, Source};
use tidemark_windows::time::IntoMillis;
use tidemark_windows::{AggKind, EmitMode, Metrics, Policy, WindowSpec};

use crate::spec::SpecError;

/// A span as a `Duration` (a negative one as zero).
fn duration(span: impl IntoMillis) -> Duration {
    Duration::from_millis(u64::try_from(span.into_millis()).unwrap_or(0))
}

/// Why a job could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A job option is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The engine stopped with an error.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The job file could not be read or parsed.
    #[error("could not read job file \"{path}\": {reason}")]
    JobFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A windowed job, ready to run, with aggregator `A` (by default the
/// built-in [`Metrics`]).
///
/// ```
/// use std::sync::Arc;
/// use tidemark::{Job, sources::{MemorySource, Record, Value}, windows::WindowSpec, engine::Target};
///
/// let rec = |key: &str, event_time, v| Record {
///     partition: 0, offset: 0, key: key.into(), event_time, value: Value::Int(v),
///     fields: Vec::new(),
/// };
/// let source = MemorySource::new(vec![vec![rec("a", 100, 1), rec("a", 700, 2), rec("b", 1_200, 5)]]);
/// let (results, buffer) = Target::buffer();
/// let summary = Job::builder()
///     .source(Arc::new(source))
///     .window(WindowSpec::tumbling(1_000))
///     .results(results)
///     .build()
///     .unwrap()
///     .run()
///     .unwrap();
/// assert_eq!(summary.records, 3);
/// let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
/// assert_eq!(text, "\
/// {\"key\":\"a\",\"start\":0,\"end\":1000,\"count\":2,\"sum\":3,\"kind\":\"final\"}
/// {\"key\":\"b\",\"start\":1000,\"end\":2000,\"count\":1,\"sum\":5,\"kind\":\"final\"}
/// ");
/// ```
pub struct Job<A: JobAggregator = Metrics> {
    source: Arc<dyn Source>,
    config: EngineConfig<A>,
    parallelism: Parallelism,
    sinks: Sinks<A::Output>,
}

impl Job {
    /// A builder with defaults: count and sum, delay 0, no allowed
    /// lateness, emit mode `final`, one worker, outputs discarded.
    pub fn builder() -> JobBuilder {
        JobBuilder::default()
    }
}

impl<A: JobAggregator> Job<A> {
    /// The engine configuration.
    pub fn config(&self) -> &EngineConfig<A> {
        &self.config
    }

    /// The parallelism.
    pub fn parallelism(&self) -> &Parallelism {
        &self.parallelism
    }

    /// Runs the job to completion.
    pub fn run(self) -> Result<Summary, JobError> {
        self.run_with(Arc::new(Stats::default()))
    }

    /// Runs the job, updating `stats` as it goes (for progress reports;
    /// [`Stats::request_stop`] ends it early).
    pub fn run_with(self, stats: Arc<Stats>) -> Result<Summary, JobError> {
        Ok(tidemark_engine::run(
            self.source,
            self.config,
            self.parallelism,
            self.sinks,
            stats,
        )?)
    }
}

/// Builds a [`Job`].
///
/// Outputs are [`Target`](tidemark_engine::Target)s (JSON lines to a file, standard output, a
/// buffer) or any [`Sink`]: [`results_sink`](JobBuilder::results_sink),
/// [`late_sink`](JobBuilder::late_sink),
/// [`dead_letter_sink`](JobBuilder::dead_letter_sink). Choose the
/// aggregator with [`aggregator`](JobBuilder::aggregator) (or the built-ins
/// with [`aggs`](JobBuilder::aggs)) before a typed result sink.
pub struct JobBuilder<A: JobAggregator = Metrics> {
    source: Option<Arc<dyn Source>>,
    window: Option<WindowSpec>,
    policy: Policy,
    aggregator: A,
    parallelism: Parallelism,
    sinks: Sinks<A::Output>,
    start: BTreeMap<u32, Position>,
    initial_state: Option<Arc<StateSnapshot<A>>>,
    checkpoint: Option<CheckpointConfig>,
    emit_from: Option<EmitFrom>,
    replay_decisions: Option<PathBuf>,
    stats_log: Option<tidemark_engine::StatsLog>,
    /// The engine's options, set by the setters below.
    options: Options,
    /// Tables and enrichment steps.
    tables: Tables,
    problem: Option<String>,
}

impl Default for JobBuilder {
    fn default() -> Self {
        JobBuilder {
            source: None,
            window: None,
            policy: Policy::default(),
            aggregator: Metrics::new(&[AggKind::Count, AggKind::Sum]),
            parallelism: Parallelism::Workers(1),
            sinks: Sinks::default(),
            start: Default::default(),
            initial_state: None,
            checkpoint: None,
            emit_from: None,
            replay_decisions: None,
            stats_log: None,
            options: Options::default(),
            tables: Tables::default(),
            problem: None,
        }
    }
}

impl JobBuilder {
    /// The built-in aggregations, in output order.
    pub fn aggs(mut self, aggs: &[AggKind]) -> Self {
        self.aggregator = Metrics::new(aggs);
        self
    }
}

impl<A: JobAggregator> JobBuilder<A> {
    /// Aggregates with `aggregator` instead (any [`JobAggregator`], e.g. a
    /// user aggregation wrapped in [`Named`](tidemark_engine::Named)); the
    /// output fields are the aggregator's. Result and state set before for
    /// another aggregator's type cannot carry over: set a typed result sink
    /// and an initial state after this call (a result [`Target`](tidemark_engine::Target) carries
    /// over).
    pub fn aggregator<B: JobAggregator>(self, aggregator: B) -> JobBuilder<B> {
        let mut problem = self.problem;
        let results = match self.sinks.results {
            Output::Target(t) => Output::Target(t),
            Output::Sink(_) => {
                problem.get_or_insert_with(|| {
                    "the result sink was set before the aggregator; set it after `aggregator`"
                        .into()
                });
                Output::default()
            }
        };
        if self.initial_state.is_some() {
            problem.get_or_insert_with(|| {
                "the initial state was set before the aggregator; set it after `aggregator`".into()
            });
        }
        JobBuilder {
            source: self.source,
            window: self.window,
            policy: self.policy,
            aggregator,
            parallelism: self.parallelism,
            sinks: Sinks {
                results,
                late: self.sinks.late,
                dead_letters: self.sinks.dead_letters,
            },
            start: self.start,
            initial_state: None,
            checkpoint: self.checkpoint,
            emit_from: self.emit_from,
            replay_decisions: self.replay_decisions,
            stats_log: self.stats_log,
            options: self.options,
            tables: self.tables,
            problem,
        }
    }
    /// Adds a table: a keyed changelog read from its own source, whose
    /// versions [`enrich`](JobBuilder::enrich) steps attach to the stream's
    /// records as of their event time.
    pub fn table(mut self, table: TableDef) -> Self {
        self.tables.tables.push(table);
        self
    }
    /// Adds an enrichment step: each stream record is joined with the
    /// version of a table valid at its event time. The attached fields are
    /// record fields the aggregations may read and the key may name
    /// ([`key_fields`](JobBuilder::key_fields)).
    pub fn enrich(mut self, step: EnrichDef) -> Self {
        self.tables.enrich.push(step);
        self
    }
    /// With tables: the names of the named fields the stream's source
    /// decodes, in order (default:
    /// [`Tables::decode_fields`](tidemark_engine::table::Tables::decode_fields)
    /// of the aggregations' fields and the key).
    pub fn stream_fields<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.tables.stream_fields = names.into_iter().map(Into::into).collect();
        self
    }
    /// With tables: the fields the window key is made of, when it names a
    /// field a table attaches (`["country"]`); the key is then made after
    /// the join. By default the key is the stream source's own.
    pub fn key_fields<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.tables.key_fields = names.into_iter().map(Into::into).collect();
        self
    }
    /// Reads from `source`.
    pub fn source(mut self, source: Arc<dyn Source>) -> Self {
        self.source = Some(source);
        self
    }
    /// Windows records with `window`.
    pub fn window(mut self, window: WindowSpec) -> Self {
        self.window = Some(window);
        self
    }
    /// Watermark delay `D` (ms, or a `Duration`).
    pub fn delay(mut self, delay: impl IntoMillis) -> Self {
        self.policy.delay = delay.into_millis();
        self
    }
    /// Allowed lateness `L` (ms, or a `Duration`).
    pub fn lateness(mut self, lateness: impl IntoMillis) -> Self {
        self.policy.lateness = lateness.into_millis();
        self
    }
    /// Emit mode.
    pub fn emit(mut self, emit: EmitMode) -> Self {
        self.policy.emit = emit;
        self
    }
    /// Records read from a partition per batch.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.options.batch_size = n;
        self
    }
    /// What to do with records that cannot be decoded.
    pub fn bad_records(mut self, policy: BadRecords) -> Self {
        self.options.bad_records = policy;
        self
    }
    /// Worker threads or cluster layout.
    pub fn parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }
    /// `n` worker threads in this process.
    pub fn workers(self, n: usize) -> Self {
        self.parallelism(Parallelism::Workers(n))
    }
    /// Where result rows go: a [`Target`](tidemark_engine::Target) (JSON lines) or an
    /// [`Output::Sink`].
    pub fn results(mut self, output: impl Into<Output<Row<A::Output>>>) -> Self {
        self.sinks.results = output.into();
        self
    }
    /// Result rows go to `sink`, typed, in canonical order.
    pub fn results_sink(self, sink: impl Sink<Row<A::Output>> + 'static) -> Self {
        self.results(Output::Sink(Box::new(sink)))
    }
    /// Where late records go.
    pub fn late(mut self, output: impl Into<Output<LateRecord>>) -> Self {
        self.sinks.late = output.into();
        self
    }
    /// Late records go to `sink`.
    pub fn late_sink(self, sink: impl Sink<LateRecord> + 'static) -> Self {
        self.late(Output::Sink(Box::new(sink)))
    }
    /// Where dead letters go.
    pub fn dead_letters(mut self, output: impl Into<Output<DeadLetter>>) -> Self {
        self.sinks.dead_letters = output.into();
        self
    }
    /// Dead letters go to `sink`.
    pub fn dead_letter_sink(self, sink: impl Sink<DeadLetter> + 'static) -> Self {
        self.dead_letters(Output::Sink(Box::new(sink)))
    }
    /// For followed inputs: release a partition that has been caught up
    /// this long from holding the watermark (results then depend on timing).
    pub fn idle_after(mut self, after: impl IntoMillis) -> Self {
        self.options.idle_after = Some(duration(after));
        self
    }
    /// Guards against far-future timestamps: a record more than `skew`
    /// (ms, or a `Duration`) ahead of its partition's stream time is a dead
    /// letter ("future timestamp") and does not advance stream time; see
    /// [`Options::max_future_skew`].
    pub fn max_future_skew(mut self, skew: impl IntoMillis) -> Self {
        self.options.max_future_skew = Some(skew.into_millis());
        self
    }
    /// In cluster mode ([`Parallelism::Cluster`]): how long each process
    /// waits for every other to be connected before the run fails with
    /// [`EngineError::Unreachable`] naming those it did not reach; see
    /// [`Options::connect_timeout`] (default
    /// [`DEFAULT_CONNECT_TIMEOUT`](tidemark_engine::DEFAULT_CONNECT_TIMEOUT)).
    pub fn connect_timeout(mut self, timeout: impl IntoMillis) -> Self {
        self.options.connect_timeout = duration(timeout);
        self
    }
    /// How often the outputs are committed (made visible) while the job
    /// runs; see [`Options::commit_interval`].
    pub fn commit_interval(mut self, every: impl IntoMillis) -> Self {
        self.options.commit_interval = duration(every);
        self
    }
    /// Sets any of the engine's [`Options`] (those without a setter of
    /// their own too).
    ///
    /// ```
    /// use tidemark::prelude::*;
    /// use tidemark::sources::MemorySource;
    /// use std::sync::Arc;
    ///
    /// let job = Job::builder()
    ///     .source(Arc::new(MemorySource::new(vec![Vec::new()])))
    ///     .window(WindowSpec::tumbling(1_000))
    ///     .options(|o| {
    ///         o.batch_size = 256;
    ///         o.sample_state = Some(60_000);
    ///     })
    ///     .build()?;
    /// assert_eq!((job.config().batch_size, job.config().sample_state), (256, Some(60_000)));
    /// # Ok::<(), tidemark::JobError>(())
    /// ```
    pub fn options(mut self, set: impl FnOnce(&mut Options)) -> Self {
        set(&mut self.options);
        self
    }
    /// Starts partitions at these positions (next offset and stream time);
    /// partitions not listed start at offset 0.
    pub fn start_at(mut self, positions: BTreeMap<u32, Position>) -> Self {
        self.start = positions;
        self
    }
    /// Resumes from this window state: the state after every record before
    /// the `start_at` positions (its spec and policy must be the job's).
    pub fn initial_state(mut self, state: Arc<StateSnapshot<A>>) -> Self {
        self.initial_state = Some(state);
        self
    }

    /// Takes checkpoints, and resumes from the newest valid one; see
    /// [`CheckpointConfig`]. When its `input` identity is left empty, the
    /// source's description and partitions fill it.
    pub fn checkpoint(mut self, checkpoint: CheckpointConfig) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// Takes checkpoints in `dir` with the defaults of
    /// [`CheckpointConfig::new`] (every 10 s of event time, the newest 3
    /// kept), and resumes from the newest valid one there: the same job
    /// run again goes on where the last run stopped, its file outputs cut
    /// back to the checkpoint and appended to.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tidemark::prelude::*;
    /// use tidemark::sources::{MemorySource, Record, Value};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = || {
    ///     let rec = |offset, event_time| Record {
    ///         partition: 0, offset, key: "k".into(), event_time, value: Value::Int(1),
    ///         fields: Vec::new(),
    ///     };
    ///     Arc::new(MemorySource::new(vec![(0..100).map(|i| rec(i, i as i64 * 100)).collect()]))
    /// };
    /// let job = || {
    ///     Job::builder()
    ///         .source(log())
    ///         .window(WindowSpec::tumbling(Duration::from_secs(1)))
    ///         .results(Target::File(dir.path().join("rows.jsonl")))
    ///         .checkpoint_dir(dir.path().join("checkpoints"))
    ///         .build()
    /// };
    /// let first = job()?.run()?;
    /// assert_eq!((first.records, first.already_complete), (100, false));
    /// // Run again: its checkpoint says the job is complete, nothing to do.
    /// let again = job()?.run()?;
    /// assert!(again.already_complete);
    /// assert_eq!(std::fs::read_to_string(dir.path().join("rows.jsonl"))?.lines().count(), 10);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint_dir(self, dir: impl Into<PathBuf>) -> Self {
        self.checkpoint(CheckpointConfig::new(dir))
    }

    /// Reprocesses: writes only the output from this point on; see
    /// [`EmitFrom`].
    pub fn emit_from(mut self, from: EmitFrom) -> Self {
        self.emit_from = Some(from);
        self
    }

    /// Replays the time decisions a followed run recorded in checkpoint
    /// directory `dir`; see
    /// [`EngineConfig::replay_decisions`](tidemark_engine::EngineConfig::replay_decisions).
    pub fn replay_decisions(mut self, dir: PathBuf) -> Self {
        self.replay_decisions = Some(dir);
        self
    }

    /// Measures the window state's peak (open windows and encoded bytes,
    /// in the [`Summary`]) every `every` ms of
    /// stream time; see
    /// [`Options::sample_state`].
    pub fn sample_state(mut self, every: impl IntoMillis) -> Self {
        self.options.sample_state = Some(every.into_millis());
        self
    }

    /// Writes a stats log; see
    /// [`EngineConfig::stats_log`](tidemark_engine::EngineConfig::stats_log).
    pub fn stats_log(mut self, log: tidemark_engine::StatsLog) -> Self {
        self.stats_log = Some(log);
        self
    }

    /// Writes window bounds in the JSON outputs as `times` says (default
    /// epoch ms).
    pub fn output_times(mut self, times: tidemark_engine::TimeText) -> Self {
        self.options.output_times = times;
        self
    }

    /// Validates and builds the job.
    pub fn build(self) -> Result<Job<A>, JobError> {
        if let Some(problem) = self.problem {
            return Err(SpecError(problem).into());
        }
        let source = self
            .source
            .ok_or_else(|| SpecError("a job needs an input".into()))?;
        let window = self
            .window
            .ok_or_else(|| SpecError("a job needs a window".into()))?;
        let mut config = EngineConfig::with_aggregator(window, self.policy, self.aggregator);
        config.options = self.options;
        config.start = self.start;
        config.initial_state = self.initial_state;
        if let Some(mut checkpoint) = self.checkpoint {
            if checkpoint.input.partitions.is_empty() {
                let partitions = source.partitions().map_err(EngineError::from)?;
                checkpoint.input.partitions = partitions.iter().map(u32::to_string).collect();
            }
            if checkpoint.input.paths.is_empty() {
                checkpoint.input.paths = vec![source.describe()];
            }
            config.checkpoint = Some(checkpoint);
        }
        config.emit_from = self.emit_from;
        config.replay_decisions = self.replay_decisions;
        config.stats_log = self.stats_log;
        let mut tables = self.tables;
        if !tables.is_empty() && tables.stream_fields.is_empty() {
            let record_fields = config.aggregator.record_fields();
            tables.stream_fields = tables.decode_fields(&record_fields, &tables.key_fields).0;
        }
        config.tables = tables;
        config.validate()?;
        Ok(Job {
            source,
            config,
            parallelism: self.parallelism,
            sinks: self.sinks,
        })
    }
}

/// A job builder whose aggregator is one of the two a job file or the
/// command line can ask for: the built-in aggregations over values, or
/// aggregations over named fields ([`JobSpec::to_any_builder`](crate::JobSpec::to_any_builder)).
pub enum AnyJobBuilder {
    /// `count`, `sum`, `min`, `max`, `mean` over the record's value.
    Values(JobBuilder<Metrics>),
    /// Aggregations over named fields.
    Fields(JobBuilder<tidemark_windows::Aggs>),
}

/// A built [`AnyJobBuilder`].
pub enum AnyJob {
    /// See [`AnyJobBuilder::Values`].
    Values(Job<Metrics>),
    /// See [`AnyJobBuilder::Fields`].
    Fields(Job<tidemark_windows::Aggs>),
}

impl AnyJobBuilder {
    /// See [`JobBuilder::parallelism`].
    pub fn parallelism(self, parallelism: Parallelism) -> Self {
        match self {
            AnyJobBuilder::Values(b) => AnyJobBuilder::Values(b.parallelism(parallelism)),
            AnyJobBuilder::Fields(b) => AnyJobBuilder::Fields(b.parallelism(parallelism)),
        }
    }

    /// See [`JobBuilder::dead_letter_sink`].
    pub fn dead_letter_sink(self, sink: impl Sink<DeadLetter> + 'static) -> Self {
        match self {
            AnyJobBuilder::Values(b) => AnyJobBuilder::Values(b.dead_letter_sink(sink)),
            AnyJobBuilder::Fields(b) => AnyJobBuilder::Fields(b.dead_letter_sink(sink)),
        }
    }

    /// See [`JobBuilder::build`].
    pub fn build(self) -> Result<AnyJob, JobError> {
        Ok(match self {
            AnyJobBuilder::Values(b) => AnyJob::Values(b.build()?),
            AnyJobBuilder::Fields(b) => AnyJob::Fields(b.build()?),
        })
    }
}

impl AnyJob {
    /// See [`Job::run_with`].
    pub fn run_with(self, stats: Arc<Stats>) -> Result<Summary, JobError> {
        match self {
            AnyJob::Values(job) => job.run_with(stats),
            AnyJob::Fields(job) => job.run_with(stats),
        }
    }

    /// See [`Job::run`].
    pub fn run(self) -> Result<Summary, JobError> {
        self.run_with(Arc::new(Stats::default()))
    }
}
