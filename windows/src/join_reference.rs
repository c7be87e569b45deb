//! A testing oracle for tables and the temporal join, not a production
//! engine: the rules T1–T3 and J1–J7 of the design followed literally, by
//! brute force. Every lookup scans every table record; every correction
//! recomputes a stream record's whole enrichment; nothing is trimmed.
//!
//! It shares nothing with [`crate::table`] but [`accepts`] (rule T1, which
//! is a formula, tested on its own) and the vocabulary types, so that the
//! property tests comparing the two are meaningful.
//!
//! # The model
//!
//! - The stream time s(x) of a record is the running maximum of the event
//!   times of its partition, itself included. A static table's records
//!   have event time and stream time −∞ ([`EventTime::MIN`]).
//! - A table record c of table i, partition p, offset o has event order ≺
//!   = (s(c), i, p, o) and watermark w(c) = s(c) − D_T; it is accepted iff
//!   [`accepts`]`(w(c), t(c), L_T)` (a static table accepts all).
//! - Δ = 1 + the largest delay of a non-static table (1 when there is
//!   none); a stream record r is looked up at e(r) = s(r) + Δ with the
//!   accepted table records with s(c) < e(r).
//! - J3: with at least one non-static table, r is rejected as
//!   [`Reject::TooOld`] (naming the first non-static table) when
//!   w(r) − t(r) > B, w(r) = s(r) − D.
//! - Each [`Enrich`] step looks up the key [`key_text`] gives for the field
//!   `on` of the record's fields so far (the stream's, then the attached
//!   fields of the earlier steps), as of t(r), and appends the table's
//!   fields; `inner` rejects a record without a version
//!   ([`Reject::NoRow`]), `left` appends the defaults.
//! - Corrections (J7): at every τ ≥ e(r) that is the stream time of an
//!   accepted record of a table the steps use, the enrichment is recomputed
//!   with the records with s(c) ≤ τ; a changed row emits, at τ, a
//!   [`RowKind::Retract`] of the last row shown (if any), then the new row
//!   (if any).

use crate::fields::Field;
use crate::table::{accepts, UpdateOrder};
use crate::time::{watermark, EventTime};

/// A table record of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRecord {
    /// The table key.
    pub key: String,
    /// The event time (ignored for a static table).
    pub time: EventTime,
    /// The attached fields; `None` is a tombstone.
    pub fields: Option<Vec<Field>>,
}

/// A table of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelTable {
    /// Its partitions, each in offset order (the offset is the index).
    pub partitions: Vec<Vec<TableRecord>>,
    /// The delay D_T.
    pub delay: EventTime,
    /// The allowed lateness L_T.
    pub lateness: EventTime,
    /// A static table (`time = "none"`): every record at −∞.
    pub is_static: bool,
    /// The number of attached fields (each record's `fields` has as many).
    pub width: usize,
}

/// A stream record of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRecord {
    /// The event time.
    pub time: EventTime,
    /// The stream's named fields.
    pub fields: Vec<Field>,
}

/// An enrichment step's join mode (J4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No version: the record is rejected.
    Inner,
    /// No version: the defaults are attached.
    Left,
}

/// One enrichment step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrich {
    /// The index of the table in [`JoinJob::tables`].
    pub table: usize,
    /// The index of the join key among the record's fields so far: the
    /// stream's fields, then the attached fields of the earlier steps in
    /// order. It must be in range.
    pub on: usize,
    /// Inner or left.
    pub mode: Mode,
    /// Left mode: the fields attached when there is no version (null where
    /// none is given, up to the table's width).
    pub defaults: Vec<Field>,
}

/// A join-only job of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinJob {
    /// The stream's partitions, each in offset order.
    pub stream: Vec<Vec<StreamRecord>>,
    /// The stream's delay D.
    pub delay: EventTime,
    /// The history B (J3).
    pub history: EventTime,
    /// The tables, in declaration order (their input rank).
    pub tables: Vec<ModelTable>,
    /// The enrichment steps, applied in order.
    pub enrich: Vec<Enrich>,
}

/// Whether a row is shown or taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowKind {
    /// A row (the first one of a record, or the one after a retract).
    Final,
    /// The row shown before is taken back.
    Retract,
}

