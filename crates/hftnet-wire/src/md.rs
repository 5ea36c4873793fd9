//! The market-data record: what the feed handler publishes to the strategies
//! of other processes (`hftnet feed --publish shm://md`) — one fixed-size,
//! little-endian, 64-byte record per top-of-book change and per trade, and
//! one at the end of the stream.
//!
//! Layer: a sans-IO codec like the others of this crate (bytes in, a plain
//! `Copy` value out, and back); the feed handler in `hftnet-apps` fills
//! records from its books, any transport carries them (a slot of a
//! shared-memory ring, a UDP datagram), a subscriber decodes them.
//!
//! ```text
//! offset size field
//!      0    1 kind: 1 top of book, 2 trade, 3 end of stream
//!      1    1 version: 1
//!      2    1 flags, per kind (below)
//!      3    1 top: trading state (ITCH byte H, P, Q or T; 0 not known yet)
//!             trade: aggressor side (B or S; 0 not known); end: 0
//!      4    2 stock locate (u16)
//!      6    1 cause: the ITCH message type that caused it (A, E, P, ...); end: 0
//!      7    1 reserved, 0
//!      8    8 sequence number of the publisher (u64): 1, 2, 3, ... with no hole
//!     16    8 ITCH timestamp of the causing message, ns since midnight
//!     24    8 when the feed handler received the packet, CLOCK_MONOTONIC ns
//!     32    8 when the record was published, CLOCK_MONOTONIC ns
//!     40    8 stock symbol, ASCII, space-padded (all spaces: not known)
//!     48   16 body:
//!             top:   48 bid price u32, 52 bid shares u32,
//!                    56 ask price u32, 60 ask shares u32
//!             trade: 48 price u32, 52 shares u32, 56 match number u64
//!             end:   48 top-of-book records u64, 56 trade records u64
//! ```
//!
//! Top flags: `0x01` a bid, `0x02` an ask (an empty side has no flag and
//! zero price and shares), `0x04` the bid changed, `0x08` the ask changed,
//! `0x10` the trading state changed, `0x20` a side's shares were more than
//! `u32::MAX` and are written as `u32::MAX`. Trade flags: `0x01` printable
//! (ITCH `C` messages may say not: the shares are printed again later).
//! Prices are ITCH `Price(4)` integers (4 implied decimals).
//!
//! Invariants: a record is exactly [`RECORD_LEN`] bytes; [`Record::decode`]
//! never panics, accepts only what [`Record::encode`] can write (every byte
//! is checked: the kind, the version, the flags, the side or state byte,
//! the bytes kept zero), so decode-then-encode gives back the same bytes;
//! the sequence numbers of one publisher are consecutive from 1 (the end
//! record takes the next one), so a subscriber counts what it missed from
//! them alone. Nothing here allocates.

use core::fmt;

/// Bytes of every record.
pub const RECORD_LEN: usize = 64;
/// The version this module writes and reads.
pub const VERSION: u8 = 1;

mod field {
    use core::ops::Range;
    pub const KIND: usize = 0;
    pub const VERSION: usize = 1;
    pub const FLAGS: usize = 2;
    pub const SIDE: usize = 3;
    pub const LOCATE: Range<usize> = 4..6;
    pub const CAUSE: usize = 6;
    pub const RESERVED: usize = 7;
    pub const SEQUENCE: Range<usize> = 8..16;
    pub const ITCH_TS: Range<usize> = 16..24;
    pub const RX: Range<usize> = 24..32;
    pub const PUBLISH: Range<usize> = 32..40;
    pub const SYMBOL: Range<usize> = 40..48;
    pub const BODY_A: Range<usize> = 48..52;
    pub const BODY_B: Range<usize> = 52..56;
    pub const BODY_C: Range<usize> = 56..60;
    pub const BODY_D: Range<usize> = 60..64;
    pub const BODY_HI: Range<usize> = 48..56;
    pub const BODY_LO: Range<usize> = 56..64;
}

