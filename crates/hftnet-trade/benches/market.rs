//! Decode-only and apply-only figures per ITCH message type, in messages
//! per second: what `hftnet replay` spends on each side of its pipeline.
//!
//! - `decode/<type>`: `MarketData::decode` (the view, the counts, the
//!   stream digest) over the messages of that type of a generated day of
//!   500 symbols, no book work.
//! - `apply/<op>`: `MarketData::apply_op` of pre-decoded operations on a
//!   book built untimed before each batch: `add` puts 100 000 of the day's
//!   adds into books holding the directory; `execute`, `cancel`, `delete`
//!   and `replace` each take one operation per resting order of those adds,
//!   in the day's order of the adds (partial executions and cancels, full
//!   deletes, replaces to a new ref — the next refs of the day — and
//!   price).
//! - `records/day`: `MarketData::handle_records` over the whole day, as the
//!   replay runs it (decode ahead, prefetch hints on), for reference.
//! - `generate/<symbols>`: the exchange's generator, each message made and
//!   written out (`Generator::next_into`, as `hftnet exchange` does it), for
//!   a day of 8 symbols (the exchange's default) and of 500.
//!
//! `cargo bench -p hftnet-trade --bench market`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hftnet_trade::book::BookConfig;
use hftnet_trade::exchange::{Generator, GeneratorConfig};
use hftnet_trade::market::{BookOp, MarketData, OpKind};
use hftnet_wire::itch50::MessageType;

const SYMBOLS: u16 = 500;
const DAY: u64 = 600_000;
const ADDS: usize = 100_000;

/// The generated day: each message's bytes, in order.
fn day() -> Vec<Vec<u8>> {
    let mut g = Generator::new(GeneratorConfig::new(17, SYMBOLS)).expect("valid config");
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while let Some(m) = g.next_message() {
        let n = m.emit(&mut buf).expect("fits");
        out.push(buf[..n].to_vec());
        if g.in_flow() && g.generated() > DAY {
            g.finish();
        }
    }
    out
}

fn config() -> BookConfig {
    BookConfig {
        max_orders: 1 << 18,
        ..BookConfig::default()
    }
}

fn bench_decode(c: &mut Criterion, day: &[Vec<u8>]) {
    let mut g = c.benchmark_group("decode");
    for t in MessageType::ALL {
        let msgs: Vec<&[u8]> = day
            .iter()
            .filter(|m| m[0] == t.byte())
            .map(Vec::as_slice)
            .take(50_000)
            .collect();
        if msgs.len() < 100 {
            continue;
        }
        g.throughput(Throughput::Elements(msgs.len() as u64));
        let mut md = MarketData::new(config()).expect("valid config");
        g.bench_function(t.name(), |b| {
            b.iter(|| {
                for m in &msgs {
                    black_box(md.decode(black_box(m)));
                }
            });
        });
    }
    g.finish();
}

fn bench_apply(c: &mut Criterion, day: &[Vec<u8>]) {
    let mut scratch = MarketData::new(config()).expect("valid config");
    let ops: Vec<BookOp> = day.iter().filter_map(|m| scratch.decode(m)).collect();
    let setup: Vec<BookOp> = ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Directory | OpKind::TradingAction))
        .copied()
        .collect();
    let adds: Vec<BookOp> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Add)
        .take(ADDS)
        .copied()
        .collect();
    // New refs of replaces follow the day's refs densely, as ITCH's do.
    let next_ref = adds.iter().map(|a| a.order_ref).max().unwrap_or(0) + 1;
    let on_each = |kind: OpKind| -> Vec<BookOp> {
        adds.iter()
            .zip(next_ref..)
            .map(|(a, new_ref)| BookOp {
                kind,
                shares: match kind {
                    OpKind::Execute | OpKind::Cancel => (a.shares / 2).max(1),
                    _ => a.shares,
                },
                new_ref,
                price: a.price + 100,
                ..*a
            })
            .collect()
    };
    let books = |with_adds: bool| {
        let mut md = MarketData::new(config()).expect("valid config");
        for o in &setup {
            md.apply_op(o);
        }
        if with_adds {
            for o in &adds {
                md.apply_op(o);
            }
        }
        md
    };
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(adds.len() as u64));
    g.bench_function("add", |b| {
        b.iter_batched_ref(
            || books(false),
            |md| {
                for o in &adds {
                    black_box(md.apply_op(o));
                }
            },
            BatchSize::PerIteration,
        );
    });
    for (name, kind) in [
        ("execute", OpKind::Execute),
        ("cancel", OpKind::Cancel),
        ("delete", OpKind::Delete),
        ("replace", OpKind::Replace),
    ] {
        let ops = on_each(kind);
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || books(true),
                |md| {
                    for o in &ops {
                        black_box(md.apply_op(o));
                    }
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

fn bench_records(c: &mut Criterion, day: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    for m in day {
        bytes.extend_from_slice(&(m.len() as u16).to_be_bytes());
        bytes.extend_from_slice(m);
    }
    let mut g = c.benchmark_group("records");
    g.throughput(Throughput::Elements(day.len() as u64));
    g.sample_size(10);
    g.bench_function("day", |b| {
        b.iter_batched_ref(
            || MarketData::new(config()).expect("valid config"),
            |md| black_box(md.handle_records(&bytes, |_| {})),
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn bench_generate(c: &mut Criterion) {
    const MESSAGES: u64 = 200_000;
    let mut g = c.benchmark_group("generate");
    g.throughput(Throughput::Elements(MESSAGES));
    g.sample_size(10);
    for symbols in [8u16, SYMBOLS] {
        g.bench_function(symbols.to_string(), |b| {
            b.iter_batched_ref(
                || {
                    // Past the directory, into the flow of a day under way.
                    let mut gen_ =
                        Generator::new(GeneratorConfig::new(17, symbols)).expect("valid config");
                    for _ in 0..100_000 {
                        gen_.next_message();
                    }
                    gen_
                },
                |gen_| {
                    let mut buf = [0u8; 64];
                    let mut bytes = 0usize;
                    for _ in 0..MESSAGES {
                        bytes += gen_.next_into(&mut buf).expect("a day without end");
                    }
                    black_box((bytes, buf))
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_generate(c);
    let day = day();
    bench_decode(c, &day);
    bench_apply(c, &day);
    bench_records(c, &day);
}

criterion_group!(market, benches);
criterion_main!(market);
