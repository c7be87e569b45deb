//! Errors of the engine.

use tidemark_sources::SourceError;
use tidemark_windows::WindowError;

/// What can stop a job.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The input could not be listed, opened or read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The window specification or policy is invalid.
    #[error("invalid job: {0}")]
    Window(#[from] WindowError),
    /// A record could not be decoded and the job was asked to stop on bad
    /// records.
    #[error("bad record in partition {partition} at offset {offset}: {reason}")]
    BadRecord {
        /// Partition of the record.
        partition: u32,
        /// Offset of the record.
        offset: u64,
        /// Why it could not be decoded.
        reason: String,
    },
    /// An output could not be written.
    #[error("could not write {what} \"{path}\"")]
    Output {
        /// Which output.
        what: &'static str,
        /// Where.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The Timely runtime failed to start (for example, a cluster peer could
    /// not be reached).
    #[error("could not start the dataflow: {0}")]
    Runtime(String),
    /// A worker thread panicked.
    #[error("a worker failed: {0}")]
    Worker(String),
    /// An invalid job option.
    #[error("{0}")]
    Config(String),
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
