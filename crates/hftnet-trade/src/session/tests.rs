//! The order session against a real SoupBinTCP server end, in one thread:
//! what the exchange receives after a reconnect, byte for byte by type and
//! UserRefNum.

use hftnet_wire::itch50::{Price4, Side, Stock};
use hftnet_wire::ouch50::RejectReason;
use hftnet_wire::soupbintcp::{Password, Session, Username};

use super::*;
use crate::matching::OrderEvent;
use crate::matching::ouch::{MAX_OUTBOUND_LEN, encode_event};
use crate::orders::{
    CancelOrder, Capacity, ClOrdId, CrossType, Display, EnterOrder, IntermarketSweep, ReplaceOrder,
    TimeInForce, Trigger, UserRefNum,
};
use crate::soupbin::{Server, ServerConfig, ServerConnection, ServerEvent, StreamId};
use crate::strategy::{Ctx, Intents, TopEvent};
use crate::trader::TraderConfig;

/// A strategy that decides nothing: the tests offer the orders.
struct Idle;

impl Strategy for Idle {
    fn on_top(&mut self, _: &TopEvent, _: &Ctx<'_>, _: &mut Intents) {}
}

const WAIT: u64 = 1_000_000;

fn enter(urn: u32) -> OrderMsg {
    OrderMsg::Enter(
        EnterOrder {
            user_ref_num: UserRefNum(urn),
            side: Side::Buy,
            quantity: 100,
            symbol: Stock::new("AAPL").unwrap(),
            price: Price4::from_raw(100_0000),
            time_in_force: TimeInForce::Day,
            display: Display::Visible,
            capacity: Capacity::Principal,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ContinuousMarket,
            cl_ord_id: ClOrdId::from_trigger(Trigger::NONE),
        },
        Trigger::NONE,
    )
}

fn replace(orig: u32, urn: u32) -> OrderMsg {
    OrderMsg::Replace(
        ReplaceOrder {
            orig_user_ref_num: UserRefNum(orig),
            user_ref_num: UserRefNum(urn),
            quantity: 200,
            price: Price4::from_raw(100_0100),
            time_in_force: TimeInForce::Day,
            display: Display::Visible,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cl_ord_id: ClOrdId::from_trigger(Trigger::NONE),
        },
        Trigger::NONE,
    )
}

fn cancel(urn: u32) -> OrderMsg {
    OrderMsg::Cancel(
        CancelOrder {
            user_ref_num: UserRefNum(urn),
            quantity: 0,
        },
        Trigger::NONE,
    )
}

/// An OUCH request as the exchange read it: its type and UserRefNum (the
/// replacement's for `U`, 0 for `Q`).
fn request(m: &[u8]) -> (u8, u32) {
    let at = |i: usize| u32::from_be_bytes(m[i..i + 4].try_into().unwrap());
    match m[0] {
        b'O' | b'X' => (m[0], at(1)),
        b'U' => (b'U', at(5)),
        t => (t, 0),
    }
}

/// One trader process with its session, and the exchange's SoupBinTCP end.
struct Rig {
    server: Server,
    stream: StreamId,
    conn: Option<ServerConnection>,
    session: OrderSession,
    trader: Trader<Idle>,
    buf: Vec<u8>,
    /// The requests the exchange received, in order.
    got: Vec<(u8, u32)>,
    /// The events the session reported.
    events: Vec<SessionEvent>,
    now: u64,
}

fn credentials() -> (Username, Password) {
    (
        Username::new("alice").unwrap(),
        Password::new("secret").unwrap(),
    )
}

fn fresh_trader() -> Trader<Idle> {
    let cfg = TraderConfig {
        symbols: vec!["AAPL".into()],
        ..TraderConfig::default()
    };
    Trader::new(cfg, Idle).unwrap()
}

fn fresh_session(ring: usize) -> OrderSession {
    let (u, p) = credentials();
    OrderSession::new(OrderSessionConfig {
        resend_ring: ring,
        query_wait_ns: WAIT,
        ..OrderSessionConfig::new(ClientConfig::new(u, p))
    })
    .unwrap()
}

impl Rig {
    fn new(ring: usize) -> Self {
        let (u, p) = credentials();
        let mut server = Server::new(ServerConfig::new(u, p)).unwrap();
        let stream = server.open(Session::new("DAY").unwrap(), None).unwrap();
        Self {
            server,
            stream,
            conn: None,
            session: fresh_session(ring),
            trader: fresh_trader(),
            buf: vec![0; 65_537],
            got: Vec::new(),
            events: Vec::new(),
            now: 1,
        }
    }

