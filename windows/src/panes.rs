//! The pane list of one key for fixed windows: sorted `(pane start,
//! accumulator)` pairs with the newest pane stored inline and the older ones
//! on the heap.
//!
//! Records mostly land in the newest pane, so the per-record path reaches
//! its accumulator in the key's own entry, without following a pointer,
//! however many panes a sliding window keeps open. Behaves as a sorted
//! `Vec` (tested against one) and serialises as a plain sequence.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thin_vec::ThinVec;

use crate::time::EventTime;

/// Sorted panes: the newest inline, the older ones in `older[head..]`.
/// When `newest` is `None`, there is no older pane either.
#[derive(Clone, Debug)]
pub(crate) struct Panes<Acc> {
    /// One pointer wide: the length and capacity live on the heap with the
    /// panes, so a key with one pane carries 8 bytes for the rest.
    older: ThinVec<(EventTime, Acc)>,
    /// Panes dropped from the front but not yet moved out: dropping the
    /// oldest pane is O(1), and the vector is compacted once half of it is
    /// dropped (amortised O(1) per pane, whatever `size / slide` is).
    head: u32,
    newest: Option<(EventTime, Acc)>,
}

impl<Acc> Default for Panes<Acc> {
    fn default() -> Self {
        Panes {
            older: ThinVec::new(),
            head: 0,
            newest: None,
        }
    }
}

impl<Acc> Panes<Acc> {
    /// The older panes still kept, oldest first.
    #[inline]
    fn live(&self) -> &[(EventTime, Acc)] {
        &self.older[self.head as usize..]
    }

