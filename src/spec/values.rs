//! The typed values of job options: durations, window specs, aggregation
//! lists, inputs, output paths and the enumerated choices. Each is parsed
//! once, by the same `FromStr` for a flag and for a job-file key (serde
//! deserializes through it), and prints back in the form it parses.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tidemark_engine::{BadRecords, Target};
use tidemark_sources::{Format, TimeFormat};
use tidemark_windows::fields::{Func, FUNCTIONS};
use tidemark_windows::{AggKind, AggSpec, Aggs, EmitMode, Millis, WindowSpec};

use super::{GenSpec, SpecError};

fn err<T>(msg: String) -> Result<T, SpecError> {
    Err(SpecError(msg))
}

/// Serializes through `Display`.
fn serialize_display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Deserializes a string through `FromStr`.
fn deserialize_from_str<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: FromStr<Err = SpecError>,
    D: Deserializer<'de>,
{
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// A duration of whole milliseconds, never negative, written with a unit:
/// `500ms`, `10s`, `5m`, `1m 30s` (a bare `0` is accepted too).
///
/// A bare number other than 0 is refused rather than guessed: `60` could
/// mean 60 ms or 60 s.
///
/// ```
/// use tidemark::spec::DurationMs;
/// assert_eq!("1m 30s".parse::<DurationMs>().unwrap().millis(), 90_000);
/// assert_eq!("0".parse::<DurationMs>().unwrap(), DurationMs::ZERO);
/// let e = "60".parse::<DurationMs>().unwrap_err();
/// assert_eq!(e.to_string(), "\"60\": a duration needs a unit, e.g. 60s or 60ms");
/// assert!("-1s".parse::<DurationMs>().is_err());
/// assert_eq!(DurationMs::new(1500).unwrap().to_string(), "1s 500ms");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationMs(Millis);

impl DurationMs {
    /// No time at all.
    pub const ZERO: DurationMs = DurationMs(0);

    /// `ms` milliseconds; an error if negative.
    pub fn new(ms: Millis) -> Result<DurationMs, SpecError> {
        if ms < 0 {
            return err(format!("\"{ms}ms\": durations cannot be negative"));
        }
        Ok(DurationMs(ms))
    }

    /// The length in milliseconds (never negative).
    pub fn millis(self) -> Millis {
        self.0
    }
}

impl From<DurationMs> for std::time::Duration {
    fn from(d: DurationMs) -> Self {
        std::time::Duration::from_millis(d.0.unsigned_abs())
    }
}

impl FromStr for DurationMs {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let text = text.trim();
        if text.starts_with('-') {
            return err(format!("\"{text}\": durations cannot be negative"));
        }
        if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
            if text.bytes().all(|b| b == b'0') {
                return Ok(DurationMs::ZERO);
            }
            return err(format!(
                "\"{text}\": a duration needs a unit, e.g. {text}s or {text}ms"
            ));
        }
        let d = humantime::parse_duration(text).map_err(|e| {
            SpecError(format!(
                "invalid duration \"{text}\": {e} (examples: 500ms, 10s, 5m)"
            ))
        })?;
        if d.subsec_nanos() % 1_000_000 != 0 {
            return err(format!(
                "invalid duration \"{text}\": durations are whole milliseconds"
            ));
        }
        Millis::try_from(d.as_millis())
            .map(DurationMs)
            .map_err(|_| SpecError(format!("invalid duration \"{text}\": too large")))
    }
}

impl fmt::Display for DurationMs {
    /// `0`, or the length with units (`1m 30s`, `500ms`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let d = std::time::Duration::from(*self);
        write!(f, "{}", humantime::format_duration(d))
    }
}

impl Serialize for DurationMs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_display(self, s)
    }
}

