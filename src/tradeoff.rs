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

/// Draws, as an SVG file at `path`: on the left, first-result latency
/// (p99, event time) against first-result completeness, one labelled point
/// per setting, the Pareto front drawn and highlighted; on the right, the
/// churn (corrections per window) against the delay, one line per
/// lateness and emit mode.
pub fn plot_svg(reports: &[Report], title: &str, path: &std::path::Path) -> Result<(), String> {
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| format!("could not draw \"{}\": {e}", path.display());
    let root = SVGBackend::new(path, (1400, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| fail(&e))?;
    let (left, right) = root.split_horizontally(900);
    let max_latency = reports
        .iter()
        .map(|r| r.first_latency.p99)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            "latency against completeness of first results",
            ("sans-serif", 15),
        )
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_latency * 1.15, 0f64..105f64)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("first result: p99 latency past the window's end (ms of event time)")
        .y_desc("first result equals the truth (% of windows)")
        .draw()
        .map_err(|e| fail(&e))?;
    let front = pareto_front(reports);
    let point = |r: &Report| (r.first_latency.p99 as f64, 100.0 * r.first_complete);
    chart
        .draw_series(LineSeries::new(
            front.iter().map(|&i| point(&reports[i])),
            RED.stroke_width(2),
        ))
        .map_err(|e| fail(&e))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    for (i, r) in reports.iter().enumerate() {
        let on_front = front.contains(&i);
        let color = if on_front { RED } else { BLUE };
        let (x, y) = point(r);
        chart
            .draw_series(std::iter::once(Circle::new((x, y), 4, color.filled())))
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(std::iter::once(Text::new(
                label(&r.setting),
                (x, y),
                ("sans-serif", 11).into_font().color(&color),
            )))
            .map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| fail(&e))?;

    // Churn against delay: one line per (lateness, emit), in grid order.
    type Line = ((Millis, EmitMode), Vec<(f64, f64)>);
    let mut lines: Vec<Line> = Vec::new();
    for r in reports {
        let id = (r.setting.lateness, r.setting.emit);
        let at = (r.setting.delay as f64, r.corrections_per_window);
        match lines.iter_mut().find(|(k, _)| *k == id) {
            Some((_, points)) => points.push(at),
            None => lines.push((id, vec![at])),
        }
    }
    for (_, points) in &mut lines {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let max_delay = reports
        .iter()
        .map(|r| r.setting.delay)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let max_churn = reports
        .iter()
        .map(|r| r.corrections_per_window)
        .fold(0.0, f64::max)
        .max(0.01);
    let mut churn = ChartBuilder::on(&right)
        .caption("churn against delay", ("sans-serif", 15))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_delay * 1.05, 0f64..max_churn * 1.15)
        .map_err(|e| fail(&e))?;
    churn
        .configure_mesh()
        .x_desc("watermark delay (ms)")
        .y_desc("corrections per window")
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, ((lateness, emit), points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let emit = emit.name();
        churn
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(format!("L={lateness}ms {emit}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        churn
            .draw_series(
                points
                    .iter()
                    .map(|&p| Rectangle::new([(p.0, p.1), (p.0, p.1)], color.stroke_width(4))),
            )
            .map_err(|e| fail(&e))?;
    }
    churn
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}
