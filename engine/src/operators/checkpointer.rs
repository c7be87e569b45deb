//! Taking checkpoints, beside the sink on worker 0: collects the window
//! operators' cut reports ([`CutReport`]), picks a cut below the sink's
//! frontier that every worker's report covers, and writes the checkpoint
//! once the outputs hold exactly the items before that cut.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tidemark_sources::{DeadLetter, PartitionId, Source};
use tidemark_windows::EventTime;

use crate::checkpoint::{
    state, Checkpoint, CheckpointDir, CheckpointError, CommittedOutputs, Counters, JobFingerprint,
};
use crate::config::Position;
use crate::counts::Counts;
use crate::error::{EngineError, Result};
use crate::event::CutReport;
use crate::operators::stats_log::StatsLogWriter;
use crate::sink::target::OpenSinks;
use crate::sink::SinkState;
use crate::stats::Stats;

/// One worker's report, its state resolved.
struct Report {
    lo: EventTime,
    hi: EventTime,
    state: Arc<Vec<u8>>,
    positions: Vec<(PartitionId, u64, EventTime)>,
    applied: Counts,
    open: (u64, u64),
}

/// What the checkpointing sink knows.
pub(crate) struct Checkpointer {
    dir: CheckpointDir,
    fingerprint: JobFingerprint,
    /// Where this run started (a resumed checkpoint's positions).
    start: BTreeMap<PartitionId, Position>,
    /// The counters of the checkpoint this run resumed from.
    base: Counters,
    /// Per worker: the reports that may still cover a cut, oldest first.
    reports: Vec<VecDeque<Report>>,
    /// Per worker: the state of its newest report that had one.
    last_state: Vec<Option<Arc<Vec<u8>>>>,
    /// The cut of the newest checkpoint written (or resumed from).
    last_cut: EventTime,
    /// Per partition: one past the largest offset of a dead letter written.
    dead: BTreeMap<PartitionId, u64>,
    /// Dead letters written by this run.
    dead_written: u64,
    /// Every multiple of this (stream time) is a cut, if set.
    every: Option<EventTime>,
    /// The input, whose files each checkpoint records.
    source: Arc<dyn Source>,
}

