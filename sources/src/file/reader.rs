//! [`FileReader`]: one partition of a [`FileSource`](super::FileSource),
//! read line by line; lines before the start offset are counted, not decoded.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::lines::{Line, LineReader, Skipped};
use super::names::Glob;
use super::{is_partition_file, visible_files};
use crate::dead_letter::DeadLetter;
use crate::decode::{too_long_reason, Decoder};
use crate::record::{Decoded, Offset, PartitionId, ReadStatus};
use crate::source::{PartitionReader, SourceError};

/// Which lines of the file belong to the partition.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ownership {
    /// Every line: the file is the partition.
    Whole,
    /// Lines whose partition field names this partition; lines naming no
    /// valid partition belong to partition 0 (as dead letters).
    Shared {
        /// How many partitions the file holds.
        count: u32,
        /// [`FileSourceConfig::max_partitions`](super::FileSourceConfig::max_partitions).
        limit: u32,
    },
}

impl Ownership {
    /// The partition owning `line`, and the dead-letter reason if it cannot
    /// be a record whatever it holds.
    pub(crate) fn owner(self, decoder: &Decoder, line: &[u8]) -> (PartitionId, Option<String>) {
        match self {
            Ownership::Whole => (0, None),
            Ownership::Shared { .. } => self.seat(decoder.partition_of(line)),
        }
    }

    /// The partition owning a line whose partition field reads `found`,
    /// and the dead-letter reason if it cannot be a record.
    pub(crate) fn seat(self, found: Result<PartitionId, String>) -> (PartitionId, Option<String>) {
        match self {
            Ownership::Whole => (0, None),
            Ownership::Shared { count, limit } => match found {
                Ok(p) if p < count => (p, None),
                Ok(p) if p >= limit => (
                    0,
                    Some(format!(
                        "partition out of range: {p} (at most {limit} partitions; \
                         raise max_partitions to allow more)"
                    )),
                ),
                Ok(p) => (
                    0,
                    Some(format!(
                        "partition out of range: {p} (the source has {count} partitions)"
                    )),
                ),
                Err(reason) => (0, Some(reason)),
            },
        }
    }
}

/// The dead-letter reason of a record over the maximum length; `quoted`
/// when it ends inside a quoted field.
pub(crate) fn too_long_line(decoder: &Decoder, quoted: bool) -> String {
    let mut reason = too_long_reason(decoder.config().max_line_len);
    if quoted {
        reason.push_str(
            " inside a quoted field (a quote that never closes takes in \
             the lines after it)",
        );
    }
    reason
}

/// Reads one partition of a file source.
pub(crate) struct FileReader {
    pub(crate) lines: LineReader,
    pub(crate) decoder: Decoder,
    pub(crate) partition: PartitionId,
    pub(crate) ownership: Ownership,
    /// The offset of the next line this partition owns.
    pub(crate) next: Offset,
    /// Lines below this offset are skipped without being decoded.
    pub(crate) from: Offset,
    /// The next line is the CSV header.
    pub(crate) header_pending: bool,
    /// A position to jump to once the header is read.
    pub(crate) pending_seek: Option<Mark>,
    /// The file's name as dead letters give it.
    pub(crate) file_name: Arc<str>,
    /// Followed directory, partition 0: refuse new partition files.
    pub(crate) watch: Option<Arc<DirectoryWatch>>,
}

/// The partition files a followed directory had when the source listed
/// it; a matching file beyond them is an error (partitions are fixed).
#[derive(Debug)]
pub(crate) struct DirectoryWatch {
    pub(crate) dir: PathBuf,
    pub(crate) glob: Glob,
    pub(crate) known: BTreeSet<PathBuf>,
}

impl DirectoryWatch {
    fn check(&self) -> Result<(), SourceError> {
        for file in visible_files(&self.dir)? {
            if is_partition_file(&file, &self.glob) && !self.known.contains(&file) {
                return Err(SourceError::NewPartitionFile { path: file });
            }
        }
        Ok(())
    }
}

/// A known record start: its offset in the partition, its byte position
/// and its 1-based line number in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) offset: Offset,
    pub(crate) pos: u64,
    pub(crate) line: u64,
}

impl FileReader {
    /// Jumps to a known line start (from an offset index), if one is pending
    /// and the header has been read.
    pub(crate) fn apply_seek(&mut self) {
        if !self.header_pending {
            if let Some(mark) = self.pending_seek.take() {
                self.lines.seek(mark.pos, mark.line);
                self.next = mark.offset;
            }
        }
    }

    /// Reads lines: with `out`, until `max` items were appended; without,
    /// only until the start offset is reached (nothing is decoded).
    pub(crate) fn pump(
        &mut self,
        max: usize,
        mut out: Option<&mut Vec<Decoded>>,
    ) -> Result<ReadStatus, SourceError> {
        let mut produced = 0;
        loop {
            let done = match &out {
                Some(_) => produced == max,
                None => self.next >= self.from && !self.header_pending,
            };
            if done {
                return Ok(ReadStatus::More);
            }
            if self.next < self.from
                && !self.header_pending
                && matches!(self.ownership, Ownership::Whole)
            {
                // Every line is an offset here: count them without looking.
                let wanted = self.from - self.next;
                match self.lines.skip(wanted)? {
                    Skipped::Done => self.next = self.from,
                    Skipped::Pending(n) => {
                        self.next += n;
                        return self.caught_up();
                    }
                    Skipped::End(n) => {
                        self.next += n;
                        return Ok(ReadStatus::End);
                    }
                }
                continue;
            }
            let (line, too_long, quoted) = match self.lines.next_line()? {
                Line::Pending => return self.caught_up(),
                Line::End => return Ok(ReadStatus::End),
                Line::TooLong(prefix, quoted) => (prefix, true, quoted),
                Line::Complete(line) => (line, false, false),
            };
            if self.header_pending {
                self.header_pending = false;
                self.decoder.set_header(if too_long { b"" } else { line });
                self.apply_seek();
                continue;
            }
            let (owner, reason) = if too_long {
                let reason = too_long_line(&self.decoder, quoted);
                match self.ownership {
                    Ownership::Whole => (self.partition, Some(reason)),
                    Ownership::Shared { .. } => (0, Some(reason)),
                }
            } else {
                match self.ownership.owner(&self.decoder, line) {
                    (_, reason) if matches!(self.ownership, Ownership::Whole) => {
                        (self.partition, reason)
                    }
                    owned => owned,
                }
            };
            if owner != self.partition {
                continue;
            }
            let offset = self.next;
            self.next += 1;
            if offset < self.from {
                continue;
            }
            if let Some(out) = out.as_deref_mut() {
                let decoded = match reason {
                    Some(reason) => Err(DeadLetter::new(self.partition, offset, reason, line)),
                    None => self.decoder.decode(self.partition, offset, line),
                };
                out.push(decoded.map_err(|d| d.at(&self.file_name, self.lines.line_no())));
                produced += 1;
            }
        }
    }
}

impl FileReader {
    /// Nothing more for now: a good moment to look for new partition files.
    fn caught_up(&self) -> Result<ReadStatus, SourceError> {
        if let Some(watch) = &self.watch {
            watch.check()?;
        }
        Ok(ReadStatus::CaughtUp)
    }
}

impl PartitionReader for FileReader {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError> {
        self.pump(max, Some(out))
    }

    fn position(&self) -> Offset {
        self.next.max(self.from)
    }
}
