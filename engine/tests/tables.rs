//! Tables and the stream–table join at event time, checked against the
//! reference model of the join (`tidemark_windows::join_reference`).
//!
//! Theorem E: the result rows and late records of enrich → window over a
//! stream S equal those of the plain window job over S′, S with each
//! record's fields as the join gives them; a record the join refuses
//! stays in S′ only as far as it advances its partition's stream time. In
//! the plain job such a record carries a key of its own whose rows and
//! late records are left out of the comparison (keys never meet in a
//! window). Checked on random multi-partition logs with tombstones,
//! out-of-order and late table updates, every window kind and both emit
//! modes, 1–4 workers and random batch sizes; the records the join refuses
//! are the model's, with their reasons.
//!
//! Run with `cargo test -p tidemark-engine --test tables`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark_engine::table::{EnrichDef, JoinMode, TableDef, Tables};
use tidemark_engine::{run, EngineConfig, Outputs, Parallelism, Stats, Target};
use tidemark_sources::{MemorySource, Record, Value};
use tidemark_windows::join_reference::{self as model, JoinJob, ModelTable, Reject};
use tidemark_windows::{Aggs, EmitMode, Field, Policy, WindowSpec};

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

const USERS: u64 = 6;
const COUNTRIES: [&str; 3] = ["fr", "de", "jp"];
/// The key a refused record carries in the plain job.
const REFUSED: &str = "\u{1}refused";

/// One random case: the stream (fields `user`), a versioned table `users`
/// (fields `country`) and a static table `tiers` (key: a country, fields
/// `tier`).
struct Case {
    stream: Vec<Vec<(i64, String, i64)>>,
    users: Vec<Vec<(String, i64, Option<String>)>>,
    tiers: Vec<(String, Option<String>)>,
    delay: i64,
    table_delay: i64,
    lateness: i64,
    window: WindowSpec,
    emit: EmitMode,
    inner: bool,
    by_country: bool,
    workers: usize,
    batch: usize,
}

fn case(seed: u64) -> Case {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let stream = (0..1 + rng.below(3))
        .map(|_| {
            (0..20 + rng.below(120))
                .map(|o| {
                    let late = if rng.below(7) == 0 { rng.below(400) } else { 0 };
                    let t = 1_000 + o as i64 * 9 - rng.below(30) as i64 - late as i64;
                    (t, format!("u{}", rng.below(USERS)), rng.below(50) as i64)
                })
                .collect()
        })
        .collect();
    let users = (0..1 + rng.below(2))
        .map(|_| {
            (0..5 + rng.below(40))
                .map(|o| {
                    let late = if rng.below(5) == 0 { rng.below(300) } else { 0 };
                    let t = 900 + o as i64 * 25 - rng.below(60) as i64 - late as i64;
                    let country =
                        (rng.below(6) != 0).then(|| COUNTRIES[rng.below(3) as usize].to_owned());
                    (format!("u{}", rng.below(USERS)), t, country)
                })
                .collect()
        })
        .collect();
    let tiers = (0..4)
        .map(|_| {
            (
                COUNTRIES[rng.below(3) as usize].to_owned(),
                (rng.below(5) != 0).then(|| format!("t{}", rng.below(3))),
            )
        })
        .collect();
    let window = match rng.below(3) {
        0 => WindowSpec::tumbling(50 + rng.below(200) as i64),
        1 => WindowSpec::sliding(200, 50 + rng.below(2) as i64 * 50),
        _ => WindowSpec::session(20 + rng.below(60) as i64),
    };
    Case {
        stream,
        users,
        tiers,
        delay: rng.below(40) as i64,
        table_delay: rng.below(60) as i64,
        lateness: rng.below(3) as i64 * 100,
        window,
        emit: if rng.below(2) == 0 {
            EmitMode::Final
        } else {
            EmitMode::Updates
        },
        inner: rng.below(2) == 0,
        by_country: rng.below(3) != 0,
        workers: 1 + rng.below(4) as usize,
        batch: 1 + rng.below(64) as usize,
    }
}

fn text(s: &str) -> Field {
    Field::Text(s.into())
}

fn span(w: WindowSpec) -> i64 {
    match w {
        WindowSpec::Tumbling { size, .. } | WindowSpec::Sliding { size, .. } => size,
        WindowSpec::Session { gap } => gap,
    }
}

/// The stream records with the fields the job reads (`user`, `country`,
/// `tier`), and the key.
fn stream_records(c: &Case) -> Vec<Vec<Record>> {
    c.stream
        .iter()
        .map(|p| {
            p.iter()
                .map(|(t, user, v)| Record {
                    partition: 0,
                    offset: 0,
                    key: user.as_str().into(),
                    event_time: *t,
                    value: Value::Int(*v),
                    fields: vec![text(user)],
                })
                .collect()
        })
        .collect()
}

fn aggs() -> Aggs {
    Aggs::parse(&["count", "sum", "count_distinct(tier)", "latest(country)"]).unwrap()
}

