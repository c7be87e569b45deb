//! Aggregations: the [`Aggregator`] trait, the built-ins (count, sum, min,
//! max, mean) and [`Metrics`], a run-time selection of built-ins.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A user aggregation: `add` folds one input into an accumulator, `merge`
/// combines two partial accumulators, `finish` reads the result.
///
/// # Contract
///
/// `merge` must be associative and commutative, and `Self::Acc::default()`
/// must be its identity (a commutative monoid); and adding inputs one by one
/// must equal merging the accumulators of any split of them. Session merging
/// and sliding-window panes rely on these laws: an aggregator that breaks them
/// gives results that depend on how records were split into panes or sessions.
/// `finish` must not change the accumulator.
///
/// # Examples
///
/// A distinct count of strings, as a pure aggregation; a job runs it over
/// a record's text field with `tidemark_engine::Typed` (which makes the
/// `String` from the field), or over a user's own event type the same way:
///
/// ```
/// use std::collections::BTreeSet;
/// use tidemark_windows::Aggregator;
///
/// struct DistinctCount;
/// impl Aggregator for DistinctCount {
///     type Input = String;
///     type Acc = BTreeSet<String>;
///     type Output = usize;
///     fn add(&self, acc: &mut Self::Acc, input: &String) {
///         acc.insert(input.clone());
///     }
///     fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
///         acc.extend(other.iter().cloned());
///     }
///     fn finish(&self, acc: &Self::Acc) -> usize {
///         acc.len()
///     }
/// }
///
/// let agg = DistinctCount;
/// let mut a = BTreeSet::new();
/// agg.add(&mut a, &"x".to_string());
/// agg.add(&mut a, &"y".to_string());
/// let mut b = BTreeSet::new();
/// agg.add(&mut b, &"x".to_string());
/// agg.merge(&mut a, &b);
/// assert_eq!(agg.finish(&a), 2);
/// ```
pub trait Aggregator {
    /// What one record contributes.
    type Input;
    /// The partial aggregate kept per window (or pane, or session).
    type Acc: Clone + Default;
    /// The value reported for a window.
    type Output: Clone + PartialEq;
    /// Folds one input into `acc`.
    fn add(&self, acc: &mut Self::Acc, input: &Self::Input);
    /// Folds `other` into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc);
    /// The result for `acc`.
    fn finish(&self, acc: &Self::Acc) -> Self::Output;
}

