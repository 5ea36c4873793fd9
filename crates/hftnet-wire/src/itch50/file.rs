//! The Nasdaq ITCH file format (the daily `*.NASDAQ_ITCH50` files): a plain
//! sequence of records, each a 2-byte big-endian length followed by that many
//! bytes of one message.
//!
//! ```text
//! +--------+-----------+--------+-----------+-----
//! | len #1 | message #1| len #2 | message #2| ...
//! +--------+-----------+--------+-----------+-----
//! ```
//!
//! This module only splits and writes bytes; the reader that does the I/O
//! lives elsewhere and calls [`next_record`] on what it has buffered, reading
//! more when it returns `Ok(None)`. A record of length zero cannot hold a
//! message and makes the rest of the file unreadable (there is no way to find
//! the next record), so it is [`Error::Malformed`].
//!
//! Nothing here allocates or panics, whatever the bytes.

use super::Message;
use crate::{Error, Result};

/// Length of the length prefix of every record.
pub const LEN_PREFIX: usize = 2;

/// The longest message a record can hold.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// Splits the first record off `buf`.
///
/// Returns the message (without its length prefix) and the bytes the record
/// takes in `buf`, prefix included; `Ok(None)` when `buf` holds only part of a
/// record (fewer than 2 bytes, or fewer than the length announces), so the
/// caller keeps those bytes and reads more.
///
/// # Errors
/// [`Error::Malformed`] when the record's length is zero.
#[inline]
pub fn next_record(buf: &[u8]) -> Result<Option<(&[u8], usize)>> {
    let Some(&[hi, lo]) = buf.first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len == 0 {
        return Err(Error::Malformed);
    }
    let end = LEN_PREFIX + len;
    Ok(buf.get(LEN_PREFIX..end).map(|msg| (msg, end)))
}

/// Length of the record holding a message of `msg_len` bytes.
#[must_use]
pub const fn record_len(msg_len: usize) -> usize {
    LEN_PREFIX + msg_len
}

