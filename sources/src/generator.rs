//! [`GeneratorSource`]: a seeded, deterministic workload generator with the
//! shape of the project's `gen.py`, and [`write_partition_files`] to store
//! its output as partition files (what `tidemark gen` writes).
//!
//! # What it produces
//!
//! Keys are `k0..k{keys-1}`. Key `kK` lives in partition
//! `crc32("kK") % partitions` (zlib's CRC-32, as `gen.py`), so one key is in
//! one partition and each partition generates only its own keys.
//!
//! The `events` are split between partitions in proportion to the weight of
//! their keys (1 per key, or `1 / (K + 1)^skew` with `skew > 0`), rounding
//! by largest remainder; partition `p` gets `n_p` events, at offsets
//! `0..n_p`. Event `j` of partition `p` is computed on its own, from the
//! hash `h = splitmix64(splitmix64(splitmix64(seed) ^ p) ^ j)` and four
//! draws `d1..d4 = splitmix64(h + 1..4)`:
//!
//! - its arrival index in the whole stream is `i = ⌊j · events / n_p⌋`
//!   (the partitions' events are spread evenly over the same span), and its
//!   arrival time `base = start + shift + ⌊i / rate⌋`, where `shift =
//!   gap_ms · ⌊i / gap_every⌋` (no gaps when `gap_every` is 0): every
//!   `gap_every` arrivals the whole stream goes idle for `gap_ms`;
//! - its delay is, with probability `late_frac` (`d1`), `disorder + 1 +
//!   uniform[0, max(1, late_extra))`, else drawn (`d2`) from
//!   `disorder_shape` with scale `disorder`: `uniform[0, disorder]` by
//!   default, or exponential, or Pareto ([`DisorderShape`]);
//!   its event time is `base − delay`;
//! - its key is drawn (`d3`) among the partition's keys, uniformly or by
//!   their zipf weight;
//! - its value is `Value::Int(uniform[1, 100])` (`d4`).
//!
//! So any offset of any partition is computed in O(1) (plus a binary search
//! for skewed keys), partitions are independent of each other, and the same
//! configuration always yields the same records. With one partition the
//! stream has exactly `gen.py`'s shape (its numbers differ: another RNG).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::computed;
use crate::decode::Format;
use crate::record::{
    Decoded, Key, Offset, PartitionId, Record, Value, MAX_EVENT_TIME, MIN_EVENT_TIME,
};
use crate::source::{PartitionReader, Source, SourceError};

/// The most partitions a generator may have.
pub const MAX_PARTITIONS: u32 = 1 << 16;

/// The knobs of the generator, with `gen.py`'s names and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// How many events in all partitions together (default 1000).
    pub events: u64,
    /// How many distinct keys, `k0..k{keys-1}` (default 10).
    pub keys: u32,
    /// How many partitions (default 1).
    pub partitions: u32,
    /// Arrivals per millisecond, over the whole stream (default 1.0).
    pub rate: f64,
    /// The first arrival time, epoch ms (default 1 700 000 000 000).
    pub start: i64,
    /// The scale of an in-order event's delay, ms (default 0): its largest
    /// value for [`DisorderShape::Uniform`], its mean for `Exponential`,
    /// the Pareto scale for `Pareto`.
    pub disorder: i64,
    /// How in-order delays are distributed (default uniform).
    pub disorder_shape: DisorderShape,
    /// The fraction of events that are late stragglers (default 0).
    pub late_frac: f64,
    /// How far beyond `disorder` a straggler may be, ms (default 0).
    pub late_extra: i64,
    /// 0: keys are uniform; above 0: zipf exponent (default 0).
    pub skew: f64,
    /// Insert an idle gap every this many arrivals; 0: never (default 0).
    pub gap_every: u64,
    /// The length of each idle gap, ms (default 0).
    pub gap_ms: i64,
    /// The seed (default 1).
    pub seed: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            events: 1000,
            keys: 10,
            partitions: 1,
            rate: 1.0,
            start: 1_700_000_000_000,
            disorder: 0,
            disorder_shape: DisorderShape::Uniform,
            late_frac: 0.0,
            late_extra: 0,
            skew: 0.0,
            gap_every: 0,
            gap_ms: 0,
            seed: 1,
        }
    }
}

