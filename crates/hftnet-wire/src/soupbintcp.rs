//! SoupBinTCP 4.0 / 4.1: Nasdaq's point-to-point session protocol over TCP,
//! the envelope OUCH travels in. Every logical packet is a 2-byte big-endian
//! length (counting the type byte and the payload), a type byte, and a
//! payload:
//!
//! ```text
//!  0        2      3
//! +--------+------+------------------------+
//! | length | type | payload (length - 1)   |
//! +--------+------+------------------------+
//! ```
//!
//! | type | sent by | name               | payload                                   |
//! |------|---------|--------------------|-------------------------------------------|
//! | `+`  | both    | Debug              | free text                                 |
//! | `A`  | server  | Login Accepted     | session (10), sequence number (20)        |
//! | `J`  | server  | Login Rejected     | reason (1): `A` not authorized, `S` session not available |
//! | `S`  | server  | Sequenced Data     | one higher-level message                  |
//! | `U`  | both    | Unsequenced Data   | one higher-level message                  |
//! | `H`  | server  | Server Heartbeat   | —                                         |
//! | `Z`  | server  | End of Session     | —                                         |
//! | `L`  | client  | Login Request      | username (6), password (10), requested session (10), requested sequence number (20), 4.1: heartbeat timeout ms (5) |
//! | `R`  | client  | Client Heartbeat   | —                                         |
//! | `O`  | client  | Logout Request     | —                                         |
//!
//! Field encodings, as the specification's tables give them: alphanumeric
//! fields are ASCII padded with spaces — username and password on the right
//! (and compared case-insensitively), the requested session on the right,
//! the session of a Login Accepted on the **left**; numeric fields are ASCII
//! decimal, padded on the left with spaces. Parsing accepts padding on either
//! side (implementations differ) and a blank numeric field as 0.
//!
//! Three ways in:
//! - [`Packet`], a view over one whole frame (length prefix included) with
//!   the header getters and setters;
//! - [`Repr`], the parsed packet (payloads borrowed, no copy), with
//!   [`Repr::parse`] and [`Repr::emit`];
//! - [`FrameSplitter`], the incremental splitter for a TCP byte stream: feed
//!   it chunks of any size, take whole frames out. Its buffer is allocated
//!   once, sized to the largest frame it accepts; splitting never allocates.
//!
//! The contract: once [`Packet::new_checked`] returned `Ok`, no accessor
//! panics, whatever the bytes are; [`Repr::parse`] and the splitter never
//! panic either. Nothing here does I/O or uses `unsafe`.

use core::fmt;

use crate::itch50::file;
use crate::{Error, Result};

pub use crate::moldudp64::Session;

mod field {
    use core::ops::Range;
    pub const LENGTH: Range<usize> = 0..2;
    pub const TYPE: usize = 2;
    pub const PAYLOAD: usize = 3;

    // Offsets inside the payload (the specification's offsets minus 3).
    pub const ACCEPTED_SESSION: Range<usize> = 0..10;
    pub const ACCEPTED_SEQUENCE: Range<usize> = 10..30;
    pub const LOGIN_USERNAME: Range<usize> = 0..6;
    pub const LOGIN_PASSWORD: Range<usize> = 6..16;
    pub const LOGIN_SESSION: Range<usize> = 16..26;
    pub const LOGIN_SEQUENCE: Range<usize> = 26..46;
    pub const LOGIN_HEARTBEAT: Range<usize> = 46..51;
}

/// Bytes in front of every payload: the length (2) and the type (1).
pub const HEADER_LEN: usize = field::PAYLOAD;
/// The largest value of the length field.
pub const MAX_LENGTH: usize = u16::MAX as usize;
/// The largest payload a packet can carry (the length counts the type byte).
pub const MAX_PAYLOAD_LEN: usize = MAX_LENGTH - 1;
/// Payload length of a Login Accepted packet.
pub const LOGIN_ACCEPTED_LEN: usize = field::ACCEPTED_SEQUENCE.end;
/// Payload length of a SoupBinTCP 4.0 Login Request.
pub const LOGIN_REQUEST_LEN: usize = field::LOGIN_SEQUENCE.end;
/// Payload length of a SoupBinTCP 4.1 Login Request (with the heartbeat
/// timeout).
pub const LOGIN_REQUEST_41_LEN: usize = field::LOGIN_HEARTBEAT.end;
/// The largest heartbeat timeout a 4.1 Login Request can carry (5 digits).
pub const MAX_HEARTBEAT_TIMEOUT_MS: u32 = 99_999;

