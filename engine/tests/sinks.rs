//! The output seam: typed rows equal the JSON rows, the differential
//! changelog consolidates to the final table, and jobs that stop early —
//! a bad record with `fail`, a stop request — write a prefix of the full
//! output and fire no open window.
//!
//! Run with `cargo test -p tidemark-engine --test sinks`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tidemark_engine::timely;
use tidemark_engine::timely::dataflow::operators::vec::Input;
use tidemark_engine::timely::dataflow::InputHandleVec;
use tidemark_engine::{
    format_row, run, windowed, BadRecords, Collect, CsvRows, EngineConfig, Event, Output, Outputs,
    Parallelism, Row, Sinks, Stats, Target,
};
use tidemark_sources::{
    DecodeConfig, Format, GeneratorConfig, GeneratorSource, Key, MemorySource, Record, Source,
    Value,
};
use tidemark_windows::{
    AggKind, ChangeKind, EmitMode, MetricValues, Number, Policy, Window, WindowSpec,
};

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

/// A multi-partition log with disorder and stragglers.
fn random_log(seed: u64) -> Vec<Vec<Record>> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let partitions = 1 + rng.below(4);
    (0..partitions)
        .map(|_| {
            let n = 50 + rng.below(200);
            (0..n)
                .map(|o| {
                    let late = if rng.below(8) == 0 { rng.below(600) } else { 0 };
                    Record {
                        partition: 0,
                        offset: 0,
                        key: format!("k{}", rng.below(6)).into(),
                        event_time: 10_000 + o as i64 * 7 - rng.below(40) as i64 - late as i64,
                        value: Value::Int(rng.below(100) as i64 - 20),
                        fields: Vec::new(),
                    }
                })
                .collect()
        })
        .collect()
}

fn aggs() -> Vec<AggKind> {
    vec![AggKind::Count, AggKind::Sum, AggKind::Max]
}

fn config_for(seed: u64) -> EngineConfig {
    let mut rng = Rng(seed | 1);
    let window = match rng.below(3) {
        0 => WindowSpec::tumbling(100 + rng.below(300) as i64),
        1 => WindowSpec::sliding(300, 100),
        _ => WindowSpec::session(30 + rng.below(60) as i64),
    };
    let policy = Policy::new(
        rng.below(50) as i64,
        rng.below(500) as i64,
        EmitMode::Updates,
    );
    EngineConfig::new(window, policy, aggs())
}

fn typed_rows(
    log: &[Vec<Record>],
    config: &EngineConfig,
    workers: usize,
) -> Vec<Row<MetricValues>> {
    let (sink, rows) = Collect::new();
    let sinks = Sinks {
        results: Output::Sink(Box::new(sink)),
        ..Sinks::default()
    };
    run(
        Arc::new(MemorySource::new(log.to_vec())),
        config.clone(),
        Parallelism::Workers(workers),
        sinks,
        Arc::new(Stats::default()),
    )
    .unwrap();
    let rows = rows.lock().unwrap().clone();
    rows
}

fn json_rows(log: &[Vec<Record>], config: &EngineConfig, workers: usize) -> String {
    let (results, buf) = Target::buffer();
    run(
        Arc::new(MemorySource::new(log.to_vec())),
        config.clone(),
        Parallelism::Workers(workers),
        Outputs {
            results,
            ..Outputs::default()
        },
        Arc::new(Stats::default()),
    )
    .unwrap();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    text
}

#[test]
fn typed_rows_are_the_json_rows_in_the_same_order() {
    for seed in 1..=12 {
        let log = random_log(seed);
        let config = config_for(seed);
        let json = json_rows(&log, &config, 1);
        for workers in [1, 3] {
            let mut text = String::new();
            for row in typed_rows(&log, &config, workers) {
                format_row(&row, &aggs(), &mut text);
                text.push('\n');
            }
            assert_eq!(text, json, "seed {seed}, {workers} workers");
        }
        assert!(
            json.contains("\"kind\":\"update\""),
            "seed {seed}: no updates"
        );
    }
}