impl Checkpointer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        dir: CheckpointDir,
        fingerprint: JobFingerprint,
        start: BTreeMap<PartitionId, Position>,
        base: Counters,
        workers: usize,
        last_cut: EventTime,
        every: Option<EventTime>,
        source: Arc<dyn Source>,
    ) -> Self {
        Checkpointer {
            dir,
            fingerprint,
            start,
            base,
            reports: (0..workers).map(|_| VecDeque::new()).collect(),
            last_state: vec![None; workers],
            last_cut,
            dead: BTreeMap::new(),
            dead_written: 0,
            every,
            source,
        }
    }

    /// Takes in one worker's report.
    pub(crate) fn receive(&mut self, report: CutReport) {
        let w = report.worker as usize;
        if w >= self.reports.len() {
            return;
        }
        let state = match report.state {
            Some(bytes) => {
                let bytes = Arc::new(bytes);
                self.last_state[w] = Some(Arc::clone(&bytes));
                bytes
            }
            None => match &self.last_state[w] {
                Some(s) => Arc::clone(s),
                None => return,
            },
        };
        self.reports[w].push_back(Report {
            lo: report.lo,
            hi: report.hi,
            state,
            positions: report.positions,
            applied: report.applied,
            open: report.open,
        });
    }

    /// Notes a dead letter written to the output.
    pub(crate) fn wrote_dead(&mut self, letter: &DeadLetter) {
        self.dead_written += 1;
        let next = self.dead.entry(letter.partition).or_default();
        *next = (*next).max(letter.offset.saturating_add(1));
    }

    fn covering(&self, worker: usize, cut: EventTime) -> Option<&Report> {
        self.reports[worker]
            .iter()
            .find(|r| r.lo <= cut && cut <= r.hi)
    }

    fn covered(&self, cut: EventTime) -> bool {
        (0..self.reports.len()).all(|w| self.covering(w, cut).is_some())
    }

    /// The newest cut below `frontier`, after the last checkpoint, that
    /// every worker's reports cover. Every report of a cut below the
    /// frontier has arrived (a report is sent at a time below its cuts).
    pub(crate) fn candidate(&self, frontier: EventTime) -> Option<EventTime> {
        let mut candidates: Vec<EventTime> = self
            .reports
            .iter()
            .flatten()
            .map(|r| r.hi)
            .filter(|&hi| hi < frontier && hi > self.last_cut && hi != EventTime::MAX)
            .collect();
        if let Some(ms) = self.every {
            let below = frontier.saturating_sub(1);
            let multiple = below.div_euclid(ms).saturating_mul(ms);
            if multiple > self.last_cut {
                candidates.push(multiple);
            }
        }
        candidates.sort_unstable();
        candidates.into_iter().rev().find(|&c| self.covered(c))
    }

    /// Whether every worker reported the end of the input.
    pub(crate) fn finished(&self) -> bool {
        (0..self.reports.len()).all(|w| self.covering(w, EventTime::MAX).is_some())
    }

    /// Writes the checkpoint at `cut`: the outputs hold exactly the items
    /// of the steps before it. Makes them durable first.
    pub(crate) fn take<O: 'static>(
        &mut self,
        cut: EventTime,
        sinks: &mut OpenSinks<O>,
        stats: &Stats,
        stats_log: Option<&mut StatsLogWriter>,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let outputs = sinks.durable_positions()?;
        let sink_states = sinks.checkpoint_states()?;
        let mut positions = self.start.clone();
        let mut workers = Vec::with_capacity(self.reports.len());
        let mut applied = Counts::default();
        let mut applied_at: Vec<(PartitionId, u64, EventTime)> = Vec::new();
        let (mut open_windows, mut keys) = (0, 0);
        for w in 0..self.reports.len() {
            let Some(report) = self.covering(w, cut) else {
                return Ok(());
            };
            for &(p, next, stream_time) in &report.positions {
                let pos = positions.entry(p).or_default();
                pos.offset = pos.offset.max(next);
                pos.stream_time = Some(pos.stream_time.map_or(stream_time, |t| t.max(stream_time)));
            }
            applied_at.extend_from_slice(&report.positions);
            workers.push(Arc::clone(&report.state));
            open_windows += report.open.0;
            keys += report.open.1;
            applied.add(&report.applied);
        }
        let stats_log = match stats_log {
            Some(log) => {
                log.checkpoint(&applied, &applied_at)
                    .map_err(|source| EngineError::Output {
                        what: "stats",
                        path: log.path().to_owned(),
                        source,
                    })?
            }
            None => None,
        };
        for (&p, &next) in &self.dead {
            let pos = positions.entry(p).or_default();
            pos.offset = pos.offset.max(next);
        }
        let sink_entries: Vec<(String, &[u8])> = sink_states
            .iter()
            .map(|(what, st)| (format!("{}{what}", state::SINK), st.as_bytes()))
            .collect();
        let mut entries: BTreeMap<&str, Vec<&[u8]>> = sink_entries
            .iter()
            .map(|(name, bytes)| (name.as_str(), vec![*bytes]))
            .collect();
        if cut != EventTime::MAX {
            entries.insert(
                state::WINDOW,
                workers.iter().map(|w| w.as_slice()).collect(),
            );
        }
        let state = if entries.is_empty() {
            Vec::new()
        } else {
            state::encode(&entries)
                .map_err(|e| EngineError::Checkpoint(CheckpointError::Encode(e)))?
        };
        // The record counts: the runs' before, and what the window
        // operators applied below the cut (with the dead letters the sink
        // wrote below it). The others are the sink's and the ingests' own:
        // exact, as the sink writes in order (a resumed run's start from
        // the checkpoint's).
        let mut below = self.base.counts;
        below.add(&Counts {
            dead_letters: self.dead_written,
            ..applied
        });
        let counters = Counters {
            counts: below.records_with_rest_of(&stats.counts.get()),
            open_windows,
            keys,
            stats_log,
            inputs: self.source.content_checks()?,
        };
        let checkpoint = Checkpoint {
            frontier: cut,
            positions,
            state,
            outputs,
            fingerprint: self.fingerprint.clone(),
            counters,
        };
        match self.dir.write(&checkpoint) {
            Ok(_) => {}
            // Written; only an old one could not be removed.
            Err(e @ CheckpointError::Prune { .. }) => stats.notice(e.to_string()),
            Err(e) => return Err(EngineError::Checkpoint(e)),
        }
        stats.checkpoint_written(
            started.elapsed().as_nanos() as u64,
            checkpoint.state.len() as u64,
        );
        self.last_cut = cut;
        for reports in &mut self.reports {
            while reports.front().is_some_and(|r| r.hi <= cut) {
                reports.pop_front();
            }
        }
        Ok(())
    }
}

impl<O: 'static> OpenSinks<O> {
    /// The recovery states of the sinks that keep their own (see
    /// [`Sink::checkpoint_state`](crate::Sink::checkpoint_state)), by
    /// output.
    pub(crate) fn checkpoint_states(&mut self) -> Result<Vec<(&'static str, SinkState)>> {
        let fail = |what, path: String| move |source| EngineError::Output { what, path, source };
        let mut out = Vec::new();
        let results = self.results.checkpoint_state();
        let results = results.map_err(fail("results", self.results.describe()))?;
        out.extend(results.map(|s| ("results", s)));
        let late = self.late.checkpoint_state();
        let late = late.map_err(fail("late records", self.late.describe()))?;
        out.extend(late.map(|s| ("late records", s)));
        let dead = self.dead_letters.checkpoint_state();
        let dead = dead.map_err(fail("dead letters", self.dead_letters.describe()))?;
        out.extend(dead.map(|s| ("dead letters", s)));
        Ok(out)
    }

    /// Makes every output durable and returns how far each is written (for
    /// outputs that can be resumed).
    pub(crate) fn durable_positions(&mut self) -> Result<CommittedOutputs> {
        let fail = |what, path: String| move |source| EngineError::Output { what, path, source };
        Ok(CommittedOutputs {
            results: self
                .results
                .durable_position()
                .map_err(fail("results", self.results.describe()))?,
            late: self
                .late
                .durable_position()
                .map_err(fail("late records", self.late.describe()))?,
            dead_letters: self
                .dead_letters
                .durable_position()
                .map_err(fail("dead letters", self.dead_letters.describe()))?,
        })
    }
}
