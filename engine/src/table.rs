//! Tables and the stream–table join at event time: what a job declares
//! ([`Tables`]: its [`TableDef`]s and [`EnrichDef`] steps, by field
//! name), how those names resolve against the stream's fields and the
//! aggregation's (`Resolved`), static tables read whole before the
//! stream starts (`load_static`), and the counts a run reports per table
//! ([`TableSnapshot`]).
//!
//! A table is a keyed changelog read like any input: each record holds a
//! key, an event time and the table's `fields`; a record with none of
//! them (each missing or null) is a **tombstone** and deletes the key from
//! its time on. The table's version of a key at a time is the accepted
//! record greatest by (time, event order) at or before it
//! ([`tidemark_windows::table`]). A stream record is looked up at its
//! partition's stream time plus Δ = 1 + the largest table delay, once every
//! table's frontier has reached that time: the answer is final, the same
//! whatever the interleaving of the inputs, the batches or the workers.
//! The windows after the join see each record Δ later with a delay Δ
//! larger, so every lateness decision is the one the plain window job
//! makes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tidemark_sources::{DeadLetter, Decoded, Key, ReadStatus, Source};
use tidemark_windows::table::VersionedTable;
use tidemark_windows::{EventTime, Field};

use crate::error::{EngineError, Result};

/// How a stream record without a table version is treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinMode {
    /// It goes to the late output (`no table row`).
    Inner,
    /// It goes on with the table's fields null, or their defaults.
    #[default]
    Left,
}

impl std::str::FromStr for JoinMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "inner" => Ok(JoinMode::Inner),
            "left" => Ok(JoinMode::Left),
            other => Err(format!(
                "unknown join mode \"{other}\" (expected inner or left)"
            )),
        }
    }
}

/// A table of a job: a keyed changelog read from its own source.
#[derive(Clone)]
pub struct TableDef {
    /// Its name (in late records, dead letters and reports).
    pub name: String,
    /// Where its records come from; the source decodes the table's key,
    /// time and `fields` (as named fields, in order).
    pub source: Arc<dyn Source>,
    /// The fields a lookup attaches, in the order the source decodes them.
    pub fields: Vec<String>,
    /// Its watermark delay D_T (`None`: the job's delay).
    pub delay: Option<EventTime>,
    /// Its allowed lateness L_T (0 when windows follow the join).
    pub lateness: EventTime,
    /// How far before its partition's watermark a stream record may be
    /// and still be looked up (`None`: the job's lateness plus the window
    /// span).
    pub history: Option<EventTime>,
    /// A static reference table (`time = "none"`): read to its end before
    /// the stream starts, every record valid at every time.
    pub is_static: bool,
}

impl std::fmt::Debug for TableDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableDef")
            .field("name", &self.name)
            .field("input", &self.source.describe())
            .field("fields", &self.fields)
            .field("delay", &self.delay)
            .field("lateness", &self.lateness)
            .field("history", &self.history)
            .field("is_static", &self.is_static)
            .finish()
    }
}

/// One enrichment step: each stream record is joined with table `table`
/// on its field `on`.
#[derive(Clone, Debug, PartialEq)]
pub struct EnrichDef {
    /// The table's name.
    pub table: String,
    /// The record field matched with the table's key: a stream field, or
    /// a field an earlier step attached.
    pub on: String,
    /// Inner or left.
    pub mode: JoinMode,
    /// Left: the values of the table's fields when no version is valid
    /// (null for those not given).
    pub defaults: BTreeMap<String, Field>,
}

/// The tables of a job and how its stream is enriched from them.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// The tables, in declaration order (their rank in the event order).
    pub tables: Vec<TableDef>,
    /// The enrichment steps, in order.
    pub enrich: Vec<EnrichDef>,
    /// The named fields the stream's source decodes, in order (see
    /// [`Tables::decode_fields`]).
    pub stream_fields: Vec<String>,
    /// The window key's fields (one, or the parts of a compound key).
    pub key_fields: Vec<String>,
}

/// Where an enriched record's field comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldRef {
    /// The stream record's named field `i`.
    Stream(usize),
    /// Field `field` of what step `step` attached.
    Attached { step: usize, field: usize },
    /// The stream record's own key (a step joining on the stream's key
    /// field reads it without decoding it twice).
    Key,
}

/// An enrichment step with its names resolved.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) table: usize,
    pub(crate) on: FieldRef,
    pub(crate) mode: JoinMode,
    /// One per table field (left mode).
    pub(crate) defaults: Vec<Field>,
}

