//! Checkpoints, resumes and reprocessing through the real binary:
//!
//! - `kill -9` at 20 random moments of a checkpointed run (session windows,
//!   late data, bad lines, four partitions), each restart resuming, then a
//!   run to the end: results, late records and dead letters are the bytes
//!   of one uninterrupted run without checkpoints;
//! - the same with sliding windows and 10 kills, the restarts alternating
//!   between 3 workers and 1;
//! - a cluster of two processes sharing the checkpoint directory, both
//!   killed at random moments and restarted: process 0's outputs are those
//!   of a one-process run;
//! - a newest checkpoint that is torn (truncated `state.bin`, a flipped
//!   byte, no `MANIFEST`) is skipped with a warning naming the reason, and
//!   the one before it gives the same outputs;
//! - a changed window refuses to resume (exit 2, naming the setting with
//!   both values and `--rebuild`) without touching the outputs or the
//!   checkpoints, and `--rebuild` then gives a fresh run's outputs; a
//!   changed worker count resumes to the same bytes;
//! - `--from-time` and `--from-offsets` write a suffix of the full run's
//!   outputs, the same for 1 and 3 workers, from the start or from a
//!   checkpoint, and `--from-offsets` the suffix of `--from-time` at the
//!   stream time its offsets name; an offset past a partition's end exits 2;
//! - the job-file keys `checkpoint-dir` (relative to the job file),
//!   `checkpoint-every` (`500records` or `2s`, cuts where the docs put
//!   them) and `keep-checkpoints`, and `tidemark inspect` over the result;
//! - (ignored: a known bug, see its comment) the same job file resumes when
//!   it is run from another working directory.
//!
//! Random choices come from a seeded generator; the seed (and every kill
//! moment) is printed when a test fails. `TIDEMARK_TEST_SEED=N` replaces
//! the seeds. Run with `cargo test --test cli_checkpoint`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

