//! Stream time: the largest event time a partition has shown so far, the
//! one quantity its watermark is derived from.
//!
//! There is one kind of watermark, bounded out-of-orderness: a partition's
//! watermark is its stream time − `D` ([`crate::time::watermark`]), with `D`
//! the policy's delay ([`crate::Policy::delay`]). Because the engine applies
//! records in stream-time order, the global watermark is the frontier − `D`
//! and lateness is a function of the log alone; a watermark computed any
//! other way would not fit that model, so none can be plugged in.

use crate::time::EventTime;

/// Tracks a partition's stream time: the largest event time so far.
///
/// ```
/// use tidemark_windows::time::watermark;
/// use tidemark_windows::watermark::StreamTime;
/// let mut s = StreamTime::new();
/// assert_eq!(s.observe(1_000), 1_000);
/// assert_eq!(s.observe(950), 1_000); // out of order: stream time holds
/// assert_eq!(watermark(s.observe(1_200), 100), 1_100); // delay 100 ms
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTime(Option<EventTime>);

impl StreamTime {
    /// A partition with no records yet.
    pub fn new() -> Self {
        StreamTime(None)
    }

    /// Resumes at a known stream time.
    pub fn at(time: EventTime) -> Self {
        StreamTime(Some(time))
    }

    /// Observes one event time and returns the stream time after it.
    #[inline]
    pub fn observe(&mut self, time: EventTime) -> EventTime {
        let s = self.0.map_or(time, |s| s.max(time));
        self.0 = Some(s);
        s
    }

    /// The stream time so far (`None` before the first record).
    pub fn get(&self) -> Option<EventTime> {
        self.0
    }
}
