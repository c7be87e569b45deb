//! Every option of `tidemark run` reaches the job, through the binary.
//!
//! For each job option there is a case: a small input where the option
//! changes the output or the outcome, and a check for its effect. The
//! check must fail without the option, pass with the flag, pass with the
//! same key in a TOML job file, fail with another value in the job file,
//! and pass again when the flag is given over that job file (flags
//! override the job file). A case's file named `-` is not written: it is
//! piped to the run's standard input. `--follow` and `--idle-after` are tested on
//! running processes, as flags, keys and flags over keys, by polling the
//! output for the rows a few records complete (these need the engine to
//! flush outputs while following), and with thousands of rows, more than
//! the output buffer holds. `--quiet` and the cluster flags, which are not
//! job keys, are tested on their own, with `--connect-timeout` where it is
//! refused; its effect is tested in `tests/cluster.rs`.
//!
//! Run with `cargo test --test cli_flags`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

/// The outcome of one run, and the directory it ran in.
struct Run {
    dir: PathBuf,
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
    fn ok(&self) -> bool {
        self.out.status.success()
    }
    /// A file the run wrote, empty if absent.
    fn file(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
    fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

/// One job option: the input it needs (a file named `-` is standard
/// input), the flags every run gets, the option as a flag, as a job-file
/// key, another value as a job-file key, and the effect of the option.
struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    base: &'static [&'static str],
    flag: &'static [&'static str],
    key: &'static str,
    other: &'static str,
    check: fn(&Run) -> bool,
}

const LATE: &str =
    "{\"key\":\"a\",\"ts\":1500,\"value\":1}\n{\"key\":\"a\",\"ts\":500,\"value\":2}\n";
/// Records whose stream time passes 2 s before the end.
const SPAN: &str = "{\"key\":\"a\",\"ts\":1500,\"value\":1}\n{\"key\":\"a\",\"ts\":500,\"value\":2}\n{\"key\":\"a\",\"ts\":2600,\"value\":1}\n";
const WINDOW_0: &str = "\"start\":0,\"end\":1000,";
const CSV: &str = "key,ts,value\na,1000,1\na,1500,2\n";
const CSV_ROW: &str =
    "{\"key\":\"a\",\"start\":1000,\"end\":2000,\"count\":2,\"sum\":3,\"kind\":\"final\"}";
const BAD: &str = "{\"key\":\"a\",\"ts\":1000,\"value\":1}\nnot json\n";
/// One record stamped in 2100 among records of 1970.
const FUTURE: &str = "{\"key\":\"a\",\"ts\":1000,\"value\":1}\n{\"key\":\"a\",\"ts\":4102444800000,\"value\":1}\n{\"key\":\"a\",\"ts\":1500,\"value\":1}\n{\"key\":\"a\",\"ts\":2500,\"value\":1}\n";
/// Lines of partitions 0, 1 and 2 of one input, by a field `p`.
const THREE_PARTITIONS: &str = "{\"p\":0,\"key\":\"a\",\"ts\":1000,\"value\":1}\n{\"p\":1,\"key\":\"b\",\"ts\":1000,\"value\":1}\n{\"p\":2,\"key\":\"c\",\"ts\":1000,\"value\":1}\n{\"p\":0,\"key\":\"a\",\"ts\":1500,\"value\":1}\n";
/// Lines of partitions 0 and 5 of one file, by a field `p`.
const PARTITION_5: &str = "{\"p\":0,\"key\":\"a\",\"ts\":1000,\"value\":1}\n{\"p\":0,\"key\":\"a\",\"ts\":1500,\"value\":1}\n{\"p\":5,\"key\":\"b\",\"ts\":1000,\"value\":1}\n";

