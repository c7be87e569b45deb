//! The loud defaults of `tidemark run`: dead letters without a file are
//! shown on standard error, a run in which too many lines were bad fails
//! ([`TooManyBad`], checked by [`BadLineWatch`] while a followed run goes and
//! from the summary at the end), and the summary names what went nowhere
//! (dead letters and late records without a file, records in no window).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::ProgressBar;
use tidemark::engine::{Frontier, Sink, Stats, Summary};
use tidemark::sources::DeadLetter;
use tidemark::spec::{BadRatio, JobWindow};
use tidemark::windows::WindowSpec;

/// How many dead letters are shown on standard error when they have no file.
pub const SHOWN_DEAD_LETTERS: u64 = 5;

/// The most characters of a bad line shown on standard error.
const SHOWN_RAW: usize = 160;

/// A followed run is judged by its share of bad lines once it has read
/// this many lines (a bounded run only at its end, so that its verdict is a
/// function of its input, not of timing).
pub const EARLY_CHECK_LINES: u64 = 100;

/// Where a dead letter came from, for people: `FILE:LINE (partition P,
/// offset O)`, or `partition P, offset O` when the source names no file.
pub fn location(d: &DeadLetter) -> String {
    match (&d.file, d.line) {
        (Some(file), Some(line)) => format!(
            "{file}:{line} (partition {}, offset {})",
            d.partition, d.offset
        ),
        _ => format!("partition {}, offset {}", d.partition, d.offset),
    }
}

/// How many dead letters [`DeadLetterEcho`] keeps for a diagnosis.
const KEPT_DEAD_LETTERS: usize = 64;

/// `text` on one line, cut to at most `limit` characters (with `...`).
pub fn shorten(text: &str, limit: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}...", &one_line[..cut]),
        None => one_line,
    }
}

/// What [`DeadLetterEcho`] did, read by the summary.
#[derive(Debug, Default)]
pub struct EchoCount {
    /// Dead letters the job wrote to the echo.
    pub written: AtomicU64,
    /// Dead letters shown on standard error.
    pub shown: AtomicU64,
    /// The first dead letters, kept for a diagnosis of an input that cannot
    /// be read again (standard input, a pipe).
    pub first: Mutex<Vec<DeadLetter>>,
}

/// The dead-letter sink of a run without `--dead-letter`: shows the first
/// [`SHOWN_DEAD_LETTERS`] on standard error (location, reason and the
/// start of the line), says once that more are not shown, and counts them.
pub struct DeadLetterEcho {
    count: Arc<EchoCount>,
    bar: Option<ProgressBar>,
}

impl DeadLetterEcho {
    /// An echo printing around `bar` (the progress bar, if any), and the
    /// counts it keeps.
    pub fn new(bar: Option<ProgressBar>) -> (DeadLetterEcho, Arc<EchoCount>) {
        let count = Arc::new(EchoCount::default());
        (
            DeadLetterEcho {
                count: Arc::clone(&count),
                bar,
            },
            count,
        )
    }

    fn print(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

impl Sink<DeadLetter> for DeadLetterEcho {
    fn write(&mut self, d: &DeadLetter) -> io::Result<()> {
        let n = self.count.written.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.count.first.lock() {
            if first.len() < KEPT_DEAD_LETTERS {
                first.push(d.clone());
            }
        }
        if n < SHOWN_DEAD_LETTERS {
            let mut text = format!("tidemark: bad line at {}: {}", location(d), d.reason);
            if !d.raw.is_empty() {
                text.push_str(&format!("\n    {}", shorten(&d.raw, SHOWN_RAW)));
            }
            self.print(&text);
            self.count.shown.fetch_add(1, Ordering::Relaxed);
        } else if n == SHOWN_DEAD_LETTERS {
            self.print("tidemark: more bad lines are not shown; --dead-letter FILE keeps them all");
        }
        Ok(())
    }

    fn commit(&mut self, _frontier: Frontier) -> io::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "(standard error)".into()
    }
}

/// A run whose share of bad lines was more than `--max-bad-ratio`.
#[derive(Debug, thiserror::Error)]
#[error(
    "{bad} of {read} lines read ({percent}) could not be decoded, more than --max-bad-ratio {limit} allows{stopped}",
    percent = percent(*bad, *read),
    stopped = if *stopped_early {
        format!("; the run was stopped, its outputs hold every result the watermark completed ({watermark})")
    } else {
        String::new()
    }
)]
pub struct TooManyBad {
    /// Bad lines.
    pub bad: u64,
    /// Lines read, good and bad.
    pub read: u64,
    /// The limit.
    pub limit: BadRatio,
    /// Whether the run was stopped for it before its input ended.
    pub stopped_early: bool,
    /// Where the outputs are complete, for people.
    pub watermark: String,
    /// The likely cause and its remedy.
    pub hint: String,
}