    /// A restart: a fresh trader (recovering) and session on the same
    /// exchange, nothing in flight.
    fn restart(&mut self) {
        self.conn = None;
        self.session = fresh_session(RESEND_RING);
        self.trader = fresh_trader();
        self.trader.begin_recovery();
    }

    fn connect(&mut self) {
        self.session.connect(self.now, &mut self.trader).unwrap();
        self.conn = Some(self.server.connect(self.now));
    }

    /// The connection breaks: whatever was in flight is lost.
    fn cut(&mut self) {
        self.session.connection_lost(&mut self.trader);
        self.conn = None;
    }

    /// The exchange reads `buf[..len]` from the trader.
    fn deliver(&mut self, len: usize) {
        let (conn, got) = (self.conn.as_mut().unwrap(), &mut self.got);
        conn.handle_input(self.now, &self.buf[..len], &self.server, |e| {
            if let ServerEvent::Unsequenced(m) = e {
                got.push(request(m));
            }
        });
    }

    /// Everything the session has to send, to the exchange.
    fn out(&mut self) {
        loop {
            let n = self
                .session
                .poll_transmit(self.now, &mut self.trader, &mut self.buf);
            if n == 0 {
                return;
            }
            self.deliver(n);
        }
    }

    /// Everything the exchange has to send, to the session, one byte at a
    /// time (frames split anywhere).
    fn back(&mut self) {
        let conn = self.conn.as_mut().unwrap();
        loop {
            let n = conn.poll_transmit(self.now, &self.server, &mut self.buf);
            if n == 0 {
                return;
            }
            for b in self.buf[..n].chunks(1) {
                let events = &mut self.events;
                self.session
                    .handle_input(self.now, b, &mut self.trader, |e| events.push(e));
            }
        }
    }

    /// Connect and log in, answering the Account Query with `next`.
    fn log_in(&mut self, next: u32) {
        self.connect();
        self.out();
        self.back();
        self.out();
        assert_eq!(self.got.last(), Some(&(b'Q', 0)));
        self.publish(&OrderEvent::AccountQuery {
            next_user_ref_num: next,
        });
        self.back();
        self.out();
        assert!(self.session.is_ready());
    }

    /// The exchange refuses `urn` (an answer that names it).
    fn reject(&mut self, urn: u32) {
        self.publish(&OrderEvent::Rejected {
            user_ref_num: urn,
            reason: RejectReason::InvalidPrice,
            cl_ord_id: ClOrdId::from_trigger(Trigger::NONE),
        });
    }

    /// The connection breaks; a new one logs in and sends its Account
    /// Query (unanswered yet). `got` then holds what this connection
    /// carried.
    fn reconnect_until_the_query(&mut self) {
        self.cut();
        self.got.clear();
        self.connect();
        self.out();
        self.back();
        self.out();
        assert_eq!(self.got, [(b'Q', 0)]);
    }

    /// The exchange's answer on the session's stream.
    fn publish(&mut self, ev: &OrderEvent) {
        let mut b = [0u8; MAX_OUTBOUND_LEN];
        let n = encode_event(ev, 0, &mut b).unwrap();
        self.server.publish(self.stream, &b[..n]).unwrap();
    }

