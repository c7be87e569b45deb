//! Window specifications and assigners: which windows contain an event time.
//!
//! ```text
//! event time  ──0────────1000──────2000──────3000──▶
//! tumbling(1000)   [0,1000) [1000,2000) [2000,3000)
//! sliding(2000/1000)
//!                 [-1000,1000)
//!                      [0,2000)
//!                          [1000,3000)
//! session(gap)     •  •   •      •        records; a session is [first, last + gap)
//! ```

use serde::{Deserialize, Serialize};

use crate::time::{gcd, EventTime, IntoMillis, Millis};
use crate::window::Window;

/// Why a window specification or a window is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A size, slide or gap that is zero or negative.
    #[error("{what} must be greater than 0 (got {value} ms)")]
    NotPositive {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: Millis,
    },
    /// A delay or allowed lateness that is negative.
    #[error("{what} must not be negative (got {value} ms)")]
    Negative {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: Millis,
    },
    /// A sliding window whose size is so many slides that every record
    /// would belong to more than [`MAX_WINDOWS_PER_RECORD`] windows.
    #[error("a sliding window of {size} ms every {slide} ms puts each record in more than {max} windows", max = MAX_WINDOWS_PER_RECORD)]
    TooManyWindows {
        /// Window length.
        size: Millis,
        /// Distance between window starts.
        slide: Millis,
    },
    /// A size, slide, gap, delay or lateness longer than [`MAX_SPAN`]: no
    /// event time could ever complete such a window (and its bounds would
    /// overflow).
    #[error("{what} of {value} ms is longer than the {max} ms (about 285 000 years) event times can span", max = MAX_SPAN)]
    TooLong {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: Millis,
    },
    /// A snapshot whose window state does not belong to its window spec.
    #[error("the snapshot's window state does not match its window spec")]
    SnapshotMismatch,
    /// Two states of the same spec and policy cannot be merged
    /// ([`WindowState::absorb`](crate::WindowState::absorb)): they are at
    /// different frontiers, or both hold a key. The text says which.
    #[error("the window states cannot be merged: {0}")]
    Absorb(String),
    /// A window around `time` would start or end outside the `i64` range.
    #[error("no window can be formed around event time {time}: its bounds overflow the i64 range")]
    Unrepresentable {
        /// The event time.
        time: EventTime,
    },
}

/// The longest size, slide, gap, delay or allowed lateness: 2^53 ms, the
/// span of the event times a source accepts (±2^53 ms).
pub const MAX_SPAN: Millis = 1 << 53;

/// The largest `size / slide` a sliding window may have: a late record
/// costs time in proportion to the windows it belongs to.
pub const MAX_WINDOWS_PER_RECORD: i64 = 100_000;

/// The window kind of a job, as written in a job file.
///
/// Windows are aligned to the epoch (plus `offset`), as in Flink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowSpec {
    /// Back-to-back windows of `size` ms starting at `offset + n * size`.
    Tumbling {
        /// Window length.
        size: Millis,
        /// Alignment shift.
        #[serde(default)]
        offset: Millis,
    },
    /// Windows of `size` ms starting every `slide` ms (at `offset + n * slide`).
    /// A slide larger than the size leaves gaps, as in Flink.
    Sliding {
        /// Window length.
        size: Millis,
        /// Distance between window starts.
        slide: Millis,
        /// Alignment shift.
        #[serde(default)]
        offset: Millis,
    },
    /// Per-key sessions: records at most `gap` apart share a session
    /// `[first, last + gap)`.
    Session {
        /// Inactivity gap.
        gap: Millis,
    },
}

impl WindowSpec {
    /// Tumbling windows of `size` (ms, or a `Duration`) aligned to the
    /// epoch.
    pub fn tumbling(size: impl IntoMillis) -> Self {
        WindowSpec::Tumbling {
            size: size.into_millis(),
            offset: 0,
        }
    }

    /// Sliding windows of `size` every `slide` (ms, or `Duration`s)
    /// aligned to the epoch.
    pub fn sliding(size: impl IntoMillis, slide: impl IntoMillis) -> Self {
        WindowSpec::Sliding {
            size: size.into_millis(),
            slide: slide.into_millis(),
            offset: 0,
        }
    }

    /// Sessions with inactivity gap `gap` (ms, or a `Duration`).
    pub fn session(gap: impl IntoMillis) -> Self {
        WindowSpec::Session {
            gap: gap.into_millis(),
        }
    }

    /// Checks that sizes, slides and gaps are positive.
    pub fn validate(&self) -> Result<(), WindowError> {
        let positive = |what, value: Millis| {
            if value <= 0 {
                Err(WindowError::NotPositive { what, value })
            } else if value > MAX_SPAN {
                Err(WindowError::TooLong { what, value })
            } else {
                Ok(())
            }
        };
        match *self {
            WindowSpec::Tumbling { size, .. } => positive("window size", size),
            WindowSpec::Sliding { size, slide, .. } => {
                positive("window size", size)?;
                positive("window slide", slide)?;
                if size / slide > MAX_WINDOWS_PER_RECORD {
                    return Err(WindowError::TooManyWindows { size, slide });
                }
                Ok(())
            }
            WindowSpec::Session { gap } => positive("session gap", gap),
        }
    }

