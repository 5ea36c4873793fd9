//! `packet://` in a lab of two network namespaces joined by a veth pair, for
//! real (root): only the configured flow reaches the ring while ICMP, TCP and
//! UDP to another port still reach the kernel; echoes between a ring and a
//! kernel socket and between two rings (V2 and V3) with exact counts and
//! bytes; a fanout group sharing a flow; runt, oversized and corrupt frames
//! counted and dropped; and open errors that name the problem.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use hftnet_io::l2::L2Iface;
use hftnet_io::{Endpoint, OpenError, PacketConfig, PacketTransport, Role, Transport, TxMsg, Uri};
use hftnet_lab::Lab;
use hftnet_wire::ethernet;
use hftnet_wire::udp::{FrameSpec, emit_frame};

#[path = "support/traffic.rs"]
mod traffic;
use traffic::{
    collect, echo, flow_and_the_rest, forged_source_mac_does_not_redirect, inject, payload,
    skip_without_root,
};

fn open(uri: &str, role: Role) -> PacketTransport {
    let cfg = PacketConfig::from_uri(&Uri::parse(uri).unwrap()).unwrap();
    let mut t = PacketTransport::open(cfg, role).unwrap_or_else(|e| panic!("{uri}: {e}"));
    t.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
    t
}

#[test]
fn only_the_flow_reaches_the_ring_and_the_rest_reaches_the_kernel() {
    if skip_without_root("only_the_flow_reaches_the_ring_and_the_rest_reaches_the_kernel") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (server_host, client_host) = (lab.exchange(), lab.trader());
    let iface = server_host.iface().to_string();
    let mut ring_t = server_host
        .run(move || {
            open(
                &format!("packet://{iface}?port=9000&rx=block"),
                Role::Server,
            )
        })
        .unwrap();
    flow_and_the_rest(server_host, client_host, &mut ring_t);
    let s = ring_t.stats().unwrap();
    assert_eq!(s.frames.delivered, 200);
    assert_eq!(
        s.frames.rx_frames, 200,
        "the filter let nothing else into the ring: {s:?}"
    );
    assert_eq!(s.frames.dropped(), 0, "{s:?}");
    assert_eq!(s.frames.tx_frames, 200);
}

fn echo_rings(q: &str) {
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let (si, ci) = (sh.iface().to_string(), ch.iface().to_string());
    let server_ip = sh.addr();
    let sq = q.to_string();
    let mut server = sh
        .run(move || open(&format!("packet://{si}?port=9100&{sq}"), Role::Server))
        .unwrap();
    let cq = q.to_string();
    let mut client = ch
        .run(move || {
            open(
                &format!("packet://{ci}?port=9200&peer={server_ip}:9100&{cq}"),
                Role::Client,
            )
        })
        .unwrap();
    let total = 1000u32;
    let bytes = echo(&mut server, &mut client, total, 8, |m| {
        assert!(
            m.rx_ts_ns.is_some(),
            "{q}: ring frames carry a receive time"
        );
    });
    let expected: usize = (0..total).map(|i| payload(i).len()).sum();
    assert_eq!(bytes, expected, "{q}");
    for t in [&mut server, &mut client] {
        let s = t.stats().unwrap();
        assert_eq!(
            (s.frames.delivered, s.frames.dropped(), s.ring_drops),
            (1000, 0, 0),
            "{q}: {s:?}"
        );
    }
    let caps = client.capabilities();
    assert_eq!(caps.transport, "packet");
    assert!(
        caps.notes.iter().any(|n| n.contains("TPACKET_V")),
        "{caps:?}"
    );
}

#[test]
fn rings_echo_v2_spin_and_v3_block() {
    if skip_without_root("rings_echo_v2_spin_and_v3_block") {
        return;
    }
    echo_rings("rx=spin");
    echo_rings("rx=spin&version=3");
    echo_rings("rx=block&version=3&block_ms=1");
    echo_rings("rx=adaptive&qdisc_bypass=0&frames=64&tx_frames=4");
    // The kernel copies each sent frame (PACKET_VNET_HDR); received frames
    // carry the virtio header before tp_mac.
    echo_rings("rx=spin&tx_copy=1");
    echo_rings("rx=spin&version=3&tx_copy=1");
}

