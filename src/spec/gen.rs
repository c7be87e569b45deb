//! [`GenSpec`]: the generator's knobs with one grammar, as the flags of
//! `tidemark gen` (`--late-extra 2s`) and as the knob list of a `gen:`
//! input (`gen:late-extra=2s`): the same names, value types and parsers.

use std::fmt;
use std::str::FromStr;

use tidemark_sources::generator::DisorderShape;
use tidemark_sources::GeneratorConfig;

use super::values::DurationMs;
use super::SpecError;

/// The generator's knobs (see `tidemark_sources::generator` for what they
/// produce). Durations take units, like every duration of a job.
///
/// As text (after `gen:`): `NAME=VALUE` pairs separated by commas, the
/// names of the `tidemark gen` flags; knobs not named keep their defaults.
///
/// ```
/// use tidemark::spec::{DurationMs, GenSpec};
/// let g: GenSpec = "events=500,partitions=4,late-extra=2s".parse().unwrap();
/// assert_eq!((g.events, g.partitions), (500, 4));
/// assert_eq!(g.late_extra, "2s".parse::<DurationMs>().unwrap());
/// assert_eq!(g.to_string(), "events=500,partitions=4,late-extra=2s");
/// assert!("disorder=50".parse::<GenSpec>().is_err()); // 50 what?
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct GenSpec {
    /// Number of events, over all partitions.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = GenSpec::default().events))]
    pub events: u64,
    /// Number of distinct keys (named k0, k1, ...).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = GenSpec::default().keys))]
    pub keys: u32,
    /// Number of partitions; each key lives in one.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = GenSpec::default().partitions))]
    pub partitions: u32,
    /// Events per millisecond of arrival time.
    #[cfg_attr(feature = "cli", arg(long, value_name = "F", default_value_t = GenSpec::default().rate))]
    pub rate: f64,
    /// First arrival time, in epoch milliseconds.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "MS", allow_negative_numbers = true, default_value_t = GenSpec::default().start)
    )]
    pub start: i64,
    /// Scale of an in-order event's delay, e.g. 50ms: its largest value
    /// (uniform), its mean (exp) or the Pareto scale.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "DUR", allow_hyphen_values = true, default_value_t = GenSpec::default().disorder)
    )]
    pub disorder: DurationMs,
    /// How in-order delays are distributed: uniform, exp (exponential,
    /// cut at 20 times --disorder) or pareto:ALPHA (heavy-tailed, cut at
    /// 1000 times --disorder).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "SHAPE", default_value_t = GenSpec::default().disorder_shape)
    )]
    pub disorder_shape: DisorderShape,
    /// Fraction of events that are late stragglers, 0 to 1.
    #[cfg_attr(feature = "cli", arg(long, value_name = "F", default_value_t = GenSpec::default().late_frac))]
    pub late_frac: f64,
    /// How far beyond --disorder a straggler may be, e.g. 2s.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "DUR", allow_hyphen_values = true, default_value_t = GenSpec::default().late_extra)
    )]
    pub late_extra: DurationMs,
    /// 0: uniform keys; above 0: the zipf exponent of key popularity.
    #[cfg_attr(feature = "cli", arg(long, value_name = "F", default_value_t = GenSpec::default().skew))]
    pub skew: f64,
    /// Pause the whole stream every N events (0: never).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = GenSpec::default().gap_every))]
    pub gap_every: u64,
    /// Length of each pause, e.g. 10s (also accepted as --gap-ms).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "gap",
            alias = "gap-ms",
            value_name = "DUR",
            allow_hyphen_values = true,
            default_value_t = GenSpec::default().gap
        )
    )]
    pub gap: DurationMs,
    /// Random seed.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = GenSpec::default().seed))]
    pub seed: u64,
}

impl Default for GenSpec {
    /// The generator's own defaults.
    fn default() -> Self {
        let c = GeneratorConfig::default();
        let ms = |v: i64| DurationMs::new(v).unwrap_or_default();
        GenSpec {
            events: c.events,
            keys: c.keys,
            partitions: c.partitions,
            rate: c.rate,
            start: c.start,
            disorder: ms(c.disorder),
            disorder_shape: c.disorder_shape,
            late_frac: c.late_frac,
            late_extra: ms(c.late_extra),
            skew: c.skew,
            gap_every: c.gap_every,
            gap: ms(c.gap_ms),
            seed: c.seed,
        }
    }
}

