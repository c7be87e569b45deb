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

use tidemark::tradeoff::{csv_row, deterministic_part, measure, truth, Setting};
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
                fields: Vec::new(),
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
                deterministic_part(&row)
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
            .args(["--emit", "final,updates", "--disorder", "pareto:30ms,1.5"])
            .args(["--disorder", "stragglers:5%,2s"])
            .args(["--partitions", "3", "--rate", "5"])
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
        assert!(
            table.contains("disorder pareto:30ms,1.5 and stragglers:5%,2s"),
            "{table}"
        );
        let csv = std::fs::read_to_string(out.join("tradeoff.csv")).unwrap();
        let rows: Vec<String> = csv.lines().map(deterministic_part).collect();
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
        // The front's settings are labelled (D=delay L=lateness), the
        // others only drawn.
        assert!(svg.contains("D=100ms L=40s") && !svg.contains("L=40000ms"));
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
        peak_open_windows: 0,
        peak_state_bytes: 0,
        first_wall: None,
        last_wall: None,
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
        table.contains("tumbling 60000ms over the input \"")
            && table.contains("examples/clicks.toml\")"),
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

#[test]
fn the_peak_state_counts_every_window_held_open_and_only_when_asked() {
    use tidemark::Job;
    let window = WindowSpec::tumbling(1_000);
    let (source, _) = input(false);
    let truth = truth(Arc::clone(&source), window).unwrap();
    // A delay longer than the input: every window stays open to the end.
    let r = measure(
        Arc::clone(&source),
        window,
        setting(1_000_000, 0, EmitMode::Final),
        &truth,
        1,
    )
    .unwrap();
    assert_eq!(r.peak_open_windows, truth.len() as u64);
    assert!(r.peak_state_bytes > 10 * r.peak_open_windows, "{r:?}");
    // Fired at once: at most a window per key and the one before it.
    let r = measure(
        Arc::clone(&source),
        window,
        setting(0, 0, EmitMode::Final),
        &truth,
        1,
    )
    .unwrap();
    assert!((3..=6).contains(&r.peak_open_windows), "{r:?}");
    // Each worker's peak, summed.
    let two = measure(
        Arc::clone(&source),
        window,
        setting(1_000_000, 0, EmitMode::Final),
        &truth,
        2,
    )
    .unwrap();
    assert_eq!(two.peak_open_windows, truth.len() as u64);
    // Not sampled unless asked.
    let summary = Job::builder()
        .source(source)
        .window(window)
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(
        (summary.peak_open_windows, summary.peak_state_bytes),
        (0, 0)
    );
}

#[test]
fn disorder_parts_parse_print_and_apply() {
    use tidemark::sources::generator::DisorderShape;
    use tidemark::sources::GeneratorConfig;
    use tidemark::tradeoff::Disorder;
    let parse = |s: &str| s.parse::<Disorder>();
    assert_eq!(
        parse("uniform:100ms").unwrap(),
        Disorder::Shape {
            shape: DisorderShape::Uniform,
            scale: 100
        }
    );
    assert_eq!(parse("100ms").unwrap(), parse("uniform:100ms").unwrap());
    assert_eq!(
        parse("exp:50ms").unwrap(),
        Disorder::Shape {
            shape: DisorderShape::Exponential,
            scale: 50
        }
    );
    assert_eq!(
        parse("pareto:20ms,1.5").unwrap(),
        Disorder::Shape {
            shape: DisorderShape::Pareto(1.5),
            scale: 20
        }
    );
    assert_eq!(
        parse("stragglers:2%,30s").unwrap(),
        Disorder::Stragglers {
            share: 0.02,
            behind: 30_000
        }
    );
    assert_eq!(
        parse("stragglers:0.5,1s").unwrap().to_string(),
        "stragglers:50%,1s"
    );
    for text in ["uniform:100ms", "exp:50ms", "pareto:20ms,1.5", "none"] {
        assert_eq!(parse(text).unwrap().to_string(), text);
    }
    for (bad, why) in [
        ("pareto:20ms", "pareto needs a scale and a tail index"),
        ("pareto:20ms,-1", "tail index"),
        ("stragglers:200%,1s", "between 0 and 100 %"),
        ("stragglers:2%", "a share and how far behind"),
        ("gauss:5ms", "unknown kind"),
        ("exp:-5ms", "negative"),
    ] {
        let e = parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    let mut config = GeneratorConfig::default();
    Disorder::apply(
        &[
            parse("exp:50ms").unwrap(),
            parse("stragglers:1%,2s").unwrap(),
        ],
        &mut config,
    )
    .unwrap();
    assert_eq!(
        (
            config.disorder,
            config.disorder_shape,
            config.late_frac,
            config.late_extra
        ),
        (50, DisorderShape::Exponential, 0.01, 2_000)
    );
    // Only a shape: no stragglers.
    Disorder::apply(&[parse("pareto:20ms,1.5").unwrap()], &mut config).unwrap();
    assert_eq!((config.disorder, config.late_frac), (20, 0.0));
    let e = Disorder::apply(
        &[parse("exp:50ms").unwrap(), parse("uniform:1s").unwrap()],
        &mut config,
    )
    .unwrap_err();
    assert!(e.contains("at most one shape"), "{e}");
}

fn bench(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["bench", "tradeoff"])
        .args(args)
        .output()
        .unwrap()
}

