//! [`JobSpec`]: one job as a TOML job file and as the flags of
//! `tidemark run`, typed, with its defaults and the way a job file and flags
//! combine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
#[cfg(feature = "cli")]
use tidemark_engine::options::docs;
use tidemark_engine::{EngineError, Target};
use tidemark_sources::{
    DecodeConfig, FieldMapping, FileSource, FileSourceConfig, GeneratorSource, Source, SourceError,
};

use super::values::{
    AggList, BadRatio, CheckpointInterval, DurationMs, Emit, EventTimeFormat, FromOffsets,
    FromTime, Input, InputFormat, JobWindow, OnBadRecord, OutputPath, OutputTimeFormat,
};
use super::SpecError;
use crate::job::{AnyJobBuilder, Job, JobBuilder, JobError};
use tidemark_engine::JobAggregator;

/// The value an option takes when neither the job file nor a flag sets it.
/// [`JobSpec::to_builder`] applies exactly these, and `tidemark run --help`
/// shows them.
pub mod defaults {
    use super::{
        BadRatio, DurationMs, Emit, EventTimeFormat, InputFormat, OnBadRecord, OutputPath,
    };
    use tidemark_windows::AggKind;

    /// `key`: the key field.
    pub const KEY: &str = "key";
    /// `time`: the event-time field.
    pub const TIME: &str = "ts";
    /// `value`: the value field.
    pub const VALUE: &str = "value";
    /// `format`, unless the input is detected as csv (see
    /// [`JobSpec::input_format`](super::JobSpec::input_format)).
    pub const FORMAT: InputFormat = InputFormat::Jsonl;
    /// `header`.
    pub const HEADER: bool = false;
    /// `time-format`.
    pub const TIME_FORMAT: EventTimeFormat = EventTimeFormat::EpochMs;
    /// `delay`.
    pub const DELAY: DurationMs = DurationMs::ZERO;
    /// `lateness`.
    pub const LATENESS: DurationMs = DurationMs::ZERO;
    /// `emit`.
    pub const EMIT: Emit = Emit::Final;
    /// `agg`.
    pub const AGGS: &[AggKind] = &[AggKind::Count, AggKind::Sum];
    /// `workers`.
    pub const WORKERS: usize = 1;
    /// `batch-size`.
    pub const BATCH_SIZE: usize = tidemark_engine::options::DEFAULT_BATCH_SIZE;
    /// `on-bad-record`.
    pub const ON_BAD_RECORD: OnBadRecord = OnBadRecord::Skip;
    /// `max-bad-ratio`: a run fails when more than half of the lines it
    /// read were bad. A wrong field name, format or time format makes
    /// (nearly) every line bad; real data where most lines are bad is rare
    /// enough to ask for `max-bad-ratio = 1`.
    pub const MAX_BAD_RATIO: BadRatio = BadRatio::raw(0.5);
    /// `follow`.
    pub const FOLLOW: bool = false;
    /// `max-partitions`: with a partition field, the partitions `0..N` a
    /// file may hold.
    pub const MAX_PARTITIONS: u32 = tidemark_sources::file::DEFAULT_MAX_PARTITIONS;
    /// `output`: standard output.
    pub const OUTPUT: OutputPath = OutputPath::Stdout;
    /// `connect-timeout`: the engine's
    /// [`DEFAULT_CONNECT_TIMEOUT`](tidemark_engine::DEFAULT_CONNECT_TIMEOUT).
    pub const CONNECT_TIMEOUT: std::time::Duration = tidemark_engine::DEFAULT_CONNECT_TIMEOUT;
    /// `checkpoint-every`: ten seconds of event time.
    pub const CHECKPOINT_EVERY: super::CheckpointInterval =
        super::CheckpointInterval(tidemark_engine::CheckpointEvery::EventTime(10_000));
    /// `keep-checkpoints`.
    pub const KEEP_CHECKPOINTS: usize = tidemark_engine::checkpoint::DEFAULT_KEEP;
}

const MISSING_INPUT: &str =
    "missing --input (a partition directory, a file, - for standard input, or gen:KNOBS)";

/// A count from the command line: a whole number.
#[cfg(feature = "cli")]
fn count<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    let digits = text.trim();
    digits.parse().map_err(|_| {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            format!("\"{text}\" is too large")
        } else {
            format!("\"{text}\" is not a whole number")
        }
    })
}

/// The most worker threads a process may run.
pub const MAX_WORKERS: usize = 1024;

/// The largest batch size.
pub const MAX_BATCH_SIZE: usize = 1_000_000;

/// The largest `max-partitions`: the most partitions one file with a
/// partition field may hold.
pub const MAX_PARTITIONS: u32 = tidemark_sources::file::MAX_SHARED_PARTITIONS;

