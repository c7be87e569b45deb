//! Partitioned, offset-addressed event logs: the input side of tidemark.
//!
//! A [`Source`] is a set of partitions; each partition is an ordered log of
//! records addressed by offset (the first record is at offset 0), readable
//! from any offset through a [`PartitionReader`]. Every offset yields either
//! a [`Record`] or a [`DeadLetter`] naming why the input there could not be
//! decoded: bad input is data, never an error and never a panic, and no
//! offset is skipped silently.
//!
//! Sources:
//!
//! - [`FileSource`]: a directory whose files are the partitions, or one file
//!   (or standard input, `-`) whose records carry their partition; JSON
//!   lines or CSV; can follow growing files.
//! - [`GeneratorSource`]: a seeded, counter-based workload generator (the
//!   shape of the project's `gen.py`), for benchmarks and tests.
//! - [`MemorySource`]: records or raw lines held in memory.
//! - [`ChannelSource`]: partitions that application code pushes events
//!   into while a job runs.
//!
//! To plug in a log of your own, implement [`Source`] and
//! [`PartitionReader`]; the [`source`] module docs show how, and what the
//! engine relies on (a `read` that never blocks, the same records at the
//! same offsets on every run).
//!
//! # Examples
//!
//! ```
//! use tidemark_sources::{DecodeConfig, Format, MemorySource, ReadStatus, Source};
//!
//! let lines = vec![vec![
//!     r#"{"key":"k1","ts":1000,"value":3}"#,
//!     r#"{"key":"k2","ts":"soon","value":4}"#,
//! ]];
//! let source = MemorySource::from_lines(lines, DecodeConfig::new(Format::Jsonl));
//! let mut reader = source.open(0, 0)?;
//! let mut out = Vec::new();
//! assert_eq!(reader.read(10, &mut out)?, ReadStatus::End);
//! assert_eq!(out[0].as_ref().map(|r| r.event_time), Ok(1000));
//! let dead = out[1].as_ref().unwrap_err();
//! assert_eq!((dead.offset, dead.reason.as_str()),
//!            (1, "invalid time \"soon\" for format epoch-ms in field \"ts\""));
//! # Ok::<(), tidemark_sources::SourceError>(())
//! ```
#![warn(missing_docs)]

pub mod channel;
mod computed;
mod dead_letter;
pub mod decode;
pub mod file;
pub mod generator;
#[cfg(feature = "kafka")]
pub mod kafka;
mod memory;
pub mod nexmark;
mod record;
pub mod source;

pub use crate::channel::{ChannelSender, ChannelSource, PushError};
pub use crate::dead_letter::{DeadLetter, RAW_LIMIT};
pub use crate::decode::{
    DecodeConfig, Decoder, FieldMapping, Format, NamedField, TimeFormat, DEFAULT_MAX_LINE_LEN,
};
pub use crate::file::{FileSource, FileSourceConfig};
pub use crate::generator::{GeneratorConfig, GeneratorSource, RealTimeGenerator};
pub use crate::memory::MemorySource;
pub use crate::record::{
    join_key, split_key, Decoded, Field, Key, Offset, PartitionId, ReadStatus, Record, Value,
    MAX_EVENT_TIME, MIN_EVENT_TIME,
};
pub use crate::source::{ContentCheck, PartitionReader, Source, SourceError};
