//! The windowing operators on a stream of the caller's own, inside their
//! Timely worker ([`windowed`]): the library's way in below [`run`](crate::run).

use std::sync::Arc;

use tidemark_sources::DeadLetter;
use tidemark_windows::EventTime;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::Stream;

use crate::aggregator::JobAggregator;
use crate::collection::{changelog, Changelog};
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};
use crate::event::{Batch, Emit, Event, Ingest, LateRecord, Row};
use crate::operators::key_hash;
use crate::operators::window::{window, WindowSettings};
use crate::plan::worker_state;
use crate::stats::Stats;

/// The streams [`windowed`] returns, on each worker: that worker's share of
/// the results (each worker's rows in canonical order; merged over workers
/// in that order they are the rows a job writes), late records and dead
/// letters, and the counters of its window operator.
pub struct Windowed<'scope, O> {
    /// Result rows, each at a Timely time at or before its `time`.
    pub results: Stream<'scope, EventTime, Vec<Row<O>>>,
    /// Records dropped from at least one window as too late.
    pub late: Stream<'scope, EventTime, Vec<LateRecord>>,
    /// Records no window could take (window bounds out of range).
    pub dead_letters: Stream<'scope, EventTime, Vec<DeadLetter>>,
    /// Counters of this worker's window operator.
    pub stats: Arc<Stats>,
}

impl<'scope, O> Windowed<'scope, O>
where
    O: Clone + 'static,
{
    /// The results as a differential-dataflow collection (see
    /// [`changelog`]).
    pub fn collection(&self) -> Changelog<'scope, O> {
        changelog(self.results.clone())
    }
}

/// Builds the windowing operators on a stream of the caller's own, inside
/// their Timely worker, and returns the result, late and dead-letter
/// streams.
///
/// # The caller's contract
///
/// The determinism model rests on how `events` is produced, as the
/// built-in ingest does it:
///
/// - each event carries its partition's **stream time** (the largest event
///   time of that partition up to and including it) in `stream_time`, and
///   its partition and offset (offsets increase within a partition);
/// - each event is sent at a Timely time **no later than its stream time**
///   (a batch may be sent at the lowest stream time in it), and a partition's
///   events are sent in offset order;
/// - the source **holds its capability at the lowest stream time any
///   partition may still send**, so the frontier is the smallest stream time
///   still to come; when the frontier becomes empty the input has ended and
///   every window fires.
///
/// Events may arrive at any worker: they are exchanged by key. Under this
/// contract the rows, merged over workers in canonical order, are the same
/// whatever the number of workers, the batching or the timing.
///
/// ```
/// use timely::dataflow::operators::capture::{Capture, Event as Captured};
/// use timely::dataflow::operators::vec::ToStream;
/// use tidemark_engine::{windowed, EngineConfig, Event};
/// use tidemark_windows::{AggKind, Number, Policy, WindowSpec};
///
/// let config = EngineConfig::new(WindowSpec::tumbling(1_000), Policy::default(), vec![AggKind::Count]);
/// let captured = timely::execute_directly(move |worker| {
///     worker.dataflow::<i64, _, _>(|scope| {
///         // One partition, its events in offset order, all sent at the
///         // smallest time (no later than any stream time).
///         let events = (0..4i64).map(|i| Event {
///             stream_time: i * 400,
///             partition: 0,
///             offset: i as u64,
///             key: "k".into(),
///             time: i * 400,
///             value: Number::Int(1),
///             fields: Vec::new(),
///         });
///         let out = windowed(events.to_stream(scope), &config, scope.index(), scope.peers())
///             .expect("a valid job");
///         out.results.capture()
///     })
/// });
/// let rows: Vec<_> = captured
///     .try_iter()
///     .filter_map(|e| match e {
///         Captured::Messages(_, rows) => Some(rows),
///         _ => None,
///     })
///     .flatten()
///     .collect();
/// let counts: Vec<_> = rows.iter().map(|r| (r.window.start, r.value.count)).collect();
/// assert_eq!(counts, vec![(0, Some(3)), (1_000, Some(1))]);
/// ```
pub fn windowed<'scope, A: JobAggregator>(
    events: Stream<'scope, EventTime, Vec<Event>>,
    config: &EngineConfig<A>,
    worker: usize,
    workers: usize,
) -> Result<Windowed<'scope, A::Output>> {
    config.validate()?;
    if worker >= workers {
        return Err(EngineError::Config(format!(
            "worker {worker} is not one of {workers} workers (pass scope.index() and scope.peers())"
        )));
    }
    let state = worker_state(config, worker, workers)?;
    let stride = config.aggregator.record_fields().len();
    let batched = events.unary::<CapacityContainerBuilder<Vec<Ingest>>, _, _, _>(
        Pipeline,
        "Batch",
        move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut batches: Vec<Batch> = Vec::new();
                    for e in data.drain(..) {
                        let dest = (key_hash(&e.key) % workers as u64) as u32;
                        let fits = batches
                            .last()
                            .is_some_and(|b| b.dest == dest && b.partition == e.partition);
                        if !fits {
                            batches.push(Batch::with_capacity(dest, e.partition, 16, stride));
                        }
                        if let Some(b) = batches.last_mut() {
                            b.push(e.stream_time, e.offset, e.key, e.time, e.value, e.fields);
                        }
                    }
                    output
                        .session(&cap)
                        .give_iterator(batches.into_iter().map(Ingest::Records));
                });
            }
        },
    );
    let stats = Arc::new(Stats::default());
    let settings = WindowSettings {
        state: Some(state),
        ends_expected: None,
        worker,
        flow: None,
        cuts: Vec::new(),
        sample_every: None,
    };
    let emitted = window(batched, settings, Arc::clone(&stats));
    let results = emitted.clone().flat_map(|e| match e {
        Emit::Rows(r) => r.rows,
        _ => Vec::new(),
    });
    let late = emitted.clone().flat_map(|e| match e {
        Emit::Late(l) => Some(l),
        _ => None,
    });
    let dead_letters = emitted.flat_map(|e| match e {
        Emit::Dead { letter, .. } => Some(letter),
        _ => None,
    });
    Ok(Windowed {
        results,
        late,
        dead_letters,
        stats,
    })
}
