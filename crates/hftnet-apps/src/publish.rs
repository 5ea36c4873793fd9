//! Market-data records out of the feed handler: one
//! [`hftnet_wire::md`] record per top-of-book change and per trade,
//! written straight into the transmit slot of any transport (a slot of a
//! `shm://` ring, a UDP datagram), and an end-of-stream record when a run
//! ends.
//!
//! Layer: apps, between the books of `hftnet-trade` (which say what
//! changed), the record codec of `hftnet-wire` and the [`Lease`] transmit
//! side of `hftnet-io`. The feed handler ([`crate::feed`]) calls it from its
//! receive loop when [`crate::Transports::publish`] is given.
//!
//! Timing: each record carries two `CLOCK_MONOTONIC` stamps, comparable
//! across the processes of the machine. The receive stamp is the kernel's
//! software receive stamp of the packet when the transport gives one
//! (`RxMeta::rx_ts_ns`, `CLOCK_REALTIME`, placed on `CLOCK_MONOTONIC` with
//! the offset read when the run started), else the clock read when the
//! feed handler was handed the packet ([`RxStamp`] says which). Messages
//! delivered later from the reorder buffer carry the stamp of the packet
//! whose arrival delivered them (a repaired gap), or of the timeout that
//! did. The publish stamp is read in the transmit slot, just before the
//! record is written into it. Their difference is what this hop adds,
//! recorded per record in an HDR histogram ([`PublishReport`]).
//!
//! Invariants: nothing here allocates per record (the histogram is
//! allocated with the [`Publishing`] state); a failed publish is counted
//! and its sequence number stays used, so subscribers see the hole; the
//! sequence numbers start at 1 and never repeat.

use hftnet_bench::clock::{monotonic_ns, realtime_offset_ns};
use hftnet_bench::stats::LatencyStats;
use hftnet_io::transport::TxLease;
use hftnet_io::{Lease, SyscallError};
use hftnet_trade::book::{Level, Side};
use hftnet_trade::market::{TopUpdate, TradeUpdate};
use hftnet_wire::md::{self, Body, End, NO_SYMBOL, Quote, RECORD_LEN, Record};
use serde::Serialize;

/// Why a record was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishFailure {
    /// The transport refused the message.
    #[error("sending a market-data record")]
    Send(#[source] SyscallError),
    /// The transport's messages are shorter than a record.
    #[error(
        "the transport carries messages of at most {max_message} bytes, a market-data record \
         is {RECORD_LEN}: give it larger messages (e.g. size= on shm://)"
    )]
    TooSmall {
        /// The transport's largest message.
        max_message: usize,
    },
}

/// Where records go: any [`Lease`] transport (implemented for all of
/// them). The feed handler holds it as `&mut dyn RecordOut`: one indirect
/// call per record, while the backend's transmit path inside stays
/// statically dispatched — dispatching the publisher as the feeds are
/// would compile the receive loop once per triple of backends.
pub trait RecordOut {
    /// Writes `rec` straight into a transmit slot, stamping
    /// `rec.publish_ns` with `CLOCK_MONOTONIC` just before.
    ///
    /// # Errors
    /// [`PublishFailure`]: the transport refused it, or its messages are
    /// too short for a record.
    fn send_record(&mut self, rec: &mut Record) -> Result<(), PublishFailure>;
}

impl<T: Lease> RecordOut for T {
    #[inline]
    fn send_record(&mut self, rec: &mut Record) -> Result<(), PublishFailure> {
        self.send_lease(|tx| {
            let max_message = tx.max_message();
            if max_message < RECORD_LEN {
                return Err(PublishFailure::TooSmall { max_message });
            }
            tx.send_with(None, |slot| {
                rec.publish_ns = monotonic_ns();
                // The slot holds `max_message` bytes, checked above.
                rec.encode(slot).unwrap_or(0)
            })
            .map_err(PublishFailure::Send)
        })
        .map_err(PublishFailure::Send)?
    }
}

