//! `hftnet` over `dpdk://` (cargo feature `dpdk`), one process per end —
//! `rte_eal_init` runs once per process, so what needs a fresh EAL runs as
//! its own `hftnet`: ping ↔ pong between two DPDK ports over `net_af_packet`
//! and `net_af_xdp` with every probe answered; `blast` → `sink` over both
//! drivers (a DPDK or kernel sink) with exact counts; `hftnet lab
//! --transports dpdk` with its two rows; and bad input (an unknown device,
//! a driver plugin not installed, no room for the EAL or the mempool
//! without hugepages, no privilege, a second EAL initialisation with other
//! `eal=` in one command) refused with exit code 2, a message naming the
//! problem, and nothing left behind (no EAL runtime directory, no XDP
//! program on the interface).
//!
//! Run with `cargo test -p hftnet --features dpdk --test dpdk`.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{run_in, skip_without_root, spawn_in};
use hftnet_lab::{Host, Lab};

/// The EAL runtime directory an `hftnet` of PID `pid` would leave.
fn runtime_dir_left(pid: u32) -> bool {
    Path::new(&format!("/var/run/dpdk/hftnet-{pid}")).exists()
        || Path::new(&format!("/tmp/dpdk/hftnet-{pid}")).exists()
}

/// Whether `host`'s interface has an XDP program attached.
fn has_xdp(host: &Host) -> bool {
    xdp_prog_id(host).is_some()
}

/// The id of the XDP program attached to `host`'s interface, if any.
fn xdp_prog_id(host: &Host) -> Option<u32> {
    let out = host
        .spawn(
            std::process::Command::new("ip")
                .args(["-d", "link", "show", host.iface()])
                .stdout(std::process::Stdio::piped()),
        )
        .unwrap()
        .wait_with_output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, rest) = text.split_once("prog/xdp id ")?;
    Some(
        rest.split_whitespace()
            .next()?
            .parse()
            .unwrap_or_else(|e| panic!("`ip -d link show`: bad program id ({e}): {text}")),
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn ping_pong_between_dpdk_processes_over_af_packet_and_af_xdp() {
    if skip_without_root("ping_pong_between_dpdk_processes_over_af_packet_and_af_xdp") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    for (k, drv) in ["net_af_packet", "net_af_xdp"].iter().enumerate() {
        let port = 9000 + 2 * k as u16;
        let server = format!("dpdk://{drv}0?iface={}&port={port}", sh.iface());
        let mut pong = spawn_in(sh, &["pong", &server, "--duration", "60s"]);
        let pong_pid = pong.child().id();
        let j = ping_dpdk(drv, sh, ch, port, 2000, 100);
        assert_eq!(j["transport"], "dpdk", "{j}");
        assert_eq!(j["send_errors"].as_u64(), Some(0), "{j}");
        // The pong ends on SIGINT like a user's ^C: cleanly, EAL cleaned up.
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pong_pid.to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let st = pong.child().wait().unwrap();
        assert!(st.success(), "{drv}: pong ended with {st}");
        assert!(
            !runtime_dir_left(pong_pid),
            "{drv}: pong left its EAL runtime directory"
        );
        assert!(
            !has_xdp(sh) && !has_xdp(ch),
            "{drv}: an XDP program was left attached"
        );
    }
}

/// A bad input: what it is, the URI, an environment variable, the
/// message's words.
type BadCase<'a> = (
    &'a str,
    Vec<String>,
    Option<(&'a str, String)>,
    &'a [&'a str],
);

