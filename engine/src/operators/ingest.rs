//! The ingest operator: reads a worker's partitions in batches and sends
//! each record at its partition's stream time.
//!
//! The operator holds its capability at the lowest stream time any of its
//! partitions may still produce, so the frontier seen downstream is the
//! smallest stream time still to come over all partitions. When a
//! partition reaches its end, every window operator is told
//! ([`Ingest::End`]). When the job must stop early (an error, a stop
//! request), the operator tells every window operator where it stopped
//! ([`Ingest::Stop`], at its capability) before letting the capability go:
//! the input is then complete only below that time, and no open window is
//! fired as if the input had ended.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_sources::{
    DeadLetter, Decoded, PartitionId, PartitionReader, ReadStatus, Record, Source,
};
use tidemark_windows::watermark::StreamTime;
use tidemark_windows::EventTime;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source as timely_source;
use timely::dataflow::operators::Capability;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use super::{key_hash, Control};
use crate::checkpoint::decisions::{Decision, Replay};
use crate::config::Position;
use crate::counts::Counts;
use crate::error::EngineError;
use crate::event::{Batch, Ingest};
use crate::stats::Stats;

/// How the ingest reads.
#[derive(Clone)]
pub(crate) struct IngestSettings {
    /// The input.
    pub(crate) source: Arc<dyn Source>,
    /// Its partitions; each worker reads those `p ≡ worker (mod workers)`.
    pub(crate) partitions: Vec<PartitionId>,
    pub(crate) start: BTreeMap<PartitionId, Position>,
    pub(crate) batch_size: usize,
    pub(crate) fail_on_bad: bool,
    pub(crate) idle_after: Option<Duration>,
    pub(crate) max_future_skew: Option<EventTime>,
    /// Checkpoints every this many offsets of each partition: announce a
    /// cut after each such offset ([`Ingest::Cut`]).
    pub(crate) cut_every_offsets: Option<u64>,
    /// Time decisions to replay instead of taking any.
    pub(crate) replay: Option<Arc<Replay>>,
    /// The frontier of the checkpoint this run resumed from: every record
    /// with a stream time below it was applied before.
    pub(crate) resumed_at: Option<EventTime>,
}

struct Partition {
    id: PartitionId,
    reader: Box<dyn PartitionReader>,
    stream_time: StreamTime,
    ended: bool,
    /// Since when a followed partition has had nothing new.
    caught_up_since: Option<Instant>,
    /// Released from holding the watermark (see `EngineConfig::idle_after`).
    idle: bool,
    /// Stream-time jumps still to make, (offset, stream time) in offset
    /// order: recorded decisions being replayed, or the one just taken.
    jumps: std::collections::VecDeque<(u64, EventTime)>,
    /// In a resumed run, until the partition's first record is read: the
    /// frontier of the checkpoint (see [`Partition::rejoins_below`]).
    floor: Option<EventTime>,
}