#[test]
fn csv_rows_quote_keys_and_name_the_fields() {
    let rec = |key: &str, t: i64, v: i64| Record {
        partition: 0,
        offset: 0,
        key: key.into(),
        event_time: t,
        value: Value::Int(v),
        fields: Vec::new(),
    };
    let log = MemorySource::new(vec![vec![
        rec("plain", 100, 3),
        rec("with,comma", 200, 4),
        rec("q\"uote", 1_100, 5),
    ]]);
    let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let config = EngineConfig::new(WindowSpec::tumbling(1_000), Policy::default(), aggs());
    let csv = CsvRows::new(
        Shared(Arc::clone(&buf)),
        config.aggregator.clone(),
        "(test)",
    );
    run(
        Arc::new(log),
        config,
        Parallelism::Workers(2),
        Sinks {
            results: Output::Sink(Box::new(csv)),
            ..Sinks::default()
        },
        Arc::new(Stats::default()),
    )
    .unwrap();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    assert_eq!(
        text,
        "key,start,end,count,sum,max,kind\n\
         plain,0,1000,1,3,3,final\n\
         \"with,comma\",0,1000,1,4,4,final\n\
         \"q\"\"uote\",1000,2000,1,5,5,final\n"
    );
}

/// The table the rows leave behind: the value shown per (key, window).
fn final_table(rows: &[Row<MetricValues>]) -> BTreeMap<(Key, Window), MetricValues> {
    let mut table = BTreeMap::new();
    for row in rows {
        match row.kind {
            ChangeKind::Retract => {
                let old = table.remove(&(row.key.clone(), row.window));
                assert_eq!(old, Some(row.value), "a retraction retracts what was shown");
            }
            _ => {
                let old = table.insert((row.key.clone(), row.window), row.value);
                assert!(old.is_none(), "a new value follows a retraction");
            }
        }
    }
    table
}

/// One consolidated update: ((key, window), value) and its diff.
type Update = (((Key, Window), MetricValues), isize);

/// The changelog of `windowed` over `log` on `workers` workers, each
/// feeding its own partitions, consolidated over all times.
fn consolidated_changelog(
    log: &[Vec<Record>],
    config: &EngineConfig,
    workers: usize,
) -> BTreeMap<(Key, Window), Vec<(MetricValues, isize)>> {
    let updates: Arc<Mutex<Vec<Update>>> = Arc::default();
    let out = Arc::clone(&updates);
    let config = config.clone();
    let log = log.to_vec();
    timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let mut input: InputHandleVec<i64, Event> = InputHandleVec::new();
        let out = Arc::clone(&out);
        worker.dataflow::<i64, _, _>(|scope| {
            let events = scope.input_from(&mut input);
            windowed(events, &config, index, peers)
                .unwrap()
                .collection()
                .consolidate()
                .inspect(move |(data, _time, diff)| {
                    out.lock().unwrap().push((data.clone(), *diff))
                });
        });
        // Every event at the smallest time: no later than its stream time.
        for (p, records) in log.iter().enumerate().filter(|(p, _)| p % peers == index) {
            let mut stream_time = i64::MIN;
            for (o, r) in records.iter().enumerate() {
                stream_time = stream_time.max(r.event_time);
                let value = match r.value {
                    Value::Int(i) => Number::Int(i),
                    Value::Float(f) => Number::Float(f),
                };
                input.send(Event {
                    stream_time,
                    partition: p as u32,
                    offset: o as u64,
                    key: r.key.clone(),
                    time: r.event_time,
                    value,
                    fields: Vec::new(),
                });
            }
        }
    })
    .unwrap();
    let mut sums: BTreeMap<((Key, Window), MetricValues), isize> = BTreeMap::new();
    for (data, diff) in updates.lock().unwrap().iter() {
        *sums.entry(data.clone()).or_default() += diff;
    }
    let mut by_window: BTreeMap<(Key, Window), Vec<(MetricValues, isize)>> = BTreeMap::new();
    for ((kw, v), d) in sums.into_iter().filter(|(_, d)| *d != 0) {
        by_window.entry(kw).or_default().push((v, d));
    }
    by_window
}

