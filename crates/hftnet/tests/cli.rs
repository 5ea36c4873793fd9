//! The `hftnet` binary end to end: ping and pong across a real two-namespace
//! lab for UDP (each receive strategy), TCP, multicast, AF_PACKET rings and
//! AF_XDP (also facing kernel sockets), `xdp stats` and no XDP program left
//! after a SIGKILL, the lab main job and its packet and xdp rows,
//! and bad input. Lab tests need root (CI runs as root); without it they say
//! why on stderr and return.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Proc, run_in, skip_without_root, spawn_in};
use hftnet_lab::{Host, Lab};
use serde_json::Value;

fn wait_ready(pong: &mut Proc) {
    // pong prints its configuration before serving; wait for the first line.
    use std::io::BufRead;
    let out = pong.child().stdout.as_mut().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).unwrap();
    assert!(line.starts_with("# command: pong"), "pong said {line:?}");
}

fn ping_json(host: &Host, uri: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "ping",
        uri,
        "--count",
        "2000",
        "--warmup",
        "200",
        "--json",
        "--timeout",
        "500ms",
    ];
    args.extend_from_slice(extra);
    let out = run_in(host, &args, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "ping {uri} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ping --json prints one JSON object")
}

fn assert_clean_run(j: &Value, transport: &str) {
    assert_eq!(j["transport"], transport, "{j}");
    assert_eq!(j["samples"], 2000, "{j}");
    assert_eq!(j["warmup"], 200, "{j}");
    assert_eq!(j["lost"], 0, "{j}");
    assert_eq!(j["duplicated"], 0, "{j}");
    assert_eq!(j["foreign"], 0, "{j}");
    assert_eq!(j["message_bytes"], 64, "{j}");
    let r = &j["rtt_ns"];
    let (min, p50, p99, max) = (
        r["min"].as_u64().unwrap(),
        r["p50"].as_u64().unwrap(),
        r["p99"].as_u64().unwrap(),
        r["max"].as_u64().unwrap(),
    );
    // Sane, not tuned: a veth round trip is more than 1 µs and its median well under 100 ms.
    assert!(
        min >= 1_000 && min <= p50 && p50 <= p99 && p99 <= max,
        "{r}"
    );
    assert!(p50 < 100_000_000, "{r}");
}

fn pong_then_ping(lab: &Lab, server_uri: &str, client_uri: &str, transport: &str) {
    let mut pong = spawn_in(lab.exchange(), &["pong", server_uri, "--duration", "60s"]);
    wait_ready(&mut pong);
    let j = ping_json(lab.trader(), client_uri, &[]);
    assert_clean_run(&j, transport);
    // pong's byte-for-byte echo is checked by ping: a changed byte is foreign.
    drop(pong);
}

#[test]
fn udp_each_strategy_across_the_lab() {
    if skip_without_root("udp_each_strategy_across_the_lab") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    for (i, rx) in ["block", "spin", "adaptive", "busy-poll"]
        .iter()
        .enumerate()
    {
        let uri = format!("udp://198.18.0.2:{}?rx={rx}", 9000 + i);
        pong_then_ping(&lab, &uri, &uri, "udp");
    }
}

#[test]
fn tcp_and_multicast_across_the_lab() {
    if skip_without_root("tcp_and_multicast_across_the_lab") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    pong_then_ping(
        &lab,
        "tcp://198.18.0.2:9100?rx=spin",
        "tcp://198.18.0.2:9100?rx=spin",
        "tcp",
    );
    pong_then_ping(
        &lab,
        "tcp://198.18.0.2:9101",
        "tcp://198.18.0.2:9101",
        "tcp",
    );
    let g = "mcast://239.1.1.1:9102?iface=veth0";
    pong_then_ping(&lab, g, g, "mcast");
    let ssm = "mcast://239.1.1.2:9103?iface=veth0&source=198.18.0.1&rx=spin";
    pong_then_ping(
        &lab,
        ssm,
        "mcast://239.1.1.2:9103?iface=veth0&rx=spin",
        "mcast",
    );
}

