//! `tidemark gen`: writes a generated workload as partition files, one per
//! partition (`part-00000.jsonl`, …), with the knobs and defaults of the
//! project's `gen.py`. See `tidemark_sources::generator` for exactly what
//! the generator produces.

use std::path::PathBuf;

use anyhow::Context;
use tidemark_sources::generator::write_partition_files;
use tidemark_sources::{Format, GeneratorConfig, GeneratorSource};

/// Arguments of `tidemark gen`.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// Directory to write the partition files into (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// File format: jsonl or csv.
    #[arg(long, default_value = "jsonl")]
    pub format: Format,
    /// Start each CSV file with a header row.
    #[arg(long)]
    pub header: bool,
    /// Number of events, over all partitions.
    #[arg(long, default_value_t = 1000)]
    pub events: u64,
    /// Number of distinct keys, k0..k{keys-1}.
    #[arg(long, default_value_t = 10)]
    pub keys: u32,
    /// Number of partitions; a key lives in partition crc32(key) % partitions.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Events per millisecond.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// First arrival time, epoch ms.
    #[arg(
        long,
        default_value_t = 1_700_000_000_000,
        allow_negative_numbers = true
    )]
    pub start: i64,
    /// Largest delay of an in-order event, ms.
    #[arg(long, default_value_t = 0)]
    pub disorder: i64,
    /// Fraction of events that are late stragglers.
    #[arg(long, default_value_t = 0.0)]
    pub late_frac: f64,
    /// How far beyond --disorder a straggler may be, ms.
    #[arg(long, default_value_t = 0)]
    pub late_extra: i64,
    /// 0: uniform keys; above 0: zipf exponent.
    #[arg(long, default_value_t = 0.0)]
    pub skew: f64,
    /// Insert an idle gap every N events (0: never).
    #[arg(long, default_value_t = 0)]
    pub gap_every: u64,
    /// Length of each idle gap, ms.
    #[arg(long, default_value_t = 0)]
    pub gap_ms: i64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl GenArgs {
    /// The generator configuration these arguments describe.
    pub fn config(&self) -> GeneratorConfig {
        GeneratorConfig {
            events: self.events,
            keys: self.keys,
            partitions: self.partitions,
            rate: self.rate,
            start: self.start,
            disorder: self.disorder,
            late_frac: self.late_frac,
            late_extra: self.late_extra,
            skew: self.skew,
            gap_every: self.gap_every,
            gap_ms: self.gap_ms,
            seed: self.seed,
        }
    }
}

/// Writes the partition files and prints a one-line summary to stderr.
pub fn run(args: &GenArgs) -> anyhow::Result<()> {
    let source = GeneratorSource::new(args.config()).context("invalid generator settings")?;
    let written = write_partition_files(&source, &args.out, args.format, args.header)
        .with_context(|| format!("generating into \"{}\"", args.out.display()))?;
    let events: u64 = written.events.iter().sum();
    eprintln!(
        "wrote {events} events to {} {} partition file(s) in \"{}\"",
        written.files.len(),
        args.format,
        args.out.display()
    );
    Ok(())
}
