//! Throughput measurement: the standard scenarios run through a [`Job`] on
//! the built-in generator, beside an in-process plain-loop baseline measured
//! in the same run (this machine is shared and noisy: compare ratios).
//!
//! Shared by `tidemark bench`, the criterion benches and the Nexmark
//! example; not part of the library's API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tidemark_sources::{GeneratorConfig, GeneratorSource, Key, Source, Value};
use tidemark_windows::{AggKind, WindowSpec};

use crate::{Job, JobError};

/// One benchmark scenario: a window and its policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Short name, e.g. `tumbling`.
    pub name: String,
    /// The window.
    pub window: WindowSpec,
    /// Watermark delay, ms.
    pub delay: i64,
    /// Allowed lateness, ms.
    pub lateness: i64,
}

impl Scenario {
    /// A scenario with delay 50 ms (the standard workload's disorder) and
    /// no allowed lateness.
    pub fn new(name: &str, window: WindowSpec) -> Self {
        Scenario {
            name: name.to_owned(),
            window,
            delay: 50,
            lateness: 0,
        }
    }
}

/// The standard scenarios: tumbling 1 s, sliding 10 s / 1 s, session 100 ms.
pub fn standard_scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("tumbling", WindowSpec::tumbling(1_000)),
        Scenario::new("sliding", WindowSpec::sliding(10_000, 1_000)),
        Scenario::new("session", WindowSpec::session(100)),
    ]
}

/// The workload: the standard one is 10 million events, 10 000 keys,
/// 100 events per ms, 50 ms of disorder.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Events in all.
    pub events: u64,
    /// Distinct keys.
    pub keys: u32,
    /// Worker threads (and partitions, unless `partitions` is set).
    pub workers: usize,
    /// Partitions, when they differ from the workers.
    pub partitions: Option<u32>,
    /// Fraction of stragglers up to 2 s late.
    pub late_frac: f64,
    /// Records per batch.
    pub batch_size: usize,
    /// Events per millisecond of event time (100 in the standard workload).
    pub rate: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            events: 10_000_000,
            keys: 10_000,
            workers: 1,
            partitions: None,
            late_frac: 0.0,
            batch_size: 1024,
            rate: 100.0,
        }
    }
}

