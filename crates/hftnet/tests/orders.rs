//! `hftnet exchange --orders`: the exchange in the lab's `exchange`
//! namespace takes OUCH 5.0 over SoupBinTCP on TCP from a scripted client
//! in the `trader` namespace (the library's SoupBinTCP client and OUCH codec,
//! run in a thread of this process inside that namespace); its `--json`
//! report counts what the client did.

use std::time::Duration;

use hftnet_lab::Lab;
use hftnet_wire::ouch50::{
    Capacity, ClOrdId, CrossType, Display, EnterOrderRepr, IntermarketSweep, OutboundMessage,
    Price, RejectReason, Side, Symbol, TimeInForce,
};
use hftnet_wire::soupbintcp::RejectReason as LoginReject;
use serde_json::Value;

mod common;

use common::{run_in, skip_without_root};

#[allow(dead_code)]
#[path = "../../hftnet-apps/tests/support/ouch_client.rs"]
mod ouch_client;
use ouch_client::{Client, config};

const WAIT: Duration = Duration::from_secs(10);

fn enter(urn: u32, side: u8) -> Vec<u8> {
    enter_with(urn, side, ClOrdId::BLANK)
}

fn enter_with(urn: u32, side: u8, cl_ord_id: ClOrdId) -> Vec<u8> {
    let o = EnterOrderRepr {
        user_ref_num: urn,
        side: Side::Buy,
        quantity: 1,
        // (The side is checked before the symbol.)
        symbol: Symbol::BLANK,
        price: Price::from_raw(100),
        time_in_force: TimeInForce::Day,
        display: Display::Visible,
        capacity: Capacity::Agency,
        intermarket_sweep: IntermarketSweep::NotEligible,
        cross_type: CrossType::ContinuousMarket,
        cl_ord_id,
        options: Default::default(),
    };
    let mut buf = [0u8; 64];
    let n = o.encode(&mut buf).unwrap();
    buf[5] = side;
    buf[..n].to_vec()
}

fn reject_of(c: &Client, urn: u32) -> Option<RejectReason> {
    c.seq.iter().find_map(|(_, m)| match m {
        OutboundMessage::Rejected(r) if r.user_ref_num == urn => Some(r.reason),
        _ => None,
    })
}

#[test]
fn exchange_takes_orders_from_another_namespace() {
    if skip_without_root("exchange_takes_orders_from_another_namespace") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let addr = "198.18.0.2:30110".parse().unwrap();
    // The client, in the trader's namespace, while the exchange runs.
    let client = lab
        .trader()
        .spawn_thread("ouch-client", move || {
            // The feed, to name a recent sequence number in an order.
            let feed = std::net::UdpSocket::bind("198.18.0.1:30101").unwrap();
            feed.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            // A bad password: Login Rejected 'A', and the socket closes.
            let mut bad = Client::connect_within(addr, config("alice", "nope"), WAIT);
            assert!(bad.until(WAIT, |c| c.closed), "not closed");
            assert_eq!(bad.rejected, Some(LoginReject::NotAuthorized));
            let mut cfg = config("alice", "secret");
            cfg.heartbeat_interval_ns = 100_000_000;
            let mut c = Client::connect(addr, cfg);
            assert!(c.until(WAIT, |c| c.logged_in.is_some()), "no login");
            // An order with a bad side until the market is open: then the
            // reject is the side's (0x09), not Destination Closed (0x02)
            // or Halted (0x07).
            let mut urn = 1;
            loop {
                c.send(&enter(urn, b'x'));
                assert!(
                    c.until(WAIT, |c| reject_of(c, urn).is_some()),
                    "no answer to {urn}"
                );
                match reject_of(&c, urn).unwrap() {
                    RejectReason::DestinationClosed | RejectReason::Halted if urn < 200 => {
                        std::thread::sleep(Duration::from_millis(20));
                        urn += 1;
                    }
                    r => {
                        assert_eq!(r, RejectReason::InvalidSide);
                        break;
                    }
                }
            }
            // An order naming the last MoldUDP64 sequence number read in its
            // ClOrdID: external tick-to-trade at the exchange.
            let mut last = None;
            let mut p = [0u8; 2048];
            while let Ok(n) = feed.recv(&mut p) {
                if n >= 20 {
                    let seq = u64::from_be_bytes(p[10..18].try_into().unwrap());
                    let count = u64::from(u16::from_be_bytes([p[18], p[19]]));
                    if count > 0 && count < 0xffff {
                        last = Some(seq + count - 1);
                        break;
                    }
                }
            }
            let seq = last.expect("no market data");
            urn += 1;
            let cl = hftnet_trade::orders::ClOrdId::from_trigger(hftnet_trade::orders::Trigger {
                seq,
                rx_ns: 0,
            });
            c.send(&enter_with(urn, b'x', ClOrdId(cl.0)));
            assert!(
                c.until(WAIT, |c| reject_of(c, urn).is_some()),
                "no answer to {urn}"
            );
            // Stay logged in to the end of the session.
            assert!(
                c.until(Duration::from_secs(30), |c| c.end_of_session),
                "no End of Session"
            );
            urn
        })
        .unwrap();
    let hgrm = std::env::temp_dir().join(format!("hftnet-orders-{}.hgrm", std::process::id()));
    let hgrm_arg = hgrm.display().to_string();
    let out = run_in(
        lab.exchange(),
        &[
            "exchange",
            "--feed-a",
            "udp://198.18.0.1:30101",
            "--orders",
            "tcp://198.18.0.2:30110",
            "--login",
            "alice:secret",
            "--duration",
            "3s",
            "--rate",
            "2000",
            "--linger",
            "200ms",
            "--hgrm",
            &hgrm_arg,
            "--json",
        ],
        Duration::from_secs(60),
    );
    let urn = client.join().expect("the client's checks");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let oe = &j["order_entry"];
    assert_eq!(j["orders"], "tcp://198.18.0.2:30110", "{j}");
    assert_eq!(oe["listen"], "198.18.0.2:30110", "{oe}");
    assert_eq!(oe["connections"], 2, "{oe}");
    assert_eq!(
        (oe["logins_ok"].as_u64(), oe["logins_rejected"].as_u64()),
        (Some(1), Some(1)),
        "{oe}"
    );
    let t = &oe["totals"];
    assert_eq!(t["received"].as_u64(), Some(u64::from(urn)), "{oe}");
    assert_eq!(t["rejected"].as_u64(), Some(u64::from(urn)), "{oe}");
    assert_eq!(t["accepted"], 0, "{oe}");
    assert_eq!(oe["sessions"][0]["username"], "alice", "{oe}");
    assert_eq!(
        oe["bad_fields"]["side"].as_u64(),
        Some(u64::from(urn)),
        "{oe}"
    );
    assert_eq!(oe["end_of_session"], 1, "{oe}");
    assert!(oe["heartbeats_out"].as_u64().unwrap() > 0, "{oe}");
    // One order named a sequence number the exchange had sent.
    assert_eq!(oe["tick_to_trade_samples"], 1, "{oe}");
    let t2t = &oe["tick_to_trade_external_ns"];
    for k in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(t2t[k].as_u64().is_some_and(|v| v > 0), "{k}: {oe}");
    }
    let h = std::fs::read_to_string(&hgrm).unwrap();
    let _ = std::fs::remove_file(&hgrm);
    assert!(h.contains("Percentile") && h.contains("#[Max"), "{h}");
}
