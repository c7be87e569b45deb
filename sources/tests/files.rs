//! File sources end to end: each format and time format, CSV with and
//! without a header, nested JSON paths, directory and one-file layouts,
//! line-ending details and I/O errors.
//!
//! Run: `cargo test -p tidemark-sources --test files`

mod common;

use common::{read_all, records, write};
use tidemark_sources::{
    FieldMapping, FileSource, FileSourceConfig, Format, Record, Source, SourceError, TimeFormat,
    Value,
};

fn rec(partition: u32, offset: u64, key: &str, event_time: i64, value: Value) -> Record {
    Record {
        partition,
        offset,
        key: key.into(),
        event_time,
        value,
        fields: Vec::new(),
    }
}

fn source(config: FileSourceConfig) -> FileSource {
    FileSource::new(config).unwrap()
}

#[test]
fn jsonl_directory_partitions_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "b.jsonl",
        b"{\"key\":\"k2\",\"ts\":20,\"value\":2}\n",
    );
    write(
        dir.path(),
        "a.jsonl",
        b"{\"key\":\"k1\",\"ts\":10,\"value\":1.5}\n{\"key\":7,\"ts\":11,\"value\":-3}\n",
    );
    write(dir.path(), ".hidden", b"garbage\n");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let source = source(FileSourceConfig::new(dir.path(), Format::Jsonl));
    assert_eq!(source.partitions().unwrap(), vec![0, 1]);
    assert_eq!(
        records(read_all(&source, 0, 0)),
        vec![
            rec(0, 0, "k1", 10, Value::Float(1.5)),
            rec(0, 1, "7", 11, Value::Int(-3))
        ]
    );
    assert_eq!(
        records(read_all(&source, 1, 0)),
        vec![rec(1, 0, "k2", 20, Value::Int(2))]
    );
    assert!(matches!(
        source.open(2, 0),
        Err(SourceError::UnknownPartition {
            partition: 2,
            count: 2
        })
    ));
}

#[test]
fn csv_with_header() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.csv",
        b"ts,user,amount\n1000,alice,3\n2000,\"bob, jr\",4.25\r\n",
    );
    let mut config = FileSourceConfig::new(dir.path(), Format::Csv);
    config.decode.header = true;
    config.decode.fields = FieldMapping {
        key: "user".into(),
        time: "ts".into(),
        value: "amount".into(),
        partition: None,
    };
    let got = records(read_all(&source(config), 0, 0));
    assert_eq!(
        got,
        vec![
            rec(0, 0, "alice", 1000, Value::Int(3)),
            rec(0, 1, "bob, jr", 2000, Value::Float(4.25))
        ]
    );
}

#[test]
fn csv_without_header_uses_column_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.csv");
    write(
        dir.path(),
        "one.csv",
        b"0,0,k1,1700000000000,5\n0,1,k2,1700000000001,6",
    );
    let mut config = FileSourceConfig::new(&file, Format::Csv);
    config.decode.fields = FieldMapping {
        key: "2".into(),
        time: "3".into(),
        value: "4".into(),
        partition: None,
    };
    let source = source(config);
    assert_eq!(source.partitions().unwrap(), vec![0]);
    assert_eq!(
        records(read_all(&source, 0, 0)),
        vec![
            rec(0, 0, "k1", 1_700_000_000_000, Value::Int(5)),
            rec(0, 1, "k2", 1_700_000_000_001, Value::Int(6))
        ]
    );
}

