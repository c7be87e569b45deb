//! Starting a checkpointed or reprocessing run: finds the checkpoint to
//! resume from (the newest valid one, or the newest at or before a
//! reprocessing point), checks the job's fingerprint against it, and turns
//! it into start positions and window state; and resolves
//! [`EmitFrom::Offsets`] into the stream time the output starts at.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark_sources::{PartitionId, Source};
use tidemark_windows::{EventTime, WindowState};

use super::decisions::{DecisionLog, Replay};
use super::{CheckpointDir, CheckpointId, CommittedOutputs, Counters, JobFingerprint};
use crate::aggregator::JobAggregator;
use crate::config::{EmitFrom, EngineConfig};
use crate::error::{EngineError, Result};
use crate::operators::checkpointer::decode_state_file;
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
pub(crate) fn prepare<A: JobAggregator>(
    config: &mut EngineConfig<A>,
    source: &dyn Source,
    stats: &Stats,
    writes: bool,
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
        counters: Counters::default(),
        complete: false,
        emit_from,
        decisions: None,
        replay: match &config.replay_decisions {
            Some(dir) => Some(Arc::new(Replay::load(dir)?)),
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
    for id in dir.ids()?.into_iter().rev() {
        let found = match dir.load(id) {
            Ok(found) => found,
            Err(super::CheckpointError::Invalid { id, path, reason }) => {
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
                EngineError::Checkpoint(super::CheckpointError::InputChanged {
                    id: found.id,
                    file: input.file.clone(),
                    reason,
                })
            })?;
        }
        start.resumed = Some((found.id, checkpoint.frontier));
        start.counters = checkpoint.counters.clone();
        if checkpoint.frontier == EventTime::MAX {
            start.complete = true;
            start.outputs = Some(checkpoint.outputs);
            break;
        }
        let state =
            restore_state(config, &checkpoint.state, checkpoint.frontier).map_err(|reason| {
                EngineError::Checkpoint(super::CheckpointError::Invalid {
                    id: found.id,
                    path: found.path.clone(),
                    reason: super::Invalid::UnreadableState(reason),
                })
            })?;
        config.initial_state = Some(Arc::new(state.snapshot()));
        config.start = checkpoint.positions.clone();
        start.outputs = Some(checkpoint.outputs);
        break;
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

/// The window state of a checkpoint at `frontier`: every worker's snapshot
/// advanced to just below it (what that fires was committed before it),
/// merged into one state.
fn restore_state<A: JobAggregator>(
    config: &EngineConfig<A>,
    bytes: &[u8],
    frontier: EventTime,
) -> std::result::Result<WindowState<tidemark_sources::Key, A>, String> {
    let file = decode_state_file(bytes)?;
    let mut merged = WindowState::try_new(config.window, config.policy, config.aggregator.clone())
        .map_err(|e| e.to_string())?;
    let below = frontier.saturating_sub(1);
    let mut discard = Vec::new();
    merged.advance(below, &mut discard);
    for worker in &file.workers {
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
                "--from-offsets names partition {p}, but the input has partitions 0 to {}",
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
                "--from-offsets {p}:{offset} is past the end of partition {p} ({next} records)"
            )));
        }
        if let Some(t) = stream_time {
            from = from.max(t.saturating_add(1));
        }
    }
    Ok(from)
}
