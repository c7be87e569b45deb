//! [`ChannelSource`]: partitions that application code pushes events into
//! while a job runs, through [`ChannelSender`] handles.
//!
//! ```text
//!  app thread A ──push──▶ ┌ partition 0: [o=7 o=8 o=9]   ┐ ──read──▶ engine worker
//!  app thread B ──push──▶ │ partition 1: [o=3]           │ ──read──▶ engine worker
//!                         └ (at most `capacity` unread each)┘
//! ```
//!
//! The rules, each chosen so that a mistake is an error rather than silently
//! wrong output:
//!
//! - **Offsets.** Each partition numbers its events `0, 1, 2, …` in the order
//!   its pushes took effect; [`ChannelSender::push`] returns the offset it
//!   assigned. A partition's content is therefore exactly its sequence of
//!   pushes. For a deterministic job, push each partition's events in a
//!   fixed order (for example, one thread per partition, or one thread for
//!   all): pushes from several threads *to the same partition* interleave
//!   in whatever order they win the partition's lock. Pushes to different
//!   partitions never affect each other, and how the reader happens to batch
//!   them does not change the job's output.
//! - **Memory and backpressure.** An event is kept from its push until a
//!   reader returns it, then dropped. Each partition holds at most
//!   `capacity` unread events: [`ChannelSender::push`] blocks while the
//!   partition is full (until a read makes room, the partition is closed,
//!   or the source is dropped), [`ChannelSender::push_timeout`] blocks at
//!   most a given time, and [`ChannelSender::try_push`] never blocks and
//!   fails with [`PushError::Full`]. Do not fill a partition beyond its
//!   capacity from the thread that is about to run the job: nobody would
//!   read, and `push` would wait forever.
//! - **Opening.** A partition has at most one reader at a time (a second
//!   [`Source::open`] while one is alive is [`SourceError::AlreadyOpen`]).
//!   Opening at an offset already handed out is
//!   [`SourceError::OffsetConsumed`]: those events are gone. Opening past
//!   the first unread offset skips (drops unread) the events below it as
//!   they arrive, which is what resuming from a checkpoint needs when the
//!   application pushes its events again from the start. Once a reader is
//!   dropped, the partition can be opened again at its first unread offset.
//! - **Closing.** [`ChannelSender::close`] ends the partition for every
//!   sender of it: later pushes fail with [`PushError::Closed`], and the
//!   reader returns [`ReadStatus::End`] once it has returned every event
//!   pushed before the close. Dropping every sender of a partition *without*
//!   closing it does not end the partition (that would fire every open
//!   window as if the input were complete, for instance when the pushing
//!   thread panicked): the reader returns the events already pushed and then
//!   [`SourceError::Abandoned`], which stops the job. A partition that never
//!   had a sender just stays caught up.
//! - **The end of the job.** When the job that reads the source ends (the
//!   engine calls [`Source::job_ended`]), or every [`ChannelSource`] handle
//!   and every reader is gone, nobody reads any more: pushes fail with
//!   [`PushError::Disconnected`], including pushes blocked waiting for
//!   room, whatever handles the application still holds. (A partition
//!   opened again by a later job takes pushes again.)
//! - **Threads.** [`ChannelSource`] and [`ChannelSender`] are `Send + Sync`
//!   and cheap to clone; clones share the same partitions. A reader's
//!   [`PartitionReader::read`] never blocks: it takes the partition's lock
//!   only to move the waiting events out (pushers hold it only to append
//!   one), never waits for a push, and returns [`ReadStatus::CaughtUp`]
//!   when nothing new is there.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use tidemark_sources::{ChannelSource, PartitionReader, ReadStatus, Source, Value};
//!
//! let source = ChannelSource::new(2, 1024)?;
//! let senders = source.senders()?;
//! let mut reader = source.open(1, 0)?;
//!
//! let pusher = std::thread::spawn({
//!     let sender = senders[1].clone();
//!     move || {
//!         for i in 0..3 {
//!             sender.push(format!("user-{i}"), 1_000 * i, Value::Int(1)).unwrap();
//!         }
//!         sender.close();
//!     }
//! });
//! pusher.join().unwrap();
//! drop(senders);
//!
//! let mut out = Vec::new();
//! assert_eq!(reader.read(10, &mut out)?, ReadStatus::End);
//! let offsets: Vec<_> = out.iter().map(|d| d.as_ref().unwrap().offset).collect();
//! assert_eq!(offsets, [0, 1, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With a job, hand the source to the job builder (as `Arc<dyn Source>`)
//! and keep the senders: the job's workers read while the application
//! pushes from its own threads.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::record::{
    Decoded, Key, Offset, PartitionId, ReadStatus, Record, Value, MAX_EVENT_TIME, MIN_EVENT_TIME,
};
use crate::source::{PartitionReader, Source, SourceError};

