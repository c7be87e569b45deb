//! Checkpoints through the real binary, with real SIGKILLs: a run killed at
//! random moments and started again with the same command, as often as it
//! takes, ends with results, late-record and dead-letter files byte-identical
//! to an uninterrupted run's; a damaged newest checkpoint (truncated state,
//! a flipped byte, no manifest) is skipped with a warning naming the reason;
//! a changed window is refused with exit 2 and the outputs untouched, and
//! `--rebuild` then runs the new job from the start; the job-file keys
//! reach the run.
//!
//! Run with `cargo test --test cli_crash`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// Four partitions with stragglers and a few malformed lines.
fn input(dir: &Path, events: u64) -> PathBuf {
    let input = dir.join("in");
    let out = bin()
        .args([
            "gen",
            "--partitions",
            "4",
            "--keys",
            "300",
            "--late-frac",
            "0.02",
        ])
        .args([
            "--late-extra",
            "3s",
            "--rate",
            "5",
            "--events",
            &events.to_string(),
        ])
        .arg("--out")
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut names: Vec<_> = fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for (i, p) in names.iter().enumerate().take(2) {
        let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
        writeln!(f, "{{\"key\":\"bad{i}\",\"ts\":\"not a time\"}}").unwrap();
        writeln!(f, "not json at all").unwrap();
    }
    input
}

const OUTPUTS: [&str; 3] = ["results.jsonl", "late.jsonl", "dead.jsonl"];

fn job_args(input: &Path, out: &Path, job: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["run".into(), "--quiet".into(), "--input".into()];
    args.push(input.display().to_string());
    for (flag, file) in ["--output", "--late", "--dead-letter"].iter().zip(OUTPUTS) {
        args.push((*flag).into());
        args.push(out.join(file).display().to_string());
    }
    args.extend(job.iter().map(|s| s.to_string()));
    args
}

fn read_outputs(out: &Path) -> Vec<Vec<u8>> {
    OUTPUTS
        .iter()
        .map(|f| fs::read(out.join(f)).unwrap_or_default())
        .collect()
}

/// An uninterrupted run without checkpoints: the reference outputs and how
/// long it took.
fn reference(dir: &Path, input: &Path, job: &[&str]) -> (Vec<Vec<u8>>, Duration) {
    let out = dir.join("reference");
    fs::create_dir_all(&out).unwrap();
    let start = Instant::now();
    let run = bin().args(job_args(input, &out, job)).output().unwrap();
    let took = start.elapsed();
    assert!(run.status.success(), "{}", stderr(&run));
    let files = read_outputs(&out);
    assert!(!files[0].is_empty() && !files[1].is_empty() && !files[2].is_empty());
    (files, took)
}

/// Starts the checkpointed command, kills it with SIGKILL after `after`
/// (unless it ended first); returns its stderr and whether it completed.
fn run_killed(args: &[String], after: Duration) -> (String, bool) {
    let mut child = bin()
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let completed = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() >= after {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        e.read_to_string(&mut err).unwrap();
    }
    if let Some(status) = completed {
        assert!(status.success(), "a run failed: {err}");
    }
    (err, completed.is_some())
}