impl<'de> Deserialize<'de> for DurationMs {
    /// A string such as `"5s"`; an integer is treated as that bare number
    /// would be as text (only 0 is accepted).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DurationMs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with a unit such as \"500ms\" or \"10s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationMs, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DurationMs, E> {
                v.to_string().parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationMs, E> {
                v.to_string().parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A window spec as written in a flag or job file: `tumbling:SIZE`,
/// `sliding:SIZE/SLIDE` or `session:GAP`, durations with units.
///
/// ```
/// use tidemark::spec::JobWindow;
/// use tidemark::windows::WindowSpec;
/// let w: JobWindow = "sliding:10s/1s".parse().unwrap();
/// assert_eq!(w.spec(), WindowSpec::sliding(10_000, 1000));
/// assert_eq!(w.to_string(), "sliding:10s/1s");
/// assert!("tumbling:60".parse::<JobWindow>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobWindow(WindowSpec);

impl JobWindow {
    /// The grammar, for messages and help.
    pub const USAGE: &'static str = "tumbling:SIZE, sliding:SIZE/SLIDE or session:GAP";

    /// The window spec (aligned to the epoch).
    pub fn spec(self) -> WindowSpec {
        self.0
    }
}

impl FromStr for JobWindow {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let usage = JobWindow::USAGE;
        let Some((kind, rest)) = text.split_once(':') else {
            return err(format!(
                "invalid window \"{text}\": expected {usage} (e.g. tumbling:1m)"
            ));
        };
        let ms = |t: &str| t.parse::<DurationMs>().map(DurationMs::millis);
        let spec = match kind.trim() {
            "tumbling" => WindowSpec::tumbling(ms(rest)?),
            "sliding" => {
                let Some((size, slide)) = rest.split_once('/') else {
                    return err(format!(
                        "invalid window \"{text}\": expected {usage} (e.g. sliding:10s/1s)"
                    ));
                };
                WindowSpec::sliding(ms(size)?, ms(slide)?)
            }
            "session" => WindowSpec::session(ms(rest)?),
            other => return err(format!("unknown window kind \"{other}\": expected {usage}")),
        };
        spec.validate()
            .map_err(|e| SpecError(format!("invalid window \"{text}\": {e}")))?;
        Ok(JobWindow(spec))
    }
}

impl fmt::Display for JobWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |ms: Millis| DurationMs(ms);
        match self.0 {
            WindowSpec::Tumbling { size, .. } => write!(f, "tumbling:{}", d(size)),
            WindowSpec::Sliding { size, slide, .. } => {
                write!(f, "sliding:{}/{}", d(size), d(slide))
            }
            WindowSpec::Session { gap } => write!(f, "session:{}", d(gap)),
        }
    }
}

impl Serialize for JobWindow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_display(self, s)
    }
}

impl<'de> Deserialize<'de> for JobWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_from_str(d)
    }
}

/// A non-empty list of aggregations without repeats, in output order:
/// `count,sum,max` in a flag; the same string, or an array, in a job file.
///
/// Each aggregation is `[NAME=]FUNC[(FIELD[, Q])]` (see
/// [`AggSpec`](tidemark_windows::AggSpec)): `count`, `sum(amount)`,
/// `revenue=sum(amount)`, `quantile(latency, 0.99)`; commas inside
/// parentheses belong to the function. Bare `sum`, `min`, `max` and `mean`
/// read the record's value, as they always have.
///
/// ```
/// use tidemark::spec::AggList;
/// use tidemark::windows::AggKind;
///
/// let a: AggList = "count,max,count".parse().unwrap();
/// assert_eq!(a.kinds(), &[AggKind::Count, AggKind::Max]);
/// assert_eq!(a.to_string(), "count,max");
///
/// let b: AggList = "count, p99=quantile(latency, 0.99), count_distinct(user)".parse().unwrap();
/// assert!(b.kinds().is_empty());
/// let names: Vec<&str> = b.specs().iter().map(|s| s.name.as_str()).collect();
/// assert_eq!(names, ["count", "p99", "count_distinct_user"]);
/// ```
#[derive(Clone, Debug)]
pub struct AggList {
    specs: Vec<AggSpec>,
    /// The built-in kinds, when every aggregation is one of them.
    plain: Vec<AggKind>,
}

impl AggList {
    /// A list of `kinds` (repeats dropped); an error if empty.
    pub fn new(kinds: &[AggKind]) -> Result<AggList, SpecError> {
        let specs = kinds
            .iter()
            .map(|k| AggSpec::new(func_of(*k), None))
            .collect();
        AggList::of(specs)
    }

