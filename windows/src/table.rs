//! The versioned table of an entity stream: per key, its versions ordered by
//! (event time, event order), the acceptance rule a table record passes
//! before it enters ([`accepts`], rule T1), the as-of lookup
//! ([`VersionedTable::lookup`], rule T2) and retention at a horizon
//! ([`VersionedTable::trim`], rule R1).
//!
//! A version is never taken back: a later record of the same key adds a
//! version at its own event time, and a tombstone (a version without
//! fields) deletes the key from its event time on. Event times inside a
//! table partition may run backwards, so a version can land anywhere in its
//! key's list; the list is kept sorted and searched by binary search.
//!
//! ```
//! use tidemark_windows::table::{accepts, VersionedTable};
//!
//! let mut users: VersionedTable<String, &str> = VersionedTable::new();
//! // (stream time, input rank, partition, offset): the event order ≺.
//! users.insert("u1".into(), 100, (100, 0, 0, 0), Some("FR"));
//! users.insert("u1".into(), 300, (300, 0, 0, 1), Some("DE"));
//! users.insert("u1".into(), 500, (500, 0, 0, 2), None); // deleted at 500
//! assert_eq!(users.lookup("u1", 99), None);
//! assert_eq!(users.lookup("u1", 299), Some(&"FR"));
//! assert_eq!(users.lookup("u1", 300), Some(&"DE"));
//! assert_eq!(users.lookup("u1", 700), None);
//! // Stream time 1 000, delay 200, no lateness: a record at 799 is too late.
//! assert!(accepts(800, 800, 0));
//! assert!(!accepts(800, 799, 0));
//! ```

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::BinaryHeap;
use std::hash::Hash;
use std::mem::size_of;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::time::EventTime;

/// ≺, the event order of a table record: (its partition's stream time
/// s(c), input rank, partition, offset).
pub type UpdateOrder = (EventTime, u32, u32, u64);

/// T1: whether a table record is accepted. `watermark` is w(c) = s(c) − D_T
/// (the record's partition stream time minus the table's delay), `time`
/// its event time t(c) and `lateness` the table's allowed lateness L_T.
///
/// Accepted iff w(c) < t(c) + 1 + L_T. The sum is computed exactly (in
/// 128 bits), so the answer is the literal one for every `i64` input and
/// nothing overflows.
///
/// ```
/// use tidemark_windows::table::accepts;
/// assert!(accepts(1_000, 1_000, 0)); // at the watermark: on time
/// assert!(!accepts(1_000, 999, 0)); // below it: too late
/// assert!(accepts(1_000, 990, 10)); // … unless the lateness covers it
/// assert!(accepts(i64::MAX, i64::MAX, i64::MAX));
/// ```
pub fn accepts(watermark: EventTime, time: EventTime, lateness: EventTime) -> bool {
    i128::from(watermark) < i128::from(time) + 1 + i128::from(lateness)
}

/// One version of a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version<F> {
    /// The event time t(c) from which the version holds.
    pub time: EventTime,
    /// The record's place in event order, which breaks ties at equal time.
    pub order: UpdateOrder,
    /// The attached fields; `None` is a tombstone.
    pub fields: Option<F>,
}

/// The number of keys and versions a table holds
/// ([`VersionedTable::size`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSize {
    /// Keys with at least one version.
    pub keys: u64,
    /// Versions over all keys.
    pub versions: u64,
    /// The largest number of versions one key has held at any moment since
    /// the table was created (hot keys accumulate versions).
    pub peak_versions: u64,
}

/// The versions of one key, sorted by (time, order). Most keys hold one.
type Versions<F> = SmallVec<[Version<F>; 1]>;

/// A key that a trim at any horizon ≥ `time` would shorten: its first
/// version is a tombstone at `time`, or its second version is at `time`.
/// Ordered so that a [`BinaryHeap`] pops the earliest first.
#[derive(Clone, Debug)]
struct Due<K> {
    time: EventTime,
    key: K,
}

impl<K> PartialEq for Due<K> {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time
    }
}

impl<K> Eq for Due<K> {}

impl<K> PartialOrd for Due<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> Ord for Due<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the heap's greatest is the earliest time.
        other.time.cmp(&self.time)
    }
}

