//! Records with named fields and the aggregations over them: [`Field`]
//! (one field's value), [`Rec`] (what one record gives its aggregations),
//! [`AggSpec`] (one aggregation as a job names it: `count`,
//! `revenue=sum(amount)`, `quantile(latency, 0.99)`) and [`Aggs`], a list
//! of them computed together, each over its own field.
//!
//! Nulls are as SQL has them: a null (or missing) field is skipped by the
//! aggregations over it; `count` counts records and `count(f)` the non-null
//! values of `f`; a sum, minimum, maximum, mean, quantile, earliest or
//! latest over no non-null value is null.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::aggregate::{Aggregator, Number, SumAcc, SumValue};
use crate::sketch::{ApproxDistinct, DistinctSketch, Quantile, QuantileSketch};
use crate::time::EventTime;

/// The value of one named field of a record.
///
/// Equality, [`Ord`] and [`Hash`](std::hash::Hash) are structural and
/// total: `Null` first, then integers, floats (IEEE total order), then
/// text; `1` and `1.0` are two values, as `1` and `"1"` are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Field {
    /// Absent, or JSON `null`, or an empty CSV field.
    #[default]
    Null,
    /// An integer.
    Int(i64),
    /// A finite float.
    Float(f64),
    /// Text.
    Text(CompactString),
}

impl Field {
    fn rank(&self) -> u8 {
        match self {
            Field::Null => 0,
            Field::Int(_) => 1,
            Field::Float(_) => 2,
            Field::Text(_) => 3,
        }
    }

    /// The field as a number, if it is one.
    pub fn number(&self) -> Option<Number> {
        match *self {
            Field::Int(i) => Some(Number::Int(i)),
            Field::Float(f) => Some(Number::Float(f)),
            _ => None,
        }
    }

    /// Whether the field is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Field::Null)
    }
}

impl From<Number> for Field {
    fn from(n: Number) -> Self {
        match n {
            Number::Int(i) => Field::Int(i),
            Number::Float(f) => Field::Float(f),
        }
    }
}

impl From<&str> for Field {
    fn from(s: &str) -> Self {
        Field::Text(s.into())
    }
}

impl Ord for Field {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Field::Int(a), Field::Int(b)) => a.cmp(b),
            (Field::Float(a), Field::Float(b)) => a.total_cmp(b),
            (Field::Text(a), Field::Text(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl PartialOrd for Field {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Field {}

impl std::hash::Hash for Field {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Field::Null => {}
            Field::Int(i) => i.hash(state),
            Field::Float(f) => f.to_bits().hash(state),
            Field::Text(t) => t.hash(state),
        }
    }
}

/// Where one record sits in event order: event time, then partition, then
/// offset. `earliest` and `latest` pick by it, so they do not depend on the
/// order records were processed in.
pub type RecordOrder = (EventTime, u32, u64);

/// A record as an engine hands it to an aggregation that reads fields: its
/// value, its named fields (in the order [`Aggs::fields`] gives) and its
/// place in event order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rec {
    /// The `value` field (`1` when the job reads no value).
    pub value: Number,
    /// The named fields.
    pub fields: SmallVec<[Field; 4]>,
    /// Event time, partition and offset.
    pub order: RecordOrder,
}

/// A borrowed view of one record, from which an aggregator's input is made
/// ([`FromRecord`]).
#[derive(Clone, Copy, Debug)]
pub struct RecordView<'a> {
    /// The `value` field.
    pub value: Number,
    /// The named fields the job decodes.
    pub fields: &'a [Field],
    /// Event time, partition and offset.
    pub order: RecordOrder,
}

