//! The stats log (`EngineConfig::stats_log`), beside the sink on worker 0:
//! one JSON line per multiple of its interval of stream time at which what
//! was applied changed, from the window operators' reports
//! ([`CutReport`]s of their stats trackers). Each line holds what every
//! record with a stream time below its cut did, so two runs of the same
//! job write the same lines whatever the worker count or timing, apart
//! from the object `wall` (elapsed wall-clock time), which is not.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tidemark_sources::PartitionId;
use tidemark_windows::EventTime;

use crate::checkpoint::{OutputDigest, StatsLogState};
use crate::counts::{Counts, RecordCounts};
use crate::error::EngineError;
use crate::event::CutReport;
use crate::sink::json::Digesting;
use crate::sink::target::{is_special, open_file_at, Resume};

/// The content of a line before anything was applied: none is written.
const EMPTY: &str = "[0,0,0,0,0,[]]";

struct Report {
    lo: EventTime,
    hi: EventTime,
    positions: Vec<(PartitionId, u64, EventTime)>,
    applied: Counts,
}

/// One partition in a stats line.
#[derive(Serialize)]
struct PartitionLine {
    partition: PartitionId,
    next_offset: u64,
    stream_time: EventTime,
    watermark: EventTime,
}

/// What a stats line holds (`wall` last).
#[derive(Serialize)]
struct Line<'a> {
    at: Option<EventTime>,
    watermark: Option<EventTime>,
    held_by: Option<PartitionId>,
    event_time_lag_ms: Option<i64>,
    #[serde(flatten)]
    applied: RecordCounts<'a>,
    partitions: &'a [PartitionLine],
    wall: Wall,
}

/// The part of a line that depends on timing.
#[derive(Serialize)]
struct Wall {
    elapsed_ms: u64,
}

/// Collects the stats reports and writes the log.
pub(crate) struct StatsLogWriter {
    out: std::io::BufWriter<Box<dyn Write + Send>>,
    /// With checkpoints: the running digest of the log, and its file (to
    /// sync).
    durable: Option<(Arc<Mutex<OutputDigest>>, std::fs::File)>,
    path: String,
    delay: EventTime,
    every: EventTime,
    reports: Vec<VecDeque<Report>>,
    /// What was applied before this run (resumed from a checkpoint): added
    /// to every line.
    base: Counts,
    base_positions: BTreeMap<PartitionId, (u64, EventTime)>,
    /// The newest cut written.
    last: EventTime,
    /// The content of the last line written (without `at` and `wall`).
    last_content: Option<String>,
    started: std::time::Instant,
    ended: bool,
}

impl StatsLogWriter {
    /// Creates (or truncates) the log at `path`, with lines every `every`
    /// ms of stream time. With checkpoints (`tracked`), the log keeps a
    /// digest of its bytes; resuming from a checkpoint that holds the log's
    /// state (`resume`), it is cut back to that checkpoint's lines and goes
    /// on from there, as the uninterrupted run would have.
    pub(crate) fn create(
        path: &std::path::Path,
        workers: usize,
        delay: EventTime,
        every: EventTime,
        tracked: bool,
        resume: Option<&StatsLogState>,
    ) -> crate::error::Result<Self> {
        let mut writer = StatsLogWriter {
            out: std::io::BufWriter::new(Box::new(std::io::sink())),
            durable: None,
            path: path.display().to_string(),
            delay,
            every,
            reports: (0..workers).map(|_| VecDeque::new()).collect(),
            base: Counts::default(),
            base_positions: BTreeMap::new(),
            last: EventTime::MIN,
            last_content: Some(EMPTY.to_owned()),
            started: std::time::Instant::now(),
            ended: false,
        };
        let resume = resume.filter(|r| r.every == every);
        // A device or a pipe is written, never cut back.
        let tracked = tracked && !is_special(path);
        let (file, digest) = match (tracked, resume) {
            (true, Some(state)) => {
                let (file, digest) = open_file_at(path, "stats", Resume::At(Some(state.position)))?;
                writer.base = state.applied;
                writer.base_positions = state
                    .positions
                    .iter()
                    .map(|&(p, o, t)| (p, (o, t)))
                    .collect();
                writer.last = state.last;
                writer.last_content = state.last_content.clone();
                (file, Some(digest))
            }
            (true, None) => {
                let (file, digest) = open_file_at(path, "stats", Resume::Fresh)?;
                (file, Some(digest))
            }
            (false, _) => {
                let (file, _) = open_file_at(path, "stats", Resume::No)?;
                (file, None)
            }
        };
        writer.out = match digest {
            Some(digest) => {
                let sync = file.try_clone().map_err(|source| EngineError::Output {
                    what: "stats",
                    path: writer.path.clone(),
                    source,
                })?;
                writer.durable = Some((Arc::clone(&digest), sync));
                std::io::BufWriter::new(Box::new(Digesting {
                    inner: file,
                    digest,
                }))
            }
            None => std::io::BufWriter::new(Box::new(file)),
        };
        Ok(writer)
    }

