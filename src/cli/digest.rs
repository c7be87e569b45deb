//! `tidemark digest FILE...`: the digest of an output file, the one a run's
//! summary prints for its results file — so two runs are proven to have
//! written the same bytes without keeping both files.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tidemark::engine::checkpoint::{digest_file, digest_reader};

/// Arguments of `tidemark digest`.
#[derive(Args, Debug)]
pub struct DigestArgs {
    /// Output files (results, late records, dead letters) to digest; `-`
    /// (or none) for standard input, as `sha256sum` reads it.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Prints `SHA256  BYTES  FILE` for each file: the SHA-256 of its bytes, as
/// `sha256sum` prints it.
pub fn run(args: &DigestArgs) -> anyhow::Result<()> {
    let stdin = [PathBuf::from("-")];
    let files = if args.files.is_empty() {
        &stdin[..]
    } else {
        &args.files[..]
    };
    for path in files {
        let (len, digest) = if path.as_os_str() == "-" {
            digest_reader(std::io::stdin().lock(), None).context("reading standard input")?
        } else {
            let p = digest_file(path).with_context(|| format!("reading \"{}\"", path.display()))?;
            (p.len, p.digest)
        };
        println!("{digest}  {len}  {}", path.display());
    }
    Ok(())
}
