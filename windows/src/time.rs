//! Event time, durations and the saturating arithmetic that keeps them safe.
//!
//! Event times are epoch milliseconds in an `i64`. Every operation that could
//! overflow at the `i64` extremes saturates (watermarks, fire times) or is
//! checked and reported (window bounds, see [`crate::WindowError`]).

/// An event time: milliseconds since the Unix epoch.
pub type EventTime = i64;

/// A non-negative span of event time in milliseconds (delays, sizes, gaps).
pub type Millis = i64;

/// The watermark of a partition whose input has ended: larger than every
/// window end, so every window fires.
pub const END_OF_TIME: EventTime = EventTime::MAX;

/// The watermark derived from a stream time with a bounded delay `delay`:
/// `stream_time - delay`, saturating at the `i64` extremes.
///
/// ```
/// use tidemark_windows::time::watermark;
/// assert_eq!(watermark(1_000, 100), 900);
/// assert_eq!(watermark(i64::MIN, 100), i64::MIN);
/// ```
pub fn watermark(stream_time: EventTime, delay: Millis) -> EventTime {
    if stream_time == END_OF_TIME {
        END_OF_TIME
    } else {
        stream_time.saturating_sub(delay)
    }
}

/// The smallest frontier (stream time) at which a window ending at `end`
/// fires under delay `delay`: `end + delay`, saturating.
pub fn fire_time(end: EventTime, delay: Millis) -> EventTime {
    end.saturating_add(delay)
}

/// Greatest common divisor of two positive numbers.
pub(crate) fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a.abs()
}
