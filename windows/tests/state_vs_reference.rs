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
//! - `snapshot_split_between_workers_is_invisible`: a snapshot restored on
//!   two workers, each keeping its share of the keys.
//! - `absorbing_split_snapshots_is_invisible`: a snapshot split by key into
//!   2–3 states, advanced to one frontier and absorbed back into one state
//!   ([`WindowState::absorb`]) continues exactly as the unsplit state.
//! - `worker_snapshots_absorbed_and_resplit_equal_reference`: per-worker
//!   snapshots at a cut (each worker stepping only at its own records'
//!   stream times) merged into one state and restored on another number of
//!   workers, as a checkpoint is resumed; the rows equal the reference.
//! - `absorb_refuses_*`: the states [`WindowState::absorb`] cannot merge.
//!
//! Run with `cargo test -p tidemark-windows --test state_vs_reference`
//! (`PROPTEST_CASES=N` for more cases).

mod common;

use common::{policy, spec};
use proptest::prelude::*;
use tidemark_windows::log::event_order;
use tidemark_windows::{
    evaluate, reference, AggKind, Applied, Change, EmitMode, LogRecord, MetricValues, Metrics,
    MetricsAcc, Number, Policy, Snapshot, WindowError, WindowSpec, WindowState,
};

type Log = Vec<LogRecord<u32, Number>>;
type State = WindowState<u32, Metrics>;
type Snap = Snapshot<u32, MetricsAcc, MetricValues>;
type Row = Change<u32, MetricValues>;

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

/// Window specs that also reach far beyond the timer ring (4096 ms ahead of
/// the watermark): windows and gaps of several seconds.
fn wide_spec() -> impl Strategy<Value = WindowSpec> {
    prop_oneof![
        4 => spec(),
        1 => (4_000i64..9_000, 1i64..4, 0u8..3).prop_map(|(size, div, kind)| match kind {
            0 => WindowSpec::tumbling(size),
            1 => WindowSpec::sliding(size, size / div),
            _ => WindowSpec::session(size),
        }),
    ]
}

/// Policies that also keep state for several seconds past a window's end.
fn wide_policy() -> impl Strategy<Value = Policy> {
    (
        policy(),
        prop_oneof![3 => Just(None), 1 => (4_000i64..8_000).prop_map(Some)],
    )
        .prop_map(|(policy, long)| match long {
            Some(lateness) => Policy { lateness, ..policy },
            None => policy,
        })
}

/// The distinct stream times of `order`: one step each.
fn step_times(order: &[(i64, usize)]) -> Vec<i64> {
    let mut steps: Vec<i64> = order.iter().map(|o| o.0).collect();
    steps.dedup();
    steps
}

/// One step at stream time `s`: advance, apply the records of `order` from
/// `*j` whose stream time is `s` and whose key `mine` accepts (recording
/// what became of each), end the step.
#[allow(clippy::too_many_arguments)]
fn step(
    state: &mut State,
    log: &Log,
    order: &[(i64, usize)],
    j: &mut usize,
    s: i64,
    mine: impl Fn(u32) -> bool,
    changes: &mut Vec<Row>,
    applied: &mut Vec<(usize, Applied)>,
) {
    state.advance(s, changes);
    let mut missed = Vec::new();
    while *j < order.len() && order[*j].0 == s {
        let i = order[*j].1;
        let r = &log[i];
        if mine(r.key) {
            applied.push((
                i,
                state.apply(r.key, r.time, &r.input, &mut missed).unwrap(),
            ));
        }
        *j += 1;
    }
    state.end_step(changes);
}

/// `snap` through its postcard encoding (a checkpoint's form).
fn reencode(snap: &Snap) -> Snap {
    postcard::from_bytes(&postcard::to_allocvec(snap).unwrap()).unwrap()
}

/// A state of `spec` and `policy` with `records` (key, time) applied in
/// one step at stream time `at`.
fn state_with(spec: WindowSpec, policy: Policy, at: i64, records: &[(u32, i64)]) -> State {
    let mut state = WindowState::try_new(spec, policy, metrics()).unwrap();
    let mut out = Vec::new();
    state.advance(at, &mut out);
    for &(key, time) in records {
        state
            .apply(key, time, &Number::Int(1), &mut Vec::new())
            .unwrap();
    }
    state.end_step(&mut out);
    state
}

