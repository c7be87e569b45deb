//! The unit of data a source yields: [`Record`], its [`Value`], and the
//! vocabulary shared by every source (partition ids, offsets, read status).

use serde::{Deserialize, Serialize};

use crate::dead_letter::DeadLetter;
pub use tidemark_windows::Field;

/// Identifies one partition of a source. Partitions are numbered `0..n`.
pub type PartitionId = u32;

/// The position of a record in its partition: the first record is at offset 0.
pub type Offset = u64;

/// A record key: a string stored inline when it is at most 24 bytes long,
/// so that decoding a record with a short key allocates nothing.
pub type Key = compact_str::CompactString;

/// The smallest event time a source accepts, in epoch milliseconds (−2^53).
///
/// Times outside `MIN_EVENT_TIME..=MAX_EVENT_TIME` become dead letters: the
/// bound keeps every accepted time exactly representable as an `f64` and
/// leaves room for window arithmetic (`end + lateness`) without overflow.
pub const MIN_EVENT_TIME: i64 = -(1 << 53);

/// The largest event time a source accepts, in epoch milliseconds (2^53).
pub const MAX_EVENT_TIME: i64 = 1 << 53;

/// A numeric payload.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// An integer; sums of integers are exact.
    Int(i64),
    /// A finite floating-point number.
    Float(f64),
}

impl Value {
    /// The value as an `f64` (integers beyond 2^53 lose precision).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
        }
    }
}

/// One decoded event: where it sits in the log and what it says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The partition the record was read from.
    pub partition: PartitionId,
    /// The record's position in its partition.
    pub offset: Offset,
    /// The grouping key (numeric keys are carried as their decimal text).
    pub key: Key,
    /// Event time in epoch milliseconds, within
    /// [`MIN_EVENT_TIME`]`..=`[`MAX_EVENT_TIME`].
    pub event_time: i64,
    /// The payload that aggregations fold.
    pub value: Value,
    /// The named fields the job reads ([`DecodeConfig::named`]), in that
    /// order; empty when it names none.
    ///
    /// [`DecodeConfig::named`]: crate::DecodeConfig::named
    pub fields: Vec<Field>,
}

/// Separates the parts of a compound key ([`join_key`]).
const KEY_SEPARATOR: char = '\u{1f}';
/// Escapes a separator or itself inside a part.
const KEY_ESCAPE: char = '\u{1e}';

/// The key of a record whose key has several fields: their texts joined
/// by U+001F (a U+001E or U+001F inside a part is escaped), so that
/// [`split_key`] gives the parts back and two different lists of parts
/// never give the same key.
///
/// ```
/// use tidemark_sources::{join_key, split_key};
/// let key = join_key(&["US", "home\u{1f}page"]);
/// assert_eq!(split_key(&key), ["US", "home\u{1f}page"]);
/// assert_ne!(join_key(&["a", "b"]), join_key(&["a\u{1f}b"]));
/// ```
pub fn join_key<S: AsRef<str>>(parts: &[S]) -> Key {
    let mut key = Key::default();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(KEY_SEPARATOR);
        }
        let part = part.as_ref();
        if part.contains([KEY_SEPARATOR, KEY_ESCAPE]) {
            for c in part.chars() {
                match c {
                    KEY_ESCAPE => key.push_str("\u{1e}0"),
                    KEY_SEPARATOR => key.push_str("\u{1e}1"),
                    c => key.push(c),
                }
            }
        } else {
            key.push_str(part);
        }
    }
    key
}

/// The parts of a key made by [`join_key`] (a key of one part is itself).
pub fn split_key(key: &str) -> Vec<std::borrow::Cow<'_, str>> {
    key.split(KEY_SEPARATOR)
        .map(|part| {
            if part.contains(KEY_ESCAPE) {
                let mut out = String::with_capacity(part.len());
                let mut chars = part.chars();
                while let Some(c) = chars.next() {
                    match (c, c == KEY_ESCAPE) {
                        (_, true) => match chars.next() {
                            Some('1') => out.push(KEY_SEPARATOR),
                            _ => out.push(KEY_ESCAPE),
                        },
                        (c, false) => out.push(c),
                    }
                }
                std::borrow::Cow::Owned(out)
            } else {
                std::borrow::Cow::Borrowed(part)
            }
        })
        .collect()
}

/// What a reader yields for one offset: a record, or a dead letter when the
/// input at that offset could not be decoded.
pub type Decoded = Result<Record, DeadLetter>;

/// What a [`PartitionReader::read`](crate::PartitionReader::read) call found
/// after appending its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// `max` items were appended and more may follow: call again.
    More,
    /// A live input (a followed file, standard input, a channel) has
    /// nothing more right now; call again later.
    CaughtUp,
    /// A bounded input is finished: no later call will yield anything.
    End,
}
