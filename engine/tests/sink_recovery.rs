//! A sink that keeps its own recovery position: a store that cannot be cut
//! back (as a transactional topic or a database table), whose sink
//! numbers its rows and keeps the next number in the checkpoint
//! (`Sink::checkpoint_state`). Resumed from any checkpoint, with the rows
//! committed after it already in the store, the sink gets its number back
//! (`Sink::resume_state`), skips what the store holds, and the store ends
//! with every row once, as an uninterrupted run writes them.
//!
//! Run with `cargo test -p tidemark-engine --test sink_recovery`.

use std::collections::BTreeMap;
use std::io;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tidemark_engine::checkpoint::{CheckpointDir, InputIdentity};
use tidemark_engine::{
    format_row, run, CheckpointConfig, CheckpointEvery, EngineConfig, Frontier, Output,
    Parallelism, Row, Sink, SinkState, Sinks, Stats, Target,
};
use tidemark_sources::{MemorySource, Record, Value};
use tidemark_windows::{AggKind, MetricValues, Policy, WindowSpec};

/// The sink's own position type.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Position {
    next_row: u64,
}

/// What the store holds, and what each run's sink was given back.
#[derive(Default)]
struct Store {
    rows: Vec<String>,
    resumed_with: Vec<Option<u64>>,
    /// The number the last run's sink ended at.
    ended_at: u64,
}

struct Numbered {
    store: Arc<Mutex<Store>>,
    next_row: u64,
}

impl Sink<Row<MetricValues>> for Numbered {
    fn write(&mut self, row: &Row<MetricValues>) -> io::Result<()> {
        let mut store = self.store.lock().unwrap();
        // Rows the store holds were committed by an earlier run.
        if self.next_row >= store.rows.len() as u64 {
            let mut line = String::new();
            format_row(row, &[AggKind::Count, AggKind::Sum], &mut line);
            store.rows.push(line);
        }
        self.next_row += 1;
        store.ended_at = self.next_row;
        Ok(())
    }

    fn commit(&mut self, _frontier: Frontier) -> io::Result<()> {
        Ok(())
    }

    fn checkpoint_state(&mut self) -> io::Result<Option<SinkState>> {
        SinkState::encode(&Position {
            next_row: self.next_row,
        })
        .map(Some)
    }

    fn resume_state(&mut self, state: Option<SinkState>) -> io::Result<()> {
        let at = state.map(|s| s.decode::<Position>()).transpose()?;
        self.store
            .lock()
            .unwrap()
            .resumed_with
            .push(at.map(|p| p.next_row));
        self.next_row = at.map_or(0, |p| p.next_row);
        Ok(())
    }
}

fn parts() -> Vec<Vec<Record>> {
    (0..2u32)
        .map(|p| {
            (0..600u64)
                .map(|o| Record {
                    partition: p,
                    offset: o,
                    key: format!("k{}", (o * 7 + u64::from(p)) % 5).into(),
                    event_time: o as i64 * 10 + i64::from(p),
                    value: Value::Int(o as i64 % 13),
                    fields: Vec::new(),
                })
                .collect()
        })
        .collect()
}

fn run_into(store: &Arc<Mutex<Store>>, config: &EngineConfig, workers: usize) {
    let sinks: Sinks<MetricValues> = Sinks {
        results: Output::Sink(Box::new(Numbered {
            store: Arc::clone(store),
            next_row: 0,
        })),
        late: Target::Discard.into(),
        dead_letters: Target::Discard.into(),
    };
    run(
        Arc::new(MemorySource::new(parts())),
        config.clone(),
        Parallelism::Workers(workers),
        sinks,
        Arc::new(Stats::default()),
    )
    .expect("job runs");
}

#[test]
fn a_sink_resumes_from_its_own_position_with_every_row_once() {
    let mut config = EngineConfig::new(
        WindowSpec::tumbling(250),
        Policy::default(),
        vec![AggKind::Count, AggKind::Sum],
    );
    config.batch_size = 16;
    let plain = Arc::new(Mutex::new(Store::default()));
    run_into(&plain, &config, 1);
    let expected = plain.lock().unwrap().rows.clone();
    assert!(expected.len() > 40, "{} rows", expected.len());

    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("ckpt");
    config.checkpoint = Some(CheckpointConfig {
        dir: ckpt.clone(),
        every: CheckpointEvery::EventTime(500),
        keep: NonZeroUsize::new(1000).unwrap(),
        rebuild: false,
        input: InputIdentity::new(vec!["memory".into()], vec![]),
        settings: BTreeMap::new(),
    });
    let store = Arc::new(Mutex::new(Store::default()));
    run_into(&store, &config, 2);
    assert_eq!(store.lock().unwrap().rows, expected);
    assert_eq!(store.lock().unwrap().resumed_with, [None]);

    // Go back to earlier and earlier checkpoints: the store keeps the rows
    // committed after each, and the sink skips exactly those.
    let mut ids = CheckpointDir::open(&ckpt).unwrap().ids().unwrap();
    assert!(ids.len() > 5, "{} checkpoints", ids.len());
    let mut resumed_at = Vec::new();
    while ids.len() > 1 {
        for id in ids.split_off(ids.len() - 2.min(ids.len() - 1)) {
            let path = CheckpointDir::open(&ckpt).unwrap().checkpoint_path(id);
            std::fs::remove_dir_all(path).unwrap();
        }
        run_into(&store, &config, 1 + ids.len() % 3);
        let s = store.lock().unwrap();
        assert_eq!(s.rows, expected, "resumed from checkpoint {:?}", ids.last());
        assert_eq!(s.ended_at, expected.len() as u64, "the sink's numbering");
        resumed_at.push(s.resumed_with.last().copied().flatten());
        drop(s);
        // Drop what the resumed run wrote after its checkpoint again.
        let newest = *ids.last().unwrap();
        for id in CheckpointDir::open(&ckpt).unwrap().ids().unwrap() {
            if id.0 > newest.0 {
                let path = CheckpointDir::open(&ckpt).unwrap().checkpoint_path(id);
                std::fs::remove_dir_all(path).unwrap();
            }
        }
    }
    // Each resume got a position back, and they went back in time.
    assert!(resumed_at.iter().all(Option::is_some), "{resumed_at:?}");
    assert!(
        resumed_at.windows(2).all(|w| w[0] >= w[1])
            && resumed_at[0] > resumed_at[resumed_at.len() - 1],
        "{resumed_at:?}"
    );
}
