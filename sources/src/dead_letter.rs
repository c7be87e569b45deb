//! Dead letters: input that could not be decoded, kept as data with its
//! partition, offset, file and line, and the reason, so nothing is lost
//! silently.

use std::sync::Arc;

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
///
/// Every field is serialized, absent or not: dead letters cross between
/// workers and processes in a format that is not self-describing.
pub struct DeadLetter {
    /// The partition the input was read from.
    pub partition: PartitionId,
    /// The offset the record would have had.
    pub offset: Offset,
    /// The file the input was read from, when it came from a file (the
    /// path as configured, joined with the file name for a directory;
    /// `<stdin>` for standard input).
    #[serde(default)]
    pub file: Option<Arc<str>>,
    /// The 1-based line of that file where the input starts, counting every
    /// line of the file (a CSV header, the lines of other partitions in a
    /// one-file layout). It differs from `offset`, which counts only the
    /// partition's records.
    #[serde(default)]
    pub line: Option<u64>,
    /// Why it was rejected, e.g. `missing field "ts"`.
    pub reason: String,
    /// The start of the input, lossily decoded as UTF-8 and cut to at most
    /// [`RAW_LIMIT`] bytes (on a character boundary).
    pub raw: String,
    /// The table whose input held it (`None`: the stream's input).
    #[serde(default)]
    pub table: Option<Arc<str>>,
}

impl DeadLetter {
    /// A dead letter for `raw`, keeping at most [`RAW_LIMIT`] bytes of it,
    /// with no file or line.
    pub fn new(
        partition: PartitionId,
        offset: Offset,
        reason: impl Into<String>,
        raw: &[u8],
    ) -> Self {
        DeadLetter {
            partition,
            offset,
            file: None,
            line: None,
            reason: reason.into(),
            raw: truncate_raw(raw),
            table: None,
        }
    }

    /// The same dead letter, found at `line` (1-based) of `file`.
    pub fn at(mut self, file: &Arc<str>, line: u64) -> Self {
        self.file = Some(Arc::clone(file));
        self.line = Some(line);
        self
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