fn kill_and_resume(seed: u64, job: &[&str], kills: usize, workers: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = input(dir, 120_000);
    let (expected, took) = reference(dir, &input, job);
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let ckpt = dir.join("ckpt").display().to_string();
    let mut rng = Rng(seed);
    let mut resumed = 0;
    let mut moments = Vec::new();
    for i in 0..kills {
        let mut with: Vec<&str> = job.to_vec();
        with.extend(["--checkpoint-dir", &ckpt, "--checkpoint-every", "1s"]);
        with.extend(["--workers", workers[i % workers.len()]]);
        let args = job_args(&input, &out, &with);
        // From at once to a little past a whole run, some very short.
        let span = took.as_millis() as u64 * 6 / 5 + 1;
        let after = Duration::from_millis(if rng.below(4) == 0 {
            rng.below(60)
        } else {
            rng.below(span)
        });
        moments.push(after.as_millis());
        // A run that starts with a complete checkpoint in the directory
        // must use it: resume from it, or find the job complete (a run
        // killed after its last checkpoint). One that starts with none (the
        // first, or one after a kill before the first checkpoint) starts
        // over.
        let had_checkpoint = has_complete_checkpoint(Path::new(&ckpt));
        let (err, completed) = run_killed(&args, after);
        // (A run killed early may not have got as far as saying so.)
        if had_checkpoint && completed {
            assert!(
                err.contains("resuming from checkpoint") || err.contains("marks this job complete"),
                "seed {seed}, kills after {moments:?} ms: a run did not use the checkpoint it found:\n{err}"
            );
        }
        if err.contains("resuming from checkpoint") {
            resumed += 1;
        }
        if completed {
            break;
        }
    }
    let mut with: Vec<&str> = job.to_vec();
    with.extend(["--checkpoint-dir", &ckpt, "--checkpoint-every", "1s"]);
    let had_checkpoint = has_complete_checkpoint(Path::new(&ckpt));
    let last = bin().args(job_args(&input, &out, &with)).output().unwrap();
    assert!(last.status.success(), "{}", stderr(&last));
    let err = stderr(&last);
    if had_checkpoint {
        assert!(
            err.contains("resuming from checkpoint") || err.contains("marks this job complete"),
            "seed {seed}, kills after {moments:?} ms: the last run did not use the checkpoint it found:\n{err}"
        );
    }
    if err.contains("resuming from checkpoint") {
        resumed += 1;
    }
    let got = read_outputs(&out);
    for (i, name) in OUTPUTS.iter().enumerate() {
        assert!(
            got[i] == expected[i],
            "seed {seed}, kills after {moments:?} ms: {name} differs from the uninterrupted run ({} bytes, want {})",
            got[i].len(),
            expected[i].len()
        );
    }
    // The kills must have tested resuming at all.
    assert!(
        resumed >= 1,
        "seed {seed}: no restart resumed from a checkpoint (kills after {moments:?} ms)"
    );
}

/// Whether the checkpoint directory holds a checkpoint with its manifest.
fn has_complete_checkpoint(ckpt: &Path) -> bool {
    fs::read_dir(ckpt).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name().to_string_lossy().starts_with("ckpt-")
                && e.path().join("MANIFEST").exists()
        })
    })
}

#[test]
fn sigkill_at_20_random_moments_then_the_same_command_gives_the_uninterrupted_output() {
    kill_and_resume(
        11,
        &[
            "--window",
            "session:40ms",
            "--delay",
            "500ms",
            "--lateness",
            "2s",
        ],
        20,
        &["1"],
    );
}

#[test]
fn sigkill_with_sliding_windows_and_3_workers_resuming_on_1_or_3() {
    kill_and_resume(
        12,
        &[
            "--window",
            "sliding:4s/1s",
            "--delay",
            "200ms",
            "--lateness",
            "1s",
            "--emit",
            "updates",
        ],
        10,
        &["3", "1"],
    );
}

/// A finished checkpointed run whose completed checkpoint is removed, so
/// that its newest checkpoint is one in the middle of the input.
fn interrupted_checkpoints(dir: &Path, input: &Path, job: &[&str]) -> PathBuf {
    let out = dir.join("first");
    fs::create_dir_all(&out).unwrap();
    let ckpt = dir.join("ckpt");
    let mut with = job.to_vec();
    let c = ckpt.display().to_string();
    with.extend([
        "--checkpoint-dir",
        &c,
        "--checkpoint-every",
        "1s",
        "--keep-checkpoints",
        "50",
    ]);
    let run = bin().args(job_args(input, &out, &with)).output().unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let mut ids: Vec<PathBuf> = fs::read_dir(&ckpt)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("ckpt-")
        })
        .collect();
    ids.sort();
    assert!(ids.len() >= 4, "{ids:?}");
    fs::remove_dir_all(ids.pop().unwrap()).unwrap();
    ckpt
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn newest(ckpt: &Path) -> PathBuf {
    let mut ids: Vec<PathBuf> = fs::read_dir(ckpt)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("ckpt-")
        })
        .collect();
    ids.sort();
    ids.pop().unwrap()
}

