//! SoupBinTCP 4.0 / 4.1 sessions, both ends, sans IO: the order-entry
//! session layer OUCH runs on. Bytes received and `now` (nanoseconds on any
//! monotonic clock) go in; bytes to write, events and close decisions come
//! out. Nothing here opens a socket, reads a clock, spawns a thread, or
//! allocates after a connection is built; the codec is
//! [`hftnet_wire::soupbintcp`].
//!
//! # Pieces
//!
//! - [`Server`]: what all connections of a server share — the accepted
//!   credentials, the timers, and the [`Streams`]: one sequenced stream per
//!   session name, holding every message from sequence number 1 (bounded by
//!   [`StoreConfig`]), which any number of connections may read, each from
//!   its own position.
//! - [`ServerConnection`]: one accepted TCP connection (made by
//!   [`Server::connect`]): login check, replay from the requested sequence
//!   number then live data, server heartbeats, client timeout, End of
//!   Session, Logout.
//! - [`ClientConnection`]: one connection of a client: Login Request,
//!   sequence tracking, client heartbeats, server timeout, and
//!   [`ClientConnection::reconnect_config`] for the next connection, which
//!   asks for exactly the next message so nothing is lost or duplicated.
//!
//! # Driving a connection (either end)
//!
//! As quinn-proto's `Connection`: the owner calls
//! 1. `handle_input(now, bytes, …, on_event)` with every chunk read from the
//!    socket, whatever its size (frames are reassembled inside); events
//!    ([`ServerEvent`], [`ClientEvent`]) are passed to `on_event`, payloads
//!    borrowed from the input;
//! 2. `handle_timeout(now)` when `now` reached `poll_timeout()`;
//! 3. `poll_transmit(now, …, buf)` — after every input, every publish, and
//!    at `poll_timeout()` — and writes the bytes it returns to the socket, in
//!    order (they are counted as sent: keep what the socket did not take and
//!    write it first next time). `buf` must hold at least one frame of the
//!    longest message plus 3 bytes (65,537 always does);
//! 4. `close_reason()`: once `Some`, write what `poll_transmit` still
//!    returns (a Login Rejected, an End of Session) and close the socket.
//!
//! A server and a client talking through two byte buffers (in a real
//! program, the two ends of a TCP connection):
//!
//! ```
//! use hftnet_trade::soupbin::{
//!     ClientConfig, ClientConnection, ClientEvent, Server, ServerConfig, ServerEvent,
//! };
//! use hftnet_wire::soupbintcp::{Password, Session, Username};
//!
//! let (user, pass) = (Username::new("alice")?, Password::new("secret")?);
//! let mut server = Server::new(ServerConfig::new(user, pass))?;
//! let day = server.open(Session::new("20261205")?, None)?;
//! server.publish(day, b"first message")?;
//!
//! let now = 0;
//! let mut conn = server.connect(now); // on accept()
//! let mut client = ClientConnection::new(ClientConfig::new(user, pass), now)?; // on connect()
//! let mut buf = vec![0u8; 65_537];
//!
//! // Client → server: the Login Request.
//! let n = client.poll_transmit(now, &mut buf);
//! conn.handle_input(now, &buf[..n], &server, |e| {
//!     assert!(matches!(e, ServerEvent::LoggedIn { next_sequence: 1, .. }));
//! });
//! // Server → client: Login Accepted, then the stream from sequence 1.
//! server.publish(day, b"second")?;
//! let n = conn.poll_transmit(now, &server, &mut buf);
//! let mut got = Vec::new();
//! client.handle_input(now, &buf[..n], |e| {
//!     if let ClientEvent::Sequenced { sequence, message } = e {
//!         got.push((sequence, message.to_vec()));
//!     }
//! });
//! assert_eq!(got, [(1, b"first message".to_vec()), (2, b"second".to_vec())]);
//! // After a broken connection, the next one resumes at 3.
//! assert_eq!(client.reconnect_config().next_sequence, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Behaviour where the specification leaves a choice
//!
//! - A requested sequence number of 0 (or blank) starts with the next
//!   message published; N ≥ 1 replays from N; N beyond the stream starts
//!   with the next message, and the Login Accepted says which (the client
//!   reports the gap, see [`ClientEvent::Gap`]).
//! - A blank requested session logs into the most recently opened stream
//!   the user may read that has not ended; a named one into that stream.
//!   An unknown or ended session is refused with `S`, bad credentials with
//!   `A` (checked first); either way the server then closes.
//! - Frames that cannot be split (length 0, length above the limit) close
//!   the connection: nothing after them can be trusted to be a frame
//!   boundary. Every other bad frame — unknown type, wrong length or field
//!   for its type, a type the other end does not send, data before the
//!   login completed, a second login — is counted by reason
//!   ([`BadFrames`]) and ignored; the session stays up. Debug packets are
//!   counted and ignored, as the specification asks.
//! - Heartbeats go out when the interval (1 s by default) has passed since
//!   the last byte sent; a peer is given up on when the timeout (15 s by
//!   default; the client's 4.1 heartbeat-timeout field overrides it on the
//!   server) has passed since the last byte received. A server also gives
//!   up on a connection that has not logged in within its login timeout
//!   (30 s by default).

