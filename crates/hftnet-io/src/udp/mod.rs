//! Kernel UDP sockets (`udp://`) and IPv4 multicast (`mcast://`).
//!
//! Layer: a backend of [`Transport`]. A server binds the URI's address and
//! answers whoever sent; a client sends to the URI's address (connected by
//! default for unicast, so the kernel filters other senders and reports ICMP
//! port unreachable). A multicast server joins the group (any-source, or
//! source-specific with `source=`) on the named interface; a multicast client
//! sends to the group from the named interface and receives unicast replies.
//!
//! Hot path with `batch=1` (the default): one `recvmsg` (`recvfrom` without
//! timestamps) per message, plus one non-blocking call to finish a burst when
//! the burst holds more than one slot; one `sendto` per message.
//!
//! With `batch=N` (2 to [`MAX_BATCH`]): one `recvmmsg` takes up to N datagrams
//! (`MSG_WAITFORONE`: it waits for the first only, per the receive strategy),
//! and one `sendmmsg` sends up to N; a burst larger than N takes several
//! calls, a burst of one message uses the single-message calls. The headers
//! are allocated when the socket is opened; datagrams are received straight
//! into the burst's slots. No other allocation.
//!
//! With `zerocopy=1`: `SO_ZEROCOPY` is set and every send goes out with
//! `MSG_ZEROCOPY` from one of `zc_slots=N` (default
//! [`DEFAULT_ZC_SLOTS`]) send buffers the transport owns, allocated at open
//! ([`MAX_UDP_PAYLOAD`] bytes each). A send copies the message into the slot
//! of its send counter; the slot is reused only after the kernel's completion
//! for that counter was read from the error queue (drained, non-blocking,
//! before each burst; when the slot is still busy, `ppoll(POLLERR)` waits up
//! to [`ZC_WAIT`], then the send fails with `ETIMEDOUT`). On loopback and
//! veth the kernel copies anyway and says so (`SO_EE_CODE_ZEROCOPY_COPIED`),
//! counted in [`UdpTransport::zerocopy_stats`].

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::sock::{self, MmsgBatch};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use serde::Serialize;

use crate::Role;
use crate::backend::{
    Backend, CapsSection, Placement, RungContext, RungSpec, socket_strategy_rungs,
};
use crate::capabilities::{Capabilities, LegacyFields, legacy_lines};
pub use crate::common::Timestamps;
use crate::common::{self, COMMON_PARAMS, SocketCaps, SocketOptions};
use crate::error::{OpenError, from_io};
use crate::lease::{CopyLease, copy_lease};
use crate::transport::{Addrs, RxBurst, RxMeta, Transport, TxMsg, TxStamp, Waiter};
use crate::uri::{Uri, UriError};

/// The `udp://` and `mcast://` backend.
#[derive(Debug)]
pub struct UdpBackend;

impl Backend for UdpBackend {
    const SCHEMES: &'static [&'static str] = &["udp", "mcast"];
    type Config = UdpConfig;
    type Transport = UdpTransport;
    type Caps = UdpCaps;

    fn parse(uri: &Uri) -> Result<UdpConfig, UriError> {
        UdpConfig::from_uri(uri)
    }

    fn scheme(cfg: &UdpConfig) -> &'static str {
        if cfg.multicast.is_some() { "mcast" } else { "udp" }
    }

    fn open(cfg: &UdpConfig, role: Role) -> Result<UdpTransport, OpenError> {
        UdpTransport::open(cfg.clone(), role)
    }

    fn max_message(_: &UdpConfig) -> usize {
        MAX_UDP_PAYLOAD
    }

    fn burst(cfg: &UdpConfig) -> usize {
        cfg.batch
    }

    fn cpu(cfg: &UdpConfig) -> Option<usize> {
        cfg.socket.cpu
    }

    fn placement(scheme: &str) -> Placement {
        // A group needs an interface that routes it; loopback does not by default.
        if scheme == "mcast" {
            Placement::Interface
        } else {
            Placement::Anywhere
        }
    }

    fn rungs(scheme: &str, ctx: &RungContext<'_>) -> Vec<RungSpec> {
        if scheme == "mcast" {
            let ifq = ctx.iface.map(|i| format!("&iface={i}")).unwrap_or_default();
            return socket_strategy_rungs(ctx, |port, q| {
                format!("mcast://239.1.1.1:{port}?{q}{ifq}")
            });
        }
        let ip = ctx.server_ip;
        let mut r = socket_strategy_rungs(ctx, |port, q| format!("udp://{ip}:{port}?{q}"));
        // The batched, zero-copy and timestamped socket paths (spinning, so
        // the option is the only difference from udp/spin).
        for (name, q) in [
            ("spin+batch32", "rx=spin&batch=32"),
            ("spin+zerocopy", "rx=spin&zerocopy=1"),
            ("spin+timestamps", "rx=spin&timestamps=rx,tx"),
        ] {
            let port = ctx.port + r.len() as u16;
            r.push(RungSpec::same(name, format!("udp://{ip}:{port}?{q}")));
        }
        r
    }
}

/// The `udp://` / `mcast://` section of the capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpCaps {
    /// What the kernel granted the socket.
    #[serde(flatten)]
    pub socket: SocketCaps,
    /// Datagrams per `recvmmsg` / `sendmmsg` call (`batch=`).
    pub batch: usize,
    /// The group joined or sent to, for `mcast://`.
    pub group: Option<Ipv4Addr>,
    /// `zerocopy=1` counters.
    pub zerocopy: Option<ZeroCopyStats>,
}

impl CapsSection for UdpCaps {
    fn lines(&self, out: &mut Vec<(String, String)>) {
        legacy_lines(&self.legacy(), out);
    }

    fn legacy(&self) -> LegacyFields {
        self.socket.legacy()
    }
}

/// Largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Largest `batch=`: the kernel's `UIO_MAXIOV`, its limit of messages per
/// `recvmmsg` / `sendmmsg` call.
pub const MAX_BATCH: usize = sock::MMSG_MAX_BATCH;

/// Send buffers of `zerocopy=1` unless `zc_slots=` says otherwise.
pub const DEFAULT_ZC_SLOTS: usize = 64;

/// Largest `zc_slots=`.
pub const MAX_ZC_SLOTS: usize = 1024;

/// How long a `zerocopy=1` send waits for the completion that frees its slot.
pub const ZC_WAIT: Duration = Duration::from_secs(2);

/// Receive buffer a multicast server asks for unless `rcvbuf=` says otherwise.
pub const MCAST_DEFAULT_RCVBUF: u32 = 4 << 20;

