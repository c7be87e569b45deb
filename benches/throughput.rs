//! Throughput of whole jobs through the facade, on the built-in generator
//! (100 events per ms, 50 ms disorder, delay 50 ms, count + sum, one worker).
//!
//! Groups:
//! - `keys`: tumbling 1 s / sliding 10 s / 1 s / session 100 ms × 100,
//!   10 000 and 1 000 000 keys;
//! - `slide_sweep`: sliding windows of 1 s … 1000 s with a 1 s slide over
//!   10 000 s of event time (rows per event stay near one): with slices the
//!   cost per event stays roughly flat;
//! - `late_share`: tumbling with 0 %, 1 % and 5 % stragglers;
//! - `nexmark`: q5 (sliding 10 s / 2 s count per auction), q7 (tumbling 10 s
//!   max price) and q11 (session 10 s count per bidder) on 1 M Nexmark
//!   events (see `examples/nexmark.rs` for the per-core comparison with
//!   Flink).
//!
//! Every group has the plain-loop baseline (tumbling count+sum in a hash map
//! over the same events in memory) as its control, and every iteration
//! asserts the engine processed every event (and, for on-time tumbling,
//! emitted exactly the baseline's windows), so a broken engine cannot post a
//! good number.
//!
//! Run with `cargo bench --bench throughput`; `tidemark bench throughput`
//! prints the same comparison with events/s per core.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use tidemark::harness;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use harness::{run_engine, run_plain_loop, standard_scenarios, Scenario, Workload};
use tidemark::windows::WindowSpec;

const EVENTS: u64 = 1_000_000;

fn workload(keys: u32, late_frac: f64) -> Workload {
    Workload {
        events: EVENTS,
        keys,
        late_frac,
        ..Workload::default()
    }
}

fn engine(c: &mut Criterion, group: &str, cases: Vec<(String, Workload, Scenario)>) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS));
    let baseline = workload(10_000, 0.0);
    let plain = run_plain_loop(&baseline).unwrap().windows;
    // Timed: the loop only (events are generated before its clock starts).
    g.bench_function("plain_loop", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let m = run_plain_loop(&baseline).unwrap();
                    assert_eq!(m.windows, plain);
                    m.wall
                })
                .sum()
        })
    });
    for (name, workload, scenario) in cases {
        let expected = run_engine(&workload, &scenario).unwrap();
        assert_eq!(expected.events, EVENTS);
        if scenario.name == "tumbling" && workload.late_frac == 0.0 && workload.keys == 10_000 {
            assert_eq!(
                expected.windows, plain,
                "tumbling windows differ from the plain loop"
            );
        }
        // Timed: the job's run (generating included, as it is the source).
        g.bench_function(BenchmarkId::new(scenario.name.clone(), name), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let m = run_engine(&workload, &scenario).unwrap();
                        assert_eq!((m.events, m.windows), (expected.events, expected.windows));
                        m.wall
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

fn keys(c: &mut Criterion) {
    let mut cases = Vec::new();
    for keys in [100u32, 10_000, 1_000_000] {
        for scenario in standard_scenarios() {
            cases.push((format!("{keys}_keys"), workload(keys, 0.0), scenario));
        }
    }
    engine(c, "keys", cases);
}

fn slide_sweep(c: &mut Criterion) {
    // 100 keys at 0.1 events per ms: 10 000 s of event time, so every key
    // has about one event per 1 s pane and the windows still open when the
    // input ends (size / slide per key) stay a small share of the rows:
    // the rows per event stay close to one across the sweep, and what is
    // measured is the cost per event of a longer window.
    let cases = [1i64, 10, 100, 1000]
        .into_iter()
        .map(|n| {
            let scenario = Scenario::new("sliding", WindowSpec::sliding(n * 1_000, 1_000));
            let sparse = Workload {
                rate: 0.1,
                ..workload(100, 0.0)
            };
            let rows = run_engine(&sparse, &scenario).unwrap().windows;
            eprintln!("slide_sweep size {n} slides: {rows} rows for {EVENTS} events");
            (format!("size_{n}_slides"), sparse, scenario)
        })
        .collect();
    engine(c, "slide_sweep", cases);
}

fn late_share(c: &mut Criterion) {
    let cases = [0.0, 0.01, 0.05]
        .into_iter()
        .map(|f| {
            let scenario = Scenario::new("tumbling", WindowSpec::tumbling(1_000));
            (
                format!("late_{}pct", (f * 100.0) as u32),
                workload(10_000, f),
                scenario,
            )
        })
        .collect();
    engine(c, "late_share", cases);
}

fn nexmark(c: &mut Criterion) {
    use std::sync::Arc;
    use tidemark::sources::nexmark::{NexmarkConfig, NexmarkKey, NexmarkSource};
    use tidemark::windows::AggKind;
    use tidemark::Job;

    const NEXMARK_EVENTS: u64 = 1_000_000;
    let mut g = c.benchmark_group("nexmark");
    g.sample_size(10);
    g.throughput(Throughput::Elements(NEXMARK_EVENTS));
    let queries = [
        (
            "q5",
            WindowSpec::sliding(10_000, 2_000),
            NexmarkKey::Auction,
            AggKind::Count,
        ),
        (
            "q7",
            WindowSpec::tumbling(10_000),
            NexmarkKey::Constant,
            AggKind::Max,
        ),
        (
            "q11",
            WindowSpec::session(10_000),
            NexmarkKey::Bidder,
            AggKind::Count,
        ),
    ];
    for (name, window, key, agg) in queries {
        let run = || {
            let source = NexmarkSource::new(NexmarkConfig {
                events: NEXMARK_EVENTS,
                events_per_second: 100_000,
                key,
                ..NexmarkConfig::default()
            })
            .unwrap();
            let job = Job::builder()
                .source(Arc::new(source))
                .window(window)
                .aggs(&[agg])
                .build()
                .unwrap();
            let start = std::time::Instant::now();
            let summary = job.run().unwrap();
            (summary.records, summary.windows_emitted, start.elapsed())
        };
        let (records, windows, _) = run();
        assert!(records > 0 && windows > 0);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let (r, w, took) = run();
                        assert_eq!((r, w), (records, windows));
                        took
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, keys, slide_sweep, late_share, nexmark);
criterion_main!(benches);
