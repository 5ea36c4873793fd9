//! The lab's link taken down and up in the middle of a fixed-rate ping-pong
//! between two processes (`hftnet pong` and `hftnet ping --rate`), on udp,
//! tcp, packet and xdp. Each recovers: ping ends with exit 0, replies come
//! back after the link is up, and what the outage cost is reported (lost
//! probes, send errors naming the cause, xdp's link flaps). A link down for
//! longer than ping's give-up time ends ping with exit 3 and the reason,
//! also over tcp, whose sends must not block it.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use common::{Proc, skip_without_root, spawn_in};
use hftnet_lab::{Host, Lab};
use hftnet_sys::netlink::RtNetlink;
use serde_json::Value;

fn set_link(h: &Host, up: bool) {
    let name = h.iface().to_string();
    h.run(move || {
        let mut nl = RtNetlink::open().unwrap();
        let i = nl.link_index(&name).unwrap();
        if up {
            nl.set_link_up(i).unwrap();
        } else {
            nl.set_link_down(i).unwrap();
        }
    })
    .unwrap();
}

/// What ping and pong reported around a link flap.
struct Flap {
    ping_code: Option<i32>,
    ping: Value,
    ping_err: String,
    pong: Value,
}

/// pong in the exchange namespace, ping in the trader's at 1000/s for
/// `run_s`; the trader's link goes down at 1.5 s after ping starts, for `down`.
fn flap(lab: &Lab, server_uri: &str, client_uri: &str, run_s: u64, down: Duration) -> Flap {
    let pong_for = format!("{}s", run_s + 30);
    let mut pong = spawn_in(
        lab.exchange(),
        &["pong", server_uri, "--duration", &pong_for, "--json"],
    );
    let mut err = BufReader::new(pong.child().stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("# command: pong"), "pong said {line:?}");
    let run = format!("{run_s}s");
    let mut ping = spawn_in(
        lab.trader(),
        &[
            "ping",
            client_uri,
            "--rate",
            "1000",
            "--duration",
            &run,
            "--warmup",
            "200",
            "--json",
        ],
    );
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    set_link(lab.trader(), false);
    std::thread::sleep(down);
    set_link(lab.trader(), true);
    while ping.child().try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(run_s + 60),
            "ping {client_uri} did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = ping.0.take().unwrap().wait_with_output().unwrap();
    // pong ends on SIGINT with its JSON report.
    let pong_json = stop_pong(&mut pong);
    Flap {
        ping_code: out.status.code(),
        ping: serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("ping --json ({e}): {out:?}")),
        ping_err: String::from_utf8_lossy(&out.stderr).into_owned(),
        pong: pong_json,
    }
}

/// Stops pong with SIGINT (by its PID) and returns its JSON report.
fn stop_pong(pong: &mut Proc) -> Value {
    let pid = pong.child().id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill(1)");
    assert!(st.success());
    let mut c = pong.0.take().unwrap();
    let start = Instant::now();
    while c.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "pong ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = String::new();
    c.stdout.as_mut().unwrap().read_to_string(&mut s).unwrap();
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("pong --json ({e}): {s:?}"))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("no number {k:?} in {v}"))
}

/// A one-second flap: ping ends normally, at least 500 replies came after
/// the link was back (at most 1500 measured probes left before it went
/// down), and the loss is counted.
fn recovers(name: &str, server_uri: &str, client_uri: &str) -> Flap {
    let lab = Lab::two_host(None).unwrap();
    let f = flap(&lab, server_uri, client_uri, 5, Duration::from_secs(1));
    assert_eq!(f.ping_code, Some(0), "{name}: {}\n{}", f.ping_err, f.ping);
    assert!(f.ping["aborted"].is_null(), "{name}: {}", f.ping);
    let replies = u(&f.ping, "sent") - u(&f.ping, "lost");
    assert!(replies >= 2000, "{name}: {replies} replies: {}", f.ping);
    assert_eq!(
        u(&f.pong, "echoed"),
        u(&f.pong, "received"),
        "{name}: {}",
        f.pong
    );
    f
}