fn csv_rows(dir: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("tradeoff.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn real_time_adds_processing_time_latency_and_keeps_the_event_time_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let common = [
        "--events",
        "4000",
        "--keys",
        "20",
        "--delays",
        "0,100ms",
        "--lateness",
        "0",
        "--emit",
        "final",
        "--disorder",
        "exp:20ms",
    ];
    let paced = tmp.path().join("paced");
    let run = bench(
        &[
            &common[..],
            &[
                "--real-time-rate",
                "20000/s",
                "--out",
                paced.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(table.contains("in real time at 20000 events/s"), "{table}");
    assert!(table.contains("not deterministic"), "{table}");
    assert!(table.contains("wall p50"), "{table}");
    let plain = tmp.path().join("plain");
    let run = bench(&[&common[..], &["--out", plain.to_str().unwrap()]].concat());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (paced, plain) = (csv_rows(&paced), csv_rows(&plain));
    assert_eq!(paced.len(), 2);
    for (a, b) in paced.iter().zip(&plain) {
        // The same event-time columns; wall-clock latencies only when paced.
        assert_eq!(a[..19], b[..19]);
        let wall: Vec<u64> = a[22..].iter().map(|c| c.parse().unwrap()).collect();
        assert_eq!(wall.len(), 10);
        assert!(wall[0] <= wall[4] && wall[5] <= wall[9], "{wall:?}");
        // A window is emitted within a second (wall) of being complete.
        assert!(wall[4] < 1_000_000, "{wall:?}");
        assert!(b[22..].iter().all(|c| c.is_empty()), "{b:?}");
    }
    // A rate is checked; a file input cannot be paced.
    let run = bench(&["--real-time-rate", "fast"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("is not a rate"));
}

#[test]
fn the_input_flags_read_a_file_with_its_own_field_mapping() {
    let tmp = tempfile::tempdir().unwrap();
    // No header; columns key, time (epoch seconds), value, partition. All
    // of partition 0 comes first in the file, then all of partition 1: read
    // as one partition, partition 1 would be all late.
    let mut text = String::new();
    for p in 0..2 {
        for i in 0..200 {
            let t = 1_700_000_000.0 + f64::from(i) * 0.5;
            text.push_str(&format!("k{},{t:.1},{},{p}\n", i % 3, 1 + i % 4));
        }
    }
    let file = tmp.path().join("events.txt");
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("out");
    let run = bench(&[
        "--input",
        file.to_str().unwrap(),
        "--format",
        "csv",
        "--header=false",
        "--key",
        "0",
        "--time",
        "1",
        "--value",
        "2",
        "--time-format",
        "epoch-s",
        "--partition-field",
        "3",
        "--window",
        "tumbling:10s",
        "--delays",
        "0",
        "--lateness",
        "0",
        "--emit",
        "final",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(table.contains("events.txt"), "{table}");
    let rows = csv_rows(&out);
    // 100 s of event time in 10 s windows, 3 keys; in order per partition,
    // so nothing is dropped and every first result is the truth.
    assert_eq!(rows[0][3], "30", "{:?}", rows[0]);
    assert_eq!(rows[0][17], "0.000000", "{:?}", rows[0]);
    assert_eq!(rows[0][14], "1.000000", "{:?}", rows[0]);

    // A directory whose partitions --partition-glob picks.
    let dir = tmp.path().join("parts");
    std::fs::create_dir(&dir).unwrap();
    for p in 0..2 {
        let lines: String = (0..100)
            .map(|i| format!("k{},{},1\n", i % 2, 1_700_000_000_000i64 + i * 100 + p))
            .collect();
        std::fs::write(dir.join(format!("p{p}.log")), lines).unwrap();
    }
    let out = tmp.path().join("out2");
    let run = bench(&[
        "--input",
        dir.to_str().unwrap(),
        "--partition-glob",
        "*.log",
        "--format",
        "csv",
        "--header=false",
        "--key",
        "0",
        "--time",
        "1",
        "--value",
        "2",
        "--delays",
        "0",
        "--lateness",
        "0",
        "--emit",
        "final",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // 10 s in 1 s windows, 2 keys.
    assert_eq!(csv_rows(&out)[0][3], "20");

    // Field flags without an input, and pacing a file, are refused.
    let run = bench(&["--key", "user"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("describe an --input"));
    let run = bench(&[
        "--input",
        file.to_str().unwrap(),
        "--real-time-rate",
        "1000/s",
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("needs the generator"));
}

#[test]
fn key_skew_and_the_disorder_flag_shape_the_generated_workload() {
    let windows = |extra: &[&str]| -> u64 {
        let tmp = tempfile::tempdir().unwrap();
        let run = bench(
            &[
                &["--events", "1000", "--keys", "500", "--delays", "0"][..],
                &["--lateness", "0", "--emit", "final"],
                extra,
                &["--out", tmp.path().to_str().unwrap()],
            ]
            .concat(),
        );
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let table = String::from_utf8_lossy(&run.stdout).into_owned();
        if extra.contains(&"--skew") {
            assert!(table.contains("500 keys (skew 1.5)"), "{table}");
        }
        csv_rows(tmp.path())[0][3].parse().unwrap()
    };
    // Zipf keys: far fewer distinct keys in 1 000 events than uniform ones.
    let (uniform, skewed) = (windows(&[]), windows(&["--skew", "1.5"]));
    assert!(skewed * 2 < uniform, "{skewed} vs {uniform}");
    // In order and no stragglers: nothing dropped even with no delay.
    let tmp = tempfile::tempdir().unwrap();
    let run = bench(&[
        "--events",
        "2000",
        "--delays",
        "0",
        "--lateness",
        "0",
        "--emit",
        "final",
        "--disorder",
        "none",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("disorder none"));
    assert_eq!(csv_rows(tmp.path())[0][17], "0.000000");
}
