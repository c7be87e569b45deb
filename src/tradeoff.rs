//! The latency/completeness trade-off of a job's watermark delay, allowed
//! lateness and emit mode, measured on one input: for each setting, how
//! long past its end a window's first and last results come (in event
//! time), how often the first result is already the final truth, how many
//! records are dropped and how many corrections follow.
//!
//! The ground truth is the same input with every record counted: the job
//! run with a delay longer than any input spans, so no window fires before
//! the end and nothing is late. Every metric here is computed from the
//! rows' frontier steps and values, so it is deterministic: the same input
//! and setting give the same numbers whatever the worker count or timing
//! (the records/s column excepted).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tidemark_engine::{Callback, Row, Summary};
use tidemark_sources::generator::DisorderShape;
use tidemark_sources::{GeneratorConfig, GeneratorSource, Key, RealTimeGenerator, Source};
use tidemark_windows::{
    AggKind, ChangeKind, EmitMode, MetricValues, Millis, Policy, Window, WindowSpec,
};

use crate::job::{Job, JobError};

/// One point of the grid: delay, allowed lateness and emit mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Watermark delay, ms.
    pub delay: Millis,
    /// Allowed lateness, ms.
    pub lateness: Millis,
    /// Emit mode.
    pub emit: EmitMode,
}

/// Percentiles of a latency: ms of event time ([`Percentiles`]) or µs of
/// wall clock ([`WallPercentiles`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        // The bottom of each value's bucket: with 5 significant figures that
        // is the value itself up to 100 s, and within 0.001 % beyond.
        let at = |q: f64| h.lowest_equivalent(h.value_at_quantile(q));
        Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: h.lowest_equivalent(h.max()),
        }
    }
}

/// Percentiles of a latency in processing time, µs.
pub type WallPercentiles = Percentiles;

/// What one setting measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The setting.
    pub setting: Setting,
    /// Windows of the ground truth.
    pub windows: u64,
    /// How far past its end the frontier (stream time) was when a window's
    /// first result was emitted (0 for a result before the window's end).
    pub first_latency: Percentiles,
    /// The same for its last result.
    pub last_latency: Percentiles,
    /// Share of windows whose first result is the ground truth.
    pub first_complete: f64,
    /// Share of windows whose last result is the ground truth.
    pub last_complete: f64,
    /// Mean relative error of the first results' counts (a window never
    /// emitted counts as an error of 1).
    pub first_error: f64,
    /// Share of the records dropped as too late.
    pub dropped: f64,
    /// Retractions per window.
    pub corrections_per_window: f64,
    /// Records per second of wall clock (not deterministic).
    pub records_per_second: f64,
    /// The most open (key, window) states the workers held, sampled every
    /// [`SAMPLE_EVERY`] ms of stream time (each worker's peak, summed).
    pub peak_open_windows: u64,
    /// The encoded size of the window state at those peaks, bytes.
    pub peak_state_bytes: u64,
    /// In real time ([`measure_real_time`]): wall clock, µs, from the
    /// arrival of the record that completed a window (the one with which
    /// every partition's stream time had reached the window's end plus the
    /// delay, so the watermark passed its end) to the emission of the
    /// window's first result (0 for a result before that, as `updates`
    /// rows). Not deterministic.
    pub first_wall: Option<WallPercentiles>,
    /// The same for the window's last result.
    pub last_wall: Option<WallPercentiles>,
}

/// One part of a generated workload's disorder, as `tidemark bench
/// tradeoff --disorder` reads it: a shape with its scale, or stragglers.
///
/// `uniform:100ms` (or just `100ms`): each event up to 100 ms earlier than
/// its place; `exp:50ms`: by an exponential delay of mean 50 ms;
/// `pareto:20ms,1.5`: by a Pareto delay of scale 20 ms and tail index 1.5
/// (heavy-tailed); `stragglers:2%,30s`: besides, 2 % of the events are up
/// to 30 s further behind; `none`: in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Disorder {
    /// Every event is earlier than its place by a delay of this shape and
    /// scale (ms).
    Shape {
        /// How the delay is distributed.
        shape: DisorderShape,
        /// Its scale: the largest (uniform), the mean (exp), the scale
        /// (pareto), ms.
        scale: Millis,
    },
    /// A share of the events (`0..=1`) are stragglers, up to `behind` ms
    /// later than the disorder allows.
    Stragglers {
        /// Their share of the events.
        share: f64,
        /// How far behind, at most, ms.
        behind: Millis,
    },
}

impl std::str::FromStr for Disorder {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = |why: &str| {
            format!(
                "invalid disorder \"{text}\": {why} (expected uniform:100ms, exp:50ms, pareto:20ms,1.5, stragglers:2%,30s or none)"
            )
        };
        let millis = |d: &str| -> Result<Millis, String> {
            d.parse::<crate::spec::DurationMs>()
                .map(|d| d.millis())
                .map_err(|e| bad(&e.to_string()))
        };
        if text == "none" {
            return Ok(Disorder::Shape {
                shape: DisorderShape::Uniform,
                scale: 0,
            });
        }
        let (kind, rest) = text.split_once(':').unwrap_or(("uniform", text));
        match kind {
            "uniform" => Ok(Disorder::Shape {
                shape: DisorderShape::Uniform,
                scale: millis(rest)?,
            }),
            "exp" | "exponential" => Ok(Disorder::Shape {
                shape: DisorderShape::Exponential,
                scale: millis(rest)?,
            }),
            "pareto" => {
                let (scale, alpha) = rest
                    .split_once(',')
                    .ok_or_else(|| bad("pareto needs a scale and a tail index"))?;
                let shape = format!("pareto:{alpha}").parse::<DisorderShape>()?;
                Ok(Disorder::Shape {
                    shape,
                    scale: millis(scale)?,
                })
            }
            "stragglers" => {
                let (share, behind) = rest
                    .split_once(',')
                    .ok_or_else(|| bad("stragglers needs a share and how far behind"))?;
                let share = share.trim();
                let share = match share.strip_suffix('%') {
                    Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0),
                    None => share.parse::<f64>(),
                }
                .map_err(|_| bad("the share must be a number, e.g. 2% or 0.02"))?;
                if !(0.0..=1.0).contains(&share) {
                    return Err(bad("the share must be between 0 and 100 %"));
                }
                Ok(Disorder::Stragglers {
                    share,
                    behind: millis(behind)?,
                })
            }
            _ => Err(bad("unknown kind")),
        }
    }
}

impl std::fmt::Display for Disorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = |ms: Millis| {
            crate::spec::DurationMs::new(ms).map_or_else(|_| format!("{ms}ms"), |d| d.to_string())
        };
        match *self {
            Disorder::Shape { scale: 0, .. } => f.write_str("none"),
            Disorder::Shape {
                shape: DisorderShape::Pareto(alpha),
                scale,
            } => write!(f, "pareto:{},{alpha}", d(scale)),
            Disorder::Shape { shape, scale } => write!(f, "{shape}:{}", d(scale)),
            Disorder::Stragglers { share, behind } => {
                write!(f, "stragglers:{}%,{}", share * 100.0, d(behind))
            }
        }
    }
}

impl Disorder {
    /// Sets `config`'s disorder from `parts`: at most one shape (none: in
    /// order) and at most one stragglers part (none: no stragglers).
    pub fn apply(parts: &[Disorder], config: &mut GeneratorConfig) -> Result<(), String> {
        let shapes: Vec<_> = parts
            .iter()
            .filter(|p| matches!(p, Disorder::Shape { .. }))
            .collect();
        let stragglers: Vec<_> = parts
            .iter()
            .filter(|p| matches!(p, Disorder::Stragglers { .. }))
            .collect();
        if shapes.len() > 1 || stragglers.len() > 1 {
            return Err(format!(
                "--disorder takes at most one shape and one stragglers part, not {}",
                parts
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ));
        }
        (config.disorder, config.disorder_shape) = match shapes.first() {
            Some(Disorder::Shape { shape, scale }) => (*scale, *shape),
            _ => (0, DisorderShape::Uniform),
        };
        (config.late_frac, config.late_extra) = match stragglers.first() {
            Some(Disorder::Stragglers { share, behind }) => (*share, *behind),
            _ => (0.0, 0),
        };
        Ok(())
    }
}