/// The packet type bytes.
pub mod packet_type {
    /// Debug, either direction.
    pub const DEBUG: u8 = b'+';
    /// Login Accepted, server → client.
    pub const LOGIN_ACCEPTED: u8 = b'A';
    /// Login Rejected, server → client.
    pub const LOGIN_REJECTED: u8 = b'J';
    /// Sequenced Data, server → client.
    pub const SEQUENCED_DATA: u8 = b'S';
    /// Unsequenced Data, either direction.
    pub const UNSEQUENCED_DATA: u8 = b'U';
    /// Server Heartbeat.
    pub const SERVER_HEARTBEAT: u8 = b'H';
    /// End of Session, server → client.
    pub const END_OF_SESSION: u8 = b'Z';
    /// Login Request, client → server.
    pub const LOGIN_REQUEST: u8 = b'L';
    /// Client Heartbeat.
    pub const CLIENT_HEARTBEAT: u8 = b'R';
    /// Logout Request, client → server.
    pub const LOGOUT_REQUEST: u8 = b'O';
}

/// Why bytes are not a SoupBinTCP packet, precisely enough to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Shorter than the header, or than the length field claims.
    Truncated,
    /// The length field is 0: not even a type byte.
    ZeroLength,
    /// A type byte SoupBinTCP does not define.
    UnknownType(u8),
    /// A payload length the packet type does not allow.
    BadLength {
        /// The type byte.
        packet_type: u8,
        /// The payload length received.
        len: usize,
    },
    /// A field holds a value its encoding does not allow (a numeric field
    /// with a non-digit, or a number too large; a session name with a byte
    /// that is not printable ASCII).
    BadField {
        /// The type byte.
        packet_type: u8,
    },
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::Truncated => Self::Truncated,
            _ => Self::Malformed,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated SoupBinTCP packet"),
            Self::ZeroLength => f.write_str("SoupBinTCP packet of length 0 (no type byte)"),
            Self::UnknownType(t) => write!(f, "unknown SoupBinTCP packet type {}", Byte(*t)),
            Self::BadLength { packet_type, len } => write!(
                f,
                "SoupBinTCP packet type {} with a payload of {len} bytes, which its type does not allow",
                Byte(*packet_type)
            ),
            Self::BadField { packet_type } => write!(
                f,
                "SoupBinTCP packet type {} with a malformed field",
                Byte(*packet_type)
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// A byte shown as `'c'` when printable, `0xNN` otherwise.
struct Byte(u8);

impl fmt::Display for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0 as char)
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

