//! The window state machine alone, without Timely or decoding: records
//! already in event order, keys already ids.
//!
//! Isolates the per-record cost of `WindowState::apply` plus firing, for
//! tumbling 1 s, sliding 10 s / 1 s and sessions with a 100 ms gap, over
//! 10 000 keys with 50 ms of disorder (the standard workload's shape).
//! Control: a plain loop summing count and sum per (key, window) in a hash
//! map and emitting each window once at the end (the hardware limit the
//! engine is measured against). Each iteration asserts its output row count.
//!
//! Run with `cargo bench -p tidemark-windows --bench state`.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rustc_hash::FxHashMap;
use tidemark_windows::{AggKind, Metrics, Number, Policy, WindowSpec, WindowState};

const EVENTS: usize = 2_000_000;
const KEYS: u64 = 10_000;

/// (stream time, key, event time, value) in event order, like the standard
/// workload: 100 events per ms, up to 50 ms of disorder.
fn workload() -> Vec<(i64, u32, i64, i64)> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut stream = i64::MIN;
    let mut out = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let base = 1_700_000_000_000 + (i / 100) as i64;
        let t = base - (next() % 51) as i64;
        stream = stream.max(t);
        out.push((stream, (next() % KEYS) as u32, t, (next() % 100) as i64));
    }
    out
}

fn run_state(spec: WindowSpec, log: &[(i64, u32, i64, i64)]) -> usize {
    let metrics = Metrics::new(&[AggKind::Count, AggKind::Sum]);
    let mut state =
        WindowState::try_new(spec, Policy::new(50, 0, Default::default()), metrics).unwrap();
    let mut out = Vec::new();
    let mut missed = Vec::new();
    let mut rows = 0;
    let mut step = i64::MIN;
    for &(s, key, t, v) in log {
        if s != step {
            state.end_step(&mut out);
            state.advance(s, &mut out);
            step = s;
            rows += out.len();
            out.clear();
        }
        state.apply(key, t, &Number::Int(v), &mut missed).unwrap();
    }
    state.end_step(&mut out);
    state.finish(&mut out);
    rows + out.len()
}

fn plain_loop(log: &[(i64, u32, i64, i64)]) -> usize {
    let mut map: FxHashMap<(u32, i64), (u64, i64)> = FxHashMap::default();
    for &(_, key, t, v) in log {
        let e = map.entry((key, t - t.rem_euclid(1000))).or_default();
        e.0 += 1;
        e.1 += v;
    }
    map.len()
}

fn bench(c: &mut Criterion) {
    let log = workload();
    let mut g = c.benchmark_group("state");
    g.throughput(Throughput::Elements(log.len() as u64));
    g.sample_size(10);
    let expected_tumbling = plain_loop(&log);
    g.bench_function("plain_loop_tumbling", |b| {
        b.iter(|| assert_eq!(plain_loop(&log), expected_tumbling))
    });
    for (name, spec) in [
        ("tumbling_1s", WindowSpec::tumbling(1000)),
        ("sliding_10s_1s", WindowSpec::sliding(10_000, 1000)),
        ("session_100ms", WindowSpec::session(100)),
    ] {
        let expected = run_state(spec, &log);
        if name == "tumbling_1s" {
            assert_eq!(expected, expected_tumbling);
        }
        g.bench_with_input(BenchmarkId::new("window_state", name), &spec, |b, spec| {
            b.iter(|| assert_eq!(run_state(*spec, &log), expected))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
