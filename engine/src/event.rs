//! The items that travel between the operators: records as columnar
//! batches, the typed result [`Row`]s, [`LateRecord`]s and dead letters.

use serde::{Deserialize, Serialize};
use tidemark_sources::{DeadLetter, Key, PartitionId, Value};
use tidemark_windows::{Change, EventTime, Field, FromRecord, Number, RecordView, Window};

use crate::counts::Counts;

/// A record's value as the window state aggregates it.
pub(crate) fn number(value: Value) -> Number {
    match value {
        Value::Int(i) => Number::Int(i),
        Value::Float(f) => Number::Float(f),
    }
}

/// A decoded record on its way to the window operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its partition's stream time at this record.
    pub stream_time: EventTime,
    /// Partition.
    pub partition: PartitionId,
    /// Offset in the partition.
    pub offset: u64,
    /// Grouping key.
    pub key: Key,
    /// Event time.
    pub time: EventTime,
    /// Value.
    pub value: Number,
    /// The named fields the job reads
    /// ([`JobAggregator::record_fields`](crate::JobAggregator::record_fields)),
    /// in order; empty when it reads none.
    pub fields: Vec<Field>,
}

/// One result row: a window's value for a key, its kind (`final`, `update`
/// or `retract`) and the frontier step that emitted it (`time`, with
/// `phase` its place among the rows of that step). Rows reach a
/// [`Sink`](crate::Sink) in the canonical order of
/// [`Change::canonical_cmp`].
pub type Row<O> = Change<Key, O>;

/// A record dropped from at least one of its windows as too late, or in
/// no window at all: nothing is dropped silently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LateRecord {
    /// The record.
    pub event: Event,
    /// The windows it was too late for (none when it is in no window).
    pub missed: Vec<Window>,
    /// Why it is on the late output.
    pub reason: LateReason,
    /// The table it concerns: a table update too late for its table, or a
    /// stream record its lookup in this table refused (`None`: a record
    /// too late for its windows).
    #[serde(default)]
    pub table: Option<String>,
}

/// Why a record is on the late output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LateReason {
    /// Its partition's watermark had passed at least one of its windows by
    /// more than the allowed lateness: it was dropped from those.
    TooLate,
    /// Its event time lies in no window (sliding windows whose slide is
    /// larger than their size leave gaps).
    NoWindow,
    /// A table update whose watermark had passed its time by more than the
    /// table's lateness: it never entered the table.
    TableTooLate,
    /// A stream record for which the table (inner join) had no version at
    /// its time.
    NoTableRow,
    /// A stream record older than the table's history: the versions of
    /// its time may be gone.
    OlderThanHistory,
}

impl LateReason {
    /// The text written on the late output.
    pub fn name(self) -> &'static str {
        match self {
            LateReason::TooLate => "too late",
            LateReason::NoWindow => "in no window",
            LateReason::TableTooLate => "table update too late",
            LateReason::NoTableRow => "no table row",
            LateReason::OlderThanHistory => "older than table history",
        }
    }
}

/// Records of one partition bound for one worker, in offset order, as
/// columns: one exchange item carries a whole batch, and the window operator
/// walks the columns without moving 80-byte rows around.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Batch {
    /// The worker the batch is for.
    pub(crate) dest: u32,
    /// The partition the records come from.
    pub(crate) partition: PartitionId,
    /// The partition's stream time at each record (non-decreasing).
    pub(crate) stream_times: Vec<EventTime>,
    pub(crate) offsets: Vec<u64>,
    pub(crate) keys: Vec<Key>,
    pub(crate) times: Vec<EventTime>,
    pub(crate) values: Vec<Number>,
    /// The named fields, `stride` per record (none for a job that reads
    /// only values).
    pub(crate) fields: Vec<Field>,
    pub(crate) stride: usize,
}

impl Batch {
    /// An empty batch for `capacity` records of `stride` named fields.
    pub(crate) fn with_capacity(
        dest: u32,
        partition: PartitionId,
        capacity: usize,
        stride: usize,
    ) -> Self {
        Batch {
            dest,
            partition,
            stream_times: Vec::with_capacity(capacity),
            offsets: Vec::with_capacity(capacity),
            keys: Vec::with_capacity(capacity),
            times: Vec::with_capacity(capacity),
            values: Vec::with_capacity(capacity),
            fields: Vec::with_capacity(capacity * stride),
            stride,
        }
    }

