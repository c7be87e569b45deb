//! Checkpoint storage on a real directory: round trips (with real window
//! state), keeping the newest N, falling back past a torn newest checkpoint
//! (truncated state, a flipped byte, a missing manifest, the temporary files
//! of a write cut short, state that does not decode) with a warning naming
//! it and the reason, inspection, output digests of file prefixes, and the
//! job fingerprint check.
//!
//! Run with `cargo test -p tidemark-engine --test checkpoint_store`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::num::NonZeroUsize;
use std::path::Path;

use tidemark_engine::checkpoint::{
    digest_file, digest_prefix, Checkpoint, CheckpointDir, CheckpointError, CheckpointId,
    CommittedOutputs, Counters, Digest, InputIdentity, Invalid, JobFingerprint, OutputCheck,
    OutputDigest, OutputPosition,
};
use tidemark_engine::{EngineConfig, Position, StateSnapshot};
use tidemark_sources::Key;
use tidemark_windows::{AggKind, EmitMode, Metrics, Number, Policy, WindowSpec, WindowState};

fn aggs() -> Vec<AggKind> {
    vec![AggKind::Count, AggKind::Sum]
}

fn config() -> EngineConfig {
    EngineConfig::new(
        WindowSpec::tumbling(1_000),
        Policy::new(100, 500, EmitMode::Final),
        aggs(),
    )
}

fn fingerprint(config: &EngineConfig) -> JobFingerprint {
    JobFingerprint::of(
        config,
        InputIdentity::new(
            vec!["logs/".into()],
            vec!["p-0.jsonl".into(), "p-1.jsonl".into()],
        ),
        BTreeMap::from([
            ("time format".into(), "epoch-ms".into()),
            ("key field".into(), "user".into()),
        ]),
    )
}

/// Window state after `n` records (two keys, times 0, 10, 20, …), and its
/// postcard bytes.
fn window_state(n: i64) -> (WindowState<Key, Metrics>, Vec<u8>) {
    let c = config();
    let mut state = WindowState::try_new(c.window, c.policy, Metrics::new(&aggs())).unwrap();
    let (mut out, mut missed) = (Vec::new(), Vec::new());
    for i in 0..n {
        state.advance(i * 10, &mut out);
        let key: Key = if i % 2 == 0 { "a".into() } else { "b".into() };
        state
            .apply(key, i * 10, &Number::Int(i), &mut missed)
            .unwrap();
        state.end_step(&mut out);
    }
    state.advance(n * 10, &mut out);
    let bytes = postcard::to_stdvec(&state.snapshot()).unwrap();
    (state, bytes)
}

/// A checkpoint at frontier `10 * n`, after `n` records split over two
/// partitions.
fn checkpoint(n: i64) -> Checkpoint {
    let (_, state) = window_state(n);
    let position = |p: i64| Position {
        offset: ((n + 1 - p) / 2) as u64,
        stream_time: (n > p).then_some((n - 1) * 10),
    };
    let mut results = OutputDigest::new();
    results.update(format!("{n} rows\n").as_bytes());
    Checkpoint {
        frontier: n * 10,
        positions: BTreeMap::from([(0, position(0)), (1, position(1))]),
        state,
        outputs: CommittedOutputs {
            results: Some(results.position()),
            late: Some(OutputPosition::EMPTY),
            dead_letters: None,
        },
        fingerprint: fingerprint(&config()),
        counters: Counters {
            counts: tidemark_engine::Counts {
                records: n as u64,
                windows_emitted: (n / 100) as u64,
                ..Default::default()
            },
            ..Counters::default()
        },
    }
}

fn decode(c: &Checkpoint) -> Result<WindowState<Key, Metrics>, String> {
    let snapshot: StateSnapshot = postcard::from_bytes(&c.state).map_err(|e| e.to_string())?;
    WindowState::restore(Metrics::new(&aggs()), snapshot).map_err(|e| e.to_string())
}

