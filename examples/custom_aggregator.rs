//! A user aggregation through `Job`: distinct visitors per page per minute
//! (sliding one-minute windows every 30 s), written against the
//! `Aggregator` trait over the visitor's name (`Input = String`) and run on
//! two workers over an in-memory log with two partitions. Each record
//! carries the visitor in its named field `visitor`; `Typed` hands it to
//! the aggregation as a `String`.
//!
//! Run with `cargo run --example custom_aggregator`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidemark::engine::{Collect, Typed};
use tidemark::sources::{Field, MemorySource, Record, Value};
use tidemark::windows::{Aggregator, WindowSpec};
use tidemark::Job;

/// Counts distinct visitors. `merge` is set union: associative, commutative,
/// with the empty set as identity — what sessions, sliding panes and
/// several workers need.
#[derive(Clone)]
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

fn main() -> Result<(), tidemark::JobError> {
    let visit = |page: &str, visitor: &str, time: i64| Record {
        partition: 0,
        offset: 0,
        key: page.into(),
        event_time: time,
        value: Value::Int(1),
        fields: vec![Field::from(visitor)],
    };
    // Two partitions (say, two web servers).
    let log = MemorySource::new(vec![
        vec![
            visit("/", "ann", 1_000),
            visit("/", "ann", 50_000),
            visit("/cart", "ann", 61_000),
            visit("/", "bob", 70_000),
        ],
        vec![
            visit("/", "bob", 20_000),
            visit("/", "cid", 65_000),
            visit("/cart", "cid", 62_000),
        ],
    ]);
    let (rows, collected) = Collect::new();
    let summary = Job::builder()
        .source(Arc::new(log))
        .window(WindowSpec::sliding(60_000, 30_000))
        .delay(1_000)
        .aggregator(Typed::new(
            "distinct_visitors",
            &["visitor"],
            DistinctVisitors,
        ))
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
