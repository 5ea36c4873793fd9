//! `hftnet_io::l2` and the rtnetlink lookups under it, for real, in labs of
//! network namespaces (each test builds its own lab, removed on drop, so the
//! tests run in parallel and leave nothing behind). Without root they print
//! `SKIPPED` and pass, except the read-only lookups, which run anywhere.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hftnet_io::l2::{self, L2Error, L2Iface};
use hftnet_lab::{Host, Lab};
use hftnet_sys::netlink::{self, LinkInfo, Neighbour, RtNetlink};
use hftnet_wire::ethernet::Address;

use hftnet_lab::skip_without_root;

/// The link of `host`'s lab interface, read inside its namespace.
fn link_of(host: &Host) -> LinkInfo {
    let iface = host.iface().to_owned();
    host.run(move || {
        let mut nl = RtNetlink::open().unwrap();
        let index = nl.link_index(&iface).unwrap();
        nl.link_info(index).unwrap()
    })
    .unwrap()
}

/// `ip`'s ARP entry on `host`'s lab interface, read inside its namespace.
fn neighbour_of(host: &Host, ip: Ipv4Addr) -> Option<Neighbour> {
    let index = link_of(host).index;
    host.run(move || RtNetlink::open().unwrap().neighbour(index, ip).unwrap())
        .unwrap()
}

/// Address `host_part` of the lab subnet, e.g. 198.18.0.99.
fn in_subnet(host: &Host, host_part: u32) -> Ipv4Addr {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(host.prefix_len()))
        .unwrap_or(0);
    Ipv4Addr::from((u32::from(host.addr()) & mask) | host_part)
}

#[test]
fn lookup_reads_the_lab_interface() {
    if skip_without_root("lookup_reads_the_lab_interface") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let t = lab.trader();
    let link = link_of(t);
    let name = t.iface().to_owned();
    let iface = t.run(move || L2Iface::lookup(&name)).unwrap().unwrap();
    assert_eq!(iface.name, t.iface());
    assert_eq!(iface.index, link.index);
    assert_eq!(Some(*iface.mac.as_bytes()), link.mac);
    assert_eq!(iface.ipv4, Some((t.addr(), t.prefix_len())));
    assert_eq!(iface.mtu, t.mtu().unwrap_or(1500));
    assert!(iface.up && link.up && link.running, "{iface} {link:?}");
    assert_eq!(link.arphrd, netlink::ARPHRD_ETHER);
    // The dump of addresses is filtered to the interface: lo has only 127.0.0.1.
    let lo = t
        .run(|| {
            let mut nl = RtNetlink::open().unwrap();
            let lo = nl.link_index("lo").unwrap();
            nl.ipv4_addresses(lo).unwrap()
        })
        .unwrap();
    assert_eq!(lo, [(Ipv4Addr::LOCALHOST, 8)]);
}

#[test]
fn resolve_finds_the_peer_mac_and_fills_the_table() {
    if skip_without_root("resolve_finds_the_peer_mac_and_fills_the_table") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (t, x) = (lab.trader(), lab.exchange());
    let peer_mac = Address(link_of(x).mac.expect("the exchange's veth has a MAC"));

    assert_eq!(
        neighbour_of(t, t.peer()),
        None,
        "a fresh lab has no ARP entry"
    );
    let name = t.iface().to_owned();
    let peer = t.peer();
    let (hop, took) = t
        .run(move || {
            let iface = L2Iface::lookup(&name).unwrap();
            let start = Instant::now();
            let hop = l2::resolve(&iface, peer, Duration::from_secs(2)).unwrap();
            (hop, start.elapsed())
        })
        .unwrap();
    println!("resolved {} to {} in {took:?}", hop.dst_ip, hop.dst_mac);
    assert_eq!(hop.dst_ip, t.peer());
    assert_eq!(hop.via, t.peer());
    assert_eq!(hop.src_ip, t.addr());
    assert_eq!(hop.dst_mac, peer_mac);

    let entry = neighbour_of(t, t.peer()).expect("the entry is in the table now");
    assert!(entry.is_usable(), "{entry:?}");
    assert_eq!(entry.mac, Some(peer_mac.0));
    assert_eq!(entry.state, netlink::NUD_REACHABLE, "{entry:?}");

    // A second resolution answers from the table.
    let name = t.iface().to_owned();
    let again = t
        .run(move || {
            let iface = L2Iface::lookup(&name).unwrap();
            l2::resolve(&iface, peer, Duration::ZERO)
        })
        .unwrap()
        .unwrap();
    assert_eq!(again, hop);
}

