//! Embedding tidemark in a Rust program: a job over an in-memory log with
//! two partitions, results collected in a buffer, on two worker threads.
//!
//! Run with `cargo run --example embed`.

use std::sync::Arc;

use tidemark::engine::Target;
use tidemark::sources::{MemorySource, Record, Value};
use tidemark::windows::{AggKind, WindowSpec};
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
    // Two partitions; offsets and partition numbers are set from positions.
    let log = MemorySource::new(vec![
        vec![
            rec("sensor-a", 1_000, 20),
            rec("sensor-a", 1_400, 22),
            rec("sensor-a", 2_100, 25),
        ],
        vec![
            rec("sensor-b", 1_200, 7),
            rec("sensor-b", 900, 6),
            rec("sensor-b", 2_500, 9),
        ],
    ]);
    let (results, rows) = Target::buffer();
    let (late, late_rows) = Target::buffer();
    let summary = Job::builder()
        .source(Arc::new(log))
        .window(WindowSpec::tumbling(1_000))
        .delay(200)
        .aggs(&[AggKind::Count, AggKind::Mean, AggKind::Max])
        .workers(2)
        .results(results)
        .late(late)
        .build()?
        .run()?;
    let text = |b: &Arc<std::sync::Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&b.lock().map(|v| v.clone()).unwrap_or_default()).into_owned()
    };
    print!("{}", text(&rows));
    eprint!("late records:\n{}", text(&late_rows));
    eprintln!("{summary:?}");
    Ok(())
}
