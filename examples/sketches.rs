//! Latency percentiles and distinct users per endpoint and minute, from
//! sketches: `Quantile` (a DDSketch, within 1 % of the exact quantile) and
//! `ApproxDistinct` (a HyperLogLog, 1.6 % standard error). Both merge like
//! any accumulator, so the rows are the same on any number of workers.
//!
//! Run with `cargo run --example sketches`. It prints one line per
//! endpoint and minute: `ENDPOINT MINUTE p50=… p99=… users≈…`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark::engine::{Collect, JobAggregator, Named, Row};
use tidemark::sources::{MemorySource, Record, Value};
use tidemark::windows::{ApproxDistinct, Quantile, WindowSpec};
use tidemark::Job;

const MINUTE: i64 = 60_000;

/// A request log over three minutes: two partitions (two servers), each
/// record an endpoint, a time, and `value` (the latency in ms, or the user
/// id, depending on the log asked for).
fn requests(value_of: fn(u64, u64) -> Value) -> MemorySource {
    let mut seed = 42u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    let partitions = (0..2u32)
        .map(|p| {
            (0..6_000u64)
                .map(|o| {
                    let endpoint = if next() % 3 == 0 {
                        "/checkout"
                    } else {
                        "/search"
                    };
                    // Mostly fast, with a slow tail.
                    let latency = if next() % 50 == 0 {
                        200 + next() % 2_000
                    } else {
                        5 + next() % 40
                    };
                    let user = next() % 700;
                    Record {
                        partition: p,
                        offset: o,
                        key: endpoint.into(),
                        event_time: o as i64 * 30 + i64::from(p) * 7,
                        value: value_of(latency, user),
                        fields: Vec::new(),
                    }
                })
                .collect()
        })
        .collect();
    MemorySource::new(partitions)
}

/// The rows of a job with `aggregator` over one-minute windows, on two
/// workers.
fn per_minute<A: JobAggregator>(
    source: MemorySource,
    aggregator: A,
) -> Result<Vec<Row<A::Output>>, tidemark::JobError> {
    let (rows, collected) = Collect::new();
    Job::builder()
        .source(Arc::new(source))
        .window(WindowSpec::tumbling(MINUTE))
        .aggregator(aggregator)
        .workers(2)
        .results_sink(rows)
        .build()?
        .run()?;
    let rows = collected.lock().map(|r| r.clone()).unwrap_or_default();
    Ok(rows)
}

fn main() -> Result<(), tidemark::JobError> {
    let latency = |latency, _user| Value::Int(latency as i64);
    let user = |_latency, user| Value::Int(user as i64);
    let quantile = |q| Quantile::new(q).expect("q is between 0 and 1");
    let p50 = per_minute(requests(latency), Named::new("p50", quantile(0.5)))?;
    let p99 = per_minute(requests(latency), Named::new("p99", quantile(0.99)))?;
    let users = per_minute(requests(user), Named::new("users", ApproxDistinct))?;

    let mut lines: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    let mut add = |key: &str, start: i64, text: String| {
        lines
            .entry((key.to_owned(), start / MINUTE))
            .or_default()
            .push(text);
    };
    for row in &p50 {
        add(
            &row.key,
            row.window.start,
            format!("p50={:.1}", row.value.unwrap_or(f64::NAN)),
        );
    }
    for row in &p99 {
        add(
            &row.key,
            row.window.start,
            format!("p99={:.1}", row.value.unwrap_or(f64::NAN)),
        );
    }
    for row in &users {
        add(&row.key, row.window.start, format!("users≈{}", row.value));
    }
    for ((endpoint, minute), parts) in lines {
        println!("{endpoint:<9} {minute} {}", parts.join(" "));
    }
    Ok(())
}
