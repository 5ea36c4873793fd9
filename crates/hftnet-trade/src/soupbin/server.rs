//! The server end: [`Server`] (shared by all connections) and
//! [`ServerConnection`] (one per accepted TCP connection). See the module
//! documentation of [`super`] for the driving order and the rules.

use hftnet_wire::soupbintcp::{
    LoginRequest, Password, RejectReason, Repr, Session, Username, packet_type, write_header,
};

use super::{
    BadFrame, CloseReason, ConfigError, HEARTBEAT_INTERVAL_NS, Io, LOGIN_TIMEOUT_NS, Link,
    PEER_TIMEOUT_NS, SendError, StoreConfig, StoreError, StreamId, Streams, Traffic,
};

/// How a [`Server`] authenticates and paces its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The accepted username / password pairs (compared case-insensitively,
    /// as the specification says). At least one.
    pub credentials: Vec<(Username, Password)>,
    /// Server Heartbeat after this long without sending. Default 1 s.
    pub heartbeat_interval_ns: u64,
    /// Close a logged-in connection whose client sent nothing for this long
    /// (unless its 4.1 Login Request set its own timeout). Default 15 s.
    pub client_timeout_ns: u64,
    /// Close a connection that has not logged in within this long after
    /// it was accepted. Default 30 s.
    pub login_timeout_ns: u64,
    /// Largest length field accepted from a client (a Login Request is 52;
    /// OUCH messages are below 1 KiB). 1 to 65535. Default 4096. Each
    /// connection buffers one frame of this length.
    pub max_length: usize,
    /// Bounds of every stream.
    pub store: StoreConfig,
}

impl ServerConfig {
    /// Defaults, accepting one username / password pair.
    #[must_use]
    pub fn new(username: Username, password: Password) -> Self {
        Self {
            credentials: vec![(username, password)],
            heartbeat_interval_ns: HEARTBEAT_INTERVAL_NS,
            client_timeout_ns: PEER_TIMEOUT_NS,
            login_timeout_ns: LOGIN_TIMEOUT_NS,
            max_length: 4096,
            store: StoreConfig::default(),
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, why| Err(ConfigError { field, why });
        if self.credentials.is_empty() {
            return bad(
                "credentials",
                "must accept at least one username / password",
            );
        }
        if self.heartbeat_interval_ns == 0 {
            return bad("heartbeat_interval_ns", "must be positive");
        }
        if self.client_timeout_ns <= self.heartbeat_interval_ns {
            return bad(
                "client_timeout_ns",
                "must be longer than the heartbeat interval",
            );
        }
        if self.login_timeout_ns == 0 {
            return bad("login_timeout_ns", "must be positive");
        }
        if !(1..=usize::from(u16::MAX)).contains(&self.max_length) {
            return bad("max_length", "must be between 1 and 65535");
        }
        if let Err(StoreError::Config { field, why }) = self.store.validate() {
            return bad(field, why);
        }
        Ok(())
    }
}

/// What every connection of a server shares: credentials, timers, streams.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    streams: Streams,
}

