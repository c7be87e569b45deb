//! The first hour of a newcomer on the CLI and of a Rust engineer embedding
//! the library, each friction they met reproduced where they met it:
//!
//! - a job whose checkpoint says it is already complete ends, and pushes to
//!   its `ChannelSource` then fail instead of blocking for ever;
//! - the builder takes a `Duration` wherever it takes milliseconds;
//! - `--help` names `kafka://`, `bench --help` says what `bench` holds,
//!   `gen --header` says how to read what it wrote;
//! - the summary gives windows and rows per kind, `--summary-json` names
//!   its units and leaves out what it did not measure;
//! - late records' times follow `--output-time-format` (flag and job key);
//! - `tidemark digest -` reads standard input, `inspect` says `emit final`;
//! - `/metrics` has checkpoint and process metrics.
//!
//! Run with `cargo test --test first_hour`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark::engine::Target;
use tidemark::sources::{ChannelSource, MemorySource, PushError, Value};
use tidemark::windows::WindowSpec;
use tidemark::Job;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `lines` JSON records, key `k{i % 3}`, 100 ms apart, with one record far
/// behind at the end (late under a 0 ms lateness).
fn write_input(path: &Path, lines: i64) {
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&format!(
            "{{\"key\":\"k{}\",\"ts\":{},\"value\":{}}}\n",
            i % 3,
            1_700_000_000_000 + i * 100,
            i % 7
        ));
    }
    text.push_str("{\"key\":\"k0\",\"ts\":1700000000050,\"value\":1}\n");
    fs::write(path, text).unwrap();
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

/// `tidemark run ARGS` with a one-second tumbling window.
fn run_job(args: &[&str]) -> Output {
    bin()
        .args(["run", "--window", "tumbling:1s"])
        .args(args)
        .output()
        .unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_job_found_complete_ends_and_pushes_then_fail_instead_of_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ck");
    // One results buffer for both jobs, as one file would be.
    let (results, _) = Target::buffer();
    let job = |source: &ChannelSource| {
        Job::builder()
            .source(Arc::new(source.clone()))
            .window(WindowSpec::tumbling(Duration::from_secs(1)))
            .results(results.clone())
            .checkpoint_dir(&ckpt)
            .build()
            .unwrap()
    };
    // A first job reads one partition to its end and checkpoints there.
    let first = ChannelSource::new(1, 8).unwrap();
    let sender = first.sender(0).unwrap();
    let running = {
        let job = job(&first);
        std::thread::spawn(move || job.run())
    };
    for t in 0..5 {
        sender.push("a", t * 300, Value::Int(1)).unwrap();
    }
    sender.close();
    running.join().unwrap().unwrap();
    // The same job again: its checkpoint says it is complete, so it ends at
    // once; an application still pushing must learn nobody reads, even
    // with a full channel (a push that waits for room), not hang.
    let again = ChannelSource::new(1, 1).unwrap();
    let sender = again.sender(0).unwrap();
    let summary = job(&again).run().unwrap();
    assert!(summary.already_complete, "{summary:?}");
    let (done, got) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut result = Ok(());
        for t in 0..3 {
            result = sender.push("a", 10_000 + t, Value::Int(1)).map(|_| ());
            if result.is_err() {
                break;
            }
        }
        let _ = done.send(result);
    });
    let result = got
        .recv_timeout(Duration::from_secs(20))
        .expect("a push to the source of a job that ended still blocks after 20 s");
    assert!(
        matches!(result, Err(PushError::Disconnected { .. })),
        "{result:?}"
    );
}

#[test]
fn the_builder_takes_a_duration_wherever_it_takes_milliseconds() {
    let none = || Arc::new(MemorySource::new(vec![Vec::new()]));
    let ms = Job::builder()
        .source(none())
        .window(WindowSpec::sliding(10_000, 1_000))
        .delay(250)
        .lateness(2_000)
        .idle_after(30_000)
        .max_future_skew(60_000)
        .connect_timeout(5_000)
        .commit_interval(1_500)
        .build()
        .unwrap();
    let d = Duration::from_millis;
    let spans = Job::builder()
        .source(none())
        .window(WindowSpec::sliding(Duration::from_secs(10), d(1_000)))
        .delay(d(250))
        .lateness(Duration::from_secs(2))
        .idle_after(Duration::from_secs(30))
        .max_future_skew(Duration::from_secs(60))
        .connect_timeout(d(5_000))
        .commit_interval(d(1_500))
        .build()
        .unwrap();
    let (a, b) = (ms.config(), spans.config());
    assert_eq!(a.window, b.window);
    assert_eq!(a.policy, b.policy);
    assert_eq!(a.idle_after, b.idle_after);
    assert_eq!(a.idle_after, Some(Duration::from_secs(30)));
    assert_eq!(a.max_future_skew, b.max_future_skew);
    assert_eq!(a.connect_timeout, b.connect_timeout);
    assert_eq!(a.commit_interval, b.commit_interval);
    assert_eq!(
        WindowSpec::session(Duration::from_millis(500)),
        WindowSpec::session(500)
    );
}