mod client;
mod server;
mod store;

pub use client::{ClientConfig, ClientConnection, ClientCounters, ClientEvent};
pub use server::{Server, ServerConfig, ServerConnection, ServerCounters, ServerEvent};
pub use store::{
    MAX_STREAM_BYTES, MAX_STREAM_MESSAGES, StoreConfig, StoreError, Stream, StreamId, Streams,
};

use core::fmt;

use hftnet_wire::soupbintcp::{FrameSplitter, ParseError, RejectReason, Repr, SplitError};

/// One second, the specification's heartbeat interval.
pub const HEARTBEAT_INTERVAL_NS: u64 = 1_000_000_000;
/// Fifteen seconds, the specification's typical silence before a peer is
/// given up on.
pub const PEER_TIMEOUT_NS: u64 = 15_000_000_000;
/// Thirty seconds, the specification's typical wait for a Login Request.
pub const LOGIN_TIMEOUT_NS: u64 = 30_000_000_000;

/// Why a frame was counted and ignored (or, for the first two, why the
/// connection closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadFrame {
    /// A length field of 0 (closes the connection).
    ZeroLength,
    /// A length field above the limit (closes the connection).
    TooLong,
    /// A type byte SoupBinTCP does not define.
    UnknownType,
    /// A payload length its type does not allow.
    BadLength,
    /// A malformed field (a numeric field that is not a number).
    BadField,
    /// A type only the other end sends (a Login Request to a client, a
    /// Sequenced Data to a server, ...).
    WrongDirection,
    /// Data or a heartbeat before the login completed (server: before a
    /// Login Request was accepted; client: before the Login Accepted).
    BeforeLogin,
    /// A login packet after the login completed (a second Login Request,
    /// Login Accepted or Login Rejected).
    LoginAfterLogin,
}

/// Bad frames counted by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BadFrames {
    /// [`BadFrame::ZeroLength`].
    pub zero_length: u64,
    /// [`BadFrame::TooLong`].
    pub too_long: u64,
    /// [`BadFrame::UnknownType`].
    pub unknown_type: u64,
    /// [`BadFrame::BadLength`].
    pub bad_length: u64,
    /// [`BadFrame::BadField`].
    pub bad_field: u64,
    /// [`BadFrame::WrongDirection`].
    pub wrong_direction: u64,
    /// [`BadFrame::BeforeLogin`].
    pub before_login: u64,
    /// [`BadFrame::LoginAfterLogin`].
    pub login_after_login: u64,
}

