//! The exchange and the feed handler of the library in one process without
//! sockets: feeds A and B and the re-request channel are `mem://` pairs, and
//! the fault middleware drops 5% of each feed's packets (with duplicates and
//! reordering). The feed handler recovers every message by re-request and
//! rebuilds exactly the stream and the books the exchange published.

use std::time::Duration;

use hftnet_apps::exchange::ExchangeConfig;
use hftnet_apps::feed::{FeedHandlerConfig, FeedStop};

#[allow(dead_code)]
#[path = "support/loopback.rs"]
mod loopback;

#[test]
fn five_percent_loss_over_mem_is_recovered_message_for_message() {
    let exchange = ExchangeConfig {
        messages: Some(20_000),
        rate: 200_000,
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
    let ends = loopback::mem_ends(
        "apps-mem-test",
        "loss=0.05&dup=0.01&reorder=0.01&faults_on=tx",
    );
    let run = loopback::exchange_to_feed_over(&exchange, &feed, ends, || 0);
    let (ex, fd) = (&run.exchange, &run.feed);
    let show = || format!("exchange {ex:#?}\nfeed {fd:#?}");
    // The middleware dropped packets on both feeds, and the exchange counted
    // every packet it handed them.
    assert!(
        ex.faults.a.dropped > 0 && ex.faults.b.dropped > 0,
        "{}",
        show()
    );
    let (lo, hi) = hftnet_wire::faults::binomial_bounds(ex.faults.a.packets, 0.05, 6.0);
    assert!(
        (lo..=hi).contains(&ex.faults.a.dropped),
        "{} of {} dropped on feed A, outside {lo}..={hi}",
        ex.faults.a.dropped,
        ex.faults.a.packets
    );
    assert_eq!(ex.faults.a.packets, ex.faults.b.packets);
    assert!(
        fd.requests > 0 && ex.retransmission.requests > 0,
        "{}",
        show()
    );
    assert!(fd.retransmission.recovered > 0, "{}", show());
    assert_eq!(ex.send_errors, 0, "{}", show());
    // Every message recovered: nothing lost or left over, the same stream
    // and the same books.
    assert_eq!(fd.stopped, FeedStop::EndOfSession, "{}", show());
    assert_eq!(fd.lost, 0, "{}", show());
    assert_eq!(fd.unresolved, 0, "{}", show());
    assert!(ex.messages > 20_000, "{}", show());
    assert_eq!(fd.delivered, ex.messages, "{}", show());
    assert_eq!(fd.market.stream_digest, ex.market.stream_digest);
    assert_eq!(
        Some(fd.market.book.digest),
        ex.market.book.as_ref().map(|b| b.digest)
    );
    assert!(fd.market.book.invariants.ok);
    assert_eq!(run.top_calls, fd.top_updates);
}
