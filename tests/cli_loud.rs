//! The loud defaults of `tidemark run`, through the binary: dead letters
//! without a file are shown on standard error and counted in the summary;
//! a run whose lines are mostly bad fails (exit 1) with a hint naming the
//! likely cause (wrong field name, time format, format, header); late
//! records without a file and records in no window are counted in the
//! summary.
//!
//! Run with `cargo test --test cli_loud`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

struct Run {
    out: Output,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
    /// Asserts the exit code and that standard error holds every needle.
    fn expect(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code(), Some(code), "{}", self.describe());
        for needle in needles {
            assert!(
                self.stderr().contains(needle),
                "missing {needle:?} in\n{}",
                self.describe()
            );
        }
        assert!(!self.stderr().contains("panicked"), "{}", self.describe());
    }
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    Run {
        out: bin()
            .current_dir(dir)
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tidemark starts"),
    }
}

fn json_line(key: &str, ts: i64, value: i64) -> String {
    format!("{{\"key\":\"{key}\",\"ts\":{ts},\"value\":{value}}}\n")
}

/// 20 good lines, with a bad line after every third from offset 2 on:
/// bad lines at offsets 2, 6, 10, ... (7 of them).
fn mixed() -> (String, Vec<u64>) {
    let (mut text, mut bad) = (String::new(), Vec::new());
    let mut offset = 0u64;
    for i in 0..20 {
        text.push_str(&json_line("a", 100 * i, 1));
        offset += 1;
        if i % 3 == 1 {
            text.push_str(&format!("broken line {offset}\n"));
            bad.push(offset);
            offset += 1;
        }
    }
    (text, bad)
}

#[test]
fn dead_letters_without_a_file_are_shown_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let (text, bad) = mixed();
    assert_eq!(bad.len(), 7);
    fs::write(tmp.path().join("in.jsonl"), text).unwrap();
    let base = ["--input", "in.jsonl", "--window", "tumbling:1s"];

    let shown = run_in(tmp.path(), &base);
    let mut needles: Vec<String> = bad[..5]
        .iter()
        .map(|o| {
            format!(
                "tidemark: bad line at in.jsonl:{} (partition 0, offset {o}): invalid json: expected value at line 1 column 1\n    broken line {o}\n",
                o + 1
            )
        })
        .collect();
    needles
        .push("tidemark: more bad lines are not shown; --dead-letter FILE keeps them all".into());
    needles.push(
        "  dead letters: 7 lines could not be decoded (the first 5 shown above); --dead-letter FILE keeps them"
            .into(),
    );
    shown.expect(0, &needles.iter().map(String::as_str).collect::<Vec<_>>());
    let err = shown.stderr();
    for o in &bad[5..] {
        assert!(!err.contains(&format!("offset {o})")), "{err}");
    }
    // Shown in offset order, before the summary.
    let at = |n: &str| err.find(n).unwrap();
    assert!(at(&needles[0]) < at(&needles[4]) && at(&needles[4]) < at("tidemark: 20 records"));

    // With --quiet the bad lines are still shown; the summary is not.
    let quiet = run_in(tmp.path(), &[&base[..], &["--quiet"]].concat());
    quiet.expect(0, &[&needles[0], &needles[5]]);
    assert!(
        !quiet.stderr().contains("dead letters:"),
        "{}",
        quiet.describe()
    );

    // With a file they go there, not to standard error.
    let filed = run_in(
        tmp.path(),
        &[&base[..], &["--dead-letter", "dead.jsonl"]].concat(),
    );
    filed.expect(
        0,
        &["  dead letters: 7 lines could not be decoded, written to dead.jsonl"],
    );
    assert!(
        !filed.stderr().contains("bad line at"),
        "{}",
        filed.describe()
    );
    let dead = fs::read_to_string(tmp.path().join("dead.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 7, "{dead}");
    assert_eq!(filed.stdout(), shown.stdout(), "the results do not change");
    assert_eq!(shown.stdout().lines().count(), 2, "{}", shown.describe());
}

#[test]
fn a_run_of_only_bad_lines_fails_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let text: String = (0..3)
        .map(|i| format!("{{\"user\":\"u{i}\",\"ts\":{},\"amount\":5}}\n", 1000 * i))
        .collect();
    fs::write(tmp.path().join("in.jsonl"), text).unwrap();
    let base = ["--input", "in.jsonl", "--window", "tumbling:1s"];
    // No --key: every record lacks the default "key".
    run_in(tmp.path(), &base).expect(
        1,
        &[
            "error: 3 of 3 lines read (100%) could not be decoded, more than --max-bad-ratio 0.5 allows\n",
            "hint: the records have no field \"key\" (--key, the default): the line at in.jsonl:1 (partition 0, offset 0) has the fields \"amount\", \"ts\", \"user\"; perhaps --key user\n",
            "  first bad line, at in.jsonl:1 (partition 0, offset 0): missing field \"key\"\n",
        ],
    );
    // The same in quiet mode: the failure is not a summary.
    run_in(tmp.path(), &[&base[..], &["--quiet"]].concat())
        .expect(1, &["error: 3 of 3 lines read (100%) could not be decoded"]);
    // Allowed: it runs, writes nothing and says why.
    let allowed = run_in(tmp.path(), &[&base[..], &["--max-bad-ratio", "1"]].concat());
    allowed.expect(0, &["dead letters: 3 lines could not be decoded"]);
    assert!(allowed.stdout().is_empty());
    // With the key named, the value field is the one missing.
    run_in(tmp.path(), &[&base[..], &["--key", "user"]].concat()).expect(
        1,
        &["hint: the records have no field \"value\" (--value, the default): the line at in.jsonl:1 (partition 0, offset 0) has the fields \"amount\", \"ts\", \"user\"; perhaps --value amount\n"],
    );
    // With both, it works.
    let good = run_in(
        tmp.path(),
        &[&base[..], &["--key", "user", "--value", "amount", "-q"]].concat(),
    );
    good.expect(0, &[]);
    assert_eq!(good.stdout().lines().count(), 3);
}