/// Offsets of the fields, for readers in other languages and for tests.
pub mod offset {
    /// Kind byte.
    pub const KIND: usize = super::field::KIND;
    /// Version byte.
    pub const VERSION: usize = super::field::VERSION;
    /// Flags byte.
    pub const FLAGS: usize = super::field::FLAGS;
    /// Trading state (top) or aggressor side (trade).
    pub const SIDE: usize = super::field::SIDE;
    /// Stock locate, u16.
    pub const LOCATE: usize = super::field::LOCATE.start;
    /// The causing ITCH message type.
    pub const CAUSE: usize = super::field::CAUSE;
    /// Sequence number, u64.
    pub const SEQUENCE: usize = super::field::SEQUENCE.start;
    /// ITCH timestamp, u64 ns since midnight.
    pub const ITCH_TIMESTAMP: usize = super::field::ITCH_TS.start;
    /// Feed receive stamp, u64 CLOCK_MONOTONIC ns.
    pub const RX_NS: usize = super::field::RX.start;
    /// Publish stamp, u64 CLOCK_MONOTONIC ns.
    pub const PUBLISH_NS: usize = super::field::PUBLISH.start;
    /// Symbol, 8 bytes.
    pub const SYMBOL: usize = super::field::SYMBOL.start;
    /// The body, 16 bytes.
    pub const BODY: usize = super::field::BODY_A.start;
}

/// The kind byte of a top-of-book record.
pub const KIND_TOP: u8 = 1;
/// The kind byte of a trade record.
pub const KIND_TRADE: u8 = 2;
/// The kind byte of the end-of-stream record.
pub const KIND_END: u8 = 3;

/// Top flag: there is a bid.
pub const TOP_BID: u8 = 0x01;
/// Top flag: there is an ask.
pub const TOP_ASK: u8 = 0x02;
/// Top flag: the bid changed.
pub const TOP_BID_CHANGED: u8 = 0x04;
/// Top flag: the ask changed.
pub const TOP_ASK_CHANGED: u8 = 0x08;
/// Top flag: the trading state changed.
pub const TOP_STATE_CHANGED: u8 = 0x10;
/// Top flag: a side's shares did not fit 32 bits and read `u32::MAX`.
pub const TOP_CLAMPED: u8 = 0x20;
const TOP_FLAGS: u8 = 0x3f;
/// Trade flag: the trade is printable.
pub const TRADE_PRINTABLE: u8 = 0x01;
const TRADE_FLAGS: u8 = 0x01;

/// Why bytes are not a record, or a record does not fit a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Not [`RECORD_LEN`] bytes.
    Length {
        /// The length found.
        len: usize,
    },
    /// A version this code does not read.
    Version {
        /// The version byte found.
        version: u8,
    },
    /// A kind byte other than 1, 2 or 3.
    UnknownKind {
        /// The kind byte found.
        kind: u8,
    },
    /// Flag bits its kind does not define.
    Flags {
        /// The kind byte.
        kind: u8,
        /// The flags byte found.
        flags: u8,
    },
    /// A trading state other than `H`, `P`, `Q`, `T` (or 0) in a top record,
    /// a side other than `B`, `S` (or 0) in a trade record.
    SideOrState {
        /// The kind byte.
        kind: u8,
        /// The byte found.
        value: u8,
    },
    /// A byte the format keeps zero (reserved, an empty side's price or
    /// shares, the header of an end record) is not.
    NotZero {
        /// Its offset.
        offset: usize,
    },
    /// Encoding into a buffer shorter than [`RECORD_LEN`].
    BufferTooSmall {
        /// The buffer's length.
        len: usize,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Length { len } => write!(
                f,
                "{len} bytes is not a market-data record (exactly {RECORD_LEN} bytes): the \
                 message was cut short (a transport with smaller messages) or is of another \
                 protocol"
            ),
            Self::Version { version } => write!(
                f,
                "market-data record version {version}, this build reads version {VERSION}: \
                 run publisher and subscriber from the same release"
            ),
            Self::UnknownKind { kind } => write!(
                f,
                "unknown market-data record kind {kind} (1 top of book, 2 trade, 3 end): not \
                 a record of this format"
            ),
            Self::Flags { kind, flags } => write!(
                f,
                "market-data record of kind {kind} with undefined flags {flags:#04x}"
            ),
            Self::SideOrState { kind, value } => write!(
                f,
                "market-data record of kind {kind}: byte 3 is {value:#04x}, expected {}",
                if kind == KIND_TOP {
                    "a trading state H, P, Q, T or 0"
                } else if kind == KIND_TRADE {
                    "a side B, S or 0"
                } else {
                    "0"
                }
            ),
            Self::NotZero { offset } => write!(
                f,
                "market-data record: byte {offset} must be zero (reserved, an empty side, or \
                 the header of an end record)"
            ),
            Self::BufferTooSmall { len } => write!(
                f,
                "a market-data record needs {RECORD_LEN} bytes, the buffer has {len}: give \
                 the transport larger messages"
            ),
        }
    }
}

