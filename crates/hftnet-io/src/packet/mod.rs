//! UDP over `AF_PACKET` rings (`packet://IFACE?port=P`): frames are received
//! from a memory-mapped `TPACKET_V2` (or V3) ring and sent through a transmit
//! ring, built and parsed in user space with the `hftnet-wire` codecs.
//!
//! Layer: a [`Ring`] under the generic layer-2 transport
//! ([`L2Transport`], which does the waiting, the frames and the send loop);
//! all raw calls are in [`hftnet_sys::packet`], so this module is safe code.
//!
//! What reaches the ring: a classic BPF filter attached before the socket is
//! bound admits only IPv4/UDP frames to this host's address and port `P`.
//! Everything else — ARP, ICMP, TCP, UDP to other ports — is never copied to
//! the ring and goes on to the kernel's stack as usual. `AF_PACKET` is a tap,
//! not a diversion: the kernel also processes the frames of the flow. So that
//! it does not answer each of them with an ICMP port unreachable, the
//! transport holds the port with a kernel UDP socket whose filter drops
//! everything (`reserve=1`, the default; the kernel counts those drops as UDP
//! receive errors).
//!
//! Receive: frames that passed the filter are parsed with
//! [`hftnet_wire::udp::parse_frame`]. The IPv4 header checksum is always
//! verified; the UDP checksum too, unless the ring says the device verified it
//! (`TP_STATUS_CSUM_VALID`) or left it partial (`TP_STATUS_CSUMNOTREADY`, as
//! veth does for frames from a local socket: the field then holds only the
//! pseudo-header sum). Runt, truncated, oversized (longer than a ring frame)
//! and corrupt frames are dropped and counted per reason ([`PacketStats`]).
//!
//! Transmit: each message is written straight into a free transmit frame with
//! its Ethernet, IPv4 and UDP headers and both checksums computed in software,
//! and one `send()` per burst asks the kernel to send the ring (with
//! `PACKET_QDISC_BYPASS`, straight to the driver). The kernel attaches the
//! ring's pages to the buffers it sends; `tx_copy=1` makes it copy each
//! (small) frame instead, which is cheaper over veth, whose peer would copy
//! the attached pages again, a fresh page per frame. The peer's MAC address
//! comes from the kernel's neighbour table ([`crate::l2::resolve`], which
//! asks the kernel to resolve it first when missing) — the one slow path,
//! taken once per new peer — or is pinned with `peer_mac=aa:bb:cc:dd:ee:ff`
//! (with `peer=`). A received frame's source MAC is believed only when the
//! table agrees, and with `peer=` only from the peer's IP address and port;
//! frames that disagree are counted (`mac_mismatch`), so a forged frame
//! cannot redirect the answers (see [`crate::l2::frames`]).
//!
//! Waiting (`rx=`): `spin` polls the ring's status word in memory (no system
//! call at all while waiting); `block` sleeps in `poll()`; `adaptive` spins,
//! then sleeps.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};

use hftnet_sys::SyscallError;
use hftnet_sys::packet::{
    self as ring, Fanout, FanoutMode, PacketRing, RingConfig, RxHalf, TxHalf, Version,
};
use serde::Serialize;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::Role;
use crate::backend::{Backend, CapsSection, Placement, RungContext, RungSpec};
use crate::common::SocketOptions;
use crate::error::{OpenError, from_io};
use crate::l2::frames::{
    FrameStats, HEADERS, KernelNeighbours, UdpCheck, UdpOverEthernet, open_iface, peer_mac_param,
};
use crate::l2::ring::{Ring, RxFrame, RxRing, TxRing};
use crate::l2::{L2Iface, L2Transport};
use crate::transport::RxStrategy;
use crate::uri::{Uri, UriError};

/// The `packet://` backend.
#[derive(Debug)]
pub struct PacketBackend;

/// UDP over an `AF_PACKET` ring on one interface.
pub type PacketTransport = L2Transport<Rings>;