/// An aggregator input made from a record: a [`Number`] (its value) or a
/// [`Rec`] (its value, fields and order).
pub trait FromRecord {
    /// The input of `record`.
    fn from_record(record: RecordView<'_>) -> Self;
}

impl FromRecord for Number {
    #[inline]
    fn from_record(record: RecordView<'_>) -> Self {
        record.value
    }
}

impl FromRecord for Rec {
    #[inline]
    fn from_record(record: RecordView<'_>) -> Self {
        Rec {
            value: record.value,
            fields: record.fields.iter().cloned().collect(),
            order: record.order,
        }
    }
}

/// An aggregation function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Func {
    /// `count`: records; `count(f)`: non-null values of `f`.
    Count,
    /// The exact sum.
    Sum,
    /// The smallest value.
    Min,
    /// The largest value.
    Max,
    /// The mean (`avg` is the same).
    Mean,
    /// The exact number of distinct non-null values.
    CountDistinct,
    /// The number of distinct values, estimated (HyperLogLog,
    /// [`ApproxDistinct::STANDARD_ERROR`]).
    ApproxDistinct,
    /// The q-quantile (DDSketch, [`Quantile::RELATIVE_ACCURACY`]).
    Quantile(f64),
    /// The value of the record earliest in event order (time, partition,
    /// offset).
    Earliest,
    /// The value of the record latest in event order.
    Latest,
}

impl Func {
    /// The function's name as written.
    pub fn name(self) -> &'static str {
        match self {
            Func::Count => "count",
            Func::Sum => "sum",
            Func::Min => "min",
            Func::Max => "max",
            Func::Mean => "mean",
            Func::CountDistinct => "count_distinct",
            Func::ApproxDistinct => "approx_distinct",
            Func::Quantile(_) => "quantile",
            Func::Earliest => "earliest",
            Func::Latest => "latest",
        }
    }

    /// Whether the function needs numbers (text in its field is an error).
    pub fn needs_number(self) -> bool {
        matches!(
            self,
            Func::Sum | Func::Min | Func::Max | Func::Mean | Func::Quantile(_)
        )
    }
}

/// The functions `--agg` knows, for messages.
pub const FUNCTIONS: &str = "count, sum, min, max, mean (avg), count_distinct, approx_distinct, quantile(FIELD, Q), earliest, latest";

/// One aggregation as a job names it: `[NAME=]FUNC[(FIELD[, Q])]`.
///
/// Without a field, `count` counts records and the others read the
/// record's `value`, as they always have. Column names: the function's
/// name for the bare forms (`count`, `sum`), `FUNC_FIELD` with a field
/// (`sum_amount`, `count_distinct_user`), `pNN_FIELD` for a quantile
/// (`p99_latency`, `p99.9_latency`), or `NAME` when given.
///
/// ```
/// use tidemark_windows::fields::AggSpec;
/// let spec: AggSpec = "quantile(latency, 0.999)".parse().unwrap();
/// assert_eq!(spec.name, "p99.9_latency");
/// let spec: AggSpec = "revenue=sum(amount)".parse().unwrap();
/// assert_eq!((spec.name.as_str(), spec.field.as_deref()), ("revenue", Some("amount")));
/// assert_eq!(spec.to_string(), "revenue=sum(amount)");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AggSpec {
    /// The output column.
    pub name: String,
    /// The function.
    pub func: Func,
    /// The field it reads; `None`: the record (`count`) or its value.
    pub field: Option<String>,
    /// Whether the name was given (`NAME=`).
    pub named: bool,
}

impl AggSpec {
    /// The spec of `func` over `field`, named by the default rule.
    pub fn new(func: Func, field: Option<&str>) -> Self {
        AggSpec {
            name: default_name(func, field),
            func,
            field: field.map(str::to_owned),
            named: false,
        }
    }

    /// Whether this is one of the forms the built-in [`Metrics`](crate::Metrics)
    /// computes (a bare `count`, `sum`, `min`, `max` or `mean`, not renamed).
    pub fn is_plain(&self) -> bool {
        self.field.is_none()
            && !self.named
            && matches!(
                self.func,
                Func::Count | Func::Sum | Func::Min | Func::Max | Func::Mean
            )
    }
}

/// `99`, `99.9`, `50`: the percentage of `q`, shortest.
fn percent(q: f64) -> String {
    let p = (q * 1e6).round() / 1e4;
    format!("{p}")
}

