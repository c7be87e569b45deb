//! Dead letters: input that could not be decoded, kept as data with its
//! partition, offset and the reason, so nothing is lost silently.

use serde::{Deserialize, Serialize};

use crate::record::{Offset, PartitionId};

/// How many bytes of the offending input a dead letter keeps in
/// [`DeadLetter::raw`].
pub const RAW_LIMIT: usize = 256;

/// A record that could not be decoded.
///
/// It takes its offset like any record, so the offsets of a partition stay
/// dense and a dead letter can be found again in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The partition the input was read from.
    pub partition: PartitionId,
    /// The offset the record would have had.
    pub offset: Offset,
    /// Why it was rejected, e.g. `missing field "ts"`.
    pub reason: String,
    /// The start of the input, lossily decoded as UTF-8 and cut to at most
    /// [`RAW_LIMIT`] bytes (on a character boundary).
    pub raw: String,
}

impl DeadLetter {
    /// A dead letter for `raw`, keeping at most [`RAW_LIMIT`] bytes of it.
    pub fn new(
        partition: PartitionId,
        offset: Offset,
        reason: impl Into<String>,
        raw: &[u8],
    ) -> Self {
        DeadLetter {
            partition,
            offset,
            reason: reason.into(),
            raw: truncate_raw(raw),
        }
    }
}

/// Lossy UTF-8 of the first bytes of `raw`, at most [`RAW_LIMIT`] bytes long.
fn truncate_raw(raw: &[u8]) -> String {
    let head = raw.get(..RAW_LIMIT.min(raw.len())).unwrap_or(raw);
    let mut text = String::from_utf8_lossy(head).into_owned();
    // Replacement characters are 3 bytes, so lossy text can outgrow the limit.
    if text.len() > RAW_LIMIT {
        let mut cut = RAW_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(300);
        let letter = DeadLetter::new(1, 2, "x", long.as_bytes());
        assert!(letter.raw.len() <= RAW_LIMIT);
        assert!(letter.raw.chars().all(|c| c == 'é'));
        let bad = vec![0xffu8; 300];
        let letter = DeadLetter::new(1, 2, "x", &bad);
        assert!(letter.raw.len() <= RAW_LIMIT);
    }
}
