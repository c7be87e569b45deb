//! Differential tests: the incremental window state machine against the
//! brute-force reference model, on random multi-partition logs with
//! disorder, late and very late records, every window kind, both emit
//! modes, random delay and allowed lateness.
//!
//! Families:
//! - `state_equals_reference`: one state machine, whole log.
//! - `split_keys_equal_reference`: keys spread over several state machines
//!   that each step only at their own records' stream times (what Timely
//!   workers do); their rows merged in canonical order equal the reference.
//! - `snapshot_restore_is_invisible`: a snapshot taken between any two steps
//!   and restored through postcard gives the same output as no snapshot.
//!
//! Run with `cargo test -p tidemark-windows --test state_vs_reference`
//! (`PROPTEST_CASES=N` for more cases).

use proptest::prelude::*;
use tidemark_windows::log::event_order;
use tidemark_windows::{
    evaluate, reference, AggKind, Change, EmitMode, LogRecord, MetricValues, Metrics, Number,
    Policy, Snapshot, WindowSpec, WindowState,
};

type Log = Vec<LogRecord<u32, Number>>;

fn metrics() -> Metrics {
    Metrics::new(&[
        AggKind::Count,
        AggKind::Sum,
        AggKind::Min,
        AggKind::Max,
        AggKind::Mean,
    ])
}

/// A partition: arrival i at base + i * step, event time = arrival − delay,
/// where the delay is small disorder for most records and large for a few.
fn partition(p: u32, keys: u32) -> impl Strategy<Value = Log> {
    (
        -500i64..500,
        1i64..40,
        prop::collection::vec(
            (
                0..keys,
                0i64..60,
                prop::bool::weighted(0.15),
                0i64..600,
                -50i64..100,
            ),
            0..40,
        ),
    )
        .prop_map(move |(start, step, recs)| {
            recs.into_iter()
                .enumerate()
                .map(|(i, (key, disorder, straggler, extra, value))| {
                    let arrival = start + i as i64 * step;
                    let delay = if straggler {
                        disorder + extra
                    } else {
                        disorder
                    };
                    LogRecord {
                        partition: p,
                        offset: i as u64,
                        key,
                        time: arrival - delay,
                        input: Number::Int(value),
                    }
                })
                .collect()
        })
}

fn log() -> impl Strategy<Value = Log> {
    (1u32..5, 1u32..6).prop_flat_map(|(parts, keys)| {
        (0..parts)
            .map(|p| partition(p, keys))
            .collect::<Vec<_>>()
            .prop_map(|ps| ps.into_iter().flatten().collect())
    })
}

fn spec() -> impl Strategy<Value = WindowSpec> {
    prop_oneof![
        (1i64..300, -200i64..200).prop_map(|(size, offset)| WindowSpec::Tumbling { size, offset }),
        (1i64..300, 1i64..200, -200i64..200).prop_map(|(size, slide, offset)| {
            WindowSpec::Sliding {
                size,
                slide,
                offset,
            }
        }),
        (1i64..200).prop_map(WindowSpec::session),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        prop_oneof![Just(0i64), 0i64..150],
        prop_oneof![Just(0i64), 0i64..400],
        prop_oneof![Just(EmitMode::Final), Just(EmitMode::Updates)],
    )
        .prop_map(|(d, l, e)| Policy::new(d, l, e))
}

