//! `tidemark bench`: measured throughput of the standard scenarios beside
//! an in-process plain-loop baseline from the same run.

use crate::harness::{
    cpu_ceiling, peak_rss_bytes, plain_loop, plain_stream, run_engine, run_engine_to_file,
    standard_scenarios, Measurement, Scenario, Workload,
};
use clap::{Args, Subcommand};

/// Flags of `tidemark bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// What to measure.
#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// Events per second per core for tumbling, sliding and session windows.
    Throughput(ThroughputArgs),
    /// Wall-clock speedup of N workers over one on the same partitions,
    /// beside what this machine allows N threads of a plain loop.
    Scaling(ScalingArgs),
    /// The latency/completeness trade-off of delay, allowed lateness and
    /// emit mode on one generated workload: event-time latency of first and
    /// last results, completeness, dropped share, corrections.
    Tradeoff(Box<TradeoffArgs>),
    /// The whole `tidemark run` process on generated CSV and JSON-lines
    /// files, as a directory of partition files and as one file with a
    /// partition column, beside a plain read-and-parse loop over the same
    /// bytes.
    Files(super::bench_files::FilesArgs),
    /// What checkpoints cost: the throughput with a checkpoint every second
    /// of event time beside none, and the time and size of a checkpoint
    /// against the number of open windows.
    Checkpoint(CheckpointArgs),
}

/// Flags of `tidemark bench tradeoff`.
#[derive(Args, Debug)]
pub struct TradeoffArgs {
    /// Measure on this job file's input (its input, field mapping, time
    /// format and window; its delay, lateness, emit mode and outputs are
    /// ignored) instead of the generator; the input flags below override it.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Input (instead of the generator)"
    )]
    pub job: Option<std::path::PathBuf>,
    /// Measure on this input instead of the generator: a directory of
    /// partition files, one file, or gen:KNOBS (as `tidemark run --input`).
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "Input (instead of the generator)"
    )]
    pub input: Option<tidemark::spec::Input>,
    /// With --input: how its lines are encoded (as `tidemark run`).
    #[arg(long, help_heading = "Input (instead of the generator)")]
    pub format: Option<tidemark::spec::InputFormat>,
    /// With --input: CSV files start with a header line (as `tidemark run`).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        help_heading = "Input (instead of the generator)"
    )]
    pub header: Option<bool>,
    /// With --input: the key field (as `tidemark run`).
    #[arg(
        long,
        value_name = "FIELD",
        help_heading = "Input (instead of the generator)"
    )]
    pub key: Option<String>,
    /// With --input: the event-time field (as `tidemark run`).
    #[arg(
        long,
        value_name = "FIELD",
        help_heading = "Input (instead of the generator)"
    )]
    pub time: Option<String>,
    /// With --input: the value field (as `tidemark run`).
    #[arg(
        long,
        value_name = "FIELD",
        help_heading = "Input (instead of the generator)"
    )]
    pub value: Option<String>,
    /// With --input: how the time field encodes event time (as `tidemark run`).
    #[arg(
        long,
        value_name = "FORMAT",
        help_heading = "Input (instead of the generator)"
    )]
    pub time_format: Option<tidemark::spec::EventTimeFormat>,
    /// With --input: the field naming each line's partition, when one file
    /// holds all partitions (as `tidemark run`).
    #[arg(
        long,
        value_name = "FIELD",
        help_heading = "Input (instead of the generator)"
    )]
    pub partition_field: Option<String>,
    /// With a directory --input: the files that are its partitions (as
    /// `tidemark run`).
    #[arg(
        long,
        value_name = "GLOB",
        help_heading = "Input (instead of the generator)"
    )]
    pub partition_glob: Option<String>,
    /// The window (default: the job file's, else tumbling:1s).
    #[arg(long)]
    pub window: Option<tidemark::spec::JobWindow>,
    /// Watermark delays to try, comma-separated.
    #[arg(long, default_value = "0,50ms,200ms,1s", value_delimiter = ',')]
    pub delays: Vec<tidemark::spec::DurationMs>,
    /// Allowed latenesses to try, comma-separated.
    #[arg(long, default_value = "0,1s,10s", value_delimiter = ',')]
    pub lateness: Vec<tidemark::spec::DurationMs>,
    /// Emit modes to try, comma-separated.
    #[arg(long, default_value = "final,updates", value_delimiter = ',')]
    pub emit: Vec<tidemark::spec::Emit>,
    /// Events of the generated workload.
    #[arg(long, default_value_t = 200_000, help_heading = "Generated workload")]
    pub events: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 1_000, help_heading = "Generated workload")]
    pub keys: u32,
    /// Key skew: 0 for uniform keys, else key K has weight 1/(K+1)^SKEW.
    #[arg(long, default_value_t = 0.0, help_heading = "Generated workload")]
    pub skew: f64,
    /// Partitions.
    #[arg(long, default_value_t = 4, help_heading = "Generated workload")]
    pub partitions: u32,
    /// Events per ms of event time.
    #[arg(long, default_value_t = 10.0, help_heading = "Generated workload")]
    pub rate: f64,
    /// The disorder, one part per flag: a shape, uniform:100ms (up to
    /// 100 ms early), exp:50ms (exponential, mean 50 ms) or pareto:20ms,1.5
    /// (heavy-tailed: scale 20 ms, tail index 1.5), and stragglers:2%,30s
    /// (2 % of events up to 30 s further behind); none for in order.
    /// Giving any replaces both defaults.
    #[arg(
        long,
        value_name = "PART",
        default_values = ["uniform:100ms", "stragglers:2%,5s"],
        help_heading = "Generated workload"
    )]
    pub disorder: Vec<tidemark::tradeoff::Disorder>,
    /// Release the generated events in real time at this rate (e.g.
    /// 100000/s) and measure processing-time latency too: wall clock from
    /// the arrival of the record that completed a window to its first and
    /// last result. Each setting then takes events / rate seconds.
    #[arg(long, value_name = "N/s", value_parser = per_second, help_heading = "Generated workload")]
    pub real_time_rate: Option<f64>,
    /// Worker threads (the event-time columns do not depend on it).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Write DIR/tradeoff.csv, one row per setting, and DIR/tradeoff.svg,
    /// the plot.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

