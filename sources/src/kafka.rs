//! [`KafkaSource`]: the partitions of an Apache Kafka topic as a source,
//! read through librdkafka (feature `kafka`).
//!
//! tidemark owns its offsets: each partition is assigned to the reader the
//! engine opens for it (no consumer group, no rebalancing, no offset
//! commits), and the positions live in tidemark's checkpoints.
//!
//! - **Bounded** (the default): the end of each partition is its last
//!   stable offset when the source is created ("reprocess up to now");
//!   records written later are not read.
//! - **Followed**: a partition that reached the broker's end (librdkafka's
//!   partition EOF) is caught up, as the broker reports it, not a timer.
//! - **Transactions**: the consumer reads with `isolation.level =
//!   read_committed`, so aborted records and transaction markers are never
//!   returned. Their offsets are gaps: record offsets are Kafka's own, and
//!   increase but need not be dense. The engine relies only on that (a
//!   position is "the next offset to read", and opening a reader at a
//!   gap's offset starts at the next record after it); `N`-records
//!   checkpoint cuts count offsets, so a gap may skip one.
//! - **Decoding**: the payload is a line in the job's format; the key field
//!   `@key` takes the message key and the time field `@timestamp` the
//!   message timestamp ([`Decoder::decode_message`]). A message that does
//!   not decode is a dead letter naming the topic (as its `file`, the
//!   source's `kafka://` address), the partition and the offset.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};

use crate::decode::{DecodeConfig, Decoder};
use crate::record::{Decoded, Offset, PartitionId, ReadStatus};
use crate::source::{PartitionReader, Source, SourceError};

/// Where a partition is read from when the engine asks for offset 0 (no
/// checkpoint, no `--from-offsets`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KafkaStart {
    /// The earliest offset the broker still holds.
    #[default]
    Earliest,
    /// The end of the partition when the source was created: only what is
    /// written afterwards (with `follow`).
    Latest,
}

/// How to reach and read a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap: String,
    /// The topic.
    pub topic: String,
    /// How payloads decode (format, fields, time format).
    pub decode: DecodeConfig,
    /// Keep reading past the end (see the [module docs](self)).
    pub follow: bool,
    /// Where offset 0 starts.
    pub start: KafkaStart,
    /// Extra librdkafka properties for the consumers (e.g.
    /// `fetch.wait.max.ms`), set last.
    pub properties: BTreeMap<String, String>,
    /// How long metadata and offset requests may take.
    pub timeout: Duration,
}

impl KafkaConfig {
    /// A configuration for `topic` at `bootstrap` with every other setting
    /// at its default.
    pub fn new(
        bootstrap: impl Into<String>,
        topic: impl Into<String>,
        decode: DecodeConfig,
    ) -> Self {
        KafkaConfig {
            bootstrap: bootstrap.into(),
            topic: topic.into(),
            decode,
            follow: false,
            start: KafkaStart::Earliest,
            properties: BTreeMap::new(),
            timeout: Duration::from_secs(10),
        }
    }

    /// `kafka://BOOTSTRAP/TOPIC`.
    pub fn address(&self) -> String {
        format!("kafka://{}/{}", self.bootstrap, self.topic)
    }

    fn consumer(&self) -> Result<BaseConsumer, SourceError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            // librdkafka's assign needs a group id; nothing joins or commits.
            .set("group.id", format!("tidemark-{}", self.topic))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            // A caught-up consumer's long poll delays its other requests.
            .set("fetch.wait.max.ms", "50")
            // Large fetches: a reprocessing run reads far behind the end.
            .set("max.partition.fetch.bytes", "8388608")
            .set("queued.max.messages.kbytes", "16384")
            .set("log_level", "3");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c.create()
            .map_err(|e| self.broker("could not create a Kafka consumer", e))
    }

    fn broker(&self, what: &str, e: KafkaError) -> SourceError {
        SourceError::Broker {
            what: format!("{what} for {}", self.address()),
            reason: e.to_string(),
        }
    }
}

/// A Kafka topic's partitions; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct KafkaSource {
    config: Arc<KafkaConfig>,
    /// Per partition: the low watermark and the last stable offset when
    /// the source was created.
    offsets: BTreeMap<PartitionId, (i64, i64)>,
    name: Arc<str>,
}

