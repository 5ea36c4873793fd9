//! UDP over AF_XDP (`xdp://IFACE/QUEUE?port=P`): an XDP program steers only
//! the configured flow (destination address and UDP port, unicast or a
//! multicast group) of one device queue into an AF_XDP socket; everything
//! else — ARP, ICMP, SSH, other ports — stays with the kernel's stack.
//!
//! Layer: a [`Ring`] under the generic layer-2 transport ([`L2Transport`],
//! which does the waiting, the frames and the send loop). [`steer`] loads
//! and attaches the program (aya, through a `bpf_link`, so it goes away with
//! the process); [`socket`] owns the UMEM and the four rings (the ring code,
//! the only `unsafe` here); frames are parsed and built by the shared
//! user-space layer [`crate::frames`], the same as `packet://`.
//!
//! Receive: frames are read from the receive ring and lent in place (or
//! their payload copied into a burst), then given back to the fill ring
//! after the pass; `rx=spin`
//! polls the ring in memory (no system call), `block` sleeps in `poll()`,
//! `adaptive` spins then sleeps; `busy_poll=USECS` sets `SO_BUSY_POLL`,
//! `SO_PREFER_BUSY_POLL` and `SO_BUSY_POLL_BUDGET` and drives the device with
//! a non-blocking `recvfrom` whenever the ring is empty. Transmit: frames are
//! built in free UMEM frames, put on the transmit ring, and the kernel is
//! kicked (`sendto`) once per burst, only when it says it needs it
//! (`XDP_USE_NEED_WAKEUP`; copy mode always does). Completed frames return to
//! the free list. The syscalls made are counted in the capabilities.
//!
//! MAC addresses: as `packet://` — from the kernel's neighbour table, or
//! pinned for the peer with `peer_mac=aa:bb:cc:dd:ee:ff` (with `peer=`); a
//! received frame's source MAC is believed only when the table agrees, and
//! with `peer=` only from the peer's IP address and port; frames that
//! disagree are counted (`mac_mismatch`). See [`crate::l2::frames`].
//!
//! Receive stamps (`timestamps=rx`): the steering program is loaded with
//! its stamp switch on ([`steer::SteerOptions::stamp_rx`]) and writes
//! `bpf_ktime_get_ns()` into 8 bytes of XDP metadata before each frame it
//! redirects; AF_XDP copies them into the UMEM frame in front of the packet
//! (copy mode too), where the receive reads and clears them. The stamp is
//! moved to `CLOCK_REALTIME` with the offset read at open, so
//! `RxMeta::rx_ts_ns` is on the scale of the kernel's software stamps, and
//! like them it includes the path before user space (here the XDP hook,
//! the redirect and the copy; not the kernel's IP/UDP stack). A kernel
//! whose verifier refuses `bpf_xdp_adjust_meta` to XDP programs
//! ([`steer::SteerError::MetadataRefused`]) gets the program without
//! stamps, and each frame is stamped (`CLOCK_REALTIME`, one clock read per
//! received burst) when the receive takes it off the ring — later than the
//! program's stamp by the time the frame waited there; the capabilities
//! (`rx_timestamps`) and notes say which it is.
//!
//! Link flap: a kick refused with `ENETDOWN` leaves the frames on the ring
//! and marks the link down; the next kick that succeeds says the link came
//! back. The UMEM accounting (free + fill + in flight = total) is kept
//! across it and reported.

#[allow(unsafe_code)]
pub mod socket;
pub mod steer;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::sock;
use serde::Serialize;

use crate::Role;
use crate::backend::{Backend, CapsSection, Placement, RungContext, RungSpec};
use crate::capabilities::LegacyFields;
use crate::common::SocketOptions;
use crate::error::OpenError;
use crate::l2::frames::{
    FrameStats, HEADERS, KernelNeighbours, UdpCheck, UdpOverEthernet, open_iface, peer_mac_param,
};
use crate::l2::ring::{Ring, RxFrame, RxRing, TxRing};
use crate::l2::{L2Iface, L2Transport};
use crate::transport::RxStrategy;
use crate::uri::{Uri, UriError};

pub use socket::{UmemAccounting, XskConfig, XskCounters, XskMode};
pub use steer::{AttachMode, AttachPref, Steering};

/// The `xdp://` backend.
#[derive(Debug)]
pub struct XdpBackend;

/// UDP over an AF_XDP socket on one device queue.
pub type XdpTransport = L2Transport<XdpRing>;

