//! Typed results: the rows of a job arrive in a channel while it runs, as
//! values (key, window, count, sum, kind), and another thread consumes
//! them; late records are collected into a `Vec`.
//!
//! Run with `cargo run --example typed_sink`.

use std::sync::Arc;

use tidemark::engine::{channel, Collect, Row};
use tidemark::sources::{MemorySource, Record, Value};
use tidemark::windows::{ChangeKind, EmitMode, MetricValues, SumValue, WindowSpec};
use tidemark::Job;

fn main() -> Result<(), tidemark::JobError> {
    let rec = |key: &str, event_time: i64, value: i64| Record {
        partition: 0,
        offset: 0,
        key: key.into(),
        event_time,
        value: Value::Int(value),
        fields: Vec::new(),
    };
    let log = MemorySource::new(vec![
        vec![
            rec("eu", 100, 5),
            rec("eu", 800, 7),
            rec("eu", 1_300, 1),
            rec("eu", 700, 2), // after the watermark passed 1000: corrects [0, 1000)
            rec("eu", 2_600, 4),
            rec("eu", 50, 9), // beyond the allowed lateness: late
        ],
        vec![
            rec("us", 300, 10),
            rec("us", 1_900, 20),
            rec("us", 2_700, 30),
        ],
    ]);
    let (rows, received) = channel::<Row<MetricValues>>(64);
    let (late, late_records) = Collect::new();
    // Consume the rows as they come, on another thread.
    let consumer = std::thread::spawn(move || {
        let mut totals = std::collections::BTreeMap::<String, i128>::new();
        for row in received {
            let sum = match row.value.sum {
                Some(SumValue::Int(s)) => s,
                _ => 0,
            };
            let signed = if row.kind == ChangeKind::Retract {
                -sum
            } else {
                sum
            };
            *totals.entry(row.key.to_string()).or_default() += signed;
            println!(
                "{:<7} {} [{}, {}) count {:?} sum {sum}",
                row.kind.name(),
                row.key,
                row.window.start,
                row.window.end,
                row.value.count,
            );
        }
        totals
    });
    let summary = Job::builder()
        .source(Arc::new(log))
        .window(WindowSpec::tumbling(1_000))
        .lateness(1_000)
        .emit(EmitMode::Final)
        .workers(2)
        .results_sink(rows)
        .late_sink(late)
        .build()?
        .run()?;
    let totals = consumer.join().unwrap_or_default();
    println!("sum of shown rows per key: {totals:?}");
    for l in late_records.lock().map(|l| l.clone()).unwrap_or_default() {
        println!(
            "late: partition {} offset {} (ts {}) missed {:?}",
            l.event.partition, l.event.offset, l.event.time, l.missed
        );
    }
    eprintln!("{} records, {} late", summary.records, summary.late_dropped);
    Ok(())
}