#[test]
fn packet_rings_across_the_lab() {
    if skip_without_root("packet_rings_across_the_lab") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    // Rings on both ends, V2 spinning and V3 blocking.
    pong_then_ping(
        &lab,
        "packet://veth0?port=9200&rx=spin",
        "packet://veth0?port=9200&peer=198.18.0.2:9200&rx=spin",
        "packet",
    );
    pong_then_ping(
        &lab,
        "packet://veth0?port=9201&version=3",
        "packet://veth0?port=9201&peer=198.18.0.2:9201&version=3",
        "packet",
    );
    // A ring facing a kernel socket, both ways round.
    pong_then_ping(
        &lab,
        "packet://veth0?port=9202&rx=spin",
        "udp://198.18.0.2:9202?rx=spin",
        "udp",
    );
    pong_then_ping(
        &lab,
        "udp://198.18.0.2:9203",
        "packet://veth0?port=9203&peer=198.18.0.2:9203",
        "packet",
    );
}

#[test]
fn xdp_across_the_lab() {
    if skip_without_root("xdp_across_the_lab") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    // AF_XDP at both ends, spinning and blocking.
    pong_then_ping(
        &lab,
        "xdp://veth0/0?port=9300&rx=spin",
        "xdp://veth0/0?port=9300&peer=198.18.0.2:9300&rx=spin",
        "xdp",
    );
    pong_then_ping(
        &lab,
        "xdp://veth0/0?port=9301",
        "xdp://veth0/0?port=9301&peer=198.18.0.2:9301",
        "xdp",
    );
    // Busy polling of the device from the receive loop.
    pong_then_ping(
        &lab,
        "xdp://veth0/0?port=9304&rx=busy-poll&busy_poll=50&prefer_busy_poll=1",
        "xdp://veth0/0?port=9304&peer=198.18.0.2:9304&rx=busy-poll&busy_poll=50",
        "xdp",
    );
    // An AF_XDP responder facing a kernel client, and the other way round.
    pong_then_ping(
        &lab,
        "xdp://veth0/0?port=9302&rx=spin",
        "udp://198.18.0.2:9302?rx=spin",
        "udp",
    );
    pong_then_ping(
        &lab,
        "udp://198.18.0.2:9303?rx=spin",
        "xdp://veth0/0?port=9303&peer=198.18.0.2:9303&rx=spin",
        "xdp",
    );
}

#[test]
fn xdp_stats_and_no_program_left_after_sigkill() {
    if skip_without_root("xdp_stats_and_no_program_left_after_sigkill") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let attached = || {
        lab.exchange()
            .run(|| hftnet_io::xdp::steer::attached_program("veth0").unwrap())
            .unwrap()
    };
    assert!(attached().is_none());
    let mut pong = spawn_in(
        lab.exchange(),
        &["pong", "xdp://veth0/0?port=9310", "--duration", "60s"],
    );
    wait_ready(&mut pong);
    assert!(attached().is_some(), "the steering program is attached");
    let j = ping_json(lab.trader(), "udp://198.18.0.2:9310", &[]);
    assert_clean_run(&j, "udp");
    let out = run_in(
        lab.exchange(),
        &["xdp", "stats", "veth0", "--json"],
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    // 2000 probes and 200 warm-up probes, all steered.
    assert_eq!(st["verdicts"]["redirect"], 2200, "{st}");
    assert_eq!(st["flows"][0]["dst"], "198.18.0.2:9310", "{st}");
    assert_eq!(st["flows"][0]["packets"], 2200, "{st}");
    // SIGKILL: no clean-up code runs, the bpf_link goes with the process.
    pong.child().kill().unwrap();
    pong.child().wait().unwrap();
    let start = Instant::now();
    while attached().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "an XDP program is still attached 5 s after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run_in(
        lab.exchange(),
        &["xdp", "stats", "veth0"],
        Duration::from_secs(10),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("veth0"), "{err}");
}

#[test]
fn ping_reports_pinning_rate_and_hgrm() {
    if skip_without_root("ping_reports_pinning_rate_and_hgrm") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let mut pong = spawn_in(
        lab.exchange(),
        &[
            "pong",
            "udp://198.18.0.2:9200?rx=spin",
            "--cpu",
            "1",
            "--duration",
            "60s",
        ],
    );
    wait_ready(&mut pong);
    let hgrm = std::env::temp_dir().join(format!("hftnet-test-{}.hgrm", std::process::id()));
    let hgrm_s = hgrm.to_str().unwrap();
    let j = ping_json(
        lab.trader(),
        "udp://198.18.0.2:9200?rx=spin",
        &["--cpu", "0", "--rate", "5000", "--hgrm", hgrm_s],
    );
    assert_clean_run(&j, "udp");
    assert_eq!(j["client_cpu"], 0);
    assert_eq!(j["rate_pps"], 5000);
    let text = std::fs::read_to_string(&hgrm).unwrap();
    let _ = std::fs::remove_file(&hgrm);
    assert!(
        text.contains("Value") && text.contains("Percentile"),
        "{text}"
    );
    let max_line = text.lines().find(|l| l.starts_with("#[Max")).unwrap();
    assert!(
        max_line.contains("Total count") && max_line.trim_end().ends_with(" 2000]"),
        "{max_line}"
    );
}