#[test]
fn time_formats() {
    let cases: [(TimeFormat, &str, i64); 7] = [
        (TimeFormat::EpochMs, "1700000000123", 1_700_000_000_123),
        (TimeFormat::EpochMs, "\"1700000000123\"", 1_700_000_000_123),
        (TimeFormat::EpochS, "1700000000", 1_700_000_000_000),
        (TimeFormat::EpochS, "1700000000.123", 1_700_000_000_123),
        (
            TimeFormat::Rfc3339,
            "\"2023-11-14T22:13:20.123Z\"",
            1_700_000_000_123,
        ),
        (
            TimeFormat::Rfc3339,
            "\"2023-11-15T00:13:20.123+02:00\"",
            1_700_000_000_123,
        ),
        (
            TimeFormat::Rfc3339,
            "\"2023-11-14T21:13:20.123-0100\"",
            1_700_000_000_123,
        ),
    ];
    for (format, ts, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let line = format!("{{\"key\":\"k\",\"ts\":{ts},\"value\":1}}\n");
        write(dir.path(), "p.jsonl", line.as_bytes());
        let mut config = FileSourceConfig::new(dir.path(), Format::Jsonl);
        config.decode.time_format = format;
        let got = records(read_all(&source(config), 0, 0));
        assert_eq!(got[0].event_time, want, "{format} {ts}");
    }
    // The same in CSV, where every field is text.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.csv", b"k,2023-11-14T22:13:20.123Z,1\n");
    let mut config = FileSourceConfig::new(dir.path(), Format::Csv);
    config.decode.time_format = TimeFormat::Rfc3339;
    config.decode.fields = FieldMapping {
        key: "0".into(),
        time: "1".into(),
        value: "2".into(),
        partition: None,
    };
    assert_eq!(
        records(read_all(&source(config), 0, 0))[0].event_time,
        1_700_000_000_123
    );
}

#[test]
fn nested_json_paths() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.jsonl",
        br#"{"user":{"id":"u1"},"meta":{"event":{"ts":5}},"m":{"v":2}}
{"user":{"id":"u2"},"meta":{"event":{}},"m":{"v":2}}
"#,
    );
    let mut config = FileSourceConfig::new(dir.path(), Format::Jsonl);
    config.decode.fields = FieldMapping {
        key: "user.id".into(),
        time: "meta.event.ts".into(),
        value: "m.v".into(),
        partition: None,
    };
    let got = read_all(&source(config), 0, 0);
    assert_eq!(got[0], Ok(rec(0, 0, "u1", 5, Value::Int(2))));
    assert_eq!(
        got[1].as_ref().unwrap_err().reason,
        "missing field \"meta.event.ts\""
    );
}

#[test]
fn one_file_with_a_partition_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    write(
        dir.path(),
        "all.jsonl",
        br#"{"partition":1,"key":"a","ts":1,"value":1}
{"partition":0,"key":"b","ts":2,"value":2}
{"partition":1,"key":"c","ts":3,"value":3}
{"partition":"2","key":"d","ts":4,"value":4}
{"key":"e","ts":5,"value":5}
"#,
    );
    let mut config = FileSourceConfig::new(&file, Format::Jsonl);
    config.decode.fields.partition = Some("partition".into());
    let source = source(config);
    assert_eq!(source.partitions().unwrap(), vec![0, 1, 2]);
    let p0 = read_all(&source, 0, 0);
    assert_eq!(p0[0], Ok(rec(0, 0, "b", 2, Value::Int(2))));
    let dead = p0[1].as_ref().unwrap_err();
    assert_eq!(
        (dead.partition, dead.offset, dead.reason.as_str()),
        (0, 1, "missing field \"partition\"")
    );
    assert_eq!(
        records(read_all(&source, 1, 0)),
        vec![
            rec(1, 0, "a", 1, Value::Int(1)),
            rec(1, 1, "c", 3, Value::Int(3))
        ]
    );
    assert_eq!(
        records(read_all(&source, 1, 1)),
        vec![rec(1, 1, "c", 3, Value::Int(3))]
    );
    assert_eq!(
        records(read_all(&source, 2, 0)),
        vec![rec(2, 0, "d", 4, Value::Int(4))]
    );
}

