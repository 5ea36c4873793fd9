//! The trader: the feed handler ([`crate::feed`]) and the sans-IO
//! [`Trader`] engine (strategy, pre-trade risk, orders, position and P&L)
//! on one thread, its orders out as OUCH 5.0 over a SoupBinTCP 4 session
//! on kernel TCP ([`hftnet_trade::session::OrderSession`] over a
//! [`TcpTransport`] with `framing=soupbin`).
//!
//! Layer: apps. The decisions are `hftnet_trade::trader`'s, the bytes and
//! the session's rules (the Account Query after each login, the resend,
//! the held cancels) `hftnet_trade::session`'s; this module moves them
//! between the transports, reconnects, and keeps time
//! (`CLOCK_MONOTONIC`).
//!
//! A taker on one feed, from the library:
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use hftnet_apps::{Transports, trader};
//! use hftnet_io::{Endpoint, Role, dispatch};
//! use hftnet_trade::strategy::{Taker, TakerConfig};
//! use hftnet_trade::trader::TraderConfig;
//!
//! let cfg = trader::TraderAppConfig {
//!     trader: TraderConfig { symbols: vec!["AAPL".into()], ..TraderConfig::default() },
//!     orders: "tcp://198.18.0.2:7001".into(),
//!     username: "user".into(),
//!     password: "secret".into(),
//!     state: "trader.state".into(),
//!     ..trader::TraderAppConfig::default()
//! };
//! let strategy = Taker::new(TakerConfig::default(), &cfg.trader.symbol_table()?)?;
//! let mut md = Endpoint::parse("udp://198.18.0.1:30001?timestamps=rx")?.open(Role::Server)?;
//! let mut rr = Endpoint::parse("udp://198.18.0.2:30003")?.open(Role::Client)?;
//! let (stop, kill) = (AtomicBool::new(false), AtomicBool::new(false));
//! let run = dispatch!(&mut md, a => {
//!     let io = Transports::new().feed_a(a).retransmit(&mut rr);
//!     trader::run_trader(&cfg, strategy, io, &stop, &kill)
//! })?;
//! let o = &run.report.orders;
//! println!("{} sent = {} accepted + {} rejected + {} pending", o.sent, o.accepted, o.rejected, o.pending);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The loop
//!
//! The feed handler's loop ([`FeedHandlerApp::run_with`]) calls this
//! module's listener with every top-of-book change and trade, and the
//! [`Trigger`] of the message that caused it (its MoldUDP64 sequence
//! number, the receive stamp of its packet). The trader decides; each order
//! message is encoded, framed by the session and sent at once, and the time
//! from the trigger's receive stamp to the order's transmit is recorded
//! (internal tick-to-trade: to the kernel's transmit stamp of the order
//! with `timestamps=tx` on the orders URI, else to the return of its
//! send; both, and the call of the send, are reported). Every
//! [`SERVICE_EVERY_NS`] of the loop the listener also serves the order
//! session: receives (without blocking), transmit stamps, the session's
//! timers (heartbeats — short ones keep the send path warm, see
//! [`TraderAppConfig::heartbeat`] —, a silent server), the UserRefNum
//! marks to persist, the kill switch, and reconnection.
//!
//! # Choices
//!
//! - **Orders while disconnected are refused, not queued**
//!   ([`RiskReject::Disconnected`], counted): a decision taken on market
//!   data is not sent late, after a reconnect, on a market that moved.
//!   Cancels (which can only reduce risk) are held while the session is
//!   down (and until the login's resend is out) and sent after the next
//!   login's resend.
//! - **Nothing lost or duplicated across a reconnect**
//!   ([`OrderSession`]'s rules): after each login the trader sends an
//!   Account Query and waits for the exchange's next UserRefNum (orders
//!   are refused as disconnected meanwhile); every enter and replace it
//!   sent with a number from there on (the last [`RESEND_RING`] are
//!   remembered) was lost with the old connection — in the kernel's
//!   buffers or on the wire — and is sent again, in order, with its own
//!   number. OUCH ignores a number not above the last it processed, so
//!   nothing can be entered twice; the exchange's answers come once
//!   through the resumed sequenced stream. Without an answer within
//!   200 ms the resend starts above the highest number the exchange
//!   answered.
//! - **Reconnect**: after a drop (the peer closed, a send failed, the
//!   server silent for the timeout) the next connection logs in asking for
//!   the next expected sequence number
//!   ([`hftnet_trade::soupbin::ClientConnection::reconnect_config`]), so every exchange message is
//!   delivered exactly once across connections; attempts back off
//!   exponentially (from `reconnect_backoff` to 1 s) and are bounded
//!   (`max_reconnect_attempts` failures in a row end the run). Each
//!   attempt is a non-blocking connect looked at once per loop round and
//!   given up at the URI's `connect_timeout` (default 3 s): the market
//!   data keeps being handled meanwhile. A Login Rejected or an End of
//!   Session ends the run.
//! - **UserRefNums** are strictly increasing across reconnects (one
//!   allocator for the run) and restarts: the high-water mark is kept in
//!   the state file, written atomically (a temporary file, `fsync`,
//!   `rename`, `fsync` of the directory) before any number above the stored
//!   mark is used. After each login an Account Query raises the allocator
//!   to the exchange's next number if the exchange is ahead.
//! - **Restart**: a restarted trader (the same state file) logs in from
//!   sequence number 1 and receives the whole day's session again; until
//!   the answer to the Account Query of its first login it recovers
//!   ([`Trader::begin_recovery`], see `hftnet_trade::trader`'s
//!   *Recovery after a restart*): the earlier runs' orders are adopted
//!   from their Order Accepted and their fills, replaces and cancels
//!   applied, so the position, P&L and open orders are what they were,
//!   risk counts the adopted orders, and the kill switch and the end of
//!   the run cancel them too (`orders.recovered_*` in the report). They
//!   are never sent again (the resend ring holds this process's orders
//!   only). Reconnects resume after the last message read: nothing is
//!   adopted or applied twice.
//! - **Kill switch**: the kill flag (a signal handler sets it), a kill file
//!   appearing (`kill_file`, and always `STATE.kill` beside the state file,
//!   which `hftnet trade kill --state STATE` creates), or the end of the
//!   run: every new order is refused, every open order cancelled, and the
//!   run waits up to [`DRAIN`] for the cancels to be answered before it
//!   logs out.
//!
//! Invariants: after the start, nothing is allocated per market-data
//! message or per order (`tests/trader_alloc.rs` counts); every loop is bounded
//! by the duration, the feed's idle timeout, the stop flag or the
//! reconnection limit.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hftnet_bench::clock::monotonic_ns;
use hftnet_bench::stats::{LatencyStats, Summary};
use hftnet_io::tcp::TcpConnect;
use hftnet_io::{Framing, Lease, Role, RxBurst, TcpConfig, TcpTransport, Transport, Uri};
use hftnet_sys::sock::TxStampKind;
use hftnet_trade::market::{TopUpdate, TradeUpdate};
use hftnet_trade::orders::{OrderMsg, Trigger};
use hftnet_trade::ouch::{self, InboxCounters};
use hftnet_trade::risk::RiskReject;
use hftnet_trade::session::{OrderSession, OrderSessionConfig, SessionEvent};
use hftnet_trade::soupbin::ClientConfig;
use hftnet_trade::strategy::Strategy;
use hftnet_trade::trader::{Outbox, Trader, TraderConfig, TraderConfigError};
use hftnet_wire::soupbintcp::{Password, Username};
use serde::Serialize;

