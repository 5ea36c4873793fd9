//! The exchange's order entry: OUCH 5.0 over SoupBinTCP 4 on kernel TCP,
//! many clients at once, into the matching core that the generated flow
//! also goes through.
//!
//! Layer: apps. The protocols are sans-IO in `hftnet-trade` — the
//! SoupBinTCP server ([`hftnet_trade::soupbin`]), the OUCH glue
//! ([`hftnet_trade::matching::ouch`]) and the core
//! ([`hftnet_trade::matching::Exchange`]); the sockets are
//! [`TcpServer`]'s (`framing=soupbin`: each message it hands over is one
//! SoupBinTCP packet, type byte first). This module moves bytes between
//! them and keeps time; [`crate::exchange`] calls it between its
//! publishing work.
//!
//! Sessions: every login (`USER:PASSWORD`) has one core session and one
//! sequenced SoupBinTCP stream (named after the MoldUDP64 session of the
//! run, owned by that user), kept for the whole day, so a client that
//! reconnects and asks for sequence number N gets every message from N
//! exactly once. The stream opens with an OUCH System Event Start of Day;
//! at the end of the day it gets End of Day, and after a grace
//! ([`OrderEntryConfig::end_grace`]) the streams end: each connection sends
//! what its client has not read, End of Session, and closes (a client cut
//! just before the end can log in again within the grace and read the
//! tail; logins after it are refused, as SoupBinTCP says).
//!
//! Back-pressure: a connection is given more of its stream only while less
//! than [`PENDING_MAX`] bytes wait in its socket buffer; one whose client
//! stops reading altogether — at least [`PENDING_MAX`] bytes wait and the
//! kernel took none of them for the client timeout
//! ([`OrderEntryConfig::client_timeout`], SoupBinTCP's 15 s) — is closed
//! and counted (`closed_send_full`), even while it still sends heartbeats;
//! it can log in again and resume where it was.
//!
//! External tick-to-trade: [`SendTimes`] keeps, per MoldUDP64 sequence
//! number, when the packet carrying it was sent; an Enter or Replace whose
//! ClOrdID names a sequence number still kept records (receive time − send
//! time) in an HDR histogram.
//!
//! Invariants: once the connection table and the streams are warm, no
//! allocation per message or per order (`tests/alloc.rs`); the TCP server is
//! polled with a zero timeout at the cadence the exchange loop chooses.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hftnet_bench::stats::{LatencyStats, Summary};
use hftnet_io::tcp::{ConnId, ServerEvent as TcpEvent};
use hftnet_io::{Framing, RxBurst, RxStrategy, SyscallError, TcpConfig, TcpServer, Uri};
use hftnet_trade::matching::ouch::{self, BadFields, BadOuch, MAX_OUTBOUND_LEN, OuchInbound};
use hftnet_trade::matching::{
    self, ExchangeOutput, OrderEvent, Request, SessionCounters, SessionId,
};
use hftnet_trade::soupbin::{
    self, BadFrames, Server, ServerConfig, ServerConnection, ServerCounters, ServerEvent,
    StoreConfig, StreamId,
};
use hftnet_wire::itch50::Message;
use hftnet_wire::ouch50::EventCode;
use hftnet_wire::soupbintcp::{Password, Session, Username};
use serde::Serialize;

/// Most bytes waiting in a connection's socket buffer before it is given
/// more of its stream (the buffer holds 256 KiB).
pub const PENDING_MAX: usize = 128 * 1024;
/// Largest SoupBinTCP packet taken from a client (a Login Request is 52
/// bytes, OUCH inbound messages are below 1 KiB).
const MAX_CLIENT_FRAME: usize = 4096;
/// Bytes handed to `poll_transmit` at a time.
const TX_CHUNK: usize = 16 * 1024;
/// Frames per TCP send.
const FRAMES_PER_SEND: usize = 64;
/// Sequence numbers whose send time is kept (a power of two).
pub(crate) const SEND_TIMES: usize = 1 << 16;
/// TCP events handled per pass, so a busy client cannot hold up publishing.
const EVENTS_PER_PASS: usize = 64;
/// After the streams end, connections still open are closed this long later.
const DRAIN_NS: u64 = 1_000_000_000;

/// One `USER:PASSWORD` pair a client may log in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// SoupBinTCP username (at most 6 characters).
    pub username: String,
    /// Password (at most 10 characters).
    pub password: String,
}

impl Login {
    /// Reads `USER:PASSWORD`.
    ///
    /// # Errors
    /// [`OrderEntryConfigError::Login`] naming the limit broken.
    pub fn parse(text: &str) -> Result<Self, OrderEntryConfigError> {
        let (u, p) = text.split_once(':').ok_or_else(|| {
            OrderEntryConfigError::Login(format!(
                "{text:?}: expected USER:PASSWORD (username up to 6, password up to 10 characters)"
            ))
        })?;
        let l = Self {
            username: u.into(),
            password: p.into(),
        };
        l.fields()?;
        Ok(l)
    }

