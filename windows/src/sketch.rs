//! Aggregations kept as sketches: [`Quantile`], a window's q-quantile from
//! a DDSketch with a relative accuracy of 1 %, and [`ApproxDistinct`], the
//! number of distinct values from a HyperLogLog with a standard error of
//! 1.6 %.
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

use std::hash::Hasher;

use hyperloglog::HyperLogLog;
use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;
use sketches_ddsketch::DDSketch;

use crate::aggregate::{Aggregator, Number};
use crate::fields::Field;

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

/// The number of distinct values in a window, estimated by a HyperLogLog
/// of 4 096 registers: relative standard error 1.04 / √4096 ≈ 1.6 %
/// ([`ApproxDistinct::STANDARD_ERROR`]); exact-looking for a handful of
/// values, within a few percent at any size. Values are distinct as
/// [`Number`]s are: `1` and `1.0` are two values. Each sketch holds 4 KiB,
/// whatever the number of values: for small windows an exact distinct
/// count is cheaper.
///
/// The estimate depends only on the set of values, never on the order they
/// came in or how windows' sketches were merged: values are hashed with
/// SipHash-1-3 under a fixed key over their canonical bytes, the same on
/// every platform.
///
/// ```
/// use tidemark_windows::{Aggregator, ApproxDistinct, Number};
///
/// let mut acc = Default::default();
/// for v in 0..10_000 {
///     ApproxDistinct.add(&mut acc, &Number::Int(v % 2_500));
/// }
/// let estimate = ApproxDistinct.finish(&acc);
/// assert!((estimate as f64 - 2_500.0).abs() < 2_500.0 * 0.05, "{estimate}");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApproxDistinct;

impl ApproxDistinct {
    /// The relative standard error of the estimate.
    pub const STANDARD_ERROR: f64 = 0.01625;
}

/// The error rate that makes the crate's HyperLogLog use 2^12 registers
/// (it takes p = ⌈ln((1.04 / rate)²)⌉).
const ERROR_RATE_P12: f64 = 1.04 / 300.0;

/// The fixed key of the sketches' own hasher (unused: values are hashed
/// before they are inserted), equal in every sketch so that they merge.
const SKETCH_SEED: u128 = 0x7469_6465_6d61_726b_6469_7374_696e_6374;

/// The key of the hash values are inserted by.
const VALUE_KEY: (u64, u64) = (0x7469_6465_6d61_726b, 0x6868_6c6c_7631_0000);

/// The accumulator of an [`ApproxDistinct`]: a HyperLogLog of the values
/// so far.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DistinctSketch(HyperLogLog);

impl Default for DistinctSketch {
    fn default() -> Self {
        DistinctSketch(HyperLogLog::new_deterministic(ERROR_RATE_P12, SKETCH_SEED))
    }
}

impl std::fmt::Debug for DistinctSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistinctSketch")
            .field("estimate", &self.0.len())
            .finish()
    }
}

/// The hash of a value: SipHash-1-3 over a type tag and its bytes in
/// little-endian order, so the same on every platform.
fn value_hash(value: &Number) -> u64 {
    let mut h = SipHasher13::new_with_keys(VALUE_KEY.0, VALUE_KEY.1);
    match value {
        Number::Int(i) => {
            h.write(&[0]);
            h.write(&i.to_le_bytes());
        }
        Number::Float(f) => {
            h.write(&[1]);
            h.write(&f.to_bits().to_le_bytes());
        }
    }
    h.finish()
}

/// The hash of a record field: a number as [`value_hash`] has it, text
/// under its own tag (so `"1"` and `1` are two values).
fn field_hash(value: &Field) -> Option<u64> {
    match value {
        Field::Null => None,
        Field::Int(i) => Some(value_hash(&Number::Int(*i))),
        Field::Float(f) => Some(value_hash(&Number::Float(*f))),
        Field::Text(t) => {
            let mut h = SipHasher13::new_with_keys(VALUE_KEY.0, VALUE_KEY.1);
            h.write(&[2]);
            h.write(t.as_bytes());
            Some(h.finish())
        }
    }
}

impl DistinctSketch {
    /// Adds one non-null field (a null adds nothing).
    pub(crate) fn add_field(&mut self, value: &Field) {
        if let Some(hash) = field_hash(value) {
            self.0.insert_by_hash_value(hash);
        }
    }

    /// Folds another sketch in.
    pub(crate) fn merge(&mut self, other: &DistinctSketch) {
        self.0.merge(&other.0);
    }

    /// The estimated number of distinct values.
    pub fn estimate(&self) -> u64 {
        self.0.len().round() as u64
    }
}

impl QuantileSketch {
    /// Adds one value (a non-finite one adds nothing).
    pub(crate) fn add_value(&mut self, v: f64) {
        if v.is_finite() {
            self.0.add(v);
        }
    }

