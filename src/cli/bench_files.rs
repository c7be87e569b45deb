//! `tidemark bench files`: the whole `tidemark run` process on generated
//! files — CSV and JSON lines, as a directory of partition files and as one
//! file with a partition column — beside a plain read-and-parse loop over
//! the same bytes measured in the same run (how close decoding and the rest
//! of the job come to reading and parsing alone).

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use tidemark::sources::generator::write_partition_files;
use tidemark::sources::{Format, GeneratorConfig, GeneratorSource};
use tidemark::spec::{InputFormat, JobWindow};

/// Flags of `tidemark bench files`.
#[derive(Args, Debug)]
pub struct FilesArgs {
    /// Events of the generated files.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u32,
    /// Partitions (files of the directory layout; values of the partition
    /// column in the one-file layout).
    #[arg(long, default_value_t = 4)]
    pub partitions: u32,
    /// Events per ms of event time. At 100, 10 000 keys make about one
    /// result row per 10 events of a 1 s tumbling window; at 1 (gen.py's
    /// default) nearly every event is a row of its own, so the run measures
    /// writing results as much as reading.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// The window of the job.
    #[arg(long, default_value = "tumbling:1s")]
    pub window: JobWindow,
    /// Formats to measure, comma-separated.
    #[arg(long, default_value = "csv,jsonl", value_delimiter = ',')]
    pub formats: Vec<InputFormat>,
    /// Layouts to measure, comma-separated.
    #[arg(long, default_value = "directory,file", value_delimiter = ',')]
    pub layouts: Vec<Layout>,
    /// Worker threads of `tidemark run`.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Runs of each; the median and the range are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print the results as one JSON object on standard output instead of
    /// the table.
    #[arg(long)]
    pub json: bool,
    /// Write the generated files (and the runs' outputs) here and keep them
    /// (default: a temporary directory, deleted at the end).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// How the records are laid out on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One file per partition, in a directory.
    Directory,
    /// One file holding every partition, with a partition column.
    File,
}

/// One (format, layout) measured.
#[derive(serde::Serialize)]
struct Row {
    format: String,
    layout: Layout,
    records: u64,
    bytes: u64,
    result_rows: u64,
    runs: usize,
    /// `tidemark run`, whole process: records per CPU second, min/median/max.
    records_per_core_second: [f64; 3],
    wall_seconds: [f64; 3],
    cpu_seconds: [f64; 3],
    peak_rss_bytes: u64,
    /// The plain read-and-parse loop over the same bytes.
    plain_records_per_core_second: [f64; 3],
    /// CPU per record of the run over that of the plain loop, per run.
    ratio_to_plain: [f64; 3],
}

