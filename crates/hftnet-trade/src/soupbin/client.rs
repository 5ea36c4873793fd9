//! The client end: [`ClientConnection`], one per TCP connection, and
//! [`ClientConfig`], which carries the position from one connection to the
//! next. See the module documentation of [`super`] for the driving order.

use hftnet_wire::soupbintcp::{
    LoginRequest, MAX_HEARTBEAT_TIMEOUT_MS, Password, RejectReason, Repr, Session, Username,
};

use super::{
    BadFrame, CloseReason, ConfigError, HEARTBEAT_INTERVAL_NS, Io, Link, PEER_TIMEOUT_NS,
    SendError, Traffic,
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
    /// Bytes, frames, unsequenced data, heartbeats (server's in, client's
    /// out), debug packets and bad frames.
    pub traffic: Traffic,
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
    /// End of Session received.
    pub end_of_session: u64,
    /// Times the server was given up on.
    pub server_timeouts: u64,
}

impl ClientCounters {
    /// Adds `other` into `self`, field by field (to total the connections
    /// of a client across reconnections).
    pub fn add(&mut self, other: &Self) {
        self.traffic.add(&other.traffic);
        self.logins_accepted += other.logins_accepted;
        self.logins_rejected += other.logins_rejected;
        self.sequenced_in += other.sequenced_in;
        self.duplicates += other.duplicates;
        self.missing += other.missing;
        self.end_of_session += other.end_of_session;
        self.server_timeouts += other.server_timeouts;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Login Request queued or sent; waiting for the answer.
    LoggingIn,
    /// Logged in; `recv` is the number of the next Sequenced Data to arrive.
    LoggedIn { recv: u64 },
}

/// One connection of a SoupBinTCP client; see the module documentation of
/// [`super`] for the calling order. Built with the Login Request queued:
/// the first `poll_transmit` returns it.
#[derive(Debug, Clone)]
pub struct ClientConnection {
    config: ClientConfig,
    link: Link,
    state: State,
    /// A Logout Request was queued: the connection closes once it is out.
    logging_out: bool,
    /// Next sequence number to deliver (0: take the server's).
    next_expected: u64,
    /// Everything but `traffic`, which the link keeps.
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
        let mut link = Link::new(config.max_length, now);
        link.io.queue(&Repr::LoginRequest(LoginRequest {
            username: config.username,
            password: config.password,
            session: config.session,
            sequence: config.next_sequence,
            heartbeat_timeout_ms: config.heartbeat_timeout_ms,
        }));
        if link.io.pending.is_empty() {
            return Err(ConfigError {
                field: "session",
                why: "cannot be written in a Login Request",
            });
        }
        Ok(Self {
            config,
            link,
            state: State::LoggingIn,
            logging_out: false,
            next_expected: config.next_sequence,
            counters: ClientCounters::default(),
        })
    }

    /// The counters, by value.
    #[must_use]
    pub fn counters(&self) -> ClientCounters {
        ClientCounters {
            traffic: self.link.io.traffic,
            ..self.counters
        }
    }

    /// Why the connection is over, once it is.
    #[must_use]
    pub const fn close_reason(&self) -> Option<CloseReason> {
        self.link.io.close
    }