/// [`Tables`] resolved against a job: which fields the stream decodes,
/// where each field the aggregation reads comes from, how the key is made.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub(crate) steps: Vec<Step>,
    /// The fields the aggregation reads, in its order.
    pub(crate) fields: Vec<FieldRef>,
    /// The key's fields when the key is made after the join (it names an
    /// attached field); `None`: the stream's own key.
    pub(crate) key: Option<Vec<(FieldRef, String)>>,
    /// Δ: 1 + the largest delay of a table read in time.
    pub(crate) shift: EventTime,
    /// Per table: its delay D_T, lateness and history B (static tables:
    /// none).
    pub(crate) delays: Vec<EventTime>,
    pub(crate) lateness: Vec<EventTime>,
    pub(crate) history: Vec<Option<EventTime>>,
}

impl Tables {
    /// Whether the job has any table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The fields the tables attach (every joined table's `fields`, in
    /// order).
    pub fn attached(&self) -> Vec<&str> {
        attached(&self.enrich, &self.table_fields())
    }

    /// Each table's name and fields.
    fn table_fields(&self) -> Vec<(&str, &[String])> {
        self.tables
            .iter()
            .map(|t| (t.name.as_str(), t.fields.as_slice()))
            .collect()
    }

    /// The named fields the stream itself must decode, in order, for a
    /// job whose aggregation reads `record_fields` and whose key is made
    /// of `key_fields` (see [`decode_fields`]).
    pub fn decode_fields(
        &self,
        record_fields: &[String],
        key_fields: &[String],
    ) -> (Vec<String>, bool) {
        decode_fields(
            &self.enrich,
            &self.table_fields(),
            record_fields,
            key_fields,
        )
    }

