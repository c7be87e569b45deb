//! A stream joined with tables at event time, then windowed by a field a
//! table attached: clicks per country and minute, where a click's country
//! is its user's country *as it was at the click's time*.
//!
//! - `users` is a versioned table (a changelog keyed by user, with a time
//!   field): ann moves from fr to de at 09:01, bob is deleted at 09:01:30
//!   (a record without `country` is a tombstone), and cid's move to fr,
//!   stamped 09:00:30, arrives after the table's watermark has passed it,
//!   so it never enters the table and goes to the late output.
//! - `countries` is a static table (`is_static`): read whole before the
//!   stream starts, every row valid at every time.
//!
//! The clicks decode only the fields the job needs from them: the field
//! the first join is `on` (`user`) and the fields the aggregations read
//! that no table attaches (`amount`), as `Tables::decode_fields` says; the
//! key (`country`) is attached, so the stream's own key is not read.
//!
//! Run with `cargo run --example enrich`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark::engine::table::{EnrichDef, JoinMode, TableDef, Tables};
use tidemark::engine::{Collect, JobAggregator, LateReason};
use tidemark::sources::{DecodeConfig, Format, MemorySource, NamedField, TimeFormat};
use tidemark::windows::{Aggs, Cell, Field, WindowSpec};
use tidemark::Job;

/// JSON lines with RFC 3339 times, decoding `named` (numbers where the
/// aggregations need them).
fn decode(key: &str, named: &[(&str, bool)]) -> DecodeConfig {
    let mut decode = DecodeConfig::new(Format::Jsonl);
    decode.fields.key = key.into();
    decode.time_format = TimeFormat::Rfc3339;
    decode.read_value = false;
    decode.require_value = false;
    decode.named = named
        .iter()
        .map(|&(name, number)| NamedField {
            name: name.into(),
            number,
        })
        .collect();
    decode
}

fn cell(c: &Cell) -> String {
    match c {
        Cell::Null => "null".into(),
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => f.to_string(),
        Cell::Text(t) => t.to_string(),
    }
}

fn field(f: &Field) -> String {
    match f {
        Field::Null => "null".into(),
        Field::Int(i) => i.to_string(),
        Field::Float(x) => x.to_string(),
        Field::Text(t) => t.to_string(),
    }
}