use crate::Transports;
use crate::feed::{
    FeedHandlerApp, FeedHandlerConfig, FeedHandlerConfigError, FeedHandlerError, FeedHandlerReport,
    FeedListener,
};

/// How long the end of a run (or a kill) waits for the cancels of open
/// orders to be answered.
pub const DRAIN: Duration = Duration::from_secs(1);
/// Longest reconnection back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often the kill files are looked for.
const KILL_FILE_EVERY_NS: u64 = 10_000_000;
/// SoupBinTCP frames taken per receive call; the slot holds any packet.
const RX_BURST: usize = 16;
/// Enters and replaces remembered for the resend after a reconnect.
pub const RESEND_RING: usize = hftnet_trade::session::RESEND_RING;
/// How long a login waits for the Account Query Response before it falls
/// back to the highest UserRefNum the exchange answered.
const QUERY_WAIT_NS: u64 = hftnet_trade::session::QUERY_WAIT_NS;
const RX_SLOT: usize = 65_536;
/// The shortest client heartbeat a trader takes (one per 10 µs of silence
/// already costs the exchange a frame every few turns of its loop).
pub const MIN_HEARTBEAT: Duration = Duration::from_micros(10);
/// Orders whose transmit stamp is awaited, at most (more are counted in
/// [`StampFigures::overflow`] and measured to their send's return only).
pub const STAMPS_PENDING: usize = 4_096;
/// The feed loop serves the order session (reads its socket, runs its
/// timers, reads transmit stamps) once per this many ns, not at every
/// turn: between, the market-data receive spins alone, so a turn takes
/// about half as long and a packet waits about half as long for the turn
/// that reads it. Orders still leave at once; the exchange's answers wait
/// at most this long.
pub const SERVICE_EVERY_NS: u64 = 5_000;
/// What ends internal tick-to-trade, in the report.
const END_TX_STAMP: &str = "the kernel's software transmit stamp of the order (SCM_TSTAMP_SND)";
const END_SEND_RETURN: &str = "the return of the order's send";

/// An order sent on a trigger whose transmit stamp is awaited: the key
/// of its stamp and the trigger's receive, on `CLOCK_MONOTONIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AwaitedStamp {
    key: u32,
    rx_ns: u64,
}

/// Settles the awaited orders (oldest first) one transmit stamp covers:
/// the stamp with key `id` (the offset of the last byte of its send,
/// wrapping at 2³²) left at `tx` (ns on the triggers' clock). Every
/// awaited order whose key is at or before `id` left no later than it:
/// its own stamp (key equal), or a later send's segment it was coalesced
/// into (counted). `record` gets trigger → transmit; a transmit before
/// its trigger (clocks placed wrongly) is counted, not recorded.
fn settle(
    awaited: &mut std::collections::VecDeque<AwaitedStamp>,
    id: u32,
    tx: i128,
    figures: &mut StampFigures,
    mut record: impl FnMut(u64),
) {
    while let Some(a) = awaited.front() {
        // Keys wrap at 2³²: compare by distance.
        let ahead = id.wrapping_sub(a.key) as i32;
        if ahead < 0 {
            break;
        }
        let ns = tx - i128::from(a.rx_ns);
        if ns < 0 {
            figures.negative += 1;
        } else {
            record(u64::try_from(ns).unwrap_or(u64::MAX));
        }
        figures.coalesced += u64::from(ahead > 0);
        awaited.pop_front();
    }
}

/// What the trader runs with.
#[derive(Debug, Clone)]
pub struct TraderAppConfig {
    /// The feed handler (A/B, recovery, books, duration, idle timeout).
    pub feed: FeedHandlerConfig,
    /// Symbols and risk limits.
    pub trader: TraderConfig,
    /// The exchange's order entry: `tcp://IP:PORT` (SoupBinTCP framing is
    /// set here; a URI asking for another framing is refused).
    pub orders: String,
    /// SoupBinTCP username (at most 6 characters).
    pub username: String,
    /// SoupBinTCP password (at most 10 characters).
    pub password: String,
    /// The state file: the persisted UserRefNum high-water mark.
    pub state: PathBuf,
    /// A file whose appearance trips the kill switch (besides
    /// `STATE.kill`, always watched).
    pub kill_file: Option<PathBuf>,
    /// Client heartbeat after this long without sending (default 1 s, as
    /// SoupBinTCP asks). Much shorter (e.g. 100 µs) keeps the kernel's TCP
    /// send path in the CPU's caches between orders, as kernel-bypass
    /// stacks' "warm" sends do: after milliseconds of spinning on receives
    /// a cold send path takes several times as long to reach the wire.
    /// Costs a 3-byte frame per interval on the wire and at the exchange.
    pub heartbeat: Duration,
    /// Give up on a server silent this long.
    pub server_timeout: Duration,
    /// First reconnection back-off (doubles up to [`MAX_BACKOFF`]).
    pub reconnect_backoff: Duration,
    /// Failed reconnection attempts in a row that end the run.
    pub max_reconnect_attempts: u32,
    /// How long the first login may take.
    pub login_timeout: Duration,
}

