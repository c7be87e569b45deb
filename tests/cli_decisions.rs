//! Recorded time decisions, through the real binary: a followed run with
//! `--idle-after` and `--checkpoint-dir` releases a silent partition, which
//! later sends a record the frontier has passed; SIGINT stops it. A replay
//! of the same (now complete) files with `--replay-decisions` writes exactly
//! the live run's results and late records, with 1 and 3 workers, while a
//! plain bounded run over the same files does not (the record the live run
//! judged late is on time there).
//!
//! Run with `cargo test --test cli_decisions`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn append(path: &Path, line: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

/// Waits until `path` contains `needle`.
fn wait_for(path: &Path, needle: &str) {
    let start = Instant::now();
    loop {
        if fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "\"{}\" never contained {needle}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_bounded(dir: &Path, name: &str, extra: &[&str]) -> (String, String) {
    let results = dir.join(format!("{name}.jsonl"));
    let late = dir.join(format!("{name}-late.jsonl"));
    let out = bin()
        .args(["run", "--quiet", "--window", "tumbling:1s"])
        .arg("--input")
        .arg(dir.join("in"))
        .arg("--output")
        .arg(&results)
        .arg("--late")
        .arg(&late)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        fs::read_to_string(results).unwrap(),
        fs::read_to_string(late).unwrap(),
    )
}

#[test]
fn a_replay_of_recorded_decisions_writes_the_live_runs_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in");
    fs::create_dir(&input).unwrap();
    let (p0, p1) = (input.join("p0.jsonl"), input.join("p1.jsonl"));
    for t in [1000, 1200, 2500, 3100, 4200, 5000] {
        append(&p0, &format!("{{\"key\":\"a\",\"ts\":{t},\"value\":1}}"));
    }
    append(&p1, "{\"key\":\"b\",\"ts\":1000,\"value\":1}");
    let (live, live_late) = (dir.join("live.jsonl"), dir.join("live-late.jsonl"));
    let ckpt = dir.join("ckpt");
    let child = bin()
        .args(["run", "--quiet", "--window", "tumbling:1s", "--follow"])
        .args(["--idle-after", "200ms", "--checkpoint-every", "1s"])
        .arg("--input")
        .arg(&input)
        .arg("--checkpoint-dir")
        .arg(&ckpt)
        .arg("--output")
        .arg(&live)
        .arg("--late")
        .arg(&live_late)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Partition 1 falls silent and is released: the window [3000, 4000) of
    // partition 0 fires although partition 1 is still at 1000.
    wait_for(&live, "\"start\":3000");
    // Back from the release, partition 1 sends a record the frontier passed.
    append(&p1, "{\"key\":\"b\",\"ts\":1500,\"value\":7}");
    std::thread::sleep(Duration::from_millis(500));
    append(&p0, "{\"key\":\"a\",\"ts\":8000,\"value\":1}");
    append(&p1, "{\"key\":\"b\",\"ts\":8100,\"value\":1}");
    wait_for(&live, "\"start\":5000");
    wait_for(&live_late, "\"ts\":1500");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = fs::read_to_string(live).unwrap();
    let live_late = fs::read_to_string(live_late).unwrap();
    let decisions = fs::read_to_string(ckpt.join("decisions.jsonl")).unwrap();
    assert!(decisions.contains("\"resume\""), "{decisions}");
    assert!(decisions.contains("\"stop\""), "{decisions}");

    for workers in ["1", "3"] {
        let replay_dir = ckpt.to_str().unwrap();
        let (results, late) = run_bounded(
            dir,
            &format!("replay-{workers}"),
            &["--replay-decisions", replay_dir, "--workers", workers],
        );
        assert_eq!(results, live, "workers {workers}: replayed results differ");
        assert_eq!(
            late, live_late,
            "workers {workers}: replayed late records differ"
        );
    }
    // The job-file key, relative to the job file's directory.
    let job = dir.join("replay.toml");
    fs::write(
        &job,
        "input = \"in\"\nwindow = \"tumbling:1s\"\noutput = \"by-job.jsonl\"\nreplay-decisions = \"ckpt\"\n",
    )
    .unwrap();
    let out = bin()
        .args(["run", "--quiet", "--job"])
        .arg(&job)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(dir.join("by-job.jsonl")).unwrap(), live);

    // Without the decisions the same files give other results: the record
    // the live run found late is on time in a bounded run.
    let (plain, plain_late) = run_bounded(dir, "plain", &[]);
    assert_ne!(plain, live);
    assert!(plain_late.is_empty(), "{plain_late}");

    // Replaying while taking decisions of its own is refused.
    let out = bin()
        .args([
            "run",
            "--window",
            "tumbling:1s",
            "--follow",
            "--idle-after",
            "1s",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--replay-decisions")
        .arg(&ckpt)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