#[test]
fn help_texts_name_kafka_what_bench_holds_and_how_to_read_a_header() {
    let help = stdout(&run(&["run", "--help"]));
    let input = help.split("--input").nth(1).unwrap_or_default();
    assert!(input.contains("kafka://"), "--input help:\n{help}");
    let output = help.split("--output <").nth(1).unwrap_or_default();
    assert!(output.contains("kafka://"), "--output help:\n{help}");
    let bench = stdout(&run(&["bench", "--help"]));
    for sub in ["throughput", "tradeoff", "files", "checkpoint"] {
        assert!(bench.contains(sub), "bench --help without {sub}:\n{bench}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("gen");
    let got = run(&[
        "gen",
        "--events",
        "200",
        "--partitions",
        "2",
        "--format",
        "csv",
        "--header",
        "--out",
        path(&dir),
    ]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert!(
        stderr(&got).contains("tidemark run --header"),
        "{}",
        stderr(&got)
    );
    // ... and reading them so gives no dead letter.
    let read = run_job(&["--input", path(&dir), "--header", "--output", "/dev/null"]);
    assert!(read.status.success(), "{}", stderr(&read));
    assert!(
        stderr(&read).contains("dead letters 0"),
        "{}",
        stderr(&read)
    );
}

#[test]
fn the_summary_counts_windows_and_rows_per_kind_and_its_json_names_units() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, 100);
    let json = tmp.path().join("summary.json");
    let got = run(&[
        "run",
        "--input",
        path(&input),
        "--window",
        "sliding:1s/500ms",
        "--lateness",
        "20s",
        "--emit",
        "updates",
        "--output",
        path(&tmp.path().join("out.jsonl")),
        "--summary-json",
        path(&json),
    ]);
    assert!(got.status.success(), "{}", stderr(&got));
    let err = stderr(&got);
    let line = err
        .lines()
        .find(|l| l.contains("windows emitted"))
        .unwrap_or_else(|| panic!("{err}"));
    // The late record (k0 at +50 ms) updates two windows already shown.
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
    let rows = &v["rows"];
    let (fin, upd, ret) = (
        rows["final"].as_u64().unwrap(),
        rows["update"].as_u64().unwrap(),
        rows["retract"].as_u64().unwrap(),
    );
    assert!(upd >= 1, "{v}");
    let windows = v["windows"].as_u64().unwrap();
    assert_eq!(
        line.trim(),
        format!(
            "windows emitted {windows} in {} rows: {fin} final, {upd} update, {ret} retract",
            fin + upd + ret
        ),
        "{err}"
    );
    assert!(
        err.contains("late dropped 0, late applied 1, dead letters 0 (records)"),
        "{err}"
    );
    // Units in the names; what was not measured is absent, not 0.
    assert_eq!(v["final_watermark_ms"], serde_json::Value::Null, "{v}");
    assert!(v.get("checkpoints").is_none(), "{v}");
    assert!(v.get("checkpoint_nanos").is_none(), "{v}");
    assert!(v.get("peak_open_windows").is_none(), "{v}");
    assert!(v["elapsed_seconds"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["records"], 101);
    assert_eq!(v["records_this_run"], 101);
    assert_eq!(v["already_complete"], false);
    // With checkpoints: written, seconds, bytes; a no-op resume reads no
    // record and claims no rate.
    let ck = tmp.path().join("ck");
    for round in 0..2 {
        let got = run_job(&[
            "--input",
            path(&input),
            "--output",
            path(&tmp.path().join("out2.jsonl")),
            "--checkpoint-dir",
            path(&ck),
            "--summary-json",
            path(&json),
            "--quiet",
        ]);
        assert!(got.status.success(), "{}", stderr(&got));
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&json).unwrap()).unwrap();
        if round == 0 {
            assert!(v["checkpoints"]["written"].as_u64().unwrap() >= 1, "{v}");
            assert!(v["checkpoints"]["state_bytes"].is_u64(), "{v}");
            assert!(v["checkpoints"]["seconds"].is_f64(), "{v}");
        } else {
            assert_eq!(v["already_complete"], true, "{v}");
            assert_eq!(v["records_this_run"], 0, "{v}");
            assert_eq!(v["records_per_second"], 0.0, "{v}");
            assert_eq!(v["records_before"], 101, "{v}");
        }
    }
}

#[test]
fn late_record_times_follow_the_output_time_format_from_flag_and_job_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, 30);
    let check = |late: &Path| {
        let text = fs::read_to_string(late).unwrap();
        let row: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(row["ts"], "2023-11-14T22:13:20.050Z", "{text}");
    };
    let late = tmp.path().join("late.jsonl");
    let got = run_job(&[
        "--input",
        path(&input),
        "--output",
        "/dev/null",
        "--late",
        path(&late),
        "--output-time-format",
        "rfc3339",
        "--quiet",
    ]);
    assert!(got.status.success(), "{}", stderr(&got));
    check(&late);
    let job = tmp.path().join("job.toml");
    let late2 = tmp.path().join("late2.jsonl");
    fs::write(
        &job,
        format!(
            "input = {:?}\nwindow = \"tumbling:1s\"\noutput = \"/dev/null\"\nlate = {:?}\noutput-time-format = \"rfc3339\"\n",
            path(&input),
            path(&late2)
        ),
    )
    .unwrap();
    let got = run(&["run", "--job", path(&job), "--quiet"]);
    assert!(got.status.success(), "{}", stderr(&got));
    check(&late2);
}

