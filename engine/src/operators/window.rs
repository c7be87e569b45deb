//! The window operator: applies the records the frontier has passed, in
//! (stream time, partition, offset) order ([`EventOrder`]), to this
//! worker's [`WindowState`], one frontier step at a time, and sends the
//! rows, late records and dead letters on.
//!
//! [`WindowOperator`] is the operator's logic, built from its
//! [`WindowSettings`]: [`on_input`](WindowOperator::on_input) takes what
//! arrives, [`on_frontier`](WindowOperator::on_frontier) applies the steps
//! the frontier completed and says what becomes of the capability
//! ([`Next`]). [`window`] is the thin Timely operator around it. What the
//! steps leave aside — counting, cut reports, the oldest open window, the
//! state's peak — is kept by small parts of its own ([`Tally`],
//! [`OldestPoll`], [`StatePeak`], the [`CutTracker`]s).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tidemark_sources::{DeadLetter, Key, PartitionId};
use tidemark_windows::{EventTime, WindowState};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::Stream;

use super::cuts::CutTracker;
use super::observe::{OldestPoll, StatePeak};
use super::Control;
use crate::aggregator::JobAggregator;
use crate::counts::Counts;
use crate::event::{Batch, Emit, Ingest, LateReason, LateRecord, Row, Rows};
use crate::order::EventOrder;
use crate::sink::json::format_event;
use crate::stats::Stats;

/// Result rows after which an activation hands its rows on and lets the
/// sink write them before applying more steps: the rows held at once stay
/// bounded (one step's rows can still exceed it).
const MAX_ROWS_PER_ACTIVATION: usize = 1 << 16;

/// What a window operator is built from.
pub(crate) struct WindowSettings<A: JobAggregator> {
    /// This worker's share of the window state (`None` if it could not be
    /// built: the operator then only lets its capability go).
    pub(crate) state: Option<WindowState<Key, A>>,
    /// With `Some(n)`, the input has ended only once `n` partitions sent
    /// their end; with `None`, an empty frontier is the end of the input.
    pub(crate) ends_expected: Option<usize>,
    /// The worker's index.
    pub(crate) worker: usize,
    /// The control of this process when its sink runs here: an activation
    /// that handed a chunk of rows on waits until the sink has written it.
    pub(crate) flow: Option<Arc<Control>>,
    /// The checkpoint and stats-log cuts to report.
    pub(crate) cuts: Vec<CutTracker>,
    /// Sample the state's size every this many ms of stream time.
    pub(crate) sample_every: Option<EventTime>,
}

/// What becomes of the operator's capability after an activation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing now: activate again after this long, sending nothing.
    Wait(Duration),
    /// Let the capability go without sending anything (a lost input, or
    /// no state).
    Abandon,
    /// Send what was emitted, hold the capability at this time (if later)
    /// and activate again at once: a bounded chunk of rows went on and
    /// the steps after it are still to apply.
    Yield(Option<EventTime>),
    /// Send what was emitted and hold the capability at this time (if
    /// later).
    Hold(EventTime),
    /// Send what was emitted and let the capability go: the input ended or
    /// stopped.
    Release,
}

/// The window operator of one worker.
///
/// An ingest that stops early says where ([`Ingest::Stop`]): the operator
/// then applies only the steps before the earliest such time, fires what
/// that frontier fires, and reports it ([`Emit::Stopped`]); the windows
/// still open are not fired. An empty frontier with neither every end nor
/// a stop (a lost peer) fires nothing more.
///
/// With cuts (checkpoints, a stats log), the operator reports every cut it
/// passes ([`Emit::Cut`], see `cuts`), and its positions and counters at
/// the end of the input.
pub(crate) struct WindowOperator<A: JobAggregator> {
    state: Option<WindowState<Key, A>>,
    ends_expected: Option<usize>,
    worker: usize,
    flow: Option<Arc<Control>>,
    cuts: Vec<CutTracker>,
    peak: Option<StatePeak>,
    stats: Arc<Stats>,
    order: EventOrder,
    ended: BTreeSet<PartitionId>,
    stop_at: Option<EventTime>,
    /// Rows of the steps applied, not yet emitted.
    changes: Vec<Row<A::Output>>,
    /// What goes on at the next send.
    pub(crate) emitted: Vec<Emit<A::Output>>,
    missed: Vec<tidemark_windows::Window>,
    tally: Tally,
    oldest: OldestPoll,
    /// After handing a chunk on: wait for the sink to write it.
    handed_on: bool,
}