/// "TEXT [default: VALUE]", the way clap shows defaults, for options whose
/// default must not be a clap default (it would hide the job file's value).
#[cfg(feature = "cli")]
fn help(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

/// An engine option's doc text ([`tidemark_engine::options::docs`]) as a
/// help text: its lines joined.
#[cfg(feature = "cli")]
fn engine_doc(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The help of `--agg`.
#[cfg(feature = "cli")]
fn agg_help() -> String {
    format!(
        "Aggregations per window, comma-separated, each [NAME=]FUNC[(FIELD)]: count, sum, min, max, mean, count(FIELD) (non-null values), count_distinct(FIELD) (exact), approx_distinct(FIELD), quantile(FIELD, Q), earliest(FIELD), latest(FIELD) (by event time, then partition and offset). Bare sum/min/max/mean read --value. Columns: count, sum_amount, p99_latency, or NAME. Null or missing fields are skipped; text where a number is needed makes the record a dead letter. Accuracy: {}",
        tidemark_windows::fields::accuracy_note()
    )
}

#[cfg(feature = "cli")]
fn aggs_default() -> String {
    AggList::new(defaults::AGGS)
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// A job as written in a TOML job file or given as the flags of
/// `tidemark run`: the same names (a key `batch-size` is the flag
/// `--batch-size`), the same value syntax and the same parsers.
///
/// Every option is optional here; [`JobSpec::to_builder`] applies the
/// [`defaults`]. A job file and flags combine with [`JobSpec::overlay`]:
/// an option given as a flag replaces the job file's.
///
/// The booleans `header` and `follow` are `true`/`false` in a job file; as
/// flags, `--follow` alone means `--follow=true`, and `--follow=false`
/// turns off a job file's `follow = true`. Leaving the flag out keeps the
/// job file's value.
///
/// In a job file, relative paths (`input`, `output`, `late`,
/// `dead-letter`) are relative to the job file's directory
/// ([`JobSpec::from_file`]); as flags, to the current directory. `-` is
/// standard input (or output) in both, never a path.
///
/// ```
/// use tidemark::JobSpec;
/// let spec: JobSpec = toml::from_str(r#"
///     input = "gen:events=100,keys=3"
///     window = "tumbling:1s"
///     agg = "count,max"
/// "#).unwrap();
/// let job = spec.to_builder().unwrap().build().unwrap();
/// assert_eq!(job.config().aggregator.kinds().len(), 2);
///
/// // The same spec prints back as a job file.
/// let text = toml::to_string(&spec).unwrap();
/// assert_eq!(toml::from_str::<JobSpec>(&text).unwrap(), spec);
///
/// let spec: JobSpec = toml::from_str(r#"
///     input = "gen:events=100"
///     window = "tumbling:1s"
///     max-future-skew = "1h"
/// "#).unwrap();
/// let job = spec.to_builder().unwrap().build().unwrap();
/// assert_eq!(job.config().max_future_skew, Some(3_600_000));
///
/// let spec: JobSpec = toml::from_str(r#"
///     input = "gen:events=100"
///     window = "tumbling:1s"
///     connect-timeout = "5s"
/// "#).unwrap();
/// let job = spec.to_builder().unwrap().build().unwrap();
/// assert_eq!(job.config().connect_timeout, std::time::Duration::from_secs(5));
///
/// // `-` is standard input, in a job file as in a flag.
/// let stdin: JobSpec = toml::from_str(r#"
///     input = "-"
///     partition-field = "p"
///     partition-count = 4
///     max-partitions = 16
/// "#).unwrap();
/// assert_eq!(stdin.input, Some(tidemark::spec::Input::Stdin));
/// let text = toml::to_string(&stdin).unwrap();
/// assert_eq!(toml::from_str::<JobSpec>(&text).unwrap(), stdin);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct JobSpec {
    /// A partition directory, one file, or `gen:KNOBS` (the built-in
    /// generator, e.g. `gen:events=1000,keys=10,partitions=4`).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "PATH",
            help_heading = "Input",
            help = "A directory of partition files (one partition per file, see --partition-glob), one file (one partition, or those --partition-field names), - for standard input (read as one file), kafka://HOST:PORT/TOPIC for a Kafka topic (each of its partitions a partition; builds with the cargo feature kafka), or gen:KNOBS for the built-in generator (e.g. gen:events=1000,keys=10; see tidemark gen --help)"
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,

    /// A directory input: the files that are its partitions, a file-name
    /// glob (default: the format's extensions, `*.{jsonl,json,ndjson}` or
    /// `*.csv`).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "GLOB",
            help_heading = "Input",
            help = help("With a directory --input: the files that are its partitions, a file-name pattern (*, ?, [a-z], {a,b}; hidden files never match), numbered in natural name order (part-2 before part-10); no matching file is an error. Without --format, the pattern's extension (*.csv) sets the format, else jsonl", "*.{jsonl,json,ndjson}, or *.csv for csv")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_glob: Option<String>,

    /// How input lines are encoded (default jsonl, or csv when the input
    /// path ends in `.csv`).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            help_heading = "Input",
            help = help("How input lines are encoded", "jsonl, or csv for a file ending in .csv or a directory of .csv files")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<InputFormat>,

    /// CSV files start with a header line (default false).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "BOOL",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true",
            action = clap::ArgAction::Set,
            hide_possible_values = true,
            help_heading = "Input",
            help = help("CSV files start with a header line naming the columns (without one, --key/--time/--value are column numbers from 0); --header=false overrides a job file's header = true", defaults::HEADER)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,

    /// Key field name (default `key`).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "FIELD[,FIELD...]", help_heading = "Input", help = help("Field holding the key that windows are kept per; several, comma-separated, make a compound key, written as one output column per field (a missing key field makes the record a dead letter)", defaults::KEY))
    )]
    #[serde(
        default,
        deserialize_with = "super::values::string_or_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub key: Option<String>,

    /// Event-time field name (default `ts`).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "FIELD", help_heading = "Input", help = help("Field holding the event time", defaults::TIME))
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,

    /// Value field name (default `value`).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "FIELD", help_heading = "Input", help = help("Field holding the value to aggregate (a number)", defaults::VALUE))
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,

    /// Partition field name, for one file holding all partitions (default:
    /// none, one partition per file).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "FIELD",
            help_heading = "Input",
            help = help("Field naming each line's partition (0, 1, ...), when one file holds all partitions", "none")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_field: Option<String>,

    /// With `partition-field`: how many partitions the file holds, so
    /// that standard input or a followed file need not be read first to
    /// find them (default: one more than the largest in the input).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "N",
            value_parser = count::<u32>,
            allow_hyphen_values = true,
            help_heading = "Input",
            help = help("With --partition-field: the file holds partitions 0 to N-1 (a line naming another is a dead letter). Standard input and pipes are then read at once instead of to their end first, and a followed file has its partitions before their first line", "one more than the largest in the input, read first")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_count: Option<u32>,

    /// With `partition-field`: a line naming a partition at or above this
    /// is a dead letter `partition out of range` (default 10000).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "N",
            value_parser = count::<u32>,
            allow_hyphen_values = true,
            help_heading = "Input",
            help = help(&format!("With --partition-field: a line naming partition N or above is a dead letter (\"partition out of range\") instead of making that many partitions, each with its reader; 1 to {MAX_PARTITIONS}"), defaults::MAX_PARTITIONS)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_partitions: Option<u32>,

    /// How the time field encodes event time (default `epoch-ms`).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "FORMAT", help_heading = "Input", help = help("How the time field encodes event time", defaults::TIME_FORMAT))
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_format: Option<EventTimeFormat>,

    /// `tumbling:SIZE`, `sliding:SIZE/SLIDE` or `session:GAP` (required).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "SPEC",
            help_heading = "Windows",
            help = "tumbling:SIZE, sliding:SIZE/SLIDE or session:GAP, e.g. tumbling:1m, sliding:10s/1s, session:30s (required, here or in the job file)"
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<JobWindow>,

    /// Watermark delay (bounded out-of-orderness), default 0.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "DUR",
            allow_hyphen_values = true,
            help_heading = "Windows",
            help = help("Watermark delay, how far event time may run out of order: each partition's watermark trails its largest event time by this much, and a window fires when every partition's watermark has reached its end, e.g. 5s", defaults::DELAY)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<DurationMs>,

    /// Allowed lateness after a window fired, default 0.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "DUR",
            allow_hyphen_values = true,
            help_heading = "Windows",
            help = help("Allowed lateness: how long after a window fired late records still correct it (retract + update rows); later ones go to --late, e.g. 1m", defaults::LATENESS)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lateness: Option<DurationMs>,

    /// A record more than this ahead of its partition's stream time is a
    /// dead letter `future timestamp` and does not advance the stream time
    /// (default: off).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "DUR",
            allow_hyphen_values = true,
            help_heading = "Windows",
            help = help(&format!("{} E.g. 1h", engine_doc(docs::max_future_skew)), "off")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_future_skew: Option<DurationMs>,

    /// When results are written (default `final`).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "MODE", help_heading = "Windows", help = help("When result rows are written", defaults::EMIT))
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emit: Option<Emit>,

    /// Aggregations, any of count, sum, min, max, mean (default
    /// `count,sum`).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "LIST",
            help_heading = "Windows",
            help = help(&agg_help(), aggs_default())
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agg: Option<AggList>,

    /// Worker threads per process (default 1).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "N",
            value_parser = count::<usize>,
            allow_hyphen_values = true,
            help_heading = "Execution",
            help = help(&format!("Worker threads per process, 1 to {MAX_WORKERS} (the output does not depend on it)"), defaults::WORKERS)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,

    /// Records read from a partition per batch (default 1024).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "N",
            value_parser = count::<usize>,
            allow_hyphen_values = true,
            help_heading = "Execution",
            help = help(&format!("{} 1 to {MAX_BATCH_SIZE}", engine_doc(docs::batch_size)), defaults::BATCH_SIZE)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,

    /// Cluster mode: how long a process waits for every other process of
    /// the hostfile to be connected before it fails naming those it did
    /// not reach (default 60s).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "DUR",
            allow_hyphen_values = true,
            help_heading = "Cluster",
            help = help(&format!("{} E.g. 5m", engine_doc(docs::connect_timeout)), format!("{}s", defaults::CONNECT_TIMEOUT.as_secs()))
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<DurationMs>,

    /// Results file, `-` for standard output (the default).
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "PATH", help_heading = "Output", help = help("File for result rows (JSON lines), - for standard output, or kafka://HOST:PORT/TOPIC for a Kafka topic (written in transactions, exactly once with --checkpoint-dir; cargo feature kafka)", defaults::OUTPUT))
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputPath>,

    /// File for records dropped as too late (default: discarded).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "PATH",
            help_heading = "Output",
            help = help("File for records dropped as too late, with the window they missed", "discarded")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<OutputPath>,

    /// File for records that could not be decoded (default: the first few
    /// are shown on standard error by `tidemark run`, the rest counted).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "PATH",
            help_heading = "Output",
            help = help("File for lines that could not be decoded, with partition, offset and reason", "shown on standard error, the first 5, and counted in the summary")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<OutputPath>,

    /// File for the run's summary as JSON (written by `tidemark run` when
    /// the run ends: the numbers of the summary on standard error).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "PATH",
            help_heading = "Output",
            help = help("File for the run's summary as one JSON object (records, partitions, windows emitted, corrections as rows, late dropped and applied as records, unassigned, dead letters, final watermark, elapsed seconds), written when the run ends", "none")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_json: Option<PathBuf>,

    /// How window bounds are written in result rows and late records.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "FORMAT",
            help_heading = "Output",
            help = help(&engine_doc(docs::output_times), "epoch-ms")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_time_format: Option<OutputTimeFormat>,

    /// Serve the running job's stats for Prometheus at
    /// `http://ADDR/metrics` (`tidemark run`).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "ADDR",
            help_heading = "Output",
            help = help("Serve the running job's stats in the Prometheus text format at http://ADDR/metrics, e.g. 127.0.0.1:9464 (port 0: any free port; the address is printed)", "none")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<String>,

    /// Stats log: one JSON line per `stats-every` of stream time.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "PATH",
            help_heading = "Output",
            help = help("File for a stats log: a JSON line at each multiple of --stats-every of stream time where something was applied (per partition: next offset, stream time, watermark; records, late, dead letters; the watermark, the partition holding it, the lag), the same for any worker count or timing but for its \"wall\" object", "none")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<PathBuf>,

    /// The stats log's interval of stream time (default 10 s).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "DURATION",
            help_heading = "Output",
            help = help("With --stats: the interval of stream time between its lines", "10s")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_every: Option<DurationMs>,

    /// What to do with a record that cannot be decoded (default `skip`).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "POLICY",
            help_heading = "Input",
            help = help(&engine_doc(docs::bad_records), defaults::ON_BAD_RECORD)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_bad_record: Option<OnBadRecord>,

    /// The largest share of the lines read that may be bad before the run
    /// fails (default 0.5). Applied by `tidemark run` (see
    /// [`JobSpec::max_bad_ratio`]); a job built with
    /// [`JobSpec::to_builder`] does not check it.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "RATIO",
            allow_hyphen_values = true,
            help_heading = "Input",
            help = help("With --on-bad-record skip: the run fails (exit 1, after writing its results) when more than this share of the lines read could not be decoded, 0 to 1 or a percentage (0.01, 1%); 1 never fails", defaults::MAX_BAD_RATIO)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bad_ratio: Option<BadRatio>,

    /// Follow the input files as they grow (tail mode) instead of ending at
    /// their end (default false).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "BOOL",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true",
            action = clap::ArgAction::Set,
            hide_possible_values = true,
            help_heading = "Input",
            help = help("Keep reading the input files as they grow (tail mode) instead of ending at their end; stop with Ctrl-C. --follow=false overrides a job file's follow = true", defaults::FOLLOW)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<bool>,

    /// With `follow`: a partition caught up this long stops holding the
    /// watermark back (results then depend on timing). Default: never.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "DUR",
            allow_hyphen_values = true,
            help_heading = "Input",
            help = help(&format!("{} E.g. 10s", engine_doc(docs::idle_after)), "never")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_after: Option<DurationMs>,

    /// Checkpoint directory: take checkpoints there, and resume from the
    /// newest valid one when it holds any (default: no checkpoints).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "DIR",
            help_heading = "Checkpoints",
            help = help("Take checkpoints in this directory, and resume from its newest valid checkpoint when the same command runs again (the output files are cut back to what that checkpoint committed, so a crash at any moment loses and repeats nothing)", "no checkpoints")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_dir: Option<PathBuf>,

    /// How often checkpoints are taken (default `10s` of event time).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "INTERVAL",
            help_heading = "Checkpoints",
            help = help("With --checkpoint-dir: an event-time interval (a checkpoint cut at each multiple of it in stream time, written once the frontier passes it, e.g. 10s) or a count of offsets per partition (a cut after every Nth record of each, e.g. 100000records)", defaults::CHECKPOINT_EVERY)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<CheckpointInterval>,

    /// How many checkpoints are kept (default 3).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "N",
            value_parser = count::<usize>,
            help_heading = "Checkpoints",
            help = help("With --checkpoint-dir: how many complete checkpoints are kept (older ones are deleted)", defaults::KEEP_CHECKPOINTS)
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_checkpoints: Option<usize>,

    /// Ignore the checkpoints: start from offset 0 and replace the outputs
    /// (default false).
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "BOOL",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "true",
            action = clap::ArgAction::Set,
            hide_possible_values = true,
            help_heading = "Checkpoints",
            help = help("With --checkpoint-dir: delete its checkpoints and run from offset 0, replacing the outputs (after a change to the job, which a resume refuses)", "false")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<bool>,

    /// Reprocess: write only the output from these offsets on.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "P:O,...",
            allow_hyphen_values = true,
            help_heading = "Checkpoints",
            conflicts_with = "from_time",
            help = help("Reprocess from these partition offsets (0:1200,1:800; partitions not named start at 0): the output is exactly what a full run writes from the first frontier step whose records all lie at or beyond them. Starts from the newest checkpoint before that point (with --checkpoint-dir, which is then only read) or from the start", "off")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_offsets: Option<FromOffsets>,

    /// Reprocess: write only the output from this stream time on.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "TIME",
            allow_hyphen_values = true,
            help_heading = "Checkpoints",
            help = help("Reprocess from this stream time (RFC 3339 or epoch ms): the output is exactly what a full run writes from the frontier step at this time on. Starts from the newest checkpoint at or before it (with --checkpoint-dir, which is then only read) or from the start", "off")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_time: Option<FromTime>,

    /// Replay the time decisions a followed run recorded in this
    /// checkpoint directory.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "DIR",
            help_heading = "Checkpoints",
            help = help("Replay the time decisions (idle releases, where it was stopped) that a run with --follow --idle-after --checkpoint-dir DIR recorded in DIR/decisions.jsonl: over the same input, the output is that run's, whatever the timing", "off")
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_decisions: Option<PathBuf>,

    /// Tables: keyed changelogs whose versions enrich the stream's records
    /// as of their event time (`[[table]]` in a job file).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "table",
            value_name = "KEYS",
            value_parser = super::tables::parse_table_flag,
            help_heading = "Tables",
            help = "A table, with the keys of a job file's [[table]] as an inline TOML table: name, input, key, time (\"none\": a static table read whole first), fields (a record with none of them is a tombstone), delay, lateness, history, format, header, time-format, partition-field, partition-glob. E.g. --table 'name = \"users\", input = \"users.jsonl\", key = \"user\", fields = [\"country\"]'. Repeat for several tables; given as flags, they replace a job file's [[table]] entries"
        )
    )]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table: Vec<super::tables::TableSpec>,

    /// Enrichment steps: each stream record joined with a table's version
    /// valid at its event time (`[[enrich]]` in a job file).
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "enrich",
            value_name = "KEYS",
            value_parser = super::tables::parse_enrich_flag,
            help_heading = "Tables",
            help = "An enrichment step, with the keys of a job file's [[enrich]]: table, on (the record field matched with the table's key), mode (inner: a record without a version goes to the late output; left: its table fields are null or the defaults), defaults. E.g. --enrich 'table = \"users\", on = \"user\", mode = \"inner\"'. The attached fields may be the --key or read by --agg. Repeat for several steps, in order; given as flags, they replace a job file's [[enrich]] entries"
        )
    )]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enrich: Vec<super::tables::EnrichSpec>,
}