impl Backend for PacketBackend {
    const SCHEMES: &'static [&'static str] = &["packet"];
    type Config = PacketConfig;
    type Transport = PacketTransport;
    type Caps = PacketCaps;

    fn parse(uri: &Uri) -> Result<PacketConfig, UriError> {
        PacketConfig::from_uri(uri)
    }

    fn open(cfg: &PacketConfig, role: Role) -> Result<PacketTransport, OpenError> {
        PacketTransport::open(cfg.clone(), role)
    }

    fn max_message(cfg: &PacketConfig) -> usize {
        cfg.max_message()
    }

    fn burst(cfg: &PacketConfig) -> usize {
        // Frames are queued on the transmit ring and sent with one kick per
        // burst; receive drains the ring in bursts.
        (cfg.ring.tx_frames as usize).clamp(1, 32)
    }

    fn cpu(cfg: &PacketConfig) -> Option<usize> {
        cfg.socket.cpu
    }

    fn placement(_: &str) -> Placement {
        Placement::Interface
    }

    fn rungs(_: &str, ctx: &RungContext<'_>) -> Vec<RungSpec> {
        // The ring is polled or slept on. TPACKET_V3 is not a rung: it
        // hands frames over per block, so a lone packet waits for the
        // block retire timeout (1 ms) and its RTT measures that timer, not
        // the path; it is a throughput mode (`hftnet sink
        // packet://…?version=3`, scripts/bench-throughput.sh).
        let i = ctx.iface_or_lo();
        [("block", "rx=block"), ("spin", "rx=spin")]
        .iter()
        .enumerate()
        .map(|(k, (name, q))| {
            let port = ctx.port + k as u16;
            RungSpec::pair(
                name,
                format!("packet://{i}?port={port}&{q}"),
                format!("packet://{i}?port={port}&peer={}:{port}&{q}", ctx.server_ip),
            )
        })
        .collect()
    }
}

/// A `packet://` endpoint, as parsed from a URI or built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketConfig {
    /// The interface (the URI's authority).
    pub iface: String,
    /// Local UDP port: the flow received, and the source port sent from (`port=`).
    pub port: u16,
    /// Default destination (`peer=IP:PORT`); required for a client.
    pub peer: Option<SocketAddrV4>,
    /// The peer's MAC address, pinned (`peer_mac=aa:bb:cc:dd:ee:ff`, with
    /// `peer=`): no neighbour lookup for it, and frames from the peer's IP
    /// address with another source MAC are counted, never believed.
    pub peer_mac: Option<hftnet_wire::ethernet::Address>,
    /// Local IPv4 address (`ip=`); by default the interface's first.
    pub ip: Option<Ipv4Addr>,
    /// A multicast group to receive instead of unicast to `ip` (`group=`),
    /// joined on the interface.
    pub group: Option<Ipv4Addr>,
    /// Ring layout and sizes (`version=2|3`, `frames=`, `tx_frames=`,
    /// `frame_size=`, `block_size=`, `block_ms=`, `qdisc_bypass=`,
    /// `tx_copy=`).
    pub ring: RingConfig,
    /// Fanout group (`fanout=ID`, `fanout_mode=hash|lb|cpu|qm|rollover|rnd`).
    pub fanout: Option<Fanout>,
    /// Hold the port with a kernel socket that drops what it receives (`reserve=`, default 1).
    pub reserve: bool,
    /// How receives wait (`rx=spin|block|adaptive`, `spins=`) and `cpu=`.
    pub socket: SocketOptions,
}

const PACKET_PARAMS: &[&str] = &[
    "port",
    "peer",
    "peer_mac",
    "ip",
    "group",
    "version",
    "frames",
    "tx_frames",
    "frame_size",
    "block_size",
    "block_ms",
    "qdisc_bypass",
    "tx_copy",
    "fanout",
    "fanout_mode",
    "reserve",
    "rx",
    "spins",
    "busy_poll",
    "busy_budget",
    "prefer_busy_poll",
    "cpu",
];

