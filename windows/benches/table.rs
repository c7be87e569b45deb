//! The versioned table alone: applying updates, looking keys up as of a
//! time, and trimming, at the shape of the tables bench workload (10 000
//! keys, 20 updates per key spread over time, lookups at random keys and
//! times behind the newest update). Reports ns per update and per lookup;
//! bytes per version come from `bytes_estimate` (printed once).
//!
//! Run with `cargo bench -p tidemark-windows --bench table`.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tidemark_windows::table::VersionedTable;
use tidemark_windows::Field;

const KEYS: u64 = 10_000;
const UPDATES: usize = 200_000;
const LOOKUPS: usize = 1_000_000;

type Table = VersionedTable<compact_str::CompactString, Box<[Field]>>;

/// One update: key, time, fields (`None`: a tombstone).
type Update = (compact_str::CompactString, i64, Option<Box<[Field]>>);

fn rng(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// (key, time, fields) updates in time order with a little disorder.
fn updates() -> Vec<Update> {
    let mut next = rng(0x2545_F491_4F6C_DD1D);
    (0..UPDATES)
        .map(|i| {
            let key = compact_str::format_compact!("k{}", next() % KEYS);
            let time = i as i64 * 10 - (next() % 50) as i64;
            let live = !next().is_multiple_of(20);
            let fields = live
                .then(|| vec![Field::Text(compact_str::format_compact!("c{}", next() % 6))].into());
            (key, time, fields)
        })
        .collect()
}

fn filled(updates: &[Update]) -> Table {
    let mut table = Table::new();
    for (i, (k, t, f)) in updates.iter().enumerate() {
        table.insert(k.clone(), *t, (*t, 0, 0, i as u64), f.clone());
    }
    table
}

fn bench(c: &mut Criterion) {
    let ups = updates();
    let mut group = c.benchmark_group("table");
    group.sample_size(10);
    group.throughput(Throughput::Elements(UPDATES as u64));
    group.bench_function("insert 200k updates, 10k keys", |b| {
        b.iter(|| {
            let table = filled(&ups);
            assert_eq!(table.size().versions, UPDATES as u64);
            table
        })
    });
    group.bench_function("insert and trim 1 s behind", |b| {
        b.iter(|| {
            let mut table = Table::new();
            for (i, (k, t, f)) in ups.iter().enumerate() {
                table.insert(k.clone(), *t, (*t, 0, 0, i as u64), f.clone());
                if i % 1024 == 0 {
                    table.trim(*t - 1_000);
                }
            }
            assert!(table.size().keys <= KEYS);
            table
        })
    });
    let table = filled(&ups);
    let size = table.size();
    println!(
        "table: {} keys, {} versions, about {} bytes per version (bytes_estimate, without the fields' own heap)",
        size.keys,
        size.versions,
        table.bytes_estimate() / size.versions.max(1) as usize
    );
    let mut next = rng(7);
    let probes: Vec<(compact_str::CompactString, i64)> = (0..LOOKUPS)
        .map(|_| {
            (
                compact_str::format_compact!("k{}", next() % KEYS),
                (next() % (UPDATES as u64 * 10)) as i64,
            )
        })
        .collect();
    group.throughput(Throughput::Elements(LOOKUPS as u64));
    group.bench_function("lookup 1M as of a time", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for (k, t) in &probes {
                found += usize::from(table.lookup(k.as_str(), *t).is_some());
            }
            assert!(found > LOOKUPS / 2);
            found
        })
    });
    // As the engine holds it: trimmed to the last second, a version or two
    // per key; lookups within that second.
    let mut trimmed = filled(&ups);
    let newest = UPDATES as i64 * 10;
    trimmed.trim(newest - 1_000);
    let recent: Vec<(compact_str::CompactString, i64)> = probes
        .iter()
        .map(|(k, t)| (k.clone(), newest - 1_000 + t % 1_000))
        .collect();
    group.bench_function("lookup 1M as of a time, trimmed", |b| {
        b.iter(|| {
            let mut found = 0usize;
            for (k, t) in &recent {
                found += usize::from(trimmed.lookup(k.as_str(), *t).is_some());
            }
            assert!(found > LOOKUPS / 2);
            found
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