/// Where a client binds: `bind=`, or any address of the peer's family.
fn client_local(cfg: &UdpConfig) -> SocketAddr {
    cfg.socket
        .bind
        .unwrap_or_else(|| common::any_addr_like(&cfg.addr))
}

fn check_role(cfg: &UdpConfig, role: Role) -> Result<(), OpenError> {
    common::check_role_addr(cfg.addr, cfg.socket.bind, role)
}

/// Multicast settings of an `mcast://` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McastOptions {
    /// The group (224.0.0.0/4).
    pub group: Ipv4Addr,
    /// Interface to join on and send from (`iface=`); `None` lets routing choose.
    pub iface: Option<String>,
    /// Source for source-specific membership (`source=`).
    pub source: Option<Ipv4Addr>,
    /// `IP_MULTICAST_LOOP` (`loop=`, default off: a trading host does not want its own sends).
    pub loopback: bool,
    /// `IP_MULTICAST_TTL` (`ttl=`, default 1: stay on the link).
    pub ttl: u8,
}

/// A UDP or multicast endpoint, as parsed from a URI or built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpConfig {
    /// Server: the address to bind. Client: the peer (or group) to send to.
    pub addr: SocketAddr,
    /// Options common to kernel sockets.
    pub socket: SocketOptions,
    /// Kernel timestamps (`timestamps=`: `1` for `SO_TIMESTAMPNS`, or a list
    /// of `rx`, `tx`, `hw`; see [`Timestamps`]).
    pub timestamps: Timestamps,
    /// `SO_INCOMING_CPU` hint (`incoming_cpu=N`).
    pub incoming_cpu: Option<u32>,
    /// Unicast client: `connect()` to the peer (`connect=`, default on).
    pub connect: bool,
    /// Datagrams per receive or send system call (`batch=N`, 1 to
    /// [`MAX_BATCH`], default 1). 1 uses `recvmsg`/`recvfrom` and `sendto`;
    /// more uses `recvmmsg` and `sendmmsg` (Linux 3.0+).
    pub batch: usize,
    /// `MSG_ZEROCOPY` sends from this many transport-owned send buffers
    /// (`zerocopy=1`, `zc_slots=N`, 1 to [`MAX_ZC_SLOTS`], default
    /// [`DEFAULT_ZC_SLOTS`]); `None`: ordinary copying sends.
    pub zerocopy: Option<usize>,
    /// Set for `mcast://`.
    pub multicast: Option<McastOptions>,
}

const UDP_PARAMS: &[&str] = &[
    "timestamps",
    "incoming_cpu",
    "batch",
    "connect",
    "zerocopy",
    "zc_slots",
];
const MCAST_PARAMS: &[&str] = &[
    "timestamps",
    "incoming_cpu",
    "batch",
    "zerocopy",
    "zc_slots",
    "iface",
    "source",
    "loop",
    "ttl",
];

impl UdpConfig {
    /// A plain unicast endpoint with default options.
    #[must_use]
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            socket: SocketOptions::default(),
            timestamps: Timestamps::default(),
            incoming_cpu: None,
            connect: true,
            batch: 1,
            zerocopy: None,
            multicast: None,
        }
    }

    /// Reads a `udp://` or `mcast://` URI.
    ///
    /// # Errors
    /// [`UriError`] naming the bad part.
    pub fn from_uri(uri: &Uri) -> Result<Self, UriError> {
        let is_mcast = uri.scheme == "mcast";
        let extra = if is_mcast { MCAST_PARAMS } else { UDP_PARAMS };
        let addr = uri.socket_addr()?;
        let mut p = uri.params(&[COMMON_PARAMS, extra]);
        let socket = SocketOptions::from_params(&mut p)?;
        let timestamps = Timestamps::from_params(&mut p, socket.device.as_deref())?;
        let incoming_cpu = p.int("incoming_cpu", 0..=4095)?.map(|v| v as u32);
        let batch = p.int("batch", 1..=MAX_BATCH as i64)?.unwrap_or(1) as usize;
        let zerocopy = p.get_with("zerocopy", "1 or 0", |v| match v {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        })?;
        let zc_slots = p.int("zc_slots", 1..=MAX_ZC_SLOTS as i64)?;
        let zerocopy = match (zerocopy, zc_slots) {
            (Some(true), n) => Some(n.map_or(DEFAULT_ZC_SLOTS, |n| n as usize)),
            (_, Some(_)) => {
                return Err(UriError::Malformed {
                    uri: uri.text.clone(),
                    reason: "zc_slots= needs zerocopy=1".into(),
                });
            }
            _ => None,
        };
        if zerocopy.is_some() && timestamps.tx {
            return Err(UriError::Malformed {
                uri: uri.text.clone(),
                reason: "zerocopy=1 cannot be combined with timestamps=tx: both are read \
                         from the socket's error queue"
                    .into(),
            });
        }
        let mut cfg = Self {
            addr,
            socket,
            timestamps,
            incoming_cpu,
            connect: true,
            batch,
            zerocopy,
            multicast: None,
        };
        if is_mcast {
            let group = match addr {
                SocketAddr::V4(a) if a.ip().is_multicast() => *a.ip(),
                _ => {
                    return Err(UriError::Malformed {
                        uri: uri.text.clone(),
                        reason: format!(
                            "{} is not an IPv4 multicast group (224.0.0.0/4), e.g. 239.1.1.1:30001",
                            uri.authority
                        ),
                    });
                }
            };
            let iface = p.get_with("iface", "an interface name such as veth0", |v| {
                (!v.is_empty() && v.len() < 16).then(|| v.to_string())
            })?;
            let source = p.get_with("source", "a unicast IPv4 source address", |v| {
                v.parse::<Ipv4Addr>()
                    .ok()
                    .filter(|a| !a.is_multicast() && !a.is_unspecified())
            })?;
            let loopback = p.bool("loop")?.unwrap_or(false);
            let ttl = p.int("ttl", 0..=255)?.unwrap_or(1) as u8;
            cfg.multicast = Some(McastOptions {
                group,
                iface,
                source,
                loopback,
                ttl,
            });
        } else {
            cfg.connect = p.bool("connect")?.unwrap_or(true);
        }
        p.finish()?;
        Ok(cfg)
    }
}

/// A kernel UDP socket behind the [`Transport`] trait.
#[derive(Debug)]
pub struct UdpTransport {
    sock: Socket,
    cfg: UdpConfig,
    role: Role,
    waiter: Waiter,
    /// Where `send(.., None)` goes when the socket is not connected.
    default_peer: Option<SocketAddr>,
    connected: bool,
    received_any: bool,
    notes: Vec<String>,
    /// Where the group was joined (index, address of the interface), for leaving it.
    joined: Option<(u32, Ipv4Addr)>,
    /// Headers of `recvmmsg`/`sendmmsg`, with `batch=` above 1.
    mmsg: Option<MmsgBatch>,
    /// Send buffers and completion bookkeeping, with `zerocopy=1`.
    zc: Option<ZcRing>,
    /// Buffers of the lease API (allocated on first use).
    lease: CopyLease,
    /// The local address, read once at open.
    local: Option<SocketAddr>,
}

