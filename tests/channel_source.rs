//! Events pushed live through a `ChannelSource` give the same rows whatever
//! the interleaving of the producers, their batching, the read batch size
//! and the number of workers — and the same rows as the same log in memory.
//!
//! Run with `cargo test --test channel_source`.

use std::sync::Arc;
use std::time::Duration;

use tidemark::engine::Target;
use tidemark::sources::{ChannelSource, MemorySource, Record, Value};
use tidemark::windows::{EmitMode, WindowSpec};
use tidemark::Job;

/// Three partitions of (key, time, value) with disorder and stragglers.
fn partitions() -> Vec<Vec<(String, i64, i64)>> {
    (0..3i64)
        .map(|p| {
            (0..400i64)
                .map(|i| {
                    let late = if i % 37 == 0 { 700 } else { 0 };
                    (
                        format!("k{}", (i * 7 + p) % 11),
                        10_000 + i * 13 - (i * 31 % 90) - late + p * 5,
                        i % 17 - 4,
                    )
                })
                .collect()
        })
        .collect()
}

fn job() -> tidemark::JobBuilder {
    Job::builder()
        .window(WindowSpec::sliding(500, 100))
        .delay(60)
        .lateness(300)
        .emit(EmitMode::Updates)
}

fn text(buf: &Arc<std::sync::Mutex<Vec<u8>>>) -> String {
    String::from_utf8(buf.lock().unwrap().clone()).unwrap()
}

/// Pushes the partitions through a channel source: `style` picks how the
/// producers interleave and batch.
fn pushed(workers: usize, batch: usize, style: usize) -> String {
    let parts = partitions();
    let source = ChannelSource::new(parts.len() as u32, 1 + style * 16).unwrap();
    let (results, buf) = Target::buffer();
    let job = job()
        .source(Arc::new(source.clone()))
        .workers(workers)
        .batch_size(batch)
        .results(results)
        .build()
        .unwrap();
    let running = std::thread::spawn(move || job.run());
    match style {
        // One thread, round-robin over the partitions, one event at a time.
        0 => {
            let senders = source.senders().unwrap();
            for i in 0..parts[0].len() {
                for (events, s) in parts.iter().zip(&senders) {
                    let (k, t, v) = &events[i];
                    s.push(k.as_str(), *t, Value::Int(*v)).unwrap();
                }
            }
            senders.iter().for_each(|s| s.close());
        }
        // One thread per partition, in bursts with pauses of different
        // lengths, the last partition first.
        _ => {
            let handles: Vec<_> = parts
                .iter()
                .enumerate()
                .rev()
                .map(|(p, events)| {
                    let sender = source.sender(p as u32).unwrap();
                    let events = events.clone();
                    std::thread::spawn(move || {
                        for (n, (k, t, v)) in events.iter().enumerate() {
                            sender.push(k.as_str(), *t, Value::Int(*v)).unwrap();
                            if n % (5 + 13 * p + style) == 0 {
                                std::thread::sleep(Duration::from_micros(300 * (p as u64 + 1)));
                            }
                        }
                        sender.close();
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
        }
    }
    let summary = running.join().unwrap().unwrap();
    assert_eq!(summary.records, 1_200);
    text(&buf)
}

fn in_memory() -> String {
    let log: Vec<Vec<Record>> = partitions()
        .into_iter()
        .map(|events| {
            events
                .into_iter()
                .map(|(k, t, v)| Record {
                    partition: 0,
                    offset: 0,
                    key: k.into(),
                    event_time: t,
                    value: Value::Int(v),
                    fields: Vec::new(),
                })
                .collect()
        })
        .collect();
    let (results, buf) = Target::buffer();
    job()
        .source(Arc::new(MemorySource::new(log)))
        .results(results)
        .build()
        .unwrap()
        .run()
        .unwrap();
    text(&buf)
}

#[test]
fn pushed_events_give_the_same_rows_however_they_are_pushed() {
    let expected = in_memory();
    assert!(expected.lines().count() > 1_000, "a substantial output");
    assert!(
        expected.contains("\"kind\":\"retract\""),
        "with corrections"
    );
    for (workers, batch, style) in [(1, 1024, 0), (3, 1024, 0), (1, 7, 1), (3, 1, 2), (3, 64, 3)] {
        assert!(
            pushed(workers, batch, style) == expected,
            "{workers} workers, batch {batch}, style {style}: rows differ"
        );
    }
}