const CASES: &[Case] = &[
    Case {
        name: "input",
        files: &[
            ("a.jsonl", "{\"key\":\"from-a\",\"ts\":1,\"value\":1}\n"),
            ("b.jsonl", "{\"key\":\"from-b\",\"ts\":1,\"value\":1}\n"),
        ],
        base: &["--window", "tumbling:1s"],
        flag: &["--input", "a.jsonl"],
        key: "input = \"a.jsonl\"",
        other: "input = \"b.jsonl\"",
        check: |r| r.ok() && r.stdout().contains("\"key\":\"from-a\""),
    },
    Case {
        // `-` in a job file is standard input too, not a file beside it.
        name: "input-stdin",
        files: &[
            ("-", "{\"key\":\"from-stdin\",\"ts\":1,\"value\":1}\n"),
            ("b.jsonl", "{\"key\":\"from-b\",\"ts\":1,\"value\":1}\n"),
        ],
        base: &["--window", "tumbling:1s"],
        flag: &["--input", "-"],
        key: "input = \"-\"",
        other: "input = \"b.jsonl\"",
        check: |r| r.ok() && r.stdout().contains("\"key\":\"from-stdin\""),
    },
    Case {
        // The run's directory holds a.log (and job.toml): no file has a
        // format's extension.
        name: "partition-glob",
        files: &[("a.log", "{\"key\":\"from-log\",\"ts\":1,\"value\":1}\n")],
        base: &["--input", ".", "--window", "tumbling:1s"],
        flag: &["--partition-glob", "*.log"],
        key: "partition-glob = \"*.log\"",
        other: "partition-glob = \"*.txt\"",
        check: |r| r.ok() && r.stdout().contains("\"key\":\"from-log\""),
    },
    Case {
        name: "format",
        files: &[("in.txt", CSV)],
        base: &["--input", "in.txt", "--window", "tumbling:1s", "--header"],
        flag: &["--format", "csv"],
        key: "format = \"csv\"",
        other: "format = \"jsonl\"",
        check: |r| r.ok() && r.stdout().contains(CSV_ROW),
    },
    Case {
        name: "header",
        files: &[("in.csv", CSV)],
        base: &["--input", "in.csv", "--window", "tumbling:1s"],
        flag: &["--header"],
        key: "header = true",
        other: "header = false",
        check: |r| r.ok() && r.stdout().contains(CSV_ROW),
    },
    Case {
        name: "key",
        files: &[("in.jsonl", "{\"user\":\"u1\",\"ts\":1,\"value\":1}\n")],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--key", "user"],
        key: "key = \"user\"",
        other: "key = \"key\"",
        check: |r| r.ok() && r.stdout().contains("\"key\":\"u1\""),
    },
    Case {
        name: "time",
        files: &[("in.jsonl", "{\"key\":\"a\",\"at\":1,\"value\":1}\n")],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--time", "at"],
        key: "time = \"at\"",
        other: "time = \"ts\"",
        check: |r| r.ok() && r.stdout().contains(WINDOW_0),
    },
    Case {
        name: "value",
        files: &[("in.jsonl", "{\"key\":\"a\",\"ts\":1,\"amount\":5}\n")],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--value", "amount"],
        key: "value = \"amount\"",
        other: "value = \"value\"",
        check: |r| r.ok() && r.stdout().contains("\"sum\":5"),
    },
    Case {
        // One file, two partitions: b's record is late in a single
        // partition behind a's, on time in a partition of its own.
        name: "partition-field",
        files: &[(
            "in.jsonl",
            "{\"p\":0,\"key\":\"a\",\"ts\":5000,\"value\":1}\n{\"p\":1,\"key\":\"b\",\"ts\":100,\"value\":1}\n",
        )],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--partition-field", "p"],
        key: "partition-field = \"p\"",
        other: "partition-field = \"q\"",
        check: |r| r.ok() && r.stdout().contains("\"key\":\"b\""),
    },
    Case {
        // Through a pipe on standard input: with the count, a line naming
        // partition 2 is out of range.
        name: "partition-count",
        files: &[("-", THREE_PARTITIONS)],
        base: &[
            "--input",
            "-",
            "--partition-field",
            "p",
            "--window",
            "tumbling:1s",
            "--dead-letter",
            "dead.jsonl",
        ],
        flag: &["--partition-count", "2"],
        key: "partition-count = 2",
        other: "partition-count = 3",
        check: |r| {
            r.ok()
                && r.file("dead.jsonl")
                    .contains("partition out of range: 2 (the source has 2 partitions)")
        },
    },
    Case {
        name: "max-partitions",
        files: &[("in.jsonl", PARTITION_5)],
        base: &[
            "--input",
            "in.jsonl",
            "--partition-field",
            "p",
            "--window",
            "tumbling:1s",
            "--dead-letter",
            "dead.jsonl",
        ],
        flag: &["--max-partitions", "5"],
        key: "max-partitions = 5",
        other: "max-partitions = 6",
        check: |r| {
            r.ok()
                && r.file("dead.jsonl")
                    .contains("partition out of range: 5 (at most 5 partitions")
        },
    },
    Case {
        name: "time-format",
        files: &[("in.jsonl", "{\"key\":\"a\",\"ts\":2,\"value\":1}\n")],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--time-format", "epoch-s"],
        key: "time-format = \"epoch-s\"",
        other: "time-format = \"epoch-ms\"",
        check: |r| r.ok() && r.stdout().contains("\"start\":2000,\"end\":3000,"),
    },
    Case {
        name: "window",
        files: &[("in.jsonl", "{\"key\":\"a\",\"ts\":1500,\"value\":1}\n")],
        base: &["--input", "in.jsonl"],
        flag: &["--window", "tumbling:2s"],
        key: "window = \"tumbling:2s\"",
        other: "window = \"tumbling:1s\"",
        check: |r| r.ok() && r.stdout().contains(",\"start\":0,\"end\":2000,"),
    },
    Case {
        name: "delay",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--delay", "1s"],
        key: "delay = \"1s\"",
        other: "delay = 0",
        check: |r| r.ok() && r.stdout().contains(WINDOW_0),
    },
    Case {
        name: "lateness",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--lateness", "1s"],
        key: "lateness = \"1s\"",
        other: "lateness = \"0s\"",
        check: |r| r.ok() && r.stdout().contains(WINDOW_0),
    },
    Case {
        // Without the guard the record of 2100 fires [1000, 2000) with one
        // record and makes 1500 and 2500 late.
        name: "max-future-skew",
        files: &[("in.jsonl", FUTURE)],
        base: &[
            "--input",
            "in.jsonl",
            "--window",
            "tumbling:1s",
            "--dead-letter",
            "dead.jsonl",
        ],
        flag: &["--max-future-skew", "1h"],
        key: "max-future-skew = \"1h\"",
        other: "max-future-skew = \"100000d\"",
        check: |r| {
            r.ok()
                && r.stdout().contains("\"start\":1000,\"end\":2000,\"count\":2,")
                && r.file("dead.jsonl").contains("future timestamp: 4102444800000")
        },
    },
    Case {
        name: "emit",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--emit", "updates"],
        key: "emit = \"updates\"",
        other: "emit = \"final\"",
        check: |r| r.ok() && r.stdout().contains("\"kind\":\"update\""),
    },
    Case {
        name: "agg",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--agg", "count,max"],
        key: "agg = \"count,max\"",
        other: "agg = [\"count\", \"sum\"]",
        check: |r| r.ok() && r.stdout().contains("\"count\":1,\"max\":1,"),
    },
    Case {
        // Worker counts never change the output (see `same_bytes_for_any_
        // workers_and_batch_size`); an invalid count shows the option is
        // read.
        name: "workers",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--workers", "0"],
        key: "workers = 0",
        other: "workers = 2",
        check: |r| r.code() == Some(2) && r.stderr().contains("invalid --workers"),
    },
    Case {
        name: "batch-size",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--batch-size", "0"],
        key: "batch-size = 0",
        other: "batch-size = 7",
        check: |r| r.code() == Some(2) && r.stderr().contains("batch size must be greater than 0"),
    },
    Case {
        name: "output",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--output", "results.jsonl"],
        key: "output = \"results.jsonl\"",
        other: "output = \"other.jsonl\"",
        check: |r| r.ok() && r.stdout().is_empty() && r.file("results.jsonl").contains("\"start\":1000,"),
    },
    Case {
        name: "late",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--late", "late.jsonl"],
        key: "late = \"late.jsonl\"",
        other: "late = \"other.jsonl\"",
        check: |r| r.ok() && r.file("late.jsonl").contains("\"offset\":1"),
    },
    Case {
        name: "summary-json",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--summary-json", "summary.json"],
        key: "summary-json = \"summary.json\"",
        other: "summary-json = \"other.json\"",
        check: |r| {
            r.ok()
                && serde_json::from_str::<serde_json::Value>(&r.file("summary.json"))
                    .is_ok_and(|v| v["records"].as_u64().is_some_and(|n| n > 0) && v["elapsed_seconds"].is_number())
        },
    },
    Case {
        name: "metrics-addr",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--metrics-addr", "127.0.0.1:0"],
        key: "metrics-addr = \"127.0.0.1:0\"",
        other: "metrics-addr = \"256.0.0.1:0\"",
        check: |r| r.ok() && r.stderr().contains("serving metrics on http://127.0.0.1:"),
    },
    Case {
        name: "stats",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--stats", "stats.jsonl"],
        key: "stats = \"stats.jsonl\"",
        other: "stats = \"other.jsonl\"",
        check: |r| r.ok() && r.file("stats.jsonl").contains("\"partitions\":[{\"partition\":0,"),
    },
    Case {
        name: "stats-every",
        files: &[("in.jsonl", SPAN)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s", "--stats", "stats.jsonl"],
        flag: &["--stats-every", "500ms"],
        key: "stats-every = \"500ms\"",
        other: "stats-every = \"1h\"",
        check: |r| r.ok() && r.file("stats.jsonl").contains("\"at\":2000,"),
    },
    Case {
        name: "output-time-format",
        files: &[("in.jsonl", LATE)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--output-time-format", "rfc3339"],
        key: "output-time-format = \"rfc3339\"",
        other: "output-time-format = \"epoch-ms\"",
        check: |r| {
            r.ok()
                && r.stdout().contains(
                    "\"start\":\"1970-01-01T00:00:01.000Z\",\"end\":\"1970-01-01T00:00:02.000Z\"",
                )
        },
    },
    Case {
        name: "dead-letter",
        files: &[("in.jsonl", BAD)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--dead-letter", "dead.jsonl"],
        key: "dead-letter = \"dead.jsonl\"",
        other: "dead-letter = \"other.jsonl\"",
        check: |r| r.ok() && r.file("dead.jsonl").contains("\"raw\":\"not json\""),
    },
    Case {
        name: "on-bad-record",
        files: &[("in.jsonl", BAD)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--on-bad-record", "fail"],
        key: "on-bad-record = \"fail\"",
        other: "on-bad-record = \"skip\"",
        check: |r| {
            r.code() == Some(1)
                && r.stderr().contains("error: bad record at in.jsonl:2 (partition 0, offset 1): ")
        },
    },
    Case {
        // BAD holds one bad line of two: the default (0.5) accepts it.
        name: "max-bad-ratio",
        files: &[("in.jsonl", BAD)],
        base: &["--input", "in.jsonl", "--window", "tumbling:1s"],
        flag: &["--max-bad-ratio", "0.4"],
        key: "max-bad-ratio = 0.4",
        other: "max-bad-ratio = \"90%\"",
        check: |r| {
            r.code() == Some(1)
                && r.stderr().contains(
                    "1 of 2 lines read (50%) could not be decoded, more than --max-bad-ratio 0.4 allows",
                )
        },
    },
];

fn run_in(dir: &Path, args: &[&str], job: Option<&str>) -> Run {
    run_piped(dir, &[&["--quiet"][..], args].concat(), job, None)
}

/// `tidemark run ARGS` in `dir`, with `job` as its job file and `stdin`
/// piped to its standard input (else none).
fn run_piped(dir: &Path, args: &[&str], job: Option<&str>, stdin: Option<&str>) -> Run {
    let mut cmd = bin();
    cmd.current_dir(dir).arg("run").args(args);
    if let Some(text) = job {
        fs::write(dir.join("job.toml"), text).unwrap();
        cmd.args(["--job", "job.toml"]);
    }
    let out = match stdin {
        None => cmd.output().expect("tidemark starts"),
        Some(text) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("tidemark starts");
            let mut pipe = child.stdin.take().unwrap();
            // A run that refuses its options never reads: ignore a closed pipe.
            let _ = pipe.write_all(text.as_bytes());
            drop(pipe);
            child.wait_with_output().unwrap()
        }
    };
    Run {
        dir: dir.to_owned(),
        out,
    }
}

#[test]
fn every_job_option_reaches_the_job_as_flag_and_as_key() {
    let tmp = tempfile::tempdir().unwrap();
    for case in CASES {
        let fresh = |step: &str| {
            let dir = tmp.path().join(format!("{}-{step}", case.name));
            fs::create_dir_all(&dir).unwrap();
            for (name, text) in case.files.iter().filter(|(name, _)| *name != "-") {
                fs::write(dir.join(name), text).unwrap();
            }
            dir
        };
        let stdin = case
            .files
            .iter()
            .find(|(name, _)| *name == "-")
            .map(|(_, text)| *text);
        let run_in = |dir: &Path, args: &[&str], job: Option<&str>| {
            run_piped(dir, &[&["--quiet"][..], args].concat(), job, stdin)
        };
        let with = |flags: &[&'static str]| [case.base, flags].concat();
        let name = case.name;

        let r = run_in(&fresh("without"), case.base, None);
        assert!(
            !(case.check)(&r),
            "{name}: the check passes without the option\n{}",
            r.describe()
        );

        let r = run_in(&fresh("flag"), &with(case.flag), None);
        assert!(
            (case.check)(&r),
            "{name}: flag {:?} has no effect\n{}",
            case.flag,
            r.describe()
        );

        let r = run_in(&fresh("key"), case.base, Some(case.key));
        assert!(
            (case.check)(&r),
            "{name}: job key `{}` has no effect\n{}",
            case.key,
            r.describe()
        );

        let r = run_in(&fresh("other"), case.base, Some(case.other));
        assert!(
            !(case.check)(&r),
            "{name}: job key `{}` has the flag's effect\n{}",
            case.other,
            r.describe()
        );

        let r = run_in(&fresh("override"), &with(case.flag), Some(case.other));
        assert!(
            (case.check)(&r),
            "{name}: flag {:?} does not override job key `{}`\n{}",
            case.flag,
            case.other,
            r.describe()
        );
    }
}

#[test]
fn a_false_flag_turns_off_a_job_file_boolean() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("in.csv"), CSV).unwrap();
    let args = ["--input", "in.csv", "--window", "tumbling:1s"];
    // Without a header, field names cannot be resolved: refused.
    let r = run_in(
        tmp.path(),
        &[&args[..], &["--header=false"]].concat(),
        Some("header = true"),
    );
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(
        r.stderr().contains("CSV without --header"),
        "{}",
        r.describe()
    );
    // Without the flag the job file's value holds.
    let r = run_in(tmp.path(), &args, Some("header = true"));
    assert!(r.ok() && r.stdout().contains(CSV_ROW), "{}", r.describe());
}

/// Four partitions of generated data with stragglers.
fn generated(dir: &Path) -> PathBuf {
    let data = dir.join("log");
    let out = bin()
        .args([
            "gen",
            "--events",
            "3000",
            "--keys",
            "20",
            "--partitions",
            "4",
        ])
        .args(["--rate", "0.5", "--late-frac", "0.05", "--seed", "3"])
        .arg("--out")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    data
}

#[test]
fn same_bytes_for_any_workers_and_batch_size() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generated(tmp.path());
    let data = data.to_str().unwrap();
    let base = [
        "--input",
        data,
        "--window",
        "sliding:2s/500ms",
        "--delay",
        "100ms",
    ];
    let one = run_in(tmp.path(), &base, None);
    assert!(
        one.ok() && one.stdout().lines().count() > 100,
        "{}",
        one.describe()
    );
    for extra in [
        &["--workers", "3"][..],
        &["--batch-size", "1"],
        &["--workers", "2", "--batch-size", "7"],
    ] {
        let r = run_in(tmp.path(), &[&base[..], extra].concat(), None);
        assert!(r.ok(), "{extra:?}: {}", r.describe());
        assert!(r.stdout() == one.stdout(), "{extra:?}: output differs");
    }
}

#[test]
fn quiet_silences_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--input",
        "gen:events=100",
        "--window",
        "tumbling:1s",
    ];
    let loud = bin().current_dir(tmp.path()).args(args).output().unwrap();
    assert!(loud.status.success());
    let err = String::from_utf8_lossy(&loud.stderr);
    assert!(
        err.contains("tidemark: 100 records from 1 partition(s)"),
        "{err}"
    );
    let quiet = bin()
        .current_dir(tmp.path())
        .args(args)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    assert_eq!(quiet.stdout, loud.stdout);
}

