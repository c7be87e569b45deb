//! A sink's own recovery position ([`SinkState`]): how a sink that cannot
//! be cut back to a file length (a transactional topic, a database table)
//! finds where to go on after a resume. The file sinks use the length and
//! digest of [`OutputPosition`](crate::checkpoint::OutputPosition)
//! instead; a sink may use either, or both.
//!
//! A sink picks its own position type — anything serde encodes — and
//! hands it to the checkpoint from
//! [`Sink::checkpoint_state`](super::Sink::checkpoint_state); the
//! checkpoint keeps it with the operators' states, under the output's name,
//! and gives it back to
//! [`Sink::resume_state`](super::Sink::resume_state) when the job resumes
//! from that checkpoint.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tidemark_engine::sink::SinkState;
//!
//! /// A table sink's position: the last transaction it committed.
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Committed {
//!     transaction: u64,
//! }
//!
//! let state = SinkState::encode(&Committed { transaction: 42 })?;
//! assert_eq!(state.decode::<Committed>()?, Committed { transaction: 42 });
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A sink's recovery position, encoded (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkState(Vec<u8>);

impl SinkState {
    /// Encodes `position`, of the sink's own type.
    pub fn encode<P: Serialize>(position: &P) -> io::Result<SinkState> {
        postcard::to_stdvec(position)
            .map(SinkState)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Decodes the position [`encode`](Self::encode) encoded; a state of
    /// another type is an error, not a panic.
    pub fn decode<P: DeserializeOwned>(&self) -> io::Result<P> {
        postcard::from_bytes(&self.0).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the sink's recovery state cannot be decoded: {e}"),
            )
        })
    }

    /// The encoded bytes, as a checkpoint keeps them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A state from the bytes a checkpoint kept.
    pub fn from_bytes(bytes: Vec<u8>) -> SinkState {
        SinkState(bytes)
    }
}
