//! Tests of the cluster connections: the stream a broken connection
//! leaves to Timely, and how fingerprint differences are named.

use super::*;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use super::hello::compare;
use timely::communication::allocator::zero_copy::stream::Stream;
use timely::communication::networking::MessageHeader;

fn message(channel: usize, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MessageHeader {
        channel,
        source: 1,
        target_lower: 0,
        target_upper: 1,
        length: payload.len(),
        seqno: 0,
    }
    .write_to(&mut out)
    .unwrap();
    out.extend_from_slice(payload);
    out
}

/// Timely's end-of-stream header: all fields zero.
fn end_of_stream() -> Vec<u8> {
    let mut out = Vec::new();
    MessageHeader {
        channel: 0,
        source: 0,
        target_lower: 0,
        target_upper: 0,
        length: 0,
        seqno: 0,
    }
    .write_to(&mut out)
    .unwrap();
    out
}

/// A connected pair: what the test writes to `.0` is read through the
/// `PeerStream` `.1`.
fn pair() -> (TcpStream, PeerStream, Arc<Link>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = TcpStream::connect(addr).unwrap();
    let (reader, _) = listener.accept().unwrap();
    let link = Arc::new(Link {
        hosts: vec!["here".into(), addr.to_string()],
        lost: AtomicBool::new(false),
        loss: Mutex::new(None),
    });
    let stream = PeerStream::new(reader, 1, Arc::clone(&link));
    (writer, stream, link)
}

/// Reads to the end in small pieces, as a slow reader would.
fn read_all(stream: &mut PeerStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut piece = [0u8; 7];
    loop {
        match stream.read(&mut piece).unwrap() {
            0 => return out,
            n => out.extend_from_slice(&piece[..n]),
        }
    }
}

#[test]
fn a_clean_end_passes_through_and_loses_nothing() {
    let (mut w, mut r, link) = pair();
    let mut sent = message(3, b"hello");
    sent.extend(message(4, &[9; 100_000]));
    sent.extend(end_of_stream());
    w.write_all(&sent).unwrap();
    drop(w);
    assert_eq!(read_all(&mut r), sent);
    assert!(!link.is_lost());
}

#[test]
fn a_broken_connection_ends_between_whole_messages() {
    let (mut w, mut r, link) = pair();
    let whole = [message(3, b"one"), message(5, b"two")].concat();
    let half = message(6, b"three, never finished");
    w.write_all(&whole).unwrap();
    w.write_all(&half[..half.len() - 5]).unwrap();
    drop(w);
    let got = read_all(&mut r);
    // The whole messages, then a made-up end of stream; the half
    // message is dropped.
    assert_eq!(got, [whole, end_of_stream()].concat());
    assert!(link.is_lost());
    match link.error() {
        EngineError::PeerLost {
            process, reason, ..
        } => {
            assert_eq!(process, 1);
            assert!(reason.contains("closed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_broken_connection_inside_a_header_ends_cleanly_too() {
    let (mut w, mut r, link) = pair();
    let whole = message(3, b"one");
    w.write_all(&whole).unwrap();
    w.write_all(&message(4, b"x")[..10]).unwrap();
    drop(w);
    assert_eq!(read_all(&mut r), [whole, end_of_stream()].concat());
    assert!(link.is_lost());
}

#[test]
fn writing_to_a_gone_peer_is_recorded_not_raised() {
    let (w, r, link) = pair();
    drop(w);
    let mut r = r;
    // The first writes may still be accepted by the kernel; keep
    // writing until the reset shows.
    for _ in 0..1_000 {
        assert_eq!(r.write(&[1; 4096]).unwrap(), 4096);
        r.flush().unwrap();
        if link.is_lost() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(link.is_lost());
    assert_eq!(r.write(b"more").unwrap(), 4);
    r.shutdown(Shutdown::Both).unwrap();
}

#[test]
fn fingerprints_name_the_first_difference_lower_process_first() {
    let hosts = vec!["a:1".to_owned(), "b:2".to_owned()];
    let f = |w: &str| {
        vec![
            ("window".to_owned(), w.to_owned()),
            ("delay".to_owned(), "0ms".to_owned()),
        ]
    };
    assert!(compare(&hosts, (0, &f("x")), (1, &f("x"))).is_ok());
    let one = compare(&hosts, (0, &f("x")), (1, &f("y")))
        .unwrap_err()
        .to_string();
    let other = compare(&hosts, (1, &f("y")), (0, &f("x")))
        .unwrap_err()
        .to_string();
    assert_eq!(one, other);
    assert!(
        one.contains("window is \"x\" on process 0 (a:1) but \"y\" on process 1 (b:2)"),
        "{one}"
    );
    let mut extra = f("x");
    extra.push(("input".into(), "files".into()));
    let m = compare(&hosts, (0, &f("x")), (1, &extra))
        .unwrap_err()
        .to_string();
    assert!(m.contains("input is \"(not set)\" on process 0"), "{m}");
}
