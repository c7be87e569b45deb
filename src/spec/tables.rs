//! The tables of a job file (`[[table]]`) and its enrichment steps
//! (`[[enrich]]`), and the `--table` / `--enrich` flags, which take the
//! same keys as an inline TOML table and go through the same parser.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tidemark_engine::table::{EnrichDef, JoinMode};
use tidemark_windows::Field;

use super::values::{DurationMs, EventTimeFormat, Input, InputFormat};

/// A table: a keyed changelog (`[[table]]` in a job file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TableSpec {
    /// Its name, which `[[enrich]]` steps, late records and dead letters
    /// use.
    pub name: String,
    /// A file, a directory of partition files, or `kafka://HOST:PORT/TOPIC`.
    pub input: Input,
    /// The table's key field (default `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The event-time field (default `ts`), or `"none"` for a static
    /// reference table read whole before the stream starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The fields a lookup attaches; a record with none of them (each
    /// missing or null) is a tombstone.
    #[serde(deserialize_with = "list_or_string")]
    pub fields: Vec<String>,
    /// Its watermark delay (default: the job's `delay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DurationMs>,
    /// How late an update may be and still enter the table (default 0;
    /// must be 0 when windows follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness: Option<DurationMs>,
    /// How far behind its partition's watermark a stream record may be and
    /// still be looked up (default: the job's lateness plus the window's
    /// size, or gap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<DurationMs>,
    /// As the job's `format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<InputFormat>,
    /// As the job's `header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// As the job's `time-format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_format: Option<EventTimeFormat>,
    /// As the job's `partition-field`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_field: Option<String>,
    /// As the job's `partition-glob`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_glob: Option<String>,
}

/// The time field value that makes a table static.
pub const STATIC_TIME: &str = "none";

impl TableSpec {
    /// A static reference table (`time = "none"`).
    pub fn is_static(&self) -> bool {
        self.time.as_deref() == Some(STATIC_TIME)
    }

    /// This table with a relative input path taken relative to `dir`.
    pub(crate) fn relative_to(self, dir: &Path) -> TableSpec {
        TableSpec {
            input: match self.input {
                Input::Path(p) if !p.is_absolute() => Input::Path(dir.join(p)),
                other => other,
            },
            ..self
        }
    }
}

/// An enrichment step (`[[enrich]]` in a job file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EnrichSpec {
    /// The table joined.
    pub table: String,
    /// The record field matched with the table's key.
    pub on: String,
    /// `inner` or `left` (default `left`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<JoinMode>,
    /// Left: the values of the table's fields when no version is valid.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub defaults: BTreeMap<String, DefaultValue>,
}

/// A default value: a string or a number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DefaultValue {
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Text(String),
}

impl From<&DefaultValue> for Field {
    fn from(v: &DefaultValue) -> Field {
        match v {
            DefaultValue::Int(i) => Field::Int(*i),
            DefaultValue::Float(f) => Field::Float(*f),
            DefaultValue::Text(t) => Field::Text(t.as_str().into()),
        }
    }
}

impl EnrichSpec {
    /// The engine's step.
    pub fn to_def(&self) -> EnrichDef {
        EnrichDef {
            table: self.table.clone(),
            on: self.on.clone(),
            mode: self.mode.unwrap_or_default(),
            defaults: self
                .defaults
                .iter()
                .map(|(k, v)| (k.clone(), Field::from(v)))
                .collect(),
        }
    }
}

/// `fields = "country"` or `fields = ["country", "tier"]`.
fn list_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(|f| f.trim().to_owned()).collect(),
        OneOrMany::Many(v) => v,
    })
}

/// Parses a flag's value as the keys of an inline TOML table (with or
/// without its braces): `name = "users", input = "users/", key = "user",
/// fields = ["country"]`.
fn inline<T: serde::de::DeserializeOwned>(flag: &str, text: &str) -> Result<T, String> {
    let body = text.trim();
    let body = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .unwrap_or(body);
    #[derive(Deserialize)]
    struct Wrap<T> {
        v: T,
    }
    toml::from_str::<Wrap<T>>(&format!("v = {{ {body} }}"))
        .map(|w| w.v)
        .map_err(|e| {
            let reason = e.message().to_owned();
            format!(
                "{flag} takes the keys of a job file's [[{}]] as an inline TOML table, e.g. {}: {reason}",
                &flag[2..],
                if flag == "--table" {
                    r#"--table 'name = "users", input = "users.jsonl", key = "user", fields = ["country"]'"#
                } else {
                    r#"--enrich 'table = "users", on = "user", mode = "left"'"#
                }
            )
        })
}

/// The `--table` flag's parser.
pub fn parse_table_flag(text: &str) -> Result<TableSpec, String> {
    inline("--table", text)
}

/// The `--enrich` flag's parser.
pub fn parse_enrich_flag(text: &str) -> Result<EnrichSpec, String> {
    inline("--enrich", text)
}
