//! The client end: [`ClientConnection`], one per TCP connection, and
//! [`ClientConfig`], which carries the position from one connection to the
//! next. See the module documentation of [`super`] for the driving order.

use hftnet_wire::soupbintcp::{
    FrameSplitter, LoginRequest, MAX_HEARTBEAT_TIMEOUT_MS, Password, RejectReason, Repr, Session,
    Username,
};

use super::{
    BadFrame, BadFrames, CloseReason, ConfigError, HEARTBEAT_INTERVAL_NS, PEER_TIMEOUT_NS, Pending,
    SendError, split_frames, write_unsequenced,
};

/// What a client logs in with, and where it resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// Username (padded on the right).
    pub username: Username,
    /// Password (padded on the right).
    pub password: Password,
    /// The session to log into; blank for the server's current one (the
    /// first login of the day). [`ClientConnection::reconnect_config`] fills
    /// in the session learned from the Login Accepted.
    pub session: Session,
    /// The next sequence number wanted: 1 for a whole session, the next
    /// expected one when resuming, 0 for only what is published from now
    /// on.
    pub next_sequence: u64,
    /// SoupBinTCP 4.1's heartbeat-timeout field (milliseconds, at most
    /// 99,999): `Some` sends the 4.1 Login Request, `None` the 4.0 one.
    /// Default `None`.
    pub heartbeat_timeout_ms: Option<u32>,
    /// Client Heartbeat after this long without sending. Default 1 s.
    pub heartbeat_interval_ns: u64,
    /// Give up on a server silent this long. Default 15 s.
    pub server_timeout_ns: u64,
    /// Largest length field accepted from the server, 1 to 65535; the
    /// connection buffers one frame of it. Default 65535 (the protocol
    /// sets no lower limit).
    pub max_length: usize,
}

impl ClientConfig {
    /// Defaults: log into the current session from sequence number 1.
    #[must_use]
    pub fn new(username: Username, password: Password) -> Self {
        Self {
            username,
            password,
            session: Session([b' '; 10]),
            next_sequence: 1,
            heartbeat_timeout_ms: None,
            heartbeat_interval_ns: HEARTBEAT_INTERVAL_NS,
            server_timeout_ns: PEER_TIMEOUT_NS,
            max_length: usize::from(u16::MAX),
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, why| Err(ConfigError { field, why });
        if self.heartbeat_interval_ns == 0 {
            return bad("heartbeat_interval_ns", "must be positive");
        }
        if self.server_timeout_ns <= self.heartbeat_interval_ns {
            return bad(
                "server_timeout_ns",
                "must be longer than the heartbeat interval",
            );
        }
        if self
            .heartbeat_timeout_ms
            .is_some_and(|ms| ms > MAX_HEARTBEAT_TIMEOUT_MS)
        {
            return bad(
                "heartbeat_timeout_ms",
                "must fit the 5-digit field (at most 99999)",
            );
        }
        if !(1..=usize::from(u16::MAX)).contains(&self.max_length) {
            return bad("max_length", "must be between 1 and 65535");
        }
        if !self
            .session
            .0
            .iter()
            .all(|c| c.is_ascii_graphic() || *c == b' ')
        {
            return bad("session", "must be printable ASCII");
        }
        Ok(())
    }
}

/// What a client connection tells its owner while it handles input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEvent<'a> {
    /// The login was accepted: `session` and the sequence number of the
    /// next Sequenced Data.
    LoggedIn {
        /// The session logged into.
        session: Session,
        /// The next sequence number the server sends.
        sequence: u64,
    },
    /// The login was refused; the connection is closed.
    LoginRejected(RejectReason),
    /// One sequenced message, in order, each number exactly once across
    /// reconnections (borrowed from the input).
    Sequenced {
        /// Its sequence number.
        sequence: u64,
        /// The message.
        message: &'a [u8],
    },
    /// One unsequenced message from the server.
    Unsequenced(&'a [u8]),
    /// The server's next sequence number is beyond the one asked for:
    /// `count` messages from `first` on will not come (the server lost
    /// them, or the request was beyond its stream).
    Gap {
        /// First missing sequence number.
        first: u64,
        /// How many.
        count: u64,
    },
    /// The session ended; the connection is closed. Log into the next
    /// session (blank session, sequence number 1).
    EndOfSession,
}

/// Counters of one client connection; plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Bytes handed to `handle_input`.
    pub bytes_in: u64,
    /// Whole frames received, bad ones included.
    pub frames_in: u64,
    /// Bytes returned by `poll_transmit` / `send_unsequenced`.
    pub bytes_out: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Logins accepted (0 or 1).
    pub logins_accepted: u64,
    /// Logins refused.
    pub logins_rejected: u64,
    /// Sequenced messages delivered.
    pub sequenced_in: u64,
    /// Sequenced messages received again (numbered below the next expected
    /// one, after the server resumed earlier than asked) and skipped.
    pub duplicates: u64,
    /// Messages reported missing with [`ClientEvent::Gap`].
    pub missing: u64,
    /// Unsequenced Data received.
    pub unsequenced_in: u64,
    /// Unsequenced Data sent.
    pub unsequenced_out: u64,
    /// Server Heartbeats received.
    pub heartbeats_in: u64,
    /// Client Heartbeats sent.
    pub heartbeats_out: u64,
    /// Debug packets received (ignored).
    pub debug_in: u64,
    /// End of Session received.
    pub end_of_session: u64,
    /// Times the server was given up on.
    pub server_timeouts: u64,
    /// Bad frames, by reason.
    pub bad_frames: BadFrames,
}

