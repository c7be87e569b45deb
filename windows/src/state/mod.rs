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
//!
//! This module owns the driver ([`WindowState`]) and its snapshot; the
//! per-key state lives in one of two stores behind a private trait:
//!
//! | module    | owns |
//! | --------- | ---- |
//! | `fixed`   | the store of tumbling and sliding windows over panes |
//! | `session` | the store of session windows |
//! | `keyed`   | the key map and timer queue both stores keep, and the one timer-driven advance loop |
//! | `emit`    | the rows both stores emit: fires, corrections and their canonical order |

use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregator;
use crate::assign::{WindowError, WindowSpec};
use crate::change::Change;
use crate::key::WindowKey;
use crate::policy::Policy;
use crate::time::{watermark, EventTime, END_OF_TIME};
use crate::window::Window;

mod emit;
mod fixed;
mod keyed;
mod session;

use fixed::FixedStore;
use session::SessionStore;

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

/// The store of a state with aggregator `A`.
type StoreOf<K, A> = Store<K, <A as Aggregator>::Acc, <A as Aggregator>::Output>;

/// Per-key window state for one window specification, aggregator and policy.
///
/// See the [module documentation](self) for the driving protocol.
pub struct WindowState<K, A: Aggregator> {
    agg: A,
    policy: Policy,
    spec: WindowSpec,
    frontier: EventTime,
    store: StoreOf<K, A>,
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

/// A [`Snapshot`] borrowing the state: the same fields in the same order,
/// so the same encoding.
#[derive(Serialize)]
#[serde(bound(serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize"))]
struct SnapshotRef<'a, K, Acc, O> {
    spec: WindowSpec,
    policy: Policy,
    frontier: EventTime,
    store: &'a Store<K, Acc, O>,
}

/// What a store is called with: the aggregator, the policy, and the stream
/// time and watermark of the current step.
///
/// The policy is a copy, not a reference: read through the context, which
/// nothing else can write, its fields stay in registers on the per-record
/// path instead of being reloaded after every store to window state.
struct Ctx<'a, A> {
    agg: &'a A,
    policy: Policy,
    /// The stream time of the current step (the time of its corrections).
    frontier: EventTime,
    /// The global watermark: `frontier − delay`.
    watermark: EventTime,
}

