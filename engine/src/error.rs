//! Errors of the engine.

use std::sync::Arc;

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
    #[error("bad record {}: {reason}", record_location(*partition, *offset, file.as_deref(), *line))]
    BadRecord {
        /// Partition of the record.
        partition: u32,
        /// Offset of the record.
        offset: u64,
        /// The file it was read from, when the source names one.
        file: Option<Arc<str>>,
        /// The 1-based line of that file where it starts, when known.
        line: Option<u64>,
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
    /// An invalid job option, or (in cluster mode) processes started with
    /// different jobs.
    #[error("{0}")]
    Config(String),
    /// A process of the cluster went away while the job ran (it was killed,
    /// its machine or the network failed). The outputs hold what the
    /// completed frontiers held.
    #[error("lost cluster process {process} ({address}): {reason}")]
    PeerLost {
        /// The lost process's index.
        process: usize,
        /// Its address in the host list.
        address: String,
        /// What the connection reported.
        reason: String,
    },
    /// Not every process of the cluster was connected within
    /// [`Options::connect_timeout`](crate::Options::connect_timeout).
    #[error("cluster processes not connected within {timeout:?}: {}", .peers.join("; "))]
    Unreachable {
        /// The processes not connected: index, address and the last
        /// failure, e.g. `process 1 (10.0.0.2:2101): connection refused`.
        peers: Vec<String>,
        /// How long this process waited.
        timeout: std::time::Duration,
    },
    /// Checkpoints could not be written or read, or the job differs from
    /// the one that took the checkpoint it would resume from.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The cluster could not be set up: this process's listen address,
    /// or a peer that does not speak the protocol.
    #[error("cluster: {0}")]
    Cluster(String),
}

/// `at FILE:LINE (partition P, offset O)`, or `in partition P at offset O`
/// when the file or line is not known.
fn record_location(partition: u32, offset: u64, file: Option<&str>, line: Option<u64>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => {
            format!("at {file}:{line} (partition {partition}, offset {offset})")
        }
        _ => format!("in partition {partition} at offset {offset}"),
    }
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_record_names_its_file_and_line_when_known() {
        let bad = |file: Option<&str>, line| EngineError::BadRecord {
            partition: 1,
            offset: 7,
            file: file.map(Arc::from),
            line,
            reason: "empty line".into(),
        };
        assert_eq!(
            bad(Some("in/p.jsonl"), Some(9)).to_string(),
            "bad record at in/p.jsonl:9 (partition 1, offset 7): empty line"
        );
        assert_eq!(
            bad(None, None).to_string(),
            "bad record in partition 1 at offset 7: empty line"
        );
    }
}
