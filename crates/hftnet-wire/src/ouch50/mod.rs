//! Nasdaq OUCH 5.0: the order-entry messages a client sends to the exchange
//! (inbound: [`EnterOrder`], [`ReplaceOrder`], [`CancelOrder`],
//! [`ModifyOrder`], [`AccountQuery`]) and the exchange sends back
//! (outbound: [`SystemEvent`], [`OrderAccepted`], [`OrderReplaced`],
//! [`OrderCanceled`], [`AiqCanceled`], [`OrderExecuted`], [`BrokenTrade`],
//! [`Rejected`], [`CancelPending`], [`CancelReject`],
//! [`OrderPriorityUpdate`], [`OrderModified`], [`OrderRestated`],
//! [`AccountQueryResponse`]), with the tag-value optional appendage
//! ([`Options`]).
//!
//! This is the codec layer under the order-entry session: one message is the
//! payload of one SoupBinTCP data packet (unsequenced for inbound, sequenced
//! for outbound). All integers are big-endian; prices are 8-byte integers
//! with 4 implied decimals ([`Price`]), peg offsets 4-byte signed ones
//! ([`SignedPrice`]); alpha fields are space-padded ASCII ([`Symbol`],
//! [`ClOrdId`], [`Firm`], [`Route`]); timestamps are `u64` nanoseconds since
//! midnight.
//!
//! Two ways in, as in every codec of this crate:
//! - **Views**, for the hot path: one per message type, over any
//!   `T: AsRef<[u8]>`, reading each field from the buffer when its getter is
//!   called, and writing it in place through the setters when
//!   `T: AsMut<[u8]>`. No copy, no enum.
//! - **Reprs**, plain `Copy` structs with typed fields ([`EnterOrderRepr`],
//!   ...), with `decode` / `encode` on a byte slice, and the enums over them,
//!   [`InboundMessage`] and [`OutboundMessage`], whose `parse` dispatches on
//!   the type byte. The same letter means different messages in the two
//!   directions (`U`, `M`, `Q`), so the caller says which it reads
//!   ([`Message::parse`] takes the [`Direction`] for readers of both).
//!
//! The contract: once `new_checked` (or `check_len`) returned `Ok`, no
//! accessor panics, whatever the bytes are. Fields whose byte may lie
//! outside the set OUCH defines for them ([`Side`], [`TimeInForce`], ...)
//! return `Result` from their getter, and the error names the field
//! ([`Error::InvalidField`]), so an exchange can answer with the matching
//! reject reason ([`Field::reject_reason`]); the UserRefNum and ClOrdID
//! that a [`Rejected`] echoes still read from the view, whose integer and
//! alpha getters cannot fail. Code sets Nasdaq extends over
//! time ([`CancelReason`], [`RejectReason`], [`LiquidityFlag`], ...) keep an
//! unknown code as `Unknown(code)` instead, so such a message stays readable.
//! Nothing here allocates, does I/O or uses `unsafe`; errors are the small
//! `Copy` [`Error`], convertible to the crate's [`crate::Error`].
//!
//! Lengths: OUCH messages have a fixed length, plus the optional appendage
//! for the six types that carry one (its length is the two bytes before it).
//! The framing (SoupBinTCP) gives the length of one message, and `parse` /
//! `decode` require it to be exact: shorter is [`Error::Truncated`], any
//! other mismatch [`Error::Length`]. A view's `check_len` only requires that
//! every field, appendage included, lies inside the buffer.
//!
//! ```
//! use hftnet_wire::ouch50::{
//!     ClOrdId, CrossType, Display, EnterOrderRepr, InboundMessage, IntermarketSweep,
//!     Capacity, OptionTag, Options, Price, Side, Symbol, TagValue, TimeInForce,
//! };
//!
//! // The trader: an IOC buy of 100 AAPL at 185.25, the triggering market data
//! // sequence number in the ClOrdID, a minimum quantity in the appendage.
//! let mut options = Options::new();
//! options.push(TagValue::MinQty(100))?;
//! let order = EnterOrderRepr {
//!     user_ref_num: 7,
//!     side: Side::Buy,
//!     quantity: 100,
//!     symbol: Symbol::new("AAPL")?,
//!     price: Price::from_raw(1_852_500),
//!     time_in_force: TimeInForce::Ioc,
//!     display: Display::Visible,
//!     capacity: Capacity::Agency,
//!     intermarket_sweep: IntermarketSweep::NotEligible,
//!     cross_type: CrossType::ContinuousMarket,
//!     cl_ord_id: ClOrdId::from_number(123_456)?,
//!     options,
//! };
//! let mut buf = [0u8; 64];
//! let n = order.encode(&mut buf)?;
//! assert_eq!(n, 47 + 6);
//!
//! // The exchange: one SoupBinTCP payload in, one typed message out.
//! match InboundMessage::parse(&buf[..n])? {
//!     InboundMessage::EnterOrder(o) => {
//!         assert_eq!(o.price.to_string(), "185.2500");
//!         assert_eq!(o.cl_ord_id.number(), Some(123_456));
//!         assert_eq!(o.options.get(OptionTag::MinQty), Some(TagValue::MinQty(100)));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[macro_use]
mod macros;