impl Backend for XdpBackend {
    const SCHEMES: &'static [&'static str] = &["xdp"];
    const TAKES_PATH: bool = true;
    type Config = XdpConfig;
    type Transport = XdpTransport;
    type Caps = XdpCaps;

    fn parse(uri: &Uri) -> Result<XdpConfig, UriError> {
        XdpConfig::from_uri(uri)
    }

    fn open(cfg: &XdpConfig, role: Role) -> Result<XdpTransport, OpenError> {
        XdpTransport::open(cfg.clone(), role)
    }

    fn max_message(cfg: &XdpConfig) -> usize {
        cfg.max_message()
    }

    fn burst(cfg: &XdpConfig) -> usize {
        // Frames go on the transmit ring with one kick per burst.
        (cfg.ring_size as usize).clamp(1, 32)
    }

    fn cpu(cfg: &XdpConfig) -> Option<usize> {
        cfg.socket.cpu
    }

    fn placement(_: &str) -> Placement {
        Placement::Interface
    }

    fn rungs(_: &str, ctx: &RungContext<'_>) -> Vec<RungSpec> {
        // Both ends steered, and an AF_XDP responder facing a kernel client
        // (the client URI is then a plain UDP socket).
        let i = ctx.iface_or_lo();
        let ip = ctx.server_ip;
        let p = ctx.port;
        vec![
            RungSpec::pair(
                "block",
                format!("xdp://{i}/0?port={p}&rx=block"),
                format!("xdp://{i}/0?port={p}&peer={ip}:{p}&rx=block"),
            ),
            RungSpec::pair(
                "spin",
                format!("xdp://{i}/0?port={}&rx=spin", p + 1),
                format!("xdp://{i}/0?port={0}&peer={ip}:{0}&rx=spin", p + 1),
            ),
            RungSpec::pair(
                "spin/udp-client",
                format!("xdp://{i}/0?port={}&rx=spin", p + 2),
                format!("udp://{ip}:{}?rx=spin", p + 2),
            ),
            // As spin, each frame stamped by the XDP program (receive
            // stamps only: xdp:// has no transmit stamps).
            RungSpec::pair(
                "spin+timestamps",
                format!("xdp://{i}/0?port={}&rx=spin&timestamps=rx", p + 3),
                format!(
                    "xdp://{i}/0?port={0}&peer={ip}:{0}&rx=spin&timestamps=rx",
                    p + 3
                ),
            ),
        ]
    }
}

/// An `xdp://` endpoint, as parsed from a URI or built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpConfig {
    /// The interface (the URI's authority).
    pub iface: String,
    /// The device queue (the URI's path, default 0).
    pub queue: u32,
    /// Local UDP port: the flow steered, and the source port sent from (`port=`).
    pub port: u16,
    /// Default destination (`peer=IP:PORT`); required for a client.
    pub peer: Option<SocketAddrV4>,
    /// The peer's MAC address, pinned (`peer_mac=aa:bb:cc:dd:ee:ff`, with
    /// `peer=`): no neighbour lookup for it, and frames from the peer's IP
    /// address with another source MAC are counted, never believed.
    pub peer_mac: Option<hftnet_wire::ethernet::Address>,
    /// Local IPv4 address (`ip=`); by default the interface's.
    pub ip: Option<Ipv4Addr>,
    /// Steer this multicast group instead of unicast to `ip` (`group=`).
    pub group: Option<Ipv4Addr>,
    /// Copy or zero-copy (`mode=auto|copy|zerocopy`, default auto).
    pub mode: XskMode,
    /// Where the program runs (`attach=auto|native|generic`, default auto).
    pub attach: AttachPref,
    /// Replace an XDP program someone else attached (`replace=1`).
    pub replace: bool,
    /// UMEM frames (`frames=`, default 4096) of `frame_size=` bytes (2048 or 4096).
    pub frames: u32,
    /// Bytes per UMEM frame.
    pub frame_size: u32,
    /// Entries per ring (`ring=`, a power of two, default 2048).
    pub ring_size: u32,
    /// `XDP_USE_NEED_WAKEUP` (`need_wakeup=`, default 1).
    pub need_wakeup: bool,
    /// Receive stamps taken by the steering program (`timestamps=rx`;
    /// `timestamps=0`, the default, for none): `RxMeta::rx_ts_ns` of each
    /// frame, `CLOCK_REALTIME` ns.
    pub rx_timestamps: bool,
    /// Receive strategy (`rx=spin|block|adaptive`, or `busy-poll` with
    /// `busy_poll=USECS`, `busy_budget=N`, `prefer_busy_poll=1`) and `cpu=`.
    pub socket: SocketOptions,
}

/// What `timestamps=` of an `xdp://` URI accepts, for error messages.
pub const TIMESTAMPS_EXPECTED: &str = "rx (a receive stamp taken by the XDP steering program) or 0 \
     (none, the default); xdp:// has no transmit or hardware stamps";

const XDP_PARAMS: &[&str] = &[
    "port",
    "peer",
    "peer_mac",
    "ip",
    "group",
    "mode",
    "attach",
    "replace",
    "frames",
    "frame_size",
    "ring",
    "need_wakeup",
    "timestamps",
    "rx",
    "spins",
    "busy_poll",
    "busy_budget",
    "prefer_busy_poll",
    "cpu",
];

