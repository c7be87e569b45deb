//! The sink operator, on worker 0: writes the rows, late records and dead
//! letters the frontier has completed, in the canonical order, to the
//! job's [`Sink`](crate::Sink)s, and commits them at completed frontier
//! steps.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_sources::DeadLetter;
use tidemark_windows::{ChangeKind, EventTime};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::Stream;

use super::checkpointer::Checkpointer;
use super::stats_log::StatsLogWriter;
use super::Control;
use crate::counts::Counts;
use crate::error::{EngineError, Result};
use crate::event::{Emit, LateRecord};
use crate::order::RowMerge;
use crate::sink::target::OpenSinks;
use crate::sink::{Frontier, Sink};
use crate::stats::Stats;

/// Late records and dead letters waiting for the frontier, by the stream
/// time they were found at.
enum Pending {
    Late(LateRecord),
    Dead(DeadLetter),
}

fn output_error(what: &'static str, sink: &dyn SinkName, source: std::io::Error) -> EngineError {
    EngineError::Output {
        what,
        path: sink.name(),
        source,
    }
}

/// Object-safe access to a sink's description.
trait SinkName {
    fn name(&self) -> String;
}

impl<T> SinkName for Box<dyn Sink<T>> {
    fn name(&self) -> String {
        self.describe()
    }
}

impl<O: 'static> OpenSinks<O> {
    /// Commits every output at `frontier`; once all three have, `stats`
    /// says so ([`Stats::committed_watermark`]).
    fn commit(&mut self, frontier: Frontier, stats: &Stats) -> Result<()> {
        self.results
            .commit(frontier)
            .map_err(|e| output_error("results", &self.results, e))?;
        self.late
            .commit(frontier)
            .map_err(|e| output_error("late records", &self.late, e))?;
        self.dead_letters
            .commit(frontier)
            .map_err(|e| output_error("dead letters", &self.dead_letters, e))?;
        let at = match frontier {
            Frontier::At(t) => t,
            Frontier::Done => EventTime::MAX,
        };
        stats.committed.store(at, Ordering::Relaxed);
        Ok(())
    }

    /// The job failed writing: every output drops what it holds past its
    /// last commit, where it can (files are cut back), so that none ends
    /// in a torn line or holds items the reported watermark does not
    /// cover.
    fn abort(&mut self) {
        let _ = self.results.abort();
        let _ = self.late.abort();
        let _ = self.dead_letters.abort();
    }
}

/// Records a failure of the outputs: they are cut back to their last
/// commit and written no more.
fn fail_outputs<O: 'static>(sinks: &mut Option<OpenSinks<O>>, control: &Control, e: EngineError) {
    control.fail(e);
    if let Some(mut s) = sinks.take() {
        s.abort();
    }
}

/// What the sink operator shares with the worker that runs it: the open
/// sinks and how far they are written and committed.
struct Written<O> {
    sinks: Option<OpenSinks<O>>,
    /// The last frontier whose items are all written.
    frontier_seen: Option<EventTime>,
    /// The last frontier committed.
    committed: Option<EventTime>,
    /// Nothing more is written.
    done: bool,
}

/// The worker's handle on its sink operator, to end the outputs when the
/// dataflow cannot go on (a lost cluster peer).
pub(crate) struct SinkEnd<O: 'static> {
    written: Rc<RefCell<Written<O>>>,
    control: Arc<Control>,
}

impl<O: 'static> SinkEnd<O> {
    /// Ends the outputs where the completed frontiers left them: commits
    /// the last frontier whose items are all written (if it was not yet)
    /// and writes nothing more. The windows still open are not written.
    pub(crate) fn abandon(&self) {
        let Ok(mut written) = self.written.try_borrow_mut() else {
            return;
        };
        let w = &mut *written;
        if std::mem::replace(&mut w.done, true) {
            return;
        }
        if let (Some(s), Some(f)) = (w.sinks.as_mut(), w.frontier_seen) {
            if w.committed != Some(f) {
                match s.commit(Frontier::At(f), &self.control.stats) {
                    Ok(()) => w.committed = Some(f),
                    Err(e) => {
                        self.control.fail(e);
                        s.abort();
                    }
                }
            }
        }
        w.sinks = None;
    }
}

