//! Deterministic simulation of a whole trading day across every part,
//! sans-IO, in virtual time:
//!
//! ```text
//! generator → exchange core ─ITCH→ MoldUDP64 publisher → A and B feeds (loss, duplication,
//!   ▲                              reordering) + re-requests → feed handler → trader's book
//!   │                                                                            │
//!   │ OUCH requests                                                  strategy + risk (Trader)
//!   │                                                                            │ OUCH
//! SoupBinTCP server ◄── byte channel (latency, random chunks, cuts) ◄── SoupBinTCP client
//!   └─ sequenced stream of OUCH events (replayed after a reconnect) ──► trader's orders, position
//! ```
//!
//! The trader's end of the order session is the one the apps' trader loop
//! (`hftnet_apps::trader`) runs, [`OrderSession`]: orders are refused while
//! the session is down, cancels held; after each login an Account Query,
//! and every enter and replace numbered from the exchange's next
//! UserRefNum on is sent again in order; the client asks for its next
//! expected sequence number; the UserRefNum allocator (its mark persisted)
//! lives across reconnects.
//!
//! On even seeds the trader process also dies once mid-day: a fresh
//! [`Trader`] replaces it, keeping only the persisted UserRefNum mark; it
//! logs in from sequence number 1, recovers from the replayed session
//! (`Trader::begin_recovery`, ended by the Account Query's answer) and
//! trades on with the earlier run's resting orders adopted.
//!
//! Exact accounting at the end of each seed: orders sent = accepted +
//! rejected at both ends and equal between them, every risk refusal
//! counted with its reason, every execution identical at both ends (order,
//! quantity, price, match number) and printed on the feed the trader
//! rebuilt, the trader's book equal to the exchange's at checkpoints during
//! the day and at its end, the position and cash equal to the fills (of
//! both runs, when the trader restarted), no order entered twice and no
//! execution applied twice across the cuts, no exchange message the
//! restarted trader could not reconcile.

#[path = "support/sim.rs"]
mod sim;

use std::collections::{HashMap, HashSet, VecDeque};

use hftnet_trade::book::{Book, BookConfig, Side as BookSide};
use hftnet_trade::exchange::{
    FaultInjector, Faults, Generator, GeneratorConfig, Publisher, PublisherConfig,
};
use hftnet_trade::feed::{Counters, Deliver, FeedConfig, FeedHandler};
use hftnet_trade::market::{MarketData, MarketEvents, TopUpdate, TradeUpdate};
use hftnet_trade::matching::ouch::{
    MAX_OUTBOUND_LEN, OuchInbound, encode_event, encode_system_event,
};
use hftnet_trade::matching::{
    Exchange, ExchangeConfig, ExchangeOutput, LiquidityFlag, OrderEvent, SessionId,
};
use hftnet_trade::orders::{ExchangeEvent, OrderMsg, Trigger};
use hftnet_trade::ouch::Decoded;
use hftnet_trade::risk::{PriceBand, RiskConfig, RiskReject};
use hftnet_trade::rng::Rng;
use hftnet_trade::session::{
    OrderSession, OrderSessionConfig, OrderSessionCounters, SessionEvent, Unsent,
};
use hftnet_trade::soupbin::{
    ClientConfig, Server, ServerConfig, ServerConnection, ServerEvent, StreamId,
};
use hftnet_trade::strategy::{Maker, MakerConfig, Strategy, Taker, TakerConfig};
use hftnet_trade::trader::{Outbox, Trader, TraderConfig};
use hftnet_wire::itch50::{Message, Side, Stock};
use hftnet_wire::moldudp64::{HEADER_LEN, Request as MoldRequest, Session as MoldSession};
use hftnet_wire::ouch50::EventCode;
use hftnet_wire::soupbintcp::{Password, Session, Username};
use sim::{Event, FeedNet, Pipe, chunks, feed_id};

const US: u64 = 1_000;
/// The simulation's step: every part runs once per step.
const STEP: u64 = US;
/// One-way latency of feeds A and B, and of a re-request and its answer.
const FEED_LATENCY: [u64; 2] = [5 * US, 8 * US];
const REQUEST_LATENCY: u64 = 20 * US;
/// Time between two bursts of generated messages.
const BURST_GAP: u64 = 2 * US;
/// Instruments of the generated day; the trader trades them all.
const SYMBOLS: u16 = 6;
/// The trader's book is compared with the exchange's every this many
/// published messages.
const CHECK_EVERY: u64 = 1_500;
/// Steps at most (a bound, far above a day's length).
const MAX_STEPS: u64 = 2_000_000;

/// Resting orders of each locate as `(ref, buy, shares, price)`, sorted.
type Books = Vec<Vec<(u64, bool, u32, u32)>>;
/// An execution: (UserRefNum, shares, price, match number).
type Fill = (u32, u32, u64, u64);

fn book_config() -> BookConfig {
    BookConfig {
        max_orders: 1 << 15,
        ref_window: 1 << 20,
        ref_window_prealloc: 1 << 14,
        max_locates: 64,
        ..BookConfig::default()
    }
}

fn credentials() -> (Username, Password) {
    (
        Username::new("trader").unwrap(),
        Password::new("secret").unwrap(),
    )
}

fn trader_books(book: &Book) -> Books {
    (1..=SYMBOLS)
        .map(|l| {
            let mut v: Vec<_> = book
                .snapshot(l)
                .map(|s| s.orders)
                .unwrap_or_default()
                .iter()
                .map(|o| (o.order_ref, o.side == BookSide::Buy, o.shares, o.price))
                .collect();
            v.sort_unstable();
            v
        })
        .collect()
}

