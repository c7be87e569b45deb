//! Several aggregations over several named fields ([`Aggs`]): the window
//! state machine against the brute-force reference model for every window
//! kind and emit mode, checkpoints (postcard snapshots) between any two
//! steps, and each aggregation against a naive computation from the
//! records, over any split into partial accumulators merged in any order
//! (exact ones exactly, approximate ones within their stated error).
//!
//! Run with `cargo test -p tidemark-windows --test fields_vs_reference`
//! (`PROPTEST_CASES=N` for more cases).

use std::collections::BTreeSet;

mod common;

use common::{policy, spec};
use proptest::prelude::*;
use tidemark_windows::log::event_order;
use tidemark_windows::sketch::{ApproxDistinct, Quantile};
use tidemark_windows::{
    evaluate, reference, Aggregator, Aggs, AggsAcc, Cell, Cells, Change, Field, LogRecord, Number,
    Rec, Snapshot, WindowState,
};

type Log = Vec<LogRecord<u32, Rec>>;

/// Every function, over three fields with nulls: `amount` (numbers),
/// `user` (text or numbers), `latency` (floats).
const AGGS: &[&str] = &[
    "count",
    "sum",
    "sum(amount)",
    "total=sum(amount)",
    "min(amount)",
    "max(amount)",
    "mean(amount)",
    "count(user)",
    "count_distinct(user)",
    "approx_distinct(user)",
    "quantile(latency, 0.9)",
    "earliest(user)",
    "latest(user)",
];

fn aggs() -> Aggs {
    Aggs::parse(AGGS).unwrap()
}

fn amount() -> impl Strategy<Value = Field> {
    prop_oneof![
        3 => (-50i64..100).prop_map(Field::Int),
        1 => (-5.0f64..5.0).prop_map(Field::Float),
        1 => Just(Field::Null),
    ]
}

fn user() -> impl Strategy<Value = Field> {
    prop_oneof![
        4 => (0u8..6).prop_map(|u| Field::Text(format!("u{u}").into())),
        1 => (0i64..3).prop_map(Field::Int),
        1 => Just(Field::Null),
    ]
}

fn latency() -> impl Strategy<Value = Field> {
    prop_oneof![
        4 => (0.1f64..500.0).prop_map(Field::Float),
        1 => Just(Field::Null),
    ]
}

fn fields() -> impl Strategy<Value = (i64, Field, Field, Field)> {
    (-20i64..50, amount(), user(), latency())
}

/// A partition with disorder and stragglers, as the state machine's own
/// differential tests have it.
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
                fields(),
            ),
            0..30,
        ),
    )
        .prop_map(move |(start, step, recs)| {
            recs.into_iter()
                .enumerate()
                .map(|(i, (key, disorder, straggler, extra, f))| {
                    let arrival = start + i as i64 * step;
                    let time = arrival
                        - if straggler {
                            disorder + extra
                        } else {
                            disorder
                        };
                    LogRecord {
                        partition: p,
                        offset: i as u64,
                        key,
                        time,
                        input: Rec {
                            value: Number::Int(f.0),
                            fields: [f.1, f.2, f.3].into_iter().collect(),
                            order: (time, p, i as u64),
                        },
                    }
                })
                .collect()
        })
}

fn log() -> impl Strategy<Value = Log> {
    (1u32..4, 1u32..5).prop_flat_map(|(parts, keys)| {
        (0..parts)
            .map(|p| partition(p, keys))
            .collect::<Vec<_>>()
            .prop_map(|ps| ps.into_iter().flatten().collect())
    })
}

