//! UDP (RFC 768), and whole Ethernet/IPv4/UDP frames built and read in one
//! call for the kernel-bypass transports ([`emit_frame`], [`parse_frame`]).
//!
//! ```text
//!  0               2               4               6               8
//! +---------------+---------------+---------------+---------------+---------
//! | source port   | dest. port    | length        | checksum      | payload
//! +---------------+---------------+---------------+---------------+---------
//! ```
//!
//! The length covers header and payload; bytes after it are ignored. The
//! checksum covers the IPv4 pseudo-header, the header and the payload; over
//! IPv4 a zero checksum means the sender computed none, and a computed zero
//! is sent as `0xffff`. Checksums are computed in software; a device that
//! left a frame `CHECKSUM_PARTIAL` (veth does) leaves the pseudo-header sum
//! in the field, and [`Packet::fill_checksum`] recomputes it from scratch.
//!
//! Once [`Packet::check_len`] returned `Ok`, no accessor panics.

use core::fmt;
use core::net::Ipv4Addr;

use crate::ethernet::{self, EtherType, VlanTag};
use crate::ipv4::{self, Protocol};
use crate::{Error, Result, checksum};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;
/// The largest payload of a datagram in an IPv4 packet without options.
pub const MAX_PAYLOAD_LEN: usize = ipv4::MAX_PAYLOAD_LEN - HEADER_LEN;

/// A read/write view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures the header and the datagram its length field announces fit,
    /// so no accessor can panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than the header or
    /// than the length field; [`Error::Malformed`] when the length field is
    /// below 8.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.length());
        if l < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < l {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    #[must_use]
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// The destination port.
    #[must_use]
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// The length field: header and payload, in bytes.
    #[must_use]
    pub fn length(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The checksum field (0: none).
    #[must_use]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The end of the datagram, bounded by the buffer.
    fn end(&self) -> usize {
        usize::from(self.length()).min(self.buffer.as_ref().len())
    }

    /// The payload: after the header, up to the length field.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        let end = self.end();
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// The sum over pseudo-header and datagram, checksum field included.
    fn sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let b = self.buffer.as_ref();
        checksum::combine(&[
            checksum::pseudo_header_v4(src, dst, Protocol::Udp, self.length()),
            checksum::data(&b[..self.end()]),
        ])
    }

    /// True when the checksum is right for a datagram from `src` to `dst`,
    /// or is zero (over IPv4: the sender computed none).
    #[must_use]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || self.sum(src, dst) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the source port.
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the length field.
    pub fn set_length(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// The payload, writable; see [`Packet::payload`].
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.end();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }

    /// Computes the checksum from scratch for a datagram from `src` to `dst`
    /// and writes it (a computed zero is written as `0xffff`). Whatever the
    /// field held before — zero, a stale value, or the pseudo-header sum a
    /// `CHECKSUM_PARTIAL` device left — does not matter. Write the length
    /// and the payload first.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = !self.sum(src, dst);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// A UDP header, parsed. The checksum is not part of it: check it with
/// [`Packet::verify_checksum`], which needs the IP addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length (length field − 8).
    pub payload_len: usize,
}

impl Repr {
    /// Reads a header.
    ///
    /// # Errors
    /// As [`Packet::check_len`]: the length field must be at least 8 and
    /// no longer than the buffer.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Self {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: usize::from(p.length()) - HEADER_LEN,
        })
    }

    /// Bytes of header this writes: [`HEADER_LEN`].
    #[must_use]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with a zero checksum ("none", valid over IPv4). To
    /// checksum, write the payload, then call [`Packet::fill_checksum`].
    ///
    /// # Panics
    /// When the buffer is shorter than [`HEADER_LEN`] or `payload_len`
    /// exceeds 65527 (the length field would overflow).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let len = u16::try_from(HEADER_LEN + self.payload_len)
            .expect("UDP payload longer than 65527 bytes");
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_length(len);
        p.set_checksum(0);
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UDP {} -> {} len={}",
            self.src_port, self.dst_port, self.payload_len
        )
    }
}

