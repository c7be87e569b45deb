//! Pure event-time window semantics: assigners, aggregators, lateness and the
//! window state machine. No Timely, no I/O, no clock.
//!
//! # Vocabulary
//!
//! - A **partition** is an ordered log of records `(offset, key, event time,
//!   value)`; event times inside it may be out of order.
//! - The **stream time** of a partition at a record is the largest event time
//!   in that partition up to and including it. It never goes back.
//! - The **partition watermark** is stream time − `D`, the delay of
//!   [`Policy`] ([`time::watermark`]; bounded out-of-orderness is the one
//!   kind of watermark, see [`watermark`]); an ended partition has
//!   watermark +∞.
//! - The **global watermark** is the minimum over partitions. The engine
//!   carries it as the Timely frontier: records are applied in the order
//!   (stream time, partition, offset), and when the frontier is `s` the
//!   global watermark is `s − D`.
//! - A window `[start, end)` **fires** when the watermark reaches its end.
//! - A record is **late** for a window when its own partition watermark has
//!   already reached the window's end. Lateness is therefore a property of
//!   the log, not of timing.
//! - With **allowed lateness** `L`, a late record whose partition watermark
//!   is still below `end + L` updates the window and emits a correction;
//!   otherwise it is dropped from that window and goes to the late output.
//!   Window state is dropped once the watermark reaches `end + L`.
//! - A correction **retracts** the row shown before and emits the new one.
//!
//! ```text
//!  event time ─────────────────────────────────────────────────────────▶
//!  window      [start ─────────────── end)
//!  watermark                               ▲ reaches end: the window fires
//!  allowed lateness                        ├──── L ────┤
//!  a late record here updates the window ──┘           └── past here: dropped
//! ```
//!
//! # Result numbers
//!
//! Result rows are JSON, and their numbers are written by the `Display` of
//! [`Number`] and [`SumValue`]: counts and integer sums as exact integers;
//! float results (a sum involving floats, a mean, a float min or max) in
//! their shortest round-trip form, always recognisable as floats (`21.0`,
//! `0.1`, `1e30`, `5e-324`). A float sum that overflows the `f64` range is
//! not finite and is stated as one of the JSON strings `"Infinity"`,
//! `"-Infinity"` or `"NaN"`, not as `null`, which would read as a missing
//! value.
//!
//! # Examples
//!
//! Tumbling one-second windows counting and summing, delay 100 ms:
//!
//! ```
//! use tidemark_windows::{
//!     evaluate, AggKind, ChangeKind, EmitMode, LogRecord, Metrics, Number, Policy, WindowSpec,
//!     WindowState,
//! };
//!
//! let rec = |offset, time, value| LogRecord {
//!     partition: 0,
//!     offset,
//!     key: "a",
//!     time,
//!     input: Number::Int(value),
//! };
//! let log = vec![
//!     rec(0, 100, 2),
//!     rec(1, 1_050, 3),
//!     rec(2, 980, 4),   // stream time 1050, watermark 950: on time for [0, 1000)
//!     rec(3, 1_300, 5),
//!     rec(4, 400, 6),   // watermark 1200 has passed 1000: late, dropped
//! ];
//! let metrics = Metrics::new(&[AggKind::Count, AggKind::Sum]);
//! let policy = Policy::new(100, 0, EmitMode::Final);
//! let mut state = WindowState::try_new(WindowSpec::tumbling(1_000), policy, metrics).unwrap();
//! let eval = evaluate(&mut state, &log);
//! let first = &eval.changes[0];
//! assert_eq!((first.window.start, first.window.end), (0, 1_000));
//! assert_eq!(first.value.count, Some(2));
//! assert_eq!(first.kind, ChangeKind::Final);
//! assert_eq!(first.value.sum, Some(tidemark_windows::SumValue::Int(6)));
//! assert_eq!(eval.late.len(), 1);
//! assert_eq!(eval.late[0].0, 4); // the index in the log
//! ```
#![warn(missing_docs)]

pub mod aggregate;
pub mod assign;
pub mod change;
pub mod fields;
#[doc(hidden)]
pub mod join_reference;
pub mod key;
pub mod log;
mod panes;
pub mod policy;
#[doc(hidden)]
pub mod reference;
pub mod sketch;
pub mod state;
pub mod table;
pub mod time;
mod timers;
pub mod watermark;
pub mod window;

pub use aggregate::{
    AggKind, Aggregator, Count, Max, Mean, MetricValues, Metrics, MetricsAcc, Min, Number, Sum,
    SumAcc, SumValue,
};
pub use assign::{Sliding, Tumbling, WindowError, WindowSpec, MAX_SPAN};
pub use change::{Change, ChangeKind, Phase};
pub use fields::{AggSpec, Aggs, AggsAcc, Cell, Cells, Field, FromRecord, Rec, RecordView};
pub use key::WindowKey;
pub use log::{evaluate, Evaluation, LogRecord};
pub use policy::{EmitMode, Policy};
pub use sketch::{ApproxDistinct, DistinctSketch, Quantile, QuantileSketch};
pub use state::{Applied, Snapshot, WindowState};
pub use time::{EventTime, Millis};
pub use window::Window;