/// The sink operator. `sinks` is `Some` on the worker that writes
/// (worker 0 of process 0); `workers` is the number of window operators,
/// whose end markers make a clean end.
///
/// With a `checkpointer` (on the worker that writes), it writes a
/// checkpoint at each cut the window operators report, once the outputs
/// hold exactly the items before it, and a last one at the end of the
/// input. With `emit_from`, the items of the steps before it are dropped
/// (reprocessing: the output is the suffix from there).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sink<O: timely::ExchangeData + Clone>(
    emitted: Stream<'_, EventTime, Vec<Emit<O>>>,
    sinks: Option<OpenSinks<O>>,
    control: Arc<Control>,
    workers: usize,
    commit_interval: Duration,
    checkpointer: Option<Checkpointer>,
    emit_from: Option<EventTime>,
    stats_log: Option<StatsLogWriter>,
) -> SinkEnd<O> {
    let mut stats_log = stats_log;
    let mut checkpointer = checkpointer;
    let from = emit_from.unwrap_or(EventTime::MIN);
    let written = Rc::new(RefCell::new(Written {
        sinks,
        frontier_seen: None,
        committed: None,
        done: false,
    }));
    let end = SinkEnd {
        written: Rc::clone(&written),
        control: Arc::clone(&control),
    };
    let mut pending: BTreeMap<EventTime, Vec<Pending>> = BTreeMap::new();
    let mut rows: RowMerge<O> = RowMerge::default();
    let mut finished = 0usize;
    let mut stopped_at: Option<EventTime> = None;
    let mut last_commit = Instant::now();
    let scope = emitted.scope();
    let mut builder = OperatorBuilder::new("Sink".to_owned(), scope);
    let activator = scope.activator_for(builder.operator_info().address);
    let mut input = builder.new_input(emitted, Exchange::new(|_: &Emit<O>| 0u64));
    builder.build(move |_capabilities| {
        move |frontiers| {
            let frontier = &frontiers[0];
            input.for_each(|_time, data| {
                for item in data.drain(..) {
                    match item {
                        Emit::Rows(mut r) => {
                            if from > EventTime::MIN {
                                r.rows.retain(|row| row.time >= from);
                            }
                            rows.push(r)
                        }
                        Emit::Late(l) if l.event.stream_time < from => {}
                        Emit::Late(l) => pending
                            .entry(l.event.stream_time)
                            .or_default()
                            .push(Pending::Late(l)),
                        Emit::Dead { at, .. } if at < from => {}
                        Emit::Dead { at, letter } => {
                            pending.entry(at).or_default().push(Pending::Dead(letter))
                        }
                        Emit::Cut(report) if report.stats => {
                            if let Some(log) = stats_log.as_mut() {
                                log.receive(report);
                            }
                        }
                        Emit::Cut(report) => {
                            if let Some(c) = checkpointer.as_mut() {
                                c.receive(report);
                            }
                        }
                        Emit::Finished { .. } => finished += 1,
                        Emit::Stopped { at, .. } => {
                            stopped_at = Some(stopped_at.map_or(at, |s| s.min(at)))
                        }
                    }
                }
            });
            let Ok(mut written) = written.try_borrow_mut() else {
                return;
            };
            let w = &mut *written;
            if w.done {
                rows.clear();
                pending.clear();
                return;
            }
            let mut upto = frontier.frontier().first().copied();
            if upto.is_none() {
                if let Some(at) = stopped_at {
                    control.decide(crate::checkpoint::Decision::Stop { at });
                    // Stopped early: the input is complete below `at`. The
                    // dead letters read past it are written too, after the
                    // complete part (a record that was read and could not be
                    // decoded is never dropped silently).
                    upto = Some(at);
                    if let Some(s) = w.sinks.as_mut() {
                        let result = write_ready(
                            s,
                            &mut rows,
                            &mut pending,
                            upto,
                            &control.stats,
                            &mut checkpointer,
                        )
                        .and_then(|()| write_dead_letters(s, &mut pending))
                        .and_then(|()| s.commit(Frontier::At(at), &control.stats));
                        if let Err(e) = result {
                            fail_outputs(&mut w.sinks, &control, e);
                        }
                    }
                    control.stats.frontier.store(at, Ordering::Relaxed);
                    rows.clear();
                    pending.clear();
                    w.done = true;
                    return;
                }
            }
            if upto.is_none() && finished < workers {
                // Lost input: only what completed frontiers hold is output;
                // the rest is incomplete.
                rows.clear();
                pending.clear();
                w.done = true;
                if let Some(s) = w.sinks.as_mut() {
                    if let Some(f) = w.frontier_seen.filter(|&f| w.committed != Some(f)) {
                        if let Err(e) = s.commit(Frontier::At(f), &control.stats) {
                            fail_outputs(&mut w.sinks, &control, e);
                        }
                    }
                }
                return;
            }
            if let Some(s) = w.sinks.as_mut() {
                let result = checkpoint_before(
                    s,
                    &mut rows,
                    &mut pending,
                    upto,
                    w.frontier_seen,
                    &control.stats,
                    &mut checkpointer,
                    &mut stats_log,
                )
                .and_then(|()| {
                    write_ready(
                        s,
                        &mut rows,
                        &mut pending,
                        upto,
                        &control.stats,
                        &mut checkpointer,
                    )
                });
                if let Err(e) = result {
                    fail_outputs(&mut w.sinks, &control, e);
                }
            }
            // The stats log after the checkpoint: a checkpoint records the
            // log with its lines up to the cut only.
            if let Some(log) = stats_log.as_mut() {
                if let Err(source) = log.advance(upto) {
                    control.fail(EngineError::Output {
                        what: "stats",
                        path: log.path().to_owned(),
                        source,
                    });
                    stats_log = None;
                }
            }
            match upto {
                Some(f) => {
                    control.stats.frontier.store(f, Ordering::Relaxed);
                    w.frontier_seen = Some(f);
                    if let Some(s) = w.sinks.as_mut() {
                        if w.committed != Some(f) {
                            let since = last_commit.elapsed();
                            if since >= commit_interval {
                                match s.commit(Frontier::At(f), &control.stats) {
                                    Ok(()) => w.committed = Some(f),
                                    Err(e) => fail_outputs(&mut w.sinks, &control, e),
                                }
                                last_commit = Instant::now();
                            } else {
                                // Commit this frontier once the interval is
                                // up, even if nothing else happens by then.
                                activator.activate_after(commit_interval - since);
                            }
                        }
                    }
                }
                None => {
                    control
                        .stats
                        .frontier
                        .store(EventTime::MAX, Ordering::Relaxed);
                    if let Some(s) = w.sinks.as_mut() {
                        let mut result = s.commit(Frontier::Done, &control.stats);
                        if let Some(c) = checkpointer.as_mut().filter(|c| c.finished()) {
                            // The job is complete: a last checkpoint says so.
                            result = result.and_then(|()| {
                                c.take(EventTime::MAX, s, &control.stats, stats_log.as_mut())
                            });
                        }
                        if let Err(e) = result {
                            fail_outputs(&mut w.sinks, &control, e);
                        }
                    }
                    w.done = true;
                }
            }
        }
    });
    end
}

