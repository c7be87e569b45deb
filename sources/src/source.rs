//! The two traits every source implements, [`Source`] and
//! [`PartitionReader`], and the error type for failures that are not bad
//! input ([`SourceError`]).
//!
//! # Implementing a source for your own log
//!
//! A source is a fixed set of partitions `0..n`, each an ordered log whose
//! items are addressed by offset. The engine calls [`Source::partitions`]
//! once when the job starts, then [`Source::open`] once per partition (on
//! the worker that owns it, at offset 0 or at the offset a checkpoint
//! recorded), and then calls [`PartitionReader::read`] over and over from
//! that worker's event loop.
//!
//! Three rules make a source correct:
//!
//! 1. **`read` must not block.** It runs on an engine worker thread, which
//!    also runs the windowing for its share of the keys and takes part in
//!    the dataflow's progress protocol: a `read` that waits (for a network
//!    message, a lock held for long, a sleep) stalls every partition on
//!    that worker and, through the global watermark, the whole job. Return
//!    what is available now, up to `max` items, and
//!    [`ReadStatus::CaughtUp`] when there is nothing new; the engine asks
//!    again shortly (about every 10 ms). Do blocking I/O on a thread of your
//!    own and hand the results over, as [`ChannelSource`](crate::ChannelSource)
//!    does.
//! 2. **Determinism.** Opening a partition at an offset must yield the same
//!    items, in the same order, every time, in any process: offsets are
//!    dense (`from`, `from + 1`, …, with no gaps), each item carries its own
//!    partition and offset, and an input that cannot be decoded is a
//!    [`DeadLetter`](crate::DeadLetter) at its offset, never skipped. How
//!    many items one call returns may vary from run to run (the engine's
//!    output does not depend on it); *which* item sits at which offset may
//!    not. The engine's promise, same logs ⇒ same output whatever the
//!    workers, batches, timing or restart offset, rests on this.
//! 3. **Errors are for failures, not bad data.** An `Err` from `read` (the
//!    log cannot be reached) stops the job; bad records are dead letters.
//!
//! A small bounded source over per-partition vectors, readable from any
//! offset:
//!
//! ```
//! use tidemark_sources::{
//!     Decoded, Offset, PartitionId, PartitionReader, ReadStatus, Record, Source, SourceError,
//!     Value,
//! };
//!
//! /// Partition `p` is `events[p]`: (key, event time in ms) pairs.
//! struct VecLog {
//!     events: Vec<Vec<(&'static str, i64)>>,
//! }
//!
//! struct VecLogReader {
//!     events: Vec<(&'static str, i64)>,
//!     partition: PartitionId,
//!     next: Offset,
//! }
//!
//! impl Source for VecLog {
//!     fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
//!         Ok((0..self.events.len() as u32).collect())
//!     }
//!
//!     fn open(
//!         &self,
//!         partition: PartitionId,
//!         from: Offset,
//!     ) -> Result<Box<dyn PartitionReader>, SourceError> {
//!         let events = self.events.get(partition as usize).ok_or(
//!             SourceError::UnknownPartition { partition, count: self.events.len() as u32 },
//!         )?;
//!         let end = events.len() as u64;
//!         if from > end {
//!             return Err(SourceError::OffsetOutOfRange { partition, offset: from, end });
//!         }
//!         Ok(Box::new(VecLogReader { events: events.clone(), partition, next: from }))
//!     }
//! }
//!
//! impl PartitionReader for VecLogReader {
//!     fn read(&mut self, max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError> {
//!         if max == 0 {
//!             return Ok(ReadStatus::More);
//!         }
//!         let start = self.next as usize;
//!         let stop = (start + max).min(self.events.len());
//!         for (i, (key, time)) in self.events[start..stop].iter().enumerate() {
//!             out.push(Ok(Record {
//!                 partition: self.partition,
//!                 offset: (start + i) as u64,
//!                 key: (*key).into(),
//!                 event_time: *time,
//!                 value: Value::Int(1),
//!                 fields: Vec::new(),
//!             }));
//!         }
//!         self.next = stop as u64;
//!         // A live log would return `CaughtUp` here instead, until it has more.
//!         Ok(if stop == self.events.len() { ReadStatus::End } else { ReadStatus::More })
//!     }
//!
//!     fn position(&self) -> Offset {
//!         self.next
//!     }
//! }
//!
//! let log = VecLog { events: vec![vec![("a", 1_000), ("b", 2_000), ("a", 1_500)]] };
//! let mut reader = log.open(0, 1)?;
//! let mut out = Vec::new();
//! assert_eq!(reader.read(8, &mut out)?, ReadStatus::End);
//! assert_eq!(out.len(), 2);
//! assert_eq!(out[0].as_ref().map(|r| (r.offset, r.event_time)), Ok((1, 2_000)));
//! # Ok::<(), SourceError>(())
//! ```