    fn fields(&self) -> Result<(Username, Password), OrderEntryConfigError> {
        let ok = |s: &str, n: usize| {
            !s.is_empty() && s.len() <= n && s.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        if !ok(&self.username, 6) {
            return Err(OrderEntryConfigError::Login(format!(
                "username {:?}: SoupBinTCP takes 1 to 6 letters or digits",
                self.username
            )));
        }
        if !ok(&self.password, 10) {
            return Err(OrderEntryConfigError::Login(format!(
                "password of user {:?}: SoupBinTCP takes 1 to 10 letters or digits",
                self.username
            )));
        }
        let u = Username::new(&self.username)
            .map_err(|_| OrderEntryConfigError::Login(self.username.clone()))?;
        let p = Password::new(&self.password)
            .map_err(|_| OrderEntryConfigError::Login(self.username.clone()))?;
        Ok((u, p))
    }
}

/// The order-entry part of an exchange's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEntryConfig {
    /// Where to listen: `tcp://IP:PORT` (port 0: the kernel chooses; read
    /// it with [`crate::exchange::Exchange::order_entry_addr`]). The
    /// SoupBinTCP framing is set here; a URI asking for another is refused.
    /// `rx=spin` makes the exchange poll its clients without ever sleeping
    /// (a gateway's spinning receive; one CPU at 100%); otherwise it waits
    /// for them in `ppoll` between due times.
    pub listen: String,
    /// Who may log in; each login is one session.
    pub logins: Vec<Login>,
    /// Concurrent connections at most (1 to 4096).
    pub max_clients: usize,
    /// Server Heartbeat after this long without sending (SoupBinTCP: 1 s).
    pub heartbeat: Duration,
    /// A client silent this long is dropped (SoupBinTCP: 15 s).
    pub client_timeout: Duration,
    /// A connection that does not log in within this long is dropped.
    pub login_timeout: Duration,
    /// After the end of the day, the sessions stay open this long (so a
    /// client can log in again and read the tail), then End of Session.
    pub end_grace: Duration,
    /// The matching core: limits, tick, price band.
    pub matching: matching::ExchangeConfig,
    /// What each session's stream keeps for replay.
    pub store: StoreConfig,
    /// The day starts once this many logins were accepted (0: at once), so
    /// traders connected before the first message see the whole day — the
    /// stock directory included — instead of joining mid-stream.
    pub wait_logins: usize,
    /// How long the exchange waits for those logins before it gives up
    /// (an error naming how many came).
    pub wait_timeout: Duration,
}

impl OrderEntryConfig {
    /// Defaults for one login, listening on `listen`.
    #[must_use]
    pub fn new(listen: &str, login: Login) -> Self {
        Self {
            listen: listen.into(),
            logins: vec![login],
            max_clients: 16,
            heartbeat: Duration::from_nanos(soupbin::HEARTBEAT_INTERVAL_NS),
            client_timeout: Duration::from_nanos(soupbin::PEER_TIMEOUT_NS),
            login_timeout: Duration::from_nanos(soupbin::LOGIN_TIMEOUT_NS),
            end_grace: Duration::from_secs(1),
            matching: matching::ExchangeConfig {
                max_sessions: 64,
                ..matching::ExchangeConfig::default()
            },
            store: StoreConfig {
                max_bytes: 16 << 20,
                max_messages: 1 << 18,
            },
            wait_logins: 0,
            wait_timeout: Duration::from_secs(60),
        }
    }

    /// The TCP configuration of `listen`, with SoupBinTCP framing.
    fn tcp(&self) -> Result<TcpConfig, OrderEntryConfigError> {
        let bad = |why: String| OrderEntryConfigError::Listen(format!("{}: {why}", self.listen));
        let uri = Uri::parse(&self.listen).map_err(|e| bad(e.to_string()))?;
        if uri.scheme != "tcp" {
            return Err(bad("order entry listens on tcp://IP:PORT".into()));
        }
        if let Some((_, v)) = uri.params.iter().find(|(k, _)| k == "framing")
            && v != "soupbin"
        {
            return Err(bad(format!(
                "framing={v}: order entry speaks SoupBinTCP; leave framing out (it is set to soupbin)"
            )));
        }
        let mut cfg = TcpConfig::from_uri(&uri).map_err(|e| bad(e.to_string()))?;
        cfg.framing = Framing::Soupbin;
        Ok(cfg)
    }

