//! The aggregations a job can run: [`JobAggregator`], an [`Aggregator`]
//! over record values whose outputs name their fields, and [`Named`], which
//! makes any single-valued aggregator one.

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tidemark_windows::{
    AggKind, Aggregator, Aggs, Cell, Cells, FromRecord, MetricValues, Metrics, Number, SumValue,
};

use crate::json_text::push_json_string;

/// An [`Aggregator`] the engine can run on any number of workers: it folds
/// record values ([`Number`]), its accumulators can be snapshotted, its
/// outputs can cross workers and processes, and it names the fields its
/// output is written as.
///
/// Rows are written as `{"key":…,"start":…,"end":…,<fields>,"kind":…}`;
/// [`field_names`](JobAggregator::field_names) are the `<fields>`, in order.
/// The default encoders go through `serde_json`: an output that serializes
/// to a JSON object contributes the members named by `field_names`; any
/// other output is the one field `field_names()[0]`. The built-in
/// [`Metrics`] writes its fields directly (faster).
///
/// The [`Aggregator`] laws hold here too: results may not depend on how
/// records were split into panes, sessions or workers.
///
/// ```
/// use tidemark_engine::{JobAggregator, Named};
/// use tidemark_windows::{Aggregator, Number};
///
/// #[derive(Clone)]
/// struct Largest;
/// impl Aggregator for Largest {
///     type Input = Number;
///     type Acc = Option<i64>;
///     type Output = Option<i64>;
///     fn add(&self, acc: &mut Option<i64>, v: &Number) {
///         let v = v.as_f64() as i64;
///         *acc = Some(acc.map_or(v, |a| a.max(v)));
///     }
///     fn merge(&self, acc: &mut Option<i64>, other: &Option<i64>) {
///         if let Some(o) = *other {
///             self.add(acc, &Number::Int(o));
///         }
///     }
///     fn finish(&self, acc: &Option<i64>) -> Option<i64> {
///         *acc
///     }
/// }
///
/// let agg = Named::new("largest", Largest);
/// assert_eq!(agg.field_names(), vec!["largest".to_string()]);
/// let mut row = String::new();
/// agg.write_json_fields(&Some(7), &mut row);
/// assert_eq!(row, ",\"largest\":7");
/// ```
pub trait JobAggregator:
    Aggregator<Input: FromRecord, Acc: JobAcc, Output: JobOutput> + Clone + Send + Sync + 'static
{
    /// The names of the output's fields, in the order rows show them; at
    /// least one.
    fn field_names(&self) -> Vec<String>;

    /// What the aggregation is, for checkpoint fingerprints and the cluster
    /// handshake: by default its field names; an aggregation whose fields
    /// could be named alike over different inputs says more
    /// (`revenue=sum(amount)`).
    fn describe(&self) -> Vec<String> {
        self.field_names()
    }

    /// The record fields its input reads ([`Rec::fields`]), in order; none
    /// for an aggregation over the record's value. Late records show them.
    ///
    /// [`Rec::fields`]: tidemark_windows::Rec::fields
    fn record_fields(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether the aggregation can take `input`: a record it cannot (an
    /// event its fields do not make, for [`Typed`](crate::Typed)) becomes
    /// a dead letter with the reason given, instead of being folded. By
    /// default every input is taken.
    #[inline]
    fn check(&self, input: &Self::Input) -> Result<(), String> {
        let _ = input;
        Ok(())
    }

    /// The columns a row's key is written as: empty for the one column
    /// `key`; for a compound key (see
    /// [`join_key`](tidemark_sources::join_key)), one name per part.
    fn key_names(&self) -> &[String] {
        &[]
    }

    /// Appends `,"name":value` for each field of `out` to a JSON object
    /// being written.
    fn write_json_fields(&self, out: &Self::Output, buf: &mut String) {
        let names = self.field_names();
        for (name, value) in names.iter().zip(json_fields(&names, out)) {
            buf.push(',');
            push_json_string(name, buf);
            buf.push(':');
            buf.push_str(&value.to_string());
        }
    }

    /// The fields of `out` as CSV cells (text without quoting), in
    /// [`field_names`](JobAggregator::field_names) order.
    fn csv_fields(&self, out: &Self::Output) -> Vec<String> {
        json_fields(&self.field_names(), out)
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect()
    }
}

/// What a job's accumulator must be: it crosses workers and processes
/// and is kept in checkpoints.
pub trait JobAcc: Send + Sync + Serialize + DeserializeOwned + 'static {}

impl<T: Send + Sync + Serialize + DeserializeOwned + 'static> JobAcc for T {}

/// What a job's output must be: a [`JobAcc`] that can be shown.
pub trait JobOutput: JobAcc + std::fmt::Debug {}

impl<T: JobAcc + std::fmt::Debug> JobOutput for T {}

/// The JSON value of each named field of `out` (see [`JobAggregator`]).
fn json_fields<O: Serialize>(names: &[String], out: &O) -> Vec<serde_json::Value> {
    match serde_json::to_value(out) {
        Ok(serde_json::Value::Object(mut map))
            if names.len() != 1 || map.contains_key(&names[0]) =>
        {
            names
                .iter()
                .map(|n| map.remove(n).unwrap_or(serde_json::Value::Null))
                .collect()
        }
        Ok(value) => {
            let mut values = vec![value];
            values.resize(names.len().max(1), serde_json::Value::Null);
            values
        }
        Err(e) => names
            .iter()
            .map(|_| serde_json::Value::String(format!("(unserializable: {e})")))
            .collect(),
    }
}

/// Any single-valued aggregator over record values, its output written as
/// one field called `name`.
#[derive(Clone, Debug)]
pub struct Named<A> {
    name: String,
    inner: A,
}

impl<A> Named<A> {
    /// `inner`, its output written as the field `name`.
    pub fn new(name: impl Into<String>, inner: A) -> Self {
        Named {
            name: name.into(),
            inner,
        }
    }

    /// The wrapped aggregator.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

impl<A: Aggregator> Aggregator for Named<A> {
    type Input = A::Input;
    type Acc = A::Acc;
    type Output = A::Output;

    #[inline]
    fn add(&self, acc: &mut Self::Acc, input: &Self::Input) {
        self.inner.add(acc, input)
    }

    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        self.inner.merge(acc, other)
    }

    fn finish(&self, acc: &Self::Acc) -> Self::Output {
        self.inner.finish(acc)
    }
}

impl<A> JobAggregator for Named<A>
where
    A: Aggregator<Input: FromRecord, Acc: JobAcc, Output: JobOutput>
        + Clone
        + Send
        + Sync
        + 'static,
{
    fn field_names(&self) -> Vec<String> {
        vec![self.name.clone()]
    }

    fn write_json_fields(&self, out: &Self::Output, buf: &mut String) {
        write_named(&self.name, out, buf);
    }
}

/// Appends `,"name":out` with `out` as `serde_json` writes it (`null` if it
/// cannot), for aggregators whose output is one field.
pub(crate) fn write_named<O: Serialize>(name: &str, out: &O, buf: &mut String) {
    buf.push(',');
    push_json_string(name, buf);
    buf.push(':');
    match serde_json::to_string(out) {
        Ok(text) => buf.push_str(&text),
        Err(_) => buf.push_str("null"),
    }
}

impl JobAggregator for Metrics {
    fn field_names(&self) -> Vec<String> {
        self.kinds().iter().map(|k| k.name().to_owned()).collect()
    }

    fn write_json_fields(&self, v: &MetricValues, out: &mut String) {
        let mut ints = itoa::Buffer::new();
        for kind in self.kinds() {
            out.push_str(",\"");
            out.push_str(kind.name());
            out.push_str("\":");
            match kind {
                AggKind::Count => out.push_str(ints.format(v.count.unwrap_or(0))),
                AggKind::Sum => match v.sum {
                    Some(SumValue::Int(i)) => out.push_str(ints.format(i)),
                    Some(s) => {
                        let _ = write!(out, "{s}");
                    }
                    None => out.push_str("null"),
                },
                AggKind::Min => write_opt(out, v.min),
                AggKind::Max => write_opt(out, v.max),
                AggKind::Mean => match v.mean {
                    Some(m) => {
                        let _ = write!(out, "{}", Number::Float(m));
                    }
                    None => out.push_str("null"),
                },
            }
        }
    }

    fn csv_fields(&self, v: &MetricValues) -> Vec<String> {
        self.kinds()
            .iter()
            .map(|kind| match kind {
                AggKind::Count => v.count.unwrap_or(0).to_string(),
                AggKind::Sum => v.sum.map(|s| s.to_string()).unwrap_or_default(),
                AggKind::Min => v.min.map(|n| n.to_string()).unwrap_or_default(),
                AggKind::Max => v.max.map(|n| n.to_string()).unwrap_or_default(),
                AggKind::Mean => v
                    .mean
                    .map(|m| Number::Float(m).to_string())
                    .unwrap_or_default(),
            })
            .collect()
    }
}

fn write_opt(out: &mut String, n: Option<Number>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

impl JobAggregator for Aggs {
    fn field_names(&self) -> Vec<String> {
        self.specs().iter().map(|s| s.name.clone()).collect()
    }

    fn describe(&self) -> Vec<String> {
        self.specs().iter().map(ToString::to_string).collect()
    }

    fn record_fields(&self) -> Vec<String> {
        self.fields().iter().map(|f| f.name.clone()).collect()
    }

    fn key_names(&self) -> &[String] {
        self.key_columns()
    }

    fn write_json_fields(&self, out: &Cells, buf: &mut String) {
        for (spec, cell) in self.specs().iter().zip(&out.0) {
            buf.push(',');
            push_json_string(&spec.name, buf);
            buf.push(':');
            push_cell(cell, buf);
        }
    }

    fn csv_fields(&self, out: &Cells) -> Vec<String> {
        out.0
            .iter()
            .map(|cell| match cell {
                Cell::Null => String::new(),
                Cell::Text(t) => t.to_string(),
                other => {
                    let mut text = String::new();
                    push_cell(other, &mut text);
                    text
                }
            })
            .collect()
    }
}

/// Appends one result cell as JSON.
pub(crate) fn push_cell(cell: &Cell, buf: &mut String) {
    match cell {
        Cell::Null => buf.push_str("null"),
        Cell::Int(i) => buf.push_str(itoa::Buffer::new().format(*i)),
        Cell::Float(f) => {
            let _ = write!(buf, "{}", Number::Float(*f));
        }
        Cell::Text(t) => push_json_string(t, buf),
    }
}