/// A numeric input or result: an exact integer or a float.
///
/// Equality and [`Ord`] are structural and total, so results can be
/// consolidated and compared (differential collections need `Ord`): an
/// integer never equals a float (`1` and `1.0` print differently), and
/// floats compare by their IEEE total order (`-0.0 < 0.0`, NaN equals
/// itself). For numeric order use [`Number::total_cmp`].
///
/// # Text
///
/// [`Display`](std::fmt::Display) writes the value as JSON, the text of
/// result rows:
///
/// | value | text |
/// | --- | --- |
/// | an integer | its digits, exactly: `-42` |
/// | a finite float | the shortest decimal that reads back as the same `f64` (Ryū), always with a fraction or an exponent so it reads as a float: `21.0`, `0.1`, `-0.0`, `1e30`, `5e-324` |
/// | +∞, −∞, NaN | the JSON strings `"Infinity"`, `"-Infinity"`, `"NaN"` |
///
/// JSON numbers cannot be infinite or NaN, and `null` would read as "no
/// value"; the strings are the spellings of the protobuf JSON mapping,
/// which JavaScript's `Number`, Python's `float`, Java's
/// `Double.parseDouble`, Go's `strconv.ParseFloat` and Rust's `f64::from_str`
/// all read back. A correctly rounded reader gets every finite float back
/// bit for bit (serde_json does with its `float_roundtrip` feature, not
/// with its default, best-effort parser).
///
/// Inputs are finite; a result is not finite only when a float sum
/// overflows the `f64` range (see [`SumValue`]).
///
/// ```
/// use tidemark_windows::Number;
/// assert_eq!(Number::Int(21).to_string(), "21");
/// assert_eq!(Number::Float(21.0).to_string(), "21.0");
/// assert_eq!(Number::Float(1e30).to_string(), "1e30");
/// assert_eq!(Number::Float(5e-324).to_string(), "5e-324");
/// assert_eq!(Number::Float(f64::INFINITY).to_string(), r#""Infinity""#);
/// assert_eq!(Number::Float(f64::NAN).to_string(), r#""NaN""#);
/// ```
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Number {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl Number {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    /// Numeric comparison: exact between integers, as floats otherwise
    /// (NaN sorts last).
    pub fn total_cmp(self, other: Number) -> Ordering {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(&b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }
}

/// Writes a float as JSON: finite floats in their shortest round-trip form
/// (see [`Number`]), non-finite ones as the strings `"Infinity"`,
/// `"-Infinity"` and `"NaN"`.
fn fmt_float(f: f64, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    if f.is_finite() {
        // Ryū's shortest form keeps `.0` on integral values below 1e16 and
        // uses an exponent outside [1e-5, 1e16): a float never reads as an
        // integer, and 5e-324 is 6 characters, not 326.
        out.write_str(ryu::Buffer::new().format_finite(f))
    } else if f.is_nan() {
        out.write_str("\"NaN\"")
    } else if f > 0.0 {
        out.write_str("\"Infinity\"")
    } else {
        out.write_str("\"-Infinity\"")
    }
}

/// JSON text: integers exactly, floats in their shortest round-trip form,
/// non-finite floats as strings (see [`Number`]).
impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => fmt_float(x, f),
        }
    }
}

/// JSON text, as for [`Number`].
impl std::fmt::Display for SumValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            SumValue::Int(i) => write!(f, "{i}"),
            SumValue::Float(x) => fmt_float(x, f),
        }
    }
}

impl Default for Number {
    fn default() -> Self {
        Number::Int(0)
    }
}

/// An exact sum: integers add exactly (in 128 bits); floats add with
/// compensated (Neumaier) summation in a separate part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SumAcc {
    parts: SumParts,
    has_float: bool,
}

/// The parts of an exact sum without the flag saying whether a float was
/// added (accumulators that keep flags together store it elsewhere).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct SumParts {
    /// The exact integer part, an i128 kept as two 64-bit halves so the
    /// accumulator needs only 8-byte alignment (smaller window state).
    int_lo: u64,
    int_hi: i64,
    float: f64,
    compensation: f64,
}

impl Serialize for SumParts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.int(), self.float, self.compensation).serialize(s)
    }
}

impl<'de> Deserialize<'de> for SumParts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (int, float, compensation) = <(i128, f64, f64)>::deserialize(d)?;
        let mut parts = SumParts {
            float,
            compensation,
            ..SumParts::default()
        };
        parts.set_int(int);
        Ok(parts)
    }
}

impl SumParts {
    #[inline]
    fn int(&self) -> i128 {
        ((self.int_hi as i128) << 64) | self.int_lo as i128
    }

    #[inline]
    fn set_int(&mut self, value: i128) {
        self.int_lo = value as u64;
        self.int_hi = (value >> 64) as i64;
    }

    /// Adds one number; returns whether it was a float.
    #[inline]
    fn add(&mut self, value: Number) -> bool {
        match value {
            Number::Int(i) => {
                self.set_int(self.int().wrapping_add(i as i128));
                false
            }
            Number::Float(f) => {
                self.add_float(f);
                true
            }
        }
    }

    fn add_float(&mut self, f: f64) {
        let t = self.float + f;
        if self.float.abs() >= f.abs() {
            self.compensation += (self.float - t) + f;
        } else {
            self.compensation += (f - t) + self.float;
        }
        self.float = t;
    }