    /// Offers `m`; delivers its frame to the exchange when `deliver`.
    fn send(&mut self, m: &OrderMsg, deliver: bool) -> Result<Framed, Unsent> {
        let now = self.now;
        let r = self.session.send_order(m, &mut self.buf, || now);
        if let (Ok(f), true) = (r, deliver) {
            self.deliver(f.len);
        }
        r
    }
}

#[test]
fn resend_is_exactly_the_unanswered_enters_and_replaces_in_order_then_the_held_cancels() {
    let mut r = Rig::new(RESEND_RING);
    r.log_in(1);
    assert!(r.trader.connected());
    // 1 and 2 reach the exchange; 3, the replace 4 of 1, 5 and the cancel
    // of 2 are framed but lost with the connection.
    for (m, deliver) in [
        (enter(1), true),
        (enter(2), true),
        (enter(3), false),
        (replace(1, 4), false),
        (cancel(2), false),
        (enter(5), false),
    ] {
        assert!(r.send(&m, deliver).is_ok());
    }
    r.cut();
    assert!(!r.trader.connected() && !r.session.is_ready());
    // While down: cancels held, an enter refused.
    assert_eq!(r.send(&cancel(1), true), Err(Unsent::Held));
    assert_eq!(r.send(&enter(6), true), Err(Unsent::NotReady));
    r.got.clear();
    // The next login: only the Account Query leaves until its answer.
    r.connect();
    r.out();
    r.back();
    assert!(r.session.is_logged_in() && r.session.is_querying());
    assert_eq!(r.send(&cancel(3), true), Err(Unsent::Held));
    r.out();
    r.now += WAIT / 2;
    assert_eq!(r.session.handle_timeout(r.now), None);
    r.out();
    assert_eq!(r.got, [(b'Q', 0)], "nothing before the answer");
    assert!(!r.trader.connected());
    // The exchange processed 1 and 2: 3 is next.
    r.publish(&OrderEvent::AccountQuery {
        next_user_ref_num: 3,
    });
    r.back();
    r.out();
    assert_eq!(
        r.got,
        [
            (b'Q', 0),
            (b'O', 3),
            (b'U', 4),
            (b'O', 5),
            (b'X', 1),
            (b'X', 3)
        ],
        "the lost enters and replace in order, then the held cancels (the lost cancel of 2 is the trader's to redo)"
    );
    let c = r.session.counters();
    assert_eq!((c.resent, c.held_sent, c.not_ready), (3, 2, 1));
    assert_eq!((c.queries_answered, c.query_timeouts), (2, 0));
    assert_eq!((c.connections, c.logins, c.drops), (2, 2, 1));
    assert!(r.session.is_ready() && r.trader.connected());
    // Orders flow again, after the resend.
    assert!(r.send(&enter(7), true).is_ok());
    assert_eq!(r.got.last(), Some(&(b'O', 7)));
}

#[test]
fn the_resend_ring_keeps_the_last_entries_only() {
    let mut r = Rig::new(2);
    r.log_in(1);
    for urn in 1..=3 {
        assert!(r.send(&enter(urn), false).is_ok());
    }
    r.cut();
    r.got.clear();
    r.log_in(1);
    assert_eq!(r.got, [(b'Q', 0), (b'O', 2), (b'O', 3)]);
}

#[test]
fn without_an_answer_the_resend_starts_above_the_highest_answered() {
    let mut r = Rig::new(RESEND_RING);
    r.log_in(1);
    for urn in 1..=4 {
        assert!(r.send(&enter(urn), true).is_ok());
    }
    // The exchange answered 2 (and 1) before the connection broke.
    for urn in [1, 2] {
        r.reject(urn);
    }
    r.back();
    assert_eq!(r.session.max_answered(), 2);
    r.reconnect_until_the_query();
    let deadline = r.now + WAIT;
    assert_eq!(
        r.session.poll_timeout().map(|t| t.min(deadline)),
        Some(deadline)
    );
    r.now = deadline - 1;
    r.session.handle_timeout(r.now);
    r.out();
    assert_eq!(r.got, [(b'Q', 0)], "nothing before the deadline");
    r.now = deadline;
    r.session.handle_timeout(r.now);
    r.out();
    assert_eq!(r.got, [(b'Q', 0), (b'O', 3), (b'O', 4)]);
    assert_eq!(r.session.counters().query_timeouts, 1);
    assert!(r.session.is_ready() && r.trader.connected());
    // A late answer changes nothing.
    r.publish(&OrderEvent::AccountQuery {
        next_user_ref_num: 1,
    });
    r.back();
    r.out();
    assert_eq!(r.got.len(), 3);
}

#[test]
fn recovery_ends_at_this_logins_answer_not_at_a_replayed_one() {
    let mut r = Rig::new(RESEND_RING);
    // The first run: its Account Query answered, an order accepted.
    r.log_in(1);
    assert!(r.send(&enter(1), true).is_ok());
    r.reject(1);
    r.back();
    // The process restarts: it logs in from sequence number 1 and the
    // replay (the first run's answer in it) is read before its own query
    // leaves.
    r.restart();
    r.got.clear();
    r.connect();
    r.out();
    r.back();
    let replayed = r
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SessionEvent::Message {
                    decoded: Some(Decoded::NextUserRefNum(1)),
                    ..
                }
            )
        })
        .count();
    assert_eq!(replayed, 2, "both runs' logins saw the first answer");
    assert!(r.trader.recovering(), "a replayed answer ends nothing");
    assert!(r.session.is_querying() && !r.session.is_ready());
    r.out();
    assert_eq!(r.got, [(b'Q', 0)]);
    r.publish(&OrderEvent::AccountQuery {
        next_user_ref_num: 2,
    });
    r.back();
    assert!(
        r.trader.recovering(),
        "ended by the flush, after the resend"
    );
    r.out();
    assert!(!r.trader.recovering() && r.session.is_ready() && r.trader.connected());
    assert_eq!(
        r.session.counters().resent,
        0,
        "the first run's orders are not this one's"
    );
}

