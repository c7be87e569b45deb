//! Differential tests of the versioned table and the temporal join's
//! reference model.
//!
//! Families:
//! - `table_equals_brute_force`: random table logs (1–3 partitions, a few
//!   keys, disorder and stragglers, tombstones) driven into a
//!   [`VersionedTable`] as an engine does: accepted records in stream-time
//!   order, lookups and trims interleaved at horizons the trim contract
//!   allows. Every lookup equals a scan of the records inserted so far, and
//!   after every trim the table holds exactly what R1 keeps of them.
//! - `insert_order_does_not_matter`: the same records inserted in any
//!   order give the same versions and lookups.
//! - `accepts_is_the_literal_formula`: T1 against its formula in 128 bits.
//! - `join_without_lateness_is_final`: with L_T = 0 the join reference has
//!   no corrections and its rows are S′ (`enriched`) at e(r).
//! - `corrections_end_at_every_accepted_record`: with lateness, each
//!   record's rows retract only what is shown, and what is shown at the end
//!   is its enrichment with every accepted table record.
//!
//! Run with `cargo test -p tidemark-windows --test table_vs_reference`
//! (`PROPTEST_CASES=N` for more cases).

use std::collections::BTreeMap;

use proptest::prelude::*;
use tidemark_windows::join_reference::{
    enriched, join, Enrich, JoinJob, JoinRow, Mode, ModelTable, Reject, RowKind, StreamRecord,
    TableRecord,
};
use tidemark_windows::table::{accepts, UpdateOrder, Version, VersionedTable};
use tidemark_windows::time::{watermark, EventTime};
use tidemark_windows::watermark::StreamTime;
use tidemark_windows::Field;

/// Event times of one partition: arrival i at `start + i * step`, event
/// time = arrival − a small disorder, or a large one for a straggler
/// (probability `stragglers`).
fn times(
    start: std::ops::Range<i64>,
    stragglers: f64,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<EventTime>> {
    (
        start,
        1i64..30,
        prop::collection::vec((0i64..40, prop::bool::weighted(stragglers), 0i64..300), len),
    )
        .prop_map(|(start, step, recs)| {
            recs.into_iter()
                .enumerate()
                .map(|(i, (disorder, straggler, extra))| {
                    let arrival = start + i as i64 * step;
                    arrival
                        - if straggler {
                            disorder + extra
                        } else {
                            disorder
                        }
                })
                .collect()
        })
}

/// One record of a table partition: key, event time, tombstone.
type Raw = (u8, EventTime, bool);

/// A table log: partitions of raw records, the number of keys, D_T, L_T.
#[derive(Clone, Debug)]
struct TableLog {
    partitions: Vec<Vec<Raw>>,
    delay: EventTime,
    lateness: EventTime,
}

fn table_log() -> impl Strategy<Value = TableLog> {
    (1usize..4, 1u8..6).prop_flat_map(|(parts, keys)| {
        let partition = times(-300..300, 0.15, 0..25).prop_flat_map(move |ts| {
            let n = ts.len();
            (
                Just(ts),
                prop::collection::vec((0..keys, prop::bool::weighted(0.2)), n),
            )
                .prop_map(|(ts, ks)| {
                    ts.into_iter()
                        .zip(ks)
                        .map(|(t, (k, tomb))| (k, t, tomb))
                        .collect::<Vec<Raw>>()
                })
        });
        (
            prop::collection::vec(partition, parts),
            prop_oneof![Just(0i64), 0i64..60],
            prop_oneof![Just(0i64), 0i64..80],
        )
            .prop_map(|(partitions, delay, lateness)| TableLog {
                partitions,
                delay,
                lateness,
            })
    })
}

/// An accepted table record: key, event time, ≺ and fields (a record id;
/// `None` for a tombstone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Accepted {
    key: u8,
    time: EventTime,
    order: UpdateOrder,
    fields: Option<u32>,
}