impl Default for TraderAppConfig {
    fn default() -> Self {
        Self {
            feed: FeedHandlerConfig::default(),
            trader: TraderConfig::default(),
            orders: String::new(),
            username: String::new(),
            password: String::new(),
            state: PathBuf::new(),
            kill_file: None,
            heartbeat: Duration::from_secs(1),
            server_timeout: Duration::from_secs(15),
            reconnect_backoff: Duration::from_millis(10),
            max_reconnect_attempts: 10,
            login_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`TraderAppConfig`] refused, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum TraderConfigInvalid {
    /// The feed handler's configuration.
    #[error(transparent)]
    Feed(#[from] FeedHandlerConfigError),
    /// Symbols or risk limits.
    #[error(transparent)]
    Trader(#[from] TraderConfigError),
    /// The order-entry URI.
    #[error("--orders {uri:?}: {why}")]
    Orders {
        /// As given.
        uri: String,
        /// What is wrong and what is accepted.
        why: String,
    },
    /// The login.
    #[error("--login: {0}")]
    Login(String),
    /// A session timer.
    #[error("{0}")]
    Session(String),
    /// The state file is unreadable or holds something else than a mark.
    #[error("state file {path}: {why}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Why the trader could not run.
#[derive(Debug, thiserror::Error)]
pub enum TraderError {
    /// A configuration field.
    #[error(transparent)]
    Config(#[from] TraderConfigInvalid),
    /// The feed handler refused its transports.
    #[error(transparent)]
    Feed(#[from] FeedHandlerError),
    /// The first connection to the exchange failed.
    #[error("connecting to the exchange at {uri}: {why}")]
    Connect {
        /// The order-entry URI.
        uri: String,
        /// What failed.
        why: String,
    },
    /// The exchange refused the login.
    #[error("the exchange refused the login ({0}): check --login")]
    LoginRejected(String),
    /// The exchange did not answer the first login in time.
    #[error("the exchange did not answer the login within {0:?}")]
    LoginTimeout(Duration),
    /// Writing the state file failed.
    #[error("writing the state file {path}: {why}")]
    State {
        /// The file.
        path: PathBuf,
        /// The error.
        why: String,
    },
}

/// Reads the mark a state file holds (0 when the file does not exist).
///
/// # Errors
/// The file is unreadable or holds something else than
/// `user_ref_num_mark N`.
pub fn read_state(path: &Path) -> Result<u32, TraderConfigInvalid> {
    let bad = |why: String| TraderConfigInvalid::State {
        path: path.to_path_buf(),
        why,
    };
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(bad(e.to_string())),
    };
    text.trim()
        .strip_prefix("user_ref_num_mark ")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| {
            bad(format!(
                "holds {:?}; expected `user_ref_num_mark N` (a file hftnet trade wrote)",
                text.chars().take(40).collect::<String>()
            ))
        })
}

/// The file `hftnet trade kill --state STATE` creates: `STATE.kill`.
#[must_use]
pub fn kill_file_of(state: &Path) -> PathBuf {
    let mut s = state.as_os_str().to_owned();
    s.push(".kill");
    PathBuf::from(s)
}

/// The state file, written atomically; paths built once.
#[derive(Debug)]
struct StateFile {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    writes: u64,
}

impl StateFile {
    fn new(path: &Path) -> Self {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Self {
            path: path.to_path_buf(),
            tmp: PathBuf::from(tmp),
            dir,
            writes: 0,
        }
    }

    /// Writes `mark` durably: temporary file, fsync, rename, fsync of the
    /// directory. Allocation-free (fixed buffer; short paths go to the
    /// kernel from the stack).
    fn store(&mut self, mark: u32) -> std::io::Result<()> {
        let mut buf = [0u8; 32];
        let prefix = b"user_ref_num_mark ";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut n = prefix.len();
        let mut digits = [0u8; 10];
        let (mut v, mut k) = (mark, 0);
        loop {
            digits[k] = b'0' + (v % 10) as u8;
            k += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for d in digits[..k].iter().rev() {
            buf[n] = *d;
            n += 1;
        }
        buf[n] = b'\n';
        n += 1;
        let mut f = fs::File::create(&self.tmp)?;
        f.write_all(&buf[..n])?;
        f.sync_all()?;
        drop(f);
        fs::rename(&self.tmp, &self.path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        self.writes += 1;
        Ok(())
    }
}

/// The order session's figures over all connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionFigures {
    /// Connections made (the first one included).
    pub connections: u64,
    /// Reconnections that logged in again.
    pub reconnects: u64,
    /// Connection attempts that failed (connect or login).
    pub failed_attempts: u64,
    /// Connections lost (peer closed, send failed, server silent).
    pub drops: u64,
    /// Logins accepted.
    pub logins: u64,
    /// Sequenced messages received (each exactly once over the run).
    pub sequenced_in: u64,
    /// Sequenced messages the server sent again and the session skipped.
    pub duplicates: u64,
    /// Sequenced messages the server reported it will not send.
    pub missing: u64,
    /// The next sequence number expected at the end.
    pub next_sequence: u64,
    /// Heartbeats received.
    pub heartbeats_in: u64,
    /// Heartbeats sent.
    pub heartbeats_out: u64,
    /// Unsequenced data sent (orders).
    pub unsequenced_out: u64,
    /// Bad SoupBinTCP frames from the server (counted, ignored).
    pub bad_frames: u64,
    /// Times the server was silent for the timeout.
    pub server_timeouts: u64,
    /// Sends that failed (the connection dropped under them; the message
    /// is held and sent after the next login).
    pub send_failures: u64,
    /// Messages held while the session was down (cancels, and a message
    /// whose send broke the connection) and sent after a login.
    pub held_sent: u64,
    /// Enters and replaces sent again after a reconnect (the exchange had
    /// not processed them).
    pub resent: u64,
    /// Messages that did not fit the held buffer (lost; their orders stay
    /// pending).
    pub held_overflow: u64,
    /// Messages that could not be encoded (a bug if ever non-zero).
    pub encode_errors: u64,
    /// State-file writes.
    pub state_writes: u64,
    /// Reconnection attempts that gave up at the connect timeout (the
    /// exchange's address did not answer).
    pub connect_timeouts: u64,
    /// Market-data events (top-of-book changes and trades) handled while
    /// a reconnection's TCP connect was under way: the connect does not
    /// block the loop.
    pub md_while_connecting: u64,
}

/// The order counts: `sent = accepted + rejected + pending`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OrderFigures {
    /// Enters and replaces sent.
    pub sent: u64,
    /// Of them, accepted.
    pub accepted: u64,
    /// Of them, rejected by the exchange (or replaces voided).
    pub rejected: u64,
    /// Of them, not answered.
    pub pending: u64,
    /// Enter Orders sent.
    pub enters: u64,
    /// Replace Orders sent.
    pub replaces: u64,
    /// Cancel Orders sent.
    pub cancels: u64,
    /// Executions applied (those of orders taken over from earlier runs
    /// included: the position's).
    pub executions: u64,
    /// Shares executed (likewise).
    pub executed_shares: u64,
    /// Exchange messages for unknown or finished orders (those of the
    /// replayed history included, when they cannot be reconciled).
    pub unexpected: u64,
    /// Orders open at the end.
    pub open_at_end: u32,
    /// Earlier runs' orders adopted from the replayed session.
    pub recovered_orders: u64,
    /// Earlier runs' replaces of adopted orders.
    pub recovered_replaces: u64,
    /// Earlier runs' enters and replaces the exchange had rejected.
    pub recovered_rejects: u64,
    /// Of `executions`: executions of adopted orders (the replayed ones
    /// and later ones).
    pub recovered_fills: u64,
    /// Adopted orders open when recovery ended (earlier runs' resting
    /// orders taken over; the kill switch and the end of the run cancel
    /// them with the rest).
    pub recovered_open: u64,
    /// Of the recovered orders, replaces and rejects: those read after
    /// recovery ended (answered late by the exchange, or read after an
    /// earlier run's Account Query Response in the replay was taken for
    /// this run's).
    pub recovered_late: u64,
}

/// Position and P&L of one symbol (prices in ITCH/OUCH units, 4 decimals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SymbolPosition {
    /// The symbol.
    pub symbol: String,
    /// Shares held (negative: short).
    pub shares: i64,
    /// Shares bought.
    pub bought: u64,
    /// Shares sold.
    pub sold: u64,
    /// Realized P&L, price units × shares.
    pub realized: i128,
    /// Unrealized P&L at the last top (None: no price to mark).
    pub unrealized: Option<i128>,
}

/// What ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraderStop {
    /// The feed ended (end of session, duration, idle timeout, stop flag).
    Feed,
    /// The exchange ended the session (End of Session or End of Day).
    EndOfSession,
    /// Reconnection failed `max_reconnect_attempts` times in a row.
    ReconnectFailed,
    /// The exchange refused a login.
    LoginRejected,
    /// Writing the state file failed: no more numbers can be used safely.
    StateWriteFailed,
}

/// A finished run: the report, and the internal tick-to-trade histogram
/// (for `.hgrm` files: [`LatencyStats::write_hgrm`]).
#[derive(Debug, Clone)]
pub struct TraderRun {
    /// The report.
    pub report: TraderReport,
    /// Internal tick-to-trade samples, ns: to the order's transmit stamp
    /// with `timestamps=tx` on the orders URI, else to its send's return
    /// ([`TraderReport::tick_to_trade_internal_end`] says which).
    pub tick_to_trade: LatencyStats,
    /// The same orders' receive stamp → the call of their send (the
    /// application's part: decode, book, strategy, risk, encode), ns; the
    /// rest of [`TraderRun::tick_to_trade`] is the SoupBinTCP framing and
    /// the kernel's TCP send.
    pub tick_to_send_call: LatencyStats,
    /// The same orders' receive stamp → the return of their send, ns
    /// (with transmit stamps, the part after the stamp is the rest of the
    /// send call: on veth and loopback the peer's TCP receive runs in it).
    pub tick_to_send_return: LatencyStats,
}

/// The transmit stamps of the orders (`timestamps=tx` on the orders URI).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StampFigures {
    /// Transmit stamps read (every send is stamped, not only orders).
    pub read: u64,
    /// Orders sent on a trigger whose stamp never came (the connection
    /// closed first): not in the internal figure.
    pub missing: u64,
    /// Orders sent on a trigger that left in the segment of a later send
    /// (TCP coalesced them while they waited): in the internal figure at
    /// that segment's stamp.
    pub coalesced: u64,
    /// Orders sent on a trigger while [`STAMPS_PENDING`] stamps were
    /// awaited: not in the internal figure.
    pub overflow: u64,
    /// Failed reads of the error queue.
    pub read_errors: u64,
    /// Stamps earlier than their trigger's receive (the clocks misplaced):
    /// not in the internal figure.
    pub negative: u64,
}

/// What a trader run did.
#[derive(Debug, Clone, Serialize)]
pub struct TraderReport {
    /// What ended it.
    pub stopped: TraderStop,
    /// The feed handler's report.
    pub feed: FeedHandlerReport,
    /// The order counts.
    pub orders: OrderFigures,
    /// Risk refusals by reason (every reason listed).
    pub risk_refusals: Vec<(String, u64)>,
    /// Orders that passed risk.
    pub risk_passed: u64,
    /// OUCH messages from the exchange, by kind.
    pub exchange_messages: InboxCounters,
    /// The SoupBinTCP session over all connections.
    pub session: SessionFigures,
    /// Whether the kill switch was tripped, and by what.
    pub kill_switch: Option<&'static str>,
    /// The last UserRefNum used, and the mark in the state file.
    pub user_ref_num_last: u32,
    /// The mark stored in the state file.
    pub user_ref_num_mark: u32,
    /// Top updates handed to the strategy.
    pub tops: u64,
    /// Positions and P&L per symbol.
    pub positions: Vec<SymbolPosition>,
    /// Realized P&L over all symbols.
    pub realized: i128,
    /// Internal tick-to-trade: from the receive stamp of the market-data
    /// packet that triggered an order to the order's transmit, ns (`None`:
    /// no sample); [`TraderReport::tick_to_trade_internal_end`] says which
    /// transmit.
    pub tick_to_trade_internal_ns: Option<Summary>,
    /// Where it ends: the kernel's software transmit stamp of the order
    /// (`timestamps=tx` on the orders URI), else the return of its send.
    pub tick_to_trade_internal_end: &'static str,
    /// Orders sent on a trigger (each in the figures below; in the internal
    /// figure unless its stamp is in `tx_stamps.missing` or `.overflow`).
    pub tick_to_trade_samples: u64,
    /// From the same receive stamp to the call of the order's send (what
    /// the application adds; the rest is the SoupBinTCP framing and the
    /// kernel's TCP send), ns.
    pub tick_to_send_call_ns: Option<Summary>,
    /// From the same receive stamp to the return of the order's send, ns
    /// (on veth and loopback the peer's TCP receive runs inside the send
    /// call, after the transmit stamp).
    pub tick_to_send_return_ns: Option<Summary>,
    /// The orders' transmit stamps (`timestamps=tx`).
    pub tx_stamps: StampFigures,
    /// An error that ended the run early, in words.
    pub error: Option<String>,
}

/// The listener the feed loop drives, holding everything of the order side.
struct Engine<'a, S> {
    trader: Trader<S>,
    outbox: Outbox,
    /// The order session: the SoupBinTCP client of `tcp`, the Account
    /// Query wait, the resend ring, the held cancels.
    session: OrderSession,
    /// The connection to the exchange (open while `session` has one).
    tcp: Option<TcpTransport>,
    tcp_cfg: TcpConfig,
    /// The loop's own figures (the session's are added in the report).
    figures: SessionFigures,
    tx: Box<[u8]>,
    burst: RxBurst,
    /// Internal tick-to-trade: to the order's transmit stamp with
    /// `timestamps=tx` on the orders URI, else to its send's return.
    t2t: LatencyStats,
    t2t_samples: u64,
    /// Receive stamp → send call of the same orders.
    t2t_call: LatencyStats,
    /// Receive stamp → send return of the same orders.
    t2t_return: LatencyStats,
    /// Orders sent on a trigger, oldest first, whose transmit stamp is
    /// awaited (`timestamps=tx`; capacity [`STAMPS_PENDING`], never grown).
    awaited: std::collections::VecDeque<AwaitedStamp>,
    /// `CLOCK_REALTIME − CLOCK_MONOTONIC` (places transmit stamps on the
    /// clock of the triggers).
    realtime_offset_ns: i64,
    stamps: StampFigures,
    /// An order sent since the transmit stamps were last read.
    unread_stamps: bool,
    state: StateFile,
    mark: u32,
    kill_flag: &'a AtomicBool,
    kill_files: [Option<PathBuf>; 2],
    next_kill_check: u64,
    killed: Option<&'static str>,
    reconnect_at: Option<u64>,
    /// When the feed loop next serves the order session.
    next_service: u64,
    /// A reconnection's TCP connect under way (non-blocking, polled by
    /// `service`).
    connecting: Option<TcpConnect>,
    backoff_ns: u64,
    first_backoff_ns: u64,
    failed_in_a_row: u32,
    max_attempts: u32,
    ended: Option<TraderStop>,
    error: Option<String>,
}

impl<S: Strategy> Engine<'_, S> {
    /// Sends one SoupBinTCP frame stream (as `poll_transmit` or
    /// `send_unsequenced` wrote it) as messages of the soupbin framing.
    fn write_frames(tcp: &mut TcpTransport, bytes: &[u8]) -> bool {
        let mut at = 0;
        while at + 2 <= bytes.len() {
            let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
            let end = (at + 2 + len).min(bytes.len());
            if tcp.send(&bytes[at + 2..end], None).is_err() {
                return false;
            }
            at = end;
        }
        true
    }

