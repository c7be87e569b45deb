//! Turning one line of input into a [`Record`] or a [`DeadLetter`].
//!
//! A [`Decoder`] is built from a [`DecodeConfig`] (format, field names, time
//! format, maximum line length). Each format has two paths that must agree:
//!
//! - a hand-written fast path for the common line (a JSON object without
//!   escapes whose mapped fields are scalars, nested objects followed along
//!   mapped paths such as `meta.ts` and other nested values skipped
//!   unbuilt; a CSV record without line breaks whose fields are plain or
//!   wholly quoted) that scans bytes and allocates nothing but the key
//!   (and the named fields a job reads), and
//! - a general path on `serde_json` / `csv` for everything else (escapes,
//!   duplicate names leading into objects, quoted line breaks), which also
//!   produces the error messages and rejects stray CSV quotes.
//!
//! The fast path never rejects a line: when it is not sure, it hands the line
//! to the general path, so both give the same answer for every input (the
//! property tests check this on arbitrary bytes).
//!
//! Conversions, shared by both paths and both formats:
//!
//! - **key**: a string as is; a number as its decimal text (`42` → `"42"`,
//!   `1.5` → `"1.5"`). Anything else is a dead letter.
//! - **value**: an integer that fits `i64` is [`Value::Int`]; any other
//!   finite number is [`Value::Float`]. Text (every CSV field, or a quoted
//!   JSON string) is trimmed and parsed the same way, so `"42"` is `Int(42)`.
//! - **time** ([`TimeFormat`]): `epoch-ms` and `epoch-s` take integers or
//!   fractions (numbers or numeric text; fractions are rounded to the nearest
//!   millisecond); `rfc3339` takes RFC 3339 / ISO 8601 text with an offset
//!   (`2024-05-01T12:00:00.250Z`, `…+02:00`, `…+0200`). Times outside
//!   [`MIN_EVENT_TIME`]`..=`[`MAX_EVENT_TIME`] are dead letters.
//!
//! Line checks, before any format: a trailing `\r` is dropped; a line longer
//! than `max_line_len` bytes, a blank line (empty or only whitespace) and a
//! line that is not UTF-8 are dead letters.

mod convert;

pub use convert::parse_rfc3339;
mod csv;
mod jsonl;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::dead_letter::DeadLetter;
use crate::record::{Decoded, Field, Key, Offset, PartitionId, Record};
#[cfg(doc)]
use crate::record::{Value, MAX_EVENT_TIME, MIN_EVENT_TIME};
pub use tidemark_windows::fields::NamedField;

pub(crate) use self::csv::split_header;

/// The default maximum line length: 1 MiB.
pub const DEFAULT_MAX_LINE_LEN: usize = 1 << 20;

/// How lines are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// CSV records, one per line except where a quoted field holds a line
    /// break (RFC 4180 quoting; stray quotes are dead letters).
    Csv,
}

impl Format {
    /// The name used in configuration and file extensions: `jsonl` or `csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            other => Err(format!(
                "unknown format \"{other}\": expected \"jsonl\" or \"csv\""
            )),
        }
    }
}

/// How the time field encodes event time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeFormat {
    /// Milliseconds since the Unix epoch.
    #[default]
    EpochMs,
    /// Seconds since the Unix epoch, integer or fractional.
    EpochS,
    /// RFC 3339 / ISO 8601 text with a UTC offset.
    Rfc3339,
}

impl TimeFormat {
    /// The name used in configuration: `epoch-ms`, `epoch-s` or `rfc3339`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeFormat::EpochMs => "epoch-ms",
            TimeFormat::EpochS => "epoch-s",
            TimeFormat::Rfc3339 => "rfc3339",
        }
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TimeFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "epoch-ms" => Ok(TimeFormat::EpochMs),
            "epoch-s" => Ok(TimeFormat::EpochS),
            "rfc3339" => Ok(TimeFormat::Rfc3339),
            other => Err(format!(
                "unknown time format \"{other}\": expected \"epoch-ms\", \"epoch-s\" or \"rfc3339\""
            )),
        }
    }
}

