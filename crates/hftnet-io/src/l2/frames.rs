//! The small user-space UDP/IPv4/Ethernet layer shared by the layer-2
//! backends (`packet://`, `xdp://`, later `dpdk://`): which received frames
//! are ours and what they carry, and the frame to send for a message.
//!
//! Layer: between a backend's ring and the generic
//! [`L2Transport`](crate::l2::L2Transport); sans I/O except for the one slow
//! path, resolving a new peer's MAC address through the kernel's neighbour
//! table ([`crate::l2::resolve`]).
//!
//! Receive: [`UdpOverEthernet::accept`] parses a frame with
//! [`hftnet_wire::udp::parse_frame`], verifying the IPv4 header checksum
//! always and the UDP checksum when the caller says the device neither
//! verified it nor left it partial; keeps frames to our address (or joined
//! group) and port; counts every other frame under its reason. Transmit:
//! [`UdpOverEthernet::emit`] writes the Ethernet, IPv4 and UDP headers and
//! both checksums, computed in software, around the payload — or, when the
//! backend's device finishes them ([`TxChecksum::Offloaded`], set with
//! [`UdpOverEthernet::set_tx_checksum`]), a zero IPv4 header checksum and
//! only the pseudo-header sum in the UDP field. Neither allocates except
//! on a peer's first contact.
//!
//! Whose MAC address an answer goes to: a frame's source MAC address is
//! whatever its sender wrote, so it is never believed on its own word (a
//! forged frame would otherwise redirect every answer to the forger). The
//! destination MAC of an IP address comes from, in order:
//! - `peer_mac=` ([`UdpOverEthernet::pin_peer_mac`]): the MAC address of
//!   the configured peer, pinned; a frame from the peer's IP address with
//!   another source MAC is counted in [`FrameStats::mac_mismatch`];
//! - the cache of addresses learned: a frame's source MAC is learned only
//!   when the kernel's neighbour table of the transport's namespace agrees
//!   ([`crate::l2::table_mac`], read on a new sender's first frame), and —
//!   when the endpoint has a configured peer — only from frames whose
//!   source IP address and port are that peer's. When the table names
//!   another MAC the table's is kept and the frame counted in
//!   [`FrameStats::mac_mismatch`]; a frame that disagrees with an address
//!   already learned is counted too. The table is read for an address in
//!   the cache at most once every [`RECHECK_INTERVAL`], timed per address,
//!   and for senders not in the cache at most once every interval in all
//!   (so a peer whose address really changed is followed, a flood of forged
//!   frames claiming one address delays no re-check of another, and neither
//!   a flood nor a sender the table has no entry for costs a lookup per
//!   frame). On the hot path a frame
//!   from the sender of the last frame that agreed costs one comparison.
//! - otherwise the kernel's neighbour table through [`crate::l2::resolve`]
//!   (asking the kernel to resolve the address when it has no entry).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::netlink::RtNetlink;
use hftnet_wire::udp::{self as wire_udp, Checks, FrameSpec, Reject};
use hftnet_wire::{ethernet, ipv4};
use serde::Serialize;

use crate::Role;
use crate::error::OpenError;
use crate::l2::{self, L2Iface};
use crate::transport::{RxStrategy, TxMsg};
use crate::uri::{Params, UriError};

/// Bytes of Ethernet, IPv4 and UDP headers in a frame sent by a layer-2 backend.
pub const HEADERS: usize = ethernet::HEADER_LEN + 20 + 8;
/// How long resolving a peer's MAC address may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(1);
/// Peers whose MAC address is remembered.
const MAC_CACHE: usize = 8;
/// How often a frame whose source MAC disagrees with the address learned
/// for its sender may make the endpoint read the neighbour table again.
pub const RECHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Where a layer-2 endpoint asks about MAC addresses: the kernel's routing
/// and neighbour tables of the transport's network namespace
/// ([`KernelNeighbours`]), or a stand-in in unit tests. Called on the slow
/// path only (a new sender, a new destination, a disagreeing frame).
pub trait Neighbours: fmt::Debug + Send {
    /// The MAC address to send to `ip` out of `iface`, resolving it if need
    /// be (see [`l2::resolve`]), waiting up to `timeout`.
    ///
    /// # Errors
    /// As [`l2::resolve`].
    fn resolve(
        &mut self,
        iface: &L2Iface,
        ip: Ipv4Addr,
        timeout: Duration,
    ) -> Result<ethernet::Address, l2::L2Error>;

    /// The MAC address the tables give for `ip` now, without resolving
    /// anything (see [`l2::table_mac`]).
    ///
    /// # Errors
    /// As [`l2::table_mac`].
    fn table_mac(
        &mut self,
        iface: &L2Iface,
        ip: Ipv4Addr,
    ) -> Result<Option<ethernet::Address>, l2::L2Error>;
}

/// The kernel's tables, read through an rtnetlink socket opened in the
/// network namespace of the thread that called [`KernelNeighbours::open`]
/// — the transport's — whichever thread uses it later.
#[derive(Debug)]
pub struct KernelNeighbours {
    nl: RtNetlink,
}

impl KernelNeighbours {
    /// Opens the rtnetlink socket in the calling thread's network namespace.
    ///
    /// # Errors
    /// [`l2::L2Error::Netlink`] when the socket cannot be opened.
    pub fn open() -> Result<Self, l2::L2Error> {
        let nl = RtNetlink::open().map_err(|cause| l2::L2Error::Netlink {
            what: "opening an rtnetlink socket".into(),
            cause,
        })?;
        Ok(Self { nl })
    }
}

impl Neighbours for KernelNeighbours {
    fn resolve(
        &mut self,
        iface: &L2Iface,
        ip: Ipv4Addr,
        timeout: Duration,
    ) -> Result<ethernet::Address, l2::L2Error> {
        l2::resolve_with(&mut self.nl, iface, ip, timeout).map(|hop| hop.dst_mac)
    }

    fn table_mac(
        &mut self,
        iface: &L2Iface,
        ip: Ipv4Addr,
    ) -> Result<Option<ethernet::Address>, l2::L2Error> {
        l2::table_mac(&mut self.nl, iface, ip)
    }
}

/// Reads `peer_mac=` — the configured peer's MAC address, pinned — given
/// the endpoint's `peer=`.
///
/// # Errors
/// [`UriError::BadValue`] naming `peer_mac` for anything but a unicast
/// address of six hexadecimal octets (`aa:bb:cc:dd:ee:ff`), and when it is
/// given without `peer=`.
pub fn peer_mac_param(
    p: &mut Params<'_>,
    peer: Option<SocketAddrV4>,
) -> Result<Option<ethernet::Address>, UriError> {
    let mac = p.get_with(
        "peer_mac",
        "the peer's unicast MAC address as six hexadecimal octets, e.g. 02:00:00:00:00:02          (not a multicast or broadcast address, not all zeros)",
        |v| {
            v.parse::<ethernet::Address>()
                .ok()
                .filter(|a| a.is_unicast() && a.0 != [0; 6])
        },
    )?;
    if let (Some(mac), None) = (mac, peer) {
        return Err(UriError::BadValue {
            param: "peer_mac".into(),
            value: mac.to_string(),
            expected: "to be given with peer=IP:PORT, the peer whose MAC address it is".into(),
        });
    }
    Ok(mac)
}