    /// Checks the tables and steps, and resolves their names: the stream
    /// decodes `stream_fields`, the aggregation reads `record_fields`, the
    /// key is `key_fields` (made after the join when it names an attached
    /// field). `job_delay`, `job_lateness` and `span` give the defaults
    /// (a table's delay, the history).
    pub(crate) fn resolve(
        &self,
        record_fields: &[String],
        job_delay: EventTime,
        job_lateness: EventTime,
        span: Option<EventTime>,
        windows_follow: bool,
    ) -> Result<Resolved> {
        let config = |m: String| EngineError::Config(m);
        let stream_fields = &self.stream_fields;
        let key_fields = &self.key_fields;
        let attached = self.attached();
        let key_from_stream = !key_fields.iter().any(|k| attached.contains(&k.as_str()));
        let mut names: Vec<&str> = Vec::new();
        for t in &self.tables {
            if t.name.is_empty() {
                return Err(config("a table needs a name".into()));
            }
            if names.contains(&t.name.as_str()) {
                return Err(config(format!(
                    "two tables are named \"{}\"; give each its own name",
                    t.name
                )));
            }
            names.push(&t.name);
            if t.fields.is_empty() {
                return Err(config(format!(
                    "table \"{}\" has no fields: name the fields a lookup attaches (fields = [\"country\"])",
                    t.name
                )));
            }
            if windows_follow && t.lateness != 0 {
                return Err(config(format!(
                    "table \"{}\" has lateness {} ms, but windows follow the join: a window cannot take back a record it aggregated, so a table that feeds windows must have lateness 0",
                    t.name, t.lateness
                )));
            }
            if t.lateness < 0 || t.delay.is_some_and(|d| d < 0) || t.history.is_some_and(|h| h < 0)
            {
                return Err(config(format!(
                    "table \"{}\": delay, lateness and history cannot be negative",
                    t.name
                )));
            }
        }
        // Each field name is attached by one step only.
        let mut scope: Vec<(String, FieldRef)> = Vec::new();
        if let [key] = key_fields.as_slice() {
            if key_from_stream {
                scope.push((key.clone(), FieldRef::Key));
            }
        }
        scope.extend(
            stream_fields
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), FieldRef::Stream(i))),
        );
        let mut steps = Vec::new();
        let mut used = Vec::new();
        for (s, e) in self.enrich.iter().enumerate() {
            let Some(table) = self.tables.iter().position(|t| t.name == e.table) else {
                return Err(config(format!(
                    "enrich names table \"{}\", which is not declared (tables: {})",
                    e.table,
                    list(&names)
                )));
            };
            if used.contains(&table) {
                return Err(config(format!(
                    "table \"{}\" is joined twice; join each table once",
                    e.table
                )));
            }
            used.push(table);
            let def = &self.tables[table];
            let on = lookup(&scope, &e.on).ok_or_else(|| {
                config(format!(
                    "enrich with table \"{}\": on = \"{}\" is not a field of the record",
                    e.table, e.on
                ))
            })?;
            if let Some(unknown) = e.defaults.keys().find(|k| !def.fields.contains(k)) {
                return Err(config(format!(
                    "enrich with table \"{}\": the default for \"{unknown}\" is not one of its fields ({})",
                    e.table,
                    list(&def.fields.iter().map(String::as_str).collect::<Vec<_>>())
                )));
            }
            if e.mode == JoinMode::Inner && !e.defaults.is_empty() {
                return Err(config(format!(
                    "enrich with table \"{}\": defaults apply to mode = \"left\" only (inner sends a record without a version to the late output)",
                    e.table
                )));
            }
            for (i, f) in def.fields.iter().enumerate() {
                if let Some((_, FieldRef::Attached { step, .. })) =
                    scope.iter().find(|(n, _)| n == f)
                {
                    return Err(config(format!(
                        "field \"{f}\" is attached by table \"{}\" and by table \"{}\"",
                        self.tables[steps_table(&steps, *step)].name,
                        def.name
                    )));
                }
                // An attached field shadows a stream field of its name.
                scope.retain(|(n, _)| n != f);
                scope.push((f.clone(), FieldRef::Attached { step: s, field: i }));
            }
            steps.push(Step {
                table,
                on,
                mode: e.mode,
                defaults: def
                    .fields
                    .iter()
                    .map(|f| e.defaults.get(f).cloned().unwrap_or(Field::Null))
                    .collect(),
            });
        }
        if let Some(t) = self
            .tables
            .iter()
            .enumerate()
            .find(|(i, _)| !used.contains(i))
        {
            return Err(config(format!(
                "table \"{}\" is declared but no enrich step joins it",
                t.1.name
            )));
        }
        let fields = record_fields
            .iter()
            .map(|f| {
                lookup(&scope, f)
                    .filter(|r| *r != FieldRef::Key)
                    .ok_or_else(|| {
                        config(format!(
                            "the aggregation reads \"{f}\", which is not a field of the record"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let key = if key_from_stream {
            None
        } else {
            Some(
                key_fields
                    .iter()
                    .map(|k| {
                        lookup(&scope, k).map(|r| (r, k.clone())).ok_or_else(|| {
                            config(format!(
                                "the key field \"{k}\" is not a field of the record"
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
            )
        };
        let delays: Vec<EventTime> = self
            .tables
            .iter()
            .map(|t| t.delay.unwrap_or(job_delay))
            .collect();
        let shift = self
            .tables
            .iter()
            .zip(&delays)
            .filter(|(t, _)| !t.is_static)
            .map(|(_, d)| *d)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let default_history = job_lateness.saturating_add(span.unwrap_or(0));
        Ok(Resolved {
            steps,
            fields,
            key,
            shift,
            delays,
            lateness: self.tables.iter().map(|t| t.lateness).collect(),
            history: self
                .tables
                .iter()
                .map(|t| (!t.is_static).then(|| t.history.unwrap_or(default_history)))
                .collect(),
        })
    }
}

/// The fields the joined tables attach, in order; `tables` gives each
/// table's name and fields.
fn attached<'a>(enrich: &[EnrichDef], tables: &[(&'a str, &'a [String])]) -> Vec<&'a str> {
    enrich
        .iter()
        .filter_map(|e| tables.iter().find(|(n, _)| *n == e.table))
        .flat_map(|(_, fields)| fields.iter().map(String::as_str))
        .collect()
}

/// The named fields a stream enriched by `enrich` from `tables` (name and
/// fields of each) must decode itself, in order, for a job whose
/// aggregation reads `record_fields` and whose key is made of `key_fields`:
/// each step's `on` field and the fields read that no table attaches. With
/// `true`, the key is the stream's own (no key field is attached); else it
/// is made after the join, and the stream's key fields are among those
/// returned.
pub fn decode_fields(
    enrich: &[EnrichDef],
    tables: &[(&str, &[String])],
    record_fields: &[String],
    key_fields: &[String],
) -> (Vec<String>, bool) {
    let attached = attached(enrich, tables);
    let key_from_stream = !key_fields.iter().any(|k| attached.contains(&k.as_str()));
    // A step on the stream's own key field reads the record's key.
    let own_key = match key_fields {
        [key] if key_from_stream => Some(key.as_str()),
        _ => None,
    };
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !attached.contains(&name) && !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    };
    for e in enrich.iter().filter(|e| Some(e.on.as_str()) != own_key) {
        add(&e.on);
    }
    for f in record_fields {
        add(f);
    }
    if !key_from_stream {
        for k in key_fields {
            add(k);
        }
    }
    (out, key_from_stream)
}

fn steps_table(steps: &[Step], step: usize) -> usize {
    steps.get(step).map_or(0, |s| s.table)
}

fn lookup(scope: &[(String, FieldRef)], name: &str) -> Option<FieldRef> {
    scope.iter().rev().find(|(n, _)| n == name).map(|(_, r)| *r)
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The text a field is matched with a table key as: the text itself, or a
/// number as the decoder writes a numeric key; `None` for null.
pub(crate) fn key_text(field: &Field) -> Option<Key> {
    match field {
        Field::Null => None,
        Field::Text(t) => Some(t.clone()),
        Field::Int(i) => Some(Key::from(i.to_string())),
        Field::Float(f) => Some(Key::from(f.to_string())),
    }
}

/// A table version's fields: `None` for a tombstone (a record whose
/// fields are all null).
pub(crate) fn version_fields(fields: Vec<Field>) -> Option<Box<[Field]>> {
    if fields.iter().all(|f| *f == Field::Null) {
        None
    } else {
        Some(fields.into_boxed_slice())
    }
}

/// A static table, read whole: every record valid at every time, the
/// latest by (partition, offset) winning.
pub(crate) type StaticTable = VersionedTable<Key, Box<[Field]>>;

/// Reads static table `def` (rank `rank`) to its end (a followed input up
/// to what it holds now): the table, and the dead letters of its lines.
pub(crate) fn load_static(def: &TableDef, rank: u32) -> Result<(StaticTable, Vec<DeadLetter>)> {
    let mut table = StaticTable::new();
    let mut dead = Vec::new();
    let mut buf: Vec<Decoded> = Vec::new();
    for partition in def.source.partitions()? {
        let mut reader = def.source.open(partition, 0)?;
        loop {
            buf.clear();
            let status = reader.read(4096, &mut buf)?;
            for d in buf.drain(..) {
                match d {
                    Ok(r) => table.insert(
                        r.key,
                        EventTime::MIN,
                        (EventTime::MIN, rank, r.partition, r.offset),
                        version_fields(r.fields),
                    ),
                    Err(letter) => dead.push(letter),
                }
            }
            if !matches!(status, ReadStatus::More) {
                break;
            }
        }
    }
    Ok((table, dead))
}

/// What a run reports of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSnapshot {
    /// The table's name.
    pub name: String,
    /// Records read.
    pub records: u64,
    /// Updates too late for the table (T1), on the late output.
    pub too_late: u64,
    /// Lines that could not be decoded (dead letters).
    pub dead_letters: u64,
    /// Stream records without a version (inner mode), on the late output.
    pub no_row: u64,
    /// Stream records older than the table's history, on the late output.
    pub older_than_history: u64,
    /// Stream records looked up.
    pub lookups: u64,
    /// Keys held (one worker's copy; every worker holds the whole table).
    pub keys: u64,
    /// Versions held.
    pub versions: u64,
    /// The most versions one key held.
    pub peak_versions: u64,
    /// The table's stream time (the least over its partitions not ended).
    pub stream_time: Option<i64>,
    /// Its watermark: the stream time minus its delay.
    pub watermark: Option<i64>,
    /// Every partition ended (a static table, once loaded).
    pub ended: bool,
    /// Per partition read in this process: its stream time, and whether
    /// it no longer holds the table's time (ended or released as idle).
    #[serde(skip)]
    pub(crate) parts: BTreeMap<u32, (Option<i64>, bool)>,
    /// The table's delay.
    #[serde(skip)]
    pub(crate) delay: i64,
}

/// The tables' live reports, shared by the workers of a process.
#[derive(Debug, Default)]
pub struct TableStats {
    tables: Mutex<Vec<TableSnapshot>>,
}

impl TableStats {
    /// Every table's report now.
    pub fn snapshot(&self) -> Vec<TableSnapshot> {
        let mut all = self.tables.lock().map(|t| t.clone()).unwrap_or_default();
        for t in all.iter_mut().filter(|t| !t.parts.is_empty()) {
            let holding: Vec<Option<i64>> = t
                .parts
                .values()
                .filter(|(_, done)| !done)
                .map(|(st, _)| *st)
                .collect();
            t.ended = t.ended || holding.is_empty();
            t.stream_time = if holding.iter().any(Option::is_none) {
                None
            } else {
                holding.into_iter().flatten().min()
            };
            t.watermark = t.stream_time.map(|st| st.saturating_sub(t.delay));
        }
        all
    }

    /// Declares the tables (before the run).
    pub(crate) fn declare(&self, tables: &[(String, i64)]) {
        if let Ok(mut t) = self.tables.lock() {
            *t = tables
                .iter()
                .map(|(n, delay)| TableSnapshot {
                    name: n.clone(),
                    delay: *delay,
                    ..TableSnapshot::default()
                })
                .collect();
        }
    }

    /// Changes table `i`'s report.
    pub(crate) fn update(&self, i: usize, f: impl FnOnce(&mut TableSnapshot)) {
        if let Ok(mut t) = self.tables.lock() {
            if let Some(s) = t.get_mut(i) {
                f(s);
            }
        }
    }
}