/// Aggregations the trade-off compares results on.
const AGGS: [AggKind; 2] = [AggKind::Count, AggKind::Sum];

/// How often the window state is sampled for its peak: every 10 ms of
/// stream time.
pub const SAMPLE_EVERY: Millis = 10;

/// The truth's delay: longer than any input can span.
const TRUTH_DELAY: Millis = tidemark_windows::assign::MAX_SPAN;

/// Rows as the sink received them, each with the instant it was written.
type TimedRows = Vec<(Row<MetricValues>, Instant)>;

fn run_rows(
    source: Arc<dyn Source>,
    window: WindowSpec,
    policy: Policy,
    workers: usize,
) -> Result<(TimedRows, Summary, f64), JobError> {
    let rows: Arc<Mutex<TimedRows>> = Arc::default();
    let into = Arc::clone(&rows);
    let sink = Callback::new(move |row: &Row<MetricValues>| {
        let at = Instant::now();
        if let Ok(mut rows) = into.lock() {
            rows.push((row.clone(), at));
        }
    });
    let job = Job::builder()
        .source(source)
        .window(window)
        .delay(policy.delay)
        .lateness(policy.lateness)
        .emit(policy.emit)
        .aggs(&AGGS)
        .workers(workers)
        .sample_state(SAMPLE_EVERY)
        .results_sink(sink)
        .build()?;
    let started = Instant::now();
    let summary = job.run()?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let rows = std::mem::take(&mut *rows.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((rows, summary, secs))
}

/// The ground truth of `source` under `window`: every window's final value.
pub fn truth(
    source: Arc<dyn Source>,
    window: WindowSpec,
) -> Result<BTreeMap<(Key, Window), MetricValues>, JobError> {
    let policy = Policy::new(TRUTH_DELAY, 0, EmitMode::Final);
    let (rows, _, _) = run_rows(source, window, policy, 1)?;
    Ok(rows
        .into_iter()
        .filter(|(r, _)| r.kind != ChangeKind::Retract)
        .map(|(r, _)| ((r.key, r.window), r.value))
        .collect())
}

/// Measures `setting` on `source` (read afresh) against `truth`.
pub fn measure(
    source: Arc<dyn Source>,
    window: WindowSpec,
    setting: Setting,
    truth: &BTreeMap<(Key, Window), MetricValues>,
    workers: usize,
) -> Result<Report, JobError> {
    let policy = Policy::new(setting.delay, setting.lateness, setting.emit);
    let (rows, summary, secs) = run_rows(source, window, policy, workers)?;
    Ok(report(setting, &rows, &summary, secs, truth, None))
}

/// Measures `setting` on `generator` released in real time at
/// `per_second` events per second ([`RealTimeGenerator`]), against
/// `truth`: the event-time columns are those of [`measure`], and the
/// processing-time latencies are filled in.
pub fn measure_real_time(
    generator: &GeneratorSource,
    per_second: f64,
    window: WindowSpec,
    setting: Setting,
    truth: &BTreeMap<(Key, Window), MetricValues>,
    workers: usize,
) -> Result<Report, JobError> {
    let paced = Arc::new(
        generator
            .clone()
            .real_time(per_second)
            .map_err(tidemark_engine::EngineError::from)?,
    );
    let policy = Policy::new(setting.delay, setting.lateness, setting.emit);
    let (rows, summary, secs) = run_rows(
        Arc::clone(&paced) as Arc<dyn Source>,
        window,
        policy,
        workers,
    )?;
    let arrivals = Arrivals::of(&paced);
    Ok(report(
        setting,
        &rows,
        &summary,
        secs,
        truth,
        paced.started().map(|t| (t, &arrivals)),
    ))
}

/// When, after the start of a real-time run, each partition's stream time
/// first reached a given step.
struct Arrivals {
    /// Per partition: the running maximum of event times (its stream time
    /// after each offset) and each offset's release time.
    partitions: Vec<(Vec<i64>, Vec<Duration>)>,
}

impl Arrivals {
    fn of(paced: &RealTimeGenerator) -> Arrivals {
        let generator = paced.generator();
        let partitions = (0..generator.config().partitions)
            .map(|p| {
                let len = generator.len(p).unwrap_or(0);
                let mut stream_time = i64::MIN;
                let mut times = Vec::with_capacity(len as usize);
                let mut releases = Vec::with_capacity(len as usize);
                for o in 0..len {
                    if let Some(r) = generator.event(p, o) {
                        stream_time = stream_time.max(r.event_time);
                    }
                    times.push(stream_time);
                    releases.push(paced.release_after(p, o).unwrap_or_default());
                }
                (times, releases)
            })
            .collect();
        Arrivals { partitions }
    }

    /// When the last record needed for every partition's stream time to
    /// reach `step` arrived (a partition that never reaches it: its last
    /// record, after which it ends).
    fn completion(&self, step: i64) -> Duration {
        self.partitions
            .iter()
            .filter(|(times, _)| !times.is_empty())
            .map(|(times, releases)| {
                let i = times.partition_point(|&t| t < step).min(times.len() - 1);
                releases[i]
            })
            .max()
            .unwrap_or_default()
    }
}

fn report(
    setting: Setting,
    rows: &[(Row<MetricValues>, Instant)],
    summary: &Summary,
    secs: f64,
    truth: &BTreeMap<(Key, Window), MetricValues>,
    real_time: Option<(Instant, &Arrivals)>,
) -> Report {
    // Per window: its first and last shown row (step, value, written at).
    type Shown<'a> = (i64, &'a MetricValues, Instant);
    let mut shown: BTreeMap<(&Key, &Window), (Shown<'_>, Shown<'_>)> = BTreeMap::new();
    let mut retracts = 0u64;
    for (r, at) in rows {
        if r.kind == ChangeKind::Retract {
            retracts += 1;
            continue;
        }
        let this = (r.time, &r.value, *at);
        shown
            .entry((&r.key, &r.window))
            .and_modify(|e| e.1 = this)
            .or_insert((this, this));
    }
    let new_histogram = || Histogram::<u64>::new(5).expect("5 significant figures is valid");
    let (mut first, mut last) = (new_histogram(), new_histogram());
    let (mut first_wall, mut last_wall) = (new_histogram(), new_histogram());
    let (mut first_ok, mut last_ok, mut error) = (0u64, 0u64, 0f64);
    for ((key, window), want) in truth {
        let Some(((t0, v0, w0), (t1, v1, w1))) = shown.get(&(key, window)) else {
            error += 1.0;
            continue;
        };
        let end = window.end;
        let _ = first.record(u64::try_from(t0.saturating_sub(end)).unwrap_or(0));
        let _ = last.record(u64::try_from(t1.saturating_sub(end)).unwrap_or(0));
        if let Some((started, arrivals)) = real_time {
            // The window was complete when the watermark passed its end:
            // once every partition's stream time reached end + delay.
            let due = started + arrivals.completion(end.saturating_add(setting.delay));
            let wall = |at: &Instant| at.saturating_duration_since(due).as_micros() as u64;
            let _ = first_wall.record(wall(w0));
            let _ = last_wall.record(wall(w1));
        }
        first_ok += u64::from(*v0 == want);
        last_ok += u64::from(*v1 == want);
        let (got, want) = (v0.count.unwrap_or(0) as f64, want.count.unwrap_or(0) as f64);
        error += ((got - want).abs() / want.max(1.0)).min(1.0);
    }
    let windows = truth.len() as u64;
    let share = |n: u64| {
        if windows == 0 {
            1.0
        } else {
            n as f64 / windows as f64
        }
    };
    let read = summary.records.max(1) as f64;
    Report {
        setting,
        windows,
        first_latency: Percentiles::of(&first),
        last_latency: Percentiles::of(&last),
        first_complete: share(first_ok),
        last_complete: share(last_ok),
        first_error: if windows == 0 {
            0.0
        } else {
            error / windows as f64
        },
        dropped: summary.late_dropped as f64 / read,
        corrections_per_window: if windows == 0 {
            0.0
        } else {
            retracts as f64 / windows as f64
        },
        records_per_second: summary.records as f64 / secs,
        peak_open_windows: summary.peak_open_windows,
        peak_state_bytes: summary.peak_state_bytes,
        first_wall: real_time.map(|_| Percentiles::of(&first_wall)),
        last_wall: real_time.map(|_| Percentiles::of(&last_wall)),
    }
}