impl JobSpec {
    /// Reads a TOML job file. Relative paths in it are taken relative to
    /// the job file's directory.
    pub fn from_file(path: &Path) -> Result<Self, JobError> {
        let fail = |reason: String| JobError::JobFile {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        // The error's Display names the line and column and shows the key.
        let spec: JobSpec =
            toml::from_str(&text).map_err(|e| fail(e.to_string().trim_end().to_owned()))?;
        match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => Ok(spec.relative_to(dir)),
            None => Ok(spec),
        }
    }

    /// This spec with its relative paths (`input`, `output`, `late`,
    /// `dead-letter`) taken relative to `dir`.
    pub fn relative_to(self, dir: &Path) -> JobSpec {
        let rebase = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
        let output = |o: Option<OutputPath>| match o {
            Some(OutputPath::File(p)) => Some(OutputPath::File(rebase(p))),
            other => other,
        };
        JobSpec {
            input: match self.input {
                Some(Input::Path(p)) => Some(Input::Path(rebase(p))),
                other => other,
            },
            output: output(self.output),
            late: output(self.late),
            dead_letter: output(self.dead_letter),
            summary_json: self.summary_json.map(rebase),
            stats: self.stats.map(rebase),
            checkpoint_dir: self.checkpoint_dir.map(rebase),
            replay_decisions: self.replay_decisions.map(rebase),
            table: self.table.into_iter().map(|t| t.relative_to(dir)).collect(),
            ..self
        }
    }

