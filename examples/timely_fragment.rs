//! The windowing operators inside a Timely worker of one's own: two
//! workers, each feeding its own partition of click events through a Timely
//! input it controls, build `windowed` on that stream and inspect the
//! result rows. The input obeys the engine's contract: each event carries
//! its partition's stream time, and the input's time is held at the lowest
//! stream time still to come.
//!
//! Run with `cargo run --example timely_fragment`.

use std::sync::{Arc, Mutex};

use tidemark::engine::timely;
use tidemark::engine::timely::dataflow::operators::vec::Input;
use tidemark::engine::timely::dataflow::operators::{Inspect, Probe};
use tidemark::engine::timely::dataflow::{InputHandleVec, ProbeHandle};
use tidemark::engine::{windowed, EngineConfig, Event, Row};
use tidemark::windows::{AggKind, MetricValues, Number, Policy, WindowSpec};

fn main() {
    let config = EngineConfig::new(
        WindowSpec::tumbling(1_000),
        Policy::new(100, 0, Default::default()),
        vec![AggKind::Count, AggKind::Sum],
    );
    let rows: Arc<Mutex<Vec<Row<MetricValues>>>> = Arc::default();
    let collected = Arc::clone(&rows);
    timely::execute(timely::Config::process(2), move |worker| {
        let index = worker.index();
        let mut input: InputHandleVec<i64, Event> = InputHandleVec::new();
        let probe = ProbeHandle::new();
        let rows = Arc::clone(&collected);
        worker.dataflow::<i64, _, _>(|scope| {
            let events = scope.input_from(&mut input);
            let out = windowed(events, &config, scope.index(), scope.peers()).expect("a valid job");
            out.results
                .inspect(move |row| rows.lock().unwrap().push(row.clone()))
                .probe_with(&probe);
        });
        // This worker's partition: event times with some disorder.
        let times: Vec<i64> = match index {
            0 => vec![100, 450, 300, 1_200, 980, 2_100, 1_950, 3_000],
            _ => vec![250, 900, 1_500, 1_400, 2_600, 2_900],
        };
        let mut stream_time = i64::MIN;
        for (offset, &time) in times.iter().enumerate() {
            stream_time = stream_time.max(time);
            // Hold the input at the stream time: no later event of this
            // partition can carry a smaller one.
            if stream_time > *input.time() {
                input.advance_to(stream_time);
            }
            input.send(Event {
                stream_time,
                partition: index as u32,
                offset: offset as u64,
                key: if offset % 2 == 0 { "web" } else { "app" }.into(),
                time,
                value: Number::Int(1 + offset as i64),
                fields: Vec::new(),
            });
            // Let the dataflow catch up before the next event.
            worker.step_while(|| probe.less_than(input.time()));
        }
        input.close();
        while worker.step() {}
    })
    .expect("timely runs");
    // Each worker's rows are in canonical order; merged, they are the job's.
    let mut rows = rows.lock().unwrap().clone();
    rows.sort_by(|a, b| a.canonical_cmp(b));
    for row in rows {
        println!(
            "{} [{}, {}) count {:?} sum {:?} ({})",
            row.key,
            row.window.start,
            row.window.end,
            row.value.count,
            row.value.sum.map(|s| s.as_f64()),
            row.kind.name()
        );
    }
}