/// The interface of a layer-2 endpoint being opened and its local address:
/// `ip` if given, else the interface's; a client must name its `peer`.
/// `example` is a URI shown when the peer is missing.
///
/// # Errors
/// [`OpenError::NoSuchInterface`], [`OpenError::L2`] for an interface
/// without an IPv4 address or not Ethernet, [`OpenError::Uri`] for a client
/// without `peer=`.
pub fn open_iface(
    name: &str,
    ip: Option<Ipv4Addr>,
    peer: Option<SocketAddrV4>,
    role: Role,
    example: &str,
) -> Result<(L2Iface, Ipv4Addr), OpenError> {
    let iface = match L2Iface::lookup(name) {
        Ok(i) => i,
        Err(l2::L2Error::NoSuchInterface { .. }) => {
            return Err(OpenError::NoSuchInterface {
                name: name.to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let ip = match (ip, iface.ipv4) {
        (Some(ip), _) | (None, Some((ip, _))) => ip,
        (None, None) => {
            return Err(l2::L2Error::NoIpv4Address {
                name: name.to_string(),
            }
            .into());
        }
    };
    if role == Role::Client && peer.is_none() {
        return Err(UriError::BadValue {
            param: "peer".into(),
            value: String::new(),
            expected: format!("an IPv4 address and port to send to, e.g. {example}"),
        }
        .into());
    }
    Ok((iface, ip))
}

/// The capability note saying where the peer's MAC address comes from.
#[must_use]
pub fn mac_note(peer: Option<SocketAddrV4>, peer_mac: Option<ethernet::Address>) -> String {
    match (peer, peer_mac) {
        (Some(p), Some(mac)) => format!(
            "peer MAC: {mac} for {} pinned by peer_mac= (frames from {} with another source \
             MAC are counted as mac_mismatch)",
            p.ip(),
            p.ip()
        ),
        (Some(p), None) => format!(
            "peer MAC: from the kernel's neighbour table; learned only from frames of {p} the \
             table agrees with (others counted as mac_mismatch)"
        ),
        _ => "sender MACs: learned only when the kernel's neighbour table agrees (others counted \
              as mac_mismatch), else answers resolve through the table"
            .to_string(),
    }
}

/// Empty polls between two reads of the clock while spinning on a ring.
const SPINS_PER_CLOCK_READ: u32 = 64;

/// What a ring receive loop does after finding its ring empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Poll the ring again.
    Again,
    /// Sleep in `poll()` on the socket for at most this long (`None`: no limit).
    Sleep(Option<Duration>),
    /// The deadline passed: return nothing.
    TimedOut,
}

/// The receive strategy of a ring-based backend, as a small state machine
/// the backend's loop asks after each empty poll: `spin` polls the ring in
/// memory until the deadline (reading the clock every 64 polls), `block`
/// sleeps in `poll()` at once, `adaptive` spins `spins` times first.
#[derive(Debug, Clone, Copy)]
pub struct RingWait {
    spins: Option<u32>,
    polls: u32,
    deadline: Option<Instant>,
}

impl RingWait {
    /// For `strategy` (busy-poll counts as spin) until `deadline`.
    #[must_use]
    pub fn new(strategy: RxStrategy, deadline: Option<Instant>) -> Self {
        let spins = match strategy {
            RxStrategy::Spin | RxStrategy::BusyPoll { .. } => None,
            RxStrategy::Adaptive { spins } => Some(spins),
            RxStrategy::Block => Some(0),
        };
        Self {
            spins,
            polls: 0,
            deadline,
        }
    }

    /// What to do after an empty poll.
    #[inline]
    pub fn after_empty_poll(&mut self) -> Wait {
        self.polls = self.polls.wrapping_add(1);
        if self.spins.is_none_or(|s| self.polls < s) {
            // The clock is read on the first empty poll (a deadline already
            // past ends the wait at once) and then every 64.
            if (self.polls == 1 || self.polls.is_multiple_of(SPINS_PER_CLOCK_READ))
                && self.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Wait::TimedOut;
            }
            std::hint::spin_loop();
            return Wait::Again;
        }
        // Past the spin budget: stay in the sleeping phase.
        self.polls = self.polls.saturating_sub(1);
        match self.deadline {
            None => Wait::Sleep(None),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Wait::TimedOut
                } else {
                    Wait::Sleep(Some(left))
                }
            }
        }
    }
}

/// Who computes the checksums of the frames [`UdpOverEthernet`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxChecksum {
    /// Both in software, complete (the default: any device sends them as is).
    #[default]
    Software,
    /// The device: the IPv4 header checksum is left 0 and the UDP checksum
    /// field holds the pseudo-header sum, as DPDK's transmit checksum
    /// offload (`RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM`) wants
    /// them. Only for a backend that asks its device to finish every frame.
    Offloaded,
}

impl TxChecksum {
    /// `software` or `offloaded`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Software => "software",
            Self::Offloaded => "offloaded",
        }
    }
}

/// How [`UdpOverEthernet::accept`] treats the UDP checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpCheck {
    /// Verify it: nothing is known about the device's checksum state.
    Verify,
    /// Skip it: the device verified it, or said it left it partial.
    Skip,
    /// Verify it, but accept a checksum that holds exactly the pseudo-header
    /// sum: what a sender's device leaves when it was to finish the sum
    /// (`CHECKSUM_PARTIAL`, e.g. a local socket's datagram over veth) and the
    /// path gave no flag saying so (XDP). Counted in
    /// [`FrameStats::udp_partial`]; a corrupted checksum equals that value
    /// by chance once in 65 536.
    VerifyOrPartial,
}

/// What happened to the frames a layer-2 backend received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FrameStats {
    /// Frames taken from the ring.
    pub rx_frames: u64,
    /// Datagrams delivered to the caller.
    pub delivered: u64,
    /// Frames longer than a ring frame (only their head was captured).
    pub oversized: u64,
    /// Runts: shorter than their headers or than the lengths they announce.
    pub truncated: u64,
    /// Broken IPv4 or UDP headers.
    pub malformed: u64,
    /// Bad IPv4 header checksums.
    pub ip_checksum: u64,
    /// Bad UDP checksums.
    pub udp_checksum: u64,
    /// Delivered with a UDP checksum left partial by the sender's device
    /// (see [`UdpCheck::VerifyOrPartial`]).
    pub udp_partial: u64,
    /// IPv4 headers with options.
    pub ip_options: u64,
    /// IPv4 fragments.
    pub fragment: u64,
    /// Frames that were not IPv4/UDP to our address and port (the filter or
    /// steering program should leave none).
    pub other: u64,
    /// Frames delivered whose source MAC address disagreed with the one the
    /// endpoint sends to for their source IP address (`peer_mac=`, or the
    /// kernel's neighbour table): not learned, answers still go to the
    /// trusted address. Forged or misdirected frames, or a peer whose
    /// address changed and whose new one the kernel does not know yet.
    pub mac_mismatch: u64,
    /// Frames built for sending.
    pub tx_frames: u64,
}