    /// Options set in `other` replace those of `self` (a job file, then
    /// flags on top of it).
    pub fn overlay(self, other: JobSpec) -> JobSpec {
        // No `..`: a new field that is not overlaid does not compile.
        let JobSpec {
            input,
            partition_glob,
            format,
            header,
            key,
            time,
            value,
            partition_field,
            partition_count,
            max_partitions,
            time_format,
            window,
            delay,
            lateness,
            max_future_skew,
            emit,
            agg,
            workers,
            batch_size,
            connect_timeout,
            output,
            late,
            dead_letter,
            summary_json,
            output_time_format,
            metrics_addr,
            stats,
            stats_every,
            on_bad_record,
            max_bad_ratio,
            follow,
            idle_after,
            checkpoint_dir,
            checkpoint_every,
            keep_checkpoints,
            rebuild,
            from_offsets,
            from_time,
            replay_decisions,
            table,
            enrich,
        } = other;
        JobSpec {
            input: input.or(self.input),
            partition_glob: partition_glob.or(self.partition_glob),
            format: format.or(self.format),
            header: header.or(self.header),
            key: key.or(self.key),
            time: time.or(self.time),
            value: value.or(self.value),
            partition_field: partition_field.or(self.partition_field),
            partition_count: partition_count.or(self.partition_count),
            max_partitions: max_partitions.or(self.max_partitions),
            time_format: time_format.or(self.time_format),
            window: window.or(self.window),
            delay: delay.or(self.delay),
            lateness: lateness.or(self.lateness),
            max_future_skew: max_future_skew.or(self.max_future_skew),
            emit: emit.or(self.emit),
            agg: agg.or(self.agg),
            workers: workers.or(self.workers),
            batch_size: batch_size.or(self.batch_size),
            connect_timeout: connect_timeout.or(self.connect_timeout),
            output: output.or(self.output),
            late: late.or(self.late),
            dead_letter: dead_letter.or(self.dead_letter),
            summary_json: summary_json.or(self.summary_json),
            metrics_addr: metrics_addr.or(self.metrics_addr),
            output_time_format: output_time_format.or(self.output_time_format),
            stats: stats.or(self.stats),
            stats_every: stats_every.or(self.stats_every),
            on_bad_record: on_bad_record.or(self.on_bad_record),
            max_bad_ratio: max_bad_ratio.or(self.max_bad_ratio),
            follow: follow.or(self.follow),
            idle_after: idle_after.or(self.idle_after),
            checkpoint_dir: checkpoint_dir.or(self.checkpoint_dir),
            checkpoint_every: checkpoint_every.or(self.checkpoint_every),
            keep_checkpoints: keep_checkpoints.or(self.keep_checkpoints),
            rebuild: rebuild.or(self.rebuild),
            from_offsets: from_offsets.or(self.from_offsets),
            from_time: from_time.or(self.from_time),
            replay_decisions: replay_decisions.or(self.replay_decisions),
            table: if table.is_empty() { self.table } else { table },
            enrich: if enrich.is_empty() {
                self.enrich
            } else {
                enrich
            },
        }
    }

    /// The share of bad lines above which a run counts as failed: the
    /// spec's `max-bad-ratio`, else [`defaults::MAX_BAD_RATIO`].
    pub fn max_bad_ratio(&self) -> BadRatio {
        self.max_bad_ratio.unwrap_or(defaults::MAX_BAD_RATIO)
    }

    /// The target of a late or dead-letter output (`check_outputs` has
    /// refused a Kafka topic for them).
    fn target(path: &Option<OutputPath>) -> Target {
        path.as_ref()
            .and_then(OutputPath::target)
            .unwrap_or(Target::Discard)
    }