mod codes;
mod inbound;
mod options;
mod outbound;
mod types;

use core::fmt;

pub use codes::{CancelReason, LiquidityFlag, RejectReason};
pub use inbound::*;
pub use options::{
    BboWeightIndicator, CustomerType, HandleInst, OptionTag, Options, OptionsIter, PostOnly,
    PriceType, SharesLocated, TagValue, TradeNow,
};
pub use outbound::*;
pub use types::{
    BrokenTradeReason, Capacity, ClOrdId, CrossType, Display, EventCode, Firm, IntermarketSweep,
    OrderState, Price, RestateReason, Route, Side, SignedPrice, Symbol, TimeInForce,
};

/// Which way a message travels. The same type letter means different
/// messages in the two directions (`U`, `M`, `Q`), so a reader of both (a
/// session recorder, a capture dissector) says which it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to exchange ([`InboundMessage`]).
    Inbound,
    /// Exchange to client ([`OutboundMessage`]).
    Outbound,
}

/// An OUCH 5.0 message of either direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// Client to exchange.
    Inbound(InboundMessage),
    /// Exchange to client.
    Outbound(OutboundMessage),
}

impl Message {
    /// Reads one message travelling in direction `dir`; `buf` is exactly one
    /// message as framed.
    ///
    /// # Errors
    /// As [`InboundMessage::parse`] / [`OutboundMessage::parse`].
    pub fn parse(dir: Direction, buf: &[u8]) -> Result<Self> {
        match dir {
            Direction::Inbound => InboundMessage::parse(buf).map(Self::Inbound),
            Direction::Outbound => OutboundMessage::parse(buf).map(Self::Outbound),
        }
    }

    /// Writes the message at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buf` is shorter than
    /// [`Self::buffer_len`] (nothing is written).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        match self {
            Self::Inbound(m) => m.emit(buf),
            Self::Outbound(m) => m.emit(buf),
        }
    }

    /// Length of the message, appendage included.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        match self {
            Self::Inbound(m) => m.buffer_len(),
            Self::Outbound(m) => m.buffer_len(),
        }
    }

    /// The direction.
    #[must_use]
    pub const fn direction(&self) -> Direction {
        match self {
            Self::Inbound(_) => Direction::Inbound,
            Self::Outbound(_) => Direction::Outbound,
        }
    }

    /// The type byte.
    #[must_use]
    pub const fn msg_type(&self) -> u8 {
        match self {
            Self::Inbound(m) => m.msg_type(),
            Self::Outbound(m) => m.msg_type(),
        }
    }

    /// The snake_case name of the message type, e.g. `"order_executed"`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Inbound(m) => m.message_type().name(),
            Self::Outbound(m) => m.message_type().name(),
        }
    }
}

impl From<InboundMessage> for Message {
    fn from(m: InboundMessage) -> Self {
        Self::Inbound(m)
    }
}

impl From<OutboundMessage> for Message {
    fn from(m: OutboundMessage) -> Self {
        Self::Outbound(m)
    }
}

/// A one-byte code field of a closed set, named in [`Error::InvalidField`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// [`Side`].
    Side,
    /// [`TimeInForce`].
    TimeInForce,
    /// [`Display`].
    Display,
    /// [`Capacity`].
    Capacity,
    /// [`IntermarketSweep`].
    IntermarketSweep,
    /// [`CrossType`].
    CrossType,
    /// [`OrderState`].
    OrderState,
    /// [`EventCode`].
    EventCode,
    /// [`BrokenTradeReason`].
    BrokenTradeReason,
    /// [`RestateReason`].
    RestateReason,
    /// [`CustomerType`] (option 4).
    CustomerType,
    /// [`PriceType`] (options 6 and 10).
    PriceType,
    /// [`PostOnly`] (option 12).
    PostOnly,
    /// [`TradeNow`] (option 16).
    TradeNow,
    /// [`HandleInst`] (option 17).
    HandleInst,
    /// [`BboWeightIndicator`] (option 18).
    BboWeightIndicator,
    /// [`SharesLocated`] (option 25).
    SharesLocated,
}

