//! The timer queue of the window state: which keys to look at when the
//! watermark reaches a time.
//!
//! Times within `SLOTS` ms of the last time taken live in a ring of slots
//! (a push is an index and a `Vec` push, slots keep their capacity); others
//! in an ordered map. Entries may go stale (the caller keeps each key's
//! current wake time and skips the others), so nothing is ever removed
//! except by [`Timers::take_due`]. Serialises as the ordered map
//! `time → keys`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::EventTime;

/// Slots in the ring: 4096 ms ahead of the last time taken.
const SLOTS: usize = 4096;

/// Capacity a slot keeps after its keys are taken (more is freed).
const SLOT_KEEP: usize = 64;

/// A time-ordered multimap of keys to wake.
#[derive(Clone, Debug)]
pub(crate) struct Timers<K> {
    /// Every time below `base` has been taken; slot `t mod SLOTS` holds
    /// the keys for `t` in `[base, base + SLOTS)`.
    base: EventTime,
    slots: Vec<Vec<K>>,
    /// Keys in the slots.
    in_slots: usize,
    /// Times outside the ring's range.
    far: BTreeMap<EventTime, Vec<K>>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            base: EventTime::MIN,
            slots: Vec::new(),
            in_slots: 0,
            far: BTreeMap::new(),
        }
    }
}

fn slot(time: EventTime) -> usize {
    time.rem_euclid(SLOTS as i64) as usize
}

impl<K> Timers<K> {
    fn in_ring(&self, time: EventTime) -> bool {
        time >= self.base
            && time
                .checked_sub(self.base)
                .is_some_and(|d| d < SLOTS as i64)
    }

    /// Wakes `key` when the watermark reaches `time`.
    pub(crate) fn push(&mut self, time: EventTime, key: K) {
        if self.in_ring(time) {
            if self.slots.is_empty() {
                self.slots.resize_with(SLOTS, Vec::new);
            }
            self.slots[slot(time)].push(key);
            self.in_slots += 1;
        } else {
            self.far.entry(time).or_default().push(key);
        }
    }

    /// Appends to `out` the keys of every time at or below `upto`, in time
    /// order, and removes them; `order` is given each time's keys (to sort
    /// them, say) once they are in `out`.
    pub(crate) fn take_due(
        &mut self,
        upto: EventTime,
        out: &mut Vec<K>,
        mut order: impl FnMut(&mut [K]),
    ) {
        // The ring's times still to look at: [t, ring_end].
        let ring_end = self.base.saturating_add(SLOTS as i64 - 1).min(upto);
        let mut next_ring = (self.base <= ring_end).then_some(self.base);
        // Far times and ring times merged by time (a time can have keys in
        // both: pushed when it was beyond the ring, reached by it since).
        loop {
            let far_time = self
                .far
                .first_key_value()
                .map(|(t, _)| *t)
                .filter(|t| *t <= upto);
            let ring_time = if self.in_slots == 0 {
                None
            } else {
                let mut found = None;
                while let Some(t) = next_ring {
                    if far_time.is_some_and(|f| f < t) {
                        break;
                    }
                    if !self.slots[slot(t)].is_empty() {
                        found = Some(t);
                        break;
                    }
                    next_ring = t.checked_add(1).filter(|n| *n <= ring_end);
                }
                found
            };
            let time = match (far_time, ring_time) {
                (None, None) => break,
                (Some(f), None) => f,
                (None, Some(r)) => r,
                (Some(f), Some(r)) => f.min(r),
            };
            let from = out.len();
            if far_time == Some(time) {
                if let Some(mut keys) = self.far.remove(&time) {
                    out.append(&mut keys);
                }
            }
            if ring_time == Some(time) {
                let keys = &mut self.slots[slot(time)];
                self.in_slots -= keys.len();
                out.append(keys);
                if keys.capacity() > SLOT_KEEP {
                    // A window end waking every key: do not keep its room
                    // in a slot that may next serve a handful.
                    *keys = Vec::new();
                }
                next_ring = time.checked_add(1).filter(|n| *n <= ring_end);
            }
            order(&mut out[from..]);
        }
        if upto >= self.base {
            // Every ring time up to `upto` is empty now; later ones keep
            // their slots (the same modulo SLOTS in the moved ring).
            self.base = upto.saturating_add(1);
        }
    }
}

impl<K> Timers<K> {
    /// Every entry, in time order (for snapshots).
    pub(crate) fn entries(&self) -> BTreeMap<EventTime, Vec<&K>> {
        let mut all: BTreeMap<EventTime, Vec<&K>> = BTreeMap::new();
        for (time, keys) in &self.far {
            all.entry(*time).or_default().extend(keys);
        }
        if self.in_slots > 0 {
            for offset in 0..SLOTS as i64 {
                let Some(time) = self.base.checked_add(offset) else {
                    break;
                };
                let keys = &self.slots[slot(time)];
                if !keys.is_empty() {
                    all.entry(time).or_default().extend(keys);
                }
            }
        }
        all
    }
}

impl<K: Serialize> Serialize for Timers<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries().serialize(s)
    }
}

impl<'de, K: Deserialize<'de>> Deserialize<'de> for Timers<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let far = BTreeMap::<EventTime, Vec<K>>::deserialize(d)?;
        Ok(Timers {
            far,
            ..Timers::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Push(i64, u8),
        Take(i64, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (-10i64..20_000, any::<u8>()).prop_map(|(t, k)| Op::Push(t, k)),
            1 => (-10i64..25_000, any::<bool>()).prop_map(|(t, s)| Op::Take(t, s)),
        ]
    }

    proptest! {
        /// Behaves as an ordered map of time → keys.
        #[test]
        fn behaves_as_an_ordered_map(ops in prop::collection::vec(op(), 0..200)) {
            let mut timers: Timers<u8> = Timers::default();
            let mut model: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Push(t, k) => {
                        timers.push(t, k);
                        model.entry(t).or_default().push(k);
                    }
                    Op::Take(upto, sorted) => {
                        let mut got = Vec::new();
                        timers.take_due(upto, &mut got, |run| {
                            if sorted {
                                run.sort_unstable();
                            }
                        });
                        let rest = model.split_off(&upto.saturating_add(1));
                        let mut want = Vec::new();
                        for (_, mut keys) in std::mem::replace(&mut model, rest) {
                            if sorted {
                                keys.sort_unstable();
                            }
                            want.extend(keys);
                        }
                        prop_assert_eq!(got, want);
                    }
                }
                let entries: BTreeMap<i64, Vec<u8>> = timers
                    .entries()
                    .into_iter()
                    .map(|(t, ks)| (t, ks.into_iter().copied().collect()))
                    .collect();
                prop_assert_eq!(&entries, &model);
            }
            let bytes = postcard::to_allocvec(&timers).unwrap();
            let back: Timers<u8> = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back.entries(), timers.entries());
        }
    }
}