/// A read/write view of one SoupBinTCP frame, length prefix included.
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
    pub fn new_checked(buffer: T) -> core::result::Result<Self, ParseError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Ensures the header and the payload the length announces lie inside
    /// the buffer. Bytes after the frame (the next frame of a stream) are
    /// allowed and ignored; [`Packet::frame_len`] tells where it ends.
    ///
    /// # Errors
    /// [`ParseError::Truncated`] when the buffer is shorter than the header
    /// or than the length announces; [`ParseError::ZeroLength`] when the
    /// length field is 0.
    pub fn check_len(&self) -> core::result::Result<(), ParseError> {
        let b = self.buffer.as_ref();
        let Some(&[hi, lo]) = b.first_chunk::<2>() else {
            return Err(ParseError::Truncated);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            return Err(ParseError::ZeroLength);
        }
        if b.len() < field::TYPE + len {
            return Err(ParseError::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The length field: type byte plus payload.
    #[must_use]
    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Bytes of the whole frame, length prefix included.
    #[must_use]
    pub fn frame_len(&self) -> usize {
        field::TYPE + usize::from(self.length())
    }

    /// The packet type byte (see [`packet_type`]).
    #[must_use]
    pub fn packet_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The payload (after the type byte, up to the announced length).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..self.frame_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the length field.
    pub fn set_length(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes the type byte.
    pub fn set_packet_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// The payload, writable (up to the length field's end).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.frame_len();
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }
}

/// A fixed-width alphanumeric field: `N` ASCII bytes padded with spaces on
/// the right, as the Login Request's username and password are.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Alpha<const N: usize>(pub [u8; N]);

/// The Login Request's username: 6 alphanumeric bytes.
pub type Username = Alpha<6>;
/// The Login Request's password: 10 alphanumeric bytes.
pub type Password = Alpha<10>;

impl<const N: usize> Alpha<N> {
    /// A field from text of at most `N` printable ASCII bytes, padded on
    /// the right with spaces.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the text is longer than `N` bytes or holds a
    /// byte that is not printable ASCII.
    pub fn new(text: &str) -> Result<Self> {
        let b = text.as_bytes();
        if b.len() > N || !b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            return Err(Error::Malformed);
        }
        let mut a = [b' '; N];
        a[..b.len()].copy_from_slice(b);
        Ok(Self(a))
    }

    /// The field without the padding on either side.
    #[must_use]
    pub fn trimmed(&self) -> &[u8] {
        trim(&self.0)
    }

    /// Whether two fields name the same thing the way the specification
    /// compares usernames and passwords: case-insensitively, padding
    /// ignored.
    #[must_use]
    pub fn matches(&self, other: &Self) -> bool {
        self.trimmed().eq_ignore_ascii_case(other.trimmed())
    }

    /// Whether the field is all spaces.
    #[must_use]
    pub fn is_blank(&self) -> bool {
        self.trimmed().is_empty()
    }
}

impl<const N: usize> fmt::Display for Alpha<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_ascii(f, self.trimmed())
    }
}

impl<const N: usize> fmt::Debug for Alpha<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Alpha({self})")
    }
}

fn write_ascii(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    for &c in b {
        if c.is_ascii_graphic() || c == b' ' {
            write!(f, "{}", c as char)?;
        } else {
            write!(f, "\\x{c:02x}")?;
        }
    }
    Ok(())
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|c| *c != b' ').map_or(start, |i| i + 1);
    &b[start..end]
}

/// Reads a session field padded on either side into a [`Session`] (padded
/// on the right, the form sessions are compared in); `None` when it holds a
/// byte that is not printable ASCII.
fn read_session(b: &[u8]) -> Option<Session> {
    let t = trim(b);
    if !t.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        return None;
    }
    let mut s = [b' '; 10];
    s[..t.len()].copy_from_slice(t);
    Some(Session(s))
}

/// Writes a session into a 10-byte field, padded on the left (Login
/// Accepted) or the right (Login Request).
fn write_session(out: &mut [u8], s: &Session, pad_left: bool) {
    let t = trim(&s.0);
    out.fill(b' ');
    let at = if pad_left { out.len() - t.len() } else { 0 };
    out[at..at + t.len()].copy_from_slice(t);
}

/// Reads a numeric field: ASCII digits padded with spaces (on the left per
/// the specification; either side accepted). A blank field is 0.
fn read_numeric(b: &[u8]) -> Option<u64> {
    trim(b).iter().try_fold(0u64, |acc, c| {
        if c.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// Writes `v` right-aligned in a numeric field, padded on the left with
/// spaces; `false` when it does not fit.
fn write_numeric(out: &mut [u8], mut v: u64) -> bool {
    out.fill(b' ');
    let mut at = out.len();
    loop {
        if at == 0 {
            return false;
        }
        at -= 1;
        // `v % 10` is below 10.
        out[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return true;
        }
    }
}

/// Why a server refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// `A`: the username and password do not match.
    NotAuthorized,
    /// `S`: the requested session is unknown or not available.
    SessionNotAvailable,
    /// A code the specification does not define (still a rejection).
    Other(u8),
}

impl RejectReason {
    /// The code byte.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::NotAuthorized => b'A',
            Self::SessionNotAvailable => b'S',
            Self::Other(c) => c,
        }
    }

    /// The reason of a code byte.
    #[must_use]
    pub const fn from_code(c: u8) -> Self {
        match c {
            b'A' => Self::NotAuthorized,
            b'S' => Self::SessionNotAvailable,
            c => Self::Other(c),
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAuthorized => f.write_str("not authorized (A): bad username or password"),
            Self::SessionNotAvailable => {
                f.write_str("session not available (S): unknown or ended session")
            }
            Self::Other(c) => write!(f, "unknown reject code {}", Byte(*c)),
        }
    }
}