#[test]
fn fanout_group_shares_the_flow() {
    if skip_without_root("fanout_group_shares_the_flow") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let si = sh.iface().to_string();
    let server_ip = sh.addr();
    let (mut a, mut b) = sh
        .run(move || {
            let uri =
                format!("packet://{si}?port=9300&fanout=42&fanout_mode=lb&rx=spin&frames=1024");
            (open(&uri, Role::Server), open(&uri, Role::Server))
        })
        .unwrap();
    ch.run(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for i in 0..1000u32 {
            s.send_to(&payload(i), (server_ip, 9300)).unwrap();
            if i % 32 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
    .unwrap();
    let mut seen = vec![false; 1000];
    let mut per = [0usize; 2];
    for (k, t) in [&mut a, &mut b].into_iter().enumerate() {
        t.set_recv_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        for (d, _) in collect(t, 1000, Duration::from_secs(3)) {
            let i = u32::from_le_bytes(d[..4].try_into().unwrap()) as usize;
            assert_eq!(d, payload(i as u32));
            assert!(!seen[i], "datagram {i} delivered twice");
            seen[i] = true;
            per[k] += 1;
        }
    }
    assert_eq!(
        per[0] + per[1],
        1000,
        "every datagram reached one member: {per:?}"
    );
    assert!(per[0] > 0 && per[1] > 0, "round robin used both: {per:?}");
}

#[test]
fn runt_oversized_and_corrupt_frames_are_counted_and_dropped() {
    if skip_without_root("runt_oversized_and_corrupt_frames_are_counted_and_dropped") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let si = sh.iface().to_string();
    let (server_ip, client_ip) = (sh.addr(), ch.addr());
    // 512-byte ring frames: a 1000-byte datagram does not fit.
    let (mut t, server_mac) = sh
        .run(move || {
            let t = open(
                &format!("packet://{si}?port=9400&rx=spin&frame_size=512"),
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
    let mut frag = good(b"fragment");
    frag[ip + 6] |= 0x20; // more fragments
    frag[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
    let c = !hftnet_wire::checksum::data(&frag[ip..ip + 20]);
    frag[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
    let oversized = good(&[9; 1000]);
    let last = good(b"the good one");
    ch.run(move || inject(&ci, &[runt, ip_sum, udp_sum, frag, oversized, last]))
        .unwrap();
    let got = collect(&mut t, 1, Duration::from_secs(3));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, b"the good one");
    let s = t.stats().unwrap();
    assert_eq!(
        (
            s.frames.truncated,
            s.frames.ip_checksum,
            s.frames.udp_checksum,
            s.frames.fragment,
            s.frames.oversized
        ),
        (1, 1, 1, 1, 1),
        "{s:?}"
    );
    assert_eq!(
        (s.frames.delivered, s.frames.dropped(), s.frames.rx_frames),
        (1, 5, 6),
        "{s:?}"
    );
}

#[test]
fn open_errors_name_the_problem() {
    if skip_without_root("open_errors_name_the_problem") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let h = lab.trader();
    let iface = h.iface().to_string();
    let unused = Ipv4Addr::from(u32::from(h.addr()) | 0x63);
    h.run(move || {
        let err = |uri: &str| match Endpoint::parse(uri).unwrap().open(Role::Client) {
            Ok(_) => panic!("{uri} opened"),
            Err(e) => e,
        };
        let e = err("packet://nosuch0?port=1&peer=198.18.0.2:1");
        assert!(matches!(e, OpenError::NoSuchInterface { .. }), "{e}");
        let e = err(&format!("packet://{iface}?port=1")).to_string();
        assert!(e.contains("peer"), "{e}");
        let start = Instant::now();
        let e = err(&format!("packet://{iface}?port=1&peer={unused}:1")).to_string();
        assert!(e.contains(&unused.to_string()), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let _held = UdpSocket::bind((h_addr(&iface), 5555)).unwrap();
        let e = err(&format!("packet://{iface}?port=5555&peer=198.18.0.2:1"));
        assert!(matches!(e, OpenError::AddrInUse { .. }), "{e}");
    })
    .unwrap();
}

fn h_addr(iface: &str) -> Ipv4Addr {
    L2Iface::lookup(iface).unwrap().ipv4.unwrap().0
}

#[test]
fn a_multicast_group_reaches_the_ring() {
    if skip_without_root("a_multicast_group_reaches_the_ring") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let si = sh.iface().to_string();
    let group = Ipv4Addr::new(239, 1, 1, 7);
    let mut t = sh
        .run(move || {
            open(
                &format!("packet://{si}?port=9700&group={group}&rx=spin"),
                Role::Server,
            )
        })
        .unwrap();
    ch.run(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for i in 0..100u32 {
            s.send_to(&payload(i), (group, 9700)).unwrap();
            s.send_to(b"unicast to the same port", (sh_addr(), 9700))
                .unwrap();
        }
    })
    .unwrap();
    let got = collect(&mut t, 100, Duration::from_secs(3));
    assert_eq!(got.len(), 100);
    for (i, (d, _)) in got.iter().enumerate() {
        assert_eq!(d, &payload(i as u32));
    }
    let s = t.stats().unwrap();
    assert_eq!((s.frames.delivered, s.frames.dropped()), (100, 0), "{s:?}");
}

/// The exchange host's address in every lab.
fn sh_addr() -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 2)
}

#[test]
fn ring_misuse_is_refused_not_undefined() {
    if skip_without_root("ring_misuse_is_refused_not_undefined") {
        return;
    }
    use hftnet_sys::packet::{PacketRing, RingConfig, drop_all_filter};
    let lab = Lab::two_host(None).unwrap();
    let iface = lab.trader().iface().to_string();
    lab.trader()
        .run(move || {
            let index = L2Iface::lookup(&iface).unwrap().index;
            let no_tx = RingConfig {
                tx_frames: 0,
                rx_frames: 2,
                ..RingConfig::DEFAULT
            };
            let mut r = PacketRing::open(index, no_tx, Some(&drop_all_filter()), None).unwrap();
            assert!(r.tx_slot().is_none(), "no transmit ring, no slot");
            // Releasing with nothing held does nothing (no frame skipped).
            r.rx_release();
            r.rx_release();
            assert!(r.rx_next().is_none());
            let commit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.tx_commit(10)));
            assert!(commit.is_err(), "a commit without a slot is refused");
            let cfg = RingConfig {
                tx_frames: 2,
                rx_frames: 2,
                ..RingConfig::DEFAULT
            };
            let mut r = PacketRing::open(index, cfg, Some(&drop_all_filter()), None).unwrap();
            assert!(r.tx_slot().is_some());
            r.tx_commit(60);
            let twice = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.tx_commit(60)));
            assert!(twice.is_err(), "one commit per slot");
        })
        .unwrap();
    // The transport says it has no transmit ring instead of a kernel EINVAL.
    let ci = lab.trader().iface().to_string();
    let e = lab
        .trader()
        .run(move || {
            let mut t = open(
                &format!("packet://{ci}?port=9800&tx_frames=0&peer=198.18.0.2:9800"),
                Role::Client,
            );
            t.send_burst(&[TxMsg {
                data: b"x",
                to: None,
            }])
            .unwrap_err()
        })
        .unwrap();
    assert!(e.to_string().contains("tx_frames=0"), "{e}");
}

