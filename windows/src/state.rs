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

use std::collections::BTreeMap;
use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregator;
use crate::assign::{joins_session, session_of, Sliding, WindowAssigner, WindowError, WindowSpec};
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
    scratch: Vec<Window>,
}

/// A serialisable snapshot of a [`WindowState`] (for checkpoints).
#[derive(Serialize, Deserialize)]
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

#[derive(Serialize, Deserialize)]
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
            None => Store::Session(SessionStore::new()),
        };
        Ok(WindowState {
            agg,
            policy,
            spec,
            frontier: EventTime::MIN,
            store,
            scratch: Vec::new(),
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
            Store::Fixed(f) => f.panes.len(),
            Store::Session(s) => s.sessions.values().map(Vec::len).sum(),
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
            Store::Fixed(f) => f.apply(
                &self.agg,
                &self.policy,
                w,
                key,
                time,
                input,
                &mut self.scratch,
                missed,
            ),
            Store::Session(s) => {
                let gap = match self.spec {
                    WindowSpec::Session { gap } => gap,
                    _ => unreachable!("session store with a fixed window spec"),
                };
                s.apply(&self.agg, &self.policy, gap, w, key, time, input, missed)
            }
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
    pub fn snapshot(&self) -> Snapshot<K, A::Acc, A::Output>
    where
        A::Acc: Clone,
    {
        Snapshot {
            spec: self.spec,
            policy: self.policy,
            frontier: self.frontier,
            store: self.store.clone_store(),
        }
    }

    /// Rebuilds a state from a snapshot taken with the same spec and policy.
    pub fn restore(agg: A, snapshot: Snapshot<K, A::Acc, A::Output>) -> Result<Self, WindowError> {
        snapshot.policy.validate()?;
        snapshot.spec.validate()?;
        Ok(WindowState {
            agg,
            policy: snapshot.policy,
            spec: snapshot.spec,
            frontier: snapshot.frontier,
            store: snapshot.store,
            scratch: Vec::new(),
        })
    }
}

impl<K: Clone, Acc: Clone, O: Clone> Store<K, Acc, O> {
    fn clone_store(&self) -> Self {
        match self {
            Store::Fixed(f) => Store::Fixed(FixedStore {
                assigner: f.assigner,
                panes: f.panes.clone(),
                windows: f.windows.clone(),
                fires: f.fires.clone(),
                drops: f.drops.clone(),
                touched: Vec::new(),
            }),
            Store::Session(s) => Store::Session(SessionStore {
                sessions: s.sessions.clone(),
                queue: s.queue.clone(),
                touched: Vec::new(),
                retracted: Vec::new(),
            }),
        }
    }
}

/// Pushes a value into a time-keyed queue.
fn enqueue<K>(queue: &mut BTreeMap<EventTime, Vec<K>>, time: EventTime, key: K) {
    queue.entry(time).or_default().push(key);
}

/// Removes and returns the queue entries at or below `upto`.
fn due<K>(queue: &mut BTreeMap<EventTime, Vec<K>>, upto: EventTime) -> Vec<(EventTime, Vec<K>)> {
    let mut taken = Vec::new();
    while let Some(entry) = queue.first_entry() {
        if *entry.key() > upto {
            break;
        }
        let (time, keys) = entry.remove_entry();
        taken.push((time, keys));
    }
    taken
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

#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "O: Serialize", deserialize = "O: Deserialize<'de>"))]
struct WindowMeta<O> {
    /// The row currently visible downstream for this window, if any.
    shown: Option<O>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
struct FixedStore<K, Acc, O> {
    assigner: Sliding,
    /// (key, pane start) → accumulator.
    panes: FxHashMap<(K, EventTime), Acc>,
    /// (key, window end) → what is shown of it. Present for every window
    /// that has at least one record and is not yet dropped.
    windows: FxHashMap<(K, EventTime), WindowMeta<O>>,
    /// Window end → keys whose window ending there fires then.
    fires: BTreeMap<EventTime, Vec<K>>,
    /// Window end + lateness → keys whose window ending at `end` is dropped.
    drops: BTreeMap<EventTime, Vec<(K, EventTime)>>,
    /// Windows (end, key) changed in the current step and visible.
    #[serde(skip)]
    touched: Vec<(EventTime, K)>,
}

impl<K: Clone + Ord + Hash, Acc: Clone + Default, O: Clone + PartialEq> FixedStore<K, Acc, O> {
    fn new(assigner: Sliding) -> Self {
        FixedStore {
            assigner,
            panes: FxHashMap::default(),
            windows: FxHashMap::default(),
            fires: BTreeMap::new(),
            drops: BTreeMap::new(),
            touched: Vec::new(),
        }
    }

    fn window_of_end(&self, end: EventTime) -> Window {
        Window::new(end - self.assigner.size(), end)
    }

    /// The value of `key`'s window ending at `end`: the merge of its panes.
    fn value<A: Aggregator<Acc = Acc, Output = O>>(&self, agg: &A, key: &K, end: EventTime) -> O {
        let size = self.assigner.size();
        let pane = self.assigner.pane();
        if pane == size {
            if let Some(acc) = self.panes.get(&(key.clone(), end - size)) {
                return agg.finish(acc);
            }
            return agg.finish(&Acc::default());
        }
        let mut total = Acc::default();
        let mut start = end - size;
        while start < end {
            if let Some(acc) = self.panes.get(&(key.clone(), start)) {
                agg.merge(&mut total, acc);
            }
            start += pane;
        }
        agg.finish(&total)
    }

    fn advance<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        w: EventTime,
        out: &mut Vec<Change<K, O>>,
    ) {
        if policy.emit == EmitMode::Final {
            for (end, mut keys) in due(&mut self.fires, w) {
                keys.sort();
                let window = self.window_of_end(end);
                for key in keys {
                    let value = self.value(agg, &key, end);
                    if let Some(meta) = self.windows.get_mut(&(key.clone(), end)) {
                        meta.shown = Some(value.clone());
                    }
                    out.push(Change {
                        time: fire_time(end, policy.delay),
                        phase: Phase::Fire,
                        kind: ChangeKind::Final,
                        key,
                        window,
                        value,
                    });
                }
            }
        }
        let (size, slide, pane) = (
            self.assigner.size(),
            self.assigner.slide(),
            self.assigner.pane(),
        );
        for (_, entries) in due(&mut self.drops, w) {
            for (key, end) in entries {
                self.windows.remove(&(key.clone(), end));
                // Panes whose last window ends at `end`.
                let mut start = end - size;
                let stop = (end - size).saturating_add(slide);
                while start < stop {
                    self.panes.remove(&(key.clone(), start));
                    start += pane;
                }
            }
        }
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
        scratch: &mut Vec<Window>,
        missed: &mut Vec<Window>,
    ) -> Result<Applied, WindowError> {
        scratch.clear();
        self.assigner.assign(time, scratch)?;
        let mut applied = Applied::default();
        let mut first_kept = None;
        for (i, window) in scratch.iter().enumerate() {
            // Too late: the watermark has passed end + lateness.
            if window.end.saturating_add(policy.lateness) <= w {
                missed.push(*window);
                applied.missed += 1;
            } else if first_kept.is_none() {
                first_kept = Some(i);
            }
        }
        let Some(first_kept) = first_kept else {
            return Ok(applied);
        };
        let pane_start = self
            .assigner
            .pane_start(time)
            .ok_or(WindowError::Unrepresentable { time })?;
        let pane_key = (key.clone(), pane_start);
        let new_pane = match self.panes.get_mut(&pane_key) {
            Some(acc) => {
                agg.add(acc, input);
                false
            }
            None => {
                let mut acc = Acc::default();
                agg.add(&mut acc, input);
                self.panes.insert(pane_key, acc);
                true
            }
        };
        for window in &scratch[first_kept..] {
            applied.windows += 1;
            let late = window.end <= w;
            if late {
                applied.late += 1;
            }
            if new_pane {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    self.windows.entry((key.clone(), window.end))
                {
                    slot.insert(WindowMeta { shown: None });
                    if policy.emit == EmitMode::Final && !late {
                        enqueue(&mut self.fires, window.end, key.clone());
                    }
                    let drop_at = window.end.saturating_add(policy.lateness);
                    enqueue(&mut self.drops, drop_at, (key.clone(), window.end));
                }
            }
            if late || policy.emit == EmitMode::Updates {
                self.touched.push((window.end, key.clone()));
            }
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
        let mut retracts = Vec::new();
        let mut updates = Vec::new();
        for (end, key) in touched.drain(..) {
            let value = self.value(agg, &key, end);
            let window = self.window_of_end(end);
            let Some(meta) = self.windows.get_mut(&(key.clone(), end)) else {
                continue;
            };
            if meta.shown.as_ref() == Some(&value) {
                continue;
            }
            let old = meta.shown.replace(value.clone());
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
    /// The row currently visible downstream for this session, if any.
    shown: Option<(Window, O)>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
struct SessionStore<K, Acc, O> {
    /// Key → its sessions, sorted by start and pairwise more than a gap apart.
    sessions: FxHashMap<K, Vec<Session<Acc, O>>>,
    /// Time → keys to look at when the watermark reaches it (a session end to
    /// fire, or an end + lateness to drop). Entries may be stale.
    queue: BTreeMap<EventTime, Vec<K>>,
    #[serde(skip)]
    touched: Vec<K>,
    /// Rows withdrawn in the current step by merges.
    #[serde(skip)]
    retracted: Vec<(K, Window, O)>,
}

impl<K: Clone + Ord + Hash, Acc: Clone + Default, O: Clone + PartialEq> SessionStore<K, Acc, O> {
    fn new() -> Self {
        SessionStore {
            sessions: FxHashMap::default(),
            queue: BTreeMap::new(),
            touched: Vec::new(),
            retracted: Vec::new(),
        }
    }

    fn advance<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        w: EventTime,
        out: &mut Vec<Change<K, O>>,
    ) {
        let mut keys: Vec<K> = due(&mut self.queue, w)
            .into_iter()
            .flat_map(|(_, keys)| keys)
            .collect();
        keys.sort();
        keys.dedup();
        let first_fire = out.len();
        for key in keys {
            let Some(sessions) = self.sessions.get_mut(&key) else {
                continue;
            };
            if policy.emit == EmitMode::Final {
                for session in sessions.iter_mut() {
                    if session.window.end <= w && session.shown.is_none() {
                        let value = agg.finish(&session.acc);
                        session.shown = Some((session.window, value.clone()));
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
            sessions.retain(|s| s.window.end.saturating_add(policy.lateness) > w);
            if sessions.is_empty() {
                self.sessions.remove(&key);
            }
        }
        out[first_fire..].sort_by(|a, b| a.canonical_cmp(b));
    }

    #[allow(clippy::too_many_arguments)]
    fn apply<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        policy: &Policy,
        gap: Millis,
        w: EventTime,
        key: K,
        time: EventTime,
        input: &A::Input,
        missed: &mut Vec<Window>,
    ) -> Result<Applied, WindowError> {
        let own = session_of(time, gap)?;
        let sessions = self.sessions.entry(key.clone()).or_default();
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
                self.sessions.remove(&key);
            }
            return Ok(Applied {
                windows: 0,
                late: 0,
                missed: 1,
            });
        }
        let mut acc = Acc::default();
        agg.add(&mut acc, input);
        let mut shown = None;
        if last - first == 1 {
            // Extending (or filling) one session keeps what it shows, so
            // end_step can withdraw and replace it.
            let s = &sessions[first];
            agg.merge(&mut acc, &s.acc);
            shown = s.shown.clone();
        } else {
            for s in &sessions[first..last] {
                agg.merge(&mut acc, &s.acc);
                if let Some((window, value)) = &s.shown {
                    self.retracted.push((key.clone(), *window, value.clone()));
                }
            }
        }
        let session = Session {
            window: merged,
            acc,
            shown,
        };
        sessions.splice(first..last, std::iter::once(session));
        let late = merged.end <= w;
        if policy.emit == EmitMode::Final && !late {
            enqueue(&mut self.queue, merged.end, key.clone());
        }
        enqueue(
            &mut self.queue,
            merged.end.saturating_add(policy.lateness),
            key.clone(),
        );
        self.touched.push(key);
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
            let Some(sessions) = self.sessions.get_mut(&key) else {
                continue;
            };
            for session in sessions.iter_mut() {
                let visible = policy.emit == EmitMode::Updates || session.window.end <= w;
                let desired = visible.then(|| (session.window, agg.finish(&session.acc)));
                if session.shown == desired {
                    continue;
                }
                let previous = session.shown.as_ref().map(|(window, _)| *window);
                if let Some((window, value)) = session.shown.take() {
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
                    session.shown = Some((window, value.clone()));
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
