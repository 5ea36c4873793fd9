//! `hftnet blast` and `hftnet sink` end to end: a 1000-datagram batched
//! exchange (`batch=32`, `recvmmsg` / `sendmmsg` on both ends) across a
//! two-namespace lab with no loss; the same over loopback with batch=1 and
//! batch=32 (no root needed); bad input with its exact messages; and, in
//! process, no heap allocation per message on the blast and sink loops with
//! either batch. Lab tests need root; without it they say why on stderr and
//! return.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use hftnet_bench::clock::Clock;
use hftnet_bench::throughput::{BlastConfig, SinkConfig, run_blast, run_sink};
use hftnet_io::{Endpoint, Role, Transport};
use hftnet_lab::Lab;
use serde_json::Value;

mod common;

use common::{BIN, Proc, finish, run_in, skip_without_root, spawn_in};

/// Messages per exchange, and bytes per message.
const COUNT: u64 = 1000;
const SIZE: u64 = 200;

fn json_of(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} did not print one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `sink --json` says on stderr where it receives once its socket is open;
/// returns that address.
fn wait_sink_json(sink: &mut Proc) -> String {
    let err = sink.child().stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(err).read_line(&mut line).unwrap();
    line.trim_end()
        .strip_prefix("hftnet sink: receiving on ")
        .unwrap_or_else(|| panic!("sink said {line:?}"))
        .to_string()
}

fn assert_sender(b: &Value, batch: u64) {
    assert_eq!(b["command"], "blast", "{b}");
    assert_eq!(b["batch"], batch, "{b}");
    assert_eq!(b["sent"], COUNT, "{b}");
    assert_eq!(b["bytes"], COUNT * SIZE, "{b}");
    assert_eq!(b["message_bytes"], SIZE, "{b}");
    assert_eq!(b["send_errors"], 0, "{b}");
    assert_eq!(b["flushed"], true, "{b}");
    assert_eq!(b["stopped_by"], "count", "{b}");
}

fn assert_exact(s: &Value, batch: u64) {
    assert_eq!(s["command"], "sink", "{s}");
    assert_eq!(s["batch"], batch, "{s}");
    assert_eq!(s["packets"], COUNT, "{s}");
    assert_eq!(s["probes"], COUNT, "{s}");
    assert_eq!(s["bytes"], COUNT * SIZE, "{s}");
    assert_eq!(s["drops"], 0, "{s}");
    assert_eq!(s["reordered"], 0, "{s}");
    assert_eq!(s["duplicates"], 0, "{s}");
    assert_eq!(s["foreign"], 0, "{s}");
    assert_eq!(s["truncated"], 0, "{s}");
    assert_eq!(s["first_seq"], 0, "{s}");
    assert_eq!(s["highest_seq"], COUNT - 1, "{s}");
}

#[test]
fn batched_exchange_of_1000_datagrams_across_the_lab() {
    if skip_without_root("batched_exchange_of_1000_datagrams_across_the_lab") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    // A receive buffer for all 1000 (SO_RCVBUFFORCE as root): the sender goes
    // as fast as it can, and the test is about batching, not buffer sizing.
    let mut sink = spawn_in(
        lab.exchange(),
        &[
            "sink",
            "udp://198.18.0.2:9400?batch=32&rcvbuf=4M",
            "--duration",
            "60s",
            "--idle",
            "1s",
            "--json",
        ],
    );
    assert_eq!(wait_sink_json(&mut sink), "198.18.0.2:9400");
    let count = COUNT.to_string();
    let size = SIZE.to_string();
    let blast = run_in(
        lab.trader(),
        &[
            "blast",
            "udp://198.18.0.2:9400?batch=32",
            "--count",
            &count,
            "--size",
            &size,
            "--json",
        ],
        Duration::from_secs(30),
    );
    let b = json_of(&blast, "blast");
    assert_sender(&b, 32);
    assert_eq!(b["burst"], 32, "{b}");
    assert_eq!(b["rate_pps"], Value::Null, "as fast as possible: {b}");
    let s = json_of(&finish(sink, Duration::from_secs(30), "sink"), "sink");
    assert_exact(&s, 32);
    // No --count on the sink: it ended one idle second after the last datagram.
    assert_eq!(s["stopped_by"], "idle", "{s}");
    assert_eq!(s["burst"], 32, "{s}");
    let notes = s["capabilities"]["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("batch=32")),
        "{s}"
    );
}

