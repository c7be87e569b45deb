//! Property tests of the window assigners: every assigned window contains the
//! time, windows come in ascending start order, the number of windows is
//! `size / slide` (rounded down or up) for overlapping sliding windows and
//! one for tumbling windows, and panes tile each window.
//!
//! Run with `cargo test -p tidemark-windows --test assign_props`.

use proptest::prelude::*;
use tidemark_windows::assign::joins_session;
use tidemark_windows::{Sliding, Tumbling, Window, WindowError, WindowSpec};

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn sliding_windows_contain_time_in_order(
        time in -1_000_000_000i64..1_000_000_000,
        size in 1i64..10_000,
        slide in 1i64..10_000,
        offset in -20_000i64..20_000,
    ) {
        let a = Sliding::try_new(size, slide, offset).unwrap();
        let mut out = Vec::new();
        a.assign(time, &mut out).unwrap();
        for w in &out {
            prop_assert!(w.contains(time), "{w} does not contain {time}");
            prop_assert_eq!(w.end - w.start, size);
            prop_assert!(a.is_window_start(w.start));
        }
        prop_assert!(out.windows(2).all(|p| p[0].start + slide == p[1].start));
        let n = out.len() as i64;
        if slide <= size {
            prop_assert!(n == size / slide || n == (size + slide - 1) / slide, "{n} windows for {size}/{slide}");
        } else {
            prop_assert!(n <= 1);
        }
        if size % slide == 0 {
            prop_assert_eq!(n, size / slide);
        }
        // Every window is tiled by whole panes; the time's pane is inside each.
        let pane = a.pane();
        prop_assert_eq!(size % pane, 0);
        prop_assert_eq!(slide % pane, 0);
        let ps = a.pane_start(time).unwrap();
        prop_assert!(ps <= time && time < ps + pane);
        for w in &out {
            prop_assert!(w.start <= ps && ps + pane <= w.end);
            prop_assert_eq!((ps - w.start) % pane, 0);
        }
        // The first and last windows containing the pane end at
        // first_end_of_pane and last_end_of_pane; ceil_end finds window ends.
        match (out.first(), out.last()) {
            (Some(first), Some(last)) => {
                prop_assert_eq!(a.first_end_of_pane(ps), Some(first.end));
                prop_assert_eq!(a.last_end_of_pane(ps), Some(last.end));
                prop_assert_eq!(a.ceil_end(first.end), Some(first.end));
                prop_assert_eq!(a.ceil_end(first.end - slide + 1), Some(first.end));
            }
            _ => prop_assert_eq!(a.first_end_of_pane(ps), None),
        }
    }

    #[test]
    fn pane_bounds_agree_with_assign(
        time in prop_oneof![any::<i64>(), -1_000_000_000i64..1_000_000_000],
        size in prop_oneof![1i64..10_000, 1i64..1_000_000_000],
        slide in prop_oneof![1i64..10_000, 10_000i64..1_000_000_000],
        offset in any::<i64>(),
    ) {
        prop_assume!(size / slide <= 100_000);
        let a = Sliding::try_new(size, slide, offset).unwrap();
        let mut out = Vec::new();
        let expected = a.assign(time, &mut out).map(|()| match (out.first(), out.last()) {
            (Some(f), Some(l)) => Some((a.pane_start(time).unwrap(), f.end, l.end)),
            _ => None,
        });
        prop_assert_eq!(a.pane_bounds(time), expected);
    }

    #[test]
    fn tumbling_is_one_window(time in any::<i64>(), size in 1i64..1_000_000, offset in any::<i64>()) {
        let a = Tumbling::try_new(size, offset).unwrap();
        let mut out = Vec::new();
        match a.assign(time, &mut out) {
            Ok(()) => {
                prop_assert_eq!(out.len(), 1);
                prop_assert!(out[0].contains(time));
            }
            Err(WindowError::Unrepresentable { time: t }) => {
                prop_assert_eq!(t, time);
                prop_assert!(out.is_empty());
                // Only near the extremes.
                prop_assert!(time < i64::MIN + size || time > i64::MAX - size);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn session_join_rule_is_distance_at_most_gap(first in -10_000i64..10_000, len in 0i64..5_000, gap in 1i64..2_000, time in -20_000i64..20_000) {
        let session = Window::new(first, first + len + gap);
        let last = first + len;
        let within = (time - first).abs() <= gap || (time - last).abs() <= gap || (first..=last).contains(&time);
        prop_assert_eq!(joins_session(session, time, gap), within);
    }
}

#[test]
fn invalid_specs_are_errors() {
    assert!(WindowSpec::tumbling(0).validate().is_err());
    assert!(WindowSpec::sliding(10, 0).validate().is_err());
    assert!(WindowSpec::sliding(-1, 5).validate().is_err());
    assert!(WindowSpec::session(0).validate().is_err());
    assert!(WindowSpec::sliding(86_400_000, 1).validate().is_err());
    let e = Sliding::try_new(0, 1, 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "window size must be greater than 0 (got 0 ms)"
    );
    // A slide larger than the size is allowed and leaves gaps.
    let a = Sliding::try_new(10, 100, 0).unwrap();
    let mut out = Vec::new();
    a.assign(50, &mut out).unwrap();
    assert!(out.is_empty());
    a.assign(105, &mut out).unwrap();
    assert_eq!(out, vec![Window::new(100, 110)]);
}

#[test]
fn impossible_windows_are_rejected_at_config_time() {
    use tidemark_windows::{EmitMode, Policy, WindowError, WindowSpec, MAX_SPAN};
    for spec in [
        WindowSpec::session(i64::MAX),
        WindowSpec::tumbling(MAX_SPAN + 1),
        WindowSpec::sliding(i64::MAX, i64::MAX / 2),
    ] {
        assert!(
            matches!(spec.validate(), Err(WindowError::TooLong { .. })),
            "{spec:?}"
        );
    }
    assert!(WindowSpec::session(MAX_SPAN).validate().is_ok());
    let policy = Policy::new(0, i64::MAX, EmitMode::Final);
    let err = policy.validate().unwrap_err();
    assert!(err.to_string().contains("allowed lateness"), "{err}");
}