    /// Sends what the trader put in the outbox (or holds cancels while
    /// the session is down), recording tick-to-trade.
    #[inline]
    fn flush(&mut self) {
        let n = self.outbox.as_slice().len();
        for i in 0..n {
            let m = self.outbox.as_slice()[i];
            self.send_order(&m);
        }
        self.outbox.clear();
    }

    /// Reads the order connection's transmit stamps and records internal
    /// tick-to-trade for the awaited orders they stamp. An awaited order
    /// whose key a later stamp passed had no stamp of its own: TCP put its
    /// bytes into the segment of a later send while they waited to leave
    /// (the kernel stamps the last byte of each send, and coalesced data
    /// keeps only the last key), so they left no later than that stamp —
    /// recorded at it, an upper bound, and counted (`coalesced`).
    fn read_stamps(&mut self) {
        let Some(tcp) = self.tcp.as_mut() else {
            return;
        };
        self.unread_stamps = false;
        let (awaited, t2t, figures) = (&mut self.awaited, &mut self.t2t, &mut self.stamps);
        let offset = self.realtime_offset_ns;
        let read = tcp.tx_timestamps(&mut |st| {
            let Some(sw) = st.sw_ns.filter(|_| st.kind == TxStampKind::Snd) else {
                return;
            };
            figures.read += 1;
            let tx = i128::from(sw) - i128::from(offset);
            settle(awaited, st.id, tx, figures, |ns| t2t.record(ns));
        });
        if read.is_err() {
            figures.read_errors += 1;
        }
    }

