//! A testing oracle, not a production engine: the design's rules followed
//! literally, recomputing every window from its records at every step.
//!
//! It is deliberately naive (quadratic) and shares nothing with
//! [`crate::state`] but the public vocabulary types, so that the property
//! tests comparing the two are meaningful.

use std::collections::{BTreeMap, BTreeSet};

use crate::aggregate::Aggregator;
use crate::assign::WindowSpec;
use crate::change::{Change, ChangeKind, Phase};
use crate::log::{event_order, Evaluation, LogRecord};
use crate::policy::{EmitMode, Policy};
use crate::time::{EventTime, END_OF_TIME};
use crate::window::Window;

/// Every fixed window containing `time`, found by scanning all aligned
/// starts in `(time - size, time]`. `None` if a bound leaves the i64 range.
fn naive_windows(time: EventTime, size: i64, slide: i64, offset: i64) -> Option<Vec<Window>> {
    let (t, size, slide, offset) = (time as i128, size as i128, slide as i128, offset as i128);
    let mut out = Vec::new();
    let mut start = t - size + 1;
    while start <= t {
        if (start - offset).rem_euclid(slide) == 0 {
            let s = i64::try_from(start).ok()?;
            let e = i64::try_from(start + size).ok()?;
            out.push(Window::new(s, e));
            start += slide;
        } else {
            start += 1;
        }
    }
    Some(out)
}

