//! The trade-off metrics on hand-made inputs whose answers are known: a
//! delay covering the disorder gives complete first results and drops
//! nothing; with no delay the stragglers are exactly the dropped share;
//! a lateness beyond the stragglers' delay makes every last result the
//! truth with one correction per straggler; a window fired at the
//! watermark has an event-time latency of exactly the delay; the
//! deterministic columns are the same for 1 and 2 workers.
//!
//! Run with `cargo test --test tradeoff`.

use std::sync::Arc;

use tidemark::tradeoff::{csv_row, measure, truth, Setting};
use tidemark_sources::{MemorySource, Record, Source, Value};
use tidemark_windows::{EmitMode, WindowSpec};

/// Two partitions, a record every 100 ms each for 200 s, up to 250 ms
/// earlier than its place (at most 150 ms behind its partition's stream
/// time); with `stragglers`, every 100th record from offset 100 on is
/// instead 5 s behind (a distinct window each time).
fn input(stragglers: bool) -> (Arc<dyn Source>, usize) {
    let mut parts = Vec::new();
    let mut late = 0;
    for p in 0..2u32 {
        let mut part = Vec::new();
        for o in 0..2_000u64 {
            let jitter = ((o * 37 + u64::from(p) * 11) % 26) as i64 * 10;
            let mut t = 1_000_000 + o as i64 * 100 - jitter;
            if stragglers && o >= 100 && o % 100 == 0 {
                t -= 5_000 - jitter;
                late += 1;
            }
            part.push(Record {
                partition: p,
                offset: o,
                key: format!("k{}", o % 3).into(),
                event_time: t,
                value: Value::Int(1 + (o % 5) as i64),
            });
        }
        parts.push(part);
    }
    (Arc::new(MemorySource::new(parts)), late)
}

fn setting(delay: i64, lateness: i64, emit: EmitMode) -> Setting {
    Setting {
        delay,
        lateness,
        emit,
    }
}

#[test]
fn a_delay_covering_the_disorder_gives_complete_first_results_at_exactly_that_latency() {
    let (source, _) = input(false);
    let window = WindowSpec::tumbling(1_000);
    let truth = truth(Arc::clone(&source), window).unwrap();
    let r = measure(source, window, setting(200, 0, EmitMode::Final), &truth, 1).unwrap();
    assert_eq!(r.windows, truth.len() as u64);
    assert!(r.windows > 500);
    assert_eq!(r.first_complete, 1.0);
    assert_eq!(r.dropped, 0.0);
    assert_eq!(r.corrections_per_window, 0.0);
    // Fired when the watermark (stream time − delay) reaches the end.
    assert_eq!((r.first_latency.p50, r.first_latency.max), (200, 200));
    assert_eq!(r.last_latency, r.first_latency);
}

#[test]
fn with_no_delay_the_stragglers_are_the_dropped_share() {
    let (source, late) = input(true);
    let window = WindowSpec::tumbling(1_000);
    let truth = truth(Arc::clone(&source), window).unwrap();
    let r = measure(source, window, setting(0, 0, EmitMode::Final), &truth, 1).unwrap();
    // The ordinary disorder (up to 150 ms) is late too with no delay; a
    // delay that covers it leaves exactly the stragglers.
    let (source, _) = input(true);
    let covered = measure(source, window, setting(200, 0, EmitMode::Final), &truth, 1).unwrap();
    assert!(r.dropped > covered.dropped);
    assert_eq!(covered.dropped, late as f64 / 4_000.0);
    assert!(covered.first_complete < 1.0 && covered.first_complete > 0.9);
}

#[test]
fn a_lateness_beyond_the_stragglers_makes_last_results_true_with_one_correction_each() {
    let (source, late) = input(true);
    let window = WindowSpec::tumbling(1_000);
    let truth = truth(Arc::clone(&source), window).unwrap();
    let r = measure(
        source,
        window,
        setting(200, 6_000, EmitMode::Final),
        &truth,
        1,
    )
    .unwrap();
    assert_eq!(r.dropped, 0.0);
    assert_eq!(r.last_complete, 1.0);
    assert!(r.first_complete < 1.0);
    let corrections = r.corrections_per_window * r.windows as f64;
    assert!(
        (corrections - late as f64).abs() < 1e-9,
        "{corrections} corrections, {late} stragglers"
    );
    // A straggler 5 s behind corrects a window that ended 4 to 5 s before.
    assert!(
        (3_700..=5_000).contains(&r.last_latency.max),
        "{:?}",
        r.last_latency
    );
    assert_eq!(r.first_latency.max, 200);
}

