//! Kernel TCP (`tcp://`) with message framing.
//!
//! Layer: a backend of [`Transport`]. Each message travels as a 4-byte
//! big-endian length followed by the bytes, so message boundaries survive the
//! stream and a ping-pong works over it (an echo server that returns the bytes
//! unchanged, framing included, works as a peer). A client connects to the
//! URI's address; a server listens there and serves one connection at a time,
//! accepting the next when the current one closes.
//!
//! Latency options: `TCP_NODELAY` on, `TCP_QUICKACK` on and re-armed after
//! every receive (the kernel clears it), `TCP_CORK` off, unless the URI says
//! otherwise. Invariants: a frame larger than the receive slot is delivered
//! truncated (flagged) and the rest of it skipped, never misread as the next
//! frame; hot-path calls never allocate (the stream buffers are allocated when
//! a connection is made).

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::sock::{self, PollSet, TxStamp};
use socket2::{Domain, Protocol, SockAddr, Socket, TcpKeepalive, Type};

use serde::Serialize;

use crate::Role;
use crate::backend::{Backend, CapsSection, RungContext, RungSpec, socket_strategy_rungs};
use crate::capabilities::{Capabilities, LegacyFields, legacy_lines};
use crate::common::{self, COMMON_PARAMS, SocketCaps, SocketOptions};
use crate::error::{OpenError, from_io};
use crate::lease::{CopyLease, copy_lease};
use crate::transport::{Addrs, RxBurst, RxMeta, RxStrategy, Transport, TxMsg, Waiter};
use crate::uri::{Uri, UriError};

mod server;
pub use server::{
    CloseReason, ConnId, MAX_SERVER_CONNECTIONS, SendError, ServerEvent, ServerStats, TcpServer,
};

/// The `tcp://` backend.
#[derive(Debug)]
pub struct TcpBackend;

impl Backend for TcpBackend {
    const SCHEMES: &'static [&'static str] = &["tcp"];
    // A byte stream (framed into messages by the transport, but no feed
    // runs over it: MoldUDP64 is a datagram protocol).
    const DATAGRAMS: bool = false;
    type Config = TcpConfig;
    type Transport = TcpTransport;
    type Caps = TcpCaps;

    fn parse(uri: &Uri) -> Result<TcpConfig, UriError> {
        TcpConfig::from_uri(uri)
    }

    fn open(cfg: &TcpConfig, role: Role) -> Result<TcpTransport, OpenError> {
        TcpTransport::open(cfg.clone(), role)
    }

    fn max_message(cfg: &TcpConfig) -> usize {
        cfg.framing.max_message()
    }

    fn burst(_: &TcpConfig) -> usize {
        1
    }

    fn cpu(cfg: &TcpConfig) -> Option<usize> {
        cfg.socket.cpu
    }

    fn rungs(_: &str, ctx: &RungContext<'_>) -> Vec<RungSpec> {
        let ip = ctx.server_ip;
        socket_strategy_rungs(ctx, |port, q| format!("tcp://{ip}:{port}?{q}"))
    }
}

/// The `tcp://` section of the capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TcpCaps {
    /// What the kernel granted the socket (the connection's, or the
    /// listener's before one is accepted).
    #[serde(flatten)]
    pub socket: SocketCaps,
    /// `TCP_NODELAY` as read back.
    pub tcp_nodelay: Option<bool>,
    /// `TCP_QUICKACK` re-armed after each receive.
    pub tcp_quickack: bool,
    /// Connections accepted (server).
    pub accepted: u64,
    /// Software transmit stamps of each send (`timestamps=tx`) as the
    /// kernel granted them: `None` when off.
    pub tx_timestamps: Option<&'static str>,
    /// Stamps the transport read and threw away because the caller had
    /// not read them for [`UNREAD_STAMPS_MAX`] sends (they would fill the
    /// socket's receive buffer and stall the data coming in).
    pub tx_stamps_dropped: u64,
}

/// Sends after which stamps nobody read are read and thrown away
/// (counted): waiting stamps count against the socket's receive buffer
/// (some 800 bytes each), and once it is full incoming data stalls.
pub const UNREAD_STAMPS_MAX: u32 = 64;

impl CapsSection for TcpCaps {
    fn lines(&self, out: &mut Vec<(String, String)>) {
        // The generic line describes a datagram socket's stamps: this
        // section says what TCP's are instead.
        let generic = LegacyFields {
            tx_timestamps: false,
            ..self.legacy()
        };
        legacy_lines(&generic, out);
        if let Some(t) = self.tx_timestamps {
            out.push(("tx_timestamps".into(), t.into()));
        }
        if self.tx_stamps_dropped > 0 {
            out.push((
                "tx_stamps_dropped".into(),
                format!(
                    "{} (read them with tx_timestamps at least every {UNREAD_STAMPS_MAX} sends)",
                    self.tx_stamps_dropped
                ),
            ));
        }
    }

    fn legacy(&self) -> LegacyFields {
        LegacyFields {
            tcp_nodelay: self.tcp_nodelay,
            tcp_quickack: Some(self.tcp_quickack),
            tx_timestamps: self.tx_timestamps.is_some(),
            ..self.socket.legacy()
        }
    }
}

/// Bytes of the length prefix of each frame (`framing=len32`, the default).
pub const FRAME_HEADER: usize = 4;
/// Largest message accepted for sending (the stream buffers' size less the header).
pub const MAX_TCP_MESSAGE: usize = STREAM_BUF - FRAME_HEADER;
const STREAM_BUF: usize = 256 * 1024;

/// How messages are cut out of the byte stream (`framing=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// A 4-byte big-endian length, then the message (`len32`, the default):
    /// hftnet's own ping-pong framing.
    #[default]
    Len32,
    /// A 2-byte big-endian length, then that many bytes (`soupbin`): the
    /// framing of SoupBinTCP 4, whose length counts the packet type byte and
    /// the payload. Each message is one SoupBinTCP packet without its length
    /// (type byte first), at most 65,535 bytes.
    Soupbin,
    /// No prefix: each message is one sockperf message, whose 14-byte
    /// header ends with a 4-byte big-endian length counting the whole
    /// message (`sockperf`, as sockperf's TCP mode frames its stream). A
    /// length field shorter than the header is read as a message of just the
    /// header, so the stream moves on and the reader sees the bad field.
    Sockperf,
}

/// sockperf's header: the bytes needed to read a message's length.
const SOCKPERF_HEADER: usize = 14;

impl Framing {
    /// Bytes of the length prefix (none with `sockperf`: the length is
    /// inside the message).
    #[must_use]
    pub const fn header(self) -> usize {
        match self {
            Self::Len32 => FRAME_HEADER,
            Self::Soupbin => 2,
            Self::Sockperf => 0,
        }
    }

    /// Bytes of the stream needed to know the next message's length.
    const fn need(self) -> usize {
        match self {
            Self::Len32 | Self::Soupbin => self.header(),
            Self::Sockperf => SOCKPERF_HEADER,
        }
    }

    /// Largest message the prefix can carry (and the buffers hold).
    #[must_use]
    pub const fn max_message(self) -> usize {
        match self {
            Self::Len32 | Self::Sockperf => MAX_TCP_MESSAGE,
            Self::Soupbin => u16::MAX as usize,
        }
    }

