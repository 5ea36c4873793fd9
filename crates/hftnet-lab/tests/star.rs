//! The star lab in real namespaces (needs root; skipped with the reason
//! otherwise, a failure in CI): one multicast datagram from the sender
//! reaches every receiver through the bridge, and dropping the star removes
//! every namespace. Every receive is bounded by a timeout.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use hftnet_lab::{Star, netns_name};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 9, 9, 9);
const PORT: u16 = 9310;

fn joined(ip: Ipv4Addr) -> UdpSocket {
    let s = UdpSocket::bind(SocketAddrV4::new(GROUP, PORT)).unwrap();
    s.join_multicast_v4(&GROUP, &ip).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

#[test]
fn one_send_reaches_every_receiver_and_drop_removes_the_star() {
    if hftnet_lab::skip_without_root("one_send_reaches_every_receiver") {
        return;
    }
    let star = Star::build(None, 3).unwrap();
    let names: Vec<String> = star.hosts().map(|h| h.netns().to_owned()).collect();
    assert_eq!(names.len(), 4);
    assert_eq!(names[0], netns_name(star.name(), "sender"));
    assert_eq!(names[3], netns_name(star.name(), "rx2"));
    for n in &names {
        assert!(
            std::path::Path::new("/run/netns").join(n).exists(),
            "{n} missing"
        );
    }
    // Built means forwarding: every port of the bridge passes frames now.
    let states = star
        .sender()
        .run(|| hftnet_sys::netlink::RtNetlink::open()?.bridge_port_states())
        .unwrap()
        .unwrap();
    assert_eq!(states.len(), 3, "{states:?}");
    assert!(
        states
            .iter()
            .all(|&(_, st)| st == hftnet_sys::netlink::BR_STATE_FORWARDING),
        "{states:?}"
    );
    let listed = hftnet_lab::list()
        .into_iter()
        .find(|l| l.name == star.name())
        .expect("the star is listed like any lab (so `lab down --all` finds it)");
    assert_eq!(listed.roles, ["rx0", "rx1", "rx2", "sender"]);
    let sockets: Vec<UdpSocket> = star
        .receivers()
        .iter()
        .map(|r| r.run(|| joined(r.addr())).unwrap())
        .collect();
    // A socket in the sender's namespace that did not join sees nothing of it
    // (multicast loop is off), and each receiver sees exactly one copy.
    let tx = star
        .sender()
        .run(|| {
            let s = UdpSocket::bind("198.18.0.1:0").unwrap();
            s.set_multicast_loop_v4(false).unwrap();
            s
        })
        .unwrap();
    // The receivers' IGMP joins and the ports' carrier need no wait: the
    // bridge floods (no snooping) and is forwarding once its ports are up.
    tx.send_to(b"fanout", SocketAddrV4::new(GROUP, PORT))
        .unwrap();
    for (i, s) in sockets.iter().enumerate() {
        let mut buf = [0u8; 64];
        let (n, from) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("rx{i}: {e}"));
        assert_eq!(&buf[..n], b"fanout", "rx{i}");
        assert_eq!(from.ip(), std::net::IpAddr::V4(hftnet_lab::SENDER_ADDR));
        s.set_nonblocking(true).unwrap();
        assert!(s.recv_from(&mut buf).is_err(), "rx{i} got a second copy");
    }
    drop((sockets, tx));
    let text = star.to_string();
    assert!(text.contains("3 receivers on bridge br0"), "{text}");
    drop(star);
    for n in &names {
        assert!(
            !std::path::Path::new("/run/netns").join(n).exists(),
            "{n} left behind"
        );
    }
}