impl PacketConfig {
    /// An endpoint on `iface` for UDP port `port`, V2 rings of 256 frames of
    /// 2 KiB each way, qdisc bypass, the port reserved, blocking receive.
    #[must_use]
    pub fn new(iface: &str, port: u16) -> Self {
        Self {
            iface: iface.to_string(),
            port,
            peer: None,
            peer_mac: None,
            ip: None,
            group: None,
            ring: RingConfig::DEFAULT,
            fanout: None,
            reserve: true,
            socket: SocketOptions::default(),
        }
    }

    /// Reads a `packet://` URI.
    ///
    /// # Errors
    /// [`UriError`] naming the parameter at fault and what it accepts.
    pub fn from_uri(uri: &Uri) -> Result<Self, UriError> {
        let bad = |param: &str, value: String, expected: &str| UriError::BadValue {
            param: param.into(),
            value,
            expected: expected.into(),
        };
        let iface = uri.authority.clone();
        if iface.len() >= 16 || iface.contains(':') || iface.contains('/') {
            return Err(UriError::Malformed {
                uri: uri.text.clone(),
                reason: format!(
                    "packet:// takes an interface name (at most 15 characters), found {iface:?}; \
                     e.g. packet://veth0?port=9000"
                ),
            });
        }
        let mut p = uri.params(&[PACKET_PARAMS]);
        let Some(port) = p.int("port", 1..=65535)? else {
            return Err(UriError::Malformed {
                uri: uri.text.clone(),
                reason:
                    "packet:// needs port=N, the local UDP port (e.g. packet://veth0?port=9000)"
                        .into(),
            });
        };
        let mut cfg = Self::new(&iface, port as u16);
        cfg.peer = p.get_with(
            "peer",
            "an IPv4 address and port, e.g. 198.18.0.2:9000",
            |v| v.parse::<SocketAddrV4>().ok(),
        )?;
        cfg.peer_mac = peer_mac_param(&mut p, cfg.peer)?;
        cfg.ip = p.get_with("ip", "an IPv4 address", |v| v.parse().ok())?;
        cfg.group = p.get_with("group", "an IPv4 multicast group, e.g. 239.1.1.1", |v| {
            v.parse::<Ipv4Addr>().ok().filter(Ipv4Addr::is_multicast)
        })?;
        let strategy = RxStrategy::from_params(&mut p)?;
        if let RxStrategy::BusyPoll { .. } = strategy {
            return Err(bad(
                "rx",
                "busy-poll".into(),
                "spin, block or adaptive (a ring is polled in user space; \
                 kernel busy polling does not apply)",
            ));
        }
        cfg.socket.strategy = strategy;
        cfg.socket.cpu = p.int("cpu", 0..=4095)?.map(|v| v as usize);
        let version = p.choice("version", &["2", "3"])?;
        let r = &mut cfg.ring;
        if version == Some("3") {
            // V3 packs packets into blocks: bigger blocks, more room.
            r.version = Version::V3;
            r.block_size = 64 * 1024;
            r.rx_frames = 1024;
        }
        r.frame_size = p
            .get_with(
                "frame_size",
                "a multiple of 16 from 256 to 65536 bytes, e.g. 2048",
                |v| crate::uri::parse_size(v).filter(|n| (256..=65536).contains(n) && n % 16 == 0),
            )?
            .map_or(r.frame_size, |n| n as u32);
        r.block_size = p
            .get_with(
                "block_size",
                "a power of two from 4K to 4M, e.g. 64K",
                |v| {
                    crate::uri::parse_size(v)
                        .filter(|n| n.is_power_of_two() && (4096..=4 << 20).contains(n))
                },
            )?
            .map_or(r.block_size.max(r.frame_size), |n| n as u32);
        if let Some(f) = p.int("frames", 1..=1 << 20)? {
            r.rx_frames = f as u32;
        }
        if let Some(f) = p.int("tx_frames", 0..=1 << 20)? {
            r.tx_frames = f as u32;
        }
        let per_block = (r.block_size / r.frame_size).max(1);
        let round = |n: u32| n.div_ceil(per_block) * per_block;
        r.rx_frames = round(r.rx_frames);
        r.tx_frames = round(r.tx_frames);
        if let Some(ms) = p.int("block_ms", 1..=10_000)? {
            if r.version != Version::V3 {
                return Err(bad(
                    "block_ms",
                    ms.to_string(),
                    "to be given only with version=3",
                ));
            }
            r.block_timeout_ms = ms as u32;
        }
        r.qdisc_bypass = p.bool("qdisc_bypass")?.unwrap_or(true);
        r.tx_copy = p.bool("tx_copy")?.unwrap_or(false);
        if let Err(why) = r.check() {
            return Err(UriError::Malformed {
                uri: uri.text.clone(),
                reason: why,
            });
        }
        let group = p.int("fanout", 0..=65535)?;
        let mode = p.choice("fanout_mode", FanoutMode::NAMES)?;
        cfg.fanout = match (group, mode) {
            (Some(g), m) => Some(Fanout {
                group: g as u16,
                mode: m
                    .and_then(FanoutMode::from_name)
                    .unwrap_or(FanoutMode::Hash),
            }),
            (None, Some(m)) => {
                return Err(bad(
                    "fanout_mode",
                    m.into(),
                    "to be given only with fanout=GROUP",
                ));
            }
            (None, None) => None,
        };
        cfg.reserve = p.bool("reserve")?.unwrap_or(true);
        p.finish()?;
        Ok(cfg)
    }

