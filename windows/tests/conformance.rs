//! Conformance cases: each folder of `tests/conformance/` is a windowed job
//! over one log with its expected changelog (computed from the design's
//! rules; single-partition cases also carry Apache Flink 2.3's output).
//!
//! The cases live in the workspace's `tests/conformance/`. For every case this checks that the window state machine and the
//! reference model both reproduce `expected.jsonl` row for row and the late
//! records of `expected-late.jsonl`, and, for single-partition cases, that
//! the final table equals Flink's. Adding a case needs no Rust: drop a folder
//! in. Run with `cargo test -p tidemark-windows --test conformance`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use tidemark_windows::{
    evaluate, reference, AggKind, Change, EmitMode, Evaluation, LogRecord, MetricValues, Metrics,
    Number, Policy, WindowSpec, WindowState,
};

struct Case {
    name: String,
    dir: PathBuf,
    spec: WindowSpec,
    policy: Policy,
    log: Vec<LogRecord<String, Number>>,
    raw_input: Vec<String>,
}

fn read_lines(path: &Path) -> Vec<String> {
    match fs::read_to_string(path) {
        Ok(s) => s
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn load(dir: &Path) -> Case {
    let case: Json =
        serde_json::from_str(&fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let job = &case["job"];
    let ms = |k: &str| -> i64 { job[k].as_str().map(|s| s.parse().unwrap()).unwrap_or(0) };
    let spec = match job["--window"].as_str().unwrap() {
        "tumbling" => WindowSpec::tumbling(ms("--size")),
        "sliding" => WindowSpec::sliding(ms("--size"), ms("--slide")),
        "session" => WindowSpec::session(ms("--gap")),
        other => panic!("unknown window {other}"),
    };
    let emit = match job["--emit"].as_str() {
        Some("updates") => EmitMode::Updates,
        _ => EmitMode::Final,
    };
    let policy = Policy::new(ms("--delay"), ms("--lateness"), emit);
    let raw_input = read_lines(&dir.join("input.jsonl"));
    let log = raw_input
        .iter()
        .map(|line| {
            let v: Json = serde_json::from_str(line).unwrap();
            LogRecord {
                partition: v["partition"].as_u64().unwrap() as u32,
                offset: v["offset"].as_u64().unwrap(),
                key: v["key"].as_str().unwrap().to_owned(),
                time: v["ts"].as_i64().unwrap(),
                input: Number::Int(v["value"].as_i64().unwrap()),
            }
        })
        .collect();
    Case {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        dir: dir.to_owned(),
        spec,
        policy,
        log,
        raw_input,
    }
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 12,
        "conformance cases missing in {}",
        root.display()
    );
    dirs.iter().map(|d| load(d)).collect()
}

fn row(c: &Change<String, MetricValues>) -> String {
    let v = &c.value;
    format!(
        r#"{{"key":{},"start":{},"end":{},"count":{},"sum":{},"kind":"{}"}}"#,
        serde_json::to_string(&c.key).unwrap(),
        c.window.start,
        c.window.end,
        v.count.unwrap(),
        v.sum.unwrap(),
        c.kind.name()
    )
}

fn metrics() -> Metrics {
    Metrics::new(&[AggKind::Count, AggKind::Sum])
}

fn check(case: &Case, what: &str, eval: &Evaluation<String, MetricValues>) {
    let got: Vec<String> = eval.changes.iter().map(row).collect();
    let expected = read_lines(&case.dir.join("expected.jsonl"));
    if got != expected {
        let first = got
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        panic!(
            "{}: {what} differs from expected.jsonl at row {first} (got {} rows, expected {})\n  got:      {:?}\n  expected: {:?}",
            case.name,
            got.len(),
            expected.len(),
            got.get(first),
            expected.get(first)
        );
    }
    let late: Vec<String> = eval
        .late
        .iter()
        .map(|(i, _)| case.raw_input[*i].clone())
        .collect();
    let mut late_sorted = late.clone();
    late_sorted.sort();
    let mut expected_late = read_lines(&case.dir.join("expected-late.jsonl"));
    expected_late.sort();
    assert_eq!(
        late_sorted, expected_late,
        "{}: {what} late records differ",
        case.name
    );
    assert!(eval.invalid.is_empty());
}

#[test]
fn state_machine_reproduces_expected_changelogs() {
    for case in cases() {
        let mut state = WindowState::try_new(case.spec, case.policy, metrics()).unwrap();
        let eval = evaluate(&mut state, &case.log);
        check(&case, "state machine", &eval);
    }
}

#[test]
fn reference_model_reproduces_expected_changelogs() {
    for case in cases() {
        let eval = reference::evaluate(case.spec, case.policy, &metrics(), &case.log);
        check(&case, "reference model", &eval);
    }
}

type Table = BTreeMap<(String, i64, i64), (u64, i64)>;

/// Keeps only windows not contained in another window of the same key (for
/// sessions, Flink never retracts a session that was merged into a larger one).
fn maximal(table: Table) -> Table {
    table
        .iter()
        .filter(|((k, s, e), _)| {
            !table
                .keys()
                .any(|(k2, s2, e2)| k2 == k && (s2, e2) != (s, e) && s2 <= s && e <= e2)
        })
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

#[test]
fn single_partition_final_tables_equal_flink() {
    let mut checked = 0;
    for case in cases() {
        let flink = read_lines(&case.dir.join("flink.jsonl"));
        if flink.is_empty() {
            continue;
        }
        let mut theirs = Table::new();
        for line in flink {
            let v: Json = serde_json::from_str(&line).unwrap();
            theirs.insert(
                (
                    v["key"].as_str().unwrap().to_owned(),
                    v["start"].as_i64().unwrap(),
                    v["end"].as_i64().unwrap(),
                ),
                (v["count"].as_u64().unwrap(), v["sum"].as_i64().unwrap()),
            );
        }
        let mut state = WindowState::try_new(case.spec, case.policy, metrics()).unwrap();
        let eval = evaluate(&mut state, &case.log);
        let mut ours = Table::new();
        for c in &eval.changes {
            let k = (c.key.clone(), c.window.start, c.window.end);
            match c.kind {
                tidemark_windows::ChangeKind::Retract => {
                    ours.remove(&k);
                }
                _ => {
                    let sum = c.value.sum.unwrap().as_f64() as i64;
                    ours.insert(k, (c.value.count.unwrap(), sum));
                }
            }
        }
        assert_eq!(
            maximal(ours),
            maximal(theirs),
            "{}: final table differs from Flink's",
            case.name
        );
        checked += 1;
    }
    assert!(
        checked >= 7,
        "expected the single-partition Flink cases, checked {checked}"
    );
}