copy_lease!(UdpTransport);

/// Counters of `zerocopy=1` sends, kept by the transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ZeroCopyStats {
    /// Send buffers (`zc_slots=`).
    pub slots: usize,
    /// Datagrams sent with `MSG_ZEROCOPY`.
    pub sends: u64,
    /// Sends whose completion was read from the error queue.
    pub completions: u64,
    /// Completed sends the kernel copied anyway (`SO_EE_CODE_ZEROCOPY_COPIED`:
    /// always on loopback and veth).
    pub copied: u64,
    /// Most sends awaiting their completion at once (never above `slots`).
    pub max_in_flight: usize,
    /// Sends now awaiting their completion.
    pub in_flight: usize,
    /// Times a send found its slot busy and waited on the error queue.
    pub waits: u64,
    /// Slots written while their previous send was not completed: always 0
    /// (an invariant the transport checks on every send).
    pub reused_before_completion: u64,
    /// Completions for send counters not awaiting one (expected 0).
    pub unmatched: u64,
}

/// The `zerocopy=1` send buffers: the send numbered `s` (the kernel's
/// per-socket zero-copy counter, which counts successful `MSG_ZEROCOPY`
/// sends from 0) goes out of slot `s % slots`, which stays untouched until
/// the completion covering `s` is read.
#[derive(Debug)]
struct ZcRing {
    buf: Vec<u8>,
    /// The send counter (low 32 bits) each slot awaits a completion for.
    pending: Box<[Option<u32>]>,
    /// Sends done so far: the counter of the next one.
    next: u64,
    stats: ZeroCopyStats,
}

impl ZcRing {
    const SLOT: usize = MAX_UDP_PAYLOAD;

    fn new(slots: usize) -> Self {
        Self {
            // Zeroed pages are mapped lazily: untouched slots cost nothing.
            buf: vec![0; slots * Self::SLOT],
            pending: vec![None; slots].into_boxed_slice(),
            next: 0,
            stats: ZeroCopyStats {
                slots,
                ..ZeroCopyStats::default()
            },
        }
    }

    fn slots(&self) -> usize {
        self.pending.len()
    }

    fn index(&self, seq: u64) -> usize {
        (seq % self.slots() as u64) as usize
    }

    /// Reads every completion queued now, without blocking.
    fn drain(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> Result<(), SyscallError> {
        while let Some(ev) = sock::recv_errqueue(fd)? {
            if let sock::ErrQueueEvent::ZeroCopy(c) = ev {
                self.complete(c);
            }
        }
        Ok(())
    }

    fn complete(&mut self, c: sock::ZcCompletion) {
        let n = self.slots() as u64;
        for k in 0..c.count().min(n + 1) {
            let id = c.lo.wrapping_add(k as u32);
            // The most recent send whose counter is `id`.
            let age = u64::from((self.next as u32).wrapping_sub(id));
            let idx = self.next.checked_sub(age).map(|s| self.index(s));
            match idx {
                Some(i) if age >= 1 && age <= n && self.pending[i] == Some(id) => {
                    self.pending[i] = None;
                    self.stats.in_flight -= 1;
                    self.stats.completions += 1;
                    if c.copied {
                        self.stats.copied += 1;
                    }
                }
                _ => self.stats.unmatched += 1,
            }
        }
        self.stats.unmatched += c.count().saturating_sub(n + 1);
    }

    /// Waits until the slot of send `seq` has no pending completion.
    fn acquire(&mut self, fd: std::os::fd::BorrowedFd<'_>, seq: u64) -> Result<(), SyscallError> {
        let i = self.index(seq);
        if self.pending[i].is_none() {
            return Ok(());
        }
        self.drain(fd)?;
        if self.pending[i].is_none() {
            return Ok(());
        }
        self.stats.waits += 1;
        let end = Instant::now() + ZC_WAIT;
        while self.pending[i].is_some() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SyscallError::from_errno(
                    "ppoll(POLLERR) waiting for a MSG_ZEROCOPY completion",
                    libc::ETIMEDOUT,
                ));
            }
            sock::poll_errqueue(fd, left)?;
            self.drain(fd)?;
        }
        Ok(())
    }

    /// Copies `data` into the slot of send `seq` (acquired).
    fn fill(&mut self, seq: u64, data: &[u8]) {
        let i = self.index(seq);
        if self.pending[i].is_some() {
            self.stats.reused_before_completion += 1;
        }
        self.buf[i * Self::SLOT..i * Self::SLOT + data.len()].copy_from_slice(data);
    }

    fn slot(&self, seq: u64, len: usize) -> &[u8] {
        let i = self.index(seq);
        &self.buf[i * Self::SLOT..i * Self::SLOT + len]
    }

    /// Records `k` sends from `self.next` on as awaiting completion.
    fn sent(&mut self, k: usize) {
        for _ in 0..k {
            let i = self.index(self.next);
            self.pending[i] = Some(self.next as u32);
            self.next += 1;
        }
        self.stats.sends += k as u64;
        self.stats.in_flight += k;
        self.stats.max_in_flight = self.stats.max_in_flight.max(self.stats.in_flight);
    }
}