use std::io;
use std::path::PathBuf;

use crate::record::{Decoded, Offset, PartitionId, ReadStatus};

/// A set of partitions that can each be read from any offset.
///
/// Contract: `partitions` returns `0..n` in ascending order and the same
/// list every time it is called on one source; opening the same partition at
/// the same offset must yield the same records, in the same order, every
/// time. The engine's determinism (same logs, same output) rests on this.
/// Both traits are dyn-compatible: the engine holds `Arc<dyn Source>`. See
/// the [module docs](self) for a worked example.
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

    /// What this source reads, in one line: the processes of a cluster
    /// compare it before they run a job together, so two sources that may
    /// yield different records should describe themselves differently.
    /// Called after [`partitions`](Source::partitions); must not fail or
    /// read records. The default is the source's type name.
    fn describe(&self) -> String {
        std::any::type_name::<Self>().to_owned()
    }

    /// A cheap check of the bytes each of the source's files holds now
    /// ([`ContentCheck`]): a checkpoint records them, and a resume refuses
    /// a log rewritten in place under the same names. Empty (the default)
    /// for a source whose content cannot change under it or that has no
    /// files (a topic, the generator, memory).
    fn content_checks(&self) -> Result<Vec<ContentCheck>, SourceError> {
        Ok(Vec::new())
    }

    /// Called once when a job that reads this source has ended — it
    /// completed, stopped, failed, or had nothing to do (its checkpoint
    /// marks it complete) — after its readers are gone. A source that
    /// application code feeds ([`ChannelSource`](crate::ChannelSource))
    /// makes pushes fail from then on, so that nothing waits forever for a
    /// reader that will not come. The default does nothing.
    fn job_ended(&self) {}
}

/// What a checkpoint records of one input file, to tell later whether the
/// file still holds the bytes it held then: its size, and the CRC32 of its
/// first and last [`ContentCheck::SPAN`] bytes at that size. A file that
/// grew (followed, appended to) still passes; one that shrank, or whose
/// beginning or bytes just before that size changed, does not. Cheap
/// (two small reads), so it misses a rewrite that keeps both ends.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContentCheck {
    /// The file.
    pub file: PathBuf,
    /// Its size when checked.
    pub size: u64,
    /// The CRC32 of its first `min(SPAN, size)` bytes.
    pub head: u32,
    /// The CRC32 of its `min(SPAN, size)` bytes before `size`.
    pub tail: u32,
}

impl ContentCheck {
    /// Bytes checked at each end.
    pub const SPAN: u64 = 4096;

    /// The check of `file` as it is now.
    pub fn of(file: &std::path::Path) -> io::Result<ContentCheck> {
        let size = std::fs::metadata(file)?.len();
        Self::at(file, size)
    }

    fn at(file: &std::path::Path, size: u64) -> io::Result<ContentCheck> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(file)?;
        let span = Self::SPAN.min(size);
        let mut buf = vec![0u8; span as usize];
        f.read_exact(&mut buf)?;
        let head = crc32fast::hash(&buf);
        f.seek(SeekFrom::Start(size - span))?;
        f.read_exact(&mut buf)?;
        Ok(ContentCheck {
            file: file.to_owned(),
            size,
            head,
            tail: crc32fast::hash(&buf),
        })
    }

    /// Whether the file still holds what it held when checked: `Err` with
    /// what changed (it is gone, it shrank, its bytes differ).
    pub fn verify(&self) -> Result<(), String> {
        let size = match std::fs::metadata(&self.file) {
            Ok(m) => m.len(),
            Err(e) => return Err(format!("it cannot be read ({e})")),
        };
        if size < self.size {
            return Err(format!(
                "it holds {size} bytes, fewer than the {} it held then",
                self.size
            ));
        }
        let now =
            Self::at(&self.file, self.size).map_err(|e| format!("it cannot be read ({e})"))?;
        if now.head != self.head {
            return Err("its first bytes are not those it held then".into());
        }
        if now.tail != self.tail {
            return Err(format!(
                "its bytes before offset {} are not those it held then",
                self.size
            ));
        }
        Ok(())
    }
}

