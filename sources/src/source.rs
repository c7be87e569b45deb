//! The two traits every source implements, [`Source`] and
//! [`PartitionReader`], and the error type for failures that are not bad
//! input ([`SourceError`]).

use std::io;
use std::path::PathBuf;

use crate::record::{Decoded, Offset, PartitionId, ReadStatus};

/// A set of partitions that can each be read from any offset.
///
/// Contract: `partitions` returns `0..n` in ascending order and the same
/// list every time it is called on one source; opening the same partition at
/// the same offset must yield the same records, in the same order, every
/// time. The engine's determinism (same logs, same output) rests on this.
/// Both traits are dyn-compatible: the engine holds `Arc<dyn Source>`.
pub trait Source: Send + Sync {
    /// The partitions of this source, `0..n` ascending.
    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError>;

    /// Opens `partition` so that the first item read is the one at offset `from`.
    ///
    /// Opening must not decode the records before `from`. For a bounded
    /// input, `from` may equal the partition's length (the reader is then
    /// at its end); a larger `from` is [`SourceError::OffsetOutOfRange`].
    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError>;
}

/// Reads one partition in offset order.
///
/// Undecodable input is returned as dead letters in `out`, at its offset,
/// never as an `Err`: an `Err` means the partition itself could not be read
/// (an I/O failure), and the reader should not be used afterwards.
pub trait PartitionReader: Send {
    /// Appends up to `max` decoded records (records or dead letters, in
    /// offset order) to `out`.
    ///
    /// Returns [`ReadStatus::More`] when exactly `max` items were appended
    /// and more may follow; [`ReadStatus::CaughtUp`] or [`ReadStatus::End`]
    /// may come with fewer items appended in the same call. `max == 0`
    /// appends nothing and returns `More`.
    fn read(&mut self, max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError>;

    /// The offset of the next record this reader would return.
    fn position(&self) -> Offset;
}

/// A failure to reach or read the input (bad input is a
/// [`DeadLetter`](crate::DeadLetter), not an error).
#[derive(thiserror::Error, Debug)]
pub enum SourceError {
    /// The input path does not exist or cannot be inspected.
    #[error("could not open input \"{}\"", path.display())]
    OpenInput {
        /// The configured input path.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// Listing the partition directory failed.
    #[error("could not list partition directory \"{}\"", path.display())]
    ListDirectory {
        /// The directory.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// Opening a partition file failed.
    #[error("could not open partition file \"{}\"", path.display())]
    OpenPartition {
        /// The partition file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// Reading a partition file failed.
    #[error("could not read partition file \"{}\"", path.display())]
    ReadPartition {
        /// The partition file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// Writing a partition file failed (generator output).
    #[error("could not write partition file \"{}\"", path.display())]
    WritePartition {
        /// The partition file.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// `open` was asked for a partition the source does not have.
    #[error("unknown partition {partition}: the source has {count} partitions")]
    UnknownPartition {
        /// The requested partition.
        partition: PartitionId,
        /// How many partitions the source has.
        count: u32,
    },
    /// `open` was asked for an offset past the end of a bounded partition.
    #[error("offset {offset} is past the end of partition {partition} ({end} records)")]
    OffsetOutOfRange {
        /// The partition.
        partition: PartitionId,
        /// The requested offset.
        offset: Offset,
        /// The partition's length.
        end: Offset,
    },
    /// The source configuration is not usable.
    #[error("invalid source configuration: {0}")]
    InvalidConfig(String),
}
