//! `tidemark gen`: writes a generated workload as partition files
//! (`part-00000.jsonl`, …), with the knobs of the reference generator.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tidemark::sources::generator::write_partition_files;
use tidemark::sources::{Format, GeneratorConfig, GeneratorSource};

/// Flags of `tidemark gen`.
#[derive(Args, Debug)]
pub struct GenArgs {
    /// Directory to write the partition files into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// jsonl or csv.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// CSV: write a header line.
    #[arg(long)]
    pub header: bool,
    /// Events in all partitions together.
    #[arg(long, default_value_t = 1000)]
    pub events: u64,
    /// Distinct keys k0..k{keys-1}.
    #[arg(long, default_value_t = 10)]
    pub keys: u32,
    /// Partitions (a key lives in one partition).
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
    /// Arrivals per millisecond.
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
    /// Fraction of late stragglers.
    #[arg(long, default_value_t = 0.0)]
    pub late_frac: f64,
    /// How far beyond the disorder a straggler may be, ms.
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
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `tidemark gen`.
pub fn run(args: &GenArgs) -> anyhow::Result<()> {
    let format: Format = args
        .format
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid --format: {e}"))?;
    let config = GeneratorConfig {
        events: args.events,
        keys: args.keys,
        partitions: args.partitions,
        rate: args.rate,
        start: args.start,
        disorder: args.disorder,
        late_frac: args.late_frac,
        late_extra: args.late_extra,
        skew: args.skew,
        gap_every: args.gap_every,
        gap_ms: args.gap_ms,
        seed: args.seed,
    };
    let source = GeneratorSource::new(config).context("invalid generator options")?;
    let written = write_partition_files(&source, &args.out, format, args.header)?;
    eprintln!(
        "tidemark: wrote {} events in {} partition files to \"{}\"",
        written.events.iter().sum::<u64>(),
        written.files.len(),
        args.out.display()
    );
    Ok(())
}
