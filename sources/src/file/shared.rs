//! [`Demux`]: one pass over a one-file layout that decodes each record once
//! and hands it to its partition's reader.
//!
//! Without it every partition's reader would read the whole file and look
//! at every line's partition field. The readers of the partitions opened at
//! offset 0 share one pass instead: whichever reader asks for records reads
//! on, decodes each line once, keeps its own records and queues the others'
//! for their readers. A partition whose queue outgrows its share of
//! [`QUEUED_RECORDS`] (its reader is slow, or it is never opened in this
//! process) leaves the pass: its queue is dropped and its reader goes on
//! alone from the first record it had not taken, as a reader opened at an
//! offset does from the start. So memory stays bounded whatever the order
//! of the lines, and the records and offsets are those of the lone readers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use super::lines::{Line, LineReader};
use super::reader::{too_long_line, FileReader, Mark, Ownership};
use crate::dead_letter::DeadLetter;
use crate::decode::Decoder;
use crate::record::{Decoded, Offset, PartitionId, ReadStatus};
use crate::source::{PartitionReader, SourceError};

/// The most records the pass holds for readers that have not asked yet,
/// over all partitions; each partition may hold its share of it, and at
/// least [`MIN_QUEUE`].
pub(crate) const QUEUED_RECORDS: usize = 1 << 18;

/// The smallest queue a partition may hold before it leaves the pass.
const MIN_QUEUE: usize = 64;

/// A record waiting for its reader, with where its line starts.
struct Queued {
    decoded: Decoded,
    mark: Mark,
}

/// Where a partition stands with the pass.
enum Seat {
    /// The pass queues its records for it.
    Queued(VecDeque<Queued>),
    /// It left the pass: its reader reads alone from this record on.
    Alone(Mark),
}

/// The shared pass over the file.
pub(crate) struct Demux {
    lines: LineReader,
    decoder: Decoder,
    header_pending: bool,
    ownership: Ownership,
    file_name: Arc<str>,
    /// Per partition: the offset of the next of its records the pass meets.
    next: Vec<Offset>,
    seats: Vec<Seat>,
    /// Per partition: a reader has taken its seat (a second open reads alone).
    taken: Vec<bool>,
    /// The most records one partition's queue may hold.
    queue_limit: usize,
}

