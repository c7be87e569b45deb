//! Nothing lost, nothing misreported, through the real binary: the ways an
//! operator relying on checkpoints, follow mode and the metrics could lose
//! data or be misled, each reproduced as it was found.
//!
//! - a second run on a checkpoint directory in use is refused before it
//!   touches the first run's outputs;
//! - a resumed `--follow --idle-after` run records the time jump of a
//!   partition released before its checkpoint, so a replay reproduces it;
//! - outputs that alias the input or each other (hard links, `--stats`,
//!   `--summary-json`) are refused;
//! - the live watermark (progress, `/metrics`, `Stats::snapshot`) is the
//!   stream time minus the delay;
//! - no client of the metrics endpoint can grow the job or blind the
//!   scrapes (raw sockets);
//! - on a full disk (a 20 MB tmpfs, where the test can mount one) the
//!   outputs are cut back to their last commit and the watermark reported
//!   is the one they are complete to.
//!
//! `TIDEMARK_BIN` runs the tests against another build of the binary (to
//! show that a test fails on a build from before its fix).
//!
//! Run with `cargo test --test cli_integrity`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    match std::env::var_os("TIDEMARK_BIN") {
        Some(path) => Command::new(path),
        None => Command::new(env!("CARGO_BIN_EXE_tidemark")),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn append(path: &Path, lines: &[String]) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn record(key: &str, ts: i64) -> String {
    format!("{{\"key\":\"{key}\",\"ts\":{ts},\"value\":1}}")
}

/// Waits until `ok` holds (or fails naming `what` after 60 s).
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn contains(path: &Path, needle: &str) -> bool {
    fs::read_to_string(path).is_ok_and(|t| t.contains(needle))
}

/// The id of the newest complete checkpoint of `dir`.
fn newest_checkpoint(dir: &Path) -> Option<u64> {
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().join("MANIFEST").exists())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("ckpt-")?.parse().ok())
        .max()
}

/// The complete checkpoints of `dir`.
fn checkpoints(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("ckpt-"))
            .filter(|e| e.path().join("MANIFEST").exists())
            .count()
    })
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Four generated partitions of `events` records.
fn generated(dir: &Path, events: u64) -> PathBuf {
    let input = dir.join("in");
    let out = bin()
        .args(["gen", "--partitions", "4", "--keys", "500", "--rate", "20"])
        .args(["--events", &events.to_string(), "--late-frac", "0.02"])
        .args(["--late-extra", "2s"])
        .arg("--out")
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    input
}

#[test]
fn a_second_run_on_a_checkpoint_directory_in_use_is_refused_and_leaves_the_first_runs_outputs_whole(
) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = generated(dir, 200_000);
    let job = |out: &str| -> Vec<String> {
        [
            "run",
            "--quiet",
            "--window",
            "tumbling:1s",
            "--delay",
            "200ms",
            "--lateness",
            "1s",
            "--follow",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--input".into(), input.display().to_string()])
        .chain(["--output".into(), dir.join(out).display().to_string()])
        .chain([
            "--late".into(),
            dir.join(format!("{out}.late")).display().to_string(),
        ])
        .collect()
    };
    let ckpt = dir.join("ckpt");
    let ck = ["--checkpoint-dir", ckpt.to_str().unwrap()];
    let ck = ck.iter().chain(&["--checkpoint-every", "1s"]);
    // The first run follows the input: it holds the directory as long as
    // it runs.
    let mut first = bin()
        .args(job("first.jsonl"))
        .args(ck.clone())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("three checkpoints", || checkpoints(&ckpt) >= 3);
    let loud: Vec<String> = job("first.jsonl")
        .into_iter()
        .filter(|a| a != "--quiet")
        .collect();
    let second = bin().args(loud).args(ck).output().unwrap();
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("is in use by another run"),
        "{}",
        stderr(&second)
    );
    assert!(
        stderr(&second).contains("no output was opened"),
        "{}",
        stderr(&second)
    );
    signal(&first, "INT");
    let mut err = String::new();
    first
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(130), "{err}");
    // What the first run wrote is whole: the prefix of a bounded run's
    // output, line for line, and no byte of it was cut away.
    let bounded: Vec<String> = job("reference.jsonl")
        .into_iter()
        .filter(|a| a != "--follow")
        .collect();
    let out = bin().args(&bounded).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["first.jsonl", "first.jsonl.late"] {
        let got = fs::read(dir.join(name)).unwrap();
        let want = fs::read(dir.join(name.replace("first", "reference"))).unwrap();
        assert!(!got.is_empty(), "{name} is empty");
        assert!(!got.contains(&0), "{name} holds NUL bytes");
        assert!(
            want.starts_with(&got),
            "{name}: {} bytes, not a prefix of the bounded run's {} bytes",
            got.len(),
            want.len()
        );
        assert!(got.ends_with(b"\n"), "{name} ends in a torn line");
    }
}

