//! The dataflow's operators, one file each: [`ingest`] reads partitions
//! and holds its capability at their stream time, [`window`] applies
//! records in event order to the window state, [`sink`] writes what the
//! frontier has completed, in canonical order.

pub(crate) mod checkpointer;
pub(crate) mod cuts;
pub(crate) mod ingest;
pub(crate) mod sink;
pub(crate) mod stats_log;
pub(crate) mod window;

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

impl Control {
    pub(crate) fn new(stats: Arc<Stats>) -> Self {
        Control {
            stats,
            decisions: None,
            error: Mutex::new(None),
            abort: AtomicBool::new(false),
        }
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