impl BadFrames {
    /// Adds `other` into `self`, field by field (to total several connections).
    pub fn add(&mut self, other: &Self) {
        self.zero_length += other.zero_length;
        self.too_long += other.too_long;
        self.unknown_type += other.unknown_type;
        self.bad_length += other.bad_length;
        self.bad_field += other.bad_field;
        self.wrong_direction += other.wrong_direction;
        self.before_login += other.before_login;
        self.login_after_login += other.login_after_login;
    }
}

impl BadFrames {
    /// The counter of one reason.
    #[must_use]
    pub const fn get(&self, reason: BadFrame) -> u64 {
        match reason {
            BadFrame::ZeroLength => self.zero_length,
            BadFrame::TooLong => self.too_long,
            BadFrame::UnknownType => self.unknown_type,
            BadFrame::BadLength => self.bad_length,
            BadFrame::BadField => self.bad_field,
            BadFrame::WrongDirection => self.wrong_direction,
            BadFrame::BeforeLogin => self.before_login,
            BadFrame::LoginAfterLogin => self.login_after_login,
        }
    }

    /// All reasons together.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.zero_length
            + self.too_long
            + self.unknown_type
            + self.bad_length
            + self.bad_field
            + self.wrong_direction
            + self.before_login
            + self.login_after_login
    }

    fn count(&mut self, reason: BadFrame) {
        let c = match reason {
            BadFrame::ZeroLength => &mut self.zero_length,
            BadFrame::TooLong => &mut self.too_long,
            BadFrame::UnknownType => &mut self.unknown_type,
            BadFrame::BadLength => &mut self.bad_length,
            BadFrame::BadField => &mut self.bad_field,
            BadFrame::WrongDirection => &mut self.wrong_direction,
            BadFrame::BeforeLogin => &mut self.before_login,
            BadFrame::LoginAfterLogin => &mut self.login_after_login,
        };
        *c += 1;
    }
}

impl From<ParseError> for BadFrame {
    fn from(e: ParseError) -> Self {
        match e {
            // The splitter hands out whole frames only: a truncated one
            // cannot reach the parser; count it as a length error if it did.
            ParseError::Truncated | ParseError::BadLength { .. } => Self::BadLength,
            ParseError::ZeroLength => Self::ZeroLength,
            ParseError::UnknownType(_) => Self::UnknownType,
            ParseError::BadField { .. } => Self::BadField,
        }
    }
}

impl From<SplitError> for BadFrame {
    fn from(e: SplitError) -> Self {
        match e {
            SplitError::ZeroLength => Self::ZeroLength,
            SplitError::TooLong { .. } => Self::TooLong,
        }
    }
}

/// Why a connection is over: the owner writes what `poll_transmit` still
/// returns, then closes the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The login was refused (server: after sending the Login Rejected;
    /// client: on receiving it).
    LoginRejected(RejectReason),
    /// The client logged out (server: on receiving the Logout Request;
    /// client: once it was handed to `poll_transmit`).
    Logout,
    /// The peer sent nothing for the timeout.
    PeerTimeout,
    /// The client did not log in within the server's login timeout.
    LoginTimeout,
    /// The session ended (server: after sending End of Session; client: on
    /// receiving it). Log in to the next session.
    EndOfSession,
    /// The byte stream cannot be split into frames any more.
    BadStream(SplitError),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LoginRejected(r) => write!(f, "login rejected: {r}"),
            Self::Logout => f.write_str("logged out"),
            Self::PeerTimeout => f.write_str("peer silent for longer than the timeout"),
            Self::LoginTimeout => f.write_str("no login request within the login timeout"),
            Self::EndOfSession => f.write_str("end of session"),
            Self::BadStream(e) => write!(f, "bad byte stream: {e}"),
        }
    }
}

