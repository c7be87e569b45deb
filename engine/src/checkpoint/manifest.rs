//! The manifest of a checkpoint: everything but the window state, the
//! table of the checkpoint's other files with their lengths and CRC32s, and
//! its own CRC32; and the reasons a checkpoint can be found unusable.
//!
//! # Format
//!
//! The file `MANIFEST` is UTF-8 text: a pretty-printed JSON object ending
//! in a newline, then one line `crc32 XXXXXXXX` (eight lowercase hex
//! digits) and a newline. The CRC32 (IEEE, as `crc32fast` and zlib compute
//! it) covers every byte before that last line, the JSON's final newline
//! included. A manifest without that line, or whose CRC does not match, is
//! not used: a file torn by a crash or changed later is never trusted.
//!
//! ```text
//! {
//!   "format": 2,
//!   "id": 7,
//!   "frontier": 1700000060000,
//!   "positions": { "0": { "offset": 1200, "stream_time": 1700000059000 } },
//!   "files": [ { "name": "state.bin", "len": 5120, "crc32": 2868451781 } ],
//!   …
//! }
//! crc32 5fd1e0a2
//! ```
//!
//! `format` is [`FORMAT`] (format [`OLDEST_FORMAT`] is read too); a later, incompatible layout gets a new number,
//! and a manifest of a format this version does not know is reported as
//! such rather than misread. Fields added compatibly default when absent.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use tidemark_sources::PartitionId;
use tidemark_windows::EventTime;

use super::fingerprint::JobFingerprint;
use super::Position;
use super::{Checkpoint, CheckpointId, CommittedOutputs, Counters};

/// The checkpoint format this version writes (it reads 1 too). Format 2
/// keeps each stateful operator's state under its name in the state file
/// (see [`state`](super::state)); format 1 kept the window operator's only.
pub const FORMAT: u32 = 2;

/// The oldest checkpoint format this version reads.
pub const OLDEST_FORMAT: u32 = 1;

/// The manifest's file name in a checkpoint's directory.
pub const MANIFEST_FILE: &str = "MANIFEST";

/// The window state's file name in a checkpoint's directory.
pub const STATE_FILE: &str = "state.bin";

/// What a checkpoint's manifest records (see the [module docs](self) for
/// the file format).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint format ([`FORMAT`]).
    pub format: u32,
    /// The checkpoint's creation sequence number.
    pub id: CheckpointId,
    /// When it was written (wall clock, ms since the Unix epoch): for
    /// people reading it, nothing depends on it.
    pub created_unix_ms: u64,
    /// [`Checkpoint::frontier`].
    pub frontier: EventTime,
    /// [`Checkpoint::positions`].
    pub positions: BTreeMap<PartitionId, Position>,
    /// [`Checkpoint::outputs`].
    pub outputs: CommittedOutputs,
    /// [`Checkpoint::fingerprint`].
    pub fingerprint: JobFingerprint,
    /// [`Checkpoint::counters`].
    #[serde(default)]
    pub counters: Counters,
    /// The checkpoint's other files.
    pub files: Vec<FileEntry>,
}

/// One file of a checkpoint, as its manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The file name, in the checkpoint's directory.
    pub name: String,
    /// Its length in bytes.
    pub len: u64,
    /// The CRC32 (IEEE) of its bytes.
    pub crc32: u32,
}

impl Manifest {
    /// The manifest of `checkpoint` numbered `id`, whose state file has
    /// length and CRC `state`.
    pub(crate) fn describe(
        id: CheckpointId,
        created_unix_ms: u64,
        checkpoint: &Checkpoint,
        state: FileEntry,
    ) -> Manifest {
        Manifest {
            format: FORMAT,
            id,
            created_unix_ms,
            frontier: checkpoint.frontier,
            positions: checkpoint.positions.clone(),
            outputs: checkpoint.outputs,
            fingerprint: checkpoint.fingerprint.clone(),
            counters: checkpoint.counters.clone(),
            files: vec![state],
        }
    }

    /// The checkpoint this manifest describes, with its window state.
    pub(crate) fn into_checkpoint(self, state: Vec<u8>) -> Checkpoint {
        Checkpoint {
            frontier: self.frontier,
            positions: self.positions,
            state,
            outputs: self.outputs,
            fingerprint: self.fingerprint,
            counters: self.counters,
        }
    }

