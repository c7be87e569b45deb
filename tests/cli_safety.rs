//! No output is lost or made up when an operator stops a run, through the
//! real binary:
//!
//! - a followed run (`--follow`, or `follow = true` in a job file) over a
//!   directory of two partitions that grow while it runs shows the rows
//!   its watermark completes while it runs; SIGINT (exit 130) or SIGTERM
//!   (exit 143) stops it with its summary on standard error, and its output
//!   is then exactly the rows of a bounded run over the same lines whose
//!   window ends at or before the final watermark the summary prints, in
//!   the same order, byte for byte;
//! - a run of 100 000 records over three partitions with a bad line at
//!   offset 50 501 of one of them and `--on-bad-record fail` exits 1,
//!   naming the record and the watermark up to which its output is
//!   complete; that output is a prefix, byte for byte, of the output of the
//!   same run with `--on-bad-record skip`: exactly its rows whose window
//!   ends at or before that watermark, none of them a partial window.
//!
//! Windows here are tumbling with emit mode `final` and no allowed
//! lateness, so each window has one row, written when the watermark
//! reaches its end. Run with `cargo test --test cli_safety`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The window end of a result row.
fn end_of(row: &str) -> i64 {
    let v: Json = serde_json::from_str(row).unwrap_or_else(|e| panic!("{e}: {row:?}"));
    assert_eq!(v["kind"], "final", "{row}");
    v["end"].as_i64().unwrap()
}

/// The rows of `output` whose window ends at or before `watermark`, as the
/// bytes of a file.
fn completed_by(output: &str, watermark: i64) -> String {
    output
        .lines()
        .filter(|row| end_of(row) <= watermark)
        .map(|row| format!("{row}\n"))
        .collect()
}

/// The number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<i64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

