//! IPv4 (RFC 791). The view reads every header field, options and fragments
//! included; [`Repr`] covers only the plain case the fast path handles — no
//! options, not a fragment — and tells the caller why it refused anything
//! else ([`ParseError`]) so that such packets can be counted and handed to
//! the kernel.
//!
//! ```text
//!  0       4       8              16     19                      31
//! +-------+-------+--------------+------+-------------------------+
//! |version|  IHL  |  DSCP  | ECN |        total length            |
//! +-------+-------+--------------+------+-------------------------+
//! |        identification        |flags |     fragment offset     |
//! +---------------+--------------+------+-------------------------+
//! |      TTL      |   protocol   |         header checksum        |
//! +---------------+--------------+--------------------------------+
//! |                         source address                        |
//! +---------------------------------------------------------------+
//! |                      destination address                      |
//! +---------------------------------------------------------------+
//! |                 options (IHL > 5), to IHL * 4                 |
//! +---------------------------------------------------------------+
//! ```
//!
//! The payload ends at the total length: the padding of a short Ethernet
//! frame after it is not part of the packet.
//!
//! Once [`Packet::check_len`] returned `Ok`, no accessor panics; the
//! accessors bound their slices even when setters later change the lengths.

use core::fmt;
use core::net::Ipv4Addr;

use crate::checksum;
use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Length of the longest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;
/// The largest payload behind a header without options.
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize - HEADER_LEN;

const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// The protocol an IPv4 packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// ICMP, 1.
    Icmp,
    /// IGMP, 2.
    Igmp,
    /// TCP, 6.
    Tcp,
    /// UDP, 17.
    Udp,
    /// Any other value (use `Protocol::from(u8)`, which never yields
    /// `Unknown` for the values above).
    Unknown(u8),
}

impl From<u8> for Protocol {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Icmp,
            2 => Self::Igmp,
            6 => Self::Tcp,
            17 => Self::Udp,
            v => Self::Unknown(v),
        }
    }
}

impl From<Protocol> for u8 {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Icmp => 1,
            Protocol::Igmp => 2,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Unknown(v) => v,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Icmp => f.write_str("ICMP"),
            Self::Igmp => f.write_str("IGMP"),
            Self::Tcp => f.write_str("TCP"),
            Self::Udp => f.write_str("UDP"),
            Self::Unknown(v) => write!(f, "protocol {v}"),
        }
    }
}