/// `sink` on the exchange host and `blast` of 1000 datagrams from the trader,
/// over layer-2 URIs: exact counts and bytes at both ends.
fn blast_and_sink_in_lab(sink_uri: &str, blast_uri: &str, local: &str, transport: &str) {
    let lab = Lab::two_host(None).unwrap();
    let mut sink = spawn_in(
        lab.exchange(),
        &[
            "sink",
            sink_uri,
            "--duration",
            "60s",
            "--idle",
            "1s",
            "--json",
        ],
    );
    assert_eq!(wait_sink_json(&mut sink), local);
    let count = COUNT.to_string();
    let size = SIZE.to_string();
    let blast = run_in(
        lab.trader(),
        &[
            "blast", blast_uri, "--count", &count, "--size", &size, "--json",
        ],
        Duration::from_secs(30),
    );
    let b = json_of(&blast, "blast");
    assert_sender(&b, 32);
    let s = json_of(&finish(sink, Duration::from_secs(30), "sink"), "sink");
    assert_exact(&s, 32);
    assert_eq!(s["capabilities"]["transport"], transport, "{s}");
}

#[test]
fn packet_rings_blast_and_sink_1000_datagrams() {
    if skip_without_root("packet_rings_blast_and_sink_1000_datagrams") {
        return;
    }
    // A receive ring with room for all 1000: the test is about the ring
    // path delivering every frame, not about sizing it.
    blast_and_sink_in_lab(
        "packet://veth0?port=9500&rx=spin&frames=2048",
        "packet://veth0?port=9501&peer=198.18.0.2:9500",
        "198.18.0.2:9500",
        "packet",
    );
}

#[test]
fn xdp_blast_and_sink_1000_datagrams() {
    if skip_without_root("xdp_blast_and_sink_1000_datagrams") {
        return;
    }
    blast_and_sink_in_lab(
        "xdp://veth0/0?port=9600&rx=spin",
        "xdp://veth0/0?port=9601&peer=198.18.0.2:9600",
        "198.18.0.2:9600",
        "xdp",
    );
}

/// A process of the binary in this namespace, killed when dropped.
fn spawn(args: &[&str]) -> Proc {
    Proc(Some(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ))
}

/// `# key: value` lines as a map.
fn comment_map(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn loopback_exchange_batch_1_and_batch_32() {
    let count = COUNT.to_string();
    let size = SIZE.to_string();
    for batch in [1u64, 32] {
        // The sink in `# key: value` form: its configuration lines come first
        // and name the port it bound.
        let mut sink = spawn(&[
            "sink",
            &format!("udp://127.0.0.1:0?batch={batch}&rcvbuf=4M"),
            "--duration",
            "60s",
            "--idle",
            "1s",
        ]);
        let mut stdout = BufReader::new(sink.child().stdout.take().unwrap());
        let mut head = String::new();
        let local = loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "sink ended early: {head}"
            );
            head.push_str(&line);
            if let Some(l) = line.trim_end().strip_prefix("# local: ") {
                break l.to_string();
            }
        };
        // Without root the receive buffer may be capped, so pace the sender
        // (1000 at 100 000/s: 10 ms) instead of relying on the buffer.
        let blast = Command::new(BIN)
            .args([
                "blast",
                &format!("udp://{local}?batch={batch}"),
                "--count",
                &count,
                "--size",
                &size,
                "--rate",
                "100000",
                "--json",
            ])
            .output()
            .unwrap();
        let b = json_of(&blast, "blast");
        assert_sender(&b, batch);
        assert_eq!(b["rate_pps"], 100_000, "{b}");
        let out = finish(sink, Duration::from_secs(30), "sink");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let head_map = comment_map(&head);
        assert_eq!(head_map["command"], "sink");
        assert_eq!(head_map["batch"], batch.to_string());
        let r = comment_map(&rest);
        let num = |k: &str| -> u64 {
            r.get(k)
                .unwrap_or_else(|| panic!("no {k} in {rest}"))
                .parse()
                .unwrap()
        };
        assert_eq!(num("packets"), COUNT, "batch={batch}: {rest}");
        assert_eq!(num("probes"), COUNT, "{rest}");
        assert_eq!(num("bytes"), COUNT * SIZE, "{rest}");
        for k in ["drops", "reordered", "duplicates", "foreign", "truncated"] {
            assert_eq!(num(k), 0, "{k}, batch={batch}: {rest}");
        }
        assert_eq!(num("first_seq"), 0);
        assert_eq!(num("highest_seq"), COUNT - 1);
        assert_eq!(r["stopped_by"], "idle", "{rest}");
        assert!(num("pps") > 0, "{rest}");
    }
}

