//! Opening at an offset (directory and one-file layouts, across the
//! one-file index's strides, past the end) and following files that grow
//! while they are read.
//!
//! Run: `cargo test -p tidemark-sources --test seek_follow`

mod common;

use common::{append, drain, read_all, records, write};
use tidemark_sources::{
    FileSource, FileSourceConfig, Format, PartitionReader, ReadStatus, Source, SourceError,
};

fn line(partition: u32, i: u64) -> String {
    format!("{{\"partition\":{partition},\"key\":\"k{i}\",\"ts\":{i},\"value\":{i}}}\n")
}

#[test]
fn seeking_in_a_directory_matches_a_full_read() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..10_000).map(|i| line(0, i)).collect();
    write(dir.path(), "p.jsonl", text.as_bytes());
    let source = FileSource::new(FileSourceConfig::new(dir.path(), Format::Jsonl)).unwrap();
    let all = read_all(&source, 0, 0);
    assert_eq!(all.len(), 10_000);
    for from in [0, 1, 4095, 4096, 9_999, 10_000] {
        let mut reader = source.open(0, from).unwrap();
        assert_eq!(reader.position(), from);
        let (got, status) = drain(reader.as_mut(), 1000);
        assert_eq!(status, ReadStatus::End);
        assert_eq!(got, all[from as usize..]);
        assert_eq!(reader.position(), 10_000);
    }
    assert!(matches!(
        source.open(0, 10_001),
        Err(SourceError::OffsetOutOfRange {
            partition: 0,
            offset: 10_001,
            end: 10_000
        })
    ));
}

#[test]
fn seeking_in_one_file_uses_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.csv");
    let mut text = String::from("partition,key,ts,value\n");
    for i in 0..20_000u64 {
        let p = (i % 3).min(1) as u32; // partition 1 gets two thirds
        text.push_str(&format!("{p},k{i},{i},{i}\n"));
    }
    write(dir.path(), "all.csv", text.as_bytes());
    let mut config = FileSourceConfig::new(&file, Format::Csv);
    config.decode.header = true;
    config.decode.fields.partition = Some("partition".into());
    let source = FileSource::new(config).unwrap();
    assert_eq!(source.partitions().unwrap(), vec![0, 1]);
    for partition in [0, 1] {
        let all = records(read_all(&source, partition, 0));
        assert!(all
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as u64 && r.partition == partition));
        for from in [1, 4095, 4096, 4097, 6000, 8192, 9000, all.len() as u64] {
            if from > all.len() as u64 {
                continue;
            }
            let got = records(read_all(&source, partition, from));
            assert_eq!(
                got,
                all[from as usize..],
                "partition {partition} from {from}"
            );
        }
    }
}

#[test]
fn following_a_growing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.jsonl");
    write(dir.path(), "p.jsonl", line(0, 0).as_bytes());
    let mut config = FileSourceConfig::new(dir.path(), Format::Jsonl);
    config.follow = true;
    let source = FileSource::new(config).unwrap();
    let mut reader = source.open(0, 0).unwrap();
    let mut out = Vec::new();
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    assert_eq!(out.len(), 1);
    // Nothing new: caught up again, nothing appended.
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    assert_eq!(out.len(), 1);
    // A partial line is not consumed until its newline arrives.
    let second = line(0, 1);
    let (head, tail) = second.split_at(10);
    append(&path, head.as_bytes());
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    assert_eq!((out.len(), reader.position()), (1, 1));
    append(&path, tail.as_bytes());
    append(&path, line(0, 2).as_bytes());
    append(&path, b"\n");
    assert_eq!(reader.read(1, &mut out).unwrap(), ReadStatus::More);
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    let got: Vec<_> = out
        .iter()
        .map(|d| {
            d.as_ref()
                .map(|r| r.key.clone())
                .map_err(|e| e.reason.clone())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            Ok("k0".into()),
            Ok("k1".into()),
            Ok("k2".into()),
            Err("empty line".into())
        ]
    );
    assert_eq!(reader.position(), 4);
}

#[test]
fn following_from_an_offset_not_yet_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.jsonl");
    write(dir.path(), "p.jsonl", line(0, 0).as_bytes());
    let mut config = FileSourceConfig::new(&path, Format::Jsonl);
    config.follow = true;
    let source = FileSource::new(config).unwrap();
    let mut reader = source.open(0, 3).unwrap();
    let mut out = Vec::new();
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    assert_eq!((out.len(), reader.position()), (0, 3));
    for i in 1..5 {
        append(&path, line(0, i).as_bytes());
    }
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    let keys: Vec<_> = records(out)
        .into_iter()
        .map(|r| (r.offset, r.key))
        .collect();
    assert_eq!(keys, vec![(3, "k3".into()), (4, "k4".into())]);
}

