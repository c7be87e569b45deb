//! The `tidemark` command line: `run` a windowed job, `gen` a workload,
//! `bench` the engine.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Deterministic event-time windowing over partitioned logs.
#[derive(Parser, Debug)]
#[command(name = "tidemark", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a windowed job over a log (flags, or a TOML job file with the same keys).
    Run(Box<cli::run::RunArgs>),
    /// Write a generated workload as partition files.
    Gen(cli::gen::GenArgs),
    /// Measure throughput against an in-process plain-loop baseline.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    let result = match &cli.command {
        Command::Run(args) => cli::run::run(args),
        Command::Gen(args) => cli::gen::run(args),
        Command::Bench(args) => cli::bench::run(args),
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