/// The records T1 accepts, in the order an engine applies them: by stream
/// time, then partition, then offset (≺ with rank 0).
fn accepted(log: &TableLog) -> Vec<Accepted> {
    let mut out = Vec::new();
    for (p, part) in log.partitions.iter().enumerate() {
        let mut s = StreamTime::new();
        for (o, &(key, time, tomb)) in part.iter().enumerate() {
            let st = s.observe(time);
            let w = st - log.delay;
            if w < time + 1 + log.lateness {
                out.push(Accepted {
                    key,
                    time,
                    order: (st, 0, p as u32, o as u64),
                    fields: (!tomb).then_some((p * 1_000 + o) as u32),
                });
            }
        }
    }
    out.sort_by_key(|c| c.order);
    out
}

/// T2 by brute force: the version of `key` greatest by (time, ≺) with
/// time ≤ `t` among `records`.
fn brute_version(records: &[Accepted], key: u8, t: EventTime) -> Option<Accepted> {
    records
        .iter()
        .filter(|c| c.key == key && c.time <= t)
        .max_by_key(|c| (c.time, c.order))
        .copied()
}

/// R1 by brute force: what a table trimmed at `h` holds of `records`, per
/// key, sorted by (time, ≺).
fn brute_retained(records: &[Accepted], h: EventTime) -> BTreeMap<u8, Vec<Accepted>> {
    let mut by_key: BTreeMap<u8, Vec<Accepted>> = BTreeMap::new();
    for c in records {
        by_key.entry(c.key).or_default().push(*c);
    }
    by_key
        .into_iter()
        .filter_map(|(key, mut versions)| {
            versions.sort_by_key(|c| (c.time, c.order));
            let latest_before = versions.iter().rposition(|c| c.time <= h);
            let mut kept: Vec<Accepted> = match latest_before {
                Some(i) => versions[i..].to_vec(),
                None => versions,
            };
            if kept
                .first()
                .is_some_and(|c| c.time <= h && c.fields.is_none())
            {
                kept.remove(0);
            }
            (!kept.is_empty()).then_some((key, kept))
        })
        .collect()
}

fn as_accepted(key: u8, v: &Version<u32>) -> Accepted {
    Accepted {
        key,
        time: v.time,
        order: v.order,
        fields: v.fields,
    }
}

/// Everything a table holds, per key.
fn contents(table: &VersionedTable<u8, u32>) -> BTreeMap<u8, Vec<Accepted>> {
    table
        .iter()
        .map(|(&k, vs)| (k, vs.iter().map(|v| as_accepted(k, v)).collect()))
        .collect()
}

/// Checks a lookup and the version answering it against brute force.
fn check_lookup(
    table: &VersionedTable<u8, u32>,
    inserted: &[Accepted],
    key: u8,
    t: EventTime,
) -> Result<(), TestCaseError> {
    let want = brute_version(inserted, key, t);
    prop_assert_eq!(
        table.lookup(&key, t).copied(),
        want.and_then(|c| c.fields),
        "key {} at {}",
        key,
        t
    );
    let got = table.version_at(&key, t).map(|v| as_accepted(key, v));
    match want {
        Some(c) if c.fields.is_some() => prop_assert_eq!(got, Some(c)),
        // A tombstone may have been trimmed away: it answers as no version.
        _ => prop_assert!(got.is_none_or(|v| v.fields.is_none())),
    }
    Ok(())
}

/// One step of the driver; the numbers are scaled to what is allowed.
#[derive(Clone, Debug)]
enum Action {
    Insert,
    Lookup { key: u8, at: u16 },
    Trim { frac: u16 },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => Just(Action::Insert),
        4 => (0u8..6, any::<u16>()).prop_map(|(key, at)| Action::Lookup { key, at }),
        1 => any::<u16>().prop_map(|frac| Action::Trim { frac }),
    ]
}