    /// Whether the login was accepted and the connection is open (and no
    /// logout was asked for).
    #[must_use]
    pub const fn is_logged_in(&self) -> bool {
        matches!(self.state, State::LoggedIn { .. })
            && !self.logging_out
            && self.link.io.close.is_none()
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
    /// receives every message not delivered yet, once. (If that session has
    /// ended meanwhile, the server refuses it with `S`: log into the next
    /// one with a blank session and sequence number 1.)
    #[must_use]
    pub const fn reconnect_config(&self) -> ClientConfig {
        let mut c = self.config;
        c.next_sequence = self.next_expected;
        c
    }

    /// Queues a Logout Request; the connection closes once `poll_transmit`
    /// handed it out.
    pub fn logout(&mut self) {
        if self.link.io.is_open() && !self.logging_out {
            self.link.io.queue(&Repr::LogoutRequest);
            self.logging_out = true;
        }
    }

    /// Handles bytes read from the socket (any amount); events go to
    /// `on_event`. Input after the connection closed is ignored.
    pub fn handle_input(
        &mut self,
        now: u64,
        bytes: &[u8],
        mut on_event: impl FnMut(ClientEvent<'_>),
    ) {
        let Self {
            config,
            link,
            state,
            next_expected,
            counters,
            ..
        } = self;
        link.handle_input(now, bytes, |r, io| {
            let mut h = Handler {
                io,
                config: &mut *config,
                state: &mut *state,
                next_expected: &mut *next_expected,
                counters: &mut *counters,
            };
            h.frame(r, &mut on_event);
        });
    }

    /// When to call `handle_timeout` (server silence) or `poll_transmit`
    /// (a heartbeat) next; `None` once closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let io = &self.link.io;
        if !io.is_open() {
            return None;
        }
        let timeout = io.silence_at(self.config.server_timeout_ns);
        Some(if self.is_logged_in() {
            timeout.min(io.heartbeat_at(self.config.heartbeat_interval_ns))
        } else {
            timeout
        })
    }

    /// Gives up on the server when it was silent for the timeout; returns
    /// [`CloseReason::PeerTimeout`] when it did now. Then reconnect with
    /// [`ClientConnection::reconnect_config`].
    pub fn handle_timeout(&mut self, now: u64) -> Option<CloseReason> {
        let io = &mut self.link.io;
        if !io.is_open() || now < io.silence_at(self.config.server_timeout_ns) {
            return None;
        }
        self.counters.server_timeouts += 1;
        io.close(CloseReason::PeerTimeout);
        io.close
    }

    /// Writes what is due into `buf` — the Login Request, a Logout Request,
    /// or a Client Heartbeat once logged in and the interval passed without
    /// output — and returns its length. Write those bytes to the socket.
    pub fn poll_transmit(&mut self, now: u64, buf: &mut [u8]) -> usize {
        if self.is_logged_in() {
            let interval = self.config.heartbeat_interval_ns;
            self.link
                .io
                .heartbeat(now, interval, &Repr::ClientHeartbeat);
        }
        let io = &mut self.link.io;
        let n = io.pending.drain(buf);
        io.sent(now, n);
        if self.logging_out && io.pending.is_empty() {
            io.close(CloseReason::Logout);
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
        let logged_in = self.is_logged_in();
        self.link.io.send_unsequenced(now, logged_in, msg, buf)
    }
}

/// What a frame handler changes: the connection minus its splitter (which
/// holds the frame being handled).
struct Handler<'c> {
    io: &'c mut Io,
    config: &'c mut ClientConfig,
    state: &'c mut State,
    next_expected: &'c mut u64,
    counters: &'c mut ClientCounters,
}

impl Handler<'_> {
    fn bad(&mut self, reason: BadFrame) {
        self.io.traffic.bad_frames.count(reason);
    }

    /// One parsed frame from the server.
    fn frame(&mut self, r: Repr<'_>, on_event: &mut impl FnMut(ClientEvent<'_>)) {
        let c = &mut *self.counters;
        match (r, &mut *self.state) {
            // Counted by the link.
            (Repr::Debug(_), _) => {}
            (Repr::LoginAccepted { session, sequence }, State::LoggingIn) => {
                c.logins_accepted += 1;
                self.config.session = session;
                let next = &mut *self.next_expected;
                if *next == 0 {
                    *next = sequence;
                } else if sequence > *next {
                    let count = sequence - *next;
                    c.missing += count;
                    on_event(ClientEvent::Gap {
                        first: *next,
                        count,
                    });
                    *next = sequence;
                }
                *self.state = State::LoggedIn { recv: sequence };
                on_event(ClientEvent::LoggedIn { session, sequence });
            }
            (Repr::LoginRejected(reason), State::LoggingIn) => {
                c.logins_rejected += 1;
                self.io.close(CloseReason::LoginRejected(reason));
                on_event(ClientEvent::LoginRejected(reason));
            }
            (Repr::LoginAccepted { .. } | Repr::LoginRejected(_), State::LoggedIn { .. }) => {
                self.bad(BadFrame::LoginAfterLogin);
            }
            (Repr::SequencedData(message), State::LoggedIn { recv }) => {
                let sequence = *recv;
                // The message numbered u64::MAX would leave no next expected
                // number (nor would any after it): counted, not delivered.
                let Some(after) = sequence.checked_add(1) else {
                    self.bad(BadFrame::BadField);
                    return;
                };
                *recv = after;
                if sequence < *self.next_expected {
                    c.duplicates += 1;
                } else {
                    *self.next_expected = after;
                    c.sequenced_in += 1;
                    on_event(ClientEvent::Sequenced { sequence, message });
                }
            }
            (Repr::UnsequencedData(m), State::LoggedIn { .. }) => {
                self.io.traffic.unsequenced_in += 1;
                on_event(ClientEvent::Unsequenced(m));
            }
            (Repr::ServerHeartbeat, State::LoggedIn { .. }) => {
                self.io.traffic.heartbeats_in += 1;
            }
            (Repr::EndOfSession, State::LoggedIn { .. }) => {
                c.end_of_session += 1;
                self.io.close(CloseReason::EndOfSession);
                on_event(ClientEvent::EndOfSession);
            }
            (
                Repr::SequencedData(_)
                | Repr::UnsequencedData(_)
                | Repr::ServerHeartbeat
                | Repr::EndOfSession,
                State::LoggingIn,
            ) => self.bad(BadFrame::BeforeLogin),
            (Repr::LoginRequest(_) | Repr::ClientHeartbeat | Repr::LogoutRequest, _) => {
                self.bad(BadFrame::WrongDirection);
            }
        }
    }
}
