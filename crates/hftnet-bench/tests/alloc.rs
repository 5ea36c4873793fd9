//! Zero heap allocations per message on the ping and pong hot paths: a
//! counting global allocator (per thread) shows that a run of many more
//! messages allocates exactly as often as a short one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use hftnet_bench::clock::Clock;
use hftnet_bench::pingpong::{PingConfig, PongConfig, run_ping, run_pong};
use hftnet_io::{Endpoint, Role, Transport, dispatch};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;

/// Allocations made by the ping thread and the pong thread for a run of `n`
/// probes, closed loop or at `rate`.
fn run(scheme: &str, rx: &str, n: u64, rate: Option<u64>) -> (u64, u64) {
    let mut server = Endpoint::parse(&format!("{scheme}://127.0.0.1:0?rx={rx}"))
        .unwrap()
        .open(Role::Server)
        .unwrap();
    let addr = server.capabilities().local.unwrap();
    let mut client = Endpoint::parse(&format!("{scheme}://{addr}?rx={rx}"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let pong = thread::spawn(move || {
        let before = allocs();
        let out = dispatch!(&mut server, t => run_pong(t, &PongConfig::default(), &s2)).unwrap();
        (allocs() - before, out.echoed)
    });
    let clock = Clock::new();
    let cfg = PingConfig {
        count: Some(n),
        warmup: 10,
        rate,
        reply_timeout: Duration::from_secs(2),
        ..PingConfig::default()
    };
    let before = allocs();
    let out = run_ping(&mut client, &cfg, clock).unwrap();
    let ping_allocs = allocs() - before;
    stop.store(true, Ordering::Relaxed);
    let (pong_allocs, echoed) = pong.join().unwrap();
    assert_eq!(out.received, n, "{scheme}/{rx}: {out:?}");
    assert_eq!(echoed, n + 10);
    (ping_allocs, pong_allocs)
}

#[test]
fn no_allocation_per_message() {
    for (scheme, rx, rate) in [
        ("udp", "block", None),
        ("udp", "spin", None),
        ("udp", "adaptive", None),
        ("udp", "busy-poll", None),
        ("udp", "spin", Some(20_000)),
        ("udp", "block", Some(20_000)),
        ("tcp", "block", None),
        ("tcp", "spin", None),
        ("tcp", "adaptive", None),
        ("tcp", "adaptive", Some(20_000)),
    ] {
        let short = run(scheme, rx, 200, rate);
        let long = run(scheme, rx, 5000, rate);
        assert_eq!(
            short.0, long.0,
            "{scheme}/{rx}: ping allocations grew with the message count"
        );
        assert_eq!(
            short.1, long.1,
            "{scheme}/{rx}: pong allocations grew with the message count"
        );
    }
}
