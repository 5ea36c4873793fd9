//! The exchange's order entry end to end in one process: the exchange on a
//! thread, publishing on loopback UDP to a socket this test reads, taking
//! OUCH 5.0 over SoupBinTCP on loopback TCP from scripted clients
//! (`support/ouch_client.rs`). Every wait is bounded; no assertion is about
//! time.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hftnet_apps::Transports;
use hftnet_apps::exchange::{Exchange, ExchangeConfig, ExchangeReport};
use hftnet_apps::order_entry::{Login, OrderEntryConfig};
use hftnet_io::{Endpoint, Role};
use hftnet_trade::book::{BookConfig, Side as BookSide};
use hftnet_trade::exchange::{Generator, GeneratorConfig};
use hftnet_trade::market::MarketData;
use hftnet_trade::orders::{ClOrdId, Trigger};
use hftnet_wire::itch50::{Message, Side as ItchSide, Stock};
use hftnet_wire::ouch50::{
    AccountQueryRepr, CancelOrderRepr, CancelReason, Capacity, ClOrdId as OuchClOrdId, CrossType,
    Display, EnterOrderRepr, EventCode, IntermarketSweep, LiquidityFlag, OutboundMessage, Price,
    RejectReason, ReplaceOrderRepr, Side, TimeInForce,
};
use hftnet_wire::soupbintcp::RejectReason as LoginReject;

#[allow(dead_code)]
#[path = "support/ouch_client.rs"]
mod ouch_client;
use ouch_client::{Client, config};

const SEED: u64 = 3;
const SYMBOLS: u16 = 2;
const WAIT: Duration = Duration::from_secs(5);

/// The market data the test reads: the raw UDP socket, the books built from
/// it, every ITCH message, and the last MoldUDP64 sequence number seen.
struct Feed {
    addr: SocketAddr,
    /// Packets read by the reader thread, taken by `drain`.
    packets: Arc<Mutex<Vec<Vec<u8>>>>,
    done: Arc<AtomicBool>,
    md: MarketData,
    msgs: Vec<Message>,
    last_seq: u64,
    next_seq: u64,
    gaps: u64,
}

impl Feed {
    fn new() -> Self {
        Self::at("127.0.0.1:0".parse().unwrap())
    }