/// The core's output during one call, acted on after it returns.
#[derive(Default)]
struct Collect {
    itch: Vec<Message>,
    events: Vec<(SessionId, OrderEvent)>,
}

impl ExchangeOutput for Collect {
    fn itch(&mut self, m: &Message) {
        self.itch.push(*m);
    }
    fn order_event(&mut self, s: SessionId, e: &OrderEvent) {
        self.events.push((s, *e));
    }
}

/// The exchange: generator, core, MoldUDP64 publisher with its two
/// injectors, SoupBinTCP server with the trader's stream, OUCH inbound.
struct ExchangeSide {
    generator: Generator,
    flow_messages: u64,
    core: Exchange,
    session: SessionId,
    publisher: Publisher,
    injectors: [FaultInjector; 2],
    soup: Server,
    stream: StreamId,
    stream_len: u64,
    inbound: OuchInbound,
    out: Collect,
    /// Executed events of the trader's session, as encoded.
    fills: Vec<Fill>,
    /// Of them, the ones that added liquidity (a resting order hit).
    added: u64,
    /// UserRefNums accepted (Accepted or Replaced): each once.
    accepted: HashSet<u32>,
    /// ITCH messages published (the last MoldUDP64 sequence number).
    published: u64,
    /// The core's books when message `seq` was the last published.
    checkpoints: VecDeque<(u64, Books)>,
    next_checkpoint: u64,
    packet_index: u64,
    day_over: bool,
}

impl ExchangeSide {
    fn new(seed: u64, flow_messages: u64, faults: Faults) -> Self {
        let generator = Generator::new(GeneratorConfig::new(seed, SYMBOLS)).unwrap();
        let mut core = Exchange::new(&ExchangeConfig::default()).unwrap();
        let session = core.open_session().unwrap();
        let publisher = Publisher::new(PublisherConfig {
            heartbeat_interval_ns: 100 * US,
            history: 1 << 20,
            ..PublisherConfig::new(MoldSession::new("DAYSIM").unwrap())
        })
        .unwrap();
        let (u, p) = credentials();
        let mut soup = Server::new(ServerConfig::new(u, p)).unwrap();
        let stream = soup.open(Session::new("DAYSIM").unwrap(), Some(u)).unwrap();
        let mut buf = [0u8; 16];
        let n = encode_system_event(EventCode::StartOfDay, 0, &mut buf).unwrap();
        soup.publish(stream, &buf[..n]).unwrap();
        Self {
            generator,
            flow_messages,
            core,
            session,
            publisher,
            injectors: [
                FaultInjector::new(faults, seed ^ 0xa).unwrap(),
                FaultInjector::new(faults, seed ^ 0xb).unwrap(),
            ],
            soup,
            stream,
            stream_len: 1,
            inbound: OuchInbound::new(),
            out: Collect::default(),
            fills: Vec::new(),
            added: 0,
            accepted: HashSet::new(),
            published: 0,
            checkpoints: VecDeque::new(),
            next_checkpoint: CHECK_EVERY,
            packet_index: 0,
            day_over: false,
        }
    }

    fn books(&self) -> Books {
        (1..=SYMBOLS)
            .map(|l| {
                let mut v: Vec<_> = self
                    .core
                    .published_orders(l)
                    .map(|(r, s, q, p)| (r, s == Side::Buy, q, p))
                    .collect();
                v.sort_unstable();
                v
            })
            .collect()
    }

    /// Publishes what the core produced: ITCH into MoldUDP64 packets on
    /// both feeds, OUCH events into the session's stream.
    fn drain(&mut self, now: u64, net: &mut FeedNet) {
        let mut pkts: Vec<Vec<u8>> = Vec::new();
        let mut buf = [0u8; 64];
        for m in self.out.itch.drain(..) {
            let n = m.emit(&mut buf).unwrap();
            self.publisher
                .publish(now, &buf[..n], &mut |p: &[u8]| pkts.push(p.to_vec()))
                .unwrap();
            self.published += 1;
        }
        self.publisher
            .flush(now, &mut |p: &[u8]| pkts.push(p.to_vec()));
        let mut ev = [0u8; MAX_OUTBOUND_LEN];
        for (s, e) in self.out.events.drain(..) {
            assert_eq!(s, self.session);
            let n = encode_event(&e, now, &mut ev).unwrap();
            self.soup.publish(self.stream, &ev[..n]).unwrap();
            self.stream_len += 1;
            match e {
                OrderEvent::Executed {
                    user_ref_num,
                    quantity,
                    price,
                    match_number,
                    liquidity,
                } => {
                    self.added += u64::from(liquidity != LiquidityFlag::Removed);
                    self.fills
                        .push((user_ref_num, quantity, price, match_number));
                }
                OrderEvent::Accepted { user_ref_num, .. }
                | OrderEvent::Replaced { user_ref_num, .. } => assert!(
                    self.accepted.insert(user_ref_num),
                    "UserRefNum {user_ref_num} accepted twice"
                ),
                _ => {}
            }
        }
        if self.published >= self.next_checkpoint {
            let books = self.books();
            self.checkpoints.push_back((self.published, books));
            self.next_checkpoint = self.published + CHECK_EVERY;
        }
        for p in &pkts {
            net.downstream(now, p, &mut self.injectors, &[], &mut self.packet_index);
        }
    }