/// A job of the join model: tables (some static), a stream whose first
/// field is a join key (text, integer or null), one or two enrichment
/// steps, the second possibly on an attached field of the first.
fn join_job(lateness: bool) -> impl Strategy<Value = JoinJob> {
    const KEYS: [&str; 4] = ["k0", "k1", "0", "1"];
    // With lateness: short table delays and long lateness, so that many
    // accepted records are late enough to correct a row.
    let table = (
        prop::bool::weighted(0.3),
        if lateness { 0i64..10 } else { 0i64..30 },
        if lateness {
            prop_oneof![1 => Just(0i64), 4 => 0i64..300].boxed()
        } else {
            Just(0i64).boxed()
        },
        1usize..3,
        1usize..3,
    )
        .prop_flat_map(move |(is_static, delay, lateness, width, parts)| {
            let record = (
                0..KEYS.len(),
                prop::bool::weighted(0.2),
                prop::collection::vec(0i64..3, width),
            );
            // A table often ahead of the stream, so that its stragglers
            // arrive after the stream records they would have joined.
            let start = if lateness > 0 { -30..150 } else { -30..30 };
            let partition = times(start, 0.4, 0..12).prop_flat_map(move |ts| {
                let n = ts.len();
                (Just(ts), prop::collection::vec(record.clone(), n)).prop_map(|(ts, recs)| {
                    ts.into_iter()
                        .zip(recs)
                        .map(|(time, (k, tomb, f))| TableRecord {
                            key: KEYS[k].into(),
                            time,
                            fields: (!tomb).then(|| f.into_iter().map(Field::Int).collect()),
                        })
                        .collect::<Vec<_>>()
                })
            });
            prop::collection::vec(partition, parts).prop_map(move |partitions| ModelTable {
                partitions,
                delay,
                lateness,
                is_static,
                width,
            })
        });
    let key_field = prop_oneof![
        3 => (0usize..2).prop_map(|k| Field::from(KEYS[k])),
        2 => (0i64..2).prop_map(Field::Int),
        1 => Just(Field::Null),
    ];
    let stream_partition = times(-30..30, 0.15, 0..12).prop_flat_map(move |ts| {
        let n = ts.len();
        (
            Just(ts),
            prop::collection::vec((key_field.clone(), 0i64..100), n),
        )
            .prop_map(|(ts, fs)| {
                ts.into_iter()
                    .zip(fs)
                    .map(|(time, (k, v))| StreamRecord {
                        time,
                        fields: vec![k, Field::Int(v)],
                    })
                    .collect::<Vec<_>>()
            })
    });
    let mode = prop_oneof![Just(Mode::Inner), Just(Mode::Left)];
    let defaults = prop::collection::vec(
        prop_oneof![Just(Field::Null), (0i64..4).prop_map(Field::Int)],
        0..3,
    );
    (
        prop::collection::vec(table, 1..3),
        prop::collection::vec(stream_partition, 1..3),
        0i64..30,
        if lateness {
            (0i64..1_000).boxed()
        } else {
            prop_oneof![Just(0i64), 0i64..200].boxed()
        },
        (mode.clone(), defaults.clone()),
        prop::option::weighted(0.5, (any::<bool>(), any::<bool>(), mode, defaults)),
    )
        .prop_map(|(tables, stream, delay, history, (mode0, def0), second)| {
            let mut enrich = vec![Enrich {
                table: 0,
                on: 0,
                mode: mode0,
                defaults: def0,
            }];
            if let Some((other_table, on_attached, mode, defaults)) = second {
                enrich.push(Enrich {
                    table: usize::from(other_table) % tables.len(),
                    on: if on_attached { 2 } else { 0 },
                    mode,
                    defaults,
                });
            }
            JoinJob {
                stream,
                delay,
                history,
                tables,
                enrich,
            }
        })
}

/// Per stream record, (partition, offset, s(r) + Δ).
fn release_times(job: &JoinJob) -> Vec<(u32, u64, EventTime)> {
    let delta = 1 + job
        .tables
        .iter()
        .filter(|t| !t.is_static)
        .map(|t| t.delay)
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    for (p, part) in job.stream.iter().enumerate() {
        let mut s = StreamTime::new();
        for (o, r) in part.iter().enumerate() {
            out.push((p as u32, o as u64, s.observe(r.time) + delta));
        }
    }
    out
}