#[test]
fn the_changelog_consolidates_to_the_final_table() {
    for seed in 1..=8 {
        let log = random_log(seed);
        let config = config_for(seed);
        let rows = typed_rows(&log, &config, 1);
        let table = final_table(&rows);
        let expected: BTreeMap<(Key, Window), Vec<(MetricValues, isize)>> = table
            .into_iter()
            .map(|(kw, v)| (kw, vec![(v, 1)]))
            .collect();
        for workers in [1, 3] {
            assert_eq!(
                consolidated_changelog(&log, &config, workers),
                expected,
                "seed {seed}, {workers} workers"
            );
        }
    }
}

/// Lines of JSON records over two partitions, with one malformed line in
/// partition 0 at offset `bad_at`.
fn lines_with_a_bad_record(n: usize, bad_at: usize) -> Vec<Vec<String>> {
    (0..2)
        .map(|p| {
            (0..n)
                .map(|o| {
                    if p == 0 && o == bad_at {
                        "{\"key\": \"k1\", \"ts\": oops}".to_string()
                    } else {
                        format!(
                            "{{\"key\":\"k{}\",\"ts\":{},\"value\":{}}}",
                            o % 5,
                            1_000 + o * 3 + p,
                            o % 7
                        )
                    }
                })
                .collect()
        })
        .collect()
}

fn run_lines(
    lines: &[Vec<String>],
    bad: BadRecords,
    workers: usize,
    batch_size: usize,
) -> (
    Result<tidemark_engine::Summary, tidemark_engine::EngineError>,
    String,
    i64,
) {
    let source = MemorySource::from_lines(lines.to_vec(), DecodeConfig::new(Format::Jsonl));
    let mut config = EngineConfig::new(
        WindowSpec::tumbling(100),
        Policy::new(10, 0, EmitMode::Final),
        vec![AggKind::Count],
    );
    config.bad_records = bad;
    config.batch_size = batch_size;
    let (results, buf) = Target::buffer();
    let stats = Arc::new(Stats::default());
    let result = run(
        Arc::new(source),
        config,
        Parallelism::Workers(workers),
        Outputs {
            results,
            ..Outputs::default()
        },
        Arc::clone(&stats),
    );
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    (
        result,
        text,
        stats.frontier.load(std::sync::atomic::Ordering::Relaxed),
    )
}

#[test]
fn a_job_stopped_by_a_bad_record_writes_only_completed_windows() {
    let lines = lines_with_a_bad_record(20_000, 15_000);
    let (full, all_rows, _) = run_lines(&lines, BadRecords::Skip, 1, 1024);
    assert_eq!(full.unwrap().dead_letters, 1);
    for (workers, batch) in [(1, 1024), (2, 100), (3, 7)] {
        let (failed, rows, frontier) = run_lines(&lines, BadRecords::Fail, workers, batch);
        let err = failed.expect_err("the bad record stops the job");
        assert!(err.to_string().contains("offset 15000"), "{err}");
        // A prefix of the full output, by whole rows, and far from all of it:
        // the windows still open when the job stopped were not fired.
        assert!(
            all_rows.starts_with(&rows),
            "{workers} workers: not a prefix"
        );
        assert!(rows.is_empty() || rows.ends_with('\n'));
        assert!(
            rows.len() < all_rows.len() * 9 / 10,
            "{workers} workers: {} of {} bytes",
            rows.len(),
            all_rows.len()
        );
        // Every row written belongs to a step before the frontier reported.
        assert!(frontier < i64::MAX);
        for line in rows.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let end = row["end"].as_i64().unwrap();
            assert!(end + 10 <= frontier, "{line} fired at or after {frontier}");
        }
    }
}

