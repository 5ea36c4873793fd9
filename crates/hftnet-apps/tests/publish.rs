//! The feed handler's market-data records over shared memory, in one
//! process: an exchange publishes a day over `mem://` pairs (with loss on
//! both feeds, recovered by re-request) to a feed handler that publishes a
//! record per top-of-book change and per trade on `shm://NAME`; a
//! subscriber on its own thread reads every record in order, with no hole
//! in the sequence numbers, ends at the end-of-stream record, and its last
//! top of each book is the feed handler's final top; its trades are the
//! executions the exchange made.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use hftnet_apps::exchange::ExchangeConfig;
use hftnet_apps::feed::{FeedHandlerConfig, FeedStop};
use hftnet_apps::md_subscriber::{MdSubscriber, SubscriberConfig, SubscriberStop};
use hftnet_apps::publish::RxStamp;
use hftnet_io::{Endpoint, OneWay, Role, dispatch};
use hftnet_wire::md::Quote;

#[allow(dead_code)]
#[path = "support/loopback.rs"]
mod loopback;

/// A ring name unique to this process; its file is removed on drop, also
/// when the test fails.
struct Ring(String);

impl Ring {
    fn new(test: &str) -> Self {
        Self(format!("apps-{test}-{}", std::process::id()))
    }

    fn path(&self) -> std::path::PathBuf {
        hftnet_io::shm::path_of(Path::new(hftnet_io::shm::DEFAULT_DIR), &self.0)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

#[test]
fn every_record_reaches_a_subscriber_in_order_and_the_last_tops_are_the_books() {
    let ring = Ring::new("publish");
    let exchange = ExchangeConfig {
        messages: Some(20_000),
        rate: 100_000,
        heartbeat: Duration::from_millis(20),
        linger: Duration::from_millis(500),
        // The reference books, compared with the feed handler's below.
        book: Some(hftnet_trade::book::BookConfig::all_symbols()),
        ..ExchangeConfig::default()
    };
    let feed = FeedHandlerConfig {
        idle_timeout: Duration::from_secs(10),
        duration: Some(Duration::from_secs(60)),
        ..FeedHandlerConfig::default()
    };
    // The writer first, then the reader (at the ring's head, before the
    // first record); slots for the whole day's records, so even a reader
    // starved of CPU is never lapped.
    let uri = format!("shm://{}?slots=65536&size=64", ring.0);
    let mut publisher = Endpoint::parse(&uri)
        .unwrap()
        .one_way(OneWay::Publish)
        .open(Role::Client)
        .unwrap();
    assert!(ring.path().exists());
    let mut reader = Endpoint::parse(&format!("shm://{}", ring.0))
        .unwrap()
        .one_way(OneWay::Subscribe)
        .open(Role::Server)
        .unwrap();
    let stop = AtomicBool::new(false);
    let (run, sub) = thread::scope(|s| {
        let sub = s.spawn(|| {
            let mut sub = MdSubscriber::new(SubscriberConfig {
                // Bounded even if the end record never came.
                duration: Some(Duration::from_secs(90)),
                idle_timeout: Duration::from_secs(20),
                ..SubscriberConfig::default()
            });
            dispatch!(&mut reader, t => sub.run(t, &stop));
            sub
        });
        let ends = loopback::mem_ends(
            &format!("apps-publish-{}", std::process::id()),
            "loss=0.02&faults_on=tx",
        );
        let run = loopback::exchange_to_feed_publishing(
            &exchange,
            &feed,
            ends,
            Some(&mut publisher),
            || 0,
        );
        (run, sub.join().unwrap())
    });
    let (ex, fd, r) = (&run.exchange, &run.feed, sub.report());
    let show = || format!("feed {fd:#?}\nsubscriber {r:#?}");
    // The feed handler rebuilt the day.
    assert_eq!(fd.stopped, FeedStop::EndOfSession, "{}", show());
    assert_eq!((fd.lost, fd.unresolved), (0, 0), "{}", show());
    assert!(fd.requests > 0, "loss was recovered by re-request");
    assert_eq!(
        Some(fd.market.book.digest),
        ex.market.book.as_ref().map(|b| b.digest)
    );
    // It published one record per top change and per trade, and the end.
    let p = fd.publish.as_ref().expect("a publish report");
    assert_eq!(p.errors, 0, "{}", show());
    assert_eq!(p.top_of_book, fd.top_updates, "{}", show());
    assert_eq!(p.end, 1);
    assert_eq!(p.records, p.top_of_book + p.trades + 1);
    assert_eq!(p.rx_stamp, RxStamp::Handler, "mem:// has no kernel stamps");
    let hop = p.receive_to_publish_ns.expect("publish latency");
    assert_eq!(hop.samples, p.top_of_book + p.trades);
    assert!(hop.p50 <= hop.p99 && hop.p99 <= hop.max);
    // The trades are the executions the exchange made.
    let count = |name: &str| {
        ex.market
            .counts
            .by_type
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c)
    };
    let executions = count("order_executed") + count("order_executed_with_price") + count("trade");
    assert!(executions > 100, "{:?}", ex.market.counts);
    assert_eq!(p.trades, executions, "{}", show());
    // The subscriber got every record, in order, and the end.
    assert_eq!(
        sub.report().stopped,
        SubscriberStop::EndOfStream,
        "{}",
        show()
    );
    assert_eq!(r.first_sequence, Some(1), "{}", show());
    assert_eq!(r.last_sequence, Some(p.records), "{}", show());
    assert_eq!((r.gaps, r.missed, r.late, r.malformed), (0, 0, 0, 0));
    assert_eq!(r.records.top_of_book, p.top_of_book);
    assert_eq!(r.records.trades, p.trades);
    let end = r.end.expect("the end record");
    assert_eq!(
        (end.sequence, end.top_records, end.trade_records),
        (p.records, p.top_of_book, p.trades)
    );
    assert_eq!(r.recv_errors, 0, "{}", show());
    let hops = [
        r.feed_receive_to_publish_ns,
        r.publish_to_receive_ns,
        r.end_to_end_ns,
    ];
    for h in hops {
        assert_eq!(h.expect("each hop timed").samples, p.top_of_book + p.trades);
    }
    assert_eq!(r.clock_inversions, 0, "one machine, one CLOCK_MONOTONIC");
    // The last record of each book is the feed handler's final top.
    assert_eq!(fd.top_of_book.len(), 8, "the default day's 8 symbols");
    assert_eq!(r.books, 8, "{}", show());
    for t in &fd.top_of_book {
        let b = sub.top(t.locate).expect("a book the feed handler has");
        assert_eq!(std::str::from_utf8(&b.symbol).unwrap().trim_end(), t.symbol);
        let q = |l: Option<hftnet_apps::market::TopLevel>| {
            l.map(|l| Quote {
                price: l.price,
                shares: u32::try_from(l.shares).unwrap(),
            })
        };
        assert_eq!((b.bid, b.ask), (q(t.bid), q(t.ask)), "{}", t.symbol);
        assert_eq!(b.state, Some(b'T'));
    }
    // The writer is gone with its transport, and so is its file.
    drop(publisher);
    assert!(
        !ring.path().exists(),
        "{} left behind",
        ring.path().display()
    );
}

#[test]
fn a_publish_transport_is_refused_by_the_exchange() {
    let ring = Ring::new("exchange-refuses");
    let mut publisher = Endpoint::parse(&format!("shm://{}", ring.0))
        .unwrap()
        .one_way(OneWay::Publish)
        .open(Role::Client)
        .unwrap();
    let mut feed = Endpoint::parse(&format!("mem://apps-refuse-{}", std::process::id()))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let e = dispatch!(&mut publisher, p => dispatch!(&mut feed, f => {
        hftnet_apps::exchange::run_exchange(
            &ExchangeConfig::default(),
            hftnet_apps::Transports::new().feed_a(f).publish(p),
            &AtomicBool::new(false),
        )
    }))
    .unwrap_err();
    assert!(e.to_string().contains("feed handler"), "{e}");
}
