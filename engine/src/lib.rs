//! The Timely dataflow that ties sources to window state: ingest, event-order
//! buffering, the window operator and the sinks.
//!
//! [`run`] executes one job on one or more Timely workers (threads, or
//! processes in Timely's cluster mode) and writes three outputs — results,
//! late records and dead letters — in a canonical order, so that the bytes
//! written do not depend on the number of workers, the batch sizes or the
//! timing. See [`dataflow`] for how stream time travels as the Timely
//! frontier.
#![warn(missing_docs)]

pub mod dataflow;
pub mod error;
pub mod output;
pub mod stats;

pub use dataflow::{run, EngineConfig, Event, Parallelism, Position, StateSnapshot};
pub use error::{EngineError, Result};
pub use output::{format_row, BadRecords, Outputs, Target};
pub use stats::{Stats, Summary};
