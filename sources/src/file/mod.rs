//! [`FileSource`]: partitions stored as files of JSON lines or CSV rows.
//!
//! Two layouts:
//!
//! - **A directory**: each regular file whose name matches the partition
//!   glob ([`FileSourceConfig::partition_glob`]; by default the format's
//!   extensions, `*.{jsonl,json,ndjson}` or `*.csv`) is one partition,
//!   numbered in natural name order: runs of digits compare as numbers, so
//!   `part-2.jsonl` is before `part-10.jsonl` (and zero-padded names such as
//!   `tidemark gen`'s `part-00000.jsonl` keep their plain order). Other
//!   files, hidden files (names starting with `.`) and subdirectories are
//!   skipped; a directory with no matching file is an error naming the
//!   directory and the pattern. [`Format::detect`] finds the format of a
//!   directory from its files' extensions.
//! - **One file**: without a partition field it is partition 0. With one
//!   ([`FieldMapping::partition`](crate::FieldMapping::partition)), each line
//!   names its partition; the partitions are `0..n`, with `n` from
//!   [`FileSourceConfig::partition_count`] or else one more than the largest
//!   partition in the file when the source first looks, below
//!   [`FileSourceConfig::max_partitions`]. A line naming no valid partition
//!   (none, or one out of range) belongs to partition 0, as a dead letter.
//!
//! In both layouts **a record's offset is its index among its partition's
//! records**, not counting a CSV header (each file starts with one when
//! [`DecodeConfig::header`] is set). A JSON-lines record is a line. A CSV
//! record is a line too, except that a quoted field may hold line breaks
//! (RFC 4180, split as the `csv` crate does: a quote opens a quoted field
//! only at the start of a field, so a stray quote elsewhere never takes in
//! the lines after it; the decoder makes such a record a dead letter). The
//! maximum line length applies to the whole record. Every record takes an
//! offset, including a blank line, which becomes a dead letter `empty
//! line`: nothing is dropped unseen. Dead letters name the file and the
//! line where their record starts. A file that ends with `\n` has no empty
//! last record; a UTF-8 byte-order mark at the very start is ignored.
//!
//! **Seeking.** Opening at offset N counts the N records before it without
//! decoding them, with one `memchr` pass over the file where there are no
//! quotes (and a quote-aware scan from each quote in CSV). In the one-file
//! layout the source scans the file (reading each record's partition field
//! only) to count the partitions, unless
//! [`FileSourceConfig::partition_count`] gives them, and keeps the position
//! of every 4096th record of each partition, so opens past offset 0 start
//! near their offset (with a configured count, that scan happens at the
//! first such open).
//!
//! **One pass in the one-file layout.** The partitions opened at offset 0
//! share one pass over the file that decodes each record once and queues it
//! for its partition's reader, instead of each reader reading the whole
//! file. A partition whose queue grows past its share of a bounded budget
//! (its reader is slow, or it is not read in this process) leaves the pass
//! and reads alone from its first record not yet taken, so memory stays
//! bounded and the records are the same either way.
//!
//! **Standard input and pipes.** The path `-` reads standard input, and a
//! path that is not a regular file (a named pipe such as `/dev/stdin` fed
//! by a pipe, a terminal) is read the same way: a thread copies the input
//! to an unnamed temporary file (in `TMPDIR`, gone when the source and the
//! copy are done) as it arrives, and the readers read the copy, so several
//! partitions (and an indexing pass) can all read an input that can be
//! read only once. It is one file, read as it grows: a reader returns what
//! has arrived and [`ReadStatus::CaughtUp`], and [`ReadStatus::End`] once
//! the input is closed and all read, with or without `follow` (the checks
//! of followed files do not apply). With a partition field and no
//! [`FileSourceConfig::partition_count`], the whole input is read before
//! the partitions are known (the source waits for its end in
//! [`Source::partitions`]); set the count to start reading at once. Dead
//! letters name the file `<stdin>` (or the pipe's path).
//!
//! **Following** (`follow = true`): the files are treated as append-only
//! logs. A reader returns what is there and then [`ReadStatus::CaughtUp`];
//! records appended later are read by later calls. A last record without
//! its `\n` is not read until the `\n` arrives, unless it is already over
//! the maximum length: it is then a dead letter at once, and the rest of it
//! is skipped as it comes. Without follow, the end of a file is
//! [`ReadStatus::End`] and a last record without `\n` is a record.
//!
//! Anything but appending stops the job with an error naming the file,
//! instead of leaving records unread: each time a reader reaches the end
//! of its file it checks that the file was not deleted
//! ([`SourceError::FileDeleted`]), that its path still names the file it
//! opened (device and inode, on Unix: a file deleted and created again, or
//! one moved over it, is [`SourceError::FileReplaced`]), and that it is not
//! shorter than what was read ([`SourceError::FileTruncated`]). A file
//! rewritten to at least its old length between two checks cannot be told
//! from one that grew. The partitions are fixed when the source first
//! lists the directory: a new file matching the partition glob is
//! [`SourceError::NewPartitionFile`] (the reader of partition 0 looks each
//! time it is caught up); other new files are ignored.

