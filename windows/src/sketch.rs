//! Aggregations kept as sketches: [`Quantile`], a window's q-quantile from
//! a DDSketch with a relative accuracy of 1 %.
//!
//! A sketch merges like any accumulator (panes of sliding windows,
//! merging sessions, workers), and its answer does not depend on the order
//! values were added or sketches merged: the same log gives the same rows
//! whatever the batching or the number of workers.
//!
//! ```
//! use tidemark_windows::{Aggregator, Number, Quantile};
//!
//! let p99 = Quantile::new(0.99).unwrap();
//! let mut acc = Default::default();
//! for v in 1..=1000 {
//!     p99.add(&mut acc, &Number::Int(v));
//! }
//! let got = p99.finish(&acc).unwrap();
//! // The exact 0.99-quantile (rank ⌊0.99 × 999⌋ of the sorted values) is
//! // 990; the sketch is within 1 % of it.
//! assert!((got - 990.0).abs() <= 0.01 * 990.0, "{got}");
//! ```

use serde::{Deserialize, Serialize};
use sketches_ddsketch::DDSketch;

use crate::aggregate::{Aggregator, Number};

/// The q-quantile of a window's values: the value at rank
/// ⌊q × (n − 1)⌋ of its n values in ascending order, within 1 % of it
/// ([`Quantile::RELATIVE_ACCURACY`]). Values that are not finite (NaN,
/// ±∞) are skipped, as a null is; a window with no finite value has no
/// quantile (`None`).
///
/// Values smaller than 10⁻⁹ in magnitude count as 0; a window whose values
/// of one sign span more than about 17 orders of magnitude loses accuracy
/// for its smallest ones (the sketch keeps at most 2 048 buckets per
/// sign).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantile {
    q: f64,
}

impl Quantile {
    /// The relative accuracy of every quantile.
    pub const RELATIVE_ACCURACY: f64 = 0.01;

    /// The `q`-quantile, `q` from 0 (the smallest value) to 1 (the
    /// largest); `None` for any other `q`.
    pub fn new(q: f64) -> Option<Quantile> {
        (0.0..=1.0).contains(&q).then_some(Quantile { q })
    }

    /// Its `q`.
    pub fn q(&self) -> f64 {
        self.q
    }
}

/// The accumulator of a [`Quantile`]: a DDSketch of the values so far.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuantileSketch(DDSketch);

impl std::fmt::Debug for QuantileSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuantileSketch")
            .field("count", &self.0.count())
            .field("min", &self.0.min())
            .field("max", &self.0.max())
            .finish()
    }
}

impl QuantileSketch {
    /// The number of (finite) values in it.
    pub fn count(&self) -> usize {
        self.0.count()
    }
}

impl Aggregator for Quantile {
    type Input = Number;
    type Acc = QuantileSketch;
    type Output = Option<f64>;

    fn add(&self, acc: &mut QuantileSketch, input: &Number) {
        let v = input.as_f64();
        if v.is_finite() {
            acc.0.add(v);
        }
    }

    fn merge(&self, acc: &mut QuantileSketch, other: &QuantileSketch) {
        // Every sketch here has the default configuration, the one
        // condition under which merging can fail.
        let _ = acc.0.merge(&other.0);
    }

    fn finish(&self, acc: &QuantileSketch) -> Option<f64> {
        acc.0.quantile(self.q).ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The exact quantile the sketch approximates.
    fn exact(values: &[f64], q: f64) -> Option<f64> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        (n > 0).then(|| sorted[(q * (n as f64 - 1.0)) as usize])
    }

    fn sketch_of(agg: &Quantile, values: &[f64]) -> QuantileSketch {
        let mut acc = QuantileSketch::default();
        for v in values {
            agg.add(&mut acc, &Number::Float(*v));
        }
        acc
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -1.0e6f64..1.0e6,
            2 => (0i64..1000).prop_map(|i| i as f64),
            1 => Just(0.0),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
        ]
    }

    proptest! {
        #[test]
        fn within_the_stated_accuracy_of_the_exact_quantile(
            values in proptest::collection::vec(value(), 0..400),
            q in prop_oneof![Just(0.0), Just(0.5), Just(0.9), Just(0.99), Just(1.0), 0.0f64..=1.0],
        ) {
            let agg = Quantile::new(q).unwrap();
            let got = agg.finish(&sketch_of(&agg, &values));
            match (got, exact(&values, q)) {
                (None, None) => {}
                (Some(got), Some(want)) => {
                    // Values below 1e-9 in magnitude are kept as 0.
                    let tolerance = Quantile::RELATIVE_ACCURACY * want.abs() + 1e-9;
                    prop_assert!((got - want).abs() <= tolerance, "q {}: got {}, exact {}", q, got, want);
                }
                (got, want) => prop_assert!(false, "got {:?}, exact {:?}", got, want),
            }
        }

        #[test]
        fn the_answer_does_not_depend_on_order_or_merge_tree(
            values in proptest::collection::vec(value(), 0..300),
            cuts in proptest::collection::vec(0usize..300, 0..6),
            q in 0.0f64..=1.0,
        ) {
            let agg = Quantile::new(q).unwrap();
            let whole = agg.finish(&sketch_of(&agg, &values));
            // The values split at `cuts` into parts, sketched apart and
            // merged right to left; and reversed, in one sketch.
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (values.len() + 1)).collect();
            bounds.push(0);
            bounds.push(values.len());
            bounds.sort_unstable();
            let mut merged = QuantileSketch::default();
            for pair in bounds.windows(2).rev() {
                let part = sketch_of(&agg, &values[pair[0]..pair[1]]);
                let mut next = part;
                agg.merge(&mut next, &merged);
                merged = next;
            }
            let reversed: Vec<f64> = values.iter().rev().copied().collect();
            prop_assert_eq!(agg.finish(&merged).map(f64::to_bits), whole.map(f64::to_bits));
            prop_assert_eq!(agg.finish(&sketch_of(&agg, &reversed)).map(f64::to_bits), whole.map(f64::to_bits));
        }
    }

    #[test]
    fn q_outside_zero_to_one_is_refused() {
        assert!(Quantile::new(1.5).is_none());
        assert!(Quantile::new(-0.1).is_none());
        assert!(Quantile::new(f64::NAN).is_none());
        assert_eq!(Quantile::new(0.5).map(|q| q.q()), Some(0.5));
    }

    #[test]
    fn a_sketch_survives_a_snapshot() {
        let agg = Quantile::new(0.9).unwrap();
        let acc = sketch_of(&agg, &(1..=500).map(f64::from).collect::<Vec<_>>());
        let bytes = postcard::to_stdvec(&acc).unwrap();
        let back: QuantileSketch = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(agg.finish(&back), agg.finish(&acc));
        assert_eq!(back.count(), 500);
    }
}