#[test]
fn standard_input_is_diagnosed_from_the_lines_the_run_saw() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = bin()
        .current_dir(tmp.path())
        .args(["run", "--input", "-", "--window", "tumbling:1s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"{\"user\":\"a\",\"ts\":1000,\"value\":1}\n{\"user\":\"b\",\"ts\":1500,\"value\":2}\n")
            .unwrap();
    }
    let r = Run {
        out: child.wait_with_output().unwrap(),
    };
    r.expect(
        1,
        &[
            "tidemark: bad line at <stdin>:2 (partition 0, offset 1): missing field \"key\"\n",
            "error: 2 of 2 lines read (100%) could not be decoded",
            "hint: the records have no field \"key\" (--key, the default): the line at <stdin>:1 (partition 0, offset 0) has the fields \"ts\", \"user\", \"value\"; perhaps --key user\n",
        ],
    );
}

#[test]
fn the_ratio_is_checked_against_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    // 1 bad line of 4: 25%.
    let text = [
        json_line("a", 1000, 1),
        "oops\n".into(),
        json_line("a", 1100, 1),
        json_line("a", 1200, 1),
    ]
    .concat();
    fs::write(tmp.path().join("in.jsonl"), text).unwrap();
    let base = ["--input", "in.jsonl", "--window", "tumbling:1s", "-q"];
    run_in(tmp.path(), &base).expect(0, &["bad line at in.jsonl:2 (partition 0, offset 1)"]);
    for (limit, code) in [("0.25", 0), ("25%", 0), ("0.2", 1), ("0", 1), ("1", 0)] {
        let r = run_in(
            tmp.path(),
            &[&base[..], &["--max-bad-ratio", limit]].concat(),
        );
        assert_eq!(
            r.code(),
            Some(code),
            "--max-bad-ratio {limit}: {}",
            r.describe()
        );
        // The results are written either way.
        assert!(r.stdout().contains("\"count\":3"), "{}", r.describe());
    }
    run_in(tmp.path(), &[&base[..], &["--max-bad-ratio", "0.2"]].concat()).expect(
        1,
        &["error: 1 of 4 lines read (25%) could not be decoded, more than --max-bad-ratio 0.2 allows"],
    );
    // As a job-file key, a number or a percentage.
    fs::write(tmp.path().join("job.toml"), "max-bad-ratio = \"10%\"\n").unwrap();
    run_in(tmp.path(), &[&base[..], &["--job", "job.toml"]].concat())
        .expect(1, &["more than --max-bad-ratio 0.1 allows"]);
    // With --on-bad-record fail the first bad line stops the run instead.
    run_in(
        tmp.path(),
        &[
            &base[..],
            &["--on-bad-record", "fail", "--max-bad-ratio", "0"],
        ]
        .concat(),
    )
    .expect(
        1,
        &["error: bad record at in.jsonl:2 (partition 0, offset 1): "],
    );
}