#[test]
fn following_one_file_with_partitions_and_a_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.csv");
    write(dir.path(), "all.csv", b"partition,key,ts,val");
    let mut config = FileSourceConfig::new(&path, Format::Csv);
    config.decode.header = true;
    config.decode.fields.partition = Some("partition".into());
    config.decode.fields.value = "value".into();
    config.partition_count = Some(2);
    config.follow = true;
    let source = FileSource::new(config).unwrap();
    let mut p1 = source.open(1, 0).unwrap();
    let mut out = Vec::new();
    assert_eq!(p1.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    append(&path, b"ue\n0,a,1,1\n1,b,2,2\n");
    assert_eq!(p1.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    append(&path, b"1,c,3,3\n");
    assert_eq!(p1.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    let keys: Vec<_> = records(out)
        .into_iter()
        .map(|r| (r.offset, r.key))
        .collect();
    assert_eq!(keys, vec![(0, "b".into()), (1, "c".into())]);
}

#[test]
fn bounded_file_without_a_final_newline() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.jsonl",
        format!("{}{}", line(0, 0), line(0, 1).trim_end()).as_bytes(),
    );
    let source = FileSource::new(FileSourceConfig::new(dir.path(), Format::Jsonl)).unwrap();
    let got = records(read_all(&source, 0, 0));
    assert_eq!(got.len(), 2);
    let mut reader = source.open(0, 2).unwrap();
    let mut out = Vec::new();
    assert_eq!(reader.read(5, &mut out).unwrap(), ReadStatus::End);
    assert_eq!(reader.read(5, &mut out).unwrap(), ReadStatus::End);
    assert!(out.is_empty());
}

#[test]
fn seeking_counts_over_long_blank_and_final_lines_like_reading() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..40u64 {
        match i % 5 {
            0 => text.push_str(&"z".repeat(if i % 2 == 0 { 100 } else { 200_000 })),
            1 => {}
            2 => text.push('\r'),
            _ => text.push_str(&format!("{{\"key\":\"k\",\"ts\":{i},\"value\":1}}")),
        }
        text.push('\n');
    }
    text.push_str(&"q".repeat(90)); // a final line without `\n`, over the limit
    write(dir.path(), "p.jsonl", text.as_bytes());
    for follow in [false, true] {
        let mut config = FileSourceConfig::new(dir.path(), Format::Jsonl);
        config.decode.max_line_len = 64;
        config.follow = follow;
        let source = FileSource::new(config).unwrap();
        let full = {
            let mut reader = source.open(0, 0).unwrap();
            drain(reader.as_mut(), 3).0
        };
        // Followed, the unterminated last line counts too: it is already too long.
        assert_eq!(full.len(), 41);
        for from in 0..=full.len() as u64 {
            let mut reader = source.open(0, from).unwrap();
            let (got, _) = drain(reader.as_mut(), 4);
            assert_eq!(got, full[from as usize..], "follow {follow} from {from}");
        }
    }
}

#[test]
fn following_a_csv_record_whose_quoted_field_arrives_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    write(dir.path(), "p.csv", b"a,1,1\n\"two\n");
    let mut config = FileSourceConfig::new(dir.path(), Format::Csv);
    config.follow = true;
    config.decode.fields.key = "0".into();
    config.decode.fields.time = "1".into();
    config.decode.fields.value = "2".into();
    let source = FileSource::new(config).unwrap();
    let mut reader = source.open(0, 0).unwrap();
    let mut out = Vec::new();
    // The open quote keeps the second record pending across its line break.
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    assert_eq!(out.len(), 1);
    append(&path, b"lines\"");
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    assert_eq!(out.len(), 1);
    append(&path, b",2,2\nb,3,3\n");
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    let keys: Vec<_> = records(out)
        .into_iter()
        .map(|r| (r.offset, r.key.to_string()))
        .collect();
    assert_eq!(
        keys,
        [
            (0, "a".to_owned()),
            (1, "two\nlines".to_owned()),
            (2, "b".to_owned())
        ]
    );
    // Opening at offset 2 counts the quoted record as one.
    let mut reader = source.open(0, 2).unwrap();
    let (got, _) = drain(reader.as_mut(), 10);
    assert_eq!(records(got)[0].key, "b");
}