    /// Largest UDP payload carried, before the interface's MTU is known:
    /// what a transmit and a receive frame hold.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.ring
            .max_tx_frame()
            .min(self.ring.max_rx_frame())
            .saturating_sub(HEADERS)
            .min(crate::udp::MAX_UDP_PAYLOAD)
    }
}

/// Counters of a `packet://` transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PacketStats {
    /// What happened to the frames received and sent.
    #[serde(flatten)]
    pub frames: FrameStats,
    /// Frames the kernel dropped because the ring was full.
    pub ring_drops: u64,
    /// V3: times the ring froze with every block in user space.
    pub ring_freezes: u64,
    /// Kicks that left frames queued (a full send buffer or device queue);
    /// they are kicked again on the next receive or send.
    pub tx_busy: u64,
}

/// The `packet://` section of the capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PacketCaps {
    /// `TPACKET_V2` or `V3`.
    pub version: u8,
    /// Receive ring frames.
    pub rx_frames: u32,
    /// Transmit ring frames.
    pub tx_frames: u32,
    /// Bytes per ring frame.
    pub frame_size: u32,
    /// `PACKET_QDISC_BYPASS` on.
    pub qdisc_bypass: bool,
    /// The fanout group, if any.
    pub fanout: Option<u16>,
    /// What happened to the frames received and sent.
    pub frames: FrameStats,
    /// Kicks that left frames queued.
    pub tx_busy: u64,
    /// Frames the kernel dropped because the receive ring was full
    /// (`PACKET_STATISTICS`, read when the report is made): losses a
    /// receiver never sees as a gap, e.g. after the last frame it took.
    pub ring_drops: u64,
    /// V3: times the ring froze with every block in user space.
    pub ring_freezes: u64,
    /// Where the ring frames are now (the accounting a soak checks).
    pub ring: RingAccounting,
}