/// Every row `state` still emits: it advances to `upto`, then finishes.
fn rest(mut state: State, upto: i64) -> Vec<Row> {
    let mut out = Vec::new();
    state.advance(upto, &mut out);
    state.finish(&mut out);
    out
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

    #[test]
    fn absorbing_split_snapshots_is_invisible(
        log in log(),
        spec in wide_spec(),
        policy in wide_policy(),
        cut in 0usize..200,
        parts in 2usize..4,
        owner in prop::collection::vec(0usize..3, 6),
        encode in any::<bool>(),
        into_fresh in any::<bool>(),
        stay in any::<bool>(),
        back in 0i64..300,
    ) {
        // Run one state to a cut and snapshot it; restore the snapshot once
        // per part (through postcard or not), keep each part's keys, advance
        // every part to the same frontier (at most the next step's) and
        // absorb them into one state (the first part, or a new state at
        // that frontier, as a resume does). That state and the original then
        // run the rest of the log: the same rows, the same late records.
        let order = event_order(&log);
        let steps = step_times(&order);
        let cut = cut % (steps.len() + 1);
        let mut original = WindowState::try_new(spec, policy, metrics()).unwrap();
        let (mut before, mut applied_before) = (Vec::new(), Vec::new());
        let mut j = 0;
        for &s in &steps[..cut] {
            step(&mut original, &log, &order, &mut j, s, |_| true, &mut before, &mut applied_before);
        }
        let snap = original.snapshot();
        let at = original.frontier();
        let next = steps.get(cut).copied().unwrap_or(at.saturating_add(1_000));
        let frontier = if stay { at } else { next.saturating_sub(back).max(at) };
        let owner_of = |k: u32| owner[k as usize] % parts;

        let mut got = Vec::new();
        let mut split: Vec<State> = (0..parts)
            .map(|p| {
                let snap = if encode { reencode(&snap) } else { snap.clone() };
                let mut part = WindowState::restore(metrics(), snap).unwrap();
                part.retain_keys(|k| owner_of(*k) == p);
                part.advance(frontier, &mut got);
                part
            })
            .collect();
        // The parts' rows merged in canonical order, as a sink merges workers.
        got.sort_by(|a, b| a.canonical_cmp(b));
        let keys: usize = split.iter().map(|p| p.keys()).sum();
        let mut merged = if into_fresh {
            let mut fresh = WindowState::try_new(spec, policy, metrics()).unwrap();
            let mut none = Vec::new();
            fresh.advance(frontier, &mut none);
            prop_assert!(none.is_empty());
            fresh
        } else {
            split.remove(0)
        };
        for part in split {
            merged.absorb(part).unwrap();
        }
        prop_assert_eq!(merged.keys(), keys);
        prop_assert_eq!(merged.frontier(), frontier);

        let (mut expected, mut applied_expected) = (Vec::new(), Vec::new());
        let mut applied_got = Vec::new();
        let from = j;
        for &s in &steps[cut..] {
            step(&mut original, &log, &order, &mut j, s, |_| true, &mut expected, &mut applied_expected);
        }
        original.finish(&mut expected);
        let mut j = from;
        for &s in &steps[cut..] {
            step(&mut merged, &log, &order, &mut j, s, |_| true, &mut got, &mut applied_got);
        }
        merged.finish(&mut got);
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(&applied_got, &applied_expected);
        prop_assert_eq!(merged.open_states(), 0);
    }

    #[test]
    fn worker_snapshots_absorbed_and_resplit_equal_reference(
        log in log(),
        spec in wide_spec(),
        policy in wide_policy(),
        cut in 0usize..200,
        before in 1u32..4,
        after in 1u32..4,
    ) {
        // `before` workers, each stepping only at its own records' stream
        // times, run to a cut time and snapshot; the snapshots are restored,
        // advanced to just below the cut, absorbed into one state, and that
        // state restored on `after` workers that each keep their keys and
        // run the rest. All rows merged in canonical order equal the
        // reference, and so do the late records.
        let expected = reference::evaluate(spec, policy, &metrics(), &log);
        let order = event_order(&log);
        let steps = step_times(&order);
        let cut = cut % (steps.len() + 1);
        let cut_time = steps.get(cut).copied().unwrap_or_else(|| steps.last().map_or(0, |s| s + 1));
        let (head, tail) = order.split_at(order.partition_point(|o| o.0 < cut_time));
        let mut changes = Vec::new();
        let mut applied = Vec::new();
        let run = |state: &mut State, part: &[(i64, usize)], mine: &dyn Fn(u32) -> bool,
                   changes: &mut Vec<Row>, applied: &mut Vec<(usize, Applied)>| {
            let own: Vec<(i64, usize)> = part.iter().copied().filter(|o| mine(log[o.1].key)).collect();
            let mut j = 0;
            for s in step_times(&own) {
                step(state, &log, &own, &mut j, s, |_| true, changes, applied);
            }
        };
        let snapshots: Vec<Vec<u8>> = (0..before)
            .map(|w| {
                let mut state = WindowState::try_new(spec, policy, metrics()).unwrap();
                run(&mut state, head, &|k| k % before == w, &mut changes, &mut applied);
                postcard::to_allocvec(&state.snapshot()).unwrap()
            })
            .collect();

        let below = cut_time - 1;
        let mut merged = WindowState::try_new(spec, policy, metrics()).unwrap();
        merged.advance(below, &mut changes);
        for bytes in &snapshots {
            let snap: Snap = postcard::from_bytes(bytes).unwrap();
            let mut state = WindowState::restore(metrics(), snap).unwrap();
            state.advance(below, &mut changes);
            merged.absorb(state).unwrap();
        }
        let resumed = merged.snapshot();
        for w in 0..after {
            let mut state = WindowState::restore(metrics(), reencode(&resumed)).unwrap();
            state.retain_keys(|k| k % after == w);
            run(&mut state, tail, &|k| k % after == w, &mut changes, &mut applied);
            state.finish(&mut changes);
        }
        changes.sort_by(|a, b| a.canonical_cmp(b));
        prop_assert_eq!(rows(&changes), rows(&expected.changes));
        let order_of = |i: usize| order.iter().position(|o| o.1 == i).unwrap();
        applied.sort_by_key(|a| order_of(a.0));
        let late: Vec<usize> = applied.iter().filter(|a| a.1.is_dropped()).map(|a| a.0).collect();
        let expected_late: Vec<usize> = expected.late.iter().map(|l| l.0).collect();
        prop_assert_eq!(late, expected_late);
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

/// States of different window specs or policies are refused as a
/// mismatch, and the state absorbing is left as it was.
#[test]
fn absorb_refuses_another_spec_or_policy() {
    let policy = Policy::new(10, 100, EmitMode::Final);
    let cases = [
        (WindowSpec::tumbling(100), policy),
        (WindowSpec::sliding(100, 50), policy),
        (
            WindowSpec::Tumbling {
                size: 100,
                offset: 7,
            },
            policy,
        ),
        (WindowSpec::session(100), policy),
        (WindowSpec::tumbling(200), policy),
        (
            WindowSpec::tumbling(200),
            Policy::new(10, 100, EmitMode::Updates),
        ),
        (
            WindowSpec::tumbling(200),
            Policy::new(11, 100, EmitMode::Final),
        ),
        (
            WindowSpec::tumbling(200),
            Policy::new(10, 0, EmitMode::Final),
        ),
    ];
    for (a, &(spec_a, policy_a)) in cases.iter().enumerate() {
        for (b, &(spec_b, policy_b)) in cases.iter().enumerate() {
            if a == b {
                continue;
            }
            let mut state = state_with(spec_a, policy_a, 50, &[(1, 40)]);
            let control = state_with(spec_a, policy_a, 50, &[(1, 40)]);
            let other = state_with(spec_b, policy_b, 50, &[(2, 45)]);
            let err = state.absorb(other).unwrap_err();
            assert!(
                matches!(err, WindowError::SnapshotMismatch),
                "{spec_a} {policy_a:?} absorbing {spec_b} {policy_b:?}: {err}"
            );
            assert_eq!(state.keys(), 1);
            assert_eq!(rest(state, 60), rest(control, 60));
        }
    }
}

/// States at different frontiers are refused, naming both frontiers.
#[test]
fn absorb_refuses_another_frontier() {
    let spec = WindowSpec::tumbling(100);
    let policy = Policy::new(10, 0, EmitMode::Final);
    let mut state = state_with(spec, policy, 50, &[(1, 40)]);
    let control = state_with(spec, policy, 50, &[(1, 40)]);
    let other = state_with(spec, policy, 70, &[(2, 60)]);
    let err = state.absorb(other).unwrap_err();
    assert!(matches!(err, WindowError::Absorb(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "the window states cannot be merged: the states are at different frontiers (50 and 70)"
    );
    assert_eq!(state.frontier(), 50);
    assert_eq!(rest(state, 80), rest(control, 80));
    // An empty state is refused too: only the frontier differs.
    let mut state = state_with(spec, policy, 50, &[(1, 40)]);
    let empty = state_with(spec, policy, 51, &[]);
    assert!(matches!(state.absorb(empty), Err(WindowError::Absorb(_))));
}

/// States holding a key in common are refused, and none of the other
/// state's keys is moved.
#[test]
fn absorb_refuses_a_shared_key() {
    for spec in [
        WindowSpec::tumbling(100),
        WindowSpec::sliding(100, 25),
        WindowSpec::session(30),
    ] {
        for emit in [EmitMode::Final, EmitMode::Updates] {
            let policy = Policy::new(10, 50, emit);
            let mine = [(1, 10), (2, 20), (2, 40)];
            let mut state = state_with(spec, policy, 50, &mine);
            let control = state_with(spec, policy, 50, &mine);
            let other = state_with(spec, policy, 50, &[(3, 30), (2, 45), (4, 5)]);
            let err = state.absorb(other).unwrap_err();
            assert!(matches!(err, WindowError::Absorb(_)), "{spec}: {err}");
            assert_eq!(
                err.to_string(),
                "the window states cannot be merged: the states hold a key in common"
            );
            assert_eq!(state.keys(), 2, "{spec}");
            assert_eq!(state.open_states(), control.open_states(), "{spec}");
            assert_eq!(rest(state, 500), rest(control, 500), "{spec} {emit:?}");
        }
    }
}

/// Absorbing moves the other state's timers: its windows fire and its
/// state is dropped when the watermark reaches them, whether their times
/// lie in the timer ring of the absorbing state, beyond it, or below its
/// base (a late session whose end the watermark had already passed).
#[test]
fn absorbed_keys_wake_on_time() {
    let at = 20_000;
    let cases = [
        (WindowSpec::tumbling(100), 0, [(1, at)], [(2, at)]),
        (WindowSpec::tumbling(10_000), 0, [(1, at)], [(2, at)]),
        (
            WindowSpec::sliding(9_000, 3_000),
            500,
            [(1, at)],
            [(2, at - 10)],
        ),
        (WindowSpec::session(9_000), 0, [(1, at)], [(2, at)]),
        (WindowSpec::session(100), 1_000, [(1, at)], [(2, at - 150)]),
        (
            WindowSpec::session(100),
            6_000,
            [(1, at - 120)],
            [(2, at - 150)],
        ),
    ];
    for (spec, lateness, mine, theirs) in cases {
        let policy = Policy::new(0, lateness, EmitMode::Final);
        let both: Vec<_> = mine.iter().chain(&theirs).copied().collect();
        for restored_absorbs in [false, true] {
            // One of the two states was restored from its encoding at the
            // frontier (its timers all wait outside a ring that has not
            // started); the other has advanced (its ring starts just above
            // the watermark).
            let advanced = state_with(spec, policy, at, &mine);
            let restored = state_with(spec, policy, at, &theirs);
            let restored = WindowState::restore(metrics(), reencode(&restored.snapshot())).unwrap();
            let mut merged = if restored_absorbs {
                let mut merged = restored;
                merged.absorb(advanced).unwrap();
                merged
            } else {
                let mut merged = advanced;
                merged.absorb(restored).unwrap();
                merged
            };
            let mut whole = state_with(spec, policy, at, &both);
            assert_eq!(merged.keys(), 2);
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for upto in [
                at + 50,
                at + 100,
                at + 1_500,
                at + 5_000,
                at + 10_000,
                at + 30_000,
            ] {
                merged.advance(upto, &mut got);
                whole.advance(upto, &mut want);
                assert_eq!(got, want, "{spec} at {upto}");
                assert_eq!(merged.keys(), whole.keys(), "{spec} at {upto}");
                assert_eq!(
                    merged.open_states(),
                    whole.open_states(),
                    "{spec} at {upto}"
                );
            }
            // Every key woke until it was dropped, the absorbed one too.
            assert_eq!(merged.keys(), 0, "{spec}");
        }
    }
}

#[test]
fn the_oldest_open_window_is_the_earliest_end_the_watermark_has_not_passed() {
    let policy = Policy::new(0, 0, EmitMode::Final);
    // Keys 1 and 2 in [0, 1000), key 3 in [1000, 2000).
    let mut state = state_with(
        WindowSpec::tumbling(1_000),
        policy,
        300,
        &[(1, 100), (2, 200), (3, 1_500), (1, 1_200)],
    );
    assert_eq!(state.oldest_open_window(), Some((1_000, 2)));
    let mut out = Vec::new();
    state.advance(1_600, &mut out);
    // [0, 1000) fired: keys 1 and 3 in [1000, 2000).
    assert_eq!(state.oldest_open_window(), Some((2_000, 2)));
    state.advance(2_500, &mut out);
    assert_eq!(state.oldest_open_window(), None);
    // Sessions: the earliest open session's end.
    let sessions = state_with(
        WindowSpec::Session { gap: 100 },
        policy,
        10,
        &[(1, 10), (2, 50), (2, 400)],
    );
    assert_eq!(sessions.oldest_open_window(), Some((110, 1)));
}
