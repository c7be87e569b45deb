//! Records with named fields through the binary: a compound key
//! (`--key country,page`) and five aggregations over their own fields
//! (`count`, `revenue=sum(amount)`, `count_distinct(user)`,
//! `p99_latency=quantile(meta.latency, 0.99)` over a nested field,
//! `latest(user)`) on a three-partition
//! directory with nulls, wrong types, missing key fields and late records.
//! Every row is checked against a computation made here, apart from the
//! engine; the outputs are byte-identical for 1 and 3 workers; a job file
//! with `key = [...]` and `agg = [...]` gives the same bytes as the flags.
//!
//! Run with `cargo test --test cli_fields`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;

const AGG: &str = "count,revenue=sum(amount),count_distinct(user),p99_latency=quantile(meta.latency, 0.99),latest(user)";
const COUNTRIES: [&str; 3] = ["US", "FR", "JP"];
const PAGES: [&str; 2] = ["home", "cart"];

/// One input record as written, and what the engine must make of it.
struct Line {
    partition: u32,
    offset: u64,
    text: String,
    /// `None`: a dead letter.
    record: Option<Rec>,
    /// Injected far behind its partition: dropped as too late.
    late: bool,
}

#[derive(Clone)]
struct Rec {
    country: String,
    page: String,
    ts: i64,
    amount: Option<i64>,
    user: Option<String>,
    latency: Option<f64>,
}

/// A deterministic log: three partitions of 600 lines, in time order per
/// partition except injected stragglers 20 s behind; about one line in
/// forty has a text amount or no country (dead letters).
fn log() -> Vec<Line> {
    let mut state = 11u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut lines = Vec::new();
    for p in 0..3u32 {
        for o in 0..600u64 {
            let late = o > 100 && next() % 30 == 0;
            let ts = 100_000 + o as i64 * 50 + i64::from(p) * 7 - if late { 20_000 } else { 0 };
            let country = COUNTRIES[(next() % 3) as usize];
            let page = PAGES[(next() % 2) as usize];
            let amount = match next() % 5 {
                0 => None,
                _ => Some((next() % 1_000) as i64 - 100),
            };
            let user = match next() % 6 {
                0 => None,
                n => Some(format!("u{}", (n * 7 + next() % 9) % 23)),
            };
            let latency = match next() % 4 {
                0 => None,
                _ => Some((1 + next() % 100_000) as f64 / 100.0),
            };
            let broken = next() % 40;
            let mut obj = serde_json::Map::new();
            if broken != 1 {
                obj.insert("country".into(), country.into());
            }
            obj.insert("page".into(), page.into());
            obj.insert("ts".into(), ts.into());
            match (broken, amount) {
                (0, _) => {
                    obj.insert("amount".into(), "a lot".into());
                }
                (_, Some(a)) => {
                    obj.insert("amount".into(), a.into());
                }
                (_, None) if next() % 2 == 0 => {
                    obj.insert("amount".into(), Json::Null);
                }
                _ => {}
            }
            if let Some(u) = &user {
                obj.insert("user".into(), u.clone().into());
            }
            if let Some(l) = latency {
                obj.insert("meta".into(), serde_json::json!({ "latency": l }));
            }
            let dead = broken <= 1;
            lines.push(Line {
                partition: p,
                offset: o,
                text: Json::Object(obj).to_string(),
                record: (!dead).then(|| Rec {
                    country: country.into(),
                    page: page.into(),
                    ts,
                    amount,
                    user,
                    latency,
                }),
                late,
            });
        }
    }
    lines
}

fn write_log(dir: &Path, lines: &[Line]) {
    for p in 0..3u32 {
        let text: String = lines
            .iter()
            .filter(|l| l.partition == p)
            .map(|l| format!("{}\n", l.text))
            .collect();
        std::fs::write(dir.join(format!("p{p}.jsonl")), text).unwrap();
    }
}

/// Runs the binary; returns (results, late, dead letters).
fn run<S: AsRef<std::ffi::OsStr>>(dir: &Path, out: &Path, args: &[S]) -> (String, String, String) {
    let status = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("run")
        .args(args)
        .arg("--output")
        .arg(out.join("rows.jsonl"))
        .arg("--late")
        .arg(out.join("late.jsonl"))
        .arg("--dead-letter")
        .arg(out.join("dead.jsonl"))
        .arg("--quiet")
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{:?}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>()
    );
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    (read("rows.jsonl"), read("late.jsonl"), read("dead.jsonl"))
}

