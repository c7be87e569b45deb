//! The channel source under threads: concurrent pushers to different
//! partitions with backpressure, reads that never block, dense offsets in
//! push order, close and end, and per-partition content that does not
//! depend on how pushes to different partitions interleave or how reads
//! batch them.
//!
//! Run: `cargo test -p tidemark-sources --test channel`

use std::sync::mpsc;
use std::time::Duration;

use tidemark_sources::{
    ChannelSource, Decoded, PartitionReader, PushError, ReadStatus, Record, Source, Value,
};

/// The events partition `p` gets: (key, time, value), a fixed sequence.
fn events(p: u32, n: u64) -> Vec<(String, i64, i64)> {
    (0..n)
        .map(|i| {
            let i = i as i64;
            (
                format!("k{}", (i * 7 + p as i64) % 13),
                1_000 * i - (i % 5) * 300,
                i * 3 + p as i64,
            )
        })
        .collect()
}

/// Reads every partition round-robin, `batch` at a time, as an engine worker
/// would, until all have ended.
fn read_round_robin(readers: &mut [Box<dyn PartitionReader>], batch: usize) -> Vec<Vec<Record>> {
    let mut out: Vec<Vec<Record>> = readers.iter().map(|_| Vec::new()).collect();
    let mut ended = vec![false; readers.len()];
    let mut buf: Vec<Decoded> = Vec::new();
    while ended.iter().any(|e| !e) {
        for (p, reader) in readers.iter_mut().enumerate() {
            if ended[p] {
                continue;
            }
            buf.clear();
            let status = reader.read(batch, &mut buf).unwrap();
            assert!(buf.len() <= batch);
            if status == ReadStatus::More {
                assert_eq!(buf.len(), batch);
            }
            out[p].extend(buf.drain(..).map(Result::unwrap));
            match status {
                ReadStatus::End => ended[p] = true,
                ReadStatus::CaughtUp => std::thread::yield_now(),
                ReadStatus::More => {}
            }
        }
    }
    out
}

fn check_partition(records: &[Record], p: u32, n: u64) {
    assert_eq!(records.len() as u64, n, "partition {p}");
    for (i, (r, (key, time, value))) in records.iter().zip(events(p, n)).enumerate() {
        assert_eq!(
            (r.partition, r.offset, r.key.as_str(), r.event_time, r.value),
            (p, i as u64, key.as_str(), time, Value::Int(value)),
        );
    }
}

#[test]
fn concurrent_pushers_to_different_partitions_with_backpressure() {
    const PARTITIONS: u32 = 4;
    const N: u64 = 20_000;
    // A small capacity: pushers block on a full partition many times.
    let source = ChannelSource::new(PARTITIONS, 64).unwrap();
    let mut readers: Vec<_> = (0..PARTITIONS)
        .map(|p| source.open(p, 0).unwrap())
        .collect();
    let pushers: Vec<_> = source
        .senders()
        .unwrap()
        .into_iter()
        .map(|sender| {
            std::thread::spawn(move || {
                let p = sender.partition();
                for (i, (key, time, value)) in events(p, N).into_iter().enumerate() {
                    assert_eq!(sender.push(key, time, Value::Int(value)), Ok(i as u64));
                }
                sender.close();
            })
        })
        .collect();
    let got = read_round_robin(&mut readers, 100);
    for pusher in pushers {
        pusher.join().unwrap();
    }
    for (p, records) in (0..).zip(&got) {
        check_partition(records, p, N);
    }
}

#[test]
fn several_threads_pushing_one_partition_still_get_dense_offsets() {
    let source = ChannelSource::new(1, 32).unwrap();
    let sender = source.sender(0).unwrap();
    let mut reader = source.open(0, 0).unwrap();
    let pushers: Vec<_> = (0..3)
        .map(|t| {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    sender.push(format!("t{t}"), i, Value::Int(i)).unwrap();
                }
            })
        })
        .collect();
    let closer = std::thread::spawn(move || {
        for pusher in pushers {
            pusher.join().unwrap();
        }
        sender.close();
    });
    let got = read_round_robin(std::slice::from_mut(&mut reader), 17).remove(0);
    closer.join().unwrap();
    assert!(got.iter().enumerate().all(|(i, r)| r.offset == i as u64));
    // Each thread's own pushes keep their order.
    for t in 0..3 {
        let times: Vec<i64> = got
            .iter()
            .filter(|r| r.key == format!("t{t}"))
            .map(|r| r.event_time)
            .collect();
        assert_eq!(times, (0..2_000).collect::<Vec<_>>());
    }
}