/// How the delays of in-order events are distributed, with scale `d` =
/// [`GeneratorConfig::disorder`]. Written `uniform`, `exp` or
/// `pareto:ALPHA`.
///
/// ```
/// use tidemark_sources::generator::DisorderShape;
///
/// assert_eq!("pareto:1.5".parse::<DisorderShape>().unwrap(), DisorderShape::Pareto(1.5));
/// assert_eq!(DisorderShape::Exponential.to_string(), "exp");
/// assert!("pareto:0".parse::<DisorderShape>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DisorderShape {
    /// Uniform in `[0, d]`.
    #[default]
    Uniform,
    /// Exponential with mean `d`, cut at `20 d`.
    Exponential,
    /// Pareto (Lomax) with scale `d` and tail index `ALPHA`: `d ((1 −
    /// u)^(−1/ALPHA) − 1)`, heavy-tailed, cut at `1000 d`.
    Pareto(f64),
}

impl DisorderShape {
    /// The largest delay of scale `d`.
    fn max_delay(self, d: i64) -> i64 {
        match self {
            DisorderShape::Uniform => d,
            DisorderShape::Exponential => d.saturating_mul(20),
            DisorderShape::Pareto(_) => d.saturating_mul(1000),
        }
    }

    /// The delay of scale `d` for the uniform draw `u` in `[0, 1)`.
    fn delay(self, d: i64, bits: u64) -> i64 {
        let u = unit(bits);
        let x = match self {
            DisorderShape::Uniform => return below(bits, d as u64 + 1) as i64,
            DisorderShape::Exponential => -(1.0 - u).ln() * d as f64,
            DisorderShape::Pareto(alpha) => d as f64 * ((1.0 - u).powf(-1.0 / alpha) - 1.0),
        };
        (x.round() as i64).clamp(0, self.max_delay(d))
    }
}

impl std::str::FromStr for DisorderShape {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "uniform" => Ok(DisorderShape::Uniform),
            "exp" | "exponential" => Ok(DisorderShape::Exponential),
            other => {
                let alpha = other
                    .strip_prefix("pareto:")
                    .and_then(|a| a.parse::<f64>().ok())
                    .ok_or_else(|| {
                        format!(
                            "invalid disorder shape \"{other}\": expected uniform, exp or pareto:ALPHA (e.g. pareto:1.5)"
                        )
                    })?;
                if !(alpha.is_finite() && alpha > 0.0) {
                    return Err(format!(
                        "invalid disorder shape \"{other}\": the Pareto tail index must be above 0"
                    ));
                }
                Ok(DisorderShape::Pareto(alpha))
            }
        }
    }
}

impl std::fmt::Display for DisorderShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DisorderShape::Uniform => f.write_str("uniform"),
            DisorderShape::Exponential => f.write_str("exp"),
            DisorderShape::Pareto(alpha) => write!(f, "pareto:{alpha}"),
        }
    }
}

