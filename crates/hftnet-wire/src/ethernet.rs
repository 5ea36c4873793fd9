//! Ethernet II frames, with at most one IEEE 802.1Q VLAN tag: the layer-2
//! framing the AF_PACKET, AF_XDP and DPDK transports share.
//!
//! ```text
//! untagged
//!  0                 6                 12          14
//! +-----------------+-----------------+-----------+---------
//! | destination MAC | source MAC      | EtherType | payload
//! +-----------------+-----------------+-----------+---------
//!
//! 802.1Q tagged
//!  0                 6                 12       14      16          18
//! +-----------------+-----------------+--------+-------+-----------+---------
//! | destination MAC | source MAC      | 0x8100 | TCI   | EtherType | payload
//! +-----------------+-----------------+--------+-------+-----------+---------
//!                                        TCI = PCP (3 bits) | DEI (1) | VID (12)
//! ```
//!
//! The frame check sequence is not part of the view: devices strip it on
//! receive and append it on transmit. Frames shorter than 60 bytes are padded
//! by the device on transmit; the padding a short frame arrives with is part
//! of [`Frame::payload`], and the layer above (IPv4's total length) bounds
//! its own packet. Only the first tag is read: a second tag (QinQ) shows as
//! an inner EtherType of [`EtherType::Vlan`], and the 802.1ad S-tag
//! (0x88a8) as an unknown EtherType.
//!
//! Some devices strip the VLAN tag on receive and report it out of band
//! (AF_PACKET's `tp_vlan_tci`); such frames arrive untagged here.
//!
//! Once [`Frame::check_len`] returned `Ok`, no accessor panics.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const TCI: Range<usize> = 14..16;
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
}

/// Length of an untagged header.
pub const HEADER_LEN: usize = field::ETHERTYPE.end;
/// Length of a header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = field::INNER_ETHERTYPE.end;
/// The smallest frame on the wire, without the frame check sequence.
pub const MIN_FRAME_LEN: usize = 60;

/// A six-octet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// The broadcast address, `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Self = Self([0xff; 6]);

    /// The group address an IPv4 multicast group maps to (RFC 1112 §6.4):
    /// `01:00:5e` followed by the low 23 bits of the group. Meaningful for
    /// addresses in 224.0.0.0/4; 32 groups share each MAC address.
    #[must_use]
    pub const fn from_ipv4_multicast(group: Ipv4Addr) -> Self {
        let o = group.octets();
        Self([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
    }

    /// The octets.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// True for `ff:ff:ff:ff:ff:ff`.
    #[must_use]
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// True when the group (I/G) bit is set: multicast, broadcast included.
    #[must_use]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True when the group bit is clear.
    #[must_use]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// True when the locally administered (U/L) bit is set.
    #[must_use]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for Address {
    type Err = Error;

    /// Reads six hexadecimal octets separated by `:` or `-`
    /// (`02:00:00:00:00:01`).
    ///
    /// # Errors
    /// [`Error::Malformed`] for anything else.
    fn from_str(s: &str) -> Result<Self> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for o in &mut out {
            let p = parts.next().ok_or(Error::Malformed)?;
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::Malformed);
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| Error::Malformed)?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(Self(out))
    }
}

/// The protocol a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// IPv4, 0x0800.
    Ipv4,
    /// ARP, 0x0806.
    Arp,
    /// An IEEE 802.1Q VLAN tag follows, 0x8100.
    Vlan,
    /// IPv6, 0x86DD.
    Ipv6,
    /// Any other value (use `EtherType::from(u16)`, which never yields
    /// `Unknown` for the values above).
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => Self::Ipv4,
            0x0806 => Self::Arp,
            0x8100 => Self::Vlan,
            0x86dd => Self::Ipv6,
            v => Self::Unknown(v),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> Self {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(v) => v,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipv4 => f.write_str("IPv4"),
            Self::Arp => f.write_str("ARP"),
            Self::Vlan => f.write_str("802.1Q"),
            Self::Ipv6 => f.write_str("IPv6"),
            Self::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

/// The tag control information of an 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Priority code point, 0..=7 (IEEE 802.1p class of service).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095 (0: priority tag only, no VLAN).
    pub vid: u16,
}

impl VlanTag {
    /// A tag for VLAN `vid` at priority 0.
    #[must_use]
    pub const fn new(vid: u16) -> Self {
        Self {
            pcp: 0,
            dei: false,
            vid: vid & 0x0fff,
        }
    }

