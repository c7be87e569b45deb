//! The job plan: what every worker of a run builds, decided once before
//! the workers start ([`Plan::prepare`]), then built into each worker's
//! dataflow ([`Plan::build`]), and the run's summary made from it at the
//! end ([`Plan::finish`]).
//!
//! ```text
//!  inputs ──▶ [operators on records] ──▶ window ──▶ sinks
//! ```
//!
//! A plan has its input ([`InputPlan`]: a source, the partitions, how they
//! are read), its window ([`WindowPlan`]) and its outputs ([`OutputPlan`]).
//! Each is built into its operator from its own settings, and the
//! operators meet only through their streams: the window operator takes a
//! stream of [`Ingest`](crate::event::Ingest) items and does not know what
//! produced it. An operator on records between ingest and window (an
//! enrichment) is a stream-to-stream step added in [`Plan::build`] between
//! the two; another input (a table) is one more [`InputPlan`] built beside
//! the first, its stream fed to that operator.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tidemark_sources::{Key, Source};
use tidemark_windows::{EventTime, WindowState};
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::{Concatenate, Probe};
use timely::dataflow::ProbeHandle;
use timely::worker::Worker;

use crate::aggregator::JobAggregator;
use crate::checkpoint::CommittedOutputs;
use crate::config::{CheckpointEvery, EngineConfig, Parallelism, StatsLog};
use crate::error::Result;
use crate::operators::checkpointer::Checkpointer;
use crate::operators::cuts::{CutTracker, Schedule};
use crate::operators::enrich::{enrich, EnrichSettings, TableItem};
use crate::operators::ingest::{ingest, IngestSettings};
use crate::operators::sink::{sink, SinkEnd, SinkSettings};
use crate::operators::stats_log::StatsLogWriter;
use crate::operators::window::{window, WindowSettings};
use crate::operators::{key_hash, Control};
use crate::prepare::{self, Start};
use crate::sink::{SinkState, Sinks};
use crate::stats::{Stats, Summary};

/// Where a run's workers are: how many per process, in all, and whether
/// the outputs are written in this process (by its worker 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    /// Workers per process.
    pub(crate) per_process: usize,
    /// Workers of every process.
    pub(crate) total: usize,
    /// This process writes the outputs (process 0).
    pub(crate) sink_here: bool,
}

impl Layout {
    fn of(parallelism: &Parallelism) -> Layout {
        match parallelism {
            Parallelism::Workers(n) => Layout {
                per_process: (*n).max(1),
                total: (*n).max(1),
                sink_here: true,
            },
            Parallelism::Cluster {
                workers,
                process,
                hosts,
            } => Layout {
                per_process: (*workers).max(1),
                total: (*workers).max(1) * hosts.len(),
                sink_here: *process == 0,
            },
        }
    }
}

/// An input of the plan: its source, its partitions, and how each worker's
/// ingest reads its share of them.
pub(crate) struct InputPlan {
    settings: IngestSettings,
}

/// The window of the plan: the job's configuration (window, policy,
/// aggregator, initial state) and the cuts its operators report.
pub(crate) struct WindowPlan<A: JobAggregator> {
    config: EngineConfig<A>,
    /// Checkpoint cuts, when checkpoints are taken.
    cuts_every: Option<CheckpointEvery>,
    /// Every cut at or below this was passed before (a resumed run).
    passed: EventTime,
    /// The number of partition ends that make the input's end.
    ends_expected: usize,
}

/// The outputs of the plan, taken by the worker that writes them.
pub(crate) struct OutputPlan<A: JobAggregator> {
    sinks: Mutex<Option<Sinks<A::Output>>>,
    checkpointer: Mutex<Option<Checkpointer>>,
    /// How far each output was committed by the checkpoint resumed from,
    /// and the sinks' own recovery states then.
    resume: Option<CommittedOutputs>,
    sink_states: BTreeMap<String, SinkState>,
    /// Checkpoints are taken: the outputs keep what they need to be cut
    /// back.
    tracking: bool,
    emit_from: Option<EventTime>,
    stats_log: Option<StatsLog>,
    /// The stats log's state in the checkpoint resumed from.
    stats_log_resumed: Option<crate::checkpoint::StatsLogState>,
}

/// The tables of the plan: each table read in time is one more input,
/// broadcast to every worker's enrichment; static tables are read here,
/// before the run.
pub(crate) struct TablePlan {
    inputs: Vec<IngestSettings>,
    enrich: EnrichSettings,
    /// Each table's name and fields, for the late output.
    fields: Vec<(String, Vec<String>)>,
}

