//! Zero heap allocations per market-data message and per order on the
//! trader's hot path: a generated ITCH day goes through the market layer
//! into the trader (strategy, risk, order state), every order is answered
//! by an in-process exchange, and after a warm-up (books, levels and hash
//! tables reach their working size) a counting global allocator sees no
//! allocation for the rest of the day — with the market maker (enters,
//! replaces, cancels, some fills) and with the taker (IOCs filled).
//!
//! The generated day's touch prices barely move once its books are deep,
//! so it exercises the market-data half (every message, top update and
//! trade); a second phase random-walks the tops of the trader's symbols a
//! tick at a time, so the strategies send orders all the time, and is
//! measured the same way.

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;
#[path = "support/trading.rs"]
mod trading;

use counting_alloc::allocs;
use hftnet_trade::book::BookConfig;
use hftnet_trade::exchange::{Generator, GeneratorConfig};
use hftnet_trade::market::{MarketData, MarketEvents, TopUpdate, TradeUpdate};
use hftnet_trade::orders::Trigger;
use hftnet_trade::risk::{PriceBand, RiskConfig};
use hftnet_trade::strategy::{Maker, MakerConfig, Strategy, Taker, TakerConfig};
use hftnet_trade::trader::{Outbox, Trader, TraderConfig, TraderCounters};
use hftnet_wire::itch50::Stock;
use trading::InstantExchange;

const SYMBOLS: u16 = 4;
const MESSAGES: usize = 120_000;
const WARM_UP: usize = 40_000;
const WALK_WARM_UP: u64 = 5_000;
const WALK_STEPS: u64 = 50_000;

/// Random-walking tops, with now and then a fill of one of ours.
struct Walk(trading::Walk);

impl Walk {
    fn new(symbols: &[Stock]) -> Walk {
        Walk(trading::Walk::new(symbols, 7))
    }

    fn step<S: Strategy>(&mut self, t: &mut Trader<S>, ex: &mut InstantExchange, out: &mut Outbox) {
        let (u, trigger, r) = self.0.next_update();
        t.handle_top(&u, trigger, trigger.rx_ns, out);
        ex.settle(t, out);
        let first = t.orders().next();
        if (r >> 12).is_multiple_of(8)
            && let Some((n, _, _, price, open)) = first
            && let Some(ev) = ex.execute(n, open.div_ceil(2), price)
        {
            t.handle_exchange(&ev);
        }
        if let Some(m) = t.refs_mut().poll_persist() {
            t.refs_mut().confirm_persisted(m);
        }
    }
}

/// The market layer's listener: hands every event to the trader.
struct Feed<'a, S> {
    trader: &'a mut Trader<S>,
    out: &'a mut Outbox,
    trigger: Trigger,
}

impl<S: Strategy> MarketEvents for Feed<'_, S> {
    fn top(&mut self, u: &TopUpdate) {
        self.trader
            .handle_top(u, self.trigger, self.trigger.rx_ns, self.out);
    }
    fn trade(&mut self, t: &TradeUpdate) {
        self.trader
            .handle_trade(t, self.trigger, self.trigger.rx_ns, self.out);
    }
}

/// A generated day: the messages back to back, and where each ends.
fn day() -> (Vec<u8>, Vec<usize>, Vec<Stock>) {
    let mut g = Generator::new(GeneratorConfig::new(5, SYMBOLS)).unwrap();
    let symbols = (1..=SYMBOLS).map(|l| g.symbol(l).unwrap()).collect();
    let (mut bytes, mut ends) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 64];
    while let Some(m) = g.next_message() {
        let n = m.emit(&mut buf).unwrap();
        bytes.extend_from_slice(&buf[..n]);
        ends.push(bytes.len());
        if g.in_flow() && ends.len() >= MESSAGES {
            g.finish();
        }
    }
    (bytes, ends, symbols)
}

struct Run {
    allocs: u64,
    tops: u64,
    orders: u64,
    fills: u64,
}