impl UdpTransport {
    /// Opens the endpoint in `role`.
    ///
    /// # Errors
    /// [`OpenError`] naming the step, option or privilege that failed.
    pub fn open(cfg: UdpConfig, role: Role) -> Result<Self, OpenError> {
        let domain = if cfg.addr.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| OpenError::setup("creating a UDP socket")(from_io("socket", e)))?;
        check_role(&cfg, role)?;
        let mut sock_opts = cfg.socket.clone();
        if cfg.multicast.is_some() && role == Role::Server {
            if sock_opts.reuseaddr.is_none() {
                // Several receivers of one group on a host is the normal case.
                sock_opts.reuseaddr = Some(true);
            }
            if sock_opts.rcvbuf.is_none() {
                // A market-data receiver must ride out bursts: ask for a large
                // buffer (the kernel may clamp it; the capabilities say so).
                sock_opts.rcvbuf = Some(MCAST_DEFAULT_RCVBUF);
            }
        }
        let mut notes = sock_opts.apply(&s)?;
        let fd = s.as_fd();
        notes.extend(cfg.timestamps.apply(&s, cfg.socket.device.as_deref())?);
        if let Some(c) = cfg.incoming_cpu {
            sock::set_int(fd, sock::SO_INCOMING_CPU, c as i32)
                .map_err(OpenError::setup("setting SO_INCOMING_CPU"))?;
        }
        let iface = match cfg.multicast.as_ref().and_then(|m| m.iface.as_deref()) {
            Some(name) => {
                let index = sock::if_index(name).map_err(|_| OpenError::NoSuchInterface {
                    name: name.to_string(),
                })?;
                // Source-specific joins name the interface by its address.
                let addr = if cfg.multicast.as_ref().is_some_and(|m| m.source.is_some()) {
                    sock::if_ipv4_addr(name).map_err(OpenError::setup(format!(
                        "reading the IPv4 address of {name} (a source-specific join needs one)"
                    )))?
                } else {
                    Ipv4Addr::UNSPECIFIED
                };
                Some((index, addr))
            }
            None => None,
        };
        let ifindex = iface.map(|(i, _)| i);
        let mut default_peer = None;
        let mut connected = false;
        let mut joined = None;
        match (role, &cfg.multicast) {
            (Role::Server, None) => common::bind(&s, cfg.addr)?,
            (Role::Client, None) => {
                common::bind(&s, client_local(&cfg))?;
                if cfg.connect {
                    s.connect(&SockAddr::from(cfg.addr))
                        .map_err(|e| OpenError::Connect {
                            addr: cfg.addr,
                            cause: from_io("connect", e),
                        })?;
                    connected = true;
                }
                default_peer = Some(cfg.addr);
            }
            (Role::Server, Some(m)) => {
                // Binding the group address keeps other traffic to the port out.
                common::bind(
                    &s,
                    SocketAddr::V4(SocketAddrV4::new(m.group, cfg.addr.port())),
                )?;
                let at = iface.unwrap_or((0, Ipv4Addr::UNSPECIFIED));
                join(&s, m, at, true)?;
                joined = Some(at);
            }
            (Role::Client, Some(m)) => {
                if let Some(i) = ifindex {
                    sock::multicast_if(fd, i)
                        .map_err(OpenError::setup("setting IP_MULTICAST_IF"))?;
                }
                sock::set_int(fd, sock::IP_MULTICAST_LOOP, i32::from(m.loopback))
                    .map_err(OpenError::setup("setting IP_MULTICAST_LOOP"))?;
                sock::set_int(fd, sock::IP_MULTICAST_TTL, i32::from(m.ttl))
                    .map_err(OpenError::setup("setting IP_MULTICAST_TTL"))?;
                common::bind(&s, client_local(&cfg))?;
                default_peer = Some(cfg.addr);
            }
        }
        if cfg.multicast.as_ref().is_some_and(|m| m.iface.is_none()) && role == Role::Server {
            notes
                .push("no iface= given: the kernel chose the interface to join on by route".into());
        }
        let waiter = Waiter::new(s.as_fd(), cfg.socket.strategy)
            .map_err(OpenError::setup("creating the epoll waiter"))?;
        let mmsg = (cfg.batch > 1).then(|| MmsgBatch::new(cfg.batch, cfg.timestamps.control()));
        let zc = match cfg.zerocopy {
            Some(slots) => {
                sock::set_int(fd, sock::SO_ZEROCOPY, 1).map_err(OpenError::setup(
                    "setting SO_ZEROCOPY for zerocopy=1 (UDP needs Linux 5.0+)",
                ))?;
                Some(ZcRing::new(slots))
            }
            None => None,
        };
        let local = s.local_addr().ok().and_then(|a| a.as_socket());
        Ok(Self {
            sock: s,
            cfg,
            role,
            waiter,
            default_peer,
            connected,
            received_any: false,
            notes,
            joined,
            mmsg,
            zc,
            lease: CopyLease::new(),
            local,
        })
    }

    /// Counters of `zerocopy=1` sends (`None` without it). Reads the
    /// completions queued now first.
    ///
    /// # Errors
    /// An unexpected failure reading the error queue.
    pub fn zerocopy_stats(&mut self) -> Result<Option<ZeroCopyStats>, SyscallError> {
        let fd = self.sock.as_fd();
        match self.zc.as_mut() {
            Some(zc) => {
                zc.drain(fd)?;
                Ok(Some(zc.stats))
            }
            None => Ok(None),
        }
    }

    /// Waits up to `timeout` until every `zerocopy=1` send is completed;
    /// returns the counters. `Ok(None)` without `zerocopy=1`.
    ///
    /// # Errors
    /// An unexpected failure reading the error queue.
    pub fn zerocopy_flush(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<ZeroCopyStats>, SyscallError> {
        let fd = self.sock.as_fd();
        let Some(zc) = self.zc.as_mut() else {
            return Ok(None);
        };
        let end = Instant::now() + timeout;
        zc.drain(fd)?;
        while zc.stats.in_flight > 0 {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock::poll_errqueue(fd, left)?;
            zc.drain(fd)?;
        }
        Ok(Some(zc.stats))
    }

    /// The configuration it was opened with.
    #[must_use]
    pub fn config(&self) -> &UdpConfig {
        &self.cfg
    }

    /// Datagrams per receive or send system call (`batch=`).
    #[must_use]
    pub fn batch(&self) -> usize {
        self.cfg.batch
    }

    /// Largest message a lease lends whole.
    fn lease_slot(&self) -> usize {
        MAX_UDP_PAYLOAD
    }

    /// Leaves the multicast group now (the kernel also leaves on close).
    ///
    /// # Errors
    /// When the kernel refuses to drop the membership.
    pub fn leave(&mut self) -> Result<(), SyscallError> {
        if let (Some(at), Some(m)) = (self.joined.take(), &self.cfg.multicast) {
            membership(&self.sock, m, at, false)?;
        }
        Ok(())
    }
}

/// Joins or leaves `m.group` on the interface `at` (index, address), any-source
/// or source-specific.
fn membership(
    s: &Socket,
    m: &McastOptions,
    at: (u32, Ipv4Addr),
    join: bool,
) -> Result<(), SyscallError> {
    let fd = s.as_fd();
    match m.source {
        Some(src) => sock::source_membership(fd, m.group, src, at.1, join),
        None => sock::multicast_membership(fd, m.group, at.0, join),
    }
}

fn join(s: &Socket, m: &McastOptions, at: (u32, Ipv4Addr), join: bool) -> Result<(), OpenError> {
    let res = membership(s, m, at, join);
    res.map_err(|e| {
        let hint = if e.errno() == Some(libc::ENODEV) {
            " (no route to the group: name the interface with iface=, or add a multicast route)"
        } else {
            ""
        };
        OpenError::Setup {
            step: format!("joining multicast group {}{hint}", m.group),
            cause: e,
        }
    })
}