impl TablePlan {
    /// Checks the job's tables, reads the static ones, and shifts the
    /// windows' delay by Δ.
    fn prepare<A: JobAggregator>(
        config: &mut EngineConfig<A>,
        parallelism: &Parallelism,
        stats: &Stats,
    ) -> Result<Option<TablePlan>> {
        if config.tables.is_empty() {
            return Ok(None);
        }
        let refuse = |what: &str, why: &str| {
            Err(crate::error::EngineError::Config(format!(
                "{what} is not supported with tables yet ({why})"
            )))
        };
        let state = "table state is not kept in checkpoints";
        if config.checkpoint.is_some() {
            return refuse("a checkpoint directory (--checkpoint-dir)", state);
        }
        if config.emit_from.is_some() {
            return refuse(
                "reprocessing from a point (--from-time, --from-offsets)",
                state,
            );
        }
        if config.replay_decisions.is_some() {
            return refuse("replaying time decisions (--replay-decisions)", state);
        }
        if config.initial_state.is_some() {
            return refuse("an initial window state", state);
        }
        if matches!(parallelism, Parallelism::Cluster { .. }) {
            return refuse(
                "cluster mode",
                "every worker holds every table, and a table's readers run in one process",
            );
        }
        let span = match config.window {
            tidemark_windows::WindowSpec::Tumbling { size, .. }
            | tidemark_windows::WindowSpec::Sliding { size, .. } => size,
            tidemark_windows::WindowSpec::Session { gap } => gap,
        };
        let record_fields = config.aggregator.record_fields();
        let resolved = config.tables.resolve(
            &record_fields,
            config.policy.delay,
            config.policy.lateness,
            Some(span),
            true,
        )?;
        let shift = resolved.shift;
        stats
            .shift
            .store(shift, std::sync::atomic::Ordering::Relaxed);
        let job_delay = config.policy.delay;
        config.policy.delay = job_delay.saturating_add(shift);
        let defs = &config.tables.tables;
        stats.tables.declare(
            &defs
                .iter()
                .zip(&resolved.delays)
                .map(|(t, d)| (t.name.clone(), *d))
                .collect::<Vec<_>>(),
        );
        let mut statics = Vec::new();
        let mut static_dead = Vec::new();
        let mut inputs = Vec::new();
        for (i, def) in defs.iter().enumerate() {
            if def.is_static {
                let in_table = |e: crate::error::EngineError| {
                    crate::error::EngineError::Config(format!("table \"{}\": {e}", def.name))
                };
                let (table, dead) = crate::table::load_static(def, i as u32).map_err(in_table)?;
                let size = table.size();
                let name: Arc<str> = Arc::from(def.name.as_str());
                stats.tables.update(i, |s| {
                    s.records = size.versions + dead.len() as u64;
                    s.dead_letters = dead.len() as u64;
                    s.keys = size.keys;
                    s.versions = size.versions;
                    s.peak_versions = size.peak_versions;
                    s.ended = true;
                });
                Stats::add(&stats.counts.dead_letters, dead.len() as u64);
                static_dead.extend(dead.into_iter().map(|mut d| {
                    d.table = Some(Arc::clone(&name));
                    d
                }));
                statics.push(Some(Arc::new(table)));
            } else {
                statics.push(None);
                inputs.push(IngestSettings {
                    source: Arc::clone(&def.source),
                    partitions: def.source.partitions().map_err(|e| {
                        crate::error::EngineError::Config(format!("table \"{}\": {e}", def.name))
                    })?,
                    start: BTreeMap::new(),
                    options: config.options.clone(),
                    cut_every_offsets: None,
                    replay: None,
                    resumed_at: None,
                    stride: def.fields.len(),
                    table: Some(i),
                    local: true,
                    shift,
                });
            }
        }
        let enrich = EnrichSettings {
            names: defs.iter().map(|t| Arc::from(t.name.as_str())).collect(),
            resolved: Arc::new(resolved),
            statics,
            static_dead,
            delay: job_delay,
            stride: record_fields.len(),
        };
        Ok(Some(TablePlan {
            inputs,
            enrich,
            fields: defs
                .iter()
                .map(|t| (t.name.clone(), t.fields.clone()))
                .collect(),
        }))
    }
}