    /// Number of panes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.live().len() + usize::from(self.newest.is_some())
    }

    /// Whether there is no pane.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.newest.is_none()
    }

    /// The pane at `i`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&(EventTime, Acc)> {
        let live = self.live();
        match i.cmp(&live.len()) {
            std::cmp::Ordering::Less => live.get(i),
            std::cmp::Ordering::Equal => self.newest.as_ref(),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The pane at `i`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut (EventTime, Acc)> {
        let head = self.head as usize;
        match i.cmp(&(self.older.len() - head)) {
            std::cmp::Ordering::Less => self.older.get_mut(head + i),
            std::cmp::Ordering::Equal => self.newest.as_mut(),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The oldest pane.
    #[inline]
    pub(crate) fn first(&self) -> Option<&(EventTime, Acc)> {
        self.get(0)
    }

    /// The newest pane, mutably.
    #[inline]
    pub(crate) fn last_mut(&mut self) -> Option<&mut (EventTime, Acc)> {
        self.newest.as_mut()
    }

    /// The index of the first pane for which `pred` is false (`pred` must
    /// hold for a prefix), as `slice::partition_point`.
    #[inline]
    pub(crate) fn partition_point(&self, mut pred: impl FnMut(&(EventTime, Acc)) -> bool) -> usize {
        let live = self.live();
        let i = live.partition_point(&mut pred);
        if i < live.len() {
            return i;
        }
        i + usize::from(self.newest.as_ref().is_some_and(pred))
    }

    /// As [`partition_point`](Self::partition_point), searching from the
    /// oldest pane outwards (galloping): O(log d) for an answer d panes from
    /// the front, so the fire path does not binary-search a thousand cold
    /// panes for an answer near one end.
    #[inline]
    pub(crate) fn partition_point_front(
        &self,
        mut pred: impl FnMut(&(EventTime, Acc)) -> bool,
    ) -> usize {
        let live = self.live();
        let mut hi = 1;
        while hi <= live.len() && pred(&live[hi - 1]) {
            hi *= 2;
        }
        // pred holds below hi / 2 and fails at hi - 1 (or hi is past the end).
        let lo = hi / 2;
        let hi = hi.min(live.len());
        let i = lo + live[lo..hi].partition_point(&mut pred);
        if i < live.len() {
            return i;
        }
        i + usize::from(self.newest.as_ref().is_some_and(pred))
    }

    /// As [`partition_point`](Self::partition_point), searching from the
    /// newest pane backwards (galloping): O(log d) for an answer d panes
    /// from the back (where new records and fires mostly are).
    #[inline]
    pub(crate) fn partition_point_back(
        &self,
        mut pred: impl FnMut(&(EventTime, Acc)) -> bool,
    ) -> usize {
        let live = self.live();
        match &self.newest {
            None => return 0,
            Some(newest) if pred(newest) => return live.len() + 1,
            Some(_) => {}
        }
        // pred fails at the newest; find the boundary in `live`.
        let n = live.len();
        let mut step = 1;
        let mut hi = n; // pred fails at hi (or hi == n)
        loop {
            let probe = n.saturating_sub(step);
            if probe == 0 || pred(&live[probe]) {
                let lo = probe;
                return lo + live[lo..hi].partition_point(&mut pred);
            }
            hi = probe;
            step *= 2;
        }
    }

    /// Inserts `pane` at `i` (`i <= len`), keeping the newest inline.
    pub(crate) fn insert(&mut self, i: usize, pane: (EventTime, Acc)) {
        if i >= self.len() {
            if let Some(previous) = self.newest.replace(pane) {
                self.older.push(previous);
            }
        } else {
            self.older.insert(self.head as usize + i, pane);
        }
    }

    /// Removes the `n` oldest panes.
    pub(crate) fn drain_front(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if n >= self.len() {
            self.older.clear();
            self.head = 0;
            self.newest = None;
            return;
        }
        // n < len, so the panes dropped are all in `older`.
        let head = self.head as usize + n;
        if head * 2 >= self.older.len() || head > u32::MAX as usize / 2 {
            self.older.drain(..head);
            self.head = 0;
        } else {
            self.head = head as u32;
        }
    }

    /// The panes in `range`, oldest first.
    pub(crate) fn range(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl DoubleEndedIterator<Item = &(EventTime, Acc)> {
        let live = self.live();
        let n = live.len();
        let older = &live[range.start.min(n)..range.end.min(n)];
        let newest = self
            .newest
            .as_ref()
            .filter(|_| range.start <= n && n < range.end);
        older.iter().chain(newest)
    }

    /// All panes, oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &(EventTime, Acc)> {
        self.live().iter().chain(self.newest.as_ref())
    }
}

impl<Acc: Serialize> Serialize for Panes<Acc> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de, Acc: Deserialize<'de>> Deserialize<'de> for Panes<Acc> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut all = Vec::<(EventTime, Acc)>::deserialize(d)?;
        let newest = all.pop();
        Ok(Panes {
            older: all.into_iter().collect(),
            head: 0,
            newest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// Insert at a sorted position a pane with this start.
        Insert(i64),
        /// Add to the pane with this index (modulo the length).
        Bump(usize),
        /// Drop this many oldest panes.
        Drain(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0i64..40).prop_map(Op::Insert),
            (0usize..8).prop_map(Op::Bump),
            (0usize..4).prop_map(Op::Drain),
        ]
    }

    proptest! {
        /// Every operation the window state uses agrees with a sorted Vec.
        #[test]
        fn behaves_as_a_sorted_vec(ops in prop::collection::vec(op(), 0..60)) {
            let mut panes: Panes<u32> = Panes::default();
            let mut model: Vec<(i64, u32)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(start) => {
                        let i = model.partition_point(|(s, _)| *s < start);
                        prop_assert_eq!(panes.partition_point(|(s, _)| *s < start), i);
                        prop_assert_eq!(panes.partition_point_front(|(s, _)| *s < start), i);
                        prop_assert_eq!(panes.partition_point_back(|(s, _)| *s < start), i);
                        if model.get(i).is_none_or(|(s, _)| *s != start) {
                            model.insert(i, (start, 1));
                            panes.insert(i, (start, 1));
                        }
                    }
                    Op::Bump(i) if !model.is_empty() => {
                        let i = i % model.len();
                        model[i].1 += 1;
                        if i + 1 == model.len() {
                            panes.last_mut().unwrap().1 += 1;
                        } else {
                            panes.get_mut(i).unwrap().1 += 1;
                        }
                    }
                    Op::Bump(_) => prop_assert!(panes.last_mut().is_none()),
                    Op::Drain(n) => {
                        model.drain(..n.min(model.len()));
                        panes.drain_front(n);
                    }
                }
                prop_assert_eq!(panes.len(), model.len());
                prop_assert_eq!(panes.is_empty(), model.is_empty());
                prop_assert_eq!(panes.first(), model.first());
                let all: Vec<_> = panes.iter().cloned().collect();
                prop_assert_eq!(&all, &model);
                for a in 0..=model.len() {
                    for b in a..=model.len() {
                        let got: Vec<_> = panes.range(a..b).rev().cloned().collect();
                        let want: Vec<_> = model[a..b].iter().rev().cloned().collect();
                        prop_assert_eq!(got, want);
                    }
                }
                for i in 0..=model.len() {
                    prop_assert_eq!(panes.get(i), model.get(i));
                }
                let bytes = postcard::to_allocvec(&panes).unwrap();
                prop_assert_eq!(&bytes, &postcard::to_allocvec(&model).unwrap());
                let back: Panes<u32> = postcard::from_bytes(&bytes).unwrap();
                prop_assert_eq!(back.iter().cloned().collect::<Vec<_>>(), model.clone());
            }
        }
    }
}
