//! The result changelog as a differential-dataflow collection:
//! `((key, window), value)` with `+1` for `final` and `update` rows and
//! `-1` for `retract` rows, at the frontier step that emitted them.
//!
//! Consolidated at a time `t`, the collection holds the results as shown at
//! `t`: one row per (key, window) still displayed, with its latest value —
//! so it can be joined with other collections, arranged and consolidated.

use differential_dataflow::{AsCollection, VecCollection};
use tidemark_sources::Key;
use tidemark_windows::{EventTime, Window};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::Stream;

use crate::event::Row;

/// The result rows as a collection of `((key, window), value)`.
pub type Changelog<'scope, O> = VecCollection<'scope, EventTime, ((Key, Window), O), isize>;

/// The result rows `rows` (as [`windowed`](crate::windowed) returns them)
/// as a differential collection: each row becomes `((key, window), value)`
/// with diff `+1` (`final`, `update`) or `-1` (`retract`) at its `time`.
pub fn changelog<'scope, O>(rows: Stream<'scope, EventTime, Vec<Row<O>>>) -> Changelog<'scope, O>
where
    O: Clone + 'static,
{
    rows.map(|r| {
        let diff = r.kind.diff() as isize;
        (((r.key, r.window), r.value), r.time, diff)
    })
    .as_collection()
}
