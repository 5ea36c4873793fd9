//! Zero heap allocations on the matching hot path once warmed up: with a
//! counting global allocator (per thread), the exchange core handling a
//! generated day interleaved with client orders (resting, crossing, IOC,
//! cancels, replaces) allocates nothing in a run four times longer than its
//! warm-up; the bare engine likewise.

use hftnet_trade::exchange::{Generator, GeneratorConfig};
use hftnet_trade::matching::{
    CancelOrder, EnterOrder, Exchange, ExchangeConfig, ExchangeOutput, MatchConfig, MatchingEngine,
    NoEvents, OrderEvent, ReplaceOrder, Request, SessionId,
};
use hftnet_trade::rng::Rng;
use hftnet_wire::itch50::{Message, Side};

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;

fn config() -> MatchConfig {
    MatchConfig {
        max_orders: 1 << 14,
        max_locates: 8,
        levels_per_side: 64,
        ref_window: 1 << 22,
    }
}

/// Counts what it is given; allocates nothing.
#[derive(Default)]
struct Count {
    itch: u64,
    events: u64,
}

impl ExchangeOutput for Count {
    fn itch(&mut self, msg: &Message) {
        let mut buf = [0u8; 64];
        self.itch += u64::from(msg.emit(&mut buf).is_ok());
    }
    fn order_event(&mut self, _: SessionId, _: &OrderEvent) {
        self.events += 1;
    }
}

/// `steps` steps of generated flow with a client request every fourth.
fn drive(
    x: &mut Exchange,
    g: &mut Generator,
    rng: &mut Rng,
    user_ref: &mut u32,
    steps: u64,
    out: &mut Count,
) {
    for _ in 0..steps {
        if !rng.chance(0.25) {
            let m = g.next_message().expect("the day goes on");
            x.handle_generated(&m, out);
            continue;
        }
        let l = rng.range(1, 4) as u16;
        let symbol = g.symbol(l).expect("a symbol");
        let e = x.engine();
        let (Some(bid), Some(ask)) = (e.best(l, Side::Buy), e.best(l, Side::Sell)) else {
            continue;
        };
        let r = rng.next_f64();
        let recent = user_ref.saturating_sub(rng.range(0, 20) as u32);
        let req = if r < 0.5 {
            let buy = rng.chance(0.5);
            let cross = rng.chance(0.4);
            let price = match (buy, cross) {
                (true, true) => ask.price,
                (false, true) => bid.price,
                (true, false) => bid.price,
                (false, false) => ask.price,
            };
            *user_ref += 1;
            Request::Enter(EnterOrder {
                intermarket_sweep: b'N',
                cross_type: b'N',
                user_ref_num: *user_ref,
                side: if buy { b'B' } else { b'S' },
                quantity: rng.range(1, 5) as u32 * 100,
                symbol,
                price: u64::from(price),
                time_in_force: if rng.chance(0.3) { b'3' } else { b'0' },
                display: if rng.chance(0.8) { b'Y' } else { b'N' },
                capacity: b'A',
                cl_ord_id: hftnet_trade::orders::ClOrdId([b'a'; 14]),
            })
        } else if r < 0.8 {
            Request::Cancel(CancelOrder {
                user_ref_num: recent,
                quantity: 0,
            })
        } else {
            let Some(o) = x.client_order(0, recent) else {
                continue;
            };
            *user_ref += 1;
            Request::Replace(ReplaceOrder {
                intermarket_sweep: b'N',
                orig_user_ref_num: recent,
                user_ref_num: *user_ref,
                quantity: o.executed + 100,
                price: u64::from(o.price),
                time_in_force: b'0',
                display: b'Y',
                cl_ord_id: hftnet_trade::orders::ClOrdId([b'b'; 14]),
            })
        };
        x.handle_request(0, &req, 0, out);
    }
}

#[test]
fn the_exchange_core_allocates_nothing_once_warm() {
    let mut x = Exchange::new(&ExchangeConfig {
        matching: config(),
        client_orders: 1 << 12,
        price_band_pct: None,
        ..ExchangeConfig::default()
    })
    .unwrap();
    assert_eq!(x.open_session().unwrap(), 0);
    let mut g = Generator::new(GeneratorConfig::new(3, 4)).unwrap();
    let mut rng = Rng::new(3);
    let mut user_ref = 0;
    let mut out = Count::default();
    drive(&mut x, &mut g, &mut rng, &mut user_ref, 50_000, &mut out);
    let before = allocs();
    let events = out.events;
    drive(&mut x, &mut g, &mut rng, &mut user_ref, 200_000, &mut out);
    let made = allocs() - before;
    assert!(out.events - events > 10_000, "clients were active");
    assert!(x.counters().client_fills > 1_000, "{:?}", x.counters());
    assert_eq!(made, 0, "allocations on the hot path after warm-up");
    assert_eq!(x.engine().counters().pool_grows, 0);
}

#[test]
fn the_engine_allocates_nothing_once_warm() {
    let mut e = MatchingEngine::new(&MatchConfig {
        max_orders: 1 << 17,
        ..config()
    })
    .unwrap();
    let mut rng = Rng::new(9);
    let mut id = 0u64;
    let mut run = |e: &mut MatchingEngine, n: u64| {
        for _ in 0..n {
            let l = rng.range(1, 4) as u16;
            let buy = rng.chance(0.5);
            let side = if buy { Side::Buy } else { Side::Sell };
            // Prices around 10_000 ± 20 ticks, so orders cross often.
            let price = 10_000 + rng.range(0, 40) as u32 * 100 - 2_000;
            id += 1;
            let _ = e.enter(
                l,
                id,
                0,
                side,
                price,
                rng.range(1, 9) as u32 * 100,
                rng.chance(0.8),
                &mut NoEvents,
            );
            if rng.chance(0.4) {
                e.cancel(id.saturating_sub(rng.range(0, 200)), &mut NoEvents);
            }
        }
    };
    run(&mut e, 50_000);
    let before = allocs();
    run(&mut e, 200_000);
    assert_eq!(allocs() - before, 0, "{:?}", e.counters());
    assert!(e.counters().fills > 10_000);
    e.check_invariants().unwrap();
}
