//! Why the lines of a job's input do not decode: reads the first lines of
//! each partition again, looks at the bad ones against the job's format,
//! header, field names and time format, and names the likely cause with its
//! remedy (a hint for [`TooManyBad`](super::loud::TooManyBad)).

use std::io::{BufRead, Read};
use std::path::PathBuf;

use serde_json::Value as Json;
use tidemark::sources::{DeadLetter, Decoded, ReadStatus};
use tidemark::spec::{defaults, EventTimeFormat, Input, InputFormat};
use tidemark::JobSpec;

use super::loud::{location, shorten};

/// Lines read again per partition.
const SAMPLE_LINES: usize = 2_000;
/// Partitions read again.
const SAMPLE_PARTITIONS: usize = 32;
/// Bad lines kept.
const SAMPLE_BAD: usize = 64;

/// The bad lines among the first lines of the partitions.
struct Sample {
    bad: Vec<DeadLetter>,
}

/// Whether the input can be read again: a directory or a regular file
/// (not standard input or a pipe, which the run has consumed).
fn rereadable(spec: &JobSpec) -> bool {
    match &spec.input {
        Some(Input::Path(p)) if p.as_os_str() != "-" => {
            std::fs::metadata(p).is_ok_and(|m| m.is_dir() || m.is_file())
        }
        _ => false,
    }
}

fn sample(spec: &JobSpec, seen: &[DeadLetter]) -> Option<Sample> {
    if !rereadable(spec) {
        return Some(Sample { bad: seen.to_vec() });
    }
    let source = spec.source().ok()?;
    let mut bad = Vec::new();
    let mut read = Vec::new();
    for partition in source
        .partitions()
        .ok()?
        .into_iter()
        .take(SAMPLE_PARTITIONS)
    {
        let Ok(mut reader) = source.open(partition, 0) else {
            continue;
        };
        let mut seen = 0;
        while seen < SAMPLE_LINES && bad.len() < SAMPLE_BAD {
            read.clear();
            let Ok(status) = reader.read(256, &mut read) else {
                break;
            };
            seen += read.len();
            bad.extend(
                read.drain(..)
                    .filter_map(|d: Decoded| d.err())
                    .take(SAMPLE_BAD - bad.len()),
            );
            if status != ReadStatus::More {
                break;
            }
        }
    }
    Some(Sample { bad })
}

/// One field of the job's mapping: its flag, its name, whether the name is
/// the default.
struct Field {
    flag: &'static str,
    name: String,
    default: bool,
}

impl Field {
    fn describe(&self) -> String {
        if self.default {
            format!("\"{}\" ({}, the default)", self.name, self.flag)
        } else {
            format!("\"{}\" ({})", self.name, self.flag)
        }
    }
}

fn fields(spec: &JobSpec) -> Vec<Field> {
    let field = |flag, set: &Option<String>, default: &str| Field {
        flag,
        name: set.clone().unwrap_or_else(|| default.to_owned()),
        default: set.is_none(),
    };
    let mut all = vec![
        field("--key", &spec.key, defaults::KEY),
        field("--time", &spec.time, defaults::TIME),
        field("--value", &spec.value, defaults::VALUE),
    ];
    if let Some(p) = &spec.partition_field {
        all.push(field("--partition-field", &Some(p.clone()), ""));
    }
    all
}

/// What a dead letter's reason says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotJson,
    Missing,
    Time,
    Value,
    Other,
}

fn kind(reason: &str, fields: &[Field]) -> Kind {
    let time = &fields[1].name;
    let value = &fields[2].name;
    if reason.starts_with("invalid json") {
        Kind::NotJson
    } else if reason.starts_with("missing field \"") {
        Kind::Missing
    } else if reason.starts_with("invalid time \"")
        || reason.starts_with(&format!("wrong type for field \"{time}\""))
    {
        Kind::Time
    } else if reason.starts_with("invalid value \"")
        || reason.starts_with(&format!("wrong type for field \"{value}\""))
    {
        Kind::Value
    } else {
        Kind::Other
    }
}

/// The field a `missing field "X"` reason names.
fn missing_name(reason: &str) -> Option<&str> {
    reason.strip_prefix("missing field \"")?.strip_suffix('"')
}

/// The text an `invalid time "V" for format F in field "T"` reason shows.
fn shown_time(reason: &str) -> Option<&str> {
    let rest = reason.strip_prefix("invalid time \"")?;
    rest.rsplit_once("\" for format ").map(|(v, _)| v)
}