/// The per-key state of one kind of window, as the driver calls it.
trait WindowStore<K, A: Aggregator> {
    /// Fires what the watermark has reached (in canonical order) and drops
    /// what it has passed by the allowed lateness.
    fn advance(&mut self, cx: &Ctx<'_, A>, out: &mut Vec<Out<K, A>>);

    /// Applies one record of the current step.
    fn apply(
        &mut self,
        cx: &Ctx<'_, A>,
        key: K,
        time: EventTime,
        input: &A::Input,
        missed: &mut Vec<Window>,
    ) -> Result<Applied, WindowError>;

    /// Emits the corrections of the current step.
    fn end_step(&mut self, cx: &Ctx<'_, A>, out: &mut Vec<Out<K, A>>);
}

/// The store of a state: fixed windows or sessions.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
enum Store<K, Acc, O> {
    Fixed(FixedStore<K, Acc, O>),
    Session(SessionStore<K, Acc, O>),
}

/// Runs `$body` with `$s` bound to whichever store `$store` holds: every
/// call of the driver reaches its store through this one `match` (static
/// dispatch: the per-record path makes no indirect call).
macro_rules! dispatch {
    ($store:expr, $s:ident => $body:expr) => {
        match $store {
            Store::Fixed($s) => $body,
            Store::Session($s) => $body,
        }
    };
}

impl<K, A> WindowStore<K, A> for StoreOf<K, A>
where
    K: WindowKey,
    A: Aggregator,
{
    #[inline]
    fn advance(&mut self, cx: &Ctx<'_, A>, out: &mut Vec<Out<K, A>>) {
        dispatch!(self, s => s.advance(cx, out))
    }

    #[inline]
    fn apply(
        &mut self,
        cx: &Ctx<'_, A>,
        key: K,
        time: EventTime,
        input: &A::Input,
        missed: &mut Vec<Window>,
    ) -> Result<Applied, WindowError> {
        dispatch!(self, s => s.apply(cx, key, time, input, missed))
    }

    #[inline]
    fn end_step(&mut self, cx: &Ctx<'_, A>, out: &mut Vec<Out<K, A>>) {
        dispatch!(self, s => s.end_step(cx, out))
    }
}

impl<K: WindowKey, Acc, O> Store<K, Acc, O> {
    /// The empty store of `spec`. Fails if the spec is invalid.
    fn new(spec: WindowSpec) -> Result<Self, WindowError> {
        Ok(match spec.fixed()? {
            Some(assigner) => Store::Fixed(FixedStore::new(assigner)),
            None => Store::Session(SessionStore::new(match spec {
                WindowSpec::Session { gap } => gap,
                _ => 0,
            })),
        })
    }

    /// Whether this store holds windows of `spec` (a snapshot's consistency).
    fn belongs_to(&self, spec: WindowSpec) -> Result<bool, WindowError> {
        Ok(match (self, spec.fixed()?) {
            (Store::Fixed(f), Some(assigner)) => f.assigner == assigner,
            (Store::Session(s), None) => spec == WindowSpec::Session { gap: s.gap },
            _ => false,
        })
    }

    fn open_states(&self) -> usize {
        dispatch!(self, s => s.keyed.open_states())
    }

    fn retain_keys(&mut self, mut keep: impl FnMut(&K) -> bool) {
        dispatch!(self, s => s.keyed.map.retain(&mut keep))
    }

    /// Moves `other`'s keys into this store (the same kind of store);
    /// `Err(true)` if they share a key, `Err(false)` if the kinds differ.
    fn absorb(&mut self, other: Self) -> Result<(), bool> {
        match (self, other) {
            (Store::Fixed(a), Store::Fixed(b)) => a.keyed.absorb(b.keyed).map_err(|_| true),
            (Store::Session(a), Store::Session(b)) => a.keyed.absorb(b.keyed).map_err(|_| true),
            _ => Err(false),
        }
    }
}

impl<K, A> WindowState<K, A>
where
    K: WindowKey,
    A: Aggregator,
{
    /// A new, empty state. Fails if the window spec or policy is invalid.
    pub fn try_new(spec: WindowSpec, policy: Policy, agg: A) -> Result<Self, WindowError> {
        policy.validate()?;
        Ok(WindowState {
            agg,
            policy,
            spec,
            frontier: EventTime::MIN,
            store: Store::new(spec)?,
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
        self.store.open_states()
    }

    /// The oldest open window: the earliest end of a window the watermark
    /// has not passed yet, and how many keys have a window ending then.
    /// Walks every key.
    pub fn oldest_open_window(&self) -> Option<(EventTime, usize)> {
        let w = self.watermark();
        dispatch!(&self.store, s => s.keyed.oldest_open(w))
    }

    /// Number of keys with state.
    pub fn keys(&self) -> usize {
        dispatch!(&self.store, s => s.keyed.map.len())
    }

    /// The store and what it is called with at the current frontier.
    #[inline]
    fn parts(&mut self) -> (&mut StoreOf<K, A>, Ctx<'_, A>) {
        let cx = Ctx {
            agg: &self.agg,
            policy: self.policy,
            frontier: self.frontier,
            watermark: watermark(self.frontier, self.policy.delay),
        };
        (&mut self.store, cx)
    }

    /// Advances the frontier to `frontier`: fires the windows the watermark
    /// has reached and drops the state the watermark has passed by the
    /// allowed lateness. A frontier at or below the current one does nothing.
    pub fn advance(&mut self, frontier: EventTime, out: &mut Vec<Out<K, A>>) {
        if frontier <= self.frontier {
            return;
        }
        self.frontier = frontier;
        let (store, cx) = self.parts();
        store.advance(&cx, out);
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
        let (store, cx) = self.parts();
        store.apply(&cx, key, time, input, missed)
    }

    /// Ends the current step: emits its corrections (retractions first, then
    /// new values, each sorted by end, start and key).
    pub fn end_step(&mut self, out: &mut Vec<Out<K, A>>) {
        let (store, cx) = self.parts();
        store.end_step(&cx, out);
    }

    /// Ends the input: the watermark becomes +∞ and every window fires.
    pub fn finish(&mut self, out: &mut Vec<Out<K, A>>) {
        self.advance(END_OF_TIME, out);
    }

    /// Encodes a snapshot of the state between steps with `serializer`,
    /// without copying the state first: the same encoding as serialising
    /// [`snapshot`](Self::snapshot)'s result, which it can be decoded as.
    pub fn serialize_snapshot<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Eq + Hash,
        A::Acc: Serialize,
        A::Output: Serialize,
    {
        SnapshotRef {
            spec: self.spec,
            policy: self.policy,
            frontier: self.frontier,
            store: &self.store,
        }
        .serialize(serializer)
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
    pub fn retain_keys(&mut self, keep: impl FnMut(&K) -> bool) {
        self.store.retain_keys(keep);
    }

    /// Moves every key of `other` into `self`: how the per-worker snapshots
    /// of a checkpoint (each worker holds its own keys) become one state
    /// again. Both must have the same spec, policy and frontier, and no key
    /// in common; otherwise `self` is left as it was.
    ///
    /// Call it between steps (after [`end_step`](Self::end_step), or after
    /// an [`advance`](Self::advance) with no record applied since): what
    /// `other` collected for the corrections of an unfinished step is not
    /// carried over. To merge states at different frontiers, first advance
    /// them to the same one (a later frontier only fires and drops what it
    /// must, as a step with no records would). The result then behaves
    /// exactly as one state that held every key: `other`'s timers move with
    /// its keys, and the queue entries that [`retain_keys`](Self::retain_keys)
    /// left behind stay stale.
    ///
    /// Errors: [`WindowError::SnapshotMismatch`] for another spec or policy,
    /// [`WindowError::Absorb`] for another frontier or a key in common.
    pub fn absorb(&mut self, other: WindowState<K, A>) -> Result<(), WindowError> {
        if (self.spec, self.policy) != (other.spec, other.policy) {
            return Err(WindowError::SnapshotMismatch);
        }
        if self.frontier != other.frontier {
            return Err(WindowError::Absorb(format!(
                "the states are at different frontiers ({} and {})",
                self.frontier, other.frontier
            )));
        }
        self.store.absorb(other.store).map_err(|shared| {
            if shared {
                WindowError::Absorb("the states hold a key in common".into())
            } else {
                WindowError::SnapshotMismatch
            }
        })
    }

    /// Rebuilds a state from a snapshot taken with the same spec and policy.
    pub fn restore(agg: A, snapshot: Snapshot<K, A::Acc, A::Output>) -> Result<Self, WindowError> {
        snapshot.policy.validate()?;
        if !snapshot.store.belongs_to(snapshot.spec)? {
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
