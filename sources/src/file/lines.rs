//! Splitting a (possibly growing) file into records without decoding them:
//! the layer that makes seeking cheap and tailing correct.
//!
//! A JSON-lines record is a line. A CSV record ends at a line break outside
//! quotes, by the rules of the `csv` crate (csv-core): a quote opens a
//! quoted field only at the start of a field; inside one, `""` is a quote,
//! a lone quote closes it, and line breaks are data. A quote anywhere else
//! is a literal byte for splitting (the decoder then rejects the record),
//! so a stray quote inside an unquoted field never swallows the lines after
//! it. Both splitters scan with `memchr`; a CSV region without quotes is
//! split exactly like lines.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::spool::Spool;
use crate::dead_letter::RAW_LIMIT;
use crate::source::SourceError;

const INITIAL_BUFFER: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How a file is cut into records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// One record per line.
    Lines,
    /// CSV records, which may span lines inside quoted fields.
    Csv,
}

/// What [`LineReader::next_line`] found.
pub(crate) enum Line<'a> {
    /// A whole record, without its `\n` (a final unterminated record counts
    /// when the file is not followed).
    Complete(&'a [u8]),
    /// A record longer than the limit: its first bytes, and whether the cut
    /// fell inside a quoted CSV field. The rest of it is skipped by the
    /// following calls.
    TooLong(&'a [u8], bool),
    /// Followed file: no complete record is available yet.
    Pending,
    /// Bounded file: nothing more.
    End,
}

/// How [`LineReader::skip`] stopped.
pub(crate) enum Skipped {
    /// All the records asked for were skipped.
    Done,
    /// Followed file: fewer records are complete so far.
    Pending(u64),
    /// Bounded file: it ended after this many records.
    End(u64),
}

/// Where a CSV scan is inside a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CsvState {
    /// At the start of a field: a quote here opens a quoted field.
    FieldStart,
    /// Inside an unquoted field (a quote here is a literal byte).
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: `"` escapes it, anything
    /// else means it closed the field.
    QuoteInQuoted,
}

/// What scanning the current record found.
enum Scan {
    /// The record ends with the `\n` at this index of the buffer.
    Ends(usize),
    /// The record is not complete in the buffer and already too long.
    TooLong,
    /// The record is not complete in the buffer.
    NeedMore,
}

/// What [`LineReader::fill`] got.
enum Fill {
    /// This many new bytes.
    Data,
    /// Nothing now; a followed file may grow.
    Pending,
    /// Nothing, ever.
    End,
}

/// Whether and how the file may grow while it is read.
enum Growth {
    /// Read to its end.
    Bounded,
    /// Followed: at its end, wait for more, after checking that the path
    /// still names the file that was opened (device and inode, on Unix) and
    /// that it did not shrink below what was read.
    Follow { identity: Option<(u64, u64)> },
    /// A spool file: at its end, wait for more until the copy is complete.
    Spool(Arc<Spool>),
}

