//! Output targets and the JSON-lines formats of results, late records and
//! dead letters.
//!
//! Result rows look like
//! `{"key":"k1","start":1000,"end":2000,"count":3,"sum":7,"kind":"final"}`,
//! with one field per chosen aggregation, in the order chosen.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tidemark_sources::DeadLetter;
use tidemark_windows::{AggKind, Change, MetricValues, Number, SumValue, Window};

use crate::error::{EngineError, Result};

/// Where one output goes.
#[derive(Clone, Debug, Default)]
pub enum Target {
    /// Nowhere.
    #[default]
    Discard,
    /// The process's standard output.
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
    /// An in-memory buffer (for library users and tests).
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Target {
    /// A new shared in-memory buffer target and a handle to read it.
    pub fn buffer() -> (Target, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (Target::Buffer(Arc::clone(&buf)), buf)
    }

    fn describe(&self) -> String {
        match self {
            Target::Discard => "(discarded)".into(),
            Target::Stdout => "-".into(),
            Target::File(p) => p.display().to_string(),
            Target::Buffer(_) => "(buffer)".into(),
        }
    }

    pub(crate) fn open(&self, what: &'static str) -> Result<Writer> {
        let inner: Box<dyn Write> = match self {
            Target::Discard => Box::new(io::sink()),
            Target::Stdout => Box::new(io::stdout()),
            Target::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| EngineError::Output {
                        what,
                        path: dir.display().to_string(),
                        source,
                    })?;
                }
                Box::new(File::create(path).map_err(|source| EngineError::Output {
                    what,
                    path: path.display().to_string(),
                    source,
                })?)
            }
            Target::Buffer(buf) => Box::new(SharedBuffer(Arc::clone(buf))),
        };
        Ok(Writer {
            what,
            path: self.describe(),
            out: BufWriter::with_capacity(1 << 16, inner),
            line: String::new(),
        })
    }
}

struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.0.lock() {
            Ok(mut buf) => {
                buf.extend_from_slice(data);
                Ok(data.len())
            }
            Err(_) => Err(io::Error::other("output buffer poisoned")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The three outputs of a job.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Result rows.
    pub results: Target,
    /// Records dropped from at least one window as too late.
    pub late: Target,
    /// Records that could not be decoded.
    pub dead_letters: Target,
}

/// A buffered line writer for one output.
pub(crate) struct Writer {
    what: &'static str,
    path: String,
    out: BufWriter<Box<dyn Write>>,
    line: String,
}

impl Writer {
    fn err(&self, source: io::Error) -> EngineError {
        EngineError::Output {
            what: self.what,
            path: self.path.clone(),
            source,
        }
    }

    fn emit_line(&mut self) -> Result<()> {
        self.line.push('\n');
        let r = self.out.write_all(self.line.as_bytes());
        self.line.clear();
        r.map_err(|e| self.err(e))
    }

    /// Writes one already formatted line (without its newline).
    pub(crate) fn line(&mut self, line: &str) -> Result<()> {
        self.line.push_str(line);
        self.emit_line()
    }

    pub(crate) fn late(&mut self, event: &crate::Event, missed: &[Window]) -> Result<()> {
        format_late(event, missed, &mut self.line);
        self.emit_line()
    }

    pub(crate) fn dead(&mut self, letter: &DeadLetter) -> Result<()> {
        format_dead(letter, &mut self.line);
        self.emit_line()
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| self.err(e))
    }
}

fn push_json_string(s: &str, out: &mut String) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        // Nothing to escape (the common case): no allocation.
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // serde_json escapes exactly as JSON requires; a String never fails.
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}

/// Formats one result row as a JSON object (no newline).
pub fn format_row<K: AsRef<str>>(
    row: &Change<K, MetricValues>,
    kinds: &[AggKind],
    out: &mut String,
) {
    let mut ints = itoa::Buffer::new();
    out.push_str("{\"key\":");
    push_json_string(row.key.as_ref(), out);
    out.push_str(",\"start\":");
    out.push_str(ints.format(row.window.start));
    out.push_str(",\"end\":");
    out.push_str(ints.format(row.window.end));
    let v = &row.value;
    for kind in kinds {
        out.push_str(",\"");
        out.push_str(kind.name());
        out.push_str("\":");
        let _ = match kind {
            AggKind::Count => {
                out.push_str(ints.format(v.count.unwrap_or(0)));
                Ok(())
            }
            AggKind::Sum => match v.sum {
                Some(SumValue::Int(i)) => {
                    out.push_str(ints.format(i));
                    Ok(())
                }
                Some(s) => write!(out, "{s}"),
                None => write!(out, "null"),
            },
            AggKind::Min => write_opt(out, v.min),
            AggKind::Max => write_opt(out, v.max),
            AggKind::Mean => match v.mean {
                Some(m) => write!(out, "{}", Number::Float(m)),
                None => write!(out, "null"),
            },
        };
    }
    out.push_str(",\"kind\":\"");
    out.push_str(row.kind.name());
    out.push_str("\"}");
}

fn write_opt(out: &mut String, n: Option<Number>) -> std::fmt::Result {
    match n {
        Some(n) => write!(out, "{n}"),
        None => write!(out, "null"),
    }
}

/// Formats a late record: the input record and the windows it missed.
pub fn format_late(event: &crate::Event, missed: &[Window], out: &mut String) {
    let _ = write!(
        out,
        "{{\"partition\":{},\"offset\":{},\"key\":",
        event.partition, event.offset
    );
    push_json_string(&event.key, out);
    let _ = write!(
        out,
        ",\"ts\":{},\"value\":{},\"missed\":[",
        event.time, event.value
    );
    for (i, w) in missed.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"start\":{},\"end\":{}}}", w.start, w.end);
    }
    out.push_str("]}");
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
    out.push('}');
}

/// How bad records are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadRecords {
    /// Send them to the dead-letter output and go on.
    #[default]
    Skip,
    /// Stop the job with an error naming the record.
    Fail,
}

impl std::str::FromStr for BadRecords {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "skip" => Ok(BadRecords::Skip),
            "fail" => Ok(BadRecords::Fail),
            other => Err(format!(
                "unknown bad-record policy \"{other}\" (expected skip or fail)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::push_json_string;

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
}