/// Runs `f` on another thread and fails if it does not return in time.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} blocked"))
}

#[test]
fn read_never_blocks() {
    let source = ChannelSource::new(2, 1).unwrap();
    let senders = source.senders().unwrap();
    let mut empty = source.open(0, 0).unwrap();
    let mut full = source.open(1, 0).unwrap();
    // Nothing pushed: caught up at once, however often.
    let empty = within("a read of an empty partition", move || {
        let mut out = Vec::new();
        for _ in 0..1000 {
            assert_eq!(empty.read(10, &mut out).unwrap(), ReadStatus::CaughtUp);
        }
        assert!(out.is_empty());
        empty
    });
    // A pusher waits on the full partition 1; the reader still returns
    // what is there without waiting for the pusher.
    senders[1].push("a", 1, Value::Int(1)).unwrap();
    let blocked = senders[1].clone();
    let pusher = std::thread::spawn(move || {
        let pushed = blocked.push("b", 2, Value::Int(2));
        blocked.close();
        pushed
    });
    let full = within("a read while a pusher waits", move || {
        let mut out = Vec::new();
        let status = full.read(10, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert!(matches!(status, ReadStatus::CaughtUp | ReadStatus::More));
        full
    });
    assert_eq!(pusher.join().unwrap(), Ok(1));
    // And the partition still ends normally.
    let mut readers = vec![full];
    let rest = read_round_robin(&mut readers, 10).remove(0);
    assert_eq!(rest.iter().map(|r| r.offset).collect::<Vec<_>>(), [1]);
    drop(empty);
}

#[test]
fn content_does_not_depend_on_interleaving_or_batching() {
    const PARTITIONS: u32 = 3;
    const N: u64 = 500;
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut reference: Option<Vec<Vec<Record>>> = None;
    for batch in [1, 7, 1024] {
        for _round in 0..3 {
            let source = ChannelSource::new(PARTITIONS, 10_000).unwrap();
            let senders = source.senders().unwrap();
            let mut pending: Vec<_> = (0..PARTITIONS).map(|p| events(p, N).into_iter()).collect();
            let mut readers: Vec<_> = (0..PARTITIONS)
                .map(|p| source.open(p, 0).unwrap())
                .collect();
            let mut got: Vec<Vec<Record>> = vec![Vec::new(); PARTITIONS as usize];
            let mut buf = Vec::new();
            // Pushes to random partitions in random runs, reads in between.
            loop {
                let open: Vec<usize> = (0..pending.len())
                    .filter(|&p| !senders[p].is_closed())
                    .collect();
                if open.is_empty() {
                    break;
                }
                let p = open[next() as usize % open.len()];
                for _ in 0..=next() % 9 {
                    match pending[p].next() {
                        Some((key, time, value)) => {
                            senders[p].try_push(key, time, Value::Int(value)).unwrap();
                        }
                        None => senders[p].close(),
                    }
                }
                let r = next() as usize % readers.len();
                buf.clear();
                readers[r].read(batch, &mut buf).unwrap();
                got[r].extend(buf.drain(..).map(Result::unwrap));
            }
            for (p, rest) in read_round_robin(&mut readers, batch)
                .into_iter()
                .enumerate()
            {
                got[p].extend(rest);
            }
            for (p, records) in (0..).zip(&got) {
                check_partition(records, p, N);
            }
            match &reference {
                None => reference = Some(got),
                Some(reference) => assert_eq!(&got, reference, "batch {batch}"),
            }
        }
    }
}

#[test]
fn pushes_after_the_job_is_gone_fail_instead_of_hanging() {
    let source = ChannelSource::new(1, 1).unwrap();
    let sender = source.sender(0).unwrap();
    let reader = source.open(0, 0).unwrap();
    sender.push("a", 1, Value::Int(1)).unwrap();
    let blocked = std::thread::spawn(move || sender.push("b", 2, Value::Int(2)));
    std::thread::sleep(Duration::from_millis(20));
    // The job drops its source and readers.
    drop(reader);
    drop(source);
    assert_eq!(
        blocked.join().unwrap(),
        Err(PushError::Disconnected { partition: 0 })
    );
}