#[test]
fn a_small_buffer_takes_the_flush_in_several_calls() {
    let mut r = Rig::new(RESEND_RING);
    r.log_in(1);
    for urn in 1..=5 {
        assert!(r.send(&enter(urn), false).is_ok());
    }
    r.reconnect_until_the_query();
    r.publish(&OrderEvent::AccountQuery {
        next_user_ref_num: 1,
    });
    r.back();
    // One order frame (2 + 47 bytes) and a bit per call.
    let mut calls = 0;
    loop {
        let mut small = [0u8; 60];
        let n = r.session.poll_transmit(r.now, &mut r.trader, &mut small);
        if n == 0 {
            break;
        }
        calls += 1;
        r.buf[..n].copy_from_slice(&small[..n]);
        r.deliver(n);
    }
    assert_eq!(calls, 5);
    let urns: Vec<u32> = r.got.iter().skip(1).map(|g| g.1).collect();
    assert_eq!(urns, [1, 2, 3, 4, 5]);
    assert!(r.session.is_ready());
}

#[test]
fn a_failed_write_holds_a_cancel_and_resends_an_enter() {
    let mut r = Rig::new(RESEND_RING);
    r.log_in(1);
    assert!(r.send(&enter(1), false).is_ok());
    r.session.write_failed(&enter(1));
    assert!(r.send(&cancel(9), false).is_ok());
    r.session.write_failed(&cancel(9));
    r.cut();
    r.got.clear();
    r.log_in(1);
    assert_eq!(r.got, [(b'Q', 0), (b'O', 1), (b'X', 9)]);
    assert_eq!(r.session.counters().send_failures, 2);
}

#[test]
fn bad_configs_are_named() {
    let (u, p) = credentials();
    let ok = OrderSessionConfig::new(ClientConfig::new(u, p));
    for (c, field) in [
        (
            OrderSessionConfig {
                resend_ring: 0,
                ..ok
            },
            "resend_ring",
        ),
        (OrderSessionConfig { held: 0, ..ok }, "held"),
        (
            OrderSessionConfig {
                query_wait_ns: 0,
                ..ok
            },
            "query_wait_ns",
        ),
    ] {
        let e = OrderSession::new(c).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    let mut bad = ok;
    bad.client.heartbeat_interval_ns = 0;
    let e = OrderSession::new(bad).unwrap_err().to_string();
    assert!(e.contains("heartbeat_interval_ns"), "{e}");
}

#[test]
fn a_kill_during_recovery_cancels_the_adopted_orders_after_the_resend_and_before_the_held() {
    let mut r = Rig::new(RESEND_RING);
    // The first run: order 1 accepted and resting.
    r.log_in(1);
    assert!(r.send(&enter(1), true).is_ok());
    r.publish(&OrderEvent::Accepted {
        user_ref_num: 1,
        side: crate::orders::OrderSide::Buy,
        quantity: 100,
        symbol: Stock::new("AAPL").unwrap(),
        price: 100_0000,
        time_in_force: TimeInForce::Day,
        display: Display::Visible,
        capacity: Capacity::Principal,
        order_reference_number: 77,
        cl_ord_id: ClOrdId::from_trigger(Trigger::NONE),
    });
    r.back();
    // The restarted process is killed before its session is back; a
    // cancel of its own waits meanwhile.
    r.restart();
    let mut outbox = Outbox::default();
    assert_eq!(r.trader.trip_kill_switch(&mut outbox), 0);
    assert!(outbox.as_slice().is_empty(), "nothing adopted yet");
    assert_eq!(r.send(&cancel(9), true), Err(Unsent::Held));
    r.got.clear();
    r.log_in(2);
    assert!(!r.trader.recovering());
    assert_eq!(r.trader.counters().recovered_orders, 1);
    assert_eq!(
        r.got,
        [(b'Q', 0), (b'X', 1), (b'X', 9)],
        "the adopted order cancelled, then the held cancel"
    );
    assert_eq!(r.session.counters().held_sent, 1);
}