#[test]
fn cluster_flags_come_together() {
    let tmp = tempfile::tempdir().unwrap();
    for partial in [
        &["--processes", "2"][..],
        &["--process", "0"],
        &["--hostfile", "hosts"],
    ] {
        let r = run_in(
            tmp.path(),
            &[
                &["--input", "gen:events=10", "--window", "tumbling:1s"][..],
                partial,
            ]
            .concat(),
            None,
        );
        assert_eq!(r.code(), Some(2), "{partial:?}: {}", r.describe());
        assert!(
            r.stderr()
                .contains("cluster mode needs all of --processes, --process and --hostfile"),
            "{}",
            r.describe()
        );
    }
    // The connect timeout is the cluster's: refused without it, as a flag
    // and as a key, and refused at 0.
    let gen = ["--input", "gen:events=10", "--window", "tumbling:1s"];
    for (flags, job) in [
        (&["--connect-timeout", "5s"][..], None),
        (&[], Some("connect-timeout = \"5s\"")),
    ] {
        let r = run_in(tmp.path(), &[&gen[..], flags].concat(), job);
        assert_eq!(r.code(), Some(2), "{flags:?} {job:?}: {}", r.describe());
        assert!(
            r.stderr().contains(
                "error: --connect-timeout applies only in cluster mode (with --processes, --process and --hostfile)"
            ),
            "{}",
            r.describe()
        );
    }
    fs::write(tmp.path().join("hosts2"), "127.0.0.1:1\n127.0.0.1:2\n").unwrap();
    let cluster = ["--processes", "2", "--process", "1", "--hostfile", "hosts2"];
    let r = run_in(
        tmp.path(),
        &[&gen[..], &cluster, &["--connect-timeout", "0"]].concat(),
        None,
    );
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(
        r.stderr().contains(
            "error: invalid --connect-timeout 0: the processes need some time to connect"
        ),
        "{}",
        r.describe()
    );
    fs::write(tmp.path().join("hosts"), "127.0.0.1:1\n").unwrap();
    let r = run_in(
        tmp.path(),
        &[
            "--input",
            "gen:events=10",
            "--window",
            "tumbling:1s",
            "--processes",
            "2",
            "--process",
            "0",
            "--hostfile",
            "hosts",
        ],
        None,
    );
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(
        r.stderr()
            .contains("--processes 2 but hostfile \"hosts\" lists 1 hosts"),
        "{}",
        r.describe()
    );
}