impl XdpConfig {
    /// An endpoint on queue 0 of `iface` for UDP port `port`, defaults elsewhere.
    #[must_use]
    pub fn new(iface: &str, port: u16) -> Self {
        Self {
            iface: iface.to_string(),
            queue: 0,
            port,
            peer: None,
            peer_mac: None,
            ip: None,
            group: None,
            mode: XskMode::Auto,
            attach: AttachPref::Auto,
            replace: false,
            frames: 4096,
            frame_size: 2048,
            ring_size: 2048,
            need_wakeup: true,
            rx_timestamps: false,
            socket: SocketOptions::default(),
        }
    }

    /// Reads an `xdp://` URI.
    ///
    /// # Errors
    /// [`UriError`] naming the parameter at fault and what it accepts.
    pub fn from_uri(uri: &Uri) -> Result<Self, UriError> {
        let malformed = |reason: String| UriError::Malformed {
            uri: uri.text.clone(),
            reason,
        };
        let iface = uri.authority.clone();
        if iface.len() >= 16 || iface.contains(':') {
            return Err(malformed(format!(
                "xdp:// takes an interface name and a queue, e.g. xdp://veth0/0?port=9000; \
                 found {iface:?}"
            )));
        }
        let queue = if uri.path.is_empty() {
            0
        } else {
            uri.path.parse::<u32>().map_err(|_| {
                malformed(format!(
                    "the queue after the interface must be a number, e.g. xdp://{iface}/0; found {:?}",
                    uri.path
                ))
            })?
        };
        if queue >= steer::MAX_QUEUES {
            return Err(malformed(format!(
                "queue {queue} is out of range: XDP steering supports queues 0..{} \
                 (steer::MAX_QUEUES), e.g. xdp://{iface}/0",
                steer::MAX_QUEUES
            )));
        }
        let mut p = uri.params(&[XDP_PARAMS]);
        let Some(port) = p.int("port", 1..=65535)? else {
            return Err(malformed(
                "xdp:// needs port=N, the UDP port to steer (e.g. xdp://veth0/0?port=9000)".into(),
            ));
        };
        let mut c = Self::new(&iface, port as u16);
        c.queue = queue;
        c.peer = p.get_with(
            "peer",
            "an IPv4 address and port, e.g. 198.18.0.2:9000",
            |v| v.parse::<SocketAddrV4>().ok(),
        )?;
        c.peer_mac = peer_mac_param(&mut p, c.peer)?;
        c.ip = p.get_with("ip", "an IPv4 address", |v| v.parse().ok())?;
        c.group = p.get_with("group", "an IPv4 multicast group, e.g. 239.1.1.1", |v| {
            v.parse::<Ipv4Addr>().ok().filter(Ipv4Addr::is_multicast)
        })?;
        c.mode = match p.choice("mode", &["auto", "copy", "zerocopy"])? {
            Some("copy") => XskMode::Copy,
            Some("zerocopy") => XskMode::ZeroCopy,
            _ => XskMode::Auto,
        };
        c.attach = match p.choice("attach", &["auto", "native", "generic"])? {
            Some("native") => AttachPref::Driver,
            Some("generic") => AttachPref::Generic,
            _ => AttachPref::Auto,
        };
        c.replace = p.bool("replace")?.unwrap_or(false);
        if let Some(f) = p.int("frames", 64..=1 << 20)? {
            c.frames = f as u32;
        }
        c.frame_size = p
            .get_with("frame_size", "2048 or 4096", |v| {
                crate::uri::parse_size(v).filter(|n| *n == 2048 || *n == 4096)
            })?
            .map_or(c.frame_size, |n| n as u32);
        c.ring_size = p
            .get_with("ring", "a power of two from 64 to 32768", |v| {
                crate::uri::parse_int(v).filter(|n| (64..=32768).contains(n) && n & (n - 1) == 0)
            })?
            .map_or(c.ring_size, |n| n as u32);
        if u64::from(c.frames) * u64::from(c.frame_size) > MAX_UMEM_BYTES {
            return Err(UriError::BadValue {
                param: "frames".into(),
                value: format!("{} (with frame_size={})", c.frames, c.frame_size),
                expected: format!(
                    "frames x frame_size within {} MiB of UMEM (MAX_UMEM_BYTES): lower frames= \
                     or frame_size=",
                    MAX_UMEM_BYTES >> 20
                ),
            });
        }
        c.need_wakeup = p.bool("need_wakeup")?.unwrap_or(true);
        c.rx_timestamps = p
            .get_with("timestamps", TIMESTAMPS_EXPECTED, |v| match v {
                "rx" => Some(true),
                "0" => Some(false),
                _ => None,
            })?
            .unwrap_or(false);
        c.socket.strategy = RxStrategy::from_params(&mut p)?;
        c.socket.cpu = p.int("cpu", 0..=4095)?.map(|v| v as usize);
        p.finish()?;
        Ok(c)
    }

    /// Largest UDP payload carried before the interface's MTU is known.
    #[must_use]
    pub fn max_message(&self) -> usize {
        // In copy mode the kernel writes a received frame after
        // XDP_PACKET_HEADROOM (256 bytes) of its UMEM frame.
        (self.frame_size as usize).saturating_sub(256 + HEADERS)
    }
}

