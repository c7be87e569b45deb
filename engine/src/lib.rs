//! The Timely dataflow that ties sources to window state: ingest, event-order
//! buffering, the window operator and the sinks.
//!
//! [`run`] executes one job on one or more Timely workers (threads, or
//! processes in Timely's cluster mode) and delivers three outputs — result
//! [`Row`]s, [`LateRecord`]s and dead letters — to [`Sink`]s in a canonical
//! order, so that what is written does not depend on the number of workers,
//! the batch sizes or the timing. [`windowed`] builds the same windowing
//! operators on a Timely stream of the caller's own, and [`changelog`] views
//! the results as a differential-dataflow collection. See [`dataflow`] for
//! how stream time travels as the Timely frontier.
//!
//! Any [`JobAggregator`] runs through the engine; the built-in aggregations
//! are [`Metrics`](tidemark_windows::Metrics). The engine's options are
//! declared once, in [`options`]; a sink that recovers by a position of its
//! own keeps it in checkpoints as a [`SinkState`].
//!
//! Inside, a run is a plan (`plan`): its input, window and outputs,
//! decided once from the configuration and the checkpoint resumed from,
//! then built on every worker as operators (`operators`: ingest, window,
//! sink), each from its own settings, that meet only through their
//! streams.
//!
//! ```
//! use std::sync::Arc;
//! use tidemark_engine::{run, Collect, EngineConfig, Parallelism, Sinks, Output, Stats};
//! use tidemark_sources::{MemorySource, Record, Value};
//! use tidemark_windows::{AggKind, Policy, WindowSpec};
//!
//! let rec = |offset, key: &str, event_time| Record {
//!     partition: 0, offset, key: key.into(), event_time, value: Value::Int(1),
//!     fields: Vec::new(),
//! };
//! let log = MemorySource::new(vec![vec![rec(0, "a", 100), rec(1, "a", 900), rec(2, "a", 1_500)]]);
//! let config = EngineConfig::new(WindowSpec::tumbling(1_000), Policy::default(), vec![AggKind::Count]);
//! let (sink, rows) = Collect::new();
//! let sinks = Sinks { results: Output::Sink(Box::new(sink)), ..Sinks::default() };
//! run(Arc::new(log), config, Parallelism::Workers(2), sinks, Arc::new(Stats::default())).unwrap();
//! let rows = rows.lock().unwrap();
//! assert_eq!(rows.len(), 2);
//! assert_eq!((rows[0].window.start, rows[0].value.count), (0, Some(2)));
//! ```
#![warn(missing_docs)]

pub mod aggregator;
pub mod checkpoint;
mod cluster;
pub mod collection;
pub mod config;
pub mod counts;
pub mod dataflow;
pub mod error;
pub mod event;
mod json_text;
mod on_stream;
mod operators;
pub mod options;
mod order;
mod plan;
mod prepare;
pub mod sink;
pub mod stats;
pub mod table;
pub mod typed;

pub use aggregator::{JobAcc, JobAggregator, JobOutput, Named};
pub use checkpoint::{Checkpoint, CheckpointDir, CheckpointError, CheckpointId, JobFingerprint};
pub use collection::{changelog, Changelog};
pub use config::{
    BadRecords, CheckpointConfig, CheckpointEvery, EmitFrom, EngineConfig, Parallelism, Position,
    StateSnapshot, StatsLog, DEFAULT_COMMIT_INTERVAL, DEFAULT_CONNECT_TIMEOUT,
};
pub use counts::{Counts, LiveCounts};
pub use dataflow::run;
pub use error::{EngineError, Result};
pub use event::{Event, LateReason, LateRecord, Row};
pub use on_stream::{windowed, Windowed};
pub use options::{Group, OptionDoc, Options, OPTIONS};
pub use sink::{
    channel, format_dead, format_late, format_row, Callback, Collect, CsvRows, Discard, Encode,
    Frontier, JsonLines, Output, Outputs, Receiver, RowJson, Sender, Sink, SinkState, Sinks,
    Target, TimeText,
};
pub use stats::{
    LastCheckpoint, OldestOpenWindow, PartitionSnapshot, PartitionState, Stats, StatsSnapshot,
    Summary,
};
pub use typed::Typed;

/// The Timely Dataflow this engine is built on (the pinned version), for
/// [`windowed`] inside a worker of one's own.
pub use timely;

/// The differential dataflow of [`changelog`] (the version built on the
/// pinned timely).
pub use differential_dataflow;