    /// The entry of the file `name`.
    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The bytes of the manifest file: the JSON, then its CRC line.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(format!("crc32 {crc:08x}\n").as_bytes());
        Ok(bytes)
    }

    /// Reads a manifest file's bytes, checking its CRC and format.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, Invalid> {
        let (body, stated) = split_crc_line(bytes).ok_or(Invalid::ManifestTruncated)?;
        let found = crc32fast::hash(body);
        if found != stated {
            return Err(Invalid::ChecksumMismatch {
                file: MANIFEST_FILE.into(),
                expected: stated,
                found,
            });
        }
        // Read the format first, so that a newer layout is reported as such
        // rather than as a parse error.
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let format: Format =
            serde_json::from_slice(body).map_err(|e| Invalid::ManifestUnreadable(e.to_string()))?;
        if !(OLDEST_FORMAT..=FORMAT).contains(&format.format) {
            return Err(Invalid::UnsupportedFormat {
                found: format.format,
            });
        }
        let manifest: Manifest =
            serde_json::from_slice(body).map_err(|e| Invalid::ManifestUnreadable(e.to_string()))?;
        for file in &manifest.files {
            if !is_plain_name(&file.name) {
                return Err(Invalid::ManifestUnreadable(format!(
                    "file name \"{}\" is not a plain name",
                    file.name
                )));
            }
        }
        if manifest.file(STATE_FILE).is_none() {
            return Err(Invalid::ManifestUnreadable(format!(
                "it lists no \"{STATE_FILE}\""
            )));
        }
        Ok(manifest)
    }
}

/// Splits a manifest into its body and the CRC its last line states.
fn split_crc_line(bytes: &[u8]) -> Option<(&[u8], u32)> {
    let without_newline = bytes.strip_suffix(b"\n")?;
    let start = without_newline
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = std::str::from_utf8(&without_newline[start..]).ok()?;
    let hex = line.strip_prefix("crc32 ")?;
    // Exactly as written: eight lowercase hex digits.
    if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let crc = u32::from_str_radix(hex, 16).ok()?;
    Some((&bytes[..start], crc))
}

/// A file name without directories (so a manifest cannot point outside its
/// checkpoint).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && name != MANIFEST_FILE
}

