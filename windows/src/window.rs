//! The window: a half-open span of event time.

use serde::{Deserialize, Serialize};

use crate::time::EventTime;

/// A half-open span of event time, `[start, end)`, in epoch milliseconds.
///
/// Windows order by `(end, start)`, the order in which they fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// First millisecond inside the window.
    pub start: EventTime,
    /// First millisecond after the window.
    pub end: EventTime,
}

impl Window {
    /// A window `[start, end)`.
    pub fn new(start: EventTime, end: EventTime) -> Self {
        Window { start, end }
    }

    /// Whether `time` lies in `[start, end)`.
    pub fn contains(&self, time: EventTime) -> bool {
        self.start <= time && time < self.end
    }
}

impl PartialOrd for Window {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Window {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.end, self.start).cmp(&(other.end, other.start))
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}