#[test]
fn rfc3339_times_read_as_epoch_ms_name_the_time_format() {
    let tmp = tempfile::tempdir().unwrap();
    let text: String = (0..4)
        .map(|i| format!("{{\"key\":\"a\",\"ts\":\"2026-11-01T10:00:0{i}Z\",\"value\":1}}\n"))
        .collect();
    fs::write(tmp.path().join("in.jsonl"), text).unwrap();
    let base = ["--input", "in.jsonl", "--window", "tumbling:1s"];
    run_in(tmp.path(), &base).expect(
        1,
        &[
            "error: 4 of 4 lines read (100%) could not be decoded",
            "hint: the times in field \"ts\" (--time, the default) are RFC 3339 text (\"2026-11-01T10:00:00Z\"), but they are read with --time-format epoch-ms (the default): add --time-format rfc3339\n",
        ],
    );
    let fixed = run_in(
        tmp.path(),
        &[&base[..], &["--time-format", "rfc3339", "-q"]].concat(),
    );
    fixed.expect(0, &[]);
    assert_eq!(fixed.stdout().lines().count(), 4);
    // The other way round: epoch milliseconds read as RFC 3339.
    fs::write(
        tmp.path().join("ms.jsonl"),
        json_line("a", 1_793_610_000_000, 1),
    )
    .unwrap();
    run_in(
        tmp.path(),
        &["--input", "ms.jsonl", "--window", "tumbling:1s", "--time-format", "rfc3339"],
    )
    .expect(
        1,
        &["hint: the times in field \"ts\" (--time, the default) are numbers, milliseconds since 1970 by their size, but they are read with --time-format rfc3339: use --time-format epoch-ms\n"],
    );
}

#[test]
fn the_wrong_format_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let json: String = (0..3).map(|i| json_line("a", 1000 + i, 1)).collect();
    fs::write(tmp.path().join("in.jsonl"), &json).unwrap();
    run_in(
        tmp.path(),
        &[
            "--input",
            "in.jsonl",
            "--window",
            "tumbling:1s",
            "--format",
            "csv",
            "--key",
            "0",
            "--time",
            "1",
            "--value",
            "2",
        ],
    )
    .expect(
        1,
        &["hint: the lines are JSON objects, but they are read as CSV: use --format jsonl\n"],
    );
    // A .csv name makes CSV the default format: the hint says so.
    fs::write(tmp.path().join("events.csv"), &json).unwrap();
    run_in(
        tmp.path(),
        &[
            "--input", "events.csv", "--window", "tumbling:1s", "--key", "0", "--time", "1",
            "--value", "2",
        ],
    )
    .expect(
        1,
        &["hint: the lines are JSON objects, but they are read as CSV (the input's file names end in .csv): use --format jsonl\n"],
    );
    // CSV read as JSON lines.
    fs::write(
        tmp.path().join("rows.txt"),
        "a,1000,1\nb,1200,2\nc,1300,3\n",
    )
    .unwrap();
    run_in(tmp.path(), &["--input", "rows.txt", "--window", "tumbling:1s"]).expect(
        1,
        &["hint: the lines look like CSV, but they are read as JSON lines: use --format csv (and --header if the first line names the columns)\n"],
    );
}