/// Most bytes of UMEM (`frames=` x `frame_size=`) an `xdp://` endpoint
/// registers: 1 GiB, the bound of every ring of this crate (shm, packet,
/// fault buffers). UMEM is pinned memory; 2^20 frames of 4096 bytes (4 GiB)
/// were accepted before.
pub const MAX_UMEM_BYTES: u64 = 1 << 30;

/// How long an open asks again for a queue that answers EBUSY: the kernel
/// releases a closed AF_XDP socket's queue in deferred work that takes the
/// RTNL lock (the buffer pool's release), a moment after the close — longer
/// while namespaces are being torn down.
pub const QUEUE_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Counters of an `xdp://` transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct XdpStats {
    /// What happened to the frames received and sent.
    pub frames: FrameStats,
    /// System calls and events of the socket.
    pub socket: XskCounters,
    /// Where the UMEM frames are.
    pub umem: UmemAccounting,
    /// Times the link went down under the transport and came back.
    pub link_flaps: u64,
}

/// The `xdp://` section of the capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct XdpCaps {
    /// The device queue.
    pub queue: u32,
    /// Where the steering program runs: `native` or `generic`.
    pub attach: &'static str,
    /// Zero-copy in force.
    pub zerocopy: bool,
    /// What happened to the frames received and sent.
    pub frames: FrameStats,
    /// System calls and events of the socket.
    pub socket: XskCounters,
    /// Where the UMEM frames are.
    pub umem: UmemAccounting,
    /// Times the link went down under the transport and came back.
    pub link_flaps: u64,
    /// Receive stamps (`timestamps=rx`): taken by the steering program in
    /// this mode (`native` or `generic`), or `ring` where the kernel
    /// refuses the program's metadata and frames are stamped as they are
    /// read off the ring; `None` without them.
    pub rx_timestamps: Option<&'static str>,
    /// `SO_BUSY_POLL` microseconds, with `rx=busy-poll`.
    pub busy_poll_usecs: Option<u32>,
    /// `SO_BUSY_POLL_BUDGET`, with `rx=busy-poll`.
    pub busy_poll_budget: Option<u32>,
    /// `SO_PREFER_BUSY_POLL`, with `rx=busy-poll`.
    pub prefer_busy_poll: Option<bool>,
}

impl CapsSection for XdpCaps {
    fn lines(&self, out: &mut Vec<(String, String)>) {
        let mut l = Vec::new();
        crate::capabilities::legacy_lines(&self.legacy(), &mut l);
        out.extend(l.into_iter().filter(|(k, _)| k != "rx_timestamps"));
        match self.rx_timestamps {
            Some(RING_STAMPS) => out.push((
                "rx_timestamps".into(),
                "software (taken as the frame is read off the AF_XDP ring, CLOCK_REALTIME: this \
                 kernel refuses bpf_xdp_adjust_meta to XDP programs, so the program cannot \
                 stamp)"
                    .into(),
            )),
            Some(mode) => out.push((
                "rx_timestamps".into(),
                format!(
                    "software (XDP program, {mode} mode: bpf_ktime_get_ns at the redirect, \
                     CLOCK_REALTIME by the offset read at open)"
                ),
            )),
            None => {}
        }
        out.push((
            "xdp".into(),
            format!(
                "queue {}, program {}, {} mode",
                self.queue,
                self.attach,
                if self.zerocopy { "zero-copy" } else { "copy" }
            ),
        ));
    }

    fn legacy(&self) -> LegacyFields {
        LegacyFields {
            busy_poll_usecs: self.busy_poll_usecs,
            busy_poll_budget: self.busy_poll_budget,
            prefer_busy_poll: self.prefer_busy_poll,
            rx_timestamps: self.rx_timestamps.is_some(),
            ..LegacyFields::default()
        }
    }
}

/// The steering program of one interface, shared by the transports on it,
/// with how many of them steer each flow (a flow leaves the table with its
/// last user).
#[derive(Debug)]
struct Shared {
    steering: Steering,
    users: Vec<(SocketAddrV4, u32)>,
    /// Stamps were asked for, and the kernel refused the program's
    /// metadata: loaded without, the endpoints stamp at the ring.
    ring_stamps: bool,
}

/// [`XdpCaps::rx_timestamps`] of frames stamped as they are read off the
/// ring.
const RING_STAMPS: &str = "ring";

impl Shared {
    fn add_flow(&mut self, dst: SocketAddrV4) -> Result<(), steer::SteerError> {
        self.steering.add_flow(dst)?;
        match self.users.iter_mut().find(|(d, _)| *d == dst) {
            Some((_, n)) => *n += 1,
            None => self.users.push((dst, 1)),
        }
        Ok(())
    }

    fn remove_flow(&mut self, dst: SocketAddrV4) -> Result<(), steer::SteerError> {
        if let Some(i) = self.users.iter().position(|(d, _)| *d == dst) {
            self.users[i].1 -= 1;
            if self.users[i].1 == 0 {
                self.users.swap_remove(i);
                self.steering.remove_flow(dst)?;
            }
        }
        Ok(())
    }
}