    /// A list of `specs` (repeats dropped); an error if empty or if two
    /// would write the same column.
    pub fn of(specs: Vec<AggSpec>) -> Result<AggList, SpecError> {
        let mut list: Vec<AggSpec> = Vec::new();
        for spec in specs {
            if !list.iter().any(|s| s.to_string() == spec.to_string()) {
                list.push(spec);
            }
        }
        if list.is_empty() {
            return err(format!(
                "an aggregation list names at least one of {FUNCTIONS}"
            ));
        }
        Aggs::new(list.clone()).map_err(SpecError)?;
        let plain = if list.iter().all(AggSpec::is_plain) {
            list.iter().filter_map(|s| kind_of(s.func)).collect()
        } else {
            Vec::new()
        };
        Ok(AggList { specs: list, plain })
    }

    /// The built-in aggregations, in output order, when the list holds only
    /// those (bare `count`, `sum`, `min`, `max`, `mean`); empty otherwise.
    pub fn kinds(&self) -> &[AggKind] {
        &self.plain
    }

    /// The aggregations, in output order.
    pub fn specs(&self) -> &[AggSpec] {
        &self.specs
    }

    /// The aggregations as one [`Aggs`].
    pub fn aggs(&self) -> Aggs {
        Aggs::new(self.specs.clone()).expect("checked when the list was made")
    }
}

fn func_of(kind: AggKind) -> Func {
    match kind {
        AggKind::Count => Func::Count,
        AggKind::Sum => Func::Sum,
        AggKind::Min => Func::Min,
        AggKind::Max => Func::Max,
        AggKind::Mean => Func::Mean,
    }
}

fn kind_of(func: Func) -> Option<AggKind> {
    Some(match func {
        Func::Count => AggKind::Count,
        Func::Sum => AggKind::Sum,
        Func::Min => AggKind::Min,
        Func::Max => AggKind::Max,
        Func::Mean => AggKind::Mean,
        _ => return None,
    })
}

/// Splits `text` at the commas outside parentheses.
pub(crate) fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

impl PartialEq for AggList {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for AggList {}

impl std::hash::Hash for AggList {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.to_string().hash(state);
    }
}

impl FromStr for AggList {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let mut specs = Vec::new();
        for part in split_top_level(text)
            .into_iter()
            .filter(|p| !p.trim().is_empty())
        {
            specs.push(part.parse::<AggSpec>().map_err(SpecError)?);
        }
        if specs.is_empty() {
            return err(format!(
                "invalid aggregation list \"{text}\": name at least one of {FUNCTIONS}"
            ));
        }
        AggList::of(specs)
    }
}

impl fmt::Display for AggList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, spec) in self.specs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{spec}")?;
        }
        Ok(())
    }
}

impl Serialize for AggList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_display(self, s)
    }
}

impl<'de> Deserialize<'de> for AggList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            List(Vec<String>),
        }
        let text = match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected a list of aggregations such as \"count,sum\" or [\"count\", \"sum(amount)\"]",
            )
        })? {
            Form::Text(t) => t,
            Form::List(l) => l.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A field name, or a list of them (a compound key): `"user"`,
/// `"country,page"` or `["country", "page"]` in a job file.
pub(crate) fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        List(Vec<String>),
    }
    match Form::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "expected a field name or a list of them, such as \"user\" or [\"country\", \"page\"]",
        )
    })? {
        Form::Text(t) => Ok(Some(t)),
        Form::List(l) if l.is_empty() => {
            Err(serde::de::Error::custom("the list of key fields is empty"))
        }
        Form::List(l) => Ok(Some(l.join(","))),
    }
}

/// Where a job reads: a partition directory or one file, standard input
/// (`-`), or the built-in generator (`gen:KNOBS`, see [`GenSpec`]).
///
/// ```
/// use tidemark::spec::Input;
/// let i: Input = "gen:events=10,keys=2".parse().unwrap();
/// assert!(matches!(&i, Input::Gen(g) if g.events == 10 && g.keys == 2));
/// assert_eq!(i.to_string(), "gen:events=10,keys=2");
/// assert!(matches!("logs/".parse().unwrap(), Input::Path(_)));
/// let stdin: Input = "-".parse().unwrap();
/// assert_eq!((&stdin, stdin.to_string().as_str()), (&Input::Stdin, "-"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A directory of partition files, or one file.
    Path(PathBuf),
    /// Standard input (`-`), read as one file: one partition, or those
    /// its partition field names.
    Stdin,
    /// The built-in generator with these knobs.
    Gen(GenSpec),
    /// A Kafka topic: `kafka://HOST:PORT/TOPIC`, with `?start=latest` to
    /// begin at its end instead of its earliest offset.
    Kafka(KafkaInput),
}