impl Workload {
    fn generator(&self) -> GeneratorConfig {
        GeneratorConfig {
            events: self.events,
            keys: self.keys,
            partitions: self.partitions.unwrap_or(self.workers.max(1) as u32),
            rate: self.rate,
            disorder: 50,
            late_frac: self.late_frac,
            late_extra: if self.late_frac > 0.0 { 2_000 } else { 0 },
            ..GeneratorConfig::default()
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Events processed.
    pub events: u64,
    /// Wall-clock time.
    pub wall: Duration,
    /// CPU time of the process (all threads) during the run, where known.
    pub cpu: Option<Duration>,
    /// Result rows of kind `final`.
    pub windows: u64,
    /// Records dropped as late.
    pub late: u64,
}

impl Measurement {
    /// Events per second of CPU time (per core); wall time if CPU time is
    /// unknown.
    pub fn events_per_core_second(&self) -> f64 {
        let secs = self.cpu.unwrap_or(self.wall).as_secs_f64().max(1e-9);
        self.events as f64 / secs
    }

    /// CPU nanoseconds per event.
    pub fn ns_per_event(&self) -> f64 {
        1e9 / self.events_per_core_second()
    }
}

/// Runs `scenario` once on `workload` through the engine.
pub fn run_engine(workload: &Workload, scenario: &Scenario) -> Result<Measurement, JobError> {
    let source =
        GeneratorSource::new(workload.generator()).map_err(tidemark_engine::EngineError::from)?;
    let job = Job::builder()
        .source(Arc::new(source))
        .window(scenario.window)
        .delay(scenario.delay)
        .lateness(scenario.lateness)
        .aggs(&[AggKind::Count, AggKind::Sum])
        .workers(workload.workers)
        .batch_size(workload.batch_size)
        .build()?;
    let cpu0 = cpu_time();
    let start = Instant::now();
    let summary = job.run()?;
    let wall = start.elapsed();
    let cpu = cpu0.and_then(|c0| cpu_time().map(|c1| c1.saturating_sub(c0)));
    Ok(Measurement {
        events: summary.records,
        wall,
        cpu,
        windows: summary.windows_emitted,
        late: summary.late_dropped,
    })
}

/// Runs `scenario` once on `workload` with its results written to the file
/// `results`, and with checkpoints every `every` in the directory
/// `checkpoints` (`None`: no checkpoints), each run from the start.
pub fn run_engine_to_file(
    workload: &Workload,
    scenario: &Scenario,
    results: &std::path::Path,
    checkpoints: Option<(&std::path::Path, tidemark_engine::CheckpointEvery)>,
) -> Result<(Measurement, tidemark_engine::Summary), JobError> {
    let source =
        GeneratorSource::new(workload.generator()).map_err(tidemark_engine::EngineError::from)?;
    let mut builder = Job::builder()
        .source(Arc::new(source))
        .window(scenario.window)
        .delay(scenario.delay)
        .lateness(scenario.lateness)
        .aggs(&[AggKind::Count, AggKind::Sum])
        .workers(workload.workers)
        .batch_size(workload.batch_size)
        .results(tidemark_engine::Target::File(results.to_owned()));
    if let Some((dir, every)) = checkpoints {
        builder = builder.checkpoint(tidemark_engine::CheckpointConfig {
            dir: dir.to_owned(),
            every,
            keep: std::num::NonZeroUsize::MIN,
            rebuild: true,
            input: Default::default(),
            settings: Default::default(),
        });
    }
    let job = builder.build()?;
    let cpu0 = cpu_time();
    let start = Instant::now();
    let summary = job.run()?;
    let wall = start.elapsed();
    let cpu = cpu0.and_then(|c0| cpu_time().map(|c1| c1.saturating_sub(c0)));
    Ok((
        Measurement {
            events: summary.records,
            wall,
            cpu,
            windows: summary.windows_emitted,
            late: summary.late_dropped,
        },
        summary,
    ))
}

/// The baseline: the same events already in memory, tumbling 1 s count+sum
/// into a hash map in a plain loop (the hardware limit the engine is
/// compared with). Returns the measurement (the events are generated before
/// the clock starts) and the number of windows.
pub fn run_plain_loop(workload: &Workload) -> Result<Measurement, JobError> {
    Ok(plain_loop(&plain_stream(workload)?))
}

/// The events of `workload` in memory as one stream in time order
/// (partitions interleaved), as the engine applies them: the input of
/// [`plain_loop`].
pub fn plain_stream(workload: &Workload) -> Result<Vec<(Key, i64, i64)>, JobError> {
    let mut events = plain_events(workload)?;
    events.sort_by_key(|e| e.1);
    Ok(events)
}

/// The plain loop over events already in memory (see [`run_plain_loop`]);
/// only the loop is timed.
pub fn plain_loop(events: &[(Key, i64, i64)]) -> Measurement {
    let cpu0 = cpu_time();
    let start = Instant::now();
    // Open windows only, as a stream processor keeps them: every 64k events
    // the windows the stream has left behind are counted out.
    let mut windows: FxHashMap<(&str, i64), (u64, i64)> = FxHashMap::default();
    let mut closed = 0u64;
    let mut max_time = i64::MIN;
    for (i, (key, t, v)) in events.iter().enumerate() {
        max_time = max_time.max(*t);
        let w = windows
            .entry((key.as_str(), t - t.rem_euclid(1_000)))
            .or_default();
        w.0 += 1;
        w.1 += v;
        if i % 65_536 == 65_535 {
            windows.retain(|(_, start), _| {
                let open = start + 1_000 + 50 > max_time;
                closed += u64::from(!open);
                open
            });
        }
    }
    let count = std::hint::black_box(closed + windows.len() as u64);
    let wall = start.elapsed();
    let cpu = cpu0.and_then(|c0| cpu_time().map(|c1| c1.saturating_sub(c0)));
    Measurement {
        events: events.len() as u64,
        wall,
        cpu,
        windows: count,
        late: 0,
    }
}

/// The events of `workload` in memory, partition by partition (see
/// [`plain_stream`] for one stream in time order).
pub fn plain_events(workload: &Workload) -> Result<Vec<(Key, i64, i64)>, JobError> {
    let source =
        GeneratorSource::new(workload.generator()).map_err(tidemark_engine::EngineError::from)?;
    let mut events = Vec::with_capacity(workload.events as usize);
    let mut buf = Vec::new();
    for p in source
        .partitions()
        .map_err(tidemark_engine::EngineError::from)?
    {
        let mut reader = source
            .open(p, 0)
            .map_err(tidemark_engine::EngineError::from)?;
        loop {
            buf.clear();
            let status = reader
                .read(4096, &mut buf)
                .map_err(tidemark_engine::EngineError::from)?;
            for r in buf.drain(..).flatten() {
                let v = match r.value {
                    Value::Int(i) => i,
                    Value::Float(f) => f as i64,
                };
                events.push((r.key, r.event_time, v));
            }
            if status == tidemark_sources::ReadStatus::End {
                break;
            }
        }
    }
    Ok(events)
}

/// What this machine allows `threads` threads to gain over one on the
/// same work: the [`plain_loop`] over all of `events` on one thread,
/// against `threads` threads started together (a barrier), each running
/// the loop over its own copy of every `threads`th event (its share, as a
/// worker gets its partitions), each timed on its own. The ceiling is the
/// one-thread time over the slowest thread's time: on idle cores it is
/// about `threads`, and less where the cores or the memory are shared.
pub fn cpu_ceiling(events: &[(Key, i64, i64)], threads: usize) -> f64 {
    let threads = threads.max(1);
    let shares: Vec<Vec<(Key, i64, i64)>> = (0..threads)
        .map(|t| events.iter().skip(t).step_by(threads).cloned().collect())
        .collect();
    // The best of three of each, alternated, so that a moment of another
    // tenant's load on this shared machine does not decide it.
    let mut one = Duration::MAX;
    let mut all = Duration::MAX;
    for _ in 0..3 {
        one = one.min(std::thread::scope(|s| {
            s.spawn(|| plain_loop(events).wall)
                .join()
                .unwrap_or(Duration::MAX)
        }));
        all = all.min(slowest_of(&shares));
    }
    one.as_secs_f64() / all.as_secs_f64().max(1e-9)
}

/// The plain loop over each share on its own thread, all started together:
/// the slowest thread's time.
fn slowest_of(shares: &[Vec<(Key, i64, i64)>]) -> Duration {
    let barrier = std::sync::Barrier::new(shares.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|share| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    plain_loop(share).wall
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Duration::MAX))
            .max()
            .unwrap_or(Duration::MAX)
    })
}

/// CPU time (user + system) of this process so far, in nanoseconds
/// (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` through the cpu-time crate).
pub fn cpu_time() -> Option<Duration> {
    cpu_time::ProcessTime::try_now()
        .ok()
        .map(|t| t.as_duration())
}

/// Peak resident memory of this process in bytes (`VmHWM`, Linux); `None`
/// elsewhere.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
