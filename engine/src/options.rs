//! The engine's options, each declared once ([`Options`]): its name, what
//! it is for ([`Group`]), its doc text (the rustdoc below and the CLI's
//! help alike, as [`docs`]), its default, and whether it is part of what a
//! job is — its identity, which a checkpoint's fingerprint keeps
//! ([`Options::identity`]) — or something every process of a cluster must
//! agree on ([`Options::agreed`]). The fingerprint, the cluster handshake,
//! `inspect` and `tidemark run --help` all read from the one declaration.
//!
//! Adding an option is one entry in the `options!` list below plus its use:
//! the field, its default, its doc, the identity lists and the table
//! [`OPTIONS`] follow from it.
//!
//! The job's structured settings — the window, the policy, the
//! aggregator, start positions, checkpoints, reprocessing — are fields of
//! [`EngineConfig`](crate::EngineConfig) of their own types.

use std::time::Duration;

use tidemark_windows::Millis;

use crate::config::BadRecords;
use crate::sink::TimeText;

/// What an option is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// What the job computes.
    Semantics,
    /// How the input is read and judged.
    Input,
    /// Commits and recovery.
    Recovery,
    /// How results are written.
    Output,
    /// Measurements of the running job.
    Observation,
    /// How the job runs: threads, batches, connections (never what it
    /// computes).
    Runtime,
}

impl Group {
    /// The group's name, as help texts head it.
    pub fn name(self) -> &'static str {
        match self {
            Group::Semantics => "semantics",
            Group::Input => "input",
            Group::Recovery => "recovery",
            Group::Output => "output",
            Group::Observation => "observation",
            Group::Runtime => "runtime",
        }
    }
}

/// One option as [`OPTIONS`] lists it.
#[derive(Clone, Copy, Debug)]
pub struct OptionDoc {
    /// The field's name in [`Options`].
    pub name: &'static str,
    /// What it is for.
    pub group: Group,
    /// Its doc text.
    pub doc: &'static str,
    /// Its name in a job's identity (checkpoint fingerprints), if it is
    /// part of it.
    pub identity: Option<&'static str>,
    /// Its name in a cluster's handshake, if every process must agree on
    /// it without it being part of the job's identity.
    pub agreed: Option<&'static str>,
}

/// How an option that is not set reads in a job's identity.
pub(crate) const NOT_SET: &str = "(not set)";

/// How the future-skew guard reads in a job's identity (also for a
/// fingerprint of an older manifest, which kept it as a field).
pub(crate) fn show_skew(skew: &Option<Millis>) -> String {
    skew.map_or(NOT_SET.into(), |ms| format!("{ms}ms"))
}

fn show_bad_records(policy: &BadRecords) -> String {
    match policy {
        BadRecords::Skip => "skip",
        BadRecords::Fail => "fail",
    }
    .into()
}

fn show_idle_after(after: &Option<Duration>) -> String {
    after.map_or("never".into(), |d| format!("{d:?}"))
}

/// The default of [`Options::commit_interval`].
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(200);

/// The default of [`Options::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of [`Options::batch_size`].
pub const DEFAULT_BATCH_SIZE: usize = 1024;