fn default_name(func: Func, field: Option<&str>) -> String {
    match (func, field) {
        (Func::Quantile(q), Some(f)) => format!("p{}_{f}", percent(q)),
        (Func::Quantile(q), None) => format!("p{}", percent(q)),
        (func, Some(f)) => format!("{}_{f}", func.name()),
        (func, None) => func.name().to_owned(),
    }
}

impl fmt::Display for AggSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.named {
            write!(f, "{}=", self.name)?;
        }
        f.write_str(self.func.name())?;
        match (self.func, &self.field) {
            (Func::Quantile(q), Some(field)) => write!(f, "({field}, {q})"),
            (_, Some(field)) => write!(f, "({field})"),
            (_, None) => Ok(()),
        }
    }
}

impl std::str::FromStr for AggSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = |why: &str| format!("invalid aggregation \"{text}\": {why}");
        let (name, call) = match text.split_once('=') {
            Some((name, call)) if !name.contains('(') => {
                let name = name.trim();
                if name.is_empty() {
                    return Err(bad("the name before \"=\" is empty"));
                }
                (Some(name), call.trim())
            }
            _ => (None, text),
        };
        let (func, args) = match call.split_once('(') {
            Some((func, rest)) => {
                let inner = rest
                    .trim_end()
                    .strip_suffix(')')
                    .ok_or_else(|| bad("missing \")\""))?;
                let args: Vec<&str> = inner.split(',').map(str::trim).collect();
                if args.iter().any(|a| a.is_empty()) {
                    return Err(bad("an argument is empty"));
                }
                (func.trim(), args)
            }
            None => (call, Vec::new()),
        };
        let func = match func {
            "count" => Func::Count,
            "sum" => Func::Sum,
            "min" => Func::Min,
            "max" => Func::Max,
            "mean" | "avg" => Func::Mean,
            "count_distinct" => Func::CountDistinct,
            "approx_distinct" => Func::ApproxDistinct,
            "earliest" => Func::Earliest,
            "latest" => Func::Latest,
            "quantile" => {
                let [field, q] = args.as_slice() else {
                    return Err(bad(
                        "quantile takes a field and a fraction, e.g. quantile(latency, 0.99)",
                    ));
                };
                let q: f64 = q
                    .parse()
                    .ok()
                    .filter(|q: &f64| (0.0..=1.0).contains(q))
                    .ok_or_else(|| bad("the quantile must be a fraction from 0 to 1, e.g. 0.99"))?;
                let mut spec = AggSpec::new(Func::Quantile(q), Some(field));
                if let Some(name) = name {
                    spec.name = name.to_owned();
                    spec.named = true;
                }
                return Ok(spec);
            }
            "" => return Err(bad("no function")),
            other => {
                return Err(format!(
                    "unknown aggregation \"{other}\" in \"{text}\" (expected {FUNCTIONS})"
                ))
            }
        };
        let field = match args.as_slice() {
            [] => None,
            [field] => Some(*field),
            _ => return Err(bad("takes at most one field")),
        };
        let mut spec = AggSpec::new(func, field);
        if let Some(name) = name {
            spec.name = name.to_owned();
            spec.named = true;
        }
        Ok(spec)
    }
}

/// A field the aggregations read, and whether they need it to be a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedField {
    /// The field's name (a JSON path such as `meta.ms`, or a CSV column).
    pub name: String,
    /// Whether an aggregation needs numbers from it.
    pub number: bool,
}

/// Where an aggregation reads.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reads {
    /// The record itself (`count`).
    Record,
    /// The record's value.
    Value,
    /// A named field, by its index in [`Rec::fields`].
    Field(usize),
}

