//! UDP over AF_XDP (`xdp://IFACE/QUEUE?port=P`): an XDP program steers only
//! the configured flow (destination address and UDP port, unicast or a
//! multicast group) of one device queue into an AF_XDP socket; everything
//! else — ARP, ICMP, SSH, other ports — stays with the kernel's stack.
//!
//! Layer: a backend of [`Transport`]. [`steer`] loads and attaches the
//! program (aya, through a `bpf_link`, so it goes away with the process);
//! [`socket`] owns the UMEM and the four rings (the ring code, the only
//! `unsafe` here); frames are parsed and built by the shared user-space
//! layer [`crate::frames`], the same as `packet://`.
//!
//! Receive: frames are read from the receive ring, their payload copied into
//! the burst, and the frames given straight back to the fill ring; `rx=spin`
//! polls the ring in memory (no system call), `block` sleeps in `poll()`,
//! `adaptive` spins then sleeps; `busy_poll=USECS` sets `SO_BUSY_POLL`,
//! `SO_PREFER_BUSY_POLL` and `SO_BUSY_POLL_BUDGET` and drives the device with
//! a non-blocking `recvfrom` whenever the ring is empty. Transmit: frames are
//! built in free UMEM frames, put on the transmit ring, and the kernel is
//! kicked (`sendto`) once per burst, only when it says it needs it
//! (`XDP_USE_NEED_WAKEUP`; copy mode always does). Completed frames return to
//! the free list. The syscalls made are counted in the capabilities.
//!
//! Link flap: a kick refused with `ENETDOWN` leaves the frames on the ring
//! and marks the link down; the next kick that succeeds says the link came
//! back. The UMEM accounting (free + fill + in flight = total) is kept
//! across it and reported.

#[allow(unsafe_code)]
pub mod socket;
pub mod steer;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::sock;
use serde::Serialize;

use crate::Role;
use crate::common::SocketOptions;
use crate::error::OpenError;
use crate::frames::{FrameStats, HEADERS, RingWait, UdpCheck, UdpOverEthernet, Wait, open_iface};
use crate::l2::L2Iface;
use crate::transport::{Capabilities, RxBurst, RxMeta, RxStrategy, Transport, TxMsg};
use crate::uri::{Uri, UriError};

pub use socket::{UmemAccounting, XskConfig, XskCounters, XskMode};
pub use steer::{AttachMode, AttachPref, Steering};

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
    /// Receive strategy (`rx=spin|block|adaptive`, or `busy-poll` with
    /// `busy_poll=USECS`, `busy_budget=N`, `prefer_busy_poll=1`) and `cpu=`.
    pub socket: SocketOptions,
}

const XDP_PARAMS: &[&str] = &[
    "port",
    "peer",
    "ip",
    "group",
    "mode",
    "attach",
    "replace",
    "frames",
    "frame_size",
    "ring",
    "need_wakeup",
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
            ip: None,
            group: None,
            mode: XskMode::Auto,
            attach: AttachPref::Auto,
            replace: false,
            frames: 4096,
            frame_size: 2048,
            ring_size: 2048,
            need_wakeup: true,
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
        c.need_wakeup = p.bool("need_wakeup")?.unwrap_or(true);
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

/// The steering program of one interface, shared by the transports on it,
/// with how many of them steer each flow (a flow leaves the table with its
/// last user).
#[derive(Debug)]
struct Shared {
    steering: Steering,
    users: Vec<(SocketAddrV4, u32)>,
}

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
        return Ok(s);
    }
    let steering = Steering::attach(&iface.name, cfg.attach, cfg.replace)?;
    let s = Arc::new(Mutex::new(Shared {
        steering,
        users: Vec::new(),
    }));
    reg.push((ns, iface.index, Arc::downgrade(&s)));
    Ok(s)
}

