//! `tidemark inspect DIR`: what each checkpoint in a checkpoint directory
//! holds — its frontier and watermark, each partition's next offset and
//! stream time, the committed length and digest of each output, the job
//! fingerprint, its size, and whether its checksums hold.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use tidemark::engine::checkpoint::{CheckpointDir, CheckpointInfo, OutputPosition};

/// Arguments of `tidemark inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A checkpoint directory, as the engine's checkpoint store
    /// (`tidemark_engine::checkpoint::CheckpointDir`) writes it.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// One JSON object per checkpoint instead of text, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Lists the checkpoints of `args.dir`, newest first.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    if !args.dir.exists() {
        anyhow::bail!(
            "checkpoint directory \"{}\" does not exist",
            args.dir.display()
        );
    }
    let dir = CheckpointDir::open(&args.dir)
        .with_context(|| format!("opening checkpoint directory \"{}\"", args.dir.display()))?;
    let mut list = dir
        .list()
        .with_context(|| format!("listing checkpoint directory \"{}\"", args.dir.display()))?;
    list.sort_by_key(|info| std::cmp::Reverse(info.id));
    if args.json {
        for info in &list {
            println!("{}", json(info));
        }
        return Ok(());
    }
    if list.is_empty() {
        println!("no checkpoint in \"{}\"", args.dir.display());
    }
    for info in &list {
        print!("{}", text(info));
    }
    Ok(())
}

/// An event time in ms as RFC 3339 (UTC), when it is one.
fn rfc3339(ms: i64) -> String {
    // humantime formats years up to 9999.
    const LAST_MS: u64 = 253_402_300_799_999;
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms <= LAST_MS)
        .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
        .map(|t| humantime::format_rfc3339_millis(t).to_string())
        .unwrap_or_else(|| "-".into())
}

fn output(name: &str, position: &Option<OutputPosition>) -> String {
    match position {
        Some(p) => format!("  {name:<13} {} bytes, sha256 {}\n", p.len, p.digest),
        None => format!("  {name:<13} (not a file)\n"),
    }
}

fn text(info: &CheckpointInfo) -> String {
    let mut out = format!("checkpoint {} at {}\n", info.id, info.path.display());
    match &info.problem {
        None => out.push_str("  checksums     hold\n"),
        Some(problem) => out.push_str(&format!("  checksums     FAIL: {problem}\n")),
    }
    out.push_str(&format!(
        "  size          {} bytes on disk\n",
        info.bytes_on_disk
    ));
    let Some(m) = &info.manifest else {
        return out + "\n";
    };
    let watermark =
        tidemark::windows::time::completed_watermark(m.frontier, m.fingerprint.policy.delay);
    if m.frontier == i64::MAX {
        out.push_str("  frontier      end of input: the job completed\n");
    } else {
        out.push_str(&format!(
            "  frontier      {} ({}), watermark {} ({})\n",
            m.frontier,
            rfc3339(m.frontier),
            watermark,
            rfc3339(watermark)
        ));
    }
    for (partition, p) in &m.positions {
        let stream_time = p.stream_time.map_or_else(
            || "none yet".to_string(),
            |t| format!("{t} ({})", rfc3339(t)),
        );
        out.push_str(&format!(
            "  partition {partition:<3} next offset {}, stream time {stream_time}\n",
            p.offset
        ));
    }
    out.push_str(&output("results", &m.outputs.results));
    out.push_str(&output("late records", &m.outputs.late));
    out.push_str(&output("dead letters", &m.outputs.dead_letters));
    let state = m.files.iter().map(|f| f.len).sum::<u64>();
    let per_window = if m.counters.open_windows > 0 {
        format!(
            ", {:.1} bytes per open window",
            state as f64 / m.counters.open_windows as f64
        )
    } else {
        String::new()
    };
    out.push_str(&format!(
        "  window state  {state} bytes: {} open windows (panes or sessions) of {} keys{per_window}\n",
        m.counters.open_windows, m.counters.keys
    ));
    let f = &m.fingerprint;
    out.push_str(&format!(
        "  job           {} aggregating {}, delay {} ms, lateness {} ms, emit {}\n",
        f.window,
        f.fields.join(","),
        f.policy.delay,
        f.policy.lateness,
        f.policy.emit.name()
    ));
    // The rest of what the job is, as its fingerprint names it: the engine
    // options of its identity, then the settings of its input.
    let settings: Vec<String> = f
        .options
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .chain(
            f.settings
                .iter()
                .map(|(name, value)| format!("{name} {value}")),
        )
        .collect();
    if !settings.is_empty() {
        out.push_str(&format!("  settings      {}\n", settings.join("; ")));
    }
    // As the run's summary says them: rows per kind, then records.
    let c = &m.counters;
    let updates = c.corrections.saturating_sub(c.retractions);
    out.push_str(&format!(
        "  rows          {} final, {updates} update, {} retract\n",
        c.windows_emitted, c.retractions
    ));
    out.push_str(&format!(
        "  records       {} read, {} late dropped, {} late applied, {} dead letters\n\n",
        c.records, c.late_dropped, c.late_applied, c.dead_letters
    ));
    out
}

fn json(info: &CheckpointInfo) -> serde_json::Value {
    serde_json::json!({
        "id": info.id,
        "path": info.path.display().to_string(),
        "valid": info.problem.is_none(),
        "problem": info.problem.as_ref().map(|p| p.to_string()),
        "bytes_on_disk": info.bytes_on_disk,
        "manifest": info.manifest,
    })
}