/// The CSV header of [`csv_row`]: the first [`DETERMINISTIC_COLUMNS`]
/// columns are the setting and its event-time metrics, then the cost and
/// processing-time ones.
pub const CSV_HEADER: &str = "delay_ms,lateness_ms,emit,windows,first_p50_ms,first_p90_ms,first_p99_ms,first_p999_ms,first_max_ms,last_p50_ms,last_p90_ms,last_p99_ms,last_p999_ms,last_max_ms,first_complete,last_complete,first_mean_rel_error,dropped_share,corrections_per_window,records_per_s,peak_open_windows,peak_state_bytes,first_wall_p50_us,first_wall_p90_us,first_wall_p99_us,first_wall_p999_us,first_wall_max_us,last_wall_p50_us,last_wall_p90_us,last_wall_p99_us,last_wall_p999_us,last_wall_max_us";

/// How many leading columns of [`csv_row`] are deterministic: the same
/// input and setting give the same bytes whatever the worker count, batch
/// size or timing. The rest: records/s and the wall-clock latencies depend
/// on timing; the peak state is per worker, so it depends on the worker
/// count (and only on it).
pub const DETERMINISTIC_COLUMNS: usize = 19;

/// One report as a CSV row (see [`CSV_HEADER`]); the processing-time
/// columns are empty when the run was not in real time.
pub fn csv_row(r: &Report) -> String {
    let s = r.setting;
    let emit = s.emit.name();
    let p = |p: &Percentiles| format!("{},{},{},{},{}", p.p50, p.p90, p.p99, p.p999, p.max);
    let wall = |w: &Option<WallPercentiles>| w.as_ref().map_or_else(|| ",,,,".to_owned(), p);
    format!(
        "{},{},{emit},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.0},{},{},{},{}",
        s.delay,
        s.lateness,
        r.windows,
        p(&r.first_latency),
        p(&r.last_latency),
        r.first_complete,
        r.last_complete,
        r.first_error,
        r.dropped,
        r.corrections_per_window,
        r.records_per_second,
        r.peak_open_windows,
        r.peak_state_bytes,
        wall(&r.first_wall),
        wall(&r.last_wall),
    )
}

/// The deterministic part of a [`csv_row`] (its first
/// [`DETERMINISTIC_COLUMNS`] columns).
pub fn deterministic_part(row: &str) -> String {
    row.split(',')
        .take(DETERMINISTIC_COLUMNS)
        .collect::<Vec<_>>()
        .join(",")
}

/// The settings on the Pareto front of first-result latency (p99, lower is
/// better) against first-result completeness (higher is better), by
/// increasing latency.
pub fn pareto_front(reports: &[Report]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..reports.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&reports[a], &reports[b]);
        ra.first_latency
            .p99
            .cmp(&rb.first_latency.p99)
            .then(rb.first_complete.total_cmp(&ra.first_complete))
    });
    let mut front = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for i in order {
        if reports[i].first_complete > best {
            best = reports[i].first_complete;
            front.push(i);
        }
    }
    front
}

/// A setting's label on the plot.
pub fn label(s: &Setting) -> String {
    let emit = s.emit.name();
    format!("D={}ms L={}ms {emit}", s.delay, s.lateness)
}

/// Draws, as an SVG file at `path`, a 2×2 figure that answers "which
/// delay and which lateness?". Every latency, delay and lateness axis is
/// symlog: `log10(1 + ms)`, so that 0 ms is on it and 0 to 200 ms take a
/// good share of the width; its ticks are the real durations.
///
/// - Top left, `final` settings: first-result latency (p99, event time)
///   against first-result completeness, one point per setting. Their
///   Pareto front ([`pareto_front`]) is the red line, and only its points
///   are labelled (`D=` delay, `L=` lateness): each label beside its point
///   where it overlaps no point, line, legend or other label and is
///   nearer its own point than any other, else a little farther out with
///   a leader, else left out. The other settings are grey dots.
/// - Bottom left, `updates` settings, apart: the same, with the range of
///   their last-result completeness and churn in the legend.
/// - Top right: last-result completeness against allowed lateness, one
///   line per delay (`final`): what lateness buys; the peak state at each
///   lateness (the largest over the delays) is in the axis description.
/// - Bottom right: churn (corrections per window) against the delay, one
///   line per lateness (`final`); the `updates` churn, on another scale,
///   is given in the legend.
///
/// With no `final` setting, the `updates` ones take the `final` places.
/// There is one SVG circle per setting (its point); the other marks are
/// polygons.
pub fn plot_svg(reports: &[Report], title: &str, path: &std::path::Path) -> Result<(), String> {
    plot::draw(reports, title, path)
        .map_err(|e| format!("could not draw \"{}\": {e}", path.display()))
}

/// The drawing of [`plot_svg`].
mod plot {
    use std::ops::Range;

    use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
    use plotters::coord::types::RangedCoordf64;
    use plotters::coord::Shift;
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    use tidemark_windows::{EmitMode, Millis};

    use super::{pareto_front, Report, Setting};

    type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
    type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<SymLog, RangedCoordf64>>;

