//! Order book throughput and top-of-book reads.
//!
//! The message stream imitates a TotalView-ITCH day: 64 stocks whose mid
//! prices random-walk, orders clustered within a few ticks of the best price
//! (a geometric tail reaching ~60 ticks), refs increasing with small gaps,
//! and a message mix close to Nasdaq's (adds 46 %, deletes 37 %, replaces
//! 8 %, executes 6 %, cancels 3 %) with cancels and deletes biased to recent
//! orders. It is generated once, outside the timed loop, and replayed on a
//! fresh book per iteration; criterion reports messages per second.
//!
//! `cargo bench -p hftnet-trade --bench book`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hftnet_trade::book::{Book, BookConfig, Side, Symbols, TopChange};

const STOCKS: u16 = 64;
const MESSAGES: usize = 500_000;
/// Live orders the stream hovers around.
const TARGET_LIVE: usize = 20_000;
/// $0.01 in ITCH Price(4).
const TICK: u32 = 100;

#[derive(Clone, Copy)]
enum Msg {
    Directory(u16, [u8; 8]),
    Add(u16, u64, Side, u32, u32),
    Execute(u16, u64, u32),
    ExecuteWithPrice(u16, u64, u32, u32),
    Cancel(u16, u64, u32),
    Delete(u16, u64),
    Replace(u16, u64, u64, u32, u32),
}

#[inline]
fn apply(book: &mut Book, m: &Msg) -> TopChange {
    match *m {
        Msg::Directory(l, s) => book.stock_directory(l, s),
        Msg::Add(l, r, s, q, p) => book.add(l, r, s, q, p),
        Msg::Execute(l, r, q) => book.execute(l, r, q),
        Msg::ExecuteWithPrice(l, r, q, p) => book.execute_with_price(l, r, q, p),
        Msg::Cancel(l, r, q) => book.cancel(l, r, q),
        Msg::Delete(l, r) => book.delete(l, r),
        Msg::Replace(l, r, n, q, p) => book.replace(l, r, n, q, p),
    }
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Geometric: P(k) ~ (1/2)^k, capped.
    fn ticks(&mut self) -> u32 {
        (self.next() | (1 << 60)).trailing_zeros().min(60)
    }
}

fn symbol(i: u16) -> [u8; 8] {
    let mut s = *b"SYM     ";
    s[3] = b'A' + (i / 26) as u8;
    s[4] = b'A' + (i % 26) as u8;
    s
}

#[derive(Clone, Copy)]
struct Live {
    order_ref: u64,
    locate: u16,
    side: Side,
    shares: u32,
}

