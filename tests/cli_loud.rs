//! The loud defaults of `tidemark run`, through the binary: dead letters
//! without a file are shown on standard error and counted in the summary.
//!
//! Run with `cargo test --test cli_loud`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

struct Run {
    out: Output,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn describe(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
    /// Asserts the exit code and that standard error holds every needle.
    fn expect(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code(), Some(code), "{}", self.describe());
        for needle in needles {
            assert!(
                self.stderr().contains(needle),
                "missing {needle:?} in\n{}",
                self.describe()
            );
        }
        assert!(!self.stderr().contains("panicked"), "{}", self.describe());
    }
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    Run {
        out: bin()
            .current_dir(dir)
            .arg("run")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tidemark starts"),
    }
}

fn json_line(key: &str, ts: i64, value: i64) -> String {
    format!("{{\"key\":\"{key}\",\"ts\":{ts},\"value\":{value}}}\n")
}

/// 20 good lines, with a bad line after every third from offset 2 on:
/// bad lines at offsets 2, 6, 10, ... (7 of them).
fn mixed() -> (String, Vec<u64>) {
    let (mut text, mut bad) = (String::new(), Vec::new());
    let mut offset = 0u64;
    for i in 0..20 {
        text.push_str(&json_line("a", 100 * i, 1));
        offset += 1;
        if i % 3 == 1 {
            text.push_str(&format!("broken line {offset}\n"));
            bad.push(offset);
            offset += 1;
        }
    }
    (text, bad)
}

#[test]
fn dead_letters_without_a_file_are_shown_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let (text, bad) = mixed();
    assert_eq!(bad.len(), 7);
    fs::write(tmp.path().join("in.jsonl"), text).unwrap();
    let base = ["--input", "in.jsonl", "--window", "tumbling:1s"];

    let shown = run_in(tmp.path(), &base);
    let mut needles: Vec<String> = bad[..5]
        .iter()
        .map(|o| {
            format!(
                "tidemark: bad line at partition 0, offset {o}: invalid json: expected value at line 1 column 1\n    broken line {o}\n"
            )
        })
        .collect();
    needles
        .push("tidemark: more bad lines are not shown; --dead-letter FILE keeps them all".into());
    needles.push(
        "  dead letters: 7 lines could not be decoded (the first 5 shown above); --dead-letter FILE keeps them"
            .into(),
    );
    shown.expect(0, &needles.iter().map(String::as_str).collect::<Vec<_>>());
    let err = shown.stderr();
    for o in &bad[5..] {
        assert!(!err.contains(&format!("offset {o}:")), "{err}");
    }
    // Shown in offset order, before the summary.
    let at = |n: &str| err.find(n).unwrap();
    assert!(at(&needles[0]) < at(&needles[4]) && at(&needles[4]) < at("tidemark: 20 records"));

    // With --quiet the bad lines are still shown; the summary is not.
    let quiet = run_in(tmp.path(), &[&base[..], &["--quiet"]].concat());
    quiet.expect(0, &[&needles[0], &needles[5]]);
    assert!(
        !quiet.stderr().contains("dead letters:"),
        "{}",
        quiet.describe()
    );

    // With a file they go there, not to standard error.
    let filed = run_in(
        tmp.path(),
        &[&base[..], &["--dead-letter", "dead.jsonl"]].concat(),
    );
    filed.expect(
        0,
        &["  dead letters: 7 lines could not be decoded, written to dead.jsonl"],
    );
    assert!(
        !filed.stderr().contains("bad line at"),
        "{}",
        filed.describe()
    );
    let dead = fs::read_to_string(tmp.path().join("dead.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 7, "{dead}");
    assert_eq!(filed.stdout(), shown.stdout(), "the results do not change");
    assert_eq!(shown.stdout().lines().count(), 2, "{}", shown.describe());
}