    #[inline]
    fn send_order(&mut self, m: &OrderMsg) {
        // Held (a cancel while the session is down or settling), or
        // counted by the session. The clock is read after the encoding:
        // the application's part ends there (no extra clock read on the
        // hot path; the SoupBinTCP framing, a few bytes written, counts
        // with the send).
        let Ok(framed) = self.session.send_order(m, &mut self.tx, monotonic_ns) else {
            return;
        };
        let call = framed.now;
        let Some(tcp) = self.tcp.as_mut() else {
            self.session.write_failed(m);
            return;
        };
        let sent = Self::write_frames(tcp, &self.tx[..framed.len]);
        let done = monotonic_ns();
        self.unread_stamps |= self.tcp_cfg.tx_timestamps;
        if sent {
            let t = m.trigger();
            if t.rx_ns != 0 {
                self.t2t_call.record(call.saturating_sub(t.rx_ns));
                self.t2t_return.record(done.saturating_sub(t.rx_ns));
                self.t2t_samples += 1;
                if !self.tcp_cfg.tx_timestamps {
                    self.t2t.record(done.saturating_sub(t.rx_ns));
                } else if self.awaited.len() < STAMPS_PENDING
                    && let Some(end) = self.tcp.as_ref().and_then(TcpTransport::stream_end)
                {
                    // The stamp's key: the offset of the send's last byte.
                    self.awaited.push_back(AwaitedStamp {
                        key: end.wrapping_sub(1) as u32,
                        rx_ns: t.rx_ns,
                    });
                } else {
                    self.stamps.overflow += 1;
                }
            }
        } else {
            // The connection broke under this message: an enter or replace
            // is resent after the next login like every other the exchange
            // did not process; a cancel is held (see `OrderSession`).
            self.session.write_failed(m);
            self.drop_conn(monotonic_ns());
        }
    }

    /// Persists the mark the allocator asks for, before its numbers are
    /// used.
    fn persist(&mut self) {
        if let Some(mark) = self.trader.refs_mut().poll_persist() {
            match self.state.store(mark) {
                Ok(()) => {
                    self.mark = mark;
                    self.trader.refs_mut().confirm_persisted(mark);
                }
                Err(e) => {
                    self.error = Some(format!(
                        "writing the state file {}: {e}",
                        self.state.path.display()
                    ));
                    self.ended.get_or_insert(TraderStop::StateWriteFailed);
                }
            }
        }
    }

    fn drop_conn(&mut self, now: u64) {
        // Stamps not read by now left with the socket.
        self.read_stamps();
        self.stamps.missing += self.awaited.len() as u64;
        self.awaited.clear();
        self.tcp = None;
        self.session.connection_lost(&mut self.trader);
        self.reconnect_at = Some(now + self.backoff_ns);
    }

    /// Opens a connection, waiting for the connect
    /// (the first connection, before the loop runs).
    fn connect(&mut self, now: u64) -> Result<(), String> {
        let tcp = TcpTransport::open(self.tcp_cfg.clone(), Role::Client)
            .map_err(|e| crate::error_chain(&e))?;
        self.attach(tcp, now)
    }

    /// Starts the session (login) on a connected `tcp`.
    fn attach(&mut self, tcp: TcpTransport, now: u64) -> Result<(), String> {
        self.session
            .connect(now, &mut self.trader)
            .map_err(|e| e.to_string())?;
        self.tcp = Some(tcp);
        self.pump_out(now);
        Ok(())
    }

    /// Writes what the session has to send (login, heartbeat, logout; after
    /// a login the Account Query, then the resend and the held cancels).
    fn pump_out(&mut self, now: u64) {
        loop {
            let Some(tcp) = self.tcp.as_mut() else {
                return;
            };
            let n = self
                .session
                .poll_transmit(now, &mut self.trader, &mut self.tx);
            if n == 0 {
                return;
            }
            if !Self::write_frames(tcp, &self.tx[..n]) {
                self.drop_conn(now);
                return;
            }
            if self.tcp_cfg.tx_timestamps {
                // Its transmit stamp, read now: stamps left queued would
                // fill the error queue between orders.
                self.read_stamps();
            }
        }
    }

    /// Receives what the server sent, without blocking.
    fn pump_in(&mut self, now: u64) {
        let Some(tcp) = self.tcp.as_mut() else {
            return;
        };
        let got = tcp.recv_burst_until(&mut self.burst, Instant::now());
        let n = match got {
            Ok(n) => n,
            Err(_) => {
                self.drop_conn(now);
                return;
            }
        };
        let mut logged_in = false;
        let mut end = None;
        for i in 0..n {
            let (bytes, _) = self.burst.get(i);
            let len = (bytes.len() as u16).to_be_bytes();
            let mut on = |e: SessionEvent| match e {
                SessionEvent::Message {
                    decoded:
                        Some(ouch::Decoded::SystemEvent(hftnet_wire::ouch50::EventCode::EndOfDay)),
                    ..
                } => end = Some(TraderStop::EndOfSession),
                SessionEvent::LoggedIn { .. } => logged_in = true,
                SessionEvent::LoginRejected(_) => end = Some(TraderStop::LoginRejected),
                SessionEvent::EndOfSession => end = Some(TraderStop::EndOfSession),
                SessionEvent::Message { .. } | SessionEvent::Gap { .. } => {}
            };
            let (session, trader) = (&mut self.session, &mut self.trader);
            session.handle_input(now, &len, trader, &mut on);
            session.handle_input(now, bytes, trader, &mut on);
        }
        if let Some(e) = end {
            self.ended.get_or_insert(e);
        }
        if logged_in {
            // The session queued its Account Query (written by `pump_out`);
            // orders wait for its answer.
            self.failed_in_a_row = 0;
            self.backoff_ns = self.first_backoff_ns;
        }
    }