/// Where the receive stamps of the records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RxStamp {
    /// No packet was stamped.
    None,
    /// The kernel's software receive stamps (the transport has them on).
    Kernel,
    /// `CLOCK_MONOTONIC` read when the packet was handed to the feed handler.
    Handler,
    /// Some packets one way, some the other.
    Mixed,
}

impl RxStamp {
    /// Words for reports.
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Kernel => {
                "kernel software receive stamp (CLOCK_REALTIME placed on CLOCK_MONOTONIC)"
            }
            Self::Handler => "CLOCK_MONOTONIC read when the packet was handed to the feed handler",
            Self::Mixed => "kernel stamps for some packets, the handler's clock for the others",
        }
    }
}

/// Percentiles of one hop's latency, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HopLatency {
    /// Samples.
    pub samples: u64,
    /// Smallest.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
}

impl HopLatency {
    /// The percentiles of `s`; `None` when it is empty.
    #[must_use]
    pub fn of(s: &LatencyStats) -> Option<Self> {
        s.summary().map(|m| Self {
            samples: s.len(),
            min: m.min,
            p50: m.p50,
            p90: m.p90,
            p99: m.p99,
            p99_9: m.p99_9,
            max: m.max,
        })
    }
}

/// What the publishing side of a feed handler did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishReport {
    /// Sequence numbers used: records published plus records that failed.
    pub records: u64,
    /// Top-of-book records published.
    pub top_of_book: u64,
    /// Trade records published.
    pub trades: u64,
    /// End-of-stream records published.
    pub end: u64,
    /// Records the transport refused (their sequence numbers stay holes).
    pub errors: u64,
    /// The first refusal, in words.
    pub first_error: Option<String>,
    /// Where the receive stamps came from.
    pub rx_stamp: RxStamp,
    /// From the packet's receive to the record's publish, per top-of-book
    /// and trade record published, ns (`None` before any).
    pub receive_to_publish_ns: Option<HopLatency>,
}

/// The publishing state of a feed handler: sequence numbers, counters,
/// the latency histogram. Allocated once, up front.
#[derive(Debug)]
pub struct Publishing {
    next_sequence: u64,
    top_of_book: u64,
    trades: u64,
    end: u64,
    errors: u64,
    first_error: Option<PublishFailure>,
    hop: LatencyStats,
    kernel_stamps: u64,
    handler_stamps: u64,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, read when a run starts.
    offset_ns: i64,
    /// The receive stamp of the packet being handled.
    rx_ns: u64,
}

impl Default for Publishing {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for dyn RecordOut + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn RecordOut")
    }
}

impl Publishing {
    /// Nothing published yet; the next sequence number is 1.
    #[must_use]
    pub fn new() -> Self {
        Self {
            next_sequence: 1,
            top_of_book: 0,
            trades: 0,
            end: 0,
            errors: 0,
            first_error: None,
            hop: LatencyStats::new(),
            kernel_stamps: 0,
            handler_stamps: 0,
            offset_ns: 0,
            rx_ns: 0,
        }
    }

    /// Reads the offset that places kernel stamps on `CLOCK_MONOTONIC`
    /// (at the start of a run: not per packet).
    pub(crate) fn start_run(&mut self) {
        self.offset_ns = realtime_offset_ns();
    }

    /// Stamps the packet about to be handled: its kernel stamp when it has
    /// one, else the clock now.
    #[inline]
    pub(crate) fn stamp_packet(&mut self, kernel_realtime_ns: Option<u64>) {
        self.rx_ns = match kernel_realtime_ns {
            Some(rt) => {
                self.kernel_stamps += 1;
                (i128::from(rt) - i128::from(self.offset_ns)).clamp(0, i128::from(u64::MAX)) as u64
            }
            None => {
                self.handler_stamps += 1;
                monotonic_ns()
            }
        };
    }

    /// Stamps what a timeout (not a packet) delivers.
    #[inline]
    pub(crate) fn stamp_now(&mut self) {
        self.rx_ns = monotonic_ns();
    }

