//! The dataflow's operators, one file each: [`ingest`] reads partitions
//! and holds its capability at their stream time, [`window`] applies
//! records in event order to the window state, [`sink`] writes what the
//! frontier has completed, in canonical order. Each is built from its own
//! settings struct; the window and sink operators keep their logic in a
//! struct (`on_input`, `on_frontier`) behind a thin Timely closure. The
//! job plan (`plan`) wires them.

pub(crate) mod checkpointer;
pub(crate) mod cuts;
pub(crate) mod enrich;
pub(crate) mod ingest;
pub(crate) mod observe;
mod partition;
pub(crate) mod sink;
pub(crate) mod stats_log;
pub(crate) mod window;

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHasher;

use crate::error::EngineError;
use crate::stats::Stats;

/// What the workers of one process share to report failures and see
/// whether the job must stop.
pub(crate) struct Control {
    pub(crate) stats: Arc<Stats>,
    /// Where time decisions are recorded, if they are.
    pub(crate) decisions: Option<Arc<crate::checkpoint::decisions::DecisionLog>>,
    error: Mutex<Option<EngineError>>,
    abort: AtomicBool,
    /// How far the sink of this process has written (the frontier whose
    /// items are all written): a window operator that handed a chunk of
    /// rows on waits for it (flow control).
    written: AtomicI64,
    /// Per worker of this process: the lowest stream time its partitions
    /// that are not released as idle may still send ([`NOT_HOLDING`] when
    /// it has none), so that a worker whose partitions are all idle can
    /// follow the others instead of holding the frontier.
    holds: Vec<AtomicI64>,
    /// Per worker of this process: where its stream ingest holds its
    /// capability (`i64::MIN` before it starts, `i64::MAX` once it let it
    /// go), which an idle table follows.
    stream_caps: Vec<AtomicI64>,
}

/// A worker's entry in [`Control`]'s holds when none of its partitions
/// holds the frontier.
const NOT_HOLDING: i64 = i64::MIN;

impl Control {
    /// The control of a process running `workers` workers.
    pub(crate) fn new(stats: Arc<Stats>, workers: usize) -> Self {
        Control {
            stats,
            decisions: None,
            error: Mutex::new(None),
            abort: AtomicBool::new(false),
            written: AtomicI64::new(i64::MIN),
            stream_caps: (0..workers.max(1))
                .map(|_| AtomicI64::new(i64::MIN))
                .collect(),
            holds: (0..workers.max(1))
                .map(|_| AtomicI64::new(NOT_HOLDING))
                .collect(),
        }
    }

    /// The sink has written every item of the frontier steps before `at`:
    /// for flow control, and for the job's observers
    /// ([`Stats::frontier`](crate::Stats::frontier)).
    pub(crate) fn wrote_up_to(&self, at: i64) {
        self.written.store(at, Ordering::Relaxed);
        self.stats.frontier.store(at, Ordering::Relaxed);
    }

    /// How far the sink of this process has written.
    pub(crate) fn written(&self) -> i64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Publishes what worker `index` holds the frontier at (`None`: its
    /// partitions are all idle or ended).
    pub(crate) fn publish_hold(&self, index: usize, hold: Option<i64>) {
        if let Some(slot) = self.holds.get(index % self.holds.len()) {
            slot.store(hold.unwrap_or(NOT_HOLDING), Ordering::Relaxed);
        }
    }

    /// The lowest hold of the other workers of this process that hold the
    /// frontier, if any does.
    pub(crate) fn others_hold(&self, index: usize) -> Option<i64> {
        let me = index % self.holds.len();
        self.holds
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != me)
            .map(|(_, h)| h.load(Ordering::Relaxed))
            .filter(|&h| h != NOT_HOLDING)
            .min()
    }

    /// Publishes where worker `index`'s stream ingest holds its capability
    /// (`None`: it let it go).
    pub(crate) fn publish_stream_cap(&self, index: usize, at: Option<i64>) {
        let slot = &self.stream_caps[index % self.stream_caps.len()];
        slot.store(at.unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// The least capability of this process's stream ingests: no stream
    /// record with a lower stream time is still to come from them
    /// (`i64::MAX` once they all ended).
    pub(crate) fn least_stream_cap(&self) -> i64 {
        self.stream_caps
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Records a time decision; a log that cannot be written stops the job
    /// (a replay could not reproduce this run).
    pub(crate) fn decide(&self, decision: crate::checkpoint::Decision) {
        if let Some(log) = &self.decisions {
            if let Err(source) = log.record(decision) {
                self.fail(EngineError::Output {
                    what: "time decisions",
                    path: log.path().display().to_string(),
                    source,
                });
            }
        }
    }

    /// Records the first error and asks every operator to stop.
    pub(crate) fn fail(&self, error: EngineError) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(error);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    /// Whether the job must stop reading: an error, or a stop request.
    pub(crate) fn stopping(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || self.stats.stop_requested()
    }

    /// The first error, if any.
    pub(crate) fn take_error(&self) -> Option<EngineError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }
}

/// The hash that routes a key to a worker.
pub(crate) fn key_hash(key: &str) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}