/// A run's plan.
pub(crate) struct Plan<A: JobAggregator> {
    pub(crate) layout: Layout,
    input: InputPlan,
    tables: Option<TablePlan>,
    window: WindowPlan<A>,
    outputs: OutputPlan<A>,
    /// Where the run started from, for its summary.
    start: Start,
    delay: EventTime,
}

/// What [`Plan::prepare`] found.
pub(crate) enum Prepared<A: JobAggregator> {
    /// A plan to run, and the control the process's workers share.
    Run(Box<Plan<A>>, Arc<Control>),
    /// The checkpoint resumed from marks the job complete: its summary.
    Complete(Summary),
}

impl<A: JobAggregator> Plan<A> {
    /// Checks `config`, finds where the run starts (the checkpoint to
    /// resume from, the reprocessing point), and decides what every worker
    /// builds.
    pub(crate) fn prepare(
        source: Arc<dyn Source>,
        config: EngineConfig<A>,
        parallelism: &Parallelism,
        outputs: Sinks<A::Output>,
        stats: &Arc<Stats>,
    ) -> Result<Prepared<A>> {
        config.validate()?;
        let mut config = config;
        let tables = TablePlan::prepare(&mut config, parallelism, stats)?;
        let partitions = source.partitions()?;
        let delay = config.policy.delay;
        stats
            .delay
            .store(delay, std::sync::atomic::Ordering::Relaxed);
        let layout = Layout::of(parallelism);
        let mut files = outputs.files();
        if let Some(log) = &config.stats_log {
            files.push(("stats", log.path.clone()));
        }
        let mut begin = prepare::prepare(&mut config, &*source, stats, layout.sink_here, &files)?;
        if let Some((id, at)) = begin.resumed {
            if layout.sink_here {
                stats.counts.set(&begin.counters.counts);
            }
            if !begin.complete {
                stats.notice(format!(
                    "resuming from checkpoint {id} at stream time {} ({} partition positions)",
                    crate::checkpoint::time_text(at),
                    config.start.len()
                ));
            }
        }
        if begin.complete {
            return Self::complete(outputs, &config, &begin, layout, stats, partitions.len())
                .map(Prepared::Complete);
        }
        let mut control = Control::new(Arc::clone(stats), layout.per_process);
        control.decisions = match (parallelism, begin.decisions.clone()) {
            (Parallelism::Cluster { .. }, Some(_)) => {
                stats.notice(
                    "time decisions (idle releases) are not recorded in cluster mode: this run cannot be replayed".into(),
                );
                None
            }
            (_, log) => log,
        };
        let tracking = begin.dir.is_some();
        let every = config.checkpoint.as_ref().map(|c| c.every);
        let passed = begin
            .resumed
            .map_or(tidemark_sources::MIN_EVENT_TIME - 1, |(_, at)| at);
        let checkpointer = match (begin.dir.take(), begin.fingerprint.clone(), every) {
            (Some(dir), Some(fingerprint), Some(every)) if layout.sink_here => {
                Some(Checkpointer::new(
                    dir,
                    fingerprint,
                    config.start.clone(),
                    begin.counters.clone(),
                    layout.total,
                    passed,
                    match every {
                        CheckpointEvery::EventTime(ms) => Some(ms),
                        CheckpointEvery::Records(_) => None,
                    },
                    Arc::clone(&source),
                ))
            }
            _ => None,
        };
        let cuts_every = every.filter(|_| tracking);
        let stats_log_resumed = begin
            .resumed
            .and(begin.counters.stats_log.clone())
            .filter(|_| tracking);
        if let (Some(log), Some(_)) = (&config.stats_log, begin.resumed) {
            let kept = stats_log_resumed
                .as_ref()
                .is_some_and(|state| state.every == log.every);
            if !kept && layout.sink_here && !crate::sink::target::is_special(&log.path) {
                stats.notice(format!(
                    "the stats log \"{}\" starts over: the checkpoint resumed from holds no stats log of this interval; its counts are this run's only",
                    log.path.display()
                ));
            }
        }
        let input = InputPlan {
            settings: IngestSettings {
                source,
                partitions: partitions.clone(),
                start: config.start.clone(),
                options: config.options.clone(),
                replay: begin.replay.clone(),
                cut_every_offsets: match cuts_every {
                    Some(CheckpointEvery::Records(n)) => Some(n),
                    _ => None,
                },
                resumed_at: begin.resumed.map(|(_, at)| at),
                stride: if tables.is_some() {
                    config.tables.stream_fields.len()
                } else {
                    config.aggregator.record_fields().len()
                },
                table: None,
                local: tables.is_some(),
                shift: 0,
            },
        };
        let outputs = OutputPlan {
            sinks: Mutex::new(Some(outputs)),
            checkpointer: Mutex::new(checkpointer),
            resume: begin.outputs,
            sink_states: std::mem::take(&mut begin.sink_states),
            tracking,
            emit_from: begin.emit_from,
            stats_log: config.stats_log.clone(),
            stats_log_resumed,
        };
        let window = WindowPlan {
            config,
            cuts_every,
            passed,
            ends_expected: partitions.len(),
        };
        let plan = Plan {
            layout,
            input,
            tables,
            window,
            outputs,
            start: begin,
            delay,
        };
        Ok(Prepared::Run(Box::new(plan), Arc::new(control)))
    }