    fn at(addr: SocketAddr) -> Self {
        // A thread reads the socket at once, so the kernel's buffer never
        // overflows while the test talks to its clients.
        let sock = UdpSocket::bind(addr).unwrap();
        sock.set_read_timeout(Some(ms(10))).unwrap();
        let packets = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d) = (packets.clone(), done.clone());
        let addr = sock.local_addr().unwrap();
        thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !d.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    p.lock().unwrap().push(buf[..n].to_vec());
                }
            }
        });
        Self {
            addr,
            packets,
            done,
            md: MarketData::new(BookConfig::all_symbols()).unwrap(),
            msgs: Vec::new(),
            last_seq: 0,
            next_seq: 1,
            gaps: 0,
        }
    }

    /// Reads every packet waiting.
    fn drain(&mut self) {
        let packets = std::mem::take(&mut *self.packets.lock().unwrap());
        for p in &packets {
            let n = p.len();
            if n < 20 {
                continue;
            }
            let seq = u64::from_be_bytes(p[10..18].try_into().unwrap());
            let count = u16::from_be_bytes([p[18], p[19]]);
            if count == 0 || count == 0xffff {
                continue;
            }
            if seq != self.next_seq {
                self.gaps += 1;
            }
            let mut at = 20;
            for k in 0..u64::from(count) {
                let len = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
                let m = &p[at + 2..at + 2 + len];
                self.md.handle(m);
                self.msgs.push(Message::parse(m).unwrap());
                self.last_seq = seq + k;
                at += 2 + len;
            }
            self.next_seq = seq + u64::from(count);
        }
    }

    fn until(&mut self, what: &str, mut f: impl FnMut(&Self) -> bool) {
        let end = Instant::now() + WAIT;
        loop {
            self.drain();
            if f(self) {
                return;
            }
            assert!(Instant::now() < end, "the feed never showed {what}");
            thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An exchange with order entry for alice and bob (short SoupBinTCP timers,
/// no price band), publishing to `feed`; started on a thread. Returns its
/// order-entry address and the thread, which hands back the report and the
/// exchange.
fn start(feed: SocketAddr, tweak: impl FnOnce(&mut ExchangeConfig)) -> Running {
    let mut oe = OrderEntryConfig::new("tcp://127.0.0.1:0", Login::parse("alice:secret").unwrap());
    oe.logins.push(Login::parse("bob:hunter2").unwrap());
    oe.heartbeat = ms(50);
    oe.client_timeout = ms(600);
    oe.end_grace = ms(1500);
    oe.matching.price_band_pct = None;
    let mut cfg = ExchangeConfig {
        source: hftnet_apps::exchange::ExchangeSource::Generated { symbols: SYMBOLS },
        seed: SEED,
        messages: None,
        duration: Some(Duration::from_secs(3)),
        rate: 2_000,
        heartbeat: ms(50),
        linger: ms(200),
        session: "OETEST".into(),
        order_entry: Some(oe),
        ..ExchangeConfig::default()
    };
    tweak(&mut cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = thread::spawn(move || {
        let mut ex = Exchange::new(&cfg).unwrap();
        tx.send(ex.order_entry_addr().unwrap()).unwrap();
        let mut a = Endpoint::parse(&format!("udp://{feed}"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        let io = Transports::new().feed_a(&mut a);
        ex.run(io, &s2).unwrap();
        let r = ex.report();
        // The core's best levels, for the comparison with the feed's books.
        let core = ex.matching().unwrap();
        let tops = (1..=SYMBOLS)
            .flat_map(|l| {
                [ItchSide::Buy, ItchSide::Sell]
                    .map(|s| core.engine().best(l, s).map(|v| (v.price, v.shares)))
            })
            .collect();
        (r, tops)
    });
    let addr = rx.recv().unwrap();
    Running { addr, handle, stop }
}

/// The best level (price, shares) of each side of each instrument.
type Tops = Vec<Option<(u32, u64)>>;

struct Running {
    addr: SocketAddr,
    handle: thread::JoinHandle<(ExchangeReport, Tops)>,
    stop: Arc<AtomicBool>,
}

fn symbol(locate: u16) -> Stock {
    Generator::new(GeneratorConfig::new(SEED, SYMBOLS))
        .unwrap()
        .symbol(locate)
        .unwrap()
}

fn enter(urn: u32, side: Side, qty: u32, price: u32, tif: TimeInForce, cl: OuchClOrdId) -> Vec<u8> {
    let o = EnterOrderRepr {
        user_ref_num: urn,
        side,
        quantity: qty,
        symbol: symbol(1),
        price: Price::from_raw(u64::from(price)),
        time_in_force: tif,
        display: Display::Visible,
        capacity: Capacity::Agency,
        intermarket_sweep: IntermarketSweep::NotEligible,
        cross_type: CrossType::ContinuousMarket,
        cl_ord_id: cl,
        options: Default::default(),
    };
    let mut buf = [0u8; 64];
    let n = o.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

fn login(addr: SocketAddr, user: &str, pass: &str, next: u64) -> Client {
    let mut cfg = config(user, pass);
    cfg.heartbeat_interval_ns = 50_000_000;
    cfg.next_sequence = next;
    let mut c = Client::connect(addr, cfg);
    assert!(
        c.until(WAIT, |c| c.logged_in.is_some()),
        "{user} not logged in"
    );
    c
}

/// The answers to `urn`, waiting for at least one.
fn answers(
    c: &mut Client,
    urn: u32,
    done: impl Fn(&[OutboundMessage]) -> bool,
) -> Vec<OutboundMessage> {
    let of = |c: &Client| -> Vec<OutboundMessage> {
        c.seq
            .iter()
            .map(|(_, m)| *m)
            .filter(|m| match m {
                OutboundMessage::OrderReplaced(r) => {
                    r.user_ref_num == urn || r.orig_user_ref_num == urn
                }
                m => {
                    m.user_ref_num() == Some(urn)
                        && !matches!(m, OutboundMessage::AccountQueryResponse(_))
                }
            })
            .collect()
    };
    assert!(
        c.until(WAIT, |c| done(&of(c))),
        "no answer to {urn}: {:?}",
        of(c)
    );
    of(c)
}

fn rejected(ms: &[OutboundMessage]) -> Option<RejectReason> {
    ms.iter().find_map(|m| match m {
        OutboundMessage::Rejected(r) => Some(r.reason),
        _ => None,
    })
}

/// Enters a Day buy of 1 share at the lowest tick until the market is open
/// (before, the exchange answers Destination Closed, or Halted until the
/// instrument trades); returns the next
/// UserRefNum.
fn wait_for_market(c: &mut Client) -> u32 {
    let mut urn = 1;
    let end = Instant::now() + WAIT;
    loop {
        c.send(&enter(
            urn,
            Side::Buy,
            1,
            100,
            TimeInForce::Day,
            OuchClOrdId::BLANK,
        ));
        let a = answers(c, urn, |a| !a.is_empty());
        urn += 1;
        match rejected(&a) {
            Some(RejectReason::DestinationClosed | RejectReason::Halted)
                if Instant::now() < end =>
            {
                thread::sleep(ms(20));
            }
            None => return urn,
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn orders_rest_execute_reject_and_replay_with_the_feed_in_step() {
    let mut feed = Feed::new();
    let run = start(feed.addr, |_| {});

    // A bad password: Login Rejected 'A', then the socket closes.
    let mut bad = Client::connect(run.addr, config("alice", "wrong"));
    assert!(bad.until(WAIT, |c| c.closed));
    assert_eq!(bad.rejected, Some(LoginReject::NotAuthorized));

    let mut alice = login(run.addr, "alice", "secret", 1);
    let mut bob = login(run.addr, "bob", "hunter2", 1);
    assert!(alice.until(WAIT, |c| !c.seq.is_empty()));
    // The stream opens with Start of Day.
    assert!(
        matches!(alice.seq[0], (1, OutboundMessage::SystemEvent(e)) if e.event_code == EventCode::StartOfDay)
    );
    let mut urn = wait_for_market(&mut alice);

    // Alice rests a buy at the best bid, its ClOrdID naming the last
    // sequence number seen (external tick-to-trade).
    feed.until("a bid", |f| f.md.book().best(1, BookSide::Buy).is_some());
    let bid = feed.md.book().best(1, BookSide::Buy).unwrap().price;
    let cl = ClOrdId::from_trigger(Trigger {
        seq: feed.last_seq,
        rx_ns: 0,
    });
    let rest = urn;
    alice.send(&enter(
        rest,
        Side::Buy,
        10,
        bid,
        TimeInForce::Day,
        OuchClOrdId(cl.0),
    ));
    urn += 1;
    let a = answers(&mut alice, rest, |a| !a.is_empty());
    let OutboundMessage::OrderAccepted(acc) = a[0] else {
        panic!("{a:?}")
    };
    let oref = acc.order_reference_number;
    assert_eq!(
        (acc.quantity, acc.price.raw(), acc.cl_ord_id.0),
        (10, u64::from(bid), cl.0)
    );
    // It is on the feed as an Add Order with the exchange's reference.
    feed.until("alice's Add Order", |f| {
        f.msgs.iter().any(|m| matches!(m, Message::AddOrder(o) if o.order_ref == oref && o.shares == 10 && o.price.raw() == bid))
    });

    // Bob sells 999,999 IOC at that price: every bid at or above it
    // executes, alice's too; the rest is canceled.
    bob.send(&enter(
        1,
        Side::Sell,
        999_999,
        bid,
        TimeInForce::Ioc,
        OuchClOrdId::BLANK,
    ));
    let b = answers(&mut bob, 1, |a| {
        a.iter()
            .any(|m| matches!(m, OutboundMessage::OrderCanceled(_)))
    });
    let executed: Vec<_> = b
        .iter()
        .filter_map(|m| match m {
            OutboundMessage::OrderExecuted(e) => Some(*e),
            _ => None,
        })
        .collect();
    assert!(
        executed
            .iter()
            .all(|e| e.liquidity_flag == LiquidityFlag::Removed)
    );
    let shares: u32 = executed.iter().map(|e| e.quantity).sum();
    let OutboundMessage::OrderCanceled(cx) = b.last().unwrap() else {
        panic!("{b:?}")
    };
    assert_eq!(cx.reason, CancelReason::ImmediateOrCancel);
    assert_eq!(cx.quantity + shares, 999_999);
    // Alice's fill: liquidity added, the same match number as one of bob's.
    let a = answers(&mut alice, rest, |a| {
        a.iter()
            .any(|m| matches!(m, OutboundMessage::OrderExecuted(_)))
    });
    let OutboundMessage::OrderExecuted(fill) = a[1] else {
        panic!("{a:?}")
    };
    assert_eq!(
        (fill.quantity, fill.liquidity_flag),
        (10, LiquidityFlag::Added)
    );
    assert!(
        executed
            .iter()
            .any(|e| e.match_number == fill.match_number && e.quantity == 10)
    );
    // And on the feed: an Order Executed of alice's order, that match number.
    feed.until("the execution of alice's order", |f| {
        f.msgs.iter().any(|m| matches!(m, Message::OrderExecuted(e) if e.order_ref == oref && e.match_number == fill.match_number && e.executed_shares == 10))
    });

    // Every reject reason the wire can reach, with the spec's code.
    let sym = |s: &str| Stock::new(s).unwrap();
    let mut base = EnterOrderRepr::decode(&enter(
        0,
        Side::Buy,
        1,
        100,
        TimeInForce::Day,
        OuchClOrdId::BLANK,
    ))
    .unwrap();
    let mut cases: Vec<(Vec<u8>, u16)> = Vec::new();
    let mut raw =
        |f: &mut dyn FnMut(&mut EnterOrderRepr), patch: Option<(usize, u8)>, code: u16| {
            base.user_ref_num = urn;
            urn += 1;
            let mut o = base;
            f(&mut o);
            let mut buf = [0u8; 64];
            let n = o.encode(&mut buf).unwrap();
            if let Some((at, b)) = patch {
                buf[at] = b;
            }
            cases.push((buf[..n].to_vec(), code));
        };
    raw(&mut |_| {}, Some((5, b'x')), 0x09); // side
    raw(&mut |o| o.quantity = 0, None, 0x13);
    raw(&mut |o| o.quantity = 1_000_000, None, 0x13);
    raw(&mut |o| o.symbol = sym("NOPE"), None, 0x17);
    raw(&mut |o| o.price = Price::from_raw(0), None, 0x1D);
    raw(&mut |o| o.price = Price::from_raw(101), None, 0x1D);
    raw(&mut |o| o.time_in_force = TimeInForce::Gtx, None, 0x0F);
    raw(&mut |_| {}, Some((26, b'9')), 0x0F); // time in force
    raw(&mut |_| {}, Some((27, b'Q')), 0x03); // display
    raw(&mut |_| {}, Some((28, b'Z')), 0x0F); // capacity
    raw(
        &mut |o| o.intermarket_sweep = IntermarketSweep::Eligible,
        None,
        0x08,
    );
    raw(&mut |o| o.cross_type = CrossType::Opening, None, 0x14);
    for (bytes, code) in &cases {
        let u = u32::from_be_bytes(bytes[1..5].try_into().unwrap());
        alice.send(bytes);
        let a = answers(&mut alice, u, |a| !a.is_empty());
        assert_eq!(rejected(&a).map(|r| r.code()), Some(*code), "{u}: {a:?}");
    }
    // Replace of an order that is not live: silently ignored, its
    // UserRefNum not consumed (OUCH 5.0, 2.2 case 1; counted).
    let rep = ReplaceOrderRepr {
        orig_user_ref_num: 999,
        user_ref_num: urn,
        quantity: 5,
        price: Price::from_raw(100),
        time_in_force: TimeInForce::Day,
        display: Display::Visible,
        intermarket_sweep: IntermarketSweep::NotEligible,
        cl_ord_id: OuchClOrdId::BLANK,
        options: Default::default(),
    };
    let mut buf = [0u8; 64];
    let n = rep.encode(&mut buf).unwrap();
    alice.send(&buf[..n]);
    // A retransmission (the last rejected enter's UserRefNum again) is
    // ignored, and so is a Cancel of an order the session never had
    // (counted): the next answer is the Account Query's, which names the
    // dead replace's UserRefNum as the next one.
    alice.send(&cases.last().unwrap().0);
    let mut x = [0u8; 9];
    CancelOrderRepr {
        user_ref_num: 999,
        quantity: 0,
    }
    .encode(&mut x)
    .unwrap();
    alice.send(&x);
    // Bad SoupBinTCP frames and bad OUCH messages are counted; the session
    // stays up and answers the Account Query.
    alice.send_packet(b"xjunk");
    alice.send_packet(b"+debug");
    alice.send(b"Zbad ouch type");
    alice.send(&[b'X', 0, 0]);
    let mut q = [0u8; 1];
    AccountQueryRepr {}.encode(&mut q).unwrap();
    alice.send(&q);
    assert!(alice.until(WAIT, |c| !c.of_type(b'Q').is_empty()));
    let OutboundMessage::AccountQueryResponse(r) = alice.of_type(b'Q')[0] else {
        unreachable!()
    };
    assert_eq!(r.next_user_ref_num, urn);

    // A second connection of alice from sequence number 5 gets exactly the
    // tail of her stream, once, in order.
    let seen = alice.seq.len() as u64;
    let mut again = login(run.addr, "alice", "secret", 5);
    assert_eq!(again.logged_in, Some(5));
    assert!(again.until(WAIT, |c| c.seq.len() as u64 >= seen - 4));
    let nums: Vec<u64> = again.seq.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        nums[..(seen - 4) as usize],
        (5..=seen).collect::<Vec<_>>()[..]
    );
    assert_eq!(
        again.seq[..(seen - 4) as usize],
        alice.seq[4..seen as usize]
    );

    // A client that never sends is dropped after the timeout.
    let mut silent_cfg = config("bob", "hunter2");
    silent_cfg.heartbeat_interval_ns = 60_000_000_000;
    silent_cfg.server_timeout_ns = 120_000_000_000;
    let mut silent = Client::connect(run.addr, silent_cfg);
    assert!(silent.until(WAIT, |c| c.logged_in.is_some()));
    // (The others keep polling meanwhile, so their heartbeats go out.)
    let end = Instant::now() + WAIT;
    while !silent.closed && Instant::now() < end {
        silent.poll(ms(1));
        for c in [&mut alice, &mut bob, &mut again] {
            c.poll(ms(1));
        }
    }
    assert!(silent.closed, "the silent client was not dropped");
    assert!(!alice.closed && !bob.closed && !again.closed);

    // The end of the day: End of Day, then (after the grace) End of
    // Session. An order between them is refused: the market closed.
    let day_end = |c: &Client| {
        c.seq.iter().any(|(_, m)| matches!(m, OutboundMessage::SystemEvent(e) if e.event_code == EventCode::EndOfDay))
    };
    let end = Instant::now() + Duration::from_secs(10);
    while !day_end(&alice) && Instant::now() < end {
        for c in [&mut alice, &mut bob, &mut again] {
            c.poll(ms(1));
        }
    }
    assert!(day_end(&alice), "no End of Day; closed: {}", alice.closed);
    alice.send(&enter(
        urn,
        Side::Buy,
        1,
        100,
        TimeInForce::Day,
        OuchClOrdId::BLANK,
    ));
    let a = answers(&mut alice, urn, |a| !a.is_empty());
    assert_eq!(rejected(&a), Some(RejectReason::DestinationClosed));
    let end = Instant::now() + WAIT;
    while ![&alice, &bob, &again].iter().all(|c| c.end_of_session) && Instant::now() < end {
        for c in [&mut alice, &mut bob, &mut again] {
            c.poll(ms(1));
        }
    }
    assert!(alice.end_of_session && bob.end_of_session && again.end_of_session);
    let (r, tops) = run.handle.join().unwrap();
    // Every message published reaches the feed (loopback UDP loses nothing).
    feed.until("every message", |f| f.msgs.len() as u64 >= r.messages);

    let oe = r.order_entry.as_ref().unwrap();
    let show = || format!("{oe:#?}");
    assert_eq!(oe.logins_rejected, 1, "{}", show());
    assert_eq!(oe.logins_ok, 4, "{}", show());
    let t = &oe.totals;
    assert_eq!(t.received, t.accepted + t.rejected, "{}", show());
    assert_eq!(t.retransmissions, 1, "{}", show());
    assert_eq!(t.replaces_ignored, 1, "{}", show());
    assert_eq!(t.cancels_ignored, 1, "{}", show());
    assert!(oe.sessions[0].orders.executions >= 1 && oe.sessions[1].orders.executions >= 1);
    assert_eq!(oe.bad_frames.unknown_type, 1, "{}", show());
    assert_eq!(
        (oe.bad_ouch.unknown_type, oe.bad_ouch.bad_length),
        (1, 1),
        "{}",
        show()
    );
    assert_eq!(
        (
            oe.bad_fields.side,
            oe.bad_fields.time_in_force,
            oe.bad_fields.display,
            oe.bad_fields.capacity
        ),
        (1, 1, 1, 1),
        "{}",
        show()
    );
    assert_eq!(oe.client_timeouts, 1, "{}", show());
    assert!(oe.heartbeats_out > 0 && oe.heartbeats_in > 0, "{}", show());
    assert!(oe.replayed >= seen - 4, "{}", show());
    assert_eq!(oe.end_of_session, 3, "{}", show());
    assert_eq!(oe.tick_to_trade_samples, 1, "{}", show());
    assert!(oe.tick_to_trade_external_ns.is_some(), "{}", show());
    // The feed's books equal the exchange's.
    assert_eq!(feed.gaps, 0);
    assert_eq!(feed.msgs.len() as u64, r.messages);
    let feed_tops: Vec<_> = (1..=SYMBOLS)
        .flat_map(|l| {
            [BookSide::Buy, BookSide::Sell]
                .map(|s| feed.md.book().best(l, s).map(|v| (v.price, v.shares)))
        })
        .collect();
    assert_eq!(feed_tops, tops);
}

#[test]
fn bad_streams_close_logouts_close_and_the_tail_is_read_within_the_grace() {
    let feed = Feed::new();
    let run = start(feed.addr, |c| {
        c.duration = Some(Duration::from_secs(1));
        // Long enough for the late login below; the stop flag ends it.
        c.linger = Duration::from_secs(20);
        if let Some(oe) = c.order_entry.as_mut() {
            oe.end_grace = ms(1500);
        }
    });
    // A frame of length 0 cannot be followed: the connection closes.
    let mut zero = login(run.addr, "alice", "secret", 1);
    zero.send_packet(&[]);
    assert!(
        zero.until(WAIT, |c| c.closed),
        "not closed after a zero-length frame"
    );
    // So does a frame longer than the server takes (4 KiB).
    let mut long = login(run.addr, "alice", "secret", 1);
    long.send_packet(&vec![b'U'; 5_000]);
    assert!(
        long.until(WAIT, |c| c.closed),
        "not closed after a frame above the limit"
    );
    // A Logout Request closes the connection too.
    let mut out = login(run.addr, "bob", "hunter2", 1);
    out.c.logout();
    out.transmit();
    assert!(out.until(WAIT, |c| c.closed), "not closed after the logout");
    // Alice reads the Start of Day, then her connection is cut.
    let mut cut = login(run.addr, "alice", "secret", 1);
    assert!(cut.until(WAIT, |c| !c.seq.is_empty()));
    assert_eq!(cut.seq.len(), 1);
    drop(cut);
    // Bob, still connected, sees the End of Day...
    let mut bob = login(run.addr, "bob", "hunter2", 1);
    let day_end = |c: &Client| {
        c.seq.iter().any(|(_, m)| matches!(m, OutboundMessage::SystemEvent(e) if e.event_code == EventCode::EndOfDay))
    };
    assert!(bob.until(Duration::from_secs(10), day_end), "no End of Day");
    // ... and alice, logging in again within the grace from sequence 2,
    // reads the tail of her stream exactly once, then End of Session.
    let mut again = login(run.addr, "alice", "secret", 2);
    let end = Instant::now() + WAIT;
    while !(again.end_of_session && bob.end_of_session) && Instant::now() < end {
        again.poll(ms(1));
        bob.poll(ms(1));
    }
    assert!(again.end_of_session && bob.end_of_session);
    let nums: Vec<u64> = again.seq.iter().map(|(s, _)| *s).collect();
    assert_eq!(nums, (2..2 + nums.len() as u64).collect::<Vec<_>>());
    assert!(day_end(&again));
    // After the grace the session has ended: a login is refused ('S').
    let mut late = Client::connect(run.addr, config("alice", "secret"));
    assert!(late.until(WAIT, |c| c.closed));
    assert_eq!(late.rejected, Some(LoginReject::SessionNotAvailable));
    run.stop.store(true, Ordering::Relaxed);
    let (r, _) = run.handle.join().unwrap();
    let oe = r.order_entry.unwrap();
    assert_eq!(oe.bad_frames.zero_length, 1, "{oe:#?}");
    assert_eq!(oe.bad_frames.too_long, 1, "{oe:#?}");
    assert_eq!(oe.logouts, 1, "{oe:#?}");
    assert_eq!(oe.logins_rejected_session, 1, "{oe:#?}");
    assert_eq!(oe.end_of_session, 2, "{oe:#?}");
    assert_eq!(oe.open_at_end, 0, "{oe:#?}");
}

#[test]
fn without_clients_the_feed_is_the_generated_stream_byte_for_byte() {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = sink.local_addr().unwrap();
    let run = |orders: bool| {
        let mut cfg = ExchangeConfig {
            messages: Some(20_000),
            rate: 0,
            linger: ms(10),
            session: "SAME".into(),
            ..ExchangeConfig::default()
        };
        if orders {
            let mut oe =
                OrderEntryConfig::new("tcp://127.0.0.1:0", Login::parse("alice:secret").unwrap());
            oe.end_grace = ms(10);
            cfg.order_entry = Some(oe);
        }
        let mut a = Endpoint::parse(&format!("udp://{to}"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        let stop = AtomicBool::new(false);
        hftnet_apps::exchange::run_exchange(&cfg, Transports::new().feed_a(&mut a), &stop).unwrap()
    };
    let (plain, with) = (run(false), run(true));
    assert!(plain.order_entry.is_none());
    let oe = with.order_entry.as_ref().unwrap();
    assert_eq!((oe.connections, oe.totals.received), (0, 0));
    assert!(oe.tick_to_trade_external_ns.is_none());
    assert_eq!(with.messages, plain.messages);
    assert_eq!(with.market.stream_digest, plain.market.stream_digest);
    assert_eq!(with.market.counts, plain.market.counts);
}

#[test]
fn a_long_replay_goes_out_in_order_exactly_once() {
    let feed = Feed::new();
    let run = start(feed.addr, |c| c.linger = Duration::from_secs(20));
    let mut alice = login(run.addr, "alice", "secret", 1);
    // 15,000 Account Query Responses: about 240 KiB of stream, more than a
    // connection is given at once, so the replay below is paced by what
    // the socket takes.
    const QUERIES: usize = 15_000;
    for _ in 0..QUERIES {
        alice.send(b"Q");
        if alice.seq.len().is_multiple_of(64) {
            alice.poll(Duration::ZERO);
        }
    }
    let total = QUERIES + 1; // and the Start of Day
    let end = Instant::now() + Duration::from_secs(20);
    while alice.seq.len() < total && Instant::now() < end {
        alice.poll(ms(1));
    }
    assert_eq!(alice.seq.len(), total);
    let mut again = login(run.addr, "alice", "secret", 1);
    let end = Instant::now() + Duration::from_secs(20);
    while again.seq.len() < total && Instant::now() < end {
        again.poll(ms(1));
        alice.poll(Duration::ZERO);
    }
    let nums: Vec<u64> = again.seq.iter().map(|(s, _)| *s).collect();
    assert_eq!(nums, (1..=total as u64).collect::<Vec<_>>());
    assert_eq!(again.seq, alice.seq[..total]);
    run.stop.store(true, Ordering::Relaxed);
    let (r, _) = run.handle.join().unwrap();
    let oe = r.order_entry.unwrap();
    assert_eq!(oe.totals.account_queries, QUERIES as u64, "{oe:#?}");
    assert!(oe.replayed >= total as u64, "{oe:#?}");
    assert_eq!(oe.closed_send_full, 0, "{oe:#?}");
}

/// A client that logs in, floods Account Queries and never reads (but
/// keeps sending heartbeats, so it is never silent) is closed once its
/// output has stayed above the bound with nothing taken for the client
/// timeout, and counted; the exchange keeps running.
#[test]
fn a_client_that_never_reads_is_closed_and_counted() {
    use std::io::Write;
    let feed = Feed::new();
    let run = start(feed.addr, |c| {
        // A day longer than the test: nothing but the stall closes it.
        c.duration = Some(Duration::from_secs(60));
        c.linger = Duration::from_secs(20);
        // Small kernel buffers on both ends: the bound is reached after
        // about 150 KiB of answers instead of megabytes.
        c.order_entry.as_mut().unwrap().listen = "tcp://127.0.0.1:0?sndbuf=4096".into();
    });
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&run.addr.into()).unwrap();
    let mut tcp: std::net::TcpStream = s.into();
    tcp.set_write_timeout(Some(ms(200))).unwrap();
    // The Login Request as the session engine writes it (length first).
    let mut c = hftnet_trade::soupbin::ClientConnection::new(config("alice", "secret"), 0).unwrap();
    let mut buf = vec![0u8; 256];
    let n = c.poll_transmit(0, &mut buf);
    tcp.write_all(&buf[..n]).unwrap();
    // 20,000 Account Queries (Unsequenced Data `Q`): about 320 KiB of
    // answers, more than the bound and the two small kernel buffers hold.
    let queries: Vec<u8> = [0u8, 2, b'U', b'Q'].repeat(20_000);
    tcp.write_all(&queries).unwrap();
    // Heartbeats until the exchange closes the connection (a write then
    // fails); never a read.
    let end = Instant::now() + Duration::from_secs(15);
    let mut closed = false;
    while Instant::now() < end {
        if tcp.write_all(&[0, 1, b'R']).is_err() {
            closed = true;
            break;
        }
        thread::sleep(ms(50));
    }
    assert!(
        closed,
        "the connection of a client that never reads stayed open"
    );
    // Another client is served as before.
    let mut bob = login(run.addr, "bob", "hunter2", 1);
    assert!(bob.until(WAIT, |c| !c.seq.is_empty()));
    run.stop.store(true, Ordering::Relaxed);
    let (r, _) = run.handle.join().unwrap();
    let oe = r.order_entry.unwrap();
    assert_eq!(oe.closed_send_full, 1, "{oe:#?}");
    assert_eq!(oe.client_timeouts, 0, "{oe:#?}");
    assert!(oe.totals.account_queries > 0, "{oe:#?}");
}

/// A trader whose market-data port was not bound yet while the exchange
/// waited for its login: the heartbeat sent meanwhile drew a "port
/// unreachable", which the kernel reports on the exchange's next send —
/// the day's first packet — and that packet is sent again, not lost: the
/// feed starts with the day's first message.
#[test]
fn a_receiver_bound_after_a_refused_heartbeat_gets_the_first_packet() {
    // A port nobody is bound to (taken and given back).
    let addr = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = start(addr, |c| {
        // One heartbeat at the start, the next a long way off: the day's
        // first packet is the next send after the refused heartbeat.
        c.heartbeat = Duration::from_secs(5);
        let oe = c.order_entry.as_mut().unwrap();
        oe.wait_logins = 1;
        oe.wait_timeout = Duration::from_secs(30);
    });
    // The heartbeat left (and was refused) before the port is bound.
    thread::sleep(ms(300));
    let r = login_and_see_the_day_start(&mut Feed::at(addr), run);
    assert_eq!(r.send_errors, 0, "{r:#?}");
}

/// Logs alice in, then checks the feed starts with the day's first
/// message and no gap, and that her session gets its stream; stops the run
/// and returns its report.
fn login_and_see_the_day_start(feed: &mut Feed, run: Running) -> ExchangeReport {
    let mut alice = login(run.addr, "alice", "secret", 1);
    feed.until("the first messages", |f| f.msgs.len() > 10);
    assert_eq!(feed.gaps, 0);
    assert!(
        matches!(feed.msgs[0], Message::SystemEvent(_)),
        "the feed starts with the day's first message: {:?}",
        feed.msgs[0]
    );
    assert!(alice.until(WAIT, |c| !c.seq.is_empty()));
    run.stop.store(true, Ordering::Relaxed);
    run.handle.join().unwrap().0
}

/// `wait_logins`: the day starts only once the clients logged in, so a
/// trader that logs in late still sees it from the first message; without
/// the logins in time, the run fails naming how many came.
#[test]
fn the_day_waits_for_its_first_logins() {
    let mut feed = Feed::new();
    let run = start(feed.addr, |c| {
        let oe = c.order_entry.as_mut().unwrap();
        oe.wait_logins = 1;
        oe.wait_timeout = Duration::from_secs(30);
    });
    // Nothing is published before a client logs in (not timed: the client
    // logs in only after this look at the feed).
    thread::sleep(ms(300));
    feed.drain();
    assert_eq!(feed.msgs.len(), 0, "the day started before any login");
    let r = login_and_see_the_day_start(&mut feed, run);
    assert_eq!(r.order_entry.unwrap().logins_ok, 1);

    // Nobody logs in: the run fails once the wait is over, naming the count.
    let mut cfg = ExchangeConfig {
        messages: Some(1_000),
        linger: ms(10),
        ..ExchangeConfig::default()
    };
    let mut oe = OrderEntryConfig::new("tcp://127.0.0.1:0", Login::parse("alice:secret").unwrap());
    oe.wait_logins = 1;
    oe.wait_timeout = ms(200);
    cfg.order_entry = Some(oe);
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut a = Endpoint::parse(&format!("udp://{}", sink.local_addr().unwrap()))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let stop = AtomicBool::new(false);
    let e = hftnet_apps::exchange::run_exchange(&cfg, Transports::new().feed_a(&mut a), &stop)
        .unwrap_err();
    assert!(e.to_string().contains("0 of the 1 logins"), "{e}");
    // More logins waited for than clients allowed is refused up front.
    let mut oe = OrderEntryConfig::new("tcp://127.0.0.1:0", Login::parse("alice:secret").unwrap());
    oe.wait_logins = 17;
    let e = oe.validate().unwrap_err();
    assert!(e.to_string().contains("17 logins"), "{e}");
}

/// `rx=spin` on the order entry's URI: the exchange polls its clients
/// without sleeping — while it waits for the first login, and between due
/// times — and serves them as the blocking one does; the login wait still
/// ends at its timeout. A bad strategy is refused naming `rx`.
#[test]
fn a_spinning_order_entry_serves_its_clients_and_still_times_out() {
    let mut feed = Feed::new();
    let run = start(feed.addr, |c| {
        let oe = c.order_entry.as_mut().unwrap();
        oe.listen = "tcp://127.0.0.1:0?rx=spin".into();
        oe.wait_logins = 1;
        oe.wait_timeout = Duration::from_secs(30);
    });
    let mut alice = login(run.addr, "alice", "secret", 1);
    feed.until("the first messages", |f| f.msgs.len() > 10);
    assert!(alice.until(WAIT, |c| !c.seq.is_empty()));
    assert!(
        matches!(alice.seq[0], (1, OutboundMessage::SystemEvent(e)) if e.event_code == EventCode::StartOfDay)
    );
    // An order between due times (2 000 messages/s: the loop idles most
    // of the time) is answered.
    let urn = wait_for_market(&mut alice);
    feed.until("a bid", |f| f.md.book().best(1, BookSide::Buy).is_some());
    let bid = feed.md.book().best(1, BookSide::Buy).unwrap().price;
    let cl = ClOrdId::from_trigger(Trigger {
        seq: feed.last_seq,
        rx_ns: 0,
    });
    alice.send(&enter(
        urn,
        Side::Buy,
        10,
        bid,
        TimeInForce::Day,
        OuchClOrdId(cl.0),
    ));
    let a = answers(&mut alice, urn, |a| !a.is_empty());
    assert!(
        matches!(a[0], OutboundMessage::OrderAccepted(acc) if acc.quantity == 10),
        "{a:?}"
    );
    run.stop.store(true, Ordering::Relaxed);
    let (r, _) = run.handle.join().unwrap();
    let oe = r.order_entry.unwrap();
    assert_eq!(oe.logins_ok, 1);
    assert!(oe.totals.accepted >= 1, "{oe:#?}");

    // Nobody logs in: the spinning wait ends at its timeout too.
    let mut cfg = ExchangeConfig {
        messages: Some(1_000),
        linger: ms(10),
        ..ExchangeConfig::default()
    };
    let mut oe = OrderEntryConfig::new(
        "tcp://127.0.0.1:0?rx=spin",
        Login::parse("alice:secret").unwrap(),
    );
    oe.wait_logins = 1;
    oe.wait_timeout = ms(200);
    cfg.order_entry = Some(oe);
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut a = Endpoint::parse(&format!("udp://{}", sink.local_addr().unwrap()))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let stop = AtomicBool::new(false);
    let e = hftnet_apps::exchange::run_exchange(&cfg, Transports::new().feed_a(&mut a), &stop)
        .unwrap_err();
    assert!(e.to_string().contains("0 of the 1 logins"), "{e}");

    let oe = OrderEntryConfig::new(
        "tcp://127.0.0.1:0?rx=fast",
        Login::parse("alice:secret").unwrap(),
    );
    let e = oe.validate().unwrap_err().to_string();
    assert!(e.contains("rx"), "{e}");
}