/// A Kafka topic as an input (see [`Input::Kafka`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaInput {
    /// `host:port[,host:port...]`.
    pub bootstrap: String,
    /// The topic.
    pub topic: String,
    /// Begin at the end of each partition when the job starts (only new
    /// records), instead of at the earliest offset.
    pub latest: bool,
}

impl FromStr for KafkaInput {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let bad = |why: &str| -> Result<KafkaInput, SpecError> {
            err(format!(
                "invalid Kafka input \"{text}\": {why} (expected kafka://HOST:PORT/TOPIC, optionally ?start=earliest or ?start=latest)"
            ))
        };
        let Some(rest) = text.strip_prefix("kafka://") else {
            return bad("it does not start with kafka://");
        };
        let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
        let Some((bootstrap, topic)) = address.split_once('/') else {
            return bad("no topic");
        };
        if bootstrap.is_empty() {
            return bad("no broker address");
        }
        if topic.is_empty() || topic.contains('/') {
            return bad("the topic must be one non-empty name");
        }
        let latest = match query {
            "" | "start=earliest" => false,
            "start=latest" => true,
            _ => return bad("the only option is start=earliest or start=latest"),
        };
        Ok(KafkaInput {
            bootstrap: bootstrap.to_owned(),
            topic: topic.to_owned(),
            latest,
        })
    }
}

impl fmt::Display for KafkaInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kafka://{}/{}", self.bootstrap, self.topic)?;
        if self.latest {
            f.write_str("?start=latest")?;
        }
        Ok(())
    }
}

impl FromStr for Input {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        if let Some(knobs) = text.strip_prefix("gen:") {
            return Ok(Input::Gen(knobs.parse()?));
        }
        if text.starts_with("kafka://") {
            return Ok(Input::Kafka(text.parse()?));
        }
        match text {
            "" => err(
                "an empty input path (give a partition directory, a file, - for standard input, or gen:KNOBS)"
                    .into(),
            ),
            "-" => Ok(Input::Stdin),
            path => Ok(Input::Path(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Path(p) => write!(f, "{}", p.display()),
            Input::Stdin => f.write_str("-"),
            Input::Gen(g) => write!(f, "gen:{g}"),
            Input::Kafka(k) => write!(f, "{k}"),
        }
    }
}

impl Serialize for Input {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_display(self, s)
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_from_str(d)
    }
}

/// Where an output goes: `-` for standard output, `kafka://HOST:PORT/TOPIC`
/// for a Kafka topic (result rows only), otherwise a file path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OutputPath {
    /// Standard output (`-`).
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
    /// A Kafka topic, written in transactions (result rows only; see
    /// `tidemark::kafka`).
    Kafka {
        /// `host:port[,host:port...]`.
        bootstrap: String,
        /// The topic.
        topic: String,
    },
}

impl OutputPath {
    /// The engine target: `None` for a Kafka topic, which is a sink of its
    /// own ([`JobSpec::to_builder`](crate::JobSpec::to_builder) opens it).
    pub fn target(&self) -> Option<Target> {
        match self {
            OutputPath::Stdout => Some(Target::Stdout),
            OutputPath::File(p) => Some(Target::File(p.clone())),
            OutputPath::Kafka { .. } => None,
        }
    }
}

impl FromStr for OutputPath {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        match text {
            "" => err("an empty output path (give a file, or - for standard output)".into()),
            "-" => Ok(OutputPath::Stdout),
            p if p.starts_with("kafka://") => {
                let k: KafkaInput = p.parse()?;
                if k.latest {
                    return err(format!(
                        "invalid Kafka output \"{p}\": ?start= applies to inputs"
                    ));
                }
                Ok(OutputPath::Kafka {
                    bootstrap: k.bootstrap,
                    topic: k.topic,
                })
            }
            p => Ok(OutputPath::File(PathBuf::from(p))),
        }
    }
}

