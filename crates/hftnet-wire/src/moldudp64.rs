//! MoldUDP64: Nasdaq's framing for sequenced messages over UDP, downstream
//! packets (exchange → subscribers, usually multicast) and request packets
//! (subscriber → re-request server, unicast).
//!
//! ```text
//! downstream packet
//!  0                    10                   18        20
//! +--------------------+--------------------+---------+--------+------------+--------+-----
//! | session (10 ASCII) | sequence (u64, BE) | count   | len #1 | message #1 | len #2 | ...
//! +--------------------+--------------------+---------+--------+------------+--------+-----
//!
//! request packet (exactly 20 bytes)
//! +--------------------+--------------------+---------+
//! | session (10 ASCII) | sequence (u64, BE) | count   |
//! +--------------------+--------------------+---------+
//! ```
//!
//! The sequence number of a downstream packet is that of its first message;
//! the following messages take the next numbers. A packet with count 0 is a
//! heartbeat (its sequence is the next one to be sent); count `0xFFFF` marks
//! the end of the session. A request asks for `count` messages from
//! `sequence` on, and is answered with ordinary downstream packets.
//!
//! Once [`Packet::new_checked`] returned `Ok`, every message block lies inside
//! the buffer, so no accessor and no iteration panics.

use core::fmt;

use crate::{Error, Result};

mod field {
    use core::ops::Range;
    pub const SESSION: Range<usize> = 0..10;
    pub const SEQ: Range<usize> = 10..18;
    pub const COUNT: Range<usize> = 18..20;
}

/// Length of the downstream header, and of a whole request packet.
pub const HEADER_LEN: usize = field::COUNT.end;
/// Length of the session field.
pub const SESSION_LEN: usize = 10;
/// The message count that marks the end of a session.
pub const END_OF_SESSION: u16 = 0xFFFF;
/// Length of the length prefix of every message block.
pub const BLOCK_HEADER_LEN: usize = 2;

/// A MoldUDP64 session name: ten ASCII bytes, padded on the right with spaces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Session(pub [u8; SESSION_LEN]);

impl Session {
    /// A session from a name of at most ten bytes, space padded.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the name is longer than ten bytes or not
    /// printable ASCII.
    pub fn new(name: &str) -> Result<Self> {
        let b = name.as_bytes();
        if b.len() > SESSION_LEN || !b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            return Err(Error::Malformed);
        }
        let mut s = [b' '; SESSION_LEN];
        s[..b.len()].copy_from_slice(b);
        Ok(Self(s))
    }

    /// The name without its padding (lossy for non-ASCII bytes).
    #[must_use]
    pub fn trimmed(&self) -> &[u8] {
        let end = self.0.iter().rposition(|c| *c != b' ').map_or(0, |i| i + 1);
        &self.0[..end]
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in self.trimmed() {
            if c.is_ascii_graphic() || c == b' ' {
                write!(f, "{}", c as char)?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({self})")
    }
}

/// What a downstream packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One or more messages.
    Messages(u16),
    /// No message: the session is alive and `sequence` is the next to come.
    Heartbeat,
    /// The session has ended; `sequence` is one past its last message.
    EndOfSession,
}