    /// Appends a record; its named fields beyond the batch's stride are
    /// dropped (no aggregation reads them) and missing ones are null.
    #[inline]
    pub(crate) fn push(
        &mut self,
        stream_time: EventTime,
        offset: u64,
        key: Key,
        time: EventTime,
        value: Number,
        fields: Vec<Field>,
    ) {
        self.stream_times.push(stream_time);
        self.offsets.push(offset);
        self.keys.push(key);
        self.times.push(time);
        self.values.push(value);
        if self.stride > 0 {
            let n = fields.len().min(self.stride);
            self.fields.extend(fields.into_iter().take(n));
            self.fields
                .extend(std::iter::repeat_n(Field::Null, self.stride - n));
        }
    }

    /// The named fields of record `i`.
    #[inline]
    pub(crate) fn fields(&self, i: usize) -> &[Field] {
        self.fields
            .get(i * self.stride..(i + 1) * self.stride)
            .unwrap_or_default()
    }

    /// The aggregator input of record `i`.
    #[inline]
    pub(crate) fn input<I: FromRecord>(&self, i: usize) -> I {
        I::from_record(RecordView {
            value: self.values[i],
            fields: self.fields(i),
            order: (self.times[i], self.partition, self.offsets[i]),
        })
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.stream_times.len()
    }

    /// The record at `i` as an [`Event`].
    pub(crate) fn event(&self, i: usize) -> Event {
        Event {
            stream_time: self.stream_times[i],
            partition: self.partition,
            offset: self.offsets[i],
            key: self.keys[i].clone(),
            time: self.times[i],
            value: self.values[i],
            fields: self.fields(i).to_vec(),
        }
    }
}

/// What the ingest sends to the window operators.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Ingest {
    /// Records.
    Records(Batch),
    /// A record that could not be decoded, at its partition's stream time.
    Dead { at: EventTime, letter: DeadLetter },
    /// Partition `partition` reached its end (sent to every worker `dest`):
    /// an empty frontier without every partition's end is an abort, not the
    /// end of the input, and fires nothing.
    End { dest: u32, partition: PartitionId },
    /// An ingest stopped early (an error, a stop request) holding its
    /// capability at `at` (sent to every worker `dest`): the input is
    /// complete below `at` only.
    Stop { dest: u32, at: EventTime },
    /// A checkpoint cut at `at` (with [`CheckpointEvery::Records`]), sent to
    /// every worker `dest`, at a time below `at`.
    ///
    /// [`CheckpointEvery::Records`]: crate::CheckpointEvery::Records
    Cut { dest: u32, at: EventTime },
    /// A record the enrichment sends to the late output (for worker `dest`,
    /// which passes it on).
    Late { dest: u32, late: Box<LateRecord> },
}

/// What one window operator reports when it passes checkpoint cuts: its
/// share of the state, valid for every cut in `lo..=hi` (no record was
/// applied between them; a restore advances it to the cut), and how far it
/// has read each partition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CutReport {
    pub(crate) worker: u32,
    pub(crate) lo: EventTime,
    pub(crate) hi: EventTime,
    /// The postcard-encoded snapshot of this worker's state; `None`: the
    /// same as in this worker's previous report.
    pub(crate) state: Option<Vec<u8>>,
    /// Per partition: one past the largest offset applied, and the stream
    /// time there.
    pub(crate) positions: Vec<(PartitionId, u64, EventTime)>,
    /// The counters of what this worker applied.
    pub(crate) applied: Counts,
    /// Open window states and keys in the reported state.
    pub(crate) open: (u64, u64),
    /// A report for the stats log, not a checkpoint.
    pub(crate) stats: bool,
}

/// The rows one window operator produced in one activation, in canonical
/// order. A worker's successive batches continue its canonical order, so
/// the sink only merges the workers' streams.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "O: Serialize", deserialize = "O: Deserialize<'de>"))]
pub(crate) struct Rows<O> {
    pub(crate) worker: u32,
    pub(crate) rows: Vec<Row<O>>,
}

/// What the window operators send to the sink.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "O: Serialize", deserialize = "O: Deserialize<'de>"))]
pub(crate) enum Emit<O> {
    Rows(Rows<O>),
    Late(LateRecord),
    Dead {
        at: EventTime,
        letter: DeadLetter,
    },
    /// Worker `worker` saw the end of every partition and fired its last
    /// windows.
    Finished {
        worker: u32,
    },
    /// The input stopped early; worker `worker` applied everything before
    /// `at`, and nothing at or after it.
    Stopped {
        worker: u32,
        at: EventTime,
    },
    /// A window operator passed checkpoint cuts.
    Cut(CutReport),
}
