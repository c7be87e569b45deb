//! Subcommands of the `tidemark` binary; each builds a job through the
//! library facade.

pub mod bench;
pub mod bench_files;
pub mod diagnose;
pub mod digest;
pub mod gen;
pub mod inspect;
pub mod loud;
pub mod metrics;
pub mod run;

use std::process::ExitCode;

use tidemark::JobError;

/// Reports a command-line error. A value that does not parse is reported as
/// `error: invalid --FLAG: REASON`, as a job that is wrong is reported after
/// parsing; everything else (help, version, unknown flags) the way clap
/// does. Usage errors exit with 2.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    let reason = match e.kind() {
        ErrorKind::ValueValidation => std::error::Error::source(&e).map(|s| s.to_string()),
        ErrorKind::InvalidValue => context(ContextKind::InvalidValue).map(|value| {
            let mut reason = format!("unknown value \"{value}\"");
            if let Some(valid) = context(ContextKind::ValidValue) {
                reason.push_str(&format!(" (possible values: {valid})"));
            }
            if let Some(suggested) = context(ContextKind::SuggestedValue) {
                reason.push_str(&format!("; did you mean \"{suggested}\"?"));
            }
            reason
        }),
        _ => None,
    };
    // "--delay <DUR>" or "--header[=<BOOL>]": the flag is the leading name.
    let flag = context(ContextKind::InvalidArg).map(|arg| {
        arg.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '-')
            .collect::<String>()
    });
    match (flag, reason) {
        (Some(flag), Some(reason)) if !flag.is_empty() => {
            // A parser whose message names the flag already is not
            // prefixed again ("invalid --from-time: invalid --from-time").
            let named = reason.starts_with(&format!("invalid {flag}"))
                || reason.starts_with(&format!("{flag} "));
            if named {
                eprintln!("error: {reason}\n\nFor more information, try '--help'.");
            } else {
                eprintln!("error: invalid {flag}: {reason}\n\nFor more information, try '--help'.");
            }
            ExitCode::from(2)
        }
        _ => e.exit(),
    }
}

/// A run that a signal stopped: its outputs hold what the completed
/// frontier held, and the process exits with 128 + the signal's number.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {name}: the outputs hold every result the watermark completed ({watermark})")]
pub struct Interrupted {
    /// The signal's number.
    pub signal: i32,
    /// The signal's name.
    pub name: &'static str,
    /// Where the outputs are complete, for people.
    pub watermark: String,
}

/// Exit code: 2 for a job that is wrong as given, 1 for a failure while
/// running it, 128 + N for a run stopped by signal N.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use tidemark::engine::EngineError;
    if let Some(i) = e.downcast_ref::<Interrupted>() {
        return u8::try_from(128 + i.signal).unwrap_or(1);
    }
    match e.downcast_ref::<JobError>() {
        Some(JobError::Spec(_))
        | Some(JobError::JobFile { .. })
        | Some(JobError::Engine(
            EngineError::Config(_)
            | EngineError::Window(_)
            | EngineError::Checkpoint(
                tidemark::engine::CheckpointError::JobChanged { .. }
                | tidemark::engine::CheckpointError::OutputMismatch { .. }
                | tidemark::engine::CheckpointError::InputChanged { .. }
                | tidemark::engine::CheckpointError::WouldReplace { .. },
            ),
        )) => 2,
        _ => 1,
    }
}

/// Whether the job stopped because the reader of an output went away (a
/// closed pipe, as in `tidemark run ... | head -1`): not a failure, the
/// reader has what it wanted.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use tidemark::engine::EngineError;
    matches!(
        e.downcast_ref::<JobError>(),
        Some(JobError::Engine(EngineError::Output { source, .. }))
            if source.kind() == std::io::ErrorKind::BrokenPipe
    )
}

/// A hint for errors with a known remedy.
pub fn hint(e: &anyhow::Error) -> Option<String> {
    if let Some(too_many) = e.downcast_ref::<loud::TooManyBad>() {
        return Some(too_many.hint.clone());
    }
    match e.downcast_ref::<JobError>() {
        Some(JobError::Engine(tidemark::engine::EngineError::BadRecord { .. })) => Some(
            "rerun with --on-bad-record skip to send bad records to --dead-letter and go on".into(),
        ),
        Some(JobError::Engine(tidemark::engine::EngineError::Checkpoint(
            tidemark::engine::CheckpointError::Locked { .. },
        ))) => Some(
            "another run of this job is using it: wait for it to end, or give this run its own --checkpoint-dir".into(),
        ),
        Some(JobError::Engine(tidemark::engine::EngineError::Checkpoint(
            tidemark::engine::CheckpointError::JobChanged { .. },
        ))) => Some(
            "run with --rebuild to discard the checkpoints and recompute from the start of the input".into(),
        ),
        Some(JobError::Engine(tidemark::engine::EngineError::Checkpoint(
            tidemark::engine::CheckpointError::OutputMismatch { .. },
        ))) => Some(
            "restore the output, or run with --rebuild to start again from offset 0".into(),
        ),
        Some(JobError::Engine(tidemark::engine::EngineError::Checkpoint(
            tidemark::engine::CheckpointError::InputChanged { .. },
        ))) => Some(
            "restore the input the checkpoint was taken over, or run with --rebuild to process the new one from the start".into(),
        ),
        Some(JobError::Engine(tidemark::engine::EngineError::Checkpoint(
            tidemark::engine::CheckpointError::WouldReplace { damaged, .. },
        ))) => Some(if *damaged > 0 {
            "run with --rebuild to start over from offset 0 and replace the outputs".into()
        } else {
            "check --checkpoint-dir (is it the directory of the run that wrote the outputs?), or run with --rebuild to start over from offset 0 and replace them".into()
        }),
        Some(JobError::Engine(tidemark::engine::EngineError::Unreachable { .. })) => {
            Some("start every process of the hostfile, or raise --connect-timeout".into())
        }
        Some(JobError::Engine(tidemark::engine::EngineError::Source(
            tidemark::sources::SourceError::NoPartitionFiles { dir, .. },
        ))) => common_extension(dir).map(|ext| {
            format!(
                "name the partition files with --partition-glob, e.g. --partition-glob '*.{ext}'"
            )
        }),
        _ => None,
    }
}

/// The extension most of the visible files of `dir` have, if any.
fn common_extension(dir: &std::path::Path) -> Option<String> {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        let visible = !entry.file_name().to_string_lossy().starts_with('.');
        if visible && path.is_file() {
            if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
                *counts.entry(ext.to_owned()).or_default() += 1;
            }
        }
    }
    // The most files; of those, the first in name order.
    let most = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|(_, n)| *n == most)
        .map(|(ext, _)| ext)
}