impl FrameStats {
    /// Frames received and dropped, all reasons together.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.oversized
            + self.truncated
            + self.malformed
            + self.ip_checksum
            + self.udp_checksum
            + self.ip_options
            + self.fragment
            + self.other
    }

    /// Counts a frame rejected for `r`.
    pub fn count(&mut self, r: Reject) {
        match r {
            Reject::Truncated => self.truncated += 1,
            Reject::Malformed => self.malformed += 1,
            Reject::IpChecksum => self.ip_checksum += 1,
            Reject::UdpChecksum => self.udp_checksum += 1,
            Reject::IpOptions => self.ip_options += 1,
            Reject::Fragment => self.fragment += 1,
            Reject::NotIpv4(_) | Reject::NotUdp(_) => self.other += 1,
        }
    }

    /// One line for the capability notes.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "frames: {} received, {} delivered, {} dropped (oversized {}, truncated {}, \
             malformed {}, ip_checksum {}, udp_checksum {}, ip_options {}, fragment {}, \
             other {}); {} with a partial UDP checksum; {} with a source MAC that disagrees \
             with the peer's known address (not learned); {} sent",
            self.rx_frames,
            self.delivered,
            self.dropped(),
            self.oversized,
            self.truncated,
            self.malformed,
            self.ip_checksum,
            self.udp_checksum,
            self.ip_options,
            self.fragment,
            self.other,
            self.udp_partial,
            self.mac_mismatch,
            self.tx_frames
        )
    }
}

/// A UDP endpoint spoken in Ethernet frames: our interface, address and
/// port, the peers' MAC addresses (see the module doc for whose are
/// believed), and the frame counters.
#[derive(Debug)]
pub struct UdpOverEthernet {
    iface: L2Iface,
    local: SocketAddrV4,
    group: Option<Ipv4Addr>,
    default_peer: Option<SocketAddrV4>,
    /// `peer_mac=`: the default peer's address and its pinned MAC.
    pinned: Option<(Ipv4Addr, ethernet::Address)>,
    macs: [(Ipv4Addr, ethernet::Address); MAC_CACHE],
    /// When the table was last read for each entry of `macs`.
    mac_checked: [Option<Instant>; MAC_CACHE],
    mac_next: usize,
    neighbours: Box<dyn Neighbours>,
    /// When a frame from a sender not in `macs` last made the endpoint
    /// read the table (from [`Self::check_source_slow`]).
    unknown_checked: Option<Instant>,
    /// The source (IP address, MAC address) of the last frame that agreed
    /// with the trusted address: the next frames of the same sender are
    /// checked with one comparison. Cleared whenever the trusted addresses
    /// change.
    last_ok: Option<(Ipv4Addr, ethernet::Address)>,
    max_message: usize,
    tx_checksum: TxChecksum,
    /// The counters.
    pub stats: FrameStats,
}

impl UdpOverEthernet {
    /// An endpoint at `local` on `iface`, also accepting datagrams to
    /// `group` (a multicast group joined by the caller), sending to
    /// `default_peer` unless told otherwise, carrying at most `max_message`
    /// bytes (further capped by the interface's MTU), asking `neighbours`
    /// for MAC addresses (open [`KernelNeighbours`] in the transport's
    /// network namespace).
    #[must_use]
    pub fn new(
        iface: L2Iface,
        local: SocketAddrV4,
        group: Option<Ipv4Addr>,
        default_peer: Option<SocketAddrV4>,
        max_message: usize,
        neighbours: Box<dyn Neighbours>,
    ) -> Self {
        let mtu_payload = (iface.mtu as usize).saturating_sub(28);
        Self {
            iface,
            local,
            group,
            default_peer,
            pinned: None,
            macs: [(Ipv4Addr::UNSPECIFIED, ethernet::Address([0; 6])); MAC_CACHE],
            mac_checked: [None; MAC_CACHE],
            mac_next: 0,
            neighbours,
            unknown_checked: None,
            last_ok: None,
            max_message: max_message.min(mtu_payload),
            tx_checksum: TxChecksum::Software,
            stats: FrameStats::default(),
        }
    }

    /// Pins the default peer's MAC address (`peer_mac=`): frames to the
    /// peer's IP address go to `mac` without any lookup, and frames from it
    /// are never learned from.
    ///
    /// # Errors
    /// [`UriError::BadValue`] naming `peer_mac` when the endpoint has no
    /// default peer.
    pub fn pin_peer_mac(&mut self, mac: ethernet::Address) -> Result<(), UriError> {
        let Some(peer) = self.default_peer else {
            return Err(UriError::BadValue {
                param: "peer_mac".into(),
                value: mac.to_string(),
                expected: "to be given with peer=IP:PORT, the peer whose MAC address it is".into(),
            });
        };
        self.pinned = Some((*peer.ip(), mac));
        self.last_ok = None;
        Ok(())
    }

    /// The default peer's pinned MAC address (`peer_mac=`), if any.
    #[must_use]
    pub fn pinned_peer_mac(&self) -> Option<ethernet::Address> {
        self.pinned.map(|(_, mac)| mac)
    }

    /// The interface.
    #[must_use]
    pub fn iface(&self) -> &L2Iface {
        &self.iface
    }

    /// Our address and port.
    #[must_use]
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// The group datagrams are also accepted for.
    #[must_use]
    pub fn group(&self) -> Option<Ipv4Addr> {
        self.group
    }

    /// Where messages without a destination go.
    #[must_use]
    pub fn default_peer(&self) -> Option<SocketAddrV4> {
        self.default_peer
    }

    /// The largest payload carried.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// The MAC address to send to `ip`: from the cache, else the kernel's
    /// neighbour table (resolving it when missing). Allocates on a miss only.
    ///
    /// # Errors
    /// [`l2::L2Error`] when the address cannot be resolved.
    pub fn mac_for(&mut self, ip: Ipv4Addr) -> Result<ethernet::Address, l2::L2Error> {
        if let Some((_, mac)) = self.pinned.filter(|(i, _)| *i == ip) {
            return Ok(mac);
        }
        if let Some((_, mac)) = self.macs.iter().find(|(i, _)| *i == ip) {
            return Ok(*mac);
        }
        let mac = self.neighbours.resolve(&self.iface, ip, RESOLVE_TIMEOUT)?;
        self.learn(ip, mac);
        Ok(mac)
    }

    /// Looks at the source of a frame delivered to us: nothing to do when
    /// it is the sender of the last frame that agreed (the hot path: one
    /// comparison, no table read); else see [`Self::check_source_known`].
    #[inline]
    fn check_source(&mut self, ip: Ipv4Addr, port: u16, mac: ethernet::Address) {
        if self.last_ok == Some((ip, mac)) {
            return;
        }
        self.check_source_known(ip, port, mac);
    }

