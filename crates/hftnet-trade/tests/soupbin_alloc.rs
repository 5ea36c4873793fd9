//! A SoupBinTCP server and client allocate when they are built (the stream
//! store, each connection's receive buffer) and never again: publishing,
//! transmitting, receiving in arbitrary chunks, unsequenced data both ways,
//! heartbeats and timeouts make no allocation at all (a counting global
//! allocator, per thread, shared with the other allocation tests).

use hftnet_trade::soupbin::{
    ClientConfig, ClientConnection, ClientEvent, Server, ServerConfig, ServerEvent, StoreConfig,
};
use hftnet_wire::soupbintcp::{Password, Session, Username};

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;

#[test]
fn the_steady_state_never_allocates() {
    let (u, p) = (
        Username::new("alice").unwrap(),
        Password::new("secret").unwrap(),
    );
    let mut cfg = ServerConfig::new(u, p);
    cfg.store = StoreConfig {
        max_bytes: 1 << 20,
        max_messages: 1 << 16,
    };
    let mut server = Server::new(cfg).unwrap();
    let day = server.open(Session::new("DAY").unwrap(), None).unwrap();
    let mut conn = server.connect(0);
    let mut client = ClientConnection::new(ClientConfig::new(u, p), 0).unwrap();
    let mut to_server = vec![0u8; 70_000];
    let mut to_client = vec![0u8; 70_000];
    let msg = [7u8; 48];
    let (mut delivered, mut orders) = (0u64, 0u64);

    let before = allocs();
    let mut now = 0u64;
    for i in 0..20_000u64 {
        // Every 50th turn, 1.5 s of silence: heartbeats both ways.
        let idle = i % 50 == 49;
        now += if idle { 1_500_000_000 } else { 1_000_000 };
        if !idle && i % 3 != 0 {
            server.publish(day, &msg[..(i as usize % 48) + 1]).unwrap();
        }
        let n = conn.poll_transmit(now, &server, &mut to_client);
        for part in to_client[..n].chunks(1 + (i as usize % 13)) {
            client.handle_input(now, part, |e| {
                if let ClientEvent::Sequenced { .. } = e {
                    delivered += 1;
                }
            });
        }
        let mut n = client.poll_transmit(now, &mut to_server);
        if !idle && client.is_logged_in() && i % 2 == 0 {
            n += client
                .send_unsequenced(now, &msg[..20], &mut to_server[n..])
                .unwrap();
        }
        for part in to_server[..n].chunks(1 + (i as usize % 5)) {
            conn.handle_input(now, part, &server, |e| {
                if let ServerEvent::Unsequenced(_) = e {
                    orders += 1;
                }
            });
        }
        assert_eq!(conn.handle_timeout(now), None);
        assert_eq!(client.handle_timeout(now), None);
    }
    assert_eq!(allocs() - before, 0, "no allocation after construction");
    let s = server.streams().get(day).unwrap();
    assert_eq!(delivered, s.len());
    let (sc, cc) = (conn.counters(), client.counters());
    assert!(
        sc.traffic.heartbeats_out >= 300 && cc.traffic.heartbeats_out >= 300,
        "{sc:?} {cc:?}"
    );
    assert_eq!(sc.traffic.heartbeats_out, cc.traffic.heartbeats_in);
    assert!(orders > 9_000, "{orders}");
    assert_eq!(orders, cc.traffic.unsequenced_out);
}