/// A one-file CSV layout of `lines` (partition, key, ts, value) rows and
/// what each partition must read from it.
fn shared_csv(dir: &std::path::Path, rows: &[(u32, u64)]) -> (FileSource, Vec<Vec<Record>>) {
    let mut text = String::new();
    let mut expected: Vec<Vec<Record>> = Vec::new();
    for &(partition, n) in rows {
        let p = partition as usize;
        if expected.len() <= p {
            expected.resize(p + 1, Vec::new());
        }
        let offset = expected[p].len() as u64;
        let key = format!("k{}", n % 13);
        text.push_str(&format!("{partition},{key},{n},{}\n", n % 7));
        expected[p].push(rec(
            partition,
            offset,
            &key,
            n as i64,
            Value::Int((n % 7) as i64),
        ));
    }
    let file = dir.join("all.csv");
    std::fs::write(&file, text).unwrap();
    let mut config = FileSourceConfig::new(&file, Format::Csv);
    config.decode.fields = FieldMapping {
        key: "1".into(),
        time: "2".into(),
        value: "3".into(),
        partition: Some("0".into()),
    };
    (source(config), expected)
}

#[test]
fn one_file_partitions_read_in_turns_get_their_own_records() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(u32, u64)> = (0..5_000u64).map(|n| (((n * 7) % 3) as u32, n)).collect();
    let (source, expected) = shared_csv(dir.path(), &rows);
    assert_eq!(source.partitions().unwrap(), vec![0, 1, 2]);
    let mut readers: Vec<_> = (0..3).map(|p| source.open(p, 0).unwrap()).collect();
    let mut got = vec![Vec::new(); 3];
    let mut ended = [false; 3];
    // Uneven batches, partitions in turn: each takes the records the others
    // met before it asked.
    let mut turn = 0usize;
    while ended.iter().any(|e| !e) {
        let p = turn % 3;
        turn += 1;
        if ended[p] {
            continue;
        }
        assert_eq!(readers[p].position(), got[p].len() as u64);
        let status = readers[p].read(1 + turn % 50, &mut got[p]).unwrap();
        ended[p] = status == tidemark_sources::ReadStatus::End;
    }
    for p in 0..3 {
        assert_eq!(
            records(std::mem::take(&mut got[p])),
            expected[p],
            "partition {p}"
        );
        assert_eq!(readers[p].position(), expected[p].len() as u64);
    }
}

#[test]
fn one_file_partition_that_is_not_read_leaves_the_shared_pass_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // 200 000 records of partition 0 before any of partition 1: reading
    // partition 1 first meets more of partition 0 than the pass holds.
    let mut rows: Vec<(u32, u64)> = (0..200_000u64).map(|n| (0, n)).collect();
    rows.extend((200_000..200_100u64).map(|n| ((n % 2) as u32, n)));
    let (source, expected) = shared_csv(dir.path(), &rows);
    let mut zero = source.open(0, 0).unwrap();
    let mut one = source.open(1, 0).unwrap();
    let (got_one, _) = common::drain(one.as_mut(), 1000);
    assert_eq!(records(got_one), expected[1]);
    assert_eq!(zero.position(), 0);
    let (got_zero, _) = common::drain(zero.as_mut(), 333);
    assert_eq!(records(got_zero), expected[0]);
    // Opened again, a partition reads alone from the start.
    assert_eq!(records(read_all(&source, 1, 0)), expected[1]);
    assert_eq!(
        records(read_all(&source, 0, 199_990)),
        expected[0][199_990..]
    );
}

#[test]
fn a_broken_line_naming_a_high_partition_does_not_add_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    write(
        dir.path(),
        "all.jsonl",
        br#"{"partition":1,"key":"a","ts":1,"value":1}
{"partition":9,"key":"b","ts":
{"partition":0,"key":"c","ts":3,"value":3}
{"partition":1,"key":"d","ts":4,"value":4}
"#,
    );
    let mut config = FileSourceConfig::new(&file, Format::Jsonl);
    config.decode.fields.partition = Some("partition".into());
    let source = source(config);
    // The broken line is partition 0's dead letter, not a tenth partition.
    assert_eq!(source.partitions().unwrap(), vec![0, 1]);
    let p0 = read_all(&source, 0, 0);
    assert_eq!(p0.len(), 2);
    assert!(p0[0].is_err());
    assert_eq!(
        records(read_all(&source, 1, 1)),
        vec![rec(1, 1, "d", 4, Value::Int(4))]
    );
}

