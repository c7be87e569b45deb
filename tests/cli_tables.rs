//! Tables through the binary: a job file with a versioned table (moves,
//! deletes, out-of-order and too-late updates, two partitions) and a static
//! one (`time = "none"`), joined inner and left, grouping a three-partition
//! click stream by an attached field.
//!
//! - The rows equal those of the plain window job (no tables, through the
//!   binary too) over the stream with each record's fields as the
//!   reference model of the join gives them (Theorem E); the late records
//!   the join wrote are the model's refusals.
//! - Outputs are byte-identical for 1 and 3 workers and across batch sizes.
//! - `--table` / `--enrich` flags give the same bytes as the job file.
//! - Misconfigurations are refused with a message naming the table.
//!
//! Run with `cargo test --test cli_tables`.

use std::path::Path;
use std::process::{Command, Output};

use tidemark::windows::join_reference::{self as model, Reject};
use tidemark::windows::Field;

const USERS: u64 = 8;
const COUNTRIES: [&str; 3] = ["fr", "de", "jp"];
const REFUSED: &str = "refused";

struct Click {
    user: String,
    ts: i64,
    amount: i64,
}

struct Update {
    user: String,
    ts: i64,
    country: Option<String>,
}

fn rng(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    }
}

fn clicks() -> Vec<Vec<Click>> {
    let mut next = rng(7);
    (0..3)
        .map(|p| {
            (0..400i64)
                .map(|o| {
                    let late = if next(25) == 0 { next(4_000) as i64 } else { 0 };
                    Click {
                        user: format!("u{}", next(USERS)),
                        ts: 100_000 + o * 40 + p * 3 - next(100) as i64 - late,
                        amount: next(100) as i64,
                    }
                })
                .collect()
        })
        .collect()
}

fn updates() -> Vec<Vec<Update>> {
    let mut next = rng(11);
    (0..2)
        .map(|_| {
            (0..40i64)
                .map(|o| {
                    let late = if next(6) == 0 { next(3_000) as i64 } else { 0 };
                    Update {
                        user: format!("u{}", next(USERS)),
                        ts: 99_000 + o * 400 - next(300) as i64 - late,
                        // One update in seven is a delete (no country).
                        country: (next(7) != 0).then(|| COUNTRIES[next(3) as usize].to_owned()),
                    }
                })
                .collect()
        })
        .collect()
}

const TIERS: [(&str, &str); 2] = [("fr", "gold"), ("de", "silver")];

/// Writes the stream, the users table and the tiers table under `dir`.
fn write_inputs(dir: &Path) {
    std::fs::create_dir_all(dir.join("clicks")).unwrap();
    std::fs::create_dir_all(dir.join("users")).unwrap();
    for (p, part) in clicks().iter().enumerate() {
        let text: String = part
            .iter()
            .map(|c| {
                format!(
                    "{{\"user\":\"{}\",\"ts\":{},\"amount\":{}}}\n",
                    c.user, c.ts, c.amount
                )
            })
            .collect();
        std::fs::write(dir.join(format!("clicks/part-{p}.jsonl")), text).unwrap();
    }
    for (p, part) in updates().iter().enumerate() {
        let text: String = part
            .iter()
            .map(|u| match &u.country {
                Some(c) => format!(
                    "{{\"user\":\"{}\",\"ts\":{},\"country\":\"{c}\"}}\n",
                    u.user, u.ts
                ),
                None => format!("{{\"user\":\"{}\",\"ts\":{}}}\n", u.user, u.ts),
            })
            .collect();
        std::fs::write(dir.join(format!("users/part-{p}.jsonl")), text).unwrap();
    }
    let tiers: String = TIERS
        .iter()
        .map(|(c, t)| format!("{{\"country\":\"{c}\",\"tier\":\"{t}\"}}\n"))
        .collect();
    std::fs::write(dir.join("tiers.jsonl"), tiers).unwrap();
}