/// A followed directory with one partition file holding `lines` lines,
/// and a reader of it that has caught up.
fn followed(lines: u64) -> (tempfile::TempDir, FileSource, Box<dyn PartitionReader>) {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..lines).map(|i| line(0, i)).collect();
    write(dir.path(), "p.jsonl", text.as_bytes());
    let mut config = FileSourceConfig::new(dir.path(), Format::Jsonl);
    config.follow = true;
    let source = FileSource::new(config).unwrap();
    let mut reader = source.open(0, 0).unwrap();
    let (got, status) = drain(reader.as_mut(), 1000);
    assert_eq!((got.len() as u64, status), (lines, ReadStatus::CaughtUp));
    (dir, source, reader)
}

fn read_err(reader: &mut dyn PartitionReader) -> SourceError {
    let mut out = Vec::new();
    reader.read(10, &mut out).unwrap_err()
}

#[test]
fn a_truncated_followed_file_stops_the_reader() {
    let (dir, _source, mut reader) = followed(3000);
    let path = dir.path().join("p.jsonl");
    let read = std::fs::metadata(&path).unwrap().len();
    // Rewritten shorter, in place: the 3,000 records read so far and what
    // follows them no longer exist.
    std::fs::write(&path, line(0, 0)).unwrap();
    let size = line(0, 0).len() as u64;
    let err = read_err(reader.as_mut());
    assert!(
        matches!(&err, SourceError::FileTruncated { path: p, size: s, read: r }
            if *p == path && *s == size && *r == read),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "followed file \"{}\" was truncated: it holds {size} bytes, but {read} bytes of it \
             were already read",
            path.display()
        )
    );
}

#[test]
fn a_followed_file_deleted_and_created_again_is_replaced() {
    let (dir, _source, mut reader) = followed(10);
    let path = dir.path().join("p.jsonl");
    std::fs::remove_file(&path).unwrap();
    write(dir.path(), "p.jsonl", line(0, 0).repeat(20).as_bytes());
    let err = read_err(reader.as_mut());
    assert!(
        matches!(&err, SourceError::FileReplaced { path: p } if *p == path),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .ends_with("was replaced: the path now names another file"));

    // Another file moved over it: the same.
    let (dir, _source, mut reader) = followed(10);
    write(dir.path(), ".next", line(0, 1).as_bytes());
    std::fs::rename(dir.path().join(".next"), dir.path().join("p.jsonl")).unwrap();
    assert!(matches!(
        read_err(reader.as_mut()),
        SourceError::FileReplaced { .. }
    ));
}

#[test]
fn a_deleted_followed_file_stops_the_reader() {
    let (dir, _source, mut reader) = followed(10);
    let path = dir.path().join("p.jsonl");
    // Appended records are read before the deletion is noticed at the end.
    append(&path, line(0, 10).as_bytes());
    std::fs::remove_file(&path).unwrap();
    let mut out = Vec::new();
    let err = reader.read(10, &mut out).unwrap_err();
    assert_eq!(out.len(), 1);
    assert_eq!(
        err.to_string(),
        format!("followed file \"{}\" was deleted", path.display())
    );
}

#[test]
fn a_new_partition_file_in_a_followed_directory_is_refused() {
    let (dir, source, mut reader) = followed(5);
    // Files that do not match the glob do not matter.
    write(dir.path(), "notes.txt", b"hello\n");
    write(dir.path(), ".p2.jsonl.swp", b"x\n");
    let mut out = Vec::new();
    assert_eq!(reader.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
    write(dir.path(), "q.jsonl", line(1, 0).as_bytes());
    let err = read_err(reader.as_mut());
    assert_eq!(
        err.to_string(),
        format!(
            "new partition file appeared: \"{}\"; restart to include it",
            dir.path().join("q.jsonl").display()
        )
    );
    // The partition set is still the one listed first.
    assert_eq!(source.partitions().unwrap(), vec![0]);
}

#[test]
fn an_appended_followed_file_passes_the_checks() {
    let (dir, _source, mut reader) = followed(2);
    let path = dir.path().join("p.jsonl");
    let mut out = Vec::new();
    for i in 2..50 {
        append(&path, line(0, i).as_bytes());
        assert_eq!(reader.read(100, &mut out).unwrap(), ReadStatus::CaughtUp);
    }
    assert_eq!(out.len(), 48);
}