impl ClientCounters {
    /// Adds `other` into `self`, field by field (to total the connections of a client across reconnections).
    pub fn add(&mut self, other: &Self) {
        self.bytes_in += other.bytes_in;
        self.frames_in += other.frames_in;
        self.bytes_out += other.bytes_out;
        self.frames_out += other.frames_out;
        self.logins_accepted += other.logins_accepted;
        self.logins_rejected += other.logins_rejected;
        self.sequenced_in += other.sequenced_in;
        self.duplicates += other.duplicates;
        self.missing += other.missing;
        self.unsequenced_in += other.unsequenced_in;
        self.unsequenced_out += other.unsequenced_out;
        self.heartbeats_in += other.heartbeats_in;
        self.heartbeats_out += other.heartbeats_out;
        self.debug_in += other.debug_in;
        self.end_of_session += other.end_of_session;
        self.server_timeouts += other.server_timeouts;
        self.bad_frames.add(&other.bad_frames);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Login Request queued or sent; waiting for the answer.
    LoggingIn,
    /// Logged in; `recv` is the number of the next Sequenced Data to arrive.
    LoggedIn { recv: u64 },
    /// Over.
    Done,
}

/// One connection of a SoupBinTCP client; see the module documentation of
/// [`super`] for the calling order. Built with the Login Request queued:
/// the first `poll_transmit` returns it.
#[derive(Debug, Clone)]
pub struct ClientConnection {
    config: ClientConfig,
    splitter: FrameSplitter,
    pending: Pending,
    state: State,
    /// A Logout Request was queued: the connection closes once it is out.
    logging_out: bool,
    /// Next sequence number to deliver (0: take the server's).
    next_expected: u64,
    last_in: u64,
    last_out: u64,
    close: Option<CloseReason>,
    counters: ClientCounters,
}

impl ClientConnection {
    /// A connection established at `now`, its Login Request queued.
    /// Allocates its receive buffer ([`ClientConfig::max_length`] + 2).
    ///
    /// # Errors
    /// The first [`ConfigError`] of [`ClientConfig::validate`].
    pub fn new(config: ClientConfig, now: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut pending = Pending::new();
        let queued = pending.push(&Repr::LoginRequest(LoginRequest {
            username: config.username,
            password: config.password,
            session: config.session,
            sequence: config.next_sequence,
            heartbeat_timeout_ms: config.heartbeat_timeout_ms,
        }));
        if !queued {
            return Err(ConfigError {
                field: "session",
                why: "cannot be written in a Login Request",
            });
        }
        Ok(Self {
            config,
            splitter: FrameSplitter::new(config.max_length),
            pending,
            state: State::LoggingIn,
            logging_out: false,
            next_expected: config.next_sequence,
            last_in: now,
            last_out: now,
            close: None,
            counters: ClientCounters {
                frames_out: 1,
                ..ClientCounters::default()
            },
        })
    }

