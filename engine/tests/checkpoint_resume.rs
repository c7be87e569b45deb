//! Checkpoints taken by a run, and runs resumed from them: whichever
//! checkpoint a run resumes from (the newer ones lost, uncommitted bytes
//! left at the end of the outputs), its final outputs are byte-identical
//! to an uninterrupted run's, for several worker counts, window kinds and
//! both checkpoint schedules.
//!
//! Run with `cargo test -p tidemark-engine --test checkpoint_resume`.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use tidemark_engine::checkpoint::{CheckpointDir, InputIdentity};
use tidemark_engine::{
    run, CheckpointConfig, CheckpointEvery, EngineConfig, Outputs, Parallelism, Stats, Target,
};
use tidemark_sources::{MemorySource, Record, Value};
use tidemark_windows::{AggKind, EmitMode, Policy, WindowSpec};

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn log(rng: &mut Rng) -> Vec<Vec<Record>> {
    let mut parts = Vec::new();
    for p in 0..(1 + rng.below(3) as u32) {
        let mut part = Vec::new();
        for o in 0..(200 + rng.below(400)) {
            let late = if rng.below(8) == 0 {
                rng.below(900) as i64
            } else {
                0
            };
            let t = 10_000 + o as i64 * (1 + rng.below(20) as i64) - rng.below(50) as i64 - late;
            part.push(Record {
                partition: p,
                offset: o,
                key: format!("k{}", rng.below(9)).into(),
                event_time: t,
                value: Value::Int(rng.below(50) as i64),
                fields: Vec::new(),
            });
        }
        parts.push(part);
    }
    parts
}

fn outputs(dir: &Path) -> Outputs {
    Outputs {
        results: Target::File(dir.join("results.jsonl")),
        late: Target::File(dir.join("late.jsonl")),
        dead_letters: Target::File(dir.join("dead.jsonl")),
    }
}

fn read_all(dir: &Path) -> [Vec<u8>; 3] {
    ["results.jsonl", "late.jsonl", "dead.jsonl"].map(|f| std::fs::read(dir.join(f)).unwrap())
}

fn job(
    parts: &[Vec<Record>],
    config: &EngineConfig,
    workers: usize,
    out: &Path,
) -> tidemark_engine::Summary {
    run(
        Arc::new(MemorySource::new(parts.to_vec())),
        config.clone(),
        Parallelism::Workers(workers),
        outputs(out),
        Arc::new(Stats::default()),
    )
    .expect("job runs")
}