/// The smallest horizon at which a trim would change these versions: the
/// time of a leading tombstone, else the time of the second version; none
/// for a single live version.
fn due_time<F>(versions: &[Version<F>]) -> Option<EventTime> {
    match versions {
        [first, ..] if first.fields.is_none() => Some(first.time),
        [_, second, ..] => Some(second.time),
        _ => None,
    }
}

/// Applies R1 at horizon `h` to one key's versions; returns how many were
/// dropped.
fn trim_versions<F>(versions: &mut Versions<F>, h: EventTime) -> usize {
    let at_or_before = versions.partition_point(|v| v.time <= h);
    let mut drop = at_or_before.saturating_sub(1);
    if at_or_before > 0 && versions[at_or_before - 1].fields.is_none() {
        drop = at_or_before;
    }
    if drop > 0 {
        versions.drain(..drop);
        if versions.spilled() && versions.len() <= versions.inline_size() {
            versions.shrink_to_fit();
        }
    }
    drop
}

/// A table of versioned keys: `key → [(time, order, Option<fields>)]`.
///
/// # Retention
///
/// [`VersionedTable::trim`] applies R1 at a horizon `h`; see there for the
/// caller's contract. To keep a trim with little to do cheap, the table
/// keeps a min-heap of the keys a trim could shorten, each under the
/// smallest horizon at which it would (its due time: the time of a leading
/// tombstone, else of the second version). An insert pushes an entry when
/// it changes its key's due time; entries made stale by later changes are
/// skipped when popped, and the heap is rebuilt from the keys when stale
/// entries outnumber the keys (an amortised O(1) per insert). A trim pops
/// only the entries due at or before `h`.
#[derive(Clone, Debug)]
pub struct VersionedTable<K, F> {
    keys: FxHashMap<K, Versions<F>>,
    due: BinaryHeap<Due<K>>,
    versions: u64,
    peak_versions: u64,
}

impl<K, F> Default for VersionedTable<K, F> {
    fn default() -> Self {
        VersionedTable {
            keys: FxHashMap::default(),
            due: BinaryHeap::new(),
            versions: 0,
            peak_versions: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, F: Clone> VersionedTable<K, F> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts an accepted record (the caller has checked [`accepts`]):
    /// the version of `key` from `time` on, `fields` `None` for a
    /// tombstone. The key's versions stay sorted by (time, order); a
    /// second insert at the same (time, order) replaces the first.
    ///
    /// Cost: a hash lookup, a binary search and a shift of the key's later
    /// versions, plus a heap push (O(log n)) when the key's due time for
    /// [`VersionedTable::trim`] changes.
    pub fn insert(&mut self, key: K, time: EventTime, order: UpdateOrder, fields: Option<F>) {
        let version = Version {
            time,
            order,
            fields,
        };
        let (len, due) = match self.keys.entry(key) {
            Entry::Occupied(mut entry) => {
                let versions = entry.get_mut();
                let before = due_time(versions);
                match versions.binary_search_by(|v| (v.time, v.order).cmp(&(time, order))) {
                    Ok(i) => versions[i] = version,
                    Err(i) => {
                        versions.insert(i, version);
                        self.versions += 1;
                    }
                }
                let after = due_time(versions);
                let len = versions.len();
                let due = after.filter(|_| after != before).map(|time| Due {
                    time,
                    key: entry.key().clone(),
                });
                (len, due)
            }
            Entry::Vacant(entry) => {
                let due = version.fields.is_none().then(|| Due {
                    time,
                    key: entry.key().clone(),
                });
                entry.insert(SmallVec::from_buf([version]));
                self.versions += 1;
                (1, due)
            }
        };
        self.peak_versions = self.peak_versions.max(len as u64);
        if let Some(due) = due {
            self.due.push(due);
            if self.due.len() > 2 * self.keys.len() + 16 {
                self.rebuild_due();
            }
        }
    }

    /// Rebuilds the heap of due keys from the keys themselves, dropping
    /// stale entries: O(keys).
    fn rebuild_due(&mut self) {
        let due: Vec<Due<K>> = self
            .keys
            .iter()
            .filter_map(|(key, versions)| {
                due_time(versions).map(|time| Due {
                    time,
                    key: key.clone(),
                })
            })
            .collect();
        self.due = BinaryHeap::from(due);
    }

    /// T2: V(k, t), the fields of `key`'s version greatest by (time,
    /// order) among those with time ≤ `time`; `None` when that version is
    /// a tombstone or there is none.
    pub fn lookup<Q>(&self, key: &Q, time: EventTime) -> Option<&F>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.version_at(key, time)?.fields.as_ref()
    }

    /// The version that answers [`VersionedTable::lookup`]: `Some` even
    /// when it is a tombstone, for callers that need to know which version
    /// answered (for instance, whether a correction changed it).
    pub fn version_at<Q>(&self, key: &Q, time: EventTime) -> Option<&Version<F>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let versions = self.keys.get(key)?;
        let at_or_before = versions.partition_point(|v| v.time <= time);
        at_or_before.checked_sub(1).map(|i| &versions[i])
    }