/// `HH:MM:SS` of a time in ms since the epoch (UTC).
fn clock(ms: i64) -> String {
    let s = ms.rem_euclid(86_400_000) / 1_000;
    format!("{:02}:{:02}:{:02}", s / 3_600, s / 60 % 60, s % 60)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The users changelog, one partition.
    let users = MemorySource::from_lines(
        vec![vec![
            r#"{"user":"ann","ts":"2026-11-02T08:00:00Z","country":"fr"}"#,
            r#"{"user":"bob","ts":"2026-11-02T08:00:00Z","country":"jp"}"#,
            r#"{"user":"cid","ts":"2026-11-02T08:00:00Z","country":"us"}"#,
            r#"{"user":"ann","ts":"2026-11-02T09:01:00Z","country":"de"}"#,
            r#"{"user":"bob","ts":"2026-11-02T09:01:30Z"}"#,
            r#"{"user":"cid","ts":"2026-11-02T09:00:30Z","country":"fr"}"#,
        ]],
        decode("user", &[("country", false)]),
    );
    // Reference data: no time field is read.
    let mut static_decode = decode("country", &[("region", false)]);
    static_decode.read_time = false;
    let countries = MemorySource::from_lines(
        vec![vec![
            r#"{"country":"fr","region":"europe"}"#,
            r#"{"country":"de","region":"europe"}"#,
            r#"{"country":"jp","region":"asia"}"#,
            r#"{"country":"us","region":"americas"}"#,
        ]],
        static_decode,
    );
    let table = |name: &str, source: MemorySource, field: &str, is_static: bool| TableDef {
        name: name.into(),
        source: Arc::new(source),
        fields: vec![field.into()],
        delay: None, // the job's
        lateness: 0, // windows follow
        history: None,
        is_static,
    };
    let step = |table: &str, on: &str, default: (&str, &str)| EnrichDef {
        table: table.into(),
        on: on.into(),
        mode: JoinMode::Left,
        defaults: BTreeMap::from([(default.0.into(), Field::Text(default.1.into()))]),
    };
    let tables = Tables {
        tables: vec![
            table("users", users, "country", false),
            table("countries", countries, "region", true),
        ],
        // The second step joins on a field the first attached.
        enrich: vec![
            step("users", "user", ("country", "unknown")),
            step("countries", "country", ("region", "unknown")),
        ],
        ..Tables::default()
    };

    let aggs = Aggs::parse(&["clicks=count", "revenue=sum(amount)", "latest(region)"])?;
    let key = ["country".to_owned()];
    let (named, key_from_stream) = tables.decode_fields(&aggs.record_fields(), &key);
    assert_eq!(named, ["user", "amount"]);
    let named: Vec<(&str, bool)> = named.iter().map(|n| (n.as_str(), n == "amount")).collect();
    let mut click_decode = decode("user", &named);
    click_decode.read_key = key_from_stream;

    // The clicks, two partitions.
    let clicks = MemorySource::from_lines(
        vec![
            vec![
                r#"{"user":"ann","ts":"2026-11-02T09:00:10Z","amount":10}"#,
                r#"{"user":"ann","ts":"2026-11-02T09:00:50Z","amount":5}"#,
                r#"{"user":"ann","ts":"2026-11-02T09:01:10Z","amount":7}"#,
                r#"{"user":"ann","ts":"2026-11-02T09:01:40Z","amount":3}"#,
            ],
            vec![
                r#"{"user":"bob","ts":"2026-11-02T09:00:20Z","amount":4}"#,
                r#"{"user":"cid","ts":"2026-11-02T09:00:40Z","amount":6}"#,
                r#"{"user":"cid","ts":"2026-11-02T09:01:20Z","amount":2}"#,
                r#"{"user":"bob","ts":"2026-11-02T09:01:45Z","amount":8}"#,
            ],
        ],
        click_decode,
    );

    let mut builder = Job::builder()
        .source(Arc::new(clicks))
        .window(WindowSpec::tumbling(60_000))
        .delay(5_000)
        .workers(2)
        .aggregator(aggs);
    for t in tables.tables {
        builder = builder.table(t);
    }
    for e in tables.enrich {
        builder = builder.enrich(e);
    }
    let (rows, collected) = Collect::new();
    let (late, late_records) = Collect::new();
    let summary = builder
        .key_fields(key)
        .results_sink(rows)
        .late_sink(late)
        .build()?
        .run()?;

    let rows = collected.lock().map(|r| r.clone()).unwrap_or_default();
    let mut shown = Vec::new();
    for row in &rows {
        let cells: Vec<String> = row.value.0.iter().map(cell).collect();
        let line = format!(
            "{} {:<8} clicks {} revenue {} region {} ({})",
            &clock(row.window.start)[..5],
            row.key.as_str(),
            cells[0],
            cells[1],
            cells[2],
            row.kind.name()
        );
        println!("{line}");
        shown.push(line);
    }
    let late = late_records.lock().map(|l| l.clone()).unwrap_or_default();
    for l in &late {
        let fields: Vec<String> = l.event.fields.iter().map(field).collect();
        println!(
            "late: {} {} at {}: {}{}",
            l.event.key.as_str(),
            fields.join(" "),
            clock(l.event.time),
            l.reason.name(),
            l.table
                .as_deref()
                .map(|t| format!(" (table {t})"))
                .unwrap_or_default()
        );
    }
    for t in &summary.tables {
        println!(
            "table {}: {} records, {} too late, {} lookups",
            t.name, t.records, t.too_late, t.lookups
        );
    }

    // ann's clicks after her move count in de; bob's click after his
    // deletion has no country (the default); cid's late move never
    // entered the table, so both of his clicks count in us.
    let row = |minute: &str, country: &str| {
        shown
            .iter()
            .find(|l| l.starts_with(&format!("{minute} {country:<8} ")))
            .cloned()
            .unwrap_or_else(|| panic!("no row for {country} at {minute}"))
    };
    assert!(row("09:00", "fr").contains("clicks 2 revenue 15 region europe"));
    assert!(row("09:01", "de").contains("clicks 2 revenue 10 region europe"));
    assert!(row("09:01", "unknown").contains("clicks 1 revenue 8 region unknown"));
    assert!(row("09:01", "us").contains("clicks 1 revenue 2 region americas"));
    assert!(!shown.iter().any(|l| l.starts_with("09:01 fr ")));
    assert_eq!(rows.len(), 6);
    assert_eq!(late.len(), 1);
    assert_eq!(
        (
            late[0].reason,
            late[0].table.as_deref(),
            late[0].event.key.as_str()
        ),
        (LateReason::TableTooLate, Some("users"), "cid")
    );
    Ok(())
}