    /// Adds another partial sum (`other_float`: whether it holds floats).
    fn merge(&mut self, other: &SumParts, other_float: bool) {
        self.set_int(self.int().wrapping_add(other.int()));
        if other_float {
            self.add_float(other.float);
            self.compensation += other.compensation;
        }
    }

    fn value(&self, has_float: bool) -> SumValue {
        if has_float {
            // Once the float part overflows, the compensation is ±∞ or NaN
            // and means nothing: the sum is the overflowed part (±∞, or NaN
            // when partial sums overflowed both ways).
            let float = if self.float.is_finite() {
                self.float + self.compensation
            } else {
                self.float
            };
            SumValue::Float(self.int() as f64 + float)
        } else {
            SumValue::Int(self.int())
        }
    }
}

impl SumAcc {
    /// Adds one number.
    #[inline]
    pub fn add(&mut self, value: Number) {
        self.has_float |= self.parts.add(value);
    }

    /// Adds another partial sum.
    pub fn merge(&mut self, other: &SumAcc) {
        self.parts.merge(&other.parts, other.has_float);
        self.has_float |= other.has_float;
    }

    /// The sum: exact when every input was an integer.
    pub fn value(&self) -> SumValue {
        self.parts.value(self.has_float)
    }
}

/// The result of a sum: exact for integers.
///
/// Equality and [`Ord`] are structural and total, as for [`Number`].
///
/// A sum involving floats whose float part leaves the `f64` range is
/// `Float(±∞)` (`NaN` if parts of it overflowed in opposite directions),
/// written as the JSON strings `"Infinity"`, `"-Infinity"` or `"NaN"`; text
/// as for [`Number`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum SumValue {
    /// Sum of integers, exact.
    Int(i128),
    /// Sum involving floats.
    Float(f64),
}

impl SumValue {
    /// The sum as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            SumValue::Int(i) => i as f64,
            SumValue::Float(f) => f,
        }
    }
}

/// Structural total order of one float: the IEEE total order.
fn float_key(f: f64) -> TotalF64 {
    TotalF64(f)
}

/// An `f64` compared by [`f64::total_cmp`].
#[derive(Clone, Copy)]
struct TotalF64(f64);

impl PartialEq for TotalF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for TotalF64 {}
impl PartialOrd for TotalF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TotalF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        match (*self, *other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(&b),
            (Number::Float(a), Number::Float(b)) => float_key(a).cmp(&float_key(b)),
            (Number::Int(_), Number::Float(_)) => Ordering::Less,
            (Number::Float(_), Number::Int(_)) => Ordering::Greater,
        }
    }
}
impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Number {}

impl Ord for SumValue {
    fn cmp(&self, other: &Self) -> Ordering {
        match (*self, *other) {
            (SumValue::Int(a), SumValue::Int(b)) => a.cmp(&b),
            (SumValue::Float(a), SumValue::Float(b)) => float_key(a).cmp(&float_key(b)),
            (SumValue::Int(_), SumValue::Float(_)) => Ordering::Less,
            (SumValue::Float(_), SumValue::Int(_)) => Ordering::Greater,
        }
    }
}
impl PartialOrd for SumValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for SumValue {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SumValue {}

impl MetricValues {
    fn order_key(&self) -> impl Ord {
        (
            self.count,
            self.sum,
            self.min,
            self.max,
            self.mean.map(float_key),
        )
    }
}
impl Ord for MetricValues {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order_key().cmp(&other.order_key())
    }
}
impl PartialOrd for MetricValues {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for MetricValues {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for MetricValues {}

// Hashes agree with the structural equality above: floats by their bits
// (the IEEE total order calls two floats equal exactly when their bits are).
impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match *self {
            Number::Int(i) => (0u8, i).hash(state),
            Number::Float(f) => (1u8, f.to_bits()).hash(state),
        }
    }
}

