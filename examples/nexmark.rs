//! Nexmark q5, q7 and q11 on the Nexmark bid stream
//! ([`NexmarkSource`]), run through [`tidemark::Job`] on one worker, with
//! the throughput per core beside the Flink figures published in the
//! Nexmark project's README (Flink 1.13, 8 workers, 100 M events at
//! 10 M events/s).
//!
//! - **q5, hot items**: bids counted per auction in sliding windows of
//!   10 s every 2 s; the example then picks, per window, the auction(s)
//!   with the most bids (Flink does this second step inside the query).
//! - **q7, highest bid**: the highest price in tumbling windows of 10 s
//!   (key: a constant). Flink's q7 also joins back to return the winning
//!   bids themselves; here only the price is computed.
//! - **q11, user sessions**: bids per bidder per session, with a gap of
//!   10 s.
//!
//! The stream follows the Nexmark model's shape (46 bids in every 50
//! events, hot auctions and bidders); only bids are records, and the
//! watermark delay is 0 (the bids of one generator are in time order).
//!
//! Throughput is reported two ways, both over the process's CPU time during
//! the job (`cpu_time` of `src/harness.rs`): bids (records processed) per CPU
//! second, and events — persons and auctions included, as Nexmark counts
//! them — per CPU second, the unit of Flink's "Throughput/Cores" column.
//! The comparison is indicative only: Flink runs SQL over full rows on a
//! cluster with checkpoints and RocksDB state.
//!
//! Run with `cargo run --release --example nexmark [EVENTS [RATE]]`
//! (EVENTS: the number of Nexmark events, persons and auctions included,
//! default 10 000 000; RATE: events per second of event time, default
//! 100 000, so the default run spans 100 s of event time).

use tidemark::harness;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::cpu_time;
use tidemark::engine::{Collect, Row};
use tidemark::sources::nexmark::{NexmarkConfig, NexmarkKey, NexmarkSource};
use tidemark::windows::{AggKind, MetricValues, Number, WindowSpec};
use tidemark::Job;

/// One query as run here.
struct Query {
    name: &'static str,
    title: &'static str,
    window: WindowSpec,
    key: NexmarkKey,
    aggs: &'static [AggKind],
    /// Flink's throughput per core from the Nexmark README, events/s.
    flink_per_core: f64,
}

/// What one query run measured.
struct Run {
    bids: u64,
    rows: u64,
    cpu: Option<Duration>,
    wall: Duration,
    output: Vec<Row<MetricValues>>,
}

fn run(query: &Query, events: u64, rate: u64) -> Result<Run, Box<dyn Error>> {
    let source = NexmarkSource::new(NexmarkConfig {
        events,
        events_per_second: rate,
        key: query.key,
        ..NexmarkConfig::default()
    })?;
    let (results, collected) = Collect::new();
    let job = Job::builder()
        .source(Arc::new(source))
        .window(query.window)
        .delay(0)
        .aggs(query.aggs)
        .workers(1)
        .results_sink(results)
        .build()?;
    let cpu0 = cpu_time();
    let start = Instant::now();
    let summary = job.run()?;
    let wall = start.elapsed();
    let cpu = cpu0.and_then(|c0| cpu_time().map(|c1| c1.saturating_sub(c0)));
    let output = std::mem::take(&mut *collected.lock().map_err(|_| "results poisoned")?);
    Ok(Run {
        bids: summary.records,
        rows: summary.windows_emitted,
        cpu,
        wall,
        output,
    })
}

/// q5's second step: per window, the auction(s) with the most bids.
fn hot_items(rows: &[Row<MetricValues>]) {
    let mut best: BTreeMap<(i64, i64), (u64, Vec<String>)> = BTreeMap::new();
    for row in rows {
        let count = row.value.count.unwrap_or(0);
        let entry = best.entry((row.window.start, row.window.end)).or_default();
        if count > entry.0 {
            *entry = (count, vec![row.key.to_string()]);
        } else if count == entry.0 {
            entry.1.push(row.key.to_string());
        }
    }
    println!("  q5: {} windows with a hottest auction", best.len());
    for ((start, end), (count, auctions)) in best.iter().take(3) {
        println!("      [{start}, {end}): auction(s) {auctions:?} with {count} bids");
    }
}

