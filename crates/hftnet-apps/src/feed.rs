//! The feed handler: receives MoldUDP64 on feeds A and B over any
//! transports, arbitrates them (the first copy of each message wins),
//! recovers gaps by re-request, builds the books, calls the strategy back on
//! every top-of-book change, publishes a market-data record per top-of-book
//! change and per trade to other processes when asked ([`crate::publish`]),
//! and reports every counter.
//!
//! Layer: apps. The protocol is the sans-IO `hftnet_trade::feed::FeedHandler`
//! and the books `hftnet_trade::market::MarketData`; this module moves
//! datagrams from the transports into them, requests out, and keeps time.
//!
//! The loop polls feed A, feed B and the re-request channel in turn without
//! blocking, hands each datagram to the handler with the time, fires the
//! handler's timeout when due, and sends the re-requests it asks for. It ends
//! at the end of the session (everything before it delivered or declared
//! lost), when the stop flag is set, after the duration, or when nothing
//! arrived for the idle timeout. After 10 000 empty rounds in a row it yields
//! its CPU between rounds.
//!
//! Publishing (when [`Transports::publish`] is given): each packet is
//! stamped on receive (see [`crate::publish`]), each top-of-book change and
//! each trade of a kept book goes out as a record before the strategy
//! callback runs, and each run ends its records with an end-of-stream
//! record (a later run continues the sequence numbers). A record the
//! transport refuses is counted, never fatal.
//!
//! Listeners: [`FeedHandlerApp::run`] calls a closure with each top change;
//! [`FeedHandlerApp::run_with`] calls a [`FeedListener`] with each top
//! change and each trade, together with the [`Trigger`] of the message that
//! caused it — its MoldUDP64 sequence number and the receive stamp of the
//! packet that delivered it (the kernel's software stamp when the transport
//! gives one, placed on `CLOCK_MONOTONIC`; else `CLOCK_MONOTONIC` read when
//! the packet was handed to the handler; a message released by a timeout
//! carries the time of the timeout) — and once per loop round, so that a
//! trader can serve its order session on the same thread.
//!
//! Invariants: after the buffers are allocated at the start, nothing is
//! allocated, formatted or logged per datagram (the first 64 lost ranges are
//! kept in a vector reserved up front, the time per packet and the publish
//! latency go to pre-allocated histograms); the top-of-book callback runs
//! synchronously, before the next message is handled; the loop only sends
//! the re-requests the handler asks for, which are bounded in number per gap.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hftnet_bench::clock::{monotonic_ns, realtime_offset_ns};
use hftnet_bench::stats::LatencyStats;
use hftnet_io::{Lease, RxBurst, Transport};
use hftnet_trade::book::{self, BookConfig};
use hftnet_trade::feed::{
    self as engine, Deliver, FeedConfig, FeedHandler, FeedId, SourceCounters, Start,
};
use hftnet_trade::market::{MarketData, MarketEvents, TopUpdate, TradeUpdate};
pub use hftnet_trade::orders::Trigger;
use hftnet_wire::moldudp64::{HEADER_LEN, Request, Session};
use serde::Serialize;

use crate::Transports;
use crate::market::{MarketSummary, TopOfBook, top_of_book};
use crate::publish::{PublishReport, Publishing, RecordOut};

/// Lost ranges listed in the report; the others are only counted.
pub const LOST_RANGES_LISTED: usize = 64;
/// Datagrams taken per receive call, and the slot size (any UDP payload).
const RX_BURST: usize = 32;
const RX_SLOT: usize = 65_536;
/// Empty rounds in a row after which the loop yields its CPU between rounds.
const SPIN_ROUNDS: u32 = 10_000;