#[test]
fn resuming_from_any_checkpoint_gives_the_uninterrupted_output() {
    for seed in 0..8u64 {
        let mut rng = Rng(seed);
        let parts = log(&mut rng);
        let window = match rng.below(3) {
            0 => WindowSpec::tumbling(100 + rng.below(300) as i64),
            1 => WindowSpec::sliding(300 + rng.below(300) as i64, 100),
            _ => WindowSpec::session(30 + rng.below(100) as i64),
        };
        let emit = if rng.below(2) == 0 {
            EmitMode::Final
        } else {
            EmitMode::Updates
        };
        let policy = Policy::new(rng.below(60) as i64, rng.below(300) as i64, emit);
        let every = if rng.below(2) == 0 {
            CheckpointEvery::EventTime(200 + rng.below(800) as i64)
        } else {
            CheckpointEvery::Records(50 + rng.below(100))
        };
        let mut base = EngineConfig::new(window, policy, vec![AggKind::Count, AggKind::Sum]);
        // Small batches: many frontier steps, so many cuts are passed.
        base.batch_size = 1 + rng.below(16) as usize;
        let plain = tempfile::tempdir().unwrap();
        job(&parts, &base, 1, plain.path());
        let expected = read_all(plain.path());

        let run_dir = tempfile::tempdir().unwrap();
        let ckpt = run_dir.path().join("ckpt");
        let mut config = base.clone();
        config.checkpoint = Some(CheckpointConfig {
            dir: ckpt.clone(),
            every,
            keep: NonZeroUsize::new(1000).unwrap(),
            rebuild: false,
            input: InputIdentity::new(vec!["memory".into()], vec![]),
            settings: BTreeMap::new(),
        });
        let workers = 1 + rng.below(3) as usize;
        let first = job(&parts, &config, workers, run_dir.path());
        assert_eq!(
            read_all(run_dir.path()),
            expected,
            "seed {seed}: checkpointed run differs"
        );
        let ids = CheckpointDir::open(&ckpt).unwrap().ids().unwrap();
        assert!(
            ids.len() >= 3,
            "seed {seed}, {every}: only {} checkpoints ({} written)",
            ids.len(),
            first.checkpoints
        );

        // A run that completed resumes to nothing more.
        let again = job(&parts, &config, workers, run_dir.path());
        assert_eq!(again.resumed_from, ids.last().map(|i| i.0));
        assert_eq!(
            read_all(run_dir.path()),
            expected,
            "seed {seed}: complete rerun changed output"
        );

        // Lose the newest checkpoints, one at a time, leaving garbage after
        // the committed bytes: each resume ends with the same files.
        let mut remaining = ids.clone();
        while remaining.len() > 1 {
            let step = 1 + rng.below(3) as usize;
            for _ in 0..step.min(remaining.len() - 1) {
                let id = remaining.pop().unwrap();
                let d = CheckpointDir::open(&ckpt).unwrap().checkpoint_path(id);
                std::fs::remove_dir_all(d).unwrap();
            }
            for f in ["results.jsonl", "late.jsonl", "dead.jsonl"] {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(run_dir.path().join(f))
                    .unwrap();
                file.write_all(b"{\"torn\":").unwrap();
            }
            let w = 1 + rng.below(3) as usize;
            let resumed = job(&parts, &config, w, run_dir.path());
            assert_eq!(
                resumed.resumed_from,
                remaining.last().map(|i| i.0),
                "seed {seed}: resumed from another checkpoint"
            );
            assert!(
                read_all(run_dir.path()) == expected,
                "seed {seed}, {window}, {policy:?}, {every}, workers {w}: resumed from checkpoint {:?}, output differs",
                remaining.last()
            );
            assert_eq!(
                resumed.windows_emitted, first.windows_emitted,
                "seed {seed}: counters"
            );
            assert_eq!(
                resumed.records, first.records,
                "seed {seed}: records counter"
            );
            remaining = CheckpointDir::open(&ckpt).unwrap().ids().unwrap();
            // The resumed run wrote its own checkpoints after the one it
            // resumed from; drop them again so the loop goes back in time.
            let keep_upto = resumed.resumed_from.unwrap();
            for id in remaining.clone() {
                if id.0 > keep_upto {
                    let d = CheckpointDir::open(&ckpt).unwrap().checkpoint_path(id);
                    std::fs::remove_dir_all(d).unwrap();
                }
            }
            remaining.retain(|id| id.0 <= keep_upto);
        }
    }
}

type Collected = (
    Vec<tidemark_engine::Row<tidemark_windows::MetricValues>>,
    Vec<tidemark_engine::LateRecord>,
);

fn collect(parts: &[Vec<Record>], config: &EngineConfig, workers: usize) -> Collected {
    use tidemark_engine::{Collect, Output, Sinks};
    let (rows, got_rows) = Collect::new();
    let (late, got_late) = Collect::new();
    let sinks = Sinks {
        results: Output::Sink(Box::new(rows)),
        late: Output::Sink(Box::new(late)),
        ..Sinks::default()
    };
    run(
        Arc::new(MemorySource::new(parts.to_vec())),
        config.clone(),
        Parallelism::Workers(workers),
        sinks,
        Arc::new(Stats::default()),
    )
    .expect("job runs");
    let rows = got_rows.lock().unwrap().clone();
    let late = got_late.lock().unwrap().clone();
    (rows, late)
}