/// A followed run's outputs and its replay's, with a partition released
/// as idle before a checkpoint, the run killed and resumed.
#[test]
fn a_resumed_followed_run_records_the_jump_of_a_partition_released_before_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in");
    fs::create_dir(&input).unwrap();
    let (p0, p1) = (input.join("p0.jsonl"), input.join("p1.jsonl"));
    append(&p0, &[record("a", 1_000), record("a", 1_200)]);
    append(&p1, &[record("b", 1_000)]);
    let (live, live_late) = (dir.join("live.jsonl"), dir.join("live-late.jsonl"));
    let ckpt = dir.join("ckpt");
    let start = || {
        bin()
            .args(["run", "--quiet", "--window", "tumbling:1s", "--follow"])
            .args(["--idle-after", "300ms", "--checkpoint-every", "1s"])
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
            .unwrap()
    };
    let mut first = start();
    // Partition 1 falls silent and is released; partition 0 runs on to
    // 9.5 s, past checkpoints at 2 s … 9 s.
    std::thread::sleep(Duration::from_millis(1_000));
    let lines: Vec<String> = (2..10).map(|s| record("a", s * 1_000 + 500)).collect();
    append(&p0, &lines);
    wait_until("windows up to 8 s", || contains(&live, "\"start\":8000"));
    wait_until("a checkpoint at 9 s", || {
        let out = bin().arg("inspect").arg(&ckpt).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("frontier      9000 ")
    });
    first.kill().unwrap();
    first.wait().unwrap();
    // Partition 1 comes back with records below the checkpoint's frontier.
    append(&p1, &[record("b", 1_500), record("b", 2_600)]);
    let mut second = start();
    let mut err = String::new();
    wait_until("the resumed run's late records", || {
        contains(&live_late, "\"ts\":2600")
    });
    append(&p0, &[record("a", 12_000)]);
    append(&p1, &[record("b", 12_100)]);
    wait_until("the window of 9 s", || contains(&live, "\"start\":9000"));
    signal(&second, "INT");
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(second.wait().unwrap().code(), Some(130), "{err}");
    let decisions = fs::read_to_string(ckpt.join("decisions.jsonl")).unwrap();
    assert!(
        decisions.contains("\"partition\":1,\"offset\":1"),
        "the rejoin of partition 1 is recorded: {decisions}"
    );
    let (live, live_late) = (
        fs::read_to_string(&live).unwrap(),
        fs::read_to_string(&live_late).unwrap(),
    );
    // Partition 1's records are judged at the stream time it rejoined at,
    // as in a run that was never killed: late for windows the others had
    // closed.
    assert!(live_late.contains("\"ts\":1500"), "{live_late}");
    for workers in ["1", "2"] {
        let (replay, replay_late) = (dir.join("replay.jsonl"), dir.join("replay-late.jsonl"));
        let out = bin()
            .args(["run", "--quiet", "--window", "tumbling:1s"])
            .args(["--workers", workers])
            .arg("--input")
            .arg(&input)
            .arg("--replay-decisions")
            .arg(&ckpt)
            .arg("--output")
            .arg(&replay)
            .arg("--late")
            .arg(&replay_late)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            fs::read_to_string(&replay).unwrap(),
            live,
            "{workers} worker(s): the replayed results differ"
        );
        assert_eq!(
            fs::read_to_string(&replay_late).unwrap(),
            live_late,
            "{workers} worker(s): the replayed late records differ"
        );
    }
}

