//! The trader's end of the order-entry session, sans IO: OUCH 5.0 over a
//! SoupBinTCP 4 client connection, with what makes a reconnect lose and
//! duplicate nothing. The apps' trader loop (`hftnet_apps::trader`) and the
//! deterministic day simulation (`tests/day_sim.rs`) both drive this one
//! [`OrderSession`]; they differ only in where the bytes go.
//!
//! Layer: trade (sans IO). Bytes read and `now` go in; bytes to write and
//! [`SessionEvent`]s come out. Nothing here opens a socket, reads a clock
//! (the one clock read of a send is the caller's closure, see
//! [`OrderSession::send_order`]) or allocates per order: the resend ring
//! and the held cancels are allocated when the session is built.
//!
//! # What it owns, and why it owns the connection
//!
//! [`OrderSession`] owns the [`ClientConnection`] of the current TCP
//! connection (the caller owns the socket), the configuration of the next
//! one, the [`Inbox`] that applies the exchange's messages to the
//! [`Trader`], the ring of the last enters and replaces sent, the cancels
//! held while the session is down, the Account Query wait and its
//! deadline, and the highest UserRefNum the exchange answered. It owns the
//! connection rather than working beside it because the rules below bind
//! the two together: the Account Query must be the first order-entry
//! message on a connection after its login, the resend must follow its
//! answer on that same connection, and no order may leave on a connection
//! whose query is unanswered. With the connection inside, the only way to
//! send is [`OrderSession::send_order`], which knows the state, and a lost
//! connection clears the wait in the same call that drops it.
//!
//! # The rules
//!
//! - **Orders while disconnected are refused, not queued**: the session
//!   tells the [`Trader`] whether it is up ([`Trader::set_connected`]); it
//!   is up only once the steps below are done. Cancels (which only reduce
//!   risk) decided while it is down are *held* and sent after the next
//!   login; an enter or replace offered then is refused
//!   ([`Unsent::NotReady`], counted: the trader refuses them first).
//! - **After each login** an Account Query is sent (the first order-entry
//!   message of the connection) and the session waits for its answer, the
//!   exchange's next UserRefNum `next`. Only an answer read after the query
//!   was handed to [`OrderSession::poll_transmit`] counts: one read before
//!   (a replayed earlier run's answer, after a restart's login from
//!   sequence number 1) answers nothing of ours. Then, in this order:
//!   every enter and replace of the resend ring numbered `next` or above is
//!   sent again with its own number (they were lost with the old connection
//!   — in the kernel's buffers or on the wire; OUCH ignores a number not
//!   above the last it processed, so nothing is entered twice, and the
//!   answers come once through the resumed sequenced stream); the recovery
//!   of a restarted trader ends ([`Trader::end_recovery`], its cancels
//!   sent when the kill switch was tripped during it); the held cancels are
//!   sent; the trader is told it is connected. Cancels offered before that
//!   are held too, so a cancel never overtakes the resend of its order.
//! - **No answer** within [`OrderSessionConfig::query_wait_ns`]: the resend
//!   starts above the highest UserRefNum the exchange answered (an Order
//!   Accepted, Replaced, Canceled, Executed or Rejected read on any
//!   connection of this session).
//! - **A write that failed** ([`OrderSession::write_failed`]): a cancel is
//!   held; an enter or replace is in the ring and resent after the next
//!   login like every other the exchange did not process. The caller then
//!   drops the connection ([`OrderSession::connection_lost`]).
//!
//! # Driving it
//!
//! As [`ClientConnection`], with the trader passed in where it is needed:
//! 1. [`OrderSession::connect`] when a TCP connection is made (the Login
//!    Request is queued), [`OrderSession::connection_lost`] when it broke
//!    (the next [`OrderSession::connect`] resumes at the next expected
//!    sequence number);
//! 2. [`OrderSession::handle_input`] with every chunk read; the exchange's
//!    messages are applied to the trader and reported as
//!    [`SessionEvent::Message`];
//! 3. [`OrderSession::handle_timeout`] when `now` reached
//!    [`OrderSession::poll_timeout`] (a silent server, the query deadline);
//! 4. [`OrderSession::poll_transmit`] after every input and timeout, **until
//!    it returns 0**, writing its bytes in order (the login, heartbeats, the
//!    Account Query, the resend, the held cancels — as many whole frames as
//!    `buf` holds per call);
//! 5. [`OrderSession::send_order`] for each message of the trader's outbox,
//!    writing the frame it returns.
//!
//! A sketch with the exchange's end in the same process:
//!
//! ```
//! use hftnet_trade::session::{OrderSession, OrderSessionConfig, SessionEvent};
//! use hftnet_trade::soupbin::{ClientConfig, Server, ServerConfig};
//! use hftnet_trade::strategy::{Taker, TakerConfig};
//! use hftnet_trade::trader::{Trader, TraderConfig};
//! use hftnet_wire::soupbintcp::{Password, Session, Username};
//!
//! let (user, pass) = (Username::new("alice")?, Password::new("secret")?);
//! let mut server = Server::new(ServerConfig::new(user, pass))?;
//! server.open(Session::new("DAY")?, None)?;
//! let cfg = TraderConfig { symbols: vec!["AAPL".into()], ..TraderConfig::default() };
//! let taker = Taker::new(TakerConfig::default(), &cfg.symbol_table()?)?;
//! let mut trader = Trader::new(cfg, taker)?;
//! let mut session = OrderSession::new(OrderSessionConfig::new(ClientConfig::new(user, pass)))?;
//! let mut buf = vec![0u8; 65_537];
//!
//! let now = 0;
//! session.connect(now, &mut trader)?;
//! let mut conn = server.connect(now);
//! let n = session.poll_transmit(now, &mut trader, &mut buf); // the Login Request
//! conn.handle_input(now, &buf[..n], &server, |_| {});
//! let n = conn.poll_transmit(now, &server, &mut buf); // the Login Accepted
//! let mut logged_in = false;
//! session.handle_input(now, &buf[..n], &mut trader, |e| {
//!     logged_in |= matches!(e, SessionEvent::LoggedIn { .. });
//! });
//! assert!(logged_in && !session.is_ready(), "orders wait for the Account Query's answer");
//! let n = session.poll_transmit(now, &mut trader, &mut buf);
//! assert_eq!(&buf[..n], b"\x00\x02UQ", "the Account Query, first");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use hftnet_wire::soupbintcp::{RejectReason, Session};