    /// A sender other than the last that agreed: compared with the pinned
    /// address and the cache (remembered as the last that agreed when it
    /// matches), else see [`Self::check_source_slow`].
    #[inline(never)]
    fn check_source_known(&mut self, ip: Ipv4Addr, port: u16, mac: ethernet::Address) {
        if let Some((pinned_ip, pinned_mac)) = self.pinned
            && pinned_ip == ip
        {
            if pinned_mac == mac {
                self.last_ok = Some((ip, mac));
            } else {
                self.stats.mac_mismatch += 1;
            }
            return;
        }
        if self.macs.iter().any(|(i, m)| *i == ip && *m == mac) {
            self.last_ok = Some((ip, mac));
            return;
        }
        self.check_source_slow(ip, port, mac);
    }

    /// A frame whose source MAC is not the one known for its IP address:
    /// learned only from a sender the endpoint may learn (anyone without a
    /// configured peer, else only the peer's IP address and port) and only
    /// when the kernel's neighbour table agrees; counted in
    /// [`FrameStats::mac_mismatch`] when it disagrees with the table or
    /// with the address already known.
    #[cold]
    fn check_source_slow(&mut self, ip: Ipv4Addr, port: u16, mac: ethernet::Address) {
        let entry = self.macs.iter().position(|(i, _)| *i == ip);
        let known = entry.map(|k| self.macs[k].1);
        let may_learn = self
            .default_peer
            .is_none_or(|p| *p.ip() == ip && p.port() == port);
        if !may_learn {
            if known.is_some() {
                self.stats.mac_mismatch += 1;
            }
            return;
        }
        // A disagreement with an address already believed, or a sender the
        // table had no entry for: read the table again, but at most every
        // RECHECK_INTERVAL for this address (for all senders not in the
        // cache together), so neither a flood of forged frames nor a
        // stream from a sender the table does not know costs a lookup
        // each, and a flood claiming one address delays no other's.
        let now = Instant::now();
        let checked = match entry {
            Some(k) => &mut self.mac_checked[k],
            None => &mut self.unknown_checked,
        };
        if checked.is_some_and(|t| now.duration_since(t) < RECHECK_INTERVAL) {
            if known.is_some() {
                self.stats.mac_mismatch += 1;
            }
            return;
        }
        *checked = Some(now);
        match self.neighbours.table_mac(&self.iface, ip) {
            Ok(Some(table)) if table == mac => self.learn(ip, mac),
            Ok(Some(table)) => {
                self.learn(ip, table);
                self.stats.mac_mismatch += 1;
            }
            // No entry (or no answer): nothing is learned; an answer
            // resolves the address through the table. A disagreement with
            // the address learned earlier is still one.
            Ok(None) | Err(_) => {
                if known.is_some() {
                    self.stats.mac_mismatch += 1;
                }
            }
        }
    }

    #[inline]
    fn learn(&mut self, ip: Ipv4Addr, mac: ethernet::Address) {
        // The trusted addresses change (a replacement or an eviction).
        self.last_ok = None;
        // Learned from the table just read: the entry's re-check is timed
        // from now.
        let now = Some(Instant::now());
        if let Some(k) = self.macs.iter().position(|(i, _)| *i == ip) {
            self.macs[k].1 = mac;
            self.mac_checked[k] = now;
            return;
        }
        self.macs[self.mac_next] = (ip, mac);
        self.mac_checked[self.mac_next] = now;
        self.mac_next = (self.mac_next + 1) % MAC_CACHE;
    }

    /// Looks at one received frame of `wire_len` bytes on the wire (more
    /// than `frame.len()` when the ring truncated it): the UDP payload and
    /// its sender when it is a datagram for us, else `None` with the reason
    /// counted. `verify_udp`: whether the UDP checksum still needs checking.
    #[inline]
    pub fn accept<'a>(
        &mut self,
        frame: &'a [u8],
        wire_len: usize,
        udp: UdpCheck,
    ) -> Option<(&'a [u8], SocketAddrV4)> {
        self.stats.rx_frames += 1;
        if wire_len > frame.len() {
            self.stats.oversized += 1;
            return None;
        }
        let checks = Checks {
            ip_header: true,
            udp: udp != UdpCheck::Skip,
        };
        let mut parsed = wire_udp::parse_frame(frame, checks);
        if udp == UdpCheck::VerifyOrPartial && parsed == Err(Reject::UdpChecksum) {
            let unchecked = wire_udp::parse_frame(frame, Checks::NONE);
            if let Ok(u) = unchecked
                && partial_checksum(frame, &u)
            {
                self.stats.udp_partial += 1;
                parsed = unchecked;
            }
        }
        match parsed {
            Ok(u)
                if u.dst_port == self.local.port()
                    && (u.dst_ip == *self.local.ip() || Some(u.dst_ip) == self.group) =>
            {
                self.check_source(u.src_ip, u.src_port, u.src_mac);
                self.stats.delivered += 1;
                Some((u.payload, SocketAddrV4::new(u.src_ip, u.src_port)))
            }
            Ok(_) => {
                self.stats.other += 1;
                None
            }
            Err(r) => {
                self.stats.count(r);
                None
            }
        }
    }

    /// Who computes the checksums of the frames sent from now on (the
    /// default: [`TxChecksum::Software`]).
    pub fn set_tx_checksum(&mut self, c: TxChecksum) {
        self.tx_checksum = c;
    }

    /// Who computes the checksums of the frames sent.
    #[must_use]
    pub fn tx_checksum(&self) -> TxChecksum {
        self.tx_checksum
    }

    /// Writes the frame carrying `m` into `buf`; returns its length.
    ///
    /// # Errors
    /// `EAFNOSUPPORT` for an IPv6 destination, `EDESTADDRREQ` without a
    /// destination or default peer, `EMSGSIZE` for a message over
    /// [`Self::max_message`] or a `buf` too short, `EHOSTUNREACH` when the
    /// destination's MAC address cannot be resolved.
    #[inline]
    pub fn emit(&mut self, buf: &mut [u8], m: &TxMsg<'_>) -> Result<usize, SyscallError> {
        if m.data.len() > self.max_message {
            return Err(too_long());
        }
        let spec = self.prepare(m.to)?;
        self.emit_with(buf, &spec, |p| {
            p[..m.data.len()].copy_from_slice(m.data);
            m.data.len()
        })
    }

    /// The frame headers for a message to `to` (the default peer when
    /// `None`): checks the destination and finds its MAC address (from the
    /// cache; the kernel's neighbour table on a miss).
    ///
    /// # Errors
    /// As [`Self::emit`], except `EMSGSIZE`.
    #[inline]
    pub fn prepare(&mut self, to: Option<SocketAddr>) -> Result<FrameSpec, SyscallError> {
        let to = self.destination(to)?;
        let dst_mac = self.mac_for(*to.ip()).map_err(|_| {
            SyscallError::from_errno(
                "layer-2 send (no ARP answer from the destination)",
                libc::EHOSTUNREACH,
            )
        })?;
        Ok(FrameSpec::new(
            self.iface.mac,
            dst_mac,
            *self.local.ip(),
            *to.ip(),
            self.local.port(),
            to.port(),
        ))
    }

    /// Builds a frame in `buf` with headers from `spec` around a payload
    /// that `fill` writes in place (it gets the payload area, at most
    /// [`Self::max_message`] bytes, and returns the length it wrote);
    /// returns the frame length.
    ///
    /// # Errors
    /// `EMSGSIZE` when `buf` has no room for the headers or `fill` claims
    /// more than the area it was given.
    #[inline]
    pub fn emit_with(
        &mut self,
        buf: &mut [u8],
        spec: &FrameSpec,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize, SyscallError> {
        let at = spec.header_len();
        let room = buf.len().saturating_sub(at).min(self.max_message);
        if buf.len() < at {
            return Err(too_long());
        }
        let n = fill(&mut buf[at..at + room]);
        if n > room {
            return Err(too_long());
        }
        let len = match self.tx_checksum {
            TxChecksum::Software => {
                wire_udp::emit_frame_headers(buf, spec, n).map_err(|_| too_long())?
            }
            TxChecksum::Offloaded => {
                let spec = FrameSpec {
                    udp_checksum: false,
                    ..*spec
                };
                let len = wire_udp::emit_frame_headers(buf, &spec, n).map_err(|_| too_long())?;
                leave_checksums_to_device(&mut buf[..len], &spec, n);
                len
            }
        };
        self.stats.tx_frames += 1;
        Ok(len)
    }

    /// The destination of a message to `to`: IPv4, and known.
    ///
    /// # Errors
    /// `EAFNOSUPPORT` for IPv6, `EDESTADDRREQ` without `to` or a default peer.
    #[inline]
    pub fn destination(&self, to: Option<SocketAddr>) -> Result<SocketAddrV4, SyscallError> {
        match to {
            Some(SocketAddr::V4(a)) => Ok(a),
            Some(SocketAddr::V6(_)) => Err(SyscallError::from_errno(
                "layer-2 send (IPv6 destination)",
                libc::EAFNOSUPPORT,
            )),
            None => self.default_peer.ok_or(SyscallError::from_errno(
                "layer-2 send (no peer= and no destination)",
                libc::EDESTADDRREQ,
            )),
        }
    }
}