/// How the feed handler starts, recovers, keeps books and stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedHandlerConfig {
    /// Accept only this MoldUDP64 session (`None`: the first one seen).
    pub session: Option<String>,
    /// Start at the first packet seen instead of sequence 1 (nothing before
    /// it is recovered).
    pub join: bool,
    /// Re-request what neither feed delivered (a re-request transport must
    /// then be given). Off, such gaps are reported lost once their wait is over.
    pub recovery: bool,
    /// How long a gap waits for the other feed before it is re-requested
    /// (or declared lost).
    pub gap_wait: Duration,
    /// How long to wait for the answer to a re-request before asking again.
    pub request_timeout: Duration,
    /// The books kept (see [`crate::market::book_config`] for a list of symbols).
    pub book: BookConfig,
    /// Stop after this long (`None`: at the end of the session).
    pub duration: Option<Duration>,
    /// Stop when nothing arrived for this long.
    pub idle_timeout: Duration,
    /// Books whose top is reported, by stock locate.
    pub top: usize,
    /// After 10 000 empty polls in a row, yield the CPU to the other
    /// runnable threads of this CPU (`sched_yield`) at each empty poll. Off,
    /// the loop spins without yielding: a yield on a CPU shared with busy
    /// processes hands it over for their whole time slice (milliseconds),
    /// while packets queue (the lab's tick-to-trade rows turn it off).
    pub yield_when_idle: bool,
    /// How far ahead of the next expected message a message is buffered,
    /// in sequence numbers (a power of two, at most
    /// [`hftnet_trade::feed::MAX_WINDOW`]; default 65 536): a handler
    /// started more than this many messages into a session declares the
    /// front of it lost — the stock directory among it — instead of
    /// re-requesting it. Raise it (with `buffer_bytes`) to join late.
    pub window: usize,
    /// Bytes for the messages buffered ahead (each costs its length plus
    /// 12; default 4 MiB): what arrives live while a gap is recovered.
    pub buffer_bytes: usize,
}

impl Default for FeedHandlerConfig {
    /// The defaults of `hftnet feed`: session learned, start at sequence 1,
    /// recovery on, 1 ms gap wait, 50 ms request timeout, all books, 10 s
    /// idle timeout, 20 books reported.
    fn default() -> Self {
        Self {
            session: None,
            join: false,
            recovery: true,
            gap_wait: Duration::from_millis(1),
            request_timeout: Duration::from_millis(50),
            book: BookConfig::all_symbols(),
            duration: None,
            idle_timeout: Duration::from_secs(10),
            top: 20,
            yield_when_idle: true,
            window: FeedConfig::default().window,
            buffer_bytes: FeedConfig::default().buffer_bytes,
        }
    }
}

/// A field of a [`FeedHandlerConfig`] out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedHandlerConfigError {
    /// `session` is not a MoldUDP64 session name.
    #[error("session {0:?}: at most 10 printable ASCII characters")]
    Session(String),
    /// A field of the handler (`gap_wait`, `request_timeout`).
    #[error(transparent)]
    Handler(#[from] engine::ConfigError),
    /// A field of `book`.
    #[error(transparent)]
    Book(#[from] book::ConfigError),
}

impl FeedHandlerConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first [`FeedHandlerConfigError`] found, naming the field.
    pub fn validate(&self) -> Result<(), FeedHandlerConfigError> {
        self.handler_config(self.recovery)?.validate()?;
        self.book.validate()?;
        Ok(())
    }

    fn handler_config(&self, recovery: bool) -> Result<FeedConfig, FeedHandlerConfigError> {
        let session = self
            .session
            .as_deref()
            .map(|s| Session::new(s).map_err(|_| FeedHandlerConfigError::Session(s.to_string())))
            .transpose()?;
        Ok(FeedConfig {
            session,
            start: if self.join {
                Start::FirstSeen
            } else {
                Start::Sequence(1)
            },
            gap_wait_ns: u64::try_from(self.gap_wait.as_nanos()).unwrap_or(u64::MAX),
            recovery,
            request_timeout_ns: u64::try_from(self.request_timeout.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            window: self.window,
            buffer_bytes: self.buffer_bytes,
            ..FeedConfig::default()
        })
    }
}

/// Why the feed handler could not run.
#[derive(Debug, thiserror::Error)]
pub enum FeedHandlerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] FeedHandlerConfigError),
    /// Neither feed A nor feed B was given.
    #[error("no feed to listen to: give feed A, feed B or both")]
    NoFeed,
    /// Recovery is on but no re-request transport was given.
    #[error("recovery is on but no re-request transport was given: give one, or turn recovery off")]
    NoRetransmit,
}

/// What ended a feed-handler run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FeedStop {
    /// The session ended and everything before it was delivered or
    /// declared lost.
    #[serde(rename = "end of session")]
    EndOfSession,
    /// The stop flag was set.
    #[serde(rename = "interrupted")]
    Interrupted,
    /// The duration passed.
    #[serde(rename = "duration reached")]
    Duration,
    /// Nothing arrived for the idle timeout.
    #[serde(rename = "idle timeout")]
    IdleTimeout,
}

