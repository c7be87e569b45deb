//! Bad input is data: every kind of undecodable line becomes a dead letter
//! at its partition and offset with a reason naming the problem, and the
//! lines around it still decode.
//!
//! Run: `cargo test -p tidemark-sources --test bad_input`

mod common;

use common::{read_all, write};
use tidemark_sources::{
    DecodeConfig, FieldMapping, FileSource, FileSourceConfig, Format, MemorySource, TimeFormat,
};

const GOOD: &[u8] = br#"{"key":"k","ts":1,"value":1}"#;

/// Writes `bad` between two good lines in partition 1 of a directory and
/// returns the dead letter found at offset 1.
fn dead_letter_for(config: &DecodeConfig, bad: &[u8]) -> (u32, u64, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let good: &[u8] = match (config.format, config.time_format) {
        (Format::Jsonl, TimeFormat::Rfc3339) => {
            br#"{"key":"k","ts":"2024-01-01T00:00:00Z","value":1}"#
        }
        (Format::Jsonl, _) => GOOD,
        (Format::Csv, TimeFormat::Rfc3339) => b"k,2024-01-01T00:00:00Z,1",
        (Format::Csv, _) => b"k,1,1",
    };
    let name = |p: u32| format!("p{p}.{}", config.format);
    write(dir.path(), &name(0), good);
    let mut text = good.to_vec();
    text.push(b'\n');
    text.extend_from_slice(bad);
    text.push(b'\n');
    text.extend_from_slice(good);
    write(dir.path(), &name(1), &text);
    let mut file_config = FileSourceConfig::new(dir.path(), config.format);
    file_config.decode = config.clone();
    let source = FileSource::new(file_config).unwrap();
    let items = read_all(&source, 1, 0);
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(items[0].is_ok() && items[2].is_ok(), "{items:?}");
    let dead = items[1].as_ref().unwrap_err().clone();
    (dead.partition, dead.offset, dead.reason, dead.raw)
}

fn reason(config: &DecodeConfig, bad: &str) -> String {
    let (partition, offset, reason, raw) = dead_letter_for(config, bad.as_bytes());
    assert_eq!((partition, offset), (1, 1));
    assert_eq!(raw, bad);
    reason
}

fn jsonl() -> DecodeConfig {
    DecodeConfig::new(Format::Jsonl)
}

fn csv() -> DecodeConfig {
    let mut config = DecodeConfig::new(Format::Csv);
    config.fields = FieldMapping {
        key: "0".into(),
        time: "1".into(),
        value: "2".into(),
        partition: None,
    };
    config
}