impl fmt::Display for OutputPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputPath::Stdout => f.write_str("-"),
            OutputPath::File(p) => write!(f, "{}", p.display()),
            OutputPath::Kafka { bootstrap, topic } => write!(f, "kafka://{bootstrap}/{topic}"),
        }
    }
}

impl Serialize for OutputPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_display(self, s)
    }
}

impl<'de> Deserialize<'de> for OutputPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_from_str(d)
    }
}

/// The largest share of the lines read that may be bad (not decodable)
/// before a run counts as failed: a number from 0 to 1 or a percentage,
/// `0.5`, `50%`, `0.1%`. `0` fails on any bad line (after writing every
/// result, unlike `on-bad-record = "fail"`), `1` never fails for bad lines.
///
/// ```
/// use tidemark::spec::BadRatio;
/// let r: BadRatio = "10%".parse().unwrap();
/// assert_eq!(r, "0.1".parse().unwrap());
/// assert!(r.exceeded(11, 100));
/// assert!(!r.exceeded(10, 100));
/// assert!(!"1".parse::<BadRatio>().unwrap().exceeded(100, 100));
/// assert!("0".parse::<BadRatio>().unwrap().exceeded(1, 1_000_000));
/// assert!("1.5".parse::<BadRatio>().is_err());
/// assert_eq!(r.to_string(), "0.1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct BadRatio(f64);

impl BadRatio {
    /// A ratio known to lie in 0..=1 (for constants).
    pub(crate) const fn raw(ratio: f64) -> BadRatio {
        BadRatio(ratio)
    }

    /// `ratio`, if it lies in 0..=1.
    pub fn new(ratio: f64) -> Result<BadRatio, SpecError> {
        if (0.0..=1.0).contains(&ratio) {
            Ok(BadRatio(ratio))
        } else {
            err(format!(
                "\"{ratio}\": a ratio lies between 0 and 1 (or 0% and 100%), e.g. 0.5 or 50%"
            ))
        }
    }

    /// The share, from 0 to 1.
    pub fn get(self) -> f64 {
        self.0
    }

    /// Whether `bad` bad lines out of `read` lines read (good and bad) are
    /// more than this share. No line read is never too many.
    pub fn exceeded(self, bad: u64, read: u64) -> bool {
        read > 0 && bad as f64 > self.0 * read as f64
    }
}

impl FromStr for BadRatio {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let t = text.trim();
        let (number, scale) = match t.strip_suffix('%') {
            Some(n) => (n.trim_end(), 100.0),
            None => (t, 1.0),
        };
        match number.parse::<f64>() {
            Ok(n) if n.is_finite() => BadRatio::new(n / scale).map_err(|_| {
                SpecError(format!(
                    "\"{t}\": a ratio lies between 0 and 1 (or 0% and 100%), e.g. 0.5 or 50%"
                ))
            }),
            _ => err(format!(
                "\"{t}\" is not a ratio: give a number from 0 to 1 or a percentage, e.g. 0.5 or 50%"
            )),
        }
    }
}

