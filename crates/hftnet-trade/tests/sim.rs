//! Deterministic simulation of the market-data path, no network, no clock:
//! generator → publisher → fault injection on feeds A and B → feed handler
//! (with re-requests answered by the publisher) → order books, compared
//! message for message and book for book with the loss-free stream.
//!
//! Time is simulated (nanoseconds); every random choice comes from a seed,
//! so a failure reproduces exactly. The driver is a small discrete-event
//! loop in the manner of quinn-proto's test utilities.

#[path = "support/sim.rs"]
mod sim;

use hftnet_trade::book::BookConfig;
use hftnet_trade::exchange::{
    FaultInjector, Faults, Generator, GeneratorConfig, Publisher, PublisherConfig,
};
use hftnet_trade::feed::{Counters, Deliver, FeedConfig, FeedHandler};
use hftnet_trade::market::MarketData;
use hftnet_trade::rng::Rng;
use hftnet_wire::moldudp64::{HEADER_LEN, Request, Session};
use sim::{Event, FeedNet, feed_id};

/// One-way latency of each path, ns.
const LATENCY_A: u64 = 5_000;
const LATENCY_B: u64 = 8_000;
const LATENCY_REQUEST: u64 = 20_000;
/// Time between two bursts of the exchange, ns.
const BURST_GAP: u64 = 2_000;

fn book_config() -> BookConfig {
    BookConfig {
        max_orders: 1 << 14,
        ref_window: 1 << 20,
        ref_window_prealloc: 1 << 14,
        max_locates: 64,
        ..BookConfig::default()
    }
}