impl Partition {
    /// The lowest time this partition may still send at: its stream time,
    /// or, before its first decodable record, the time of its next offset
    /// in the region below every event time (see [`before_first_record`]).
    fn hold(&self) -> EventTime {
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
    fn rejoins_below(&mut self, read: &[Decoded], at: EventTime) -> bool {
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
    fn dead_letter_time(&self, offset: u64) -> EventTime {
        self.stream_time
            .get()
            .unwrap_or_else(|| before_first_record(offset))
    }
}

/// Every partition of a stopped ingest is ended (for the stats).
fn report_stopped(stats: &Stats, parts: &[Partition]) {
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

/// How far (in stream time) a worker's ingest may run ahead of what the
/// window operators have completed. Only flow control: it bounds buffering
/// when one worker's partitions are faster, and never changes results.
const MAX_LEAD: EventTime = 1_000;

/// Whether `time` is further ahead of the partition's stream time than the
/// guard allows (never for a partition's first record).
fn is_future(skew: Option<EventTime>, stream_time: &StreamTime, time: EventTime) -> bool {
    match (skew, stream_time.get()) {
        (Some(skew), Some(st)) => time > st.saturating_add(skew),
        _ => false,
    }
}

/// The dead letter of a record stamped too far in the future.
fn future_letter(r: &Record, stream_time: EventTime, skew: EventTime) -> DeadLetter {
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

/// The markers that tell every window operator this ingest stops at `at`.
fn stop_markers(at: EventTime, peers: usize) -> impl Iterator<Item = Ingest> {
    (0..peers).map(move |d| Ingest::Stop { dest: d as u32, at })
}

/// The ingest operator of worker `index` of `peers`: reads the partitions
/// `p ≡ index (mod peers)` of the settings' partitions.
pub(crate) fn ingest<'scope>(
    scope: Scope<'scope, EventTime>,
    settings: IngestSettings,
    control: Arc<Control>,
    index: usize,
    peers: usize,
    probe: ProbeHandle<EventTime>,
) -> Stream<'scope, EventTime, Vec<Ingest>> {
    let source = Arc::clone(&settings.source);
    let mine: Vec<PartitionId> = settings
        .partitions
        .iter()
        .copied()
        .filter(|&p| p as usize % peers == index)
        .collect();
    timely_source::<_, CapacityContainerBuilder<Vec<Ingest>>, _, _>(
        scope,
        "Ingest",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut parts: Vec<Partition> = Vec::new();
            for &id in &mine {
                let start = settings.start.get(&id).copied().unwrap_or_default();
                match source.open(id, start.offset) {
                    Ok(reader) => parts.push(Partition {
                        id,
                        reader,
                        stream_time: start
                            .stream_time
                            .map_or_else(StreamTime::new, StreamTime::at),
                        ended: false,
                        caught_up_since: None,
                        idle: false,
                        jumps: settings
                            .replay
                            .as_ref()
                            .and_then(|r| r.resumes.get(&id))
                            .map(|list| {
                                list.iter()
                                    .copied()
                                    .filter(|(o, _)| *o >= start.offset)
                                    .collect()
                            })
                            .unwrap_or_default(),
                        // A replay makes the recorded jumps only.
                        floor: settings.resumed_at.filter(|_| settings.replay.is_none()),
                    }),
                    Err(e) => control.fail(e.into()),
                }
            }
            Stats::add(&control.stats.partitions, parts.len() as u64);
            for part in &parts {
                control.stats.report_partition(part.id, |live| {
                    live.next_offset = part.reader.position();
                    live.stream_time = part.stream_time.get();
                });
            }
            let mut cap = cap;
            if let Some(at) = settings.resumed_at {
                // Everything below the checkpoint's frontier was applied
                // before: nothing is sent below it.
                if at > *cap.time() {
                    cap.downgrade(&at);
                }
            }
            let mut cap: Option<Capability<EventTime>> = Some(cap);
            // The capability's time before the last batch was sent.
            let mut lead_from = EventTime::MIN;
            let mut decoded: Vec<Decoded> = Vec::new();
            let mut batches: Vec<Batch> = Vec::new();
            let mut extra: Vec<Ingest> = Vec::new();
            let batch_size = settings.batch_size;
            let fail_on_bad = settings.fail_on_bad;
            let idle_after = settings.idle_after;
            let max_future_skew = settings.max_future_skew;
            let cut_every = settings.cut_every_offsets.filter(|&n| n > 0);
            let replay_stop = settings.replay.as_ref().and_then(|r| r.stop);
            move |output| {
                let Some(c) = cap.as_mut() else { return };
                if control.stopping() {
                    output
                        .session(&*c)
                        .give_iterator(stop_markers(*c.time(), peers));
                    report_stopped(&control.stats, &parts);
                    control.publish_hold(index, None);
                    cap = None;
                    return;
                }
                // Wait while this worker is far ahead of the completed frontier
                // (the worker holding that frontier back is never made to wait).
                // Measured from where the last batch started, so one batch that
                // spans more than the lead (sparse input) never waits for itself.
                let completed = probe.with_frontier(|f| f.first().copied());
                if completed.is_some_and(|done| lead_from > done.saturating_add(MAX_LEAD)) {
                    activator.activate_after(Duration::from_micros(200));
                    return;
                }
                let (mut records, mut dead) = (0u64, 0u64);
                let mut caught_up = false;
                // Flow control between this worker's own partitions: one
                // far ahead of the slowest waits for it (what it would read
                // could only be buffered downstream).
                let floor = parts
                    .iter()
                    .filter(|p| !p.ended && !p.idle)
                    .map(Partition::hold)
                    .min()
                    .unwrap_or(EventTime::MAX);
                for part in parts.iter_mut().filter(|p| !p.ended) {
                    if part.hold() > floor.saturating_add(MAX_LEAD) {
                        continue;
                    }
                    decoded.clear();
                    let mut reached_end = false;
                    let (records_before, dead_before) = (records, dead);
                    let mut part_caught_up = false;
                    match part.reader.read(batch_size, &mut decoded) {
                        Ok(ReadStatus::End) => reached_end = true,
                        Ok(ReadStatus::CaughtUp) if decoded.is_empty() => {
                            caught_up = true;
                            part_caught_up = true;
                            let since = *part.caught_up_since.get_or_insert_with(Instant::now);
                            if let Some(after) = idle_after {
                                if !part.idle && since.elapsed() >= after {
                                    part.idle = true;
                                    Stats::add(&control.stats.idle_releases, 1);
                                }
                            }
                        }
                        Ok(_) => {
                            part.caught_up_since = None;
                            let at = *c.time();
                            let released = std::mem::replace(&mut part.idle, false);
                            if part.rejoins_below(&decoded, at) || released {
                                // Back from an idle release: the frontier may
                                // have passed this partition's stream time; its
                                // records arrive at this capability's time.
                                let first = decoded.first().map(|d| match d {
                                    Ok(r) => r.offset,
                                    Err(letter) => letter.offset,
                                });
                                if let Some(offset) = first {
                                    if part.stream_time.get().is_none_or(|st| st < at) {
                                        part.jumps.push_front((offset, at));
                                        control.decide(Decision::Resume {
                                            partition: part.id,
                                            offset,
                                            stream_time: at,
                                        });
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            control.fail(e.into());
                            part.ended = true;
                        }
                    }
                    let partition = part.id;
                    batches.clear();
                    // Room for a fair share of the batch and some skew.
                    let capacity = (decoded.len() / peers + decoded.len() / (4 * peers) + 16)
                        .min(decoded.len());
                    batches.extend(
                        (0..peers).map(|d| Batch::with_capacity(d as u32, partition, capacity)),
                    );
                    for d in decoded.drain(..) {
                        let at_offset = match &d {
                            Ok(r) => r.offset,
                            Err(letter) => letter.offset,
                        };
                        while let Some(&(offset, at)) = part.jumps.front() {
                            if offset > at_offset {
                                break;
                            }
                            part.stream_time.observe(at);
                            part.jumps.pop_front();
                        }
                        match d {
                            Ok(r)
                                if is_future(max_future_skew, &part.stream_time, r.event_time) =>
                            {
                                dead += 1;
                                let at = part.hold();
                                extra.push(Ingest::Dead {
                                    at,
                                    letter: future_letter(
                                        &r,
                                        at,
                                        max_future_skew.unwrap_or_default(),
                                    ),
                                });
                            }
                            Ok(r) => {
                                let stream_time = part.stream_time.observe(r.event_time);
                                records += 1;
                                let dest = if peers == 1 {
                                    0
                                } else {
                                    (key_hash(&r.key) % peers as u64) as usize
                                };
                                let value = crate::event::number(r.value);
                                batches[dest].push(
                                    stream_time,
                                    r.offset,
                                    r.key,
                                    r.event_time,
                                    value,
                                );
                            }
                            Err(letter) => {
                                dead += 1;
                                if fail_on_bad {
                                    control.fail(EngineError::BadRecord {
                                        partition: letter.partition,
                                        offset: letter.offset,
                                        file: letter.file.clone(),
                                        line: letter.line,
                                        reason: letter.reason.clone(),
                                    });
                                    part.ended = true;
                                    reached_end = false;
                                    break;
                                }
                                let at = part.dead_letter_time(letter.offset);
                                extra.push(Ingest::Dead { at, letter });
                            }
                        }
                        if let Some(n) = cut_every {
                            if at_offset.saturating_add(1) % n == 0 {
                                // A cut just after this record's stream time
                                // (sent below it, at this capability).
                                if let Some(st) = part.stream_time.get() {
                                    let at = st.saturating_add(1);
                                    extra.extend(
                                        (0..peers).map(|d| Ingest::Cut { dest: d as u32, at }),
                                    );
                                }
                            }
                        }
                    }
                    if let Some(&(offset, _)) = part.jumps.front().filter(|_| reached_end) {
                        // A replayed decision past the partition's end: the
                        // decisions are not this input's.
                        control.fail(EngineError::Config(format!(
                            "the time decisions replayed name offset {offset} of partition {partition}, past its end ({} records): they were recorded over another input",
                            part.reader.position()
                        )));
                        reached_end = false;
                        part.ended = true;
                    }
                    if reached_end {
                        part.ended = true;
                        extra.extend((0..peers).map(|d| Ingest::End {
                            dest: d as u32,
                            partition,
                        }));
                    }
                    control.stats.report_partition(partition, |live| {
                        live.next_offset = part.reader.position();
                        live.stream_time = part.stream_time.get();
                        live.records += records - records_before;
                        live.dead_letters += dead - dead_before;
                        live.state = if part.ended {
                            crate::stats::PartitionState::Ended
                        } else if part.idle {
                            crate::stats::PartitionState::Idle
                        } else if part_caught_up {
                            crate::stats::PartitionState::CaughtUp
                        } else {
                            crate::stats::PartitionState::Reading
                        };
                    });
                    let mut session = output.session(&*c);
                    for b in batches.drain(..).filter(|b| b.len() > 0) {
                        session.give(Ingest::Records(b));
                    }
                    session.give_iterator(extra.drain(..));
                }
                control.stats.counts.add(&Counts {
                    records,
                    dead_letters: dead,
                    ..Counts::default()
                });
                if control.stopping() {
                    // Stopped while reading (a bad record with `fail`, an I/O
                    // error): the capability stays where it is until the
                    // window operators know; a stopped partition must not
                    // let the frontier pass it.
                    output
                        .session(&*c)
                        .give_iterator(stop_markers(*c.time(), peers));
                    report_stopped(&control.stats, &parts);
                    control.publish_hold(index, None);
                    cap = None;
                    return;
                }
                // Hold the capability at the lowest stream time a partition may
                // still send. Idle partitions do not hold it back; when every
                // open partition is idle it stays at the highest stream time seen.
                let open = || parts.iter().filter(|p| !p.ended);
                let own = open().filter(|p| !p.idle).map(Partition::hold).min();
                control.publish_hold(index, own);
                // Every open partition idle: hold the capability at the
                // newest stream time seen, or where the process's other
                // workers hold the frontier if that is further (this
                // worker then does not hold it back; the global frontier
                // is still the least over every worker).
                let hold = own.or_else(|| {
                    let newest = open().map(Partition::hold).max();
                    match (newest, control.others_hold(index)) {
                        (Some(n), Some(o)) => Some(n.max(o)),
                        (n, _) => n,
                    }
                });
                if let Some(stop) = replay_stop {
                    if hold.is_none_or(|t| t >= stop) {
                        // Replaying a run that was stopped: stop where it did.
                        output.session(&*c).give_iterator(stop_markers(stop, peers));
                        cap = None;
                        return;
                    }
                }
                match hold {
                    Some(t) => {
                        lead_from = *c.time();
                        if t > *c.time() {
                            c.downgrade(&t);
                        }
                        if caught_up {
                            // Followed input with nothing new: look again shortly.
                            activator.activate_after(Duration::from_millis(10));
                        } else {
                            activator.activate();
                        }
                    }
                    None => {
                        Stats::add(&control.stats.partitions_done, parts.len() as u64);
                        control.publish_hold(index, None);
                        cap = None;
                    }
                }
            }
        },
    )
}