impl TryFrom<String> for DisorderShape {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<DisorderShape> for String {
    fn from(s: DisorderShape) -> String {
        s.to_string()
    }
}

impl GeneratorConfig {
    fn validate(&self) -> Result<(), String> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(format!("partitions must be between 1 and {MAX_PARTITIONS}"));
        }
        if self.events > 0 && self.keys == 0 {
            return Err("keys must be greater than 0".to_owned());
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err("rate must be a positive number".to_owned());
        }
        if !(0.0..=1.0).contains(&self.late_frac) {
            return Err("late_frac must be between 0 and 1".to_owned());
        }
        if !(self.skew.is_finite() && self.skew >= 0.0) {
            return Err("skew must be 0 or a positive number".to_owned());
        }
        if self.disorder < 0 || self.late_extra < 0 || self.gap_ms < 0 {
            return Err("disorder, late_extra and gap_ms must not be negative".to_owned());
        }
        // The event times must stay in the accepted range.
        let last = self.events.saturating_sub(1);
        let gaps = last.checked_div(self.gap_every).unwrap_or(0);
        let latest = self.start as f64
            + gaps as f64 * self.gap_ms as f64
            + (last as f64 / self.rate).floor();
        let earliest = self.start as i128
            - self.disorder_shape.max_delay(self.disorder) as i128
            - self.disorder as i128
            - self.late_extra.max(1) as i128
            - 1;
        if latest > MAX_EVENT_TIME as f64 || earliest < MIN_EVENT_TIME as i128 {
            return Err("the configuration yields event times outside ±2^53 ms".to_owned());
        }
        Ok(())
    }
}

/// zlib's CRC-32 (as Python's `zlib.crc32`).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform integer in `0..n` from 64 random bits.
fn below(bits: u64, n: u64) -> u64 {
    ((u128::from(bits) * u128::from(n)) >> 64) as u64
}

/// A uniform float in `[0, 1)` from 64 random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// One partition's keys and how its events are drawn.
#[derive(Debug)]
struct PartitionPlan {
    /// Key names, e.g. `k7`.
    keys: Vec<Key>,
    /// Cumulative zipf weights of `keys` (empty when keys are uniform).
    cumulative: Vec<f64>,
    /// How many events the partition holds.
    events: u64,
}

#[derive(Debug)]
struct Plan {
    config: GeneratorConfig,
    partitions: Vec<PartitionPlan>,
    seed_hash: u64,
}

impl Plan {
    /// The arrival index in the whole stream of event `offset` of a
    /// partition: `⌊offset · events / n_p⌋`.
    #[inline]
    fn arrival(&self, plan: &PartitionPlan, offset: Offset) -> u64 {
        match offset.checked_mul(self.config.events) {
            // The common case in 64 bits (a 128-bit division costs more).
            Some(product) => product / plan.events.max(1),
            None => {
                (u128::from(offset) * u128::from(self.config.events)
                    / u128::from(plan.events.max(1))) as u64
            }
        }
    }

    fn new(config: GeneratorConfig) -> Self {
        let count = config.partitions as usize;
        let mut partitions: Vec<PartitionPlan> = (0..count)
            .map(|_| PartitionPlan {
                keys: Vec::new(),
                cumulative: Vec::new(),
                events: 0,
            })
            .collect();
        let mut weights = vec![0.0f64; count];
        for k in 0..config.keys {
            let key = compact_str::format_compact!("k{k}");
            let p = (crc32(key.as_bytes()) % config.partitions) as usize;
            let weight = if config.skew > 0.0 {
                1.0 / f64::from(k + 1).powf(config.skew)
            } else {
                1.0
            };
            if let (Some(plan), Some(total)) = (partitions.get_mut(p), weights.get_mut(p)) {
                plan.keys.push(key);
                *total += weight;
                if config.skew > 0.0 {
                    plan.cumulative.push(*total);
                }
            }
        }
        // Split the events by weight, largest remainder first.
        let all: f64 = weights.iter().sum();
        if all > 0.0 {
            let quotas: Vec<f64> = weights
                .iter()
                .map(|w| config.events as f64 * w / all)
                .collect();
            let mut given = 0;
            for (plan, quota) in partitions.iter_mut().zip(&quotas) {
                plan.events = quota.floor() as u64;
                given += plan.events;
            }
            let mut order: Vec<usize> = (0..count)
                .filter(|&p| weights.get(p).is_some_and(|w| *w > 0.0))
                .collect();
            let fraction = |p: usize| quotas.get(p).map_or(0.0, |q| q - q.floor());
            order.sort_by(|&a, &b| fraction(b).total_cmp(&fraction(a)).then(a.cmp(&b)));
            for p in order
                .into_iter()
                .cycle()
                .take(config.events.saturating_sub(given) as usize)
            {
                if let Some(plan) = partitions.get_mut(p) {
                    plan.events += 1;
                }
            }
        }
        Plan {
            seed_hash: splitmix64(config.seed),
            config,
            partitions,
        }
    }