use crate::orders::{ExchangeEvent, OrderMsg};
use crate::ouch::{self, Decoded, Inbox};
use crate::soupbin::{
    ClientConfig, ClientConnection, ClientCounters, ClientEvent, CloseReason, ConfigError,
    SendError,
};
use crate::strategy::Strategy;
use crate::trader::{Outbox, Trader};

#[cfg(test)]
mod tests;

/// Enters and replaces remembered for the resend after a reconnect, by
/// default.
pub const RESEND_RING: usize = 4_096;
/// How long a login waits for the Account Query Response, by default,
/// before the resend falls back to the highest UserRefNum answered.
pub const QUERY_WAIT_NS: u64 = 200_000_000;

/// What an [`OrderSession`] runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderSessionConfig {
    /// The first connection's login (credentials, session, sequence
    /// number, timers).
    pub client: ClientConfig,
    /// Enters and replaces remembered for the resend (the last this many
    /// sent); at least 1.
    pub resend_ring: usize,
    /// Cancels held while the session is down, at most (more are counted
    /// in [`OrderSessionCounters::held_overflow`] and lost); at least 1.
    pub held: usize,
    /// How long a login waits for the Account Query Response, ns; at
    /// least 1.
    pub query_wait_ns: u64,
}

impl OrderSessionConfig {
    /// `client` with a [`RESEND_RING`] ring, 1,024 held cancels and a
    /// [`QUERY_WAIT_NS`] wait.
    #[must_use]
    pub const fn new(client: ClientConfig) -> Self {
        Self {
            client,
            resend_ring: RESEND_RING,
            held: 1_024,
            query_wait_ns: QUERY_WAIT_NS,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), SessionConfigError> {
        self.client.validate().map_err(SessionConfigError::Client)?;
        let bad = |field, why| Err(SessionConfigError::Field { field, why });
        if self.resend_ring == 0 {
            return bad("resend_ring", "must be at least 1");
        }
        if self.held == 0 {
            return bad("held", "must be at least 1");
        }
        if self.query_wait_ns == 0 {
            return bad("query_wait_ns", "must be positive");
        }
        Ok(())
    }
}

/// An [`OrderSessionConfig`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionConfigError {
    /// The SoupBinTCP client's configuration.
    Client(ConfigError),
    /// A field of the order session.
    Field {
        /// The field.
        field: &'static str,
        /// What is allowed.
        why: &'static str,
    },
}

