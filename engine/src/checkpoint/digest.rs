//! Output digests: a running hash of the bytes an output has committed, and
//! the same hash computed afresh from a file's first bytes.
//!
//! # Definition
//!
//! The digest of an output committed up to byte length `n` is the SHA-256
//! (FIPS 180-4) of its bytes `0..n`, exactly as they are in the file, with
//! nothing added (no length prefix, no separator, no salt). It is written
//! as 64 lowercase hexadecimal digits, the form `sha256sum` prints, so
//!
//! ```text
//! head -c n FILE | sha256sum
//! ```
//!
//! gives the digest a checkpoint records for an output of length `n`. The
//! digest of an empty output is the SHA-256 of no bytes,
//! `e3b0c442…7852b855`. This definition is part of the checkpoint format
//! and does not change between versions.
//!
//! SHA-256 rather than a faster non-cryptographic hash: equal digests then
//! prove equal bytes, so two runs (on different machines, with different
//! worker counts) can be shown byte-identical from their digests alone, and
//! anyone can check one with standard tools. With the SHA extensions of
//! current x86 and ARM processors it hashes at well over 1 GB/s, faster
//! than the outputs are written.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// The SHA-256 digest of an output's committed bytes (see the
/// [module docs](self) for the exact definition).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of no bytes (an empty output).
    pub const EMPTY: Digest = Digest([
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9,
        0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52,
        0xb8, 0x55,
    ]);

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A digest from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = String;

    /// Parses 64 hexadecimal digits (either case).
    fn from_str(s: &str) -> Result<Self, String> {
        let invalid = || format!("invalid digest \"{s}\" (expected 64 hexadecimal digits)");
        if s.len() != 64 || !s.is_ascii() {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| invalid())?;
        }
        Ok(Digest(bytes))
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The digest of an output as it grows: feed it every byte the output
/// writes, in order, and read the digest and length at each commit.
///
/// ```
/// use tidemark_engine::checkpoint::{Digest, OutputDigest};
///
/// let mut running = OutputDigest::new();
/// running.update(b"{\"key\":\"a\"}\n");
/// let at_commit = running.position();
/// running.update(b"{\"key\":\"b\"}\n");
/// assert_eq!(at_commit.len, 12);
/// assert_eq!(at_commit.digest, Digest::of(b"{\"key\":\"a\"}\n"));
/// ```
#[derive(Clone, Default)]
pub struct OutputDigest {
    hasher: Sha256,
    len: u64,
}

impl OutputDigest {
    /// The digest of an empty output.
    pub fn new() -> Self {
        OutputDigest::default()
    }

    /// Appends `bytes` to the output.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// The number of bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte has been fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of the bytes fed so far (the running hash goes on).
    pub fn digest(&self) -> Digest {
        Digest(self.hasher.clone().finalize().into())
    }

    /// The length and digest of the bytes fed so far, as a checkpoint
    /// records them.
    pub fn position(&self) -> OutputPosition {
        OutputPosition {
            len: self.len,
            digest: self.digest(),
        }
    }
}

impl fmt::Debug for OutputDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputDigest")
            .field("len", &self.len)
            .field("digest", &self.digest())
            .finish()
    }
}

/// Feeds what is written (so the digest can sit beside a writer, or be
/// `io::copy`'d into).
impl io::Write for OutputDigest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How far an output is committed: its byte length and the digest of
/// those bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPosition {
    /// The committed byte length.
    pub len: u64,
    /// The digest of bytes `0..len`.
    pub digest: Digest,
}

impl Default for OutputPosition {
    fn default() -> Self {
        OutputPosition::EMPTY
    }
}

impl OutputPosition {
    /// The position of an empty output.
    pub const EMPTY: OutputPosition = OutputPosition {
        len: 0,
        digest: Digest::EMPTY,
    };

    /// Compares the file at `path` with this position: whether its first
    /// `len` bytes are the committed ones (reading only those).
    pub fn check(&self, path: &Path) -> io::Result<OutputCheck> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OutputCheck::Missing),
            Err(e) => return Err(e),
        };
        let found = file.metadata()?.len();
        if found < self.len {
            return Ok(OutputCheck::Shorter { found });
        }
        let (read, digest) = digest_reader(file, Some(self.len))?;
        if read < self.len {
            // The file shrank while it was read.
            return Ok(OutputCheck::Shorter { found: read });
        }
        Ok(if digest == self.digest {
            OutputCheck::Matches {
                extra: found - self.len,
            }
        } else {
            OutputCheck::Differs { found: digest }
        })
    }
}

/// What [`OutputPosition::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputCheck {
    /// The file starts with the committed bytes; `extra` bytes follow them
    /// (written after the commit, to be truncated before resuming).
    Matches {
        /// Bytes after the committed length.
        extra: u64,
    },
    /// There is no file.
    Missing,
    /// The file is shorter than the committed length.
    Shorter {
        /// The file's length.
        found: u64,
    },
    /// The file's first bytes are not the committed ones.
    Differs {
        /// The digest of the file's first `len` bytes.
        found: Digest,
    },
}

/// Reads `reader` to its end, or to at most `limit` bytes, and returns the
/// number of bytes read and their digest.
pub fn digest_reader(reader: impl Read, limit: Option<u64>) -> io::Result<(u64, Digest)> {
    let mut running = OutputDigest::new();
    match limit {
        Some(limit) => io::copy(&mut reader.take(limit), &mut running)?,
        None => {
            let mut reader = reader;
            io::copy(&mut reader, &mut running)?
        }
    };
    Ok((running.len(), running.digest()))
}

/// The digest of the first `len` bytes of the file at `path`; an
/// [`io::ErrorKind::UnexpectedEof`] error if the file is shorter.
pub fn digest_prefix(path: &Path, len: u64) -> io::Result<Digest> {
    let (read, digest) = digest_reader(File::open(path)?, Some(len))?;
    if read < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "\"{}\" has {read} bytes, fewer than the {len} to digest",
                path.display()
            ),
        ));
    }
    Ok(digest)
}

/// The length and digest of the whole file at `path` (what `tidemark
/// digest FILE` prints).
pub fn digest_file(path: &Path) -> io::Result<OutputPosition> {
    let (len, digest) = digest_reader(File::open(path)?, None)?;
    Ok(OutputPosition { len, digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(Digest::of(b""), Digest::EMPTY);
        assert_eq!(
            Digest::EMPTY.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            Digest::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(
            Digest::of(long).to_string(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn incremental_equals_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut running = OutputDigest::new();
        for chunk in data.chunks(37) {
            running.update(chunk);
        }
        assert_eq!(running.len(), data.len() as u64);
        assert_eq!(running.digest(), Digest::of(&data));
        // Reading the digest does not disturb the running hash.
        running.update(b"x");
        let mut all = data.clone();
        all.push(b'x');
        assert_eq!(running.digest(), Digest::of(&all));
    }

    #[test]
    fn text_round_trip() {
        let d = Digest::of(b"tidemark");
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert_eq!(d.to_string().to_uppercase().parse::<Digest>(), Ok(d));
        assert!("abc".parse::<Digest>().is_err());
        assert!("zz".repeat(32).parse::<Digest>().is_err());
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }

    #[test]
    fn digest_reader_limits() {
        let data = b"hello, world".as_slice();
        assert_eq!(
            digest_reader(data, Some(5)).unwrap(),
            (5, Digest::of(b"hello"))
        );
        assert_eq!(digest_reader(data, None).unwrap(), (12, Digest::of(data)));
        assert_eq!(
            digest_reader(data, Some(100)).unwrap(),
            (12, Digest::of(data))
        );
    }
}