    /// A burst of 1 to 8 generated messages; at the end of the day, End of
    /// Day on the order session and the end of the MoldUDP64 session.
    fn burst(&mut self, now: u64, rng: &mut Rng, net: &mut FeedNet) {
        for _ in 0..rng.range(1, 8) {
            let Some(m) = self.generator.next_message() else {
                self.day_over = true;
                break;
            };
            if self.generator.in_flow() && self.generator.generated() >= self.flow_messages {
                self.generator.finish();
            }
            self.core.handle_generated(&m, &mut self.out);
        }
        self.drain(now, net);
        if self.day_over {
            let mut buf = [0u8; 16];
            let n = encode_system_event(EventCode::EndOfDay, now, &mut buf).unwrap();
            self.soup.publish(self.stream, &buf[..n]).unwrap();
            self.stream_len += 1;
            let mut pkts = Vec::new();
            self.publisher
                .end_session(now, &mut |p: &[u8]| pkts.push(p.to_vec()));
            for p in &pkts {
                net.downstream(now, p, &mut self.injectors, &[], &mut self.packet_index);
            }
            net.flush(now, &mut self.injectors);
        }
    }

    /// OUCH messages (Unsequenced Data payloads) of the trader's session.
    fn orders(&mut self, now: u64, payloads: &[Vec<u8>], net: &mut FeedNet) {
        for p in payloads {
            self.inbound
                .handle(&mut self.core, self.session, p, now, &mut self.out);
            self.drain(now, net);
        }
    }
}

/// What the trader's feed handler delivered.
#[derive(Default)]
struct Md {
    delivered: u64,
    lost: Vec<(u64, u64)>,
    ended: Option<u64>,
    /// Shares printed per match number (E, C, P).
    prints: HashMap<u64, u32>,
    /// Checkpoints compared.
    checked: u64,
}

/// The trader and the orders it produced, not yet on the wire.
struct Orders<S> {
    trader: Trader<S>,
    outbox: Outbox,
    to_send: Vec<OrderMsg>,
}

impl<S: Strategy> Orders<S> {
    fn take_outbox(&mut self) {
        self.to_send.extend_from_slice(self.outbox.as_slice());
        self.outbox.clear();
    }
}

/// The feed handler's consumer on the trader's side: the book, then the
/// trader with the trigger of each message.
struct Sink<'a, S> {
    market: &'a mut MarketData,
    md: &'a mut Md,
    orders: &'a mut Orders<S>,
    checkpoints: &'a mut VecDeque<(u64, Books)>,
    now: u64,
}

struct Events<'a, S> {
    orders: &'a mut Orders<S>,
    at: Trigger,
    now: u64,
}

impl<S: Strategy> MarketEvents for Events<'_, S> {
    fn top(&mut self, u: &TopUpdate) {
        let o = &mut *self.orders;
        o.trader.handle_top(u, self.at, self.now, &mut o.outbox);
        o.take_outbox();
    }
    fn trade(&mut self, t: &TradeUpdate) {
        let o = &mut *self.orders;
        o.trader.handle_trade(t, self.at, self.now, &mut o.outbox);
        o.take_outbox();
    }
}

impl<S: Strategy> Deliver for Sink<'_, S> {
    fn message(&mut self, sequence: u64, message: &[u8]) {
        assert_eq!(sequence, self.md.delivered + 1, "delivered in order");
        self.md.delivered = sequence;
        let print = match Message::parse(message) {
            Ok(Message::OrderExecuted(e)) => Some((e.match_number, e.executed_shares)),
            Ok(Message::OrderExecutedWithPrice(e)) => Some((e.match_number, e.executed_shares)),
            Ok(Message::Trade(t)) => Some((t.match_number, t.shares)),
            _ => None,
        };
        if let Some((m, q)) = print {
            assert!(
                self.md.prints.insert(m, q).is_none(),
                "match {m} printed twice"
            );
        }
        let at = Trigger {
            seq: sequence,
            rx_ns: self.now,
        };
        self.market.handle_events(
            message,
            &mut Events {
                orders: self.orders,
                at,
                now: self.now,
            },
        );
        if let Some((seq, books)) = self.checkpoints.front() {
            assert!(*seq >= sequence, "checkpoint {seq} skipped");
            if *seq == sequence {
                assert_eq!(
                    &trader_books(self.market.book()),
                    books,
                    "after message {seq}: the trader's book differs from the exchange's"
                );
                self.md.checked += 1;
                self.checkpoints.pop_front();
            }
        }
    }

    fn lost(&mut self, first: u64, count: u64) {
        self.md.lost.push((first, count));
    }

    fn end_of_session(&mut self, sequence: u64) {
        assert!(self.md.ended.is_none(), "end of session reported twice");
        self.md.ended = Some(sequence);
    }
}

/// One TCP connection of the order session: the exchange's end (the
/// trader's is in [`OrderSession`]) and the bytes in flight (lost when it
/// is cut).
struct Link {
    server: ServerConnection,
    to_server: Pipe,
    to_client: Pipe,
}

/// The trader's side of the order session, and what the checks need.
struct SessionSide {
    session: OrderSession,
    /// The counters of a dead process's session.
    before: OrderSessionCounters,
    link: Option<Link>,
    reconnect_at: Option<u64>,
    /// Every enter and replace this process sent, the first time, in order.
    sent: Vec<OrderMsg>,
    /// Those of the earlier runs (before a restart).
    sent_before: Vec<OrderMsg>,
    /// Restarts of the trader process.
    restarts: u64,
    /// The dead runs' replaces voided, and orders pending at death.
    before_void: u64,
    before_pending: u64,
    /// Replace requests in flight to the exchange when a trader died: lost
    /// with it (never resent: the next process does not know them). One
    /// the dead trader had voided (its order ended first) is a void the
    /// exchange never saw.
    replaces_lost_at_death: u64,
    /// Sequenced messages read (every one exactly once).
    sequenced: u64,
    fills: Vec<Fill>,
    cuts: u64,
    /// The persisted UserRefNum mark.
    mark: u32,
    bad_frames: u64,
}