impl fmt::Display for BadRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for BadRatio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for BadRatio {
    /// A number (`0.5`, `1`) or a string (`"50%"`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = BadRatio;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a ratio from 0 to 1 such as 0.5, or a percentage such as \"50%\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<BadRatio, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<BadRatio, E> {
                BadRatio::new(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<BadRatio, E> {
                BadRatio::new(v as f64).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<BadRatio, E> {
                BadRatio::new(v as f64).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Declares a job-option enum: serde names, clap values (with the `cli`
/// feature), `FromStr`/`Display` with those names, and the conversion into
/// the type the engine or sources take.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident => $target:ty, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal => $to:expr, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $text)]
                #[cfg_attr(feature = "cli", value(name = $text))]
                $variant,
            )+
        }

        impl $name {
            /// The name in flags and job files.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }
        }

        impl FromStr for $name {
            type Err = SpecError;
            fn from_str(text: &str) -> Result<Self, SpecError> {
                match text.trim() {
                    $( $text => Ok($name::$variant), )+
                    other => err(format!(
                        concat!("unknown ", $what, " \"{}\" (expected {})"),
                        other,
                        [$($text),+].join(" or ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for $target {
            fn from(v: $name) -> $target {
                match v { $( $name::$variant => $to, )+ }
            }
        }
    };
}

choice! {
    /// How input lines are encoded.
    pub enum InputFormat => Format, "format" {
        /// One JSON object per line.
        Jsonl = "jsonl" => Format::Jsonl,
        /// One CSV row per line.
        Csv = "csv" => Format::Csv,
    }
}

choice! {
    /// How the JSON outputs write window bounds.
    pub enum OutputTimeFormat => tidemark_engine::TimeText, "output time format" {
        /// Milliseconds since the Unix epoch, as numbers.
        EpochMs = "epoch-ms" => tidemark_engine::TimeText::EpochMs,
        /// RFC 3339 in UTC with milliseconds, as strings.
        Rfc3339 = "rfc3339" => tidemark_engine::TimeText::Rfc3339,
    }
}

choice! {
    /// How the time field encodes event time.
    pub enum EventTimeFormat => TimeFormat, "time format" {
        /// Milliseconds since the Unix epoch.
        EpochMs = "epoch-ms" => TimeFormat::EpochMs,
        /// Seconds since the Unix epoch, integer or fractional.
        EpochS = "epoch-s" => TimeFormat::EpochS,
        /// RFC 3339 text with a UTC offset, e.g. 2026-11-01T10:00:00+01:00.
        Rfc3339 = "rfc3339" => TimeFormat::Rfc3339,
    }
}

choice! {
    /// When window results are written.
    pub enum Emit => EmitMode, "emit mode" {
        /// One `final` row per window when the watermark passes its end;
        /// allowed-late records then add `retract` + `update` rows.
        Final = "final" => EmitMode::Final,
        /// Every change at once: `update` rows, `retract` + `update` for changes.
        Updates = "updates" => EmitMode::Updates,
    }
}

choice! {
    /// What to do with a record that cannot be decoded.
    pub enum OnBadRecord => BadRecords, "bad-record policy" {
        /// Write it to the dead-letter output (if any) and go on.
        Skip = "skip" => BadRecords::Skip,
        /// Stop the job with an error naming the record.
        Fail = "fail" => BadRecords::Fail,
    }
}

/// How often a checkpointed run takes checkpoints: an event-time interval
/// (`10s`, `1m`: at each multiple of it in stream time) or a number of
/// offsets per partition (`100000records`).
///
/// ```
/// use tidemark::spec::CheckpointInterval;
///
/// assert_eq!("10s".parse::<CheckpointInterval>().unwrap().to_string(), "10s");
/// assert_eq!("5000records".parse::<CheckpointInterval>().unwrap().to_string(), "5000records");
/// assert!("0s".parse::<CheckpointInterval>().is_err());
/// assert!("ten".parse::<CheckpointInterval>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointInterval(pub tidemark_engine::CheckpointEvery);

impl FromStr for CheckpointInterval {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let text = text.trim();
        if let Some(n) = text
            .strip_suffix("records")
            .or_else(|| text.strip_suffix("record"))
        {
            let n: u64 = n.trim().parse().map_err(|_| {
                SpecError(format!(
                    "\"{text}\" is neither a number of records such as 100000records nor an event-time interval such as 10s"
                ))
            })?;
            if n == 0 {
                return err(format!("\"{text}\": must be at least 1 record"));
            }
            return Ok(CheckpointInterval(
                tidemark_engine::CheckpointEvery::Records(n),
            ));
        }
        let d: DurationMs = text.parse().map_err(|e: SpecError| {
            SpecError(format!(
                "{} (an event-time interval such as 10s, or a record count such as 100000records)",
                e.0
            ))
        })?;
        if d.millis() == 0 {
            return err(format!("\"{text}\": must be more than 0"));
        }
        Ok(CheckpointInterval(
            tidemark_engine::CheckpointEvery::EventTime(d.millis()),
        ))
    }
}

impl fmt::Display for CheckpointInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            tidemark_engine::CheckpointEvery::EventTime(ms) => {
                write!(f, "{}", DurationMs(ms))
            }
            tidemark_engine::CheckpointEvery::Records(n) => write!(f, "{n}records"),
        }
    }
}

impl Serialize for CheckpointInterval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_display(self, s)
    }
}