    fn check_kill(&mut self, now: u64) {
        if self.killed.is_some() {
            return;
        }
        let mut why = None;
        if self.kill_flag.load(Ordering::Relaxed) {
            why = Some("signal");
        } else if now >= self.next_kill_check {
            self.next_kill_check = now + KILL_FILE_EVERY_NS;
            if self.kill_files.iter().flatten().any(|p| p.exists()) {
                why = Some("kill file");
            }
        }
        if let Some(w) = why {
            self.kill(w);
        }
    }

    fn kill(&mut self, why: &'static str) {
        self.killed.get_or_insert(why);
        let left = self.trader.trip_kill_switch(&mut self.outbox);
        self.flush_cancels(left);
    }

    /// Sends the outbox, then the cancels of the `left` open orders that
    /// did not fit in it.
    fn flush_cancels(&mut self, mut left: usize) {
        self.flush();
        while left > 0 {
            // The stamps of each outbox's worth, read before the next: left
            // waiting they would fill the socket's receive buffer.
            if self.unread_stamps {
                self.read_stamps();
            }
            left = self.trader.cancel_all(&mut self.outbox);
            self.flush();
        }
    }

    /// Serves the order session once (the loop's round).
    fn service(&mut self, now: u64) {
        if self.unread_stamps {
            self.read_stamps();
        }
        self.pump_in(now);
        if self.tcp.is_some() {
            // A silent server; the Account Query's deadline (then the
            // resend starts above what the exchange answered).
            self.session.handle_timeout(now);
            if self.session.close_reason().is_some() {
                self.pump_out(now);
                if self.ended.is_none() {
                    self.drop_conn(now);
                }
            }
        }
        self.pump_out(now);
        self.persist();
        self.check_kill(now);
        self.reconnect(now);
    }

    /// Reconnects without blocking the loop: starts a non-blocking
    /// connect when the back-off has passed, then looks at it once per
    /// round until it is made (the login follows), refused, or past the
    /// URI's `connect_timeout`.
    fn reconnect(&mut self, now: u64) {
        if self.tcp.is_some() || self.ended.is_some() {
            return;
        }
        let made = match self.connecting.as_mut() {
            Some(c) => match c.poll(Instant::now()) {
                Ok(None) => return,
                Ok(Some(tcp)) => Ok(tcp),
                Err(e) => Err(e),
            },
            None if self.reconnect_at.is_some_and(|t| now >= t) => {
                match TcpTransport::connect_start(self.tcp_cfg.clone()) {
                    Ok(c) => {
                        self.connecting = Some(c);
                        return;
                    }
                    Err(e) => Err(e),
                }
            }
            None => return,
        };
        self.connecting = None;
        let attached = match made {
            Ok(tcp) => self.attach(tcp, now).is_ok(),
            Err(e) => {
                let timed_out = matches!(
                    &e,
                    hftnet_io::OpenError::Connect { cause, .. }
                        if cause.errno() == Some(libc::ETIMEDOUT)
                );
                self.figures.connect_timeouts += u64::from(timed_out);
                false
            }
        };
        if attached {
            self.reconnect_at = None;
            return;
        }
        self.figures.failed_attempts += 1;
        self.failed_in_a_row += 1;
        if self.failed_in_a_row >= self.max_attempts {
            self.ended = Some(TraderStop::ReconnectFailed);
        } else {
            self.backoff_ns = (self.backoff_ns * 2).min(MAX_BACKOFF.as_nanos() as u64);
            self.reconnect_at = Some(now + self.backoff_ns);
        }
    }
}

impl<S: Strategy> FeedListener for Engine<'_, S> {
    #[inline]
    fn top(&mut self, update: &TopUpdate, at: Trigger) {
        self.figures.md_while_connecting += u64::from(self.connecting.is_some());
        self.trader
            .handle_top(update, at, decision_time(at), &mut self.outbox);
        if !self.outbox.as_slice().is_empty() {
            self.flush();
        }
    }

    #[inline]
    fn trade(&mut self, trade: &TradeUpdate, at: Trigger) {
        self.figures.md_while_connecting += u64::from(self.connecting.is_some());
        self.trader
            .handle_trade(trade, at, decision_time(at), &mut self.outbox);
        if !self.outbox.as_slice().is_empty() {
            self.flush();
        }
    }

    fn poll(&mut self, now_ns: u64) -> bool {
        if now_ns >= self.next_service {
            self.next_service = now_ns.saturating_add(SERVICE_EVERY_NS);
            self.service(now_ns);
        }
        self.trader.handle_timer(now_ns, &mut self.outbox);
        if !self.outbox.as_slice().is_empty() {
            self.flush();
        }
        self.ended.is_some()
    }
}

/// The trader's `now` for a decision on market data: the trigger's
/// receive (`CLOCK_MONOTONIC`, read as the packet's handling started, or
/// the kernel's stamp, earlier by the socket queue), so the hot path reads
/// no clock of its own; the clock when the trigger has none.
#[inline]
fn decision_time(at: Trigger) -> u64 {
    if at.rx_ns != 0 {
        at.rx_ns
    } else {
        monotonic_ns()
    }
}

/// Checks the configuration and turns it into the session's pieces.
fn prepare(cfg: &TraderAppConfig) -> Result<(TcpConfig, ClientConfig), TraderConfigInvalid> {
    cfg.feed.validate()?;
    cfg.trader.validate()?;
    let bad_uri = |why: String| TraderConfigInvalid::Orders {
        uri: cfg.orders.clone(),
        why,
    };
    let uri = Uri::parse(&cfg.orders).map_err(|e| bad_uri(e.to_string()))?;
    if uri.scheme != "tcp" {
        return Err(bad_uri(format!(
            "scheme {:?}: order entry runs over tcp:// (e.g. tcp://198.18.0.1:7001)",
            uri.scheme
        )));
    }
    if let Some((_, v)) = uri.params.iter().find(|(k, _)| k == "framing")
        && v != "soupbin"
    {
        return Err(bad_uri(format!(
            "framing={v}: order entry is SoupBinTCP; leave framing out (soupbin is set)"
        )));
    }
    let mut tcp = TcpConfig::from_uri(&uri).map_err(|e| bad_uri(e.to_string()))?;
    tcp.framing = Framing::Soupbin;
    let user = Username::new(&cfg.username).map_err(|_| {
        TraderConfigInvalid::Login(format!(
            "username {:?}: 1 to 6 printable ASCII characters (SoupBinTCP's limit)",
            cfg.username
        ))
    })?;
    let pass = Password::new(&cfg.password).map_err(|_| {
        TraderConfigInvalid::Login(
            "the password must be 1 to 10 printable ASCII characters (SoupBinTCP's limit)"
                .to_string(),
        )
    })?;
    if cfg.username.is_empty() || cfg.password.is_empty() {
        return Err(TraderConfigInvalid::Login(
            "give USER:PASSWORD, both non-empty".to_string(),
        ));
    }
    if cfg.heartbeat < MIN_HEARTBEAT || cfg.heartbeat >= cfg.server_timeout {
        return Err(TraderConfigInvalid::Session(format!(
            "heartbeat {:?}: from {MIN_HEARTBEAT:?} to below the server timeout {:?}",
            cfg.heartbeat, cfg.server_timeout
        )));
    }
    let mut c = ClientConfig::new(user, pass);
    c.heartbeat_interval_ns = cfg.heartbeat.as_nanos() as u64;
    c.server_timeout_ns = cfg.server_timeout.as_nanos() as u64;
    c.validate()
        .map_err(|e| TraderConfigInvalid::Session(e.to_string()))?;
    for f in [cfg.kill_file.clone(), Some(kill_file_of(&cfg.state))]
        .into_iter()
        .flatten()
    {
        if f.exists() {
            return Err(TraderConfigInvalid::Session(format!(
                "the kill file {} exists (a kill switch was tripped): remove it to trade again",
                f.display()
            )));
        }
    }
    if cfg.max_reconnect_attempts == 0 {
        return Err(TraderConfigInvalid::Session(
            "max_reconnect_attempts is 0; accepted: 1 or more".to_string(),
        ));
    }
    Ok((tcp, c))
}