/// q7: the highest price per window.
fn highest_bids(rows: &[Row<MetricValues>]) {
    println!("  q7: {} windows", rows.len());
    for row in rows.iter().take(3) {
        println!(
            "      [{}, {}): highest price {}",
            row.window.start,
            row.window.end,
            row.value.max.unwrap_or(Number::Int(0))
        );
    }
}

/// q11: sessions per bidder.
fn sessions(rows: &[Row<MetricValues>]) {
    let bidders: std::collections::HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    let busiest = rows.iter().max_by_key(|r| r.value.count.unwrap_or(0));
    println!(
        "  q11: {} sessions of {} bidders",
        rows.len(),
        bidders.len()
    );
    if let Some(r) = busiest {
        println!(
            "      busiest: bidder {} with {} bids in [{}, {})",
            r.key,
            r.value.count.unwrap_or(0),
            r.window.start,
            r.window.end
        );
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let events: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .replace('_', "")
            .parse()
            .map_err(|e| format!("invalid EVENTS {arg:?}: {e}"))?,
        None => 10_000_000,
    };
    // Event-time rate: by default 100 000 events/s, so that the default run
    // spans 100 s of event time (ten q7 windows, fifty q5 windows, sessions
    // that end); the Nexmark model's own 10 M/s squeezes 10 M events into
    // one second.
    let rate: u64 = match std::env::args().nth(2) {
        Some(arg) => arg
            .replace('_', "")
            .parse()
            .map_err(|e| format!("invalid RATE {arg:?}: {e}"))?,
        None => 100_000,
    };
    println!(
        "Nexmark: {events} events ({} ms of event time at {rate} events/s), 1 worker",
        u128::from(events) * 1000 / u128::from(rate)
    );
    let queries = [
        Query {
            name: "q5",
            title: "hot items, sliding 10 s / 2 s, count per auction",
            window: WindowSpec::sliding(10_000, 2_000),
            key: NexmarkKey::Auction,
            aggs: &[AggKind::Count],
            flink_per_core: 22_140.0,
        },
        Query {
            name: "q7",
            title: "highest bid, tumbling 10 s, max price",
            window: WindowSpec::tumbling(10_000),
            key: NexmarkKey::Constant,
            aggs: &[AggKind::Max],
            flink_per_core: 12_330.0,
        },
        Query {
            name: "q11",
            title: "user sessions, gap 10 s, count per bidder",
            window: WindowSpec::session(10_000),
            key: NexmarkKey::Bidder,
            aggs: &[AggKind::Count],
            flink_per_core: 39_700.0,
        },
    ];
    let mut table = Vec::new();
    for query in &queries {
        println!("{}: {}", query.name, query.title);
        let run = run(query, events, rate)?;
        match query.name {
            "q5" => hot_items(&run.output),
            "q7" => highest_bids(&run.output),
            _ => sessions(&run.output),
        }
        table.push((query, run));
    }
    println!();
    println!(
        "{:<5} {:>11} {:>10} {:>8} {:>8} {:>14} {:>16} {:>20}",
        "query",
        "bids",
        "rows",
        "cpu s",
        "wall s",
        "bids/s/core",
        "events/s/core",
        "Flink events/s/core"
    );
    for (query, run) in &table {
        let secs = run.cpu.unwrap_or(run.wall).as_secs_f64().max(1e-9);
        println!(
            "{:<5} {:>11} {:>10} {:>8.2} {:>8.2} {:>14} {:>16} {:>20}",
            query.name,
            run.bids,
            run.rows,
            secs,
            run.wall.as_secs_f64(),
            human(run.bids as f64 / secs),
            human(events as f64 / secs),
            human(query.flink_per_core)
        );
    }
    if table.iter().any(|(_, run)| run.cpu.is_none()) {
        println!("(CPU time unavailable on this platform: wall time used)");
    }
    Ok(())
}

/// `1234567.0` as `1.23 M`.
fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} K", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}