impl<A: JobAggregator> WindowOperator<A> {
    /// The operator of `settings`, counting into `stats`.
    pub(crate) fn new(settings: WindowSettings<A>, stats: Arc<Stats>) -> Self {
        WindowOperator {
            state: settings.state,
            ends_expected: settings.ends_expected,
            worker: settings.worker,
            flow: settings.flow,
            cuts: settings.cuts,
            peak: settings.sample_every.map(StatePeak::new),
            stats,
            order: EventOrder::default(),
            ended: BTreeSet::new(),
            stop_at: None,
            changes: Vec::new(),
            emitted: Vec::new(),
            missed: Vec::new(),
            tally: Tally::default(),
            oldest: OldestPoll::default(),
            handed_on: false,
        }
    }

    /// Takes one item of the input.
    pub(crate) fn on_input(&mut self, item: Ingest) {
        match item {
            Ingest::Records(b) => self.order.push(b),
            // A dead letter's time is at or above the capability, so it
            // may go on at once.
            Ingest::Dead { at, letter } => self.emitted.push(Emit::Dead { at, letter }),
            Ingest::End { partition, .. } => {
                self.ended.insert(partition);
            }
            Ingest::Stop { at, .. } => {
                self.stop_at = Some(self.stop_at.map_or(at, |s| s.min(at)));
            }
            Ingest::Cut { at, .. } => {
                for c in self.cuts.iter_mut() {
                    c.mark(at);
                }
            }
            // At or above the capability, as a dead letter.
            Ingest::Late { late, .. } => self.emitted.push(Emit::Late(*late)),
        }
    }

    /// With the input's frontier at `frontier` (`None`: empty) and the
    /// capability at `held`: applies the steps the frontier (and a stop)
    /// completed, fires what they fire, and says what becomes of the
    /// capability. What to send is in [`emitted`](Self::emitted).
    pub(crate) fn on_frontier(&mut self, frontier: Option<EventTime>, held: EventTime) -> Next {
        // A look for the oldest window is asked for only by an activation
        // that looked (`after_activation`).
        self.oldest.wake = None;
        if self.state.is_none() {
            return Next::Abandon;
        }
        if self.handed_on {
            // Flow control: go on once the sink of this process has
            // written what this operator handed on.
            if self.flow.as_ref().is_some_and(|c| c.written() < held) {
                return Next::Wait(Duration::from_micros(200));
            }
            self.handed_on = false;
        }
        let finished = frontier.is_none()
            && self.stop_at.is_none()
            && self.ends_expected.is_none_or(|n| self.ended.len() >= n);
        if frontier.is_none() && self.stop_at.is_none() && !finished {
            // Lost input (no end, no stop): the open windows are not
            // complete.
            return Next::Abandon;
        }
        // The input is complete below the frontier, and below the earliest
        // stop.
        let upto = match (frontier, self.stop_at) {
            (Some(f), Some(s)) => Some(f.min(s)),
            (f, s) => f.or(s),
        };
        let (last_step, yielded) = self.apply_steps(upto);
        if !yielded {
            self.pass_frontier(upto);
        }
        self.after_activation(last_step.is_some() || upto.is_some());
        if yielded {
            // The rows so far go on now; the rest of the steps the frontier
            // passed follow in the next activation. Later rows all have
            // times after the last step applied.
            self.handed_on = true;
            return Next::Yield(last_step.map(|s| s.saturating_add(1)));
        }
        if frontier.is_none() {
            if self.stop_at.is_none() {
                for tracker in self.cuts.iter_mut() {
                    self.emitted
                        .push(Emit::Cut(tracker.finish(&self.tally.applied)));
                }
            }
            let worker = self.worker as u32;
            self.emitted.push(match self.stop_at {
                Some(at) => Emit::Stopped { worker, at },
                None => Emit::Finished { worker },
            });
        }
        match (frontier, upto) {
            (Some(_), Some(f)) => Next::Hold(f),
            _ => Next::Release,
        }
    }

    /// When the oldest open window is wanted and was not looked at for
    /// long enough: how long until the operator should look again.
    pub(crate) fn look_again(&self) -> Option<Duration> {
        self.oldest.wake
    }