/// Which fields hold the key, the event time, the value and (for a single
/// file holding several partitions) the partition.
///
/// In JSON a name with dots is a path into nested objects (`meta.ts`); in CSV
/// a name is a header column, or without a header a column index (`"0"`,
/// `"1"`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldMapping {
    /// The key field (default `key`).
    pub key: String,
    /// The event-time field (default `ts`).
    pub time: String,
    /// The value field (default `value`).
    pub value: String,
    /// The partition field, used only when one file holds all partitions.
    pub partition: Option<String>,
}

impl Default for FieldMapping {
    fn default() -> Self {
        FieldMapping {
            key: "key".to_owned(),
            time: "ts".to_owned(),
            value: "value".to_owned(),
            partition: None,
        }
    }
}

/// Everything a [`Decoder`] needs to know about the lines it reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecodeConfig {
    /// The line format (default JSON lines).
    pub format: Format,
    /// CSV only: the first line of each partition is a header naming the
    /// columns (default `false`, as `tidemark gen` without `--header`).
    pub header: bool,
    /// Field names.
    pub fields: FieldMapping,
    /// How event time is encoded (default epoch milliseconds).
    pub time_format: TimeFormat,
    /// Lines longer than this many bytes are dead letters (default 1 MiB).
    pub max_line_len: usize,
    /// Whether a record must have a value (default `true`). When `false`, a
    /// record whose value field is absent, JSON `null` or a blank CSV field
    /// decodes with the value `Value::Int(1)` (one event, so a sum of values
    /// is the count) instead of being a dead letter `missing field "value"`;
    /// a value that is present but not a number is still a dead letter. Set
    /// it to `false` when the only aggregation is a count.
    pub require_value: bool,
    /// Whether the value field is read at all (default `true`). When
    /// `false` it is not looked at, and every record's value is
    /// `Value::Int(1)`: for jobs whose aggregations read only named fields.
    pub read_value: bool,
    /// Whether the key field is read at all (default `true`). When `false`
    /// it is not looked at and every record's key is empty: for inputs whose
    /// key is made later from named fields (a stream enriched from a table
    /// and grouped by an attached field).
    pub read_key: bool,
    /// Whether the event-time field is read at all (default `true`). When
    /// `false` it is not looked at and every record's event time is
    /// [`MIN_EVENT_TIME`]: for static reference
    /// tables, whose records have no time.
    pub read_time: bool,
    /// The fields of a compound key, in order (two or more; then
    /// `fields.key` is not read). The record's key joins their texts (see
    /// [`join_key`](crate::join_key)); a missing one makes the record a
    /// dead letter, as a missing key does.
    pub compound_key: Vec<String>,
    /// The named fields to decode into [`Record::fields`], in order: a
    /// missing, `null` or blank one is [`Field::Null`]; one marked `number`
    /// holding anything but a number (or numeric text) makes the record a
    /// dead letter naming it, and so does an array, object or boolean in
    /// any of them.
    pub named: Vec<NamedField>,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            format: Format::default(),
            header: false,
            fields: FieldMapping::default(),
            time_format: TimeFormat::default(),
            max_line_len: DEFAULT_MAX_LINE_LEN,
            require_value: true,
            read_value: true,
            read_key: true,
            read_time: true,
            compound_key: Vec::new(),
            named: Vec::new(),
        }
    }
}

impl DecodeConfig {
    /// A configuration for `format` with every other setting at its default.
    pub fn new(format: Format) -> Self {
        DecodeConfig {
            format,
            ..DecodeConfig::default()
        }
    }

    /// The key's fields: those of a compound key, or `fields.key` alone.
    pub fn key_fields(&self) -> &[String] {
        if self.compound_key.len() > 1 {
            &self.compound_key
        } else {
            std::slice::from_ref(&self.fields.key)
        }
    }

    /// The names of the extra slots: the compound key's fields after the
    /// first, then the named fields.
    fn extra_names(&self) -> impl Iterator<Item = &str> {
        self.key_fields()
            .iter()
            .skip(1)
            .chain(self.named.iter().map(|n| &n.name))
            .map(String::as_str)
    }
}

