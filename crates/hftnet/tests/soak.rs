//! Short soaks, the CI form of `scripts/soak.sh`: `hftnet pong --json` and
//! `hftnet ping --rate --json` as two processes for a few seconds per
//! transport (udp, tcp, uring, packet, xdp between the lab's namespaces;
//! shm in this one), sampling both processes' RSS, then checking the
//! accounting both report: every message echoed without error, every UMEM
//! frame and every ring frame where the bookkeeping says, what one shm end
//! published is what the other read. Loose on purpose: RSS may grow by a
//! few MiB after the warm-up (the script is the strict, long form), and
//! nothing is timed.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Proc, skip_without_root, spawn_in};
use hftnet_lab::{Host, Lab};
use serde_json::Value;

/// Probes per second.
const RATE: u32 = 2000;
/// Measured seconds of ping.
const RUN_S: u64 = 3;
/// How much a process's RSS may grow after the warm-up, in KiB: loose,
/// for a few seconds on a shared machine.
const MARGIN_KB: u64 = 8192;

/// VmRSS of a process, in KiB (None once it is gone).
fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn spawn(host: Option<&Host>, args: &[&str]) -> Proc {
    match host {
        Some(h) => spawn_in(h, args),
        None => Proc(Some(
            Command::new(BIN)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn hftnet"),
        )),
    }
}

/// What one soak run left: both reports and each process's RSS after the
/// warm-up and at the end.
struct Soak {
    ping: Value,
    pong: Value,
    ping_rss: (u64, u64),
    pong_rss: (u64, u64),
}

fn soak(server: Option<&Host>, client: Option<&Host>, server_uri: &str, client_uri: &str) -> Soak {
    let pong_for = format!("{}s", RUN_S + 6);
    let mut pong = spawn(
        server,
        &["pong", server_uri, "--duration", &pong_for, "--json"],
    );
    // pong --json prints its configuration on stderr once it serves.
    let mut err = BufReader::new(pong.child().stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.starts_with("# command: pong"), "pong said {line:?}");
    let pong_pid = pong.child().id();
    let (rate, run) = (RATE.to_string(), format!("{RUN_S}s"));
    let warmup = (RATE / 2).to_string();
    let mut ping = spawn(
        client,
        &[
            "ping",
            client_uri,
            "--rate",
            &rate,
            "--duration",
            &run,
            "--warmup",
            &warmup,
            "--json",
        ],
    );
    let ping_pid = ping.child().id();
    let start = Instant::now();
    let (mut base, mut end) = (None, (0, 0));
    while ping.child().try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(RUN_S + 30),
            "ping {client_uri} overran"
        );
        if let (Some(a), Some(b)) = (rss_kb(ping_pid), rss_kb(pong_pid)) {
            // The warm-up is half a second of probes; take the baseline after it.
            if base.is_none() && start.elapsed() >= Duration::from_secs(1) {
                base = Some((a, b));
            }
            end = (a, b);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let pong_end = rss_kb(pong_pid).unwrap_or(end.1);
    let ping_out = ping.0.take().unwrap().wait_with_output().unwrap();
    let started = Instant::now();
    while pong.child().try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(RUN_S + 30),
            "pong {server_uri} overran its --duration"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut pong_stdout = String::new();
    let mut c = pong.0.take().unwrap();
    c.stdout
        .as_mut()
        .unwrap()
        .read_to_string(&mut pong_stdout)
        .unwrap();
    let st = c.wait().unwrap();
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    assert!(st.success(), "pong {server_uri}: {st}: {rest}");
    assert!(
        ping_out.status.success(),
        "ping {client_uri}: {}: {}",
        ping_out.status,
        String::from_utf8_lossy(&ping_out.stderr)
    );
    let base = base.expect("ping ran past its warm-up");
    Soak {
        ping: serde_json::from_slice(&ping_out.stdout).expect("ping --json"),
        pong: serde_json::from_str(&pong_stdout).expect("pong --json"),
        ping_rss: (base.0, end.0),
        pong_rss: (base.1, pong_end),
    }
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("no number {k:?} in {v}"))
}