    /// The URI value.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Len32 => "len32",
            Self::Soupbin => "soupbin",
            Self::Sockperf => "sockperf",
        }
    }

    /// Reads the length of the message at the start of `h` (at least
    /// [`Self::need`] bytes), its prefix not included.
    #[inline]
    fn read_len(self, h: &[u8]) -> usize {
        match self {
            Self::Len32 => u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize,
            Self::Soupbin => usize::from(u16::from_be_bytes([h[0], h[1]])),
            Self::Sockperf => {
                (u32::from_be_bytes([h[10], h[11], h[12], h[13]]) as usize).max(SOCKPERF_HEADER)
            }
        }
    }

    /// Writes the length prefix of a `len`-byte message into `h` (nothing
    /// with `sockperf`).
    #[inline]
    fn write_len(self, h: &mut [u8], len: usize) {
        match self {
            Self::Len32 => h[..4].copy_from_slice(&(len as u32).to_be_bytes()),
            Self::Soupbin => h[..2].copy_from_slice(&(len as u16).to_be_bytes()),
            Self::Sockperf => {}
        }
    }

    /// True when `m` can be sent as one message: with `sockperf`, its own
    /// length field must be its length, or the peer would cut the stream
    /// elsewhere.
    #[inline]
    fn frames(self, m: &[u8]) -> bool {
        match self {
            Self::Len32 | Self::Soupbin => true,
            Self::Sockperf => {
                m.len() >= SOCKPERF_HEADER
                    && u32::from_be_bytes([m[10], m[11], m[12], m[13]]) as usize == m.len()
            }
        }
    }
}

/// Keepalive settings (`keepalive=1&keepidle=S&keepintvl=S&keepcnt=N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle seconds before the first probe.
    pub idle: Option<u32>,
    /// Seconds between probes.
    pub interval: Option<u32>,
    /// Probes before the connection is dropped.
    pub count: Option<u32>,
}

/// A TCP endpoint, as parsed from a URI or built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Server: address to listen on. Client: address to connect to.
    pub addr: SocketAddr,
    /// Options common to kernel sockets.
    pub socket: SocketOptions,
    /// `TCP_NODELAY` (`nodelay=`, default on).
    pub nodelay: bool,
    /// `TCP_QUICKACK`, re-armed after each receive (`quickack=`, default on).
    pub quickack: bool,
    /// `TCP_CORK` (`cork=`, default off).
    pub cork: bool,
    /// `SO_KEEPALIVE` and its timers, when set.
    pub keepalive: Option<Keepalive>,
    /// How long a client waits for the connection (`connect_timeout=MS`, default 3000).
    pub connect_timeout: Duration,
    /// How messages are cut out of the stream (`framing=len32|soupbin|sockperf`).
    pub framing: Framing,
    /// Software transmit stamps of each send (`timestamps=tx`, default
    /// off): the kernel stamps the last segment of every send when the
    /// driver takes it (`SCM_TSTAMP_SND`), keyed by the offset of the
    /// send's last byte ([`TcpTransport::stream_end`]); read them with
    /// [`Transport::tx_timestamps`] — regularly: while stamps wait, `poll`
    /// reports the socket as having an error (a blocking or adaptive
    /// receive wakes at once), and after [`UNREAD_STAMPS_MAX`] sends
    /// without a read the transport throws them away (counted). One
    /// connection's ([`TcpTransport`]); a [`TcpServer`] of many connections
    /// refuses it.
    pub tx_timestamps: bool,
}

/// What `timestamps=` accepts on `tcp://`.
const TCP_TIMESTAMPS: &str = "tx (software transmit stamps of each send, read from the error \
                              queue) or 0; a byte stream has no receive stamp per message, and \
                              hardware stamps need a device (udp:// with device=)";

const TCP_PARAMS: &[&str] = &[
    "nodelay",
    "quickack",
    "cork",
    "keepalive",
    "keepidle",
    "keepintvl",
    "keepcnt",
    "connect_timeout",
    "framing",
    "timestamps",
];

impl TcpConfig {
    /// Defaults for `addr`.
    #[must_use]
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            socket: SocketOptions::default(),
            nodelay: true,
            quickack: true,
            cork: false,
            keepalive: None,
            connect_timeout: Duration::from_secs(3),
            framing: Framing::Len32,
            tx_timestamps: false,
        }
    }

    /// Reads a `tcp://` URI.
    ///
    /// # Errors
    /// [`UriError`] naming the bad part.
    pub fn from_uri(uri: &Uri) -> Result<Self, UriError> {
        let mut cfg = Self::new(uri.socket_addr()?);
        let mut p = uri.params(&[COMMON_PARAMS, TCP_PARAMS]);
        cfg.socket = SocketOptions::from_params(&mut p)?;
        cfg.nodelay = p.bool("nodelay")?.unwrap_or(true);
        cfg.quickack = p.bool("quickack")?.unwrap_or(true);
        cfg.cork = p.bool("cork")?.unwrap_or(false);
        let on = p.bool("keepalive")?;
        let ka = Keepalive {
            idle: p.int("keepidle", 1..=32767)?.map(|v| v as u32),
            interval: p.int("keepintvl", 1..=32767)?.map(|v| v as u32),
            count: p.int("keepcnt", 1..=127)?.map(|v| v as u32),
        };
        let timers = ka.idle.is_some() || ka.interval.is_some() || ka.count.is_some();
        if timers && on == Some(false) {
            return Err(UriError::BadValue {
                param: "keepalive".into(),
                value: "0".into(),
                expected: "1 when keepidle, keepintvl or keepcnt is given".into(),
            });
        }
        cfg.keepalive = (on == Some(true) || timers).then_some(ka);
        if let Some(ms) = p.int("connect_timeout", 1..=600_000)? {
            cfg.connect_timeout = Duration::from_millis(ms as u64);
        }
        cfg.framing = p
            .get_with(
                "framing",
                "len32 (a 4-byte length before each message), soupbin (SoupBinTCP's 2-byte \
                 length) or sockperf (sockperf's header, whose length field counts the whole message)",
                |v| match v {
                    "len32" => Some(Framing::Len32),
                    "soupbin" => Some(Framing::Soupbin),
                    "sockperf" => Some(Framing::Sockperf),
                    _ => None,
                },
            )?
            .unwrap_or_default();
        cfg.tx_timestamps = p
            .get_with("timestamps", TCP_TIMESTAMPS, |v| match v {
                "tx" => Some(true),
                "0" | "off" | "false" | "no" => Some(false),
                _ => None,
            })?
            .unwrap_or(false);
        p.finish()?;
        Ok(cfg)
    }
}