/// Why a push was refused. The event was not added and took no offset.
#[derive(thiserror::Error, Clone, Debug, PartialEq, Eq)]
pub enum PushError {
    /// The partition was closed by [`ChannelSender::close`].
    #[error("could not push to partition {partition}: it is closed")]
    Closed {
        /// The partition.
        partition: PartitionId,
    },
    /// [`ChannelSender::try_push`] found the partition full.
    #[error("could not push to partition {partition}: it holds {capacity} unread events")]
    Full {
        /// The partition.
        partition: PartitionId,
        /// The partition's capacity.
        capacity: usize,
    },
    /// [`ChannelSender::push_timeout`] found no room in time.
    #[error("could not push to partition {partition}: still full after {timeout:?}")]
    Timeout {
        /// The partition.
        partition: PartitionId,
        /// How long the push waited.
        timeout: Duration,
    },
    /// The source and all its readers were dropped: nobody can read.
    #[error("could not push to partition {partition}: the channel source was dropped")]
    Disconnected {
        /// The partition.
        partition: PartitionId,
    },
    /// The event itself is not acceptable (an event time out of range, a
    /// value that is not finite).
    #[error("could not push to partition {partition}: {reason}")]
    InvalidEvent {
        /// The partition.
        partition: PartitionId,
        /// What is wrong with the event.
        reason: String,
    },
}

/// The state of one partition, behind its lock.
#[derive(Debug, Default)]
struct LaneState {
    /// Pushed and not yet read, in offset order.
    queue: VecDeque<Record>,
    /// The offset the next push gets.
    next: Offset,
    /// Closed by a sender: no more pushes, the reader ends once drained.
    closed: bool,
    /// Live senders of this partition.
    senders: usize,
    /// Every sender was dropped without closing the partition.
    abandoned: bool,
    /// A reader is open.
    reader: bool,
    /// Every source handle and reader is gone, or the job that read the
    /// source ended (until a reader opens it again).
    disconnected: bool,
    /// Pushers waiting for room.
    waiting: usize,
}

impl LaneState {
    fn first_unread(&self) -> Offset {
        self.next - self.queue.len() as u64
    }
}

#[derive(Debug, Default)]
struct Lane {
    state: Mutex<LaneState>,
    /// Signalled when room is made, the lane is closed or disconnected.
    space: Condvar,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // No code path panics while holding the lock; if one ever did, the
        // state is still consistent (every update is a single step).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self, state: &LaneState) {
        if state.waiting > 0 {
            self.space.notify_all();
        }
    }
}

#[derive(Debug)]
struct Shared {
    lanes: Box<[Lane]>,
    capacity: usize,
    /// Live [`ChannelSource`] handles (readers hold one each).
    handles: AtomicUsize,
}

impl Shared {
    fn lane(&self, partition: PartitionId) -> Result<&Lane, SourceError> {
        self.lanes
            .get(partition as usize)
            .ok_or(SourceError::UnknownPartition {
                partition,
                count: self.lanes.len() as u32,
            })
    }
}

/// Partitions fed live by application code; see the [module docs](self)
/// for offsets, capacity, closing and threads.
pub struct ChannelSource {
    shared: Arc<Shared>,
}

