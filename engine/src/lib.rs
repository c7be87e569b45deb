//! The Timely dataflow that ties sources to window state: ingest, event-order
//! buffering, the window operator and the sinks.
#![warn(missing_docs)]