impl From<&GenSpec> for GeneratorConfig {
    fn from(g: &GenSpec) -> GeneratorConfig {
        // No `..`: a knob that is not passed on does not compile.
        let GenSpec {
            events,
            keys,
            partitions,
            rate,
            start,
            disorder,
            disorder_shape,
            late_frac,
            late_extra,
            skew,
            gap_every,
            gap,
            seed,
        } = *g;
        GeneratorConfig {
            events,
            keys,
            partitions,
            rate,
            start,
            disorder: disorder.millis(),
            disorder_shape,
            late_frac,
            late_extra: late_extra.millis(),
            skew,
            gap_every,
            gap_ms: gap.millis(),
            seed,
        }
    }
}

/// One knob: its name (the flag's), and how to set it from text or print
/// it when it differs from the default.
struct Knob {
    name: &'static str,
    set: fn(&mut GenSpec, &str) -> Result<(), String>,
    show: fn(&GenSpec, &GenSpec) -> Option<String>,
}

macro_rules! knobs {
    ($($name:literal => $field:ident),* $(,)?) => {
        &[$(Knob {
            name: $name,
            set: |g, v| {
                g.$field = v.parse().map_err(|e| format!("{e}"))?;
                Ok(())
            },
            show: |g, d| (g.$field != d.$field).then(|| g.$field.to_string()),
        }),*]
    };
}

/// Every knob, in the order of the flags.
const KNOBS: &[Knob] = knobs![
    "events" => events,
    "keys" => keys,
    "partitions" => partitions,
    "rate" => rate,
    "start" => start,
    "disorder" => disorder,
    "disorder-shape" => disorder_shape,
    "late-frac" => late_frac,
    "late-extra" => late_extra,
    "skew" => skew,
    "gap-every" => gap_every,
    "gap" => gap,
    "seed" => seed,
];

impl GenSpec {
    /// The knob names, as flags of `tidemark gen` and in `gen:` inputs.
    pub fn knob_names() -> impl Iterator<Item = &'static str> {
        KNOBS.iter().map(|k| k.name)
    }
}

impl FromStr for GenSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let mut g = GenSpec::default();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(SpecError(format!(
                    "invalid generator option \"{pair}\": expected NAME=VALUE"
                )));
            };
            let (name, value) = (name.trim(), value.trim());
            let canonical = match name.replace('_', "-").as_str() {
                "gap-ms" => "gap".to_owned(),
                other => other.to_owned(),
            };
            let Some(knob) = KNOBS.iter().find(|k| k.name == canonical) else {
                return Err(SpecError(format!(
                    "unknown generator option \"{name}\" (known: {})",
                    GenSpec::knob_names().collect::<Vec<_>>().join(", ")
                )));
            };
            (knob.set)(&mut g, value).map_err(|e| {
                SpecError(format!("invalid generator option {name}=\"{value}\": {e}"))
            })?;
        }
        Ok(g)
    }
}

impl fmt::Display for GenSpec {
    /// The knobs that differ from the defaults, as `FromStr` reads them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let defaults = GenSpec::default();
        let mut first = true;
        for knob in KNOBS {
            if let Some(value) = (knob.show)(self, &defaults) {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{}={value}", knob.name)?;
            }
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;

    /// The knob list and the flags of `tidemark gen` are one grammar: the
    /// same names, and the same value for the same text.
    #[test]
    fn knobs_are_the_flags() {
        use clap::{Args, Command, FromArgMatches};
        let cmd = GenSpec::augment_args(Command::new("gen"));
        let flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect();
        let names: Vec<String> = GenSpec::knob_names().map(str::to_owned).collect();
        assert_eq!(flags, names);

        let knobs = "events=7,keys=3,partitions=2,rate=0.5,start=-5,disorder=40ms,\
                     disorder-shape=pareto:1.5,late-frac=0.1,late-extra=2s,skew=1.5,\
                     gap-every=9,gap=1m,seed=4";
        let from_text: GenSpec = knobs.parse().unwrap();
        let argv =
            std::iter::once("gen".to_owned()).chain(knobs.split(',').map(|kv| format!("--{kv}")));
        let matches = cmd.try_get_matches_from(argv).unwrap();
        let from_flags = GenSpec::from_arg_matches(&matches).unwrap();
        assert_eq!(from_text, from_flags);
        assert_eq!(from_text.to_string(), knobs);
        assert_eq!(from_text.to_string().parse::<GenSpec>().unwrap(), from_text);
    }
}