/// Checks a configuration without running it (the CLI's up-front check).
///
/// # Errors
/// The first field refused, named.
pub fn validate(cfg: &TraderAppConfig) -> Result<(), TraderConfigInvalid> {
    prepare(cfg)?;
    read_state(&cfg.state)?;
    Ok(())
}

/// Runs the trader: connects and logs in to the exchange, then the feed
/// handler's loop with the trader as its listener, until the feed ends
/// (duration, idle timeout, end of session), `stop` is set, the exchange
/// ends the session, or reconnection fails; then cancels every open order,
/// waits up to [`DRAIN`] for the answers, logs out and reports. `kill`
/// (set it from a signal handler) trips the kill switch.
///
/// # Errors
/// [`TraderError`]: a configuration field, the first connection or login,
/// the state file. Everything after the first login is counted in the
/// report.
pub fn run_trader<S, A, B, R>(
    cfg: &TraderAppConfig,
    strategy: S,
    io: Transports<'_, A, B, R>,
    stop: &AtomicBool,
    kill: &AtomicBool,
) -> Result<TraderRun, TraderError>
where
    S: Strategy,
    A: Lease,
    B: Lease,
    R: Transport,
{
    let (tcp_cfg, client_cfg) = prepare(cfg)?;
    let stored = read_state(&cfg.state)?;
    let mut trader =
        Trader::new(cfg.trader.clone(), strategy).map_err(TraderConfigInvalid::from)?;
    trader.refs_mut().restore(stored);
    trader.set_connected(false);
    // The session's history (earlier runs of this state file) comes first.
    trader.begin_recovery();
    let mut feed = FeedHandlerApp::new(&cfg.feed)?;
    let max_open = cfg.trader.risk.max_open_orders as usize;
    let session = OrderSession::new(OrderSessionConfig {
        client: client_cfg,
        resend_ring: RESEND_RING,
        held: 2 * max_open + 64,
        query_wait_ns: QUERY_WAIT_NS,
    })
    .map_err(|e| TraderConfigInvalid::Session(e.to_string()))?;
    let backoff = (cfg.reconnect_backoff.as_nanos() as u64).max(1);
    let mut e = Engine {
        trader,
        outbox: Outbox::default(),
        session,
        tcp: None,
        tcp_cfg,
        figures: SessionFigures::default(),
        tx: vec![0u8; 65_537].into_boxed_slice(),
        burst: RxBurst::new(RX_BURST, RX_SLOT),
        t2t: LatencyStats::new(),
        t2t_samples: 0,
        t2t_call: LatencyStats::new(),
        t2t_return: LatencyStats::new(),
        awaited: std::collections::VecDeque::with_capacity(STAMPS_PENDING),
        realtime_offset_ns: feed.realtime_offset_ns(),
        stamps: StampFigures::default(),
        unread_stamps: false,
        state: StateFile::new(&cfg.state),
        mark: stored,
        kill_flag: kill,
        kill_files: [cfg.kill_file.clone(), Some(kill_file_of(&cfg.state))],
        next_kill_check: 0,
        killed: None,
        reconnect_at: None,
        next_service: 0,
        connecting: None,
        backoff_ns: backoff,
        first_backoff_ns: backoff,
        failed_in_a_row: 0,
        max_attempts: cfg.max_reconnect_attempts,
        ended: None,
        error: None,
    };
    // The first mark, before any number is used.
    e.persist();
    if let Some(err) = e.error.take() {
        return Err(TraderError::State {
            path: cfg.state.clone(),
            why: err,
        });
    }
    // The first connection and login, synchronously.
    let now = monotonic_ns();
    e.connect(now).map_err(|why| TraderError::Connect {
        uri: cfg.orders.clone(),
        why,
    })?;
    let deadline = Instant::now() + cfg.login_timeout;
    while !e.session.is_ready() {
        e.service(monotonic_ns());
        if e.ended == Some(TraderStop::LoginRejected) {
            let why = e
                .session
                .close_reason()
                .map_or_else(|| "rejected".to_string(), |r| format!("{r:?}"));
            return Err(TraderError::LoginRejected(why));
        }
        if e.tcp.is_none() || Instant::now() >= deadline {
            return Err(TraderError::LoginTimeout(cfg.login_timeout));
        }
        std::thread::yield_now();
    }
    feed.run_with(io, stop, &mut e)?;
    let stopped = e.ended.unwrap_or(TraderStop::Feed);
    // The end: cancel what is open, wait for the answers, log out.
    if e.trader.open_orders() > 0 {
        e.kill(if stop.load(Ordering::Relaxed) {
            "stop"
        } else {
            "end of run"
        });
        let deadline = Instant::now() + DRAIN;
        while e.trader.open_orders() > 0 && e.tcp.is_some() && Instant::now() < deadline {
            e.service(monotonic_ns());
            std::thread::yield_now();
        }
    }
    e.session.logout();
    e.pump_out(monotonic_ns());
    // The last orders' stamps (taken during their sends: already queued).
    e.read_stamps();
    e.stamps.missing += e.awaited.len() as u64;
    e.awaited.clear();
    let tick_to_trade = e.t2t.clone();
    let tick_to_send_call = e.t2t_call.clone();
    let tick_to_send_return = e.t2t_return.clone();
    Ok(TraderRun {
        report: report(e, stopped, feed.report()),
        tick_to_trade,
        tick_to_send_call,
        tick_to_send_return,
    })
}

