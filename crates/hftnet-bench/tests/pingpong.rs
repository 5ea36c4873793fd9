//! Ping against pong and against misbehaving echo servers, over loopback UDP
//! and TCP (no privileges needed; the namespace lab tests live in the CLI crate).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use hftnet_bench::clock::Clock;
use hftnet_bench::pingpong::{PingConfig, PongConfig, run_ping, run_pong};
use hftnet_io::{Endpoint, Role, Transport, dispatch};

fn pong_server(
    uri: &str,
) -> (
    SocketAddr,
    Arc<AtomicBool>,
    thread::JoinHandle<hftnet_bench::pingpong::PongOutcome>,
) {
    let mut server = Endpoint::parse(uri).unwrap().open(Role::Server).unwrap();
    let addr = server.capabilities().local.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let h = thread::spawn(move || {
        dispatch!(&mut server, t => run_pong(t, &PongConfig::default(), &s2)).unwrap()
    });
    (addr, stop, h)
}

fn cfg(count: u64) -> PingConfig {
    PingConfig {
        count: Some(count),
        warmup: 100,
        reply_timeout: Duration::from_secs(2),
        ..PingConfig::default()
    }
}

#[test]
fn udp_and_tcp_ping_pong_each_strategy() {
    for scheme in ["udp", "tcp"] {
        for rx in ["block", "spin", "adaptive"] {
            let (addr, stop, h) = pong_server(&format!("{scheme}://127.0.0.1:0?rx={rx}"));
            let mut client = Endpoint::parse(&format!("{scheme}://{addr}?rx={rx}"))
                .unwrap()
                .open(Role::Client)
                .unwrap();
            let out = run_ping(&mut client, &cfg(2000), Clock::new()).unwrap();
            drop(client);
            stop.store(true, Ordering::Relaxed);
            let pong = h.join().unwrap();
            assert_eq!(out.sent, 2000, "{scheme}/{rx}");
            assert_eq!(out.warmup_sent, 100);
            assert_eq!(out.received, 2000, "{scheme}/{rx}: {out:?}");
            assert_eq!(
                out.lost + out.duplicated + out.foreign + out.truncated,
                0,
                "{scheme}/{rx}: {out:?}"
            );
            assert_eq!(out.rtt.len(), 2000);
            let s = out.rtt.summary().unwrap();
            assert!(
                s.min > 0 && s.min <= s.p50 && s.p50 <= s.p99 && s.p99 <= s.max,
                "{s:?}"
            );
            assert!(s.p50 < 50_000_000, "loopback p50 under 50 ms: {s:?}");
            assert_eq!(
                pong.echoed, 2100,
                "{scheme}/{rx}: pong echoed warm-up and measured probes"
            );
            assert_eq!(pong.bytes, 2100 * 64);
        }
    }
}