/// Where the frames of both rings are, from their status words
/// ([`hftnet_sys::packet::RingOccupancy`]); read at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RingAccounting {
    /// Receive slots (V2: frames; V3: blocks).
    pub rx_slots: u32,
    /// Receive slots owned by user space (received, not yet given back).
    pub rx_user: u32,
    /// Of them, out of the reader's reach: leaked.
    pub rx_stray: u32,
    /// Transmit frames.
    pub tx_slots: u32,
    /// Transmit frames with the kernel (not yet back available).
    pub tx_pending: u32,
    /// Transmit frames the bookkeeping counts as handed over.
    pub tx_committed: u32,
    /// Transmit frames with the kernel outside the committed window: leaked.
    pub tx_stray: u32,
    /// Nothing stray, and no more frames with the kernel than committed.
    pub balanced: bool,
}

impl From<hftnet_sys::packet::RingOccupancy> for RingAccounting {
    fn from(o: hftnet_sys::packet::RingOccupancy) -> Self {
        Self {
            rx_slots: o.rx_slots,
            rx_user: o.rx_user,
            rx_stray: o.rx_stray,
            tx_slots: o.tx_slots,
            tx_pending: o.tx_pending,
            tx_committed: o.tx_committed,
            tx_stray: o.tx_stray,
            balanced: o.balanced(),
        }
    }
}

impl CapsSection for PacketCaps {
    fn lines(&self, out: &mut Vec<(String, String)>) {
        out.push((
            "ring".into(),
            format!(
                "TPACKET_V{} rx {} tx {} frames of {} bytes",
                self.version, self.rx_frames, self.tx_frames, self.frame_size
            ),
        ));
        out.push(("rx_timestamps".into(), "software (ring)".into()));
    }

    fn legacy(&self) -> crate::capabilities::LegacyFields {
        crate::capabilities::LegacyFields {
            rx_timestamps: true,
            ..Default::default()
        }
    }
}

/// The rings of one `packet://` endpoint, with the socket holding its port.
#[derive(Debug)]
pub struct Rings {
    ring: PacketRing,
    cfg: PacketConfig,
    /// Frames were left on the transmit ring by the last kick.
    unsent: bool,
    tx_busy: u64,
    _reservation: Option<Socket>,
}

impl Rings {
    /// The kernel's ring counters as of now; should the read fail (the
    /// kernel does not fail it on an open packet socket), the totals of the
    /// last read.
    fn kernel_stats(&self) -> hftnet_sys::packet::RingStats {
        self.ring.stats().unwrap_or_else(|_| self.ring.last_stats())
    }
}

/// The receive half of [`Rings`].
#[derive(Debug)]
pub struct PacketRx<'a>(RxHalf<'a>);

/// The transmit half of [`Rings`].
#[derive(Debug)]
pub struct PacketTx<'a> {
    h: TxHalf<'a>,
    has_ring: bool,
    unsent: &'a mut bool,
    tx_busy: &'a mut u64,
}

impl Ring for Rings {
    type Rx<'a> = PacketRx<'a>;
    type Tx<'a> = PacketTx<'a>;
    type Caps = PacketCaps;

    #[inline]
    fn split(&mut self) -> (PacketRx<'_>, PacketTx<'_>) {
        let (rx, tx) = self.ring.split();
        (
            PacketRx(rx),
            PacketTx {
                h: tx,
                has_ring: self.cfg.ring.tx_frames > 0,
                unsent: &mut self.unsent,
                tx_busy: &mut self.tx_busy,
            },
        )
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }

    #[inline]
    fn idle(&self) -> bool {
        !self.unsent && !self.ring.rx_waiting()
    }

    fn caps(&self, frames: FrameStats) -> PacketCaps {
        let r = &self.cfg.ring;
        let k = self.kernel_stats();
        PacketCaps {
            version: r.version.number(),
            rx_frames: r.rx_frames,
            tx_frames: r.tx_frames,
            frame_size: r.frame_size,
            qdisc_bypass: r.qdisc_bypass,
            fanout: self.cfg.fanout.map(|f| f.group),
            frames,
            tx_busy: self.tx_busy,
            ring_drops: k.drops,
            ring_freezes: k.freezes,
            ring: self.ring.occupancy().into(),
        }
    }

