//! Conversions from a found field ([`Scalar`]) to a key, an event time, a
//! value or a partition id, shared by every format and both decode paths so
//! that they cannot disagree.

use crate::record::Key;
use chrono::DateTime;

use super::{Scalar, TimeFormat};
use crate::record::{Field, PartitionId, Value, MAX_EVENT_TIME, MIN_EVENT_TIME};

fn missing(name: &str) -> String {
    format!("missing field \"{name}\"")
}

fn kind(scalar: &Scalar<'_>) -> &'static str {
    match scalar {
        Scalar::Str(_) => "string",
        Scalar::Int(_) | Scalar::UInt(_) | Scalar::Float(_) => "number",
        Scalar::Other(kind) => kind,
    }
}

fn wrong_type(name: &str, expected: &str, found: &Scalar<'_>) -> String {
    format!(
        "wrong type for field \"{name}\": expected {expected}, found {}",
        kind(found)
    )
}

/// The key: strings as is, numbers as their decimal text.
#[inline(always)]
pub(super) fn key(found: Option<Scalar<'_>>, name: &str) -> Result<Key, String> {
    use compact_str::ToCompactString;
    match found {
        None => Err(missing(name)),
        Some(Scalar::Str(s)) => Ok(Key::from(&*s)),
        Some(Scalar::Int(i)) => Ok(i.to_compact_string()),
        Some(Scalar::UInt(u)) => Ok(u.to_compact_string()),
        Some(Scalar::Float(f)) => Ok(f.to_compact_string()),
        Some(other) => Err(wrong_type(name, "a string or a number", &other)),
    }
}

/// A number parsed from text: an `i64` when it is one, else a finite `f64`.
enum Number {
    Int(i64),
    Float(f64),
}

#[inline]
fn parse_number(text: &str) -> Option<Number> {
    if let Some(i) = plain_int(text.as_bytes()) {
        return Some(Number::Int(i));
    }
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Some(Number::Int(i));
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Some(Number::Float(f)),
        _ => None,
    }
}

/// `-?[0-9]{1,18}`, the common case, without the general parser.
#[inline]
fn plain_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + i64::from(d);
    }
    Some(if negative { -n } else { n })
}

/// The value: integers that fit `i64` stay integers, other numbers are floats.
#[inline]
pub(super) fn value(found: Option<Scalar<'_>>, name: &str) -> Result<Value, String> {
    match found {
        None => Err(missing(name)),
        Some(Scalar::Int(i)) => Ok(Value::Int(i)),
        Some(Scalar::UInt(u)) => Ok(Value::Float(u as f64)),
        Some(Scalar::Float(f)) if f.is_finite() => Ok(Value::Float(f)),
        Some(Scalar::Str(s)) => match parse_number(&s) {
            Some(Number::Int(i)) => Ok(Value::Int(i)),
            Some(Number::Float(f)) => Ok(Value::Float(f)),
            None => Err(format!(
                "invalid value \"{s}\" in field \"{name}\": expected a number"
            )),
        },
        Some(other) => Err(wrong_type(name, "a number", &other)),
    }
}

/// The value when the value field is optional: absent, JSON `null` or a
/// blank CSV field is `Int(1)`, anything else as [`value`].
#[inline]
pub(super) fn optional_value(found: Option<Scalar<'_>>, name: &str) -> Result<Value, String> {
    match found {
        None | Some(Scalar::Other("null")) => Ok(Value::Int(1)),
        Some(Scalar::Str(s)) if s.trim().is_empty() => Ok(Value::Int(1)),
        found => value(found, name),
    }
}

/// A named field: absent, `null` or blank is null; with `number`, a
/// number (or numeric text) or a dead letter; otherwise text or a number
/// as found. Arrays, objects and booleans are dead letters.
#[inline]
pub(super) fn field(found: Option<Scalar<'_>>, name: &str, number: bool) -> Result<Field, String> {
    match found {
        None | Some(Scalar::Other("null")) => Ok(Field::Null),
        Some(Scalar::Str(s)) if s.trim().is_empty() => Ok(Field::Null),
        Some(Scalar::Str(s)) if !number => Ok(Field::Text(Key::from(&*s))),
        Some(Scalar::Other(kind)) => Err(wrong_type(
            name,
            if number {
                "a number"
            } else {
                "a string or a number"
            },
            &Scalar::Other(kind),
        )),
        found => Ok(match value(found, name)? {
            Value::Int(i) => Field::Int(i),
            Value::Float(f) => Field::Float(f),
        }),
    }
}

fn in_range(ms: i64) -> bool {
    (MIN_EVENT_TIME..=MAX_EVENT_TIME).contains(&ms)
}

/// Milliseconds from a float count of `unit_ms` milliseconds, rounded.
fn float_ms(f: f64, unit_ms: f64) -> Option<i64> {
    let ms = (f * unit_ms).round();
    // The range check happens in f64 so the cast below cannot saturate.
    if ms.is_finite() && ms >= MIN_EVENT_TIME as f64 && ms <= MAX_EVENT_TIME as f64 {
        Some(ms as i64)
    } else {
        None
    }
}