/// One connection and its stream buffers.
#[derive(Debug)]
struct Conn {
    sock: Socket,
    peer: Option<SocketAddr>,
    local: Option<SocketAddr>,
    waiter: Waiter,
    rx: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes still to discard of a frame that was delivered truncated.
    skip: usize,
    tx: Box<[u8]>,
    /// `tx[pend.0..pend.1]`: framed bytes the kernel has not taken yet (a
    /// send buffer that stayed full for [`SEND_TIMEOUT`]); they leave before
    /// anything else, so a frame is never cut.
    pend: (usize, usize),
    framing: Framing,
    /// Bytes of this connection the kernel took so far.
    written: u64,
    /// Transmit stamps on, and whether `OPT_ID_TCP` was granted.
    stamps: Option<&'static str>,
    /// Sends since the stamps were last read.
    unread_stamps: u32,
    /// Stamps read and thrown away (see [`UNREAD_STAMPS_MAX`]).
    stamps_dropped: u64,
}

/// How long a send waits for room in a full send buffer (`SO_SNDTIMEO`)
/// before it gives up: a send never blocks for longer, so a peer or a path
/// that stopped taking data (a link down) is reported instead of hanging
/// the caller until TCP itself gives up (many minutes).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// A kernel TCP connection (client) or listener with its current connection
/// (server) behind the [`Transport`] trait.
#[derive(Debug)]
pub struct TcpTransport {
    cfg: TcpConfig,
    listener: Option<Socket>,
    conn: Option<Conn>,
    timeout: Option<Duration>,
    notes: Vec<String>,
    accepted: u64,
    /// NAPI id of the last connection, read when it closed (0: none).
    last_napi_id: Option<u32>,
    /// Buffers of the lease API (allocated on first use).
    lease: CopyLease,
}

copy_lease!(TcpTransport);

impl TcpTransport {
    /// Opens the endpoint: a client connects now; a server listens now and
    /// accepts on its first receive.
    ///
    /// # Errors
    /// [`OpenError`] naming the failing step, option or privilege.
    pub fn open(cfg: TcpConfig, role: Role) -> Result<Self, OpenError> {
        common::check_role_addr(cfg.addr, cfg.socket.bind, role)?;
        let s = new_socket(&cfg)?;
        let notes = cfg.socket.apply(&s)?;
        let mut t = Self {
            cfg,
            listener: None,
            conn: None,
            timeout: None,
            notes,
            accepted: 0,
            last_napi_id: None,
            lease: CopyLease::new(),
        };
        match role {
            Role::Server => {
                if t.cfg.socket.reuseaddr.is_none() {
                    // A restarted server must not wait out TIME_WAIT.
                    sock::set_int(s.as_fd(), sock::SO_REUSEADDR, 1)
                        .map_err(OpenError::setup("setting SO_REUSEADDR"))?;
                }
                common::bind(&s, t.cfg.addr)?;
                s.listen(16)
                    .map_err(|e| OpenError::setup("listening")(from_io("listen", e)))?;
                s.set_nonblocking(true).map_err(|e| {
                    OpenError::setup("making the listener non-blocking")(from_io("fcntl", e))
                })?;
                t.listener = Some(s);
            }
            Role::Client => {
                if let Some(b) = t.cfg.socket.bind {
                    common::bind(&s, b)?;
                }
                s.connect_timeout(&SockAddr::from(t.cfg.addr), t.cfg.connect_timeout)
                    .map_err(|e| OpenError::Connect {
                        addr: t.cfg.addr,
                        cause: from_io("connect", e),
                    })?;
                let peer = Some(t.cfg.addr);
                t.conn = Some(
                    t.setup_conn(s, peer)
                        .map_err(OpenError::setup("configuring the connection"))?,
                );
            }
        }
        Ok(t)
    }

    /// Starts a client connection without waiting for it: the socket is
    /// set up and its `connect` sent, non-blocking; [`TcpConnect::poll`]
    /// finishes it. For a loop that must keep serving other work (market
    /// data) while a connection is made, where [`TcpTransport::open`] would
    /// block for up to `connect_timeout`.
    ///
    /// # Errors
    /// [`OpenError`] naming the failing step, option or privilege, or
    /// [`OpenError::Connect`] when the kernel refused the connect at once.
    pub fn connect_start(cfg: TcpConfig) -> Result<TcpConnect, OpenError> {
        common::check_role_addr(cfg.addr, cfg.socket.bind, Role::Client)?;
        let s = new_socket(&cfg)?;
        let notes = cfg.socket.apply(&s)?;
        if let Some(b) = cfg.socket.bind {
            common::bind(&s, b)?;
        }
        s.set_nonblocking(true).map_err(|e| {
            OpenError::setup("making the socket non-blocking")(from_io("fcntl", e))
        })?;
        let addr = cfg.addr;
        match s.connect(&SockAddr::from(addr)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => {
                return Err(OpenError::Connect {
                    addr,
                    cause: from_io("connect", e),
                });
            }
        }
        Ok(TcpConnect {
            deadline: Instant::now() + cfg.connect_timeout,
            cfg,
            sock: Some(s),
            notes,
            poll: PollSet::new(),
        })
    }

