//! `dpdk://` (cargo feature `dpdk`) in labs of two network namespaces
//! joined by a veth pair, over DPDK's `net_af_packet` and `net_af_xdp`
//! drivers, for real (root): echoes with exact counts and bytes both ways
//! between a DPDK port and a kernel socket and between two DPDK ports
//! (over both drivers); runt and corrupt frames counted and dropped; 10⁶
//! packets each way over both drivers with full counts (sent = received +
//! dropped and counted) and no mbuf leaked (the mempool's in-use count back
//! to where it started); traffic resuming after the link went down and up;
//! the pcap and fault middlewares on a `dpdk://` URI (the capture holds
//! exactly the port's frames, the faults' drops are counted exactly); and a
//! second EAL initialisation and a busy device refused with a clear error.
//!
//! All tests of this file share one process and so one EAL (initialised by
//! the first endpoint opened, kept until exit): each endpoint has its own
//! device name. Run with `cargo test -p hftnet-io --features dpdk --test dpdk`.
//! The tests that need their own process (permission, a missing driver, the
//! exit code, nothing left behind) are in the hftnet crate's `tests/dpdk.rs`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hftnet_io::l2::L2Iface;
use hftnet_io::{
    AnyTransport, DpdkConfig, DpdkTransport, Endpoint, OpenError, Role, RxBurst, Transport, TxMsg,
    Uri,
};
use hftnet_lab::Lab;
use hftnet_wire::ethernet;
use hftnet_wire::udp::{FrameSpec, emit_frame};

#[path = "support/traffic.rs"]
mod traffic;
use traffic::{collect, echo, inject, payload, skip_without_root};

/// The two drivers the lab rows use.
const DRIVERS: [&str; 2] = ["net_af_packet", "net_af_xdp"];

/// Frames dropped for a fault of theirs: everything but `other` (frames
/// not for us — `net_af_packet` is a tap and sees the interface's ARP and
/// IPv6 traffic too).
fn bad(f: &hftnet_io::frames::FrameStats) -> u64 {
    f.dropped() - f.other
}

/// A device number unique in this process (devices are named per process).
fn unique() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(10);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn open(uri: &str, role: Role) -> DpdkTransport {
    let cfg = DpdkConfig::from_uri(&Uri::parse(uri).unwrap()).unwrap();
    let mut t = DpdkTransport::open(&cfg, role).unwrap_or_else(|e| panic!("{uri}: {e}"));
    t.set_recv_timeout(Some(Duration::from_secs(3))).unwrap();
    t
}

fn open_any(uri: &str, role: Role) -> AnyTransport {
    let mut t = Endpoint::parse(uri)
        .unwrap()
        .open(role)
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    t.set_recv_timeout(Some(Duration::from_secs(3))).unwrap();
    t
}

/// DPDK server ↔ kernel-socket client, then kernel-socket server ↔ DPDK
/// client: 1000 numbered messages each way, every byte checked, nothing
/// dropped, the mempool back to its use at open.
#[test]
fn dpdk_and_kernel_sockets_echo_exactly() {
    if skip_without_root("dpdk_and_kernel_sockets_echo_exactly") {
        return;
    }
    for drv in DRIVERS {
        let lab = Lab::two_host(None).unwrap();
        let (sh, ch) = (lab.exchange(), lab.trader());
        let (si, ci) = (sh.iface().to_string(), ch.iface().to_string());
        let (sip, cip) = (sh.addr(), ch.addr());
        let n = unique();
        let mut server = sh
            .run(move || {
                open(
                    &format!("dpdk://{drv}{n}?iface={si}&port=9000"),
                    Role::Server,
                )
            })
            .unwrap();
        let start = server.mempool_use().in_use;
        let mut client = ch
            .run(move || open_any(&format!("udp://{sip}:9000?rx=block"), Role::Client))
            .unwrap();
        let bytes = echo(&mut server, &mut client, 1000, 8, |_| {});
        assert_eq!(
            bytes,
            (0..1000).map(|i| payload(i).len()).sum::<usize>(),
            "{drv}"
        );
        let f = server.endpoint().stats;
        assert_eq!(
            (f.delivered, bad(&f), f.tx_frames),
            (1000, 0, 1000),
            "{drv}: {f:?}"
        );
        server.settle();
        assert_eq!(server.mempool_use().in_use, start, "{drv}: mbufs leaked");
        let caps = server.capabilities();
        assert_eq!(caps.transport, "dpdk");
        let lines = caps.lines();
        assert!(
            lines
                .iter()
                .any(|(k, v)| k == "dpdk_memory" && v.contains("-m 128")),
            "{lines:?}"
        );
        drop(server);

        // The other way: the DPDK end is the client.
        let mut kserver = sh
            .run(move || open_any(&format!("udp://{sip}:9100?rx=block"), Role::Server))
            .unwrap();
        let n = unique();
        let mut dclient = ch
            .run(move || {
                open(
                    &format!("dpdk://{drv}{n}?iface={ci}&port=9200&peer={sip}:9100"),
                    Role::Client,
                )
            })
            .unwrap();
        let start = dclient.mempool_use().in_use;
        let bytes = echo(&mut kserver, &mut dclient, 1000, 8, |m| {
            assert_eq!(m.peer, Some(SocketAddr::from((cip, 9200))));
        });
        assert_eq!(
            bytes,
            (0..1000).map(|i| payload(i).len()).sum::<usize>(),
            "{drv}"
        );
        let f = dclient.endpoint().stats;
        assert_eq!(
            (f.delivered, bad(&f), f.tx_frames),
            (1000, 0, 1000),
            "{drv}: {f:?}"
        );
        dclient.settle();
        assert_eq!(dclient.mempool_use().in_use, start, "{drv}: mbufs leaked");
    }
}

/// Two DPDK ports of this process, one on each end of the veth.
#[test]
fn dpdk_to_dpdk_echo_exactly_over_af_packet() {
    if skip_without_root("dpdk_to_dpdk_echo_exactly_over_af_packet") {
        return;
    }
    dpdk_to_dpdk_echo("net_af_packet", 9300);
}