    /// The SoupBinTCP server's configuration.
    fn server(&self) -> Result<ServerConfig, OrderEntryConfigError> {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let mut credentials = Vec::with_capacity(self.logins.len());
        for l in &self.logins {
            credentials.push(l.fields()?);
        }
        if self.logins.is_empty() {
            return Err(OrderEntryConfigError::Login(
                "no login: give at least one USER:PASSWORD".into(),
            ));
        }
        for (i, a) in credentials.iter().enumerate() {
            if credentials[..i].iter().any(|b| b.0.matches(&a.0)) {
                return Err(OrderEntryConfigError::Login(format!(
                    "username {} given twice (usernames compare case-insensitively)",
                    a.0
                )));
            }
        }
        let cfg = ServerConfig {
            credentials,
            heartbeat_interval_ns: ns(self.heartbeat),
            client_timeout_ns: ns(self.client_timeout),
            login_timeout_ns: ns(self.login_timeout),
            max_length: MAX_CLIENT_FRAME,
            store: self.store,
        };
        cfg.validate()
            .map_err(|e| OrderEntryConfigError::Session(e.to_string()))?;
        Ok(cfg)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first [`OrderEntryConfigError`], naming the field.
    pub fn validate(&self) -> Result<(), OrderEntryConfigError> {
        self.tcp()?;
        self.server()?;
        if !(1..=hftnet_io::tcp::MAX_SERVER_CONNECTIONS).contains(&self.max_clients) {
            return Err(OrderEntryConfigError::MaxClients(self.max_clients));
        }
        if self.wait_logins > self.max_clients.min(self.logins.len()) {
            return Err(OrderEntryConfigError::WaitLogins {
                wait: self.wait_logins,
                logins: self.logins.len(),
                max_clients: self.max_clients,
            });
        }
        if self.logins.len() > self.matching.max_sessions {
            return Err(OrderEntryConfigError::Login(format!(
                "{} logins, but the matching core takes {} sessions",
                self.logins.len(),
                self.matching.max_sessions
            )));
        }
        self.matching
            .validate()
            .map_err(OrderEntryConfigError::Matching)
    }
}

/// A field of an [`OrderEntryConfig`] out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderEntryConfigError {
    /// `listen` is not a `tcp://IP:PORT` URI with SoupBinTCP framing.
    #[error("order entry listen address {0}")]
    Listen(String),
    /// A login is malformed, missing or repeated.
    #[error("order entry login {0}")]
    Login(String),
    /// `max_clients` out of range.
    #[error(
        "order entry max clients {0}: from 1 to {max}",
        max = hftnet_io::tcp::MAX_SERVER_CONNECTIONS
    )]
    MaxClients(usize),
    /// More logins waited for than there are logins, or clients allowed.
    #[error(
        "order entry waits for {wait} logins before the day starts, but there are {logins} \
         logins and at most {max_clients} clients may connect: lower the wait, or add logins \
         or clients"
    )]
    WaitLogins {
        /// Logins waited for.
        wait: usize,
        /// Logins configured.
        logins: usize,
        /// Clients allowed.
        max_clients: usize,
    },
    /// A SoupBinTCP timer or store bound out of range.
    #[error("order entry session: {0}")]
    Session(String),
    /// The matching core's configuration.
    #[error("order entry matching core: {0}")]
    Matching(matching::ExchangeError),
}

/// Why the order entry could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderEntryError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] OrderEntryConfigError),
    /// The listening socket could not be opened.
    #[error("opening the order-entry listener")]
    Listen(#[source] hftnet_io::OpenError),
    /// A session stream could not be opened.
    #[error("opening a session stream: {0}")]
    Stream(soupbin::StoreError),
    /// The poll of the TCP server failed.
    #[error("polling the order-entry connections")]
    Poll(#[source] SyscallError),
    /// Fewer clients logged in than the day waits for.
    #[error(
        "{logged_in} of the {wanted} logins the day waits for came within {waited:?}: start the \
         traders first (or lower the wait, or raise its timeout)"
    )]
    NoLogins {
        /// Logins logged in at the end of the wait.
        logged_in: usize,
        /// Logins waited for.
        wanted: usize,
        /// How long the exchange waited.
        waited: Duration,
    },
}

/// When each MoldUDP64 sequence number was sent: a ring indexed by
/// `seq & mask` of `(seq, t_ns)`, filled from the packets as they leave.
#[derive(Debug)]
pub struct SendTimes {
    slots: Box<[(u64, u64)]>,
    mask: u64,
}

impl SendTimes {
    /// A ring of `n` sequence numbers (rounded up to a power of two).
    #[must_use]
    pub fn new(n: usize) -> Self {
        let n = n.max(1).next_power_of_two();
        Self {
            slots: vec![(0, 0); n].into_boxed_slice(),
            mask: n as u64 - 1,
        }
    }

