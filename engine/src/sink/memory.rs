//! Sinks for application code: a closure ([`Callback`]), a shared vector
//! ([`Collect`]), a channel whose [`Receiver`] iterates over the items
//! ([`channel`]), and [`Discard`].

use std::io;
use std::sync::{mpsc, Arc, Mutex};

use super::{Frontier, Sink};

/// A sink that calls a closure for every item (and, if given, another at
/// every commit).
pub struct Callback<F, C = fn(Frontier)> {
    on_item: F,
    on_commit: Option<C>,
}

impl<F> Callback<F> {
    /// Calls `on_item` for every item, in canonical order.
    pub fn new(on_item: F) -> Self {
        Callback {
            on_item,
            on_commit: None,
        }
    }
}

impl<F, C> Callback<F, C> {
    /// Also calls `on_commit` at every commit.
    pub fn on_commit<C2>(self, on_commit: C2) -> Callback<F, C2> {
        Callback {
            on_item: self.on_item,
            on_commit: Some(on_commit),
        }
    }
}

impl<T, F, C> Sink<T> for Callback<F, C>
where
    F: FnMut(&T) + Send,
    C: FnMut(Frontier) + Send,
{
    fn write(&mut self, item: &T) -> io::Result<()> {
        (self.on_item)(item);
        Ok(())
    }

    fn commit(&mut self, frontier: Frontier) -> io::Result<()> {
        if let Some(c) = self.on_commit.as_mut() {
            c(frontier);
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "(callback)".into()
    }
}

/// A sink that appends every item to a shared vector.
///
/// ```
/// use tidemark_engine::{Collect, Sink};
/// let (sink, items) = Collect::new();
/// let mut sink: Box<dyn Sink<u32>> = Box::new(sink);
/// sink.write(&7).unwrap();
/// assert_eq!(*items.lock().unwrap(), vec![7]);
/// ```
pub struct Collect<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Collect<T> {
    /// A new sink and the handle to read what it collected.
    pub fn new() -> (Self, Arc<Mutex<Vec<T>>>) {
        let items = Arc::new(Mutex::new(Vec::new()));
        (
            Collect {
                items: Arc::clone(&items),
            },
            items,
        )
    }
}

impl<T: Clone + Send> Sink<T> for Collect<T> {
    fn write(&mut self, item: &T) -> io::Result<()> {
        self.items
            .lock()
            .map_err(|_| io::Error::other("collected items poisoned"))?
            .push(item.clone());
        Ok(())
    }

    fn describe(&self) -> String {
        "(vector)".into()
    }
}

/// A sink that drops everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl<T> Sink<T> for Discard {
    fn write(&mut self, _item: &T) -> io::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        "(discarded)".into()
    }
}

/// The sending half of [`channel`].
pub struct Sender<T> {
    tx: mpsc::SyncSender<T>,
}

/// The receiving half of [`channel`]: an iterator over the items, in
/// canonical order, that ends when the job has ended.
pub struct Receiver<T> {
    rx: mpsc::Receiver<T>,
}

impl<T> Iterator for Receiver<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Receiver<T> {
    /// The next item if one is waiting, without blocking.
    pub fn try_next(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// A sink that sends every item over a channel of `capacity` items, and
/// the receiver to iterate over them (from another thread, while the job
/// runs). A full channel makes the job wait (back-pressure); a dropped
/// receiver stops the job with an error.
///
/// ```
/// use tidemark_engine::{channel, Sink};
/// let (mut sink, rows) = channel::<u32>(16);
/// sink.write(&1).unwrap();
/// sink.write(&2).unwrap();
/// drop(sink);
/// assert_eq!(rows.collect::<Vec<_>>(), vec![1, 2]);
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    (Sender { tx }, Receiver { rx })
}

impl<T: Clone + Send> Sink<T> for Sender<T> {
    fn write(&mut self, item: &T) -> io::Result<()> {
        self.tx
            .send(item.clone())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the receiver was dropped"))
    }

    fn describe(&self) -> String {
        "(channel)".into()
    }
}
