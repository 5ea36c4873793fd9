//! Zero heap allocations per message in the exchange and feed-handler loops:
//! with a counting global allocator (per thread), an exchange publishing to a
//! feed handler over loopback UDP — with loss, duplicates and reordering on
//! both feeds, so re-requests are asked and answered — allocates exactly as
//! often in its loops for a run twenty times longer. (The loops' only
//! allocations are the two price-level vectors each book reserves when a
//! stock directory message activates it: 16 on each side for the 8 symbols
//! of the default day.) The same with the feed handler publishing a
//! market-data record per top-of-book change and per trade into a
//! `shm://` ring. And the exchange flat out (rate 0, packets packed full),
//! with and without its reference books (without them, not even their
//! price levels are allocated). And the exchange taking orders: its loop
//! allocates as often for 1000 orders (entered and canceled over
//! SoupBinTCP) as for 20.

use std::time::Duration;

use hftnet_apps::exchange::ExchangeConfig;
use hftnet_apps::feed::{FeedHandlerConfig, FeedStop};
use hftnet_io::{Endpoint, OneWay, Role};
use hftnet_trade::book::BookConfig;

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;
#[allow(dead_code)]
#[path = "support/loopback.rs"]
mod loopback;
#[allow(dead_code)]
#[path = "support/ouch_client.rs"]
mod ouch_client;

use counting_alloc::allocs;

fn run(messages: u64, publish: Option<&str>) -> loopback::Run {
    let exchange = ExchangeConfig {
        messages: Some(messages),
        // 50,000 packets/s, about what 200,000 messages/s packed made.
        rate: 50_000,
        heartbeat: Duration::from_millis(20),
        linger: Duration::from_millis(500),
        // One message per packet, so the packet count does not shrink when a
        // loaded machine makes the exchange pack late bursts together: the
        // feeds' seeded faults lose the same packet on A and B (which is what
        // makes a re-request) at fixed packet numbers, about one in a
        // hundred, and 2,000 packets always reach some of them.
        max_payload: hftnet_apps::exchange::MIN_PAYLOAD,
        ..ExchangeConfig::default()
    };
    let feed = FeedHandlerConfig {
        idle_timeout: Duration::from_secs(10),
        duration: Some(Duration::from_secs(60)),
        ..FeedHandlerConfig::default()
    };
    let mut out = publish.map(|name| {
        Endpoint::parse(&format!("shm://{name}?slots=65536&size=64"))
            .unwrap()
            .one_way(OneWay::Publish)
            .open(Role::Client)
            .unwrap()
    });
    let r = loopback::exchange_to_feed_publishing(
        &exchange,
        &feed,
        loopback::udp_ends("loss=0.1&dup=0.01&reorder=0.01&faults_on=tx"),
        out.as_mut(),
        allocs,
    );
    if publish.is_some() {
        let p = r.feed.publish.as_ref().expect("a publish report");
        assert_eq!(p.errors, 0);
        assert_eq!(p.top_of_book, r.feed.top_updates);
        assert!(p.trades > 0);
    }
    assert_eq!(r.feed.stopped, FeedStop::EndOfSession);
    assert_eq!(r.feed.lost, 0);
    assert_eq!(r.feed.delivered, r.exchange.messages);
    assert_eq!(r.feed.market.stream_digest, r.exchange.market.stream_digest);
    assert!(r.feed.requests > 0, "re-requests were exercised");
    assert_eq!(r.top_calls, r.feed.top_updates);
    eprintln!(
        "{messages} flow messages ({} in all, {} re-requests): exchange loop {} allocations \
         ({} with set-up and report), feed-handler loop {} ({} with set-up and report)",
        r.exchange.messages,
        r.feed.requests,
        r.exchange_run_allocs,
        r.exchange_total_allocs,
        r.feed_run_allocs,
        r.feed_total_allocs
    );
    r
}

#[test]
fn no_allocation_per_message() {
    let short = run(2_000, None);
    let long = run(40_000, None);
    assert!(long.exchange.messages > 15 * short.exchange.messages);
    assert_eq!(
        short.exchange_run_allocs, long.exchange_run_allocs,
        "the exchange's loop allocations grew with the message count"
    );
    assert_eq!(
        short.feed_run_allocs, long.feed_run_allocs,
        "the feed handler's loop allocations grew with the message count"
    );
}