mod lines;
mod names;
mod reader;
mod shared;
mod spool;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use self::lines::{Line, LineReader, Split};
use self::names::{natural_cmp, Glob};
use self::reader::{DirectoryWatch, FileReader, Mark, Ownership};
use self::shared::{Demux, SharedReader};
use self::spool::{is_stream, Spool, SpoolInput};
use crate::decode::{DecodeConfig, Decoder, Format};
#[cfg(doc)]
use crate::record::ReadStatus;
use crate::record::{Offset, PartitionId};
use crate::source::{PartitionReader, Source, SourceError};

/// Every this many records of a partition, the one-file layout's index
/// keeps the line's byte position.
const INDEX_STRIDE: u64 = 4096;

/// The default of [`FileSourceConfig::max_partitions`].
pub const DEFAULT_MAX_PARTITIONS: u32 = 10_000;

/// The largest [`FileSourceConfig::max_partitions`] may be.
pub const MAX_SHARED_PARTITIONS: u32 = 1 << 16;

fn default_max_partitions() -> u32 {
    DEFAULT_MAX_PARTITIONS
}

/// Where and how a [`FileSource`] reads.
///
/// In a TOML job file the decode settings sit beside the path:
///
/// ```toml
/// path = "input/"
/// format = "csv"
/// header = true
/// time_format = "rfc3339"
/// follow = false
/// [fields]
/// key = "user"
/// time = "meta.ts"
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSourceConfig {
    /// A directory of partition files, or one file; `-` is standard input.
    pub path: PathBuf,
    /// Format, field names, time format, maximum line length.
    #[serde(flatten)]
    pub decode: DecodeConfig,
    /// Follow the files as they grow (tail mode) instead of ending at their end.
    #[serde(default)]
    pub follow: bool,
    /// One-file layout with a partition field: how many partitions there
    /// are. Set it when following, so that partitions that have no lines yet
    /// exist.
    #[serde(default)]
    pub partition_count: Option<u32>,
    /// Directory layout: the files that are partitions, as a file-name glob
    /// (`*`, `?`, `[a-z]`, `[!x]`, `{a,b}`; matched case-sensitively against
    /// file names). `None`: the format's
    /// [default](Format::default_partition_glob).
    #[serde(default)]
    pub partition_glob: Option<String>,
    /// One-file layout with a partition field: partitions `0..max_partitions`
    /// may exist (default [`DEFAULT_MAX_PARTITIONS`], at most
    /// [`MAX_SHARED_PARTITIONS`]). A record naming a partition at or above
    /// it is a dead letter of partition 0, `partition out of range`, instead
    /// of making that many partitions, each holding a reader and an open
    /// file.
    #[serde(default = "default_max_partitions")]
    pub max_partitions: u32,
}

