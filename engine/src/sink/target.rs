//! Named destinations ([`Target`]: standard output, a file, a buffer,
//! nowhere) and the three outputs of a job ([`Sinks`], or [`Outputs`] when
//! all three are targets).

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tidemark_sources::DeadLetter;

use super::json::{DeadJson, Encode, JsonLines, LateJson, RowJson};
use super::memory::Discard;
use super::Sink;
use crate::aggregator::JobAggregator;
use crate::error::{EngineError, Result};
use crate::event::{LateRecord, Row};

/// Where one output goes, as JSON lines.
#[derive(Clone, Debug, Default)]
pub enum Target {
    /// Nowhere.
    #[default]
    Discard,
    /// The process's standard output.
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
    /// An in-memory buffer (for library users and tests).
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Target {
    /// A new shared in-memory buffer target and a handle to read it.
    pub fn buffer() -> (Target, Arc<Mutex<Vec<u8>>>) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        (Target::Buffer(Arc::clone(&buf)), buf)
    }

    /// How error messages name it.
    pub fn describe(&self) -> String {
        match self {
            Target::Discard => "(discarded)".into(),
            Target::Stdout => "-".into(),
            Target::File(p) => p.display().to_string(),
            Target::Buffer(_) => "(buffer)".into(),
        }
    }

    /// Opens the JSON-lines sink of this target, with `encoder`; `what`
    /// names the output in errors.
    pub fn open<T: 'static, E: Encode<T> + 'static>(
        &self,
        encoder: E,
        what: &'static str,
    ) -> Result<Box<dyn Sink<T>>> {
        let out: Box<dyn Write + Send> = match self {
            Target::Discard => return Ok(Box::new(Discard)),
            Target::Stdout => Box::new(io::stdout()),
            Target::File(path) => {
                let fail = |path: String, source| EngineError::Output { what, path, source };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| fail(dir.display().to_string(), e))?;
                }
                Box::new(File::create(path).map_err(|e| fail(path.display().to_string(), e))?)
            }
            Target::Buffer(buf) => Box::new(SharedBuffer(Arc::clone(buf))),
        };
        Ok(Box::new(JsonLines::new(out, encoder, self.describe())))
    }
}

struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.0.lock() {
            Ok(mut buf) => {
                buf.extend_from_slice(data);
                Ok(data.len())
            }
            Err(_) => Err(io::Error::other("output buffer poisoned")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One output: a [`Target`] written as JSON lines, or any [`Sink`].
pub enum Output<T> {
    /// JSON lines to a target.
    Target(Target),
    /// Any sink.
    Sink(Box<dyn Sink<T>>),
}

impl<T> Default for Output<T> {
    fn default() -> Self {
        Output::Target(Target::Discard)
    }
}

impl<T> From<Target> for Output<T> {
    fn from(t: Target) -> Self {
        Output::Target(t)
    }
}

impl<T> std::fmt::Debug for Output<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Target(t) => f.debug_tuple("Target").field(t).finish(),
            Output::Sink(s) => f.debug_tuple("Sink").field(&s.describe()).finish(),
        }
    }
}

impl<T: 'static> Output<T> {
    fn open<E: Encode<T> + 'static>(
        self,
        encoder: E,
        what: &'static str,
    ) -> Result<Box<dyn Sink<T>>> {
        match self {
            Output::Target(t) => t.open(encoder, what),
            Output::Sink(s) => Ok(s),
        }
    }
}

/// The three outputs of a job whose results have type `O`.
pub struct Sinks<O> {
    /// Result rows.
    pub results: Output<Row<O>>,
    /// Records dropped from at least one window as too late.
    pub late: Output<LateRecord>,
    /// Records that could not be decoded.
    pub dead_letters: Output<DeadLetter>,
}

impl<O> Default for Sinks<O> {
    fn default() -> Self {
        Sinks {
            results: Output::default(),
            late: Output::default(),
            dead_letters: Output::default(),
        }
    }
}

/// The three outputs, opened.
pub(crate) struct OpenSinks<O> {
    pub(crate) results: Box<dyn Sink<Row<O>>>,
    pub(crate) late: Box<dyn Sink<LateRecord>>,
    pub(crate) dead_letters: Box<dyn Sink<DeadLetter>>,
}

impl<O: 'static> Sinks<O> {
    /// Opens every output (creating files); rows are encoded with `agg`'s
    /// field names.
    pub(crate) fn open<A: JobAggregator<Output = O>>(self, agg: &A) -> Result<OpenSinks<O>> {
        Ok(OpenSinks {
            results: self.results.open(RowJson(agg.clone()), "results")?,
            late: self.late.open(LateJson, "late records")?,
            dead_letters: self.dead_letters.open(DeadJson, "dead letters")?,
        })
    }
}

/// The three outputs of a job as JSON-lines targets.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// Result rows.
    pub results: Target,
    /// Records dropped from at least one window as too late.
    pub late: Target,
    /// Records that could not be decoded.
    pub dead_letters: Target,
}

impl<O> From<Outputs> for Sinks<O> {
    fn from(o: Outputs) -> Self {
        Sinks {
            results: o.results.into(),
            late: o.late.into(),
            dead_letters: o.dead_letters.into(),
        }
    }
}
