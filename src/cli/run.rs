//! `tidemark run`: a windowed job from flags or a TOML job file, with a
//! progress bar on a terminal and a summary on standard error.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tidemark::engine::{Parallelism, Stats, Summary};
use tidemark::spec::{OnBadRecord, OutputPath};
use tidemark::{JobError, JobSpec};

use super::loud::{summary_notes, BadLineWatch, DeadLetterEcho, Destinations, TooManyBad};

/// Flags of `tidemark run`: the job's options (each also a key of the job
/// file) and the options of this run only.
#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// A TOML job file: its keys are the flag names without the dashes
    /// (batch-size = 64); flags given too override it. Its paths are
    /// relative to its own directory.
    #[arg(long, value_name = "FILE")]
    pub job: Option<PathBuf>,
    /// The job's options.
    #[command(flatten)]
    pub spec: JobSpec,
    /// Cluster mode: number of processes (with --process and --hostfile).
    #[arg(long, value_name = "N", help_heading = "Cluster")]
    pub processes: Option<usize>,
    /// Cluster mode: this process's index, 0 to N-1; process 0 writes the
    /// outputs.
    #[arg(long, value_name = "I", help_heading = "Cluster")]
    pub process: Option<usize>,
    /// Cluster mode: one host:port per line, one line per process.
    #[arg(long, value_name = "FILE", help_heading = "Cluster")]
    pub hostfile: Option<PathBuf>,
    /// No progress bar and no summary on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

impl RunArgs {
    fn cluster(&self, workers: usize) -> anyhow::Result<Option<Parallelism>> {
        let (Some(n), Some(process), Some(hostfile)) =
            (self.processes, self.process, &self.hostfile)
        else {
            if self.processes.is_some() || self.process.is_some() || self.hostfile.is_some() {
                return Err(JobError::Spec(tidemark::spec::SpecError(
                    "cluster mode needs all of --processes, --process and --hostfile".into(),
                ))
                .into());
            }
            return Ok(None);
        };
        let text = std::fs::read_to_string(hostfile)
            .with_context(|| format!("reading hostfile \"{}\"", hostfile.display()))?;
        let hosts: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        if hosts.len() != n {
            return Err(JobError::Spec(tidemark::spec::SpecError(format!(
                "--processes {n} but hostfile \"{}\" lists {} hosts",
                hostfile.display(),
                hosts.len()
            )))
            .into());
        }
        Ok(Some(Parallelism::Cluster {
            workers,
            process,
            hosts,
        }))
    }
}