    /// The summary of a job the checkpoint resumed from marks complete:
    /// its outputs must still be the committed ones; nothing more to do.
    fn complete(
        outputs: Sinks<A::Output>,
        config: &EngineConfig<A>,
        begin: &Start,
        layout: Layout,
        stats: &Stats,
        partitions: usize,
    ) -> Result<Summary> {
        if layout.sink_here {
            outputs.open(
                &config.aggregator,
                begin.outputs.as_ref(),
                &begin.sink_states,
                true,
                config.output_times,
                &[],
            )?;
        }
        if let Some((id, _)) = begin.resumed {
            stats.notice(format!(
                "checkpoint {id} marks this job complete: nothing to do (a rebuild runs it again)"
            ));
        }
        Stats::add(&stats.partitions, partitions as u64);
        let mut summary = stats.summary(config.policy.delay);
        summary.final_watermark = None;
        summary.resumed_from = begin.resumed.map(|(id, _)| id.0);
        summary.records_before = summary.records;
        summary.already_complete = true;
        Ok(summary)
    }

    /// The number of partitions of the input.
    pub(crate) fn partition_count(&self) -> usize {
        self.window.ends_expected
    }

    /// The job's configuration.
    pub(crate) fn config(&self) -> &EngineConfig<A> {
        &self.window.config
    }

    /// Builds the plan's dataflow on `worker`: its ingest, window and (on
    /// the worker that writes) sink; returns the handle that ends the
    /// outputs if the dataflow cannot go on.
    pub(crate) fn build(&self, worker: &mut Worker, control: &Arc<Control>) -> SinkEnd<A::Output> {
        let index = worker.index();
        let peers = worker.peers();
        let writes = index == 0;
        let sink_settings = SinkSettings {
            sinks: if writes {
                self.open_outputs(control)
            } else {
                None
            },
            workers: peers,
            commit_interval: self.config().commit_interval,
            checkpointer: if writes {
                self.outputs
                    .checkpointer
                    .lock()
                    .ok()
                    .and_then(|mut c| c.take())
            } else {
                None
            },
            emit_from: self.outputs.emit_from,
            stats_log: if writes && self.layout.sink_here {
                self.stats_log_writer(control)
            } else {
                None
            },
        };
        let window_settings = WindowSettings {
            state: match worker_state(self.config(), index, peers) {
                Ok(s) => Some(s),
                Err(e) => {
                    control.fail(e);
                    None
                }
            },
            ends_expected: Some(self.window.ends_expected),
            worker: index,
            flow: self.layout.sink_here.then(|| Arc::clone(control)),
            cuts: self.cut_trackers(index),
            sample_every: self.config().sample_state.map(|ms| ms.max(1)),
        };
        let ingest_settings = self.input.settings.clone();
        let tables = self
            .tables
            .as_ref()
            .map(|t| (t.inputs.clone(), t.enrich.clone()));
        let control = Arc::clone(control);
        worker.dataflow::<EventTime, _, _>(move |scope| {
            let probe = ProbeHandle::new();
            let mut records = ingest(
                scope,
                ingest_settings,
                Arc::clone(&control),
                index,
                peers,
                probe.clone(),
            );
            if let Some((inputs, settings)) = tables {
                let updates: Vec<_> = inputs
                    .into_iter()
                    .map(|input| {
                        let table = input.table.unwrap_or_default() as u32;
                        ingest(
                            scope,
                            input,
                            Arc::clone(&control),
                            index,
                            peers,
                            probe.clone(),
                        )
                        .map(move |item| TableItem {
                            table,
                            from: index as u32,
                            item,
                        })
                        .broadcast()
                    })
                    .collect();
                let updates = scope.concatenate(updates);
                records = enrich(
                    records,
                    updates,
                    settings,
                    Arc::clone(&control),
                    index,
                    peers,
                );
            }
            let emitted =
                window(records, window_settings, Arc::clone(&control.stats)).probe_with(&probe);
            sink(emitted, sink_settings, control)
        })
    }

