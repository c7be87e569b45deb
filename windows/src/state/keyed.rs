//! The key map and timer queue both stores keep, and the one timer-driven
//! advance loop over them.
//!
//! Every key's state records when it next needs attention (a fire or a
//! drop), its *wake* time, and the queue holds an entry for the key at that
//! time. Entries are never removed but go stale when the key's wake time
//! moves: an advance takes the entries the watermark has reached and skips
//! those that no longer match their key.

use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::emit::sort_fires;
use crate::change::Change;
use crate::time::{EventTime, MaybeTime};
use crate::timers::Timers;

/// The state of one key in a [`Keyed`] map.
pub(super) trait KeyState: Default {
    /// When this key next needs attention; the queue holds an entry for it.
    fn wake(&mut self) -> &mut MaybeTime;

    /// Whether nothing is left: the key is removed.
    fn is_empty(&self) -> bool;

    /// Open (key, window) states of this key: panes or sessions.
    fn open_states(&self) -> usize;

    /// The end of this key's earliest window the watermark `w` has not
    /// passed, if it has one.
    fn oldest_open(&self, w: EventTime) -> Option<EventTime>;
}

/// Per-key state and the queue that says when to look at each key.
///
/// Serialises as its two fields in order (`keys`, `queue`), so a store that
/// embeds it after its own fields keeps a flat wire form.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, S: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, S: Deserialize<'de>"
))]
pub(super) struct Keyed<K, S> {
    pub(super) keys: FxHashMap<K, S>,
    /// Time → keys to look at when the watermark reaches it. An entry is
    /// stale when its key's wake time has moved.
    pub(super) queue: Timers<K>,
    /// Keys taken from the queue by the current advance (kept for its
    /// capacity).
    #[serde(skip)]
    due: Vec<K>,
}

impl<K, S> Default for Keyed<K, S> {
    fn default() -> Self {
        Keyed {
            keys: FxHashMap::default(),
            queue: Timers::default(),
            due: Vec::new(),
        }
    }
}

impl<K: Clone + Ord + Hash, S: KeyState> Keyed<K, S> {
    /// Moves every key of `other` (and its timers) into `self`; returns a
    /// key the two have in common instead, changing nothing.
    pub(super) fn absorb(&mut self, other: Keyed<K, S>) -> Result<(), K> {
        if let Some(k) = other.keys.keys().find(|k| self.keys.contains_key(*k)) {
            return Err(k.clone());
        }
        for (time, keys) in other.queue.entries() {
            for k in keys {
                self.queue.push(time, k.clone());
            }
        }
        self.keys.extend(other.keys);
        Ok(())
    }

    /// The earliest end of a window the watermark `w` has not passed, over
    /// all keys, and how many keys have a window ending then.
    pub(super) fn oldest_open(&self, w: EventTime) -> Option<(EventTime, usize)> {
        let mut oldest: Option<(EventTime, usize)> = None;
        for state in self.keys.values() {
            let Some(end) = state.oldest_open(w) else {
                continue;
            };
            oldest = match oldest {
                Some((e, n)) if e == end => Some((e, n + 1)),
                Some((e, n)) if e < end => Some((e, n)),
                _ => Some((end, 1)),
            };
        }
        oldest
    }

    /// Open (key, window) states over all keys.
    pub(super) fn open_states(&self) -> usize {
        self.keys.values().map(S::open_states).sum()
    }

    /// Makes sure `queue` wakes `key` by `want`: enqueues it when that is
    /// earlier than the wake time already queued (later entries go stale).
    #[inline]
    pub(super) fn wake_by(queue: &mut Timers<K>, key: &K, state: &mut S, want: Option<EventTime>) {
        if let Some(want) = want {
            let wake = state.wake();
            if wake.get().is_none_or(|w| want < w) {
                *wake = MaybeTime::some(want);
                queue.push(want, key.clone());
            }
        }
    }

    /// The advance loop: takes every key whose wake time the watermark `w`
    /// has reached, in time order (each time's keys sorted when `sorted`),
    /// and lets `settle` fire and drop what it must, pushing its fires to
    /// `out`. A key left empty is removed; the others are queued again at
    /// the time `desired_wake` asks for. The fires of this advance are then
    /// sorted into canonical order.
    #[inline]
    pub(super) fn advance<O>(
        &mut self,
        w: EventTime,
        sorted: bool,
        out: &mut Vec<Change<K, O>>,
        mut settle: impl FnMut(&K, &mut S, &mut Vec<Change<K, O>>),
        desired_wake: impl Fn(&S) -> Option<EventTime>,
    ) {
        let first_fire = out.len();
        let mut due = std::mem::take(&mut self.due);
        self.queue.take_due(w, sorted, &mut due);
        for key in due.drain(..) {
            let Some(state) = self.keys.get_mut(&key) else {
                continue;
            };
            let wake = state.wake();
            if wake.get().is_none_or(|wake| wake > w) {
                continue; // stale, or already settled in this advance
            }
            *wake = MaybeTime::NONE;
            settle(&key, state, out);
            if state.is_empty() {
                self.keys.remove(&key);
            } else {
                let want = desired_wake(state);
                Self::wake_by(&mut self.queue, &key, state, want);
            }
        }
        self.due = due;
        sort_fires(&mut out[first_fire..]);
    }
}
