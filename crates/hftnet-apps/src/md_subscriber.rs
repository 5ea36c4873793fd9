//! A subscriber of the feed handler's market-data records (what
//! `hftnet feed --publish URI` publishes, [`hftnet_wire::md`]): it keeps
//! the top of book per stock, counts trades, counts what it missed from
//! the publisher's sequence numbers, and measures each hop with the
//! `CLOCK_MONOTONIC` stamps the records carry.
//!
//! Layer: apps, over any [`Lease`] transport (a reader of a `shm://` ring,
//! a UDP socket); the `md_subscriber` example is this module plus argument
//! parsing and printing, and tests drive [`MdSubscriber::handle`] or
//! [`MdSubscriber::run`] directly.
//!
//! Hops, each an HDR histogram in ns (stamps on `CLOCK_MONOTONIC`, which
//! every process of the machine shares):
//! - feed handler: packet received → record published (carried in the record);
//! - transport: record published → received here (read in the receive
//!   lease's callback, when the record is in this process's memory);
//! - end to end: packet received by the feed handler → received here.
//!
//! Sequence numbers: the first record received sets where this subscriber
//! joined ([`SubscriberReport::first_sequence`]: 1 when it saw the stream
//! from its start); after it, a number past the next expected is a gap
//! (the records between are counted missed), one before it is late (a
//! reordering transport; not applied, so the tops never go back). The
//! end-of-stream record ends a run.
//!
//! Invariants: after [`MdSubscriber::new`] (the tops of every locate and
//! the histograms are allocated there), handling a record allocates
//! nothing; the run loop is bounded by the record count, the duration,
//! the idle timeout, the end of the stream and the stop flag, and its
//! receive waits are at most 100 ms each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hftnet_bench::clock::monotonic_ns;
use hftnet_bench::stats::LatencyStats;
use hftnet_io::{Lease, SyscallError};
use hftnet_wire::md::{Body, End, Quote, Record, RecordError};
use serde::Serialize;

use crate::publish::HopLatency;

/// The longest single receive wait of [`MdSubscriber::run`].
const WAIT_SLICE: Duration = Duration::from_millis(100);
/// Records taken per receive call.
const BURST: usize = 32;

/// When a subscriber stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberConfig {
    /// Stop after this many records (the end record included).
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop when nothing arrived for this long.
    pub idle_timeout: Duration,
    /// Books listed in the report (by locate).
    pub top: usize,
}

impl Default for SubscriberConfig {
    /// Until the end of the stream, 10 s idle timeout, 20 books listed.
    fn default() -> Self {
        Self {
            count: None,
            duration: None,
            idle_timeout: Duration::from_secs(10),
            top: 20,
        }
    }
}

/// What ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SubscriberStop {
    /// The publisher's end-of-stream record came.
    #[serde(rename = "end of stream")]
    EndOfStream,
    /// The record count was reached.
    #[serde(rename = "count reached")]
    Count,
    /// The duration passed.
    #[serde(rename = "duration reached")]
    Duration,
    /// Nothing arrived for the idle timeout.
    #[serde(rename = "idle timeout")]
    IdleTimeout,
    /// The stop flag was set.
    #[serde(rename = "interrupted")]
    Interrupted,
}

impl SubscriberStop {
    /// The words used in reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EndOfStream => "end of stream",
            Self::Count => "count reached",
            Self::Duration => "duration reached",
            Self::IdleTimeout => "idle timeout",
            Self::Interrupted => "interrupted",
        }
    }
}

/// The top of one book as the records said it last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BookTop {
    /// The symbol, space-padded.
    pub symbol: [u8; 8],
    /// The best bid.
    pub bid: Option<Quote>,
    /// The best ask.
    pub ask: Option<Quote>,
    /// The trading state (ITCH byte), once known.
    pub state: Option<u8>,
    /// Top-of-book records applied.
    pub updates: u64,
    /// Trade records of the book.
    pub trades: u64,
    /// Shares of those trades.
    pub traded_shares: u64,
    /// The sequence number of the last record applied.
    pub sequence: u64,
}

/// Records received, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct KindCounts {
    /// Top-of-book records.
    pub top_of_book: u64,
    /// Trade records.
    pub trades: u64,
    /// End-of-stream records.
    pub end: u64,
}

/// The publisher's end-of-stream record, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EndSeen {
    /// Its sequence number (one past the last top or trade record).
    pub sequence: u64,
    /// Top-of-book records the publisher published before it.
    pub top_records: u64,
    /// Trade records the publisher published before it.
    pub trade_records: u64,
}

