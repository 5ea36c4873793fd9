//! Integration tests of the lab: they build real namespaces, so they need
//! root (CAP_SYS_ADMIN + CAP_NET_ADMIN). Without it each test prints why and
//! returns. They never touch the default namespace's interfaces, routes or
//! sysctls; every lab is removed by RAII, also when an assertion fails.
//! Every loop that sends traffic is bounded in count and time. `ip` is used
//! only to verify outcomes, and only if installed.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hftnet_lab::{EXCHANGE, Lab, LabError, TRADER, list, remove, remove_where};

/// True if labs can be built here; otherwise says why (never skip silently).
fn privileged(test: &str) -> bool {
    !hftnet_lab::skip_without_root(test)
}

fn have_ip() -> bool {
    Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A lab name unique to this test process and call.
fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn ns_file(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

fn lab_listed(name: &str) -> bool {
    list().iter().any(|l| l.name == name)
}

const ATTEMPTS: usize = 50;
const TIMEOUT: Duration = Duration::from_millis(100);

/// Sends `payload` from `tx` to `to` until `rx` receives it (at most
/// ATTEMPTS x TIMEOUT); returns the sender address seen by `rx`.
fn deliver(tx: &UdpSocket, rx: &UdpSocket, to: SocketAddr, payload: &[u8]) -> SocketAddr {
    rx.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..ATTEMPTS {
        tx.send_to(payload, to).unwrap();
        if let Ok((n, from)) = rx.recv_from(&mut buf) {
            assert_eq!(&buf[..n], payload);
            return from;
        }
    }
    panic!("no datagram to {to} arrived within {ATTEMPTS} attempts");
}

fn udp_trader_to_exchange(lab: &Lab) {
    let rx = lab
        .exchange()
        .run(|| UdpSocket::bind("198.18.0.2:0"))
        .unwrap()
        .unwrap();
    let tx = lab
        .trader()
        .run(|| UdpSocket::bind("198.18.0.1:0"))
        .unwrap()
        .unwrap();
    let to = rx.local_addr().unwrap();
    let from = deliver(&tx, &rx, to, b"new order");
    assert_eq!(from, tx.local_addr().unwrap());
}

#[test]
fn lab_comes_up_with_addresses() {
    if !privileged("lab_comes_up_with_addresses") {
        return;
    }
    let own_ns = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let lab = Lab::two_host(None).unwrap();
    assert_eq!(lab.hosts().len(), 2);
    let (t, e) = (lab.trader(), lab.exchange());
    assert_eq!((t.role(), e.role()), (TRADER, EXCHANGE));
    assert_eq!(lab.host(EXCHANGE), Some(e));
    assert_eq!(lab.host("nobody"), None);
    assert_eq!(t.netns(), format!("hft-{}-trader", lab.name()));
    assert_eq!(e.netns(), format!("hft-{}-exchange", lab.name()));
    assert_eq!(
        (t.addr(), t.peer(), t.prefix_len()),
        (
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            24
        )
    );
    assert_eq!(
        (e.addr(), e.peer()),
        (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1))
    );
    assert!(ns_file(t.netns()) && ns_file(e.netns()));
    assert!(lab_listed(lab.name()));
    let info = list().into_iter().find(|l| l.name == lab.name()).unwrap();
    assert_eq!(info, lab.info());

    for host in lab.hosts() {
        // The address exists in the host's namespace (bind succeeds) and the
        // peer's does not (EADDRNOTAVAIL): each is in its own namespace.
        let (own, other) = host
            .run(|| {
                let own = UdpSocket::bind((host.addr(), 0)).map(drop);
                let other = UdpSocket::bind((host.peer(), 0)).map(drop);
                (own, other)
            })
            .unwrap();
        own.unwrap();
        assert_eq!(
            other.unwrap_err().kind(),
            std::io::ErrorKind::AddrNotAvailable
        );
        let index = host
            .run(|| hftnet_sys::netns::if_nametoindex("veth0"))
            .unwrap()
            .unwrap();
        assert!(index > 1);
    }
    // The calling thread was never moved into a lab namespace.
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        own_ns
    );

    let text = lab.describe();
    assert!(
        text.contains("198.18.0.1/24") && text.contains("198.18.0.2/24"),
        "{text}"
    );
    assert!(
        text.contains(t.netns()) && text.contains(e.netns()),
        "{text}"
    );

    if have_ip() {
        // Interoperability: iproute2 sees and enters our namespaces.
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(out.contains(t.netns()) && out.contains(e.netns()), "{out}");
        for host in lab.hosts() {
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    host.netns(),
                    "ip",
                    "-o",
                    "-4",
                    "addr",
                    "show",
                    "dev",
                    "veth0",
                ])
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&out.stdout);
            assert!(out.contains(&format!("{}/24", host.addr())), "{out}");
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    host.netns(),
                    "ip",
                    "-o",
                    "route",
                    "show",
                    "224.0.0.0/4",
                ])
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&out.stdout);
            assert!(out.contains("dev veth0"), "{out}");
            let out = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    host.netns(),
                    "ip",
                    "-o",
                    "link",
                    "show",
                    "lo",
                ])
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&out.stdout);
            assert!(out.contains("UP"), "{out}");
        }
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "lab_comes_up_with_addresses: `ip` not installed, iproute2 interop not checked"
        );
    }
}