    /// Event `offset` of `partition`, which must exist.
    fn event(&self, partition: PartitionId, plan: &PartitionPlan, offset: Offset) -> Record {
        let c = &self.config;
        let h = splitmix64(splitmix64(self.seed_hash ^ u64::from(partition)) ^ offset);
        let draw = |n: u64| splitmix64(h.wrapping_add(n));
        let arrival = self.arrival(plan, offset);
        let shift = arrival
            .checked_div(c.gap_every)
            .map_or(0, |gaps| (gaps as i64).saturating_mul(c.gap_ms));
        let base = c.start + shift + (arrival as f64 / c.rate) as i64;
        let delay = if c.late_frac > 0.0 && unit(draw(1)) < c.late_frac {
            c.disorder + 1 + below(draw(2), c.late_extra.max(1) as u64) as i64
        } else if c.disorder > 0 {
            c.disorder_shape.delay(c.disorder, draw(2))
        } else {
            0
        };
        let index = if plan.cumulative.is_empty() {
            below(draw(3), plan.keys.len() as u64) as usize
        } else {
            let total = plan.cumulative.last().copied().unwrap_or(0.0);
            let r = unit(draw(3)) * total;
            plan.cumulative.partition_point(|&w| w < r)
        };
        let key = plan
            .keys
            .get(index.min(plan.keys.len().saturating_sub(1)))
            .cloned()
            .unwrap_or_default();
        Record {
            partition,
            offset,
            key,
            event_time: base - delay,
            value: Value::Int(1 + below(draw(4), 100) as i64),
            fields: Vec::new(),
        }
    }
}

/// A deterministic workload; see the [module docs](self) for exactly what
/// it yields. Bounded: each partition ends with [`ReadStatus::End`](crate::ReadStatus::End).
#[derive(Clone, Debug)]
pub struct GeneratorSource {
    plan: Arc<Plan>,
}

impl GeneratorSource {
    /// A generator for `config`, or [`SourceError::InvalidConfig`] when a
    /// knob is out of range (no partitions, a non-positive rate, …).
    pub fn new(config: GeneratorConfig) -> Result<Self, SourceError> {
        config.validate().map_err(SourceError::InvalidConfig)?;
        Ok(GeneratorSource {
            plan: Arc::new(Plan::new(config)),
        })
    }

    /// The configuration this generator was built from.
    pub fn config(&self) -> &GeneratorConfig {
        &self.plan.config
    }

    /// How many events partition `partition` holds.
    pub fn len(&self, partition: PartitionId) -> Option<u64> {
        self.plan
            .partitions
            .get(partition as usize)
            .map(|p| p.events)
    }

    /// Event `offset` of `partition`, if it exists.
    pub fn event(&self, partition: PartitionId, offset: Offset) -> Option<Record> {
        let plan = self.plan.partitions.get(partition as usize)?;
        (offset < plan.events).then(|| self.plan.event(partition, plan, offset))
    }

    /// The arrival index in the whole stream (`0..events`) of event
    /// `offset` of `partition`, if it exists (see the [module docs](self)).
    pub fn arrival(&self, partition: PartitionId, offset: Offset) -> Option<u64> {
        let plan = self.plan.partitions.get(partition as usize)?;
        (offset < plan.events).then(|| self.plan.arrival(plan, offset))
    }

    /// This generator in real time: see [`RealTimeGenerator`].
    pub fn real_time(self, per_second: f64) -> Result<RealTimeGenerator, SourceError> {
        RealTimeGenerator::new(self, per_second)
    }
}

