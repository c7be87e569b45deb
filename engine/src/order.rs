//! Event order, without Timely: the k-way merges at the heart of the
//! determinism model.
//!
//! - [`EventOrder`] holds, per partition, the batches a window operator has
//!   received (a partition's batches arrive in offset order with
//!   non-decreasing stream times) and hands out the records the frontier has
//!   passed in (stream time, partition, offset) order, one step (one stream
//!   time) at a time — the order of a k-way merge of the partitions by
//!   stream time, never arrival order.
//! - [`RowMerge`] holds, per worker, the result rows the window operators
//!   sent (each worker's rows in canonical order) and hands out the rows
//!   the frontier has completed in the canonical order of all workers.

use std::collections::{BTreeMap, VecDeque};

use tidemark_sources::PartitionId;
use tidemark_windows::EventTime;

use crate::event::{Batch, Row, Rows};

/// Batches waiting in order, and how far the first one has been consumed.
struct Cursor<B> {
    batches: VecDeque<B>,
    pos: usize,
}

impl<B> Default for Cursor<B> {
    fn default() -> Self {
        Cursor {
            batches: VecDeque::new(),
            pos: 0,
        }
    }
}

/// A batch of items a [`Cursor`] walks through.
trait Items {
    fn count(&self) -> usize;
}

impl Items for Batch {
    fn count(&self) -> usize {
        self.len()
    }
}

impl<O> Items for Rows<O> {
    fn count(&self) -> usize {
        self.rows.len()
    }
}

impl<B: Items> Cursor<B> {
    fn push(&mut self, batch: B) {
        if batch.count() > 0 {
            self.batches.push_back(batch);
        }
    }

    /// The first batch not yet consumed, and the position in it.
    fn front(&self) -> Option<(&B, usize)> {
        self.batches.front().map(|b| (b, self.pos))
    }

    /// Moves past one item, dropping the first batch once it is consumed.
    fn advance(&mut self) -> Option<B> {
        self.pos += 1;
        if self.batches.front().is_some_and(|b| self.pos >= b.count()) {
            self.pos = 0;
            return self.batches.pop_front();
        }
        None
    }
}

/// Records by partition, handed out in (stream time, partition, offset)
/// order as the frontier passes them.
#[derive(Default)]
pub(crate) struct EventOrder {
    queues: BTreeMap<PartitionId, Cursor<Batch>>,
}

impl EventOrder {
    /// Queues a batch behind the earlier batches of its partition.
    pub(crate) fn push(&mut self, batch: Batch) {
        self.queues.entry(batch.partition).or_default().push(batch);
    }

    /// The next step: the smallest stream time waiting that the frontier
    /// `upto` has passed (any, when the input is done: `upto == None`).
    pub(crate) fn next_step(&self, upto: Option<EventTime>) -> Option<EventTime> {
        self.queues
            .values()
            .filter_map(|q| q.front().map(|(b, i)| b.stream_times[i]))
            .filter(|&s| upto.is_none_or(|f| s < f))
            .min()
    }

    /// Calls `apply(batch, index)` for every waiting record whose stream
    /// time is `step`, in (partition, offset) order, and drops them.
    pub(crate) fn drain_step(&mut self, step: EventTime, mut apply: impl FnMut(&Batch, usize)) {
        for q in self.queues.values_mut() {
            while let Some((b, i)) = q.front() {
                if b.stream_times[i] != step {
                    break;
                }
                apply(b, i);
                q.advance();
            }
        }
    }

    /// Number of records waiting.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.queues
            .values()
            .map(|q| q.batches.iter().map(Batch::len).sum::<usize>() - q.pos)
            .sum()
    }
}

/// Result rows by worker, handed out in canonical order as the frontier
/// completes them.
pub(crate) struct RowMerge<O> {
    queues: BTreeMap<u32, Cursor<Rows<O>>>,
}

impl<O> Default for RowMerge<O> {
    fn default() -> Self {
        RowMerge {
            queues: BTreeMap::new(),
        }
    }
}

impl<O> RowMerge<O> {
    /// Queues a worker's rows behind its earlier rows.
    pub(crate) fn push(&mut self, rows: Rows<O>) {
        self.queues.entry(rows.worker).or_default().push(rows);
    }

    /// Calls `write(row)` for every waiting row whose time the frontier
    /// `upto` has passed (all, once the input is done), in canonical order
    /// over the workers, and drops them. Stops at the first error.
    pub(crate) fn drain<E>(
        &mut self,
        upto: Option<EventTime>,
        mut write: impl FnMut(&Row<O>) -> Result<(), E>,
    ) -> Result<(), E> {
        let ready = |r: &Row<O>| upto.is_none_or(|f| r.time < f);
        loop {
            // The smallest ready head over the workers.
            let mut best: Option<(u32, &Row<O>)> = None;
            for (&worker, q) in self.queues.iter() {
                if let Some((b, i)) = q.front() {
                    let head = &b.rows[i];
                    if ready(head)
                        && best.is_none_or(|(_, current)| head.canonical_cmp(current).is_lt())
                    {
                        best = Some((worker, head));
                    }
                }
            }
            let Some((worker, _)) = best else {
                return Ok(());
            };
            let Some(q) = self.queues.get_mut(&worker) else {
                return Ok(());
            };
            if let Some((b, i)) = q.front() {
                write(&b.rows[i])?;
            }
            q.advance();
        }
    }

