//! The enrichment operator: joins each stream record with the version of
//! every table valid at its event time, then routes it by its (new) key
//! to the window operators.
//!
//! It has two inputs: this worker's stream records (its own ingest, not
//! exchanged: each partition keeps one sender) and every table's updates
//! (broadcast: each worker holds every table whole). A table update is
//! applied when it arrives, if the table accepts it (rule T1 of the
//! tables brief); a stream record r is looked up once every table's
//! frontier has reached e(r) = s(r) + Δ, and goes on at stream time e(r).
//! With lateness 0 every update that can change the version at t(r) has
//! a stream time below e(r), and no later one can: the answer is final
//! and does not depend on the order updates and records arrived in.
//!
//! The output's frontier is the stream's shifted by Δ (the stream input's
//! summary) and no later than the tables': a window operator after it
//! sees every record of a shifted step once the frontier passes it.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use tidemark_sources::{DeadLetter, Key};
use tidemark_windows::table::{accepts, VersionedTable};
use tidemark_windows::{EventTime, Field};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;
use timely::progress::Antichain;

use super::{key_hash, Control};
use crate::event::{Batch, Event, Ingest, LateReason, LateRecord};
use crate::table::{key_text, version_fields, FieldRef, JoinMode, Resolved, StaticTable};

/// A table's update stream item: from table `table`, read by worker
/// `from` (which alone reports its late updates and dead letters).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TableItem {
    pub(crate) table: u32,
    pub(crate) from: u32,
    pub(crate) item: Ingest,
}

/// What the enrichment of one worker needs.
#[derive(Clone)]
pub(crate) struct EnrichSettings {
    pub(crate) resolved: Arc<Resolved>,
    /// The tables' names.
    pub(crate) names: Arc<[Arc<str>]>,
    /// Per table: the static table, read whole before the run.
    pub(crate) statics: Vec<Option<Arc<StaticTable>>>,
    /// The static tables' dead letters (sent by worker 0).
    pub(crate) static_dead: Vec<DeadLetter>,
    /// The job's delay D.
    pub(crate) delay: EventTime,
    /// Named fields per record after the join.
    pub(crate) stride: usize,
}

type Versions = VersionedTable<Key, Box<[Field]>>;

/// Counts of one activation, per table.
#[derive(Clone, Copy, Default)]
struct Tally {
    too_late: u64,
    no_row: u64,
    too_old: u64,
    lookups: u64,
}

/// The logic of one worker's enrichment.
struct Enrich {
    s: EnrichSettings,
    index: usize,
    peers: usize,
    tables: Vec<Versions>,
    /// Stream batches waiting for the tables, each with the capability
    /// (shifted) it goes on at, and how far it was looked up.
    queue: VecDeque<(Capability<EventTime>, Batch, usize)>,
    /// The earliest time a table's ingest stopped at (an error, a stop
    /// request): the tables are complete below it only.
    table_stop: Option<EventTime>,
    /// The trim horizon last used, per table.
    trimmed: Vec<EventTime>,
    tally: Vec<Tally>,
    /// Records made dead letters (a null key after the join) since the
    /// last report.
    dead: u64,
}

impl Enrich {
    fn new(s: EnrichSettings, index: usize, peers: usize) -> Self {
        let n = s.names.len();
        Enrich {
            s,
            index,
            peers,
            tables: (0..n).map(|_| Versions::new()).collect(),
            queue: VecDeque::new(),
            table_stop: None,
            trimmed: vec![EventTime::MIN; n],
            tally: vec![Tally::default(); n],
            dead: 0,
        }
    }

    fn shift(&self) -> EventTime {
        self.s.resolved.shift
    }

    /// Applies one table item; what goes on (late updates, dead letters
    /// of this worker's reading) is pushed to `out`.
    fn on_table(&mut self, t: TableItem, out: &mut Vec<Ingest>) {
        let table = t.table as usize;
        let mine = t.from as usize == self.index;
        match t.item {
            Ingest::Records(b) => {
                let delay = self.s.resolved.delays[table];
                let lateness = self.s.resolved.lateness[table];
                for i in 0..b.len() {
                    let (s, time) = (b.stream_times[i], b.times[i]);
                    if accepts(s.saturating_sub(delay), time, lateness) {
                        self.tables[table].insert(
                            b.keys[i].clone(),
                            time,
                            (s, table as u32, b.partition, b.offsets[i]),
                            version_fields(b.fields(i).to_vec()),
                        );
                    } else if mine {
                        self.tally[table].too_late += 1;
                        out.push(Ingest::Late {
                            dest: self.index as u32,
                            late: Box::new(LateRecord {
                                event: b.event(i),
                                missed: Vec::new(),
                                reason: LateReason::TableTooLate,
                                table: Some(self.s.names[table].to_string()),
                            }),
                        });
                    }
                }
            }
            Ingest::Dead { at, mut letter } if mine => {
                letter.table = Some(Arc::clone(&self.s.names[table]));
                out.push(Ingest::Dead { at, letter });
            }
            Ingest::Stop { at, .. } => {
                // The tables are complete below `at` only: so are the
                // windows' records (a record is released at e(r) <= the
                // tables' frontier).
                self.table_stop = Some(self.table_stop.map_or(at, |s| s.min(at)));
                out.extend((0..self.peers).map(|d| Ingest::Stop { dest: d as u32, at }));
            }
            _ => {}
        }
    }