/// `YYYY-MM-DDThh:mm` at the start: RFC 3339 / ISO 8601 text.
fn looks_like_rfc3339(text: &str) -> bool {
    let b = text.trim().trim_matches('"').as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        r.into_iter()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && digits(11..13)
        && b.get(13) == Some(&b':')
}

fn number(text: &str) -> Option<f64> {
    text.trim()
        .trim_matches('"')
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
}

/// The columns of a CSV line, unquoted (enough to look at, not to decode).
fn columns(line: &str) -> Vec<String> {
    line.split(',')
        .map(|c| c.trim().trim_matches('"').to_owned())
        .collect()
}

/// A line whose columns all read as names: a header.
fn looks_like_names(cols: &[String]) -> bool {
    !cols.is_empty()
        && cols
            .iter()
            .all(|c| !c.is_empty() && number(c).is_none() && !looks_like_rfc3339(c))
}

/// The first line of the file a bad line came from, else of the first
/// partition file, BOM and line end removed.
fn first_line(spec: &JobSpec, bad: &[DeadLetter]) -> Option<(PathBuf, String)> {
    let named = bad
        .iter()
        .filter_map(|d| d.file.as_deref())
        .map(PathBuf::from)
        .find(|f| f.is_file());
    let Some(Input::Path(path)) = &spec.input else {
        return None;
    };
    let file = if let Some(file) = named {
        file
    } else if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .ok()?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        files.sort();
        files.into_iter().next()?
    } else {
        path.clone()
    };
    let mut line = Vec::new();
    let file_handle = std::fs::File::open(&file).ok()?;
    std::io::BufReader::new(file_handle.take(64 * 1024))
        .read_until(b'\n', &mut line)
        .ok()?;
    let text = String::from_utf8_lossy(&line);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Some((file, text.trim_end_matches(['\r', '\n']).to_owned()))
}

/// The field names of a JSON object line (nested objects as `a.b`).
fn json_fields(raw: &str) -> Option<Vec<(String, Json)>> {
    let Ok(Json::Object(map)) = serde_json::from_str::<Json>(raw) else {
        return None;
    };
    let mut out = Vec::new();
    for (name, value) in map {
        match value {
            Json::Object(inner) if !inner.is_empty() => {
                out.extend(inner.into_iter().map(|(n, v)| (format!("{name}.{n}"), v)))
            }
            v => out.push((name, v)),
        }
    }
    Some(out)
}

fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The likely cause of the bad lines of `spec`'s input, with its remedy,
/// and the first bad line. The input is read again from its start when it
/// can be; otherwise `seen`, the first bad lines of the run, are looked at.
pub fn diagnose(spec: &JobSpec, seen: &[DeadLetter]) -> String {
    let Some(sample) = sample(spec, seen) else {
        return "check --format, --key, --time, --value and --time-format against the input".into();
    };
    let Some(first) = sample.bad.first() else {
        return "the first lines of the input decode; the bad ones come later: --dead-letter FILE keeps them to look at".into();
    };
    let cause = cause(spec, &sample).unwrap_or_else(|| {
        "check --format, --key, --time, --value and --time-format against the bad lines".into()
    });
    let mut hint = format!(
        "{cause}\n  first bad line, at {}: {}",
        location(first),
        first.reason
    );
    if !first.raw.is_empty() {
        hint.push_str(&format!("\n    {}", shorten(&first.raw, 160)));
    }
    hint
}