    /// Applies the steps below `upto` (all steps with `None`), handing on
    /// early when the rows grow past [`MAX_ROWS_PER_ACTIVATION`]: the last
    /// step applied, and whether it handed on early.
    fn apply_steps(&mut self, upto: Option<EventTime>) -> (Option<EventTime>, bool) {
        let Some(state) = self.state.as_mut() else {
            return (None, false);
        };
        let mut last_step = None;
        while let Some(step) = self.order.next_step(upto) {
            if self.changes.len() >= MAX_ROWS_PER_ACTIVATION && last_step.is_some() {
                return (last_step, true);
            }
            last_step = Some(step);
            // Every step below `step` is applied: the cuts up to it are
            // passed.
            pass_cuts(
                &mut self.cuts,
                step,
                state,
                &self.tally.applied,
                &mut self.emitted,
                &self.stats,
            );
            state.advance(step, &mut self.changes);
            let (cuts, tally, emitted, missed) = (
                &mut self.cuts,
                &mut self.tally,
                &mut self.emitted,
                &mut self.missed,
            );
            self.order.drain_step(step, |b, i| {
                for t in cuts.iter_mut() {
                    t.note(b.partition, b.offsets[i], b.stream_times[i]);
                }
                apply_record(state, b, i, step, tally, emitted, missed);
            });
            state.end_step(&mut self.changes);
            if let Some(p) = self.peak.as_mut() {
                p.after_step(step, state, &self.stats);
            }
        }
        (last_step, false)
    }

    /// Every step below `upto` is applied: passes the cuts up to it and
    /// fires what it fires (everything, at the end of the input).
    fn pass_frontier(&mut self, upto: Option<EventTime>) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match upto {
            Some(f) => {
                pass_cuts(
                    &mut self.cuts,
                    f,
                    state,
                    &self.tally.applied,
                    &mut self.emitted,
                    &self.stats,
                );
                state.advance(f, &mut self.changes);
            }
            None => {
                if let Some(p) = self.peak.as_mut() {
                    // The end: what is open before the last fires.
                    p.sample(state, &self.stats);
                }
                state.finish(&mut self.changes);
            }
        }
    }

    /// After the steps of an activation (`changed`: any was applied or the
    /// frontier moved): the time spent encoding cut reports, the oldest
    /// open window, the counts, and the rows to send.
    fn after_activation(&mut self, changed: bool) {
        for tracker in self.cuts.iter_mut() {
            Stats::add(
                &self.stats.checkpoint_nanos,
                std::mem::take(&mut tracker.encode_nanos),
            );
        }
        if let Some(state) = self.state.as_ref() {
            self.oldest.poll(changed, state, self.worker, &self.stats);
        }
        self.tally.flush(&self.stats);
        if !self.changes.is_empty() {
            let capacity = self.changes.len().min(MAX_ROWS_PER_ACTIVATION);
            let rows = std::mem::replace(&mut self.changes, Vec::with_capacity(capacity));
            self.emitted.push(Emit::Rows(Rows {
                worker: self.worker as u32,
                rows,
            }));
        }
    }
}

/// Passes the cuts up to `at` (every step below it applied). A state that
/// cannot be encoded stops the checkpoints (the stats log goes on), and
/// says so.
fn pass_cuts<A: JobAggregator>(
    cuts: &mut Vec<CutTracker>,
    at: EventTime,
    state: &WindowState<Key, A>,
    applied: &Counts,
    emitted: &mut Vec<Emit<A::Output>>,
    stats: &Stats,
) {
    let mut failed = None;
    for tracker in cuts.iter_mut() {
        match tracker.pass(at, state, applied) {
            Ok(Some(report)) => emitted.push(Emit::Cut(report)),
            Ok(None) => {}
            Err(e) => failed = Some(e),
        }
    }
    if let Some(e) = failed {
        stats.notice(format!("checkpoints stopped: {e}"));
        cuts.retain(|c| c.for_stats());
    }
}

/// Applies record `i` of `b` at `step`: a late record goes to the late
/// output, a record in no window too, and one the state refuses (window
/// bounds out of range) to the dead letters.
#[inline]
fn apply_record<A: JobAggregator>(
    state: &mut WindowState<Key, A>,
    b: &Batch,
    i: usize,
    step: EventTime,
    tally: &mut Tally,
    emitted: &mut Vec<Emit<A::Output>>,
    missed: &mut Vec<tidemark_windows::Window>,
) {
    tally.applied.records += 1;
    missed.clear();
    let input: A::Input = b.input(i);
    if let Err(reason) = state.aggregator().check(&input) {
        tally.applied.dead_letters += 1;
        emitted.push(dead_record(b, i, step, reason));
        return;
    }
    match state.apply(b.keys[i].clone(), b.times[i], &input, missed) {
        Ok(outcome) => {
            if outcome.late > 0 {
                tally.applied.late_applied += 1;
            }
            if outcome.windows == 0 && outcome.missed == 0 {
                // In no window (sliding windows with gaps): not dropped
                // silently.
                tally.applied.unassigned += 1;
                emitted.push(Emit::Late(LateRecord {
                    event: b.event(i),
                    missed: Vec::new(),
                    reason: LateReason::NoWindow,
                    table: None,
                }));
            } else if outcome.is_dropped() {
                tally.applied.late_dropped += 1;
                tally.late_in(b.partition);
                emitted.push(Emit::Late(LateRecord {
                    event: b.event(i),
                    missed: missed.clone(),
                    reason: LateReason::TooLate,
                    table: None,
                }));
            }
        }
        Err(e) => {
            tally.applied.dead_letters += 1;
            emitted.push(dead_record(b, i, step, e.to_string()));
        }
    }
}

