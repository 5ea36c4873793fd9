//! Multicast through the library in a lab: join by interface, receive, leave,
//! and no longer receive; a source-specific join ignores other sources.

use std::net::UdpSocket;
use std::time::Duration;

use hftnet_io::{Endpoint, Role, RxBurst, Transport, UdpConfig, UdpTransport, Uri};
use hftnet_lab::Lab;

mod common;

use common::skip_without_root;

/// Sends `payload` from the trader to the group, `count` times, from a plain socket.
fn send_from_trader(lab: &Lab, group: &str, payload: &'static [u8], count: usize) {
    let group = group.to_string();
    lab.trader()
        .run(move || {
            let mut t = Endpoint::parse(&format!("mcast://{group}?iface=veth0"))
                .unwrap()
                .open(Role::Client)
                .unwrap();
            for _ in 0..count {
                t.send(payload, None).unwrap();
            }
        })
        .unwrap();
}

#[test]
fn join_receive_leave() {
    if skip_without_root("join_receive_leave") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let group = "239.7.7.7:9400";
    // Open the receiver inside the exchange namespace; the socket stays there.
    let mut rx = lab
        .exchange()
        .run(|| {
            let cfg = UdpConfig::from_uri(
                &Uri::parse(&format!("mcast://{group}?iface=veth0&rcvbuf=1M")).unwrap(),
            )
            .unwrap();
            UdpTransport::open(cfg, Role::Server).unwrap()
        })
        .unwrap();
    rx.set_recv_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut burst = RxBurst::new(8, 2048);
    send_from_trader(&lab, group, b"joined", 3);
    let mut got = 0;
    for _ in 0..20 {
        if got == 3 {
            break;
        }
        let n = rx.recv_burst(&mut burst).unwrap();
        for i in 0..n {
            assert_eq!(burst.get(i).0, b"joined");
            assert_eq!(burst.get(i).1.peer.unwrap().ip().to_string(), "198.18.0.1");
        }
        got += n;
    }
    assert_eq!(got, 3);
    assert!(rx.capabilities().rcvbuf().unwrap() >= 1 << 20);

    rx.leave().unwrap();
    send_from_trader(&lab, group, b"after leave", 3);
    assert_eq!(
        rx.recv_burst(&mut burst).unwrap(),
        0,
        "nothing arrives after leaving the group"
    );
}

#[test]
fn source_specific_join_filters_other_sources() {
    if skip_without_root("source_specific_join_filters_other_sources") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let group = "239.7.7.8:9401";
    // Accept only 198.18.0.99 as a source: the trader (198.18.0.1) is filtered out.
    let mut rx = lab
        .exchange()
        .run(|| {
            let cfg = UdpConfig::from_uri(
                &Uri::parse(&format!("mcast://{group}?iface=veth0&source=198.18.0.99")).unwrap(),
            )
            .unwrap();
            UdpTransport::open(cfg, Role::Server).unwrap()
        })
        .unwrap();
    rx.set_recv_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    send_from_trader(&lab, group, b"wrong source", 3);
    let mut burst = RxBurst::new(8, 2048);
    assert_eq!(rx.recv_burst(&mut burst).unwrap(), 0);
    // A plain unicast datagram to the port is not delivered to a socket bound to the group either.
    lab.trader()
        .run(|| {
            let s = UdpSocket::bind("198.18.0.1:0").unwrap();
            s.send_to(b"unicast", "198.18.0.2:9401").unwrap();
        })
        .unwrap();
    assert_eq!(rx.recv_burst(&mut burst).unwrap(), 0);
}