/// A `tidemark run` left running; killed when dropped.
struct Running {
    child: Child,
}

impl Running {
    fn start(dir: &Path, args: &[&str], job: Option<&str>) -> Running {
        let mut cmd = bin();
        cmd.current_dir(dir)
            .args(["run", "--quiet"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(text) = job {
            fs::write(dir.join("job.toml"), text).unwrap();
            cmd.args(["--job", "job.toml"]);
        }
        Running {
            child: cmd.spawn().expect("tidemark starts"),
        }
    }

    /// Whether it is still running after `wait`.
    fn still_running_after(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// Bytes the process has read so far (`rchar`), where the system
    /// tells.
    fn bytes_read(&self) -> Option<u64> {
        let io = fs::read_to_string(format!("/proc/{}/io", self.child.id())).ok()?;
        io.lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Stops it and returns what it wrote to standard error.
    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
        }
        text
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `path` for up to 20 s until it contains `needle`.
fn poll_for(path: &Path, needle: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn append(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// Runs a followed one-partition log: it must not end while the input is
/// idle, must read lines appended while it runs, and write the rows they
/// complete.
fn follow_reads_appended_lines(args: &[&str], job: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let part = dir.join("part-00000.jsonl");
    fs::write(
        &part,
        "{\"key\":\"a\",\"ts\":1000,\"value\":1}\n{\"key\":\"a\",\"ts\":1500,\"value\":2}\n",
    )
    .unwrap();
    let base = [
        "--input",
        "in",
        "--window",
        "tumbling:1s",
        "--output",
        "out.jsonl",
    ];
    let mut running = Running::start(tmp.path(), &[&base[..], args].concat(), job);
    assert!(
        running.still_running_after(Duration::from_millis(1500)),
        "{args:?} {job:?}: exited while the input was idle: {}",
        running.stderr()
    );
    let before = running.bytes_read();
    // Completes window [1000, 2000) and opens [2000, 3000).
    let appended = "{\"key\":\"a\",\"ts\":2500,\"value\":4}\n";
    append(&part, appended);
    let row =
        "{\"key\":\"a\",\"start\":1000,\"end\":2000,\"count\":2,\"sum\":3,\"kind\":\"final\"}";
    let found = poll_for(&tmp.path().join("out.jsonl"), row);
    let read_more = match (before, running.bytes_read()) {
        (Some(b), Some(a)) => {
            assert!(
                a - b >= appended.len() as u64,
                "{args:?} {job:?}: read {} bytes after {} were appended",
                a - b,
                appended.len()
            );
            format!("it read {} more bytes after the append", a - b)
        }
        _ => "the bytes it read are unknown".into(),
    };
    assert!(
        running.still_running_after(Duration::ZERO),
        "{args:?} {job:?}: exited: {}",
        running.stderr()
    );
    assert!(
        found,
        "{args:?} {job:?}: the row completed by the appended line is not in the output after 20 s ({read_more}; {} bytes appended)",
        appended.len()
    );
}

#[test]
fn follow_as_flag_reads_appended_lines() {
    follow_reads_appended_lines(&["--follow"], None);
}

#[test]
fn follow_as_key_reads_appended_lines() {
    follow_reads_appended_lines(&[], Some("follow = true"));
}

#[test]
fn follow_flag_overrides_the_job_file() {
    follow_reads_appended_lines(&["--follow"], Some("follow = false"));
}

#[test]
fn without_follow_the_run_ends_at_the_end_of_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("part-00000.jsonl"),
        "{\"key\":\"a\",\"ts\":1000,\"value\":1}\n",
    )
    .unwrap();
    for (args, job) in [
        (&[][..], None),
        (&[][..], Some("follow = false")),
        (&["--follow=false"][..], Some("follow = true")),
    ] {
        let mut running = Running::start(
            tmp.path(),
            &[&["--input", "in", "--window", "tumbling:1s"][..], args].concat(),
            job,
        );
        assert!(
            !running.still_running_after(Duration::from_secs(10)),
            "{args:?} {job:?}: still running after 10 s"
        );
        assert!(running.child.wait().unwrap().success());
    }
}

/// Two followed partitions, the second empty: with `idle` the empty one is
/// released and the first one's windows fire; without, they wait.
fn idle_run(args: &[&str], job: Option<&str>, expect_fired: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("part-00000.jsonl"),
        "{\"key\":\"a\",\"ts\":1000,\"value\":1}\n{\"key\":\"a\",\"ts\":1500,\"value\":2}\n{\"key\":\"a\",\"ts\":2500,\"value\":4}\n",
    )
    .unwrap();
    fs::write(dir.join("part-00001.jsonl"), "").unwrap();
    let base = [
        "--input",
        "in",
        "--window",
        "tumbling:1s",
        "--output",
        "out.jsonl",
    ];
    let mut running = Running::start(tmp.path(), &[&base[..], args].concat(), job);
    let row =
        "{\"key\":\"a\",\"start\":1000,\"end\":2000,\"count\":2,\"sum\":3,\"kind\":\"final\"}";
    let out = tmp.path().join("out.jsonl");
    if expect_fired {
        assert!(
            poll_for(&out, row),
            "{args:?} {job:?}: the busy partition's window is not in the output after 20 s"
        );
    } else {
        assert!(
            running.still_running_after(Duration::from_secs(2)),
            "{}",
            running.stderr()
        );
        let text = fs::read_to_string(&out).unwrap_or_default();
        assert!(
            !text.contains(row),
            "{args:?} {job:?}: fired without --idle-after: {text}"
        );
    }
    assert!(
        running.still_running_after(Duration::ZERO),
        "{}",
        running.stderr()
    );
}

#[test]
fn idle_after_as_flag_releases_an_empty_partition() {
    idle_run(&["--follow", "--idle-after", "200ms"], None, true);
}

#[test]
fn idle_after_as_key_releases_an_empty_partition() {
    idle_run(&[], Some("follow = true\nidle-after = \"200ms\""), true);
}

#[test]
fn idle_after_flag_overrides_the_job_file() {
    idle_run(
        &["--idle-after", "200ms"],
        Some("follow = true\nidle-after = \"1h\""),
        true,
    );
}

#[test]
fn without_idle_after_an_empty_partition_holds_the_watermark() {
    idle_run(&["--follow"], None, false);
}

#[test]
fn idle_after_without_follow_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run_in(
        tmp.path(),
        &[
            "--input",
            "in",
            "--window",
            "tumbling:1s",
            "--idle-after",
            "1s",
        ],
        None,
    );
    assert_eq!(r.code(), Some(2), "{}", r.describe());
    assert!(
        r.stderr()
            .contains("--idle-after applies only with --follow"),
        "{}",
        r.describe()
    );
}

/// `n` records of key `a`, 10 ms apart from `from`, each in its own
/// `tumbling:10ms` window.
fn spaced_records(from: i64, n: i64) -> String {
    (0..n)
        .map(|i| format!("{{\"key\":\"a\",\"ts\":{},\"value\":1}}\n", from + 10 * i))
        .collect()
}

/// The row of the `tumbling:10ms` window starting at `start` holding one
/// record.
fn spaced_row(start: i64) -> String {
    format!(
        "{{\"key\":\"a\",\"start\":{start},\"end\":{},\"count\":1,\"sum\":1,\"kind\":\"final\"}}",
        start + 10
    )
}

// The two tests below make the windows fire more rows (about 200 KB) than
// the output buffer holds, so some reach the file while the run goes on
// even where outputs are flushed only at the end of input.

#[test]
fn follow_reads_thousands_of_appended_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    let part = dir.join("part-00000.jsonl");
    fs::write(&part, spaced_records(1000, 1)).unwrap();
    let args = [
        "--input",
        "in",
        "--window",
        "tumbling:10ms",
        "--output",
        "out.jsonl",
    ];
    let mut running = Running::start(tmp.path(), &[&args[..], &["--follow"]].concat(), None);
    assert!(
        running.still_running_after(Duration::from_millis(500)),
        "exited while the input was idle: {}",
        running.stderr()
    );
    append(&part, &spaced_records(1010, 3000));
    // The first window was completed by the first appended line.
    assert!(
        poll_for(&tmp.path().join("out.jsonl"), &spaced_row(1000)),
        "no row from the appended lines after 20 s"
    );
    assert!(
        running.still_running_after(Duration::ZERO),
        "{}",
        running.stderr()
    );
}

#[test]
fn idle_after_releases_an_empty_partition_for_thousands_of_windows() {
    for (idle, fires) in [(&["--idle-after", "200ms"][..], true), (&[][..], false)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("in");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("part-00000.jsonl"), spaced_records(1000, 3000)).unwrap();
        fs::write(dir.join("part-00001.jsonl"), "").unwrap();
        let args = [
            "--input",
            "in",
            "--window",
            "tumbling:10ms",
            "--output",
            "out.jsonl",
            "--follow",
        ];
        let mut running = Running::start(tmp.path(), &[&args[..], idle].concat(), None);
        let out = tmp.path().join("out.jsonl");
        if fires {
            assert!(
                poll_for(&out, &spaced_row(1000)),
                "{idle:?}: no window fired in 20 s"
            );
        } else {
            assert!(
                running.still_running_after(Duration::from_secs(3)),
                "{}",
                running.stderr()
            );
            let text = fs::read_to_string(&out).unwrap_or_default();
            assert!(
                text.is_empty(),
                "windows fired with an empty partition and no --idle-after"
            );
        }
        assert!(
            running.still_running_after(Duration::ZERO),
            "{}",
            running.stderr()
        );
    }
}