    /// The input format: `format` if set, else detected from the input:
    /// a file by its extension (csv for `.csv`), a directory by the
    /// extension its files share, or by the extension of its
    /// `partition-glob` when one is set (`*.csv`); else the default.
    pub fn input_format(&self) -> InputFormat {
        let detect = |p: &Path| match tidemark_sources::Format::detect(p) {
            Ok(tidemark_sources::Format::Csv) => InputFormat::Csv,
            _ => defaults::FORMAT,
        };
        match (&self.format, &self.input, &self.partition_glob) {
            (Some(f), _, _) => *f,
            // The glob picks the partition files, so the files beside them
            // say nothing: its extension decides, if it has a known one.
            (None, Some(Input::Path(p)), Some(glob)) if p.is_dir() => {
                let extension = glob.rsplit_once('.').map_or("", |(_, e)| e);
                match tidemark_sources::Format::for_extension(extension) {
                    Some(tidemark_sources::Format::Csv) => InputFormat::Csv,
                    _ => defaults::FORMAT,
                }
            }
            // A file by its extension, a directory by its files' (when they
            // all share one); an undecidable directory falls back to the
            // default and its error comes from listing it.
            (None, Some(Input::Path(p)), _) => detect(p),
            _ => defaults::FORMAT,
        }
    }

    /// Refuses the input-layout options that do not apply to this input:
    /// `partition-glob` without a directory, `partition-count` and
    /// `max-partitions` without a partition field, and their values out of
    /// range.
    fn check_layout(&self) -> Result<(), SpecError> {
        if self.partition_glob.is_some() {
            let not = match &self.input {
                Some(Input::Gen(_)) => Some("a gen: input".to_owned()),
                Some(Input::Kafka(k)) => Some(format!("a Kafka input ({k})")),
                Some(Input::Stdin) => Some("standard input".to_owned()),
                Some(Input::Path(p)) if p.exists() && !p.is_dir() => {
                    Some(format!("\"{}\", a file", p.display()))
                }
                _ => None,
            };
            if let Some(not) = not {
                return Err(SpecError(format!(
                    "--partition-glob selects the partition files of an input directory; it does not apply to {not}"
                )));
            }
        }
        for (flag, set) in [
            ("--partition-count", self.partition_count.is_some()),
            ("--max-partitions", self.max_partitions.is_some()),
        ] {
            if set && self.partition_field.is_none() {
                return Err(SpecError(format!(
                    "{flag} applies only with --partition-field (one file holding every partition)"
                )));
            }
        }
        let limit = self.max_partitions.unwrap_or(defaults::MAX_PARTITIONS);
        if !(1..=MAX_PARTITIONS).contains(&limit) {
            return Err(SpecError(format!(
                "invalid --max-partitions {limit}: must be 1 to {MAX_PARTITIONS}"
            )));
        }
        match self.partition_count {
            Some(0) => Err(SpecError(
                "invalid --partition-count 0: a file holds at least 1 partition".into(),
            )),
            Some(count) if count > limit => Err(SpecError(format!(
                "invalid --partition-count {count}: more than --max-partitions {limit} (raise it, up to {MAX_PARTITIONS})"
            ))),
            _ => Ok(()),
        }
    }

    /// The input source this spec names.
    pub fn source(&self) -> Result<Arc<dyn Source>, JobError> {
        self.source_with(|| self.decode_config())
    }

    /// The input source this spec names, its lines decoded as `decode`
    /// says.
    fn source_with(
        &self,
        decode: impl FnOnce() -> Result<DecodeConfig, JobError>,
    ) -> Result<Arc<dyn Source>, JobError> {
        let input = self
            .input
            .as_ref()
            .ok_or_else(|| SpecError(MISSING_INPUT.into()))?;
        self.check_layout()?;
        let path = match input {
            Input::Gen(config) => {
                if self.follow == Some(true) {
                    return Err(SpecError(
                        "--follow reads growing files; it does not apply to a gen: input".into(),
                    )
                    .into());
                }
                let source = GeneratorSource::new(config.into())
                    .map_err(|e| SpecError(format!("invalid --input gen:{config}: {e}")))?;
                return Ok(Arc::new(source));
            }
            Input::Path(path) => path.clone(),
            Input::Stdin => PathBuf::from("-"),
            Input::Kafka(kafka) => return self.kafka_source(kafka, decode()?),
        };
        let decode = decode()?;
        let format = decode.format;
        let mut config = FileSourceConfig::new(path, format);
        config.decode = decode;
        config.follow = self.follow.unwrap_or(defaults::FOLLOW);
        config.partition_glob = self.partition_glob.clone();
        config.partition_count = self.partition_count;
        config.max_partitions = self.max_partitions.unwrap_or(defaults::MAX_PARTITIONS);
        // The source checks its configuration without I/O: what it refuses
        // is an option given wrong (a malformed glob, an empty field name).
        let source = FileSource::new(config).map_err(|e| match e {
            SourceError::InvalidConfig(reason) => JobError::from(SpecError(reason)),
            e => EngineError::from(e).into(),
        })?;
        Ok(Arc::new(source))
    }

    /// How the input's lines (or a topic's payloads) decode: format,
    /// header, field mapping, time format.
    fn decode_config(&self) -> Result<DecodeConfig, JobError> {
        let format = self.input_format();
        let header = self.header.unwrap_or(defaults::HEADER);
        if format == InputFormat::Csv && !header {
            // Without a header the fields are column numbers; a name would
            // make every line a dead letter (the message key and timestamp
            // of a topic excepted).
            let meta = [
                tidemark_sources::decode::KEY_FIELD,
                tidemark_sources::decode::TIMESTAMP_FIELD,
            ];
            let key = self.key.as_deref().unwrap_or(defaults::KEY);
            let named = self.named_fields();
            let mut fields: Vec<(&str, &str)> =
                key.split(',').map(|k| ("--key", k.trim())).collect();
            fields.extend([
                ("--time", self.time.as_deref().unwrap_or(defaults::TIME)),
                (
                    "--partition-field",
                    self.partition_field.as_deref().unwrap_or("0"),
                ),
            ]);
            if self.agg.as_ref().is_none_or(|a| a.aggs().reads_value()) {
                fields.push(("--value", self.value.as_deref().unwrap_or(defaults::VALUE)));
            }
            fields.extend(named.iter().map(|f| ("--agg", f.name.as_str())));
            if let Some((flag, name)) = fields
                .iter()
                .find(|(_, f)| f.parse::<usize>().is_err() && !meta.contains(f))
            {
                return Err(SpecError(format!(
                    "{flag} \"{name}\" names a field, but CSV without --header has only column numbers: add --header if the files start with a header line, or give --key, --time and --value as column numbers (0, 1, ...)"
                ))
                .into());
            }
        }
        let mut decode = DecodeConfig::new(format.into());
        decode.header = header;
        decode.fields = FieldMapping {
            key: self.key.clone().unwrap_or_else(|| defaults::KEY.into()),
            time: self.time.clone().unwrap_or_else(|| defaults::TIME.into()),
            value: self.value.clone().unwrap_or_else(|| defaults::VALUE.into()),
            partition: self.partition_field.clone(),
        };
        decode.time_format = self.time_format.unwrap_or(defaults::TIME_FORMAT).into();
        let keys = self.key_fields();
        if keys.len() > 1 && keys.iter().any(String::is_empty) {
            return Err(SpecError(format!(
                "invalid --key \"{}\": a compound key names each of its fields, e.g. --key country,page",
                self.key.as_deref().unwrap_or_default()
            ))
            .into());
        }
        if keys.len() > 1 {
            decode.fields.key = keys[0].clone();
            decode.compound_key = keys;
        }
        decode.named = self.named_fields();
        if !self.table.is_empty() {
            let (names, key_from_stream) = self.decode_fields(
                &decode
                    .named
                    .iter()
                    .map(|f| f.name.clone())
                    .collect::<Vec<_>>(),
            );
            decode.named = names
                .into_iter()
                .map(|name| {
                    let number = decode.named.iter().any(|f| f.name == name && f.number);
                    tidemark_sources::NamedField { name, number }
                })
                .collect();
            if !key_from_stream {
                decode.read_key = false;
                decode.compound_key = Vec::new();
            }
        }
        // The value field is read only when an aggregation reads it (a
        // count, or aggregations over named fields, need none).
        decode.read_value = self.agg.as_ref().is_none_or(|a| a.aggs().reads_value());
        decode.require_value = decode.read_value;
        Ok(decode)
    }