    /// Publishes one record with the next sequence number.
    #[inline]
    fn publish(&mut self, out: &mut dyn RecordOut, rec: &mut Record) {
        rec.sequence = self.next_sequence;
        self.next_sequence += 1;
        match out.send_record(rec) {
            Ok(()) => match rec.body {
                Body::Top(_) => {
                    self.top_of_book += 1;
                    self.hop.record(rec.publish_ns.saturating_sub(rec.rx_ns));
                }
                Body::Trade(_) => {
                    self.trades += 1;
                    self.hop.record(rec.publish_ns.saturating_sub(rec.rx_ns));
                }
                Body::End(_) => self.end += 1,
            },
            Err(e) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(e);
                }
            }
        }
    }

    /// Publishes a top-of-book record for `u`, caused by an ITCH message
    /// of type `cause`.
    #[inline]
    pub(crate) fn top(&mut self, out: &mut dyn RecordOut, u: &TopUpdate, cause: u8) {
        let mut clamped = false;
        let mut quote = |l: Option<Level>| {
            l.map(|l| Quote {
                price: l.price,
                shares: u32::try_from(l.shares).unwrap_or_else(|_| {
                    clamped = true;
                    u32::MAX
                }),
            })
        };
        let (bid, ask) = (quote(u.top.bid), quote(u.top.ask));
        let mut rec = Record {
            sequence: 0,
            locate: u.locate,
            symbol: u.symbol.unwrap_or(NO_SYMBOL),
            cause,
            itch_timestamp_ns: u.timestamp_ns,
            rx_ns: self.rx_ns,
            publish_ns: 0,
            body: Body::Top(md::Top {
                bid,
                ask,
                bid_changed: u.change.bid(),
                ask_changed: u.change.ask(),
                state_changed: u.change.state(),
                clamped,
                state: u.state.map(|s| s.to_itch()),
            }),
        };
        self.publish(out, &mut rec);
    }

    /// Publishes a trade record for `t`, caused by an ITCH message of type
    /// `cause`.
    #[inline]
    pub(crate) fn trade(&mut self, out: &mut dyn RecordOut, t: &TradeUpdate, cause: u8) {
        let mut rec = Record {
            sequence: 0,
            locate: t.locate,
            symbol: t.symbol.unwrap_or(NO_SYMBOL),
            cause,
            itch_timestamp_ns: t.timestamp_ns,
            rx_ns: self.rx_ns,
            publish_ns: 0,
            body: Body::Trade(md::Trade {
                price: t.price,
                shares: t.shares,
                match_number: t.match_number,
                aggressor: t.aggressor.map(|s| match s {
                    Side::Buy => md::Side::Buy,
                    Side::Sell => md::Side::Sell,
                }),
                printable: t.printable,
            }),
        };
        self.publish(out, &mut rec);
    }

    /// Publishes the end-of-stream record: the totals so far, and the last
    /// ITCH timestamp seen.
    pub(crate) fn end(&mut self, out: &mut dyn RecordOut, itch_timestamp_ns: u64) {
        let now = monotonic_ns();
        let mut rec = Record {
            sequence: 0,
            locate: 0,
            symbol: NO_SYMBOL,
            cause: 0,
            itch_timestamp_ns,
            rx_ns: now,
            publish_ns: 0,
            body: Body::End(End {
                top_records: self.top_of_book,
                trade_records: self.trades,
            }),
        };
        self.publish(out, &mut rec);
    }

    /// What was published so far (allocates: not for the hot path).
    #[must_use]
    pub fn report(&self) -> PublishReport {
        PublishReport {
            records: self.next_sequence - 1,
            top_of_book: self.top_of_book,
            trades: self.trades,
            end: self.end,
            errors: self.errors,
            first_error: self.first_error.as_ref().map(|e| crate::error_chain(e)),
            rx_stamp: match (self.kernel_stamps > 0, self.handler_stamps > 0) {
                (false, false) => RxStamp::None,
                (true, false) => RxStamp::Kernel,
                (false, true) => RxStamp::Handler,
                (true, true) => RxStamp::Mixed,
            },
            receive_to_publish_ns: HopLatency::of(&self.hop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hftnet_io::{Endpoint, Role, Transport, dispatch};
    use hftnet_trade::book::{TopChange, TopOfBook, TradingState};

    #[test]
    fn records_go_out_numbered_and_stamped_and_failures_leave_holes() {
        let name = format!("publish-unit-{}", std::process::id());
        let mut tx = Endpoint::parse(&format!("mem://{name}?slots=64"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        let mut rx = Endpoint::parse(&format!("mem://{name}?slots=64"))
            .unwrap()
            .open(Role::Server)
            .unwrap();
        let mut p = Publishing::new();
        p.start_run();
        let update = TopUpdate {
            locate: 3,
            change: TopChange::BID,
            top: TopOfBook {
                bid: Some(Level {
                    price: 1_000_000,
                    shares: u64::from(u32::MAX) + 5,
                    orders: 2,
                }),
                ask: None,
            },
            state: Some(TradingState::Trading),
            symbol: Some(*b"NVDA    "),
            timestamp_ns: 42,
        };
        p.stamp_packet(None);
        let rx_ns = p.rx_ns;
        dispatch!(&mut tx, t => {
            let out: &mut dyn RecordOut = t;
            p.top(out, &update, b'A');
            p.end(out, 43);
        });
        // A transport with messages shorter than a record: refused, counted,
        // the sequence number used.
        let mut small = Endpoint::parse(&format!("shm://{name}-small?as=pub&size=32&slots=2"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        dispatch!(&mut small, t => p.top(t, &update, b'A'));
        let r = p.report();
        assert_eq!((r.records, r.top_of_book, r.end, r.errors), (3, 1, 1, 1));
        assert!(
            r.first_error
                .as_deref()
                .unwrap()
                .contains("at most 32 bytes"),
            "{r:?}"
        );
        assert_eq!(r.rx_stamp, RxStamp::Handler);
        assert_eq!(r.receive_to_publish_ns.unwrap().samples, 1);

        let mut burst = hftnet_io::RxBurst::new(4, 256);
        rx.set_recv_timeout(Some(std::time::Duration::from_secs(1)))
            .unwrap();
        assert_eq!(rx.recv_burst(&mut burst).unwrap(), 2);
        let top = Record::decode(burst.get(0).0).unwrap();
        assert_eq!((top.sequence, top.locate, top.cause), (1, 3, b'A'));
        assert_eq!((top.symbol_str(), top.rx_ns), ("NVDA", rx_ns));
        assert!(top.publish_ns >= rx_ns);
        let Body::Top(t) = top.body else {
            panic!("{top:?}")
        };
        assert_eq!(
            (t.bid, t.ask, t.clamped, t.bid_changed, t.state),
            (
                Some(Quote {
                    price: 1_000_000,
                    shares: u32::MAX
                }),
                None,
                true,
                true,
                Some(b'T')
            )
        );
        let end = Record::decode(burst.get(1).0).unwrap();
        assert_eq!(end.sequence, 2);
        assert_eq!(
            end.body,
            Body::End(End {
                top_records: 1,
                trade_records: 0
            })
        );
    }

    #[test]
    fn kernel_stamps_are_placed_on_the_monotonic_clock() {
        let mut p = Publishing::new();
        p.start_run();
        let before = monotonic_ns();
        p.stamp_packet(Some(hftnet_bench::clock::realtime_ns()));
        let after = monotonic_ns();
        assert!(
            p.rx_ns + 1_000_000 >= before && p.rx_ns <= after + 1_000_000,
            "{before} {} {after}",
            p.rx_ns
        );
        p.stamp_packet(None);
        assert_eq!(p.report().rx_stamp, RxStamp::Mixed);
    }
}