impl std::fmt::Debug for Demux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demux")
            .field("file", &self.file_name)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Demux {
    /// A pass from the start of the file.
    pub(crate) fn new(
        lines: LineReader,
        decoder: Decoder,
        count: u32,
        ownership: Ownership,
        file_name: Arc<str>,
    ) -> Self {
        let count = count as usize;
        Demux {
            lines,
            header_pending: decoder.expects_header(),
            decoder,
            ownership,
            file_name,
            next: vec![0; count],
            seats: (0..count).map(|_| Seat::Queued(VecDeque::new())).collect(),
            taken: vec![false; count],
            queue_limit: (QUEUED_RECORDS / count.max(1)).max(MIN_QUEUE),
        }
    }

    /// Takes `partition`'s seat for a reader opened at offset 0; `false`
    /// when the seat was taken before (that reader must read alone).
    pub(crate) fn take_seat(&mut self, partition: PartitionId) -> bool {
        match self.taken.get_mut(partition as usize) {
            Some(taken) if !*taken => {
                *taken = true;
                true
            }
            _ => false,
        }
    }

    /// `partition`'s reader reads alone from the start: the pass stops
    /// queueing its records.
    pub(crate) fn leave(&mut self, partition: PartitionId) {
        let (Some(seat), Some(taken)) = (
            self.seats.get_mut(partition as usize),
            self.taken.get_mut(partition as usize),
        ) else {
            return;
        };
        *taken = true;
        *seat = Seat::Alone(Mark {
            offset: 0,
            pos: 0,
            line: 1,
        });
    }

    /// The offset of the next record `partition`'s reader gets.
    fn position(&self, partition: PartitionId) -> Offset {
        let p = partition as usize;
        match self.seats.get(p) {
            Some(Seat::Queued(queue)) => queue
                .front()
                .map_or_else(|| self.next.get(p).copied().unwrap_or(0), |q| q.mark.offset),
            Some(Seat::Alone(mark)) => mark.offset,
            None => 0,
        }
    }

    /// Reads for `partition`: its queued records, then on through the file
    /// until `max` are appended. `Err(mark)` when it has left the pass.
    fn read(
        &mut self,
        partition: PartitionId,
        max: usize,
        out: &mut Vec<Decoded>,
    ) -> Result<Result<ReadStatus, Mark>, SourceError> {
        let p = partition as usize;
        let mut produced = 0;
        match self.seats.get_mut(p) {
            Some(Seat::Alone(mark)) => return Ok(Err(*mark)),
            Some(Seat::Queued(queue)) => {
                while produced < max {
                    let Some(q) = queue.pop_front() else { break };
                    out.push(q.decoded);
                    produced += 1;
                }
            }
            None => return Ok(Ok(ReadStatus::End)),
        }
        while produced < max {
            let (line, too_long, quoted) = match self.lines.next_line()? {
                Line::Pending => return Ok(Ok(ReadStatus::CaughtUp)),
                Line::End => return Ok(Ok(ReadStatus::End)),
                Line::TooLong(prefix, quoted) => (prefix, true, quoted),
                Line::Complete(line) => (line, false, false),
            };
            if self.header_pending {
                self.header_pending = false;
                self.decoder.set_header(if too_long { b"" } else { line });
                continue;
            }
            let ownership = self.ownership;
            let (next, seats) = (&mut self.next, &self.seats);
            let mut offset_of = |owner: PartitionId| {
                let o = owner as usize;
                let next = next.get_mut(o)?;
                let offset = *next;
                *next += 1;
                // The lines of a partition reading alone are only counted.
                let wanted = o == p || matches!(seats.get(o), Some(Seat::Queued(_)));
                wanted.then_some(offset)
            };
            let decoded = if too_long {
                let reason = too_long_line(&self.decoder, quoted);
                offset_of(0).map(|offset| (0, Err(DeadLetter::new(0, offset, reason, line))))
            } else {
                self.decoder
                    .decode_shared(line, |found| ownership.seat(found), offset_of)
            };
            let Some((owner, decoded)) = decoded else {
                continue;
            };
            let o = owner as usize;
            let mine = o == p;
            let line_no = self.lines.line_no();
            let decoded = decoded.map_err(|d| d.at(&self.file_name, line_no));
            if mine {
                out.push(decoded);
                produced += 1;
                continue;
            }
            let offset = match &decoded {
                Ok(record) => record.offset,
                Err(dead) => dead.offset,
            };
            let mark = Mark {
                offset,
                pos: self.lines.line_start(),
                line: line_no,
            };
            let limit = self.queue_limit;
            if let Some(seat) = self.seats.get_mut(o) {
                if let Seat::Queued(queue) = seat {
                    queue.push_back(Queued { decoded, mark });
                    if queue.len() > limit {
                        // Its reader reads alone from its oldest record.
                        let first = queue.front().map_or(mark, |q| q.mark);
                        *seat = Seat::Alone(first);
                    }
                }
            }
        }
        Ok(Ok(ReadStatus::More))
    }
}

/// One partition's reader of a [`Demux`]: it reads through the pass, and
/// alone once its partition has left it.
pub(crate) struct SharedReader {
    pub(crate) demux: Arc<Mutex<Demux>>,
    pub(crate) partition: PartitionId,
    /// Reads alone, from where the pass left it, once it has.
    pub(crate) alone: FileReader,
    pub(crate) left: bool,
}

impl PartitionReader for SharedReader {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError> {
        if !self.left {
            let read = self
                .demux
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .read(self.partition, max, out)?;
            match read {
                Ok(status) => return Ok(status),
                Err(mark) => {
                    self.left = true;
                    self.alone.pending_seek = Some(mark);
                    self.alone.apply_seek();
                }
            }
        }
        self.alone.read(max, out)
    }

    fn position(&self) -> Offset {
        if self.left {
            return self.alone.position();
        }
        self.demux
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .position(self.partition)
    }
}