    /// Records that the MoldUDP64 packet `p` (header: session 10 bytes,
    /// sequence number 8, count 2) left at `t_ns`.
    #[inline]
    pub fn record_packet(&mut self, p: &[u8], t_ns: u64) {
        let Some(h) = p.get(..20) else { return };
        let seq = u64::from_be_bytes([h[10], h[11], h[12], h[13], h[14], h[15], h[16], h[17]]);
        let count = u64::from(u16::from_be_bytes([h[18], h[19]]));
        for s in seq..seq.saturating_add(count) {
            self.slots[(s & self.mask) as usize] = (s, t_ns);
        }
    }

    /// When `seq` was sent, if it is still kept.
    #[inline]
    #[must_use]
    pub fn sent_at(&self, seq: u64) -> Option<u64> {
        let (s, t) = self.slots[(seq & self.mask) as usize];
        (s == seq && seq != 0).then_some(t)
    }
}

/// Where the core's ITCH messages go: the exchange's publishing path.
pub(crate) trait ItchSink {
    /// Publishes one message (in order).
    fn itch(&mut self, m: &Message);
    /// When the packet carrying MoldUDP64 sequence number `seq` was sent
    /// (ns on the loop's clock), if it is still known.
    fn sent_at(&self, seq: u64) -> Option<u64>;
}

/// The core's output during one call: ITCH to the feed, events to the
/// session streams.
struct Out<'a, M> {
    md: &'a mut M,
    soup: &'a mut Server,
    streams: &'a [StreamId],
    ts: u64,
    store_errors: &'a mut u64,
}

impl<M: ItchSink> ExchangeOutput for Out<'_, M> {
    #[inline]
    fn itch(&mut self, m: &Message) {
        self.md.itch(m);
    }

    #[inline]
    fn order_event(&mut self, session: SessionId, e: &OrderEvent) {
        let mut buf = [0u8; MAX_OUTBOUND_LEN];
        let Some(&stream) = self.streams.get(usize::from(session)) else {
            return;
        };
        match ouch::encode_event(e, self.ts, &mut buf) {
            Ok(n) => {
                if self.soup.publish(stream, &buf[..n]).is_err() {
                    *self.store_errors += 1;
                }
            }
            Err(_) => *self.store_errors += 1,
        }
    }
}

/// One open connection.
#[derive(Debug)]
struct Conn {
    id: ConnId,
    sc: ServerConnection,
    /// The login's index once logged in.
    login: Option<usize>,
    /// Since when it waits to be closed (its last bytes leaving).
    closing: Option<u64>,
    /// Since when at least [`PENDING_MAX`] bytes wait in its socket buffer
    /// and the kernel took none of them (its client does not read).
    stalled: Option<u64>,
    /// Bytes waiting after the last flush.
    last_pending: usize,
}

/// What one event of a connection's input was (it borrows the server, so
/// it is acted on after `handle_input` returns).
#[derive(Debug, Clone, Copy)]
enum Got {
    LoggedIn(StreamId),
    Unsequenced,
    Other,
}

/// The running order entry, owned by the exchange loop.
#[derive(Debug)]
pub(crate) struct OrderEntry {
    server: TcpServer,
    soup: Server,
    core: matching::Exchange,
    inbound: OuchInbound,
    conns: Vec<Option<Conn>>,
    /// Per login: its stream (index = core session id).
    streams: Vec<StreamId>,
    usernames: Vec<String>,
    rx: RxBurst,
    tx: Box<[u8]>,
    t2t: LatencyStats,
    /// Enter/Replace with a trigger in the ClOrdID that was no longer kept.
    t2t_unknown: u64,
    /// Counters of the connections closed so far.
    closed: ServerCounters,
    closed_send_full: u64,
    store_errors: u64,
    /// How long a connection's output may stay stalled above
    /// [`PENDING_MAX`] before it is closed (the client timeout).
    stall_ns: u64,
    grace_ns: u64,
    /// When the day ended (End of Day sent) and when the streams ended.
    day_ended: Option<u64>,
    streams_ended: Option<u64>,
    wait_logins: usize,
    wait_timeout: Duration,
    /// `rx=spin` on the listen URI (see [`OrderEntry::spins`]).
    spin: bool,
}

