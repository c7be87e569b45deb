//! CSV rows: the fast splitter for rows without quotes and the general path
//! on the `csv` crate (quoting, embedded commas, anything unusual).

use std::borrow::Cow;

use super::{FieldMapping, Fields, Scalar, Slot};

/// The column each mapped field is read from (`None`: no such column).
#[derive(Clone, Debug)]
pub(super) struct CsvColumns {
    columns: Vec<(Slot, Option<usize>)>,
    /// For each column up to the last one needed, a bit per [`Slot`] read
    /// from it; the fast path stops after the last.
    by_column: Vec<u8>,
}

fn slots(mapping: &FieldMapping) -> Vec<(Slot, &str)> {
    let mut slots = vec![
        (Slot::Key, mapping.key.as_str()),
        (Slot::Time, mapping.time.as_str()),
        (Slot::Value, mapping.value.as_str()),
    ];
    if let Some(partition) = &mapping.partition {
        slots.push((Slot::Partition, partition.as_str()));
    }
    slots
}

const SLOTS: [Slot; 4] = [Slot::Key, Slot::Time, Slot::Value, Slot::Partition];

impl CsvColumns {
    fn new(columns: Vec<(Slot, Option<usize>)>) -> Self {
        let width = columns
            .iter()
            .filter_map(|(_, c)| *c)
            .max()
            .map_or(0, |c| c + 1);
        let mut by_column = vec![0u8; width];
        for (slot, column) in &columns {
            if let Some(mask) = column.and_then(|c| by_column.get_mut(c)) {
                *mask |= 1 << (*slot as u8);
            }
        }
        CsvColumns { columns, by_column }
    }

    /// Without a header: field names are column indexes.
    pub(super) fn by_index(mapping: &FieldMapping) -> Self {
        let columns = slots(mapping)
            .into_iter()
            .map(|(slot, name)| (slot, name.parse::<usize>().ok()))
            .collect();
        CsvColumns::new(columns)
    }

    /// With a header: field names are looked up among `names`.
    pub(super) fn by_name(mapping: &FieldMapping, names: &[String]) -> Self {
        let columns = slots(mapping)
            .into_iter()
            .map(|(slot, name)| (slot, names.iter().position(|n| n == name)))
            .collect();
        CsvColumns::new(columns)
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
                    for slot in SLOTS {
                        if mask & (1 << (slot as u8)) != 0 {
                            fields.set(slot, Scalar::Str(field.clone()));
                        }
                    }
                }
            } else if memchr::memchr2(b'\r', b'\n', bytes.get(pos..)?).is_some() {
                // Past the last needed column: only a line break matters.
                return None;
            } else {
                break;
            }
            pos = next;
            column += 1;
        }
        Some(fields)
    }

    /// The general path: parse the line with the `csv` crate.
    pub(super) fn general<'a>(&self, text: &str) -> Result<Fields<'a>, String> {
        let record = parse_row(text)?;
        let mut fields = Fields::default();
        for (slot, column) in &self.columns {
            if let Some(field) = column.and_then(|c| record.get(c)) {
                fields.set(*slot, Scalar::Str(Cow::Owned(field.to_owned())));
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

/// Parses one line as exactly one CSV record.
fn parse_row(text: &str) -> Result<::csv::StringRecord, String> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = ::csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Err("empty line".to_owned()),
        Err(e) => return Err(format!("invalid csv: {e}")),
    }
    let mut extra = ::csv::StringRecord::new();
    match reader.read_record(&mut extra) {
        Ok(false) => Ok(record),
        Ok(true) => {
            Err("invalid csv: a line break splits the line into several records".to_owned())
        }
        Err(e) => Err(format!("invalid csv: {e}")),
    }
}

/// The column names of a header line (lossy UTF-8; an unreadable header
/// names no columns, so every row reports its fields missing).
pub(crate) fn split_header(line: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(line);
    match parse_row(&text) {
        Ok(record) => record.iter().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
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
        assert!(columns.fast("0,1,\"k\"1,100,5").is_none());
    }
}