#[inline]
fn int_ms(i: i64, unit_ms: i64) -> Option<i64> {
    i.checked_mul(unit_ms).filter(|ms| in_range(*ms))
}

/// Parses RFC 3339, then ISO 8601 with a `+hhmm` offset, to epoch
/// milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.trim();
    let parsed = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()?;
    Some(parsed.timestamp_millis())
}

/// The event time in epoch milliseconds.
#[inline]
pub(super) fn time(
    found: Option<Scalar<'_>>,
    name: &str,
    format: TimeFormat,
) -> Result<i64, String> {
    let found = found.ok_or_else(|| missing(name))?;
    let invalid = |shown: &dyn std::fmt::Display, out_of_range: bool| {
        let suffix = if out_of_range { ": out of range" } else { "" };
        format!("invalid time \"{shown}\" for format {format} in field \"{name}\"{suffix}")
    };
    let unit_ms = match format {
        TimeFormat::EpochMs => 1,
        TimeFormat::EpochS => 1000,
        TimeFormat::Rfc3339 => {
            return match &found {
                Scalar::Str(s) => match parse_rfc3339(s) {
                    Some(ms) if in_range(ms) => Ok(ms),
                    Some(_) => Err(invalid(s, true)),
                    None => Err(invalid(s, false)),
                },
                other => Err(wrong_type(name, "an rfc3339 string", other)),
            };
        }
    };
    match &found {
        Scalar::Int(i) => int_ms(*i, unit_ms).ok_or_else(|| invalid(i, true)),
        Scalar::UInt(u) => Err(invalid(u, true)),
        Scalar::Float(f) => float_ms(*f, unit_ms as f64).ok_or_else(|| invalid(f, true)),
        Scalar::Str(s) => match parse_number(s) {
            Some(Number::Int(i)) => int_ms(i, unit_ms).ok_or_else(|| invalid(s, true)),
            Some(Number::Float(f)) => float_ms(f, unit_ms as f64).ok_or_else(|| invalid(s, true)),
            None => Err(invalid(s, false)),
        },
        other => Err(wrong_type(name, "a number", other)),
    }
}

/// The partition id named by a line.
pub(super) fn partition(found: Option<Scalar<'_>>, name: &str) -> Result<PartitionId, String> {
    let invalid = |shown: &dyn std::fmt::Display| {
        format!("invalid partition \"{shown}\" in field \"{name}\"")
    };
    match found {
        None => Err(missing(name)),
        Some(Scalar::Int(i)) => PartitionId::try_from(i).map_err(|_| invalid(&i)),
        Some(Scalar::UInt(u)) => Err(invalid(&u)),
        Some(Scalar::Str(s)) => s.trim().parse::<PartitionId>().map_err(|_| invalid(&s)),
        Some(other) => Err(wrong_type(name, "an integer", &other)),
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn s(text: &str) -> Option<Scalar<'_>> {
        Some(Scalar::Str(Cow::Borrowed(text)))
    }

    #[test]
    fn times() {
        assert_eq!(time(s("1500"), "ts", TimeFormat::EpochMs), Ok(1500));
        assert_eq!(time(s("1.5"), "ts", TimeFormat::EpochS), Ok(1500));
        assert_eq!(
            time(Some(Scalar::Float(-1.0005)), "ts", TimeFormat::EpochS),
            Ok(-1001)
        );
        assert_eq!(
            time(s("1970-01-01T00:00:01.5Z"), "ts", TimeFormat::Rfc3339),
            Ok(1500)
        );
        assert_eq!(
            time(s("1970-01-01T01:00:01+0100"), "ts", TimeFormat::Rfc3339),
            Ok(1000)
        );
        assert_eq!(
            time(Some(Scalar::Int(1 << 53)), "ts", TimeFormat::EpochMs),
            Ok(1 << 53)
        );
        assert!(time(Some(Scalar::Int((1 << 53) + 1)), "ts", TimeFormat::EpochMs).is_err());
        assert!(time(Some(Scalar::Int(i64::MAX)), "ts", TimeFormat::EpochS).is_err());
        assert!(time(Some(Scalar::Float(1e300)), "ts", TimeFormat::EpochS).is_err());
        assert!(time(s("NaN"), "ts", TimeFormat::EpochMs).is_err());
        assert_eq!(
            time(s("abc"), "ts", TimeFormat::Rfc3339),
            Err("invalid time \"abc\" for format rfc3339 in field \"ts\"".to_owned())
        );
    }

    #[test]
    fn values_and_keys() {
        assert_eq!(value(s(" 42 "), "v"), Ok(Value::Int(42)));
        assert_eq!(value(s("4.5"), "v"), Ok(Value::Float(4.5)));
        assert!(value(s("inf"), "v").is_err());
        assert_eq!(key(Some(Scalar::Int(-3)), "k"), Ok(Key::from("-3")));
        assert_eq!(key(Some(Scalar::Float(1.5)), "k"), Ok(Key::from("1.5")));
        assert!(key(Some(Scalar::Other("boolean")), "k").is_err());
        assert_eq!(partition(s("7"), "p"), Ok(7));
        assert!(partition(Some(Scalar::Int(-1)), "p").is_err());
    }
}
