//! The operators' state in a checkpoint's state file (`state.bin`): each
//! stateful operator's state under its name, as each worker encoded its
//! share.
//!
//! # Format
//!
//! Format 2 (checkpoint format 2): the eight bytes `tmstate2`, then the
//! postcard encoding of a map from operator name to the workers' snapshots
//! (`BTreeMap<String, Vec<Vec<u8>>>`). Format 1 (before operators had
//! names): the postcard encoding of the window operator's snapshots alone
//! (`Vec<Vec<u8>>`), read as the operator [`WINDOW`]. A completed job's
//! file holds no operator state (empty, or the sinks' states only). The
//! sinks' own recovery states are kept beside the operators', under
//! [`SINK`] and the output's name.
//!
//! ```
//! use std::collections::BTreeMap;
//! use tidemark_engine::checkpoint::state::{decode, encode, WINDOW};
//!
//! let workers: Vec<&[u8]> = vec![b"worker 0", b"worker 1"];
//! let bytes = encode(&BTreeMap::from([(WINDOW, workers)])).unwrap();
//! let states = decode(&bytes).unwrap();
//! assert_eq!(states[WINDOW], vec![b"worker 0".to_vec(), b"worker 1".to_vec()]);
//! ```

use std::collections::BTreeMap;

/// The window operator's name.
pub const WINDOW: &str = "window";

/// The first bytes of a format-2 state file.
const MAGIC: &[u8; 8] = b"tmstate2";

/// Each operator's per-worker snapshots, by operator name.
pub type OperatorStates = BTreeMap<String, Vec<Vec<u8>>>;

/// The state file holding `states` (operator name → each worker's
/// snapshot).
pub fn encode(states: &BTreeMap<&str, Vec<&[u8]>>) -> Result<Vec<u8>, String> {
    let body = postcard::to_stdvec(states)
        .map_err(|e| format!("the operators' state cannot be encoded: {e}"))?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// The operators' states a state file holds (see the [module docs](self)
/// for the formats read).
pub fn decode(bytes: &[u8]) -> Result<OperatorStates, String> {
    if bytes.is_empty() {
        return Ok(OperatorStates::new());
    }
    match bytes.strip_prefix(MAGIC) {
        Some(rest) => postcard::from_bytes(rest)
            .map_err(|e| format!("the operators' state cannot be decoded: {e}")),
        None => {
            let workers: Vec<Vec<u8>> = postcard::from_bytes(bytes)
                .map_err(|e| format!("the window state cannot be decoded: {e}"))?;
            Ok(OperatorStates::from([(WINDOW.to_owned(), workers)]))
        }
    }
}

/// The prefix of the entries that hold the sinks' own recovery states
/// ([`Sink::checkpoint_state`](crate::Sink::checkpoint_state)): `sink
/// results`, `sink late records`, `sink dead letters`, each with one
/// entry.
pub const SINK: &str = "sink ";

/// Takes the sinks' own recovery states out of `states`, by output
/// (`results`, `late records`, `dead letters`).
pub fn take_sinks(states: &mut OperatorStates) -> BTreeMap<String, Vec<u8>> {
    let names: Vec<String> = states
        .keys()
        .filter(|name| name.starts_with(SINK))
        .cloned()
        .collect();
    names
        .into_iter()
        .filter_map(|name| {
            let entries = states.remove(&name)?;
            let output = name.strip_prefix(SINK)?.to_owned();
            entries.into_iter().next().map(|bytes| (output, bytes))
        })
        .collect()
}

/// The snapshots of the operators `expected` (by name), or why these
/// states do not fit them: an operator of the job without state, or state
/// of an operator the job does not have.
pub fn take(mut states: OperatorStates, expected: &[&str]) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let taken = expected
        .iter()
        .map(|name| {
            states
                .remove(*name)
                .ok_or_else(|| format!("it holds no state of the operator \"{name}\" this job has"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(other) = states.keys().next() {
        return Err(format!(
            "it holds state of an operator \"{other}\" this job does not have"
        ));
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_file_reads_as_the_window_operators_state() {
        let workers = vec![vec![1u8, 2, 3], Vec::new(), vec![255; 300]];
        let old = postcard::to_stdvec(&workers).unwrap();
        assert_eq!(decode(&old).unwrap()[WINDOW], workers);
        let new = encode(&BTreeMap::from([(
            WINDOW,
            workers.iter().map(Vec::as_slice).collect(),
        )]))
        .unwrap();
        assert_eq!(decode(&new).unwrap(), decode(&old).unwrap());
        assert!(decode(&[]).unwrap().is_empty());
    }

    #[test]
    fn states_that_do_not_fit_the_job_are_named() {
        let states = || {
            OperatorStates::from([
                (WINDOW.to_owned(), vec![vec![1]]),
                ("table users".to_owned(), vec![vec![2]]),
            ])
        };
        assert_eq!(
            take(states(), &[WINDOW, "table users"]).unwrap(),
            vec![vec![vec![1]], vec![vec![2]]]
        );
        let more = take(states(), &[WINDOW]).unwrap_err();
        assert!(
            more.contains("\"table users\" this job does not have"),
            "{more}"
        );
        let less = take(states(), &[WINDOW, "table users", "gate"]).unwrap_err();
        assert!(less.contains("no state of the operator \"gate\""), "{less}");
    }

    #[test]
    fn the_sinks_states_are_taken_apart_from_the_operators() {
        let mut states = OperatorStates::from([
            (WINDOW.to_owned(), vec![vec![1]]),
            (format!("{SINK}results"), vec![vec![7, 7]]),
        ]);
        let sinks = take_sinks(&mut states);
        assert_eq!(sinks, BTreeMap::from([("results".to_owned(), vec![7, 7])]));
        assert_eq!(take(states, &[WINDOW]).unwrap(), vec![vec![vec![1]]]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b"tmstate2\xff\xff\xff"[..],
            b"\xff\xff\xff\xff\xff\xff\xff",
        ] {
            assert!(decode(bytes).is_err());
        }
    }
}