fn rows(changes: &[Change<u32, MetricValues>]) -> Vec<String> {
    changes
        .iter()
        .map(|c| {
            format!(
                "{} {:?} {:?} k{} {} {:?}",
                c.time, c.phase, c.kind, c.key, c.window, c.value
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    #[test]
    fn state_equals_reference(log in log(), spec in spec(), policy in policy()) {
        let expected = reference::evaluate(spec, policy, &metrics(), &log);
        let mut state = WindowState::try_new(spec, policy, metrics()).unwrap();
        let got = evaluate(&mut state, &log);
        prop_assert_eq!(rows(&got.changes), rows(&expected.changes));
        prop_assert_eq!(&got.late, &expected.late);
        prop_assert_eq!(&got.invalid, &expected.invalid);
        // The single-machine output is already in canonical order.
        prop_assert!(got.changes.is_sorted_by(|a, b| a.canonical_cmp(b).is_le()));
        // Nothing is left behind once every window fired and expired.
        prop_assert_eq!(state.open_states(), 0);
    }

    #[test]
    fn split_keys_equal_reference(log in log(), spec in spec(), policy in policy(), workers in 2u32..5) {
        let expected = reference::evaluate(spec, policy, &metrics(), &log);
        let order = event_order(&log);
        let mut states: Vec<_> = (0..workers)
            .map(|_| WindowState::try_new(spec, policy, metrics()).unwrap())
            .collect();
        let mut changes = Vec::new();
        let mut late = Vec::new();
        let mut missed = Vec::new();
        for (w, state) in states.iter_mut().enumerate() {
            let mine: Vec<_> = order.iter().filter(|(_, i)| log[*i].key % workers == w as u32).collect();
            let mut j = 0;
            while j < mine.len() {
                let s = mine[j].0;
                state.advance(s, &mut changes);
                while j < mine.len() && mine[j].0 == s {
                    let r = &log[mine[j].1];
                    missed.clear();
                    let applied = state.apply(r.key, r.time, &r.input, &mut missed).unwrap();
                    if applied.is_dropped() {
                        late.push((s, r.partition, r.offset, mine[j].1, missed.clone()));
                    }
                    j += 1;
                }
                state.end_step(&mut changes);
            }
            state.finish(&mut changes);
        }
        changes.sort_by(|a, b| a.canonical_cmp(b));
        late.sort_by_key(|l| (l.0, l.1, l.2));
        let late: Vec<_> = late.into_iter().map(|l| (l.3, l.4)).collect();
        prop_assert_eq!(rows(&changes), rows(&expected.changes));
        prop_assert_eq!(&late, &expected.late);
    }

    #[test]
    fn snapshot_restore_is_invisible(log in log(), spec in spec(), policy in policy(), cut in 0usize..200) {
        let mut whole = WindowState::try_new(spec, policy, metrics()).unwrap();
        let expected = evaluate(&mut whole, &log);

        let order = event_order(&log);
        let mut steps: Vec<i64> = order.iter().map(|o| o.0).collect();
        steps.dedup();
        let cut = cut % (steps.len() + 1);
        let mut state = WindowState::try_new(spec, policy, metrics()).unwrap();
        let mut changes = Vec::new();
        let mut missed = Vec::new();
        let mut j = 0;
        for (n, &s) in steps.iter().enumerate() {
            if n == cut {
                let bytes = postcard::to_allocvec(&state.snapshot()).unwrap();
                let snap: Snapshot<u32, _, _> = postcard::from_bytes(&bytes).unwrap();
                state = WindowState::restore(metrics(), snap).unwrap();
            }
            state.advance(s, &mut changes);
            while j < order.len() && order[j].0 == s {
                let r = &log[order[j].1];
                state.apply(r.key, r.time, &r.input, &mut missed).unwrap();
                j += 1;
            }
            state.end_step(&mut changes);
        }
        state.finish(&mut changes);
        prop_assert_eq!(rows(&changes), rows(&expected.changes));
    }

    #[test]
    fn snapshot_split_between_workers_is_invisible(log in log(), spec in spec(), policy in policy(), cut in 0usize..200) {
        // Run to a cut, snapshot, restore the snapshot twice and keep even
        // keys in one copy and odd keys in the other (a restart on two
        // workers); the merged output equals the uninterrupted run.
        let mut whole = WindowState::try_new(spec, policy, metrics()).unwrap();
        let expected = evaluate(&mut whole, &log);
        let order = event_order(&log);
        let mut steps: Vec<i64> = order.iter().map(|o| o.0).collect();
        steps.dedup();
        let cut = cut % (steps.len() + 1);
        let mut first = WindowState::try_new(spec, policy, metrics()).unwrap();
        let mut changes = Vec::new();
        let mut missed = Vec::new();
        let mut j = 0;
        for &s in &steps[..cut] {
            first.advance(s, &mut changes);
            while j < order.len() && order[j].0 == s {
                let r = &log[order[j].1];
                first.apply(r.key, r.time, &r.input, &mut missed).unwrap();
                j += 1;
            }
            first.end_step(&mut changes);
        }
        let snap = first.snapshot();
        for parity in 0..2u32 {
            let mut part = WindowState::restore(metrics(), snap.clone()).unwrap();
            part.retain_keys(|k| k % 2 == parity);
            let mut j = j;
            for &s in &steps[cut..] {
                part.advance(s, &mut changes);
                while j < order.len() && order[j].0 == s {
                    let r = &log[order[j].1];
                    if r.key % 2 == parity {
                        part.apply(r.key, r.time, &r.input, &mut missed).unwrap();
                    }
                    j += 1;
                }
                part.end_step(&mut changes);
            }
            part.finish(&mut changes);
        }
        changes.sort_by(|a, b| a.canonical_cmp(b));
        prop_assert_eq!(rows(&changes), rows(&expected.changes));
    }
}

/// Event times at the i64 extremes never panic; windows that cannot be
/// formed are reported as invalid by both models alike.
#[test]
fn extreme_event_times_are_reported_not_panicking() {
    let times = [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX];
    let log: Log = times
        .iter()
        .enumerate()
        .map(|(i, &time)| LogRecord {
            partition: i as u32 % 2,
            offset: i as u64 / 2,
            key: 1,
            time,
            input: Number::Int(1),
        })
        .collect();
    for spec in [
        WindowSpec::tumbling(1000),
        WindowSpec::sliding(1000, 300),
        WindowSpec::session(1000),
    ] {
        for emit in [EmitMode::Final, EmitMode::Updates] {
            let policy = Policy::new(100, 500, emit);
            let expected = reference::evaluate(spec, policy, &metrics(), &log);
            let mut state = WindowState::try_new(spec, policy, metrics()).unwrap();
            let got = evaluate(&mut state, &log);
            assert_eq!(rows(&got.changes), rows(&expected.changes), "{spec}");
            assert_eq!(got.invalid, expected.invalid, "{spec}");
            assert!(!got.invalid.is_empty(), "{spec}: i64::MAX must be rejected");
        }
    }
}