#[test]
fn one_file_with_a_configured_partition_count() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.csv");
    write(
        dir.path(),
        "all.csv",
        b"partition,key,ts,value\n3,a,1,1\n1,b,2,2\n",
    );
    let mut config = FileSourceConfig::new(&file, Format::Csv);
    config.decode.header = true;
    config.decode.fields.partition = Some("partition".into());
    config.partition_count = Some(2);
    let source = source(config);
    assert_eq!(source.partitions().unwrap(), vec![0, 1]);
    let p0 = read_all(&source, 0, 0);
    assert_eq!(
        p0[0].as_ref().unwrap_err().reason,
        "partition out of range: 3 (the source has 2 partitions)"
    );
    assert_eq!(
        records(read_all(&source, 1, 0)),
        vec![rec(1, 0, "b", 2, Value::Int(2))]
    );
}

#[test]
fn blank_lines_take_an_offset_and_crlf_and_bom_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.jsonl",
        b"\xEF\xBB\xBF{\"key\":\"a\",\"ts\":1,\"value\":1}\r\n\n  \r\n{\"key\":\"b\",\"ts\":2,\"value\":2}\n",
    );
    let got = read_all(
        &source(FileSourceConfig::new(dir.path(), Format::Jsonl)),
        0,
        0,
    );
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], Ok(rec(0, 0, "a", 1, Value::Int(1))));
    for (i, item) in got[1..3].iter().enumerate() {
        let dead = item.as_ref().unwrap_err();
        assert_eq!(
            (dead.offset, dead.reason.as_str()),
            (i as u64 + 1, "empty line")
        );
    }
    assert_eq!(got[3], Ok(rec(0, 3, "b", 2, Value::Int(2))));
}

#[test]
fn io_errors_name_the_path() {
    let missing = FileSource::new(FileSourceConfig::new(
        "/nonexistent/tidemark-in",
        Format::Jsonl,
    ))
    .unwrap();
    let err = missing.partitions().unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not open input \"/nonexistent/tidemark-in\""
    );

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p-0003.jsonl", b"");
    let source = FileSource::new(FileSourceConfig::new(dir.path(), Format::Jsonl)).unwrap();
    assert_eq!(source.partitions().unwrap(), vec![0]);
    let path = dir.path().join("p-0003.jsonl");
    std::fs::remove_file(&path).unwrap();
    let err = source.open(0, 0).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("could not open partition file \"{}\"", path.display())
    );
}

#[test]
fn invalid_configs_are_rejected() {
    let mut config = FileSourceConfig::new("x", Format::Jsonl);
    config.decode.max_line_len = 0;
    assert!(matches!(
        FileSource::new(config),
        Err(SourceError::InvalidConfig(_))
    ));
    let mut config = FileSourceConfig::new("x", Format::Jsonl);
    config.partition_count = Some(0);
    assert!(FileSource::new(config).is_err());
}

#[test]
fn config_reads_from_json_and_formats_parse() {
    let config: FileSourceConfig = serde_json::from_str(
        r#"{"path":"in/","format":"csv","header":true,"time_format":"epoch-s","follow":true,
            "fields":{"key":"user","partition":"p"}}"#,
    )
    .unwrap();
    assert_eq!(config.decode.format, Format::Csv);
    assert!(config.decode.header && config.follow);
    assert_eq!(config.decode.time_format, TimeFormat::EpochS);
    assert_eq!(config.decode.fields.key, "user");
    assert_eq!(config.decode.fields.time, "ts");
    assert_eq!(config.decode.fields.partition.as_deref(), Some("p"));
    assert!(config.decode.require_value);
    let optional: FileSourceConfig =
        serde_json::from_str(r#"{"path":"in/","require_value":false,"partition_glob":"*.log"}"#)
            .unwrap();
    assert!(!optional.decode.require_value);
    assert_eq!(optional.effective_partition_glob(), "*.log");
    assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
    assert_eq!("jsonl".parse::<Format>(), Ok(Format::Jsonl));
    assert_eq!("rfc3339".parse::<TimeFormat>(), Ok(TimeFormat::Rfc3339));
    assert_eq!("epoch-ms".parse::<TimeFormat>(), Ok(TimeFormat::EpochMs));
    assert!("xml".parse::<Format>().is_err());
}

