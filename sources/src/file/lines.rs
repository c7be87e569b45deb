//! Splitting a (possibly growing) file into lines with `memchr`, without
//! decoding them: the layer that makes seeking cheap and tailing correct.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::dead_letter::RAW_LIMIT;
use crate::source::SourceError;

const INITIAL_BUFFER: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What [`LineReader::next_line`] found.
pub(crate) enum Line<'a> {
    /// A whole line, without its `\n` (a final unterminated line counts
    /// when the file is not followed).
    Complete(&'a [u8]),
    /// A line longer than the limit: its first bytes. The rest of it is
    /// skipped by the following calls.
    TooLong(&'a [u8]),
    /// Followed file: no complete line is available yet.
    Pending,
    /// Bounded file: nothing more.
    End,
}

/// How [`LineReader::skip`] stopped.
pub(crate) enum Skipped {
    /// All the lines asked for were skipped.
    Done,
    /// Followed file: fewer lines are complete so far.
    Pending(u64),
    /// Bounded file: it ended after this many lines.
    End(u64),
}

/// Reads a file line by line through one reusable buffer.
pub(crate) struct LineReader {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    /// Next unread byte in `buf`.
    start: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// File position of `buf[0]`.
    buf_pos: u64,
    /// File position where the last returned line starts.
    line_start: u64,
    /// The 1-based line number of the last returned line.
    line_no: u64,
    /// The 1-based line number of the line that starts at `start`.
    next_line_no: u64,
    follow: bool,
    max_line_len: usize,
    /// Inside an over-long line: skip to its newline.
    discarding: bool,
}

impl LineReader {
    pub(crate) fn open(
        path: &Path,
        follow: bool,
        max_line_len: usize,
    ) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::OpenPartition {
            path: path.to_owned(),
            source,
        })?;
        Ok(LineReader {
            file,
            path: path.to_owned(),
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            buf_pos: 0,
            line_start: 0,
            line_no: 0,
            next_line_no: 1,
            follow,
            max_line_len,
            discarding: false,
        })
    }

    /// The file position where the last returned line starts.
    pub(crate) fn line_start(&self) -> u64 {
        self.line_start
    }

    /// The 1-based line number of the last returned line.
    pub(crate) fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Continues reading at byte `pos`, which must be the start of line
    /// number `line_no`.
    pub(crate) fn seek(&mut self, pos: u64, line_no: u64) -> Result<(), SourceError> {
        self.file
            .seek(SeekFrom::Start(pos))
            .map_err(|e| self.read_error(e))?;
        self.start = 0;
        self.end = 0;
        self.buf_pos = pos;
        self.next_line_no = line_no;
        self.discarding = false;
        Ok(())
    }

    fn read_error(&self, source: io::Error) -> SourceError {
        SourceError::ReadPartition {
            path: self.path.clone(),
            source,
        }
    }

    /// The next line, or why there is none.
    pub(crate) fn next_line(&mut self) -> Result<Line<'_>, SourceError> {
        loop {
            let avail = self.buf.get(self.start..self.end).unwrap_or_default();
            if self.discarding {
                match memchr::memchr(b'\n', avail) {
                    Some(i) => {
                        self.start += i + 1;
                        self.discarding = false;
                        continue;
                    }
                    None => self.start = self.end,
                }
            } else if let Some(i) = memchr::memchr(b'\n', avail) {
                let (line_start, line_end) = (self.start, self.start + i);
                self.start = line_end + 1;
                return Ok(Line::Complete(self.take_line(line_start, line_end)));
            } else if avail.len() > self.max_line_len.saturating_add(1) {
                // Even without a trailing `\r` this line is over the limit.
                let line_start = self.start;
                self.start = self.end;
                self.discarding = true;
                let cut = line_start + RAW_LIMIT.min(avail.len());
                return Ok(Line::TooLong(self.take_line(line_start, cut)));
            }
            if self.fill()? == 0 {
                if self.follow {
                    return Ok(Line::Pending);
                }
                self.discarding = false;
                if self.start < self.end {
                    let (line_start, line_end) = (self.start, self.end);
                    self.start = self.end;
                    return Ok(Line::Complete(self.take_line(line_start, line_end)));
                }
                return Ok(Line::End);
            }
        }
    }

    /// Skips `n` lines, counting them exactly as [`LineReader::next_line`]
    /// would return them (an over-long line is one line) but with one
    /// `memchr` pass over the buffer: this is what makes seeking cheap.
    pub(crate) fn skip(&mut self, n: u64) -> Result<Skipped, SourceError> {
        let skipped = self.skip_lines(n)?;
        self.next_line_no += match skipped {
            Skipped::Done => n,
            Skipped::Pending(k) | Skipped::End(k) => k,
        };
        Ok(skipped)
    }

    fn skip_lines(&mut self, n: u64) -> Result<Skipped, SourceError> {
        let mut skipped = 0;
        while skipped < n {
            let avail = self.buf.get(self.start..self.end).unwrap_or_default();
            if self.discarding {
                match memchr::memchr(b'\n', avail) {
                    Some(i) => {
                        self.start += i + 1;
                        self.discarding = false;
                        continue;
                    }
                    None => self.start = self.end,
                }
            } else {
                let mut consumed = 0;
                for i in memchr::memchr_iter(b'\n', avail) {
                    skipped += 1;
                    consumed = i + 1;
                    if skipped == n {
                        break;
                    }
                }
                self.start += consumed;
                if skipped == n {
                    break;
                }
                if self.end - self.start > self.max_line_len.saturating_add(1) {
                    // The partial line is over-long: one line, skipped to its end.
                    skipped += 1;
                    self.start = self.end;
                    self.discarding = true;
                    continue;
                }
            }
            if self.fill()? == 0 {
                if self.follow {
                    return Ok(Skipped::Pending(skipped));
                }
                self.discarding = false;
                if self.start < self.end {
                    skipped += 1;
                    self.start = self.end;
                }
                return Ok(Skipped::End(skipped));
            }
        }
        Ok(Skipped::Done)
    }

    /// Records where the line `buf[from..to]` starts and returns it, without
    /// a byte-order mark at the very start of the file.
    fn take_line(&mut self, from: usize, to: usize) -> &[u8] {
        self.line_start = self.buf_pos + from as u64;
        self.line_no = self.next_line_no;
        self.next_line_no += 1;
        let line = self.buf.get(from..to).unwrap_or_default();
        if self.line_start == 0 {
            line.strip_prefix(BOM).unwrap_or(line)
        } else {
            line
        }
    }

    /// Reads more of the file into the buffer; returns how many bytes came.
    fn fill(&mut self) -> Result<usize, SourceError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.buf_pos += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(self.max_line_len.saturating_add(2));
            self.buf.resize(grown.max(self.buf.len() + 1), 0);
        }
        loop {
            let spare = self.buf.get_mut(self.end..).unwrap_or_default();
            match self.file.read(spare) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            }
        }
    }
}
