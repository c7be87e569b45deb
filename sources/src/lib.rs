//! Partitioned, offset-addressed event logs: the input side of tidemark.
//!
//! A source is a set of partitions; each partition is an ordered log of
//! records addressed by offset, readable from any offset.
#![warn(missing_docs)]