    /// Folds another sketch in.
    pub(crate) fn merge(&mut self, other: &QuantileSketch) {
        // Every sketch here has the default configuration, the one
        // condition under which merging can fail.
        let _ = self.0.merge(&other.0);
    }

    /// The `q`-quantile of the values, `None` when there are none.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }
}

impl Aggregator for ApproxDistinct {
    type Input = Number;
    type Acc = DistinctSketch;
    type Output = u64;

    fn add(&self, acc: &mut DistinctSketch, input: &Number) {
        acc.0.insert_by_hash_value(value_hash(input));
    }

    fn merge(&self, acc: &mut DistinctSketch, other: &DistinctSketch) {
        acc.0.merge(&other.0);
    }

    fn finish(&self, acc: &DistinctSketch) -> u64 {
        acc.0.len().round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `value_hash` of `Int(0)` and `Float(0.5)`, as computed once: a change
    /// of hash would change every estimate and break old checkpoints.
    const GOLDEN_HASHES: [u64; 2] = [11_228_295_834_043_780_971, 14_019_289_489_114_496_668];

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

    fn distinct_of(values: &[Number]) -> DistinctSketch {
        let mut acc = DistinctSketch::default();
        for v in values {
            ApproxDistinct.add(&mut acc, v);
        }
        acc
    }

    fn number() -> impl Strategy<Value = Number> {
        prop_oneof![
            4 => (0i64..5_000).prop_map(Number::Int),
            1 => (0i64..1_000).prop_map(|i| Number::Float(i as f64 / 4.0)),
        ]
    }

    proptest! {
        #[test]
        fn the_estimate_depends_on_the_set_of_values_only(
            values in proptest::collection::vec(number(), 0..2_000),
            cut in 0usize..2_000,
        ) {
            let whole = distinct_of(&values);
            let cut = cut % (values.len() + 1);
            let mut merged = distinct_of(&values[cut..]);
            ApproxDistinct.merge(&mut merged, &distinct_of(&values[..cut]));
            let mut reversed: Vec<Number> = values.clone();
            reversed.reverse();
            let bytes = |s: &DistinctSketch| postcard::to_stdvec(s).unwrap();
            prop_assert_eq!(bytes(&merged), bytes(&whole));
            prop_assert_eq!(bytes(&distinct_of(&reversed)), bytes(&whole));
            prop_assert_eq!(ApproxDistinct.finish(&merged), ApproxDistinct.finish(&whole));
        }
    }

    #[test]
    fn the_estimate_is_within_a_few_standard_errors() {
        for n in [1u64, 10, 100, 1_000, 10_000, 100_000] {
            let values: Vec<Number> = (0..n as i64).map(|i| Number::Int(i * 7_919)).collect();
            // Every value twice: duplicates change nothing.
            let mut acc = distinct_of(&values);
            ApproxDistinct.merge(&mut acc, &distinct_of(&values));
            let got = ApproxDistinct.finish(&acc) as f64;
            let bound = (4.0 * ApproxDistinct::STANDARD_ERROR * n as f64).max(1.0);
            assert!(
                (got - n as f64).abs() <= bound,
                "{n} distinct: estimate {got}"
            );
        }
        assert_eq!(ApproxDistinct.finish(&DistinctSketch::default()), 0);
        // 1 and 1.0 are two values.
        let two = distinct_of(&[Number::Int(1), Number::Float(1.0), Number::Int(1)]);
        assert_eq!(ApproxDistinct.finish(&two), 2);
    }

    #[test]
    fn the_hash_of_a_value_is_fixed() {
        // The same on every platform and version: checkpoints and merges
        // across processes depend on it.
        assert_eq!(value_hash(&Number::Int(42)), value_hash(&Number::Int(42)));
        assert_ne!(value_hash(&Number::Int(1)), value_hash(&Number::Float(1.0)));
        let golden = [value_hash(&Number::Int(0)), value_hash(&Number::Float(0.5))];
        assert_eq!(golden, GOLDEN_HASHES);
    }

    #[test]
    fn q_outside_zero_to_one_is_refused() {
        assert!(Quantile::new(1.5).is_none());
        assert!(Quantile::new(-0.1).is_none());
        assert!(Quantile::new(f64::NAN).is_none());
        assert_eq!(Quantile::new(0.5).map(|q| q.q()), Some(0.5));
    }

    #[test]
    fn a_distinct_sketch_survives_a_snapshot() {
        let acc = distinct_of(&(0..3_000).map(Number::Int).collect::<Vec<_>>());
        let bytes = postcard::to_stdvec(&acc).unwrap();
        let back: DistinctSketch = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(ApproxDistinct.finish(&back), ApproxDistinct.finish(&acc));
        let mut merged = back;
        ApproxDistinct.merge(&mut merged, &acc);
        assert_eq!(ApproxDistinct.finish(&merged), ApproxDistinct.finish(&acc));
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
