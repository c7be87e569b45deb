//! CSV records as the `csv` crate splits them: a quoted field may hold line
//! breaks, commas and doubled quotes; stray quotes are dead letters that
//! take in no other line. Property tests on random files compare the file
//! source with the `csv` crate reading the same bytes (fields, record
//! count, line numbers), from every offset.
//!
//! Run: `cargo test -p tidemark-sources --test csv_records`

mod common;

use common::{read_all, write};
use proptest::prelude::*;
use tidemark_sources::{FieldMapping, FileSource, FileSourceConfig, Format, Source};

fn csv_source(dir: &std::path::Path, header: bool) -> FileSource {
    let mut config = FileSourceConfig::new(dir, Format::Csv);
    config.decode.header = header;
    if !header {
        config.decode.fields = FieldMapping {
            key: "0".into(),
            time: "1".into(),
            value: "2".into(),
            partition: None,
        };
    }
    FileSource::new(config).unwrap()
}

/// (offset, key or dead-letter reason, line) of every item.
fn summary(source: &FileSource, from: u64) -> Vec<(u64, Result<String, String>, Option<u64>)> {
    read_all(source, 0, from)
        .into_iter()
        .map(|d| match d {
            Ok(r) => (r.offset, Ok(r.key.to_string()), None),
            Err(d) => (d.offset, Err(d.reason), d.line),
        })
        .collect()
}

#[test]
fn a_quoted_line_break_stays_inside_its_field() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.csv",
        b"key,ts,value\n\"multi\nline\",1,1\n\"say \"\"hi\"\"\r\n\",2,2\nplain,3,3\n",
    );
    let source = csv_source(dir.path(), true);
    let got = summary(&source, 0);
    assert_eq!(
        got,
        [
            (0, Ok("multi\nline".to_owned()), None),
            (1, Ok("say \"hi\"\r\n".to_owned()), None),
            (2, Ok("plain".to_owned()), None),
        ]
    );
    assert_eq!(summary(&source, 2), got[2..]);
}

#[test]
fn stray_quotes_are_dead_letters_of_their_own_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.csv",
        b"a,1,1\nline\",2,2\nk\"x,3,3\n\"k\"x,4,4\nb,5,5\n\"never closed,6,6\nc,7,7\n",
    );
    let source = csv_source(dir.path(), false);
    let got = summary(&source, 0);
    let reasons = [
        "invalid csv: quote inside unquoted field 0 (quote the field and double its quotes)",
        "invalid csv: quote inside unquoted field 0 (quote the field and double its quotes)",
        "invalid csv: text after the closing quote of field 0",
        "invalid csv: quoted field 0 does not close",
    ];
    assert_eq!(got[0].1, Ok("a".to_owned()));
    for (i, reason) in [1, 2, 3].into_iter().zip(reasons) {
        assert_eq!(
            got[i],
            (i as u64, Err(reason.to_owned()), Some(i as u64 + 1))
        );
    }
    assert_eq!(got[4].1, Ok("b".to_owned()));
    // A quote that never closes takes in the rest of the file: one dead
    // letter, at the line where it opened.
    assert_eq!(got[5], (5, Err(reasons[3].to_owned()), Some(6)));
    assert_eq!(got.len(), 6);
}

#[test]
fn an_unclosed_quote_is_cut_at_the_maximum_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"a,1,1\n\"open,2,2\n".to_vec();
    for i in 0..50 {
        text.extend_from_slice(format!("k{i},{i},1\n").as_bytes());
    }
    write(dir.path(), "p.csv", &text);
    let mut config = FileSourceConfig::new(dir.path(), Format::Csv);
    config.decode.max_line_len = 64;
    config.decode.fields = FieldMapping {
        key: "0".into(),
        time: "1".into(),
        value: "2".into(),
        partition: None,
    };
    let items = read_all(&FileSource::new(config).unwrap(), 0, 0);
    assert_eq!(items.len(), 2);
    let dead = items[1].as_ref().unwrap_err();
    assert_eq!(dead.line, Some(2));
    assert!(
        dead.reason
            .starts_with("line exceeds the maximum length of 64 bytes inside a quoted field"),
        "{}",
        dead.reason
    );
}

