//! The key map and timer queue both stores keep, and the one timer-driven
//! advance loop over them.
//!
//! Keys are interned: each key with state holds a slot in a dense slab,
//! addressed by a 4-byte [`Id`], and a hash index maps a key to its slot.
//! A record costs one hash probe; everything after it (timers, the windows
//! a step touched, the keys an advance fires) refers to the key by id, so
//! firing a key is an index into the slab, not a probe, and a timer entry
//! is 4 bytes instead of a key.
//!
//! Every key's state records when it next needs attention (a fire or a
//! drop), its *wake* time, and the queue holds an entry for the key's id at
//! that time. Entries are never removed but go stale when the key's wake
//! time moves, or when its key is removed and the slot freed or reused: an
//! advance takes the entries the watermark has reached and skips those
//! whose slot is vacant or whose state's wake time is not due. (A stale
//! entry reaching a reused slot whose key *is* due settles that key early
//! in the same advance, which changes nothing: keys settle independently
//! and the fires of an advance are sorted into canonical order.)

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::emit::sort_fires;
use crate::change::Change;
use crate::key::WindowKey;
use crate::time::{EventTime, MaybeTime};
use crate::timers::Timers;

/// A key's slot in a [`KeyMap`]: dense, reused after the key is removed.
pub(super) type Id = u32;

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

#[inline]
fn hash_of<K: Hash>(key: &K) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// Makes sure `queue` wakes key `id` by `want`: enqueues it when that is
/// earlier than the wake time already queued (later entries go stale).
#[inline]
pub(super) fn wake_by<S: KeyState>(
    queue: &mut Timers<Id>,
    id: Id,
    state: &mut S,
    want: Option<EventTime>,
) {
    if let Some(want) = want {
        let wake = state.wake();
        if wake.get().is_none_or(|w| want < w) {
            *wake = MaybeTime::some(want);
            queue.push(want, id);
        }
    }
}

/// How many keys ahead an advance reads the slot of the key it will settle.
const TOUCH_AHEAD: usize = 4;

/// Sorts the ids `run` by their keys: by order prefix, whole keys compared
/// only where prefixes tie, so most comparisons are an integer compare that
/// touches no slot. A vacant slot sorts first (its entry is stale).
fn sort_by_key<K: WindowKey, S>(map: &KeyMap<K, S>, run: &mut [Id], ranked: &mut Vec<(u64, Id)>) {
    ranked.clear();
    ranked.extend(
        run.iter()
            .map(|&id| (map.key(id).map_or(0, WindowKey::order_prefix), id)),
    );
    ranked.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| map.key(a.1).cmp(&map.key(b.1))));
    for (slot, (_, id)) in run.iter_mut().zip(ranked.iter()) {
        *slot = *id;
    }
}

/// Keys and their states in a slab of slots, with a hash index from key to
/// slot.
#[derive(Clone)]
pub(super) struct KeyMap<K, S> {
    /// Ids of the occupied slots, hashed by their slot's key.
    index: HashTable<Id>,
    /// `None` for a vacant slot (listed in `free`).
    slots: Vec<Option<(K, S)>>,
    /// Vacant slots, the most recently freed last.
    free: Vec<Id>,
    /// Occupied slots.
    len: usize,
}