/// A JSON-lines record of key `key` at `ts` with value 1, with a
/// partition field `p` when `partition` is given.
fn record(partition: Option<u32>, key: &str, ts: i64) -> String {
    match partition {
        Some(p) => format!("{{\"p\":{p},\"key\":\"{key}\",\"ts\":{ts},\"value\":1}}\n"),
        None => format!("{{\"key\":\"{key}\",\"ts\":{ts},\"value\":1}}\n"),
    }
}

#[test]
fn a_far_future_record_is_one_dead_letter_and_makes_nothing_late() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("in.jsonl"), FUTURE).unwrap();
    let base = ["--input", "in.jsonl", "--window", "tumbling:1s"];
    let without = run_piped(tmp.path(), &base, None, None);
    assert!(
        without.ok()
            && without
                .stderr()
                .contains("late dropped 2, late applied 0, dead letters 0"),
        "{}",
        without.describe()
    );
    let with = run_piped(
        tmp.path(),
        &[&base[..], &["--max-future-skew", "1h"]].concat(),
        None,
        None,
    );
    assert!(
        with.ok()
            && with.stderr().contains("late dropped 0, late applied 0, dead letters 1")
            && with.stderr().contains(
                "future timestamp: 4102444800000 is 4102444799000 ms ahead of the partition's stream time 1000 (maximum future skew 3600000 ms)"
            ),
        "{}",
        with.describe()
    );

    // The trade-off: a genuine jump of 2 h, over a 1 h guard, sends what
    // follows it to the dead letters (the stream time stays behind).
    let jump = [
        record(None, "a", 1000),
        record(None, "a", 7_201_000),
        record(None, "a", 7_202_000),
    ]
    .concat();
    fs::write(tmp.path().join("jump.jsonl"), jump).unwrap();
    let r = run_piped(
        tmp.path(),
        &[
            "--input",
            "jump.jsonl",
            "--window",
            "tumbling:1s",
            "--max-future-skew",
            "1h",
            "--max-bad-ratio",
            "1",
        ],
        None,
        None,
    );
    assert!(
        r.ok()
            && r.stderr().contains("dead letters 2")
            && r.stdout().lines().count() == 1
            && r.stdout().contains("\"start\":1000,"),
        "{}",
        r.describe()
    );
    refused_in(
        tmp.path(),
        &[&base[..], &["--max-future-skew", "-1h"]].concat(),
        "invalid --max-future-skew: \"-1h\": durations cannot be negative",
    );
}