/// One line of the tops listed in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopLine {
    /// The symbol, without padding.
    pub symbol: String,
    /// The stock locate.
    pub locate: u16,
    /// Best bid: price (4 implied decimals) and shares.
    pub bid: Option<(u32, u32)>,
    /// Best ask.
    pub ask: Option<(u32, u32)>,
    /// Top-of-book records applied.
    pub updates: u64,
    /// Trades.
    pub trades: u64,
}

/// What a subscriber saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriberReport {
    /// What ended the run.
    pub stopped: SubscriberStop,
    /// From the first record to the last, seconds.
    pub seconds: f64,
    /// Messages received, records or not.
    pub received: u64,
    /// Records decoded, by kind.
    pub records: KindCounts,
    /// Messages that were not records.
    pub malformed: u64,
    /// Why the first of them was not, in words.
    pub first_malformed: Option<String>,
    /// The sequence number of the first record (1: the stream from its start).
    pub first_sequence: Option<u64>,
    /// The highest sequence number received.
    pub last_sequence: Option<u64>,
    /// Jumps in the sequence numbers.
    pub gaps: u64,
    /// Records the jumps skipped.
    pub missed: u64,
    /// Records with a sequence number already passed (not applied).
    pub late: u64,
    /// The end-of-stream record, once received.
    pub end: Option<EndSeen>,
    /// Books with a top-of-book record.
    pub books: u64,
    /// Receives the transport failed.
    pub recv_errors: u64,
    /// The first of them, in words.
    pub first_recv_error: Option<String>,
    /// Records whose receive stamp precedes their publish stamp (a clock
    /// not shared: the publisher on another machine).
    pub clock_inversions: u64,
    /// Feed handler hop: packet received → record published, ns.
    pub feed_receive_to_publish_ns: Option<HopLatency>,
    /// Transport hop: record published → received here, ns.
    pub publish_to_receive_ns: Option<HopLatency>,
    /// End to end: packet received by the feed handler → received here, ns.
    pub end_to_end_ns: Option<HopLatency>,
    /// The tops of the first books, by locate.
    pub tops: Vec<TopLine>,
}

/// A subscriber: the tops of every locate, the counters, the histograms.
#[derive(Debug)]
pub struct MdSubscriber {
    cfg: SubscriberConfig,
    tops: Box<[BookTop]>,
    received: u64,
    kinds: KindCounts,
    malformed: u64,
    first_malformed: Option<RecordError>,
    first_sequence: Option<u64>,
    next_sequence: u64,
    gaps: u64,
    missed: u64,
    late: u64,
    end: Option<EndSeen>,
    recv_errors: u64,
    first_recv_error: Option<SyscallError>,
    clock_inversions: u64,
    feed_hop: LatencyStats,
    transport_hop: LatencyStats,
    end_to_end: LatencyStats,
    first_rx: Option<Instant>,
    last_rx: Option<Instant>,
    stopped: Option<SubscriberStop>,
}

impl MdSubscriber {
    /// A subscriber that saw nothing yet (allocates the tops of all 65 536
    /// locates and three histograms).
    #[must_use]
    pub fn new(cfg: SubscriberConfig) -> Self {
        Self {
            cfg,
            tops: vec![BookTop::default(); 1 << 16].into_boxed_slice(),
            received: 0,
            kinds: KindCounts::default(),
            malformed: 0,
            first_malformed: None,
            first_sequence: None,
            next_sequence: 0,
            gaps: 0,
            missed: 0,
            late: 0,
            end: None,
            recv_errors: 0,
            first_recv_error: None,
            clock_inversions: 0,
            feed_hop: LatencyStats::new(),
            transport_hop: LatencyStats::new(),
            end_to_end: LatencyStats::new(),
            first_rx: None,
            last_rx: None,
            stopped: None,
        }
    }

