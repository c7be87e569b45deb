//! Property tests of the decoders:
//!
//! - *no panic*: any byte string, in either format and several field
//!   mappings, decodes to a record or a dead letter;
//! - *fast == general*: the hand-written fast path and the general
//!   `serde_json` / `csv` path give identical results, on generated valid
//!   lines, on mutations of them, and on arbitrary bytes;
//! - *file == memory*: a file of arbitrary lines reads back with dense
//!   offsets, the same as the same lines held in memory.
//!
//! Run: `cargo test -p tidemark-sources --test decode_props`
//! (more cases: `PROPTEST_CASES=10000 cargo test ...`).

mod common;

use proptest::prelude::*;
use tidemark_sources::{
    DecodeConfig, Decoder, FieldMapping, FileSource, FileSourceConfig, Format, MemorySource,
    NamedField, TimeFormat,
};

fn configs() -> Vec<Decoder> {
    let mut out = Vec::new();
    for time_format in [TimeFormat::EpochMs, TimeFormat::EpochS, TimeFormat::Rfc3339] {
        let mut json = DecodeConfig::new(Format::Jsonl);
        json.time_format = time_format;
        json.max_line_len = 200;
        out.push(Decoder::new(&json));
        let mut nested = json.clone();
        nested.fields.time = "m.ts".into();
        out.push(Decoder::new(&nested));
        let mut csv = DecodeConfig::new(Format::Csv);
        csv.time_format = time_format;
        csv.fields = FieldMapping {
            key: "0".into(),
            time: "1".into(),
            value: "2".into(),
            partition: Some("3".into()),
        };
        out.push(Decoder::new(&csv));
        let mut header = csv.clone();
        header.header = true;
        header.fields = FieldMapping::default();
        let mut decoder = Decoder::new(&header);
        decoder.set_header(b"value,ts,key");
        out.push(decoder);
        let mut optional = json.clone();
        optional.require_value = false;
        out.push(Decoder::new(&optional));
        // Named fields, nested and flat, and a compound key.
        let named = |name: &str, number: bool| NamedField {
            name: name.into(),
            number,
        };
        let mut fields = json.clone();
        fields.named = vec![
            named("m.ts", true),
            named("other", false),
            named("m.x", false),
        ];
        fields.compound_key = vec!["key".into(), "k\u{e9}y".into()];
        out.push(Decoder::new(&fields));
        let mut flat_fields = json.clone();
        flat_fields.read_value = false;
        flat_fields.named = vec![named("value", true), named("other", false)];
        out.push(Decoder::new(&flat_fields));
        let mut csv_fields = csv.clone();
        csv_fields.named = vec![named("4", true), named("1", false)];
        csv_fields.compound_key = vec!["0".into(), "5".into()];
        out.push(Decoder::new(&csv_fields));
        let mut optional = csv.clone();
        optional.require_value = false;
        out.push(Decoder::new(&optional));
        // A stream whose key is made after a table join (no key read), and
        // a static table (no time, no value, the table's fields named).
        let mut keyless = json.clone();
        keyless.read_key = false;
        keyless.named = vec![named("key", false), named("m.x", false)];
        out.push(Decoder::new(&keyless));
        let mut timeless = json.clone();
        timeless.read_time = false;
        timeless.read_value = false;
        timeless.require_value = false;
        timeless.named = vec![named("value", false), named("other", false)];
        out.push(Decoder::new(&timeless));
        let mut csv_timeless = csv.clone();
        csv_timeless.read_time = false;
        csv_timeless.read_value = false;
        csv_timeless.named = vec![named("2", false)];
        out.push(Decoder::new(&csv_timeless));
    }
    out
}