#[test]
fn fixed_rate_measures_from_the_schedule() {
    // 2,000/s with 8 MB receive buffers: at 20,000/s a descheduled end on a
    // loaded 2-vCPU machine overflowed the default buffers (256 of 4000 lost).
    let (addr, stop, h) = pong_server("udp://127.0.0.1:0?rx=spin&rcvbuf=8M");
    let mut client = Endpoint::parse(&format!("udp://{addr}?rx=spin&rcvbuf=8M"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let c = PingConfig {
        rate: Some(2_000),
        count: Some(400),
        warmup: 20,
        ..cfg(0)
    };
    let t = std::time::Instant::now();
    let out = run_ping(&mut client, &c, Clock::new()).unwrap();
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert_eq!(out.sent, 400);
    assert_eq!(out.received, 400, "{out:?}");
    // 420 probes at 2 kpps take at least 0.21 s: the timetable was kept, not raced.
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}

/// An echo server that misbehaves: answers with junk, a short and a long
/// datagram, and every reply twice.
#[test]
fn foreign_truncated_and_duplicate_replies_are_counted() {
    let (addr, stop, h) = scripted_server(|_, bytes, reply| {
        reply(b"not a probe at all, just some bytes");
        reply(&bytes[..10]);
        reply(&[0xAB; 3000]);
        reply(bytes);
        reply(bytes);
    });
    let mut client = Endpoint::parse(&format!("udp://{addr}"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let out = run_ping(
        &mut client,
        &PingConfig {
            count: Some(50),
            warmup: 0,
            ..cfg(0)
        },
        Clock::new(),
    )
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert_eq!(out.received, 50, "{out:?}");
    assert_eq!(out.lost, 0);
    // Each probe's junk and 10-byte runt arrive before its echo: foreign.
    assert_eq!(out.foreign, 2 * 50, "{out:?}");
    // 3000 bytes overflow the 2048-byte slot.
    assert_eq!(out.truncated, 50, "{out:?}");
    // The second echo of probe k is read while waiting for k+1; the last one is never read.
    assert_eq!(out.duplicated, 49, "{out:?}");
    assert_eq!(out.corrupted, 0);
    assert_eq!(out.rtt.len(), 50);
}

#[test]
fn unreachable_peer_is_reported_not_hung() {
    // A port nobody listens on: connected UDP gets ICMP port unreachable.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut client = Endpoint::parse(&format!("udp://127.0.0.1:{port}"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let c = PingConfig {
        count: Some(1000),
        warmup: 0,
        reply_timeout: Duration::from_millis(100),
        ..cfg(0)
    };
    let t = std::time::Instant::now();
    let out = run_ping(&mut client, &c, Clock::new()).unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "gave up in time: {:?}",
        t.elapsed()
    );
    assert!(out.aborted.is_some(), "{out:?}");
    assert_eq!(out.received, 0);
    assert_eq!(out.lost, out.sent);
    assert!(
        out.recv_errors > 0,
        "ICMP port unreachable surfaced: {out:?}"
    );
    assert!(
        out.first_error.as_deref().unwrap_or("").contains("refused"),
        "{out:?}"
    );
}

/// A TCP echo server that goes away: ping stops at once and says the
/// connection is gone, in closed loop and at a fixed rate, instead of
/// waiting for three reply timeouts and blaming a silent peer.
#[test]
fn a_closed_tcp_connection_ends_ping_with_the_reason() {
    for rate in [None, Some(1000)] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            // Echo ten framed probes of 64 bytes, then close.
            let mut buf = [0u8; 68];
            for _ in 0..10 {
                s.read_exact(&mut buf).unwrap();
                s.write_all(&buf).unwrap();
            }
        });
        let mut client = Endpoint::parse(&format!("tcp://{addr}"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        let c = PingConfig {
            count: Some(100_000),
            warmup: 0,
            rate,
            reply_timeout: Duration::from_secs(5),
            ..cfg(0)
        };
        let out = run_ping(&mut client, &c, Clock::new()).unwrap();
        server.join().unwrap();
        let why = out.aborted.clone().unwrap_or_default();
        assert!(why.contains("the connection is gone"), "{rate:?}: {out:?}");
        assert!(out.received >= 9 && out.received <= 10, "{rate:?}: {out:?}");
        assert!(out.sent < 100_000, "{rate:?}: {out:?}");
    }
}

/// An echo server written with plain sockets that answers probe `seq` by
/// calling `answer(seq, bytes, reply)`; stops when the flag is set.
fn scripted_server(
    answer: impl Fn(u64, &[u8], &dyn Fn(&[u8])) + Send + 'static,
) -> (SocketAddr, Arc<AtomicBool>, thread::JoinHandle<()>) {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let h = thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !s2.load(Ordering::Relaxed) {
            let Ok((n, from)) = server.recv_from(&mut buf) else {
                continue;
            };
            let seq = hftnet_wire::probe::Packet::new_checked(&buf[..n])
                .map(|p| p.seq())
                .unwrap_or(u64::MAX);
            let reply = |b: &[u8]| {
                server.send_to(b, from).unwrap();
            };
            answer(seq, &buf[..n], &reply);
        }
    });
    (addr, stop, h)
}