const JOB: &str = r#"
input = "clicks"
window = "tumbling:1s"
delay = "200ms"
key = "country"
agg = ["count", "sum(amount)", "count_distinct(user)", "latest(tier)"]

[[table]]
name = "users"
input = "users"
key = "user"
fields = ["country"]
delay = "300ms"

[[table]]
name = "tiers"
input = "tiers.jsonl"
key = "country"
time = "none"
fields = "tier"

[[enrich]]
table = "users"
on = "user"
mode = "inner"

[[enrich]]
table = "tiers"
on = "country"
defaults = { tier = "none" }
"#;

fn tidemark(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Runs the job with `args`: rows, late records, dead letters.
fn run(dir: &Path, args: &[&str]) -> (String, String, String) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--output",
        "rows.jsonl",
        "--late",
        "late.jsonl",
        "--dead-letter",
        "dead.jsonl",
        "--quiet",
    ]);
    let out = tidemark(dir, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    (read("rows.jsonl"), read("late.jsonl"), read("dead.jsonl"))
}

/// The model of the job's join.
fn model_job() -> model::JoinJob {
    let text = |s: &str| Field::Text(s.into());
    model::JoinJob {
        stream: clicks()
            .iter()
            .map(|p| {
                p.iter()
                    .map(|c| model::StreamRecord {
                        time: c.ts,
                        fields: vec![text(&c.user)],
                    })
                    .collect()
            })
            .collect(),
        delay: 200,
        history: 1_000,
        tables: vec![
            model::ModelTable {
                partitions: updates()
                    .iter()
                    .map(|p| {
                        p.iter()
                            .map(|u| model::TableRecord {
                                key: u.user.clone(),
                                time: u.ts,
                                fields: u.country.as_deref().map(|c| vec![text(c)]),
                            })
                            .collect()
                    })
                    .collect(),
                delay: 300,
                lateness: 0,
                is_static: false,
                width: 1,
            },
            model::ModelTable {
                partitions: vec![TIERS
                    .iter()
                    .map(|(c, t)| model::TableRecord {
                        key: (*c).to_owned(),
                        time: 0,
                        fields: Some(vec![text(t)]),
                    })
                    .collect()],
                delay: 200,
                lateness: 0,
                is_static: true,
                width: 1,
            },
        ],
        enrich: vec![
            model::Enrich {
                table: 0,
                on: 0,
                mode: model::Mode::Inner,
                defaults: vec![Field::Null],
            },
            model::Enrich {
                table: 1,
                on: 1,
                mode: model::Mode::Left,
                defaults: vec![text("none")],
            },
        ],
    }
}

/// Writes S′ (each click with the fields the model's join gives it; a
/// refused click keeps its place in its partition under a key of its own)
/// as a plain input under `dir/plain`.
fn write_plain(dir: &Path, job: &model::JoinJob) {
    std::fs::create_dir_all(dir.join("plain")).unwrap();
    let enriched = model::enriched(job);
    for (p, (part, fields)) in clicks().iter().zip(&enriched).enumerate() {
        let text: String = part
            .iter()
            .zip(fields)
            .map(|(c, f)| {
                let (country, tier) = match f {
                    Some(f) => (
                        model::key_text(&f[1]).unwrap(),
                        model::key_text(&f[2]).unwrap(),
                    ),
                    None => (REFUSED.to_owned(), "none".to_owned()),
                };
                format!(
                    "{{\"user\":\"{}\",\"ts\":{},\"amount\":{},\"country\":\"{country}\",\"tier\":\"{tier}\"}}\n",
                    c.user, c.ts, c.amount
                )
            })
            .collect();
        std::fs::write(dir.join(format!("plain/part-{p}.jsonl")), text).unwrap();
    }
}

