//! Typed events for user aggregations: [`Typed`] runs an
//! [`Aggregator`] whose input is the user's own event type `E` (the shape
//! of Flink's `AggregateFunction<IN, ACC, OUT>`), made from the record's
//! named fields by serde, so the aggregation sees the whole event, strings
//! and all.
//!
//! The fields are those the record carries
//! ([`Record::fields`](tidemark_sources::Record::fields), decoded by a file
//! or topic source from [`DecodeConfig::named`](tidemark_sources::DecodeConfig::named),
//! or set by the program on a memory or channel source), in the order
//! [`Typed::new`] names them. With one field, `E` is that field's value
//! (`String`, `f64`, `Option<i64>`, …); with several, `E` is a struct
//! (or map) with those fields. A null field reads as `None` for an
//! `Option`, and a record whose fields do not make an `E` is a dead letter
//! saying why, never dropped silently.

use std::marker::PhantomData;

use serde::de::value::{Error as DeError, MapDeserializer};
use serde::de::{DeserializeOwned, Deserializer, IntoDeserializer, Visitor};
use tidemark_windows::{Aggregator, Field, Rec};

use crate::aggregator::JobAggregator;

/// An aggregator over the user's event type `E`, its output written as
/// one field called `name`; see the [module docs](self).
///
/// ```
/// use std::collections::BTreeSet;
/// use tidemark_engine::{JobAggregator, Typed};
/// use tidemark_windows::{Aggregator, Field, Rec};
///
/// /// Distinct visitors: the input is the visitor's name.
/// #[derive(Clone)]
/// struct Distinct;
/// impl Aggregator for Distinct {
///     type Input = String;
///     type Acc = BTreeSet<String>;
///     type Output = usize;
///     fn add(&self, acc: &mut Self::Acc, visitor: &String) {
///         acc.insert(visitor.clone());
///     }
///     fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
///         acc.extend(other.iter().cloned());
///     }
///     fn finish(&self, acc: &Self::Acc) -> usize {
///         acc.len()
///     }
/// }
///
/// let agg = Typed::new("visitors", &["user"], Distinct);
/// assert_eq!(agg.record_fields(), ["user"]);
/// let rec = |user: &str| Rec { fields: [Field::from(user)].into_iter().collect(), ..Rec::default() };
/// let mut acc = Default::default();
/// for user in ["ann", "bob", "ann"] {
///     agg.add(&mut acc, &rec(user));
/// }
/// assert_eq!(agg.finish(&acc), 2);
/// assert!(agg.check(&Rec::default()).is_err(), "no user: not a String");
/// ```
pub struct Typed<E, A> {
    name: String,
    fields: Vec<String>,
    inner: A,
    event: PhantomData<fn() -> E>,
}

impl<E, A: Clone> Clone for Typed<E, A> {
    fn clone(&self) -> Self {
        Typed {
            name: self.name.clone(),
            fields: self.fields.clone(),
            inner: self.inner.clone(),
            event: PhantomData,
        }
    }
}

impl<E, A: std::fmt::Debug> std::fmt::Debug for Typed<E, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Typed")
            .field("name", &self.name)
            .field("fields", &self.fields)
            .field("inner", &self.inner)
            .finish()
    }
}

impl<E: DeserializeOwned, A: Aggregator<Input = E>> Typed<E, A> {
    /// `inner` over events made of the record fields `fields` (in the
    /// record's order), its output written as the field `name`.
    pub fn new(name: impl Into<String>, fields: &[&str], inner: A) -> Self {
        Typed {
            name: name.into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            inner,
            event: PhantomData,
        }
    }

    /// The wrapped aggregator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// The event of a record, or why its fields make none.
    pub fn event(&self, record: &Rec) -> Result<E, String> {
        let shown = |e: DeError| format!("the fields {:?} make no event: {e}", self.fields);
        match self.fields.as_slice() {
            [_] => E::deserialize(FieldDe(record.fields.first().unwrap_or(&Field::Null)))
                .map_err(shown),
            names => {
                let pairs = names.iter().enumerate().map(|(i, name)| {
                    (
                        name.as_str(),
                        FieldDe(record.fields.get(i).unwrap_or(&Field::Null)),
                    )
                });
                E::deserialize(MapDeserializer::<_, DeError>::new(pairs)).map_err(shown)
            }
        }
    }
}