impl UdpTransport {
    #[inline]
    fn recv_impl(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        if self.mmsg.is_some() && burst.capacity() > 1 {
            return self.recv_batched(burst, deadline);
        }
        let fd = self.sock.as_fd();
        let control = self.cfg.timestamps.control();
        let first = {
            let slot = burst.slot_mut(0);
            self.waiter.wait(fd, deadline, |flags| {
                sock::recv_msg(fd, slot, flags, control)
            })?
        };
        let Some(info) = first else {
            burst.set_len(0);
            return Ok(0);
        };
        self.received_any = true;
        burst.set(0, meta(info));
        let mut n = 1;
        while n < burst.capacity() {
            match recv_one(fd, burst.slot_mut(n), libc::MSG_DONTWAIT, control) {
                Ok(info) => {
                    burst.set(n, meta(info));
                    n += 1;
                }
                Err(_) => break,
            }
        }
        burst.set_len(n);
        Ok(n)
    }

    /// `recvmmsg` straight into the burst's slots: the first call waits per
    /// strategy, further ones (for a burst larger than the batch) only take
    /// what is queued.
    #[inline]
    fn recv_batched(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        let Self {
            sock: s,
            waiter,
            mmsg,
            received_any,
            ..
        } = self;
        let Some(mmsg) = mmsg.as_mut() else {
            unreachable!("recv_batched runs only with batch > 1");
        };
        let fd = s.as_fd();
        let want = burst.capacity();
        let per_call = mmsg.capacity();
        let first = want.min(per_call);
        let got = waiter.wait(fd, deadline, |flags| {
            sock::recv_mmsg(fd, mmsg, burst.slots_from(0).take(first), flags)
        })?;
        let k = got.unwrap_or(0);
        if k == 0 {
            burst.set_len(0);
            return Ok(0);
        }
        *received_any = true;
        record(mmsg, burst, 0);
        let mut n = k;
        let mut last = k;
        let mut asked = first;
        // A full batch may mean more is queued: fill the rest of the burst.
        while n < want && last == asked {
            asked = (want - n).min(per_call);
            match sock::recv_mmsg(
                fd,
                mmsg,
                burst.slots_from(n).take(asked),
                libc::MSG_DONTWAIT,
            ) {
                Ok(got) if got > 0 => {
                    record(mmsg, burst, n);
                    n += got;
                    last = got;
                }
                _ => break,
            }
        }
        burst.set_len(n);
        Ok(n)
    }
}

/// Where a message goes: its own address, else nowhere on a connected socket
/// (the kernel uses the peer), else the default peer.
#[inline]
fn dest(
    connected: bool,
    default_peer: Option<SocketAddr>,
    to: Option<SocketAddr>,
) -> Option<SocketAddr> {
    match to {
        Some(a) => Some(a),
        None if connected => None,
        None => default_peer,
    }
}

/// Records the metadata of the last `recvmmsg`'s datagrams, which landed in
/// the burst from slot `at` on.
#[inline]
fn record(mmsg: &MmsgBatch, burst: &mut RxBurst, at: usize) {
    for i in 0..mmsg.received() {
        burst.set(at + i, meta(mmsg.info(i)));
    }
}

impl Transport for UdpTransport {
    #[inline]
    fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
        self.recv_impl(burst, None)
    }

    #[inline]
    fn recv_burst_until(
        &mut self,
        burst: &mut RxBurst,
        deadline: Instant,
    ) -> Result<usize, SyscallError> {
        self.recv_impl(burst, Some(deadline))
    }

    #[inline]
    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        if self.zc.is_some() {
            return self.send_zerocopy(msgs);
        }
        if msgs.len() > 1 && self.mmsg.is_some() {
            return self.send_batched(msgs);
        }
        let fd = self.sock.as_fd();
        for (i, m) in msgs.iter().enumerate() {
            let to = dest(self.connected, self.default_peer, m.to);
            if let Err(e) = sock::send_to(fd, m.data, to.as_ref(), 0) {
                return if i == 0 { Err(e) } else { Ok(i) };
            }
        }
        Ok(msgs.len())
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        self.waiter.set_timeout(self.sock.as_fd(), timeout)
    }

    fn capabilities(&self) -> Capabilities {
        let (mut socket, local) = self.cfg.socket.read_back(&self.sock);
        socket.rx_timestamps = self.cfg.timestamps.control();
        socket.tx_timestamps = self.cfg.timestamps.tx;
        socket.hw_timestamps = self.cfg.timestamps.hw;
        if self.received_any {
            socket.napi_id = sock::get_int(self.sock.as_fd(), sock::SO_INCOMING_NAPI_ID)
                .ok()
                .map(|v| v as u32);
        }
        let mut notes = self.notes.clone();
        if self.cfg.timestamps.any() {
            notes.push(format!("timestamps: {}", self.cfg.timestamps.describe()));
        }
        if self.cfg.batch > 1 {
            notes.push(format!(
                "batch={}: up to {} datagrams per recvmmsg/sendmmsg call",
                self.cfg.batch, self.cfg.batch
            ));
        }
        if let Some(zc) = &self.zc {
            let s = zc.stats;
            notes.push(format!(
                "zerocopy=1: MSG_ZEROCOPY sends from {} slots of {} bytes; {} sent, {} completed \
                 ({} copied by the kernel anyway, as always on loopback/veth), {} in flight \
                 (max {}), {} waits for a slot, {} unmatched completions",
                s.slots,
                ZcRing::SLOT,
                s.sends,
                s.completions,
                s.copied,
                s.in_flight,
                s.max_in_flight,
                s.waits,
                s.unmatched
            ));
        }
        let mcast_server = self.role == Role::Server && self.cfg.multicast.is_some();
        Capabilities {
            transport: UdpBackend::scheme(&self.cfg),
            rx_strategy: self.waiter.strategy().name(),
            local,
            peer: if mcast_server { None } else { self.default_peer },
            max_message: MAX_UDP_PAYLOAD,
            burst: self.cfg.batch,
            backend: Some(
                UdpCaps {
                    socket,
                    batch: self.cfg.batch,
                    group: self.cfg.multicast.as_ref().map(|m| m.group),
                    zerocopy: self.zc.as_ref().map(|z| z.stats),
                }
                .into(),
            ),
            notes,
            ..Capabilities::default()
        }
    }

    fn addrs(&self) -> Addrs {
        let mcast_server = self.role == Role::Server && self.cfg.multicast.is_some();
        Addrs {
            local: self.local,
            peer: if mcast_server { None } else { self.default_peer },
        }
    }

    /// Reads the error queue until it is empty (`timestamps=...,tx` only).
    fn tx_timestamps(&mut self, f: &mut dyn FnMut(TxStamp)) -> Result<usize, SyscallError> {
        if !self.cfg.timestamps.tx {
            return Ok(0);
        }
        let fd = self.sock.as_fd();
        let mut n = 0;
        while let Some(stamp) = sock::recv_tx_timestamp(fd)? {
            f(stamp);
            n += 1;
        }
        Ok(n)
    }
}

