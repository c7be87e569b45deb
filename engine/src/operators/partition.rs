//! One partition as a worker's ingest reads it ([`Partition`]): its
//! reader, stream time, idle release and replayed time decisions, and the
//! times its records and dead letters are sent at.

use std::time::Instant;

use tidemark_sources::{DeadLetter, Decoded, PartitionId, PartitionReader, Record};
use tidemark_windows::watermark::StreamTime;
use tidemark_windows::EventTime;

use crate::stats::Stats;

pub(super) struct Partition {
    pub(super) id: PartitionId,
    pub(super) reader: Box<dyn PartitionReader>,
    pub(super) stream_time: StreamTime,
    pub(super) ended: bool,
    /// Since when a followed partition has had nothing new.
    pub(super) caught_up_since: Option<Instant>,
    /// Released from holding the watermark (see `Options::idle_after`).
    pub(super) idle: bool,
    /// Stream-time jumps still to make, (offset, stream time) in offset
    /// order: recorded decisions being replayed, or the one just taken.
    pub(super) jumps: std::collections::VecDeque<(u64, EventTime)>,
    /// In a resumed run, until the partition's first record is read: the
    /// frontier of the checkpoint (see [`Partition::rejoins_below`]).
    pub(super) floor: Option<EventTime>,
}

impl Partition {
    /// The lowest time this partition may still send at: its stream time,
    /// or, before its first decodable record, the time of its next offset
    /// in the region below every event time (see [`before_first_record`]).
    pub(super) fn hold(&self) -> EventTime {
        self.stream_time
            .get()
            .unwrap_or_else(|| before_first_record(self.reader.position()))
    }

    /// Whether the records just read must rejoin at the capability `at`: the
    /// partition was released as idle before the checkpoint this run
    /// resumed from (which is not recorded), and its first new record
    /// would have a stream time below the checkpoint's frontier. A
    /// partition that was not released cannot have one: every record with
    /// a stream time below the frontier was applied before it. So the
    /// partition rejoins as it would have in the run that took the
    /// checkpoint — its stream time jumps to the capability — and the jump
    /// is recorded like any other.
    pub(super) fn rejoins_below(&mut self, read: &[Decoded], at: EventTime) -> bool {
        if self.floor.is_none() {
            return false;
        }
        let Some(first) = read.iter().find_map(|d| d.as_ref().ok()) else {
            return false;
        };
        self.floor = None;
        let stream_time = self
            .stream_time
            .get()
            .map_or(first.event_time, |st| st.max(first.event_time));
        stream_time < at
    }

    /// The time a dead letter at `offset` is found at.
    pub(super) fn dead_letter_time(&self, offset: u64) -> EventTime {
        self.stream_time
            .get()
            .unwrap_or_else(|| before_first_record(offset))
    }
}

/// Every partition of a stopped ingest is ended (for the stats).
pub(super) fn report_stopped(stats: &Stats, parts: &[Partition]) {
    for part in parts {
        stats.report_partition(part.id, |live| {
            live.state = crate::stats::PartitionState::Ended;
        });
    }
}

/// Before a partition's first decodable record its stream time is unknown;
/// its dead letters are found at `i64::MIN + offset`, a time below every
/// event time a source accepts (−2^53 and up), and the partition holds the
/// frontier at the time of its next offset. So a partition that begins with
/// bad lines moves the frontier on as it reads them: its dead letters are
/// written as they come, instead of waiting (in memory) for its first good
/// record. A function of the log: the same log gives the same times.
fn before_first_record(offset: u64) -> EventTime {
    let floor = tidemark_sources::MIN_EVENT_TIME - 1;
    EventTime::MIN
        .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
        .min(floor)
}

/// Whether `time` is further ahead of the partition's stream time than the
/// guard allows (never for a partition's first record).
pub(super) fn is_future(
    skew: Option<EventTime>,
    stream_time: &StreamTime,
    time: EventTime,
) -> bool {
    match (skew, stream_time.get()) {
        (Some(skew), Some(st)) => time > st.saturating_add(skew),
        _ => false,
    }
}

/// The dead letter of a record stamped too far in the future.
pub(super) fn future_letter(r: &Record, stream_time: EventTime, skew: EventTime) -> DeadLetter {
    let raw = format!(
        "{{\"key\":{},\"ts\":{}}}",
        serde_json::to_string(r.key.as_str()).unwrap_or_default(),
        r.event_time
    );
    DeadLetter::new(
        r.partition,
        r.offset,
        format!(
            "future timestamp: {} is {} ms ahead of the partition's stream time {stream_time} (maximum future skew {skew} ms)",
            r.event_time,
            r.event_time.saturating_sub(stream_time)
        ),
        raw.as_bytes(),
    )
}