    /// The outputs, opened (on the worker that writes; `None` if another
    /// worker took them or they could not be opened, which fails the job).
    fn open_outputs(&self, control: &Control) -> Option<crate::sink::target::OpenSinks<A::Output>> {
        let taken = self.outputs.sinks.lock().ok().and_then(|mut s| s.take())?;
        let config = self.config();
        match taken.open(
            &config.aggregator,
            self.outputs.resume.as_ref(),
            &self.outputs.sink_states,
            self.outputs.tracking,
            config.output_times,
            self.tables.as_ref().map_or(&[][..], |t| &t.fields[..]),
        ) {
            Ok(open) => Some(open),
            Err(e) => {
                control.fail(e);
                None
            }
        }
    }

    /// The stats log's writer, created (or cut back to the checkpoint's
    /// lines).
    fn stats_log_writer(&self, control: &Control) -> Option<StatsLogWriter> {
        let log = self.outputs.stats_log.as_ref()?;
        match StatsLogWriter::create(
            &log.path,
            self.layout.total,
            self.delay,
            log.every,
            self.outputs.tracking,
            self.outputs.stats_log_resumed.as_ref(),
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                control.fail(e);
                None
            }
        }
    }

    /// The cuts worker `index`'s window operator reports: the checkpoints'
    /// and the stats log's.
    fn cut_trackers(&self, index: usize) -> Vec<CutTracker> {
        let passed = self.window.passed;
        let mut cuts: Vec<CutTracker> = self
            .window
            .cuts_every
            .map(|every| CutTracker::new(Schedule::new(every), index as u32, passed))
            .into_iter()
            .collect();
        if let Some(log) = &self.outputs.stats_log {
            cuts.push(CutTracker::for_stats_log(log.every, index as u32, passed));
        }
        cuts
    }

    /// The summary of this process's part of a completed run, from its
    /// `stats` and, in a cluster, the summaries of every process (`all`).
    pub(crate) fn finish(
        &self,
        stats: &Stats,
        parallelism: &Parallelism,
        all: Option<Vec<Summary>>,
    ) -> Summary {
        let mut summary = stats.summary(self.delay);
        summary.resumed_from = self.start.resumed.map(|(id, _)| id.0);
        // (The counters of the run before are loaded where the sink runs.)
        summary.records_before = match self.start.resumed {
            Some(_) if self.layout.sink_here => self.start.counters.records,
            _ => 0,
        };
        if let Parallelism::Cluster { process, .. } = parallelism {
            summary.process = Some(*process);
            if let Some(all) = all {
                // Process 0 writes the outputs: its watermark is the job's.
                if let Some(first) = all.iter().find(|s| s.process == Some(0)) {
                    summary.final_watermark = first.final_watermark;
                }
                summary.cluster = Some(Box::new(Summary::total(&all, summary.final_watermark)));
            }
        }
        summary
    }

    /// The summary a process's first worker sends the others at the end.
    pub(crate) fn process_summary(&self, stats: &Stats, process: usize) -> Summary {
        let mut s = stats.summary(self.delay);
        s.process = Some(process);
        s
    }
}

/// This worker's share of the window state: a fresh state, or the keys of
/// the initial snapshot that the exchange routes here.
pub(crate) fn worker_state<A: JobAggregator>(
    config: &EngineConfig<A>,
    index: usize,
    peers: usize,
) -> Result<WindowState<Key, A>> {
    let state = match &config.initial_state {
        Some(snapshot) => {
            let mut s = WindowState::restore(config.aggregator.clone(), (**snapshot).clone())?;
            if (s.spec(), s.policy()) != (config.window, config.policy) {
                return Err(tidemark_windows::WindowError::SnapshotMismatch.into());
            }
            s.retain_keys(|k| key_hash(k) % peers as u64 == index as u64);
            s
        }
        None => WindowState::try_new(config.window, config.policy, config.aggregator.clone())?,
    };
    Ok(state)
}
