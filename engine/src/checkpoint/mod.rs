//! Checkpoint storage: what a checkpoint holds ([`Checkpoint`]), how it is
//! kept on disk ([`CheckpointDir`]: atomic, checksummed, the newest few
//! kept), the digests of committed output ([`OutputDigest`]) and the job
//! fingerprint that guards a resume ([`JobFingerprint`]).
//!
//! This module stores and finds checkpoints; it does not decide when one is
//! taken. A checkpoint describes a completed frontier `t`: every record
//! whose stream time is below `t` has been applied to the window state,
//! none other; each partition's position is the offset of its first record
//! not applied; each output is committed up to the bytes that the frontier
//! steps before `t` produced.
//!
//! # On disk
//!
//! ```text
//! <dir>/
//!   LOCK                    held by the one process that writes
//!   ckpt-0000000041/
//!     state.bin             the window state, opaque bytes
//!     MANIFEST              everything else, the CRC32 of state.bin, its own CRC32
//!   ckpt-0000000042/
//!     …
//! ```
//!
//! A checkpoint is written as: create `ckpt-N/`; write `state.bin.tmp`,
//! fsync it, rename it to `state.bin`, fsync the directory; then the same
//! for `MANIFEST` (written last), then fsync `<dir>`. The manifest's
//! presence is what makes a checkpoint complete, and its checksums what
//! make it valid ([`manifest`] has the format). A crash at any instant
//! leaves the previous checkpoints untouched and at most one incomplete
//! `ckpt-N/`, which [`CheckpointDir::newest_valid`] skips with a warning and
//! the next write removes. After a write, the newest
//! [`keep`](CheckpointDir::with_keep) complete checkpoints stay and older
//! ones are deleted (manifest first, so a deletion cut short leaves an
//! incomplete checkpoint, never a wrong one).
//!
//! ```
//! use std::collections::BTreeMap;
//! use tidemark_engine::checkpoint::{Checkpoint, CheckpointDir, CommittedOutputs, Counters,
//!     InputIdentity, JobFingerprint};
//! use tidemark_engine::{EngineConfig, Position};
//! use tidemark_windows::{AggKind, Policy, WindowSpec};
//!
//! let config = EngineConfig::new(WindowSpec::tumbling(1_000), Policy::default(), vec![AggKind::Count]);
//! let fingerprint = JobFingerprint::of(&config, InputIdentity::default(), BTreeMap::new());
//! let checkpoint = Checkpoint {
//!     frontier: 5_000,
//!     positions: BTreeMap::from([(0, Position { offset: 42, stream_time: Some(4_990) })]),
//!     state: b"window state".to_vec(),
//!     outputs: CommittedOutputs::default(),
//!     fingerprint,
//!     counters: Counters::default(),
//! };
//!
//! let tmp = std::env::temp_dir().join(format!("tidemark-doc-{}", std::process::id()));
//! let mut dir = CheckpointDir::open(&tmp)?;
//! let id = dir.write(&checkpoint)?;
//! let recovery = dir.newest_valid()?;
//! let found = recovery.found.expect("a checkpoint");
//! assert!(recovery.skipped.is_empty());
//! assert_eq!((found.id, &found.checkpoint), (id, &checkpoint));
//! # std::fs::remove_dir_all(&tmp).unwrap();
//! # Ok::<(), tidemark_engine::checkpoint::CheckpointError>(())
//! ```

pub mod decisions;
pub mod digest;
pub mod fingerprint;
pub mod manifest;
pub mod state;
mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tidemark_sources::{ContentCheck, PartitionId};
use tidemark_windows::EventTime;

use crate::counts::Counts;
use crate::stats::Summary;

pub use decisions::{Decision, Replay, DECISIONS_FILE};
pub use digest::{
    digest_file, digest_prefix, digest_reader, Digest, OutputCheck, OutputDigest, OutputPosition,
};
pub use fingerprint::{mismatch_message, Difference, InputIdentity, JobFingerprint};
pub use manifest::{FileEntry, Invalid, Manifest};
pub use store::{CheckpointDir, CheckpointInfo, Found, Recovery, Skipped, DEFAULT_KEEP};

/// A checkpoint's creation sequence number: each one written in a
/// directory gets a larger number than every checkpoint before it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CheckpointId(pub u64);

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a partition starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The next offset to read.
    pub offset: u64,
    /// The partition's stream time before that offset (`None` if no record
    /// was read yet).
    pub stream_time: Option<EventTime>,
}

/// What a checkpoint holds: the state of a job after every record below a
/// completed frontier, and how far its outputs were committed then.
///
/// [`CheckpointDir`] stores the `state` in a file of its own and the rest
/// in the [`Manifest`]; the struct is also serde, for callers that move a
/// checkpoint elsewhere.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The stream time the checkpoint was taken at, exclusive: every record
    /// whose stream time is smaller has been applied, and no other.
    pub frontier: EventTime,
    /// Per partition, the next offset to read and the partition's stream
    /// time before it (the [`EngineConfig::start`](crate::EngineConfig::start)
    /// of a resumed run).
    pub positions: BTreeMap<PartitionId, Position>,
    /// The window state, opaque here (the caller serialises a
    /// [`StateSnapshot`](crate::StateSnapshot) with postcard).
    pub state: Vec<u8>,
    /// How far each output was committed.
    pub outputs: CommittedOutputs,
    /// The job that took it.
    pub fingerprint: JobFingerprint,
    /// The summary counters up to the frontier, for a resumed run to go on
    /// from.
    pub counters: Counters,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("frontier", &self.frontier)
            .field("positions", &self.positions)
            .field("state", &format_args!("{} bytes", self.state.len()))
            .field("outputs", &self.outputs)
            .field("fingerprint", &self.fingerprint)
            .field("counters", &self.counters)
            .finish()
    }
}

