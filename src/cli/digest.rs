//! `tidemark digest FILE...`: the digest of an output file, the one a run's
//! summary prints for its results file — so two runs are proven to have
//! written the same bytes without keeping both files.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tidemark::engine::checkpoint::digest_file;

/// Arguments of `tidemark digest`.
#[derive(Args, Debug)]
pub struct DigestArgs {
    /// Output files (results, late records, dead letters) to digest.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Prints `SHA256  BYTES  FILE` for each file: the SHA-256 of its bytes, as
/// `sha256sum` prints it.
pub fn run(args: &DigestArgs) -> anyhow::Result<()> {
    for path in &args.files {
        let position =
            digest_file(path).with_context(|| format!("reading \"{}\"", path.display()))?;
        println!("{}  {}  {}", position.digest, position.len, path.display());
    }
    Ok(())
}
