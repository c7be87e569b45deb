//! Inputs that cannot be read twice (standard input, a pipe), copied to an
//! unnamed temporary file as they arrive, so that every reader can read
//! them from its own position.
//!
//! A thread copies the input into the spool file; readers read the file as
//! a growing file that ends, for good, once the copy has reached the end of
//! the input. The file has no name (it lives in the system temporary
//! directory, `TMPDIR`) and disappears when the last handle to it closes,
//! also when the process exits.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::source::SourceError;

/// What the spool copies.
#[derive(Clone, Debug)]
pub(crate) enum SpoolInput {
    /// The process's standard input.
    Stdin,
    /// A path that is not a regular file (a named pipe, a character device).
    Path(PathBuf),
}

#[derive(Debug)]
enum State {
    Copying,
    Done,
    /// The copy failed: the error's kind and text (an `io::Error` is not
    /// `Clone`, and every reader reports it).
    Failed(io::ErrorKind, String),
}

/// A non-seekable input being copied to a temporary file.
#[derive(Debug)]
pub(crate) struct Spool {
    file: File,
    /// How errors and dead letters name the input.
    name: PathBuf,
    state: Mutex<State>,
    finished: Condvar,
}

impl Spool {
    /// Creates the spool file and starts copying `input` into it.
    pub(crate) fn start(input: SpoolInput) -> Result<Arc<Spool>, SourceError> {
        let name = match &input {
            SpoolInput::Stdin => PathBuf::from("<stdin>"),
            SpoolInput::Path(path) => path.clone(),
        };
        let spool_error = |source| SourceError::Spool {
            path: name.clone(),
            source,
        };
        let file = tempfile::tempfile().map_err(spool_error)?;
        let spool = Arc::new(Spool {
            file,
            name: name.clone(),
            state: Mutex::new(State::Copying),
            finished: Condvar::new(),
        });
        let copier = Arc::clone(&spool);
        std::thread::Builder::new()
            .name("tidemark-spool".to_owned())
            .spawn(move || {
                let outcome = copier.copy(input);
                copier.finish(outcome);
            })
            .map_err(spool_error)?;
        Ok(spool)
    }

    /// How errors and dead letters name the input (`<stdin>` for standard
    /// input).
    pub(crate) fn name(&self) -> &Path {
        &self.name
    }

    /// A handle for one reader; readers read at explicit positions, so
    /// handles sharing one file offset do not disturb each other.
    pub(crate) fn reader_file(&self) -> Result<File, SourceError> {
        self.file.try_clone().map_err(|source| SourceError::Spool {
            path: self.name.clone(),
            source,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the whole input is in the spool file; an error if copying
    /// it failed.
    pub(crate) fn complete(&self) -> Result<bool, SourceError> {
        self.outcome(&self.lock())
    }

    /// Waits until the whole input is in the spool file.
    pub(crate) fn wait(&self) -> Result<(), SourceError> {
        let mut state = self.lock();
        while matches!(*state, State::Copying) {
            state = self
                .finished
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.outcome(&state).map(|_| ())
    }

    fn outcome(&self, state: &State) -> Result<bool, SourceError> {
        match state {
            State::Copying => Ok(false),
            State::Done => Ok(true),
            State::Failed(kind, text) => Err(SourceError::Spool {
                path: self.name.clone(),
                source: io::Error::new(*kind, text.clone()),
            }),
        }
    }

    fn copy(&self, input: SpoolInput) -> io::Result<()> {
        let mut input: Box<dyn Read> = match input {
            SpoolInput::Stdin => Box::new(io::stdin()),
            // Opening a named pipe waits for its writer: here, not in `start`.
            SpoolInput::Path(path) => Box::new(File::open(path)?),
        };
        let mut out = &self.file;
        let mut buf = vec![0; 1 << 16];
        loop {
            match input.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => out.write_all(buf.get(..n).unwrap_or_default())?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn finish(&self, outcome: io::Result<()>) {
        let mut state = self.lock();
        *state = match outcome {
            Ok(()) => State::Done,
            Err(e) => State::Failed(e.kind(), e.to_string()),
        };
        self.finished.notify_all();
    }
}

/// Whether `meta` describes an input that cannot be read twice from the
/// start (a named pipe, a character device such as a terminal, a socket).
pub(crate) fn is_stream(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        kind.is_fifo() || kind.is_char_device() || kind.is_socket()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}