/// Reads one partition in offset order.
///
/// Undecodable input is returned as dead letters in `out`, at its offset,
/// never as an `Err`: an `Err` means the partition itself could not be read
/// (an I/O failure), and the reader should not be used afterwards.
///
/// `read` runs on an engine worker thread and **must not block**: it
/// returns what is available now and [`ReadStatus::CaughtUp`] when nothing
/// new is there (see the [module docs](self)).
pub trait PartitionReader: Send {
    /// Appends up to `max` decoded records (records or dead letters, in
    /// offset order) to `out`, without waiting for more to arrive.
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
    /// Reading standard input or a pipe into its temporary copy failed
    /// (or the copy could not be made).
    #[error("could not copy input \"{}\" to a temporary file", path.display())]
    Spool {
        /// The input (`<stdin>` for standard input).
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
    /// A followed file shrank below what was already read (it was
    /// truncated or rewritten, not appended to).
    #[error(
        "followed file \"{}\" was truncated: it holds {size} bytes, but {read} bytes of it \
         were already read",
        path.display()
    )]
    FileTruncated {
        /// The file.
        path: PathBuf,
        /// Its size now.
        size: u64,
        /// How many bytes had been read.
        read: u64,
    },
    /// The path of a followed file now names another file (it was deleted
    /// and created again, or another file was moved over it).
    #[error(
        "followed file \"{}\" was replaced: the path now names another file",
        path.display()
    )]
    FileReplaced {
        /// The file.
        path: PathBuf,
    },
    /// A followed file was deleted.
    #[error("followed file \"{}\" was deleted", path.display())]
    FileDeleted {
        /// The file.
        path: PathBuf,
    },
    /// A file matching the partition glob appeared in a followed directory
    /// after the source listed it: the partitions are fixed when the job
    /// starts.
    #[error("new partition file appeared: \"{}\"; restart to include it", path.display())]
    NewPartitionFile {
        /// The new file.
        path: PathBuf,
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
    /// A name in a partition directory matches the partition glob but is
    /// not a file that can be read as a partition.
    #[error("\"{}\" matches the partition glob \"{pattern}\" but {reason}; remove it or narrow --partition-glob", path.display())]
    NotAPartitionFile {
        /// The entry.
        path: PathBuf,
        /// The partition glob.
        pattern: String,
        /// What it is.
        reason: &'static str,
    },
    /// A partition directory holds no file matching the partition glob.
    #[error("no partition files matching \"{pattern}\" in directory \"{}\"", dir.display())]
    NoPartitionFiles {
        /// The directory.
        dir: PathBuf,
        /// The partition glob.
        pattern: String,
    },
    /// [`Format::detect`](crate::Format::detect) found both CSV and
    /// JSON-lines files in a directory.
    #[error(
        "cannot detect the format of directory \"{}\": it holds both json lines (\"{}\") \
         and csv (\"{}\") files; set the format",
        dir.display(), jsonl.display(), csv.display()
    )]
    MixedFormats {
        /// The directory.
        dir: PathBuf,
        /// A JSON-lines file in it.
        jsonl: PathBuf,
        /// A CSV file in it.
        csv: PathBuf,
    },
    /// [`Format::detect`](crate::Format::detect) found no file with a known
    /// extension in a directory.
    #[error(
        "cannot detect the format of directory \"{}\": no file ends in .jsonl, .json, \
         .ndjson or .csv; set the format",
        dir.display()
    )]
    UnknownFormat {
        /// The directory.
        dir: PathBuf,
    },
    /// The source configuration is not usable.
    #[error("invalid source configuration: {0}")]
    InvalidConfig(String),
    /// A message broker could not be reached or refused a request (Kafka:
    /// the topic does not exist, a fetch failed).
    #[error("{what}: {reason}")]
    Broker {
        /// What was asked of which broker and topic.
        what: String,
        /// What the client said.
        reason: String,
    },
    /// `open` was asked for a partition that already has a live reader (a
    /// source that keeps records only until they are read, such as
    /// [`ChannelSource`](crate::ChannelSource)).
    #[error("partition {partition} is already open: it can have only one reader at a time")]
    AlreadyOpen {
        /// The partition.
        partition: PartitionId,
    },
    /// `open` was asked for an offset whose records were already read and
    /// dropped (a source that keeps records only until they are read).
    #[error(
        "offset {offset} of partition {partition} was already read and is not kept \
         (the first unread offset is {first_unread})"
    )]
    OffsetConsumed {
        /// The partition.
        partition: PartitionId,
        /// The requested offset.
        offset: Offset,
        /// The first offset still available.
        first_unread: Offset,
    },
    /// Every sender of a [`ChannelSource`](crate::ChannelSource) partition
    /// was dropped without closing it: the input was cut off, not finished.
    #[error("every sender of partition {partition} was dropped without closing it")]
    Abandoned {
        /// The partition.
        partition: PartitionId,
    },
}
