//! [`MemorySource`]: partitions held in memory, as records or as raw lines
//! decoded on read, for tests and for library users with data at hand.

use std::sync::Arc;

use crate::decode::{DecodeConfig, Decoder};
use crate::record::{Decoded, Offset, PartitionId, ReadStatus, Record};
use crate::source::{PartitionReader, Source, SourceError};

#[derive(Clone, Debug)]
enum Partition {
    Records(Arc<[Record]>),
    Lines {
        lines: Arc<[Vec<u8>]>,
        decoder: Box<Decoder>,
    },
}

impl Partition {
    fn len(&self) -> usize {
        match self {
            Partition::Records(records) => records.len(),
            Partition::Lines { lines, .. } => lines.len(),
        }
    }
}

/// Partitions held in memory. Bounded: each partition ends with
/// [`ReadStatus::End`].
#[derive(Clone, Debug)]
pub struct MemorySource {
    partitions: Vec<Partition>,
}

impl MemorySource {
    /// A source whose partition `p` holds `partitions[p]`, in order.
    ///
    /// Each record's `partition` and `offset` are set to its place (`p` and
    /// its index), whatever they were.
    pub fn new(partitions: Vec<Vec<Record>>) -> Self {
        let partitions = partitions
            .into_iter()
            .zip(0..)
            .map(|(mut records, partition)| {
                for (record, offset) in records.iter_mut().zip(0..) {
                    record.partition = partition;
                    record.offset = offset;
                }
                Partition::Records(records.into())
            })
            .collect();
        MemorySource { partitions }
    }

    /// A source of the program's own events, any type `E`: partition `p`
    /// holds `partitions[p]` in order, each made a record by `key` and
    /// `time` (epoch milliseconds) and projected onto named fields by
    /// `fields` (what an [`Aggs`](tidemark_windows::Aggs) or a `Typed`
    /// aggregation of the engine reads, in its order). The value is `1`.
    ///
    /// ```
    /// use tidemark_sources::{Field, MemorySource, Source};
    ///
    /// struct Click { page: &'static str, user: &'static str, at: i64 }
    /// let clicks = vec![vec![Click { page: "/", user: "ann", at: 5 }]];
    /// let source = MemorySource::from_events(
    ///     clicks,
    ///     |c| c.page.to_owned(),
    ///     |c| c.at,
    ///     |c| vec![Field::from(c.user)],
    /// );
    /// assert_eq!(source.partitions().unwrap(), vec![0]);
    /// ```
    pub fn from_events<E>(
        partitions: Vec<Vec<E>>,
        key: impl Fn(&E) -> String,
        time: impl Fn(&E) -> i64,
        fields: impl Fn(&E) -> Vec<crate::Field>,
    ) -> Self {
        MemorySource::new(
            partitions
                .into_iter()
                .map(|events| {
                    events
                        .iter()
                        .map(|e| Record {
                            partition: 0,
                            offset: 0,
                            key: key(e).into(),
                            event_time: time(e),
                            value: crate::Value::Int(1),
                            fields: fields(e),
                        })
                        .collect()
                })
                .collect(),
        )
    }

    /// A source whose partition `p` is the lines `partitions[p]` (without
    /// their `\n`), decoded as they are read, exactly as a
    /// [`FileSource`](crate::FileSource) would decode them: line `i` is at
    /// offset `i`, undecodable lines become dead letters. With a CSV header,
    /// the first line of each partition is its header.
    pub fn from_lines<L: AsRef<[u8]>>(partitions: Vec<Vec<L>>, config: DecodeConfig) -> Self {
        let template = Decoder::new(&config);
        let partitions = partitions
            .into_iter()
            .map(|lines| {
                let mut decoder = template.clone();
                let mut lines = lines.iter().map(|l| l.as_ref().to_vec());
                if decoder.expects_header() {
                    decoder.set_header(&lines.next().unwrap_or_default());
                }
                Partition::Lines {
                    lines: lines.collect(),
                    decoder: Box::new(decoder),
                }
            })
            .collect();
        MemorySource { partitions }
    }

    /// How many items (records or dead letters) partition `partition` holds.
    pub fn len(&self, partition: PartitionId) -> Option<u64> {
        self.partitions
            .get(partition as usize)
            .map(|p| p.len() as u64)
    }
}

impl Source for MemorySource {
    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
        Ok((0..).take(self.partitions.len()).collect())
    }

    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let data =
            self.partitions
                .get(partition as usize)
                .ok_or(SourceError::UnknownPartition {
                    partition,
                    count: u32::try_from(self.partitions.len()).unwrap_or(u32::MAX),
                })?;
        let end = data.len() as u64;
        if from > end {
            return Err(SourceError::OffsetOutOfRange {
                partition,
                offset: from,
                end,
            });
        }
        Ok(Box::new(MemoryReader {
            data: data.clone(),
            partition,
            next: from,
        }))
    }
}

struct MemoryReader {
    data: Partition,
    partition: PartitionId,
    next: Offset,
}

impl PartitionReader for MemoryReader {
    fn read(&mut self, max: usize, out: &mut Vec<Decoded>) -> Result<ReadStatus, SourceError> {
        if max == 0 {
            return Ok(ReadStatus::More);
        }
        let start = usize::try_from(self.next).unwrap_or(usize::MAX);
        let stop = start.saturating_add(max).min(self.data.len());
        match &self.data {
            Partition::Records(records) => {
                out.extend(
                    records
                        .get(start..stop)
                        .unwrap_or_default()
                        .iter()
                        .cloned()
                        .map(Ok),
                );
            }
            Partition::Lines { lines, decoder } => {
                for (line, offset) in lines
                    .get(start..stop)
                    .unwrap_or_default()
                    .iter()
                    .zip(self.next..)
                {
                    out.push(decoder.decode(self.partition, offset, line));
                }
            }
        }
        self.next += stop.saturating_sub(start) as u64;
        if stop >= self.data.len() {
            Ok(ReadStatus::End)
        } else {
            Ok(ReadStatus::More)
        }
    }

    fn position(&self) -> Offset {
        self.next
    }
}
