//! The store of session windows: per key, a short sorted list of sessions
//! more than a gap apart, each with its accumulator and the row it shows
//! downstream; records extend, fill or bridge them.

use std::hash::Hash;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::emit::{fire, new_row_kind, Corrections};
use super::keyed::{wake_by, Id, KeyState, Keyed};
use super::{Applied, Ctx, Out, WindowStore};
use crate::aggregate::Aggregator;
use crate::assign::{joins_session, session_of, WindowError};
use crate::key::WindowKey;
use crate::policy::{EmitMode, Policy};
use crate::time::{EventTime, MaybeTime, Millis};
use crate::window::Window;

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
pub(super) struct KeySessions<Acc, O> {
    /// Sorted by start and pairwise more than a gap apart. One session is
    /// stored inline: most keys have one open session, and short sessions
    /// come and go without an allocation.
    sessions: SmallVec<[Session<Acc, O>; 1]>,
    /// When this key next needs attention (a fire or a drop); the queue holds
    /// an entry for it.
    wake: MaybeTime,
}

impl<Acc, O> Default for KeySessions<Acc, O> {
    fn default() -> Self {
        KeySessions {
            sessions: SmallVec::new(),
            wake: MaybeTime::NONE,
        }
    }
}

impl<Acc, O> KeyState for KeySessions<Acc, O> {
    #[inline]
    fn wake(&mut self) -> &mut MaybeTime {
        &mut self.wake
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    fn open_states(&self) -> usize {
        self.sessions.len()
    }

    fn oldest_open(&self, w: EventTime) -> Option<EventTime> {
        self.sessions
            .iter()
            .map(|s| s.window.end)
            .filter(|&end| end > w)
            .min()
    }
}

impl<Acc, O> KeySessions<Acc, O> {
    /// When this key next needs attention: an unfired session's end (emit
    /// mode final) or a session's end + lateness (drop).
    fn desired_wake(&self, policy: &Policy) -> Option<EventTime> {
        self.sessions
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
}

/// The store of session windows.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
pub(super) struct SessionStore<K, Acc, O> {
    pub(super) gap: Millis,
    pub(super) keyed: Keyed<K, KeySessions<Acc, O>>,
    /// Ids of the keys whose rows the current step may change.
    #[serde(skip)]
    touched: Vec<Id>,
    /// Rows withdrawn in the current step by merges.
    #[serde(skip)]
    retracted: Vec<(K, Window, O)>,
}

impl<K, Acc, O> SessionStore<K, Acc, O> {
    pub(super) fn new(gap: Millis) -> Self {
        SessionStore {
            gap,
            keyed: Keyed::default(),
            touched: Vec::new(),
            retracted: Vec::new(),
        }
    }
}

impl<K, A> WindowStore<K, A> for SessionStore<K, A::Acc, A::Output>
where
    K: WindowKey,
    A: Aggregator,
{
    fn advance(&mut self, cx: &Ctx<'_, A>, out: &mut Vec<Out<K, A>>) {
        let (agg, policy, w) = (cx.agg, &cx.policy, cx.watermark);
        self.keyed.advance(
            w,
            false,
            out,
            |key, ks, out| {
                if policy.emit == EmitMode::Final {
                    for session in ks.sessions.iter_mut() {
                        if session.window.end <= w && session.shown.is_none() {
                            let value = agg.finish(&session.acc);
                            if policy.lateness > 0 {
                                // Kept for corrections; without lateness the
                                // session is dropped below, in this advance.
                                session.shown = Some(Box::new((session.window, value.clone())));
                            }
                            out.push(fire(policy, key.clone(), session.window, value));
                        }
                    }
                }
                ks.sessions
                    .retain(|s| s.window.end.saturating_add(policy.lateness) > w);
            },
            |ks| ks.desired_wake(policy),
        );
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
        let (agg, policy, w) = (cx.agg, &cx.policy, cx.watermark);
        let gap = self.gap;
        let own = session_of(time, gap)?;
        let (id, key, ks) = self.keyed.map.entry(key);
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
                self.keyed.map.remove(id);
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
                let mut acc = A::Acc::default();
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
            self.touched.push(id);
        }
        let want = ks.desired_wake(policy);
        wake_by(&mut self.keyed.queue, id, ks, want);
        Ok(Applied {
            windows: 1,
            late: u32::from(late),
            missed: 0,
        })
    }

    fn end_step(&mut self, cx: &Ctx<'_, A>, out: &mut Vec<Out<K, A>>) {
        if self.touched.is_empty() && self.retracted.is_empty() {
            return;
        }
        let (agg, policy, w) = (cx.agg, &cx.policy, cx.watermark);
        let mut corrections = Corrections::new(cx.frontier);
        for (key, window, value) in self.retracted.drain(..) {
            corrections.retract(key, window, value);
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort();
        touched.dedup();
        for id in touched.drain(..) {
            let Some((key, ks)) = self.keyed.map.get_mut(id) else {
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
                    corrections.retract(key.clone(), window, value);
                }
                if let Some((window, value)) = desired {
                    session.shown = Some(Box::new((window, value.clone())));
                    let kind = new_row_kind(policy, previous == Some(window));
                    corrections.update(kind, key.clone(), window, value);
                }
            }
            let want = ks.desired_wake(policy);
            wake_by(&mut self.keyed.queue, id, ks, want);
        }
        self.touched = touched;
        corrections.cancel_pairs();
        corrections.push_to(out);
    }
}
