//! The exchange core's consistency: whatever interleaving of generated flow
//! and client orders, the book a feed handler builds from the published
//! ITCH (`MarketData`, the existing L3 book) equals the exchange's book,
//! every published message applies cleanly (no unknown ref, no oversized
//! execution or cancel, no duplicate), no book is ever crossed, and the
//! order-entry events add up: per session, received = accepted + rejected,
//! each order's open shares as the events tell them equal the exchange's,
//! every execution event has its ITCH print with the same match number.
//!
//! Seeded (the crate's rng) random interleavings, plus a proptest of
//! arbitrary request fields for "no panic, still consistent".

use std::collections::HashMap;

use hftnet_trade::book::{BookConfig, Side as BookSide};
use hftnet_trade::exchange::{Generator, GeneratorConfig};
use hftnet_trade::market::MarketData;
use hftnet_trade::matching::{
    CancelOrder, Exchange, ExchangeConfig, ExchangeOutput, LiquidityFlag, MatchConfig, ModifyOrder,
    OrderEvent, ReplaceOrder, Request, SessionId,
};
use hftnet_trade::rng::Rng;
use hftnet_wire::itch50::{Message, Side, Stock};
use proptest::prelude::*;

const SYMBOLS: u16 = 3;
const TICK: u64 = 100;

fn exchange_config() -> ExchangeConfig {
    ExchangeConfig {
        matching: MatchConfig {
            max_orders: 1 << 12,
            max_locates: 16,
            levels_per_side: 16,
            ref_window: 1 << 16,
        },
        max_sessions: 8,
        client_orders: 256,
        ..ExchangeConfig::default()
    }
}

fn book_config() -> BookConfig {
    BookConfig {
        max_orders: 1 << 12,
        max_locates: 16,
        ref_window: 1 << 16,
        ref_window_prealloc: 1 << 12,
        ..BookConfig::default()
    }
}

/// Applies every published message to a feed-side book, as encoded bytes,
/// and keeps what the sessions and the feed were told.
struct Feed {
    market: MarketData,
    published: Vec<Message>,
    events: Vec<(SessionId, OrderEvent)>,
}

impl ExchangeOutput for Feed {
    fn itch(&mut self, msg: &Message) {
        let mut buf = [0u8; 64];
        let n = msg.emit(&mut buf).expect("a known message");
        self.market.handle(&buf[..n]);
        self.published.push(*msg);
    }
    fn order_event(&mut self, session: SessionId, event: &OrderEvent) {
        self.events.push((session, *event));
    }
}

/// What a client believes about its own orders, from its events alone.
#[derive(Default)]
struct Client {
    next_ref: u32,
    /// UserRefNum → (open shares, locate-less price).
    open: HashMap<u32, u32>,
    received: u64,
}

struct World {
    x: Exchange,
    g: Generator,
    feed: Feed,
    clients: Vec<(SessionId, Client)>,
    rng: Rng,
    now: u64,
    /// Events already applied to the clients' models.
    seen: usize,
    /// Client executions caused by generated messages.
    fills_by_generated: u64,
}

impl World {
    fn new(seed: u64, clients: usize) -> World {
        let mut x = Exchange::new(&exchange_config()).unwrap();
        let g = Generator::new(GeneratorConfig {
            max_orders_per_symbol: 30,
            ..GeneratorConfig::new(seed, SYMBOLS)
        })
        .unwrap();
        let clients = (0..clients)
            .map(|_| (x.open_session().unwrap(), Client::default()))
            .collect();
        World {
            x,
            g,
            feed: Feed {
                market: MarketData::new(book_config()).unwrap(),
                published: Vec::new(),
                events: Vec::new(),
            },
            clients,
            rng: Rng::new(seed ^ 0x5eed),
            now: 0,
            seen: 0,
            fills_by_generated: 0,
        }
    }

    /// One generated message; false at the end of the day.
    fn generated(&mut self) -> bool {
        match self.g.next_message() {
            Some(m) => {
                if let Some(h) = m.header() {
                    self.now = self.now.max(h.timestamp.nanos());
                }
                let before = self.feed.events.len();
                self.x.handle_generated(&m, &mut self.feed);
                self.fills_by_generated += self.feed.events[before..]
                    .iter()
                    .filter(|(_, e)| matches!(e, OrderEvent::Executed { .. }))
                    .count() as u64;
                self.absorb();
                true
            }
            None => false,
        }
    }