impl<E: DeserializeOwned, A: Aggregator<Input = E>> Aggregator for Typed<E, A> {
    type Input = Rec;
    type Acc = A::Acc;
    type Output = A::Output;

    fn add(&self, acc: &mut A::Acc, record: &Rec) {
        // A record whose event cannot be made never gets here: the engine
        // asks `check` first and makes it a dead letter.
        if let Ok(event) = self.event(record) {
            self.inner.add(acc, &event);
        }
    }

    fn merge(&self, acc: &mut A::Acc, other: &A::Acc) {
        self.inner.merge(acc, other);
    }

    fn finish(&self, acc: &A::Acc) -> A::Output {
        self.inner.finish(acc)
    }
}

impl<E, A> JobAggregator for Typed<E, A>
where
    E: DeserializeOwned + 'static,
    A: Aggregator<Input = E, Acc: crate::aggregator::JobAcc, Output: crate::aggregator::JobOutput>
        + Clone
        + Send
        + Sync
        + 'static,
{
    fn field_names(&self) -> Vec<String> {
        vec![self.name.clone()]
    }

    fn describe(&self) -> Vec<String> {
        vec![format!("{}({})", self.name, self.fields.join(", "))]
    }

    fn record_fields(&self) -> Vec<String> {
        self.fields.clone()
    }

    fn check(&self, input: &Rec) -> Result<(), String> {
        self.event(input).map(drop)
    }

    fn write_json_fields(&self, out: &Self::Output, buf: &mut String) {
        crate::aggregator::write_named(&self.name, out, buf);
    }
}

/// One field as a serde deserializer: null is a unit (`None` for an
/// `Option`), numbers and text are themselves.
#[derive(Clone, Copy)]
struct FieldDe<'a>(&'a Field);

impl<'de> Deserializer<'de> for FieldDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Field::Null => visitor.visit_unit(),
            Field::Int(i) => visitor.visit_i64(*i),
            Field::Float(f) => visitor.visit_f64(*f),
            Field::Text(t) => visitor.visit_str(t),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            Field::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, 'a> IntoDeserializer<'de, DeError> for FieldDe<'a> {
    type Deserializer = FieldDe<'a>;

    fn into_deserializer(self) -> FieldDe<'a> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Click {
        user: String,
        amount: Option<f64>,
        n: u32,
    }

    #[derive(Clone)]
    struct Collect;
    impl Aggregator for Collect {
        type Input = Click;
        type Acc = Vec<String>;
        type Output = Vec<String>;
        fn add(&self, acc: &mut Vec<String>, c: &Click) {
            acc.push(format!("{} {:?} {}", c.user, c.amount, c.n));
        }
        fn merge(&self, acc: &mut Vec<String>, other: &Vec<String>) {
            acc.extend(other.iter().cloned());
        }
        fn finish(&self, acc: &Vec<String>) -> Vec<String> {
            acc.clone()
        }
    }

    fn rec(fields: Vec<Field>) -> Rec {
        Rec {
            fields: fields.into_iter().collect(),
            ..Rec::default()
        }
    }

    #[test]
    fn structs_are_made_from_named_fields_and_mismatches_say_why() {
        let agg = Typed::new("clicks", &["user", "amount", "n"], Collect);
        let good = rec(vec![Field::from("ann"), Field::Null, Field::Int(3)]);
        assert_eq!(
            agg.event(&good).unwrap(),
            Click {
                user: "ann".into(),
                amount: None,
                n: 3
            }
        );
        let ints_are_floats = rec(vec![Field::from("bob"), Field::Int(2), Field::Int(1)]);
        assert_eq!(agg.event(&ints_are_floats).unwrap().amount, Some(2.0));
        for (bad, says) in [
            (
                rec(vec![Field::Null, Field::Null, Field::Int(1)]),
                "invalid type: unit value, expected a string",
            ),
            (
                rec(vec![Field::from("c"), Field::Null, Field::Int(-1)]),
                "invalid value: integer `-1`, expected u32",
            ),
            (
                rec(vec![Field::from("c"), Field::from("x"), Field::Int(1)]),
                "invalid type: string \"x\", expected f64",
            ),
        ] {
            let err = agg.check(&bad).unwrap_err();
            assert!(err.contains(says), "{err}");
            assert!(err.contains("[\"user\", \"amount\", \"n\"]"), "{err}");
        }
    }
}