impl<K, S> Default for KeyMap<K, S> {
    fn default() -> Self {
        KeyMap {
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Hash + Eq, S> KeyMap<K, S> {
    /// Keys with state.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The slot of `key`, if it has one.
    fn find(&self, key: &K) -> Option<Id> {
        let slots = &self.slots;
        self.index
            .find(hash_of(key), |&id| {
                slots[id as usize].as_ref().is_some_and(|(k, _)| k == key)
            })
            .copied()
    }

    /// Puts `key` (not in the map) with `state` in a slot.
    fn insert_new(&mut self, hash: u64, key: K, state: S) -> Id {
        let KeyMap {
            index,
            slots,
            free,
            len,
        } = self;
        let id = match free.pop() {
            Some(id) => {
                slots[id as usize] = Some((key, state));
                id
            }
            None => {
                // A worker holding 2^32 keys would need hundreds of GiB.
                let id = Id::try_from(slots.len()).expect("fewer than 2^32 keys per worker");
                slots.push(Some((key, state)));
                id
            }
        };
        index.insert_unique(hash, id, |&i| {
            slots[i as usize].as_ref().map_or(0, |(k, _)| hash_of(k))
        });
        *len += 1;
        id
    }

    /// The slot of `key` and its key and state, made with a default state
    /// if the key had none. Takes the key by value: it is kept only when it
    /// is new.
    #[inline]
    pub(super) fn entry(&mut self, key: K) -> (Id, &K, &mut S)
    where
        S: Default,
    {
        let hash = hash_of(&key);
        let found = {
            let slots = &self.slots;
            self.index
                .find(hash, |&id| {
                    slots[id as usize].as_ref().is_some_and(|(k, _)| *k == key)
                })
                .copied()
        };
        let id = match found {
            Some(id) => id,
            None => self.insert_new(hash, key, S::default()),
        };
        match &mut self.slots[id as usize] {
            Some((k, s)) => (id, &*k, s),
            None => unreachable!("an indexed slot is occupied"),
        }
    }

    /// The key and state in slot `id`, if it is occupied.
    #[inline]
    pub(super) fn get_mut(&mut self, id: Id) -> Option<(&K, &mut S)> {
        match self.slots.get_mut(id as usize) {
            Some(Some((k, s))) => Some((&*k, s)),
            _ => None,
        }
    }

    /// Reads slot `id` and lets the result go: a load of a slot the loop
    /// will reach a few keys later, issued early so that its cache miss
    /// overlaps the work on the keys before it (a prefetch in safe code).
    #[inline]
    fn touch(&self, id: Id) {
        std::hint::black_box(self.slots.get(id as usize).map(Option::is_some));
    }

    /// The key in slot `id`, if it is occupied.
    #[inline]
    fn key(&self, id: Id) -> Option<&K> {
        self.slots.get(id as usize)?.as_ref().map(|(k, _)| k)
    }

    /// Removes the key in slot `id` (if any) and frees the slot.
    pub(super) fn remove(&mut self, id: Id) {
        let Some(Some((key, _))) = self.slots.get(id as usize) else {
            return;
        };
        if let Ok(entry) = self.index.find_entry(hash_of(key), |&i| i == id) {
            entry.remove();
        }
        self.slots[id as usize] = None;
        self.free.push(id);
        self.len -= 1;
    }

    /// Keeps only the keys for which `keep` holds.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        for id in 0..self.slots.len() {
            if self.slots[id].as_ref().is_some_and(|(k, _)| !keep(k)) {
                self.remove(id as Id);
            }
        }
    }

    /// Every key and its state, in slot order.
    fn iter(&self) -> impl Iterator<Item = (&K, &S)> {
        self.slots.iter().flatten().map(|(k, s)| (k, s))
    }
}

/// Per-key state and the queue that says when to look at each key.
///
/// Serialises as two fields in order: `keys`, the map key → state, and
/// `queue`, the map time → keys (by key, not id), so a store that embeds it
/// after its own fields keeps a flat wire form that does not depend on slot
/// numbering.
#[derive(Clone)]
pub(super) struct Keyed<K, S> {
    pub(super) map: KeyMap<K, S>,
    /// Time → ids of the keys to look at when the watermark reaches it.
    pub(super) queue: Timers<Id>,
    /// Ids taken from the queue by the current advance (kept for its
    /// capacity).
    due: Vec<Id>,
    /// (order prefix, id) of the keys of one time, to sort them (kept for
    /// its capacity).
    ranked: Vec<(u64, Id)>,
}

impl<K, S> Default for Keyed<K, S> {
    fn default() -> Self {
        Keyed {
            map: KeyMap::default(),
            queue: Timers::default(),
            due: Vec::new(),
            ranked: Vec::new(),
        }
    }
}

/// The keys of a [`Keyed`] map as the serialised map key → state.
struct KeysRef<'a, K, S>(&'a KeyMap<K, S>);

impl<K: Serialize + Hash + Eq, S: Serialize> Serialize for KeysRef<'_, K, S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, state) in self.0.iter() {
            map.serialize_entry(k, state)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(bound(serialize = "K: Serialize + Hash + Eq, S: Serialize"))]
struct KeyedRef<'a, K, S> {
    keys: KeysRef<'a, K, S>,
    queue: BTreeMap<EventTime, Vec<&'a K>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de> + Eq + Hash, S: Deserialize<'de>"))]
struct KeyedWire<K, S> {
    keys: FxHashMap<K, S>,
    queue: BTreeMap<EventTime, Vec<K>>,
}

impl<K: Serialize + Hash + Eq, S: Serialize> Serialize for Keyed<K, S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        let mut queue: BTreeMap<EventTime, Vec<&K>> = BTreeMap::new();
        for (time, ids) in self.queue.entries() {
            let keys: Vec<&K> = ids.into_iter().filter_map(|&id| self.map.key(id)).collect();
            if !keys.is_empty() {
                queue.insert(time, keys);
            }
        }
        KeyedRef {
            keys: KeysRef(&self.map),
            queue,
        }
        .serialize(s)
    }
}