/// The exchange flat out (`rate` 0) into a feed handler over in-process
/// `mem://` queues with 30% loss on both feeds: packets packed full, the
/// re-request server polled on the clock, the reference books built or not.
fn run_flat_out(messages: u64, book: Option<BookConfig>) -> loopback::Run {
    let exchange = ExchangeConfig {
        messages: Some(messages),
        rate: 0,
        heartbeat: Duration::from_millis(20),
        linger: Duration::from_millis(500),
        book,
        ..ExchangeConfig::default()
    };
    let feed = FeedHandlerConfig {
        idle_timeout: Duration::from_secs(10),
        duration: Some(Duration::from_secs(60)),
        ..FeedHandlerConfig::default()
    };
    let name = format!("alloc-flat-{}-{messages}", std::process::id());
    let r = loopback::exchange_to_feed_over(
        &exchange,
        &feed,
        loopback::mem_ends(&name, "loss=0.3&faults_on=tx"),
        allocs,
    );
    assert_eq!(r.feed.stopped, FeedStop::EndOfSession);
    assert_eq!((r.feed.lost, r.feed.unresolved), (0, 0));
    assert_eq!(r.feed.delivered, r.exchange.messages);
    assert_eq!(r.feed.market.stream_digest, r.exchange.market.stream_digest);
    assert_eq!(r.feed.market.counts, r.exchange.market.counts);
    assert!(r.feed.requests > 0, "re-requests were exercised");
    eprintln!(
        "flat out, {messages} flow messages, books {}: {} per packet; exchange loop {} \
         allocations, feed-handler loop {}",
        r.exchange.market.book.is_some(),
        r.exchange.messages as f64 / r.exchange.packets as f64,
        r.exchange_run_allocs,
        r.feed_run_allocs
    );
    r
}

#[test]
fn no_allocation_per_message_flat_out_with_and_without_books() {
    let mut loop_allocs = Vec::new();
    for book in [None, Some(BookConfig::all_symbols())] {
        let short = run_flat_out(2_000, book.clone());
        let long = run_flat_out(40_000, book.clone());
        assert!(long.exchange.messages > 15 * short.exchange.messages);
        assert_eq!(
            short.exchange_run_allocs, long.exchange_run_allocs,
            "the exchange's loop allocations grew with the message count"
        );
        assert_eq!(
            short.feed_run_allocs, long.feed_run_allocs,
            "the feed handler's loop allocations grew with the message count"
        );
        if let Some(b) = &long.exchange.market.book {
            assert_eq!(b.digest, long.feed.market.book.digest);
        }
        loop_allocs.push(long.exchange_run_allocs);
        // Everything is due at once: packets leave full (a packet of
        // 1400 bytes holds 1378 bytes of blocks; ITCH messages of 36 bytes
        // on average with their 2-byte length: about 36), only the last
        // one of the day part-filled.
        let per_packet = long.exchange.messages as f64 / long.exchange.packets as f64;
        assert!(per_packet > 30.0, "{per_packet} messages per packet");
    }
    // Without books, not even the books' price levels are allocated.
    assert!(loop_allocs[0] < loop_allocs[1], "{loop_allocs:?}");
}

/// A ring name unique to this process, its file removed on drop.
struct Ring(String);

impl Drop for Ring {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(hftnet_io::shm::path_of(
            std::path::Path::new(hftnet_io::shm::DEFAULT_DIR),
            &self.0,
        ));
    }
}

#[test]
fn no_allocation_per_message_publishing_records() {
    let ring = Ring(format!("apps-alloc-{}", std::process::id()));
    let short = run(2_000, Some(&ring.0));
    let long = run(40_000, Some(&ring.0));
    let records = |r: &loopback::Run| r.feed.publish.as_ref().unwrap().records;
    assert!(records(&long) > 15 * records(&short));
    assert_eq!(
        short.feed_run_allocs, long.feed_run_allocs,
        "the publishing feed handler's loop allocations grew with the record count"
    );
}

