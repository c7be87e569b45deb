//! Cluster mode through the engine API, each "process" a thread of this
//! test on loopback: two processes write what one does and report the
//! cluster's totals; processes started with different jobs all refuse,
//! naming the setting; a peer that never comes is named once the connect
//! timeout is up.
//!
//! Killing a real process mid-run is in the root package's
//! `tests/cluster.rs`. Run with `cargo test -p tidemark-engine --test cluster`.

use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidemark_engine::{
    run, EngineConfig, EngineError, Outputs, Parallelism, Stats, Summary, Target,
    DEFAULT_CONNECT_TIMEOUT,
};
use tidemark_sources::{GeneratorConfig, GeneratorSource, Source};
use tidemark_windows::{AggKind, EmitMode, Policy, WindowSpec};

/// A port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hosts(n: usize) -> Vec<String> {
    (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect()
}

fn source() -> Arc<dyn Source> {
    Arc::new(
        GeneratorSource::new(GeneratorConfig {
            events: 6_000,
            keys: 25,
            partitions: 5,
            rate: 0.5,
            disorder: 60,
            late_frac: 0.05,
            late_extra: 1_500,
            seed: 11,
            ..GeneratorConfig::default()
        })
        .unwrap(),
    )
}

fn config(window: WindowSpec) -> EngineConfig {
    let mut c = EngineConfig::new(
        window,
        Policy::new(100, 500, EmitMode::Final),
        vec![AggKind::Count, AggKind::Sum, AggKind::Max],
    );
    c.connect_timeout = Duration::from_secs(20);
    c
}

struct Ran {
    result: Result<Summary, EngineError>,
    results: String,
    late: String,
}

fn run_with(config: EngineConfig, parallelism: Parallelism) -> Ran {
    let (results, rbuf) = Target::buffer();
    let (late, lbuf) = Target::buffer();
    let outputs = Outputs {
        results,
        late,
        ..Outputs::default()
    };
    let result = run(
        source(),
        config,
        parallelism,
        outputs,
        Arc::new(Stats::default()),
    );
    let text =
        |b: &Arc<std::sync::Mutex<Vec<u8>>>| String::from_utf8(b.lock().unwrap().clone()).unwrap();
    Ran {
        result,
        results: text(&rbuf),
        late: text(&lbuf),
    }
}

/// Runs one thread per process, each with its own config; fails the test
/// rather than hang if one does not return in time.
fn cluster(configs: Vec<EngineConfig>, workers: usize, limit: Duration) -> Vec<Ran> {
    let hosts = hosts(configs.len());
    let (tx, rx) = mpsc::channel();
    let n = configs.len();
    for (process, config) in configs.into_iter().enumerate() {
        let tx = tx.clone();
        let hosts = hosts.clone();
        std::thread::spawn(move || {
            let ran = run_with(
                config,
                Parallelism::Cluster {
                    workers,
                    process,
                    hosts,
                },
            );
            let _ = tx.send((process, ran));
        });
    }
    let deadline = Instant::now() + limit;
    let mut out: Vec<Option<Ran>> = (0..n).map(|_| None).collect();
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        let (process, ran) = rx
            .recv_timeout(left)
            .expect("every process returns in time");
        out[process] = Some(ran);
    }
    out.into_iter().map(Option::unwrap).collect()
}

#[test]
fn two_processes_write_what_one_does_and_report_totals() {
    let one = run_with(
        config(WindowSpec::sliding(2_000, 500)),
        Parallelism::Workers(1),
    );
    let single = one.result.unwrap();
    assert!(single.windows_emitted > 0 && !one.late.is_empty());
    for workers in [1, 2] {
        let ran = cluster(
            vec![
                config(WindowSpec::sliding(2_000, 500)),
                config(WindowSpec::sliding(2_000, 500)),
            ],
            workers,
            Duration::from_secs(60),
        );
        assert!(
            ran[0].results == one.results,
            "cluster results differ ({workers} workers)"
        );
        assert_eq!(ran[0].late, one.late);
        // Only process 0 writes.
        assert!(ran[1].results.is_empty() && ran[1].late.is_empty());
        let s0 = ran[0].result.as_ref().unwrap();
        let s1 = ran[1].result.as_ref().unwrap();
        assert_eq!((s0.process, s1.process), (Some(0), Some(1)));
        assert_eq!(s0.records + s1.records, single.records);
        assert!(s0.records > 0 && s1.records > 0, "both processes read");
        assert_eq!(s0.partitions + s1.partitions, 5);
        for s in [s0, s1] {
            let total = s.cluster.as_deref().expect("cluster totals");
            assert_eq!(total.records, single.records);
            assert_eq!(total.windows_emitted, single.windows_emitted);
            assert_eq!(total.late_dropped, single.late_dropped);
            assert_eq!(total.partitions, 5);
            assert_eq!(total.process, None);
            // Every partition ended: the job's watermark is +inf on both.
            assert_eq!(s.final_watermark, None);
        }
    }
}