impl OrderEntry {
    /// Opens the listener, the streams (each starting with Start of Day)
    /// and the core sessions.
    pub(crate) fn open(cfg: &OrderEntryConfig, session: &str) -> Result<Self, OrderEntryError> {
        cfg.validate()?;
        let tcp = cfg.tcp()?;
        let spin = matches!(tcp.socket.strategy, RxStrategy::Spin);
        let server = TcpServer::open(tcp, cfg.max_clients).map_err(OrderEntryError::Listen)?;
        let mut soup = Server::new(cfg.server()?)
            .map_err(|e| OrderEntryConfigError::Session(e.to_string()))?;
        let mut core =
            matching::Exchange::new(&cfg.matching).map_err(OrderEntryConfigError::Matching)?;
        let name = Session::new(session).map_err(|_| {
            OrderEntryConfigError::Session(format!("{session:?} is not a SoupBinTCP session name"))
        })?;
        let mut streams = Vec::with_capacity(cfg.logins.len());
        for l in &cfg.logins {
            let (u, _) = l.fields()?;
            let id = soup.open(name, Some(u)).map_err(OrderEntryError::Stream)?;
            let mut buf = [0u8; 16];
            if let Ok(n) = ouch::encode_system_event(EventCode::StartOfDay, 0, &mut buf) {
                soup.publish(id, &buf[..n])
                    .map_err(OrderEntryError::Stream)?;
            }
            core.open_session()
                .map_err(OrderEntryConfigError::Matching)?;
            streams.push(id);
        }
        Ok(Self {
            server,
            soup,
            core,
            inbound: OuchInbound::new(),
            conns: Vec::with_capacity(cfg.max_clients),
            streams,
            usernames: cfg.logins.iter().map(|l| l.username.clone()).collect(),
            rx: RxBurst::new(16, MAX_CLIENT_FRAME),
            tx: vec![0u8; TX_CHUNK].into_boxed_slice(),
            t2t: LatencyStats::new(),
            t2t_unknown: 0,
            closed: ServerCounters::default(),
            closed_send_full: 0,
            store_errors: 0,
            stall_ns: u64::try_from(cfg.client_timeout.as_nanos()).unwrap_or(u64::MAX),
            grace_ns: u64::try_from(cfg.end_grace.as_nanos()).unwrap_or(u64::MAX),
            day_ended: None,
            streams_ended: None,
            wait_logins: cfg.wait_logins,
            wait_timeout: cfg.wait_timeout,
            spin,
        })
    }

    /// Whether the listen URI asked for `rx=spin`: the exchange then never
    /// waits in the kernel for its clients — it polls them without a
    /// timeout at every turn of its loop, between due times too, so an
    /// order arriving while the feed is idle pays no wake-up.
    pub(crate) fn spins(&self) -> bool {
        self.spin
    }