#[test]
fn outputs_that_alias_the_input_or_each_other_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in.jsonl");
    let lines: Vec<String> = (0..50).map(|i| record("k", i * 100)).collect();
    append(&input, &lines);
    let original = fs::read(&input).unwrap();
    let link = dir.join("link.jsonl");
    fs::hard_link(&input, &link).unwrap();
    let folder = dir.join("parts");
    fs::create_dir(&folder).unwrap();
    fs::copy(&input, folder.join("p0.jsonl")).unwrap();
    let part_link = dir.join("part-link.jsonl");
    fs::hard_link(folder.join("p0.jsonl"), &part_link).unwrap();
    let out = dir.join("out.jsonl");
    let run = |input: &Path, extra: &[&str]| -> Output {
        bin()
            .args(["run", "--window", "tumbling:1s", "--input"])
            .arg(input)
            .args(extra)
            .output()
            .unwrap()
    };
    let (link, part_link, input_s, out_s) = (
        link.to_str().unwrap(),
        part_link.to_str().unwrap(),
        input.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let cases: [(&Path, Vec<&str>, &str); 7] = [
        (
            &input,
            vec!["--output", link],
            "is a hard link to the input file",
        ),
        (
            &folder,
            vec!["--output", out_s, "--late", part_link],
            "is a hard link to the input file",
        ),
        (&input, vec!["--stats", input_s], "is the input file"),
        (
            &input,
            vec!["--summary-json", link],
            "is a hard link to the input file",
        ),
        (
            &input,
            vec!["--output", out_s, "--stats", out_s],
            "are the same file",
        ),
        (
            &input,
            vec!["--output", out_s, "--summary-json", out_s],
            "are the same file",
        ),
        (
            &input,
            vec!["--stats", out_s, "--summary-json", out_s],
            "are the same file",
        ),
    ];
    for (input, extra, said) in cases {
        let got = run(input, &extra);
        assert_eq!(got.status.code(), Some(2), "{extra:?}: {}", stderr(&got));
        assert!(stderr(&got).contains(said), "{extra:?}: {}", stderr(&got));
        assert_eq!(fs::read(input_s).unwrap(), original, "{extra:?}");
        assert!(!out.exists(), "{extra:?} wrote an output");
    }
    // The same option through a job file.
    let job = dir.join("job.toml");
    fs::write(
        &job,
        "input = \"in.jsonl\"\nwindow = \"tumbling:1s\"\noutput = \"out.jsonl\"\nsummary-json = \"link.jsonl\"\n",
    )
    .unwrap();
    let got = bin().args(["run", "--job"]).arg(&job).output().unwrap();
    assert_eq!(got.status.code(), Some(2), "{}", stderr(&got));
    assert!(
        stderr(&got).contains("--summary-json \""),
        "{}",
        stderr(&got)
    );
    assert_eq!(fs::read(input_s).unwrap(), original);
    // Outputs may all go to a device.
    let got = run(
        &input,
        &[
            "--output",
            "/dev/null",
            "--late",
            "/dev/null",
            "--stats",
            "/dev/null",
        ],
    );
    assert!(got.status.success(), "{}", stderr(&got));
}

/// GET `path` from `addr`; the body of a 200 answer.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(" 200 "), "{head}");
    body.to_owned()
}

/// Starts `tidemark run ARGS --metrics-addr 127.0.0.1:0` and returns the
/// child, the address it serves on and its standard error (kept open).
fn serving(args: &[&str], input: &Path) -> (Child, String, BufReader<std::process::ChildStderr>) {
    let mut child = bin()
        .args(["run", "--quiet", "--metrics-addr", "127.0.0.1:0", "--input"])
        .arg(input)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics\n"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (child, addr, stderr)
}