/// The device and inode of a file, where the platform has them.
fn identity(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// Reads a file record by record through one reusable buffer.
pub(crate) struct LineReader {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    /// Next unread byte in `buf`: the start of the current record.
    start: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// File position of `buf[0]`.
    buf_pos: u64,
    /// How many bytes of the current record were scanned already.
    scanned: usize,
    /// The CSV scan state at `start + scanned`.
    csv: CsvState,
    /// Line breaks inside quoted fields of the current record so far.
    inner_lines: u64,
    /// File position where the last returned record starts.
    line_start: u64,
    /// The 1-based line number of the last returned record.
    line_no: u64,
    /// The 1-based line number where the current record starts.
    record_line: u64,
    growth: Growth,
    max_line_len: usize,
    split: Split,
    /// Inside an over-long record: skip to its end.
    discarding: bool,
}

impl LineReader {
    pub(crate) fn open(
        path: &Path,
        follow: bool,
        max_line_len: usize,
        split: Split,
    ) -> Result<Self, SourceError> {
        let open_error = |source| SourceError::OpenPartition {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(open_error)?;
        let growth = if follow {
            Growth::Follow {
                identity: identity(&file.metadata().map_err(open_error)?),
            }
        } else {
            Growth::Bounded
        };
        Ok(LineReader::new(
            file,
            path.to_owned(),
            growth,
            max_line_len,
            split,
        ))
    }

    /// A reader of the spool file of a non-seekable input.
    pub(crate) fn spooled(
        spool: &Arc<Spool>,
        max_line_len: usize,
        split: Split,
    ) -> Result<Self, SourceError> {
        Ok(LineReader::new(
            spool.reader_file()?,
            spool.name().to_owned(),
            Growth::Spool(Arc::clone(spool)),
            max_line_len,
            split,
        ))
    }

    fn new(file: File, path: PathBuf, growth: Growth, max_line_len: usize, split: Split) -> Self {
        LineReader {
            file,
            path,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            buf_pos: 0,
            scanned: 0,
            csv: CsvState::FieldStart,
            inner_lines: 0,
            line_start: 0,
            line_no: 0,
            record_line: 1,
            growth,
            max_line_len,
            split,
            discarding: false,
        }
    }

    /// The file position where the last returned record starts.
    pub(crate) fn line_start(&self) -> u64 {
        self.line_start
    }

    /// The 1-based line number where the last returned record starts.
    pub(crate) fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Continues reading at byte `pos`, which must be the start of a record
    /// starting on line number `line_no`.
    pub(crate) fn seek(&mut self, pos: u64, line_no: u64) {
        self.start = 0;
        self.end = 0;
        self.buf_pos = pos;
        self.record_line = line_no;
        self.discarding = false;
        self.reset_scan();
    }

    fn read_error(&self, source: io::Error) -> SourceError {
        SourceError::ReadPartition {
            path: self.path.clone(),
            source,
        }
    }

    fn reset_scan(&mut self) {
        self.scanned = 0;
        self.csv = CsvState::FieldStart;
        self.inner_lines = 0;
    }

    /// Consumes the current record up to and including its `\n` at `nl`.
    fn finish_record(&mut self, nl: usize) {
        self.start = nl + 1;
        self.record_line += self.inner_lines + 1;
        self.reset_scan();
    }

    /// Scans the current record on from where the last scan stopped.
    fn scan(&mut self) -> Scan {
        let record = self.buf.get(self.start..self.end).unwrap_or_default();
        if self.scanned == 0 && self.csv == CsvState::FieldStart && self.split == Split::Csv {
            // A byte-order mark is not part of the first field.
            if self.buf_pos + self.start as u64 == 0 {
                if record.len() < BOM.len() && !record.is_empty() && BOM.starts_with(record) {
                    return Scan::NeedMore;
                }
                if record.starts_with(BOM) {
                    self.scanned = BOM.len();
                }
            }
        }
        let found = match self.split {
            Split::Lines => record
                .get(self.scanned..)
                .and_then(|rest| memchr::memchr(b'\n', rest))
                .map(|i| self.scanned + i),
            Split::Csv => scan_csv(record, self.scanned, &mut self.csv, &mut self.inner_lines),
        };
        match found {
            Some(i) => Scan::Ends(self.start + i),
            None => {
                self.scanned = record.len();
                // Even without a trailing `\r` this record is over the limit.
                if record.len() > self.max_line_len.saturating_add(1) {
                    Scan::TooLong
                } else {
                    Scan::NeedMore
                }
            }
        }
    }

    /// Drops the scanned part of an over-long record, keeping the scan state.
    fn discard_scanned(&mut self) {
        self.start = self.end;
        self.scanned = 0;
    }

    /// The next record, or why there is none.
    pub(crate) fn next_line(&mut self) -> Result<Line<'_>, SourceError> {
        loop {
            match self.scan() {
                Scan::Ends(nl) if self.discarding => {
                    self.discarding = false;
                    self.finish_record(nl);
                    continue;
                }
                Scan::Ends(nl) => {
                    let from = self.start;
                    let line = self.record_line;
                    self.finish_record(nl);
                    return Ok(Line::Complete(self.take_line(from, nl, line)));
                }
                Scan::TooLong if self.discarding => self.discard_scanned(),
                Scan::TooLong => {
                    let from = self.start;
                    let cut = from + RAW_LIMIT.min(self.end - from);
                    let quoted = self.csv == CsvState::Quoted;
                    self.discard_scanned();
                    self.discarding = true;
                    let line = self.record_line;
                    return Ok(Line::TooLong(self.take_line(from, cut, line), quoted));
                }
                Scan::NeedMore if self.discarding => self.discard_scanned(),
                Scan::NeedMore => {}
            }
            match self.fill()? {
                Fill::Data => {}
                Fill::Pending => return Ok(Line::Pending),
                Fill::End => {
                    self.discarding = false;
                    if self.start < self.end {
                        let (from, to) = (self.start, self.end);
                        let line = self.record_line;
                        self.start = self.end;
                        self.reset_scan();
                        return Ok(Line::Complete(self.take_line(from, to, line)));
                    }
                    return Ok(Line::End);
                }
            }
        }
    }

    /// Skips `n` records, counting them exactly as [`LineReader::next_line`]
    /// would return them (an over-long record is one record), but counting
    /// line breaks with one `memchr` pass where no quote can intervene:
    /// this is what makes seeking cheap.
    pub(crate) fn skip(&mut self, n: u64) -> Result<Skipped, SourceError> {
        let mut skipped = 0;
        while skipped < n {
            if !self.discarding && self.scanned == 0 && self.csv == CsvState::FieldStart {
                skipped += self.skip_plain(n - skipped);
                if skipped == n {
                    break;
                }
            }
            match self.scan() {
                Scan::Ends(nl) => {
                    if !self.discarding {
                        skipped += 1;
                    }
                    self.discarding = false;
                    self.finish_record(nl);
                    continue;
                }
                Scan::TooLong => {
                    if !self.discarding {
                        skipped += 1;
                        self.discarding = true;
                    }
                    self.discard_scanned();
                }
                Scan::NeedMore if self.discarding => self.discard_scanned(),
                Scan::NeedMore => {}
            }
            match self.fill()? {
                Fill::Data => {}
                Fill::Pending => return Ok(Skipped::Pending(skipped)),
                Fill::End => {
                    self.discarding = false;
                    if self.start < self.end && skipped < n {
                        skipped += 1;
                        self.start = self.end;
                        self.reset_scan();
                    }
                    return Ok(Skipped::End(skipped));
                }
            }
        }
        Ok(Skipped::Done)
    }

    /// Skips up to `n` whole records in the buffer before its next quote
    /// (for lines: anywhere), where every `\n` ends a record. Returns how
    /// many it skipped.
    fn skip_plain(&mut self, n: u64) -> u64 {
        let avail = self.buf.get(self.start..self.end).unwrap_or_default();
        if self.split == Split::Csv && self.buf_pos + self.start as u64 == 0 {
            // The first record: the byte-order-mark rule is in `scan`.
            return 0;
        }
        let plain = match self.split {
            Split::Lines => avail,
            Split::Csv => {
                let quote = memchr::memchr(b'"', avail).unwrap_or(avail.len());
                avail.get(..quote).unwrap_or_default()
            }
        };
        let (mut skipped, mut consumed) = (0, 0);
        for i in memchr::memchr_iter(b'\n', plain) {
            skipped += 1;
            consumed = i + 1;
            if skipped == n {
                break;
            }
        }
        self.start += consumed;
        self.record_line += skipped;
        skipped
    }

    /// Records where the record `buf[from..to]` (starting on line `line`)
    /// starts and returns it, without a byte-order mark at the very start of
    /// the file.
    fn take_line(&mut self, from: usize, to: usize, line: u64) -> &[u8] {
        self.line_start = self.buf_pos + from as u64;
        self.line_no = line;
        let record = self.buf.get(from..to).unwrap_or_default();
        if self.line_start == 0 {
            record.strip_prefix(BOM).unwrap_or(record)
        } else {
            record
        }
    }

    /// Reads more of the file into the buffer, keeping the current record.
    fn fill(&mut self) -> Result<Fill, SourceError> {
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
        // A spool file is complete once the copy is: known before reading,
        // so that a read that finds nothing after that really is the end.
        let complete = match &self.growth {
            Growth::Spool(spool) => spool.complete()?,
            Growth::Bounded | Growth::Follow { .. } => false,
        };
        let pos = self.buf_pos + self.end as u64;
        loop {
            let spare = self.buf.get_mut(self.end..).unwrap_or_default();
            match read_at(&self.file, spare, pos) {
                Ok(0) => {
                    return match &self.growth {
                        Growth::Bounded => Ok(Fill::End),
                        Growth::Follow { identity } => {
                            self.check_followed(*identity)?;
                            Ok(Fill::Pending)
                        }
                        Growth::Spool(_) if complete => Ok(Fill::End),
                        Growth::Spool(_) => Ok(Fill::Pending),
                    }
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(Fill::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            }
        }
    }
}

impl LineReader {
    /// At the end of a followed file: fails if the file was deleted,
    /// replaced or truncated, which an append-only log never is (and which
    /// would otherwise leave records unread, or a stale file holding the
    /// watermark back for ever).
    fn check_followed(&self, opened: Option<(u64, u64)>) -> Result<(), SourceError> {
        let path = || self.path.clone();
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SourceError::FileDeleted { path: path() })
            }
            Err(e) => return Err(self.read_error(e)),
            Ok(now) if identity(&now) != opened => {
                return Err(SourceError::FileReplaced { path: path() })
            }
            Ok(_) => {}
        }
        let size = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        let read = self.buf_pos + self.end as u64;
        if size < read {
            return Err(SourceError::FileTruncated {
                path: path(),
                size,
                read,
            });
        }
        Ok(())
    }
}