/// What one seed runs.
struct Scenario {
    seed: u64,
    flow_messages: u64,
    feed_faults: Faults,
    /// Chance per step that the order connection is cut (during the day).
    cut_chance: f64,
    /// The trader process dies and restarts once this many ITCH messages
    /// are published.
    restart_after: Option<u64>,
}

/// Figures of one run, for the checks across seeds.
#[derive(Debug, Default, Clone, Copy)]
struct Outcome {
    sent: u64,
    fills: u64,
    added: u64,
    cuts: u64,
    connections: u64,
    logins: u64,
    resent: u64,
    retransmissions: u64,
    held_sent: u64,
    disconnected: u64,
    risk_refusals: u64,
    feed: Option<Counters>,
    checked: u64,
    restarts: u64,
    recovered_orders: u64,
    recovered_fills: u64,
    recovered_late: u64,
}

fn run<S: Strategy>(s: &Scenario, make: impl Fn(&[Stock]) -> S) -> Outcome {
    let mut rng = Rng::new(s.seed);
    let mut net = FeedNet::new(FEED_LATENCY);
    let mut ex = ExchangeSide::new(s.seed, s.flow_messages, s.feed_faults);
    let symbols: Vec<String> = (1..=SYMBOLS)
        .map(|l| {
            ex.generator
                .symbol(l)
                .unwrap()
                .to_string()
                .trim()
                .to_owned()
        })
        .collect();
    let cfg = TraderConfig {
        symbols,
        risk: RiskConfig {
            max_order_qty: 1_000,
            max_notional_dollars: 1_000_000,
            // Small enough that the strategies run into it.
            max_position: 400,
            max_total_position: 1_500,
            price_band: PriceBand::Bps(500),
            orders_per_sec: 1_000_000,
            burst: 1_000,
            max_open_orders: 16,
            duplicate_window_ns: 0,
        },
        ref_block: 16,
    };
    let table = cfg.symbol_table().unwrap();
    let trader = Trader::new(cfg.clone(), make(&table)).unwrap();
    let mut orders = Orders {
        trader,
        outbox: Outbox::default(),
        to_send: Vec::new(),
    };
    orders.trader.set_connected(false);
    let mut feed = FeedHandler::new(FeedConfig {
        session: Some(MoldSession::new("DAYSIM").unwrap()),
        recovery: true,
        gap_wait_ns: 50 * US,
        request_timeout_ns: 200 * US,
        ..FeedConfig::default()
    })
    .unwrap();
    let mut market = MarketData::new(book_config()).unwrap();
    let mut md = Md::default();
    let mut ses = SessionSide {
        session: order_session(),
        before: OrderSessionCounters::default(),
        link: None,
        reconnect_at: Some(0),
        sent: Vec::new(),
        sent_before: Vec::new(),
        restarts: 0,
        before_void: 0,
        before_pending: 0,
        replaces_lost_at_death: 0,
        sequenced: 0,
        fills: Vec::new(),
        cuts: 0,
        mark: 0,
        bad_frames: 0,
    };
    let mut last_urn = 0u32;
    let mut now = 0u64;
    let mut next_burst = 50 * US;
    let mut buf = vec![0u8; 1 << 16];
    let mut finished = false;

    for _ in 0..MAX_STEPS {
        // The exchange's generated flow.
        if !ex.day_over && now >= next_burst {
            ex.burst(now, &mut rng, &mut net);
            next_burst = now + BURST_GAP;
        }
        if ex.publisher.poll_timeout().is_some_and(|t| now >= t) {
            let mut pkts = Vec::new();
            net.flush(now, &mut ex.injectors);
            ex.publisher
                .handle_timeout(now, &mut |p: &[u8]| pkts.push(p.to_vec()));
            for p in &pkts {
                net.downstream(now, p, &mut ex.injectors, &[], &mut ex.packet_index);
            }
        }
        // The market-data network, the feed handler, the trader.
        while let Some(ev) = net.pop_due(now) {
            match ev {
                Event::Arrive(i, bytes) => {
                    let mut sink = Sink {
                        market: &mut market,
                        md: &mut md,
                        orders: &mut orders,
                        checkpoints: &mut ex.checkpoints,
                        now,
                    };
                    feed.handle_packet(feed_id(i), now, &bytes, &mut sink);
                }
                Event::Request(bytes) => {
                    let mut replies = Vec::new();
                    ex.publisher
                        .handle_request(now, &bytes, &mut |p: &[u8]| replies.push(p.to_vec()))
                        .unwrap();
                    for p in replies {
                        net.push(now + REQUEST_LATENCY, Event::Arrive(2, p));
                    }
                }
            }
            send(
                now,
                &mut orders,
                &mut ses,
                &mut rng,
                &mut last_urn,
                &mut buf,
            );
        }
        if feed.poll_timeout().is_some_and(|t| now >= t) {
            let mut sink = Sink {
                market: &mut market,
                md: &mut md,
                orders: &mut orders,
                checkpoints: &mut ex.checkpoints,
                now,
            };
            feed.handle_timeout(now, &mut sink);
        }
        while let Some(r) = feed.poll_request(now) {
            let mut b = vec![0u8; HEADER_LEN];
            r.emit(&mut MoldRequest::new_unchecked(&mut b[..]));
            net.push(now + REQUEST_LATENCY, Event::Request(b));
        }
        orders.trader.handle_timer(now, &mut orders.outbox);
        orders.take_outbox();
        // The UserRefNum mark is persisted before its numbers are used.
        if let Some(m) = orders.trader.refs_mut().poll_persist() {
            ses.mark = m;
            orders.trader.refs_mut().confirm_persisted(m);
        }
        send(
            now,
            &mut orders,
            &mut ses,
            &mut rng,
            &mut last_urn,
            &mut buf,
        );

        // The order session: a cut now and then during the day, the
        // reconnect, both ends of the connection.
        if !ex.day_over && ses.link.is_some() && rng.chance(s.cut_chance) {
            cut(now, &mut ses, &mut orders.trader, &mut rng);
        }
        // (While connected: the process dies with its connection.)
        let due = s.restart_after.is_some_and(|n| ex.published >= n);
        if due && ses.restarts == 0 && ses.link.is_some() {
            let fresh = Trader::new(cfg.clone(), make(&table)).unwrap();
            restart(now, &mut ses, &mut orders, fresh, &mut rng);
        }
        if ses.link.is_none() && ses.reconnect_at.is_some_and(|t| now >= t) {
            ses.reconnect_at = None;
            ses.session.connect(now, &mut orders.trader).unwrap();
            ses.link = Some(Link {
                server: ex.soup.connect(now),
                to_server: Pipe::default(),
                to_client: Pipe::default(),
            });
        }
        // Both ends; after a login the session sends its Account Query,
        // then on the answer the enters and replaces the old connection
        // lost, then the held cancels, and the trader is up again.
        link_step(
            now,
            &mut ses,
            &mut ex,
            &mut orders.trader,
            &mut net,
            &mut rng,
            &mut buf,
        );
        send(
            now,
            &mut orders,
            &mut ses,
            &mut rng,
            &mut last_urn,
            &mut buf,
        );

        let quiet = net.events.is_empty()
            && ses
                .link
                .as_ref()
                .is_some_and(|l| l.to_server.is_empty() && l.to_client.is_empty());
        if ex.day_over && md.ended.is_some() && quiet && ses.sequenced == ex.stream_len {
            finished = true;
            break;
        }
        now += STEP;
    }
    assert!(finished, "seed {}: the day did not finish", s.seed);
    if let Some(l) = ses.link.take() {
        ses.bad_frames += l.server.counters().traffic.bad_frames.total();
    }
    ses.bad_frames += ses.session.client_counters().traffic.bad_frames.total();
    let mut sc = ses.before;
    sc.add(ses.session.counters());
    assert_eq!(
        (
            sc.not_ready,
            sc.held_overflow,
            sc.send_failures,
            sc.encode_errors
        ),
        (0, 0, 0, 0),
        "seed {}: {sc:?}",
        s.seed
    );

    check(s, &ex, &orders.trader, &market, &md, &ses);
    let t = orders.trader.counters();
    assert_eq!(
        ses.restarts,
        u64::from(s.restart_after.is_some()),
        "seed {}",
        s.seed
    );
    let risk = orders.trader.risk_counters();
    Outcome {
        sent: t.enters_sent + t.replaces_sent,
        fills: ses.fills.len() as u64,
        added: ex.added,
        cuts: ses.cuts,
        connections: sc.connections,
        logins: sc.logins,
        resent: sc.resent,
        retransmissions: ex
            .core
            .session_counters(ex.session)
            .unwrap()
            .retransmissions,
        held_sent: sc.held_sent,
        disconnected: risk.of(RiskReject::Disconnected),
        risk_refusals: risk.total_rejected(),
        feed: Some(feed.counters()),
        checked: md.checked,
        restarts: ses.restarts,
        recovered_orders: t.recovered_orders,
        recovered_fills: t.recovered_fills,
        recovered_late: t.recovered_late,
    }
}