#[test]
fn the_live_watermark_is_the_stream_time_minus_the_delay() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    // 120 records 100 ms apart: stream time 11.9 s, watermark 6.9 s.
    let lines: Vec<String> = (0..120).map(|i| record("k", i * 100)).collect();
    append(&input, &lines);
    let (mut child, addr, _stderr) = serving(
        &["--follow", "--delay", "5s", "--window", "tumbling:1s"],
        &input,
    );
    let mut body = String::new();
    wait_until("all 120 records read", || {
        body = http_get(&addr, "/metrics");
        body.contains("tidemark_records_total 120\n")
            && body.contains("tidemark_output_watermark_seconds 6.899")
    });
    for want in [
        "tidemark_watermark_seconds 6.9\n",
        "tidemark_partition_watermark_seconds{partition=\"0\"} 6.9\n",
        "tidemark_partition_stream_time_seconds{partition=\"0\"} 11.9\n",
        // Complete below the stream time: 11.899 s, minus the delay.
        "tidemark_output_watermark_seconds 6.899\n",
    ] {
        assert!(body.contains(want), "{want}{body}");
    }
    signal(&child, "INT");
    assert_eq!(child.wait().unwrap().code(), Some(130));
}

/// A process's resident memory and thread count (Linux `/proc`).
fn rss_and_threads(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:") * 1024, field("Threads:"))
}

/// A raw request to `addr`: the answer's status line, or `None` when the
/// connection was closed without one.
fn status_of(addr: &str, request: &[u8]) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).ok()?;
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.lines().next().map(str::to_owned)
}

#[test]
fn no_client_of_the_metrics_endpoint_can_grow_the_job_or_blind_the_scrapes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let lines: Vec<String> = (0..50).map(|i| record("k", i * 100)).collect();
    append(&input, &lines);
    let (mut child, addr, _stderr) = serving(&["--follow", "--window", "tumbling:1s"], &input);
    let pid = child.id();
    // The job's own threads are up once it has read its input: the
    // baseline is taken then (the endpoint serves before the job starts).
    wait_until("the job read its input", || {
        http_get(&addr, "/metrics").contains("tidemark_records_total 50\n")
    });
    let (rss, threads) = rss_and_threads(pid);

    // An endless header: refused once it passes the limit, and the
    // connection closed; the job's memory does not follow what was sent.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nX-Endless: ")
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 * 1024 * 1024 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert!(
        sent < 16 * 1024 * 1024,
        "the endpoint took {sent} bytes of one header"
    );
    let (rss_after, _) = rss_and_threads(pid);
    assert!(
        rss_after < rss + 8 * 1024 * 1024,
        "memory grew from {rss} to {rss_after} bytes"
    );
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nX: ").unwrap();
    stream.write_all(&vec![b'a'; 9 * 1024]).unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");

    // A slow POST (a head that never ends) does not hold up a scrape, and
    // is closed after the deadline.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"POST /metrics HTTP/1.1\r\nContent-Length: 1000000\r\n")
        .unwrap();
    let asked = Instant::now();
    let got = status_of(&addr, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(
        got.as_deref().is_some_and(|s| s.contains(" 200 ")),
        "{got:?}"
    );
    assert!(asked.elapsed() < Duration::from_secs(1));
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let closed = Instant::now();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        closed.elapsed() < Duration::from_secs(5),
        "the slow client was kept"
    );
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert_eq!(
        status_of(&addr, b"POST /metrics HTTP/1.0\r\n\r\n").as_deref(),
        Some("HTTP/1.1 405 Method Not Allowed")
    );

    // 300 connections that send nothing: no thread each, and they are all
    // closed within the deadline; then scrapes are answered again.
    let idle: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (_, during) = rss_and_threads(pid);
    assert!(
        during <= threads,
        "{during} threads with 300 idle connections, {threads} before"
    );
    let started = Instant::now();
    for mut c in idle {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "idle connections were held {:?}",
        started.elapsed()
    );
    wait_until("a scrape after the flood", || {
        status_of(&addr, b"GET /metrics HTTP/1.0\r\n\r\n").is_some_and(|s| s.contains(" 200 "))
    });
    signal(&child, "INT");
    assert_eq!(child.wait().unwrap().code(), Some(130));
}

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        out.status.success().then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
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

