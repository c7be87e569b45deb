//! Strategies the differential tests share: window specs of every kind
//! and policies of both emit modes.

use proptest::prelude::*;
use tidemark_windows::{EmitMode, Policy, WindowSpec};

/// Tumbling, sliding (gaps included) and session windows, small enough
/// that random logs open several.
pub fn spec() -> impl Strategy<Value = WindowSpec> {
    prop_oneof![
        (1i64..300, -200i64..200).prop_map(|(size, offset)| WindowSpec::Tumbling { size, offset }),
        (1i64..300, 1i64..200, -200i64..200).prop_map(|(size, slide, offset)| {
            WindowSpec::Sliding {
                size,
                slide,
                offset,
            }
        }),
        (1i64..200).prop_map(WindowSpec::session),
    ]
}

/// Delays, allowed lateness (often zero) and both emit modes.
pub fn policy() -> impl Strategy<Value = Policy> {
    (
        prop_oneof![Just(0i64), 0i64..150],
        prop_oneof![Just(0i64), 0i64..400],
        prop_oneof![Just(EmitMode::Final), Just(EmitMode::Updates)],
    )
        .prop_map(|(d, l, e)| Policy::new(d, l, e))
}