/// Runs `tidemark run`.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let spec = match &args.job {
        Some(path) => JobSpec::from_file(path)?,
        None => JobSpec::default(),
    }
    .overlay(args.spec.clone());
    let mut builder = spec.to_any_builder()?;
    let workers = spec.workers.unwrap_or(tidemark::spec::defaults::WORKERS);
    match args.cluster(workers)? {
        Some(cluster) => builder = builder.parallelism(cluster),
        None if spec.connect_timeout.is_some() => {
            return Err(JobError::Spec(tidemark::spec::SpecError(
                "--connect-timeout applies only in cluster mode (with --processes, --process and --hostfile)".into(),
            ))
            .into());
        }
        None => {}
    }
    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(Progress::new);
    // Without a dead-letter file the bad lines are shown, not dropped.
    let echo = match &spec.dead_letter {
        Some(_) => None,
        None => {
            let (sink, count) = DeadLetterEcho::new(progress.as_ref().map(Progress::bar));
            builder = builder.dead_letter_sink(sink);
            Some(count)
        }
    };
    let job = builder.build()?;
    let stats = Arc::new(Stats::default());
    {
        // Checkpoint notices (a damaged checkpoint skipped, a resume) are
        // warnings an operator must see, even with --quiet.
        let bar = progress.as_ref().map(Progress::bar);
        stats.on_notice(move |text| match &bar {
            Some(bar) => bar.suspend(|| eprintln!("tidemark: {text}")),
            None => eprintln!("tidemark: {text}"),
        });
    }
    if progress.is_some() || spec.metrics_addr.is_some() {
        stats.watch_oldest_window();
    }
    let metrics = match &spec.metrics_addr {
        Some(addr) => {
            let server = super::metrics::serve(addr, Arc::clone(&stats))?;
            // Printed even with --quiet: a scraper needs the port.
            eprintln!(
                "tidemark: serving metrics on http://{}/metrics",
                server.addr
            );
            Some(server)
        }
        None => None,
    };
    let started = Instant::now();
    let total = match &spec.input {
        Some(tidemark::spec::Input::Gen(g)) => Some(g.events),
        _ => None,
    };
    let follow = spec.follow == Some(true);
    let progress = progress.map(|p| p.start(Arc::clone(&stats), total, follow));
    let signals = Signals::watch(Arc::clone(&stats))?;
    let fail_on_bad = spec.on_bad_record == Some(OnBadRecord::Fail);
    let limit = spec.max_bad_ratio();
    let watch = BadLineWatch::start(
        Arc::clone(&stats),
        limit,
        !fail_on_bad && spec.follow == Some(true),
    );
    let result = job.run_with(Arc::clone(&stats));
    drop(metrics);
    let tripped = watch.finish();
    if let Some(p) = progress {
        p.stop();
    }
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let e = anyhow::Error::from(e);
            if !args.quiet && !is_checkpoint_refusal(&e) {
                // What the outputs hold: their last commit (a failed job
                // cuts its files back to it).
                let watermark = || match stats.committed_watermark() {
                    None => "nothing completed yet".into(),
                    Some(w) if w == i64::MAX => "every partition ended".into(),
                    Some(w) => format!("watermark {w}"),
                };
                if let Some(note) = failure_note(&e, args.process, watermark) {
                    eprintln!("tidemark: {note}");
                }
            }
            return Err(e);
        }
    };
    if let Some(from) = spec.from_time {
        // Past the input: every frontier step is before it, so nothing
        // was written. Said even with --quiet: an empty output is not an
        // answer.
        let newest = stats
            .snapshot()
            .partitions
            .iter()
            .filter_map(|p| p.stream_time)
            .max();
        if newest.is_some_and(|t| t < from.0) && summary.final_watermark.is_none() {
            let newest = newest.unwrap_or_default();
            eprintln!(
                "tidemark: --from-time {} ({}) is past the end of the input, whose last stream time is {newest} ({}): nothing was written",
                from.0,
                utc(from.0),
                utc(newest)
            );
        }
    }
    if let Some(path) = &spec.summary_json {
        write_summary_json(path, &summary, started.elapsed())?;
    }
    if !args.quiet {
        let to = Destinations {
            dead_letter: spec.dead_letter.as_ref().map(output_name),
            late: spec.late.as_ref().map(output_name),
            echo: echo.clone(),
            window: spec.window,
        };
        print_summary(&summary, started.elapsed(), &to, args.processes);
        if let Some(dir) = &spec.checkpoint_dir {
            let resumed = summary.resumed_from.map_or(String::new(), |id| {
                format!("; resumed from checkpoint {id} (the counts include the run before it)")
            });
            let n = summary.checkpoints.max(1);
            if summary.checkpoints == 0 {
                eprintln!("  checkpoints: none written to {}{resumed}", dir.display());
            } else {
                eprintln!(
                    "  checkpoints: {} written to {} (on average {:.1} ms and {} bytes of window state each){resumed}",
                    summary.checkpoints,
                    dir.display(),
                    summary.checkpoint_nanos as f64 / n as f64 / 1e6,
                    summary.checkpoint_bytes / n
                );
            }
        }
        // The results file's digest (process 0 writes the outputs).
        // (A device or a pipe has no bytes to digest.)
        let regular = |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file());
        if let (Some(OutputPath::File(path)), None | Some(0)) = (&spec.output, args.process) {
            if let Some(p) = regular(path)
                .then(|| tidemark::engine::checkpoint::digest_file(path).ok())
                .flatten()
            {
                eprintln!(
                    "  results digest: sha256 {} ({} bytes; tidemark digest FILE gives the same)",
                    p.digest, p.len
                );
            }
        }
    }
    let seen = echo
        .as_ref()
        .and_then(|e| e.first.lock().ok().map(|f| f.clone()))
        .unwrap_or_default();
    let watermark = watermark_text(summary.final_watermark);
    let (bad, read) =
        tripped.unwrap_or((summary.dead_letters, summary.records + summary.dead_letters));
    if !fail_on_bad && limit.exceeded(bad, read) {
        if let Some((_, name)) = signals.received() {
            eprintln!("tidemark: stopped by {name}");
        }
        return Err(TooManyBad {
            bad,
            read,
            limit,
            stopped_early: tripped.is_some(),
            watermark,
            hint: super::diagnose::diagnose(&spec, &seen),
        }
        .into());
    }
    if let Some((signal, name)) = signals.received() {
        return Err(super::Interrupted {
            signal,
            name,
            watermark,
        }
        .into());
    }
    Ok(())
}

