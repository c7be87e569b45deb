//! Configuration mistakes are refused loudly, before anything is written:
//! outputs that would destroy the input or each other, sizes beyond
//! reason, job-file errors with their key and line. Also: job-file paths
//! are relative to the job file, and a closed standard output ends a run
//! quietly.
//!
//! Run with `cargo test --test cli_config`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const LOG: &str =
    "{\"key\":\"a\",\"ts\":1000,\"value\":1}\n{\"key\":\"a\",\"ts\":1500,\"value\":2}\n";

/// Runs `tidemark run` in `dir` (with `--window tumbling:1s` unless `args`
/// name a window) and expects exit 2 with `message`.
fn refused(dir: &Path, args: &[&str], message: &str) {
    let mut cmd = bin();
    cmd.current_dir(dir).args(["run", "--quiet"]);
    if !args.contains(&"--window") {
        cmd.args(["--window", "tumbling:1s"]);
    }
    let out = cmd.args(args).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(message),
        "{args:?}: expected {message:?} in:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn outputs_that_would_destroy_the_input_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("in.jsonl"), LOG).unwrap();
    fs::create_dir_all(dir.join("logs")).unwrap();
    fs::write(dir.join("logs/part-0.jsonl"), LOG).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("in.jsonl", dir.join("alias.jsonl")).unwrap();
    fs::create_dir_all(dir.join("sub")).unwrap();

    for flag in ["--output", "--late", "--dead-letter"] {
        refused(
            dir,
            &["--input", "in.jsonl", flag, "in.jsonl"],
            &format!("{flag} \"in.jsonl\" is the input file"),
        );
    }
    // The same file by another name.
    refused(
        dir,
        &["--input", "in.jsonl", "--output", "sub/../in.jsonl"],
        "is the input file",
    );
    #[cfg(unix)]
    refused(
        dir,
        &["--input", "in.jsonl", "--output", "alias.jsonl"],
        "--output \"alias.jsonl\" is the input file",
    );
    // Inside an input directory, existing or not.
    refused(
        dir,
        &["--input", "logs", "--output", "logs/results.jsonl"],
        "--output \"logs/results.jsonl\" lies inside the input directory \"logs\"",
    );
    refused(
        dir,
        &["--input", "logs", "--late", "logs/new/late.jsonl"],
        "--late \"logs/new/late.jsonl\" lies inside the input directory \"logs\"",
    );
    // Nothing was touched.
    assert_eq!(fs::read_to_string(dir.join("in.jsonl")).unwrap(), LOG);
    assert_eq!(fs::read_dir(dir.join("logs")).unwrap().count(), 1);
}

#[test]
fn outputs_sharing_a_file_or_standard_output_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("in.jsonl"), LOG).unwrap();
    fs::create_dir_all(dir.join("out")).unwrap();
    refused(
        dir,
        &[
            "--input",
            "in.jsonl",
            "--output",
            "out/r.jsonl",
            "--late",
            "./out/r.jsonl",
        ],
        "--output \"out/r.jsonl\" and --late \"./out/r.jsonl\" are the same file",
    );
    refused(
        dir,
        &["--input", "in.jsonl", "--output", "-", "--dead-letter", "-"],
        "--output and --dead-letter both write to standard output (-)",
    );
    refused(
        dir,
        &["--input", "in.jsonl", "--late", "-"],
        "--output (by default) and --late both write to standard output (-)",
    );
    // One output on standard output, the others in files, is fine.
    let out = bin()
        .current_dir(dir)
        .args([
            "run",
            "--quiet",
            "--window",
            "tumbling:1s",
            "--input",
            "in.jsonl",
        ])
        .args([
            "--late",
            "out/late.jsonl",
            "--dead-letter",
            "out/dead.jsonl",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"count\":2"));
}

