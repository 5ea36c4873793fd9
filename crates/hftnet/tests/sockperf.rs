//! `--protocol sockperf` against Debian's sockperf, both ways, across the
//! lab's two namespaces: sockperf's ping-pong, under-load and throughput
//! clients against `hftnet pong --protocol sockperf` (UDP and TCP), and
//! `hftnet ping --protocol sockperf` against `sockperf server`. Needs root
//! (the lab) and sockperf (`.ci/run` installs it). Every process is bounded
//! in time and stopped by its PID when dropped.

use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{Proc, TempDir, finish, run_in, skip_without_root, spawn_in};
use hftnet_lab::{Host, Lab};

/// Longest any one process of these tests may run.
const LIMIT: Duration = Duration::from_secs(60);

fn have_sockperf(test: &str) -> bool {
    let ok = Command::new("sockperf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        hftnet_lab::skip::skip(test, &"sockperf is not installed: apt-get install sockperf");
    }
    ok
}

/// Starts `sockperf ARGS` in `host`'s namespace, its output piped.
fn sockperf_in(host: &Host, args: &[&str]) -> Proc {
    let mut cmd = Command::new("sockperf");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    Proc(Some(
        host.spawn(&mut cmd).expect("spawn sockperf in the lab"),
    ))
}

/// Runs `sockperf ARGS` in `host`'s namespace to its end; its stdout and
/// stderr together, colours stripped.
fn run_sockperf(host: &Host, args: &[&str]) -> String {
    let out = finish(
        sockperf_in(host, args),
        LIMIT,
        &format!("sockperf {args:?}"),
    );
    let text = text_of(&out);
    assert!(out.status.success(), "sockperf {args:?} failed:\n{text}");
    text
}

/// stdout then stderr, without sockperf's ANSI colour codes.
fn text_of(out: &Output) -> String {
    let raw = [&out.stdout[..], &out.stderr[..]].concat();
    let s = String::from_utf8_lossy(&raw);
    let mut clean = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            clean.push(c);
        }
    }
    clean
}

/// `SentMessages` and `ReceivedMessages` of sockperf's summary line that
/// starts with `tag` (`[Total Run]` or `[Valid Duration]`).
fn counts(text: &str, tag: &str) -> (u64, u64) {
    let line = text
        .lines()
        .find(|l| l.contains(tag))
        .unwrap_or_else(|| panic!("no {tag} line in sockperf's output:\n{text}"));
    let field = |name: &str| -> u64 {
        let at = line
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in {line:?}"));
        line[at + name.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|e| panic!("{name} in {line:?}: {e}"))
    };
    (field("SentMessages="), field("ReceivedMessages="))
}