    /// The fixed-window assigner of this spec (`None` for sessions).
    pub fn fixed(&self) -> Result<Option<Sliding>, WindowError> {
        self.validate()?;
        Ok(match *self {
            WindowSpec::Tumbling { size, offset } => Some(Sliding::try_new(size, size, offset)?),
            WindowSpec::Sliding {
                size,
                slide,
                offset,
            } => Some(Sliding::try_new(size, slide, offset)?),
            WindowSpec::Session { .. } => None,
        })
    }
}

impl std::fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WindowSpec::Tumbling { size, offset: 0 } => write!(f, "tumbling {size}ms"),
            WindowSpec::Tumbling { size, offset } => {
                write!(f, "tumbling {size}ms offset {offset}ms")
            }
            WindowSpec::Sliding {
                size,
                slide,
                offset: 0,
            } => write!(f, "sliding {size}ms every {slide}ms"),
            WindowSpec::Sliding {
                size,
                slide,
                offset,
            } => write!(f, "sliding {size}ms every {slide}ms offset {offset}ms"),
            WindowSpec::Session { gap } => write!(f, "session gap {gap}ms"),
        }
    }
}

/// Tumbling windows: `[offset + n*size, offset + (n+1)*size)`.
///
/// ```
/// use tidemark_windows::{Tumbling, Window};
/// let mut out = Vec::new();
/// Tumbling::try_new(1000, 0).unwrap().assign(1500, &mut out).unwrap();
/// assert_eq!(out, vec![Window::new(1000, 2000)]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tumbling(Sliding);

impl Tumbling {
    /// Validates and builds the assigner.
    pub fn try_new(size: Millis, offset: Millis) -> Result<Self, WindowError> {
        Ok(Tumbling(Sliding::try_new(size, size, offset)?))
    }
}

impl Tumbling {
    /// Pushes the window that contains `time` onto `out`, as
    /// [`Sliding::assign`].
    pub fn assign(&self, time: EventTime, out: &mut Vec<Window>) -> Result<(), WindowError> {
        self.0.assign(time, out)
    }
}

/// Sliding windows of `size` starting every `slide`, and the slices (panes)
/// they share.
///
/// Every window is a union of consecutive panes of length
/// `gcd(size, slide)`, so a record updates one pane whatever `size / slide`
/// is, and a window's value is the merge of its panes when it fires. The
/// window state works on panes ([`Sliding::pane_bounds`]) and never lists a
/// record's windows; [`Sliding::assign`] lists them, for tests and tools.
///
/// ```
/// use tidemark_windows::{Sliding, Window};
/// let mut out = Vec::new();
/// Sliding::try_new(2000, 1000, 0).unwrap().assign(1500, &mut out).unwrap();
/// assert_eq!(out, vec![Window::new(0, 2000), Window::new(1000, 3000)]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sliding {
    size: Millis,
    slide: Millis,
    /// Normalised into `[0, slide)`.
    offset: Millis,
    pane: Millis,
}

impl Sliding {
    /// Validates and builds the assigner.
    pub fn try_new(size: Millis, slide: Millis, offset: Millis) -> Result<Self, WindowError> {
        WindowSpec::Sliding {
            size,
            slide,
            offset,
        }
        .validate()?;
        Ok(Sliding {
            size,
            slide,
            offset: offset.rem_euclid(slide),
            pane: gcd(size, slide),
        })
    }

    /// Window length.
    pub fn size(&self) -> Millis {
        self.size
    }

    /// Distance between window starts.
    pub fn slide(&self) -> Millis {
        self.slide
    }

    /// Pane (slice) length: `gcd(size, slide)`.
    pub fn pane(&self) -> Millis {
        self.pane
    }

    /// The start of the latest window that starts at or before `time`.
    fn last_start(&self, time: EventTime) -> Option<EventTime> {
        let shifted = time.checked_sub(self.offset)?;
        time.checked_sub(shifted.rem_euclid(self.slide))
    }

    /// The start of the pane containing `time`.
    pub fn pane_start(&self, time: EventTime) -> Option<EventTime> {
        let shifted = time.checked_sub(self.offset)?;
        time.checked_sub(shifted.rem_euclid(self.pane))
    }

    /// The end of the last window that contains the pane starting at
    /// `pane_start`: after the watermark passes it (plus allowed lateness)
    /// the pane is no longer needed.
    pub fn last_end_of_pane(&self, pane_start: EventTime) -> Option<EventTime> {
        self.last_start(pane_start)?.checked_add(self.size)
    }

    /// The end of the first (earliest) window that contains the pane starting
    /// at `pane_start`; `None` if no window contains it (a gap between
    /// windows when the slide exceeds the size) or it is not representable.
    pub fn first_end_of_pane(&self, pane_start: EventTime) -> Option<EventTime> {
        let (ps, size, slide) = (pane_start as i128, self.size as i128, self.slide as i128);
        let lowest = ps - size + 1;
        let first_start = lowest + (self.offset as i128 - lowest).rem_euclid(slide);
        if first_start > ps {
            return None;
        }
        i64::try_from(first_start + size).ok()
    }

