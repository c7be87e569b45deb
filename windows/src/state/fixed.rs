//! The store of fixed windows (tumbling and sliding) over panes: per key,
//! one accumulator per pane of `gcd(size, slide)` ms, the rows still shown
//! downstream, and the partial merges that sliding windows reuse from one
//! fire to the next.

use std::hash::Hash;

use serde::{Deserialize, Serialize};
use thin_vec::ThinVec;

use super::emit::{fire, new_row_kind, Corrections};
use super::keyed::{wake_by, Id, KeyState, Keyed};
use super::{Applied, Ctx, Out, WindowStore};
use crate::aggregate::Aggregator;
use crate::assign::{Sliding, WindowError};
use crate::key::WindowKey;
use crate::panes::Panes;
use crate::policy::EmitMode;
use crate::time::{EventTime, MaybeTime, Millis};
use crate::window::Window;

/// The panes of one key and what it shows downstream.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "Acc: Serialize, O: Serialize",
    deserialize = "Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
pub(super) struct KeyPanes<Acc, O> {
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
    next_fire: MaybeTime,
    /// When this key next needs attention (a fire or a drop); the queue
    /// holds an entry for it.
    wake: MaybeTime,
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
            next_fire: MaybeTime::NONE,
            wake: MaybeTime::NONE,
        }
    }
}

impl<Acc, O> KeyState for KeyPanes<Acc, O> {
    #[inline]
    fn wake(&mut self) -> &mut MaybeTime {
        &mut self.wake
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.panes.is_empty() && self.shown.is_empty()
    }

    fn open_states(&self) -> usize {
        self.panes.len()
    }

    fn oldest_open(&self, w: EventTime) -> Option<EventTime> {
        self.next_fire.get().filter(|&end| end > w)
    }
}

impl<Acc: Clone, O> KeyPanes<Acc, O> {
    /// The value of the window ending at `end`: the merge of its panes.
    fn window_value<A: Aggregator<Acc = Acc, Output = O>>(
        &self,
        agg: &A,
        size: Millis,
        end: EventTime,
    ) -> Option<O> {
        let start = end - size;
        let lo = self.panes.partition_point(|(ps, _)| *ps < start);
        let hi = self.panes.partition_point(|(ps, _)| *ps < end);
        match hi.checked_sub(lo)? {
            0 => None,
            1 => self.panes.get(lo).map(|(_, acc)| agg.finish(acc)),
            _ => {
                let mut total = self.panes.get(lo)?.1.clone();
                for (_, acc) in self.panes.range(lo + 1..hi) {
                    agg.merge(&mut total, acc);
                }
                Some(agg.finish(&total))
            }
        }
    }