#[test]
fn a_stop_request_writes_a_prefix_and_returns_the_summary() {
    let config = GeneratorConfig {
        events: 2_000_000,
        keys: 100,
        partitions: 3,
        disorder: 20,
        ..GeneratorConfig::default()
    };
    let job = |stop_after: Option<u64>| {
        let source: Arc<dyn Source> = Arc::new(GeneratorSource::new(config.clone()).unwrap());
        let engine = EngineConfig::new(WindowSpec::tumbling(50), Policy::default(), aggs());
        let (results, buf) = Target::buffer();
        let stats = Arc::new(Stats::default());
        let watcher = stop_after.map(|n| {
            let stats = Arc::clone(&stats);
            std::thread::spawn(move || {
                while stats.records.load(std::sync::atomic::Ordering::Relaxed) < n {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                stats.request_stop();
            })
        });
        let summary = run(
            source,
            engine,
            Parallelism::Workers(2),
            Outputs {
                results,
                ..Outputs::default()
            },
            Arc::clone(&stats),
        )
        .unwrap();
        if let Some(w) = watcher {
            w.join().unwrap();
        }
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        (summary, text)
    };
    let (full_summary, full) = job(None);
    assert_eq!(full_summary.final_watermark, None);
    let (stopped, prefix) = job(Some(200_000));
    assert!(stopped.records < 2_000_000, "{stopped:?}");
    assert!(stopped.final_watermark.is_some(), "{stopped:?}");
    assert!(!prefix.is_empty());
    assert!(full.starts_with(&prefix));
    assert!(prefix.len() < full.len());
}

#[test]
fn records_in_no_window_go_to_the_late_output() {
    // Sliding windows of 1 s every 2 s: [0, 1000), [2000, 3000), ...
    let log: Vec<Record> = (0..40)
        .map(|i| Record {
            partition: 0,
            offset: 0,
            key: "k".into(),
            event_time: i * 100,
            value: Value::Int(1),
            fields: Vec::new(),
        })
        .collect();
    let config = EngineConfig::new(WindowSpec::sliding(1_000, 2_000), Policy::default(), aggs());
    let (late, late_records) = Collect::new();
    let (rows, collected) = Collect::new();
    let summary = run(
        Arc::new(MemorySource::new(vec![log])),
        config,
        Parallelism::Workers(2),
        Sinks {
            results: Output::Sink(Box::new(rows)),
            late: Output::Sink(Box::new(late)),
            ..Sinks::default()
        },
        Arc::new(Stats::default()),
    )
    .unwrap();
    let late = late_records.lock().unwrap();
    assert_eq!(summary.unassigned, 20);
    assert_eq!(summary.late_dropped, 0);
    assert_eq!(late.len(), 20);
    assert!(late
        .iter()
        .all(|l| l.reason == tidemark_engine::LateReason::NoWindow
            && l.missed.is_empty()
            && (1_000..2_000).contains(&(l.event.time % 2_000))));
    let counted: u64 = collected
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.value.count.unwrap_or(0))
        .sum();
    assert_eq!(counted + late.len() as u64, 40, "every record is somewhere");
}

#[test]
fn a_far_future_timestamp_is_a_dead_letter_with_the_guard() {
    // One record stamped in 2100 in the middle of a partition.
    let mut log: Vec<Record> = (0..1_000)
        .map(|i| Record {
            partition: 0,
            offset: 0,
            key: format!("k{}", i % 3).into(),
            event_time: 1_000 + i * 10 - (i % 7) * 25,
            value: Value::Int(1),
            fields: Vec::new(),
        })
        .collect();
    log[400].event_time = 4_102_444_800_000;
    let run_with = |skew: Option<i64>| {
        let mut config = EngineConfig::new(
            WindowSpec::tumbling(100),
            Policy::new(50, 0, EmitMode::Final),
            vec![AggKind::Count],
        );
        config.max_future_skew = skew;
        let (dead, letters) = Collect::new();
        let summary = run(
            Arc::new(MemorySource::new(vec![log.clone()])),
            config,
            Parallelism::Workers(1),
            Sinks {
                dead_letters: Output::Sink(Box::new(dead)),
                ..Sinks::default()
            },
            Arc::new(Stats::default()),
        )
        .unwrap();
        let letters = letters.lock().unwrap().clone();
        (summary, letters)
    };
    let (unguarded, _) = run_with(None);
    // Without the guard, everything after the poison record is late.
    assert!(unguarded.late_dropped > 500, "{unguarded:?}");
    let (guarded, letters) = run_with(Some(60_000));
    assert_eq!(guarded.dead_letters, 1);
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].partition, letters[0].offset), (0, 400));
    assert!(
        letters[0].reason.starts_with("future timestamp"),
        "{}",
        letters[0].reason
    );
    assert!(
        guarded.late_dropped * 4 < unguarded.late_dropped,
        "{guarded:?}"
    );
    assert_eq!(guarded.records, 999);
}

