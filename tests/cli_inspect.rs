//! `tidemark inspect DIR` over a checkpoint directory written through the
//! engine's checkpoint store: each checkpoint's frontier, positions,
//! outputs and job, and a torn one named with its reason.
//!
//! Run with `cargo test --test cli_inspect`.

use std::collections::BTreeMap;
use std::process::Command;

use tidemark::engine::checkpoint::{
    Checkpoint, CheckpointDir, CommittedOutputs, Counters, Digest, InputIdentity, JobFingerprint,
    OutputPosition,
};
use tidemark::engine::{EngineConfig, Position};
use tidemark::windows::{AggKind, Policy, WindowSpec};

fn checkpoint(frontier: i64, offset: u64) -> Checkpoint {
    let config = EngineConfig::new(
        WindowSpec::tumbling(60_000),
        Policy::new(5_000, 30_000, Default::default()),
        vec![AggKind::Count, AggKind::Sum],
    );
    let mut positions = BTreeMap::new();
    positions.insert(
        0,
        Position {
            offset,
            stream_time: Some(frontier),
        },
    );
    positions.insert(
        1,
        Position {
            offset: 0,
            stream_time: None,
        },
    );
    Checkpoint {
        frontier,
        positions,
        state: vec![7; 1_000],
        outputs: CommittedOutputs {
            results: Some(OutputPosition {
                len: 11,
                digest: Digest::of(b"hello world"),
            }),
            late: None,
            dead_letters: None,
        },
        fingerprint: JobFingerprint::of(
            &config,
            InputIdentity::new(
                vec!["logs/".into()],
                vec!["part-0.jsonl".into(), "part-1.jsonl".into()],
            ),
            BTreeMap::new(),
        ),
        counters: Counters {
            counts: tidemark::engine::Counts {
                records: offset,
                ..Default::default()
            },
            ..Counters::default()
        },
    }
}

fn inspect(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("inspect")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn inspect_lists_checkpoints_and_names_a_torn_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    let mut store = CheckpointDir::open(&dir).unwrap();
    let first = store.write(&checkpoint(1_793_610_000_000, 1_200)).unwrap();
    let second = store.write(&checkpoint(1_793_610_060_000, 2_400)).unwrap();
    drop(store);
    let d = dir.to_str().unwrap();

    let (ok, text, err) = inspect(&[d]);
    assert!(ok, "{err}");
    // Newest first, with frontier, watermark (what the frontier completed:
    // the stream time below it, minus 5 s), positions, outputs and the job.
    let newest = text.find(&format!("checkpoint {second}")).unwrap();
    let older = text.find(&format!("checkpoint {first}")).unwrap();
    assert!(newest < older, "{text}");
    for needle in [
        "checksums     hold",
        "frontier      1793610060000 (2026-11-02T09:01:00.000Z), watermark 1793610054999",
        "partition 0   next offset 2400, stream time 1793610060000",
        "partition 1   next offset 0, stream time none yet",
        "results       11 bytes, sha256 b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
        "late records  (not a file)",
        "aggregating count,sum, delay 5000 ms, lateness 30000 ms",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }

    // Flip a byte of the newest state: its checksum fails, named.
    let state = dir.join(format!("ckpt-{:010}", second.0)).join("state.bin");
    let mut bytes = std::fs::read(&state).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&state, bytes).unwrap();
    let (ok, text, err) = inspect(&[d]);
    assert!(ok, "{err}");
    let newest_block = &text[..text.find(&format!("checkpoint {first}")).unwrap()];
    assert!(newest_block.contains("checksums     FAIL"), "{text}");
    assert!(newest_block.contains("state.bin"), "{text}");

    // --json: one object per checkpoint, for scripts.
    let (ok, text, err) = inspect(&["--json", d]);
    assert!(ok, "{err}");
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["valid"], false);
    assert_eq!(objects[1]["valid"], true);
    assert_eq!(objects[1]["manifest"]["frontier"], 1_793_610_000_000i64);

    // An empty directory says so (a missing one is an error).
    let empty = tmp.path().join("none");
    std::fs::create_dir(&empty).unwrap();
    let (ok, text, _) = inspect(&[empty.to_str().unwrap()]);
    assert!(ok);
    assert!(text.contains("no checkpoint"), "{text}");
}

#[test]
fn inspect_names_the_options_and_settings_the_job_is_made_of() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let lines: String = (0..50)
        .map(|i| {
            format!(
                "{{\"key\":\"k{}\",\"ts\":{},\"value\":1}}\n",
                i % 3,
                i * 100
            )
        })
        .collect();
    std::fs::write(dir.join("in.jsonl"), lines).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .current_dir(dir)
        .args([
            "run",
            "--quiet",
            "--input",
            "in.jsonl",
            "--window",
            "tumbling:1s",
        ])
        .args(["--max-future-skew", "1m", "--key", "key"])
        .args(["--checkpoint-dir", "ck", "--output", "out.jsonl"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ck = dir.join("ck");
    let (ok, out, err) = inspect(&[ck.to_str().unwrap()]);
    assert!(ok, "{err}");
    let settings = out
        .lines()
        .find(|l| l.trim_start().starts_with("settings"))
        .unwrap_or_else(|| panic!("no settings line in:\n{out}"));
    for part in [
        "maximum future skew 60000ms",
        "key field key",
        "time field ts",
    ] {
        assert!(settings.contains(part), "{part:?} not in {settings:?}");
    }
}
