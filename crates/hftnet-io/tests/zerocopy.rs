//! `udp://...?zerocopy=1` over loopback: every datagram arrives whole and in
//! order while the sender reuses a few slots, each only after its
//! `MSG_ZEROCOPY` completion; bad parameters are refused by name.

use std::time::Duration;

use hftnet_io::udp::ZeroCopyStats;
use hftnet_io::{Role, RxBurst, Transport, TxMsg, UdpConfig, UdpTransport, Uri};

fn open(uri: &str, role: Role) -> UdpTransport {
    UdpTransport::open(
        UdpConfig::from_uri(&Uri::parse(uri).unwrap()).unwrap(),
        role,
    )
    .unwrap()
}

/// Message `i`: a length from 1 to 3000 bytes and bytes that depend on `i`.
fn message(i: usize) -> Vec<u8> {
    let len = 1 + (i * 37) % 3000;
    (0..len).map(|k| (i.wrapping_mul(31) + k) as u8).collect()
}

fn exchange(client_q: &str) -> ZeroCopyStats {
    const TOTAL: usize = 1000;
    // Small enough that a burst fits the server's default receive buffer.
    const BURST: usize = 16;
    let mut server = open("udp://127.0.0.1:0", Role::Server);
    server
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let addr = server.capabilities().local.unwrap();
    let mut client = open(&format!("udp://{addr}?{client_q}"), Role::Client);
    let payloads: Vec<Vec<u8>> = (0..TOTAL).map(message).collect();
    let mut rx = RxBurst::new(64, 4096);
    let mut got = 0;
    for chunk in payloads.chunks(BURST) {
        let msgs: Vec<TxMsg<'_>> = chunk.iter().map(|p| TxMsg { data: p, to: None }).collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += client.send_burst(&msgs[sent..]).unwrap();
        }
        let want = got + chunk.len();
        while got < want {
            let n = server.recv_burst(&mut rx).unwrap();
            assert!(n > 0, "{client_q}: timed out after {got}");
            for k in 0..n {
                let (data, m) = rx.get(k);
                assert!(!m.truncated);
                assert_eq!(data, &payloads[got][..], "{client_q}: message {got}");
                got += 1;
            }
        }
        let s = client.zerocopy_stats().unwrap().unwrap();
        assert_eq!(s.reused_before_completion, 0, "{s:?}");
        assert!(s.max_in_flight <= s.slots, "{s:?}");
    }
    let s = client
        .zerocopy_flush(Duration::from_secs(3))
        .unwrap()
        .unwrap();
    assert_eq!(s.sends, TOTAL as u64, "{s:?}");
    assert_eq!(s.completions, s.sends, "{s:?}");
    assert_eq!(s.in_flight, 0, "{s:?}");
    assert_eq!(s.unmatched, 0, "{s:?}");
    assert_eq!(s.reused_before_completion, 0, "{s:?}");
    assert!(s.max_in_flight <= s.slots, "{s:?}");
    // Loopback delivers to a local socket: the kernel copies every one.
    assert_eq!(s.copied, s.completions, "{s:?}");
    let caps = client.capabilities();
    assert!(
        caps.notes
            .iter()
            .any(|n| n.contains("zerocopy=1") && n.contains("1000 completed")),
        "{caps:?}"
    );
    s
}

#[test]
fn thousand_messages_through_four_slots_single_sends() {
    let s = exchange("zerocopy=1&zc_slots=4");
    assert_eq!(s.slots, 4);
}

#[test]
fn thousand_messages_through_four_slots_batched_sends() {
    let s = exchange("zerocopy=1&zc_slots=4&batch=8");
    assert_eq!(s.slots, 4);
}

#[test]
fn default_slot_count_and_plain_sockets_have_no_stats() {
    let server = open("udp://127.0.0.1:0", Role::Server);
    let addr = server.capabilities().local.unwrap();
    let mut zc = open(&format!("udp://{addr}?zerocopy=1"), Role::Client);
    assert_eq!(zc.zerocopy_stats().unwrap().unwrap().slots, 64);
    let mut plain = open(&format!("udp://{addr}?zerocopy=0"), Role::Client);
    assert_eq!(plain.zerocopy_stats().unwrap(), None);
    assert!(plain.config().zerocopy.is_none());
}

#[test]
fn bad_zerocopy_parameters_are_named() {
    let err = |u: &str| {
        UdpConfig::from_uri(&Uri::parse(u).unwrap())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("udp://127.0.0.1:5?zerocopy=2"),
        "bad value \"2\" for parameter \"zerocopy\": expected 1 or 0"
    );
    assert_eq!(
        err("udp://127.0.0.1:5?zerocopy=1&zc_slots=0"),
        "bad value \"0\" for parameter \"zc_slots\": expected an integer from 1 to 1024"
    );
    assert_eq!(
        err("udp://127.0.0.1:5?zc_slots=8"),
        "malformed transport URI \"udp://127.0.0.1:5?zc_slots=8\": zc_slots= needs zerocopy=1"
    );
    assert!(
        err("udp://127.0.0.1:5?zerocopy=1&timestamps=tx").contains("error queue"),
        "timestamps=tx conflicts"
    );
    assert_eq!(
        UdpConfig::from_uri(&Uri::parse("mcast://239.1.1.1:5?zerocopy=1&zc_slots=8").unwrap())
            .unwrap()
            .zerocopy,
        Some(8)
    );
}