/// One field value as found in a line, before conversion.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// A JSON string or any CSV field.
    Str(Cow<'a, str>),
    /// A JSON integer that fits `i64`.
    Int(i64),
    /// A JSON integer above `i64::MAX` that fits `u64`.
    UInt(u64),
    /// Any other JSON number.
    Float(f64),
    /// A JSON value that is not a string or a number.
    Other(&'static str),
}

/// The fields of one line that a decoder looks at, by [`Slot`].
#[derive(Debug, Default)]
pub(crate) struct Fields<'a> {
    slots: [Option<Scalar<'a>>; 4],
    /// The further key fields and the named fields ([`Slot::extra`]);
    /// empty (no allocation) for a job that names none.
    extras: Vec<Option<Scalar<'a>>>,
}

/// Which mapped field a name refers to: the four fixed ones (key, time,
/// value, partition), then the extra ones (the further fields of a
/// compound key, then the named fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot(u16);

#[allow(non_upper_case_globals)]
impl Slot {
    pub(crate) const Key: Slot = Slot(0);
    pub(crate) const Time: Slot = Slot(1);
    pub(crate) const Value: Slot = Slot(2);
    pub(crate) const Partition: Slot = Slot(3);

    /// Extra field `i`.
    pub(crate) fn extra(i: usize) -> Slot {
        Slot(4 + i as u16)
    }

    /// The bit of a fixed slot in a mask of slots, or `None` for an extra.
    #[inline]
    pub(crate) fn bit(self) -> Option<u8> {
        (self.0 < 4).then(|| 1 << self.0)
    }
}

impl<'a> Fields<'a> {
    #[inline]
    pub(crate) fn set(&mut self, slot: Slot, scalar: Scalar<'a>) {
        let i = usize::from(slot.0);
        match self.slots.get_mut(i) {
            Some(place) => *place = Some(scalar),
            None => self.set_extra(i - 4, scalar),
        }
    }

    /// Sets fixed slot `i` (below 4), the hot path of the CSV scanner.
    #[inline]
    pub(crate) fn set_fixed(&mut self, i: usize, scalar: Scalar<'a>) {
        if let Some(place) = self.slots.get_mut(i) {
            *place = Some(scalar);
        }
    }

    /// Sets extra slot `i`: out of line, so that jobs without extra
    /// fields keep [`Fields::set`] small.
    #[inline(never)]
    fn set_extra(&mut self, i: usize, scalar: Scalar<'a>) {
        if self.extras.len() <= i {
            self.extras.resize(i + 1, None);
        }
        if let Some(place) = self.extras.get_mut(i) {
            *place = Some(scalar);
        }
    }

    #[inline]
    pub(crate) fn take(&mut self, slot: Slot) -> Option<Scalar<'a>> {
        let i = usize::from(slot.0);
        match self.slots.get_mut(i) {
            Some(place) => place.take(),
            None => self.take_extra(i - 4),
        }
    }

    #[inline(never)]
    fn take_extra(&mut self, i: usize) -> Option<Scalar<'a>> {
        self.extras.get_mut(i).and_then(Option::take)
    }
}

/// Every field a decoder reads, by slot, as `config` names them.
pub(crate) fn mapped(config: &DecodeConfig) -> Vec<(Slot, &str)> {
    let f = &config.fields;
    let key = config
        .key_fields()
        .first()
        .map_or(f.key.as_str(), String::as_str);
    let mut slots = Vec::with_capacity(4 + config.named.len());
    if config.read_key || config.compound_key.len() > 1 {
        slots.push((Slot::Key, key));
    }
    if config.read_time {
        slots.push((Slot::Time, f.time.as_str()));
    }
    if config.read_value {
        slots.push((Slot::Value, f.value.as_str()));
    }
    if let Some(partition) = &f.partition {
        slots.push((Slot::Partition, partition.as_str()));
    }
    for (i, name) in config.extra_names().enumerate() {
        slots.push((Slot::extra(i), name));
    }
    slots
}

/// The key field name that means "the message key" ([`Decoder::decode_message`]).
pub const KEY_FIELD: &str = "@key";

/// The time field name that means "the message timestamp"
/// ([`Decoder::decode_message`]).
pub const TIMESTAMP_FIELD: &str = "@timestamp";