macro_rules! options {
    ($(
        $(#[doc = $doc:literal])+
        [$group:ident] $name:ident : $ty:ty = $default:expr
        $(, identity $ilabel:literal => $ishow:path)?
        $(, agreed $alabel:literal => $ashow:path)?
        ;
    )+) => {
        /// The engine's options (see the [module docs](self)), with their
        /// defaults ([`Options::default`]).
        #[derive(Clone, Debug, PartialEq)]
        pub struct Options {
            $(
                $(#[doc = $doc])+
                pub $name: $ty,
            )+
        }

        impl Default for Options {
            fn default() -> Self {
                Options { $( $name: $default, )+ }
            }
        }

        impl Options {
            /// The options that are part of what the job is, by the names
            /// a checkpoint's fingerprint gives them, with their values as
            /// messages show them, in declaration order.
            pub fn identity(&self) -> Vec<(String, String)> {
                vec![$( $( ($ilabel.to_owned(), $ishow(&self.$name)), )? )+]
            }

            /// The options every process of a cluster must agree on besides
            /// the job's identity, by name, with their values.
            pub fn agreed(&self) -> Vec<(String, String)> {
                vec![$( $( ($alabel.to_owned(), $ashow(&self.$name)), )? )+]
            }
        }

        /// Every option, in declaration order.
        pub const OPTIONS: &[OptionDoc] = &[
            $(
                OptionDoc {
                    name: stringify!($name),
                    group: Group::$group,
                    doc: concat!($($doc),+),
                    identity: options!(@label $($ilabel)?),
                    agreed: options!(@label $($alabel)?),
                },
            )+
        ];

        /// Each option's doc text, by its name, for help texts (lines
        /// joined, leading space kept: trim it).
        #[allow(non_upper_case_globals)]
        pub mod docs {
            $(
                #[doc = concat!("The doc text of [`Options::", stringify!($name), "`](super::Options::", stringify!($name), ").")]
                pub const $name: &str = concat!($($doc),+);
            )+
        }
    };
    (@label $label:literal) => { Some($label) };
    (@label) => { None };
}

options! {
    /// A record stamped more than this ahead of its partition's stream
    /// time is a dead letter ("future timestamp") and does not move the
    /// stream time, so one bad clock does not fire every open window and
    /// make the records after it late. The trade-off: after a genuine jump
    /// ahead by more than this, the partition's records are dead letters
    /// (its stream time stays behind them). A partition's first record is
    /// never judged. A function of the log, so still deterministic; off by
    /// default.
    [Semantics] max_future_skew: Option<Millis> = None,
        identity "maximum future skew" => show_skew;

    /// What to do with a record that cannot be decoded: skip it (it goes
    /// to the dead letters) or fail the job.
    [Input] bad_records: BadRecords = BadRecords::Skip,
        agreed "bad records" => show_bad_records;

    /// For followed inputs: a partition with nothing new for this long
    /// stops holding the watermark back until it produces records again,
    /// so the others' windows fire. Off by default, since it makes results
    /// depend on timing: a record of a partition that was idle is judged
    /// against the watermark the others advanced meanwhile.
    [Input] idle_after: Option<Duration> = None,
        agreed "idle after" => show_idle_after;

    /// How often (wall clock) the outputs are committed while the job
    /// runs: each commit makes visible what the frontier has completed.
    /// Commits happen at completed frontier steps only, and always once
    /// more at the end.
    [Recovery] commit_interval: Duration = DEFAULT_COMMIT_INTERVAL;

    /// How times are written in result rows (window start and end) and
    /// late records (their event time and the windows they missed): epoch
    /// ms numbers or RFC 3339 strings in UTC.
    [Output] output_times: TimeText = TimeText::EpochMs;

    /// Measure the window state every this many ms of stream time: after
    /// the first frontier step at or past each multiple (and at the end),
    /// each worker counts its open (key, window) states (the summary's
    /// peak open windows); its state's encoded size at the peak is
    /// measured by encoding it each time the peak grew by a tenth, and
    /// scaled by the count in between. The sample points are a function of
    /// the log, so the peak is too. A count walks every key, so this costs
    /// time: off by default.
    [Observation] sample_state: Option<Millis> = None;

    /// Records read from a partition per batch (the output does not depend
    /// on it).
    [Runtime] batch_size: usize = DEFAULT_BATCH_SIZE;

    /// In a cluster: how long a process waits for every other process to
    /// be connected (and to run the same job) before it fails, naming
    /// those it did not reach.
    [Runtime] connect_timeout: Duration = DEFAULT_CONNECT_TIMEOUT;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_option_once_with_its_doc() {
        let names: Vec<&str> = OPTIONS.iter().map(|o| o.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(OPTIONS.iter().all(|o| !o.doc.trim().is_empty()));
        assert_eq!(docs::max_future_skew, OPTIONS[0].doc);
    }

    #[test]
    fn identity_and_agreement_follow_the_declaration() {
        let mut options = Options::default();
        assert_eq!(
            options.identity(),
            vec![("maximum future skew".to_owned(), NOT_SET.to_owned())]
        );
        options.max_future_skew = Some(3_600_000);
        options.bad_records = BadRecords::Fail;
        assert_eq!(options.identity()[0].1, "3600000ms");
        assert_eq!(
            options.agreed(),
            vec![
                ("bad records".to_owned(), "fail".to_owned()),
                ("idle after".to_owned(), "never".to_owned())
            ]
        );
        let identity: Vec<_> = OPTIONS.iter().filter_map(|o| o.identity).collect();
        assert_eq!(identity, ["maximum future skew"]);
    }
}