/// A resume refused before anything was written (a changed job, outputs
/// that are not the committed ones): the outputs were not touched.
fn is_checkpoint_refusal(e: &anyhow::Error) -> bool {
    use tidemark::engine::{CheckpointError, EngineError};
    matches!(
        e.downcast_ref::<JobError>(),
        Some(JobError::Engine(EngineError::Checkpoint(
            CheckpointError::JobChanged { .. }
                | CheckpointError::OutputMismatch { .. }
                | CheckpointError::InputChanged { .. }
                | CheckpointError::WouldReplace { .. }
        )))
    )
}

/// `--summary-json`: the summary as one JSON object. Every figure names
/// its unit (`_ms`, `_seconds`, `_bytes`); figures that were not measured
/// (checkpoints without `--checkpoint-dir`, the sampled state without a
/// sample) are left out rather than given as 0.
fn write_summary_json(
    path: &std::path::Path,
    summary: &Summary,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let this_run = summary.records.saturating_sub(summary.records_before);
    let mut json = summary_object(summary);
    let extra = serde_json::json!({
        "records_this_run": this_run,
        "elapsed_seconds": secs,
        // This run's records: a resumed run does not count the runs before.
        "records_per_second": this_run as f64 / secs,
        "cpu_seconds": cpu_time::ProcessTime::try_now()
            .ok()
            .map(|t| t.as_duration().as_secs_f64()),
        "peak_rss_bytes": crate::harness::peak_rss_bytes(),
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (json.as_object_mut(), extra) {
        obj.extend(extra.into_iter().filter(|(_, v)| !v.is_null()));
    }
    let mut text = serde_json::to_string_pretty(&json)?;
    text.push('\n');
    std::fs::write(path, text)
        .map_err(|e| anyhow::anyhow!("could not write the summary to \"{}\": {e}", path.display()))
}

/// A summary's counts as a JSON object (the cluster's totals nested).
fn summary_object(s: &Summary) -> serde_json::Value {
    let mut o = serde_json::json!({
        "records": s.records,
        "partitions": s.partitions,
        "windows": s.windows(),
        "windows_emitted": s.windows_emitted,
        "rows": {"final": s.windows_emitted, "update": s.updates(), "retract": s.retractions},
        "late_dropped": s.late_dropped,
        "late_applied": s.late_applied,
        "unassigned": s.unassigned,
        "dead_letters": s.dead_letters,
        "idle_releases": s.idle_releases,
        // null: every partition ended.
        "final_watermark_ms": s.final_watermark,
        "final_watermark": s.final_watermark.map(utc),
        "already_complete": s.already_complete,
    });
    let Some(map) = o.as_object_mut() else {
        return o;
    };
    if s.checkpoints > 0 {
        map.insert(
            "checkpoints".into(),
            serde_json::json!({
                "written": s.checkpoints,
                "seconds": s.checkpoint_nanos as f64 / 1e9,
                "state_bytes": s.checkpoint_bytes,
            }),
        );
    }
    if s.peak_open_windows > 0 {
        map.insert("peak_open_windows".into(), s.peak_open_windows.into());
        map.insert("peak_state_bytes".into(), s.peak_state_bytes.into());
    }
    if let Some(id) = s.resumed_from {
        map.insert("resumed_from".into(), id.into());
        map.insert("records_before".into(), s.records_before.into());
    }
    if let Some(p) = s.process {
        map.insert("process".into(), p.into());
    }
    if !s.tables.is_empty() {
        // Sizes at the end (after the last trim) and the peak versions of
        // one key during the run.
        map.insert(
            "tables".into(),
            serde_json::to_value(&s.tables).unwrap_or_default(),
        );
    }
    if let Some(total) = &s.cluster {
        map.insert("cluster".into(), summary_object(total));
    }
    o
}

/// How the summary names an output.
fn output_name(path: &OutputPath) -> String {
    match path {
        OutputPath::Stdout => "standard output".into(),
        OutputPath::File(p) => p.display().to_string(),
        OutputPath::Kafka { .. } => path.to_string(),
    }
}

/// The line printed with the error of a failed run, on what its outputs
/// hold: that none was opened when the run stopped before opening them,
/// else how far they are complete (`watermark`), or nothing when the reader
/// of an output went away (it has what it wanted) or this is a cluster
/// process other than 0 (it writes no output).
fn failure_note(
    e: &anyhow::Error,
    process: Option<usize>,
    watermark: impl FnOnce() -> String,
) -> Option<String> {
    use tidemark::engine::EngineError;
    use tidemark::sources::SourceError;
    // Stopped before any output was opened: a refusal of the cluster's
    // handshake or an unreachable peer, the runtime, or listing the input.
    let before_outputs = matches!(
        e.downcast_ref::<JobError>(),
        Some(JobError::Engine(
            EngineError::Config(_)
                | EngineError::Checkpoint(tidemark::engine::CheckpointError::Locked { .. })
                | EngineError::Unreachable { .. }
                | EngineError::Cluster(_)
                | EngineError::Runtime(_)
                | EngineError::Source(
                    SourceError::OpenInput { .. }
                        | SourceError::ListDirectory { .. }
                        | SourceError::NoPartitionFiles { .. }
                        | SourceError::NotAPartitionFile { .. }
                        | SourceError::MixedFormats { .. }
                        | SourceError::UnknownFormat { .. }
                )
        ))
    );
    if before_outputs {
        return Some("the job did not start; no output was opened".into());
    }
    if super::is_broken_pipe(e) || process.is_some_and(|p| p != 0) {
        return None;
    }
    Some(format!(
        "the job failed; its outputs hold every result the watermark completed ({}), their last commit: output files were cut back to it",
        watermark()
    ))
}

fn watermark_text(w: Option<i64>) -> String {
    match w {
        None => "every partition ended".into(),
        Some(w) if w <= i64::MIN / 2 => "nothing completed yet".into(),
        Some(w) => format!("watermark {w}"),
    }
}

/// SIGINT and SIGTERM: the first asks the job to stop (it writes what its
/// frontier completed and prints its summary); a second ends the process at
/// once.
struct Signals {
    received: Arc<std::sync::Mutex<Option<(i32, &'static str)>>>,
}

impl Signals {
    fn watch(stats: Arc<Stats>) -> anyhow::Result<Signals> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
            .context("installing the SIGINT/SIGTERM handler")?;
        let received: Arc<std::sync::Mutex<Option<(i32, &'static str)>>> = Arc::default();
        let slot = Arc::clone(&received);
        std::thread::spawn(move || {
            for signal in signals.forever() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                let first = slot
                    .lock()
                    .map(|mut s| s.replace((signal, name)).is_none())
                    .unwrap_or(false);
                if first {
                    // Stop first: a closed standard error must not keep
                    // the job running.
                    stats.request_stop();
                    let _ = writeln!(
                        std::io::stderr(),
                        "tidemark: {name}: stopping; writing what the watermark completed (again to quit at once)"
                    );
                } else {
                    std::process::exit(128 + signal);
                }
            }
        });
        Ok(Signals { received })
    }

    fn received(&self) -> Option<(i32, &'static str)> {
        self.received.lock().ok().and_then(|s| *s)
    }
}

/// The summary on standard error. In cluster mode each process names
/// itself and what it read; process 0, which writes the outputs, then
/// gives the cluster's totals (the rows it wrote, the records every process
/// read), and the others say that it does.
fn print_summary(s: &Summary, elapsed: Duration, to: &Destinations, processes: Option<usize>) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let read = |s: &Summary| {
        let this_run = s.records.saturating_sub(s.records_before);
        if s.already_complete {
            return format!(
                "{} records from {} partition(s); the job was already complete, nothing read (--rebuild runs it again)",
                s.records, s.partitions
            );
        }
        // The rate is this run's: a resumed run's counts include the runs
        // before it.
        let before = if s.records_before > 0 {
            format!(", {this_run} of them by this run")
        } else {
            String::new()
        };
        format!(
            "{} records from {} partition(s){before} in {:.2} s ({:.0} records/s)",
            s.records,
            s.partitions,
            secs,
            this_run as f64 / secs
        )
    };
    let Some(process) = s.process else {
        eprintln!("tidemark: {}", read(s));
        print_details(s, to);
        return;
    };
    let of = processes.map_or(String::new(), |n| format!(" of {n}"));
    eprintln!("tidemark: process {process}{of}: {}", read(s));
    match (&s.cluster, process) {
        (Some(total), 0) => {
            let n = processes.map_or(String::new(), |n| format!(" of {n} processes"));
            eprintln!("tidemark: cluster{n}: {}", read(total));
            print_details(total, to);
        }
        (None, 0) => {
            print_details(s, to);
            eprintln!(
                "  the cluster's totals could not be gathered (a process went away after the job); the counts above are this process's"
            );
        }
        _ => {
            eprintln!(
                "  late dropped {}, late applied {}, dead letters {}; process 0 writes the outputs and prints the cluster's totals",
                s.late_dropped, s.late_applied, s.dead_letters
            );
            print_watermark(s);
        }
    }
}

/// The counts of a summary after its first line, its notes, and the final
/// watermark.
fn print_details(s: &Summary, to: &Destinations) {
    eprintln!(
        "  windows emitted {} in {} rows: {} final, {} update, {} retract",
        s.windows(),
        s.windows_emitted + s.corrections,
        s.windows_emitted,
        s.updates(),
        s.retractions,
    );
    eprintln!(
        "  late dropped {}, late applied {}, dead letters {} (records)",
        s.late_dropped, s.late_applied, s.dead_letters
    );
    for t in &s.tables {
        eprintln!("  {}", table_line(t));
    }
    for note in summary_notes(s, to) {
        eprintln!("  {note}");
    }
    if s.idle_releases > 0 {
        eprintln!(
            "  idle partitions released {} time(s) (--idle-after): results may depend on timing",
            s.idle_releases
        );
    }
    print_watermark(s);
}

/// A table's line in the summary: what it read and refused, the
/// lookups, and its size.
pub(crate) fn table_line(t: &tidemark::engine::table::TableSnapshot) -> String {
    let mut line = format!("table {}: {} records", t.name, t.records);
    if t.too_late > 0 {
        line.push_str(&format!(", {} too late for the table", t.too_late));
    }
    if t.dead_letters > 0 {
        line.push_str(&format!(", {} dead letters", t.dead_letters));
    }
    line.push_str(&format!("; {} lookups", t.lookups));
    if t.no_row > 0 {
        line.push_str(&format!(", {} without a row", t.no_row));
    }
    if t.older_than_history > 0 {
        line.push_str(&format!(
            ", {} older than its history",
            t.older_than_history
        ));
    }
    line.push_str(&format!(
        "; {} keys, {} versions (at most {} per key)",
        t.keys, t.versions, t.peak_versions
    ));
    line
}

fn print_watermark(s: &Summary) {
    match s.final_watermark {
        None => eprintln!("  final watermark: +inf (every partition ended)"),
        Some(w) if w <= i64::MIN / 2 => {
            eprintln!("  final watermark: none yet (nothing completed)")
        }
        Some(w) => eprintln!(
            "  final watermark: {w} ({}; outputs complete up to it)",
            utc(w)
        ),
    }
}

/// A progress bar, made before the job (so that dead letters can be
/// printed around it) and fed from the job's counters by a polling thread.
struct Progress {
    bar: ProgressBar,
}

/// A running [`Progress`].
struct Running {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Progress {
    fn new() -> Progress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Progress { bar }
    }

    fn bar(&self) -> ProgressBar {
        self.bar.clone()
    }

    fn start(self, stats: Arc<Stats>, total: Option<u64>, follow: bool) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let bar = self.bar;
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            // Records/s over the last few seconds, not since the start.
            let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
            while !flag.load(Ordering::Relaxed) {
                let snap = stats.snapshot();
                let now = Instant::now();
                window.push_back((now, snap.records));
                while window.len() > 30 {
                    window.pop_front();
                }
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let wall = follow.then_some(now_ms);
                let line = progress_line(
                    &snap,
                    &window,
                    total,
                    started.elapsed(),
                    wall,
                    PROGRESS_WIDTH,
                );
                bar.set_message(line);
                bar.tick();
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Running { stop, thread }
    }
}

/// The width the progress line keeps within (with its spinner and
/// elapsed time), so that it never wraps on a terminal of 120 columns.
const PROGRESS_WIDTH: usize = 108;

/// The progress line: records and rate (and a total and ETA when the
/// input's size is known), the watermark in UTC with its lag and the
/// partition holding it, partitions done, the oldest window still open
/// when the watermark waits for it, late and dead-letter counts, and for a
/// followed input how far the watermark is behind the wall clock (`wall`,
/// ms since the epoch) when that is less than a day. Parts are dropped,
/// least useful first, until the line fits in `width` characters.
pub(crate) fn progress_line(
    snap: &tidemark::engine::StatsSnapshot,
    recent: &std::collections::VecDeque<(Instant, u64)>,
    total: Option<u64>,
    elapsed: Duration,
    wall: Option<i64>,
    width: usize,
) -> String {
    use tidemark::engine::PartitionState;
    let rate = match (recent.front(), recent.back()) {
        (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
            (n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64()
        }
        _ => snap.records as f64 / elapsed.as_secs_f64().max(1e-3),
    };
    // (priority, text): the lower the priority, the longer it stays.
    let mut parts: Vec<(u8, String)> = Vec::new();
    let mut head = format!("{} records", si(snap.records as f64));
    let total = total.filter(|&t| t > 0);
    if let Some(total) = total {
        let pct = 100.0 * snap.records as f64 / total as f64;
        head.push_str(&format!(" ({pct:.0}%)"));
    }
    head.push_str(&format!(", {}/s", si(rate)));
    if let Some(total) = total {
        if rate > 0.0 && snap.records < total {
            let eta = (total - snap.records) as f64 / rate;
            head.push_str(&format!(", ETA {}", short(eta * 1e3)));
        }
    }
    parts.push((0, head));
    match (snap.watermark, snap.held_by) {
        (Some(w), _) if snap.held_by_table.is_some() => {
            let table = snap.held_by_table.as_deref().unwrap_or_default();
            parts.push((1, format!("watermark {} held by table {table}", utc(w))));
        }
        (None, _) if snap.held_by_table.is_some() => {
            let table = snap.held_by_table.as_deref().unwrap_or_default();
            parts.push((1, format!("no watermark yet (table {table} has no record)")));
        }
        (Some(w), Some(p)) => {
            // The partition holding the watermark back is the one to look
            // at when a window does not close: it stays with the watermark.
            parts.push((1, format!("watermark {} held by p{p}", utc(w))));
            if let Some(lag) = snap.event_time_lag_ms {
                parts.push((3, format!("lag {}", short(lag as f64))));
            }
        }
        (None, Some(p)) => {
            parts.push((1, format!("no watermark yet (partition {p} has no record)")))
        }
        _ => {}
    }
    let done = snap
        .partitions
        .iter()
        .filter(|p| p.state == PartitionState::Ended)
        .count();
    parts.push((
        5,
        format!("{done}/{} partitions done", snap.partitions.len()),
    ));
    if let Some(o) = &snap.oldest_open_window {
        // Only while the watermark waits for it: once the watermark is
        // past its end it is firing, and the next report names another.
        if let Some(behind) = o.behind_ms.filter(|&b| b > 0) {
            parts.push((
                6,
                format!(
                    "oldest open window {} keys, {} to go",
                    o.keys,
                    short(behind as f64)
                ),
            ));
        }
    }
    if snap.late_dropped > 0 {
        parts.push((2, format!("late {}", snap.late_dropped)));
    }
    if snap.dead_letters > 0 {
        parts.push((2, format!("dead letters {}", snap.dead_letters)));
    }
    if let Some(lag) = wall.and_then(|now| snap.processing_lag_ms(now)) {
        // Historical data read again is years behind: not worth a word.
        if (0..86_400_000).contains(&lag) {
            parts.push((4, format!("{} behind the wall clock", short(lag as f64))));
        }
    }
    let join = |parts: &[(u8, String)]| -> String {
        parts
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = join(&parts);
    while line.chars().count() > width {
        let Some(worst) = parts
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| *p > 0)
            .max_by_key(|(i, (p, _))| (*p, *i))
            .map(|(i, _)| i)
        else {
            break;
        };
        parts.remove(worst);
        line = join(&parts);
    }
    line
}

/// A span of milliseconds, short: `163ms`, `12.3s`, `4m12s`, `3h12m`,
/// `22d3h`, `3y22d`.
fn short(ms: f64) -> String {
    let ms = ms.max(0.0);
    let s = ms / 1e3;
    if ms < 1e3 {
        format!("{ms:.0}ms")
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3_600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else if s < 86_400.0 {
        format!(
            "{}h{:02}m",
            (s / 3_600.0) as u64,
            ((s % 3_600.0) / 60.0) as u64
        )
    } else if s < 365.0 * 86_400.0 {
        format!(
            "{}d{}h",
            (s / 86_400.0) as u64,
            ((s % 86_400.0) / 3_600.0) as u64
        )
    } else {
        let days = (s / 86_400.0) as u64;
        format!("{}y{}d", days / 365, days % 365)
    }
}

/// An event time (epoch ms) as RFC 3339 in UTC, or the number when out of
/// the calendar's range.
fn utc(ms: i64) -> String {
    u64::try_from(ms)
        .ok()
        .and_then(|ms| std::time::UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
        .map_or_else(
            || format!("{ms} ms"),
            |t| humantime::format_rfc3339_millis(t).to_string(),
        )
}

/// A rate with a k/M suffix.
fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

impl Running {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark::engine::{OldestOpenWindow, PartitionSnapshot, PartitionState, StatsSnapshot};

    fn snapshot() -> StatsSnapshot {
        let partition = |p: u32, t: i64| PartitionSnapshot {
            partition: p,
            next_offset: 123_456_789,
            stream_time: Some(t),
            watermark: Some(t - 5_000),
            records: 123_456_789,
            dead_letters: 0,
            late: 0,
            state: PartitionState::Reading,
        };
        StatsSnapshot {
            counts: tidemark::engine::Counts {
                records: 123_456_789,
                dead_letters: 12_345,
                late_dropped: 1_234_567,
                ..Default::default()
            },
            partitions: (0..12)
                .map(|p| partition(p, 1_793_610_000_000 + i64::from(p)))
                .collect(),
            watermark: Some(1_793_609_995_000),
            held_by: Some(0),
            held_by_table: None,
            tables: Vec::new(),
            event_time_lag_ms: Some(11),
            output_frontier: None,
            output_watermark: None,
            oldest_open_window: Some(OldestOpenWindow {
                end: 1_793_609_996_000,
                keys: 10_000,
                held_by: Some(0),
                behind_ms: Some(1_000),
            }),
            checkpoints: 0,
            last_checkpoint: None,
        }
    }

    #[test]
    fn the_progress_line_fits_and_keeps_what_matters_most() {
        let recent = std::collections::VecDeque::new();
        let elapsed = Duration::from_secs(100);
        let now = 1_793_610_100_000;
        let line = progress_line(
            &snapshot(),
            &recent,
            Some(1_000_000_000),
            elapsed,
            Some(now),
            PROGRESS_WIDTH,
        );
        assert!(line.chars().count() <= PROGRESS_WIDTH, "{line}");
        for part in [
            "123.46M records (12%), 1.23M/s, ETA ",
            "watermark 2026-11-02T08:59:55.000Z held by p0",
            "late 1234567",
        ] {
            assert!(line.contains(part), "{part}: {line}");
        }
        // With room, everything, the wall clock's lag included.
        let wide = progress_line(&snapshot(), &recent, None, elapsed, Some(now), 400);
        for part in [
            "dead letters 12345",
            "lag 11ms",
            "0/12 partitions done",
            "oldest open window 10000 keys, 1.0s to go",
            "1m45s behind the wall clock",
        ] {
            assert!(wide.contains(part), "{part}: {wide}");
        }
        // Data from years ago says nothing of the wall clock.
        let old = progress_line(&snapshot(), &recent, None, elapsed, Some(now * 2), 400);
        assert!(!old.contains("wall clock"), "{old}");
    }

    #[test]
    fn a_table_that_holds_the_watermark_is_named() {
        let recent = std::collections::VecDeque::new();
        let mut snap = snapshot();
        snap.held_by = None;
        snap.held_by_table = Some("users".into());
        let line = progress_line(&snap, &recent, None, Duration::from_secs(1), None, 400);
        assert!(
            line.contains("watermark 2026-11-02T08:59:55.000Z held by table users"),
            "{line}"
        );
        snap.watermark = None;
        let line = progress_line(&snap, &recent, None, Duration::from_secs(1), None, 400);
        assert!(
            line.contains("no watermark yet (table users has no record)"),
            "{line}"
        );
    }

    #[test]
    fn short_spans() {
        for (ms, text) in [
            (163.0, "163ms"),
            (12_340.0, "12.3s"),
            (252_000.0, "4m12s"),
            (11_520_000.0, "3h12m"),
            (1_911_600_000.0, "22d3h"),
            (96_500_000_000.0, "3y21d"),
        ] {
            assert_eq!(short(ms), text);
        }
    }
}