/// Decodes lines of one partition into records or dead letters.
///
/// A decoder is cheap to clone; a CSV decoder with `header` must be given
/// the header line with [`Decoder::set_header`] before it decodes rows.
#[derive(Clone, Debug)]
pub struct Decoder {
    config: DecodeConfig,
    json: jsonl::JsonFields,
    csv: csv::CsvColumns,
}

impl Decoder {
    /// A decoder for `config`. Without a header, CSV field names must be
    /// column indexes; a name that is not resolves to no column, so every
    /// row is a dead letter naming the missing field.
    pub fn new(config: &DecodeConfig) -> Self {
        Decoder {
            json: jsonl::JsonFields::of(&mapped(config)),
            csv: csv::CsvColumns::by_index_of(&mapped(config)),
            config: config.clone(),
        }
    }

    /// The configuration this decoder was built from.
    pub fn config(&self) -> &DecodeConfig {
        &self.config
    }

    /// Whether this decoder expects a header line before the first record.
    pub fn expects_header(&self) -> bool {
        self.config.format == Format::Csv && self.config.header
    }

    /// Resolves CSV field names against a header line (a no-op for JSON).
    pub fn set_header(&mut self, line: &[u8]) {
        if self.config.format == Format::Csv {
            let names = split_header(strip_cr(line));
            self.csv = csv::CsvColumns::by_name_of(&mapped(&self.config), &names);
        }
    }

    /// Decodes one line (without its `\n`; for CSV, one record, which may
    /// hold line breaks inside quoted fields) found at `offset` of
    /// `partition`.
    pub fn decode(&self, partition: PartitionId, offset: Offset, line: &[u8]) -> Decoded {
        self.decode_with(partition, offset, line, true, None)
    }

    /// Like [`Decoder::decode`], but always on the general (`serde_json` /
    /// `csv`) path. It gives the same results, more slowly; it exists to
    /// cross-check the fast path.
    pub fn decode_general(&self, partition: PartitionId, offset: Offset, line: &[u8]) -> Decoded {
        self.decode_with(partition, offset, line, false, None)
    }

    /// Decodes a message of a broker (the payload, with the message's key
    /// and timestamp). The key field [`KEY_FIELD`] (`@key`) takes the key
    /// from the message key instead of the payload, and the time field
    /// [`TIMESTAMP_FIELD`] (`@timestamp`) the event time from the message
    /// timestamp (epoch ms); other names are payload fields as in
    /// [`Decoder::decode`].
    pub fn decode_message(
        &self,
        partition: PartitionId,
        offset: Offset,
        payload: &[u8],
        key: Option<&[u8]>,
        timestamp: Option<i64>,
    ) -> Decoded {
        let f = &self.config.fields;
        if f.key != KEY_FIELD && f.time != TIMESTAMP_FIELD {
            return self.decode(partition, offset, payload);
        }
        self.decode_with(partition, offset, payload, true, Some((key, timestamp)))
    }

    /// Decodes a line; with `message` (a broker message's key and
    /// timestamp), the fields [`KEY_FIELD`] and [`TIMESTAMP_FIELD`] take
    /// them instead of the line's.
    fn decode_with(
        &self,
        partition: PartitionId,
        offset: Offset,
        line: &[u8],
        fast: bool,
        message: Option<(Option<&[u8]>, Option<i64>)>,
    ) -> Decoded {
        let line = strip_cr(line);
        let dead = |reason: String| DeadLetter::new(partition, offset, reason, line);
        let text = self.check_line(line).map_err(dead)?;
        let fields = self.fields(text, fast).map_err(dead)?;
        self.record(fields, partition, offset, line, message)
    }

