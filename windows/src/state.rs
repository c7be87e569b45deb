//! The window state machine: per-key window state driven by frontier steps.
//!
//! The engine drives one [`WindowState`] per worker in steps. A step has a
//! stream time `s`, the frontier: every record with a smaller stream time has
//! been applied and none will come. A step is
//!
//! 1. [`WindowState::advance`]`(s)`: windows whose end the watermark `s − D`
//!    has reached fire (emit mode `final`), sorted by end, start and key;
//!    then state that the watermark has passed by the allowed lateness is
//!    dropped;
//! 2. [`WindowState::apply`] for each record whose stream time is `s`, in
//!    (partition, offset) order;
//! 3. [`WindowState::end_step`]: the step's corrections, retractions first,
//!    then new values, each sorted by end, start and key.
//!
//! [`WindowState::finish`] ends the input (the watermark becomes +∞).
//!
//! Because a record is applied at the step of its own stream time, the
//! watermark of that step equals the record's partition watermark, and
//! lateness is a function of the log alone. Skipping steps in which a worker
//! has no records changes nothing for its keys, so workers that each see a
//! part of the keys produce, once merged in the canonical order
//! ([`Change::canonical_cmp`]), exactly the rows of a single worker.
//!
//! Fixed windows (tumbling and sliding) keep one accumulator per pane
//! (slice) of `gcd(size, slide)` ms: a record updates one pane and a window's
//! value is the merge of its panes when it is emitted. Sessions keep a short
//! sorted list per key.

use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use thin_vec::ThinVec;

use crate::panes::Panes;
use crate::timers::Timers;

use crate::aggregate::Aggregator;
use crate::assign::{joins_session, session_of, Sliding, WindowError, WindowSpec};
use crate::change::{Change, ChangeKind, Phase};
use crate::policy::{EmitMode, Policy};
use crate::time::{fire_time, watermark, EventTime, Millis, END_OF_TIME};
use crate::window::Window;

/// What became of one applied record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Windows the record was added to.
    pub windows: u32,
    /// Of those, windows whose end the watermark had already reached (late,
    /// but within the allowed lateness): each emits a correction.
    pub late: u32,
    /// Windows the record was too late for and was dropped from; they were
    /// pushed to the `missed` buffer. A record with `missed > 0` belongs on
    /// the late output.
    pub missed: u32,
}

impl Applied {
    /// Whether the record was dropped from at least one of its windows.
    pub fn is_dropped(&self) -> bool {
        self.missed > 0
    }
}

type Out<K, A> = Change<K, <A as Aggregator>::Output>;

/// Per-key window state for one window specification, aggregator and policy.
///
/// See the [module documentation](self) for the driving protocol.
pub struct WindowState<K, A: Aggregator> {
    agg: A,
    policy: Policy,
    spec: WindowSpec,
    frontier: EventTime,
    store: Store<K, A::Acc, A::Output>,
}