impl ChannelSource {
    /// A source of `partitions` partitions (`0..partitions`), each holding
    /// at most `capacity` unread events. Both must be at least 1.
    pub fn new(partitions: u32, capacity: usize) -> Result<Self, SourceError> {
        if partitions == 0 {
            return Err(SourceError::InvalidConfig(
                "a channel source needs at least 1 partition".to_owned(),
            ));
        }
        if capacity == 0 {
            return Err(SourceError::InvalidConfig(
                "a channel source's capacity must be at least 1".to_owned(),
            ));
        }
        let lanes = (0..partitions).map(|_| Lane::default()).collect();
        Ok(ChannelSource {
            shared: Arc::new(Shared {
                lanes,
                capacity,
                handles: AtomicUsize::new(1),
            }),
        })
    }

    /// A sender for `partition`.
    ///
    /// Fails with [`SourceError::UnknownPartition`], or
    /// [`SourceError::Abandoned`] once every earlier sender of the partition
    /// was dropped without closing it.
    pub fn sender(&self, partition: PartitionId) -> Result<ChannelSender, SourceError> {
        let lane = self.shared.lane(partition)?;
        let mut state = lane.lock();
        if state.abandoned {
            return Err(SourceError::Abandoned { partition });
        }
        state.senders += 1;
        Ok(ChannelSender {
            shared: Arc::clone(&self.shared),
            partition,
        })
    }

    /// One sender per partition, in partition order.
    pub fn senders(&self) -> Result<Vec<ChannelSender>, SourceError> {
        (0..self.partition_count())
            .map(|p| self.sender(p))
            .collect()
    }

    /// How many partitions the source has.
    pub fn partition_count(&self) -> u32 {
        self.shared.lanes.len() as u32
    }

    /// How many unread events each partition may hold.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }
}

impl Clone for ChannelSource {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        ChannelSource {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for ChannelSource {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            for lane in self.shared.lanes.iter() {
                let mut state = lane.lock();
                state.disconnected = true;
                lane.wake(&state);
            }
        }
    }
}

impl fmt::Debug for ChannelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSource")
            .field("partitions", &self.partition_count())
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl Source for ChannelSource {
    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
        Ok((0..self.partition_count()).collect())
    }

    /// Nobody reads any more: pushes fail with
    /// [`PushError::Disconnected`], blocked ones too.
    fn job_ended(&self) {
        for lane in self.shared.lanes.iter() {
            let mut state = lane.lock();
            if !state.reader {
                state.disconnected = true;
                lane.space.notify_all();
            }
        }
    }

    /// Opens the partition's one reader; see the [module docs](self) for
    /// what `from` may be.
    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let lane = self.shared.lane(partition)?;
        let mut state = lane.lock();
        if state.reader {
            return Err(SourceError::AlreadyOpen { partition });
        }
        let first_unread = state.first_unread();
        if from < first_unread {
            return Err(SourceError::OffsetConsumed {
                partition,
                offset: from,
                first_unread,
            });
        }
        if state.closed && from > state.next {
            return Err(SourceError::OffsetOutOfRange {
                partition,
                offset: from,
                end: state.next,
            });
        }
        state.reader = true;
        // A later job reads again: it takes pushes again (unless every
        // handle is gone, which this one is not).
        state.disconnected = false;
        drop(state);
        Ok(Box::new(ChannelReader {
            source: self.clone(),
            partition,
            from,
            next: from,
        }))
    }
}

/// Pushes events into one partition of a [`ChannelSource`]. Clones push
/// into the same partition; see the [module docs](self) for what dropping
/// the last one means.
pub struct ChannelSender {
    shared: Arc<Shared>,
    partition: PartitionId,
}

/// How long a push may wait for room.
enum Wait {
    Never,
    Until(Instant, Duration),
    Forever,
}

impl ChannelSender {
    /// The partition this sender pushes into.
    pub fn partition(&self) -> PartitionId {
        self.partition
    }

