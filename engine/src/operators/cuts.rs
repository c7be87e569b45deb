//! Checkpoint cuts as a window operator sees them: which stream times are
//! cuts ([`Schedule`]), which of them the operator has passed, and what it
//! reports when it passes them ([`CutTracker`]).
//!
//! A cut `c` is passed once every step below `c` has been applied and none
//! at or above it. The operator reports each run of cuts it passes with no
//! record applied in between as one [`CutReport`] (`lo..=hi`): its state
//! then, encoded only if a record was applied since its previous report.
//! Every worker passes every cut, so the sink can pick any cut below its
//! frontier and find a report of each worker that covers it.

use std::collections::BTreeSet;

use tidemark_sources::{Key, PartitionId};
use tidemark_windows::{EventTime, WindowState};

use crate::aggregator::JobAggregator;
use crate::config::CheckpointEvery;
use crate::counts::Counts;
use crate::error::{EngineError, Result};
use crate::event::CutReport;

/// Which stream times are cuts.
#[derive(Clone, Debug)]
pub(crate) enum Schedule {
    /// Every multiple of this many ms.
    Every(EventTime),
    /// The cuts announced by the ingests ([`Ingest::Cut`](crate::event::Ingest::Cut)).
    Marks(BTreeSet<EventTime>),
}

impl Schedule {
    pub(crate) fn new(every: CheckpointEvery) -> Schedule {
        match every {
            CheckpointEvery::EventTime(ms) => Schedule::Every(ms.max(1)),
            CheckpointEvery::Records(_) => Schedule::Marks(BTreeSet::new()),
        }
    }

    /// The first and last cut in `(after, upto]`, if any.
    fn between(&self, after: EventTime, upto: EventTime) -> Option<(EventTime, EventTime)> {
        if upto <= after {
            return None;
        }
        match self {
            Schedule::Every(ms) => {
                let ms = i128::from(*ms);
                let first = (i128::from(after).div_euclid(ms) + 1) * ms;
                let last = i128::from(upto).div_euclid(ms) * ms;
                (first <= last).then(|| (clamp(first), clamp(last)))
            }
            Schedule::Marks(marks) => {
                let mut range = marks.range((
                    std::ops::Bound::Excluded(after),
                    std::ops::Bound::Included(upto),
                ));
                let first = *range.next()?;
                let last = range.next_back().copied().unwrap_or(first);
                Some((first, last))
            }
        }
    }
}

fn clamp(t: i128) -> EventTime {
    t.clamp(i128::from(EventTime::MIN), i128::from(EventTime::MAX)) as EventTime
}

/// Partition ids below this have their position in a table indexed by id.
const DENSE: usize = 1 << 16;

/// What one window operator knows of the cuts.
pub(crate) struct CutTracker {
    schedule: Schedule,
    worker: u32,
    /// Every cut at or below this has been passed.
    passed: EventTime,
    /// A record was applied since the last report.
    dirty: bool,
    /// Per partition id below [`DENSE`]: one past the largest offset
    /// applied and the stream time there (`u64::MAX` offset: none yet).
    positions: Vec<(u64, EventTime)>,
    /// The same for larger partition ids (a source may number its
    /// partitions sparsely): no table sized by the largest id.
    sparse: rustc_hash::FxHashMap<PartitionId, (u64, EventTime)>,
    /// Time spent encoding state for reports, not yet counted in the stats.
    pub(crate) encode_nanos: u64,
    /// Open window states and keys in the last state reported.
    open: (u64, u64),
    /// Reports for the stats log (`--stats`): positions and counters, no
    /// state.
    stats: bool,
}

impl CutTracker {
    /// A tracker of worker `worker` that has passed every cut at or below
    /// `passed` (the frontier of the checkpoint it resumed from).
    pub(crate) fn new(schedule: Schedule, worker: u32, passed: EventTime) -> Self {
        CutTracker {
            schedule,
            worker,
            passed,
            dirty: true,
            positions: Vec::new(),
            sparse: Default::default(),
            encode_nanos: 0,
            open: (0, 0),
            stats: false,
        }
    }

    /// A tracker of the stats log's cuts (every multiple of `every` ms):
    /// its reports carry positions and counters, never state.
    pub(crate) fn for_stats_log(every: EventTime, worker: u32, passed: EventTime) -> Self {
        CutTracker {
            stats: true,
            dirty: false,
            ..CutTracker::new(Schedule::Every(every.max(1)), worker, passed)
        }
    }

    /// Whether this tracker reports for the stats log.
    pub(crate) fn for_stats(&self) -> bool {
        self.stats
    }

    /// A cut announced by an ingest.
    pub(crate) fn mark(&mut self, at: EventTime) {
        if let Schedule::Marks(marks) = &mut self.schedule {
            if at > self.passed {
                marks.insert(at);
            }
        }
    }