#[test]
fn on_a_full_disk_the_outputs_are_cut_back_to_their_last_commit_and_the_watermark_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Some(small) = Tmpfs::mount(&dir.join("small"), "20m") else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root); the full-disk case is not checked"
        );
        return;
    };
    let input = dir.join("in");
    let out = bin()
        .args([
            "gen",
            "--partitions",
            "3",
            "--keys",
            "20000",
            "--rate",
            "20",
        ])
        .args([
            "--events",
            "600000",
            "--late-frac",
            "0.05",
            "--late-extra",
            "2s",
        ])
        .arg("--out")
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let run = |to: &Path| -> Output {
        bin()
            .args(["run", "--window", "tumbling:10ms", "--delay", "100ms"])
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(to.join("results.jsonl"))
            .arg("--late")
            .arg(to.join("late.jsonl"))
            .output()
            .unwrap()
    };
    let reference = dir.join("reference");
    fs::create_dir(&reference).unwrap();
    let full = run(&reference);
    assert!(full.status.success(), "{}", stderr(&full));
    let want = fs::read_to_string(reference.join("results.jsonl")).unwrap();
    assert!(want.len() > 30 << 20, "{} bytes of results", want.len());
    let want_late = fs::read_to_string(reference.join("late.jsonl")).unwrap();

    let failed = run(&small.0);
    let err = stderr(&failed);
    assert_eq!(failed.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let watermark = number_after(
        &err,
        "the job failed; its outputs hold every result the watermark completed (watermark ",
    )
    .unwrap_or_else(|| panic!("no watermark in: {err}"));
    let got = fs::read_to_string(small.0.join("results.jsonl")).unwrap();
    let got_late = fs::read_to_string(small.0.join("late.jsonl")).unwrap();
    for (name, got, want) in [("results", &got, &want), ("late", &got_late, &want_late)] {
        assert!(want.starts_with(got.as_str()), "{name}: not a prefix");
        assert!(got.is_empty() || got.ends_with('\n'), "{name}: a torn line");
    }
    // Every row of a window ending at or before the watermark is there.
    let end = |row: &str| number_after(row, "\"end\":").unwrap();
    let complete = want.lines().take_while(|r| end(r) <= watermark).count();
    assert!(complete > 0, "watermark {watermark}: no complete window");
    assert!(
        got.lines().count() >= complete,
        "watermark {watermark}: {} rows, {complete} windows end by it",
        got.lines().count()
    );
    assert!(err.contains("cut back"), "{err}");
}

/// A stats log's lines without their `wall` object (the one part that
/// depends on timing).
fn stats_lines(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("wall");
            v
        })
        .collect()
}

#[test]
fn a_stats_log_resumed_after_kills_is_the_uninterrupted_runs_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = generated(dir, 400_000);
    let job = |name: &str| -> Vec<String> {
        [
            "run",
            "--quiet",
            "--window",
            "tumbling:1s",
            "--delay",
            "200ms",
            "--lateness",
            "1s",
            "--stats-every",
            "700ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--input".into(), input.display().to_string()])
        .chain([
            "--output".into(),
            dir.join(format!("{name}.jsonl")).display().to_string(),
        ])
        .chain([
            "--stats".into(),
            dir.join(format!("{name}.stats")).display().to_string(),
        ])
        .collect()
    };
    let started = Instant::now();
    let reference = bin().args(job("reference")).output().unwrap();
    assert!(reference.status.success(), "{}", stderr(&reference));
    let took = started.elapsed();
    let want = stats_lines(&dir.join("reference.stats"));
    assert!(want.len() > 10, "{want:?}");
    let ckpt = dir.join("ckpt").display().to_string();
    let checkpointed: Vec<String> = job("resumed")
        .into_iter()
        .chain([
            "--checkpoint-dir".into(),
            ckpt,
            "--checkpoint-every".into(),
            "2s".into(),
        ])
        .collect();
    // Killed once each run has written a checkpoint of its own, at
    // fractions of a whole run after that, on 1 and 2 workers (waiting for
    // the checkpoint, not a time, so that a loaded machine still resumes).
    let mut resumed = 0;
    for (i, fraction) in [0.1, 0.3, 0.05, 0.4, 0.2].into_iter().enumerate() {
        let workers = if i % 2 == 0 { "1" } else { "2" };
        let before = newest_checkpoint(&dir.join("ckpt"));
        let mut child = bin()
            .args(&checkpointed)
            .args(["--workers", workers])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let waited = Instant::now();
        while newest_checkpoint(&dir.join("ckpt")) == before
            && child.try_wait().unwrap().is_none()
            && waited.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(took.mul_f64(fraction));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        resumed += usize::from(stderr(&out).contains("resuming from checkpoint"));
    }
    let last = bin().args(&checkpointed).output().unwrap();
    assert!(last.status.success(), "{}", stderr(&last));
    assert!(resumed >= 2, "only {resumed} runs resumed");
    assert_eq!(
        fs::read(dir.join("resumed.jsonl")).unwrap(),
        fs::read(dir.join("reference.jsonl")).unwrap()
    );
    let got = stats_lines(&dir.join("resumed.stats"));
    assert_eq!(got.len(), want.len(), "stats lines");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "stats line {i}");
    }
}

