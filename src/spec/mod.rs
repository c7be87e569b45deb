//! Job specs: the typed options of a job, as one [`JobSpec`] that is both
//! the TOML job file and (with the `cli` feature) the flags of
//! `tidemark run`, and the human forms of its values — durations (`500ms`,
//! `10s`, `5m`), window specs (`tumbling:1s`, `sliding:10s/1s`,
//! `session:30s`), aggregation lists (`count,sum`) and generator inputs
//! (`gen:events=1000,keys=10`).

mod gen;
mod job;
pub mod tables;
mod values;

pub use gen::GenSpec;
pub use job::{defaults, JobSpec, MAX_BATCH_SIZE, MAX_PARTITIONS, MAX_WORKERS};
pub use values::{
    AggList, BadRatio, CheckpointInterval, DurationMs, Emit, EventTimeFormat, FromOffsets,
    FromTime, Input, InputFormat, JobWindow, KafkaInput, OnBadRecord, OutputPath,
};

use tidemark_sources::GeneratorConfig;
use tidemark_windows::{AggKind, Millis, WindowSpec};

/// A job option that could not be understood; the message names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

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

/// Parses generator knobs, the text after `gen:` (see [`GenSpec`]).
pub fn parse_generator(text: &str) -> Result<GeneratorConfig, SpecError> {
    text.parse::<GenSpec>().map(|g| GeneratorConfig::from(&g))
}