#[test]
fn digest_reads_standard_input_and_inspect_names_the_emit_mode_in_lower_case() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, 50);
    let of_file = stdout(&run(&["digest", path(&input)]));
    // "HASH  BYTES  NAME": standard input is named "-".
    let fields: Vec<&str> = of_file.split_whitespace().collect();
    assert_eq!(fields[0].len(), 64, "{of_file}");
    let want = format!("{}  {}  -\n", fields[0], fields[1]);
    for args in [&["digest", "-"][..], &["digest"][..]] {
        let mut child = bin()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&fs::read(&input).unwrap())
            .unwrap();
        let got = child.wait_with_output().unwrap();
        assert!(got.status.success(), "{}", stderr(&got));
        assert_eq!(stdout(&got), want, "{args:?}");
    }
    let ck = tmp.path().join("ck");
    let got = run_job(&[
        "--input",
        path(&input),
        "--output",
        path(&tmp.path().join("out.jsonl")),
        "--checkpoint-dir",
        path(&ck),
        "--quiet",
    ]);
    assert!(got.status.success(), "{}", stderr(&got));
    let shown = run(&["inspect", path(&ck)]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains("emit final"), "{text}");
    assert!(!text.contains("Final"), "{text}");
    // Its counts as the summary gives them: rows per kind, then records.
    assert!(text.contains(" final, 0 update, 0 retract\n"), "{text}");
    assert!(
        text.contains("  records       51 read, 1 late dropped, 0 late applied, 0 dead letters\n"),
        "{text}"
    );
}

/// GET /metrics from `addr`: the body of a 200 answer.
fn scrape(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(" 200 "), "{head}");
    body.to_owned()
}

#[test]
fn metrics_show_checkpoints_and_the_process() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, 50);
    let mut child = bin()
        .args(["run", "--window", "tumbling:1s", "--follow", "--quiet"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--input", path(&input)])
        .args(["--output", path(&tmp.path().join("out.jsonl"))])
        .args(["--checkpoint-dir", path(&tmp.path().join("ck"))])
        .args(["--checkpoint-every", "100ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics\n"))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let started = Instant::now();
    let body = loop {
        let body = scrape(&addr);
        if body.contains("tidemark_last_checkpoint_timestamp_seconds") {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no checkpoint metric after 30 s:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name}:\n{body}"))
    };
    assert!(value("tidemark_checkpoints_total") >= 1.0, "{body}");
    assert!(value("tidemark_last_checkpoint_age_seconds") >= 0.0);
    assert!(value("tidemark_last_checkpoint_duration_seconds") >= 0.0);
    assert!(
        value("tidemark_last_checkpoint_state_bytes") > 0.0,
        "{body}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let at = value("tidemark_last_checkpoint_timestamp_seconds");
    assert!((now - 600.0..=now + 1.0).contains(&at), "{at} vs {now}");
    // The process's figures under the names every Prometheus client gives
    // them, so existing dashboards find them.
    assert!(value("process_cpu_seconds_total") > 0.0, "{body}");
    assert!(value("process_resident_memory_bytes") > 1e6, "{body}");
    let start = value("process_start_time_seconds");
    assert!((now - 600.0..=now).contains(&start), "{start} vs {now}");
    assert!(value("process_open_fds") >= 3.0, "{body}");
    assert!(value("process_threads") >= 2.0, "{body}");
    assert!(!body.contains("tidemark_process_"), "{body}");
    assert_eq!(body.matches("# EOF").count(), 1, "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
}

/// Without the `kafka` feature a topic is refused with the command that
/// builds the feature in, before anything is read or written.
#[cfg(not(feature = "kafka"))]
#[test]
fn a_topic_without_the_kafka_feature_says_how_to_build_it_in() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, 5);
    let out = tmp.path().join("out.jsonl");
    for args in [
        vec![
            "--input",
            "kafka://127.0.0.1:9/clicks",
            "--output",
            path(&out),
        ],
        vec![
            "--input",
            path(&input),
            "--output",
            "kafka://127.0.0.1:9/rows",
        ],
    ] {
        let got = run_job(&args);
        assert_eq!(got.status.code(), Some(2), "{}", stderr(&got));
        assert!(
            stderr(&got).contains("--features kafka"),
            "{}",
            stderr(&got)
        );
        assert!(!out.exists());
    }
}

#[test]
fn a_metrics_port_without_a_host_is_answered_with_the_address_to_give() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    write_input(&input, 5);
    let got = run_job(&[
        "--input",
        path(&input),
        "--output",
        "/dev/null",
        "--metrics-addr",
        "9464",
    ]);
    assert!(!got.status.success());
    let err = stderr(&got);
    assert!(err.contains("e.g. 127.0.0.1:9464"), "{err}");
}