/// The checkpoint directories of `ckpt`, oldest first.
fn checkpoint_dirs(ckpt: &Path) -> Vec<PathBuf> {
    let mut ids: Vec<PathBuf> = fs::read_dir(ckpt)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ckpt-")
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn an_input_rewritten_in_place_is_refused_on_resume_and_resumes_once_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = generated(dir, 60_000);
    let ckpt = dir.join("ckpt");
    let run = |out: &str, extra: &[&str]| -> Output {
        bin()
            .args(["run", "--window", "tumbling:1s", "--delay", "100ms"])
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(dir.join(out))
            .args(extra)
            .output()
            .unwrap()
    };
    let ck = [
        "--checkpoint-dir",
        ckpt.to_str().unwrap(),
        "--checkpoint-every",
        "500ms",
        "--keep-checkpoints",
        "50",
    ];
    let full = run("reference.jsonl", &[]);
    assert!(full.status.success(), "{}", stderr(&full));
    let first = run("out.jsonl", &ck);
    assert!(first.status.success(), "{}", stderr(&first));
    // Resume from a checkpoint in the middle of the input.
    let dirs = checkpoint_dirs(&ckpt);
    assert!(dirs.len() > 4, "{dirs:?}");
    for d in &dirs[dirs.len() / 2..] {
        fs::remove_dir_all(d).unwrap();
    }
    let part = input.join("part-00001.jsonl");
    let original = fs::read(&part).unwrap();
    // The same size, one digit changed near the start.
    let mut changed = original.clone();
    let at = changed.iter().position(|b| b.is_ascii_digit()).unwrap();
    changed[at] = if changed[at] == b'9' {
        b'8'
    } else {
        changed[at] + 1
    };
    fs::write(&part, &changed).unwrap();
    let before = fs::read(dir.join("out.jsonl")).unwrap();
    let refused = run("out.jsonl", &ck);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("part-00001.jsonl\" changed since checkpoint"),
        "{err}"
    );
    assert!(err.contains("--rebuild"), "{err}");
    assert_eq!(fs::read(dir.join("out.jsonl")).unwrap(), before);
    // Put back, it resumes (appended files resume too: see the followed
    // run resumed above).
    fs::write(&part, &original).unwrap();
    let resumed = run("out.jsonl", &ck);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("resuming from checkpoint"));
    assert_eq!(
        fs::read(dir.join("out.jsonl")).unwrap(),
        fs::read(dir.join("reference.jsonl")).unwrap()
    );
}

