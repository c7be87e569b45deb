//! Memory per open window: the growth of the resident set while a
//! [`WindowState`] opens one (key, pane or session) per key, divided by the
//! open states. Keys are `compact_str::CompactString`, the engine's key
//! type. Linux only (reads `/proc/self/status`).
//!
//! Each key gets one record in one window (one pane, one session), so the
//! open states equal the keys. Each case runs in a child process of its
//! own: memory a case frees stays in the allocator's pools and would hide
//! the growth of the next one. Run with
//! `cargo bench -p tidemark-windows --bench memory`.
#![allow(missing_docs)]

use compact_str::CompactString;
use tidemark_windows::{
    AggKind, Aggregator, Aggs, Field, Metrics, MetricsAcc, Number, Policy, Rec, WindowSpec,
    WindowState,
};

/// The five aggregations over named fields measured beside count+sum.
const FIVE: &[&str] = &[
    "count",
    "revenue=sum(amount)",
    "count_distinct(user)",
    "quantile(latency, 0.99)",
    "latest(user)",
];

/// Resident set size of this process in bytes (Linux), if known.
fn rss() -> Option<isize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: isize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn measure(spec: WindowSpec, keys: u64, five: bool) -> Option<(usize, isize)> {
    if five {
        let aggs = Aggs::parse(FIVE).expect("valid aggregations");
        measure_with(spec, keys, aggs, |i| Rec {
            value: Number::Int(1),
            fields: [
                Field::Int(i as i64 % 1_000),
                Field::Text(format!("u{}", i % 97).into()),
                Field::Float(1.0 + (i % 500) as f64),
            ]
            .into_iter()
            .collect(),
            order: (10, 0, i as u64),
        })
    } else {
        let metrics = Metrics::new(&[AggKind::Count, AggKind::Sum]);
        measure_with(spec, keys, metrics, |i| Number::Int(i as i64))
    }
}

fn measure_with<A: Aggregator>(
    spec: WindowSpec,
    keys: u64,
    agg: A,
    input: impl Fn(usize) -> A::Input,
) -> Option<(usize, isize)> {
    let policy = Policy::new(0, 0, Default::default());
    let names: Vec<CompactString> = (0..keys).map(|k| format!("k{k}").into()).collect();
    let inputs: Vec<A::Input> = (0..names.len()).map(input).collect();
    let before = rss()?;
    let mut state = WindowState::try_new(spec, policy, agg).expect("valid spec");
    let mut out = Vec::new();
    let mut missed = Vec::new();
    state.advance(10, &mut out);
    for (i, key) in names.iter().enumerate() {
        let t = 10 + (i % 50) as i64;
        state
            .apply(key.clone(), t, &inputs[i], &mut missed)
            .expect("representable");
    }
    state.end_step(&mut out);
    let after = rss()?;
    let open = state.open_states();
    drop(state);
    Some((open, after - before))
}

/// The environment variable that makes the process run one case.
const CASE: &str = "TIDEMARK_MEMORY_CASE";

fn specs() -> [(&'static str, WindowSpec); 3] {
    [
        ("tumbling 1 s", WindowSpec::tumbling(1_000)),
        ("sliding 10 s/1 s", WindowSpec::sliding(10_000, 1_000)),
        ("session 100 ms", WindowSpec::session(100)),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    if let Ok(case) = std::env::var(CASE) {
        let parts: Vec<&str> = case.split(':').collect();
        let [i, keys, five] = parts.as_slice() else {
            panic!("CASE is spec:keys:five");
        };
        let (_, spec) = specs()[i.parse::<usize>().expect("spec index")];
        let keys: u64 = keys.parse().expect("key count");
        match measure(spec, keys, *five == "1") {
            Some((open, bytes)) => {
                assert_eq!(open as u64, keys, "one open state per key");
                println!("{open} {bytes}");
            }
            None => println!("none"),
        }
        return;
    }
    let me = std::env::current_exe().expect("the bench's own path");
    println!(
        "one count+sum accumulator: {} bytes in memory",
        std::mem::size_of::<MetricsAcc>()
    );
    println!(
        "{:<24} {:>9} {:>12} {:>14} {:>16}",
        "window", "keys", "open states", "RSS growth", "bytes per state"
    );
    let mut cases: Vec<(usize, u64, bool)> = Vec::new();
    for i in 0..specs().len() {
        cases.extend([(i, 100_000, false), (i, 1_000_000, false)]);
    }
    // The five aggregations over named fields (count, a sum, an exact
    // distinct count, a quantile sketch, a latest), one record per window.
    cases.extend([(0, 100_000, true), (2, 100_000, true)]);
    for (i, keys, five) in cases {
        let name = format!("{}{}", specs()[i].0, if five { ", 5 aggs" } else { "" });
        {
            let child = std::process::Command::new(&me)
                .env(CASE, format!("{i}:{keys}:{}", u8::from(five)))
                .output()
                .expect("run a case");
            assert!(child.status.success(), "case {name} {keys} failed");
            let text = String::from_utf8_lossy(&child.stdout);
            let Some((open, bytes)) = text.trim().split_once(' ') else {
                println!("{name:<24} {keys:>9}  (no /proc/self/status here)");
                continue;
            };
            let open: usize = open.parse().expect("open states");
            let bytes: isize = bytes.parse().expect("bytes");
            println!(
                "{name:<24} {keys:>9} {open:>12} {bytes:>14} {:>16.1}",
                bytes as f64 / open as f64
            );
        }
    }
}
