//! JSON lines: the encoders of result rows, late records and dead letters,
//! and the [`JsonLines`] sink that writes them to any `Write`.
//!
//! Result rows look like
//! `{"key":"k1","start":1000,"end":2000,"count":3,"sum":7,"kind":"final"}`,
//! with the aggregator's fields between `end` and `kind`. The encoders write
//! the text directly (no `serde_json` per row); tests check them against
//! `serde_json`.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::marker::PhantomData;

use tidemark_sources::DeadLetter;
use tidemark_windows::{AggKind, Change, MetricValues, Metrics, Window};

use std::sync::{Arc, Mutex};

use super::{Frontier, Sink};
use crate::aggregator::JobAggregator;
use crate::checkpoint::{OutputDigest, OutputPosition};
use crate::event::{Event, LateRecord, Row};
use crate::json_text::push_json_string;

/// Turns one item into one line of text (without its newline).
pub trait Encode<T>: Send {
    /// Appends the encoding of `item` to `out`.
    fn encode(&self, item: &T, out: &mut String);
}

/// How window bounds are written in the JSON outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TimeText {
    /// Milliseconds since the Unix epoch (a JSON number), the input's unit.
    #[default]
    EpochMs,
    /// RFC 3339 in UTC with milliseconds (a JSON string), e.g.
    /// `"2026-11-01T10:00:00.000Z"`; a time outside the calendar's range
    /// stays a number.
    Rfc3339,
}

impl TimeText {
    /// Appends `ms` in this format.
    pub fn push(self, ms: i64, out: &mut String) {
        match self {
            TimeText::EpochMs => out.push_str(itoa::Buffer::new().format(ms)),
            TimeText::Rfc3339 => match chrono::DateTime::from_timestamp_millis(ms) {
                Some(t) => {
                    out.push('"');
                    let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
                    out.push('"');
                }
                None => out.push_str(itoa::Buffer::new().format(ms)),
            },
        }
    }
}

/// The JSON encoder of result rows, fields named by the aggregator, window
/// bounds written as the [`TimeText`] says.
#[derive(Clone, Debug)]
pub struct RowJson<A>(pub A, pub TimeText);

impl<A: JobAggregator> Encode<Row<A::Output>> for RowJson<A> {
    fn encode(&self, row: &Row<A::Output>, out: &mut String) {
        encode_row(&self.0, row, self.1, out);
    }
}

fn encode_row<A: JobAggregator, K: AsRef<str>>(
    agg: &A,
    row: &Change<K, A::Output>,
    times: TimeText,
    out: &mut String,
) {
    out.push('{');
    push_key(row.key.as_ref(), agg.key_names(), out);
    out.push_str(",\"start\":");
    times.push(row.window.start, out);
    out.push_str(",\"end\":");
    times.push(row.window.end, out);
    agg.write_json_fields(&row.value, out);
    out.push_str(",\"kind\":\"");
    out.push_str(row.kind.name());
    out.push_str("\"}");
}

/// Appends a key as the member `"key"`, or for a compound key (`names`
/// not empty) one member per part.
fn push_key(key: &str, names: &[String], out: &mut String) {
    if names.is_empty() {
        out.push_str("\"key\":");
        push_json_string(key, out);
        return;
    }
    for (i, (name, part)) in names
        .iter()
        .zip(tidemark_sources::split_key(key))
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        push_json_string(name, out);
        out.push(':');
        push_json_string(&part, out);
    }
}

/// Formats one row of the built-in aggregations `kinds` as a JSON object
/// (no newline).
pub fn format_row<K: AsRef<str>>(
    row: &Change<K, MetricValues>,
    kinds: &[AggKind],
    out: &mut String,
) {
    encode_row(&Metrics::new(kinds), row, TimeText::EpochMs, out);
}

/// The JSON encoder of late records, the bounds of the windows they missed
/// written as the [`TimeText`] says.
///
/// A late record is written as the input it was:
/// `{"partition":…,"offset":…,"key":…,"ts":…,"value":…,"missed":[…],"reason":…}`,
/// a compound key as one member per part (as result rows have it), and
/// the named fields the job reads in `"fields":{…}` after the value.
#[derive(Clone, Debug, Default)]
pub struct LateJson {
    /// How times are written.
    pub times: TimeText,
    /// The key's columns ([`JobAggregator::key_names`]).
    pub key_names: Vec<String>,
    /// The names of the record's named fields
    /// ([`JobAggregator::record_fields`]).
    pub field_names: Vec<String>,
    /// Each table's name and fields: a table update too late is written
    /// with its table's fields.
    pub tables: Vec<(String, Vec<String>)>,
}

