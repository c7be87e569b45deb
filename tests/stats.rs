//! The live stats of a running job (`Stats::snapshot`): per-partition
//! offsets, stream times, watermarks, records, late and dead-letter counts
//! and reader states, the global watermark and the partition that holds
//! it, and the event-time lag. A followed directory where one partition
//! stops growing while the other goes on: the snapshot names the slow
//! partition as holding the watermark, with a lag that grows, and the lag
//! is zero once it catches up.
//!
//! Run with `cargo test --test stats`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark::engine::{PartitionState, Stats, StatsSnapshot};
use tidemark::JobSpec;

/// Appends the records `from..to` in one write: a reader that finds half
/// of them would read the rest only once the other partition catches up
/// (a partition more than 1 s of stream time ahead of the slowest waits),
/// which is not what these tests look at.
fn append(path: &Path, from: i64, to: i64, key: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut text = String::new();
    for t in from..to {
        text.push_str(&format!(
            "{{\"key\":\"{key}\",\"ts\":{},\"value\":1}}\n",
            t * 100
        ));
    }
    f.write_all(text.as_bytes()).unwrap();
}

/// Polls `stats` until `ok` holds of a snapshot (or fails after 20 s).
fn wait_for(stats: &Stats, what: &str, ok: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
    let started = Instant::now();
    loop {
        let s = stats.snapshot();
        if ok(&s) {
            return s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_slow_partition_is_named_as_holding_the_watermark_until_it_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let (p0, p1) = (dir.join("p0.jsonl"), dir.join("p1.jsonl"));
    append(&p0, 0, 50, "a");
    append(&p1, 0, 50, "b");
    append(&p1, 50, 51, "b");
    let spec: JobSpec = toml::from_str(&format!(
        "input = {:?}\nwindow = \"tumbling:1s\"\nfollow = true\noutput = {:?}\n",
        dir.display().to_string(),
        tmp.path().join("out.jsonl").display().to_string()
    ))
    .unwrap();
    let job = spec.to_builder().unwrap().build().unwrap();
    let stats = Arc::new(Stats::default());
    stats.watch_oldest_window();
    let running = {
        let stats = Arc::clone(&stats);
        std::thread::spawn(move || job.run_with(stats))
    };
    // Both caught up: partition 0 is behind (4.9 s against 5.0 s).
    let s = wait_for(&stats, "both read", |s| {
        s.partitions.len() == 2 && s.partitions.iter().all(|p| p.records >= 50)
    });
    assert_eq!(s.held_by, Some(0));
    // Partition 1 goes on for 20 s of event time; partition 0 stops.
    append(&p1, 51, 250, "b");
    let s = wait_for(&stats, "partition 1 read on", |s| {
        s.partitions[1].stream_time == Some(24_900)
    });
    assert_eq!(s.held_by, Some(0), "{s:#?}");
    assert_eq!(s.watermark, Some(4_900));
    assert_eq!(s.event_time_lag_ms, Some(20_000));
    let p = &s.partitions[0];
    assert_eq!((p.partition, p.next_offset, p.records), (0, 50, 50));
    assert_eq!(p.state, PartitionState::CaughtUp);
    assert_eq!(s.partitions[1].next_offset, 250);
    // The oldest open window, [4 s, 5 s) of keys a and b, waits for
    // partition 0's watermark to go 100 ms further.
    let s = wait_for(&stats, "the oldest open window", |s| {
        s.oldest_open_window
            .as_ref()
            .is_some_and(|o| o.end == 5_000)
    });
    let o = s.oldest_open_window.clone().unwrap();
    assert_eq!((o.keys, o.held_by, o.behind_ms), (2, Some(0), Some(100)));
    // The output is held back by partition 0: nothing past 4.9 s.
    assert!(s.output_frontier.is_none_or(|f| f <= 4_900), "{s:#?}");
    // Partition 0 catches up: the lag goes to zero, partition 0 (lower id)
    // holds the watermark on the tie.
    append(&p0, 50, 250, "a");
    let s = wait_for(&stats, "caught up", |s| s.event_time_lag_ms == Some(0));
    assert_eq!(s.watermark, Some(24_900));
    assert_eq!(s.held_by, Some(0));
    // A late record for partition 1 is counted there, once the frontier
    // passes its stream time.
    append(&p1, 10, 11, "b");
    append(&p1, 250, 260, "b");
    append(&p0, 250, 260, "a");
    wait_for(&stats, "late counted", |s| {
        s.partitions[1].late == 1 && s.late_dropped == 1
    });
    // Serializes as one plain JSON object.
    let json = serde_json::to_value(stats.snapshot()).unwrap();
    assert_eq!(json["partitions"][1]["state"], "caught_up");
    stats.request_stop();
    running.join().unwrap().unwrap();
    assert!(stats
        .snapshot()
        .partitions
        .iter()
        .all(|p| p.state == PartitionState::Ended));
}

/// GET `path` from `addr` over loopback; the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1."), "{head}");
    assert!(head.contains(" 200 "), "{head}");
    body.to_owned()
}

#[test]
fn metrics_addr_serves_every_partition_watermark_during_a_follow_run() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    for p in 0..3 {
        append(
            &dir.join(format!("p{p}.jsonl")),
            0,
            20 + p,
            &format!("k{p}"),
        );
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["run", "--follow", "--window", "tumbling:1s", "--quiet"])
        .arg("--input")
        .arg(&dir)
        .arg("--output")
        .arg(tmp.path().join("out.jsonl"))
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
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
    let started = Instant::now();
    let body = loop {
        let body = http_get(&addr, "/metrics");
        if body.contains("tidemark_partition_watermark_seconds{partition=\"2\"} 2.1")
            && body.contains("tidemark_oldest_open_window_end_seconds")
        {
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Every partition's watermark, in seconds of event time.
    for (p, w) in [(0, "1.9"), (1, "2.0"), (2, "2.1")] {
        let want = format!("tidemark_partition_watermark_seconds{{partition=\"{p}\"}} {w}\n");
        assert!(body.contains(&want), "{want}{body}");
    }
    assert!(body.contains("tidemark_records_total 63\n"), "{body}");
    assert!(
        body.contains("tidemark_oldest_open_window_end_seconds 2.0\n"),
        "{body}"
    );
    assert!(
        body.contains("tidemark_watermark_held_by{partition=\"0\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("tidemark_partition_state{partition=\"1\",state=\"caught_up\"} 1\n"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
}

#[test]
fn the_stats_log_is_the_same_for_1_and_3_workers_and_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |workers: &str, name: &str| -> (Vec<serde_json::Value>, String) {
        let path = tmp.path().join(name);
        let summary = tmp.path().join(format!("{name}.summary.json"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["run", "--input"])
            .arg("gen:events=60000,keys=200,partitions=4,late-frac=0.03,late-extra=3s,disorder=200ms")
            .args(["--window", "sliding:2s/500ms", "--lateness", "1s", "--delay", "100ms"])
            .args(["--stats-every", "1s", "--output", "/dev/null", "--quiet"])
            .args(["--workers", workers, "--batch-size", if workers == "1" { "1024" } else { "37" }])
            .arg("--stats")
            .arg(&path)
            .arg("--summary-json")
            .arg(&summary)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                // The wall-clock part is the only one allowed to differ.
                assert!(v["wall"]["elapsed_ms"].is_u64(), "{l}");
                v.as_object_mut().unwrap().remove("wall");
                v
            })
            .collect();
        (lines, std::fs::read_to_string(summary).unwrap())
    };
    let (one, summary) = run("1", "one");
    let (again, _) = run("1", "again");
    let (three, _) = run("3", "three");
    assert_eq!(one, again);
    assert_eq!(one, three);
    // A line per second of stream time (60 000 events at 1 per ms: 60 s),
    // then the end.
    assert!((59..=62).contains(&one.len()), "{} lines", one.len());
    let ats: Vec<i64> = one.iter().filter_map(|l| l["at"].as_i64()).collect();
    assert!(ats.windows(2).all(|w| w[1] - w[0] == 1_000), "{ats:?}");
    for l in &one[..one.len() - 1] {
        let at = l["at"].as_i64().unwrap();
        // Every record counted has a stream time below the cut; the
        // partition holding the watermark has the smallest.
        let parts = l["partitions"].as_array().unwrap();
        assert!(parts
            .iter()
            .all(|p| p["stream_time"].as_i64().unwrap() < at));
        let min = parts.iter().map(|p| p["watermark"].as_i64().unwrap()).min();
        assert_eq!(l["watermark"].as_i64(), min);
    }
    // The last line has the run's totals.
    let last = one.last().unwrap();
    assert!(last["at"].is_null());
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    for field in ["records", "late_dropped", "late_applied"] {
        assert_eq!(last[field], summary[field], "{field}");
    }
    assert!(last["late_dropped"].as_u64().unwrap() > 0);
    let offsets: u64 = last["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["next_offset"].as_u64().unwrap())
        .sum();
    assert_eq!(offsets, 60_000);
}

#[test]
fn a_partition_state_is_named_as_it_serializes() {
    for state in [
        PartitionState::Reading,
        PartitionState::CaughtUp,
        PartitionState::Idle,
        PartitionState::Ended,
    ] {
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            format!("\"{}\"", state.name())
        );
    }
}
