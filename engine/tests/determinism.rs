//! The dataflow against the conformance cases and the reference model, for
//! several worker counts and batch sizes: the bytes written must not depend
//! on either.
//!
//! Families:
//! - `conformance_cases_for_every_parallelism`: every case of the
//!   workspace's `tests/conformance/` through the engine, workers ∈ {1, 2, 4},
//!   batch sizes ∈ {1, 7, 1024}; results equal `expected.jsonl` byte for
//!   byte and the late output names the records of `expected-late.jsonl`.
//! - `random_logs_match_reference`: seeded random multi-partition logs,
//!   compared with the reference model of `tidemark-windows` (seed printed
//!   on failure).
//!
//! Run with `cargo test -p tidemark-engine --test determinism`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use tidemark_engine::{run, EngineConfig, Outputs, Parallelism, Stats, Target};
use tidemark_sources::{MemorySource, Record, Value};
use tidemark_windows::{
    reference, AggKind, EmitMode, LogRecord, Metrics, Number, Policy, WindowSpec,
};

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn partitions_of(log: &[(u32, u64, String, i64, i64)]) -> Vec<Vec<Record>> {
    let n = log.iter().map(|r| r.0 + 1).max().unwrap_or(0) as usize;
    let mut parts: Vec<Vec<Record>> = vec![Vec::new(); n];
    let mut sorted = log.to_vec();
    sorted.sort_by_key(|r| (r.0, r.1));
    for (p, o, key, ts, v) in sorted {
        parts[p as usize].push(Record {
            partition: p,
            offset: o,
            key: key.into(),
            event_time: ts,
            value: Value::Int(v),
            fields: Vec::new(),
        });
    }
    parts
}

struct Output {
    results: String,
    late: String,
}

fn run_job(parts: &[Vec<Record>], config: &EngineConfig, workers: usize) -> Output {
    let (results, results_buf) = Target::buffer();
    let (late, late_buf) = Target::buffer();
    let outputs = Outputs {
        results,
        late,
        dead_letters: Target::Discard,
    };
    let source = Arc::new(MemorySource::new(parts.to_vec()));
    run(
        source,
        config.clone(),
        Parallelism::Workers(workers),
        outputs,
        Arc::new(Stats::default()),
    )
    .expect("job runs");
    let text =
        |b: &Arc<std::sync::Mutex<Vec<u8>>>| String::from_utf8(b.lock().unwrap().clone()).unwrap();
    Output {
        results: text(&results_buf),
        late: text(&late_buf),
    }
}

fn conformance_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    dirs.sort();
    dirs
}

fn case_config(dir: &Path) -> EngineConfig {
    let case: Json =
        serde_json::from_str(&fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
    let job = &case["job"];
    let ms = |k: &str| -> i64 { job[k].as_str().map(|s| s.parse().unwrap()).unwrap_or(0) };
    let window = match job["--window"].as_str().unwrap() {
        "tumbling" => WindowSpec::tumbling(ms("--size")),
        "sliding" => WindowSpec::sliding(ms("--size"), ms("--slide")),
        _ => WindowSpec::session(ms("--gap")),
    };
    let emit = if job["--emit"].as_str() == Some("updates") {
        EmitMode::Updates
    } else {
        EmitMode::Final
    };
    EngineConfig::new(
        window,
        Policy::new(ms("--delay"), ms("--lateness"), emit),
        vec![AggKind::Count, AggKind::Sum],
    )
}

fn late_ids(text: &str) -> Vec<(u64, u64)> {
    let mut ids: Vec<(u64, u64)> = text
        .lines()
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
fn conformance_cases_for_every_parallelism() {
    let dirs = conformance_dirs();
    assert!(dirs.len() >= 12);
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let log: Vec<(u32, u64, String, i64, i64)> = read_lines(&dir.join("input.jsonl"))
            .iter()
            .map(|l| {
                let v: Json = serde_json::from_str(l).unwrap();
                (
                    v["partition"].as_u64().unwrap() as u32,
                    v["offset"].as_u64().unwrap(),
                    v["key"].as_str().unwrap().to_owned(),
                    v["ts"].as_i64().unwrap(),
                    v["value"].as_i64().unwrap(),
                )
            })
            .collect();
        let parts = partitions_of(&log);
        let mut expected = read_lines(&dir.join("expected.jsonl")).join("\n");
        expected.push('\n');
        let expected_late = late_ids(&read_lines(&dir.join("expected-late.jsonl")).join("\n"));
        for workers in [1, 2, 4] {
            for batch in [1, 7, 1024] {
                let mut config = case_config(&dir);
                config.batch_size = batch;
                let out = run_job(&parts, &config, workers);
                assert!(
                    out.results == expected,
                    "{name}: workers {workers}, batch {batch}: results differ from expected.jsonl"
                );
                assert_eq!(
                    late_ids(&out.late),
                    expected_late,
                    "{name}: workers {workers}, batch {batch}: late records"
                );
            }
        }
    }
}

/// A small deterministic generator (splitmix64), so failures name a seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn random_logs_match_reference() {
    for seed in 0..24u64 {
        let mut rng = Rng(seed);
        let parts_n = 1 + rng.below(4) as u32;
        let keys = 1 + rng.below(12);
        let mut log = Vec::new();
        for p in 0..parts_n {
            let n = rng.below(300);
            let step = 1 + rng.below(20) as i64;
            for o in 0..n {
                let disorder = rng.below(50) as i64;
                let late = if rng.below(10) == 0 {
                    rng.below(800) as i64
                } else {
                    0
                };
                let ts = 1_000_000 + o as i64 * step - disorder - late;
                log.push((
                    p,
                    o,
                    format!("k{}", rng.below(keys)),
                    ts,
                    rng.below(100) as i64,
                ));
            }
        }
        let window = match rng.below(3) {
            0 => WindowSpec::tumbling(50 + rng.below(500) as i64),
            1 => WindowSpec::sliding(200 + rng.below(800) as i64, 50 + rng.below(200) as i64),
            _ => WindowSpec::session(20 + rng.below(200) as i64),
        };
        let emit = if rng.below(2) == 0 {
            EmitMode::Final
        } else {
            EmitMode::Updates
        };
        let policy = Policy::new(rng.below(100) as i64, rng.below(400) as i64, emit);
        let aggs = vec![
            AggKind::Count,
            AggKind::Sum,
            AggKind::Min,
            AggKind::Max,
            AggKind::Mean,
        ];
        let mut config = EngineConfig::new(window, policy, aggs.clone());
        config.batch_size = 1 + rng.below(64) as usize;

        let ref_log: Vec<LogRecord<String, Number>> = log
            .iter()
            .map(|(p, o, k, ts, v)| LogRecord {
                partition: *p,
                offset: *o,
                key: k.clone(),
                time: *ts,
                input: Number::Int(*v),
            })
            .collect();
        let eval = reference::evaluate(window, policy, &Metrics::new(&aggs), &ref_log);
        let mut expected = String::new();
        for c in &eval.changes {
            tidemark_engine::format_row(c, &aggs, &mut expected);
            expected.push('\n');
        }
        let parts = partitions_of(&log);
        for workers in [1, 3] {
            let out = run_job(&parts, &config, workers);
            assert!(out.results == expected, "seed {seed}: workers {workers}: {window} {policy:?} differs from the reference model");
            assert_eq!(
                // Records in no window are on the late output too.
                out.late
                    .lines()
                    .filter(|l| l.contains("\"reason\":\"too late\""))
                    .count(),
                eval.late.len(),
                "seed {seed}: late count"
            );
        }
    }
}