#[test]
fn outputs_are_not_replaced_without_a_checkpoint_of_their_own_unless_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = generated(dir, 40_000);
    let run = |ckpt: &str, extra: &[&str]| -> Output {
        bin()
            .args(["run", "--window", "tumbling:1s", "--delay", "100ms"])
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(dir.join("out.jsonl"))
            .arg("--checkpoint-dir")
            .arg(dir.join(ckpt))
            .args(["--checkpoint-every", "1s"])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run("ck", &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let full = fs::read(dir.join("out.jsonl")).unwrap();
    // A mistyped (empty) checkpoint directory: refused, the outputs kept.
    let typo = run("ckk", &[]);
    let err = stderr(&typo);
    assert_eq!(typo.status.code(), Some(2), "{err}");
    assert!(
        err.contains("there is no checkpoint in")
            && err.contains("would replace the results output"),
        "{err}"
    );
    assert!(err.contains("hint: check --checkpoint-dir"), "{err}");
    assert_eq!(fs::read(dir.join("out.jsonl")).unwrap(), full);
    // Every checkpoint damaged: refused too, saying so.
    for c in checkpoint_dirs(&dir.join("ck")) {
        fs::write(c.join("state.bin"), b"damaged").unwrap();
    }
    let damaged = run("ck", &[]);
    let err = stderr(&damaged);
    assert_eq!(damaged.status.code(), Some(2), "{err}");
    assert!(err.contains("is damaged"), "{err}");
    assert_eq!(fs::read(dir.join("out.jsonl")).unwrap(), full);
    // --rebuild starts over and replaces them.
    let rebuilt = run("ck", &["--rebuild"]);
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert_eq!(fs::read(dir.join("out.jsonl")).unwrap(), full);
    // A run on this directory that ended before its first checkpoint: its
    // outputs are the directory's own, and the next run starts over.
    for c in checkpoint_dirs(&dir.join("ck")) {
        fs::remove_dir_all(c).unwrap();
    }
    let again = run("ck", &[]);
    let err = stderr(&again);
    assert!(again.status.success(), "{err}");
    assert!(
        err.contains("starting from offset 0 and replacing its outputs"),
        "{err}"
    );
    assert_eq!(fs::read(dir.join("out.jsonl")).unwrap(), full);
}

#[test]
fn a_checkpointed_run_may_write_to_a_device_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = generated(dir, 40_000);
    let ckpt = dir.join("ck");
    let run = || -> Output {
        bin()
            .args(["run", "--window", "tumbling:1s", "--output", "/dev/null"])
            .args(["--late", "/dev/null", "--stats", "/dev/null"])
            .arg("--input")
            .arg(&input)
            .arg("--checkpoint-dir")
            .arg(&ckpt)
            .args(["--checkpoint-every", "1s", "--keep-checkpoints", "50"])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    let dirs = checkpoint_dirs(&ckpt);
    fs::remove_dir_all(dirs.last().unwrap()).unwrap();
    let resumed = run();
    let err = stderr(&resumed);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("resuming from checkpoint"), "{err}");
    assert!(!err.contains("stats log"), "{err}");
}

