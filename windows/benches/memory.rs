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
use tidemark_windows::{AggKind, Metrics, MetricsAcc, Number, Policy, WindowSpec, WindowState};

/// Resident set size of this process in bytes (Linux), if known.
fn rss() -> Option<isize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: isize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn measure(spec: WindowSpec, keys: u64) -> Option<(usize, isize)> {
    let metrics = Metrics::new(&[AggKind::Count, AggKind::Sum]);
    let policy = Policy::new(0, 0, Default::default());
    let names: Vec<CompactString> = (0..keys).map(|k| format!("k{k}").into()).collect();
    let before = rss()?;
    let mut state = WindowState::try_new(spec, policy, metrics).expect("valid spec");
    let mut out = Vec::new();
    let mut missed = Vec::new();
    state.advance(10, &mut out);
    for (i, key) in names.iter().enumerate() {
        let t = 10 + (i % 50) as i64;
        state
            .apply(key.clone(), t, &Number::Int(i as i64), &mut missed)
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
        let (i, keys) = case.split_once(':').expect("CASE is spec:keys");
        let (_, spec) = specs()[i.parse::<usize>().expect("spec index")];
        let keys: u64 = keys.parse().expect("key count");
        match measure(spec, keys) {
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
        "{:<16} {:>9} {:>12} {:>14} {:>16}",
        "window", "keys", "open states", "RSS growth", "bytes per state"
    );
    for (i, (name, _)) in specs().into_iter().enumerate() {
        for keys in [100_000u64, 1_000_000] {
            let child = std::process::Command::new(&me)
                .env(CASE, format!("{i}:{keys}"))
                .output()
                .expect("run a case");
            assert!(child.status.success(), "case {name} {keys} failed");
            let text = String::from_utf8_lossy(&child.stdout);
            let Some((open, bytes)) = text.trim().split_once(' ') else {
                println!("{name:<16} {keys:>9}  (no /proc/self/status here)");
                continue;
            };
            let open: usize = open.parse().expect("open states");
            let bytes: isize = bytes.parse().expect("bytes");
            println!(
                "{name:<16} {keys:>9} {open:>12} {bytes:>14} {:>16.1}",
                bytes as f64 / open as f64
            );
        }
    }
}
