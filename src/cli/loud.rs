//! The loud defaults of `tidemark run`: dead letters without a file are
//! shown on standard error, and the summary says where they went.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use indicatif::ProgressBar;
use tidemark::engine::{Frontier, Sink, Summary};
use tidemark::sources::DeadLetter;

/// How many dead letters are shown on standard error when they have no file.
pub const SHOWN_DEAD_LETTERS: u64 = 5;

/// The most characters of a bad line shown on standard error.
const SHOWN_RAW: usize = 160;

/// Where a dead letter came from, for people: `partition P, offset O`.
pub fn location(d: &DeadLetter) -> String {
    format!("partition {}, offset {}", d.partition, d.offset)
}

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

/// Where the summary says the dead letters went.
pub struct Destinations {
    /// The dead-letter file, if any.
    pub dead_letter: Option<String>,
    /// The dead-letter echo's counts, when there is no dead-letter file.
    pub echo: Option<Arc<EchoCount>>,
}

/// The summary lines about where the dead letters went.
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
    notes
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
}