/// Runt and corrupt frames reach the port and are counted under their
/// reason and dropped; the good frame after them is delivered.
#[test]
fn malformed_frames_are_counted_and_dropped() {
    if skip_without_root("malformed_frames_are_counted_and_dropped") {
        return;
    }
    for drv in DRIVERS {
        let lab = Lab::two_host(None).unwrap();
        let (sh, ch) = (lab.exchange(), lab.trader());
        let si = sh.iface().to_string();
        let (server_ip, client_ip) = (sh.addr(), ch.addr());
        let n = unique();
        let (mut t, server_mac) = sh
            .run(move || {
                let t = open(
                    &format!("dpdk://{drv}{n}?iface={si}&port=9400"),
                    Role::Server,
                );
                (t, L2Iface::lookup(&si).unwrap().mac)
            })
            .unwrap();
        let ci = ch.iface().to_string();
        let ci2 = ci.clone();
        let client_mac = ch.run(move || L2Iface::lookup(&ci2).unwrap().mac).unwrap();
        let spec = FrameSpec::new(client_mac, server_mac, client_ip, server_ip, 4000, 9400);
        let good = |data: &[u8]| {
            let mut f = vec![0u8; 1600];
            let n = emit_frame(&mut f, &spec, data).unwrap();
            f.truncate(n);
            f
        };
        let ip = ethernet::HEADER_LEN;
        let udp = ip + 20;
        let mut runt = good(&[7; 100]);
        runt.truncate(udp + 8 + 10); // the IPv4 and UDP lengths announce more
        let mut ip_sum = good(b"ip checksum");
        ip_sum[ip + 10] ^= 0xff;
        let mut udp_sum = good(b"udp checksum");
        udp_sum[udp + 6] ^= 0x55;
        let mut options = good(b"ip options");
        options[ip] = 0x46; // a header length the frame does not have
        options[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
        let c = !hftnet_wire::checksum::data(&options[ip..ip + 24]);
        options[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        let last = good(b"the good one");
        let start = t.mempool_use().in_use;
        ch.run(move || inject(&ci, &[runt, ip_sum, udp_sum, options, last]))
            .unwrap();
        let got = collect(&mut t, 1, Duration::from_secs(3));
        assert_eq!(got.len(), 1, "{drv}");
        assert_eq!(got[0].0, b"the good one");
        // Whatever came in behind it is counted too.
        t.set_recv_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let more = collect(&mut t, 1, Duration::from_millis(600));
        assert!(more.is_empty(), "{drv}: {more:?}");
        let f = t.endpoint().stats;
        assert_eq!(
            (f.truncated, f.ip_checksum, f.udp_checksum),
            (1, 1, 1),
            "{drv}: {f:?}"
        );
        assert_eq!((f.delivered, bad(&f)), (1, 4), "{drv}: {f:?}");
        t.settle();
        assert_eq!(t.mempool_use().in_use, start, "{drv}: mbufs leaked");
    }
}

/// 10⁶ datagrams out of a DPDK port and 10⁶ into one (from a kernel
/// socket) over `net_af_packet`: every one arrives, and the mempool's
/// in-use count is back to its value at open (see [`a_million_each_way`]).
#[test]
fn no_mbuf_leaks_after_a_million_packets() {
    if skip_without_root("no_mbuf_leaks_after_a_million_packets") {
        return;
    }
    a_million_each_way("net_af_packet", 9500);
}

/// The DPDK end's interface goes down: sends fail without harm (no mbuf
/// lost); it comes back up: exact echoes again — over both drivers. For
/// `net_af_xdp` the transport watches the kernel interface (its port says
/// the link is up always): the outage and the recovery are counted, and no
/// burst is handed to the driver while it lasts (a full ring of them left
/// the frames sent after the outage rejected by the kernel).
#[test]
fn link_down_and_up_is_recovered() {
    if skip_without_root("link_down_and_up_is_recovered") {
        return;
    }
    for drv in DRIVERS {
        let lab = Lab::two_host(None).unwrap();
        let (sh, ch) = (lab.exchange(), lab.trader());
        let ci = ch.iface().to_string();
        let sip = sh.addr();
        let mut kserver = sh
            .run(move || open_any(&format!("udp://{sip}:9600?rx=block"), Role::Server))
            .unwrap();
        let n = unique();
        let ci2 = ci.clone();
        let mut client = ch
            .run(move || {
                open(
                    &format!("dpdk://{drv}{n}?iface={ci2}&port=9601&peer={sip}:9600"),
                    Role::Client,
                )
            })
            .unwrap();
        let start = client.mempool_use().in_use;
        echo(&mut kserver, &mut client, 100, 8, |_| {});
        let set = |up: bool| {
            let ci = ci.clone();
            ch.run(move || {
                let mut nl = hftnet_sys::netlink::RtNetlink::open().unwrap();
                let idx = nl.link_index(&ci).unwrap();
                if up {
                    nl.set_link_up(idx).unwrap();
                } else {
                    nl.set_link_down(idx).unwrap();
                }
            })
            .unwrap();
        };
        set(false);
        let data = [1u8; 64];
        let msgs = [TxMsg {
            data: &data,
            to: None,
        }; 32];
        let mut errors = 0;
        for _ in 0..200 {
            if client.send_burst(&msgs).is_err() {
                errors += 1;
            }
        }
        set(true);
        // Whatever the down link took is gone; the kernel end drains it.
        let mut b = RxBurst::new(64, 2048);
        kserver
            .set_recv_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        while kserver.recv_burst(&mut b).unwrap() > 0 {}
        kserver
            .set_recv_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        // Traffic resumes (ARP may have to be learned again: wait for it).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.send_burst(&[TxMsg {
                data: b"probe",
                to: None,
            }]) {
                Ok(1) => {}
                r => panic!("{drv}: send after link up: {r:?}"),
            }
            let mut got = 0;
            kserver
                .set_recv_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            while kserver.recv_burst(&mut b).unwrap() > 0 {
                got += 1;
            }
            if got > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{drv}: no traffic after link up");
        }
        kserver
            .set_recv_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let bytes = echo(&mut kserver, &mut client, 500, 8, |_| {});
        assert_eq!(
            bytes,
            (0..500).map(|i| payload(i).len()).sum::<usize>(),
            "{drv}"
        );
        // Sends while down failed with an error (after the slot wait),
        // none panicked, and no mbuf was lost on the way.
        assert!(errors > 0, "{drv}: no send failed while the link was down");
        if drv == "net_af_xdp" {
            let lines = client.capabilities().lines();
            assert!(
                lines
                    .iter()
                    .any(|(k, v)| k == "note" && v == "link seen down 1 times, back up 1 times"),
                "{lines:?}"
            );
        }
        client.settle();
        assert_eq!(client.mempool_use().in_use, start, "{drv}: mbufs leaked");
    }
}

