//! The stats log (`EngineConfig::stats_log`), beside the sink on worker 0:
//! one JSON line per multiple of its interval of stream time at which what
//! was applied changed, from the window operators' reports
//! ([`CutReport`]s of their stats trackers). Each line holds what every
//! record with a stream time below its cut did, so two runs of the same
//! job write the same lines whatever the worker count or timing, apart
//! from the object `wall` (elapsed wall-clock time), which is not.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;

use serde::Serialize;
use tidemark_sources::PartitionId;
use tidemark_windows::EventTime;

use crate::event::{Applied, CutReport};

/// The content of a line before anything was applied: none is written.
const EMPTY: &str = "[0,0,0,0,0,[]]";

struct Report {
    lo: EventTime,
    hi: EventTime,
    positions: Vec<(PartitionId, u64, EventTime)>,
    applied: Applied,
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
    records: u64,
    late_dropped: u64,
    late_applied: u64,
    unassigned: u64,
    dead_letters: u64,
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
    out: std::io::BufWriter<std::fs::File>,
    path: String,
    delay: EventTime,
    reports: Vec<VecDeque<Report>>,
    /// The newest cut written.
    last: EventTime,
    /// The content of the last line written (without `at` and `wall`).
    last_content: Option<String>,
    started: std::time::Instant,
    ended: bool,
}

impl StatsLogWriter {
    /// Creates (or truncates) the log at `path`.
    pub(crate) fn create(
        path: &std::path::Path,
        workers: usize,
        delay: EventTime,
    ) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Ok(StatsLogWriter {
            out: std::io::BufWriter::new(std::fs::File::create(path)?),
            path: path.display().to_string(),
            delay,
            reports: (0..workers).map(|_| VecDeque::new()).collect(),
            last: EventTime::MIN,
            last_content: Some(EMPTY.to_owned()),
            started: std::time::Instant::now(),
            ended: false,
        })
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
        let mut positions: BTreeMap<PartitionId, (u64, EventTime)> = BTreeMap::new();
        let mut applied = Applied::default();
        for w in 0..self.reports.len() {
            let Some(r) = self.covering(w, cut) else {
                return Ok(());
            };
            for &(p, next, t) in &r.positions {
                let e = positions.entry(p).or_insert((next, t));
                e.0 = e.0.max(next);
                e.1 = e.1.max(t);
            }
            applied.records += r.applied.records;
            applied.late_dropped += r.applied.late_dropped;
            applied.late_applied += r.applied.late_applied;
            applied.unassigned += r.applied.unassigned;
            applied.dead_letters += r.applied.dead_letters;
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
            records: applied.records,
            late_dropped: applied.late_dropped,
            late_applied: applied.late_applied,
            unassigned: applied.unassigned,
            dead_letters: applied.dead_letters,
            partitions: &partitions,
            wall: Wall {
                elapsed_ms: self.started.elapsed().as_millis() as u64,
            },
        };
        let text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        // Skip a cut where nothing changed since the last line.
        let content = serde_json::to_string(&(
            &line.records,
            &line.late_dropped,
            &line.late_applied,
            &line.unassigned,
            &line.dead_letters,
            line.partitions,
        ))
        .map_err(std::io::Error::other)?;
        if at.is_some() && self.last_content.as_deref() == Some(content.as_str()) {
            return Ok(());
        }
        self.last_content = Some(content);
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")
    }
}
