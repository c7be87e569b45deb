//! A user aggregation: distinct visitors per page per minute, written
//! against the `Aggregator` trait and run through the window state machine
//! (the same one the engine drives) over an in-memory log.
//!
//! Run with `cargo run --example custom_aggregator`.

use std::collections::BTreeSet;

use tidemark::windows::{evaluate, Aggregator, LogRecord, Policy, WindowSpec, WindowState};

/// Counts distinct visitors. `merge` is set union: associative, commutative,
/// with the empty set as identity — what sessions and sliding panes need.
struct DistinctVisitors;

impl Aggregator for DistinctVisitors {
    type Input = String;
    type Acc = BTreeSet<String>;
    type Output = usize;

    fn add(&self, acc: &mut Self::Acc, visitor: &String) {
        acc.insert(visitor.clone());
    }

    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        acc.extend(other.iter().cloned());
    }

    fn finish(&self, acc: &Self::Acc) -> usize {
        acc.len()
    }
}

fn main() {
    let visits = [
        ("/", "ann", 1_000),
        ("/", "bob", 20_000),
        ("/", "ann", 50_000),
        ("/cart", "ann", 61_000),
        ("/", "cid", 65_000),
        ("/", "bob", 70_000),
    ];
    let log: Vec<LogRecord<&str, String>> = visits
        .iter()
        .enumerate()
        .map(|(i, (page, who, time))| LogRecord {
            partition: 0,
            offset: i as u64,
            key: *page,
            time: *time,
            input: who.to_string(),
        })
        .collect();
    // Sliding one-minute windows every 30 s, 1 s watermark delay.
    let mut state = WindowState::try_new(
        WindowSpec::sliding(60_000, 30_000),
        Policy::new(1_000, 0, Default::default()),
        DistinctVisitors,
    )
    .expect("valid window");
    for change in evaluate(&mut state, &log).changes {
        println!(
            "{:<6} {:>6}..{:<6} distinct visitors: {} ({})",
            change.key,
            change.window.start,
            change.window.end,
            change.value,
            change.kind.name()
        );
    }
}
