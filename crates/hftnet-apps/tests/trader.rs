//! The trader loop end to end, in process over loopback: the exchange app
//! publishes a generated day on feeds A and B (UDP) and answers
//! re-requests; the trader runs its feed handler, strategy and risk, and
//! sends OUCH over SoupBinTCP to a scripted order server
//! (`support/order_server.rs`) on a test thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use hftnet_apps::trader::{TraderReport, TraderStop};
use hftnet_trade::risk::RiskConfig;

#[allow(dead_code)]
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/order_server.rs"]
mod order_server;
#[path = "support/trader_run.rs"]
mod trader_run;

use order_server::{Log, OrderServer, Script};
use trader_run::{SYMBOLS, config, loose_risk, maker, run, state_path, taker};

fn balanced(r: &TraderReport) {
    let o = &r.orders;
    assert_eq!(o.sent, o.accepted + o.rejected + o.pending, "{o:?}");
}

fn refusals(r: &TraderReport, name: &str) -> u64 {
    r.risk_refusals
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap()
}

/// Orders reach the exchange with the trigger's sequence number in the
/// ClOrdID; fills update the position and P&L exactly.
#[test]
fn taker_orders_carry_their_trigger_and_fills_make_the_position() {
    let srv = OrderServer::start(Script {
        fill: true,
        ..Script::default()
    });
    let (_dir, state) = state_path("taker");
    let cfg = config(&srv.uri(), &state, loose_risk());
    let kill = AtomicBool::new(false);
    let (run, sent) = run(20_000, &cfg, taker(&cfg), &kill);
    let log = srv.stop();
    let r = &run.report;
    assert_eq!(r.stopped, TraderStop::Feed);
    assert_eq!(r.feed.delivered, sent);
    assert!(!log.enters.is_empty(), "the taker traded");
    assert_eq!(r.orders.enters, log.enters.len() as u64);
    // Every order names the market-data message that triggered it.
    for (_, _, _, _, _, seq) in &log.enters {
        let seq = seq.expect("a sequence number in every ClOrdID");
        assert!((1..=sent).contains(&seq), "{seq} of {sent}");
    }
    // Each fill is in the position, per symbol, with its cash.
    for (i, sym) in SYMBOLS.iter().enumerate() {
        let (mut shares, mut cash) = (0i64, 0i128);
        for (s, side, q, p) in &log.fills {
            if s == sym {
                let q = i64::from(*q);
                let signed = if *side == b'B' { q } else { -q };
                shares += signed;
                cash -= i128::from(signed) * i128::from(*p as i64);
            }
        }
        let p = &r.positions[i];
        assert_eq!(p.symbol, *sym);
        assert_eq!(p.shares, shares, "{sym}");
        if shares == 0 {
            assert_eq!(p.realized, cash, "{sym}: flat, so realized = cash");
        }
    }
    assert_eq!(r.orders.executions, log.fills.len() as u64);
    assert_eq!(r.orders.pending, 0);
    balanced(r);
    // Internal tick-to-trade: one sample per order sent on a trigger.
    assert_eq!(r.tick_to_trade_samples, r.orders.enters);
    let t = r.tick_to_trade_internal_ns.expect("samples");
    eprintln!(
        "internal tick-to-trade over {} orders, ns: p50 {} p90 {} p99 {} max {}",
        r.tick_to_trade_samples, t.p50, t.p90, t.p99, t.max
    );
    assert!(t.p50 > 0 && t.p50 <= t.p99 && t.p99 <= t.max);
    // The same orders to the call of their send: the application's part,
    // never more than the whole (each sample is taken before the other).
    let c = r.tick_to_send_call_ns.expect("samples to the send call");
    assert!(c.min <= t.min && c.max <= t.max, "{c:?} vs {t:?}");
    assert!(c.p50 <= t.p50, "{c:?} vs {t:?}");
    // UserRefNums strictly increasing, none ignored; the mark persisted.
    assert!(log.ignored.is_empty());
    assert!(log.enters.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(r.user_ref_num_mark >= r.user_ref_num_last);
    assert_eq!(
        hftnet_apps::trader::read_state(&state).unwrap(),
        r.user_ref_num_mark
    );
    // The report serialises.
    let v = serde_json::to_value(r).unwrap();
    assert!(v["tick_to_trade_internal_ns"]["p50"].is_u64());
}

/// With `timestamps=tx` on the orders URI, internal tick-to-trade ends at
/// the kernel's software transmit stamp of each order: every order sent
/// on a trigger gets one (none missing), it lies after the call of the
/// send, and the report says where the figure ends; the send's return is
/// reported beside it. A short heartbeat (keeping the send path warm)
/// sends between orders: its stamps are read too, so none is lost to a
/// full error queue. (Which stamp settles which order is unit-tested in
/// the apps' trader module: `stamps_settle_the_orders_they_cover_across_the_wrap`.)
#[test]
fn internal_tick_to_trade_ends_at_the_orders_transmit_stamp() {
    let srv = OrderServer::start(Script {
        fill: true,
        ..Script::default()
    });
    let (_dir, state) = state_path("stamps");
    let mut cfg = config(
        &format!("{}?timestamps=tx", srv.uri()),
        &state,
        loose_risk(),
    );
    cfg.heartbeat = Duration::from_micros(200);
    let kill = AtomicBool::new(false);
    let (run, _) = run(20_000, &cfg, taker(&cfg), &kill);
    let log = srv.stop();
    let r = &run.report;
    assert_eq!(r.stopped, TraderStop::Feed, "{r:?}");
    assert!(!log.enters.is_empty(), "the taker traded");
    assert!(
        r.tick_to_trade_internal_end.contains("SCM_TSTAMP_SND"),
        "{}",
        r.tick_to_trade_internal_end
    );
    let st = r.tx_stamps;
    assert_eq!(
        (st.missing, st.overflow, st.read_errors, st.negative),
        (0, 0, 0, 0),
        "{st:?}"
    );
    // Every send is stamped (login and heartbeats too), but sends TCP
    // put into one segment share its one stamp: the heartbeats' stamps
    // were read, never more than one per send.
    assert!(r.session.heartbeats_out > 0, "{:?}", r.session);
    let sends = r.orders.enters + r.session.heartbeats_out;
    assert!(
        st.read > r.orders.enters && st.read <= sends + 4,
        "{st:?} for {} orders, {} heartbeats",
        r.orders.enters,
        r.session.heartbeats_out
    );
    assert_eq!(r.tick_to_trade_samples, r.orders.enters);
    assert_eq!(
        run.tick_to_trade.len(),
        r.orders.enters,
        "one sample per order"
    );
    assert_eq!(run.tick_to_send_return.len(), r.orders.enters);
    let t = r.tick_to_trade_internal_ns.expect("samples");
    let c = r.tick_to_send_call_ns.expect("to the call");
    let back = r.tick_to_send_return_ns.expect("to the return");
    // The stamp is taken inside the send call: after its call, and (for
    // an order stamped in its own segment) before its return.
    assert!(c.min <= t.min && c.p50 <= t.p50, "{c:?} vs {t:?}");
    if st.coalesced == 0 {
        assert!(t.p50 <= back.p50, "{t:?} vs {back:?}");
    }
    let v = serde_json::to_value(r).unwrap();
    assert!(v["tick_to_send_return_ns"]["p50"].is_u64(), "{v}");
    assert_eq!(v["tx_stamps"]["missing"], 0, "{v}");
}

/// Each risk check refuses before any byte leaves: the server sees no
/// order at all.
#[test]
fn risk_refusals_leave_nothing_on_the_wire() {
    let cases: [(&str, RiskConfig); 3] = [
        (
            "quantity",
            RiskConfig {
                max_order_qty: 50,
                ..loose_risk()
            },
        ),
        (
            "notional",
            RiskConfig {
                max_notional_dollars: 1,
                ..loose_risk()
            },
        ),
        (
            "symbol_position",
            RiskConfig {
                max_position: 10,
                ..loose_risk()
            },
        ),
    ];
    for (reason, risk) in cases {
        let srv = OrderServer::start(Script::default());
        let (_dir, state) = state_path(reason);
        let cfg = config(&srv.uri(), &state, risk);
        let kill = AtomicBool::new(false);
        let (run, _) = run(5_000, &cfg, taker(&cfg), &kill);
        let log = srv.stop();
        let r = &run.report;
        assert!(refusals(r, reason) > 0, "{reason}: {:?}", r.risk_refusals);
        assert_eq!(r.orders.sent, 0, "{reason}");
        assert!(
            log.inbound.iter().all(|m| m[0] == b'Q'),
            "{reason}: only the account query reached the server"
        );
    }
}

/// The kill switch (here: the flag a signal handler sets, and the file)
/// cancels every open order and refuses new ones.
#[test]
fn kill_switch_cancels_every_open_order() {
    for by_file in [false, true] {
        let srv = OrderServer::start(Script::default());
        let (_dir, state) = state_path(if by_file { "kill-file" } else { "kill-flag" });
        let mut cfg = config(&srv.uri(), &state, loose_risk());
        let kill_file = state.with_file_name("KILL");
        cfg.kill_file = Some(kill_file.clone());
        let kill = AtomicBool::new(false);
        let (run, _) = thread::scope(|s| {
            let h = s.spawn(|| run(40_000, &cfg, maker(&cfg), &kill));
            // Trip it once the maker has quotes out.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while srv.log().enters.len() < 4 && std::time::Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if by_file {
                std::fs::write(&kill_file, b"").unwrap();
            } else {
                kill.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            h.join().unwrap()
        });
        let log = srv.stop();
        let r = &run.report;
        assert_eq!(
            r.kill_switch,
            Some(if by_file { "kill file" } else { "signal" })
        );
        assert_eq!(r.orders.open_at_end, 0, "{:?}", r.orders);
        assert!(refusals(r, "kill_switch") > 0, "the maker kept trying");
        // Every order entered (or replaced in) was cancelled.
        let mut live: std::collections::HashSet<u32> = std::collections::HashSet::new();
        for m in &log.inbound {
            match m[0] {
                b'O' => {
                    live.insert(u32::from_be_bytes([m[1], m[2], m[3], m[4]]));
                }
                b'U' => {
                    live.remove(&u32::from_be_bytes([m[1], m[2], m[3], m[4]]));
                    live.insert(u32::from_be_bytes([m[5], m[6], m[7], m[8]]));
                }
                b'X' => {
                    live.remove(&u32::from_be_bytes([m[1], m[2], m[3], m[4]]));
                }
                _ => {}
            }
        }
        assert!(live.is_empty(), "left open at the server: {live:?}");
        assert!(!log.cancels.is_empty());
        balanced(r);
    }
}

/// A connection dropped mid-session: the trader reconnects asking for the
/// next sequence number; nothing is lost or duplicated.
#[test]
fn reconnect_resumes_at_the_next_sequence_number() {
    let srv = OrderServer::start(Script {
        fill: true,
        drop_after: Some(5),
        ..Script::default()
    });
    let (_dir, state) = state_path("reconnect");
    let cfg = config(&srv.uri(), &state, loose_risk());
    let kill = AtomicBool::new(false);
    let (run, _) = run(20_000, &cfg, taker(&cfg), &kill);
    let log: Log = srv.stop();
    let r = &run.report;
    assert_eq!(log.connections, 2, "{log:?}");
    assert_eq!(r.session.reconnects, 1);
    assert_eq!(r.session.drops, 1);
    // The first login asked for 1, the second for one past what the first
    // connection delivered.
    assert_eq!(log.logins[0], 1);
    assert!(log.logins[1] > 1);
    // Every sequenced message arrived exactly once.
    assert_eq!(r.session.sequenced_in, log.published);
    assert_eq!(r.session.duplicates, 0);
    assert_eq!(r.session.missing, 0);
    assert_eq!(r.orders.pending, 0, "{:?}", r.orders);
    assert_eq!(r.orders.executions, log.fills.len() as u64);
    // Every enter reached the exchange once: those lost with the old
    // connection were sent again, copies it had processed were ignored.
    assert_eq!(r.orders.enters, log.enters.len() as u64, "{:?}", r.session);
    // ... and in strictly increasing UserRefNums across the reconnect.
    assert!(log.enters.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(log.ignored.len() as u64 <= r.session.resent);
    balanced(r);
}

/// UserRefNums keep increasing across a restart with the same state file.
#[test]
fn user_ref_nums_increase_across_a_restart() {
    let (_dir, state) = state_path("restart");
    let mut all: Vec<u32> = Vec::new();
    for _ in 0..2 {
        let srv = OrderServer::start(Script {
            fill: true,
            ..Script::default()
        });
        let cfg = config(&srv.uri(), &state, loose_risk());
        let kill = AtomicBool::new(false);
        let (run, _) = run(5_000, &cfg, taker(&cfg), &kill);
        let log = srv.stop();
        assert!(!log.enters.is_empty());
        let nums: Vec<u32> = log.enters.iter().map(|e| e.0).collect();
        if let Some(last) = all.last() {
            assert!(nums[0] > *last, "{} after {last}", nums[0]);
        }
        all.extend(nums);
        assert!(run.report.user_ref_num_mark >= run.report.user_ref_num_last);
    }
    assert!(all.windows(2).all(|w| w[0] < w[1]));
}

/// Bad input from the server — an OUCH message of no known type, a
/// SoupBinTCP packet of an unknown type — is counted; the session stays up.
#[test]
fn bad_server_input_is_counted_and_the_session_stays_up() {
    let srv = OrderServer::start(Script {
        fill: true,
        garbage: true,
        ..Script::default()
    });
    let (_dir, state) = state_path("garbage");
    let cfg = config(&srv.uri(), &state, loose_risk());
    let kill = AtomicBool::new(false);
    let (run, _) = run(5_000, &cfg, taker(&cfg), &kill);
    let log = srv.stop();
    let r = &run.report;
    assert_eq!(r.exchange_messages.malformed, 2);
    assert_eq!(r.session.bad_frames, 1);
    assert_eq!(r.session.drops, 0);
    assert_eq!(log.connections, 1);
    assert!(r.orders.executions > 0);
    balanced(r);
}

/// The exchange gone for good: the reconnection attempts back off, are
/// counted, and end the run after the configured number.
#[test]
fn reconnection_is_bounded() {
    let srv = OrderServer::start(Script {
        fill: true,
        drop_after: Some(3),
        vanish: true,
        ..Script::default()
    });
    let (_dir, state) = state_path("vanish");
    let mut cfg = config(&srv.uri(), &state, loose_risk());
    cfg.max_reconnect_attempts = 3;
    cfg.reconnect_backoff = Duration::from_millis(1);
    let kill = AtomicBool::new(false);
    let (run, sent) = run(40_000, &cfg, taker(&cfg), &kill);
    let log = srv.stop();
    let r = &run.report;
    assert_eq!(r.stopped, TraderStop::ReconnectFailed, "{:?}", r.session);
    assert_eq!(r.session.failed_attempts, 3);
    assert_eq!((r.session.drops, r.session.reconnects), (1, 0));
    assert!(r.feed.delivered < sent, "the run ended before the feed did");
    assert!(refusals(r, "disconnected") > 0, "orders refused while down");
    assert_eq!(log.connections, 1);
    balanced(r);
}

/// A listener on `addr` whose accept queue is full (backlog 0, one
/// connection made and never accepted), until `stop`: connects to it
/// neither succeed nor are refused (their SYNs are dropped, as on a path
/// gone dark).
fn blackhole(addr: SocketAddr, stop: &AtomicBool) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&addr.into()).unwrap();
    s.listen(0).unwrap();
    let _fill: Vec<_> = (0..3)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The exchange's address gone dark (connects neither made nor refused):
/// each reconnection is a non-blocking connect that gives up at the URI's
/// `connect_timeout`, and the market data is handled meanwhile (a
/// blocking connect would stop the loop for the whole timeout); the
/// attempts stay bounded.
#[test]
fn a_reconnect_to_a_dark_address_does_not_block_the_market_data() {
    let srv = OrderServer::start(Script {
        fill: true,
        drop_after: Some(3),
        vanish: true,
        after_vanish: Some(blackhole),
        ..Script::default()
    });
    let (_dir, state) = state_path("dark");
    let mut cfg = config(
        &format!("{}?connect_timeout=300", srv.uri()),
        &state,
        loose_risk(),
    );
    cfg.max_reconnect_attempts = 3;
    cfg.reconnect_backoff = Duration::from_millis(1);
    let kill = AtomicBool::new(false);
    let (run, _) = run(200_000, &cfg, taker(&cfg), &kill);
    let log = srv.stop();
    let r = &run.report;
    assert_eq!(r.stopped, TraderStop::ReconnectFailed, "{:?}", r.session);
    assert_eq!(r.session.failed_attempts, 3, "{:?}", r.session);
    assert!(r.session.connect_timeouts >= 1, "{:?}", r.session);
    assert!(
        r.session.md_while_connecting > 0,
        "no market data handled during a connect: {:?}",
        r.session
    );
    assert_eq!((r.session.drops, r.session.reconnects), (1, 0));
    assert_eq!(log.connections, 1);
    balanced(r);
}

/// A server that falls silent (connection open, no heartbeats): the trader
/// gives up on it after its timeout, reconnects asking for the next
/// sequence number, and the replay brings what it missed, once.
#[test]
fn a_silent_server_is_given_up_and_the_session_resumes() {
    let srv = OrderServer::start(Script {
        fill: true,
        mute_after: Some(3),
        ..Script::default()
    });
    let (_dir, state) = state_path("mute");
    let mut cfg = config(&srv.uri(), &state, loose_risk());
    cfg.heartbeat = Duration::from_millis(50);
    cfg.server_timeout = Duration::from_millis(200);
    let kill = AtomicBool::new(false);
    let (run, _) = run(40_000, &cfg, taker(&cfg), &kill);
    let log = srv.stop();
    let r = &run.report;
    assert!(r.session.server_timeouts >= 1, "{:?}", r.session);
    assert!(r.session.reconnects >= 1, "{:?}", r.session);
    assert_eq!(log.connections, r.session.connections);
    assert_eq!(r.session.sequenced_in, log.published, "{:?}", r.session);
    assert_eq!((r.session.duplicates, r.session.missing), (0, 0));
    assert_eq!(r.orders.pending, 0, "{:?}", r.orders);
    assert_eq!(r.orders.enters, log.enters.len() as u64);
    assert!(log.enters.windows(2).all(|w| w[0].0 < w[1].0));
    balanced(r);
}