/// A read/write view of an IPv4 packet.
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

    /// Ensures the header, its options and the whole packet the total length
    /// announces lie in the buffer (bytes after it are ignored), so no
    /// accessor can panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than 20 bytes, than
    /// IHL × 4 or than the total length; [`Error::Malformed`] when the
    /// version is not 4, IHL is below 5, or the total length is below
    /// IHL × 4.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < hl {
            return Err(Error::Truncated);
        }
        let tl = usize::from(self.total_len());
        if tl < hl {
            return Err(Error::Malformed);
        }
        if len < tl {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4).
    #[must_use]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The IHL field: the header length in 32-bit words.
    #[must_use]
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }

    /// The header length in bytes, options included (IHL × 4).
    #[must_use]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// The Differentiated Services code point.
    #[must_use]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The Explicit Congestion Notification bits.
    #[must_use]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The total length field: header and payload, in bytes.
    #[must_use]
    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The identification field.
    #[must_use]
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    fn flags_offset(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLG_OFF])
    }

    /// The reserved flag (must be zero; RFC 3514 notwithstanding).
    #[must_use]
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & FLAG_RESERVED != 0
    }

    /// The Don't Fragment flag.
    #[must_use]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// The More Fragments flag.
    #[must_use]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// The fragment offset, in bytes (the field counts 8-byte units).
    #[must_use]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// True for a fragment: More Fragments set or a non-zero offset.
    #[must_use]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// The time to live.
    #[must_use]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    #[must_use]
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    #[must_use]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The source address.
    #[must_use]
    pub fn src_addr(&self) -> Ipv4Addr {
        read_addr(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// The destination address.
    #[must_use]
    pub fn dst_addr(&self) -> Ipv4Addr {
        read_addr(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// The end of the header, bounded by the buffer.
    fn header_end(&self) -> usize {
        self.header_len()
            .max(HEADER_LEN)
            .min(self.buffer.as_ref().len())
    }

    /// The options: the header bytes after the first 20 (empty for IHL 5).
    #[must_use]
    pub fn options(&self) -> &[u8] {
        let end = self.header_end();
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// The payload: from the end of the header to the total length.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        let start = self.header_end().min(end);
        &b[start..end]
    }

    /// True when the header checksum is right.
    #[must_use]
    pub fn verify_checksum(&self) -> bool {
        let b = self.buffer.as_ref();
        b.get(..self.header_end())
            .is_some_and(|h| checksum::data(h) == 0xffff)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the version.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Writes the IHL field from a header length in bytes (a multiple of 4
    /// from 20 to 60; other values are rounded down and masked).
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Writes the DSCP (6 bits).
    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }

    /// Writes the ECN bits (2 bits).
    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (v & 0x03);
    }

    /// Writes the total length.
    pub fn set_total_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the identification.
    pub fn set_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&v.to_be_bytes());
    }

    fn set_flags_offset(&mut self, v: u16) {
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }

    /// Clears the three flags, leaving the offset.
    pub fn clear_flags(&mut self) {
        self.set_flags_offset(self.flags_offset() & OFFSET_MASK);
    }

    /// Writes the Don't Fragment flag.
    pub fn set_dont_frag(&mut self, on: bool) {
        let v = self.flags_offset() & !FLAG_DF;
        self.set_flags_offset(if on { v | FLAG_DF } else { v });
    }

    /// Writes the More Fragments flag.
    pub fn set_more_frags(&mut self, on: bool) {
        let v = self.flags_offset() & !FLAG_MF;
        self.set_flags_offset(if on { v | FLAG_MF } else { v });
    }

    /// Writes the fragment offset, in bytes (the low 3 bits are dropped).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = self.flags_offset() & !OFFSET_MASK;
        self.set_flags_offset(v | (bytes >> 3));
    }

    /// Writes the time to live.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Writes the protocol.
    pub fn set_protocol(&mut self, p: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.into();
    }

    /// Writes the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Writes the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The options, writable; see [`Packet::options`].
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_end();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }

    /// The payload, writable; see [`Packet::payload`].
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.total_len()).min(self.buffer.as_ref().len());
        let start = self.header_end().min(end);
        &mut self.buffer.as_mut()[start..end]
    }

    /// Computes the header checksum from scratch (whatever the field held)
    /// and writes it. Set every other header field first.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let end = self.header_end();
        let sum = checksum::data(&self.buffer.as_ref()[..end]);
        self.set_checksum(!sum);
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

fn read_addr(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// Why [`Repr::parse`] refused a packet: not valid IPv4 ([`Truncated`],
/// [`Malformed`], [`Checksum`]), or valid but not the plain kind a `Repr`
/// describes ([`Options`], [`Fragment`]) — the fast path hands those to the
/// kernel or drops them.
///
/// [`Truncated`]: ParseError::Truncated
/// [`Malformed`]: ParseError::Malformed
/// [`Checksum`]: ParseError::Checksum
/// [`Options`]: ParseError::Options
/// [`Fragment`]: ParseError::Fragment
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// [`Error::Truncated`] from [`Packet::check_len`].
    Truncated,
    /// [`Error::Malformed`] from [`Packet::check_len`].
    Malformed,
    /// The header checksum is wrong.
    Checksum,
    /// The header carries options (IHL > 5).
    Options,
    /// The packet is a fragment (More Fragments set or offset non-zero).
    Fragment,
}

impl From<Error> for ParseError {
    fn from(e: Error) -> Self {
        match e {
            Error::Truncated => Self::Truncated,
            Error::Malformed => Self::Malformed,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated IPv4 packet",
            Self::Malformed => "malformed IPv4 packet",
            Self::Checksum => "bad IPv4 header checksum",
            Self::Options => "IPv4 header with options",
            Self::Fragment => "IPv4 fragment",
        })
    }
}

impl std::error::Error for ParseError {}