fn finish(mut state: WindowState<Key, Metrics>) -> Vec<String> {
    let mut out = Vec::new();
    state.finish(&mut out);
    out.iter().map(|c| format!("{c:?}")).collect()
}

#[test]
fn round_trip_with_real_window_state() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    let written = checkpoint(250);
    let id = dir.write(&written).unwrap();
    assert_eq!(id, CheckpointId(1));

    let recovery = dir.newest_valid_with(decode).unwrap();
    assert!(recovery.skipped.is_empty());
    let found = recovery.found.expect("the checkpoint");
    assert_eq!(found.id, id);
    assert_eq!(found.path, dir.checkpoint_path(id));
    assert_eq!(found.checkpoint, written);
    // The restored state goes on exactly as the original would.
    let (original, _) = window_state(250);
    assert_eq!(finish(found.decoded), finish(original));

    // A second handle (as a restarted process has) sees the same.
    let again = CheckpointDir::open(tmp.path()).unwrap();
    assert_eq!(again.load(id).unwrap().checkpoint, written);
    // No temporary file is left behind.
    let names: Vec<String> = fs::read_dir(dir.checkpoint_path(id))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(names, vec!["MANIFEST", "state.bin"]);
}

#[test]
fn the_manifest_is_readable_text() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    let id = dir.write(&checkpoint(3)).unwrap();
    let text = fs::read_to_string(dir.checkpoint_path(id).join("MANIFEST")).unwrap();
    for needle in [
        "\"format\": 2",
        "\"id\": 1",
        "\"frontier\": 30",
        "\"offset\": 2",
        "\"name\": \"state.bin\"",
        "\"time format\": \"epoch-ms\"",
        "\"p-1.jsonl\"",
        "\"records\": 3",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    assert!(text.lines().last().unwrap().starts_with("crc32 "), "{text}");
}

#[test]
fn keeps_the_newest_n() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    assert_eq!(dir.keep(), 3);
    for n in 1..=5 {
        dir.write(&checkpoint(n)).unwrap();
    }
    let ids =
        |dir: &CheckpointDir| -> Vec<u64> { dir.ids().unwrap().iter().map(|i| i.0).collect() };
    assert_eq!(ids(&dir), vec![3, 4, 5]);
    assert_eq!(
        dir.newest_valid().unwrap().found.unwrap().checkpoint,
        checkpoint(5)
    );

    drop(dir); // the write lock
    let mut dir = CheckpointDir::open(tmp.path())
        .unwrap()
        .with_keep(NonZeroUsize::new(1).unwrap());
    dir.write(&checkpoint(6)).unwrap();
    assert_eq!(ids(&dir), vec![6]);

    let mut dir = dir.with_keep(NonZeroUsize::new(4).unwrap());
    for n in 7..=12 {
        dir.write(&checkpoint(n)).unwrap();
        assert!(dir.ids().unwrap().len() <= 4);
    }
    assert_eq!(ids(&dir), vec![9, 10, 11, 12]);
}

#[test]
fn torn_checkpoints_do_not_count_towards_keep_and_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path())
        .unwrap()
        .with_keep(NonZeroUsize::new(2).unwrap());
    dir.write(&checkpoint(1)).unwrap();
    dir.write(&checkpoint(2)).unwrap();
    dir.write(&checkpoint(3)).unwrap();
    // Checkpoint 3's state is cut short; then a crash before the manifest
    // of checkpoint 4.
    let state = dir.checkpoint_path(CheckpointId(3)).join("state.bin");
    let len = fs::metadata(&state).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&state)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let torn = dir.checkpoint_path(CheckpointId(4));
    fs::create_dir(&torn).unwrap();
    fs::write(torn.join("state.bin.tmp"), b"partial").unwrap();
    // The next write numbers past them, keeps 2 and 5, and removes the
    // rest: 1 as old, 3 and 4 as torn.
    assert_eq!(dir.write(&checkpoint(5)).unwrap(), CheckpointId(5));
    let ids: Vec<u64> = dir.ids().unwrap().iter().map(|i| i.0).collect();
    assert_eq!(ids, vec![2, 5]);
    assert_eq!(
        dir.newest_valid().unwrap().found.unwrap().checkpoint,
        checkpoint(5)
    );
}