fn report<S: Strategy>(
    e: Engine<'_, S>,
    stopped: TraderStop,
    feed: FeedHandlerReport,
) -> TraderReport {
    let c = e.session.client_counters();
    let o = *e.session.counters();
    let next_sequence = e.session.next_expected();
    let b = c.traffic.bad_frames;
    let bad = b.zero_length
        + b.too_long
        + b.unknown_type
        + b.bad_length
        + b.bad_field
        + b.wrong_direction
        + b.before_login
        + b.login_after_login;
    let session = SessionFigures {
        sequenced_in: c.sequenced_in,
        duplicates: c.duplicates,
        missing: c.missing,
        next_sequence,
        heartbeats_in: c.traffic.heartbeats_in,
        heartbeats_out: c.traffic.heartbeats_out,
        unsequenced_out: c.traffic.unsequenced_out,
        bad_frames: bad,
        server_timeouts: c.server_timeouts,
        state_writes: e.state.writes,
        connections: o.connections,
        reconnects: o.logins.saturating_sub(1),
        drops: o.drops,
        logins: o.logins,
        send_failures: o.send_failures,
        held_sent: o.held_sent,
        resent: o.resent,
        held_overflow: o.held_overflow,
        encode_errors: o.encode_errors,
        ..e.figures
    };
    let t = &e.trader;
    let a = t.accounting();
    let k = t.counters();
    let rc = t.risk_counters();
    let positions = t
        .symbols()
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let p = t.position(i as u16)?;
            let (bought, sold, _) = p.volume();
            Some(SymbolPosition {
                symbol: s.to_string(),
                shares: p.shares(),
                bought,
                sold,
                realized: p.realized(),
                unrealized: t.top(i as u16).and_then(|top| p.unrealized(top)),
            })
        })
        .collect();
    TraderReport {
        stopped,
        feed,
        orders: OrderFigures {
            sent: a.sent,
            accepted: a.accepted,
            rejected: a.rejected,
            pending: a.pending,
            enters: k.enters_sent,
            replaces: k.replaces_sent,
            cancels: k.cancels_sent,
            executions: k.executions,
            executed_shares: k.executed_shares,
            unexpected: k.unexpected,
            open_at_end: t.open_orders(),
            recovered_orders: k.recovered_orders,
            recovered_replaces: k.recovered_replaces,
            recovered_rejects: k.recovered_rejects,
            recovered_fills: k.recovered_fills,
            recovered_open: k.recovered_open,
            recovered_late: k.recovered_late,
        },
        risk_refusals: RiskReject::ALL
            .iter()
            .map(|r| (r.name().to_string(), rc.of(*r)))
            .collect(),
        risk_passed: rc.passed,
        exchange_messages: *e.session.inbox().counters(),
        session,
        kill_switch: e.killed,
        user_ref_num_last: t.refs().last(),
        user_ref_num_mark: e.mark,
        tops: k.tops,
        positions,
        realized: t.realized(),
        tick_to_trade_internal_ns: e.t2t.summary(),
        tick_to_trade_internal_end: if e.tcp_cfg.tx_timestamps {
            END_TX_STAMP
        } else {
            END_SEND_RETURN
        },
        tick_to_trade_samples: e.t2t_samples,
        tick_to_send_call_ns: e.t2t_call.summary(),
        tick_to_send_return_ns: e.t2t_return.summary(),
        tx_stamps: e.stamps,
        error: e.error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("hftnet-trader-unit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// A transmit stamp settles exactly the awaited orders at or before
    /// its key, across the wrap of the keys at 2³²; later ones wait; an
    /// order coalesced into a later send's segment is recorded at that
    /// stamp and counted; a stamp before its trigger is counted, not
    /// recorded.
    #[test]
    fn stamps_settle_the_orders_they_cover_across_the_wrap() {
        use std::collections::VecDeque;
        let a = |key: u32, rx_ns: u64| AwaitedStamp { key, rx_ns };
        let mut q: VecDeque<_> = [
            a(u32::MAX - 60, 100),
            a(u32::MAX - 2, 200),
            a(40, 300),
            a(95, 400),
        ]
        .into();
        let mut f = StampFigures::default();
        let mut got = Vec::new();
        // The first order's own stamp.
        settle(&mut q, u32::MAX - 60, 1_100, &mut f, |ns| got.push(ns));
        assert_eq!((got.as_slice(), q.len(), f.coalesced), (&[1_000][..], 3, 0));
        // A stamp past the wrap (key 40) covers the second order (coalesced
        // into it) and the third (its own); the fourth (95) waits.
        settle(&mut q, 40, 2_300, &mut f, |ns| got.push(ns));
        assert_eq!(got, [1_000, 2_100, 2_000]);
        assert_eq!((q.len(), f.coalesced), (1, 1));
        assert_eq!(q.front(), Some(&a(95, 400)));
        // A stamp of a send before it (a heartbeat, key 60) settles nothing.
        settle(&mut q, 60, 2_400, &mut f, |ns| got.push(ns));
        assert_eq!((got.len(), q.len()), (3, 1));
        // A stamp earlier than the trigger: counted, not recorded.
        settle(&mut q, 95, 399, &mut f, |ns| got.push(ns));
        assert_eq!((got.len(), q.len(), f.negative), (3, 0, 1));
    }

    #[test]
    fn state_file_round_trip_and_bad_content() {
        let d = dir("state");
        let p = d.join("state");
        assert_eq!(read_state(&p).unwrap(), 0, "absent: start from 0");
        let mut f = StateFile::new(&p);
        for mark in [1, 1_024, u32::MAX] {
            f.store(mark).unwrap();
            assert_eq!(read_state(&p).unwrap(), mark);
        }
        assert_eq!(f.writes, 3);
        assert!(!f.tmp.exists(), "the temporary file was renamed");
        for bad in [
            "",
            "garbage",
            "user_ref_num_mark x",
            "user_ref_num_mark 4294967296",
        ] {
            fs::write(&p, bad).unwrap();
            let e = read_state(&p).unwrap_err().to_string();
            assert!(e.contains("expected `user_ref_num_mark N`"), "{bad:?}: {e}");
        }
        assert_eq!(kill_file_of(&p), d.join("state.kill"));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn bad_configs_are_named() {
        let d = dir("cfg");
        let ok = TraderAppConfig {
            trader: TraderConfig {
                symbols: vec!["AAPL".into()],
                ..TraderConfig::default()
            },
            orders: "tcp://127.0.0.1:7001".into(),
            username: "user".into(),
            password: "pass".into(),
            state: d.join("state"),
            ..TraderAppConfig::default()
        };
        validate(&ok).unwrap();
        let cases: [(TraderAppConfig, &str); 8] = [
            (
                TraderAppConfig {
                    orders: "udp://127.0.0.1:7001".into(),
                    ..ok.clone()
                },
                "order entry runs over tcp://",
            ),
            (
                TraderAppConfig {
                    orders: "tcp://127.0.0.1:7001?framing=len32".into(),
                    ..ok.clone()
                },
                "framing=len32",
            ),
            (
                TraderAppConfig {
                    username: "seven77".into(),
                    ..ok.clone()
                },
                "1 to 6",
            ),
            (
                TraderAppConfig {
                    password: "eleven-char".into(),
                    ..ok.clone()
                },
                "1 to 10",
            ),
            (
                TraderAppConfig {
                    username: String::new(),
                    ..ok.clone()
                },
                "",
            ),
            (
                TraderAppConfig {
                    max_reconnect_attempts: 0,
                    ..ok.clone()
                },
                "max_reconnect_attempts",
            ),
            (
                TraderAppConfig {
                    server_timeout: Duration::from_millis(500),
                    ..ok.clone()
                },
                "below the server timeout 500ms",
            ),
            (
                TraderAppConfig {
                    heartbeat: Duration::from_micros(5),
                    ..ok.clone()
                },
                "heartbeat 5µs: from 10µs",
            ),
        ];
        for (c, want) in cases {
            let e = validate(&c).unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        fs::write(kill_file_of(&ok.state), b"").unwrap();
        let e = validate(&ok).unwrap_err().to_string();
        assert!(e.contains("kill file"), "{e}");
        let _ = fs::remove_dir_all(&d);
    }
}