/// A plain IPv4 header, parsed: no options, not a fragment.
///
/// The Don't Fragment flag is not kept: [`Repr::emit`] always sets it, and
/// [`Repr::parse`] accepts the packet either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: Protocol,
    /// Payload length (total length − 20), at most [`MAX_PAYLOAD_LEN`].
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Differentiated Services code point (6 bits).
    pub dscp: u8,
    /// Explicit Congestion Notification (2 bits).
    pub ecn: u8,
    /// Identification (0 is fine for packets that are never fragmented).
    pub ident: u16,
}

impl Repr {
    /// Reads a plain header, verifying its checksum.
    ///
    /// # Errors
    /// [`ParseError::Truncated`] and [`ParseError::Malformed`] as
    /// [`Packet::check_len`]; then [`ParseError::Checksum`],
    /// [`ParseError::Options`], [`ParseError::Fragment`], in that order.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> core::result::Result<Self, ParseError> {
        p.check_len()?;
        if !p.verify_checksum() {
            return Err(ParseError::Checksum);
        }
        if p.header_len() != HEADER_LEN {
            return Err(ParseError::Options);
        }
        if p.is_fragment() {
            return Err(ParseError::Fragment);
        }
        Ok(Self {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: usize::from(p.total_len()) - HEADER_LEN,
            ttl: p.ttl(),
            dscp: p.dscp(),
            ecn: p.ecn(),
            ident: p.ident(),
        })
    }

    /// Bytes of header this writes: [`HEADER_LEN`].
    #[must_use]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header, Don't Fragment set, and its checksum; the payload
    /// is left as it is.
    ///
    /// # Panics
    /// When the buffer is shorter than [`HEADER_LEN`] or `payload_len`
    /// exceeds [`MAX_PAYLOAD_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        assert!(
            self.payload_len <= MAX_PAYLOAD_LEN,
            "IPv4 payload longer than MAX_PAYLOAD_LEN"
        );
        let total = (HEADER_LEN + self.payload_len) as u16;
        assert!(p.buffer.as_ref().len() >= HEADER_LEN, "buffer too short");
        let b = p.buffer.as_mut();
        b[field::VER_IHL] = 0x45;
        b[field::DSCP_ECN] = (self.dscp << 2) | (self.ecn & 0x03);
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.set_flags_offset(FLAG_DF);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv4 {} -> {} {} len={} ttl={}",
            self.src_addr, self.dst_addr, self.protocol, self.payload_len, self.ttl
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 10.0.0.1 -> 10.0.0.2, UDP, ident 0x1234, DF, TTL 64; a 12-byte UDP
    /// datagram; then 14 bytes of Ethernet padding that are not part of it.
    static PACKET: [u8; 46] = [
        0x45, 0x00, 0x00, 0x20, // v4, IHL 5, total 32
        0x12, 0x34, 0x40, 0x00, // ident, DF
        0x40, 0x11, 0x14, 0x97, // TTL 64, UDP, checksum
        0x0a, 0x00, 0x00, 0x01, // src
        0x0a, 0x00, 0x00, 0x02, // dst
        0x30, 0x39, 0x13, 0x88, 0x00, 0x0c, 0xc9, 0x41, b'p', b'i', b'n', b'g', // UDP
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    /// The same with a Router Alert option (RFC 2113): IHL 6.
    static WITH_OPTIONS: [u8; 36] = [
        0x46, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x7f, 0x8e, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, // header
        0x94, 0x04, 0x00, 0x00, // Router Alert
        0x30, 0x39, 0x13, 0x88, 0x00, 0x0c, 0xc9, 0x41, b'p', b'i', b'n', b'g', // UDP
    ];

    /// First fragment: More Fragments, offset 0.
    static FIRST_FRAGMENT: [u8; 20] = [
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x20, 0x00, 0x40, 0x11, 0x34, 0x97, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
    ];

    /// A later fragment: offset 185 units = 1480 bytes, no flags.
    static LATER_FRAGMENT: [u8; 20] = [
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x00, 0xb9, 0x40, 0x11, 0x53, 0xde, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
    ];

    const UDP: &[u8] = &[
        0x30, 0x39, 0x13, 0x88, 0x00, 0x0c, 0xc9, 0x41, b'p', b'i', b'n', b'g',
    ];

    fn repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: Protocol::Udp,
            payload_len: 12,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0x1234,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp(), 0);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 32);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert!(!p.reserved_flag());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), Protocol::Udp);
        assert_eq!(p.checksum(), 0x1497);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), UDP, "padding excluded");
        assert!(p.verify_checksum());
    }

    #[test]
    fn test_deconstruct_options_and_fragments() {
        let p = Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(p.ihl(), 6);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), UDP);
        assert!(p.verify_checksum());

        let p = Packet::new_unchecked(&FIRST_FRAGMENT[..]);
        assert!(p.more_frags() && !p.dont_frag() && p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert!(p.verify_checksum());

        let p = Packet::new_unchecked(&LATER_FRAGMENT[..]);
        assert!(!p.more_frags() && p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.verify_checksum());
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xa5u8; 46];
        buf[32..].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(20);
        p.set_dscp(0);
        p.set_ecn(0);
        p.set_total_len(32);
        p.set_ident(0x1234);
        p.clear_flags();
        p.set_dont_frag(true);
        p.set_more_frags(false);
        p.set_frag_offset(0);
        p.set_ttl(64);
        p.set_protocol(Protocol::Udp);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.set_checksum(0xdead);
        p.fill_checksum();
        p.payload_mut().copy_from_slice(UDP);
        assert_eq!(buf, PACKET);

        let mut buf = WITH_OPTIONS;
        buf[..24].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_version(4);
        p.set_header_len(24);
        p.set_total_len(36);
        p.set_ident(0x1234);
        p.set_dont_frag(true);
        p.set_ttl(64);
        p.set_protocol(Protocol::Udp);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.options_mut().copy_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        p.fill_checksum();
        assert_eq!(buf, WITH_OPTIONS);

        let mut buf = LATER_FRAGMENT;
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_frag_offset(0);
        p.set_more_frags(true);
        p.fill_checksum();
        assert_eq!(buf, FIRST_FRAGMENT);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_more_frags(false);
        p.set_frag_offset(1480);
        p.fill_checksum();
        assert_eq!(buf, LATER_FRAGMENT);
    }

    #[test]
    fn test_parse() {
        let p = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(repr()));
        assert_eq!(
            repr().to_string(),
            "IPv4 10.0.0.1 -> 10.0.0.2 UDP len=12 ttl=64"
        );
        // DF clear is accepted (and not kept).
        let mut b = PACKET;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_dont_frag(false);
        p.fill_checksum();
        assert_eq!(Repr::parse(&Packet::new_unchecked(&b[..])), Ok(repr()));
    }

    #[test]
    fn test_parse_refusals() {
        let p = |b: &[u8]| Repr::parse(&Packet::new_unchecked(b));
        assert_eq!(p(&WITH_OPTIONS), Err(ParseError::Options));
        let mut frag = [0u8; 32];
        frag[..20].copy_from_slice(&FIRST_FRAGMENT);
        assert_eq!(p(&frag), Err(ParseError::Fragment));
        frag[..20].copy_from_slice(&LATER_FRAGMENT);
        assert_eq!(p(&frag), Err(ParseError::Fragment));
        let mut bad = PACKET;
        bad[11] ^= 1;
        assert_eq!(p(&bad), Err(ParseError::Checksum));
        // A payload byte does not enter the header checksum.
        let mut ok = PACKET;
        ok[25] ^= 1;
        assert!(p(&ok).is_ok());
        assert_eq!(
            ParseError::from(Error::Truncated).to_string(),
            "truncated IPv4 packet"
        );
    }

    #[test]
    fn test_emit() {
        let mut buf = PACKET;
        buf[..20].fill(0xff);
        let r = repr();
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, PACKET);
        assert_eq!(r.header_len(), 20);

        // DSCP EF, TTL 1, ident 0, multicast: computed independently.
        let r = Repr {
            dst_addr: Ipv4Addr::new(233, 54, 12, 1),
            ttl: 1,
            dscp: 46,
            ident: 0,
            ..repr()
        };
        let mut buf = [0u8; 20];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(
            buf,
            [
                0x45, 0xb8, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x11, 0x79, 0xdd, 0x0a, 0x00,
                0x00, 0x01, 0xe9, 0x36, 0x0c, 0x01
            ]
        );
    }

    #[test]
    #[should_panic(expected = "MAX_PAYLOAD_LEN")]
    fn test_emit_oversized() {
        let mut buf = [0u8; 20];
        let r = Repr {
            payload_len: MAX_PAYLOAD_LEN + 1,
            ..repr()
        };
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
    }

    #[test]
    fn test_truncated() {
        for n in 0..32 {
            assert_eq!(
                Packet::new_checked(&PACKET[..n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&PACKET[..n])),
                Err(ParseError::Truncated)
            );
        }
        for n in 32..=PACKET.len() {
            assert!(Packet::new_checked(&PACKET[..n]).is_ok());
        }
        for n in 0..WITH_OPTIONS.len() {
            assert_eq!(
                Packet::new_checked(&WITH_OPTIONS[..n]).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn test_malformed() {
        let check = |f: &dyn Fn(&mut [u8; 46])| {
            let mut b = PACKET;
            f(&mut b);
            Packet::new_checked(&b[..]).unwrap_err()
        };
        assert_eq!(check(&|b| b[0] = 0x65), Error::Malformed, "version 6");
        assert_eq!(check(&|b| b[0] = 0x05), Error::Malformed, "version 0");
        assert_eq!(check(&|b| b[0] = 0x44), Error::Malformed, "IHL 4");
        assert_eq!(check(&|b| b[0] = 0x40), Error::Malformed, "IHL 0");
        assert_eq!(check(&|b| b[3] = 19), Error::Malformed, "total < 20");
        assert_eq!(check(&|b| b[3] = 0), Error::Malformed, "total 0");
        assert_eq!(
            check(&|b| {
                b[0] = 0x46;
                b[3] = 23;
            }),
            Error::Malformed,
            "total < IHL * 4"
        );
        assert_eq!(check(&|b| b[0] = 0x4f), Error::Truncated, "IHL 15 > len");
        assert_eq!(check(&|b| b[3] = 47), Error::Truncated, "total > len");
        // Total length exactly the header: an empty payload.
        let mut b = PACKET;
        b[3] = 20;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn test_setters_keep_accessors_safe() {
        let mut b = [0u8; 20];
        b.copy_from_slice(&FIRST_FRAGMENT);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_header_len(60);
        p.set_total_len(u16::MAX);
        assert!(p.options().is_empty());
        assert!(p.payload().is_empty());
        assert!(p.options_mut().is_empty());
        assert!(p.payload_mut().is_empty());
        p.fill_checksum();
        assert!(p.verify_checksum());
    }

    #[test]
    fn test_protocol() {
        for (v, p) in [
            (1, Protocol::Icmp),
            (2, Protocol::Igmp),
            (6, Protocol::Tcp),
            (17, Protocol::Udp),
            (132, Protocol::Unknown(132)),
        ] {
            assert_eq!(Protocol::from(v), p);
            assert_eq!(u8::from(p), v);
        }
    }

    fn any_repr() -> impl Strategy<Value = Repr> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            0..=MAX_PAYLOAD_LEN,
            any::<u8>(),
            0u8..64,
            0u8..4,
            any::<u16>(),
        )
            .prop_map(
                |(src, dst, proto, payload_len, ttl, dscp, ecn, ident)| Repr {
                    src_addr: Ipv4Addr::from_bits(src),
                    dst_addr: Ipv4Addr::from_bits(dst),
                    protocol: Protocol::from(proto),
                    payload_len,
                    ttl,
                    dscp,
                    ecn,
                    ident,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(r in any_repr()) {
            let mut buf = vec![0u8; HEADER_LEN + r.payload_len];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert!(p.dont_frag());
            prop_assert_eq!(Repr::parse(&p), Ok(r));
            prop_assert_eq!(p.payload().len(), r.payload_len);
        }

        #[test]
        fn view_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                prop_assert_eq!(p.options().len() + HEADER_LEN, p.header_len());
                prop_assert_eq!(p.header_len() + p.payload().len(), usize::from(p.total_len()));
                let _ = (p.verify_checksum(), p.frag_offset(), p.dscp(), p.ecn());
                let mut copy = bytes.clone();
                let mut q = Packet::new_unchecked(&mut copy[..]);
                q.fill_checksum();
                prop_assert!(q.verify_checksum());
            }
        }
    }
}