    /// The counters.
    #[must_use]
    pub const fn counters(&self) -> &ClientCounters {
        &self.counters
    }

    /// Why the connection is over, once it is.
    #[must_use]
    pub const fn close_reason(&self) -> Option<CloseReason> {
        self.close
    }

    /// Whether the login was accepted and the connection is open.
    #[must_use]
    pub const fn is_logged_in(&self) -> bool {
        matches!(self.state, State::LoggedIn { .. }) && !self.logging_out
    }

    /// The next sequence number to be delivered (0 until the Login
    /// Accepted when the configuration asked for 0).
    #[must_use]
    pub const fn next_expected(&self) -> u64 {
        self.next_expected
    }

    /// The session: the one asked for, then the one the Login Accepted
    /// named.
    #[must_use]
    pub const fn session(&self) -> Session {
        self.config.session
    }

    /// The configuration of the next connection: the same credentials, the
    /// session learned, and the next expected sequence number, so that it
    /// receives every message not delivered yet, once.
    #[must_use]
    pub const fn reconnect_config(&self) -> ClientConfig {
        let mut c = self.config;
        c.next_sequence = self.next_expected;
        c
    }

    /// Queues a Logout Request; the connection closes once `poll_transmit`
    /// handed it out.
    pub fn logout(&mut self) {
        if self.close.is_none() && !self.logging_out {
            if self.pending.push(&Repr::LogoutRequest) {
                self.counters.frames_out += 1;
            }
            self.logging_out = true;
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if self.close.is_none() {
            self.close = Some(reason);
        }
        self.state = State::Done;
    }

    /// Handles bytes read from the socket (any amount); events go to
    /// `on_event`. Input after the connection closed is ignored.
    pub fn handle_input(
        &mut self,
        now: u64,
        bytes: &[u8],
        mut on_event: impl FnMut(ClientEvent<'_>),
    ) {
        if self.close.is_some() || bytes.is_empty() {
            return;
        }
        self.counters.bytes_in += bytes.len() as u64;
        self.last_in = now;
        let Self {
            config,
            splitter,
            state,
            next_expected,
            close,
            counters,
            ..
        } = self;
        let split = split_frames(splitter, bytes, |frame| {
            counters.frames_in += 1;
            match frame {
                Ok(r) => frame_in(
                    r,
                    config,
                    state,
                    next_expected,
                    close,
                    counters,
                    &mut on_event,
                ),
                Err(e) => counters.bad_frames.count(e.into()),
            }
            close.is_none()
        });
        if let Err(e) = split {
            self.counters.bad_frames.count(e.into());
            self.close(CloseReason::BadStream(e));
        }
    }

    /// When to call `handle_timeout` (server silence) or `poll_transmit`
    /// (a heartbeat) next; `None` once closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.close.is_some() {
            return None;
        }
        let timeout = self.last_in.saturating_add(self.config.server_timeout_ns);
        Some(match self.state {
            State::LoggedIn { .. } => timeout.min(
                self.last_out
                    .saturating_add(self.config.heartbeat_interval_ns),
            ),
            _ => timeout,
        })
    }

    /// Gives up on the server when it was silent for the timeout; returns
    /// [`CloseReason::PeerTimeout`] when it did now. Then reconnect with
    /// [`ClientConnection::reconnect_config`].
    pub fn handle_timeout(&mut self, now: u64) -> Option<CloseReason> {
        if self.close.is_some() || now < self.last_in.saturating_add(self.config.server_timeout_ns)
        {
            return None;
        }
        self.counters.server_timeouts += 1;
        self.close(CloseReason::PeerTimeout);
        self.close
    }

    /// Writes what is due into `buf` — the Login Request, a Logout Request,
    /// or a Client Heartbeat once logged in and the interval passed without
    /// output — and returns its length. Write those bytes to the socket.
    pub fn poll_transmit(&mut self, now: u64, buf: &mut [u8]) -> usize {
        if self.is_logged_in()
            && self.pending.is_empty()
            && now
                >= self
                    .last_out
                    .saturating_add(self.config.heartbeat_interval_ns)
            && self.pending.push(&Repr::ClientHeartbeat)
        {
            self.counters.frames_out += 1;
            self.counters.heartbeats_out += 1;
        }
        let n = self.pending.drain(buf);
        if n > 0 {
            self.last_out = now;
            self.counters.bytes_out += n as u64;
        }
        if self.logging_out && self.pending.is_empty() {
            self.close(CloseReason::Logout);
        }
        n
    }

