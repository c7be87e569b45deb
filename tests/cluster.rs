//! `tidemark run` in cluster mode with real processes on loopback, each
//! test bounded in time (children are killed if a test fails):
//!
//! - processes started with different windows both refuse (exit 2) with
//!   the same message naming the setting and both values;
//! - killing one of two processes while records flow makes the other exit
//!   1 with a clean message naming the lost process (no panic), and what
//!   process 0 wrote is a prefix of a one-process run's output; only
//!   process 0 says what its outputs hold;
//! - a process whose peer never starts gives up after `--connect-timeout`
//!   (flag, job-file key, flag over key), exit 1, naming the peer, with a
//!   hint and without claiming to have written anything;
//! - two processes that complete each summarize what they read, and
//!   process 0 the cluster's totals, which are a one-process run's counts.
//!
//! Run with `cargo test --test cluster`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A hostfile for `n` processes on loopback.
fn hostfile(dir: &Path, n: usize) -> (PathBuf, Vec<String>) {
    let hosts: Vec<String> = (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let path = dir.join("hosts");
    fs::write(&path, hosts.join("\n") + "\n").unwrap();
    (path, hosts)
}

/// Child processes that are killed when the test ends, however it ends.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Children {
    fn spawn(&mut self, cmd: &mut Command) -> usize {
        self.0
            .push(cmd.stderr(Stdio::piped()).spawn().expect("tidemark starts"));
        self.0.len() - 1
    }

    /// Waits for child `i` at most `limit`.
    fn wait(&mut self, i: usize, limit: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + limit;
        let child = &mut self.0[i];
        // Read stderr on a thread so a chatty child cannot block on a full pipe.
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut s);
            s
        });
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, reader.join().unwrap());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("process {i} did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn run_cmd(window: &str, out: &Path) -> Command {
    let mut cmd = bin();
    cmd.args(["run", "--window", window, "--delay", "50ms"])
        .args(["--agg", "count,sum,max"])
        .arg("--output")
        .arg(out.join("results.jsonl"))
        .arg("--late")
        .arg(out.join("late.jsonl"));
    cmd
}

fn cluster_args(cmd: &mut Command, process: usize, hostfile: &Path, workers: &str) {
    cmd.args(["--workers", workers, "--processes", "2", "--process"])
        .arg(process.to_string())
        .arg("--hostfile")
        .arg(hostfile);
}

fn generate(dir: &Path, events: &str) -> PathBuf {
    let data = dir.join("log");
    let status = bin()
        .args([
            "gen",
            "--events",
            events,
            "--keys",
            "30",
            "--partitions",
            "4",
        ])
        .args(["--rate", "2", "--disorder", "30ms", "--seed", "5", "--out"])
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    data
}

fn assert_clean(stderr: &str) {
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "MergeQueue",
        "timely communication error",
    ] {
        assert!(!stderr.contains(bad), "stderr shows a panic:\n{stderr}");
    }
}

#[test]
fn processes_with_different_windows_both_refuse_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "2000");
    let (hosts, addrs) = hostfile(tmp.path(), 2);
    let mut children = Children::default();
    let mut spawn = |process: usize, window: &str| {
        let out = tmp.path().join(format!("out{process}"));
        fs::create_dir_all(&out).unwrap();
        let mut cmd = run_cmd(window, &out);
        cluster_args(&mut cmd, process, &hosts, "1");
        cmd.arg("--input").arg(&data);
        children.spawn(&mut cmd)
    };
    let p1 = spawn(1, "tumbling:2s");
    let p0 = spawn(0, "tumbling:1s");
    let (s0, e0) = children.wait(p0, Duration::from_secs(60));
    let (s1, e1) = children.wait(p1, Duration::from_secs(60));
    assert_eq!(s0.code(), Some(2), "{e0}");
    assert_eq!(s1.code(), Some(2), "{e1}");
    let expected = format!(
        "window is \"tumbling 1000ms\" on process 0 ({}) but \"tumbling 2000ms\" on process 1 ({})",
        addrs[0], addrs[1]
    );
    for e in [&e0, &e1] {
        assert!(e.contains(&expected), "{e}");
        assert_clean(e);
        // No connection retry chatter.
        assert!(!e.contains("retrying"), "{e}");
        // Nothing was opened, and the run says so.
        assert!(!e.contains("the job failed"), "{e}");
        assert!(
            e.contains("tidemark: the job did not start; no output was opened"),
            "{e}"
        );
    }
    // Refused before anything was opened.
    assert!(!tmp.path().join("out0/results.jsonl").exists());
}

