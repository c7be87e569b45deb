//! Watermark generators: a partition's watermark as a function of that
//! partition's own records.

use crate::time::{watermark, EventTime, Millis, END_OF_TIME};

/// Derives a partition's watermark from that partition's own records.
///
/// The returned watermark must never decrease: the engine relies on it to
/// hold its progress capabilities, and a decreasing watermark would make
/// lateness depend on timing.
pub trait WatermarkGenerator {
    /// Observes one record's event time and returns the partition watermark
    /// after it.
    fn on_event(&mut self, time: EventTime) -> EventTime;
    /// The watermark once the partition has ended: +∞.
    fn on_end(&mut self) -> EventTime {
        END_OF_TIME
    }
}

/// Tracks a partition's stream time: the largest event time so far.
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

/// Bounded out-of-orderness: watermark = stream time − `delay`
/// (`delay = 0` is the monotonic watermark).
///
/// ```
/// use tidemark_windows::watermark::{Bounded, WatermarkGenerator};
/// let mut g = Bounded::new(100);
/// assert_eq!(g.on_event(1_000), 900);
/// assert_eq!(g.on_event(950), 900); // out of order: the watermark holds
/// assert_eq!(g.on_event(1_200), 1_100);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounded {
    delay: Millis,
    stream_time: StreamTime,
}

impl Bounded {
    /// A generator with delay `delay` ms.
    pub fn new(delay: Millis) -> Self {
        Bounded {
            delay,
            stream_time: StreamTime::new(),
        }
    }
}

impl WatermarkGenerator for Bounded {
    fn on_event(&mut self, time: EventTime) -> EventTime {
        watermark(self.stream_time.observe(time), self.delay)
    }
}