    fn symbol(&mut self) -> (Stock, u16) {
        let l = self.rng.range(1, u64::from(SYMBOLS)) as u16;
        let s = self.g.symbol(l).unwrap();
        (s, l)
    }

    /// A price near the book of `l` for `side`: across the spread (taking),
    /// at or inside the touch, or behind it.
    fn price(&mut self, l: u16, side: Side) -> u64 {
        let e = self.x.engine();
        let bid = e.best(l, Side::Buy).map(|v| u64::from(v.price));
        let ask = e.best(l, Side::Sell).map(|v| u64::from(v.price));
        let base = match (bid, ask) {
            (Some(b), Some(a)) => (b + a) / 2 / TICK * TICK,
            (Some(b), None) => b,
            (None, Some(a)) => a,
            (None, None) => 1_000_000,
        };
        let k = self.rng.range(0, 4) * TICK;
        let cross = self.rng.chance(0.5);
        let p = match (side, cross) {
            (Side::Buy, true) => ask.unwrap_or(base) + k,
            (Side::Sell, true) => bid.unwrap_or(base).saturating_sub(k),
            (Side::Buy, false) => bid.unwrap_or(base).saturating_sub(k),
            (Side::Sell, false) => ask.unwrap_or(base) + k,
        };
        p.max(TICK)
    }

    /// One random client request.
    fn client(&mut self) {
        let c = self.rng.below(self.clients.len() as u64) as usize;
        let session = self.clients[c].0;
        let live: Vec<u32> = {
            let mut v: Vec<u32> = self.clients[c].1.open.keys().copied().collect();
            v.sort_unstable();
            v
        };
        let r = self.rng.next_f64();
        let pick = |rng: &mut Rng| live[rng.below(live.len() as u64) as usize];
        let req = if live.is_empty() || r < 0.5 {
            let (symbol, l) = self.symbol();
            let side = if self.rng.chance(0.5) { b'B' } else { b'S' };
            let price = self.price(l, if side == b'B' { Side::Buy } else { Side::Sell });
            let quantity = if self.rng.chance(0.02) {
                0
            } else {
                self.rng.range(1, 12) as u32 * 50
            };
            let client = &mut self.clients[c].1;
            client.next_ref += 1;
            Request::Enter(hftnet_trade::matching::EnterOrder {
                intermarket_sweep: b'N',
                cross_type: b'N',
                user_ref_num: client.next_ref,
                side: if side == b'S' && self.rng.chance(0.2) {
                    b'T'
                } else {
                    side
                },
                quantity,
                symbol,
                price,
                time_in_force: if self.rng.chance(0.3) { b'3' } else { b'0' },
                display: [b'Y', b'Y', b'A', b'N'][self.rng.below(4) as usize],
                capacity: b'P',
                cl_ord_id: hftnet_trade::orders::ClOrdId(*b"SIM           "),
            })
        } else if r < 0.65 {
            let u = pick(&mut self.rng);
            let open = self.clients[c].1.open[&u];
            let quantity = if self.rng.chance(0.5) {
                0
            } else {
                self.rng.below(u64::from(open) + 1) as u32
            };
            Request::Cancel(CancelOrder {
                user_ref_num: u,
                quantity,
            })
        } else if r < 0.85 {
            let u = pick(&mut self.rng);
            let o = self
                .x
                .client_order(session, u)
                .expect("the client's model is right");
            let side = if o.side == hftnet_trade::matching::OrderSide::Buy {
                Side::Buy
            } else {
                Side::Sell
            };
            let price = self.price(o.locate, side);
            let client = &mut self.clients[c].1;
            client.next_ref += 1;
            Request::Replace(ReplaceOrder {
                intermarket_sweep: b'N',
                orig_user_ref_num: u,
                user_ref_num: client.next_ref,
                quantity: o.executed + self.rng.range(1, 10) as u32 * 50,
                price,
                time_in_force: b'0',
                display: if self.rng.chance(0.8) { b'Y' } else { b'N' },
                cl_ord_id: hftnet_trade::orders::ClOrdId(*b"SIMR          "),
            })
        } else if r < 0.95 {
            let u = pick(&mut self.rng);
            let open = self.clients[c].1.open[&u];
            Request::Modify(ModifyOrder {
                user_ref_num: u,
                side: [b'B', b'S', b'T', b'E'][self.rng.below(4) as usize],
                quantity: self.rng.below(u64::from(open) + 2) as u32,
            })
        } else {
            // A retransmission of an old UserRefNum.
            let u = self.clients[c].1.next_ref;
            let (symbol, _) = self.symbol();
            Request::Enter(hftnet_trade::matching::EnterOrder {
                intermarket_sweep: b'N',
                cross_type: b'N',
                user_ref_num: u,
                side: b'B',
                quantity: 100,
                symbol,
                price: 1_000_000,
                time_in_force: b'0',
                display: b'Y',
                capacity: b'A',
                cl_ord_id: hftnet_trade::orders::ClOrdId([b' '; 14]),
            })
        };
        if matches!(req, Request::Enter(_) | Request::Replace(_)) {
            self.clients[c].1.received += 1;
        }
        self.now += 1;
        self.x
            .handle_request(session, &req, self.now, &mut self.feed);
        self.absorb();
    }