/// One steering program per interface and network namespace in this
/// process, shared by the transports on it.
type SteeringSlot = (u64, u32, Weak<Mutex<Shared>>);
static STEERING: Mutex<Vec<SteeringSlot>> = Mutex::new(Vec::new());

fn netns_id() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").map_or(0, |m| m.ino())
}

fn shared_steering(iface: &L2Iface, cfg: &XdpConfig) -> Result<Arc<Mutex<Shared>>, OpenError> {
    let ns = netns_id();
    let mut reg = STEERING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    reg.retain(|(_, _, w)| w.strong_count() > 0);
    if let Some(s) = reg
        .iter()
        .find(|(n, i, _)| *n == ns && *i == iface.index)
        .and_then(|(_, _, w)| w.upgrade())
    {
        // One program per interface: its stamp switch is fixed at load.
        let stamps = {
            let g = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            g.steering.options().stamp_rx || g.ring_stamps
        };
        if cfg.rx_timestamps && !stamps {
            return Err(steer::SteerError::StampsOff {
                iface: iface.name.clone(),
            }
            .into());
        }
        return Ok(s);
    }
    let options = steer::SteerOptions {
        stamp_rx: cfg.rx_timestamps,
    };
    // Nothing is touched before the program passed the verifier, so a
    // refused stamping program is simply loaded again without stamps.
    let (steering, ring_stamps) =
        match Steering::attach_with(&iface.name, cfg.attach, cfg.replace, options) {
            Err(steer::SteerError::MetadataRefused { .. }) => {
                let plain = steer::SteerOptions { stamp_rx: false };
                (
                    Steering::attach_with(&iface.name, cfg.attach, cfg.replace, plain)?,
                    true,
                )
            }
            r => (r?, false),
        };
    let s = Arc::new(Mutex::new(Shared {
        steering,
        users: Vec::new(),
        ring_stamps,
    }));
    reg.push((ns, iface.index, Arc::downgrade(&s)));
    Ok(s)
}

/// Link-flap bookkeeping of the transmit side.
#[derive(Debug, Default)]
struct Link {
    flaps: u64,
    was_down: Option<Instant>,
    last_outage: Option<Duration>,
}

/// The AF_XDP socket of one `xdp://` endpoint, with its share of the
/// steering program and the flow it steers.
#[derive(Debug)]
pub struct XdpRing {
    xsk: socket::Xsk,
    steering: Arc<Mutex<Shared>>,
    flow: SocketAddrV4,
    mode: AttachMode,
    cfg: XdpConfig,
    link: Link,
    /// `CLOCK_REALTIME − CLOCK_MONOTONIC` read at open (0 without stamps).
    realtime_offset_ns: i64,
    /// With stamps: the kernel refused the program's, frames are stamped
    /// as they are read off the ring.
    ring_stamps: bool,
}

/// The receive half of an [`XdpRing`].
#[derive(Debug)]
pub struct XdpRx<'a> {
    h: socket::XskRx<'a>,
    queue: u32,
    realtime_offset_ns: i64,
    ring_stamps: bool,
}

/// The transmit half of an [`XdpRing`].
#[derive(Debug)]
pub struct XdpTx<'a> {
    h: socket::XskTx<'a>,
    link: &'a mut Link,
}

impl Ring for XdpRing {
    type Rx<'a> = XdpRx<'a>;
    type Tx<'a> = XdpTx<'a>;
    type Caps = XdpCaps;

    #[inline]
    fn split(&mut self) -> (XdpRx<'_>, XdpTx<'_>) {
        let (rx, tx) = self.xsk.split();
        (
            XdpRx {
                h: rx,
                queue: self.cfg.queue,
                realtime_offset_ns: self.realtime_offset_ns,
                ring_stamps: self.ring_stamps,
            },
            XdpTx {
                h: tx,
                link: &mut self.link,
            },
        )
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.xsk.as_fd()
    }

    #[inline]
    fn after_rx(&mut self) {
        self.xsk.refill();
    }

    #[inline]
    fn idle(&self) -> bool {
        !self.xsk.has_work()
    }

    fn zero_copy(&self) -> bool {
        self.xsk.zerocopy()
    }

    fn caps(&self, frames: FrameStats) -> XdpCaps {
        let (usecs, budget, prefer) = match self.cfg.socket.strategy {
            RxStrategy::BusyPoll {
                usecs,
                budget,
                prefer,
            } => (Some(usecs), Some(budget.unwrap_or(64)), Some(prefer)),
            _ => (None, None, None),
        };
        XdpCaps {
            queue: self.cfg.queue,
            attach: match self.mode {
                AttachMode::Driver => "native",
                AttachMode::Generic => "generic",
            },
            zerocopy: self.xsk.zerocopy(),
            frames,
            socket: self.xsk.counters(),
            umem: self.xsk.accounting(),
            link_flaps: self.link.flaps,
            rx_timestamps: self.cfg.rx_timestamps.then_some(match self.mode {
                _ if self.ring_stamps => RING_STAMPS,
                AttachMode::Driver => "native",
                AttachMode::Generic => "generic",
            }),
            busy_poll_usecs: usecs,
            busy_poll_budget: budget,
            prefer_busy_poll: prefer,
        }
    }