/// Reads from byte `pos` of `file`, without using (or moving) its shared
/// file offset.
fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, pos)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, pos)
    }
    #[cfg(not(any(unix, windows)))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(pos))?;
        file.read(buf)
    }
}

/// Scans `record[from..]` (a CSV record so far, from its start) for the
/// `\n` that ends it, going on from `state`; counts line breaks inside
/// quoted fields into `inner_lines`. Returns the index of that `\n`, or
/// `None` when the record goes on past the end of `record`.
fn scan_csv(
    record: &[u8],
    from: usize,
    state: &mut CsvState,
    inner_lines: &mut u64,
) -> Option<usize> {
    let mut i = from;
    loop {
        match *state {
            CsvState::FieldStart => match record.get(i) {
                None => return None,
                Some(b'"') => {
                    *state = CsvState::Quoted;
                    i += 1;
                }
                Some(_) => *state = CsvState::Unquoted,
            },
            CsvState::Unquoted => {
                let rest = record.get(i..).unwrap_or_default();
                let Some(k) = memchr::memchr2(b'"', b'\n', rest) else {
                    // A delimiter at the very end: the next byte starts a field.
                    if rest.last() == Some(&b',') {
                        *state = CsvState::FieldStart;
                    }
                    return None;
                };
                let j = i + k;
                if record.get(j) == Some(&b'\n') {
                    return Some(j);
                }
                // A quote opens a quoted field only right after a delimiter;
                // anywhere else it is a literal byte.
                if j > i && record.get(j - 1) == Some(&b',') {
                    *state = CsvState::Quoted;
                }
                i = j + 1;
            }
            CsvState::Quoted => {
                let rest = record.get(i..).unwrap_or_default();
                match memchr::memchr(b'"', rest) {
                    None => {
                        *inner_lines += memchr::memchr_iter(b'\n', rest).count() as u64;
                        return None;
                    }
                    Some(k) => {
                        let quoted = rest.get(..k).unwrap_or_default();
                        *inner_lines += memchr::memchr_iter(b'\n', quoted).count() as u64;
                        *state = CsvState::QuoteInQuoted;
                        i += k + 1;
                    }
                }
            }
            CsvState::QuoteInQuoted => match record.get(i) {
                None => return None,
                Some(b'\n') => return Some(i),
                Some(b'"') => {
                    *state = CsvState::Quoted;
                    i += 1;
                }
                Some(b',') => {
                    *state = CsvState::FieldStart;
                    i += 1;
                }
                Some(_) => {
                    *state = CsvState::Unquoted;
                    i += 1;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `text` with `scan_csv`, feeding it in chunks of `chunk` bytes.
    fn split(text: &[u8], chunk: usize) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let (mut start, mut state, mut inner) = (0, CsvState::FieldStart, 0);
        let mut scanned = 0;
        let mut avail = chunk.min(text.len());
        loop {
            let record = &text[start..avail];
            match scan_csv(record, scanned, &mut state, &mut inner) {
                Some(i) => {
                    out.push((record[..i].to_vec(), inner));
                    start += i + 1;
                    (scanned, state, inner) = (0, CsvState::FieldStart, 0);
                }
                None if avail == text.len() => {
                    if start < text.len() {
                        out.push((text[start..].to_vec(), inner));
                    }
                    return out;
                }
                None => {
                    scanned = record.len();
                    avail = (avail + chunk).min(text.len());
                }
            }
        }
    }

    #[test]
    fn csv_records_end_at_line_breaks_outside_quotes() {
        let text = b"a,\"multi\nline\",1\n\"x\"\"\ny\",2\nk\"1,\"a\"b\n,\"\n\"\n\nlast";
        let want: Vec<(&[u8], u64)> = vec![
            (b"a,\"multi\nline\",1", 1),
            (b"\"x\"\"\ny\",2", 1),
            // A quote inside an unquoted field, or after a closing quote,
            // does not open a quoted field.
            (b"k\"1,\"a\"b", 0),
            (b",\"\n\"", 1),
            (b"", 0),
            (b"last", 0),
        ];
        for chunk in [1, 2, 3, 5, 64] {
            let got = split(text, chunk);
            let got: Vec<(&[u8], u64)> = got.iter().map(|(r, n)| (r.as_slice(), *n)).collect();
            assert_eq!(got, want, "chunk {chunk}");
        }
    }
}