/// Asserts that `tidemark run ARGS` in `dir` is refused (exit 2) with
/// `message` on standard error.
fn refused_in(dir: &Path, args: &[&str], message: &str) {
    let r = run_in(dir, args, None);
    assert!(
        r.code() == Some(2) && r.stderr().contains(message),
        "{args:?}: expected exit 2 with {message:?}\n{}",
        r.describe()
    );
}

#[test]
fn a_run_stopped_before_its_outputs_says_none_was_opened() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("empty")).unwrap();
    fs::write(tmp.path().join("out.jsonl"), "an earlier run's results\n").unwrap();
    for input in ["missing", "empty"] {
        let r = run_piped(
            tmp.path(),
            &[
                "--input",
                input,
                "--window",
                "tumbling:1s",
                "--output",
                "out.jsonl",
            ],
            None,
            None,
        );
        assert_eq!(r.code(), Some(1), "{input}: {}", r.describe());
        assert!(
            r.stderr()
                .contains("tidemark: the job did not start; no output was opened"),
            "{input}: {}",
            r.describe()
        );
        assert!(!r.stderr().contains("the job failed"), "{}", r.describe());
        assert_eq!(r.file("out.jsonl"), "an earlier run's results\n");
    }
}

#[test]
fn partition_glob_picks_the_files_in_natural_order() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    fs::write(logs.join("part-2.log"), record(None, "two", 1000)).unwrap();
    fs::write(
        logs.join("part-10.log"),
        [record(None, "ten", 1000), "not json\n".into()].concat(),
    )
    .unwrap();
    fs::write(logs.join("notes.txt"), "not a partition\n").unwrap();
    fs::write(logs.join(".part-3.log"), "hidden, not a partition\n").unwrap();

    // No file has a format's extension: the error names the directory and
    // the pattern, and the hint the files' extension.
    let r = run_in(
        tmp.path(),
        &["--input", "logs", "--window", "tumbling:1s"],
        None,
    );
    assert!(
        r.code() == Some(1)
            && r.stderr().contains(
                "error: no partition files matching \"*.{jsonl,json,ndjson}\" in directory \"logs\""
            )
            && r.stderr().contains("hint: name the partition files with --partition-glob, e.g. --partition-glob '*.log'"),
        "{}",
        r.describe()
    );

    // part-2 is partition 0 and part-10 partition 1 (by name, part-10
    // would come first).
    let r = run_in(
        tmp.path(),
        &[
            "--input",
            "logs",
            "--window",
            "tumbling:1s",
            "--partition-glob",
            "part-*.log",
            "--dead-letter",
            "dead.jsonl",
        ],
        None,
    );
    assert!(r.ok(), "{}", r.describe());
    assert!(
        r.stdout().contains("\"key\":\"two\"") && r.stdout().contains("\"key\":\"ten\""),
        "{}",
        r.describe()
    );
    let dead = r.file("dead.jsonl");
    assert!(
        dead.contains("\"partition\":1,\"offset\":1,")
            && dead.contains("logs/part-10.log\",\"line\":2,"),
        "{dead}"
    );

    // A glob ending in .csv reads CSV, whatever else the directory holds.
    let mixed = tmp.path().join("mixed");
    fs::create_dir_all(&mixed).unwrap();
    fs::write(mixed.join("a.csv"), CSV).unwrap();
    fs::write(mixed.join("b.jsonl"), record(None, "json", 1000)).unwrap();
    let r = run_in(
        tmp.path(),
        &[
            "--input",
            "mixed",
            "--window",
            "tumbling:1s",
            "--header",
            "--partition-glob",
            "*.csv",
        ],
        None,
    );
    assert!(r.ok() && r.stdout().contains(CSV_ROW), "{}", r.describe());

    let w = ["--window", "tumbling:1s"];
    refused_in(
        tmp.path(),
        &[&w[..], &["--input", "logs/part-2.log", "--partition-glob", "*.log"]].concat(),
        "--partition-glob selects the partition files of an input directory; it does not apply to \"logs/part-2.log\", a file",
    );
    refused_in(
        tmp.path(),
        &[
            &w[..],
            &["--input", "gen:events=10", "--partition-glob", "*.log"],
        ]
        .concat(),
        "it does not apply to a gen: input",
    );
    refused_in(
        tmp.path(),
        &[&w[..], &["--input", "logs", "--partition-glob", "{a,b"]].concat(),
        "invalid partition glob \"{a,b\": '{' without '}'",
    );
}