/// Each bad input: exit code 2, the message, nothing left behind.
#[test]
fn bad_input_exits_2_naming_the_problem_and_leaves_nothing() {
    if skip_without_root("bad_input_exits_2_naming_the_problem_and_leaves_nothing") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let h = lab.exchange();
    let i = h.iface();
    // An empty plugin directory (not world-writable: the EAL refuses those).
    let empty = std::env::temp_dir().join(format!("hftnet-no-pmds-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cases: [BadCase<'_>; 6] = [
        (
            "unknown vdev",
            vec![format!("dpdk://net_foo0?iface={i}&port=9000")],
            None,
            &[
                "unknown DPDK virtual device \"net_foo0\"",
                "net_af_packet, net_af_xdp",
            ],
        ),
        (
            "missing driver",
            vec![format!("dpdk://net_af_xdp0?iface={i}&port=9000")],
            Some(("HFTNET_DPDK_PMD_DIR", empty.display().to_string())),
            &[
                "net_af_xdp is not installed",
                "apt-get install -y librte-net-af-xdp23",
            ],
        ),
        (
            "no such interface",
            vec!["dpdk://net_af_packet0?iface=nosuch0&port=9000".into()],
            None,
            &["\"nosuch0\" does not exist"],
        ),
        (
            "no room for the mempool",
            vec![format!(
                "dpdk://net_af_packet0?iface={i}&port=9000&mem=32&mbufs=65536"
            )],
            None,
            &["no room for a mempool of 65536 mbufs", "raise mem="],
        ),
        (
            "no room for the EAL",
            vec![format!(
                "dpdk://net_af_packet0?iface={i}&port=9000&mem=1000000"
            )],
            None,
            &["no room for the DPDK EAL's -m 1000000 MB", "lower mem="],
        ),
        (
            "rx=block",
            vec![format!(
                "dpdk://net_af_packet0?iface={i}&port=9000&rx=block"
            )],
            None,
            &["poll-mode"],
        ),
    ];
    for (what, args, env, wants) in &cases {
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.arg("pong").args(args).args(["--duration", "5s"]);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = h.spawn(&mut cmd).unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        for w in *wants {
            assert!(err.contains(w), "{what}: {err:?} lacks {w:?}");
        }
        assert!(!runtime_dir_left(pid), "{what}: EAL runtime directory left");
        assert!(!has_xdp(h), "{what}: XDP program left");
    }
    let _ = std::fs::remove_dir(&empty);

    // No privilege: the same URI as nobody.
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        common::BIN,
        "pong",
    ])
    .arg(format!("dpdk://net_af_xdp0?iface={i}&port=9000"))
    .args(["--duration", "5s"])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = h.spawn(&mut cmd).unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "no privilege: {err}");
    assert!(err.contains("needs CAP_NET_RAW (run as root)"), "{err}");
    assert!(
        !runtime_dir_left(pid),
        "no privilege: EAL runtime directory left"
    );
    assert!(!has_xdp(h));
}