#[test]
fn the_deterministic_columns_do_not_depend_on_the_worker_count() {
    let window = WindowSpec::sliding(2_000, 500);
    let (source, _) = input(true);
    let truth = truth(Arc::clone(&source), window).unwrap();
    for s in [
        setting(0, 0, EmitMode::Final),
        setting(50, 1_000, EmitMode::Updates),
        setting(200, 10_000, EmitMode::Final),
    ] {
        let rows: Vec<String> = [1, 2]
            .iter()
            .map(|&w| {
                let (source, _) = input(true);
                let row = csv_row(&measure(source, window, s, &truth, w).unwrap());
                // Every column but the last (records/s).
                row.rsplit_once(',').unwrap().0.to_owned()
            })
            .collect();
        assert_eq!(rows[0], rows[1], "{s:?}");
    }
}

#[test]
fn the_bench_command_writes_one_csv_row_per_setting_the_same_for_1_and_2_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut csvs = Vec::new();
    for workers in ["1", "2"] {
        let out = tmp.path().join(workers);
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["bench", "tradeoff", "--events", "20000", "--keys", "50"])
            .args([
                "--window",
                "sliding:2s/1s",
                "--delays",
                "0,100ms",
                "--lateness",
                "0,40s",
            ])
            .args([
                "--emit",
                "final,updates",
                "--disorder",
                "30ms",
                "--late-frac",
                "0.05",
            ])
            .args(["--disorder-shape", "pareto:1.5"])
            .args(["--late-extra", "2s", "--partitions", "3", "--rate", "5"])
            .args(["--workers", workers])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let table = String::from_utf8_lossy(&run.stdout).into_owned();
        assert!(table.contains("deterministic"), "{table}");
        assert!(table.contains("disorder pareto:1.5 30ms"), "{table}");
        let csv = std::fs::read_to_string(out.join("tradeoff.csv")).unwrap();
        let rows: Vec<String> = csv
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_owned())
            .collect();
        assert_eq!(rows.len(), 1 + 2 * 2 * 2, "{csv}");
        assert!(rows[0].starts_with("delay_ms,lateness_ms,emit"));
        // The stragglers and the heavy tail are dropped with no lateness and
        // no delay; nothing is with 40 s of lateness (the tail is cut at
        // 1000 × 30 ms, the stragglers 2 s behind).
        let dropped = |row: &str| row.split(',').nth(17).unwrap().parse::<f64>().unwrap();
        assert!(dropped(&rows[1]) > 0.0, "{}", rows[1]);
        assert_eq!(dropped(&rows[3]), 0.0, "{}", rows[3]);
        csvs.push(rows);
        // The plot parses as XML and has one point per setting.
        let svg = std::fs::read_to_string(out.join("tradeoff.svg")).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let points = doc
            .descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count();
        assert_eq!(points, 8, "one point per setting");
        assert!(svg.contains("Pareto front"));
        assert!(svg.contains("D=100ms L=40000ms updates"));
    }
    assert_eq!(csvs[0], csvs[1]);
}

#[test]
fn the_pareto_front_keeps_the_settings_no_other_beats_on_both_axes() {
    use tidemark::tradeoff::{pareto_front, Percentiles, Report};
    let report = |p99: u64, complete: f64| Report {
        setting: setting(p99 as i64, 0, EmitMode::Final),
        windows: 10,
        first_latency: Percentiles {
            p99,
            ..Percentiles::default()
        },
        last_latency: Percentiles::default(),
        first_complete: complete,
        last_complete: complete,
        first_error: 0.0,
        dropped: 0.0,
        corrections_per_window: 0.0,
        records_per_second: 0.0,
    };
    let reports = [
        report(100, 0.5),
        report(0, 0.2),
        report(200, 0.4),
        report(50, 0.5),
        report(300, 0.9),
    ];
    // (0, 20 %), (50, 50 %), (300, 90 %); (100, 50 %) and (200, 40 %) are
    // beaten by (50, 50 %).
    assert_eq!(pareto_front(&reports), vec![1, 3, 4]);
}

#[test]
fn a_job_file_supplies_the_input_field_mapping_and_window() {
    let tmp = tempfile::tempdir().unwrap();
    let job = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/clicks.toml");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "bench",
            "tradeoff",
            "--delays",
            "0,5s",
            "--lateness",
            "0",
            "--emit",
            "final",
        ])
        .arg("--job")
        .arg(&job)
        .arg("--out")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = String::from_utf8_lossy(&run.stdout).into_owned();
    // The job file's window (tumbling 1 minute) over its RFC 3339 input.
    assert!(
        table.contains("tumbling 60000ms over the input of"),
        "{table}"
    );
    let csv = std::fs::read_to_string(tmp.path().join("tradeoff.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    // Fired at the watermark: the first result comes exactly 5 s past the
    // window's end (p50 and max).
    let cols: Vec<&str> = rows[2].split(',').collect();
    assert_eq!(
        (cols[0], cols[4], cols[8]),
        ("5000", "5000", "5000"),
        "{}",
        rows[2]
    );
    // Some windows exist (51 in the example) and the malformed line is not a record.
    assert_eq!(cols[3], "51");
}