/// Evaluates `log` under `spec`, `policy` and `agg` from scratch.
///
/// Panics if `spec` or `policy` is invalid.
pub fn evaluate<K, A>(
    spec: WindowSpec,
    policy: Policy,
    agg: &A,
    log: &[LogRecord<K, A::Input>],
) -> Evaluation<K, A::Output>
where
    K: Clone + Ord,
    A: Aggregator,
{
    spec.validate().expect("valid window spec");
    policy.validate().expect("valid policy");
    let (d, l) = (policy.delay, policy.lateness);
    let order = event_order(log);
    // (key, window) → member record indices; for sessions the window is
    // recomputed from the members.
    let mut members: BTreeMap<(K, Window), Vec<usize>> = BTreeMap::new();
    let mut shown: BTreeMap<(K, Window), A::Output> = BTreeMap::new();
    let mut changes = Vec::new();
    let mut late = Vec::new();
    let mut invalid = Vec::new();

    let value = |idx: &[usize]| {
        let mut acc = A::Acc::default();
        for &i in idx {
            agg.add(&mut acc, &log[i].input);
        }
        agg.finish(&acc)
    };

    let mut steps: Vec<EventTime> = order.iter().map(|&(s, _)| s).collect();
    steps.dedup();
    steps.push(END_OF_TIME);
    let mut next = 0;
    for s in steps {
        let w = crate::time::watermark(s, d);
        // 1. Fire every window whose end the watermark has reached and that
        //    is not shown yet.
        if policy.emit == EmitMode::Final {
            let mut fired: Vec<Change<K, A::Output>> = Vec::new();
            for ((key, window), idx) in &members {
                if window.end <= w && !shown.contains_key(&(key.clone(), *window)) {
                    fired.push(Change {
                        time: window.end.saturating_add(d),
                        phase: Phase::Fire,
                        kind: ChangeKind::Final,
                        key: key.clone(),
                        window: *window,
                        value: value(idx),
                    });
                }
            }
            fired.sort_by(|a, b| {
                (a.window.end, a.window.start, &a.key).cmp(&(b.window.end, b.window.start, &b.key))
            });
            for f in &fired {
                shown.insert((f.key.clone(), f.window), f.value.clone());
            }
            changes.extend(fired);
        }
        // 2. Drop what the watermark has passed by the allowed lateness.
        members.retain(|(_, window), _| window.end.saturating_add(l) > w);
        shown.retain(|(_, window), _| window.end.saturating_add(l) > w);
        // 3. Apply this step's records in (partition, offset) order.
        while next < order.len() && order[next].0 == s {
            let idx = order[next].1;
            next += 1;
            let r = &log[idx];
            match spec {
                WindowSpec::Tumbling { .. } | WindowSpec::Sliding { .. } => {
                    let (size, slide, offset) = match spec {
                        WindowSpec::Sliding {
                            size,
                            slide,
                            offset,
                        } => (size, slide, offset),
                        WindowSpec::Tumbling { size, offset } => (size, size, offset),
                        WindowSpec::Session { .. } => unreachable!(),
                    };
                    let offset = offset.rem_euclid(slide);
                    let Some(windows) = naive_windows(r.time, size, slide, offset) else {
                        invalid.push(idx);
                        continue;
                    };
                    let mut missed = Vec::new();
                    for window in windows {
                        if window.end.saturating_add(l) <= w {
                            missed.push(window);
                        } else {
                            members
                                .entry((r.key.clone(), window))
                                .or_default()
                                .push(idx);
                        }
                    }
                    if !missed.is_empty() {
                        late.push((idx, missed));
                    }
                }
                WindowSpec::Session { gap } => {
                    if r.time.checked_add(gap).is_none() {
                        invalid.push(idx);
                        continue;
                    }
                    // Absorb, to a fixpoint, every session of the key with a
                    // record at most `gap` from a record already absorbed.
                    let mut group = vec![idx];
                    let mut absorbed: BTreeSet<Window> = BTreeSet::new();
                    loop {
                        let found = members.iter().find(|((k, window), idx2)| {
                            *k == r.key
                                && !absorbed.contains(window)
                                && idx2.iter().any(|&j| {
                                    group
                                        .iter()
                                        .any(|&g| log[g].time.abs_diff(log[j].time) <= gap as u64)
                                })
                        });
                        let Some(((_, window), idx2)) = found else {
                            break;
                        };
                        absorbed.insert(*window);
                        group.extend(idx2.iter().copied());
                    }
                    let first = group.iter().map(|&g| log[g].time).min().unwrap_or(r.time);
                    let last = group.iter().map(|&g| log[g].time).max().unwrap_or(r.time);
                    let merged = Window::new(first, last + gap);
                    if absorbed.is_empty() && merged.end.saturating_add(l) <= w {
                        late.push((idx, vec![merged]));
                        continue;
                    }
                    for window in absorbed {
                        members.remove(&(r.key.clone(), window));
                    }
                    group.sort_unstable();
                    members.insert((r.key.clone(), merged), group);
                }
            }
        }
        // 4. Corrections: what should be visible now against what is shown.
        let mut desired: BTreeMap<(K, Window), A::Output> = BTreeMap::new();
        for ((key, window), idx) in &members {
            if policy.emit == EmitMode::Updates || window.end <= w {
                desired.insert((key.clone(), *window), value(idx));
            }
        }
        let mut retracts = Vec::new();
        let mut updates = Vec::new();
        for (k, v) in &shown {
            if desired.get(k) != Some(v) {
                retracts.push((k.clone(), v.clone()));
            }
        }
        let mut kinds = BTreeMap::new();
        for (k, v) in &desired {
            if shown.get(k) != Some(v) {
                updates.push((k.clone(), v.clone()));
                // In emit mode final a window's first row is `final`.
                let kind = if policy.emit == EmitMode::Final && !shown.contains_key(k) {
                    ChangeKind::Final
                } else {
                    ChangeKind::Update
                };
                kinds.insert(k.clone(), kind);
            }
        }
        let order_key =
            |((key, window), _): &((K, Window), A::Output)| (window.end, window.start, key.clone());
        retracts.sort_by_key(order_key);
        updates.sort_by_key(order_key);
        let row = |phase, kind, ((key, window), value): ((K, Window), A::Output)| Change {
            time: s,
            phase,
            kind,
            key,
            window,
            value,
        };
        changes.extend(
            retracts
                .into_iter()
                .map(|r| row(Phase::Retract, ChangeKind::Retract, r)),
        );
        for u in updates {
            let kind = kinds[&u.0];
            changes.push(row(Phase::Emit, kind, u));
        }
        shown = desired;
    }
    Evaluation {
        changes,
        late,
        invalid,
    }
}