#[test]
fn a_job_file_with_two_tables_gives_the_plain_job_over_the_joined_stream() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_inputs(dir);
    std::fs::write(dir.join("job.toml"), JOB).unwrap();
    let (rows, late, dead) = run(dir, &["--job", "job.toml"]);
    assert!(dead.is_empty(), "{dead}");
    assert!(rows.lines().count() > 20, "{rows}");
    // Moves and deletes are seen: rows for several countries, and records
    // without a row at their time.
    for c in COUNTRIES {
        assert!(rows.contains(&format!("\"key\":\"{c}\"")), "{c}");
    }

    let job = model_job();
    write_plain(dir, &job);
    let plain_job = JOB
        .split("[[table]]")
        .next()
        .unwrap()
        .replace("clicks", "plain");
    std::fs::write(dir.join("plain.toml"), plain_job).unwrap();
    let (plain_rows, plain_late, _) = run(dir, &["--job", "plain.toml"]);
    let refused = format!("\"key\":\"{REFUSED}\"");
    let keep = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.contains(&refused))
            .map(str::to_owned)
            .collect()
    };
    let lines = |s: &str| -> Vec<String> { s.lines().map(str::to_owned).collect() };
    assert_eq!(lines(&rows), keep(&plain_rows), "result rows");

    // The window's late records are the plain job's (the fields a table
    // attached included); the join's refusals are the model's.
    let window_late: Vec<String> = late
        .lines()
        .filter(|l| !l.contains("\"table\":"))
        .map(str::to_owned)
        .collect();
    assert_eq!(window_late, keep(&plain_late), "late records");
    let mut refusals: Vec<(u64, u64, String, String)> = late
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((
                v["partition"].as_u64()?,
                v["offset"].as_u64()?,
                v["reason"].as_str()?.to_owned(),
                v.get("table")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    refusals.sort();
    let names = ["users", "tiers"];
    let mut want: Vec<(u64, u64, String, String)> = model::join(&job)
        .rejected
        .iter()
        .map(|r| {
            let (reason, table) = match &r.reason {
                Reject::TooOld { table } => ("older than table history", *table),
                Reject::NoRow { table } => ("no table row", *table),
                Reject::TableLate { table } => ("table update too late", *table),
            };
            (
                u64::from(r.partition),
                r.offset,
                reason.to_owned(),
                names[table].to_owned(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(refusals, want);
    for reason in ["no table row", "table update too late"] {
        assert!(
            want.iter().any(|w| w.2 == reason),
            "the data exercise {reason}"
        );
    }
}

#[test]
fn workers_batches_and_flags_give_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_inputs(dir);
    std::fs::write(dir.join("job.toml"), JOB).unwrap();
    let one = run(dir, &["--job", "job.toml", "--workers", "1"]);
    assert!(!one.0.is_empty());
    for args in [
        ["--workers", "3", "--batch-size", "1024"],
        ["--workers", "3", "--batch-size", "7"],
        ["--workers", "2", "--batch-size", "1"],
    ] {
        let mut all = vec!["--job", "job.toml"];
        all.extend_from_slice(&args);
        assert_eq!(run(dir, &all), one, "{args:?}");
    }
    // The same job from flags alone.
    let flags = [
        "--input",
        "clicks",
        "--window",
        "tumbling:1s",
        "--delay",
        "200ms",
        "--key",
        "country",
        "--agg",
        "count,sum(amount),count_distinct(user),latest(tier)",
        "--table",
        r#"name = "users", input = "users", key = "user", fields = ["country"], delay = "300ms""#,
        "--table",
        r#"{ name = "tiers", input = "tiers.jsonl", key = "country", time = "none", fields = "tier" }"#,
        "--enrich",
        r#"table = "users", on = "user", mode = "inner""#,
        "--enrich",
        r#"table = "tiers", on = "country", defaults = { tier = "none" }"#,
        "--workers",
        "3",
    ];
    assert_eq!(run(dir, &flags), one, "flags");
}

#[test]
fn misconfigured_tables_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    write_inputs(dir);
    std::fs::write(dir.join("job.toml"), JOB).unwrap();
    let refused = |args: &[&str], want: &str| {
        let mut all = vec!["run", "--job", "job.toml", "--output", "rows.jsonl"];
        all.extend_from_slice(args);
        let out = tidemark(dir, &all);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?} ran");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };
    refused(
        &["--enrich", r#"table = "nope", on = "user""#],
        "enrich names table \"nope\", which is not declared (tables: users, tiers)",
    );
    refused(
        &["--table", "name = users"],
        "--table takes the keys of a job file's [[table]] as an inline TOML table",
    );
    refused(&["--checkpoint-dir", "ck"], "not supported with tables yet");
    refused(
        &[
            "--enrich",
            r#"table = "users", on = "tier""#,
            "--enrich",
            r#"table = "tiers", on = "country""#,
        ],
        "on = \"tier\" is not a field of the record",
    );
    let late_table = JOB.replace("delay = \"300ms\"", "delay = \"300ms\"\nlateness = \"1s\"");
    std::fs::write(dir.join("late.toml"), late_table).unwrap();
    let out = tidemark(
        dir,
        &["run", "--job", "late.toml", "--output", "rows.jsonl"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("table \"users\" has lateness 1000 ms, but windows follow the join"),
        "{err}"
    );
}

/// A followed job whose table has one update at time 0 while the stream
/// runs to 10 s: the table's stream time holds every window back until
/// `--idle-after` releases the idle table, which then follows the stream.
fn lagging_table(idle_after: Option<&str>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("clicks")).unwrap();
    let clicks: String = (0..100)
        .map(|i| format!("{{\"user\":\"u1\",\"ts\":{}}}\n", i * 100))
        .collect();
    std::fs::write(dir.join("clicks/part-0.jsonl"), clicks).unwrap();
    std::fs::write(
        dir.join("users.jsonl"),
        "{\"user\":\"u1\",\"ts\":0,\"country\":\"fr\"}\n",
    )
    .unwrap();
    let mut args = vec![
        "run",
        "--input",
        "clicks",
        "--window",
        "tumbling:1s",
        "--key",
        "country",
        "--agg",
        "count",
        "--table",
        r#"name = "users", input = "users.jsonl", key = "user", fields = ["country"]"#,
        "--enrich",
        r#"table = "users", on = "user""#,
        "--follow",
        "--output",
        "rows.jsonl",
    ];
    if let Some(after) = idle_after {
        args.extend_from_slice(&["--idle-after", after]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(&args)
        .current_dir(dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let want = "{\"key\":\"fr\",\"start\":8000,\"end\":9000,\"count\":10,\"kind\":\"final\"}";
    let started = std::time::Instant::now();
    let mut rows = String::new();
    while started.elapsed()
        < std::time::Duration::from_secs(if idle_after.is_some() { 20 } else { 2 })
    {
        rows = std::fs::read_to_string(dir.join("rows.jsonl")).unwrap_or_default();
        if rows.contains(want) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "a followed job runs until stopped"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() || out.status.code() == Some(130),
        "{out:?}"
    );
    let rows = std::fs::read_to_string(dir.join("rows.jsonl")).unwrap_or(rows);
    (rows, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_lagging_table_holds_the_windows_until_idle_after_releases_it() {
    let (held, _) = lagging_table(None);
    assert_eq!(held, "", "the table at time 0 holds every window back");
    let (released, stderr) = lagging_table(Some("200ms"));
    let expected: String = (0..9)
        .map(|w| {
            format!(
                "{{\"key\":\"fr\",\"start\":{},\"end\":{},\"count\":10,\"kind\":\"final\"}}\n",
                w * 1000,
                (w + 1) * 1000
            )
        })
        .collect();
    assert_eq!(released, expected, "{stderr}");
    assert!(stderr.contains("idle partitions released"), "{stderr}");
}