/// Two complete checkpoints, then `damage` applied to the newer; the older
/// must be found, with one warning naming the newer and `reason`.
fn falls_back(damage: impl FnOnce(&Path), reason: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    let older = dir.write(&checkpoint(40)).unwrap();
    let newer = dir.write(&checkpoint(41)).unwrap();
    damage(&dir.checkpoint_path(newer));

    let recovery = dir.newest_valid().unwrap();
    let found = recovery.found.expect("the older checkpoint");
    assert_eq!(found.id, older);
    assert_eq!(found.checkpoint, checkpoint(40));
    assert_eq!(recovery.skipped.len(), 1, "{:?}", recovery.skipped);
    let warning = recovery.skipped[0].to_string();
    assert_eq!(recovery.skipped[0].id, newer);
    assert!(
        warning.starts_with(&format!(
            "skipped checkpoint 2 (\"{}\"): ",
            dir.checkpoint_path(newer).display()
        )),
        "{warning}"
    );
    assert!(
        warning.contains(reason),
        "{warning:?} does not say {reason:?}"
    );

    // Inspection shows the same problem, and the older one as valid.
    let list = dir.list().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list[0].is_valid());
    assert!(!list[1].is_valid());
    assert!(list[1]
        .problem
        .as_ref()
        .unwrap()
        .to_string()
        .contains(reason));
    // Loading it by id is an error naming the reason.
    let err = dir.load(newer).unwrap_err().to_string();
    assert!(err.contains(reason), "{err}");

    // The next checkpoint gets a new number and is found without warnings.
    let next = dir.write(&checkpoint(42)).unwrap();
    assert!(next > newer);
    let recovery = dir.newest_valid().unwrap();
    assert!(recovery.skipped.is_empty());
    assert_eq!(recovery.found.unwrap().checkpoint, checkpoint(42));
}

#[test]
fn truncated_state_falls_back() {
    falls_back(
        |p| {
            let file = fs::OpenOptions::new()
                .write(true)
                .open(p.join("state.bin"))
                .unwrap();
            let len = file.metadata().unwrap().len();
            file.set_len(len / 2).unwrap();
        },
        "truncated file \"state.bin\"",
    );
}

#[test]
fn flipped_state_byte_falls_back() {
    falls_back(
        |p| flip(&p.join("state.bin"), 7),
        "checksum mismatch in \"state.bin\"",
    );
}

#[test]
fn flipped_manifest_byte_falls_back() {
    falls_back(
        |p| flip(&p.join("MANIFEST"), 40),
        "checksum mismatch in \"MANIFEST\"",
    );
}

#[test]
fn truncated_manifest_falls_back() {
    falls_back(
        |p| {
            let path = p.join("MANIFEST");
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
        },
        "truncated manifest",
    );
}

#[test]
fn missing_manifest_falls_back() {
    falls_back(
        |p| fs::remove_file(p.join("MANIFEST")).unwrap(),
        "missing manifest",
    );
}

#[test]
fn missing_state_falls_back() {
    falls_back(
        |p| fs::remove_file(p.join("state.bin")).unwrap(),
        "missing file \"state.bin\"",
    );
}

#[test]
fn crash_before_the_state_rename_falls_back() {
    // As a crash would leave it: the state's temporary file half-written,
    // nothing renamed, no manifest.
    falls_back(
        |p| {
            let bytes = fs::read(p.join("state.bin")).unwrap();
            fs::remove_file(p.join("MANIFEST")).unwrap();
            fs::remove_file(p.join("state.bin")).unwrap();
            fs::write(p.join("state.bin.tmp"), &bytes[..bytes.len() / 2]).unwrap();
        },
        "missing manifest (a write was interrupted; left behind: \"state.bin.tmp\")",
    );
}