    /// Takes one stream item arriving at `cap` (shifted).
    fn on_stream(&mut self, cap: Capability<EventTime>, item: Ingest, out: &mut Vec<Ingest>) {
        let shift = self.shift();
        match item {
            Ingest::Records(b) => self.queue.push_back((cap, b, 0)),
            Ingest::Dead { at, letter } => out.push(Ingest::Dead {
                at: at.saturating_add(shift),
                letter,
            }),
            Ingest::End { partition, .. } => out.extend((0..self.peers).map(|d| Ingest::End {
                dest: d as u32,
                partition,
            })),
            Ingest::Stop { at, .. } => out.extend((0..self.peers).map(|d| Ingest::Stop {
                dest: d as u32,
                at: at.saturating_add(shift),
            })),
            Ingest::Cut { .. } | Ingest::Late { .. } => {}
        }
    }

    /// Looks up every waiting record whose time the tables' frontier
    /// `tables` has reached (`None`: the tables are complete), and sends
    /// them on, each batch at its own capability.
    fn release(
        &mut self,
        tables: Option<EventTime>,
        mut send: impl FnMut(&Capability<EventTime>, &mut Vec<Ingest>),
    ) {
        let upto = match (tables, self.table_stop) {
            (Some(f), Some(s)) => Some(f.min(s)),
            (f, s) => f.or(s),
        };
        let shift = self.shift();
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            let (cap, batch, pos) = &mut self.queue[i];
            let stride = self.s.stride;
            let capacity = (batch.len() - *pos) / self.peers + 16;
            let mut routed: Vec<Batch> = (0..self.peers)
                .map(|d| Batch::with_capacity(d as u32, batch.partition, capacity, stride))
                .collect();
            while *pos < batch.len() {
                let e = batch.stream_times[*pos].saturating_add(shift);
                if upto.is_some_and(|f| e > f) {
                    break;
                }
                let done = lookup(
                    &self.s,
                    &self.tables,
                    &mut self.tally,
                    self.index,
                    self.peers,
                    batch,
                    *pos,
                    &mut routed,
                );
                if let Err(item) = done {
                    if matches!(*item, Ingest::Dead { .. }) {
                        self.dead += 1;
                    }
                    out.push(*item);
                }
                *pos += 1;
            }
            out.extend(
                routed
                    .into_iter()
                    .filter(|b| b.len() > 0)
                    .map(Ingest::Records),
            );
            if !out.is_empty() {
                send(cap, &mut out);
            }
            // Tables that stopped early: what lies beyond is never looked
            // up (the windows stop there too).
            let stopped = tables.is_none() && self.table_stop.is_some();
            if *pos >= batch.len() || stopped {
                self.queue.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// Drops the versions no lookup can need any more (rule R1): below
    /// what every later update is above (the tables' frontier minus the
    /// delay and lateness), and below the oldest record still to look up
    /// minus the job's delay and the history.
    fn trim(&mut self, tables: Option<EventTime>, stream: Option<EventTime>) {
        let waiting = self
            .queue
            .iter()
            .map(|(_, b, pos)| b.stream_times[*pos])
            .min();
        let oldest = match (waiting, stream) {
            (Some(w), Some(s)) => Some(w.min(s)),
            (w, s) => w.or(s),
        };
        for (t, table) in self.tables.iter_mut().enumerate() {
            let Some(history) = self.s.resolved.history[t] else {
                continue;
            };
            let by_updates = tables.map(|f| {
                f.saturating_sub(self.s.resolved.delays[t])
                    .saturating_sub(1)
                    .saturating_sub(self.s.resolved.lateness[t])
            });
            let by_lookups = oldest.map(|o| o.saturating_sub(self.s.delay).saturating_sub(history));
            let h = match (by_updates, by_lookups) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => EventTime::MAX,
            };
            if h > self.trimmed[t] {
                self.trimmed[t] = h;
                table.trim(h);
            }
        }
    }

    /// Reports this activation's counts, and (worker 0) the tables' sizes.
    fn report(&mut self, control: &Control) {
        let dead = std::mem::take(&mut self.dead);
        if dead > 0 {
            crate::stats::Stats::add(&control.stats.counts.dead_letters, dead);
        }
        for (t, tally) in self.tally.iter_mut().enumerate() {
            let tally = std::mem::take(tally);
            let size = (self.index == 0).then(|| match &self.s.statics[t] {
                Some(st) => st.size(),
                None => self.tables[t].size(),
            });
            if tally.lookups + tally.no_row + tally.too_old + tally.too_late == 0 && size.is_none()
            {
                continue;
            }
            control.stats.tables.update(t, |s| {
                s.too_late += tally.too_late;
                s.no_row += tally.no_row;
                s.older_than_history += tally.too_old;
                s.lookups += tally.lookups;
                if let Some(size) = size {
                    s.keys = size.keys;
                    s.versions = size.versions;
                    s.peak_versions = s.peak_versions.max(size.peak_versions);
                }
            });
        }
    }
}

/// The fields each step attached to a record (`None`: none, or the
/// step's defaults).
type Attached<'a> = SmallVec<[Option<&'a [Field]>; 4]>;