    /// Applies new events to the clients' models.
    fn absorb(&mut self) {
        for (s, ev) in &self.feed.events[self.seen..] {
            let client = &mut self.clients.iter_mut().find(|(id, _)| id == s).unwrap().1;
            match *ev {
                OrderEvent::Accepted {
                    user_ref_num,
                    quantity,
                    ..
                } => {
                    client.open.insert(user_ref_num, quantity);
                }
                OrderEvent::Replaced {
                    user_ref_num,
                    orig_user_ref_num,
                    quantity,
                    ..
                } => {
                    assert!(client.open.remove(&orig_user_ref_num).is_some());
                    client.open.insert(user_ref_num, quantity);
                }
                OrderEvent::Executed {
                    user_ref_num,
                    quantity,
                    ..
                }
                | OrderEvent::Canceled {
                    user_ref_num,
                    decrement: quantity,
                    ..
                } => {
                    let o = client
                        .open
                        .get_mut(&user_ref_num)
                        .expect("an event of a live order");
                    *o = o.checked_sub(quantity).expect("never more than open");
                    if *o == 0 {
                        client.open.remove(&user_ref_num);
                    }
                }
                OrderEvent::Modified {
                    user_ref_num,
                    quantity,
                    ..
                } => {
                    // The new open size, never more than before.
                    let o = client.open.get_mut(&user_ref_num).expect("a live order");
                    assert!(quantity > 0 && quantity <= *o);
                    *o = quantity;
                }
                OrderEvent::Rejected { user_ref_num, .. } => {
                    assert!(!client.open.contains_key(&user_ref_num));
                }
                OrderEvent::AccountQuery { .. } => {}
            }
        }
        self.seen = self.feed.events.len();
    }

    /// Everything that must hold at any point.
    fn check(&self) {
        self.x.engine().check_invariants().unwrap();
        let book = self.feed.market.book();
        let report = book.check_invariants().unwrap();
        assert!(
            report.crossed.is_empty() && report.locked.is_empty(),
            "{report:?}"
        );
        let bc = book.counters();
        assert_eq!(
            (
                bc.unknown_ref,
                bc.oversized,
                bc.duplicate_ref,
                bc.zero_shares,
                bc.locate_mismatch
            ),
            (0, 0, 0, 0, 0),
            "a published message did not apply cleanly: {bc:?}"
        );
        for l in 0..16 {
            let mut ours: Vec<(u64, BookSide, u32, u32)> = self
                .x
                .published_orders(l)
                .map(|(r, s, q, p)| {
                    (
                        r,
                        if s == Side::Buy {
                            BookSide::Buy
                        } else {
                            BookSide::Sell
                        },
                        q,
                        p,
                    )
                })
                .collect();
            ours.sort_unstable();
            let theirs: Vec<(u64, BookSide, u32, u32)> = book
                .snapshot(l)
                .unwrap()
                .orders
                .iter()
                .map(|o| (o.order_ref, o.side, o.shares, o.price))
                .collect();
            assert_eq!(
                ours, theirs,
                "locate {l}: the feed's book differs from the exchange's"
            );
        }
        for (s, client) in &self.clients {
            let c = self.x.session_counters(*s).unwrap();
            assert_eq!(c.received, c.accepted + c.rejected);
            assert_eq!(
                c.received + c.retransmissions + c.replaces_ignored,
                client.received
            );
            for (&u, &open) in &client.open {
                let o = self.x.client_order(*s, u).expect("live per the events");
                assert_eq!(o.open, open, "session {s} order {u}");
            }
        }
    }

