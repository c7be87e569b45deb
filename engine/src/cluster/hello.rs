//! The job fingerprint each process of a cluster computes, the comparison
//! that names the first setting on which two processes differ, and the
//! hello that carries the fingerprint over a new connection.

use std::io::{self, Read};
use std::net::TcpStream;

use tidemark_sources::Source;

use crate::aggregator::JobAggregator;
use crate::checkpoint::{InputIdentity, JobFingerprint};
use crate::config::EngineConfig;
use crate::error::{EngineError, Result};

/// The first bytes of a hello.
const MAGIC: &[u8; 16] = b"tidemark-cluster";
/// The version of the hello and of what follows it.
const PROTOCOL: u32 = 1;
/// The largest fingerprint a hello may carry.
const MAX_FINGERPRINT: u32 = 1 << 20;

/// The settings that must be equal on every process of a cluster, as
/// `(name, value)` pairs in a fixed order.
pub(crate) type Fingerprint = Vec<(String, String)>;

/// The fingerprint of a job in a cluster: what the processes must agree
/// on to run it together (engine version, host list, workers per process,
/// aggregator type, the engine options marked agreed in their declaration
/// ([`Options::agreed`](crate::Options::agreed): bad records, idle
/// release), start positions and state, checkpointing, a reprocessing
/// start), then what the job is, as a
/// checkpoint's [`JobFingerprint::named`] gives it (window, aggregations,
/// delay, lateness, emit mode, the identity options, with checkpoints the caller's
/// named settings, the input and its partition count, under the same
/// names).
pub(crate) fn fingerprint<A: JobAggregator>(
    config: &EngineConfig<A>,
    source: &dyn Source,
    partitions: usize,
    workers: usize,
    hosts: &[String],
) -> Fingerprint {
    let start = if config.start.is_empty() {
        "every partition from offset 0".to_owned()
    } else {
        let all: Vec<String> = config
            .start
            .iter()
            .map(|(p, pos)| match pos.stream_time {
                Some(t) => format!("{p}@{} (stream time {t})", pos.offset),
                None => format!("{p}@{}", pos.offset),
            })
            .collect();
        all.join(", ")
    };
    let checkpoints = match &config.checkpoint {
        None => "none".to_owned(),
        Some(c) => format!(
            "every {} (keep {}{})",
            c.every,
            c.keep,
            if c.rebuild { ", rebuild" } else { "" }
        ),
    };
    let emit_from = match &config.emit_from {
        None => "the start".to_owned(),
        Some(crate::config::EmitFrom::Time(t)) => format!("stream time {t}"),
        Some(crate::config::EmitFrom::Offsets(o)) => {
            let all: Vec<String> = o.iter().map(|(p, o)| format!("{p}:{o}")).collect();
            format!("offsets {}", all.join(","))
        }
    };
    // What the job is, under the names a checkpoint's fingerprint gives
    // the same settings (the input as this process's source describes it).
    let (input, settings) = match &config.checkpoint {
        Some(c) if !c.input.paths.is_empty() => (c.input.clone(), c.settings.clone()),
        Some(c) => (identity(source, partitions), c.settings.clone()),
        None => (identity(source, partitions), Default::default()),
    };
    let job = JobFingerprint::of(config, input, settings);
    let mut pairs: Vec<(String, String)> = vec![
        (
            "engine version".into(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        ("host list".into(), hosts.join(" ")),
        ("workers per process".into(), workers.to_string()),
        (
            "aggregator type".into(),
            std::any::type_name::<A>().to_owned(),
        ),
    ];
    pairs.extend(config.options.agreed());
    let run: [(&str, String); 4] = [
        ("start positions", start),
        (
            "initial state",
            if config.initial_state.is_some() {
                "given"
            } else {
                "none"
            }
            .to_owned(),
        ),
        // Process 0 takes the checkpoints from every worker's cut reports:
        // a process without them, or with another interval, would leave
        // it waiting for reports that never come.
        ("checkpoints", checkpoints),
        ("output from", emit_from),
    ];
    pairs.extend(run.into_iter().map(|(k, v)| (k.to_owned(), v)));
    // (After how the processes run it: a process without checkpoints has
    // none of the named settings a checkpoint fingerprint keeps, and the
    // checkpoint setting is the difference to name then.)
    pairs.extend(job.named());
    pairs
}

/// The input as a source describes it, with partitions named by number.
fn identity(source: &dyn Source, partitions: usize) -> InputIdentity {
    InputIdentity::new(
        vec![source.describe()],
        (0..partitions).map(|p| p.to_string()).collect(),
    )
}

/// How error messages name process `index`.
pub(super) fn name(hosts: &[String], index: usize) -> String {
    match hosts.get(index) {
        Some(host) => format!("process {index} ({host})"),
        None => format!("process {index}"),
    }
}

/// The first setting on which two processes' fingerprints differ, as an
/// error naming it with both values (lower process first, so that both
/// processes print the same text).
pub(super) fn compare(
    hosts: &[String],
    (a, fa): (usize, &Fingerprint),
    (b, fb): (usize, &Fingerprint),
) -> Result<()> {
    let ((lo, flo), (hi, fhi)) = if a < b {
        ((a, fa), (b, fb))
    } else {
        ((b, fb), (a, fa))
    };
    let missing = || "(not set)".to_owned();
    let mut names: Vec<&String> = flo.iter().map(|(k, _)| k).collect();
    for (k, _) in fhi {
        if !names.contains(&k) {
            names.push(k);
        }
    }
    for setting in names {
        let get = |f: &Fingerprint| f.iter().find(|(k, _)| k == setting).map(|(_, v)| v.clone());
        let (vlo, vhi) = (get(flo), get(fhi));
        if vlo != vhi {
            return Err(EngineError::Config(format!(
                "the processes of the cluster were started with different jobs: {setting} is \"{}\" on {} but \"{}\" on {}; start every process with the same job",
                vlo.unwrap_or_else(missing),
                name(hosts, lo),
                vhi.unwrap_or_else(missing),
                name(hosts, hi),
            )));
        }
    }
    Ok(())
}

pub(super) fn hello(me: usize, processes: usize, fingerprint: &Fingerprint) -> Vec<u8> {
    let body = serde_json::to_vec(fingerprint).unwrap_or_default();
    let mut out = Vec::with_capacity(MAGIC.len() + 24 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&PROTOCOL.to_be_bytes());
    out.extend_from_slice(&(me as u64).to_be_bytes());
    out.extend_from_slice(&(processes as u64).to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A peer's hello: its index and fingerprint.
pub(super) struct Hello {
    pub(super) index: usize,
    pub(super) fingerprint: Fingerprint,
}

/// Why a hello could not be read.
pub(super) enum BadHello {
    /// The connection failed or timed out.
    Io(io::Error),
    /// The other end is not a tidemark process of this protocol version.
    Foreign(String),
}

pub(super) fn read_hello(stream: &mut TcpStream) -> std::result::Result<Hello, BadHello> {
    let mut head = [0u8; 16 + 4 + 8 + 8 + 4];
    stream.read_exact(&mut head).map_err(BadHello::Io)?;
    if &head[..16] != MAGIC {
        return Err(BadHello::Foreign(
            "it does not speak the tidemark cluster protocol".into(),
        ));
    }
    let u32_at = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let protocol = u32_at(16);
    if protocol != PROTOCOL {
        return Err(BadHello::Foreign(format!(
            "it speaks version {protocol} of the tidemark cluster protocol, this process version {PROTOCOL}"
        )));
    }
    let index = usize::try_from(u64_at(20)).unwrap_or(usize::MAX);
    let len = u32_at(36);
    if len > MAX_FINGERPRINT {
        return Err(BadHello::Foreign("its job description is too long".into()));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).map_err(BadHello::Io)?;
    let fingerprint = serde_json::from_slice(&body)
        .map_err(|_| BadHello::Foreign("its job description is not readable".into()))?;
    Ok(Hello { index, fingerprint })
}