#[test]
fn a_forged_source_mac_does_not_redirect_answers() {
    if skip_without_root("a_forged_source_mac_does_not_redirect_answers") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let si = sh.iface().to_string();
    let mut t = sh
        .run(move || open(&format!("packet://{si}?port=9900&rx=block"), Role::Server))
        .unwrap();
    let mismatch = forged_source_mac_does_not_redirect(sh, ch, &mut t, 9900, |t| {
        t.stats().unwrap().frames.mac_mismatch
    });
    assert_eq!(mismatch, 1, "the forged frame is counted");
    let caps = t.capabilities();
    assert!(
        caps.notes
            .iter()
            .any(|n| n.contains("1 with a source MAC that disagrees")),
        "{caps:?}"
    );
}

#[test]
fn a_pinned_peer_mac_needs_no_arp() {
    if skip_without_root("a_pinned_peer_mac_needs_no_arp") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let (sip, si, ci) = (sh.addr(), sh.iface().to_string(), ch.iface().to_string());
    let server_mac = sh.run(move || L2Iface::lookup(&si).unwrap().mac).unwrap();
    let kernel = sh
        .run(move || {
            let s = UdpSocket::bind((sip, 9910)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s
        })
        .unwrap();
    let (t, entry) = ch
        .run(move || {
            let mut t = open(
                &format!("packet://{ci}?port=9911&peer={sip}:9910&peer_mac={server_mac}"),
                Role::Client,
            );
            t.send_burst(&[TxMsg {
                data: b"pinned",
                to: None,
            }])
            .unwrap();
            let index = L2Iface::lookup(&ci).unwrap().index;
            let entry = hftnet_sys::netlink::RtNetlink::open()
                .unwrap()
                .neighbour(index, sip)
                .unwrap();
            (t, entry)
        })
        .unwrap();
    assert_eq!(entry, None, "the client asked nobody for the server's MAC");
    let mut b = [0u8; 64];
    let n = kernel.recv(&mut b).unwrap();
    assert_eq!(&b[..n], b"pinned");
    let caps = t.capabilities();
    assert!(
        caps.notes
            .iter()
            .any(|n| n.contains(&format!("{server_mac} for {sip} pinned by peer_mac="))),
        "{caps:?}"
    );
}

#[test]
fn ring_occupancy_follows_every_frame() {
    if skip_without_root("ring_occupancy_follows_every_frame") {
        return;
    }
    use hftnet_sys::packet::{PacketRing, RingConfig, udp_flow_filter};
    let lab = Lab::two_host(None).unwrap();
    let iface = lab.trader().iface().to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let rx = lab
        .trader()
        .spawn_thread("ring", move || {
            let index = L2Iface::lookup(&iface).unwrap().index;
            let cfg = RingConfig {
                rx_frames: 8,
                tx_frames: 4,
                ..RingConfig::DEFAULT
            };
            let filter = udp_flow_filter(Some(Ipv4Addr::new(198, 18, 0, 1)), 9810);
            let mut r = PacketRing::open(index, cfg, Some(&filter), None).unwrap();
            let o = r.occupancy();
            assert_eq!((o.rx_slots, o.tx_slots), (8, 4), "{o:?}");
            assert!(o.balanced() && o.rx_user == 0 && o.tx_pending == 0, "{o:?}");
            ready_tx.send(()).unwrap();
            sent_rx.recv().unwrap();
            let start = Instant::now();
            while r.occupancy().rx_user < 3 {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{:?}",
                    r.occupancy()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let o = r.occupancy();
            assert_eq!((o.rx_user, o.rx_stray), (3, 0), "{o:?}");
            assert!(r.rx_next().is_some());
            assert_eq!(
                r.occupancy().rx_user,
                3,
                "a held frame is still user space's"
            );
            r.rx_release();
            assert_eq!(r.occupancy().rx_user, 2);
            while r.rx_next().is_some() {
                r.rx_release();
            }
            let o = r.occupancy();
            assert_eq!((o.rx_user, o.rx_stray), (0, 0), "{o:?}");
            // Two frames queued and not kicked: with the kernel, committed.
            for _ in 0..2 {
                let slot = r.tx_slot().unwrap();
                slot[..60].fill(0xff);
                r.tx_commit(60);
            }
            let o = r.occupancy();
            assert_eq!(
                (o.tx_pending, o.tx_committed, o.tx_stray),
                (2, 2, 0),
                "{o:?}"
            );
            assert!(o.balanced());
            r.tx_kick(true).unwrap();
            let start = Instant::now();
            while r.tx_unsent() || r.occupancy().tx_committed > 0 {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "{:?}",
                    r.occupancy()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let o = r.occupancy();
            assert_eq!(
                (o.tx_pending, o.tx_committed, o.tx_stray),
                (0, 0, 0),
                "{o:?}"
            );
        })
        .unwrap();
    ready_rx.recv().unwrap();
    lab.exchange()
        .run(|| {
            let s = UdpSocket::bind("198.18.0.2:0").unwrap();
            for i in 0..3u8 {
                s.send_to(&[i; 32], "198.18.0.1:9810").unwrap();
            }
        })
        .unwrap();
    sent_tx.send(()).unwrap();
    rx.join().unwrap();
}

/// A full receive ring drops frames in the kernel; a receiver sees no gap
/// for those after the last frame it took. The capability report (what a
/// sink prints at the end) carries the kernel's count, so every datagram
/// sent is either delivered or counted there.
#[test]
fn kernel_ring_drops_are_in_the_capabilities() {
    if skip_without_root("kernel_ring_drops_are_in_the_capabilities") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let si = sh.iface().to_string();
    let server_ip = sh.addr();
    // 8 frames of 2 KiB (V2) or one 64 KiB block (V3): a burst of 200
    // overflows either.
    for q in ["frames=8", "version=3&block_size=4K&frames=2"] {
        let (si, q2) = (si.clone(), q.to_string());
        let mut t = sh
            .run(move || {
                open(
                    &format!("packet://{si}?port=9700&rx=block&{q2}"),
                    Role::Server,
                )
            })
            .unwrap();
        let sent = 200u64;
        ch.run(move || {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
            // Resolve the server's MAC first (to a port outside the flow), so
            // no datagram of the burst waits in the neighbour queue.
            s.send_to(b"arp", (server_ip, 9701)).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            for i in 0..sent {
                s.send_to(&i.to_be_bytes(), (server_ip, 9700)).unwrap();
            }
        })
        .unwrap();
        // Nothing taken yet: the kernel already counted what did not fit.
        let kernel_drops = |t: &PacketTransport| match t.capabilities().backend {
            Some(hftnet_io::Section::Packet(c)) => c.ring_drops,
            other => panic!("{q}: no packet section: {other:?}"),
        };
        let before = kernel_drops(&t);
        assert!(before > 0, "{q}: the ring overflowed, yet no drop counted");
        let got = collect(&mut t, sent as usize, Duration::from_millis(500)).len() as u64;
        assert!(got > 0, "{q}: the frames that fit were delivered");
        let after = kernel_drops(&t);
        assert_eq!(after, before, "{q}: counted once, whoever reads");
        assert_eq!(
            got + after,
            sent,
            "{q}: every datagram delivered or counted ({got} delivered, {after} dropped)"
        );
        assert_eq!(t.stats().unwrap().ring_drops, after, "{q}");
        let notes = t.capabilities().notes;
        assert!(
            notes.iter().any(|n| n.contains(&format!(
                "{after} frames dropped with the receive ring full"
            ))),
            "{q}: {notes:?}"
        );
    }
}