/// With checkpoints: if a cut below `upto` is ready, writes what comes
/// before it (the stats log's lines up to the cut too) and takes the
/// checkpoint there.
#[allow(clippy::too_many_arguments)]
fn checkpoint_before<O: 'static>(
    s: &mut OpenSinks<O>,
    rows: &mut RowMerge<O>,
    pending: &mut BTreeMap<EventTime, Vec<Pending>>,
    upto: Option<EventTime>,
    written_to: Option<EventTime>,
    stats: &Stats,
    checkpointer: &mut Option<Checkpointer>,
    stats_log: &mut Option<StatsLogWriter>,
) -> Result<()> {
    let (Some(f), Some(c)) = (upto, checkpointer.as_ref()) else {
        return Ok(());
    };
    let Some(cut) = c.candidate(f) else {
        return Ok(());
    };
    if written_to.is_some_and(|w| w > cut) {
        // Items past the cut are written already: not a position to record.
        return Ok(());
    }
    write_ready(s, rows, pending, Some(cut), stats, checkpointer)?;
    if let Some(log) = stats_log.as_mut() {
        log.advance(Some(cut.saturating_add(1)))
            .map_err(|source| EngineError::Output {
                what: "stats",
                path: log.path().to_owned(),
                source,
            })?;
    }
    match checkpointer.as_mut() {
        Some(c) => c.take(cut, s, stats, stats_log.as_mut()),
        None => Ok(()),
    }
}