/// Several aggregations computed together, each over its own field: the
/// run-time form of `agg = ["count", "sum(amount)", "p99=quantile(latency,
/// 0.99)"]`. Its input is a [`Rec`] whose fields are those of
/// [`Aggs::fields`], in that order; its output one [`Cell`] per
/// aggregation. Accumulators hold only what the aggregations need.
///
/// ```
/// use tidemark_windows::fields::{Aggs, Cell, Field, Rec};
/// use tidemark_windows::{Aggregator, Number};
///
/// let aggs = Aggs::parse(&["count", "sum(amount)", "count_distinct(user)"]).unwrap();
/// let fields: Vec<&str> = aggs.fields().iter().map(|f| f.name.as_str()).collect();
/// assert_eq!(fields, ["amount", "user"]);
/// let rec = |amount: Field, user: &str, t| Rec {
///     value: Number::Int(1),
///     fields: [amount, Field::from(user)].into_iter().collect(),
///     order: (t, 0, t as u64),
/// };
/// let mut acc = Default::default();
/// aggs.add(&mut acc, &rec(Field::Int(5), "ann", 1));
/// aggs.add(&mut acc, &rec(Field::Null, "bob", 2));
/// aggs.add(&mut acc, &rec(Field::Int(2), "ann", 3));
/// assert_eq!(aggs.finish(&acc).0, vec![Cell::Int(3), Cell::Int(7), Cell::Int(2)]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Aggs {
    specs: Vec<AggSpec>,
    reads: Vec<Reads>,
    fields: Vec<NamedField>,
    key_columns: Vec<String>,
}

impl Aggs {
    /// The aggregations `specs`, in output order; an error names a column
    /// that two of them would share.
    pub fn new(specs: Vec<AggSpec>) -> Result<Self, String> {
        if specs.is_empty() {
            return Err("no aggregation".into());
        }
        let mut fields: Vec<NamedField> = Vec::new();
        let mut reads = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            if let Some(other) = specs[..i].iter().find(|s| s.name == spec.name) {
                return Err(format!(
                    "\"{other}\" and \"{spec}\" would both be the column \"{}\": name one with NAME=, e.g. {}2={}",
                    spec.name, spec.name, spec
                ));
            }
            reads.push(match (&spec.field, spec.func) {
                (None, Func::Count) => Reads::Record,
                (None, _) => Reads::Value,
                (Some(name), func) => {
                    let at = match fields.iter().position(|f| &f.name == name) {
                        Some(at) => at,
                        None => {
                            fields.push(NamedField {
                                name: name.clone(),
                                number: false,
                            });
                            fields.len() - 1
                        }
                    };
                    fields[at].number |= func.needs_number();
                    Reads::Field(at)
                }
            });
        }
        Ok(Aggs {
            specs,
            reads,
            fields,
            key_columns: Vec::new(),
        })
    }

    /// The aggregations written as `texts` (see [`AggSpec`]).
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, String> {
        let specs = texts
            .iter()
            .map(|t| t.as_ref().parse())
            .collect::<Result<Vec<AggSpec>, String>>()?;
        Aggs::new(specs)
    }

    /// Result rows show a compound key as one column per part, named
    /// `names` (an engine writes them; empty: the one column `key`).
    pub fn with_key_columns(mut self, names: Vec<String>) -> Self {
        self.key_columns = names;
        self
    }

    /// The key's columns (see [`Aggs::with_key_columns`]).
    pub fn key_columns(&self) -> &[String] {
        &self.key_columns
    }

    /// The aggregations, in output order.
    pub fn specs(&self) -> &[AggSpec] {
        &self.specs
    }

    /// The named fields the aggregations read, in the order a [`Rec`]
    /// holds them.
    pub fn fields(&self) -> &[NamedField] {
        &self.fields
    }

    /// Whether an aggregation reads the record's value.
    pub fn reads_value(&self) -> bool {
        self.reads.contains(&Reads::Value)
    }

    fn fresh(&self) -> Box<[Slot]> {
        self.specs
            .iter()
            .map(|s| match s.func {
                Func::Count => Slot::Count(0),
                Func::Sum | Func::Mean => Slot::Sum(0, SumAcc::default()),
                Func::Min | Func::Max => Slot::Extreme(None),
                Func::CountDistinct => Slot::Distinct(BTreeSet::new()),
                Func::ApproxDistinct => Slot::Approx(Box::default()),
                Func::Quantile(_) => Slot::Quantile(Box::default()),
                Func::Earliest | Func::Latest => Slot::Pick(None),
            })
            .collect()
    }
}