    /// Handles one message received at `recv_ns` (`CLOCK_MONOTONIC`):
    /// decodes it, checks its sequence number, applies it, times it.
    ///
    /// # Errors
    /// The [`RecordError`] of a message that is not a record (counted).
    pub fn handle(&mut self, bytes: &[u8], recv_ns: u64) -> Result<Record, RecordError> {
        self.received += 1;
        let r = match Record::decode(bytes) {
            Ok(r) => r,
            Err(e) => {
                self.malformed += 1;
                self.first_malformed.get_or_insert(e);
                return Err(e);
            }
        };
        match self.first_sequence {
            None => self.first_sequence = Some(r.sequence),
            Some(_) if r.sequence < self.next_sequence => {
                self.late += 1;
                return Ok(r);
            }
            Some(_) if r.sequence > self.next_sequence => {
                self.gaps += 1;
                self.missed += r.sequence - self.next_sequence;
            }
            Some(_) => {}
        }
        self.next_sequence = r.sequence.saturating_add(1);
        match r.body {
            Body::Top(t) => {
                self.kinds.top_of_book += 1;
                let b = &mut self.tops[usize::from(r.locate)];
                b.symbol = r.symbol;
                b.bid = t.bid;
                b.ask = t.ask;
                b.state = t.state;
                b.updates += 1;
                b.sequence = r.sequence;
            }
            Body::Trade(t) => {
                self.kinds.trades += 1;
                let b = &mut self.tops[usize::from(r.locate)];
                b.symbol = r.symbol;
                b.trades += 1;
                b.traded_shares += u64::from(t.shares);
                b.sequence = r.sequence;
            }
            Body::End(End {
                top_records,
                trade_records,
            }) => {
                self.kinds.end += 1;
                self.end = Some(EndSeen {
                    sequence: r.sequence,
                    top_records,
                    trade_records,
                });
                return Ok(r);
            }
        }
        if recv_ns < r.publish_ns {
            self.clock_inversions += 1;
        }
        self.feed_hop.record(r.publish_ns.saturating_sub(r.rx_ns));
        self.transport_hop
            .record(recv_ns.saturating_sub(r.publish_ns));
        self.end_to_end.record(recv_ns.saturating_sub(r.rx_ns));
        Ok(r)
    }