    /// Every Executed event has an ITCH print with its match number, the
    /// same shares, and both sides of a client-client match agree.
    fn check_prints(&self) {
        let mut prints: HashMap<u64, u32> = HashMap::new();
        for m in &self.feed.published {
            match m {
                Message::OrderExecuted(e) => {
                    prints.insert(e.match_number, e.executed_shares);
                }
                Message::OrderExecutedWithPrice(e) => {
                    prints.insert(e.match_number, e.executed_shares);
                }
                Message::Trade(t) => {
                    prints.insert(t.match_number, t.shares);
                }
                _ => {}
            }
        }
        let mut per_session: HashMap<SessionId, (u64, u64)> = HashMap::new();
        for (s, ev) in &self.feed.events {
            if let OrderEvent::Executed {
                quantity,
                match_number,
                liquidity,
                ..
            } = ev
            {
                assert_eq!(
                    prints.get(match_number),
                    Some(quantity),
                    "match {match_number}"
                );
                let e = per_session.entry(*s).or_default();
                e.0 += 1;
                e.1 += u64::from(*quantity);
                let _ = liquidity;
            }
        }
        for (s, _) in &self.clients {
            let c = self.x.session_counters(*s).unwrap();
            let (n, q) = per_session.get(s).copied().unwrap_or_default();
            assert_eq!((c.executions, c.executed_shares), (n, q));
        }
    }
}

fn run(seed: u64, steps: u64, client_share: f64, check_every: u64) -> World {
    let mut w = World::new(seed, 3);
    while !w.g.in_flow() {
        w.generated();
    }
    for i in 0..steps {
        if w.rng.chance(client_share) {
            w.client();
        } else {
            w.generated();
        }
        if i % check_every == 0 {
            w.check();
        }
    }
    w.g.finish();
    while w.generated() {}
    w.check();
    w.check_prints();
    let t = w.x.session_totals();
    assert_eq!(t.received, t.accepted + t.rejected);
    assert_eq!(
        t.executions,
        w.feed
            .events
            .iter()
            .filter(|(_, e)| matches!(e, OrderEvent::Executed { .. }))
            .count() as u64
    );
    // The end of market hours expired every client order.
    assert!(w.clients.iter().all(|(_, c)| c.open.is_empty()));
    assert_eq!(
        w.x.published_orders(1).count() + w.x.published_orders(2).count(),
        w.x.engine().orders(1).count() + w.x.engine().orders(2).count()
    );
    w
}

#[test]
fn the_feed_book_equals_the_exchange_book_under_random_interleavings() {
    let mut totals = hftnet_trade::matching::ExchangeCounters::default();
    let mut fills = [0u64; 3];
    for seed in 1..=12 {
        let w = run(seed, 20_000, 0.3, 97);
        fills[2] += w.fills_by_generated;
        let c = *w.x.counters();
        totals.generated_dropped += c.generated_dropped;
        totals.generated_adjusted += c.generated_adjusted;
        totals.client_fills += c.client_fills;
        for (_, ev) in &w.feed.events {
            match ev {
                OrderEvent::Executed {
                    liquidity: LiquidityFlag::Removed,
                    ..
                } => fills[0] += 1,
                OrderEvent::Executed { .. } => fills[1] += 1,
                _ => {}
            }
        }
    }
    // The paths that make this hard were taken: clients took generated
    // liquidity and the generator later touched it, generated flow
    // crossed client orders.
    assert!(totals.generated_dropped > 0, "{totals:?}");
    assert!(totals.generated_adjusted > 0, "{totals:?}");
    assert!(
        fills[0] > 100 && fills[1] > 100 && fills[2] > 100,
        "{fills:?}"
    );
}