#[test]
fn worker_and_batch_counts_beyond_reason_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let gen = ["--input", "gen:events=100"];
    refused(
        dir,
        &[&gen[..], &["--workers", "4096"]].concat(),
        "invalid --workers 4096: at most 1024 worker threads per process",
    );
    refused(
        dir,
        &[&gen[..], &["--batch-size", "1000001"]].concat(),
        "invalid --batch-size 1000001: at most 1000000 records per batch",
    );
    fs::write(dir.join("job.toml"), "workers = 5000\n").unwrap();
    refused(
        dir,
        &[&gen[..], &["--job", "job.toml"]].concat(),
        "invalid --workers 5000",
    );
    // The limits themselves are fine.
    let out = bin()
        .current_dir(dir)
        .args(["run", "--quiet", "--window", "tumbling:1s"])
        .args(gen)
        .args(["--batch-size", "1000000", "--workers", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn job_file_errors_name_the_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (text, line, key, reason) in [
        (
            "input = \"gen:events=10\"\nworkers = \"2\"\n",
            "line 2, column 11",
            "workers = \"2\"",
            "invalid type: string \"2\", expected usize",
        ),
        (
            "window = \"tumbling:1s\"\nwindow = \"tumbling:2s\"\n",
            "line 2, column 1",
            "window = \"tumbling:2s\"",
            "duplicate key",
        ),
        (
            "input = \"gen:events=10\"\nwindw = \"tumbling:1s\"\n",
            "line 2, column 1",
            "windw = \"tumbling:1s\"",
            "unknown field `windw`",
        ),
        (
            "input = \"gen:events=10\"\n\ndelay = \"60\"\n",
            "line 3, column 9",
            "delay = \"60\"",
            "\"60\": a duration needs a unit, e.g. 60s or 60ms",
        ),
        (
            "input = \"gen:events=10\"\nemit = \"sometimes\"\n",
            "line 2, column 8",
            "emit = \"sometimes\"",
            "unknown variant `sometimes`, expected `final` or `updates`",
        ),
    ] {
        fs::write(dir.join("job.toml"), text).unwrap();
        let out = bin()
            .current_dir(dir)
            .args(["run", "--quiet", "--job", "job.toml"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        for part in ["job file \"job.toml\"", line, key, reason] {
            assert!(err.contains(part), "{text}: expected {part:?} in:\n{err}");
        }
    }
}

fn git_status(root: &Path) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["status", "--porcelain", "--untracked-files=all"])
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git status: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn job_file_paths_are_relative_to_the_job_file() {
    let tmp = tempfile::tempdir().unwrap();
    let jobs = tmp.path().join("jobs");
    fs::create_dir_all(jobs.join("data")).unwrap();
    fs::write(jobs.join("data/in.jsonl"), LOG).unwrap();
    fs::write(
        jobs.join("job.toml"),
        "input = \"data/in.jsonl\"\nwindow = \"tumbling:1s\"\noutput = \"out/results.jsonl\"\n",
    )
    .unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let out = bin()
        .current_dir(&elsewhere)
        .args(["run", "--quiet", "--job", "../jobs/job.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let results = fs::read_to_string(jobs.join("out/results.jsonl")).unwrap();
    assert!(results.contains("\"count\":2"), "{results}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

    // Flags stay relative to the current directory.
    let out = bin()
        .current_dir(&elsewhere)
        .args(["run", "--quiet", "--job", "../jobs/job.toml"])
        .args(["--output", "mine.jsonl"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fs::read_to_string(elsewhere.join("mine.jsonl"))
        .unwrap()
        .contains("\"count\":2"));
}

#[test]
fn the_readme_job_runs_from_anywhere_and_leaves_the_repository_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let before = git_status(root);
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(tmp.path())
        .args(["run", "--quiet", "--job"])
        .arg(root.join("examples/clicks.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"kind\":\"retract\""), "{text}");
    let late = fs::read_to_string(root.join("examples/out/clicks-late.jsonl")).unwrap();
    let dead = fs::read_to_string(root.join("examples/out/clicks-dead.jsonl")).unwrap();
    assert_eq!(late.lines().count(), 1, "{late}");
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    assert_eq!(git_status(root), before, "the job changed the repository");
}

#[test]
fn a_closed_standard_output_ends_the_run_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = bin()
        .args(["run", "--input", "gen:events=200000,keys=1000"])
        .args(["--window", "tumbling:1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -1`: read one row, then close the pipe.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("{\"key\":"), "{first}");
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

/// `tidemark gen` into `dir` with `args`.
fn gen(dir: &Path, args: &[&str]) -> Output {
    bin()
        .arg("gen")
        .arg("--out")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

fn files_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn gen_flags_and_gen_inputs_share_one_grammar() {
    let tmp = tempfile::tempdir().unwrap();
    let knobs = [
        ("events", "3000"),
        ("keys", "20"),
        ("partitions", "3"),
        ("rate", "0.5"),
        ("disorder", "40ms"),
        ("disorder-shape", "exp"),
        ("late-frac", "0.1"),
        ("late-extra", "2s"),
        ("gap-every", "500"),
        ("gap", "3s"),
        ("seed", "7"),
    ];
    let flags: Vec<String> = knobs
        .iter()
        .flat_map(|(k, v)| [format!("--{k}"), (*v).to_owned()])
        .collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let data = tmp.path().join("data");
    let out = gen(&data, &flags);
    assert!(out.status.success(), "{}", stderr(&out));

    let input = format!(
        "gen:{}",
        knobs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let job = [
        "run",
        "--quiet",
        "--window",
        "sliding:2s/1s",
        "--delay",
        "50ms",
        "--lateness",
        "1s",
    ];
    let from_files = bin().args(job).arg("--input").arg(&data).output().unwrap();
    let generated = bin().args(job).args(["--input", &input]).output().unwrap();
    assert!(from_files.status.success(), "{}", stderr(&from_files));
    assert!(generated.status.success(), "{}", stderr(&generated));
    assert!(from_files.stdout.len() > 1000);
    assert!(
        from_files.stdout == generated.stdout,
        "gen files and {input} differ"
    );

    // The same mistakes, the same messages, both ways.
    for (knob, value, message) in [
        (
            "disorder",
            "50",
            "\"50\": a duration needs a unit, e.g. 50s or 50ms",
        ),
        ("late-extra", "-2s", "\"-2s\": durations cannot be negative"),
        ("events", "many", "invalid digit found in string"),
    ] {
        let out = gen(&tmp.path().join("bad"), &[&format!("--{knob}"), value]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("invalid --{knob}: {message}")),
            "{}",
            stderr(&out)
        );
        let out = bin()
            .args(["run", "--window", "tumbling:1s", "--input"])
            .arg(format!("gen:{knob}={value}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "invalid generator option {knob}=\"{value}\": {message}"
            )),
            "{}",
            stderr(&out)
        );
    }
    // Settings that parse but cannot be generated are usage errors too.
    let out = gen(&tmp.path().join("bad"), &["--partitions", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("partitions must be between 1 and"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn gen_refuses_a_non_empty_directory_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = gen(&data, &["--partitions", "4"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_of(&data).len(), 4);

    let out = gen(&data, &["--partitions", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not empty; give --force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(files_of(&data).len(), 4, "a refused run changed nothing");

    fs::create_dir_all(data.join("keep")).unwrap();
    let out = gen(&data, &["--partitions", "2", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        files_of(&data),
        ["keep", "part-00000.jsonl", "part-00001.jsonl"]
    );

    fs::write(tmp.path().join("file"), "x").unwrap();
    let out = gen(&tmp.path().join("file"), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a file, not a directory"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn csv_without_header_needs_column_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("in.csv"), "a,1000,1\na,1500,2\n").unwrap();
    refused(
        dir,
        &["--input", "in.csv"],
        "--key \"key\" names a field, but CSV without --header has only column numbers",
    );
    refused(
        dir,
        &[
            "--input", "in.csv", "--key", "0", "--time", "1", "--value", "amount",
        ],
        "--value \"amount\" names a field",
    );
    let out = bin()
        .current_dir(dir)
        .args([
            "run",
            "--quiet",
            "--window",
            "tumbling:1s",
            "--input",
            "in.csv",
        ])
        .args(["--key", "0", "--time", "1", "--value", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"count\":2,\"sum\":3"));
}

#[test]
fn the_readme_job_table_matches_run_help() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let out = bin().args(["run", "-h"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    for line in help.lines().map(str::trim_start) {
        let Some(rest) = line.strip_prefix("--") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '-')
            .collect();
        if ["job", "quiet", "help", "processes", "process", "hostfile"].contains(&name.as_str()) {
            assert!(
                readme.contains(&format!("--{name}")) || name == "help",
                "--{name}"
            );
            continue;
        }
        let row = readme
            .lines()
            .find(|l| {
                l.starts_with("| ")
                    && l.split('|')
                        .nth(1)
                        .is_some_and(|c| c.contains(&format!("`{name}`")))
            })
            .unwrap_or_else(|| panic!("no row for `{name}` in the README's job table"));
        if let Some((_, default)) = line.split_once("[default: ") {
            let first = default.split([',', ' ', ']']).next().unwrap();
            assert!(
                row.contains(first),
                "--{name}: default {first:?} not in {row:?}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 41, "every job option has a row");
}

#[test]
fn malformed_values_name_their_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let gen = ["--input", "gen:events=10"];
    for (flags, message) in [
        (&["--delay", "60"][..], "invalid --delay: \"60\": a duration needs a unit, e.g. 60s or 60ms"),
        (&["--lateness", "-1s"], "invalid --lateness: \"-1s\": durations cannot be negative"),
        (&["--delay", "-1"], "invalid --delay: \"-1\": durations cannot be negative"),
        (&["--idle-after", "soon"], "invalid --idle-after: invalid duration \"soon\""),
        (&["--window", "tumbling:60"], "invalid --window: \"60\": a duration needs a unit"),
        (&["--window", "tumbling:500us"], "durations are whole milliseconds"),
        (&["--emit", "update"], "invalid --emit: unknown value \"update\" (possible values: final, updates); did you mean \"updates\"?"),
        (&["--on-bad-record", "drop"], "invalid --on-bad-record: unknown value \"drop\" (possible values: skip, fail)"),
        (&["--workers", "-2"], "invalid --workers: \"-2\" is not a whole number"),
        (&["--batch-size", "lots"], "invalid --batch-size: \"lots\" is not a whole number"),
        (&["--follow=maybe"], "invalid --follow: unknown value \"maybe\""),
        (&["--output", ""], "invalid --output: an empty output path"),
        (&["--max-bad-ratio", "2"], "invalid --max-bad-ratio: \"2\": a ratio lies between 0 and 1 (or 0% and 100%)"),
        (&["--max-bad-ratio", "some"], "invalid --max-bad-ratio: \"some\" is not a ratio"),
        (&["--max-future-skew", "60"], "invalid --max-future-skew: \"60\": a duration needs a unit"),
        (&["--connect-timeout", "soon"], "invalid --connect-timeout: invalid duration \"soon\""),
        (&["--partition-count", "two"], "invalid --partition-count: \"two\" is not a whole number"),
        (&["--max-partitions", "-1"], "invalid --max-partitions: \"-1\" is not a whole number"),
    ] {
        refused(dir, &[&gen[..], flags].concat(), message);
    }
    refused(dir, &["--window", "tumbling:1s"], "missing --input");
    refused(
        dir,
        &["--window", "tumbling:1s", "--input", ""],
        "invalid --input: an empty input path (give a partition directory, a file, - for standard input, or gen:KNOBS)",
    );
    refused(
        dir,
        &["--input", "gen:events=10", "--follow"],
        "--follow reads growing files; it does not apply to a gen: input",
    );
}