    /// For an event time: its pane start and the ends of the first and last
    /// windows that contain it (`Ok(None)` if it lies between windows).
    ///
    /// This is the per-record path of the window state: plain `i64`
    /// arithmetic when nothing can overflow, checked otherwise.
    #[inline]
    pub fn pane_bounds(
        &self,
        time: EventTime,
    ) -> Result<Option<(EventTime, EventTime, EventTime)>, WindowError> {
        const SAFE_TIME: i64 = 1 << 61;
        const SAFE_SPAN: i64 = 1 << 59;
        let safe = (-SAFE_TIME..=SAFE_TIME).contains(&time)
            && self.size <= SAFE_SPAN
            && self.slide <= SAFE_SPAN;
        if !safe {
            // Near the extremes: the same arithmetic in i128, and an error
            // when a window containing `time` cannot be represented.
            let (t, size, slide) = (time as i128, self.size as i128, self.slide as i128);
            let (offset, pane) = (self.offset as i128, self.pane as i128);
            let ps = t - (t - offset).rem_euclid(pane);
            let lowest = ps - size + 1;
            let first_start = lowest + (offset - lowest).rem_euclid(slide);
            if first_start > ps {
                return Ok(None);
            }
            let last_start = ps - (ps - offset).rem_euclid(slide);
            let fits = |v: i128| i64::try_from(v).ok();
            return match (
                fits(ps),
                fits(first_start),
                fits(first_start + size),
                fits(last_start + size),
            ) {
                (Some(ps), Some(_), Some(first), Some(last)) => Ok(Some((ps, first, last))),
                _ => Err(WindowError::Unrepresentable { time }),
            };
        }
        let ps = time - (time - self.offset).rem_euclid(self.pane);
        if self.size == self.slide {
            return Ok(Some((ps, ps + self.size, ps + self.size)));
        }
        let lowest = ps - self.size + 1;
        let first_start = lowest + (self.offset - lowest).rem_euclid(self.slide);
        if first_start > ps {
            return Ok(None);
        }
        let last_start = ps - (ps - self.offset).rem_euclid(self.slide);
        Ok(Some((ps, first_start + self.size, last_start + self.size)))
    }

    /// The smallest window end at or after `time` (whether or not the window
    /// has records); `None` if not representable.
    pub fn ceil_end(&self, time: EventTime) -> Option<EventTime> {
        let (t, size, slide) = (time as i128, self.size as i128, self.slide as i128);
        let end = t + (self.offset as i128 + size - t).rem_euclid(slide);
        i64::try_from(end).ok()
    }

    /// Whether the pane `[pane_start, pane_start + pane)` lies inside window
    /// `[start, end)`.
    pub fn pane_in_window(&self, pane_start: EventTime, window: Window) -> bool {
        window.start <= pane_start && pane_start < window.end
    }

    /// Whether `start` is a window start of this assigner.
    pub fn is_window_start(&self, start: EventTime) -> bool {
        start
            .checked_sub(self.offset)
            .is_some_and(|s| s.rem_euclid(self.slide) == 0)
    }
}

impl Sliding {
    /// Pushes every window that contains `time` onto `out`, in ascending
    /// `start` order. When a window that would contain `time` cannot be
    /// represented (its bounds overflow `i64`), returns
    /// [`WindowError::Unrepresentable`] and pushes nothing.
    pub fn assign(&self, time: EventTime, out: &mut Vec<Window>) -> Result<(), WindowError> {
        // Computed in i128 so that no intermediate value can overflow; a
        // window whose bounds leave the i64 range is reported, not wrapped.
        let (t, size, slide) = (time as i128, self.size as i128, self.slide as i128);
        let last = t - (t - self.offset as i128).rem_euclid(slide);
        let first_pushed = out.len();
        let mut start = last;
        while start > t - size {
            let (Ok(s), Ok(e)) = (i64::try_from(start), i64::try_from(start + size)) else {
                out.truncate(first_pushed);
                return Err(WindowError::Unrepresentable { time });
            };
            out.push(Window { start: s, end: e });
            start -= slide;
        }
        out[first_pushed..].reverse();
        Ok(())
    }
}

/// The session window a single record forms on its own: `[time, time + gap)`.
pub fn session_of(time: EventTime, gap: Millis) -> Result<Window, WindowError> {
    let end = time
        .checked_add(gap)
        .ok_or(WindowError::Unrepresentable { time })?;
    Ok(Window::new(time, end))
}

/// Whether a record at `time` joins the session `[start, end)` of gap `gap`:
/// it is at most `gap` from one of the session's records, i.e.
/// `start - gap <= time <= end` (the session's last record is `end - gap`).
pub fn joins_session(session: Window, time: EventTime, gap: Millis) -> bool {
    session.start.saturating_sub(gap) <= time && time <= session.end
}
