//! `--metrics-addr`: the running job's stats ([`Stats::snapshot`]) in the
//! Prometheus text exposition format, served over HTTP at `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tidemark::engine::{Stats, StatsSnapshot};

/// A metrics endpoint serving while the job runs; stops when dropped.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The address it listens on (the port chosen when 0 was asked).
    pub addr: String,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Listens on `addr` (`127.0.0.1:9464`, port 0 for any) and answers
/// scrapes of `/metrics` from `stats`.
pub fn serve(addr: &str, stats: Arc<Stats>) -> anyhow::Result<MetricsServer> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("--metrics-addr {addr}: could not listen: {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| addr.to_owned(), |a| a.to_string());
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let request = match server.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(_) => break,
            };
            let response = if request.url() == "/metrics" || request.url().starts_with("/metrics?")
            {
                let header = tiny_http::Header::from_bytes(
                    "Content-Type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .ok();
                let mut r = tiny_http::Response::from_string(render(&stats.snapshot()));
                if let Some(h) = header {
                    r = r.with_header(h);
                }
                r
            } else {
                tiny_http::Response::from_string("the metrics are at /metrics\n")
                    .with_status_code(404)
            };
            let _ = request.respond(response);
        }
    });
    Ok(MetricsServer {
        stop,
        thread: Some(thread),
        addr: bound,
    })
}

type PartitionLabel = [(&'static str, String); 1];

/// Seconds since the epoch of an event time in ms.
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1e3
}

/// The snapshot in the text exposition format, names following the
/// Prometheus conventions (`tidemark_records_total`,
/// `tidemark_partition_watermark_seconds{partition="3"}`, ...).
pub fn render(s: &StatsSnapshot) -> String {
    let mut registry = Registry::with_prefix("tidemark");
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let c: Counter<u64> = Counter::default();
        c.inc_by(value);
        registry.register(name, help, c);
    };
    counter(&mut registry, "records", "Records decoded", s.records);
    counter(
        &mut registry,
        "dead_letters",
        "Lines or messages that could not be decoded",
        s.dead_letters,
    );
    counter(
        &mut registry,
        "late_dropped",
        "Records dropped from a window as too late",
        s.late_dropped,
    );
    counter(
        &mut registry,
        "late_applied",
        "Records applied after their window fired (allowed lateness)",
        s.late_applied,
    );
    counter(
        &mut registry,
        "unassigned",
        "Records in no window",
        s.unassigned,
    );
    counter(
        &mut registry,
        "windows_emitted",
        "Result rows of kind final",
        s.windows_emitted,
    );
    counter(
        &mut registry,
        "corrections",
        "Result rows of kind update or retract",
        s.corrections,
    );
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: Option<f64>| {
        if let Some(v) = value {
            let g: Gauge<f64, AtomicU64> = Gauge::default();
            g.set(v);
            registry.register_with_unit(name, help, Unit::Seconds, g);
        }
    };
    gauge(
        &mut registry,
        "watermark",
        "The global watermark (event time, seconds since the epoch)",
        s.watermark.map(seconds),
    );
    gauge(
        &mut registry,
        "watermark_lag",
        "Event-time lag: the newest stream time of any partition minus the global watermark",
        s.event_time_lag_ms.map(seconds),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    gauge(
        &mut registry,
        "processing_lag",
        "Processing-time lag: wall clock minus the global watermark (for event times that are wall-clock times)",
        s.processing_lag_ms(now).map(seconds),
    );
    gauge(
        &mut registry,
        "output_watermark",
        "The watermark the outputs are complete to: every window ending at or before it is written (event time, seconds since the epoch)",
        s.output_watermark.map(seconds),
    );
    if let Some(o) = &s.oldest_open_window {
        gauge(
            &mut registry,
            "oldest_open_window_end",
            "The end of the oldest window still open (event time, seconds since the epoch)",
            Some(seconds(o.end)),
        );
        gauge(
            &mut registry,
            "oldest_open_window_behind",
            "How far the watermark still has to go for the oldest open window to close",
            o.behind_ms.map(seconds),
        );
        let keys: Gauge = Gauge::default();
        keys.set(i64::try_from(o.keys).unwrap_or(i64::MAX));
        registry.register(
            "oldest_open_window_keys",
            "How many keys have a window ending with the oldest open one",
            keys,
        );
    }
    let held: Family<PartitionLabel, Gauge> = Family::default();
    if let Some(p) = s.held_by {
        held.get_or_create(&[("partition", p.to_string())]).set(1);
    }
    registry.register(
        "watermark_held_by",
        "1 for the partition that holds the global watermark",
        held,
    );
    let watermark: Family<PartitionLabel, Gauge<f64, AtomicU64>> = Family::default();
    let stream_time: Family<PartitionLabel, Gauge<f64, AtomicU64>> = Family::default();
    let next_offset: Family<PartitionLabel, Gauge> = Family::default();
    let records: Family<PartitionLabel, Counter<u64>> = Family::default();
    let late: Family<PartitionLabel, Counter<u64>> = Family::default();
    let dead: Family<PartitionLabel, Counter<u64>> = Family::default();
    let state: Family<[(&'static str, String); 2], Gauge> = Family::default();
    for p in &s.partitions {
        let label = [("partition", p.partition.to_string())];
        if let Some(w) = p.watermark {
            watermark.get_or_create(&label).set(seconds(w));
        }
        if let Some(t) = p.stream_time {
            stream_time.get_or_create(&label).set(seconds(t));
        }
        next_offset
            .get_or_create(&label)
            .set(i64::try_from(p.next_offset).unwrap_or(i64::MAX));
        records.get_or_create(&label).inc_by(p.records);
        late.get_or_create(&label).inc_by(p.late);
        dead.get_or_create(&label).inc_by(p.dead_letters);
        state
            .get_or_create(&[
                ("partition", p.partition.to_string()),
                ("state", p.state.name().to_owned()),
            ])
            .set(1);
    }
    registry.register_with_unit(
        "partition_watermark",
        "A partition's watermark: its stream time minus the delay",
        Unit::Seconds,
        watermark,
    );
    registry.register_with_unit(
        "partition_stream_time",
        "A partition's stream time: the largest event time read from it",
        Unit::Seconds,
        stream_time,
    );
    registry.register(
        "partition_next_offset",
        "The offset a partition's reader reads next",
        next_offset,
    );
    registry.register(
        "partition_records",
        "Records read from a partition",
        records,
    );
    registry.register(
        "partition_late_dropped",
        "A partition's records dropped as too late",
        late,
    );
    registry.register(
        "partition_dead_letters",
        "A partition's lines or messages that could not be decoded",
        dead,
    );
    registry.register(
        "partition_state",
        "1 for a partition's reader state (reading, caught_up, idle, ended)",
        state,
    );
    let mut out = String::new();
    let _ = encode(&mut out, &registry);
    out
}