/// A CSV field as written and the value the `csv` crate reads from it.
fn field() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[a-z0-9 ]{1,6}".prop_map(|s| (s.clone(), s)),
        "[a-z0-9 ,\n\r\"]{0,8}".prop_map(|s| (format!("\"{}\"", s.replace('"', "\"\"")), s)),
    ]
}

prop_compose! {
    /// A record: a key field, a time that is sometimes not a time, a value.
    fn record()(key in field(), ts in prop_oneof![
        (0i64..1_000_000).prop_map(|t| t.to_string()),
        Just("soon".to_owned()),
    ], value in 0i64..100, quote_ts in any::<bool>()) -> (String, String) {
        let ts_field = if quote_ts { format!("\"{ts}\"") } else { ts };
        (format!("{},{ts_field},{value}", key.0), key.1)
    }
}

proptest! {
    // Each case reads its file from every offset: fewer cases than usual.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn files_split_like_the_csv_crate(
        records in proptest::collection::vec(record(), 1..40),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = records.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>().join(eol);
        if final_newline {
            text.push_str(eol);
        }
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "p.csv", text.as_bytes());
        // What the csv crate reads: each record's key and whether its time
        // is valid; the line each record starts on, from the text (the csv
        // crate's own line numbers lag behind after a CRLF).
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let mut want = Vec::new();
        let mut line = 1;
        for (row, (record, _)) in reader.records().zip(&records) {
            let row = row.unwrap();
            let key = row.get(0).unwrap().to_owned();
            want.push((key, line, row.get(1).unwrap().parse::<i64>().is_ok()));
            line += record.matches('\n').count() as u64 + 1;
        }
        prop_assert_eq!(want.len(), records.len());
        let source = csv_source(dir.path(), false);
        let full = summary(&source, 0);
        prop_assert_eq!(full.len(), want.len());
        for (i, ((offset, got, line), (key, key_line, valid))) in full.iter().zip(&want).enumerate() {
            prop_assert_eq!(*offset, i as u64);
            prop_assert_eq!(&records[i].1, key);
            if *valid {
                prop_assert_eq!(got, &Ok(key.clone()));
            } else {
                prop_assert!(got.is_err());
                prop_assert_eq!(*line, Some(*key_line));
            }
        }
        for from in 0..=full.len() as u64 {
            prop_assert_eq!(summary(&source, from), full[from as usize..].to_vec());
        }
    }
}

#[test]
fn seeking_across_buffers_of_quoted_records() {
    // Enough records to span several read buffers, a quoted line break in
    // every seventh, so that seeking mixes the plain count and the scan.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let mut lines = Vec::new();
    let mut line = 1;
    for i in 0..30_000u64 {
        lines.push(line);
        if i % 7 == 0 {
            text.push_str(&format!("\"k{i}\nx\",{i},1\n"));
            line += 2;
        } else if i % 1000 == 999 {
            text.push_str(&format!("k{i},late,1\n"));
            line += 1;
        } else {
            text.push_str(&format!("k{i},{i},1\n"));
            line += 1;
        }
    }
    write(dir.path(), "p.csv", text.as_bytes());
    let source = csv_source(dir.path(), false);
    assert_eq!(source.partitions().unwrap(), [0]);
    let full = summary(&source, 0);
    assert_eq!(full.len(), 30_000);
    for (i, (_, got, line)) in full.iter().enumerate() {
        match got {
            Ok(key) => assert!(key.starts_with(&format!("k{i}"))),
            Err(_) => assert_eq!(*line, Some(lines[i])),
        }
    }
    for from in [1, 6, 7, 8, 4095, 4096, 12_345, 29_999, 30_000] {
        assert_eq!(summary(&source, from), full[from as usize..], "from {from}");
    }
}