fn cause(spec: &JobSpec, sample: &Sample) -> Option<String> {
    let format = spec.input_format();
    let header = spec.header.unwrap_or(defaults::HEADER);
    let fields = fields(spec);
    let bad = &sample.bad;
    let majority = |n: usize| 2 * n > bad.len();
    let why_csv = if spec.format.is_none() {
        " (the input's file names end in .csv)"
    } else {
        ""
    };

    // The wrong format.
    match format {
        InputFormat::Csv => {
            let json = bad
                .iter()
                .filter(|d| d.raw.trim_start().starts_with('{') && d.raw.contains("\":"))
                .count();
            if majority(json) {
                return Some(format!(
                    "the lines are JSON objects, but they are read as CSV{why_csv}: use --format jsonl"
                ));
            }
        }
        InputFormat::Jsonl => {
            let csv = bad
                .iter()
                .filter(|d| kind(&d.reason, &fields) == Kind::NotJson)
                .filter(|d| !d.raw.trim_start().starts_with(['{', '[']) && d.raw.contains(','))
                .count();
            if majority(csv) {
                return Some(
                    "the lines look like CSV, but they are read as JSON lines: use --format csv (and --header if the first line names the columns)"
                        .into(),
                );
            }
        }
    }

    // A header read as a record, or a record read as the header.
    if format == InputFormat::Csv && !header {
        if let Some(d) = bad
            .iter()
            .find(|d| d.offset == 0 && looks_like_names(&columns(&d.raw)))
        {
            let file = match &d.file {
                Some(f) => format!("\"{f}\""),
                None => format!("partition {}", d.partition),
            };
            return Some(format!(
                "the first line of {file} names the columns ({}), but without --header it is read as a record: add --header, then --key, --time and --value name columns",
                quoted_list(columns(&d.raw).iter().map(String::as_str))
            ));
        }
    }
    let header_line = (format == InputFormat::Csv && header)
        .then(|| first_line(spec, bad))
        .flatten();
    if let Some((file, line)) = &header_line {
        let cols = columns(line);
        if !looks_like_names(&cols)
            && bad
                .iter()
                .any(|d| kind(&d.reason, &fields) == Kind::Missing)
        {
            return Some(format!(
                "with --header the first line of \"{}\" ({}) is taken for the column names, but it looks like a record: drop --header and give --key, --time and --value as column numbers (0, 1, ...)",
                file.display(),
                shorten(line, 80)
            ));
        }
    }

    // The most common remaining problem, judged on its first bad line.
    let kinds = [
        Kind::Missing,
        Kind::Time,
        Kind::Value,
        Kind::NotJson,
        Kind::Other,
    ];
    let top = kinds.into_iter().max_by_key(|k| {
        let n = bad
            .iter()
            .filter(|d| kind(&d.reason, &fields) == *k)
            .count();
        // Ties go to the earlier kind.
        (n, std::cmp::Reverse(kinds.iter().position(|x| x == k)))
    })?;
    let d = bad.iter().find(|d| kind(&d.reason, &fields) == top)?;
    match top {
        Kind::Missing => missing_field(spec, &fields, d, header_line.as_ref()),
        Kind::Time => wrong_time(spec, &fields, d),
        Kind::Value => Some(format!(
            "the value field {} does not hold a number: --value names the field holding the number to aggregate",
            fields[2].describe()
        )),
        Kind::NotJson => Some(format!(
            "the lines at {} and others are not valid JSON: fix the input, or give --format if they are not JSON lines",
            location(d)
        )),
        Kind::Other => None,
    }
}

fn missing_field(
    spec: &JobSpec,
    fields: &[Field],
    d: &DeadLetter,
    header_line: Option<&(PathBuf, String)>,
) -> Option<String> {
    let name = missing_name(&d.reason)?;
    let field = fields.iter().find(|f| f.name == name)?;
    let what = format!("the records have no field {}", field.describe());
    let (names, candidates): (Vec<String>, Vec<String>) = match spec.input_format() {
        InputFormat::Jsonl => {
            let found = json_fields(&d.raw)?;
            let fits = |v: &Json| match field.flag {
                // Keys may be numbers too, but a text field is the likely one.
                "--key" => v.is_string(),
                "--time" => v.is_number() || v.as_str().is_some_and(looks_like_rfc3339),
                "--value" => v.is_number() || v.as_str().and_then(number).is_some(),
                _ => v.is_i64() || v.is_u64(),
            };
            let candidates = found
                .iter()
                .filter(|(n, v)| !fields.iter().any(|f| &f.name == n) && fits(v))
                .map(|(n, _)| n.clone())
                .collect();
            (found.into_iter().map(|(n, _)| n).collect(), candidates)
        }
        InputFormat::Csv => match header_line {
            Some((file, line)) => {
                let cols = columns(line);
                let candidates: Vec<String> = cols
                    .iter()
                    .filter(|c| !fields.iter().any(|f| &f.name == *c))
                    .cloned()
                    .collect();
                return Some(format!(
                    "{what}: the header of \"{}\" names the columns {}{}",
                    file.display(),
                    quoted_list(cols.iter().map(String::as_str)),
                    suggestion(field, &candidates)
                ));
            }
            None => {
                let n = columns(&d.raw).len();
                return Some(format!(
                    "{what}: the line at {} has {n} column(s), numbered 0 to {}: {} must be one of them",
                    location(d),
                    n.saturating_sub(1),
                    field.flag
                ));
            }
        },
    };
    Some(format!(
        "{what}: the line at {} has the fields {}{}",
        location(d),
        quoted_list(names.iter().map(String::as_str)),
        suggestion(field, &candidates)
    ))
}