/// A [`GeneratorSource`] that releases each event at its arrival time in
/// real time: the event with arrival index `i` becomes readable
/// `i / per_second` seconds after the first read of any partition. Before
/// that its partition's reader returns
/// [`ReadStatus::CaughtUp`](crate::ReadStatus::CaughtUp), as a followed
/// log that has not grown yet; after its last event it ends. The records
/// are the generator's, so only the timing differs.
#[derive(Clone, Debug)]
pub struct RealTimeGenerator {
    inner: GeneratorSource,
    per_second: f64,
    start: Arc<std::sync::OnceLock<std::time::Instant>>,
}

impl RealTimeGenerator {
    /// Releases `inner`'s events at `per_second` events per second of wall
    /// clock over all partitions; [`SourceError::InvalidConfig`] unless
    /// that is a positive, finite rate.
    pub fn new(inner: GeneratorSource, per_second: f64) -> Result<Self, SourceError> {
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(SourceError::InvalidConfig(format!(
                "a real-time rate must be a positive number of events per second, not {per_second}"
            )));
        }
        Ok(RealTimeGenerator {
            inner,
            per_second,
            start: Arc::new(std::sync::OnceLock::new()),
        })
    }

    /// The generator whose events this releases.
    pub fn generator(&self) -> &GeneratorSource {
        &self.inner
    }

    /// When the first read happened (time 0 of the release schedule).
    pub fn started(&self) -> Option<std::time::Instant> {
        self.start.get().copied()
    }

    /// How long after [`started`](Self::started) event `offset` of
    /// `partition` is released.
    pub fn release_after(
        &self,
        partition: PartitionId,
        offset: Offset,
    ) -> Option<std::time::Duration> {
        let i = self.inner.arrival(partition, offset)?;
        Some(std::time::Duration::from_secs_f64(
            i as f64 / self.per_second,
        ))
    }
}

impl Source for RealTimeGenerator {
    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
        self.inner.partitions()
    }

    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let len = self
            .inner
            .len(partition)
            .ok_or(SourceError::UnknownPartition {
                partition,
                count: self.inner.config().partitions,
            })?;
        if from > len {
            return Err(SourceError::OffsetOutOfRange {
                partition,
                offset: from,
                end: len,
            });
        }
        Ok(Box::new(RealTimeReader {
            source: self.clone(),
            partition,
            next: from,
            len,
        }))
    }

    fn describe(&self) -> String {
        format!(
            "{} in real time at {} events/s",
            self.inner.describe(),
            self.per_second
        )
    }
}

struct RealTimeReader {
    source: RealTimeGenerator,
    partition: PartitionId,
    next: Offset,
    len: u64,
}

impl PartitionReader for RealTimeReader {
    fn read(
        &mut self,
        max: usize,
        out: &mut Vec<Decoded>,
    ) -> Result<crate::ReadStatus, SourceError> {
        let start = *self.source.start.get_or_init(std::time::Instant::now);
        // Every arrival index at or below this is released.
        let due = start.elapsed().as_secs_f64() * self.source.per_second;
        let gen = &self.source.inner;
        let mut n = 0;
        while n < max && self.next < self.len {
            match gen.arrival(self.partition, self.next) {
                Some(i) if i as f64 <= due => {}
                _ => break,
            }
            if let Some(record) = gen.event(self.partition, self.next) {
                out.push(Ok(record));
            }
            self.next += 1;
            n += 1;
        }
        Ok(if self.next >= self.len {
            crate::ReadStatus::End
        } else if n == max {
            crate::ReadStatus::More
        } else {
            crate::ReadStatus::CaughtUp
        })
    }

    fn position(&self) -> Offset {
        self.next
    }
}

impl computed::Computed for Plan {
    fn partition_count(&self) -> u32 {
        self.config.partitions
    }

    fn len(&self, partition: PartitionId) -> Option<u64> {
        self.partitions.get(partition as usize).map(|p| p.events)
    }

    fn fill(&self, partition: PartitionId, offsets: Range<Offset>, out: &mut Vec<Decoded>) {
        if let Some(plan) = self.partitions.get(partition as usize) {
            out.extend(offsets.map(|offset| Ok(self.event(partition, plan, offset))));
        }
    }
}