#[test]
fn bad_input_is_named_exactly() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["sink", "udp://127.0.0.1:0?batch=0"],
            "bad value \"0\" for parameter \"batch\": expected an integer from 1 to 1024",
        ),
        (
            &["blast", "udp://127.0.0.1:9?batch=99999", "--count", "1"],
            "bad value \"99999\" for parameter \"batch\": expected an integer from 1 to 1024",
        ),
        (
            &["blast", "udp://127.0.0.1:9", "--size", "8", "--count", "1"],
            "message size 8 is outside 20..=65507 bytes for this transport",
        ),
        (
            &["blast", "udp://127.0.0.1:9", "--rate", "0", "--count", "1"],
            "--rate must be at least 1 message per second",
        ),
        (
            &["blast", "udp://127.0.0.1:9", "--count", "0"],
            "--count must be at least 1",
        ),
        (
            &["sink", "udp://127.0.0.1:0", "--max-size", "10"],
            "--max-size 10 is outside 20..=65507 bytes for this transport",
        ),
        (
            &["sink", "udp://127.0.0.1:0", "--burst", "2000"],
            "--burst 2000 is outside 1..=1024",
        ),
        // These two aborted the process (a failed allocation, exit 134) and
        // panicked (capacity overflow, exit 101).
        (
            &["pong", "udp://127.0.0.1:0", "--burst", "100000000"],
            "--burst 100000000 is outside 1..=1024",
        ),
        (
            &[
                "pong",
                "udp://127.0.0.1:0",
                "--burst",
                "18446744073709551615",
            ],
            "--burst 18446744073709551615 is outside 1..=1024",
        ),
        // This one ran every row with nothing to measure and exited 1.
        (
            &[
                "lab",
                "--loopback",
                "--transports",
                "udp",
                "--duration",
                "0s",
            ],
            "--duration 0ns is too short: each row needs at least 1ms per round (5 rounds)",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(BIN).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr, format!("hftnet: error: {want}\n"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} printed before failing");
    }
    // TCP has no batched calls.
    let out = Command::new(BIN)
        .args(["sink", "tcp://127.0.0.1:0?batch=8"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("hftnet: error: unknown parameter \"batch\" for tcp://"),
        "{stderr}"
    );
}

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;