/// Why a message could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// Not logged in (yet, or any more): unsequenced data may be sent only
    /// after the Login Accepted and before the connection closes.
    NotLoggedIn,
    /// `buf` cannot hold the frame (and what was waiting before it).
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// Longer than a SoupBinTCP packet can carry.
    TooLong(usize),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLoggedIn => f.write_str("not logged in: wait for the login to complete"),
            Self::BufferTooSmall { needed } => {
                write!(f, "transmit buffer too small: {needed} bytes needed")
            }
            Self::TooLong(n) => write!(
                f,
                "message of {n} bytes exceeds SoupBinTCP's {} bytes",
                hftnet_wire::soupbintcp::MAX_PAYLOAD_LEN
            ),
        }
    }
}

impl std::error::Error for SendError {}

/// A configuration field out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is allowed.
    pub why: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "soupbin {}: {}", self.field, self.why)
    }
}

impl std::error::Error for ConfigError {}

/// Control frames waiting to be written (login answers, heartbeats, end of
/// session, logout): a few dozen bytes, drained before anything else.
#[derive(Debug, Clone)]
struct Pending {
    buf: [u8; 128],
    start: usize,
    end: usize,
}

impl Pending {
    const fn new() -> Self {
        Self {
            buf: [0; 128],
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn len(&self) -> usize {
        self.end - self.start
    }

    /// Queues a control frame. They are at most 54 bytes and at most a few
    /// wait at once; one that does not fit is a bug, reported as `false`.
    fn push(&mut self, r: &Repr<'_>) -> bool {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        match r.emit(&mut self.buf[self.end..]) {
            Ok(n) => {
                self.end += n;
                true
            }
            Err(_) => false,
        }
    }

    /// Moves as much as fits into `out`; returns the bytes moved.
    fn drain(&mut self, out: &mut [u8]) -> usize {
        let n = self.len().min(out.len());
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        n
    }
}

/// Feeds `bytes` through `splitter`, calling `frame` with every whole frame
/// parsed (or its parse error) until it returns `false`.
///
/// # Errors
/// The splitter's error, when the stream cannot be split further.
fn split_frames(
    splitter: &mut FrameSplitter,
    mut bytes: &[u8],
    mut frame: impl FnMut(Result<Repr<'_>, ParseError>) -> bool,
) -> Result<(), SplitError> {
    loop {
        let n = splitter.feed(bytes);
        bytes = &bytes[n..];
        while let Some(f) = splitter.next_frame()? {
            if !frame(Repr::parse_frame(f)) {
                return Ok(());
            }
        }
        if bytes.is_empty() {
            return Ok(());
        }
    }
}

/// What both ends count alike; part of [`ServerCounters`] and
/// [`ClientCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes handed to `handle_input`.
    pub bytes_in: u64,
    /// Whole frames received, bad ones included.
    pub frames_in: u64,
    /// Bytes returned by `poll_transmit` / `send_unsequenced`.
    pub bytes_out: u64,
    /// Frames sent (control frames count when queued; they go out first).
    pub frames_out: u64,
    /// Unsequenced Data received and delivered.
    pub unsequenced_in: u64,
    /// Unsequenced Data sent.
    pub unsequenced_out: u64,
    /// Heartbeats received from the peer.
    pub heartbeats_in: u64,
    /// Heartbeats sent.
    pub heartbeats_out: u64,
    /// Debug packets received (ignored).
    pub debug_in: u64,
    /// Bad frames, by reason.
    pub bad_frames: BadFrames,
}

impl Traffic {
    /// Adds `other` into `self`, field by field.
    pub fn add(&mut self, other: &Self) {
        self.bytes_in += other.bytes_in;
        self.frames_in += other.frames_in;
        self.bytes_out += other.bytes_out;
        self.frames_out += other.frames_out;
        self.unsequenced_in += other.unsequenced_in;
        self.unsequenced_out += other.unsequenced_out;
        self.heartbeats_in += other.heartbeats_in;
        self.heartbeats_out += other.heartbeats_out;
        self.debug_in += other.debug_in;
        self.bad_frames.add(&other.bad_frames);
    }
}

/// The state both ends keep alike, apart from the splitter: control frames
/// waiting, when the last byte came in and went out, why the connection is
/// over, and the common counters.
#[derive(Debug, Clone)]
struct Io {
    pending: Pending,
    last_in: u64,
    last_out: u64,
    close: Option<CloseReason>,
    traffic: Traffic,
}

impl Io {
    /// Queues a control frame (counted as sent: it goes out first).
    fn queue(&mut self, r: &Repr<'_>) {
        if self.pending.push(r) {
            self.traffic.frames_out += 1;
        }
    }