/// The trader's order session: the day's login, a resend ring and a held
/// buffer that no day of the simulation outgrows.
fn order_session() -> OrderSession {
    let (u, p) = credentials();
    OrderSession::new(OrderSessionConfig {
        resend_ring: 1 << 16,
        held: 1 << 16,
        ..OrderSessionConfig::new(ClientConfig::new(u, p))
    })
    .unwrap()
}

/// Sends what the trader decided: on the wire when the session is up and
/// settled (logged in, Account Query answered, resend out), cancels held
/// otherwise. Every enter and replace carries a fresh UserRefNum, above
/// the last and within the persisted mark.
fn send<S: Strategy>(
    now: u64,
    orders: &mut Orders<S>,
    ses: &mut SessionSide,
    rng: &mut Rng,
    last_urn: &mut u32,
    buf: &mut [u8],
) {
    for m in std::mem::take(&mut orders.to_send) {
        let framed = match ses.session.send_order(&m, buf, || now) {
            Ok(f) => f,
            Err(Unsent::Held) => continue,
            Err(e) => {
                panic!("{m:?} not sent: {e:?} (an enter or replace while the session was down?)")
            }
        };
        let urn = match m {
            OrderMsg::Enter(o, _) => Some(o.user_ref_num.0),
            OrderMsg::Replace(o, _) => Some(o.user_ref_num.0),
            OrderMsg::Cancel(..) => None,
        };
        if let Some(n) = urn {
            assert!(n > *last_urn, "UserRefNum {n} after {last_urn}");
            assert!(
                n <= ses.mark,
                "UserRefNum {n} above the persisted mark {}",
                ses.mark
            );
            *last_urn = n;
            ses.sent.push(m);
        }
        let l = ses.link.as_mut().expect("a connection");
        l.to_server
            .send(now + rng.range(3, 12) * US, &buf[..framed.len]);
    }
}

