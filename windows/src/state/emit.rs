//! The rows both stores emit: a window that fires, a step's corrections
//! (retractions of the rows shown before, then the new rows), and the
//! canonical order they leave in.

use crate::change::{Change, ChangeKind, Phase};
use crate::policy::{EmitMode, Policy};
use crate::time::{fire_time, EventTime};
use crate::window::Window;

/// The row of `window` firing for `key`: `final`, at the frontier that
/// fires it (`end + delay`).
#[inline]
pub(super) fn fire<K, O>(policy: &Policy, key: K, window: Window, value: O) -> Change<K, O> {
    Change {
        time: fire_time(window.end, policy.delay),
        phase: Phase::Fire,
        kind: ChangeKind::Final,
        key,
        window,
        value,
    }
}

/// Sorts the fires of one advance into canonical order. No two rows share a
/// (window, key), so an unstable sort gives the one order there is.
pub(super) fn sort_fires<K: Ord, O>(fires: &mut [Change<K, O>]) {
    if !fires.is_sorted_by(|a, b| a.canonical_cmp(b).is_le()) {
        fires.sort_unstable_by(|a, b| a.canonical_cmp(b));
    }
}

/// The kind of a correction's new row: in emit mode `final`, the first row
/// of a window is `final` and later ones are `update`s.
pub(super) fn new_row_kind(policy: &Policy, replaces_same_window: bool) -> ChangeKind {
    if policy.emit == EmitMode::Final && !replaces_same_window {
        ChangeKind::Final
    } else {
        ChangeKind::Update
    }
}

/// The corrections of one step, collected in any order and pushed in
/// canonical order: retractions first, then new rows.
pub(super) struct Corrections<K, O> {
    /// The stream time of the step.
    time: EventTime,
    retracts: Vec<Change<K, O>>,
    updates: Vec<Change<K, O>>,
}

impl<K: Ord, O: PartialEq> Corrections<K, O> {
    /// No corrections yet, for the step at stream time `time`.
    pub(super) fn new(time: EventTime) -> Self {
        Corrections {
            time,
            retracts: Vec::new(),
            updates: Vec::new(),
        }
    }

    /// Withdraws the row `value` shown for (`key`, `window`).
    pub(super) fn retract(&mut self, key: K, window: Window, value: O) {
        self.retracts.push(Change {
            time: self.time,
            phase: Phase::Retract,
            kind: ChangeKind::Retract,
            key,
            window,
            value,
        });
    }

    /// Shows the new row `value` of kind `kind` for (`key`, `window`).
    pub(super) fn update(&mut self, kind: ChangeKind, key: K, window: Window, value: O) {
        self.updates.push(Change {
            time: self.time,
            phase: Phase::Emit,
            kind,
            key,
            window,
            value,
        });
    }

    /// Removes retract/update pairs of the same row: a merge that ends where
    /// it started changes nothing downstream.
    pub(super) fn cancel_pairs(&mut self) {
        let Corrections {
            retracts, updates, ..
        } = self;
        if retracts.is_empty() || updates.is_empty() {
            return;
        }
        retracts.retain(|r| {
            if let Some(i) = updates
                .iter()
                .position(|u| u.key == r.key && u.window == r.window && u.value == r.value)
            {
                updates.swap_remove(i);
                false
            } else {
                true
            }
        });
    }

    /// Sorts the corrections and pushes them to `out`: retractions first,
    /// then new rows.
    pub(super) fn push_to(self, out: &mut Vec<Change<K, O>>) {
        let Corrections {
            mut retracts,
            mut updates,
            ..
        } = self;
        retracts.sort_by(|a, b| a.canonical_cmp(b));
        updates.sort_by(|a, b| a.canonical_cmp(b));
        out.append(&mut retracts);
        out.append(&mut updates);
    }
}