/// Allocations of the blast thread and the sink thread for `n` messages.
fn allocations(batch: usize, n: u64) -> (u64, u64) {
    let mut rx = Endpoint::parse(&format!("udp://127.0.0.1:0?batch={batch}"))
        .unwrap()
        .open(Role::Server)
        .unwrap();
    let addr = rx.capabilities().local.unwrap();
    let mut tx = Endpoint::parse(&format!("udp://{addr}?batch={batch}"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let stop = AtomicBool::new(false);
    let sink_cfg = SinkConfig {
        duration: Duration::from_secs(20),
        idle: Some(Duration::from_millis(200)),
        count: Some(n),
        burst: 32,
        slot: 2048,
        ..SinkConfig::default()
    };
    let blast_cfg = BlastConfig {
        size: 64,
        duration: Duration::from_secs(20),
        count: Some(n),
        rate: Some(200_000),
        burst: 32,
    };
    let clock = Clock::monotonic();
    std::thread::scope(|s| {
        let sink = s.spawn(|| {
            let before = allocs();
            let r = run_sink(&mut rx, &sink_cfg, &stop).unwrap();
            (allocs() - before, r)
        });
        let before = allocs();
        let b = run_blast(&mut tx, &blast_cfg, clock, &stop).unwrap();
        let blast_allocs = allocs() - before;
        let (sink_allocs, r) = sink.join().unwrap();
        assert_eq!(b.sent, n);
        assert!(r.packets > 0, "{r:?}");
        (blast_allocs, sink_allocs)
    })
}

#[test]
fn no_allocation_per_message_batched_or_not() {
    for batch in [1, 32] {
        let short = allocations(batch, 200);
        let long = allocations(batch, 5000);
        assert_eq!(
            short.0, long.0,
            "batch={batch}: blast allocations grew with the message count"
        );
        assert_eq!(
            short.1, long.1,
            "batch={batch}: sink allocations grew with the message count"
        );
    }
}

/// Allocations of the blast thread (in the trader's namespace) and the sink
/// thread (in the exchange's) for `n` messages over the layer-2 URIs.
fn l2_allocations(lab: &Lab, sink_uri: &str, blast_uri: &str, n: u64) -> (u64, u64) {
    let sink_uri = sink_uri.to_string();
    let blast_uri = blast_uri.to_string();
    let stop = AtomicBool::new(false);
    let mut rx = lab
        .exchange()
        .run(move || {
            Endpoint::parse(&sink_uri)
                .unwrap()
                .open(Role::Server)
                .unwrap()
        })
        .unwrap();
    let mut tx = lab
        .trader()
        .run(move || {
            Endpoint::parse(&blast_uri)
                .unwrap()
                .open(Role::Client)
                .unwrap()
        })
        .unwrap();
    let sink_cfg = SinkConfig {
        duration: Duration::from_secs(20),
        idle: Some(Duration::from_millis(500)),
        count: Some(n),
        burst: 32,
        slot: 2048,
        ..SinkConfig::default()
    };
    let blast_cfg = BlastConfig {
        size: 64,
        duration: Duration::from_secs(20),
        count: Some(n),
        rate: Some(100_000),
        burst: 32,
    };
    let clock = Clock::monotonic();
    std::thread::scope(|s| {
        let sink = s.spawn(|| {
            let before = allocs();
            let r = hftnet_io::dispatch!(&mut rx, t => run_sink(t, &sink_cfg, &stop)).unwrap();
            (allocs() - before, r)
        });
        // Let the sink start polling first.
        std::thread::sleep(Duration::from_millis(100));
        let before = allocs();
        let b = hftnet_io::dispatch!(&mut tx, t => run_blast(t, &blast_cfg, clock, &stop)).unwrap();
        let blast_allocs = allocs() - before;
        let (sink_allocs, r) = sink.join().unwrap();
        assert_eq!(b.sent, n, "{b:?}");
        assert!(b.flushed, "nothing left queued on a transmit ring: {b:?}");
        assert_eq!(r.packets, n, "{r:?}");
        (blast_allocs, sink_allocs)
    })
}

#[test]
fn no_allocation_per_message_over_packet_and_xdp() {
    if skip_without_root("no_allocation_per_message_over_packet_and_xdp") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let mut port = 9700;
    for (sink, blast) in [
        (
            "packet://veth0?port=PORT&rx=spin&version=3",
            "packet://veth0?port=PORTC&peer=198.18.0.2:PORT",
        ),
        (
            "xdp://veth0/0?port=PORT&rx=spin",
            "xdp://veth0/0?port=PORTC&peer=198.18.0.2:PORT",
        ),
    ] {
        let mut run = |n| {
            port += 2;
            let (s, c) = (port.to_string(), (port + 1).to_string());
            l2_allocations(
                &lab,
                &sink.replace("PORT", &s),
                &blast.replace("PORTC", &c).replace("PORT", &s),
                n,
            )
        };
        let short = run(200);
        let long = run(5000);
        assert_eq!(
            short.0, long.0,
            "{blast}: blast allocations grew with the count"
        );
        assert_eq!(
            short.1, long.1,
            "{sink}: sink allocations grew with the count"
        );
    }
}