fn flags(workers: &str) -> Vec<String> {
    [
        "--input",
        "log",
        "--window",
        "tumbling:1s",
        "--key",
        "country,page",
        "--agg",
        AGG,
        "--workers",
        workers,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The exact q-quantile as the sketch approximates it (rank ⌊q·(n−1)⌋).
fn exact_quantile(values: &mut [f64], q: f64) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    (!values.is_empty()).then(|| values[(q * (values.len() as f64 - 1.0)) as usize])
}

#[test]
fn compound_key_and_five_aggregations_match_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("log")).unwrap();
    let lines = log();
    write_log(&dir.path().join("log"), &lines);
    let one = tempfile::tempdir().unwrap();
    let three = tempfile::tempdir().unwrap();
    let args1 = flags("1");
    let args3 = flags("3");
    let (rows, late, dead) = run(dir.path(), one.path(), &args1);
    let again = run(dir.path(), three.path(), &args3);
    assert_eq!(
        (&rows, &late, &dead),
        (&again.0, &again.1, &again.2),
        "1 and 3 workers differ"
    );

    // The dead letters: every broken line, each reason naming its field.
    let dead_lines: Vec<Json> = dead
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want_dead: Vec<&Line> = lines.iter().filter(|l| l.record.is_none()).collect();
    assert!(want_dead.len() > 20, "the log has dead letters");
    assert_eq!(dead_lines.len(), want_dead.len());
    for d in &dead_lines {
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.contains("\"amount\"") || reason.contains("missing field \"country\""),
            "{reason}"
        );
    }

    // The late records: exactly the stragglers, with their fields.
    let want_late: BTreeSet<(u32, u64)> = lines
        .iter()
        .filter(|l| l.late && l.record.is_some())
        .map(|l| (l.partition, l.offset))
        .collect();
    assert!(want_late.len() > 20, "the log has late records");
    let got_late: BTreeSet<(u32, u64)> = late
        .lines()
        .map(|l| {
            let v: Json = serde_json::from_str(l).unwrap();
            assert!(v["country"].is_string() && v["page"].is_string(), "{l}");
            assert!(v["fields"].is_object(), "{l}");
            (
                v["partition"].as_u64().unwrap() as u32,
                v["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got_late, want_late);

    // The rows, computed here.
    type Group = (String, String, i64);
    let mut groups: BTreeMap<Group, Vec<(&Rec, u32, u64)>> = BTreeMap::new();
    for l in &lines {
        if let (Some(r), false) = (&l.record, l.late) {
            let start = r.ts.div_euclid(1_000) * 1_000;
            groups
                .entry((r.country.clone(), r.page.clone(), start))
                .or_default()
                .push((r, l.partition, l.offset));
        }
    }
    let got: Vec<Json> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), groups.len());
    for (row, line) in got.iter().zip(rows.lines()) {
        // The columns, in order: the key's fields, the window, the
        // aggregations as named, the kind.
        let names = [
            "country",
            "page",
            "start",
            "end",
            "count",
            "revenue",
            "count_distinct_user",
            "p99_latency",
            "latest_user",
            "kind",
        ];
        assert_eq!(row.as_object().unwrap().len(), names.len(), "{line}");
        let at: Vec<usize> = names
            .iter()
            .map(|n| {
                line.find(&format!("\"{n}\":"))
                    .unwrap_or_else(|| panic!("{n} in {line}"))
            })
            .collect();
        assert!(at.is_sorted(), "{line}");
        let key = (
            row["country"].as_str().unwrap().to_owned(),
            row["page"].as_str().unwrap().to_owned(),
            row["start"].as_i64().unwrap(),
        );
        let members = &groups[&key];
        assert_eq!(
            row["count"].as_u64().unwrap(),
            members.len() as u64,
            "{row}"
        );
        let amounts: Vec<i64> = members.iter().filter_map(|m| m.0.amount).collect();
        if amounts.is_empty() {
            assert!(row["revenue"].is_null(), "{row}");
        } else {
            assert_eq!(
                row["revenue"].as_i64().unwrap(),
                amounts.iter().sum::<i64>(),
                "{row}"
            );
        }
        let users: BTreeSet<&String> = members.iter().filter_map(|m| m.0.user.as_ref()).collect();
        assert_eq!(
            row["count_distinct_user"].as_u64().unwrap(),
            users.len() as u64,
            "{row}"
        );
        let mut latencies: Vec<f64> = members.iter().filter_map(|m| m.0.latency).collect();
        match exact_quantile(&mut latencies, 0.99) {
            None => assert!(row["p99_latency"].is_null(), "{row}"),
            Some(exact) => {
                let p99 = row["p99_latency"].as_f64().unwrap();
                assert!(
                    (p99 - exact).abs() <= 0.01 * exact + 1e-9,
                    "{row}: exact {exact}"
                );
            }
        }
        let latest = members
            .iter()
            .filter(|m| m.0.user.is_some())
            .max_by_key(|m| (m.0.ts, m.1, m.2))
            .map(|m| m.0.user.clone().unwrap());
        assert_eq!(
            row["latest_user"].as_str().map(str::to_owned),
            latest,
            "{row}"
        );
    }
}

#[test]
fn a_job_file_with_key_and_agg_lists_gives_the_flags_bytes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("log")).unwrap();
    write_log(&dir.path().join("log"), &log());
    std::fs::write(
        dir.path().join("job.toml"),
        r#"
input = "log"
window = "tumbling:1s"
key = ["country", "page"]
agg = ["count", "revenue=sum(amount)", "count_distinct(user)", "p99_latency=quantile(meta.latency, 0.99)", "latest(user)"]
workers = 3
"#,
    )
    .unwrap();
    let from_file = tempfile::tempdir().unwrap();
    let from_flags = tempfile::tempdir().unwrap();
    let a = run(dir.path(), from_file.path(), &["--job", "job.toml"]);
    let args = flags("2");
    let b = run(dir.path(), from_flags.path(), &args);
    assert_eq!(a, b);
    assert!(a.0.lines().count() > 100);
}