#[test]
fn udp_datagram_from_trader_reaches_exchange() {
    if !privileged("udp_datagram_from_trader_reaches_exchange") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    udp_trader_to_exchange(&lab);
}

#[test]
fn echo_server_on_spawned_thread() {
    if !privileged("echo_server_on_spawned_thread") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let server = lab
        .exchange()
        .spawn_thread("lab-echo", move || -> std::io::Result<usize> {
            // Binding 198.18.0.2 only works inside the exchange namespace.
            let sock = UdpSocket::bind("198.18.0.2:9000")?;
            sock.set_read_timeout(Some(TIMEOUT))?;
            ready_tx.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut echoed = 0;
            let mut buf = [0u8; 2048];
            while echoed < 3 && Instant::now() < deadline {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    sock.send_to(&buf[..n], from)?;
                    echoed += 1;
                }
            }
            Ok(echoed)
        })
        .unwrap();
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("echo server did not start");
    let got = lab
        .trader()
        .run(|| {
            let sock = UdpSocket::bind("198.18.0.1:0").unwrap();
            sock.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut buf = [0u8; 64];
            let mut replies = 0;
            for i in 0..ATTEMPTS {
                if replies == 3 {
                    break;
                }
                let msg = [i as u8; 16];
                sock.send_to(&msg, "198.18.0.2:9000").unwrap();
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    assert_eq!(from, "198.18.0.2:9000".parse().unwrap());
                    assert_eq!(n, 16);
                    replies += 1;
                }
            }
            replies
        })
        .unwrap();
    assert_eq!(got, 3);
    assert_eq!(server.join().unwrap().unwrap(), 3);
}

#[test]
fn multicast_from_trader_reaches_exchange_group_member() {
    if !privileged("multicast_from_trader_reaches_exchange_group_member") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let group = Ipv4Addr::new(239, 1, 1, 1);
    let rx = lab
        .exchange()
        .run(|| {
            let s = UdpSocket::bind("0.0.0.0:30001")?;
            s.join_multicast_v4(&group, &Ipv4Addr::new(198, 18, 0, 2))?;
            Ok::<_, std::io::Error>(s)
        })
        .unwrap()
        .unwrap();
    // No IP_MULTICAST_IF: the lab's 224.0.0.0/4 route picks veth0.
    let tx = lab
        .trader()
        .run(|| UdpSocket::bind("198.18.0.1:0"))
        .unwrap()
        .unwrap();
    let from = deliver(&tx, &rx, SocketAddr::from((group, 30001)), b"itch tick");
    assert_eq!(from.ip(), Ipv4Addr::new(198, 18, 0, 1));
}

