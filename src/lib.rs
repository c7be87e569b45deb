//! tidemark: deterministic event-time windowing on Timely Dataflow.
//!
//! This facade re-exports the workspace crates.
#![warn(missing_docs)]

pub use tidemark_engine as engine;
pub use tidemark_sources as sources;
pub use tidemark_windows as windows;