impl std::hash::Hash for SumValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match *self {
            SumValue::Int(i) => (0u8, i).hash(state),
            SumValue::Float(f) => (1u8, f.to_bits()).hash(state),
        }
    }
}

impl std::hash::Hash for MetricValues {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            self.count,
            self.sum,
            self.min,
            self.max,
            self.mean.map(f64::to_bits),
        )
            .hash(state);
    }
}

/// Counts records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl Aggregator for Count {
    type Input = Number;
    type Acc = u64;
    type Output = u64;
    fn add(&self, acc: &mut u64, _input: &Number) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += other;
    }
    fn finish(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// Sums values exactly (see [`SumAcc`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sum;

impl Aggregator for Sum {
    type Input = Number;
    type Acc = SumAcc;
    type Output = SumValue;
    fn add(&self, acc: &mut SumAcc, input: &Number) {
        acc.add(*input);
    }
    fn merge(&self, acc: &mut SumAcc, other: &SumAcc) {
        acc.merge(other);
    }
    fn finish(&self, acc: &SumAcc) -> SumValue {
        acc.value()
    }
}

fn keep(acc: &mut Option<Number>, value: Number, wanted: Ordering) {
    match acc {
        Some(current) if value.total_cmp(*current) != wanted => {}
        _ => *acc = Some(value),
    }
}

/// The smallest value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Min;

impl Aggregator for Min {
    type Input = Number;
    type Acc = Option<Number>;
    type Output = Option<Number>;
    fn add(&self, acc: &mut Option<Number>, input: &Number) {
        keep(acc, *input, Ordering::Less);
    }
    fn merge(&self, acc: &mut Option<Number>, other: &Option<Number>) {
        if let Some(v) = other {
            keep(acc, *v, Ordering::Less);
        }
    }
    fn finish(&self, acc: &Option<Number>) -> Option<Number> {
        *acc
    }
}

/// The largest value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Max;

impl Aggregator for Max {
    type Input = Number;
    type Acc = Option<Number>;
    type Output = Option<Number>;
    fn add(&self, acc: &mut Option<Number>, input: &Number) {
        keep(acc, *input, Ordering::Greater);
    }
    fn merge(&self, acc: &mut Option<Number>, other: &Option<Number>) {
        if let Some(v) = other {
            keep(acc, *v, Ordering::Greater);
        }
    }
    fn finish(&self, acc: &Option<Number>) -> Option<Number> {
        *acc
    }
}

/// The arithmetic mean (sum / count, as a float).
#[derive(Clone, Copy, Debug, Default)]
pub struct Mean;

impl Aggregator for Mean {
    type Input = Number;
    type Acc = (u64, SumAcc);
    type Output = Option<f64>;
    fn add(&self, acc: &mut (u64, SumAcc), input: &Number) {
        acc.0 += 1;
        acc.1.add(*input);
    }
    fn merge(&self, acc: &mut (u64, SumAcc), other: &(u64, SumAcc)) {
        acc.0 += other.0;
        acc.1.merge(&other.1);
    }
    fn finish(&self, acc: &(u64, SumAcc)) -> Option<f64> {
        (acc.0 > 0).then(|| acc.1.value().as_f64() / acc.0 as f64)
    }
}

/// One built-in aggregation, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggKind {
    /// Number of records.
    Count,
    /// Exact sum of values.
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Mean value.
    Mean,
}

impl AggKind {
    /// The field name in output rows.
    pub fn name(self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum => "sum",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::Mean => "mean",
        }
    }
}

impl std::str::FromStr for AggKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "count" => Ok(AggKind::Count),
            "sum" => Ok(AggKind::Sum),
            "min" => Ok(AggKind::Min),
            "max" => Ok(AggKind::Max),
            "mean" | "avg" => Ok(AggKind::Mean),
            other => Err(format!(
                "unknown aggregation \"{other}\" (expected count, sum, min, max or mean)"
            )),
        }
    }
}