/// Everything [`emit_frame`] needs to build an Ethernet/IPv4/UDP frame.
///
/// The IPv4 header has no options, Don't Fragment set and ECN 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameSpec {
    /// Source MAC address.
    pub src_mac: ethernet::Address,
    /// Destination MAC address (for a multicast group,
    /// [`ethernet::Address::from_ipv4_multicast`]).
    pub dst_mac: ethernet::Address,
    /// An 802.1Q tag to insert, if any.
    pub vlan: Option<VlanTag>,
    /// Source IPv4 address.
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    pub dst_ip: Ipv4Addr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Time to live (multicast market data is often sent with 1 or a small
    /// value on purpose).
    pub ttl: u8,
    /// Differentiated Services code point (6 bits).
    pub dscp: u8,
    /// IPv4 identification (0 is fine: Don't Fragment is set).
    pub ident: u16,
    /// Whether to compute the UDP checksum; when false the field is 0
    /// ("none", legal over IPv4).
    pub udp_checksum: bool,
}

impl FrameSpec {
    /// A spec with no tag, TTL 64, DSCP 0, ident 0 and the UDP checksum on.
    #[must_use]
    pub const fn new(
        src_mac: ethernet::Address,
        dst_mac: ethernet::Address,
        src_ip: Ipv4Addr,
        dst_ip: Ipv4Addr,
        src_port: u16,
        dst_port: u16,
    ) -> Self {
        Self {
            src_mac,
            dst_mac,
            vlan: None,
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            ttl: 64,
            dscp: 0,
            ident: 0,
            udp_checksum: true,
        }
    }

    /// Bytes of Ethernet, IPv4 and UDP header: where the payload starts.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        let eth = if self.vlan.is_some() {
            ethernet::VLAN_HEADER_LEN
        } else {
            ethernet::HEADER_LEN
        };
        eth + ipv4::HEADER_LEN + HEADER_LEN
    }

    /// The length of a frame carrying `payload_len` bytes (without the
    /// padding to [`ethernet::MIN_FRAME_LEN`] the device adds).
    #[must_use]
    pub const fn frame_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len
    }
}

/// Builds an Ethernet/IPv4/UDP frame carrying `payload` at the start of
/// `buf`, checksums computed in software; returns the frame length. The
/// frame is not padded to the Ethernet minimum: devices do that.
///
/// # Errors
/// [`Error::Malformed`] when `payload` is longer than [`MAX_PAYLOAD_LEN`];
/// [`Error::Truncated`] when `buf` is shorter than
/// [`FrameSpec::frame_len`]. Nothing is written then.
pub fn emit_frame(buf: &mut [u8], spec: &FrameSpec, payload: &[u8]) -> Result<usize> {
    check_room(buf, spec, payload.len())?;
    let at = spec.header_len();
    buf[at..at + payload.len()].copy_from_slice(payload);
    emit_frame_headers(buf, spec, payload.len())
}

/// Like [`emit_frame`] for a payload already in place at
/// `buf[spec.header_len()..]` (written there directly, without a copy):
/// writes the headers in front of it and the checksums; returns the frame
/// length.
///
/// # Errors
/// As [`emit_frame`].
pub fn emit_frame_headers(buf: &mut [u8], spec: &FrameSpec, payload_len: usize) -> Result<usize> {
    check_room(buf, spec, payload_len)?;
    let total = spec.frame_len(payload_len);
    let buf = &mut buf[..total];
    let eth = ethernet::Repr {
        dst_addr: spec.dst_mac,
        src_addr: spec.src_mac,
        vlan: spec.vlan,
        ethertype: EtherType::Ipv4,
    };
    eth.emit(&mut ethernet::Frame::new_unchecked(&mut *buf));
    let ip_at = eth.header_len();
    let ip = ipv4::Repr {
        src_addr: spec.src_ip,
        dst_addr: spec.dst_ip,
        protocol: Protocol::Udp,
        payload_len: HEADER_LEN + payload_len,
        ttl: spec.ttl,
        dscp: spec.dscp,
        ecn: 0,
        ident: spec.ident,
    };
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut buf[ip_at..]));
    let mut udp = Packet::new_unchecked(&mut buf[ip_at + ipv4::HEADER_LEN..]);
    Repr {
        src_port: spec.src_port,
        dst_port: spec.dst_port,
        payload_len,
    }
    .emit(&mut udp);
    if spec.udp_checksum {
        udp.fill_checksum(spec.src_ip, spec.dst_ip);
    }
    Ok(total)
}

