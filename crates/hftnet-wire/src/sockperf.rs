//! sockperf's message header, so that `hftnet ping` and `hftnet pong` can
//! face sockperf's server and clients.
//!
//! ```text
//!  0                               8               10                              14
//! +-------------------------------+---------------+-------------------------------+---------
//! | sequence number (u64, BE)     | flags (u16)   | length (u32, BE)              | payload
//! +-------------------------------+---------------+-------------------------------+---------
//! ```
//!
//! As sockperf writes it (`src/message.h`, `MsgHeader`: packed, 14 bytes of
//! `EFFECTIVE_SIZE`, `hton()` before sending): the length counts the whole
//! message, header included, and over TCP it is the only framing. Flags:
//! [`Flags::CLIENT`] on everything a client sends (its server ignores a
//! message without it), [`Flags::PONG`] when the client wants this message
//! answered (every message in ping-pong mode, one in `--reply-every` in
//! under-load mode, none in throughput mode), [`Flags::WARMUP`] on the
//! dummy messages a client sends before a test, which the server neither
//! answers nor counts. The server answers a `PONG` message with the same
//! bytes, `CLIENT` cleared ([`Repr::reply`]).

use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const SEQ: Range<usize> = 0..8;
    pub const FLAGS: Range<usize> = 8..10;
    pub const LENGTH: Range<usize> = 10..14;
}

/// Length of the header; the smallest message sockperf sends.
pub const HEADER_LEN: usize = field::LENGTH.end;

/// The flag bits of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

impl Flags {
    /// Sent by a client (`MASK_CLIENT`); cleared in the server's reply.
    pub const CLIENT: Self = Self(1);
    /// The client asks for a reply (`MASK_PONG`).
    pub const PONG: Self = Self(2);
    /// A warm-up message, neither answered nor counted (`MASK_WARMUP_MSG`).
    pub const WARMUP: Self = Self(4);

    /// True when every bit of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with `other`'s bits set.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// These flags with `other`'s bits cleared.
    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

/// A read/write view of a sockperf message in a buffer.
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
    /// [`Error::Truncated`] when shorter than [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures the header fits, so no accessor can panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The sequence number.
    #[must_use]
    pub fn seq(&self) -> u64 {
        let b = &self.buffer.as_ref()[field::SEQ];
        u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// The flags.
    #[must_use]
    pub fn flags(&self) -> Flags {
        let b = &self.buffer.as_ref()[field::FLAGS];
        Flags(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The length field: the whole message in bytes, header included.
    #[must_use]
    pub fn length(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the sequence number.
    pub fn set_seq(&mut self, v: u64) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the flags.
    pub fn set_flags(&mut self, v: Flags) {
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&v.0.to_be_bytes());
    }

    /// Writes the length field.
    pub fn set_length(&mut self, v: u32) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }
}

/// A sockperf header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Sequence number.
    pub seq: u64,
    /// Flags.
    pub flags: Flags,
    /// The whole message in bytes, header included.
    pub length: u32,
}

impl Repr {
    /// Reads a header and checks its length field against the buffer: the
    /// message it describes must fit (a stream or a datagram may hold more
    /// after it; [`Repr::parse_datagram`] refuses that).
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is shorter than the header or
    /// than the length field says; [`Error::Malformed`] when the length
    /// field is shorter than the header.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        let length = p.length();
        if (length as usize) < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if length as usize > p.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(Self {
            seq: p.seq(),
            flags: p.flags(),
            length,
        })
    }

    /// [`Repr::parse`] for a datagram, which carries exactly one message:
    /// the length field must be the datagram's length.
    ///
    /// # Errors
    /// As [`Repr::parse`], and [`Error::Malformed`] when the datagram is
    /// longer than its length field says.
    pub fn parse_datagram(datagram: &[u8]) -> Result<Self> {
        let r = Self::parse(&Packet::new_checked(datagram)?)?;
        if r.length as usize != datagram.len() {
            return Err(Error::Malformed);
        }
        Ok(r)
    }

    /// Bytes of header this writes.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// True when a server answers this message: a client's, asking for a
    /// reply, not a warm-up (sockperf's `Server::handle_message`).
    #[must_use]
    pub const fn wants_reply(&self) -> bool {
        self.flags.contains(Flags::CLIENT)
            && self.flags.contains(Flags::PONG)
            && !self.flags.contains(Flags::WARMUP)
    }

    /// The header of the server's answer: the same, `CLIENT` cleared.
    #[must_use]
    pub const fn reply(self) -> Self {
        Self {
            flags: self.flags.without(Flags::CLIENT),
            ..self
        }
    }