    /// Records why the connection is over (the first reason wins).
    fn close(&mut self, reason: CloseReason) {
        self.close.get_or_insert(reason);
    }

    fn is_open(&self) -> bool {
        self.close.is_none()
    }

    /// When a heartbeat is due.
    fn heartbeat_at(&self, interval_ns: u64) -> u64 {
        self.last_out.saturating_add(interval_ns)
    }

    /// When the peer is given up on.
    fn silence_at(&self, timeout_ns: u64) -> u64 {
        self.last_in.saturating_add(timeout_ns)
    }

    /// Queues a heartbeat if nothing else waits and the interval passed.
    fn heartbeat(&mut self, now: u64, interval_ns: u64, r: &Repr<'_>) {
        if self.pending.is_empty() && now >= self.heartbeat_at(interval_ns) {
            self.queue(r);
            self.traffic.heartbeats_out += 1;
        }
    }

    /// Records `n` bytes handed out at `now`.
    fn sent(&mut self, now: u64, n: usize) {
        if n > 0 {
            self.last_out = now;
            self.traffic.bytes_out += n as u64;
        }
    }

    /// Writes what waits, then one Unsequenced Data frame, into `buf`.
    fn send_unsequenced(
        &mut self,
        now: u64,
        logged_in: bool,
        msg: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        if !logged_in || !self.is_open() {
            return Err(SendError::NotLoggedIn);
        }
        if msg.len() > hftnet_wire::soupbintcp::MAX_PAYLOAD_LEN {
            return Err(SendError::TooLong(msg.len()));
        }
        let needed = self.pending.len() + hftnet_wire::soupbintcp::frame_len(msg.len());
        if buf.len() < needed {
            return Err(SendError::BufferTooSmall { needed });
        }
        let at = self.pending.drain(buf);
        let n = Repr::UnsequencedData(msg)
            .emit(&mut buf[at..])
            .map_err(|_| SendError::BufferTooSmall { needed })?;
        self.traffic.frames_out += 1;
        self.traffic.unsequenced_out += 1;
        self.sent(now, at + n);
        Ok(at + n)
    }
}

/// A connection's byte stream: the splitter and the [`Io`] state.
#[derive(Debug, Clone)]
struct Link {
    splitter: FrameSplitter,
    io: Io,
}

impl Link {
    fn new(max_length: usize, now: u64) -> Self {
        Self {
            splitter: FrameSplitter::new(max_length),
            io: Io {
                pending: Pending::new(),
                last_in: now,
                last_out: now,
                close: None,
                traffic: Traffic::default(),
            },
        }
    }

    /// Splits `bytes` into frames and hands each parsed one to `frame`,
    /// counting the rest, until the connection closes. Input after the
    /// close is ignored.
    fn handle_input(&mut self, now: u64, bytes: &[u8], mut frame: impl FnMut(Repr<'_>, &mut Io)) {
        let io = &mut self.io;
        if !io.is_open() || bytes.is_empty() {
            return;
        }
        io.traffic.bytes_in += bytes.len() as u64;
        io.last_in = now;
        let split = split_frames(&mut self.splitter, bytes, |f| {
            io.traffic.frames_in += 1;
            match f {
                Ok(Repr::Debug(_)) => io.traffic.debug_in += 1,
                Ok(r) => frame(r, io),
                Err(e) => io.traffic.bad_frames.count(e.into()),
            }
            io.is_open()
        });
        if let Err(e) = split {
            io.traffic.bad_frames.count(e.into());
            io.close(CloseReason::BadStream(e));
        }
    }
}

#[cfg(test)]
mod tests;