/// The stream: directory messages for all stocks, then `n` book messages.
fn stream(n: usize, seed: u64) -> Vec<Msg> {
    let mut rng = Rng(seed);
    let mut msgs = Vec::with_capacity(n + STOCKS as usize);
    for l in 1..=STOCKS {
        msgs.push(Msg::Directory(l, symbol(l)));
    }
    let mut mids: Vec<u32> = (0..=STOCKS)
        .map(|_| (20 + rng.below(400) as u32) * 100 * TICK)
        .collect();
    let mut live: Vec<Live> = Vec::with_capacity(TARGET_LIVE * 2);
    let mut next_ref = 1_000_000u64;
    let price = |rng: &mut Rng, mid: u32, side: Side| -> u32 {
        let off = rng.ticks() * TICK;
        match side {
            Side::Buy => mid - TICK - off,
            Side::Sell => mid + off,
        }
    };
    // Pick a live order, biased to recent ones.
    let pick = |rng: &mut Rng, live: &Vec<Live>| -> usize {
        let n = live.len() as u64;
        if rng.below(4) == 0 {
            rng.below(n) as usize
        } else {
            (n - 1 - rng.below(n.min(256))) as usize
        }
    };
    while msgs.len() < n + STOCKS as usize {
        let roll = rng.below(100);
        let want_add = live.len() < TARGET_LIVE / 2
            || (live.len() < TARGET_LIVE * 3 / 2 && roll < 46)
            || live.is_empty();
        if want_add {
            let locate = 1 + rng.below(u64::from(STOCKS)) as u16;
            let mid = &mut mids[locate as usize];
            if rng.below(8) == 0 {
                *mid = (*mid + TICK * 2).saturating_sub(rng.below(5) as u32 * TICK);
            }
            let side = if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            next_ref += 1 + rng.below(4);
            let shares = 100 * (1 + rng.below(5) as u32);
            let p = price(&mut rng, *mid, side);
            msgs.push(Msg::Add(locate, next_ref, side, shares, p));
            live.push(Live {
                order_ref: next_ref,
                locate,
                side,
                shares,
            });
            continue;
        }
        let i = pick(&mut rng, &live);
        let o = live[i];
        match roll % 54 {
            // Deletes: 37 of 54.
            0..=36 => {
                msgs.push(Msg::Delete(o.locate, o.order_ref));
                live.swap_remove(i);
            }
            // Replaces: 8.
            37..=44 => {
                next_ref += 1 + rng.below(4);
                let shares = 100 * (1 + rng.below(5) as u32);
                let p = price(&mut rng, mids[o.locate as usize], o.side);
                msgs.push(Msg::Replace(o.locate, o.order_ref, next_ref, shares, p));
                live[i] = Live {
                    order_ref: next_ref,
                    shares,
                    ..o
                };
            }
            // Executes: 6 (one with price).
            45..=50 => {
                let q = if rng.below(2) == 0 {
                    o.shares
                } else {
                    100.min(o.shares)
                };
                if roll % 54 == 50 {
                    msgs.push(Msg::ExecuteWithPrice(o.locate, o.order_ref, q, 0));
                } else {
                    msgs.push(Msg::Execute(o.locate, o.order_ref, q));
                }
                if q == o.shares {
                    live.swap_remove(i);
                } else {
                    live[i].shares -= q;
                }
            }
            // Cancels: 3.
            _ => {
                let q = (o.shares / 2).max(1);
                msgs.push(Msg::Cancel(o.locate, o.order_ref, q));
                if q == o.shares {
                    live.swap_remove(i);
                } else {
                    live[i].shares -= q;
                }
            }
        }
    }
    msgs
}

fn config(symbols: Symbols) -> BookConfig {
    BookConfig {
        max_orders: 1 << 16,
        symbols,
        ..BookConfig::default()
    }
}

/// Replays `msgs` on a fresh book `iters` times; only the replay is timed.
fn replay(iters: u64, msgs: &[Msg], cfg: &BookConfig) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut book = Book::new(cfg.clone()).expect("valid config");
        let start = Instant::now();
        let mut changes = 0u32;
        for m in msgs {
            changes += u32::from(apply(&mut book, black_box(m)).top());
        }
        total += start.elapsed();
        black_box((changes, &book));
        let c = book.counters();
        assert_eq!(c.unknown_ref + c.oversized + c.duplicate_ref, 0);
    }
    total
}

fn bench_mix(c: &mut Criterion) {
    let msgs = stream(MESSAGES, 42);
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.sample_size(10);
    let all = config(Symbols::All);
    g.bench_function("itch_mix_all_64_stocks", |b| {
        b.iter_custom(|iters| replay(iters, &msgs, &all))
    });
    let eight = config(Symbols::Selected((1..=8).map(symbol).collect()));
    g.bench_function("itch_mix_selected_8_of_64", |b| {
        b.iter_custom(|iters| replay(iters, &msgs, &eight))
    });
    g.finish();
}

fn bench_reads(c: &mut Criterion) {
    let msgs = stream(MESSAGES, 42);
    let mut book = Book::new(config(Symbols::All)).expect("valid config");
    for m in &msgs {
        apply(&mut book, m);
    }
    let mut g = c.benchmark_group("book_read");
    g.throughput(Throughput::Elements(1));
    let mut locate = 0u16;
    g.bench_function("top_of_book", |b| {
        b.iter(|| {
            locate = locate % STOCKS + 1;
            black_box(book.top(black_box(locate)))
        })
    });
    g.bench_function("top_5_levels_both_sides", |b| {
        b.iter(|| {
            locate = locate % STOCKS + 1;
            let l = black_box(locate);
            let bid: u64 = book.levels(l, Side::Buy).take(5).map(|x| x.shares).sum();
            let ask: u64 = book.levels(l, Side::Sell).take(5).map(|x| x.shares).sum();
            black_box((bid, ask))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_mix, bench_reads);
criterion_main!(benches);
