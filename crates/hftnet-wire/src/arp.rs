//! ARP (RFC 826): the view reads any hardware and protocol address lengths;
//! [`Repr`] knows only IPv4 over Ethernet, the one kind the kernel-bypass
//! transports must answer themselves.
//!
//! ```text
//!  0        2        4      5      6           8
//! +--------+--------+------+------+-----------+-----+-----+-----+-----+
//! | htype  | ptype  | hlen | plen | operation | sha | spa | tha | tpa |
//! +--------+--------+------+------+-----------+-----+-----+-----+-----+
//!   1        0x0800   6      4                  6     4     6     4     (Ethernet/IPv4: 28 bytes)
//! ```
//!
//! An ARP packet in an Ethernet frame is followed by the frame's padding,
//! which the view ignores.
//!
//! Once [`Packet::check_len`] returned `Ok`, no accessor panics.

use core::fmt;
use core::net::Ipv4Addr;
use core::ops::Range;

use crate::ethernet::{self, EtherType};
use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
}

/// Length of the fixed part, before the addresses.
pub const FIXED_LEN: usize = field::OPER.end;
/// Length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = FIXED_LEN + 2 * (6 + 4);
/// The hardware type of Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;

/// What an ARP packet asks or answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Who has the target protocol address? (1)
    Request,
    /// The source has the source protocol address. (2)
    Reply,
    /// Any other value (RARP, InARP...).
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Self::Request,
            2 => Self::Reply,
            v => Self::Unknown(v),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> Self {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// A read/write view of an ARP packet.
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

    /// Ensures the fixed part and the four addresses its lengths announce
    /// fit, so no accessor can panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] when they do not.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_LEN || len < self.packet_len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The hardware type (1 for Ethernet, [`HARDWARE_ETHERNET`]).
    #[must_use]
    pub fn hardware_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::HTYPE])
    }

    /// The protocol type, an EtherType.
    #[must_use]
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(&self.buffer.as_ref()[field::PTYPE]))
    }

    /// The length of a hardware address.
    #[must_use]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// The length of a protocol address.
    #[must_use]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation.
    #[must_use]
    pub fn operation(&self) -> Operation {
        Operation::from(read_u16(&self.buffer.as_ref()[field::OPER]))
    }

    /// The length of the packet the address lengths announce.
    #[must_use]
    pub fn packet_len(&self) -> usize {
        let b = self.buffer.as_ref();
        match (b.get(field::HLEN), b.get(field::PLEN)) {
            (Some(h), Some(p)) => FIXED_LEN + 2 * (usize::from(*h) + usize::from(*p)),
            _ => FIXED_LEN,
        }
    }

    /// The four address fields, in order: sha, spa, tha, tpa.
    fn ranges(&self) -> [Range<usize>; 4] {
        let b = self.buffer.as_ref();
        let (h, p) = match (b.get(field::HLEN), b.get(field::PLEN)) {
            (Some(h), Some(p)) => (usize::from(*h), usize::from(*p)),
            _ => (0, 0),
        };
        let sha = FIXED_LEN..FIXED_LEN + h;
        let spa = sha.end..sha.end + p;
        let tha = spa.end..spa.end + h;
        let tpa = tha.end..tha.end + p;
        [sha, spa, tha, tpa]
    }

    fn addr(&self, i: usize) -> &[u8] {
        let r = self.ranges()[i].clone();
        self.buffer.as_ref().get(r).unwrap_or(&[])
    }

    /// The sender hardware address.
    #[must_use]
    pub fn source_hardware_addr(&self) -> &[u8] {
        self.addr(0)
    }

    /// The sender protocol address.
    #[must_use]
    pub fn source_protocol_addr(&self) -> &[u8] {
        self.addr(1)
    }

    /// The target hardware address (zero or ignored in a request).
    #[must_use]
    pub fn target_hardware_addr(&self) -> &[u8] {
        self.addr(2)
    }

    /// The target protocol address.
    #[must_use]
    pub fn target_protocol_addr(&self) -> &[u8] {
        self.addr(3)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the hardware type.
    pub fn set_hardware_type(&mut self, v: u16) {
        self.buffer.as_mut()[field::HTYPE].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the protocol type.
    pub fn set_protocol_type(&mut self, t: EtherType) {
        self.buffer.as_mut()[field::PTYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    /// Writes the hardware address length.
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v;
    }

    /// Writes the protocol address length.
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v;
    }

    /// Writes the operation.
    pub fn set_operation(&mut self, o: Operation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&u16::from(o).to_be_bytes());
    }

    fn set_addr(&mut self, i: usize, v: &[u8]) {
        let r = self.ranges()[i].clone();
        self.buffer.as_mut()[r].copy_from_slice(v);
    }

    /// Writes the sender hardware address.
    ///
    /// # Panics
    /// When `v` is not [`Packet::hardware_len`] long or the buffer is short.
    pub fn set_source_hardware_addr(&mut self, v: &[u8]) {
        self.set_addr(0, v);
    }

    /// Writes the sender protocol address.
    ///
    /// # Panics
    /// When `v` is not [`Packet::protocol_len`] long or the buffer is short.
    pub fn set_source_protocol_addr(&mut self, v: &[u8]) {
        self.set_addr(1, v);
    }

    /// Writes the target hardware address.
    ///
    /// # Panics
    /// When `v` is not [`Packet::hardware_len`] long or the buffer is short.
    pub fn set_target_hardware_addr(&mut self, v: &[u8]) {
        self.set_addr(2, v);
    }

    /// Writes the target protocol address.
    ///
    /// # Panics
    /// When `v` is not [`Packet::protocol_len`] long or the buffer is short.
    pub fn set_target_protocol_addr(&mut self, v: &[u8]) {
        self.set_addr(3, v);
    }
}

fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// An ARP packet, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Repr {
    /// ARP for IPv4 addresses over Ethernet.
    EthernetIpv4 {
        /// Request, reply or other.
        operation: Operation,
        /// The sender's MAC address.
        source_hardware_addr: ethernet::Address,
        /// The sender's IPv4 address.
        source_protocol_addr: Ipv4Addr,
        /// The target's MAC address (zero or ignored in a request).
        target_hardware_addr: ethernet::Address,
        /// The target's IPv4 address.
        target_protocol_addr: Ipv4Addr,
    },
}

impl Repr {
    /// Reads an ARP packet.
    ///
    /// # Errors
    /// [`Error::Truncated`] when too short; [`Error::Malformed`] unless the
    /// hardware type is Ethernet (1), the protocol type IPv4 (0x0800) and the
    /// address lengths 6 and 4.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        if p.hardware_type() != HARDWARE_ETHERNET
            || p.protocol_type() != EtherType::Ipv4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::Malformed);
        }
        let mac = |b: &[u8]| ethernet::Address([b[0], b[1], b[2], b[3], b[4], b[5]]);
        let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        Ok(Self::EthernetIpv4 {
            operation: p.operation(),
            source_hardware_addr: mac(p.source_hardware_addr()),
            source_protocol_addr: ip(p.source_protocol_addr()),
            target_hardware_addr: mac(p.target_hardware_addr()),
            target_protocol_addr: ip(p.target_protocol_addr()),
        })
    }

    /// Bytes this writes: [`ETHERNET_IPV4_LEN`].
    #[must_use]
    pub const fn header_len(&self) -> usize {
        match self {
            Self::EthernetIpv4 { .. } => ETHERNET_IPV4_LEN,
        }
    }

    /// Writes the packet.
    ///
    /// # Panics
    /// When the buffer is shorter than [`Repr::header_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        match *self {
            Self::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } => {
                p.set_hardware_type(HARDWARE_ETHERNET);
                p.set_protocol_type(EtherType::Ipv4);
                p.set_hardware_len(6);
                p.set_protocol_len(4);
                p.set_operation(operation);
                p.set_source_hardware_addr(&source_hardware_addr.0);
                p.set_source_protocol_addr(&source_protocol_addr.octets());
                p.set_target_hardware_addr(&target_hardware_addr.0);
                p.set_target_protocol_addr(&target_protocol_addr.octets());
            }
        }
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
                target_protocol_addr,
            } => write!(
                f,
                "ARP {operation:?} {source_hardware_addr}/{source_protocol_addr} -> \
                 {target_hardware_addr}/{target_protocol_addr}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// "Who has 10.0.0.2? Tell 10.0.0.1", as it follows the Ethernet header,
    /// with the 18 bytes of padding a minimum-size frame adds.
    static REQUEST: [u8; 46] = [
        0x00, 0x01, // Ethernet
        0x08, 0x00, // IPv4
        0x06, 0x04, // lengths
        0x00, 0x01, // request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // sha
        0x0a, 0x00, 0x00, 0x01, // spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // tha
        0x0a, 0x00, 0x00, 0x02, // tpa
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    const MAC1: ethernet::Address = ethernet::Address([0x02, 0, 0, 0, 0, 0x01]);
    const IP1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const IP2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    fn request() -> Repr {
        Repr::EthernetIpv4 {
            operation: Operation::Request,
            source_hardware_addr: MAC1,
            source_protocol_addr: IP1,
            target_hardware_addr: ethernet::Address([0; 6]),
            target_protocol_addr: IP2,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), HARDWARE_ETHERNET);
        assert_eq!(p.protocol_type(), EtherType::Ipv4);
        assert_eq!(p.hardware_len(), 6);
        assert_eq!(p.protocol_len(), 4);
        assert_eq!(p.operation(), Operation::Request);
        assert_eq!(p.packet_len(), 28);
        assert_eq!(p.source_hardware_addr(), &MAC1.0);
        assert_eq!(p.source_protocol_addr(), &[10, 0, 0, 1]);
        assert_eq!(p.target_hardware_addr(), &[0; 6]);
        assert_eq!(p.target_protocol_addr(), &[10, 0, 0, 2]);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 46];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_hardware_type(HARDWARE_ETHERNET);
        p.set_protocol_type(EtherType::Ipv4);
        p.set_hardware_len(6);
        p.set_protocol_len(4);
        p.set_operation(Operation::Request);
        p.set_source_hardware_addr(&MAC1.0);
        p.set_source_protocol_addr(&[10, 0, 0, 1]);
        p.set_target_hardware_addr(&[0; 6]);
        p.set_target_protocol_addr(&[10, 0, 0, 2]);
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn test_parse() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(request()));
        assert_eq!(
            request().to_string(),
            "ARP Request 02:00:00:00:00:01/10.0.0.1 -> 00:00:00:00:00:00/10.0.0.2"
        );
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 46];
        let r = request();
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
        assert_eq!(r.header_len(), 28);
        let reply = Repr::EthernetIpv4 {
            operation: Operation::Reply,
            source_hardware_addr: ethernet::Address([0x02, 0, 0, 0, 0, 0x02]),
            source_protocol_addr: IP2,
            target_hardware_addr: MAC1,
            target_protocol_addr: IP1,
        };
        let mut buf = [0u8; 28];
        reply.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[6..8], &[0, 2]);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&buf[..])), Ok(reply));
    }

    #[test]
    fn test_truncated() {
        for n in 0..28 {
            assert_eq!(
                Packet::new_checked(&REQUEST[..n]).unwrap_err(),
                Error::Truncated,
                "{n}"
            );
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&REQUEST[..n])).unwrap_err(),
                Error::Truncated
            );
        }
        assert!(Packet::new_checked(&REQUEST[..28]).is_ok());
        // Unchecked and cut short: accessors return short slices, no panic.
        let p = Packet::new_unchecked(&REQUEST[..10]);
        assert_eq!(p.source_hardware_addr(), &[] as &[u8]);
        assert_eq!(Packet::new_unchecked(&REQUEST[..3]).packet_len(), FIXED_LEN);
    }

    #[test]
    fn test_malformed() {
        for (at, v) in [(1, 6), (2, 0x86), (4, 8), (5, 6)] {
            let mut b = REQUEST;
            b[at] = v;
            let p = Packet::new_unchecked(&b[..]);
            assert_eq!(Repr::parse(&p).unwrap_err(), Error::Malformed, "byte {at}");
        }
        // Other lengths still make a valid view.
        let mut b = REQUEST;
        b[4] = 8;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.packet_len(), 32);
        assert_eq!(p.source_hardware_addr().len(), 8);
        // Unknown operations parse (the caller ignores them).
        let mut b = REQUEST;
        b[7] = 3;
        let Repr::EthernetIpv4 { operation, .. } =
            Repr::parse(&Packet::new_unchecked(&b[..])).unwrap();
        assert_eq!(operation, Operation::Unknown(3));
        assert_eq!(u16::from(Operation::Unknown(3)), 3);
    }

    proptest! {
        #[test]
        fn round_trip(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<u32>(),
                      tha in any::<[u8; 6]>(), tpa in any::<u32>()) {
            let r = Repr::EthernetIpv4 {
                operation: Operation::from(op),
                source_hardware_addr: ethernet::Address(sha),
                source_protocol_addr: Ipv4Addr::from_bits(spa),
                target_hardware_addr: ethernet::Address(tha),
                target_protocol_addr: Ipv4Addr::from_bits(tpa),
            };
            let mut buf = [0u8; 28];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), Ok(r));
        }

        #[test]
        fn view_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let total = p.source_hardware_addr().len() + p.source_protocol_addr().len()
                    + p.target_hardware_addr().len() + p.target_protocol_addr().len();
                prop_assert_eq!(FIXED_LEN + total, p.packet_len());
                if let Ok(r) = Repr::parse(&p) {
                    let mut out = bytes.clone();
                    r.emit(&mut Packet::new_unchecked(&mut out[..]));
                    prop_assert_eq!(out, bytes);
                }
            }
        }
    }
}
