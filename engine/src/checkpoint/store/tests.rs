//! Tests of [`CheckpointDir`]: numbering, locking, clearing, and how
//! damaged or foreign entries in the directory are handled.

use super::*;
use crate::checkpoint::{CommittedOutputs, Counters, InputIdentity, JobFingerprint};
use std::collections::BTreeMap;
use tidemark_windows::{Policy, WindowSpec};

fn checkpoint(frontier: i64) -> Checkpoint {
    Checkpoint {
        frontier,
        positions: BTreeMap::new(),
        state: frontier.to_le_bytes().to_vec(),
        outputs: CommittedOutputs::default(),
        fingerprint: JobFingerprint {
            window: WindowSpec::tumbling(10),
            fields: vec!["count".into()],
            policy: Policy::default(),
            options: crate::Options::default().identity(),
            settings: BTreeMap::new(),
            input: InputIdentity::default(),
        },
        counters: Counters::default(),
    }
}

#[test]
fn ids_ignore_other_names() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["ckpt-", "ckpt-x1", "ckpt-12a", "other", "ckpt-0000000007"] {
        fs::create_dir(tmp.path().join(name)).unwrap();
    }
    fs::write(tmp.path().join("ckpt-0000000009"), b"a file").unwrap();
    let dir = CheckpointDir::open(tmp.path()).unwrap();
    assert_eq!(dir.ids().unwrap(), vec![CheckpointId(7)]);
}

#[test]
fn a_stray_file_named_like_the_next_checkpoint_is_passed_over() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    assert_eq!(dir.write(&checkpoint(1)).unwrap(), CheckpointId(1));
    fs::write(tmp.path().join("ckpt-0000000002"), b"stray").unwrap();
    assert_eq!(dir.write(&checkpoint(2)).unwrap(), CheckpointId(3));
    assert_eq!(dir.write(&checkpoint(3)).unwrap(), CheckpointId(4));
    let found = dir.newest_valid().unwrap().found.unwrap();
    assert_eq!(found.checkpoint.frontier, 3);
}

#[test]
fn a_huge_manifest_is_not_read_into_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    let id = dir.write(&checkpoint(1)).unwrap();
    let manifest = dir.checkpoint_path(id).join(MANIFEST_FILE);
    // A sparse file far larger than any manifest.
    File::options()
        .write(true)
        .open(&manifest)
        .unwrap()
        .set_len(MAX_MANIFEST * 16)
        .unwrap();
    let recovery = dir.newest_valid().unwrap();
    assert!(recovery.found.is_none());
    let reason = recovery.skipped[0].reason.to_string();
    assert!(reason.contains("more than any manifest holds"), "{reason}");
}

#[test]
fn missing_directory_is_empty_and_created_on_write() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a/b");
    let mut dir = CheckpointDir::open(&path).unwrap();
    assert!(!path.exists());
    assert!(dir.list().unwrap().is_empty());
    assert!(dir.newest_valid().unwrap().found.is_none());
    assert_eq!(dir.write(&checkpoint(1)).unwrap(), CheckpointId(1));
    assert!(path.is_dir());
}

#[test]
fn a_file_is_not_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"").unwrap();
    let err = CheckpointDir::open(&file).unwrap_err();
    assert!(
        err.to_string().contains("use as a checkpoint directory"),
        "{err}"
    );
}

#[test]
fn one_writer_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let mut first = CheckpointDir::open(tmp.path()).unwrap();
    first.write(&checkpoint(1)).unwrap();
    let mut second = CheckpointDir::open(tmp.path()).unwrap();
    assert!(matches!(
        second.write(&checkpoint(2)),
        Err(CheckpointError::Locked { .. })
    ));
    // Reading needs no lock.
    assert_eq!(second.list().unwrap().len(), 1);
    drop(first);
    assert_eq!(second.write(&checkpoint(2)).unwrap(), CheckpointId(2));
}

#[test]
fn ids_never_repeat_after_deletion() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    let a = dir.write(&checkpoint(1)).unwrap();
    fs::remove_dir_all(dir.checkpoint_path(a)).unwrap();
    let b = dir.write(&checkpoint(2)).unwrap();
    assert!(b > a);
}

#[test]
fn clear_removes_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    dir.write(&checkpoint(1)).unwrap();
    dir.write(&checkpoint(2)).unwrap();
    assert_eq!(dir.clear().unwrap(), 2);
    assert!(dir.ids().unwrap().is_empty());
    assert_eq!(dir.clear().unwrap(), 0);
    // Numbering goes on after a clear by the same handle.
    assert_eq!(dir.write(&checkpoint(3)).unwrap(), CheckpointId(3));
}

#[test]
fn load_names_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    let id = dir.write(&checkpoint(1)).unwrap();
    assert_eq!(dir.load(id).unwrap().checkpoint, checkpoint(1));
    fs::write(dir.checkpoint_path(id).join(STATE_FILE), b"").unwrap();
    let err = dir.load(id).unwrap_err().to_string();
    assert!(
        err.contains("checkpoint 1") && err.contains("truncated file \"state.bin\" (0 of 8 bytes)"),
        "{err}"
    );
    let err = dir.load(CheckpointId(99)).unwrap_err().to_string();
    assert!(err.starts_with("could not find the checkpoint"), "{err}");
}
