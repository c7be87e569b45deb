//! `--metrics-addr`: the running job's stats ([`Stats::snapshot`]) in the
//! Prometheus text exposition format, served over HTTP at `/metrics`.
//!
//! The endpoint is one a scraper reaches, and so is any other client: it
//! must never hurt the job or blind the scrapes. So a request's head is
//! read up to [`MAX_HEAD`] bytes (more is refused, `431`), within
//! [`DEADLINE`] of its connection's arrival (then it is closed), by a
//! fixed pool of [`HANDLERS`] threads; connections beyond what the pool
//! and a short queue hold are answered `503` at once and closed. A body is
//! never read. Whatever clients do, the endpoint holds at most
//! `HANDLERS + 1` threads and `(HANDLERS + QUEUE) × MAX_HEAD` bytes of
//! requests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tidemark::engine::{Stats, StatsSnapshot};

/// The most bytes of a request's head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a connection may take to send its request's head and read
/// the answer, from its arrival.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// Threads answering requests.
pub const HANDLERS: usize = 4;
/// Connections waiting for a handler; more are answered `503` at once.
const QUEUE: usize = 16;

/// A metrics endpoint serving while the job runs; stops when dropped.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The address it listens on (the port chosen when 0 was asked).
    pub addr: String,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Listens on `addr` (`127.0.0.1:9464`, port 0 for any) and answers
/// scrapes of `/metrics` from `stats`.
pub fn serve(addr: &str, stats: Arc<Stats>) -> anyhow::Result<MetricsServer> {
    STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    });
    let listener = TcpListener::bind(addr).map_err(|e| {
        let hint = if addr.parse::<u16>().is_ok() {
            format!(" (give a host too, e.g. 127.0.0.1:{addr})")
        } else {
            String::new()
        };
        anyhow::anyhow!("--metrics-addr {addr}: could not listen: {e}{hint}")
    })?;
    listener.set_nonblocking(true)?;
    let bound = listener
        .local_addr()
        .map_or_else(|_| addr.to_owned(), |a| a.to_string());
    let stop = Arc::new(AtomicBool::new(false));
    let (queue, waiting) = sync_channel::<(TcpStream, Instant)>(QUEUE);
    let waiting = Arc::new(Mutex::new(waiting));
    let mut threads = Vec::with_capacity(HANDLERS + 1);
    for _ in 0..HANDLERS {
        let waiting = Arc::clone(&waiting);
        let stats = Arc::clone(&stats);
        threads.push(std::thread::spawn(move || handle_queue(&waiting, &stats)));
    }
    let flag = Arc::clone(&stop);
    threads.push(std::thread::spawn(move || accept(&listener, &flag, queue)));
    Ok(MetricsServer {
        stop,
        threads,
        addr: bound,
    })
}

