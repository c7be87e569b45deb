//! The output seam: every result row, late record and dead letter leaves
//! the engine through a [`Sink`], in canonical order, with a
//! [`commit`](Sink::commit) at the completed frontiers the engine asks it
//! to make durable.
//!
//! Built-in sinks: [`JsonLines`] (files, standard output, buffers; the
//! format of the `tidemark` command line), [`CsvRows`], [`Callback`] (a
//! closure), [`Collect`] (into a shared `Vec`), [`channel`] (a receiver
//! that iterates over rows) and [`Discard`]. [`Target`] names the usual
//! destinations and opens the JSON-lines sink for them.
//!
//! # Contract
//!
//! The engine calls [`Sink::write`] on one thread (worker 0 of process 0)
//! with items in canonical order: for results, by frontier step, then
//! phase (fired windows, retractions, new rows), then window end, start and
//! key ([`Change::canonical_cmp`](tidemark_windows::Change::canonical_cmp));
//! for late records and dead letters, by the stream time at which they were
//! found, then partition and offset. Every item written before a
//! [`commit`](Sink::commit)`(Frontier::At(t))` belongs to a frontier step
//! before `t`, and all of those steps' items have been written: what a
//! sink holds at a commit is a prefix of the output of any run of the same
//! job, whatever the number of workers, batch sizes or timing.
//! [`Frontier::Done`] is the last commit of a job whose input ended; a job
//! that stops early (an error, a stop request) ends with a commit of the
//! last frontier it completed and never writes the windows still open; the
//! dead letters it read past that frontier are written after the complete
//! part, so that no record read is dropped silently.

mod csv;
pub(crate) mod json;
mod memory;
pub mod recovery;
pub(crate) mod target;

use std::io;

use tidemark_windows::EventTime;

use crate::checkpoint::OutputPosition;

pub use self::csv::CsvRows;
pub use json::{
    format_dead, format_late, format_row, DeadJson, Encode, JsonLines, LateJson, RowJson, TimeText,
};
pub use memory::{channel, Callback, Collect, Discard, Receiver, Sender};
pub use recovery::SinkState;
pub use target::{Output, Outputs, Sinks, Target};

/// How far the output is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Frontier {
    /// Every item of the frontier steps before this stream time has been
    /// written, and no item of a later step.
    At(EventTime),
    /// The input ended: everything has been written.
    Done,
}

impl std::fmt::Display for Frontier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Frontier::At(t) => write!(f, "stream time {t}"),
            Frontier::Done => f.write_str("end of input"),
        }
    }
}

/// Where one output of a job goes. See the [module docs](self) for the
/// order and commit contract.
///
/// A sink is moved to the worker that writes, so it must be [`Send`]; its
/// methods run on a dataflow worker thread, and a slow sink slows the job
/// (that is the back-pressure). An error stops the job.
///
/// Only [`write`](Sink::write) is required; it returns an
/// [`io::Result`], as writing anywhere does:
///
/// ```
/// use std::io;
/// use tidemark_engine::{Frontier, Row, Sink};
/// use tidemark_windows::MetricValues;
///
/// /// Counts final rows, and how many were visible at each commit.
/// #[derive(Default)]
/// struct Counting {
///     rows: u64,
///     committed: Vec<u64>,
/// }
///
/// impl Sink<Row<MetricValues>> for Counting {
///     fn write(&mut self, row: &Row<MetricValues>) -> io::Result<()> {
///         self.rows += 1;
///         Ok(())
///     }
///     fn commit(&mut self, _frontier: Frontier) -> io::Result<()> {
///         self.committed.push(self.rows);
///         Ok(())
///     }
/// }
/// ```
pub trait Sink<T>: Send {
    /// Writes one item.
    fn write(&mut self, item: &T) -> io::Result<()>;

    /// Makes what has been written so far visible and, where the sink can,
    /// durable. Called at completed frontier steps (at most every
    /// [`Options::commit_interval`](crate::Options::commit_interval))
    /// and once at the end.
    fn commit(&mut self, frontier: Frontier) -> io::Result<()> {
        let _ = frontier;
        Ok(())
    }

    /// A short description for error messages (a path, `-`, `(callback)`).
    fn describe(&self) -> String {
        "(sink)".into()
    }

    /// For an output a checkpoint can resume (a file, a buffer): makes
    /// everything written so far durable (flushed and, for a file, synced)
    /// and returns its length and digest. `None` (the default) for outputs
    /// that cannot be cut back to a committed length: after a resume they
    /// receive only what follows the checkpoint.
    fn durable_position(&mut self) -> io::Result<Option<OutputPosition>> {
        Ok(None)
    }

    /// Called once, before any write, when the job takes checkpoints:
    /// with the position this sink's [`durable_position`](Sink::durable_position)
    /// returned at the checkpoint the job resumes from, or `None` on a
    /// fresh start (or when that checkpoint holds none for it). A sink that
    /// cannot be cut back (a transactional topic) uses it to skip what it
    /// already committed after that checkpoint. The default ignores it.
    fn resume(&mut self, from: Option<OutputPosition>) -> io::Result<()> {
        let _ = from;
        Ok(())
    }

    /// For a sink that recovers by a position of its own (a topic's
    /// transaction sequence, a database's transaction id) rather than by a
    /// file length: makes everything written so far durable and returns
    /// that position, of the sink's own type ([`SinkState::encode`]). A
    /// checkpoint keeps it, and a job resumed from that checkpoint hands it
    /// to [`resume_state`](Sink::resume_state). `None` (the default): the
    /// sink has none.
    fn checkpoint_state(&mut self) -> io::Result<Option<SinkState>> {
        Ok(None)
    }

    /// Called once, before any write, when the job takes checkpoints,
    /// after [`resume`](Sink::resume): with the state this sink's
    /// [`checkpoint_state`](Sink::checkpoint_state) returned at the
    /// checkpoint the job resumes from, or `None` on a fresh start (or
    /// when that checkpoint holds none for it). The default ignores it.
    fn resume_state(&mut self, state: Option<SinkState>) -> io::Result<()> {
        let _ = state;
        Ok(())
    }

    /// The job failed: drop what was written since the last successful
    /// [`commit`](Sink::commit), where the sink can (a file is cut back to
    /// its committed length, so it never ends in a torn line), and write
    /// nothing more. The default does nothing: such a sink may hold items
    /// past its last commit.
    fn abort(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T, S: Sink<T> + ?Sized> Sink<T> for Box<S> {
    fn write(&mut self, item: &T) -> io::Result<()> {
        (**self).write(item)
    }
    fn commit(&mut self, frontier: Frontier) -> io::Result<()> {
        (**self).commit(frontier)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn durable_position(&mut self) -> io::Result<Option<OutputPosition>> {
        (**self).durable_position()
    }
    fn resume(&mut self, from: Option<OutputPosition>) -> io::Result<()> {
        (**self).resume(from)
    }
    fn checkpoint_state(&mut self) -> io::Result<Option<SinkState>> {
        (**self).checkpoint_state()
    }
    fn resume_state(&mut self, state: Option<SinkState>) -> io::Result<()> {
        (**self).resume_state(state)
    }
    fn abort(&mut self) -> io::Result<()> {
        (**self).abort()
    }
}