/// A second EAL initialisation (other eal= arguments) and a device name
/// already open are refused, naming the problem; the first endpoint keeps
/// working.
#[test]
fn second_eal_init_and_busy_device_are_refused() {
    if skip_without_root("second_eal_init_and_busy_device_are_refused") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let sh = lab.exchange();
    let si = sh.iface().to_string();
    let n = unique();
    let (first, busy, second) = sh
        .run(move || {
            let first = open(
                &format!("dpdk://net_af_packet{n}?iface={si}&port=9700"),
                Role::Server,
            );
            let busy = Endpoint::parse(&format!("dpdk://net_af_packet{n}?iface={si}&port=9701"))
                .unwrap()
                .open(Role::Server)
                .map(drop);
            let second = Endpoint::parse(&format!(
                "dpdk://net_af_packet{}?iface={si}&port=9702&eal=--huge-unlink",
                unique()
            ))
            .unwrap()
            .open(Role::Server)
            .map(drop);
            (first, busy, second)
        })
        .unwrap();
    let e = busy.unwrap_err();
    assert!(matches!(e, OpenError::Dpdk { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("net_af_packet{n} is busy")), "{msg}");
    assert!(msg.contains(&format!("net_af_packet{}", n + 1)), "{msg}");
    let msg = second.unwrap_err().to_string();
    assert!(msg.contains("already initialised"), "{msg}");
    assert!(msg.contains("rte_eal_init runs once per process"), "{msg}");
    assert!(msg.contains("--huge-unlink"), "{msg}");
    // The first endpoint is untouched.
    assert_eq!(first.capabilities().transport, "dpdk");
    drop(first);
    // A name is free again once its endpoint is closed.
    let si = sh.iface().to_string();
    sh.run(move || {
        open(
            &format!("dpdk://net_af_packet{n}?iface={si}&port=9700"),
            Role::Server,
        )
    })
    .unwrap();
}

/// A closed endpoint gives its interface queue back: the same device on
/// the same interface opens again (and an `xdp://` socket could take the
/// queue), for both drivers.
#[test]
fn a_closed_port_gives_its_queue_back() {
    if skip_without_root("a_closed_port_gives_its_queue_back") {
        return;
    }
    for drv in DRIVERS {
        let lab = Lab::two_host(None).unwrap();
        let sh = lab.exchange();
        let si = sh.iface().to_string();
        let n = unique();
        for round in 0..3 {
            let si = si.clone();
            let t = sh
                .run(move || {
                    let uri = format!("dpdk://{drv}{n}?iface={si}&port=9800");
                    let cfg = DpdkConfig::from_uri(&Uri::parse(&uri).unwrap()).unwrap();
                    DpdkTransport::open(&cfg, Role::Server)
                })
                .unwrap();
            let t = t.unwrap_or_else(|e| panic!("{drv} round {round}: {e}"));
            drop(t);
        }
    }
}

/// A `net_af_xdp` open whose queue an AF_XDP socket holds (as a socket
/// closed a moment ago holds it until the kernel's deferred release) waits
/// for it, then sets the queue up once, with its whole pool; held past the
/// wait, it is refused naming the queue, and leaves the name reusable.
/// Before, the set-up was retried on the same device: the fill ring's
/// producer index survived the refused attempt, so the second attempt gave
/// the kernel empty fill entries and the third found the ring full (one CI
/// run in a few failed so, after a reopen).
#[test]
fn a_held_queue_is_waited_for_and_set_up_once() {
    if skip_without_root("a_held_queue_is_waited_for_and_set_up_once") {
        return;
    }
    use hftnet_io::xdp::socket::Xsk;
    use hftnet_io::xdp::{XskConfig, XskMode};
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let (si, ci) = (sh.iface().to_string(), ch.iface().to_string());
    // The reference: the same kind of port opened on a free queue.
    let (a, b, c) = (unique(), unique(), unique());
    let reference = ch
        .run(move || {
            open(
                &format!("dpdk://net_af_xdp{a}?iface={ci}&port=9740"),
                Role::Server,
            )
        })
        .unwrap();
    // Binds an AF_XDP socket to queue 0 (no XDP program), once a socket
    // closed just before has been released.
    let hold = |iface: &str| {
        let cfg = XskConfig {
            ifindex: L2Iface::lookup(iface).unwrap().index,
            queue: 0,
            frames: 64,
            frame_size: 2048,
            ring_size: 64,
            mode: XskMode::Copy,
            need_wakeup: false,
            rx_meta: false,
        };
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            match Xsk::open(cfg, false) {
                Err(e) if e.errno == libc::EBUSY && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                r => break r.unwrap(),
            }
        }
    };
    let result = sh
        .run(move || {
            // Held for 300 ms: waited for.
            let xsk = hold(&si);
            let idx = L2Iface::lookup(&si).unwrap().index;
            let reported = hftnet_sys::netlink::GenNetlink::open()
                .unwrap()
                .xsk_holds_rx_queue(idx, 0)
                .unwrap();
            if reported != Some(true) {
                return Err(reported);
            }
            let started = Instant::now();
            let release = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                drop(xsk);
            });
            let t = open(
                &format!("dpdk://net_af_xdp{b}?iface={si}&port=9741"),
                Role::Server,
            );
            let waited = started.elapsed();
            release.join().unwrap();
            let mine = t.mempool_use();
            drop(t);
            // Held throughout: refused, then the same name opens once free.
            let xsk = hold(&si);
            let uri = format!("dpdk://net_af_xdp{c}?iface={si}&port=9742");
            let refused = Endpoint::parse(&uri)
                .unwrap()
                .open(Role::Server)
                .map(drop)
                .unwrap_err()
                .to_string();
            drop(xsk);
            let again = Endpoint::parse(&uri)
                .unwrap()
                .open(Role::Server)
                .map(|t| t.capabilities().transport);
            Ok((mine, waited, refused, again))
        })
        .unwrap();
    let (mine, waited, refused, again) = match result {
        Ok(r) => r,
        Err(reported) => {
            // Older kernels dump queues without the AF_XDP attribute (or
            // not at all): the open cannot wait there; CI's kernel has it.
            assert!(
                std::env::var_os("CI").is_none(),
                "the netdev queue dump does not report the held queue's AF_XDP pool ({reported:?})"
            );
            eprintln!(
                "skipped: this kernel's netdev queue dump does not report AF_XDP pools ({reported:?})"
            );
            return;
        }
    };
    assert!(
        waited >= Duration::from_millis(300),
        "opened on a held queue after {waited:?}"
    );
    assert!(
        refused.contains("queue 0 of veth0 is taken by another AF_XDP socket"),
        "{refused}"
    );
    assert_eq!(again.unwrap(), "dpdk");
    // Set up once: the whole pool, as on a free queue (each refused
    // attempt of a retried set-up kept 2048 mbufs).
    let theirs = reference.mempool_use();
    assert_eq!(
        (mine.size, mine.in_use),
        (theirs.size, theirs.in_use),
        "{mine:?} against {theirs:?}"
    );
}

/// Runs `ip ARGS` in `host`'s namespace; panics naming the command if it fails.
fn ip_in(host: &hftnet_lab::Host, args: &[&str]) {
    let st = host
        .spawn(std::process::Command::new("ip").args(args))
        .unwrap_or_else(|e| panic!("ip {args:?}: {e}"))
        .wait()
        .unwrap();
    assert!(st.success(), "ip {args:?}: {st}");
}

