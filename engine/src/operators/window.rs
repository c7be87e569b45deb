//! The window operator: applies the records the frontier has passed, in
//! (stream time, partition, offset) order ([`EventOrder`]), to this
//! worker's [`WindowState`], one frontier step at a time, and sends the
//! rows, late records and dead letters on.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidemark_sources::{DeadLetter, Key, PartitionId};
use tidemark_windows::{EventTime, WindowState};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::Stream;

use super::cuts::CutTracker;
use crate::aggregator::JobAggregator;
use crate::counts::Counts;
use crate::event::{Emit, Ingest, LateReason, LateRecord, Rows};
use crate::order::EventOrder;
use crate::sink::json::format_event;
use crate::stats::Stats;

/// Result rows after which an activation hands its rows on and lets the
/// sink write them before applying more steps: the rows held at once stay
/// bounded (one step's rows can still exceed it).
const MAX_ROWS_PER_ACTIVATION: usize = 1 << 16;

/// The window operator of worker `worker`.
///
/// With `sink_here` (the sink runs in this process), an activation that
/// handed a chunk of rows on waits until the sink has written it.
///
/// `state` is this worker's share of the window state (`None` if it could
/// not be built: the operator then only lets its capability go). With
/// `ends_expected = Some(n)`, the input has ended only once `n` partitions
/// sent their end. An ingest that stops early says where
/// ([`Ingest::Stop`]): the operator then applies only the steps before the
/// earliest such time, fires what that frontier fires, and reports it
/// ([`Emit::Stopped`]); the windows still open are not fired. An empty
/// frontier with neither every end nor a stop (a lost peer) fires nothing
/// more. With `ends_expected = None`, an empty frontier is the end of the
/// input.
///
/// With `cuts` (checkpoints), the operator reports every checkpoint cut it
/// passes ([`Emit::Cut`], see `cuts`), and its positions and counters at
/// the end of the input.
#[allow(clippy::too_many_arguments)]
pub(crate) fn window<'scope, A: JobAggregator>(
    input: Stream<'scope, EventTime, Vec<Ingest>>,
    state: Option<WindowState<Key, A>>,
    stats: Arc<Stats>,
    ends_expected: Option<usize>,
    worker: usize,
    sink_here: bool,
    cuts: Vec<CutTracker>,
) -> Stream<'scope, EventTime, Vec<Emit<A::Output>>> {
    let mut cuts = cuts;
    let pact = Exchange::new(|item: &Ingest| match item {
        Ingest::Records(b) => u64::from(b.dest),
        Ingest::Dead { letter, .. } => letter.partition as u64,
        Ingest::End { dest, .. } | Ingest::Stop { dest, .. } | Ingest::Cut { dest, .. } => {
            u64::from(*dest)
        }
    });
    let mut state = state;
    let mut peak = match stats
        .sample_state
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        0 => None,
        every => Some(StatePeak::new(every)),
    };
    let scope = input.scope();
    input.unary_frontier::<CapacityContainerBuilder<Vec<Emit<A::Output>>>, _, _, _>(
        pact,
        "Window",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            let mut order = EventOrder::default();
            let mut ended: BTreeSet<PartitionId> = BTreeSet::new();
            let mut stop_at: Option<EventTime> = None;
            let mut changes = Vec::new();
            let mut emitted: Vec<Emit<A::Output>> = Vec::new();
            let mut missed = Vec::new();
            // When this worker last looked for its oldest open window.
            let mut last_oldest: Option<std::time::Instant> = None;
            let mut oldest_dirty = true;
            // Records dropped as late in this activation, by partition.
            let mut late_by_partition: Vec<(PartitionId, u64)> = Vec::new();
            // After handing a chunk on: wait for the sink to write it.
            let mut handed_on = false;
            // What this run's steps did so far (the cut reports carry it),
            // and how much of it the process's counts have.
            let mut applied = Counts::default();
            let mut counted = Counts::default();
            move |(input, frontier), output| {
                input.for_each(|_time, data| {
                    for item in data.drain(..) {
                        match item {
                            Ingest::Records(b) => order.push(b),
                            // A dead letter's time is at or above the
                            // capability, so it may go on at once.
                            Ingest::Dead { at, letter } => emitted.push(Emit::Dead { at, letter }),
                            Ingest::End { partition, .. } => {
                                ended.insert(partition);
                            }
                            Ingest::Stop { at, .. } => {
                                stop_at = Some(stop_at.map_or(at, |s| s.min(at)));
                            }
                            Ingest::Cut { at, .. } => {
                                for c in cuts.iter_mut() {
                                    c.mark(at);
                                }
                            }
                        }
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let Some(state) = state.as_mut() else {
                    cap = None;
                    return;
                };
                if handed_on {
                    // Flow control: the sink of this process has written up
                    // to its frontier (`Stats::frontier`); go on once it has
                    // taken what this operator handed on.
                    let written = stats.frontier.load(std::sync::atomic::Ordering::Relaxed);
                    if sink_here && written < *c.time() {
                        activator.activate_after(std::time::Duration::from_micros(200));
                        return;
                    }
                    handed_on = false;
                }
                let frontier_now = frontier.frontier().first().copied();
                let finished = frontier_now.is_none()
                    && stop_at.is_none()
                    && ends_expected.is_none_or(|n| ended.len() >= n);
                if frontier_now.is_none() && stop_at.is_none() && !finished {
                    // Lost input (no end, no stop): the open windows are not
                    // complete.
                    cap = None;
                    return;
                }
                // The input is complete below the frontier, and below the
                // earliest stop.
                let upto = match (frontier_now, stop_at) {
                    (Some(f), Some(s)) => Some(f.min(s)),
                    (f, s) => f.or(s),
                };
                // The last step applied, when this activation stops early to
                // hand a bounded chunk of rows on.
                let mut last_step: Option<EventTime> = None;
                let mut yielded = false;
                let mut control_error = None;
                while let Some(step) = order.next_step(upto) {
                    if changes.len() >= MAX_ROWS_PER_ACTIVATION && last_step.is_some() {
                        yielded = true;
                        break;
                    }
                    last_step = Some(step);
                    for tracker in cuts.iter_mut() {
                        // Every step below `step` is applied: the cuts up to
                        // it are passed.
                        match tracker.pass(step, state, &applied) {
                            Ok(Some(report)) => emitted.push(Emit::Cut(report)),
                            Ok(None) => {}
                            Err(e) => control_error = Some(e),
                        }
                    }
                    state.advance(step, &mut changes);
                    let tracker = &mut cuts;
                    let applied = &mut applied;
                    order.drain_step(step, |b, i| {
                        for t in tracker.iter_mut() {
                            t.note(b.partition, b.offsets[i], b.stream_times[i]);
                        }
                        applied.records += 1;
                        missed.clear();
                        match state.apply(b.keys[i].clone(), b.times[i], &b.values[i], &mut missed)
                        {
                            Ok(outcome) => {
                                if outcome.late > 0 {
                                    applied.late_applied += 1;
                                }
                                if outcome.windows == 0 && outcome.missed == 0 {
                                    // In no window (sliding windows with gaps):
                                    // not dropped silently.
                                    applied.unassigned += 1;
                                    emitted.push(Emit::Late(LateRecord {
                                        event: b.event(i),
                                        missed: Vec::new(),
                                        reason: LateReason::NoWindow,
                                    }));
                                } else if outcome.is_dropped() {
                                    applied.late_dropped += 1;
                                    match late_by_partition.last_mut() {
                                        Some((p, n)) if *p == b.partition => *n += 1,
                                        _ => late_by_partition.push((b.partition, 1)),
                                    }
                                    emitted.push(Emit::Late(LateRecord {
                                        event: b.event(i),
                                        missed: missed.clone(),
                                        reason: LateReason::TooLate,
                                    }));
                                }
                            }
                            Err(e) => {
                                applied.dead_letters += 1;
                                let event = b.event(i);
                                let mut raw = String::new();
                                format_event(&event, &mut raw);
                                emitted.push(Emit::Dead {
                                    at: step,
                                    letter: DeadLetter {
                                        partition: b.partition,
                                        offset: b.offsets[i],
                                        file: None,
                                        line: None,
                                        reason: e.to_string(),
                                        raw,
                                    },
                                });
                            }
                        }
                    });
                    state.end_step(&mut changes);
                    if let Some(p) = peak.as_mut() {
                        p.after_step(step, state, &stats);
                    }
                }
                if !yielded {
                    for tracker in cuts.iter_mut().filter(|_| upto.is_some()) {
                        let Some(f) = upto else { break };
                        match tracker.pass(f, state, &applied) {
                            Ok(Some(report)) => emitted.push(Emit::Cut(report)),
                            Ok(None) => {}
                            Err(e) => control_error = Some(e),
                        }
                    }
                    if let (Some(p), None) = (peak.as_mut(), upto) {
                        // The end: what is open before the last fires.
                        p.sample(state, &stats);
                    }
                    match upto {
                        Some(f) => state.advance(f, &mut changes),
                        None => state.finish(&mut changes),
                    }
                }
                for tracker in cuts.iter_mut() {
                    Stats::add(
                        &stats.checkpoint_nanos,
                        std::mem::take(&mut tracker.encode_nanos),
                    );
                }
                if let Some(e) = control_error.take() {
                    // A state that cannot be encoded: no checkpoint can be
                    // taken; stop checkpointing and say so.
                    stats.notice(format!("checkpoints stopped: {e}"));
                    cuts.retain(|c| c.for_stats());
                }
                if stats.oldest_wanted() {
                    // Look again at most twice a second, and once more after
                    // the last change.
                    oldest_dirty |= last_step.is_some() || upto.is_some();
                    let every = std::time::Duration::from_millis(500);
                    let since = last_oldest.map(|t: std::time::Instant| t.elapsed());
                    if oldest_dirty && since.is_none_or(|s| s >= every) {
                        last_oldest = Some(std::time::Instant::now());
                        oldest_dirty = false;
                        let oldest = state.oldest_open_window().map(|(e, k)| (e, k as u64));
                        stats.report_oldest(worker, oldest);
                    } else if let Some(s) = since.filter(|_| oldest_dirty) {
                        activator.activate_after(every.saturating_sub(s));
                    }
                }
                // (The process counts records as the ingests read them.)
                stats.counts.add(&Counts {
                    records: 0,
                    ..applied.since(&counted)
                });
                counted = applied;
                stats.add_late(&late_by_partition);
                late_by_partition.clear();
                if !changes.is_empty() {
                    let capacity = changes.len().min(MAX_ROWS_PER_ACTIVATION);
                    let rows = std::mem::replace(&mut changes, Vec::with_capacity(capacity));
                    emitted.push(Emit::Rows(Rows {
                        worker: worker as u32,
                        rows,
                    }));
                }
                if yielded {
                    // The rows so far go on now; the rest of the steps the
                    // frontier passed follow in the next activation. Later
                    // rows all have times after the last step applied.
                    if !emitted.is_empty() {
                        output.session(&*c).give_iterator(emitted.drain(..));
                    }
                    if let Some(resume) = last_step.map(|s| s.saturating_add(1)) {
                        if resume > *c.time() {
                            c.downgrade(&resume);
                        }
                    }
                    handed_on = true;
                    activator.activate();
                    return;
                }
                if frontier_now.is_none() {
                    if stop_at.is_none() {
                        for tracker in cuts.iter_mut() {
                            emitted.push(Emit::Cut(tracker.finish(&applied)));
                        }
                    }
                    emitted.push(match stop_at {
                        Some(at) => Emit::Stopped {
                            worker: worker as u32,
                            at,
                        },
                        None => Emit::Finished {
                            worker: worker as u32,
                        },
                    });
                }
                if !emitted.is_empty() {
                    output.session(&*c).give_iterator(emitted.drain(..));
                }
                match (frontier_now, upto) {
                    (Some(_), Some(f)) => {
                        if f > *c.time() {
                            c.downgrade(&f);
                        }
                    }
                    _ => cap = None,
                }
            }
        },
    )
}

/// A worker's peak window state, sampled after the first frontier step at
/// or past each multiple of `every` (see
/// [`EngineConfig::sample_state`](crate::EngineConfig::sample_state)).
struct StatePeak {
    every: EventTime,
    next: EventTime,
    open: u64,
    bytes: u64,
    /// The open count and encoded size at the last encoding.
    encoded: (u64, u64),
}

impl StatePeak {
    fn new(every: EventTime) -> Self {
        StatePeak {
            every,
            next: EventTime::MIN,
            open: 0,
            bytes: 0,
            encoded: (0, 0),
        }
    }

    /// Samples after `step` when it reached the next sample point.
    #[inline]
    fn after_step<A: JobAggregator>(
        &mut self,
        step: EventTime,
        state: &WindowState<Key, A>,
        stats: &Stats,
    ) {
        if step >= self.next {
            self.next = step
                .div_euclid(self.every)
                .saturating_add(1)
                .saturating_mul(self.every);
            self.sample(state, stats);
        }
    }

    /// Counts the open states; at a new peak, encodes the state for its
    /// size, and adds what grew to the process's stats.
    fn sample<A: JobAggregator>(&mut self, state: &WindowState<Key, A>, stats: &Stats) {
        let open = state.open_states() as u64;
        if open <= self.open {
            return;
        }
        Stats::add(&stats.peak_open_windows, open - self.open);
        self.open = open;
        // Encoding is what costs: encode again only when the count grew by
        // a tenth since the last encoding, and scale that size meanwhile.
        if open >= self.encoded.0.saturating_add(self.encoded.0 / 10).max(1) {
            if let Ok(encoded) = crate::operators::cuts::encode_state(state) {
                self.encoded = (open, encoded.len() as u64);
            }
        }
        let (at, size) = self.encoded;
        let bytes = if at == 0 {
            0
        } else {
            (u128::from(size) * u128::from(open) / u128::from(at)) as u64
        };
        if bytes > self.bytes {
            Stats::add(&stats.peak_state_bytes, bytes - self.bytes);
            self.bytes = bytes;
        }
    }
}