#[test]
fn max_partitions_bounds_the_partitions_a_field_names() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("in.jsonl"),
        [
            record(Some(0), "a", 1000),
            "{\"partition\":65535,\"key\":\"b\",\"ts\":1000,\"value\":1}\n".into(),
            record(Some(0), "a", 1500),
        ]
        .concat()
        .replace("\"p\":", "\"partition\":"),
    )
    .unwrap();
    let base = [
        "--input",
        "in.jsonl",
        "--partition-field",
        "partition",
        "--window",
        "tumbling:1s",
    ];
    // One partition and a dead letter, not 65 536 partitions.
    let r = run_piped(tmp.path(), &base, None, None);
    assert!(
        r.ok()
            && r.stderr().contains("tidemark: 2 records from 1 partition(s)")
            && r.stderr().contains(
                "bad line at in.jsonl:2 (partition 0, offset 1): partition out of range: 65535 (at most 10000 partitions"
            )
            && r.stdout().contains("\"count\":2,"),
        "{}",
        r.describe()
    );
    refused_in(
        tmp.path(),
        &[&base[..], &["--max-partitions", "65537"]].concat(),
        "invalid --max-partitions 65537: must be 1 to 65536",
    );
    refused_in(
        tmp.path(),
        &[&base[..], &["--max-partitions", "0"]].concat(),
        "invalid --max-partitions 0",
    );
    refused_in(
        tmp.path(),
        &[&base[..], &["--max-partitions", "99999999999"]].concat(),
        "invalid --max-partitions: \"99999999999\" is too large",
    );
    refused_in(
        tmp.path(),
        &[
            &base[..],
            &["--partition-count", "20", "--max-partitions", "10"],
        ]
        .concat(),
        "invalid --partition-count 20: more than --max-partitions 10",
    );
    refused_in(
        tmp.path(),
        &[&base[..], &["--partition-count", "0"]].concat(),
        "invalid --partition-count 0",
    );
    for flag in ["--max-partitions", "--partition-count"] {
        refused_in(
            tmp.path(),
            &["--input", "in.jsonl", "--window", "tumbling:1s", flag, "2"],
            &format!("{flag} applies only with --partition-field"),
        );
    }
}