#[test]
fn the_lab_main_job_runs_and_cleans_up() {
    if skip_without_root("the_lab_main_job_runs_and_cleans_up") {
        return;
    }
    let json = std::env::temp_dir().join(format!("hftnet-lab-{}.json", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "lab",
            "--duration",
            "400ms",
            "--rounds",
            "2",
            "--transports",
            "udp,mcast,shm",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("p50 ratio vs udp/block"), "{stdout}");
    assert!(
        stdout.contains("floor: bare cache-line RTT p50 "),
        "{stdout}"
    );
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(j["mode"], "lab");
    let rows = j["results"].as_array().unwrap();
    // The floor first, then udp's 7 rows, mcast's 4 and shm's 2 (the
    // shared-memory rows run between the lab's two namespaces too).
    assert_eq!(rows.len(), 14);
    assert_eq!(rows[12]["rung"]["transport"], "shm");
    assert_floor_row(&j);
    for row in rows {
        let strategy = row["rung"]["strategy"].as_str().unwrap();
        if strategy == "busy-poll" && row["note"].is_string() {
            assert!(
                row["note"].as_str().unwrap().contains("not in effect"),
                "{row}"
            );
            continue;
        }
        assert!(row["samples"].as_u64().unwrap() > 100, "{row}");
        assert_eq!(row["lost"], 0, "{row}");
    }
    assert_eq!(rows[1]["rung"]["strategy"], "block");
    assert_eq!(rows[1]["p50_ratio"], 1.0);
    // Its namespaces are gone.
    for ns in j["lab"]["namespaces"].as_array().unwrap() {
        let ns = ns.as_str().unwrap();
        assert!(
            !std::path::Path::new("/run/netns").join(ns).exists(),
            "{ns} left behind"
        );
    }
}

#[test]
fn the_lab_runs_only_the_rows_named() {
    if skip_without_root("the_lab_runs_only_the_rows_named") {
        return;
    }
    let json = std::env::temp_dir().join(format!("hftnet-lab-rows-{}.json", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "lab",
            "--duration",
            "300ms",
            "--rounds",
            "2",
            "--transports",
            "udp/spin,uring,udp/block",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let rows: Vec<String> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}/{}", r["rung"]["transport"], r["rung"]["strategy"]).replace('"', ""))
        .collect();
    // The floor, then the rows named, in the backend table's order per scheme.
    assert_eq!(
        rows,
        [
            "floor/cache-line",
            "udp/block",
            "udp/spin",
            "uring/wait",
            "uring/spin",
            "uring/spin+multishot"
        ]
    );
    for row in j["results"].as_array().unwrap() {
        assert!(row["samples"].as_u64().unwrap() > 100, "{row}");
        assert_eq!(row["lost"], 0, "{row}");
    }
    assert_eq!(j["baseline"], "udp/block");
}

#[test]
fn the_lab_has_packet_and_xdp_rows() {
    if skip_without_root("the_lab_has_packet_and_xdp_rows") {
        return;
    }
    let json = std::env::temp_dir().join(format!("hftnet-lab-pk-{}.json", std::process::id()));
    let out = Command::new(BIN)
        .args([
            "lab",
            "--duration",
            "300ms",
            "--rounds",
            "1",
            "--transports",
            "udp,packet,xdp",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let rows = |t: &str| -> Vec<Value> {
        j["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["rung"]["transport"] == t)
            .cloned()
            .collect()
    };
    let names = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["rung"]["strategy"].as_str().unwrap().to_string())
            .collect()
    };
    let (packet, xdp) = (rows("packet"), rows("xdp"));
    assert_eq!(names(&packet), ["block", "spin"]);
    assert_eq!(
        names(&xdp),
        ["block", "spin", "spin/udp-client", "spin+timestamps"]
    );
    for row in packet.iter().chain(&xdp) {
        assert!(row["samples"].as_u64().unwrap() > 10, "{row}");
        assert_eq!(row["lost"], 0, "{row}");
        assert!(row["p50_ratio"].as_f64().unwrap() > 0.0, "{row}");
    }
}

#[test]
fn lab_without_root_falls_back_to_loopback() {
    if skip_without_root("lab_without_root_falls_back_to_loopback") {
        return;
    }
    // Run as nobody: no CAP_SYS_ADMIN, so no namespaces.
    let dir = tempdir_for_nobody();
    let json = dir.join("out.json");
    let out = Command::new(BIN)
        .args([
            "lab",
            "--duration",
            "200ms",
            "--rounds",
            "1",
            "--transports",
            "udp,mcast",
            "--json",
        ])
        .arg(&json)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(
        stderr.contains("falling back to a loopback-only run"),
        "{stderr}"
    );
    assert!(stderr.contains("mcast skipped"), "{stderr}");
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(j["mode"], "loopback");
    // The floor, then udp's four strategies and its batch, zero-copy and
    // timestamp rows.
    assert_eq!(j["results"].as_array().unwrap().len(), 8);
    assert_floor_row(&j);
    assert_eq!(j["results"][2]["rung"]["strategy"], "spin");
    assert!(j["results"][2]["samples"].as_u64().unwrap() > 100, "{j}");
}

/// The lab JSON's first row is the floor, measured (this machine has two
/// CPUs), never the baseline, and `floor_p50_ns` is its p50.
fn assert_floor_row(j: &Value) {
    let floor = &j["results"][0];
    assert_eq!(floor["rung"]["transport"], "floor", "{floor}");
    assert_eq!(floor["rung"]["strategy"], "cache-line", "{floor}");
    assert_eq!(floor["rung"]["kind"], "cache_line_floor", "{floor}");
    assert_ne!(j["baseline"], "floor/cache-line");
    if j["client_cpu"].is_null() {
        // Fewer than two CPUs: the row says why it has no figures.
        assert_eq!(floor["samples"], 0, "{floor}");
        assert!(
            floor["note"]
                .as_str()
                .unwrap()
                .contains("two different CPUs")
        );
        assert!(j["floor_p50_ns"].is_null());
        return;
    }
    assert!(floor["samples"].as_u64().unwrap() > 0, "{floor}");
    assert!(floor["note"].is_null(), "{floor}");
    assert!(floor["p50_ratio"].as_f64().unwrap() > 0.0, "{floor}");
    assert_eq!(j["floor_p50_ns"], floor["rtt_ns"]["p50"], "{j}");
}

fn tempdir_for_nobody() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let d = std::env::temp_dir().join(format!("hftnet-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

#[test]
fn unreachable_peer_exits_nonzero_after_its_timeout() {
    if skip_without_root("unreachable_peer_exits_nonzero_after_its_timeout") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    // 198.18.0.99 is on the lab subnet but nobody answers ARP for it.
    let t = Instant::now();
    let out = run_in(
        lab.trader(),
        &[
            "ping",
            "udp://198.18.0.99:9000",
            "--count",
            "100",
            "--warmup",
            "0",
            "--timeout",
            "200ms",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unreachable") && stderr.contains("lost"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("# lost: 3"), "{stdout}");
}

#[test]
fn port_in_use_is_a_clear_error() {
    if skip_without_root("port_in_use_is_a_clear_error") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let mut first = spawn_in(
        lab.exchange(),
        &["pong", "udp://198.18.0.2:9300", "--duration", "30s"],
    );
    wait_ready(&mut first);
    let out = run_in(
        lab.exchange(),
        &["pong", "udp://198.18.0.2:9300", "--duration", "1s"],
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("198.18.0.2:9300 is already in use"),
        "{stderr}"
    );
}

#[test]
fn malformed_uris_and_values_are_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["ping", "quic://1.2.3.4:5"],
            "accepted schemes: udp, mcast, tcp, uring, packet, xdp",
        ),
        (&["ping", "udp://1.2.3.4"], "has no port"),
        (
            &["ping", "udp://1.2.3.4:5?rx=fast"],
            "one of block, spin, adaptive, busy-poll",
        ),
        (&["ping", "udp://1.2.3.4:5?rcvbuf=lots"], "\"rcvbuf\""),
        (
            &["ping", "udp://1.2.3.4:5?colour=blue"],
            "unknown parameter \"colour\"",
        ),
        (
            &["ping", "udp://1.2.3.4:5", "--size", "4"],
            "message size 4",
        ),
        (
            &["ping", "udp://1.2.3.4:5", "--size", "70000"],
            "message size 70000",
        ),
        (
            &["ping", "udp://1.2.3.4:5?cpu=1", "--cpu", "0"],
            "contradicts cpu=1",
        ),
        (&["ping", "udp://1.2.3.4:5", "--cpu", "4000"], "CPU 4000"),
        (
            &["pong", "mcast://10.1.1.1:5"],
            "not an IPv4 multicast group",
        ),
        (
            &["pong", "mcast://239.1.1.1:5?iface=nosuch0"],
            "\"nosuch0\" does not exist",
        ),
        (&["pong", "udp://1.2.3.4:5?rx=spin&spins=5"], "rx=adaptive"),
        (
            &["lab", "--transports", "udp,quic"],
            "unknown transport \"quic\"",
        ),
        (
            &["lab", "--transports", "quic/spin"],
            "unknown transport \"quic\"",
        ),
        (
            &["lab", "--transports", "udp/spin,uring/nosuch"],
            "uring has no row \"nosuch\"; its rows here: wait, spin, spin+multishot",
        ),
        (
            &["lab", "--transports", "udp/"],
            "names no row: write udp or udp/ROW",
        ),
        (
            &["ping", "udp://1.2.3.4:5", "--duration", "soon"],
            "not a duration",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(BIN).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(want),
            "{args:?}: expected {want:?} in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn lab_up_and_down_by_name() {
    if skip_without_root("lab_up_and_down_by_name") {
        return;
    }
    let name = format!("t{}", std::process::id());
    let up = Command::new(BIN)
        .args(["lab", "up", "--name", &name, "--queues", "2"])
        .output()
        .unwrap();
    // Whatever happens below, remove it.
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = hftnet_lab::remove(&self.0);
        }
    }
    let _guard = Down(name.clone());
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(
        text.contains("198.18.0.1")
            && text.contains("198.18.0.2")
            && text.contains(&format!("hft-{name}-trader"))
            && text.matches(" 2 queues").count() == 2,
        "{text}"
    );
    let list = Command::new(BIN).args(["lab", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&name));
    let down = Command::new(BIN)
        .args(["lab", "down", "--name", &name])
        .output()
        .unwrap();
    assert!(down.status.success());
    assert!(
        !std::path::Path::new("/run/netns")
            .join(format!("hft-{name}-trader"))
            .exists()
    );
    let again = Command::new(BIN)
        .args(["lab", "down", "--name", &name])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no lab named"));
}

/// `finish` reads the child's pipes while it waits: a child that writes
/// far more than a pipe holds (64 KiB) to both stdout and stderr ends, and
/// every byte is collected.
#[test]
fn finish_collects_more_output_than_a_pipe_holds() {
    let p = Proc(Some(
        Command::new("sh")
            .args([
                "-c",
                "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2; exit 3",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let out = common::finish(p, Duration::from_secs(30), "a chatty child");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!((out.stdout.len(), out.stderr.len()), (300_000, 200_000));
}

/// A dropped `Proc` is interrupted (SIGINT) before it would be killed, so
/// its clean-up runs; one that ignores SIGINT is killed after the grace.
#[test]
fn a_dropped_proc_gets_sigint_first_then_sigkill() {
    let dir = common::TempDir::new("hftnet-proc-drop");
    let mark = dir.0.join("interrupted");
    let script = format!(
        "trap 'echo clean > {}; exit 0' INT; echo up; while :; do sleep 0.05; done",
        mark.display()
    );
    let spawn = |script: &str| {
        let mut p = Proc(Some(
            Command::new("sh")
                .args(["-c", script])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        ));
        // The trap is set once it has said "up".
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(p.child().stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "up\n");
        p
    };
    drop(spawn(&script));
    assert_eq!(std::fs::read_to_string(&mark).unwrap(), "clean\n");
    // Ignores SIGINT: the drop still ends (and reaps) it.
    let mut p = spawn("trap '' INT; echo up; while :; do sleep 0.05; done");
    let pid = p.child().id();
    drop(p);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| !c.starts_with("sh")),
        "the child that ignored SIGINT is still there"
    );
}