#[test]
fn csv_headers_missing_or_taken_for_data_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    for p in 0..2 {
        fs::write(
            dir.join(format!("part-{p}.csv")),
            format!("key,ts,value\na,{},1\nb,{},2\n", 1000 + p, 1500 + p),
        )
        .unwrap();
    }
    let columns = ["--key", "0", "--time", "1", "--value", "2"];
    let base = [
        &[
            "--input",
            "in",
            "--window",
            "tumbling:1s",
            "--format",
            "csv",
        ][..],
        &columns,
    ]
    .concat();
    // Two header lines of six: shown, but within the default limit.
    let r = run_in(tmp.path(), &base);
    r.expect(
        0,
        &[
            "tidemark: bad line at in/part-0.csv:1 (partition 0, offset 0): invalid time \"ts\" for format epoch-ms in field \"1\"\n    key,ts,value\n",
            "tidemark: bad line at in/part-1.csv:1 (partition 1, offset 0):",
        ],
    );
    run_in(tmp.path(), &[&base[..], &["--max-bad-ratio", "0.25"]].concat()).expect(
        1,
        &[
            "error: 2 of 6 lines read (33%) could not be decoded, more than --max-bad-ratio 0.25 allows",
            "hint: the first line of \"in/part-0.csv\" names the columns (\"key\", \"ts\", \"value\"), but without --header it is read as a record: add --header, then --key, --time and --value name columns\n",
        ],
    );
    let fixed = run_in(
        tmp.path(),
        &[
            "--input",
            "in",
            "--window",
            "tumbling:1s",
            "--format",
            "csv",
            "--header",
            "-q",
        ],
    );
    fixed.expect(0, &[]);
    assert_eq!(fixed.stdout().lines().count(), 2, "{}", fixed.describe());
    assert!(fixed.stderr().is_empty(), "{}", fixed.describe());

    // --header on files without one: the first record is taken for names.
    fs::write(
        tmp.path().join("rows.csv"),
        "a,1000,1\nb,1200,2\nc,1300,3\n",
    )
    .unwrap();
    run_in(tmp.path(), &["--input", "rows.csv", "--window", "tumbling:1s", "--header"]).expect(
        1,
        &["hint: with --header the first line of \"rows.csv\" (a,1000,1) is taken for the column names, but it looks like a record: drop --header and give --key, --time and --value as column numbers (0, 1, ...)\n"],
    );

    // A header whose names differ from the job's.
    fs::write(
        tmp.path().join("named.csv"),
        "user,ts,value\na,1000,1\nb,1200,2\n",
    )
    .unwrap();
    run_in(tmp.path(), &["--input", "named.csv", "--window", "tumbling:1s", "--header"]).expect(
        1,
        &["hint: the records have no field \"key\" (--key, the default): the header of \"named.csv\" names the columns \"user\", \"ts\", \"value\"; perhaps --key user\n"],
    );
}

#[test]
fn a_followed_run_of_bad_lines_stops_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let text: String = (0..150)
        .map(|i| format!("{{\"user\":\"a\",\"ts\":{},\"value\":1}}\n", 100 * i))
        .collect();
    fs::write(dir.join("part-0.jsonl"), text).unwrap();
    let mut child = bin()
        .current_dir(tmp.path())
        .args([
            "run",
            "--input",
            "in",
            "--follow",
            "--window",
            "tumbling:1s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("a followed run of bad lines is still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = Run {
        out: child.wait_with_output().unwrap(),
    };
    r.expect(
        1,
        &[
            "tidemark: 150 of the first 150 lines read could not be decoded (more than --max-bad-ratio 0.5): stopping\n",
            "error: 150 of 150 lines read (100%) could not be decoded, more than --max-bad-ratio 0.5 allows; the run was stopped, its outputs hold every result the watermark completed",
            "hint: the records have no field \"key\" (--key, the default)",
        ],
    );
}

#[test]
fn records_in_no_window_and_late_records_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    // sliding:1s/2s covers [0, 1s), [2s, 3s), ...: 1500 and 3500 fall in gaps.
    let text: String = [500, 1500, 2500, 3500]
        .iter()
        .map(|&t| json_line("a", t, 1))
        .collect();
    fs::write(tmp.path().join("in.jsonl"), text).unwrap();
    let r = run_in(
        tmp.path(),
        &["--input", "in.jsonl", "--window", "sliding:1s/2s"],
    );
    r.expect(
        0,
        &["  records in no window: 2 (sliding:1s/2s leaves gaps: each 2s slide, windows cover only 1s, so a record between two windows is in none; a slide at most the size places every record)\n"],
    );
    assert_eq!(r.stdout().lines().count(), 2, "{}", r.describe());
    let covered = run_in(
        tmp.path(),
        &["--input", "in.jsonl", "--window", "sliding:2s/1s"],
    );
    covered.expect(0, &[]);
    assert!(
        !covered.stderr().contains("no window"),
        "{}",
        covered.describe()
    );

    // A record too late, without --late: counted, with the flag to keep it.
    fs::write(
        tmp.path().join("late.jsonl"),
        [json_line("a", 1500, 1), json_line("a", 500, 2)].concat(),
    )
    .unwrap();
    let late = ["--input", "late.jsonl", "--window", "tumbling:1s"];
    run_in(tmp.path(), &late).expect(
        0,
        &["  late records: 1 dropped as too late for their window (see --delay and --lateness); --late FILE keeps them\n"],
    );
    let kept = run_in(
        tmp.path(),
        &[&late[..], &["--late", "late-out.jsonl"]].concat(),
    );
    kept.expect(0, &["late dropped 1"]);
    assert!(
        !kept.stderr().contains("late records:"),
        "{}",
        kept.describe()
    );
}