    /// The value of the window `[start, end)` about to fire, reusing the
    /// partial merges of the previous fires of this key (see [`TwoStacks`]).
    fn fire_value<A: Aggregator<Acc = Acc, Output = O>>(
        &mut self,
        agg: &A,
        start: EventTime,
        end: EventTime,
    ) -> Option<O> {
        let valid = self
            .cache
            .as_ref()
            .is_some_and(|c| start >= c.lo && end >= c.hi);
        if !valid {
            self.cache = None;
        }
        let c = self.cache.get_or_insert_with(|| {
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
        let from = self.panes.partition_point_back(|(ps, _)| *ps < c.hi);
        for (ps, acc) in self.panes.range(from..self.panes.len()) {
            if *ps >= end {
                break;
            }
            match &mut c.back {
                Some(back) => agg.merge(back, acc),
                None => c.back = Some(acc.clone()),
            }
        }
        c.hi = end;
        self.cache_hi = end;
        if c.front.is_empty() && c.split < start {
            // Flip: the back holds panes before `start`; rebuild the front
            // as suffix merges of the panes in [start, hi).
            let lo_i = self.panes.partition_point(|(ps, _)| *ps < start);
            let hi_i = self.panes.partition_point(|(ps, _)| *ps < end);
            let mut running: Option<Acc> = None;
            for (ps, acc) in self.panes.range(lo_i..hi_i).rev() {
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
    fn next_end_after(&self, assigner: &Sliding, after: EventTime) -> Option<EventTime> {
        let i = self.panes.partition_point_front(|(ps, _)| {
            assigner.last_end_of_pane(*ps).is_some_and(|e| e <= after)
        });
        let (ps, _) = self.panes.get(i)?;
        let first = assigner.first_end_of_pane(*ps)?;
        Some(first.max(assigner.ceil_end(after.checked_add(1)?)?))
    }

    /// When this key next needs attention: its next fire, or the first drop.
    fn desired_wake(&self, assigner: &Sliding, lateness: Millis) -> Option<EventTime> {
        let pane_drop = self
            .panes
            .first()
            .and_then(|(ps, _)| assigner.last_end_of_pane(*ps))
            .map(|e| e.saturating_add(lateness));
        let shown_drop = self.shown.first().map(|(e, _)| e.saturating_add(lateness));
        [self.next_fire.get(), pane_drop, shown_drop]
            .into_iter()
            .flatten()
            .min()
    }
}

/// The store of fixed windows.
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, Acc: Serialize, O: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, Acc: Deserialize<'de>, O: Deserialize<'de>"
))]
pub(super) struct FixedStore<K, Acc, O> {
    pub(super) assigner: Sliding,
    pub(super) keyed: Keyed<K, KeyPanes<Acc, O>>,
    /// Windows (end, key id) changed in the current step and visible.
    #[serde(skip)]
    touched: Vec<(EventTime, Id)>,
}

impl<K, Acc, O> FixedStore<K, Acc, O> {
    pub(super) fn new(assigner: Sliding) -> Self {
        FixedStore {
            assigner,
            keyed: Keyed::default(),
            touched: Vec::new(),
        }
    }
}

impl<K, A> WindowStore<K, A> for FixedStore<K, A::Acc, A::Output>
where
    K: WindowKey,
    A: Aggregator,
{
    fn advance(&mut self, cx: &Ctx<'_, A>, out: &mut Vec<Out<K, A>>) {
        let (agg, policy, w) = (cx.agg, &cx.policy, cx.watermark);
        let assigner = &self.assigner;
        let size = assigner.size();
        let tumbling = size == assigner.slide();
        let keep_shown = policy.lateness > 0;
        // Each time's keys sorted: for fixed windows the keys of one time
        // fire the same window, so the fires come out in canonical order and
        // their final sort is a scan of a sorted run.
        self.keyed.advance(
            w,
            true,
            out,
            |key, kp, out| {
                if policy.emit == EmitMode::Final {
                    while let Some(end) = kp.next_fire.get().filter(|e| *e <= w) {
                        let value = if tumbling {
                            kp.window_value(agg, size, end)
                        } else {
                            kp.fire_value(agg, end - size, end)
                        };
                        if let Some(value) = value {
                            if keep_shown {
                                kp.shown.push((end, value.clone()));
                            }
                            out.push(fire(
                                policy,
                                key.clone(),
                                Window::new(end - size, end),
                                value,
                            ));
                        }
                        kp.next_fire = kp.next_end_after(assigner, end).into();
                    }
                }
                // Drop what the watermark has passed by the allowed lateness.
                let done = kp
                    .panes
                    .iter()
                    .take_while(|(ps, _)| {
                        assigner
                            .last_end_of_pane(*ps)
                            .is_none_or(|e| e.saturating_add(policy.lateness) <= w)
                    })
                    .count();
                kp.panes.drain_front(done);
                let expired = kp
                    .shown
                    .partition_point(|(e, _)| e.saturating_add(policy.lateness) <= w);
                kp.shown.drain(..expired);
            },
            |kp| kp.desired_wake(assigner, policy.lateness),
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
        let (id, _, kp) = self.keyed.map.entry(key);
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
                        let mut acc = A::Acc::default();
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
                self.touched.push((end, id));
            }
            end += slide;
        }
        let on_time_from = end;
        if policy.emit == EmitMode::Updates {
            let mut end = first_kept;
            while end <= last {
                self.touched.push((end, id));
                end += slide;
            }
        }
        if new_pane {
            if policy.emit == EmitMode::Final && on_time_from <= last {
                // The first on-time window holding the new pane.
                if kp.next_fire.get().is_none_or(|f| on_time_from < f) {
                    kp.next_fire = MaybeTime::some(on_time_from);
                }
            }
            let want = kp.desired_wake(a, lateness);
            wake_by(&mut self.keyed.queue, id, kp, want);
        }
        Ok(applied)
    }

    fn end_step(&mut self, cx: &Ctx<'_, A>, out: &mut Vec<Out<K, A>>) {
        if self.touched.is_empty() {
            return;
        }
        let (agg, policy) = (cx.agg, &cx.policy);
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort();
        touched.dedup();
        let size = self.assigner.size();
        let mut corrections = Corrections::new(cx.frontier);
        for (end, id) in touched.drain(..) {
            let Some((key, kp)) = self.keyed.map.get_mut(id) else {
                continue;
            };
            let Some(value) = kp.window_value(agg, size, end) else {
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
                corrections.retract(key.clone(), window, old);
            }
            let want = kp.desired_wake(&self.assigner, policy.lateness);
            wake_by(&mut self.keyed.queue, id, kp, want);
            corrections.update(kind, key.clone(), window, value);
        }
        self.touched = touched;
        corrections.push_to(out);
    }
}
