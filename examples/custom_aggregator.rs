//! A user aggregation through `Job`: distinct visitors per page per minute
//! (sliding one-minute windows every 30 s), written against the
//! `Aggregator` trait and run on two workers over an in-memory log with
//! two partitions. The value of each record is the visitor's id.
//!
//! Run with `cargo run --example custom_aggregator`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidemark::engine::{Collect, Named};
use tidemark::sources::{MemorySource, Record, Value};
use tidemark::windows::{Aggregator, Number, WindowSpec};
use tidemark::Job;

/// Counts distinct visitors. `merge` is set union: associative, commutative,
/// with the empty set as identity — what sessions, sliding panes and
/// several workers need.
#[derive(Clone)]
struct DistinctVisitors;

impl Aggregator for DistinctVisitors {
    type Input = Number;
    type Acc = BTreeSet<i64>;
    type Output = usize;

    fn add(&self, acc: &mut Self::Acc, visitor: &Number) {
        if let Number::Int(id) = visitor {
            acc.insert(*id);
        }
    }

    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        acc.extend(other.iter().copied());
    }

    fn finish(&self, acc: &Self::Acc) -> usize {
        acc.len()
    }
}

fn main() -> Result<(), tidemark::JobError> {
    let visit = |page: &str, visitor: i64, time: i64| Record {
        partition: 0,
        offset: 0,
        key: page.into(),
        event_time: time,
        value: Value::Int(visitor),
        fields: Vec::new(),
    };
    // Two partitions (say, two web servers); 1 = ann, 2 = bob, 3 = cid.
    let log = MemorySource::new(vec![
        vec![
            visit("/", 1, 1_000),
            visit("/", 1, 50_000),
            visit("/cart", 1, 61_000),
            visit("/", 2, 70_000),
        ],
        vec![
            visit("/", 2, 20_000),
            visit("/", 3, 65_000),
            visit("/cart", 3, 62_000),
        ],
    ]);
    let (rows, collected) = Collect::new();
    let summary = Job::builder()
        .source(Arc::new(log))
        .window(WindowSpec::sliding(60_000, 30_000))
        .delay(1_000)
        .aggregator(Named::new("distinct_visitors", DistinctVisitors))
        .workers(2)
        .results_sink(rows)
        .build()?
        .run()?;
    for row in collected.lock().map(|r| r.clone()).unwrap_or_default() {
        println!(
            "{:<6} {:>6}..{:<6} distinct visitors: {} ({})",
            row.key,
            row.window.start,
            row.window.end,
            row.value,
            row.kind.name()
        );
    }
    eprintln!(
        "{} visits, {} windows",
        summary.records, summary.windows_emitted
    );
    Ok(())
}