    /// The address the listener is bound to.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.server.local_addr()
    }

    /// The core (the published feed equals its books).
    pub(crate) fn core(&self) -> &matching::Exchange {
        &self.core
    }

    /// One generated message through the core.
    pub(crate) fn generated(&mut self, m: &Message, now: u64, md: &mut impl ItchSink) {
        let mut out = Out {
            md,
            soup: &mut self.soup,
            streams: &self.streams,
            ts: now,
            store_errors: &mut self.store_errors,
        };
        self.core.handle_generated(m, &mut out);
    }

    /// The day is over: End of Day on every stream; the streams end after
    /// the grace (or at once when `now_end`).
    pub(crate) fn end_of_day(&mut self, now: u64, now_end: bool) {
        if self.day_ended.is_none() {
            self.day_ended = Some(now);
            let mut buf = [0u8; 16];
            if let Ok(n) = ouch::encode_system_event(EventCode::EndOfDay, now, &mut buf) {
                for &s in &self.streams {
                    if self.soup.publish(s, &buf[..n]).is_err() {
                        self.store_errors += 1;
                    }
                }
            }
        }
        if now_end {
            self.grace_ns = 0;
        }
    }

    /// Whether the loop may stop: the streams ended and every connection
    /// closed (or had a second to).
    pub(crate) fn finished(&self, now: u64) -> bool {
        self.streams_ended.is_some_and(|e| {
            self.conns.iter().all(Option::is_none) || now >= e.saturating_add(DRAIN_NS)
        })
    }

    /// Serves the connections: up to [`EVENTS_PER_PASS`] TCP events waiting
    /// now (until `deadline` when given: the loop's idle wait), then every
    /// connection's timers and output. `clock` reads the loop's clock.
    pub(crate) fn pass(
        &mut self,
        clock: &impl Fn() -> u64,
        deadline: Option<Instant>,
        md: &mut impl ItchSink,
    ) -> Result<bool, OrderEntryError> {
        let mut any = false;
        let mut wait = deadline;
        for _ in 0..EVENTS_PER_PASS {
            let ev = self
                .server
                .poll(&mut self.rx, Some(wait.unwrap_or_else(Instant::now)))
                .map_err(OrderEntryError::Poll)?;
            wait = None;
            let Some(ev) = ev else { break };
            any = true;
            let now = clock();
            match ev {
                TcpEvent::Accepted { id, .. } => {
                    let slot = id.slot();
                    if self.conns.len() <= slot {
                        self.conns.resize_with(slot + 1, || None);
                    }
                    self.conns[slot] = Some(Conn {
                        id,
                        sc: self.soup.connect(now),
                        login: None,
                        closing: None,
                        stalled: None,
                        last_pending: 0,
                    });
                }
                TcpEvent::Messages { id, n } => self.messages(id, n, now, md),
                TcpEvent::Closed { id, .. } => self.forget(id),
            }
        }
        let now = clock();
        self.timers(now);
        self.flush(now);
        Ok(any)
    }

    /// The messages of one connection.
    fn messages(&mut self, id: ConnId, n: usize, now: u64, md: &mut impl ItchSink) {
        let Some(Some(c)) = self.conns.get_mut(id.slot()) else {
            return;
        };
        if c.id != id {
            return;
        }
        for i in 0..n {
            let (msg, meta) = self.rx.get(i);
            // The TCP server cut the 2-byte length off: give it back, so the
            // session sees the stream as sent (a length of 0, or one above
            // its limit, closes it).
            let len = u16::try_from(meta.wire_len).unwrap_or(u16::MAX);
            c.sc.handle_input(now, &len.to_be_bytes(), &self.soup, |_| {});
            let mut got = Got::Other;
            c.sc.handle_input(now, msg, &self.soup, |e| {
                got = match e {
                    ServerEvent::LoggedIn { stream, .. } => Got::LoggedIn(stream),
                    ServerEvent::Unsequenced(_) => Got::Unsequenced,
                    _ => Got::Other,
                };
            });
            match got {
                Got::LoggedIn(stream) => {
                    c.login = self.streams.iter().position(|s| *s == stream);
                }
                Got::Unsequenced => {
                    let Some(login) = c.login else { continue };
                    let Ok(session) = SessionId::try_from(login) else {
                        continue;
                    };
                    let mut out = Out {
                        md: &mut *md,
                        soup: &mut self.soup,
                        streams: &self.streams,
                        ts: now,
                        store_errors: &mut self.store_errors,
                    };
                    // Unsequenced Data: the type byte, then the OUCH message.
                    let req =
                        self.inbound
                            .handle(&mut self.core, session, &msg[1..], now, &mut out);
                    if let Some(r @ (Request::Enter(_) | Request::Replace(_))) = req
                        && let Some(cl) = ouch::cl_ord_id(&r)
                        && let Some(seq) = cl.trigger_seq()
                    {
                        match out.md.sent_at(seq) {
                            Some(t) => self.t2t.record(now.saturating_sub(t)),
                            None => self.t2t_unknown += 1,
                        }
                    }
                }
                Got::Other => {}
            }
        }
    }

    /// A connection the TCP server reports closed.
    fn forget(&mut self, id: ConnId) {
        if let Some(slot) = self.conns.get_mut(id.slot())
            && slot.as_ref().is_some_and(|c| c.id == id)
            && let Some(c) = slot.take()
        {
            self.closed.add(&c.sc.counters());
        }
    }

    /// Timeouts, and the end of the streams after the grace.
    fn timers(&mut self, now: u64) {
        if self.streams_ended.is_none()
            && let Some(d) = self.day_ended
            && now >= d.saturating_add(self.grace_ns)
        {
            for &s in &self.streams {
                let _ = self.soup.end(s);
            }
            self.streams_ended = Some(now);
        }
        for c in self.conns.iter_mut().flatten() {
            if c.sc.poll_timeout().is_some_and(|t| now >= t) {
                c.sc.handle_timeout(now);
            }
        }
    }

    /// Every connection's output to its socket; closes the connections that
    /// are over once their last bytes left.
    fn flush(&mut self, now: u64) {
        for slot in &mut self.conns {
            let Some(c) = slot else { continue };
            if !self.server.is_open(c.id) {
                // Failed under the TCP server (its Closed event names an id
                // no longer here).
                self.closed.add(&c.sc.counters());
                *slot = None;
                continue;
            }
            let mut full = false;
            let mut failed_full = false;
            // A client that does not read: its output stays above the bound
            // with nothing taken by the kernel for the client timeout.
            let pending = self.server.pending(c.id);
            if pending < PENDING_MAX || pending < c.last_pending {
                c.stalled = None;
            } else if now.saturating_sub(*c.stalled.get_or_insert(now)) >= self.stall_ns {
                full = true;
                failed_full = true;
            }
            while !full && self.server.pending(c.id) < PENDING_MAX {
                let n = c.sc.poll_transmit(now, &self.soup, &mut self.tx);
                if n == 0 {
                    break;
                }
                match send_frames(&mut self.server, c.id, &self.tx[..n]) {
                    Ok(()) => {}
                    Err(f) => {
                        full = true;
                        failed_full = f;
                        break;
                    }
                }
            }
            c.last_pending = self.server.pending(c.id);
            if c.sc.close_reason().is_some() && c.closing.is_none() {
                c.closing = Some(now);
            }
            let drained = self.server.pending(c.id) == 0;
            let done = c
                .closing
                .is_some_and(|t| drained || now >= t.saturating_add(DRAIN_NS));
            if full || done {
                self.server.close(c.id);
                self.closed.add(&c.sc.counters());
                self.closed_send_full += u64::from(failed_full);
                *slot = None;
            }
        }
    }

    /// Logins logged in now, each counted once however many times its
    /// client connected (a client reconnecting does not count twice).
    pub(crate) fn logged_in(&self) -> usize {
        let mut n = 0;
        for (i, _) in self.usernames.iter().enumerate() {
            if self.conns.iter().flatten().any(|c| c.login == Some(i)) {
                n += 1;
            }
        }
        n
    }

    /// What the day waits for before it starts: (logins, timeout).
    pub(crate) fn wait(&self) -> (usize, Duration) {
        (self.wait_logins, self.wait_timeout)
    }

    /// What it did (allocates: after the run).
    pub(crate) fn report(&self) -> OrderEntryReport {
        let mut sc = self.closed;
        for c in self.conns.iter().flatten() {
            sc.add(&c.sc.counters());
        }
        let st = self.server.stats();
        let sessions: Vec<SessionReport> = self
            .usernames
            .iter()
            .enumerate()
            .map(|(i, u)| SessionReport {
                username: u.clone(),
                stream_messages: self
                    .soup
                    .streams()
                    .get(self.streams[i])
                    .map_or(0, soupbin::Stream::len),
                orders: self
                    .core
                    .session_counters(i as SessionId)
                    .copied()
                    .unwrap_or_default(),
            })
            .collect();
        let tr = sc.traffic;
        OrderEntryReport {
            listen: self.local_addr().map(|a| a.to_string()),
            connections: st.accepted,
            refused_connections: st.refused,
            open_at_end: st.open,
            logins_ok: sc.logins_accepted,
            logins_rejected: sc.rejected_not_authorized,
            logins_rejected_session: sc.rejected_session,
            logouts: sc.logouts,
            sessions,
            totals: self.core.session_totals(),
            messages_in: self.inbound.messages,
            bad_ouch: self.inbound.bad_messages,
            bad_fields: self.inbound.bad_fields,
            bad_frames: tr.bad_frames,
            heartbeats_in: tr.heartbeats_in,
            heartbeats_out: tr.heartbeats_out,
            client_timeouts: sc.client_timeouts,
            login_timeouts: sc.login_timeouts,
            sequenced_out: sc.sequenced_out,
            replayed: sc.replayed,
            end_of_session: sc.end_of_session,
            closed_send_full: self.closed_send_full,
            store_errors: self.store_errors,
            nofile_raised: self.server.nofile_raised(),
            tick_to_trade_external_ns: self.t2t.summary(),
            tick_to_trade_samples: self.t2t.len(),
            tick_to_trade_unknown_trigger: self.t2t_unknown,
        }
    }

    /// The external tick-to-trade histogram.
    pub(crate) fn tick_to_trade(&self) -> &LatencyStats {
        &self.t2t
    }
}