fn rows(changes: &[Change<u32, Cells>]) -> Vec<String> {
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

/// What each aggregation of [`AGGS`] should say about `records`, computed
/// directly. Quantiles and approximate distinct counts are checked for
/// accuracy separately; here they are `None`.
fn naive(records: &[&Rec]) -> Vec<Option<Cell>> {
    let amounts: Vec<Number> = records
        .iter()
        .filter_map(|r| r.fields[0].number())
        .collect();
    let users: Vec<&Field> = records
        .iter()
        .map(|r| &r.fields[1])
        .filter(|f| !f.is_null())
        .collect();
    let sum = |values: &[Number]| -> Cell {
        if values.is_empty() {
            return Cell::Null;
        }
        if values.iter().all(|v| matches!(v, Number::Int(_))) {
            Cell::Int(values.iter().map(|v| v.as_f64() as i128).sum())
        } else {
            // The engine sums exactly (compensated); a plain sum of these
            // few small values is exact enough to compare within 1e-9.
            Cell::Float(values.iter().map(|v| v.as_f64()).sum())
        }
    };
    let extreme = |want: std::cmp::Ordering| -> Cell {
        let mut best: Option<Number> = None;
        for &v in &amounts {
            if best.is_none_or(|b| v.total_cmp(b) == want) {
                best = Some(v);
            }
        }
        match best {
            None => Cell::Null,
            Some(Number::Int(i)) => Cell::Int(i128::from(i)),
            Some(Number::Float(f)) => Cell::Float(f),
        }
    };
    let by_order = |earliest: bool| -> Cell {
        let mut with: Vec<&&Rec> = records.iter().filter(|r| !r.fields[1].is_null()).collect();
        with.sort_by_key(|r| r.order);
        let pick = if earliest { with.first() } else { with.last() };
        pick.map_or(Cell::Null, |r| r.fields[1].clone().into())
    };
    let values: Vec<Number> = records.iter().map(|r| r.value).collect();
    let mean = match sum(&amounts) {
        Cell::Null => Cell::Null,
        Cell::Int(i) => Cell::Float(i as f64 / amounts.len() as f64),
        Cell::Float(f) => Cell::Float(f / amounts.len() as f64),
        other => other,
    };
    vec![
        Some(Cell::Int(records.len() as i128)),
        Some(sum(&values)),
        Some(sum(&amounts)),
        Some(sum(&amounts)),
        Some(extreme(std::cmp::Ordering::Less)),
        Some(extreme(std::cmp::Ordering::Greater)),
        Some(mean),
        Some(Cell::Int(users.len() as i128)),
        Some(Cell::Int(
            users.iter().collect::<BTreeSet<_>>().len() as i128
        )),
        None,
        None,
        Some(by_order(true)),
        Some(by_order(false)),
    ]
}

fn close(got: &Cell, want: &Cell) -> bool {
    match (got, want) {
        (Cell::Float(a), Cell::Float(b)) => (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
        (a, b) => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200),
        ..ProptestConfig::default()
    })]

    /// Every window kind and emit mode: the state machine with several
    /// aggregations over several fields gives the reference's rows.
    #[test]
    fn state_equals_reference(log in log(), spec in spec(), policy in policy()) {
        let expected = reference::evaluate(spec, policy, &aggs(), &log);
        let mut state = WindowState::try_new(spec, policy, aggs()).unwrap();
        let got = evaluate(&mut state, &log);
        prop_assert_eq!(rows(&got.changes), rows(&expected.changes));
        prop_assert_eq!(&got.late, &expected.late);
        prop_assert_eq!(state.open_states(), 0);
    }

    /// A checkpoint between any two steps (the accumulators, sketches
    /// included, through postcard) changes nothing.
    #[test]
    fn snapshots_keep_every_accumulator(log in log(), spec in spec(), policy in policy(), cut in 0usize..100) {
        let mut whole = WindowState::try_new(spec, policy, aggs()).unwrap();
        let expected = evaluate(&mut whole, &log);
        let order = event_order(&log);
        let mut steps: Vec<i64> = order.iter().map(|o| o.0).collect();
        steps.dedup();
        let cut = cut % (steps.len() + 1);
        let mut state = WindowState::try_new(spec, policy, aggs()).unwrap();
        let (mut changes, mut missed, mut j) = (Vec::new(), Vec::new(), 0);
        for (n, &s) in steps.iter().enumerate() {
            if n == cut {
                let bytes = postcard::to_allocvec(&state.snapshot()).unwrap();
                let snap: Snapshot<u32, AggsAcc, Cells> = postcard::from_bytes(&bytes).unwrap();
                state = WindowState::restore(aggs(), snap).unwrap();
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

    /// Each aggregation against a direct computation, with the records
    /// spread over partial accumulators (panes, sessions, workers) merged
    /// in any order.
    #[test]
    fn each_aggregation_is_what_it_says(
        records in prop::collection::vec((fields(), -100i64..100, 0u32..3), 0..120),
        parts in 1usize..5,
        seed in any::<u64>(),
    ) {
        let recs: Vec<Rec> = records
            .iter()
            .enumerate()
            .map(|(i, (f, t, p))| Rec {
                value: Number::Int(f.0),
                fields: [f.1.clone(), f.2.clone(), f.3.clone()].into_iter().collect(),
                order: (*t, *p, i as u64),
            })
            .collect();
        let aggs = aggs();
        let mut accs = vec![AggsAcc::default(); parts];
        for (i, r) in recs.iter().enumerate() {
            let at = (seed.wrapping_mul(i as u64 + 1) >> 7) as usize % parts;
            aggs.add(&mut accs[at], r);
        }
        let mut acc = AggsAcc::default();
        for i in 0..parts {
            aggs.merge(&mut acc, &accs[(i + seed as usize) % parts]);
        }
        let got = aggs.finish(&acc).0;
        let all: Vec<&Rec> = recs.iter().collect();
        for (i, (want, got)) in naive(&all).iter().zip(&got).enumerate() {
            if let Some(want) = want {
                prop_assert!(close(got, want), "{}: got {:?}, want {:?}", AGGS[i], got, want);
            }
        }
        // approx_distinct within four standard errors (and exact-ish when
        // tiny); quantile within the relative accuracy of a true quantile.
        let distinct: BTreeSet<&Field> = recs.iter().map(|r| &r.fields[1]).filter(|f| !f.is_null()).collect();
        let Cell::Int(estimate) = got[9] else { panic!("{:?}", got[9]) };
        let n = distinct.len() as f64;
        prop_assert!((estimate as f64 - n).abs() <= 4.0 * ApproxDistinct::STANDARD_ERROR * n + 1.0,
            "approx_distinct {} for {}", estimate, n);
        let mut lat: Vec<f64> = recs.iter().filter_map(|r| r.fields[2].number()).map(Number::as_f64).collect();
        lat.sort_by(f64::total_cmp);
        match (&got[10], lat.is_empty()) {
            (Cell::Null, true) => {}
            (Cell::Float(q), false) => {
                let k = (0.9 * (lat.len() as f64 - 1.0)) as usize;
                let exact = lat[k];
                prop_assert!((q - exact).abs() <= Quantile::RELATIVE_ACCURACY * exact + 1e-9,
                    "p90 {} for exact {}", q, exact);
            }
            (other, _) => prop_assert!(false, "quantile gave {:?}", other),
        }
    }
}