/// A second EAL initialisation reached from the command line: `hftnet
/// feed` with two `dpdk://` feeds in one process whose `eal=` differ. Feed
/// A starts the EAL (and attaches net_af_xdp's XDP program); feed B asks
/// for other EAL arguments and is refused: exit code 2, a message naming
/// both `eal=` values and the rule, and nothing left behind — no EAL
/// runtime directory, no XDP program on the interface (feed A's port was
/// closed on the way out).
#[test]
fn a_second_eal_init_from_the_cli_exits_2_and_leaves_nothing() {
    if skip_without_root("a_second_eal_init_from_the_cli_exits_2_and_leaves_nothing") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let h = lab.exchange();
    let i = h.iface();
    for drv in ["net_af_packet", "net_af_xdp"] {
        let a = format!("dpdk://{drv}0?iface={i}&port=30001");
        let b = format!("dpdk://{drv}1?iface={i}&port=30002&eal=--huge-unlink");
        let mut cmd = std::process::Command::new(common::BIN);
        cmd.args(["feed", "--feed-a", &a, "--feed-b", &b, "--duration", "5s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = h.spawn(&mut cmd).unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{drv}: {err}");
        for w in [
            "opening feed B",
            "already initialised with eal=\"\"",
            "asks for eal=\"--huge-unlink\"",
            "rte_eal_init runs once per process",
            "give every dpdk:// endpoint of one process the same eal=",
        ] {
            assert!(err.contains(w), "{drv}: {err:?} lacks {w:?}");
        }
        assert!(!runtime_dir_left(pid), "{drv}: EAL runtime directory left");
        assert!(!has_xdp(h), "{drv}: XDP program left");
    }
}

/// One counter of `/proc/thread-self/net/snmp` (this thread's namespace).
fn snmp(proto: &str, col: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap();
    let mut rows = s.lines().filter(|l| l.starts_with(&format!("{proto}:")));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    let i = names.split_whitespace().position(|n| n == col).unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// The drops `host` counted: (its UDP receive errors, `InErrors` — socket
/// buffers full included; its interface's receive + transmit drops).
fn drops_in(host: &Host) -> (u64, u64) {
    let iface = host.iface().to_string();
    host.run(move || {
        let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
        let line = dev
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{iface}:")))
            .unwrap();
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        (snmp("Udp", "InErrors"), v[3] + v[11])
    })
    .unwrap()
}

/// `hftnet blast` from a DPDK port to `hftnet sink` on a DPDK port or a
/// kernel socket, over both drivers, at a bounded rate (10,000 messages/s,
/// receive rings and buffers that hold seconds of it): exact counts end to
/// end — the sender's 20,000 messages all built and taken by its port; the
/// sink's packets plus the drops counted on the way (either veth's drops,
/// and the DPDK sink port's missed frames, errors and mbuf failures and
/// frames dropped for a fault, or the kernel sink's UDP errors) are exactly 20,000, the bytes
/// exactly the packets', nothing reordered or duplicated. (net_af_packet in
/// DPDK 22.11 does not count what its kernel ring drops: its sink gets a
/// ring of 32768 frames, more than the whole run.)
#[test]
fn blast_to_sink_over_dpdk_is_exact() {
    if skip_without_root("blast_to_sink_over_dpdk_is_exact") {
        return;
    }
    const COUNT: u64 = 20_000;
    const SIZE: u64 = 64;
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let (si, ci, sip) = (sh.iface(), ch.iface(), sh.addr());
    let mut port = 9900u16;
    for drv in ["net_af_packet", "net_af_xdp"] {
        let ring = if drv == "net_af_packet" {
            "&devargs=framecnt=32768"
        } else {
            ""
        };
        for kind in ["dpdk", "udp"] {
            let sink_uri = if kind == "dpdk" {
                format!("dpdk://{drv}0?iface={si}&port={port}{ring}")
            } else {
                format!("udp://{sip}:{port}?rcvbuf=16M&rx=spin")
            };
            let what = format!("{drv} -> {kind} sink");
            let (udp0, veth0) = (drops_in(sh).0, drops_in(sh).1 + drops_in(ch).1);
            let mut sink = spawn_in(
                sh,
                &[
                    "sink",
                    &sink_uri,
                    "--duration",
                    "60s",
                    "--idle",
                    "1s",
                    "--json",
                ],
            );
            let sink_pid = sink.child().id();
            {
                use std::io::BufRead;
                let err = sink.child().stderr.take().unwrap();
                let mut line = String::new();
                std::io::BufReader::new(err).read_line(&mut line).unwrap();
                assert_eq!(
                    line.trim_end(),
                    format!("hftnet sink: receiving on {sip}:{port}"),
                    "{what}"
                );
            }
            let blast_uri = format!(
                "dpdk://{drv}0?iface={ci}&port={}&peer={sip}:{port}",
                port + 1
            );
            let count = COUNT.to_string();
            let size = SIZE.to_string();
            let out = run_in(
                ch,
                &[
                    "blast", &blast_uri, "--count", &count, "--size", &size, "--rate", "10000",
                    "--json",
                ],
                Duration::from_secs(60),
            );
            assert!(
                out.status.success(),
                "{what}: blast {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let b = json(&out);
            assert_eq!(
                (
                    b["sent"].as_u64(),
                    b["bytes"].as_u64(),
                    b["send_errors"].as_u64(),
                    b["flushed"].as_bool()
                ),
                (Some(COUNT), Some(COUNT * SIZE), Some(0), Some(true)),
                "{what}: {b}"
            );
            let bc = &b["capabilities"]["backend"];
            assert_eq!(
                (
                    bc["frames"]["tx_frames"].as_u64(),
                    bc["port"]["opackets"].as_u64()
                ),
                (Some(COUNT), Some(COUNT)),
                "{what}: frames built, taken by the port: {bc}"
            );
            let start = std::time::Instant::now();
            while sink.child().try_wait().unwrap().is_none() {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "{what}: sink did not end"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let s = json(&sink.0.take().unwrap().wait_with_output().unwrap());
            // Either veth's drops; the kernel's UDP errors only for a kernel
            // sink (a DPDK sink's port is held by a kernel socket that drops
            // the kernel's copy of each datagram net_af_packet lets through).
            let mut counted = drops_in(sh).1 + drops_in(ch).1 - veth0;
            if kind == "udp" {
                counted += drops_in(sh).0 - udp0;
            } else {
                let c = &s["capabilities"]["backend"];
                let (f, p) = (&c["frames"], &c["port"]);
                counted += ["imissed", "rx_nombuf", "ierrors"]
                    .iter()
                    .map(|k| p[k].as_u64().unwrap())
                    .sum::<u64>();
                counted += [
                    "oversized",
                    "truncated",
                    "malformed",
                    "ip_checksum",
                    "udp_checksum",
                    "ip_options",
                    "fragment",
                ]
                .iter()
                .map(|k| f[k].as_u64().unwrap())
                .sum::<u64>();
                assert_eq!(f["delivered"], s["packets"], "{what}: {f}");
            }
            let packets = s["packets"].as_u64().unwrap();
            assert_eq!(
                (packets + counted, s["probes"].as_u64(), s["bytes"].as_u64()),
                (COUNT, Some(packets), Some(packets * SIZE)),
                "{what}: received + dropped and counted ({packets} + {counted}): {s}"
            );
            for k in ["reordered", "duplicates", "foreign", "truncated"] {
                assert_eq!(s[k].as_u64(), Some(0), "{what}: {k}: {s}");
            }
            eprintln!("{what}: {COUNT} sent, {packets} received, {counted} dropped and counted");
            assert!(
                !runtime_dir_left(sink_pid),
                "{what}: sink left its EAL directory"
            );
            assert!(!has_xdp(sh) && !has_xdp(ch), "{what}: XDP program left");
            port += 2;
        }
    }
}

/// `hftnet lab --transports dpdk` (short rows): the floor, then the
/// dpdk/af_packet and dpdk/af_xdp rows, each with samples and no loss, in
/// its JSON; afterwards its namespaces are gone and so is its EAL runtime
/// directory.
#[test]
fn the_lab_has_dpdk_rows_and_leaves_nothing() {
    if skip_without_root("the_lab_has_dpdk_rows_and_leaves_nothing") {
        return;
    }
    let json_path =
        std::env::temp_dir().join(format!("hftnet-lab-dpdk-{}.json", std::process::id()));
    let child = std::process::Command::new(common::BIN)
        .args([
            "lab",
            "--duration",
            "600ms",
            "--rounds",
            "1",
            "--transports",
            "dpdk",
            "--json",
        ])
        .arg(&json_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut p = common::Proc(Some(child));
    let start = std::time::Instant::now();
    while p.child().try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "hftnet lab did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = p.0.take().unwrap().wait_with_output().unwrap();
    let text = std::fs::read_to_string(&json_path);
    let _ = std::fs::remove_file(&json_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_str(&text.unwrap()).unwrap();
    let rows: Vec<String> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}/{}", r["rung"]["transport"], r["rung"]["strategy"]).replace('"', ""))
        .collect();
    assert_eq!(
        rows,
        ["floor/cache-line", "dpdk/af_packet", "dpdk/af_xdp"],
        "{j}"
    );
    for row in &j["results"].as_array().unwrap()[1..] {
        assert!(row["samples"].as_u64().unwrap() > 100, "{row}");
        assert_eq!(row["lost"], 0, "{row}");
        assert!(row["note"].is_null(), "{row}");
    }
    for ns in j["lab"]["namespaces"].as_array().unwrap() {
        let ns = ns.as_str().unwrap();
        assert!(
            !Path::new("/run/netns").join(ns).exists(),
            "{ns} left behind"
        );
    }
    assert!(
        !runtime_dir_left(pid),
        "the lab left its EAL runtime directory"
    );
}

/// Waits up to `limit` for `cond`; false if it never held.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// Pings `server_port` on `sh` from `ch` over `drv` (a dpdk:// client on
/// the next UDP port): `count` probes after `warmup`, every one answered;
/// the ping's JSON report.
fn ping_dpdk(
    drv: &str,
    sh: &Host,
    ch: &Host,
    server_port: u16,
    count: u64,
    warmup: u64,
) -> serde_json::Value {
    let client = format!(
        "dpdk://{drv}0?iface={}&port={}&peer={}:{server_port}",
        ch.iface(),
        server_port + 1,
        sh.addr()
    );
    let (count_s, warmup_s) = (count.to_string(), warmup.to_string());
    let out = run_in(
        ch,
        &[
            "ping", &client, "--count", &count_s, "--warmup", &warmup_s, "--json",
        ],
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{drv}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(
        (j["samples"].as_u64(), j["lost"].as_u64()),
        (Some(count), Some(0)),
        "{drv}: {j}"
    );
    j
}

/// A pong over `net_af_xdp` killed with SIGKILL leaves our XDP program
/// attached to the interface (the driver attaches it through netlink, which
/// outlives the process) and its EAL runtime directory. The next start
/// removes both — our program only (name and tag), whose recorded owner
/// (PID and start time, in the program's own map) is gone; no
/// `/proc/PID/fdinfo` is read, so it works where some cannot be — and
/// answers every probe; before, it failed with the interface busy.
/// A live pong's program is not taken: another pong on the same interface
/// is refused (exit 2, naming the program and the live pong's PID) before
/// DPDK's driver could detach it, and the live one keeps answering — also
/// when the second one lacks the privilege to look at the program (refused
/// naming its id); after its SIGINT nothing is left attached.
#[test]
fn a_killed_af_xdp_run_s_program_is_removed_at_the_next_start() {
    if skip_without_root("a_killed_af_xdp_run_s_program_is_removed_at_the_next_start") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let port = 9100u16;
    let server = format!("dpdk://net_af_xdp0?iface={}&port={port}", sh.iface());
    let mut killed = spawn_in(sh, &["pong", &server, "--duration", "60s"]);
    let killed_pid = killed.child().id();
    assert!(
        wait_for(Duration::from_secs(20), || has_xdp(sh)),
        "the pong attached no XDP program"
    );
    let st = std::process::Command::new("kill")
        .args(["-KILL", &killed_pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    killed.child().wait().unwrap();
    assert!(has_xdp(sh), "SIGKILL left no program: nothing to test");
    assert!(runtime_dir_left(killed_pid));
    let attached = xdp_prog_id(sh).expect("no program id in `ip -d link show`");

    let mut pong = spawn_in(sh, &["pong", &server, "--duration", "60s"]);
    let pong_pid = pong.child().id();
    ping_dpdk("net_af_xdp", sh, ch, port, 300, 20);
    assert_ne!(
        xdp_prog_id(sh),
        Some(attached),
        "the killed run's program (id {attached}) is still attached"
    );
    assert!(
        !runtime_dir_left(killed_pid),
        "the killed run's EAL runtime directory is still there"
    );

    // A second pong (another UDP port) on the interface the live one
    // holds: refused before the driver runs — its failed set-up would have
    // detached the live pong's program — and the live one keeps answering.
    let other = format!("dpdk://net_af_xdp0?iface={}&port={}", sh.iface(), port + 2);
    let out = run_in(
        sh,
        &["pong", &other, "--duration", "5s"],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("already has an XDP program attached (\"hftnet_dpdk_udp\"")
            && err.contains(&format!("ours, in use by live process {pong_pid})")),
        "{err}"
    );
    assert!(has_xdp(sh));
    ping_dpdk("net_af_xdp", sh, ch, port, 300, 20);

    // The same without the privilege to look at BPF programs (root without
    // CAP_SYS_ADMIN and CAP_BPF): the live program cannot be told apart
    // from an orphan, so it is not taken for a free slot either — refused,
    // naming the program's id and why, and the live pong keeps answering.
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--inh-caps=-sys_admin,-bpf",
        "--bounding-set=-sys_admin,-bpf",
        common::BIN,
        "pong",
        &other,
        "--duration",
        "5s",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = sh.spawn(&mut cmd).unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || child
            .try_wait()
            .unwrap()
            .is_some()),
        "the unprivileged pong did not end"
    );
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("already has an XDP program attached (id ")
            && err.contains("could not be looked at"),
        "{err}"
    );
    assert!(has_xdp(sh));
    ping_dpdk("net_af_xdp", sh, ch, port, 300, 20);

    let st = std::process::Command::new("kill")
        .args(["-INT", &pong_pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let st = pong.child().wait().unwrap();
    assert!(st.success(), "pong ended with {st}");
    assert!(
        !has_xdp(sh) && !has_xdp(ch),
        "an XDP program was left attached"
    );
    assert!(!runtime_dir_left(pong_pid));
}
