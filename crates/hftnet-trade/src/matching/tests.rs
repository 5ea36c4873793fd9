//! Unit tests of the matching engine and the exchange core's order entry.

use hftnet_wire::itch50::{
    HeaderRepr, Message, ReasonCode, Side, Stock, StockTradingActionRepr, Timestamp, codes,
};

use super::*;
use crate::exchange::{Generator, GeneratorConfig};

fn small() -> MatchConfig {
    MatchConfig {
        max_orders: 1024,
        max_locates: 16,
        levels_per_side: 8,
        ref_window: 4 * crate::book::REF_CHUNK,
    }
}

fn engine() -> MatchingEngine {
    MatchingEngine::new(&small()).unwrap()
}

fn ids(e: &MatchingEngine, side: Side, price: u32) -> Vec<u64> {
    e.queue(1, side, price).map(|r| r.id).collect()
}

#[test]
fn price_then_time_priority_and_partial_fills() {
    let mut e = engine();
    let mut fills = Vec::new();
    let mut ev = |f: &Fill| fills.push(*f);
    for (id, price) in [(1, 10_000), (2, 10_000), (3, 10_000), (4, 9_900)] {
        let r = e
            .enter(1, id, id * 10, Side::Sell, price, 100, true, &mut ev)
            .unwrap();
        assert_eq!(
            r,
            Entered {
                executed: 0,
                rested: 100,
                unfilled: 0
            }
        );
    }
    let r = e
        .enter(1, 5, 50, Side::Buy, 10_000, 250, true, &mut ev)
        .unwrap();
    assert_eq!(
        r,
        Entered {
            executed: 250,
            rested: 0,
            unfilled: 0
        }
    );
    let got: Vec<(u64, u64, u32, u32, u32)> = fills
        .iter()
        .map(|f| (f.maker, f.maker_user, f.price, f.quantity, f.maker_left))
        .collect();
    // The better price first, then the oldest at 10_000; the maker's price.
    assert_eq!(
        got,
        [
            (4, 40, 9_900, 100, 0),
            (1, 10, 10_000, 100, 0),
            (2, 20, 10_000, 50, 50)
        ]
    );
    assert!(
        fills
            .iter()
            .all(|f| f.taker == 5 && f.maker_side == Side::Sell)
    );
    assert_eq!(ids(&e, Side::Sell, 10_000), [2, 3]);
    assert_eq!(e.order(2).unwrap().quantity, 50);
    assert_eq!(e.best(1, Side::Sell).unwrap().shares, 150);
    assert_eq!(e.best(1, Side::Buy), None);
    e.check_invariants().unwrap();
    let c = e.counters();
    assert_eq!((c.fills, c.volume, c.entered), (3, 250, 5));
}

#[test]
fn the_remainder_rests_or_is_returned_unfilled() {
    let mut e = engine();
    e.enter(1, 1, 0, Side::Sell, 10_100, 100, true, &mut NoEvents)
        .unwrap();
    // Does not cross: rests in full.
    let r = e
        .enter(1, 2, 0, Side::Buy, 10_000, 70, true, &mut NoEvents)
        .unwrap();
    assert_eq!(r.rested, 70);
    // Crosses, more than there is: 100 execute, 50 rest at the buyer's price.
    let r = e
        .enter(1, 3, 0, Side::Buy, 10_200, 150, true, &mut NoEvents)
        .unwrap();
    assert_eq!(
        r,
        Entered {
            executed: 100,
            rested: 50,
            unfilled: 0
        }
    );
    assert_eq!(e.best(1, Side::Buy).unwrap().price, 10_200);
    // IOC: nothing rests.
    let r = e
        .enter(1, 4, 0, Side::Sell, 10_000, 500, false, &mut NoEvents)
        .unwrap();
    assert_eq!(
        r,
        Entered {
            executed: 120,
            rested: 0,
            unfilled: 380
        }
    );
    assert_eq!(e.live_orders(), 0);
    assert!(e.order(4).is_none());
    e.check_invariants().unwrap();
}