    /// Writes one Unsequenced Data frame (after any control frame waiting)
    /// into `buf`; returns the bytes to write to the socket.
    ///
    /// # Errors
    /// [`SendError::NotLoggedIn`] before the Login Accepted, after a
    /// logout or once closed; [`SendError::BufferTooSmall`];
    /// [`SendError::TooLong`]. Nothing is written on error.
    pub fn send_unsequenced(
        &mut self,
        now: u64,
        msg: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        if !self.is_logged_in() {
            return Err(SendError::NotLoggedIn);
        }
        let (_, n) = write_unsequenced(&mut self.pending, msg, buf)?;
        self.counters.frames_out += 1;
        self.counters.unsequenced_out += 1;
        self.counters.bytes_out += n as u64;
        self.last_out = now;
        Ok(n)
    }
}

/// One parsed frame from the server.
fn frame_in(
    r: Repr<'_>,
    config: &mut ClientConfig,
    state: &mut State,
    next_expected: &mut u64,
    close: &mut Option<CloseReason>,
    c: &mut ClientCounters,
    on_event: &mut impl FnMut(ClientEvent<'_>),
) {
    let logging_in = *state == State::LoggingIn;
    match (r, &mut *state) {
        (Repr::Debug(_), _) => c.debug_in += 1,
        (Repr::LoginAccepted { session, sequence }, State::LoggingIn) => {
            c.logins_accepted += 1;
            config.session = session;
            if *next_expected == 0 {
                *next_expected = sequence;
            } else if sequence > *next_expected {
                let count = sequence - *next_expected;
                c.missing += count;
                on_event(ClientEvent::Gap {
                    first: *next_expected,
                    count,
                });
                *next_expected = sequence;
            }
            *state = State::LoggedIn { recv: sequence };
            on_event(ClientEvent::LoggedIn { session, sequence });
        }
        (Repr::LoginRejected(reason), State::LoggingIn) => {
            c.logins_rejected += 1;
            *state = State::Done;
            *close = Some(CloseReason::LoginRejected(reason));
            on_event(ClientEvent::LoginRejected(reason));
        }
        (Repr::LoginAccepted { .. } | Repr::LoginRejected(_), _) => {
            c.bad_frames.count(BadFrame::LoginAfterLogin);
        }
        (Repr::SequencedData(message), State::LoggedIn { recv }) => {
            let sequence = *recv;
            // The message numbered u64::MAX would leave no next expected
            // number (nor would any after it): counted, not delivered.
            let Some(after) = sequence.checked_add(1) else {
                c.bad_frames.count(BadFrame::BadField);
                return;
            };
            *recv = after;
            if sequence < *next_expected {
                c.duplicates += 1;
            } else {
                *next_expected = after;
                c.sequenced_in += 1;
                on_event(ClientEvent::Sequenced { sequence, message });
            }
        }
        (Repr::UnsequencedData(m), State::LoggedIn { .. }) => {
            c.unsequenced_in += 1;
            on_event(ClientEvent::Unsequenced(m));
        }
        (Repr::ServerHeartbeat, _) if !logging_in => c.heartbeats_in += 1,
        (Repr::EndOfSession, State::LoggedIn { .. }) => {
            c.end_of_session += 1;
            *state = State::Done;
            *close = Some(CloseReason::EndOfSession);
            on_event(ClientEvent::EndOfSession);
        }
        (
            Repr::SequencedData(_)
            | Repr::UnsequencedData(_)
            | Repr::ServerHeartbeat
            | Repr::EndOfSession,
            _,
        ) => c.bad_frames.count(BadFrame::BeforeLogin),
        (Repr::LoginRequest(_) | Repr::ClientHeartbeat | Repr::LogoutRequest, _) => {
            c.bad_frames.count(BadFrame::WrongDirection);
        }
    }
}
