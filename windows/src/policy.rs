//! Lateness and emit policy: the watermark delay, the allowed lateness and
//! when results are emitted.

use serde::{Deserialize, Serialize};

use crate::assign::WindowError;
use crate::time::Millis;

/// When window results are emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmitMode {
    /// One `final` row per window when it fires; allowed-late records then
    /// emit a `retract` of the old row and an `update` with the new value.
    #[default]
    Final,
    /// Every change as soon as its step is complete: an `update` row for a
    /// new window, `retract` + `update` for a changed one.
    Updates,
}

impl EmitMode {
    /// Its name in flags and job files: `final` or `updates`.
    pub fn name(self) -> &'static str {
        match self {
            EmitMode::Final => "final",
            EmitMode::Updates => "updates",
        }
    }
}

impl std::str::FromStr for EmitMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "final" => Ok(EmitMode::Final),
            "updates" => Ok(EmitMode::Updates),
            other => Err(format!(
                "unknown emit mode \"{other}\" (expected final or updates)"
            )),
        }
    }
}

/// The lateness and emit policy of a job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Policy {
    /// Watermark delay `D`: a partition's watermark is its stream time − D.
    pub delay: Millis,
    /// Allowed lateness `L`: a late record still updates a window while its
    /// partition watermark is below `end + L`.
    pub lateness: Millis,
    /// Emit mode.
    pub emit: EmitMode,
}

impl Policy {
    /// A policy with delay `delay`, allowed lateness `lateness` and `emit`.
    pub fn new(delay: Millis, lateness: Millis, emit: EmitMode) -> Self {
        Policy {
            delay,
            lateness,
            emit,
        }
    }

    /// Checks that delay and lateness are not negative.
    pub fn validate(&self) -> Result<(), WindowError> {
        for (what, value) in [
            ("watermark delay", self.delay),
            ("allowed lateness", self.lateness),
        ] {
            if value < 0 {
                return Err(WindowError::Negative { what, value });
            }
            if value > crate::assign::MAX_SPAN {
                return Err(WindowError::TooLong { what, value });
            }
        }
        Ok(())
    }
}