impl Source for GeneratorSource {
    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
        Ok((0..self.plan.config.partitions).collect())
    }

    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        computed::open(&self.plan, partition, from)
    }

    fn describe(&self) -> String {
        format!(
            "generator {}",
            serde_json::to_string(&self.plan.config).unwrap_or_default()
        )
    }
}

/// What [`write_partition_files`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenFiles {
    /// The partition files, in partition order.
    pub files: Vec<PathBuf>,
    /// How many events each file holds.
    pub events: Vec<u64>,
}

/// The file name of partition `partition`: `part-00000.jsonl`, ….
pub fn partition_file_name(partition: PartitionId, format: Format) -> String {
    format!("part-{partition:05}.{format}")
}

/// Writes every partition of `source` into `dir` (created if needed), one
/// file per partition named by [`partition_file_name`], each as
/// [`GeneratorSource::write_partition`] renders it. A directory written
/// this way reads back through a [`FileSource`](crate::FileSource) as the
/// same records (for CSV, map the fields by name with a header, or as
/// columns `2`, `3`, `4` without one).
pub fn write_partition_files(
    source: &GeneratorSource,
    dir: &Path,
    format: Format,
    header: bool,
) -> Result<WrittenFiles, SourceError> {
    std::fs::create_dir_all(dir).map_err(|e| SourceError::WritePartition {
        path: dir.to_owned(),
        source: e,
    })?;
    let mut written = WrittenFiles {
        files: Vec::new(),
        events: Vec::new(),
    };
    for partition in 0..source.plan.config.partitions {
        let path = dir.join(partition_file_name(partition, format));
        let write_error = |e| SourceError::WritePartition {
            path: path.clone(),
            source: e,
        };
        let mut out = BufWriter::with_capacity(1 << 16, File::create(&path).map_err(write_error)?);
        let events = source
            .write_partition(partition, format, header, &mut out)
            .map_err(write_error)?;
        out.flush().map_err(write_error)?;
        written.files.push(path);
        written.events.push(events);
    }
    Ok(written)
}