    /// Decodes a line of a file holding several partitions in one pass over
    /// its fields: the partition its partition field names (as
    /// [`Decoder::partition_of`] reads it) goes through `seat`, which gives
    /// the owning partition and, for a line that cannot be a record
    /// whatever it holds, the dead-letter reason; `offset_of` gives the
    /// owner's offset for it, or `None` to leave the line undecoded.
    pub(crate) fn decode_shared(
        &self,
        line: &[u8],
        seat: impl FnOnce(Result<PartitionId, String>) -> (PartitionId, Option<String>),
        offset_of: impl FnOnce(PartitionId) -> Option<Offset>,
    ) -> Option<(PartitionId, Decoded)> {
        let stripped = strip_cr(line);
        let name = self.partition_field();
        let (fields, found) = match self
            .check_line(stripped)
            .and_then(|text| self.fields(text, true))
        {
            Ok(mut fields) => {
                let found = convert::partition(fields.take(Slot::Partition), name);
                (Some(fields), found)
            }
            Err(reason) => (None, Err(reason)),
        };
        let (owner, reason) = seat(found);
        let offset = offset_of(owner)?;
        let decoded = match (reason, fields) {
            (None, Some(fields)) => self.record(fields, owner, offset, stripped, None),
            (Some(reason), _) => Err(DeadLetter::new(owner, offset, reason, line)),
            (None, None) => Err(DeadLetter::new(owner, offset, "undecodable line", line)),
        };
        Some((owner, decoded))
    }

