//! What a window operator measures of its state for those who watch the
//! job: its oldest open window, for the progress line ([`OldestPoll`]),
//! and its peak size ([`StatePeak`], with
//! [`Options::sample_state`](crate::Options::sample_state)).

use std::time::{Duration, Instant};

use tidemark_sources::Key;
use tidemark_windows::{EventTime, WindowState};

use crate::aggregator::JobAggregator;
use crate::stats::Stats;

/// How often, at most, a worker looks for its oldest open window.
const OLDEST_EVERY: Duration = Duration::from_millis(500);

/// When a worker last looked for its oldest open window, for the
/// progress line: at most every [`OLDEST_EVERY`], and once more after the
/// last change.
#[derive(Default)]
pub(crate) struct OldestPoll {
    last: Option<Instant>,
    /// Something changed since the last look.
    dirty: bool,
    /// Look again after this long.
    pub(crate) wake: Option<Duration>,
}

impl OldestPoll {
    /// Reports the oldest open window of `state` when it is time to.
    pub(crate) fn poll<A: JobAggregator>(
        &mut self,
        changed: bool,
        state: &WindowState<Key, A>,
        worker: usize,
        stats: &Stats,
    ) {
        self.wake = None;
        if !stats.oldest_wanted() {
            return;
        }
        self.dirty |= changed || self.last.is_none();
        let since = self.last.map(|t| t.elapsed());
        if self.dirty && since.is_none_or(|s| s >= OLDEST_EVERY) {
            self.last = Some(Instant::now());
            self.dirty = false;
            let oldest = state.oldest_open_window().map(|(e, k)| (e, k as u64));
            stats.report_oldest(worker, oldest);
        } else if let Some(s) = since.filter(|_| self.dirty) {
            self.wake = Some(OLDEST_EVERY.saturating_sub(s));
        }
    }
}

/// A worker's peak window state, sampled after the first frontier step at
/// or past each multiple of `every` (see
/// [`Options::sample_state`](crate::Options::sample_state)).
pub(crate) struct StatePeak {
    every: EventTime,
    next: EventTime,
    open: u64,
    bytes: u64,
    /// The open count and encoded size at the last encoding.
    encoded: (u64, u64),
}

impl StatePeak {
    pub(crate) fn new(every: EventTime) -> Self {
        StatePeak {
            every,
            next: EventTime::MIN,
            open: 0,
            bytes: 0,
            encoded: (0, 0),
        }
    }

    /// Samples after `step` when it reached the next sample point.
    #[inline]
    pub(crate) fn after_step<A: JobAggregator>(
        &mut self,
        step: EventTime,
        state: &WindowState<Key, A>,
        stats: &Stats,
    ) {
        if step >= self.next {
            self.next = step
                .div_euclid(self.every)
                .saturating_add(1)
                .saturating_mul(self.every);
            self.sample(state, stats);
        }
    }

    /// Counts the open states; at a new peak, encodes the state for its
    /// size, and adds what grew to the process's stats.
    pub(crate) fn sample<A: JobAggregator>(&mut self, state: &WindowState<Key, A>, stats: &Stats) {
        let open = state.open_states() as u64;
        if open <= self.open {
            return;
        }
        Stats::add(&stats.peak_open_windows, open - self.open);
        self.open = open;
        // Encoding is what costs: encode again only when the count grew by
        // a tenth since the last encoding, and scale that size meanwhile.
        if open >= self.encoded.0.saturating_add(self.encoded.0 / 10).max(1) {
            if let Ok(encoded) = crate::operators::cuts::encode_state(state) {
                self.encoded = (open, encoded.len() as u64);
            }
        }
        let (at, size) = self.encoded;
        let bytes = if at == 0 {
            0
        } else {
            (u128::from(size) * u128::from(open) / u128::from(at)) as u64
        };
        if bytes > self.bytes {
            Stats::add(&stats.peak_state_bytes, bytes - self.bytes);
            self.bytes = bytes;
        }
    }
}
