//! Decode and seek benches for tidemark-sources.
//!
//! - `decode/*`: records per second decoding generated lines held in memory
//!   (`gen`-shaped `partition,offset,key,ts,value` rows), CSV and JSON lines,
//!   on the fast path (`decode`) and the general csv-core / `serde_json`
//!   path (`general`); `csv-quoted` is the CSV with every key quoted and
//!   holding a comma (`"k1, x"`), the shape of spreadsheet exports. The
//!   control, `lines`, only counts the lines with `memchr`: the floor any
//!   line decoder pays. Each loop asserts its count.
//! - `file/*`: the same through a [`FileSource`] reading a file (page cache).
//! - `seek/*`: on one partition file of `TIDEMARK_SEEK_RECORDS` CSV rows
//!   (default 10,000,000), opening at the last offset and reading one batch,
//!   against reading the whole file: seeking counts lines, it does not decode.
//!
//! Run: `cargo bench -p tidemark-sources --bench decode -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use tidemark_sources::generator::write_partition_files;
use tidemark_sources::{
    DecodeConfig, Decoded, Decoder, FieldMapping, FileSource, FileSourceConfig, Format,
    GeneratorConfig, GeneratorSource, PartitionReader, ReadStatus, Source,
};

const RECORDS: u64 = 200_000;
const GENERAL_RECORDS: u64 = 10_000;

fn generator(events: u64) -> GeneratorSource {
    GeneratorSource::new(GeneratorConfig {
        events,
        keys: 1000,
        partitions: 1,
        rate: 10.0,
        disorder: 100,
        late_frac: 0.01,
        late_extra: 2000,
        seed: 42,
        ..GeneratorConfig::default()
    })
    .expect("valid generator config")
}

fn decode_config(format: Format) -> DecodeConfig {
    let mut config = DecodeConfig::new(format);
    if format == Format::Csv {
        config.fields = FieldMapping {
            key: "2".into(),
            time: "3".into(),
            value: "4".into(),
            partition: None,
        };
    }
    config
}

/// `gen`-shaped CSV rows with the key (third field) quoted around a comma.
fn quoted_keys(data: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(data).expect("generated CSV is UTF-8");
    let mut out = String::with_capacity(data.len() * 2);
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').collect();
        out.push_str(&format!(
            "{},{},\"{}, x\",{},{}\n",
            fields[0], fields[1], fields[2], fields[3], fields[4]
        ));
    }
    out.into_bytes()
}

fn decode_all(decoder: &Decoder, data: &[u8], general: bool, out: &mut Vec<Decoded>) {
    out.clear();
    let mut start = 0;
    for (offset, end) in memchr::memchr_iter(b'\n', data).enumerate() {
        let line = &data[start..end];
        out.push(if general {
            decoder.decode_general(0, offset as u64, line)
        } else {
            decoder.decode(0, offset as u64, line)
        });
        start = end + 1;
    }
}

fn decode(c: &mut Criterion) {
    let source = generator(RECORDS);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(RECORDS));
    for (name, format, quoted) in [
        ("csv", Format::Csv, false),
        ("csv-quoted", Format::Csv, true),
        ("jsonl", Format::Jsonl, false),
    ] {
        let mut data = Vec::new();
        source
            .write_partition(0, format, false, &mut data)
            .expect("write to memory");
        if quoted {
            data = quoted_keys(&data);
        }
        let decoder = Decoder::new(&decode_config(format));
        let mut out = Vec::with_capacity(RECORDS as usize);
        group.bench_function(BenchmarkId::new("lines", name), |b| {
            b.iter(|| {
                assert_eq!(
                    memchr::memchr_iter(b'\n', black_box(&data)).count() as u64,
                    RECORDS
                )
            })
        });
        group.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| {
                decode_all(&decoder, black_box(&data), false, &mut out);
                assert_eq!(out.len() as u64, RECORDS);
                assert!(out.last().is_some_and(Result::is_ok));
            })
        });
    }
    group.finish();
    // The general path is slower: fewer lines.
    let source = generator(GENERAL_RECORDS);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(GENERAL_RECORDS));
    for (name, format, quoted) in [
        ("csv", Format::Csv, false),
        ("csv-quoted", Format::Csv, true),
        ("jsonl", Format::Jsonl, false),
    ] {
        let mut data = Vec::new();
        source
            .write_partition(0, format, false, &mut data)
            .expect("write to memory");
        if quoted {
            data = quoted_keys(&data);
        }
        let decoder = Decoder::new(&decode_config(format));
        let mut out = Vec::with_capacity(GENERAL_RECORDS as usize);
        group.bench_function(BenchmarkId::new("general", name), |b| {
            b.iter(|| {
                decode_all(&decoder, black_box(&data), true, &mut out);
                assert_eq!(out.len() as u64, GENERAL_RECORDS);
                assert!(out.last().is_some_and(Result::is_ok));
            })
        });
    }
    group.finish();
}

fn drain(reader: &mut dyn PartitionReader, out: &mut Vec<Decoded>) -> u64 {
    let mut total = 0;
    loop {
        out.clear();
        let status = reader.read(4096, out).expect("read");
        total += out.len() as u64;
        if status == ReadStatus::End {
            return total;
        }
    }
}

fn file(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("file");
    group.throughput(Throughput::Elements(RECORDS));
    for format in [Format::Csv, Format::Jsonl] {
        let path = dir.path().join(format.as_str());
        write_partition_files(&generator(RECORDS), &path, format, false).expect("write files");
        let mut config = FileSourceConfig::new(&path, format);
        config.decode = decode_config(format);
        let source = FileSource::new(config).expect("file source");
        let mut out = Vec::with_capacity(4096);
        group.bench_function(BenchmarkId::new("read", format), |b| {
            b.iter(|| {
                let mut reader = source.open(0, 0).expect("open");
                assert_eq!(drain(reader.as_mut(), &mut out), RECORDS);
            })
        });
    }
    group.finish();
}

fn seek(c: &mut Criterion) {
    let records: u64 = std::env::var("TIDEMARK_SEEK_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    write_partition_files(&generator(records), dir.path(), Format::Csv, false)
        .expect("write files");
    let mut config = FileSourceConfig::new(dir.path(), Format::Csv);
    config.decode = decode_config(Format::Csv);
    let source = FileSource::new(config).expect("file source");
    let mut group = c.benchmark_group("seek");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let mut out = Vec::with_capacity(4096);
    let target = records - 1000;
    group.bench_function(BenchmarkId::new("open_at", target), |b| {
        b.iter(|| {
            let mut reader = source.open(0, target).expect("open");
            assert_eq!(drain(reader.as_mut(), &mut out), 1000);
        })
    });
    group.bench_function(BenchmarkId::new("full_read", records), |b| {
        b.iter(|| {
            let mut reader = source.open(0, 0).expect("open");
            assert_eq!(drain(reader.as_mut(), &mut out), records);
        })
    });
    group.finish();
}

/// Runs every group with the command line's criterion settings.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    decode(&mut c);
    file(&mut c);
    seek(&mut c);
}

criterion_main!(benches);
