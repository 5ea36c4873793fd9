//! OUCH 5.0 codec cost, per message: encoding an Enter Order (the trader's
//! hot path: repr to bytes, and writing the fields in place through the
//! view), and parsing an Order Executed (the fill coming back: zero-copy view
//! read, repr decode, and the direction's enum dispatch).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hftnet_wire::ouch50::{
    Capacity, ClOrdId, CrossType, Display, EnterOrder, EnterOrderRepr, IntermarketSweep,
    LiquidityFlag, Options, OrderExecuted, OrderExecutedRepr, OutboundMessage, Price, Side, Symbol,
    TagValue, TimeInForce,
};

fn enter_order(seq: u64, options: Options) -> EnterOrderRepr {
    EnterOrderRepr {
        user_ref_num: 7,
        side: Side::Buy,
        quantity: 100,
        symbol: Symbol::new("AAPL").expect("valid symbol"),
        price: Price::from_raw(1_852_500),
        time_in_force: TimeInForce::Ioc,
        display: Display::Visible,
        capacity: Capacity::Agency,
        intermarket_sweep: IntermarketSweep::NotEligible,
        cross_type: CrossType::ContinuousMarket,
        cl_ord_id: ClOrdId::from_number(seq).expect("14 digits"),
        options,
    }
}

fn bench_enter_order_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("ouch50/enter_order_encode");
    g.throughput(Throughput::Elements(1));
    let mut out = [0u8; 64];

    // The repr as the strategy fills it, the triggering sequence number in
    // the ClOrdID, no appendage.
    g.bench_function("repr_encode", |b| {
        let mut seq = 1_000_000u64;
        b.iter(|| {
            seq += 1;
            let mut o = enter_order(seq, Options::EMPTY);
            o.user_ref_num = black_box(o.user_ref_num);
            let n = o.encode(&mut out).expect("fits");
            black_box(&out[..n]);
        });
    });

    // The same with one option (MinQty) built in the appendage.
    g.bench_function("repr_encode_min_qty", |b| {
        let mut seq = 1_000_000u64;
        b.iter(|| {
            seq += 1;
            let mut opts = Options::new();
            opts.push(TagValue::MinQty(black_box(100))).expect("fits");
            let n = enter_order(seq, opts).encode(&mut out).expect("fits");
            black_box(&out[..n]);
        });
    });

    // A template written once; per order only the changing fields are set in
    // place through the view.
    let mut tpl = [0u8; 47];
    enter_order(0, Options::EMPTY)
        .encode(&mut tpl)
        .expect("fits");
    g.bench_function("view_patch", |b| {
        let mut seq = 1_000_000u64;
        b.iter(|| {
            seq += 1;
            let mut v = EnterOrder::new_unchecked(&mut tpl[..]);
            v.set_user_ref_num(black_box(8));
            v.set_quantity(black_box(100));
            v.set_price(black_box(Price::from_raw(1_852_600)));
            v.set_cl_ord_id(ClOrdId::from_number(seq).expect("14 digits"));
            black_box(&tpl);
        });
    });
    g.finish();
}

fn bench_order_executed_parse(c: &mut Criterion) {
    let mut bytes = [0u8; 36];
    OrderExecutedRepr {
        timestamp: 34_200_000_000_001,
        user_ref_num: 7,
        quantity: 40,
        price: Price::from_raw(1_852_500),
        liquidity_flag: LiquidityFlag::Removed,
        match_number: 99,
        options: Options::EMPTY,
    }
    .encode(&mut bytes)
    .expect("fits");
    let mut g = c.benchmark_group("ouch50/order_executed_parse");
    g.throughput(Throughput::Elements(1));

    g.bench_function("view_read", |b| {
        b.iter(|| {
            let v = OrderExecuted::new_checked(black_box(&bytes[..])).expect("long enough");
            black_box((
                v.user_ref_num(),
                v.quantity(),
                v.price(),
                v.liquidity_flag(),
                v.match_number(),
            ))
        });
    });

    g.bench_function("repr_decode", |b| {
        b.iter(|| OrderExecutedRepr::decode(black_box(&bytes[..])).expect("valid"));
    });

    g.bench_function("message_parse", |b| {
        b.iter(|| OutboundMessage::parse(black_box(&bytes[..])).expect("valid"));
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_enter_order_encode,
    bench_order_executed_parse
);
criterion_main!(benches);