    fn notes(&self, notes: &mut Vec<String>) {
        if let Some(d) = self.link.last_outage {
            notes.push(format!(
                "link of {} went down {} time(s); back after {} ms the last time, every UMEM \
                 frame accounted for",
                self.cfg.iface,
                self.link.flaps,
                d.as_millis()
            ));
        }
        if self.cfg.rx_timestamps && self.ring_stamps {
            notes.push(format!(
                "receive stamps: taken as each frame is read off the ring (CLOCK_REALTIME, one \
                 clock read per burst): this kernel's verifier refuses bpf_xdp_adjust_meta to \
                 XDP programs, so the steering program on {} runs without its stamps",
                self.cfg.iface
            ));
        } else if self.cfg.rx_timestamps {
            let c = self.xsk.counters();
            notes.push(format!(
                "receive stamps: {} frames stamped by the XDP program, {} without a stamp (the \
                 driver refused the metadata); CLOCK_REALTIME - CLOCK_MONOTONIC = {} ns, read \
                 at open",
                c.rx_stamped, c.rx_unstamped, self.realtime_offset_ns
            ));
        }
        if self.xsk.link_down() {
            notes.push(format!(
                "link of {} is down: sends wait on the ring",
                self.cfg.iface
            ));
        }
        let c = self.xsk.counters();
        let a = self.xsk.accounting();
        notes.push(format!(
            "syscalls: {} transmit kicks for {} frames, {} fill wake-ups, {} busy polls; \
             UMEM {} free + {} fill + {} in flight = {} of {}{}{}",
            c.tx_kicks,
            c.tx_frames,
            c.fill_wakeups,
            c.busy_polls,
            a.free,
            a.fill,
            a.tx_in_flight,
            a.free + a.fill + a.tx_in_flight,
            a.total,
            if c.link_down_kicks > 0 {
                format!("; {} kicks refused with the link down", c.link_down_kicks)
            } else {
                String::new()
            },
            if c.busy_poll_errors > 0 {
                format!("; {} busy polls failed", c.busy_poll_errors)
            } else {
                String::new()
            }
        ));
    }
}

impl RxRing for XdpRx<'_> {
    #[inline]
    fn recv(&mut self, max: usize, mut f: impl FnMut(RxFrame<'_>)) -> usize {
        let queue = self.queue;
        let offset = self.realtime_offset_ns;
        // Stamped at the ring: one clock read for the burst, at its first
        // frame (none when nothing came).
        let ring_stamps = self.ring_stamps;
        let mut read_at: Option<u64> = None;
        self.h.recv(max.min(u32::MAX as usize) as u32, |data, mono| {
            let ts_ns = if ring_stamps {
                Some(*read_at.get_or_insert_with(hftnet_sys::clock::realtime_ns))
            } else {
                // The program's CLOCK_MONOTONIC stamp, on CLOCK_REALTIME.
                mono.map(|m| m.saturating_add_signed(offset))
            };
            // XDP says nothing of the device's checksum state: verify, and
            // recognise a checksum a sender's device left partial.
            f(RxFrame {
                data,
                wire_len: data.len(),
                udp_check: UdpCheck::VerifyOrPartial,
                ts_ns,
                queue,
            });
        }) as usize
    }
}

impl TxRing for XdpTx<'_> {
    #[inline]
    fn ready(&mut self) -> bool {
        self.h.ready()
    }

    #[inline]
    fn slot(&mut self) -> Option<&mut [u8]> {
        self.h.slot()
    }

    #[inline]
    fn commit(&mut self, len: usize) {
        self.h.commit(len);
    }

    fn cancel(&mut self) {
        self.h.cancel();
    }

    #[inline]
    fn kick(&mut self) -> Result<(), SyscallError> {
        let was_down = self.h.link_down();
        self.h.flush()?;
        match (was_down, self.h.link_down()) {
            (false, true) => self.link.was_down = Some(Instant::now()),
            (true, false) => {
                self.link.flaps += 1;
                self.link.last_outage = self.link.was_down.take().map(|t| t.elapsed());
            }
            _ => {}
        }
        Ok(())
    }

    #[inline]
    fn needs_kick(&self) -> bool {
        self.h.needs_flush()
    }

    fn full_error(&self) -> SyscallError {
        if self.h.link_down() {
            SyscallError::from_errno("xdp:// send (the link is down)", libc::ENETDOWN)
        } else {
            SyscallError::from_errno("xdp:// send (every UMEM frame in flight)", libc::ENOBUFS)
        }
    }
}