#[test]
fn corrupted_echo_is_counted_not_measured() {
    let (addr, stop, h) = scripted_server(|seq, bytes, reply| {
        let mut b = bytes.to_vec();
        if seq % 5 == 0 {
            let last = b.len() - 1;
            b[last] ^= 0x80;
        }
        reply(&b);
    });
    let mut client = Endpoint::parse(&format!("udp://{addr}"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let c = PingConfig {
        count: Some(50),
        warmup: 0,
        reply_timeout: Duration::from_millis(100),
        give_up_after: 100,
        ..cfg(0)
    };
    let out = run_ping(&mut client, &c, Clock::new()).unwrap();
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert_eq!(out.corrupted, 10, "{out:?}");
    assert_eq!(out.received, 40);
    assert_eq!(out.lost, 10);
    assert_eq!(out.rtt.len(), 40);
}

#[test]
fn late_reply_is_counted_late_and_reordered_not_lost() {
    // Hold probe 5 back and answer it after probe 7: by then ping has waited
    // 100 ms for it twice over.
    let held = std::sync::Mutex::new(None::<Vec<u8>>);
    let (addr, stop, h) = scripted_server(move |seq, bytes, reply| {
        if seq == 5 {
            *held.lock().unwrap() = Some(bytes.to_vec());
            return;
        }
        reply(bytes);
        let late = if seq == 7 {
            held.lock().unwrap().take()
        } else {
            None
        };
        if let Some(b) = late {
            reply(&b);
        }
    });
    let mut client = Endpoint::parse(&format!("udp://{addr}"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let c = PingConfig {
        count: Some(20),
        warmup: 0,
        reply_timeout: Duration::from_millis(100),
        ..cfg(0)
    };
    let out = run_ping(&mut client, &c, Clock::new()).unwrap();
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert_eq!(out.late, 1, "{out:?}");
    assert_eq!(out.reordered, 1, "{out:?}");
    assert_eq!(out.lost, 0, "it came, late: {out:?}");
    assert_eq!(out.received, 20);
    assert!(
        out.rtt.summary().unwrap().max >= 100_000_000,
        "its true round trip is recorded"
    );
}

#[test]
fn fixed_rate_shows_a_server_stall() {
    // The server stalls 60 ms once. Probes keep their timetable meanwhile; as
    // their round trips count from the scheduled send time, the stall shows
    // in the tail of many samples instead of hiding in one.
    let (addr, stop, h) = scripted_server(|seq, bytes, reply| {
        if seq == 500 {
            thread::sleep(Duration::from_millis(60));
        }
        reply(bytes);
    });
    let mut client = Endpoint::parse(&format!("udp://{addr}?rx=spin"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let c = PingConfig {
        rate: Some(2000),
        count: Some(1500),
        warmup: 0,
        ..cfg(0)
    };
    let out = run_ping(&mut client, &c, Clock::new()).unwrap();
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    assert_eq!(out.received, 1500, "{out:?}");
    let hist = out.rtt.histogram();
    let over_10ms: u64 = hist
        .iter_recorded()
        .filter(|v| v.value_iterated_to() >= 10_000_000)
        .map(|v| v.count_at_value())
        .sum();
    // 60 ms at 2000/s is 120 probes sent during the stall; most wait over 10 ms.
    assert!(over_10ms >= 60, "only {over_10ms} samples show the stall");
    assert!(out.rtt.summary().unwrap().max >= 55_000_000);
}

#[test]
fn fixed_rate_adds_no_timer_slack_with_blocking_receives() {
    // Blocking receives with a receive timeout sleep in whole scheduler ticks
    // (4 ms at 250 Hz); the timetable must not inherit that. Loopback round
    // trips are tens of microseconds: a median in milliseconds means the
    // harness, not the path, was measured. (A sanity bound, 100x the path.)
    let (addr, stop, h) = pong_server("udp://127.0.0.1:0?rx=block");
    for rx in ["block", "adaptive", "busy-poll"] {
        let mut client = Endpoint::parse(&format!("udp://{addr}?rx={rx}"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        let c = PingConfig {
            rate: Some(1000),
            count: Some(500),
            warmup: 50,
            ..cfg(0)
        };
        let out = run_ping(&mut client, &c, Clock::new()).unwrap();
        assert_eq!(out.received, 500, "{rx}: {out:?}");
        let p50 = out.rtt.summary().unwrap().p50;
        assert!(p50 < 2_000_000, "{rx}: fixed-rate p50 {p50} ns");
    }
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}