/// A rate in events per second: `100000/s` or `100000`.
fn per_second(text: &str) -> Result<f64, String> {
    let number = text.trim().strip_suffix("/s").unwrap_or(text.trim());
    match number.replace('_', "").parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!(
            "\"{text}\" is not a rate: expected a positive number of events per second, e.g. 100000/s"
        )),
    }
}

/// Flags of `tidemark bench checkpoint`.
#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Events of the overhead runs (the standard tumbling workload).
    #[arg(long, default_value_t = 5_000_000)]
    pub events: u64,
    /// Checkpoint interval of the overhead runs (event time).
    #[arg(long, default_value = "1s")]
    pub every: tidemark::spec::DurationMs,
    /// Open windows of the size runs, comma-separated.
    #[arg(long, default_value = "10000,100000,1000000", value_delimiter = ',')]
    pub open_windows: Vec<u64>,
    /// Runs of each; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

/// Flags of `tidemark bench scaling`.
#[derive(Args, Debug)]
pub struct ScalingArgs {
    /// Events per run.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u32,
    /// Workers of the parallel run (and partitions of both runs).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Runs of each; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Scenario: tumbling, sliding or session.
    #[arg(long, default_value = "tumbling")]
    pub scenario: String,
    /// Print the results as one JSON object on standard output instead of
    /// the table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `tidemark bench throughput`.
#[derive(Args, Debug)]
pub struct ThroughputArgs {
    /// Events per run.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u32,
    /// Worker threads (and partitions).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Fraction of stragglers (up to 2 s late).
    #[arg(long, default_value_t = 0.0)]
    pub late_frac: f64,
    /// Runs per scenario; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Scenarios to run: any of tumbling,sliding,session.
    #[arg(long, default_value = "tumbling,sliding,session")]
    pub scenario: String,
    /// Print the results as one JSON object on standard output instead of
    /// the table.
    #[arg(long)]
    pub json: bool,
    /// Run the scenarios in this process instead of one child process per
    /// engine run (no peak RSS per scenario then).
    #[arg(long)]
    pub in_process: bool,
    /// Internal: one engine run of one scenario, its measurement printed as
    /// a JSON line (what the parent process reads).
    #[arg(long, hide = true)]
    pub child: bool,
}

fn median(mut runs: Vec<Measurement>) -> Measurement {
    runs.sort_by(|a, b| {
        a.events_per_core_second()
            .total_cmp(&b.events_per_core_second())
    });
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `tidemark bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.what {
        BenchWhat::Throughput(t) => throughput(t),
        BenchWhat::Scaling(s) => scaling(s),
        BenchWhat::Checkpoint(c) => checkpoint(c),
        BenchWhat::Tradeoff(t) => tradeoff(t),
        BenchWhat::Files(f) => super::bench_files::run(f),
    }
}

fn tradeoff(args: &TradeoffArgs) -> anyhow::Result<()> {
    use std::sync::Arc;
    use tidemark::sources::{GeneratorConfig, GeneratorSource, Source};
    use tidemark::tradeoff::{
        csv_row, measure, measure_real_time, truth, Disorder, Setting, CSV_HEADER,
    };
    let mut config = GeneratorConfig {
        events: args.events,
        keys: args.keys,
        partitions: args.partitions,
        rate: args.rate,
        skew: args.skew,
        ..GeneratorConfig::default()
    };
    Disorder::apply(&args.disorder, &mut config).map_err(anyhow::Error::msg)?;
    // A job file, with the input flags over it; or the generator.
    let flags = tidemark::JobSpec {
        input: args.input.clone(),
        format: args.format,
        header: args.header,
        key: args.key.clone(),
        time: args.time.clone(),
        value: args.value.clone(),
        time_format: args.time_format,
        partition_field: args.partition_field.clone(),
        partition_glob: args.partition_glob.clone(),
        ..tidemark::JobSpec::default()
    };
    let spec = match (&args.job, flags == tidemark::JobSpec::default()) {
        (Some(path), _) => Some(tidemark::JobSpec::from_file(path)?.overlay(flags)),
        (None, true) => None,
        (None, false) if args.input.is_none() => anyhow::bail!(
            "--format, --header, --key, --time, --value, --time-format, --partition-field and --partition-glob describe an --input (or a --job file's): give one"
        ),
        (None, false) => Some(flags),
    };
    // The generator's events, when the input is generated.
    let generated = match spec.as_ref().map(|s| &s.input) {
        None => Some(config),
        Some(Some(tidemark::spec::Input::Gen(g))) => Some(GeneratorConfig::from(g)),
        Some(_) => None,
    };
    if let Some(g) = &generated {
        check_events(g.events)?;
    }
    let generator = match &generated {
        Some(g) => Some(
            GeneratorSource::new(g.clone())
                .map_err(|e| anyhow::anyhow!("invalid workload: {e}"))?,
        ),
        None => None,
    };
    if args.real_time_rate.is_some() && generator.is_none() {
        anyhow::bail!("--real-time-rate releases generated events in real time: it needs the generator, not a file input");
    }
    let source = || -> anyhow::Result<Arc<dyn Source>> {
        match (&generator, &spec) {
            (Some(g), _) => Ok(Arc::new(g.clone())),
            (None, Some(spec)) => Ok(spec.source()?),
            (None, None) => anyhow::bail!("no input"),
        }
    };
    let window = args
        .window
        .or_else(|| spec.as_ref().and_then(|s| s.window))
        .map_or(tidemark::windows::WindowSpec::tumbling(1_000), |w| w.spec());
    match (&spec, &generated) {
        (_, Some(g)) => println!(
            "tidemark bench tradeoff: {window} over {} generated events, {} keys{}, {} partitions, {} events/ms, disorder {}",
            g.events,
            g.keys,
            if g.skew > 0.0 {
                format!(" (skew {})", g.skew)
            } else {
                String::new()
            },
            g.partitions,
            g.rate,
            disorder_text(g),
        ),
        (Some(spec), None) => println!(
            "tidemark bench tradeoff: {window} over the input {}{}",
            match &spec.input {
                Some(tidemark::spec::Input::Path(p)) => format!("\"{}\"", p.display()),
                Some(tidemark::spec::Input::Stdin) => "from standard input".to_owned(),
                _ => "given".to_owned(),
            },
            args.job
                .as_ref()
                .map_or_else(String::new, |j| format!(" (job file \"{}\")", j.display()))
        ),
        (None, None) => {}
    }
    println!("latency in event time: how far past a window's end the stream time was when its first / last result was emitted; it, completeness, dropped and corrections are deterministic (the same for any worker count, batch size or timing)");
    match args.real_time_rate {
        Some(rate) => println!("latency in processing time (wall): events released in real time at {rate} events/s; from the arrival of the record that completed a window to its first / last result; not deterministic, nor are records/s and the peak state (per worker)"),
        None => println!("records/s is not deterministic; the peak state is per worker (summed), so it depends on the worker count"),
    }
    let truth = truth(source()?, window)?;
    println!(
        "{} windows in the ground truth (every record counted)",
        truth.len()
    );
    println!();
    let wall_header = if args.real_time_rate.is_some() {
        format!(" | {:>9} {:>9} {:>9}", "wall p50", "p99", "last p99")
    } else {
        String::new()
    };
    println!(
        "{:>8} {:>8} {:>7} | {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>7} {:>7} {:>7} {:>7} {:>6} | {:>9} {:>8} {:>8}{wall_header}",
        "delay", "lateness", "emit", "first p50", "p99", "max", "last p99", "max", "first ok", "last ok", "error", "dropped", "corr/w", "records/s", "peak win", "peak KB"
    );
    let mut csv = format!("{CSV_HEADER}\n");
    let mut reports = Vec::new();
    for &emit in &args.emit {
        for &lateness in &args.lateness {
            for &delay in &args.delays {
                let setting = Setting {
                    delay: delay.millis(),
                    lateness: lateness.millis(),
                    emit: emit.into(),
                };
                let workers = args.workers.max(1);
                let r = match (args.real_time_rate, &generator) {
                    (Some(rate), Some(g)) => {
                        measure_real_time(g, rate, window, setting, &truth, workers)?
                    }
                    _ => measure(source()?, window, setting, &truth, workers)?,
                };
                let ms = |us: u64| us as f64 / 1_000.0;
                let wall = match (&r.first_wall, &r.last_wall) {
                    (Some(f), Some(l)) => format!(
                        " | {:>7.1}ms {:>7.1}ms {:>7.1}ms",
                        ms(f.p50),
                        ms(f.p99),
                        ms(l.p99)
                    ),
                    _ => String::new(),
                };
                println!(
                    "{:>8} {:>8} {:>7} | {:>8} {:>8} {:>8} | {:>8} {:>8} | {:>6.1}% {:>6.1}% {:>7.4} {:>6.2}% {:>6.3} | {:>9.0} {:>8} {:>8.1}{wall}",
                    delay.to_string(),
                    lateness.to_string(),
                    emit.to_string(),
                    r.first_latency.p50,
                    r.first_latency.p99,
                    r.first_latency.max,
                    r.last_latency.p99,
                    r.last_latency.max,
                    100.0 * r.first_complete,
                    100.0 * r.last_complete,
                    r.first_error,
                    100.0 * r.dropped,
                    r.corrections_per_window,
                    r.records_per_second,
                    r.peak_open_windows,
                    r.peak_state_bytes as f64 / 1_000.0,
                );
                csv.push_str(&csv_row(&r));
                csv.push('\n');
                reports.push(r);
            }
        }
    }
    println!("\nlatencies in ms of event time (wall: ms of processing time); first/last ok: share of windows whose first/last result equals the truth; error: mean relative error of first counts; corr/w: retractions per window; peak win / KB: most open windows after a frontier step and the encoded state then");
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("could not create \"{}\": {e}", dir.display()))?;
        let path = dir.join("tradeoff.csv");
        std::fs::write(&path, csv)
            .map_err(|e| anyhow::anyhow!("could not write \"{}\": {e}", path.display()))?;
        let svg = dir.join("tradeoff.svg");
        let title = format!("tidemark bench tradeoff: {window}, {} windows", truth.len());
        tidemark::tradeoff::plot_svg(&reports, &title, &svg).map_err(anyhow::Error::msg)?;
        println!("wrote {} and {}", path.display(), svg.display());
    }
    Ok(())
}

/// A generator's disorder as `--disorder` would give it.
fn disorder_text(g: &tidemark::sources::GeneratorConfig) -> String {
    use tidemark::tradeoff::Disorder;
    let mut text = Disorder::Shape {
        shape: g.disorder_shape,
        scale: g.disorder,
    }
    .to_string();
    if g.late_frac > 0.0 {
        text.push_str(&format!(
            " and {}",
            Disorder::Stragglers {
                share: g.late_frac,
                behind: g.late_extra,
            }
        ));
    }
    text
}

fn checkpoint(args: &CheckpointArgs) -> anyhow::Result<()> {
    check_events(args.events)?;
    let tmp =
        std::env::temp_dir().join(format!("tidemark-bench-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let result = checkpoint_in(args, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn checkpoint_in(args: &CheckpointArgs, tmp: &std::path::Path) -> anyhow::Result<()> {
    use tidemark::engine::CheckpointEvery;
    let runs = args.runs.max(1);
    let results = tmp.join("results.jsonl");
    let dir = tmp.join("checkpoints");
    let scenario = standard_scenarios()
        .into_iter()
        .find(|s| s.name == "tumbling")
        .ok_or_else(|| anyhow::anyhow!("no tumbling scenario"))?;
    let workload = Workload {
        events: args.events,
        ..Workload::default()
    };
    let every = CheckpointEvery::EventTime(args.every.millis().max(1));
    println!(
        "tidemark bench checkpoint: tumbling, {} events, {} keys, results to a file; checkpoint every {} of event time; median of {runs} run(s)",
        args.events, workload.keys, args.every
    );
    let (mut plain, mut checked) = (Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..runs {
        // Interleaved, so both see the same machine weather.
        plain.push(run_engine_to_file(&workload, &scenario, &results, None)?.0);
        let (m, summary) = run_engine_to_file(&workload, &scenario, &results, Some((&dir, every)))?;
        checked.push(m);
        last = Some(summary);
    }
    let (plain, checked) = (median(plain), median(checked));
    println!(
        "  no checkpoints:        {:>7.1} ns/event ({:.2} M events/s per core)",
        plain.ns_per_event(),
        plain.events_per_core_second() / 1e6
    );
    println!(
        "  checkpoint every {:<5} {:>7.1} ns/event ({:.2} M events/s per core)",
        args.every.to_string(),
        checked.ns_per_event(),
        checked.events_per_core_second() / 1e6
    );
    println!(
        "  overhead:              {:+.1} % CPU per event, {:+.1} % wall clock ({:.2} s vs {:.2} s)",
        100.0 * (checked.ns_per_event() / plain.ns_per_event() - 1.0),
        100.0 * (checked.wall.as_secs_f64() / plain.wall.as_secs_f64().max(1e-9) - 1.0),
        checked.wall.as_secs_f64(),
        plain.wall.as_secs_f64()
    );
    if let Some(s) = last {
        let n = s.checkpoints.max(1);
        println!(
            "  checkpoints per run:   {} ({:.2} ms and {} bytes of state each)",
            s.checkpoints,
            s.checkpoint_nanos as f64 / n as f64 / 1e6,
            s.checkpoint_bytes / n
        );
    }
    println!();
    println!("  open windows   checkpoint time   state bytes   bytes per open window");
    for &open in &args.open_windows {
        // Every key opens one window of an hour, and the events span much
        // less than that: at each checkpoint `open` windows are open.
        let keys = u32::try_from(open.max(1)).unwrap_or(u32::MAX);
        let workload = Workload {
            events: u64::from(keys) * 3,
            keys,
            ..Workload::default()
        };
        let scenario = Scenario::new("hour", tidemark::windows::WindowSpec::tumbling(3_600_000));
        let span_ms = (workload.events as f64 / workload.rate) as i64;
        let every = CheckpointEvery::EventTime((span_ms / 4).max(1));
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..runs {
            let (_, s) = run_engine_to_file(&workload, &scenario, &results, Some((&dir, every)))?;
            let n = s.checkpoints.max(1);
            times.push(s.checkpoint_nanos as f64 / n as f64 / 1e6);
            bytes = s.checkpoint_bytes / n;
        }
        println!(
            "  {open:>12}   {:>12.2} ms   {bytes:>11}   {:>10.1}",
            median_of(times),
            bytes as f64 / open as f64
        );
    }
    Ok(())
}

fn scaling(args: &ScalingArgs) -> anyhow::Result<()> {
    let workers = args.workers.max(2);
    let runs = args.runs.max(1);
    check_events(args.events)?;
    let Some(scenario) = standard_scenarios()
        .into_iter()
        .find(|s| s.name == args.scenario)
    else {
        anyhow::bail!(
            "unknown scenario {:?} (expected tumbling, sliding or session)",
            args.scenario
        );
    };
    let workload = |w: usize| Workload {
        events: args.events,
        keys: args.keys,
        workers: w,
        partitions: Some(workers as u32),
        ..Workload::default()
    };
    if !args.json {
        println!(
            "tidemark bench scaling: {} {} events, {} keys, {workers} partitions; median of {runs} run(s)",
            scenario.name, args.events, args.keys
        );
    }
    let mut one = Vec::new();
    let mut many = Vec::new();
    for _ in 0..runs {
        // Interleaved, so both see the same machine weather.
        one.push(run_engine(&workload(1), &scenario)?);
        many.push(run_engine(&workload(workers), &scenario)?);
    }
    for m in one.iter().chain(&many) {
        anyhow::ensure!(
            m.events == args.events,
            "processed {} of {} events",
            m.events,
            args.events
        );
    }
    let speedups: Vec<f64> = one
        .iter()
        .zip(&many)
        .map(|(a, b)| a.wall.as_secs_f64() / b.wall.as_secs_f64().max(1e-9))
        .collect();
    let (one, many) = (median(one), median(many));
    anyhow::ensure!(
        one.windows == many.windows,
        "{} windows with one worker, {} with {workers}",
        one.windows,
        many.windows
    );
    let events = plain_stream(&workload(workers))?;
    let ceilings: Vec<f64> = (0..runs).map(|_| cpu_ceiling(&events, workers)).collect();
    let efficiencies: Vec<f64> = speedups
        .iter()
        .zip(&ceilings)
        .map(|(s, c)| s / c.max(1e-9))
        .collect();
    let (speedup, ceiling, efficiency) =
        (spread(&speedups), spread(&ceilings), spread(&efficiencies));
    if args.json {
        #[derive(serde::Serialize)]
        struct Report {
            scenario: String,
            events: u64,
            keys: u32,
            workers: usize,
            runs: usize,
            one_worker_wall_seconds: f64,
            one_worker_ns_per_event: f64,
            workers_wall_seconds: f64,
            workers_ns_per_event: f64,
            speedup: [f64; 3],
            ceiling: [f64; 3],
            efficiency: [f64; 3],
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Report {
                scenario: scenario.name.clone(),
                events: args.events,
                keys: args.keys,
                workers,
                runs,
                one_worker_wall_seconds: one.wall.as_secs_f64(),
                one_worker_ns_per_event: one.ns_per_event(),
                workers_wall_seconds: many.wall.as_secs_f64(),
                workers_ns_per_event: many.ns_per_event(),
                speedup: speedup.into(),
                ceiling: ceiling.into(),
                efficiency: efficiency.into(),
            })?
        );
        return Ok(());
    }
    println!(
        "{:<22} {:>8} {:>15} {:>10}",
        "run", "wall s", "events/s/core", "ns/event"
    );
    for (name, m) in [("1 worker", &one), (&*format!("{workers} workers"), &many)] {
        println!(
            "{:<22} {:>8.2} {:>15.0} {:>10.1}",
            name,
            m.wall.as_secs_f64(),
            m.events_per_core_second(),
            m.ns_per_event()
        );
    }
    let range = |(lo, mid, hi): (f64, f64, f64)| format!("{mid:.2}x  [{lo:.2}-{hi:.2}]");
    println!("speedup (wall):        {}", range(speedup));
    println!(
        "machine ceiling:       {}  (the plain loop on one thread over all the events, against {workers} threads started together, each over its own copy of 1/{workers} of them, timed to the slowest)",
        range(ceiling)
    );
    println!(
        "efficiency:            {:.0} %  [{:.0}-{:.0} %]  (speedup over ceiling, per run)",
        100.0 * efficiency.1,
        100.0 * efficiency.0,
        100.0 * efficiency.2
    );
    Ok(())
}

/// Too few events make the per-event figures noise, and none make them
/// NaN.
fn check_events(events: u64) -> anyhow::Result<()> {
    const MIN_EVENTS: u64 = 1_000;
    if events < MIN_EVENTS {
        anyhow::bail!("--events {events} is too few to measure: give at least {MIN_EVENTS}");
    }
    Ok(())
}

/// One engine run as a child process reports it.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
struct ChildRun {
    events: u64,
    wall_ns: u64,
    cpu_ns: Option<u64>,
    windows: u64,
    late: u64,
    peak_rss_bytes: Option<u64>,
}

impl ChildRun {
    fn measurement(&self) -> Measurement {
        Measurement {
            events: self.events,
            wall: std::time::Duration::from_nanos(self.wall_ns),
            cpu: self.cpu_ns.map(std::time::Duration::from_nanos),
            windows: self.windows,
            late: self.late,
        }
    }
}

/// Runs one engine run of `scenario` in a child process (this binary), so
/// its peak RSS is its own.
fn child_run(t: &ThroughputArgs, scenario: &str) -> anyhow::Result<ChildRun> {
    let exe = std::env::current_exe()?;
    let output = std::process::Command::new(exe)
        .args(["bench", "throughput", "--child", "--runs", "1"])
        .arg(format!("--scenario={scenario}"))
        .arg(format!("--events={}", t.events))
        .arg(format!("--keys={}", t.keys))
        .arg(format!("--workers={}", t.workers))
        .arg(format!("--late-frac={}", t.late_frac))
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "the {scenario} run failed ({})",
        output.status
    );
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim())
        .map_err(|e| anyhow::anyhow!("the {scenario} run printed {text:?}: {e}"))
}

/// Minimum, median and maximum.
pub(crate) fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match (v.first(), v.get(v.len() / 2), v.last()) {
        (Some(&a), Some(&m), Some(&b)) => (a, m, b),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}

/// What `tidemark bench throughput --json` prints per scenario.
#[derive(serde::Serialize)]
struct ScenarioJson {
    scenario: String,
    runs: usize,
    events: u64,
    windows: u64,
    late: u64,
    ns_per_event: [f64; 3],
    events_per_core_second: f64,
    ratio_to_plain_loop: [f64; 3],
    wall_seconds: [f64; 3],
    peak_rss_bytes: Option<u64>,
}

fn throughput(t: &ThroughputArgs) -> anyhow::Result<()> {
    let workload = Workload {
        events: t.events,
        keys: t.keys,
        workers: t.workers.max(1),
        late_frac: t.late_frac,
        ..Workload::default()
    };
    let runs = t.runs.max(1);
    check_events(t.events)?;
    let wanted: Vec<&str> = t.scenario.split(',').map(str::trim).collect();
    let known: Vec<String> = standard_scenarios().into_iter().map(|s| s.name).collect();
    if let Some(unknown) = wanted.iter().find(|w| !known.iter().any(|k| k == *w)) {
        anyhow::bail!(
            "unknown scenario {unknown:?} in --scenario {:?} (expected any of {})",
            t.scenario,
            known.join(",")
        );
    }
    if t.child {
        let [name] = wanted[..] else {
            anyhow::bail!("--child runs one scenario");
        };
        let scenario = standard_scenarios()
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| anyhow::anyhow!("unknown scenario {name:?}"))?;
        let m = run_engine(&workload, &scenario)?;
        let run = ChildRun {
            events: m.events,
            wall_ns: u64::try_from(m.wall.as_nanos()).unwrap_or(u64::MAX),
            cpu_ns: m
                .cpu
                .map(|c| u64::try_from(c.as_nanos()).unwrap_or(u64::MAX)),
            windows: m.windows,
            late: m.late,
            peak_rss_bytes: peak_rss_bytes(),
        };
        println!("{}", serde_json::to_string(&run)?);
        return Ok(());
    }
    if !t.json {
        println!(
            "tidemark bench throughput: {} events, {} keys, {} worker(s), 50 ms disorder, delay 50 ms; {runs} run(s) of each, {}",
            workload.events,
            workload.keys,
            workload.workers,
            if t.in_process {
                "in this process"
            } else {
                "each engine run in its own process"
            }
        );
    }
    // The baseline runs beside every engine run (this machine's speed
    // changes from minute to minute): each run's ratio is engine over the
    // baseline measured just before it, and the medians are reported.
    let events = plain_stream(&workload)?;
    let mut baselines = Vec::new();
    let mut results = Vec::new();
    for scenario in standard_scenarios()
        .into_iter()
        .filter(|s| wanted.contains(&s.name.as_str()))
    {
        let mut measured = Vec::new();
        let mut ratios = Vec::new();
        let mut rss: Option<u64> = None;
        for _ in 0..runs {
            let base = plain_loop(&events);
            let m = if t.in_process {
                run_engine(&workload, &scenario)?
            } else {
                let child = child_run(t, &scenario.name)?;
                rss = rss.max(child.peak_rss_bytes);
                child.measurement()
            };
            anyhow::ensure!(
                m.events == workload.events,
                "{}: processed {} of {} events",
                scenario.name,
                m.events,
                workload.events
            );
            if scenario.name == "tumbling" && workload.late_frac == 0.0 {
                // A broken engine must not post a good number.
                anyhow::ensure!(
                    m.windows == base.windows,
                    "tumbling: {} windows, the plain loop found {}",
                    m.windows,
                    base.windows
                );
            }
            ratios.push(m.ns_per_event() / base.ns_per_event());
            baselines.push(base);
            measured.push(m);
        }
        results.push((scenario, measured, ratios, rss));
    }
    if baselines.is_empty() {
        baselines.push(plain_loop(&events));
    }
    let base_ns: Vec<f64> = baselines.iter().map(Measurement::ns_per_event).collect();
    let base_wall: Vec<f64> = baselines.iter().map(|m| m.wall.as_secs_f64()).collect();
    let baseline_windows = baselines[0].windows;
    let mut rows = vec![ScenarioJson {
        scenario: "plain-loop".into(),
        runs: baselines.len(),
        events: workload.events,
        windows: baseline_windows,
        late: 0,
        ns_per_event: spread(&base_ns).into(),
        events_per_core_second: 1e9 / spread(&base_ns).1,
        ratio_to_plain_loop: [1.0; 3],
        wall_seconds: spread(&base_wall).into(),
        peak_rss_bytes: None,
    }];
    for (scenario, measured, ratios, rss) in results {
        let ns: Vec<f64> = measured.iter().map(Measurement::ns_per_event).collect();
        let wall: Vec<f64> = measured.iter().map(|m| m.wall.as_secs_f64()).collect();
        rows.push(ScenarioJson {
            scenario: scenario.name.clone(),
            runs: measured.len(),
            events: workload.events,
            windows: measured[0].windows,
            late: measured[0].late,
            ns_per_event: spread(&ns).into(),
            events_per_core_second: 1e9 / spread(&ns).1,
            ratio_to_plain_loop: spread(&ratios).into(),
            wall_seconds: spread(&wall).into(),
            peak_rss_bytes: rss,
        });
    }
    if t.json {
        #[derive(serde::Serialize)]
        struct Report {
            events: u64,
            keys: u32,
            workers: usize,
            late_frac: f64,
            scenarios: Vec<ScenarioJson>,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Report {
                events: workload.events,
                keys: workload.keys,
                workers: workload.workers,
                late_frac: workload.late_frac,
                scenarios: rows,
            })?
        );
        return Ok(());
    }
    println!(
        "{:<11} {:>14} {:>22} {:>19} {:>9} {:>7} {:>9}",
        "scenario",
        "events/s/core",
        "ns/event med [range]",
        "x plain loop [rng]",
        "windows",
        "wall s",
        "peak RSS"
    );
    for r in &rows {
        let [lo, mid, hi] = r.ns_per_event;
        let [rlo, rmid, rhi] = r.ratio_to_plain_loop;
        println!(
            "{:<11} {:>14.0} {:>7.1} [{:>5.1}-{:>5.1}] {:>6.1} [{:>4.1}-{:>4.1}] {:>9} {:>7.2} {:>9}",
            r.scenario,
            r.events_per_core_second,
            mid,
            lo,
            hi,
            rmid,
            rlo,
            rhi,
            r.windows,
            r.wall_seconds[1],
            r.peak_rss_bytes
                .map_or_else(|| "-".to_owned(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
        );
    }
    if t.in_process {
        if let Some(rss) = peak_rss_bytes() {
            println!(
                "peak RSS of this process: {:.1} MiB",
                rss as f64 / (1024.0 * 1024.0)
            );
        }
    }
    Ok(())
}
