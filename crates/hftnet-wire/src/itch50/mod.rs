//! Nasdaq TotalView-ITCH 5.0: the messages of Nasdaq's order-level market data
//! feed, and the file format Nasdaq publishes them in.
//!
//! This is the codec layer under the feed handler: it reads and writes the
//! bytes of one message as framed by MoldUDP64 ([`crate::moldudp64`]),
//! SoupBinTCP or an ITCH file ([`file`](mod@file)). Every message starts with the same
//! 11 bytes ([`Header`]: type, stock locate, tracking number, 48-bit
//! timestamp); all integers are big-endian; prices carry 4 implied decimals
//! ([`Price4`]) or 8 ([`Price8`]); symbols are space-padded ASCII ([`Stock`]).
//!
//! Two ways in, as in every codec of this crate:
//! - **Views**, for the hot path: one per message type ([`AddOrder`],
//!   [`OrderExecuted`], ...), over any `T: AsRef<[u8]>`, reading each field
//!   lazily from the buffer when its getter is called. No copy, no enum.
//! - **Reprs**, plain `Copy` structs with typed fields ([`AddOrderRepr`], ...),
//!   and [`Message`], the enum over all of them, with [`Message::parse`] and
//!   [`Message::emit`].
//!
//! The contract: once `new_checked` (or `check_len`) returned `Ok`, no
//! accessor panics, whatever the bytes are. Fields whose byte may lie outside
//! the set ITCH defines ([`Side`], [`EventCode`]) return `Result` from their
//! getter instead. Nothing here allocates, does I/O or uses `unsafe`; errors
//! are the small `Copy` [`Error`](crate::Error).
//!
//! Lengths follow the framing:
//! - An empty buffer, or one shorter than its type's length, is
//!   [`Error::Truncated`](crate::Error::Truncated).
//! - A buffer **longer** than its type's length parses, and the extra bytes
//!   are ignored: the length comes from the framing, and Nasdaq has appended
//!   fields to messages before. Emitting writes the defined length only.
//! - An unknown type byte is not an error: [`Message::parse`] returns
//!   [`Message::Unknown`] with the byte and the framed length, so the caller
//!   skips and counts it.
//!
//! ```
//! use hftnet_wire::itch50::{AddOrder, Message, MessageType, Side, file};
//!
//! # let mut day = [0u8; 64];
//! # let n = file::emit_record(&Message::parse(&[
//! #     b'A', 0, 13, 0, 1, 0x1f, 0x1a, 0xce, 0xd9, 0xf0, 0x7b, 1, 2, 3, 4, 5, 6, 7, 8, b'B',
//! #     0, 0, 0, 100, b'A', b'A', b'P', b'L', b' ', b' ', b' ', b' ', 0, 0x1c, 0x44, 0x54,
//! # ]).unwrap(), &mut day).unwrap();
//! # let day = &day[..n];
//! let mut counts = [0u64; MessageType::COUNT];
//! for record in file::Records::new(day) {
//!     let msg = record?;
//!     match MessageType::from_byte(msg[0]) {
//!         Some(t) => counts[t.index()] += 1,
//!         None => continue, // unknown type: skip it by its length
//!     }
//!     // Hot path: read the fields in place.
//!     if msg[0] == b'A' {
//!         let add = AddOrder::new_checked(msg)?;
//!         assert_eq!(add.side()?, Side::Buy);
//!         assert_eq!(add.price().to_string(), "185.2500");
//!     }
//!     // Or parse into a Copy struct.
//!     if let Message::AddOrder(a) = Message::parse(msg)? {
//!         assert_eq!(a.stock.to_string(), "AAPL");
//!     }
//! }
//! assert_eq!(counts[MessageType::AddOrder.index()], 1);
//! # Ok::<(), hftnet_wire::Error>(())
//! ```

#[macro_use]
mod macros;

pub mod codes;
pub mod file;
mod header;
mod messages;
mod types;

pub use header::{HEADER_LEN, Header, HeaderRepr};
pub use messages::*;
#[cfg(test)]
pub(crate) use types::FromSeed;
pub use types::{
    EventCode, IssueSubType, Mpid, Price4, Price8, ReasonCode, Side, Stock, Timestamp,
};
pub(crate) use types::{Wire, alpha, fixed_price};

/// What every message repr (`AddOrderRepr`, ...) has: its length, and
/// writing it as bytes. For code that makes messages of many types and
/// writes each where it is made, without building a [`Message`] first.
pub trait ItchRepr: Copy + Into<Message> {
    /// The message's length in bytes (its type's defined length).
    const LEN: usize;

    /// Writes the whole message, type byte included, at the start of `buf`;
    /// returns [`ItchRepr::LEN`], or `None` (nothing written) when `buf` is
    /// shorter.
    fn emit_bytes(&self, buf: &mut [u8]) -> Option<usize>;
}