/// Why a checkpoint cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// There is no manifest: the checkpoint was never completed (a write
    /// was interrupted) or its manifest was removed.
    MissingManifest {
        /// Temporary files left behind by an interrupted write.
        leftovers: Vec<String>,
    },
    /// The manifest ends without its CRC line (a torn write).
    ManifestTruncated,
    /// The manifest's checksum holds but its content cannot be read.
    ManifestUnreadable(String),
    /// The manifest is of a format this version does not read.
    UnsupportedFormat {
        /// Its format number.
        found: u32,
    },
    /// The manifest belongs to another checkpoint (a directory copied or
    /// renamed by hand).
    WrongId {
        /// The id the manifest states.
        found: CheckpointId,
    },
    /// A file the manifest lists is missing.
    MissingFile {
        /// Its name.
        file: String,
    },
    /// A file is shorter than the manifest says.
    Truncated {
        /// Its name.
        file: String,
        /// The length the manifest records.
        expected: u64,
        /// The length found.
        found: u64,
    },
    /// A file is longer than the manifest says.
    TooLong {
        /// Its name.
        file: String,
        /// The length the manifest records.
        expected: u64,
        /// The length found.
        found: u64,
    },
    /// A file's CRC32 differs from the one recorded for it.
    ChecksumMismatch {
        /// Its name.
        file: String,
        /// The CRC recorded.
        expected: u32,
        /// The CRC of the bytes found.
        found: u32,
    },
    /// A file could not be read.
    Unreadable {
        /// Its name.
        file: String,
        /// The I/O error.
        error: String,
    },
    /// The window state passed its checksum but could not be decoded.
    UnreadableState(String),
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::MissingManifest { leftovers } if leftovers.is_empty() => {
                write!(f, "missing manifest (the checkpoint was never completed)")
            }
            Invalid::MissingManifest { leftovers } => write!(
                f,
                "missing manifest (a write was interrupted; left behind: {})",
                leftovers
                    .iter()
                    .map(|l| format!("\"{l}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Invalid::ManifestTruncated => {
                write!(f, "truncated manifest (it ends without its checksum line)")
            }
            Invalid::ManifestUnreadable(e) => write!(f, "unreadable manifest: {e}"),
            Invalid::UnsupportedFormat { found } => write!(
                f,
                "unsupported checkpoint format {found} (this version reads formats {OLDEST_FORMAT} to {FORMAT})"
            ),
            Invalid::WrongId { found } => {
                write!(f, "the manifest belongs to checkpoint {found}")
            }
            Invalid::MissingFile { file } => write!(f, "missing file \"{file}\""),
            Invalid::Truncated {
                file,
                expected,
                found,
            } => write!(
                f,
                "truncated file \"{file}\" ({found} of {expected} bytes)"
            ),
            Invalid::TooLong {
                file,
                expected,
                found,
            } => write!(
                f,
                "file \"{file}\" has {found} bytes, the manifest records {expected}"
            ),
            Invalid::ChecksumMismatch {
                file,
                expected,
                found,
            } => write!(
                f,
                "checksum mismatch in \"{file}\" (crc32 {found:08x}, the manifest records {expected:08x})"
            ),
            Invalid::Unreadable { file, error } => {
                write!(f, "unreadable file \"{file}\": {error}")
            }
            Invalid::UnreadableState(e) => write!(f, "unreadable state: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::fingerprint::InputIdentity;
    use tidemark_windows::{Policy, WindowSpec};

    fn manifest() -> Manifest {
        let fingerprint = JobFingerprint {
            window: WindowSpec::tumbling(1_000),
            fields: vec!["count".into()],
            policy: Policy::default(),
            options: crate::Options::default().identity(),
            settings: BTreeMap::new(),
            input: InputIdentity::new(vec!["in".into()], vec!["p0".into()]),
        };
        let checkpoint = Checkpoint {
            frontier: 5_000,
            positions: BTreeMap::from([(
                0,
                Position {
                    offset: 12,
                    stream_time: Some(4_900),
                },
            )]),
            state: vec![1, 2, 3],
            outputs: CommittedOutputs::default(),
            fingerprint,
            counters: Counters::default(),
        };
        let state = FileEntry {
            name: STATE_FILE.into(),
            len: 3,
            crc32: crc32fast::hash(&[1, 2, 3]),
        };
        Manifest::describe(CheckpointId(4), 0, &checkpoint, state)
    }

    #[test]
    fn round_trip() {
        let m = manifest();
        let bytes = m.encode().unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.starts_with("{\n"), "{text}");
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("crc32 ") && last.len() == 14, "{last}");
        assert_eq!(Manifest::decode(&bytes), Ok(m));
    }

    #[test]
    fn every_single_byte_change_is_caught() {
        let bytes = manifest().encode().unwrap();
        for i in 0..bytes.len() {
            let mut torn = bytes.clone();
            torn[i] ^= 0x20;
            assert!(Manifest::decode(&torn).is_err(), "flip at {i} undetected");
        }
    }

    #[test]
    fn truncation_is_caught() {
        let bytes = manifest().encode().unwrap();
        for len in 0..bytes.len() {
            assert!(
                Manifest::decode(&bytes[..len]).is_err(),
                "truncation to {len} undetected"
            );
        }
        assert_eq!(
            Manifest::decode(&bytes[..bytes.len() - 20]),
            Err(Invalid::ManifestTruncated)
        );
    }

    #[test]
    fn newer_format_is_named() {
        let mut m = manifest();
        m.format = FORMAT + 1;
        let bytes = m.encode().unwrap();
        assert_eq!(
            Manifest::decode(&bytes),
            Err(Invalid::UnsupportedFormat { found: FORMAT + 1 })
        );
    }

    #[test]
    fn the_previous_format_is_read_and_none_older() {
        let mut m = manifest();
        m.format = OLDEST_FORMAT;
        let bytes = m.encode().unwrap();
        assert_eq!(Manifest::decode(&bytes), Ok(m.clone()));
        m.format = OLDEST_FORMAT - 1;
        let bytes = m.encode().unwrap();
        assert_eq!(
            Manifest::decode(&bytes),
            Err(Invalid::UnsupportedFormat { found: 0 })
        );
    }

    #[test]
    fn file_names_stay_inside() {
        for name in ["../state.bin", "a/b", "", "..", MANIFEST_FILE] {
            let mut m = manifest();
            m.files.push(FileEntry {
                name: name.into(),
                len: 0,
                crc32: 0,
            });
            let bytes = m.encode().unwrap();
            assert!(
                matches!(
                    Manifest::decode(&bytes),
                    Err(Invalid::ManifestUnreadable(_))
                ),
                "{name:?} accepted"
            );
        }
    }
}