#[test]
fn a_size_down_keeps_priority_a_replace_loses_it() {
    let mut e = engine();
    for id in 1..=3 {
        e.enter(1, id, 0, Side::Buy, 5_000, 100, true, &mut NoEvents)
            .unwrap();
    }
    assert_eq!(e.reduce(1, 40, &mut NoEvents), Some(60));
    assert_eq!(ids(&e, Side::Buy, 5_000), [1, 2, 3]);
    let (old, r) = e.replace(1, 9, 0, 5_000, 60, true, &mut NoEvents).unwrap();
    assert_eq!((old.id, old.quantity), (1, 60));
    assert_eq!(r.unwrap().rested, 60);
    assert_eq!(ids(&e, Side::Buy, 5_000), [2, 3, 9]);
    // Reducing by more than is left removes the order.
    assert_eq!(e.reduce(2, 1_000, &mut NoEvents), Some(0));
    assert_eq!(ids(&e, Side::Buy, 5_000), [3, 9]);
    assert_eq!(e.cancel(9, &mut NoEvents).map(|r| r.quantity), Some(60));
    assert_eq!(ids(&e, Side::Buy, 5_000), [3]);
    assert_eq!(e.cancel(9, &mut NoEvents), None);
    assert_eq!(e.reduce(9, 1, &mut NoEvents), None);
    assert!(e.replace(9, 10, 0, 1, 1, true, &mut NoEvents).is_none());
    // A replace across the spread executes.
    e.enter(1, 20, 0, Side::Sell, 6_000, 30, true, &mut NoEvents)
        .unwrap();
    let (_, r) = e
        .replace(3, 21, 0, 6_000, 100, true, &mut NoEvents)
        .unwrap();
    assert_eq!(
        r.unwrap(),
        Entered {
            executed: 30,
            rested: 70,
            unfilled: 0
        }
    );
    e.check_invariants().unwrap();
}

#[test]
fn the_listener_sees_adds_and_cancels() {
    #[derive(Default)]
    struct Log(Vec<String>);
    impl MatchEvents for Log {
        fn fill(&mut self, f: &Fill) {
            self.0.push(format!("fill {} {}", f.maker, f.quantity));
        }
        fn added(&mut self, o: &Resting) {
            self.0.push(format!("add {} {}", o.id, o.quantity));
        }
        fn canceled(&mut self, o: &Resting, n: u32, left: u32) {
            self.0.push(format!("cancel {} {n} {left}", o.id));
        }
    }
    let mut e = engine();
    let mut log = Log::default();
    e.enter(2, 1, 0, Side::Sell, 100, 10, true, &mut log)
        .unwrap();
    e.enter(2, 2, 0, Side::Buy, 100, 4, true, &mut log).unwrap();
    e.reduce(1, 1, &mut log);
    e.cancel(1, &mut log);
    assert_eq!(
        log.0,
        ["add 1 10", "fill 1 4", "cancel 1 1 5", "cancel 1 5 0"]
    );
}