/// The text of field `name` in a raw line, where it can be read: a JSON
/// object's field, or a column of CSV without a header.
fn raw_field(spec: &JobSpec, raw: &str, name: &str) -> Option<String> {
    match spec.input_format() {
        InputFormat::Jsonl => {
            json_fields(raw)?
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| match v {
                    Json::String(s) => s,
                    other => other.to_string(),
                })
        }
        InputFormat::Csv if !spec.header.unwrap_or(defaults::HEADER) => {
            columns(raw).into_iter().nth(name.parse().ok()?)
        }
        InputFormat::Csv => None,
    }
}

fn suggestion(field: &Field, candidates: &[String]) -> String {
    match candidates {
        [one] => format!("; perhaps {} {one}", field.flag),
        _ => format!("; name the right one with {}", field.flag),
    }
}

fn wrong_time(spec: &JobSpec, fields: &[Field], d: &DeadLetter) -> Option<String> {
    let format = spec.time_format.unwrap_or(defaults::TIME_FORMAT);
    let given = if spec.time_format.is_some() {
        format!("--time-format {format}")
    } else {
        format!("--time-format {format} (the default)")
    };
    let time = &fields[1];
    let from_raw = raw_field(spec, &d.raw, &time.name);
    let shown = shown_time(&d.reason).or(from_raw.as_deref());
    let found_number = d.reason.ends_with("found number") || shown.and_then(number).is_some();
    if shown.is_some_and(looks_like_rfc3339) && format != EventTimeFormat::Rfc3339 {
        return Some(format!(
            "the times in field {} are RFC 3339 text (\"{}\"), but they are read with {given}: add --time-format rfc3339",
            time.describe(),
            shown.unwrap_or_default()
        ));
    }
    if found_number {
        let magnitude = shown.and_then(number).map(f64::abs);
        let likely = match magnitude {
            Some(m) if m >= 1e11 => Some(EventTimeFormat::EpochMs),
            Some(m) if m >= 1e8 => Some(EventTimeFormat::EpochS),
            _ => None,
        };
        match (format, likely) {
            (EventTimeFormat::Rfc3339, Some(likely)) => {
                return Some(format!(
                    "the times in field {} are numbers, {}, but they are read with {given}: use --time-format {likely}",
                    time.describe(),
                    if likely == EventTimeFormat::EpochMs { "milliseconds since 1970 by their size" } else { "seconds since 1970 by their size" }
                ))
            }
            (EventTimeFormat::Rfc3339, None) => {
                return Some(format!(
                    "the times in field {} are numbers, but they are read with {given}: use --time-format epoch-ms (milliseconds since 1970) or epoch-s (seconds)",
                    time.describe()
                ))
            }
            (EventTimeFormat::EpochS, Some(EventTimeFormat::EpochMs)) => {
                return Some(format!(
                    "the times in field {} look like milliseconds since 1970 ({}), but they are read with {given}: use --time-format epoch-ms",
                    time.describe(),
                    shown.unwrap_or_default()
                ))
            }
            _ => {}
        }
    }
    Some(format!(
        "the time field {} holds {}, which is not a time with {given}: check --time (the field) and --time-format (epoch-ms, epoch-s or rfc3339)",
        time.describe(),
        shown.map_or_else(|| "a value of another type".to_owned(), |s| format!("\"{s}\""))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_times_and_headers() {
        assert!(looks_like_rfc3339("2026-11-01T10:00:00Z"));
        assert!(looks_like_rfc3339("\"2026-11-01 10:00:00+01:00\""));
        assert!(!looks_like_rfc3339("1793610000000"));
        assert!(looks_like_names(&columns("key,ts,value")));
        assert!(!looks_like_names(&columns("a,1000,1")));
        assert!(!looks_like_names(&columns("")));
    }

    #[test]
    fn reads_reasons() {
        assert_eq!(missing_name("missing field \"key\""), Some("key"));
        assert_eq!(
            shown_time("invalid time \"2026-01-01T00:00:00Z\" for format epoch-ms in field \"ts\""),
            Some("2026-01-01T00:00:00Z")
        );
        let f = json_fields("{\"user\":\"a\",\"meta\":{\"ts\":1}}").unwrap();
        let names: Vec<_> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["meta.ts", "user"], "sorted by name");
    }
}