/// What is unbalanced in a soak's two reports (empty: everything is).
fn accounting(ping: &Value, pong: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let probes = u(ping, "sent") + u(ping, "warmup");
    let replies = u(ping, "sent") - u(ping, "lost");
    if !ping["aborted"].is_null() {
        bad.push(format!("ping aborted: {}", ping["aborted"]));
    }
    if u(pong, "send_errors") + u(pong, "recv_errors") > 0 {
        bad.push(format!("pong errors: {pong}"));
    }
    if u(pong, "echoed") + u(pong, "truncated") != u(pong, "received") {
        bad.push("pong did not echo everything it received".into());
    }
    if u(pong, "received") > probes {
        bad.push(format!(
            "pong received {} of {probes} probes",
            u(pong, "received")
        ));
    }
    if replies > u(pong, "echoed") {
        bad.push(format!("{replies} replies, {} echoed", u(pong, "echoed")));
    }
    for (who, r) in [("ping", ping), ("pong", pong)] {
        let b = &r["capabilities"]["backend"];
        if let Some(f) = b.get("frames") {
            let dropped: u64 = [
                "oversized",
                "truncated",
                "malformed",
                "ip_checksum",
                "udp_checksum",
                "ip_options",
                "fragment",
                "other",
            ]
            .iter()
            .map(|k| u(f, k))
            .sum();
            if u(f, "rx_frames") != u(f, "delivered") + dropped {
                bad.push(format!("{who}: frames taken and delivered differ: {f}"));
            }
        }
        if let Some(m) = b.get("umem") {
            let held = u(m, "free") + u(m, "fill") + u(m, "tx_in_flight") + u(m, "lost");
            if held != u(m, "total") || u(m, "lost") > 0 {
                bad.push(format!("{who}: UMEM unbalanced: {m}"));
            }
            if u(&b["socket"], "bad_descriptors") > 0 {
                bad.push(format!("{who}: bad descriptors: {}", b["socket"]));
            }
        }
        if let Some(g) = b.get("ring")
            && (g["balanced"] != true || u(g, "rx_user") > 0)
        {
            bad.push(format!("{who}: ring unbalanced: {g}"));
        }
        if b.get("kind").and_then(Value::as_str) == Some("uring")
            && (u(b, "tx_errors") > 0 || b["slots"]["rx_balanced"] == false)
        {
            bad.push(format!(
                "{who}: failed sends or receive slots unbalanced: {b}"
            ));
        }
    }
    let (cb, sb) = (
        &ping["capabilities"]["backend"],
        &pong["capabilities"]["backend"],
    );
    if cb.get("kind").and_then(Value::as_str) == Some("shm") {
        for (who, w, r) in [("ping", cb, sb), ("pong", sb, cb)] {
            let read = u(&r["reader"], "received") + u(&r["reader"], "missed");
            if u(w, "published") != read || u(&r["reader"], "missed") > 0 {
                bad.push(format!(
                    "{who} published {}, the other end read {}",
                    u(w, "published"),
                    r["reader"]
                ));
            }
        }
    }
    bad
}

fn check(name: &str, s: &Soak) {
    eprintln!(
        "{name}: ping RSS {} -> {} KiB, pong RSS {} -> {} KiB after the warm-up",
        s.ping_rss.0, s.ping_rss.1, s.pong_rss.0, s.pong_rss.1
    );
    for (who, (base, end)) in [("ping", s.ping_rss), ("pong", s.pong_rss)] {
        assert!(
            end <= base + MARGIN_KB,
            "{name}: {who} RSS grew from {base} to {end} KiB after the warm-up"
        );
    }
    let bad = accounting(&s.ping, &s.pong);
    assert!(bad.is_empty(), "{name}: {bad:#?}");
    assert!(
        u(&s.ping, "sent") >= u64::from(RATE),
        "{name}: ping sent {}",
        s.ping["sent"]
    );
}

