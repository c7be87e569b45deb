//! Application code pushing events into a running job: two producer
//! threads, one per partition, push readings into a `ChannelSource` while a
//! job on two workers windows them; the rows arrive in a channel as the
//! watermark completes them. Closing a partition ends it; once both are
//! closed the job fires its last windows and ends.
//!
//! Run with `cargo run --example channel_source`.

use std::sync::Arc;
use std::time::Duration;

use tidemark::engine::{channel, Row};
use tidemark::sources::{ChannelSource, Value};
use tidemark::windows::{MetricValues, WindowSpec};
use tidemark::Job;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Two partitions, each holding at most 100 unread events (a producer
    // waits when its partition is full).
    let source = ChannelSource::new(2, 100)?;
    let (rows, received) = channel::<Row<MetricValues>>(64);
    let job = Job::builder()
        .source(Arc::new(source.clone()))
        .window(WindowSpec::tumbling(1_000))
        .delay(100)
        .workers(2)
        .results_sink(rows)
        .build()?;
    let running = std::thread::spawn(move || job.run());
    // Producers: partition 0 reads sensors a and b, partition 1 sensor c.
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let sender = source.sender(p)?;
            Ok(std::thread::spawn(move || {
                for i in 0..30i64 {
                    let key = match (p, i % 2) {
                        (0, 0) => "sensor-a",
                        (0, _) => "sensor-b",
                        _ => "sensor-c",
                    };
                    // Times 0, 100, 200, ... with a little disorder.
                    let time = i * 100 - (i % 3) * 40 + i64::from(p) * 10;
                    sender.push(key, time, Value::Int(i))?;
                    std::thread::sleep(Duration::from_millis(2));
                }
                sender.close();
                Ok::<(), tidemark::sources::PushError>(())
            }))
        })
        .collect::<Result<_, tidemark::sources::SourceError>>()?;
    // Rows arrive while the producers are still pushing.
    for row in received {
        println!(
            "{} [{}, {}) count {} sum {}",
            row.key,
            row.window.start,
            row.window.end,
            row.value.count.unwrap_or(0),
            row.value.sum.map(|s| s.to_string()).unwrap_or_default()
        );
    }
    for p in producers {
        p.join().map_err(|_| "a producer panicked")??;
    }
    let summary = running.join().map_err(|_| "the job panicked")??;
    eprintln!(
        "{} events, {} windows",
        summary.records, summary.windows_emitted
    );
    Ok(())
}