    /// With tables: the named fields the stream decodes itself (the
    /// aggregations read `record_fields`), and whether the key is the
    /// stream's own.
    fn decode_fields(&self, record_fields: &[String]) -> (Vec<String>, bool) {
        let enrich: Vec<_> = self.enrich.iter().map(|e| e.to_def()).collect();
        let tables: Vec<(&str, &[String])> = self
            .table
            .iter()
            .map(|t| (t.name.as_str(), t.fields.as_slice()))
            .collect();
        tidemark_engine::table::decode_fields(&enrich, &tables, record_fields, &self.key_fields())
    }

    /// The source of table `t`: its own input and field mapping, read as
    /// the job's input is (followed with `--follow`, unless static).
    fn table_source(&self, t: &super::tables::TableSpec) -> Result<Arc<dyn Source>, JobError> {
        if matches!(t.input, Input::Gen(_) | Input::Stdin) {
            return Err(SpecError(format!(
                "table \"{}\": its input must be a file, a directory or a Kafka topic",
                t.name
            ))
            .into());
        }
        let view = JobSpec {
            input: Some(t.input.clone()),
            partition_glob: t.partition_glob.clone(),
            format: t.format,
            header: t.header,
            key: t.key.clone(),
            time: t.time.clone().filter(|_| !t.is_static()),
            value: Some("0".into()),
            partition_field: t.partition_field.clone(),
            time_format: t.time_format,
            max_partitions: self.max_partitions,
            follow: self.follow.filter(|_| !t.is_static()),
            ..JobSpec::default()
        };
        view.source_with(|| {
            let mut decode = view.decode_config()?;
            decode.compound_key = Vec::new();
            decode.read_value = false;
            decode.require_value = false;
            decode.read_time = !t.is_static();
            decode.named = t
                .fields
                .iter()
                .map(|name| tidemark_sources::NamedField {
                    name: name.clone(),
                    number: false,
                })
                .collect();
            Ok(decode)
        })
        .map_err(|e| match e {
            JobError::Spec(SpecError(reason)) => {
                SpecError(format!("table \"{}\": {reason}", t.name)).into()
            }
            JobError::Engine(e) => SpecError(format!("table \"{}\": {e}", t.name)).into(),
            other => other,
        })
    }

    /// The key's fields: `key` split at its commas.
    fn key_fields(&self) -> Vec<String> {
        self.key
            .as_deref()
            .unwrap_or(defaults::KEY)
            .split(',')
            .map(|k| k.trim().to_owned())
            .collect()
    }

    /// The named fields the aggregations read.
    fn named_fields(&self) -> Vec<tidemark_sources::NamedField> {
        self.agg
            .as_ref()
            .map(|a| a.aggs().fields().to_vec())
            .unwrap_or_default()
    }

    /// A Kafka topic as the source (feature `kafka`).
    fn kafka_source(
        &self,
        kafka: &super::values::KafkaInput,
        decode: DecodeConfig,
    ) -> Result<Arc<dyn Source>, JobError> {
        for (flag, set) in [
            ("--partition-field", self.partition_field.is_some()),
            ("--header", self.header == Some(true)),
        ] {
            if set {
                return Err(SpecError(format!(
                    "{flag} does not apply to a Kafka input: each message is one record of its partition"
                ))
                .into());
            }
        }
        let decode = DecodeConfig {
            header: false,
            ..decode
        };
        #[cfg(feature = "kafka")]
        {
            use tidemark_sources::kafka::{KafkaConfig, KafkaSource, KafkaStart};
            let mut config = KafkaConfig::new(kafka.bootstrap.clone(), kafka.topic.clone(), decode);
            config.follow = self.follow.unwrap_or(defaults::FOLLOW);
            config.start = if kafka.latest {
                KafkaStart::Latest
            } else {
                KafkaStart::Earliest
            };
            let source = KafkaSource::connect(config).map_err(|e| match e {
                SourceError::InvalidConfig(reason) => JobError::from(SpecError(reason)),
                e => EngineError::from(e).into(),
            })?;
            Ok(Arc::new(source))
        }
        #[cfg(not(feature = "kafka"))]
        {
            let _ = decode;
            Err(SpecError(format!(
                "{kafka}: this tidemark was built without Kafka support; build it with `cargo build --release --features kafka` (or `cargo install --path . --locked --features kafka`)"
            ))
            .into())
        }
    }

