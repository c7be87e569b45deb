//! The generator: deterministic, each partition openable at any offset,
//! one key per partition, the shape of `gen.py` (times, lateness, gaps,
//! skew), and its partition files read back through a file source.
//!
//! Run: `cargo test -p tidemark-sources --test generator`

mod common;

use std::collections::BTreeMap;

use common::{read_all, records};
use tidemark_sources::generator::{partition_file_name, write_partition_files};
use tidemark_sources::{
    FieldMapping, FileSource, FileSourceConfig, Format, GeneratorConfig, GeneratorSource, Record,
    Source, Value,
};

fn all(source: &GeneratorSource) -> Vec<Vec<Record>> {
    let partitions = source.partitions().unwrap();
    partitions
        .into_iter()
        .map(|p| records(read_all(source, p, 0)))
        .collect()
}

fn config() -> GeneratorConfig {
    GeneratorConfig {
        events: 5000,
        keys: 50,
        partitions: 4,
        rate: 2.0,
        disorder: 30,
        late_frac: 0.1,
        late_extra: 500,
        seed: 7,
        ..GeneratorConfig::default()
    }
}

#[test]
fn deterministic_and_seekable() {
    let source = GeneratorSource::new(config()).unwrap();
    let first = all(&source);
    assert_eq!(first, all(&GeneratorSource::new(config()).unwrap()));
    assert_eq!(first.iter().map(Vec::len).sum::<usize>(), 5000);
    for (p, records) in first.iter().enumerate() {
        for from in [0usize, 1, records.len() / 2, records.len()] {
            assert_eq!(
                common::records(read_all(&source, p as u32, from as u64)),
                records[from..]
            );
        }
    }
    let other = all(&GeneratorSource::new(GeneratorConfig {
        seed: 8,
        ..config()
    })
    .unwrap());
    assert_ne!(first, other);
}

#[test]
fn keys_live_in_one_partition_and_times_have_the_shape() {
    let c = config();
    let source = GeneratorSource::new(c.clone()).unwrap();
    let mut home: BTreeMap<String, u32> = BTreeMap::new();
    let mut late = 0;
    let span = (c.events as f64 / c.rate) as i64;
    for (p, records) in all(&source).into_iter().enumerate() {
        let mut stream_time = i64::MIN;
        for (i, r) in records.iter().enumerate() {
            assert_eq!((r.partition, r.offset), (p as u32, i as u64));
            assert_eq!(
                *home.entry(r.key.to_string()).or_insert(p as u32),
                p as u32,
                "key {} moved",
                r.key
            );
            let key_index: u32 = r.key[1..].parse().unwrap();
            assert!(key_index < c.keys);
            assert!(
                r.event_time >= c.start - c.disorder - c.late_extra
                    && r.event_time < c.start + span
            );
            assert!(matches!(r.value, Value::Int(1..=100)));
            if r.event_time < stream_time.saturating_sub(c.disorder) {
                late += 1;
            }
            stream_time = stream_time.max(r.event_time);
        }
    }
    assert_eq!(home.len(), 50);
    // About late_frac of the events are beyond `disorder` behind stream time.
    assert!((200..800).contains(&late), "late = {late}");
}

#[test]
fn one_partition_in_order_without_disorder() {
    let c = GeneratorConfig {
        events: 100,
        rate: 0.5,
        gap_every: 10,
        gap_ms: 1000,
        ..GeneratorConfig::default()
    };
    let source = GeneratorSource::new(c.clone()).unwrap();
    let times: Vec<i64> = records(read_all(&source, 0, 0))
        .iter()
        .map(|r| r.event_time)
        .collect();
    // gen.py: base = start + shift + int(i / rate), shift grows by gap_ms every gap_every events.
    let want: Vec<i64> = (0..100)
        .map(|i: i64| c.start + (i / 10) * 1000 + i * 2)
        .collect();
    assert_eq!(times, want);
}

#[test]
fn skewed_keys_favour_the_first() {
    let c = GeneratorConfig {
        events: 20_000,
        keys: 100,
        partitions: 1,
        skew: 1.2,
        ..GeneratorConfig::default()
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in records(read_all(&GeneratorSource::new(c).unwrap(), 0, 0)) {
        *counts.entry(r.key.to_string()).or_default() += 1;
    }
    assert!(counts["k0"] > 4 * counts["k10"], "{counts:?}");
}

#[test]
fn invalid_configs_are_rejected() {
    for bad in [
        GeneratorConfig {
            partitions: 0,
            ..GeneratorConfig::default()
        },
        GeneratorConfig {
            rate: 0.0,
            ..GeneratorConfig::default()
        },
        GeneratorConfig {
            late_frac: 1.5,
            ..GeneratorConfig::default()
        },
        GeneratorConfig {
            disorder: -1,
            ..GeneratorConfig::default()
        },
        GeneratorConfig {
            start: i64::MAX,
            ..GeneratorConfig::default()
        },
    ] {
        assert!(GeneratorSource::new(bad).is_err());
    }
}

#[test]
fn written_files_read_back_as_the_same_records() {
    let source = GeneratorSource::new(config()).unwrap();
    let want = all(&source);
    for (format, header) in [
        (Format::Jsonl, false),
        (Format::Csv, true),
        (Format::Csv, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let written = write_partition_files(&source, dir.path(), format, header).unwrap();
        assert_eq!(written.files.len(), 4);
        assert_eq!(
            written.files[0],
            dir.path().join(partition_file_name(0, format))
        );
        assert!(written.files[3].ends_with(format!("part-00003.{format}")));
        let mut file_config = FileSourceConfig::new(dir.path(), format);
        file_config.decode.header = header;
        if format == Format::Csv && !header {
            file_config.decode.fields = FieldMapping {
                key: "2".into(),
                time: "3".into(),
                value: "4".into(),
                partition: None,
            };
        }
        let files = FileSource::new(file_config).unwrap();
        let got: Vec<Vec<Record>> = (0..4).map(|p| records(read_all(&files, p, 0))).collect();
        assert_eq!(got, want, "{format} header={header}");
    }
}