#[test]
fn two_labs_in_parallel() {
    if !privileged("two_labs_in_parallel") {
        return;
    }
    let names: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let lab = Lab::two_host(None).unwrap();
                    udp_trader_to_exchange(&lab);
                    let name = lab.name().to_owned();
                    lab.down().unwrap();
                    name
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_ne!(names[0], names[1]);
    for name in &names {
        assert!(!lab_listed(name), "{name} still listed");
    }
}

#[test]
fn spawned_process_runs_in_host_namespace() {
    if !privileged("spawned_process_runs_in_host_namespace") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let trader = lab.trader();
    let ino = std::fs::metadata(Path::new("/run/netns").join(trader.netns()))
        .unwrap()
        .ino();
    let child = trader
        .spawn(
            Command::new("readlink")
                .arg("/proc/self/ns/net")
                .stdout(Stdio::piped()),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("net:[{ino}]")
    );

    if have_ip() {
        let child = trader
            .spawn(
                Command::new("ip")
                    .args(["-o", "-4", "addr"])
                    .stdout(Stdio::piped()),
            )
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("198.18.0.1/24") && !text.contains("198.18.0.2/24"),
            "{text}"
        );
    } else {
        let _ = writeln!(
            std::io::stderr(),
            "spawned_process_runs_in_host_namespace: `ip` not installed, address check skipped"
        );
    }

    let err = trader
        .spawn(&mut Command::new("/nonexistent/hftnet-no-such-program"))
        .unwrap_err();
    assert!(matches!(err, LabError::Spawn { .. }), "{err}");
}

#[test]
fn drop_removes_namespaces() {
    if !privileged("drop_removes_namespaces") {
        return;
    }
    let lab = Lab::builder()
        .name(&unique("drop"))
        .mtu(9000)
        .build()
        .unwrap();
    let name = lab.name().to_owned();
    let namespaces: Vec<String> = lab.namespaces().iter().map(|s| s.to_string()).collect();
    if have_ip() {
        let out = lab
            .trader()
            .spawn(
                Command::new("ip")
                    .args(["-o", "link", "show", "veth0"])
                    .stdout(Stdio::piped()),
            )
            .unwrap();
        let text = String::from_utf8_lossy(&out.wait_with_output().unwrap().stdout).into_owned();
        assert!(text.contains("mtu 9000"), "{text}");
    }
    drop(lab);
    assert!(!lab_listed(&name));
    for ns in &namespaces {
        assert!(!ns_file(ns), "{ns} still in /run/netns");
    }
    if have_ip() {
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(
            namespaces.iter().all(|ns| !out.contains(ns.as_str())),
            "{out}"
        );
    }
}

#[test]
fn drop_during_panic_removes_namespaces() {
    if !privileged("drop_during_panic_removes_namespaces") {
        return;
    }
    let name = unique("panic");
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::two_host(Some(&name)).unwrap();
        assert!(lab_listed(lab.name()));
        panic!(
            "deliberate panic with lab {} up (expected by this test)",
            lab.name()
        );
    });
    assert!(result.is_err());
    assert!(!lab_listed(&name));
    assert!(!ns_file(&format!("hft-{name}-trader")) && !ns_file(&format!("hft-{name}-exchange")));
}

#[test]
fn panic_in_run_propagates_and_lab_survives() {
    if !privileged("panic_in_run_propagates_and_lab_survives") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lab.trader()
            .run(|| panic!("deliberate panic inside Host::run (expected by this test)"))
    }));
    assert!(r.is_err());
    udp_trader_to_exchange(&lab);
}

