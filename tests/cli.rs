//! The `tidemark` binary end to end.
//!
//! Families:
//! - conformance: every case of `tests/conformance/` through `tidemark run`
//!   (one input file with a partition field), workers ∈ {1, 2, 4}, batch
//!   sizes ∈ {1, 7, 1024}: byte-identical to `expected.jsonl`, late records
//!   as in `expected-late.jsonl`;
//! - generated multi-partition logs (`tidemark gen`): identical results, late
//!   and dead-letter files for 1, 2 and 4 workers, equal to the reference
//!   model; two processes on loopback equal one;
//! - bad flags, missing inputs and malformed records: clear messages, the
//!   right exit codes, dead letters;
//! - the README's example job.
//!
//! Run with `cargo test --test cli`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;
use tidemark::windows::{reference, AggKind, LogRecord, Metrics, Number, Policy};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("tidemark starts");
    assert!(
        out.status.success(),
        "tidemark failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn case_flags(dir: &Path) -> Vec<String> {
    let case: Json =
        serde_json::from_str(&fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let job = &case["job"];
    // case.json gives durations as bare milliseconds; flags need a unit.
    let get = |k: &str| format!("{}ms", job[k].as_str().unwrap_or("0"));
    let window = match job["--window"].as_str().unwrap_or("") {
        "tumbling" => format!("tumbling:{}", get("--size")),
        "sliding" => format!("sliding:{}/{}", get("--size"), get("--slide")),
        _ => format!("session:{}", get("--gap")),
    };
    let mut flags = vec![
        "--window".into(),
        window,
        "--delay".into(),
        get("--delay"),
        "--lateness".into(),
        get("--lateness"),
    ];
    if let Some(emit) = job["--emit"].as_str() {
        flags.extend(["--emit".into(), emit.into()]);
    }
    flags
}

fn late_ids(lines: &[String]) -> Vec<(u64, u64)> {
    let mut ids: Vec<(u64, u64)> = lines
        .iter()
        .map(|l| {
            let v: Json = serde_json::from_str(l).unwrap();
            (
                v["partition"].as_u64().unwrap(),
                v["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn conformance_cases_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs: Vec<PathBuf> = fs::read_dir(root().join("tests/conformance"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 12);
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected = fs::read_to_string(dir.join("expected.jsonl")).unwrap();
        let expected_late = late_ids(&lines(&dir.join("expected-late.jsonl")));
        for workers in ["1", "2", "4"] {
            for batch in ["1", "7", "1024"] {
                let late = tmp
                    .path()
                    .join(format!("{name}-{workers}-{batch}-late.jsonl"));
                let out = run_ok(
                    bin()
                        .args([
                            "run",
                            "--quiet",
                            "--format",
                            "jsonl",
                            "--partition-field",
                            "partition",
                        ])
                        .arg("--input")
                        .arg(dir.join("input.jsonl"))
                        .args(case_flags(&dir))
                        .args(["--workers", workers, "--batch-size", batch, "--output", "-"])
                        .arg("--late")
                        .arg(&late),
                );
                let got = String::from_utf8(out.stdout).unwrap();
                assert!(
                    got == expected,
                    "{name}: workers {workers}, batch {batch}: output differs from expected.jsonl"
                );
                assert_eq!(
                    late_ids(&lines(&late)),
                    expected_late,
                    "{name}: late records"
                );
            }
        }
    }
}

/// Writes a generated multi-partition log with stragglers, plus a broken
/// line in partition 1.
fn generated_log(dir: &Path) -> PathBuf {
    let data = dir.join("log");
    run_ok(
        bin()
            .args([
                "gen",
                "--events",
                "5000",
                "--keys",
                "40",
                "--partitions",
                "4",
                "--rate",
                "0.5",
                "--disorder",
                "80ms",
                "--late-frac",
                "0.05",
                "--late-extra",
                "2s",
                "--seed",
                "9",
            ])
            .arg("--out")
            .arg(&data),
    );
    let p1 = data.join("part-00001.jsonl");
    let mut text = fs::read_to_string(&p1).unwrap();
    let cut = text.match_indices('\n').nth(9).unwrap().0 + 1;
    text.insert_str(
        cut,
        "{\"partition\":1,\"offset\":10,\"key\":\"k1\",\"ts\":\"yesterday\",\"value\":1}\n",
    );
    fs::write(&p1, text).unwrap();
    data
}

fn run_generated(data: &Path, out: &Path, extra: &[&str]) -> (String, String, String) {
    let results = out.join("results.jsonl");
    let late = out.join("late.jsonl");
    let dead = out.join("dead.jsonl");
    run_ok(
        bin()
            .args([
                "run",
                "--quiet",
                "--window",
                "sliding:2s/500ms",
                "--delay",
                "100ms",
                "--lateness",
                "1s",
            ])
            .args(["--agg", "count,sum,min,max,mean"])
            .arg("--input")
            .arg(data)
            .arg("--output")
            .arg(&results)
            .arg("--late")
            .arg(&late)
            .arg("--dead-letter")
            .arg(&dead)
            .args(extra),
    );
    let read = |p: &Path| fs::read_to_string(p).unwrap();
    (read(&results), read(&late), read(&dead))
}

#[test]
fn generated_logs_identical_for_any_worker_count_and_equal_to_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generated_log(tmp.path());
    let mut outputs = Vec::new();
    for (workers, batch) in [("1", "1024"), ("2", "7"), ("4", "1")] {
        let out = tmp.path().join(format!("out-{workers}"));
        fs::create_dir_all(&out).unwrap();
        outputs.push(run_generated(
            &data,
            &out,
            &["--workers", workers, "--batch-size", batch],
        ));
    }
    assert!(!outputs[0].0.is_empty() && !outputs[0].1.is_empty());
    assert_eq!(outputs[0].2.lines().count(), 1, "one dead letter");
    assert!(
        outputs[0].2.contains("\"partition\":1,\"offset\":10,"),
        "{}",
        outputs[0].2
    );
    for o in &outputs[1..] {
        assert!(o == &outputs[0], "outputs differ between worker counts");
    }

    // The reference model over the same log (skipping the broken line).
    let mut log = Vec::new();
    for p in 0..4u32 {
        for (offset, line) in lines(&data.join(format!("part-{p:05}.jsonl")))
            .iter()
            .enumerate()
        {
            let v: Json = serde_json::from_str(line).unwrap();
            let Some(ts) = v["ts"].as_i64() else { continue };
            log.push(LogRecord {
                partition: p,
                offset: offset as u64,
                key: v["key"].as_str().unwrap().to_owned(),
                time: ts,
                input: Number::Int(v["value"].as_i64().unwrap()),
            });
        }
    }
    let aggs = [
        AggKind::Count,
        AggKind::Sum,
        AggKind::Min,
        AggKind::Max,
        AggKind::Mean,
    ];
    let eval = reference::evaluate(
        tidemark::windows::WindowSpec::sliding(2000, 500),
        Policy::new(100, 1000, Default::default()),
        &Metrics::new(&aggs),
        &log,
    );
    let mut expected = String::new();
    for c in &eval.changes {
        tidemark::engine::format_row(c, &aggs, &mut expected);
        expected.push('\n');
    }
    assert!(
        outputs[0].0 == expected,
        "results differ from the reference model"
    );
    assert_eq!(outputs[0].1.lines().count(), eval.late.len());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn two_processes_on_loopback_equal_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generated_log(tmp.path());
    let single = tmp.path().join("single");
    fs::create_dir_all(&single).unwrap();
    let one = run_generated(&data, &single, &["--workers", "2"]);

    let hostfile = tmp.path().join("hosts");
    fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .unwrap();
    let cluster = tmp.path().join("cluster");
    fs::create_dir_all(&cluster).unwrap();
    let spawn = |process: &str, out: &Path| {
        bin()
            .args([
                "run",
                "--quiet",
                "--window",
                "sliding:2s/500ms",
                "--delay",
                "100ms",
                "--lateness",
                "1s",
            ])
            .args([
                "--agg",
                "count,sum,min,max,mean",
                "--workers",
                "1",
                "--processes",
                "2",
                "--process",
                process,
            ])
            .arg("--hostfile")
            .arg(&hostfile)
            .arg("--input")
            .arg(&data)
            .arg("--output")
            .arg(out.join("results.jsonl"))
            .arg("--late")
            .arg(out.join("late.jsonl"))
            .arg("--dead-letter")
            .arg(out.join("dead.jsonl"))
            .spawn()
            .unwrap()
    };
    let other = tmp.path().join("other");
    fs::create_dir_all(&other).unwrap();
    let mut p1 = spawn("1", &other);
    let mut p0 = spawn("0", &cluster);
    assert!(p0.wait().unwrap().success());
    assert!(p1.wait().unwrap().success());
    let read = |p: PathBuf| fs::read_to_string(p).unwrap();
    assert!(
        read(cluster.join("results.jsonl")) == one.0,
        "cluster results differ from one process"
    );
    assert_eq!(read(cluster.join("late.jsonl")), one.1);
    assert_eq!(read(cluster.join("dead.jsonl")), one.2);
    // Only process 0 writes the outputs.
    assert!(!other.join("results.jsonl").exists());
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_flags_are_clear_errors() {
    let out = bin()
        .args([
            "run",
            "--input",
            "gen:events=10",
            "--window",
            "tumbling:soon",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("invalid duration \"soon\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = bin()
        .args(["run", "--input", "gen:events=10", "--window", "hopping:1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("unknown window kind \"hopping\""));

    let out = bin()
        .args([
            "run",
            "--input",
            "gen:events=10",
            "--window",
            "tumbling:1s",
            "--agg",
            "median",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("unknown aggregation \"median\""));

    let out = bin()
        .args(["run", "--input", "gen:events=10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("missing --window"));

    let out = bin().args(["run", "--wat"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    for (flags, message) in [
        (["--format", "xml"], "invalid --format"),
        (["--time-format", "unix"], "invalid --time-format"),
        (["--batch-size", "0"], "batch size must be greater than 0"),
    ] {
        let out = bin()
            .args(["run", "--input", "gen:events=10", "--window", "tumbling:1s"])
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert!(
            stderr_of(&out).contains(message),
            "{flags:?}: {}",
            stderr_of(&out)
        );
    }
}

#[test]
fn missing_input_names_the_path() {
    let out = bin()
        .args(["run", "--input", "/no/such/dir", "--window", "tumbling:1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("/no/such/dir"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_records_go_to_dead_letters_or_stop_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("a.jsonl"),
        "{\"key\":\"x\",\"ts\":1000,\"value\":1}\nnot json\n{\"key\":\"x\",\"ts\":1500,\"value\":2}\n",
    )
    .unwrap();
    let dead = tmp.path().join("dead.jsonl");
    let out = run_ok(
        bin()
            .args(["run", "--quiet", "--window", "tumbling:1s", "--input"])
            .arg(&dir)
            .arg("--dead-letter")
            .arg(&dead),
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"key\":\"x\",\"start\":1000,\"end\":2000,\"count\":2,\"sum\":3,\"kind\":\"final\"}\n"
    );
    let dead = lines(&dead);
    assert_eq!(dead.len(), 1);
    let v: Json = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(
        (v["partition"].as_u64(), v["offset"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(v["raw"], "not json");
    assert!(!v["reason"].as_str().unwrap().is_empty());

    let out = bin()
        .args([
            "run",
            "--window",
            "tumbling:1s",
            "--on-bad-record",
            "fail",
            "--input",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("a.jsonl:2 (partition 0, offset 1): "), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn readme_example_job_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_ok(
        bin()
            .current_dir(root())
            .args(["run", "--job", "examples/clicks.toml", "--quiet"])
            .arg("--late")
            .arg(tmp.path().join("late.jsonl"))
            .arg("--dead-letter")
            .arg(tmp.path().join("dead.jsonl")),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() > 40, "{text}");
    assert!(text.contains("\"kind\":\"retract\""));
    assert_eq!(lines(&tmp.path().join("dead.jsonl")).len(), 1);
    assert!(!lines(&tmp.path().join("late.jsonl")).is_empty());
}

#[test]
fn bench_throughput_prints_the_comparison() {
    let out = run_ok(bin().args([
        "bench",
        "throughput",
        "--events",
        "20000",
        "--keys",
        "50",
        "--runs",
        "1",
    ]));
    let text = String::from_utf8(out.stdout).unwrap();
    for row in [
        "plain-loop",
        "tumbling",
        "sliding",
        "session",
        "events/s/core",
        "peak RSS",
    ] {
        assert!(text.contains(row), "{row} missing in:\n{text}");
    }
}

/// `tidemark bench ... | head`: the reader goes away before the table is
/// printed; the process ends quietly with success instead of panicking.
#[test]
fn bench_into_a_closed_pipe_ends_quietly() {
    let mut child = bin()
        .args(["bench", "throughput", "--events", "20000", "--keys", "50"])
        .args(["--runs", "1", "--scenario", "tumbling", "--in-process"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader closes its end at once
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panicked:\n{stderr}");
    assert!(out.status.success(), "status {:?}:\n{stderr}", out.status);
}

#[test]
fn bench_throughput_json_gives_each_scenario_its_spread_and_its_own_peak_rss() {
    let json = |extra: &[&str]| -> serde_json::Value {
        let out = run_ok(
            bin()
                .args(["bench", "throughput", "--events", "20000", "--keys", "50"])
                .args(["--runs", "3", "--scenario", "tumbling,session", "--json"])
                .args(extra),
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let report = json(&[]);
    let rows = report["scenarios"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plain-loop", "tumbling", "session"]);
    assert_eq!(rows[1]["windows"], rows[0]["windows"]);
    for row in &rows[1..] {
        assert_eq!(row["runs"], 3);
        assert_eq!(row["events"], 20000);
        let ns: Vec<f64> = row["ns_per_event"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(ns[0] > 0.0 && ns[0] <= ns[1] && ns[1] <= ns[2], "{ns:?}");
        // Each engine run is a child process: its peak RSS is its own.
        let rss = row["peak_rss_bytes"].as_u64().unwrap();
        assert!((1 << 20..1 << 32).contains(&rss), "{rss}");
    }
    let report = json(&["--in-process"]);
    assert!(report["scenarios"][1]["peak_rss_bytes"].is_null());
}

#[test]
fn bench_files_runs_the_whole_process_on_both_layouts_beside_a_plain_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_ok(
        bin()
            .args(["bench", "files", "--events", "3000", "--keys", "20"])
            .args([
                "--partitions",
                "3",
                "--runs",
                "2",
                "--json",
                "--dir",
                tmp.path().to_str().unwrap(),
            ]),
    );
    let rows: Json = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["format"].as_str().unwrap().to_owned(),
                r["layout"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pair = |f: &str, l: &str| (f.to_owned(), l.to_owned());
    assert_eq!(
        seen,
        [
            pair("csv", "directory"),
            pair("csv", "file"),
            pair("jsonl", "directory"),
            pair("jsonl", "file")
        ]
    );
    for r in rows {
        assert_eq!(r["records"], 3000);
        assert!(r["result_rows"].as_u64().unwrap() > 0);
        assert!(r["records_per_core_second"][1].as_f64().unwrap() > 0.0);
        assert!(r["plain_records_per_core_second"][1].as_f64().unwrap() > 0.0);
        assert!(r["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    }
    // The one-file layout holds every partition, with its column.
    let all = fs::read_to_string(tmp.path().join("all.csv")).unwrap();
    assert_eq!(all.lines().count(), 3000);
    assert_eq!(
        fs::read_dir(tmp.path().join("parts-csv")).unwrap().count(),
        3
    );
    // Every layout and format gave the same results.
    let first = fs::read(tmp.path().join("out-csv-directory.jsonl")).unwrap();
    assert_eq!(
        fs::read(tmp.path().join("out-jsonl-file.jsonl")).unwrap(),
        first
    );
}

#[test]
fn bench_files_flags_reach_the_workload_and_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_ok(
        bin()
            .args(["bench", "files", "--events", "3000", "--keys", "7"])
            .args([
                "--partitions",
                "2",
                "--rate",
                "5",
                "--window",
                "sliding:2s/1s",
                "--formats",
                "jsonl",
                "--layouts",
                "file",
                "--workers",
                "2",
                "--runs",
                "1",
                "--json",
                "--dir",
                tmp.path().to_str().unwrap(),
            ]),
    );
    let rows: Json = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["format"].as_str(), rows[0]["layout"].as_str()),
        (Some("jsonl"), Some("file"))
    );
    assert!(!tmp.path().join("all.csv").exists());
    // 5 events per ms: 3000 events span about 600 ms; 7 keys, 2 partitions.
    let json = |path: &Path| -> Vec<Json> {
        lines(path)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let records = json(&tmp.path().join("all.jsonl"));
    let ts: Vec<i64> = records.iter().map(|r| r["ts"].as_i64().unwrap()).collect();
    let span = ts.iter().max().unwrap() - ts.iter().min().unwrap();
    assert!(span < 1_000, "{span}");
    let keys: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 7);
    assert_eq!(
        fs::read_dir(tmp.path().join("parts-jsonl"))
            .unwrap()
            .count(),
        2
    );
    // The window reached the job: 2 s windows.
    let results = json(&tmp.path().join("out-jsonl-file.jsonl"));
    assert!(!results.is_empty());
    for row in &results {
        assert_eq!(
            row["end"].as_i64().unwrap() - row["start"].as_i64().unwrap(),
            2_000
        );
    }
}

#[test]
fn bench_scaling_json_reports_speedup_ceiling_and_efficiency() {
    let out = run_ok(bin().args([
        "bench", "scaling", "--events", "20000", "--keys", "50", "--runs", "2", "--json",
    ]));
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["scenario"], "tumbling");
    assert_eq!(report["workers"], 2);
    for field in ["speedup", "ceiling", "efficiency"] {
        let v: Vec<f64> = report[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(v[0] > 0.0 && v[0] <= v[1] && v[1] <= v[2], "{field}: {v:?}");
    }
}

#[test]
fn bench_scaling_compares_workers_with_the_machine() {
    let out = run_ok(bin().args([
        "bench",
        "scaling",
        "--events",
        "20000",
        "--keys",
        "50",
        "--runs",
        "1",
        "--scenario",
        "session",
    ]));
    let text = String::from_utf8(out.stdout).unwrap();
    for row in ["1 worker", "2 workers", "speedup (wall)", "machine ceiling"] {
        assert!(text.contains(row), "{row} missing in:\n{text}");
    }
    // An unknown scenario is a usage error, not a crash.
    let out = bin()
        .args(["bench", "scaling", "--scenario", "hopping"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario"));
}

#[test]
fn bench_refuses_unknown_scenarios_and_too_few_events() {
    for args in [
        &["bench", "throughput", "--scenario", "tumbl"][..],
        &["bench", "throughput", "--events", "0"][..],
        &["bench", "scaling", "--events", "10"][..],
    ] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("unknown scenario \"tumbl\"") || err.contains("too few to measure"),
            "{args:?}: {err}"
        );
    }
}