/// Writes `msg` as one record at the start of `out`; returns the bytes
/// written.
///
/// # Errors
/// [`Error::Malformed`] when `msg` is empty or longer than
/// [`MAX_MESSAGE_LEN`]; [`Error::Truncated`] when `out` cannot hold the record
/// (nothing is written).
pub fn write_record(msg: &[u8], out: &mut [u8]) -> Result<usize> {
    if msg.is_empty() {
        return Err(Error::Malformed);
    }
    let len = u16::try_from(msg.len()).map_err(|_| Error::Malformed)?;
    let end = record_len(msg.len());
    let rec = out.get_mut(..end).ok_or(Error::Truncated)?;
    rec[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
    rec[LEN_PREFIX..].copy_from_slice(msg);
    Ok(end)
}

/// Emits `msg` as one record at the start of `out`; returns the bytes
/// written.
///
/// # Errors
/// [`Error::Truncated`] when `out` cannot hold the record;
/// [`Error::Malformed`] for [`Message::Unknown`] (see [`Message::emit`]).
pub fn emit_record(msg: &Message, out: &mut [u8]) -> Result<usize> {
    let body = out.get_mut(LEN_PREFIX..).ok_or(Error::Truncated)?;
    let n = msg.emit(body)?;
    // Every known message is shorter than 256 bytes.
    let len = u16::try_from(n).map_err(|_| Error::Malformed)?;
    out[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
    Ok(record_len(n))
}

/// The records of a complete in-memory file (or any whole number of records),
/// each message without its length prefix.
///
/// Yields `Err(Truncated)` once if the bytes end inside a record, or
/// `Err(Malformed)` once at a zero-length record, and then stops;
/// [`Records::offset`] tells where.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
    at: usize,
    done: bool,
}

impl<'a> Records<'a> {
    /// Iterates over the records of `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            at: 0,
            done: false,
        }
    }

    /// Bytes of `buf` consumed by the records yielded so far (the offset of
    /// the next record, or of the bad one after an error).
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.at
    }

    /// The bytes not consumed yet.
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.at..).unwrap_or(&[])
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.rest();
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        match next_record(rest) {
            Ok(Some((msg, used))) => {
                self.at += used;
                Some(Ok(msg))
            }
            Ok(None) => {
                self.done = true;
                Some(Err(Error::Truncated))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for Records<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    // Two records: an Order Delete (19 bytes) and a 3-byte unknown message.
    static FILE: [u8; 26] = [
        0x00, 0x13, //
        b'D', 0x00, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //
        0x00, 0x03, b'z', b'y', b'x',
    ];

    #[test]
    fn test_next_record() {
        let (msg, used) = next_record(&FILE).unwrap().unwrap();
        assert_eq!(used, 21);
        assert_eq!(msg, &FILE[2..21]);
        let (msg, used) = next_record(&FILE[21..]).unwrap().unwrap();
        assert_eq!(used, 5);
        assert_eq!(msg, b"zyx");
        assert_eq!(next_record(&[]), Ok(None));
    }

    #[test]
    fn test_partial_records() {
        // Every cut inside the first record asks for more bytes.
        for n in 0..21 {
            assert_eq!(next_record(&FILE[..n]), Ok(None), "cut at {n}");
        }
        for n in 21..26 {
            assert_eq!(next_record(&FILE[21..n]), Ok(None), "cut at {n}");
        }
    }

    #[test]
    fn test_zero_length_record() {
        assert_eq!(next_record(&[0, 0]), Err(Error::Malformed));
        assert_eq!(next_record(&[0, 0, 1, 2]), Err(Error::Malformed));
        let mut it = Records::new(&[0x00, 0x01, b'x', 0x00, 0x00, 0x00, 0x01, b'y']);
        assert_eq!(it.next(), Some(Ok(&b"x"[..])));
        assert_eq!(it.next(), Some(Err(Error::Malformed)));
        assert_eq!(it.offset(), 3);
        assert_eq!(it.next(), None);
    }

    #[test]
    fn test_records() {
        let recs: Vec<_> = Records::new(&FILE).collect();
        assert_eq!(recs, vec![Ok(&FILE[2..21]), Ok(&b"zyx"[..])]);
        let m = Message::parse(recs[0].unwrap()).unwrap();
        assert_eq!(m.msg_type(), b'D');
        assert_eq!(
            Message::parse(recs[1].unwrap()),
            Ok(Message::Unknown {
                msg_type: b'z',
                len: 3
            })
        );
        assert_eq!(Records::new(&[]).next(), None);
    }

    #[test]
    fn test_records_truncated_tail() {
        for cut in 22..26 {
            let mut it = Records::new(&FILE[..cut]);
            assert_eq!(it.next(), Some(Ok(&FILE[2..21])));
            assert_eq!(it.offset(), 21);
            assert_eq!(it.next(), Some(Err(Error::Truncated)), "cut at {cut}");
            assert_eq!(it.rest(), &FILE[21..cut]);
            assert_eq!(it.next(), None);
        }
        let mut it = Records::new(&FILE[..1]);
        assert_eq!(it.next(), Some(Err(Error::Truncated)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn test_write_record() {
        let mut out = [0u8; 26];
        let n = write_record(&FILE[2..21], &mut out).unwrap();
        assert_eq!(n, 21);
        let k = write_record(b"zyx", &mut out[n..]).unwrap();
        assert_eq!(n + k, 26);
        assert_eq!(out, FILE);
        assert_eq!(write_record(b"zyx", &mut [0u8; 4]), Err(Error::Truncated));
        assert_eq!(write_record(b"", &mut [0u8; 4]), Err(Error::Malformed));
        let big = vec![1u8; MAX_MESSAGE_LEN + 1];
        assert_eq!(
            write_record(&big, &mut vec![0u8; MAX_MESSAGE_LEN + 3]),
            Err(Error::Malformed)
        );
        let max = vec![1u8; MAX_MESSAGE_LEN];
        let mut out = vec![0u8; record_len(MAX_MESSAGE_LEN)];
        assert_eq!(
            write_record(&max, &mut out),
            Ok(record_len(MAX_MESSAGE_LEN))
        );
        assert_eq!(next_record(&out), Ok(Some((&max[..], out.len()))));
    }

    #[test]
    fn test_emit_record() {
        let m = Message::parse(&FILE[2..21]).unwrap();
        let mut out = [0u8; 21];
        assert_eq!(emit_record(&m, &mut out), Ok(21));
        assert_eq!(out, FILE[..21]);
        assert_eq!(emit_record(&m, &mut [0u8; 20]), Err(Error::Truncated));
        assert_eq!(emit_record(&m, &mut [0u8; 1]), Err(Error::Truncated));
        let u = Message::Unknown {
            msg_type: b'z',
            len: 3,
        };
        assert_eq!(emit_record(&u, &mut [0u8; 8]), Err(Error::Malformed));
    }
}