#[test]
fn the_feed_book_equals_the_exchange_book_after_every_step() {
    for (seed, share) in [(100, 0.1), (101, 0.5)] {
        let w = run(seed, 4_000, share, 1);
        assert!(w.x.counters().client_fills > 0);
    }
}

#[test]
fn without_clients_the_published_stream_is_the_generated_stream() {
    let mut g = Generator::new(GeneratorConfig::new(11, SYMBOLS)).unwrap();
    let mut x = Exchange::new(&exchange_config()).unwrap();
    let mut feed = Feed {
        market: MarketData::new(book_config()).unwrap(),
        published: Vec::new(),
        events: Vec::new(),
    };
    let mut generated = Vec::new();
    while let Some(m) = g.next_message() {
        generated.push(m);
        x.handle_generated(&m, &mut feed);
        if g.in_flow() && g.flow_generated() >= 20_000 {
            g.finish();
        }
    }
    assert_eq!(feed.published.len(), generated.len());
    assert!(feed.published == generated, "messages differ");
    let c = x.counters();
    assert_eq!((c.generated_adjusted, c.generated_dropped), (0, 0));
    assert_eq!(c.generated_as_is, c.generated);
}

#[derive(Clone, Debug)]
enum Step {
    Generated(u8),
    Request(u8, Request),
    /// A message the generator would never send: any ref (colliding with
    /// live ones), locate, size and price.
    Itch(Message),
}

fn any_itch() -> impl Strategy<Value = Message> {
    use hftnet_wire::itch50::{
        AddOrderRepr, HeaderRepr, OrderCancelRepr, OrderDeleteRepr, OrderExecutedRepr,
        OrderExecutedWithPriceRepr, OrderReplaceRepr, Price4, Timestamp,
    };
    let header = (0u16..20).prop_map(|l| HeaderRepr {
        stock_locate: l,
        tracking_number: 0,
        timestamp: Timestamp::MIDNIGHT,
    });
    let r = prop_oneof![0u64..300, any::<u64>()];
    let q = prop_oneof![0u32..1_000, any::<u32>()];
    let p = prop_oneof![(0u32..200).prop_map(|t| 990_000 + t * 100), any::<u32>()];
    let side = prop_oneof![Just(Side::Buy), Just(Side::Sell)];
    prop_oneof![
        (header.clone(), r.clone(), side, q.clone(), p.clone()).prop_map(
            |(header, order_ref, side, shares, p)| {
                Message::AddOrder(AddOrderRepr {
                    header,
                    order_ref,
                    side,
                    shares,
                    stock: Stock(*b"ZZZ     "),
                    price: Price4::from_raw(p),
                })
            }
        ),
        (header.clone(), r.clone()).prop_map(|(header, order_ref)| Message::OrderDelete(
            OrderDeleteRepr { header, order_ref }
        )),
        (header.clone(), r.clone(), q.clone()).prop_map(|(header, order_ref, cancelled_shares)| {
            Message::OrderCancel(OrderCancelRepr {
                header,
                order_ref,
                cancelled_shares,
            })
        }),
        (header.clone(), r.clone(), q.clone()).prop_map(|(header, order_ref, executed_shares)| {
            Message::OrderExecuted(OrderExecutedRepr {
                header,
                order_ref,
                executed_shares,
                match_number: 1,
            })
        }),
        (header.clone(), r.clone(), q.clone(), p.clone()).prop_map(
            |(header, order_ref, executed_shares, p)| {
                Message::OrderExecutedWithPrice(OrderExecutedWithPriceRepr {
                    header,
                    order_ref,
                    executed_shares,
                    match_number: 1,
                    printable: b'Y',
                    execution_price: Price4::from_raw(p),
                })
            }
        ),
        (header, r.clone(), r, q, p).prop_map(
            |(header, original_order_ref, new_order_ref, shares, p)| {
                Message::OrderReplace(OrderReplaceRepr {
                    header,
                    original_order_ref,
                    new_order_ref,
                    shares,
                    price: Price4::from_raw(p),
                })
            }
        ),
    ]
}