/// One counter of `/proc/thread-self/net/snmp` (this thread's namespace):
/// `proto` (`Ip`, `Udp`) and the column name.
fn snmp(proto: &str, col: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap();
    let mut rows = s.lines().filter(|l| l.starts_with(&format!("{proto}:")));
    let (names, values) = (rows.next().unwrap(), rows.next().unwrap());
    let i = names.split_whitespace().position(|n| n == col).unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// Transmit checksum offload over `net_tap`, whose driver offers IPv4 and
/// UDP checksum offload (and computes the sums in software): the port asks
/// for it, the capabilities say `tx_checksum: offloaded`, the frames leave
/// with the IPv4 header checksum 0 and only the pseudo-header sum in the
/// UDP field — and the kernel socket on the tap receives every message
/// exactly, with its IP and UDP checksum-error counters unchanged (the
/// kernel verifies both sums of a tap's frames and drops a bad one).
#[test]
fn tx_checksum_offload_over_net_tap_reaches_a_kernel_socket() {
    if skip_without_root("tx_checksum_offload_over_net_tap_reaches_a_kernel_socket") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let h = lab.exchange();
    let n = unique();
    let tap = format!("dtap{n}");
    // A persistent multi-queue tap the driver attaches to (as it opens
    // its own): the endpoint reads the interface before the device exists.
    // The driver gives the tap its port's MAC address (random unless
    // devargs=mac=): the kernel end's, pinned as the peer's.
    ip_in(
        h,
        &["tuntap", "add", "dev", &tap, "mode", "tap", "multi_queue"],
    );
    ip_in(h, &["addr", "add", "198.18.9.1/24", "dev", &tap]);
    ip_in(h, &["link", "set", &tap, "up"]);
    let tap2 = tap.clone();
    let (mut dpdk, sock, before) = h
        .run(move || {
            let sock = UdpSocket::bind("198.18.9.1:9900").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let d = open(
                &format!(
                    "dpdk://net_tap{n}?iface={tap2}&port=9901&ip=198.18.9.2&peer=198.18.9.1:9900\
                     &peer_mac=02:00:00:00:09:01&reserve=0&devargs=mac=02:00:00:00:09:01"
                ),
                Role::Client,
            );
            let mac = L2Iface::lookup(&tap2).unwrap().mac;
            let before = (snmp("Udp", "InCsumErrors"), snmp("Ip", "InHdrErrors"));
            (d, sock, (before, mac))
        })
        .unwrap();
    let ((csum0, hdr0), tap_mac) = before;
    assert_eq!(tap_mac, ethernet::Address([2, 0, 0, 0, 9, 1]));
    let caps = dpdk.capabilities();
    let lines = caps.lines();
    assert!(
        lines
            .iter()
            .any(|(k, v)| k == "tx_checksum" && v == "offloaded"),
        "net_tap offers IPv4/UDP transmit checksum offload: {lines:?}"
    );
    drop(caps);
    for i in 0..1000u32 {
        let p = payload(i);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match dpdk.send_burst(&[TxMsg { data: &p, to: None }]) {
                Ok(1) => break,
                r => assert!(Instant::now() < deadline, "send {i}: {r:?}"),
            }
        }
        let mut b = [0u8; 2048];
        // The tap driver asks for SIGIO on its queues: a wait may be interrupted.
        let (got, from) = loop {
            match sock.recv_from(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                r => break r.unwrap_or_else(|e| panic!("message {i}: {e}")),
            }
        };
        assert_eq!(&b[..got], &p[..], "message {i}");
        assert_eq!(from, SocketAddr::from(([198, 18, 9, 2], 9901)));
    }
    let after = h
        .run(|| (snmp("Udp", "InCsumErrors"), snmp("Ip", "InHdrErrors")))
        .unwrap();
    assert_eq!(
        after,
        (csum0, hdr0),
        "checksum errors counted by the kernel"
    );
    let fs = dpdk.endpoint().stats;
    assert_eq!(fs.tx_frames, 1000, "{fs:?}");
    dpdk.settle();
    drop(dpdk);
    ip_in(h, &["link", "del", &tap]);
}

/// An error after the port is set up (here: a peer that never answers ARP)
/// closes the port before its pool is freed, and leaves the device name
/// and the interface usable: the same name opens again and echoes.
/// (Before, the pool was freed first, under a configured and started port.)
#[test]
fn an_error_after_the_port_is_set_up_leaves_it_reusable() {
    if skip_without_root("an_error_after_the_port_is_set_up_leaves_it_reusable") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let sh = lab.exchange();
    let si = sh.iface().to_string();
    for driver in ["net_af_packet", "net_af_xdp"] {
        let n = unique();
        let si = si.clone();
        let (failed, again) = sh
            .run(move || {
                // 198.18.0.77 is in the lab's subnet; nobody answers for it.
                let failed = Endpoint::parse(&format!(
                    "dpdk://{driver}{n}?iface={si}&port=9710&peer=198.18.0.77:9710"
                ))
                .unwrap()
                .open(Role::Client)
                .map(drop);
                let again = Endpoint::parse(&format!("dpdk://{driver}{n}?iface={si}&port=9711"))
                    .unwrap()
                    .open(Role::Server)
                    .map(|t| t.capabilities().transport);
                (failed, again)
            })
            .unwrap();
        let e = failed.unwrap_err().to_string();
        assert!(e.contains("198.18.0.77"), "{driver}: {e}");
        assert_eq!(again.unwrap(), "dpdk", "{driver}");
    }
}

/// Two DPDK ports of this process over `drv`, one on each end of the veth
/// (UDP ports `port` and `port + 1`): 2000 numbered messages echoed, every
/// byte checked, both ends' counts exact, no mbuf leaked.
fn dpdk_to_dpdk_echo(drv: &'static str, port: u16) {
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let (si, ci) = (sh.iface().to_string(), ch.iface().to_string());
    let (sip, cip) = (sh.addr(), ch.addr());
    let (a, b) = (unique(), unique());
    let mut server = sh
        .run(move || {
            open(
                &format!("dpdk://{drv}{a}?iface={si}&port={port}"),
                Role::Server,
            )
        })
        .unwrap();
    let mut client = ch
        .run(move || {
            open(
                &format!(
                    "dpdk://{drv}{b}?iface={ci}&port={}&peer={sip}:{port}",
                    port + 1
                ),
                Role::Client,
            )
        })
        .unwrap();
    let (s0, c0) = (server.mempool_use().in_use, client.mempool_use().in_use);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        echo(&mut server, &mut client, 2000, 32, |m| {
            assert_eq!(m.peer, Some(SocketAddr::from((cip, port + 1))));
        })
    }));
    let bytes = run.unwrap_or_else(|e| {
        // Both ends' counters say where the frames stopped.
        eprintln!("{drv} server: {:?}", server.capabilities().lines());
        eprintln!("{drv} client: {:?}", client.capabilities().lines());
        std::panic::resume_unwind(e)
    });
    assert_eq!(
        bytes,
        (0..2000).map(|i| payload(i).len()).sum::<usize>(),
        "{drv}"
    );
    for t in [&server, &client] {
        let f = t.endpoint().stats;
        assert_eq!(
            (f.delivered, bad(&f), f.tx_frames),
            (2000, 0, 2000),
            "{drv}: {f:?}"
        );
    }
    server.settle();
    client.settle();
    assert_eq!(
        (server.mempool_use().in_use, client.mempool_use().in_use),
        (s0, c0),
        "{drv}: mbufs leaked"
    );
}

/// Two DPDK ports of this process over `net_af_xdp` (each on its own
/// veth end, each with its own AF_XDP socket and UMEM): 2000 messages
/// echoed with exact bytes and counts both ways.
#[test]
fn dpdk_to_dpdk_echo_exactly_over_af_xdp() {
    if skip_without_root("dpdk_to_dpdk_echo_exactly_over_af_xdp") {
        return;
    }
    dpdk_to_dpdk_echo("net_af_xdp", 9310);
}

/// Packets each way in [`a_million_each_way`].
const MILLION: u64 = 1_000_000;

/// How far a sender of [`a_million_each_way`] may run ahead of what its
/// receiver counted: below every queue on the path (the veth's backlog of
/// 1000, the driver rings of 1024, a 4 MiB socket buffer), so a frame has
/// no reason to be lost, and one that is must be counted where it was.
const WINDOW: u64 = 256;

/// Waits until `sent` is less than [`WINDOW`] ahead of what the receiver
/// counted (`done`) plus what was given up for lost (`skipped`): when the
/// receiver makes no progress for 200 ms, what is in flight is given up
/// (the sender goes on; the loss is accounted for at the end). Returns how
/// many more may be sent.
fn wait_window(sent: u64, done: &AtomicU64, skipped: &mut u64) -> u64 {
    let mut last = done.load(Ordering::Acquire);
    let mut since = Instant::now();
    while sent.saturating_sub(last + *skipped) >= WINDOW {
        if since.elapsed() > Duration::from_millis(200) {
            *skipped = sent - last;
            break;
        }
        std::thread::yield_now();
        let now = done.load(Ordering::Acquire);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    WINDOW - sent.saturating_sub(last + *skipped)
}

/// (receive drops, transmit drops) of interface `iface` in this thread's
/// network namespace (`/proc/thread-self/net/dev`).
fn dev_drops(iface: &str) -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
    let line = s
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{iface}:")))
        .unwrap_or_else(|| panic!("{iface} not in /proc/net/dev"));
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v[3], v[11])
}