    fn notes(&self, out: &mut Vec<String>) {
        out.push(format!("{} busy kicks", self.tx_busy));
        let k = self.kernel_stats();
        out.push(format!(
            "kernel: {} frames dropped with the receive ring full, {} ring freezes",
            k.drops, k.freezes
        ));
        let o = self.ring.occupancy();
        out.push(format!(
            "ring: {} of {} receive slots with user space ({} stray), {} of {} transmit frames \
             with the kernel ({} committed, {} stray)",
            o.rx_user, o.rx_slots, o.rx_stray, o.tx_pending, o.tx_slots, o.tx_committed, o.tx_stray
        ));
    }
}

impl RxRing for PacketRx<'_> {
    #[inline]
    fn recv(&mut self, max: usize, mut f: impl FnMut(RxFrame<'_>)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(fr) = self.0.next_frame() else { break };
            if fr.pkttype != libc::PACKET_OUTGOING {
                let udp_check = if fr.csum_not_ready() || fr.csum_valid() {
                    UdpCheck::Skip
                } else {
                    UdpCheck::Verify
                };
                f(RxFrame {
                    data: fr.data,
                    wire_len: fr.wire_len as usize,
                    udp_check,
                    ts_ns: Some(fr.ts_ns),
                    queue: 0,
                });
                n += 1;
            }
            self.0.release();
        }
        n
    }
}

impl TxRing for PacketTx<'_> {
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

    /// Kicks the transmit ring; when the kernel stopped before the last
    /// frame (a full send buffer or device queue), remembers to kick again
    /// on the next receive or send.
    #[inline]
    fn kick(&mut self) -> Result<(), SyscallError> {
        if !self.has_ring {
            return Err(SyscallError::from_errno(
                "packet:// send (no transmit ring: tx_frames=0)",
                libc::EOPNOTSUPP,
            ));
        }
        match self.h.kick(false) {
            Ok(_) => {}
            Err(e) if matches!(e.errno(), Some(libc::EAGAIN | libc::ENOBUFS)) => {}
            Err(e) => {
                // The frames stay on the ring: kick them again next time.
                *self.unsent = true;
                return Err(e);
            }
        }
        *self.unsent = self.h.unsent();
        if *self.unsent {
            *self.tx_busy += 1;
        }
        Ok(())
    }

    #[inline]
    fn needs_kick(&self) -> bool {
        *self.unsent
    }

    fn full_error(&self) -> SyscallError {
        SyscallError::from_errno("packet:// send (transmit ring full)", libc::ENOBUFS)
    }
}