fn check_room(buf: &[u8], spec: &FrameSpec, payload_len: usize) -> Result<()> {
    if payload_len > MAX_PAYLOAD_LEN {
        Err(Error::Malformed)
    } else if buf.len() < spec.frame_len(payload_len) {
        Err(Error::Truncated)
    } else {
        Ok(())
    }
}

/// Which checksums [`parse_frame`] verifies. Skip one the device already
/// verified, or one it left partial (a `CHECKSUM_PARTIAL` UDP checksum holds
/// only the pseudo-header sum and would fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checks {
    /// Verify the IPv4 header checksum.
    pub ip_header: bool,
    /// Verify the UDP checksum (a zero checksum always passes).
    pub udp: bool,
}

impl Checks {
    /// Verify both.
    pub const ALL: Self = Self {
        ip_header: true,
        udp: true,
    };
    /// Verify neither.
    pub const NONE: Self = Self {
        ip_header: false,
        udp: false,
    };
}

impl Default for Checks {
    fn default() -> Self {
        Self::ALL
    }
}

/// A plain Ethernet/IPv4/UDP frame, read by [`parse_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpFrame<'a> {
    /// Destination MAC address.
    pub dst_mac: ethernet::Address,
    /// Source MAC address.
    pub src_mac: ethernet::Address,
    /// The 802.1Q tag, if the frame had one.
    pub vlan: Option<VlanTag>,
    /// Source IPv4 address.
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    pub dst_ip: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Differentiated Services code point.
    pub dscp: u8,
    /// IPv4 identification.
    pub ident: u16,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The UDP payload, bounded by the UDP length field.
    pub payload: &'a [u8],
    /// Where the payload starts in the frame.
    pub payload_offset: usize,
}

impl UdpFrame<'_> {
    /// The spec of an answer to this frame: addresses and ports swapped,
    /// same tag, TTL 64, DSCP kept, ident 0, UDP checksum on. For a frame
    /// sent to a multicast or broadcast address, replace `src_ip` (and
    /// `src_mac`) with the host's own before use.
    #[must_use]
    pub const fn reply_spec(&self) -> FrameSpec {
        FrameSpec {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            vlan: self.vlan,
            src_ip: self.dst_ip,
            dst_ip: self.src_ip,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ttl: 64,
            dscp: self.dscp,
            ident: 0,
            udp_checksum: true,
        }
    }
}

/// Why [`parse_frame`] did not return a plain UDP/IPv4 frame. Each reason is
/// worth its own counter; [`Reject::name`] gives it a stable label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// A runt: shorter than its headers, or than the lengths they announce.
    Truncated,
    /// Not IPv4: ARP, IPv6, LLDP... (the EtherType after any tag).
    NotIpv4(EtherType),
    /// Broken headers: IP version not 4, IHL below 5, IPv4 total length
    /// below its header, UDP length below 8.
    Malformed,
    /// The IPv4 header checksum is wrong.
    IpChecksum,
    /// The IPv4 header carries options.
    IpOptions,
    /// An IPv4 fragment.
    Fragment,
    /// IPv4 but not UDP: ICMP, IGMP, TCP...
    NotUdp(Protocol),
    /// The UDP checksum is wrong.
    UdpChecksum,
}

impl Reject {
    /// A short stable label (`"truncated"`, `"not_ipv4"`, ...) for counters.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::NotIpv4(_) => "not_ipv4",
            Self::Malformed => "malformed",
            Self::IpChecksum => "ip_checksum",
            Self::IpOptions => "ip_options",
            Self::Fragment => "fragment",
            Self::NotUdp(_) => "not_udp",
            Self::UdpChecksum => "udp_checksum",
        }
    }
}