/// Cuts the order connection: the bytes in flight both ways are lost;
/// the client reconnects later asking for its next expected sequence
/// number.
fn cut<S: Strategy>(now: u64, ses: &mut SessionSide, trader: &mut Trader<S>, rng: &mut Rng) {
    if let Some(l) = ses.link.take() {
        ses.bad_frames += l.server.counters().traffic.bad_frames.total();
    }
    ses.session.connection_lost(trader);
    ses.cuts += 1;
    ses.reconnect_at = Some(now + rng.range(10, 300) * US);
}

/// The trader process dies (its connection, the bytes in flight, its
/// orders not yet sent and its held cancels with it) and a fresh one,
/// `fresh`, starts with nothing but the persisted mark: it logs in from
/// sequence number 1 and recovers from the replayed session.
fn restart<S: Strategy>(
    now: u64,
    ses: &mut SessionSide,
    orders: &mut Orders<S>,
    fresh: Trader<S>,
    rng: &mut Rng,
) {
    if let Some(l) = ses.link.take() {
        ses.bad_frames += l.server.counters().traffic.bad_frames.total();
        ses.replaces_lost_at_death += l.to_server.in_flight().map(replace_frames).sum::<u64>();
    }
    let dead_session = std::mem::replace(&mut ses.session, order_session());
    ses.bad_frames += dead_session.client_counters().traffic.bad_frames.total();
    ses.before.add(dead_session.counters());
    let dead = std::mem::replace(&mut orders.trader, fresh);
    ses.before_void += dead.counters().replaces_void;
    ses.before_pending += dead.accounting().pending;
    orders.outbox.clear();
    orders.to_send.clear();
    let sent = std::mem::take(&mut ses.sent);
    ses.sent_before.extend(sent);
    ses.fills.clear();
    ses.sequenced = 0;
    ses.restarts += 1;
    let t = &mut orders.trader;
    t.refs_mut().restore(ses.mark);
    t.set_connected(false);
    t.begin_recovery();
    ses.reconnect_at = Some(now + rng.range(10, 300) * US);
}

/// The Replace Order requests among the SoupBinTCP frames of `bytes`
/// (Unsequenced Data `U` carrying OUCH `U`).
fn replace_frames(bytes: &[u8]) -> u64 {
    let mut n = 0;
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        let body = &bytes[at + 2..(at + 2 + len).min(bytes.len())];
        n += u64::from(body.len() >= 2 && body[0] == b'U' && body[1] == b'U');
        at += 2 + len;
    }
    n
}

/// Both ends of the order connection for one step.
fn link_step<S: Strategy>(
    now: u64,
    ses: &mut SessionSide,
    ex: &mut ExchangeSide,
    trader: &mut Trader<S>,
    net: &mut FeedNet,
    rng: &mut Rng,
    buf: &mut [u8],
) {
    let Some(l) = ses.link.as_mut() else {
        return;
    };
    // The exchange's end: the client's bytes in random chunks, then the
    // OUCH requests into the core, then what the session has to send.
    let input = l.to_server.take(now);
    let mut payloads = Vec::new();
    for part in chunks(&input, rng) {
        l.server.handle_input(now, part, &ex.soup, |e| {
            if let ServerEvent::Unsequenced(m) = e {
                payloads.push(m.to_vec());
            }
        });
    }
    if l.server.poll_timeout().is_some_and(|t| now >= t) {
        l.server.handle_timeout(now);
    }
    ex.orders(now, &payloads, net);
    loop {
        let n = l.server.poll_transmit(now, &ex.soup, buf);
        if n == 0 {
            break;
        }
        l.to_client.send(now + rng.range(3, 12) * US, &buf[..n]);
    }
    assert_eq!(
        l.server.close_reason(),
        None,
        "the server closed the session"
    );

    // The trader's end.
    let input = l.to_client.take(now);
    for part in chunks(&input, rng) {
        let (fills, sequenced) = (&mut ses.fills, &mut ses.sequenced);
        ses.session.handle_input(now, part, trader, |e| match e {
            SessionEvent::Message { decoded, .. } => {
                *sequenced += 1;
                match decoded {
                    Some(Decoded::Event(ExchangeEvent::Executed {
                        user_ref_num,
                        quantity,
                        price,
                        match_number,
                        ..
                    })) => fills.push((
                        user_ref_num.0,
                        quantity,
                        u64::from(price.raw()),
                        match_number,
                    )),
                    Some(_) => {}
                    None => panic!("the exchange sent a message the trader cannot read"),
                }
            }
            SessionEvent::Gap { .. } => panic!("a gap in the sequenced stream"),
            SessionEvent::LoginRejected(r) => panic!("login rejected: {r:?}"),
            SessionEvent::LoggedIn { .. } | SessionEvent::EndOfSession => {}
        });
    }
    ses.session.handle_timeout(now);
    assert_eq!(
        ses.session.close_reason(),
        None,
        "the client closed the session"
    );
    loop {
        let n = ses.session.poll_transmit(now, trader, buf);
        if n == 0 {
            break;
        }
        l.to_server.send(now + rng.range(3, 12) * US, &buf[..n]);
    }
}