/// Record `i` of `b` as a dead letter at `step`, for `reason`.
#[cold]
fn dead_record<O>(b: &Batch, i: usize, step: EventTime, reason: String) -> Emit<O> {
    let mut raw = String::new();
    format_event(&b.event(i), &mut raw);
    Emit::Dead {
        at: step,
        letter: DeadLetter {
            partition: b.partition,
            offset: b.offsets[i],
            file: None,
            line: None,
            reason,
            raw,
            table: None,
        },
    }
}

/// The thin Timely operator around a [`WindowOperator`]: records are
/// exchanged to the worker their batch is for, and the capability follows
/// what [`WindowOperator::on_frontier`] says.
pub(crate) fn window<'scope, A: JobAggregator>(
    input: Stream<'scope, EventTime, Vec<Ingest>>,
    settings: WindowSettings<A>,
    stats: Arc<Stats>,
) -> Stream<'scope, EventTime, Vec<Emit<A::Output>>> {
    let pact = Exchange::new(|item: &Ingest| match item {
        Ingest::Records(b) => u64::from(b.dest),
        Ingest::Dead { letter, .. } => letter.partition as u64,
        Ingest::End { dest, .. }
        | Ingest::Stop { dest, .. }
        | Ingest::Cut { dest, .. }
        | Ingest::Late { dest, .. } => u64::from(*dest),
    });
    let mut op = WindowOperator::new(settings, stats);
    let scope = input.scope();
    input.unary_frontier::<CapacityContainerBuilder<Vec<Emit<A::Output>>>, _, _, _>(
        pact,
        "Window",
        move |cap, info| {
            let activator = scope.activator_for(info.address);
            let mut cap = Some(cap);
            move |(input, frontier), output| {
                input.for_each(|_time, data| {
                    for item in data.drain(..) {
                        op.on_input(item);
                    }
                });
                let Some(c) = cap.as_mut() else { return };
                let next = op.on_frontier(frontier.frontier().first().copied(), *c.time());
                if let Some(after) = op.look_again() {
                    activator.activate_after(after);
                }
                let hold = match next {
                    Next::Wait(after) => {
                        activator.activate_after(after);
                        return;
                    }
                    Next::Abandon => {
                        cap = None;
                        return;
                    }
                    Next::Yield(resume) => {
                        activator.activate();
                        resume
                    }
                    Next::Hold(at) => Some(at),
                    Next::Release => None,
                };
                if !op.emitted.is_empty() {
                    output.session(&*c).give_iterator(op.emitted.drain(..));
                }
                if next == Next::Release {
                    cap = None;
                } else if let Some(at) = hold.filter(|at| at > c.time()) {
                    c.downgrade(&at);
                }
            }
        },
    )
}

/// What a window operator's steps did, and how much of it the process's
/// counts have.
#[derive(Default)]
struct Tally {
    /// What this run's steps did so far (the cut reports carry it).
    applied: Counts,
    /// The part of `applied` added to the process's counts.
    counted: Counts,
    /// Records dropped as late since the last flush, by partition.
    late_by_partition: Vec<(PartitionId, u64)>,
}

impl Tally {
    /// A record of `partition` was dropped as late.
    #[inline]
    fn late_in(&mut self, partition: PartitionId) {
        match self.late_by_partition.last_mut() {
            Some((p, n)) if *p == partition => *n += 1,
            _ => self.late_by_partition.push((partition, 1)),
        }
    }

    /// Adds what was applied since the last flush to the process's counts
    /// (but records: the process counts those as the ingests read them).
    fn flush(&mut self, stats: &Stats) {
        stats.counts.add(&Counts {
            records: 0,
            ..self.applied.since(&self.counted)
        });
        self.counted = self.applied;
        stats.add_late(&self.late_by_partition);
        self.late_by_partition.clear();
    }
}