#[test]
fn field_aggregation_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "{\"key\":\"a\",\"ts\":1}\n").unwrap();
    for (agg, says) in [
        ("median(x)", "unknown aggregation \"median\""),
        ("quantile(x)", "quantile takes a field and a fraction"),
        ("quantile(x, 2)", "a fraction from 0 to 1"),
        (
            "sum(a),sum(a),s=max(b),s=min(b)",
            "would both be the column \"s\"",
        ),
        ("sum(a", "missing \")\""),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args([
                "run",
                "--input",
                "in.jsonl",
                "--window",
                "tumbling:1s",
                "--agg",
                agg,
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{agg}");
        assert!(stderr.contains(says), "{agg}: {stderr}");
        assert!(!stderr.contains("panicked"), "{agg}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "run",
            "--input",
            "in.jsonl",
            "--window",
            "tumbling:1s",
            "--key",
            "key,",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("invalid --key \"key,\": a compound key names each of its fields"),
        "{stderr}"
    );
    // A field no record has counts 0; latest reads any field, the time too.
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "run",
            "--input",
            "in.jsonl",
            "--window",
            "tumbling:1s",
            "--agg",
            "count,count(user),latest(ts)",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"key\":\"a\",\"start\":0,\"end\":1000,\"count\":1,\"count_user\":0,\"latest_ts\":1,\"kind\":\"final\"}\n"
    );
}

/// The same records as CSV with a header (empty cells for nulls, the
/// latency as a column): the rows, late records' positions and dead-letter
/// count agree with the JSON-lines run, through the CSV scanner's named
/// and compound-key columns.
#[test]
fn csv_columns_give_the_json_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("log")).unwrap();
    std::fs::create_dir(dir.path().join("csv")).unwrap();
    let lines = log();
    write_log(&dir.path().join("log"), &lines);
    for p in 0..3u32 {
        // The country last: a line without one is a row without its last
        // cell (an empty cell would be the key "").
        let mut text = String::from("page,ts,user,amount,latency,country\n");
        for l in lines.iter().filter(|l| l.partition == p) {
            let v: Json = serde_json::from_str(&l.text).unwrap();
            let cell = |v: &Json| match v {
                Json::Null => String::new(),
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            text.push_str(&format!(
                "{},{},{},{},{}",
                cell(&v["page"]),
                cell(&v["ts"]),
                cell(&v["user"]),
                cell(&v["amount"]),
                cell(&v["meta"]["latency"]),
            ));
            if let Some(country) = v["country"].as_str() {
                text.push_str(&format!(",{country}"));
            }
            text.push('\n');
        }
        std::fs::write(dir.path().join(format!("csv/p{p}.csv")), text).unwrap();
    }
    let json_out = tempfile::tempdir().unwrap();
    let csv_out = tempfile::tempdir().unwrap();
    let args = flags("2");
    let json = run(dir.path(), json_out.path(), &args);
    let csv_agg = AGG.replace("meta.latency", "latency");
    let csv = run(
        dir.path(),
        csv_out.path(),
        &[
            "--input",
            "csv",
            "--header",
            "--window",
            "tumbling:1s",
            "--key",
            "country,page",
            "--agg",
            &csv_agg,
            "--workers",
            "3",
        ],
    );
    assert_eq!(csv.0, json.0, "result rows");
    let positions = |text: &str| -> Vec<(u64, u64)> {
        text.lines()
            .map(|l| {
                let v: Json = serde_json::from_str(l).unwrap();
                (
                    v["partition"].as_u64().unwrap(),
                    v["offset"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(positions(&csv.1), positions(&json.1), "late records");
    // A row without a country cell is a dead letter, as a line without
    // the field is.
    assert_eq!(positions(&csv.2), positions(&json.2), "dead letters");
}

/// Sliding and session windows, with updates and allowed lateness: the
/// five aggregations' rows (sketches merged across panes and sessions) are
/// byte-identical for 1 and 3 workers and for batch sizes 7 and 1024.
#[test]
fn sliding_and_session_rows_do_not_depend_on_workers_or_batches() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("log")).unwrap();
    write_log(&dir.path().join("log"), &log());
    for window in ["sliding:2s/500ms", "session:120ms"] {
        let mut outputs = Vec::new();
        for (workers, batch) in [("1", "1024"), ("3", "7")] {
            let out = tempfile::tempdir().unwrap();
            let mut args = flags(workers);
            args[3] = window.to_owned();
            args.extend(
                [
                    "--emit",
                    "updates",
                    "--lateness",
                    "3s",
                    "--batch-size",
                    batch,
                ]
                .map(str::to_owned),
            );
            outputs.push(run(dir.path(), out.path(), &args));
        }
        assert!(outputs[0].0.lines().count() > 100, "{window}");
        assert!(outputs[0].0.contains("\"kind\":\"update\""), "{window}");
        assert_eq!(outputs[0], outputs[1], "{window}");
    }
}

/// The shipped job over named fields (`examples/pages.toml`) runs on the
/// shipped click log, with its columns, the same on 1 and 3 workers.
#[test]
fn the_shipped_pages_job_runs() {
    let job = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pages.toml");
    let mut outputs = Vec::new();
    for workers in ["1", "3"] {
        let out = tempfile::tempdir().unwrap();
        let run = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .arg("run")
            .arg("--job")
            .arg(&job)
            .args(["--workers", workers, "--quiet", "--late"])
            .arg(out.path().join("late.jsonl"))
            .arg("--dead-letter")
            .arg(out.path().join("dead.jsonl"))
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        outputs.push(String::from_utf8(run.stdout).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    let first = outputs[0].lines().next().unwrap();
    assert!(
        first.starts_with(r#"{"key":"/","start":"2026-11-02T08:59:00.000Z","end":"2026-11-02T09:00:00.000Z","requests":1,"revenue":42,"count_distinct_user":1,"max_amount":42,"latest_user":"grace","#),
        "{first}"
    );
    assert_eq!(outputs[0].matches("\"kind\":\"final\"").count(), 20);
}

/// A job whose aggregations name their fields does not read `value`: a
/// malformed value is no dead letter there, and is one for `sum`.
#[test]
fn value_is_read_only_when_an_aggregation_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"key\":\"a\",\"ts\":1,\"value\":\"oops\",\"user\":\"u\"}\n\
         {\"key\":\"a\",\"ts\":2,\"value\":1,\"user\":\"v\"}\n\
         {\"key\":\"a\",\"ts\":3,\"value\":2,\"user\":\"u\"}\n",
    )
    .unwrap();
    for (agg, count, dead) in [("count,count_distinct(user)", 3, 0), ("count,sum", 2, 1)] {
        let out = tempfile::tempdir().unwrap();
        let (results, _, dead_letters) = run(
            dir.path(),
            out.path(),
            &[
                "--input",
                "in.jsonl",
                "--window",
                "tumbling:1s",
                "--agg",
                agg,
            ],
        );
        assert!(
            results.contains(&format!("\"count\":{count},")),
            "{agg}: {results}"
        );
        assert_eq!(dead_letters.lines().count(), dead, "{agg}");
    }
}
