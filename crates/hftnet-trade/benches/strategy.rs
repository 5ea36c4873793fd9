//! Strategy + risk + OUCH encode per market event:
//! the trader's decision path, from a top-of-book update to order messages
//! ready to send — the goal is p50 ≤ 100 ns for strategy + risk +
//! encode.
//!
//! Each iteration hands one top update of a random walk (4 symbols, a tick
//! at a time, see `tests/support/trading.rs`) to [`Trader::handle_top`],
//! then passes every message it produced to `encode` and answers it at
//! once with the exchange's acknowledgement through
//! [`Trader::handle_exchange`] (Accepted — dead for an IOC, which keeps a
//! replayed walk from piling up a position; Replaced; Canceled), so the
//! strategy keeps trading and the order table stays at its working size.
//! The clock advances 10 µs per event whatever the walk's timestamps, so
//! replaying the walk never runs time backwards. The answers are in the timed loop: the
//! figure is an upper bound of strategy + risk.
//!
//! - `strategy/taker`: the taker (N = 1 tick, no cooldown): fires on about
//!   a third of the updates.
//! - `strategy/maker`: the market maker: a replace of one or both quotes
//!   on most updates.
//! - `strategy/quiet`: the taker on updates that never fire (the common
//!   case of a real feed): the cost of looking.
//! - `strategy/taker_fires`: the taker on updates that each fire (the top
//!   of one symbol steps a tick up, then back down: a buy, then a sell):
//!   the figure — one market-data event that triggers an order,
//!   through strategy, risk and OUCH encode (plus the exchange's answer).
//! - `strategy/risk`: `Risk::check` alone, on an order that passes.
//!
//! `cargo bench -p hftnet-trade --bench strategy`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hftnet_trade::book::TopOfBook;
use hftnet_trade::market::TopUpdate;
use hftnet_trade::orders::{ExchangeEvent, OrderMsg, TimeInForce, Trigger};
use hftnet_trade::risk::{Exposure, OrderCheck, PriceBand, Risk, RiskConfig, RiskReject, RiskView};
use hftnet_trade::strategy::{Maker, MakerConfig, Strategy, Taker, TakerConfig};
use hftnet_trade::trader::{Outbox, Trader, TraderConfig};
use hftnet_wire::itch50::{Price4, Side, Stock};

#[path = "../tests/support/trading.rs"]
mod trading;

const EVENTS: usize = 1 << 14;

/// Encodes one order message into `buf` as OUCH 5.0, returning its length.
#[inline]
fn encode(m: &OrderMsg, buf: &mut [u8; 128]) -> usize {
    hftnet_trade::ouch::encode(m, buf).unwrap_or(0)
}

/// The exchange's answer to `m`, at once.
#[inline]
fn answer<S: Strategy>(t: &mut Trader<S>, m: &OrderMsg) {
    match *m {
        OrderMsg::Enter(o, _) => {
            // An IOC is answered dead (it did not trade): a replayed walk
            // would otherwise pile up a position without end.
            let ioc = o.time_in_force == TimeInForce::Ioc;
            t.handle_exchange(&ExchangeEvent::Accepted {
                user_ref_num: o.user_ref_num,
                side: o.side,
                quantity: o.quantity,
                symbol: o.symbol,
                price: o.price,
                order_ref: 1,
                live: !ioc,
            });
        }
        OrderMsg::Replace(r, _) => t.handle_exchange(&ExchangeEvent::Replaced {
            orig_user_ref_num: r.orig_user_ref_num,
            user_ref_num: r.user_ref_num,
            quantity: r.quantity,
            price: r.price,
            order_ref: 1,
            live: true,
        }),
        OrderMsg::Cancel(c, _) => t.handle_exchange(&ExchangeEvent::Canceled {
            user_ref_num: c.user_ref_num,
            quantity: u32::MAX,
            reason: hftnet_trade::orders::CancelReason::UserRequested,
        }),
    }
}

fn risk_config() -> RiskConfig {
    RiskConfig {
        max_order_qty: 10_000,
        max_notional_dollars: 100_000_000,
        max_position: 1_000_000_000,
        max_total_position: 1_000_000_000,
        price_band: PriceBand::Bps(1_000),
        orders_per_sec: 1_000_000,
        burst: 1_000_000,
        max_open_orders: 1_024,
        duplicate_window_ns: 1_000,
    }
}

fn symbols() -> Vec<Stock> {
    ["AAPL", "MSFT", "NVDA", "AMZN"]
        .iter()
        .map(|s| Stock::new(s).expect("a symbol"))
        .collect()
}

fn trader<S: Strategy>(strategy: S) -> Trader<S> {
    let cfg = TraderConfig {
        symbols: symbols()
            .iter()
            .map(|s| String::from_utf8_lossy(s.trimmed()).into_owned())
            .collect(),
        risk: risk_config(),
        ref_block: 1_000_000,
    };
    let mut t = Trader::new(cfg, strategy).expect("valid config");
    let m = t.refs_mut().poll_persist().expect("a first mark");
    t.refs_mut().confirm_persisted(m);
    t
}