    /// The record of a line's fields.
    fn record(
        &self,
        mut fields: Fields<'_>,
        partition: PartitionId,
        offset: Offset,
        line: &[u8],
        message: Option<(Option<&[u8]>, Option<i64>)>,
    ) -> Decoded {
        let dead = |reason: String| DeadLetter::new(partition, offset, reason, line);
        let f = &self.config.fields;
        let key = match message {
            Some((key, _)) if f.key == KEY_FIELD => {
                let bytes = key.ok_or_else(|| dead("the message has no key (@key)".to_owned()))?;
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    dead(format!(
                        "the message key is not utf-8 (byte {})",
                        e.valid_up_to()
                    ))
                })?;
                Key::from(text)
            }
            _ if self.config.compound_key.len() > 1 => {
                self.compound_key(&mut fields).map_err(dead)?
            }
            _ if !self.config.read_key => Key::default(),
            _ => convert::key(fields.take(Slot::Key), &f.key).map_err(dead)?,
        };
        let event_time = match message {
            Some((_, timestamp)) if f.time == TIMESTAMP_FIELD => {
                let ms = timestamp
                    .ok_or_else(|| dead("the message has no timestamp (@timestamp)".to_owned()))?;
                convert::time(Some(Scalar::Int(ms)), TIMESTAMP_FIELD, TimeFormat::EpochMs)
            }
            _ if !self.config.read_time => Ok(crate::MIN_EVENT_TIME),
            _ => convert::time(fields.take(Slot::Time), &f.time, self.config.time_format),
        }
        .map_err(dead)?;
        let value = if !self.config.read_value {
            Ok(crate::record::Value::Int(1))
        } else if self.config.require_value {
            convert::value(fields.take(Slot::Value), &f.value)
        } else {
            convert::optional_value(fields.take(Slot::Value), &f.value)
        }
        .map_err(dead)?;
        let named = if self.config.named.is_empty() {
            Vec::new()
        } else {
            self.named_fields(&mut fields).map_err(dead)?
        };
        Ok(Record {
            partition,
            offset,
            key,
            event_time,
            value,
            fields: named,
        })
    }

    /// The key of a compound key's fields (out of line: most jobs have a
    /// key of one field, and the hot path stays small).
    #[inline(never)]
    fn compound_key(&self, fields: &mut Fields<'_>) -> Result<Key, String> {
        let names = &self.config.compound_key;
        let mut parts = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let slot = if i == 0 {
                Slot::Key
            } else {
                Slot::extra(i - 1)
            };
            parts.push(convert::key(fields.take(slot), name)?);
        }
        Ok(crate::record::join_key(&parts))
    }

    /// The named fields, in order (out of line, as [`Decoder::compound_key`]).
    #[inline(never)]
    fn named_fields(&self, fields: &mut Fields<'_>) -> Result<Vec<Field>, String> {
        let first = self.config.key_fields().len() - 1;
        let mut named = Vec::with_capacity(self.config.named.len());
        for (i, field) in self.config.named.iter().enumerate() {
            let found = fields.take(Slot::extra(first + i));
            named.push(convert::field(found, &field.name, field.number)?);
        }
        Ok(named)
    }

    /// The partition a line names in its partition field, or why it names
    /// none. `Err` also covers lines that are not decodable at all.
    pub(crate) fn partition_of(&self, line: &[u8]) -> Result<PartitionId, String> {
        let line = strip_cr(line);
        let text = self.check_line(line)?;
        let name = self.partition_field();
        if self.config.format == Format::Csv {
            // Most rows: only the partition column is looked at.
            if let Some(field) = self.csv.fast_partition(text) {
                return convert::partition(field.map(|f| Scalar::Str(Cow::Borrowed(f))), name);
            }
        }
        let mut fields = self.fields(text, true)?;
        convert::partition(fields.take(Slot::Partition), name)
    }

    /// A cheap look at a line's partition field, for counting partitions:
    /// `Some(p)` promises that [`Decoder::partition_of`] gives `Ok(p)` or an
    /// error for this line (never another partition); `None` promises
    /// nothing. Nothing else of the line is checked, so `p` may belong to a
    /// line that is no record at all.
    pub(crate) fn partition_hint(&self, scan: &PartitionScan, line: &[u8]) -> Option<PartitionId> {
        let line = strip_cr(line);
        let field = match (self.config.format, &scan.json_key) {
            (Format::Csv, _) => {
                if line.starts_with(b"\xEF\xBB\xBF")
                    || memchr::memchr3(b'"', b'\r', b'\n', line).is_some()
                {
                    return None;
                }
                let column = self.csv.partition_column()?;
                let start = match column {
                    0 => 0,
                    c => memchr::memchr_iter(b',', line).nth(c - 1)? + 1,
                };
                let rest = line.get(start..)?;
                let end = memchr::memchr(b',', rest).unwrap_or(rest.len());
                let field = rest.get(..end)?;
                field.trim_ascii()
            }
            (Format::Jsonl, Some(key)) => {
                // One occurrence of the quoted name and no escapes: in a
                // valid line it is the field itself (or a nested one, and
                // the field is missing).
                if memchr::memchr(b'\\', line).is_some() {
                    return None;
                }
                let at = key.find(line)?;
                let after = line.get(at + key.needle().len()..)?;
                if key.find(after).is_some() {
                    return None;
                }
                let after = after.trim_ascii_start().strip_prefix(b":")?;
                let after = after.trim_ascii_start();
                let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
                match after.get(digits) {
                    Some(b',' | b'}' | b' ' | b'\t') => {}
                    _ => return None,
                }
                after.get(..digits)?
            }
            (Format::Jsonl, None) => return None,
        };
        if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(field).ok()?.parse().ok()
    }

    /// What [`Decoder::partition_hint`] needs, built once.
    pub(crate) fn partition_scan(&self) -> PartitionScan {
        let name = self.partition_field();
        // A nested path or a name that needs escaping: no shortcut.
        let plain = !name.contains(['.', '"', '\\']) && !name.chars().any(char::is_control);
        PartitionScan {
            json_key: (self.config.format == Format::Jsonl && plain).then(|| {
                memchr::memmem::Finder::new(format!("\"{name}\"").as_bytes()).into_owned()
            }),
        }
    }

    /// The name of the partition field, as reasons give it.
    fn partition_field(&self) -> &str {
        self.config
            .fields
            .partition
            .as_deref()
            .unwrap_or("partition")
    }

    /// The line checks every format shares; returns the line as text.
    #[inline]
    fn check_line<'a>(&self, line: &'a [u8]) -> Result<&'a str, String> {
        if line.len() > self.config.max_line_len {
            return Err(too_long_reason(self.config.max_line_len));
        }
        // Only a line that starts with whitespace can be blank.
        if line.first().is_none_or(u8::is_ascii_whitespace)
            && line.iter().all(u8::is_ascii_whitespace)
        {
            return Err("empty line".to_owned());
        }
        std::str::from_utf8(line).map_err(|e| format!("invalid utf-8 at byte {}", e.valid_up_to()))
    }

    fn fields<'a>(&self, text: &'a str, fast: bool) -> Result<Fields<'a>, String> {
        match self.config.format {
            Format::Jsonl => {
                if fast {
                    if let Some(fields) = self.json.fast(text) {
                        return Ok(fields);
                    }
                }
                self.json.general(text)
            }
            Format::Csv => {
                if fast {
                    if let Some(fields) = self.csv.fast(text) {
                        return Ok(fields);
                    }
                }
                self.csv.general(text)
            }
        }
    }
}

