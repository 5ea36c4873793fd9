//! ITCH 5.0 codec throughput, in messages per second: an Add Order read
//! through the zero-copy view, parsed into the `Repr`, emitted, and a mixed
//! in-memory day walked in the file format (split, then parse each message).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hftnet_wire::itch50::{
    AddOrder, AddOrderRepr, HeaderRepr, Message, MessageType, OrderCancelRepr, OrderDeleteRepr,
    OrderExecutedRepr, OrderReplaceRepr, Price4, Side, Stock, Timestamp, TradeRepr, file,
};

fn header(locate: u16, ns: u64) -> HeaderRepr {
    HeaderRepr {
        stock_locate: locate,
        tracking_number: 0,
        timestamp: Timestamp::new(ns).expect("fits in 48 bits"),
    }
}

fn add_order(i: u64) -> AddOrderRepr {
    AddOrderRepr {
        header: header(13, 34_200_000_000_000 + i),
        order_ref: i,
        side: if i.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        shares: 100,
        stock: Stock::new("AAPL").expect("valid symbol"),
        price: Price4::from_raw(1_852_500 + (i % 100) as u32),
    }
}

/// A day-like mix: about half adds, then deletes, executions, cancels,
/// replaces and trades; every 64th message is of a type this codec does not
/// know (skipped by length).
fn mixed_file(n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n * 64];
    let mut at = 0;
    for i in 0..n as u64 {
        let h = header(13, 34_200_000_000_000 + i);
        let msg: Message = match i % 16 {
            _ if i % 64 == 63 => {
                let unknown = [b'z'; 20];
                at += file::write_record(&unknown, &mut out[at..]).expect("fits");
                continue;
            }
            0..=7 => add_order(i).into(),
            8 | 9 => OrderDeleteRepr {
                header: h,
                order_ref: i - 8,
            }
            .into(),
            10 | 11 => OrderExecutedRepr {
                header: h,
                order_ref: i - 9,
                executed_shares: 40,
                match_number: i,
            }
            .into(),
            12 => OrderCancelRepr {
                header: h,
                order_ref: i - 11,
                cancelled_shares: 10,
            }
            .into(),
            13 | 14 => OrderReplaceRepr {
                header: h,
                original_order_ref: i - 12,
                new_order_ref: i,
                shares: 200,
                price: Price4::from_raw(1_852_600),
            }
            .into(),
            _ => TradeRepr {
                header: h,
                order_ref: 0,
                side: Side::Buy,
                shares: 100,
                stock: Stock::new("MSFT").expect("valid symbol"),
                price: Price4::from_raw(4_100_100),
                match_number: i,
            }
            .into(),
        };
        at += file::emit_record(&msg, &mut out[at..]).expect("fits");
    }
    out.truncate(at);
    out
}

fn bench_add_order(c: &mut Criterion) {
    let bytes = add_order(7).to_bytes();
    let mut g = c.benchmark_group("itch50/add_order");
    g.throughput(Throughput::Elements(1));

    g.bench_function("view_read", |b| {
        b.iter(|| {
            let v = AddOrder::new_checked(black_box(&bytes[..])).expect("long enough");
            let side = v.side().map_or(0, |s| s.as_byte());
            black_box((
                v.stock_locate(),
                v.timestamp(),
                v.order_ref(),
                side,
                v.shares(),
                v.stock(),
                v.price(),
            ))
        });
    });

    g.bench_function("repr_parse", |b| {
        b.iter(|| Message::parse(black_box(&bytes[..])).expect("valid"));
    });

    let msg = Message::parse(&bytes).expect("valid");
    let mut out = [0u8; 64];
    g.bench_function("emit", |b| {
        b.iter(|| {
            let n = black_box(&msg).emit(&mut out).expect("fits");
            black_box(&out[..n]);
        });
    });
    g.finish();
}

fn bench_file(c: &mut Criterion) {
    const N: usize = 100_000;
    let day = mixed_file(N);
    let mut g = c.benchmark_group("itch50/file_mixed");
    g.throughput(Throughput::Elements(N as u64));

    g.bench_function("split", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for r in file::Records::new(black_box(&day)) {
                n += r.expect("well formed").len();
            }
            n
        });
    });

    g.bench_function("split_parse_count", |b| {
        b.iter(|| {
            let mut counts = [0u64; MessageType::COUNT + 1];
            for r in file::Records::new(black_box(&day)) {
                let m = Message::parse(r.expect("well formed")).expect("valid");
                let i = m
                    .message_type()
                    .map_or(MessageType::COUNT, MessageType::index);
                counts[i] += 1;
            }
            counts
        });
    });

    g.bench_function("split_view_dispatch", |b| {
        b.iter(|| {
            let mut volume = 0u64;
            for r in file::Records::new(black_box(&day)) {
                let msg = r.expect("well formed");
                if msg[0] == AddOrderRepr::MSG_TYPE
                    && let Ok(v) = AddOrder::new_checked(msg)
                {
                    volume += u64::from(v.shares());
                }
            }
            volume
        });
    });
    g.finish();
}

criterion_group!(benches, bench_add_order, bench_file);
criterion_main!(benches);