#[test]
fn rows_handed_on_in_chunks_keep_the_canonical_order() {
    // Sliding 10 s every 10 ms in emit mode `updates`: every record corrects
    // a thousand windows, so activations hand their rows on in chunks.
    let mut rng = Rng(77);
    let log: Vec<Vec<Record>> = (0..2)
        .map(|_| {
            (0..150)
                .map(|o| Record {
                    partition: 0,
                    offset: 0,
                    key: format!("k{}", rng.below(3)).into(),
                    event_time: 50_000 + o * 20 - rng.below(30) as i64,
                    value: Value::Int(rng.below(9) as i64),
                    fields: Vec::new(),
                })
                .collect()
        })
        .collect();
    let window = WindowSpec::sliding(10_000, 10);
    let policy = Policy::new(5, 100, EmitMode::Updates);
    let aggs = aggs();
    let config = EngineConfig::new(window, policy, aggs.clone());
    let ref_log: Vec<tidemark_windows::LogRecord<Key, Number>> = log
        .iter()
        .enumerate()
        .flat_map(|(p, records)| {
            records
                .iter()
                .enumerate()
                .map(move |(o, r)| tidemark_windows::LogRecord {
                    partition: p as u32,
                    offset: o as u64,
                    key: r.key.clone(),
                    time: r.event_time,
                    input: match r.value {
                        Value::Int(i) => Number::Int(i),
                        Value::Float(f) => Number::Float(f),
                    },
                })
        })
        .collect();
    let eval = tidemark_windows::reference::evaluate(
        window,
        policy,
        &tidemark_windows::Metrics::new(&aggs),
        &ref_log,
    );
    let mut expected = String::new();
    for c in &eval.changes {
        format_row(c, &aggs, &mut expected);
        expected.push('\n');
    }
    assert!(eval.changes.len() > 200_000, "{} rows", eval.changes.len());
    for workers in [1, 3] {
        assert!(
            json_rows(&log, &config, workers) == expected,
            "{workers} workers: rows differ from the reference model"
        );
    }
}

#[test]
fn a_stop_before_any_good_record_still_writes_the_dead_letters_read() {
    // Partition 0's lines are all bad, so it holds the frontier at its
    // start; a stop then completes nothing, but the dead letters read must
    // not vanish.
    let bad: Vec<String> = (0..100_000).map(|i| format!("not json {i}")).collect();
    let good: Vec<String> = (0..1_000)
        .map(|i| format!("{{\"key\":\"k\",\"ts\":{},\"value\":1}}", 1_000 + i))
        .collect();
    let source = MemorySource::from_lines(vec![bad, good], DecodeConfig::new(Format::Jsonl));
    let (dead, letters) = Collect::new();
    let stats = Arc::new(Stats::default());
    let watcher = {
        let stats = Arc::clone(&stats);
        std::thread::spawn(move || {
            while stats
                .dead_letters
                .load(std::sync::atomic::Ordering::Relaxed)
                < 1_000
            {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            stats.request_stop();
        })
    };
    let mut config = EngineConfig::new(WindowSpec::tumbling(100), Policy::default(), aggs());
    config.batch_size = 50;
    let summary = run(
        Arc::new(source),
        config,
        Parallelism::Workers(1),
        Sinks {
            dead_letters: Output::Sink(Box::new(dead)),
            ..Sinks::default()
        },
        Arc::clone(&stats),
    )
    .unwrap();
    watcher.join().unwrap();
    let letters = letters.lock().unwrap();
    assert!(
        summary.dead_letters >= 1_000 && summary.dead_letters < 100_000,
        "{summary:?}"
    );
    assert_eq!(letters.len() as u64, summary.dead_letters, "{summary:?}");
    let offsets: Vec<u64> = letters.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (0..offsets.len() as u64).collect::<Vec<_>>());
}
