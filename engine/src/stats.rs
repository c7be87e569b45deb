//! Counters a running job updates, its stop request, and the summary it
//! ends with.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

use crate::counts::{Counts, LiveCounts};

/// The counts are read as fields of the value that holds them
/// (`stats.records`, `summary.late_dropped`), as before they were gathered
/// in one type.
macro_rules! counts_as_fields {
    ($($t:ty => $c:ty),+) => {$(
        impl std::ops::Deref for $t {
            type Target = $c;
            fn deref(&self) -> &$c {
                &self.counts
            }
        }
    )+};
}

counts_as_fields!(Stats => LiveCounts, Summary => Counts, StatsSnapshot => Counts);

impl std::ops::DerefMut for Summary {
    fn deref_mut(&mut self) -> &mut Counts {
        &mut self.counts
    }
}

/// Live counters, shared by all workers of a process; readable while the
/// job runs (for a progress bar).
#[derive(Debug)]
pub struct Stats {
    /// The counts (also readable as fields of `Stats` itself:
    /// `stats.records`).
    pub counts: LiveCounts,
    /// Partitions that reached their end.
    pub partitions_done: AtomicU64,
    /// Partitions read by this process.
    pub partitions: AtomicU64,
    /// The frontier (global stream time) reached by the output.
    pub frontier: AtomicI64,
    /// The frontier at which every output was last committed
    /// (`i64::MIN`: never; `i64::MAX`: at the end of the input).
    pub(crate) committed: AtomicI64,
    /// Checkpoints written by this run.
    pub checkpoints: AtomicU64,
    /// Time spent taking them (the workers encoding their state, and the
    /// writing), in nanoseconds.
    pub checkpoint_nanos: AtomicU64,
    /// Bytes of window state they held, in all.
    pub checkpoint_bytes: AtomicU64,
    /// The newest checkpoint written: when (wall clock, ms since the Unix
    /// epoch; 0 before the first), how long it took (ns) and the bytes of
    /// window state it held.
    last_checkpoint: [AtomicU64; 3],
    /// With [`Options::sample_state`](crate::Options::sample_state):
    /// the most open (key, window) states a worker held at a sample,
    /// summed over the workers (each worker's own peak).
    pub peak_open_windows: AtomicU64,
    /// With `sample_state`: the encoded size of each worker's window state
    /// when it held its peak, summed over the workers.
    pub peak_state_bytes: AtomicU64,
    /// Each partition as its reader last saw it (see [`Stats::snapshot`]).
    partitions_live: std::sync::Mutex<std::collections::BTreeMap<u32, PartitionLive>>,
    /// The job's watermark delay (set by [`run`](crate::run)): the
    /// snapshot's watermarks are stream times minus it.
    pub(crate) delay: AtomicI64,
    /// With tables: how much later than their stream time the windows see
    /// records (Δ, part of `delay`); 0 without.
    pub(crate) shift: AtomicI64,
    /// Per worker: its oldest open window (end, keys) when it last looked.
    oldest: std::sync::Mutex<std::collections::BTreeMap<usize, Option<(i64, u64)>>>,
    /// What the job's caller asks of it through this handle, apart from
    /// the counts.
    requests: Requests,
    /// The job's tables, each as its readers and lookups report it.
    pub tables: crate::table::TableStats,
}

/// What the caller holding a job's [`Stats`] asks of the job: stop, look
/// for the oldest open window, where notices go.
#[derive(Debug, Default)]
struct Requests {
    /// Set by [`Stats::request_stop`].
    stop: AtomicBool,
    /// Set by [`Stats::watch_oldest_window`].
    oldest_wanted: AtomicBool,
    /// Where notices go (see [`Stats::on_notice`]).
    notices: Notices,
}

type NoticeFn = Box<dyn Fn(&str) + Send + Sync>;

