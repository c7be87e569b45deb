//! The job fingerprint: the settings that decide what a job computes, kept
//! in every checkpoint so that a changed job refuses to resume from it.
//!
//! A fingerprint holds the window spec, the aggregation's field names, the
//! watermark delay, the allowed lateness, the emit mode, the future-skew
//! guard, the input's identity (paths, partition names and count) and any
//! named settings the caller supplies (the field mapping, the time format
//! and other decoding options, which the engine does not see). Settings that
//! may change between runs without changing the output — the number of
//! workers or processes, the batch size, the commit interval, the output
//! paths — are not part of it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use tidemark_engine::checkpoint::{mismatch_message, InputIdentity, JobFingerprint};
//! use tidemark_engine::EngineConfig;
//! use tidemark_windows::{AggKind, Policy, WindowSpec};
//!
//! let input = InputIdentity::new(vec!["logs/".into()], vec!["p0.jsonl".into()]);
//! let job = |size| {
//!     let config = EngineConfig::new(WindowSpec::tumbling(size), Policy::default(), vec![AggKind::Count]);
//!     JobFingerprint::of(&config, input.clone(), BTreeMap::new())
//! };
//! let differences = job(60_000).diff(&job(300_000));
//! assert_eq!(differences.len(), 1);
//! assert_eq!(differences[0].setting, "window");
//! assert!(mismatch_message(&differences).contains("\n  window was "));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use tidemark_windows::{EmitMode, Millis, Policy, WindowSpec};

/// What the input is: where it is read from and its partitions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputIdentity {
    /// The input paths (or other source names), as the job names them.
    pub paths: Vec<String>,
    /// The partitions' names, in partition order (partition `i` is
    /// `partitions[i]`); their number is the partition count.
    pub partitions: Vec<String>,
}

impl InputIdentity {
    /// An input read from `paths` with the partitions `partitions`.
    pub fn new(paths: Vec<String>, partitions: Vec<String>) -> Self {
        InputIdentity { paths, partitions }
    }
}

/// The settings that decide what a job computes (see the
/// [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub struct JobFingerprint {
    /// The windows.
    pub window: WindowSpec,
    /// The aggregation's output field names, in order.
    pub fields: Vec<String>,
    /// Watermark delay, allowed lateness and emit mode.
    pub policy: Policy,
    /// The engine options that are part of the job's identity, by name,
    /// with their values as messages show them
    /// ([`Options::identity`](crate::Options::identity)), in declaration
    /// order.
    pub options: Vec<(String, String)>,
    /// Named settings the engine does not see (field mapping, time format,
    /// input format, …), supplied by the caller.
    pub settings: BTreeMap<String, String>,
    /// The input.
    pub input: InputIdentity,
}

/// A fingerprint as a manifest holds it: since the engine options have
/// their own list, the future-skew guard of an older manifest (the one
/// option it kept) is read into it.
#[derive(Deserialize)]
struct Stored {
    window: WindowSpec,
    fields: Vec<String>,
    policy: Policy,
    #[serde(default)]
    max_future_skew: Option<Millis>,
    #[serde(default)]
    options: Option<Vec<(String, String)>>,
    settings: BTreeMap<String, String>,
    input: InputIdentity,
}

impl From<Stored> for JobFingerprint {
    fn from(stored: Stored) -> Self {
        let options = stored.options.unwrap_or_else(|| {
            let skew = crate::options::show_skew(&stored.max_future_skew);
            vec![("maximum future skew".to_owned(), skew)]
        });
        JobFingerprint {
            window: stored.window,
            fields: stored.fields,
            policy: stored.policy,
            options,
            settings: stored.settings,
            input: stored.input,
        }
    }
}

/// One setting that differs between two fingerprints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The setting's name ("window", "emit mode", "time format", …).
    pub setting: String,
    /// Its value in the older fingerprint (the checkpoint's).
    pub old: String,
    /// Its value in the newer fingerprint (the job's now).
    pub new: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} was \"{}\", is now \"{}\"",
            self.setting, self.old, self.new
        )
    }
}

/// How an absent value reads in a [`Difference`].
use crate::options::NOT_SET;

/// At most this many items of a list are shown in a [`Difference`].
const SHOWN_ITEMS: usize = 8;

impl JobFingerprint {
    /// What this fingerprint says the job is: each setting by the name
    /// messages give it, with its value as they show it, in a fixed
    /// order: window, aggregations, watermark delay, allowed lateness,
    /// emit mode, the engine options of the job's identity (maximum future
    /// skew), the named settings by name, input paths, partition count. A
    /// checkpoint's fingerprint and a cluster's handshake both compare
    /// these.
    pub fn named(&self) -> Vec<(String, String)> {
        let options: Vec<&String> = self.options.iter().map(|(name, _)| name).collect();
        self.named_over(options, self.settings.keys())
    }

