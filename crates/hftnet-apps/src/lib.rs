//! The running apps of hftnet: the loops that drive the sans-IO engine of
//! `hftnet-trade` over the transports of `hftnet-io`, as `quinn` drives
//! `quinn-proto`.
//!
//! - [`exchange`]: an ITCH 5.0 day (generated, or replayed from a file)
//!   published in MoldUDP64 on feeds A and B at a fixed rate, with
//!   heartbeats, per-feed fault injection, a re-request server and a linger
//!   after the end of the session; or the day written to a file.
//! - [`order_entry`]: the exchange's OUCH 5.0 order entry over SoupBinTCP
//!   on TCP, feeding clients' orders into its matching core.
//! - [`feed`]: the feed handler — A/B arbitration, gap recovery by
//!   re-request, the books, a callback on every top-of-book change, and
//!   market-data records published to other processes ([`publish`]).
//! - [`md_subscriber`]: a subscriber of those records (tops, gaps, the
//!   latency of each hop).
//! - [`replay`]: an ITCH 5.0 file through the books.
//! - [`trader`]: the feed handler and the trader engine (strategy, risk,
//!   position) on one thread, orders out as OUCH 5.0 over SoupBinTCP on
//!   kernel TCP, with reconnection, persisted UserRefNums, a kill switch
//!   and internal tick-to-trade.
//! - [`tick_to_trade`]: the exchange and a taker on two hosts, market data
//!   over each datagram transport, orders over TCP: internal and external
//!   tick-to-trade per row (`hftnet lab`'s second table).
//! - [`itch_file`]: reading and writing Nasdaq ITCH 5.0 files (plain or gzip).
//! - [`market`]: what a stream built (counts, digests, books, top of book),
//!   as report figures.
//!
//! Each app is a plain-data configuration validated up front (an error
//! naming the bad field), a run function generic over the [`Transport`]s it
//! is given in [`Transports`] — so each backend gets its own statically
//! dispatched loop; callers holding an [`AnyTransport`] use
//! [`hftnet_io::dispatch!`] — a stop flag, and a serialisable report with
//! every figure. A feed handler on any transport URI:
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use hftnet_apps::{Transports, feed};
//! use hftnet_io::{Endpoint, Role, dispatch};
//!
//! let mut t = Endpoint::parse("udp://127.0.0.1:30001")?.open(Role::Server)?;
//! // One feed, no re-request server: gaps are reported lost.
//! let cfg = feed::FeedHandlerConfig { recovery: false, ..Default::default() };
//! let stop = AtomicBool::new(false);
//! let report = dispatch!(&mut t, t => {
//!     feed::run_feed_handler(&cfg, Transports::new().feed_a(t), &stop, &mut |_top| {})
//! })?;
//! println!("{} messages delivered, {} lost", report.delivered, report.lost);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layer: above `hftnet-trade`, `hftnet-io` and `hftnet-bench` (the
//! timetable, the latency histogram); below the `hftnet` command, which only
//! parses arguments, opens transports, calls these functions and prints.
//!
//! Invariants: after its buffers are allocated at the start, no loop here
//! allocates, locks, logs or formats per message (`tests/alloc.rs` counts
//! the allocations of a short and a long run); every loop that sends traffic
//! is bounded in count or time and ends early when the stop flag is set.
//!
//! [`Transport`]: hftnet_io::Transport
//! [`AnyTransport`]: hftnet_io::AnyTransport

#![forbid(unsafe_code)]

pub mod exchange;
pub mod feed;
pub mod itch_file;
pub mod market;
pub mod md_subscriber;
pub mod order_entry;
pub mod publish;
pub mod replay;
pub mod tick_to_trade;
pub mod trader;
mod transports;

pub use transports::{Absent, Transports};

/// `error: cause: cause ...`: an error and its sources on one line, the way
/// reports carry them.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