    /// Splits a TCI field.
    #[must_use]
    pub const fn from_tci(tci: u16) -> Self {
        Self {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// The TCI field; `pcp` and `vid` are masked to their widths.
    #[must_use]
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }
}

/// A read/write view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Frame::check_len`].
    ///
    /// # Errors
    /// As [`Frame::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Ensures the header, tag included, fits, so no accessor can panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than [`HEADER_LEN`], or than
    /// [`VLAN_HEADER_LEN`] when the EtherType announces a tag.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination address.
    #[must_use]
    pub fn dst_addr(&self) -> Address {
        Address(read6(&self.buffer.as_ref()[field::DESTINATION]))
    }

    /// The source address.
    #[must_use]
    pub fn src_addr(&self) -> Address {
        Address(read6(&self.buffer.as_ref()[field::SOURCE]))
    }

    /// The EtherType field after the addresses: [`EtherType::Vlan`] for a
    /// tagged frame. See [`Frame::inner_ethertype`] for the payload's type.
    #[must_use]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    /// True when the frame carries an 802.1Q tag.
    #[must_use]
    pub fn is_tagged(&self) -> bool {
        self.ethertype() == EtherType::Vlan
    }

    /// The 802.1Q tag, if any.
    #[must_use]
    pub fn vlan(&self) -> Option<VlanTag> {
        let b = self.buffer.as_ref();
        if !self.is_tagged() {
            return None;
        }
        b.get(field::TCI).map(|t| VlanTag::from_tci(read_u16(t)))
    }

    /// The type of the payload: the EtherType after the tag of a tagged
    /// frame, else the same as [`Frame::ethertype`].
    #[must_use]
    pub fn inner_ethertype(&self) -> EtherType {
        if self.is_tagged() {
            let b = self.buffer.as_ref();
            b.get(field::INNER_ETHERTYPE)
                .map_or(EtherType::Vlan, |t| EtherType::from(read_u16(t)))
        } else {
            self.ethertype()
        }
    }

    /// Length of the header: [`VLAN_HEADER_LEN`] for a tagged frame, else
    /// [`HEADER_LEN`].
    #[must_use]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The payload: everything after the header (tag included), up to the
    /// end of the buffer — any padding of a short frame included.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        b.get(self.header_len()..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Writes the destination address.
    pub fn set_dst_addr(&mut self, a: Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&a.0);
    }

    /// Writes the source address.
    pub fn set_src_addr(&mut self, a: Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&a.0);
    }

    /// Writes the EtherType field after the addresses (for a tagged frame,
    /// [`EtherType::Vlan`]; [`Frame::set_vlan`] does that).
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    /// Makes the frame tagged: writes EtherType 0x8100 and the TCI. Write the
    /// payload's type with [`Frame::set_inner_ethertype`] afterwards.
    ///
    /// # Panics
    /// When the buffer is shorter than 16 bytes.
    pub fn set_vlan(&mut self, tag: VlanTag) {
        self.set_ethertype(EtherType::Vlan);
        self.buffer.as_mut()[field::TCI].copy_from_slice(&tag.tci().to_be_bytes());
    }

    /// Writes the type of the payload: after the tag of a tagged frame, else
    /// in the EtherType field.
    ///
    /// # Panics
    /// When the frame is tagged and the buffer is shorter than
    /// [`VLAN_HEADER_LEN`].
    pub fn set_inner_ethertype(&mut self, t: EtherType) {
        let at = if self.is_tagged() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        self.buffer.as_mut()[at].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    /// The payload, writable; see [`Frame::payload`].
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        self.buffer.as_mut().get_mut(at..).unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Frame<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn read6(b: &[u8]) -> [u8; 6] {
    [b[0], b[1], b[2], b[3], b[4], b[5]]
}

/// An Ethernet header, parsed.
///
/// `ethertype` is the payload's type (after the tag, when there is one). A
/// `Repr` with `vlan: None` and `ethertype: EtherType::Vlan` describes a
/// header that reads back as tagged; [`Repr::parse`] never returns one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Destination address.
    pub dst_addr: Address,
    /// Source address.
    pub src_addr: Address,
    /// The 802.1Q tag, if any.
    pub vlan: Option<VlanTag>,
    /// The payload's type.
    pub ethertype: EtherType,
}

impl Repr {
    /// Reads a header.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the header does not fit.
    pub fn parse<T: AsRef<[u8]>>(f: &Frame<T>) -> Result<Self> {
        f.check_len()?;
        Ok(Self {
            dst_addr: f.dst_addr(),
            src_addr: f.src_addr(),
            vlan: f.vlan(),
            ethertype: f.inner_ethertype(),
        })
    }