impl From<Error> for Reject {
    fn from(e: Error) -> Self {
        match e {
            Error::Truncated => Self::Truncated,
            Error::Malformed => Self::Malformed,
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated frame"),
            Self::NotIpv4(t) => write!(f, "not IPv4 (EtherType {t})"),
            Self::Malformed => f.write_str("malformed IPv4 or UDP header"),
            Self::IpChecksum => f.write_str("bad IPv4 header checksum"),
            Self::IpOptions => f.write_str("IPv4 header with options"),
            Self::Fragment => f.write_str("IPv4 fragment"),
            Self::NotUdp(p) => write!(f, "not UDP ({p})"),
            Self::UdpChecksum => f.write_str("bad UDP checksum"),
        }
    }
}

impl std::error::Error for Reject {}

/// Reads a plain Ethernet/IPv4/UDP frame — at most one VLAN tag, no IP
/// options, not a fragment — verifying the checksums `checks` asks for.
/// Bytes after the IPv4 total length (Ethernet padding) and after the UDP
/// length are ignored.
///
/// # Errors
/// The first [`Reject`] that applies, checked in this order: `Truncated` /
/// `Malformed` (Ethernet, then IPv4 lengths), `NotIpv4`, `IpChecksum`,
/// `IpOptions`, `Fragment`, `NotUdp`, `Truncated` / `Malformed` (UDP),
/// `UdpChecksum`.
pub fn parse_frame(buf: &[u8], checks: Checks) -> core::result::Result<UdpFrame<'_>, Reject> {
    let eth = ethernet::Frame::new_checked(buf)?;
    let et = eth.inner_ethertype();
    if et != EtherType::Ipv4 {
        return Err(Reject::NotIpv4(et));
    }
    let ip_at = eth.header_len();
    let ip = ipv4::Packet::new_checked(&buf[ip_at..])?;
    if checks.ip_header && !ip.verify_checksum() {
        return Err(Reject::IpChecksum);
    }
    if ip.header_len() != ipv4::HEADER_LEN {
        return Err(Reject::IpOptions);
    }
    if ip.is_fragment() {
        return Err(Reject::Fragment);
    }
    let proto = ip.protocol();
    if proto != Protocol::Udp {
        return Err(Reject::NotUdp(proto));
    }
    let udp_at = ip_at + ipv4::HEADER_LEN;
    let ip_end = ip_at + usize::from(ip.total_len());
    let udp = Packet::new_checked(&buf[udp_at..ip_end])?;
    let (src_ip, dst_ip) = (ip.src_addr(), ip.dst_addr());
    if checks.udp && !udp.verify_checksum(src_ip, dst_ip) {
        return Err(Reject::UdpChecksum);
    }
    let payload_offset = udp_at + HEADER_LEN;
    Ok(UdpFrame {
        dst_mac: eth.dst_addr(),
        src_mac: eth.src_addr(),
        vlan: eth.vlan(),
        src_ip,
        dst_ip,
        ttl: ip.ttl(),
        dscp: ip.dscp(),
        ident: ip.ident(),
        src_port: udp.src_port(),
        dst_port: udp.dst_port(),
        payload: &buf[payload_offset..udp_at + usize::from(udp.length())],
        payload_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

    /// smoltcp's UDP test datagram: 48896 -> 53 (DNS), 4 bytes, from
    /// 192.168.1.1 to 192.168.1.2; checksum 0x124d, verified independently.
    static PACKET: [u8; 12] = [
        0xbf, 0x00, 0x00, 0x35, 0x00, 0x0c, 0x12, 0x4d, 0xaa, 0x00, 0x00, 0xff,
    ];
    static PAYLOAD: [u8; 4] = [0xaa, 0x00, 0x00, 0xff];

    fn repr() -> Repr {
        Repr {
            src_port: 48896,
            dst_port: 53,
            payload_len: 4,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.src_port(), 48896);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.length(), 12);
        assert_eq!(p.checksum(), 0x124d);
        assert_eq!(p.payload(), &PAYLOAD);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, Ipv4Addr::new(192, 168, 1, 3)));
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 12];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(48896);
        p.set_dst_port(53);
        p.set_length(12);
        p.set_checksum(0xffff);
        p.payload_mut().copy_from_slice(&PAYLOAD);
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn test_parse() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(repr()));
        assert_eq!(repr().to_string(), "UDP 48896 -> 53 len=4");
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 12];
        let r = repr();
        let mut p = Packet::new_unchecked(&mut buf[..]);
        r.emit(&mut p);
        assert_eq!(p.checksum(), 0, "emit leaves no checksum");
        p.payload_mut().copy_from_slice(&PAYLOAD);
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, PACKET);
        assert_eq!(r.header_len(), 8);
    }

    #[test]
    fn test_lengths() {
        for n in 0..12 {
            assert_eq!(
                Packet::new_checked(&PACKET[..n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
        }
        // Bytes after the length field are not part of the datagram.
        let mut long = [0x55u8; 20];
        long[..12].copy_from_slice(&PACKET);
        let p = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(p.payload(), &PAYLOAD);
        assert!(p.verify_checksum(SRC, DST));
        for l in 0..8 {
            let mut b = PACKET;
            b[5] = l;
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&b[..])),
                Err(Error::Malformed)
            );
        }
        // An empty datagram.
        let mut b = PACKET;
        b[5] = 8;
        let p = Packet::new_checked(&b[..8]).unwrap();
        assert!(p.payload().is_empty());
        // Unchecked, a length beyond the buffer is bounded.
        let mut b = PACKET;
        b[4] = 0xff;
        let p = Packet::new_unchecked(&b[..]);
        assert_eq!(p.payload(), &PAYLOAD);
        let _ = p.verify_checksum(SRC, DST);
    }

    #[test]
    fn test_zero_checksum() {
        let mut b = PACKET;
        b[6] = 0;
        b[7] = 0;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST), "zero means none");
        assert!(p.verify_checksum(DST, DST));
    }

    #[test]
    fn test_checksum_partial() {
        // What a CHECKSUM_PARTIAL device leaves: the pseudo-header sum.
        let mut b = PACKET;
        let ph = checksum::pseudo_header_v4(SRC, DST, Protocol::Udp, 12);
        b[6..8].copy_from_slice(&ph.to_be_bytes());
        let mut p = Packet::new_unchecked(&mut b[..]);
        assert!(!p.verify_checksum(SRC, DST));
        p.fill_checksum(SRC, DST);
        assert_eq!(b, PACKET);
    }

    #[test]
    fn test_computed_zero_sent_as_ffff() {
        // Choose the payload so that the sum comes to 0xffff, whose
        // complement 0 must go out as 0xffff.
        let mut b = [0u8; 10];
        let mut p = Packet::new_unchecked(&mut b[..]);
        Repr {
            src_port: 1,
            dst_port: 2,
            payload_len: 2,
        }
        .emit(&mut p);
        let rest = p.sum(SRC, DST);
        p.payload_mut().copy_from_slice(&(!rest).to_be_bytes());
        p.fill_checksum(SRC, DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
    }

    // Whole frames.

    const MAC1: ethernet::Address = ethernet::Address([0x02, 0, 0, 0, 0, 0x01]);
    const MAC2: ethernet::Address = ethernet::Address([0x02, 0, 0, 0, 0, 0x02]);
    const IP1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const IP2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const GROUP: Ipv4Addr = Ipv4Addr::new(233, 54, 12, 1);

    /// 02:..:01 10.0.0.1:12345 -> 02:..:02 10.0.0.2:5000, "ping", ident
    /// 0x1234, padded to 60 bytes. Checksums computed independently.
    static FRAME: [u8; 60] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08,
        0x00, // eth
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x14, 0x97, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, // IPv4
        0x30, 0x39, 0x13, 0x88, 0x00, 0x0c, 0xc9, 0x41, // UDP
        b'p', b'i', b'n', b'g', // payload
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    /// 10.0.0.1:40000 -> 233.54.12.1:26400 on VLAN 100 priority 5, DSCP EF,
    /// TTL 1, ident 0, "HFTP".
    static TAGGED: [u8; 50] = [
        0x01, 0x00, 0x5e, 0x36, 0x0c, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // macs
        0x81, 0x00, 0xa0, 0x64, 0x08, 0x00, // tag, IPv4
        0x45, 0xb8, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x11, 0x79, 0xdd, 0x0a, 0x00, 0x00,
        0x01, 0xe9, 0x36, 0x0c, 0x01, // IPv4
        0x9c, 0x40, 0x67, 0x20, 0x00, 0x0c, 0x60, 0xa6, // UDP
        b'H', b'F', b'T', b'P',
    ];

    fn spec() -> FrameSpec {
        FrameSpec {
            ident: 0x1234,
            ..FrameSpec::new(MAC1, MAC2, IP1, IP2, 12345, 5000)
        }
    }

    fn tagged_spec() -> FrameSpec {
        FrameSpec {
            vlan: Some(VlanTag::from_tci(0xa064)),
            ttl: 1,
            dscp: 46,
            ..FrameSpec::new(
                MAC1,
                ethernet::Address::from_ipv4_multicast(GROUP),
                IP1,
                GROUP,
                40000,
                26400,
            )
        }
    }

    #[test]
    fn test_emit_frame() {
        let mut buf = [0xa5u8; 60];
        buf[46..].fill(0);
        assert_eq!(emit_frame(&mut buf, &spec(), b"ping"), Ok(46));
        assert_eq!(buf, FRAME);

        let mut buf = [0u8; 64];
        assert_eq!(emit_frame(&mut buf, &tagged_spec(), b"HFTP"), Ok(50));
        assert_eq!(buf[..50], TAGGED);
        assert_eq!(tagged_spec().header_len(), 46);

        // In place: the payload is written first, the headers around it.
        let mut buf = [0u8; 60];
        let s = spec();
        buf[s.header_len()..s.frame_len(4)].copy_from_slice(b"ping");
        assert_eq!(emit_frame_headers(&mut buf, &s, 4), Ok(46));
        assert_eq!(buf, FRAME);
    }

    #[test]
    fn test_emit_frame_errors() {
        let mut buf = [7u8; 45];
        assert_eq!(
            emit_frame(&mut buf, &spec(), b"ping"),
            Err(Error::Truncated)
        );
        assert_eq!(buf, [7u8; 45], "nothing written");
        let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
        let mut buf = vec![0u8; 70_000];
        assert_eq!(emit_frame(&mut buf, &spec(), &big), Err(Error::Malformed));
        let n = emit_frame(&mut buf, &spec(), &big[1..]).unwrap();
        assert_eq!(n, 14 + 65535);
        let f = parse_frame(&buf[..n], Checks::ALL).unwrap();
        assert_eq!(f.payload.len(), MAX_PAYLOAD_LEN);
    }

    #[test]
    fn test_emit_frame_without_udp_checksum() {
        let mut buf = [0u8; 46];
        let s = FrameSpec {
            udp_checksum: false,
            ..spec()
        };
        emit_frame(&mut buf, &s, b"ping").unwrap();
        assert_eq!(&buf[40..42], &[0, 0]);
        assert_eq!(buf[..40], FRAME[..40]);
        assert!(parse_frame(&buf, Checks::ALL).is_ok());
    }

    #[test]
    fn test_parse_frame() {
        let f = parse_frame(&FRAME, Checks::ALL).unwrap();
        assert_eq!(
            f,
            UdpFrame {
                dst_mac: MAC2,
                src_mac: MAC1,
                vlan: None,
                src_ip: IP1,
                dst_ip: IP2,
                ttl: 64,
                dscp: 0,
                ident: 0x1234,
                src_port: 12345,
                dst_port: 5000,
                payload: b"ping",
                payload_offset: 42,
            }
        );
        let f = parse_frame(&TAGGED, Checks::ALL).unwrap();
        assert_eq!(f.vlan, Some(VlanTag::from_tci(0xa064)));
        assert_eq!((f.dst_ip, f.dst_port, f.ttl, f.dscp), (GROUP, 26400, 1, 46));
        assert_eq!(f.payload, b"HFTP");
        assert_eq!(f.payload_offset, 46);
        // The reply to the first frame is the first frame reversed.
        let r = parse_frame(&FRAME, Checks::ALL).unwrap().reply_spec();
        let mut buf = [0u8; 46];
        emit_frame(&mut buf, &r, b"pong").unwrap();
        let back = parse_frame(&buf, Checks::ALL).unwrap();
        assert_eq!(
            (back.src_mac, back.src_ip, back.src_port),
            (MAC2, IP2, 5000)
        );
        assert_eq!(
            (back.dst_mac, back.dst_ip, back.dst_port),
            (MAC1, IP1, 12345)
        );
    }

    #[test]
    fn test_parse_frame_truncated() {
        for n in 0..46 {
            assert_eq!(
                parse_frame(&FRAME[..n], Checks::ALL),
                Err(Reject::Truncated),
                "{n}"
            );
        }
        for n in 46..=60 {
            assert!(parse_frame(&FRAME[..n], Checks::ALL).is_ok(), "{n}");
        }
        for n in 0..TAGGED.len() {
            assert_eq!(
                parse_frame(&TAGGED[..n], Checks::NONE),
                Err(Reject::Truncated)
            );
        }
    }

    /// FRAME with `f` applied and both checksums recomputed.
    fn edited(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut b = FRAME.to_vec();
        f(&mut b);
        let mut ip = ipv4::Packet::new_unchecked(&mut b[14..]);
        ip.fill_checksum();
        let hl = ip.header_len();
        let (s, d) = (ip.src_addr(), ip.dst_addr());
        if b.len() >= 14 + hl + 8 {
            Packet::new_unchecked(&mut b[14 + hl..]).fill_checksum(s, d);
        }
        b
    }

    #[test]
    fn test_parse_frame_rejects() {
        let p = |b: &[u8]| parse_frame(b, Checks::ALL).map(|_| ());
        // Not IPv4: ARP, IPv6, and IPv4 behind a second tag.
        let mut b = FRAME;
        b[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(p(&b), Err(Reject::NotIpv4(EtherType::Arp)));
        b[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(p(&b), Err(Reject::NotIpv4(EtherType::Ipv6)));
        let mut qinq = TAGGED.to_vec();
        qinq.splice(16..16, [0x81, 0x00, 0x00, 0x05]);
        assert_eq!(p(&qinq), Err(Reject::NotIpv4(EtherType::Vlan)));
        // Malformed IPv4 and UDP.
        assert_eq!(p(&edited(|b| b[14] = 0x65)), Err(Reject::Malformed));
        assert_eq!(p(&edited(|b| b[14] = 0x44)), Err(Reject::Malformed));
        assert_eq!(p(&edited(|b| b[39] = 7)), Err(Reject::Malformed));
        // UDP longer than the IPv4 payload is a runt, shorter is trimmed.
        assert_eq!(p(&edited(|b| b[39] = 13)), Err(Reject::Truncated));
        let trimmed = edited(|b| b[39] = 10);
        let f = parse_frame(&trimmed, Checks::ALL).unwrap();
        assert_eq!(f.payload, b"pi");
        // Checksums.
        let mut b = FRAME;
        b[25] ^= 0x80;
        assert_eq!(p(&b), Err(Reject::IpChecksum));
        assert_eq!(
            parse_frame(&b, Checks::NONE).map(|f| f.payload),
            Ok(&b"ping"[..])
        );
        let mut b = FRAME;
        b[45] ^= 1;
        assert_eq!(p(&b), Err(Reject::UdpChecksum));
        assert!(
            parse_frame(
                &b,
                Checks {
                    ip_header: true,
                    udp: false
                }
            )
            .is_ok()
        );
        // Options, fragments, other protocols.
        let with_options = edited(|b| {
            b.splice(34..34, [0x94, 0x04, 0x00, 0x00]);
            b[14] = 0x46;
            b[17] = 0x24;
        });
        assert_eq!(p(&with_options), Err(Reject::IpOptions));
        assert_eq!(p(&edited(|b| b[20] = 0x20)), Err(Reject::Fragment));
        assert_eq!(p(&edited(|b| b[21] = 0xb9)), Err(Reject::Fragment));
        assert_eq!(
            p(&edited(|b| b[23] = 1)),
            Err(Reject::NotUdp(Protocol::Icmp))
        );
        assert_eq!(
            p(&edited(|b| b[23] = 6)),
            Err(Reject::NotUdp(Protocol::Tcp))
        );
        assert_eq!(Reject::NotUdp(Protocol::Tcp).to_string(), "not UDP (TCP)");
        assert_eq!(Reject::NotIpv4(EtherType::Arp).name(), "not_ipv4");
    }

    #[test]
    fn test_parse_frame_checksum_partial() {
        // veth hands over frames whose UDP checksum field holds only the
        // pseudo-header sum; the transport skips the UDP check for them, or
        // fixes them with fill_checksum.
        let mut b = FRAME;
        let ph = checksum::pseudo_header_v4(IP1, IP2, Protocol::Udp, 12);
        b[40..42].copy_from_slice(&ph.to_be_bytes());
        assert_eq!(parse_frame(&b, Checks::ALL), Err(Reject::UdpChecksum));
        let relaxed = Checks {
            ip_header: true,
            udp: false,
        };
        assert_eq!(parse_frame(&b, relaxed).unwrap().payload, b"ping");
        Packet::new_unchecked(&mut b[34..46]).fill_checksum(IP1, IP2);
        assert_eq!(b, FRAME);
    }

    fn any_spec() -> impl Strategy<Value = FrameSpec> {
        (
            any::<[u8; 6]>(),
            any::<[u8; 6]>(),
            proptest::option::of(any::<u16>()),
            any::<u32>(),
            any::<u32>(),
            any::<(u16, u16)>(),
            any::<u8>(),
            0u8..64,
            any::<u16>(),
            any::<bool>(),
        )
            .prop_map(
                |(sm, dm, tci, sip, dip, (sp, dp), ttl, dscp, ident, udp_checksum)| FrameSpec {
                    src_mac: ethernet::Address(sm),
                    dst_mac: ethernet::Address(dm),
                    vlan: tci.map(VlanTag::from_tci),
                    src_ip: Ipv4Addr::from_bits(sip),
                    dst_ip: Ipv4Addr::from_bits(dip),
                    src_port: sp,
                    dst_port: dp,
                    ttl,
                    dscp,
                    ident,
                    udp_checksum,
                },
            )
    }

    proptest! {
        #[test]
        fn repr_round_trip(sp in any::<u16>(), dp in any::<u16>(),
                           payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let r = Repr { src_port: sp, dst_port: dp, payload_len: payload.len() };
            let mut buf = vec![0u8; 8 + payload.len()];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            p.payload_mut().copy_from_slice(&payload);
            p.fill_checksum(SRC, DST);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p), Ok(r));
            prop_assert!(p.checksum() != 0);
            prop_assert!(p.verify_checksum(SRC, DST));
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn frame_round_trip(s in any_spec(), payload in proptest::collection::vec(any::<u8>(), 0..100),
                            pad in 0usize..20) {
            let mut buf = vec![0u8; s.frame_len(payload.len()) + pad];
            let n = emit_frame(&mut buf, &s, &payload).unwrap();
            prop_assert_eq!(n, s.frame_len(payload.len()));
            let f = parse_frame(&buf, Checks::ALL).unwrap();
            prop_assert_eq!(f.payload, &payload[..]);
            prop_assert_eq!(f.payload_offset, s.header_len());
            prop_assert_eq!(
                (f.src_mac, f.dst_mac, f.vlan, f.src_ip, f.dst_ip, f.src_port, f.dst_port),
                (s.src_mac, s.dst_mac, s.vlan, s.src_ip, s.dst_ip, s.src_port, s.dst_port)
            );
            prop_assert_eq!((f.ttl, f.dscp, f.ident), (s.ttl, s.dscp, s.ident));
        }

        #[test]
        fn parse_frame_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_frame(&bytes, Checks::ALL);
            if let Ok(f) = parse_frame(&bytes, Checks::NONE) {
                prop_assert!(f.payload_offset + f.payload.len() <= bytes.len());
            }
        }
    }
}
