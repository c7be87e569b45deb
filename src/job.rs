//! The job: what to read, how to window and aggregate it, where to write —
//! as a builder for Rust programs and as a [`JobSpec`](crate::JobSpec) for job files and
//! the command line.

use std::path::PathBuf;
use std::sync::Arc;

use tidemark_engine::{
    BadRecords, EngineConfig, EngineError, Outputs, Parallelism, Position, StateSnapshot, Stats,
    Summary, Target,
};
use tidemark_sources::Source;
use tidemark_windows::{AggKind, EmitMode, Millis, Policy, WindowSpec};

use crate::spec::SpecError;

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

/// A windowed job, ready to run.
///
/// ```
/// use std::sync::Arc;
/// use tidemark::{Job, sources::{MemorySource, Record, Value}, windows::WindowSpec, engine::Target};
///
/// let rec = |key: &str, event_time, v| Record {
///     partition: 0, offset: 0, key: key.into(), event_time, value: Value::Int(v),
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
pub struct Job {
    source: Arc<dyn Source>,
    config: EngineConfig,
    parallelism: Parallelism,
    outputs: Outputs,
}

impl Job {
    /// A builder with defaults: count and sum, delay 0, no allowed
    /// lateness, emit mode `final`, one worker, outputs discarded.
    pub fn builder() -> JobBuilder {
        JobBuilder::default()
    }

    /// The engine configuration.
    pub fn config(&self) -> &EngineConfig {
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

    /// Runs the job, updating `stats` as it goes (for progress reports).
    pub fn run_with(self, stats: Arc<Stats>) -> Result<Summary, JobError> {
        Ok(tidemark_engine::run(
            self.source,
            self.config,
            self.parallelism,
            self.outputs,
            stats,
        )?)
    }
}

/// Builds a [`Job`].
pub struct JobBuilder {
    source: Option<Arc<dyn Source>>,
    window: Option<WindowSpec>,
    policy: Policy,
    aggs: Vec<AggKind>,
    batch_size: usize,
    bad_records: BadRecords,
    parallelism: Parallelism,
    outputs: Outputs,
    idle_after: Option<std::time::Duration>,
    start: std::collections::BTreeMap<u32, Position>,
    initial_state: Option<Arc<StateSnapshot>>,
}

impl Default for JobBuilder {
    fn default() -> Self {
        JobBuilder {
            source: None,
            window: None,
            policy: Policy::default(),
            aggs: vec![AggKind::Count, AggKind::Sum],
            batch_size: 1024,
            bad_records: BadRecords::Skip,
            parallelism: Parallelism::Workers(1),
            outputs: Outputs::default(),
            idle_after: None,
            start: Default::default(),
            initial_state: None,
        }
    }
}

impl JobBuilder {
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
    /// Watermark delay `D` in milliseconds.
    pub fn delay(mut self, delay: Millis) -> Self {
        self.policy.delay = delay;
        self
    }
    /// Allowed lateness `L` in milliseconds.
    pub fn lateness(mut self, lateness: Millis) -> Self {
        self.policy.lateness = lateness;
        self
    }
    /// Emit mode.
    pub fn emit(mut self, emit: EmitMode) -> Self {
        self.policy.emit = emit;
        self
    }
    /// Aggregations, in output order.
    pub fn aggs(mut self, aggs: &[AggKind]) -> Self {
        self.aggs = aggs.to_vec();
        self
    }
    /// Records read from a partition per batch.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// What to do with records that cannot be decoded.
    pub fn bad_records(mut self, policy: BadRecords) -> Self {
        self.bad_records = policy;
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
    /// Where result rows go.
    pub fn results(mut self, target: Target) -> Self {
        self.outputs.results = target;
        self
    }
    /// Where late records go.
    pub fn late(mut self, target: Target) -> Self {
        self.outputs.late = target;
        self
    }
    /// For followed inputs: release a partition that has been caught up
    /// this long from holding the watermark (results then depend on timing).
    pub fn idle_after(mut self, after: std::time::Duration) -> Self {
        self.idle_after = Some(after);
        self
    }
    /// Starts partitions at these positions (next offset and stream time);
    /// partitions not listed start at offset 0.
    pub fn start_at(mut self, positions: std::collections::BTreeMap<u32, Position>) -> Self {
        self.start = positions;
        self
    }
    /// Resumes from this window state: the state after every record before
    /// the `start_at` positions (its spec and policy must be the job's).
    pub fn initial_state(mut self, state: Arc<StateSnapshot>) -> Self {
        self.initial_state = Some(state);
        self
    }
    /// Where dead letters go.
    pub fn dead_letters(mut self, target: Target) -> Self {
        self.outputs.dead_letters = target;
        self
    }

    /// Validates and builds the job.
    pub fn build(self) -> Result<Job, JobError> {
        let source = self
            .source
            .ok_or_else(|| SpecError("a job needs an input".into()))?;
        let window = self
            .window
            .ok_or_else(|| SpecError("a job needs a window".into()))?;
        let mut config = EngineConfig::new(window, self.policy, self.aggs);
        config.batch_size = self.batch_size;
        config.bad_records = self.bad_records;
        config.idle_after = self.idle_after;
        config.start = self.start;
        config.initial_state = self.initial_state;
        config.validate()?;
        Ok(Job {
            source,
            config,
            parallelism: self.parallelism,
            outputs: self.outputs,
        })
    }
}