impl fmt::Display for SessionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(e) => e.fmt(f),
            Self::Field { field, why } => write!(f, "order session {field}: {why}"),
        }
    }
}

impl std::error::Error for SessionConfigError {}

/// What the session tells its owner while it handles input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The login was accepted; the Account Query is queued (orders wait
    /// for its answer).
    LoggedIn {
        /// The session logged into.
        session: Session,
        /// The next sequence number the server sends.
        sequence: u64,
    },
    /// The login was refused; the connection is closed.
    LoginRejected(RejectReason),
    /// One sequenced message from the exchange, applied to the trader
    /// (each sequence number once across connections).
    Message {
        /// Its sequence number.
        sequence: u64,
        /// What it was (`None`: malformed, counted by the [`Inbox`]).
        decoded: Option<Decoded>,
    },
    /// Messages the server will not send (it lost them, or the request was
    /// beyond its stream).
    Gap {
        /// First missing sequence number.
        first: u64,
        /// How many.
        count: u64,
    },
    /// The session ended; the connection is closed.
    EndOfSession,
}

/// Counters of an [`OrderSession`] over all its connections; plain
/// integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderSessionCounters {
    /// Connections started ([`OrderSession::connect`]).
    pub connections: u64,
    /// Logins accepted.
    pub logins: u64,
    /// Connections lost ([`OrderSession::connection_lost`] with one open).
    pub drops: u64,
    /// Account Query answers that settled a login.
    pub queries_answered: u64,
    /// Logins settled without an answer, at the deadline.
    pub query_timeouts: u64,
    /// Enters and replaces sent again after a login.
    pub resent: u64,
    /// Cancels held while the session was down (or behind a failed write)
    /// and sent after a login.
    pub held_sent: u64,
    /// Cancels that did not fit the held buffer (lost; their orders stay
    /// open).
    pub held_overflow: u64,
    /// Enters and replaces offered while the session was not up (refused;
    /// the trader refuses them first, so this stays 0).
    pub not_ready: u64,
    /// Messages that could not be framed ([`OrderSession::send_order`]'s
    /// buffer too small) or whose write failed.
    pub send_failures: u64,
    /// Messages that could not be encoded (a bug if ever non-zero).
    pub encode_errors: u64,
}

impl OrderSessionCounters {
    /// Adds `other` into `self`, field by field (to total the sessions of
    /// several processes).
    pub fn add(&mut self, other: &Self) {
        self.connections += other.connections;
        self.logins += other.logins;
        self.drops += other.drops;
        self.queries_answered += other.queries_answered;
        self.query_timeouts += other.query_timeouts;
        self.resent += other.resent;
        self.held_sent += other.held_sent;
        self.held_overflow += other.held_overflow;
        self.not_ready += other.not_ready;
        self.send_failures += other.send_failures;
        self.encode_errors += other.encode_errors;
    }
}