#[test]
fn existing_name_is_refused_without_harming_the_first_lab() {
    if !privileged("existing_name_is_refused_without_harming_the_first_lab") {
        return;
    }
    let name = unique("dup");
    let first = Lab::two_host(Some(&name)).unwrap();
    let err = Lab::two_host(Some(&name)).unwrap_err();
    assert!(matches!(err, LabError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("hftnet lab down --name"), "{err}");
    assert!(ns_file(first.trader().netns()) && ns_file(first.exchange().netns()));
    udp_trader_to_exchange(&first);
}

#[test]
fn remove_finds_forgotten_lab() {
    if !privileged("remove_finds_forgotten_lab") {
        return;
    }
    let name = unique("killed");
    let lab = Lab::two_host(Some(&name)).unwrap();
    let namespaces: Vec<String> = lab.namespaces().iter().map(|s| s.to_string()).collect();
    // Simulate a killed run: the Lab value never drops.
    std::mem::forget(lab);
    assert!(lab_listed(&name));
    assert!(remove(&name).unwrap());
    assert!(!lab_listed(&name));
    assert!(namespaces.iter().all(|ns| !ns_file(ns)));
    // Idempotent.
    assert!(!remove(&name).unwrap());
}

#[test]
fn remove_where_removes_only_matching_labs() {
    if !privileged("remove_where_removes_only_matching_labs") {
        return;
    }
    // Only this test's labs match the filter, so labs of tests running in
    // parallel are untouched (remove_all is remove_where(|_| true)).
    let prefix = unique("stale");
    let keep = Lab::two_host(None).unwrap();
    let mut expected = Vec::new();
    for suffix in ["a", "b"] {
        let lab = Lab::two_host(Some(&format!("{prefix}-{suffix}"))).unwrap();
        expected.push(lab.name().to_owned());
        std::mem::forget(lab);
    }
    let removed = remove_where(|l| l.name.starts_with(&format!("{prefix}-"))).unwrap();
    assert_eq!(removed, expected);
    assert!(expected.iter().all(|n| !lab_listed(n)));
    assert!(lab_listed(keep.name()));
    assert_eq!(
        remove_where(|l| l.name.starts_with(&format!("{prefix}-"))).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn explicit_down_reports_success_and_run_after_down_fails() {
    if !privileged("explicit_down_reports_success_and_run_after_down_fails") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let name = lab.name().to_owned();
    lab.down().unwrap();
    assert!(!lab_listed(&name));
}

/// Sends a datagram from `from` to a fresh socket in `to` that busy-polls
/// (`SO_BUSY_POLL` = 50 µs) and returns the receiver's
/// `SO_INCOMING_NAPI_ID` afterwards (0: the packet came without NAPI).
/// A fresh socket each time: an unconnected UDP socket keeps the first
/// non-zero NAPI id it sees.
fn napi_id_after_receive(from: &hftnet_lab::Host, to: &hftnet_lab::Host) -> i32 {
    use hftnet_sys::sock::{self, SO_BUSY_POLL, SO_INCOMING_NAPI_ID};
    use std::os::fd::AsFd;
    let addr = to.addr();
    let rx = to
        .run(move || {
            let s = UdpSocket::bind((addr, 0))?;
            sock::set_int(s.as_fd(), SO_BUSY_POLL, 50)?;
            Ok::<_, std::io::Error>(s)
        })
        .unwrap()
        .unwrap();
    assert_eq!(sock::get_int(rx.as_fd(), SO_BUSY_POLL).unwrap(), 50);
    let src = from.addr();
    let tx = from
        .run(move || UdpSocket::bind((src, 0)))
        .unwrap()
        .unwrap();
    deliver(&tx, &rx, rx.local_addr().unwrap(), b"busy?");
    sock::get_int(rx.as_fd(), SO_INCOMING_NAPI_ID).unwrap()
}

/// Turns TSO of `host`'s veth end on or off, from inside its namespace.
fn set_tso(host: &hftnet_lab::Host, on: bool) {
    use hftnet_sys::ethtool::{self, Feature};
    host.run(|| ethtool::set_feature(host.iface(), Feature::Tso, on))
        .unwrap()
        .unwrap();
}

#[test]
fn gro_gives_busy_polling_sockets_a_napi_id() {
    if !privileged("gro_gives_busy_polling_sockets_a_napi_id") {
        return;
    }
    // Without GRO the veth has no NAPI: id 0, whatever TSO says.
    let lab = Lab::two_host(None).unwrap();
    assert!(!lab.gro());
    assert!(!lab.trader().gro().unwrap());
    assert!(!lab.exchange().gro().unwrap());
    assert!(!lab.describe().contains("gro"), "{lab}");
    assert_eq!(napi_id_after_receive(lab.trader(), lab.exchange()), 0);
    set_tso(lab.trader(), false);
    assert_eq!(napi_id_after_receive(lab.trader(), lab.exchange()), 0);
    drop(lab);

    let lab = Lab::builder().gro(true).build().unwrap();
    assert!(lab.gro());
    assert!(lab.trader().gro().unwrap());
    assert!(lab.exchange().gro().unwrap());
    assert_eq!(lab.describe().matches(" gro on").count(), 2, "{lab}");
    // GRO alone: with TSO on at the sender, veth does not consider a UDP
    // datagram eligible for its NAPI (veth_skb_is_eligible_for_gro), so
    // kernels since 5.13 report 0 here; older ones used NAPI for all.
    let gro_only = napi_id_after_receive(lab.trader(), lab.exchange());
    let _ = writeln!(
        std::io::stderr(),
        "gro_gives_busy_polling_sockets_a_napi_id: GRO on, sender TSO on: NAPI id {gro_only}"
    );
    // GRO on both ends and TSO off at the sender: the datagram goes through
    // the receiving veth's NAPI, and the socket learns its id. Both ways.
    set_tso(lab.trader(), false);
    let at_exchange = napi_id_after_receive(lab.trader(), lab.exchange());
    assert_ne!(at_exchange, 0, "GRO on both ends, trader TSO off");
    set_tso(lab.exchange(), false);
    let at_trader = napi_id_after_receive(lab.exchange(), lab.trader());
    assert_ne!(at_trader, 0, "GRO on both ends, exchange TSO off");
    // Each veth end has its own receive queue, hence its own NAPI instance.
    assert_ne!(at_exchange, at_trader);
    let _ = writeln!(
        std::io::stderr(),
        "gro_gives_busy_polling_sockets_a_napi_id: GRO on, sender TSO off: NAPI id \
         {at_exchange} at the exchange, {at_trader} at the trader"
    );
}

/// The queue counts of `host`'s veth end, asked from inside its namespace.
fn channels(host: &hftnet_lab::Host) -> hftnet_sys::ethtool::Channels {
    host.run(|| hftnet_sys::ethtool::Ethtool::open()?.get_channels(host.iface()))
        .unwrap()
        .unwrap()
}

#[test]
fn queues_are_set_on_both_ends_and_bad_counts_leave_nothing() {
    if !privileged("queues_are_set_on_both_ends_and_bad_counts_leave_nothing") {
        return;
    }
    let lab = Lab::builder().queues(2).build().unwrap();
    assert_eq!(lab.queues(), 2);
    for host in lab.hosts() {
        let c = channels(host);
        assert_eq!((c.rx_count, c.tx_count), (2, 2), "{}: {c:?}", host.netns());
    }
    assert_eq!(lab.describe().matches(" 2 queues").count(), 2, "{lab}");
    // Traffic still flows.
    udp_trader_to_exchange(&lab);
    let max = channels(lab.trader()).max_rx;
    drop(lab);

    let lab = Lab::two_host(None).unwrap();
    assert_eq!(lab.queues(), 1);
    assert_eq!(channels(lab.trader()).rx_count, 1);
    assert!(!lab.describe().contains("queues"), "{lab}");
    drop(lab);

    for n in [0, max + 1] {
        let name = unique("q");
        let e = Lab::builder().name(&name).queues(n).build().unwrap_err();
        assert!(matches!(e, LabError::InvalidTopology { .. }), "{n}: {e}");
        let text = e.to_string();
        assert!(text.contains("queue"), "{text}");
        if n > 0 {
            assert!(text.contains(&format!("at most {max}")), "{text}");
        }
        assert!(!lab_listed(&name), "{n} queues left lab {name} behind");
        assert!(!ns_file(&format!("hft-{name}-trader")));
        assert!(!ns_file(&format!("hft-{name}-exchange")));
    }
}