    /// Writes the header into the packet (the payload is left as it is).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_seq(self.seq);
        p.set_flags(self.flags);
        p.set_length(self.length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Message 0x0102 of a ping-pong client (CLIENT | PONG), 18 bytes.
    static BYTES: [u8; 18] = [
        0, 0, 0, 0, 0, 0, 0x01, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x12, 0xaa, 0xbb, 0xcc, 0xdd,
    ];
    /// The server's answer to it: CLIENT cleared, the rest unchanged.
    static REPLY: [u8; 18] = [
        0, 0, 0, 0, 0, 0, 0x01, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x12, 0xaa, 0xbb, 0xcc, 0xdd,
    ];

    fn repr() -> Repr {
        Repr {
            seq: 0x0102,
            flags: Flags::CLIENT.with(Flags::PONG),
            length: 18,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.seq(), 0x0102);
        assert_eq!(p.flags(), Flags(3));
        assert_eq!(p.length(), 18);
    }

    #[test]
    fn test_construct() {
        let mut buf = BYTES;
        buf[..HEADER_LEN].fill(0xff);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_seq(0x0102);
        p.set_flags(Flags(3));
        p.set_length(18);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_parse() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(repr()));
        assert_eq!(Repr::parse_datagram(&BYTES), Ok(repr()));
        assert!(repr().wants_reply());
    }

    #[test]
    fn test_emit() {
        let mut buf = BYTES;
        buf[..HEADER_LEN].fill(0);
        let r = repr();
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, BYTES);
        assert_eq!(r.header_len(), HEADER_LEN);
    }

    #[test]
    fn test_reply() {
        let mut buf = BYTES;
        let r = Repr::parse_datagram(&buf).unwrap().reply();
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REPLY);
        let back = Repr::parse_datagram(&REPLY).unwrap();
        assert!(!back.flags.contains(Flags::CLIENT));
        assert!(!back.wants_reply(), "a server's message is never answered");
    }

    #[test]
    fn test_flags() {
        let pong = Flags::CLIENT.with(Flags::PONG);
        assert_eq!(pong, Flags(3));
        assert!(pong.contains(Flags::PONG));
        assert!(!Flags::CLIENT.contains(Flags::PONG));
        let warm = Repr {
            flags: pong.with(Flags::WARMUP),
            ..repr()
        };
        assert_eq!(warm.flags, Flags(7));
        assert!(!warm.wants_reply(), "warm-up messages are not answered");
        let load = Repr {
            flags: Flags::CLIENT,
            ..repr()
        };
        assert!(!load.wants_reply(), "no PONG request, no answer");
        assert_eq!(pong.without(Flags::CLIENT), Flags::PONG);
    }

    #[test]
    fn test_bad_input() {
        assert_eq!(
            Packet::new_checked(&BYTES[..13]).unwrap_err(),
            Error::Truncated
        );
        // Unchecked but short: parse checks the length before any accessor runs.
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&BYTES[..3])),
            Err(Error::Truncated)
        );
        // The length field says 18, the buffer holds 17.
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&BYTES[..17])),
            Err(Error::Truncated)
        );
        // A length field shorter than the header.
        let mut short = BYTES;
        short[13] = 13;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&short[..])),
            Err(Error::Malformed)
        );
        // A datagram longer than its message: a stream may hold another
        // message after it, a datagram may not.
        let mut long = [0u8; 19];
        long[..18].copy_from_slice(&BYTES);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&long[..])), Ok(repr()));
        assert_eq!(Repr::parse_datagram(&long), Err(Error::Malformed));
        assert_eq!(Repr::parse_datagram(&BYTES[..5]), Err(Error::Truncated));
    }

    proptest! {
        #[test]
        fn round_trip(seq in any::<u64>(), flags in any::<u16>(), extra in 0usize..64) {
            let length = (HEADER_LEN + extra) as u32;
            let r = Repr { seq, flags: Flags(flags), length };
            let mut buf = vec![0u8; HEADER_LEN + extra];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse_datagram(&buf), Ok(r));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), Ok(r));
            let reply = r.reply();
            prop_assert_eq!(reply.seq, seq);
            prop_assert_eq!(reply.length, length);
            prop_assert!(!reply.flags.contains(Flags::CLIENT));
            prop_assert_eq!(reply.flags.with(Flags(flags & 1)), Flags(flags));
        }

        #[test]
        fn view_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.seq(), p.flags(), p.length());
                if let Ok(r) = Repr::parse(&p) {
                    prop_assert!(r.length as usize <= bytes.len());
                    prop_assert!(r.length as usize >= HEADER_LEN);
                }
            } else {
                prop_assert!(bytes.len() < HEADER_LEN);
            }
            let _ = Repr::parse_datagram(&bytes);
        }
    }
}
