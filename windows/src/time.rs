//! Event time, durations and the saturating arithmetic that keeps them safe.
//!
//! Event times are epoch milliseconds in an `i64`. Every operation that could
//! overflow at the `i64` extremes saturates (watermarks, fire times) or is
//! checked and reported (window bounds, see [`crate::WindowError`]). An
//! optional window end or wake time kept per key fits in 8 bytes
//! (`MaybeTime`).

/// An event time: milliseconds since the Unix epoch.
pub type EventTime = i64;

/// A non-negative span of event time in milliseconds (delays, sizes, gaps).
pub type Millis = i64;

/// A span of time, as every API of the workspace takes one: a whole number
/// of milliseconds (`1_000`) or a [`std::time::Duration`]
/// (`Duration::from_secs(1)`), so that one job reads the same whichever
/// a caller has at hand.
///
/// ```
/// use std::time::Duration;
/// use tidemark_windows::time::IntoMillis;
/// assert_eq!(1_500.into_millis(), 1_500);
/// assert_eq!(Duration::from_millis(1_500).into_millis(), 1_500);
/// assert_eq!(Duration::MAX.into_millis(), i64::MAX);
/// ```
pub trait IntoMillis {
    /// The span in milliseconds (saturating at `i64::MAX`; a negative
    /// number stays negative, for the validation that refuses it).
    fn into_millis(self) -> Millis;
}

macro_rules! into_millis_for_integers {
    ($($t:ty),*) => {$(
        impl IntoMillis for $t {
            fn into_millis(self) -> Millis {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}

into_millis_for_integers!(i32, i64, u32, u64, usize);

impl IntoMillis for std::time::Duration {
    fn into_millis(self) -> Millis {
        i64::try_from(self.as_millis()).unwrap_or(i64::MAX)
    }
}

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

/// The watermark that a frontier has completed: every record with a
/// stream time below `frontier` has been applied, so the largest stream
/// time complete is `frontier − 1`, its watermark `frontier − 1 − delay`,
/// and every window ending at or before that has fired and been written.
/// (A window ending at `frontier − delay` fires at the step `frontier`
/// itself, which is not complete yet.) [`END_OF_TIME`] stays.
///
/// ```
/// use tidemark_windows::time::{completed_watermark, END_OF_TIME};
/// assert_eq!(completed_watermark(1_000, 100), 899);
/// assert_eq!(completed_watermark(END_OF_TIME, 100), END_OF_TIME);
/// ```
pub fn completed_watermark(frontier: EventTime, delay: Millis) -> EventTime {
    if frontier == END_OF_TIME {
        END_OF_TIME
    } else {
        watermark(frontier.saturating_sub(1), delay)
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

/// An optional window end or wake time in 8 bytes instead of the 16 of an
/// `Option<EventTime>` (it is kept per key): `None` is stored as `i64::MIN`,
/// which neither can be, as a window ends after its start and a wake time
/// is a window end plus a non-negative lateness. Serialises as an
/// `Option<EventTime>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MaybeTime(EventTime);

impl MaybeTime {
    /// No time.
    pub(crate) const NONE: MaybeTime = MaybeTime(EventTime::MIN);

    /// The time, if any.
    #[inline]
    pub(crate) fn get(self) -> Option<EventTime> {
        (self.0 != EventTime::MIN).then_some(self.0)
    }

    /// `time`, which must be above `i64::MIN`.
    #[inline]
    pub(crate) fn some(time: EventTime) -> Self {
        debug_assert!(time != EventTime::MIN, "i64::MIN is no window end");
        MaybeTime(time)
    }
}

impl From<Option<EventTime>> for MaybeTime {
    #[inline]
    fn from(time: Option<EventTime>) -> Self {
        time.map_or(MaybeTime::NONE, MaybeTime::some)
    }
}

impl serde::Serialize for MaybeTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for MaybeTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Option::<EventTime>::deserialize(d)? {
            Some(EventTime::MIN) => Err(serde::de::Error::custom(
                "i64::MIN cannot be a window end or wake time",
            )),
            time => Ok(MaybeTime(time.unwrap_or(EventTime::MIN))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maybe_time_is_an_option_in_eight_bytes() {
        assert_eq!(std::mem::size_of::<MaybeTime>(), 8);
        for t in [None, Some(EventTime::MIN + 1), Some(0), Some(END_OF_TIME)] {
            let m = MaybeTime::from(t);
            assert_eq!(m.get(), t);
            // Snapshots keep the wire form of an Option<EventTime>.
            let bytes = postcard::to_allocvec(&m).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&t).unwrap());
            assert_eq!(postcard::from_bytes::<MaybeTime>(&bytes).unwrap(), m);
        }
        let bad = postcard::to_allocvec(&Some(EventTime::MIN)).unwrap();
        assert!(postcard::from_bytes::<MaybeTime>(&bad).is_err());
    }
}