impl GeneratorSource {
    /// Writes partition `partition` to `out` with the fields `partition,
    /// offset, key, ts, value` — one JSON object per line, or one CSV row per
    /// line (after a header line when `header`) — and returns how many
    /// events it wrote (0 for a partition that does not exist).
    pub fn write_partition(
        &self,
        partition: PartitionId,
        format: Format,
        header: bool,
        out: &mut impl Write,
    ) -> std::io::Result<u64> {
        let Some(plan) = self.plan.partitions.get(partition as usize) else {
            return Ok(0);
        };
        if format == Format::Csv && header {
            out.write_all(b"partition,offset,key,ts,value\n")?;
        }
        for offset in 0..plan.events {
            let r = self.plan.event(partition, plan, offset);
            let value = match r.value {
                Value::Int(v) => v,
                Value::Float(f) => f as i64,
            };
            match format {
                Format::Jsonl => writeln!(
                    out,
                    r#"{{"partition":{},"offset":{},"key":"{}","ts":{},"value":{}}}"#,
                    r.partition, r.offset, r.key, r.event_time, value
                )?,
                Format::Csv => writeln!(
                    out,
                    "{},{},{},{},{}",
                    r.partition, r.offset, r.key, r.event_time, value
                )?,
            }
        }
        Ok(plan.events)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn disorder_shapes_have_their_mean_and_tail() {
        let delays = |shape: DisorderShape| -> Vec<i64> {
            let config = GeneratorConfig {
                events: 20_000,
                rate: 0.01,
                disorder: 100,
                disorder_shape: shape,
                ..GeneratorConfig::default()
            };
            let source = GeneratorSource::new(config.clone()).unwrap();
            let plan = &source.plan;
            (0..config.events)
                .map(|o| {
                    let r = plan.event(0, &plan.partitions[0], o);
                    let arrival = config.start + (o as f64 / config.rate) as i64;
                    arrival - r.event_time
                })
                .collect()
        };
        let mean = |d: &[i64]| d.iter().sum::<i64>() as f64 / d.len() as f64;
        let uniform = delays(DisorderShape::Uniform);
        assert!(uniform.iter().all(|&d| (0..=100).contains(&d)));
        assert!((mean(&uniform) - 50.0).abs() < 2.0, "{}", mean(&uniform));
        let exp = delays(DisorderShape::Exponential);
        assert!(exp.iter().all(|&d| (0..=2_000).contains(&d)));
        assert!((mean(&exp) - 100.0).abs() < 5.0, "{}", mean(&exp));
        assert!(
            exp.iter().filter(|&&d| d > 300).count() > 500,
            "e^-3 of the draws are beyond 3 means"
        );
        let pareto = delays(DisorderShape::Pareto(1.5));
        assert!(pareto.iter().all(|&d| (0..=100_000).contains(&d)));
        // Heavy-tailed: P(X > 10 d) = 11^-1.5, about 2.7 %.
        let beyond = pareto.iter().filter(|&&d| d > 1_000).count() as f64 / 20_000.0;
        assert!((beyond - 0.0274).abs() < 0.006, "{beyond}");
    }
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        // zlib.crc32(b"k0"), zlib.crc32(b"123456789")
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn events_are_split_exactly() {
        for (events, keys, partitions, skew) in
            [(1000, 10, 3, 0.0), (999, 7, 4, 1.2), (5, 100, 8, 0.0)]
        {
            let config = GeneratorConfig {
                events,
                keys,
                partitions,
                skew,
                ..GeneratorConfig::default()
            };
            let source = GeneratorSource::new(config).unwrap();
            let total: u64 = (0..partitions).map(|p| source.len(p).unwrap()).sum();
            assert_eq!(total, events);
        }
    }

    #[test]
    fn real_time_releases_the_same_records_no_earlier_than_their_arrival() {
        let config = GeneratorConfig {
            events: 3_000,
            partitions: 3,
            ..GeneratorConfig::default()
        };
        let gen = GeneratorSource::new(config).unwrap();
        // 20 000 events/s: the whole stream in 150 ms.
        let paced = gen.clone().real_time(20_000.0).unwrap();
        assert!(gen.clone().real_time(0.0).is_err());
        assert!(gen.clone().real_time(f64::NAN).is_err());
        let mut readers: Vec<_> = (0..3).map(|p| paced.open(p, 0).unwrap()).collect();
        let mut got: Vec<Vec<Record>> = vec![Vec::new(); 3];
        let mut ended = [false; 3];
        let mut caught_up = 0;
        while !ended.iter().all(|e| *e) {
            for (p, reader) in readers.iter_mut().enumerate() {
                if ended[p] {
                    continue;
                }
                let mut out = Vec::new();
                let status = reader.read(64, &mut out).unwrap();
                let now = paced.started().unwrap().elapsed();
                for d in out {
                    let r = d.unwrap();
                    let due = paced.release_after(p as u32, r.offset).unwrap();
                    assert!(due <= now, "released early: {r:?} due {due:?} at {now:?}");
                    got[p].push(r);
                }
                match status {
                    crate::ReadStatus::End => ended[p] = true,
                    crate::ReadStatus::CaughtUp => caught_up += 1,
                    crate::ReadStatus::More => {}
                }
            }
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
        assert!(caught_up > 0, "a paced reader waits for its events");
        for (p, records) in got.iter().enumerate() {
            let p = p as u32;
            let want: Vec<Record> = (0..gen.len(p).unwrap())
                .map(|o| gen.event(p, o).unwrap())
                .collect();
            assert_eq!(records, &want);
        }
        assert!(matches!(
            paced.open(0, gen.len(0).unwrap() + 1),
            Err(SourceError::OffsetOutOfRange { .. })
        ));
    }
}