/// A serialisable snapshot of a [`WindowState`] (for checkpoints).
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
pub struct Snapshot<K, Acc, O> {
    spec: WindowSpec,
    policy: Policy,
    frontier: EventTime,
    store: Store<K, Acc, O>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
enum Store<K, Acc, O> {
    Fixed(FixedStore<K, Acc, O>),
    Session(SessionStore<K, Acc, O>),
}

impl<K, A> WindowState<K, A>
where
    K: Clone + Ord + Hash,
    A: Aggregator,
{
    /// A new, empty state. Fails if the window spec or policy is invalid.
    pub fn try_new(spec: WindowSpec, policy: Policy, agg: A) -> Result<Self, WindowError> {
        policy.validate()?;
        let store = match spec.fixed()? {
            Some(assigner) => Store::Fixed(FixedStore::new(assigner)),
            None => Store::Session(SessionStore::new(match spec {
                WindowSpec::Session { gap } => gap,
                _ => 0,
            })),
        };
        Ok(WindowState {
            agg,
            policy,
            spec,
            frontier: EventTime::MIN,
            store,
        })
    }

    /// The window specification.
    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The aggregator.
    pub fn aggregator(&self) -> &A {
        &self.agg
    }

    /// The current frontier (stream time of the current step).
    pub fn frontier(&self) -> EventTime {
        self.frontier
    }

    /// The current global watermark: frontier − delay.
    pub fn watermark(&self) -> EventTime {
        watermark(self.frontier, self.policy.delay)
    }

    /// Number of open (key, window) states: panes for fixed windows, sessions
    /// for session windows.
    pub fn open_states(&self) -> usize {
        match &self.store {
            Store::Fixed(f) => f.pane_count(),
            Store::Session(s) => s.session_count(),
        }
    }

    /// Advances the frontier to `frontier`: fires the windows the watermark
    /// has reached and drops the state the watermark has passed by the
    /// allowed lateness. A frontier at or below the current one does nothing.
    pub fn advance(&mut self, frontier: EventTime, out: &mut Vec<Out<K, A>>) {
        if frontier <= self.frontier {
            return;
        }
        self.frontier = frontier;
        let w = self.watermark();
        match &mut self.store {
            Store::Fixed(f) => f.advance(&self.agg, &self.policy, w, out),
            Store::Session(s) => s.advance(&self.agg, &self.policy, w, out),
        }
    }

    /// Applies one record whose stream time is the current frontier. Windows
    /// the record is too late for are pushed to `missed`.
    pub fn apply(
        &mut self,
        key: K,
        time: EventTime,
        input: &A::Input,
        missed: &mut Vec<Window>,
    ) -> Result<Applied, WindowError> {
        let w = watermark(self.frontier, self.policy.delay);
        match &mut self.store {
            Store::Fixed(f) => f.apply(&self.agg, &self.policy, w, key, time, input, missed),
            Store::Session(s) => s.apply(&self.agg, &self.policy, w, key, time, input, missed),
        }
    }

    /// Ends the current step: emits its corrections (retractions first, then
    /// new values, each sorted by end, start and key).
    pub fn end_step(&mut self, out: &mut Vec<Out<K, A>>) {
        let w = self.watermark();
        let time = self.frontier;
        match &mut self.store {
            Store::Fixed(f) => f.end_step(&self.agg, &self.policy, w, time, out),
            Store::Session(s) => s.end_step(&self.agg, &self.policy, w, time, out),
        }
    }

    /// Ends the input: the watermark becomes +∞ and every window fires.
    pub fn finish(&mut self, out: &mut Vec<Out<K, A>>) {
        self.advance(END_OF_TIME, out);
    }

    /// Takes a snapshot of the state between steps.
    pub fn snapshot(&self) -> Snapshot<K, A::Acc, A::Output> {
        Snapshot {
            spec: self.spec,
            policy: self.policy,
            frontier: self.frontier,
            store: self.store.clone(),
        }
    }

    /// Keeps only the keys for which `keep` holds: how a worker takes its
    /// share of a state restored from a snapshot of all keys.
    pub fn retain_keys(&mut self, mut keep: impl FnMut(&K) -> bool) {
        match &mut self.store {
            Store::Fixed(f) => f.keys.retain(|k, _| keep(k)),
            Store::Session(s) => s.keys.retain(|k, _| keep(k)),
        }
    }

    /// Rebuilds a state from a snapshot taken with the same spec and policy.
    pub fn restore(agg: A, snapshot: Snapshot<K, A::Acc, A::Output>) -> Result<Self, WindowError> {
        snapshot.policy.validate()?;
        let consistent = match (&snapshot.store, snapshot.spec.fixed()?) {
            (Store::Fixed(f), Some(assigner)) => f.assigner == assigner,
            (Store::Session(s), None) => snapshot.spec == WindowSpec::Session { gap: s.gap },
            _ => false,
        };
        if !consistent {
            return Err(WindowError::SnapshotMismatch);
        }
        Ok(WindowState {
            agg,
            policy: snapshot.policy,
            spec: snapshot.spec,
            frontier: snapshot.frontier,
            store: snapshot.store,
        })
    }
}

/// Makes sure the queue wakes `key` by `want`: enqueues it when that is
/// earlier than the wake time already queued (later entries go stale).
fn wake_by<K: Clone + Ord>(
    queue: &mut Timers<K>,
    wake: &mut Option<EventTime>,
    want: Option<EventTime>,
    key: &K,
) {
    if let Some(want) = want {
        if wake.is_none_or(|w| want < w) {
            *wake = Some(want);
            queue.push(want, key.clone());
        }
    }
}

/// Sorts the fires of one advance into canonical order. No two rows share a
/// (window, key), so an unstable sort gives the one order there is.
fn sort_fires<K: Ord, O>(fires: &mut [Change<K, O>]) {
    if !fires.is_sorted_by(|a, b| a.canonical_cmp(b).is_le()) {
        fires.sort_unstable_by(|a, b| a.canonical_cmp(b));
    }
}

/// Sorts corrections and pushes them: retractions first, then new values.
fn push_corrections<K: Ord, O>(
    mut retracts: Vec<Change<K, O>>,
    mut updates: Vec<Change<K, O>>,
    out: &mut Vec<Change<K, O>>,
) {
    retracts.sort_by(|a, b| a.canonical_cmp(b));
    updates.sort_by(|a, b| a.canonical_cmp(b));
    out.append(&mut retracts);
    out.append(&mut updates);
}

// ---------------------------------------------------------------------------
// Fixed windows (tumbling, sliding) over panes.

/// The panes of one key and what it shows downstream.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "Acc: Serialize, O: Serialize",
    deserialize = "Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
struct KeyPanes<Acc, O> {
    /// (pane start, accumulator), sorted by start. Records mostly land in
    /// the newest pane, which is stored inline: a record reaches its
    /// accumulator without a second cache miss, however many panes a
    /// sliding window keeps, and a key with one open pane allocates nothing.
    panes: Panes<Acc>,
    /// (window end, row) visible downstream for windows still retained,
    /// sorted by end. Kept only when a later correction may need it (emit
    /// mode `updates`, or allowed lateness above zero).
    shown: ThinVec<(EventTime, O)>,
    /// Emit mode `final`: the end of the next window to fire.
    next_fire: Option<EventTime>,
    /// When this key next needs attention (a fire or a drop); the queue
    /// holds an entry for it.
    wake: Option<EventTime>,
    /// Sliding windows: partial merges reused from one fire to the next
    /// (rebuilt from the panes when missing, e.g. after a snapshot).
    /// Boxed: most keys of tumbling windows never have one, and the per-key
    /// entry stays small (it is on the per-record path).
    #[serde(skip)]
    cache: Option<Box<TwoStacks<Acc>>>,
    /// `cache.hi`, kept beside the panes so a record can tell whether it
    /// changes a merged pane without following the box (`MIN` when there is
    /// no cache).
    #[serde(skip, default = "no_cache")]
    cache_hi: EventTime,
}

fn no_cache() -> EventTime {
    EventTime::MIN
}

/// Two-stack sliding aggregation over panes: windows that fire in order
/// share partial merges, so a fire costs O(1) merges amortised instead of
/// `size / slide` (no inverse of `merge` needed).
///
/// ```text
///  panes:   [lo ........ split) [split ........ hi)
///           front: suffix merges  back: one running merge
///  window [start, end) = front entry of the first pane ≥ start ⊕ back
/// ```
#[derive(Clone)]
struct TwoStacks<Acc> {
    /// (pane start, merge of the panes from it up to `split`); the last
    /// entry is the earliest pane.
    front: Vec<(EventTime, Acc)>,
    split: EventTime,
    /// Merge of the panes in `[split, hi)`.
    back: Option<Acc>,
    hi: EventTime,
    /// The start of the last window served: later windows start no earlier.
    lo: EventTime,
}

impl<Acc, O> Default for KeyPanes<Acc, O> {
    fn default() -> Self {
        KeyPanes {
            cache: None,
            cache_hi: EventTime::MIN,
            panes: Panes::default(),
            shown: ThinVec::new(),
            next_fire: None,
            wake: None,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
struct FixedStore<K, Acc, O> {
    assigner: Sliding,
    keys: FxHashMap<K, KeyPanes<Acc, O>>,
    /// Time → keys to look at when the watermark reaches it. An entry is
    /// stale when its key's `wake` has moved.
    queue: Timers<K>,
    /// Keys taken from the queue by the current advance (kept for its
    /// capacity).
    #[serde(skip)]
    due: Vec<K>,
    /// Windows (end, key) changed in the current step and visible.
    #[serde(skip)]
    touched: Vec<(EventTime, K)>,
}

impl<K: Clone + Ord + Hash, Acc: Clone + Default, O: Clone + PartialEq> FixedStore<K, Acc, O> {
    fn new(assigner: Sliding) -> Self {
        FixedStore {
            assigner,
            keys: FxHashMap::default(),
            queue: Timers::default(),
            due: Vec::new(),
            touched: Vec::new(),
        }
    }

    fn pane_count(&self) -> usize {
        self.keys.values().map(|k| k.panes.len()).sum()
    }

    /// The value of the window ending at `end`: the merge of its panes.
    fn window_value<A: Aggregator<Acc = Acc, Output = O>>(
        agg: &A,
        size: Millis,
        kp: &KeyPanes<Acc, O>,
        end: EventTime,
    ) -> Option<O> {
        let start = end - size;
        let lo = kp.panes.partition_point(|(ps, _)| *ps < start);
        let hi = kp.panes.partition_point(|(ps, _)| *ps < end);
        match hi.checked_sub(lo)? {
            0 => None,
            1 => kp.panes.get(lo).map(|(_, acc)| agg.finish(acc)),
            _ => {
                let mut total = kp.panes.get(lo)?.1.clone();
                for (_, acc) in kp.panes.range(lo + 1..hi) {
                    agg.merge(&mut total, acc);
                }
                Some(agg.finish(&total))
            }
        }
    }

    /// The value of the window `[start, end)` about to fire, reusing the
    /// partial merges of the previous fires of this key (see [`TwoStacks`]).
    fn fire_value<A: Aggregator<Acc = Acc, Output = O>>(
        agg: &A,
        kp: &mut KeyPanes<Acc, O>,
        start: EventTime,
        end: EventTime,
    ) -> Option<O> {
        let valid = kp
            .cache
            .as_ref()
            .is_some_and(|c| start >= c.lo && end >= c.hi);
        if !valid {
            kp.cache = None;
        }
        let c = kp.cache.get_or_insert_with(|| {
            Box::new(TwoStacks {
                front: Vec::new(),
                split: start,
                back: None,
                hi: start,
                lo: start,
            })
        });
        c.lo = start;
        while c.front.last().is_some_and(|(ps, _)| *ps < start) {
            c.front.pop();
        }
        let from = kp.panes.partition_point_back(|(ps, _)| *ps < c.hi);
        for (ps, acc) in kp.panes.range(from..kp.panes.len()) {
            if *ps >= end {
                break;
            }
            match &mut c.back {
                Some(back) => agg.merge(back, acc),
                None => c.back = Some(acc.clone()),
            }
        }
        c.hi = end;
        kp.cache_hi = end;
        if c.front.is_empty() && c.split < start {
            // Flip: the back holds panes before `start`; rebuild the front
            // as suffix merges of the panes in [start, hi).
            let lo_i = kp.panes.partition_point(|(ps, _)| *ps < start);
            let hi_i = kp.panes.partition_point(|(ps, _)| *ps < end);
            let mut running: Option<Acc> = None;
            for (ps, acc) in kp.panes.range(lo_i..hi_i).rev() {
                let mut merged = acc.clone();
                if let Some(r) = &running {
                    agg.merge(&mut merged, r);
                }
                c.front.push((*ps, merged.clone()));
                running = Some(merged);
            }
            c.back = None;
            c.split = end;
        }
        match (c.front.last(), &c.back) {
            (Some((_, f)), Some(b)) => {
                let mut total = f.clone();
                agg.merge(&mut total, b);
                Some(agg.finish(&total))
            }
            (Some((_, f)), None) => Some(agg.finish(f)),
            (None, Some(b)) => Some(agg.finish(b)),
            (None, None) => None,
        }
    }

    /// The smallest window end after `after` whose window holds a pane.
    fn next_end_after(
        assigner: &Sliding,
        kp: &KeyPanes<Acc, O>,
        after: EventTime,
    ) -> Option<EventTime> {
        let i = kp.panes.partition_point_front(|(ps, _)| {
            assigner.last_end_of_pane(*ps).is_some_and(|e| e <= after)
        });
        let (ps, _) = kp.panes.get(i)?;
        let first = assigner.first_end_of_pane(*ps)?;
        Some(first.max(assigner.ceil_end(after.checked_add(1)?)?))
    }

    /// When `kp` next needs attention: its next fire, or the first drop.
    fn desired_wake(
        assigner: &Sliding,
        lateness: Millis,
        kp: &KeyPanes<Acc, O>,
    ) -> Option<EventTime> {
        let pane_drop = kp
            .panes
            .first()
            .and_then(|(ps, _)| assigner.last_end_of_pane(*ps))
            .map(|e| e.saturating_add(lateness));
        let shown_drop = kp.shown.first().map(|(e, _)| e.saturating_add(lateness));
        [kp.next_fire, pane_drop, shown_drop]
            .into_iter()
            .flatten()
            .min()
    }

    /// Makes sure the queue wakes `key` by its desired time.
    fn reschedule(
        queue: &mut Timers<K>,
        assigner: &Sliding,
        lateness: Millis,
        key: &K,
        kp: &mut KeyPanes<Acc, O>,
    ) {
        let want = Self::desired_wake(assigner, lateness, kp);
        wake_by(queue, &mut kp.wake, want, key);
    }

    fn advance<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        w: EventTime,
        out: &mut Vec<Change<K, O>>,
    ) {
        let first_fire = out.len();
        let size = self.assigner.size();
        let keep_shown = policy.lateness > 0;
        // Each time's keys sorted: for fixed windows the keys of one time
        // fire the same window, so the fires come out in canonical order and
        // their final sort is a scan of a sorted run.
        let mut due = std::mem::take(&mut self.due);
        self.queue.take_due(w, true, &mut due);
        {
            for key in due.drain(..) {
                let Some(kp) = self.keys.get_mut(&key) else {
                    continue;
                };
                if kp.wake.is_none_or(|wake| wake > w) {
                    continue; // stale, or already settled in this advance
                }
                kp.wake = None;
                if policy.emit == EmitMode::Final {
                    while let Some(end) = kp.next_fire.filter(|e| *e <= w) {
                        let value = if size == self.assigner.slide() {
                            Self::window_value(agg, size, kp, end)
                        } else {
                            Self::fire_value(agg, kp, end - size, end)
                        };
                        if let Some(value) = value {
                            if keep_shown {
                                kp.shown.push((end, value.clone()));
                            }
                            out.push(Change {
                                time: fire_time(end, policy.delay),
                                phase: Phase::Fire,
                                kind: ChangeKind::Final,
                                key: key.clone(),
                                window: Window::new(end - size, end),
                                value,
                            });
                        }
                        kp.next_fire = Self::next_end_after(&self.assigner, kp, end);
                    }
                }
                // Drop what the watermark has passed by the allowed lateness.
                let done = kp
                    .panes
                    .iter()
                    .take_while(|(ps, _)| {
                        self.assigner
                            .last_end_of_pane(*ps)
                            .is_none_or(|e| e.saturating_add(policy.lateness) <= w)
                    })
                    .count();
                kp.panes.drain_front(done);
                let expired = kp
                    .shown
                    .partition_point(|(e, _)| e.saturating_add(policy.lateness) <= w);
                kp.shown.drain(..expired);
                if kp.panes.is_empty() && kp.shown.is_empty() {
                    self.keys.remove(&key);
                } else {
                    Self::reschedule(&mut self.queue, &self.assigner, policy.lateness, &key, kp);
                }
            }
        }
        self.due = due;
        sort_fires(&mut out[first_fire..]);
    }

    #[allow(clippy::too_many_arguments)]
    fn apply<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        w: EventTime,
        key: K,
        time: EventTime,
        input: &A::Input,
        missed: &mut Vec<Window>,
    ) -> Result<Applied, WindowError> {
        let a = &self.assigner;
        let Some((pane_start, first, last)) = a.pane_bounds(time)? else {
            return Ok(Applied::default()); // between windows (slide > size)
        };
        let slide = a.slide();
        let lateness = policy.lateness;
        let mut applied = Applied::default();
        // Windows too late: end + lateness <= watermark.
        let mut end = first;
        while end <= last && end.saturating_add(lateness) <= w {
            missed.push(Window::new(end - a.size(), end));
            applied.missed += 1;
            end += slide;
        }
        if end > last {
            return Ok(applied);
        }
        let first_kept = end;
        let kp = self.keys.entry(key.clone()).or_default();
        if pane_start < kp.cache_hi {
            // A pane already folded into the partial merges changes.
            kp.cache = None;
            kp.cache_hi = EventTime::MIN;
        }
        let new_pane = match kp.panes.last_mut() {
            Some((ps, acc)) if *ps == pane_start => {
                agg.add(acc, input);
                false
            }
            _ => {
                let i = kp.panes.partition_point_back(|(ps, _)| *ps < pane_start);
                match kp.panes.get_mut(i) {
                    Some((ps, acc)) if *ps == pane_start => {
                        agg.add(acc, input);
                        false
                    }
                    _ => {
                        let mut acc = Acc::default();
                        agg.add(&mut acc, input);
                        kp.panes.insert(i, (pane_start, acc));
                        true
                    }
                }
            }
        };
        applied.windows = if last == first_kept {
            1 // tumbling, or the last window: no division on the hot path
        } else {
            ((last - first_kept) / slide + 1) as u32
        };
        // Windows the watermark has reached are late (within the lateness):
        // each gets a correction at the end of the step.
        let mut end = first_kept;
        while end <= last && end <= w {
            applied.late += 1;
            if policy.emit == EmitMode::Final {
                self.touched.push((end, key.clone()));
            }
            end += slide;
        }
        let on_time_from = end;
        if policy.emit == EmitMode::Updates {
            let mut end = first_kept;
            while end <= last {
                self.touched.push((end, key.clone()));
                end += slide;
            }
        }
        if new_pane {
            if policy.emit == EmitMode::Final && on_time_from <= last {
                // The first on-time window holding the new pane.
                if kp.next_fire.is_none_or(|f| on_time_from < f) {
                    kp.next_fire = Some(on_time_from);
                }
            }
            Self::reschedule(&mut self.queue, &self.assigner, lateness, &key, kp);
        }
        Ok(applied)
    }

    fn end_step<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        _w: EventTime,
        time: EventTime,
        out: &mut Vec<Change<K, O>>,
    ) {
        if self.touched.is_empty() {
            return;
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort();
        touched.dedup();
        let size = self.assigner.size();
        let mut retracts = Vec::new();
        let mut updates = Vec::new();
        for (end, key) in touched.drain(..) {
            let Some(kp) = self.keys.get_mut(&key) else {
                continue;
            };
            let Some(value) = Self::window_value(agg, size, kp, end) else {
                continue;
            };
            let window = Window::new(end - size, end);
            let i = kp.shown.partition_point(|(e, _)| *e < end);
            let old = match kp.shown.get_mut(i) {
                Some((e, shown)) if *e == end => {
                    if *shown == value {
                        continue;
                    }
                    Some(std::mem::replace(shown, value.clone()))
                }
                _ => {
                    kp.shown.insert(i, (end, value.clone()));
                    None
                }
            };
            let kind = new_row_kind(policy, old.is_some());
            if let Some(old) = old {
                retracts.push(Change {
                    time,
                    phase: Phase::Retract,
                    kind: ChangeKind::Retract,
                    key: key.clone(),
                    window,
                    value: old,
                });
            }
            Self::reschedule(&mut self.queue, &self.assigner, policy.lateness, &key, kp);
            updates.push(Change {
                time,
                phase: Phase::Emit,
                kind,
                key,
                window,
                value,
            });
        }
        self.touched = touched;
        push_corrections(retracts, updates, out);
    }
}

// ---------------------------------------------------------------------------
// Session windows.

#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "Acc: Serialize, O: Serialize",
    deserialize = "Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
struct Session<Acc, O> {
    window: Window,
    acc: Acc,
    /// The row currently visible downstream for this session, if any
    /// (boxed: only allowed lateness or emit mode `updates` keep one, and
    /// the per-key entry stays small).
    shown: Option<Box<(Window, O)>>,
}

/// The sessions of one key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "Acc: Serialize, O: Serialize",
    deserialize = "Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
struct KeySessions<Acc, O> {
    /// Sorted by start and pairwise more than a gap apart. One session is
    /// stored inline: most keys have one open session, and short sessions
    /// come and go without an allocation.
    sessions: SmallVec<[Session<Acc, O>; 1]>,
    /// When this key next needs attention (a fire or a drop); the queue holds
    /// an entry for it.
    wake: Option<EventTime>,
}

impl<Acc, O> Default for KeySessions<Acc, O> {
    fn default() -> Self {
        KeySessions {
            sessions: SmallVec::new(),
            wake: None,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
struct SessionStore<K, Acc, O> {
    gap: Millis,
    keys: FxHashMap<K, KeySessions<Acc, O>>,
    /// Time → keys to look at when the watermark reaches it. An entry is
    /// stale when its key's `wake` has moved.
    queue: Timers<K>,
    /// Keys taken from the queue by the current advance (kept for its
    /// capacity).
    #[serde(skip)]
    due: Vec<K>,
    #[serde(skip)]
    touched: Vec<K>,
    /// Rows withdrawn in the current step by merges.
    #[serde(skip)]
    retracted: Vec<(K, Window, O)>,
}

impl<K: Clone + Ord + Hash, Acc: Clone + Default, O: Clone + PartialEq> SessionStore<K, Acc, O> {
    fn new(gap: Millis) -> Self {
        SessionStore {
            gap,
            keys: FxHashMap::default(),
            queue: Timers::default(),
            due: Vec::new(),
            touched: Vec::new(),
            retracted: Vec::new(),
        }
    }

    fn session_count(&self) -> usize {
        self.keys.values().map(|k| k.sessions.len()).sum()
    }

    /// When `ks` next needs attention: an unfired session's end (emit mode
    /// final) or a session's end + lateness (drop).
    fn desired_wake(policy: &Policy, ks: &KeySessions<Acc, O>) -> Option<EventTime> {
        ks.sessions
            .iter()
            .map(|s| {
                let drop = s.window.end.saturating_add(policy.lateness);
                if policy.emit == EmitMode::Final && s.shown.is_none() {
                    s.window.end.min(drop)
                } else {
                    drop
                }
            })
            .min()
    }

    fn reschedule(queue: &mut Timers<K>, policy: &Policy, key: &K, ks: &mut KeySessions<Acc, O>) {
        let want = Self::desired_wake(policy, ks);
        wake_by(queue, &mut ks.wake, want, key);
    }

    fn advance<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        w: EventTime,
        out: &mut Vec<Change<K, O>>,
    ) {
        let first_fire = out.len();
        let mut due = std::mem::take(&mut self.due);
        self.queue.take_due(w, false, &mut due);
        {
            for key in due.drain(..) {
                let Some(ks) = self.keys.get_mut(&key) else {
                    continue;
                };
                if ks.wake.is_none_or(|wake| wake > w) {
                    continue; // stale, or already settled in this advance
                }
                ks.wake = None;
                if policy.emit == EmitMode::Final {
                    for session in ks.sessions.iter_mut() {
                        if session.window.end <= w && session.shown.is_none() {
                            let value = agg.finish(&session.acc);
                            if policy.lateness > 0 {
                                // Kept for corrections; without lateness the
                                // session is dropped below, in this advance.
                                session.shown = Some(Box::new((session.window, value.clone())));
                            }
                            out.push(Change {
                                time: fire_time(session.window.end, policy.delay),
                                phase: Phase::Fire,
                                kind: ChangeKind::Final,
                                key: key.clone(),
                                window: session.window,
                                value,
                            });
                        }
                    }
                }
                ks.sessions
                    .retain(|s| s.window.end.saturating_add(policy.lateness) > w);
                if ks.sessions.is_empty() {
                    self.keys.remove(&key);
                } else {
                    Self::reschedule(&mut self.queue, policy, &key, ks);
                }
            }
        }
        self.due = due;
        sort_fires(&mut out[first_fire..]);
    }

    #[allow(clippy::too_many_arguments)]
    fn apply<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        w: EventTime,
        key: K,
        time: EventTime,
        input: &A::Input,
        missed: &mut Vec<Window>,
    ) -> Result<Applied, WindowError> {
        let gap = self.gap;
        let own = session_of(time, gap)?;
        let ks = self.keys.entry(key.clone()).or_default();
        let sessions = &mut ks.sessions;
        // Sessions are sorted and more than a gap apart, so those the record
        // joins are consecutive.
        let first = sessions.partition_point(|s| s.window.end < time);
        let mut last = first;
        while last < sessions.len() && joins_session(sessions[last].window, time, gap) {
            last += 1;
        }
        let mut merged = own;
        for s in &sessions[first..last] {
            merged.start = merged.start.min(s.window.start);
            merged.end = merged.end.max(s.window.end);
        }
        if merged.end.saturating_add(policy.lateness) <= w {
            // Only possible when it joins nothing: a joined session is still
            // open, so its end + lateness is above the watermark.
            missed.push(merged);
            if sessions.is_empty() {
                self.keys.remove(&key);
            }
            return Ok(Applied {
                windows: 0,
                late: 0,
                missed: 1,
            });
        }
        let mut shown_involved = false;
        match last - first {
            0 => {
                let mut acc = Acc::default();
                agg.add(&mut acc, input);
                sessions.insert(
                    first,
                    Session {
                        window: merged,
                        acc,
                        shown: None,
                    },
                );
            }
            1 => {
                // Extending (or filling) one session keeps what it shows, so
                // end_step can withdraw and replace it.
                let s = &mut sessions[first];
                s.window = merged;
                agg.add(&mut s.acc, input);
                shown_involved = s.shown.is_some();
            }
            _ => {
                // Bridging: the sessions merge into the first; what they
                // showed is withdrawn.
                let mut rest = sessions.drain(first + 1..last).collect::<Vec<_>>();
                let s = &mut sessions[first];
                for other in rest.iter_mut() {
                    agg.merge(&mut s.acc, &other.acc);
                    if let Some((window, value)) = other.shown.take().map(|b| *b) {
                        self.retracted.push((key.clone(), window, value));
                    }
                }
                if let Some((window, value)) = s.shown.take().map(|b| *b) {
                    self.retracted.push((key.clone(), window, value));
                }
                s.window = merged;
                agg.add(&mut s.acc, input);
            }
        }
        let late = merged.end <= w;
        if policy.emit == EmitMode::Updates || late || shown_involved {
            self.touched.push(key.clone());
        }
        Self::reschedule(&mut self.queue, policy, &key, ks);
        Ok(Applied {
            windows: 1,
            late: u32::from(late),
            missed: 0,
        })
    }

    fn end_step<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        w: EventTime,
        time: EventTime,
        out: &mut Vec<Change<K, O>>,
    ) {
        if self.touched.is_empty() && self.retracted.is_empty() {
            return;
        }
        let mut retracts: Vec<Change<K, O>> = self
            .retracted
            .drain(..)
            .map(|(key, window, value)| Change {
                time,
                phase: Phase::Retract,
                kind: ChangeKind::Retract,
                key,
                window,
                value,
            })
            .collect();
        let mut updates = Vec::new();
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort();
        touched.dedup();
        for key in touched.drain(..) {
            let Some(ks) = self.keys.get_mut(&key) else {
                continue;
            };
            for session in ks.sessions.iter_mut() {
                let visible = policy.emit == EmitMode::Updates || session.window.end <= w;
                let desired = visible.then(|| (session.window, agg.finish(&session.acc)));
                if session.shown.as_deref() == desired.as_ref() {
                    continue;
                }
                let previous = session.shown.as_ref().map(|b| b.0);
                if let Some((window, value)) = session.shown.take().map(|b| *b) {
                    retracts.push(Change {
                        time,
                        phase: Phase::Retract,
                        kind: ChangeKind::Retract,
                        key: key.clone(),
                        window,
                        value,
                    });
                }
                if let Some((window, value)) = desired {
                    session.shown = Some(Box::new((window, value.clone())));
                    updates.push(Change {
                        time,
                        phase: Phase::Emit,
                        kind: new_row_kind(policy, previous == Some(window)),
                        key: key.clone(),
                        window,
                        value,
                    });
                }
            }
            Self::reschedule(&mut self.queue, policy, &key, ks);
        }
        self.touched = touched;
        cancel_pairs(&mut retracts, &mut updates);
        push_corrections(retracts, updates, out);
    }
}

/// The kind of a correction's new row: in emit mode `final`, the first row
/// of a window is `final` and later ones are `update`s.
fn new_row_kind(policy: &Policy, replaces_same_window: bool) -> ChangeKind {
    if policy.emit == EmitMode::Final && !replaces_same_window {
        ChangeKind::Final
    } else {
        ChangeKind::Update
    }
}

/// Removes retract/update pairs of the same row: a merge that ends where it
/// started changes nothing downstream.
fn cancel_pairs<K: PartialEq, O: PartialEq>(
    retracts: &mut Vec<Change<K, O>>,
    updates: &mut Vec<Change<K, O>>,
) {
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