impl KafkaSource {
    /// Connects to the broker, and reads the topic's partitions and their
    /// offsets: [`SourceError::Broker`] when the broker does not answer
    /// within the timeout or the topic does not exist.
    pub fn connect(config: KafkaConfig) -> Result<Self, SourceError> {
        if config.topic.is_empty() || config.bootstrap.is_empty() {
            return Err(SourceError::InvalidConfig(format!(
                "a Kafka input needs a broker and a topic: kafka://HOST:PORT/TOPIC, not {}",
                config.address()
            )));
        }
        let consumer = config.consumer()?;
        let metadata = consumer
            .fetch_metadata(Some(&config.topic), config.timeout)
            .map_err(|e| {
                config.broker(
                    &format!(
                        "could not reach the broker within {} s",
                        config.timeout.as_secs()
                    ),
                    e,
                )
            })?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == config.topic)
            .ok_or_else(|| SourceError::Broker {
                what: format!("could not read {}", config.address()),
                reason: "the broker did not describe the topic".into(),
            })?;
        if let Some(e) = topic.error() {
            let code = e;
            let reason = match code {
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART => format!(
                    "the broker has no topic \"{}\" (create it first: tidemark does not create input topics)",
                    config.topic
                ),
                other => format!("the broker answered {other:?}"),
            };
            return Err(SourceError::Broker {
                what: format!("could not read {}", config.address()),
                reason,
            });
        }
        let mut offsets = BTreeMap::new();
        for p in topic.partitions() {
            let id = p.id();
            // From a read_committed client: the high mark is the last
            // stable offset, what a read_committed reader can reach.
            let (low, high) = consumer
                .fetch_watermarks(&config.topic, id, config.timeout)
                .map_err(|e| {
                    config.broker(&format!("could not read partition {id}'s offsets"), e)
                })?;
            offsets.insert(id as PartitionId, (low, high));
        }
        if offsets.is_empty() {
            return Err(SourceError::Broker {
                what: format!("could not read {}", config.address()),
                reason: "the topic has no partitions (does it exist?)".into(),
            });
        }
        Ok(KafkaSource {
            name: Arc::from(config.address()),
            config: Arc::new(config),
            offsets,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Per partition: (low watermark, last stable offset) when connected.
    pub fn offsets(&self) -> &BTreeMap<PartitionId, (i64, i64)> {
        &self.offsets
    }
}

impl Source for KafkaSource {
    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
        Ok(self.offsets.keys().copied().collect())
    }

    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let &(low, stable) = self
            .offsets
            .get(&partition)
            .ok_or(SourceError::UnknownPartition {
                partition,
                count: self.offsets.len() as u32,
            })?;
        let end = stable.max(0) as u64;
        if !self.config.follow && from > end {
            return Err(SourceError::OffsetOutOfRange {
                partition,
                offset: from,
                end,
            });
        }
        let from = match (from, self.config.start) {
            (0, KafkaStart::Latest) => end,
            (0, KafkaStart::Earliest) => low.max(0) as u64,
            (from, _) => from,
        };
        let bounded_end = (!self.config.follow).then_some(end);
        let done = bounded_end.is_some_and(|e| from >= e);
        let consumer = self.config.consumer()?;
        if !done {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(
                &self.config.topic,
                partition as i32,
                KafkaOffset::Offset(from as i64),
            )
            .map_err(|e| self.config.broker("could not assign a partition", e))?;
            consumer.assign(&tpl).map_err(|e| {
                self.config
                    .broker(&format!("could not assign partition {partition}"), e)
            })?;
        }
        Ok(Box::new(KafkaReader {
            consumer,
            config: Arc::clone(&self.config),
            decoder: Decoder::new(&self.config.decode),
            name: Arc::clone(&self.name),
            partition,
            next: from,
            end: bounded_end,
            done,
        }))
    }

    fn describe(&self) -> String {
        self.config.address()
    }
}

struct KafkaReader {
    consumer: BaseConsumer,
    config: Arc<KafkaConfig>,
    decoder: Decoder,
    name: Arc<str>,
    partition: PartitionId,
    /// The offset after the last message returned.
    next: Offset,
    /// Bounded: the end offset taken at the start.
    end: Option<u64>,
    done: bool,
}

impl PartitionReader for KafkaReader {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError> {
        if max == 0 {
            return Ok(ReadStatus::More);
        }
        let mut n = 0;
        while n < max {
            if self.done {
                return Ok(ReadStatus::End);
            }
            let message = match self.consumer.poll(Duration::ZERO) {
                None => return Ok(ReadStatus::CaughtUp),
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    // At the broker's end (for read_committed: its last
                    // stable offset), so past every offset below the end
                    // taken at the start.
                    if self.end.is_some() {
                        self.done = true;
                        return Ok(ReadStatus::End);
                    }
                    return Ok(ReadStatus::CaughtUp);
                }
                Some(Err(e)) => {
                    return Err(SourceError::Broker {
                        what: format!(
                            "could not read partition {} of {}",
                            self.partition,
                            self.config.address()
                        ),
                        reason: e.to_string(),
                    })
                }
                Some(Ok(m)) => m,
            };
            let offset = message.offset().max(0) as u64;
            if self.end.is_some_and(|end| offset >= end) {
                self.done = true;
                return Ok(ReadStatus::End);
            }
            let decoded = match message.payload() {
                Some(payload) => self.decoder.decode_message(
                    self.partition,
                    offset,
                    payload,
                    message.key(),
                    message.timestamp().to_millis(),
                ),
                None => Err(crate::DeadLetter::new(
                    self.partition,
                    offset,
                    "the message has no value (a tombstone)".to_owned(),
                    b"",
                )),
            };
            out.push(decoded.map_err(|mut letter| {
                letter.file = Some(Arc::clone(&self.name));
                letter
            }));
            self.next = offset + 1;
            n += 1;
            if self.end.is_some_and(|end| self.next >= end) {
                self.done = true;
                return Ok(ReadStatus::End);
            }
        }
        Ok(ReadStatus::More)
    }

    fn position(&self) -> Offset {
        self.next
    }
}
