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

mod handshake;
mod hello;
mod link;
#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use timely::communication::allocator::zero_copy::initialize::{
    initialize_networking_from_sockets, CommsGuard,
};
use timely::communication::allocator::ProcessBuilder;
use timely::communication::{AllocatorBuilder, Hooks};

use crate::error::{EngineError, Result};
use handshake::connect;
pub(crate) use hello::{fingerprint, Fingerprint};
pub(crate) use link::{Link, PeerStream};

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
