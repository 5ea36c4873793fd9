//! The exchange and the feed handler of the library, end to end in one
//! process over loopback UDP: with 5% loss on both feeds (and duplicates and
//! reordering), the feed handler recovers every message by re-request and
//! rebuilds exactly the stream and the books the exchange published.

use std::time::Duration;

use hftnet_apps::exchange::ExchangeConfig;
use hftnet_apps::feed::{FeedHandlerConfig, FeedStop};

// The allocation figures of its report are read by tests/alloc.rs.
#[allow(dead_code)]
#[path = "support/loopback.rs"]
mod loopback;

#[test]
fn five_percent_loss_on_both_feeds_is_recovered_message_for_message() {
    let exchange = ExchangeConfig {
        messages: Some(20_000),
        rate: 200_000,
        heartbeat: Duration::from_millis(20),
        linger: Duration::from_secs(1),
        // The reference books, compared with the feed handler's below.
        book: Some(hftnet_trade::book::BookConfig::all_symbols()),
        ..ExchangeConfig::default()
    };
    let feed = FeedHandlerConfig {
        idle_timeout: Duration::from_secs(10),
        duration: Some(Duration::from_secs(60)),
        ..FeedHandlerConfig::default()
    };
    let run = loopback::exchange_to_feed(
        &exchange,
        &feed,
        "loss=0.05&dup=0.01&reorder=0.01&faults_on=tx",
        || 0,
    );
    let (ex, fd) = (&run.exchange, &run.feed);
    let show = || format!("exchange {ex:#?}\nfeed {fd:#?}");
    // The faults happened on both feeds, and messages went missing on both at once.
    assert!(
        ex.faults.a.dropped > 0 && ex.faults.b.dropped > 0,
        "{}",
        show()
    );
    assert!(fd.a.gaps > 0 && fd.b.gaps > 0, "{}", show());
    assert!(
        fd.requests > 0 && ex.retransmission.requests > 0,
        "{}",
        show()
    );
    assert!(fd.retransmission.recovered > 0, "{}", show());
    // The feed's requests came from the host feeds A and B are sent to, the
    // sources allowed by default, and stayed within the default limits.
    assert_eq!(ex.retransmission.allowed, ["127.0.0.1"], "{}", show());
    assert_eq!(ex.retransmission.refusals.total(), 0, "{}", show());
    assert_eq!(ex.retransmission.cut, 0, "{}", show());
    // Every message recovered: nothing lost or left over, the same stream
    // and the same books.
    assert_eq!(fd.stopped, FeedStop::EndOfSession, "{}", show());
    assert_eq!(fd.lost, 0, "{}", show());
    assert!(fd.lost_ranges.is_empty(), "{}", show());
    assert_eq!(fd.unresolved, 0, "{}", show());
    assert!(ex.messages > 20_000, "{}", show());
    assert_eq!(fd.delivered, ex.messages, "{}", show());
    assert_eq!(fd.end_of_session, Some(ex.messages + 1));
    assert_eq!(fd.market.stream_digest, ex.market.stream_digest);
    assert_eq!(fd.market.counts, ex.market.counts);
    assert_eq!(
        Some(fd.market.book.digest),
        ex.market.book.as_ref().map(|b| b.digest)
    );
    assert!(fd.market.book.invariants.ok);
    assert_eq!(ex.error, None);
    assert_eq!(fd.session.as_deref(), Some("HFTNET"));
    // The sustained rate, and the time each packet took.
    assert!(fd.seconds > 0.0);
    assert_eq!(
        fd.messages_per_sec,
        (fd.delivered as f64 / fd.seconds).round() as u64
    );
    let t = fd.handle_packet_ns.expect("packets were timed");
    assert!(
        t.p50 <= t.p99 && t.p99 <= t.p99_9 && t.p99_9 <= t.max,
        "{t:?}"
    );
    // The strategy hook ran on every top-of-book change.
    assert!(fd.top_updates > 0);
    assert_eq!(run.top_calls, fd.top_updates);
}