fn check_line(line: &[u8]) {
    for decoder in configs() {
        let fast = decoder.decode(3, 9, line);
        let general = decoder.decode_general(3, 9, line);
        assert_eq!(
            fast,
            general,
            "config {:?}\nline {:?}",
            decoder.config(),
            String::from_utf8_lossy(line)
        );
        match &fast {
            Ok(r) => assert_eq!((r.partition, r.offset), (3, 9)),
            Err(d) => {
                assert_eq!((d.partition, d.offset), (3, 9));
                assert!(!d.reason.is_empty());
                assert!(d.raw.len() <= tidemark_sources::RAW_LIMIT);
            }
        }
    }
}

/// A JSON scalar or small nested value, as text.
fn json_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|u| u.to_string()),
        (-1e20f64..1e20).prop_map(|f| format!("{f}")),
        (-1e6f64..1e6).prop_map(|f| format!("{f:e}")),
        Just("-0".to_owned()),
        Just("1.5E3".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        "[a-z0-9 é\u{1F600}]{0,8}".prop_map(|s| format!("\"{s}\"")),
        "[a-z]{0,4}".prop_map(|s| format!("\"a\\\"{s}\\n\"")),
        Just("\"2023-11-14T22:13:20.123Z\"".to_owned()),
        Just("\"1700000000.5\"".to_owned()),
        Just("{\"ts\":5,\"x\":[1,{}]}".to_owned()),
        Just("[]".to_owned()),
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(""), Just(" "), Just("\t"), Just("  ")]
}

prop_compose! {
    /// A JSON object with some of key/ts/value/m and extra fields, in any order.
    fn json_line()(
        fields in proptest::collection::vec(
            (prop_oneof![Just("key"), Just("ts"), Just("value"), Just("m"), Just("other"), Just("k\u{e9}y")],
             json_value(), ws(), ws()),
            0..7,
        ),
        lead in ws(),
    ) -> String {
        let body: Vec<String> = fields
            .into_iter()
            .map(|(name, value, a, b)| format!("{a}\"{name}\"{b}:{a}{value}{b}"))
            .collect();
        format!("{lead}{{{}}}{lead}", body.join(","))
    }
}

fn csv_field() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|i| i.to_string()),
        (-1e9f64..1e9).prop_map(|f| format!("{f}")),
        "[a-z0-9 ]{0,6}",
        "[a-z,]{0,6}".prop_map(|s| format!("\"{s}\"")),
        Just("2023-11-14T22:13:20.123Z".to_owned()),
        Just("\"x\"\"y\"".to_owned()),
        // Quoted fields holding line breaks, commas and doubled quotes.
        "[a-z,\n\r\" ]{0,8}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        // Stray quotes: inside an unquoted field, after a closing quote,
        // never closed.
        "[a-z]{0,3}\"[a-z]{0,3}",
        "[a-z]{0,3}".prop_map(|s| format!("\"{s}\"x")),
        "[a-z\n]{0,4}".prop_map(|s| format!("\"{s}")),
    ]
}

prop_compose! {
    fn csv_line()(fields in proptest::collection::vec(csv_field(), 0..6)) -> String {
        fields.join(",")
    }
}