    /// Notes one record applied (of any outcome).
    #[inline]
    pub(crate) fn note(&mut self, partition: PartitionId, offset: u64, stream_time: EventTime) {
        let i = partition as usize;
        let slot = if i < DENSE {
            if i >= self.positions.len() {
                self.positions.resize(i + 1, (u64::MAX, EventTime::MIN));
            }
            &mut self.positions[i]
        } else {
            self.sparse
                .entry(partition)
                .or_insert((u64::MAX, EventTime::MIN))
        };
        let next = offset.saturating_add(1);
        if slot.0 == u64::MAX || next > slot.0 {
            *slot = (next, stream_time);
        }
        self.dirty = true;
    }

    /// The report for the cuts in `(passed, upto]`, if there are any: every
    /// step below `upto`'s cuts has been applied, none at or above them,
    /// and `applied` counts what this run's steps so far did.
    pub(crate) fn pass<A: JobAggregator>(
        &mut self,
        upto: EventTime,
        state: &WindowState<Key, A>,
        applied: &Counts,
    ) -> Result<Option<CutReport>> {
        let Some((lo, hi)) = self.schedule.between(self.passed, upto) else {
            return Ok(None);
        };
        self.passed = hi;
        if let Schedule::Marks(marks) = &mut self.schedule {
            *marks = marks.split_off(&hi.saturating_add(1));
        }
        let state = if self.stats {
            None
        } else if std::mem::replace(&mut self.dirty, false) {
            let started = std::time::Instant::now();
            let bytes = encode_state(state)?;
            self.open = (state.open_states() as u64, state.keys() as u64);
            self.encode_nanos += started.elapsed().as_nanos() as u64;
            Some(bytes)
        } else {
            None
        };
        Ok(Some(self.report(lo, hi, state, applied)))
    }

    /// The report at the end of the input (`EventTime::MAX`): positions and
    /// counters only.
    pub(crate) fn finish(&mut self, applied: &Counts) -> CutReport {
        self.passed = EventTime::MAX;
        self.open = (0, 0);
        self.report(EventTime::MAX, EventTime::MAX, Some(Vec::new()), applied)
    }

    fn report(
        &self,
        lo: EventTime,
        hi: EventTime,
        state: Option<Vec<u8>>,
        applied: &Counts,
    ) -> CutReport {
        let positions = self
            .positions
            .iter()
            .enumerate()
            .filter(|(_, (o, _))| *o != u64::MAX)
            .map(|(p, (o, t))| (p as PartitionId, *o, *t))
            .chain(self.sparse.iter().map(|(&p, &(o, t))| (p, o, t)))
            .collect();
        CutReport {
            worker: self.worker,
            lo,
            hi,
            state,
            positions,
            applied: *applied,
            open: self.open,
            stats: self.stats,
        }
    }
}

/// A worker's state as a checkpoint holds it.
pub(crate) fn encode_state<A: JobAggregator>(state: &WindowState<Key, A>) -> Result<Vec<u8>> {
    struct Encode<'a, A: JobAggregator>(&'a WindowState<Key, A>);
    impl<A: JobAggregator> serde::Serialize for Encode<'_, A> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            self.0.serialize_snapshot(s)
        }
    }
    postcard::to_stdvec(&Encode(state))
        .map_err(|e| EngineError::Config(format!("could not encode the window state: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiples_between_two_times() {
        let s = Schedule::Every(1_000);
        let first = -9_223_372_036_854_775_000;
        assert_eq!(s.between(EventTime::MIN, -1), Some((first, -1_000)));
        assert_eq!(s.between(EventTime::MIN, 999), Some((first, 0)));
        assert_eq!(s.between(EventTime::MIN, 1_000), Some((first, 1_000)));
        assert_eq!(s.between(1, 999), None);
        assert_eq!(s.between(1_000, 1_999), None);
        assert_eq!(s.between(999, 1_000), Some((1_000, 1_000)));
        assert_eq!(s.between(1_000, 5_500), Some((2_000, 5_000)));
        assert_eq!(s.between(-2_500, -1_000), Some((-2_000, -1_000)));
        assert_eq!(s.between(5, 5), None);
    }

    #[test]
    fn positions_of_sparse_partition_ids_need_no_table_of_their_size() {
        let mut t = CutTracker::new(Schedule::Every(10), 0, 0);
        t.note(3, 7, 100);
        t.note(4_000_000_000, 41, 120);
        t.note(3, 5, 90);
        let mut p = t.finish(&Counts::default()).positions;
        p.sort_unstable();
        assert_eq!(p, vec![(3, 8, 100), (4_000_000_000, 42, 120)]);
        assert!(t.positions.len() < 10);
    }

    #[test]
    fn marks_between_two_times() {
        let s = Schedule::Marks(BTreeSet::from([10, 20, 30]));
        assert_eq!(s.between(0, 9), None);
        assert_eq!(s.between(0, 10), Some((10, 10)));
        assert_eq!(s.between(10, 35), Some((20, 30)));
    }
}