impl Server {
    /// A server with no stream yet (open one with [`Server::open`]).
    ///
    /// # Errors
    /// The first [`ConfigError`] of [`ServerConfig::validate`].
    pub fn new(config: ServerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let streams = Streams::new(config.store).map_err(|_| ConfigError {
            field: "store",
            why: "out of range",
        })?;
        Ok(Self { config, streams })
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The streams.
    #[must_use]
    pub const fn streams(&self) -> &Streams {
        &self.streams
    }

    /// Opens a stream (see [`Streams::open`]).
    ///
    /// # Errors
    /// As [`Streams::open`].
    pub fn open(
        &mut self,
        session: Session,
        owner: Option<Username>,
    ) -> Result<StreamId, StoreError> {
        self.streams.open(session, owner)
    }

    /// Appends a sequenced message to a stream; returns its sequence
    /// number. Then call `poll_transmit` on the connections.
    ///
    /// # Errors
    /// As [`Streams::publish`]; on [`StoreError::Full`] the stream takes
    /// nothing more: end it ([`Server::end`]) and open the next session.
    pub fn publish(&mut self, id: StreamId, msg: &[u8]) -> Result<u64, StoreError> {
        self.streams.publish(id, msg)
    }

    /// Ends a session (see [`Streams::end`]).
    ///
    /// # Errors
    /// As [`Streams::end`].
    pub fn end(&mut self, id: StreamId) -> Result<(), StoreError> {
        self.streams.end(id)
    }

    /// A new accepted connection at `now`, waiting for its Login Request.
    /// Allocates its receive buffer ([`ServerConfig::max_length`] + 2).
    #[must_use]
    pub fn connect(&self, now: u64) -> ServerConnection {
        ServerConnection {
            link: Link::new(self.config.max_length, now),
            state: State::AwaitingLogin,
            accepted_at: now,
            client_timeout_ns: self.config.client_timeout_ns,
            heartbeat_interval_ns: self.config.heartbeat_interval_ns,
            login_timeout_ns: self.config.login_timeout_ns,
            counters: ServerCounters::default(),
        }
    }
}

/// What a connection tells its owner while it handles input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent<'a> {
    /// A login was accepted; sequenced messages from `next_sequence` on
    /// follow (replay first when it is below the stream's next number).
    LoggedIn {
        /// Who.
        username: Username,
        /// The stream logged into.
        stream: StreamId,
        /// Its session name.
        session: Session,
        /// The first sequence number this connection sends.
        next_sequence: u64,
    },
    /// A login was refused; the connection closes once the Login Rejected
    /// is written.
    LoginRejected {
        /// The username given.
        username: Username,
        /// Why.
        reason: RejectReason,
    },
    /// A message from the client (Unsequenced Data), borrowed from the
    /// input.
    Unsequenced(&'a [u8]),
    /// The client asked to log out; the connection is closed.
    Logout,
}

/// Counters of one server connection; plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Bytes, frames, unsequenced data, heartbeats (client's in, server's
    /// out), debug packets and bad frames.
    pub traffic: Traffic,
    /// Logins accepted (0 or 1).
    pub logins_accepted: u64,
    /// Logins refused with `A` (bad username or password).
    pub rejected_not_authorized: u64,
    /// Logins refused with `S` (unknown or ended session).
    pub rejected_session: u64,
    /// Logins asking beyond the stream's next sequence number (answered
    /// with the stream's next number).
    pub requested_beyond: u64,
    /// Sequenced Data frames sent.
    pub sequenced_out: u64,
    /// Of those, messages that existed before the login (replay).
    pub replayed: u64,
    /// Logout Requests received.
    pub logouts: u64,
    /// Connections closed because the client was silent.
    pub client_timeouts: u64,
    /// Connections closed because no login came in time.
    pub login_timeouts: u64,
    /// End of Session packets sent.
    pub end_of_session: u64,
}

impl ServerCounters {
    /// Adds `other` into `self`, field by field (to total the connections
    /// of a server, closed ones included).
    pub fn add(&mut self, other: &Self) {
        self.traffic.add(&other.traffic);
        self.logins_accepted += other.logins_accepted;
        self.rejected_not_authorized += other.rejected_not_authorized;
        self.rejected_session += other.rejected_session;
        self.requested_beyond += other.requested_beyond;
        self.sequenced_out += other.sequenced_out;
        self.replayed += other.replayed;
        self.logouts += other.logouts;
        self.client_timeouts += other.client_timeouts;
        self.login_timeouts += other.login_timeouts;
        self.end_of_session += other.end_of_session;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingLogin,
    LoggedIn {
        stream: StreamId,
        /// Next sequence number to send.
        next: u64,
        /// Messages below this existed at login (replayed).
        replay_end: u64,
        /// End of Session was queued.
        ended: bool,
    },
}

/// One accepted connection of a [`Server`]; see the module documentation
/// of [`super`] for the calling order.
#[derive(Debug, Clone)]
pub struct ServerConnection {
    link: Link,
    state: State,
    accepted_at: u64,
    client_timeout_ns: u64,
    heartbeat_interval_ns: u64,
    login_timeout_ns: u64,
    /// Everything but `traffic`, which the link keeps.
    counters: ServerCounters,
}

impl ServerConnection {
    /// The counters, by value.
    #[must_use]
    pub fn counters(&self) -> ServerCounters {
        ServerCounters {
            traffic: self.link.io.traffic,
            ..self.counters
        }
    }