    /// Every version `key` holds, sorted by (time, order); empty for an
    /// unknown key.
    pub fn versions<Q>(&self, key: &Q) -> &[Version<F>]
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.keys.get(key).map_or(&[], |v| v.as_slice())
    }

    /// Every key with its versions, in no particular order (for dumping a
    /// table, not for results: the order is the hash map's).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &[Version<F>])> + '_ {
        self.keys.iter().map(|(k, v)| (k, v.as_slice()))
    }

    /// R1: retention at horizon `h`. Per key, keeps the versions with
    /// time > `h` plus the latest one with time ≤ `h`; then, if the first
    /// kept version is a tombstone with time ≤ `h`, drops it too; drops a
    /// key left with no version. Returns the number of versions dropped.
    ///
    /// # Contract
    ///
    /// The caller guarantees that no later [`VersionedTable::insert`] has
    /// a time ≤ `h` and no later lookup asks for a time < `h` (horizons
    /// may repeat or go back; a smaller one is a no-op). Then trimming
    /// never changes the answer of a lookup at any t ≥ `h`, before or after
    /// later inserts: a version at or before `h` that is not the latest
    /// such is hidden from every t ≥ `h` by that latest one, and a leading
    /// tombstone answers as no version does.
    ///
    /// # Cost
    ///
    /// O(1) when nothing is due (a peek at the heap of due keys), else
    /// O(log n) per due entry plus the versions dropped. Each key is
    /// trimmed completely when popped, so it comes back only after a later
    /// insert or a larger horizon.
    pub fn trim(&mut self, h: EventTime) -> usize {
        let mut dropped = 0;
        while self.due.peek().is_some_and(|d| d.time <= h) {
            let Some(Due { key, .. }) = self.due.pop() else {
                break;
            };
            let Some(versions) = self.keys.get_mut(&key) else {
                continue; // stale: the key is gone
            };
            if due_time(versions).is_none_or(|t| t > h) {
                continue; // stale: the key changed since the entry was pushed
            }
            let n = trim_versions(versions, h);
            dropped += n;
            self.versions -= n as u64;
            if versions.is_empty() {
                self.keys.remove(&key);
                continue;
            }
            // A key trimmed at h is due only after h; the guard keeps the
            // loop finite whatever happens.
            let next = due_time(versions);
            debug_assert!(next.is_none_or(|t| t > h), "trimmed key still due");
            if let Some(time) = next.filter(|&t| t > h) {
                self.due.push(Due { time, key });
            }
        }
        dropped
    }

    /// The number of keys and versions, and the peak versions of one key.
    pub fn size(&self) -> TableSize {
        TableSize {
            keys: self.keys.len() as u64,
            versions: self.versions,
            peak_versions: self.peak_versions,
        }
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A rough estimate of the heap bytes the table holds, in O(1): the
    /// hash map's slots at its capacity (key, inline version list and one
    /// control byte each), one [`Version`] per version beyond the first of
    /// each key (the versions of a key with several live on the heap), and
    /// the heap of due keys at its capacity. It does not follow pointers
    /// inside keys or fields (text bytes, vectors), and does not count the
    /// spare capacity of a key's version list.
    pub fn bytes_estimate(&self) -> usize {
        let slot = size_of::<K>() + size_of::<Versions<F>>() + 1;
        let beyond_first = self.versions.saturating_sub(self.keys.len() as u64) as usize;
        self.keys.capacity() * slot
            + beyond_first * size_of::<Version<F>>()
            + self.due.capacity() * size_of::<Due<K>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Table = VersionedTable<&'static str, u32>;

    fn order(s: EventTime, o: u64) -> UpdateOrder {
        (s, 0, 0, o)
    }

    /// Every key's versions, sorted by key, for comparing two tables.
    fn contents(t: &Table) -> Vec<(&'static str, Vec<Version<u32>>)> {
        let mut all: Vec<_> = t.iter().map(|(k, v)| (*k, v.to_vec())).collect();
        all.sort_by_key(|(k, _)| *k);
        all
    }

    #[test]
    fn insert_order_does_not_matter() {
        let records = [
            ("a", 10, order(10, 0), Some(1)),
            ("a", 5, order(10, 1), Some(2)),
            ("b", 7, order(12, 2), None),
            ("a", 20, order(20, 3), None),
            ("b", 3, order(20, 4), Some(3)),
            ("a", 5, order(20, 5), Some(4)),
        ];
        let mut forward = Table::new();
        for &(k, t, o, f) in &records {
            forward.insert(k, t, o, f);
        }
        let mut backward = Table::new();
        for &(k, t, o, f) in records.iter().rev() {
            backward.insert(k, t, o, f);
        }
        assert_eq!(contents(&forward), contents(&backward));
        for t in 0..25 {
            for k in ["a", "b", "c"] {
                assert_eq!(forward.lookup(k, t), backward.lookup(k, t), "{k} at {t}");
            }
        }
        assert_eq!(forward.lookup("a", 5), Some(&4));
        assert_eq!(forward.lookup("a", 12), Some(&1));
        assert_eq!(forward.size(), backward.size());
    }

    #[test]
    fn ties_at_equal_time_go_to_the_later_order() {
        let mut t = Table::new();
        t.insert("a", 10, (30, 0, 0, 9), Some(2));
        t.insert("a", 10, (20, 0, 1, 0), Some(1));
        t.insert("a", 10, (30, 0, 1, 0), Some(3));
        assert_eq!(t.lookup("a", 10), Some(&3));
        // The same (time, order) again replaces.
        t.insert("a", 10, (30, 0, 1, 0), Some(4));
        assert_eq!(t.lookup("a", 10), Some(&4));
        assert_eq!(t.size().versions, 3);
        // Input rank orders before partition.
        t.insert("a", 10, (30, 1, 0, 0), Some(5));
        assert_eq!(t.lookup("a", 10), Some(&5));
    }

    #[test]
    fn tombstones_delete_from_their_time_on() {
        let mut t = Table::new();
        t.insert("a", 10, order(10, 0), Some(1));
        t.insert("a", 20, order(20, 1), None);
        t.insert("a", 30, order(30, 2), Some(2));
        assert_eq!(t.lookup("a", 19), Some(&1));
        assert_eq!(t.lookup("a", 20), None);
        assert_eq!(t.version_at("a", 25).map(|v| v.fields), Some(None));
        assert_eq!(t.lookup("a", 30), Some(&2));
    }

    #[test]
    fn no_version_before_the_first() {
        let mut t = Table::new();
        t.insert("a", 10, order(10, 0), Some(1));
        assert_eq!(t.lookup("a", 9), None);
        assert_eq!(t.version_at("a", 9), None);
        assert_eq!(t.lookup("a", i64::MIN), None);
        assert_eq!(t.lookup("a", i64::MAX), Some(&1));
        assert_eq!(t.lookup("b", 10), None);
    }

    #[test]
    fn trim_keeps_the_latest_at_or_before_the_horizon() {
        let mut t = Table::new();
        for (i, time) in [10, 20, 30, 40].into_iter().enumerate() {
            t.insert("a", time, order(time, i as u64), Some(i as u32));
        }
        t.insert("b", 5, order(5, 9), Some(9));
        assert_eq!(t.trim(29), 1);
        let times: Vec<_> = t.versions("a").iter().map(|v| v.time).collect();
        assert_eq!(times, [20, 30, 40]);
        assert_eq!(t.lookup("a", 29), Some(&1));
        assert_eq!(t.lookup("b", 29), Some(&9));
        // Nothing due: a no-op, also for a smaller horizon.
        assert_eq!(t.trim(29), 0);
        assert_eq!(t.trim(0), 0);
        assert_eq!(t.trim(40), 2);
        assert_eq!(t.versions("a").len(), 1);
        assert_eq!(t.lookup("a", 40), Some(&3));
        assert_eq!(t.size().versions, 2);
        assert_eq!(t.size().keys, 2);
    }

    #[test]
    fn trim_drops_tombstones_and_empty_keys() {
        let mut t = Table::new();
        t.insert("a", 10, order(10, 0), Some(1));
        t.insert("a", 20, order(20, 1), None);
        t.insert("b", 10, order(10, 2), None);
        t.insert("b", 30, order(30, 3), Some(2));
        t.insert("c", 15, order(15, 4), None);
        assert_eq!(t.trim(19), 2); // b's leading tombstone, c's lone one
        assert_eq!(t.size().keys, 2);
        assert_eq!(t.versions("b").len(), 1);
        assert_eq!(t.trim(25), 2); // a's live version and its tombstone
        assert!(t.versions("a").is_empty());
        assert_eq!(t.versions("b").len(), 1);
        assert_eq!(t.lookup("b", 25), None);
        assert_eq!(t.lookup("b", 30), Some(&2));
        assert_eq!(
            t.size(),
            TableSize {
                keys: 1,
                versions: 1,
                peak_versions: 2
            }
        );
        // Inserts after the horizon go on as before.
        t.insert("a", 26, order(40, 5), Some(3));
        assert_eq!(t.lookup("a", 26), Some(&3));
        t.insert("b", 26, order(40, 6), None);
        assert_eq!(t.trim(27), 1);
        assert_eq!(t.lookup("b", 27), None);
        assert_eq!(t.lookup("b", 30), Some(&2));
    }

    #[test]
    fn a_key_becomes_due_again_after_an_insert() {
        let mut t = Table::new();
        t.insert("a", 10, order(10, 0), Some(1));
        assert_eq!(t.trim(100), 0);
        t.insert("a", 110, order(110, 1), Some(2));
        t.insert("a", 105, order(110, 2), Some(3));
        assert_eq!(t.trim(107), 1);
        assert_eq!(t.lookup("a", 107), Some(&3));
        // Replacing a lone tombstone by a live version at the same place
        // leaves a stale heap entry that the trim skips.
        t.insert("z", 200, order(200, 3), None);
        t.insert("z", 200, order(200, 3), Some(4));
        assert_eq!(t.trim(300), 1);
        assert_eq!(t.lookup("z", 300), Some(&4));
        assert_eq!(t.versions("a").len(), 1);
        assert_eq!(t.lookup("a", 300), Some(&2));
    }

    #[test]
    fn peak_versions_remember_the_largest_key() {
        let mut t = Table::new();
        for i in 0..5u32 {
            t.insert(
                "hot",
                i64::from(i),
                order(i64::from(i), u64::from(i)),
                Some(i),
            );
        }
        t.insert("cold", 1, order(1, 9), Some(0));
        assert_eq!(t.size().peak_versions, 5);
        t.trim(4);
        assert_eq!(t.size().versions, 2);
        assert_eq!(t.size().peak_versions, 5);
        assert!(t.bytes_estimate() > 0);
    }

    #[test]
    fn many_trims_with_nothing_due_stay_cheap_and_the_heap_stays_bounded() {
        let mut t: VersionedTable<u32, u32> = VersionedTable::new();
        for round in 0..50i64 {
            for k in 0..100u32 {
                let time = round * 10 + i64::from(k % 7);
                t.insert(
                    k,
                    time,
                    (time, 0, 0, u64::from(k)),
                    (k % 3 != 0).then_some(k),
                );
            }
            t.trim(round * 10 - 5);
            assert!(t.due.len() <= 2 * t.keys.len() + 16);
        }
        assert!(t.size().versions <= 300);
    }

    #[test]
    fn accepts_is_exact_at_the_extremes() {
        assert!(accepts(i64::MIN, i64::MIN, 0));
        assert!(!accepts(i64::MAX, i64::MIN, 0));
        assert!(accepts(i64::MAX, i64::MAX - 1, 1));
        assert!(!accepts(i64::MAX, i64::MAX - 2, 1));
        assert!(accepts(-1, i64::MIN, i64::MAX));
        assert!(!accepts(0, i64::MIN, i64::MAX));
    }
}
