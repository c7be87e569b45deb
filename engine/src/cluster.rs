//! Cluster mode ([`Parallelism::Cluster`](crate::Parallelism::Cluster)):
//! connecting the processes of a job, checking that they run the same job,
//! and noticing when one of them goes away.
//!
//! **Connecting.** As in Timely's own setup, process `i` connects to every
//! process before it and accepts a connection from every process after it.
//! Both ends of each connection first send a *hello*: a protocol tag, the
//! sender's index and the fingerprint of its job ([`fingerprint`]). Every
//! process thus sees every other's fingerprint before any record is read
//! (the handshake goes on past a difference), and refuses to run when one
//! differs, naming the setting and both values, lower process first: with
//! two processes both print the same text, and with more each process
//! names a peer that differs from it. Everything is bounded by the connect
//! timeout: the processes not reached by then are named in the error.
//!
//! **Running.** The connected sockets are handed to Timely's communication
//! threads wrapped in a [`PeerStream`]. Timely panics in those threads when
//! a connection breaks; the wrapper instead records the loss in the
//! [`Link`] and ends the stream the way a peer that shut down cleanly ends
//! it (it only ever hands Timely whole messages, so the made-up end of the
//! stream falls between two messages). Nothing is poisoned, the workers
//! see [`Link::is_lost`], end their outputs at the completed frontier and
//! stop; [`run`](crate::run) returns [`EngineError::PeerLost`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tidemark_sources::Source;
use timely::communication::allocator::zero_copy::initialize::{
    initialize_networking_from_sockets, CommsGuard,
};
use timely::communication::allocator::zero_copy::stream::Stream;
use timely::communication::allocator::ProcessBuilder;
use timely::communication::networking::MessageHeader;
use timely::communication::{AllocatorBuilder, Hooks};

use crate::aggregator::JobAggregator;
use crate::checkpoint::{InputIdentity, JobFingerprint};
use crate::config::{BadRecords, EngineConfig};
use crate::error::{EngineError, Result};

/// The first bytes of a hello.
const MAGIC: &[u8; 16] = b"tidemark-cluster";
/// The version of the hello and of what follows it.
const PROTOCOL: u32 = 1;
/// The largest fingerprint a hello may carry.
const MAX_FINGERPRINT: u32 = 1 << 20;
/// How long a connector waits between attempts.
const RETRY: Duration = Duration::from_millis(100);
/// How long the acceptor sleeps when nobody is connecting.
const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// How long a single connection attempt may take.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How long the other end of a new connection has to send its hello.
const HELLO_WAIT: Duration = Duration::from_secs(5);

/// The settings that must be equal on every process of a cluster, as
/// `(name, value)` pairs in a fixed order.
pub(crate) type Fingerprint = Vec<(String, String)>;