impl FileSourceConfig {
    /// A bounded source over `path` in `format`, with default fields
    /// (`key`, `ts`, `value`) and epoch-millisecond times.
    pub fn new(path: impl Into<PathBuf>, format: Format) -> Self {
        FileSourceConfig {
            path: path.into(),
            decode: DecodeConfig::new(format),
            follow: false,
            partition_count: None,
            partition_glob: None,
            max_partitions: DEFAULT_MAX_PARTITIONS,
        }
    }

    /// The partition glob in effect: [`FileSourceConfig::partition_glob`],
    /// or the format's default.
    pub fn effective_partition_glob(&self) -> &str {
        self.partition_glob
            .as_deref()
            .unwrap_or_else(|| self.decode.format.default_partition_glob())
    }
}

impl Format {
    /// The glob that selects a directory's partition files when none is
    /// configured: `*.{jsonl,json,ndjson}` for JSON lines, `*.csv` for CSV.
    pub fn default_partition_glob(self) -> &'static str {
        match self {
            Format::Jsonl => "*.{jsonl,json,ndjson}",
            Format::Csv => "*.csv",
        }
    }

    /// The format a file extension (without its dot) stands for: `jsonl`,
    /// `json` and `ndjson` are JSON lines, `csv` is CSV (lowercase only).
    pub fn for_extension(extension: &str) -> Option<Format> {
        match extension {
            "jsonl" | "json" | "ndjson" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// The format of the input at `path`, for when none is configured.
    ///
    /// - A directory: the format of its files' extensions (see
    ///   [`Format::for_extension`]; hidden files, subdirectories and files
    ///   with other extensions are not looked at). It is an error when the
    ///   directory holds both CSV and JSON-lines files, or neither.
    /// - A file: its extension's format, and JSON lines for any other
    ///   extension or none.
    /// - `-` (standard input): JSON lines.
    pub fn detect(path: impl AsRef<Path>) -> Result<Format, SourceError> {
        let path = path.as_ref();
        if path == Path::new(STDIN) {
            return Ok(Format::Jsonl);
        }
        let meta = std::fs::metadata(path).map_err(|source| SourceError::OpenInput {
            path: path.to_owned(),
            source,
        })?;
        let of = |p: &Path| {
            p.extension()
                .and_then(|e| e.to_str())
                .and_then(Format::for_extension)
        };
        if !meta.is_dir() {
            return Ok(of(path).unwrap_or(Format::Jsonl));
        }
        let mut seen: [Option<PathBuf>; 2] = [None, None];
        for file in visible_files(path)? {
            if let Some(format) = of(&file) {
                let slot = &mut seen[format as usize];
                if slot.is_none() {
                    *slot = Some(file);
                }
            }
        }
        match seen {
            [Some(jsonl), Some(csv)] => Err(SourceError::MixedFormats {
                dir: path.to_owned(),
                jsonl,
                csv,
            }),
            [Some(_), None] => Ok(Format::Jsonl),
            [None, Some(_)] => Ok(Format::Csv),
            [None, None] => Err(SourceError::UnknownFormat {
                dir: path.to_owned(),
            }),
        }
    }
}

/// What the source found at its path, fixed the first time it looks.
#[derive(Debug)]
struct Found {
    layout: Layout,
    /// Standard input or a pipe, copied to a temporary file: the layout's
    /// one path is a name for it, the readers read the copy.
    spool: Option<Arc<Spool>>,
}

#[derive(Debug)]
enum Layout {
    /// One file per partition.
    Directory(Vec<PathBuf>),
    /// One file, one partition.
    File(PathBuf),
    /// One file holding every partition.
    Shared {
        path: PathBuf,
        count: u32,
        /// Per partition: where every `INDEX_STRIDE`th record starts,
        /// ascending; indexed when first needed (a partition opened past
        /// offset 0), or when the partitions are counted.
        marks: Mutex<Option<Arc<Vec<Vec<Mark>>>>>,
        /// The pass the readers opened at offset 0 share.
        demux: Mutex<Option<Arc<Mutex<Demux>>>>,
    },
}

/// Partitions read from files; see the [module docs](self) for the layouts
/// and the offset rules.
#[derive(Debug)]
pub struct FileSource {
    config: FileSourceConfig,
    decoder: Decoder,
    glob: Glob,
    found: Mutex<Option<Arc<Found>>>,
}

impl FileSource {
    /// A source for `config`. Checks the configuration but does no I/O: the
    /// path is first looked at by [`Source::partitions`] or [`Source::open`].
    pub fn new(config: FileSourceConfig) -> Result<Self, SourceError> {
        if config.decode.max_line_len == 0 {
            return Err(SourceError::InvalidConfig(
                "max_line_len must be greater than 0".to_owned(),
            ));
        }
        let fields = &config.decode.fields;
        if [&fields.key, &fields.time, &fields.value]
            .iter()
            .any(|f| f.is_empty())
        {
            return Err(SourceError::InvalidConfig(
                "field names must not be empty".to_owned(),
            ));
        }
        let limit = config.max_partitions;
        if limit == 0 || limit > MAX_SHARED_PARTITIONS {
            return Err(SourceError::InvalidConfig(format!(
                "max_partitions must be between 1 and {MAX_SHARED_PARTITIONS}"
            )));
        }
        if let Some(count) = config.partition_count {
            if count == 0 || count > limit {
                return Err(SourceError::InvalidConfig(format!(
                    "partition_count must be between 1 and max_partitions ({limit})"
                )));
            }
        }
        let glob =
            Glob::new(config.effective_partition_glob()).map_err(SourceError::InvalidConfig)?;
        Ok(FileSource {
            decoder: Decoder::new(&config.decode),
            glob,
            config,
            found: Mutex::new(None),
        })
    }

    /// The configuration this source was built from.
    pub fn config(&self) -> &FileSourceConfig {
        &self.config
    }

    fn found(&self) -> Result<Arc<Found>, SourceError> {
        let mut cached = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = cached.as_ref() {
            return Ok(Arc::clone(found));
        }
        let found = Arc::new(self.discover()?);
        *cached = Some(Arc::clone(&found));
        Ok(found)
    }

    fn discover(&self) -> Result<Found, SourceError> {
        let path = &self.config.path;
        let spool = if path.as_os_str() == STDIN {
            Some(Spool::start(SpoolInput::Stdin)?)
        } else {
            let meta = std::fs::metadata(path).map_err(|source| SourceError::OpenInput {
                path: path.clone(),
                source,
            })?;
            if meta.is_dir() {
                return Ok(Found {
                    layout: Layout::Directory(list_directory(path, &self.glob)?),
                    spool: None,
                });
            }
            is_stream(&meta)
                .then(|| Spool::start(SpoolInput::Path(path.clone())))
                .transpose()?
        };
        let shared = |count: u32, marks: Option<Vec<Vec<Mark>>>| Layout::Shared {
            path: path.clone(),
            count,
            marks: Mutex::new(marks.map(Arc::new)),
            demux: Mutex::new(None),
        };
        let layout = match (&self.config.decode.fields.partition, &spool) {
            (None, _) => Layout::File(path.clone()),
            (Some(_), Some(_)) if self.config.partition_count.is_some() => {
                // The partitions are known: no need to wait for the end of
                // the input to index it (opens count from the start).
                let count = self.config.partition_count.unwrap_or(1);
                shared(count, Some(vec![Vec::new(); count as usize]))
            }
            (Some(_), None) => {
                // The file is indexed only if a partition opens past
                // offset 0; counting its partitions looks at less.
                let count = match self.config.partition_count {
                    Some(count) => count,
                    None => self.count_shared(path)?,
                };
                shared(count, None)
            }
            (Some(_), spool) => {
                if let Some(spool) = spool {
                    // The partitions are in the input: all of it first.
                    spool.wait()?;
                }
                let (count, marks) = self.index_shared(path, spool.as_ref())?;
                shared(count, Some(marks))
            }
        };
        Ok(Found { layout, spool })
    }

    /// Counts a one-file layout's partitions, one more than the largest a
    /// line belongs to, as [`FileSource::index_shared`] finds them. A line
    /// whose partition field, looked at alone, cannot raise the largest so
    /// far is not decoded.
    fn count_shared(&self, path: &Path) -> Result<u32, SourceError> {
        let mut lines = self.line_reader(path, None)?;
        let mut decoder = self.decoder.clone();
        let mut header_pending = decoder.expects_header();
        let limit = self.config.max_partitions;
        let ownership = Ownership::Shared {
            count: limit,
            limit,
        };
        let scan = decoder.partition_scan();
        let mut largest: Option<PartitionId> = None;
        loop {
            let line = match lines.next_line()? {
                Line::Pending | Line::End => break,
                Line::TooLong(..) if header_pending => {
                    header_pending = false;
                    decoder.set_header(b"");
                    continue;
                }
                Line::Complete(line) if header_pending => {
                    header_pending = false;
                    decoder.set_header(line);
                    continue;
                }
                // Too long: a dead letter of partition 0.
                Line::TooLong(..) => {
                    largest = largest.max(Some(0));
                    continue;
                }
                Line::Complete(line) => line,
            };
            if let (Some(hint), Some(max)) = (decoder.partition_hint(&scan, line), largest) {
                if hint <= max {
                    continue;
                }
            }
            let (owner, _) = ownership.owner(&decoder, line);
            largest = largest.max(Some(owner));
        }
        Ok(largest.map_or(1, |p| p + 1))
    }

    /// Scans a one-file layout: finds the partitions and indexes their lines.
    fn index_shared(
        &self,
        path: &Path,
        spool: Option<&Arc<Spool>>,
    ) -> Result<(u32, Vec<Vec<Mark>>), SourceError> {
        let mut lines = self.line_reader(path, spool)?;
        let mut decoder = self.decoder.clone();
        let mut header_pending = decoder.expects_header();
        let configured = self.config.partition_count;
        let limit = self.config.max_partitions;
        let ownership = Ownership::Shared {
            count: configured.unwrap_or(limit),
            limit,
        };
        let mut counts: Vec<Offset> = Vec::new();
        let mut marks: Vec<Vec<Mark>> = Vec::new();
        loop {
            let (owner, pos) = match lines.next_line()? {
                Line::Pending | Line::End => break,
                Line::TooLong(..) if header_pending => {
                    header_pending = false;
                    decoder.set_header(b"");
                    continue;
                }
                Line::Complete(line) if header_pending => {
                    header_pending = false;
                    decoder.set_header(line);
                    continue;
                }
                Line::TooLong(..) => (0, lines.line_start()),
                Line::Complete(line) => {
                    let (owner, _) = ownership.owner(&decoder, line);
                    (owner, lines.line_start())
                }
            };
            let slot = owner as usize;
            if counts.len() <= slot {
                counts.resize(slot + 1, 0);
                marks.resize(slot + 1, Vec::new());
            }
            if let (Some(count), Some(marks)) = (counts.get_mut(slot), marks.get_mut(slot)) {
                if *count > 0 && *count % INDEX_STRIDE == 0 {
                    marks.push(Mark {
                        offset: *count,
                        pos,
                        line: lines.line_no(),
                    });
                }
                *count += 1;
            }
        }
        let count =
            configured.unwrap_or_else(|| u32::try_from(counts.len()).unwrap_or(u32::MAX).max(1));
        marks.resize(count as usize, Vec::new());
        Ok((count, marks))
    }

    fn line_reader(
        &self,
        path: &Path,
        spool: Option<&Arc<Spool>>,
    ) -> Result<LineReader, SourceError> {
        let split = match self.config.decode.format {
            Format::Jsonl => Split::Lines,
            Format::Csv => Split::Csv,
        };
        let max = self.config.decode.max_line_len;
        match spool {
            Some(spool) => LineReader::spooled(spool, max, split),
            None => LineReader::open(path, self.config.follow, max, split),
        }
    }

    fn reader(
        &self,
        path: &Path,
        spool: Option<&Arc<Spool>>,
        partition: PartitionId,
        from: Offset,
        ownership: Ownership,
    ) -> Result<FileReader, SourceError> {
        let decoder = self.decoder.clone();
        let file_name = spool.map_or(path, |s| s.name()).display().to_string();
        Ok(FileReader {
            lines: self.line_reader(path, spool)?,
            header_pending: decoder.expects_header(),
            decoder,
            partition,
            ownership,
            next: 0,
            from,
            pending_seek: None,
            file_name: file_name.into(),
            watch: None,
        })
    }
}

/// The path that stands for standard input.
const STDIN: &str = "-";

/// The regular files of a directory (and links to them), except hidden
/// ones, in no particular order.
fn visible_files(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let list_error = |source| SourceError::ListDirectory {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        // `metadata` follows symlinks, so a link to a file is a partition.
        let is_file = std::fs::metadata(entry.path())
            .map(|m| m.is_file())
            .unwrap_or(false);
        if is_file {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// Whether the file at `path` is selected by `glob`.
fn is_partition_file(path: &Path, glob: &Glob) -> bool {
    path.file_name()
        .is_some_and(|name| glob.matches(&name.to_string_lossy()))
}

/// The partition files of a directory, in natural name order. A name the
/// glob selects that is not a file it can read — a dangling symlink, a
/// named pipe, a device — is an error naming it, never skipped in silence
/// (a directory is not a partition, as documented).
fn list_directory(dir: &Path, glob: &Glob) -> Result<Vec<PathBuf>, SourceError> {
    let list_error = |source| SourceError::ListDirectory {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let path = entry.map_err(list_error)?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
        if hidden || !is_partition_file(&path, glob) {
            continue;
        }
        let reason = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() || m.is_dir() => continue,
            Ok(_) => "it is not a regular file (a named pipe, a socket or a device)",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                "it is a symbolic link to nothing"
            }
            Err(_) => "it cannot be inspected",
        };
        return Err(SourceError::NotAPartitionFile {
            path,
            pattern: glob.as_str().to_owned(),
            reason,
        });
    }
    let mut files = visible_files(dir)?;
    files.retain(|f| is_partition_file(f, glob));
    if files.is_empty() {
        return Err(SourceError::NoPartitionFiles {
            dir: dir.to_owned(),
            pattern: glob.as_str().to_owned(),
        });
    }
    let name = |p: &PathBuf| p.file_name().map(|n| n.as_encoded_bytes().to_vec());
    files.sort_by(|a, b| natural_cmp(&name(a).unwrap_or_default(), &name(b).unwrap_or_default()));
    Ok(files)
}

impl Source for FileSource {
    fn content_checks(&self) -> Result<Vec<crate::ContentCheck>, SourceError> {
        let found = self.found()?;
        if found.spool.is_some() {
            // Standard input or a pipe: read once, nothing to check again.
            return Ok(Vec::new());
        }
        let files: Vec<&PathBuf> = match &found.layout {
            Layout::Directory(files) => files.iter().collect(),
            Layout::File(path) | Layout::Shared { path, .. } => vec![path],
        };
        files
            .into_iter()
            .map(|path| {
                crate::ContentCheck::of(path).map_err(|source| SourceError::ReadPartition {
                    path: path.clone(),
                    source,
                })
            })
            .collect()
    }

    fn partitions(&self) -> Result<Vec<PartitionId>, SourceError> {
        let count = match &self.found()?.layout {
            Layout::Directory(files) => u32::try_from(files.len()).unwrap_or(u32::MAX),
            Layout::File(_) => 1,
            Layout::Shared { count, .. } => *count,
        };
        Ok((0..count).collect())
    }

    fn open(
        &self,
        partition: PartitionId,
        from: Offset,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let found = self.found()?;
        let spool = found.spool.as_ref();
        let unknown = |count: usize| SourceError::UnknownPartition {
            partition,
            count: u32::try_from(count).unwrap_or(u32::MAX),
        };
        let mut reader = match &found.layout {
            Layout::Directory(files) => {
                let path = files
                    .get(partition as usize)
                    .ok_or_else(|| unknown(files.len()))?;
                let mut reader = self.reader(path, spool, partition, from, Ownership::Whole)?;
                if self.config.follow && partition == 0 {
                    // One reader per directory looks for new files.
                    reader.watch = Some(Arc::new(DirectoryWatch {
                        dir: self.config.path.clone(),
                        glob: self.glob.clone(),
                        known: files.iter().cloned().collect(),
                    }));
                }
                reader
            }
            Layout::File(path) if partition == 0 => {
                self.reader(path, spool, partition, from, Ownership::Whole)?
            }
            Layout::File(_) => return Err(unknown(1)),
            Layout::Shared {
                path,
                count,
                marks,
                demux,
            } => {
                if partition >= *count {
                    return Err(unknown(*count as usize));
                }
                let ownership = Ownership::Shared {
                    count: *count,
                    limit: self.config.max_partitions,
                };
                let mut reader = self.reader(path, spool, partition, from, ownership)?;
                let demux = {
                    let mut demux = demux.lock().unwrap_or_else(PoisonError::into_inner);
                    match demux.as_ref() {
                        Some(d) => Arc::clone(d),
                        None => {
                            let d = Arc::new(Mutex::new(Demux::new(
                                self.line_reader(path, spool)?,
                                self.decoder.clone(),
                                *count,
                                ownership,
                                Arc::clone(&reader.file_name),
                            )));
                            *demux = Some(Arc::clone(&d));
                            d
                        }
                    }
                };
                if from == 0 {
                    let seated = demux
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take_seat(partition);
                    if seated {
                        return Ok(Box::new(SharedReader {
                            demux,
                            partition,
                            alone: reader,
                            left: false,
                        }));
                    }
                } else {
                    demux
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .leave(partition);
                }
                let marks = {
                    let mut marks = marks.lock().unwrap_or_else(PoisonError::into_inner);
                    match marks.as_ref() {
                        Some(m) => Arc::clone(m),
                        None => {
                            let (_, indexed) = self.index_shared(path, spool)?;
                            let m = Arc::new(indexed);
                            *marks = Some(Arc::clone(&m));
                            m
                        }
                    }
                };
                let marks = marks.get(partition as usize).map_or(&[][..], Vec::as_slice);
                let below = marks.partition_point(|mark| mark.offset <= from);
                if let Some(mark) = below.checked_sub(1).and_then(|i| marks.get(i)) {
                    reader.pending_seek = Some(*mark);
                    reader.apply_seek();
                }
                reader
            }
        };
        if !self.config.follow && from > 0 {
            // Count the lines before `from` now, so a bounded partition that
            // is too short is reported at open.
            if reader.pump(0, None)? == crate::record::ReadStatus::End && reader.next < from {
                return Err(SourceError::OffsetOutOfRange {
                    partition,
                    offset: from,
                    end: reader.next,
                });
            }
        }
        Ok(Box::new(reader))
    }

    /// The configuration (path, format, fields, follow mode, partition
    /// settings) and the partition files found: their names in partition
    /// order when there are a few, else their count, the first and last
    /// names and a digest of all of them.
    fn describe(&self) -> String {
        let config = serde_json::to_string(&self.config).unwrap_or_default();
        let found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        let layout = match found.as_ref().map(|f| &f.layout) {
            None => "not listed yet".to_owned(),
            Some(Layout::File(path)) => format!("file {}", path.display()),
            Some(Layout::Shared { path, count, .. }) => {
                format!("file {} with {count} partitions", path.display())
            }
            Some(Layout::Directory(files)) => describe_files(files),
        };
        format!("files {config}: {layout}")
    }
}

/// The partition files of a directory, for [`Source::describe`].
fn describe_files(files: &[PathBuf]) -> String {
    const LISTED: usize = 16;
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    if names.len() <= LISTED {
        return format!("partition files {}", names.join(", "));
    }
    // FNV-1a over the names, so that two listings differing anywhere differ.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for name in &names {
        for b in name.bytes().chain([0]) {
            digest = (digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!(
        "{} partition files {} to {} (names digest {digest:016x})",
        names.len(),
        names[0],
        names[names.len() - 1]
    )
}
