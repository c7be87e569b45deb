//! CSV rows: the fast splitter for rows without quotes and the general path
//! on the `csv` crate (quoting, embedded commas, anything unusual).

use std::borrow::Cow;

use super::{FieldMapping, Fields, Scalar, Slot};

/// The column each mapped field is read from (`None`: no such column).
#[derive(Clone, Debug)]
pub(super) struct CsvColumns {
    columns: Vec<(Slot, Option<usize>)>,
    /// The highest column any field needs; the fast path stops there.
    last: Option<usize>,
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

impl CsvColumns {
    fn new(columns: Vec<(Slot, Option<usize>)>) -> Self {
        let last = columns.iter().filter_map(|(_, c)| *c).max();
        CsvColumns { columns, last }
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

    /// The fast path: a row without quotes or line breaks, split on
    /// commas. `None` hands the line to the general path.
    pub(super) fn fast<'a>(&self, text: &'a str) -> Option<Fields<'a>> {
        let bytes = text.as_bytes();
        if memchr::memchr3(b'"', b'\r', b'\n', bytes).is_some()
            || bytes.starts_with(b"\xEF\xBB\xBF")
        {
            return None;
        }
        let mut fields = Fields::default();
        let Some(last) = self.last else {
            return Some(fields);
        };
        let mut start = 0;
        for index in 0..=last {
            let rest = bytes.get(start..)?;
            let end = memchr::memchr(b',', rest).map_or(bytes.len(), |i| start + i);
            let field = text.get(start..end)?;
            for (slot, column) in &self.columns {
                if *column == Some(index) {
                    fields.set(*slot, Scalar::Str(Cow::Borrowed(field)));
                }
            }
            if end == bytes.len() {
                break;
            }
            start = end + 1;
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
        let fields = columns.fast("0,1,k1,100,").unwrap();
        assert_eq!(fields.key, Some(Scalar::Str(Cow::Borrowed("k1"))));
        assert_eq!(fields.value, Some(Scalar::Str(Cow::Borrowed(""))));
        let fields = columns.fast("0,1,k1").unwrap();
        assert_eq!(fields.time, None);
        assert!(columns.fast("0,1,\"k1\",100,5").is_none());
    }
}