/// A generated day, each message encoded.
fn day(seed: u64, flow_messages: u64) -> Vec<Vec<u8>> {
    let mut g = Generator::new(GeneratorConfig::new(seed, 8)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    while let Some(m) = g.next_message() {
        let n = m.emit(&mut buf).unwrap();
        out.push(buf[..n].to_vec());
        if g.in_flow() && g.generated() >= flow_messages {
            g.finish();
        }
    }
    out
}

/// What the consumer of the feed handler saw.
struct Consumer {
    market: MarketData,
    delivered: Vec<(u64, Vec<u8>)>,
    lost: Vec<(u64, u64)>,
    ended: Option<u64>,
}

impl Deliver for Consumer {
    fn message(&mut self, sequence: u64, message: &[u8]) {
        self.market.handle(message);
        self.delivered.push((sequence, message.to_vec()));
    }

    fn lost(&mut self, first: u64, count: u64) {
        self.lost.push((first, count));
    }

    fn end_of_session(&mut self, sequence: u64) {
        assert!(self.ended.is_none(), "end of session reported twice");
        self.ended = Some(sequence);
    }
}

struct Scenario {
    seed: u64,
    flow_messages: u64,
    faults: Faults,
    /// Packet indices (0-based, downstream packets with messages) dropped on
    /// both feeds, whatever the injectors do.
    drop_on_both: Vec<u64>,
    recovery: bool,
    /// Messages the exchange keeps for re-requests.
    history: usize,
}

struct Outcome {
    source: Vec<Vec<u8>>,
    consumer: Consumer,
    counters: Counters,
    faults: [hftnet_trade::exchange::FaultStats; 2],
    retransmitted: u64,
    refused_requests: u64,
    /// Sequence ranges the test dropped on both feeds, adjacent ones merged:
    /// what a handler without recovery must report lost.
    dropped: Vec<(u64, u64)>,
}

fn run(s: &Scenario) -> Outcome {
    let source = day(s.seed, s.flow_messages);
    let session = Session::new("SIM").unwrap();
    let mut publisher = Publisher::new(PublisherConfig {
        heartbeat_interval_ns: 100_000,
        history: s.history,
        ..PublisherConfig::new(session)
    })
    .unwrap();
    let mut injectors = [
        FaultInjector::new(s.faults, s.seed ^ 0xa).unwrap(),
        FaultInjector::new(s.faults, s.seed ^ 0xb).unwrap(),
    ];
    let mut feed = FeedHandler::new(FeedConfig {
        session: Some(session),
        recovery: s.recovery,
        gap_wait_ns: 50_000,
        request_timeout_ns: 200_000,
        ..FeedConfig::default()
    })
    .unwrap();
    let mut consumer = Consumer {
        market: MarketData::new(book_config()).unwrap(),
        delivered: Vec::new(),
        lost: Vec::new(),
        ended: None,
    };
    let mut rng = Rng::new(s.seed);
    let mut net = FeedNet::new([LATENCY_A, LATENCY_B]);
    let mut now = 0u64;
    let mut next_msg = 0usize;
    let mut next_burst = 0u64;
    let mut packet_index = 0u64;
    let mut ended = false;

    for _ in 0..10_000_000 {
        // The exchange: a burst of 1..=8 messages, then a flush.
        if !ended && now >= next_burst {
            let n = rng.range(1, 8) as usize;
            let mut pkts = Vec::new();
            for _ in 0..n {
                let Some(m) = source.get(next_msg) else { break };
                publisher
                    .publish(now, m, &mut |p: &[u8]| pkts.push(p.to_vec()))
                    .unwrap();
                next_msg += 1;
            }
            publisher.flush(now, &mut |p: &[u8]| pkts.push(p.to_vec()));
            if next_msg == source.len() {
                publisher.end_session(now, &mut |p: &[u8]| pkts.push(p.to_vec()));
                ended = true;
            }
            for p in &pkts {
                net.downstream(now, p, &mut injectors, &s.drop_on_both, &mut packet_index);
            }
            if ended {
                net.flush(now, &mut injectors);
            }
            next_burst = now + BURST_GAP;
        }
        // Heartbeats (they also release a packet held for reordering).
        if publisher.poll_timeout().is_some_and(|t| now >= t) {
            let mut pkts = Vec::new();
            net.flush(now, &mut injectors);
            publisher.handle_timeout(now, &mut |p: &[u8]| pkts.push(p.to_vec()));
            for p in &pkts {
                net.downstream(now, p, &mut injectors, &s.drop_on_both, &mut packet_index);
            }
        }
        // Everything due now.
        while let Some(ev) = net.pop_due(now) {
            match ev {
                Event::Arrive(i, bytes) => {
                    feed.handle_packet(feed_id(i), now, &bytes, &mut consumer)
                }
                Event::Request(bytes) => {
                    let mut replies = Vec::new();
                    // Requests for messages not kept are refused; the feed
                    // handler then reports the loss.
                    let _ = publisher.handle_request(now, &bytes, &mut |p: &[u8]| {
                        replies.push(p.to_vec());
                    });
                    for p in replies {
                        net.push(now + LATENCY_REQUEST, Event::Arrive(2, p));
                    }
                }
            }
        }
        if feed.poll_timeout().is_some_and(|t| now >= t) {
            feed.handle_timeout(now, &mut consumer);
        }
        while let Some(r) = feed.poll_request(now) {
            let mut b = vec![0u8; HEADER_LEN];
            r.emit(&mut Request::new_unchecked(&mut b[..]));
            net.push(now + LATENCY_REQUEST, Event::Request(b));
        }
        if consumer.ended.is_some() && net.events.is_empty() {
            break;
        }
        // Advance to the next thing that happens.
        let mut next = u64::MAX;
        if !ended {
            next = next.min(next_burst);
        }
        if let Some(t) = net.next_due() {
            next = next.min(t);
        }
        if let Some(t) = feed.poll_timeout() {
            next = next.min(t);
        }
        if let Some(t) = publisher.poll_timeout() {
            next = next.min(t);
        }
        assert_ne!(
            next,
            u64::MAX,
            "simulation stalled before the end of session"
        );
        now = next.max(now + 1);
    }
    assert!(consumer.ended.is_some(), "the session never ended");
    Outcome {
        source,
        counters: feed.counters(),
        faults: [injectors[0].stats(), injectors[1].stats()],
        retransmitted: publisher.stats().retransmitted,
        refused_requests: publisher.stats().bad_requests,
        dropped: merged(&net.dropped),
        consumer,
    }
}

/// `ranges` in order, adjacent ones joined (two consecutive dropped packets
/// make one hole).
fn merged(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(first, count) in ranges {
        match out.last_mut() {
            Some(last) if last.0 + last.1 == first => last.1 += count,
            _ => out.push((first, count)),
        }
    }
    out
}

/// The book built straight from the loss-free stream.
fn reference(source: &[Vec<u8>]) -> MarketData {
    let mut md = MarketData::new(book_config()).unwrap();
    for m in source {
        md.handle(m);
    }
    md
}

fn assert_identical(o: &Outcome) {
    let c = &o.counters;
    assert!(o.consumer.lost.is_empty(), "lost: {:?}", o.consumer.lost);
    assert_eq!(c.lost, 0);
    assert_eq!(o.consumer.delivered.len(), o.source.len());
    for (i, ((seq, msg), want)) in o.consumer.delivered.iter().zip(&o.source).enumerate() {
        assert_eq!(*seq, i as u64 + 1, "sequence numbers delivered in order");
        assert_eq!(msg, want, "message {seq} differs");
    }
    let r = reference(&o.source);
    assert_eq!(o.consumer.market.stream_digest(), r.stream_digest());
    assert_eq!(o.consumer.market.counts(), r.counts());
    assert_eq!(o.consumer.market.book().digest(), r.book().digest());
    for locate in 1..=8 {
        assert_eq!(
            o.consumer.market.book().snapshot(locate),
            r.book().snapshot(locate),
            "book of locate {locate}"
        );
    }
    o.consumer.market.book().check_invariants().unwrap();
    assert_eq!(o.consumer.ended, Some(o.source.len() as u64 + 1));
}

fn faulty(seed: u64, p: f64) -> Outcome {
    let o = run(&Scenario {
        seed,
        flow_messages: 30_000,
        faults: Faults::uniform(p),
        drop_on_both: Vec::new(),
        recovery: true,
        history: 1 << 20,
    });
    assert_identical(&o);
    // The faults really happened, and the handler saw them.
    for (f, side) in o.faults.iter().zip([o.counters.a, o.counters.b]) {
        assert!(
            f.dropped > 0 && f.duplicated > 0 && f.reordered > 0,
            "{f:?}"
        );
        assert!(side.gaps > 0, "{side:?}");
    }
    let dups = o.counters.a.duplicates + o.counters.b.duplicates;
    assert!(dups > o.source.len() as u64 / 2, "B duplicates A: {dups}");
    o
}

#[test]
fn one_percent_loss_duplication_and_reordering_on_both_feeds() {
    for seed in [1, 2] {
        faulty(seed, 0.01);
    }
}

#[test]
fn five_percent_loss_duplication_and_reordering_on_both_feeds() {
    for seed in [3, 4] {
        let o = faulty(seed, 0.05);
        // At 5% independent loss, some packets are lost on both feeds:
        // only retransmission recovers them.
        assert!(o.counters.requests > 0, "{:?}", o.counters);
        assert!(o.counters.retransmission.recovered > 0);
        assert!(o.retransmitted >= o.counters.retransmission.recovered);
    }
}

#[test]
fn the_same_packet_lost_on_both_feeds_is_recovered_by_request() {
    let o = run(&Scenario {
        seed: 9,
        flow_messages: 2_000,
        faults: Faults::NONE,
        drop_on_both: vec![10, 11, 200],
        recovery: true,
        history: 1 << 20,
    });
    assert_identical(&o);
    // Packets 10 and 11 make one hole, 200 another; both feeds lost exactly
    // those messages, so retransmission recovered exactly them.
    assert_eq!(o.dropped.len(), 2, "{:?}", o.dropped);
    let dropped: u64 = o.dropped.iter().map(|h| h.1).sum();
    assert!(o.counters.requests >= 2);
    assert_eq!(
        o.counters.retransmission.recovered, dropped,
        "{:?}",
        o.counters
    );
}

#[test]
fn the_same_packet_lost_on_both_feeds_without_recovery_is_reported() {
    let with = run(&Scenario {
        seed: 9,
        flow_messages: 2_000,
        faults: Faults::NONE,
        drop_on_both: Vec::new(),
        recovery: false,
        history: 1 << 20,
    });
    assert_identical(&with);
    let o = run(&Scenario {
        seed: 9,
        flow_messages: 2_000,
        faults: Faults::NONE,
        drop_on_both: vec![10, 200],
        recovery: false,
        history: 1 << 20,
    });
    // The holes are the sequence ranges the two dropped packets carried, as
    // the test read them from the packets it dropped — not from what the
    // handler delivered.
    let holes = &o.dropped;
    assert_eq!(holes.len(), 2, "two packets dropped: {holes:?}");
    assert!(holes.iter().all(|h| h.1 > 0), "{holes:?}");
    assert_eq!(&o.consumer.lost, holes, "every lost range reported exactly");
    let lost: u64 = holes.iter().map(|h| h.1).sum();
    assert_eq!(o.counters.lost, lost);
    assert_eq!(o.counters.delivered + lost, o.source.len() as u64);
    // Everything else arrived, in order.
    let got: Vec<u64> = o.consumer.delivered.iter().map(|(s, _)| *s).collect();
    let want: Vec<u64> = (1..=o.source.len() as u64)
        .filter(|s| !holes.iter().any(|&(f, n)| (f..f + n).contains(s)))
        .collect();
    assert_eq!(got, want, "every message outside the holes delivered once");
    assert_eq!(o.counters.requests, 0, "recovery off: no request");
    assert_eq!(o.consumer.ended, Some(o.source.len() as u64 + 1));
}

#[test]
fn a_gap_the_exchange_no_longer_keeps_is_reported_lost() {
    // The exchange keeps only 8 messages: by the time the re-request
    // arrives, the lost packet's messages are gone. The handler asks, is
    // refused (no answer), gives up after its attempts, and says so.
    let s = Scenario {
        seed: 9,
        flow_messages: 2_000,
        faults: Faults::NONE,
        drop_on_both: vec![10],
        recovery: true,
        history: 8,
    };
    let o = run(&s);
    // The hole is what the test dropped, read from the dropped packet.
    assert_eq!(o.dropped.len(), 1, "{:?}", o.dropped);
    let (first, count) = o.dropped[0];
    assert!(count > 0);
    assert_eq!(
        o.consumer.lost, o.dropped,
        "the dropped range reported lost"
    );
    assert_eq!(o.counters.lost, count);
    assert_eq!(o.counters.delivered + count, o.source.len() as u64);
    let delivered: Vec<u64> = o.consumer.delivered.iter().map(|(q, _)| *q).collect();
    let want: Vec<u64> = (1..=o.source.len() as u64)
        .filter(|q| !(first..first + count).contains(q))
        .collect();
    assert_eq!(delivered, want, "everything else delivered once, in order");
    assert!(
        o.counters.requests >= 3,
        "asked every attempt: {:?}",
        o.counters
    );
    assert!(o.refused_requests >= 3);
    assert_eq!(o.consumer.ended, Some(o.source.len() as u64 + 1));
}
