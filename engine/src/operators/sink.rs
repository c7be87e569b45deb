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

/// What a sink operator is built from.
pub(crate) struct SinkSettings<O: 'static> {
    /// The open outputs, on the worker that writes (worker 0 of process
    /// 0); `None` elsewhere.
    pub(crate) sinks: Option<OpenSinks<O>>,
    /// The number of window operators, whose end markers make a clean end.
    pub(crate) workers: usize,
    /// How often (wall clock) the outputs are committed.
    pub(crate) commit_interval: Duration,
    /// On the worker that writes, with checkpoints: writes a checkpoint at
    /// each cut the window operators report, once the outputs hold exactly
    /// the items before it, and a last one at the end of the input.
    pub(crate) checkpointer: Option<Checkpointer>,
    /// Reprocessing: the items of the steps before it are dropped (the
    /// output is the suffix from there).
    pub(crate) emit_from: Option<EventTime>,
    /// The stats log, on the worker that writes.
    pub(crate) stats_log: Option<StatsLogWriter>,
}

/// The sink operator's logic: what the window operators sent, waiting for
/// the frontier, and what it writes once the frontier has passed it.
struct SinkOperator<O: 'static> {
    written: Rc<RefCell<Written<O>>>,
    control: Arc<Control>,
    workers: usize,
    commit_interval: Duration,
    checkpointer: Option<Checkpointer>,
    stats_log: Option<StatsLogWriter>,
    /// Items of the steps before this are dropped.
    from: EventTime,
    pending: BTreeMap<EventTime, Vec<Pending>>,
    rows: RowMerge<O>,
    /// Window operators that finished.
    finished: usize,
    stopped_at: Option<EventTime>,
    last_commit: Instant,
}

impl<O: 'static> SinkOperator<O> {
    /// Takes one item a window operator sent.
    fn on_input(&mut self, item: Emit<O>) {
        let from = self.from;
        match item {
            Emit::Rows(mut r) => {
                if from > EventTime::MIN {
                    r.rows.retain(|row| row.time >= from);
                }
                self.rows.push(r)
            }
            Emit::Late(l) if l.event.stream_time < from => {}
            Emit::Late(l) => self
                .pending
                .entry(l.event.stream_time)
                .or_default()
                .push(Pending::Late(l)),
            Emit::Dead { at, .. } if at < from => {}
            Emit::Dead { at, letter } => self
                .pending
                .entry(at)
                .or_default()
                .push(Pending::Dead(letter)),
            Emit::Cut(report) if report.stats => {
                if let Some(log) = self.stats_log.as_mut() {
                    log.receive(report);
                }
            }
            Emit::Cut(report) => {
                if let Some(c) = self.checkpointer.as_mut() {
                    c.receive(report);
                }
            }
            Emit::Finished { .. } => self.finished += 1,
            Emit::Stopped { at, .. } => {
                self.stopped_at = Some(self.stopped_at.map_or(at, |s| s.min(at)))
            }
        }
    }

    /// With the input's frontier at `frontier` (`None`: empty): writes and
    /// commits what it completed. Returns when to look again (a commit
    /// waiting for its interval).
    fn on_frontier(&mut self, frontier: Option<EventTime>) -> Option<Duration> {
        let written = Rc::clone(&self.written);
        let Ok(mut written) = written.try_borrow_mut() else {
            return None;
        };
        let w = &mut *written;
        if w.done {
            self.rows.clear();
            self.pending.clear();
            return None;
        }
        let control = Arc::clone(&self.control);
        let stats = &control.stats;
        let mut upto = frontier;
        if upto.is_none() {
            if let Some(at) = self.stopped_at {
                self.stop(w, at);
                return None;
            }
        }
        if upto.is_none() && self.finished < self.workers {
            // Lost input: only what completed frontiers hold is output; the
            // rest is incomplete.
            self.rows.clear();
            self.pending.clear();
            w.done = true;
            if let Some(s) = w.sinks.as_mut() {
                if let Some(f) = w.frontier_seen.filter(|&f| w.committed != Some(f)) {
                    if let Err(e) = s.commit(Frontier::At(f), stats) {
                        fail_outputs(&mut w.sinks, &control, e);
                    }
                }
            }
            return None;
        }
        if let Some(s) = w.sinks.as_mut() {
            let result = self
                .checkpoint_before(s, upto, w.frontier_seen)
                .and_then(|()| self.write_ready(s, upto));
            if let Err(e) = result {
                fail_outputs(&mut w.sinks, &control, e);
            }
        }
        // The stats log after the checkpoint: a checkpoint records the log
        // with its lines up to the cut only.
        if let Some(log) = self.stats_log.as_mut() {
            if let Err(source) = log.advance(upto) {
                control.fail(EngineError::Output {
                    what: "stats",
                    path: log.path().to_owned(),
                    source,
                });
                self.stats_log = None;
            }
        }
        let mut wake = None;
        match upto.take() {
            Some(f) => {
                control.wrote_up_to(f);
                w.frontier_seen = Some(f);
                if let Some(s) = w.sinks.as_mut() {
                    if w.committed != Some(f) {
                        let since = self.last_commit.elapsed();
                        if since >= self.commit_interval {
                            match s.commit(Frontier::At(f), stats) {
                                Ok(()) => w.committed = Some(f),
                                Err(e) => fail_outputs(&mut w.sinks, &control, e),
                            }
                            self.last_commit = Instant::now();
                        } else {
                            // Commit this frontier once the interval is up,
                            // even if nothing else happens by then.
                            wake = Some(self.commit_interval - since);
                        }
                    }
                }
            }
            None => {
                control.wrote_up_to(EventTime::MAX);
                if let Some(s) = w.sinks.as_mut() {
                    let mut result = s.commit(Frontier::Done, stats);
                    if let Some(c) = self.checkpointer.as_mut().filter(|c| c.finished()) {
                        // The job is complete: a last checkpoint says so.
                        result = result.and_then(|()| {
                            c.take(EventTime::MAX, s, stats, self.stats_log.as_mut())
                        });
                    }
                    if let Err(e) = result {
                        fail_outputs(&mut w.sinks, &control, e);
                    }
                }
                w.done = true;
            }
        }
        wake
    }

    /// Stopped early at `at`: the input is complete below it. The dead
    /// letters read past it are written too, after the complete part (a
    /// record that was read and could not be decoded is never dropped
    /// silently).
    fn stop(&mut self, w: &mut Written<O>, at: EventTime) {
        let control = Arc::clone(&self.control);
        control.decide(crate::checkpoint::Decision::Stop { at });
        if let Some(s) = w.sinks.as_mut() {
            let result = self
                .write_ready(s, Some(at))
                .and_then(|()| write_dead_letters(s, &mut self.pending))
                .and_then(|()| s.commit(Frontier::At(at), &control.stats));
            if let Err(e) = result {
                fail_outputs(&mut w.sinks, &control, e);
            }
        }
        control.wrote_up_to(at);
        self.rows.clear();
        self.pending.clear();
        w.done = true;
    }

    /// With checkpoints: if a cut below `upto` is ready, writes what comes
    /// before it (the stats log's lines up to the cut too) and takes the
    /// checkpoint there.
    fn checkpoint_before(
        &mut self,
        s: &mut OpenSinks<O>,
        upto: Option<EventTime>,
        written_to: Option<EventTime>,
    ) -> Result<()> {
        let (Some(f), Some(c)) = (upto, self.checkpointer.as_ref()) else {
            return Ok(());
        };
        let Some(cut) = c.candidate(f) else {
            return Ok(());
        };
        if written_to.is_some_and(|w| w > cut) {
            // Items past the cut are written already: not a position to
            // record.
            return Ok(());
        }
        self.write_ready(s, Some(cut))?;
        if let Some(log) = self.stats_log.as_mut() {
            log.advance(Some(cut.saturating_add(1)))
                .map_err(|source| EngineError::Output {
                    what: "stats",
                    path: log.path().to_owned(),
                    source,
                })?;
        }
        match self.checkpointer.as_mut() {
            Some(c) => c.take(cut, s, &self.control.stats, self.stats_log.as_mut()),
            None => Ok(()),
        }
    }

    /// Writes what the frontier `upto` has completed (see [`write_ready`]).
    fn write_ready(&mut self, s: &mut OpenSinks<O>, upto: Option<EventTime>) -> Result<()> {
        write_ready(
            s,
            &mut self.rows,
            &mut self.pending,
            upto,
            &self.control.stats,
            &mut self.checkpointer,
        )
    }
}