    const FONT: &str = "sans-serif";
    /// Font sizes as plotters takes them (the SVG's are 1.24 times smaller).
    const TITLE: u32 = 28;
    const CAPTION: u32 = 21;
    const AXIS: u32 = 17;
    const TICKS: u32 = 17;
    const LABEL: u32 = 17;
    /// The canvas, in pixels.
    const SIZE: (u32, u32) = (1600, 1000);
    /// Radius of a setting's point.
    const POINT: i32 = 5;
    const FRONT: RGBColor = RGBColor(214, 39, 40);
    const FRONT_TEXT: RGBColor = RGBColor(160, 20, 20);
    const OTHER: RGBColor = RGBColor(150, 150, 150);
    /// Categorical colours (lateness), after matplotlib's tab10.
    const CATEGORY: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
        RGBColor(188, 189, 34),
    ];

    fn text<E: std::fmt::Display>(e: E) -> String {
        e.to_string()
    }

    /// The colour of the `i`th lateness.
    fn category(i: usize) -> RGBColor {
        CATEGORY[i % CATEGORY.len()]
    }

    /// The colour of the `i`th of `n` delays: dark (short) to light (long)
    /// along viridis, short of its pale yellow end.
    fn sequential(i: usize, n: usize) -> RGBColor {
        const VIRIDIS: [(f64, f64, f64); 5] = [
            (68.0, 1.0, 84.0),
            (59.0, 82.0, 139.0),
            (33.0, 145.0, 140.0),
            (94.0, 201.0, 98.0),
            (253.0, 231.0, 37.0),
        ];
        let t = 0.8 * i as f64 / n.saturating_sub(1).max(1) as f64 * 4.0;
        let k = (t.floor() as usize).min(3);
        let f = t - k as f64;
        let (a, b) = (VIRIDIS[k], VIRIDIS[k + 1]);
        let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// `ms` as a short duration: 0, 50ms, 1s, 2.5s.
    pub(super) fn duration(ms: f64) -> String {
        let ms = ms.round();
        if ms == 0.0 {
            "0".to_owned()
        } else if ms.abs() < 1000.0 {
            format!("{ms}ms")
        } else {
            format!("{}s", ms / 1000.0)
        }
    }

    fn millis(ms: Millis) -> String {
        duration(ms as f64)
    }

    /// A setting's label on the plot: its delay and lateness.
    pub(super) fn short_label(s: &Setting) -> String {
        format!("D={} L={}", millis(s.delay), millis(s.lateness))
    }

    /// `ms` on a symlog axis: `log10(1 + ms)`, so that 0 is on it.
    fn symlog(ms: f64) -> f64 {
        (1.0 + ms.max(0.0)).log10()
    }

    /// A symlog axis of ms from 0 to `max`: ticks at 0 and at 1, 2 and 5
    /// times the powers of ten from 10 ms on (or at the powers of ten
    /// alone, when there is no room), labelled as durations.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub(super) struct SymLog {
        max: f64,
    }

    impl SymLog {
        /// From 0 to a little past `largest` ms (10 ms at least).
        pub(super) fn past(largest: f64) -> SymLog {
            SymLog {
                max: 10f64.powf(symlog(largest.max(10.0)) + 0.1) - 1.0,
            }
        }

        /// The labelled ticks, at most `most` (0 alone if even the powers of
        /// ten are too many).
        pub(super) fn ticks(&self, most: usize) -> Vec<f64> {
            for mantissas in [&[1.0, 2.0, 5.0][..], &[1.0]] {
                let ticks = self.multiples(mantissas, 10.0);
                if ticks.len() <= most {
                    return ticks;
                }
            }
            vec![0.0]
        }

        /// 0 and the `mantissas` times the powers of ten from `from` up to
        /// the end of the axis.
        fn multiples(&self, mantissas: &[f64], from: f64) -> Vec<f64> {
            let mut ticks = vec![0.0];
            let mut decade = from;
            while decade <= self.max {
                ticks.extend(
                    mantissas
                        .iter()
                        .map(|m| m * decade)
                        .filter(|&t| t <= self.max),
                );
                decade *= 10.0;
            }
            ticks
        }

        /// How many labelled ticks fit in `pixels` of width: 1-2-5 ticks
        /// when 0.3 of a decade (1 to 2) is wide enough for a label.
        fn labels_for(&self, pixels: i32) -> usize {
            let per_decade = f64::from(pixels) / symlog(self.max);
            if 0.3 * per_decade >= 52.0 {
                // Room for every 1-2-5 tick (bounded: plotters multiplies
                // the count by its light lines).
                3 * (symlog(self.max).ceil() as usize + 1) + 1
            } else {
                (symlog(self.max).floor() as usize) + 1
            }
        }
    }

    impl Ranged for SymLog {
        type FormatOption = NoDefaultFormatting;
        type ValueType = f64;

        fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
            let at = symlog(*value) / symlog(self.max);
            limit.0 + (f64::from(limit.1 - limit.0) * at).round() as i32
        }

        fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
            let bold = self.ticks(hint.bold_points());
            if !hint.weight().allow_light_points() {
                return bold;
            }
            let light = self.multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 1.0);
            if light.len() <= hint.max_num_points() {
                light
            } else {
                bold
            }
        }

        fn range(&self) -> Range<f64> {
            0.0..self.max
        }
    }

    impl ValueFormatter<f64> for SymLog {
        fn format(value: &f64) -> String {
            duration(*value)
        }
    }

    /// A box of canvas pixels: left, top, right, bottom.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct PxBox {
        pub(super) x0: i32,
        pub(super) y0: i32,
        pub(super) x1: i32,
        pub(super) y1: i32,
    }

    impl PxBox {
        fn at((x, y): (i32, i32), (w, h): (i32, i32)) -> PxBox {
            PxBox {
                x0: x,
                y0: y,
                x1: x + w,
                y1: y + h,
            }
        }

        fn around((x, y): (i32, i32), r: i32) -> PxBox {
            PxBox {
                x0: x - r,
                y0: y - r,
                x1: x + r,
                y1: y + r,
            }
        }

        fn of(plot: &DrawingArea<SVGBackend<'_>, Cartesian2d<SymLog, RangedCoordf64>>) -> PxBox {
            let (x, y) = plot.get_pixel_range();
            PxBox {
                x0: x.start,
                y0: y.start,
                x1: x.end,
                y1: y.end,
            }
        }

        pub(super) fn overlaps(&self, o: &PxBox) -> bool {
            self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
        }

        pub(super) fn contains(&self, o: &PxBox) -> bool {
            self.x0 <= o.x0 && o.x1 <= self.x1 && self.y0 <= o.y0 && o.y1 <= self.y1
        }

        fn grown(&self, by: i32) -> PxBox {
            PxBox {
                x0: self.x0 - by,
                y0: self.y0 - by,
                x1: self.x1 + by,
                y1: self.y1 + by,
            }
        }
    }

    /// The size in pixels of `label` at plotters size `size`, overestimated
    /// (0.7 em a character, where DejaVu Sans or Arial take about 0.6) so
    /// that labels placed apart stay apart whatever the font.
    pub(super) fn text_size(label: &str, size: u32) -> (i32, i32) {
        let em = f64::from(size) / 1.24;
        (
            (0.7 * em * label.chars().count() as f64).ceil() as i32,
            (1.15 * em).ceil() as i32,
        )
    }

    /// Boxes covering the polyline through `points` (pixels), one every 3
    /// pixels along it.
    fn along(points: &[(i32, i32)]) -> Vec<PxBox> {
        let mut boxes: Vec<PxBox> = points.iter().map(|&p| PxBox::around(p, 2)).collect();
        for pair in points.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            let length = f64::from(x1 - x0).hypot(f64::from(y1 - y0));
            let steps = (length / 3.0).ceil().max(1.0) as i32;
            for s in 1..steps {
                let t = f64::from(s) / f64::from(steps);
                let x = f64::from(x0) + t * f64::from(x1 - x0);
                let y = f64::from(y0) + t * f64::from(y1 - y0);
                boxes.push(PxBox::around((x.round() as i32, y.round() as i32), 2));
            }
        }
        boxes
    }

    /// A label's place: its box, and the leader drawn from its point to
    /// it when it is not right beside it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct Place {
        pub(super) text: PxBox,
        pub(super) leader: Option<((i32, i32), (i32, i32))>,
    }

    /// The point of `b` nearest to `p`, and its distance.
    fn nearest(b: &PxBox, (x, y): (i32, i32)) -> ((i32, i32), f64) {
        let at = (x.clamp(b.x0, b.x1), y.clamp(b.y0, b.y1));
        (at, f64::from(at.0 - x).hypot(f64::from(at.1 - y)))
    }

    /// Where to put each label beside its point (`labels` are the points
    /// and their texts, in pixels; `points` every point of the panel), in
    /// order. A label goes to the first of twelve places around its point
    /// (right below, left above, right above, left below, right, left,
    /// below and above it, centred, starting or ending at it) whose box
    /// lies inside `plot`, clear of the `obstacles` and of the labels
    /// placed before it and their leaders, and nearer its own point than
    /// any other point by half again; if none is, to the first such place
    /// farther out (twice, then three times as far) with a leader to it
    /// that crosses no other point or label; if none is, it is left out
    /// (`None`).
    pub(super) fn place_labels(
        labels: &[((i32, i32), String)],
        size: u32,
        plot: PxBox,
        points: &[(i32, i32)],
        obstacles: &[PxBox],
    ) -> Vec<Option<Place>> {
        let mut taken: Vec<PxBox> = Vec::new();
        let mut places = Vec::new();
        for &(p @ (x, y), ref label) in labels {
            let (w, h) = text_size(label, size);
            let others: Vec<(i32, i32)> = points
                .iter()
                .copied()
                .filter(|q| (q.0 - x).abs() > POINT || (q.1 - y).abs() > POINT)
                .collect();
            let clear = |b: &PxBox| {
                plot.contains(b)
                    && !obstacles.iter().any(|o| o.overlaps(b))
                    && !taken.iter().any(|o| o.grown(3).overlaps(b))
            };
            let place = [POINT + 4, POINT + 22, POINT + 40]
                .into_iter()
                .enumerate()
                .find_map(|(ring, d)| {
                    [
                        (x + d, y + 3),
                        (x - d - w, y - h - 3),
                        (x + d, y - h - 3),
                        (x - d - w, y + 3),
                        (x + d, y - h / 2),
                        (x - d - w, y - h / 2),
                        (x - w / 2, y + d),
                        (x - w / 2, y - d - h),
                        (x - 2, y + d),
                        (x - 2, y - d - h),
                        (x + 2 - w, y + d),
                        (x + 2 - w, y - d - h),
                    ]
                    .into_iter()
                    .map(|at| PxBox::at(at, (w, h)))
                    .filter(|b| clear(b))
                    .find_map(|b| {
                        let (end, own) = nearest(&b, p);
                        if ring == 0 {
                            let unambiguous =
                                others.iter().all(|&q| nearest(&b, q).1 > 1.5 * own + 4.0);
                            return unambiguous.then_some(Place {
                                text: b,
                                leader: None,
                            });
                        }
                        // From the point's edge to the box.
                        let t = f64::from(POINT + 2) / own.max(1.0);
                        let start = (
                            x + (t * f64::from(end.0 - x)).round() as i32,
                            y + (t * f64::from(end.1 - y)).round() as i32,
                        );
                        let crosses = along(&[start, end]).into_iter().any(|s| {
                            others.iter().any(|&q| PxBox::around(q, POINT).overlaps(&s))
                                || taken.iter().any(|o| o.overlaps(&s))
                        });
                        (!crosses).then_some(Place {
                            text: b,
                            leader: Some((start, end)),
                        })
                    })
                });
            if let Some(place) = place {
                taken.push(place.text);
                if let Some((a, b)) = place.leader {
                    taken.extend(along(&[a, b]));
                }
            }
            places.push(place);
        }
        places
    }

    /// A mark for a line's points: not a circle, which stands for a
    /// setting's point (one circle per setting).
    #[derive(Clone, Copy, Debug)]
    enum Mark {
        Square,
        Triangle,
        Diamond,
        Down,
        /// A round dot drawn as a polygon, for legends.
        Dot,
    }

    impl Mark {
        fn nth(i: usize) -> Mark {
            [Mark::Square, Mark::Triangle, Mark::Diamond, Mark::Down][i % 4]
        }
    }

    fn draw_mark(
        canvas: &Area<'_>,
        mark: Mark,
        (x, y): (i32, i32),
        c: RGBColor,
    ) -> Result<(), String> {
        let style = c.filled();
        match mark {
            Mark::Square => canvas.draw(&Rectangle::new([(x - 4, y - 4), (x + 4, y + 4)], style)),
            Mark::Triangle => canvas.draw(&Polygon::new(
                vec![(x, y - 6), (x - 5, y + 4), (x + 5, y + 4)],
                style,
            )),
            Mark::Down => canvas.draw(&Polygon::new(
                vec![(x, y + 6), (x - 5, y - 4), (x + 5, y - 4)],
                style,
            )),
            Mark::Diamond => canvas.draw(&Polygon::new(
                vec![(x, y - 6), (x + 6, y), (x, y + 6), (x - 6, y)],
                style,
            )),
            Mark::Dot => canvas.draw(&Polygon::new(
                (0..12)
                    .map(|k| {
                        let a = f64::from(k) * std::f64::consts::PI / 6.0;
                        let r = f64::from(POINT);
                        (
                            x + (r * a.cos()).round() as i32,
                            y + (r * a.sin()).round() as i32,
                        )
                    })
                    .collect::<Vec<_>>(),
                style,
            )),
        }
        .map_err(text)
    }

    /// What a legend entry shows before its text.
    #[derive(Clone, Copy, Debug)]
    enum Key {
        /// A line, with a mark on it.
        Line(RGBColor, Option<Mark>),
        /// A point.
        Dot(RGBColor),
        /// Nothing: a note.
        Note,
    }

    const LEGEND_ROW: i32 = 24;
    const LEGEND_KEY: i32 = 36;

    fn legend_size(entries: &[(Key, String)]) -> (i32, i32) {
        let width = entries
            .iter()
            .map(|(key, label)| {
                let key = if matches!(key, Key::Note) {
                    0
                } else {
                    LEGEND_KEY
                };
                // Legends need no margin for other fonts: 0.62 em a character.
                key + (f64::from(text_size(label, LABEL).0) * 0.62 / 0.7).ceil() as i32
            })
            .max()
            .unwrap_or(0);
        (width + 24, LEGEND_ROW * entries.len() as i32 + 12)
    }

    /// Where the legend goes: the corner of `plot` where its box covers
    /// the fewest `obstacles` (the first of upper left, upper right, lower
    /// right and lower left on a tie).
    fn place_legend(plot: PxBox, size: (i32, i32), obstacles: &[PxBox]) -> PxBox {
        let (w, h) = size;
        let inset = 8;
        [
            (plot.x0 + inset, plot.y0 + inset),
            (plot.x1 - inset - w, plot.y0 + inset),
            (plot.x1 - inset - w, plot.y1 - inset - h),
            (plot.x0 + inset, plot.y1 - inset - h),
        ]
        .into_iter()
        .map(|at| PxBox::at(at, size))
        .min_by_key(|b| obstacles.iter().filter(|o| o.overlaps(b)).count())
        .unwrap_or_else(|| PxBox::at((plot.x0, plot.y0), size))
    }

    fn draw_legend(canvas: &Area<'_>, at: PxBox, entries: &[(Key, String)]) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        let corners = [(at.x0, at.y0), (at.x1, at.y1)];
        canvas
            .draw(&Rectangle::new(corners, WHITE.mix(0.92).filled()))
            .map_err(text)?;
        canvas
            .draw(&Rectangle::new(corners, RGBColor(170, 170, 170)))
            .map_err(text)?;
        for (row, (key, label)) in entries.iter().enumerate() {
            let y = at.y0 + 6 + LEGEND_ROW * row as i32 + LEGEND_ROW / 2;
            let x = at.x0 + 12;
            let style = TextStyle::from((FONT, LABEL).into_font())
                .pos(Pos::new(HPos::Left, VPos::Center))
                .color(&BLACK);
            let text_x = match *key {
                Key::Line(c, mark) => {
                    canvas
                        .draw(&PathElement::new(
                            vec![(x, y), (x + LEGEND_KEY - 8, y)],
                            c.stroke_width(2),
                        ))
                        .map_err(text)?;
                    if let Some(mark) = mark {
                        draw_mark(canvas, mark, (x + (LEGEND_KEY - 8) / 2, y), c)?;
                    }
                    x + LEGEND_KEY
                }
                Key::Dot(c) => {
                    draw_mark(canvas, Mark::Dot, (x + (LEGEND_KEY - 8) / 2, y), c)?;
                    x + LEGEND_KEY
                }
                Key::Note => x,
            };
            let style = if matches!(key, Key::Note) {
                style.color(&RGBColor(80, 80, 80))
            } else {
                style
            };
            canvas
                .draw(&Text::new(label.clone(), (text_x, y), style))
                .map_err(text)?;
        }
        Ok(())
    }

    /// A panel's frame: caption, axes (symlog `x`, linear `y`) and mesh.
    struct Frame<'s> {
        caption: String,
        x: SymLog,
        y: Range<f64>,
        x_desc: String,
        y_desc: &'s str,
    }

    fn frame<'a, 'b>(area: &'a Area<'b>, f: Frame<'_>) -> Result<Chart<'a, 'b>, String> {
        let mut chart = ChartBuilder::on(area)
            .caption(&f.caption, (FONT, CAPTION))
            .margin(14)
            .margin_right(24)
            .x_label_area_size(52)
            .y_label_area_size(66)
            .build_cartesian_2d(f.x, f.y.clone())
            .map_err(text)?;
        let width = chart.plotting_area().get_pixel_range().0.len() as i32;
        let span = f.y.end - f.y.start;
        let decimals = if span > 20.0 {
            0
        } else if span > 2.0 {
            1
        } else if span > 0.2 {
            2
        } else {
            3
        };
        // No "-0.0" for a tick a rounding error below 0.
        let y_format = move |v: &f64| {
            let v = if v.abs() < 1e-9 * span { 0.0 } else { *v };
            format!("{v:.decimals$}")
        };
        chart
            .configure_mesh()
            .x_desc(&f.x_desc)
            .y_desc(f.y_desc)
            .x_labels(f.x.labels_for(width))
            .y_labels(8)
            .max_light_lines(4)
            .y_label_formatter(&y_format)
            .label_style((FONT, TICKS))
            .axis_desc_style((FONT, AXIS))
            .bold_line_style(RGBColor(205, 205, 205))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(text)?;
        Ok(chart)
    }

    /// A percentage axis for `values` (shares): when they reach 50 %, from
    /// a round number below the lowest to a little past 100; below, from a
    /// little under 0 (room for labels) to 60 % past the highest (room for
    /// the legend).
    pub(super) fn percent_axis(values: impl Iterator<Item = f64> + Clone) -> Range<f64> {
        let highest = values.clone().fold(0.0f64, f64::max) * 100.0;
        if highest < 50.0 {
            let top = (1.6 * highest).max(1.0);
            return -0.07 * top..top;
        }
        let lowest = values.fold(1.0f64, f64::min) * 100.0;
        let floor = (((lowest - 3.0) / 10.0).floor() * 10.0).clamp(0.0, 90.0);
        floor..102.0
    }

    /// The distinct values of `of`, in increasing order.
    fn distinct(reports: &[&Report], of: impl Fn(&Setting) -> Millis) -> Vec<Millis> {
        let mut values: Vec<Millis> = reports.iter().map(|r| of(&r.setting)).collect();
        values.sort_unstable();
        values.dedup();
        values
    }

    /// A note in the middle of an empty panel.
    fn empty(canvas: &Area<'_>, chart: &Chart<'_, '_>, note: &str) -> Result<(), String> {
        let plot = PxBox::of(chart.plotting_area());
        let style = TextStyle::from((FONT, AXIS).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center))
            .color(&RGBColor(110, 110, 110));
        canvas
            .draw(&Text::new(
                note.to_owned(),
                ((plot.x0 + plot.x1) / 2, (plot.y0 + plot.y1) / 2),
                style,
            ))
            .map_err(text)
    }

    /// A panel of first-result latency against completeness for the
    /// settings `shown` (indices into `reports`): the Pareto front among
    /// them joined in red and labelled, the others grey.
    struct Settings<'r> {
        frame: Frame<'r>,
        reports: &'r [Report],
        shown: Vec<usize>,
        /// The front's legend entry.
        front: &'r str,
        legend: Vec<(Key, String)>,
        empty: String,
    }

    fn settings_panel(canvas: &Area<'_>, area: &Area<'_>, p: Settings<'_>) -> Result<(), String> {
        let chart = frame(area, p.frame)?;
        if p.shown.is_empty() {
            return empty(canvas, &chart, &p.empty);
        }
        let at = |i: usize| {
            let r = &p.reports[i];
            chart.backend_coord(&(r.first_latency.p99 as f64, 100.0 * r.first_complete))
        };
        let subset: Vec<Report> = p.shown.iter().map(|&i| p.reports[i].clone()).collect();
        let front: Vec<usize> = pareto_front(&subset)
            .into_iter()
            .map(|k| p.shown[k])
            .collect();
        let line: Vec<(i32, i32)> = front.iter().map(|&i| at(i)).collect();
        // The obstacles: every point and the front's line.
        let mut obstacles: Vec<PxBox> = p
            .shown
            .iter()
            .map(|&i| PxBox::around(at(i), POINT + 2))
            .collect();
        obstacles.extend(along(&line));
        let plot = PxBox::of(chart.plotting_area());
        let mut legend = vec![(Key::Line(FRONT, Some(Mark::Dot)), p.front.to_owned())];
        if front.len() < p.shown.len() {
            legend.push((Key::Dot(OTHER), "other settings".to_owned()));
        }
        legend.extend(p.legend);
        let legend_box = place_legend(plot, legend_size(&legend), &obstacles);

        for &i in p.shown.iter().filter(|i| !front.contains(i)) {
            canvas
                .draw(&Circle::new(at(i), POINT, OTHER.filled()))
                .map_err(text)?;
        }
        canvas
            .draw(&PathElement::new(line.clone(), FRONT.stroke_width(2)))
            .map_err(text)?;
        for &point in &line {
            canvas
                .draw(&Circle::new(point, POINT + 1, FRONT.filled()))
                .map_err(text)?;
        }
        obstacles.push(legend_box);
        let labels: Vec<((i32, i32), String)> = front
            .iter()
            .map(|&i| (at(i), short_label(&p.reports[i].setting)))
            .collect();
        let points: Vec<(i32, i32)> = p.shown.iter().map(|&i| at(i)).collect();
        let places = place_labels(&labels, LABEL, plot, &points, &obstacles);
        for ((_, label), place) in labels.iter().zip(places) {
            let Some(Place { text: b, leader }) = place else {
                continue;
            };
            if let Some((a, z)) = leader {
                canvas
                    .draw(&PathElement::new(vec![a, z], FRONT_TEXT.stroke_width(1)))
                    .map_err(text)?;
            }
            canvas
                .draw(&Rectangle::new(
                    [(b.x0 - 1, b.y0), (b.x1 + 1, b.y1)],
                    WHITE.mix(0.8).filled(),
                ))
                .map_err(text)?;
            let style = TextStyle::from((FONT, LABEL).into_font())
                .pos(Pos::new(HPos::Left, VPos::Top))
                .color(&FRONT_TEXT);
            canvas
                .draw(&Text::new(label.clone(), (b.x0, b.y0 + 1), style))
                .map_err(text)?;
        }
        draw_legend(canvas, legend_box, &legend)
    }

    /// A panel of lines: for each series (its legend entry and its points,
    /// by increasing x), a line with marks; `notes` follow the legend.
    fn lines_panel(
        canvas: &Area<'_>,
        area: &Area<'_>,
        f: Frame<'_>,
        series: &[(String, Vec<(f64, f64)>)],
        colour: impl Fn(usize) -> RGBColor,
        notes: Vec<String>,
    ) -> Result<(), String> {
        let chart = frame(area, f)?;
        if series.is_empty() {
            return empty(canvas, &chart, "no settings in this run");
        }
        let plot = PxBox::of(chart.plotting_area());
        let mut obstacles = Vec::new();
        let mut legend = Vec::new();
        let mut drawn = Vec::new();
        for (k, (name, points)) in series.iter().enumerate() {
            let pixels: Vec<(i32, i32)> = points.iter().map(|p| chart.backend_coord(p)).collect();
            obstacles.extend(along(&pixels));
            legend.push((Key::Line(colour(k), Some(Mark::nth(k))), name.clone()));
            drawn.push(pixels);
        }
        legend.extend(notes.into_iter().map(|n| (Key::Note, n)));
        for (k, pixels) in drawn.iter().enumerate() {
            canvas
                .draw(&PathElement::new(pixels.clone(), colour(k).stroke_width(2)))
                .map_err(text)?;
            for &p in pixels {
                draw_mark(canvas, Mark::nth(k), p, colour(k))?;
            }
        }
        let legend_box = place_legend(plot, legend_size(&legend), &obstacles);
        draw_legend(canvas, legend_box, &legend)
    }

    /// The least and the greatest of `values` (`None` for none).
    fn span(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
        values.fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
    }

    /// `lo` to `hi` with `decimals`, or the one value if they are equal.
    fn range_text(lo: f64, hi: f64, decimals: usize) -> String {
        let (a, b) = (format!("{lo:.decimals$}"), format!("{hi:.decimals$}"));
        if a == b {
            a
        } else {
            format!("{a} to {b}")
        }
    }

    /// Series of `y` against `x` for the `reports`, one per distinct
    /// `by` (named by `name`), each by increasing `x`.
    fn series_of(
        reports: &[&Report],
        by: impl Fn(&Setting) -> Millis,
        name: impl Fn(Millis) -> String,
        x: impl Fn(&Report) -> f64,
        y: impl Fn(&Report) -> f64,
    ) -> Vec<(String, Vec<(f64, f64)>)> {
        distinct(reports, &by)
            .into_iter()
            .map(|value| {
                let mut points: Vec<(f64, f64)> = reports
                    .iter()
                    .filter(|r| by(&r.setting) == value)
                    .map(|r| (x(r), y(r)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                (name(value), points)
            })
            .collect()
    }

    pub(super) fn draw(
        reports: &[Report],
        title: &str,
        path: &std::path::Path,
    ) -> Result<(), String> {
        let canvas = SVGBackend::new(path, SIZE).into_drawing_area();
        canvas.fill(&WHITE).map_err(text)?;
        let body = canvas.titled(title, (FONT, TITLE)).map_err(text)?;
        let (w, h) = body.dim_in_pixel();
        let panels = body.split_by_breakpoints([w * 9 / 16], [h * 3 / 5]);
        let (main, other) = if reports.iter().any(|r| r.setting.emit == EmitMode::Final) {
            (EmitMode::Final, EmitMode::Updates)
        } else {
            (EmitMode::Updates, EmitMode::Final)
        };
        let indices = |mode: EmitMode| -> Vec<usize> {
            (0..reports.len())
                .filter(|&i| reports[i].setting.emit == mode)
                .collect()
        };
        let in_main: Vec<&Report> = indices(main).into_iter().map(|i| &reports[i]).collect();
        let in_other: Vec<&Report> = indices(other).into_iter().map(|i| &reports[i]).collect();
        let latenesses = distinct(&in_main, |s| s.lateness);
        let delays = distinct(&in_main, |s| s.delay);

        // First results, on one latency axis for both modes.
        let latency = SymLog::past(
            reports
                .iter()
                .map(|r| r.first_latency.p99)
                .max()
                .unwrap_or(0) as f64,
        );
        let latency_desc = "first result: p99 latency past the window's end (event time, symlog)";
        settings_panel(
            &canvas,
            &panels[0],
            Settings {
                frame: Frame {
                    caption: format!("{}: first-result latency against completeness", main.name()),
                    x: latency,
                    y: percent_axis(in_main.iter().map(|r| r.first_complete)),
                    x_desc: latency_desc.to_owned(),
                    y_desc: "first result = the truth (% of windows)",
                },
                reports,
                shown: indices(main),
                front: "Pareto front: no other setting beats these on both axes",
                legend: vec![(
                    Key::Note,
                    "D = watermark delay, L = allowed lateness".to_owned(),
                )],
                empty: "no settings in this run".to_owned(),
            },
        )?;
        let mut notes = Vec::new();
        if let Some((lo, hi)) = span(in_other.iter().map(|r| 100.0 * r.last_complete)) {
            notes.push(format!(
                "last results: {} % the truth",
                range_text(lo, hi, 1)
            ));
        }
        if let Some((lo, hi)) = span(in_other.iter().map(|r| r.corrections_per_window)) {
            notes.push(format!("churn: {} per window", range_text(lo, hi, 1)));
        }
        settings_panel(
            &canvas,
            &panels[2],
            Settings {
                frame: Frame {
                    caption: format!(
                        "{}: first-result latency against completeness",
                        other.name()
                    ),
                    x: latency,
                    y: percent_axis(in_other.iter().map(|r| r.first_complete)),
                    x_desc: latency_desc.to_owned(),
                    y_desc: "first result = the truth (%)",
                },
                reports,
                shown: indices(other),
                front: "Pareto front",
                legend: notes.into_iter().map(|n| (Key::Note, n)).collect(),
                empty: format!("no {} settings in this run", other.name()),
            },
        )?;

        // What lateness buys (and costs in state): last-result
        // completeness, one line per delay.
        let series = series_of(
            &in_main,
            |s| s.delay,
            |d| format!("D={}", millis(d)),
            |r| r.setting.lateness as f64,
            |r| 100.0 * r.last_complete,
        );
        let n = series.len();
        let mut lateness_desc = "allowed lateness (symlog)".to_owned();
        if (2..=4).contains(&latenesses.len()) {
            let state = latenesses
                .iter()
                .map(|&l| {
                    let most = in_main
                        .iter()
                        .filter(|r| r.setting.lateness == l)
                        .map(|r| r.peak_state_bytes)
                        .max()
                        .unwrap_or(0);
                    format!("{:.0} KB at L={}", most as f64 / 1000.0, millis(l))
                })
                .collect::<Vec<_>>()
                .join(", ");
            lateness_desc.push_str(&format!("; peak state: {state}"));
        }
        lines_panel(
            &canvas,
            &panels[1],
            Frame {
                caption: format!(
                    "what lateness buys: last-result completeness ({})",
                    main.name()
                ),
                x: SymLog::past(latenesses.last().copied().unwrap_or(0) as f64),
                y: percent_axis(in_main.iter().map(|r| r.last_complete)),
                x_desc: lateness_desc,
                y_desc: "last result = the truth (% of windows)",
            },
            &series,
            |k| sequential(k, n),
            vec![],
        )?;

        // Churn against delay, one line per lateness (coloured as the
        // latenesses, in order).
        let series = series_of(
            &in_main,
            |s| s.lateness,
            |l| format!("L={}", millis(l)),
            |r| r.setting.delay as f64,
            |r| r.corrections_per_window,
        );
        let most = in_main
            .iter()
            .map(|r| r.corrections_per_window)
            .fold(0.0, f64::max);
        let top = (1.15 * most).max(0.01);
        let mut notes = Vec::new();
        if let Some((lo, hi)) = span(in_other.iter().map(|r| r.corrections_per_window)) {
            notes.push(format!(
                "{} (not drawn): {} per window",
                other.name(),
                range_text(lo, hi, 1)
            ));
        }
        lines_panel(
            &canvas,
            &panels[3],
            Frame {
                caption: format!("churn against delay ({})", main.name()),
                x: SymLog::past(delays.last().copied().unwrap_or(0) as f64),
                y: -0.02 * top..top,
                x_desc: "watermark delay (symlog)".to_owned(),
                y_desc: "corrections per window",
            },
            &series,
            category,
            notes,
        )?;
        canvas.present().map_err(text)
    }

    #[cfg(test)]
    mod tests {
        use super::super::Percentiles;
        use super::*;

        fn report(delay: Millis, lateness: Millis, emit: EmitMode, p99: u64, first: f64) -> Report {
            Report {
                setting: Setting {
                    delay,
                    lateness,
                    emit,
                },
                windows: 100,
                first_latency: Percentiles {
                    p50: p99.min(delay as u64),
                    p99,
                    ..Percentiles::default()
                },
                last_latency: Percentiles::default(),
                first_complete: first,
                last_complete: (first + lateness as f64 / 10_000.0).min(1.0),
                first_error: 0.0,
                dropped: 0.0,
                corrections_per_window: if emit == EmitMode::Updates {
                    8.0
                } else {
                    lateness as f64 / 20_000.0
                },
                records_per_second: 0.0,
                peak_open_windows: 0,
                peak_state_bytes: 1_000 + lateness as u64,
                first_wall: None,
                last_wall: None,
            }
        }

        /// A grid shaped like the default one: 4 delays, 3 latenesses,
        /// both modes.
        fn grid() -> Vec<Report> {
            let mut reports = Vec::new();
            for emit in [EmitMode::Final, EmitMode::Updates] {
                for lateness in [0, 1_000, 10_000] {
                    for (k, delay) in [0, 50, 200, 1_000].into_iter().enumerate() {
                        let (p99, first) = match emit {
                            EmitMode::Final => (
                                (delay as u64).max(if lateness == 10_000 { 3_110 } else { 0 }),
                                0.56 + 0.1 * k as f64 + lateness as f64 / 1e6,
                            ),
                            EmitMode::Updates => (7 * k as u64, 0.003 * (k + 1) as f64),
                        };
                        reports.push(report(delay, lateness, emit, p99, first));
                    }
                }
            }
            reports
        }

        #[test]
        fn the_symlog_axis_puts_0_at_the_start_and_gives_0_to_200_ms_most_of_it() {
            let axis = SymLog::past(3_110.0);
            assert_eq!(axis.map(&0.0, (100, 1100)), 100);
            assert_eq!(axis.map(&axis.max, (100, 1100)), 1100);
            assert!(axis.map(&200.0, (0, 1000)) > 600);
            assert!(axis.max > 3_110.0 && axis.max < 5_000.0);
            let mut last = -1;
            for ms in [0.0, 1.0, 10.0, 50.0, 200.0, 1_000.0, 3_110.0] {
                let at = axis.map(&ms, (0, 1000));
                assert!(at > last, "{ms}");
                last = at;
            }
        }

        #[test]
        fn the_symlog_ticks_are_0_and_1_2_5_from_10_ms_or_the_decades_when_crowded() {
            let axis = SymLog::past(3_110.0);
            let fine = [0.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0];
            assert_eq!(axis.ticks(usize::MAX), fine);
            assert_eq!(axis.ticks(5), [0.0, 10.0, 100.0, 1_000.0]);
            assert_eq!(axis.ticks(1), [0.0]);
            let labels: Vec<String> = fine.iter().map(SymLog::format).collect();
            assert_eq!(
                labels,
                ["0", "10ms", "20ms", "50ms", "100ms", "200ms", "500ms", "1s", "2s"]
            );
            assert_eq!(duration(2_500.0), "2.5s");
            assert_eq!(
                short_label(&Setting {
                    delay: 200,
                    lateness: 1_000,
                    emit: EmitMode::Final
                }),
                "D=200ms L=1s"
            );
        }

        #[test]
        fn a_percent_axis_zooms_on_small_shares_and_ends_past_100_otherwise() {
            assert_eq!(percent_axis([0.561, 0.89].into_iter()), 50.0..102.0);
            assert_eq!(percent_axis([0.25, 1.0].into_iter()), 20.0..102.0);
            let low = percent_axis([0.003, 0.033].into_iter());
            assert!(low.start < 0.0 && low.end > 5.0 && low.end < 6.0, "{low:?}");
        }

        #[test]
        fn labels_are_placed_apart_inside_the_plot_or_left_out() {
            let plot = PxBox {
                x0: 0,
                y0: 0,
                x1: 400,
                y1: 300,
            };
            // A crowd: 12 points within 40 pixels, and one alone.
            let mut points: Vec<(i32, i32)> = (0..12).map(|k| (100 + 3 * k, 150 - 2 * k)).collect();
            points.push((300, 60));
            let labels: Vec<((i32, i32), String)> = points
                .iter()
                .enumerate()
                .map(|(k, &p)| (p, format!("D={k}ms L=1s")))
                .collect();
            let obstacles: Vec<PxBox> = points
                .iter()
                .map(|&p| PxBox::around(p, POINT + 2))
                .collect();
            let places = place_labels(&labels, LABEL, plot, &points, &obstacles);
            let placed: Vec<Place> = places.iter().flatten().copied().collect();
            assert!(placed.len() >= 4, "{places:?}");
            assert!(places[12].is_some_and(|p| p.leader.is_none()), "{places:?}");
            for (i, a) in placed.iter().enumerate() {
                assert!(plot.contains(&a.text), "{a:?}");
                assert!(!obstacles.iter().any(|o| o.overlaps(&a.text)), "{a:?}");
                for b in &placed[i + 1..] {
                    assert!(!a.text.overlaps(&b.text), "{a:?} {b:?}");
                }
            }
        }

        fn svg_of(reports: &[Report]) -> String {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tradeoff.svg");
            super::super::plot_svg(reports, "title", &path).unwrap();
            std::fs::read_to_string(path).unwrap()
        }

        #[test]
        fn the_plot_has_one_point_per_setting_and_labels_only_the_fronts() {
            let reports = grid();
            let svg = svg_of(&reports);
            let doc = roxmltree::Document::parse(&svg).unwrap();
            let circles = doc
                .descendants()
                .filter(|n| n.has_tag_name("circle"))
                .count();
            assert_eq!(circles, reports.len());
            let texts: Vec<&str> = doc
                .descendants()
                .filter(|n| n.has_tag_name("text"))
                .filter_map(|n| n.text())
                .map(str::trim)
                .collect();
            let labels: Vec<&str> = texts
                .iter()
                .copied()
                .filter(|t| t.starts_with("D=") && t.contains(" L="))
                .collect();
            // Each panel's front, labelled once each (at most).
            let finals: Vec<Report> = reports
                .iter()
                .filter(|r| r.setting.emit == EmitMode::Final)
                .cloned()
                .collect();
            let updates: Vec<Report> = reports
                .iter()
                .filter(|r| r.setting.emit == EmitMode::Updates)
                .cloned()
                .collect();
            let fronts: Vec<String> = pareto_front(&finals)
                .into_iter()
                .map(|i| short_label(&finals[i].setting))
                .chain(
                    pareto_front(&updates)
                        .into_iter()
                        .map(|i| short_label(&updates[i].setting)),
                )
                .collect();
            assert!(!labels.is_empty(), "{texts:?}");
            for label in &labels {
                assert!(
                    fronts.iter().any(|f| f == label),
                    "{label} is off the fronts"
                );
            }
            assert!(labels.len() <= fronts.len());
            for caption in [
                "final: first-result latency against completeness",
                "updates: first-result latency against completeness",
                "what lateness buys: last-result completeness (final)",
                "churn against delay (final)",
                "Pareto front: no other setting beats these on both axes",
                "other settings",
                "updates (not drawn): 8.0 per window",
            ] {
                assert!(texts.contains(&caption), "{caption} in {texts:?}");
            }
            for tick in ["0", "10ms", "200ms", "1s", "10s"] {
                assert!(texts.contains(&tick), "{tick}");
            }
        }

        #[test]
        fn the_plot_copes_with_one_mode_one_setting_or_none() {
            let reports = grid();
            let updates: Vec<Report> = reports
                .iter()
                .filter(|r| r.setting.emit == EmitMode::Updates)
                .cloned()
                .collect();
            let svg = svg_of(&updates);
            assert!(svg.contains("updates: first-result latency against completeness"));
            assert!(svg.contains("no final settings in this run"));
            let svg = svg_of(&reports[..1]);
            assert!(svg.contains("D=0 L=0"));
            assert!(svg.contains("no updates settings in this run"));
            let svg = svg_of(&[]);
            assert!(svg.contains("no settings in this run"));
        }
    }
}