/// The stream time just after each partition's record before `offsets`.
fn suffix_time(parts: &[Vec<Record>], offsets: &BTreeMap<u32, u64>) -> i64 {
    let mut from = i64::MIN;
    for (&p, &o) in offsets {
        let before = parts[p as usize].iter().take(o as usize);
        if let Some(st) = before.map(|r| r.event_time).max() {
            from = from.max(st + 1);
        }
    }
    from
}

#[test]
fn reprocessing_from_an_offset_or_a_time_writes_the_suffix_of_the_full_output() {
    use tidemark_engine::EmitFrom;
    for seed in 100..110u64 {
        let mut rng = Rng(seed);
        let parts = log(&mut rng);
        let window = match rng.below(3) {
            0 => WindowSpec::tumbling(100 + rng.below(300) as i64),
            1 => WindowSpec::sliding(300 + rng.below(300) as i64, 100),
            _ => WindowSpec::session(30 + rng.below(100) as i64),
        };
        let emit = if rng.below(2) == 0 {
            EmitMode::Final
        } else {
            EmitMode::Updates
        };
        let policy = Policy::new(rng.below(60) as i64, rng.below(300) as i64, emit);
        let mut base = EngineConfig::new(window, policy, vec![AggKind::Count, AggKind::Max]);
        base.batch_size = 1 + rng.below(16) as usize;
        let (rows, late) = collect(&parts, &base, 1);
        assert!(!rows.is_empty());

        // A checkpoint directory from a full run, for some of the runs.
        let tmp = tempfile::tempdir().unwrap();
        let mut checkpointed = base.clone();
        checkpointed.checkpoint = Some(CheckpointConfig {
            dir: tmp.path().join("ckpt"),
            every: CheckpointEvery::EventTime(300),
            keep: NonZeroUsize::new(100).unwrap(),
            rebuild: false,
            input: InputIdentity::new(vec!["memory".into()], vec![]),
            settings: BTreeMap::new(),
        });
        job(&parts, &checkpointed, 2, tmp.path());

        for _ in 0..4 {
            let (from, t) = if rng.below(3) == 0 {
                let t = 10_000 + rng.below(9_000) as i64;
                (EmitFrom::Time(t), t)
            } else if rng.below(2) == 0 {
                // Exactly the time of some row: the boundary is inclusive.
                let t = rows[rng.below(rows.len() as u64) as usize].time;
                (EmitFrom::Time(t), t)
            } else {
                let mut offsets = BTreeMap::new();
                for p in 0..parts.len() as u32 {
                    if rng.below(3) > 0 {
                        offsets.insert(p, rng.below(parts[p as usize].len() as u64 + 1));
                    }
                }
                if offsets.is_empty() {
                    offsets.insert(0, 1);
                }
                let t = suffix_time(&parts, &offsets);
                (EmitFrom::Offsets(offsets), t)
            };
            let want_rows: Vec<_> = rows.iter().filter(|r| r.time >= t).cloned().collect();
            let want_late: Vec<_> = late
                .iter()
                .filter(|l| l.event.stream_time >= t)
                .cloned()
                .collect();
            for workers in [1, 3] {
                for with_checkpoints in [false, true] {
                    let mut config = if with_checkpoints {
                        checkpointed.clone()
                    } else {
                        base.clone()
                    };
                    config.emit_from = Some(from.clone());
                    let (got_rows, got_late) = collect(&parts, &config, workers);
                    assert!(
                        got_rows == want_rows && got_late == want_late,
                        "seed {seed}, {window}, {policy:?}, from {from:?} (T = {t}), workers {workers}, checkpoints {with_checkpoints}: {} rows (want {}), {} late (want {})",
                        got_rows.len(),
                        want_rows.len(),
                        got_late.len(),
                        want_late.len()
                    );
                }
            }
        }
    }
}