    /// Appends an event, waiting while the partition is full; returns its
    /// offset.
    ///
    /// `event_time` is in epoch milliseconds and must lie within
    /// [`MIN_EVENT_TIME`]`..=`[`MAX_EVENT_TIME`]; a float value must be
    /// finite ([`PushError::InvalidEvent`] otherwise).
    pub fn push(
        &self,
        key: impl Into<Key>,
        event_time: i64,
        value: Value,
    ) -> Result<Offset, PushError> {
        self.push_with(key.into(), event_time, value, Wait::Forever)
    }

    /// Like [`ChannelSender::push`], but fails with [`PushError::Full`]
    /// instead of waiting.
    pub fn try_push(
        &self,
        key: impl Into<Key>,
        event_time: i64,
        value: Value,
    ) -> Result<Offset, PushError> {
        self.push_with(key.into(), event_time, value, Wait::Never)
    }

    /// Like [`ChannelSender::push`], but waits at most `timeout` for room
    /// ([`PushError::Timeout`]).
    pub fn push_timeout(
        &self,
        key: impl Into<Key>,
        event_time: i64,
        value: Value,
        timeout: Duration,
    ) -> Result<Offset, PushError> {
        let wait = match Instant::now().checked_add(timeout) {
            Some(deadline) => Wait::Until(deadline, timeout),
            None => Wait::Forever,
        };
        self.push_with(key.into(), event_time, value, wait)
    }

    /// Closes the partition, for every sender of it: the reader ends after
    /// the events pushed so far. Closing again does nothing.
    pub fn close(&self) {
        let lane = self.lane();
        let mut state = lane.lock();
        state.closed = true;
        lane.wake(&state);
    }

    /// Whether the partition was closed.
    pub fn is_closed(&self) -> bool {
        self.lane().lock().closed
    }

    fn lane(&self) -> &Lane {
        // `partition` was checked when the first sender was made.
        &self.shared.lanes[self.partition as usize]
    }

    fn push_with(
        &self,
        key: Key,
        event_time: i64,
        value: Value,
        wait: Wait,
    ) -> Result<Offset, PushError> {
        let partition = self.partition;
        if !(MIN_EVENT_TIME..=MAX_EVENT_TIME).contains(&event_time) {
            return Err(PushError::InvalidEvent {
                partition,
                reason: format!(
                    "event time {event_time} is outside {MIN_EVENT_TIME}..={MAX_EVENT_TIME}"
                ),
            });
        }
        if let Value::Float(f) = value {
            if !f.is_finite() {
                return Err(PushError::InvalidEvent {
                    partition,
                    reason: format!("value {f} is not finite"),
                });
            }
        }
        let capacity = self.shared.capacity;
        let lane = self.lane();
        let mut state = lane.lock();
        loop {
            if state.closed {
                return Err(PushError::Closed { partition });
            }
            if state.disconnected {
                return Err(PushError::Disconnected { partition });
            }
            if state.queue.len() < capacity {
                break;
            }
            let left = match wait {
                Wait::Never => {
                    return Err(PushError::Full {
                        partition,
                        capacity,
                    })
                }
                Wait::Forever => None,
                Wait::Until(deadline, timeout) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(PushError::Timeout { partition, timeout });
                    }
                    Some(left)
                }
            };
            state.waiting += 1;
            state = match left {
                None => lane
                    .space
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(left) => match lane.space.wait_timeout(state, left) {
                    Ok((state, _)) => state,
                    Err(poisoned) => poisoned.into_inner().0,
                },
            };
            state.waiting -= 1;
        }
        let offset = state.next;
        state.next += 1;
        state.queue.push_back(Record {
            partition,
            offset,
            key,
            event_time,
            value,
            fields: Vec::new(),
        });
        Ok(offset)
    }
}

impl Clone for ChannelSender {
    fn clone(&self) -> Self {
        self.lane().lock().senders += 1;
        ChannelSender {
            shared: Arc::clone(&self.shared),
            partition: self.partition,
        }
    }
}

impl Drop for ChannelSender {
    fn drop(&mut self) {
        let mut state = self.lane().lock();
        state.senders -= 1;
        if state.senders == 0 && !state.closed {
            state.abandoned = true;
        }
    }
}

impl fmt::Debug for ChannelSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSender")
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