#[test]
fn udp_recovers_from_a_link_flap() {
    if skip_without_root("udp_recovers_from_a_link_flap") {
        return;
    }
    let uri = "udp://198.18.0.2:9740";
    let f = recovers("udp", uri, uri);
    // The sends the kernel refused while the link was down, with the reason.
    assert!(u(&f.ping, "send_errors") > 0, "{}", f.ping);
    assert!(u(&f.ping, "lost") > 0, "{}", f.ping);
    let e = f.ping["first_error"].as_str().unwrap_or_default();
    assert!(e.contains("unreachable"), "{e}");
}

#[test]
fn tcp_recovers_from_a_link_flap() {
    if skip_without_root("tcp_recovers_from_a_link_flap") {
        return;
    }
    let uri = "tcp://198.18.0.2:9741";
    let f = recovers("tcp", uri, uri);
    // TCP retransmits: nothing is lost, the outage shows as late replies.
    assert_eq!(u(&f.ping, "lost"), 0, "{}", f.ping);
    assert!(u(&f.ping, "late") > 0, "{}", f.ping);
}

#[test]
fn packet_recovers_from_a_link_flap() {
    if skip_without_root("packet_recovers_from_a_link_flap") {
        return;
    }
    let f = recovers(
        "packet",
        "packet://veth0?port=9742",
        "packet://veth0?port=9742&peer=198.18.0.2:9742",
    );
    assert!(u(&f.ping, "send_errors") > 0, "{}", f.ping);
    let e = f.ping["first_error"].as_str().unwrap_or_default();
    assert!(e.contains("Network is down"), "{e}");
    for r in [&f.ping, &f.pong] {
        let ring = &r["capabilities"]["backend"]["ring"];
        assert_eq!(ring["balanced"], true, "{ring}");
    }
}

#[test]
fn xdp_recovers_from_a_link_flap() {
    if skip_without_root("xdp_recovers_from_a_link_flap") {
        return;
    }
    let f = recovers(
        "xdp",
        "xdp://veth0/0?port=9743",
        "xdp://veth0/0?port=9743&peer=198.18.0.2:9743",
    );
    // The client keeps its frames while the link is down and says so.
    let b = &f.ping["capabilities"]["backend"];
    assert_eq!(b["link_flaps"], 1, "{b}");
    assert!(u(&b["socket"], "link_down_kicks") > 0, "{b}");
    for r in [&f.ping, &f.pong] {
        let m = &r["capabilities"]["backend"]["umem"];
        assert_eq!(
            u(m, "free") + u(m, "fill") + u(m, "tx_in_flight"),
            u(m, "total"),
            "{m}"
        );
        assert_eq!(u(m, "lost"), 0, "{m}");
    }
}

/// Down for longer than ping's give-up time (3 reply timeouts of 1 s): ping
/// ends with exit 3 and says why. Over tcp the sends fill the socket
/// buffer; they used to block ping until the link came back.
#[test]
fn a_long_outage_ends_ping_with_exit_3_and_the_reason() {
    if skip_without_root("a_long_outage_ends_ping_with_exit_3_and_the_reason") {
        return;
    }
    for (i, scheme) in ["udp", "tcp"].into_iter().enumerate() {
        let lab = Lab::two_host(None).unwrap();
        let uri = format!("{scheme}://198.18.0.2:{}", 9745 + i);
        let f = flap(&lab, &uri, &uri, 6, Duration::from_secs(10));
        assert_eq!(f.ping_code, Some(3), "{scheme}: {}\n{}", f.ping_err, f.ping);
        assert!(
            f.ping_err
                .contains("the peer is unreachable or not echoing"),
            "{scheme}: {}",
            f.ping_err
        );
        assert!(!f.ping["aborted"].is_null(), "{scheme}: {}", f.ping);
    }
}