impl LateJson {
    /// Late records of a job with aggregation `agg`.
    pub fn of<A: JobAggregator>(agg: &A, times: TimeText) -> Self {
        LateJson {
            times,
            key_names: agg.key_names().to_vec(),
            field_names: agg.record_fields(),
            tables: Vec::new(),
        }
    }
}

impl Encode<LateRecord> for LateJson {
    fn encode(&self, item: &LateRecord, out: &mut String) {
        let table_fields = match (&item.table, item.reason) {
            (Some(name), crate::event::LateReason::TableTooLate) => self
                .tables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, fields)| fields.as_slice()),
            _ => None,
        };
        match table_fields {
            // A table update has no value and misses no window.
            Some(fields) => push_record(&item.event, self.times, &[], fields, false, out),
            None => {
                push_record(
                    &item.event,
                    self.times,
                    &self.key_names,
                    &self.field_names,
                    true,
                    out,
                );
                push_missed(&item.missed, self.times, out);
            }
        }
        // Reopen the object for the reason.
        out.pop();
        out.push_str(",\"reason\":\"");
        out.push_str(item.reason.name());
        out.push('"');
        if let Some(table) = &item.table {
            out.push_str(",\"table\":");
            push_json_string(table, out);
        }
        out.push('}');
    }
}

/// Formats a record as the input it was: partition, offset, key, event time
/// and value.
pub(crate) fn format_event(event: &Event, out: &mut String) {
    push_record(event, TimeText::EpochMs, &[], &[], true, out);
}

/// Appends a record as the input it was: partition, offset, the key (one
/// member per part with `key_names`), event time as `times` says, value,
/// and its named fields (an object with `field_names`, else a list).
/// Without `value` the value is left out (a table record has none).
fn push_record(
    event: &Event,
    times: TimeText,
    key_names: &[String],
    field_names: &[String],
    value: bool,
    out: &mut String,
) {
    let _ = write!(
        out,
        "{{\"partition\":{},\"offset\":{},",
        event.partition, event.offset
    );
    push_key(&event.key, key_names, out);
    out.push_str(",\"ts\":");
    times.push(event.time, out);
    if value {
        let _ = write!(out, ",\"value\":{}", event.value);
    }
    if !event.fields.is_empty() {
        let named = !field_names.is_empty();
        out.push_str(if named {
            ",\"fields\":{"
        } else {
            ",\"fields\":["
        });
        for (i, field) in event.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if let Some(name) = field_names.get(i).filter(|_| named) {
                push_json_string(name, out);
                out.push(':');
            }
            crate::aggregator::push_cell(&field.clone().into(), out);
        }
        out.push(if named { '}' } else { ']' });
    }
    out.push('}');
}

/// Formats a late record: the input record and the windows it missed.
pub fn format_late(event: &Event, missed: &[Window], out: &mut String) {
    push_late(event, missed, TimeText::EpochMs, out);
}

fn push_late(event: &Event, missed: &[Window], times: TimeText, out: &mut String) {
    push_record(event, times, &[], &[], true, out);
    push_missed(missed, times, out);
}

/// Reopens the object `out` ends with and appends the windows missed.
fn push_missed(missed: &[Window], times: TimeText, out: &mut String) {
    out.pop();
    out.push_str(",\"missed\":[");
    for (i, w) in missed.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"start\":");
        times.push(w.start, out);
        out.push_str(",\"end\":");
        times.push(w.end, out);
        out.push('}');
    }
    out.push_str("]}");
}

/// The JSON encoder of dead letters.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadJson;

impl Encode<DeadLetter> for DeadJson {
    fn encode(&self, item: &DeadLetter, out: &mut String) {
        format_dead(item, out);
    }
}

/// Formats a dead letter (`file` and `line` are `null` when unknown).
pub fn format_dead(letter: &DeadLetter, out: &mut String) {
    let _ = write!(
        out,
        "{{\"partition\":{},\"offset\":{},\"file\":",
        letter.partition, letter.offset
    );
    match &letter.file {
        Some(file) => push_json_string(file, out),
        None => out.push_str("null"),
    }
    match letter.line {
        Some(line) => {
            let _ = write!(out, ",\"line\":{line}");
        }
        None => out.push_str(",\"line\":null"),
    }
    out.push_str(",\"reason\":");
    push_json_string(&letter.reason, out);
    out.push_str(",\"raw\":");
    push_json_string(&letter.raw, out);
    if let Some(table) = &letter.table {
        out.push_str(",\"table\":");
        push_json_string(table, out);
    }
    out.push('}');
}