/// The one reader of a channel partition.
struct ChannelReader {
    /// Keeps the source alive (and pushes possible) while the reader is.
    source: ChannelSource,
    partition: PartitionId,
    /// Events below this offset are dropped unread.
    from: Offset,
    /// The offset of the next event this reader returns.
    next: Offset,
}

impl ChannelReader {
    fn lane(&self) -> &Lane {
        &self.source.shared.lanes[self.partition as usize]
    }
}

impl PartitionReader for ChannelReader {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError> {
        if max == 0 {
            return Ok(ReadStatus::More);
        }
        let lane = self.lane();
        let mut state = lane.lock();
        let below =
            (self.from.saturating_sub(state.first_unread()) as usize).min(state.queue.len());
        state.queue.drain(..below);
        let n = max.min(state.queue.len());
        out.extend(state.queue.drain(..n).map(Ok));
        if below + n > 0 {
            lane.wake(&state);
        }
        let first_unread = state.first_unread();
        let (closed, abandoned, pushed, empty) = (
            state.closed,
            state.abandoned,
            state.next,
            state.queue.is_empty(),
        );
        drop(state);
        self.next = first_unread.max(self.from);
        if !empty {
            return Ok(ReadStatus::More);
        }
        if closed {
            if pushed < self.from {
                return Err(SourceError::OffsetOutOfRange {
                    partition: self.partition,
                    offset: self.from,
                    end: pushed,
                });
            }
            return Ok(ReadStatus::End);
        }
        if abandoned {
            return Err(SourceError::Abandoned {
                partition: self.partition,
            });
        }
        Ok(if n == max {
            ReadStatus::More
        } else {
            ReadStatus::CaughtUp
        })
    }

    fn position(&self) -> Offset {
        self.next
    }
}

