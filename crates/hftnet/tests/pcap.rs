//! `pcap=FILE` on a ping across the lab, read back with `tcpdump -r`: for
//! `udp://` and `tcp://` (headers synthesized around the payloads the
//! kernel sockets carried) and for `packet://` and `xdp://` (the real frames
//! the rings took and built). Each capture holds exactly the probes and
//! their echoes, between the lab's addresses and the ports used, with the
//! probe bytes as sent; the layer-2 captures carry the veths' real MAC
//! addresses. Needs root (the lab) and tcpdump (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;

use common::{run_in, skip_without_root, spawn_in};
use hftnet_io::l2::L2Iface;
use hftnet_lab::{Host, Lab};
use hftnet_wire::probe;

const PROBES: u64 = 40;

/// A capture file removed when dropped.
struct Capture(PathBuf);

impl Capture {
    fn new(what: &str) -> Self {
        Self(std::env::temp_dir().join(format!("hftnet-test-{what}-{}.pcap", std::process::id())))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn have_tcpdump(test: &str) -> bool {
    let ok = Command::new("tcpdump")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        hftnet_lab::skip::skip(test, &"tcpdump is not installed: apt-get install tcpdump");
    }
    ok
}

/// One packet as tcpdump printed it: the summary line (with `-e`: the MAC
/// addresses) and its bytes from the IP header on.
struct Dumped {
    line: String,
    ip: Vec<u8>,
}

impl Dumped {
    fn ihl(&self) -> usize {
        usize::from(self.ip[0] & 0x0f) * 4
    }

    /// Source and destination `ip:port` of the IPv4 packet.
    fn ends(&self) -> (String, String) {
        let h = self.ihl();
        let ip = |at: usize| {
            format!(
                "{}.{}.{}.{}",
                self.ip[at],
                self.ip[at + 1],
                self.ip[at + 2],
                self.ip[at + 3]
            )
        };
        let port = |at: usize| u16::from_be_bytes([self.ip[h + at], self.ip[h + at + 1]]);
        (
            format!("{}:{}", ip(12), port(0)),
            format!("{}:{}", ip(16), port(2)),
        )
    }

