//! sockperf's message format in ping and pong, over loopback UDP and TCP (no
//! privileges needed; the tests against the real sockperf live in the CLI
//! crate's lab tests).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use hftnet_bench::clock::Clock;
use hftnet_bench::pingpong::{
    PingConfig, PingConfigError, PongConfig, PongOutcome, Protocol, run_ping, run_pong,
};
use hftnet_io::{Endpoint, Role, Transport, dispatch};
use hftnet_wire::sockperf::{Flags, HEADER_LEN, Packet, Repr};

fn sockperf_pong(uri: &str) -> (SocketAddr, Arc<AtomicBool>, thread::JoinHandle<PongOutcome>) {
    let mut server = Endpoint::parse(uri).unwrap().open(Role::Server).unwrap();
    let addr = server.capabilities().local.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let cfg = PongConfig {
        protocol: Protocol::Sockperf,
        ..PongConfig::default()
    };
    let h = thread::spawn(move || dispatch!(&mut server, t => run_pong(t, &cfg, &s2)).unwrap());
    (addr, stop, h)
}

fn ping_cfg(count: u64) -> PingConfig {
    PingConfig {
        count: Some(count),
        warmup: 50,
        reply_timeout: Duration::from_secs(2),
        protocol: Protocol::Sockperf,
        ..PingConfig::default()
    }
}

#[test]
fn sockperf_ping_against_sockperf_pong_udp_and_tcp() {
    for uri in [
        "udp://127.0.0.1:0",
        "udp://127.0.0.1:0?rx=spin",
        "tcp://127.0.0.1:0?framing=sockperf",
    ] {
        let (addr, stop, h) = sockperf_pong(uri);
        let scheme = &uri[..3];
        let query = uri.split_once('?').map_or("", |(_, q)| q);
        let mut client = Endpoint::parse(&format!("{scheme}://{addr}?{query}"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        let out = run_ping(&mut client, &ping_cfg(1000), Clock::new()).unwrap();
        drop(client);
        stop.store(true, Ordering::Relaxed);
        let pong = h.join().unwrap();
        assert_eq!((out.sent, out.warmup_sent), (1000, 50), "{uri}");
        assert_eq!(out.received, 1000, "{uri}: {out:?}");
        assert_eq!(out.rtt.len(), 1000);
        assert_eq!(
            out.lost + out.duplicated + out.foreign + out.corrupted + out.truncated,
            0,
            "{uri}: {out:?}"
        );
        assert_eq!(
            (pong.received, pong.echoed),
            (1050, 1050),
            "{uri}: {pong:?}"
        );
        assert_eq!(pong.malformed + pong.warmup + pong.not_requested, 0);
        assert_eq!(pong.bytes, 1050 * 64);
    }
}

#[test]
fn sockperf_ping_size_is_bounded_by_its_header() {
    let c = PingConfig {
        size: 13,
        ..ping_cfg(1)
    };
    assert_eq!(
        c.validate(65_507),
        Err(PingConfigError::Size {
            size: 13,
            min: HEADER_LEN,
            max: 65_507
        })
    );
    let c = PingConfig { size: 14, ..c };
    assert_eq!(c.validate(65_507), Ok(()));
}

fn message(seq: u64, flags: u16, len: usize) -> Vec<u8> {
    let mut m = vec![0x5a; len];
    Repr {
        seq,
        flags: Flags(flags),
        length: len as u32,
    }
    .emit(&mut Packet::new_unchecked(&mut m[..]));
    m
}

/// A hand-made client sends every kind of message sockperf's clients send,
/// and some broken ones: only CLIENT|PONG messages are answered, with CLIENT
/// cleared; every other message is counted by kind.
#[test]
fn sockperf_pong_answers_only_pong_requests() {
    let (addr, stop, h) = sockperf_pong("udp://127.0.0.1:0");
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut long_field = message(4, 3, 40);
    long_field[13] = 41; // says 41 bytes, the datagram has 40
    let mut short_field = message(5, 3, 40);
    short_field[13] = 13; // shorter than the header
    let sends: Vec<Vec<u8>> = vec![
        message(1, 3, 64),         // ping-pong: answered
        message(2, 1, 64),         // under-load / throughput: no PONG
        message(3, 7, 64),         // warm-up
        long_field,                // malformed
        short_field,               // malformed
        vec![0, 1, 2, 3, 4, 5, 6], // malformed: shorter than the header
        message(6, 2, 64),         // a server's message (no CLIENT): not answered
        message(7, 3, HEADER_LEN), // header only: answered
    ];
    for m in &sends {
        c.send_to(m, addr).unwrap();
    }
    let mut buf = [0u8; 256];
    let mut replies = Vec::new();
    for _ in 0..2 {
        let (n, _) = c.recv_from(&mut buf).unwrap();
        replies.push(buf[..n].to_vec());
    }
    let mut expect1 = message(1, 2, 64);
    expect1[HEADER_LEN..].fill(0x5a);
    assert_eq!(replies[0], expect1, "same bytes, CLIENT cleared");
    assert_eq!(replies[1], message(7, 2, HEADER_LEN));
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(c.recv_from(&mut buf).is_err(), "nothing else is answered");
    stop.store(true, Ordering::Relaxed);
    let pong = h.join().unwrap();
    assert_eq!(pong.received, 8, "{pong:?}");
    assert_eq!(pong.echoed, 2, "{pong:?}");
    assert_eq!(pong.malformed, 3, "{pong:?}");
    assert_eq!(pong.warmup, 1, "{pong:?}");
    assert_eq!(pong.not_requested, 2, "{pong:?}");
    assert_eq!(pong.bytes, 64 + HEADER_LEN as u64);
}

/// A server that returns the bytes unchanged (CLIENT still set) is not a
/// sockperf server: nothing is measured and the peer is declared silent.
#[test]
fn an_echo_that_keeps_the_client_flag_is_not_a_reply() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let h = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !s2.load(Ordering::Relaxed) {
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                server.send_to(&buf[..n], from).unwrap();
            }
        }
    });
    let mut client = Endpoint::parse(&format!("udp://{addr}"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let cfg = PingConfig {
        warmup: 0,
        reply_timeout: Duration::from_millis(100),
        ..ping_cfg(10)
    };
    let out = run_ping(&mut client, &cfg, Clock::new()).unwrap();
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert_eq!(out.received, 0, "{out:?}");
    assert_eq!(out.foreign, 3, "{out:?}");
    assert!(out.aborted.is_some(), "{out:?}");
}
