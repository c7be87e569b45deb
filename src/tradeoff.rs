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
use std::sync::Arc;
use std::time::Instant;

use hdrhistogram::Histogram;
use tidemark_engine::{Collect, Row, Summary};
use tidemark_sources::{Key, Source};
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

/// Percentiles of a latency in event time, ms.
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
}

/// Aggregations the trade-off compares results on.
const AGGS: [AggKind; 2] = [AggKind::Count, AggKind::Sum];

/// The truth's delay: longer than any input can span.
const TRUTH_DELAY: Millis = tidemark_windows::assign::MAX_SPAN;

fn run_rows(
    source: Arc<dyn Source>,
    window: WindowSpec,
    policy: Policy,
    workers: usize,
) -> Result<(Vec<Row<MetricValues>>, Summary, f64), JobError> {
    let (sink, rows) = Collect::new();
    let job = Job::builder()
        .source(source)
        .window(window)
        .delay(policy.delay)
        .lateness(policy.lateness)
        .emit(policy.emit)
        .aggs(&AGGS)
        .workers(workers)
        .results_sink(sink)
        .build()?;
    let started = Instant::now();
    let summary = job.run()?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let rows = rows.lock().map(|r| r.clone()).unwrap_or_default();
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
        .filter(|r| r.kind != ChangeKind::Retract)
        .map(|r| ((r.key, r.window), r.value))
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
    // Per window: the first and last shown value and the steps they came at.
    let mut shown: BTreeMap<(Key, Window), (i64, MetricValues, i64, MetricValues)> =
        BTreeMap::new();
    let mut retracts = 0u64;
    for r in rows {
        if r.kind == ChangeKind::Retract {
            retracts += 1;
            continue;
        }
        shown
            .entry((r.key, r.window))
            .and_modify(|e| {
                e.2 = r.time;
                e.3 = r.value;
            })
            .or_insert((r.time, r.value, r.time, r.value));
    }
    let new_histogram = || Histogram::<u64>::new(5).expect("5 significant figures is valid");
    let (mut first, mut last) = (new_histogram(), new_histogram());
    let (mut first_ok, mut last_ok, mut error) = (0u64, 0u64, 0f64);
    for (key, want) in truth {
        let Some((t0, v0, t1, v1)) = shown.get(key) else {
            error += 1.0;
            continue;
        };
        let end = key.1.end;
        let _ = first.record(u64::try_from(t0.saturating_sub(end)).unwrap_or(0));
        let _ = last.record(u64::try_from(t1.saturating_sub(end)).unwrap_or(0));
        first_ok += u64::from(v0 == want);
        last_ok += u64::from(v1 == want);
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
    Ok(Report {
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
    })
}

/// The CSV header of [`csv_row`].
pub const CSV_HEADER: &str = "delay_ms,lateness_ms,emit,windows,first_p50_ms,first_p90_ms,first_p99_ms,first_p999_ms,first_max_ms,last_p50_ms,last_p90_ms,last_p99_ms,last_p999_ms,last_max_ms,first_complete,last_complete,first_mean_rel_error,dropped_share,corrections_per_window,records_per_s";

/// One report as a CSV row: every column but the last (records/s) is
/// deterministic.
pub fn csv_row(r: &Report) -> String {
    let s = r.setting;
    let emit = match s.emit {
        EmitMode::Final => "final",
        EmitMode::Updates => "updates",
    };
    let p = |p: &Percentiles| format!("{},{},{},{},{}", p.p50, p.p90, p.p99, p.p999, p.max);
    format!(
        "{},{},{emit},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.0}",
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
        r.records_per_second
    )
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
    let emit = match s.emit {
        EmitMode::Final => "final",
        EmitMode::Updates => "updates",
    };
    format!("D={}ms L={}ms {emit}", s.delay, s.lateness)
}

/// Draws first-result latency (p99, event time) against first-result
/// completeness, one labelled point per setting, the Pareto front drawn
/// and highlighted, as an SVG file at `path`.
pub fn plot_svg(reports: &[Report], title: &str, path: &std::path::Path) -> Result<(), String> {
    use plotters::prelude::*;
    let fail = |e: &dyn std::fmt::Display| format!("could not draw \"{}\": {e}", path.display());
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let max_latency = reports
        .iter()
        .map(|r| r.first_latency.p99)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
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
    root.present().map_err(|e| fail(&e))
}