impl<'de, K: Deserialize<'de> + Hash + Eq, S: Deserialize<'de>> Deserialize<'de> for Keyed<K, S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = KeyedWire::<K, S>::deserialize(d)?;
        let mut keyed = Keyed::default();
        for (k, state) in wire.keys {
            let hash = hash_of(&k);
            keyed.map.insert_new(hash, k, state);
        }
        for (time, keys) in wire.queue {
            for k in keys {
                if let Some(id) = keyed.map.find(&k) {
                    keyed.queue.push(time, id);
                }
            }
        }
        Ok(keyed)
    }
}

impl<K: WindowKey, S: KeyState> Keyed<K, S> {
    /// Moves every key of `other` (and its timers) into `self`; returns a
    /// key the two have in common instead, changing nothing.
    pub(super) fn absorb(&mut self, other: Keyed<K, S>) -> Result<(), K> {
        if let Some((k, _)) = other.map.iter().find(|(k, _)| self.map.find(k).is_some()) {
            return Err(k.clone());
        }
        let entries = other.queue.entries();
        let mut moved: Vec<Option<Id>> = vec![None; other.map.slots.len()];
        for (old, slot) in other.map.slots.into_iter().enumerate() {
            if let Some((k, state)) = slot {
                let hash = hash_of(&k);
                moved[old] = Some(self.map.insert_new(hash, k, state));
            }
        }
        for (time, ids) in entries {
            for &old in ids {
                if let Some(Some(id)) = moved.get(old as usize) {
                    self.queue.push(time, *id);
                }
            }
        }
        Ok(())
    }

    /// The earliest end of a window the watermark `w` has not passed, over
    /// all keys, and how many keys have a window ending then.
    pub(super) fn oldest_open(&self, w: EventTime) -> Option<(EventTime, usize)> {
        let mut oldest: Option<(EventTime, usize)> = None;
        for (_, state) in self.map.iter() {
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
        self.map.iter().map(|(_, s)| s.open_states()).sum()
    }

    /// The advance loop: takes every key whose wake time the watermark `w`
    /// has reached, in time order (each time's keys sorted by key when
    /// `sorted`), and lets `settle` fire and drop what it must, pushing its
    /// fires to `out`. A key left empty is removed; the others are queued
    /// again at the time `desired_wake` asks for. The fires of this advance
    /// are then sorted into canonical order.
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
        let map = &self.map;
        let ranked = &mut self.ranked;
        self.queue.take_due(w, &mut due, |run| {
            if sorted && run.len() > 1 {
                sort_by_key(map, run, ranked);
            }
        });
        for i in 0..due.len() {
            if let Some(&ahead) = due.get(i + TOUCH_AHEAD) {
                self.map.touch(ahead);
            }
            let id = due[i];
            let Some((key, state)) = self.map.get_mut(id) else {
                continue; // stale: the key was removed
            };
            let wake = state.wake();
            if wake.get().is_none_or(|wake| wake > w) {
                continue; // stale, or already settled in this advance
            }
            *wake = MaybeTime::NONE;
            settle(key, state, out);
            if state.is_empty() {
                self.map.remove(id);
            } else {
                let want = desired_wake(state);
                wake_by(&mut self.queue, id, state, want);
            }
        }
        due.clear();
        self.due = due;
        sort_fires(&mut out[first_fire..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Behaves as a hash map, whatever the order of inserts and
        /// removals (slots are reused), and its serialised form round-trips.
        #[test]
        fn key_map_behaves_as_a_map(ops in prop::collection::vec((any::<bool>(), 0u8..40, any::<u16>()), 0..300)) {
            let mut map: KeyMap<u8, u16> = KeyMap::default();
            let mut model: BTreeMap<u8, u16> = BTreeMap::new();
            for (insert, k, v) in ops {
                if insert {
                    let (id, key, state) = map.entry(k);
                    prop_assert_eq!(*key, k);
                    *state = v;
                    model.insert(k, v);
                    prop_assert_eq!(map.key(id), Some(&k));
                } else if let Some(id) = map.find(&k) {
                    map.remove(id);
                    prop_assert!(model.remove(&k).is_some());
                } else {
                    prop_assert!(!model.contains_key(&k));
                }
                prop_assert_eq!(map.len(), model.len());
                let mut got: Vec<(u8, u16)> = map.iter().map(|(k, s)| (*k, *s)).collect();
                got.sort_unstable();
                let want: Vec<(u8, u16)> = model.iter().map(|(k, s)| (*k, *s)).collect();
                prop_assert_eq!(got, want);
            }
            let mut keep_even = map.clone();
            keep_even.retain(|k| k % 2 == 0);
            for k in 0..40u8 {
                prop_assert_eq!(keep_even.find(&k).is_some(), k % 2 == 0 && model.contains_key(&k));
            }
        }
    }
}