/// A message framed by [`OrderSession::send_order`]: write
/// `buf[..len]` to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed {
    /// Bytes to write (whole SoupBinTCP frames).
    pub len: usize,
    /// The time the caller's clock gave, after the encoding and before the
    /// framing.
    pub now: u64,
}

/// Why [`OrderSession::send_order`] framed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsent {
    /// A cancel while the session is not up: held, sent after the next
    /// login's resend.
    Held,
    /// A cancel while the session is not up, and the held buffer full:
    /// lost (counted).
    HeldOverflow,
    /// An enter or replace while the session is not up: refused (counted).
    NotReady,
    /// The message could not be encoded (counted).
    Encode,
    /// The frame did not fit `buf` (counted).
    Frame(SendError),
}

/// Where the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No connection, or not logged in yet.
    Down,
    /// Logged in; the Account Query queued (`sent` once handed out),
    /// orders wait until its answer or `deadline`.
    Query { deadline: u64, sent: bool },
    /// The exchange's next UserRefNum is `next`: the resend, the recovery's
    /// cancels and the held cancels are being handed out, from `step`.
    Flush { next: u32, step: Step },
    /// Orders flow.
    Ready,
}

/// The position in the flush after a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The `k`-th oldest entry of the ring.
    Resend(usize),
    /// The recovery has not been ended yet.
    EndRecovery,
    /// The `i`-th cancel of the ended recovery, then the `i`-th cancel sent
    /// again ([`Trader::recancel_unanswered`]).
    Recovery(usize),
    /// The `i`-th held cancel.
    Held(usize),
}

/// The trader's end of the order-entry session; see the module
/// documentation for the rules and the calling order.
#[derive(Debug, Clone)]
pub struct OrderSession {
    config: OrderSessionConfig,
    conn: Option<ClientConnection>,
    /// The configuration of the next connection.
    next_cfg: ClientConfig,
    /// Counters of the closed connections.
    closed: ClientCounters,
    inbox: Inbox,
    phase: Phase,
    /// The last `resend_ring` enters and replaces framed, oldest at
    /// `ring_next` once full.
    ring: Vec<OrderMsg>,
    ring_next: usize,
    held: Vec<OrderMsg>,
    /// Cancels of a recovery that ended during a kill.
    recovery: Vec<OrderMsg>,
    outbox: Outbox,
    /// The highest UserRefNum the exchange answered.
    max_answered: u32,
    /// The trader was recovering when this connection started: the query's
    /// deadline then sends the query again instead of giving up on it (a
    /// recovery must end at the answer, after the whole replay).
    recovering: bool,
    enc: [u8; ouch::MAX_ORDER_LEN],
    counters: OrderSessionCounters,
}