/// 10⁶ datagrams out of a `drv` port to a kernel socket, then 10⁶ from a
/// kernel socket into the port, each sender at most [`WINDOW`] ahead of
/// its receiver. Full counts each way: out, 10⁶ sent and built = received
/// by the kernel (bytes exact) + dropped and counted (the kernel's UDP
/// errors, either veth end's drops); in, 10⁶ sent by the kernel =
/// delivered (bytes exact) + dropped and counted (the port's missed,
/// errors and mbuf failures, frames dropped for a fault). The mempool's
/// in-use count is back to its value at open after each.
fn a_million_each_way(drv: &'static str, port: u16) {
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let si = sh.iface().to_string();
    let (sip, cip) = (sh.addr(), ch.addr());
    let n = unique();
    let mut t = sh
        .run(move || {
            open(
                &format!(
                    "dpdk://{drv}{n}?iface={si}&port={port}&peer={cip}:{}",
                    port + 1
                ),
                Role::Client,
            )
        })
        .unwrap();
    let start = t.mempool_use().in_use;

    // Out: to a kernel socket with room for a window (SO_RCVBUFFORCE).
    let (ci, si) = (ch.iface().to_string(), sh.iface().to_string());
    let ci2 = ci.clone();
    let (mut sink, (errors0, crx0)) = ch
        .run(move || {
            let s = open_any(
                &format!("udp://{cip}:{}?rx=block&rcvbuf=4M", port + 1),
                Role::Server,
            );
            (s, (snmp("Udp", "InErrors"), dev_drops(&ci2).0))
        })
        .unwrap();
    let si2 = si.clone();
    let stx0 = sh.run(move || dev_drops(&si2).1).unwrap();
    let drained = std::sync::Arc::new(AtomicU64::new(0));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let (drained, done) = (drained.clone(), done.clone());
        std::thread::spawn(move || {
            let mut b = RxBurst::new(64, 64);
            sink.set_recv_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut bytes = 0u64;
            loop {
                let k = sink.recv_burst(&mut b).unwrap();
                for i in 0..k {
                    bytes += b.get(i).0.len() as u64;
                }
                drained.fetch_add(k as u64, Ordering::Release);
                if k == 0 && done.load(Ordering::Acquire) {
                    return bytes;
                }
            }
        })
    };
    let data = [0x5au8; 32];
    let msgs = [TxMsg {
        data: &data,
        to: None,
    }; 32];
    let (mut sent, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(300);
    while sent < MILLION {
        assert!(
            Instant::now() < deadline,
            "{drv}: sending stalled at {sent}"
        );
        let room = wait_window(sent, &drained, &mut skipped);
        let k = (MILLION - sent).min(32).min(room) as usize;
        match t.send_burst(&msgs[..k]) {
            Ok(m) => sent += m as u64,
            Err(_) => failed += 1,
        }
    }
    // The last window arrives, then the drain ends.
    let end = Instant::now() + Duration::from_secs(10);
    while drained.load(Ordering::Acquire) < MILLION && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::Release);
    let bytes = drain.join().unwrap();
    let (errors, crx) = ch
        .run({
            let ci = ci.clone();
            move || (snmp("Udp", "InErrors"), dev_drops(&ci).0)
        })
        .unwrap();
    let stx = sh
        .run({
            let si = si.clone();
            move || dev_drops(&si).1
        })
        .unwrap();
    let lost = (errors - errors0) + (crx - crx0) + (stx - stx0);
    let f = t.endpoint().stats;
    let drained = drained.load(Ordering::Acquire);
    eprintln!("{drv} out: {sent} sent, {drained} received, {lost} dropped and counted");
    assert_eq!(
        (sent, f.tx_frames, drained + lost, bytes),
        (MILLION, MILLION, MILLION, drained * 32),
        "{drv} out: sent, frames built, received by the kernel + counted drops ({drained} + \
         {lost}: UDP errors {}, veth drops {} + {}), bytes ({failed} failed bursts)",
        errors - errors0,
        crx - crx0,
        stx - stx0
    );
    t.settle();
    assert_eq!(t.mempool_use().in_use, start, "{drv}: mbufs leaked sending");

    // In: from a kernel socket, sendmmsg of 32 at a time.
    let mut sender = ch
        .run(move || open_any(&format!("udp://{sip}:{port}?batch=32"), Role::Client))
        .unwrap();
    let received = std::sync::Arc::new(AtomicU64::new(0));
    let blaster = {
        let received = received.clone();
        std::thread::spawn(move || {
            let msgs = [TxMsg {
                data: &data,
                to: None,
            }; 32];
            let (mut sent, mut skipped) = (0u64, 0u64);
            while sent < MILLION {
                let room = wait_window(sent, &received, &mut skipped);
                let k = (MILLION - sent).min(32).min(room) as usize;
                sent += sender.send_burst(&msgs[..k]).unwrap() as u64;
            }
            sent
        })
    };
    let stats0 = t.ring().port().stats().unwrap();
    // The kernel's drops on the way in: the sending interface's transmit
    // drops and the receiving one's receive drops (a frame the XDP program
    // could not redirect because the socket's receive ring was full is
    // counted there, not in the port's statistics).
    let (ci3, si3) = (ci.clone(), si.clone());
    let ctx0 = ch.run(move || dev_drops(&ci3).1).unwrap();
    let srx0 = sh.run(move || dev_drops(&si3).0).unwrap();
    let mut b = RxBurst::new(32, 2048);
    let (mut got, mut bytes) = (0u64, 0u64);
    let mut idle: Option<Instant> = None;
    t.set_recv_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while got < MILLION {
        assert!(
            Instant::now() < deadline,
            "{drv}: receiving stalled at {got}"
        );
        let k = t.recv_burst(&mut b).unwrap();
        for i in 0..k {
            let (d, m) = b.get(i);
            assert_eq!(d, &data[..]);
            assert_eq!(m.peer.map(|p| p.ip()), Some(cip.into()));
            bytes += d.len() as u64;
        }
        got += k as u64;
        received.store(got, Ordering::Release);
        if k > 0 {
            idle = None;
        } else if blaster.is_finished() {
            // Whatever is still on its way gets 1 s.
            if idle.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(1) {
                break;
            }
        }
    }
    let blasted = blaster.join().unwrap();
    let stats = t.ring().port().stats().unwrap();
    let f2 = t.endpoint().stats;
    let (ci3, si3) = (ci.clone(), si.clone());
    let ctx = ch.run(move || dev_drops(&ci3).1).unwrap() - ctx0;
    let srx = sh.run(move || dev_drops(&si3).0).unwrap() - srx0;
    let lost = (stats.imissed - stats0.imissed)
        + (stats.rx_nombuf - stats0.rx_nombuf)
        + (stats.ierrors - stats0.ierrors)
        + (bad(&f2) - bad(&f))
        + ctx
        + srx;
    eprintln!(
        "{drv} in: {blasted} sent, {got} received, {lost} dropped and counted (veth drops {ctx} \
         + {srx})"
    );
    assert_eq!(
        (blasted, got + lost, bytes, f2.delivered - f.delivered),
        (MILLION, MILLION, got * 32, got),
        "{drv} in: sent by the kernel, delivered + counted drops ({got} + {lost}: veth drops \
         {ctx} + {srx}), bytes, delivered ({f2:?}; port before {stats0:?}, after {stats:?})"
    );
    t.settle();
    assert_eq!(
        t.mempool_use().in_use,
        start,
        "{drv}: mbufs leaked receiving"
    );
}

