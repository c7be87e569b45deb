//! The `tidemark` command line: `run` a windowed job, `gen` a workload,
//! `bench` the engine.

mod cli;

use tidemark::harness;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deterministic event-time windowing over partitioned logs.
#[derive(Parser, Debug)]
#[command(name = "tidemark", version, about, long_about = None, after_help = QUICK_START)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const QUICK_START: &str = "\
Examples:
  tidemark run --job examples/clicks.toml
  tidemark run --input logs/ --window tumbling:1m --delay 5s --agg count,sum,max
  tidemark gen --out logs/ --events 100000 --partitions 4 --disorder 50ms

'tidemark run --help' lists every job option with its default.";

const RUN_ABOUT: &str = "\
Run a windowed job over a partitioned log: records are assigned to \
event-time windows per key, windows fire as the watermark passes their end, \
and each result is a JSON line {key, start, end, aggregations..., kind}.

Give the job as flags, as a TOML job file (--job) whose keys are the flag \
names without the dashes, or both: flags override the job file.";

const RUN_AFTER: &str = "\
Durations are a number with a unit: 500ms, 10s, 5m, 1h, 1m 30s (or 0).

Examples:
  tidemark run --input logs/ --window tumbling:1m --delay 5s
  tidemark run --job job.toml --workers 4 --output results.jsonl
  tidemark run --input gen:events=100000,keys=100,disorder=50ms --window sliding:10s/1s

where job.toml holds the first example's job:
  input = \"logs/\"
  window = \"tumbling:1m\"
  delay = \"5s\"";

const GEN_ABOUT: &str = "\
Write a generated workload as partition files (part-00000.jsonl, ...) in --out.

Every generator flag is also a knob of a gen: input of 'tidemark run', with \
the same value: 'tidemark gen --out d --events 500 --late-extra 2s' writes \
what '--input gen:events=500,late-extra=2s' reads.";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a windowed job over a log (flags, or a TOML job file with the same keys).
    #[command(long_about = RUN_ABOUT, after_help = RUN_AFTER)]
    Run(Box<cli::run::RunArgs>),
    /// Write a generated workload as partition files.
    #[command(long_about = GEN_ABOUT)]
    Gen(cli::gen::GenArgs),
    /// Measure the engine: throughput, scaling, whole runs on files, checkpoints, and the latency/completeness trade-off.
    Bench(cli::bench::BenchArgs),
    /// The SHA-256 digest of output files, as a run's summary prints it.
    Digest(cli::digest::DigestArgs),
    /// What each checkpoint of a checkpoint directory holds.
    Inspect(cli::inspect::InspectArgs),
}

/// Ends the process quietly, with success, when printing to standard
/// output fails because its reader went away (`tidemark bench | head`):
/// `println!` panics then, and a closed pipe is no error of ours, as
/// `tidemark run`'s own writes already treat it. Every other panic goes to
/// the default hook.
fn quiet_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_when_stdout_closes();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    let result = match &cli.command {
        Command::Run(args) => cli::run::run(args),
        Command::Gen(args) => cli::gen::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::Digest(args) => cli::digest::run(args),
        Command::Inspect(args) => cli::inspect::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(hint) = cli::hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