/// The fingerprint of a job in a cluster: what the processes must agree
/// on to run it together (engine version, host list, workers per process,
/// aggregator type, bad records, idle release, start positions and state,
/// checkpointing, a reprocessing start), then what the job is, as a
/// checkpoint's [`JobFingerprint::named`] gives it (window, aggregations,
/// delay, lateness, emit mode, future skew, with checkpoints the caller's
/// named settings, the input and its partition count, under the same
/// names).
pub(crate) fn fingerprint<A: JobAggregator>(
    config: &EngineConfig<A>,
    source: &dyn Source,
    partitions: usize,
    workers: usize,
    hosts: &[String],
) -> Fingerprint {
    let start = if config.start.is_empty() {
        "every partition from offset 0".to_owned()
    } else {
        let all: Vec<String> = config
            .start
            .iter()
            .map(|(p, pos)| match pos.stream_time {
                Some(t) => format!("{p}@{} (stream time {t})", pos.offset),
                None => format!("{p}@{}", pos.offset),
            })
            .collect();
        all.join(", ")
    };
    let bad = match config.bad_records {
        BadRecords::Skip => "skip",
        BadRecords::Fail => "fail",
    };
    let checkpoints = match &config.checkpoint {
        None => "none".to_owned(),
        Some(c) => format!(
            "every {} (keep {}{})",
            c.every,
            c.keep,
            if c.rebuild { ", rebuild" } else { "" }
        ),
    };
    let emit_from = match &config.emit_from {
        None => "the start".to_owned(),
        Some(crate::config::EmitFrom::Time(t)) => format!("stream time {t}"),
        Some(crate::config::EmitFrom::Offsets(o)) => {
            let all: Vec<String> = o.iter().map(|(p, o)| format!("{p}:{o}")).collect();
            format!("offsets {}", all.join(","))
        }
    };
    // What the job is, under the names a checkpoint's fingerprint gives
    // the same settings (the input as this process's source describes it).
    let (input, settings) = match &config.checkpoint {
        Some(c) if !c.input.paths.is_empty() => (c.input.clone(), c.settings.clone()),
        Some(c) => (identity(source, partitions), c.settings.clone()),
        None => (identity(source, partitions), Default::default()),
    };
    let job = JobFingerprint::of(config, input, settings);
    let mut pairs: Vec<(String, String)> = vec![
        (
            "engine version".into(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        ("host list".into(), hosts.join(" ")),
        ("workers per process".into(), workers.to_string()),
    ];
    let run: [(&str, String); 7] = [
        ("aggregator type", std::any::type_name::<A>().to_owned()),
        ("bad records", bad.to_owned()),
        (
            "idle after",
            config
                .idle_after
                .map_or("never".into(), |d| format!("{d:?}")),
        ),
        ("start positions", start),
        (
            "initial state",
            if config.initial_state.is_some() {
                "given"
            } else {
                "none"
            }
            .to_owned(),
        ),
        // Process 0 takes the checkpoints from every worker's cut reports:
        // a process without them, or with another interval, would leave
        // it waiting for reports that never come.
        ("checkpoints", checkpoints),
        ("output from", emit_from),
    ];
    pairs.extend(run.into_iter().map(|(k, v)| (k.to_owned(), v)));
    // (After how the processes run it: a process without checkpoints has
    // none of the named settings a checkpoint fingerprint keeps, and the
    // checkpoint setting is the difference to name then.)
    pairs.extend(job.named());
    pairs
}

/// The input as a source describes it, with partitions named by number.
fn identity(source: &dyn Source, partitions: usize) -> InputIdentity {
    InputIdentity::new(
        vec![source.describe()],
        (0..partitions).map(|p| p.to_string()).collect(),
    )
}

/// How error messages name process `index`.
fn name(hosts: &[String], index: usize) -> String {
    match hosts.get(index) {
        Some(host) => format!("process {index} ({host})"),
        None => format!("process {index}"),
    }
}

/// The first setting on which two processes' fingerprints differ, as an
/// error naming it with both values (lower process first, so that both
/// processes print the same text).
fn compare(
    hosts: &[String],
    (a, fa): (usize, &Fingerprint),
    (b, fb): (usize, &Fingerprint),
) -> Result<()> {
    let ((lo, flo), (hi, fhi)) = if a < b {
        ((a, fa), (b, fb))
    } else {
        ((b, fb), (a, fa))
    };
    let missing = || "(not set)".to_owned();
    let mut names: Vec<&String> = flo.iter().map(|(k, _)| k).collect();
    for (k, _) in fhi {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    for setting in names {
        let get = |f: &Fingerprint| f.iter().find(|(k, _)| k == setting).map(|(_, v)| v.clone());
        let (vlo, vhi) = (get(flo), get(fhi));
        if vlo != vhi {
            return Err(EngineError::Config(format!(
                "the processes of the cluster were started with different jobs: {setting} is \"{}\" on {} but \"{}\" on {}; start every process with the same job",
                vlo.unwrap_or_else(missing),
                name(hosts, lo),
                vhi.unwrap_or_else(missing),
                name(hosts, hi),
            )));
        }
    }
    Ok(())
}

fn hello(me: usize, processes: usize, fingerprint: &Fingerprint) -> Vec<u8> {
    let body = serde_json::to_vec(fingerprint).unwrap_or_default();
    let mut out = Vec::with_capacity(MAGIC.len() + 24 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&PROTOCOL.to_be_bytes());
    out.extend_from_slice(&(me as u64).to_be_bytes());
    out.extend_from_slice(&(processes as u64).to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A peer's hello: its index and fingerprint.
struct Hello {
    index: usize,
    fingerprint: Fingerprint,
}

/// Why a hello could not be read.
enum BadHello {
    /// The connection failed or timed out.
    Io(io::Error),
    /// The other end is not a tidemark process of this protocol version.
    Foreign(String),
}

fn read_hello(stream: &mut TcpStream) -> std::result::Result<Hello, BadHello> {
    let mut head = [0u8; 16 + 4 + 8 + 8 + 4];
    stream.read_exact(&mut head).map_err(BadHello::Io)?;
    if &head[..16] != MAGIC {
        return Err(BadHello::Foreign(
            "it does not speak the tidemark cluster protocol".into(),
        ));
    }
    let u32_at = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let protocol = u32_at(16);
    if protocol != PROTOCOL {
        return Err(BadHello::Foreign(format!(
            "it speaks version {protocol} of the tidemark cluster protocol, this process version {PROTOCOL}"
        )));
    }
    let index = usize::try_from(u64_at(20)).unwrap_or(usize::MAX);
    let len = u32_at(36);
    if len > MAX_FINGERPRINT {
        return Err(BadHello::Foreign("its job description is too long".into()));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).map_err(BadHello::Io)?;
    let fingerprint = serde_json::from_slice(&body)
        .map_err(|_| BadHello::Foreign("its job description is not readable".into()))?;
    Ok(Hello { index, fingerprint })
}

/// What the connecting threads share.
struct Handshake<'a> {
    hosts: &'a [String],
    me: usize,
    hello: Vec<u8>,
    ours: &'a Fingerprint,
    deadline: Instant,
    /// Set on a fatal problem: both threads stop.
    stop: AtomicBool,
    problem: Mutex<Option<EngineError>>,
    /// The peers whose job differs from ours, each with the error naming
    /// the difference. The handshake goes on with the others, so that
    /// every process sees every fingerprint: when they are not all equal,
    /// each process finds a peer that differs from it.
    mismatches: Mutex<Vec<(usize, EngineError)>>,
}

impl Handshake<'_> {
    fn fail(&self, error: EngineError) {
        if let Ok(mut p) = self.problem.lock() {
            p.get_or_insert(error);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// A read timeout for a hello: the rest of the handshake, at most
    /// [`HELLO_WAIT`] (never `None`, which would mean no timeout).
    fn read_timeout(&self) -> Option<Duration> {
        Some(
            self.remaining()
                .unwrap_or(Duration::from_millis(1))
                .min(HELLO_WAIT),
        )
    }

    /// Checks a peer's fingerprint against ours; returns whether they are
    /// equal, recording the difference if not.
    fn check(&self, peer: usize, theirs: &Fingerprint) -> bool {
        match compare(self.hosts, (self.me, self.ours), (peer, theirs)) {
            Ok(()) => true,
            Err(e) => {
                if let Ok(mut m) = self.mismatches.lock() {
                    m.push((peer, e));
                }
                false
            }
        }
    }

    /// Connects to every process before this one, retrying until the
    /// deadline. Returns the connections made and, for the others, the
    /// last failure.
    fn connect_all(&self) -> Vec<std::result::Result<TcpStream, String>> {
        let mut results: Vec<std::result::Result<TcpStream, String>> =
            (0..self.me).map(|_| Err("not tried".to_owned())).collect();
        loop {
            let mut pending = false;
            for (peer, slot) in results.iter_mut().enumerate() {
                if slot.is_ok() || self.stopped() {
                    continue;
                }
                match self.connect_one(peer) {
                    Ok(stream) => *slot = Ok(stream),
                    Err(reason) => {
                        if let Some(reason) = reason {
                            *slot = Err(reason);
                        }
                        pending = true;
                    }
                }
            }
            if !pending || self.stopped() {
                return results;
            }
            match self.remaining() {
                Some(left) => std::thread::sleep(left.min(RETRY)),
                None => return results,
            }
        }
    }

    /// One attempt to connect to `peer`: the connection, or why it failed
    /// (`None` when there was no time left to try).
    fn connect_one(&self, peer: usize) -> std::result::Result<TcpStream, Option<String>> {
        let host = &self.hosts[peer];
        let addrs: Vec<SocketAddr> = host
            .to_socket_addrs()
            .map_err(|e| Some(format!("cannot resolve the address: {e}")))?
            .collect();
        let mut last = addrs
            .is_empty()
            .then(|| "the address resolves to nothing".to_owned());
        for addr in addrs {
            let Some(left) = self.remaining() else {
                break;
            };
            let mut stream = match TcpStream::connect_timeout(&addr, left.min(ATTEMPT)) {
                Ok(s) => s,
                Err(e) => {
                    last = Some(e.to_string());
                    continue;
                }
            };
            let setup = stream
                .set_nodelay(true)
                .and_then(|()| stream.set_read_timeout(self.read_timeout()))
                .and_then(|()| stream.write_all(&self.hello));
            if let Err(e) = setup {
                last = Some(e.to_string());
                continue;
            }
            match read_hello(&mut stream) {
                Ok(h) if h.index == peer => {
                    self.check(peer, &h.fingerprint);
                    return Ok(stream);
                }
                Ok(h) => {
                    if self.check(h.index, &h.fingerprint) {
                        self.fail(EngineError::Cluster(format!(
                            "{host}, the address of process {peer} in the host list, answered as process {}; check the host lists and process indices",
                            h.index
                        )));
                    }
                    return Err(Some("answered as another process".into()));
                }
                Err(BadHello::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    last = Some("connected, but no answer to the hello in time".into())
                }
                Err(BadHello::Io(e)) => last = Some(format!("no answer to the hello: {e}")),
                Err(BadHello::Foreign(why)) => {
                    self.fail(EngineError::Cluster(format!(
                        "{host}, the address of process {peer}, is not a process of this job: {why}"
                    )));
                    return Err(Some(why));
                }
            }
        }
        Err(last)
    }

    /// Accepts a connection from every process after this one until the
    /// deadline.
    fn accept_all(&self, listeners: &[TcpListener]) -> Vec<Option<TcpStream>> {
        let mut results: Vec<Option<TcpStream>> =
            (self.me + 1..self.hosts.len()).map(|_| None).collect();
        while results.iter().any(Option::is_none) && !self.stopped() {
            let mut accepted = false;
            for listener in listeners {
                match listener.accept() {
                    Ok((stream, from)) => {
                        accepted = true;
                        if let Some((peer, stream)) = self.greet(stream, from) {
                            let slot = &mut results[peer - self.me - 1];
                            if slot.is_some() {
                                self.fail(EngineError::Cluster(format!(
                                    "two processes connected as process {peer} (the second from {from}); check the process indices"
                                )));
                            }
                            *slot = Some(stream);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.fail(EngineError::Cluster(format!(
                            "accepting connections on {}: {e}",
                            self.hosts[self.me]
                        )));
                    }
                }
            }
            if !accepted {
                match self.remaining() {
                    Some(left) => std::thread::sleep(left.min(ACCEPT_POLL)),
                    None => break,
                }
            }
        }
        results
    }

    /// Reads an accepted connection's hello, answers it and checks it.
    fn greet(&self, mut stream: TcpStream, from: SocketAddr) -> Option<(usize, TcpStream)> {
        let setup = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_nodelay(true))
            .and_then(|()| stream.set_read_timeout(self.read_timeout()));
        if setup.is_err() {
            return None;
        }
        let hello = match read_hello(&mut stream) {
            Ok(h) => h,
            // A stray connection (a port probe): ignore it.
            Err(BadHello::Io(_)) | Err(BadHello::Foreign(_)) => return None,
        };
        // Answer first, so that the peer sees our fingerprint too and both
        // sides can name a difference.
        if stream.write_all(&self.hello).is_err() {
            return None;
        }
        let same = self.check(hello.index, &hello.fingerprint);
        if hello.index <= self.me || hello.index >= self.hosts.len() {
            if !same {
                // The difference (likely the host list) is what to report.
                return None;
            }
            self.fail(EngineError::Cluster(format!(
                "a process connected from {from} as process {}, but only processes {}..{} connect to {}; check the process indices",
                hello.index,
                self.me + 1,
                self.hosts.len(),
                name(self.hosts, self.me)
            )));
            return None;
        }
        Some((hello.index, stream))
    }
}

/// Connects this process (`me` of `hosts`) to every other and exchanges
/// fingerprints; returns one socket per other process (`None` at `me`).
fn connect(
    hosts: &[String],
    me: usize,
    ours: &Fingerprint,
    timeout: Duration,
) -> Result<Vec<Option<TcpStream>>> {
    let started = Instant::now();
    let listeners = hosts[me]
        .split_whitespace()
        .map(|addr| {
            let listener = TcpListener::bind(addr).map_err(|e| {
                EngineError::Cluster(format!(
                    "cannot listen on {addr} (the address of process {me}): {e}"
                ))
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|e| EngineError::Cluster(format!("cannot listen on {addr}: {e}")))?;
            Ok(listener)
        })
        .collect::<Result<Vec<_>>>()?;
    let handshake = Handshake {
        hosts,
        me,
        hello: hello(me, hosts.len(), ours),
        ours,
        deadline: started + timeout,
        stop: AtomicBool::new(false),
        problem: Mutex::new(None),
        mismatches: Mutex::new(Vec::new()),
    };
    let (before, after) = std::thread::scope(|s| {
        let connecting = s.spawn(|| handshake.connect_all());
        let after = handshake.accept_all(&listeners);
        (connecting.join(), after)
    });
    let mismatch = handshake.mismatches.lock().ok().and_then(|mut m| {
        m.sort_by_key(|(peer, _)| *peer);
        (!m.is_empty()).then(|| m.remove(0).1)
    });
    if let Some(mismatch) = mismatch {
        return Err(mismatch);
    }
    if let Some(problem) = handshake.problem.lock().ok().and_then(|mut p| p.take()) {
        return Err(problem);
    }
    let before = before.map_err(|_| EngineError::Cluster("the connecting thread failed".into()))?;
    let mut missing = Vec::new();
    let mut sockets: Vec<Option<TcpStream>> = Vec::with_capacity(hosts.len());
    for (peer, result) in before.into_iter().enumerate() {
        match result {
            Ok(stream) => sockets.push(Some(stream)),
            Err(reason) => missing.push(format!("{}: {reason}", name(hosts, peer))),
        }
    }
    sockets.push(None);
    for (i, stream) in after.into_iter().enumerate() {
        let peer = me + 1 + i;
        if stream.is_none() {
            missing.push(format!("{}: did not connect", name(hosts, peer)));
        }
        sockets.push(stream);
    }
    if !missing.is_empty() {
        return Err(EngineError::Unreachable {
            peers: missing,
            timeout,
        });
    }
    for stream in sockets.iter().flatten() {
        stream
            .set_read_timeout(None)
            .and_then(|()| stream.set_nonblocking(false))
            .map_err(|e| EngineError::Cluster(format!("setting up a connection: {e}")))?;
    }
    Ok(sockets)
}

/// The state of this process's connections, shared by the communication
/// threads and the workers.
pub(crate) struct Link {
    hosts: Vec<String>,
    lost: AtomicBool,
    loss: Mutex<Option<(usize, String)>>,
}

impl Link {
    fn lose(&self, peer: usize, reason: String) {
        if let Ok(mut loss) = self.loss.lock() {
            loss.get_or_insert((peer, reason));
        }
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Whether a connection to a peer broke.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// The error naming the first peer lost.
    pub(crate) fn error(&self) -> EngineError {
        let (process, reason) = self
            .loss
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or((usize::MAX, "connection lost".into()));
        EngineError::PeerLost {
            process,
            address: self.hosts.get(process).cloned().unwrap_or_default(),
            reason,
        }
    }
}

/// A connection to one peer, as Timely's communication threads use it.
///
/// Reading hands out whole Timely messages only. When the connection
/// breaks before the peer's end-of-stream message, the loss is recorded
/// in the [`Link`] and the stream ends as a clean one would (an
/// end-of-stream header, then end of file), so Timely's receive thread
/// finishes instead of panicking. Writing to a broken connection records
/// the loss and discards the data.
pub(crate) struct PeerStream {
    stream: TcpStream,
    peer: usize,
    link: Arc<Link>,
    incoming: Incoming,
    broken: bool,
}

/// Bytes read from the socket, handed out a whole message at a time.
#[derive(Default)]
struct Incoming {
    buf: Vec<u8>,
    /// The next byte to hand out.
    start: usize,
    /// The end of the whole messages in `buf`.
    ready: usize,
    /// The peer's end-of-stream header was seen.
    closed: bool,
    /// Bytes of a made-up end-of-stream header still to hand out.
    fake: Vec<u8>,
    /// Nothing more: end of file.
    ended: bool,
}

/// How much is read from the socket at a time.
const CHUNK: usize = 1 << 16;

impl PeerStream {
    fn new(stream: TcpStream, peer: usize, link: Arc<Link>) -> Self {
        PeerStream {
            stream,
            peer,
            link,
            incoming: Incoming::default(),
            broken: false,
        }
    }

    /// The connection broke: record it and end the stream cleanly.
    fn broke(&mut self, reason: String) {
        self.link.lose(self.peer, reason);
        let inc = &mut self.incoming;
        inc.buf.clear();
        inc.start = 0;
        inc.ready = 0;
        inc.ended = true;
        inc.fake.clear();
        let header = MessageHeader {
            channel: 0,
            source: 0,
            target_lower: 0,
            target_upper: 0,
            length: 0,
            seqno: 0,
        };
        // Writing into a Vec cannot fail.
        let _ = header.write_to(&mut inc.fake);
        inc.fake.reverse();
    }

    /// Advances `ready` over the whole messages now in the buffer.
    fn frame(&mut self) {
        let inc = &mut self.incoming;
        if inc.closed {
            inc.ready = inc.buf.len();
            return;
        }
        while let Some(header) = MessageHeader::try_read(&inc.buf[inc.ready..]) {
            if header.length == 0 {
                inc.closed = true;
                inc.ready = inc.buf.len();
                return;
            }
            inc.ready += header.required_bytes();
        }
    }
}

impl Read for PeerStream {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let inc = &mut self.incoming;
            if inc.start < inc.ready {
                let n = out.len().min(inc.ready - inc.start);
                out[..n].copy_from_slice(&inc.buf[inc.start..inc.start + n]);
                inc.start += n;
                return Ok(n);
            }
            if !inc.fake.is_empty() {
                let n = out.len().min(inc.fake.len());
                for b in &mut out[..n] {
                    *b = inc.fake.pop().unwrap_or(0);
                }
                return Ok(n);
            }
            if inc.ended {
                return Ok(0);
            }
            inc.buf.drain(..inc.start);
            inc.ready -= inc.start;
            inc.start = 0;
            let old = inc.buf.len();
            inc.buf.resize(old + CHUNK, 0);
            let read = self.stream.read(&mut self.incoming.buf[old..]);
            let inc = &mut self.incoming;
            match read {
                Ok(n) if n > 0 => {
                    inc.buf.truncate(old + n);
                    self.frame();
                }
                Ok(_) => {
                    inc.buf.truncate(old);
                    if inc.closed {
                        inc.ended = true;
                    } else {
                        self.broke("the connection was closed".into());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => inc.buf.truncate(old),
                Err(e) => {
                    inc.buf.truncate(old);
                    if inc.closed {
                        inc.ended = true;
                    } else {
                        self.broke(e.to_string());
                    }
                }
            }
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Ok(data.len());
        }
        match self.stream.write(data) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.broken = true;
                self.link.lose(self.peer, e.to_string());
                Ok(data.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.broken {
            if let Err(e) = self.stream.flush() {
                self.broken = true;
                self.link.lose(self.peer, e.to_string());
            }
        }
        Ok(())
    }
}

impl Stream for PeerStream {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(PeerStream::new(
            self.stream.try_clone()?,
            self.peer,
            Arc::clone(&self.link),
        ))
    }

    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.stream.set_nonblocking(nonblocking)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        // A peer that is gone cannot be told; that is not an error here.
        let _ = self.stream.shutdown(how);
        Ok(())
    }
}

/// This process's part of a running cluster.
pub(crate) struct Network {
    /// The connections' state.
    pub(crate) link: Arc<Link>,
    /// Timely's communication threads.
    comms: CommsGuard,
}

/// How long [`Network::close`] waits for the communication threads after a
/// peer was lost.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

impl Network {
    /// Connects to the other processes, compares fingerprints, and starts
    /// Timely's communication threads: returns the allocators of this
    /// process's `workers` workers.
    pub(crate) fn start(
        hosts: &[String],
        me: usize,
        workers: usize,
        fingerprint: &Fingerprint,
        timeout: Duration,
    ) -> Result<(Network, Vec<AllocatorBuilder>)> {
        let sockets = connect(hosts, me, fingerprint, timeout)?;
        let link = Arc::new(Link {
            hosts: hosts.to_vec(),
            lost: AtomicBool::new(false),
            loss: Mutex::new(None),
        });
        let sockets: Vec<Option<PeerStream>> = sockets
            .into_iter()
            .enumerate()
            .map(|(peer, s)| s.map(|s| PeerStream::new(s, peer, Arc::clone(&link))))
            .collect();
        let hooks = Hooks::default();
        let local =
            ProcessBuilder::new_typed_vector(workers, hooks.refill.clone(), hooks.spill.clone());
        let (builders, comms) =
            initialize_networking_from_sockets(local, sockets, me, workers, hooks)
                .map_err(|e| EngineError::Cluster(format!("starting the connections: {e}")))?;
        let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
        Ok((Network { link, comms }, builders))
    }

    /// Waits for the communication threads to finish once the workers
    /// have: at once after a clean end, at most a few seconds after a peer
    /// was lost (a thread still waiting on a stuck peer is left behind).
    pub(crate) fn close(self) {
        let Network { link, comms } = self;
        let (done, finished) = mpsc::channel::<()>();
        let closer = std::thread::Builder::new()
            .name("tidemark:cluster-close".into())
            .spawn(move || {
                drop(comms);
                let _ = done.send(());
            });
        if closer.is_ok() {
            if link.is_lost() {
                let _ = finished.recv_timeout(CLOSE_WAIT);
            } else {
                let _ = finished.recv();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(channel: usize, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MessageHeader {
            channel,
            source: 1,
            target_lower: 0,
            target_upper: 1,
            length: payload.len(),
            seqno: 0,
        }
        .write_to(&mut out)
        .unwrap();
        out.extend_from_slice(payload);
        out
    }

    /// Timely's end-of-stream header: all fields zero.
    fn end_of_stream() -> Vec<u8> {
        let mut out = Vec::new();
        MessageHeader {
            channel: 0,
            source: 0,
            target_lower: 0,
            target_upper: 0,
            length: 0,
            seqno: 0,
        }
        .write_to(&mut out)
        .unwrap();
        out
    }

    /// A connected pair: what the test writes to `.0` is read through the
    /// `PeerStream` `.1`.
    fn pair() -> (TcpStream, PeerStream, Arc<Link>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = TcpStream::connect(addr).unwrap();
        let (reader, _) = listener.accept().unwrap();
        let link = Arc::new(Link {
            hosts: vec!["here".into(), addr.to_string()],
            lost: AtomicBool::new(false),
            loss: Mutex::new(None),
        });
        let stream = PeerStream::new(reader, 1, Arc::clone(&link));
        (writer, stream, link)
    }

    /// Reads to the end in small pieces, as a slow reader would.
    fn read_all(stream: &mut PeerStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut piece = [0u8; 7];
        loop {
            match stream.read(&mut piece).unwrap() {
                0 => return out,
                n => out.extend_from_slice(&piece[..n]),
            }
        }
    }

    #[test]
    fn a_clean_end_passes_through_and_loses_nothing() {
        let (mut w, mut r, link) = pair();
        let mut sent = message(3, b"hello");
        sent.extend(message(4, &[9; 100_000]));
        sent.extend(end_of_stream());
        w.write_all(&sent).unwrap();
        drop(w);
        assert_eq!(read_all(&mut r), sent);
        assert!(!link.is_lost());
    }

    #[test]
    fn a_broken_connection_ends_between_whole_messages() {
        let (mut w, mut r, link) = pair();
        let whole = [message(3, b"one"), message(5, b"two")].concat();
        let half = message(6, b"three, never finished");
        w.write_all(&whole).unwrap();
        w.write_all(&half[..half.len() - 5]).unwrap();
        drop(w);
        let got = read_all(&mut r);
        // The whole messages, then a made-up end of stream; the half
        // message is dropped.
        assert_eq!(got, [whole, end_of_stream()].concat());
        assert!(link.is_lost());
        match link.error() {
            EngineError::PeerLost {
                process, reason, ..
            } => {
                assert_eq!(process, 1);
                assert!(reason.contains("closed"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_broken_connection_inside_a_header_ends_cleanly_too() {
        let (mut w, mut r, link) = pair();
        let whole = message(3, b"one");
        w.write_all(&whole).unwrap();
        w.write_all(&message(4, b"x")[..10]).unwrap();
        drop(w);
        assert_eq!(read_all(&mut r), [whole, end_of_stream()].concat());
        assert!(link.is_lost());
    }

    #[test]
    fn writing_to_a_gone_peer_is_recorded_not_raised() {
        let (w, r, link) = pair();
        drop(w);
        let mut r = r;
        // The first writes may still be accepted by the kernel; keep
        // writing until the reset shows.
        for _ in 0..1_000 {
            assert_eq!(r.write(&[1; 4096]).unwrap(), 4096);
            r.flush().unwrap();
            if link.is_lost() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(link.is_lost());
        assert_eq!(r.write(b"more").unwrap(), 4);
        r.shutdown(Shutdown::Both).unwrap();
    }

    #[test]
    fn fingerprints_name_the_first_difference_lower_process_first() {
        let hosts = vec!["a:1".to_owned(), "b:2".to_owned()];
        let f = |w: &str| {
            vec![
                ("window".to_owned(), w.to_owned()),
                ("delay".to_owned(), "0ms".to_owned()),
            ]
        };
        assert!(compare(&hosts, (0, &f("x")), (1, &f("x"))).is_ok());
        let one = compare(&hosts, (0, &f("x")), (1, &f("y")))
            .unwrap_err()
            .to_string();
        let other = compare(&hosts, (1, &f("y")), (0, &f("x")))
            .unwrap_err()
            .to_string();
        assert_eq!(one, other);
        assert!(
            one.contains("window is \"x\" on process 0 (a:1) but \"y\" on process 1 (b:2)"),
            "{one}"
        );
        let mut extra = f("x");
        extra.push(("input".into(), "files".into()));
        let m = compare(&hosts, (0, &f("x")), (1, &extra))
            .unwrap_err()
            .to_string();
        assert!(m.contains("input is \"(not set)\" on process 0"), "{m}");
    }
}