    /// Bytes of header this writes: 14, or 18 with a tag.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header; the payload is left as it is.
    ///
    /// # Panics
    /// When the buffer is shorter than [`Repr::header_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, f: &mut Frame<T>) {
        assert!(f.buffer.as_ref().len() >= self.header_len());
        f.set_dst_addr(self.dst_addr);
        f.set_src_addr(self.src_addr);
        match self.vlan {
            Some(tag) => {
                f.set_vlan(tag);
                f.buffer.as_mut()[field::INNER_ETHERTYPE]
                    .copy_from_slice(&u16::from(self.ethertype).to_be_bytes());
            }
            None => f.set_ethertype(self.ethertype),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 02:00:00:00:00:01 -> 02:00:00:00:00:02, IPv4, padded to 60 bytes.
    static FRAME: [u8; 60] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x14, 0x97, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, // IPv4 header
        0x30, 0x39, 0x13, 0x88, 0x00, 0x0c, 0xc9, 0x41, b'p', b'i', b'n', b'g', // UDP
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    /// Multicast to 233.54.12.1 on VLAN 100, priority 5.
    static TAGGED: [u8; 22] = [
        0x01, 0x00, 0x5e, 0x36, 0x0c, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x81, 0x00, // 802.1Q
        0xa0, 0x64, // PCP 5, DEI 0, VID 100
        0x08, 0x00, // IPv4
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    const SRC: Address = Address([0x02, 0, 0, 0, 0, 0x01]);
    const DST: Address = Address([0x02, 0, 0, 0, 0, 0x02]);
    const GROUP: Address = Address([0x01, 0x00, 0x5e, 0x36, 0x0c, 0x01]);
    const TAG: VlanTag = VlanTag {
        pcp: 5,
        dei: false,
        vid: 100,
    };

    #[test]
    fn test_deconstruct() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), DST);
        assert_eq!(f.src_addr(), SRC);
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.inner_ethertype(), EtherType::Ipv4);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &FRAME[14..]);
    }

    #[test]
    fn test_deconstruct_tagged() {
        let f = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), GROUP);
        assert_eq!(f.ethertype(), EtherType::Vlan);
        assert!(f.is_tagged());
        assert_eq!(f.vlan(), Some(TAG));
        assert_eq!(f.inner_ethertype(), EtherType::Ipv4);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xa5u8; 60];
        let mut f = Frame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(DST);
        f.set_src_addr(SRC);
        f.set_ethertype(EtherType::Ipv4);
        f.payload_mut().copy_from_slice(&FRAME[14..]);
        assert_eq!(buf, FRAME);

        let mut buf = [0xa5u8; 22];
        let mut f = Frame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(GROUP);
        f.set_src_addr(SRC);
        f.set_vlan(TAG);
        f.set_inner_ethertype(EtherType::Ipv4);
        f.payload_mut().copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(buf, TAGGED);
    }

    #[test]
    fn test_parse() {
        let r = Repr::parse(&Frame::new_unchecked(&FRAME[..])).unwrap();
        assert_eq!(
            r,
            Repr {
                dst_addr: DST,
                src_addr: SRC,
                vlan: None,
                ethertype: EtherType::Ipv4
            }
        );
        let r = Repr::parse(&Frame::new_unchecked(&TAGGED[..])).unwrap();
        assert_eq!(
            r,
            Repr {
                dst_addr: GROUP,
                src_addr: SRC,
                vlan: Some(TAG),
                ethertype: EtherType::Ipv4
            }
        );
    }

    #[test]
    fn test_emit() {
        let r = Repr {
            dst_addr: GROUP,
            src_addr: SRC,
            vlan: Some(TAG),
            ethertype: EtherType::Ipv4,
        };
        let mut buf = TAGGED;
        buf[..18].fill(0);
        r.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf, TAGGED);
        assert_eq!(r.header_len(), 18);

        let r = Repr {
            dst_addr: DST,
            src_addr: SRC,
            vlan: None,
            ethertype: EtherType::Ipv4,
        };
        let mut buf = FRAME;
        buf[..14].fill(0xff);
        r.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(buf, FRAME);
        assert_eq!(r.header_len(), 14);
    }

    #[test]
    fn test_truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&FRAME[..n]).unwrap_err(),
                Error::Truncated
            );
        }
        assert!(
            Frame::new_checked(&FRAME[..14])
                .unwrap()
                .payload()
                .is_empty()
        );
        for n in 0..VLAN_HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&TAGGED[..n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
            assert_eq!(
                Repr::parse(&Frame::new_unchecked(&TAGGED[..n])).unwrap_err(),
                Error::Truncated
            );
        }
        assert!(Frame::new_checked(&TAGGED[..18]).is_ok());
        // Unchecked accessors on a cut tag degrade instead of panicking.
        let f = Frame::new_unchecked(&TAGGED[..15]);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.inner_ethertype(), EtherType::Vlan);
        assert!(f.payload().is_empty());
    }

    #[test]
    fn test_double_tag() {
        // QinQ with 0x8100 outside: only the outer tag is read.
        let mut b = TAGGED;
        b[16] = 0x81;
        b[17] = 0x00;
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.vlan(), Some(TAG));
        assert_eq!(f.inner_ethertype(), EtherType::Vlan);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        // 802.1ad S-tag: an unknown EtherType, no tag read.
        b[12] = 0x88;
        b[13] = 0xa8;
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::Unknown(0x88a8));
        assert_eq!(f.vlan(), None);
        assert_eq!(f.header_len(), 14);
    }

    #[test]
    fn test_address() {
        assert!(Address::BROADCAST.is_broadcast());
        assert!(Address::BROADCAST.is_multicast());
        assert!(!Address::BROADCAST.is_unicast());
        assert!(SRC.is_unicast() && SRC.is_local() && !SRC.is_broadcast());
        assert!(GROUP.is_multicast() && !GROUP.is_broadcast());
        assert_eq!(SRC.to_string(), "02:00:00:00:00:01");
        assert_eq!(Address::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
        assert_eq!(
            Address::from_ipv4_multicast(Ipv4Addr::new(233, 54, 12, 1)),
            GROUP
        );
        // The high bit of the second octet is dropped: 224.128.0.1 and
        // 224.0.0.1 share a MAC address.
        assert_eq!(
            Address::from_ipv4_multicast(Ipv4Addr::new(224, 128, 0, 1)),
            Address([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01])
        );
        assert_eq!(
            Address::from_ipv4_multicast(Ipv4Addr::new(239, 255, 255, 255)),
            Address([0x01, 0x00, 0x5e, 0x7f, 0xff, 0xff])
        );
        assert_eq!("02:00:00:00:00:01".parse::<Address>(), Ok(SRC));
        assert_eq!("01-00-5E-36-0C-01".parse::<Address>(), Ok(GROUP));
        assert_eq!("2:0:0:0:0:1".parse::<Address>(), Ok(SRC));
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02:00:00:00:00:001",
            "02:00:00:00:00:+1",
            "02::00:00:00:01",
            "g2:00:00:00:00:01",
        ] {
            assert_eq!(bad.parse::<Address>(), Err(Error::Malformed), "{bad}");
        }
    }

    #[test]
    fn test_ethertype_and_tag() {
        for (v, t) in [
            (0x0800, EtherType::Ipv4),
            (0x0806, EtherType::Arp),
            (0x8100, EtherType::Vlan),
            (0x86dd, EtherType::Ipv6),
            (0x88a8, EtherType::Unknown(0x88a8)),
        ] {
            assert_eq!(EtherType::from(v), t);
            assert_eq!(u16::from(t), v);
        }
        assert_eq!(EtherType::Unknown(0x88f7).to_string(), "0x88f7");
        assert_eq!(VlanTag::from_tci(0xa064), TAG);
        assert_eq!(TAG.tci(), 0xa064);
        let t = VlanTag::from_tci(0xffff);
        assert_eq!((t.pcp, t.dei, t.vid), (7, true, 4095));
        assert_eq!(VlanTag::new(0x1064), VlanTag::new(100), "VID masked");
    }

    fn any_repr() -> impl Strategy<Value = Repr> {
        (
            any::<[u8; 6]>(),
            any::<[u8; 6]>(),
            proptest::option::of(any::<u16>()),
            any::<u16>(),
        )
            .prop_map(|(d, s, tci, et)| {
                let mut ethertype = EtherType::from(et);
                if tci.is_none() && ethertype == EtherType::Vlan {
                    ethertype = EtherType::Ipv4;
                }
                Repr {
                    dst_addr: Address(d),
                    src_addr: Address(s),
                    vlan: tci.map(VlanTag::from_tci),
                    ethertype,
                }
            })
    }

    proptest! {
        #[test]
        fn round_trip(r in any_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = vec![0u8; r.header_len() + payload.len()];
            let mut f = Frame::new_unchecked(&mut buf[..]);
            r.emit(&mut f);
            f.payload_mut().copy_from_slice(&payload);
            let f = Frame::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&f), Ok(r));
            prop_assert_eq!(f.payload(), &payload[..]);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let f = Frame::new_unchecked(&bytes[..]);
            if let Ok(r) = Repr::parse(&f) {
                let mut out = bytes.clone();
                r.emit(&mut Frame::new_unchecked(&mut out[..]));
                prop_assert_eq!(out, bytes);
            }
        }
    }
}
