//! The job's counts, each declared once (by the `counts!` macro below):
//! what happened to the records read and the rows written. One plain value ([`Counts`]) serves
//! the summary, the live snapshot, checkpoints, cut reports and the stats
//! log; its live twin ([`LiveCounts`]) is what the workers of a process add
//! to while the job runs.
//!
//! A count is of one of three kinds: a **record count** says what
//! happened to input records (the stats log shows these: they are exact at
//! every cut), a **row count** what was written, a **run count** what the
//! run did besides.
//!
//! ```
//! use tidemark_engine::counts::{Counts, LiveCounts};
//!
//! let live = LiveCounts::default();
//! live.add(&Counts { records: 3, late_dropped: 1, ..Counts::default() });
//! live.add(&Counts { records: 2, ..Counts::default() });
//! let now = live.get();
//! assert_eq!((now.records, now.late_dropped), (5, 1));
//! assert_eq!(now.since(&Counts { records: 4, ..Counts::default() }).records, 1);
//! let names: Vec<&str> = now.record_counts().map(|(name, _)| name).collect();
//! assert_eq!(names, ["records", "late_dropped", "late_applied", "unassigned", "dead_letters"]);
//! ```

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

/// Declares the counts: for each, its kind (`record`, `row` or `run`), name and
/// doc. Generates [`Counts`], [`LiveCounts`] and their arithmetic, so a new
/// count is one line here.
macro_rules! counts {
    ($( $(#[doc = $doc:literal])+ $kind:ident $name:ident, )+) => {
        /// The job's counts (see the [module docs](self)).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Counts {
            $( $(#[doc = $doc])+ pub $name: u64, )+
        }

        /// The counts as the workers of a running job add to them, readable
        /// from any thread while it runs.
        #[derive(Debug, Default)]
        pub struct LiveCounts {
            $( $(#[doc = $doc])+ pub $name: AtomicU64, )+
        }

        impl Counts {
            /// Every count of `other` added to this one's.
            pub fn add(&mut self, other: &Counts) {
                $( self.$name += other.$name; )+
            }

            /// What was counted since `earlier`, count by count.
            pub fn since(&self, earlier: &Counts) -> Counts {
                Counts { $( $name: self.$name.saturating_sub(earlier.$name), )+ }
            }

            /// The record counts of this one, the others of `rest`.
            pub fn records_with_rest_of(&self, rest: &Counts) -> Counts {
                Counts {
                    $( $name: if stringify!($kind) == "record" { self.$name } else { rest.$name }, )+
                }
            }

            /// Every count with its name, in declaration order.
            pub fn all(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$( (stringify!($name), self.$name), )+].into_iter()
            }

            /// The record counts with their names, in declaration order.
            pub fn record_counts(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$( (stringify!($kind), stringify!($name), self.$name), )+]
                    .into_iter()
                    .filter(|(kind, _, _)| *kind == "record")
                    .map(|(_, name, v)| (name, v))
            }
        }

        impl LiveCounts {
            /// Adds `counts` (each count atomically; the set as a whole is
            /// not one atomic step).
            pub fn add(&self, counts: &Counts) {
                $( if counts.$name != 0 { self.$name.fetch_add(counts.$name, Relaxed); } )+
            }

            /// The counts now.
            pub fn get(&self) -> Counts {
                Counts { $( $name: self.$name.load(Relaxed), )+ }
            }

            /// Sets every count (a resumed run starts from its checkpoint's).
            pub fn set(&self, counts: &Counts) {
                $( self.$name.store(counts.$name, Relaxed); )+
            }
        }
    };
}

counts! {
    /// Records decoded (read by the ingest; applied, by the window
    /// operator's reports).
    record records,
    /// Records dropped from at least one window as too late.
    record late_dropped,
    /// Records applied to a window after it fired (allowed lateness).
    record late_applied,
    /// Records whose event time lies in no window (sliding windows with
    /// gaps).
    record unassigned,
    /// Records that went to the dead-letter output: lines or messages that
    /// could not be decoded, and records for which no window can be formed.
    record dead_letters,
    /// Rows of kind `final`.
    row windows_emitted,
    /// Rows of kind `retract` or `update`.
    row corrections,
    /// Of the corrections, rows of kind `retract`.
    row retractions,
    /// Times a followed partition was released as idle (`idle_after`); when
    /// non-zero the results may depend on timing.
    run idle_releases,
}

/// The record counts of a [`Counts`] as a map (`records`, `dead_letters`,
/// ...), for a format that shows only those (the stats log's lines).
#[derive(Clone, Copy, Debug)]
pub struct RecordCounts<'a>(pub &'a Counts);

impl Serialize for RecordCounts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (name, value) in self.0.record_counts() {
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}
