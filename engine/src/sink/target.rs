//! Named destinations ([`Target`]: standard output, a file, a buffer,
//! nowhere) and the three outputs of a job ([`Sinks`], or [`Outputs`] when
//! all three are targets).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tidemark_sources::DeadLetter;

use super::json::{DeadJson, Digesting, Durable, Encode, JsonLines, LateJson, RowJson};
use super::memory::Discard;
use super::{Sink, SinkState};
use crate::aggregator::JobAggregator;
use crate::checkpoint::{CheckpointError, CommittedOutputs, Digest, OutputDigest, OutputPosition};
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
        self.open_resumable(encoder, what, Resume::No)
    }

    /// Opens the sink of a checkpointed run: a file or buffer keeps a
    /// running digest (for [`Sink::durable_position`]); resuming, it is cut
    /// back to the committed length after checking that its first bytes are
    /// the committed ones.
    pub(crate) fn open_resumable<T: 'static, E: Encode<T> + 'static>(
        &self,
        encoder: E,
        what: &'static str,
        resume: Resume,
    ) -> Result<Box<dyn Sink<T>>> {
        if !matches!(resume, Resume::No) {
            match self {
                // A device or a pipe cannot be cut back to a committed
                // length: like standard output, it gets what follows.
                Target::File(path) if is_special(path) => {}
                Target::File(path) => {
                    let (file, digest) = open_file_at(path, what, resume)?;
                    let durable = Durable {
                        digest: Arc::clone(&digest),
                        file: file.try_clone().ok(),
                    };
                    let cut = file.try_clone().ok();
                    let out = Digesting {
                        inner: file,
                        digest,
                    };
                    let sink = JsonLines::resumable(out, encoder, self.describe(), durable);
                    return Ok(Box::new(match cut {
                        Some(f) => sink.cut_back_on_abort(f),
                        None => sink,
                    }));
                }
                Target::Buffer(buf) => {
                    let digest = cut_buffer(buf, what, resume)?;
                    let durable = Durable {
                        digest: Arc::clone(&digest),
                        file: None,
                    };
                    let out = Digesting {
                        inner: SharedBuffer(Arc::clone(buf)),
                        digest,
                    };
                    return Ok(Box::new(JsonLines::resumable(
                        out,
                        encoder,
                        self.describe(),
                        durable,
                    )));
                }
                Target::Discard | Target::Stdout => {}
            }
        }
        let out: Box<dyn Write + Send> = match self {
            Target::Discard => return Ok(Box::new(Discard)),
            Target::Stdout => Box::new(io::stdout()),
            Target::File(path) => {
                let fail = |path: String, source| EngineError::Output { what, path, source };
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| fail(dir.display().to_string(), e))?;
                }
                let file = File::create(path).map_err(|e| fail(path.display().to_string(), e))?;
                let regular = file.metadata().is_ok_and(|m| m.is_file());
                let cut = file.try_clone().ok().filter(|_| regular);
                let sink = JsonLines::new(file, encoder, self.describe());
                return Ok(Box::new(match cut {
                    Some(f) => sink.cut_back_on_abort(f),
                    None => sink,
                }));
            }
            Target::Buffer(buf) => Box::new(SharedBuffer(Arc::clone(buf))),
        };
        Ok(Box::new(JsonLines::new(out, encoder, self.describe())))
    }
}

/// Whether `path` exists and is not a regular file (a device such as
/// `/dev/null`, a named pipe).
pub(crate) fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// How an output of a checkpointed run is opened.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Resume {
    /// Not checkpointed: as [`Target::open`].
    No,
    /// Checkpointed, from the start: created empty.
    Fresh,
    /// Resumed: cut back to what the checkpoint committed (`None`: the
    /// checkpoint has no position for it).
    At(Option<OutputPosition>),
}

fn resume_error(what: &'static str, path: &str, reason: String) -> EngineError {
    EngineError::Checkpoint(CheckpointError::OutputMismatch {
        what,
        path: path.to_owned(),
        reason,
    })
}

/// The file of a checkpointed output, opened for appending at its
/// committed length, and the digest of its bytes so far.
pub(crate) fn open_file_at(
    path: &Path,
    what: &'static str,
    resume: Resume,
) -> Result<(File, Arc<Mutex<OutputDigest>>)> {
    let shown = path.display().to_string();
    let fail = |source| EngineError::Output {
        what,
        path: shown.clone(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| EngineError::Output {
            what,
            path: dir.display().to_string(),
            source,
        })?;
    }
    let committed = match resume {
        Resume::At(Some(pos)) => pos,
        Resume::At(None) => {
            return Err(resume_error(
                what,
                &shown,
                "the checkpoint holds no committed position for this output (it was not written to a file then)".into(),
            ))
        }
        Resume::No | Resume::Fresh => {
            let file = File::create(path).map_err(fail)?;
            return Ok((file, Arc::new(Mutex::new(OutputDigest::new()))));
        }
    };
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && committed.len == 0 => {
            File::create(path).map_err(fail)?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(resume_error(
                what,
                &shown,
                format!(
                    "the file is missing; the checkpoint committed {} bytes of it",
                    committed.len
                ),
            ))
        }
        Err(e) => return Err(fail(e)),
    };
    let mut digest = OutputDigest::new();
    io::copy(&mut (&mut file).take(committed.len), &mut digest).map_err(fail)?;
    if digest.len() < committed.len {
        return Err(resume_error(
            what,
            &shown,
            format!(
                "it has {} bytes; the checkpoint committed {}",
                digest.len(),
                committed.len
            ),
        ));
    }
    if digest.digest() != committed.digest {
        return Err(resume_error(
            what,
            &shown,
            format!(
                "its first {} bytes are not the committed ones (digest {}, committed {})",
                committed.len,
                digest.digest(),
                committed.digest
            ),
        ));
    }
    // What was written after the checkpoint is not committed output.
    file.set_len(committed.len).map_err(fail)?;
    file.seek(SeekFrom::End(0)).map_err(fail)?;
    file.sync_data().map_err(fail)?;
    Ok((file, Arc::new(Mutex::new(digest))))
}