/// The partial state of one aggregation.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Slot {
    Count(u64),
    /// Non-null values and their exact sum (sum and mean).
    Sum(u64, SumAcc),
    /// Min or max.
    Extreme(Option<Number>),
    Distinct(BTreeSet<Field>),
    Approx(Box<DistinctSketch>),
    Quantile(Box<QuantileSketch>),
    /// Earliest or latest: the value and where its record sits.
    Pick(Option<Box<(RecordOrder, Field)>>),
}

/// The accumulator of [`Aggs`]: one part per aggregation, made at the
/// first record (an empty one is the identity).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AggsAcc(Box<[Slot]>);

impl AggsAcc {
    /// The accumulator's size in bytes, heap included (sketches count
    /// their registers and bins as their serialized size).
    pub fn footprint(&self) -> usize {
        let slots = self.0.len() * std::mem::size_of::<Slot>();
        let heap: usize = self
            .0
            .iter()
            .map(|s| match s {
                Slot::Distinct(set) => set.iter().map(field_bytes).sum::<usize>(),
                Slot::Approx(_) => 4096,
                Slot::Quantile(q) => 64 + q.count().min(2048) * 8,
                Slot::Pick(Some(_)) => std::mem::size_of::<(RecordOrder, Field)>(),
                _ => 0,
            })
            .sum();
        slots + heap
    }
}

fn field_bytes(f: &Field) -> usize {
    std::mem::size_of::<Field>()
        + match f {
            Field::Text(t) if t.is_heap_allocated() => t.len(),
            _ => 0,
        }
}

/// Keeps `v` in `best` when it is smaller (`min`) or larger (`max`).
#[inline]
fn keep_extreme(func: Func, best: &mut Option<Number>, v: Number) {
    let want = if func == Func::Min {
        Ordering::Less
    } else {
        Ordering::Greater
    };
    if best.is_none_or(|b| v.total_cmp(b) == want) {
        *best = Some(v);
    }
}

/// Whether a value at `order` replaces `picked`: it is earlier
/// (`earliest`) or later (`latest`) in event order. Records have distinct
/// orders, so the pick does not depend on the order values came in.
#[inline]
fn picks(func: Func, picked: &Option<Box<(RecordOrder, Field)>>, order: RecordOrder) -> bool {
    match picked {
        None => true,
        Some(p) if func == Func::Earliest => order < p.0,
        Some(p) => order > p.0,
    }
}

/// One value of an [`Aggs`] result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Cell {
    /// No value (an aggregation over no non-null value).
    Null,
    /// An integer (counts, exact sums).
    Int(i128),
    /// A float (sums with floats, means, quantiles); non-finite only when a
    /// float sum overflows.
    Float(f64),
    /// Text (earliest or latest of a text field).
    Text(CompactString),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cell::Null, Cell::Null) => true,
            (Cell::Int(a), Cell::Int(b)) => a == b,
            (Cell::Float(a), Cell::Float(b)) => a.to_bits() == b.to_bits(),
            (Cell::Text(a), Cell::Text(b)) => a == b,
            _ => false,
        }
    }
}

impl From<Field> for Cell {
    fn from(f: Field) -> Self {
        match f {
            Field::Null => Cell::Null,
            Field::Int(i) => Cell::Int(i128::from(i)),
            Field::Float(f) => Cell::Float(f),
            Field::Text(t) => Cell::Text(t),
        }
    }
}

impl From<Option<Number>> for Cell {
    fn from(n: Option<Number>) -> Self {
        n.map_or(Cell::Null, |n| Field::from(n).into())
    }
}

/// The result of [`Aggs`]: one cell per aggregation, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cells(pub Vec<Cell>);

impl Aggregator for Aggs {
    type Input = Rec;
    type Acc = AggsAcc;
    type Output = Cells;