fn percent(part: u64, whole: u64) -> String {
    let p = 100.0 * part as f64 / whole.max(1) as f64;
    if p == 100.0 || p == 0.0 || p >= 10.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Watches the counters of a followed run and stops it once it has read
/// [`EARLY_CHECK_LINES`] lines of which more than the limit were bad.
pub struct BadLineWatch {
    done: Arc<AtomicBool>,
    tripped: Arc<Mutex<Option<(u64, u64)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BadLineWatch {
    /// Starts watching `stats` (only when `follow`; otherwise a watch that
    /// never trips).
    pub fn start(stats: Arc<Stats>, limit: BadRatio, follow: bool) -> BadLineWatch {
        let done = Arc::new(AtomicBool::new(false));
        let tripped: Arc<Mutex<Option<(u64, u64)>>> = Arc::default();
        let thread = follow.then(|| {
            let (done, tripped) = (Arc::clone(&done), Arc::clone(&tripped));
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let bad = stats.dead_letters.load(Ordering::Relaxed);
                    let read = bad + stats.records.load(Ordering::Relaxed);
                    if read >= EARLY_CHECK_LINES && limit.exceeded(bad, read) {
                        if let Ok(mut t) = tripped.lock() {
                            *t = Some((bad, read));
                        }
                        eprintln!(
                            "tidemark: {bad} of the first {read} lines read could not be decoded (more than --max-bad-ratio {limit}): stopping"
                        );
                        stats.request_stop();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        });
        BadLineWatch {
            done,
            tripped,
            thread,
        }
    }

    /// Stops watching; the (bad, read) counts if the watch stopped the run.
    pub fn finish(mut self) -> Option<(u64, u64)> {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.tripped.lock().ok().and_then(|t| *t)
    }
}

/// Where the summary says the dead letters and late records went.
pub struct Destinations {
    /// The dead-letter file, if any.
    pub dead_letter: Option<String>,
    /// The late file, if any.
    pub late: Option<String>,
    /// The dead-letter echo's counts, when there is no dead-letter file.
    pub echo: Option<Arc<EchoCount>>,
    /// The job's window.
    pub window: Option<JobWindow>,
}

/// The summary lines about what went nowhere or needs a look: dead letters
/// (with or without a file), late records without a file, records in no
/// window.
pub fn summary_notes(s: &Summary, to: &Destinations) -> Vec<String> {
    let mut notes = Vec::new();
    if s.dead_letters > 0 {
        let lines = if s.dead_letters == 1 { "line" } else { "lines" };
        notes.push(match (&to.dead_letter, &to.echo) {
            (Some(file), _) => format!(
                "dead letters: {} {lines} could not be decoded, written to {file}",
                s.dead_letters
            ),
            (None, echo) => {
                let shown = echo
                    .as_ref()
                    .map_or(0, |e| e.shown.load(Ordering::Relaxed));
                let shown = match shown {
                    0 => "none written yet: the watermark has not passed them".to_owned(),
                    n if n == s.dead_letters => "shown above".to_owned(),
                    n => format!("the first {n} shown above"),
                };
                format!(
                    "dead letters: {} {lines} could not be decoded ({shown}); --dead-letter FILE keeps them",
                    s.dead_letters
                )
            }
        });
    }
    if s.late_dropped > 0 && to.late.is_none() {
        notes.push(format!(
            "late records: {} dropped as too late for their window (see --delay and --lateness); --late FILE keeps them",
            s.late_dropped
        ));
    }
    if s.unassigned > 0 {
        let why = match to.window.map(|w| (w, w.spec())) {
            Some((w, WindowSpec::Sliding { size, slide, .. })) if slide > size => format!(
                "{w} leaves gaps: each {} slide, windows cover only {}, so a record between two windows is in none; a slide at most the size places every record",
                duration(slide),
                duration(size)
            ),
            _ => "no window could be formed for their event time; they are in the dead letters"
                .to_owned(),
        };
        notes.push(format!("records in no window: {} ({why})", s.unassigned));
    }
    notes
}

fn duration(ms: i64) -> String {
    tidemark::spec::DurationMs::new(ms).map_or_else(|_| format!("{ms}ms"), |d| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_cuts_on_characters_and_flattens_lines() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("äöüßé", 3), "äöü...");
        assert_eq!(shorten("a\tb", 5), "a b");
    }

    #[test]
    fn percent_is_short() {
        assert_eq!(percent(3, 3), "100%");
        assert_eq!(percent(1, 3), "33%");
        assert_eq!(percent(1, 200), "0.5%");
    }

    #[test]
    fn gaps_of_sliding_windows_are_explained() {
        let s = Summary {
            counts: tidemark::engine::Counts {
                unassigned: 4,
                ..Default::default()
            },
            ..Summary::default()
        };
        let to = Destinations {
            dead_letter: None,
            late: None,
            echo: None,
            window: Some("sliding:1s/2s".parse().unwrap()),
        };
        let notes = summary_notes(&s, &to);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("records in no window: 4 (sliding:1s/2s leaves gaps"));
    }
}
