//! The examples of `examples/`, run as a user runs them, their output
//! checked: against hand-checked expectations, and where an example builds
//! its own dataflow, against a [`Job`] over the same records.
//!
//! Run with `cargo test --test examples` (cargo builds the examples first).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use tidemark::engine::Collect;
use tidemark::sources::{MemorySource, Record, Value};
use tidemark::windows::{AggKind, WindowSpec};
use tidemark::Job;

/// The path of a built example: `target/<profile>/examples/NAME`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir.join("examples").join(name)
}

fn stdout_of(name: &str, args: &[&str]) -> String {
    let path = example(name);
    let out = Command::new(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{name} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn embed_prints_the_windows_of_both_sensors() {
    let out = stdout_of("embed", &[]);
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect();
    let keys: Vec<(&str, i64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap(),
                r["start"].as_i64().unwrap(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    // sensor-b's 900 arrives after its partition's stream time 1200: with
    // a 200 ms delay the watermark (1000) has passed [0, 1000): late.
    assert_eq!(
        keys,
        vec![
            ("sensor-a", 1_000, 2),
            ("sensor-b", 1_000, 1),
            ("sensor-a", 2_000, 1),
            ("sensor-b", 2_000, 1),
        ]
    );
}

#[test]
fn custom_aggregator_counts_distinct_visitors_on_two_workers() {
    assert_eq!(
        stdout_of("custom_aggregator", &[]),
        "\
/      -30000..30000  distinct visitors: 2 (final)
/           0..60000  distinct visitors: 2 (final)
/       30000..90000  distinct visitors: 3 (final)
/cart   30000..90000  distinct visitors: 2 (final)
/       60000..120000 distinct visitors: 2 (final)
/cart   60000..120000 distinct visitors: 2 (final)
"
    );
}

#[test]
fn typed_event_aggregates_two_fields_of_the_users_type() {
    assert_eq!(
        stdout_of("typed_event", &[]),
        "\
north  10:00 top spender ann (50.00)
south  10:00 top spender cid (12.00)
south  11:00 top spender dee (8.25)
dead letter (partition 1, offset 2): the fields [\"customer\", \"amount\"] make no event: invalid type: string \"lots\", expected f64
6 orders, 1 dead letter(s)
"
    );
}

#[test]
fn typed_sink_receives_rows_corrections_and_late_records() {
    let out = stdout_of("typed_sink", &[]);
    let expected = "\
final   eu [0, 1000) count Some(2) sum 12
final   us [0, 1000) count Some(1) sum 10
retract eu [0, 1000) count Some(2) sum 12
update  eu [0, 1000) count Some(3) sum 14
final   eu [1000, 2000) count Some(1) sum 1
final   us [1000, 2000) count Some(1) sum 20
final   eu [2000, 3000) count Some(1) sum 4
final   us [2000, 3000) count Some(1) sum 30
sum of shown rows per key: {\"eu\": 19, \"us\": 60}
late: partition 0 offset 5 (ts 50) missed [Window { start: 0, end: 1000 }]
";
    assert_eq!(out, expected);
}

#[test]
fn enrich_counts_each_click_in_its_users_country_at_the_clicks_time() {
    // ann moved to de at 09:01; bob was deleted at 09:01:30 (the default
    // country); cid's move to fr came too late for the table.
    assert_eq!(
        stdout_of("enrich", &[]),
        "\
09:00 fr       clicks 2 revenue 15 region europe (final)
09:00 jp       clicks 1 revenue 4 region asia (final)
09:00 us       clicks 1 revenue 6 region americas (final)
09:01 de       clicks 2 revenue 10 region europe (final)
09:01 unknown  clicks 1 revenue 8 region unknown (final)
09:01 us       clicks 1 revenue 2 region americas (final)
late: cid fr at 09:00:30: table update too late (table users)
table users: 6 records, 1 too late, 8 lookups
table countries: 4 records, 0 too late, 8 lookups
"
    );
}

/// The records of `examples/timely_fragment.rs`, as a log.
fn fragment_log() -> MemorySource {
    let part = |times: &[i64]| -> Vec<Record> {
        times
            .iter()
            .enumerate()
            .map(|(offset, &time)| Record {
                partition: 0,
                offset: 0,
                key: if offset % 2 == 0 { "web" } else { "app" }.into(),
                event_time: time,
                value: Value::Int(1 + offset as i64),
                fields: Vec::new(),
            })
            .collect()
    };
    MemorySource::new(vec![
        part(&[100, 450, 300, 1_200, 980, 2_100, 1_950, 3_000]),
        part(&[250, 900, 1_500, 1_400, 2_600, 2_900]),
    ])
}

#[test]
fn timely_fragment_gives_the_rows_of_the_same_job() {
    let out = stdout_of("timely_fragment", &[]);
    let (sink, rows) = Collect::new();
    Job::builder()
        .source(Arc::new(fragment_log()))
        .window(WindowSpec::tumbling(1_000))
        .delay(100)
        .aggs(&[AggKind::Count, AggKind::Sum])
        .results_sink(sink)
        .build()
        .unwrap()
        .run()
        .unwrap();
    let expected: String = rows
        .lock()
        .unwrap()
        .iter()
        .map(|row| {
            format!(
                "{} [{}, {}) count {:?} sum {:?} ({})\n",
                row.key,
                row.window.start,
                row.window.end,
                row.value.count,
                row.value.sum.map(|s| s.as_f64()),
                row.kind.name()
            )
        })
        .collect();
    assert!(expected.lines().count() >= 6, "{expected}");
    assert_eq!(out, expected);
}

#[test]
fn differential_join_sums_per_country_and_consolidates_to_the_final_table() {
    let out = stdout_of("differential_join", &[]);
    assert!(
        out.ends_with(
            "\
final:
  fr [0, 1000) 4
  fr [1000, 2000) 1
  jp [1000, 2000) 1
  jp [2000, 3000) 1
"
        ),
        "{out}"
    );
    // The allowed-late click of `bo` corrects [0, 1000) at frontier 1200.
    assert!(out.contains("t=1200  fr [0, 1000) +1"), "{out}");
}

#[test]
fn channel_source_windows_events_pushed_while_the_job_runs() {
    assert_eq!(
        stdout_of("channel_source", &[]),
        "\
sensor-a [0, 1000) count 6 sum 30
sensor-b [0, 1000) count 5 sum 25
sensor-c [0, 1000) count 11 sum 55
sensor-a [1000, 2000) count 5 sum 80
sensor-b [1000, 2000) count 5 sum 75
sensor-c [1000, 2000) count 10 sum 155
sensor-a [2000, 3000) count 4 sum 100
sensor-b [2000, 3000) count 5 sum 125
sensor-c [2000, 3000) count 9 sum 225
"
    );
}

/// The request log of `examples/sketches.rs`, as (endpoint, minute,
/// latency, user).
fn sketches_log() -> Vec<(String, i64, f64, u64)> {
    let mut seed = 42u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    let mut out = Vec::new();
    for p in 0..2i64 {
        for o in 0..6_000i64 {
            let endpoint = if next() % 3 == 0 {
                "/checkout"
            } else {
                "/search"
            };
            let latency = if next() % 50 == 0 {
                200 + next() % 2_000
            } else {
                5 + next() % 40
            };
            let user = next() % 700;
            let time = o * 30 + p * 7;
            out.push((endpoint.to_owned(), time / 60_000, latency as f64, user));
        }
    }
    out
}

#[test]
fn sketches_prints_percentiles_and_distinct_users_within_their_stated_error() {
    let out = stdout_of("sketches", &[]);
    let mut latencies: std::collections::BTreeMap<(String, i64), Vec<f64>> = Default::default();
    let mut users: std::collections::BTreeMap<(String, i64), std::collections::BTreeSet<u64>> =
        Default::default();
    for (endpoint, minute, latency, user) in sketches_log() {
        latencies
            .entry((endpoint.clone(), minute))
            .or_default()
            .push(latency);
        users.entry((endpoint, minute)).or_default().insert(user);
    }
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), latencies.len(), "{out}");
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let window = (fields[0].to_owned(), fields[1].parse::<i64>().unwrap());
        let value = |prefix: &str| -> f64 {
            let field = fields.iter().find(|f| f.starts_with(prefix)).unwrap();
            field[prefix.len()..].parse().unwrap()
        };
        let mut sorted = latencies[&window].clone();
        sorted.sort_by(f64::total_cmp);
        for (prefix, q) in [("p50=", 0.5), ("p99=", 0.99)] {
            let exact = sorted[(q * (sorted.len() as f64 - 1.0)) as usize];
            // Printed to one decimal: 1 % plus the rounding.
            let got = value(prefix);
            assert!(
                (got - exact).abs() <= 0.01 * exact + 0.05,
                "{line}: exact {prefix}{exact}"
            );
        }
        let distinct = users[&window].len() as f64;
        let got = value("users≈");
        assert!(
            (got - distinct).abs() <= 4.0 * 0.01625 * distinct,
            "{line}: exact {distinct}"
        );
    }
}