/// Runs `tidemark bench files`.
pub fn run(args: &FilesArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.events >= 1_000,
        "--events {} is too few to measure: give at least 1000",
        args.events
    );
    anyhow::ensure!(
        !args.formats.is_empty() && !args.layouts.is_empty(),
        "give at least one --formats and one --layouts"
    );
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tidemark-bench-files-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("could not create \"{}\"", dir.display()))?;
    let result = measure(args, &dir);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn measure(args: &FilesArgs, dir: &Path) -> anyhow::Result<()> {
    let config = GeneratorConfig {
        events: args.events,
        keys: args.keys,
        partitions: args.partitions.max(1),
        rate: args.rate,
        disorder: 50,
        ..GeneratorConfig::default()
    };
    let source =
        GeneratorSource::new(config).map_err(|e| anyhow::anyhow!("invalid workload: {e}"))?;
    if !args.json {
        println!(
            "tidemark bench files: {} events, {} keys, {} partitions, {} events/ms, 50 ms disorder; {}, delay 50 ms, count,sum, {} worker(s); {} run(s) of each, beside a plain read-and-parse loop over the same bytes",
            args.events,
            args.keys,
            args.partitions.max(1),
            args.rate,
            args.window,
            args.workers.max(1),
            args.runs.max(1)
        );
    }
    let mut rows = Vec::new();
    let mut reference: Option<(String, Vec<u8>)> = None;
    for &format in &args.formats {
        let fmt: Format = format.into();
        let parts = dir.join(format!("parts-{fmt}"));
        let written = write_partition_files(&source, &parts, fmt, false)
            .with_context(|| format!("generating into \"{}\"", parts.display()))?;
        for &layout in &args.layouts {
            let (input, files) = match layout {
                Layout::Directory => (parts.clone(), written.files.clone()),
                Layout::File => {
                    let one = dir.join(format!("all.{fmt}"));
                    interleave(&written.files, &one)?;
                    (one.clone(), vec![one])
                }
            };
            let bytes: u64 = files
                .iter()
                .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
                .sum();
            let output = dir.join(format!("out-{fmt}-{layout:?}.jsonl").to_lowercase());
            let summary = dir.join("summary.json");
            let (mut walls, mut cpus, mut plains, mut ratios) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut rss = 0u64;
            let mut result_rows = 0;
            for _ in 0..args.runs.max(1) {
                let plain = plain_parse(&files, fmt)
                    .with_context(|| format!("the plain loop over {}", input.display()))?;
                anyhow::ensure!(
                    plain.records == args.events,
                    "the plain loop parsed {} of {} records in {}",
                    plain.records,
                    args.events,
                    input.display()
                );
                let run = whole_run(args, format, layout, &input, &output, &summary)?;
                anyhow::ensure!(
                    run.records == args.events && run.dead_letters == 0,
                    "tidemark run read {} records ({} dead letters) of {} in {}",
                    run.records,
                    run.dead_letters,
                    args.events,
                    input.display()
                );
                result_rows = run.windows;
                rss = rss.max(run.peak_rss_bytes);
                ratios.push(run.cpu.as_secs_f64() / plain.cpu.as_secs_f64().max(1e-9));
                walls.push(run.wall.as_secs_f64());
                cpus.push(run.cpu.as_secs_f64());
                plains.push(plain.cpu.as_secs_f64());
            }
            // A broken engine must not post a good number: every format and
            // layout of the same records gives the same results.
            let results = std::fs::read(&output)?;
            let name = format!("{fmt} {layout:?}").to_lowercase();
            match &reference {
                None => reference = Some((name, results)),
                Some((first, expected)) => anyhow::ensure!(
                    *expected == results,
                    "the results of {name} differ from those of {first}"
                ),
            }
            let per = |secs: &[f64]| {
                let (lo, mid, hi) = super::bench::spread(secs);
                let n = args.events as f64;
                [n / hi.max(1e-9), n / mid.max(1e-9), n / lo.max(1e-9)]
            };
            rows.push(Row {
                format: fmt.to_string(),
                layout,
                records: args.events,
                bytes,
                result_rows,
                runs: args.runs.max(1),
                records_per_core_second: per(&cpus),
                wall_seconds: super::bench::spread(&walls).into(),
                cpu_seconds: super::bench::spread(&cpus).into(),
                peak_rss_bytes: rss,
                plain_records_per_core_second: per(&plains),
                ratio_to_plain: super::bench::spread(&ratios).into(),
            });
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<6} {:<10} {:>8} {:>26} {:>7} {:>9} {:>14} {:>18}",
        "format",
        "layout",
        "MB",
        "records/s/core med [range]",
        "wall s",
        "peak RSS",
        "plain parse/s",
        "x plain med [rng]"
    );
    for r in &rows {
        let [lo, mid, hi] = r.records_per_core_second;
        let [rlo, rmid, rhi] = r.ratio_to_plain;
        println!(
            "{:<6} {:<10} {:>8.1} {:>8.2} M [{:>5.2}-{:>5.2} M] {:>7.2} {:>5.1} MiB {:>12.2} M {:>6.2} [{:.2}-{:.2}]",
            r.format,
            format!("{:?}", r.layout).to_lowercase(),
            r.bytes as f64 / 1e6,
            mid / 1e6,
            lo / 1e6,
            hi / 1e6,
            r.wall_seconds[1],
            r.peak_rss_bytes as f64 / 1048576.0,
            r.plain_records_per_core_second[1] / 1e6,
            rmid,
            rlo,
            rhi
        );
    }
    println!(
        "records/s/core: records over the CPU time of the whole `tidemark run` process (reading, decoding, windowing, writing {} result rows); plain parse: reading the same bytes and parsing each record's fields (std for CSV, serde_json for JSON lines), nothing else; x plain: CPU per record of the run over the plain loop's, per run",
        rows.first().map_or(0, |r| r.result_rows)
    );
    if let Some(d) = &args.dir {
        println!("files and outputs kept in {}", d.display());
    }
    Ok(())
}

/// Writes the lines of `files` into `out` one from each in turn (as a log
/// of all partitions in arrival order would hold them).
fn interleave(files: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    let mut readers: Vec<_> = files
        .iter()
        .map(|f| std::fs::File::open(f).map(|f| BufReader::with_capacity(1 << 16, f)))
        .collect::<Result<_, _>>()?;
    let mut writer = BufWriter::with_capacity(1 << 16, std::fs::File::create(out)?);
    let mut line = Vec::new();
    let mut open = readers.len();
    let mut done = vec![false; readers.len()];
    while open > 0 {
        for (i, reader) in readers.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                done[i] = true;
                open -= 1;
                continue;
            }
            writer.write_all(&line)?;
        }
    }
    writer.flush()?;
    Ok(())
}