impl FeedStop {
    /// The words used in reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EndOfSession => "end of session",
            Self::Interrupted => "interrupted",
            Self::Duration => "duration reached",
            Self::IdleTimeout => "idle timeout",
        }
    }
}

/// Counters of one source (feed A, feed B or the re-request replies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SourceFigures {
    /// Datagrams received, whatever they held.
    pub packets: u64,
    /// Messages in well-formed packets of the session, duplicates included.
    pub messages: u64,
    /// Heartbeats of the session.
    pub heartbeats: u64,
    /// Forward jumps in this source's own sequence (not counted for replies).
    pub gaps: u64,
    /// Messages from this source that filled a gap.
    pub recovered: u64,
    /// Messages already delivered or buffered.
    pub duplicates: u64,
    /// Messages already declared lost.
    pub late: u64,
    /// Datagrams the codec refused.
    pub malformed: u64,
    /// Datagrams of another session.
    pub foreign_session: u64,
    /// End-of-session packets not ours (before the session was learned from
    /// a live packet, or ending it before a message already received).
    pub foreign_end: u64,
    /// Messages before the first expected sequence.
    pub before_start: u64,
    /// Messages at or after the end of the session.
    pub after_end: u64,
}

impl From<&SourceCounters> for SourceFigures {
    fn from(s: &SourceCounters) -> Self {
        Self {
            packets: s.packets,
            messages: s.messages,
            heartbeats: s.heartbeats,
            gaps: s.gaps,
            recovered: s.recovered,
            duplicates: s.duplicates,
            late: s.late,
            malformed: s.malformed,
            foreign_session: s.foreign_session,
            foreign_end: s.foreign_end,
            before_start: s.before_start,
            after_end: s.after_end,
        }
    }
}

/// A range of messages lost for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LostRange {
    /// The first sequence number lost.
    pub first: u64,
    /// How many from there.
    pub count: u64,
}

/// Time the handler and the books took per datagram, ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PacketTimes {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
}

/// What a feed-handler run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedHandlerReport {
    /// What ended the run.
    pub stopped: FeedStop,
    /// Whether gaps were re-requested.
    pub recovery: bool,
    /// The session accepted (given, or learned from the first packet).
    pub session: Option<String>,
    /// From the first datagram received to the last, seconds.
    pub seconds: f64,
    /// Messages delivered to the books, in order.
    pub delivered: u64,
    /// The sustained rate: `delivered / seconds`, rounded (0 when less
    /// than two datagrams arrived).
    pub messages_per_sec: u64,
    /// Messages declared lost for good.
    pub lost: u64,
    /// The first [`LOST_RANGES_LISTED`] lost ranges.
    pub lost_ranges: Vec<LostRange>,
    /// Lost ranges beyond those listed.
    pub lost_ranges_not_listed: u64,
    /// Gaps opened in the arbitrated stream.
    pub gaps: u64,
    /// Times a bound of the reorder buffer forced a loss early.
    pub overflows: u64,
    /// Re-requests sent.
    pub requests: u64,
    /// Messages asked for by them.
    pub requested_messages: u64,
    /// The most messages ever held in the reorder buffer.
    pub buffered_high_water: u64,
    /// The next sequence number to deliver or declare lost.
    pub next_expected: u64,
    /// The highest sequence number seen or announced.
    pub highest_seen: u64,
    /// Messages seen or announced but neither delivered nor declared lost
    /// (the run stopped before they were resolved).
    pub unresolved: u64,
    /// Messages held in the reorder buffer at the end.
    pub buffered: u64,
    /// One past the last message of the session, once it ended.
    pub end_of_session: Option<u64>,
    /// Top-of-book changes handed to the callback.
    pub top_updates: u64,
    /// Receive calls that failed.
    pub recv_errors: u64,
    /// Re-requests the transport refused.
    pub send_errors: u64,
    /// Feed A.
    pub a: SourceFigures,
    /// Feed B.
    pub b: SourceFigures,
    /// Re-request replies.
    pub retransmission: SourceFigures,
    /// Time per datagram (`None` when none arrived).
    pub handle_packet_ns: Option<PacketTimes>,
    /// What the delivered stream built.
    pub market: MarketSummary,
    /// The top of the first books.
    pub top_of_book: Vec<TopOfBook>,
    /// The market-data records published (`None` when no run published).
    pub publish: Option<PublishReport>,
}