/// How far each output of a job was committed; `None` for an output that
/// is not a file that can be resumed (discarded, standard output, a
/// callback).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOutputs {
    /// The result rows.
    pub results: Option<OutputPosition>,
    /// The late records.
    pub late: Option<OutputPosition>,
    /// The dead letters.
    pub dead_letters: Option<OutputPosition>,
}

/// The counters of a job's [`Summary`] that accumulate over the input, as
/// far as a checkpoint's frontier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// The job's counts at the cut (also readable as fields of `Counters`
    /// itself).
    #[serde(flatten)]
    pub counts: Counts,
    /// Open window states (panes of tumbling and sliding windows,
    /// sessions) in the checkpoint's window state, as stored.
    pub open_windows: u64,
    /// Keys with window state, as stored.
    pub keys: u64,
    /// With a stats log: how far it was written at the cut, so a resumed
    /// run goes on writing it as the uninterrupted run would have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_log: Option<StatsLogState>,
    /// The input files as they were when the checkpoint was taken: a
    /// resume refuses files rewritten since (see [`ContentCheck`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<ContentCheck>,
}

/// A stats log at a checkpoint's cut `c`: its lines at or before `c`,
/// and what every record with a stream time below `c` did, as its next
/// lines add up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsLogState {
    /// Its interval (ms of stream time).
    pub every: EventTime,
    /// The log's length and digest after its last line at or before the cut.
    pub position: OutputPosition,
    /// The cut of that last line (`i64::MIN` when there is none).
    pub last: EventTime,
    /// The content that line described (its counters and positions), so
    /// that a cut where nothing changed is skipped as before.
    pub last_content: Option<String>,
    /// What the records below the cut did, as the window operators applied
    /// them (its record counts; dead letters: windows out of range).
    #[serde(flatten)]
    pub applied: Counts,
    /// Per partition: one past the largest offset applied, and the stream
    /// time there.
    pub positions: Vec<(PartitionId, u64, EventTime)>,
}

impl std::ops::Deref for Counters {
    type Target = Counts;
    fn deref(&self) -> &Counts {
        &self.counts
    }
}

fn would_replace_message(
    dir: &std::path::Path,
    what: &str,
    path: &std::path::Path,
    len: u64,
    damaged: usize,
) -> String {
    let why = if damaged > 0 {
        format!(
            "every checkpoint in \"{}\" is damaged ({damaged} skipped)",
            dir.display()
        )
    } else {
        format!(
            "there is no checkpoint in \"{}\" to resume it from, and no run on that directory wrote it",
            dir.display()
        )
    };
    format!(
        "{why}: starting over would replace the {what} output \"{}\" ({len} bytes)",
        path.display()
    )
}

/// A checkpoint frontier for people: epoch ms, or "end of input" for the
/// frontier of a completed job.
pub fn time_text(t: EventTime) -> String {
    if t == EventTime::MAX {
        "end of input".into()
    } else {
        format!("{t} ms")
    }
}

impl From<&Summary> for Counters {
    fn from(s: &Summary) -> Self {
        Counters {
            counts: s.counts,
            ..Counters::default()
        }
    }
}

/// What can go wrong storing or finding checkpoints. A damaged checkpoint
/// found while looking for the newest valid one is not an error (it is
/// [`Skipped`]); this is for I/O that fails and for checkpoints asked for
/// by id.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file or directory could not be read, written, synced or removed.
    #[error("could not {action} \"{path}\"")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the directory's write lock.
    #[error("the checkpoint directory \"{path}\" is in use by another run")]
    Locked {
        /// The checkpoint directory.
        path: PathBuf,
    },
    /// The checkpoint asked for cannot be used.
    #[error("checkpoint {id} in \"{path}\" cannot be used: {reason}")]
    Invalid {
        /// The checkpoint.
        id: CheckpointId,
        /// Its directory.
        path: PathBuf,
        /// Why.
        reason: Invalid,
    },
    /// The manifest could not be encoded.
    #[error("could not encode the checkpoint manifest: {0}")]
    Encode(String),
    /// A new checkpoint was written, but an old one could not be deleted
    /// (the new one is complete and usable).
    #[error(
        "checkpoint {written} was written, but the old checkpoint \"{path}\" could not be deleted"
    )]
    Prune {
        /// The checkpoint just written.
        written: CheckpointId,
        /// The checkpoint that could not be deleted.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A resumed run's output does not start with what the checkpoint
    /// committed (changed, cut short, or missing).
    #[error("cannot resume the {what} output \"{path}\": {reason}; restore it, or rebuild to start again")]
    OutputMismatch {
        /// Which output.
        what: &'static str,
        /// Its path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An input file no longer holds what it held when the checkpoint was
    /// taken: it was rewritten in place, not appended to.
    #[error("the input file \"{}\" changed since checkpoint {id} was taken: {reason}; resuming would mix two logs", file.display())]
    InputChanged {
        /// The checkpoint.
        id: CheckpointId,
        /// The file.
        file: PathBuf,
        /// What changed.
        reason: String,
    },
    /// There is no checkpoint to resume from, and starting over would
    /// replace an output that is not this directory's own, or every
    /// checkpoint is damaged.
    #[error("{}", would_replace_message(dir, what, path, *len, *damaged))]
    WouldReplace {
        /// The checkpoint directory.
        dir: PathBuf,
        /// Which output.
        what: &'static str,
        /// The output file.
        path: PathBuf,
        /// Its length.
        len: u64,
        /// How many completed checkpoints were found damaged.
        damaged: usize,
    },
    /// The job differs from the one that took the checkpoint.
    #[error("{}", mismatch_message(differences))]
    JobChanged {
        /// Every setting that differs.
        differences: Vec<Difference>,
    },
}