#[test]
fn time_decisions_that_are_damaged_or_not_this_inputs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in");
    fs::create_dir(&input).unwrap();
    for p in 0..2 {
        let lines: Vec<String> = (0..10).map(|i| record("k", i * 500 + p)).collect();
        append(&input.join(format!("p{p}.jsonl")), &lines);
    }
    let ckpt = dir.join("ck");
    fs::create_dir(&ckpt).unwrap();
    let replay = |decisions: &str| -> Output {
        fs::write(ckpt.join("decisions.jsonl"), decisions).unwrap();
        bin()
            .args(["run", "--window", "tumbling:1s", "--output"])
            .arg(dir.join("out.jsonl"))
            .arg("--input")
            .arg(&input)
            .arg("--replay-decisions")
            .arg(&ckpt)
            .output()
            .unwrap()
    };
    let cases = [
        (
            "{\"resume\":{\"partition\":7,\"offset\":1,\"stream_time\":5000}}\n",
            Some(2),
            "name partition 7, which the input does not have",
        ),
        (
            "{\"resume\":{\"partition\":1,\"offset\":50,\"stream_time\":5000}}\n",
            Some(2),
            "offset 50 of partition 1, past its end (10 records)",
        ),
        (
            "{\"resume\":{\"partition\":1,\"offset\":2,\"stream_time\":5000}}\t00000000\n{\"stop\":{\"at\":9000}}\n",
            Some(1),
            "line 1: its checksum does not match",
        ),
        (
            "{\"resume\":{\"partition\":1,\"offset\":2,\"stream_time\":5000}}\ngarbage\n{\"stop\":{\"at\":9000}}\n",
            Some(1),
            "line 2: not a time decision",
        ),
    ];
    for (decisions, code, said) in cases {
        let out = replay(decisions);
        let err = stderr(&out);
        assert_eq!(out.status.code(), code, "{decisions}: {err}");
        assert!(err.contains(said), "{decisions}: {err}");
    }
    // A last line torn by a crash is dropped; the rest is replayed.
    let out = replay(
        "{\"resume\":{\"partition\":1,\"offset\":2,\"stream_time\":3000}}\n{\"stop\":{\"at\"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn reprocessing_points_and_inputs_that_are_mistakes_are_said_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = generated(dir, 2_000);
    let run = |input: &Path, extra: &[&str]| -> Output {
        bin()
            .args(["run", "--window", "tumbling:1s", "--output"])
            .arg(dir.join("out.jsonl"))
            .arg("--input")
            .arg(input)
            .args(extra)
            .output()
            .unwrap()
    };
    // Epoch seconds where milliseconds are meant.
    let out = run(&input, &["--from-time", "1700000100"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "error: invalid --from-time 1700000100: it reads as epoch seconds (2023-11-14T22:15:00Z)"
        ),
        "{}",
        stderr(&out)
    );
    let job = dir.join("job.toml");
    fs::write(
        &job,
        "input = \"in\"\nwindow = \"tumbling:1s\"\nfrom-time = 1700000100\n",
    )
    .unwrap();
    let out = bin().args(["run", "--job"]).arg(&job).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reads as epoch seconds"),
        "{}",
        stderr(&out)
    );
    // Past the input: nothing written, and said (even with --quiet).
    let out = run(&input, &["--quiet", "--from-time", "2030-01-01T00:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is past the end of the input")
            && stderr(&out).contains("nothing was written"),
        "{}",
        stderr(&out)
    );
    assert!(fs::read(dir.join("out.jsonl")).unwrap().is_empty());
    // A negative partition: the parser's message, not clap's.
    let out = run(&input, &["--from-offsets", "-1:5"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("\"-1\" is not a partition"),
        "{}",
        stderr(&out)
    );
    // A named pipe and a dangling link among the partitions.
    let fifo = input.join("part-00009.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = run(&input, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("part-00009.jsonl\" matches the partition glob")
            && stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    fs::remove_file(&fifo).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere.jsonl"), input.join("part-00008.jsonl")).unwrap();
    let out = run(&input, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a symbolic link to nothing"),
        "{}",
        stderr(&out)
    );
    // Inspecting a directory that is not there.
    let out = bin()
        .arg("inspect")
        .arg(dir.join("no-such-dir"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn a_partition_released_as_idle_lets_the_frontier_pass_on_two_workers_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("in");
    fs::create_dir(&input).unwrap();
    let (p0, p1) = (input.join("p0.jsonl"), input.join("p1.jsonl"));
    append(&p0, &[record("a", 1_000), record("a", 1_200)]);
    append(&p1, &[record("b", 1_000)]);
    let (live, live_late) = (dir.join("live.jsonl"), dir.join("live-late.jsonl"));
    let ckpt = dir.join("ckpt");
    // Two workers: each reads one partition, so the worker of partition 1
    // has nothing but an idle partition.
    let mut child = bin()
        .args(["run", "--quiet", "--window", "tumbling:1s", "--follow"])
        .args(["--idle-after", "300ms", "--workers", "2"])
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
    std::thread::sleep(Duration::from_millis(1_000));
    let lines: Vec<String> = (2..6).map(|s| record("a", s * 1_000 + 500)).collect();
    append(&p0, &lines);
    wait_until("windows up to 4 s", || contains(&live, "\"start\":4000"));
    append(&p1, &[record("b", 1_500)]);
    std::thread::sleep(Duration::from_millis(300));
    append(&p0, &[record("a", 8_000)]);
    append(&p1, &[record("b", 8_100)]);
    wait_until("the late record", || contains(&live_late, "\"ts\":1500"));
    signal(&child, "INT");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{err}");
    let replay = dir.join("replay.jsonl");
    let out = bin()
        .args([
            "run",
            "--quiet",
            "--window",
            "tumbling:1s",
            "--workers",
            "2",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--replay-decisions")
        .arg(&ckpt)
        .arg("--output")
        .arg(&replay)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(&replay).unwrap(),
        fs::read_to_string(&live).unwrap()
    );
}