    /// [`named`](Self::named), with the engine options `options` and the
    /// named settings `names` (one this fingerprint lacks reads "(not
    /// set)").
    fn named_over<'a>(
        &self,
        options: impl IntoIterator<Item = &'a String>,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = vec![
            ("window".into(), self.window.to_string()),
            ("aggregations".into(), show_list(&self.fields)),
            ("watermark delay".into(), show_millis(self.policy.delay)),
            ("allowed lateness".into(), show_millis(self.policy.lateness)),
            ("emit mode".into(), show_emit(self.policy.emit)),
        ];
        out.extend(options.into_iter().map(|name| {
            let value = self.options.iter().find(|(n, _)| n == name);
            let value = value.map(|(_, v)| v.clone());
            (name.clone(), value.unwrap_or_else(|| NOT_SET.into()))
        }));
        out.extend(names.into_iter().map(|name| {
            let value = self.settings.get(name).cloned();
            (name.clone(), value.unwrap_or_else(|| NOT_SET.into()))
        }));
        out.push(("input paths".into(), show_list(&self.input.paths)));
        out.push((
            "partition count".into(),
            self.input.partitions.len().to_string(),
        ));
        out
    }

    /// The settings in which `new` differs from `self` (the older
    /// fingerprint, normally the checkpoint's), in the order of
    /// [`named`](Self::named), then the partition names.
    pub fn diff(&self, new: &JobFingerprint) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut push = |setting: &str, old: String, new: String| {
            if old != new {
                out.push(Difference {
                    setting: setting.to_owned(),
                    old,
                    new,
                });
            }
        };
        let names: std::collections::BTreeSet<&String> =
            self.settings.keys().chain(new.settings.keys()).collect();
        // The options in the newer fingerprint's order, then any only the
        // older one has.
        let mut options: Vec<&String> = new.options.iter().map(|(n, _)| n).collect();
        for (name, _) in &self.options {
            if !options.contains(&name) {
                options.push(name);
            }
        }
        let named = self
            .named_over(options.iter().copied(), names.iter().copied())
            .into_iter()
            .zip(new.named_over(options.iter().copied(), names.iter().copied()));
        for ((setting, old), (_, new)) in named {
            push(&setting, old, new);
        }
        let (old_parts, new_parts) = (&self.input.partitions, &new.input.partitions);
        if old_parts != new_parts {
            if old_parts.len() == new_parts.len() {
                // Same count: name the first partition that differs.
                if let Some(i) = (0..old_parts.len()).find(|&i| old_parts[i] != new_parts[i]) {
                    push(
                        &format!("name of partition {i}"),
                        old_parts[i].clone(),
                        new_parts[i].clone(),
                    );
                }
            } else {
                push(
                    "partition names",
                    show_list(old_parts),
                    show_list(new_parts),
                );
            }
        }
        out
    }

    /// `Ok` if `new` computes the same job as `self`, else an error whose
    /// message names every difference and suggests `--rebuild`.
    pub fn ensure_same(&self, new: &JobFingerprint) -> Result<(), super::CheckpointError> {
        let differences = self.diff(new);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(super::CheckpointError::JobChanged { differences })
        }
    }
}

/// The message for a job that does not match its checkpoint: each setting
/// that differs with its old and new value, and the way out (`--rebuild`).
/// Empty `differences` give an empty string.
pub fn mismatch_message(differences: &[Difference]) -> String {
    use fmt::Write as _;
    if differences.is_empty() {
        return String::new();
    }
    let mut message = String::from(
        "the job has changed since its checkpoint was taken, so it cannot resume from it:",
    );
    for d in differences {
        let _ = write!(message, "\n  {d}");
    }
    message.push_str(
        "\na rebuild discards the checkpoints and recomputes from the start of the input",
    );
    message
}

fn show_millis(ms: Millis) -> String {
    format!("{ms}ms")
}

fn show_emit(emit: EmitMode) -> String {
    emit.name().into()
}