/// The sink operator of `settings`: the thin Timely operator around a
/// [`SinkOperator`], every item exchanged to worker 0.
pub(crate) fn sink<O: timely::ExchangeData + Clone>(
    emitted: Stream<'_, EventTime, Vec<Emit<O>>>,
    settings: SinkSettings<O>,
    control: Arc<Control>,
) -> SinkEnd<O> {
    let written = Rc::new(RefCell::new(Written {
        sinks: settings.sinks,
        frontier_seen: None,
        committed: None,
        done: false,
    }));
    let end = SinkEnd {
        written: Rc::clone(&written),
        control: Arc::clone(&control),
    };
    let mut op = SinkOperator {
        written,
        control,
        workers: settings.workers,
        commit_interval: settings.commit_interval,
        checkpointer: settings.checkpointer,
        stats_log: settings.stats_log,
        from: settings.emit_from.unwrap_or(EventTime::MIN),
        pending: BTreeMap::new(),
        rows: RowMerge::default(),
        finished: 0,
        stopped_at: None,
        last_commit: Instant::now(),
    };
    let scope = emitted.scope();
    let mut builder = OperatorBuilder::new("Sink".to_owned(), scope);
    let activator = scope.activator_for(builder.operator_info().address);
    let mut input = builder.new_input(emitted, Exchange::new(|_: &Emit<O>| 0u64));
    builder.build(move |_capabilities| {
        move |frontiers| {
            input.for_each(|_time, data| {
                for item in data.drain(..) {
                    op.on_input(item);
                }
            });
            if let Some(after) = op.on_frontier(frontiers[0].frontier().first().copied()) {
                activator.activate_after(after);
            }
        }
    });
    end
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
        dead.sort_by(|a, b| dead_order(a).cmp(&dead_order(b)));
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
        late.sort_by(|a, b| late_order(a).cmp(&late_order(b)));
        dead.sort_by(|a, b| dead_order(a).cmp(&dead_order(b)));
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

/// Where a dead letter goes among those of its time: a table's before the
/// stream's (the event order ranks tables first), then by partition and
/// offset. A table's and the stream's may share both, so the input is part
/// of the order, or arrival would decide it.
fn dead_order(d: &DeadLetter) -> (bool, Option<&str>, u32, u64) {
    (d.table.is_none(), d.table.as_deref(), d.partition, d.offset)
}

/// [`dead_order`] for late records.
fn late_order(l: &crate::event::LateRecord) -> (bool, Option<&str>, u32, u64) {
    (
        l.table.is_none(),
        l.table.as_deref(),
        l.event.partition,
        l.event.offset,
    )
}
