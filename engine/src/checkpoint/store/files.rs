//! The file-level steps of a checkpoint directory: writing a file
//! atomically, making directory entries durable, deleting a checkpoint,
//! and reading a checkpoint's files back with their lengths and CRCs checked.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use super::{io_error, Result, TMP_SUFFIX};
use crate::checkpoint::manifest::{FileEntry, Invalid, Manifest, MANIFEST_FILE, STATE_FILE};

/// Reads and checks every file `manifest` lists; returns the state's bytes.
pub(super) fn read_files(dir: &Path, manifest: &Manifest) -> std::result::Result<Vec<u8>, Invalid> {
    let mut state = None;
    for entry in &manifest.files {
        let bytes = read_checked(dir, entry)?;
        if entry.name == STATE_FILE {
            state = Some(bytes);
        }
    }
    // `Manifest::decode` has made sure the state is listed.
    state.ok_or_else(|| Invalid::MissingFile {
        file: STATE_FILE.into(),
    })
}

/// Reads one file of a checkpoint, checking its length and CRC.
pub(super) fn read_checked(dir: &Path, entry: &FileEntry) -> std::result::Result<Vec<u8>, Invalid> {
    let unreadable = |e: io::Error| Invalid::Unreadable {
        file: entry.name.clone(),
        error: e.to_string(),
    };
    let mut file = match File::open(dir.join(&entry.name)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Invalid::MissingFile {
                file: entry.name.clone(),
            })
        }
        Err(e) => return Err(unreadable(e)),
    };
    let size = file.metadata().map_err(unreadable)?.len();
    let length = |found: u64| {
        if found < entry.len {
            Err(Invalid::Truncated {
                file: entry.name.clone(),
                expected: entry.len,
                found,
            })
        } else if found > entry.len {
            Err(Invalid::TooLong {
                file: entry.name.clone(),
                expected: entry.len,
                found,
            })
        } else {
            Ok(())
        }
    };
    length(size)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(unreadable)?;
    length(bytes.len() as u64)?;
    let found = crc32fast::hash(&bytes);
    if found != entry.crc32 {
        return Err(Invalid::ChecksumMismatch {
            file: entry.name.clone(),
            expected: entry.crc32,
            found,
        });
    }
    Ok(bytes)
}

/// The temporary files an interrupted write left in a checkpoint's
/// directory.
pub(super) fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(TMP_SUFFIX))
        .collect();
    names.sort();
    names
}

pub(super) fn bytes_on_disk(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Writes `bytes` to `dir/name` through a temporary file: write, fsync,
/// rename. The caller fsyncs `dir` to make the rename durable.
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = File::create(&tmp).map_err(io_error("create", &tmp))?;
    file.write_all(bytes).map_err(io_error("write", &tmp))?;
    file.sync_all().map_err(io_error("sync", &tmp))?;
    drop(file);
    let target = dir.join(name);
    fs::rename(&tmp, &target).map_err(io_error("rename into place", &target))
}

/// Makes the entries of `dir` (creations, renames, removals) durable.
pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("sync the directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Deletes a checkpoint's directory, manifest first.
pub(super) fn remove_checkpoint(dir: &Path) -> io::Result<()> {
    match fs::remove_file(dir.join(MANIFEST_FILE)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::remove_dir_all(dir)
}

pub(super) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