/// A read/write view of a downstream packet.
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

    /// Ensures the header and every message block the count announces lie
    /// inside the buffer, so no accessor can panic.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the header or a message block runs past the
    /// end; [`Error::Malformed`] when bytes follow the last block, or a
    /// heartbeat or end-of-session packet carries a body.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let count = read_u16(&b[field::COUNT]);
        let count = if count == END_OF_SESSION { 0 } else { count };
        let mut at = HEADER_LEN;
        for _ in 0..count {
            if b.len() < at + BLOCK_HEADER_LEN {
                return Err(Error::Truncated);
            }
            let len = usize::from(read_u16(&b[at..at + BLOCK_HEADER_LEN]));
            at += BLOCK_HEADER_LEN + len;
            if b.len() < at {
                return Err(Error::Truncated);
            }
        }
        if at != b.len() {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> Session {
        let mut s = [0u8; SESSION_LEN];
        s.copy_from_slice(&self.buffer.as_ref()[field::SESSION]);
        Session(s)
    }

    /// The sequence number of the first message (of the next one, for a
    /// heartbeat or end of session).
    #[must_use]
    pub fn sequence(&self) -> u64 {
        read_u64(&self.buffer.as_ref()[field::SEQ])
    }

    /// The raw message count field.
    #[must_use]
    pub fn count_field(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::COUNT])
    }

    /// What the packet carries.
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self.count_field() {
            0 => Kind::Heartbeat,
            END_OF_SESSION => Kind::EndOfSession,
            n => Kind::Messages(n),
        }
    }

    /// The number of messages carried (0 for heartbeat and end of session).
    #[must_use]
    pub fn message_count(&self) -> u16 {
        match self.kind() {
            Kind::Messages(n) => n,
            Kind::Heartbeat | Kind::EndOfSession => 0,
        }
    }

    /// The messages, in sequence order, each without its length prefix.
    #[must_use]
    pub fn messages(&self) -> Messages<'_> {
        Messages {
            rest: self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[]),
            left: self.message_count(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the session.
    pub fn set_session(&mut self, s: Session) {
        self.buffer.as_mut()[field::SESSION].copy_from_slice(&s.0);
    }

    /// Writes the sequence number.
    pub fn set_sequence(&mut self, v: u64) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the count field.
    pub fn set_count_field(&mut self, v: u16) {
        self.buffer.as_mut()[field::COUNT].copy_from_slice(&v.to_be_bytes());
    }
}

/// The messages of a downstream packet; see [`Packet::messages`].
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for Messages<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 || self.rest.len() < BLOCK_HEADER_LEN {
            return None;
        }
        let len = usize::from(read_u16(&self.rest[..BLOCK_HEADER_LEN]));
        let body = self.rest.get(BLOCK_HEADER_LEN..BLOCK_HEADER_LEN + len)?;
        self.rest = &self.rest[BLOCK_HEADER_LEN + len..];
        self.left -= 1;
        Some(body)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

/// A downstream packet header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The session.
    pub session: Session,
    /// Sequence number of the first message (or of the next, see [`Kind`]).
    pub sequence: u64,
    /// What the packet carries.
    pub kind: Kind,
}

impl Repr {
    /// Reads the header of a checked packet.
    ///
    /// # Errors
    /// None today; the signature leaves room for stricter checks.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self> {
        Ok(Self {
            session: p.session(),
            sequence: p.sequence(),
            kind: p.kind(),
        })
    }

    /// Length of the header.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header (the message blocks are the caller's, or use
    /// [`PacketWriter`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_session(self.session);
        p.set_sequence(self.sequence);
        p.set_count_field(match self.kind {
            Kind::Messages(n) => n,
            Kind::Heartbeat => 0,
            Kind::EndOfSession => END_OF_SESSION,
        });
    }
}

/// Builds a downstream packet in a caller's buffer, one message at a time,
/// without allocating.
#[derive(Debug)]
pub struct PacketWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u16,
}

impl<'a> PacketWriter<'a> {
    /// Starts a packet of `session` whose first message is `sequence`. The
    /// packet may use all of `buf` (pass a slice of the largest payload the
    /// path carries, e.g. MTU − 28 for IPv4/UDP).
    ///
    /// # Errors
    /// [`Error::Truncated`] when `buf` cannot hold the header.
    pub fn new(buf: &'a mut [u8], session: Session, sequence: u64) -> Result<Self> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_session(session);
        p.set_sequence(sequence);
        p.set_count_field(0);
        Ok(Self {
            buf,
            len: HEADER_LEN,
            count: 0,
        })
    }

    /// Room left for the body of one more message.
    #[must_use]
    pub fn room(&self) -> usize {
        if self.count == END_OF_SESSION - 1 {
            return 0;
        }
        (self.buf.len() - self.len).saturating_sub(BLOCK_HEADER_LEN)
    }