impl PacketTransport {
    /// Opens the ring on the interface, reserves the port, and for a client
    /// (or any endpoint with `peer=`) resolves the peer's MAC address.
    ///
    /// # Errors
    /// [`OpenError::NoSuchInterface`]; [`OpenError::Privilege`] without
    /// `CAP_NET_RAW`; [`OpenError::AddrInUse`] when a kernel socket holds the
    /// port; [`OpenError::L2`] when the interface has no IPv4 address or the
    /// peer does not answer ARP; [`OpenError::Setup`] naming the ring call
    /// the kernel refused.
    pub fn open(cfg: PacketConfig, role: Role) -> Result<Self, OpenError> {
        let (iface, ip) = open_iface(
            &cfg.iface,
            cfg.ip,
            cfg.peer,
            role,
            "packet://veth0?port=9001&peer=198.18.0.2:9000",
        )?;
        let local = SocketAddrV4::new(ip, cfg.port);
        let reservation = if cfg.reserve {
            Some(reserve_port(
                local,
                cfg.group,
                &iface,
                cfg.fanout.is_some(),
            )?)
        } else {
            None
        };
        let filter = ring::udp_flow_filter(Some(cfg.group.unwrap_or(ip)), cfg.port);
        let pring = PacketRing::open(iface.index, cfg.ring, Some(&filter), cfg.fanout).map_err(
            |e| match e.errno() {
                Some(libc::EPERM | libc::EACCES) => OpenError::Privilege {
                    what: "packet:// (an AF_PACKET socket)",
                    privilege: "CAP_NET_RAW (run as root)",
                    cause: e,
                },
                Some(libc::EINVAL) if e.call == "setsockopt(PACKET_FANOUT)" => OpenError::Setup {
                    step: format!(
                        "joining fanout group {} on {}: the group exists with another mode \
                         or interface; give every member the same fanout_mode",
                        cfg.fanout.map_or(0, |f| f.group),
                        cfg.iface
                    ),
                    cause: e,
                },
                _ => OpenError::setup(format!("setting up the packet rings on {}", cfg.iface))(e),
            },
        )?;
        let neighbours = Box::new(KernelNeighbours::open()?);
        let mut ep = UdpOverEthernet::new(
            iface,
            local,
            cfg.group,
            cfg.peer,
            cfg.max_message(),
            neighbours,
        );
        if let Some(mac) = cfg.peer_mac {
            ep.pin_peer_mac(mac)?;
        }
        if let Some(peer) = cfg.peer {
            ep.mac_for(*peer.ip()).map_err(OpenError::from)?;
        }
        let mut notes = vec![format!(
            "ring: TPACKET_V{} rx {} frames, tx {} frames of {} bytes, {} bytes per block{}",
            cfg.ring.version.number(),
            cfg.ring.rx_frames,
            cfg.ring.tx_frames,
            cfg.ring.frame_size,
            cfg.ring.block_size,
            if cfg.ring.version == Version::V3 {
                format!(
                    ", block timeout {} ms (a lone packet waits for it)",
                    cfg.ring.block_timeout_ms
                )
            } else {
                String::new()
            }
        )];
        let flow = SocketAddrV4::new(cfg.group.unwrap_or(ip), cfg.port);
        notes.push(format!(
            "filter: only IPv4/UDP to {flow} reaches the ring; everything else goes to the kernel"
        ));
        notes.push(format!(
            "qdisc bypass: {}",
            if cfg.ring.qdisc_bypass { "on" } else { "off" }
        ));
        if cfg.ring.tx_copy {
            notes.push(
                "tx_copy: the kernel copies each sent frame into its buffer (PACKET_VNET_HDR)"
                    .into(),
            );
        }
        if let Some(f) = cfg.fanout {
            notes.push(format!("fanout group {} mode {}", f.group, f.mode.name()));
        }
        notes.push(crate::l2::frames::mac_note(cfg.peer, cfg.peer_mac));
        if cfg.reserve {
            notes.push(format!(
                "port {} held by a kernel socket that drops the kernel's copy of each datagram",
                cfg.port
            ));
        }
        let strategy = cfg.socket.strategy;
        let burst = PacketBackend::burst(&cfg);
        let rings = Rings {
            ring: pring,
            cfg,
            unsent: false,
            tx_busy: 0,
            _reservation: reservation,
        };
        Ok(L2Transport::new(rings, ep, "packet", strategy, burst, notes))
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PacketConfig {
        &self.ring().cfg
    }

    /// The counters, with the kernel's ring statistics read now.
    ///
    /// # Errors
    /// `getsockopt(PACKET_STATISTICS)`.
    pub fn stats(&mut self) -> Result<PacketStats, SyscallError> {
        let frames = self.endpoint().stats;
        let rings = self.ring_mut();
        let r = rings.ring.stats()?;
        Ok(PacketStats {
            frames,
            ring_drops: r.drops,
            ring_freezes: r.freezes,
            tx_busy: rings.tx_busy,
        })
    }
}

/// Binds a kernel UDP socket to `local` (or `group`, joined on the
/// interface) with a drop-everything filter, so the kernel neither answers
/// the flow with ICMP port unreachable nor queues it. Members of a fanout
/// group share the reservation (`SO_REUSEPORT`).
pub(crate) fn reserve_port(
    local: SocketAddrV4,
    group: Option<Ipv4Addr>,
    iface: &L2Iface,
    shared: bool,
) -> Result<Socket, OpenError> {
    let step = || {
        OpenError::setup(format!(
            "reserving port {} (reserve=0 skips it)",
            local.port()
        ))
    };
    let s = Socket::new(Domain::IPV4, Type::DGRAM.cloexec(), Some(Protocol::UDP))
        .map_err(|e| step()(from_io("socket(UDP)", e)))?;
    if shared || group.is_some() {
        s.set_reuse_port(true)
            .map_err(|e| step()(from_io("setsockopt(SO_REUSEPORT)", e)))?;
    }
    ring::attach_filter(s.as_fd(), &ring::drop_all_filter()).map_err(step())?;
    let at = SocketAddrV4::new(group.unwrap_or(*local.ip()), local.port());
    s.bind(&SockAddr::from(at)).map_err(|e| {
        if e.raw_os_error() == Some(libc::EADDRINUSE) {
            OpenError::AddrInUse {
                addr: SocketAddr::V4(at),
            }
        } else {
            step()(from_io("bind(UDP)", e))
        }
    })?;
    if let Some(g) = group {
        s.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(iface.index))
            .map_err(|e| step()(from_io("setsockopt(IP_ADD_MEMBERSHIP)", e)))?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(q: &str) -> Result<PacketConfig, UriError> {
        PacketConfig::from_uri(&Uri::parse(&format!("packet://veth0{q}")).unwrap())
    }

    #[test]
    fn uri_parameters() {
        let c = cfg("?port=9000").unwrap();
        assert_eq!((c.iface.as_str(), c.port), ("veth0", 9000));
        assert_eq!(c.ring, RingConfig::DEFAULT);
        assert!(c.reserve && c.peer.is_none() && c.fanout.is_none());
        let c = cfg("?port=9001&peer=198.18.0.2:9000&rx=spin&version=3&fanout=7&fanout_mode=lb")
            .unwrap();
        assert_eq!(c.peer, Some("198.18.0.2:9000".parse().unwrap()));
        assert_eq!(c.socket.strategy, RxStrategy::Spin);
        assert_eq!(c.ring.version, Version::V3);
        assert_eq!(
            c.fanout,
            Some(Fanout {
                group: 7,
                mode: FanoutMode::LoadBalance
            })
        );
        assert!(!c.ring.tx_copy);
        let c = cfg("?port=1&tx_copy=1").unwrap();
        assert!(c.ring.tx_copy);
        assert!(c.max_message() < cfg("?port=1").unwrap().max_message());
        let c = cfg("?port=1&frames=3&frame_size=1024").unwrap();
        assert_eq!(c.ring.rx_frames, 4, "rounded up to whole blocks");
        assert!(c.max_message() < 1024);

        let e = cfg("").unwrap_err().to_string();
        assert!(e.contains("needs port=N"), "{e}");
        let e = cfg("?port=1&rx=busy-poll").unwrap_err().to_string();
        assert!(e.contains("kernel busy polling does not apply"), "{e}");
        let e = cfg("?port=1&block_ms=5").unwrap_err().to_string();
        assert!(e.contains("version=3"), "{e}");
        let e = cfg("?port=1&fanout_mode=lb").unwrap_err().to_string();
        assert!(e.contains("fanout=GROUP"), "{e}");
        let e = cfg("?port=1&frame_size=100").unwrap_err().to_string();
        assert!(e.contains("multiple of 16"), "{e}");
        let e = cfg("?port=1&peer=x").unwrap_err().to_string();
        assert!(e.contains("\"peer\""), "{e}");
        let e = cfg("?port=1&batch=2").unwrap_err().to_string();
        assert!(e.contains("accepted parameters"), "{e}");
        let e = PacketConfig::from_uri(&Uri::parse("packet://1.2.3.4:5?port=1").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("interface name"), "{e}");
    }
}