impl<'de> Deserialize<'de> for CheckpointInterval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Partition offsets to reprocess from: `0:1200,1:800` (partitions not
/// named start at 0).
///
/// ```
/// use tidemark::spec::FromOffsets;
///
/// let o: FromOffsets = "0:1200,1:800".parse().unwrap();
/// assert_eq!(o.0.get(&1), Some(&800));
/// assert_eq!(o.to_string(), "0:1200,1:800");
/// assert!("0-12".parse::<FromOffsets>().is_err());
/// assert!("0:1,0:2".parse::<FromOffsets>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FromOffsets(pub std::collections::BTreeMap<u32, u64>);

impl FromStr for FromOffsets {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let mut map = std::collections::BTreeMap::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || {
                SpecError(format!(
                    "invalid --from-offsets entry \"{part}\": expected PARTITION:OFFSET, e.g. 0:1200,1:800"
                ))
            };
            let (p, o) = part.split_once(':').ok_or_else(bad)?;
            let p: u32 = p.trim().parse().map_err(|_| {
                SpecError(format!(
                    "invalid --from-offsets entry \"{part}\": \"{}\" is not a partition (0, 1, ...)",
                    p.trim()
                ))
            })?;
            let o: u64 = o.trim().parse().map_err(|_| {
                SpecError(format!(
                    "invalid --from-offsets entry \"{part}\": \"{}\" is not an offset (0, 1, ...)",
                    o.trim()
                ))
            })?;
            if map.insert(p, o).is_some() {
                return err(format!("--from-offsets names partition {p} twice"));
            }
        }
        if map.is_empty() {
            return err("--from-offsets needs at least one PARTITION:OFFSET, e.g. 0:1200".into());
        }
        Ok(FromOffsets(map))
    }
}

impl fmt::Display for FromOffsets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(p, o)| format!("{p}:{o}")).collect();
        f.write_str(&parts.join(","))
    }
}

impl Serialize for FromOffsets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_display(self, s)
    }
}

impl<'de> Deserialize<'de> for FromOffsets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A stream time to reprocess from: RFC 3339 or epoch milliseconds.
///
/// ```
/// use tidemark::spec::FromTime;
///
/// assert_eq!("1700000000000".parse::<FromTime>().unwrap().0, 1_700_000_000_000);
/// assert_eq!("2023-11-14T22:13:20Z".parse::<FromTime>().unwrap().0, 1_700_000_000_000);
/// assert!("yesterday".parse::<FromTime>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FromTime(pub i64);

impl FromStr for FromTime {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let text = text.trim();
        if let Ok(ms) = text.parse::<i64>() {
            return FromTime::from_millis(ms);
        }
        tidemark_sources::decode::parse_rfc3339(text)
            .map(FromTime)
            .ok_or_else(|| {
                SpecError(format!(
                    "invalid --from-time \"{text}\": expected RFC 3339 (2024-05-01T12:00:00Z) or epoch milliseconds"
                ))
            })
    }
}

impl FromTime {
    /// Epoch milliseconds; a number that reads as epoch *seconds* of this
    /// era (1e9 to 1e11: 2001 to 5138 in seconds, but only 1970-01-12 to
    /// 1973-03-03 in milliseconds) is refused rather than taken as a time
    /// in 1970 that every record is after.
    pub fn from_millis(ms: i64) -> Result<FromTime, SpecError> {
        if (1_000_000_000..100_000_000_000).contains(&ms) {
            let as_seconds = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(ms.unsigned_abs()),
            );
            return err(format!(
                "invalid --from-time {ms}: it reads as epoch seconds ({as_seconds}), but --from-time takes epoch milliseconds: give {}000, or RFC 3339",
                ms
            ));
        }
        Ok(FromTime(ms))
    }
}

impl fmt::Display for FromTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for FromTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for FromTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = FromTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time or epoch milliseconds")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FromTime, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FromTime, E> {
                FromTime::from_millis(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FromTime, E> {
                let v = i64::try_from(v).map_err(E::custom)?;
                FromTime::from_millis(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}