/// "Total of N messages sent" of sockperf's throughput summary.
fn throughput_sent(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.contains("Total of "))
        .unwrap_or_else(|| panic!("no 'Total of' line in sockperf's output:\n{text}"));
    let at = line.find("Total of ").unwrap() + "Total of ".len();
    line[at..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

/// `hftnet pong URI --protocol sockperf --json` in the exchange's
/// namespace, returned once it serves (it prints its configuration after
/// opening the transport).
fn our_pong(lab: &Lab, uri: &str) -> Proc {
    let mut pong = spawn_in(
        lab.exchange(),
        &[
            "pong",
            uri,
            "--protocol",
            "sockperf",
            "--duration",
            "50s",
            "--json",
        ],
    );
    let err = pong.child().stderr.as_mut().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(err).read_line(&mut line).unwrap();
    assert!(line.starts_with("# command: pong"), "pong said {line:?}");
    pong
}

/// Stops `pong` with SIGINT (by its PID) and returns its JSON counters.
fn stop_pong(mut pong: Proc) -> serde_json::Value {
    let pid = pong.child().id().to_string();
    let st = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(st.success());
    let out = finish(pong, LIMIT, "hftnet pong");
    assert!(
        out.status.success(),
        "pong: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("pong's JSON: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// sockperf's ping-pong, under-load and throughput clients in the trader's
/// namespace against our pong in the exchange's, over UDP and TCP.
#[test]
fn sockperf_clients_against_hftnet_pong() {
    const TEST: &str = "sockperf_clients_against_hftnet_pong";
    if skip_without_root(TEST) || !have_sockperf(TEST) {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let ip = lab.exchange().addr().to_string();
    let mut port = 11_200u16;
    for tcp in [false, true] {
        let scheme = if tcp { "tcp" } else { "udp" };
        let proto: &[&str] = if tcp { &["--tcp"] } else { &[] };
        let common = |mode: &str, port: &str, extra: &[&str]| -> Vec<String> {
            [mode, "-i", &ip, "-p", port, "-t", "1", "-m", "64"]
                .iter()
                .chain(proto)
                .chain(extra)
                .map(|s| s.to_string())
                .collect()
        };

        // Ping-pong: every message asks for a reply and gets one.
        port += 1;
        let p = port.to_string();
        let pong = our_pong(&lab, &format!("{scheme}://{ip}:{p}"));
        let args = common("ping-pong", &p, &[]);
        let text = run_sockperf(
            lab.trader(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let (valid_sent, valid_received) = counts(&text, "[Valid Duration]");
        assert!(
            valid_received > 0,
            "{scheme}: no valid observation:\n{text}"
        );
        assert_eq!(valid_sent, valid_received, "{scheme}:\n{text}");
        let (sent, received) = counts(&text, "[Total Run]");
        assert!(
            received <= sent && sent - received <= 1,
            "{scheme}:\n{text}"
        );
        let j = stop_pong(pong);
        assert_eq!(j["protocol"], "sockperf", "{j}");
        assert_eq!(j["received"], sent, "{scheme}: {j}\n{text}");
        assert_eq!(
            j["echoed"], sent,
            "{scheme}: every message asked for a reply: {j}"
        );
        assert_eq!(j["malformed"], 0, "{j}");
        assert_eq!(j["not_requested"], 0, "{j}");
        assert_eq!(j["bytes"], sent * 64, "{j}");

        // Under load: one message in ten asks for a reply (sequence
        // numbers from 1, those divisible by --reply-every).
        port += 1;
        let p = port.to_string();
        let pong = our_pong(&lab, &format!("{scheme}://{ip}:{p}"));
        let args = common("under-load", &p, &["--mps", "1000", "--reply-every", "10"]);
        let text = run_sockperf(
            lab.trader(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let (sent, received) = counts(&text, "[Total Run]");
        let (_, valid_received) = counts(&text, "[Valid Duration]");
        assert!(
            valid_received > 0,
            "{scheme}: no valid observation:\n{text}"
        );
        let j = stop_pong(pong);
        let (got, answered) = (
            j["received"].as_u64().unwrap(),
            j["echoed"].as_u64().unwrap(),
        );
        assert_eq!(got, sent, "{scheme}: {j}\n{text}");
        assert!(
            answered < got,
            "{scheme}: only the PONG-requested are answered: {j}"
        );
        assert_eq!(answered, sent / 10, "{scheme}: {j}\n{text}");
        assert_eq!(j["not_requested"], sent - sent / 10, "{scheme}: {j}");
        assert!(received <= answered, "{scheme}: {j}\n{text}");
        assert_eq!(j["malformed"], 0, "{j}");

        // Throughput: nothing asks for a reply.
        port += 1;
        let p = port.to_string();
        let pong = our_pong(&lab, &format!("{scheme}://{ip}:{p}"));
        let args = common("throughput", &p, &["--mps", "1000"]);
        let text = run_sockperf(
            lab.trader(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let sent = throughput_sent(&text);
        assert!(sent > 0, "{text}");
        let j = stop_pong(pong);
        assert_eq!(j["received"], sent, "{scheme}: {j}\n{text}");
        assert_eq!(j["echoed"], 0, "{scheme}: {j}");
        assert_eq!(j["not_requested"], sent, "{scheme}: {j}");
    }
    // The namespaces go with the lab.
    let names: Vec<String> = lab.namespaces().iter().map(|s| s.to_string()).collect();
    drop(lab);
    let left = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    for n in names {
        assert!(!left.contains(&n), "{n} left behind");
    }
}

/// Waits until something in `host`'s namespace holds `addr` (sockperf's
/// server has bound it), read from the namespace's socket tables
/// (`/proc/thread-self/net/udp` or `tcp`, a listening TCP socket) — never by
/// binding the port ourselves, which could make sockperf's own bind fail.
fn wait_bound(host: &Host, addr: SocketAddr, tcp: bool) {
    let start = Instant::now();
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 only: {addr}")
    };
    // /proc/net/{udp,tcp}: local address as little-endian hex IP:port.
    // Bound to the address or to any.
    let locals = [
        format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        format!("00000000:{:04X}", v4.port()),
    ];
    loop {
        let locals = locals.clone();
        let taken = host
            .run(move || {
                let table = if tcp { "tcp" } else { "udp" };
                std::fs::read_to_string(format!("/proc/thread-self/net/{table}"))
                    .unwrap_or_default()
                    .lines()
                    .skip(1)
                    .any(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        // st 0A: TCP_LISTEN (a UDP socket is 07, bound).
                        f.get(1).is_some_and(|a| locals.iter().any(|l| l == a))
                            && (!tcp || f.get(3) == Some(&"0A"))
                    })
            })
            .unwrap();
        if taken {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sockperf server did not bind {addr} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `hftnet ping --protocol sockperf` against `sockperf server`, UDP and TCP:
/// every measured probe answered, the histogram written.
#[test]
fn hftnet_ping_against_sockperf_server() {
    const TEST: &str = "hftnet_ping_against_sockperf_server";
    if skip_without_root(TEST) || !have_sockperf(TEST) {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let ip: Ipv4Addr = lab.exchange().addr();
    let dir = TempDir::new("sockperf-ping");
    for (tcp, port) in [(false, 11_300u16), (true, 11_301)] {
        let scheme = if tcp { "tcp" } else { "udp" };
        let p = port.to_string();
        let ips = ip.to_string();
        let mut args = vec!["server", "-i", &ips, "-p", &p];
        if tcp {
            args.push("--tcp");
        }
        let server = sockperf_in(lab.exchange(), &args);
        wait_bound(lab.exchange(), SocketAddr::from((ip, port)), tcp);
        let hgrm = dir.0.join(format!("{scheme}.hgrm"));
        let uri = format!("{scheme}://{ip}:{port}");
        let out = run_in(
            lab.trader(),
            &[
                "ping",
                &uri,
                "--protocol",
                "sockperf",
                "--count",
                "2000",
                "--warmup",
                "100",
                "--json",
                "--hgrm",
                hgrm.to_str().unwrap(),
            ],
            LIMIT,
        );
        assert!(
            out.status.success(),
            "ping {uri}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["protocol"], "sockperf", "{j}");
        assert_eq!(j["samples"], 2000, "{j}");
        assert_eq!(j["sent"], 2000, "{j}");
        assert_eq!(j["lost"], 0, "{j}");
        assert_eq!(j["warmup"], 100, "{j}");
        assert_eq!(j["foreign"], 0, "{j}");
        assert_eq!(j["corrupted"], 0, "{j}");
        assert!(j["rtt_ns"]["p50"].as_u64().unwrap() > 0, "{j}");
        let h = std::fs::read_to_string(&hgrm).unwrap();
        assert!(
            h.contains(&format!("Total count    = {:12}]", 2000)),
            "the .hgrm holds the 2000 round trips:\n{h}"
        );
        drop(server);
    }
}
