//! Kafka input against a real broker (`kafka/start`): a 4-partition topic
//! written transactionally, with an aborted transaction in the middle, late
//! and out-of-order records and malformed messages, gives byte for byte the
//! results of the same records read from partition files, for 1 and 2
//! workers; the message key and timestamp can be the key and event time;
//! `--from-time` reprocesses the same suffix as from files; a run killed
//! with SIGKILL and restarted from its checkpoint writes what an
//! uninterrupted run writes; a followed topic's partitions are caught up at
//! the broker's end; dead letters name the topic, partition and offset.
//!
//! These tests need a broker, so they are ignored by default. Run them
//! with:
//!
//! ```text
//! export TIDEMARK_KAFKA_BOOTSTRAP=$(kafka/start)
//! cargo test --test kafka -- --ignored
//! kafka/stop
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::{Command, Output};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn bootstrap() -> String {
    std::env::var("TIDEMARK_KAFKA_BOOTSTRAP").expect(
        "TIDEMARK_KAFKA_BOOTSTRAP is not set: start a broker with kafka/start and export its address",
    )
}

/// A topic name no other test (or earlier run) used.
fn topic(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tidemark-{name}-{}-{nanos}", std::process::id())
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs the admin client's future on this thread (no async runtime).
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn create_topic(name: &str, partitions: i32) {
    create_topic_with(name, partitions, &[]);
}

fn create_topic_with(name: &str, partitions: i32, config: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .create()
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in config {
        topic = topic.set(k, v);
    }
    let results = block_on(admin.create_topics(&[topic], &options)).unwrap();
    for r in results {
        r.unwrap();
    }
}

/// One message: partition, key, payload, timestamp.
type Message = (i32, Option<String>, String, Option<i64>);

/// Writes `committed` in one transaction per chunk, with `aborted` written
/// and aborted between the chunks.
fn produce(topic: &str, committed: &[Message], aborted: &[Message], chunks: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("transactional.id", format!("{topic}-writer"))
        .set("linger.ms", "5")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    let send = |m: &Message| loop {
        let mut record = BaseRecord::to(topic).partition(m.0).payload(&m.2);
        if let Some(k) = &m.1 {
            record = record.key(k);
        }
        if let Some(t) = m.3 {
            record = record.timestamp(t);
        }
        match producer.send(record) {
            Ok(()) => break,
            Err((e, _)) => {
                // The local queue is full: let deliveries drain.
                assert!(
                    matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "{e}"
                );
                producer.poll(Duration::from_millis(10));
            }
        }
    };
    let per_chunk = committed.len().div_ceil(chunks.max(1)).max(1);
    for (i, chunk) in committed.chunks(per_chunk).enumerate() {
        producer.begin_transaction().unwrap();
        chunk.iter().for_each(send);
        producer
            .commit_transaction(Duration::from_secs(30))
            .unwrap();
        if i == 0 && !aborted.is_empty() {
            producer.begin_transaction().unwrap();
            aborted.iter().for_each(send);
            producer.flush(Duration::from_secs(30)).unwrap();
            producer.abort_transaction(Duration::from_secs(30)).unwrap();
        }
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Generated partition files (JSON lines) in `dir`, and their lines.
fn generate(dir: &Path, args: &[&str]) -> Vec<Vec<String>> {
    run_ok(
        bin()
            .arg("gen")
            .arg("--out")
            .arg(dir)
            .args(["--partitions", "4"])
            .args(args),
    );
    (0..4)
        .map(|p| {
            std::fs::read_to_string(dir.join(format!("part-{p:05}.jsonl")))
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// The lines as messages, partition after partition.
fn messages(lines: &[Vec<String>]) -> Vec<Message> {
    let mut all = Vec::new();
    for (p, part) in lines.iter().enumerate() {
        for line in part {
            all.push((p as i32, None, line.clone(), None));
        }
    }
    all
}

/// Records `from..to`, one every 100 ms of event time, spread over
/// `partitions` partitions and `keys` keys.
fn every_100ms(from: i64, to: i64, partitions: i64, keys: i64) -> Vec<Message> {
    (from..to)
        .map(|i| {
            (
                (i % partitions) as i32,
                None,
                format!(
                    "{{\"key\":\"k{}\",\"ts\":{},\"value\":1}}",
                    i % keys,
                    1_700_000_000_000 + i * 100
                ),
                None,
            )
        })
        .collect()
}

fn write_parts(dir: &Path, lines: &[Vec<String>]) {
    std::fs::create_dir_all(dir).unwrap();
    for (p, part) in lines.iter().enumerate() {
        let mut text = part.join("\n");
        text.push('\n');
        std::fs::write(dir.join(format!("part-{p:05}.jsonl")), text).unwrap();
    }
}

const JOB: [&str; 8] = [
    "--window",
    "sliding:3s/1s",
    "--delay",
    "200ms",
    "--lateness",
    "1s",
    "--emit",
    "updates",
];

fn run_job(input: &str, out: &Path, extra: &[&str]) -> (Vec<u8>, String) {
    std::fs::create_dir_all(out).unwrap();
    let result = run_ok(
        bin()
            .args(["run", "--input", input])
            .args(JOB)
            .arg("--output")
            .arg(out.join("results.jsonl"))
            .arg("--late")
            .arg(out.join("late.jsonl"))
            .arg("--dead-letter")
            .arg(out.join("dead.jsonl"))
            .args(extra),
    );
    (
        std::fs::read(out.join("results.jsonl")).unwrap(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    )
}

/// 4 partitions of late and out-of-order records with malformed lines,
/// as files and as a topic written in three transactions with an aborted
/// one between the first two.
fn fixture(tmp: &Path, name: &str) -> (PathBuf, String) {
    let mut lines = generate(
        &tmp.join("gen"),
        &[
            "--events",
            "40000",
            "--keys",
            "40",
            "--rate",
            "2",
            "--disorder",
            "100ms",
            "--late-frac",
            "0.03",
            "--late-extra",
            "2s",
            "--seed",
            "11",
        ],
    );
    lines[1].insert(500, "{\"key\": \"k1\", \"ts\": \"soon\"}".to_owned());
    lines[3].insert(7000, "not json".to_owned());
    let files = tmp.join("files");
    write_parts(&files, &lines);
    let topic = topic(name);
    create_topic(&topic, 4);
    // The aborted records would change every count if they were read.
    let aborted: Vec<Message> = (0..4)
        .flat_map(|p| {
            (0..50).map(move |i| {
                (
                    p,
                    None,
                    format!("{{\"key\":\"k{i}\",\"ts\":1700000005000,\"value\":1000}}"),
                    None,
                )
            })
        })
        .collect();
    produce(&topic, &messages(&lines), &aborted, 3);
    (files, format!("kafka://{}/{topic}", bootstrap()))
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn a_transactional_topic_gives_the_results_of_the_same_records_in_files() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (files, topic) = fixture(tmp, "same");
    let (want, _) = run_job(files.to_str().unwrap(), &tmp.join("from-files"), &[]);
    assert!(want.len() > 10_000);
    for workers in ["1", "2"] {
        let out = tmp.join(format!("from-kafka-{workers}"));
        let (got, stderr) = run_job(&topic, &out, &["--workers", workers]);
        assert!(got == want, "{workers} workers: results differ\n{stderr}");
        // The same late records, at Kafka's offsets (gaps after the first
        // transaction) instead of the files'.
        let late = |dir: &Path| -> Vec<serde_json::Value> {
            std::fs::read_to_string(dir.join("late.jsonl"))
                .unwrap()
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("offset");
                    v
                })
                .collect()
        };
        let (got_late, want_late) = (late(&out), late(&tmp.join("from-files")));
        assert!(!want_late.is_empty());
        assert!(got_late == want_late, "late records differ");
        // The two malformed messages, named by topic, partition and offset
        // (Kafka's own offsets).
        let dead = std::fs::read_to_string(out.join("dead.jsonl")).unwrap();
        let dead: Vec<serde_json::Value> = dead
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(dead.len(), 2, "{dead:?}");
        let where_ = |d: &serde_json::Value| {
            (
                d["partition"].as_u64().unwrap(),
                d["offset"].as_u64().unwrap(),
                d["file"].as_str().unwrap().to_owned(),
            )
        };
        let (p, o, file) = where_(&dead[0]);
        assert_eq!((p, o, file.as_str()), (1, 500, topic.as_str()));
        let (p, o, _) = where_(&dead[1]);
        assert_eq!(p, 3);
        // Record 7000 of partition 3, whose records all come in the last
        // transaction, after the 50 aborted records and their abort
        // marker: 51 offsets of gap.
        assert_eq!(o, 7000 + 51, "{dead:?}");
    }
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn from_time_reprocessing_writes_the_suffix_the_files_give() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (files, topic) = fixture(tmp, "from-time");
    let (full, _) = run_job(&topic, &tmp.join("full"), &[]);
    // 40 000 events at 2 per ms from the generator's start: about 20 s.
    let from = "1700000010000";
    let (want, _) = run_job(
        files.to_str().unwrap(),
        &tmp.join("files-suffix"),
        &["--from-time", from],
    );
    let (got, _) = run_job(&topic, &tmp.join("kafka-suffix"), &["--from-time", from]);
    assert!(got == want, "the suffixes differ");
    assert!(!got.is_empty() && got.len() < full.len());
    assert!(full.ends_with(&got), "not a suffix of the full run");
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn the_message_key_and_timestamp_can_be_the_key_and_event_time() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let topic = topic("meta");
    create_topic(&topic, 2);
    let mut file_lines = vec![Vec::new(), Vec::new()];
    let mut msgs = Vec::new();
    for i in 0..2_000i64 {
        let p = (i % 2) as i32;
        let ts = 1_700_000_000_000 + i * 10 - (i % 7) * 30;
        let key = format!("user{}", i % 5);
        let value = 1 + i % 9;
        file_lines[p as usize].push(format!(
            "{{\"key\":\"{key}\",\"ts\":{ts},\"value\":{value}}}"
        ));
        msgs.push((p, Some(key), format!("{{\"value\":{value}}}"), Some(ts)));
    }
    // A message without a key is a dead letter, not a record.
    msgs.push((0, None, "{\"value\":1}".to_owned(), Some(1_700_000_020_000)));
    produce(&topic, &msgs, &[], 1);
    let files = tmp.join("files");
    write_parts(&files, &file_lines);
    let (want, _) = run_job(files.to_str().unwrap(), &tmp.join("files-out"), &[]);
    let address = format!("kafka://{}/{topic}", bootstrap());
    let (got, stderr) = run_job(
        &address,
        &tmp.join("kafka-out"),
        &["--key", "@key", "--time", "@timestamp"],
    );
    assert!(got == want, "results differ\n{stderr}");
    let dead = std::fs::read_to_string(tmp.join("kafka-out/dead.jsonl")).unwrap();
    assert!(dead.contains("the message has no key (@key)"), "{dead}");
    assert_eq!(dead.lines().count(), 1);
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn a_run_killed_midway_resumes_from_its_checkpoint_to_the_same_output() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (_, topic) = fixture(tmp, "kill");
    let (want, _) = run_job(&topic, &tmp.join("reference"), &[]);
    let out = tmp.join("killed");
    std::fs::create_dir_all(&out).unwrap();
    let ckpt = tmp.join("ckpt");
    let cmd = |batch: &str| {
        let mut c = bin();
        c.args(["run", "--input", &topic])
            .args(JOB)
            .arg("--output")
            .arg(out.join("results.jsonl"))
            .arg("--late")
            .arg(out.join("late.jsonl"))
            .arg("--dead-letter")
            .arg(out.join("dead.jsonl"))
            .arg("--checkpoint-dir")
            .arg(&ckpt)
            .args(["--checkpoint-every", "1s", "--batch-size", batch, "--quiet"]);
        c
    };
    // Small batches make the run slow enough to be killed in the middle.
    let mut kills = 0;
    for attempt in 0..6 {
        let mut child = cmd("16").spawn().unwrap();
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(400 + attempt * 150));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        let _ = started;
        let checkpointed = std::fs::read_dir(&ckpt)
            .map(|d| d.flatten().any(|e| e.path().join("MANIFEST").exists()))
            .unwrap_or(false);
        if checkpointed {
            break;
        }
    }
    assert!(kills > 0, "the run was never killed midway");
    let resumed = run_ok(&mut cmd("1024"));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(stderr.contains("resuming from checkpoint"), "{stderr}");
    assert!(
        std::fs::read(out.join("results.jsonl")).unwrap() == want,
        "the resumed output differs from the uninterrupted run's"
    );
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn a_followed_topic_is_caught_up_at_the_broker_end_and_reads_what_comes() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let topic = topic("follow");
    create_topic(&topic, 2);
    let batch = |from, to| every_100ms(from, to, 2, 3);
    produce(&topic, &batch(0, 100), &[], 1);
    let address = format!("kafka://{}/{topic}", bootstrap());
    let results = tmp.join("results.jsonl");
    let mut child = bin()
        .args([
            "run",
            "--input",
            &address,
            "--follow",
            "--window",
            "tumbling:1s",
        ])
        .arg("--output")
        .arg(&results)
        .args(["--quiet"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rows = || {
        std::fs::read_to_string(&results)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let wait_for = |n: usize| {
        let started = Instant::now();
        while rows() < n {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} rows, wanted {n}",
                rows()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // 10 s of events: the windows before the last one's are complete.
    wait_for(9 * 3);
    produce(&topic, &batch(100, 200), &[], 1);
    wait_for(19 * 3);
    // SIGINT ends a followed run cleanly.
    let pid = child.id().to_string();
    run_ok(Command::new("kill").args(["-INT", &pid]));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let by_window: BTreeMap<String, usize> = std::fs::read_to_string(&results)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["start"].to_string(), 1)
        })
        .fold(BTreeMap::new(), |mut m, (k, n)| {
            *m.entry(k).or_default() += n;
            m
        });
    assert!(by_window.values().all(|&n| n == 3), "{by_window:?}");
}

#[test]
fn a_kafka_address_is_checked_before_any_connection() {
    for (input, why) in [
        ("kafka://127.0.0.1:19092", "no topic"),
        ("kafka:///topic", "no broker address"),
        ("kafka://127.0.0.1:19092/a/b", "one non-empty name"),
        (
            "kafka://127.0.0.1:19092/t?start=middle",
            "start=earliest or start=latest",
        ),
    ] {
        let out = bin()
            .args(["run", "--input", input, "--window", "tumbling:1s"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{input}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{input}: {stderr}");
    }
    // Options of files do not apply to a topic.
    for flag in [
        &["--partition-field", "p"][..],
        &["--header", "--format", "csv"],
    ] {
        let out = bin()
            .args([
                "run",
                "--input",
                "kafka://127.0.0.1:19092/t",
                "--window",
                "tumbling:1s",
            ])
            .args(flag)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("does not apply to a Kafka input"),
            "{flag:?}: {stderr}"
        );
    }
}

/// One message of an output topic: sequence number, key, value (`None`: a
/// tombstone).
type OutMessage = (u64, String, Option<String>);

/// Every committed message of `topic`, by sequence number.
fn read_topic(topic: &str) -> Vec<OutMessage> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for &p in &partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut at_end = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let started = Instant::now();
    while at_end.len() < partitions.len() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "reading {topic}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let seq = m
                    .headers()
                    .and_then(|h| {
                        h.iter()
                            .find(|h| h.key == "tidemark-seq")
                            .and_then(|h| h.value)
                    })
                    .map(|v| std::str::from_utf8(v).unwrap().parse().unwrap())
                    .expect("a row without a sequence number");
                let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                let value = m.payload().map(|v| String::from_utf8(v.to_vec()).unwrap());
                out.push((seq, key, value));
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    out.sort();
    out
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn result_rows_reach_a_topic_as_the_file_has_them_and_updates_leave_the_final_table() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (files, _) = fixture(tmp, "sink-in");
    let files = files.to_str().unwrap();
    // Final rows only: the topic, by sequence number, is the file.
    let job = [
        "--window",
        "tumbling:1s",
        "--delay",
        "300ms",
        "--emit",
        "final",
    ];
    let out = topic("sink-final");
    create_topic(&out, 3);
    let file = tmp.join("final.jsonl");
    run_ok(
        bin()
            .args(["run", "--input", files])
            .args(job)
            .arg("--output")
            .arg(&file)
            .arg("--quiet"),
    );
    let address = format!("kafka://{}/{out}", bootstrap());
    run_ok(
        bin()
            .args(["run", "--input", files])
            .args(job)
            .args(["--output", &address, "--quiet"]),
    );
    let want: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let got = read_topic(&out);
    assert_eq!(got.len(), want.len());
    for (i, ((seq, key, value), line)) in got.iter().zip(&want).enumerate() {
        assert_eq!(*seq, i as u64);
        assert_eq!(value.as_deref(), Some(line.as_str()));
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let key: serde_json::Value = serde_json::from_str(key).unwrap();
        assert_eq!(
            (&key["key"], &key["start"], &key["end"]),
            (&row["key"], &row["start"], &row["end"])
        );
    }

    // Updates (sessions merge: retractions of windows that are gone) into a
    // compacted topic: the latest value per key is the final table.
    let job = [
        "--window",
        "session:500ms",
        "--delay",
        "100ms",
        "--lateness",
        "2s",
        "--emit",
        "updates",
    ];
    let out = topic("sink-updates");
    create_topic_with(&out, 3, &[("cleanup.policy", "compact")]);
    let file = tmp.join("updates.jsonl");
    run_ok(
        bin()
            .args(["run", "--input", files])
            .args(job)
            .arg("--output")
            .arg(&file)
            .arg("--quiet"),
    );
    let address = format!("kafka://{}/{out}", bootstrap());
    run_ok(bin().args(["run", "--input", files]).args(job).args([
        "--output",
        &address,
        "--quiet",
        "--workers",
        "2",
    ]));
    // The final table from the file: each row replaces its window's, a
    // retraction removes it.
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    let mut retractions = 0;
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = format!(
            "{{\"key\":{},\"start\":{},\"end\":{}}}",
            row["key"], row["start"], row["end"]
        );
        if row["kind"] == "retract" {
            retractions += 1;
            want.remove(&key);
        } else {
            want.insert(key, line.to_owned());
        }
    }
    assert!(retractions > 100, "{retractions} retractions");
    let mut got: BTreeMap<String, Option<String>> = BTreeMap::new();
    let messages = read_topic(&out);
    let tombstones = messages.iter().filter(|m| m.2.is_none()).count();
    assert!(tombstones > 0);
    for (_, key, value) in messages {
        got.insert(key, value);
    }
    let got: BTreeMap<String, String> = got
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    assert!(
        got == want,
        "the latest value per key is not the final table"
    );
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn a_run_killed_midway_leaves_the_output_topic_as_an_uninterrupted_run_does() {
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let (files, _) = fixture(tmp, "sink-kill-in");
    let files = files.to_str().unwrap();
    let reference = topic("sink-reference");
    create_topic(&reference, 4);
    let address = |t: &str| format!("kafka://{}/{t}", bootstrap());
    run_ok(bin().args(["run", "--input", files]).args(JOB).args([
        "--output",
        &address(&reference),
        "--quiet",
    ]));
    let want = read_topic(&reference);
    assert!(want.len() > 10_000);

    let killed = topic("sink-killed");
    create_topic(&killed, 4);
    let ckpt = tmp.join("ckpt");
    let cmd = |batch: &str| {
        let mut c = bin();
        c.args(["run", "--input", files])
            .args(JOB)
            .args(["--output", &address(&killed)])
            .arg("--checkpoint-dir")
            .arg(&ckpt)
            .args(["--checkpoint-every", "1s", "--batch-size", batch, "--quiet"]);
        c
    };
    let mut kills = 0;
    for attempt in 0..5 {
        let mut child = cmd("8").spawn().unwrap();
        std::thread::sleep(Duration::from_millis(1_500 + attempt * 300));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 2, "the run was killed only {kills} times");
    let resumed = run_ok(&mut cmd("1024"));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(stderr.contains("resuming from checkpoint"), "{stderr}");
    let got = read_topic(&killed);
    assert_eq!(got.len(), want.len(), "rows lost or written twice");
    assert!(got == want, "the topics differ");
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn start_latest_reads_only_what_is_written_after_the_job_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let topic = topic("latest");
    create_topic(&topic, 1);
    let batch = |from, to| every_100ms(from, to, 1, 1);
    // 10 s of old records; the job starts at the end.
    produce(&topic, &batch(0, 100), &[], 1);
    let results = tmp.path().join("results.jsonl");
    let address = format!("kafka://{}/{topic}?start=latest", bootstrap());
    let mut child = bin()
        .args([
            "run",
            "--input",
            &address,
            "--follow",
            "--window",
            "tumbling:1s",
        ])
        .arg("--output")
        .arg(&results)
        .arg("--quiet")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    produce(&topic, &batch(200, 300), &[], 1);
    let started = Instant::now();
    let rows = || std::fs::read_to_string(&results).unwrap_or_default();
    while rows().lines().count() < 9 {
        assert!(started.elapsed() < Duration::from_secs(30), "{}", rows());
        std::thread::sleep(Duration::from_millis(50));
    }
    run_ok(Command::new("kill").args(["-INT", &child.id().to_string()]));
    child.wait().unwrap();
    // Only the windows of the new records, from 20 s on.
    for line in rows().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            row["start"].as_i64().unwrap() >= 1_700_000_020_000,
            "{line}"
        );
    }
}

#[test]
#[ignore = "needs a Kafka broker: see the module docs"]
fn a_topic_as_a_table_gives_the_results_of_the_same_table_in_files() {
    // A users table with moves and deletes (a message whose payload has no
    // country), in two partitions, as a topic and as files; the stream of
    // clicks from files, grouped by the country the table attaches.
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let topic = topic("users");
    create_topic(&topic, 2);
    let mut table_lines = vec![Vec::new(), Vec::new()];
    let mut msgs = Vec::new();
    for i in 0..300i64 {
        let p = (i % 2) as i32;
        let ts = 1_700_000_000_000 + i * 100 - (i % 5) * 40;
        let user = format!("u{}", i % 7);
        let line = if i % 9 == 4 {
            format!("{{\"user\":\"{user}\",\"ts\":{ts}}}")
        } else {
            format!(
                "{{\"user\":\"{user}\",\"ts\":{ts},\"country\":\"c{}\"}}",
                i % 3
            )
        };
        table_lines[p as usize].push(line.clone());
        msgs.push((p, None, line, None));
    }
    produce(&topic, &msgs, &[], 2);
    write_parts(&tmp.join("users"), &table_lines);
    let clicks: Vec<Vec<String>> = (0..2)
        .map(|p| {
            (0..1_500i64)
                .map(|i| {
                    format!(
                        "{{\"user\":\"u{}\",\"ts\":{},\"value\":1}}",
                        (i * 3 + p) % 7,
                        1_700_000_000_000 + i * 20
                    )
                })
                .collect()
        })
        .collect();
    write_parts(&tmp.join("clicks"), &clicks);
    let run = |table_input: &str, out: &str| {
        let table = format!(
            "name = \"users\", input = \"{table_input}\", key = \"user\", fields = [\"country\"]"
        );
        run_job(
            tmp.join("clicks").to_str().unwrap(),
            &tmp.join(out),
            &[
                "--key",
                "country",
                "--table",
                &table,
                "--enrich",
                "table = \"users\", on = \"user\", mode = \"inner\"",
            ],
        )
    };
    let (want, _) = run(tmp.join("users").to_str().unwrap(), "files-out");
    assert!(!want.is_empty());
    let (got, stderr) = run(&format!("kafka://{}/{topic}", bootstrap()), "kafka-out");
    assert!(got == want, "results differ\n{stderr}");
    let late = |out: &str| std::fs::read_to_string(tmp.join(out).join("late.jsonl")).unwrap();
    assert_eq!(late("kafka-out"), late("files-out"));
    assert!(late("files-out").contains("\"table\":\"users\""));
}
