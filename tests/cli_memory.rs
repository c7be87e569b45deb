//! Memory stays bounded by open window state plus a fixed buffer per
//! partition, whatever the input: the binary runs under an address-space
//! limit (`ulimit -v`) on inputs that used to make it buffer without bound.
//!
//! Run with `cargo test --test cli_memory`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Runs `tidemark run ARGS` in `dir` under a limit of `kib` KiB of address
/// space; returns (success, stderr).
fn run_limited(dir: &Path, kib: u64, args: &[&str]) -> (bool, String) {
    let bin = env!("CARGO_BIN_EXE_tidemark");
    let script = format!("ulimit -v {kib}; exec \"$0\" run \"$@\"");
    let out = Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg(script)
        .arg(bin)
        .args(args)
        .output()
        .expect("sh starts");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn partitions_hours_apart_on_one_worker_stay_within_a_memory_limit() {
    // Two partitions 28 h of event time apart, one worker: the later one
    // used to be read in full and buffered while the earlier one held the
    // watermark back (hundreds of MB for a million records).
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(&input).unwrap();
    for (p, base) in [
        (0, 1_700_000_000_000i64),
        (1, 1_700_000_000_000 + 28 * 3_600_000),
    ] {
        let mut f = std::io::BufWriter::new(
            fs::File::create(input.join(format!("part-{p}.jsonl"))).unwrap(),
        );
        for i in 0..250_000i64 {
            writeln!(
                f,
                "{{\"key\":\"k{}\",\"ts\":{},\"value\":1}}",
                i % 1000,
                base + i * 100
            )
            .unwrap();
        }
    }
    let (ok, stderr) = run_limited(
        tmp.path(),
        64 * 1024,
        &[
            "--input",
            "in",
            "--window",
            "tumbling:1s",
            "--output",
            "out.jsonl",
        ],
    );
    assert!(ok, "failed under a 64 MiB address-space limit: {stderr}");
    assert!(stderr.contains("500000 records"), "{stderr}");
    let rows = fs::read_to_string(tmp.path().join("out.jsonl")).unwrap();
    // 25 000 s of event time per partition, 1000 keys: a row per key that
    // had a record in each second.
    assert_eq!(rows.lines().count(), 2 * 25_000 * 10);
}

#[test]
fn huge_sliding_updates_stay_within_a_memory_limit() {
    // Sliding 1 d / 1 s in emit mode `updates`: every record corrects
    // 86 400 windows, and one activation used to hold all of its rows (the
    // process reached 24 GB). Rows now go to the sink in bounded chunks and
    // the window operator waits for the sink to write them. The run is
    // endless at this size; it must still be running, within the limit,
    // after a few seconds.
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_tidemark");
    let mut child = Command::new("sh")
        .current_dir(tmp.path())
        .arg("-c")
        .arg("ulimit -v 300000; exec \"$0\" run \"$@\"")
        .arg(bin)
        .args([
            "--input",
            "gen:events=20000,keys=1,rate=0.5",
            "--window",
            "sliding:1d/1s",
            "--emit",
            "updates",
            "--output",
            "out.jsonl",
            "-q",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sh starts");
    std::thread::sleep(std::time::Duration::from_secs(5));
    let status = child.try_wait().unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        status.is_none(),
        "ended early ({status:?}), probably out of memory: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = fs::metadata(tmp.path().join("out.jsonl"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        written > 1_000_000,
        "rows are written while it runs: {written} bytes"
    );
}

#[test]
fn a_partition_of_bad_lines_does_not_hold_its_dead_letters_in_memory() {
    // Partition 0 starts with 300 000 lines that cannot be decoded: it used
    // to hold the frontier at its start, so all of its dead letters waited
    // in memory (and the other partition's records with them).
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    fs::create_dir_all(&input).unwrap();
    let mut bad = std::io::BufWriter::new(fs::File::create(input.join("part-0.jsonl")).unwrap());
    for i in 0..300_000 {
        writeln!(bad, "this line is not json at all {i}").unwrap();
    }
    drop(bad);
    let mut good = std::io::BufWriter::new(fs::File::create(input.join("part-1.jsonl")).unwrap());
    for i in 0..300_000i64 {
        writeln!(
            good,
            "{{\"key\":\"k{}\",\"ts\":{},\"value\":1}}",
            i % 100,
            1_700_000_000_000 + i * 10
        )
        .unwrap();
    }
    drop(good);
    let (ok, stderr) = run_limited(
        tmp.path(),
        64 * 1024,
        &[
            "--input",
            "in",
            "--window",
            "tumbling:1s",
            "--output",
            "out.jsonl",
            "--dead-letter",
            "dead.jsonl",
            "--max-bad-ratio",
            "1",
        ],
    );
    assert!(ok, "failed under a 64 MiB address-space limit: {stderr}");
    let dead = fs::read_to_string(tmp.path().join("dead.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 300_000);
    // In offset order.
    assert!(dead.lines().next().unwrap().contains("\"offset\":0,"));
    assert!(dead.lines().last().unwrap().contains("\"offset\":299999,"));
}

#[test]
fn a_table_with_many_updates_per_key_stays_within_a_memory_limit() {
    // 300 000 table updates on 50 keys over 300 s, beside a stream over
    // the same time: a table keeps per key only the versions a lookup can
    // still need (those of the last delay plus history, and the latest
    // before them), so its size follows the live keys, not the updates.
    let tmp = tempfile::tempdir().unwrap();
    let stream = tmp.path().join("clicks");
    let users = tmp.path().join("users");
    fs::create_dir_all(&stream).unwrap();
    fs::create_dir_all(&users).unwrap();
    let mut f = std::io::BufWriter::new(fs::File::create(stream.join("part-0.jsonl")).unwrap());
    for i in 0..50_000i64 {
        writeln!(f, "{{\"user\":\"u{}\",\"ts\":{}}}", i % 50, i * 6).unwrap();
    }
    drop(f);
    let mut f = std::io::BufWriter::new(fs::File::create(users.join("part-0.jsonl")).unwrap());
    for i in 0..300_000i64 {
        writeln!(
            f,
            "{{\"user\":\"u{}\",\"ts\":{},\"country\":\"c{}\"}}",
            i % 50,
            i,
            i % 7
        )
        .unwrap();
    }
    drop(f);
    let (ok, stderr) = run_limited(
        tmp.path(),
        64 * 1024,
        &[
            "--input",
            "clicks",
            "--window",
            "tumbling:1s",
            "--key",
            "country",
            "--agg",
            "count",
            "--table",
            r#"name = "users", input = "users", key = "user", fields = ["country"]"#,
            "--enrich",
            r#"table = "users", on = "user""#,
            "--output",
            "out.jsonl",
            "--summary-json",
            "summary.json",
        ],
    );
    assert!(ok, "failed under a 64 MiB address-space limit: {stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.path().join("summary.json")).unwrap())
            .unwrap();
    let table = &summary["tables"][0];
    assert_eq!(table["records"], 300_000, "{summary}");
    assert_eq!(table["lookups"], 50_000, "{summary}");
    let peak = table["peak_versions"].as_u64().unwrap();
    // One update per key every 50 ms, kept for about the window (1 s)
    // plus the delays: tens, against 6 000 without trimming.
    assert!(
        (1..200).contains(&peak),
        "peak versions per key {peak}: {summary}"
    );
    let rows = fs::read_to_string(tmp.path().join("out.jsonl")).unwrap();
    let counted: u64 = rows
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(counted, 50_000);
}
