//! CSV records: the fast splitter for records without line breaks or
//! irregular quotes, and the general path on the `csv` crate (quoted line
//! breaks, anything unusual), which also rejects stray quotes.
//!
//! Quoting follows RFC 4180 strictly: a field holding a quote, a comma or a
//! line break is quoted, with each of its quotes doubled (`"say ""hi"""`).
//! A quote inside an unquoted field (`5'10"`), text after a closing quote
//! (`"a"b`) and a quoted field that never closes are dead letters, where
//! the `csv` crate alone would guess. Fields are numbered from 0 in the
//! reasons, as CSV field names are without a header.

use std::borrow::Cow;
use std::cell::RefCell;

#[cfg(test)]
use super::FieldMapping;
use super::{Fields, Scalar, Slot};

/// The column each mapped field is read from (`None`: no such column).
#[derive(Clone, Debug)]
pub(super) struct CsvColumns {
    columns: Vec<(Slot, Option<usize>)>,
    /// For each column up to the last one needed, a bit per fixed [`Slot`]
    /// read from it, and [`EXTRAS`] when an extra slot is; the fast path
    /// stops after the last.
    by_column: Vec<u8>,
    /// The extra slots and their columns.
    extras: Vec<(Slot, usize)>,
}

/// The bit of a column that extra slots read.
const EXTRAS: u8 = 1 << 4;

impl CsvColumns {
    fn new(columns: Vec<(Slot, Option<usize>)>) -> Self {
        let width = columns
            .iter()
            .filter_map(|(_, c)| *c)
            .max()
            .map_or(0, |c| c + 1);
        let mut by_column = vec![0u8; width];
        let mut extras = Vec::new();
        for (slot, column) in &columns {
            if let Some(mask) = column.and_then(|c| by_column.get_mut(c)) {
                match slot.bit() {
                    Some(bit) => *mask |= bit,
                    None => *mask |= EXTRAS,
                }
            }
            if let (None, Some(c)) = (slot.bit(), column) {
                extras.push((*slot, *c));
            }
        }
        CsvColumns {
            columns,
            by_column,
            extras,
        }
    }

    #[cfg(test)]
    fn slots(mapping: &FieldMapping) -> Vec<(Slot, String)> {
        let config = super::DecodeConfig {
            fields: mapping.clone(),
            ..Default::default()
        };
        super::mapped(&config)
            .into_iter()
            .map(|(slot, name)| (slot, name.to_owned()))
            .collect()
    }

    /// Without a header: field names are column indexes.
    #[cfg(test)]
    pub(super) fn by_index(mapping: &FieldMapping) -> Self {
        let slots = CsvColumns::slots(mapping);
        let slots: Vec<(Slot, &str)> = slots.iter().map(|(s, n)| (*s, n.as_str())).collect();
        CsvColumns::by_index_of(&slots)
    }

    /// The fields `slots` names, without a header: names are column
    /// indexes.
    pub(super) fn by_index_of(slots: &[(Slot, &str)]) -> Self {
        let columns = slots
            .iter()
            .map(|(slot, name)| (*slot, name.parse::<usize>().ok()))
            .collect();
        CsvColumns::new(columns)
    }

    /// The fields `slots` names, with a header: names are looked up among
    /// `names`.
    pub(super) fn by_name_of(slots: &[(Slot, &str)], names: &[String]) -> Self {
        let columns = slots
            .iter()
            .map(|(slot, name)| (*slot, names.iter().position(|n| n == name)))
            .collect();
        CsvColumns::new(columns)
    }

    /// The column the partition field is read from.
    pub(super) fn partition_column(&self) -> Option<usize> {
        self.columns
            .iter()
            .find(|(slot, _)| *slot == Slot::Partition)
            .and_then(|(_, c)| *c)
    }