/// Notices of a running job: passed to a callback when one is set, kept
/// otherwise.
#[derive(Default)]
struct Notices {
    callback: std::sync::OnceLock<NoticeFn>,
    kept: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("callback", &self.callback.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            counts: LiveCounts::default(),
            partitions_done: AtomicU64::new(0),
            partitions: AtomicU64::new(0),
            frontier: AtomicI64::new(i64::MIN),
            committed: AtomicI64::new(i64::MIN),
            checkpoints: AtomicU64::new(0),
            checkpoint_nanos: AtomicU64::new(0),
            checkpoint_bytes: AtomicU64::new(0),
            last_checkpoint: Default::default(),
            peak_open_windows: AtomicU64::new(0),
            peak_state_bytes: AtomicU64::new(0),
            partitions_live: Default::default(),
            delay: AtomicI64::new(0),
            shift: AtomicI64::new(0),
            oldest: Default::default(),
            requests: Requests::default(),
            tables: Default::default(),
        }
    }
}

/// What a reader last reported of its partition.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PartitionLive {
    pub(crate) next_offset: u64,
    pub(crate) stream_time: Option<i64>,
    pub(crate) records: u64,
    pub(crate) dead_letters: u64,
    pub(crate) late: u64,
    pub(crate) state: PartitionState,
}

/// Where a partition's reader is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionState {
    /// Reading: the last read returned records.
    #[default]
    Reading,
    /// Followed and at the end of what is there (a file's end, a topic's
    /// end): it still holds the watermark back.
    CaughtUp,
    /// Followed, caught up for longer than `idle_after`: released, it no
    /// longer holds the watermark back.
    Idle,
    /// At its end (a bounded input), or stopped.
    Ended,
}

/// One partition in a [`StatsSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    /// The partition.
    pub partition: u32,
    /// The offset its reader reads next.
    pub next_offset: u64,
    /// Its stream time (the largest event time read), if it has one.
    pub stream_time: Option<i64>,
    /// Its watermark: stream time − delay.
    pub watermark: Option<i64>,
    /// Records read from it.
    pub records: u64,
    /// Dead letters read from it.
    pub dead_letters: u64,
    /// Its records dropped from a window as too late.
    pub late: u64,
    /// Where its reader is.
    pub state: PartitionState,
}

/// The engine's time and counters while a job runs ([`Stats::snapshot`]).
///
/// The per-partition figures are those the readers last reported, so
/// they run ahead of what the windows have applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// The counts (also readable as fields of the snapshot itself:
    /// `snapshot.records`).
    #[serde(flatten)]
    pub counts: Counts,
    /// Every partition of this process, by id.
    pub partitions: Vec<PartitionSnapshot>,
    /// The global watermark: the smallest partition watermark among those
    /// reading or caught up (idle and ended ones do not hold it); `None`
    /// when none holds it.
    pub watermark: Option<i64>,
    /// The partition that holds the watermark (the smallest id on a tie).
    pub held_by: Option<u32>,
    /// The table that holds the watermark back, when one does (a table
    /// whose stream time is behind the stream's; see
    /// [`TableSnapshot`](crate::table::TableSnapshot)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by_table: Option<String>,
    /// The job's tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<crate::table::TableSnapshot>,
    /// Event-time lag: the newest stream time of any partition minus the
    /// global watermark, ms.
    pub event_time_lag_ms: Option<i64>,
    /// The frontier (stream time) the outputs are written up to.
    pub output_frontier: Option<i64>,
    /// The watermark the outputs are complete to: every row of a window
    /// ending at or before it has been written (`output_frontier` minus
    /// the delay).
    pub output_watermark: Option<i64>,
    /// The oldest window still open, once [`Stats::watch_oldest_window`]
    /// was called (looked for about twice a second).
    pub oldest_open_window: Option<OldestOpenWindow>,
    /// Checkpoints written by this run.
    #[serde(default)]
    pub checkpoints: u64,
    /// The newest of them, if any.
    #[serde(default)]
    pub last_checkpoint: Option<LastCheckpoint>,
}

/// The newest checkpoint a run wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheckpoint {
    /// When it was written: wall clock, ms since the Unix epoch.
    pub at_unix_ms: u64,
    /// How long taking it took (the workers encoding their state, and the
    /// writing), ns.
    pub nanos: u64,
    /// The bytes of window state it holds.
    pub state_bytes: u64,
}

