//! Whole logs: records tagged with partition and offset, the event order in
//! which they are applied, and a sequential driver of the state machine.
//!
//! The engine does the same work spread over Timely workers; this module is
//! the single-threaded form, used by tests, by the reference comparison and
//! by library users with small in-memory logs.

use crate::aggregate::Aggregator;
use crate::change::Change;
use crate::key::WindowKey;
use crate::state::WindowState;
use crate::time::EventTime;
use crate::watermark::StreamTime;
use crate::window::Window;

/// One record of a partitioned log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord<K, I> {
    /// Partition number.
    pub partition: u32,
    /// Offset in the partition.
    pub offset: u64,
    /// Grouping key.
    pub key: K,
    /// Event time.
    pub time: EventTime,
    /// Aggregated input.
    pub input: I,
}

/// The result of evaluating a whole log.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation<K, O> {
    /// The output changelog in canonical order.
    pub changes: Vec<Change<K, O>>,
    /// Indices (into the log) of records dropped from at least one of their
    /// windows, in the order they were applied, with the windows missed.
    pub late: Vec<(usize, Vec<Window>)>,
    /// Indices of records for which no window can be formed (event time at
    /// the `i64` extremes).
    pub invalid: Vec<usize>,
}

/// The stream time of every record: the largest event time in its partition
/// up to and including it (records of a partition taken in offset order).
pub fn stream_times<K, I>(log: &[LogRecord<K, I>]) -> Vec<EventTime> {
    let mut by_partition: Vec<usize> = (0..log.len()).collect();
    by_partition.sort_by_key(|&i| (log[i].partition, log[i].offset));
    let mut result = vec![0; log.len()];
    let mut current: Option<(u32, StreamTime)> = None;
    for i in by_partition {
        let r = &log[i];
        let tracker = match &mut current {
            Some((p, t)) if *p == r.partition => t,
            _ => &mut current.insert((r.partition, StreamTime::new())).1,
        };
        result[i] = tracker.observe(r.time);
    }
    result
}

/// The event order: indices of the log sorted by (stream time, partition,
/// offset), paired with their stream time.
pub fn event_order<K, I>(log: &[LogRecord<K, I>]) -> Vec<(EventTime, usize)> {
    let stream = stream_times(log);
    let mut order: Vec<(EventTime, usize)> = stream.iter().copied().zip(0..).collect();
    order.sort_by_key(|&(s, i)| (s, log[i].partition, log[i].offset));
    order
}

/// Runs a whole log through `state` in event order, one step per distinct
/// stream time, and finishes it.
pub fn evaluate<K, A>(
    state: &mut WindowState<K, A>,
    log: &[LogRecord<K, A::Input>],
) -> Evaluation<K, A::Output>
where
    K: WindowKey,
    A: Aggregator,
{
    let order = event_order(log);
    let mut eval = Evaluation {
        changes: Vec::new(),
        late: Vec::new(),
        invalid: Vec::new(),
    };
    let mut missed = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let s = order[i].0;
        state.advance(s, &mut eval.changes);
        while i < order.len() && order[i].0 == s {
            let idx = order[i].1;
            let r = &log[idx];
            missed.clear();
            match state.apply(r.key.clone(), r.time, &r.input, &mut missed) {
                Ok(applied) if applied.is_dropped() => eval.late.push((idx, missed.clone())),
                Ok(_) => {}
                Err(_) => eval.invalid.push(idx),
            }
            i += 1;
        }
        state.end_step(&mut eval.changes);
    }
    state.finish(&mut eval.changes);
    eval
}
