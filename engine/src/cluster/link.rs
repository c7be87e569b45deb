//! The connections of a running cluster: [`Link`] records the loss of a
//! peer, and [`PeerStream`] hands Timely whole messages and turns a broken
//! connection into a clean end of stream.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use timely::communication::allocator::zero_copy::stream::Stream;
use timely::communication::networking::MessageHeader;

use crate::error::EngineError;

/// The state of this process's connections, shared by the communication
/// threads and the workers.
pub(crate) struct Link {
    pub(super) hosts: Vec<String>,
    pub(super) lost: AtomicBool,
    pub(super) loss: Mutex<Option<(usize, String)>>,
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
    pub(super) fn new(stream: TcpStream, peer: usize, link: Arc<Link>) -> Self {
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