/// What a feed-handler run tells its user, synchronously, on the loop's
/// thread (see the module doc). Every method runs before the next message
/// is handled; none may block for long.
pub trait FeedListener {
    /// Whether the listener reads [`Trigger::rx_ns`]: when `false`, no
    /// clock is read per packet for it and `rx_ns` is 0.
    const STAMPS: bool = true;
    /// Whether [`FeedListener::trade`] is wanted (it costs one order
    /// lookup per execution message).
    const TRADES: bool = true;
    /// Whether [`FeedListener::poll`] is wanted (it costs a clock read per
    /// round of the loop).
    const POLLS: bool = true;

    /// A change of the best bid, best offer or trading state of one book,
    /// caused by message `at.seq` of the packet received at `at.rx_ns`.
    fn top(&mut self, update: &TopUpdate, at: Trigger);

    /// A trade in a kept book.
    fn trade(&mut self, _trade: &TradeUpdate, _at: Trigger) {}

    /// Once per round of the loop (after the feeds were polled), with
    /// `CLOCK_MONOTONIC` now; `true` ends the run
    /// ([`FeedStop::Interrupted`]).
    fn poll(&mut self, _now_ns: u64) -> bool {
        false
    }
}

/// A closure called with each top change: the listener
/// [`FeedHandlerApp::run`] uses (no stamps, no trades).
#[derive(Debug)]
pub struct OnTop<'f, F>(pub &'f mut F);

impl<F: FnMut(&TopUpdate)> FeedListener for OnTop<'_, F> {
    const STAMPS: bool = false;
    const TRADES: bool = false;
    const POLLS: bool = false;

    #[inline]
    fn top(&mut self, update: &TopUpdate, _at: Trigger) {
        (self.0)(update);
    }
}

/// The consumer of the handler during a run: the books, the strategy
/// callback, the publisher, the loss reports.
struct Consumer<'r, F> {
    market: &'r mut MarketData,
    on_top: &'r mut F,
    /// The receive stamp of the packet (or timeout) being handled.
    rx_ns: u64,
    top_updates: &'r mut u64,
    publish: Option<(&'r mut dyn RecordOut, &'r mut Publishing)>,
    lost: &'r mut Vec<LostRange>,
    ended: &'r mut Option<u64>,
}

/// What one delivered message tells the publisher (if any) and the
/// listener.
struct Events<'e, F> {
    on_top: &'e mut F,
    top_updates: &'e mut u64,
    publish: Option<(&'e mut dyn RecordOut, &'e mut Publishing)>,
    /// The ITCH message type.
    cause: u8,
    at: Trigger,
}

impl<F: FeedListener> MarketEvents for Events<'_, F> {
    #[inline]
    fn top(&mut self, u: &TopUpdate) {
        *self.top_updates += 1;
        if let Some((out, p)) = self.publish.as_mut() {
            p.top(&mut **out, u, self.cause);
        }
        self.on_top.top(u, self.at);
    }

    #[inline]
    fn trade(&mut self, t: &TradeUpdate) {
        if let Some((out, p)) = self.publish.as_mut() {
            p.trade(&mut **out, t, self.cause);
        }
        if F::TRADES {
            self.on_top.trade(t, self.at);
        }
    }
}

impl<F: FeedListener> Deliver for Consumer<'_, F> {
    fn message(&mut self, sequence: u64, message: &[u8]) {
        let at = Trigger {
            seq: sequence,
            rx_ns: self.rx_ns,
        };
        let (n, on_top) = (&mut *self.top_updates, &mut *self.on_top);
        match self.publish.as_mut() {
            Some((out, publishing)) => {
                self.market.handle_events(
                    message,
                    &mut Events {
                        on_top,
                        top_updates: n,
                        publish: Some((&mut **out, &mut **publishing)),
                        cause: message.first().copied().unwrap_or(0),
                        at,
                    },
                );
            }
            None if F::TRADES => {
                self.market.handle_events(
                    message,
                    &mut Events {
                        on_top,
                        top_updates: n,
                        publish: None,
                        cause: 0,
                        at,
                    },
                );
            }
            None => {
                self.market.handle_with(message, &mut |u| {
                    *n += 1;
                    on_top.top(u, at);
                });
            }
        }
    }

    fn lost(&mut self, first: u64, count: u64) {
        // The first ranges are listed (in room reserved up front); the rest
        // only counted.
        if self.lost.len() < LOST_RANGES_LISTED {
            self.lost.push(LostRange { first, count });
        }
    }

    fn end_of_session(&mut self, sequence: u64) {
        *self.ended = Some(sequence);
    }
}