    fn add(&self, acc: &mut AggsAcc, input: &Rec) {
        if acc.0.is_empty() {
            acc.0 = self.fresh();
        }
        for ((slot, spec), read) in acc.0.iter_mut().zip(&self.specs).zip(&self.reads) {
            // Only the picks and the distinct counts keep the field; the
            // rest read it in place.
            let field = match *read {
                Reads::Record => {
                    if let Slot::Count(n) = slot {
                        *n += 1;
                    }
                    continue;
                }
                Reads::Value => None,
                Reads::Field(i) => match input.fields.get(i) {
                    None | Some(Field::Null) => continue,
                    Some(f) => Some(f),
                },
            };
            let number = match field {
                None => Some(input.value),
                Some(f) => f.number(),
            };
            match slot {
                Slot::Count(n) => *n += 1,
                Slot::Sum(n, sum) => {
                    if let Some(v) = number {
                        *n += 1;
                        sum.add(v);
                    }
                }
                Slot::Extreme(best) => {
                    if let Some(v) = number {
                        keep_extreme(spec.func, best, v);
                    }
                }
                Slot::Distinct(set) => {
                    let value = field.cloned().unwrap_or_else(|| input.value.into());
                    set.insert(value);
                }
                Slot::Approx(sketch) => match field {
                    Some(f) => sketch.add_field(f),
                    None => sketch.add_field(&input.value.into()),
                },
                Slot::Quantile(sketch) => {
                    if let Some(v) = number {
                        sketch.add_value(v.as_f64());
                    }
                }
                Slot::Pick(picked) => {
                    if picks(spec.func, picked, input.order) {
                        let value = field.cloned().unwrap_or_else(|| input.value.into());
                        *picked = Some(Box::new((input.order, value)));
                    }
                }
            }
        }
    }

    fn merge(&self, acc: &mut AggsAcc, other: &AggsAcc) {
        if other.0.is_empty() {
            return;
        }
        if acc.0.is_empty() {
            *acc = other.clone();
            return;
        }
        for ((slot, spec), theirs) in acc.0.iter_mut().zip(&self.specs).zip(other.0.iter()) {
            match (slot, theirs) {
                (Slot::Count(a), Slot::Count(b)) => *a += b,
                (Slot::Sum(n, a), Slot::Sum(m, b)) => {
                    *n += m;
                    a.merge(b);
                }
                (Slot::Extreme(a), Slot::Extreme(Some(v))) => keep_extreme(spec.func, a, *v),
                (Slot::Distinct(a), Slot::Distinct(b)) => a.extend(b.iter().cloned()),
                (Slot::Approx(a), Slot::Approx(b)) => a.merge(b),
                (Slot::Quantile(a), Slot::Quantile(b)) => a.merge(b),
                (Slot::Pick(a), Slot::Pick(Some(b))) if picks(spec.func, a, b.0) => {
                    *a = Some(b.clone());
                }
                _ => {}
            }
        }
    }

    fn finish(&self, acc: &AggsAcc) -> Cells {
        if acc.0.is_empty() {
            return self.finish(&AggsAcc(self.fresh()));
        }
        Cells(
            acc.0
                .iter()
                .zip(&self.specs)
                .map(|(slot, spec)| match slot {
                    Slot::Count(n) => Cell::Int(i128::from(*n)),
                    Slot::Sum(0, _) => Cell::Null,
                    Slot::Sum(n, sum) => match (spec.func, sum.value()) {
                        (Func::Mean, v) => Cell::Float(v.as_f64() / *n as f64),
                        (_, SumValue::Int(i)) => Cell::Int(i),
                        (_, SumValue::Float(f)) => Cell::Float(f),
                    },
                    Slot::Extreme(v) => (*v).into(),
                    Slot::Distinct(set) => Cell::Int(set.len() as i128),
                    Slot::Approx(sketch) => Cell::Int(i128::from(sketch.estimate())),
                    Slot::Quantile(sketch) => match spec.func {
                        Func::Quantile(q) => sketch.quantile(q).map_or(Cell::Null, Cell::Float),
                        _ => Cell::Null,
                    },
                    Slot::Pick(p) => p.as_ref().map_or(Cell::Null, |p| p.1.clone().into()),
                })
                .collect(),
        )
    }
}

