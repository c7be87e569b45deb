//! Followed partitions and `idle_after`: a caught-up partition holds the
//! watermark back (deterministic) unless it is released as idle, after which
//! its records are judged against the watermark the other partitions
//! advanced (timing-dependent, and reported in the summary).
//!
//! Run with `cargo test -p tidemark-engine --test idle`.

use std::sync::Arc;
use std::time::Duration;

use tidemark_engine::{run, EngineConfig, Outputs, Parallelism, Stats, Target};
use tidemark_sources::{
    Decoded, Offset, PartitionId, PartitionReader, ReadStatus, Record, Source, SourceError, Value,
};
use tidemark_windows::{AggKind, Policy, WindowSpec};

/// One scripted partition: `Some(time)` is a record, `None` one read that
/// finds nothing new (caught up).
struct Scripted {
    partition: PartitionId,
    script: Vec<Option<i64>>,
    at: usize,
    offset: Offset,
}

impl PartitionReader for Scripted {
    fn read(&mut self, _max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError> {
        loop {
            match self.script.get(self.at) {
                None => return Ok(ReadStatus::End),
                Some(None) => {
                    self.at += 1;
                    return Ok(ReadStatus::CaughtUp);
                }
                Some(Some(t)) => {
                    out.push(Ok(Record {
                        partition: self.partition,
                        offset: self.offset,
                        key: format!("k{}", self.partition).into(),
                        event_time: *t,
                        value: Value::Int(1),
                        fields: Vec::new(),
                    }));
                    self.at += 1;
                    self.offset += 1;
                    if matches!(self.script.get(self.at), Some(None)) {
                        return Ok(ReadStatus::More);
                    }
                }
            }
        }
    }
    fn position(&self) -> Offset {
        self.offset
    }
}

struct ScriptedSource(Vec<Vec<Option<i64>>>);

impl Source for ScriptedSource {
    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
        Ok((0..self.0.len() as u32).collect())
    }
    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        assert_eq!(from, 0);
        Ok(Box::new(Scripted {
            partition,
            script: self.0[partition as usize].clone(),
            at: 0,
            offset: 0,
        }))
    }
}

fn job(idle_after: Option<Duration>) -> (String, u64) {
    // Partition 0 races ahead to t = 10 000 and then waits; partition 1 sends
    // t = 1000, waits, then sends t = 950 (on time by its own watermark).
    let waits = vec![None; 30];
    let p0: Vec<Option<i64>> = (1..=10)
        .map(|i| Some(i * 1000))
        .chain(waits.clone())
        .collect();
    let p1: Vec<Option<i64>> = [Some(1000)]
        .into_iter()
        .chain(waits)
        .chain([Some(950)])
        .collect();
    let mut config = EngineConfig::new(
        WindowSpec::tumbling(1000),
        Policy::new(100, 0, Default::default()),
        vec![AggKind::Count],
    );
    config.idle_after = idle_after;
    let (late, buf) = Target::buffer();
    let outputs = Outputs {
        results: Target::Discard,
        late,
        dead_letters: Target::Discard,
    };
    let summary = run(
        Arc::new(ScriptedSource(vec![p0, p1])),
        config,
        Parallelism::Workers(1),
        outputs,
        Arc::new(Stats::default()),
    )
    .unwrap();
    let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
    (text, summary.idle_releases)
}

#[test]
fn caught_up_partitions_hold_the_watermark_by_default() {
    let (late, releases) = job(None);
    assert_eq!(late, "");
    assert_eq!(releases, 0);
}

#[test]
fn idle_partitions_are_released_when_asked() {
    let (late, releases) = job(Some(Duration::ZERO));
    assert!(releases >= 1);
    assert!(late.contains("\"ts\":950"), "{late}");
}
