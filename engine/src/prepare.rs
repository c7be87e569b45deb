//! Starting a checkpointed or reprocessing run: finds the checkpoint to
//! resume from (the newest valid one, or the newest at or before a
//! reprocessing point), checks the job's fingerprint against it, and turns
//! it into start positions and window state; and resolves
//! [`EmitFrom::Offsets`] into the stream time the output starts at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tidemark_sources::{PartitionId, Source};
use tidemark_windows::{EventTime, WindowState};

use crate::aggregator::JobAggregator;
use crate::checkpoint::decisions::{DecisionLog, Replay};
use crate::checkpoint::{
    state, CheckpointDir, CheckpointError, CheckpointId, CommittedOutputs, Counters, Invalid,
    JobFingerprint,
};
use crate::config::{EmitFrom, EngineConfig};
use crate::error::{EngineError, Result};
use crate::sink::SinkState;
use crate::stats::Stats;

/// What a run starts from.
pub(crate) struct Start {
    /// The checkpoint directory (to write to), when checkpoints are taken.
    pub(crate) dir: Option<CheckpointDir>,
    /// The job's fingerprint.
    pub(crate) fingerprint: Option<JobFingerprint>,
    /// The checkpoint resumed from: its id and frontier.
    pub(crate) resumed: Option<(CheckpointId, EventTime)>,
    /// How far the outputs were committed then (a resume cuts them back).
    pub(crate) outputs: Option<CommittedOutputs>,
    /// The sinks' own recovery states then, by output.
    pub(crate) sink_states: BTreeMap<String, SinkState>,
    /// Its counters.
    pub(crate) counters: Counters,
    /// The resumed checkpoint marks a job that completed.
    pub(crate) complete: bool,
    /// Reprocessing: the stream time the output starts at.
    pub(crate) emit_from: Option<EventTime>,
    /// Where this run records its time decisions.
    pub(crate) decisions: Option<Arc<DecisionLog>>,
    /// The time decisions it replays.
    pub(crate) replay: Option<Arc<Replay>>,
}