#[test]
fn processes_with_different_checkpoint_settings_both_refuse_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = generate(tmp.path(), "2000");
    let ckpt = tmp.path().join("ckpt");
    let ck = ckpt.to_str().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a str);
    let cases: [Case<'_>; 2] = [
        (
            &["--checkpoint-dir", ck],
            &[],
            "checkpoints is \"every 10000ms (keep 3)\" on process 0",
        ),
        (
            &["--checkpoint-dir", ck, "--checkpoint-every", "5s"],
            &["--checkpoint-dir", ck, "--checkpoint-every", "3000records"],
            "checkpoints is \"every 5000ms (keep 3)\" on process 0",
        ),
    ];
    for (zero, one, said) in cases {
        let (hosts, _) = hostfile(tmp.path(), 2);
        let mut children = Children::default();
        let mut spawn = |process: usize, extra: &[&str]| {
            let out = tmp.path().join(format!("out{process}"));
            fs::create_dir_all(&out).unwrap();
            let mut cmd = run_cmd("tumbling:1s", &out);
            cluster_args(&mut cmd, process, &hosts, "1");
            cmd.arg("--input").arg(&data).args(extra);
            children.spawn(&mut cmd)
        };
        let p1 = spawn(1, one);
        let p0 = spawn(0, zero);
        let (s0, e0) = children.wait(p0, Duration::from_secs(60));
        let (s1, e1) = children.wait(p1, Duration::from_secs(60));
        for (s, e) in [(s0, &e0), (s1, &e1)] {
            assert_eq!(s.code(), Some(2), "{e}");
            assert!(e.contains(said), "{said}: {e}");
            assert_clean(e);
        }
    }
}

/// Appends the second part of every partition file of `full` to `live`
/// a few lines at a time, while `keep_going` says so.
struct Feeder {
    rest: Vec<(PathBuf, Vec<String>)>,
    next: usize,
}

impl Feeder {
    /// Copies the first `head` lines of each partition of `full` into
    /// `live`; the rest is fed later.
    fn start(full: &Path, live: &Path, head: usize) -> Feeder {
        fs::create_dir_all(live).unwrap();
        let mut files: Vec<PathBuf> = fs::read_dir(full)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let rest = files
            .iter()
            .map(|f| {
                let text = fs::read_to_string(f).unwrap();
                let lines: Vec<String> = text.lines().map(|l| format!("{l}\n")).collect();
                let to = live.join(f.file_name().unwrap());
                fs::write(&to, lines[..head].concat()).unwrap();
                (to, lines[head..].to_vec())
            })
            .collect();
        Feeder { rest, next: 0 }
    }

    /// Appends the next `n` lines to each partition; false when done.
    fn feed(&mut self, n: usize) -> bool {
        let mut more = false;
        for (path, lines) in &self.rest {
            let to = (self.next + n).min(lines.len());
            if self.next < to {
                let mut f = OpenOptions::new().append(true).open(path).unwrap();
                f.write_all(lines[self.next..to].concat().as_bytes())
                    .unwrap();
                more |= to < lines.len();
            }
        }
        self.next += n;
        more
    }
}