/// Sends the SoupBinTCP frames in `bytes` (each behind its 2-byte length)
/// to `id` (which puts the length back). `Err(true)`: the connection's
/// buffer could not take them all (its client does not read); `Err(false)`:
/// the connection failed.
fn send_frames(server: &mut TcpServer, id: ConnId, bytes: &[u8]) -> Result<(), bool> {
    let mut frames: [&[u8]; FRAMES_PER_SEND] = [&[]; FRAMES_PER_SEND];
    let mut k = 0;
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        let end = (at + 2 + len).min(bytes.len());
        frames[k] = &bytes[at + 2..end];
        k += 1;
        at = end;
        if k == FRAMES_PER_SEND || at + 2 > bytes.len() {
            match server.send(id, &frames[..k]) {
                Ok(sent) if sent == k => k = 0,
                Ok(_) | Err(hftnet_io::tcp::SendError::Full { .. }) => return Err(true),
                Err(_) => return Err(false),
            }
        }
    }
    Ok(())
}

/// One login's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionReport {
    /// The username.
    pub username: String,
    /// Messages in its sequenced stream.
    pub stream_messages: u64,
    /// Its orders (`received == accepted + rejected`).
    pub orders: SessionCounters,
}

/// What the order entry did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderEntryReport {
    /// The address it listened on.
    pub listen: Option<String>,
    /// TCP connections accepted.
    pub connections: u64,
    /// Connections refused (the table was full).
    pub refused_connections: u64,
    /// Connections still open at the end.
    pub open_at_end: usize,
    /// Logins accepted.
    pub logins_ok: u64,
    /// Logins refused with `A` (bad username or password).
    pub logins_rejected: u64,
    /// Logins refused with `S` (the session ended).
    pub logins_rejected_session: u64,
    /// Logout Requests.
    pub logouts: u64,
    /// Per login.
    pub sessions: Vec<SessionReport>,
    /// All sessions together.
    pub totals: SessionCounters,
    /// OUCH messages received.
    pub messages_in: u64,
    /// OUCH messages ignored, by reason.
    pub bad_ouch: BadOuch,
    /// OUCH code fields out of the spec's set, by field.
    pub bad_fields: BadFields,
    /// Bad SoupBinTCP frames, by reason (see [`soupbin::BadFrame`]).
    pub bad_frames: BadFrames,
    /// Client Heartbeats received.
    pub heartbeats_in: u64,
    /// Server Heartbeats sent.
    pub heartbeats_out: u64,
    /// Connections dropped: the client was silent for the timeout.
    pub client_timeouts: u64,
    /// Connections dropped: no login in time.
    pub login_timeouts: u64,
    /// Sequenced messages sent (replays included).
    pub sequenced_out: u64,
    /// Of those, replayed to a login that asked for them.
    pub replayed: u64,
    /// End of Session packets sent.
    pub end_of_session: u64,
    /// Connections closed because their client stopped reading.
    pub closed_send_full: u64,
    /// The soft `RLIMIT_NOFILE` raised (before, after) so that
    /// `max_clients` connections fit; `None` when it was high enough.
    pub nofile_raised: Option<(u64, u64)>,
    /// Events that could not be stored in a session's stream (full).
    pub store_errors: u64,
    /// Sending the triggering packet → receiving the order, ns (`None`: no
    /// order named a trigger still kept).
    pub tick_to_trade_external_ns: Option<Summary>,
    /// Orders measured.
    pub tick_to_trade_samples: u64,
    /// Orders naming a trigger no longer kept (or never sent).
    pub tick_to_trade_unknown_trigger: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_and_listen_uris_are_checked() {
        assert_eq!(
            Login::parse("alice:secret").unwrap(),
            Login {
                username: "alice".into(),
                password: "secret".into()
            }
        );
        for bad in [
            "alice",
            "toolonguser:pw",
            "bob:",
            ":pw",
            "bob:elevenchars",
            "b-b:pw",
        ] {
            assert!(
                matches!(Login::parse(bad), Err(OrderEntryConfigError::Login(_))),
                "{bad}"
            );
        }
        let login = Login::parse("alice:secret").unwrap();
        let ok = OrderEntryConfig::new("tcp://127.0.0.1:0", login.clone());
        assert_eq!(ok.validate(), Ok(()));
        for uri in [
            "udp://127.0.0.1:9000",
            "tcp://127.0.0.1:0?framing=len32",
            "tcp://nowhere",
        ] {
            let c = OrderEntryConfig::new(uri, login.clone());
            assert!(
                matches!(c.validate(), Err(OrderEntryConfigError::Listen(_))),
                "{uri}"
            );
        }
        let explicit = OrderEntryConfig::new("tcp://127.0.0.1:0?framing=soupbin", login.clone());
        assert_eq!(explicit.validate(), Ok(()));
        let mut twice = ok.clone();
        twice.logins.push(Login::parse("ALICE:other").unwrap());
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
        let mut none = ok.clone();
        none.logins.clear();
        assert!(matches!(
            none.validate(),
            Err(OrderEntryConfigError::Login(_))
        ));
        let mut timers = ok.clone();
        timers.client_timeout = timers.heartbeat;
        assert!(matches!(
            timers.validate(),
            Err(OrderEntryConfigError::Session(_))
        ));
        let mut tick = ok.clone();
        tick.matching.tick = 0;
        assert!(matches!(
            tick.validate(),
            Err(OrderEntryConfigError::Matching(_))
        ));
        let mut clients = ok;
        clients.max_clients = 0;
        assert_eq!(
            clients.validate(),
            Err(OrderEntryConfigError::MaxClients(0))
        );
    }

    #[test]
    fn send_times_keep_the_recent_sequence_numbers() {
        let mut t = SendTimes::new(4);
        let packet = |seq: u64, count: u16| {
            let mut p = vec![0u8; 20];
            p[10..18].copy_from_slice(&seq.to_be_bytes());
            p[18..20].copy_from_slice(&count.to_be_bytes());
            p
        };
        t.record_packet(&packet(1, 3), 100);
        assert_eq!(
            (t.sent_at(1), t.sent_at(3), t.sent_at(4)),
            (Some(100), Some(100), None)
        );
        // A heartbeat (count 0) records nothing; a short packet neither.
        t.record_packet(&packet(4, 0), 150);
        t.record_packet(&[0; 12], 150);
        assert_eq!(t.sent_at(4), None);
        t.record_packet(&packet(4, 3), 200);
        // 1 was overwritten by 5 (4 slots).
        assert_eq!(
            (t.sent_at(1), t.sent_at(2), t.sent_at(6)),
            (None, None, Some(200))
        );
        assert_eq!(t.sent_at(3), Some(100));
        assert_eq!(t.sent_at(0), None);
    }
}
