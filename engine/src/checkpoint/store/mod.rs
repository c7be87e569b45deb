//! [`CheckpointDir`]: writing checkpoints atomically, finding the newest
//! valid one, keeping the newest few (see the [parent module](super) for
//! the layout and the write protocol).

mod files;
#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use super::manifest::{FileEntry, Invalid, Manifest, MANIFEST_FILE, STATE_FILE};
use super::{Checkpoint, CheckpointError, CheckpointId};
use files::{
    bytes_on_disk, leftovers, now_unix_ms, read_files, remove_checkpoint, sync_dir, write_atomic,
};

/// How many complete checkpoints a directory keeps unless told otherwise.
pub const DEFAULT_KEEP: usize = 3;

const DIR_PREFIX: &str = "ckpt-";

/// The largest manifest read: its positions and input checks for the most
/// partitions a job can have take a few MB.
const MAX_MANIFEST: u64 = 64 << 20;
const LOCK_FILE: &str = "LOCK";
const TMP_SUFFIX: &str = ".tmp";

type Result<T, E = CheckpointError> = std::result::Result<T, E>;

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io {
        action,
        path,
        source,
    }
}

/// A directory of checkpoints.
///
/// Any number of handles may read a directory (list it, find the newest
/// valid checkpoint), but only one writes: [`lock`](Self::lock), or the
/// first [`write`](Self::write) or [`clear`](Self::clear), takes an
/// exclusive lock on `<dir>/LOCK`, held until the handle is dropped, and
/// fails with [`CheckpointError::Locked`] if another handle (in this
/// process or another) has it.
#[derive(Debug)]
pub struct CheckpointDir {
    path: PathBuf,
    keep: NonZeroUsize,
    lock: Option<File>,
    last_written: Option<CheckpointId>,
}

/// A valid checkpoint, as found in a directory.
#[derive(Clone, Debug)]
pub struct Found<T = ()> {
    /// Its sequence number.
    pub id: CheckpointId,
    /// Its directory.
    pub path: PathBuf,
    /// When it was written (wall clock, ms since the Unix epoch).
    pub created_unix_ms: u64,
    /// What it holds.
    pub checkpoint: Checkpoint,
    /// Its state as the caller decoded it
    /// ([`CheckpointDir::newest_valid_with`]).
    pub decoded: T,
}

/// A checkpoint newer than the one used, passed over because it cannot be
/// used. Its `Display` is the warning to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Its sequence number.
    pub id: CheckpointId,
    /// Its directory.
    pub path: PathBuf,
    /// Why it was passed over.
    pub reason: Invalid,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "skipped checkpoint {} (\"{}\"): {}",
            self.id,
            self.path.display(),
            self.reason
        )
    }
}

/// What [`CheckpointDir::newest_valid`] found: the newest valid checkpoint,
/// if any, and every newer one it passed over.
#[derive(Clone, Debug)]
pub struct Recovery<T = ()> {
    /// The newest valid checkpoint (`None`: there is none, start from the
    /// beginning; if `skipped` is not empty, there were only damaged ones).
    pub found: Option<Found<T>>,
    /// The newer checkpoints passed over, newest first: one warning each.
    pub skipped: Vec<Skipped>,
}

/// One checkpoint of a directory, for inspection ([`CheckpointDir::list`]).
#[derive(Clone, Debug)]
pub struct CheckpointInfo {
    /// Its sequence number.
    pub id: CheckpointId,
    /// Its directory.
    pub path: PathBuf,
    /// Its manifest, if that could be read and its checksum holds (the
    /// frontier, the positions, the outputs, the files and their sizes).
    pub manifest: Option<Manifest>,
    /// The bytes its files take on disk.
    pub bytes_on_disk: u64,
    /// Why it cannot be used; `None` if every checksum holds.
    pub problem: Option<Invalid>,
}

impl CheckpointInfo {
    /// Whether the checkpoint can be used (every checksum holds).
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
    }
}