/// `job` with only the table records T1 accepts and delays so large that
/// every stream record is looked up after all of them: the stream times
/// and relative order of the kept records do not change (a refused record
/// is never its partition's newest), so each record's lookup sees the
/// final table.
fn with_final_tables(job: &JoinJob) -> JoinJob {
    let mut out = job.clone();
    for table in &mut out.tables {
        if table.is_static {
            continue;
        }
        for part in &mut table.partitions {
            let mut s = StreamTime::new();
            part.retain(|c| {
                let st = s.observe(c.time);
                accepts(watermark(st, table.delay), c.time, table.lateness)
            });
        }
        table.delay = 1_000_000_000;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    /// A table driven as an engine drives it equals brute force at every
    /// lookup, and R1 exactly after every trim.
    #[test]
    fn table_equals_brute_force(
        log in table_log(),
        actions in prop::collection::vec(action(), 0..200),
    ) {
        let records = accepted(&log);
        let all_times = log.partitions.iter().flatten().map(|r| r.1);
        let lo = all_times.clone().min().unwrap_or(0) - 20;
        let hi = all_times.max().unwrap_or(0) + 20;
        let mut table: VersionedTable<u8, u32> = VersionedTable::new();
        let mut inserted: Vec<Accepted> = Vec::new();
        let mut horizon = EventTime::MIN;
        let mut peak = 0u64;
        // Every action, then every record left, then lookups everywhere.
        let tail = std::iter::repeat_n(Action::Insert, records.len());
        for action in actions.into_iter().chain(tail) {
            match action {
                Action::Insert => {
                    let Some(&c) = records.get(inserted.len()) else { continue };
                    table.insert(c.key, c.time, c.order, c.fields);
                    inserted.push(c);
                    peak = peak.max(table.versions(&c.key).len() as u64);
                    let size = table.size();
                    prop_assert_eq!(size.peak_versions, peak);
                }
                Action::Lookup { key, at } => {
                    let t = horizon.max(lo + i64::from(at) % (hi - lo + 1));
                    check_lookup(&table, &inserted, key, t)?;
                }
                Action::Trim { frac } => {
                    // No record still to insert may have a time ≤ h: an
                    // accepted c has t(c) > s(c) − D_T − 1 − L_T.
                    let bound = match records.get(inserted.len()) {
                        Some(next) => next.order.0 - log.delay - 1 - log.lateness,
                        None => hi,
                    };
                    prop_assert!(bound >= horizon);
                    let from = horizon.max(lo);
                    let h = if bound < from {
                        horizon
                    } else {
                        from + (bound - from) * i64::from(frac) / i64::from(u16::MAX)
                    };
                    let before = table.size().versions;
                    let dropped = table.trim(h);
                    horizon = horizon.max(h);
                    let want = brute_retained(&inserted, horizon);
                    prop_assert_eq!(contents(&table), want.clone(), "trim at {}", h);
                    let size = table.size();
                    prop_assert_eq!(size.versions + dropped as u64, before);
                    prop_assert_eq!(size.versions, want.values().map(|v| v.len() as u64).sum::<u64>());
                    prop_assert_eq!(size.keys, want.len() as u64);
                }
            }
        }
        for key in 0..6 {
            for t in horizon.max(lo)..=hi {
                check_lookup(&table, &inserted, key, t)?;
            }
        }
    }

    /// The same records inserted in any order give the same table.
    #[test]
    fn insert_order_does_not_matter(
        (records, shuffled) in table_log().prop_flat_map(|log| {
            let records = accepted(&log);
            (Just(records.clone()), Just(records).prop_shuffle())
        }),
    ) {
        let mut a: VersionedTable<u8, u32> = VersionedTable::new();
        let mut b: VersionedTable<u8, u32> = VersionedTable::new();
        for c in &records {
            a.insert(c.key, c.time, c.order, c.fields);
        }
        for c in &shuffled {
            b.insert(c.key, c.time, c.order, c.fields);
        }
        prop_assert_eq!(contents(&a), contents(&b));
        prop_assert_eq!(a.size().versions, b.size().versions);
        let times = records.iter().map(|c| c.time);
        let lo = times.clone().min().unwrap_or(0) - 2;
        let hi = times.max().unwrap_or(0) + 2;
        for key in 0..6 {
            for t in lo..=hi {
                prop_assert_eq!(a.lookup(&key, t), b.lookup(&key, t));
                check_lookup(&b, &records, key, t)?;
            }
        }
    }

    /// T1 is its formula, exactly, for every i64 input.
    #[test]
    fn accepts_is_the_literal_formula(
        w in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -5i64..5],
        t in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -5i64..5],
        l in prop_oneof![any::<i64>(), Just(0i64), Just(i64::MAX), 0i64..5],
    ) {
        prop_assert_eq!(accepts(w, t, l), (w as i128) < (t as i128) + 1 + (l as i128));
    }

    /// With L_T = 0 every lookup is final: no corrections, and the rows
    /// are S′ at e(r) in (e, partition, offset) order.
    #[test]
    fn join_without_lateness_is_final(job in join_job(false)) {
        let out = join(&job);
        let s_prime = enriched(&job);
        let mut want = Vec::new();
        let mut rejected = Vec::new();
        for (p, o, e) in release_times(&job) {
            match &s_prime[p as usize][o as usize] {
                Some(fields) => want.push(JoinRow {
                    time: e,
                    phase: 0,
                    partition: p,
                    offset: o,
                    kind: RowKind::Final,
                    fields: fields.clone(),
                }),
                None => rejected.push((p, o)),
            }
        }
        want.sort_by_key(|r| (r.time, r.partition, r.offset));
        prop_assert_eq!(&out.rows, &want);
        let got: Vec<_> = out
            .rejected
            .iter()
            .filter(|r| !matches!(r.reason, Reject::TableLate { .. }))
            .map(|r| (r.partition, r.offset))
            .collect();
        prop_assert_eq!(got, rejected);
    }

    /// With lateness, each record's rows show one row at a time, retract
    /// exactly the row shown, and end at the record's enrichment with every
    /// accepted table record.
    #[test]
    fn corrections_end_at_every_accepted_record(job in join_job(true)) {
        let out = join(&job);
        let keys: Vec<_> = out.rows.iter().map(|r| (r.time, r.phase, r.partition, r.offset)).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] <= w[1]), "rows out of order");
        let too_old: Vec<_> = out
            .rejected
            .iter()
            .filter(|r| matches!(r.reason, Reject::TooOld { .. }))
            .map(|r| (r.partition, r.offset))
            .collect();
        let final_fields = enriched(&with_final_tables(&job));
        for (p, o, e) in release_times(&job) {
            let mut shown: Option<Vec<Field>> = None;
            for row in out.rows.iter().filter(|r| (r.partition, r.offset) == (p, o)) {
                if row.phase == 0 {
                    prop_assert_eq!((row.time, row.kind), (e, RowKind::Final));
                    prop_assert!(shown.is_none(), "a first row after another row");
                } else {
                    prop_assert!(row.time >= e, "a correction before e(r)");
                }
                match row.kind {
                    RowKind::Retract => {
                        prop_assert_eq!(row.phase, 1);
                        let retracted = shown.take();
                        prop_assert_eq!(retracted.as_ref(), Some(&row.fields));
                    }
                    RowKind::Final => {
                        prop_assert!(shown.is_none(), "a second row without a retract");
                        shown = Some(row.fields.clone());
                    }
                }
            }
            if too_old.contains(&(p, o)) {
                prop_assert_eq!(shown, None);
            } else {
                prop_assert_eq!(&shown, &final_fields[p as usize][o as usize], "record {}/{}", p, o);
            }
        }
    }
}
