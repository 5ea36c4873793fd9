//! The trader engine end to end, sans-IO: scripted top-of-book sequences
//! through the sample strategies, risk refusals with their reasons and
//! counters, the kill switch, position and P&L from scripted fills, the
//! order accounting, UserRefNums across a restart, and a property test of
//! random event sequences.
//!
//! Prices are grouped as dollars and ten-thousandths: 10_0500 is $10.0500.

#![allow(clippy::inconsistent_digit_grouping)]

#[path = "support/trading.rs"]
mod trading;

use hftnet_trade::book::TradingState;
use hftnet_trade::market::{TradeSource, TradeUpdate};
use hftnet_trade::orders::{
    CancelOrder, ClOrdId, EnterOrder, ExchangeEvent, OrderMsg, ReplaceOrder, TimeInForce, Trigger,
    UserRefNum,
};
use hftnet_trade::risk::{PriceBand, RiskConfig, RiskReject};
use hftnet_trade::strategy::{
    Ctx, Intent, Intents, Maker, MakerConfig, OrderUpdate, Strategy, Taker, TakerConfig, TopEvent,
    TradeEvent, UpdateKind,
};
use hftnet_trade::trader::{OUTBOX_CAP, Outbox, Trader, TraderConfig};
use hftnet_wire::itch50::{Price4, Side, Stock};
use proptest::prelude::{ProptestConfig, any, prop_oneof, proptest};
use proptest::strategy::Strategy as PropStrategy;
use trading::{InstantExchange, sym, update};

const T0: u64 = 1_000_000_000;

fn loose_risk() -> RiskConfig {
    RiskConfig {
        max_order_qty: 10_000,
        max_notional_dollars: 10_000_000,
        max_position: 100_000,
        max_total_position: 1_000_000,
        price_band: PriceBand::Bps(1_000),
        orders_per_sec: 1_000_000,
        burst: 1_000_000,
        max_open_orders: 1_024,
        duplicate_window_ns: 0,
    }
}

/// A trader on `symbols`, UserRefNums restored and persisted.
fn trader<S: Strategy>(
    symbols: &[&str],
    risk: RiskConfig,
    make: impl FnOnce(&[Stock]) -> S,
) -> Trader<S> {
    let cfg = TraderConfig {
        symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
        risk,
        ref_block: 64,
    };
    let table = cfg.symbol_table().unwrap();
    let mut t = Trader::new(cfg, make(&table)).unwrap();
    persist(&mut t);
    t
}

fn persist<S: Strategy>(t: &mut Trader<S>) -> Option<u32> {
    let m = t.refs_mut().poll_persist()?;
    t.refs_mut().confirm_persisted(m);
    Some(m)
}

/// Records every order update; emits nothing by itself.
#[derive(Debug, Default)]
struct Recorder {
    updates: Vec<OrderUpdate>,
}