/// Accepts connections until `stop`, handing each to the pool or, when
/// the queue is full, answering `503` and closing it. Dropping `queue` at
/// the end ends the handlers.
fn accept(listener: &TcpListener, stop: &AtomicBool, queue: SyncSender<(TcpStream, Instant)>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(TrySendError::Full((mut stream, _))) =
                    queue.try_send((stream, Instant::now()))
                {
                    let _ = stream.set_nonblocking(true);
                    let _ = stream.write_all(&response(503, "text/plain", "busy: try again\n"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A handler of the pool: answers queued connections until the queue is
/// gone.
fn handle_queue(waiting: &Mutex<Receiver<(TcpStream, Instant)>>, stats: &Stats) {
    loop {
        let next = match waiting.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((stream, arrived)) = next else { return };
        let _ = answer(stream, arrived + DEADLINE, stats);
    }
}

/// Reads one request's head (within `deadline` and [`MAX_HEAD`]) and
/// answers it; the connection is closed after.
fn answer(mut stream: TcpStream, deadline: Instant, stats: &Stats) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_HEAD {
            break false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e),
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    stream.set_write_timeout(Some(left.max(Duration::from_millis(100))))?;
    if !complete {
        return stream.write_all(&response(431, "text/plain", "request head too large\n"));
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let reply = match method {
        "GET" | "HEAD" if target == "/metrics" || target.starts_with("/metrics?") => {
            let body = render(&stats.snapshot());
            let mut r = response(
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                &body,
            );
            if method == "HEAD" {
                r.truncate(r.len() - body.len());
            }
            r
        }
        "GET" | "HEAD" => response(404, "text/plain", "the metrics are at /metrics\n"),
        _ => response(405, "text/plain", "only GET /metrics\n"),
    };
    stream.write_all(&reply)?;
    stream.flush()
}

/// An HTTP/1.1 response that closes the connection.
fn response(status: u16, content_type: &str, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let mut r = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body.as_bytes());
    r
}

type PartitionLabel = [(&'static str, String); 1];

/// When this process started (wall clock), for `process_start_time_seconds`.
static STARTED: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

/// The process's own figures under the names Prometheus client libraries
/// give them (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// …), read from `/proc/self` where there is one.
fn process_metrics(registry: &mut Registry) {
    let process = registry.sub_registry_with_prefix("process");
    let f64_gauge = |registry: &mut Registry, name: &str, help: &str, unit: Unit, v: f64| {
        let g: Gauge<f64, AtomicU64> = Gauge::default();
        g.set(v);
        registry.register_with_unit(name, help, unit, g);
    };
    if let Ok(t) = cpu_time::ProcessTime::try_now() {
        let c: Counter<f64, AtomicU64> = Counter::default();
        c.inc_by(t.as_duration().as_secs_f64());
        process.register_with_unit("cpu", "User and system CPU time spent", Unit::Seconds, c);
    }
    if let Some(&started) = STARTED.get() {
        f64_gauge(
            process,
            "start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            started,
        );
    }
    // statm: sizes in pages.
    let page = 4096.0;
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut fields = statm.split_whitespace().map(|f| f.parse::<f64>().ok());
        if let (Some(Some(size)), Some(Some(resident))) = (fields.next(), fields.next()) {
            f64_gauge(
                process,
                "virtual_memory",
                "Virtual memory size",
                Unit::Bytes,
                size * page,
            );
            f64_gauge(
                process,
                "resident_memory",
                "Resident memory size",
                Unit::Bytes,
                resident * page,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        let open: Gauge = Gauge::default();
        open.set(fds.count() as i64);
        process.register("open_fds", "Open file descriptors", open);
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(n) = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            let threads: Gauge = Gauge::default();
            threads.set(n);
            process.register("threads", "OS threads", threads);
        }
    }
}

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
    counter(
        &mut registry,
        "checkpoints",
        "Checkpoints written by this run",
        s.checkpoints,
    );
    if let Some(c) = &s.last_checkpoint {
        gauge(
            &mut registry,
            "last_checkpoint_timestamp",
            "When the newest checkpoint was written (wall clock, seconds since the epoch)",
            Some(c.at_unix_ms as f64 / 1e3),
        );
        gauge(
            &mut registry,
            "last_checkpoint_age",
            "How long ago the newest checkpoint was written",
            Some((now as f64 - c.at_unix_ms as f64).max(0.0) / 1e3),
        );
        gauge(
            &mut registry,
            "last_checkpoint_duration",
            "How long taking the newest checkpoint took",
            Some(c.nanos as f64 / 1e9),
        );
        let bytes: Gauge = Gauge::default();
        bytes.set(i64::try_from(c.state_bytes).unwrap_or(i64::MAX));
        registry.register_with_unit(
            "last_checkpoint_state",
            "The window state the newest checkpoint holds",
            Unit::Bytes,
            bytes,
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
    table_metrics(&mut registry, s);
    let mut out = String::new();
    let _ = encode(&mut out, &registry);
    // The process's figures go under their standard names, without the
    // job's prefix: one exposition, one `# EOF` at its end.
    let mut process = Registry::default();
    process_metrics(&mut process);
    let mut tail = String::new();
    let _ = encode(&mut tail, &process);
    if let Some(body) = out.strip_suffix("# EOF\n") {
        out.truncate(body.len());
    }
    out.push_str(&tail);
    out
}

/// Each table's counts, size and watermark, labelled by its name.
fn table_metrics(registry: &mut Registry, s: &StatsSnapshot) {
    if s.tables.is_empty() {
        return;
    }
    type TableLabel = [(&'static str, String); 1];
    let counter = |registry: &mut Registry,
                   name: &str,
                   help: &str,
                   value: fn(&tidemark::engine::table::TableSnapshot) -> u64| {
        let family: Family<TableLabel, Counter<u64>> = Family::default();
        for t in &s.tables {
            family
                .get_or_create(&[("table", t.name.clone())])
                .inc_by(value(t));
        }
        registry.register(name, help, family);
    };
    counter(
        registry,
        "table_records",
        "Records read from a table's input",
        |t| t.records,
    );
    counter(
        registry,
        "table_too_late",
        "Table updates too late for their table (on the late output)",
        |t| t.too_late,
    );
    counter(
        registry,
        "table_lookups",
        "Stream records looked up in a table",
        |t| t.lookups,
    );
    counter(
        registry,
        "table_no_row",
        "Stream records an inner join found no version for (on the late output)",
        |t| t.no_row,
    );
    counter(
        registry,
        "table_older_than_history",
        "Stream records older than a table's history (on the late output)",
        |t| t.older_than_history,
    );
    let gauge = |registry: &mut Registry,
                 name: &str,
                 help: &str,
                 value: fn(&tidemark::engine::table::TableSnapshot) -> u64| {
        let family: Family<TableLabel, Gauge> = Family::default();
        for t in &s.tables {
            family
                .get_or_create(&[("table", t.name.clone())])
                .set(i64::try_from(value(t)).unwrap_or(i64::MAX));
        }
        registry.register(name, help, family);
    };
    gauge(registry, "table_keys", "Keys a table holds", |t| t.keys);
    gauge(registry, "table_versions", "Versions a table holds", |t| {
        t.versions
    });
    gauge(
        registry,
        "table_peak_versions",
        "The most versions one key of a table held",
        |t| t.peak_versions,
    );
    let watermark: Family<TableLabel, Gauge<f64, AtomicU64>> = Family::default();
    for t in &s.tables {
        if let Some(w) = t.watermark {
            watermark
                .get_or_create(&[("table", t.name.clone())])
                .set(seconds(w));
        }
    }
    registry.register_with_unit(
        "table_watermark",
        "A versioned table's watermark: its stream time minus its delay",
        Unit::Seconds,
        watermark,
    );
    let held: Family<TableLabel, Gauge> = Family::default();
    if let Some(t) = &s.held_by_table {
        held.get_or_create(&[("table", t.clone())]).set(1);
    }
    registry.register(
        "watermark_held_by_table",
        "1 for the table that holds the global watermark back",
        held,
    );
}