/// The accumulator of [`Metrics`]: count, exact sum, min and max together,
/// packed into 64 bytes (min and max as raw 8-byte values, their kinds in
/// one byte). Snapshots store it in its compact wire form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "MetricsWire", into = "MetricsWire")]
pub struct MetricsAcc {
    count: u64,
    sum: SumParts,
    min: u64,
    max: u64,
    /// Bits 0–1: what `min` holds; bits 2–3: what `max` holds (0 for
    /// nothing, `INT` or `FLOAT`).
    flags: u8,
    /// Whether a float was summed. A `bool`, not a bit of `flags`: its
    /// unused values let `Option<MetricsAcc>` (and the `Option` of a pane
    /// holding one) need no tag of its own, 8 bytes less per open window.
    has_float: bool,
}

// A packed extreme's kind: 0 means none.
const INT: u8 = 1;
const FLOAT: u8 = 2;
const MIN_SHIFT: u8 = 0;
const MAX_SHIFT: u8 = 2;

#[inline]
fn pack(n: Number) -> (u64, u8) {
    match n {
        Number::Int(i) => (i as u64, INT),
        Number::Float(f) => (f.to_bits(), FLOAT),
    }
}

#[inline]
fn unpack(bits: u64, kind: u8) -> Option<Number> {
    match kind {
        INT => Some(Number::Int(bits as i64)),
        FLOAT => Some(Number::Float(f64::from_bits(bits))),
        _ => None,
    }
}

impl MetricsAcc {
    /// Number of records.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The exact sum.
    pub fn sum(&self) -> SumValue {
        self.sum.value(self.has_float)
    }

    /// The smallest value, if any.
    pub fn min(&self) -> Option<Number> {
        unpack(self.min, (self.flags >> MIN_SHIFT) & 3)
    }

    /// The largest value, if any.
    pub fn max(&self) -> Option<Number> {
        unpack(self.max, (self.flags >> MAX_SHIFT) & 3)
    }

    #[inline]
    fn set_min(&mut self, n: Number) {
        let (bits, kind) = pack(n);
        self.min = bits;
        self.flags = (self.flags & !(3 << MIN_SHIFT)) | (kind << MIN_SHIFT);
    }

    #[inline]
    fn set_max(&mut self, n: Number) {
        let (bits, kind) = pack(n);
        self.max = bits;
        self.flags = (self.flags & !(3 << MAX_SHIFT)) | (kind << MAX_SHIFT);
    }

    /// Folds one value into min and max.
    #[inline]
    fn keep_extremes(&mut self, n: Number) {
        match self.min() {
            Some(m) if n.total_cmp(m) != Ordering::Less => {}
            _ => self.set_min(n),
        }
        match self.max() {
            Some(m) if n.total_cmp(m) != Ordering::Greater => {}
            _ => self.set_max(n),
        }
    }
}

/// The snapshot form of [`MetricsAcc`]: small integers stay small.
#[derive(Serialize, Deserialize)]
struct MetricsWire {
    count: u64,
    sum: SumParts,
    has_float: bool,
    min: Option<Number>,
    max: Option<Number>,
}

impl From<MetricsAcc> for MetricsWire {
    fn from(acc: MetricsAcc) -> Self {
        MetricsWire {
            count: acc.count,
            sum: acc.sum,
            has_float: acc.has_float,
            min: acc.min(),
            max: acc.max(),
        }
    }
}

impl From<MetricsWire> for MetricsAcc {
    fn from(w: MetricsWire) -> Self {
        let mut acc = MetricsAcc {
            count: w.count,
            sum: w.sum,
            has_float: w.has_float,
            ..MetricsAcc::default()
        };
        if let Some(n) = w.min {
            acc.set_min(n);
        }
        if let Some(n) = w.max {
            acc.set_max(n);
        }
        acc
    }
}