    /// The partition column alone, for a row with no quote and no line
    /// break (what [`CsvColumns::fast`] would give its partition slot):
    /// `Some(None)` when the row has no such column, `None` when the row
    /// needs the full split.
    pub(super) fn fast_partition<'a>(&self, text: &'a str) -> Option<Option<&'a str>> {
        let bytes = text.as_bytes();
        if bytes.starts_with(b"\xEF\xBB\xBF")
            || memchr::memchr3(b'"', b'\r', b'\n', bytes).is_some()
        {
            return None;
        }
        let Some(column) = self.partition_column() else {
            return Some(None);
        };
        let mut start = 0;
        let mut commas = memchr::memchr_iter(b',', bytes);
        for _ in 0..column {
            match commas.next() {
                Some(comma) => start = comma + 1,
                None => return Some(None),
            }
        }
        let end = commas.next().unwrap_or(bytes.len());
        Some(text.get(start..end))
    }

    /// The fast path: a row without line breaks whose fields are plain or
    /// wholly quoted (`"a,b"`, `"say ""hi"""`). `None` hands the line to the
    /// general path, which also settles every irregular quote.
    pub(super) fn fast<'a>(&self, text: &'a str) -> Option<Fields<'a>> {
        let bytes = text.as_bytes();
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            return None;
        }
        let mut fields = Fields::default();
        let mut pos = 0;
        let mut column = 0;
        // Rows are short: a plain byte loop beats a `memchr` call per field.
        while pos <= bytes.len() {
            let (field, next) = if bytes.get(pos) == Some(&b'"') {
                let (field, len) = quoted(text.get(pos + 1..)?)?;
                let after = pos + 1 + len;
                match bytes.get(after) {
                    None => (field, bytes.len() + 1),
                    Some(b',') => (field, after + 1),
                    Some(_) => return None,
                }
            } else {
                let mut end = pos;
                while let Some(&b) = bytes.get(end) {
                    match b {
                        b',' => break,
                        b'"' | b'\r' | b'\n' => return None,
                        _ => end += 1,
                    }
                }
                (Cow::Borrowed(text.get(pos..end)?), end + 1)
            };
            if let Some(&mask) = self.by_column.get(column) {
                if mask != 0 {
                    for i in 0..4 {
                        if mask & (1 << i) != 0 {
                            fields.set_fixed(i, Scalar::Str(field.clone()));
                        }
                    }
                    if mask & EXTRAS != 0 {
                        for (slot, c) in &self.extras {
                            if *c == column {
                                fields.set(*slot, Scalar::Str(field.clone()));
                            }
                        }
                    }
                }
            } else if memchr::memchr3(b'"', b'\r', b'\n', bytes.get(pos..)?).is_some() {
                // Past the last needed column: only a quote (which may be
                // stray) or a line break matters.
                return None;
            } else {
                break;
            }
            pos = next;
            column += 1;
        }
        Some(fields)
    }

    /// The general path: check the quoting, then parse the record with the
    /// `csv` crate's parser (csv-core).
    pub(super) fn general<'a>(&self, text: &str) -> Result<Fields<'a>, String> {
        check_quotes(text.as_bytes())?;
        let record = parse_row(text)?;
        let mut fields = Fields::default();
        for (slot, column) in &self.columns {
            if let Some(field) = column.and_then(|c| record.get(c)) {
                fields.set(*slot, Scalar::Str(Cow::Owned(field.clone())));
            }
        }
        Ok(fields)
    }
}

/// A quoted field's content, `s` starting after the opening quote, and how
/// many bytes it spans including the closing quote. `""` is a quote.
fn quoted(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let bytes = s.as_bytes();
    let close = memchr::memchr(b'"', bytes)?;
    if memchr::memchr2(b'\r', b'\n', bytes.get(..close)?).is_some() {
        return None;
    }
    if bytes.get(close + 1) != Some(&b'"') {
        return Some((Cow::Borrowed(s.get(..close)?), close + 1));
    }
    let mut out = String::new();
    let mut pos = 0;
    loop {
        let close = pos + memchr::memchr(b'"', bytes.get(pos..)?)?;
        let part = s.get(pos..close)?;
        if part.contains(['\r', '\n']) {
            return None;
        }
        out.push_str(part);
        if bytes.get(close + 1) == Some(&b'"') {
            out.push('"');
            pos = close + 2;
        } else {
            return Some((Cow::Owned(out), close + 1));
        }
    }
}

/// Rejects a record whose quotes the `csv` crate would accept by guessing:
/// a quote inside an unquoted field, text after a closing quote, a quoted
/// field that does not close.
fn check_quotes(bytes: &[u8]) -> Result<(), String> {
    // The parser skips a byte-order mark at the start, and so does this.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut field = 0;
    for &b in bytes {
        state = match (state, b) {
            (State::FieldStart, b'"') => State::Quoted,
            (State::FieldStart | State::Unquoted | State::QuoteInQuoted, b',') => {
                field += 1;
                State::FieldStart
            }
            (State::FieldStart | State::Unquoted, _) if b == b'"' => {
                return Err(format!(
                    "invalid csv: quote inside unquoted field {field} \
                     (quote the field and double its quotes)"
                ))
            }
            (State::FieldStart | State::Unquoted, _) => State::Unquoted,
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (State::QuoteInQuoted, _) => {
                return Err(format!(
                    "invalid csv: text after the closing quote of field {field}"
                ))
            }
        };
    }
    if state == State::Quoted {
        return Err(format!("invalid csv: quoted field {field} does not close"));
    }
    Ok(())
}

thread_local! {
    /// A csv-core reader per thread, reset for each record: building one
    /// costs far more than parsing a short record.
    static PARSER: RefCell<Parser> = RefCell::new(Parser::new());
}

/// Parses one record as exactly one CSV record, by the `csv` crate's rules
/// (its csv-core parser, default settings).
fn parse_row(text: &str) -> Result<Vec<String>, String> {
    PARSER.with(|parser| parser.borrow_mut().parse(text.as_bytes()))
}