/// A buffer output of a resumed run, cut back to its committed length.
fn cut_buffer(
    buf: &Arc<Mutex<Vec<u8>>>,
    what: &'static str,
    resume: Resume,
) -> Result<Arc<Mutex<OutputDigest>>> {
    let mut digest = OutputDigest::new();
    let Ok(mut bytes) = buf.lock() else {
        return Err(resume_error(
            what,
            "(buffer)",
            "the buffer is poisoned".into(),
        ));
    };
    match resume {
        Resume::At(Some(pos)) => {
            let len = usize::try_from(pos.len).unwrap_or(usize::MAX);
            if bytes.len() < len || Digest::of(&bytes[..len]) != pos.digest {
                return Err(resume_error(
                    what,
                    "(buffer)",
                    "the buffer does not start with the committed output".into(),
                ));
            }
            bytes.truncate(len);
            digest.update(&bytes);
        }
        Resume::At(None) => {
            return Err(resume_error(
                what,
                "(buffer)",
                "the checkpoint holds no committed position for this output".into(),
            ))
        }
        Resume::No | Resume::Fresh => bytes.clear(),
    }
    Ok(Arc::new(Mutex::new(digest)))
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

impl<T> Output<T> {
    /// The file this output writes, if it is one.
    fn file(&self) -> Option<PathBuf> {
        match self {
            Output::Target(Target::File(p)) => Some(p.clone()),
            _ => None,
        }
    }
}

impl<T: 'static> Output<T> {
    /// Opens the output; a sink of a resumed run gets its committed
    /// position and its own recovery `state` back.
    fn open<E: Encode<T> + 'static>(
        self,
        encoder: E,
        what: &'static str,
        resume: Resume,
        state: Option<&SinkState>,
    ) -> Result<Box<dyn Sink<T>>> {
        match self {
            Output::Target(t) => t.open_resumable(encoder, what, resume),
            Output::Sink(mut s) => {
                let from = match resume {
                    Resume::No => return Ok(s),
                    Resume::Fresh => None,
                    Resume::At(pos) => pos,
                };
                let state = state.filter(|_| matches!(resume, Resume::At(_)));
                s.resume(from)
                    .and_then(|()| s.resume_state(state.cloned()))
                    .map_err(|source| EngineError::Output {
                        what,
                        path: s.describe(),
                        source,
                    })?;
                Ok(s)
            }
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

impl<O> Sinks<O> {
    /// The outputs that are files, by what they hold (`results`, `late
    /// records`, `dead letters`).
    pub(crate) fn files(&self) -> Vec<(&'static str, PathBuf)> {
        [
            ("results", self.results.file()),
            ("late records", self.late.file()),
            ("dead letters", self.dead_letters.file()),
        ]
        .into_iter()
        .filter_map(|(what, p)| p.map(|p| (what, p)))
        .collect()
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
    /// field names. With `tracked` (checkpoints), file and buffer outputs
    /// keep a digest, and with `resume` they are cut back to the committed
    /// positions first (and sinks get their own recovery `states` back, by
    /// output). Late table updates are written with the fields of their
    /// table in `tables` (name, fields).
    pub(crate) fn open<A: JobAggregator<Output = O>>(
        self,
        agg: &A,
        resume: Option<&CommittedOutputs>,
        states: &BTreeMap<String, SinkState>,
        tracked: bool,
        times: super::json::TimeText,
        tables: &[(String, Vec<String>)],
    ) -> Result<OpenSinks<O>> {
        let mode = |pos: Option<OutputPosition>| match (tracked, resume) {
            (false, _) => Resume::No,
            (true, None) => Resume::Fresh,
            (true, Some(_)) => Resume::At(pos),
        };
        let c = resume.copied().unwrap_or_default();
        Ok(OpenSinks {
            results: self.results.open(
                RowJson(agg.clone(), times),
                "results",
                mode(c.results),
                states.get("results"),
            )?,
            late: self.late.open(
                LateJson {
                    tables: tables.to_vec(),
                    ..LateJson::of(agg, times)
                },
                "late records",
                mode(c.late),
                states.get("late records"),
            )?,
            dead_letters: self.dead_letters.open(
                DeadJson,
                "dead letters",
                mode(c.dead_letters),
                states.get("dead letters"),
            )?,
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
