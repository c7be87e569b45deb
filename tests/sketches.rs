//! The sketch aggregations through a job: `Quantile` named `p99` and
//! `ApproxDistinct` over tumbling, sliding and session windows of a
//! three-partition log with late records, on 1 and 3 workers. Every
//! tumbling row is within the stated accuracy of the exact value for its
//! window (computed here, apart from the engine), and the rows are
//! byte-identical for any worker count.
//!
//! Run with `cargo test --test sketches`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark::engine::{Named, Target};
use tidemark::sources::{MemorySource, Record, Value};
use tidemark::windows::{Aggregator, ApproxDistinct, Number, Quantile, WindowSpec};
use tidemark::Job;

/// A deterministic log: three partitions, five keys, values over six
/// orders of magnitude, about one record in twenty up to 3 s late.
fn log() -> Vec<Vec<Record>> {
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..3u32)
        .map(|p| {
            (0..2_000u64)
                .map(|o| {
                    let late = if next() % 20 == 0 { next() % 3_000 } else { 0 };
                    let value = if next() % 4 == 0 {
                        Value::Float((next() % 1_000_000) as f64 / 1_000.0)
                    } else {
                        Value::Int((next() % 5_000) as i64)
                    };
                    Record {
                        partition: p,
                        offset: o,
                        key: format!("k{}", next() % 5).into(),
                        event_time: 10_000 + o as i64 * 10 + i64::from(p) - late as i64,
                        value,
                        fields: Vec::new(),
                    }
                })
                .collect()
        })
        .collect()
}

fn run(window: WindowSpec, workers: usize) -> String {
    run_with(
        window,
        workers,
        Named::new("p99", Quantile::new(0.99).unwrap()),
    )
}

fn run_with<A>(window: WindowSpec, workers: usize, aggregator: A) -> String
where
    A: tidemark::engine::JobAggregator,
{
    let (results, buffer) = Target::buffer();
    Job::builder()
        .source(Arc::new(MemorySource::new(log())))
        .window(window)
        .delay(500)
        .lateness(1_000)
        .aggregator(aggregator)
        .workers(workers)
        .results(results)
        .build()
        .unwrap()
        .run()
        .unwrap();
    let bytes = buffer.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// Each tumbling window's values, by key and start: the records a row
/// includes (those not too late).
fn tumbling_values(size: i64, delay: i64, lateness: i64) -> BTreeMap<(String, i64), Vec<Number>> {
    // Apply in (stream time, partition, offset) order, as the engine does.
    let mut records: Vec<(i64, u32, u64, Record)> = Vec::new();
    for part in log() {
        let mut stream_time = i64::MIN;
        for r in part {
            stream_time = stream_time.max(r.event_time);
            records.push((stream_time, r.partition, r.offset, r));
        }
    }
    records.sort_by_key(|(st, p, o, _)| (*st, *p, *o));
    let mut frontier = i64::MIN;
    let mut values: BTreeMap<(String, i64), Vec<Number>> = BTreeMap::new();
    for (st, _, _, r) in records {
        frontier = frontier.max(st);
        let start = r.event_time.div_euclid(size) * size;
        let watermark = frontier - delay;
        // Kept while the watermark has not passed its end by the lateness.
        if watermark >= start + size + lateness {
            continue;
        }
        let v = match r.value {
            Value::Int(i) => Number::Int(i),
            Value::Float(f) => Number::Float(f),
        };
        values
            .entry((r.key.to_string(), start))
            .or_default()
            .push(v);
    }
    values
}

/// The exact 0.99-quantile of each tumbling window's values.
fn exact_tumbling(size: i64, delay: i64, lateness: i64) -> BTreeMap<(String, i64), f64> {
    tumbling_values(size, delay, lateness)
        .into_iter()
        .map(|(k, vs)| {
            let mut vs: Vec<f64> = vs.iter().map(|v| v.as_f64()).collect();
            vs.sort_by(f64::total_cmp);
            let rank = (0.99 * (vs.len() as f64 - 1.0)) as usize;
            (k, vs[rank])
        })
        .collect()
}

/// The last row's value of `field` per (key, start), retractions aside.
fn last_values(rows: &str, field: &str) -> BTreeMap<(String, i64), serde_json::Value> {
    let mut last = BTreeMap::new();
    for line in rows.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        if row["kind"] == "retract" {
            continue;
        }
        let key = row["key"].as_str().unwrap().to_owned();
        let start = row["start"].as_i64().unwrap();
        last.insert((key, start), row[field].clone());
    }
    last
}

#[test]
fn approx_distinct_rows_are_within_the_stated_error_and_the_same_for_any_worker_count() {
    for window in [
        WindowSpec::tumbling(1_000),
        WindowSpec::sliding(2_000, 500),
        WindowSpec::session(30),
    ] {
        let agg = || Named::new("approx_distinct", ApproxDistinct);
        let one = run_with(window, 1, agg());
        assert!(one.lines().count() > 20, "{window}: {one}");
        assert_eq!(
            one,
            run_with(window, 3, agg()),
            "{window}: 1 and 3 workers differ"
        );
    }
    let rows = run_with(
        WindowSpec::tumbling(1_000),
        1,
        Named::new("approx_distinct", ApproxDistinct),
    );
    let last = last_values(&rows, "approx_distinct");
    let values = tumbling_values(1_000, 500, 1_000);
    assert_eq!(last.len(), values.len());
    for (window, vs) in &values {
        // Distinct as numbers are (1 and 1.0 are two values).
        let mut exact: Vec<(u8, u64)> = vs
            .iter()
            .map(|v| match v {
                Number::Int(i) => (0, *i as u64),
                Number::Float(f) => (1, f.to_bits()),
            })
            .collect();
        exact.sort_unstable();
        exact.dedup();
        let n = exact.len() as f64;
        let got = last[window].as_u64().unwrap() as f64;
        let bound = (4.0 * ApproxDistinct::STANDARD_ERROR * n).max(1.0);
        assert!(
            (got - n).abs() <= bound,
            "{window:?}: estimate {got}, exact {n}"
        );
        // The same as the aggregator itself gives over the window's values.
        let mut acc = Default::default();
        for v in vs {
            ApproxDistinct.add(&mut acc, v);
        }
        assert_eq!(got as u64, ApproxDistinct.finish(&acc), "{window:?}");
    }
}

#[test]
fn p99_rows_are_within_one_percent_and_the_same_for_any_worker_count() {
    for window in [
        WindowSpec::tumbling(1_000),
        WindowSpec::sliding(2_000, 500),
        WindowSpec::session(30),
    ] {
        let one = run(window, 1);
        let three = run(window, 3);
        assert!(one.lines().count() > 20, "{window}: {one}");
        assert_eq!(one, three, "{window}: 1 and 3 workers differ");
    }
    // Tumbling: the last row of each window against the exact quantile.
    let rows = run(WindowSpec::tumbling(1_000), 1);
    let exact = exact_tumbling(1_000, 500, 1_000);
    let last = last_values(&rows, "p99");
    assert_eq!(last.len(), exact.len());
    for (window, want) in &exact {
        let got = last[window].as_f64().unwrap();
        assert!(
            (got - want).abs() <= Quantile::RELATIVE_ACCURACY * want.abs() + 1e-9,
            "{window:?}: p99 {got}, exact {want}"
        );
    }
}