    /// Receives over `t` until the end-of-stream record, the record count,
    /// the duration, the idle timeout or `stop`; each record is stamped in
    /// the receive lease's callback. Time starts at the call. Failed
    /// receives are counted (and waited past for 1 ms), not returned.
    pub fn run<T: Lease>(&mut self, t: &mut T, stop: &AtomicBool) -> SubscriberStop {
        let start = Instant::now();
        let mut last = start;
        let why = loop {
            let now = Instant::now();
            if self.end.is_some() {
                break SubscriberStop::EndOfStream;
            }
            let done = self.kinds.top_of_book + self.kinds.trades + self.kinds.end;
            if self.cfg.count.is_some_and(|c| done >= c) {
                break SubscriberStop::Count;
            }
            if stop.load(Ordering::Relaxed) {
                break SubscriberStop::Interrupted;
            }
            let end_at = self.cfg.duration.map(|d| start + d);
            if end_at.is_some_and(|e| now >= e) {
                break SubscriberStop::Duration;
            }
            let idle_at = last + self.cfg.idle_timeout;
            if now >= idle_at {
                break SubscriberStop::IdleTimeout;
            }
            let mut deadline = (now + WAIT_SLICE).min(idle_at);
            if let Some(e) = end_at {
                deadline = deadline.min(e);
            }
            let max = self
                .cfg
                .count
                .map_or(BURST, |c| (c.saturating_sub(done) as usize).clamp(1, BURST));
            let mut stop_here = false;
            let got = t.recv_lease(max, Some(deadline), |bytes, _, _| {
                // Records after the end of the stream (a new publisher)
                // are left for a next run.
                if !stop_here {
                    let r = self.handle(bytes, monotonic_ns());
                    stop_here = matches!(
                        r,
                        Ok(Record {
                            body: Body::End(_),
                            ..
                        })
                    );
                }
            });
            match got {
                Ok(0) => {}
                Ok(_) => {
                    last = Instant::now();
                    self.first_rx.get_or_insert(last);
                    self.last_rx = Some(last);
                }
                Err(e) => {
                    self.recv_errors += 1;
                    self.first_recv_error.get_or_insert(e);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        };
        self.stopped = Some(why);
        why
    }

    /// The top of the book of `locate`, once a record named it.
    #[must_use]
    pub fn top(&self, locate: u16) -> Option<&BookTop> {
        self.tops
            .get(usize::from(locate))
            .filter(|b| b.updates + b.trades > 0)
    }

    /// Every book a record named, by locate.
    pub fn books(&self) -> impl Iterator<Item = (u16, &BookTop)> {
        self.tops
            .iter()
            .enumerate()
            .filter(|(_, b)| b.updates + b.trades > 0)
            .map(|(l, b)| (l as u16, b))
    }

    /// Records missed by the sequence numbers (after the first received).
    #[must_use]
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// What the subscriber saw so far (allocates: after a run).
    #[must_use]
    pub fn report(&self) -> SubscriberReport {
        let symbol = |s: &[u8; 8]| String::from_utf8_lossy(s).trim_end().to_string();
        SubscriberReport {
            stopped: self.stopped.unwrap_or(SubscriberStop::Interrupted),
            seconds: match (self.first_rx, self.last_rx) {
                (Some(f), Some(l)) => l.saturating_duration_since(f).as_secs_f64(),
                _ => 0.0,
            },
            received: self.received,
            records: self.kinds,
            malformed: self.malformed,
            first_malformed: self.first_malformed.map(|e| e.to_string()),
            first_sequence: self.first_sequence,
            last_sequence: self.first_sequence.map(|_| self.next_sequence - 1),
            gaps: self.gaps,
            missed: self.missed,
            late: self.late,
            end: self.end,
            books: self.books().filter(|(_, b)| b.updates > 0).count() as u64,
            recv_errors: self.recv_errors,
            first_recv_error: self
                .first_recv_error
                .as_ref()
                .map(|e| crate::error_chain(e)),
            clock_inversions: self.clock_inversions,
            feed_receive_to_publish_ns: HopLatency::of(&self.feed_hop),
            publish_to_receive_ns: HopLatency::of(&self.transport_hop),
            end_to_end_ns: HopLatency::of(&self.end_to_end),
            tops: self
                .books()
                .filter(|(_, b)| b.updates > 0)
                .take(self.cfg.top)
                .map(|(locate, b)| TopLine {
                    symbol: symbol(&b.symbol),
                    locate,
                    bid: b.bid.map(|q| (q.price, q.shares)),
                    ask: b.ask.map(|q| (q.price, q.shares)),
                    updates: b.updates,
                    trades: b.trades,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hftnet_wire::md::{NO_SYMBOL, RECORD_LEN, Top, Trade};

    fn rec(sequence: u64, body: Body) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        Record {
            sequence,
            locate: 7,
            symbol: *b"AAPL    ",
            cause: b'A',
            itch_timestamp_ns: 1,
            rx_ns: 1_000,
            publish_ns: 1_500,
            body,
        }
        .encode(&mut b)
        .unwrap();
        b
    }

    fn top(price: u32) -> Body {
        Body::Top(Top {
            bid: Some(Quote { price, shares: 100 }),
            ..Top::default()
        })
    }

    #[test]
    fn gaps_late_records_and_the_end_are_counted() {
        let mut s = MdSubscriber::new(SubscriberConfig::default());
        s.handle(&rec(3, top(10)), 2_000).unwrap();
        s.handle(&rec(4, top(11)), 2_000).unwrap();
        s.handle(&rec(7, top(12)), 2_000).unwrap();
        // Late: not applied, the top stays at 12.
        s.handle(&rec(5, top(99)), 2_000).unwrap();
        let trade = Body::Trade(Trade {
            price: 12,
            shares: 30,
            match_number: 1,
            aggressor: None,
            printable: true,
        });
        s.handle(&rec(8, trade), 2_000).unwrap();
        assert!(s.handle(b"not a record", 2_000).is_err());
        let end = Body::End(End {
            top_records: 4,
            trade_records: 1,
        });
        let mut e = rec(9, end);
        // An end record has no locate, cause or symbol.
        Record {
            locate: 0,
            cause: 0,
            symbol: NO_SYMBOL,
            ..Record::decode(&e).unwrap()
        }
        .encode(&mut e)
        .unwrap();
        s.handle(&e, 2_000).unwrap();
        let r = s.report();
        assert_eq!((r.first_sequence, r.last_sequence), (Some(3), Some(9)));
        assert_eq!((r.gaps, r.missed, r.late), (1, 2, 1));
        assert_eq!((r.received, r.malformed), (7, 1));
        assert!(r.first_malformed.unwrap().contains("12 bytes"));
        assert_eq!(
            r.records,
            KindCounts {
                top_of_book: 3,
                trades: 1,
                end: 1
            }
        );
        assert_eq!(
            r.end,
            Some(EndSeen {
                sequence: 9,
                top_records: 4,
                trade_records: 1
            })
        );
        let b = s.top(7).unwrap();
        assert_eq!(
            b.bid,
            Some(Quote {
                price: 12,
                shares: 100
            })
        );
        assert_eq!((b.updates, b.trades, b.traded_shares), (3, 1, 30));
        assert_eq!(r.books, 1);
        assert_eq!(r.tops[0].symbol, "AAPL");
        let hop = |h: Option<HopLatency>| {
            let h = h.unwrap();
            (h.samples, h.p50)
        };
        assert_eq!(hop(r.feed_receive_to_publish_ns), (4, 500));
        assert_eq!(hop(r.publish_to_receive_ns), (4, 500));
        assert_eq!(hop(r.end_to_end_ns), (4, 1_000));
        assert_eq!(r.clock_inversions, 0);
        s.handle(&rec(10, top(1)), 1_000).unwrap();
        assert_eq!(s.report().clock_inversions, 1);
    }
}