impl XdpTransport {
    /// Attaches (or shares) the steering program, opens the socket on the
    /// queue, registers it and steers the flow to it; for a client, resolves
    /// the peer's MAC address.
    ///
    /// # Errors
    /// [`OpenError`] naming the step: no such interface, no privilege, the
    /// queue taken, the program refused or someone else's program attached.
    pub fn open(cfg: XdpConfig, role: Role) -> Result<Self, OpenError> {
        let (iface, ip) = open_iface(
            &cfg.iface,
            cfg.ip,
            cfg.peer,
            role,
            "xdp://veth0/0?port=9001&peer=198.18.0.2:9000",
        )?;
        let busy = match cfg.socket.strategy {
            RxStrategy::BusyPoll {
                usecs,
                budget,
                prefer,
            } => Some((usecs, budget, prefer)),
            _ => None,
        };
        let steering = shared_steering(&iface, &cfg)?;
        let ring_stamps = cfg.rx_timestamps
            && steering
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .ring_stamps;
        let open = || {
            socket::Xsk::open(
                XskConfig {
                    ifindex: iface.index,
                    queue: cfg.queue,
                    frames: cfg.frames,
                    frame_size: cfg.frame_size,
                    ring_size: cfg.ring_size,
                    mode: cfg.mode,
                    need_wakeup: cfg.need_wakeup,
                    // No metadata to read where the program cannot stamp.
                    rx_meta: cfg.rx_timestamps && !ring_stamps,
                },
                busy.is_some(),
            )
        };
        // The kernel frees a closed socket's hold on its queue in deferred
        // work (the buffer pool's release, under RTNL), so a queue closed a moment ago
        // (a restart, the next run of a script) can still answer EBUSY:
        // asked again for a bounded time before it is called taken.
        let deadline = Instant::now() + QUEUE_RELEASE_WAIT;
        let xsk = loop {
            match open() {
                Err(e) if e.errno == libc::EBUSY && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => break r,
            }
        }
        .map_err(|e| match e.errno {
            libc::EPERM | libc::EACCES => OpenError::Privilege {
                what: "xdp:// (an AF_XDP socket)",
                privilege: "CAP_NET_RAW and CAP_NET_ADMIN (run as root)",
                cause: SyscallError::from_errno("socket(AF_XDP)", e.errno),
            },
            libc::EBUSY => OpenError::Setup {
                step: format!(
                    "queue {} of {} is taken by another AF_XDP socket (still after {:?}); use \
                     another queue",
                    cfg.queue,
                    cfg.iface,
                    QUEUE_RELEASE_WAIT
                ),
                cause: SyscallError::from_errno("bind(AF_XDP)", e.errno),
            },
            libc::EINVAL if e.step.starts_with("binding") => OpenError::Setup {
                step: format!(
                    "{} on queue {} of {} (does the device have that queue? `ethtool -l {}`)",
                    e.step, cfg.queue, cfg.iface, cfg.iface
                ),
                cause: SyscallError::from_errno("bind(AF_XDP)", e.errno),
            },
            _ => OpenError::Setup {
                step: e.step.to_string(),
                cause: SyscallError::from_errno("AF_XDP", e.errno),
            },
        })?;
        if let Some((usecs, budget, prefer)) = busy {
            let fd = xsk.as_fd();
            let set = |opt, v: i32| {
                sock::set_int(fd, opt, v).map_err(OpenError::setup("busy polling on the socket"))
            };
            set(sock::SO_BUSY_POLL, usecs as i32)?;
            set(sock::SO_PREFER_BUSY_POLL, i32::from(prefer))?;
            set(sock::SO_BUSY_POLL_BUDGET, budget.map_or(64, |b| b as i32))?;
        }
        let flow = SocketAddrV4::new(cfg.group.unwrap_or(ip), cfg.port);
        let mode = {
            let mut s = steering
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.steering.register_socket(cfg.queue, xsk.as_fd())?;
            s.add_flow(flow)?;
            s.steering.mode()
        };
        let local = SocketAddrV4::new(ip, cfg.port);
        let max = cfg.max_message();
        let neighbours = Box::new(KernelNeighbours::open()?);
        let mut ep = UdpOverEthernet::new(iface, local, cfg.group, cfg.peer, max, neighbours);
        if let Some(mac) = cfg.peer_mac {
            ep.pin_peer_mac(mac)?;
        }
        let mut notes = Vec::new();
        notes.push(format!(
            "steering: XDP program in {} mode; only IPv4/UDP to {flow} on queue {} reaches \
             this socket, everything else goes to the kernel",
            match mode {
                AttachMode::Driver => "native (driver)",
                AttachMode::Generic => "generic (SKB)",
            },
            cfg.queue
        ));
        notes.push(match (cfg.mode, xsk.zerocopy()) {
            (_, true) => "AF_XDP zero-copy mode".to_string(),
            (XskMode::Copy, false) => "AF_XDP copy mode (as asked)".to_string(),
            (_, false) => format!(
                "AF_XDP copy mode: {} does not offer zero-copy (veth never does)",
                cfg.iface
            ),
        });
        notes.push(crate::l2::frames::mac_note(cfg.peer, cfg.peer_mac));
        notes.push(format!(
            "UMEM: {} frames of {} bytes, rings of {}, need_wakeup {}",
            cfg.frames,
            cfg.frame_size,
            cfg.ring_size,
            if cfg.need_wakeup { "on" } else { "off" }
        ));
        let strategy = cfg.socket.strategy;
        let burst = XdpBackend::burst(&cfg);
        let realtime_offset_ns = if cfg.rx_timestamps {
            hftnet_sys::clock::realtime_offset_ns()
        } else {
            0
        };
        // From here on the ring's drop takes the flow out of the program.
        let ring = XdpRing {
            xsk,
            steering,
            flow,
            mode,
            cfg,
            link: Link::default(),
            realtime_offset_ns,
            ring_stamps,
        };
        if let Some(peer) = ring.cfg.peer {
            ep.mac_for(*peer.ip()).map_err(OpenError::from)?;
        }
        Ok(L2Transport::new(ring, ep, "xdp", strategy, burst, notes))
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &XdpConfig {
        &self.ring().cfg
    }

    /// Where the steering program runs.
    #[must_use]
    pub fn attach_mode(&self) -> AttachMode {
        self.ring().mode
    }

    /// Zero-copy in force.
    #[must_use]
    pub fn zerocopy(&self) -> bool {
        self.ring().xsk.zerocopy()
    }

    /// The socket (e.g. to poll it).
    #[must_use]
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.ring().xsk.as_fd()
    }