    /// The configuration it was opened with.
    #[must_use]
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Connections accepted so far (server).
    #[must_use]
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Bytes of the current connection the kernel took so far (framing
    /// included), `None` without a connection.
    #[must_use]
    pub fn stream_offset(&self) -> Option<u64> {
        self.conn.as_ref().map(|c| c.written)
    }

    /// Where the stream ends once what was sent so far has left: the bytes
    /// the kernel took plus those held back by a send the kernel took only
    /// in part (they leave first on the next send). With `timestamps=tx`,
    /// the stamp of the send that carries byte `e - 1` has the key
    /// `(e - 1) as u32` in [`hftnet_sys::sock::TxStamp::id`] (wrapping at
    /// 2³²): after a send, `stream_end() - 1` is the key of the stamp that
    /// says when its last byte left.
    #[must_use]
    pub fn stream_end(&self) -> Option<u64> {
        self.conn
            .as_ref()
            .map(|c| c.written + (c.pend.1 - c.pend.0) as u64)
    }

    /// Throws away stamps nobody read for [`UNREAD_STAMPS_MAX`] sends.
    fn drop_unread_stamps(&mut self) {
        if let Some(c) = self.conn.as_mut()
            && c.unread_stamps >= UNREAD_STAMPS_MAX
        {
            while let Ok(Some(_)) = sock::recv_tx_timestamp(c.sock.as_fd()) {
                c.stamps_dropped += 1;
            }
            c.unread_stamps = 0;
        }
    }

    /// Largest message a lease lends whole.
    fn lease_slot(&self) -> usize {
        self.cfg.framing.max_message()
    }

    fn setup_conn(&self, s: Socket, peer: Option<SocketAddr>) -> Result<Conn, SyscallError> {
        setup_conn(&self.cfg, s, peer, Some(self.timeout), None)
    }

    /// Server: waits up to `timeout` for a connection and sets it up.
    fn accept(&mut self, timeout: Option<Duration>) -> Result<bool, SyscallError> {
        let Some(l) = &self.listener else {
            return Ok(false);
        };
        if !sock::poll_readable(l.as_fd(), timeout)? {
            return Ok(false);
        }
        let (s, addr) = match l.accept() {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(from_io("accept", e)),
        };
        // Buffer sizes, priority, TOS, busy polling and the bound device are
        // inherited from the listener (the kernel clones the listening socket).
        let conn = self.setup_conn(s, addr.as_socket())?;
        self.conn = Some(conn);
        self.accepted += 1;
        Ok(true)
    }
}

/// Sets a new connection up: the URI's TCP options, then blocking sends
/// bounded by [`SEND_TIMEOUT`] and a waiter with the receive timeout
/// (`Some(timeout)`), or, for a connection a [`TcpServer`] polls among many
/// (`None`), non-blocking both ways. `bufs` are stream buffers of an
/// earlier connection to reuse (a [`TcpServer`] keeps them per slot, so an
/// accept allocates none); `None` allocates them.
fn setup_conn(
    cfg: &TcpConfig,
    s: Socket,
    peer: Option<SocketAddr>,
    timeout: Option<Option<Duration>>,
    bufs: Option<StreamBufs>,
) -> Result<Conn, SyscallError> {
    let fd = s.as_fd();
    sock::set_int(fd, sock::TCP_NODELAY, i32::from(cfg.nodelay))?;
    sock::set_int(fd, sock::TCP_CORK, i32::from(cfg.cork))?;
    if cfg.quickack {
        sock::set_int(fd, sock::TCP_QUICKACK, 1)?;
    }
    if let Some(ka) = cfg.keepalive {
        let mut k = TcpKeepalive::new();
        if let Some(i) = ka.idle {
            k = k.with_time(Duration::from_secs(u64::from(i)));
        }
        if let Some(i) = ka.interval {
            k = k.with_interval(Duration::from_secs(u64::from(i)));
        }
        if let Some(c) = ka.count {
            k = k.with_retries(c);
        }
        s.set_tcp_keepalive(&k)
            .map_err(|e| from_io("setsockopt(SO_KEEPALIVE and timers)", e))?;
    }
    let stamps = if cfg.tx_timestamps {
        Some(enable_tx_stamps(fd)?)
    } else {
        None
    };
    let waiter = match timeout {
        Some(timeout) => {
            s.set_nonblocking(false)
                .map_err(|e| from_io("fcntl(O_NONBLOCK)", e))?;
            s.set_write_timeout(Some(SEND_TIMEOUT))
                .map_err(|e| from_io("setsockopt(SO_SNDTIMEO)", e))?;
            let mut waiter = Waiter::new(fd, cfg.socket.strategy)?;
            waiter.set_timeout(fd, timeout)?;
            waiter
        }
        None => {
            s.set_nonblocking(true)
                .map_err(|e| from_io("fcntl(O_NONBLOCK)", e))?;
            Waiter::new(fd, RxStrategy::Spin)?
        }
    };
    let local = s.local_addr().ok().and_then(|a| a.as_socket());
    let StreamBufs { rx, tx } = bufs.unwrap_or_else(StreamBufs::new);
    Ok(Conn {
        local,
        sock: s,
        peer,
        waiter,
        rx,
        start: 0,
        end: 0,
        skip: 0,
        tx,
        pend: (0, 0),
        framing: cfg.framing,
        written: 0,
        stamps,
        unread_stamps: 0,
        stamps_dropped: 0,
    })
}

/// Turns software transmit stamps on for a connected socket, keyed by
/// byte offset from now: `OPT_ID_TCP` where the kernel has it (6.2+),
/// else plain `OPT_ID`. The two differ only in where the count starts
/// when the flag is set (the bytes written, or the bytes acknowledged):
/// set here on a new connection with nothing written, they give the same
/// keys. Returns what was granted, for the capabilities.
fn enable_tx_stamps(fd: std::os::fd::BorrowedFd<'_>) -> Result<&'static str, SyscallError> {
    use sock::tsflags;
    let base = tsflags::SOFTWARE | tsflags::TX_SOFTWARE | tsflags::OPT_ID | tsflags::OPT_TSONLY;
    match sock::set_timestamping(fd, base | tsflags::OPT_ID_TCP) {
        Ok(()) => Ok("SND software, keyed by byte offset (OPT_ID_TCP)"),
        Err(e) if e.errno() == Some(libc::EINVAL) => {
            sock::set_timestamping(fd, base)?;
            Ok("SND software, keyed by byte offset (OPT_ID; no OPT_ID_TCP before Linux 6.2)")
        }
        Err(e) => Err(e),
    }
}

/// The receive and send stream buffers of one connection
/// ([`STREAM_BUF`] bytes each), kept by a [`TcpServer`] slot between
/// connections.
#[derive(Debug)]
struct StreamBufs {
    rx: Box<[u8]>,
    tx: Box<[u8]>,
}

impl StreamBufs {
    fn new() -> Self {
        Self {
            rx: vec![0; STREAM_BUF].into_boxed_slice(),
            tx: vec![0; STREAM_BUF].into_boxed_slice(),
        }
    }
}

impl Conn {
    /// Closes the connection, handing its stream buffers back.
    fn into_bufs(self) -> StreamBufs {
        StreamBufs {
            rx: self.rx,
            tx: self.tx,
        }
    }
}

/// A client connection under way (see [`TcpTransport::connect_start`]).
#[derive(Debug)]
pub struct TcpConnect {
    cfg: TcpConfig,
    /// `None` once finished (connected or failed).
    sock: Option<Socket>,
    notes: Vec<String>,
    deadline: Instant,
    poll: PollSet,
}

impl TcpConnect {
    /// When the attempt gives up (now + the URI's `connect_timeout` at the
    /// start).
    #[must_use]
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Looks whether the connection is made, without waiting:
    /// `Ok(None)` while it is under way, `Ok(Some(transport))` once it is
    /// (set up as [`TcpTransport::open`] sets a client up).
    ///
    /// # Errors
    /// [`OpenError::Connect`] when the peer refused it, the network
    /// failed, or `now` is past [`TcpConnect::deadline`] (`ETIMEDOUT`);
    /// a finished attempt answers `ENOTCONN`.
    pub fn poll(&mut self, now: Instant) -> Result<Option<TcpTransport>, OpenError> {
        let addr = self.cfg.addr;
        let fail = |cause| OpenError::Connect { addr, cause };
        let Some(s) = &self.sock else {
            return Err(fail(SyscallError::from_errno("connect", libc::ENOTCONN)));
        };
        self.poll.clear();
        self.poll.push_with_write(s.as_fd(), true);
        let ready = self
            .poll
            .wait(Some(Duration::ZERO))
            .map_err(&fail)?;
        if ready == 0 || !self.poll.readable(0) {
            if now >= self.deadline {
                self.sock = None;
                return Err(fail(SyscallError::from_errno("connect", libc::ETIMEDOUT)));
            }
            return Ok(None);
        }
        let s = self.sock.take().ok_or_else(|| fail(closed("connect")))?;
        match s.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return Err(fail(from_io("connect", e))),
        }
        // Writable and no error: connected (a peer address proves it).
        if let Err(e) = s.peer_addr() {
            return Err(fail(from_io("connect", e)));
        }
        let mut t = TcpTransport {
            cfg: self.cfg.clone(),
            listener: None,
            conn: None,
            timeout: None,
            notes: std::mem::take(&mut self.notes),
            accepted: 0,
            last_napi_id: None,
            lease: CopyLease::new(),
        };
        t.conn = Some(
            t.setup_conn(s, Some(addr))
                .map_err(OpenError::setup("configuring the connection"))?,
        );
        Ok(Some(t))
    }
}

fn new_socket(cfg: &TcpConfig) -> Result<Socket, OpenError> {
    let domain = if cfg.addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    Socket::new(domain, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| OpenError::setup("creating a TCP socket")(from_io("socket", e)))
}

impl Conn {
    /// Writes what is pending, until done or the kernel takes no more
    /// (`EAGAIN`: the send timeout passed, or `MSG_DONTWAIT`). Returns
    /// whether everything left.
    fn flush(&mut self, flags: i32) -> Result<bool, SyscallError> {
        let fd = self.sock.as_fd();
        while self.pend.0 < self.pend.1 {
            match sock::send_to(fd, &self.tx[self.pend.0..self.pend.1], None, flags) {
                Ok(k) => {
                    self.pend.0 += k;
                    self.written += k as u64;
                    if self.stamps.is_some() {
                        self.unread_stamps += 1;
                    }
                }
                Err(e) if e.errno() == Some(libc::EINTR) => {}
                Err(e) if matches!(e.errno(), Some(libc::EAGAIN | libc::ETIMEDOUT)) => {
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        self.pend = (0, 0);
        Ok(true)
    }

    /// Moves complete frames from the stream buffer into `burst`, from slot `n`.
    #[inline]
    fn deliver(&mut self, burst: &mut RxBurst, mut n: usize) -> usize {
        let slot = burst.slot_size().min(self.framing.max_message());
        let header = self.framing.header();
        let need = self.framing.need();
        while n < burst.capacity() {
            if self.skip > 0 {
                let k = self.skip.min(self.end - self.start);
                self.start += k;
                self.skip -= k;
                if self.skip > 0 {
                    break;
                }
                continue;
            }
            let avail = self.end - self.start;
            if avail < need {
                break;
            }
            let len = self.framing.read_len(&self.rx[self.start..]);
            let take = len.min(slot);
            if avail < header + take {
                break;
            }
            let body = self.start + header;
            burst.slot_mut(n)[..take].copy_from_slice(&self.rx[body..body + take]);
            burst.set(
                n,
                RxMeta {
                    len: take,
                    wire_len: len,
                    truncated: take < len,
                    peer: self.peer,
                    rx_ts_ns: None,
                    rx_hw_ts_ns: None,
                    queue: 0,
                },
            );
            self.start = body + take;
            self.skip = len - take;
            n += 1;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        n
    }

    /// Frames as many of `msgs` as fit into `tx[at..]`, each behind its
    /// length prefix: (messages framed, end of the framed bytes).
    ///
    /// # Errors
    /// `EMSGSIZE` when the first message is larger than the framing allows.
    fn frame<'m>(
        &mut self,
        msgs: impl Iterator<Item = &'m [u8]>,
        at: usize,
    ) -> Result<(usize, usize), SyscallError> {
        let header = self.framing.header();
        let max = self.framing.max_message();
        let mut len = at;
        let mut count = 0;
        for m in msgs {
            if !self.framing.frames(m) {
                if count == 0 {
                    return Err(SyscallError::from_errno(
                        "send (not one sockperf message: its length field is not its length)",
                        libc::EINVAL,
                    ));
                }
                break;
            }
            if m.len() > max {
                if count == 0 {
                    return Err(SyscallError::from_errno(
                        match self.framing {
                            Framing::Len32 | Framing::Sockperf => {
                                "send (message larger than the TCP frame limit)"
                            }
                            Framing::Soupbin => {
                                "send (message larger than SoupBinTCP's 65,535-byte packet \
                                 limit)"
                            }
                        },
                        libc::EMSGSIZE,
                    ));
                }
                break;
            }
            if len + header + m.len() > self.tx.len() {
                break;
            }
            self.framing.write_len(&mut self.tx[len..], m.len());
            self.tx[len + header..len + header + m.len()].copy_from_slice(m);
            len += header + m.len();
            count += 1;
        }
        Ok((count, len))
    }

    /// Makes room at the end of the stream buffer.
    fn compact(&mut self) {
        if self.end == self.rx.len() && self.start > 0 {
            self.rx.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

impl TcpTransport {
    /// Drops the current connection, keeping what the capability report needs.
    #[cold]
    fn retire_conn(&mut self) {
        if let Some(c) = self.conn.take() {
            self.last_napi_id = sock::get_int(c.sock.as_fd(), sock::SO_INCOMING_NAPI_ID)
                .ok()
                .map(|v| v as u32);
        }
    }
}

fn closed(call: &'static str) -> SyscallError {
    SyscallError::from_errno(call, libc::ECONNRESET)
}

impl TcpTransport {
    /// Receives complete frames, waiting until `deadline` or, without one, for
    /// the receive timeout, which then holds across partial reads and accepts.
    fn recv_impl(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        let end = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
        // The first read may sleep in the receive itself (one syscall); after a
        // partial frame, later reads wait for what is left of the time.
        let mut first_read = deadline.is_none();
        loop {
            if self.conn.is_none() {
                let left = end.map(|e| e.saturating_duration_since(Instant::now()));
                if left.is_some_and(|l| l.is_zero()) || !self.accept(left)? {
                    burst.set_len(0);
                    return Ok(0);
                }
            }
            let quickack = self.cfg.quickack;
            let conn = self.conn.as_mut().expect("connected above");
            if conn.pend.0 < conn.pend.1 {
                // The rest of a message a full send buffer held back; a
                // failure shows in the receive itself or the next send.
                let _ = conn.flush(libc::MSG_DONTWAIT);
            }
            let n = conn.deliver(burst, 0);
            if n > 0 {
                burst.set_len(n);
                return Ok(n);
            }
            conn.compact();
            let fd = conn.sock.as_fd();
            let room = &mut conn.rx[conn.end..];
            let until = if first_read { None } else { end };
            first_read = false;
            match conn
                .waiter
                .wait(fd, until, |flags| sock::recv(fd, room, flags))
            {
                Ok(None) => {
                    burst.set_len(0);
                    return Ok(0);
                }
                Ok(Some(0)) => {
                    // Orderly close by the peer.
                    self.retire_conn();
                    if self.listener.is_none() {
                        return Err(closed("recv (the peer closed the connection)"));
                    }
                }
                Ok(Some(k)) => {
                    conn.end += k;
                    if quickack {
                        sock::set_int(fd, sock::TCP_QUICKACK, 1)?;
                    }
                }
                Err(e)
                    if self.listener.is_some()
                        && matches!(e.errno(), Some(libc::ECONNRESET | libc::EPIPE)) =>
                {
                    self.retire_conn();
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Transport for TcpTransport {
    fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
        self.recv_impl(burst, None)
    }

    fn recv_burst_until(
        &mut self,
        burst: &mut RxBurst,
        deadline: Instant,
    ) -> Result<usize, SyscallError> {
        self.recv_impl(burst, Some(deadline))
    }

    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(SyscallError::from_errno(
                "send (no TCP connection yet)",
                libc::ENOTCONN,
            ));
        };
        if conn.pend.0 < conn.pend.1 {
            match conn.flush(libc::MSG_DONTWAIT) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(SyscallError::from_errno(
                        "send (an earlier message still waits in a full TCP send buffer: the \
                         peer or the path takes no data)",
                        libc::EAGAIN,
                    ));
                }
                Err(e) => {
                    if self.listener.is_some()
                        && matches!(e.errno(), Some(libc::ECONNRESET | libc::EPIPE))
                    {
                        self.retire_conn();
                    }
                    return Err(e);
                }
            }
        }
        if conn.unread_stamps >= UNREAD_STAMPS_MAX {
            self.drop_unread_stamps();
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(closed("send"));
        };
        // Frame the whole burst into one buffer so it leaves in one send.
        let (count, len) = conn.frame(msgs.iter().map(|m| m.data), 0)?;
        conn.pend = (0, len);
        match conn.flush(0) {
            Ok(true) => Ok(count),
            // Part of the burst left: the rest goes first on the next send
            // or receive, so the stream stays framed.
            Ok(false) if conn.pend.0 > 0 => Ok(count),
            Ok(false) => {
                conn.pend = (0, 0);
                Err(SyscallError::from_errno(
                    "send (the TCP send buffer is full and stayed full, waiting up to 1 s: the \
                     peer or the path takes no data)",
                    libc::EAGAIN,
                ))
            }
            Err(e) => {
                conn.pend = (0, 0);
                if self.listener.is_some()
                    && matches!(e.errno(), Some(libc::ECONNRESET | libc::EPIPE))
                {
                    self.retire_conn();
                }
                Err(e)
            }
        }
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        self.timeout = timeout;
        if let Some(c) = self.conn.as_mut() {
            c.waiter.set_timeout(c.sock.as_fd(), timeout)?;
        }
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        let mut notes = self.notes.clone();
        let s = self
            .conn
            .as_ref()
            .map(|c| &c.sock)
            .or(self.listener.as_ref());
        let (mut socket, local, nodelay) = match s {
            Some(s) => {
                let (caps, local) = self.cfg.socket.read_back(s);
                let nodelay = sock::get_int(s.as_fd(), sock::TCP_NODELAY)
                    .ok()
                    .map(|v| v != 0);
                (caps, local, nodelay)
            }
            None => (SocketCaps::default(), None, None),
        };
        socket.napi_id = self.last_napi_id;
        let mut peer = None;
        if let Some(c) = &self.conn {
            peer = c.peer;
            if self.accepted > 0 || self.listener.is_none() {
                socket.napi_id = sock::get_int(c.sock.as_fd(), sock::SO_INCOMING_NAPI_ID)
                    .ok()
                    .map(|v| v as u32);
            }
        }
        if self.listener.is_some() && self.conn.is_none() {
            notes.push(
                "no client connected yet: per-connection options are read back once one is".into(),
            );
        }
        Capabilities {
            transport: "tcp",
            rx_strategy: self.cfg.socket.strategy.name(),
            local,
            peer,
            max_message: self.cfg.framing.max_message(),
            burst: 1,
            backend: Some(
                TcpCaps {
                    socket,
                    tcp_nodelay: nodelay,
                    tcp_quickack: self.cfg.quickack,
                    accepted: self.accepted,
                    tx_timestamps: self.conn.as_ref().and_then(|c| c.stamps),
                    tx_stamps_dropped: self.conn.as_ref().map_or(0, |c| c.stamps_dropped),
                }
                .into(),
            ),
            notes,
            ..Capabilities::default()
        }
    }

    fn stream_prefix(&self) -> Option<usize> {
        Some(self.cfg.framing.header())
    }

    /// Reads the connection's error queue until it is empty
    /// (`timestamps=tx` only): one `SCM_TSTAMP_SND` stamp per send, keyed
    /// by the offset of its last byte (see [`TcpTransport::stream_offset`]).
    fn tx_timestamps(&mut self, f: &mut dyn FnMut(TxStamp)) -> Result<usize, SyscallError> {
        let Some(c) = self.conn.as_mut().filter(|c| c.stamps.is_some()) else {
            return Ok(0);
        };
        c.unread_stamps = 0;
        let mut n = 0;
        while let Some(stamp) = sock::recv_tx_timestamp(c.sock.as_fd())? {
            f(stamp);
            n += 1;
        }
        Ok(n)
    }

    fn addrs(&self) -> Addrs {
        match &self.conn {
            Some(c) => Addrs {
                local: c.local,
                peer: c.peer,
            },
            None => Addrs {
                local: Some(self.cfg.addr),
                peer: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(q: &str) -> (TcpTransport, TcpTransport) {
        let mut server = TcpTransport::open(
            TcpConfig::from_uri(&Uri::parse(&format!("tcp://127.0.0.1:0?{q}")).unwrap()).unwrap(),
            Role::Server,
        )
        .unwrap();
        let addr = server.capabilities().local.unwrap();
        let mut client = TcpTransport::open(
            TcpConfig::from_uri(&Uri::parse(&format!("tcp://{addr}?{q}")).unwrap()).unwrap(),
            Role::Client,
        )
        .unwrap();
        server
            .set_recv_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client
            .set_recv_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        (server, client)
    }

    /// A peer that takes no data (a link down, a stuck reader) fails the
    /// send once the buffers are full instead of blocking it for good, and
    /// what was accepted still arrives whole and in order.
    #[test]
    fn a_full_send_buffer_fails_the_send_and_keeps_the_framing() {
        let (mut server, client) = pair("sndbuf=4096&rcvbuf=4096");
        let mut burst = RxBurst::new(8, 2048);
        // Accept the connection, then read nothing.
        let _ = server.recv_burst_until(&mut burst, Instant::now() + Duration::from_millis(200));
        let msg = |i: u32| vec![(i % 251) as u8; 1000];
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            let mut client = client;
            let mut ok = 0u32;
            let mut err = None;
            for i in 0..100_000u32 {
                match client.send_burst(&[TxMsg {
                    data: &msg(i),
                    to: None,
                }]) {
                    Ok(n) => {
                        assert_eq!(n, 1);
                        ok += 1;
                    }
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            done_tx.send(()).unwrap();
            (client, ok, err)
        });
        // Not a timing assertion: before sends were bounded, this never came.
        done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a send into full buffers returned");
        let (mut client, ok, err) = sender.join().unwrap();
        let err = err.expect("the buffers filled");
        assert!(err.would_block(), "{err}");
        assert!(err.to_string().contains("takes no data"), "{err}");
        let mut got = 0u32;
        let mut poke = RxBurst::new(1, 64);
        while got < ok {
            // A receive on the client sends what a full buffer held back.
            let _ = client.recv_burst_until(&mut poke, Instant::now() + Duration::from_millis(1));
            let n = server.recv_burst(&mut burst).unwrap();
            assert!(n > 0, "{got} of {ok} messages arrived");
            for k in 0..n {
                assert_eq!(burst.get(k).0, &msg(got)[..], "message {got}");
                got += 1;
            }
        }
        assert_eq!(got, ok);
    }

    #[test]
    fn framed_echo_each_strategy() {
        for q in [
            "rx=block",
            "rx=spin",
            "rx=adaptive&spins=10",
            "rx=busy-poll",
        ] {
            let (mut server, mut client) = pair(q);
            let msgs: Vec<Vec<u8>> = (1..=5u8).map(|i| vec![i; usize::from(i) * 10]).collect();
            let tx: Vec<TxMsg<'_>> = msgs.iter().map(|m| TxMsg { data: m, to: None }).collect();
            assert_eq!(client.send_burst(&tx).unwrap(), 5);
            let mut burst = RxBurst::new(8, 128);
            let mut got = Vec::new();
            while got.len() < 5 {
                let n = server.recv_burst(&mut burst).unwrap();
                assert!(n > 0, "{q}: timed out");
                for k in 0..n {
                    let (d, m) = burst.get(k);
                    assert!(!m.truncated);
                    got.push(d.to_vec());
                    server.send(d, m.peer).unwrap();
                }
            }
            assert_eq!(got, msgs, "{q}");
            let mut back = 0;
            while back < 5 {
                back += client.recv_burst(&mut burst).unwrap();
            }
            let caps = client.capabilities();
            assert_eq!(caps.legacy().tcp_nodelay, Some(true), "{q}");
            assert_eq!(
                caps.rx_strategy,
                q.trim_start_matches("rx=").split('&').next().unwrap()
            );
        }
    }

    /// `timestamps=tx`: one `SCM_TSTAMP_SND` stamp per send, keyed by the
    /// offset of the send's last byte (framing included), stamped between
    /// the send's call and its return; none without the parameter.
    #[test]
    fn tx_stamps_are_keyed_by_the_offset_of_each_sends_last_byte() {
        let realtime = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        };
        let (mut server, mut client) = pair("timestamps=tx&framing=soupbin");
        assert_eq!(client.stream_offset(), Some(0));
        let granted = client.capabilities().lines();
        assert!(
            granted
                .iter()
                .any(|(k, v)| k == "tx_timestamps" && v.starts_with("SND software")),
            "{granted:?}"
        );
        let mut sent = Vec::new();
        for len in [1usize, 49, 300, 7] {
            let before = realtime();
            client.send(&vec![b'U'; len], None).unwrap();
            let after = realtime();
            let end = client.stream_end().unwrap();
            assert_eq!(client.stream_offset(), Some(end), "nothing held back");
            sent.push(((end - 1) as u32, before, after));
        }
        assert_eq!(client.stream_offset(), Some(1 + 49 + 300 + 7 + 4 * 2));
        let mut stamps = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while stamps.len() < sent.len() && Instant::now() < deadline {
            client.tx_timestamps(&mut |st| stamps.push(st)).unwrap();
        }
        assert_eq!(stamps.len(), sent.len(), "{stamps:?}");
        for (st, (key, before, after)) in stamps.iter().zip(&sent) {
            assert_eq!(st.kind, sock::TxStampKind::Snd);
            assert_eq!(st.id, *key, "{stamps:?} vs {sent:?}");
            let t = st.sw_ns.unwrap();
            assert!((*before..=*after).contains(&t), "{t} outside {before}..={after}");
        }
        // Everything arrived, framed as sent.
        let mut burst = RxBurst::new(8, 512);
        let mut got = Vec::new();
        while got.len() < 4 {
            let n = server.recv_burst(&mut burst).unwrap();
            assert!(n > 0, "timed out");
            got.extend((0..n).map(|k| burst.get(k).0.len()));
        }
        assert_eq!(got, [1, 49, 300, 7]);
        // Without the parameter: none asked for, none said.
        let (_server, mut plain) = pair("framing=soupbin");
        plain.send(b"U", None).unwrap();
        assert_eq!(plain.tx_timestamps(&mut |_| {}).unwrap(), 0);
        let caps = plain.capabilities();
        assert!(!caps.legacy().tx_timestamps);
        assert!(!caps.lines().iter().any(|(k, _)| k == "tx_timestamps"));
        assert!(client.capabilities().legacy().tx_timestamps);
    }

    /// Stamps nobody reads do not pile up in the socket's receive buffer
    /// (where they would stall the data coming in): after
    /// `UNREAD_STAMPS_MAX` sends without a read they are thrown away and
    /// counted, and the stream both ways is untouched.
    #[test]
    fn unread_tx_stamps_are_dropped_not_left_to_fill_the_receive_buffer() {
        let (mut server, mut client) = pair("timestamps=tx&rcvbuf=4096");
        let n = 3 * UNREAD_STAMPS_MAX as usize;
        for i in 0..n {
            client.send(&(i as u32).to_be_bytes(), None).unwrap();
            // Paced, so each send is its own segment and its own stamp.
            std::thread::sleep(Duration::from_micros(200));
        }
        let mut burst = RxBurst::new(64, 64);
        let mut got = 0;
        while got < n {
            let k = server.recv_burst(&mut burst).unwrap();
            assert!(k > 0, "timed out at {got}");
            got += k;
        }
        // The client still receives: the server's answer arrives.
        server.send(b"back", None).unwrap();
        let k = client.recv_burst(&mut burst).unwrap();
        assert_eq!((k, burst.get(0).0), (1, &b"back"[..]));
        let dropped = client
            .capabilities()
            .lines()
            .into_iter()
            .find(|(k, _)| k == "tx_stamps_dropped");
        assert!(dropped.is_some(), "{:?}", client.capabilities().lines());
        let mut left = 0;
        client.tx_timestamps(&mut |_| left += 1).unwrap();
        assert!(
            left <= UNREAD_STAMPS_MAX as usize,
            "{left} stamps were still waiting"
        );
    }

    #[test]
    fn oversized_frame_is_truncated_and_skipped() {
        let (mut server, mut client) = pair("rx=block");
        client.send(&[1; 500], None).unwrap();
        client.send(&[2; 10], None).unwrap();
        let mut burst = RxBurst::new(1, 100);
        assert_eq!(server.recv_burst(&mut burst).unwrap(), 1);
        let (d, m) = burst.get(0);
        assert!(m.truncated && m.wire_len == 500 && d == &[1; 100][..]);
        assert_eq!(server.recv_burst(&mut burst).unwrap(), 1);
        assert_eq!(
            burst.get(0).0,
            &[2; 10][..],
            "next frame read cleanly after the skipped tail"
        );
    }

    #[test]
    fn server_accepts_next_client_after_close_and_client_sees_close() {
        let (mut server, client) = pair("rx=spin");
        let addr = server.capabilities().local.unwrap();
        let mut burst = RxBurst::new(1, 64);
        drop(client);
        server
            .set_recv_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Accepts the first connection, sees it close, then times out.
        assert_eq!(server.recv_burst(&mut burst).unwrap(), 0);
        let mut c2 = TcpTransport::open(TcpConfig::new(addr), Role::Client).unwrap();
        c2.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
        c2.send(b"again", None).unwrap();
        assert_eq!(server.recv_burst(&mut burst).unwrap(), 1);
        assert_eq!(burst.get(0).0, b"again");
        assert_eq!(server.accepted(), 2);
        drop(server);
        let e = c2.recv_burst(&mut burst).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ECONNRESET));
    }

    #[test]
    fn frames_split_across_reads_byte_by_byte() {
        use std::io::Write;
        let mut server =
            TcpTransport::open(TcpConfig::new("127.0.0.1:0".parse().unwrap()), Role::Server)
                .unwrap();
        let addr = server.capabilities().local.unwrap();
        server
            .set_recv_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let writer = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            let mut wire = Vec::new();
            for m in [&b"first"[..], b"", b"third!"] {
                wire.extend_from_slice(&(m.len() as u32).to_be_bytes());
                wire.extend_from_slice(m);
            }
            // One byte per segment: headers and bodies split every way.
            for b in wire {
                c.write_all(&[b]).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            c
        });
        let mut burst = RxBurst::new(1, 64);
        let mut got: Vec<Vec<u8>> = Vec::new();
        while got.len() < 3 {
            assert_eq!(
                server.recv_burst(&mut burst).unwrap(),
                1,
                "timed out after {got:?}"
            );
            got.push(burst.get(0).0.to_vec());
        }
        assert_eq!(got, vec![b"first".to_vec(), Vec::new(), b"third!".to_vec()]);
        drop(writer.join().unwrap());
    }

    /// `framing=soupbin`: a 2-byte length before each message, as
    /// SoupBinTCP puts it on the wire, both ways, with a stream split
    /// anywhere; larger messages than 65,535 bytes are refused.
    #[test]
    fn soupbin_framing_on_the_wire() {
        use std::io::{Read, Write};
        let uri = Uri::parse("tcp://127.0.0.1:0?framing=soupbin").unwrap();
        let cfg = TcpConfig::from_uri(&uri).unwrap();
        assert_eq!(cfg.framing, Framing::Soupbin);
        let mut server = TcpTransport::open(cfg.clone(), Role::Server).unwrap();
        let addr = server.capabilities().local.unwrap();
        server
            .set_recv_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(server.stream_prefix(), Some(2));
        assert_eq!(server.capabilities().max_message, 65_535);
        let peer = std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            // Login Request-shaped bytes and a client heartbeat, split mid-header.
            let wire = [&[0, 3, b'L', 1, 2][..], &[0, 1, b'R']].concat();
            c.write_all(&wire[..1]).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            c.write_all(&wire[1..]).unwrap();
            let mut back = [0u8; 4];
            c.read_exact(&mut back).unwrap();
            back
        });
        let mut burst = RxBurst::new(4, 256);
        let mut got = Vec::new();
        while got.len() < 2 {
            let n = server.recv_burst(&mut burst).unwrap();
            assert!(n > 0, "timed out after {got:?}");
            for k in 0..n {
                got.push(burst.get(k).0.to_vec());
            }
        }
        assert_eq!(got, vec![vec![b'L', 1, 2], vec![b'R']]);
        server.send(b"AB", None).unwrap();
        assert_eq!(peer.join().unwrap(), [0, 2, b'A', b'B']);
        let e = server.send(&[0; 65_536], None).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EMSGSIZE));
        assert!(e.to_string().contains("65,535"), "{e}");
        let e = TcpConfig::from_uri(&Uri::parse("tcp://1.2.3.4:5?framing=soup").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("soupbin"), "{e}");
    }

    /// `framing=sockperf`: no prefix, each message cut at the length field
    /// of its own 14-byte sockperf header, with a stream split anywhere; a
    /// length field shorter than the header yields the header alone (the
    /// stream moves on); a message whose field is not its length is refused.
    #[test]
    fn sockperf_framing_on_the_wire() {
        use std::io::{Read, Write};
        let uri = Uri::parse("tcp://127.0.0.1:0?framing=sockperf").unwrap();
        let cfg = TcpConfig::from_uri(&uri).unwrap();
        assert_eq!(cfg.framing, Framing::Sockperf);
        let mut server = TcpTransport::open(cfg, Role::Server).unwrap();
        let addr = server.capabilities().local.unwrap();
        server
            .set_recv_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(server.stream_prefix(), Some(0));
        let msg = |seq: u8, flags: u8, len: u8, body: &[u8]| {
            [&[0, 0, 0, 0, 0, 0, 0, seq, 0, flags, 0, 0, 0, len][..], body].concat()
        };
        let a = msg(1, 3, 16, b"ab");
        let bad = msg(2, 3, 5, b"");
        let c = msg(3, 1, 14, b"");
        let wire = [a.clone(), bad.clone(), c.clone()].concat();
        let peer = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            // Split inside the first header's length field.
            s.write_all(&wire[..12]).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            s.write_all(&wire[12..]).unwrap();
            let mut back = [0u8; 16];
            s.read_exact(&mut back).unwrap();
            back
        });
        let mut burst = RxBurst::new(4, 256);
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = server.recv_burst(&mut burst).unwrap();
            assert!(n > 0, "timed out after {got:?}");
            for k in 0..n {
                got.push(burst.get(k).0.to_vec());
            }
        }
        assert_eq!(got, vec![a.clone(), bad.clone(), c]);
        let reply = msg(1, 2, 16, b"ab");
        server.send(&reply, None).unwrap();
        assert_eq!(peer.join().unwrap()[..], reply[..]);
        let e = server.send(&bad, None).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL));
        assert!(e.to_string().contains("sockperf"), "{e}");
        let e = server.send(b"short", None).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL));
        let e = TcpConfig::from_uri(&Uri::parse("tcp://1.2.3.4:5?framing=sp").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("sockperf"), "{e}");
    }

    #[test]
    fn refused_connect_and_bad_params() {
        // Bind then drop to find a port with no listener.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = TcpTransport::open(
            TcpConfig::new(SocketAddr::from(([127, 0, 0, 1], port))),
            Role::Client,
        )
        .unwrap_err();
        assert!(matches!(e, OpenError::Connect { .. }), "{e}");
        assert!(e.to_string().contains("hftnet pong tcp://"), "{e}");
        let e = TcpConfig::from_uri(&Uri::parse("tcp://1.2.3.4:5?keepalive=0&keepidle=5").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("keepalive"), "{e}");
        let e = TcpConfig::from_uri(&Uri::parse("tcp://1.2.3.4:5?stamps=tx").unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("nodelay") && e.to_string().contains("timestamps"),
            "lists accepted params: {e}"
        );
        // Receive and hardware stamps have no meaning on a byte stream here.
        for v in ["1", "rx", "rx,tx", "hw"] {
            let e = TcpConfig::from_uri(&Uri::parse(&format!("tcp://1.2.3.4:5?timestamps={v}")).unwrap())
                .unwrap_err();
            assert!(
                e.to_string().contains("timestamps") && e.to_string().contains("tx (software transmit"),
                "{v}: {e}"
            );
        }
        // A server of many connections reads no stamps: refused at open.
        let cfg = TcpConfig::from_uri(&Uri::parse("tcp://127.0.0.1:0?timestamps=tx").unwrap()).unwrap();
        assert!(cfg.tx_timestamps);
        let e = TcpServer::open(cfg, 4).unwrap_err();
        assert!(e.to_string().contains("timestamps") && e.to_string().contains("per connection"), "{e}");
        let c = TcpConfig::from_uri(
            &Uri::parse("tcp://1.2.3.4:5?keepidle=5&keepcnt=3&nodelay=0").unwrap(),
        )
        .unwrap();
        assert_eq!(
            c.keepalive,
            Some(Keepalive {
                idle: Some(5),
                interval: None,
                count: Some(3)
            })
        );
        assert!(!c.nodelay);
    }
}
