//! Connecting the processes of a cluster: every process connects to those
//! before it and accepts those after it, exchanging and checking hellos,
//! all within the connect timeout.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::hello::{compare, hello, name, read_hello, BadHello, Fingerprint};
use crate::error::{EngineError, Result};

/// How long a connector waits between attempts.
const RETRY: Duration = Duration::from_millis(100);
/// How long the acceptor sleeps when nobody is connecting.
const ACCEPT_POLL: Duration = Duration::from_millis(10);
/// How long a single connection attempt may take.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How long the other end of a new connection has to send its hello.
const HELLO_WAIT: Duration = Duration::from_secs(5);

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
pub(super) fn connect(
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