fn walk(seed: u64) -> Vec<(TopUpdate, Trigger)> {
    let mut w = trading::Walk::new(&symbols(), seed);
    (0..EVENTS)
        .map(|_| {
            let (u, t, _) = w.next_update();
            (u, t)
        })
        .collect()
}

/// One event through the trader at `now`, timed by the caller.
#[inline]
fn event<S: Strategy>(
    t: &mut Trader<S>,
    out: &mut Outbox,
    buf: &mut [u8; 128],
    (u, trigger): &(TopUpdate, Trigger),
    now: u64,
) -> usize {
    let trigger = Trigger {
        seq: trigger.seq,
        rx_ns: now,
    };
    t.handle_top(u, trigger, now, out);
    let mut n = 0;
    for m in out.as_slice() {
        n += encode(m, buf);
    }
    for k in 0..out.as_slice().len() {
        let m = out.as_slice()[k];
        answer(t, &m);
    }
    out.clear();
    // The loop's persistence hook (the store itself is the caller's I/O).
    if let Some(m) = t.refs_mut().poll_persist() {
        t.refs_mut().confirm_persisted(black_box(m));
    }
    n
}

fn bench_trader<S: Strategy>(
    c: &mut Criterion,
    name: &str,
    mut t: Trader<S>,
    events: &[(TopUpdate, Trigger)],
) {
    let mut g = c.benchmark_group("strategy");
    g.throughput(Throughput::Elements(1));
    let (mut out, mut buf, mut i) = (Outbox::default(), [0u8; 128], 0);
    let mut now = 1_000_000_000u64;
    // Warm up the tables.
    for e in events {
        now += 10_000;
        event(&mut t, &mut out, &mut buf, e, now);
    }
    let before = t.counters();
    g.bench_function(name, |b| {
        b.iter(|| {
            i = (i + 1) % events.len();
            now += 10_000;
            event(&mut t, &mut out, &mut buf, &events[i], now)
        });
    });
    g.finish();
    let c = t.counters();
    let sent = (c.enters_sent + c.replaces_sent + c.cancels_sent)
        - (before.enters_sent + before.replaces_sent + before.cancels_sent);
    let refused: Vec<_> = RiskReject::ALL
        .iter()
        .map(|r| (r.name(), t.risk_counters().of(*r)))
        .filter(|(_, n)| *n > 0)
        .collect();
    println!(
        "# strategy/{name}: {} events, {sent} order messages, refused by risk: {refused:?}",
        c.tops - before.tops
    );
}

fn benches(c: &mut Criterion) {
    let syms = symbols();
    let events = walk(11);
    let taker = TakerConfig {
        ticks: 1,
        cooldown_ns: 0,
        quantity: 100,
        ..TakerConfig::default()
    };
    bench_trader(
        c,
        "taker",
        trader(Taker::new(taker.clone(), &syms).expect("valid")),
        &events,
    );
    let maker = Maker::new(MakerConfig::default(), &syms).expect("valid");
    bench_trader(c, "maker", trader(maker), &events);
    // Every update fires: the top of AAPL alternates between two quotes a
    // tick apart (up: the bid rose a tick, buy; down: the offer fell a
    // tick, sell).
    let fires: Vec<(TopUpdate, Trigger)> = (0..EVENTS as u64)
        .map(|k| {
            let b = 10_0000 + (k % 2) as u32 * 100;
            (
                trading::update(1, "AAPL", b, b + 100),
                Trigger {
                    seq: k + 1,
                    rx_ns: 0,
                },
            )
        })
        .collect();
    bench_trader(
        c,
        "taker_fires",
        trader(Taker::new(taker.clone(), &syms).expect("valid")),
        &fires,
    );

    // The taker on moves it never acts on: N larger than any move.
    let quiet = TakerConfig {
        ticks: 10_000,
        ..taker
    };
    bench_trader(
        c,
        "quiet",
        trader(Taker::new(quiet, &syms).expect("valid")),
        &events,
    );

    let mut risk = Risk::new(risk_config()).expect("valid");
    let top = trading::top(10_0000, 10_0100);
    let mut now = 1_000_000_000u64;
    let mut g = c.benchmark_group("strategy");
    g.throughput(Throughput::Elements(1));
    g.bench_function("risk", |b| {
        b.iter(|| {
            now += 2_000;
            let o = OrderCheck {
                slot: (now % 4) as u16,
                side: Side::Buy,
                price: Price4::from_raw(10_0000 + (now % 7) as u32 * 100),
                quantity: 100,
                replaces: None,
            };
            let v = RiskView {
                exposure: Exposure::default(),
                total_potential: 0,
                top: black_box(&top as &TopOfBook),
                open_orders: 3,
            };
            risk.check(black_box(&o), &v, now)
        });
    });
    g.finish();
}

criterion_group!(strategy, benches);
criterion_main!(strategy);
