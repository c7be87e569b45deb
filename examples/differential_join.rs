//! Windowed results as a differential collection, joined downstream:
//! purchases per user per second (with corrections from allowed-late
//! records, emit mode `updates`), joined with a small reference collection
//! user → country, summed per country and window, and consolidated.
//!
//! Run with `cargo run --example differential_join`.

use std::sync::{Arc, Mutex};

use tidemark::engine::differential_dataflow::input::Input as _;
use tidemark::engine::timely;
use tidemark::engine::timely::dataflow::operators::vec::ToStream;
use tidemark::engine::{windowed, EngineConfig, Event};
use tidemark::sources::Key;
use tidemark::windows::{AggKind, EmitMode, Number, Policy, Window, WindowSpec};

/// One change of the per-country collection: ((country, window), time, diff).
type Change = ((String, Window), i64, isize);

fn main() {
    let config = EngineConfig::new(
        WindowSpec::tumbling(1_000),
        Policy::new(0, 2_000, EmitMode::Updates),
        vec![AggKind::Count],
    );
    // (user, event time) in one partition; `bo` at 400 arrives after the
    // watermark passed 1000 and corrects [0, 1000).
    let clicks = [
        ("ann", 100),
        ("bo", 300),
        ("ann", 700),
        ("cy", 1_200),
        ("bo", 400),
        ("ann", 1_500),
        ("cy", 2_300),
    ];
    let changes: Arc<Mutex<Vec<Change>>> = Arc::default();
    let out = Arc::clone(&changes);
    timely::execute_directly(move |worker| {
        worker.dataflow::<i64, _, _>(|scope| {
            let mut stream_time = i64::MIN;
            let events: Vec<Event> = clicks
                .iter()
                .enumerate()
                .map(|(offset, &(user, time))| {
                    stream_time = stream_time.max(time);
                    Event {
                        stream_time,
                        partition: 0,
                        offset: offset as u64,
                        key: user.into(),
                        time,
                        value: Number::Int(1),
                        fields: Vec::new(),
                    }
                })
                .collect();
            let counts = windowed(
                events.to_stream(scope),
                &config,
                scope.index(),
                scope.peers(),
            )
            .expect("a valid job")
            .collection();
            let (_countries, countries) = scope.new_collection_from(
                [("ann", "fr"), ("bo", "fr"), ("cy", "jp")]
                    .map(|(u, c)| (Key::from(u), c.to_string())),
            );
            counts
                .map(|((user, window), v)| (user, (window, v.count.unwrap_or(0) as isize)))
                .join(countries)
                .explode(|(_user, ((window, n), country))| Some(((country, window), n)))
                .consolidate()
                // `explode` moved the counts into the diffs.
                .inspect(move |((country, window), time, diff)| {
                    out.lock()
                        .unwrap()
                        .push(((country.clone(), *window), *time, *diff))
                });
        });
    });
    let mut changes = changes.lock().unwrap().clone();
    changes
        .sort_by_key(|((country, window), time, diff)| (*time, window.end, country.clone(), *diff));
    println!("clicks per country and window, as they change (time: frontier step):");
    for ((country, window), time, diff) in &changes {
        println!(
            "  t={time:<5} {country} [{}, {}) {diff:+}",
            window.start, window.end
        );
    }
    // Consolidated over all times: the final table.
    let mut table = std::collections::BTreeMap::<(i64, String), isize>::new();
    for ((country, window), _, diff) in &changes {
        *table.entry((window.start, country.clone())).or_default() += diff;
    }
    println!("final:");
    for ((start, country), n) in table.iter().filter(|(_, n)| **n != 0) {
        println!("  {country} [{start}, {}) {n}", start + 1_000);
    }
}
