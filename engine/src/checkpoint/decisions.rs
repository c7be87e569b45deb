//! Time decisions: what a followed run decided by the wall clock, recorded
//! so that a later run over the same input can make the same decisions and
//! write the same output.
//!
//! With `idle_after`, a followed partition that has had nothing new for a
//! while stops holding the frontier back. When it produces records again,
//! the frontier may have moved past its stream time: its records are then
//! taken as arriving at the frontier of that moment — the partition's
//! stream time jumps to the ingest's capability `G` — and judged against
//! the watermark there (as a stream processor judges a record from a
//! partition that was idle). That jump is the one place where timing
//! enters the results, so it is recorded as a [`Decision::Resume`]: from
//! offset `o` of partition `p`, the stream time is at least `G`. A run
//! stopped by a signal records where it stopped ([`Decision::Stop`]).
//!
//! A replay ([`EngineConfig::replay_decisions`](crate::EngineConfig::replay_decisions))
//! applies the same jumps at the same offsets and stops at the same
//! frontier, whatever its timing and worker count: its output equals the
//! live run's.
//!
//! The log is `decisions.jsonl` in the checkpoint directory, one decision
//! per line — a JSON object, a tab, and the CRC32 of the JSON as eight hex
//! digits — appended and synced as each decision is taken. A line that does
//! not end in a newline is one a crash tore, and is dropped; any other line
//! that does not read back (its checksum, its JSON) makes the log unusable,
//! as does a decision for a partition or an offset the input does not
//! have. (Lines without a checksum, as older versions wrote them, are
//! read as they are.)

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tidemark_sources::PartitionId;
use tidemark_windows::EventTime;

use super::CheckpointError;
use super::Position;

/// The log's file name in the checkpoint directory.
pub const DECISIONS_FILE: &str = "decisions.jsonl";

/// One time decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// A partition released as idle produced records again: from `offset`
    /// on, its stream time is at least `stream_time`.
    Resume {
        /// The partition.
        partition: PartitionId,
        /// The first offset read after the release.
        offset: u64,
        /// The frontier it rejoined at.
        stream_time: EventTime,
    },
    /// The run was stopped: its outputs hold the frontier steps before
    /// `at`.
    Stop {
        /// The stream time it stopped at.
        at: EventTime,
    },
}

/// The decisions to replay, by partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// Per partition, (offset, stream time) in offset order.
    pub resumes: BTreeMap<PartitionId, Vec<(u64, EventTime)>>,
    /// Where the live run stopped, if it was stopped.
    pub stop: Option<EventTime>,
}

impl Replay {
    /// Reads the decisions recorded in checkpoint directory `dir`.
    pub fn load(dir: &Path) -> Result<Replay, CheckpointError> {
        let path = dir.join(DECISIONS_FILE);
        let bytes = std::fs::read(&path).map_err(|source| CheckpointError::Io {
            action: "read the time decisions",
            path: path.clone(),
            source,
        })?;
        let bad = |line: usize, why: String| {
            CheckpointError::Encode(format!(
                "\"{}\" line {line}: {why}: the time decisions cannot be replayed",
                path.display()
            ))
        };
        let mut replay = Replay::default();
        let mut rest = bytes.as_slice();
        let mut number = 0;
        while !rest.is_empty() {
            number += 1;
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                // No newline: the line a crash tore while it was written.
                break;
            };
            let (line, after) = (&rest[..end], &rest[end + 1..]);
            rest = after;
            let line = std::str::from_utf8(line)
                .map_err(|_| bad(number, "not UTF-8".into()))?
                .trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let json = match line.rsplit_once('\t') {
                Some((json, crc)) => {
                    let stated = u32::from_str_radix(crc, 16)
                        .ok()
                        .filter(|_| crc.len() == 8)
                        .ok_or_else(|| bad(number, format!("\"{crc}\" is not a checksum")))?;
                    if crc32fast::hash(json.as_bytes()) != stated {
                        return Err(bad(number, "its checksum does not match".into()));
                    }
                    json
                }
                None => line,
            };
            let decision: Decision = serde_json::from_str(json)
                .map_err(|e| bad(number, format!("not a time decision ({e})")))?;
            match decision {
                Decision::Resume {
                    partition,
                    offset,
                    stream_time,
                } => replay
                    .resumes
                    .entry(partition)
                    .or_default()
                    .push((offset, stream_time)),
                Decision::Stop { at } => {
                    replay.stop = Some(replay.stop.map_or(at, |s: EventTime| s.min(at)))
                }
            }
        }
        for list in replay.resumes.values_mut() {
            list.sort_unstable();
        }
        Ok(replay)
    }

    /// Refuses decisions for partitions `partitions` does not hold.
    pub fn check_partitions(&self, partitions: &[PartitionId]) -> Result<(), String> {
        match self.resumes.keys().find(|p| !partitions.contains(p)) {
            Some(p) => Err(format!(
                "the time decisions name partition {p}, which the input does not have ({} partitions): they were recorded over another input",
                partitions.len()
            )),
            None => Ok(()),
        }
    }
}