    /// Refuses outputs that would destroy the input or each other: an
    /// output (results, late records, dead letters, the stats log, the
    /// summary) that is the input file, a hard link to it or to one of the
    /// input directory's files, or lies inside the input directory; two
    /// outputs on one file (after resolving symlinks, or hard links to one
    /// file); and standard output for more than one output.
    pub fn check_outputs(&self) -> Result<(), SpecError> {
        for (flag, output) in [("--late", &self.late), ("--dead-letter", &self.dead_letter)] {
            if let Some(OutputPath::Kafka { .. }) = output {
                return Err(SpecError(format!(
                    "{flag}: a Kafka topic takes result rows only (--output); write late records and dead letters to a file"
                )));
            }
        }
        let outputs = [
            (
                "--output",
                Some(self.output.as_ref().unwrap_or(&defaults::OUTPUT)),
            ),
            ("--late", self.late.as_ref()),
            ("--dead-letter", self.dead_letter.as_ref()),
        ];
        let stdout: Vec<&str> = outputs
            .iter()
            .filter(|(_, o)| o == &Some(&OutputPath::Stdout))
            .map(|(flag, _)| match *flag {
                "--output" if self.output.is_none() => "--output (by default)",
                flag => flag,
            })
            .collect();
        if stdout.len() > 1 {
            let (all, but) = match stdout.len() {
                2 => ("both", "one"),
                _ => ("all", "all but one"),
            };
            return Err(SpecError(format!(
                "{} {all} write to standard output (-); give {but} of them a file",
                match stdout.split_last() {
                    Some((last, [first])) => format!("{first} and {last}"),
                    Some((last, rest)) => format!("{}, and {last}", rest.join(", ")),
                    None => String::new(),
                }
            )));
        }
        let input = match &self.input {
            Some(Input::Path(p)) => std::fs::canonicalize(p).ok().map(|c| (p, c)),
            _ => None,
        };
        // The input's files by (device, inode): an output that is a hard
        // link to one of them would truncate it.
        let input_files: Vec<(PathBuf, FileId)> = match &input {
            Some((_, c)) if c.is_dir() => std::fs::read_dir(c)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| file_id(&e.path()).map(|id| (e.path(), id)))
                        .collect()
                })
                .unwrap_or_default(),
            Some((_, c)) => file_id(c).map(|id| (c.clone(), id)).into_iter().collect(),
            None => Vec::new(),
        };
        let files = outputs
            .iter()
            .filter_map(|(flag, o)| match o {
                Some(OutputPath::File(p)) => Some((*flag, p.as_path())),
                _ => None,
            })
            .chain(self.stats.as_deref().map(|p| ("--stats", p)))
            .chain(self.summary_json.as_deref().map(|p| ("--summary-json", p)));
        let mut seen: Vec<(&str, &Path, PathBuf, Option<FileId>)> = Vec::new();
        for (flag, path) in files {
            let resolved = resolve(path);
            let id = file_id(path);
            if let Some((given, input)) = &input {
                if &resolved == input {
                    return Err(SpecError(format!(
                        "{flag} \"{}\" is the input file: writing it would destroy the input",
                        path.display()
                    )));
                }
                if input.is_dir() && resolved.starts_with(input) {
                    return Err(SpecError(format!(
                        "{flag} \"{}\" lies inside the input directory \"{}\": it would overwrite or add a partition; write outputs outside the input",
                        path.display(),
                        given.display()
                    )));
                }
            }
            if let Some((linked, _)) = input_files.iter().find(|(_, i)| Some(*i) == id) {
                return Err(SpecError(format!(
                    "{flag} \"{}\" is a hard link to the input file \"{}\": writing it would destroy the input",
                    path.display(),
                    linked.display()
                )));
            }
            // Several outputs may go to a device (`/dev/null`), never to
            // one file.
            let device = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
            let same = |(_, _, r, i): &&(&str, &Path, PathBuf, Option<FileId>)| {
                r == &resolved || (id.is_some() && *i == id)
            };
            if let Some((other, other_path, _, _)) = seen.iter().find(same).filter(|_| !device) {
                return Err(SpecError(format!(
                    "{other} \"{}\" and {flag} \"{}\" are the same file; give each output its own",
                    other_path.display(),
                    path.display()
                )));
            }
            seen.push((flag, path, resolved, id));
        }
        Ok(())
    }

    /// A job builder for this spec (its source opened), every option not
    /// set taking its value from [`defaults`], for a job whose aggregations
    /// are the built-in ones over the record's value (`count,sum,max`). A
    /// job whose aggregations read named fields is an error here: see
    /// [`JobSpec::to_any_builder`].
    pub fn to_builder(&self) -> Result<JobBuilder, JobError> {
        match self.to_any_builder()? {
            AnyJobBuilder::Values(b) => Ok(b),
            AnyJobBuilder::Fields(_) => Err(SpecError(
                "the aggregations read named fields: build the job with JobSpec::to_any_builder"
                    .into(),
            )
            .into()),
        }
    }

    /// A job builder for this spec (its source opened), every option not
    /// set taking its value from [`defaults`]: with the built-in
    /// aggregations over values ([`Metrics`](tidemark_windows::Metrics))
    /// when they are all `count`, `sum`, `min`, `max` or `mean`, with
    /// [`Aggs`](tidemark_windows::Aggs) when any reads a named field or is
    /// another function.
    pub fn to_any_builder(&self) -> Result<AnyJobBuilder, JobError> {
        let list = match &self.agg {
            Some(list) => list.clone(),
            None => AggList::new(defaults::AGGS).map_err(JobError::from)?,
        };
        if list.kinds().is_empty() {
            let keys = self.key_fields();
            let aggs = list
                .aggs()
                .with_key_columns(if keys.len() > 1 { keys } else { Vec::new() });
            Ok(AnyJobBuilder::Fields(self.builder_with(aggs)?))
        } else {
            let metrics = tidemark_windows::Metrics::new(list.kinds());
            Ok(AnyJobBuilder::Values(self.builder_with(metrics)?))
        }
    }

    fn builder_with<A: JobAggregator>(&self, agg: A) -> Result<JobBuilder<A>, JobError> {
        if self.input.is_none() {
            return Err(SpecError(MISSING_INPUT.into()).into());
        }
        self.check_outputs()?;
        let window = self
            .window
            .ok_or_else(|| {
                SpecError(if self.table.is_empty() {
                    format!("missing --window ({})", JobWindow::USAGE)
                } else {
                    format!(
                        "missing --window ({}): a job with tables windows the joined records (an output of the joined records alone, without a window, is not supported yet)",
                        JobWindow::USAGE
                    )
                })
            })?;
        let workers = self.workers.unwrap_or(defaults::WORKERS);
        if workers == 0 {
            return Err(SpecError("invalid --workers: must be at least 1".into()).into());
        }
        if workers > MAX_WORKERS {
            return Err(SpecError(format!(
                "invalid --workers {workers}: at most {MAX_WORKERS} worker threads per process (each holds its own buffers; more threads than cores only adds overhead)"
            ))
            .into());
        }
        let batch_size = self.batch_size.unwrap_or(defaults::BATCH_SIZE);
        if batch_size > MAX_BATCH_SIZE {
            return Err(SpecError(format!(
                "invalid --batch-size {batch_size}: at most {MAX_BATCH_SIZE} records per batch (a batch is held in memory whole)"
            ))
            .into());
        }
        if self.idle_after.is_some() && self.follow != Some(true) {
            return Err(SpecError(
                "--idle-after applies only with --follow (a bounded input never idles)".into(),
            )
            .into());
        }
        if self.connect_timeout == Some(DurationMs::ZERO) {
            return Err(SpecError(
                "invalid --connect-timeout 0: the processes need some time to connect, e.g. 30s"
                    .into(),
            )
            .into());
        }
        let mut b = Job::builder()
            .aggregator(agg.clone())
            .source(self.source()?)
            .window(window.spec())
            .delay(self.delay.unwrap_or(defaults::DELAY).millis())
            .lateness(self.lateness.unwrap_or(defaults::LATENESS).millis())
            .emit(self.emit.unwrap_or(defaults::EMIT).into())
            .workers(workers)
            .batch_size(batch_size)
            .bad_records(self.on_bad_record.unwrap_or(defaults::ON_BAD_RECORD).into());
        if let Some(after) = self.idle_after {
            b = b.idle_after(after.millis());
        }
        if let Some(skew) = self.max_future_skew {
            b = b.max_future_skew(skew.millis());
        }
        if let Some(timeout) = self.connect_timeout {
            b = b.connect_timeout(timeout.millis());
        }
        b = self.checkpoints(b)?;
        self.check_outputs()?;
        if let Some(f) = self.output_time_format {
            b = b.output_times(f.into());
        }
        match (&self.stats, self.stats_every) {
            (Some(path), every) => {
                let every = every.map_or(10_000, DurationMs::millis);
                if every <= 0 {
                    return Err(SpecError(
                        "invalid --stats-every 0: give an interval of stream time, e.g. 10s".into(),
                    )
                    .into());
                }
                b = b.stats_log(tidemark_engine::StatsLog {
                    path: path.clone(),
                    every,
                });
            }
            (None, Some(_)) => {
                return Err(SpecError("--stats-every applies only with --stats".into()).into())
            }
            (None, None) => {}
        }
        if !self.table.is_empty() || !self.enrich.is_empty() {
            b = self.with_tables(b, &agg)?;
        }
        b = match self.output.as_ref().unwrap_or(&defaults::OUTPUT) {
            OutputPath::Kafka { bootstrap, topic } => {
                #[cfg(feature = "kafka")]
                {
                    let sink = crate::kafka::KafkaSink::connect(
                        bootstrap,
                        topic,
                        tidemark_engine::RowJson(
                            agg,
                            self.output_time_format
                                .unwrap_or(OutputTimeFormat::EpochMs)
                                .into(),
                        ),
                    )
                    .map_err(|e| SpecError(e.to_string()))?;
                    b.results_sink(sink)
                }
                #[cfg(not(feature = "kafka"))]
                {
                    return Err(SpecError(format!(
                        "--output kafka://{bootstrap}/{topic}: this tidemark was built without Kafka support; build it with `cargo build --release --features kafka` (or `cargo install --path . --locked --features kafka`)"
                    ))
                    .into());
                }
            }
            other => b.results(other.target().unwrap_or(Target::Discard)),
        };
        Ok(b.late(Self::target(&self.late))
            .dead_letters(Self::target(&self.dead_letter)))
    }

    /// `b` with this spec's tables and enrichment steps.
    fn with_tables<A: JobAggregator>(
        &self,
        mut b: JobBuilder<A>,
        agg: &A,
    ) -> Result<JobBuilder<A>, JobError> {
        for t in &self.table {
            let table = tidemark_engine::table::TableDef {
                name: t.name.clone(),
                source: self.table_source(t)?,
                fields: t.fields.clone(),
                delay: t.delay.map(DurationMs::millis),
                lateness: t.lateness.map_or(0, DurationMs::millis),
                history: t.history.map(DurationMs::millis),
                is_static: t.is_static(),
            };
            b = b.table(table);
        }
        for e in &self.enrich {
            b = b.enrich(e.to_def());
        }
        let (stream_fields, _) = self.decode_fields(&agg.record_fields());
        Ok(b.stream_fields(stream_fields).key_fields(self.key_fields()))
    }
}