#[test]
fn invalid_json() {
    assert!(reason(&jsonl(), r#"{"key":"k","ts":1,"value":1"#).starts_with("invalid json: "));
    assert!(reason(&jsonl(), "not json").starts_with("invalid json: "));
    assert_eq!(
        reason(&jsonl(), "[1,2]"),
        "invalid json: expected an object, found array"
    );
}

#[test]
fn missing_fields() {
    assert_eq!(
        reason(&jsonl(), r#"{"key":"k","value":1}"#),
        "missing field \"ts\""
    );
    assert_eq!(
        reason(&jsonl(), r#"{"ts":1,"value":1}"#),
        "missing field \"key\""
    );
    assert_eq!(
        reason(&jsonl(), r#"{"key":"k","ts":1}"#),
        "missing field \"value\""
    );
    assert_eq!(reason(&csv(), "k,1"), "missing field \"2\"");
}

#[test]
fn wrong_types() {
    assert_eq!(
        reason(&jsonl(), r#"{"key":"k","ts":true,"value":1}"#),
        "wrong type for field \"ts\": expected a number, found boolean"
    );
    assert_eq!(
        reason(&jsonl(), r#"{"key":{"a":1},"ts":1,"value":1}"#),
        "wrong type for field \"key\": expected a string or a number, found object"
    );
    assert_eq!(
        reason(&jsonl(), r#"{"key":"k","ts":1,"value":null}"#),
        "wrong type for field \"value\": expected a number, found null"
    );
    assert_eq!(
        reason(&jsonl(), r#"{"key":"k","ts":1,"value":"lots"}"#),
        "invalid value \"lots\" in field \"value\": expected a number"
    );
    assert_eq!(
        reason(&csv(), "k,1,NaN"),
        "invalid value \"NaN\" in field \"2\": expected a number"
    );
}

#[test]
fn unparsable_and_out_of_range_times() {
    let mut rfc = jsonl();
    rfc.time_format = TimeFormat::Rfc3339;
    assert_eq!(
        reason(&rfc, r#"{"key":"k","ts":"abc","value":1}"#),
        "invalid time \"abc\" for format rfc3339 in field \"ts\""
    );
    assert_eq!(
        reason(&rfc, r#"{"key":"k","ts":"2024-13-01T00:00:00Z","value":1}"#),
        "invalid time \"2024-13-01T00:00:00Z\" for format rfc3339 in field \"ts\""
    );
    assert_eq!(
        reason(&rfc, r#"{"key":"k","ts":5,"value":1}"#),
        "wrong type for field \"ts\": expected an rfc3339 string, found number"
    );
    assert_eq!(
        reason(&jsonl(), r#"{"key":"k","ts":9007199254740993,"value":1}"#),
        "invalid time \"9007199254740993\" for format epoch-ms in field \"ts\": out of range"
    );
    assert_eq!(
        reason(&jsonl(), r#"{"key":"k","ts":-9007199254740993,"value":1}"#),
        "invalid time \"-9007199254740993\" for format epoch-ms in field \"ts\": out of range"
    );
    assert_eq!(
        reason(
            &jsonl(),
            r#"{"key":"k","ts":18446744073709551615,"value":1}"#
        ),
        "invalid time \"18446744073709551615\" for format epoch-ms in field \"ts\": out of range"
    );
    let mut seconds = csv();
    seconds.time_format = TimeFormat::EpochS;
    assert_eq!(
        reason(&seconds, "k,9999999999999999,1"),
        "invalid time \"9999999999999999\" for format epoch-s in field \"1\": out of range"
    );
    assert_eq!(
        reason(&seconds, "k,soon,1"),
        "invalid time \"soon\" for format epoch-s in field \"1\""
    );
    assert!(reason(&jsonl(), r#"{"key":"k","ts":1e400,"value":1}"#).starts_with("invalid json: "));
}

#[test]
fn invalid_utf8() {
    let bad = b"{\"key\":\"k\xff\",\"ts\":1,\"value\":1}";
    let (partition, offset, reason, raw) = dead_letter_for(&jsonl(), bad);
    assert_eq!(
        (partition, offset, reason.as_str()),
        (1, 1, "invalid utf-8 at byte 9")
    );
    assert_eq!(raw, "{\"key\":\"k\u{fffd}\",\"ts\":1,\"value\":1}");
    let (_, _, reason, _) = dead_letter_for(&csv(), b"k\xc3,1,1");
    assert_eq!(reason, "invalid utf-8 at byte 1");
}

#[test]
fn over_long_lines() {
    let mut config = jsonl();
    config.max_line_len = 64;
    let long = format!(r#"{{"key":"{}","ts":1,"value":1}}"#, "x".repeat(100));
    assert_eq!(
        reason_raw(&config, long.as_bytes()),
        "line exceeds the maximum length of 64 bytes"
    );
    // A line far over the limit, bigger than any read buffer, is cut short
    // and skipped to its end without being held in memory.
    let huge = "y".repeat(300_000);
    let (_, _, reason, raw) = dead_letter_for(&config, huge.as_bytes());
    assert_eq!(reason, "line exceeds the maximum length of 64 bytes");
    assert_eq!(raw.len(), tidemark_sources::RAW_LIMIT);
    // Exactly at the limit is fine, a CRLF's `\r` does not count.
    let fits = format!(r#"{{"key":"{}","ts":1,"value":1}}"#, "x".repeat(64 - 27));
    assert_eq!(fits.len(), 64);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.jsonl",
        format!("{fits}\r\n{fits}").as_bytes(),
    );
    let mut file_config = FileSourceConfig::new(dir.path(), Format::Jsonl);
    file_config.decode = config;
    let items = read_all(&FileSource::new(file_config).unwrap(), 0, 0);
    assert!(items.iter().all(Result::is_ok), "{items:?}");
}

fn reason_raw(config: &DecodeConfig, bad: &[u8]) -> String {
    let (partition, offset, reason, raw) = dead_letter_for(config, bad);
    assert_eq!((partition, offset), (1, 1));
    assert!(raw.len() <= tidemark_sources::RAW_LIMIT);
    reason
}

#[test]
fn empty_lines() {
    assert_eq!(reason(&jsonl(), ""), "empty line");
    assert_eq!(reason(&csv(), " \t"), "empty line");
}

#[test]
fn memory_lines_decode_like_files() {
    let source = MemorySource::from_lines(vec![vec![&b"nope"[..], GOOD, b"\xff"]], jsonl());
    let items = read_all(&source, 0, 0);
    assert!(items[0]
        .as_ref()
        .unwrap_err()
        .reason
        .starts_with("invalid json"));
    assert!(items[1].is_ok());
    assert_eq!(
        items[2].as_ref().unwrap_err().reason,
        "invalid utf-8 at byte 0"
    );
    assert_eq!(items[2].as_ref().unwrap_err().offset, 2);
}

#[test]
fn dead_letters_name_their_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // A header (line 1), a good row, a bad row (line 3), a blank line (4),
    // a good row, and an over-long row (line 6).
    let long = format!("k,{},1", "9".repeat(100));
    let text = format!("key,ts,value\nk,1,1\nk,soon,1\n\nk,2,2\n{long}\n");
    write(dir.path(), "p-0.csv", text.as_bytes());
    let mut config = FileSourceConfig::new(dir.path(), Format::Csv);
    config.decode.header = true;
    config.decode.max_line_len = 64;
    let source = FileSource::new(config).unwrap();
    let file = dir.path().join("p-0.csv").display().to_string();
    let expect = [(1, 3), (2, 4), (4, 6)];
    for from in 0..=5 {
        let items = read_all(&source, 0, from);
        let got: Vec<(u64, Option<&str>, Option<u64>)> = items
            .iter()
            .filter_map(|d| d.as_ref().err())
            .map(|d| (d.offset, d.file.as_deref(), d.line))
            .collect();
        let want: Vec<_> = expect
            .iter()
            .filter(|(offset, _)| *offset >= from)
            .map(|&(offset, line)| (offset, Some(file.as_str()), Some(line)))
            .collect();
        assert_eq!(got, want, "from {from}");
    }
}

#[test]
fn dead_letters_in_one_file_count_the_lines_of_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.jsonl");
    let mut text = String::new();
    // Partition 1 gets every third line; its bad records sit at known lines.
    for i in 0..30_000u64 {
        let p = u64::from(i % 3 == 0);
        if p == 1 && i % 999 == 0 {
            text.push_str(&format!(
                "{{\"partition\":1,\"key\":\"k\",\"ts\":\"bad{i}\",\"value\":1}}\n"
            ));
        } else {
            text.push_str(&format!(
                "{{\"partition\":{p},\"key\":\"k\",\"ts\":{i},\"value\":1}}\n"
            ));
        }
    }
    write(dir.path(), "all.jsonl", text.as_bytes());
    let mut config = FileSourceConfig::new(&path, Format::Jsonl);
    config.decode.fields.partition = Some("partition".into());
    let source = FileSource::new(config).unwrap();
    let want: Vec<(u64, u64)> = (0..30_000u64)
        .filter(|i| i % 3 == 0 && i % 999 == 0)
        .map(|i| (i / 3, i + 1))
        .collect();
    // From 0, and from offsets past the one-file index's first marks.
    for from in [0, 1, 4096, 5000, 8192, 9500] {
        let got: Vec<(u64, u64)> = read_all(&source, 1, from)
            .iter()
            .filter_map(|d| d.as_ref().err())
            .map(|d| {
                assert_eq!(d.file.as_deref(), Some(path.display().to_string().as_str()));
                (d.offset, d.line.unwrap())
            })
            .collect();
        let want: Vec<_> = want.iter().copied().filter(|(o, _)| *o >= from).collect();
        assert_eq!(got, want, "from {from}");
    }
}

#[test]
fn memory_dead_letters_have_no_file() {
    let source = MemorySource::from_lines(vec![vec!["nope"]], jsonl());
    let dead = read_all(&source, 0, 0).remove(0).unwrap_err();
    assert_eq!((dead.file, dead.line), (None, None));
}

#[test]
fn an_optional_value_counts_as_one() {
    let mut config = jsonl();
    config.require_value = false;
    let source = MemorySource::from_lines(
        vec![vec![
            r#"{"key":"k","ts":1}"#,
            r#"{"key":"k","ts":2,"value":null}"#,
            r#"{"key":"k","ts":3,"value":7}"#,
            r#"{"key":"k","ts":4,"value":"lots"}"#,
            r#"{"key":"k","value":1}"#,
        ]],
        config,
    );
    let items = read_all(&source, 0, 0);
    let values: Vec<_> = items[..3]
        .iter()
        .map(|d| d.as_ref().unwrap().value)
        .collect();
    assert_eq!(
        values,
        [
            tidemark_sources::Value::Int(1),
            tidemark_sources::Value::Int(1),
            tidemark_sources::Value::Int(7)
        ]
    );
    // Present but not a number, or another field missing: still dead letters.
    assert_eq!(
        items[3].as_ref().unwrap_err().reason,
        "invalid value \"lots\" in field \"value\": expected a number"
    );
    assert_eq!(
        items[4].as_ref().unwrap_err().reason,
        "missing field \"ts\""
    );

    let mut config = csv();
    config.require_value = false;
    let source = MemorySource::from_lines(vec![vec!["k,1", "k,2,", "k,3, ", "k,4,5"]], config);
    let values: Vec<_> = read_all(&source, 0, 0)
        .into_iter()
        .map(|d| d.unwrap().value)
        .collect();
    use tidemark_sources::Value::Int;
    assert_eq!(values, [Int(1), Int(1), Int(1), Int(5)]);
    // The default still requires it.
    assert_eq!(
        reason(&csv(), "k,1,"),
        "invalid value \"\" in field \"2\": expected a number"
    );
}