fn line(key: &str) -> String {
    format!("{{\"key\":\"{key}\",\"ts\":1,\"value\":1}}\n")
}

fn first_keys(source: &FileSource) -> Vec<String> {
    source
        .partitions()
        .unwrap()
        .into_iter()
        .map(|p| records(read_all(source, p, 0))[0].key.to_string())
        .collect()
}

#[test]
fn directory_partitions_are_the_matching_files_in_natural_order() {
    let dir = tempfile::tempdir().unwrap();
    for p in [10, 2, 1, 0] {
        write(
            dir.path(),
            &format!("part-{p}.jsonl"),
            line(&format!("p{p}")).as_bytes(),
        );
    }
    write(dir.path(), "extra.ndjson", line("nd").as_bytes());
    write(dir.path(), "notes.txt", b"not a partition\n");
    write(dir.path(), "part-3.jsonl.tmp", b"half written\n");
    write(dir.path(), "p.csv", b"k,1,1\n");
    let source = source(FileSourceConfig::new(dir.path(), Format::Jsonl));
    assert_eq!(first_keys(&source), ["nd", "p0", "p1", "p2", "p10"]);

    let mut config = FileSourceConfig::new(dir.path(), Format::Jsonl);
    config.partition_glob = Some("part-[!1]*.jsonl".into());
    assert_eq!(config.effective_partition_glob(), "part-[!1]*.jsonl");
    assert_eq!(first_keys(&FileSource::new(config).unwrap()), ["p0", "p2"]);
}

#[test]
fn a_directory_without_matching_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "part-0.jsonl", line("a").as_bytes());
    let csv = source(FileSourceConfig::new(dir.path(), Format::Csv));
    let err = csv.partitions().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no partition files matching \"*.csv\" in directory \"{}\"",
            dir.path().display()
        )
    );
    let empty = tempfile::tempdir().unwrap();
    let empty = source(FileSourceConfig::new(empty.path(), Format::Jsonl));
    assert!(matches!(
        empty.partitions(),
        Err(SourceError::NoPartitionFiles { pattern, .. }) if pattern == "*.{jsonl,json,ndjson}"
    ));
    let mut config = FileSourceConfig::new(dir.path(), Format::Jsonl);
    config.partition_glob = Some("*.{a".into());
    assert_eq!(
        FileSource::new(config).unwrap_err().to_string(),
        "invalid source configuration: invalid partition glob \"*.{a\": '{' without '}'"
    );
}

#[test]
fn formats_are_detected_from_extensions() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.csv", b"k,1,1\n");
    write(dir.path(), "README", b"about\n");
    write(dir.path(), ".b.jsonl", b"hidden\n");
    assert_eq!(Format::detect(dir.path()).unwrap(), Format::Csv);
    assert_eq!(
        Format::detect(dir.path().join("a.csv")).unwrap(),
        Format::Csv
    );
    assert_eq!(
        Format::detect(dir.path().join("README")).unwrap(),
        Format::Jsonl
    );
    assert_eq!(Format::detect("-").unwrap(), Format::Jsonl);
    write(dir.path(), "b.ndjson", b"{}\n");
    let err = Format::detect(dir.path()).unwrap_err();
    assert!(matches!(err, SourceError::MixedFormats { .. }));
    assert!(err.to_string().contains("b.ndjson"), "{err}");
    assert!(err.to_string().ends_with("; set the format"), "{err}");
    let other = tempfile::tempdir().unwrap();
    write(other.path(), "p.txt", b"x\n");
    assert!(matches!(
        Format::detect(other.path()),
        Err(SourceError::UnknownFormat { .. })
    ));
    assert!(matches!(
        Format::detect(other.path().join("missing")),
        Err(SourceError::OpenInput { .. })
    ));
    assert_eq!(Format::for_extension("json"), Some(Format::Jsonl));
    assert_eq!(Format::for_extension("CSV"), None);
}