#[test]
fn a_damaged_newest_checkpoint_is_skipped_with_a_warning_and_the_previous_one_used() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = input(dir, 40_000);
    let job = [
        "--window",
        "tumbling:1s",
        "--delay",
        "300ms",
        "--lateness",
        "1s",
    ];
    let (expected, _) = reference(dir, &input, &job);
    let ckpt = interrupted_checkpoints(dir, &input, &job);
    type Damage = fn(&Path);
    let damages: [(&str, Damage, &str); 3] = [
        (
            "truncated state",
            |c| {
                let f = c.join("state.bin");
                let len = fs::metadata(&f).unwrap().len();
                fs::OpenOptions::new()
                    .write(true)
                    .open(&f)
                    .unwrap()
                    .set_len(len / 2)
                    .unwrap();
            },
            "state.bin",
        ),
        (
            "flipped byte",
            |c| {
                let f = c.join("state.bin");
                let mut bytes = fs::read(&f).unwrap();
                let i = bytes.len() / 3;
                bytes[i] ^= 0x10;
                fs::write(&f, bytes).unwrap();
            },
            "state.bin",
        ),
        (
            "deleted manifest",
            |c| fs::remove_file(c.join("MANIFEST")).unwrap(),
            "manifest",
        ),
    ];
    for (name, damage, reason) in damages {
        let case = dir.join(name.replace(' ', "-"));
        copy_dir(&ckpt, &case.join("ckpt"));
        copy_dir(&dir.join("first"), &case.join("out"));
        let broken = newest(&case.join("ckpt"));
        damage(&broken);
        let c = case.join("ckpt").display().to_string();
        let mut with = job.to_vec();
        with.extend([
            "--checkpoint-dir",
            &c,
            "--checkpoint-every",
            "1s",
            "--keep-checkpoints",
            "50",
        ]);
        let run = bin()
            .args(job_args(&input, &case.join("out"), &with))
            .output()
            .unwrap();
        let err = stderr(&run);
        assert!(run.status.success(), "{name}: {err}");
        let id = broken
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_start_matches("ckpt-");
        let id = id.trim_start_matches('0');
        assert!(
            err.contains(&format!("checkpoint {id} ("))
                && err.contains("skipped")
                && err.contains(reason),
            "{name}: no warning naming checkpoint {id} and {reason}: {err}"
        );
        assert!(err.contains("resuming from checkpoint"), "{name}: {err}");
        assert!(
            read_outputs(&case.join("out")) == expected,
            "{name}: output differs"
        );
    }
}

#[test]
fn a_changed_window_is_refused_and_rebuild_runs_the_new_job() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = input(dir, 20_000);
    let job = ["--window", "tumbling:1s"];
    let ckpt = interrupted_checkpoints(dir, &input, &job);
    let out = dir.join("first");
    let before = read_outputs(&out);
    let c = ckpt.display().to_string();
    let changed = [
        "--window",
        "tumbling:2s",
        "--checkpoint-dir",
        &c,
        "--checkpoint-every",
        "1s",
    ];
    let run = bin()
        .args(job_args(&input, &out, &changed))
        .output()
        .unwrap();
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("window"), "{err}");
    assert!(
        err.contains("1000") && err.contains("2000"),
        "old and new value: {err}"
    );
    assert!(err.contains("--rebuild"), "{err}");
    assert!(
        read_outputs(&out) == before,
        "a refused resume touched the outputs"
    );

    let mut rebuild = changed.to_vec();
    rebuild.push("--rebuild");
    let run = bin()
        .args(job_args(&input, &out, &rebuild))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let (fresh, _) = reference(&dir.join("new"), &input, &["--window", "tumbling:2s"]);
    assert!(
        read_outputs(&out) == fresh,
        "--rebuild differs from a fresh run of the new job"
    );
}

#[test]
fn job_file_checkpoint_keys_reach_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = input(dir, 20_000);
    let job = dir.join("job.toml");
    fs::write(
        &job,
        format!(
            "input = \"{}\"\nwindow = \"tumbling:1s\"\noutput = \"out.jsonl\"\ncheckpoint-dir = \"ck\"\ncheckpoint-every = \"500records\"\nkeep-checkpoints = 2\n",
            input.display()
        ),
    )
    .unwrap();
    let run = bin().arg("run").arg("--job").arg(&job).output().unwrap();
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    let n = fs::read_dir(dir.join("ck"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with("ckpt-")
        })
        .count();
    assert_eq!(n, 2, "keep-checkpoints = 2 from the job file");
    // 20 000 records over 4 partitions, one checkpoint per 500 offsets of
    // each: many were written.
    let written: u64 = err
        .split("checkpoints: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(written >= 5, "{err}");
    let inspect = bin().arg("inspect").arg(dir.join("ck")).output().unwrap();
    assert!(inspect.status.success());
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("checksums     hold"));
}