impl OrderSession {
    /// A session without a connection yet. Allocates the resend ring and
    /// the held buffer.
    ///
    /// # Errors
    /// The first field of [`OrderSessionConfig::validate`] out of range.
    pub fn new(config: OrderSessionConfig) -> Result<Self, SessionConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            conn: None,
            next_cfg: config.client,
            closed: ClientCounters::default(),
            inbox: Inbox::new(),
            phase: Phase::Down,
            ring: Vec::with_capacity(config.resend_ring),
            ring_next: 0,
            held: Vec::with_capacity(config.held),
            recovery: Vec::with_capacity(config.held),
            outbox: Outbox::default(),
            max_answered: 0,
            recovering: false,
            enc: [0; ouch::MAX_ORDER_LEN],
            counters: OrderSessionCounters::default(),
        })
    }

    /// A TCP connection was made at `now`: a SoupBinTCP connection starts
    /// on it with the next connection's configuration (the Login Request
    /// queued for [`OrderSession::poll_transmit`]); the trader is told the
    /// session is down until the login is settled. A connection still open
    /// is taken as lost first.
    ///
    /// # Errors
    /// The Login Request cannot be written (a session name the Login
    /// Accepted gave that is not printable).
    pub fn connect<S: Strategy>(
        &mut self,
        now: u64,
        trader: &mut Trader<S>,
    ) -> Result<(), ConfigError> {
        if self.conn.is_some() {
            self.connection_lost(trader);
        }
        self.conn = Some(ClientConnection::new(self.next_cfg, now)?);
        self.counters.connections += 1;
        self.phase = Phase::Down;
        self.recovering = trader.recovering();
        trader.set_connected(false);
        Ok(())
    }

    /// The connection broke (the peer closed, a read or write failed, the
    /// server was silent): the next [`OrderSession::connect`] resumes at
    /// the next expected sequence number; orders are refused and cancels
    /// held until the next login is settled.
    pub fn connection_lost<S: Strategy>(&mut self, trader: &mut Trader<S>) {
        if let Some(c) = self.conn.take() {
            self.next_cfg = c.reconnect_config();
            self.closed.add(&c.counters());
            self.counters.drops += 1;
        }
        self.phase = Phase::Down;
        trader.set_connected(false);
    }

    /// Whether a connection is open (from [`OrderSession::connect`] to
    /// [`OrderSession::connection_lost`]; it may have closed meanwhile, see
    /// [`OrderSession::close_reason`]).
    #[must_use]
    pub const fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether orders flow: logged in, the Account Query answered (or
    /// given up on) and the resend and held cancels handed out.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready && self.conn.as_ref().is_some_and(|c| c.is_logged_in())
    }

    /// Whether the connection is logged in (orders may still wait for the
    /// Account Query's answer).
    #[must_use]
    pub fn is_logged_in(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(ClientConnection::is_logged_in)
    }

    /// Whether a login waits for the Account Query's answer.
    #[must_use]
    pub const fn is_querying(&self) -> bool {
        matches!(self.phase, Phase::Query { .. })
    }

    /// Why the open connection is over, once it is: write what
    /// [`OrderSession::poll_transmit`] still returns, then close the
    /// socket and call [`OrderSession::connection_lost`] (or end the run:
    /// a refused login, the end of the session).
    #[must_use]
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.conn.as_ref().and_then(ClientConnection::close_reason)
    }

    /// The next sequence number expected from the exchange.
    #[must_use]
    pub fn next_expected(&self) -> u64 {
        self.conn
            .as_ref()
            .map_or(self.next_cfg.next_sequence, ClientConnection::next_expected)
    }

    /// The highest UserRefNum the exchange answered.
    #[must_use]
    pub const fn max_answered(&self) -> u32 {
        self.max_answered
    }

    /// The session's counters.
    #[must_use]
    pub const fn counters(&self) -> &OrderSessionCounters {
        &self.counters
    }

    /// The SoupBinTCP counters of every connection, the open one included.
    #[must_use]
    pub fn client_counters(&self) -> ClientCounters {
        let mut c = self.closed;
        if let Some(conn) = &self.conn {
            c.add(&conn.counters());
        }
        c
    }

    /// The exchange's messages by kind.
    #[must_use]
    pub const fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Queues a Logout Request; the connection closes once
    /// [`OrderSession::poll_transmit`] handed it out.
    pub fn logout(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            c.logout();
        }
    }

    /// When to call [`OrderSession::handle_timeout`] (a silent server, the
    /// query deadline) or [`OrderSession::poll_transmit`] (a heartbeat)
    /// next; `None` without an open connection.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let t = self.conn.as_ref()?.poll_timeout()?;
        Some(match self.phase {
            Phase::Query { deadline, .. } => t.min(deadline),
            _ => t,
        })
    }

    /// Gives up on a silent server (returns [`CloseReason::PeerTimeout`]
    /// when it did now), and on the Account Query's answer at its
    /// deadline: the resend then starts above the highest UserRefNum
    /// answered (handed out by the next [`OrderSession::poll_transmit`]).
    pub fn handle_timeout(&mut self, now: u64) -> Option<CloseReason> {
        let conn = self.conn.as_mut()?;
        let closed = if conn.poll_timeout().is_some_and(|t| now >= t) {
            conn.handle_timeout(now)
        } else {
            None
        };
        if let Phase::Query { deadline, .. } = self.phase
            && now >= deadline
            && conn.is_logged_in()
        {
            self.counters.query_timeouts += 1;
            self.phase = if self.recovering {
                // A restarted trader's history may still be arriving: ask
                // again and keep waiting (orders stay refused).
                Phase::Query {
                    deadline: now.saturating_add(self.config.query_wait_ns),
                    sent: false,
                }
            } else {
                Phase::Flush {
                    next: self.max_answered.saturating_add(1),
                    step: Step::Resend(0),
                }
            };
        }
        closed
    }

    /// Handles bytes read from the socket (any amount): sequenced messages
    /// are applied to `trader` and reported with the rest to `on_event`.
    /// Input without an open connection is ignored.
    pub fn handle_input<S: Strategy>(
        &mut self,
        now: u64,
        bytes: &[u8],
        trader: &mut Trader<S>,
        mut on_event: impl FnMut(SessionEvent),
    ) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let (inbox, phase, max_answered, counters) = (
            &mut self.inbox,
            &mut self.phase,
            &mut self.max_answered,
            &mut self.counters,
        );
        let wait = self.config.query_wait_ns;
        conn.handle_input(now, bytes, |e| match e {
            ClientEvent::Sequenced { sequence, message } => {
                let decoded = inbox.handle(message, trader);
                match decoded {
                    Some(Decoded::Event(ev)) => *max_answered = (*max_answered).max(answered(&ev)),
                    // Only an answer read after this login's query left
                    // counts (one before is a replayed earlier run's).
                    Some(Decoded::NextUserRefNum(next))
                        if matches!(phase, Phase::Query { sent: true, .. }) =>
                    {
                        counters.queries_answered += 1;
                        *phase = Phase::Flush {
                            next,
                            step: Step::Resend(0),
                        };
                    }
                    _ => {}
                }
                on_event(SessionEvent::Message { sequence, decoded });
            }
            ClientEvent::LoggedIn { session, sequence } => {
                counters.logins += 1;
                *phase = Phase::Query {
                    deadline: now.saturating_add(wait),
                    sent: false,
                };
                on_event(SessionEvent::LoggedIn { session, sequence });
            }
            ClientEvent::LoginRejected(r) => on_event(SessionEvent::LoginRejected(r)),
            ClientEvent::Gap { first, count } => on_event(SessionEvent::Gap { first, count }),
            ClientEvent::EndOfSession => on_event(SessionEvent::EndOfSession),
            // The exchange sends OUCH sequenced only.
            ClientEvent::Unsequenced(_) => {}
        });
        // Closed by what came in (End of Session, a logout's answer, a bad
        // stream): nothing more can leave on it, so the trader refuses new
        // orders from now on instead of counting them pending.
        if conn.close_reason().is_some() && self.phase != Phase::Down {
            self.phase = Phase::Down;
            trader.set_connected(false);
        }
    }

    /// Writes what is due into `buf` and returns its length (whole
    /// frames; write them to the socket, in order): the Login Request, a
    /// heartbeat, a Logout Request; after a login the Account Query; once
    /// it is answered (or given up on) the resend, the cancels of an ended
    /// recovery, the held cancels — as many as fit, the rest in the next
    /// calls — after which the trader is told it is connected. Call it
    /// until it returns 0. `buf` must hold the longest order frame (65,537
    /// bytes always do).
    pub fn poll_transmit<S: Strategy>(
        &mut self,
        now: u64,
        trader: &mut Trader<S>,
        buf: &mut [u8],
    ) -> usize {
        let Some(conn) = self.conn.as_mut() else {
            return 0;
        };
        let mut n = conn.poll_transmit(now, buf);
        if !conn.is_logged_in() {
            return n;
        }
        match self.phase {
            Phase::Query {
                deadline,
                sent: false,
            } => {
                if let Ok(k) = conn.send_unsequenced(now, &ouch::ACCOUNT_QUERY, &mut buf[n..]) {
                    n += k;
                    self.phase = Phase::Query {
                        deadline,
                        sent: true,
                    };
                }
            }
            Phase::Flush { next, step } => n += self.flush(now, next, step, trader, &mut buf[n..]),
            _ => {}
        }
        n
    }

    /// The flush after a login, from `step`, into `buf`; returns the
    /// bytes written. Ends in [`Phase::Ready`] once everything went out.
    fn flush<S: Strategy>(
        &mut self,
        now: u64,
        next: u32,
        mut step: Step,
        trader: &mut Trader<S>,
        buf: &mut [u8],
    ) -> usize {
        let mut n = 0;
        loop {
            let m = match step {
                Step::Resend(k) => {
                    let len = self.ring.len();
                    if k >= len {
                        step = Step::EndRecovery;
                        continue;
                    }
                    let first = if len < self.config.resend_ring {
                        0
                    } else {
                        self.ring_next
                    };
                    let m = self.ring[(first + k) % len];
                    if user_ref_num(&m).is_none_or(|u| u < next) {
                        step = Step::Resend(k + 1);
                        continue;
                    }
                    m
                }
                Step::EndRecovery => {
                    // The history came before the answer: the recovery of
                    // a restarted trader ends (a kill during it cancels the
                    // orders adopted since).
                    // Cancels that went out and were never answered (lost
                    // with the old connection, or with a flush that failed
                    // to leave): again, beside the held ones — before the
                    // recovery's own cancels below, which are new.
                    let mut from = Some(0);
                    while let Some(f) = from {
                        self.outbox.clear();
                        from = trader.recancel_unanswered(&mut self.outbox, f, &self.held);
                        self.recovery.extend_from_slice(self.outbox.as_slice());
                    }
                    self.outbox.clear();
                    self.recovering = false;
                    let mut left = trader.end_recovery(&mut self.outbox);
                    self.recovery.extend_from_slice(self.outbox.as_slice());
                    while left > 0 {
                        self.outbox.clear();
                        left = trader.cancel_all(&mut self.outbox);
                        self.recovery.extend_from_slice(self.outbox.as_slice());
                    }
                    self.outbox.clear();
                    step = Step::Recovery(0);
                    continue;
                }
                Step::Recovery(i) => match self.recovery.get(i) {
                    Some(m) => *m,
                    None => {
                        step = Step::Held(0);
                        continue;
                    }
                },
                Step::Held(i) => match self.held.get(i) {
                    Some(m) => *m,
                    None => break,
                },
            };
            let Some(conn) = self.conn.as_mut() else {
                return n;
            };
            let Ok(len) = ouch::encode(&m, &mut self.enc) else {
                self.counters.encode_errors += 1;
                step = advance(step);
                continue;
            };
            match conn.send_unsequenced(now, &self.enc[..len], &mut buf[n..]) {
                Ok(k) => n += k,
                Err(SendError::BufferTooSmall { .. }) if n > 0 => {
                    // The rest in the next call.
                    self.phase = Phase::Flush { next, step };
                    return n;
                }
                Err(_) => self.counters.send_failures += 1,
            }
            match step {
                Step::Resend(_) => self.counters.resent += 1,
                Step::Held(_) => self.counters.held_sent += 1,
                _ => {}
            }
            step = advance(step);
        }
        self.recovery.clear();
        self.held.clear();
        self.phase = Phase::Ready;
        trader.set_connected(true);
        n
    }

    /// Frames one order message into `buf` when the session is up: encodes
    /// it, calls `clock` once (the caller's time; the framing and its
    /// heartbeat timer take it), frames it and remembers an enter or
    /// replace for the resend. Write `buf[..len]` of the [`Framed`] to the
    /// socket; if that fails call [`OrderSession::write_failed`]. No
    /// allocation.
    ///
    /// # Errors
    /// [`Unsent`]: a cancel held (or lost to a full held buffer) while the
    /// session is not up, an enter or replace refused then, an encoding or
    /// framing failure (each counted).
    #[inline]
    pub fn send_order(
        &mut self,
        m: &OrderMsg,
        buf: &mut [u8],
        clock: impl FnOnce() -> u64,
    ) -> Result<Framed, Unsent> {
        if self.phase != Phase::Ready {
            return Err(self.hold(m));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.hold(m));
        };
        let Ok(len) = ouch::encode(m, &mut self.enc) else {
            self.counters.encode_errors += 1;
            return Err(Unsent::Encode);
        };
        let now = clock();
        match conn.send_unsequenced(now, &self.enc[..len], buf) {
            Ok(len) => {
                if !matches!(m, OrderMsg::Cancel(..)) {
                    self.remember(m);
                }
                Ok(Framed { len, now })
            }
            // The connection closed under the session (a logout, a
            // timeout not yet handled): as when it is down.
            Err(SendError::NotLoggedIn) => Err(self.hold(m)),
            Err(e) => {
                self.counters.send_failures += 1;
                Err(Unsent::Frame(e))
            }
        }
    }

    /// The bytes of `m` (framed by [`OrderSession::send_order`]) could not
    /// be written: counted; a cancel is held (an enter or replace is in the
    /// ring: resent after the next login if the exchange did not process
    /// it). Then drop the connection ([`OrderSession::connection_lost`]).
    pub fn write_failed(&mut self, m: &OrderMsg) {
        self.counters.send_failures += 1;
        if matches!(m, OrderMsg::Cancel(..)) {
            self.hold(m);
        }
    }

    /// A message offered while the session is not up.
    fn hold(&mut self, m: &OrderMsg) -> Unsent {
        if !matches!(m, OrderMsg::Cancel(..)) {
            self.counters.not_ready += 1;
            return Unsent::NotReady;
        }
        if self.held.len() < self.config.held {
            self.held.push(*m);
            Unsent::Held
        } else {
            self.counters.held_overflow += 1;
            Unsent::HeldOverflow
        }
    }

    fn remember(&mut self, m: &OrderMsg) {
        if self.ring.len() < self.config.resend_ring {
            self.ring.push(*m);
        } else {
            self.ring[self.ring_next] = *m;
        }
        self.ring_next = (self.ring_next + 1) % self.config.resend_ring;
    }
}

/// The next position of the flush.
const fn advance(step: Step) -> Step {
    match step {
        Step::Resend(k) => Step::Resend(k + 1),
        Step::EndRecovery => Step::Recovery(0),
        Step::Recovery(i) => Step::Recovery(i + 1),
        Step::Held(i) => Step::Held(i + 1),
    }
}

/// The UserRefNum of an enter or replace.
const fn user_ref_num(m: &OrderMsg) -> Option<u32> {
    match m {
        OrderMsg::Enter(o, _) => Some(o.user_ref_num.0),
        OrderMsg::Replace(o, _) => Some(o.user_ref_num.0),
        OrderMsg::Cancel(..) => None,
    }
}

/// The UserRefNum an exchange message answers.
const fn answered(ev: &ExchangeEvent) -> u32 {
    match *ev {
        ExchangeEvent::Accepted { user_ref_num, .. }
        | ExchangeEvent::Replaced { user_ref_num, .. }
        | ExchangeEvent::Canceled { user_ref_num, .. }
        | ExchangeEvent::Executed { user_ref_num, .. }
        | ExchangeEvent::Rejected { user_ref_num, .. } => user_ref_num.0,
    }
}