impl UdpTransport {
    /// `MSG_ZEROCOPY` sends out of the slot ring: chunks of up to the batch
    /// (and at most the slot count), each message copied into the slot of its
    /// send counter once that slot's previous send completed.
    fn send_zerocopy(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        let Self {
            sock: s,
            zc,
            mmsg,
            connected,
            default_peer,
            ..
        } = self;
        let Some(zc) = zc.as_mut() else {
            unreachable!("send_zerocopy runs only with zerocopy=1");
        };
        let (connected, default_peer) = (*connected, *default_peer);
        let fd = s.as_fd();
        zc.drain(fd)?;
        let per_call = mmsg.as_ref().map_or(1, MmsgBatch::capacity).min(zc.slots());
        let mut done = 0;
        while done < msgs.len() {
            let chunk = &msgs[done..(done + per_call).min(msgs.len())];
            for (j, m) in chunk.iter().enumerate() {
                let seq = zc.next + j as u64;
                if let Err(e) = zc.acquire(fd, seq) {
                    return if done == 0 { Err(e) } else { Ok(done) };
                }
                zc.fill(seq, m.data);
            }
            let next = zc.next;
            let res = match mmsg.as_mut() {
                Some(mmsg) if chunk.len() > 1 => {
                    let zc = &*zc;
                    sock::send_mmsg(
                        fd,
                        mmsg,
                        chunk.iter().enumerate().map(|(j, m)| {
                            (
                                zc.slot(next + j as u64, m.data.len()),
                                dest(connected, default_peer, m.to),
                            )
                        }),
                        libc::MSG_ZEROCOPY,
                    )
                }
                _ => {
                    let m = &chunk[0];
                    let to = dest(connected, default_peer, m.to);
                    sock::send_to(
                        fd,
                        zc.slot(next, m.data.len()),
                        to.as_ref(),
                        libc::MSG_ZEROCOPY,
                    )
                    .map(|_| 1)
                }
            };
            match res {
                Ok(0) => break,
                Ok(k) => {
                    zc.sent(k);
                    done += k;
                    if k < chunk.len() {
                        break;
                    }
                }
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// `sendmmsg` in chunks of the batch. A chunk the kernel took only in
    /// part is followed by a call for the rest, which reports the error.
    #[inline]
    fn send_batched(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        let (connected, default_peer) = (self.connected, self.default_peer);
        let Some(mmsg) = self.mmsg.as_mut() else {
            unreachable!("send_batched runs only with batch > 1");
        };
        let fd = self.sock.as_fd();
        let mut done = 0;
        while done < msgs.len() {
            let chunk = &msgs[done..];
            match sock::send_mmsg(
                fd,
                mmsg,
                chunk
                    .iter()
                    .map(|m| (m.data, dest(connected, default_peer, m.to))),
                0,
            ) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }
}

/// One datagram: `recvmsg` when control messages (timestamps) are wanted,
/// the cheaper `recvfrom` otherwise.
#[inline]
fn recv_one(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
    flags: libc::c_int,
    control: bool,
) -> Result<sock::RecvInfo, SyscallError> {
    if control {
        sock::recv_msg(fd, buf, flags, true)
    } else {
        sock::recv_from(fd, buf, flags)
    }
}

#[inline]
fn meta(info: sock::RecvInfo) -> RxMeta {
    RxMeta {
        len: info.len,
        wire_len: info.wire_len,
        truncated: info.truncated,
        peer: info.src,
        rx_ts_ns: info.rx_ts_ns,
        rx_hw_ts_ns: info.rx_hw_ts_ns,
        queue: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_pair(q: &str) -> (UdpTransport, UdpTransport) {
        let server = UdpTransport::open(
            UdpConfig::from_uri(&Uri::parse(&format!("udp://127.0.0.1:0?{q}")).unwrap()).unwrap(),
            Role::Server,
        )
        .unwrap();
        let addr = server.capabilities().local.unwrap();
        let client = UdpTransport::open(
            UdpConfig::from_uri(&Uri::parse(&format!("udp://{addr}?{q}")).unwrap()).unwrap(),
            Role::Client,
        )
        .unwrap();
        (server, client)
    }

    #[test]
    fn echo_each_strategy_and_burst() {
        for q in [
            "rx=block",
            "rx=spin",
            "rx=adaptive&spins=10",
            "rx=busy-poll",
        ] {
            let (mut server, mut client) = loopback_pair(q);
            server
                .set_recv_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            client
                .set_recv_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            for i in 0..3u8 {
                client.send(&[i; 40], None).unwrap();
            }
            let mut burst = RxBurst::new(4, 64);
            let mut got = 0;
            while got < 3 {
                let n = server.recv_burst(&mut burst).unwrap();
                assert!(n > 0, "{q}: timed out");
                for k in 0..n {
                    let (data, m) = burst.get(k);
                    assert_eq!(data, &[got as u8; 40][..], "{q}");
                    assert!(!m.truncated);
                    server.send(data, m.peer).unwrap();
                    got += 1;
                }
            }
            let mut one = RxBurst::new(1, 64);
            for i in 0..3u8 {
                assert_eq!(client.recv_burst(&mut one).unwrap(), 1, "{q}");
                assert_eq!(one.get(0).0, &[i; 40][..]);
            }
        }
    }

    #[test]
    fn batched_echo_each_strategy() {
        for q in [
            "rx=block&batch=8",
            "rx=spin&batch=8",
            "rx=adaptive&spins=10&batch=8",
            "rx=busy-poll&batch=8",
            "rx=block&batch=8&timestamps=1",
        ] {
            let (mut server, mut client) = loopback_pair(q);
            assert_eq!(server.batch(), 8);
            server
                .set_recv_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            client
                .set_recv_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            // 20 messages in one burst: three sendmmsg calls of 8, 8 and 4.
            let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 30 + usize::from(i)]).collect();
            let msgs: Vec<TxMsg<'_>> = payloads
                .iter()
                .map(|p| TxMsg { data: p, to: None })
                .collect();
            assert_eq!(client.send_burst(&msgs).unwrap(), 20, "{q}");
            // A burst of 32 slots: filled by several recvmmsg calls of up to 8.
            let mut burst = RxBurst::new(32, 64);
            let mut got = 0usize;
            while got < 20 {
                let n = server.recv_burst(&mut burst).unwrap();
                assert!(n > 0, "{q}: timed out after {got}");
                for k in 0..n {
                    let (data, m) = burst.get(k);
                    assert_eq!(data, &payloads[got][..], "{q}");
                    assert_eq!(m.wire_len, data.len());
                    assert!(!m.truncated);
                    assert_eq!(m.rx_ts_ns.is_some(), q.contains("timestamps"), "{q}");
                    server.send(data, m.peer).unwrap();
                    got += 1;
                }
            }
            // Echoes come back through a batched receive into a burst of 4.
            let mut four = RxBurst::new(4, 64);
            let mut back = 0usize;
            while back < 20 {
                let n = client.recv_burst(&mut four).unwrap();
                assert!(n > 0, "{q}: echo timed out after {back}");
                for k in 0..n {
                    assert_eq!(four.get(k).0, &payloads[back][..], "{q}");
                    back += 1;
                }
            }
            let caps = server.capabilities();
            assert!(caps.notes.iter().any(|n| n.contains("batch=8")), "{caps:?}");
        }
    }

    #[test]
    fn batched_receive_flags_truncation_and_times_out() {
        let (mut server, mut client) = loopback_pair("rx=block&batch=4");
        server
            .set_recv_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        client.send(&[9; 300], None).unwrap();
        client.send(&[8; 50], None).unwrap();
        let mut burst = RxBurst::new(4, 100);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(server.recv_burst(&mut burst).unwrap(), 2);
        let (data, m) = burst.get(0);
        assert_eq!((data.len(), m.wire_len, m.truncated), (100, 300, true));
        assert_eq!(data, &[9; 100][..]);
        let (data, m) = burst.get(1);
        assert_eq!((data, m.truncated), (&[8; 50][..], false));
        // A burst with larger slots: each datagram lands whole in its slot.
        client.send(&[7; 3000], None).unwrap();
        let mut big = RxBurst::new(4, 4000);
        assert_eq!(server.recv_burst(&mut big).unwrap(), 1);
        assert_eq!(big.get(0).0, &[7; 3000][..]);
        let t = std::time::Instant::now();
        assert_eq!(server.recv_burst(&mut burst).unwrap(), 0);
        assert!(t.elapsed() >= Duration::from_millis(25));
        assert!(burst.is_empty());
    }

    #[test]
    fn batched_send_to_an_absent_peer_reports_the_error() {
        // A connected client to a port nobody listens on: the ICMP port
        // unreachable comes back as ECONNREFUSED on a later sendmmsg.
        let gone = UdpTransport::open(UdpConfig::new("127.0.0.1:0".parse().unwrap()), Role::Server)
            .unwrap();
        let addr = gone.capabilities().local.unwrap();
        drop(gone);
        let mut client = UdpTransport::open(
            UdpConfig::from_uri(&Uri::parse(&format!("udp://{addr}?batch=4")).unwrap()).unwrap(),
            Role::Client,
        )
        .unwrap();
        let msgs = [TxMsg {
            data: b"x",
            to: None,
        }; 4];
        let mut refused = None;
        for _ in 0..50 {
            match client.send_burst(&msgs) {
                Ok(n) => assert!(n <= 4),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let e = refused.expect("ECONNREFUSED from a later sendmmsg");
        assert_eq!(e.call, "sendmmsg");
        assert_eq!(e.errno(), Some(libc::ECONNREFUSED));
    }

    #[test]
    fn batch_parameter_range_is_checked_and_named() {
        let cfg = |u: &str| UdpConfig::from_uri(&Uri::parse(u).unwrap());
        assert_eq!(cfg("udp://127.0.0.1:5").unwrap().batch, 1);
        assert_eq!(cfg("udp://127.0.0.1:5?batch=1024").unwrap().batch, 1024);
        assert_eq!(cfg("mcast://239.1.1.1:5?batch=16").unwrap().batch, 16);
        for bad in ["0", "1025", "99999", "many", "-1"] {
            let e = cfg(&format!("udp://127.0.0.1:5?batch={bad}")).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "bad value \"{bad}\" for parameter \"batch\": expected an integer from 1 to 1024"
                )
            );
        }
        // TCP has no batched calls: batch= is an unknown parameter there.
        let e = crate::Endpoint::parse("tcp://127.0.0.1:5?batch=8").unwrap_err();
        assert!(e.to_string().contains("unknown parameter \"batch\""), "{e}");
    }

    #[test]
    fn timeout_returns_zero_for_every_strategy() {
        for q in [
            "rx=block",
            "rx=spin",
            "rx=adaptive&spins=10",
            "rx=busy-poll",
        ] {
            let (mut server, _client) = loopback_pair(q);
            server
                .set_recv_timeout(Some(Duration::from_millis(30)))
                .unwrap();
            let mut burst = RxBurst::new(1, 64);
            let t = std::time::Instant::now();
            assert_eq!(server.recv_burst(&mut burst).unwrap(), 0, "{q}");
            assert!(
                t.elapsed() >= Duration::from_millis(25),
                "{q}: returned early"
            );
            assert!(burst.is_empty());
        }
    }

    #[test]
    fn oversized_datagram_is_flagged_truncated() {
        let (mut server, mut client) = loopback_pair("rx=block");
        server
            .set_recv_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.send(&[9; 300], None).unwrap();
        let mut burst = RxBurst::new(1, 100);
        assert_eq!(server.recv_burst(&mut burst).unwrap(), 1);
        let (data, m) = burst.get(0);
        assert_eq!(data.len(), 100);
        assert!(m.truncated);
        assert_eq!(m.wire_len, 300);
    }

    #[test]
    fn port_in_use_is_named() {
        let a = UdpTransport::open(UdpConfig::new("127.0.0.1:0".parse().unwrap()), Role::Server)
            .unwrap();
        let addr = a.capabilities().local.unwrap();
        let e = UdpTransport::open(UdpConfig::new(addr), Role::Server).unwrap_err();
        assert!(matches!(e, OpenError::AddrInUse { .. }), "{e}");
        assert!(e.to_string().contains(&addr.to_string()));
    }

    #[test]
    fn capabilities_report_granted_buffers_and_options() {
        let cfg = UdpConfig::from_uri(
            &Uri::parse("udp://127.0.0.1:0?rcvbuf=1M&sndbuf=256K&priority=5&tos=0x10&timestamps=1&rx=busy-poll&busy_poll=30&prefer_busy_poll=1").unwrap(),
        )
        .unwrap();
        let t = UdpTransport::open(cfg, Role::Server).unwrap();
        let caps = t.capabilities();
        let c = caps.legacy();
        assert!(c.rcvbuf.unwrap() >= 1 << 20, "{c:?}");
        assert!(c.sndbuf.unwrap() >= 256 << 10, "{c:?}");
        assert_eq!(c.priority, Some(5));
        assert_eq!(c.tos, Some(0x10));
        assert_eq!(c.busy_poll_usecs, Some(30));
        assert_eq!(c.prefer_busy_poll, Some(true));
        assert!(c.rx_timestamps);
        assert_eq!(c.napi_id, None, "unknown before the first packet");
        assert!(
            caps.lines()
                .iter()
                .any(|(k, v)| k == "rx_strategy" && v == "busy-poll")
        );
    }

    #[test]
    fn timestamps_parameter_values() {
        let ts = |u: &str| UdpConfig::from_uri(&Uri::parse(u).unwrap()).map(|c| c.timestamps);
        assert_eq!(ts("udp://127.0.0.1:5").unwrap(), Timestamps::default());
        assert_eq!(
            ts("udp://127.0.0.1:5?timestamps=0").unwrap(),
            Timestamps::default()
        );
        assert_eq!(
            ts("udp://127.0.0.1:5?timestamps=1").unwrap(),
            Timestamps::legacy_rx()
        );
        let t = ts("udp://127.0.0.1:5?timestamps=rx,tx").unwrap();
        assert!(t.rx && t.tx && !t.hw && !t.legacy);
        let t = ts("udp://127.0.0.1:5?timestamps=tx").unwrap();
        assert!(!t.rx && t.tx);
        let t = ts("udp://127.0.0.1:5?timestamps=hw&device=lo").unwrap();
        assert!(t.rx && t.hw && !t.tx);
        for bad in ["rx,rx", "sw", "", "rx,", "hw"] {
            let e = ts(&format!("udp://127.0.0.1:5?timestamps={bad}")).unwrap_err();
            assert!(e.to_string().contains("\"timestamps\""), "{bad}: {e}");
        }
        let e = ts("udp://127.0.0.1:5?timestamps=hw").unwrap_err();
        assert!(e.to_string().contains("device="), "{e}");
        let e = ts("udp://127.0.0.1:5?timestamps=bogus").unwrap_err();
        assert!(e.to_string().contains("rx, tx and hw"), "{e}");
    }

    #[test]
    fn tx_stamps_are_ordered_and_tagged_with_the_send_counter() {
        let (mut server, mut client) = loopback_pair("timestamps=rx,tx");
        let c = client.capabilities();
        let l = c.legacy();
        assert!(
            l.rx_timestamps && l.tx_timestamps && !l.hw_timestamps,
            "{c:?}"
        );
        assert!(
            c.lines()
                .iter()
                .any(|(k, v)| k == "tx_timestamps" && v.contains("SND")),
            "{c:?}"
        );
        server
            .set_recv_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut burst = RxBurst::new(1, 64);
        // The kernel turns on receive stamping for the whole host a moment
        // after the first socket asks (a deferred static key); until then
        // datagrams arrive unstamped. Warm up until one is stamped.
        let mut next_id = 0u32;
        for _ in 0..200 {
            client.send(&[0; 20], None).unwrap();
            next_id += 1;
            assert_eq!(server.recv_burst(&mut burst).unwrap(), 1);
            if burst.get(0).1.rx_ts_ns.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(5));
        client.tx_timestamps(&mut |_| {}).unwrap();
        for id in next_id..next_id + 4 {
            client.send(&[1; 20], None).unwrap();
            assert_eq!(server.recv_burst(&mut burst).unwrap(), 1);
            let peer_rx = burst.get(0).1.rx_ts_ns.expect("software RX stamp");
            let mut stamps = Vec::new();
            let t0 = Instant::now();
            while stamps.len() < 2 && t0.elapsed() < Duration::from_secs(2) {
                client.tx_timestamps(&mut |s| stamps.push(s)).unwrap();
            }
            assert_eq!(stamps.len(), 2, "{stamps:?}");
            let get = |k: crate::transport::TxStampKind| {
                stamps
                    .iter()
                    .find(|s| s.kind == k && s.id == id)
                    .and_then(|s| s.sw_ns)
                    .unwrap_or_else(|| panic!("{k:?} stamp of #{id}: {stamps:?}"))
            };
            let sched = get(crate::transport::TxStampKind::Sched);
            let snd = get(crate::transport::TxStampKind::Snd);
            assert!(sched <= snd && snd <= peer_rx, "{sched} {snd} {peer_rx}");
        }
        // The server asked for none: nothing to read, and not an error.
        assert_eq!(server.tx_timestamps(&mut |_| {}).unwrap(), 0);
        // Batched receive with SO_TIMESTAMPING stamps too.
        let (mut server, mut client) = loopback_pair("timestamps=rx&batch=4");
        server
            .set_recv_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.send(&[2; 20], None).unwrap();
        let mut four = RxBurst::new(4, 64);
        assert_eq!(server.recv_burst(&mut four).unwrap(), 1);
        assert!(four.get(0).1.rx_ts_ns.is_some());
    }

    #[test]
    fn hardware_timestamps_on_a_device_without_them_name_what_it_supports() {
        let cfg =
            UdpConfig::from_uri(&Uri::parse("udp://127.0.0.1:0?timestamps=hw&device=lo").unwrap())
                .unwrap();
        let e = UdpTransport::open(cfg, Role::Server)
            .unwrap_err()
            .to_string();
        if e.contains("SO_BINDTODEVICE") {
            return; // an old kernel refusing the device binding without root
        }
        assert!(e.contains("lo has no hardware timestamps"), "{e}");
        assert!(e.contains("it supports software-"), "{e}");
        assert!(e.contains("timestamps=rx,tx"), "{e}");
    }

    #[test]
    fn bad_mcast_uris() {
        let e = UdpConfig::from_uri(&Uri::parse("mcast://10.0.0.1:5").unwrap()).unwrap_err();
        assert!(e.to_string().contains("not an IPv4 multicast group"), "{e}");
        let e =
            UdpConfig::from_uri(&Uri::parse("mcast://239.1.1.1:5?connect=1").unwrap()).unwrap_err();
        assert!(e.to_string().contains("\"connect\""), "{e}");
        let e = UdpConfig::from_uri(&Uri::parse("mcast://239.1.1.1:5?source=239.1.1.2").unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("source"), "{e}");
        let cfg =
            UdpConfig::from_uri(&Uri::parse("mcast://239.1.1.1:5?iface=nosuch0").unwrap()).unwrap();
        let e = UdpTransport::open(cfg, Role::Server).unwrap_err();
        assert!(matches!(e, OpenError::NoSuchInterface { .. }), "{e}");
    }
}