fn outputs() -> (Outputs, [Arc<std::sync::Mutex<Vec<u8>>>; 3]) {
    let (results, r) = Target::buffer();
    let (late, l) = Target::buffer();
    let (dead, d) = Target::buffer();
    (
        Outputs {
            results,
            late,
            dead_letters: dead,
        },
        [r, l, d],
    )
}

fn lines(buf: &Arc<std::sync::Mutex<Vec<u8>>>) -> Vec<String> {
    String::from_utf8(buf.lock().unwrap().clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The enrich → window job over the case: rows, late records.
fn enriched_job(c: &Case) -> (Vec<String>, Vec<String>) {
    let users = MemorySource::new(
        c.users
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(k, t, country)| Record {
                        partition: 0,
                        offset: 0,
                        key: k.as_str().into(),
                        event_time: *t,
                        value: Value::Int(1),
                        fields: vec![country.as_deref().map_or(Field::Null, text)],
                    })
                    .collect()
            })
            .collect(),
    );
    let tiers = MemorySource::new(vec![c
        .tiers
        .iter()
        .map(|(k, tier)| Record {
            partition: 0,
            offset: 0,
            key: k.as_str().into(),
            event_time: 0,
            value: Value::Int(1),
            fields: vec![tier.as_deref().map_or(Field::Null, text)],
        })
        .collect()]);
    let mut config =
        EngineConfig::with_aggregator(c.window, Policy::new(c.delay, c.lateness, c.emit), aggs());
    config.batch_size = c.batch;
    let mode = if c.inner {
        JoinMode::Inner
    } else {
        JoinMode::Left
    };
    config.tables = Tables {
        tables: vec![
            TableDef {
                name: "users".into(),
                source: Arc::new(users),
                fields: vec!["country".into()],
                delay: Some(c.table_delay),
                lateness: 0,
                history: None,
                is_static: false,
            },
            TableDef {
                name: "tiers".into(),
                source: Arc::new(tiers),
                fields: vec!["tier".into()],
                delay: None,
                lateness: 0,
                history: None,
                is_static: true,
            },
        ],
        enrich: vec![
            EnrichDef {
                table: "users".into(),
                on: "user".into(),
                mode,
                defaults: BTreeMap::new(),
            },
            EnrichDef {
                table: "tiers".into(),
                on: "country".into(),
                mode,
                defaults: BTreeMap::new(),
            },
        ],
        stream_fields: vec!["user".into()],
        key_fields: if c.by_country {
            vec!["country".into()]
        } else {
            Vec::new()
        },
    };
    let (outputs, [r, l, _]) = outputs();
    run(
        Arc::new(MemorySource::new(stream_records(c))),
        config,
        Parallelism::Workers(c.workers),
        outputs,
        Arc::new(Stats::default()),
    )
    .unwrap();
    (lines(&r), lines(&l))
}

/// The model of the join over the case.
fn model_job(c: &Case) -> JoinJob {
    let mode = if c.inner {
        model::Mode::Inner
    } else {
        model::Mode::Left
    };
    JoinJob {
        stream: c
            .stream
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(t, user, _)| model::StreamRecord {
                        time: *t,
                        fields: vec![text(user)],
                    })
                    .collect()
            })
            .collect(),
        delay: c.delay,
        history: c.lateness + span(c.window),
        tables: vec![
            ModelTable {
                partitions: c
                    .users
                    .iter()
                    .map(|p| {
                        p.iter()
                            .map(|(k, t, country)| model::TableRecord {
                                key: k.clone(),
                                time: *t,
                                fields: country.as_deref().map(|c| vec![text(c)]),
                            })
                            .collect()
                    })
                    .collect(),
                delay: c.table_delay,
                lateness: 0,
                is_static: false,
                width: 1,
            },
            ModelTable {
                partitions: vec![c
                    .tiers
                    .iter()
                    .map(|(k, tier)| model::TableRecord {
                        key: k.clone(),
                        time: 0,
                        fields: tier.as_deref().map(|t| vec![text(t)]),
                    })
                    .collect()],
                delay: c.delay,
                lateness: 0,
                is_static: true,
                width: 1,
            },
        ],
        enrich: vec![
            model::Enrich {
                table: 0,
                on: 0,
                mode,
                defaults: vec![Field::Null],
            },
            model::Enrich {
                table: 1,
                on: 1,
                mode,
                defaults: vec![Field::Null],
            },
        ],
    }
}

/// The plain window job over S′ (the model's enrichment): rows and late
/// records without those of refused records.
fn plain_job(c: &Case, s_prime: &[Vec<Option<Vec<Field>>>]) -> (Vec<String>, Vec<String>) {
    let records: Vec<Vec<Record>> = stream_records(c)
        .into_iter()
        .zip(s_prime)
        .map(|(p, fields)| {
            p.into_iter()
                .zip(fields)
                .map(|(mut r, f)| {
                    match f {
                        Some(f) => {
                            // Fields in the aggregation's order: country
                            // (latest), tier (count_distinct).
                            let country = f[1].clone();
                            if c.by_country {
                                // A null key is a dead letter of the join.
                                r.key = tidemark_windows::join_reference::key_text(&country)
                                    .unwrap_or_else(|| REFUSED.into())
                                    .into();
                            }
                            r.fields = vec![f[2].clone(), country];
                        }
                        None => {
                            r.key = REFUSED.into();
                            r.fields = vec![Field::Null, Field::Null];
                        }
                    }
                    r
                })
                .collect()
        })
        .collect();
    let mut config =
        EngineConfig::with_aggregator(c.window, Policy::new(c.delay, c.lateness, c.emit), aggs());
    config.batch_size = c.batch;
    let (outputs, [r, l, _]) = outputs();
    run(
        Arc::new(MemorySource::new(records)),
        config,
        Parallelism::Workers(1),
        outputs,
        Arc::new(Stats::default()),
    )
    .unwrap();
    let refused = format!("\"key\":{}", serde_json::to_string(REFUSED).unwrap());
    let keep = |v: Vec<String>| v.into_iter().filter(|l| !l.contains(&refused)).collect();
    (keep(lines(&r)), keep(lines(&l)))
}