/// The log a followed, checkpointed run appends its decisions to.
pub(crate) struct DecisionLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl DecisionLog {
    /// Opens the log of checkpoint directory `dir`: a run from offset 0
    /// (`resumed_at == None`) starts it afresh; a resumed run keeps the
    /// decisions before its start positions and drops the rest (they were
    /// made by the run that crashed after the checkpoint).
    pub(crate) fn open(
        dir: &Path,
        resumed_at: Option<&BTreeMap<PartitionId, Position>>,
    ) -> Result<DecisionLog, CheckpointError> {
        let path = dir.join(DECISIONS_FILE);
        let io_error = |action: &'static str| {
            let path = path.clone();
            move |source| CheckpointError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io_error("create the checkpoint directory"))?;
        let old = match resumed_at {
            None => None,
            Some(_) if !path.exists() => Some(Replay::default()),
            // The decisions before the checkpoint must be kept: a log that
            // cannot be read stops the run rather than lose them.
            Some(_) => Some(Replay::load(dir)?),
        };
        let kept = match (resumed_at, old) {
            (Some(positions), Some(old)) => {
                let mut kept = Vec::new();
                for (p, list) in old.resumes {
                    let next = positions.get(&p).map_or(0, |pos| pos.offset);
                    for (offset, stream_time) in list.into_iter().filter(|(o, _)| *o < next) {
                        kept.push(Decision::Resume {
                            partition: p,
                            offset,
                            stream_time,
                        });
                    }
                }
                kept
            }
            _ => Vec::new(),
        };
        // Rewritten whole and renamed over the old log: a crash leaves one
        // or the other.
        let tmp = dir.join(format!("{DECISIONS_FILE}.tmp"));
        let mut file = File::create(&tmp).map_err(io_error("write the time decisions"))?;
        for d in &kept {
            writeln!(file, "{}", line(d)).map_err(io_error("write the time decisions"))?;
        }
        file.sync_data()
            .map_err(io_error("write the time decisions"))?;
        std::fs::rename(&tmp, &path).map_err(io_error("write the time decisions"))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error("write the time decisions"))?;
        Ok(DecisionLog {
            path,
            file: Mutex::new(file),
        })
    }

    /// Appends and syncs one decision.
    pub(crate) fn record(&self, decision: Decision) -> io::Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| io::Error::other("decision log poisoned"))?;
        writeln!(file, "{}", line(&decision))?;
        file.sync_data()
    }

    /// The log's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// A decision's line (without its newline): the JSON, a tab, its CRC32.
fn line(d: &Decision) -> String {
    let json = serde_json::to_string(d).unwrap_or_default();
    let crc = crc32fast::hash(json.as_bytes());
    format!("{json}\t{crc:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_round_trip_and_a_resume_keeps_those_before_its_positions() {
        let dir = tempfile::tempdir().unwrap();
        let log = DecisionLog::open(dir.path(), None).unwrap();
        for (p, o, g) in [(0, 10, 5_000), (1, 3, 6_000), (0, 20, 9_000)] {
            log.record(Decision::Resume {
                partition: p,
                offset: o,
                stream_time: g,
            })
            .unwrap();
        }
        log.record(Decision::Stop { at: 12_000 }).unwrap();
        let replay = Replay::load(dir.path()).unwrap();
        assert_eq!(replay.resumes[&0], vec![(10, 5_000), (20, 9_000)]);
        assert_eq!(replay.stop, Some(12_000));
        drop(log);
        let positions = BTreeMap::from([(
            0,
            Position {
                offset: 15,
                stream_time: None,
            },
        )]);
        let _log = DecisionLog::open(dir.path(), Some(&positions)).unwrap();
        let replay = Replay::load(dir.path()).unwrap();
        assert_eq!(replay.resumes.get(&0), Some(&vec![(10, 5_000)]));
        assert_eq!(replay.resumes.get(&1), None);
        assert_eq!(replay.stop, None);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_any_other_bad_line_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DECISIONS_FILE);
        let a = line(&Decision::Resume {
            partition: 0,
            offset: 3,
            stream_time: 100,
        });
        let b = line(&Decision::Stop { at: 900 });
        std::fs::write(&path, format!("{a}\n{}", &b[..10])).unwrap();
        let replay = Replay::load(dir.path()).unwrap();
        assert_eq!(
            (replay.resumes[&0].clone(), replay.stop),
            (vec![(3, 100)], None)
        );
        // A flipped digit in a complete line: refused, naming the line.
        let flipped = a.replacen("100", "101", 1);
        std::fs::write(&path, format!("{flipped}\n{b}\n")).unwrap();
        let e = Replay::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 1: its checksum does not match"), "{e}");
        std::fs::write(&path, format!("{a}\nnot a decision\n{b}\n")).unwrap();
        let e = Replay::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 2: not a time decision"), "{e}");
        // Lines of older versions, without a checksum, still read.
        std::fs::write(&path, "{\"stop\":{\"at\":5}}\n").unwrap();
        assert_eq!(Replay::load(dir.path()).unwrap().stop, Some(5));
        let replay = Replay::load(dir.path()).unwrap();
        assert!(replay.check_partitions(&[0]).is_ok());
        std::fs::write(&path, format!("{a}\n")).unwrap();
        let replay = Replay::load(dir.path()).unwrap();
        assert!(replay.check_partitions(&[1, 2]).is_err());
    }
}
