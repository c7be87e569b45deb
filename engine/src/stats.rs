//! Counters a running job updates, its stop request, and the summary it
//! ends with.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

/// Live counters, shared by all workers of a process; readable while the
/// job runs (for a progress bar).
#[derive(Debug)]
pub struct Stats {
    /// Records decoded.
    pub records: AtomicU64,
    /// Records that could not be decoded.
    pub dead_letters: AtomicU64,
    /// Records dropped from at least one window as too late.
    pub late_dropped: AtomicU64,
    /// Records applied to a window after it fired (allowed lateness).
    pub late_applied: AtomicU64,
    /// Records whose event time lies in no window (sliding windows with gaps)
    /// or for which no window can be formed.
    pub unassigned: AtomicU64,
    /// Rows of kind `final`.
    pub windows_emitted: AtomicU64,
    /// Rows of kind `retract` or `update`.
    pub corrections: AtomicU64,
    /// Partitions that reached their end.
    pub partitions_done: AtomicU64,
    /// Partitions read by this process.
    pub partitions: AtomicU64,
    /// The frontier (global stream time) reached by the output.
    pub frontier: AtomicI64,
    /// Times a followed partition was released as idle.
    pub idle_releases: AtomicU64,
    /// Set by [`Stats::request_stop`].
    stop: AtomicBool,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            records: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            late_dropped: AtomicU64::new(0),
            late_applied: AtomicU64::new(0),
            unassigned: AtomicU64::new(0),
            windows_emitted: AtomicU64::new(0),
            corrections: AtomicU64::new(0),
            partitions_done: AtomicU64::new(0),
            partitions: AtomicU64::new(0),
            frontier: AtomicI64::new(i64::MIN),
            idle_releases: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// Asks the running job to stop reading (from any thread, e.g. a signal
    /// handler's): it writes and commits what its completed frontiers hold,
    /// fires no window still open, and returns its summary.
    pub fn request_stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// A consistent-enough copy of the counters.
    pub fn summary(&self, delay: i64) -> Summary {
        let frontier = self.frontier.load(Relaxed);
        Summary {
            records: self.records.load(Relaxed),
            dead_letters: self.dead_letters.load(Relaxed),
            late_dropped: self.late_dropped.load(Relaxed),
            late_applied: self.late_applied.load(Relaxed),
            unassigned: self.unassigned.load(Relaxed),
            windows_emitted: self.windows_emitted.load(Relaxed),
            corrections: self.corrections.load(Relaxed),
            partitions: self.partitions.load(Relaxed),
            idle_releases: self.idle_releases.load(Relaxed),
            final_watermark: if frontier == i64::MAX {
                None
            } else {
                Some(tidemark_windows::time::watermark(frontier, delay))
            },
        }
    }
}

/// What a finished job did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Records decoded.
    pub records: u64,
    /// Records that went to the dead-letter output.
    pub dead_letters: u64,
    /// Records dropped from at least one window as too late.
    pub late_dropped: u64,
    /// Records applied after their window fired, within allowed lateness.
    pub late_applied: u64,
    /// Records in no window.
    pub unassigned: u64,
    /// Rows of kind `final`.
    pub windows_emitted: u64,
    /// Rows of kind `retract` or `update`.
    pub corrections: u64,
    /// Partitions read by this process.
    pub partitions: u64,
    /// Times a followed partition was released as idle (`idle_after`); when
    /// non-zero the results may depend on timing.
    pub idle_releases: u64,
    /// The global watermark at the end: `None` when every partition ended
    /// (the watermark reached +∞).
    pub final_watermark: Option<i64>,
}