/// A sink writing one JSON line per item to a buffered writer; a commit
/// flushes it.
pub struct JsonLines<T, E> {
    encoder: E,
    out: BufWriter<Box<dyn Write + Send>>,
    line: String,
    describe: String,
    /// For an output a checkpoint can resume: the running digest of the
    /// bytes that reached it, and the file to sync.
    durable: Option<Durable>,
    /// A file output, to cut back to `committed` bytes on
    /// [`abort`](Sink::abort).
    file: Option<std::fs::File>,
    /// Bytes handed to `out` so far, and at the last successful commit
    /// (counted from where the file was when opened).
    written: u64,
    committed: u64,
    _items: PhantomData<fn(&T)>,
}

/// What [`JsonLines::durable_position`](Sink::durable_position) reads.
pub(crate) struct Durable {
    pub(crate) digest: Arc<Mutex<OutputDigest>>,
    pub(crate) file: Option<std::fs::File>,
}

/// A writer that feeds a running digest with what it writes.
pub(crate) struct Digesting<W> {
    pub(crate) inner: W,
    pub(crate) digest: Arc<Mutex<OutputDigest>>,
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        match self.digest.lock() {
            Ok(mut d) => d.update(&buf[..n]),
            Err(_) => return Err(io::Error::other("output digest poisoned")),
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T, E: Encode<T>> JsonLines<T, E> {
    /// Lines encoded by `encoder`, written to `out`; `describe` names the
    /// destination in error messages.
    pub fn new(out: impl Write + Send + 'static, encoder: E, describe: impl Into<String>) -> Self {
        JsonLines {
            encoder,
            out: BufWriter::with_capacity(1 << 16, Box::new(out)),
            line: String::with_capacity(256),
            describe: describe.into(),
            durable: None,
            file: None,
            written: 0,
            committed: 0,
            _items: PhantomData,
        }
    }

    /// Cuts `file` back to what was committed when the job fails
    /// ([`Sink::abort`]); `file` is the file `out` writes to, positioned
    /// at its end.
    pub(crate) fn cut_back_on_abort(mut self, file: std::fs::File) -> Self {
        let at = std::io::Seek::stream_position(&mut &file).unwrap_or(0);
        self.written = at;
        self.committed = at;
        self.file = Some(file);
        self
    }

    /// As [`new`](Self::new), for an output a checkpoint can resume: `out`
    /// feeds `durable`'s digest.
    pub(crate) fn resumable(
        out: impl Write + Send + 'static,
        encoder: E,
        describe: impl Into<String>,
        durable: Durable,
    ) -> Self {
        let mut sink = JsonLines::new(out, encoder, describe);
        sink.durable = Some(durable);
        sink
    }
}

impl<T, E: Encode<T>> Sink<T> for JsonLines<T, E> {
    fn write(&mut self, item: &T) -> io::Result<()> {
        self.line.clear();
        self.encoder.encode(item, &mut self.line);
        self.line.push('\n');
        self.written += self.line.len() as u64;
        self.out.write_all(self.line.as_bytes())
    }

    fn commit(&mut self, _frontier: Frontier) -> io::Result<()> {
        self.out.flush()?;
        self.committed = self.written;
        Ok(())
    }

    fn abort(&mut self) -> io::Result<()> {
        // Drop what is buffered without writing it, and write nothing more.
        let out = std::mem::replace(
            &mut self.out,
            BufWriter::new(Box::new(io::sink()) as Box<dyn Write + Send>),
        );
        drop(out.into_parts());
        self.written = self.committed;
        match self.file.take() {
            Some(file) => file.set_len(self.committed),
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn durable_position(&mut self) -> io::Result<Option<OutputPosition>> {
        let Some(durable) = &self.durable else {
            return Ok(None);
        };
        self.out.flush()?;
        if let Some(file) = &durable.file {
            file.sync_data()?;
        }
        match durable.digest.lock() {
            Ok(d) => Ok(Some(d.position())),
            Err(_) => Err(io::Error::other("output digest poisoned")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_windows::{ChangeKind, Number, Phase, SumValue};

    #[test]
    fn rfc3339_times_are_utc_with_milliseconds_and_parse_back() {
        let text = |ms: i64| {
            let mut out = String::new();
            TimeText::Rfc3339.push(ms, &mut out);
            out
        };
        assert_eq!(text(0), "\"1970-01-01T00:00:00.000Z\"");
        assert_eq!(text(1_500), "\"1970-01-01T00:00:01.500Z\"");
        assert_eq!(text(-1), "\"1969-12-31T23:59:59.999Z\"");
        assert_eq!(text(1_793_610_000_000), "\"2026-11-02T09:00:00.000Z\"");
        // Beyond the calendar: the number.
        assert_eq!(text(i64::MAX), i64::MAX.to_string());
        for ms in [
            -86_400_001i64,
            -1,
            0,
            999,
            1_700_000_000_123,
            253_402_300_799_999,
        ] {
            let t = text(ms);
            let parsed = tidemark_sources::decode::parse_rfc3339(t.trim_matches('"'));
            assert_eq!(parsed, Some(ms), "{t}");
        }
        let mut out = String::new();
        TimeText::EpochMs.push(-42, &mut out);
        assert_eq!(out, "-42");
    }

    #[test]
    fn key_fast_path_escapes_like_serde_json() {
        let samples = [
            "",
            "user-42",
            "k\u{7f}del",
            "quote\"inside",
            "back\\slash",
            "tab\there",
            "nl\n",
            "\u{1}ctrl",
            "zoë — ünïcode ✓",
            "emoji 🦀",
        ];
        for s in samples {
            let mut fast = String::new();
            push_json_string(s, &mut fast);
            assert_eq!(fast, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        // Every single character below 0x80 and a few above.
        for c in (0u32..0x80).chain([0xa0, 0x2028, 0x2029, 0xfeff]) {
            let s = char::from_u32(c).unwrap().to_string();
            let mut fast = String::new();
            push_json_string(&s, &mut fast);
            assert_eq!(fast, serde_json::to_string(&s).unwrap(), "{c:#x}");
        }
    }

    #[test]
    fn rows_encode_as_serde_json_would() {
        let kinds = [
            AggKind::Count,
            AggKind::Sum,
            AggKind::Min,
            AggKind::Max,
            AggKind::Mean,
        ];
        let values = [
            MetricValues {
                count: Some(3),
                sum: Some(SumValue::Int(-7)),
                min: Some(Number::Int(-9)),
                max: Some(Number::Float(2.5)),
                mean: Some(-7.0 / 3.0),
            },
            MetricValues {
                count: Some(1),
                sum: Some(SumValue::Float(0.1)),
                min: Some(Number::Float(0.1)),
                max: Some(Number::Float(0.1)),
                mean: Some(0.1),
            },
        ];
        for (i, v) in values.iter().enumerate() {
            for key in ["k", "q\"uote", "ünï"] {
                let row = Row {
                    time: 5,
                    phase: Phase::Fire,
                    kind: if i == 0 {
                        ChangeKind::Final
                    } else {
                        ChangeKind::Retract
                    },
                    key: key.into(),
                    window: Window::new(-1_000, 2_000),
                    value: *v,
                };
                let mut fast = String::new();
                RowJson(Metrics::new(&kinds), TimeText::EpochMs).encode(&row, &mut fast);
                let parsed: serde_json::Value = serde_json::from_str(&fast).unwrap();
                let expected = serde_json::json!({
                    "key": key,
                    "start": -1000,
                    "end": 2000,
                    "count": v.count,
                    "sum": v.sum.map(|s| s.as_f64()),
                    "min": v.min.map(|n| n.as_f64()),
                    "max": v.max.map(|n| n.as_f64()),
                    "mean": v.mean,
                    "kind": row.kind.name(),
                });
                // Numbers compared by value (serde_json keeps 2.5 and 2.5).
                let norm = |j: &serde_json::Value| {
                    let mut j = j.clone();
                    for f in ["sum", "min", "max", "mean"] {
                        if let Some(x) = j[f].as_f64() {
                            j[f] = serde_json::json!(x);
                        }
                    }
                    j
                };
                assert_eq!(norm(&parsed), norm(&expected), "{fast}");
                // Field order is the order of the kinds.
                let keys: Vec<&str> = parsed
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|k| k.as_str())
                    .collect();
                assert_eq!(keys.len(), 9);
                assert!(fast.starts_with("{\"key\":"));
                assert!(fast.find("\"count\"").unwrap() < fast.find("\"mean\"").unwrap());
            }
        }
    }
}
