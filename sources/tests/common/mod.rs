//! Helpers shared by the integration tests: write files, drain readers.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use tidemark_sources::{DeadLetter, Decoded, PartitionReader, ReadStatus, Record, Source};

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &[u8]) {
    let mut file = std::fs::File::create(dir.join(name)).unwrap();
    file.write_all(text).unwrap();
}

/// Appends `text` to `path`.
pub fn append(path: &Path, text: &[u8]) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text).unwrap();
}

/// Reads until the reader reports something other than `More`.
pub fn drain(reader: &mut dyn PartitionReader, batch: usize) -> (Vec<Decoded>, ReadStatus) {
    let mut out = Vec::new();
    loop {
        let before = out.len();
        let status = reader.read(batch, &mut out).unwrap();
        assert!(out.len() - before <= batch, "read appended more than max");
        if status != ReadStatus::More {
            return (out, status);
        }
        assert_eq!(out.len() - before, batch, "More must come with max items");
    }
}

/// Every item of `partition` from `from`, to its end.
pub fn read_all(source: &dyn Source, partition: u32, from: u64) -> Vec<Decoded> {
    let mut reader = source.open(partition, from).unwrap();
    let (out, status) = drain(reader.as_mut(), 7);
    assert_eq!(status, ReadStatus::End);
    out
}

/// The records, panicking on a dead letter.
pub fn records(items: Vec<Decoded>) -> Vec<Record> {
    items.into_iter().map(|d| d.unwrap()).collect()
}

/// The dead letters, skipping records.
pub fn dead_letters(items: &[Decoded]) -> Vec<DeadLetter> {
    items
        .iter()
        .filter_map(|d| d.as_ref().err().cloned())
        .collect()
}
