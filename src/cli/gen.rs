//! `tidemark gen`: writes a generated workload as partition files, one per
//! partition (`part-00000.jsonl`, …). Its knobs are those of a `gen:` input
//! ([`tidemark::spec::GenSpec`]); see `tidemark_sources::generator` for
//! exactly what the generator produces.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tidemark::spec::{GenSpec, InputFormat, SpecError};
use tidemark::JobError;
use tidemark_sources::generator::write_partition_files;
use tidemark_sources::GeneratorSource;

/// Arguments of `tidemark gen`.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// Directory to write the partition files into (created if needed; it
    /// must be empty unless --force).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Delete the files already in --out first (subdirectories are left
    /// alone).
    #[arg(long)]
    pub force: bool,
    /// File format.
    #[arg(long, default_value_t = InputFormat::Jsonl)]
    pub format: InputFormat,
    /// Start each CSV file with a header row.
    #[arg(long)]
    pub header: bool,
    /// The generator's knobs (the same as in a `gen:` input).
    #[command(flatten)]
    pub spec: GenSpec,
}

/// Makes `dir` an empty directory to write into: refuses one that holds
/// anything unless `force`, and then deletes the files in it.
fn prepare(dir: &Path, force: bool) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(JobError::Spec(SpecError(format!(
                "--out \"{}\" is a file, not a directory",
                dir.display()
            )))
            .into())
        }
        Err(e) => return Err(e).with_context(|| format!("reading \"{}\"", dir.display())),
    };
    let mut files = Vec::new();
    let mut any = false;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading \"{}\"", dir.display()))?;
        any = true;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            files.push(entry.path());
        }
    }
    if any && !force {
        return Err(JobError::Spec(SpecError(format!(
            "--out \"{}\" is not empty; give --force to delete the files in it first, or choose an empty directory",
            dir.display()
        )))
        .into());
    }
    for file in files {
        std::fs::remove_file(&file).with_context(|| format!("deleting \"{}\"", file.display()))?;
    }
    Ok(())
}

/// Writes the partition files and prints a one-line summary to stderr.
pub fn run(args: &GenArgs) -> anyhow::Result<()> {
    let source = GeneratorSource::new((&args.spec).into())
        .map_err(|e| JobError::Spec(SpecError(format!("invalid generator settings: {e}"))))?;
    prepare(&args.out, args.force)?;
    let format = args.format.into();
    let written = write_partition_files(&source, &args.out, format, args.header)
        .with_context(|| format!("generating into \"{}\"", args.out.display()))?;
    let events: u64 = written.events.iter().sum();
    eprintln!(
        "wrote {events} events to {} {} partition file(s) in \"{}\"",
        written.files.len(),
        args.format,
        args.out.display()
    );
    if args.header {
        // A header line is data to `run` unless it is told.
        eprintln!("each file starts with a header line: read them with `tidemark run --header`");
    }
    Ok(())
}