impl Drop for ChannelReader {
    fn drop(&mut self) {
        self.lane().lock().reader = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(out: &[Decoded]) -> Vec<(Offset, String)> {
        out.iter()
            .map(|d| {
                let r = d.as_ref().unwrap();
                (r.offset, r.key.to_string())
            })
            .collect()
    }

    #[test]
    fn offsets_are_dense_in_push_order_and_close_ends() {
        let source = ChannelSource::new(1, 16).unwrap();
        let sender = source.sender(0).unwrap();
        let mut reader = source.open(0, 0).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.read(4, &mut out).unwrap(), ReadStatus::CaughtUp);
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            assert_eq!(sender.push(key, 10, Value::Int(1)).unwrap(), i as u64);
        }
        assert_eq!(reader.read(2, &mut out).unwrap(), ReadStatus::More);
        assert_eq!(reader.position(), 2);
        assert_eq!(reader.read(2, &mut out).unwrap(), ReadStatus::CaughtUp);
        sender.close();
        assert_eq!(
            sender.push("d", 1, Value::Int(1)),
            Err(PushError::Closed { partition: 0 })
        );
        assert_eq!(reader.read(2, &mut out).unwrap(), ReadStatus::End);
        assert_eq!(reader.read(2, &mut out).unwrap(), ReadStatus::End);
        assert_eq!(
            keys(&out),
            [(0, "a".into()), (1, "b".into()), (2, "c".into())]
        );
        assert!(out
            .iter()
            .all(|d| d.as_ref().is_ok_and(|r| r.partition == 0)));
    }

    #[test]
    fn end_comes_only_after_the_events_pushed_before_close() {
        let source = ChannelSource::new(1, 16).unwrap();
        let sender = source.sender(0).unwrap();
        let mut reader = source.open(0, 0).unwrap();
        sender.push("a", 1, Value::Int(1)).unwrap();
        sender.push("b", 2, Value::Int(1)).unwrap();
        sender.close();
        let mut out = Vec::new();
        assert_eq!(reader.read(1, &mut out).unwrap(), ReadStatus::More);
        assert_eq!(reader.read(1, &mut out).unwrap(), ReadStatus::End);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn try_push_fails_when_full_and_a_read_makes_room() {
        let source = ChannelSource::new(1, 2).unwrap();
        let sender = source.sender(0).unwrap();
        sender.try_push("a", 1, Value::Int(1)).unwrap();
        sender.try_push("b", 1, Value::Int(1)).unwrap();
        assert_eq!(
            sender.try_push("c", 1, Value::Int(1)),
            Err(PushError::Full {
                partition: 0,
                capacity: 2
            })
        );
        assert_eq!(
            sender.push_timeout("c", 1, Value::Int(1), Duration::from_millis(20)),
            Err(PushError::Timeout {
                partition: 0,
                timeout: Duration::from_millis(20)
            })
        );
        let mut reader = source.open(0, 0).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.read(1, &mut out).unwrap(), ReadStatus::More);
        // The refused pushes took no offset.
        assert_eq!(sender.try_push("c", 1, Value::Int(1)), Ok(2));
    }

    #[test]
    fn a_blocked_push_resumes_when_the_reader_makes_room() {
        let source = ChannelSource::new(1, 1).unwrap();
        let sender = source.sender(0).unwrap();
        sender.push("a", 1, Value::Int(1)).unwrap();
        let pusher = std::thread::spawn(move || {
            let pushed = sender.push("b", 2, Value::Int(1));
            sender.close();
            pushed
        });
        let mut reader = source.open(0, 0).unwrap();
        let mut out = Vec::new();
        while reader.read(8, &mut out).unwrap() != ReadStatus::End {
            std::thread::yield_now();
        }
        assert_eq!(pusher.join().unwrap(), Ok(1));
        assert_eq!(keys(&out), [(0, "a".into()), (1, "b".into())]);
    }

    #[test]
    fn a_blocked_push_fails_when_the_partition_is_closed_or_the_source_dropped() {
        let source = ChannelSource::new(2, 1).unwrap();
        let senders = source.senders().unwrap();
        for s in &senders {
            s.push("a", 1, Value::Int(1)).unwrap();
        }
        let [s0, s1]: [ChannelSender; 2] = senders.try_into().unwrap();
        let closer = s0.clone();
        let blocked0 = std::thread::spawn(move || s0.push("b", 2, Value::Int(1)));
        let blocked1 = std::thread::spawn(move || s1.push("b", 2, Value::Int(1)));
        std::thread::sleep(Duration::from_millis(20));
        closer.close();
        assert_eq!(
            blocked0.join().unwrap(),
            Err(PushError::Closed { partition: 0 })
        );
        drop(source);
        assert_eq!(
            blocked1.join().unwrap(),
            Err(PushError::Disconnected { partition: 1 })
        );
    }

    #[test]
    fn a_reader_keeps_the_source_connected() {
        let source = ChannelSource::new(1, 4).unwrap();
        let sender = source.sender(0).unwrap();
        let mut reader = source.open(0, 0).unwrap();
        drop(source);
        sender.push("a", 1, Value::Int(1)).unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.read(4, &mut out).unwrap(), ReadStatus::CaughtUp);
        assert_eq!(out.len(), 1);
        drop(reader);
        assert_eq!(
            sender.push("b", 1, Value::Int(1)),
            Err(PushError::Disconnected { partition: 0 })
        );
    }

    #[test]
    fn dropping_every_sender_without_close_is_an_error_after_the_events() {
        let source = ChannelSource::new(1, 4).unwrap();
        let sender = source.sender(0).unwrap();
        let clone = sender.clone();
        sender.push("a", 1, Value::Int(1)).unwrap();
        drop(sender);
        let mut reader = source.open(0, 0).unwrap();
        let mut out = Vec::new();
        // One clone is still alive: caught up, not abandoned.
        assert_eq!(reader.read(4, &mut out).unwrap(), ReadStatus::CaughtUp);
        drop(clone);
        let err = reader.read(4, &mut out).unwrap_err();
        assert!(matches!(err, SourceError::Abandoned { partition: 0 }));
        assert_eq!(
            err.to_string(),
            "every sender of partition 0 was dropped without closing it"
        );
        assert_eq!(out.len(), 1);
        assert!(matches!(
            source.sender(0),
            Err(SourceError::Abandoned { partition: 0 })
        ));
    }

    #[test]
    fn opening_twice_or_below_the_first_unread_offset_is_an_error() {
        let source = ChannelSource::new(1, 8).unwrap();
        let sender = source.sender(0).unwrap();
        for i in 0..4 {
            sender.push("k", i, Value::Int(i)).unwrap();
        }
        let mut reader = source.open(0, 0).unwrap();
        assert!(matches!(
            source.open(0, 0).err(),
            Some(SourceError::AlreadyOpen { partition: 0 })
        ));
        let mut out = Vec::new();
        assert_eq!(reader.read(2, &mut out).unwrap(), ReadStatus::More);
        drop(reader);
        let err = source.open(0, 1).err().unwrap();
        assert!(matches!(
            err,
            SourceError::OffsetConsumed {
                partition: 0,
                offset: 1,
                first_unread: 2
            }
        ));
        // Reopening at the first unread offset goes on where the last left off.
        let mut reader = source.open(0, 2).unwrap();
        assert_eq!(reader.read(8, &mut out).unwrap(), ReadStatus::CaughtUp);
        assert_eq!(
            out.iter()
                .map(|d| d.as_ref().unwrap().offset)
                .collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
    }

    #[test]
    fn opening_ahead_skips_the_events_below() {
        let source = ChannelSource::new(1, 8).unwrap();
        let sender = source.sender(0).unwrap();
        sender.push("a", 1, Value::Int(1)).unwrap();
        let mut reader = source.open(0, 3).unwrap();
        assert_eq!(reader.position(), 3);
        let mut out = Vec::new();
        assert_eq!(reader.read(8, &mut out).unwrap(), ReadStatus::CaughtUp);
        for key in ["b", "c", "d", "e"] {
            sender.push(key, 1, Value::Int(1)).unwrap();
        }
        assert_eq!(reader.read(8, &mut out).unwrap(), ReadStatus::CaughtUp);
        assert_eq!(keys(&out), [(3, "d".into()), (4, "e".into())]);
        assert_eq!(reader.position(), 5);
        // A closed partition shorter than `from` is out of range.
        drop(reader);
        sender.close();
        assert!(matches!(
            source.open(0, 9).err(),
            Some(SourceError::OffsetOutOfRange {
                partition: 0,
                offset: 9,
                end: 5
            })
        ));
        let closing = ChannelSource::new(1, 8).unwrap();
        let sender = closing.sender(0).unwrap();
        let mut reader = closing.open(0, 2).unwrap();
        sender.push("a", 1, Value::Int(1)).unwrap();
        sender.close();
        assert!(matches!(
            reader.read(8, &mut out),
            Err(SourceError::OffsetOutOfRange {
                partition: 0,
                offset: 2,
                end: 1
            })
        ));
    }

    #[test]
    fn invalid_events_are_refused_without_an_offset() {
        let source = ChannelSource::new(1, 8).unwrap();
        let sender = source.sender(0).unwrap();
        let err = sender
            .push("k", MAX_EVENT_TIME + 1, Value::Int(1))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not push to partition 0: event time 9007199254740993 is outside \
             -9007199254740992..=9007199254740992"
        );
        assert!(matches!(
            sender.push("k", 0, Value::Float(f64::NAN)),
            Err(PushError::InvalidEvent { .. })
        ));
        assert_eq!(sender.push("k", MAX_EVENT_TIME, Value::Float(1.5)), Ok(0));
    }

    #[test]
    fn bad_configs_and_unknown_partitions() {
        assert!(ChannelSource::new(0, 1).is_err());
        assert!(ChannelSource::new(1, 0).is_err());
        let source = ChannelSource::new(2, 1).unwrap();
        assert_eq!(source.partitions().unwrap(), [0, 1]);
        assert!(matches!(
            source.sender(2),
            Err(SourceError::UnknownPartition {
                partition: 2,
                count: 2
            })
        ));
        assert!(matches!(
            source.open(5, 0).err(),
            Some(SourceError::UnknownPartition { .. })
        ));
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<ChannelSource>();
        check::<ChannelSender>();
    }
}