/// The stated accuracy of the approximate aggregations, for help texts.
pub fn accuracy_note() -> String {
    format!(
        "quantile is within {}% relative error (DDSketch); approx_distinct has a {:.1}% standard error (HyperLogLog, 4 KiB per window)",
        Quantile::RELATIVE_ACCURACY * 100.0,
        ApproxDistinct::STANDARD_ERROR * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_name_their_columns() {
        for (text, name, shown) in [
            ("count", "count", "count"),
            ("sum", "sum", "sum"),
            ("avg", "mean", "mean"),
            ("sum(amount)", "sum_amount", "sum(amount)"),
            (
                " revenue = sum( amount ) ",
                "revenue",
                "revenue=sum(amount)",
            ),
            ("count(user)", "count_user", "count(user)"),
            (
                "count_distinct(user)",
                "count_distinct_user",
                "count_distinct(user)",
            ),
            (
                "approx_distinct(user)",
                "approx_distinct_user",
                "approx_distinct(user)",
            ),
            (
                "quantile(latency, 0.99)",
                "p99_latency",
                "quantile(latency, 0.99)",
            ),
            (
                "quantile(latency,0.999)",
                "p99.9_latency",
                "quantile(latency, 0.999)",
            ),
            (
                "quantile(latency, 0.5)",
                "p50_latency",
                "quantile(latency, 0.5)",
            ),
            ("earliest(page)", "earliest_page", "earliest(page)"),
            ("latest(meta.page)", "latest_meta.page", "latest(meta.page)"),
        ] {
            let spec: AggSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec.name, name, "{text}");
            assert_eq!(spec.to_string(), shown, "{text}");
        }
        for (text, why) in [
            ("median(x)", "unknown aggregation \"median\""),
            ("sum(a", "missing \")\""),
            ("sum(a, b)", "at most one field"),
            ("quantile(x)", "a field and a fraction"),
            ("quantile(x, 1.5)", "from 0 to 1"),
            ("=count", "empty"),
            ("sum()", "empty"),
        ] {
            let err = text.parse::<AggSpec>().unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
        let err = Aggs::parse(&["sum(a)", "sum(a)"]).unwrap_err();
        assert!(err.contains("both be the column \"sum_a\""), "{err}");
    }

    #[test]
    fn fields_are_listed_once_with_the_strictest_kind() {
        let aggs = Aggs::parse(&["latest(x)", "count(y)", "max(x)", "count"]).unwrap();
        assert_eq!(
            aggs.fields(),
            &[
                NamedField {
                    name: "x".into(),
                    number: true
                },
                NamedField {
                    name: "y".into(),
                    number: false
                }
            ]
        );
        assert!(!aggs.reads_value());
        assert!(Aggs::parse(&["count", "sum"]).unwrap().reads_value());
    }

    #[test]
    fn earliest_and_latest_break_ties_by_partition_and_offset() {
        let aggs = Aggs::parse(&["earliest(p)", "latest(p)"]).unwrap();
        let rec = |p: &str, order| Rec {
            value: Number::Int(1),
            fields: [Field::from(p)].into_iter().collect(),
            order,
        };
        let records = [
            rec("b", (5, 1, 0)),
            rec("a", (5, 0, 9)),
            rec("c", (5, 1, 3)),
            rec("z", (4, 7, 7)),
            rec("y", (6, 0, 0)),
        ];
        // Every order of adding, and merging halves, gives one answer.
        for rotate in 0..records.len() {
            let mut all = records.to_vec();
            all.rotate_left(rotate);
            let (mut a, mut b) = (AggsAcc::default(), AggsAcc::default());
            for (i, r) in all.iter().enumerate() {
                aggs.add(if i % 2 == 0 { &mut a } else { &mut b }, r);
            }
            aggs.merge(&mut b, &a);
            assert_eq!(
                aggs.finish(&b).0,
                vec![Cell::Text("z".into()), Cell::Text("y".into())]
            );
        }
    }
}