/// The fields of a Login Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRequest {
    /// Username, case-insensitive.
    pub username: Username,
    /// Password, case-insensitive.
    pub password: Password,
    /// The session to log into; blank for the currently active one.
    pub session: Session,
    /// The next sequence number the client wants; 0 (or a blank field) to
    /// start with the most recently generated message.
    pub sequence: u64,
    /// SoupBinTCP 4.1's client heartbeat timeout in milliseconds; `None` for
    /// a 4.0 request (emitted without the field).
    pub heartbeat_timeout_ms: Option<u32>,
}

/// A SoupBinTCP packet, parsed; payloads borrow the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// `+`: free text, to be ignored by both ends.
    Debug(&'a [u8]),
    /// `A`: the session logged into and the sequence number of the next
    /// Sequenced Data packet.
    LoginAccepted {
        /// The session.
        session: Session,
        /// The next sequence number to be sent.
        sequence: u64,
    },
    /// `J`: the login was refused; the server closes the connection.
    LoginRejected(RejectReason),
    /// `S`: one sequenced message.
    SequencedData(&'a [u8]),
    /// `U`: one unsequenced message (either direction).
    UnsequencedData(&'a [u8]),
    /// `H`.
    ServerHeartbeat,
    /// `Z`: no more messages in this session.
    EndOfSession,
    /// `L`.
    LoginRequest(LoginRequest),
    /// `R`.
    ClientHeartbeat,
    /// `O`.
    LogoutRequest,
}

impl<'a> Repr<'a> {
    /// Parses a checked packet.
    ///
    /// # Errors
    /// [`ParseError::UnknownType`] for a type byte outside the table;
    /// [`ParseError::BadLength`] when the payload length does not fit the
    /// type (fixed-size types must match exactly; a Login Request is 46
    /// bytes (4.0) or 51 (4.1)); [`ParseError::BadField`] when a numeric
    /// field is not a number or overflows, or a session name holds a byte
    /// that is not printable ASCII.
    pub fn parse<T: AsRef<[u8]>>(p: &'a Packet<T>) -> core::result::Result<Self, ParseError> {
        Self::parse_frame(p.buffer.as_ref())
    }

    /// Parses the frame at the start of `frame` (length prefix included):
    /// [`Packet::new_checked`] then the rules of [`Repr::parse`].
    ///
    /// # Errors
    /// As [`Packet::check_len`] and [`Repr::parse`].
    pub fn parse_frame(frame: &'a [u8]) -> core::result::Result<Self, ParseError> {
        let p = Packet::new_checked(frame)?;
        let t = p.packet_type();
        let end = p.frame_len();
        let payload = &frame[field::PAYLOAD..end];
        let bad_len = || ParseError::BadLength {
            packet_type: t,
            len: payload.len(),
        };
        let bad_field = ParseError::BadField { packet_type: t };
        let empty = |r: Self| {
            if payload.is_empty() {
                Ok(r)
            } else {
                Err(bad_len())
            }
        };
        use packet_type as pt;
        match t {
            pt::DEBUG => Ok(Self::Debug(payload)),
            pt::SEQUENCED_DATA => Ok(Self::SequencedData(payload)),
            pt::UNSEQUENCED_DATA => Ok(Self::UnsequencedData(payload)),
            pt::SERVER_HEARTBEAT => empty(Self::ServerHeartbeat),
            pt::END_OF_SESSION => empty(Self::EndOfSession),
            pt::CLIENT_HEARTBEAT => empty(Self::ClientHeartbeat),
            pt::LOGOUT_REQUEST => empty(Self::LogoutRequest),
            pt::LOGIN_REJECTED => match payload {
                [c] => Ok(Self::LoginRejected(RejectReason::from_code(*c))),
                _ => Err(bad_len()),
            },
            pt::LOGIN_ACCEPTED => {
                if payload.len() != LOGIN_ACCEPTED_LEN {
                    return Err(bad_len());
                }
                Ok(Self::LoginAccepted {
                    session: read_session(&payload[field::ACCEPTED_SESSION]).ok_or(bad_field)?,
                    sequence: read_numeric(&payload[field::ACCEPTED_SEQUENCE]).ok_or(bad_field)?,
                })
            }
            pt::LOGIN_REQUEST => {
                let heartbeat_timeout_ms = match payload.len() {
                    LOGIN_REQUEST_LEN => None,
                    LOGIN_REQUEST_41_LEN => Some(
                        read_numeric(&payload[field::LOGIN_HEARTBEAT])
                            .and_then(|v| u32::try_from(v).ok())
                            .ok_or(bad_field)?,
                    ),
                    _ => return Err(bad_len()),
                };
                let mut username = [0u8; 6];
                username.copy_from_slice(&payload[field::LOGIN_USERNAME]);
                let mut password = [0u8; 10];
                password.copy_from_slice(&payload[field::LOGIN_PASSWORD]);
                Ok(Self::LoginRequest(LoginRequest {
                    username: Alpha(username),
                    password: Alpha(password),
                    session: read_session(&payload[field::LOGIN_SESSION]).ok_or(bad_field)?,
                    sequence: read_numeric(&payload[field::LOGIN_SEQUENCE]).ok_or(bad_field)?,
                    heartbeat_timeout_ms,
                }))
            }
            t => Err(ParseError::UnknownType(t)),
        }
    }

    /// The type byte.
    #[must_use]
    pub const fn packet_type(&self) -> u8 {
        use packet_type as pt;
        match self {
            Self::Debug(_) => pt::DEBUG,
            Self::LoginAccepted { .. } => pt::LOGIN_ACCEPTED,
            Self::LoginRejected(_) => pt::LOGIN_REJECTED,
            Self::SequencedData(_) => pt::SEQUENCED_DATA,
            Self::UnsequencedData(_) => pt::UNSEQUENCED_DATA,
            Self::ServerHeartbeat => pt::SERVER_HEARTBEAT,
            Self::EndOfSession => pt::END_OF_SESSION,
            Self::LoginRequest(_) => pt::LOGIN_REQUEST,
            Self::ClientHeartbeat => pt::CLIENT_HEARTBEAT,
            Self::LogoutRequest => pt::LOGOUT_REQUEST,
        }
    }

    /// Length of the payload [`Repr::emit`] writes.
    #[must_use]
    pub const fn payload_len(&self) -> usize {
        match self {
            Self::Debug(b) | Self::SequencedData(b) | Self::UnsequencedData(b) => b.len(),
            Self::LoginAccepted { .. } => LOGIN_ACCEPTED_LEN,
            Self::LoginRejected(_) => 1,
            Self::LoginRequest(l) => match l.heartbeat_timeout_ms {
                None => LOGIN_REQUEST_LEN,
                Some(_) => LOGIN_REQUEST_41_LEN,
            },
            Self::ServerHeartbeat
            | Self::EndOfSession
            | Self::ClientHeartbeat
            | Self::LogoutRequest => 0,
        }
    }

    /// Length of the whole frame [`Repr::emit`] writes, prefix included.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Writes the whole frame at the start of `out`; returns its length.
    ///
    /// # Errors
    /// [`Error::Truncated`] when `out` is shorter than
    /// [`Repr::buffer_len`]; [`Error::Malformed`] when the payload is longer
    /// than [`MAX_PAYLOAD_LEN`], a number does not fit its field (a sequence
    /// number fits 20 digits always; a heartbeat timeout above
    /// [`MAX_HEARTBEAT_TIMEOUT_MS`] does not), or a session name is not
    /// printable ASCII. Nothing is promised about `out` after an error.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize> {
        let payload_len = self.payload_len();
        let len = write_header(out, self.packet_type(), payload_len)?;
        let p = &mut out[HEADER_LEN..len];
        match self {
            Self::Debug(b) | Self::SequencedData(b) | Self::UnsequencedData(b) => {
                p.copy_from_slice(b);
            }
            Self::LoginAccepted { session, sequence } => {
                check_session(session)?;
                write_session(&mut p[field::ACCEPTED_SESSION], session, true);
                write_numeric(&mut p[field::ACCEPTED_SEQUENCE], *sequence);
            }
            Self::LoginRejected(r) => p[0] = r.code(),
            Self::LoginRequest(l) => {
                check_session(&l.session)?;
                p[field::LOGIN_USERNAME].copy_from_slice(&l.username.0);
                p[field::LOGIN_PASSWORD].copy_from_slice(&l.password.0);
                write_session(&mut p[field::LOGIN_SESSION], &l.session, false);
                write_numeric(&mut p[field::LOGIN_SEQUENCE], l.sequence);
                if let Some(ms) = l.heartbeat_timeout_ms
                    && (ms > MAX_HEARTBEAT_TIMEOUT_MS
                        || !write_numeric(&mut p[field::LOGIN_HEARTBEAT], u64::from(ms)))
                {
                    return Err(Error::Malformed);
                }
            }
            Self::ServerHeartbeat
            | Self::EndOfSession
            | Self::ClientHeartbeat
            | Self::LogoutRequest => {}
        }
        Ok(len)
    }
}

/// A session name must survive the trip through a space-padded field:
/// printable ASCII only (spaces inside are kept, padding is not).
fn check_session(s: &Session) -> Result<()> {
    if s.0.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        Ok(())
    } else {
        Err(Error::Malformed)
    }
}