fn lab_soak(name: &str, server_uri: &str, client_uri: &str) {
    if skip_without_root(name) {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let s = soak(
        Some(lab.exchange()),
        Some(lab.trader()),
        server_uri,
        client_uri,
    );
    check(name, &s);
}

#[test]
fn soak_udp() {
    lab_soak("soak_udp", "udp://198.18.0.2:9720", "udp://198.18.0.2:9720");
}

#[test]
fn soak_tcp() {
    lab_soak("soak_tcp", "tcp://198.18.0.2:9721", "tcp://198.18.0.2:9721");
}

#[test]
fn soak_uring() {
    lab_soak(
        "soak_uring",
        "uring://198.18.0.2:9722",
        "uring://198.18.0.2:9722",
    );
}

#[test]
fn soak_packet() {
    lab_soak(
        "soak_packet",
        "packet://veth0?port=9723",
        "packet://veth0?port=9723&peer=198.18.0.2:9723",
    );
}

#[test]
fn soak_xdp() {
    lab_soak(
        "soak_xdp",
        "xdp://veth0/0?port=9724",
        "xdp://veth0/0?port=9724&peer=198.18.0.2:9724",
    );
}

/// Needs no root: both rings in /dev/shm, both processes here. The rings
/// are small so the warm-up touches every page of them: a ring's pages count
/// in the RSS of its writer once written, which is growth but no leak.
#[test]
fn soak_shm() {
    let name = format!("soak-test-{}", std::process::id());
    let uri = format!("shm://{name}?slots=256");
    let s = soak(None, None, &uri, &uri);
    let _ = Command::new(BIN)
        .args(["shm", "rm", &name, "--force"])
        .output();
    check("soak_shm", &s);
}

/// The accounting check is not vacuous: each kind of imbalance is caught.
#[test]
fn accounting_catches_what_is_unbalanced() {
    let ping: Value = serde_json::json!({
        "sent": 100, "warmup": 10, "lost": 0, "aborted": null,
        "capabilities": {"backend": {"kind": "xdp",
            "frames": {"rx_frames": 110, "delivered": 110, "oversized": 0, "truncated": 0,
                "malformed": 0, "ip_checksum": 0, "udp_checksum": 0, "ip_options": 0,
                "fragment": 0, "other": 0},
            "umem": {"total": 64, "free": 30, "fill": 32, "tx_in_flight": 2, "lost": 0},
            "socket": {"bad_descriptors": 0}}}
    });
    let pong: Value = serde_json::json!({
        "received": 110, "echoed": 110, "truncated": 0, "send_errors": 0, "recv_errors": 0,
        "capabilities": {"backend": {"kind": "packet",
            "ring": {"balanced": true, "rx_user": 0}}}
    });
    assert!(
        accounting(&ping, &pong).is_empty(),
        "{:?}",
        accounting(&ping, &pong)
    );
    let broken = |path: &[&str], v: Value, on_ping: bool| {
        let (mut c, mut s) = (ping.clone(), pong.clone());
        let mut at = if on_ping { &mut c } else { &mut s };
        for k in path {
            at = &mut at[*k];
        }
        *at = v;
        let bad = accounting(&c, &s);
        assert!(!bad.is_empty(), "{path:?} not caught");
    };
    let b = ["capabilities", "backend"];
    broken(&[b[0], b[1], "umem", "free"], 29.into(), true);
    broken(&[b[0], b[1], "umem", "lost"], 1.into(), true);
    broken(&[b[0], b[1], "frames", "delivered"], 109.into(), true);
    broken(&[b[0], b[1], "socket", "bad_descriptors"], 1.into(), true);
    broken(&[b[0], b[1], "ring", "balanced"], false.into(), false);
    broken(&[b[0], b[1], "ring", "rx_user"], 3.into(), false);
    broken(&["echoed"], 109.into(), false);
    broken(&["recv_errors"], 1.into(), false);
    broken(&["received"], 111.into(), false);
    broken(&["aborted"], "peer silent".into(), true);
    let mut c = ping.clone();
    c["capabilities"]["backend"] = serde_json::json!({"kind": "uring", "tx_errors": 0,
        "slots": {"rx_balanced": true}});
    assert!(accounting(&c, &pong).is_empty());
    c["capabilities"]["backend"]["slots"]["rx_balanced"] = false.into();
    assert!(!accounting(&c, &pong).is_empty(), "uring slots not caught");
}