/// A row of the join-only output (J7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRow {
    /// When the row goes out: e(r) for a first row, τ for a correction.
    pub time: EventTime,
    /// 0 for a first row, 1 for a correction.
    pub phase: u8,
    /// The stream record's partition.
    pub partition: u32,
    /// The stream record's offset.
    pub offset: u64,
    /// Final or retract.
    pub kind: RowKind,
    /// The stream's fields, then the attached fields of every step.
    pub fields: Vec<Field>,
}

/// Why a record went to the late output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// A table record refused by T1 (`table update too late`); the
    /// partition and offset of [`Rejected`] are the table record's.
    TableLate {
        /// The table.
        table: usize,
    },
    /// A stream record older than the history (J3, `older than table
    /// history`), naming the first non-static table of the job.
    TooOld {
        /// The table.
        table: usize,
    },
    /// A stream record an inner step found no version for at e(r) (J4,
    /// `no table row`), naming that step's table.
    NoRow {
        /// The table.
        table: usize,
    },
}

/// A rejected record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The record's partition (of its table for [`Reject::TableLate`], of
    /// the stream otherwise).
    pub partition: u32,
    /// The record's offset.
    pub offset: u64,
    /// Why.
    pub reason: Reject,
}

impl Rejected {
    /// The order of [`JoinOutput::rejected`]: table records first, by
    /// (table, partition, offset), then stream records by (partition,
    /// offset).
    pub fn sort_key(&self) -> (u8, usize, u32, u64) {
        match self.reason {
            Reject::TableLate { table } => (0, table, self.partition, self.offset),
            Reject::TooOld { .. } | Reject::NoRow { .. } => (1, 0, self.partition, self.offset),
        }
    }
}

/// The result of [`join`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinOutput {
    /// The rows, sorted by (time, phase, partition, offset); a correction's
    /// retract comes before its new row.
    pub rows: Vec<JoinRow>,
    /// The rejected records, sorted by [`Rejected::sort_key`]. A record
    /// rejected as [`Reject::NoRow`] at e(r) stays here even if a
    /// correction later gives it a row.
    pub rejected: Vec<Rejected>,
}

/// The table key a join-key field matches: text as it is, an integer as
/// its decimal text, a float as its `Display` text; `None` for null (which
/// matches no key).
///
/// ```
/// use tidemark_windows::join_reference::key_text;
/// use tidemark_windows::Field;
/// assert_eq!(key_text(&Field::Int(-7)).as_deref(), Some("-7"));
/// assert_eq!(key_text(&Field::Float(1.5)).as_deref(), Some("1.5"));
/// assert_eq!(key_text(&Field::from("u1")).as_deref(), Some("u1"));
/// assert_eq!(key_text(&Field::Null), None);
/// ```
pub fn key_text(field: &Field) -> Option<String> {
    match field {
        Field::Null => None,
        Field::Int(i) => Some(i.to_string()),
        Field::Float(f) => Some(f.to_string()),
        Field::Text(t) => Some(t.to_string()),
    }
}

/// An accepted table record, as the lookups see it.
struct Applied<'a> {
    table: usize,
    key: &'a str,
    /// The event time (−∞ for a static table).
    time: EventTime,
    /// ≺; its first element is s(c).
    order: UpdateOrder,
    fields: Option<&'a [Field]>,
}

/// The running maximum of `times`.
fn stream_times(times: impl Iterator<Item = EventTime>) -> Vec<EventTime> {
    let mut s = EventTime::MIN;
    times
        .map(|t| {
            s = s.max(t);
            s
        })
        .collect()
}

/// The accepted table records, and the rejected ones.
fn table_records(job: &JoinJob) -> (Vec<Applied<'_>>, Vec<Rejected>) {
    let mut applied = Vec::new();
    let mut rejected = Vec::new();
    for (i, table) in job.tables.iter().enumerate() {
        for (p, part) in table.partitions.iter().enumerate() {
            let s_all = if table.is_static {
                vec![EventTime::MIN; part.len()]
            } else {
                stream_times(part.iter().map(|c| c.time))
            };
            for (o, c) in part.iter().enumerate() {
                let s = s_all[o];
                let time = if table.is_static {
                    EventTime::MIN
                } else {
                    c.time
                };
                let ok =
                    table.is_static || accepts(watermark(s, table.delay), time, table.lateness);
                if ok {
                    applied.push(Applied {
                        table: i,
                        key: &c.key,
                        time,
                        order: (s, i as u32, p as u32, o as u64),
                        fields: c.fields.as_deref(),
                    });
                } else {
                    rejected.push(Rejected {
                        partition: p as u32,
                        offset: o as u64,
                        reason: Reject::TableLate { table: i },
                    });
                }
            }
        }
    }
    (applied, rejected)
}

