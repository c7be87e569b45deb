//! `tidemark digest` and the results digest in a run's summary: the same
//! job on 1 and 3 workers prints the same digest, `tidemark digest FILE`
//! prints it too, and it is the SHA-256 of the file's bytes.
//!
//! Run with `cargo test --test cli_digest`.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn digest_line(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("results digest: sha256 "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in the summary: {stderr}"))
        .to_owned()
}

#[test]
fn the_summary_digest_is_the_same_for_any_worker_count_and_matches_tidemark_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for workers in ["1", "3"] {
        let out = tmp.path().join(format!("out-{workers}.jsonl"));
        let run = bin()
            .args([
                "run",
                "--input",
                "gen:events=20000,keys=50,partitions=3,disorder=50ms",
                "--window",
                "tumbling:1s",
                "--workers",
                workers,
                "--output",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(run.status.success());
        digests.push(digest_line(&String::from_utf8_lossy(&run.stderr)));
        let listed = bin().arg("digest").arg(&out).output().unwrap();
        assert!(listed.status.success());
        let text = String::from_utf8(listed.stdout).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>(),
            vec![
                digests.last().unwrap().as_str(),
                &bytes.len().to_string(),
                &out.display().to_string()
            ]
        );
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0].len(), 64);
    // A missing file is a clear error.
    let missing = bin()
        .args(["digest", "no-such-file.jsonl"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-file.jsonl"));
}