    /// Why the connection is over, once it is: write what `poll_transmit`
    /// still returns, then close the socket.
    #[must_use]
    pub const fn close_reason(&self) -> Option<CloseReason> {
        self.link.io.close
    }

    /// The stream logged into and the next sequence number to send, once
    /// logged in.
    #[must_use]
    pub const fn position(&self) -> Option<(StreamId, u64)> {
        match self.state {
            State::LoggedIn { stream, next, .. } => Some((stream, next)),
            State::AwaitingLogin => None,
        }
    }

    /// Whether the login was accepted and the connection is open.
    #[must_use]
    pub const fn is_logged_in(&self) -> bool {
        matches!(self.state, State::LoggedIn { .. }) && self.link.io.close.is_none()
    }

    /// Handles bytes read from the socket (any amount); events go to
    /// `on_event`. Input after the connection closed is ignored.
    pub fn handle_input(
        &mut self,
        now: u64,
        bytes: &[u8],
        server: &Server,
        mut on_event: impl FnMut(ServerEvent<'_>),
    ) {
        let Self {
            link,
            state,
            counters,
            client_timeout_ns,
            ..
        } = self;
        link.handle_input(now, bytes, |r, io| {
            let mut h = Handler {
                io,
                state: &mut *state,
                counters: &mut *counters,
                client_timeout_ns: &mut *client_timeout_ns,
                server,
            };
            h.frame(r, &mut on_event);
        });
    }

    /// When to call `handle_timeout` (a timeout) or `poll_transmit` (a
    /// heartbeat) next; `None` once closed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let io = &self.link.io;
        if !io.is_open() {
            return None;
        }
        Some(match self.state {
            State::AwaitingLogin => self.accepted_at.saturating_add(self.login_timeout_ns),
            State::LoggedIn { .. } => io
                .silence_at(self.client_timeout_ns)
                .min(io.heartbeat_at(self.heartbeat_interval_ns)),
        })
    }

    /// Closes the connection when the client was silent for the timeout
    /// (or did not log in in time); returns the reason when it closed now.
    pub fn handle_timeout(&mut self, now: u64) -> Option<CloseReason> {
        let io = &mut self.link.io;
        if !io.is_open() {
            return None;
        }
        match self.state {
            State::AwaitingLogin
                if now >= self.accepted_at.saturating_add(self.login_timeout_ns) =>
            {
                self.counters.login_timeouts += 1;
                io.close(CloseReason::LoginTimeout);
            }
            State::LoggedIn { .. } if now >= io.silence_at(self.client_timeout_ns) => {
                self.counters.client_timeouts += 1;
                io.close(CloseReason::PeerTimeout);
            }
            _ => return None,
        }
        io.close
    }

    /// Writes what is due into `buf` — login answer, then sequenced data
    /// from the connection's position (replay, then live), End of Session
    /// after the last message of an ended stream, or a Server Heartbeat when
    /// the interval passed without output — and returns its length. Write
    /// those bytes to the socket, in order. Frames of sequenced data are
    /// written whole: `buf` must hold the longest one (3 + message length).
    /// Once closed, only what was queued before (a Login Rejected, the End
    /// of Session) still comes out.
    pub fn poll_transmit(&mut self, now: u64, server: &Server, buf: &mut [u8]) -> usize {
        let io = &mut self.link.io;
        let mut at = io.pending.drain(buf);
        if io.is_open()
            && io.pending.is_empty()
            && let State::LoggedIn {
                stream,
                next,
                replay_end,
                ended,
            } = &mut self.state
            && let Some(s) = server.streams.get(*stream)
        {
            while let Some(msg) = s.get(*next) {
                let Ok(n) = write_header(&mut buf[at..], packet_type::SEQUENCED_DATA, msg.len())
                else {
                    break;
                };
                buf[at + 3..at + n].copy_from_slice(msg);
                at += n;
                io.traffic.frames_out += 1;
                self.counters.sequenced_out += 1;
                if *next < *replay_end {
                    self.counters.replayed += 1;
                }
                *next += 1;
            }
            if s.is_ended() && !*ended && *next > s.len() {
                *ended = true;
                io.queue(&Repr::EndOfSession);
                self.counters.end_of_session += 1;
                io.close(CloseReason::EndOfSession);
            } else if at == 0 {
                io.heartbeat(now, self.heartbeat_interval_ns, &Repr::ServerHeartbeat);
            }
            at += io.pending.drain(&mut buf[at..]);
        }
        io.sent(now, at);
        at
    }

