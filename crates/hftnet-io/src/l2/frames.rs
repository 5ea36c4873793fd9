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
//! group) and port; counts every other frame under its reason; and learns
//! the sender's MAC address, so answers need no lookup. Transmit:
//! [`UdpOverEthernet::emit`] writes the Ethernet, IPv4 and UDP headers and
//! both checksums, computed in software, around the payload. Neither
//! allocates except on a peer's first contact.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_wire::ethernet;
use hftnet_wire::udp::{self as wire_udp, Checks, FrameSpec, Reject};
use serde::Serialize;

use crate::Role;
use crate::error::OpenError;
use crate::l2::{self, L2Iface};
use crate::transport::{RxStrategy, TxMsg};
use crate::uri::UriError;

/// Bytes of Ethernet, IPv4 and UDP headers in a frame sent by a layer-2 backend.
pub const HEADERS: usize = ethernet::HEADER_LEN + 20 + 8;
/// How long resolving a peer's MAC address may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(1);
/// Peers whose MAC address is remembered.
const MAC_CACHE: usize = 8;

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
             other {}); {} with a partial UDP checksum; {} sent",
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
            self.tx_frames
        )
    }
}

/// A UDP endpoint spoken in Ethernet frames: our interface, address and
/// port, the peers' MAC addresses, and the frame counters.
#[derive(Debug)]
pub struct UdpOverEthernet {
    iface: L2Iface,
    local: SocketAddrV4,
    group: Option<Ipv4Addr>,
    default_peer: Option<SocketAddrV4>,
    macs: [(Ipv4Addr, ethernet::Address); MAC_CACHE],
    mac_next: usize,
    max_message: usize,
    /// The counters.
    pub stats: FrameStats,
}

impl UdpOverEthernet {
    /// An endpoint at `local` on `iface`, also accepting datagrams to
    /// `group` (a multicast group joined by the caller), sending to
    /// `default_peer` unless told otherwise, carrying at most `max_message`
    /// bytes (further capped by the interface's MTU).
    #[must_use]
    pub fn new(
        iface: L2Iface,
        local: SocketAddrV4,
        group: Option<Ipv4Addr>,
        default_peer: Option<SocketAddrV4>,
        max_message: usize,
    ) -> Self {
        let mtu_payload = (iface.mtu as usize).saturating_sub(28);
        Self {
            iface,
            local,
            group,
            default_peer,
            macs: [(Ipv4Addr::UNSPECIFIED, ethernet::Address([0; 6])); MAC_CACHE],
            mac_next: 0,
            max_message: max_message.min(mtu_payload),
            stats: FrameStats::default(),
        }
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
        if let Some((_, mac)) = self.macs.iter().find(|(i, _)| *i == ip) {
            return Ok(*mac);
        }
        let hop = l2::resolve(&self.iface, ip, RESOLVE_TIMEOUT)?;
        self.learn(ip, hop.dst_mac);
        Ok(hop.dst_mac)
    }

    #[inline]
    fn learn(&mut self, ip: Ipv4Addr, mac: ethernet::Address) {
        if let Some(e) = self.macs.iter_mut().find(|(i, _)| *i == ip) {
            e.1 = mac;
            return;
        }
        self.macs[self.mac_next] = (ip, mac);
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
                if !self
                    .macs
                    .iter()
                    .any(|(i, m)| *i == u.src_ip && *m == u.src_mac)
                {
                    self.learn(u.src_ip, u.src_mac);
                }
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
        let len = wire_udp::emit_frame_headers(buf, spec, n).map_err(|_| too_long())?;
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

    fn endpoint() -> UdpOverEthernet {
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
            None,
            2000,
        )
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
}