/// The value of field `r` of record `i` of `b`, with the steps' attached
/// fields so far (a step that attached none gives its defaults).
#[inline]
fn field_of<'a>(
    r: FieldRef,
    b: &'a Batch,
    i: usize,
    attached: &[Option<&'a [Field]>],
    steps: &'a [crate::table::Step],
) -> &'a Field {
    const NULL: &Field = &Field::Null;
    match r {
        FieldRef::Stream(f) => b.fields(i).get(f).unwrap_or(NULL),
        // Read through `on_key` instead; never an aggregation's field.
        FieldRef::Key => NULL,
        FieldRef::Attached { step, field } => attached
            .get(step)
            .copied()
            .flatten()
            .or_else(|| steps.get(step).map(|s| &*s.defaults))
            .and_then(|a| a.get(field))
            .unwrap_or(NULL),
    }
}

/// The version of `on`'s key at `time` in `table` (text keys are looked up
/// without a copy).
#[inline]
fn version<'t>(table: &'t Versions, on: &Field, time: EventTime) -> Option<&'t [Field]> {
    match on {
        Field::Text(t) => table.lookup(t.as_str(), time),
        Field::Null => None,
        other => key_text(other).and_then(|k| table.lookup(k.as_str(), time)),
    }
    .map(|v| &**v)
}

/// Looks record `i` of `b` up in every table and routes it to its window
/// worker's batch in `routed`; `Err`: the late record or dead letter it
/// is instead.
#[allow(clippy::too_many_arguments)]
fn lookup(
    s: &EnrichSettings,
    tables: &[Versions],
    tally: &mut [Tally],
    index: usize,
    peers: usize,
    b: &Batch,
    i: usize,
    routed: &mut [Batch],
) -> Result<(), Box<Ingest>> {
    let r = &s.resolved;
    let (st, time) = (b.stream_times[i], b.times[i]);
    let e = st.saturating_add(r.shift);
    let late = |reason: LateReason, table: usize, attached: &[Option<&[Field]>]| {
        Box::new(Ingest::Late {
            dest: index as u32,
            late: Box::new(LateRecord {
                event: rejected_event(s, b, i, e, attached),
                missed: Vec::new(),
                reason,
                table: Some(s.names[table].to_string()),
            }),
        })
    };
    // J3: older than a versioned table's history.
    for step in &r.steps {
        if let Some(history) = r.history[step.table] {
            if st.saturating_sub(s.delay).saturating_sub(time) > history {
                tally[step.table].too_old += 1;
                return Err(late(LateReason::OlderThanHistory, step.table, &[]));
            }
        }
    }
    let mut attached: Attached<'_> = SmallVec::new();
    for step in &r.steps {
        tally[step.table].lookups += 1;
        let (table, at) = match &s.statics[step.table] {
            Some(table) => (&**table, EventTime::MIN),
            None => (&tables[step.table], time),
        };
        let found = if step.on == FieldRef::Key {
            table.lookup(b.keys[i].as_str(), at).map(|v| &**v)
        } else {
            version(table, field_of(step.on, b, i, &attached, &r.steps), at)
        };
        if found.is_none() && step.mode == JoinMode::Inner {
            tally[step.table].no_row += 1;
            return Err(late(LateReason::NoTableRow, step.table, &attached));
        }
        attached.push(found);
    }
    let fields: Vec<Field> = r
        .fields
        .iter()
        .map(|&f| field_of(f, b, i, &attached, &r.steps).clone())
        .collect();
    let key: Key = match &r.key {
        None => b.keys[i].clone(),
        Some(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (f, name) in parts {
                match key_text(field_of(*f, b, i, &attached, &r.steps)) {
                    Some(t) => texts.push(t),
                    None => return Err(null_key(b, i, e, name)),
                }
            }
            if texts.len() == 1 {
                texts.pop().unwrap_or_default()
            } else {
                tidemark_sources::join_key(&texts)
            }
        }
    };
    let dest = if peers == 1 {
        0
    } else {
        (key_hash(&key) % peers as u64) as usize
    };
    routed[dest].push(e, b.offsets[i], key, time, b.values[i], fields);
    Ok(())
}