#[test]
fn crash_before_the_manifest_rename_falls_back() {
    falls_back(
        |p| {
            let bytes = fs::read(p.join("MANIFEST")).unwrap();
            fs::remove_file(p.join("MANIFEST")).unwrap();
            fs::write(p.join("MANIFEST.tmp"), &bytes[..bytes.len() - 10]).unwrap();
        },
        "left behind: \"MANIFEST.tmp\"",
    );
}

#[test]
fn state_that_does_not_decode_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    dir.write(&checkpoint(10)).unwrap();
    // Checksums hold, but the bytes are not window state.
    let mut garbage = checkpoint(11);
    garbage.state = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec();
    dir.write(&garbage).unwrap();

    let recovery = dir.newest_valid_with(decode).unwrap();
    let found = recovery.found.expect("the older checkpoint");
    assert_eq!(found.id, CheckpointId(1));
    let (original, _) = window_state(10);
    assert_eq!(finish(found.decoded), finish(original));
    assert_eq!(recovery.skipped.len(), 1);
    assert_eq!(recovery.skipped[0].id, CheckpointId(2));
    assert!(matches!(
        recovery.skipped[0].reason,
        Invalid::UnreadableState(_)
    ));
    assert!(recovery.skipped[0]
        .to_string()
        .contains("skipped checkpoint 2 (\""));
    assert!(recovery.skipped[0]
        .to_string()
        .contains("unreadable state: "));
}

#[test]
fn several_torn_checkpoints_are_each_named_newest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    for n in 1..=3 {
        dir.write(&checkpoint(n)).unwrap();
    }
    flip(&dir.checkpoint_path(CheckpointId(3)).join("state.bin"), 0);
    fs::remove_file(dir.checkpoint_path(CheckpointId(2)).join("MANIFEST")).unwrap();
    let recovery = dir.newest_valid().unwrap();
    assert_eq!(recovery.found.unwrap().id, CheckpointId(1));
    let skipped: Vec<(u64, String)> = recovery
        .skipped
        .iter()
        .map(|s| (s.id.0, s.reason.to_string()))
        .collect();
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[0].0, 3);
    assert!(skipped[0]
        .1
        .starts_with("checksum mismatch in \"state.bin\""));
    assert_eq!(
        skipped[1],
        (
            2,
            "missing manifest (the checkpoint was never completed)".to_string()
        )
    );

    // With every checkpoint damaged there is none to use, and each is named.
    flip(&dir.checkpoint_path(CheckpointId(1)).join("state.bin"), 3);
    let recovery = dir.newest_valid().unwrap();
    assert!(recovery.found.is_none());
    assert_eq!(
        recovery.skipped.iter().map(|s| s.id.0).collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
}

#[test]
fn list_shows_frontiers_positions_and_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    dir.write(&checkpoint(20)).unwrap();
    dir.write(&checkpoint(30)).unwrap();
    let list = dir.list().unwrap();
    assert_eq!(list.len(), 2);
    for (info, n) in list.iter().zip([20, 30]) {
        assert!(info.is_valid(), "{:?}", info.problem);
        let m = info.manifest.as_ref().unwrap();
        let expected = checkpoint(n);
        assert_eq!(m.id, info.id);
        assert_eq!(m.frontier, expected.frontier);
        assert_eq!(m.positions, expected.positions);
        assert_eq!(m.outputs, expected.outputs);
        assert_eq!(m.counters, expected.counters);
        let state = m.file("state.bin").unwrap();
        assert_eq!(state.len, expected.state.len() as u64);
        let manifest_len = fs::metadata(info.path.join("MANIFEST")).unwrap().len();
        assert_eq!(info.bytes_on_disk, state.len + manifest_len);
    }
}

