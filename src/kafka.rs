//! [`KafkaSink`]: result rows written to a Kafka topic in transactions,
//! exactly once across crashes when the job takes checkpoints (feature
//! `kafka`).
//!
//! - **Messages.** Each row is a message keyed by its key and window (the
//!   JSON object `{"key":…,"start":…,"end":…}`), its value the row's JSON
//!   line, partitioned by that key. With `--emit updates`, a retraction
//!   whose window has no new row in the same frontier step is a tombstone
//!   (the key, no value), so a compacted topic holds exactly the current
//!   results; a retraction followed by its window's new row is not written.
//! - **Transactions.** Rows are written by a transactional producer
//!   (`transactional.id = tidemark-TOPIC`) and committed at each of the
//!   engine's commits (completed frontier steps, every commit interval,
//!   and at the end), so a consumer reading with `read_committed` sees
//!   whole frontier steps only. Starting the producer fences an earlier
//!   one with the same id and aborts what it left open.
//! - **Exactly once.** Every row has a sequence number, its index in the
//!   job's output, carried in the header `tidemark-seq`: a function of the
//!   log, as the rows are. A checkpoint first commits the open
//!   transaction and records the next sequence number. A resumed run
//!   reads the newest committed sequence number back from the topic and
//!   skips the rows up to it, which the crashed run had committed after
//!   the checkpoint: each row reaches the topic once. The checkpoint keeps
//!   the sequence number as the sink's own recovery state ([`Committed`]),
//!   not as a file position. A run without a
//!   checkpoint to resume from appends everything.

use std::io;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tidemark_engine::checkpoint::OutputPosition;
use tidemark_engine::{Encode, Frontier, Row, Sink, SinkState};
use tidemark_windows::ChangeKind;

/// The Kafka sink's recovery position, as a checkpoint keeps it
/// ([`Sink::checkpoint_state`]): the sequence number of the next row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Committed {
    /// The sequence number of the next row after the checkpoint.
    pub next_seq: u64,
}

/// The header holding a message's sequence number.
pub const SEQ_HEADER: &str = "tidemark-seq";

/// How long a transaction or metadata request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Writes result rows to a topic; see the [module docs](self).
pub struct KafkaSink<E> {
    producer: BaseProducer,
    bootstrap: String,
    topic: String,
    encoder: E,
    /// The sequence number of the next row.
    seq: u64,
    /// Rows below this were committed by an earlier run: not written again.
    skip_below: u64,
    /// The rows of the current frontier step, with their sequence numbers.
    step: Vec<(Vec<u8>, Option<String>, u64, bool)>,
    step_time: Option<i64>,
    in_transaction: bool,
    line: String,
}

fn kafka_error(what: &str, address: &str, e: KafkaError) -> io::Error {
    io::Error::other(format!("{what} ({address}): {e}"))
}