/// A feed handler: the arbitration and recovery engine, the books, the
/// receive buffers and the counters, allocated by [`FeedHandlerApp::new`],
/// driven by [`FeedHandlerApp::run`], read by [`FeedHandlerApp::report`] and
/// [`FeedHandlerApp::market`]. [`run_feed_handler`] does all three.
#[derive(Debug)]
pub struct FeedHandlerApp {
    handler: FeedHandler,
    market: MarketData,
    recovery: bool,
    yield_when_idle: bool,
    duration: Option<Duration>,
    idle_timeout: Duration,
    top: usize,
    top_updates: u64,
    lost: Vec<LostRange>,
    ended: Option<u64>,
    burst: RxBurst,
    per_packet: LatencyStats,
    publishing: Publishing,
    published: bool,
    start: Option<Instant>,
    first_rx: Option<Instant>,
    last_rx: Option<Instant>,
    recv_errors: u64,
    send_errors: u64,
    stopped: Option<FeedStop>,
    /// `CLOCK_REALTIME − CLOCK_MONOTONIC`, read once when first needed.
    realtime_offset: Option<i64>,
}

impl FeedHandlerApp {
    /// Validates `cfg` and allocates the engine, the books and every buffer
    /// the run needs.
    ///
    /// # Errors
    /// [`FeedHandlerError::Config`].
    pub fn new(cfg: &FeedHandlerConfig) -> Result<Self, FeedHandlerError> {
        let handler = FeedHandler::new(cfg.handler_config(cfg.recovery)?)
            .map_err(FeedHandlerConfigError::from)?;
        let market = MarketData::new(cfg.book.clone()).map_err(FeedHandlerConfigError::from)?;
        Ok(Self {
            handler,
            market,
            recovery: cfg.recovery,
            yield_when_idle: cfg.yield_when_idle,
            duration: cfg.duration,
            idle_timeout: cfg.idle_timeout,
            top: cfg.top,
            top_updates: 0,
            lost: Vec::with_capacity(LOST_RANGES_LISTED),
            ended: None,
            burst: RxBurst::new(RX_BURST, RX_SLOT),
            per_packet: LatencyStats::new(),
            publishing: Publishing::new(),
            published: false,
            start: None,
            first_rx: None,
            last_rx: None,
            recv_errors: 0,
            send_errors: 0,
            stopped: None,
            realtime_offset: None,
        })
    }

    /// `CLOCK_REALTIME − CLOCK_MONOTONIC` as this handler places kernel
    /// receive stamps (realtime) on the monotonic clock of
    /// [`Trigger::rx_ns`]: read once, then the same for every run, so a
    /// listener that places other kernel stamps (an order's transmit
    /// stamp) with it compares them exactly, with no error of its own.
    pub fn realtime_offset_ns(&mut self) -> i64 {
        *self.realtime_offset.get_or_insert_with(realtime_offset_ns)
    }

    /// Receives over `io` until the end of the session, the duration, the
    /// idle timeout or `stop`, calling `on_top` with every change of a best
    /// bid, best offer or trading state (the strategy hook; it runs before
    /// the next message is handled). Feed A, feed B or both must be given,
    /// and a re-request transport when recovery is on. With a publish
    /// transport, every top-of-book change and trade also goes out as a
    /// market-data record, and the run ends them with an end-of-stream
    /// record (see the module doc). Time (the duration, the idle timeout)
    /// starts at the first call.
    ///
    /// # Errors
    /// [`FeedHandlerError::NoFeed`] or [`FeedHandlerError::NoRetransmit`].
    /// Failed receives and sends are counted in the report, not errors.
    pub fn run<A, B, R, F>(
        &mut self,
        io: Transports<'_, A, B, R>,
        stop: &AtomicBool,
        on_top: &mut F,
    ) -> Result<FeedStop, FeedHandlerError>
    where
        A: Lease,
        B: Lease,
        R: Transport,
        F: FnMut(&TopUpdate),
    {
        self.run_with(io, stop, &mut OnTop(on_top))
    }

