//! Starting a job mid-log: every partition at a given position (next offset
//! and stream time) with given window state gives exactly the rows an
//! uninterrupted run emits from that point on — the basis of checkpoints
//! and reprocessing from an offset.
//!
//! The state at the cut is computed with the window state machine directly
//! (as a checkpoint would hold it), for several cuts, worker counts and
//! window kinds; seeds are printed on failure.
//!
//! Run with `cargo test -p tidemark-engine --test restart`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark_engine::{run, EngineConfig, Outputs, Parallelism, Position, Stats, Target};
use tidemark_sources::{Key, MemorySource, Record, Value};
use tidemark_windows::log::event_order;
use tidemark_windows::{
    AggKind, EmitMode, LogRecord, Metrics, Number, Policy, WindowSpec, WindowState,
};

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn run_job(parts: &[Vec<Record>], config: EngineConfig, workers: usize) -> String {
    let (results, buf) = Target::buffer();
    let outputs = Outputs {
        results,
        ..Outputs::default()
    };
    run(
        Arc::new(MemorySource::new(parts.to_vec())),
        config,
        Parallelism::Workers(workers),
        outputs,
        Arc::new(Stats::default()),
    )
    .expect("job runs");
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    text
}

#[test]
fn resuming_from_positions_and_state_continues_the_output_exactly() {
    let aggs = vec![AggKind::Count, AggKind::Sum, AggKind::Max];
    for seed in 0..12u64 {
        let mut rng = Rng(seed);
        let n_parts = 1 + rng.below(3) as u32;
        let mut parts: Vec<Vec<Record>> = Vec::new();
        let mut log: Vec<LogRecord<Key, Number>> = Vec::new();
        for p in 0..n_parts {
            let mut part = Vec::new();
            for o in 0..(50 + rng.below(250)) {
                let late = if rng.below(8) == 0 {
                    rng.below(600) as i64
                } else {
                    0
                };
                let t =
                    10_000 + o as i64 * (1 + rng.below(15) as i64) - rng.below(40) as i64 - late;
                let key: Key = format!("k{}", rng.below(7)).into();
                let v = rng.below(50) as i64;
                part.push(Record {
                    partition: p,
                    offset: o,
                    key: key.clone(),
                    event_time: t,
                    value: Value::Int(v),
                    fields: Vec::new(),
                });
                log.push(LogRecord {
                    partition: p,
                    offset: o,
                    key,
                    time: t,
                    input: Number::Int(v),
                });
            }
            parts.push(part);
        }
        let window = match rng.below(3) {
            0 => WindowSpec::tumbling(100 + rng.below(300) as i64),
            1 => WindowSpec::sliding(300 + rng.below(300) as i64, 100),
            _ => WindowSpec::session(30 + rng.below(100) as i64),
        };
        let emit = if rng.below(2) == 0 {
            EmitMode::Final
        } else {
            EmitMode::Updates
        };
        let policy = Policy::new(rng.below(60) as i64, rng.below(300) as i64, emit);
        let config = EngineConfig::new(window, policy, aggs.clone());
        let full = run_job(&parts, config.clone(), 2);

        // The cut: a stream time; the prefix is every record before it.
        let order = event_order(&log);
        let cut = order[order.len() * (1 + rng.below(3) as usize) / 4].0;
        let mut state = WindowState::try_new(window, policy, Metrics::new(&aggs)).unwrap();
        let mut rows = Vec::new();
        let mut missed = Vec::new();
        let mut start: BTreeMap<u32, Position> = BTreeMap::new();
        let mut step = None;
        for &(s, i) in order.iter().filter(|(s, _)| *s < cut) {
            if step != Some(s) {
                if step.is_some() {
                    state.end_step(&mut rows);
                }
                state.advance(s, &mut rows);
                step = Some(s);
            }
            let r = &log[i];
            state
                .apply(r.key.clone(), r.time, &r.input, &mut missed)
                .unwrap();
            let pos = start.entry(r.partition).or_default();
            pos.offset = pos.offset.max(r.offset + 1);
            pos.stream_time = Some(pos.stream_time.map_or(s, |t| t.max(s)));
        }
        if step.is_some() {
            state.end_step(&mut rows);
        }
        state.advance(cut, &mut rows);
        let mut prefix = String::new();
        for c in rows {
            let c = tidemark_windows::Change {
                time: c.time,
                phase: c.phase,
                kind: c.kind,
                key: c.key.to_string(),
                window: c.window,
                value: c.value,
            };
            tidemark_engine::format_row(&c, &aggs, &mut prefix);
            prefix.push('\n');
        }

        for workers in [1, 3] {
            let mut resumed = config.clone();
            resumed.start = start.clone();
            resumed.initial_state = Some(Arc::new(state.snapshot()));
            let rest = run_job(&parts, resumed, workers);
            assert!(
                format!("{prefix}{rest}") == full,
                "seed {seed}, workers {workers}, {window}, {policy:?}, cut {cut}: resumed output differs"
            );
        }
    }
}