/// The exchange with order entry, a client entering and canceling `orders`
/// orders (a resting buy of one share at the lowest tick, then its cancel)
/// over loopback TCP while the day is published to a UDP socket nobody
/// reads: the allocations of the exchange's loop, and the orders accepted.
fn run_orders(orders: u32) -> (u64, u64) {
    use std::sync::atomic::AtomicBool;

    use hftnet_apps::Transports;
    use hftnet_apps::exchange::Exchange;
    use hftnet_apps::order_entry::{Login, OrderEntryConfig};
    use hftnet_trade::exchange::{Generator, GeneratorConfig};
    use hftnet_wire::ouch50::{
        CancelOrderRepr, Capacity, ClOrdId, CrossType, Display, EnterOrderRepr, IntermarketSweep,
        OutboundMessage, Price, Side, TimeInForce,
    };

    let mut oe = OrderEntryConfig::new("tcp://127.0.0.1:0", Login::parse("alice:secret").unwrap());
    oe.end_grace = Duration::from_millis(100);
    oe.matching.price_band_pct = None;
    let cfg = ExchangeConfig {
        messages: None,
        duration: Some(Duration::from_secs(2)),
        rate: 5_000,
        linger: Duration::from_millis(100),
        order_entry: Some(oe),
        ..ExchangeConfig::default()
    };
    let symbol = Generator::new(GeneratorConfig::new(cfg.seed, 8))
        .unwrap()
        .symbol(1)
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let exchange = std::thread::spawn(move || {
        let mut ex = Exchange::new(&cfg).unwrap();
        tx.send(ex.order_entry_addr().unwrap()).unwrap();
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut a = Endpoint::parse(&format!("udp://{}", sink.local_addr().unwrap()))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        let stop = AtomicBool::new(false);
        let before = allocs();
        ex.run(Transports::new().feed_a(&mut a), &stop).unwrap();
        let run = allocs() - before;
        (run, ex.report())
    });
    let addr = rx.recv().unwrap();
    let mut cfg = ouch_client::config("alice", "secret");
    cfg.heartbeat_interval_ns = 100_000_000;
    let mut c = ouch_client::Client::connect(addr, cfg);
    assert!(c.until(Duration::from_secs(5), |c| c.logged_in.is_some()));
    let mut buf = [0u8; 64];
    let mut accepted = 0u32;
    let mut urn = 0u32;
    let answered = |c: &ouch_client::Client, urn: u32| {
        c.seq
            .iter()
            .rev()
            .any(|(_, m)| m.user_ref_num() == Some(urn))
    };
    while accepted < orders {
        urn += 1;
        let n = EnterOrderRepr {
            user_ref_num: urn,
            side: Side::Buy,
            quantity: 1,
            symbol,
            price: Price::from_raw(100),
            time_in_force: TimeInForce::Day,
            display: Display::Visible,
            capacity: Capacity::Agency,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ContinuousMarket,
            cl_ord_id: ClOrdId::BLANK,
            options: Default::default(),
        }
        .encode(&mut buf)
        .unwrap();
        c.send(&buf[..n]);
        assert!(
            c.until(Duration::from_secs(5), |c| answered(c, urn)),
            "no answer to {urn}"
        );
        if matches!(c.seq.last(), Some((_, OutboundMessage::OrderAccepted(_)))) {
            accepted += 1;
            let n = CancelOrderRepr {
                user_ref_num: urn,
                quantity: 0,
            }
            .encode(&mut buf)
            .unwrap();
            c.send(&buf[..n]);
        } else {
            // Before the market opens: Destination Closed (or Halted).
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        c.until(Duration::from_secs(10), |c| c.end_of_session),
        "no End of Session"
    );
    let (run, report) = exchange.join().unwrap();
    let oe = report.order_entry.unwrap();
    assert_eq!(oe.totals.received, oe.totals.accepted + oe.totals.rejected);
    assert_eq!(oe.totals.cancels, u64::from(orders), "{oe:#?}");
    (run, oe.totals.accepted)
}

#[test]
fn no_allocation_per_order() {
    let (short, short_accepted) = run_orders(20);
    let (long, long_accepted) = run_orders(1_000);
    assert!(long_accepted >= 1_000 && short_accepted >= 20);
    eprintln!("order entry: exchange loop {short} allocations for 20 orders, {long} for 1000");
    assert_eq!(
        short, long,
        "the exchange's loop allocations grew with the order count"
    );
}
