//! Inputs that can be read only once: standard input (`-`, and
//! `/dev/stdin` when it is a pipe) and named pipes, with and without a
//! partition field. They are copied to a temporary file as they arrive, so
//! every partition reader sees all of them, and a reader returns what has
//! arrived, then `CaughtUp`, then `End` once the writer is done.
//!
//! The standard-input tests run this test binary again as a child whose
//! standard input is a pipe (`TIDEMARK_STDIN_CHILD` selects what it reads).
//!
//! Run: `cargo test -p tidemark-sources --test stdin`

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{drain, read_all};
use tidemark_sources::{
    Decoded, FileSource, FileSourceConfig, Format, PartitionReader, ReadStatus, Source, SourceError,
};

fn line(partition: u32, i: u64) -> String {
    format!("{{\"partition\":{partition},\"key\":\"k{i}\",\"ts\":{i},\"value\":{i}}}\n")
}

/// One line per item: `partition offset key` or `partition offset dead reason`.
fn describe(items: &[Decoded]) -> String {
    items
        .iter()
        .map(|d| match d {
            Ok(r) => format!("{} {} {}\n", r.partition, r.offset, r.key),
            Err(d) => format!(
                "{} {} dead {} {}:{}\n",
                d.partition,
                d.offset,
                d.reason,
                d.file.as_deref().unwrap_or("?"),
                d.line.unwrap_or(0)
            ),
        })
        .collect()
}

/// In the child: reads the configured input and prints every partition.
fn child(mode: &str) {
    let mut config = FileSourceConfig::new(
        if mode == "dev-stdin" {
            "/dev/stdin"
        } else {
            "-"
        },
        Format::Jsonl,
    );
    if mode != "plain" {
        config.decode.fields.partition = Some("partition".into());
    }
    if mode == "counted" {
        config.partition_count = Some(3);
    }
    let source = FileSource::new(config).unwrap();
    let mut out = String::new();
    for p in source.partitions().unwrap() {
        out.push_str(&describe(&read_to_end(source.open(p, 0).unwrap().as_mut())));
    }
    print!("{out}");
}

/// Reads until the end, as an engine worker would: a live input is
/// caught up until its writer is done.
fn read_to_end(reader: &mut dyn PartitionReader) -> Vec<Decoded> {
    let mut out = Vec::new();
    loop {
        let (items, status) = drain(reader, 64);
        out.extend(items);
        if status == ReadStatus::End {
            return out;
        }
        std::thread::yield_now();
    }
}

/// Runs the child in `mode` with `input` on its standard input.
fn run_child(mode: &str, input: &str) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stdin_child", "--nocapture", "--quiet"])
        .env("TIDEMARK_STDIN_CHILD", mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "child failed: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    // The test harness prints its own lines around the child's output.
    text.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Not a test of its own: the body of the child process.
#[test]
fn stdin_child() {
    if let Ok(mode) = std::env::var("TIDEMARK_STDIN_CHILD") {
        child(&mode);
    }
}

fn input() -> String {
    let mut text = String::new();
    for i in 0..5000u64 {
        text.push_str(&line((i % 3) as u32, i));
        if i == 2500 {
            text.push_str("{\"partition\":1,\"key\":\"x\",\"ts\":\"never\",\"value\":1}\n");
        }
    }
    text
}

/// What the same lines give when read from a regular file.
fn from_file(text: &str, partition_field: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, text).unwrap();
    let mut config = FileSourceConfig::new(&path, Format::Jsonl);
    if partition_field {
        config.decode.fields.partition = Some("partition".into());
    }
    let source = FileSource::new(config).unwrap();
    let mut out = String::new();
    for p in source.partitions().unwrap() {
        out.push_str(&describe(&read_all(&source, p, 0)));
    }
    out.replace(&path.display().to_string(), "<stdin>")
}

#[test]
fn stdin_without_a_partition_field() {
    let text = input();
    assert_eq!(run_child("plain", &text), from_file(&text, false));
}

#[test]
fn stdin_with_a_partition_field() {
    let text = input();
    let want = from_file(&text, true);
    assert!(want.contains("1 834 dead invalid time \"never\""), "{want}");
    assert_eq!(run_child("partitioned", &text), want);
    assert_eq!(run_child("counted", &text), want);
    // `/dev/stdin` is a pipe here: read once into the copy too.
    let want_dev = want.replace("<stdin>", "/dev/stdin");
    assert_eq!(run_child("dev-stdin", &text), want_dev);
}

/// A named pipe in a temporary directory.
fn fifo(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("pipe.jsonl");
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    path
}

#[test]
fn a_named_pipe_is_read_as_it_arrives_and_ends_with_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = fifo(dir.path());
    let mut config = FileSourceConfig::new(&path, Format::Jsonl);
    config.decode.fields.partition = Some("partition".into());
    config.partition_count = Some(2);
    let source = FileSource::new(config).unwrap();
    let mut p0 = source.open(0, 0).unwrap();
    let mut p1 = source.open(1, 0).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let writer = std::thread::spawn({
        let path = path.clone();
        move || {
            let mut pipe = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            for chunk in rx {
                pipe.write_all(chunk.as_bytes()).unwrap();
                pipe.flush().unwrap();
            }
        }
    });
    tx.send(line(0, 0) + &line(1, 1)).unwrap();
    // Wait until both arrived: the readers are caught up, not at the end.
    let mut got = (Vec::new(), Vec::new());
    while got.0.len() + got.1.len() < 2 {
        assert_eq!(p0.read(10, &mut got.0).unwrap(), ReadStatus::CaughtUp);
        assert_eq!(p1.read(10, &mut got.1).unwrap(), ReadStatus::CaughtUp);
        std::thread::yield_now();
    }
    tx.send(line(1, 2)).unwrap();
    drop(tx);
    writer.join().unwrap();
    // The writer is gone: each reader ends once the copy has all of it.
    got.0.extend(read_to_end(p0.as_mut()));
    got.1.extend(read_to_end(p1.as_mut()));
    assert_eq!(describe(&got.0), "0 0 k0\n");
    assert_eq!(describe(&got.1), "1 0 k1\n1 1 k2\n");
    // Opening again reads the copy, not the pipe.
    assert_eq!(describe(&read_all(&source, 1, 1)), "1 1 k2\n");
    assert!(matches!(
        source.open(1, 3).err(),
        Some(SourceError::OffsetOutOfRange { end: 2, .. })
    ));
}
