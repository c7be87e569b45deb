//! Parsing the human forms of a job: durations (`500ms`, `10s`, `5m`),
//! window specs (`tumbling:1s`, `sliding:10s/1s`, `session:30s`),
//! aggregation lists (`count,sum`) and generator inputs
//! (`gen:events=1000,keys=10`).

use tidemark_sources::GeneratorConfig;
use tidemark_windows::{AggKind, Millis, WindowSpec};

/// A job option that could not be understood; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn err<T>(msg: String) -> Result<T, SpecError> {
    Err(SpecError(msg))
}

/// Parses a duration in milliseconds: a plain integer is milliseconds,
/// otherwise a human duration such as `500ms`, `10s`, `1m 30s`.
///
/// ```
/// use tidemark::spec::parse_millis;
/// assert_eq!(parse_millis("250").unwrap(), 250);
/// assert_eq!(parse_millis("1m 30s").unwrap(), 90_000);
/// assert!(parse_millis("soon").is_err());
/// ```
pub fn parse_millis(text: &str) -> Result<Millis, SpecError> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        if ms < 0 {
            return err(format!("invalid duration \"{text}\": must not be negative"));
        }
        return Ok(ms);
    }
    match humantime::parse_duration(text) {
        Ok(d) => Millis::try_from(d.as_millis())
            .map_err(|_| SpecError(format!("invalid duration \"{text}\": too large"))),
        Err(e) => err(format!(
            "invalid duration \"{text}\": {e} (examples: 500ms, 10s, 5m)"
        )),
    }
}

/// Parses `tumbling:SIZE`, `sliding:SIZE/SLIDE` or `session:GAP`.
///
/// ```
/// use tidemark::spec::parse_window;
/// use tidemark::windows::WindowSpec;
/// assert_eq!(parse_window("tumbling:1s").unwrap(), WindowSpec::tumbling(1000));
/// assert_eq!(parse_window("sliding:10s/1s").unwrap(), WindowSpec::sliding(10_000, 1000));
/// assert_eq!(parse_window("session:30s").unwrap(), WindowSpec::session(30_000));
/// ```
pub fn parse_window(text: &str) -> Result<WindowSpec, SpecError> {
    let usage = "expected tumbling:SIZE, sliding:SIZE/SLIDE or session:GAP";
    let Some((kind, rest)) = text.split_once(':') else {
        return err(format!("invalid window \"{text}\": {usage}"));
    };
    let spec = match kind.trim() {
        "tumbling" => WindowSpec::tumbling(parse_millis(rest)?),
        "sliding" => {
            let Some((size, slide)) = rest.split_once('/') else {
                return err(format!("invalid window \"{text}\": {usage}"));
            };
            WindowSpec::sliding(parse_millis(size)?, parse_millis(slide)?)
        }
        "session" => WindowSpec::session(parse_millis(rest)?),
        other => return err(format!("unknown window kind \"{other}\": {usage}")),
    };
    spec.validate()
        .map_err(|e| SpecError(format!("invalid window \"{text}\": {e}")))?;
    Ok(spec)
}

/// Parses a comma-separated aggregation list such as `count,sum,max`.
pub fn parse_aggs(text: &str) -> Result<Vec<AggKind>, SpecError> {
    let mut kinds = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let kind: AggKind = part.parse().map_err(SpecError)?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return err(format!(
            "invalid aggregation list \"{text}\": name at least one of count, sum, min, max, mean"
        ));
    }
    Ok(kinds)
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
            "disorder" => c.disorder = parse_millis(value)?,
            "late-frac" => c.late_frac = value.parse().map_err(|e| bad(&e))?,
            "late-extra" => c.late_extra = parse_millis(value)?,
            "skew" => c.skew = value.parse().map_err(|e| bad(&e))?,
            "gap-every" => c.gap_every = value.parse().map_err(|e| bad(&e))?,
            "gap-ms" => c.gap_ms = parse_millis(value)?,
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