fn run<S: Strategy>(make: impl FnOnce(&[Stock]) -> S) -> Run {
    let (bytes, ends, symbols) = day();
    let mut md = MarketData::new(BookConfig {
        max_orders: 1 << 12,
        ref_window: 1 << 16,
        ref_window_prealloc: 1 << 16,
        max_locates: 256,
        ..BookConfig::selected(symbols.iter().map(|s| s.0))
    })
    .unwrap();
    let cfg = TraderConfig {
        symbols: symbols
            .iter()
            .map(|s| String::from_utf8_lossy(s.trimmed()).into_owned())
            .collect(),
        risk: RiskConfig {
            max_order_qty: 10_000,
            max_notional_dollars: 10_000_000,
            max_position: 1_000_000,
            max_total_position: 10_000_000,
            price_band: PriceBand::Bps(1_000),
            orders_per_sec: 1_000_000,
            burst: 1_000_000,
            max_open_orders: 1_024,
            duplicate_window_ns: 1_000,
        },
        ref_block: 4_096,
    };
    let table = cfg.symbol_table().unwrap();
    let mut trader = Trader::new(cfg, make(&table)).unwrap();
    let mut ex = InstantExchange::new(1_024);
    let mut out = Outbox::default();
    let (mut before, mut start) = (0, None);
    let mut start_counts = trader.counters();
    let mut from = 0;
    for (i, &end) in ends.iter().enumerate() {
        if i == WARM_UP {
            before = allocs();
            start = Some(i);
            start_counts = trader.counters();
        }
        let seq = i as u64 + 1;
        let rx_ns = 34_200_000_000_000 + seq * 20_000;
        if let Some(m) = trader.refs_mut().poll_persist() {
            trader.refs_mut().confirm_persisted(m);
        }
        let mut feed = Feed {
            trader: &mut trader,
            out: &mut out,
            trigger: Trigger { seq, rx_ns },
        };
        md.handle_events(&bytes[from..end], &mut feed);
        from = end;
        ex.settle(&mut trader, &mut out);
        // Now and then a resting order of ours trades.
        let first = trader.orders().next();
        if i.is_multiple_of(500)
            && let Some((n, _, _, price, open)) = first
            && let Some(ev) = ex.execute(n, open.div_ceil(2), price)
        {
            trader.handle_exchange(&ev);
        }
    }
    let day_allocs = allocs() - before;
    let day = delta(&start_counts, &trader.counters());
    assert!(start.is_some(), "the day is longer than the warm-up");
    // Phase two: tops random-walking a tick at a time.
    let mut walk = Walk::new(&symbols);
    for _ in 0..WALK_WARM_UP {
        walk.step(&mut trader, &mut ex, &mut out);
    }
    let (walk_start, walk_counts) = (allocs(), trader.counters());
    for _ in 0..WALK_STEPS {
        walk.step(&mut trader, &mut ex, &mut out);
    }
    let walk_allocs = allocs() - walk_start;
    let walked = delta(&walk_counts, &trader.counters());
    trader.check_invariants().unwrap();
    Run {
        allocs: day_allocs + walk_allocs,
        tops: day.tops + walked.tops,
        orders: day.orders + walked.orders,
        fills: day.fills + walked.fills,
    }
}

/// What the trader did between two readings of its counters.
fn delta(a: &TraderCounters, b: &TraderCounters) -> Run {
    let sent = |c: &TraderCounters| c.enters_sent + c.replaces_sent + c.cancels_sent;
    Run {
        allocs: 0,
        tops: b.tops - a.tops,
        orders: sent(b) - sent(a),
        fills: b.executions - a.executions,
    }
}

#[test]
fn market_maker_hot_path_does_not_allocate() {
    let r = run(|s| Maker::new(MakerConfig::default(), s).unwrap());
    eprintln!(
        "maker: {} top updates, {} order messages, {} fills, {} allocations",
        r.tops, r.orders, r.fills, r.allocs
    );
    assert!(r.tops > 50_000, "{} top updates", r.tops);
    assert!(r.orders > 10_000, "{} order messages", r.orders);
    assert!(r.fills > 1_000, "{} fills", r.fills);
    assert_eq!(r.allocs, 0);
}

#[test]
fn taker_hot_path_does_not_allocate() {
    let cfg = TakerConfig {
        ticks: 1,
        cooldown_ns: 0,
        ..TakerConfig::default()
    };
    let r = run(|s| Taker::new(cfg, s).unwrap());
    eprintln!(
        "taker: {} top updates, {} order messages, {} fills, {} allocations",
        r.tops, r.orders, r.fills, r.allocs
    );
    assert!(r.tops > 50_000, "{} top updates", r.tops);
    assert!(r.orders > 1_000, "{} order messages", r.orders);
    assert_eq!(r.fills, r.orders, "every IOC filled");
    assert_eq!(r.allocs, 0);
}
