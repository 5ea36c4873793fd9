//! Matching throughput: enters (resting and crossing), cancels and size
//! reductions on the price-time engine, and the exchange core handling a
//! generated ITCH day with client orders crossing it.
//!
//! The engine stream is built once outside the timed loop (by running it
//! on an engine, so cancels name live orders) and replayed on a fresh
//! engine per iteration; criterion reports operations per second.
//!
//! `cargo bench -p hftnet-trade --bench matching`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hftnet_trade::exchange::{Generator, GeneratorConfig};
use hftnet_trade::matching::{
    EnterOrder, Exchange, ExchangeConfig, ExchangeOutput, Fill, MatchConfig, MatchingEngine,
    NoEvents, OrderEvent, Request, SessionId,
};
use hftnet_trade::rng::Rng;
use hftnet_wire::itch50::{Message, Side};

const INSTRUMENTS: u16 = 16;
const OPS: usize = 400_000;
const TICK: u32 = 100;

#[derive(Clone, Copy)]
enum Op {
    Enter(u16, u64, Side, u32, u32, bool),
    Cancel(u64),
    Reduce(u64, u32),
}

fn config() -> MatchConfig {
    MatchConfig {
        max_orders: 1 << 16,
        max_locates: usize::from(INSTRUMENTS) + 1,
        levels_per_side: 64,
        ref_window: 1 << 20,
    }
}

fn apply(e: &mut MatchingEngine, op: &Op, fills: &mut u64) {
    let mut ev = |f: &Fill| *fills += u64::from(f.quantity);
    match *op {
        Op::Enter(l, id, s, p, q, rest) => {
            let _ = e.enter(l, id, 0, s, p, q, rest, &mut ev);
        }
        Op::Cancel(id) => {
            e.cancel(id, &mut NoEvents);
        }
        Op::Reduce(id, q) => {
            e.reduce(id, q, &mut NoEvents);
        }
    }
}

/// About 55 % passive enters, 30 % cancels, 5 % reductions, 10 % crossing
/// IOC enters (executions), around a mid that wanders.
fn stream(n: usize, seed: u64) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut e = MatchingEngine::new(&config()).expect("valid config");
    let mut mid = vec![1_000_000u32; usize::from(INSTRUMENTS) + 1];
    let mut ids: Vec<u64> = Vec::new();
    let mut next = 1u64;
    let mut ops = Vec::with_capacity(n);
    let mut fills = 0;
    while ops.len() < n {
        let l = rng.range(1, u64::from(INSTRUMENTS)) as u16;
        let m = &mut mid[usize::from(l)];
        if rng.chance(0.02) {
            *m = if rng.chance(0.5) {
                *m + TICK
            } else {
                *m - TICK
            };
        }
        let r = rng.next_f64();
        let op = if r < 0.55 || ids.len() < 100 {
            let side = if rng.chance(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let behind = rng.range(1, 10) as u32 * TICK;
            let p = match side {
                Side::Buy => *m - behind,
                Side::Sell => *m + behind,
            };
            ids.push(next);
            next += 1;
            Op::Enter(l, next - 1, side, p, rng.range(1, 10) as u32 * 100, true)
        } else if r < 0.90 {
            let k = rng.below(ids.len() as u64) as usize;
            let id = ids.swap_remove(k);
            if e.order(id).is_none() {
                continue;
            }
            if r < 0.85 {
                Op::Cancel(id)
            } else {
                ids.push(id);
                Op::Reduce(id, 50)
            }
        } else {
            let side = if rng.chance(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let p = match side {
                Side::Buy => *m + 3 * TICK,
                Side::Sell => *m - 3 * TICK,
            };
            next += 1;
            Op::Enter(l, next - 1, side, p, rng.range(1, 8) as u32 * 100, false)
        };
        apply(&mut e, &op, &mut fills);
        ops.push(op);
    }
    assert!(fills > 0, "the stream executes");
    ops
}

fn replay(iters: u64, ops: &[Op]) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut e = MatchingEngine::new(&config()).expect("valid config");
        let mut fills = 0;
        let start = Instant::now();
        for op in ops {
            apply(&mut e, black_box(op), &mut fills);
        }
        total += start.elapsed();
        black_box((fills, &e));
    }
    total
}

struct Sink(u64);

impl ExchangeOutput for Sink {
    fn itch(&mut self, msg: &Message) {
        self.0 += u64::from(msg.msg_type());
    }
    fn order_event(&mut self, _: SessionId, _: &OrderEvent) {
        self.0 += 1;
    }
}

/// A generated day of `n` messages and, every 20th message, a client IOC
/// order crossing the spread of the generator's first instrument.
fn exchange_day(iters: u64, day: &[Message]) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut x = Exchange::new(&ExchangeConfig {
            matching: config(),
            price_band_pct: None,
            ..ExchangeConfig::default()
        })
        .expect("valid config");
        let s = x.open_session().expect("a session");
        let mut sink = Sink(0);
        let mut user_ref = 0;
        let start = Instant::now();
        for (i, m) in day.iter().enumerate() {
            x.handle_generated(black_box(m), &mut sink);
            if i % 20 == 0 && i > 100 {
                let Some(l) = x.locate(day_symbol()) else {
                    continue;
                };
                let (side, price) = match (
                    user_ref % 2,
                    x.engine().best(l, Side::Sell),
                    x.engine().best(l, Side::Buy),
                ) {
                    (0, Some(a), _) => (b'B', a.price),
                    (_, _, Some(b)) => (b'S', b.price),
                    _ => continue,
                };
                user_ref += 1;
                let req = Request::Enter(EnterOrder {
                    intermarket_sweep: b'N',
                    cross_type: b'N',
                    user_ref_num: user_ref,
                    side,
                    quantity: 100,
                    symbol: day_symbol(),
                    price: u64::from(price),
                    time_in_force: b'3',
                    display: b'Y',
                    capacity: b'A',
                    cl_ord_id: hftnet_trade::orders::ClOrdId([b' '; 14]),
                });
                x.handle_request(s, &req, 0, &mut sink);
            }
        }
        total += start.elapsed();
        black_box(sink.0);
    }
    total
}

fn day_symbol() -> hftnet_wire::itch50::Stock {
    hftnet_wire::itch50::Stock(*b"AAPL    ")
}

fn bench(c: &mut Criterion) {
    let ops = stream(OPS, 7);
    let mut g = c.benchmark_group("matching");
    g.throughput(Throughput::Elements(ops.len() as u64));
    g.sample_size(10);
    g.bench_function("enter_cancel_execute_16_instruments", |b| {
        b.iter_custom(|iters| replay(iters, &ops))
    });
    let mut generator = Generator::new(GeneratorConfig::new(7, INSTRUMENTS)).expect("valid config");
    let mut day = Vec::new();
    while let Some(m) = generator.next_message() {
        day.push(m);
        if generator.in_flow() && generator.flow_generated() >= 200_000 {
            generator.finish();
        }
    }
    g.throughput(Throughput::Elements(day.len() as u64));
    g.bench_function("exchange_generated_day_with_client_iocs", |b| {
        b.iter_custom(|iters| exchange_day(iters, &day))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