    /// The counters and the UMEM accounting, after reaping completions.
    #[must_use]
    pub fn stats(&mut self) -> XdpStats {
        let frames = self.endpoint().stats;
        let r = self.ring_mut();
        r.xsk.reap();
        XdpStats {
            frames,
            socket: r.xsk.counters(),
            umem: r.xsk.accounting(),
            link_flaps: r.link.flaps,
        }
    }

    /// The steering program's counters (all flows on the interface).
    ///
    /// # Errors
    /// Reading the maps failed.
    pub fn steering_stats(&self) -> Result<steer::SteerStats, steer::SteerError> {
        self.ring()
            .steering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .steering
            .stats()
    }
}

impl Drop for XdpRing {
    fn drop(&mut self) {
        let mut s = self
            .steering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = s.remove_flow(self.flow);
        let _ = s.steering.unregister_socket(self.cfg.queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(s: &str) -> Result<XdpConfig, UriError> {
        XdpConfig::from_uri(&Uri::parse(s).unwrap())
    }

    #[test]
    fn uri_parameters() {
        let c = cfg("xdp://veth0/0?port=9000").unwrap();
        assert_eq!((c.iface.as_str(), c.queue, c.port), ("veth0", 0, 9000));
        assert_eq!(
            (c.mode, c.attach, c.replace),
            (XskMode::Auto, AttachPref::Auto, false)
        );
        let c = cfg(
            "xdp://veth0/3?port=1&peer=198.18.0.2:9&mode=copy&attach=generic&frames=1024&\
             frame_size=4096&ring=512&need_wakeup=0&rx=busy-poll&busy_poll=20&group=239.1.1.1",
        )
        .unwrap();
        assert_eq!(c.queue, 3);
        assert_eq!(c.mode, XskMode::Copy);
        assert_eq!(c.attach, AttachPref::Generic);
        assert_eq!((c.frames, c.frame_size, c.ring_size), (1024, 4096, 512));
        assert!(!c.need_wakeup);
        assert_eq!(c.group, Some(Ipv4Addr::new(239, 1, 1, 1)));
        assert!(matches!(
            c.socket.strategy,
            RxStrategy::BusyPoll { usecs: 20, .. }
        ));
        assert_eq!(cfg("xdp://veth0?port=1").unwrap().queue, 0);
        assert!(!cfg("xdp://veth0/0?port=1").unwrap().rx_timestamps);
        assert!(!cfg("xdp://veth0/0?port=1&timestamps=0").unwrap().rx_timestamps);
        assert!(cfg("xdp://veth0/0?port=1&timestamps=rx").unwrap().rx_timestamps);
        // What ping --timestamps and udp:// take is refused, naming what is
        // accepted.
        for bad in ["tx", "rx,tx", "hw", "1", ""] {
            let e = cfg(&format!("xdp://veth0/0?port=1&timestamps={bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("timestamps") && e.contains("rx (a receive stamp") && e.contains("or 0"),
                "{bad}: {e}"
            );
        }
        for (uri, want) in [
            ("xdp://veth0/0", "needs port=N"),
            ("xdp://veth0/x?port=1", "must be a number"),
            ("xdp://veth0/0?port=1&frame_size=1000", "2048 or 4096"),
            ("xdp://veth0/0?port=1&ring=100", "power of two"),
            ("xdp://veth0/0?port=1&mode=fast", "auto, copy, zerocopy"),
            ("xdp://veth0/0?port=1&group=10.0.0.1", "multicast"),
            ("xdp://veth0/0?port=1&batch=4", "accepted parameters"),
        ] {
            let e = cfg(uri).unwrap_err().to_string();
            assert!(e.contains(want), "{uri}: {e}");
        }
    }
}