/// The dead letter of record `i` of `b`, whose key field `name` is null
/// after the join.
#[cold]
fn null_key(b: &Batch, i: usize, e: EventTime, name: &str) -> Box<Ingest> {
    let mut raw = String::new();
    crate::sink::json::format_event(&b.event(i), &mut raw);
    Box::new(Ingest::Dead {
        at: e,
        letter: DeadLetter {
            partition: b.partition,
            offset: b.offsets[i],
            file: None,
            line: None,
            reason: format!(
                "the key field \"{name}\" is null after the join (give the table a default for it, or use mode = \"inner\")"
            ),
            raw,
            table: None,
        },
    })
}

/// A stream record the join refused, as the late output writes it: its
/// fields in the job's order (those a table would have attached null).
#[cold]
fn rejected_event(
    s: &EnrichSettings,
    b: &Batch,
    i: usize,
    e: EventTime,
    attached: &[Option<&[Field]>],
) -> Event {
    let fields = s
        .resolved
        .fields
        .iter()
        .map(|&f| match f {
            FieldRef::Stream(_) => field_of(f, b, i, attached, &[]).clone(),
            FieldRef::Attached { .. } | FieldRef::Key => Field::Null,
        })
        .collect();
    Event {
        stream_time: e,
        fields,
        ..b.event(i)
    }
}

/// The enrichment of worker `index` of `peers`: `stream` is this worker's
/// ingest (not exchanged), `tables` every table's updates (broadcast).
pub(crate) fn enrich<'scope>(
    stream: Stream<'scope, EventTime, Vec<Ingest>>,
    tables: Stream<'scope, EventTime, Vec<TableItem>>,
    settings: EnrichSettings,
    control: Arc<Control>,
    index: usize,
    peers: usize,
) -> Stream<'scope, EventTime, Vec<Ingest>> {
    let shift = settings.resolved.shift;
    let scope = stream.scope();
    let mut builder = OperatorBuilder::new("Enrich".to_owned(), scope);
    let mut from_stream = builder.new_input(stream, Pipeline);
    let mut from_tables = builder.new_input(tables, Pipeline);
    let (output, out_stream) = builder.new_output_connection::<Vec<Ingest>, _>([
        (0, Antichain::from_elem(shift)),
        (1, Antichain::from_elem(0)),
    ]);
    let mut output = OutputBuilder::<_, CapacityContainerBuilder<Vec<Ingest>>>::from(output);
    let static_dead = if index == 0 {
        settings.static_dead.clone()
    } else {
        Vec::new()
    };
    let mut op = Enrich::new(settings, index, peers);
    builder.build(move |mut caps| {
        // The first activation sends the static tables' dead letters at
        // the initial capability, then lets it go.
        let mut first = caps.pop();
        let mut static_dead = static_dead;
        move |frontiers| {
            let mut out = output.activate();
            if let Some(cap) = first.take() {
                if !static_dead.is_empty() {
                    let at = *cap.time();
                    out.session(&cap).give_iterator(
                        static_dead
                            .drain(..)
                            .map(|letter| Ingest::Dead { at, letter }),
                    );
                }
            }
            let mut pending = Vec::new();
            from_tables.for_each(|cap, data| {
                for item in data.drain(..) {
                    op.on_table(item, &mut pending);
                }
                if !pending.is_empty() {
                    if let Some(c) = cap.retain_least(0) {
                        out.session(&c).give_iterator(pending.drain(..));
                    }
                    pending.clear();
                }
            });
            from_stream.for_each(|cap, data| {
                let Some(&t) = cap.least() else { return };
                let shifted = cap.delayed(&t.saturating_add(shift), 0);
                for item in data.drain(..) {
                    op.on_stream(shifted.clone(), item, &mut pending);
                }
                if !pending.is_empty() {
                    out.session(&shifted).give_iterator(pending.drain(..));
                }
            });
            let tables = frontiers[1].frontier().first().copied();
            let stream = frontiers[0].frontier().first().copied();
            op.release(tables, |cap, items| {
                out.session(cap).give_iterator(items.drain(..));
            });
            op.trim(tables, stream);
            op.report(&control);
        }
    });
    out_stream
}