/// Two processes follow a log that grows; once process 0 has written
/// results, process `victim` is killed. The other must exit 1 naming it.
fn kill_one_mid_run(victim: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let full = generate(tmp.path(), "40000");
    // What one process writes for the whole log.
    let single = tmp.path().join("single");
    fs::create_dir_all(&single).unwrap();
    let status = run_cmd("tumbling:1s", &single)
        .args(["--quiet", "--input"])
        .arg(&full)
        .status()
        .unwrap();
    assert!(status.success());
    let one = fs::read_to_string(single.join("results.jsonl")).unwrap();

    let live = tmp.path().join("live");
    let mut feeder = Feeder::start(&full, &live, 200);
    let (hosts, addrs) = hostfile(tmp.path(), 2);
    let mut children = Children::default();
    let mut pids = Vec::new();
    for process in [1, 0] {
        let out = tmp.path().join(format!("out{process}"));
        fs::create_dir_all(&out).unwrap();
        let mut cmd = run_cmd("tumbling:1s", &out);
        cluster_args(&mut cmd, process, &hosts, "2");
        cmd.arg("--follow").arg("--input").arg(&live);
        pids.push((process, children.spawn(&mut cmd)));
    }
    let index = |p: usize| pids.iter().find(|(q, _)| *q == p).unwrap().1;
    let results = tmp.path().join("out0/results.jsonl");
    // Feed until process 0 has committed some results, then a bit more,
    // and kill the victim while records still flow.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut fed_after = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "no results from the cluster in time"
        );
        assert!(
            feeder.feed(50),
            "the log ran out before the cluster wrote results"
        );
        std::thread::sleep(Duration::from_millis(30));
        let written = fs::metadata(&results).map(|m| m.len()).unwrap_or(0);
        if written > 0 {
            fed_after += 1;
            if fed_after == 5 {
                break;
            }
        }
    }
    let victim_child = index(victim);
    children.0[victim_child].kill().unwrap();
    let _ = children.0[victim_child].wait();
    // Records keep arriving at the survivor's partitions for a while.
    for _ in 0..5 {
        feeder.feed(50);
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivor = 1 - victim;
    let (status, stderr) = children.wait(index(survivor), Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "lost cluster process {victim} ({})",
            addrs[victim]
        )),
        "{stderr}"
    );
    assert_clean(&stderr);
    // Process 0 says how far its outputs are complete; process 1 writes
    // none and says nothing about them.
    let note = "the job failed; its outputs hold every result the watermark completed";
    assert_eq!(stderr.contains(note), survivor == 0, "{stderr}");
    assert!(!stderr.contains("did not start"), "{stderr}");
    let mut written = fs::read_to_string(&results).unwrap();
    if victim == 0 {
        // Killed mid-write: its last line may be cut.
        written.truncate(written.rfind('\n').map_or(0, |i| i + 1));
    } else {
        assert!(written.ends_with('\n'), "the survivor writes whole lines");
    }
    assert!(!written.is_empty());
    assert!(
        one.starts_with(&written),
        "process 0's results are not a prefix of the one-process results"
    );
    assert!(
        written.len() < one.len(),
        "the killed run cannot have everything"
    );
}

#[test]
fn killing_process_1_mid_run_ends_process_0_cleanly_with_a_prefix() {
    kill_one_mid_run(1);
}

#[test]
fn killing_process_0_mid_run_ends_process_1_cleanly() {
    kill_one_mid_run(0);
}

/// Starts process `process` of the two in `hosts` alone (its peer never
/// starts), with `extra` flags and `job` as its job file, and returns its
/// exit status, standard error and how long it ran.
fn alone(
    dir: &Path,
    hosts: &Path,
    process: usize,
    extra: &[&str],
    job: Option<&str>,
) -> (ExitStatus, String, Duration) {
    let out = dir.join(format!("alone{process}"));
    fs::create_dir_all(&out).unwrap();
    let mut cmd = run_cmd("tumbling:1s", &out);
    cluster_args(&mut cmd, process, hosts, "1");
    cmd.args(["--input", "gen:events=100"]).args(extra);
    if let Some(text) = job {
        let path = out.join("job.toml");
        fs::write(&path, text).unwrap();
        cmd.arg("--job").arg(path);
    }
    let mut children = Children::default();
    let started = Instant::now();
    let i = children.spawn(&mut cmd);
    // Far less than the default timeout of 60 s: the option must act.
    let (status, stderr) = children.wait(i, Duration::from_secs(20));
    assert!(
        !out.join("results.jsonl").exists(),
        "an output was opened:\n{stderr}"
    );
    (status, stderr, started.elapsed())
}

#[test]
fn connect_timeout_names_the_peer_that_never_came() {
    let tmp = tempfile::tempdir().unwrap();
    let (hosts, addrs) = hostfile(tmp.path(), 2);
    // Process 0 waits for process 1 to connect; process 1 connects to 0.
    let cases: [(usize, &[&str], Option<&str>, String); 3] = [
        (
            0,
            &["--connect-timeout", "1s"],
            None,
            format!("process 1 ({}): did not connect", addrs[1]),
        ),
        (
            1,
            &[],
            Some("connect-timeout = \"1s\""),
            format!("process 0 ({}): ", addrs[0]),
        ),
        (
            0,
            &["--connect-timeout", "1s"],
            Some("connect-timeout = \"1h\""),
            format!("process 1 ({}): did not connect", addrs[1]),
        ),
    ];
    for (process, extra, job, peer) in cases {
        let (status, stderr, took) = alone(tmp.path(), &hosts, process, extra, job);
        let what = format!("process {process}, {extra:?}, job {job:?}");
        assert_eq!(status.code(), Some(1), "{what}: {stderr}");
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(15),
            "{what}: ran {took:?}"
        );
        assert!(
            stderr.contains(&format!(
                "error: cluster processes not connected within 1s: {peer}"
            )),
            "{what}: {stderr}"
        );
        assert!(
            stderr
                .contains("hint: start every process of the hostfile, or raise --connect-timeout"),
            "{what}: {stderr}"
        );
        assert!(
            stderr.contains("tidemark: the job did not start; no output was opened"),
            "{what}: {stderr}"
        );
        assert!(!stderr.contains("the job failed"), "{what}: {stderr}");
        assert_clean(&stderr);
    }
}