/// Δ = 1 + the largest delay of a non-static table (at least 0).
fn delta(job: &JoinJob) -> EventTime {
    let max_delay = job
        .tables
        .iter()
        .filter(|t| !t.is_static)
        .map(|t| t.delay)
        .fold(0, EventTime::max);
    max_delay.saturating_add(1)
}

/// J3: the first non-static table when `r` (stream time `s`, event time
/// `t`) is older than the history.
fn too_old(job: &JoinJob, s: EventTime, t: EventTime) -> Option<usize> {
    let table = job.tables.iter().position(|t| !t.is_static)?;
    let w = watermark(s, job.delay);
    (i128::from(w) - i128::from(t) > i128::from(job.history)).then_some(table)
}

/// T2: the accepted record of `table` answering V(key, time) among those
/// whose stream time passes `cut`: the greatest by (time, ≺) with time ≤
/// `time`.
fn version<'a>(
    applied: &'a [Applied<'a>],
    table: usize,
    key: &str,
    time: EventTime,
    cut: &dyn Fn(EventTime) -> bool,
) -> Option<&'a Applied<'a>> {
    applied
        .iter()
        .filter(|c| c.table == table && c.key == key && c.time <= time && cut(c.order.0))
        .max_by_key(|c| (c.time, c.order))
}