impl Field {
    /// The field's name as the specification writes it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Side => "Side",
            Self::TimeInForce => "Time In Force",
            Self::Display => "Display",
            Self::Capacity => "Capacity",
            Self::IntermarketSweep => "InterMarket Sweep Eligibility",
            Self::CrossType => "CrossType",
            Self::OrderState => "Order State",
            Self::EventCode => "Event Code",
            Self::BrokenTradeReason => "Broken Trade Reason",
            Self::RestateReason => "Restate Reason",
            Self::CustomerType => "CustomerType",
            Self::PriceType => "PriceType",
            Self::PostOnly => "PostOnly",
            Self::TradeNow => "TradeNow",
            Self::HandleInst => "HandleInst",
            Self::BboWeightIndicator => "BBO Weight Indicator",
            Self::SharesLocated => "SharesLocated",
        }
    }

    /// The Appendix D reason an exchange answers an Enter or Replace Order
    /// with when this field holds a value it does not accept.
    #[must_use]
    pub const fn reject_reason(self) -> RejectReason {
        match self {
            Self::Side => RejectReason::InvalidSide,
            Self::Display => RejectReason::InvalidDisplay,
            Self::CrossType => RejectReason::InvalidCrossOrder,
            Self::PriceType => RejectReason::InvalidPegType,
            _ => RejectReason::Other,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why bytes could not be read as an OUCH message, or a message could not be
/// written. Small and `Copy`; every variant carries what the caller needs to
/// count it or answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is empty: there is no type byte.
    Empty,
    /// The type byte names no message of this direction.
    UnknownType {
        /// The type byte.
        msg_type: u8,
    },
    /// The buffer is shorter than the message's fixed part, or than the fixed
    /// part plus the appendage length it declares.
    Truncated {
        /// The type byte.
        msg_type: u8,
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The buffer is longer than the message (fixed part plus appendage):
    /// OUCH messages have an exact length.
    Length {
        /// The type byte.
        msg_type: u8,
        /// Bytes given.
        len: usize,
        /// The message's length.
        expected: usize,
    },
    /// A view of one type was asked to parse a message of another.
    WrongType {
        /// The type byte of the view's message.
        expected: u8,
        /// The type byte found.
        found: u8,
    },
    /// A code field holds a byte the specification does not define for it.
    InvalidField {
        /// Which field.
        field: Field,
        /// The byte found.
        byte: u8,
    },
    /// A TagValue element of the appendage has length 0 or runs past the end
    /// of the appendage.
    OptionTruncated {
        /// Offset of the element's length byte in the appendage.
        offset: usize,
    },
    /// A known option tag with a value of the wrong size (Appendix B).
    OptionLength {
        /// The option tag.
        tag: u8,
        /// The value size found.
        len: usize,
    },
    /// The appendage is longer than [`Options::CAPACITY`] bytes (on parse),
    /// or an option does not fit in what is left of it (on push).
    AppendageTooLong {
        /// The length the appendage would have.
        len: usize,
    },
    /// The output buffer is too small for the message.
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        len: usize,
    },
    /// A value does not fit the field it is meant for (a ClOrdID number of
    /// more than 14 digits, a price beyond a 4-byte ITCH price, an unknown
    /// option value longer than 254 bytes).
    OutOfRange,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("empty OUCH message: no type byte"),
            Self::UnknownType { msg_type } => write!(
                f,
                "unknown OUCH message type 0x{msg_type:02x}: skip it (wrong direction, or not OUCH 5.0)"
            ),
            Self::Truncated {
                msg_type,
                len,
                need,
            } => write!(
                f,
                "OUCH message 0x{msg_type:02x} truncated: {len} bytes, needs {need}"
            ),
            Self::Length {
                msg_type,
                len,
                expected,
            } => write!(
                f,
                "OUCH message 0x{msg_type:02x} is {len} bytes, its length is exactly {expected}"
            ),
            Self::WrongType { expected, found } => write!(
                f,
                "OUCH message type 0x{found:02x} read as type 0x{expected:02x}"
            ),
            Self::InvalidField { field, byte } => write!(
                f,
                "OUCH field {field} holds 0x{byte:02x}, not a value OUCH 5.0 defines for it"
            ),
            Self::OptionTruncated { offset } => write!(
                f,
                "OUCH appendage: the TagValue element at offset {offset} has length 0 or runs past the appendage"
            ),
            Self::OptionLength { tag, len } => write!(
                f,
                "OUCH appendage: option {tag} has a {len}-byte value, Appendix B gives another size"
            ),
            Self::AppendageTooLong { len } => write!(
                f,
                "OUCH appendage of {len} bytes exceeds the {} bytes this codec holds",
                Options::CAPACITY
            ),
            Self::BufferTooSmall { need, len } => write!(
                f,
                "output buffer of {len} bytes is too small for an OUCH message of {need}"
            ),
            Self::OutOfRange => f.write_str("value out of range for its OUCH field"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for crate::Error {
    /// Short input (or output) maps to [`crate::Error::Truncated`], anything
    /// else to [`crate::Error::Malformed`].
    fn from(e: Error) -> Self {
        match e {
            Error::Empty | Error::Truncated { .. } | Error::BufferTooSmall { .. } => {
                Self::Truncated
            }
            _ => Self::Malformed,
        }
    }
}

/// Result of an OUCH codec operation.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian `u16` at `at` (the caller checked the length).
#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