fn too_long() -> SyscallError {
    SyscallError::from_errno(
        "layer-2 send (message longer than a ring frame or the MTU)",
        libc::EMSGSIZE,
    )
}

/// Leaves the checksums of a frame just built from `spec` for the device
/// to finish: IPv4 header checksum 0, UDP checksum field = the folded
/// pseudo-header sum (what `rte_ipv4_phdr_cksum` gives).
fn leave_checksums_to_device(frame: &mut [u8], spec: &FrameSpec, payload_len: usize) {
    let ip_at = spec.header_len() - wire_udp::HEADER_LEN - ipv4::HEADER_LEN;
    ipv4::Packet::new_unchecked(&mut frame[ip_at..]).set_checksum(0);
    // At most MAX_PAYLOAD_LEN: checked by emit_frame_headers.
    let udp_len = (wire_udp::HEADER_LEN + payload_len) as u16;
    let pseudo = hftnet_wire::checksum::pseudo_header_v4(
        spec.src_ip,
        spec.dst_ip,
        ipv4::Protocol::Udp,
        udp_len,
    );
    wire_udp::Packet::new_unchecked(&mut frame[ip_at + ipv4::HEADER_LEN..]).set_checksum(pseudo);
}

/// True when the UDP checksum of `u` (parsed from `frame`) holds exactly
/// the folded pseudo-header sum, as a device leaves it before finishing it.
fn partial_checksum(frame: &[u8], u: &wire_udp::UdpFrame<'_>) -> bool {
    let at = u.payload_offset - 2;
    let Some(field) = frame.get(at..at + 2) else {
        return false;
    };
    let field = u16::from_be_bytes([field[0], field[1]]);
    let Ok(len) = u16::try_from(u.payload.len() + wire_udp::HEADER_LEN) else {
        return false;
    };
    let pseudo = hftnet_wire::checksum::pseudo_header_v4(
        u.src_ip,
        u.dst_ip,
        hftnet_wire::ipv4::Protocol::Udp,
        len,
    );
    field == pseudo || (pseudo == 0xffff && field == 0) || (pseudo == 0 && field == 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hftnet_wire::udp::emit_frame;

    /// A neighbour table the test writes: `(ip, mac)` entries, and the
    /// lookups made.
    #[derive(Debug, Clone, Default)]
    struct Table(std::sync::Arc<std::sync::Mutex<TableState>>);

    /// The entries, and the number of lookups.
    type TableState = (Vec<(Ipv4Addr, ethernet::Address)>, u32);

    impl Table {
        fn set(&self, ip: Ipv4Addr, mac: ethernet::Address) {
            let mut t = self.0.lock().unwrap();
            t.0.retain(|(i, _)| *i != ip);
            t.0.push((ip, mac));
        }
        fn lookups(&self) -> u32 {
            self.0.lock().unwrap().1
        }
    }

    impl Neighbours for Table {
        fn resolve(
            &mut self,
            iface: &L2Iface,
            ip: Ipv4Addr,
            _: Duration,
        ) -> Result<ethernet::Address, l2::L2Error> {
            self.table_mac(iface, ip)?.ok_or(l2::L2Error::Unresolved {
                ip,
                dst: ip,
                iface: iface.name.clone(),
                waited: Duration::ZERO,
                failed: true,
            })
        }
        fn table_mac(
            &mut self,
            _: &L2Iface,
            ip: Ipv4Addr,
        ) -> Result<Option<ethernet::Address>, l2::L2Error> {
            let mut t = self.0.lock().unwrap();
            t.1 += 1;
            Ok(t.0.iter().find(|(i, _)| *i == ip).map(|(_, m)| *m))
        }
    }

    const CLIENT_MAC: ethernet::Address = ethernet::Address([2, 0, 0, 0, 0, 1]);
    const FORGED_MAC: ethernet::Address = ethernet::Address([2, 0x66, 0x66, 0x66, 0x66, 0x66]);
    const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    fn endpoint() -> UdpOverEthernet {
        let table = Table::default();
        table.set(CLIENT_IP, CLIENT_MAC);
        endpoint_with(None, table)
    }

    fn endpoint_with(peer: Option<SocketAddrV4>, table: Table) -> UdpOverEthernet {
        let iface = L2Iface {
            name: "veth0".into(),
            index: 2,
            mac: ethernet::Address([2, 0, 0, 0, 0, 2]),
            ipv4: Some((Ipv4Addr::new(198, 18, 0, 2), 24)),
            mtu: 1500,
            up: true,
        };
        UdpOverEthernet::new(
            iface,
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 9000),
            Some(Ipv4Addr::new(239, 1, 1, 1)),
            peer,
            2000,
            Box::new(table),
        )
    }

    /// A frame to our 198.18.0.2:9000 from `src_mac` and 198.18.0.1:`port`.
    fn frame_from(src_mac: ethernet::Address, port: u16, payload: &[u8]) -> Vec<u8> {
        let spec = FrameSpec::new(
            src_mac,
            ethernet::Address([2, 0, 0, 0, 0, 2]),
            CLIENT_IP,
            Ipv4Addr::new(198, 18, 0, 2),
            port,
            9000,
        );
        let mut b = vec![0; 1600];
        let n = emit_frame(&mut b, &spec, payload).unwrap();
        b.truncate(n);
        b
    }

    /// The destination MAC of an answer to 198.18.0.1:4000.
    fn answer_mac(e: &mut UdpOverEthernet) -> ethernet::Address {
        let mut out = [0u8; 100];
        let to = Some(SocketAddr::from((CLIENT_IP, 4000)));
        let n = e.emit(&mut out, &TxMsg { data: b"back", to }).unwrap();
        wire_udp::parse_frame(&out[..n], Checks::ALL)
            .unwrap()
            .dst_mac
    }

    #[test]
    fn a_forged_source_mac_does_not_redirect_answers() {
        // A server (no peer=): the first frame is checked against the table.
        let table = Table::default();
        table.set(CLIENT_IP, CLIENT_MAC);
        let mut e = endpoint_with(None, table.clone());
        let real = frame_from(CLIENT_MAC, 4000, b"real");
        assert!(e.accept(&real, real.len(), UdpCheck::Verify).is_some());
        assert_eq!(table.lookups(), 1, "first contact reads the table");
        assert!(e.accept(&real, real.len(), UdpCheck::Verify).is_some());
        assert_eq!(table.lookups(), 1, "a known sender costs no lookup");
        let forged = frame_from(FORGED_MAC, 4000, b"forged");
        let (p, _) = e.accept(&forged, forged.len(), UdpCheck::Verify).unwrap();
        assert_eq!(p, b"forged", "the datagram itself is delivered");
        assert_eq!(e.stats.mac_mismatch, 1);
        assert_eq!(answer_mac(&mut e), CLIENT_MAC, "not redirected");
        // A flood of forged frames is counted without a lookup each.
        let before = table.lookups();
        for _ in 0..100 {
            e.accept(&forged, forged.len(), UdpCheck::Verify).unwrap();
        }
        assert!(table.lookups() <= before + 1, "{}", table.lookups());
        assert_eq!(e.stats.mac_mismatch, 101);
        assert_eq!(answer_mac(&mut e), CLIENT_MAC);

        // First contact by a forger: the table's address wins, counted.
        let table = Table::default();
        table.set(CLIENT_IP, CLIENT_MAC);
        let mut e = endpoint_with(None, table);
        e.accept(&forged, forged.len(), UdpCheck::Verify).unwrap();
        assert_eq!(e.stats.mac_mismatch, 1);
        assert_eq!(answer_mac(&mut e), CLIENT_MAC);

        // No entry in the table: nothing learned, nothing counted; the
        // answer resolves through the table (here it has learned the entry
        // since).
        let table = Table::default();
        let mut e = endpoint_with(None, table.clone());
        e.accept(&forged, forged.len(), UdpCheck::Verify).unwrap();
        assert_eq!(e.stats.mac_mismatch, 0);
        table.set(CLIENT_IP, CLIENT_MAC);
        assert_eq!(answer_mac(&mut e), CLIENT_MAC);
    }

    #[test]
    fn a_sender_the_table_does_not_know_costs_no_lookup_per_frame() {
        let table = Table::default();
        let mut e = endpoint_with(None, table.clone());
        let real = frame_from(CLIENT_MAC, 4000, b"real");
        for _ in 0..1000 {
            e.accept(&real, real.len(), UdpCheck::Verify).unwrap();
        }
        assert_eq!(table.lookups(), 1, "one read per interval, not per frame");
        assert_eq!(e.stats.mac_mismatch, 0);
        // Once the kernel knows it, the sender is learned on the next read.
        table.set(CLIENT_IP, CLIENT_MAC);
        std::thread::sleep(RECHECK_INTERVAL);
        e.accept(&real, real.len(), UdpCheck::Verify).unwrap();
        assert_eq!(table.lookups(), 2);
        for _ in 0..1000 {
            e.accept(&real, real.len(), UdpCheck::Verify).unwrap();
        }
        assert_eq!(table.lookups(), 2, "a known sender costs no lookup");
        assert_eq!(e.stats.mac_mismatch, 0);
    }

    #[test]
    fn the_last_sender_shortcut_follows_a_change_of_address() {
        let table = Table::default();
        table.set(CLIENT_IP, CLIENT_MAC);
        let mut e = endpoint_with(None, table.clone());
        let old = frame_from(CLIENT_MAC, 4000, b"old");
        e.accept(&old, old.len(), UdpCheck::Verify).unwrap();
        e.accept(&old, old.len(), UdpCheck::Verify).unwrap();
        // The peer moved, and the kernel agrees: the new address is learned.
        let new_mac = ethernet::Address([2, 0, 0, 0, 0, 0x11]);
        table.set(CLIENT_IP, new_mac);
        std::thread::sleep(RECHECK_INTERVAL);
        let moved = frame_from(new_mac, 4000, b"moved");
        e.accept(&moved, moved.len(), UdpCheck::Verify).unwrap();
        assert_eq!(e.stats.mac_mismatch, 0);
        // A frame with the old address now disagrees: counted, not taken
        // for the last sender that agreed.
        e.accept(&old, old.len(), UdpCheck::Verify).unwrap();
        assert_eq!(e.stats.mac_mismatch, 1);
        assert_eq!(answer_mac(&mut e), new_mac);
        // Pinned: the pinned address is the one that agrees.
        let peer = SocketAddrV4::new(CLIENT_IP, 4000);
        let table = Table::default();
        table.set(CLIENT_IP, CLIENT_MAC);
        let mut p = endpoint_with(Some(peer), table);
        let real = frame_from(CLIENT_MAC, 4000, b"real");
        p.accept(&real, real.len(), UdpCheck::Verify).unwrap();
        assert_eq!(p.stats.mac_mismatch, 0);
        p.pin_peer_mac(new_mac).unwrap();
        p.accept(&real, real.len(), UdpCheck::Verify).unwrap();
        assert_eq!(p.stats.mac_mismatch, 1);
    }

    /// A frame from `ip` (port 4000) with source MAC `src_mac`.
    fn frame_from_ip(src_mac: ethernet::Address, ip: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let spec = FrameSpec::new(
            src_mac,
            ethernet::Address([2, 0, 0, 0, 0, 2]),
            ip,
            Ipv4Addr::new(198, 18, 0, 2),
            4000,
            9000,
        );
        let mut b = vec![0; 1600];
        let n = emit_frame(&mut b, &spec, payload).unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn a_forged_flood_for_one_sender_delays_no_recheck_of_another() {
        let other_ip = Ipv4Addr::new(198, 18, 0, 3);
        let other_mac = ethernet::Address([2, 0, 0, 0, 0, 3]);
        let table = Table::default();
        table.set(CLIENT_IP, CLIENT_MAC);
        table.set(other_ip, other_mac);
        let mut e = endpoint_with(None, table.clone());
        let real = frame_from(CLIENT_MAC, 4000, b"real");
        e.accept(&real, real.len(), UdpCheck::Verify).unwrap();
        assert_eq!(e.mac_for(other_ip).unwrap(), other_mac);
        assert_eq!(table.lookups(), 2);
        // The client really moves; meanwhile forged frames claiming the
        // other sender's address keep coming, one just before the client's
        // first frame from its new address.
        let new_mac = ethernet::Address([2, 0, 0, 0, 0, 0x11]);
        table.set(CLIENT_IP, new_mac);
        std::thread::sleep(RECHECK_INTERVAL);
        let forged = frame_from_ip(FORGED_MAC, other_ip, b"forged");
        for _ in 0..1000 {
            e.accept(&forged, forged.len(), UdpCheck::Verify).unwrap();
        }
        assert_eq!(
            table.lookups(),
            3,
            "the flood costs one lookup per interval"
        );
        assert_eq!(e.stats.mac_mismatch, 1000);
        let moved = frame_from(new_mac, 4000, b"moved");
        e.accept(&moved, moved.len(), UdpCheck::Verify).unwrap();
        assert_eq!(table.lookups(), 4, "the client's own re-check is due");
        assert_eq!(e.stats.mac_mismatch, 1000, "the move agrees with the table");
        assert_eq!(answer_mac(&mut e), new_mac);
        assert_eq!(e.mac_for(other_ip).unwrap(), other_mac);
        // Forged frames from senders not in the cache share one interval.
        for i in 0..1000u32 {
            let ip = Ipv4Addr::from(0xc612_1000 + i);
            let f = frame_from_ip(FORGED_MAC, ip, b"stranger");
            e.accept(&f, f.len(), UdpCheck::Verify).unwrap();
        }
        assert!(table.lookups() <= 5, "{} lookups", table.lookups());
    }

    #[test]
    fn a_peer_whose_address_really_changed_is_followed() {
        let table = Table::default();
        table.set(CLIENT_IP, CLIENT_MAC);
        let mut e = endpoint_with(None, table.clone());
        let real = frame_from(CLIENT_MAC, 4000, b"real");
        e.accept(&real, real.len(), UdpCheck::Verify).unwrap();
        let new_mac = ethernet::Address([2, 0, 0, 0, 0, 0x11]);
        table.set(CLIENT_IP, new_mac);
        std::thread::sleep(RECHECK_INTERVAL);
        let moved = frame_from(new_mac, 4000, b"moved");
        e.accept(&moved, moved.len(), UdpCheck::Verify).unwrap();
        assert_eq!(e.stats.mac_mismatch, 0, "the table agrees with the new one");
        assert_eq!(answer_mac(&mut e), new_mac);
    }

    #[test]
    fn a_client_learns_only_from_its_peer() {
        let table = Table::default();
        table.set(CLIENT_IP, CLIENT_MAC);
        let peer = SocketAddrV4::new(CLIENT_IP, 4000);
        let mut e = endpoint_with(Some(peer), table.clone());
        assert_eq!(e.mac_for(CLIENT_IP).unwrap(), CLIENT_MAC);
        // Another port of the peer's address, forged: not learned, counted.
        let other_port = frame_from(FORGED_MAC, 4001, b"x");
        e.accept(&other_port, other_port.len(), UdpCheck::Verify)
            .unwrap();
        assert_eq!(e.stats.mac_mismatch, 1);
        // Even if the table said so, a frame from another port is no proof.
        table.set(CLIENT_IP, FORGED_MAC);
        std::thread::sleep(RECHECK_INTERVAL);
        e.accept(&other_port, other_port.len(), UdpCheck::Verify)
            .unwrap();
        assert_eq!(answer_mac(&mut e), CLIENT_MAC);
        assert_eq!(e.stats.mac_mismatch, 2);
    }

    #[test]
    fn a_pinned_peer_mac_is_never_replaced() {
        let table = Table::default();
        table.set(CLIENT_IP, FORGED_MAC);
        let peer = SocketAddrV4::new(CLIENT_IP, 4000);
        let mut e = endpoint_with(Some(peer), table.clone());
        e.pin_peer_mac(CLIENT_MAC).unwrap();
        assert_eq!(e.pinned_peer_mac(), Some(CLIENT_MAC));
        assert_eq!(answer_mac(&mut e), CLIENT_MAC, "the table is not asked");
        let forged = frame_from(FORGED_MAC, 4000, b"forged");
        e.accept(&forged, forged.len(), UdpCheck::Verify).unwrap();
        let real = frame_from(CLIENT_MAC, 4000, b"real");
        e.accept(&real, real.len(), UdpCheck::Verify).unwrap();
        assert_eq!(e.stats.mac_mismatch, 1);
        assert_eq!(answer_mac(&mut e), CLIENT_MAC);
        assert_eq!(table.lookups(), 0);
        // Without a peer there is nothing to pin.
        let mut server = endpoint_with(None, Table::default());
        let err = server.pin_peer_mac(CLIENT_MAC).unwrap_err().to_string();
        assert!(
            err.contains("peer_mac") && err.contains("peer=IP:PORT"),
            "{err}"
        );
    }

    #[test]
    fn peer_mac_parameter() {
        let parse = |q: &str| {
            let uri = crate::uri::Uri::parse(&format!("packet://veth0?{q}")).unwrap();
            let mut p = uri.params(&[&["peer", "peer_mac"]]);
            let peer = p
                .get_with("peer", "peer", |v| v.parse::<SocketAddrV4>().ok())
                .unwrap();
            peer_mac_param(&mut p, peer).map_err(|e| e.to_string())
        };
        assert_eq!(
            parse("peer=198.18.0.1:1&peer_mac=02:00:00:00:00:0A"),
            Ok(Some(ethernet::Address([2, 0, 0, 0, 0, 10])))
        );
        assert_eq!(parse("peer=198.18.0.1:1"), Ok(None));
        for bad in [
            "zz:00:00:00:00:01",
            "02:00:00:00:00",
            "02:00:00:00:00:01:03",
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
            "",
        ] {
            let e = parse(&format!("peer=198.18.0.1:1&peer_mac={bad}")).unwrap_err();
            assert!(
                e.contains("\"peer_mac\"") && e.contains("unicast MAC address"),
                "{bad}: {e}"
            );
        }
        let e = parse("peer_mac=02:00:00:00:00:01").unwrap_err();
        assert!(
            e.contains("\"peer_mac\"") && e.contains("peer=IP:PORT"),
            "{e}"
        );
    }

    fn frame(dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
        let spec = FrameSpec::new(
            ethernet::Address([2, 0, 0, 0, 0, 1]),
            ethernet::Address([2, 0, 0, 0, 0, 2]),
            Ipv4Addr::new(198, 18, 0, 1),
            dst,
            4000,
            port,
        );
        let mut b = vec![0; 1600];
        let n = emit_frame(&mut b, &spec, payload).unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn ring_wait_per_strategy() {
        let soon = Some(Instant::now() + Duration::from_secs(60));
        let mut b = RingWait::new(RxStrategy::Block, soon);
        assert!(matches!(b.after_empty_poll(), Wait::Sleep(Some(_))));
        let mut a = RingWait::new(RxStrategy::Adaptive { spins: 3 }, soon);
        assert_eq!(
            (a.after_empty_poll(), a.after_empty_poll()),
            (Wait::Again, Wait::Again)
        );
        assert!(matches!(a.after_empty_poll(), Wait::Sleep(Some(_))));
        assert!(
            matches!(a.after_empty_poll(), Wait::Sleep(Some(_))),
            "stays asleep"
        );
        let mut s = RingWait::new(RxStrategy::Spin, Some(Instant::now()));
        let timed_out = (0..64).map(|_| s.after_empty_poll()).last();
        assert_eq!(timed_out, Some(Wait::TimedOut));
        let mut forever = RingWait::new(RxStrategy::Block, None);
        assert_eq!(forever.after_empty_poll(), Wait::Sleep(None));
    }

    #[test]
    fn accepts_ours_counts_the_rest_and_answers_without_lookup() {
        let mut e = endpoint();
        assert_eq!(e.max_message(), 1472, "capped by the MTU");
        let me = Ipv4Addr::new(198, 18, 0, 2);
        let f = frame(me, 9000, b"hello");
        let (p, from) = e.accept(&f, f.len(), UdpCheck::Verify).unwrap();
        assert_eq!(p, b"hello");
        assert_eq!(from, "198.18.0.1:4000".parse().unwrap());
        let g = frame(Ipv4Addr::new(239, 1, 1, 1), 9000, b"group");
        assert_eq!(e.accept(&g, g.len(), UdpCheck::Verify).unwrap().0, b"group");
        let other = frame(me, 9001, b"x");
        assert!(e.accept(&other, other.len(), UdpCheck::Verify).is_none());
        let mut bad = frame(me, 9000, b"sum");
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(e.accept(&bad, n, UdpCheck::Verify).is_none());
        assert!(e.accept(&bad, n, UdpCheck::VerifyOrPartial).is_none());
        assert!(
            e.accept(&bad, n, UdpCheck::Skip).is_some(),
            "checksum skipped"
        );
        // A checksum holding only the pseudo-header sum: left partial.
        let mut partial = frame(me, 9000, b"partial");
        let at = partial.len() - 7 - 2;
        let pseudo = hftnet_wire::checksum::pseudo_header_v4(
            Ipv4Addr::new(198, 18, 0, 1),
            me,
            hftnet_wire::ipv4::Protocol::Udp,
            8 + 7,
        );
        partial[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
        assert!(
            e.accept(&partial, partial.len(), UdpCheck::Verify)
                .is_none()
        );
        let (p, _) = e
            .accept(&partial, partial.len(), UdpCheck::VerifyOrPartial)
            .unwrap();
        assert_eq!(p, b"partial");
        assert!(
            e.accept(&f[..20], f.len(), UdpCheck::Verify).is_none(),
            "oversized"
        );
        assert!(e.accept(&f[..30], 30, UdpCheck::Verify).is_none(), "runt");
        let s = e.stats;
        assert_eq!((s.rx_frames, s.delivered, s.dropped()), (10, 4, 6), "{s:?}");
        assert_eq!(s.udp_partial, 1);
        assert_eq!(
            (s.other, s.udp_checksum, s.oversized, s.truncated),
            (1, 3, 1, 1)
        );

        // The sender's MAC was learned: the answer needs no neighbour table.
        let mut out = [0u8; 100];
        let to = Some(SocketAddr::from(from));
        let n = e.emit(&mut out, &TxMsg { data: b"back", to }).unwrap();
        let u = wire_udp::parse_frame(&out[..n], Checks::ALL).unwrap();
        assert_eq!(u.dst_mac, ethernet::Address([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            (u.src_port, u.dst_port, u.payload),
            (9000, 4000, &b"back"[..])
        );
        let e6 = e
            .emit(
                &mut out,
                &TxMsg {
                    data: b"x",
                    to: Some("[::1]:1".parse().unwrap()),
                },
            )
            .unwrap_err();
        assert_eq!(e6.errno(), Some(libc::EAFNOSUPPORT));
        let none = e
            .emit(
                &mut out,
                &TxMsg {
                    data: b"x",
                    to: None,
                },
            )
            .unwrap_err();
        assert_eq!(none.errno(), Some(libc::EDESTADDRREQ));
        let big = vec![0u8; 1473];
        let long = e.emit(&mut out, &TxMsg { data: &big, to }).unwrap_err();
        assert_eq!(long.errno(), Some(libc::EMSGSIZE));
    }

    /// Offloaded: IPv4 checksum 0, the UDP field the pseudo-header sum; a
    /// device finishing both as DPDK's offload does (the UDP sum taken
    /// over the field as left, complemented) gives the software frame.
    #[test]
    fn offloaded_checksums_are_left_for_the_device() {
        let mut e = endpoint();
        let to = Some(SocketAddr::from(([198, 18, 0, 1], 4000)));
        let spec = e.prepare(to).unwrap();
        let mut soft = [0u8; 100];
        let n = e.emit_with(&mut soft, &spec, |p| {
            p[..5].copy_from_slice(b"hello");
            5
        });
        let n = n.unwrap();
        assert_eq!(e.tx_checksum(), TxChecksum::Software);
        e.set_tx_checksum(TxChecksum::Offloaded);
        assert_eq!(e.tx_checksum().as_str(), "offloaded");
        let mut off = [0u8; 100];
        let m = e
            .emit_with(&mut off, &spec, |p| {
                p[..5].copy_from_slice(b"hello");
                5
            })
            .unwrap();
        assert_eq!(m, n);
        assert_eq!(&off[24..26], &[0, 0], "IPv4 header checksum left 0");
        let pseudo = hftnet_wire::checksum::pseudo_header_v4(
            Ipv4Addr::new(198, 18, 0, 2),
            Ipv4Addr::new(198, 18, 0, 1),
            ipv4::Protocol::Udp,
            8 + 5,
        );
        assert_eq!(
            off[40..42],
            pseudo.to_be_bytes(),
            "UDP field: pseudo-header sum"
        );
        assert!(wire_udp::parse_frame(&off[..m], Checks::ALL).is_err());
        // What the device does.
        ipv4::Packet::new_unchecked(&mut off[14..]).fill_checksum();
        let udp = !hftnet_wire::checksum::data(&off[34..m]);
        off[40..42].copy_from_slice(&udp.to_be_bytes());
        assert_eq!(off[..m], soft[..n]);
        assert!(wire_udp::parse_frame(&off[..m], Checks::ALL).is_ok());
        assert_eq!(e.stats.tx_frames, 2);
    }
}
