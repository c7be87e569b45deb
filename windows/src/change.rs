//! The output changelog: rows of `final`, `update` and `retract` kind, and
//! their canonical order.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::time::EventTime;
use crate::window::Window;

/// The kind of an output row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The first row of a window in emit mode `final`: it fired, or it
    /// appeared through an allowed-late record after its end.
    Final,
    /// A previously emitted row is withdrawn.
    Retract,
    /// A new or corrected value.
    Update,
}

impl ChangeKind {
    /// The name written in output rows.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Final => "final",
            ChangeKind::Retract => "retract",
            ChangeKind::Update => "update",
        }
    }

    /// The differential-dataflow style weight: `-1` for a retraction, `+1`
    /// otherwise.
    pub fn diff(self) -> i64 {
        match self {
            ChangeKind::Retract => -1,
            _ => 1,
        }
    }
}

/// Where a row stands among the rows emitted at the same time: windows that
/// fire come first, then the retractions of a step, then its new rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// A window fired as the frontier advanced.
    Fire,
    /// A retraction in a step's corrections.
    Retract,
    /// A new row in a step's corrections.
    Emit,
}

/// One row of the output changelog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change<K, O> {
    /// The logical emission time: for a window that fires, the frontier at
    /// which it fires (`end + delay`); for a correction, the stream time of
    /// the step that caused it. Rows sort by it first (see
    /// [`Change::canonical_cmp`]), which makes the merged output of any
    /// number of workers identical.
    pub time: EventTime,
    /// Position among the rows of the same time.
    pub phase: Phase,
    /// Row kind.
    pub kind: ChangeKind,
    /// Grouping key.
    pub key: K,
    /// The window.
    pub window: Window,
    /// The aggregate value.
    pub value: O,
}

impl<K: Ord, O> Change<K, O> {
    /// The canonical order: by time, then phase (fires, retractions, new
    /// rows), then window end, start and key.
    pub fn canonical_cmp(&self, other: &Self) -> Ordering {
        (self.time, self.phase, self.window.end, self.window.start)
            .cmp(&(
                other.time,
                other.phase,
                other.window.end,
                other.window.start,
            ))
            .then_with(|| self.key.cmp(&other.key))
    }
}
