//! The latency probe: the header `hftnet ping` puts at the start of every
//! message so that any echo server can return it unchanged.
//!
//! ```text
//!  0               4                               12                              20
//! +---------------+-------------------------------+-------------------------------+---------
//! | magic "HFTP"  | sequence number (u64, BE)     | send stamp (u64, BE)          | padding
//! +---------------+-------------------------------+-------------------------------+---------
//! ```
//!
//! The stamp is opaque to the peer: the sender's clock ticks (for fixed-rate
//! runs, the *scheduled* send time, so a stall cannot hide itself). The
//! padding brings the message to the size under test; it carries a pattern
//! derived from the sequence number ([`fill_padding`]) so that the sender can
//! check every byte came back unchanged ([`padding_ok`]).

use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const SEQ: Range<usize> = 4..12;
    pub const STAMP: Range<usize> = 12..20;
}

/// The magic that marks a probe: ASCII `HFTP`.
pub const MAGIC: [u8; 4] = *b"HFTP";
/// Length of the probe header; the smallest message `ping` can send.
pub const HEADER_LEN: usize = field::STAMP.end;

/// A read/write view of a probe in a buffer.
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

    /// The magic field.
    #[must_use]
    pub fn magic(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::MAGIC];
        [b[0], b[1], b[2], b[3]]
    }

    /// The sequence number.
    #[must_use]
    pub fn seq(&self) -> u64 {
        read_u64(&self.buffer.as_ref()[field::SEQ])
    }

    /// The send stamp.
    #[must_use]
    pub fn stamp(&self) -> u64 {
        read_u64(&self.buffer.as_ref()[field::STAMP])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the magic.
    pub fn set_magic(&mut self) {
        self.buffer.as_mut()[field::MAGIC].copy_from_slice(&MAGIC);
    }

    /// Writes the sequence number.
    pub fn set_seq(&mut self, v: u64) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the send stamp.
    pub fn set_stamp(&mut self, v: u64) {
        self.buffer.as_mut()[field::STAMP].copy_from_slice(&v.to_be_bytes());
    }
}

/// The padding byte at offset `i` of probe `seq`.
#[inline]
fn pattern(seq: u64, i: usize) -> u8 {
    (seq as u8) ^ (i as u8) ^ 0x5a
}

/// Writes the padding pattern of probe `seq` after the header of `msg`
/// (nothing when `msg` is no longer than the header).
pub fn fill_padding(seq: u64, msg: &mut [u8]) {
    fill_padding_after(HEADER_LEN, seq, msg);
}

/// True when the padding of `msg` is the pattern of probe `seq`: the echo
/// returned every byte as sent.
#[must_use]
pub fn padding_ok(seq: u64, msg: &[u8]) -> bool {
    padding_ok_after(HEADER_LEN, seq, msg)
}

/// [`fill_padding`] after a header of `header_len` bytes: the same pattern
/// behind another format's header (e.g. [`crate::sockperf`]'s).
pub fn fill_padding_after(header_len: usize, seq: u64, msg: &mut [u8]) {
    for (i, b) in msg.iter_mut().enumerate().skip(header_len) {
        *b = pattern(seq, i);
    }
}

/// [`padding_ok`] after a header of `header_len` bytes.
#[must_use]
pub fn padding_ok_after(header_len: usize, seq: u64, msg: &[u8]) -> bool {
    msg.iter()
        .enumerate()
        .skip(header_len)
        .all(|(i, b)| *b == pattern(seq, i))
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

/// A probe header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Sequence number, from 0 for the first probe of a run.
    pub seq: u64,
    /// Send stamp in the sender's clock.
    pub stamp: u64,
}

impl Repr {
    /// Reads a probe.
    ///
    /// # Errors
    /// [`Error::Truncated`] when too short, [`Error::Malformed`] when the magic is wrong
    /// (a datagram that is not an hftnet probe).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        p.check_len()?;
        if p.magic() != MAGIC {
            return Err(Error::Malformed);
        }
        Ok(Self {
            seq: p.seq(),
            stamp: p.stamp(),
        })
    }

    /// Bytes of header this writes.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the packet (the padding is left as it is).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_magic();
        p.set_seq(self.seq);
        p.set_stamp(self.stamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BYTES: [u8; 24] = [
        b'H', b'F', b'T', b'P', 0, 0, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef,
        9, 9, 9, 9,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(p.magic(), MAGIC);
        assert_eq!(p.seq(), 0x0102);
        assert_eq!(p.stamp(), 0xdead_beef);
    }

    #[test]
    fn test_construct() {
        let mut buf = [9u8; 24];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_magic();
        p.set_seq(0x0102);
        p.set_stamp(0xdead_beef);
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_parse() {
        let p = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(
            Repr::parse(&p).unwrap(),
            Repr {
                seq: 0x0102,
                stamp: 0xdead_beef
            }
        );
    }

    #[test]
    fn test_emit() {
        let mut buf = [9u8; 24];
        let r = Repr {
            seq: 0x0102,
            stamp: 0xdead_beef,
        };
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, BYTES);
        assert_eq!(r.header_len(), HEADER_LEN);
    }

    #[test]
    fn test_padding() {
        let mut m = [0u8; 64];
        fill_padding(7, &mut m);
        assert_eq!(m[..HEADER_LEN], [0u8; HEADER_LEN], "header untouched");
        assert!(padding_ok(7, &m));
        assert!(!padding_ok(8, &m), "another probe's pattern differs");
        m[40] ^= 1;
        assert!(!padding_ok(7, &m), "one flipped bit is seen");
        let mut short = [0u8; HEADER_LEN];
        fill_padding(7, &mut short);
        assert!(padding_ok(7, &short));
    }

    #[test]
    fn test_bad_input() {
        assert_eq!(
            Packet::new_checked(&BYTES[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut foreign = BYTES;
        foreign[0] = b'X';
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&foreign[..])).unwrap_err(),
            Error::Malformed
        );
        // Unchecked but short: parse checks the length before any accessor runs.
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&BYTES[..3])).unwrap_err(),
            Error::Truncated
        );
    }
}