#[test]
fn a_changed_job_is_refused_with_each_difference() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = CheckpointDir::open(tmp.path()).unwrap();
    dir.write(&checkpoint(5)).unwrap();
    let stored = dir.newest_valid().unwrap().found.unwrap().checkpoint;

    // Settings that do not change the output are not in the fingerprint.
    let mut same = config();
    same.batch_size = 7;
    same.commit_interval = std::time::Duration::from_secs(9);
    assert!(stored.fingerprint.ensure_same(&fingerprint(&same)).is_ok());

    let mut changed = config();
    changed.window = WindowSpec::tumbling(5_000);
    changed.policy.lateness = 0;
    let mut now = fingerprint(&changed);
    now.settings.insert("time format".into(), "rfc3339".into());
    let err = stored.fingerprint.ensure_same(&now).unwrap_err();
    let CheckpointError::JobChanged { differences } = &err else {
        panic!("{err:?}");
    };
    let settings: Vec<&str> = differences.iter().map(|d| d.setting.as_str()).collect();
    assert_eq!(settings, vec!["window", "allowed lateness", "time format"]);
    assert_eq!(
        err.to_string(),
        "the job has changed since its checkpoint was taken, so it cannot resume from it:\n  \
         window was \"tumbling 1000ms\", is now \"tumbling 5000ms\"\n  \
         allowed lateness was \"500ms\", is now \"0ms\"\n  \
         time format was \"epoch-ms\", is now \"rfc3339\"\n\
         a rebuild discards the checkpoints and recomputes from the start of the input"
    );
}

#[test]
fn prefix_digest_equals_the_running_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("results.jsonl");
    let mut file = fs::File::create(&path).unwrap();
    let mut running = OutputDigest::new();
    let mut commits = vec![running.position()];
    for i in 0..2_000 {
        let line = format!(
            "{{\"key\":\"k{}\",\"start\":{},\"count\":{}}}\n",
            i % 13,
            i * 1_000,
            i
        );
        file.write_all(line.as_bytes()).unwrap();
        running.update(line.as_bytes());
        if i % 97 == 0 {
            commits.push(running.position());
        }
    }
    file.flush().unwrap();
    drop(file);
    commits.push(running.position());

    for c in &commits {
        assert_eq!(
            digest_prefix(&path, c.len).unwrap(),
            c.digest,
            "at {}",
            c.len
        );
        let extra = running.len() - c.len;
        assert_eq!(c.check(&path).unwrap(), OutputCheck::Matches { extra });
    }
    let whole = digest_file(&path).unwrap();
    assert_eq!(whole, running.position());
    assert_eq!(whole.digest, Digest::of(&fs::read(&path).unwrap()));
    assert_eq!(commits[0], OutputPosition::EMPTY);

    // A prefix longer than the file is an error, not a short digest.
    let err = digest_prefix(&path, running.len() + 1).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);

    // Checking a changed, shortened or missing output.
    let commit = commits[5];
    flip(&path, (commit.len / 2) as usize);
    assert!(matches!(
        commit.check(&path).unwrap(),
        OutputCheck::Differs { .. }
    ));
    // A change after the committed bytes is not the commit's business.
    let at_end = *commits.last().unwrap();
    let early = commits[1];
    assert!(early.len < commit.len / 2);
    assert_eq!(
        early.check(&path).unwrap(),
        OutputCheck::Matches {
            extra: at_end.len - early.len
        }
    );
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(commit.len - 1)
        .unwrap();
    assert_eq!(
        commit.check(&path).unwrap(),
        OutputCheck::Shorter {
            found: commit.len - 1
        }
    );
    fs::remove_file(&path).unwrap();
    assert_eq!(commit.check(&path).unwrap(), OutputCheck::Missing);
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    fs::write(path, bytes).unwrap();
}