/// UDP over an AF_XDP socket on one device queue.
#[derive(Debug)]
pub struct XdpTransport {
    cfg: XdpConfig,
    xsk: socket::Xsk,
    ep: UdpOverEthernet,
    steering: Arc<Mutex<Shared>>,
    flow: SocketAddrV4,
    mode: AttachMode,
    timeout: Option<Duration>,
    link_flaps: u64,
    was_down: Option<Instant>,
    last_outage: Option<Duration>,
    notes: Vec<String>,
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
        let xsk = socket::Xsk::open(
            XskConfig {
                ifindex: iface.index,
                queue: cfg.queue,
                frames: cfg.frames,
                frame_size: cfg.frame_size,
                ring_size: cfg.ring_size,
                mode: cfg.mode,
                need_wakeup: cfg.need_wakeup,
            },
            busy.is_some(),
        )
        .map_err(|e| match e.errno {
            libc::EPERM | libc::EACCES => OpenError::Privilege {
                what: "xdp:// (an AF_XDP socket)",
                privilege: "CAP_NET_RAW and CAP_NET_ADMIN (run as root)",
                cause: SyscallError::from_errno("socket(AF_XDP)", e.errno),
            },
            libc::EBUSY => OpenError::Setup {
                step: format!(
                    "queue {} of {} is taken by another AF_XDP socket; use another queue",
                    cfg.queue, cfg.iface
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
        let ep = UdpOverEthernet::new(iface, local, cfg.group, cfg.peer, max);
        let mut t = Self {
            xsk,
            ep,
            steering,
            flow,
            mode,
            timeout: None,
            link_flaps: 0,
            was_down: None,
            last_outage: None,
            notes: Vec::new(),
            cfg,
        };
        if let Some(peer) = t.cfg.peer {
            t.ep.mac_for(*peer.ip()).map_err(OpenError::from)?;
        }
        t.notes.push(format!(
            "steering: XDP program in {} mode; only IPv4/UDP to {flow} on queue {} reaches \
             this socket, everything else goes to the kernel",
            match mode {
                AttachMode::Driver => "native (driver)",
                AttachMode::Generic => "generic (SKB)",
            },
            t.cfg.queue
        ));
        let asked = t.cfg.mode;
        t.notes.push(match (asked, t.xsk.zerocopy()) {
            (_, true) => "AF_XDP zero-copy mode".to_string(),
            (XskMode::Copy, false) => "AF_XDP copy mode (as asked)".to_string(),
            (_, false) => format!(
                "AF_XDP copy mode: {} does not offer zero-copy (veth never does)",
                t.cfg.iface
            ),
        });
        t.notes.push(format!(
            "UMEM: {} frames of {} bytes, rings of {}, need_wakeup {}",
            t.cfg.frames,
            t.cfg.frame_size,
            t.cfg.ring_size,
            if t.cfg.need_wakeup { "on" } else { "off" }
        ));
        Ok(t)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &XdpConfig {
        &self.cfg
    }

    /// The local address frames are sent from.
    #[must_use]
    pub fn local(&self) -> SocketAddrV4 {
        self.ep.local()
    }

    /// Where the steering program runs.
    #[must_use]
    pub fn attach_mode(&self) -> AttachMode {
        self.mode
    }

    /// Zero-copy in force.
    #[must_use]
    pub fn zerocopy(&self) -> bool {
        self.xsk.zerocopy()
    }

    /// The socket (e.g. to poll it).
    #[must_use]
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.xsk.as_fd()
    }

    /// The counters and the UMEM accounting, after reaping completions.
    #[must_use]
    pub fn stats(&mut self) -> XdpStats {
        self.xsk.reap();
        XdpStats {
            frames: self.ep.stats,
            socket: self.xsk.counters,
            umem: self.xsk.accounting(),
            link_flaps: self.link_flaps,
        }
    }

    /// The steering program's counters (all flows on the interface).
    ///
    /// # Errors
    /// Reading the maps failed.
    pub fn steering_stats(&self) -> Result<steer::SteerStats, steer::SteerError> {
        self.steering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .steering
            .stats()
    }

    #[inline]
    fn drain(&mut self, burst: &mut RxBurst) -> usize {
        let cap = burst.capacity();
        let mut n = 0usize;
        let ep = &mut self.ep;
        self.xsk.recv(cap as u32, |frame| {
            // XDP says nothing of the device's checksum state: verify, and
            // recognise a checksum a sender's device left partial.
            if let Some((payload, from)) = ep.accept(frame, frame.len(), UdpCheck::VerifyOrPartial)
            {
                let slot = burst.slots_from(n).next().expect("n < capacity");
                let len = payload.len().min(slot.len());
                slot[..len].copy_from_slice(&payload[..len]);
                burst.set(
                    n,
                    RxMeta {
                        len,
                        wire_len: payload.len(),
                        truncated: len < payload.len(),
                        peer: Some(SocketAddr::V4(from)),
                        rx_ts_ns: None,
                        rx_hw_ts_ns: None,
                        queue: 0,
                    },
                );
                n += 1;
            }
        });
        n
    }

    fn recv_impl(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        burst.set_len(0);
        let deadline = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
        let mut wait = RingWait::new(self.cfg.socket.strategy, deadline);
        loop {
            // Frames left on the ring by the last kick (a budget-limited
            // kick, or the link down) are kicked again.
            if self.xsk.tx_needs_flush() {
                self.flush()?;
            }
            let n = self.drain(burst);
            if n > 0 {
                burst.set_len(n);
                for i in 0..n {
                    let mut m = *burst.get(i).1;
                    m.queue = self.cfg.queue;
                    burst.set(i, m);
                }
                return Ok(n);
            }
            match wait.after_empty_poll() {
                Wait::Again => {}
                Wait::Sleep(left) => {
                    sock::poll_readable(self.xsk.as_fd(), left)?;
                }
                Wait::TimedOut => return Ok(0),
            }
        }
    }

    fn flush(&mut self) -> Result<(), SyscallError> {
        let was_down = self.xsk.link_down();
        self.xsk.tx_flush()?;
        match (was_down, self.xsk.link_down()) {
            (false, true) => self.was_down = Some(Instant::now()),
            (true, false) => {
                self.link_flaps += 1;
                self.last_outage = self.was_down.take().map(|t| t.elapsed());
            }
            _ => {}
        }
        Ok(())
    }
}

impl Drop for XdpTransport {
    fn drop(&mut self) {
        let mut s = self
            .steering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = s.remove_flow(self.flow);
        let _ = s.steering.unregister_socket(self.cfg.queue);
    }
}

impl Transport for XdpTransport {
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

    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        let mut sent = 0;
        for m in msgs {
            let result = self.queue(m);
            match result {
                Ok(true) => sent += 1,
                Ok(false) => {
                    // Every frame in flight: send, reap, try once more.
                    self.flush()?;
                    self.xsk.reap();
                    if self.queue(m)? {
                        sent += 1;
                    } else {
                        break;
                    }
                }
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        self.flush()?;
        if sent == 0 && !msgs.is_empty() {
            return Err(if self.xsk.link_down() {
                SyscallError::from_errno("xdp:// send (the link is down)", libc::ENETDOWN)
            } else {
                SyscallError::from_errno("xdp:// send (every UMEM frame in flight)", libc::ENOBUFS)
            });
        }
        Ok(sent)
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        self.timeout = timeout;
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        let mut notes = self.notes.clone();
        notes.push(self.ep.stats.describe());
        if let Some(d) = self.last_outage {
            notes.push(format!(
                "link of {} went down {} time(s); back after {} ms the last time, every UMEM \
                 frame accounted for",
                self.cfg.iface,
                self.link_flaps,
                d.as_millis()
            ));
        }
        if self.xsk.link_down() {
            notes.push(format!(
                "link of {} is down: sends wait on the ring",
                self.cfg.iface
            ));
        }
        let c = self.xsk.counters;
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
        let (usecs, budget, prefer) = match self.cfg.socket.strategy {
            RxStrategy::BusyPoll {
                usecs,
                budget,
                prefer,
            } => (Some(usecs), Some(budget.unwrap_or(64)), Some(prefer)),
            _ => (None, None, None),
        };
        Capabilities {
            transport: "xdp",
            rx_strategy: self.cfg.socket.strategy.name(),
            local: Some(SocketAddr::V4(self.ep.local())),
            peer: self.ep.default_peer().map(SocketAddr::V4),
            busy_poll_usecs: usecs,
            busy_poll_budget: budget,
            prefer_busy_poll: prefer,
            max_message: self.ep.max_message(),
            notes,
            ..Capabilities::default()
        }
    }
}

impl XdpTransport {
    /// Builds one message's frame in a free UMEM frame and puts it on the
    /// transmit ring; `Ok(false)` when no frame or ring slot is free.
    #[inline]
    fn queue(&mut self, m: &TxMsg<'_>) -> Result<bool, SyscallError> {
        let to = self.ep.destination(m)?;
        self.ep.mac_for(*to.ip()).map_err(|_| {
            SyscallError::from_errno(
                "xdp:// send (no ARP answer from the destination)",
                libc::EHOSTUNREACH,
            )
        })?;
        let Some((addr, buf)) = self.xsk.tx_frame() else {
            return Ok(false);
        };
        let len = match self.ep.emit(buf, m) {
            Ok(len) => len,
            Err(e) => {
                self.xsk.tx_cancel(addr);
                return Err(e);
            }
        };
        Ok(self.xsk.tx_submit(addr, len as u32))
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