/// (partition, offset, reason, table) of the late records the join wrote.
fn refusals(late: &[String]) -> Vec<(u64, u64, String, String)> {
    let mut out: Vec<_> = late
        .iter()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let table = v.get("table")?.as_str()?.to_owned();
            Some((
                v["partition"].as_u64().unwrap(),
                v["offset"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_owned(),
                table,
            ))
        })
        .collect();
    out.sort();
    out
}

fn model_refusals(job: &JoinJob) -> Vec<(u64, u64, String, String)> {
    let names = ["users", "tiers"];
    let mut out: Vec<_> = model::join(job)
        .rejected
        .iter()
        .map(|r| {
            let (reason, table) = match &r.reason {
                Reject::TooOld { table } => ("older than table history", *table),
                Reject::NoRow { table } => ("no table row", *table),
                Reject::TableLate { table } => ("table update too late", *table),
            };
            (
                u64::from(r.partition),
                r.offset,
                reason.to_owned(),
                names[table].to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn enrich_then_window_equals_the_window_job_over_the_enriched_stream() {
    for seed in 1..=60u64 {
        let c = case(seed);
        let job = model_job(&c);
        let (rows, late) = enriched_job(&c);
        let (want_rows, want_late) = plain_job(&c, &model::enriched(&job));
        assert!(!rows.is_empty() || want_rows.is_empty(), "seed {seed}");
        assert_eq!(rows, want_rows, "result rows, seed {seed}");
        let window_late: Vec<String> = late
            .iter()
            .filter(|l| !l.contains("\"table\":"))
            .cloned()
            .collect();
        assert_eq!(window_late, want_late, "late records, seed {seed}");
        assert_eq!(
            refusals(&late),
            model_refusals(&job),
            "refusals, seed {seed}"
        );
    }
}

#[test]
fn results_do_not_depend_on_workers_or_batches() {
    for seed in 100..=120u64 {
        let mut c = case(seed);
        c.workers = 1;
        c.batch = 1024;
        let one = enriched_job(&c);
        for (workers, batch) in [(2, 1), (3, 7), (4, 64)] {
            c.workers = workers;
            c.batch = batch;
            assert_eq!(
                enriched_job(&c),
                one,
                "seed {seed}, {workers} workers, batch {batch}"
            );
        }
    }
}

#[test]
fn a_bounded_stream_ends_the_job_although_its_followed_table_never_ends() {
    // The table is a channel kept open (followed, never ended); once the
    // stream has ended and the idle table was released, nothing is left to
    // wait for.
    let table = tidemark_sources::ChannelSource::new(1, 16).unwrap();
    let sender = table.sender(0).unwrap();
    sender.push("u1", 500, Value::Int(1)).unwrap();
    let mut config = EngineConfig::with_aggregator(
        WindowSpec::tumbling(100),
        Policy::new(0, 0, EmitMode::Final),
        Aggs::parse(&["count", "latest(country)"]).unwrap(),
    );
    config.idle_after = Some(std::time::Duration::from_millis(50));
    config.tables = Tables {
        tables: vec![TableDef {
            name: "users".into(),
            source: Arc::new(table),
            fields: vec!["country".into()],
            delay: None,
            lateness: 0,
            history: None,
            is_static: false,
        }],
        enrich: vec![EnrichDef {
            table: "users".into(),
            on: "user".into(),
            mode: JoinMode::Left,
            defaults: BTreeMap::new(),
        }],
        stream_fields: vec!["user".into()],
        key_fields: Vec::new(),
    };
    let stream: Vec<Vec<Record>> = vec![(0..50)
        .map(|i| Record {
            partition: 0,
            offset: 0,
            key: "u1".into(),
            event_time: i * 20,
            value: Value::Int(1),
            fields: vec![text("u1")],
        })
        .collect()];
    let (outputs, [rows, _, _]) = outputs();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let summary = run(
            Arc::new(MemorySource::new(stream)),
            config,
            Parallelism::Workers(2),
            outputs,
            Arc::new(Stats::default()),
        );
        let _ = done.send(summary.map(|s| s.records));
    });
    let records = finished
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the job ended")
        .unwrap();
    assert_eq!(records, 50);
    assert_eq!(lines(&rows).len(), 10, "every window fired");
    drop(sender);
}