    /// Appends one message.
    ///
    /// # Errors
    /// [`Error::Truncated`] when it does not fit (the packet is unchanged);
    /// [`Error::Malformed`] when the message is longer than 65535 bytes.
    pub fn push(&mut self, msg: &[u8]) -> Result<()> {
        let len = u16::try_from(msg.len()).map_err(|_| Error::Malformed)?;
        // The length prefix needs room too, also for an empty message (for
        // which `room()` cannot tell 0 bytes left from exactly the prefix).
        if self.count == END_OF_SESSION - 1
            || BLOCK_HEADER_LEN + msg.len() > self.buf.len() - self.len
        {
            return Err(Error::Truncated);
        }
        let at = self.len;
        self.buf[at..at + BLOCK_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        self.buf[at + BLOCK_HEADER_LEN..at + BLOCK_HEADER_LEN + msg.len()].copy_from_slice(msg);
        self.len += BLOCK_HEADER_LEN + msg.len();
        self.count += 1;
        Packet::new_unchecked(&mut self.buf[..]).set_count_field(self.count);
        Ok(())
    }

    /// Messages appended so far.
    #[must_use]
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Finishes the packet; returns its length in the buffer. A packet with
    /// no message is a heartbeat.
    #[must_use]
    pub fn finish(self) -> usize {
        self.len
    }
}

/// A read/write view of a request packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Request<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Request::check_len`].
    ///
    /// # Errors
    /// As [`Request::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures the buffer is exactly one request.
    ///
    /// # Errors
    /// [`Error::Truncated`] when shorter than [`HEADER_LEN`],
    /// [`Error::Malformed`] when longer.
    pub fn check_len(&self) -> Result<()> {
        match self.buffer.as_ref().len() {
            n if n < HEADER_LEN => Err(Error::Truncated),
            HEADER_LEN => Ok(()),
            _ => Err(Error::Malformed),
        }
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> Session {
        let mut s = [0u8; SESSION_LEN];
        s.copy_from_slice(&self.buffer.as_ref()[field::SESSION]);
        Session(s)
    }

    /// The first sequence number asked for.
    #[must_use]
    pub fn sequence(&self) -> u64 {
        read_u64(&self.buffer.as_ref()[field::SEQ])
    }

    /// How many messages are asked for.
    #[must_use]
    pub fn count(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::COUNT])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Request<T> {
    /// Writes the session.
    pub fn set_session(&mut self, s: Session) {
        self.buffer.as_mut()[field::SESSION].copy_from_slice(&s.0);
    }

    /// Writes the first sequence number asked for.
    pub fn set_sequence(&mut self, v: u64) {
        self.buffer.as_mut()[field::SEQ].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the count.
    pub fn set_count(&mut self, v: u16) {
        self.buffer.as_mut()[field::COUNT].copy_from_slice(&v.to_be_bytes());
    }
}

/// A request packet, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRepr {
    /// The session.
    pub session: Session,
    /// First sequence number asked for.
    pub sequence: u64,
    /// How many messages.
    pub count: u16,
}

impl RequestRepr {
    /// Reads a checked request.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the count is 0 or the end-of-session marker.
    pub fn parse<T: AsRef<[u8]>>(p: &Request<T>) -> Result<Self> {
        let count = p.count();
        if count == 0 || count == END_OF_SESSION {
            return Err(Error::Malformed);
        }
        Ok(Self {
            session: p.session(),
            sequence: p.sequence(),
            count,
        })
    }

    /// Length of a request.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the request.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Request<T>) {
        p.set_session(self.session);
        p.set_sequence(self.sequence);
        p.set_count(self.count);
    }
}

fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Session "SESS1", sequence 7, two messages: "ab" and "xyz".
    static PACKET_BYTES: [u8; 29] = [
        b'S', b'E', b'S', b'S', b'1', b' ', b' ', b' ', b' ', b' ', //
        0, 0, 0, 0, 0, 0, 0, 7, //
        0, 2, //
        0, 2, b'a', b'b', //
        0, 3, b'x', b'y', b'z',
    ];

    static REQUEST_BYTES: [u8; 20] = [
        b'S', b'E', b'S', b'S', b'1', b' ', b' ', b' ', b' ', b' ', //
        0, 0, 0, 0, 0, 0, 1, 0, //
        0, 5,
    ];

    fn session() -> Session {
        Session::new("SESS1").unwrap()
    }

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(p.session(), session());
        assert_eq!(p.sequence(), 7);
        assert_eq!(p.kind(), Kind::Messages(2));
        let msgs: Vec<&[u8]> = p.messages().collect();
        assert_eq!(msgs, vec![&b"ab"[..], &b"xyz"[..]]);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 64];
        let mut w = PacketWriter::new(&mut buf, session(), 7).unwrap();
        w.push(b"ab").unwrap();
        w.push(b"xyz").unwrap();
        assert_eq!(w.count(), 2);
        let n = w.finish();
        assert_eq!(&buf[..n], &PACKET_BYTES[..]);
    }

    #[test]
    fn test_parse_emit_header() {
        let p = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr {
                session: session(),
                sequence: 7,
                kind: Kind::Messages(2)
            }
        );
        let mut buf = PACKET_BYTES;
        buf[..HEADER_LEN].fill(0);
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, PACKET_BYTES);
    }

    #[test]
    fn heartbeat_and_end_of_session() {
        let mut buf = [0u8; HEADER_LEN];
        let w = PacketWriter::new(&mut buf, session(), 42).unwrap();
        assert_eq!(w.finish(), HEADER_LEN);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.kind(), Kind::Heartbeat);
        assert_eq!(p.sequence(), 42);
        assert_eq!(p.messages().count(), 0);

        Packet::new_unchecked(&mut buf[..]).set_count_field(END_OF_SESSION);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.kind(), Kind::EndOfSession);
        assert_eq!(p.messages().count(), 0);
    }

    #[test]
    fn truncated_and_trailing_bytes() {
        for n in 0..PACKET_BYTES.len() {
            assert_eq!(
                Packet::new_checked(&PACKET_BYTES[..n]).unwrap_err(),
                Error::Truncated,
                "length {n}"
            );
        }
        let mut long = PACKET_BYTES.to_vec();
        long.push(0);
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            Error::Malformed
        );
        // A heartbeat with a body.
        let mut hb = [0u8; HEADER_LEN + 1];
        hb[..HEADER_LEN].copy_from_slice(&PACKET_BYTES[..HEADER_LEN]);
        hb[18] = 0;
        hb[19] = 0;
        assert_eq!(Packet::new_checked(&hb[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn writer_stops_when_full() {
        let mut buf = [0u8; HEADER_LEN + 6];
        let mut w = PacketWriter::new(&mut buf, session(), 1).unwrap();
        w.push(b"abcd").unwrap();
        assert_eq!(w.room(), 0);
        assert_eq!(w.push(b"x").unwrap_err(), Error::Truncated);
        assert_eq!(w.count(), 1);
        let n = w.finish();
        let p = Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.messages().collect::<Vec<_>>(), vec![&b"abcd"[..]]);
        assert!(PacketWriter::new(&mut [0u8; 19], session(), 1).is_err());
    }

    #[test]
    fn writer_refuses_an_empty_message_without_room_for_its_length() {
        // One byte left: an empty message still needs its 2-byte length
        // (this panicked writing past the buffer; the publisher's
        // re-request replies reached it).
        let mut buf = [0u8; HEADER_LEN + 1];
        let mut w = PacketWriter::new(&mut buf, session(), 1).unwrap();
        assert_eq!(w.push(b"").unwrap_err(), Error::Truncated);
        assert_eq!((w.count(), w.finish()), (0, HEADER_LEN));
        let mut buf = [0u8; HEADER_LEN + 3];
        let mut w = PacketWriter::new(&mut buf, session(), 1).unwrap();
        w.push(b"").unwrap();
        assert_eq!(w.push(b"").unwrap_err(), Error::Truncated);
        let n = w.finish();
        let p = Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.messages().collect::<Vec<_>>(), vec![&b""[..]]);
    }

    #[test]
    fn request_round_trip() {
        let r = Request::new_checked(&REQUEST_BYTES[..]).unwrap();
        let repr = RequestRepr::parse(&r).unwrap();
        assert_eq!(
            repr,
            RequestRepr {
                session: session(),
                sequence: 256,
                count: 5
            }
        );
        let mut buf = [0u8; HEADER_LEN];
        repr.emit(&mut Request::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST_BYTES);
        assert_eq!(
            Request::new_checked(&REQUEST_BYTES[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Request::new_checked(&[0u8; 21][..]).unwrap_err(),
            Error::Malformed
        );
        let mut zero = REQUEST_BYTES;
        zero[19] = 0;
        assert_eq!(
            RequestRepr::parse(&Request::new_checked(&zero[..]).unwrap()).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn session_names() {
        assert_eq!(session().to_string(), "SESS1");
        assert_eq!(Session::new("0123456789").unwrap().trimmed(), b"0123456789");
        assert!(Session::new("01234567890").is_err());
        assert!(Session::new("a\nb").is_err());
        assert_eq!(Session([0xff; 10]).to_string().len(), 40);
    }
}