#[test]
fn standard_input_is_an_input_with_and_without_a_partition_field() {
    let tmp = tempfile::tempdir().unwrap();
    // b's record is late behind a's in one partition, on time in its own.
    let text = [record(Some(0), "a", 5000), record(Some(1), "b", 100)].concat();
    let base = ["--input", "-", "--window", "tumbling:1s"];
    let r = run_piped(tmp.path(), &base, None, Some(&text));
    assert!(
        r.ok()
            && r.stderr()
                .contains("tidemark: 2 records from 1 partition(s)")
            && r.stderr().contains("late dropped 1")
            && !r.stdout().contains("\"key\":\"b\""),
        "{}",
        r.describe()
    );
    let r = run_piped(
        tmp.path(),
        &[&base[..], &["--partition-field", "p"]].concat(),
        None,
        Some(&text),
    );
    assert!(
        r.ok()
            && r.stderr()
                .contains("tidemark: 2 records from 2 partition(s)")
            && r.stderr().contains("late dropped 0")
            && r.stdout().contains("\"key\":\"b\""),
        "{}",
        r.describe()
    );
    // Dead letters name standard input.
    let r = run_piped(tmp.path(), &base, None, Some("not json\n"));
    assert!(
        r.stderr()
            .contains("bad line at <stdin>:1 (partition 0, offset 0)"),
        "{}",
        r.describe()
    );
}

/// Feeds a pipe on standard input lines that complete a window in each of
/// two partitions, keeps it open, and says whether the window's rows are
/// in the output before the pipe is closed; then closes it and checks
/// that the run ends with every row.
fn rows_before_the_pipe_closes(extra: &[&str]) -> bool {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = bin()
        .current_dir(tmp.path())
        .args(["run", "--quiet", "--input", "-", "--partition-field", "p"])
        .args(["--window", "tumbling:1s", "--output", "out.jsonl"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tidemark starts");
    let mut pipe = child.stdin.take().unwrap();
    let lines = [
        record(Some(0), "a", 1000),
        record(Some(1), "b", 1000),
        record(Some(0), "a", 2500),
        record(Some(1), "b", 2500),
    ]
    .concat();
    pipe.write_all(lines.as_bytes()).unwrap();
    pipe.flush().unwrap();
    let out = tmp.path().join("out.jsonl");
    let row =
        "{\"key\":\"b\",\"start\":1000,\"end\":2000,\"count\":1,\"sum\":1,\"kind\":\"final\"}";
    let early = if extra.is_empty() {
        // Nothing can be read before the end: any row would be wrong.
        std::thread::sleep(Duration::from_secs(2));
        fs::read_to_string(&out).is_ok_and(|t| t.contains(row))
    } else {
        poll_for(&out, row)
    };
    assert!(
        child.try_wait().unwrap().is_none(),
        "{extra:?}: the run ended with its input still open"
    );
    drop(pipe);
    let status = child.wait().unwrap();
    let text = fs::read_to_string(&out).unwrap_or_default();
    assert!(
        status.success() && text.lines().count() == 4 && text.contains(row),
        "{extra:?}: {status:?}, output:\n{text}"
    );
    early
}

#[test]
fn partition_count_reads_standard_input_at_once() {
    assert!(
        rows_before_the_pipe_closes(&["--partition-count", "2"]),
        "with --partition-count the rows did not come before the pipe closed"
    );
    assert!(
        !rows_before_the_pipe_closes(&[]),
        "without --partition-count the input was read before its end"
    );
}