    /// Drops every waiting row (an aborted job writes nothing past its
    /// last completed frontier).
    pub(crate) fn clear(&mut self) {
        self.queues.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_windows::{ChangeKind, Number, Phase, Window};

    fn batch(partition: PartitionId, first_offset: u64, stream_times: &[EventTime]) -> Batch {
        let mut b = Batch::with_capacity(0, partition, stream_times.len(), 0);
        for (i, &s) in stream_times.iter().enumerate() {
            b.push(
                s,
                first_offset + i as u64,
                "k".into(),
                s,
                Number::Int(i as i64),
                Vec::new(),
            );
        }
        b
    }

    /// Drains everything below `upto`, returning (step, partition, offset).
    fn drain(order: &mut EventOrder, upto: Option<EventTime>) -> Vec<(EventTime, u32, u64)> {
        let mut seen = Vec::new();
        while let Some(step) = order.next_step(upto) {
            order.drain_step(step, |b, i| seen.push((step, b.partition, b.offsets[i])));
        }
        seen
    }

    #[test]
    fn records_come_out_by_stream_time_then_partition_then_offset() {
        let mut order = EventOrder::default();
        // Partition 1 arrives first, in two batches; partition 0 later.
        order.push(batch(1, 0, &[5, 5, 9]));
        order.push(batch(1, 3, &[9, 12]));
        order.push(batch(0, 0, &[3, 5, 12, 12]));
        assert_eq!(order.waiting(), 9);
        assert_eq!(
            drain(&mut order, None),
            vec![
                (3, 0, 0),
                (5, 0, 1),
                (5, 1, 0),
                (5, 1, 1),
                (9, 1, 2),
                (9, 1, 3),
                (12, 0, 2),
                (12, 0, 3),
                (12, 1, 4),
            ]
        );
        assert_eq!(order.waiting(), 0);
    }

    #[test]
    fn only_steps_the_frontier_has_passed_are_handed_out() {
        let mut order = EventOrder::default();
        order.push(batch(0, 0, &[1, 4, 4, 7]));
        order.push(batch(2, 0, &[4, 8]));
        assert_eq!(
            drain(&mut order, Some(4)),
            vec![(1, 0, 0)],
            "stream time 4 is not complete at frontier 4"
        );
        assert_eq!(
            drain(&mut order, Some(8)),
            vec![(4, 0, 1), (4, 0, 2), (4, 2, 0), (7, 0, 3)]
        );
        assert_eq!(order.waiting(), 1);
        // A later batch of a partition queues behind its earlier ones.
        order.push(batch(2, 2, &[9]));
        assert_eq!(drain(&mut order, None), vec![(8, 2, 1), (9, 2, 2)]);
    }

    #[test]
    fn the_order_does_not_depend_on_how_partitions_were_batched() {
        // The same two partitions cut into batches in different ways.
        let p0: Vec<EventTime> = vec![0, 2, 2, 3, 6, 6, 6, 10];
        let p1: Vec<EventTime> = vec![1, 2, 5, 6, 6, 11];
        let run = |cut0: usize, cut1: usize, p1_first: bool| {
            let mut order = EventOrder::default();
            let mut pushes = vec![batch(0, 0, &p0[..cut0]), batch(0, cut0 as u64, &p0[cut0..])];
            let mut ones = vec![batch(1, 0, &p1[..cut1]), batch(1, cut1 as u64, &p1[cut1..])];
            if p1_first {
                std::mem::swap(&mut pushes, &mut ones);
            }
            for b in pushes.into_iter().chain(ones) {
                order.push(b);
            }
            drain(&mut order, None)
        };
        let expected = run(0, 0, false);
        assert_eq!(expected.len(), p0.len() + p1.len());
        for cut0 in 0..=p0.len() {
            for cut1 in 0..=p1.len() {
                for p1_first in [false, true] {
                    assert_eq!(run(cut0, cut1, p1_first), expected, "{cut0} {cut1}");
                }
            }
        }
    }

    fn row(time: EventTime, phase: Phase, end: EventTime, key: &str) -> Row<i64> {
        Row {
            time,
            phase,
            kind: ChangeKind::Final,
            key: key.into(),
            window: Window::new(end - 10, end),
            value: 0,
        }
    }

    #[test]
    fn rows_of_several_workers_merge_in_canonical_order() {
        let mut merge = RowMerge::default();
        merge.push(Rows {
            worker: 1,
            rows: vec![row(10, Phase::Fire, 10, "b"), row(20, Phase::Fire, 20, "a")],
        });
        merge.push(Rows {
            worker: 0,
            rows: vec![
                row(10, Phase::Fire, 10, "a"),
                row(10, Phase::Emit, 10, "c"),
                row(25, Phase::Retract, 20, "z"),
            ],
        });
        let mut out = Vec::new();
        merge
            .drain(Some(20), |r| {
                out.push((r.time, r.key.to_string()));
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(
            out,
            vec![(10, "a".into()), (10, "b".into()), (10, "c".into())]
        );
        out.clear();
        merge
            .drain(None, |r| {
                out.push((r.time, r.key.to_string()));
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(out, vec![(20, "a".into()), (25, "z".into())]);
    }

    #[test]
    fn a_failing_write_stops_the_merge() {
        let mut merge = RowMerge::default();
        merge.push(Rows {
            worker: 0,
            rows: vec![row(1, Phase::Fire, 1, "a"), row(2, Phase::Fire, 2, "b")],
        });
        let mut n = 0;
        let r = merge.drain(None, |_| {
            n += 1;
            Err("disk full")
        });
        assert_eq!((r, n), (Err("disk full"), 1));
    }
}