    /// Writes one Unsequenced Data frame (after any control frame waiting)
    /// into `buf`; returns the bytes to write to the socket.
    ///
    /// # Errors
    /// [`SendError::NotLoggedIn`] before the login was accepted or after
    /// the connection closed; [`SendError::BufferTooSmall`];
    /// [`SendError::TooLong`]. Nothing is written on error.
    pub fn send_unsequenced(
        &mut self,
        now: u64,
        msg: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        let logged_in = matches!(self.state, State::LoggedIn { .. });
        self.link.io.send_unsequenced(now, logged_in, msg, buf)
    }
}

/// What a frame handler changes: the connection minus its splitter (which
/// holds the frame being handled).
struct Handler<'c> {
    io: &'c mut Io,
    state: &'c mut State,
    counters: &'c mut ServerCounters,
    client_timeout_ns: &'c mut u64,
    server: &'c Server,
}

impl Handler<'_> {
    fn frame(&mut self, r: Repr<'_>, on_event: &mut impl FnMut(ServerEvent<'_>)) {
        let logged_in = matches!(self.state, State::LoggedIn { .. });
        match r {
            // Counted by the link.
            Repr::Debug(_) => {}
            Repr::LoginRequest(_) if logged_in => self.bad(BadFrame::LoginAfterLogin),
            Repr::LoginRequest(l) => self.login(&l, on_event),
            Repr::ClientHeartbeat if logged_in => self.io.traffic.heartbeats_in += 1,
            Repr::UnsequencedData(m) if logged_in => {
                self.io.traffic.unsequenced_in += 1;
                on_event(ServerEvent::Unsequenced(m));
            }
            Repr::LogoutRequest if logged_in => {
                self.counters.logouts += 1;
                self.io.close(CloseReason::Logout);
                on_event(ServerEvent::Logout);
            }
            Repr::ClientHeartbeat | Repr::UnsequencedData(_) | Repr::LogoutRequest => {
                self.bad(BadFrame::BeforeLogin);
            }
            Repr::LoginAccepted { .. }
            | Repr::LoginRejected(_)
            | Repr::SequencedData(_)
            | Repr::ServerHeartbeat
            | Repr::EndOfSession => self.bad(BadFrame::WrongDirection),
        }
    }

    fn bad(&mut self, reason: BadFrame) {
        self.io.traffic.bad_frames.count(reason);
    }

    fn login(&mut self, l: &LoginRequest, on_event: &mut impl FnMut(ServerEvent<'_>)) {
        let cfg = &self.server.config;
        let authorised = cfg
            .credentials
            .iter()
            .any(|(u, p)| u.matches(&l.username) && p.matches(&l.password));
        let stream = if authorised {
            self.server.streams.resolve(&l.username, &l.session)
        } else {
            None
        };
        let Some((id, s)) = stream.and_then(|id| Some((id, self.server.streams.get(id)?))) else {
            let reason = if authorised {
                self.counters.rejected_session += 1;
                RejectReason::SessionNotAvailable
            } else {
                self.counters.rejected_not_authorized += 1;
                RejectReason::NotAuthorized
            };
            self.io.queue(&Repr::LoginRejected(reason));
            self.io.close(CloseReason::LoginRejected(reason));
            on_event(ServerEvent::LoginRejected {
                username: l.username,
                reason,
            });
            return;
        };
        let live = s.next_sequence();
        let next = match l.sequence {
            0 => live,
            n if n > live => {
                self.counters.requested_beyond += 1;
                live
            }
            n => n,
        };
        if let Some(ms) = l.heartbeat_timeout_ms.filter(|ms| *ms > 0) {
            *self.client_timeout_ns = u64::from(ms) * 1_000_000;
        }
        let session = s.session();
        self.io.queue(&Repr::LoginAccepted {
            session,
            sequence: next,
        });
        self.counters.logins_accepted += 1;
        *self.state = State::LoggedIn {
            stream: id,
            next,
            replay_end: live,
            ended: false,
        };
        on_event(ServerEvent::LoggedIn {
            username: l.username,
            stream: id,
            session,
            next_sequence: next,
        });
    }
}