impl std::error::Error for RecordError {}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// `B`.
    Buy,
    /// `S`.
    Sell,
}

impl Side {
    /// The ITCH byte.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        match self {
            Self::Buy => b'B',
            Self::Sell => b'S',
        }
    }

    /// From the ITCH byte.
    #[must_use]
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'B' => Some(Self::Buy),
            b'S' => Some(Self::Sell),
            _ => None,
        }
    }
}

/// One side of a top of book: the best price and the shares there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quote {
    /// Price, 4 implied decimals.
    pub price: u32,
    /// Shares at that price (at most `u32::MAX`: see [`Top::clamped`]).
    pub shares: u32,
}

/// The body of a top-of-book record: the best bid and ask after the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Top {
    /// The best bid; `None` when the side is empty.
    pub bid: Option<Quote>,
    /// The best ask; `None` when the side is empty.
    pub ask: Option<Quote>,
    /// The bid changed.
    pub bid_changed: bool,
    /// The ask changed.
    pub ask_changed: bool,
    /// The trading state changed.
    pub state_changed: bool,
    /// A side's shares were more than `u32::MAX` and read `u32::MAX`.
    pub clamped: bool,
    /// The trading state (ITCH byte `H`, `P`, `Q` or `T`), once known.
    pub state: Option<u8>,
}

/// The body of a trade record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trade {
    /// Price, 4 implied decimals.
    pub price: u32,
    /// Shares traded.
    pub shares: u32,
    /// The exchange's match number.
    pub match_number: u64,
    /// The side that took liquidity, when known (the resting order's
    /// opposite; ITCH `P` messages do not say).
    pub aggressor: Option<Side>,
    /// Printable (counted in volume now).
    pub printable: bool,
}

/// The body of the end-of-stream record: what the publisher sent before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct End {
    /// Top-of-book records published.
    pub top_records: u64,
    /// Trade records published.
    pub trade_records: u64,
}

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// A change of a book's best bid, best ask or trading state.
    Top(Top),
    /// A trade.
    Trade(Trade),
    /// The publisher's last record.
    End(End),
}

impl Body {
    /// The kind byte.
    #[must_use]
    pub const fn kind(&self) -> u8 {
        match self {
            Self::Top(_) => KIND_TOP,
            Self::Trade(_) => KIND_TRADE,
            Self::End(_) => KIND_END,
        }
    }
}

/// A record, decoded (or to encode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record {
    /// The publisher's sequence number (from 1, consecutive).
    pub sequence: u64,
    /// The stock locate (0 in an end record).
    pub locate: u16,
    /// The symbol, space-padded (spaces when not known; in an end record too).
    pub symbol: [u8; 8],
    /// The ITCH message type that caused the record (0 in an end record).
    pub cause: u8,
    /// The ITCH timestamp of that message, ns since midnight.
    pub itch_timestamp_ns: u64,
    /// When the feed handler received the packet, CLOCK_MONOTONIC ns.
    pub rx_ns: u64,
    /// When the record was published, CLOCK_MONOTONIC ns.
    pub publish_ns: u64,
    /// What it says.
    pub body: Body,
}