    /// [`FeedHandlerApp::run`] with a [`FeedListener`]: each top change and
    /// trade comes with the [`Trigger`] of its message, and the listener is
    /// polled once per round of the loop (see the module doc).
    ///
    /// # Errors
    /// As [`FeedHandlerApp::run`].
    pub fn run_with<A, B, R, L>(
        &mut self,
        io: Transports<'_, A, B, R>,
        stop: &AtomicBool,
        listener: &mut L,
    ) -> Result<FeedStop, FeedHandlerError>
    where
        A: Lease,
        B: Lease,
        R: Transport,
        L: FeedListener,
    {
        let on_top = listener;
        let Transports {
            mut feed_a,
            mut feed_b,
            mut retransmit,
            publish,
        } = io;
        if feed_a.is_none() && feed_b.is_none() {
            return Err(FeedHandlerError::NoFeed);
        }
        if self.recovery && retransmit.is_none() {
            return Err(FeedHandlerError::NoRetransmit);
        }
        let start = *self.start.get_or_insert_with(Instant::now);
        let mut last_rx = *self.last_rx.get_or_insert(start);
        let mut req = [0u8; HEADER_LEN];
        let mut empty_rounds = 0u32;
        let publish = match publish {
            Some(out) => {
                self.published = true;
                self.publishing.start_run();
                // Shortens the trait object's lifetime to this run's borrow.
                let out: &mut dyn RecordOut = out;
                Some((out, &mut self.publishing))
            }
            None => None,
        };
        let mut rx = Rx {
            handler: &mut self.handler,
            consumer: Consumer {
                market: &mut self.market,
                on_top,
                rx_ns: 0,
                top_updates: &mut self.top_updates,
                publish,
                lost: &mut self.lost,
                ended: &mut self.ended,
            },
            per_packet: &mut self.per_packet,
            start_mono: monotonic_ns()
                .saturating_sub(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)),
            recv_errors: &mut self.recv_errors,
            realtime_offset_ns: if L::STAMPS {
                *self.realtime_offset.get_or_insert_with(realtime_offset_ns)
            } else {
                0
            },
        };
        let burst = &mut self.burst;
        let as_ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let duration_ns = self.duration.map(as_ns);
        let idle_ns = as_ns(self.idle_timeout);
        let mut last_rx_ns = as_ns(last_rx.saturating_duration_since(start));
        let why = loop {
            let got = rx.poll_feed(FeedId::A, feed_a.as_deref_mut())
                + rx.poll_feed(FeedId::B, feed_b.as_deref_mut())
                + rx.poll(burst, FeedId::Retransmission, retransmit.as_deref_mut());
            // One clock read for the loop's own timing: the handler's now,
            // the listener's monotonic now, the duration and the idle
            // timeout (each receive still reads the clock for its deadline,
            // and a turn with packets once more for `last_rx`).
            let mono = monotonic_ns();
            let now = mono.saturating_sub(rx.start_mono);
            if got > 0 {
                last_rx = Instant::now();
                last_rx_ns = now;
                self.first_rx.get_or_insert(last_rx);
                empty_rounds = 0;
            } else {
                empty_rounds = empty_rounds.saturating_add(1);
            }
            if rx.handler.poll_timeout().is_some_and(|t| now >= t) {
                if let Some((_, p)) = rx.consumer.publish.as_mut() {
                    p.stamp_now();
                }
                if L::STAMPS {
                    rx.consumer.rx_ns = monotonic_ns();
                }
                rx.handler.handle_timeout(now, &mut rx.consumer);
            }
            if L::POLLS && rx.consumer.on_top.poll(mono) {
                break FeedStop::Interrupted;
            }
            while let Some(r) = rx.handler.poll_request(now) {
                r.emit(&mut Request::new_unchecked(&mut req[..]));
                if let Some(t) = retransmit.as_deref_mut()
                    && t.send(&req, None).is_err()
                {
                    self.send_errors += 1;
                }
            }
            if rx.consumer.ended.is_some() {
                break FeedStop::EndOfSession;
            }
            if stop.load(Ordering::Relaxed) {
                break FeedStop::Interrupted;
            }
            if duration_ns.is_some_and(|d| now >= d) {
                break FeedStop::Duration;
            }
            if now.saturating_sub(last_rx_ns) >= idle_ns {
                break FeedStop::IdleTimeout;
            }
            if empty_rounds > SPIN_ROUNDS && self.yield_when_idle {
                // Nothing for a while: let the other processes of this CPU run.
                std::thread::yield_now();
            }
        };
        if let Some((out, p)) = rx.consumer.publish.as_mut() {
            p.end(&mut **out, rx.consumer.market.last_timestamp_ns());
        }
        self.last_rx = Some(last_rx);
        self.stopped = Some(why);
        Ok(why)
    }

    /// The books the delivered stream built.
    #[must_use]
    pub fn market(&self) -> &MarketData {
        &self.market
    }

    /// What the run did so far (allocates: run it after
    /// [`FeedHandlerApp::run`]). `stopped` is [`FeedStop::Interrupted`]
    /// before a run ended.
    #[must_use]
    pub fn report(&self) -> FeedHandlerReport {
        let c = self.handler.counters();
        let seconds = match (self.first_rx, self.last_rx) {
            (Some(f), Some(l)) => l.saturating_duration_since(f).as_secs_f64(),
            _ => 0.0,
        };
        FeedHandlerReport {
            stopped: self.stopped.unwrap_or(FeedStop::Interrupted),
            recovery: self.recovery,
            session: self.handler.session().map(|s| s.to_string()),
            seconds,
            delivered: c.delivered,
            messages_per_sec: if seconds > 0.0 {
                (c.delivered as f64 / seconds).round() as u64
            } else {
                0
            },
            lost: c.lost,
            lost_ranges: self.lost.clone(),
            lost_ranges_not_listed: c.loss_reports.saturating_sub(self.lost.len() as u64),
            gaps: c.gaps,
            overflows: c.overflows,
            requests: c.requests,
            requested_messages: c.requested_messages,
            buffered_high_water: c.buffered_high_water,
            next_expected: c.next_expected,
            highest_seen: c.horizon.saturating_sub(1),
            unresolved: c.horizon.saturating_sub(c.next_expected),
            buffered: c.buffered,
            end_of_session: self.ended,
            top_updates: self.top_updates,
            recv_errors: self.recv_errors,
            send_errors: self.send_errors,
            a: (&c.a).into(),
            b: (&c.b).into(),
            retransmission: (&c.retransmission).into(),
            handle_packet_ns: self.per_packet.summary().map(|s| PacketTimes {
                p50: s.p50,
                p99: s.p99,
                p99_9: s.p99_9,
                max: s.max,
            }),
            market: MarketSummary::of(&self.market),
            top_of_book: top_of_book(self.market.book(), self.top),
            publish: self.published.then(|| self.publishing.report()),
        }
    }
}