/// Writes every dead letter still waiting, by time, partition and offset.
fn write_dead_letters<O: 'static>(
    s: &mut OpenSinks<O>,
    pending: &mut BTreeMap<EventTime, Vec<Pending>>,
) -> Result<()> {
    for (_, items) in std::mem::take(pending) {
        let mut dead: Vec<DeadLetter> = items
            .into_iter()
            .filter_map(|item| match item {
                Pending::Dead(d) => Some(d),
                Pending::Late(_) => None,
            })
            .collect();
        dead.sort_by_key(|d| (d.partition, d.offset));
        for d in &dead {
            s.dead_letters
                .write(d)
                .map_err(|e| output_error("dead letters", &s.dead_letters, e))?;
        }
    }
    Ok(())
}

/// Writes what the frontier `upto` has completed (everything once the
/// input is done): rows merged over the workers in canonical order, then
/// each time's late records and dead letters in (partition, offset) order.
fn write_ready<O: 'static>(
    s: &mut OpenSinks<O>,
    rows: &mut RowMerge<O>,
    pending: &mut BTreeMap<EventTime, Vec<Pending>>,
    upto: Option<EventTime>,
    stats: &Stats,
    checkpointer: &mut Option<Checkpointer>,
) -> Result<()> {
    let mut counts = Counts::default();
    let results = &mut s.results;
    let written = rows.drain(upto, |row| {
        match row.kind {
            ChangeKind::Final => counts.windows_emitted += 1,
            ChangeKind::Retract => {
                counts.corrections += 1;
                counts.retractions += 1;
            }
            _ => counts.corrections += 1,
        }
        results.write(row)
    });
    stats.counts.add(&counts);
    written.map_err(|e| output_error("results", &s.results, e))?;
    let ready = match upto {
        Some(f) => {
            let rest = pending.split_off(&f);
            std::mem::replace(pending, rest)
        }
        None => std::mem::take(pending),
    };
    for (_, items) in ready {
        let mut late = Vec::new();
        let mut dead = Vec::new();
        for item in items {
            match item {
                Pending::Late(l) => late.push(l),
                Pending::Dead(d) => dead.push(d),
            }
        }
        late.sort_by_key(|l| (l.event.partition, l.event.offset));
        dead.sort_by_key(|d| (d.partition, d.offset));
        for l in &late {
            s.late
                .write(l)
                .map_err(|e| output_error("late records", &s.late, e))?;
        }
        for d in &dead {
            s.dead_letters
                .write(d)
                .map_err(|e| output_error("dead letters", &s.dead_letters, e))?;
            if let Some(c) = checkpointer.as_mut() {
                c.wrote_dead(d);
            }
        }
    }
    Ok(())
}