/// The 10⁶-packet run of [`a_million_each_way`] over `net_af_xdp` (its
/// UMEM is the mempool: the fill ring's mbufs are in use from the start
/// and must be the only ones at the end).
#[test]
fn no_mbuf_leaks_after_a_million_packets_over_af_xdp() {
    if skip_without_root("no_mbuf_leaks_after_a_million_packets_over_af_xdp") {
        return;
    }
    a_million_each_way("net_af_xdp", 9520);
}

/// A file removed when dropped (also when the test fails).
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(what: &str) -> Self {
        Self(std::env::temp_dir().join(format!(
            "hftnet-dpdk-{what}-{}-{}.pcap",
            std::process::id(),
            unique()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The frames of a pcap file as written by `pcap=` (little-endian, magic
/// `0xa1b23c4d`), each as captured.
fn pcap_records(path: &std::path::Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(b.len() >= 24, "no pcap header in {}", path.display());
    assert_eq!(
        u32::from_le_bytes(b[0..4].try_into().unwrap()),
        hftnet_io::pcap::MAGIC_NANOS
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at < b.len() {
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(b[at + 12..at + 16].try_into().unwrap()) as usize;
        assert_eq!(incl, orig, "record {} cut short", out.len());
        out.push(b[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    assert_eq!(at, b.len(), "a record runs past the end of the file");
    out
}

/// (source port, destination port, payload) of an Ethernet/IPv4/UDP frame.
fn udp_of(frame: &[u8]) -> Option<(u16, u16, &[u8])> {
    let ip = ethernet::HEADER_LEN;
    if frame.len() < ip + 28 || frame[12..14] != [0x08, 0x00] || frame[ip + 9] != 17 {
        return None;
    }
    let udp = ip + usize::from(frame[ip] & 0x0f) * 4;
    let port = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    let len = usize::from(port(udp + 4));
    Some((port(udp), port(udp + 2), &frame[udp + 8..udp + len]))
}

/// The `dpdk://` section of an endpoint's capabilities.
fn dpdk_caps(t: &AnyTransport) -> hftnet_io::dpdk::DpdkCaps {
    match t.capabilities().backend {
        Some(hftnet_io::Section::Dpdk(c)) => c,
        other => panic!("not a dpdk:// endpoint: {other:?}"),
    }
}

/// `pcap=FILE` on a `dpdk://` server echoing 500 messages of a kernel
/// socket, over both drivers: the file holds exactly the frames the port
/// received and sent (as many records as the frame counters say), the 500
/// requests and the 500 echoes byte for byte in order, and nothing else but
/// the frames counted as not ours.
#[test]
fn pcap_of_a_dpdk_endpoint_holds_exactly_its_frames() {
    if skip_without_root("pcap_of_a_dpdk_endpoint_holds_exactly_its_frames") {
        return;
    }
    for (drv, port) in [("net_af_packet", 9850u16), ("net_af_xdp", 9860)] {
        let lab = Lab::two_host(None).unwrap();
        let (sh, ch) = (lab.exchange(), lab.trader());
        let si = sh.iface().to_string();
        let sip = sh.addr();
        let cap = TempFile::new(drv);
        let path = cap.0.display().to_string();
        let n = unique();
        let mut server = sh
            .run(move || {
                open_any(
                    &format!("dpdk://{drv}{n}?iface={si}&port={port}&pcap={path}"),
                    Role::Server,
                )
            })
            .unwrap();
        let mut client = ch
            .run(move || open_any(&format!("udp://{sip}:{port}?rx=block"), Role::Client))
            .unwrap();
        let bytes = echo(&mut server, &mut client, 500, 8, |_| {});
        assert_eq!(bytes, (0..500).map(|i| payload(i).len()).sum::<usize>());
        let frames = dpdk_caps(&server).frames;
        let written = server
            .capabilities()
            .middleware
            .and_then(|m| m.pcap)
            .expect("the capture reports itself");
        assert_eq!(
            (frames.delivered, frames.tx_frames),
            (500, 500),
            "{frames:?}"
        );
        drop(server); // flushes and closes the file
        let recs = pcap_records(&cap.0);
        assert_eq!(
            (recs.len() as u64, written.stats.records),
            (
                frames.rx_frames + frames.tx_frames,
                frames.rx_frames + frames.tx_frames
            ),
            "{drv}: one record per frame received and sent ({frames:?})"
        );
        let to_us: Vec<&[u8]> = recs
            .iter()
            .filter_map(|f| udp_of(f).filter(|u| u.1 == port).map(|u| u.2))
            .collect();
        let from_us: Vec<&[u8]> = recs
            .iter()
            .filter_map(|f| udp_of(f).filter(|u| u.0 == port).map(|u| u.2))
            .collect();
        let want: Vec<Vec<u8>> = (0..500).map(payload).collect();
        assert_eq!(to_us, want, "{drv}: the requests, in order");
        assert_eq!(from_us, want, "{drv}: the echoes, in order");
        assert_eq!(
            (recs.len() - 1000) as u64,
            frames.rx_frames - frames.delivered,
            "{drv}: the other records are the frames received and not delivered ({frames:?})"
        );
    }
}

/// `loss=0.1&faults_on=both&seed=7` and `pcap=` on a `dpdk://` client, in
/// lockstep with a kernel socket echoing what it gets, over both drivers:
/// the messages the send faults dropped never reach the kernel, every
/// other one does (bytes exact); the echoes the receive faults dropped are
/// the only ones the caller misses; the counters say exactly that (sends
/// offered and dropped, receives offered = frames delivered by the port,
/// dropped), and the capture holds what went to and came from the port
/// (after send faults, before receive faults).
#[test]
fn faults_of_a_dpdk_endpoint_are_counted_exactly() {
    if skip_without_root("faults_of_a_dpdk_endpoint_are_counted_exactly") {
        return;
    }
    const N: u32 = 1000;
    let faults = |t: &AnyTransport| {
        let m = t.capabilities().middleware.expect("middleware counters");
        (m.faults_tx.unwrap(), m.faults_rx.unwrap())
    };
    for (drv, port) in [("net_af_packet", 9870u16), ("net_af_xdp", 9880)] {
        let lab = Lab::two_host(None).unwrap();
        let (sh, ch) = (lab.exchange(), lab.trader());
        let ci = ch.iface().to_string();
        let (sip, cip) = (sh.addr(), ch.addr());
        let cap = TempFile::new(drv);
        let path = cap.0.display().to_string();
        let kernel = sh
            .run(move || {
                let s = UdpSocket::bind((sip, port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                s
            })
            .unwrap();
        let n = unique();
        let mut client = ch
            .run(move || {
                open_any(
                    &format!(
                        "dpdk://{drv}{n}?iface={ci}&port={}&peer={sip}:{port}&loss=0.1\
                         &faults_on=both&seed=7&pcap={path}",
                        port + 1
                    ),
                    Role::Client,
                )
            })
            .unwrap();
        client
            .set_recv_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let (mut passed, mut tx_lost, mut rx_lost) = (Vec::new(), 0u64, 0u64);
        let mut b = RxBurst::new(8, 2048);
        for i in 0..N {
            let p = payload(i);
            client.send(&p, None).unwrap();
            let (ftx, _) = faults(&client);
            assert_eq!(ftx.messages, u64::from(i) + 1, "{drv}");
            if ftx.dropped > tx_lost {
                tx_lost = ftx.dropped;
                continue;
            }
            let mut buf = [0u8; 2048];
            let (len, from) = kernel
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{drv}: message {i} passed the faults: {e}"));
            assert_eq!(&buf[..len], &p[..], "{drv}: message {i}");
            assert_eq!(from, SocketAddr::from((cip, port + 1)));
            kernel.send_to(&buf[..len], from).unwrap();
            passed.push(p);
            // The echo: delivered, or dropped by the receive faults.
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                if client.recv_burst(&mut b).unwrap() > 0 {
                    assert_eq!(
                        b.get(0).0,
                        passed.last().unwrap().as_slice(),
                        "{drv}: echo {i}"
                    );
                    break;
                }
                let (_, frx) = faults(&client);
                if frx.messages == passed.len() as u64 && frx.dropped > rx_lost {
                    rx_lost = frx.dropped;
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{drv}: echo {i} neither came nor was dropped"
                );
            }
        }
        // Nothing more reached the kernel.
        kernel
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert!(
            kernel.recv_from(&mut [0u8; 2048]).is_err(),
            "{drv}: an extra message"
        );
        let (ftx, frx) = faults(&client);
        let frames = dpdk_caps(&client).frames;
        let sent = passed.len() as u64;
        assert!(
            tx_lost > 0 && rx_lost > 0,
            "{drv}: loss=0.1 of {N} dropped none"
        );
        assert_eq!(
            (ftx.messages, ftx.dropped, frames.tx_frames),
            (u64::from(N), u64::from(N) - sent, sent),
            "{drv}: sends offered, dropped by the faults, frames built ({ftx:?})"
        );
        assert_eq!(
            (frx.messages, frames.delivered, frx.dropped, bad(&frames)),
            (sent, sent, rx_lost, 0),
            "{drv}: echoes delivered by the port and offered to the faults, dropped ({frx:?})"
        );
        drop(client);
        let recs = pcap_records(&cap.0);
        let out: Vec<&[u8]> = recs
            .iter()
            .filter_map(|f| udp_of(f).filter(|u| u.1 == port).map(|u| u.2))
            .collect();
        let back: Vec<&[u8]> = recs
            .iter()
            .filter_map(|f| udp_of(f).filter(|u| u.0 == port).map(|u| u.2))
            .collect();
        assert_eq!(
            out, passed,
            "{drv}: the capture holds the sends that passed the faults"
        );
        assert_eq!(back, passed, "{drv}: and every echo the port received");
    }
}

/// The AF_XDP socket a `net_af_xdp` port's set-up creates is told from
/// others by the kernel's answer (`hftnet_dpdk_sys::xsk_bound_to`), not only
/// by having appeared during the set-up: in a process where other threads
/// open AF_XDP sockets at the same moment (this test binary's other tests
/// do), only the socket bound to the port's own interface and queue, in the
/// port's namespace, is taken for the one the driver leaves open. An
/// `xdp://` socket of another namespace on an interface of the same index
/// number, an unbound socket, and the port's socket asked of another queue
/// are not it; the port still gives its queue back on close.
#[test]
fn af_xdp_socket_of_a_port_is_told_by_its_interface_and_queue() {
    if skip_without_root("af_xdp_socket_of_a_port_is_told_by_its_interface_and_queue") {
        return;
    }
    use hftnet_dpdk_sys::{af_xdp_sockets, xsk_bound_to};
    use std::os::fd::{AsFd, BorrowedFd};
    fn bound(fd: i32, idx: u32, q: u32) -> bool {
        // SAFETY: the descriptor is open (just listed, and its owner is
        // alive) for the length of the call, which does not close it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        xsk_bound_to(fd, idx, q).unwrap_or(false)
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let (si, ci) = (sh.iface().to_string(), ch.iface().to_string());
    // An xdp:// socket in the other namespace, found by its own binding.
    let ci2 = ci.clone();
    let (xdp, cidx, theirs) = ch
        .run(move || {
            let t = open_any(&format!("xdp://{ci2}/0?port=9730&mode=copy"), Role::Server);
            let idx = L2Iface::lookup(&ci2).unwrap().index;
            let theirs: Vec<i32> = af_xdp_sockets()
                .into_iter()
                .map(|(fd, _)| fd)
                .filter(|&fd| bound(fd, idx, 0))
                .collect();
            (t, idx, theirs)
        })
        .unwrap();
    assert_eq!(theirs.len(), 1, "the xdp:// socket on {ci} queue 0");
    let theirs = theirs[0];
    let n = unique();
    let si2 = si.clone();
    let (dpdk, sidx, mine, checks) = sh
        .run(move || {
            let unbound = socket2::Socket::new(
                socket2::Domain::from(libc::AF_XDP),
                socket2::Type::RAW,
                None,
            )
            .unwrap();
            let t = open(
                &format!("dpdk://net_af_xdp{n}?iface={si2}&port=9731"),
                Role::Server,
            );
            let idx = L2Iface::lookup(&si2).unwrap().index;
            let mine: Vec<i32> = af_xdp_sockets()
                .into_iter()
                .map(|(fd, _)| fd)
                .filter(|&fd| bound(fd, idx, 0))
                .collect();
            let checks = (
                // The other namespace's socket, asked of this namespace's
                // interface with that socket's own index number.
                bound(theirs, cidx, 0),
                bound(theirs, idx, 0),
                xsk_bound_to(unbound.as_fd(), idx, 0),
                mine.first().map(|&fd| bound(fd, idx, 1)),
                // Not an AF_XDP socket: an error, not an answer.
                xsk_bound_to(UdpSocket::bind("127.0.0.1:0").unwrap().as_fd(), idx, 0).is_err(),
            );
            (t, idx, mine, checks)
        })
        .unwrap();
    assert_eq!(
        mine.len(),
        1,
        "exactly the port's socket on {si} (index {sidx}) queue 0"
    );
    assert_ne!(mine[0], theirs);
    assert_eq!(
        checks,
        (false, false, Ok(false), Some(false), true),
        "(xdp:// socket of the other namespace with its index, with this one's; unbound; \
         the port's socket on queue 1; a UDP socket)"
    );
    drop(dpdk);
    drop(xdp);
    // The port's queue is free again: the same device opens again.
    sh.run(move || {
        open(
            &format!("dpdk://net_af_xdp{n}?iface={si}&port=9731"),
            Role::Server,
        )
    })
    .unwrap();
}

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;

/// Sending over `net_af_xdp` allocates nothing, the link watch included:
/// the watch looks at the kernel interface's link at most every
/// millisecond while sending, and that look is now a non-blocking read of
/// the kernel's link notifications (before, a netlink request that
/// allocated its reply, once per millisecond). 20,000 messages over at
/// least 50 ms on one thread (allocations counted per thread); that the
/// notifications still show a link down/up is `link_down_and_up_is_recovered`.
#[test]
fn sending_over_af_xdp_allocates_nothing_with_the_link_watch() {
    if skip_without_root("sending_over_af_xdp_allocates_nothing_with_the_link_watch") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let (sip, ci) = (sh.addr(), ch.iface().to_string());
    let sink = sh
        .run(move || {
            let s = UdpSocket::bind((sip, 9740)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            s
        })
        .unwrap();
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut got = 0u32;
        while sink.recv(&mut buf).is_ok() {
            got += 1;
        }
        got
    });
    let n = unique();
    let (allocs, sent, took, client) = ch
        .run(move || {
            let mut t = open(
                &format!("dpdk://net_af_xdp{n}?iface={ci}&port=9741&peer={sip}:9740"),
                Role::Client,
            );
            let data = [0x5au8; 32];
            let msgs = [TxMsg {
                data: &data,
                to: None,
            }; 8];
            // Warm-up: the peer's address resolved, the thread registered.
            for _ in 0..100 {
                let _ = t.send_burst(&msgs);
            }
            let (before, start) = (counting_alloc::allocs(), Instant::now());
            let mut sent = 0usize;
            while sent < 20_000 || start.elapsed() < Duration::from_millis(50) {
                assert!(start.elapsed() < Duration::from_secs(30), "sending stalled");
                if let Ok(k) = t.send_burst(&msgs) {
                    sent += k;
                }
            }
            (counting_alloc::allocs() - before, sent, start.elapsed(), t)
        })
        .unwrap();
    assert!(
        drain.join().unwrap() > 0,
        "nothing reached the kernel socket"
    );
    assert!(sent >= 20_000 && took >= Duration::from_millis(50));
    assert_eq!(allocs, 0, "{sent} messages in {took:?} allocated");
    drop(client);
}

/// Device names up to the URI's limit (31 bytes) work over both drivers:
/// the mempool's name is derived to fit DPDK's 25 bytes (before, `hft_` +
/// a device name over 21 bytes failed at pool creation).
#[test]
fn long_device_names_get_a_mempool() {
    if skip_without_root("long_device_names_get_a_mempool") {
        return;
    }
    for drv in DRIVERS {
        let lab = Lab::two_host(None).unwrap();
        let (sh, ch) = (lab.exchange(), lab.trader());
        let si = sh.iface().to_string();
        let sip = sh.addr();
        // The longest name the URI takes: 31 bytes.
        let name = format!("{drv}{:0>w$}", unique(), w = 31 - drv.len());
        assert_eq!(name.len(), 31, "{name}");
        let uri = format!("dpdk://{name}?iface={si}&port=9750");
        let mut server = sh.run(move || open(&uri, Role::Server)).unwrap();
        let mut client = ch
            .run(move || open_any(&format!("udp://{sip}:9750?rx=block"), Role::Client))
            .unwrap();
        let bytes = echo(&mut server, &mut client, 100, 8, |_| {});
        assert_eq!(
            bytes,
            (0..100).map(|i| payload(i).len()).sum::<usize>(),
            "{name}"
        );
        assert_eq!(
            server
                .capabilities()
                .lines()
                .iter()
                .find(|(k, _)| k == "dpdk")
                .map(|(_, v)| v.starts_with(&name)),
            Some(true)
        );
    }
}

/// `cpu=` is applied by every endpoint of the process, not only the one
/// that started the EAL: after opening a second endpoint with `cpu=C` the
/// opening thread runs on C alone; a CPU the thread may not use is refused
/// naming `cpu` and the allowed CPUs; an open with `cpu=` that fails later
/// leaves the thread's CPUs as they were.
#[test]
fn cpu_of_a_later_endpoint_is_applied() {
    if skip_without_root("cpu_of_a_later_endpoint_is_applied") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let sh = lab.exchange();
    let si = sh.iface().to_string();
    let (a, b, c, d) = (unique(), unique(), unique(), unique());
    let (before, cpu, after, bad, failed, after_failed) = sh
        .run(move || {
            let first = open(
                &format!("dpdk://net_af_packet{a}?iface={si}&port=9760"),
                Role::Server,
            );
            let before = hftnet_sys::sched::allowed_cpus().unwrap();
            let cpu = *before.last().unwrap();
            let second = open(
                &format!("dpdk://net_af_packet{b}?iface={si}&port=9761&cpu={cpu}"),
                Role::Server,
            );
            let after = hftnet_sys::sched::allowed_cpus().unwrap();
            let bad = Endpoint::parse(&format!(
                "dpdk://net_af_packet{c}?iface={si}&port=9762&cpu=4000"
            ))
            .unwrap()
            .open(Role::Server)
            .map(drop);
            // An open that fails after its pin (here: another eal= than the
            // process's EAL has) gives the thread back its CPUs.
            hftnet_sys::sched::set_allowed_cpus(&before).unwrap();
            let failed = Endpoint::parse(&format!(
                "dpdk://net_af_packet{d}?iface={si}&port=9763&cpu={cpu}&eal=--log-level=3"
            ))
            .unwrap()
            .open(Role::Server)
            .map(drop);
            let after_failed = hftnet_sys::sched::allowed_cpus().unwrap();
            drop((first, second));
            (before, cpu, after, bad, failed, after_failed)
        })
        .unwrap();
    let e = failed.unwrap_err().to_string();
    assert!(e.contains("already initialised with eal="), "{e}");
    assert_eq!(
        after_failed, before,
        "a failed open with cpu={cpu} left the thread's CPUs changed"
    );
    assert!(!before.is_empty());
    assert_eq!(
        after,
        vec![cpu],
        "cpu={cpu} of the second endpoint not applied"
    );
    let e = bad.unwrap_err().to_string();
    assert!(e.contains("\"cpu\"") && e.contains("CPU 4000"), "{e}");
}

/// A `net_af_packet` port sending 10,000 datagrams (to a kernel socket of
/// the other namespace) receives none of its own frames back, though it
/// polls its receive queue between bursts: the kernel hands a device's
/// outgoing frames to the packet sockets bound to it but skips the socket
/// that sent them (and the driver's default qdisc bypass skips the taps
/// altogether), so the port's receive work while sending is only the
/// interface's chatter.
#[test]
fn af_packet_port_does_not_receive_its_own_frames() {
    if skip_without_root("af_packet_port_does_not_receive_its_own_frames") {
        return;
    }
    const N: u64 = 10_000;
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let si = sh.iface().to_string();
    let cip = ch.addr();
    let n = unique();
    let mut t = sh
        .run(move || {
            open_any(
                &format!("dpdk://net_af_packet{n}?iface={si}&port=9890&peer={cip}:9891"),
                Role::Client,
            )
        })
        .unwrap();
    // Takes the datagrams (no ICMP port unreachable comes back).
    let sink = ch
        .run(move || UdpSocket::bind(SocketAddr::from((cip, 9891))).unwrap())
        .unwrap();
    t.set_recv_timeout(Some(Duration::from_millis(1))).unwrap();
    let data = [0x33u8; 64];
    let msgs = [TxMsg {
        data: &data,
        to: None,
    }; 32];
    let mut b = RxBurst::new(64, 64);
    let (mut sent, mut got) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent < N {
        assert!(Instant::now() < deadline, "sending stalled at {sent}");
        let k = (N - sent).min(32) as usize;
        sent += t.send_burst(&msgs[..k]).unwrap() as u64;
        got += t.recv_burst(&mut b).unwrap() as u64;
    }
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        got += t.recv_burst(&mut b).unwrap() as u64;
    }
    let c = dpdk_caps(&t);
    let f = c.frames;
    assert_eq!((got, f.tx_frames), (0, N), "{f:?}");
    // What came in is the interface's chatter (ARP, IPv6), not ours.
    assert!(
        f.rx_frames < 100 && c.port.ipackets < 100,
        "the port received its own frames: {f:?} {:?}",
        c.port
    );
    drop(sink);
}