/// The fields of `r` after every step, with the table records whose stream
/// time passes `cut`; `Err(table)` when an inner step finds no version.
fn enrich_at(
    job: &JoinJob,
    applied: &[Applied<'_>],
    r: &StreamRecord,
    cut: &dyn Fn(EventTime) -> bool,
) -> Result<Vec<Field>, usize> {
    let mut fields = r.fields.clone();
    for step in &job.enrich {
        let found = key_text(&fields[step.on])
            .and_then(|k| version(applied, step.table, &k, r.time, cut))
            .and_then(|c| c.fields);
        match (found, step.mode) {
            (Some(f), _) => fields.extend_from_slice(f),
            (None, Mode::Inner) => return Err(step.table),
            (None, Mode::Left) => {
                let width = job.tables[step.table].width;
                fields
                    .extend((0..width).map(|i| step.defaults.get(i).cloned().unwrap_or_default()));
            }
        }
    }
    Ok(fields)
}

/// S′ of Theorem E (J5): per stream partition and offset, the record's
/// fields after enrichment as of its lookup at e(r); `None` when J3 or J4
/// rejects it.
pub fn enriched(job: &JoinJob) -> Vec<Vec<Option<Vec<Field>>>> {
    let (applied, _) = table_records(job);
    let delta = delta(job);
    job.stream
        .iter()
        .map(|part| {
            let s_all = stream_times(part.iter().map(|r| r.time));
            part.iter()
                .zip(s_all)
                .map(|(r, s)| {
                    if too_old(job, s, r.time).is_some() {
                        return None;
                    }
                    let e = s.saturating_add(delta);
                    enrich_at(job, &applied, r, &|sc| sc < e).ok()
                })
                .collect()
        })
        .collect()
}

/// The join-only output (J7) of `job`: first rows at e(r), corrections at
/// the stream times of late accepted table records, and the rejected
/// records.
///
/// Panics if a step's `table` or `on` is out of range.
pub fn join(job: &JoinJob) -> JoinOutput {
    let (applied, mut rejected) = table_records(job);
    let delta = delta(job);
    let mut used: Vec<usize> = job.enrich.iter().map(|e| e.table).collect();
    used.sort_unstable();
    used.dedup();
    // Every stream time at which a table the steps use changes.
    let mut changes: Vec<EventTime> = applied
        .iter()
        .filter(|c| used.contains(&c.table))
        .map(|c| c.order.0)
        .collect();
    changes.sort_unstable();
    changes.dedup();

    let mut rows = Vec::new();
    for (p, part) in job.stream.iter().enumerate() {
        let s_all = stream_times(part.iter().map(|r| r.time));
        for (o, (r, s)) in part.iter().zip(s_all).enumerate() {
            let (partition, offset) = (p as u32, o as u64);
            let row = |time, phase, kind, fields| JoinRow {
                time,
                phase,
                partition,
                offset,
                kind,
                fields,
            };
            if let Some(table) = too_old(job, s, r.time) {
                rejected.push(Rejected {
                    partition,
                    offset,
                    reason: Reject::TooOld { table },
                });
                continue;
            }
            let e = s.saturating_add(delta);
            let mut shown = match enrich_at(job, &applied, r, &|sc| sc < e) {
                Ok(fields) => {
                    rows.push(row(e, 0, RowKind::Final, fields.clone()));
                    Some(fields)
                }
                Err(table) => {
                    rejected.push(Rejected {
                        partition,
                        offset,
                        reason: Reject::NoRow { table },
                    });
                    None
                }
            };
            for &tau in changes.iter().filter(|&&tau| tau >= e) {
                let now = enrich_at(job, &applied, r, &|sc| sc <= tau).ok();
                if now != shown {
                    if let Some(old) = shown {
                        rows.push(row(tau, 1, RowKind::Retract, old));
                    }
                    if let Some(new) = &now {
                        rows.push(row(tau, 1, RowKind::Final, new.clone()));
                    }
                    shown = now;
                }
            }
        }
    }
    // Stable: a correction's retract stays before its new row.
    rows.sort_by_key(|r| (r.time, r.phase, r.partition, r.offset));
    rejected.sort_by_key(Rejected::sort_key);
    JoinOutput { rows, rejected }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Field {
        Field::from(s)
    }

    fn rec(key: &str, time: EventTime, fields: Option<&[Field]>) -> TableRecord {
        TableRecord {
            key: key.into(),
            time,
            fields: fields.map(<[Field]>::to_vec),
        }
    }

    fn table(records: Vec<TableRecord>, delay: EventTime, lateness: EventTime) -> ModelTable {
        ModelTable {
            partitions: vec![records],
            delay,
            lateness,
            is_static: false,
            width: 1,
        }
    }

    fn stream(records: &[(EventTime, &str)]) -> Vec<Vec<StreamRecord>> {
        vec![records
            .iter()
            .map(|&(time, user)| StreamRecord {
                time,
                fields: vec![text(user)],
            })
            .collect()]
    }

    fn step(table: usize, on: usize, mode: Mode) -> Enrich {
        Enrich {
            table,
            on,
            mode,
            defaults: Vec::new(),
        }
    }

    fn first(time: EventTime, offset: u64, fields: &[&str]) -> JoinRow {
        JoinRow {
            time,
            phase: 0,
            partition: 0,
            offset,
            kind: RowKind::Final,
            fields: fields.iter().map(|f| text(f)).collect(),
        }
    }

    /// Checks that the first rows of `out` are S′ as [`enriched`] has it.
    fn agrees_with_enriched(job: &JoinJob, out: &JoinOutput) {
        let firsts: Vec<_> = out.rows.iter().filter(|r| r.phase == 0).collect();
        let s_prime = enriched(job);
        let mut expected = Vec::new();
        for (p, part) in s_prime.iter().enumerate() {
            for (o, f) in part.iter().enumerate() {
                if let Some(f) = f {
                    expected.push((p as u32, o as u64, f.clone()));
                }
            }
        }
        let mut got: Vec<_> = firsts
            .iter()
            .map(|r| (r.partition, r.offset, r.fields.clone()))
            .collect();
        got.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_move_is_seen_from_its_event_time() {
        let users = table(
            vec![
                rec("u1", 100, Some(&[text("FR")])),
                rec("u1", 300, Some(&[text("DE")])),
            ],
            0,
            0,
        );
        let job = JoinJob {
            stream: stream(&[(150, "u1"), (350, "u1"), (250, "u1"), (50, "u1")]),
            delay: 0,
            history: 1_000,
            tables: vec![users],
            enrich: vec![step(0, 0, Mode::Left)],
        };
        let out = join(&job);
        assert_eq!(
            out.rows,
            [
                first(151, 0, &["u1", "FR"]),
                first(351, 1, &["u1", "DE"]),
                first(351, 2, &["u1", "FR"]),
                JoinRow {
                    fields: vec![text("u1"), Field::Null],
                    ..first(351, 3, &[])
                },
            ]
        );
        assert!(out.rejected.is_empty());
        agrees_with_enriched(&job, &out);
    }

    #[test]
    fn a_delete_ends_the_row() {
        let users = table(
            vec![rec("u1", 100, Some(&[text("FR")])), rec("u1", 200, None)],
            0,
            0,
        );
        let mut job = JoinJob {
            stream: stream(&[(150, "u1"), (250, "u1")]),
            delay: 0,
            history: 1_000,
            tables: vec![users],
            enrich: vec![step(0, 0, Mode::Inner)],
        };
        let out = join(&job);
        assert_eq!(out.rows, [first(151, 0, &["u1", "FR"])]);
        assert_eq!(
            out.rejected,
            [Rejected {
                partition: 0,
                offset: 1,
                reason: Reject::NoRow { table: 0 }
            }]
        );
        agrees_with_enriched(&job, &out);
        job.enrich[0].mode = Mode::Left;
        job.enrich[0].defaults = vec![text("??")];
        let out = join(&job);
        assert_eq!(out.rows[1], first(251, 1, &["u1", "??"]));
        assert!(out.rejected.is_empty());
    }

    /// A table whose third record (u1 at 200) arrives when its partition's
    /// stream time is 300: watermark 290 with delay 10.
    fn late_update(lateness: EventTime) -> JoinJob {
        let users = table(
            vec![
                rec("u1", 100, Some(&[text("FR")])),
                rec("u2", 300, Some(&[text("IT")])),
                rec("u1", 200, Some(&[text("DE")])),
            ],
            10,
            lateness,
        );
        JoinJob {
            stream: stream(&[(250, "u1")]),
            delay: 0,
            history: 1_000,
            tables: vec![users],
            enrich: vec![step(0, 0, Mode::Inner)],
        }
    }

    #[test]
    fn a_late_table_update_is_refused() {
        let job = late_update(0);
        let out = join(&job);
        // Δ = 11: looked up at 261.
        assert_eq!(out.rows, [first(261, 0, &["u1", "FR"])]);
        assert_eq!(
            out.rejected,
            [Rejected {
                partition: 0,
                offset: 2,
                reason: Reject::TableLate { table: 0 }
            }]
        );
        agrees_with_enriched(&job, &out);
    }

    #[test]
    fn a_late_accepted_update_corrects_the_row() {
        let job = late_update(100);
        let out = join(&job);
        let correction = |kind, user: &str| JoinRow {
            time: 300,
            phase: 1,
            kind,
            ..first(0, 0, &["u1", user])
        };
        assert_eq!(
            out.rows,
            [
                first(261, 0, &["u1", "FR"]),
                correction(RowKind::Retract, "FR"),
                correction(RowKind::Final, "DE"),
            ]
        );
        assert!(out.rejected.is_empty());
        agrees_with_enriched(&job, &out);
    }

    #[test]
    fn a_late_update_can_give_a_row_or_take_it() {
        let users = table(
            vec![
                rec("u9", 300, Some(&[text("IT")])),
                rec("u1", 200, Some(&[text("DE")])),
                rec("u2", 200, None),
            ],
            10,
            100,
        );
        let mut job = JoinJob {
            stream: vec![vec![
                StreamRecord {
                    time: 0,
                    fields: vec![text("u1")],
                },
                StreamRecord {
                    time: 250,
                    fields: vec![text("u1")],
                },
                StreamRecord {
                    time: 250,
                    fields: vec![text("u2")],
                },
            ]],
            delay: 0,
            history: 1_000,
            tables: vec![users],
            enrich: vec![step(0, 0, Mode::Inner)],
        };
        job.tables[0].partitions[0].insert(0, rec("u2", 100, Some(&[text("ES")])));
        let out = join(&job);
        assert_eq!(
            out.rows,
            [
                first(261, 2, &["u2", "ES"]),
                JoinRow {
                    time: 300,
                    phase: 1,
                    offset: 1,
                    ..first(0, 0, &["u1", "DE"])
                },
                JoinRow {
                    time: 300,
                    phase: 1,
                    offset: 2,
                    kind: RowKind::Retract,
                    ..first(0, 0, &["u2", "ES"])
                },
            ]
        );
        // Record 1 was rejected at 261 and stays in the late output.
        let reasons: Vec<_> = out.rejected.iter().map(|r| (r.offset, r.reason)).collect();
        assert_eq!(
            reasons,
            [
                (0, Reject::NoRow { table: 0 }),
                (1, Reject::NoRow { table: 0 })
            ]
        );
        agrees_with_enriched(&job, &out);
    }

    #[test]
    fn a_record_older_than_the_history_is_not_looked_up() {
        let countries = ModelTable {
            is_static: true,
            ..table(vec![rec("u1", 0, Some(&[text("FR")]))], 0, 0)
        };
        let users = table(vec![rec("u1", 100, Some(&[text("DE")]))], 0, 0);
        let job = JoinJob {
            stream: stream(&[(300, "u1"), (240, "u1"), (200, "u1")]),
            delay: 10,
            history: 50,
            tables: vec![countries, users],
            enrich: vec![step(0, 0, Mode::Left)],
        };
        let out = join(&job);
        // w = 290: 240 is 50 behind (kept), 200 is 90 behind.
        assert_eq!(
            out.rows,
            [first(301, 0, &["u1", "FR"]), first(301, 1, &["u1", "FR"])]
        );
        assert_eq!(
            out.rejected,
            [Rejected {
                partition: 0,
                offset: 2,
                reason: Reject::TooOld { table: 1 }
            }]
        );
        assert_eq!(enriched(&job)[0][2], None);
        agrees_with_enriched(&job, &out);
    }

    #[test]
    fn chained_tables_join_on_an_attached_field() {
        let users = ModelTable {
            width: 2,
            ..table(
                vec![
                    rec("u1", 100, Some(&[text("FR"), Field::Int(7)])),
                    rec("u2", 100, Some(&[text("XX"), Field::Int(8)])),
                ],
                0,
                0,
            )
        };
        let regions = table(vec![rec("7", 50, Some(&[text("Europe")]))], 5, 0);
        let job = JoinJob {
            stream: stream(&[(200, "u1"), (200, "u2"), (200, "u3")]),
            delay: 0,
            history: 1_000,
            tables: vec![users, regions],
            enrich: vec![step(0, 0, Mode::Left), step(1, 2, Mode::Inner)],
        };
        let out = join(&job);
        // Δ = 1 + 5.
        assert_eq!(
            out.rows,
            [JoinRow {
                fields: vec![text("u1"), text("FR"), Field::Int(7), text("Europe")],
                ..first(206, 0, &[])
            }]
        );
        let reasons: Vec<_> = out.rejected.iter().map(|r| (r.offset, r.reason)).collect();
        // u2's region 8 has no row; u3 has no user, so a null region key.
        assert_eq!(
            reasons,
            [
                (1, Reject::NoRow { table: 1 }),
                (2, Reject::NoRow { table: 1 })
            ]
        );
        agrees_with_enriched(&job, &out);
    }

    #[test]
    fn a_static_table_holds_its_latest_record_at_every_time() {
        let countries = ModelTable {
            partitions: vec![
                vec![
                    rec("u1", 1_000_000, Some(&[text("FR")])),
                    rec("u1", 5, Some(&[text("DE")])),
                    rec("u2", 5, Some(&[text("ES")])),
                ],
                vec![rec("u2", 0, None)],
            ],
            is_static: true,
            ..table(Vec::new(), 1_000, 0)
        };
        let job = JoinJob {
            stream: stream(&[(0, "u1"), (i64::MIN, "u1"), (10, "u2")]),
            delay: 5,
            history: 0,
            tables: vec![countries],
            enrich: vec![step(0, 0, Mode::Inner)],
        };
        let out = join(&job);
        // Δ = 1 (a static table's delay does not count); no history.
        assert_eq!(
            out.rows,
            [first(1, 0, &["u1", "DE"]), first(1, 1, &["u1", "DE"])]
        );
        // u2's tombstone is in the later partition: it wins by ≺.
        assert_eq!(out.rejected.len(), 1);
        assert_eq!(out.rejected[0].reason, Reject::NoRow { table: 0 });
        agrees_with_enriched(&job, &out);
    }

    #[test]
    fn rejected_records_are_sorted_tables_first() {
        let mut job = late_update(0);
        job.stream = stream(&[(250, "u1"), (260, "zz")]);
        job.tables.push(job.tables[0].clone());
        let out = join(&job);
        let keys: Vec<_> = out.rejected.iter().map(Rejected::sort_key).collect();
        assert_eq!(keys, [(0, 0, 0, 2), (0, 1, 0, 2), (1, 0, 0, 1)]);
    }
}