/// What the receive loop borrows from the app.
struct Rx<'r, F> {
    handler: &'r mut FeedHandler,
    consumer: Consumer<'r, F>,
    per_packet: &'r mut LatencyStats,
    /// The run's start on `CLOCK_MONOTONIC` (the handler's clock counts
    /// from it).
    start_mono: u64,
    recv_errors: &'r mut u64,
    /// `CLOCK_REALTIME − CLOCK_MONOTONIC` at the start of the run (places
    /// receive stamps — the kernel's, or an `xdp://` endpoint's from the XDP
    /// program, both on CLOCK_REALTIME — on the monotonic clock).
    realtime_offset_ns: i64,
}

impl<F: FeedListener> Rx<'_, F> {
    /// Hands one packet to the handler, timing it; when publishing, stamps
    /// it first (its receive stamp, if the transport gave one: the
    /// kernel's software stamp, or the XDP program's on `xdp://`).
    #[inline]
    fn handle(&mut self, id: FeedId, bytes: &[u8], kernel_rx_ns: Option<u64>) {
        if let Some((_, p)) = self.consumer.publish.as_mut() {
            p.stamp_packet(kernel_rx_ns);
        }
        // One clock read before the packet: its receive (when the kernel
        // did not stamp it), the handler's now, and the start of its timing.
        let t0 = monotonic_ns();
        if F::STAMPS {
            self.consumer.rx_ns = match kernel_rx_ns {
                Some(rt) => (i128::from(rt) - i128::from(self.realtime_offset_ns))
                    .clamp(0, i128::from(u64::MAX)) as u64,
                None => t0,
            };
        }
        self.handler.handle_packet(
            id,
            t0.saturating_sub(self.start_mono),
            bytes,
            &mut self.consumer,
        );
        self.per_packet.record(monotonic_ns().saturating_sub(t0));
    }

    /// Takes what feed `t` has now and hands it to the handler where it
    /// landed (a ring frame, a queue slot: no copy); returns how many
    /// datagrams.
    fn poll_feed<T: Lease>(&mut self, id: FeedId, t: Option<&mut T>) -> usize {
        let Some(t) = t else {
            return 0;
        };
        match t.recv_lease(RX_BURST, Some(Instant::now()), |bytes, meta, _| {
            self.handle(id, bytes, meta.rx_ts_ns);
        }) {
            Ok(n) => n,
            Err(_) => {
                *self.recv_errors += 1;
                0
            }
        }
    }

    /// Takes what `t` has now, copied into the burst, and hands it to the
    /// handler (the re-request channel: off the per-message path); returns
    /// how many datagrams.
    fn poll<T: Transport>(&mut self, burst: &mut RxBurst, id: FeedId, t: Option<&mut T>) -> usize {
        let Some(t) = t else {
            return 0;
        };
        let n = match t.recv_burst_until(burst, Instant::now()) {
            Ok(n) => n,
            Err(_) => {
                *self.recv_errors += 1;
                0
            }
        };
        for i in 0..n {
            let (bytes, meta) = burst.get(i);
            self.handle(id, bytes, meta.rx_ts_ns);
        }
        n
    }
}

