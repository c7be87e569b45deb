//! Subcommands of the `tidemark` binary; each builds a job through the
//! library facade.

pub mod bench;
pub mod gen;
pub mod run;

use tidemark::JobError;

/// Exit code: 2 for a job that is wrong as given, 1 for a failure while
/// running it.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    use tidemark::engine::EngineError;
    match e.downcast_ref::<JobError>() {
        Some(JobError::Spec(_))
        | Some(JobError::JobFile { .. })
        | Some(JobError::Engine(EngineError::Config(_) | EngineError::Window(_))) => 2,
        _ => 1,
    }
}

/// A hint for errors with a known remedy.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    match e.downcast_ref::<JobError>() {
        Some(JobError::Engine(tidemark::engine::EngineError::BadRecord { .. })) => {
            Some("rerun with --on-bad-record skip to send bad records to --dead-letter and go on")
        }
        _ => None,
    }
}