impl JobSpec {
    /// The checkpoint and reprocessing options on `b`.
    fn checkpoints<A: JobAggregator>(
        &self,
        mut b: JobBuilder<A>,
    ) -> Result<JobBuilder<A>, JobError> {
        let Some(dir) = &self.checkpoint_dir else {
            for (set, flag) in [
                (self.checkpoint_every.is_some(), "--checkpoint-every"),
                (self.keep_checkpoints.is_some(), "--keep-checkpoints"),
                (self.rebuild == Some(true), "--rebuild"),
            ] {
                if set {
                    return Err(
                        SpecError(format!("{flag} applies only with --checkpoint-dir")).into(),
                    );
                }
            }
            return Ok(self.reprocessing(b));
        };
        if matches!(self.input, Some(Input::Stdin)) {
            return Err(SpecError(
                "--checkpoint-dir needs an input that can be read again from an offset (a file or a directory); standard input cannot".into(),
            )
            .into());
        }
        if self.rebuild == Some(true) && (self.from_offsets.is_some() || self.from_time.is_some()) {
            return Err(SpecError(
                "--rebuild starts from offset 0; it does not go with --from-offsets or --from-time"
                    .into(),
            )
            .into());
        }
        let keep = self.keep_checkpoints.unwrap_or(defaults::KEEP_CHECKPOINTS);
        let keep = std::num::NonZeroUsize::new(keep)
            .ok_or_else(|| SpecError("invalid --keep-checkpoints 0: keep at least 1".into()))?;
        let every = self
            .checkpoint_every
            .unwrap_or(defaults::CHECKPOINT_EVERY)
            .0;
        b = b.checkpoint(tidemark_engine::CheckpointConfig {
            dir: dir.clone(),
            every,
            keep,
            rebuild: self.rebuild == Some(true),
            input: self.input_identity(),
            settings: self.fingerprint_settings(),
        });
        Ok(self.reprocessing(b))
    }

    fn reprocessing<A: JobAggregator>(&self, mut b: JobBuilder<A>) -> JobBuilder<A> {
        if let Some(dir) = &self.replay_decisions {
            b = b.replay_decisions(dir.clone());
        }
        match (&self.from_offsets, self.from_time) {
            (Some(o), _) => b.emit_from(tidemark_engine::EmitFrom::Offsets(o.0.clone())),
            (None, Some(t)) => b.emit_from(tidemark_engine::EmitFrom::Time(t.0)),
            (None, None) => b,
        }
    }

    /// The input as a checkpoint names it: a path made absolute with its
    /// links resolved, so the same job resumes from any working directory
    /// (and another directory's log of the same relative name does not).
    fn input_identity(&self) -> tidemark_engine::checkpoint::InputIdentity {
        let path = match &self.input {
            Some(Input::Path(p)) => resolve(p).display().to_string(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        tidemark_engine::checkpoint::InputIdentity::new(vec![path], Vec::new())
    }

    /// The options that change what a job computes beyond the window and
    /// policy (decoding and field mapping), as a checkpoint records them.
    fn fingerprint_settings(&self) -> std::collections::BTreeMap<String, String> {
        let mut m = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        put("format", format!("{:?}", self.input_format()));
        put(
            "header",
            self.header.unwrap_or(defaults::HEADER).to_string(),
        );
        put(
            "key field",
            self.key.clone().unwrap_or_else(|| defaults::KEY.into()),
        );
        put(
            "time field",
            self.time.clone().unwrap_or_else(|| defaults::TIME.into()),
        );
        put(
            "value field",
            self.value.clone().unwrap_or_else(|| defaults::VALUE.into()),
        );
        put(
            "time format",
            self.time_format
                .unwrap_or(defaults::TIME_FORMAT)
                .to_string(),
        );
        // A resumed run appends to the outputs: in the same format.
        if let Some(f) = self
            .output_time_format
            .filter(|f| *f != OutputTimeFormat::EpochMs)
        {
            put("output time format", f.to_string());
        }
        if let Some(p) = &self.partition_field {
            put("partition field", p.clone());
        }
        if let Some(n) = self.partition_count {
            put("partition count", n.to_string());
        }
        if let Some(g) = &self.partition_glob {
            put("partition glob", g.clone());
        }
        m
    }
}

/// What identifies an existing file whatever its name: its device and
/// inode (hard links share them).
type FileId = (u64, u64);

/// The [`FileId`] of an existing file (symlinks followed); `None` when it
/// does not exist (or on a platform without inodes).
fn file_id(path: &Path) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Where `path` would be written, symlinks resolved: the path itself
/// canonicalized if it exists, else its nearest existing ancestor
/// canonicalized with the rest appended (`..` folded).
fn resolve(path: &Path) -> PathBuf {
    if let Ok(full) = std::fs::canonicalize(path) {
        return full;
    }
    let absolute = match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_owned(),
    };
    let mut rest = Vec::new();
    let mut base = absolute.as_path();
    let mut resolved = loop {
        if let Ok(c) = std::fs::canonicalize(base) {
            break c;
        }
        match (base.parent(), base.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last.as_os_str().to_owned());
                base = parent;
            }
            _ => break base.to_owned(),
        }
    };
    for part in rest.iter().rev() {
        if part == ".." {
            resolved.pop();
        } else if part != "." {
            resolved.push(part);
        }
    }
    resolved
}