fn any_request() -> impl Strategy<Value = Request> {
    let side = prop_oneof![Just(b'B'), Just(b'S'), Just(b'T'), Just(b'E'), any::<u8>()];
    let qty = prop_oneof![0u32..2_000, Just(999_999), Just(1_000_000), any::<u32>()];
    let price = prop_oneof![
        (90u64..110).prop_map(|d| d * 10_000),
        (0u64..2_000_000),
        any::<u64>()
    ];
    let byte = |v: &'static [u8]| prop_oneof![proptest::sample::select(v.to_vec()), any::<u8>()];
    let user = 0u32..40;
    prop_oneof![
        (
            user.clone(),
            side.clone(),
            qty.clone(),
            1u16..=SYMBOLS + 1,
            price.clone(),
            byte(b"03"),
            byte(b"YAN"),
            byte(b"APRO")
        )
            .prop_map(|(u, side, quantity, l, price, tif, display, capacity)| {
                let symbol = Generator::new(GeneratorConfig::new(1, SYMBOLS + 1))
                    .unwrap()
                    .symbol(l)
                    .unwrap();
                Request::Enter(hftnet_trade::matching::EnterOrder {
                    intermarket_sweep: b'N',
                    cross_type: b'N',
                    user_ref_num: u,
                    side,
                    quantity,
                    symbol,
                    price,
                    time_in_force: tif,
                    display,
                    capacity,
                    cl_ord_id: hftnet_trade::orders::ClOrdId([b'p'; 14]),
                })
            }),
        (
            user.clone(),
            user.clone(),
            qty.clone(),
            price,
            byte(b"03"),
            byte(b"YAN")
        )
            .prop_map(|(o, u, quantity, price, tif, display)| Request::Replace(
                ReplaceOrder {
                    intermarket_sweep: b'N',
                    orig_user_ref_num: o,
                    user_ref_num: u,
                    quantity,
                    price,
                    time_in_force: tif,
                    display,
                    cl_ord_id: hftnet_trade::orders::ClOrdId([b'q'; 14]),
                }
            )),
        (user.clone(), qty.clone()).prop_map(|(u, quantity)| Request::Cancel(CancelOrder {
            user_ref_num: u,
            quantity
        })),
        (user, side, qty).prop_map(|(u, side, quantity)| Request::Modify(ModifyOrder {
            user_ref_num: u,
            side,
            quantity
        })),
        Just(Request::AccountQuery),
    ]
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u8..30).prop_map(Step::Generated),
        (0u8..3, any_request()).prop_map(|(s, r)| Step::Request(s, r)),
        any_itch().prop_map(Step::Itch),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Arbitrary requests (bad bytes, huge numbers, unknown orders, equal
    /// UserRefNums) and arbitrary order messages in the "generated" input
    /// (reused refs, wrong locates, zero or huge sizes, prices 0) between
    /// bursts of generated flow: no panic, and the feed still equals the
    /// book.
    #[test]
    fn no_panic_and_still_consistent(seed in 0u64..1_000, steps in proptest::collection::vec(any_step(), 1..120)) {
        let mut w = World::new(seed, 3);
        while !w.g.in_flow() {
            w.generated();
        }
        for step in steps {
            match step {
                Step::Generated(n) => {
                    for _ in 0..n {
                        w.generated();
                    }
                }
                Step::Itch(m) => w.x.handle_generated(&m, &mut w.feed),
                Step::Request(s, req) => {
                    w.now += 1;
                    w.x.handle_request(SessionId::from(s), &req, w.now, &mut w.feed);
                }
            }
        }
        // The clients' models are not kept here (the requests are
        // arbitrary): the books, the counters and the prints are checked.
        for (s, _) in &w.clients {
            let c = w.x.session_counters(*s).unwrap();
            prop_assert_eq!(c.received, c.accepted + c.rejected);
            let rejected = w.feed.events.iter().filter(|(id, e)| id == s && matches!(e, OrderEvent::Rejected { .. })).count() as u64;
            prop_assert_eq!(rejected, c.rejected);
        }
        let clients = std::mem::take(&mut w.clients);
        w.check();
        w.clients = clients;
        w.check_prints();
    }
}