/// Finds where `config`'s run starts and fills in its start positions and
/// initial state. On a cluster process other than 0 (`writes == false`)
/// the directory is read, never written.
///
/// A run that finds no checkpoint to resume from starts over and replaces
/// its `files` (outputs, by what they hold). It does so only when they are
/// the directory's own — written by an earlier run on this directory that
/// ended before its first checkpoint — or empty; otherwise (a mistyped or
/// emptied directory, every checkpoint damaged) it refuses, and a rebuild
/// must be asked for.
pub(crate) fn prepare<A: JobAggregator>(
    config: &mut EngineConfig<A>,
    source: &dyn Source,
    stats: &Stats,
    writes: bool,
    files: &[(&'static str, PathBuf)],
) -> Result<Start> {
    let emit_from = match &config.emit_from {
        None => None,
        Some(EmitFrom::Time(t)) => Some(*t),
        Some(EmitFrom::Offsets(offsets)) => {
            Some(offsets_to_time(source, offsets, config.max_future_skew)?)
        }
    };
    let mut start = Start {
        dir: None,
        fingerprint: None,
        resumed: None,
        outputs: None,
        sink_states: BTreeMap::new(),
        counters: Counters::default(),
        complete: false,
        emit_from,
        decisions: None,
        replay: match &config.replay_decisions {
            Some(dir) => {
                let replay = Replay::load(dir)?;
                replay
                    .check_partitions(&source.partitions()?)
                    .map_err(EngineError::Config)?;
                Some(Arc::new(replay))
            }
            None => None,
        },
    };
    let Some(ck) = config.checkpoint.clone() else {
        return Ok(start);
    };
    let record = config.idle_after.is_some() && emit_from.is_none() && writes;
    let fingerprint = JobFingerprint::of(config, ck.input.clone(), ck.settings.clone());
    let mut dir = CheckpointDir::open(&ck.dir)?.with_keep(ck.keep);
    if writes {
        // Before anything is read or opened: a second run on this
        // directory must not resume from the first one's checkpoints and
        // cut back the outputs it is still writing.
        dir.lock()?;
    }
    if ck.rebuild && emit_from.is_none() {
        if writes {
            let removed = dir.clear()?;
            if removed > 0 {
                stats.notice(format!(
                    "rebuilding from offset 0: removed {removed} checkpoint(s) from \"{}\"",
                    ck.dir.display()
                ));
            }
        }
        if record {
            start.decisions = Some(Arc::new(DecisionLog::open(&ck.dir, None)?));
        }
        start.dir = Some(dir);
        start.fingerprint = Some(fingerprint);
        return Ok(start);
    }
    let limit = emit_from.unwrap_or(EventTime::MAX);
    // Checkpoints that were completed but cannot be used.
    let mut damaged = 0;
    for id in dir.ids()?.into_iter().rev() {
        let found = match dir.load(id) {
            Ok(found) => found,
            Err(CheckpointError::Invalid { id, path, reason }) => {
                if !matches!(reason, Invalid::MissingManifest { .. }) {
                    damaged += 1;
                }
                stats.notice(format!(
                    "checkpoint {id} (\"{}\") skipped: {reason}; trying the one before",
                    path.display()
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let checkpoint = found.checkpoint;
        if emit_from.is_some() && checkpoint.frontier > limit {
            continue;
        }
        checkpoint
            .fingerprint
            .ensure_same(&fingerprint)
            .map_err(EngineError::Checkpoint)?;
        for input in &checkpoint.counters.inputs {
            input.verify().map_err(|reason| {
                EngineError::Checkpoint(CheckpointError::InputChanged {
                    id: found.id,
                    file: input.file.clone(),
                    reason,
                })
            })?;
        }
        start.resumed = Some((found.id, checkpoint.frontier));
        start.counters = checkpoint.counters.clone();
        let unreadable = |reason| {
            EngineError::Checkpoint(CheckpointError::Invalid {
                id: found.id,
                path: found.path.clone(),
                reason: Invalid::UnreadableState(reason),
            })
        };
        let mut states = state::decode(&checkpoint.state).map_err(unreadable)?;
        start.sink_states = state::take_sinks(&mut states)
            .into_iter()
            .map(|(output, bytes)| (output, SinkState::from_bytes(bytes)))
            .collect();
        start.outputs = Some(checkpoint.outputs);
        if checkpoint.frontier == EventTime::MAX {
            start.complete = true;
            break;
        }
        let state = restore_state(config, states, checkpoint.frontier).map_err(unreadable)?;
        config.initial_state = Some(Arc::new(state.snapshot()));
        config.start = checkpoint.positions.clone();
        break;
    }
    if emit_from.is_none() && start.resumed.is_none() && writes {
        let owned = OwnedOutputs::read(&ck.dir);
        if let Some((what, path, len)) = files.iter().find_map(|(what, path)| {
            let len = std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_file() && m.len() > 0)?
                .len();
            (damaged > 0 || !owned.holds(path)).then(|| (*what, path.clone(), len))
        }) {
            return Err(EngineError::Checkpoint(CheckpointError::WouldReplace {
                dir: ck.dir.clone(),
                what,
                path,
                len,
                damaged,
            }));
        }
        if owned.exists()
            && files
                .iter()
                .any(|(_, p)| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        {
            stats.notice(format!(
                "no checkpoint in \"{}\" was completed by the run before: starting from offset 0 and replacing its outputs",
                ck.dir.display()
            ));
        }
        OwnedOutputs::write(&ck.dir, files)?;
    }
    if emit_from.is_none() {
        if record && !start.complete {
            let resumed = start.resumed.map(|_| &config.start);
            start.decisions = Some(Arc::new(DecisionLog::open(&ck.dir, resumed)?));
        }
        start.dir = Some(dir);
        start.fingerprint = Some(fingerprint);
    }
    Ok(start)
}

/// The outputs a checkpoint directory's runs write (`OUTPUTS`, one
/// absolute path per line), recorded by a run that starts from offset 0
/// before it opens them: a later run with no checkpoint to resume from
/// replaces them only if they are these.
struct OwnedOutputs(Option<Vec<PathBuf>>);

/// The file of [`OwnedOutputs`] in a checkpoint directory.
const OUTPUTS_FILE: &str = "OUTPUTS";

impl OwnedOutputs {
    fn read(dir: &Path) -> OwnedOutputs {
        OwnedOutputs(
            std::fs::read_to_string(dir.join(OUTPUTS_FILE))
                .ok()
                .map(|text| text.lines().map(PathBuf::from).collect()),
        )
    }

    fn exists(&self) -> bool {
        self.0.is_some()
    }

    fn holds(&self, path: &Path) -> bool {
        let path = absolute(path);
        self.0.as_ref().is_some_and(|owned| owned.contains(&path))
    }

    /// Records `files` (written to a temporary file, synced and renamed).
    fn write(dir: &Path, files: &[(&'static str, PathBuf)]) -> Result<()> {
        let text: String = files
            .iter()
            .map(|(_, p)| format!("{}\n", absolute(p).display()))
            .collect();
        let path = dir.join(OUTPUTS_FILE);
        let tmp = dir.join(format!("{OUTPUTS_FILE}.tmp"));
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| {
                EngineError::Checkpoint(CheckpointError::Io {
                    action,
                    path,
                    source,
                })
            }
        };
        std::fs::create_dir_all(dir).map_err(io("create the checkpoint directory", dir))?;
        let mut file = std::fs::File::create(&tmp).map_err(io("write", &tmp))?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))
    }
}

/// `path` made absolute (its directory's links resolved when it exists),
/// so that two spellings of one output compare equal.
fn absolute(path: &Path) -> PathBuf {
    let joined = match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path.to_path_buf(),
    };
    match (joined.parent(), joined.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(joined),
        _ => joined,
    }
}

/// The window state of a checkpoint at `frontier`: every worker's snapshot
/// advanced to just below it (what that fires was committed before it),
/// merged into one state.
fn restore_state<A: JobAggregator>(
    config: &EngineConfig<A>,
    states: state::OperatorStates,
    frontier: EventTime,
) -> std::result::Result<WindowState<tidemark_sources::Key, A>, String> {
    let [window]: [Vec<Vec<u8>>; 1] = state::take(states, &[state::WINDOW])?
        .try_into()
        .map_err(|_| "one operator's state expected".to_owned())?;
    let mut merged = WindowState::try_new(config.window, config.policy, config.aggregator.clone())
        .map_err(|e| e.to_string())?;
    let below = frontier.saturating_sub(1);
    let mut discard = Vec::new();
    merged.advance(below, &mut discard);
    for worker in &window {
        let snapshot: crate::config::StateSnapshot<A> = postcard::from_bytes(worker)
            .map_err(|e| format!("a worker's window state cannot be decoded: {e}"))?;
        let mut state =
            WindowState::restore(config.aggregator.clone(), snapshot).map_err(|e| e.to_string())?;
        if (state.spec(), state.policy()) != (config.window, config.policy) {
            return Err("the window state is of another window or policy".into());
        }
        state.advance(below, &mut discard);
        discard.clear();
        merged.absorb(state).map_err(|e| e.to_string())?;
    }
    Ok(merged)
}

/// The stream time from which a reprocessing run from `offsets` writes: one
/// more than the largest stream time a partition has just before its
/// requested offset (reading each such partition's prefix).
fn offsets_to_time(
    source: &dyn Source,
    offsets: &BTreeMap<PartitionId, u64>,
    max_future_skew: Option<EventTime>,
) -> Result<EventTime> {
    let partitions = source.partitions()?;
    let mut from = EventTime::MIN;
    for (&p, &offset) in offsets {
        if !partitions.contains(&p) {
            return Err(EngineError::Config(format!(
                "the reprocessing offsets name partition {p}, but the input has partitions 0 to {}",
                partitions.len().saturating_sub(1)
            )));
        }
        if offset == 0 {
            continue;
        }
        let mut reader = source.open(p, 0)?;
        let mut read = Vec::new();
        let mut stream_time: Option<EventTime> = None;
        let mut next = 0u64;
        'read: loop {
            read.clear();
            let status = reader.read(4096, &mut read)?;
            for d in read.drain(..) {
                let (at, time) = match d {
                    Ok(r) => (r.offset, Some(r.event_time)),
                    Err(letter) => (letter.offset, None),
                };
                if at >= offset {
                    break 'read;
                }
                // As the ingest does it: a record too far ahead (the future
                // guard) does not move the stream time.
                let future = |t: EventTime| matches!((max_future_skew, stream_time), (Some(k), Some(s)) if t > s.saturating_add(k));
                if let Some(t) = time.filter(|&t| !future(t)) {
                    stream_time = Some(stream_time.map_or(t, |s| s.max(t)));
                }
                next = at + 1;
            }
            match status {
                tidemark_sources::ReadStatus::End => break,
                tidemark_sources::ReadStatus::CaughtUp => break,
                _ => {}
            }
        }
        if next < offset {
            return Err(EngineError::Config(format!(
                "the reprocessing offset {p}:{offset} is past the end of partition {p} ({next} records)"
            )));
        }
        if let Some(t) = stream_time {
            from = from.max(t.saturating_add(1));
        }
    }
    Ok(from)
}
