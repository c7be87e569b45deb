//! Job specs: the typed options of a job, as one [`JobSpec`] that is both
//! the TOML job file and (with the `cli` feature) the flags of
//! `tidemark run`, and the human forms of its values — durations (`500ms`,
//! `10s`, `5m`), window specs (`tumbling:1s`, `sliding:10s/1s`,
//! `session:30s`), aggregation lists (`count,sum`) and generator inputs
//! (`gen:events=1000,keys=10`).

mod job;
mod values;

pub use job::{defaults, JobSpec, MAX_BATCH_SIZE, MAX_WORKERS};
pub use values::{
    AggList, DurationMs, Emit, EventTimeFormat, Input, InputFormat, JobWindow, OnBadRecord,
    OutputPath,
};

use tidemark_sources::GeneratorConfig;
use tidemark_windows::{AggKind, Millis, WindowSpec};

/// A job option that could not be understood; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn err<T>(msg: String) -> Result<T, SpecError> {
    Err(SpecError(msg))
}

/// Parses a duration in milliseconds with a unit, such as `500ms`, `10s`,
/// `1m 30s` (see [`DurationMs`]; a bare number other than 0 is refused).
///
/// ```
/// use tidemark::spec::parse_millis;
/// assert_eq!(parse_millis("250ms").unwrap(), 250);
/// assert_eq!(parse_millis("1m 30s").unwrap(), 90_000);
/// assert!(parse_millis("250").is_err());
/// assert!(parse_millis("soon").is_err());
/// ```
pub fn parse_millis(text: &str) -> Result<Millis, SpecError> {
    text.parse::<DurationMs>().map(DurationMs::millis)
}

/// Parses `tumbling:SIZE`, `sliding:SIZE/SLIDE` or `session:GAP` (see
/// [`JobWindow`]).
///
/// ```
/// use tidemark::spec::parse_window;
/// use tidemark::windows::WindowSpec;
/// assert_eq!(parse_window("tumbling:1s").unwrap(), WindowSpec::tumbling(1000));
/// assert_eq!(parse_window("sliding:10s/1s").unwrap(), WindowSpec::sliding(10_000, 1000));
/// assert_eq!(parse_window("session:30s").unwrap(), WindowSpec::session(30_000));
/// ```
pub fn parse_window(text: &str) -> Result<WindowSpec, SpecError> {
    text.parse::<JobWindow>().map(JobWindow::spec)
}

/// Parses a comma-separated aggregation list such as `count,sum,max`
/// (see [`AggList`]).
pub fn parse_aggs(text: &str) -> Result<Vec<AggKind>, SpecError> {
    text.parse::<AggList>().map(|a| a.kinds().to_vec())
}

/// Parses generator knobs `events=N,keys=N,partitions=N,rate=F,start=MS,
/// disorder=MS,late-frac=F,late-extra=MS,skew=F,gap-every=N,gap-ms=MS,
/// seed=N` (the text after `gen:`); unnamed knobs keep their defaults.
pub fn parse_generator(text: &str) -> Result<GeneratorConfig, SpecError> {
    let mut c = GeneratorConfig::default();
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((name, value)) = pair.split_once('=') else {
            return err(format!(
                "invalid generator option \"{pair}\": expected NAME=VALUE"
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        let bad = |e: &dyn std::fmt::Display| {
            SpecError(format!("invalid generator option {name}=\"{value}\": {e}"))
        };
        match name.replace('_', "-").as_str() {
            "events" => c.events = value.parse().map_err(|e| bad(&e))?,
            "keys" => c.keys = value.parse().map_err(|e| bad(&e))?,
            "partitions" => c.partitions = value.parse().map_err(|e| bad(&e))?,
            "rate" => c.rate = value.parse().map_err(|e| bad(&e))?,
            "start" => c.start = value.parse().map_err(|e| bad(&e))?,
            "disorder" => c.disorder = parse_millis(value).map_err(|e| bad(&e))?,
            "late-frac" => c.late_frac = value.parse().map_err(|e| bad(&e))?,
            "late-extra" => c.late_extra = parse_millis(value).map_err(|e| bad(&e))?,
            "skew" => c.skew = value.parse().map_err(|e| bad(&e))?,
            "gap-every" => c.gap_every = value.parse().map_err(|e| bad(&e))?,
            "gap-ms" => c.gap_ms = parse_millis(value).map_err(|e| bad(&e))?,
            "seed" => c.seed = value.parse().map_err(|e| bad(&e))?,
            _ => {
                return err(format!(
                    "unknown generator option \"{name}\" (known: events, keys, partitions, rate, start, disorder, late-frac, late-extra, skew, gap-every, gap-ms, seed)"
                ))
            }
        }
    }
    Ok(c)
}

/// The knobs of `c` that differ from the defaults, in the form
/// [`parse_generator`] reads (`events=100,keys=3`).
pub fn generator_knobs(c: &GeneratorConfig) -> String {
    let d = GeneratorConfig::default();
    let ms = |v: Millis| DurationMs::new(v).map_or_else(|_| format!("{v}ms"), |d| d.to_string());
    let mut knobs = Vec::new();
    macro_rules! knob {
        ($name:literal, $field:ident) => {
            if c.$field != d.$field {
                knobs.push(format!(concat!($name, "={}"), c.$field));
            }
        };
        ($name:literal, $field:ident, ms) => {
            if c.$field != d.$field {
                knobs.push(format!(concat!($name, "={}"), ms(c.$field)));
            }
        };
    }
    knob!("events", events);
    knob!("keys", keys);
    knob!("partitions", partitions);
    knob!("rate", rate);
    knob!("start", start);
    knob!("disorder", disorder, ms);
    knob!("late-frac", late_frac);
    knob!("late-extra", late_extra, ms);
    knob!("skew", skew);
    knob!("gap-every", gap_every);
    knob!("gap-ms", gap_ms, ms);
    knob!("seed", seed);
    knobs.join(",")
}