/// The oldest window still open, and what holds it open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OldestOpenWindow {
    /// Its end (event time, ms).
    pub end: i64,
    /// How many keys have a window ending then.
    pub keys: u64,
    /// The partition holding the watermark, and so this window, open.
    pub held_by: Option<u32>,
    /// How far the watermark still has to go for it to close, ms.
    pub behind_ms: Option<i64>,
}

impl PartitionState {
    /// Its name, as serialized: `reading`, `caught_up`, `idle`, `ended`.
    pub fn name(self) -> &'static str {
        match self {
            PartitionState::Reading => "reading",
            PartitionState::CaughtUp => "caught_up",
            PartitionState::Idle => "idle",
            PartitionState::Ended => "ended",
        }
    }
}

impl StatsSnapshot {
    /// Processing-time lag: wall clock (`now_ms`, ms since the epoch) minus
    /// the global watermark. Meaningful for a followed input whose event
    /// times are wall-clock times.
    pub fn processing_lag_ms(&self, now_ms: i64) -> Option<i64> {
        self.watermark.map(|w| now_ms.saturating_sub(w))
    }
}

impl Stats {
    /// Records what a reader saw of its partition.
    pub(crate) fn report_partition(&self, partition: u32, update: impl FnOnce(&mut PartitionLive)) {
        if let Ok(mut live) = self.partitions_live.lock() {
            update(live.entry(partition).or_default());
        }
    }

    /// Asks the window operators to look for their oldest open window
    /// about twice a second (it walks every key), for
    /// [`StatsSnapshot::oldest_open_window`].
    pub fn watch_oldest_window(&self) {
        self.requests.oldest_wanted.store(true, Relaxed);
    }

    pub(crate) fn oldest_wanted(&self) -> bool {
        self.requests.oldest_wanted.load(Relaxed)
    }

    pub(crate) fn report_oldest(&self, worker: usize, oldest: Option<(i64, u64)>) {
        if let Ok(mut o) = self.oldest.lock() {
            o.insert(worker, oldest);
        }
    }

    /// Adds late records per partition.
    pub(crate) fn add_late(&self, late: &[(u32, u64)]) {
        if late.is_empty() {
            return;
        }
        if let Ok(mut live) = self.partitions_live.lock() {
            for &(p, n) in late {
                live.entry(p).or_default().late += n;
            }
        }
    }