/// `N` and `P` of "PREFIX N records from P partition(s)" in `text`.
fn read_counts(text: &str, prefix: &str) -> Option<(u64, u64)> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let (records, rest) = rest.split_once(" records from ")?;
    let (partitions, _) = rest.split_once(" partition(s)")?;
    Some((records.parse().ok()?, partitions.parse().ok()?))
}

/// The number after "LABEL " in `text`.
fn count_after(text: &str, label: &str) -> Option<u64> {
    let rest = &text[text.find(label)? + label.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn each_process_summarizes_itself_and_process_0_the_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    // With stragglers later than the delay, so that some are dropped.
    let data = tmp.path().join("log");
    let status = bin()
        .args([
            "gen",
            "--events",
            "3000",
            "--keys",
            "30",
            "--partitions",
            "4",
        ])
        .args(["--rate", "2", "--late-frac", "0.05"])
        .args(["--late-extra", "2s", "--seed", "7", "--out"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let single = tmp.path().join("single");
    fs::create_dir_all(&single).unwrap();
    let one = run_cmd("tumbling:1s", &single)
        .arg("--input")
        .arg(&data)
        .output()
        .unwrap();
    assert!(one.status.success());
    let one_err = String::from_utf8_lossy(&one.stderr).into_owned();
    let one_rows = fs::read_to_string(single.join("results.jsonl")).unwrap();
    let (records, partitions) = read_counts(&one_err, "tidemark: ").unwrap();
    assert_eq!((records, partitions), (3000, 4), "{one_err}");
    let emitted = count_after(&one_err, "windows emitted ").unwrap();
    let late = count_after(&one_err, "late dropped ").unwrap();
    assert_eq!(emitted, one_rows.lines().count() as u64);
    assert!(late > 0, "{one_err}");

    let (hosts, _) = hostfile(tmp.path(), 2);
    let mut children = Children::default();
    let mut index = [0; 2];
    for process in [1, 0] {
        let out = tmp.path().join(format!("out{process}"));
        fs::create_dir_all(&out).unwrap();
        let mut cmd = run_cmd("tumbling:1s", &out);
        cluster_args(&mut cmd, process, &hosts, "2");
        cmd.arg("--input").arg(&data);
        index[process] = children.spawn(&mut cmd);
    }
    let (s0, e0) = children.wait(index[0], Duration::from_secs(60));
    let (s1, e1) = children.wait(index[1], Duration::from_secs(60));
    assert!(s0.success(), "{e0}");
    assert!(s1.success(), "{e1}");
    assert_clean(&e0);
    assert_clean(&e1);
    assert_eq!(
        fs::read_to_string(tmp.path().join("out0/results.jsonl")).unwrap(),
        one_rows
    );
    assert!(!tmp.path().join("out1/results.jsonl").exists());

    // Each names itself and what it read; together, the whole input.
    let (r0, p0) = read_counts(&e0, "tidemark: process 0 of 2: ").expect(&e0);
    let (r1, p1) = read_counts(&e1, "tidemark: process 1 of 2: ").expect(&e1);
    assert_eq!((r0 + r1, p0 + p1), (records, partitions), "{e0}\n{e1}");
    assert!(r0 > 0 && r1 > 0, "{e0}\n{e1}");

    // Process 0 gives the cluster's totals: the one-process counts.
    let cluster = "tidemark: cluster of 2 processes: ";
    assert_eq!(
        read_counts(&e0, cluster),
        Some((records, partitions)),
        "{e0}"
    );
    let totals = &e0[e0.find(cluster).unwrap()..];
    assert_eq!(
        count_after(totals, "windows emitted "),
        Some(emitted),
        "{e0}"
    );
    assert_eq!(count_after(totals, "late dropped "), Some(late), "{e0}");
    assert!(
        totals.contains("final watermark: +inf (every partition ended)"),
        "{e0}"
    );

    // Process 1 writes nothing and says who does.
    assert!(!e1.contains("cluster of"), "{e1}");
    assert!(!e1.contains("windows emitted"), "{e1}");
    assert!(
        e1.contains("process 0 writes the outputs and prints the cluster's totals"),
        "{e1}"
    );
    assert!(
        e1.contains("final watermark: +inf (every partition ended)"),
        "{e1}"
    );
}