impl<E> KafkaSink<E> {
    /// Connects a transactional producer to `topic` at `bootstrap`, which
    /// must exist (tidemark does not create topics); rows are encoded with
    /// `encoder`.
    pub fn connect(bootstrap: &str, topic: &str, encoder: E) -> io::Result<Self> {
        let address = format!("kafka://{bootstrap}/{topic}");
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("transactional.id", format!("tidemark-{topic}"))
            .set("linger.ms", "5")
            .set("log_level", "3")
            .create()
            .map_err(|e| kafka_error("could not create a Kafka producer", &address, e))?;
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| kafka_error("could not reach the broker", &address, e))?;
        let exists = metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        if !exists {
            return Err(io::Error::other(format!(
                "could not write {address}: the broker has no topic \"{topic}\" (create it first: tidemark does not create output topics)"
            )));
        }
        producer
            .init_transactions(TIMEOUT)
            .map_err(|e| kafka_error("could not start a Kafka transaction", &address, e))?;
        Ok(KafkaSink {
            producer,
            bootstrap: bootstrap.to_owned(),
            topic: topic.to_owned(),
            encoder,
            seq: 0,
            skip_below: 0,
            step: Vec::new(),
            step_time: None,
            in_transaction: false,
            line: String::new(),
        })
    }

    fn address(&self) -> String {
        format!("kafka://{}/{}", self.bootstrap, self.topic)
    }

    /// Writes the rows of the current step: a retraction followed by its
    /// window's new row is dropped, another one is a tombstone.
    fn flush_step(&mut self) -> io::Result<()> {
        let step = std::mem::take(&mut self.step);
        for (i, (key, value, seq, retract)) in step.iter().enumerate() {
            if *seq < self.skip_below {
                continue;
            }
            if *retract && step[i + 1..].iter().any(|(k, _, _, r)| k == key && !r) {
                continue;
            }
            if !self.in_transaction {
                self.producer.begin_transaction().map_err(|e| {
                    kafka_error("could not begin a transaction", &self.address(), e)
                })?;
                self.in_transaction = true;
            }
            let seq_text = seq.to_string();
            let headers = OwnedHeaders::new().insert(Header {
                key: SEQ_HEADER,
                value: Some(seq_text.as_bytes()),
            });
            loop {
                let mut record = BaseRecord::to(&self.topic)
                    .key(key.as_slice())
                    .headers(headers.clone());
                if let Some(v) = value {
                    record = record.payload(v.as_str());
                }
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((e, _))
                        if e.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                    {
                        // Back-pressure: let the queued messages go out.
                        self.producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => {
                        return Err(kafka_error("could not send a row", &self.address(), e))
                    }
                }
            }
            self.producer.poll(Duration::ZERO);
        }
        self.step_time = None;
        Ok(())
    }

    fn commit_transaction(&mut self) -> io::Result<()> {
        self.flush_step()?;
        if self.in_transaction {
            self.producer
                .commit_transaction(TIMEOUT)
                .map_err(|e| kafka_error("could not commit a transaction", &self.address(), e))?;
            self.in_transaction = false;
        }
        Ok(())
    }

    /// The newest sequence number committed to the topic, read back with
    /// `read_committed` from the end of each partition.
    /// Goes on from a checkpoint whose next row had sequence number
    /// `next_seq`: the rows the crashed run committed after it (read back
    /// from the topic) are skipped.
    fn resume_at(&mut self, next_seq: u64) -> io::Result<()> {
        self.seq = next_seq;
        let newest = self.newest_committed()?;
        self.skip_below = newest.map_or(0, |n| n + 1).max(next_seq);
        Ok(())
    }

    fn newest_committed(&self) -> io::Result<Option<u64>> {
        let address = self.address();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", format!("tidemark-{}-resume", self.topic))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "50")
            .set("log_level", "3")
            .create()
            .map_err(|e| kafka_error("could not create a consumer", &address, e))?;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .map_err(|e| kafka_error("could not read the topic's metadata", &address, e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut newest: Option<u64> = None;
        for p in partitions {
            let (low, end) = consumer
                .fetch_watermarks(&self.topic, p, Duration::from_secs(10))
                .map_err(|e| kafka_error("could not read the topic's offsets", &address, e))?;
            // Read back from the end, further each time the tail holds only
            // transaction markers, until a row or the start.
            let mut back = 64i64;
            loop {
                let from = (end - back).max(low);
                let found = read_seqs(&consumer, &self.topic, p, from, end, &address)?;
                if found.is_some() || from == low {
                    newest = newest.max(found);
                    break;
                }
                back *= 4;
            }
        }
        Ok(newest)
    }
}

/// The largest sequence number in partition `p` between offsets `from` and
/// `end`.
fn read_seqs(
    consumer: &BaseConsumer,
    topic: &str,
    p: i32,
    from: i64,
    end: i64,
    address: &str,
) -> io::Result<Option<u64>> {
    if from >= end {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, p, Offset::Offset(from))
        .map_err(|e| kafka_error("could not assign a partition", address, e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| kafka_error("could not assign a partition", address, e))?;
    let mut newest = None;
    let started = std::time::Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if let Some(seq) = m.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == SEQ_HEADER)
                        .and_then(|h| h.value)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .and_then(|v| v.parse::<u64>().ok())
                }) {
                    newest = newest.max(Some(seq));
                }
                if m.offset() + 1 >= end {
                    break;
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => return Err(kafka_error("could not read the topic back", address, e)),
            None if started.elapsed() > TIMEOUT => {
                return Err(io::Error::other(format!(
                    "could not read the topic back ({address}): no answer in {} s",
                    TIMEOUT.as_secs()
                )))
            }
            None => {}
        }
    }
    Ok(newest)
}

impl<O, E: Encode<Row<O>>> Sink<Row<O>> for KafkaSink<E> {
    fn write(&mut self, row: &Row<O>) -> io::Result<()> {
        if self.step_time.is_some_and(|t| t != row.time) {
            self.flush_step()?;
        }
        self.step_time = Some(row.time);
        let mut key = String::with_capacity(48);
        key.push_str("{\"key\":");
        key.push_str(&serde_json::to_string(row.key.as_str()).unwrap_or_default());
        key.push_str(&format!(
            ",\"start\":{},\"end\":{}}}",
            row.window.start, row.window.end
        ));
        let retract = row.kind == ChangeKind::Retract;
        let value = if retract {
            None
        } else {
            self.line.clear();
            self.encoder.encode(row, &mut self.line);
            Some(self.line.clone())
        };
        self.step.push((key.into_bytes(), value, self.seq, retract));
        self.seq += 1;
        Ok(())
    }

    fn commit(&mut self, _frontier: Frontier) -> io::Result<()> {
        self.commit_transaction()
    }

    fn describe(&self) -> String {
        self.address()
    }

    fn checkpoint_state(&mut self) -> io::Result<Option<SinkState>> {
        self.commit_transaction()?;
        SinkState::encode(&Committed { next_seq: self.seq }).map(Some)
    }

    fn resume(&mut self, from: Option<OutputPosition>) -> io::Result<()> {
        // A checkpoint written before the sink kept its own state had the
        // sequence number in the position's length.
        match from {
            Some(at) => self.resume_at(at.len),
            None => Ok(()),
        }
    }

    fn resume_state(&mut self, state: Option<SinkState>) -> io::Result<()> {
        match state {
            Some(state) => self.resume_at(state.decode::<Committed>()?.next_seq),
            None => Ok(()),
        }
    }
}