#[test]
fn partitions_above_the_limit_are_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    write(
        dir.path(),
        "all.jsonl",
        br#"{"partition":1,"key":"a","ts":1,"value":1}
{"partition":65535,"key":"b","ts":2,"value":2}
{"partition":9999,"key":"c","ts":3,"value":3}
{"partition":10000,"key":"d","ts":4,"value":4}
"#,
    );
    let mut config = FileSourceConfig::new(&file, Format::Jsonl);
    config.decode.fields.partition = Some("partition".into());
    assert_eq!(config.max_partitions, 10_000);
    let source = source(config.clone());
    // 9999 is the largest partition below the limit.
    assert_eq!(source.partitions().unwrap().len(), 10_000);
    let p0 = read_all(&source, 0, 0);
    let reasons: Vec<_> = p0
        .iter()
        .map(|d| {
            let d = d.as_ref().unwrap_err();
            (d.offset, d.line, d.reason.as_str())
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                0,
                Some(2),
                "partition out of range: 65535 (at most 10000 partitions; raise max_partitions \
                 to allow more)"
            ),
            (
                1,
                Some(4),
                "partition out of range: 10000 (at most 10000 partitions; raise max_partitions \
                 to allow more)"
            )
        ]
    );
    assert_eq!(
        records(read_all(&source, 9999, 0)),
        vec![rec(9999, 0, "c", 3, Value::Int(3))]
    );

    // A lower limit: fewer partitions, more dead letters.
    config.max_partitions = 2;
    let small = FileSource::new(config.clone()).unwrap();
    assert_eq!(small.partitions().unwrap(), [0, 1]);
    assert_eq!(dead_count(&read_all(&small, 0, 0)), 3);

    config.max_partitions = 0;
    assert!(FileSource::new(config.clone()).is_err());
    config.max_partitions = 70_000;
    assert!(FileSource::new(config.clone()).is_err());
    config.max_partitions = 4;
    config.partition_count = Some(5);
    assert_eq!(
        FileSource::new(config).unwrap_err().to_string(),
        "invalid source configuration: partition_count must be between 1 and max_partitions (4)"
    );
    let parsed: FileSourceConfig =
        serde_json::from_str(r#"{"path":"x","max_partitions":64}"#).unwrap();
    assert_eq!(parsed.max_partitions, 64);
}

fn dead_count(items: &[tidemark_sources::Decoded]) -> usize {
    items.iter().filter(|d| d.is_err()).count()
}

#[test]
fn describe_names_the_configuration_and_the_partition_files() {
    let dir = tempfile::tempdir().unwrap();
    let line = b"{\"key\":\"k\",\"ts\":1,\"value\":1}\n";
    for name in ["p1.jsonl", "p2.jsonl", "p10.jsonl"] {
        write(dir.path(), name, line);
    }
    let listed = |config: FileSourceConfig| {
        let s = source(config);
        s.partitions().unwrap();
        s.describe()
    };
    let config = FileSourceConfig::new(dir.path(), Format::Jsonl);
    let d = listed(config.clone());
    assert!(
        d.contains("partition files p1.jsonl, p2.jsonl, p10.jsonl"),
        "{d}"
    );
    assert!(d.contains("\"format\":\"jsonl\""), "{d}");
    // The same input describes itself the same way every time.
    assert_eq!(d, listed(config.clone()));
    // Another field, another file, or following changes it.
    let mut other_field = config.clone();
    other_field.decode.fields.value = "amount".into();
    assert_ne!(d, listed(other_field));
    let mut follow = config.clone();
    follow.follow = true;
    assert_ne!(d, listed(follow));
    write(dir.path(), "p3.jsonl", line);
    assert_ne!(d, listed(config));

    // Many files: their count, the ends and a digest of every name.
    let many = tempfile::tempdir().unwrap();
    for i in 0..40 {
        write(many.path(), &format!("part-{i:02}.jsonl"), line);
    }
    let d = listed(FileSourceConfig::new(many.path(), Format::Jsonl));
    assert!(
        d.contains("40 partition files part-00.jsonl to part-39.jsonl (names digest "),
        "{d}"
    );
    std::fs::rename(
        many.path().join("part-17.jsonl"),
        many.path().join("part-17b.jsonl"),
    )
    .unwrap();
    assert_ne!(d, listed(FileSourceConfig::new(many.path(), Format::Jsonl)));
}
