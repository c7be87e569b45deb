//! Property tests of the aggregator laws every [`Aggregator`] must obey:
//! `merge` is associative and commutative with `Acc::default()` as identity,
//! and adding records one by one equals merging the accumulators of any
//! split of them. Integer sums are exact (no float drift, no overflow at the
//! i64 extremes).
//!
//! Run with `cargo test -p tidemark-windows --test aggregator_laws`.

use proptest::prelude::*;
use tidemark_windows::{
    AggKind, Aggregator, Count, Max, Mean, Metrics, Min, Number, Sum, SumValue,
};

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        4 => any::<i64>().prop_map(Number::Int),
        1 => (-1e12f64..1e12).prop_map(Number::Float),
    ]
}

fn int() -> impl Strategy<Value = Number> {
    any::<i64>().prop_map(Number::Int)
}

fn fold<A: Aggregator>(agg: &A, xs: &[A::Input]) -> A::Acc {
    let mut acc = A::Acc::default();
    for x in xs {
        agg.add(&mut acc, x);
    }
    acc
}

/// Checks the laws for `agg` on integer inputs, where they hold exactly.
fn laws<A: Aggregator<Input = Number>>(
    agg: &A,
    a: &[Number],
    b: &[Number],
    c: &[Number],
) -> Result<(), TestCaseError>
where
    A::Output: std::fmt::Debug,
{
    let (fa, fb, fc) = (fold(agg, a), fold(agg, b), fold(agg, c));
    // identity
    let mut x = fa.clone();
    agg.merge(&mut x, &A::Acc::default());
    prop_assert_eq!(agg.finish(&x), agg.finish(&fa));
    let mut x = A::Acc::default();
    agg.merge(&mut x, &fa);
    prop_assert_eq!(agg.finish(&x), agg.finish(&fa));
    // commutativity
    let mut ab = fa.clone();
    agg.merge(&mut ab, &fb);
    let mut ba = fb.clone();
    agg.merge(&mut ba, &fa);
    prop_assert_eq!(agg.finish(&ab), agg.finish(&ba));
    // associativity
    let mut ab_c = ab.clone();
    agg.merge(&mut ab_c, &fc);
    let mut bc = fb.clone();
    agg.merge(&mut bc, &fc);
    let mut a_bc = fa.clone();
    agg.merge(&mut a_bc, &bc);
    prop_assert_eq!(agg.finish(&ab_c), agg.finish(&a_bc));
    // add then merge = add all
    let all: Vec<Number> = a.iter().chain(b).chain(c).copied().collect();
    prop_assert_eq!(agg.finish(&fold(agg, &all)), agg.finish(&ab_c));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn builtins_obey_the_laws(
        a in prop::collection::vec(int(), 0..20),
        b in prop::collection::vec(int(), 0..20),
        c in prop::collection::vec(int(), 0..20),
    ) {
        laws(&Count, &a, &b, &c)?;
        laws(&Sum, &a, &b, &c)?;
        laws(&Min, &a, &b, &c)?;
        laws(&Max, &a, &b, &c)?;
        laws(&Mean, &a, &b, &c)?;
        laws(&Metrics::new(&[AggKind::Count, AggKind::Sum, AggKind::Min, AggKind::Max, AggKind::Mean]), &a, &b, &c)?;
    }

    #[test]
    fn integer_sums_are_exact(xs in prop::collection::vec(int(), 0..50)) {
        let exact: i128 = xs.iter().map(|x| match x { Number::Int(i) => *i as i128, _ => 0 }).sum();
        prop_assert_eq!(Sum.finish(&fold(&Sum, &xs)), SumValue::Int(exact));
    }

    #[test]
    fn mixed_sums_and_extremes_are_close(xs in prop::collection::vec(number(), 1..50)) {
        let got = Sum.finish(&fold(&Sum, &xs)).as_f64();
        let expected: f64 = xs.iter().map(|x| x.as_f64()).sum();
        let scale: f64 = xs.iter().map(|x| x.as_f64().abs()).sum::<f64>().max(1.0);
        prop_assert!((got - expected).abs() <= scale * 1e-12, "{got} vs {expected}");
        let min = Min.finish(&fold(&Min, &xs)).unwrap();
        prop_assert!(xs.iter().all(|x| min.total_cmp(*x).is_le()));
        let max = Max.finish(&fold(&Max, &xs)).unwrap();
        prop_assert!(xs.iter().all(|x| max.total_cmp(*x).is_ge()));
    }
}

#[test]
fn float_sums_do_not_drift() {
    // 0.1 added ten million times: naive summation drifts in the 7th digit.
    let xs = vec![Number::Float(0.1); 10_000_000];
    let got = Sum.finish(&fold(&Sum, &xs)).as_f64();
    assert_eq!(got, 1_000_000.0);
}