#[test]
fn bad_entries_change_nothing() {
    let mut e = engine();
    e.enter(1, 1, 0, Side::Buy, 100, 1, true, &mut NoEvents)
        .unwrap();
    let bad = [
        (16, 2, 100, 1, EnterError::BadLocate),
        (1, 2, 100, 0, EnterError::ZeroQuantity),
        (1, 2, 0, 1, EnterError::ZeroPrice),
        (1, 1, 100, 1, EnterError::DuplicateId),
    ];
    for (locate, id, price, qty, err) in bad {
        assert_eq!(
            e.enter(locate, id, 0, Side::Sell, price, qty, true, &mut NoEvents),
            Err(err)
        );
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(e.live_orders(), 1);
    assert_eq!(e.counters().refused, 4);
    assert!(
        MatchingEngine::new(&MatchConfig {
            ref_window: 100,
            ..small()
        })
        .is_err()
    );
    assert!(
        MatchingEngine::new(&MatchConfig {
            max_orders: 0,
            ..small()
        })
        .is_err()
    );
    assert!(
        MatchingEngine::new(&MatchConfig {
            max_locates: 0,
            ..small()
        })
        .is_err()
    );
    e.check_invariants().unwrap();
}

// ----------------------------------------------------------------- exchange

/// Everything an exchange emitted.
#[derive(Default)]
pub(super) struct Collect {
    pub(super) itch: Vec<Message>,
    pub(super) events: Vec<(SessionId, OrderEvent)>,
}

impl ExchangeOutput for Collect {
    fn itch(&mut self, msg: &Message) {
        self.itch.push(*msg);
    }
    fn order_event(&mut self, session: SessionId, event: &OrderEvent) {
        self.events.push((session, *event));
    }
}

impl Collect {
    pub(super) fn take(&mut self) -> (Vec<Message>, Vec<(SessionId, OrderEvent)>) {
        (
            std::mem::take(&mut self.itch),
            std::mem::take(&mut self.events),
        )
    }
}

fn exchange_config() -> ExchangeConfig {
    ExchangeConfig {
        matching: small(),
        client_orders: 64,
        max_sessions: 4,
        ..ExchangeConfig::default()
    }
}

pub(super) const AAPL: Stock = Stock(*b"AAPL    ");

/// An exchange whose generated day has started (directory and trading
/// actions published), with one session; the generator, for more flow.
pub(super) fn started() -> (Exchange, Generator, SessionId, Collect) {
    let mut x = Exchange::new(&exchange_config()).unwrap();
    let mut g = Generator::new(GeneratorConfig::new(5, 3)).unwrap();
    let mut out = Collect::default();
    while !g.in_flow() {
        let m = g.next_message().unwrap();
        x.handle_generated(&m, &mut out);
    }
    let s = x.open_session().unwrap();
    out.take();
    (x, g, s, out)
}

fn enter(user_ref: u32, side: u8, quantity: u32, price: u64, tif: u8) -> Request {
    Request::Enter(EnterOrder {
        intermarket_sweep: b'N',
        cross_type: b'N',
        user_ref_num: user_ref,
        side,
        quantity,
        symbol: AAPL,
        price,
        time_in_force: tif,
        display: b'Y',
        capacity: b'A',
        cl_ord_id: crate::orders::ClOrdId(*b"CLORD         "),
    })
}

fn rejected(ev: &[(SessionId, OrderEvent)]) -> Option<RejectReason> {
    match ev {
        [(_, OrderEvent::Rejected { reason, .. })] => Some(*reason),
        _ => None,
    }
}

#[test]
fn every_reject_reason_and_exact_accounting() {
    let (mut x, _, s, mut out) = started();
    let locate = x.locate(AAPL).unwrap();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let cases: Vec<(Request, RejectReason)> = vec![
        (
            enter(next(), b'Z', 100, 1_000_000, b'0'),
            RejectReason::InvalidSide,
        ),
        (
            enter(next(), b'B', 0, 1_000_000, b'0'),
            RejectReason::InvalidQuantity,
        ),
        (
            enter(next(), b'B', 1_000_000, 1_000_000, b'0'),
            RejectReason::InvalidQuantity,
        ),
        (
            enter(next(), b'B', 100, 0, b'0'),
            RejectReason::InvalidPrice,
        ),
        (
            enter(next(), b'B', 100, 1_000_050, b'0'),
            RejectReason::InvalidPrice,
        ),
        (
            enter(next(), b'B', 100, 1 << 40, b'0'),
            RejectReason::InvalidPrice,
        ),
        (
            enter(next(), b'B', 100, 1_000_000, b'5'),
            RejectReason::Other,
        ),
        (
            Request::Enter(EnterOrder {
                symbol: Stock(*b"NOPE    "),
                ..enter_fields(next())
            }),
            RejectReason::InvalidSymbol,
        ),
        (
            Request::Enter(EnterOrder {
                display: b'Q',
                ..enter_fields(next())
            }),
            RejectReason::InvalidDisplay,
        ),
        (
            Request::Enter(EnterOrder {
                capacity: b'Z',
                ..enter_fields(next())
            }),
            RejectReason::Other,
        ),
        (
            Request::Enter(EnterOrder {
                intermarket_sweep: b'Y',
                ..enter_fields(next())
            }),
            RejectReason::IsoNotAllowed,
        ),
        (
            Request::Enter(EnterOrder {
                cross_type: b'C',
                ..enter_fields(next())
            }),
            RejectReason::InvalidCrossOrder,
        ),
    ];
    for (req, reason) in &cases {
        x.handle_request(s, req, 0, &mut out);
        let (itch, ev) = out.take();
        assert_eq!(rejected(&ev), Some(*reason), "{req:?}: {ev:?}");
        assert!(itch.is_empty());
    }
    // A replace of an order that is not live is silently ignored, and its
    // UserRefNum is not consumed (OUCH 5.0, 2.2 case 1): the same number
    // enters an order next.
    let c0 = *x.session_counters(s).unwrap();
    let urn = next();
    let dead = Request::Replace(ReplaceOrder {
        intermarket_sweep: b'N',
        orig_user_ref_num: 999,
        user_ref_num: urn,
        quantity: 100,
        price: 1_000_000,
        time_in_force: b'0',
        display: b'Y',
        cl_ord_id: crate::orders::ClOrdId([b' '; 14]),
    });
    x.handle_request(s, &dead, 0, &mut out);
    assert_eq!(out.take(), (Vec::new(), Vec::new()));
    let c1 = *x.session_counters(s).unwrap();
    assert_eq!(c1.replaces_ignored, c0.replaces_ignored + 1);
    assert_eq!(
        (c1.received, c1.retransmissions),
        (c0.received, c0.retransmissions)
    );
    x.handle_request(
        s,
        &Request::Enter(EnterOrder {
            cross_type: b'C',
            ..enter_fields(urn)
        }),
        0,
        &mut out,
    );
    let (_, ev) = out.take();
    assert_eq!(
        rejected(&ev),
        Some(RejectReason::InvalidCrossOrder),
        "{ev:?}"
    );
    // A price band: 10 % around the book's midpoint.
    let bid = x.engine().best(locate, Side::Buy).map(|l| l.price);
    let ask = x.engine().best(locate, Side::Sell).map(|l| l.price);
    assert!(bid.is_none() && ask.is_none(), "no flow yet");
    // Retransmissions: equal and lower UserRefNums are ignored, no event.
    x.handle_request(s, &enter(n, b'B', 100, 1_000_000, b'0'), 0, &mut out);
    x.handle_request(s, &enter(1, b'B', 100, 1_000_000, b'0'), 0, &mut out);
    assert!(out.take().1.is_empty());
    // Halted.
    x.handle_generated(
        &trading_action(locate, codes::trading_state::HALTED),
        &mut out,
    );
    x.handle_request(s, &enter(n + 1, b'B', 100, 1_000_000, b'0'), 0, &mut out);
    assert_eq!(rejected(&out.take().1), Some(RejectReason::Halted));
    let c = x.session_counters(s).unwrap();
    // The cases, the enter after the ignored replace, the halted one.
    assert_eq!(c.received, cases.len() as u64 + 2);
    assert_eq!(c.rejected, c.received);
    assert_eq!(c.accepted, 0);
    assert_eq!(c.retransmissions, 2);
    assert_eq!(x.engine().live_orders(), 0);
}

/// A generated Stock Trading Action for AAPL at `locate`.
fn trading_action(locate: u16, state: u8) -> Message {
    Message::StockTradingAction(StockTradingActionRepr {
        header: HeaderRepr {
            stock_locate: locate,
            tracking_number: 0,
            timestamp: Timestamp::MIDNIGHT,
        },
        stock: AAPL,
        trading_state: state,
        reserved: b' ',
        reason: ReasonCode::BLANK,
    })
}

fn enter_fields(user_ref: u32) -> EnterOrder {
    match enter(user_ref, b'B', 100, 1_000_000, b'0') {
        Request::Enter(o) => o,
        _ => unreachable!(),
    }
}

#[test]
fn the_price_band_follows_the_book() {
    let (mut x, _, s, mut out) = started();
    // A resting bid and offer around $100.00 set the reference.
    x.handle_request(s, &enter(1, b'B', 100, 999_900, b'0'), 0, &mut out);
    x.handle_request(s, &enter(2, b'S', 100, 1_000_100, b'0'), 0, &mut out);
    out.take();
    x.handle_request(s, &enter(3, b'B', 100, 1_200_000, b'0'), 0, &mut out);
    assert_eq!(rejected(&out.take().1), Some(RejectReason::InvalidPrice));
    x.handle_request(s, &enter(4, b'B', 100, 800_000, b'0'), 0, &mut out);
    assert_eq!(rejected(&out.take().1), Some(RejectReason::InvalidPrice));
    x.handle_request(s, &enter(5, b'B', 100, 950_000, b'0'), 0, &mut out);
    assert!(matches!(
        out.take().1[..],
        [(_, OrderEvent::Accepted { .. })]
    ));
}

#[test]
fn ioc_remainders_die_day_orders_rest_and_both_sides_hear_of_fills() {
    let (mut x, _, s, mut out) = started();
    let t = x.open_session().unwrap();
    let locate = x.locate(AAPL).unwrap();
    x.handle_request(s, &enter(1, b'S', 300, 1_000_000, b'0'), 7, &mut out);
    let (itch, ev) = out.take();
    let OrderEvent::Accepted {
        order_reference_number: maker_ref,
        ..
    } = ev[0].1
    else {
        panic!("{ev:?}")
    };
    assert!(
        matches!(itch[..], [Message::AddOrder(a)] if a.order_ref == maker_ref && a.shares == 300 && a.header.timestamp.nanos() == 7)
    );
    // An IOC buy of 500 crossing: 300 execute, 200 die.
    x.handle_request(t, &enter(1, b'B', 500, 1_000_100, b'3'), 8, &mut out);
    let (itch, ev) = out.take();
    let [Message::OrderExecuted(e)] = itch[..] else {
        panic!("{itch:?}")
    };
    assert_eq!(
        (e.order_ref, e.executed_shares, e.header.stock_locate),
        (maker_ref, 300, locate)
    );
    let m = e.match_number;
    assert_eq!(
        ev[1..],
        [
            (
                s,
                OrderEvent::Executed {
                    user_ref_num: 1,
                    quantity: 300,
                    price: 1_000_000,
                    liquidity: LiquidityFlag::Added,
                    match_number: m
                }
            ),
            (
                t,
                OrderEvent::Executed {
                    user_ref_num: 1,
                    quantity: 300,
                    price: 1_000_000,
                    liquidity: LiquidityFlag::Removed,
                    match_number: m
                }
            ),
            (
                t,
                OrderEvent::Canceled {
                    user_ref_num: 1,
                    decrement: 200,
                    reason: CancelReason::ImmediateOrCancel
                }
            ),
        ]
    );
    assert_eq!(x.engine().live_orders(), 0);
    assert!(x.client_order(s, 1).is_none());
    let (cs, ct) = (
        *x.session_counters(s).unwrap(),
        *x.session_counters(t).unwrap(),
    );
    assert_eq!(
        (
            cs.executions,
            cs.executed_shares,
            ct.executions,
            ct.canceled
        ),
        (1, 300, 1, 1)
    );
    assert_eq!(x.counters().client_fills, 1);
}

#[test]
fn cancel_modify_replace() {
    let (mut x, _, s, mut out) = started();
    for u in 1..=2 {
        x.handle_request(s, &enter(u, b'S', 100, 1_000_000, b'0'), 0, &mut out);
    }
    let r1 = x.client_order(s, 1).unwrap().order_ref;
    out.take();
    // Size down: keeps priority, ITCH X.
    x.handle_request(
        s,
        &Request::Cancel(CancelOrder {
            user_ref_num: 1,
            quantity: 60,
        }),
        0,
        &mut out,
    );
    let (itch, ev) = out.take();
    assert!(
        matches!(itch[..], [Message::OrderCancel(c)] if c.order_ref == r1 && c.cancelled_shares == 40)
    );
    assert_eq!(
        ev,
        [(
            s,
            OrderEvent::Canceled {
                user_ref_num: 1,
                decrement: 40,
                reason: CancelReason::UserRequested
            }
        )]
    );
    let locate = x.locate(AAPL).unwrap();
    let q: Vec<u32> = x
        .engine()
        .queue(locate, Side::Sell, 1_000_000)
        .map(|r| r.quantity)
        .collect();
    assert_eq!(q, [60, 100]);
    // Superfluous and unknown cancels are ignored.
    x.handle_request(
        s,
        &Request::Cancel(CancelOrder {
            user_ref_num: 1,
            quantity: 60,
        }),
        0,
        &mut out,
    );
    x.handle_request(
        s,
        &Request::Cancel(CancelOrder {
            user_ref_num: 77,
            quantity: 0,
        }),
        0,
        &mut out,
    );
    assert!(out.take().1.is_empty());
    // Modify: S -> T allowed and a size-down; S -> B ignored; up ignored.
    x.handle_request(
        s,
        &Request::Modify(ModifyOrder {
            user_ref_num: 1,
            side: b'T',
            quantity: 50,
        }),
        0,
        &mut out,
    );
    let (itch, ev) = out.take();
    assert!(matches!(itch[..], [Message::OrderCancel(c)] if c.cancelled_shares == 10));
    assert_eq!(
        ev,
        [(
            s,
            OrderEvent::Modified {
                user_ref_num: 1,
                side: OrderSide::SellShort,
                quantity: 50
            }
        )]
    );
    assert_eq!(x.client_order(s, 1).unwrap().side, OrderSide::SellShort);
    x.handle_request(
        s,
        &Request::Modify(ModifyOrder {
            user_ref_num: 1,
            side: b'B',
            quantity: 50,
        }),
        0,
        &mut out,
    );
    x.handle_request(
        s,
        &Request::Modify(ModifyOrder {
            user_ref_num: 1,
            side: b'T',
            quantity: 51,
        }),
        0,
        &mut out,
    );
    assert!(out.take().1.is_empty());
    // Replace: loses priority; new ref; ITCH U.
    x.handle_request(
        s,
        &Request::Replace(ReplaceOrder {
            intermarket_sweep: b'N',
            orig_user_ref_num: 1,
            user_ref_num: 3,
            quantity: 80,
            price: 1_000_000,
            time_in_force: b'0',
            display: b'Y',
            cl_ord_id: crate::orders::ClOrdId([b'r'; 14]),
        }),
        0,
        &mut out,
    );
    let (itch, ev) = out.take();
    let [Message::OrderReplace(u)] = itch[..] else {
        panic!("{itch:?}")
    };
    assert_eq!((u.original_order_ref, u.shares), (r1, 80));
    assert!(matches!(
        ev[..],
        [(
            _,
            OrderEvent::Replaced {
                user_ref_num: 3,
                orig_user_ref_num: 1,
                quantity: 80,
                ..
            }
        )]
    ));
    let order: Vec<u64> = x
        .engine()
        .queue(locate, Side::Sell, 1_000_000)
        .map(|r| r.id)
        .collect();
    assert_eq!(
        order,
        [x.client_order(s, 2).unwrap().order_ref, u.new_order_ref]
    );
    assert!(x.client_order(s, 1).is_none());
    // The old UserRefNum is gone: cancel ignored; the new one cancels.
    x.handle_request(
        s,
        &Request::Cancel(CancelOrder {
            user_ref_num: 3,
            quantity: 0,
        }),
        0,
        &mut out,
    );
    let (itch, _) = out.take();
    assert!(matches!(itch[..], [Message::OrderDelete(d)] if d.order_ref == u.new_order_ref));
    // Modify to zero cancels.
    x.handle_request(
        s,
        &Request::Modify(ModifyOrder {
            user_ref_num: 2,
            side: b'S',
            quantity: 0,
        }),
        0,
        &mut out,
    );
    let (itch, ev) = out.take();
    assert!(matches!(itch[..], [Message::OrderDelete(_)]));
    assert!(matches!(
        ev[..],
        [(_, OrderEvent::Canceled { decrement: 100, .. })]
    ));
    let c = x.session_counters(s).unwrap();
    assert_eq!(
        (
            c.received,
            c.accepted,
            c.cancels,
            c.cancels_ignored,
            c.modifies,
            c.modifies_ignored
        ),
        (3, 3, 4, 2, 4, 2)
    );
    x.handle_request(s, &Request::AccountQuery, 0, &mut out);
    assert_eq!(
        out.take().1,
        [(
            s,
            OrderEvent::AccountQuery {
                next_user_ref_num: 4
            }
        )]
    );
}

#[test]
fn hidden_orders_trade_as_p_and_attributable_ones_add_as_f() {
    let (mut x, _, s, mut out) = started();
    let hidden = EnterOrder {
        side: b'S',
        display: b'N',
        ..enter_fields(1)
    };
    x.handle_request(s, &Request::Enter(hidden), 0, &mut out);
    assert!(out.take().0.is_empty(), "hidden orders are not published");
    let attributable = EnterOrder {
        side: b'S',
        display: b'A',
        price: 1_000_100,
        ..enter_fields(2)
    };
    x.handle_request(s, &Request::Enter(attributable), 0, &mut out);
    assert!(matches!(out.take().0[..], [Message::AddOrderMpid(f)] if f.attribution == CLIENT_MPID));
    x.handle_request(s, &enter(3, b'B', 150, 1_000_100, b'3'), 0, &mut out);
    let (itch, ev) = out.take();
    assert!(
        matches!(itch[..], [Message::Trade(p), Message::OrderExecuted(e)] if p.shares == 100 && p.order_ref == 0 && p.side == Side::Sell && e.executed_shares == 50)
    );
    assert!(ev.iter().any(|(_, e)| matches!(
        e,
        OrderEvent::Executed {
            liquidity: LiquidityFlag::NonDisplayedAdded,
            ..
        }
    )));
    assert_eq!(x.published_orders(x.locate(AAPL).unwrap()).count(), 1);
}

#[test]
fn config_and_session_limits() {
    assert!(
        Exchange::new(&ExchangeConfig {
            tick: 0,
            ..exchange_config()
        })
        .is_err()
    );
    assert!(
        Exchange::new(&ExchangeConfig {
            max_quantity: 0,
            ..exchange_config()
        })
        .is_err()
    );
    let mut x = Exchange::new(&exchange_config()).unwrap();
    for _ in 0..4 {
        x.open_session().unwrap();
    }
    let e = x.open_session().unwrap_err();
    assert!(e.to_string().contains("max_sessions"), "{e}");
    // A request of a session never opened is ignored.
    let mut out = Collect::default();
    x.handle_request(9, &enter(1, b'B', 1, 100, b'0'), 0, &mut out);
    assert!(out.events.is_empty() && out.itch.is_empty());
    assert_eq!(x.counters().unknown_session, 1);
    assert_eq!(x.session_totals(), SessionCounters::default());
}

#[test]
fn orders_are_taken_in_market_hours_and_expire_at_their_end() {
    let mut x = Exchange::new(&exchange_config()).unwrap();
    let mut g = Generator::new(GeneratorConfig::new(5, 3)).unwrap();
    let mut out = Collect::default();
    let s = x.open_session().unwrap();
    // Before Start of Market Hours (the first three system events).
    for _ in 0..2 {
        x.handle_generated(&g.next_message().unwrap(), &mut out);
    }
    x.handle_request(s, &enter(1, b'B', 100, 1_000_000, b'0'), 0, &mut out);
    assert_eq!(
        rejected(&out.take().1),
        Some(RejectReason::DestinationClosed)
    );
    while !g.in_flow() {
        x.handle_generated(&g.next_message().unwrap(), &mut out);
    }
    out.take();
    x.handle_request(s, &enter(2, b'B', 100, 1_000_000, b'0'), 0, &mut out);
    x.handle_request(
        s,
        &Request::Enter(EnterOrder {
            display: b'N',
            ..enter_fields(3)
        }),
        0,
        &mut out,
    );
    let r2 = x.client_order(s, 2).unwrap().order_ref;
    out.take();
    g.finish();
    while let Some(m) = g.next_message() {
        x.handle_generated(&m, &mut out);
    }
    let (itch, ev) = out.take();
    // The three end events, and a delete of the visible order after
    // End of Market Hours.
    let types: Vec<u8> = itch.iter().map(Message::msg_type).collect();
    assert_eq!(types, b"SDSS");
    assert!(matches!(itch[1], Message::OrderDelete(d) if d.order_ref == r2));
    assert_eq!(
        ev,
        [
            (
                s,
                OrderEvent::Canceled {
                    user_ref_num: 2,
                    decrement: 100,
                    reason: CancelReason::Timeout
                }
            ),
            (
                s,
                OrderEvent::Canceled {
                    user_ref_num: 3,
                    decrement: 100,
                    reason: CancelReason::Timeout
                }
            ),
        ]
    );
    assert_eq!(x.engine().live_orders(), 0);
    x.handle_request(s, &enter(4, b'B', 100, 1_000_000, b'0'), 0, &mut out);
    assert_eq!(
        rejected(&out.take().1),
        Some(RejectReason::DestinationClosed)
    );
}

#[test]
fn a_halt_rejects_replaces_and_keeps_the_order() {
    let (mut x, _, s, mut out) = started();
    let locate = x.locate(AAPL).unwrap();
    x.handle_request(s, &enter(1, b'B', 100, 1_000_000, b'0'), 0, &mut out);
    x.handle_generated(
        &trading_action(locate, codes::trading_state::PAUSED),
        &mut out,
    );
    out.take();
    let replace = ReplaceOrder {
        intermarket_sweep: b'N',
        orig_user_ref_num: 1,
        user_ref_num: 2,
        quantity: 100,
        price: 1_000_100,
        time_in_force: b'0',
        display: b'Y',
        cl_ord_id: crate::orders::ClOrdId([b' '; 14]),
    };
    x.handle_request(s, &Request::Replace(replace), 0, &mut out);
    let (itch, ev) = out.take();
    assert_eq!(rejected(&ev), Some(RejectReason::Halted));
    assert!(itch.is_empty());
    assert_eq!(x.client_order(s, 1).unwrap().price, 1_000_000);
    // A cancel is still taken.
    x.handle_request(
        s,
        &Request::Cancel(CancelOrder {
            user_ref_num: 1,
            quantity: 0,
        }),
        0,
        &mut out,
    );
    assert!(matches!(out.take().0[..], [Message::OrderDelete(_)]));
}

// ------------------------------------------- the engine against a model

mod model {
    use proptest::prelude::*;

    use super::*;

    /// A naive price-time book: a list, searched in full every time.
    #[derive(Default)]
    struct Naive {
        /// (id, side, price, shares, arrival)
        orders: Vec<(u64, Side, u32, u32, u64)>,
        arrival: u64,
    }

    impl Naive {
        fn enter(
            &mut self,
            id: u64,
            side: Side,
            price: u32,
            mut qty: u32,
            rest: bool,
        ) -> Vec<(u64, u32, u32, u32)> {
            let mut fills = Vec::new();
            while qty > 0 {
                let best = self
                    .orders
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.1 != side && crosses(side, price, o.2))
                    .min_by_key(|(_, o)| {
                        (
                            if side == Side::Buy {
                                o.2
                            } else {
                                u32::MAX - o.2
                            },
                            o.4,
                        )
                    })
                    .map(|(i, _)| i);
                let Some(i) = best else { break };
                let o = &mut self.orders[i];
                let q = qty.min(o.3);
                o.3 -= q;
                qty -= q;
                fills.push((o.0, o.2, q, o.3));
                if o.3 == 0 {
                    self.orders.remove(i);
                }
            }
            if rest && qty > 0 {
                self.arrival += 1;
                self.orders.push((id, side, price, qty, self.arrival));
            }
            fills
        }

        /// Bids then asks, best price first, oldest first.
        fn book(&self) -> Vec<(u64, Side, u32, u32)> {
            let mut v = self.orders.clone();
            v.sort_by_key(|o| {
                (
                    o.1 == Side::Sell,
                    if o.1 == Side::Buy {
                        u32::MAX - o.2
                    } else {
                        o.2
                    },
                    o.4,
                )
            });
            v.into_iter().map(|o| (o.0, o.1, o.2, o.3)).collect()
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Enter(bool, u32, u32, bool),
        Cancel(u64),
        Reduce(u64, u32),
        Replace(u64, u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<bool>(), 95u32..106, 1u32..500, proptest::bool::weighted(0.8))
                .prop_map(|(b, p, q, r)| Op::Enter(b, p * 100, q, r)),
            2 => (0u64..60).prop_map(Op::Cancel),
            1 => (0u64..60, 0u32..300).prop_map(|(i, q)| Op::Reduce(i, q)),
            1 => (0u64..60, 95u32..106, 1u32..500).prop_map(|(i, p, q)| Op::Replace(i, p * 100, q)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Every fill (maker, price, quantity, maker's rest) and the final
        /// queues equal the naive model's.
        #[test]
        fn the_engine_matches_a_naive_price_time_book(ops in proptest::collection::vec(op(), 1..200)) {
            let mut e = engine();
            let mut m = Naive::default();
            let mut next = 1u64;
            for op in ops {
                let mut fills = Vec::new();
                let mut ev = |f: &Fill| fills.push((f.maker, f.price, f.quantity, f.maker_left));
                let want = match op {
                    Op::Enter(buy, p, q, rest) => {
                        let side = if buy { Side::Buy } else { Side::Sell };
                        next += 1;
                        e.enter(3, next, 0, side, p, q, rest, &mut ev).unwrap();
                        m.enter(next, side, p, q, rest)
                    }
                    Op::Cancel(i) => {
                        let got = e.cancel(i, &mut ev).map(|r| r.quantity);
                        let pos = m.orders.iter().position(|o| o.0 == i);
                        prop_assert_eq!(got, pos.map(|k| m.orders.remove(k).3));
                        Vec::new()
                    }
                    Op::Reduce(i, by) => {
                        let got = e.reduce(i, by, &mut ev);
                        let want = m.orders.iter().position(|o| o.0 == i).map(|k| {
                            let left = m.orders[k].3.saturating_sub(by);
                            if left == 0 { m.orders.remove(k); } else { m.orders[k].3 = left; }
                            left
                        });
                        prop_assert_eq!(got, want);
                        Vec::new()
                    }
                    Op::Replace(i, p, q) => {
                        next += 1;
                        let got = e.replace(i, next, 0, p, q, true, &mut ev);
                        match m.orders.iter().position(|o| o.0 == i) {
                            Some(k) => {
                                let old = m.orders.remove(k);
                                prop_assert_eq!(got.map(|(r, _)| r.quantity), Some(old.3));
                                m.enter(next, old.1, p, q, true)
                            }
                            None => {
                                prop_assert!(got.is_none());
                                Vec::new()
                            }
                        }
                    }
                };
                prop_assert_eq!(fills, want);
                let got: Vec<(u64, Side, u32, u32)> = e.orders(3).map(|r| (r.id, r.side, r.price, r.quantity)).collect();
                prop_assert_eq!(got, m.book());
                e.check_invariants().map_err(TestCaseError::fail)?;
            }
        }
    }
}