    /// The log's state at checkpoint cut `cut`, its lines up to the cut
    /// written (the caller has [`advance`](Self::advance)d it past the
    /// cut and no further), made durable; `applied` and `positions` are
    /// what this run applied below the cut.
    pub(crate) fn checkpoint(
        &mut self,
        applied: &Counts,
        positions: &[(PartitionId, u64, EventTime)],
    ) -> std::io::Result<Option<StatsLogState>> {
        self.out.flush()?;
        let Some((digest, file)) = &self.durable else {
            return Ok(None);
        };
        file.sync_data()?;
        let position = digest
            .lock()
            .map_err(|_| std::io::Error::other("stats log digest poisoned"))?
            .position();
        let mut merged = self.base_positions.clone();
        for &(p, next, t) in positions {
            let e = merged.entry(p).or_insert((next, t));
            e.0 = e.0.max(next);
            e.1 = e.1.max(t);
        }
        let mut total = self.base;
        total.add(applied);
        Ok(Some(StatsLogState {
            every: self.every,
            position,
            last: self.last,
            last_content: self.last_content.clone(),
            applied: total,
            positions: merged.into_iter().map(|(p, (o, t))| (p, o, t)).collect(),
        }))
    }

    /// The log's path, for errors.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Takes in one worker's report.
    pub(crate) fn receive(&mut self, report: CutReport) {
        if let Some(q) = self.reports.get_mut(report.worker as usize) {
            q.push_back(Report {
                lo: report.lo,
                hi: report.hi,
                positions: report.positions,
                applied: report.applied,
            });
        }
    }

    fn covering(&self, worker: usize, cut: EventTime) -> Option<&Report> {
        self.reports[worker]
            .iter()
            .find(|r| r.lo <= cut && cut <= r.hi)
    }

    /// Writes a line for each cut below `frontier` (every report of such a
    /// cut has arrived) where what was applied changed; at the end of the
    /// input (`frontier` `None`, every worker finished), a last line with
    /// `at` null.
    pub(crate) fn advance(&mut self, frontier: Option<EventTime>) -> std::io::Result<()> {
        if self.ended {
            return Ok(());
        }
        let below = frontier.unwrap_or(EventTime::MAX);
        // What is applied changes only where some worker's report begins.
        let mut cuts: Vec<EventTime> = self
            .reports
            .iter()
            .flatten()
            .map(|r| r.lo)
            .filter(|&lo| lo > self.last && lo < below && lo != EventTime::MAX)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        for cut in cuts {
            if (0..self.reports.len()).any(|w| self.covering(w, cut).is_none()) {
                break;
            }
            self.write_line(Some(cut))?;
            self.last = cut;
            for q in &mut self.reports {
                while q.front().is_some_and(|r| r.hi < cut) {
                    q.pop_front();
                }
            }
        }
        if frontier.is_none()
            && (0..self.reports.len()).all(|w| self.covering(w, EventTime::MAX).is_some())
        {
            self.write_line(None)?;
            self.ended = true;
        }
        self.out.flush()
    }

    fn write_line(&mut self, at: Option<EventTime>) -> std::io::Result<()> {
        let cut = at.unwrap_or(EventTime::MAX);
        let mut positions = self.base_positions.clone();
        let mut applied = self.base;
        for w in 0..self.reports.len() {
            let Some(r) = self.covering(w, cut) else {
                return Ok(());
            };
            for &(p, next, t) in &r.positions {
                let e = positions.entry(p).or_insert((next, t));
                e.0 = e.0.max(next);
                e.1 = e.1.max(t);
            }
            applied.add(&r.applied);
        }
        let partitions: Vec<PartitionLine> = positions
            .iter()
            .map(|(&partition, &(next_offset, stream_time))| PartitionLine {
                partition,
                next_offset,
                stream_time,
                watermark: stream_time.saturating_sub(self.delay),
            })
            .collect();
        // The smallest partition watermark holds the global one (the
        // lower id on a tie); at the end, none does.
        let held = partitions
            .iter()
            .map(|p| (p.watermark, p.partition))
            .min()
            .filter(|_| at.is_some());
        let newest = partitions.iter().map(|p| p.stream_time).max();
        let watermark = held.map(|(w, _)| w);
        let line = Line {
            at,
            watermark,
            held_by: held.map(|(_, p)| p),
            event_time_lag_ms: match (newest, watermark) {
                (Some(n), Some(w)) => Some(n.saturating_sub(w)),
                _ => None,
            },
            applied: RecordCounts(&applied),
            partitions: &partitions,
            wall: Wall {
                elapsed_ms: self.started.elapsed().as_millis() as u64,
            },
        };
        let text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        // Skip a cut where nothing changed since the last line.
        // (As a flat array: counts, then the partitions.)
        let mut content: Vec<serde_json::Value> = applied
            .record_counts()
            .map(|(_, n)| serde_json::Value::from(n))
            .collect();
        content.push(serde_json::to_value(line.partitions).map_err(std::io::Error::other)?);
        let content = serde_json::to_string(&content).map_err(std::io::Error::other)?;
        if at.is_some() && self.last_content.as_deref() == Some(content.as_str()) {
            return Ok(());
        }
        self.last_content = Some(content);
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")
    }
}