#[test]
fn checkpoints_of_standard_input_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args([
            "run",
            "--input",
            "-",
            "--window",
            "tumbling:1s",
            "--checkpoint-dir",
        ])
        .arg(tmp.path().join("ck"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("standard input cannot"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("ck").exists());
}

#[test]
fn job_file_keys_rebuild_from_time_and_from_offsets_reach_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = input(dir, 20_000);
    let write_job = |extra: &str| {
        let job = dir.join("job.toml");
        fs::write(
            &job,
            format!(
                "input = \"{}\"\nwindow = \"tumbling:1s\"\noutput = \"out.jsonl\"\n{extra}",
                input.display()
            ),
        )
        .unwrap();
        let run = bin()
            .arg("run")
            .arg("--quiet")
            .arg("--job")
            .arg(&job)
            .output()
            .unwrap();
        assert!(run.status.success(), "{extra}: {}", stderr(&run));
        fs::read(dir.join("out.jsonl")).unwrap()
    };
    let full = write_job("");
    // The generator starts at 1 700 000 000 000 with 5 events per ms.
    let from_time = write_job("from-time = \"2023-11-14T22:13:22Z\"\n");
    assert!(!from_time.is_empty() && from_time.len() < full.len());
    assert!(full.ends_with(&from_time), "from-time: not a suffix");
    let by_ms = write_job("from-time = 1700000002000\n");
    assert_eq!(by_ms, from_time, "RFC 3339 and epoch ms name the same time");
    let from_offsets = write_job("from-offsets = \"0:2000,2:100\"\n");
    assert!(!from_offsets.is_empty() && from_offsets.len() < full.len());
    assert!(full.ends_with(&from_offsets), "from-offsets: not a suffix");

    // rebuild = true in the job file deletes the checkpoints of a run and
    // starts again (no resume).
    let keys = "checkpoint-dir = \"ck\"\ncheckpoint-every = \"1s\"\n";
    // A checkpointed run does not replace outputs another run wrote.
    fs::remove_file(dir.join("out.jsonl")).unwrap();
    write_job(keys);
    let job = dir.join("job.toml");
    fs::write(
        &job,
        format!(
            "input = \"{}\"\nwindow = \"tumbling:1s\"\noutput = \"out.jsonl\"\n{keys}rebuild = true\n",
            input.display()
        ),
    )
    .unwrap();
    let run = bin().arg("run").arg("--job").arg(&job).output().unwrap();
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("rebuilding from offset 0"), "{err}");
    assert!(!err.contains("resuming from checkpoint"), "{err}");
    assert_eq!(fs::read(dir.join("out.jsonl")).unwrap(), full);
}

#[test]
fn bench_checkpoint_flags_reach_the_measurement() {
    let out = bin()
        .args([
            "bench",
            "checkpoint",
            "--events",
            "20000",
            "--every",
            "100ms",
        ])
        .args(["--open-windows", "500,2000", "--runs", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("20000 events"), "{text}");
    assert!(text.contains("checkpoint every 100ms"), "{text}");
    assert!(text.contains("median of 1 run(s)"), "{text}");
    // 20 000 events at 100 per ms span 200 ms: a couple of checkpoints.
    let per_run: u64 = text
        .split("checkpoints per run:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(per_run >= 1, "{text}");
    for open in ["500", "2000"] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(open)),
            "no row for {open} open windows: {text}"
        );
    }
}

#[test]
fn a_resumed_run_reports_the_counts_of_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = input(dir, 100_000);
    let ckpt = dir.join("ck").display().to_string();
    let args = |out: &Path| {
        let mut a = job_args(
            &input,
            out,
            &[
                "--window",
                "tumbling:1s",
                "--delay",
                "100ms",
                "--lateness",
                "500ms",
            ],
        );
        a.retain(|s| s != "--quiet");
        a.extend([
            "--checkpoint-dir".into(),
            ckpt.clone(),
            "--checkpoint-every".into(),
            "1s".into(),
        ]);
        a
    };
    let counts = |err: &str| -> String {
        err.lines()
            .find(|l| l.trim_start().starts_with("windows emitted"))
            .unwrap_or_else(|| panic!("no counts in {err}"))
            .to_owned()
    };
    let out = dir.join("out");
    fs::create_dir_all(&out).unwrap();
    let first = bin().args(args(&out)).output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let mut ids: Vec<PathBuf> = fs::read_dir(dir.join("ck"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("ckpt-")
        })
        .collect();
    ids.sort();
    fs::remove_dir_all(ids.pop().unwrap()).unwrap();
    let again = bin().args(args(&out)).output().unwrap();
    let err = stderr(&again);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("resuming from checkpoint"), "{err}");
    assert_eq!(counts(&err), counts(&stderr(&first)));
}