impl CheckpointDir {
    /// The checkpoint directory at `path`, keeping the newest
    /// [`DEFAULT_KEEP`] checkpoints. Opening creates nothing: a directory
    /// that does not exist holds no checkpoints, and is created by the
    /// first [`write`](Self::write). An existing path that is not a
    /// directory is an error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        match fs::metadata(&path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(CheckpointError::Io {
                    action: "use as a checkpoint directory",
                    path,
                    source: io::Error::other("not a directory"),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("open the checkpoint directory", &path)(e)),
        }
        Ok(CheckpointDir {
            path,
            keep: NonZeroUsize::new(DEFAULT_KEEP).unwrap_or(NonZeroUsize::MIN),
            lock: None,
            last_written: None,
        })
    }

    /// Keeps the newest `keep` complete checkpoints (older ones are deleted
    /// after each write).
    pub fn with_keep(mut self, keep: NonZeroUsize) -> Self {
        self.keep = keep;
        self
    }

    /// How many complete checkpoints are kept.
    pub fn keep(&self) -> usize {
        self.keep.get()
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory of checkpoint `id` (whether or not it exists).
    pub fn checkpoint_path(&self, id: CheckpointId) -> PathBuf {
        self.path.join(format!("{DIR_PREFIX}{:010}", id.0))
    }

    /// The checkpoints in the directory, complete or not, oldest first.
    pub fn ids(&self) -> Result<Vec<CheckpointId>> {
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list the checkpoint directory", &self.path)(e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error("list the checkpoint directory", &self.path))?;
            let name = entry.file_name();
            let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(id) = digits.parse() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    ids.push(CheckpointId(id));
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The highest number of any entry named like a checkpoint, directory
    /// or not.
    fn highest_name(&self) -> Result<Option<CheckpointId>> {
        let entries = match fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("list the checkpoint directory", &self.path)(e)),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let digits = name.to_str()?.strip_prefix(DIR_PREFIX)?.to_owned();
                digits.parse().ok().map(CheckpointId)
            })
            .max())
    }

    /// Writes `checkpoint` as the newest checkpoint and returns its id; then
    /// deletes the complete checkpoints beyond the newest
    /// [`keep`](Self::keep) and any incomplete or truncated older ones
    /// (complete: the manifest's checksum holds and every file has its
    /// recorded length; file contents are checked when a checkpoint is
    /// loaded, not here). When this
    /// returns `Ok`, the checkpoint is durable (fsynced, manifest last). A
    /// failure part-way removes what was written of it, leaving the older
    /// checkpoints as they were. [`CheckpointError::Prune`] means the
    /// checkpoint was written and only the clean-up failed.
    pub fn write(&mut self, checkpoint: &Checkpoint) -> Result<CheckpointId> {
        self.lock()?;
        // Past every entry named like a checkpoint, a stray file too.
        let newest = self
            .ids()?
            .last()
            .copied()
            .max(self.last_written)
            .max(self.highest_name()?);
        let id = CheckpointId(newest.map_or(1, |id| id.0 + 1));
        let dir = self.checkpoint_path(id);
        fs::create_dir(&dir).map_err(io_error("create the checkpoint directory", &dir))?;
        if let Err(e) = self.write_files(&dir, id, checkpoint) {
            // Best effort: an incomplete checkpoint left here would only be
            // skipped with a warning and removed by the next write.
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.last_written = Some(id);
        self.prune(id)?;
        Ok(id)
    }

    fn write_files(&self, dir: &Path, id: CheckpointId, checkpoint: &Checkpoint) -> Result<()> {
        write_atomic(dir, STATE_FILE, &checkpoint.state)?;
        sync_dir(dir)?;
        let state = FileEntry {
            name: STATE_FILE.into(),
            len: checkpoint.state.len() as u64,
            crc32: crc32fast::hash(&checkpoint.state),
        };
        let manifest = Manifest::describe(id, now_unix_ms(), checkpoint, state);
        let bytes = manifest
            .encode()
            .map_err(|e| CheckpointError::Encode(e.to_string()))?;
        write_atomic(dir, MANIFEST_FILE, &bytes)?;
        sync_dir(dir)?;
        sync_dir(&self.path)
    }

    /// Deletes every checkpoint older than `written` that is not among the
    /// newest `keep` complete ones.
    fn prune(&self, written: CheckpointId) -> Result<()> {
        let mut kept = 0;
        let mut deleted = false;
        for id in self.ids()?.into_iter().rev() {
            if id > written {
                continue;
            }
            if kept < self.keep.get() && self.is_complete(id) {
                kept += 1;
                continue;
            }
            let path = self.checkpoint_path(id);
            remove_checkpoint(&path).map_err(|source| CheckpointError::Prune {
                written,
                path: path.clone(),
                source,
            })?;
            deleted = true;
        }
        if deleted {
            sync_dir(&self.path)?;
        }
        Ok(())
    }

    /// Whether checkpoint `id` looks usable without reading it all: its
    /// manifest's checksum holds and every file it lists has the recorded
    /// length. (Re-reading every kept checkpoint's state on each write
    /// would cost too much; a changed byte is found when one is loaded.)
    fn is_complete(&self, id: CheckpointId) -> bool {
        let path = self.checkpoint_path(id);
        self.read_manifest(id).is_ok_and(|manifest| {
            manifest.files.iter().all(|f| {
                fs::metadata(path.join(&f.name)).is_ok_and(|m| m.is_file() && m.len() == f.len)
            })
        })
    }

    /// Deletes every checkpoint (to start over, as a rebuild does) and
    /// returns how many there were.
    pub fn clear(&mut self) -> Result<usize> {
        let ids = self.ids()?;
        if ids.is_empty() {
            return Ok(0);
        }
        self.lock()?;
        for &id in &ids {
            let path = self.checkpoint_path(id);
            remove_checkpoint(&path).map_err(io_error("delete the checkpoint", &path))?;
        }
        sync_dir(&self.path)?;
        Ok(ids.len())
    }

    /// The checkpoint `id`, if it is valid.
    pub fn load(&self, id: CheckpointId) -> Result<Found> {
        let path = self.checkpoint_path(id);
        if !path.is_dir() {
            return Err(CheckpointError::Io {
                action: "find the checkpoint",
                path,
                source: io::ErrorKind::NotFound.into(),
            });
        }
        self.read(id).map_err(|reason| CheckpointError::Invalid {
            id,
            path: self.checkpoint_path(id),
            reason,
        })
    }

    /// The newest checkpoint whose checksums hold, and a [`Skipped`] for
    /// every newer one (torn, truncated, changed, incomplete).
    pub fn newest_valid(&self) -> Result<Recovery> {
        self.newest_valid_with(|_| Ok(()))
    }

    /// As [`newest_valid`](Self::newest_valid), also decoding the state
    /// with `decode`: a checkpoint whose state `decode` rejects is skipped
    /// too ([`Invalid::UnreadableState`] with `decode`'s message), and the
    /// search goes on to the next older one.
    pub fn newest_valid_with<T, F>(&self, mut decode: F) -> Result<Recovery<T>>
    where
        F: FnMut(&Checkpoint) -> std::result::Result<T, String>,
    {
        let mut skipped = Vec::new();
        for id in self.ids()?.into_iter().rev() {
            let path = self.checkpoint_path(id);
            let reason = match self.read(id) {
                Ok(found) => match decode(&found.checkpoint) {
                    Ok(decoded) => {
                        let found = Found {
                            id: found.id,
                            path: found.path,
                            created_unix_ms: found.created_unix_ms,
                            checkpoint: found.checkpoint,
                            decoded,
                        };
                        return Ok(Recovery {
                            found: Some(found),
                            skipped,
                        });
                    }
                    Err(e) => Invalid::UnreadableState(e),
                },
                Err(reason) => reason,
            };
            skipped.push(Skipped { id, path, reason });
        }
        Ok(Recovery {
            found: None,
            skipped,
        })
    }

    /// Every checkpoint in the directory, oldest first, each checked (this
    /// reads every checkpoint's files).
    pub fn list(&self) -> Result<Vec<CheckpointInfo>> {
        let mut out = Vec::new();
        for id in self.ids()? {
            let path = self.checkpoint_path(id);
            let (manifest, problem) = match self.read_manifest(id) {
                Ok(manifest) => {
                    let problem = read_files(&path, &manifest).err();
                    (Some(manifest), problem)
                }
                Err(reason) => (None, Some(reason)),
            };
            out.push(CheckpointInfo {
                id,
                bytes_on_disk: bytes_on_disk(&path),
                path,
                manifest,
                problem,
            });
        }
        Ok(out)
    }

    /// Reads and checks checkpoint `id`.
    fn read(&self, id: CheckpointId) -> std::result::Result<Found, Invalid> {
        let path = self.checkpoint_path(id);
        let manifest = self.read_manifest(id)?;
        let state = read_files(&path, &manifest)?;
        Ok(Found {
            id,
            path,
            created_unix_ms: manifest.created_unix_ms,
            checkpoint: manifest.into_checkpoint(state),
            decoded: (),
        })
    }

    /// Reads and checks the manifest of checkpoint `id`.
    fn read_manifest(&self, id: CheckpointId) -> std::result::Result<Manifest, Invalid> {
        let path = self.checkpoint_path(id);
        let read = File::open(path.join(MANIFEST_FILE)).and_then(|f| {
            // No more than a manifest can hold: a huge file is not read
            // into memory to be found wrong.
            let mut bytes = Vec::new();
            f.take(MAX_MANIFEST + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        let bytes = match read {
            Ok(bytes) if bytes.len() as u64 > MAX_MANIFEST => {
                return Err(Invalid::ManifestUnreadable(format!(
                    "it is larger than {MAX_MANIFEST} bytes, more than any manifest holds"
                )))
            }
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Invalid::MissingManifest {
                    leftovers: leftovers(&path),
                })
            }
            Err(e) => {
                return Err(Invalid::Unreadable {
                    file: MANIFEST_FILE.into(),
                    error: e.to_string(),
                })
            }
        };
        let manifest = Manifest::decode(&bytes)?;
        if manifest.id != id {
            return Err(Invalid::WrongId { found: manifest.id });
        }
        Ok(manifest)
    }

    /// Takes the directory's write lock (once; held until this handle is
    /// dropped), creating the directory if needed. A run that will write
    /// checkpoints takes it before it reads any checkpoint or opens any
    /// output, so a second run on the same directory is refused before it
    /// can touch the first one's outputs.
    pub fn lock(&mut self) -> Result<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        fs::create_dir_all(&self.path)
            .map_err(io_error("create the checkpoint directory", &self.path))?;
        let lock_path = self.path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error("open the lock file", &lock_path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(CheckpointError::Locked {
                    path: self.path.clone(),
                })
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(io_error("lock", &lock_path)(e));
            }
        }
        self.lock = Some(file);
        Ok(())
    }
}
