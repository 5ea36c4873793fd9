//! The 11 bytes every ITCH 5.0 message starts with, whatever its type.
//!
//! ```text
//!  0      1              3                 5                            11
//! +------+--------------+-----------------+----------------------------+------
//! | type | stock locate | tracking number | timestamp (ns, 48-bit BE)  | body
//! +------+--------------+-----------------+----------------------------+------
//! ```
//!
//! [`Header`] reads them from any message, known type or not, so a consumer
//! can filter on the locate code or track time without parsing the body.

use super::types::{Timestamp, Wire};
use crate::{Error, Result};

pub(super) mod field {
    use core::ops::Range;
    pub const MSG_TYPE: usize = 0;
    pub const STOCK_LOCATE: Range<usize> = 1..3;
    pub const TRACKING_NUMBER: Range<usize> = 3..5;
    pub const TIMESTAMP: Range<usize> = 5..11;
}

/// Length of the common header.
pub const HEADER_LEN: usize = field::TIMESTAMP.end;

/// A read/write view of the common header of any message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Header::check_len`].
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
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

    /// The message type byte (see [`MessageType`](super::MessageType)).
    #[must_use]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::MSG_TYPE]
    }

    /// The stock locate code: the day's index of the instrument, 0 for
    /// messages about no instrument.
    #[must_use]
    pub fn stock_locate(&self) -> u16 {
        u16::get(&self.buffer.as_ref()[field::STOCK_LOCATE])
    }

    /// Nasdaq's internal tracking number.
    #[must_use]
    pub fn tracking_number(&self) -> u16 {
        u16::get(&self.buffer.as_ref()[field::TRACKING_NUMBER])
    }

    /// Nanoseconds since midnight.
    #[must_use]
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::get(&self.buffer.as_ref()[field::TIMESTAMP])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Writes the message type byte.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::MSG_TYPE] = v;
    }

    /// Writes the stock locate code.
    pub fn set_stock_locate(&mut self, v: u16) {
        v.put(&mut self.buffer.as_mut()[field::STOCK_LOCATE]);
    }

    /// Writes the tracking number.
    pub fn set_tracking_number(&mut self, v: u16) {
        v.put(&mut self.buffer.as_mut()[field::TRACKING_NUMBER]);
    }

    /// Writes the timestamp.
    pub fn set_timestamp(&mut self, v: Timestamp) {
        v.put(&mut self.buffer.as_mut()[field::TIMESTAMP]);
    }
}

/// The common header fields, parsed (the type byte is implied by the message
/// that holds them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HeaderRepr {
    /// Stock locate code (0 for messages about no instrument).
    pub stock_locate: u16,
    /// Nasdaq's internal tracking number.
    pub tracking_number: u16,
    /// Nanoseconds since midnight.
    pub timestamp: Timestamp,
}

impl HeaderRepr {
    /// Reads the header fields (not the type byte).
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than [`HEADER_LEN`].
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Result<Self> {
        h.check_len()?;
        Ok(Self {
            stock_locate: h.stock_locate(),
            tracking_number: h.tracking_number(),
            timestamp: h.timestamp(),
        })
    }

    /// Length of the header.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header fields (not the type byte).
    ///
    /// # Panics
    /// When the buffer is shorter than [`HEADER_LEN`] (only possible for a
    /// view made with [`Header::new_unchecked`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        h.set_stock_locate(self.stock_locate);
        h.set_tracking_number(self.tracking_number);
        h.set_timestamp(self.timestamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An Order Delete's header: locate 0x0102, tracking 0x0304,
    // timestamp 0x0000_1234_5678_9abc ns, and a body byte.
    static BYTES: [u8; 12] = [
        b'D', 0x01, 0x02, 0x03, 0x04, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xee,
    ];

    fn repr() -> HeaderRepr {
        HeaderRepr {
            stock_locate: 0x0102,
            tracking_number: 0x0304,
            timestamp: Timestamp::new(0x1234_5678_9abc).unwrap(),
        }
    }

    #[test]
    fn test_deconstruct() {
        let h = Header::new_checked(&BYTES[..]).unwrap();
        assert_eq!(h.msg_type(), b'D');
        assert_eq!(h.stock_locate(), 0x0102);
        assert_eq!(h.tracking_number(), 0x0304);
        assert_eq!(h.timestamp().nanos(), 0x1234_5678_9abc);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xeeu8; 12];
        let mut h = Header::new_unchecked(&mut buf[..]);
        h.set_msg_type(b'D');
        h.set_stock_locate(0x0102);
        h.set_tracking_number(0x0304);
        h.set_timestamp(Timestamp::new(0x1234_5678_9abc).unwrap());
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_parse_emit() {
        let r = HeaderRepr::parse(&Header::new_unchecked(&BYTES[..])).unwrap();
        assert_eq!(r, repr());
        assert_eq!(r.header_len(), HEADER_LEN);
        let mut buf = BYTES;
        buf[1..HEADER_LEN].fill(0);
        r.emit(&mut Header::new_unchecked(&mut buf[..]));
        assert_eq!(buf, BYTES);
    }

    #[test]
    fn test_truncated() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Header::new_checked(&BYTES[..n]).unwrap_err(),
                Error::Truncated
            );
            assert_eq!(
                HeaderRepr::parse(&Header::new_unchecked(&BYTES[..n])).unwrap_err(),
                Error::Truncated
            );
        }
    }
}