/// Writes the 3-byte header of a packet of type `packet_type` with a
/// payload of `payload_len` bytes; returns the frame length. The caller
/// writes the payload into `out[HEADER_LEN..frame_len]` (this is how a
/// sender frames a message it keeps elsewhere without building a [`Repr`]).
///
/// # Errors
/// [`Error::Malformed`] when `payload_len` exceeds [`MAX_PAYLOAD_LEN`];
/// [`Error::Truncated`] when `out` cannot hold the frame.
pub fn write_header(out: &mut [u8], packet_type: u8, payload_len: usize) -> Result<usize> {
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(Error::Malformed);
    }
    let len = HEADER_LEN + payload_len;
    if out.len() < len {
        return Err(Error::Truncated);
    }
    // payload_len + 1 <= MAX_LENGTH, checked above.
    let length = (payload_len + 1) as u16;
    out[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    out[field::TYPE] = packet_type;
    Ok(len)
}

/// Bytes a frame with a payload of `payload_len` bytes takes on the wire.
#[must_use]
pub const fn frame_len(payload_len: usize) -> usize {
    HEADER_LEN + payload_len
}

/// Why a [`FrameSplitter`] stopped: the byte stream cannot be split any
/// further (there is no way to find the next frame), so the connection must
/// be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitError {
    /// A length field of 0: a frame without even a type byte.
    ZeroLength,
    /// A length field above the splitter's limit.
    TooLong {
        /// The length field received (type byte plus payload).
        len: usize,
        /// The largest length the splitter accepts.
        max: usize,
    },
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroLength => f.write_str(
                "SoupBinTCP frame of length 0 in the stream: it cannot be split further",
            ),
            Self::TooLong { len, max } => write!(
                f,
                "SoupBinTCP frame of length {len} exceeds the limit of {max} bytes \
                 (raise the splitter's max_length if the peer legitimately sends larger messages)"
            ),
        }
    }
}