/// What the plain loop measured.
struct Plain {
    records: u64,
    cpu: Duration,
}

/// The plain loop: reads the files in 1 MiB chunks and parses every line's
/// fields (`partition, offset, key, ts, value`), folding them into a
/// checksum so that nothing is optimized away.
fn plain_parse(files: &[PathBuf], format: Format) -> anyhow::Result<Plain> {
    #[derive(serde::Deserialize)]
    struct JsonRow<'a> {
        #[serde(borrow)]
        key: &'a str,
        ts: i64,
        value: i64,
        partition: u32,
    }
    let cpu0 = crate::harness::cpu_time().unwrap_or_default();
    let mut records = 0u64;
    let mut checksum = 0i64;
    let mut buf = vec![0u8; 1 << 20];
    for path in files {
        let mut file = std::fs::File::open(path)?;
        let mut filled = 0;
        loop {
            let n = file.read(&mut buf[filled..])?;
            filled += n;
            let end = if n == 0 {
                filled
            } else {
                match buf[..filled].iter().rposition(|&b| b == b'\n') {
                    Some(i) => i + 1,
                    None => {
                        buf.resize(buf.len() * 2, 0);
                        continue;
                    }
                }
            };
            for line in buf[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let text = std::str::from_utf8(line)?;
                let (key, ts, value, partition) = match format {
                    Format::Csv => {
                        let mut f = text.split(',');
                        let partition: u32 = f.next().unwrap_or("").parse()?;
                        let _offset = f.next();
                        let key = f.next().unwrap_or("");
                        let ts: i64 = f.next().unwrap_or("").parse()?;
                        let value: i64 = f.next().unwrap_or("").parse()?;
                        (key, ts, value, partition)
                    }
                    Format::Jsonl => {
                        let row: JsonRow<'_> = serde_json::from_str(text)?;
                        (row.key, row.ts, row.value, row.partition)
                    }
                };
                records += 1;
                checksum = checksum
                    .wrapping_add(ts ^ value)
                    .wrapping_add(key.len() as i64 + i64::from(partition));
            }
            if n == 0 {
                break;
            }
            buf.copy_within(end..filled, 0);
            filled -= end;
        }
    }
    std::hint::black_box(checksum);
    let cpu = crate::harness::cpu_time()
        .unwrap_or_default()
        .saturating_sub(cpu0);
    Ok(Plain { records, cpu })
}

/// What one `tidemark run` process measured.
struct WholeRun {
    records: u64,
    dead_letters: u64,
    windows: u64,
    wall: Duration,
    cpu: Duration,
    peak_rss_bytes: u64,
}

/// Runs `tidemark run` (this binary) on `input` as a user would, results
/// to `output`; wall clock around the process, CPU time and peak RSS from
/// its `--summary-json`.
fn whole_run(
    args: &FilesArgs,
    format: InputFormat,
    layout: Layout,
    input: &Path,
    output: &Path,
    summary: &Path,
) -> anyhow::Result<WholeRun> {
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["run", "-q", "--delay", "50ms", "--agg", "count,sum"])
        .arg("--input")
        .arg(input)
        .arg(format!("--format={format}"))
        .arg(format!("--window={}", args.window))
        .arg(format!("--workers={}", args.workers.max(1)))
        .arg("--output")
        .arg(output)
        .arg("--summary-json")
        .arg(summary);
    let fields: [&str; 4] = match format {
        InputFormat::Csv => ["2", "3", "4", "0"],
        InputFormat::Jsonl => ["key", "ts", "value", "partition"],
    };
    cmd.arg(format!("--key={}", fields[0]))
        .arg(format!("--time={}", fields[1]))
        .arg(format!("--value={}", fields[2]));
    if layout == Layout::File {
        cmd.arg(format!("--partition-field={}", fields[3]));
    }
    let start = Instant::now();
    let out = cmd.output()?;
    let wall = start.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "tidemark run on {} failed ({}): {}",
        input.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(summary)?)?;
    let number = |name: &str| json.get(name).and_then(serde_json::Value::as_u64);
    Ok(WholeRun {
        records: number("records").unwrap_or(0),
        dead_letters: number("dead_letters").unwrap_or(0),
        windows: number("windows_emitted").unwrap_or(0),
        wall,
        cpu: Duration::from_secs_f64(
            json.get("cpu_seconds")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(wall.as_secs_f64()),
        ),
        peak_rss_bytes: number("peak_rss_bytes").unwrap_or(0),
    })
}