/// The symbol of a record whose symbol is not known.
pub const NO_SYMBOL: [u8; 8] = [b' '; 8];

#[inline]
fn u16_at(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[r]);
    u16::from_le_bytes(a)
}

#[inline]
fn u32_at(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[r]);
    u32::from_le_bytes(a)
}

#[inline]
fn u64_at(b: &[u8], r: core::ops::Range<usize>) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[r]);
    u64::from_le_bytes(a)
}

#[inline]
fn zero(b: &[u8], r: core::ops::Range<usize>) -> Result<(), RecordError> {
    match b[r.clone()].iter().position(|&x| x != 0) {
        None => Ok(()),
        Some(i) => Err(RecordError::NotZero {
            offset: r.start + i,
        }),
    }
}

impl Record {
    /// Reads a record.
    ///
    /// # Errors
    /// [`RecordError`] naming the first thing wrong: the length, version,
    /// kind, flags, side or state byte, or a byte kept zero.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        if b.len() != RECORD_LEN {
            return Err(RecordError::Length { len: b.len() });
        }
        let (kind, flags, side) = (b[field::KIND], b[field::FLAGS], b[field::SIDE]);
        if b[field::VERSION] != VERSION {
            return Err(RecordError::Version {
                version: b[field::VERSION],
            });
        }
        if b[field::RESERVED] != 0 {
            return Err(RecordError::NotZero {
                offset: field::RESERVED,
            });
        }
        let body = match kind {
            KIND_TOP => {
                if flags & !TOP_FLAGS != 0 {
                    return Err(RecordError::Flags { kind, flags });
                }
                let state = match side {
                    0 => None,
                    b'H' | b'P' | b'Q' | b'T' => Some(side),
                    _ => return Err(RecordError::SideOrState { kind, value: side }),
                };
                let quote = |present: bool,
                             price: core::ops::Range<usize>,
                             shares: core::ops::Range<usize>|
                 -> Result<Option<Quote>, RecordError> {
                    if present {
                        Ok(Some(Quote {
                            price: u32_at(b, price),
                            shares: u32_at(b, shares),
                        }))
                    } else {
                        zero(b, price.start..shares.end)?;
                        Ok(None)
                    }
                };
                Body::Top(Top {
                    bid: quote(flags & TOP_BID != 0, field::BODY_A, field::BODY_B)?,
                    ask: quote(flags & TOP_ASK != 0, field::BODY_C, field::BODY_D)?,
                    bid_changed: flags & TOP_BID_CHANGED != 0,
                    ask_changed: flags & TOP_ASK_CHANGED != 0,
                    state_changed: flags & TOP_STATE_CHANGED != 0,
                    clamped: flags & TOP_CLAMPED != 0,
                    state,
                })
            }
            KIND_TRADE => {
                if flags & !TRADE_FLAGS != 0 {
                    return Err(RecordError::Flags { kind, flags });
                }
                let aggressor = match side {
                    0 => None,
                    s => Some(
                        Side::from_byte(s).ok_or(RecordError::SideOrState { kind, value: s })?,
                    ),
                };
                Body::Trade(Trade {
                    price: u32_at(b, field::BODY_A),
                    shares: u32_at(b, field::BODY_B),
                    match_number: u64_at(b, field::BODY_LO),
                    aggressor,
                    printable: flags & TRADE_PRINTABLE != 0,
                })
            }
            KIND_END => {
                if flags != 0 {
                    return Err(RecordError::Flags { kind, flags });
                }
                if side != 0 {
                    return Err(RecordError::SideOrState { kind, value: side });
                }
                zero(b, field::LOCATE.start..field::RESERVED + 1)?;
                Body::End(End {
                    top_records: u64_at(b, field::BODY_HI),
                    trade_records: u64_at(b, field::BODY_LO),
                })
            }
            _ => return Err(RecordError::UnknownKind { kind }),
        };
        let mut symbol = [0u8; 8];
        symbol.copy_from_slice(&b[field::SYMBOL]);
        Ok(Self {
            sequence: u64_at(b, field::SEQUENCE),
            locate: u16_at(b, field::LOCATE),
            symbol,
            cause: b[field::CAUSE],
            itch_timestamp_ns: u64_at(b, field::ITCH_TS),
            rx_ns: u64_at(b, field::RX),
            publish_ns: u64_at(b, field::PUBLISH),
            body,
        })
    }

    /// Writes the record into the first [`RECORD_LEN`] bytes of `out` and
    /// returns [`RECORD_LEN`]. Fields the kind does not use are written as
    /// the format wants them (an end record's locate and cause as 0, an
    /// empty side as zeros); a trading state other than `H`, `P`, `Q`, `T`
    /// is written as 0 (not known).
    ///
    /// # Errors
    /// [`RecordError::BufferTooSmall`] when `out` is shorter than a record.
    #[inline]
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, RecordError> {
        let Some(b) = out.get_mut(..RECORD_LEN) else {
            return Err(RecordError::BufferTooSmall { len: out.len() });
        };
        let (flags, side, locate, cause, hi, lo): (u8, u8, u16, u8, [u8; 8], [u8; 8]) =
            match self.body {
                Body::Top(t) => {
                    let mut flags = 0;
                    let mut quote = |q: Option<Quote>, present: u8| match q {
                        Some(q) => {
                            flags |= present;
                            let mut w = [0u8; 8];
                            w[..4].copy_from_slice(&q.price.to_le_bytes());
                            w[4..].copy_from_slice(&q.shares.to_le_bytes());
                            w
                        }
                        None => [0u8; 8],
                    };
                    let (hi, lo) = (quote(t.bid, TOP_BID), quote(t.ask, TOP_ASK));
                    for (on, bit) in [
                        (t.bid_changed, TOP_BID_CHANGED),
                        (t.ask_changed, TOP_ASK_CHANGED),
                        (t.state_changed, TOP_STATE_CHANGED),
                        (t.clamped, TOP_CLAMPED),
                    ] {
                        if on {
                            flags |= bit;
                        }
                    }
                    let state = t
                        .state
                        .filter(|s| matches!(s, b'H' | b'P' | b'Q' | b'T'))
                        .unwrap_or(0);
                    (flags, state, self.locate, self.cause, hi, lo)
                }
                Body::Trade(t) => {
                    let mut hi = [0u8; 8];
                    hi[..4].copy_from_slice(&t.price.to_le_bytes());
                    hi[4..].copy_from_slice(&t.shares.to_le_bytes());
                    (
                        if t.printable { TRADE_PRINTABLE } else { 0 },
                        t.aggressor.map_or(0, Side::as_byte),
                        self.locate,
                        self.cause,
                        hi,
                        t.match_number.to_le_bytes(),
                    )
                }
                Body::End(e) => (
                    0,
                    0,
                    0,
                    0,
                    e.top_records.to_le_bytes(),
                    e.trade_records.to_le_bytes(),
                ),
            };
        b[field::KIND] = self.body.kind();
        b[field::VERSION] = VERSION;
        b[field::FLAGS] = flags;
        b[field::SIDE] = side;
        b[field::LOCATE].copy_from_slice(&locate.to_le_bytes());
        b[field::CAUSE] = cause;
        b[field::RESERVED] = 0;
        b[field::SEQUENCE].copy_from_slice(&self.sequence.to_le_bytes());
        b[field::ITCH_TS].copy_from_slice(&self.itch_timestamp_ns.to_le_bytes());
        b[field::RX].copy_from_slice(&self.rx_ns.to_le_bytes());
        b[field::PUBLISH].copy_from_slice(&self.publish_ns.to_le_bytes());
        b[field::SYMBOL].copy_from_slice(&self.symbol);
        b[field::BODY_HI].copy_from_slice(&hi);
        b[field::BODY_LO].copy_from_slice(&lo);
        Ok(RECORD_LEN)
    }

    /// The symbol without its padding (`""` when not known or not ASCII).
    #[must_use]
    pub fn symbol_str(&self) -> &str {
        core::str::from_utf8(&self.symbol)
            .map(str::trim_end)
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A top of book for AAPL (locate 13): bid 300 @ 185.2500, ask empty,
    /// the bid changed, trading; caused by an add order.
    #[rustfmt::skip]
    static TOP_BYTES: [u8; 64] = [
        1, 1, 0x05, b'T',  13, 0,  b'A', 0,              // kind, version, flags, state, locate, cause, reserved
        0x07, 0, 0, 0, 0, 0, 0, 0,                       // 8: sequence 7
        0x00, 0x10, 0xa5, 0xd4, 0xe8, 0x00, 0x00, 0x00,  // 16: ITCH 1_000_000_000_000 ns
        0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0,              // 24: rx 0x44332211
        0x55, 0x66, 0x77, 0x88, 0, 0, 0, 0,              // 32: publish 0x88776655
        b'A', b'A', b'P', b'L', b' ', b' ', b' ', b' ',  // 40: symbol
        0xb8, 0x44, 0x1c, 0x00, 0x2c, 0x01, 0, 0,        // 48: bid price 0x001c44b8 = 1_852_600, 52: 300 shares
        0, 0, 0, 0, 0, 0, 0, 0,                          // 56: no ask
    ];

    fn top() -> Record {
        Record {
            sequence: 7,
            locate: 13,
            symbol: *b"AAPL    ",
            cause: b'A',
            itch_timestamp_ns: 1_000_000_000_000,
            rx_ns: 0x4433_2211,
            publish_ns: 0x8877_6655,
            body: Body::Top(Top {
                bid: Some(Quote {
                    price: 1_852_600,
                    shares: 300,
                }),
                ask: None,
                bid_changed: true,
                ask_changed: false,
                state_changed: false,
                clamped: false,
                state: Some(b'T'),
            }),
        }
    }

    /// A trade of MSFT (locate 2): 100 @ 1.0000, seller aggressive,
    /// printable, match number 0x0102030405060708, caused by an `E`.
    #[rustfmt::skip]
    static TRADE_BYTES: [u8; 64] = [
        2, 1, 0x01, b'S',  2, 0,  b'E', 0,
        0xff, 0, 0, 0, 0, 0, 0, 0x01,                    // 8: sequence 0x01000000000000ff
        1, 0, 0, 0, 0, 0, 0, 0,
        2, 0, 0, 0, 0, 0, 0, 0,
        3, 0, 0, 0, 0, 0, 0, 0,
        b'M', b'S', b'F', b'T', b' ', b' ', b' ', b' ',
        0x10, 0x27, 0, 0,  100, 0, 0, 0,                 // 48: price 10_000, 52: shares 100
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // 56: match number
    ];

    fn trade() -> Record {
        Record {
            sequence: 0x0100_0000_0000_00ff,
            locate: 2,
            symbol: *b"MSFT    ",
            cause: b'E',
            itch_timestamp_ns: 1,
            rx_ns: 2,
            publish_ns: 3,
            body: Body::Trade(Trade {
                price: 10_000,
                shares: 100,
                match_number: 0x0102_0304_0506_0708,
                aggressor: Some(Side::Sell),
                printable: true,
            }),
        }
    }

    #[rustfmt::skip]
    static END_BYTES: [u8; 64] = [
        3, 1, 0, 0,  0, 0,  0, 0,
        9, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        4, 0, 0, 0, 0, 0, 0, 0,
        b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ',
        6, 0, 0, 0, 0, 0, 0, 0,
        2, 0, 0, 0, 0, 0, 0, 0,
    ];

    fn end() -> Record {
        Record {
            sequence: 9,
            locate: 0,
            symbol: NO_SYMBOL,
            cause: 0,
            itch_timestamp_ns: 0,
            rx_ns: 0,
            publish_ns: 4,
            body: Body::End(End {
                top_records: 6,
                trade_records: 2,
            }),
        }
    }

    #[test]
    fn decodes_byte_literals() {
        assert_eq!(Record::decode(&TOP_BYTES), Ok(top()));
        assert_eq!(Record::decode(&TRADE_BYTES), Ok(trade()));
        assert_eq!(Record::decode(&END_BYTES), Ok(end()));
        assert_eq!(top().symbol_str(), "AAPL");
        assert_eq!(end().symbol_str(), "");
    }

    #[test]
    fn encodes_byte_literals() {
        for (r, bytes) in [
            (top(), &TOP_BYTES),
            (trade(), &TRADE_BYTES),
            (end(), &END_BYTES),
        ] {
            let mut buf = [0xaa; 80];
            assert_eq!(r.encode(&mut buf), Ok(RECORD_LEN));
            assert_eq!(&buf[..RECORD_LEN], &bytes[..], "{r:?}");
            assert_eq!(buf[RECORD_LEN..], [0xaa; 16], "nothing past the record");
        }
    }

    #[test]
    fn offsets_are_the_documented_ones() {
        let b = &TOP_BYTES;
        assert_eq!(b[offset::KIND], KIND_TOP);
        assert_eq!(b[offset::VERSION], VERSION);
        assert_eq!(b[offset::FLAGS], TOP_BID | TOP_BID_CHANGED);
        assert_eq!(b[offset::SIDE], b'T');
        assert_eq!(b[offset::LOCATE], 13);
        assert_eq!(b[offset::CAUSE], b'A');
        assert_eq!(b[offset::SEQUENCE], 7);
        assert_eq!(b[offset::ITCH_TIMESTAMP + 1], 0x10);
        assert_eq!(b[offset::RX_NS], 0x11);
        assert_eq!(b[offset::PUBLISH_NS], 0x55);
        assert_eq!(&b[offset::SYMBOL..offset::SYMBOL + 4], b"AAPL");
        assert_eq!(b[offset::BODY + 4], 0x2c, "bid shares at 52");
        assert_eq!(
            [
                offset::KIND,
                offset::VERSION,
                offset::FLAGS,
                offset::SIDE,
                offset::LOCATE,
                offset::CAUSE,
                offset::SEQUENCE,
                offset::ITCH_TIMESTAMP,
                offset::RX_NS,
                offset::PUBLISH_NS,
                offset::SYMBOL,
                offset::BODY
            ],
            [0, 1, 2, 3, 4, 6, 8, 16, 24, 32, 40, 48]
        );
    }

    #[test]
    fn bad_records_are_named() {
        assert_eq!(
            Record::decode(&TOP_BYTES[..63]),
            Err(RecordError::Length { len: 63 })
        );
        assert_eq!(Record::decode(&[]), Err(RecordError::Length { len: 0 }));
        let mut long = [0u8; 65];
        long[..64].copy_from_slice(&TOP_BYTES);
        assert_eq!(Record::decode(&long), Err(RecordError::Length { len: 65 }));
        let with = |i: usize, v: u8| {
            let mut b = TOP_BYTES;
            b[i] = v;
            Record::decode(&b)
        };
        assert_eq!(with(0, 9), Err(RecordError::UnknownKind { kind: 9 }));
        assert_eq!(with(1, 2), Err(RecordError::Version { version: 2 }));
        assert_eq!(
            with(2, 0x45),
            Err(RecordError::Flags {
                kind: 1,
                flags: 0x45
            })
        );
        assert_eq!(
            with(3, b'X'),
            Err(RecordError::SideOrState {
                kind: 1,
                value: b'X'
            })
        );
        assert_eq!(with(7, 1), Err(RecordError::NotZero { offset: 7 }));
        assert_eq!(with(60, 1), Err(RecordError::NotZero { offset: 60 }));
        let mut t = TRADE_BYTES;
        t[3] = b'T';
        assert_eq!(
            Record::decode(&t),
            Err(RecordError::SideOrState {
                kind: 2,
                value: b'T'
            })
        );
        let mut e = END_BYTES;
        e[4] = 1;
        assert_eq!(Record::decode(&e), Err(RecordError::NotZero { offset: 4 }));
        let mut small = [0u8; 63];
        assert_eq!(
            top().encode(&mut small),
            Err(RecordError::BufferTooSmall { len: 63 })
        );
        assert_eq!(small, [0u8; 63], "nothing written");
        for e in [
            RecordError::Length { len: 12 },
            RecordError::UnknownKind { kind: 9 },
            RecordError::BufferTooSmall { len: 63 },
        ] {
            let s = e.to_string();
            assert!(s.contains("64 bytes") || s.contains("kind 9"), "{s}");
        }
    }

    #[test]
    fn unknown_states_encode_as_not_known() {
        let mut r = top();
        if let Body::Top(t) = &mut r.body {
            t.state = Some(b'z');
        }
        let mut b = [0u8; 64];
        r.encode(&mut b).unwrap();
        assert_eq!(b[offset::SIDE], 0);
        let Body::Top(t) = Record::decode(&b).unwrap().body else {
            panic!("a top record");
        };
        assert_eq!(t.state, None);
    }

    fn any_quote() -> impl Strategy<Value = Option<Quote>> {
        proptest::option::of(
            (any::<u32>(), any::<u32>()).prop_map(|(price, shares)| Quote { price, shares }),
        )
    }

    fn any_record() -> impl Strategy<Value = Record> {
        let top = (
            any_quote(),
            any_quote(),
            any::<[bool; 4]>(),
            proptest::option::of(prop_oneof![Just(b'H'), Just(b'P'), Just(b'Q'), Just(b'T')]),
        )
            .prop_map(|(bid, ask, f, state)| {
                Body::Top(Top {
                    bid,
                    ask,
                    bid_changed: f[0],
                    ask_changed: f[1],
                    state_changed: f[2],
                    clamped: f[3],
                    state,
                })
            });
        let trade = (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            proptest::option::of(prop_oneof![Just(Side::Buy), Just(Side::Sell)]),
            any::<bool>(),
        )
            .prop_map(|(price, shares, match_number, aggressor, printable)| {
                Body::Trade(Trade {
                    price,
                    shares,
                    match_number,
                    aggressor,
                    printable,
                })
            });
        let end = (any::<u64>(), any::<u64>()).prop_map(|(t, x)| {
            Body::End(End {
                top_records: t,
                trade_records: x,
            })
        });
        (
            prop_oneof![top, trade, end],
            any::<u64>(),
            any::<u16>(),
            any::<[u8; 8]>(),
            any::<u8>(),
            any::<[u64; 3]>(),
        )
            .prop_map(|(body, sequence, locate, symbol, cause, ts)| {
                let end = matches!(body, Body::End(_));
                Record {
                    sequence,
                    locate: if end { 0 } else { locate },
                    symbol,
                    cause: if end { 0 } else { cause },
                    itch_timestamp_ns: ts[0],
                    rx_ns: ts[1],
                    publish_ns: ts[2],
                    body,
                }
            })
    }

    proptest! {
        #[test]
        fn round_trip(r in any_record()) {
            let mut b = [0u8; RECORD_LEN];
            prop_assert_eq!(r.encode(&mut b), Ok(RECORD_LEN));
            prop_assert_eq!(Record::decode(&b), Ok(r));
        }

        #[test]
        fn decode_never_panics_and_what_decodes_encodes_back(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            if let Ok(r) = Record::decode(&bytes) {
                let mut b = [0u8; RECORD_LEN];
                r.encode(&mut b).unwrap();
                prop_assert_eq!(&b[..], &bytes[..]);
            }
        }

        #[test]
        fn near_records_decode_back_to_their_bytes(
            base in any_record(),
            flips in proptest::collection::vec((0usize..RECORD_LEN, any::<u8>()), 1..4),
        ) {
            // Random bytes rarely get past the kind and version; flipping a
            // few bytes of a valid record reaches every check.
            let mut b = [0u8; RECORD_LEN];
            base.encode(&mut b).unwrap();
            for (i, v) in flips {
                b[i] = v;
            }
            if let Ok(r) = Record::decode(&b) {
                let mut again = [0u8; RECORD_LEN];
                r.encode(&mut again).unwrap();
                prop_assert_eq!(again, b);
            }
        }
    }
}