#[test]
fn different_windows_are_refused_on_every_process_naming_both() {
    let started = Instant::now();
    let ran = cluster(
        vec![
            config(WindowSpec::tumbling(1_000)),
            config(WindowSpec::tumbling(2_000)),
        ],
        1,
        Duration::from_secs(30),
    );
    let messages: Vec<String> = ran
        .iter()
        .map(|r| match &r.result {
            Err(e @ EngineError::Config(_)) => e.to_string(),
            other => panic!("expected a configuration error, got {other:?}"),
        })
        .collect();
    assert_eq!(messages[0], messages[1], "both processes say the same");
    let m = &messages[0];
    assert!(
        m.contains("window") && m.contains("tumbling 1000ms") && m.contains("tumbling 2000ms"),
        "{m}"
    );
    assert!(m.contains("process 0") && m.contains("process 1"), "{m}");
    // Refused before reading: nothing written.
    assert!(ran[0].results.is_empty());
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn different_policies_and_worker_counts_are_refused() {
    let mut lateness = config(WindowSpec::tumbling(1_000));
    lateness.policy.lateness = 900;
    let ran = cluster(
        vec![config(WindowSpec::tumbling(1_000)), lateness],
        1,
        Duration::from_secs(30),
    );
    for r in &ran {
        let m = r.result.as_ref().unwrap_err().to_string();
        assert!(m.contains("lateness is \"500ms\" on process 0"), "{m}");
        assert!(m.contains("\"900ms\" on process 1"), "{m}");
    }

    // Workers per process must agree too: run the two processes by hand.
    let hosts = hosts(2);
    let (tx, rx) = mpsc::channel();
    for (process, workers) in [(0usize, 1usize), (1, 2)] {
        let tx = tx.clone();
        let hosts = hosts.clone();
        std::thread::spawn(move || {
            let ran = run_with(
                config(WindowSpec::tumbling(1_000)),
                Parallelism::Cluster {
                    workers,
                    process,
                    hosts,
                },
            );
            let _ = tx.send(ran);
        });
    }
    for _ in 0..2 {
        let ran = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let m = ran.result.unwrap_err().to_string();
        assert!(m.contains("workers per process is \"1\""), "{m}");
    }
}

#[test]
fn a_peer_that_never_comes_is_named_after_the_connect_timeout() {
    let timeout = Duration::from_millis(400);
    // Process 0 waits for process 1 to connect; process 1 tries to reach
    // process 0. Nobody is at the other address in either case.
    for (process, expect) in [(0, "did not connect"), (1, "")] {
        let hosts = hosts(2);
        let other = &hosts[1 - process];
        let mut c = config(WindowSpec::tumbling(1_000));
        c.connect_timeout = timeout;
        let started = Instant::now();
        let (tx, rx) = mpsc::channel();
        let h = hosts.clone();
        std::thread::spawn(move || {
            let _ = tx.send(run_with(
                c,
                Parallelism::Cluster {
                    workers: 1,
                    process,
                    hosts: h,
                },
            ));
        });
        let ran = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the connect timeout ends the wait");
        let elapsed = started.elapsed();
        assert!(elapsed >= timeout, "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        match ran.result {
            Err(EngineError::Unreachable { peers, timeout: t }) => {
                assert_eq!(t, timeout);
                assert_eq!(peers.len(), 1, "{peers:?}");
                let named = format!("process {} ({other})", 1 - process);
                assert!(peers[0].starts_with(&named), "{peers:?}");
                assert!(peers[0].contains(expect), "{peers:?}");
            }
            other => panic!("expected Unreachable, got {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(60));
}

#[test]
fn a_stranger_at_the_peer_address_is_not_taken_for_a_peer() {
    // Something that accepts connections but never answers the hello:
    // process 1 keeps trying until the timeout and names it.
    let stranger = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = stranger.local_addr().unwrap().to_string();
    let hold = std::thread::spawn(move || {
        let mut kept = Vec::new();
        stranger.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if let Ok((s, _)) = stranger.accept() {
                kept.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let mut c = config(WindowSpec::tumbling(1_000));
    c.connect_timeout = Duration::from_millis(600);
    let ran = run_with(
        c,
        Parallelism::Cluster {
            workers: 1,
            process: 1,
            hosts: vec![addr.clone(), format!("127.0.0.1:{}", free_port())],
        },
    );
    match ran.result {
        Err(EngineError::Unreachable { peers, .. }) => {
            assert!(
                peers[0].starts_with(&format!("process 0 ({addr})")),
                "{peers:?}"
            );
            assert!(peers[0].contains("no answer"), "{peers:?}");
        }
        other => panic!("expected Unreachable, got {:?}", other.map(|_| ())),
    }
    hold.join().unwrap();
}

#[test]
fn one_different_process_of_three_makes_all_three_refuse() {
    let mut odd = config(WindowSpec::tumbling(1_000));
    odd.policy.emit = EmitMode::Updates;
    let ran = cluster(
        vec![
            config(WindowSpec::tumbling(1_000)),
            odd,
            config(WindowSpec::tumbling(1_000)),
        ],
        1,
        Duration::from_secs(30),
    );
    for (process, r) in ran.iter().enumerate() {
        match &r.result {
            Err(EngineError::Config(m)) => {
                assert!(m.contains("emit mode"), "process {process}: {m}");
                assert!(m.contains("on process 1"), "process {process}: {m}");
            }
            other => panic!("process {process}: {:?}", other.as_ref().map(|_| ())),
        }
    }
}
