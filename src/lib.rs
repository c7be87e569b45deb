//! tidemark: deterministic event-time windowing on Timely Dataflow.
//!
//! The same logs and the same job give the same output, whatever the number
//! of workers or processes, the batch sizes, or the timing. This facade
//! re-exports the workspace crates and offers the [`Job`] builder that the
//! `tidemark` command line uses too.
//!
//! - [`windows`]: pure window semantics (vocabulary, state machine,
//!   reference model);
//! - [`sources`]: partitioned, offset-addressed logs;
//! - [`engine`]: the Timely dataflow.
#![warn(missing_docs)]

pub mod bench;
pub mod job;
pub mod spec;

pub use tidemark_engine as engine;
pub use tidemark_sources as sources;
pub use tidemark_windows as windows;

pub use job::{Job, JobBuilder, JobError};
pub use spec::JobSpec;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The names most programs need.
pub mod prelude {
    pub use crate::engine::{BadRecords, Parallelism, Summary, Target};
    pub use crate::windows::{AggKind, EmitMode, WindowSpec};
    pub use crate::{Job, JobBuilder, JobSpec};
}