/// The exact accounting at the end of the day.
fn check<S: Strategy>(
    s: &Scenario,
    ex: &ExchangeSide,
    trader: &Trader<S>,
    market: &MarketData,
    md: &Md,
    ses: &SessionSide,
) {
    let seed = s.seed;
    // The feed: every message delivered once, in order (recovery made up
    // every loss), the trader's book equal to the exchange's at every
    // checkpoint and at the end.
    assert!(md.lost.is_empty(), "seed {seed}: lost {:?}", md.lost);
    assert_eq!(md.delivered, ex.published, "seed {seed}");
    assert_eq!(md.ended, Some(ex.published + 1), "seed {seed}");
    assert!(ex.checkpoints.is_empty(), "seed {seed}: checkpoints left");
    assert_eq!(md.checked, ex.published / CHECK_EVERY, "seed {seed}");
    assert_eq!(
        trader_books(market.book()),
        ex.books(),
        "seed {seed}: the books differ at the end"
    );
    market.book().check_invariants().unwrap();
    ex.core.engine().check_invariants().unwrap();

    // Orders: sent = accepted + rejected at both ends, the same numbers.
    let a = trader.accounting();
    let t = trader.counters();
    let c = ex.core.session_counters(ex.session).unwrap();
    assert_eq!(a.pending, 0, "seed {seed}: {a:?}");
    assert!(a.balanced(), "seed {seed}: {a:?}");
    assert_eq!(a.sent, t.enters_sent + t.replaces_sent);
    assert_eq!(a.sent, ses.sent.len() as u64);
    assert_eq!(c.received, c.accepted + c.rejected, "seed {seed}: {c:?}");
    // Every enter and replace reached the exchange exactly once as new:
    // those lost with a connection were sent again, and any sent again
    // that had arrived was ignored as a retransmission.
    // Replaces of orders that ended first are silently ignored by the
    // exchange (OUCH 5.0, 2.2 case 1) and voided by the trader; a resend
    // after a reconnect may present one again, ignored again.
    // A restarted trader found the dead run's in the replayed history:
    // every enter and replace the exchange accepted, every one it
    // rejected, adopted or counted.
    let (recovered, recovered_rejects) = (
        t.recovered_orders + t.recovered_replaces,
        t.recovered_rejects,
    );
    if ses.restarts == 0 {
        assert_eq!((recovered, recovered_rejects), (0, 0), "seed {seed}: {t:?}");
        assert_eq!(c.received, a.sent - t.replaces_void, "seed {seed}");
    }
    assert_eq!(
        (c.accepted, c.rejected),
        (
            a.accepted + recovered,
            a.rejected - t.replaces_void + recovered_rejects
        ),
        "seed {seed}: exchange {c:?}, trader {a:?} {t:?}"
    );
    let voids = t.replaces_void + ses.before_void;
    // Every void is a replace the exchange ignored (its order had ended),
    // but for one in flight when its trader died (lost with it).
    assert!(
        c.replaces_ignored + ses.replaces_lost_at_death >= voids,
        "seed {seed}: {} lost at death, {c:?} {t:?}",
        ses.replaces_lost_at_death
    );
    assert!(
        c.retransmissions + c.replaces_ignored
            <= ses.before.resent + ses.session.counters().resent + voids + ses.before_pending,
        "seed {seed}: {c:?}"
    );
    assert_eq!(
        ex.accepted.len() as u64,
        a.accepted + recovered,
        "seed {seed}"
    );
    assert_eq!(t.unexpected, 0, "seed {seed}: {t:?}");
    assert_eq!(t.overfills, 0, "seed {seed}: {t:?}");
    assert_eq!(
        trader.open_orders(),
        0,
        "seed {seed}: all closed at the end of the day"
    );
    // Every intent went out or was refused with a counted reason.
    let risk = trader.risk_counters();
    let by_reason: u64 = risk.rejected.iter().sum();
    assert_eq!(by_reason, risk.total_rejected());
    assert_eq!(
        t.intents,
        t.enters_sent + t.replaces_sent + t.cancels_sent + risk.total_rejected(),
        "seed {seed}: {t:?} {risk:?}"
    );

    // Executions: identical at both ends, in the same order, each once,
    // each printed on the feed the trader rebuilt.
    assert_eq!(ses.fills, ex.fills, "seed {seed}: fills differ");
    // A match is one fill per side: twice for the session only when its
    // own orders met (no self-match prevention), never twice for an order.
    let fills_of: HashSet<(u64, u32)> = ses.fills.iter().map(|f| (f.3, f.0)).collect();
    assert_eq!(fills_of.len(), ses.fills.len(), "seed {seed}: a fill twice");
    for &(urn, q, _, m) in &ses.fills {
        assert_eq!(
            md.prints.get(&m),
            Some(&q),
            "seed {seed}: order {urn}'s match {m} not printed with its shares"
        );
    }
    let shares: u64 = ses.fills.iter().map(|f| u64::from(f.1)).sum();
    assert_eq!(
        (t.executions, t.executed_shares),
        (ses.fills.len() as u64, shares)
    );
    assert_eq!(
        (c.executions, c.executed_shares),
        (ses.fills.len() as u64, shares)
    );

    // Position and cash: what the fills make, per symbol.
    let mut of: HashMap<u32, (u16, Side)> = HashMap::new();
    for m in ses.sent_before.iter().chain(&ses.sent) {
        match *m {
            OrderMsg::Enter(o, _) => {
                of.insert(o.user_ref_num.0, (trader.slot(o.symbol).unwrap(), o.side));
            }
            OrderMsg::Replace(o, _) => {
                let orig = of[&o.orig_user_ref_num.0];
                of.insert(o.user_ref_num.0, orig);
            }
            OrderMsg::Cancel(..) => {}
        }
    }
    let mut want: HashMap<u16, (i64, i128)> = HashMap::new();
    for &(urn, q, p, _) in &ses.fills {
        let (slot, side) = of[&urn];
        let e = want.entry(slot).or_default();
        let (dq, dc) = match side {
            Side::Buy => (i64::from(q), -(i128::from(q) * i128::from(p))),
            Side::Sell => (-i64::from(q), i128::from(q) * i128::from(p)),
        };
        e.0 += dq;
        e.1 += dc;
    }
    for slot in 0..SYMBOLS {
        let pos = trader.position(slot).unwrap();
        let w = want.get(&slot).copied().unwrap_or_default();
        assert_eq!((pos.shares(), pos.cash()), w, "seed {seed}: slot {slot}");
    }

    // The sessions: nothing malformed either way.
    assert_eq!(ses.bad_frames, 0, "seed {seed}");
    assert_eq!(ses.session.inbox().counters().malformed, 0, "seed {seed}");
    assert_eq!(ex.inbound.bad_messages.total(), 0, "seed {seed}");
    assert_eq!(ses.session.inbox().counters().end_of_day, 1, "seed {seed}");
}