fn append(path: &Path, lines: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(lines.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// Sends `signal` (a name such as `INT`) to `child` with kill(1).
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits up to `limit` for `child` to exit and returns its output.
fn wait_for(mut child: Child, limit: Duration) -> Output {
    let until = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr:\n{}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Kills the child if a test fails while it runs.
struct Guard(Option<Child>);

impl Guard {
    fn take(&mut self) -> Child {
        self.0.take().unwrap()
    }
    fn child(&self) -> &Child {
        self.0.as_ref().unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Lines of partition `p` with event times in `[from, to)`, every 50 ms,
/// each up to 40 ms out of order (under the 100 ms delay), over 5 keys.
fn lines(p: i64, from: i64, to: i64) -> String {
    (from / 50..to / 50)
        .map(|i| {
            let ts = i * 50 + (i * 37 + p * 11) % 40;
            let key = (i * 7 + p) % 5;
            format!("{{\"key\":\"k{key}\",\"ts\":{ts},\"value\":{}}}\n", i % 13)
        })
        .collect()
}

const FOLLOW_JOB: [&str; 6] = [
    "--window",
    "tumbling:1s",
    "--delay",
    "100ms",
    "--output",
    "out.jsonl",
];

/// Polls `path` until it holds `want` (a prefix of what it will hold),
/// checking on the way that it only ever holds prefixes of `want` or more.
fn poll_until_holds(path: &Path, want: &str, child: &Child) -> bool {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        let now = fs::read_to_string(path).unwrap_or_default();
        // Whole lines only: a line being written may be cut.
        let whole = &now[..now.rfind('\n').map_or(0, |i| i + 1)];
        assert!(
            whole.starts_with(want) || want.starts_with(whole),
            "pid {}: the output is not a prefix of the expected rows:\n{whole}\nexpected:\n{want}",
            child.id()
        );
        if whole.starts_with(want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Follows a growing two-partition log, stops it with `sig` and checks the
/// output against a bounded run over the same lines.
fn follow_then_signal(sig: &str, code: i32, job_file: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let parts: Vec<PathBuf> = (0..2)
        .map(|p| dir.join(format!("part-{p}.jsonl")))
        .collect();
    for (p, path) in parts.iter().enumerate() {
        append(path, &lines(p as i64, 0, 2_500));
    }
    let mut cmd = bin();
    cmd.current_dir(tmp.path()).arg("run");
    if job_file {
        fs::write(
            tmp.path().join("job.toml"),
            "input = \"in\"\nfollow = true\nwindow = \"tumbling:1s\"\ndelay = \"100ms\"\noutput = \"out.jsonl\"\n",
        )
        .unwrap();
        cmd.args(["--job", "job.toml"]);
    } else {
        cmd.args(["--input", "in", "--follow"]).args(FOLLOW_JOB);
    }
    let mut guard = Guard(Some(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tidemark starts"),
    ));
    let out = tmp.path().join("out.jsonl");

    // What a bounded run makes of the lines so far.
    let bounded = || {
        let run = bin()
            .current_dir(tmp.path())
            .args(["run", "--quiet", "--input", "in"])
            .args(&FOLLOW_JOB[..4])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", text(&run.stderr));
        text(&run.stdout)
    };
    // Each partition's watermark is its largest event time - 100 ms.
    let mut until = 2_500;
    let mut seen_watermark = i64::MIN;
    for round in 0..3 {
        let all = bounded();
        let watermark = (0..2)
            .map(|p| {
                fs::read_to_string(&parts[p])
                    .unwrap()
                    .lines()
                    .map(|l| {
                        serde_json::from_str::<Json>(l).unwrap()["ts"]
                            .as_i64()
                            .unwrap()
                    })
                    .max()
                    .unwrap()
            })
            .min()
            .unwrap()
            - 100
            // Complete below the slowest partition's stream time.
            - 1;
        let want = completed_by(&all, watermark);
        assert!(!want.is_empty(), "round {round}: no window is complete yet");
        assert!(
            poll_until_holds(&out, &want, guard.child()),
            "round {round}: after 20 s the output does not show the rows of watermark {watermark}:\n{}\nexpected:\n{want}",
            fs::read_to_string(&out).unwrap_or_default()
        );
        seen_watermark = watermark;
        // More lines, partition 1 first: the watermark waits for partition 0.
        for p in [1, 0] {
            append(&parts[p], &lines(p as i64, until, until + 1_500));
            std::thread::sleep(Duration::from_millis(100));
        }
        until += 1_500;
    }
    // Let it read the last lines, then stop it.
    std::thread::sleep(Duration::from_millis(500));
    signal(guard.child(), sig);
    let run = wait_for(guard.take(), Duration::from_secs(20));
    let err = text(&run.stderr);
    assert_eq!(run.status.code(), Some(code), "{err}");
    let name = format!("SIG{sig}");
    assert!(
        err.contains(&format!("tidemark: {name}: stopping")),
        "{err}"
    );
    assert!(err.contains(" records from 2 partition(s)"), "{err}");
    let watermark = number_after(&err, "  final watermark: ")
        .unwrap_or_else(|| panic!("no final watermark in the summary:\n{err}"));
    assert!(
        err.contains(&format!("  final watermark: {watermark} (1970-01-01T"))
            && err.contains("Z; outputs complete up to it)"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "error: stopped by {name}: the outputs hold every result the watermark completed (watermark {watermark})"
        )),
        "{err}"
    );
    assert!(
        watermark >= seen_watermark,
        "final watermark {watermark} is behind the {seen_watermark} the output already showed"
    );
    let followed = fs::read_to_string(&out).unwrap();
    let all = bounded();
    assert_eq!(
        followed,
        completed_by(&all, watermark),
        "the followed run's output is not the bounded run's rows up to watermark {watermark}"
    );
    assert!(
        followed.len() < all.len(),
        "the followed run wrote the windows still open at its watermark"
    );
}

#[test]
fn follow_flag_then_sigint_keeps_exactly_the_completed_rows() {
    follow_then_signal("INT", 130, false);
}

#[test]
fn follow_flag_then_sigterm_keeps_exactly_the_completed_rows() {
    follow_then_signal("TERM", 143, false);
}

#[test]
fn follow_key_then_sigint_keeps_exactly_the_completed_rows() {
    follow_then_signal("INT", 130, true);
}

#[test]
fn follow_key_then_sigterm_keeps_exactly_the_completed_rows() {
    follow_then_signal("TERM", 143, true);
}

/// 100 000 records: partitions 0 and 2 hold 20 000 each, partition 1
/// 60 000, all over the same 1 000 s of event time (so they interleave),
/// slightly out of order. With `bad`, the line at offset 50 501 of
/// partition 1 is not a record.
fn abort_log(dir: &Path, bad: bool) {
    fs::create_dir_all(dir).unwrap();
    for (p, n) in [(0u64, 20_000u64), (1, 60_000), (2, 20_000)] {
        let step = 1_000_000 / n;
        let mut text = String::with_capacity(n as usize * 40);
        for i in 0..n {
            if bad && p == 1 && i == 50_501 {
                text.push_str("{\"key\":\"k1\",\"ts\":\"soon\",\"value\":1}\n");
                continue;
            }
            let ts = i * step + (i * 7_919 + p * 31) % 90;
            let key = (i * 13 + p * 5) % 97;
            text.push_str(&format!(
                "{{\"key\":\"k{key}\",\"ts\":{ts},\"value\":{}}}\n",
                (i + p) % 17
            ));
        }
        fs::write(dir.join(format!("part-{p}.jsonl")), text).unwrap();
    }
}

#[test]
fn a_run_stopped_by_a_bad_record_writes_a_prefix_of_the_full_output() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    abort_log(&dir, true);
    let job = [
        "run",
        "--input",
        "in",
        "--window",
        "tumbling:10s",
        "--delay",
        "100ms",
    ];
    let run = |extra: &[&str]| {
        bin()
            .current_dir(tmp.path())
            .args(job)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let skip = run(&["--on-bad-record", "skip", "--output", "skip.jsonl"]);
    assert!(skip.status.success(), "{}", text(&skip.stderr));
    let skip_err = text(&skip.stderr);
    assert!(
        skip_err.contains("tidemark: 99999 records from 3 partition(s)")
            && skip_err.contains("dead letters 1"),
        "{skip_err}"
    );
    let full = fs::read_to_string(tmp.path().join("skip.jsonl")).unwrap();
    assert!(full.lines().count() > 5_000, "{}", full.lines().count());

    for workers in ["1", "2"] {
        let out = format!("fail-{workers}.jsonl");
        let failed = run(&[
            "--on-bad-record",
            "fail",
            "--output",
            &out,
            "--workers",
            workers,
        ]);
        let err = text(&failed.stderr);
        assert_eq!(failed.status.code(), Some(1), "{err}");
        assert!(
            err.contains(
                "error: bad record at in/part-1.jsonl:50502 (partition 1, offset 50501): invalid time \"soon\" for format epoch-ms in field \"ts\""
            ),
            "{err}"
        );
        assert!(
            err.contains("hint: rerun with --on-bad-record skip"),
            "{err}"
        );
        let prefix = "tidemark: the job failed; its outputs hold every result the watermark completed (watermark ";
        let watermark = number_after(&err, prefix).unwrap_or_else(|| {
            panic!("the failure does not say how far the outputs are complete:\n{err}")
        });
        // The bad line is at about 808 s of event time; the watermark is
        // where the ingest stopped, at most there.
        assert!(
            (0..=808_100).contains(&watermark),
            "watermark {watermark}: {err}"
        );
        let written = fs::read_to_string(tmp.path().join(&out)).unwrap();
        assert!(
            full.as_bytes().starts_with(written.as_bytes()),
            "workers {workers}: the failed run's output is not a prefix of the full output"
        );
        assert_eq!(
            written,
            completed_by(&full, watermark),
            "workers {workers}: the failed run's output is not the full output's rows up to watermark {watermark}"
        );
        assert!(written.len() < full.len());
    }
}