impl std::error::Error for SplitError {}

/// Splits a TCP byte stream into whole SoupBinTCP frames.
///
/// Feed it the bytes as they arrive, in chunks of any size (one byte,
/// half a header, several frames at once), with [`FrameSplitter::feed`] or
/// by reading straight into [`FrameSplitter::spare`] and calling
/// [`FrameSplitter::commit`]; take the complete frames out with
/// [`FrameSplitter::next_frame`] until it returns `Ok(None)`. A frame is
/// borrowed from the splitter's buffer until the next call.
///
/// The buffer is allocated once in [`FrameSplitter::new`], sized to one
/// frame of the largest accepted length; nothing allocates afterwards. A
/// length field of 0 or above the limit ends the stream with a
/// [`SplitError`], returned again by every later call: nothing after it can
/// be trusted to be a frame boundary.
///
/// ```
/// use hftnet_wire::soupbintcp::{FrameSplitter, Repr};
///
/// let mut s = FrameSplitter::new(1024);
/// let stream = [0, 1, b'H', 0, 3, b'U', b'h', b'i'];
/// let mut got = Vec::new();
/// for chunk in stream.chunks(3) {
///     let mut chunk = chunk;
///     while !chunk.is_empty() {
///         let n = s.feed(chunk);
///         chunk = &chunk[n..];
///         while let Some(frame) = s.next_frame()? {
///             got.push(format!("{:?}", Repr::parse_frame(frame).unwrap()));
///         }
///     }
/// }
/// assert_eq!(got, ["ServerHeartbeat", "UnsequencedData([104, 105])"]);
/// # Ok::<(), hftnet_wire::soupbintcp::SplitError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameSplitter {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    max_length: usize,
    failed: Option<SplitError>,
}