/// A reusable csv-core reader and its output buffers.
struct Parser {
    reader: csv_core::Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
}

impl Parser {
    fn new() -> Self {
        Parser {
            reader: csv_core::Reader::new(),
            output: Vec::new(),
            ends: Vec::new(),
        }
    }

    fn parse(&mut self, mut input: &[u8]) -> Result<Vec<String>, String> {
        self.reader.reset();
        // Unquoting only shrinks a record, and it has one field more than
        // it has delimiters: the buffers fit at once (they grow otherwise).
        let fields = memchr::memchr_iter(b',', input).count() + 1;
        if self.output.len() < input.len() + 1 {
            self.output.resize(input.len() + 1, 0);
        }
        if self.ends.len() < fields + 1 {
            self.ends.resize(fields + 1, 0);
        }
        let record = self.read_one(&mut input)?.ok_or("empty line")?;
        match self.read_one(&mut input)? {
            None => Ok(record),
            Some(_) => Err(
                "invalid csv: a line break outside quotes splits the record into several"
                    .to_owned(),
            ),
        }
    }

    /// The next record of `input` (consuming it), or `None` at its end.
    fn read_one(&mut self, input: &mut &[u8]) -> Result<Option<Vec<String>>, String> {
        use csv_core::ReadRecordResult;
        let (mut out_len, mut ends_len) = (0, 0);
        loop {
            let output = self.output.get_mut(out_len..).unwrap_or_default();
            let ends = self.ends.get_mut(ends_len..).unwrap_or_default();
            let (result, read, written, ended) = self.reader.read_record(input, output, ends);
            *input = input.get(read..).unwrap_or_default();
            out_len += written;
            ends_len += ended;
            match result {
                // All of the record is given: the next call, with nothing
                // left, tells the reader that the input ended.
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.output.resize(self.output.len() * 2 + 1, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2 + 1, 0),
                ReadRecordResult::End => return Ok(None),
                ReadRecordResult::Record => {
                    let bytes = self.output.get(..out_len).unwrap_or_default();
                    let mut fields = Vec::with_capacity(ends_len);
                    let mut start = 0;
                    for (i, &end) in self
                        .ends
                        .get(..ends_len)
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                    {
                        let field = bytes.get(start..end).unwrap_or_default();
                        let field = std::str::from_utf8(field)
                            .map_err(|_| format!("invalid csv: invalid utf-8 in field {i}"))?;
                        fields.push(field.to_owned());
                        start = end;
                    }
                    return Ok(Some(fields));
                }
            }
        }
    }
}

/// The column names of a header line (lossy UTF-8; an unreadable header
/// names no columns, so every row reports its fields missing).
pub(crate) fn split_header(line: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(line);
    parse_row(&text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_splits_on_commas() {
        let columns = CsvColumns::by_index(&FieldMapping {
            key: "2".into(),
            time: "3".into(),
            value: "4".into(),
            partition: None,
        });
        let mut fields = columns.fast("0,1,k1,100,").unwrap();
        assert_eq!(
            fields.take(Slot::Key),
            Some(Scalar::Str(Cow::Borrowed("k1")))
        );
        assert_eq!(
            fields.take(Slot::Value),
            Some(Scalar::Str(Cow::Borrowed("")))
        );
        let mut fields = columns.fast("0,1,k1").unwrap();
        assert_eq!(fields.take(Slot::Time), None);
        let mut fields = columns.fast("0,1,\"k,1\",\"a\"\"b\",5").unwrap();
        assert_eq!(
            fields.take(Slot::Key),
            Some(Scalar::Str(Cow::Borrowed("k,1")))
        );
        assert_eq!(
            fields.take(Slot::Time),
            Some(Scalar::Str(Cow::Owned("a\"b".into())))
        );
        assert!(columns.fast("0,1,k\"1,100,5").is_none());
        let with_partition = CsvColumns::by_index(&FieldMapping {
            key: "2".into(),
            time: "3".into(),
            value: "4".into(),
            partition: Some("1".into()),
        });
        for row in [
            "0,7,k1,100,5",
            "0,7",
            "0",
            "",
            "0,,k",
            "a,b,c,d,e,f,g",
            "0, 3 ,x",
        ] {
            let mut fields = with_partition.fast(row).unwrap();
            let expected = match fields.take(Slot::Partition) {
                Some(Scalar::Str(s)) => Some(s.into_owned()),
                _ => None,
            };
            let light = with_partition
                .fast_partition(row)
                .unwrap()
                .map(str::to_owned);
            assert_eq!(light, expected, "{row:?}");
        }
        assert_eq!(with_partition.fast_partition("0,\"7\",k"), None);
        assert!(columns.fast("0,1,\"k\"1,100,5").is_none());
    }
}
