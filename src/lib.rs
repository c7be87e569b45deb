//! tidemark: deterministic event-time windowing on Timely Dataflow.
//!
//! The same logs and the same job give the same output, whatever the number
//! of workers or processes, the batch sizes, or the timing. This facade
//! re-exports the workspace crates and offers the [`Job`] builder that the
//! `tidemark` command line uses too.
//!
//! A job over an in-memory log with two partitions, on two workers, its
//! result rows delivered typed, in canonical order:
//!
//! ```
//! use std::sync::Arc;
//! use tidemark::prelude::*;
//! use tidemark::sources::{MemorySource, Record, Value};
//!
//! let rec = |key: &str, event_time, v| Record {
//!     partition: 0, offset: 0, key: key.into(), event_time, value: Value::Int(v),
//!     fields: Vec::new(),
//! };
//! let log = MemorySource::new(vec![
//!     vec![rec("a", 100, 1), rec("a", 1_300, 4)],
//!     vec![rec("a", 700, 2), rec("b", 1_200, 5)],
//! ]);
//! let (rows, collected) = Collect::new();
//! let summary = Job::builder()
//!     .source(Arc::new(log))
//!     .window(WindowSpec::tumbling(1_000))
//!     .aggs(&[AggKind::Count, AggKind::Sum])
//!     .workers(2)
//!     .results_sink(rows)
//!     .build()?
//!     .run()?;
//! let rows = collected.lock().unwrap();
//! let first = &rows[0];
//! assert_eq!((first.key.as_str(), first.window.start, first.window.end), ("a", 0, 1_000));
//! assert_eq!(first.value.count, Some(2));
//! assert_eq!(first.value.sum, Some(SumValue::Int(3)));
//! assert_eq!(first.kind, ChangeKind::Final);
//! assert_eq!(rows.len(), 3);
//! assert_eq!(summary.records, 4);
//! # Ok::<(), tidemark::JobError>(())
//! ```
//!
//! Rows can also go to JSON lines or CSV ([`engine::Target`],
//! [`engine::CsvRows`]), a closure or a channel ([`engine::Callback`],
//! [`engine::channel`]); any [`windows::Aggregator`] of record values
//! (`Input = Number`, see [`engine::JobAggregator`]) runs through
//! [`JobBuilder::aggregator`] (see [`engine::Named`]);
//! [`engine::windowed`] builds the operators inside a Timely worker of
//! one's own, and [`engine::changelog`] views the results as a
//! differential-dataflow collection.
//!
//! - [`windows`]: pure window semantics (vocabulary, state machine,
//!   reference model);
//! - [`sources`]: partitioned, offset-addressed logs;
//! - [`engine`]: the Timely dataflow.
#![warn(missing_docs)]

/// Throughput measurement shared by `tidemark bench`, the criterion
/// benches and the Nexmark example; not part of the library's API.
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod harness;
pub mod job;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod spec;
#[cfg(feature = "tradeoff")]
pub mod tradeoff;

pub use tidemark_engine as engine;
pub use tidemark_sources as sources;
pub use tidemark_windows as windows;

pub use job::{AnyJob, AnyJobBuilder, Job, JobBuilder, JobError};
pub use spec::JobSpec;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The serde this workspace is built with, for deriving the
/// `Serialize`/`Deserialize` a [`engine::JobAggregator`]'s accumulator and
/// output need.
pub use serde;

/// The names most programs need: building and running a job, its inputs,
/// outputs, aggregations and checkpoints, and `Duration` for its spans.
pub mod prelude {
    pub use crate::engine::{
        BadRecords, Callback, CheckpointConfig, Collect, JobAggregator, LateRecord, Named,
        Parallelism, Row, Sink, Stats, Summary, Target,
    };
    pub use crate::sources::{ChannelSource, Value};
    pub use crate::windows::time::IntoMillis;
    pub use crate::windows::{
        AggKind, Aggregator, ChangeKind, EmitMode, MetricValues, Number, SumValue, WindowSpec,
    };
    pub use crate::{Job, JobBuilder, JobSpec};
    pub use std::time::Duration;
}