impl Strategy for Recorder {
    fn on_top(&mut self, _: &TopEvent, _: &Ctx<'_>, _: &mut Intents) {}
    fn on_order(&mut self, u: &OrderUpdate) {
        self.updates.push(*u);
    }
}

fn trig(seq: u64) -> Trigger {
    Trigger {
        seq,
        rx_ns: T0 + seq,
    }
}

fn enter(slot: u16, side: Side, price: u32, quantity: u32) -> Intent {
    Intent::Enter {
        slot,
        side,
        price: Price4::from_raw(price),
        quantity,
        time_in_force: TimeInForce::Day,
        tag: 7,
        trigger: trig(1),
    }
}

fn replace(n: u32, price: u32, quantity: u32) -> Intent {
    Intent::Replace {
        user_ref_num: UserRefNum(n),
        price: Price4::from_raw(price),
        quantity,
        trigger: trig(2),
    }
}

fn cancel(n: u32) -> Intent {
    Intent::Cancel {
        user_ref_num: UserRefNum(n),
        trigger: Trigger::NONE,
    }
}

fn enter_msg(m: &OrderMsg) -> EnterOrder {
    match m {
        OrderMsg::Enter(o, _) => *o,
        other => panic!("expected an enter, got {other:?}"),
    }
}

fn replace_msg(m: &OrderMsg) -> ReplaceOrder {
    match m {
        OrderMsg::Replace(o, _) => *o,
        other => panic!("expected a replace, got {other:?}"),
    }
}

fn cancel_refs(out: &Outbox) -> Vec<u32> {
    out.as_slice()
        .iter()
        .filter_map(|m| match m {
            OrderMsg::Cancel(CancelOrder { user_ref_num, .. }, _) => Some(user_ref_num.0),
            _ => None,
        })
        .collect()
}

#[test]
fn taker_hits_and_lifts_on_n_tick_moves() {
    let cfg = TakerConfig {
        symbols: vec!["AAPL".into()],
        ticks: 2,
        tick: 100,
        quantity: 100,
        cooldown_ns: 1_000_000,
    };
    let mut t = trader(&["AAPL", "MSFT"], loose_risk(), |s| {
        Taker::new(cfg, s).unwrap()
    });
    let mut ex = InstantExchange::new(16);
    let mut out = Outbox::default();
    let mut now = T0;
    let mut step = |t: &mut Trader<Taker>, seq: u64, now: u64, u| {
        t.handle_top(&u, trig(seq), now, &mut out);
        let msgs = out.as_slice().to_vec();
        ex.settle(t, &mut out);
        msgs
    };
    assert!(step(&mut t, 1, now, update(1, "AAPL", 10_0000, 10_0200)).is_empty());
    // One tick up: not enough.
    assert!(step(&mut t, 2, now, update(1, "AAPL", 10_0100, 10_0200)).is_empty());
    // Two ticks above the low: lift the offer.
    let m = step(&mut t, 3, now, update(1, "AAPL", 10_0200, 10_0300));
    assert_eq!(m.len(), 1);
    let o = enter_msg(&m[0]);
    assert_eq!(
        (o.side, o.price.raw(), o.quantity, o.time_in_force),
        (Side::Buy, 10_0300, 100, TimeInForce::Ioc)
    );
    assert_eq!(o.symbol.0, sym("AAPL"));
    assert_eq!(o.user_ref_num, UserRefNum(1));
    assert_eq!(&o.cl_ord_id.0, b"3             ");
    assert_eq!(m[0].trigger(), trig(3));
    assert_eq!(t.position(0).unwrap().shares(), 100);
    // The offer falls three ticks during the cooldown: nothing.
    now += 500_000;
    assert!(step(&mut t, 4, now, update(1, "AAPL", 9_9900, 10_0000)).is_empty());
    // After it, the move still stands: hit the bid.
    now += 600_000;
    let m = step(&mut t, 5, now, update(1, "AAPL", 9_9900, 10_0000));
    assert_eq!(m.len(), 1);
    let o = enter_msg(&m[0]);
    assert_eq!((o.side, o.price.raw()), (Side::Sell, 9_9900));
    assert_eq!(o.cl_ord_id.trigger_seq(), Some(5));
    assert_eq!(t.position(0).unwrap().shares(), 0);
    // MSFT is traded but not the taker's; NVDA is not traded at all.
    now += 10_000_000;
    assert!(step(&mut t, 6, now, update(2, "MSFT", 50_0000, 50_0100)).is_empty());
    assert!(step(&mut t, 7, now, update(2, "MSFT", 51_0000, 51_0100)).is_empty());
    assert!(step(&mut t, 8, now, update(3, "NVDA", 51_0000, 51_0100)).is_empty());
    // A halted AAPL does not trade, however far it moves.
    let mut halted = update(1, "AAPL", 12_0000, 12_0100);
    halted.state = Some(TradingState::Halted);
    assert!(step(&mut t, 9, now, halted).is_empty());
    assert_eq!(t.strategy().fired(), 2);
    let c = t.counters();
    assert_eq!((c.tops, c.tops_ignored), (8, 1));
    assert_eq!((c.enters_sent, c.accepted, c.executions), (2, 2, 2));
    assert_eq!(t.open_orders(), 0);
    t.check_invariants().unwrap();
}

#[test]
fn maker_quotes_around_the_bbo_and_follows_it() {
    let cfg = MakerConfig {
        symbols: vec![],
        tick: 100,
        width_ticks: 4,
        size: 100,
        max_position: 200,
        skew_ticks: 1,
    };
    let mut t = trader(&["AAPL"], loose_risk(), |s| Maker::new(cfg, s).unwrap());
    let mut ex = InstantExchange::new(16);
    let mut out = Outbox::default();
    let top = |t: &mut Trader<Maker>, out: &mut Outbox, seq, bid, ask| {
        t.handle_top(&update(1, "AAPL", bid, ask), trig(seq), T0, out);
        out.as_slice().to_vec()
    };
    // Mid 10.01, width 4 ticks: 9.99 / 10.03.
    let m = top(&mut t, &mut out, 1, 10_0000, 10_0200);
    assert_eq!(m.len(), 2);
    let (b, a) = (enter_msg(&m[0]), enter_msg(&m[1]));
    assert_eq!(
        (b.side, b.price.raw(), b.quantity),
        (Side::Buy, 9_9900, 100)
    );
    assert_eq!(
        (a.side, a.price.raw(), a.quantity),
        (Side::Sell, 10_0300, 100)
    );
    assert_eq!(b.time_in_force, TimeInForce::Day);
    // Unanswered: the maker waits.
    out.clear();
    assert!(top(&mut t, &mut out, 2, 10_0100, 10_0300).is_empty());
    for m in &m {
        ex.answer(m, |ev| t.handle_exchange(ev));
    }
    let bid = t.strategy().quote(0, Side::Buy).unwrap();
    assert_eq!((bid.0, bid.1.raw(), bid.2), (UserRefNum(1), 9_9900, 100));
    // Same top: nothing to do.
    assert!(top(&mut t, &mut out, 3, 10_0000, 10_0200).is_empty());
    // Up two ticks: both replaced, 10.01 / 10.05.
    let m = top(&mut t, &mut out, 4, 10_0200, 10_0400);
    let (rb, ra) = (replace_msg(&m[0]), replace_msg(&m[1]));
    assert_eq!(
        (
            rb.orig_user_ref_num.0,
            rb.user_ref_num.0,
            rb.price.raw(),
            rb.quantity
        ),
        (1, 3, 10_0100, 100)
    );
    assert_eq!(
        (ra.orig_user_ref_num.0, ra.user_ref_num.0, ra.price.raw()),
        (2, 4, 10_0500)
    );
    assert_eq!(rb.cl_ord_id, ClOrdId::from_trigger(trig(4)));
    ex.settle(&mut t, &mut out);
    assert_eq!(t.strategy().quote(0, Side::Buy).unwrap().0, UserRefNum(3));
    // The bid is filled: long 100, quotes skew down one tick.
    let fill = ex.execute(UserRefNum(3), 100, Price4::from_raw(10_0100));
    t.handle_exchange(&fill.unwrap());
    assert_eq!(t.strategy().quote(0, Side::Buy), None);
    let m = top(&mut t, &mut out, 5, 10_0200, 10_0400);
    let b = enter_msg(&m[0]);
    let ra = replace_msg(&m[1]);
    assert_eq!(
        (b.side, b.price.raw(), b.user_ref_num.0),
        (Side::Buy, 10_0000, 5)
    );
    assert_eq!((ra.orig_user_ref_num.0, ra.price.raw()), (4, 10_0400));
    ex.settle(&mut t, &mut out);
    // Filled again: long 200 = the maximum, so no bid any more.
    let fill = ex.execute(UserRefNum(5), 100, Price4::from_raw(10_0000));
    t.handle_exchange(&fill.unwrap());
    let m = top(&mut t, &mut out, 6, 10_0200, 10_0400);
    assert_eq!(m.len(), 1);
    let ra = replace_msg(&m[0]);
    assert_eq!((ra.orig_user_ref_num.0, ra.price.raw()), (6, 10_0300));
    ex.settle(&mut t, &mut out);
    // Halted: the offer is pulled.
    let mut halted = update(1, "AAPL", 10_0200, 10_0400);
    halted.state = Some(TradingState::Halted);
    t.handle_top(&halted, trig(7), T0, &mut out);
    assert_eq!(cancel_refs(&out), [7]);
    ex.settle(&mut t, &mut out);
    assert_eq!(t.strategy().quote(0, Side::Sell), None);
    assert_eq!(t.open_orders(), 0);
    // Bought 100 at 10.01 and 100 at 10.00, marked at the bid 10.02.
    let p = t.position(0).unwrap();
    assert_eq!(p.shares(), 200);
    assert_eq!(p.realized(), 0);
    assert_eq!(
        t.unrealized(),
        Some(200 * 10_0200 - (100 * 10_0100 + 100 * 10_0000))
    );
    let a = t.accounting();
    assert_eq!((a.sent, a.accepted, a.rejected, a.pending), (7, 7, 0, 0));
    t.check_invariants().unwrap();
}

/// A trader on AAPL and MSFT with tops, a recorder strategy.
fn manual(risk: RiskConfig) -> (Trader<Recorder>, Outbox) {
    let mut t = trader(&["AAPL", "MSFT"], risk, |_| Recorder::default());
    let mut out = Outbox::default();
    t.handle_top(&update(1, "AAPL", 10_0000, 10_0100), trig(1), T0, &mut out);
    t.handle_top(&update(2, "MSFT", 50_0000, 50_0100), trig(2), T0, &mut out);
    assert!(out.as_slice().is_empty());
    (t, out)
}

#[test]
fn kill_switch_cancels_every_open_order_and_refuses_new_ones() {
    let (mut t, mut out) = manual(loose_risk());
    let mut ex = InstantExchange::new(16);
    for i in [
        enter(0, Side::Buy, 10_0000, 100),
        enter(0, Side::Sell, 10_0500, 100),
        enter(1, Side::Buy, 50_0000, 10),
    ] {
        t.submit(&i, T0, &mut out).unwrap();
    }
    ex.settle(&mut t, &mut out);
    // One enter unanswered, one replace in flight.
    t.submit(&enter(1, Side::Sell, 50_0200, 10), T0, &mut out)
        .unwrap();
    t.submit(&replace(1, 9_9900, 100), T0, &mut out).unwrap();
    assert_eq!(out.as_slice().len(), 2);
    assert_eq!(t.trip_kill_switch(&mut out), 0);
    assert!(t.killed());
    let mut cancels = cancel_refs(&out);
    cancels.sort_unstable();
    assert_eq!(
        cancels,
        [1, 2, 3, 4, 5],
        "both numbers of the replaced order"
    );
    assert_eq!(t.counters().cancels_sent, 5);
    // New orders are refused, and counted.
    let e = t.submit(&enter(0, Side::Buy, 10_0000, 1), T0, &mut out);
    assert_eq!(e, Err(RiskReject::KillSwitch));
    assert_eq!(t.risk_counters().of(RiskReject::KillSwitch), 1);
    let last = t.strategy().updates.last().unwrap();
    assert_eq!(last.kind, UpdateKind::Refused(RiskReject::KillSwitch));
    assert!(last.done);
    // Nothing left to cancel.
    let n = out.as_slice().len();
    assert_eq!(t.cancel_all(&mut out), 0);
    assert_eq!(out.as_slice().len(), n);
    // The exchange takes the enter, the replace, then the cancels.
    ex.settle(&mut t, &mut out);
    assert_eq!(t.open_orders(), 0);
    let a = t.accounting();
    assert_eq!((a.sent, a.accepted, a.rejected, a.pending), (5, 5, 0, 0));
    assert_eq!(t.counters().unexpected, 0);
    t.check_invariants().unwrap();
}

/// A cancel lost with a connection (it never reached the exchange) is
/// sent again after the next login — but not one about to go out from the
/// held cancels, and not one the exchange answered; an outbox that fills
/// up hands back where to go on.
#[test]
fn cancels_never_answered_are_sent_again() {
    let (mut t, mut out) = manual(loose_risk());
    let mut ex = InstantExchange::new(16);
    for i in [
        enter(0, Side::Buy, 10_0000, 100),
        enter(0, Side::Sell, 10_0500, 100),
        enter(1, Side::Buy, 50_0000, 10),
    ] {
        t.submit(&i, T0, &mut out).unwrap();
    }
    ex.settle(&mut t, &mut out);
    assert_eq!(t.open_orders(), 3);
    // Cancels of 1 and 2 leave and are lost; the cancel of 3 is held.
    t.submit(&cancel(1), T0, &mut out).unwrap();
    t.submit(&cancel(2), T0, &mut out).unwrap();
    t.submit(&cancel(3), T0, &mut out).unwrap();
    let held: Vec<OrderMsg> = out.as_slice()[2..].to_vec();
    out.clear();
    // Nothing unanswered to redo from the strategy's side: it may not
    // cancel an order whose cancel is out.
    assert_eq!(
        t.submit(&cancel(1), T0, &mut out),
        Err(RiskReject::OrderBusy)
    );
    assert_eq!(t.recancel_unanswered(&mut out, 0, &held), None);
    assert_eq!(cancel_refs(&out), [1, 2], "the lost ones, not the held one");
    assert_eq!(t.counters().cancels_resent, 2);
    // The exchange takes them: 1 and 2 answered, nothing of theirs to redo;
    // 3 still waits for its held cancel (redone only once not held).
    ex.settle(&mut t, &mut out);
    assert_eq!(t.open_orders(), 1);
    assert_eq!(t.recancel_unanswered(&mut out, 0, &held), None);
    assert!(out.as_slice().is_empty());
    assert_eq!(t.recancel_unanswered(&mut out, 0, &[]), None);
    assert_eq!(cancel_refs(&out), [3]);
    ex.settle(&mut t, &mut out);
    assert_eq!(t.open_orders(), 0);
    t.check_invariants().unwrap();
}

#[test]
fn a_full_outbox_hands_back_where_the_recancel_goes_on() {
    let (mut t, mut out) = manual(loose_risk());
    let mut ex = InstantExchange::new(128);
    let n = OUTBOX_CAP as u32 + 6;
    for k in 0..n {
        persist(&mut t);
        t.submit(&enter(0, Side::Buy, 9_9000 + k, 1), T0, &mut out)
            .unwrap();
        ex.settle(&mut t, &mut out);
    }
    // Every cancel leaves and is lost.
    let mut left = t.trip_kill_switch(&mut out);
    while left > 0 {
        out.clear();
        left = t.cancel_all(&mut out);
    }
    out.clear();
    let mut resent = 0;
    let mut from = Some(0);
    while let Some(f) = from {
        out.clear();
        from = t.recancel_unanswered(&mut out, f, &[]);
        resent += cancel_refs(&out).len();
        assert!(from.is_none() || out.room() == 0, "stops only when full");
    }
    assert_eq!(resent as u32, n);
    t.check_invariants().unwrap();
}

#[test]
fn kill_switch_with_more_open_orders_than_the_outbox_holds() {
    let (mut t, mut out) = manual(loose_risk());
    let mut ex = InstantExchange::new(128);
    let n = OUTBOX_CAP as u32 + 6;
    for k in 0..n {
        persist(&mut t);
        t.submit(&enter(0, Side::Buy, 9_9000 + k, 1), T0, &mut out)
            .unwrap();
        ex.settle(&mut t, &mut out);
    }
    assert_eq!(t.open_orders(), n);
    assert_eq!(t.trip_kill_switch(&mut out), 6);
    assert_eq!(out.room(), 0);
    ex.settle(&mut t, &mut out);
    assert_eq!(t.open_orders(), 6);
    assert_eq!(t.cancel_all(&mut out), 0);
    assert_eq!(cancel_refs(&out).len(), 6);
    ex.settle(&mut t, &mut out);
    assert_eq!(t.open_orders(), 0);
    t.check_invariants().unwrap();
}

#[test]
fn trader_refusals_have_reasons_and_counters() {
    let risk = RiskConfig {
        max_open_orders: 100,
        ..loose_risk()
    };
    let (mut t, mut out) = manual(risk);
    let refused = |t: &mut Trader<Recorder>, out: &mut Outbox, i: Intent, r: RiskReject| {
        let before = *t.risk_counters();
        assert_eq!(t.submit(&i, T0, out), Err(r));
        let after = *t.risk_counters();
        for x in RiskReject::ALL {
            assert_eq!(
                after.of(x),
                before.of(x) + u64::from(x == r),
                "{}",
                x.name()
            );
        }
    };
    refused(
        &mut t,
        &mut out,
        enter(5, Side::Buy, 10_0000, 1),
        RiskReject::UnknownSymbol,
    );
    refused(
        &mut t,
        &mut out,
        replace(999, 10_0000, 1),
        RiskReject::UnknownOrder,
    );
    refused(&mut t, &mut out, cancel(999), RiskReject::UnknownOrder);
    refused(
        &mut t,
        &mut out,
        enter(0, Side::Buy, 10_0000, 0),
        RiskReject::Quantity,
    );
    // Risk's own checks run through the trader (one is enough here; each
    // is tested in `risk`).
    t.submit(&enter(0, Side::Buy, 10_0000, 100), T0, &mut out)
        .unwrap();
    t.submit(&replace(1, 9_9900, 100), T0, &mut out).unwrap();
    refused(
        &mut t,
        &mut out,
        replace(1, 9_9800, 100),
        RiskReject::OrderBusy,
    );
    t.submit(&cancel(1), T0, &mut out).unwrap();
    refused(&mut t, &mut out, cancel(1), RiskReject::OrderBusy);
    // The outbox full: backpressure.
    let mut k = 0;
    while out.room() > 0 {
        t.submit(&enter(1, Side::Sell, 50_1000 + k, 1), T0, &mut out)
            .unwrap();
        k += 1;
    }
    refused(
        &mut t,
        &mut out,
        enter(1, Side::Sell, 50_0500, 1),
        RiskReject::Backpressure,
    );
    // The strategy heard of every refusal of its own orders, with the reason.
    let refusals: Vec<_> = t
        .strategy()
        .updates
        .iter()
        .filter_map(|u| match u.kind {
            UpdateKind::Refused(r) => Some((r, u.done)),
            _ => None,
        })
        .collect();
    assert_eq!(
        refusals,
        [
            (RiskReject::UnknownSymbol, true),
            (RiskReject::Quantity, true),
            (RiskReject::OrderBusy, false),
            (RiskReject::OrderBusy, false),
            (RiskReject::Backpressure, true),
        ]
    );
    t.check_invariants().unwrap();
}

#[test]
fn no_order_leaves_without_a_persisted_user_ref_num() {
    let cfg = TraderConfig {
        symbols: vec!["AAPL".into()],
        risk: loose_risk(),
        ref_block: 1,
    };
    let mut t = Trader::new(cfg, Recorder::default()).unwrap();
    let mut out = Outbox::default();
    t.handle_top(&update(1, "AAPL", 10_0000, 10_0100), trig(1), T0, &mut out);
    let e = t.submit(&enter(0, Side::Buy, 10_0000, 1), T0, &mut out);
    assert_eq!(e, Err(RiskReject::NoUserRefNum), "nothing persisted yet");
    assert_eq!(persist(&mut t), Some(1));
    t.submit(&enter(0, Side::Buy, 10_0000, 2), T0, &mut out)
        .unwrap();
    let e = t.submit(&enter(0, Side::Buy, 10_0000, 3), T0, &mut out);
    assert_eq!(e, Err(RiskReject::NoUserRefNum));
    assert_eq!(persist(&mut t), Some(2));
    t.submit(&enter(0, Side::Buy, 10_0000, 3), T0, &mut out)
        .unwrap();
    assert_eq!(t.risk_counters().of(RiskReject::NoUserRefNum), 2);
    let refs: Vec<u32> = out
        .as_slice()
        .iter()
        .map(|m| enter_msg(m).user_ref_num.0)
        .collect();
    assert_eq!(refs, [1, 2]);
}

#[test]
fn orders_are_refused_while_the_session_is_down_and_cancels_still_go() {
    let cfg = TraderConfig {
        symbols: vec!["AAPL".into()],
        risk: loose_risk(),
        ref_block: 16,
    };
    let mut t = Trader::new(cfg, Recorder::default()).unwrap();
    persist(&mut t);
    let mut out = Outbox::default();
    t.handle_top(&update(1, "AAPL", 10_0000, 10_0100), trig(1), T0, &mut out);
    t.submit(&enter(0, Side::Buy, 10_0000, 5), T0, &mut out)
        .unwrap();
    out.clear();
    t.set_connected(false);
    assert!(!t.connected());
    let e = t.submit(&enter(0, Side::Buy, 10_0000, 6), T0, &mut out);
    assert_eq!(e, Err(RiskReject::Disconnected));
    let e = t.submit(&replace(1, 10_0000, 7), T0, &mut out);
    assert_eq!(e, Err(RiskReject::Disconnected));
    assert!(out.as_slice().is_empty(), "nothing left while down");
    t.submit(&cancel(1), T0, &mut out).unwrap();
    assert_eq!(cancel_refs(&out), [1]);
    assert_eq!(t.risk_counters().of(RiskReject::Disconnected), 2);
    out.clear();
    t.set_connected(true);
    t.submit(&enter(0, Side::Buy, 10_0000, 6), T0, &mut out)
        .unwrap();
    assert_eq!(enter_msg(&out.as_slice()[0]).user_ref_num.0, 2);
    t.check_invariants().unwrap();
}

#[test]
fn user_ref_nums_stay_strictly_increasing_across_a_restart() {
    let mut stored = 0u32; // what the caller keeps on disk
    let mut sent = Vec::new();
    for _run in 0..3 {
        let cfg = TraderConfig {
            symbols: vec!["AAPL".into()],
            risk: loose_risk(),
            ref_block: 4,
        };
        let mut t = Trader::new(cfg, Recorder::default()).unwrap();
        t.refs_mut().restore(stored);
        let mut out = Outbox::default();
        t.handle_top(&update(1, "AAPL", 10_0000, 10_0100), trig(1), T0, &mut out);
        for k in 0..7 {
            if let Some(m) = persist(&mut t) {
                stored = m;
            }
            t.submit(&enter(0, Side::Buy, 10_0000, 1 + k), T0, &mut out)
                .unwrap();
        }
        sent.extend(out.as_slice().iter().map(|m| enter_msg(m).user_ref_num.0));
        assert!(stored >= t.refs().last(), "every number used was persisted");
        // The trader "crashes" here: nothing but `stored` survives.
    }
    assert_eq!(sent.len(), 21);
    assert!(sent.windows(2).all(|w| w[0] < w[1]), "{sent:?}");
}

#[test]
fn position_and_pnl_exact_on_scripted_fills() {
    let (mut t, mut out) = manual(loose_risk());
    t.submit(&enter(0, Side::Buy, 10_0000, 300), T0, &mut out)
        .unwrap();
    let n1 = UserRefNum(1);
    let exec = |n, quantity, price| ExchangeEvent::Executed {
        user_ref_num: n,
        quantity,
        price: Price4::from_raw(price),
        liquidity: hftnet_trade::orders::LiquidityFlag::Added,
        match_number: 1,
    };
    t.handle_exchange(&ExchangeEvent::Accepted {
        user_ref_num: n1,
        side: Side::Buy,
        quantity: 300,
        symbol: Stock(sym("AAPL")),
        price: Price4::from_raw(10_0000),
        order_ref: 1,
        live: true,
    });
    t.handle_exchange(&exec(n1, 100, 10_0000));
    t.handle_exchange(&exec(n1, 200, 9_9900));
    assert_eq!(t.open_orders(), 0);
    assert_eq!(t.exposure(0).unwrap().position, 300);
    // Sell 100 at 10.10 against an average cost of 9.99333…
    t.submit(&enter(0, Side::Sell, 10_0100, 100), T0, &mut out)
        .unwrap();
    t.handle_exchange(&exec(UserRefNum(2), 100, 10_1000));
    let p = *t.position(0).unwrap();
    assert_eq!(p.shares(), 200);
    // The basis removed is 2998.0000 × 100 / 300 = 999.3333 (truncated).
    assert_eq!(p.realized(), 1_010_0000 - 999_3333);
    assert_eq!(p.basis(), 2_998_0000 - 999_3333);
    // Marked at a bid of 10.05.
    t.handle_top(&update(1, "AAPL", 10_0500, 10_0600), trig(3), T0, &mut out);
    assert_eq!(
        t.unrealized(),
        Some(200 * 10_0500 - (2_998_0000 - 999_3333))
    );
    // Realized + unrealized is exactly the cash flow plus the marked position.
    let total = t.realized() + t.unrealized().unwrap();
    assert_eq!(total, p.cash() + 200 * 10_0500);
    assert_eq!(total, 22_0000);
    // MSFT: short 10 at 50.00, then an overfill of 5 more (counted, but
    // the position is the exchange's word).
    t.submit(&enter(1, Side::Sell, 50_0000, 10), T0, &mut out)
        .unwrap();
    t.handle_exchange(&exec(UserRefNum(3), 15, 50_0000));
    assert_eq!(t.counters().overfills, 1);
    assert_eq!(t.position(1).unwrap().shares(), -15);
    assert_eq!(t.total_position(), 215);
    // Short marked at the offer 50.01: −0.15.
    assert_eq!(
        t.position(1).unwrap().unrealized(t.top(1).unwrap()),
        Some(-15 * 100)
    );
    assert_eq!(t.counters().executed_shares, 415);
    t.check_invariants().unwrap();
}

#[test]
fn accounting_balances_through_rejects_voids_and_stray_messages() {
    let (mut t, mut out) = manual(loose_risk());
    let px = Price4::from_raw;
    // Enter rejected.
    t.submit(&enter(0, Side::Buy, 10_0000, 100), T0, &mut out)
        .unwrap();
    t.handle_exchange(&ExchangeEvent::Rejected {
        user_ref_num: UserRefNum(1),
        reason: hftnet_trade::orders::RejectReason::InvalidDisplay,
    });
    assert_eq!(t.open_orders(), 0);
    let last = *t.strategy().updates.last().unwrap();
    assert_eq!(
        (last.kind, last.done),
        (
            UpdateKind::Rejected {
                reason: hftnet_trade::orders::RejectReason::InvalidDisplay
            },
            true
        )
    );
    // Enter accepted; its replace rejected: the original stays.
    t.submit(&enter(0, Side::Buy, 10_0000, 100), T0, &mut out)
        .unwrap();
    t.handle_exchange(&ExchangeEvent::Accepted {
        user_ref_num: UserRefNum(2),
        side: Side::Buy,
        quantity: 100,
        symbol: Stock(sym("AAPL")),
        price: px(10_0000),
        order_ref: 9,
        live: true,
    });
    t.submit(&replace(2, 9_9900, 200), T0, &mut out).unwrap();
    assert_eq!(
        t.exposure(0).unwrap().open_buy,
        200,
        "the larger of the two"
    );
    t.handle_exchange(&ExchangeEvent::Rejected {
        user_ref_num: UserRefNum(3),
        reason: hftnet_trade::orders::RejectReason::QuoteUnavailable,
    });
    let o: Vec<_> = t.orders().collect();
    assert_eq!(o, [(UserRefNum(2), 0, Side::Buy, px(10_0000), 100)]);
    assert_eq!(t.exposure(0).unwrap().open_buy, 100);
    // Another replace, but the original fills first: the replace is void.
    t.submit(&replace(2, 9_9900, 100), T0, &mut out).unwrap();
    t.handle_exchange(&ExchangeEvent::Executed {
        user_ref_num: UserRefNum(2),
        quantity: 100,
        price: px(10_0000),
        liquidity: hftnet_trade::orders::LiquidityFlag::Added,
        match_number: 5,
    });
    assert_eq!(t.open_orders(), 0);
    assert_eq!(t.counters().replaces_void, 1);
    // ... and a Replaced for it afterwards is stray.
    t.handle_exchange(&ExchangeEvent::Replaced {
        orig_user_ref_num: UserRefNum(2),
        user_ref_num: UserRefNum(4),
        quantity: 100,
        price: px(9_9900),
        order_ref: 10,
        live: true,
    });
    // An execution before any Accepted: accepted implicitly.
    t.submit(&enter(0, Side::Sell, 10_0100, 50), T0, &mut out)
        .unwrap();
    t.handle_exchange(&ExchangeEvent::Executed {
        user_ref_num: UserRefNum(5),
        quantity: 20,
        price: px(10_0100),
        liquidity: hftnet_trade::orders::LiquidityFlag::Added,
        match_number: 6,
    });
    // Stray messages: unknown numbers, a second Accepted.
    t.handle_exchange(&ExchangeEvent::Canceled {
        user_ref_num: UserRefNum(77),
        quantity: 1,
        reason: hftnet_trade::orders::CancelReason::UserRequested,
    });
    t.handle_exchange(&ExchangeEvent::Accepted {
        user_ref_num: UserRefNum(5),
        side: Side::Sell,
        quantity: 50,
        symbol: Stock(sym("AAPL")),
        price: px(10_0100),
        order_ref: 11,
        live: true,
    });
    t.handle_exchange(&ExchangeEvent::Rejected {
        user_ref_num: UserRefNum(5),
        reason: hftnet_trade::orders::RejectReason::QuoteUnavailable,
    });
    let a = t.accounting();
    assert_eq!((a.sent, a.accepted, a.rejected, a.pending), (5, 2, 3, 0));
    assert!(a.balanced());
    let c = t.counters();
    assert_eq!(c.unexpected, 4);
    assert_eq!(t.exposure(0).unwrap().open_sell, 30);
    assert_eq!(t.position(0).unwrap().shares(), 100 - 20);
    t.check_invariants().unwrap();
}

#[test]
fn bad_configs_are_refused_by_name() {
    let bad = |f: fn(&mut TraderConfig)| {
        let mut c = TraderConfig {
            symbols: vec!["AAPL".into()],
            ..TraderConfig::default()
        };
        f(&mut c);
        Trader::new(c, Recorder::default()).unwrap_err().to_string()
    };
    assert_eq!(
        bad(|c| c.symbols.clear()),
        "symbols: 0 symbols; accepted: 1..=4096"
    );
    assert!(bad(|c| c.symbols.push("AAPL".into())).contains("\"AAPL\" is listed twice"));
    assert!(
        bad(|c| c.symbols.push("TOOLONGSYM".into())).contains("\"TOOLONGSYM\" is not a symbol")
    );
    assert_eq!(
        bad(|c| c.ref_block = 0),
        "ref_block is 0; accepted: 1..=1000000"
    );
    assert!(bad(|c| c.risk.burst = 0).starts_with("risk.burst is 0"));
    let table = [Stock::new("AAPL").unwrap()];
    let e = Taker::new(
        TakerConfig {
            symbols: vec!["MSFT".into()],
            ..TakerConfig::default()
        },
        &table,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "taker.symbols: \"MSFT\" is not among the trader's symbols"
    );
    let e = Maker::new(
        MakerConfig {
            size: 0,
            ..MakerConfig::default()
        },
        &table,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "maker.size is 0; accepted: 1..=999999");
    let e = Taker::new(
        TakerConfig {
            ticks: 0,
            ..TakerConfig::default()
        },
        &table,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "taker.ticks is 0; accepted: 1..=10000");
    let c: TraderConfig =
        serde_json::from_str(r#"{"symbols": ["AAPL", "MSFT"], "risk": {"max_open_orders": 8}}"#)
            .unwrap();
    assert_eq!(c.risk.max_open_orders, 8);
    c.validate().unwrap();
}

/// Buys one share at the price of every trade it is told of.
#[derive(Debug, Default)]
struct TradeFollower {
    seen: Vec<(u16, u32, u64)>,
}

impl Strategy for TradeFollower {
    fn on_top(&mut self, _: &TopEvent, _: &Ctx<'_>, _: &mut Intents) {}
    fn on_trade(&mut self, ev: &TradeEvent, _: &Ctx<'_>, out: &mut Intents) {
        self.seen.push((ev.slot, ev.trade.price, ev.trigger.seq));
        out.push(Intent::Enter {
            slot: ev.slot,
            side: Side::Buy,
            price: Price4::from_raw(ev.trade.price),
            quantity: 1,
            time_in_force: TimeInForce::Ioc,
            tag: 0,
            trigger: ev.trigger,
        });
    }
}

#[test]
fn trades_reach_the_strategy_and_its_orders_carry_their_trigger() {
    let mut t = trader(&["AAPL", "MSFT"], loose_risk(), |_| {
        TradeFollower::default()
    });
    let mut out = Outbox::default();
    t.handle_top(&update(2, "MSFT", 50_0000, 50_0100), trig(1), T0, &mut out);
    let trade = |locate, symbol: &str, price| TradeUpdate {
        locate,
        symbol: Some(sym(symbol)),
        price,
        shares: 100,
        aggressor: Some(hftnet_trade::book::Side::Buy),
        match_number: 9,
        printable: true,
        source: TradeSource::Executed,
        timestamp_ns: 0,
    };
    t.handle_trade(&trade(2, "MSFT", 50_0100), trig(2), T0, &mut out);
    t.handle_trade(&trade(3, "NVDA", 1_0000), trig(3), T0, &mut out);
    t.handle_timer(T0, &mut out);
    assert_eq!(t.strategy().seen, [(1, 50_0100, 2)]);
    assert_eq!(t.counters().trades, 1);
    assert_eq!(out.as_slice().len(), 1);
    let o = enter_msg(&out.as_slice()[0]);
    assert_eq!((o.symbol.0, o.price.raw()), (sym("MSFT"), 50_0100));
    assert_eq!(o.cl_ord_id.trigger_seq(), Some(2));
    assert_eq!(out.as_slice()[0].trigger().rx_ns, T0 + 2);
}

// ---- property test ------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Top(u16, u32, u32),
    Enter(u16, bool, i32, u32, bool),
    Replace(usize, i32, u32),
    Cancel(usize),
    /// Answer the k-th unanswered message; the choice picks the outcome.
    Answer(usize, u8, u32),
    Exec(usize, u32),
    Stray(u8, u32, u32),
    Kill,
    Persist,
}

fn op() -> impl PropStrategy<Value = Op> {
    // Slots 0 and 1 are traded, 2 (NVDA) now and then is not.
    let slot = (0u16..20).prop_map(|x| if x < 19 { x % 2 } else { 2 });
    prop_oneof![
        3 => (slot.clone(), 9_9000u32..10_1000, 0u32..300).prop_map(|(s, b, w)| Op::Top(s, b, w)),
        4 => (slot, any::<bool>(), -150i32..150, 0u32..1_100, any::<bool>())
            .prop_map(|(s, b, p, q, i)| Op::Enter(s, b, p, q, i)),
        2 => (any::<usize>(), -300i32..300, 0u32..1_100).prop_map(|(k, p, q)| Op::Replace(k, p, q)),
        1 => any::<usize>().prop_map(Op::Cancel),
        6 => (any::<usize>(), any::<u8>(), 0u32..1_100).prop_map(|(k, c, q)| Op::Answer(k, c, q)),
        2 => (any::<usize>(), 0u32..400).prop_map(|(k, q)| Op::Exec(k, q)),
        1 => (any::<u8>(), 0u32..40, 0u32..1_500).prop_map(|(c, n, q)| Op::Stray(c, n, q)),
        2 => (0u8..40).prop_map(|x| if x == 0 { Op::Kill } else { Op::Persist }),
    ]
}

fn run_ops(ops: &[Op]) {
    let risk = RiskConfig {
        max_order_qty: 1_000,
        max_position: 3_000,
        max_total_position: 5_000,
        max_open_orders: 40,
        orders_per_sec: 100_000,
        burst: 20,
        duplicate_window_ns: 5_000,
        price_band: PriceBand::Bps(200),
        ..loose_risk()
    };
    let cfg = TraderConfig {
        symbols: vec!["AAPL".into(), "MSFT".into()],
        risk,
        ref_block: 8,
    };
    let mut t = Trader::new(cfg, Recorder::default()).unwrap();
    let mut out = Outbox::default();
    let mut unanswered: Vec<OrderMsg> = Vec::new();
    let mut all_sent: Vec<OrderMsg> = Vec::new();
    let mut now = T0;
    let names = ["AAPL", "MSFT", "NVDA"];
    for (k, op) in ops.iter().enumerate() {
        now += 1_000;
        let px = |base: u32, d: i32| Price4::from_raw(base.saturating_add_signed(d * 10));
        match *op {
            Op::Top(s, b, w) => {
                let u = update(s + 1, names[usize::from(s)], b, b + w);
                t.handle_top(&u, trig(k as u64 + 1), now, &mut out);
            }
            Op::Enter(s, buy, d, q, ioc) => {
                let side = if buy { Side::Buy } else { Side::Sell };
                let i = Intent::Enter {
                    slot: s,
                    side,
                    price: px(10_0000, d),
                    quantity: q,
                    time_in_force: if ioc {
                        TimeInForce::Ioc
                    } else {
                        TimeInForce::Day
                    },
                    tag: k as u32,
                    trigger: trig(k as u64 + 1),
                };
                let _ = t.submit(&i, now, &mut out);
            }
            Op::Replace(j, d, q) => {
                let open: Vec<_> = t.orders().collect();
                if let Some(o) = open.get(j % open.len().max(1)) {
                    let _ = t.submit(
                        &replace(o.0.0, o.3.raw().saturating_add_signed(d), q),
                        now,
                        &mut out,
                    );
                }
            }
            Op::Cancel(j) => {
                let open: Vec<_> = t.orders().collect();
                if let Some(o) = open.get(j % open.len().max(1)) {
                    let _ = t.submit(&cancel(o.0.0), now, &mut out);
                }
            }
            Op::Answer(j, c, q) => {
                if !unanswered.is_empty() {
                    let m = unanswered.remove(j % unanswered.len());
                    let ev = match m {
                        OrderMsg::Enter(o, _) if c % 4 == 0 => ExchangeEvent::Rejected {
                            user_ref_num: o.user_ref_num,
                            reason: hftnet_trade::orders::RejectReason::from_code(u16::from(c)),
                        },
                        OrderMsg::Enter(o, _) => ExchangeEvent::Accepted {
                            user_ref_num: o.user_ref_num,
                            side: o.side,
                            symbol: o.symbol,
                            quantity: if c % 5 == 0 { q } else { o.quantity },
                            price: o.price,
                            order_ref: k as u64,
                            live: c % 3 != 0,
                        },
                        OrderMsg::Replace(r, _) if c % 4 == 0 => ExchangeEvent::Rejected {
                            user_ref_num: r.user_ref_num,
                            reason: hftnet_trade::orders::RejectReason::QuoteUnavailable,
                        },
                        OrderMsg::Replace(r, _) => ExchangeEvent::Replaced {
                            orig_user_ref_num: r.orig_user_ref_num,
                            user_ref_num: r.user_ref_num,
                            quantity: if c % 5 == 0 { q } else { r.quantity },
                            price: r.price,
                            order_ref: k as u64,
                            live: c % 3 != 0,
                        },
                        OrderMsg::Cancel(x, _) => ExchangeEvent::Canceled {
                            user_ref_num: x.user_ref_num,
                            quantity: q,
                            reason: hftnet_trade::orders::CancelReason::UserRequested,
                        },
                    };
                    t.handle_exchange(&ev);
                }
            }
            Op::Exec(j, q) => {
                let open: Vec<_> = t.orders().collect();
                if let Some(o) = open.get(j % open.len().max(1)) {
                    t.handle_exchange(&ExchangeEvent::Executed {
                        user_ref_num: o.0,
                        quantity: q,
                        price: o.3,
                        liquidity: hftnet_trade::orders::LiquidityFlag::Added,
                        match_number: k as u64,
                    });
                }
            }
            Op::Stray(c, n, q) => {
                let n = UserRefNum(n);
                let p = Price4::from_raw(10_0000);
                let ev = match c % 5 {
                    0 => ExchangeEvent::Accepted {
                        user_ref_num: n,
                        side: Side::Buy,
                        quantity: q,
                        symbol: Stock(sym(names[0])),
                        price: p,
                        order_ref: 0,
                        live: true,
                    },
                    1 => ExchangeEvent::Replaced {
                        orig_user_ref_num: n,
                        user_ref_num: UserRefNum(n.0 + 1),
                        quantity: q,
                        price: p,
                        order_ref: 0,
                        live: true,
                    },
                    2 => ExchangeEvent::Canceled {
                        user_ref_num: n,
                        quantity: q,
                        reason: hftnet_trade::orders::CancelReason::UserRequested,
                    },
                    3 => ExchangeEvent::Executed {
                        user_ref_num: n,
                        quantity: q,
                        price: p,
                        liquidity: hftnet_trade::orders::LiquidityFlag::Added,
                        match_number: 0,
                    },
                    _ => ExchangeEvent::Rejected {
                        user_ref_num: n,
                        reason: hftnet_trade::orders::RejectReason::Unknown(0),
                    },
                };
                t.handle_exchange(&ev);
            }
            Op::Kill => {
                t.trip_kill_switch(&mut out);
            }
            Op::Persist => {
                persist(&mut t);
            }
        }
        // Everything sent goes to the exchange's queue.
        unanswered.extend_from_slice(out.as_slice());
        all_sent.extend_from_slice(out.as_slice());
        out.clear();
        if let Err(e) = t.check_invariants() {
            panic!("after op {k} {op:?}: {e}");
        }
        let a = t.accounting();
        assert!(a.balanced(), "{a:?}");
        assert!(a.pending <= u64::from(t.open_orders()) * 2);
        if t.killed() {
            assert!(
                t.orders().count() == 0 || t.cancel_all(&mut out) == 0,
                "every open order has its cancel"
            );
            assert!(out.as_slice().is_empty());
        }
    }
    // Numbers sent are strictly increasing.
    let sent: Vec<u32> = all_sent
        .iter()
        .filter_map(|m| match m {
            OrderMsg::Enter(o, _) => Some(o.user_ref_num.0),
            OrderMsg::Replace(r, _) => Some(r.user_ref_num.0),
            OrderMsg::Cancel(..) => None,
        })
        .collect();
    assert!(sent.windows(2).all(|w| w[0] < w[1]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn random_event_sequences_keep_the_books(ops in proptest::collection::vec(op(), 1..300)) {
        run_ops(&ops);
    }
}

// ---- recovery after a restart ------------------------------------------

/// Per slot: shares, cash, realized, (bought, sold, trades), exposure.
type SlotState = (
    i64,
    i128,
    i128,
    (u64, u64, u64),
    hftnet_trade::risk::Exposure,
);

/// What a restarted trader must rebuild, per symbol and over its orders.
#[derive(Debug, PartialEq, Eq)]
struct Rebuilt {
    /// Per slot: shares, cash, realized, (bought, sold, trades), exposure.
    positions: Vec<SlotState>,
    /// Open orders by number: (number, slot, side, price, open shares).
    orders: Vec<(UserRefNum, u16, Side, Price4, u32)>,
    open_orders: u32,
    total_position: u64,
    realized: i128,
    unrealized: Option<i128>,
}

fn rebuilt<S: Strategy>(t: &Trader<S>) -> Rebuilt {
    t.check_invariants().unwrap();
    let mut orders: Vec<_> = t.orders().collect();
    orders.sort_unstable_by_key(|o| o.0);
    Rebuilt {
        positions: (0..t.symbols().len() as u16)
            .map(|s| {
                let p = t.position(s).unwrap();
                (
                    p.shares(),
                    p.cash(),
                    p.realized(),
                    p.volume(),
                    t.exposure(s).unwrap(),
                )
            })
            .collect(),
        orders,
        open_orders: t.open_orders(),
        total_position: t.total_position(),
        realized: t.realized(),
        unrealized: t.unrealized(),
    }
}

/// A fresh trader of a restarted process: the persisted mark restored,
/// recovering, the last tops known (as the feed gives them).
fn restarted<S: Strategy>(symbols: &[&str], risk: RiskConfig, mark: u32, strategy: S) -> Trader<S> {
    let cfg = TraderConfig {
        symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
        risk,
        ref_block: 64,
    };
    let mut t = Trader::new(cfg, strategy).unwrap();
    t.refs_mut().restore(mark);
    t.begin_recovery();
    t
}

/// Hands `ev` to the trader and keeps it on the tape (the session's
/// sequenced stream, replayed to a restarted process).
fn tape<S: Strategy>(t: &mut Trader<S>, history: &mut Vec<ExchangeEvent>, ev: ExchangeEvent) {
    t.handle_exchange(&ev);
    history.push(ev);
}

#[test]
fn a_restarted_trader_rebuilds_orders_position_and_risk_from_the_history() {
    let (mut a, mut out) = manual(loose_risk());
    let px = Price4::from_raw;
    let aapl = Stock(sym("AAPL"));
    let msft = Stock(sym("MSFT"));
    let mut h = Vec::new();
    let acc = |n, side, quantity, symbol, price, live| ExchangeEvent::Accepted {
        user_ref_num: UserRefNum(n),
        side,
        quantity,
        symbol,
        price: px(price),
        order_ref: u64::from(n),
        live,
    };
    let exec = |n, quantity, price, m| ExchangeEvent::Executed {
        user_ref_num: UserRefNum(n),
        quantity,
        price: px(price),
        liquidity: hftnet_trade::orders::LiquidityFlag::Added,
        match_number: m,
    };
    let canceled = |n, quantity| ExchangeEvent::Canceled {
        user_ref_num: UserRefNum(n),
        quantity,
        reason: hftnet_trade::orders::CancelReason::UserRequested,
    };
    let rejected = |n| ExchangeEvent::Rejected {
        user_ref_num: UserRefNum(n),
        reason: hftnet_trade::orders::RejectReason::QuoteUnavailable,
    };
    // 1: buy 300 AAPL, 200 filled in two executions, then replaced
    //    (as 5) to 9.99 for 150 open, 50 of those filled.
    a.submit(&enter(0, Side::Buy, 10_0000, 300), T0, &mut out)
        .unwrap();
    tape(&mut a, &mut h, acc(1, Side::Buy, 300, aapl, 10_0000, true));
    tape(&mut a, &mut h, exec(1, 120, 10_0000, 1));
    tape(&mut a, &mut h, exec(1, 80, 9_9900, 2));
    // 2: sell 100 MSFT, rejected.
    a.submit(&enter(1, Side::Sell, 50_0100, 100), T0, &mut out)
        .unwrap();
    tape(&mut a, &mut h, rejected(2));
    // 3: sell 500 MSFT at a better price than entered, 400 filled, rests.
    a.submit(&enter(1, Side::Sell, 50_0100, 500), T0, &mut out)
        .unwrap();
    tape(&mut a, &mut h, acc(3, Side::Sell, 500, msft, 50_0200, true));
    tape(&mut a, &mut h, exec(3, 400, 50_0200, 3));
    // 4: an IOC accepted dead.
    a.submit(&enter(0, Side::Sell, 10_0000, 10), T0, &mut out)
        .unwrap();
    tape(&mut a, &mut h, acc(4, Side::Sell, 10, aapl, 10_0000, false));
    a.submit(&replace(1, 9_9900, 150), T0, &mut out).unwrap();
    tape(
        &mut a,
        &mut h,
        ExchangeEvent::Replaced {
            orig_user_ref_num: UserRefNum(1),
            user_ref_num: UserRefNum(5),
            quantity: 150,
            price: px(9_9900),
            order_ref: 5,
            live: true,
        },
    );
    tape(&mut a, &mut h, exec(5, 50, 9_9900, 4));
    // 3's replace (6) rejected: 3 stays as it was.
    a.submit(&replace(3, 50_0500, 100), T0, &mut out).unwrap();
    tape(&mut a, &mut h, rejected(6));
    // 7: buy 100 MSFT, cancelled in part (AIQ decrement), 60 left.
    a.submit(&enter(1, Side::Buy, 49_9900, 100), T0, &mut out)
        .unwrap();
    tape(&mut a, &mut h, acc(7, Side::Buy, 100, msft, 49_9900, true));
    tape(&mut a, &mut h, canceled(7, 40));
    // 8: buy 20 AAPL, filled, then sold back by 9 (realized P&L).
    a.submit(&enter(0, Side::Sell, 10_0100, 70), T0, &mut out)
        .unwrap();
    tape(&mut a, &mut h, acc(8, Side::Sell, 70, aapl, 10_0100, true));
    tape(&mut a, &mut h, exec(8, 70, 10_0200, 5));
    // 9: sent, never answered (lost with the process): not in the history.
    a.submit(&enter(0, Side::Buy, 9_9800, 30), T0, &mut out)
        .unwrap();
    assert_eq!(a.counters().unexpected, 0);
    let mark = a.refs().last();
    let before = rebuilt(&a);
    assert_eq!(
        before
            .orders
            .iter()
            .map(|o| (o.0.0, o.4))
            .collect::<Vec<_>>(),
        [(3, 100), (5, 100), (7, 60), (9, 30)]
    );

    // The process dies; a fresh one replays the session.
    out.clear();
    let mut b = restarted(&["AAPL", "MSFT"], loose_risk(), mark, Recorder::default());
    b.handle_top(&update(1, "AAPL", 10_0000, 10_0100), trig(1), T0, &mut out);
    b.handle_top(&update(2, "MSFT", 50_0000, 50_0100), trig(2), T0, &mut out);
    // While recovering nothing new leaves: the position is not known yet.
    assert_eq!(
        b.submit(&enter(0, Side::Buy, 10_0000, 1), T0, &mut out),
        Err(RiskReject::Disconnected)
    );
    for ev in &h {
        b.handle_exchange(ev);
    }
    assert_eq!(b.end_recovery(&mut out), 0);
    assert!(out.as_slice().is_empty());
    assert_eq!(b.counters().recovered_open, 3);
    let after = rebuilt(&b);
    // The same, but for 9, which the exchange never saw.
    let mut want = before;
    want.orders.retain(|o| o.0 != UserRefNum(9));
    want.open_orders -= 1;
    want.positions[0].4.open_buy -= 30;
    assert_eq!(after, want);
    assert_eq!(
        after.positions.iter().map(|p| p.0).collect::<Vec<_>>(),
        [200 + 50 - 70, -400]
    );
    let c = b.counters();
    assert_eq!(
        (
            c.recovered_orders,
            c.recovered_replaces,
            c.recovered_rejects,
            c.recovered_fills,
            c.executions,
            c.unexpected
        ),
        (5, 1, 2, 5, 5, 0),
        "{c:?}"
    );
    // Adopted orders are not this process's: nothing sent, accepted or
    // pending; the strategy was told nothing about them.
    let a_b = b.accounting();
    assert_eq!(
        (a_b.sent, a_b.accepted, a_b.rejected, a_b.pending),
        (0, 0, 0, 0)
    );
    assert!(b.strategy().updates.iter().all(|u| u.user_ref_num.0 == 0));

    // Risk sees them: 3 open orders, and the position limit counts the
    // adopted MSFT sell (-400 and 100 more open).
    let mut tight = loose_risk();
    tight.max_position = 520;
    tight.max_open_orders = 4;
    let mut c = restarted(&["AAPL", "MSFT"], tight, mark, Recorder::default());
    c.handle_top(&update(1, "AAPL", 10_0000, 10_0100), trig(1), T0, &mut out);
    c.handle_top(&update(2, "MSFT", 50_0000, 50_0100), trig(2), T0, &mut out);
    for ev in &h {
        c.handle_exchange(ev);
    }
    c.end_recovery(&mut out);
    persist(&mut c);
    out.clear();
    assert_eq!(
        c.submit(&enter(1, Side::Sell, 50_0100, 100), T0, &mut out),
        Err(RiskReject::SymbolPosition)
    );
    c.submit(&enter(1, Side::Sell, 50_0100, 20), T0, &mut out)
        .unwrap();
    assert_eq!(
        c.submit(&enter(0, Side::Buy, 10_0000, 1), T0, &mut out),
        Err(RiskReject::OpenOrders)
    );
    // Its own numbers continue above the mark.
    assert_eq!(enter_msg(&out.as_slice()[0]).user_ref_num.0, mark + 1);

    // The kill switch cancels the earlier run's resting orders too.
    out.clear();
    assert_eq!(b.trip_kill_switch(&mut out), 0);
    let mut cancels = cancel_refs(&out);
    cancels.sort_unstable();
    assert_eq!(cancels, [3, 5, 7]);
    out.clear();
    b.handle_exchange(&canceled(3, 100));
    b.handle_exchange(&canceled(5, 100));
    b.handle_exchange(&canceled(7, 60));
    assert_eq!(b.open_orders(), 0);
    assert_eq!(b.counters().unexpected, 0);
    b.check_invariants().unwrap();
}

#[test]
fn replayed_messages_the_history_cannot_explain_are_unexpected() {
    let px = Price4::from_raw;
    let mut t = restarted(&["AAPL"], loose_risk(), 100, Recorder::default());
    let exec = |n, m| ExchangeEvent::Executed {
        user_ref_num: UserRefNum(n),
        quantity: 10,
        price: px(10_0000),
        liquidity: hftnet_trade::orders::LiquidityFlag::Added,
        match_number: m,
    };
    let acc = |n, symbol: &str| ExchangeEvent::Accepted {
        user_ref_num: UserRefNum(n),
        side: Side::Buy,
        quantity: 100,
        symbol: Stock(sym(symbol)),
        price: px(10_0000),
        order_ref: u64::from(n),
        live: true,
    };
    // Executions, cancels and a replace of orders never accepted, an
    // order of a symbol this trader does not trade.
    t.handle_exchange(&exec(3, 1));
    t.handle_exchange(&ExchangeEvent::Canceled {
        user_ref_num: UserRefNum(4),
        quantity: 10,
        reason: hftnet_trade::orders::CancelReason::UserRequested,
    });
    t.handle_exchange(&ExchangeEvent::Replaced {
        orig_user_ref_num: UserRefNum(5),
        user_ref_num: UserRefNum(6),
        quantity: 10,
        price: px(10_0000),
        order_ref: 6,
        live: true,
    });
    t.handle_exchange(&acc(7, "NVDA"));
    assert_eq!(t.counters().unexpected, 4);
    assert_eq!((t.open_orders(), t.position(0).unwrap().shares()), (0, 0));
    // An Accepted adopts; the same Accepted again is unexpected, and so is
    // a replace of it to a number already known.
    t.handle_exchange(&acc(8, "AAPL"));
    t.handle_exchange(&acc(8, "AAPL"));
    t.handle_exchange(&acc(9, "AAPL"));
    t.handle_exchange(&ExchangeEvent::Replaced {
        orig_user_ref_num: UserRefNum(8),
        user_ref_num: UserRefNum(9),
        quantity: 10,
        price: px(10_0000),
        order_ref: 10,
        live: true,
    });
    let c = t.counters();
    assert_eq!((c.recovered_orders, c.unexpected), (2, 6), "{c:?}");
    let mut out = Outbox::default();
    t.end_recovery(&mut out);
    assert_eq!(t.refs().last(), 100);
    // After recovery: an unknown number above the mark is no earlier
    // run's (unexpected); one at or below it is (the exchange answered a
    // dead process's last order late): adopted.
    t.handle_exchange(&acc(101, "AAPL"));
    t.handle_exchange(&ExchangeEvent::Rejected {
        user_ref_num: UserRefNum(102),
        reason: hftnet_trade::orders::RejectReason::QuoteUnavailable,
    });
    t.handle_exchange(&acc(100, "AAPL"));
    let c = t.counters();
    assert_eq!(
        (c.recovered_orders, c.recovered_late, c.unexpected),
        (3, 1, 8),
        "{c:?}"
    );
    assert_eq!(t.open_orders(), 3);
    t.check_invariants().unwrap();
}

#[test]
fn after_recovery_a_reconnect_neither_adopts_again_nor_counts_twice() {
    let px = Price4::from_raw;
    let (mut a, mut out) = manual(loose_risk());
    let mut ex = InstantExchange::new(16);
    let mut h = Vec::new();
    a.submit(&enter(0, Side::Buy, 10_0000, 100), T0, &mut out)
        .unwrap();
    for m in out.as_slice().to_vec() {
        ex.answer(&m, |ev| tape(&mut a, &mut h, *ev));
    }
    out.clear();
    let fill = ex.execute(UserRefNum(1), 40, px(10_0000)).unwrap();
    tape(&mut a, &mut h, fill);
    let mark = a.refs().last();
    let mut b = restarted(&["AAPL", "MSFT"], loose_risk(), mark, Recorder::default());
    b.handle_top(&update(1, "AAPL", 10_0000, 10_0100), trig(1), T0, &mut out);
    for ev in &h {
        b.handle_exchange(ev);
    }
    b.end_recovery(&mut out);
    assert_eq!(rebuilt(&b), rebuilt(&a));
    // A reconnect: the session resumes after the last message read, and
    // the loop does not begin another recovery. Were a message delivered
    // twice anyway, the known number makes it unexpected, not adopted
    // again; the new fill applies once.
    b.set_connected(false);
    b.set_connected(true);
    assert_eq!(b.end_recovery(&mut out), 0, "not recovering: nothing");
    b.handle_exchange(&h[0]);
    let fill = ex.execute(UserRefNum(1), 60, px(9_9900)).unwrap();
    b.handle_exchange(&fill);
    a.handle_exchange(&fill);
    let c = b.counters();
    assert_eq!(
        (
            c.recovered_orders,
            c.recovered_fills,
            c.executions,
            c.unexpected
        ),
        (1, 2, 2, 1)
    );
    assert_eq!(b.position(0).unwrap().shares(), 100);
    assert_eq!(rebuilt(&b), rebuilt(&a));
    // Its own orders are not adopted ones: accepted and counted as sent.
    persist(&mut b);
    b.submit(&enter(0, Side::Sell, 10_0100, 100), T0, &mut out)
        .unwrap();
    let n = enter_msg(&out.as_slice()[0]).user_ref_num;
    assert!(n.0 > mark);
    for m in out.as_slice().to_vec() {
        ex.answer(&m, |ev| b.handle_exchange(ev));
    }
    let acct = b.accounting();
    assert_eq!((acct.sent, acct.accepted), (1, 1));
    assert_eq!(b.counters().recovered_orders, 1);
    assert!(
        b.strategy()
            .updates
            .iter()
            .any(|u| u.user_ref_num == n && u.kind == UpdateKind::Accepted)
    );
}

/// Random days of a market maker against the instant exchange, with fills
/// at random: a fresh trader fed the session's history ends with exactly
/// the orders, position, P&L and exposure of the one that lived it.
#[test]
fn recovery_equals_the_lived_day_over_random_maker_days() {
    for seed in 1..=40u64 {
        let symbols = ["AAPL", "MSFT", "NVDA"];
        let maker = |s: &[Stock]| {
            Maker::new(
                MakerConfig {
                    symbols: Vec::new(),
                    tick: 100,
                    width_ticks: 1,
                    size: 100,
                    max_position: 500,
                    skew_ticks: 1,
                },
                s,
            )
            .unwrap()
        };
        let mut a = trader(&symbols, loose_risk(), maker);
        let table = a.symbols().to_vec();
        let mut walk = trading::Walk::new(&table, seed);
        let mut ex = InstantExchange::new(64);
        let mut out = Outbox::default();
        let mut h: Vec<ExchangeEvent> = Vec::new();
        let mut tops = Vec::new();
        for _ in 0..400 {
            let (u, trig, r) = walk.next_update();
            tops.push((u, trig));
            a.handle_top(&u, trig, trig.rx_ns, &mut out);
            persist(&mut a);
            for m in out.as_slice().to_vec() {
                ex.answer(&m, |ev| tape(&mut a, &mut h, *ev));
            }
            out.clear();
            if r % 3 == 0 {
                let open: Vec<_> = a.orders().collect();
                if let Some(o) = open.get((r >> 20) as usize % open.len().max(1)) {
                    let q = 1 + (r >> 40) as u32 % o.4.max(1);
                    if let Some(ev) = ex.execute(o.0, q, o.3) {
                        tape(&mut a, &mut h, ev);
                    }
                }
            }
            for m in out.as_slice().to_vec() {
                ex.answer(&m, |ev| tape(&mut a, &mut h, *ev));
            }
            out.clear();
        }
        assert_eq!(a.counters().unexpected, 0, "seed {seed}");
        assert!(a.counters().executions > 0, "seed {seed}");
        let mut b = restarted(&symbols, loose_risk(), a.refs().last(), maker(&table));
        for ev in &h {
            b.handle_exchange(ev);
        }
        // The feed gives the restarted trader the same last tops.
        for (u, trig) in &tops {
            b.handle_top(u, *trig, trig.rx_ns, &mut out);
        }
        assert!(
            out.as_slice().is_empty(),
            "seed {seed}: traded while recovering"
        );
        b.end_recovery(&mut out);
        let (ra, rb) = (rebuilt(&a), rebuilt(&b));
        assert_eq!(ra, rb, "seed {seed}");
        let c = b.counters();
        assert_eq!(
            (c.unexpected, c.executions, c.recovered_fills),
            (0, a.counters().executions, a.counters().executions),
            "seed {seed}"
        );
        // Every enter the exchange accepted, every replace it accepted.
        let ac = a.counters();
        assert_eq!(
            (
                c.recovered_orders + c.recovered_replaces,
                c.recovered_rejects
            ),
            (ac.accepted, ac.rejected - ac.replaces_void),
            "seed {seed}"
        );
        assert!(
            c.recovered_replaces > 0 && rb.open_orders > 0,
            "seed {seed}"
        );
    }
}