/// What `RTM_NEWNEIGH` with `NTF_USE` does on this kernel: it must send an
/// ARP request by itself (on 6.18 it does, at once: `neigh_event_send` with
/// an immediate probe). The proof is on both ends: the trader's entry
/// becomes REACHABLE with the exchange's MAC, and the exchange learned the
/// trader from the request (no other packet was sent).
#[test]
fn ntf_use_sends_an_arp_request() {
    if skip_without_root("ntf_use_sends_an_arp_request") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (t, x) = (lab.trader(), lab.exchange());
    let (t_link, x_link) = (link_of(t), link_of(x));
    assert_eq!(neighbour_of(x, t.addr()), None);
    let (index, peer) = (t_link.index, t.peer());
    let (states, entry) = t
        .run(move || {
            let mut nl = RtNetlink::open().unwrap();
            assert_eq!(nl.neighbour(index, peer).unwrap(), None);
            nl.neighbour_resolve(index, peer).unwrap();
            let mut states = vec![nl.neighbour(index, peer).unwrap().map(|n| n.state)];
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let n = nl.neighbour(index, peer).unwrap();
                if n.is_some_and(|n| n.is_usable()) || Instant::now() > deadline {
                    states.push(n.map(|n| n.state));
                    return (states, n);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    println!("NTF_USE: states after the request, then at the end: {states:x?}");
    // The request creates the entry and probes at once; over veth the answer
    // may even be in before the first read.
    assert!(
        matches!(
            states[0],
            Some(netlink::NUD_INCOMPLETE | netlink::NUD_REACHABLE)
        ),
        "{states:x?}"
    );
    let entry = entry.expect("entry");
    assert_eq!(entry.state, netlink::NUD_REACHABLE, "{entry:?}");
    assert_eq!(entry.mac, x_link.mac);
    let learned = neighbour_of(x, t.addr()).expect("the exchange saw an ARP request");
    assert_eq!(learned.mac, t_link.mac);
}

/// A static entry (`ip neigh add IP lladdr MAC nud permanent`, as set for
/// exchange gateways) is used as it is, sends no ARP request and stays
/// static: `neighbour_resolve` must not let `NTF_USE` clear `NUD_PERMANENT`.
#[test]
fn static_entry_is_used_and_kept() {
    if skip_without_root("static_entry_is_used_and_kept") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (t, x) = (lab.trader(), lab.exchange());
    let fake = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    let (name, peer) = (t.iface().to_owned(), t.peer());
    let (hop, entry) = t
        .run(move || {
            let iface = L2Iface::lookup(&name).unwrap();
            let mut nl = RtNetlink::open().unwrap();
            let mut m = netlink::MessageBuilder::new(
                netlink::RTM_NEWNEIGH,
                netlink::NLM_F_REQUEST
                    | netlink::NLM_F_ACK
                    | netlink::NLM_F_CREATE
                    | netlink::NLM_F_EXCL,
            );
            m.push_header(
                &netlink::NdMsg {
                    family: libc::AF_INET as u8,
                    index: iface.index as i32,
                    state: netlink::NUD_PERMANENT,
                    ..netlink::NdMsg::default()
                }
                .to_bytes(),
            );
            m.attr(netlink::NDA_DST, &peer.octets());
            m.attr(netlink::NDA_LLADDR, &fake);
            nl.request("rtnetlink RTM_NEWNEIGH(permanent)", m).unwrap();
            nl.neighbour_resolve(iface.index, peer).unwrap();
            let hop = l2::resolve(&iface, peer, Duration::ZERO).unwrap();
            (hop, nl.neighbour(iface.index, peer).unwrap())
        })
        .unwrap();
    assert_eq!(hop.dst_mac, Address(fake));
    assert_eq!(
        entry,
        Some(Neighbour {
            mac: Some(fake),
            state: netlink::NUD_PERMANENT
        })
    );
    assert_eq!(neighbour_of(x, t.addr()), None, "no ARP request was sent");
}

#[test]
fn unused_address_is_unresolved_within_the_timeout() {
    if skip_without_root("unused_address_is_unresolved_within_the_timeout") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let t = lab.trader();
    let nobody = in_subnet(t, 99);
    let timeout = Duration::from_millis(300);
    let name = t.iface().to_owned();
    let (result, took) = t
        .run(move || {
            let iface = L2Iface::lookup(&name).unwrap();
            let start = Instant::now();
            let r = l2::resolve(&iface, nobody, timeout);
            (r, start.elapsed())
        })
        .unwrap();
    let err = result.unwrap_err();
    println!("{err} (returned after {took:?})");
    let L2Error::Unresolved {
        ip,
        dst,
        ref iface,
        waited,
        failed,
    } = err
    else {
        panic!("expected Unresolved, got {err:?}");
    };
    assert_eq!((ip, dst, iface.as_str()), (nobody, nobody, t.iface()));
    assert!(!failed, "the kernel probes for ~3 s before FAILED");
    assert!(waited >= timeout, "{waited:?}");
    assert!(took < timeout + Duration::from_millis(500), "{took:?}");
    let msg = err.to_string();
    for needle in [
        "198.18.0.99",
        "on veth0",
        "is the peer up and on this link?",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    assert!(
        msg.contains(&format!("after {waited:.0?}")),
        "{msg} {waited:?}"
    );
    let entry = neighbour_of(t, nobody).expect("resolution was started");
    assert_eq!(entry.state, netlink::NUD_INCOMPLETE, "{entry:?}");
}

/// With one probe 20 ms apart the kernel marks the entry FAILED long before
/// the timeout: resolve reports that at once. The sysctls are written inside
/// the lab namespace, on its veth only.
#[test]
fn failed_entry_ends_the_wait_early() {
    if skip_without_root("failed_entry_ends_the_wait_early") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let t = lab.trader();
    let nobody = in_subnet(t, 98);
    let (name, addr) = (t.iface().to_owned(), t.addr());
    let (result, took) = t
        .run(move || {
            let iface = L2Iface::lookup(&name).unwrap();
            // Only in the lab: the interface carries the lab's address.
            assert_eq!(iface.ipv4.map(|a| a.0), Some(addr));
            let dir = format!("/proc/sys/net/ipv4/neigh/{name}");
            for (knob, value) in [
                ("mcast_solicit", "1"),
                ("ucast_solicit", "0"),
                ("app_solicit", "0"),
                ("retrans_time_ms", "20"),
            ] {
                std::fs::write(format!("{dir}/{knob}"), value).unwrap();
            }
            let start = Instant::now();
            let r = l2::resolve(&iface, nobody, Duration::from_secs(5));
            (r, start.elapsed())
        })
        .unwrap();
    let err = result.unwrap_err();
    println!("{err} (returned after {took:?})");
    assert!(
        matches!(err, L2Error::Unresolved { failed: true, ip, .. } if ip == nobody),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(err.to_string().contains("entry FAILED"), "{err}");
}

#[test]
fn multicast_and_broadcast_need_no_table() {
    if skip_without_root("multicast_and_broadcast_need_no_table") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let t = lab.trader();
    let name = t.iface().to_owned();
    let brd = in_subnet(t, 0xff);
    let group = Ipv4Addr::new(239, 1, 2, 3);
    let (mcast, bcast, all) = t
        .run(move || {
            let iface = L2Iface::lookup(&name).unwrap();
            let r = |dst| l2::resolve(&iface, dst, Duration::ZERO).unwrap();
            (r(group), r(brd), r(Ipv4Addr::BROADCAST))
        })
        .unwrap();
    assert_eq!(mcast.dst_mac, Address([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]));
    assert_eq!((mcast.via, mcast.src_ip), (group, t.addr()));
    assert_eq!(bcast.dst_mac, Address::BROADCAST);
    assert_eq!(all.dst_mac, Address::BROADCAST);
    assert_eq!(all.src_ip, t.addr());
    assert_eq!(neighbour_of(t, group), None, "no neighbour entry was made");
}

#[test]
fn routes_elsewhere_are_refused() {
    if skip_without_root("routes_elsewhere_are_refused") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let t = lab.trader();
    let (name, own) = (t.iface().to_owned(), t.addr());
    let (to_lo, to_self, to_nowhere) = t
        .run(move || {
            let iface = L2Iface::lookup(&name).unwrap();
            let r = |dst| l2::resolve(&iface, dst, Duration::from_millis(100)).unwrap_err();
            (
                r(Ipv4Addr::LOCALHOST),
                r(own),
                r(Ipv4Addr::new(10, 1, 2, 3)),
            )
        })
        .unwrap();
    for e in [&to_lo, &to_self] {
        assert!(
            matches!(e, L2Error::WrongInterface { route_iface, iface, .. }
                if route_iface == "lo" && iface == "veth0"),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("routed through lo, not veth0"),
            "{e}"
        );
    }
    // The lab namespaces have no default route.
    assert!(
        matches!(&to_nowhere, L2Error::NoRoute { cause, .. } if cause.errno() == Some(libc::ENETUNREACH)),
        "{to_nowhere:?}"
    );
    assert!(to_nowhere.to_string().starts_with("no route to 10.1.2.3"));
}

#[test]
fn down_interface_is_refused() {
    if skip_without_root("down_interface_is_refused") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let t = lab.trader();
    let (name, peer) = (t.iface().to_owned(), t.peer());
    let (before, after, err) = t
        .run(move || {
            let before = L2Iface::lookup(&name).unwrap();
            RtNetlink::open()
                .unwrap()
                .set_link_down(before.index)
                .unwrap();
            let after = L2Iface::lookup(&name).unwrap();
            // The snapshot taken while up is re-checked, too.
            let err = l2::resolve(&before, peer, Duration::from_millis(100)).unwrap_err();
            (before, after, err)
        })
        .unwrap();
    assert!(before.up && !after.up);
    assert!(matches!(err, L2Error::InterfaceDown { .. }), "{err:?}");
    assert!(err.to_string().contains("is down"), "{err}");
}

/// Read-only lookups: need no privilege, change nothing, and run in the
/// test's own namespace.
#[test]
fn lookup_errors_name_the_interface() {
    let e = L2Iface::lookup("hft-nosuch0").unwrap_err();
    assert!(matches!(e, L2Error::NoSuchInterface { .. }), "{e:?}");
    assert!(e.to_string().contains("\"hft-nosuch0\""), "{e}");
    assert!(e.to_string().contains("`ip link`"), "{e}");
    for bad in ["", "a-name-much-too-long-for-linux", "a/b"] {
        let e = L2Iface::lookup(bad).unwrap_err();
        assert!(
            matches!(e, L2Error::NoSuchInterface { .. }),
            "{bad:?}: {e:?}"
        );
    }
    let e = L2Iface::lookup("lo").unwrap_err();
    assert!(
        matches!(e, L2Error::NotEthernet { arphrd, .. } if arphrd == netlink::ARPHRD_LOOPBACK),
        "{e:?}"
    );
    assert!(e.to_string().contains("loopback"), "{e}");
}
