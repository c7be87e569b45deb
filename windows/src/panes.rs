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

/// Sorted panes: the newest inline, the older ones in `older`. When
/// `newest` is `None`, `older` is empty.
#[derive(Clone, Debug)]
pub(crate) struct Panes<Acc> {
    /// One pointer wide: the length and capacity live on the heap with the
    /// panes, so a key with one pane carries 8 bytes for the rest.
    older: ThinVec<(EventTime, Acc)>,
    newest: Option<(EventTime, Acc)>,
}

impl<Acc> Default for Panes<Acc> {
    fn default() -> Self {
        Panes {
            older: ThinVec::new(),
            newest: None,
        }
    }
}

impl<Acc> Panes<Acc> {
    /// Number of panes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.older.len() + usize::from(self.newest.is_some())
    }

    /// Whether there is no pane.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.newest.is_none()
    }

    /// The pane at `i`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&(EventTime, Acc)> {
        match i.cmp(&self.older.len()) {
            std::cmp::Ordering::Less => self.older.get(i),
            std::cmp::Ordering::Equal => self.newest.as_ref(),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The pane at `i`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut (EventTime, Acc)> {
        match i.cmp(&self.older.len()) {
            std::cmp::Ordering::Less => self.older.get_mut(i),
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
        let i = self.older.partition_point(&mut pred);
        if i < self.older.len() {
            return i;
        }
        i + usize::from(self.newest.as_ref().is_some_and(pred))
    }

    /// Inserts `pane` at `i` (`i <= len`), keeping the newest inline.
    pub(crate) fn insert(&mut self, i: usize, pane: (EventTime, Acc)) {
        if i >= self.len() {
            if let Some(previous) = self.newest.replace(pane) {
                self.older.push(previous);
            }
        } else {
            self.older.insert(i, pane);
        }
    }

    /// Removes the `n` oldest panes.
    pub(crate) fn drain_front(&mut self, n: usize) {
        if n >= self.len() {
            self.older.clear();
            self.newest = None;
        } else {
            self.older.drain(..n);
        }
    }

    /// The panes in `range`, oldest first.
    pub(crate) fn range(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl DoubleEndedIterator<Item = &(EventTime, Acc)> {
        let n = self.older.len();
        let older = &self.older[range.start.min(n)..range.end.min(n)];
        let newest = self
            .newest
            .as_ref()
            .filter(|_| range.start <= n && n < range.end);
        older.iter().chain(newest)
    }

    /// All panes, oldest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &(EventTime, Acc)> {
        self.older.iter().chain(self.newest.as_ref())
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