    /// The UDP or TCP payload.
    fn payload(&self) -> &[u8] {
        let h = self.ihl();
        match self.ip[9] {
            17 => &self.ip[h + 8..],
            6 => &self.ip[h + usize::from(self.ip[h + 12] >> 4) * 4..],
            p => panic!("not UDP or TCP: protocol {p}: {}", self.line),
        }
    }
}

fn tcpdump(path: &Path) -> Vec<Dumped> {
    let o = Command::new("tcpdump")
        .args(["-r", path.to_str().unwrap(), "-nn", "-e", "-x"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tcpdump -r {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut out: Vec<Dumped> = Vec::new();
    for line in String::from_utf8(o.stdout).unwrap().lines() {
        if let Some(hex) = line.trim_start().strip_prefix("0x") {
            let (_, words) = hex.split_once(':').unwrap();
            let d = out.last_mut().expect("hex after a summary line");
            for w in words.split_whitespace() {
                for i in (0..w.len()).step_by(2) {
                    d.ip.push(u8::from_str_radix(&w[i..i + 2], 16).unwrap());
                }
            }
        } else {
            out.push(Dumped {
                line: line.to_string(),
                ip: Vec::new(),
            });
        }
    }
    out
}

/// Runs pong `server_uri` in the exchange namespace and a ping of
/// [`PROBES`] probes to `client_uri` with `&pcap=FILE` in the trader
/// namespace; returns what tcpdump reads in the capture.
fn ping_captured(lab: &Lab, server_uri: &str, client_uri: &str, cap: &Capture) -> Vec<Dumped> {
    let mut pong = spawn_in(lab.exchange(), &["pong", server_uri, "--duration", "60s"]);
    {
        use std::io::BufRead;
        let out = pong.child().stdout.as_mut().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        assert!(line.starts_with("# command: pong"), "pong said {line:?}");
    }
    let uri = format!("{client_uri}&pcap={}", cap.0.display());
    let count = PROBES.to_string();
    let out = run_in(
        lab.trader(),
        &[
            "ping", &uri, "--count", &count, "--warmup", "0", "--size", "64", "--json",
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "ping {uri}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["lost"], 0, "{j}");
    drop(pong);
    tcpdump(&cap.0)
}

/// The probes sent (in order, numbered 0..PROBES) and their echoes: each
/// request from the trader's end to the exchange's, each reply the other
/// way with the same bytes. `prefix`: bytes before the probe in a payload
/// (the TCP framing).
fn check_probes(packets: &[&Dumped], client_ip: &str, server: &str, prefix: usize) {
    let mut requests = Vec::new();
    let mut replies = Vec::new();
    let mut client = None;
    for p in packets {
        let (src, dst) = p.ends();
        let payload = &p.payload()[prefix..];
        assert_eq!(payload.len(), 64, "{}", p.line);
        if dst == server {
            assert!(src.starts_with(&format!("{client_ip}:")), "{}", p.line);
            assert_eq!(*client.get_or_insert(src.clone()), src, "one client port");
            requests.push(payload.to_vec());
        } else {
            assert_eq!(src, server, "{}", p.line);
            assert_eq!(Some(&dst), client.as_ref(), "{}", p.line);
            replies.push(payload.to_vec());
        }
    }
    assert_eq!(requests.len() as u64, PROBES);
    assert_eq!(replies, requests, "every echo carries the probe's bytes");
    for (i, r) in requests.iter().enumerate() {
        let p = probe::Packet::new_checked(&r[..]).unwrap();
        assert_eq!(p.seq(), i as u64, "probes in order");
    }
}

fn mac_of(host: &Host) -> String {
    let iface = host.iface().to_string();
    host.run(move || L2Iface::lookup(&iface).unwrap().mac.to_string())
        .unwrap()
}

#[test]
fn kernel_socket_captures_have_synthesized_headers() {
    let test = "kernel_socket_captures_have_synthesized_headers";
    if skip_without_root(test) || !have_tcpdump(test) {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let cap = Capture::new("udp");
    let got = ping_captured(
        &lab,
        "udp://198.18.0.2:9500",
        "udp://198.18.0.2:9500?rx=spin",
        &cap,
    );
    assert_eq!(
        got.len() as u64,
        2 * PROBES,
        "one record per message each way"
    );
    assert!(
        got.iter().all(|d| d.line.contains("UDP, length 64")),
        "{}",
        got[0].line
    );
    check_probes(
        &got.iter().collect::<Vec<_>>(),
        "198.18.0.1",
        "198.18.0.2:9500",
        0,
    );

    let cap = Capture::new("tcp");
    let got = ping_captured(
        &lab,
        "tcp://198.18.0.2:9501",
        "tcp://198.18.0.2:9501?rx=spin",
        &cap,
    );
    // The synthesized handshake, then one segment per message each way,
    // each carrying the 4-byte length prefix and the probe.
    assert_eq!(got.len() as u64, 3 + 2 * PROBES);
    assert!(got[0].line.contains("Flags [S]"), "{}", got[0].line);
    assert!(got[1].line.contains("Flags [S.]"), "{}", got[1].line);
    let data: Vec<&Dumped> = got[3..].iter().collect();
    for d in &data {
        assert!(d.line.contains("Flags [P.]"), "{}", d.line);
        assert_eq!(&d.payload()[..4], &64u32.to_be_bytes()[..], "{}", d.line);
    }
    check_probes(&data, "198.18.0.1", "198.18.0.2:9501", 4);
}

#[test]
fn ring_captures_hold_the_real_frames() {
    let test = "ring_captures_hold_the_real_frames";
    if skip_without_root(test) || !have_tcpdump(test) {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (client_mac, server_mac) = (mac_of(lab.trader()), mac_of(lab.exchange()));
    for (scheme, path, port) in [("packet", "", 9510), ("xdp", "/0", 9511)] {
        let cap = Capture::new(scheme);
        let got = ping_captured(
            &lab,
            &format!("{scheme}://veth0{path}?port={port}&rx=spin"),
            &format!("{scheme}://veth0{path}?port={port}&peer=198.18.0.2:{port}&rx=spin"),
            &cap,
        );
        assert_eq!(got.len() as u64, 2 * PROBES, "{scheme}: frames each way");
        let server = format!("198.18.0.2:{port}");
        for d in &got {
            // tcpdump -e: "SRC > DST, ethertype IPv4 (0x0800), length ...".
            let macs = if d.ends().1 == server {
                format!("{client_mac} > {server_mac}")
            } else {
                format!("{server_mac} > {client_mac}")
            };
            assert!(d.line.contains(&macs), "{scheme}: {} lacks {macs}", d.line);
        }
        check_probes(&got.iter().collect::<Vec<_>>(), "198.18.0.1", &server, 0);
    }
}