/// The result of [`Metrics`]: the selected aggregations are `Some`.
///
/// Equality, [`Ord`] and [`Hash`](std::hash::Hash) are structural and
/// total (see [`Number`]), so the values can live in a differential
/// collection.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct MetricValues {
    /// Number of records.
    pub count: Option<u64>,
    /// Exact sum.
    pub sum: Option<SumValue>,
    /// Smallest value.
    pub min: Option<Number>,
    /// Largest value.
    pub max: Option<Number>,
    /// Mean value.
    pub mean: Option<f64>,
}

/// A run-time selection of the built-in aggregations over one numeric value,
/// computed from one shared accumulator.
///
/// ```
/// use tidemark_windows::{AggKind, Aggregator, Metrics, MetricsAcc, Number, SumValue};
/// let m = Metrics::new(&[AggKind::Count, AggKind::Sum]);
/// let mut acc = MetricsAcc::default();
/// m.add(&mut acc, &Number::Int(3));
/// m.add(&mut acc, &Number::Int(4));
/// let out = m.finish(&acc);
/// assert_eq!(out.count, Some(2));
/// assert_eq!(out.sum, Some(SumValue::Int(7)));
/// assert_eq!(out.min, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    kinds: Vec<AggKind>,
}

impl Metrics {
    /// The aggregations `kinds`, reported in that order.
    pub fn new(kinds: &[AggKind]) -> Self {
        Metrics {
            kinds: kinds.to_vec(),
        }
    }

    /// The selected aggregations in the order given.
    pub fn kinds(&self) -> &[AggKind] {
        &self.kinds
    }

    fn wants(&self, kind: AggKind) -> bool {
        self.kinds.contains(&kind)
    }
}

impl Aggregator for Metrics {
    type Input = Number;
    type Acc = MetricsAcc;
    type Output = MetricValues;

    #[inline]
    fn add(&self, acc: &mut MetricsAcc, input: &Number) {
        acc.count += 1;
        if acc.sum.add(*input) {
            acc.has_float = true;
        }
        acc.keep_extremes(*input);
    }

    fn merge(&self, acc: &mut MetricsAcc, other: &MetricsAcc) {
        acc.count += other.count;
        let other_float = other.has_float;
        acc.sum.merge(&other.sum, other_float);
        if other_float {
            acc.has_float = true;
        }
        if let Some(v) = other.min() {
            if acc.min().is_none_or(|m| v.total_cmp(m) == Ordering::Less) {
                acc.set_min(v);
            }
        }
        if let Some(v) = other.max() {
            if acc
                .max()
                .is_none_or(|m| v.total_cmp(m) == Ordering::Greater)
            {
                acc.set_max(v);
            }
        }
    }