/// The searcher [`Decoder::partition_hint`] uses (the partition field's
/// quoted name, for JSON lines).
pub(crate) struct PartitionScan {
    json_key: Option<memchr::memmem::Finder<'static>>,
}

/// The dead-letter reason for a line over the length limit.
pub(crate) fn too_long_reason(max: usize) -> String {
    format!("line exceeds the maximum length of {max} bytes")
}

/// Drops one trailing `\r` (CRLF line endings).
pub(crate) fn strip_cr(line: &[u8]) -> &[u8] {
    match line.split_last() {
        Some((b'\r', rest)) => rest,
        _ => line,
    }
}

#[cfg(test)]
mod hint_tests {
    use proptest::prelude::*;

    use super::*;

    fn decoder(format: Format, partition: &str, header: bool) -> Decoder {
        let mut config = DecodeConfig::new(format);
        config.header = header;
        config.fields.partition = Some(partition.into());
        if format == Format::Csv && !header {
            config.fields.key = "1".into();
            config.fields.time = "2".into();
            config.fields.value = "3".into();
        }
        Decoder::new(&config)
    }

    /// The promise of `partition_hint`: `Some(p)` means `partition_of`
    /// gives `Ok(p)` or an error.
    fn check(decoder: &Decoder, line: &[u8]) -> Result<(), TestCaseError> {
        let scan = decoder.partition_scan();
        if let Some(p) = decoder.partition_hint(&scan, line) {
            if let Ok(q) = decoder.partition_of(line) {
                prop_assert_eq!(q, p, "{:?}", String::from_utf8_lossy(line));
            }
        }
        Ok(())
    }

    #[test]
    fn hints_agree_with_the_partition_field_on_tricky_lines() {
        let json = decoder(Format::Jsonl, "partition", false);
        let scan = json.partition_scan();
        for (line, hint) in [
            (
                &br#"{"partition":3,"key":"a","ts":1,"value":1}"#[..],
                Some(3),
            ),
            (br#"{"key":"a", "partition" : 12 }"#, Some(12)),
            (br#"{"meta":{"partition":9},"partition":1}"#, None),
            (br#"{"partition":"2"}"#, None),
            (br#"{"partition":2.0}"#, None),
            (br#"{"partition":-1}"#, None),
            (br#"{"key":"\"partition\":7","partition":1}"#, None),
        ] {
            assert_eq!(
                json.partition_hint(&scan, line),
                hint,
                "{}",
                String::from_utf8_lossy(line)
            );
            check(&json, line).unwrap();
        }
        let csv = decoder(Format::Csv, "0", false);
        let scan = csv.partition_scan();
        for (line, hint) in [
            (&b"3,k,1,1"[..], Some(3)),
            (b" 4 ,k,1,1", Some(4)),
            (b"\"3\",k,1,1", None),
            (b"+3,k,1,1", None),
            (b"3\r", Some(3)),
            (b"x,k,1,1", None),
        ] {
            assert_eq!(
                csv.partition_hint(&scan, line),
                hint,
                "{}",
                String::from_utf8_lossy(line)
            );
            check(&csv, line).unwrap();
        }
        // Nested names have no shortcut.
        let nested = decoder(Format::Jsonl, "meta.p", false);
        let scan = nested.partition_scan();
        assert_eq!(nested.partition_hint(&scan, br#"{"meta":{"p":1}}"#), None);
    }

    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop::sample::select(vec![
            &b"{"[..],
            b"}",
            b"\"partition\"",
            b":",
            b",",
            b" ",
            b"\"",
            b"\\",
            b"1",
            b"23",
            b"-",
            b".5",
            b"\"k\"",
            b"{\"partition\":4}",
            b"\xff",
            b"\r",
            b"\xc2\xa0",
            b"0",
        ])
        .prop_map(<[u8]>::to_vec)
    }

    proptest! {
        #[test]
        fn a_hint_never_names_another_partition(parts in prop::collection::vec(fragment(), 0..14)) {
            let line: Vec<u8> = parts.concat();
            check(&decoder(Format::Jsonl, "partition", false), &line)?;
            check(&decoder(Format::Csv, "0", false), &line)?;
            check(&decoder(Format::Csv, "2", false), &line)?;
        }
    }
}
