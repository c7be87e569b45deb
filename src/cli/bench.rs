//! `tidemark bench`: measured throughput of the standard scenarios beside
//! an in-process plain-loop baseline from the same run.

use clap::{Args, Subcommand};
use tidemark::bench::{
    peak_rss_bytes, run_engine, run_plain_loop, standard_scenarios, Measurement, Workload,
};

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
}

fn median(mut runs: Vec<Measurement>) -> Measurement {
    runs.sort_by(|a, b| {
        a.events_per_core_second()
            .total_cmp(&b.events_per_core_second())
    });
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// Runs `tidemark bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let BenchWhat::Throughput(t) = &args.what;
    let workload = Workload {
        events: t.events,
        keys: t.keys,
        workers: t.workers.max(1),
        late_frac: t.late_frac,
        ..Workload::default()
    };
    let runs = t.runs.max(1);
    println!(
        "tidemark bench throughput: {} events, {} keys, {} worker(s), 50 ms disorder, delay 50 ms; median of {runs} run(s)",
        workload.events, workload.keys, workload.workers
    );
    println!(
        "{:<12} {:>15} {:>10} {:>13} {:>10} {:>9}",
        "scenario", "events/s/core", "ns/event", "x plain loop", "windows", "wall s"
    );
    let baseline = median(
        (0..runs)
            .map(|_| run_plain_loop(&workload))
            .collect::<Result<_, _>>()?,
    );
    let row = |name: &str, m: &Measurement| {
        println!(
            "{:<12} {:>15.0} {:>10.1} {:>13.1} {:>10} {:>9.2}",
            name,
            m.events_per_core_second(),
            m.ns_per_event(),
            m.ns_per_event() / baseline.ns_per_event(),
            m.windows,
            m.wall.as_secs_f64()
        );
    };
    row("plain-loop", &baseline);
    let wanted: Vec<&str> = t.scenario.split(',').map(str::trim).collect();
    for scenario in standard_scenarios()
        .into_iter()
        .filter(|s| wanted.contains(&s.name.as_str()))
    {
        let m = median(
            (0..runs)
                .map(|_| run_engine(&workload, &scenario))
                .collect::<Result<_, _>>()?,
        );
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
                m.windows == baseline.windows,
                "tumbling: {} windows, the plain loop found {}",
                m.windows,
                baseline.windows
            );
        }
        row(&scenario.name, &m);
    }
    if let Some(rss) = peak_rss_bytes() {
        println!("peak RSS: {:.1} MiB", rss as f64 / (1024.0 * 1024.0));
    }
    Ok(())
}