/// Runs a feed handler over `io`: [`FeedHandlerApp::new`],
/// [`FeedHandlerApp::run`] until the end of the session, the duration, the
/// idle timeout or `stop` (calling `on_top` on every top-of-book change),
/// then [`FeedHandlerApp::report`].
///
/// # Errors
/// [`FeedHandlerError`]: an invalid configuration, no feed, recovery on
/// without a re-request transport.
pub fn run_feed_handler<A, B, R, F>(
    cfg: &FeedHandlerConfig,
    io: Transports<'_, A, B, R>,
    stop: &AtomicBool,
    on_top: &mut F,
) -> Result<FeedHandlerReport, FeedHandlerError>
where
    A: Lease,
    B: Lease,
    R: Transport,
    F: FnMut(&TopUpdate),
{
    let mut app = FeedHandlerApp::new(cfg)?;
    app.run(io, stop, on_top)?;
    Ok(app.report())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(FeedHandlerConfig::default().validate(), Ok(()));
        let c = FeedHandlerConfig {
            session: Some("MUCH-TOO-LONG".into()),
            ..FeedHandlerConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(FeedHandlerConfigError::Session("MUCH-TOO-LONG".into()))
        );
        let c = FeedHandlerConfig {
            book: BookConfig {
                max_orders: 0,
                ..BookConfig::all_symbols()
            },
            ..FeedHandlerConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(FeedHandlerConfigError::Book(book::ConfigError::MaxOrders {
                value: 0
            }))
        ));
        // The window and its buffer reach the handler, and bad ones are
        // named.
        for (window, buffer_bytes, ok) in [
            (1 << 20, 64 << 20, true),
            (3, 1 << 20, false),
            (1 << 25, 1 << 20, false),
            (16_384, 10, false),
        ] {
            let c = FeedHandlerConfig {
                window,
                buffer_bytes,
                ..FeedHandlerConfig::default()
            };
            match c.validate() {
                Ok(()) => {
                    assert!(ok, "{window} {buffer_bytes}");
                    let h = c.handler_config(true).unwrap();
                    assert_eq!((h.window, h.buffer_bytes), (window, buffer_bytes));
                }
                Err(e) => {
                    assert!(!ok, "{window} {buffer_bytes}: {e}");
                    let e = e.to_string();
                    assert!(e.contains("window") || e.contains("buffer_bytes"), "{e}");
                }
            }
        }
        // A zero request timeout is rounded up, not refused.
        let c = FeedHandlerConfig {
            request_timeout: Duration::ZERO,
            ..FeedHandlerConfig::default()
        };
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.handler_config(true).unwrap().request_timeout_ns, 1);
        let c = FeedHandlerConfig {
            session: Some("HFTNET".into()),
            join: true,
            ..FeedHandlerConfig::default()
        };
        let h = c.handler_config(false).unwrap();
        assert_eq!(h.start, Start::FirstSeen);
        assert_eq!(h.session, Some(Session::new("HFTNET").unwrap()));
        assert!(!h.recovery);
    }

    #[test]
    fn stop_reasons_serialise_as_their_words() {
        for s in [
            FeedStop::EndOfSession,
            FeedStop::Interrupted,
            FeedStop::Duration,
            FeedStop::IdleTimeout,
        ] {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(s.as_str())
            );
        }
    }
}