/// A list as `a, b, c`, shortened to its first items when long.
fn show_list(items: &[String]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    let mut text = items[..items.len().min(SHOWN_ITEMS)].join(", ");
    if items.len() > SHOWN_ITEMS {
        text.push_str(&format!(", … ({} in all)", items.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use tidemark_windows::AggKind;

    fn base() -> JobFingerprint {
        let config = EngineConfig::new(
            WindowSpec::tumbling(60_000),
            Policy::new(1_000, 0, EmitMode::Final),
            vec![AggKind::Count, AggKind::Sum],
        );
        let settings = BTreeMap::from([
            ("time format".to_string(), "epoch-ms".to_string()),
            ("key field".to_string(), "user".to_string()),
        ]);
        JobFingerprint::of(
            &config,
            InputIdentity::new(
                vec!["logs".into()],
                vec!["a.jsonl".into(), "b.jsonl".into()],
            ),
            settings,
        )
    }

    #[test]
    fn an_older_manifests_future_skew_is_read_as_its_option() {
        let mut json = serde_json::to_value(base()).expect("encodes");
        let object = json.as_object_mut().expect("an object");
        object.remove("options");
        object.insert("max_future_skew".into(), serde_json::json!(60_000));
        let old: JobFingerprint = serde_json::from_value(json.clone()).expect("decodes");
        assert_eq!(
            old.options,
            vec![("maximum future skew".to_owned(), "60000ms".to_owned())]
        );
        json["max_future_skew"] = serde_json::Value::Null;
        let unset: JobFingerprint = serde_json::from_value(json).expect("decodes");
        assert!(unset.diff(&base()).is_empty());
    }

    #[test]
    fn identical_jobs_do_not_differ() {
        assert!(base().diff(&base()).is_empty());
        assert!(base().ensure_same(&base()).is_ok());
        assert_eq!(mismatch_message(&[]), "");
    }

    #[test]
    fn each_setting_is_named() {
        let old = base();
        let mut new = base();
        new.window = WindowSpec::sliding(60_000, 10_000);
        new.fields.push("max".into());
        new.policy = Policy::new(2_000, 500, EmitMode::Updates);
        new.options = vec![("maximum future skew".into(), "3600000ms".into())];
        new.settings.insert("time format".into(), "rfc3339".into());
        new.settings.remove("key field");
        new.settings.insert("value field".into(), "amount".into());
        new.input.paths = vec!["other".into()];
        let d = old.diff(&new);
        let rows: Vec<(&str, &str, &str)> = d
            .iter()
            .map(|d| (d.setting.as_str(), d.old.as_str(), d.new.as_str()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (
                    "window",
                    "tumbling 60000ms",
                    "sliding 60000ms every 10000ms"
                ),
                ("aggregations", "count, sum", "count, sum, max"),
                ("watermark delay", "1000ms", "2000ms"),
                ("allowed lateness", "0ms", "500ms"),
                ("emit mode", "final", "updates"),
                ("maximum future skew", "(not set)", "3600000ms"),
                ("key field", "user", "(not set)"),
                ("time format", "epoch-ms", "rfc3339"),
                ("value field", "(not set)", "amount"),
                ("input paths", "logs", "other"),
            ]
        );
    }

    #[test]
    fn partitions_renamed_or_added() {
        let old = base();
        let mut renamed = base();
        renamed.input.partitions[1] = "c.jsonl".into();
        let d = old.diff(&renamed);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].to_string(),
            "name of partition 1 was \"b.jsonl\", is now \"c.jsonl\""
        );

        let mut added = base();
        added.input.partitions.push("c.jsonl".into());
        let d = old.diff(&added);
        assert_eq!(
            d.iter().map(|d| d.setting.as_str()).collect::<Vec<_>>(),
            vec!["partition count", "partition names"]
        );
        assert_eq!((d[0].old.as_str(), d[0].new.as_str()), ("2", "3"));
        assert_eq!(d[1].new, "a.jsonl, b.jsonl, c.jsonl");
    }

    #[test]
    fn long_lists_are_shortened() {
        let many: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
        assert_eq!(
            show_list(&many),
            "p0, p1, p2, p3, p4, p5, p6, p7, … (20 in all)"
        );
        assert_eq!(show_list(&[]), "(none)");
    }

    #[test]
    fn message_names_setting_values_and_rebuild() {
        let old = base();
        let mut new = base();
        new.policy.emit = EmitMode::Updates;
        let err = old.ensure_same(&new).unwrap_err();
        let message = err.to_string();
        assert_eq!(
            message,
            "the job has changed since its checkpoint was taken, so it cannot resume from it:\n  \
             emit mode was \"final\", is now \"updates\"\n\
             a rebuild discards the checkpoints and recomputes from the start of the input"
        );
    }

    #[test]
    fn serde_round_trip() {
        let f = base();
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<JobFingerprint>(&json).unwrap(), f);
    }
}