    fn finish(&self, acc: &MetricsAcc) -> MetricValues {
        MetricValues {
            count: self.wants(AggKind::Count).then_some(acc.count),
            sum: self.wants(AggKind::Sum).then(|| acc.sum()),
            min: if self.wants(AggKind::Min) {
                acc.min()
            } else {
                None
            },
            max: if self.wants(AggKind::Max) {
                acc.max()
            } else {
                None
            },
            mean: if self.wants(AggKind::Mean) && acc.count > 0 {
                Some(acc.sum().as_f64() / acc.count as f64)
            } else {
                None
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Finite floats of every kind: any bit pattern, integral values, and
    /// ordinary magnitudes.
    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>()
                .prop_map(f64::from_bits)
                .prop_filter("finite", |f| f.is_finite()),
            any::<i64>().prop_map(|i| i as f64),
            -1e6f64..1e6,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

        /// The text of a finite float is a valid JSON number that reads as
        /// a float (not an integer) and parses back to the same `f64`, sign
        /// of zero included; sums print the same way.
        ///
        /// serde_json checks the JSON; the round trip is checked with a
        /// correctly rounded parser (`f64::from_str`): serde_json's default
        /// float parser is best-effort (it reads `1.1918318642540781e142`
        /// several units in the last place off), which would test
        /// serde_json, not the text.
        #[test]
        fn float_text_round_trips(f in finite()) {
            let text = Number::Float(f).to_string();
            prop_assert_eq!(&SumValue::Float(f).to_string(), &text);
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{text:?} is not JSON: {e}")))?;
            prop_assert!(json.is_f64(), "{text:?} does not read as a float");
            let back: f64 = text
                .parse()
                .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(back.to_bits(), f.to_bits(), "{} read back as {}", text, back);
            prop_assert!(text.len() <= 24, "{text:?} is not the shortest form");
        }
    }

    #[test]
    fn float_text_examples() {
        for (f, text) in [
            (21.0, "21.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e16"),
            (1e30, "1e30"),
            (1.5e-7, "1.5e-7"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e308"),
        ] {
            assert_eq!(Number::Float(f).to_string(), text);
        }
        assert_eq!(Number::Int(-42).to_string(), "-42");
        assert_eq!(SumValue::Int(i128::MAX).to_string(), i128::MAX.to_string());
    }

    #[test]
    fn non_finite_floats_are_json_strings() {
        for (f, text) in [
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
        ] {
            let shown = Number::Float(f).to_string();
            assert_eq!(SumValue::Float(f).to_string(), shown);
            let json: serde_json::Value = serde_json::from_str(&shown).unwrap();
            assert_eq!(json.as_str(), Some(text), "{shown}");
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.is_nan(), f.is_nan());
            if !f.is_nan() {
                assert_eq!(back, f);
            }
        }
    }

    #[test]
    fn an_overflowing_float_sum_is_infinite() {
        let sum = |xs: &[f64]| {
            let mut acc = SumAcc::default();
            for x in xs {
                acc.add(Number::Float(*x));
            }
            acc
        };
        let up = sum(&[f64::MAX, f64::MAX, -1.0]);
        assert_eq!(up.value(), SumValue::Float(f64::INFINITY));
        assert_eq!(up.value().to_string(), r#""Infinity""#);
        let down = sum(&[-f64::MAX, -f64::MAX]);
        assert_eq!(down.value(), SumValue::Float(f64::NEG_INFINITY));
        let mut both = up;
        both.merge(&down);
        assert!(matches!(both.value(), SumValue::Float(f) if f.is_nan()));
        // The shared accumulator of Metrics sums the same way.
        let m = Metrics::new(&[AggKind::Sum, AggKind::Mean]);
        let mut acc = MetricsAcc::default();
        for x in [f64::MAX, f64::MAX] {
            m.add(&mut acc, &Number::Float(x));
        }
        let out = m.finish(&acc);
        assert_eq!(out.sum, Some(SumValue::Float(f64::INFINITY)));
        assert_eq!(out.mean, Some(f64::INFINITY));
        // Below the overflow, compensation still makes the sum exact.
        assert_eq!(sum(&[1e308, 1.0, -1e308]).value(), SumValue::Float(1.0));
    }

    #[test]
    fn accumulators_are_compact() {
        // One count+sum window: tens of bytes in memory, a few in snapshots.
        assert!(
            std::mem::size_of::<MetricsAcc>() <= 64,
            "{}",
            std::mem::size_of::<MetricsAcc>()
        );
        let m = Metrics::new(&[AggKind::Count, AggKind::Sum]);
        let mut acc = MetricsAcc::default();
        for v in [17, 4, 99] {
            m.add(&mut acc, &Number::Int(v));
        }
        let bytes = postcard::to_allocvec(&acc).unwrap();
        eprintln!(
            "MetricsAcc: {} bytes in memory, {} in a snapshot",
            std::mem::size_of::<MetricsAcc>(),
            bytes.len()
        );
        assert!(bytes.len() <= 32, "{}", bytes.len());
    }
}