/// A valid line with a few bytes changed, inserted or cut.
fn mutated(line: String) -> impl Strategy<Value = Vec<u8>> {
    let len = line.len();
    (0..=len, any::<u8>(), 0..3u8).prop_map(move |(at, byte, how)| {
        let mut bytes = line.clone().into_bytes();
        match how {
            0 => bytes.insert(at, byte),
            1 => bytes.truncate(at),
            _ => {
                if at < bytes.len() {
                    bytes[at] = byte;
                }
            }
        }
        bytes
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_line(&line);
    }

    #[test]
    fn json_shaped_bytes_never_panic(line in "[{}\\[\\]\",:0-9a-z.eE+\\- \\\\]{0,60}") {
        check_line(line.as_bytes());
    }

    #[test]
    fn fast_equals_general_on_json_lines(line in json_line()) {
        check_line(line.as_bytes());
    }

    #[test]
    fn fast_equals_general_on_mutated_json_lines(line in json_line().prop_flat_map(mutated)) {
        check_line(&line);
    }

    #[test]
    fn fast_equals_general_on_csv_lines(line in csv_line()) {
        check_line(line.as_bytes());
    }

    #[test]
    fn fast_equals_general_on_mutated_csv_lines(line in csv_line().prop_flat_map(mutated)) {
        check_line(&line);
    }

    #[test]
    fn valid_flat_lines_decode(key in "[a-z0-9]{1,8}", ts in -(1i64 << 53)..(1i64 << 53), value in any::<i64>(),
                               float in -1e15f64..1e15) {
        let decoder = Decoder::new(&DecodeConfig::new(Format::Jsonl));
        let line = format!(r#"{{"value":{value},"key":"{key}","ts":{ts}}}"#);
        let record = decoder.decode(0, 0, line.as_bytes()).unwrap();
        prop_assert_eq!((record.key.as_str(), record.event_time), (key.as_str(), ts));
        prop_assert_eq!(record.value, tidemark_sources::Value::Int(value));
        let line = format!(r#"{{"key":"{key}","ts":{ts},"value":{float:?}}}"#);
        let record = decoder.decode(0, 0, line.as_bytes()).unwrap();
        prop_assert_eq!(record.value, tidemark_sources::Value::Float(float));
    }

    #[test]
    fn files_read_like_memory(lines in proptest::collection::vec(
        prop_oneof![
            json_line().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..40),
        ],
        0..20,
    )) {
        let dir = tempfile::tempdir().unwrap();
        let mut text = Vec::new();
        for line in &lines {
            text.extend_from_slice(line);
            text.push(b'\n');
        }
        common::write(dir.path(), "p.jsonl", &text);
        let mut config = FileSourceConfig::new(dir.path(), Format::Jsonl);
        config.decode.max_line_len = 100;
        let mut from_file = common::read_all(&FileSource::new(config.clone()).unwrap(), 0, 0);
        // Only file dead letters know their file and line: line i + 1 here.
        for (i, item) in from_file.iter_mut().enumerate() {
            if let Err(dead) = item {
                prop_assert_eq!(dead.line, Some(i as u64 + 1));
                prop_assert!(dead.file.is_some());
                (dead.file, dead.line) = (None, None);
            }
        }
        // A file's first line loses a leading byte-order mark; memory lines do not.
        let mut memory_lines = lines.clone();
        if let Some(first) = memory_lines.first_mut() {
            if first.starts_with(b"\xEF\xBB\xBF") {
                first.drain(..3);
            }
        }
        let from_memory = common::read_all(&MemorySource::from_lines(vec![memory_lines], config.decode), 0, 0);
        prop_assert_eq!(from_file.len(), lines.len());
        for (i, item) in from_file.iter().enumerate() {
            let offset = match item { Ok(r) => r.offset, Err(d) => d.offset };
            prop_assert_eq!(offset, i as u64);
        }
        prop_assert_eq!(from_file, from_memory);
    }
}

#[test]
fn a_keyless_or_timeless_config_does_not_read_those_fields() {
    let mut config = DecodeConfig::new(Format::Jsonl);
    config.read_key = false;
    config.read_time = false;
    config.read_value = false;
    config.named = vec![NamedField {
        name: "country".into(),
        number: false,
    }];
    let decoder = Decoder::new(&config);
    // Neither a key nor a time: not a dead letter.
    let r = decoder.decode(0, 4, br#"{"country":"fr"}"#).unwrap();
    assert_eq!(r.key, "");
    assert_eq!(r.event_time, tidemark_sources::MIN_EVENT_TIME);
    assert_eq!(r.fields, vec![tidemark_sources::Field::Text("fr".into())]);
    // A key or time present is not looked at, even malformed.
    let r = decoder
        .decode(0, 5, br#"{"key":[1],"ts":"soon","country":null}"#)
        .unwrap();
    assert_eq!(r.fields, vec![tidemark_sources::Field::Null]);
}