fn scenario(seed: u64) -> Scenario {
    Scenario {
        seed,
        flow_messages: 8_000,
        feed_faults: Faults::uniform(0.02),
        cut_chance: 0.0008,
        restart_after: seed.is_multiple_of(2).then_some(4_000),
    }
}

/// Sums over seeds, and checks that what the test is about happened.
fn across(outcomes: &[Outcome]) -> Outcome {
    let mut t = Outcome::default();
    for o in outcomes {
        t.sent += o.sent;
        t.fills += o.fills;
        t.added += o.added;
        t.cuts += o.cuts;
        t.logins += o.logins;
        t.connections += o.connections;
        t.resent += o.resent;
        t.retransmissions += o.retransmissions;
        t.held_sent += o.held_sent;
        t.disconnected += o.disconnected;
        t.risk_refusals += o.risk_refusals;
        t.checked += o.checked;
        t.restarts += o.restarts;
        t.recovered_orders += o.recovered_orders;
        t.recovered_fills += o.recovered_fills;
        t.recovered_late += o.recovered_late;
        let f = o.feed.unwrap();
        assert!(f.a.gaps + f.b.gaps > 0, "{f:?}");
    }
    eprintln!("{t:?}");
    assert!(t.sent > 0 && t.fills > 0, "{t:?}");
    assert!(t.cuts >= outcomes.len() as u64, "{t:?}");
    // Every connection is the first or follows a cut or a restart; a cut
    // can come before its login completed.
    assert_eq!(
        t.connections,
        t.cuts + t.restarts + outcomes.len() as u64,
        "{t:?}"
    );
    // Restarted traders adopted the dead runs' orders and their fills,
    // all while recovering: the replay reaches the trader whole before
    // its Account Query's answer, here.
    assert!(t.restarts > 0 && t.recovered_orders > 0, "{t:?}");
    assert!(t.recovered_fills > 0 && t.recovered_late == 0, "{t:?}");
    assert!(t.logins <= t.connections && t.logins > t.cuts / 2, "{t:?}");
    assert!(t.disconnected > 0, "orders refused while down: {t:?}");
    assert!(t.checked > 0);
    t
}

/// Seeds run per strategy: 1 to 12, or 1 to `HFTNET_SIM_SEEDS` when set
/// (a longer search; a failure names its seed).
fn seeds() -> std::ops::RangeInclusive<u64> {
    let n = std::env::var("HFTNET_SIM_SEEDS")
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("HFTNET_SIM_SEEDS={v:?}: give a number of seeds"))
        })
        .unwrap_or(12);
    1..=n
}

fn taker(symbols: &[Stock]) -> Taker {
    Taker::new(
        TakerConfig {
            symbols: Vec::new(),
            ticks: 1,
            tick: 100,
            quantity: 100,
            cooldown_ns: 20 * US,
        },
        symbols,
    )
    .unwrap()
}

fn maker(symbols: &[Stock]) -> Maker {
    Maker::new(
        MakerConfig {
            symbols: Vec::new(),
            tick: 100,
            width_ticks: 2,
            size: 100,
            max_position: 300,
            skew_ticks: 1,
        },
        symbols,
    )
    .unwrap()
}

#[test]
fn taker_day_with_feed_faults_and_cut_connections_balances_exactly() {
    let outcomes: Vec<Outcome> = seeds().map(|seed| run(&scenario(seed), taker)).collect();
    let t = across(&outcomes);
    assert!(
        t.risk_refusals > t.disconnected,
        "position limits hit: {t:?}"
    );
}

#[test]
fn maker_day_with_feed_faults_and_cut_connections_balances_exactly() {
    let outcomes: Vec<Outcome> = seeds().map(|seed| run(&scenario(seed), maker)).collect();
    let t = across(&outcomes);
    // Resting quotes were hit by the generated flow, and cancels decided
    // while the session was down went out after the reconnect.
    assert!(t.added > 0, "{t:?}");
    assert!(t.held_sent > 0, "{t:?}");
}

#[test]
fn a_harsh_day_five_percent_feed_faults_and_frequent_cuts_balances_exactly() {
    let harsh = |seed: u64| Scenario {
        seed: seed + 1_000,
        flow_messages: 4_000,
        feed_faults: Faults::uniform(0.05),
        cut_chance: 0.004,
        restart_after: seed.is_multiple_of(2).then_some(2_000),
    };
    let n = (*seeds().end()).div_ceil(2);
    let mut outcomes: Vec<Outcome> = (1..=n).map(|seed| run(&harsh(seed), taker)).collect();
    outcomes.extend((1..=n).map(|seed| run(&harsh(seed), maker)));
    let t = across(&outcomes);
    assert!(
        t.resent > 0,
        "orders lost with a connection were sent again: {t:?}"
    );
}