impl FrameSplitter {
    /// A splitter accepting length fields of 1 to `max_length` (clamped to
    /// 1..=65535); its buffer holds `max_length + 2` bytes.
    #[must_use]
    pub fn new(max_length: usize) -> Self {
        let max_length = max_length.clamp(1, MAX_LENGTH);
        Self {
            buf: vec![0u8; max_length + 2].into_boxed_slice(),
            start: 0,
            end: 0,
            max_length,
            failed: None,
        }
    }

    /// The largest length field accepted.
    #[must_use]
    pub const fn max_length(&self) -> usize {
        self.max_length
    }

    /// Bytes held that do not form a whole frame yet (or that follow the
    /// frames not taken out yet).
    #[must_use]
    pub const fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The error the stream stopped with, if it did.
    #[must_use]
    pub const fn error(&self) -> Option<SplitError> {
        self.failed
    }

    /// Moves the unconsumed bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Room to read into: the caller writes up to `spare().len()` bytes of
    /// the stream there and then calls [`FrameSplitter::commit`]. Empty only
    /// while a whole frame waits to be taken out with
    /// [`FrameSplitter::next_frame`] (or after an error).
    pub fn spare(&mut self) -> &mut [u8] {
        self.compact();
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes written into [`FrameSplitter::spare`] as received
    /// (clamped to the spare room).
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies as much of `chunk` as fits; returns how many bytes were
    /// taken. Take the frames out with [`FrameSplitter::next_frame`], then
    /// feed the rest. Returns 0 only while a whole frame waits (or after an
    /// error).
    pub fn feed(&mut self, chunk: &[u8]) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        let spare = self.spare();
        let n = chunk.len().min(spare.len());
        spare[..n].copy_from_slice(&chunk[..n]);
        self.end += n;
        n
    }

    /// The next whole frame (length prefix included), or `Ok(None)` when
    /// more bytes are needed. Check the frame's contents with
    /// [`Repr::parse_frame`].
    ///
    /// # Errors
    /// [`SplitError`] when the next length field is 0 or above the limit;
    /// the same error on every later call.
    pub fn next_frame(&mut self) -> core::result::Result<Option<&[u8]>, SplitError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let rest = &self.buf[self.start..self.end];
        if let Some(&[hi, lo]) = rest.first_chunk::<2>() {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if len > self.max_length {
                let e = SplitError::TooLong {
                    len,
                    max: self.max_length,
                };
                self.failed = Some(e);
                return Err(e);
            }
        }
        match file::next_record(rest) {
            Ok(Some((_, used))) => {
                let at = self.start;
                self.start += used;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                }
                Ok(Some(&self.buf[at..at + used]))
            }
            Ok(None) => Ok(None),
            Err(_) => {
                self.failed = Some(SplitError::ZeroLength);
                Err(SplitError::ZeroLength)
            }
        }
    }
}

#[cfg(test)]
mod tests;