    /// The engine's time and counters now, readable from any thread while
    /// the job runs.
    pub fn snapshot(&self) -> StatsSnapshot {
        let delay = self.delay.load(Relaxed);
        // Partitions' watermarks are their stream time minus the job's
        // delay; the windows see records `shift` later with that much more
        // delay.
        let partition_delay = delay.saturating_sub(self.shift.load(Relaxed));
        let partitions: Vec<PartitionSnapshot> = self
            .partitions_live
            .lock()
            .map(|live| {
                live.iter()
                    .map(|(&partition, p)| PartitionSnapshot {
                        partition,
                        next_offset: p.next_offset,
                        stream_time: p.stream_time,
                        watermark: p.stream_time.map(|t| t.saturating_sub(partition_delay)),
                        records: p.records,
                        dead_letters: p.dead_letters,
                        late: p.late,
                        state: p.state,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let holding = partitions
            .iter()
            .filter(|p| matches!(p.state, PartitionState::Reading | PartitionState::CaughtUp))
            .map(|p| (p.watermark.unwrap_or(i64::MIN), p.partition))
            .min();
        let newest = partitions.iter().filter_map(|p| p.stream_time).max();
        let tables = self.tables.snapshot();
        // A versioned table not ended holds the windows at its stream time
        // minus the delay the windows have (a static one is read before).
        let table_hold = tables
            .iter()
            .filter(|t| !t.ended && !t.parts.is_empty())
            .map(|t| {
                (
                    t.stream_time
                        .map_or(i64::MIN, |st| st.saturating_sub(delay)),
                    t.name.clone(),
                )
            })
            .min();
        let held_by_table = match (&table_hold, holding) {
            (Some((t, name)), Some((w, _))) if *t < w => Some(name.clone()),
            (Some((_, name)), None) => Some(name.clone()),
            _ => None,
        };
        let holding = holding.filter(|_| held_by_table.is_none());
        let watermark = match (&held_by_table, &table_hold) {
            (Some(_), Some((t, _))) => Some(*t),
            _ => holding.map(|(w, _)| w),
        }
        .filter(|&w| w > i64::MIN);
        let frontier = self.frontier.load(Relaxed);
        let oldest = self.oldest.lock().ok().and_then(|o| {
            let end = o.values().flatten().map(|(e, _)| *e).min()?;
            let keys = o
                .values()
                .flatten()
                .filter(|(e, _)| *e == end)
                .map(|(_, k)| k)
                .sum();
            Some(OldestOpenWindow {
                end,
                keys,
                held_by: holding.map(|(_, p)| p),
                behind_ms: watermark.map(|w| end.saturating_sub(w)),
            })
        });
        StatsSnapshot {
            counts: self.counts.get(),
            partitions,
            watermark,
            held_by: holding.map(|(_, p)| p),
            held_by_table,
            tables,
            event_time_lag_ms: match (newest, watermark) {
                (Some(n), Some(w)) => Some(n.saturating_sub(w)),
                _ => None,
            },
            output_frontier: (frontier > i64::MIN).then_some(frontier),
            checkpoints: self.checkpoints.load(Relaxed),
            last_checkpoint: match self.last_checkpoint[0].load(Relaxed) {
                0 => None,
                at_unix_ms => Some(LastCheckpoint {
                    at_unix_ms,
                    nanos: self.last_checkpoint[1].load(Relaxed),
                    state_bytes: self.last_checkpoint[2].load(Relaxed),
                }),
            },
            output_watermark: (frontier > i64::MIN && frontier < i64::MAX)
                .then(|| tidemark_windows::time::completed_watermark(frontier, delay)),
            oldest_open_window: oldest,
        }
    }

    /// Counts a checkpoint written now, which took `nanos` and holds
    /// `state_bytes` of window state.
    pub(crate) fn checkpoint_written(&self, nanos: u64, state_bytes: u64) {
        Stats::add(&self.checkpoints, 1);
        Stats::add(&self.checkpoint_bytes, state_bytes);
        Stats::add(&self.checkpoint_nanos, nanos);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
            });
        self.last_checkpoint[1].store(nanos, Relaxed);
        self.last_checkpoint[2].store(state_bytes, Relaxed);
        self.last_checkpoint[0].store(now, Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// Asks the running job to stop reading (from any thread, e.g. a signal
    /// handler's): it writes and commits what its completed frontiers hold,
    /// fires no window still open, and returns its summary.
    pub fn request_stop(&self) {
        self.requests
            .stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sends the job's notices (a checkpoint skipped as damaged, a resume,
    /// a checkpoint that could not be written) to `f` as they happen,
    /// after those kept so far. Only the first callback set is used.
    pub fn on_notice(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        if self.requests.notices.callback.set(Box::new(f)).is_ok() {
            if let Some(f) = self.requests.notices.callback.get() {
                for n in self.take_notices() {
                    f(&n);
                }
            }
        }
    }

    /// The notices kept so far (when no callback is set), oldest first.
    pub fn take_notices(&self) -> Vec<String> {
        self.requests
            .notices
            .kept
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default()
    }

    /// Issues a notice.
    pub(crate) fn notice(&self, text: String) {
        match self.requests.notices.callback.get() {
            Some(f) => f(&text),
            None => {
                if let Ok(mut k) = self.requests.notices.kept.lock() {
                    k.push(text);
                }
            }
        }
    }

    /// The watermark up to which every output was last committed: what a
    /// failed job's outputs hold (files are cut back to it). `None` before
    /// the first commit; `Some(i64::MAX)` once the input ended.
    pub fn committed_watermark(&self) -> Option<i64> {
        match self.committed.load(Relaxed) {
            i64::MIN => None,
            f => Some(tidemark_windows::time::completed_watermark(
                f,
                self.delay.load(Relaxed),
            )),
        }
    }

    /// Whether a stop was requested.
    pub fn stop_requested(&self) -> bool {
        self.requests.stop.load(Relaxed)
    }

    /// A consistent-enough copy of the counters.
    pub fn summary(&self, delay: i64) -> Summary {
        let frontier = self.frontier.load(Relaxed);
        Summary {
            counts: self.counts.get(),
            partitions: self.partitions.load(Relaxed),
            final_watermark: if frontier == i64::MAX {
                None
            } else {
                Some(tidemark_windows::time::completed_watermark(frontier, delay))
            },
            process: None,
            cluster: None,
            checkpoints: self.checkpoints.load(Relaxed),
            checkpoint_nanos: self.checkpoint_nanos.load(Relaxed),
            checkpoint_bytes: self.checkpoint_bytes.load(Relaxed),
            peak_open_windows: self.peak_open_windows.load(Relaxed),
            peak_state_bytes: self.peak_state_bytes.load(Relaxed),
            resumed_from: None,
            records_before: 0,
            already_complete: false,
            tables: self.tables.snapshot(),
        }
    }
}

/// What a finished job did.
///
/// The counters are this process's: in cluster mode each process counts
/// the records it read and the windows its workers kept, and process 0,
/// which writes the outputs, counts the rows; [`cluster`](Summary::cluster)
/// holds the totals over every process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The counts (also readable as fields of the summary itself:
    /// `summary.records`). Not flattened: a summary crosses between the
    /// processes of a cluster in a format that cannot flatten.
    pub counts: Counts,
    /// Partitions read by this process.
    pub partitions: u64,
    /// The global watermark at the end: `None` when every partition ended
    /// (the watermark reached +∞). In cluster mode, after a job that
    /// completed, the watermark of process 0 (which writes the outputs).
    pub final_watermark: Option<i64>,
    /// In cluster mode, this process's index (`None` otherwise).
    pub process: Option<usize>,
    /// Checkpoints this run wrote.
    #[serde(default)]
    pub checkpoints: u64,
    /// Time spent taking them, in nanoseconds (encoding and writing).
    #[serde(default)]
    pub checkpoint_nanos: u64,
    /// Bytes of window state they held, in all.
    #[serde(default)]
    pub checkpoint_bytes: u64,
    /// With [`Options::sample_state`](crate::Options::sample_state):
    /// the most open (key, window) states a worker held at a sample,
    /// summed over the workers; 0 without.
    #[serde(default)]
    pub peak_open_windows: u64,
    /// With `sample_state`: the encoded size in bytes of each worker's
    /// window state at its peak (measured each time the peak grew by a
    /// tenth, scaled by the count in between), summed over the workers; 0
    /// without.
    #[serde(default)]
    pub peak_state_bytes: u64,
    /// The checkpoint this run resumed from (its id), if any.
    #[serde(default)]
    pub resumed_from: Option<u64>,
    /// Of `records`, those the runs before the checkpoint resumed from
    /// read (0 without one): this run read `records - records_before`.
    #[serde(default)]
    pub records_before: u64,
    /// The checkpoint resumed from marks the job complete: this run did
    /// nothing (its outputs are the completed job's); rebuilding runs it
    /// again.
    #[serde(default)]
    pub already_complete: bool,
    /// In cluster mode, the totals over every process, the same on each
    /// (with `process` and `cluster` `None`). `None` otherwise, and when
    /// the totals could not be gathered (a peer went away after the job).
    pub cluster: Option<Box<Summary>>,
    /// The job's tables: records, refusals, lookups, size.
    #[serde(default)]
    pub tables: Vec<crate::table::TableSnapshot>,
}

impl Summary {
    /// Rows of kind `update`.
    pub fn updates(&self) -> u64 {
        self.corrections.saturating_sub(self.retractions)
    }

    /// The windows the results show in the end: every `final` and `update`
    /// row adds one, every `retract` takes one away (with `final` rows and
    /// no correction, the windows emitted).
    pub fn windows(&self) -> u64 {
        (self.windows_emitted + self.updates()).saturating_sub(self.retractions)
    }

    /// The sum of the processes' counters, with the global
    /// `final_watermark`.
    pub(crate) fn total(all: &[Summary], final_watermark: Option<i64>) -> Summary {
        let mut t = Summary {
            final_watermark,
            ..Summary::default()
        };
        for s in all {
            t.counts.add(&s.counts);
            t.partitions += s.partitions;
            t.peak_open_windows += s.peak_open_windows;
            t.peak_state_bytes += s.peak_state_bytes;
        }
        t
    }
}