/// The seed of a test: `default`, or `TIDEMARK_TEST_SEED` when set.
fn seed(default: u64) -> u64 {
    std::env::var("TIDEMARK_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Child processes that are killed when the test ends, however it ends.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cmd` to its end, at most `limit`, and returns its exit status and
/// standard error.
fn run(cmd: &mut Command, limit: Duration) -> (ExitStatus, String) {
    let mut children = Children::default();
    children.0.push(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tidemark starts"),
    );
    let child = &mut children.0[0];
    // Read stderr on a thread so a chatty child cannot block on a full pipe.
    let mut pipe = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, reader.join().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}: {cmd:?}\nstderr:\n{}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` to its end and checks that it succeeded; returns its stderr.
fn run_ok(cmd: &mut Command) -> String {
    let (status, stderr) = run(cmd, Duration::from_secs(300));
    assert!(status.success(), "{cmd:?} failed ({status}):\n{stderr}");
    assert_no_panic(&stderr, "");
    stderr
}

fn assert_no_panic(stderr: &str, context: &str) {
    for bad in ["panicked", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "a panic:\n{stderr}\n{context}");
    }
}

/// Writes a generated workload (`tidemark gen ARGS`) into `dir/in`.
fn generate(dir: &Path, args: &[&str]) -> PathBuf {
    let out = dir.join("in");
    let (status, stderr) = run(
        bin().arg("gen").args(args).arg("--out").arg(&out),
        Duration::from_secs(120),
    );
    assert!(status.success(), "tidemark gen failed: {stderr}");
    out
}

/// The file of partition `p` as `tidemark gen` names it.
fn part(input: &Path, p: usize) -> PathBuf {
    input.join(format!("part-{p:05}.jsonl"))
}

/// Lines no decoder accepts, in turn.
const BAD_LINES: [&str; 4] = [
    "garbage",
    "{\"key\":\"x\"}",
    "{\"key\":\"k1\",\"ts\":\"soon\",\"value\":1}",
    "{not json",
];

/// Inserts a bad line before each line index of `before` (indices of the
/// original file, ascending) and `at_end` bad lines at its end; returns how
/// many it added.
fn add_bad_lines(file: &Path, before: &[usize], at_end: usize) -> usize {
    let text = fs::read_to_string(file).unwrap();
    let mut out = String::with_capacity(text.len() + 256);
    let mut next = before.iter().peekable();
    let mut added = 0;
    for (i, line) in text.lines().enumerate() {
        while next.peek() == Some(&&i) {
            out.push_str(BAD_LINES[added % BAD_LINES.len()]);
            out.push('\n');
            added += 1;
            next.next();
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(next.peek().is_none(), "{file:?} is shorter than {before:?}");
    for _ in 0..at_end {
        out.push_str(BAD_LINES[added % BAD_LINES.len()]);
        out.push('\n');
        added += 1;
    }
    fs::write(file, out).unwrap();
    added
}

/// The three output files of a run, in one directory.
struct Outs {
    dir: PathBuf,
}

impl Outs {
    fn new(dir: PathBuf) -> Outs {
        fs::create_dir_all(&dir).unwrap();
        Outs { dir }
    }

    fn results(&self) -> PathBuf {
        self.dir.join("results.jsonl")
    }

    fn files(&self) -> [(&'static str, PathBuf); 3] {
        [
            ("results", self.results()),
            ("late", self.dir.join("late.jsonl")),
            ("dead letters", self.dir.join("dead.jsonl")),
        ]
    }

    fn args(&self) -> Vec<OsString> {
        let [(_, r), (_, l), (_, d)] = self.files();
        vec![
            "--output".into(),
            r.into(),
            "--late".into(),
            l.into(),
            "--dead-letter".into(),
            d.into(),
        ]
    }

    /// The bytes of the three files (empty for a missing one).
    fn read(&self) -> [Vec<u8>; 3] {
        self.files().map(|(_, p)| fs::read(p).unwrap_or_default())
    }

    /// Copies the three files of `other` here.
    fn copy_from(&self, other: &Outs) {
        for ((_, from), (_, to)) in other.files().iter().zip(self.files().iter()) {
            fs::copy(from, to).unwrap();
        }
    }
}

/// Where two byte strings first differ, for a readable failure.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let line = want[..at.min(want.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1;
    let show = |b: &[u8]| {
        let from = at.saturating_sub(80).min(b.len());
        let to = (at + 80).min(b.len());
        String::from_utf8_lossy(&b[from..to]).into_owned()
    };
    format!(
        "{} bytes, expected {}; first difference at byte {at} (line {line}):\n  got  ...{:?}\n  want ...{:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    )
}

/// Checks that the outputs in `got` are the bytes of those in `want`.
fn assert_same_outputs(got: &Outs, want: &Outs, context: &str) {
    for ((what, g), (_, w)) in got.files().iter().zip(want.files().iter()) {
        let g = fs::read(g).unwrap_or_default();
        let w = fs::read(w).unwrap_or_default();
        assert!(
            g == w,
            "{what} differ from the reference: {}\n{context}",
            first_difference(&g, &w)
        );
    }
}

/// A `tidemark run` over `input` with the job flags `job`, writing to
/// `outs`, with `extra` flags.
fn job_cmd(input: &Path, job: &[&str], outs: &Outs, extra: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.arg("run")
        .arg("--input")
        .arg(input)
        .args(job)
        .args(outs.args())
        .args(extra);
    cmd
}

/// What `tidemark inspect --json DIR` says of each checkpoint.
fn inspect(dir: &Path) -> Vec<Json> {
    let out = bin()
        .arg("inspect")
        .arg("--json")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tidemark inspect --json {dir:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The newest valid checkpoint of `dir`: (id, frontier, committed results
/// bytes).
fn newest_valid(dir: &Path) -> Option<(u64, i64, u64)> {
    if !dir.exists() {
        return None;
    }
    inspect(dir)
        .iter()
        .filter(|c| c["valid"] == true)
        .map(|c| {
            let m = &c["manifest"];
            (
                c["id"].as_u64().unwrap(),
                m["frontier"].as_i64().unwrap(),
                m["outputs"]["results"]["len"].as_u64().unwrap_or(0),
            )
        })
        .max()
}

/// The `ckpt-*` directories of `dir`, by id.
fn checkpoint_dirs(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_prefix("ckpt-")?.parse().ok()?;
            e.file_type().unwrap().is_dir().then(|| (id, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Every file under `dir` with its bytes, to check a directory is untouched.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = fs::read(&p).unwrap();
                all.push((p, bytes));
            }
        }
    }
    all.sort();
    all
}

/// The number of lines of a file (0 if missing).
fn line_count(path: &Path) -> usize {
    fs::read(path)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The last run's kill moments and what each attempt saw, for failures.
#[derive(Default)]
struct Log(String);

impl Log {
    fn add(&mut self, line: impl AsRef<str>) {
        self.0.push_str(line.as_ref());
        self.0.push('\n');
    }
}

/// The first line of `stderr` containing `needle`, if any.
fn line_with<'a>(stderr: &'a str, needle: &str) -> Option<&'a str> {
    stderr.lines().find(|l| l.contains(needle))
}

/// How the kills of [`kill_and_resume`] are spread over a job.
struct KillPlan {
    seed: u64,
    kills: usize,
    /// How long the checkpointed run takes uninterrupted.
    expected: Duration,
    /// The first event time of the input and its span, in ms: how far the
    /// job is is read from its newest checkpoint's frontier.
    start_ms: i64,
    span_ms: i64,
    /// The share of `expected` a restart needs before it gets anywhere.
    overhead: f64,
}

impl KillPlan {
    /// The sleep before kill `i` when the newest checkpoint covers `done`
    /// of the job: every seventh very short (before or while the run opens
    /// its outputs), the others a random share of what is left.
    fn sleep(&self, rng: &mut Rng, i: usize, done: f64) -> Duration {
        if i.is_multiple_of(7) {
            return Duration::from_millis(rng.below(15));
        }
        let left = self.expected.mul_f64(1.0 - done);
        self.expected.mul_f64(self.overhead)
            + left.mul_f64(1.75 * rng.unit() / (self.kills - i) as f64)
    }

    /// The share of the job the checkpoint at `frontier` covers.
    fn progress(&self, frontier: i64) -> f64 {
        ((frontier.saturating_sub(self.start_ms)) as f64 / self.span_ms as f64).clamp(0.0, 1.0)
    }
}

/// Kills beyond the planned ones, when none of those came after the middle
/// of the job.
const EXTRA_KILLS: usize = 8;

/// What a series of kills and restarts saw.
struct KillReport {
    log: Log,
    /// Kills that hit a running process.
    live: usize,
    /// Restarts that resumed from a checkpoint.
    resumed: usize,
    /// Kills after which the results file held bytes the newest checkpoint
    /// had not committed (so the resume had to cut them off).
    dirty: usize,
    /// The furthest share of the job a kill came after.
    reached: f64,
}

/// Starts `command(i)` for attempt `i` and SIGKILLs it after a random
/// sleep, `plan.kills` times (and up to [`EXTRA_KILLS`] more while none
/// came after the middle of the job), then runs `command(i)` for the next
/// `i` to its end.
/// The sleeps are seeded random durations spread over what is left of the
/// job (read from its newest checkpoint), so the kills fall all over it
/// whatever the machine's speed; every seventh is very short (before or
/// while the run opens its outputs). `ckpt` is the checkpoint directory
/// and `results` the results file.
fn kill_and_resume(
    tmp: &Path,
    plan: &KillPlan,
    mut command: impl FnMut(usize) -> Command,
    ckpt: &Path,
    results: &Path,
    mut log: Log,
) -> KillReport {
    let mut rng = Rng(plan.seed);
    let (mut live, mut resumed, mut dirty, mut reached) = (0, 0, 0, 0.0f64);
    let note = |log: &mut Log, stderr: &str| {
        let mut notes = String::new();
        for needle in [
            "skipped:",
            "resuming from checkpoint",
            "marks this job complete",
        ] {
            for l in stderr.lines().filter(|l| l.contains(needle)) {
                let _ = write!(notes, " [{}]", l.trim());
            }
        }
        log.add(format!("    stderr:{notes}"));
    };
    let mut done = 0.0;
    // The planned kills, then (rarely: a machine so busy, or a disk so slow
    // to sync, that the restarts got nowhere) a few more, each given half
    // the job's time, until one comes after the middle of the job.
    let mut i = 0;
    while i < plan.kills || (reached < 0.5 && i < plan.kills + EXTRA_KILLS) {
        let sleep = if i < plan.kills {
            plan.sleep(&mut rng, i, done)
        } else {
            plan.expected.mul_f64(plan.overhead + 0.5)
        };
        let err_path = tmp.join(format!("attempt-{i}.stderr"));
        let mut cmd = command(i);
        let mut children = Children::default();
        children.0.push(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&err_path).unwrap())
                .spawn()
                .expect("tidemark starts"),
        );
        let child = &mut children.0[0];
        std::thread::sleep(sleep);
        let running = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let status = child.wait().unwrap();
        let stderr = fs::read_to_string(&err_path).unwrap();
        if running {
            live += 1;
        } else {
            // It ended by itself before the kill: it must have succeeded.
            assert!(
                status.success(),
                "attempt {i} failed by itself ({status}):\n{stderr}\n{}",
                log.0
            );
        }
        assert_no_panic(&stderr, &log.0);
        if stderr.contains("resuming from checkpoint") {
            resumed += 1;
        }
        let newest = newest_valid(ckpt);
        done = newest.map_or(0.0, |(_, frontier, _)| plan.progress(frontier));
        if running {
            reached = reached.max(done);
        }
        let file_len = fs::metadata(results).map(|m| m.len()).unwrap_or(0);
        let uncommitted = file_len > newest.map_or(0, |(_, _, len)| len);
        dirty += usize::from(running && uncommitted);
        log.add(format!(
            "attempt {i}: killed after {} ms ({}); newest valid checkpoint {newest:?} (id, frontier, results bytes), {:.0}% of the job; results file {file_len} bytes{}",
            sleep.as_millis(),
            if running { "was running" } else { "had already ended" },
            done * 100.0,
            if uncommitted { ", uncommitted bytes" } else { "" },
        ));
        note(&mut log, &stderr);
        i += 1;
    }
    let (status, stderr) = run(&mut command(i), Duration::from_secs(300));
    log.add(format!("final run: {status}"));
    note(&mut log, &stderr);
    assert!(
        status.success(),
        "the final run failed:\n{stderr}\n{}",
        log.0
    );
    assert_no_panic(&stderr, &log.0);
    if stderr.contains("resuming from checkpoint") {
        resumed += 1;
    }
    KillReport {
        log,
        live,
        resumed,
        dirty,
        reached,
    }
}

/// A workload of `events` events over four partitions with stragglers
/// later than any delay below 3 s, and bad lines in partitions 1 and 3
/// (one at the very start of partition 3); returns the input and how many
/// bad lines it holds.
fn late_workload(
    dir: &Path,
    events: usize,
    keys: &str,
    rate: &str,
    seed: &str,
) -> (PathBuf, usize) {
    let input = generate(
        dir,
        &[
            "--events",
            &events.to_string(),
            "--partitions",
            "4",
            "--keys",
            keys,
            "--rate",
            rate,
            "--disorder",
            "50ms",
            "--late-frac",
            "0.02",
            "--late-extra",
            "3s",
            "--seed",
            seed,
        ],
    );
    let q = events / 16;
    let bad = add_bad_lines(&part(&input, 1), &[q / 3, q, 2 * q, 3 * q], 2)
        + add_bad_lines(&part(&input, 3), &[0, q + 7], 0);
    (input, bad)
}

/// Runs `job` over `input` without checkpoints into `dir` and checks that
/// the workload has results, late records and one dead letter per bad line.
fn reference_run(input: &Path, job: &[&str], dir: PathBuf, bad: usize) -> Outs {
    let outs = Outs::new(dir);
    run_ok(&mut job_cmd(input, job, &outs, &["--quiet"]));
    let [_, (_, late), (_, dead)] = outs.files();
    assert!(line_count(&outs.results()) > 100, "too few results");
    assert!(line_count(&late) > 0, "the workload has no late records");
    assert_eq!(line_count(&dead), bad, "one dead letter per bad line");
    outs
}

const SESSION_JOB: [&str; 8] = [
    "--window",
    "session:1s",
    "--delay",
    "100ms",
    "--lateness",
    "1s",
    "--agg",
    "count,sum,max",
];

/// The first event time `tidemark gen` writes (its default `--start`).
const GEN_START_MS: i64 = 1_700_000_000_000;

/// Kills a checkpointed run of `job` over `input` (`events` events at
/// `rate` per ms, so `events / rate` ms of event time) `kills` times and
/// resumes it; `workers(i)` is the worker count of attempt `i`. Checks
/// that the outputs are those of `reference` (a run without checkpoints)
/// and returns what the kills saw.
#[allow(clippy::too_many_arguments)]
fn kill_test(
    tmp: &Path,
    seed: u64,
    input: &Path,
    job: &[&str],
    (events, rate): (i64, i64),
    interval: &str,
    kills: usize,
    workers: impl Fn(usize) -> &'static str,
    reference: &Outs,
) -> KillReport {
    let ckpt_cmd = |outs: &Outs, ckpt: &Path, i: usize| {
        let mut cmd = job_cmd(input, job, outs, &["--quiet"]);
        cmd.args(["--workers", workers(i)])
            .arg("--checkpoint-dir")
            .arg(ckpt)
            .args(["--checkpoint-every", interval]);
        cmd
    };
    // Uninterrupted with checkpoints: the same outputs, and how long the
    // job takes on this machine now.
    let whole = Outs::new(tmp.join("uninterrupted"));
    let started = Instant::now();
    let stderr = run_ok(&mut ckpt_cmd(&whole, &tmp.join("uninterrupted-ckpt"), 0));
    let expected = started.elapsed();
    assert_same_outputs(
        &whole,
        reference,
        &format!("uninterrupted with checkpoints:\n{stderr}"),
    );
    let taken = checkpoint_dirs(&tmp.join("uninterrupted-ckpt"))
        .last()
        .unwrap()
        .0;
    assert!(taken >= 20, "only {taken} checkpoints in a run");

    let outs = Outs::new(tmp.join("out"));
    let ckpt = tmp.join("ckpt");
    let plan = KillPlan {
        seed,
        kills,
        expected,
        start_ms: GEN_START_MS,
        span_ms: events / rate,
        overhead: 0.05,
    };
    let mut log = Log::default();
    log.add(format!(
        "seed {seed}; an uninterrupted run with checkpoints took {} ms and wrote {taken}; attempt i runs with workers(i): {:?}",
        expected.as_millis(),
        (0..=kills).map(&workers).collect::<Vec<_>>(),
    ));
    let report = kill_and_resume(
        tmp,
        &plan,
        |i| ckpt_cmd(&outs, &ckpt, i),
        &ckpt,
        &outs.results(),
        log,
    );
    let log = &report.log.0;
    assert_same_outputs(&outs, reference, log);
    assert!(
        report.reached >= 0.5,
        "no kill came after the middle of the job:\n{log}"
    );
    eprintln!("{log}");
    report
}

#[test]
fn kill_9_at_20_random_moments_gives_the_uninterrupted_output() {
    let seed = seed(0x00C0_FFEE);
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    // 100 s of event time; a run lasts a few seconds in a debug build.
    let (input, bad) = late_workload(tmp, 300_000, "1000", "3", "11");
    let job = [
        "--window",
        "session:1s",
        "--delay",
        "100ms",
        "--lateness",
        "1s",
        "--agg",
        "count,sum,min,max,mean",
    ];
    let reference = reference_run(&input, &job, tmp.join("ref"), bad);
    // A checkpoint every 4 s of event time: about 25 over the run, with
    // more results between two of them than an output buffers (64 KiB),
    // so that a kill often leaves bytes no checkpoint committed.
    let report = kill_test(
        tmp,
        seed,
        &input,
        &job,
        (300_000, 3),
        "4s",
        20,
        |_| "1",
        &reference,
    );
    let log = &report.log.0;
    assert!(
        report.live >= 15,
        "too few kills hit a running process:\n{log}"
    );
    assert!(report.resumed >= 10, "too few restarts resumed:\n{log}");
    assert!(
        report.dirty >= 1,
        "no kill left uncommitted bytes to cut off:\n{log}"
    );
}

#[test]
fn kill_9_with_sliding_windows_and_changing_workers_gives_the_uninterrupted_output() {
    let seed = seed(0x51_1D_E5);
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    // 100 s of event time, 50 keys: about 10 000 sliding windows.
    let (input, bad) = late_workload(tmp, 200_000, "50", "2", "12");
    let job = [
        "--window",
        "sliding:2s/500ms",
        "--delay",
        "100ms",
        "--lateness",
        "1s",
        "--agg",
        "count,sum,min,mean",
    ];
    let reference = reference_run(&input, &job, tmp.join("ref"), bad);
    let report = kill_test(
        tmp,
        seed,
        &input,
        &job,
        (200_000, 2),
        "2s",
        10,
        |i| if i % 2 == 0 { "3" } else { "1" },
        &reference,
    );
    let log = &report.log.0;
    assert!(
        report.live >= 7,
        "too few kills hit a running process:\n{log}"
    );
    assert!(report.resumed >= 5, "too few restarts resumed:\n{log}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The checkpoint id in "resuming from checkpoint N" of `stderr`.
fn resumed_from(stderr: &str) -> Option<u64> {
    let line = line_with(stderr, "resuming from checkpoint ")?;
    let rest = &line[line.find("resuming from checkpoint ")? + 25..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Two processes of a cluster on loopback, started together and killed
/// with the test if it fails.
struct Cluster {
    children: Children,
    /// Standard error of process 0 and of process 1.
    stderr: [PathBuf; 2],
}

impl Cluster {
    /// Starts process 1, then 0, of `command(process)`, their stderr in
    /// `dir/NAME-process-P.stderr`.
    fn start(dir: &Path, name: &str, command: impl Fn(usize) -> Command) -> Cluster {
        let stderr = [0, 1].map(|p| dir.join(format!("{name}-process-{p}.stderr")));
        let mut children = Children::default();
        for p in [1, 0] {
            children.0.push(
                command(p)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(File::create(&stderr[p]).unwrap())
                    .spawn()
                    .expect("tidemark starts"),
            );
        }
        Cluster { children, stderr }
    }

    /// Whether both processes still run.
    fn both_running(&mut self) -> bool {
        self.children
            .0
            .iter_mut()
            .all(|c| c.try_wait().unwrap().is_none())
    }

    /// SIGKILLs both (at once, process 1 first).
    fn kill(&mut self) {
        for c in &mut self.children.0 {
            let _ = c.kill();
        }
    }

    /// Waits for both to end (at most `limit`): the exit status and stderr
    /// of process 0, then of process 1.
    fn wait(&mut self, limit: Duration, log: &Log) -> [(ExitStatus, String); 2] {
        let deadline = Instant::now() + limit;
        let mut ended: Vec<Option<ExitStatus>> = vec![None, None];
        while ended.iter().any(Option::is_none) {
            for (c, e) in self.children.0.iter_mut().zip(&mut ended) {
                if e.is_none() {
                    *e = c.try_wait().unwrap();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "the cluster did not end within {limit:?}: process 0 {:?}, process 1 {:?}\n  process 0: {:?}\n  process 1: {:?}\n{}",
                    ended[1],
                    ended[0],
                    fs::read_to_string(&self.stderr[0]).unwrap(),
                    fs::read_to_string(&self.stderr[1]).unwrap(),
                    log.0
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // children.0 holds process 1 then process 0.
        [ended[1].unwrap(), ended[0].unwrap()]
            .into_iter()
            .zip(&self.stderr)
            .map(|(s, e)| (s, fs::read_to_string(e).unwrap()))
            .collect::<Vec<_>>()
            .try_into()
            .unwrap()
    }
}

#[test]
fn a_cluster_killed_at_random_moments_resumes_to_the_one_process_output() {
    let seed = seed(0xC1_05_7E);
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (events, rate) = (150_000, 2);
    let (input, bad) = late_workload(tmp, events as usize, "500", "2", "13");
    let reference = reference_run(&input, &SESSION_JOB, tmp.join("ref"), bad);

    let hosts = tmp.join("hosts");
    let addrs: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    fs::write(&hosts, addrs.join("\n") + "\n").unwrap();
    // Both processes run the same command on a shared directory: the same
    // outputs (process 0 writes them) and checkpoint directory.
    let command = |outs: &Outs, ckpt: &Path, process: usize| {
        let mut cmd = job_cmd(&input, &SESSION_JOB, outs, &["--quiet"]);
        cmd.arg("--checkpoint-dir")
            .arg(ckpt)
            .args(["--checkpoint-every", "2s"])
            .args(["--processes", "2", "--process", &process.to_string()])
            .arg("--hostfile")
            .arg(&hosts)
            .args(["--connect-timeout", "30s"]);
        cmd
    };
    let mut log = Log::default();
    log.add(format!("seed {seed}; hosts {addrs:?}"));

    // Uninterrupted: the one-process outputs, and how long it takes.
    let whole = Outs::new(tmp.join("uninterrupted"));
    let whole_ckpt = tmp.join("uninterrupted-ckpt");
    let started = Instant::now();
    let [(s0, e0), (s1, e1)] =
        Cluster::start(tmp, "uninterrupted", |p| command(&whole, &whole_ckpt, p))
            .wait(Duration::from_secs(180), &log);
    let expected = started.elapsed();
    assert!(s0.success() && s1.success(), "{e0}\n{e1}");
    assert_same_outputs(&whole, &reference, "an uninterrupted cluster run");
    log.add(format!(
        "an uninterrupted cluster run took {} ms",
        expected.as_millis()
    ));

    let outs = Outs::new(tmp.join("out"));
    let ckpt = tmp.join("ckpt");
    let plan = KillPlan {
        seed,
        kills: 5,
        expected,
        start_ms: GEN_START_MS,
        span_ms: events / rate,
        overhead: 0.1,
    };
    let (mut resumed, mut live, mut done) = (0, 0, 0.0);
    for round in 0..=plan.kills {
        let mut cluster =
            Cluster::start(tmp, &format!("round-{round}"), |p| command(&outs, &ckpt, p));
        if round < plan.kills {
            let sleep = plan.sleep(&mut rng, round, done);
            std::thread::sleep(sleep);
            let running = cluster.both_running();
            live += usize::from(running);
            cluster.kill();
            log.add(format!(
                "round {round}: both killed after {} ms{}",
                sleep.as_millis(),
                if running { "" } else { " (one had ended)" }
            ));
        } else {
            log.add(format!("round {round}: run to the end"));
        }
        let [(s0, e0), (s1, e1)] = cluster.wait(Duration::from_secs(180), &log);
        let newest = newest_valid(&ckpt);
        done = newest.map_or(0.0, |(_, frontier, _)| plan.progress(frontier));
        log.add(format!(
            "    newest valid checkpoint {newest:?} (id, frontier, results bytes), {:.0}% of the job\n    process 0 ({s0}): {:?}\n    process 1 ({s1}): {:?}",
            done * 100.0,
            e0.trim(),
            e1.trim()
        ));
        assert_no_panic(&e0, &log.0);
        assert_no_panic(&e1, &log.0);
        if round == plan.kills {
            assert!(s0.success() && s1.success(), "{}", log.0);
        } else {
            for (s, e) in [(s0, &e0), (s1, &e1)] {
                // Killed, ended by itself, or saw its peer killed first.
                assert!(
                    s.code().is_none() || s.success() || e.contains("lost cluster process"),
                    "{}",
                    log.0
                );
            }
        }
        let (r0, r1) = (resumed_from(&e0), resumed_from(&e1));
        if r0.is_some() && r1.is_some() {
            assert_eq!(
                r0, r1,
                "the processes resumed from different checkpoints:\n{}",
                log.0
            );
        }
        resumed += usize::from(r0.is_some());
    }
    assert_same_outputs(&outs, &reference, &log.0);
    assert!(live >= 3, "too few kills hit a running cluster:\n{}", log.0);
    assert!(
        resumed >= 2,
        "too few restarts resumed from a checkpoint:\n{}",
        log.0
    );
    eprintln!("{}", log.0);
}

/// A job of 100 000 events over four partitions (50 s of event time)
/// with late data and bad lines, and its outputs without checkpoints.
fn mid_workload(dir: &Path) -> (PathBuf, Outs) {
    let (input, bad) = late_workload(dir, 100_000, "300", "2", "14");
    let reference = reference_run(&input, &SESSION_JOB, dir.join("ref"), bad);
    (input, reference)
}

/// Runs the session job over `input` with checkpoints in `ckpt` to its
/// end, checks its outputs against `reference`, deletes the checkpoints
/// from `keep_below` on (by default the last one, which marks the job
/// complete), and returns the id of the newest one left. The outputs are
/// then longer than that checkpoint committed, as after a crash.
fn checkpointed_then_cut(
    input: &Path,
    outs: &Outs,
    ckpt: &Path,
    extra: &[&str],
    reference: &Outs,
    keep_below: Option<u64>,
) -> u64 {
    let mut cmd = job_cmd(input, &SESSION_JOB, outs, &["--quiet"]);
    cmd.arg("--checkpoint-dir")
        .arg(ckpt)
        .args(["--checkpoint-every", "2s"])
        .args(extra);
    run_ok(&mut cmd);
    assert_same_outputs(outs, reference, "a run with checkpoints");
    let dirs = checkpoint_dirs(ckpt);
    let (last, _) = *dirs.last().expect("checkpoints were taken");
    let (newest, frontier, _) = newest_valid(ckpt).unwrap();
    assert_eq!(newest, last);
    assert_eq!(
        frontier,
        i64::MAX,
        "the last checkpoint marks the job complete"
    );
    let from = keep_below.unwrap_or(last);
    for (id, dir) in &dirs {
        if *id >= from {
            fs::remove_dir_all(dir).unwrap();
        }
    }
    let (left, _) = *checkpoint_dirs(ckpt).last().expect("checkpoints are left");
    left
}

#[test]
fn corrupt_newest_checkpoint_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (input, reference) = mid_workload(tmp);
    let outs = Outs::new(tmp.join("full"));
    let ckpt = tmp.join("ckpt");
    let newest = checkpointed_then_cut(
        &input,
        &outs,
        &ckpt,
        &["--keep-checkpoints", "5"],
        &reference,
        None,
    );
    assert_eq!(checkpoint_dirs(&ckpt).len(), 4, "5 kept, the last deleted");

    type Damage = fn(&Path);
    let cases: [(&str, Damage, &str); 3] = [
        (
            "truncated state.bin",
            |d| {
                let f = d.join("state.bin");
                let len = fs::metadata(&f).unwrap().len();
                assert!(len > 10, "an intermediate checkpoint holds state");
                File::options()
                    .write(true)
                    .open(&f)
                    .unwrap()
                    .set_len(len / 2)
                    .unwrap();
            },
            "truncated file \"state.bin\"",
        ),
        (
            "a flipped byte in state.bin",
            |d| {
                let f = d.join("state.bin");
                let mut bytes = fs::read(&f).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x20;
                fs::write(&f, bytes).unwrap();
            },
            "checksum mismatch in \"state.bin\"",
        ),
        (
            "no MANIFEST",
            |d| fs::remove_file(d.join("MANIFEST")).unwrap(),
            "missing manifest",
        ),
    ];
    for (i, (what, damage, reason)) in cases.into_iter().enumerate() {
        // Each case on its own copy of the checkpoints and outputs.
        let case_ckpt = tmp.join(format!("ckpt-case-{i}"));
        fs::create_dir_all(&case_ckpt).unwrap();
        for (_, dir) in checkpoint_dirs(&ckpt) {
            let to = case_ckpt.join(dir.file_name().unwrap());
            fs::create_dir_all(&to).unwrap();
            for f in fs::read_dir(&dir).unwrap() {
                let f = f.unwrap();
                fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        }
        let case_outs = Outs::new(tmp.join(format!("out-case-{i}")));
        case_outs.copy_from(&outs);
        let victim = case_ckpt.join(format!("ckpt-{newest:010}"));
        damage(&victim);
        // tidemark inspect shows the damage too.
        let listed = inspect(&case_ckpt);
        let entry = listed
            .iter()
            .find(|c| c["id"] == newest)
            .unwrap_or_else(|| panic!("{what}: inspect does not list checkpoint {newest}"));
        assert_eq!(entry["valid"], false, "{what}: {entry}");
        assert!(
            entry["problem"]
                .as_str()
                .is_some_and(|p| p.contains(reason)),
            "{what}: {entry}"
        );
        let mut cmd = job_cmd(&input, &SESSION_JOB, &case_outs, &["--quiet"]);
        cmd.arg("--checkpoint-dir").arg(&case_ckpt).args([
            "--checkpoint-every",
            "2s",
            "--keep-checkpoints",
            "5",
        ]);
        let stderr = run_ok(&mut cmd);
        let warning = format!("checkpoint {newest} ({:?}) skipped: {reason}", victim);
        assert!(
            stderr.contains(&warning),
            "{what}: no warning {warning:?}:\n{stderr}"
        );
        assert!(stderr.contains("trying the one before"), "{what}: {stderr}");
        assert_eq!(
            resumed_from(&stderr),
            Some(newest - 1),
            "{what}: not resumed from the one before:\n{stderr}"
        );
        assert_same_outputs(&case_outs, &reference, &format!("{what}:\n{stderr}"));
    }
}

#[test]
fn a_changed_window_refuses_to_resume_and_rebuild_recomputes() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (input, reference) = mid_workload(tmp);
    let outs = Outs::new(tmp.join("out"));
    let ckpt = tmp.join("ckpt");
    let mut changed_job = SESSION_JOB;
    changed_job[1] = "session:2s";
    let changed = |extra: &[&str]| {
        let mut cmd = job_cmd(&input, &changed_job, &outs, &["--quiet"]);
        cmd.arg("--checkpoint-dir")
            .arg(&ckpt)
            .args(["--checkpoint-every", "2s"])
            .args(extra);
        cmd
    };
    let refuses = |state: &str| {
        let before_outs = outs.read();
        let before_ckpt = snapshot(&ckpt);
        let (status, stderr) = run(&mut changed(&[]), Duration::from_secs(120));
        assert_eq!(status.code(), Some(2), "{state}: {stderr}");
        assert!(
            stderr.contains("window was \"session gap 1000ms\", is now \"session gap 2000ms\""),
            "{state}: the message does not name the window with both values:\n{stderr}"
        );
        assert!(stderr.contains("--rebuild"), "{state}: {stderr}");
        assert_no_panic(&stderr, state);
        assert!(
            outs.read() == before_outs,
            "{state}: the outputs were touched"
        );
        assert!(
            snapshot(&ckpt) == before_ckpt,
            "{state}: the checkpoints were touched"
        );
    };
    // A completed job, and one whose outputs hold uncommitted bytes after
    // its newest checkpoint (which a resume would cut off).
    let mut cmd = job_cmd(&input, &SESSION_JOB, &outs, &["--quiet"]);
    cmd.arg("--checkpoint-dir")
        .arg(&ckpt)
        .args(["--checkpoint-every", "2s"]);
    run_ok(&mut cmd);
    assert_same_outputs(&outs, &reference, "a run with checkpoints");
    refuses("completed");
    let (last, dir) = checkpoint_dirs(&ckpt).pop().unwrap();
    fs::remove_dir_all(dir).unwrap();
    assert!(newest_valid(&ckpt).unwrap().0 < last);
    refuses("stopped midway");

    // --rebuild gives what a fresh run of the new job gives.
    let stderr = run_ok(&mut changed(&["--rebuild"]));
    assert!(!stderr.contains("resuming"), "{stderr}");
    let fresh = Outs::new(tmp.join("fresh"));
    run_ok(&mut job_cmd(&input, &changed_job, &fresh, &["--quiet"]));
    assert_same_outputs(&outs, &fresh, "after --rebuild");
    assert!(outs.read() != reference.read(), "the window change shows");
    // The rebuilt checkpoints are the new job's: running it again does
    // nothing and changes nothing.
    let stderr = run_ok(&mut changed(&[]));
    assert!(stderr.contains("marks this job complete"), "{stderr}");
    assert_same_outputs(&outs, &fresh, "a rerun of the rebuilt job");

    // An output cut shorter than its checkpoint committed is refused too.
    let (last, dir) = checkpoint_dirs(&ckpt).pop().unwrap();
    fs::remove_dir_all(dir).unwrap();
    assert!(newest_valid(&ckpt).unwrap().0 < last);
    File::options()
        .write(true)
        .open(outs.results())
        .unwrap()
        .set_len(100)
        .unwrap();
    let before = outs.read();
    let (status, stderr) = run(&mut changed(&[]), Duration::from_secs(120));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot resume the results output") && stderr.contains("--rebuild"),
        "{stderr}"
    );
    assert!(
        outs.read() == before,
        "a refused resume touched the outputs"
    );
}

#[test]
fn a_changed_worker_count_resumes_to_the_same_output() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (input, reference) = mid_workload(tmp);
    let outs = Outs::new(tmp.join("out"));
    let ckpt = tmp.join("ckpt");
    // Keep every checkpoint, then drop those of the second half: the
    // newest left is in the middle of the job, and the outputs hold all
    // that came after it.
    run_ok(
        job_cmd(
            &input,
            &SESSION_JOB,
            &Outs::new(tmp.join("probe")),
            &["--quiet"],
        )
        .arg("--checkpoint-dir")
        .arg(tmp.join("probe-ckpt"))
        .args(["--checkpoint-every", "2s", "--keep-checkpoints", "1000"]),
    );
    let count = checkpoint_dirs(&tmp.join("probe-ckpt")).len() as u64;
    assert!(count >= 10, "only {count} checkpoints");
    let middle = checkpointed_then_cut(
        &input,
        &outs,
        &ckpt,
        &["--workers", "1", "--keep-checkpoints", "1000"],
        &reference,
        Some(count / 2),
    );
    let committed = newest_valid(&ckpt).unwrap().2;
    assert!(committed < fs::metadata(outs.results()).unwrap().len());
    let mut cmd = job_cmd(&input, &SESSION_JOB, &outs, &["--quiet"]);
    cmd.arg("--checkpoint-dir")
        .arg(&ckpt)
        .args(["--checkpoint-every", "2s", "--keep-checkpoints", "1000"])
        .args(["--workers", "3", "--batch-size", "37"]);
    let stderr = run_ok(&mut cmd);
    assert_eq!(resumed_from(&stderr), Some(middle), "{stderr}");
    assert_same_outputs(
        &outs,
        &reference,
        &format!("resumed with 3 workers:\n{stderr}"),
    );
}

/// Per partition of `input` (its first `parts` files), the stream time
/// (largest event time so far) just before each offset: `st[p][o]` covers
/// the lines before offset `o`.
fn stream_times(input: &Path, parts: usize) -> Vec<Vec<Option<i64>>> {
    (0..parts)
        .map(|p| {
            let text = fs::read_to_string(part(input, p)).unwrap();
            let mut st = vec![None];
            let mut max: Option<i64> = None;
            for line in text.lines() {
                let ts = serde_json::from_str::<Json>(line)
                    .ok()
                    .and_then(|v| v["ts"].as_i64());
                if let Some(ts) = ts {
                    max = Some(max.map_or(ts, |m| m.max(ts)));
                }
                st.push(max);
            }
            st
        })
        .collect()
}

/// `ms` since the epoch as RFC 3339 text in UTC.
fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[test]
fn reprocessing_writes_a_suffix_of_the_full_output() {
    let seed = seed(0x5EED_0007);
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    // 40 s of event time over four partitions, bad lines in the middle.
    let input = generate(
        tmp,
        &[
            "--events",
            "40000",
            "--partitions",
            "4",
            "--keys",
            "40",
            "--rate",
            "1",
            "--disorder",
            "50ms",
            "--late-frac",
            "0.03",
            "--late-extra",
            "2s",
            "--seed",
            "15",
        ],
    );
    let bad = add_bad_lines(&part(&input, 0), &[1000, 4000, 7000], 1)
        + add_bad_lines(&part(&input, 2), &[2500, 6000], 0);
    let job = [
        "--window",
        "sliding:3s/1s",
        "--delay",
        "200ms",
        "--lateness",
        "1s",
    ];
    let full = reference_run(&input, &job, tmp.join("full"), bad);
    let full_bytes = full.read();
    // Checkpoints of a previous full run, many kept.
    let ckpt = tmp.join("ckpt");
    let with_ckpt = Outs::new(tmp.join("with-ckpt"));
    run_ok(
        job_cmd(&input, &job, &with_ckpt, &["--quiet"])
            .arg("--checkpoint-dir")
            .arg(&ckpt)
            .args(["--checkpoint-every", "2s", "--keep-checkpoints", "1000"]),
    );
    assert_same_outputs(&with_ckpt, &full, "the run with checkpoints");
    let ckpt_before = snapshot(&ckpt);

    let st = stream_times(&input, 4);
    let first = st.iter().filter_map(|s| s[1]).min().unwrap();
    let last = st.iter().filter_map(|s| *s.last().unwrap()).max().unwrap();
    let mut runs = 0;
    let mut from_checkpoint: Vec<String> = Vec::new();
    // Reprocesses with `from` (flag and value) for 1 and 3 workers, with
    // and without checkpoints; checks each gives the same suffix of the
    // full outputs and returns it.
    let mut reprocess = |from: &[&str], context: &str| -> [Vec<u8>; 3] {
        let mut got: Option<[Vec<u8>; 3]> = None;
        for workers in ["1", "3"] {
            for use_ckpt in [false, true] {
                runs += 1;
                let outs = Outs::new(tmp.join(format!("reprocess-{runs}")));
                let mut cmd = job_cmd(&input, &job, &outs, &["--workers", workers]);
                cmd.args(from);
                if use_ckpt {
                    cmd.arg("--checkpoint-dir").arg(&ckpt);
                }
                let what = format!(
                    "seed {seed}, {context}: {from:?} with {workers} worker(s){}",
                    if use_ckpt { " from a checkpoint" } else { "" }
                );
                let stderr = run_ok(&mut cmd);
                let bytes = outs.read();
                for ((name, _), (b, f)) in outs.files().iter().zip(bytes.iter().zip(&full_bytes)) {
                    assert!(
                        f.ends_with(b),
                        "{what}: the {name} are not a suffix of the full run's ({} of {} bytes)\n{stderr}",
                        b.len(),
                        f.len()
                    );
                }
                match &got {
                    None => got = Some(bytes),
                    Some(g) => {
                        for (i, (name, _)) in outs.files().iter().enumerate() {
                            assert!(
                                g[i] == bytes[i],
                                "{what}: the {name} differ from those of the first variant: {}",
                                first_difference(&bytes[i], &g[i])
                            );
                        }
                    }
                }
                if use_ckpt && stderr.contains("resuming from checkpoint") {
                    from_checkpoint.push(context.to_string());
                }
            }
        }
        assert!(
            snapshot(&ckpt) == ckpt_before,
            "{context}: a reprocessing run changed the checkpoint directory"
        );
        got.unwrap()
    };

    // From before the first record: everything.
    let all = reprocess(
        &["--from-time", &(first - 10_000).to_string()],
        "before the start",
    );
    assert!(
        all == full_bytes,
        "--from-time before the start is the full run"
    );

    // From the middle (as RFC 3339 text) and random times: shorter suffixes
    // the later the time.
    let middle = first + (last - first) / 2;
    let mut times = vec![middle];
    times.extend((0..3).map(|_| first + rng.below((last - first) as u64) as i64));
    times.sort();
    let mut previous: Option<[Vec<u8>; 3]> = None;
    for t in times {
        let text = if t == middle {
            rfc3339(t)
        } else {
            t.to_string()
        };
        let got = reprocess(&["--from-time", &text], &format!("from time {t}"));
        if t == middle {
            let (r, f) = (&got[0], &full_bytes[0]);
            assert!(
                !r.is_empty() && r.len() < f.len(),
                "from the middle ({text}): {} of {} bytes of results",
                r.len(),
                f.len()
            );
            for (i, what) in [(1, "late records"), (2, "dead letters")] {
                assert!(
                    !got[i].is_empty() && got[i].len() < full_bytes[i].len(),
                    "{what} from the middle ({text}): {} of {} bytes",
                    got[i].len(),
                    full_bytes[i].len()
                );
            }
        }
        if let Some(p) = &previous {
            for i in 0..3 {
                assert!(
                    p[i].ends_with(&got[i]),
                    "a later time, not a shorter suffix ({t})"
                );
            }
        }
        previous = Some(got);
    }

    // From random offsets: the suffix from the stream time they name, one
    // more than the largest stream time of a named partition before its
    // offset.
    for k in 0..3 {
        let mut named = Vec::new();
        let mut bound = i64::MIN;
        for (p, times) in st.iter().enumerate() {
            if k == 0 || rng.below(2) == 0 {
                let offset = 1 + rng.below(times.len() as u64 - 2) as usize;
                named.push(format!("{p}:{offset}"));
                bound = bound.max(times[offset].unwrap() + 1);
            }
        }
        if named.is_empty() {
            let offset = 1 + rng.below(st[1].len() as u64 - 2) as usize;
            named.push(format!("1:{offset}"));
            bound = st[1][offset].unwrap() + 1;
        }
        let offsets = named.join(",");
        let context = format!("offsets {offsets} (stream time {bound})");
        let by_offsets = reprocess(&["--from-offsets", &offsets], &context);
        let by_time = reprocess(&["--from-time", &bound.to_string()], &context);
        for i in 0..3 {
            assert!(
                by_offsets[i] == by_time[i],
                "seed {seed}, {context}: --from-offsets is not --from-time {bound}: {}",
                first_difference(&by_offsets[i], &by_time[i])
            );
        }
    }

    // The checkpoints were used (those at or before the time), not only
    // read: from the middle, a reprocessing run starts from one.
    let middle_context = format!("from time {middle}");
    assert!(
        from_checkpoint.contains(&middle_context),
        "no run {middle_context} started from a checkpoint; those that did: {from_checkpoint:?}"
    );

    // An offset past a partition's end.
    let len = st[2].len() - 1;
    let outs = Outs::new(tmp.join("past-end"));
    let (status, stderr) = run(
        &mut job_cmd(
            &input,
            &job,
            &outs,
            &["--from-offsets", &format!("0:10,2:{}", len + 1)],
        ),
        Duration::from_secs(60),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    let expected = format!(
        "error: the reprocessing offset 2:{} is past the end of partition 2 ({len} records)",
        len + 1
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!outs.results().exists(), "an output was opened");
}

/// The frontiers of the checkpoints `tidemark inspect --json DIR` lists,
/// each checked valid.
fn frontiers(dir: &Path) -> Vec<i64> {
    inspect(dir)
        .iter()
        .map(|c| {
            assert_eq!(c["valid"], true, "{c}");
            c["manifest"]["frontier"].as_i64().unwrap()
        })
        .collect()
}

#[test]
fn job_file_keys_set_the_checkpoint_dir_interval_and_count() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let job_dir = tmp.join("job");
    fs::create_dir_all(&job_dir).unwrap();
    let input = generate(
        &job_dir,
        &[
            "--events",
            "20000",
            "--partitions",
            "2",
            "--keys",
            "20",
            "--seed",
            "16",
        ],
    );
    let fresh = Outs::new(tmp.join("fresh"));
    run_ok(
        bin()
            .args(["run", "--quiet", "--window", "tumbling:1s"])
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(fresh.results()),
    );
    let job_file = job_dir.join("job.toml");
    // Runs the job file from `tmp` (not its directory) with `keys`.
    let run_job = |keys: &str, flags: &[&str]| {
        fs::write(
            &job_file,
            format!(
                "input = \"in\"\nwindow = \"tumbling:1s\"\noutput = \"out.jsonl\"\nbatch-size = 100\n{keys}"
            ),
        )
        .unwrap();
        let stderr = run_ok(
            bin()
                .current_dir(tmp)
                .arg("run")
                .arg("--job")
                .arg(&job_file)
                .args(flags),
        );
        let out = fs::read(job_dir.join("out.jsonl")).unwrap();
        assert!(
            out == fs::read(fresh.results()).unwrap(),
            "{keys}: not a fresh run's results"
        );
        stderr
    };
    let written = |stderr: &str| -> usize {
        let line = line_with(stderr, "checkpoints: ").unwrap_or_else(|| panic!("{stderr}"));
        let rest = &line[line.find("checkpoints: ").unwrap() + 13..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };

    // 500records: cuts just after the stream time of each partition's
    // record at an offset o with (o + 1) % 500 == 0.
    let stderr = run_job(
        "checkpoint-dir = \"ck\"\ncheckpoint-every = \"500records\"\nkeep-checkpoints = 3\n",
        &[],
    );
    let ck = job_dir.join("ck");
    assert!(
        ck.is_dir(),
        "the checkpoint dir is relative to the job file"
    );
    assert!(
        !tmp.join("ck").exists(),
        "the checkpoint dir is not relative to the cwd"
    );
    assert_eq!(checkpoint_dirs(&ck).len(), 3, "keep-checkpoints = 3");
    let n = written(&stderr);
    assert!(n > 3, "only {n} checkpoints written:\n{stderr}");
    let st = stream_times(&input, 2);
    let cuts: Vec<i64> = st
        .iter()
        .flat_map(|times| {
            (0..times.len() - 1)
                .filter(|o| (o + 1) % 500 == 0)
                .map(|o| times[o + 1].unwrap() + 1)
        })
        .collect();
    let f = frontiers(&ck);
    assert_eq!(f[0], i64::MAX, "the newest marks the job complete");
    for c in &f[1..] {
        assert!(
            cuts.contains(c),
            "checkpoint at {c} is not at a 500-record cut {cuts:?}"
        );
    }
    let text = bin().arg("inspect").arg(&ck).output().unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert_eq!(text.matches("checksums     hold").count(), 3, "{text}");
    for (id, dir) in checkpoint_dirs(&ck) {
        assert!(
            text.contains(&format!("checkpoint {id} at {}", dir.display())),
            "{text}"
        );
    }

    // An event-time interval: cuts at multiples of it; the flag overrides
    // the key.
    let keys = "checkpoint-dir = \"ck2\"\ncheckpoint-every = \"2s\"\nkeep-checkpoints = 4\n";
    // A new checkpoint directory does not replace the outputs another
    // directory's run wrote.
    fs::remove_file(job_dir.join("out.jsonl")).unwrap();
    run_job(keys, &[]);
    let ck2 = job_dir.join("ck2");
    assert_eq!(checkpoint_dirs(&ck2).len(), 4, "keep-checkpoints = 4");
    let f = frontiers(&ck2);
    assert_eq!(f[0], i64::MAX);
    for c in &f[1..] {
        assert_eq!(c % 2000, 0, "checkpoint at {c} is not at a multiple of 2 s");
    }
    run_job(keys, &["--rebuild", "--keep-checkpoints", "2"]);
    assert_eq!(
        checkpoint_dirs(&ck2).len(),
        2,
        "--keep-checkpoints 2 over the key"
    );
}

// The fingerprint a resume compares names the input by its resolved,
// absolute path: the same job file run as `--job /abs/job.toml` and then,
// from its directory, as `--job job.toml` resumes; so do `--input in`,
// `./in`, `in/` and an absolute path to the same directory.
#[test]
fn the_same_job_file_resumes_from_another_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let job_dir = tmp.join("job");
    fs::create_dir_all(&job_dir).unwrap();
    generate(
        &job_dir,
        &["--events", "20000", "--partitions", "2", "--seed", "17"],
    );
    let job_file = job_dir.join("job.toml");
    fs::write(
        &job_file,
        "input = \"in\"\nwindow = \"tumbling:1s\"\noutput = \"out.jsonl\"\ncheckpoint-dir = \"ck\"\ncheckpoint-every = \"2s\"\n",
    )
    .unwrap();
    run_ok(
        bin()
            .current_dir(tmp)
            .args(["run", "--quiet", "--job"])
            .arg(&job_file),
    );
    let full = fs::read(job_dir.join("out.jsonl")).unwrap();
    let ck = job_dir.join("ck");
    let (_, last) = checkpoint_dirs(&ck).pop().unwrap();
    fs::remove_dir_all(last).unwrap();
    let stderr = run_ok(
        bin()
            .current_dir(&job_dir)
            .args(["run", "--quiet", "--job", "job.toml"]),
    );
    assert!(stderr.contains("resuming from checkpoint"), "{stderr}");
    assert!(fs::read(job_dir.join("out.jsonl")).unwrap() == full);
}
