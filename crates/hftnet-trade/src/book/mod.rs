//! The per-order (L3) order book for Nasdaq TotalView-ITCH 5.0, sans-IO.
//!
//! Layer: trading engine, after the feed handler. Inputs are primitive values
//! taken from already decoded ITCH messages (this module does not depend on
//! the codec); outputs are a [`TopChange`] per message plus queries. It never
//! performs I/O, reads a clock, logs, formats or locks, and on the hot path
//! (the message methods) it does not allocate once warmed up — see
//! "Memory" below for the few exceptions, all counted or bounded.
//!
//! # Inputs, in feed order (one call per message)
//!
//! | ITCH | method | effect |
//! |------|--------|--------|
//! | R | [`Book::stock_directory`] | names a locate; in selected mode, activates its book |
//! | H | [`Book::trading_action`] | records the trading state |
//! | A, F | [`Book::add`] | adds an order |
//! | E | [`Book::execute`] | reduces the order; removes it at zero |
//! | C | [`Book::execute_with_price`] | same as E: the print price is not the resting price |
//! | X | [`Book::cancel`] | reduces the order; removes it at zero |
//! | D | [`Book::delete`] | removes the order |
//! | U | [`Book::replace`] | removes the original, adds the new ref on the same side and stock (priority lost) |
//!
//! Every message method takes the stock locate of the message header and
//! returns a [`TopChange`]: which of the best bid, best offer (price,
//! aggregated shares or order count) and trading state of *that locate*
//! changed. It is a one-byte value computed by comparing the best level of
//! the touched side before and after; the caller reads the new top with
//! [`Book::top`] only when it cares. This is cheaper than building a
//! `TopOfBook` on every message and needs no listener object.
//!
//! # Outputs and queries
//!
//! [`Book::top`], [`Book::best_bid`], [`Book::best_ask`], [`Book::levels`]
//! (best first, no allocation), [`Book::order`], [`Book::symbol`],
//! [`Book::trading_state`], [`Book::live_orders`], [`Book::counters`];
//! for tests and cross-process comparison [`Book::snapshot`],
//! [`Book::digest`] and [`Book::check_invariants`].
//!
//! # Storage
//!
//! - Orders live inline in a direct index by order ref: a sliding window
//!   of [`BookConfig::ref_window`] refs cut in chunks of [`REF_CHUNK`]
//!   refs, indexed by `ref − base`, each entry the order itself (shares,
//!   price, locate, side: 16 bytes aligned to 16, so an entry never
//!   straddles two cache lines). ITCH refs increase through the day and
//!   live ones are dense near the newest, so nearly every lookup is two
//!   loads and one cache miss, with no slab or free list behind it. Orders
//!   that stay live after the window moved past them, refs below the
//!   window and refs that jump more than a window ahead are kept in a hash
//!   map instead.
//! - Each side of each locate is a vector of price levels (price,
//!   aggregated shares, order count) sorted so that the best price is the
//!   last element: the common changes near the top are a push, a pop or an
//!   update in place. Queue priority inside a level is not tracked (no
//!   per-level order list): the book's outputs are levels and orders, not
//!   queue positions.
//!
//! # Memory
//!
//! - Ref window: 16 bytes per ref of the window, allocated 64 KiB (one
//!   chunk) at a time the first time the window reaches that size
//!   (counted in [`BookCounters::pool_grows`]), recycled afterwards, so at
//!   most `16 × ref_window` bytes (256 MiB by default, for 16 Mi refs —
//!   minutes of a busy day). [`BookConfig::ref_window_prealloc`] of it is
//!   allocated up front. A larger window keeps more long-lived orders in
//!   the direct path; a smaller one saves memory and sends them to the
//!   hash map (about 24 bytes per entry plus a hash per access, and an
//!   allocation when the map grows).
//! - Levels: [`BookConfig::levels_per_side`] reserved per side when a stock
//!   directory message activates a locate; a deeper book grows its vector.
//! - Locates: 64 bytes per locate up to the highest one named so far (below
//!   `max_locates`), the table grown (amortised doubling) the first time a
//!   message names a higher one — in selected mode only a stock directory
//!   message grows it.
//!
//! # Tolerance
//!
//! Anomalies are counted in [`BookCounters`], never fatal; the book stays
//! consistent. The first failing check of a message is the one counted:
//!
//! - locate ≥ `max_locates`: `bad_locate`, ignored;
//! - locate not kept (selected mode, no selected symbol named it):
//!   `filtered`, ignored without looking the ref up;
//! - zero shares: `zero_shares`; an add, execute or cancel is ignored, a
//!   replace removes the original and adds nothing;
//! - unknown ref (execute, cancel, delete, replace): `unknown_ref`, ignored;
//! - ref known under another locate: `locate_mismatch`, ignored;
//! - executed or cancelled shares above the remaining: `oversized`, the
//!   order is removed;
//! - add of a live ref, or replace to a live new ref: `duplicate_ref`, the
//!   newest message wins — the old order is removed (whatever its locate)
//!   and the new one added. Refs are unique for a day, so a live duplicate
//!   means a missed delete; the new message is the exchange's current view.
//!   Only the message's locate is reported in the returned [`TopChange`];
//! - trading state other than `H`, `P`, `Q`, `T`: `bad_state`, ignored;
//! - a stock directory message naming a locate that already has another
//!   symbol: `relocated`, the locate's orders and state are dropped.
//!
//! In all-symbols mode an order whose locate has no directory entry is
//! kept; in selected mode it is filtered.
//!
//! # Example
//!
//! ```
//! use hftnet_trade::book::{Book, BookConfig, Side, TopChange, pad_symbol};
//!
//! let aapl = pad_symbol("AAPL").unwrap();
//! let mut book = Book::new(BookConfig::selected([aapl])).unwrap();
//! book.stock_directory(7, aapl);
//! assert_eq!(book.add(7, 1, Side::Buy, 100, 1_500_000), TopChange::BID);
//! book.add(7, 2, Side::Sell, 200, 1_500_100);
//! book.execute(7, 1, 40);
//! let bid = book.best_bid(7).unwrap();
//! assert_eq!((bid.price, bid.shares, bid.orders), (1_500_000, 60, 1));
//! // Another stock: filtered, counted.
//! book.add(8, 3, Side::Buy, 100, 10_000);
//! assert_eq!(book.counters().filtered, 1);
//! ```

pub(crate) mod index;
pub(crate) mod levels;
#[cfg(test)]
mod tests;

use std::fmt;

pub(crate) use index::RefHashBuilder;
pub use index::RefIndexStats;
use index::{CHUNK, Entry, NONE, RefIndex, mix64};
use levels::LevelSlot;

/// Refs per chunk of the direct ref index; [`BookConfig::ref_window`] is a
/// multiple of it.
pub const REF_CHUNK: usize = CHUNK;
/// Largest number of locates (ITCH locates are `u16`).
pub const MAX_LOCATES: usize = 1 << 16;
/// Largest [`BookConfig::max_orders`], and the most live orders a book
/// holds (adds beyond it are dropped, counted in
/// [`BookCounters::pool_exhausted`]).
pub const MAX_ORDERS: usize = NONE as usize;
/// Largest [`BookConfig::ref_window`] (64 GiB of index).
pub const MAX_REF_WINDOW: usize = 1 << 32;
/// Largest [`BookConfig::levels_per_side`].
pub const MAX_LEVELS_PER_SIDE: usize = 1 << 16;

/// Side of an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    /// A bid (ITCH `B`).
    Buy = 0,
    /// An offer (ITCH `S`).
    Sell = 1,
}

impl Side {
    /// From the ITCH indicator byte: `B` or `S`.
    pub const fn from_itch(b: u8) -> Option<Side> {
        match b {
            b'B' => Some(Side::Buy),
            b'S' => Some(Side::Sell),
            _ => None,
        }
    }

    /// The ITCH indicator byte.
    pub const fn to_itch(self) -> u8 {
        match self {
            Side::Buy => b'B',
            Side::Sell => b'S',
        }
    }

    /// XOR mask turning a price into a "larger is better" key.
    #[inline]
    const fn key_mask(self) -> u32 {
        match self {
            Side::Buy => 0,
            Side::Sell => u32::MAX,
        }
    }

    #[inline]
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// Trading state of a stock (ITCH Stock Trading Action, `H`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TradingState {
    /// `H`: halted across all U.S. equity markets.
    Halted,
    /// `P`: paused on Nasdaq only.
    Paused,
    /// `Q`: quotation only.
    QuotationOnly,
    /// `T`: trading on Nasdaq.
    Trading,
}

impl TradingState {
    /// From the ITCH state byte.
    pub const fn from_itch(b: u8) -> Option<TradingState> {
        match b {
            b'H' => Some(TradingState::Halted),
            b'P' => Some(TradingState::Paused),
            b'Q' => Some(TradingState::QuotationOnly),
            b'T' => Some(TradingState::Trading),
            _ => None,
        }
    }

    /// The ITCH state byte.
    pub const fn to_itch(self) -> u8 {
        match self {
            TradingState::Halted => b'H',
            TradingState::Paused => b'P',
            TradingState::QuotationOnly => b'Q',
            TradingState::Trading => b'T',
        }
    }
}

/// Pads a symbol to ITCH's 8 bytes (left-aligned, space-filled).
///
/// `None` unless `s` is 1 to 8 printable ASCII characters without spaces.
pub const fn pad_symbol(s: &str) -> Option<[u8; 8]> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    let mut out = [b' '; 8];
    let mut i = 0;
    while i < b.len() {
        if b[i] <= b' ' || b[i] > b'~' {
            return None;
        }
        out[i] = b[i];
        i += 1;
    }
    Some(out)
}

/// One price level: price (ITCH `Price(4)`, 4 implied decimals), the
/// shares of all its orders and their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Level {
    /// Price, 4 implied decimals.
    pub price: u32,
    /// Sum of the remaining shares of the level's orders.
    pub shares: u64,
    /// Number of orders at the level (never 0).
    pub orders: u32,
}

impl Level {
    #[inline]
    fn from_slot(side: Side, l: &LevelSlot) -> Level {
        Level {
            price: levels::price(side, l.key),
            shares: l.shares,
            orders: l.orders,
        }
    }
}

/// Best bid and best offer of one locate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TopOfBook {
    /// Best (highest) bid level.
    pub bid: Option<Level>,
    /// Best (lowest) offer level.
    pub ask: Option<Level>,
}

/// A live order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderInfo {
    /// ITCH order reference number.
    pub order_ref: u64,
    /// Stock locate.
    pub locate: u16,
    /// Side.
    pub side: Side,
    /// Remaining shares (never 0).
    pub shares: u32,
    /// Price, 4 implied decimals.
    pub price: u32,
}

/// What a message changed for its locate: best bid, best offer (price,
/// shares or order count), trading state. A one-byte set of flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TopChange(u8);

impl TopChange {
    /// Nothing changed.
    pub const NONE: TopChange = TopChange(0);
    /// The best bid level changed.
    pub const BID: TopChange = TopChange(1);
    /// The best offer level changed.
    pub const ASK: TopChange = TopChange(2);
    /// The trading state changed.
    pub const STATE: TopChange = TopChange(4);

    /// Whether the best bid changed.
    #[inline]
    pub const fn bid(self) -> bool {
        self.0 & Self::BID.0 != 0
    }

    /// Whether the best offer changed.
    #[inline]
    pub const fn ask(self) -> bool {
        self.0 & Self::ASK.0 != 0
    }

    /// Whether the trading state changed.
    #[inline]
    pub const fn state(self) -> bool {
        self.0 & Self::STATE.0 != 0
    }

    /// Whether the best bid or best offer changed.
    #[inline]
    pub const fn top(self) -> bool {
        self.0 & (Self::BID.0 | Self::ASK.0) != 0
    }

    /// Whether nothing changed.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flag of one side.
    #[inline]
    pub const fn of(side: Side) -> TopChange {
        match side {
            Side::Buy => Self::BID,
            Side::Sell => Self::ASK,
        }
    }
}

impl std::ops::BitOr for TopChange {
    type Output = TopChange;
    fn bitor(self, rhs: TopChange) -> TopChange {
        TopChange(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for TopChange {
    fn bitor_assign(&mut self, rhs: TopChange) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for TopChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("TopChange(NONE)");
        }
        f.write_str("TopChange(")?;
        let mut sep = "";
        for (flag, name) in [
            (self.bid(), "BID"),
            (self.ask(), "ASK"),
            (self.state(), "STATE"),
        ] {
            if flag {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        f.write_str(")")
    }
}

/// Counters of the book, plain integers. Each message method increments
/// its own counter once, whatever the outcome; the anomaly counters say
/// what became of the odd ones (see the module doc, "Tolerance").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BookCounters {
    /// Add calls (A, F).
    pub adds: u64,
    /// Execute calls (E and C).
    pub executes: u64,
    /// Cancel calls (X).
    pub cancels: u64,
    /// Delete calls (D).
    pub deletes: u64,
    /// Replace calls (U).
    pub replaces: u64,
    /// Stock directory calls (R).
    pub directories: u64,
    /// Trading action calls (H).
    pub trading_actions: u64,
    /// Execute, cancel, delete or replace of a ref not in the book.
    pub unknown_ref: u64,
    /// Execute or cancel of more shares than remained (order removed).
    pub oversized: u64,
    /// Add of a live ref, or replace to a live new ref (newest wins).
    pub duplicate_ref: u64,
    /// Messages with zero shares.
    pub zero_shares: u64,
    /// Messages whose ref is live under another locate (ignored).
    pub locate_mismatch: u64,
    /// Messages whose locate is not below `max_locates` (ignored).
    pub bad_locate: u64,
    /// Trading actions with an unknown state byte (ignored).
    pub bad_state: u64,
    /// Messages for a locate whose book is not kept (selected mode).
    pub filtered: u64,
    /// Stock directory messages that re-pointed a locate to another symbol.
    pub relocated: u64,
    /// Messages after which the best bid or best offer of their locate
    /// differed.
    pub top_changes: u64,
    /// Times the order storage grew: chunks of the ref index allocated
    /// beyond [`BookConfig::ref_window_prealloc`] (recycled chunks are not
    /// counted again).
    pub pool_grows: u64,
    /// Adds dropped because [`MAX_ORDERS`] orders were live.
    pub pool_exhausted: u64,
}

/// Which stocks get a book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Symbols {
    /// Every locate, with or without a stock directory entry.
    All,
    /// Only locates that a stock directory message named with one of these
    /// 8-byte, space-padded symbols (see [`pad_symbol`]).
    Selected(Vec<[u8; 8]>),
}

/// Configuration of a [`Book`]: capacity hints and the symbol selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookConfig {
    /// The expected peak of live orders, `1..=MAX_ORDERS`; default 2 Mi.
    /// Orders are stored in the ref index (see `ref_window` and
    /// `ref_window_prealloc` for its memory), so nothing is reserved by it;
    /// it is validated and kept for configurations written for the former
    /// order slab.
    pub max_orders: usize,
    /// Locates with a book: messages with a locate at or above it are
    /// counted `bad_locate`. `1..=65536`; default 65536.
    pub max_locates: usize,
    /// Refs covered by the direct ref index (16 bytes each, the order
    /// inline): a multiple of [`REF_CHUNK`] up to [`MAX_REF_WINDOW`];
    /// default 16 Mi (256 MiB at most).
    pub ref_window: usize,
    /// Refs' worth of the index allocated up front, `0..=ref_window`;
    /// default 1 Mi (16 MiB), written at construction (resident from the
    /// start, so the first inserts take no page faults).
    pub ref_window_prealloc: usize,
    /// Price levels reserved per side when a locate's book is activated by
    /// a stock directory message. `0..=MAX_LEVELS_PER_SIDE`; default 32.
    pub levels_per_side: usize,
    /// Which stocks are kept; default all.
    pub symbols: Symbols,
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig {
            max_orders: 1 << 21,
            max_locates: MAX_LOCATES,
            ref_window: 1 << 24,
            ref_window_prealloc: 1 << 20,
            levels_per_side: 32,
            symbols: Symbols::All,
        }
    }
}

impl BookConfig {
    /// Defaults, every symbol kept.
    pub fn all_symbols() -> Self {
        Self::default()
    }

    /// Defaults, only the given 8-byte symbols kept.
    pub fn selected(symbols: impl IntoIterator<Item = [u8; 8]>) -> Self {
        BookConfig {
            symbols: Symbols::Selected(symbols.into_iter().collect()),
            ..Self::default()
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// The first field out of its range, as a [`ConfigError`] naming it and
    /// the accepted values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_orders == 0 || self.max_orders > MAX_ORDERS {
            return Err(ConfigError::MaxOrders {
                value: self.max_orders,
            });
        }
        if self.max_locates == 0 || self.max_locates > MAX_LOCATES {
            return Err(ConfigError::MaxLocates {
                value: self.max_locates,
            });
        }
        if self.ref_window == 0
            || !self.ref_window.is_multiple_of(REF_CHUNK)
            || self.ref_window > MAX_REF_WINDOW
        {
            return Err(ConfigError::RefWindow {
                value: self.ref_window,
            });
        }
        if self.ref_window_prealloc > self.ref_window {
            return Err(ConfigError::RefWindowPrealloc {
                value: self.ref_window_prealloc,
                window: self.ref_window,
            });
        }
        if self.levels_per_side > MAX_LEVELS_PER_SIDE {
            return Err(ConfigError::LevelsPerSide {
                value: self.levels_per_side,
            });
        }
        if let Symbols::Selected(v) = &self.symbols {
            if v.is_empty() {
                return Err(ConfigError::EmptySelection);
            }
            for s in v {
                let printable = s.iter().all(|&b| (b' '..=b'~').contains(&b));
                let padded = s.iter().skip_while(|&&b| b != b' ').all(|&b| b == b' ');
                if !printable || !padded || s[0] == b' ' {
                    return Err(ConfigError::BadSymbol { symbol: *s });
                }
            }
        }
        Ok(())
    }
}

/// A [`BookConfig`] field out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `max_orders` is 0 or above [`MAX_ORDERS`].
    MaxOrders {
        /// The value given.
        value: usize,
    },
    /// `max_locates` is 0 or above 65536.
    MaxLocates {
        /// The value given.
        value: usize,
    },
    /// `ref_window` is not a non-zero multiple of [`REF_CHUNK`] up to
    /// [`MAX_REF_WINDOW`].
    RefWindow {
        /// The value given.
        value: usize,
    },
    /// `ref_window_prealloc` exceeds `ref_window`.
    RefWindowPrealloc {
        /// The value given.
        value: usize,
        /// `ref_window`.
        window: usize,
    },
    /// `levels_per_side` is above [`MAX_LEVELS_PER_SIDE`].
    LevelsPerSide {
        /// The value given.
        value: usize,
    },
    /// `Symbols::Selected` with no symbol.
    EmptySelection,
    /// A selected symbol is not 1–8 printable ASCII characters, left-aligned
    /// and space-padded.
    BadSymbol {
        /// The symbol given.
        symbol: [u8; 8],
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MaxOrders { value } => {
                write!(f, "max_orders is {value}; accepted: 1..={MAX_ORDERS}")
            }
            ConfigError::MaxLocates { value } => {
                write!(f, "max_locates is {value}; accepted: 1..={MAX_LOCATES}")
            }
            ConfigError::RefWindow { value } => write!(
                f,
                "ref_window is {value}; accepted: a multiple of {REF_CHUNK} in \
                 {REF_CHUNK}..={MAX_REF_WINDOW}"
            ),
            ConfigError::RefWindowPrealloc { value, window } => write!(
                f,
                "ref_window_prealloc is {value}; accepted: 0..={window} (ref_window)"
            ),
            ConfigError::LevelsPerSide { value } => write!(
                f,
                "levels_per_side is {value}; accepted: 0..={MAX_LEVELS_PER_SIDE}"
            ),
            ConfigError::EmptySelection => {
                f.write_str("symbols: the selection is empty; name at least one symbol")
            }
            ConfigError::BadSymbol { symbol } => write!(
                f,
                "symbols: {:?} is not an ITCH symbol; accepted: 1 to 8 printable \
                 ASCII characters, left-aligned, padded with spaces",
                symbol.escape_ascii().to_string()
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why [`Book::absorb`] refused a book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbsorbError {
    /// The two books were built with different configurations.
    Config,
    /// Both books hold something (levels, orders, a symbol or a state) for
    /// this locate.
    Overlap {
        /// The first such locate.
        locate: u16,
    },
}

impl fmt::Display for AbsorbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbsorbError::Config => {
                f.write_str("the books to merge were built with different configurations")
            }
            AbsorbError::Overlap { locate } => write!(
                f,
                "both books to merge hold locate {locate}: they were not fed disjoint locates"
            ),
        }
    }
}

impl std::error::Error for AbsorbError {}

/// One live order, stored inline in the ref index under its ref. Empty
/// entries have `shares == 0` (a live order always has shares). 16 bytes
/// aligned to 16: four to a cache line, never straddling two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(16))]
struct OrderRec {
    shares: u32,
    price: u32,
    locate: u16,
    side: Side,
}

impl Entry for OrderRec {
    const EMPTY: OrderRec = OrderRec {
        shares: 0,
        price: 0,
        locate: 0,
        side: Side::Buy,
    };
    #[inline]
    fn is_empty(&self) -> bool {
        self.shares == 0
    }
}

/// The book of one locate: levels per side, its live order count, and its
/// directory and state. One cache line.
#[derive(Debug, Default)]
struct LocateBook {
    sides: [Vec<LevelSlot>; 2],
    orders: u32,
    active: bool,
    symbol: Option<[u8; 8]>,
    state: Option<TradingState>,
}

impl LocateBook {
    #[inline]
    fn best(&self, side: Side) -> Option<LevelSlot> {
        self.sides[side.index()].last().copied()
    }

    #[inline]
    fn tops(&self) -> [Option<LevelSlot>; 2] {
        [self.best(Side::Buy), self.best(Side::Sell)]
    }

    fn is_blank(&self) -> bool {
        self.symbol.is_none()
            && self.state.is_none()
            && self.sides[0].is_empty()
            && self.sides[1].is_empty()
    }
}

/// The L3 books of one ITCH feed: every locate, or the selected symbols.
///
/// Call the message methods in feed order (see the module doc for the
/// mapping from ITCH messages); each returns the [`TopChange`] of the
/// message's locate. Query at any time. No method blocks, allocates on the
/// warmed-up hot path, or panics on any input.
pub struct Book {
    /// The books of locates `0..len`, grown on the first message naming a
    /// locate below `max_locates` (a stream uses a few thousand of the
    /// 65,536: 64 bytes each, written at construction before).
    books: Vec<LocateBook>,
    live: usize,
    index: RefIndex<OrderRec>,
    /// Sorted selection; `None` keeps every locate.
    selected: Option<Vec<[u8; 8]>>,
    counters: BookCounters,
    config: BookConfig,
    /// Index buffers grown by books absorbed into this one
    /// ([`Book::absorb`]), added to [`BookCounters::pool_grows`].
    absorbed_grows: u64,
}

impl fmt::Debug for Book {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Book")
            .field("live_orders", &self.live)
            .field("index", &self.index)
            .field("counters", &self.counters)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Book {
    /// A book with the given capacities and selection.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when a field is out of range ([`BookConfig::validate`]).
    pub fn new(config: BookConfig) -> Result<Book, ConfigError> {
        config.validate()?;
        let selected = match &config.symbols {
            Symbols::All => None,
            Symbols::Selected(v) => {
                let mut v = v.clone();
                v.sort_unstable();
                v.dedup();
                Some(v)
            }
        };
        Ok(Book {
            books: Vec::new(),
            live: 0,
            index: RefIndex::new(config.ref_window, config.ref_window_prealloc),
            selected,
            counters: BookCounters::default(),
            config,
            absorbed_grows: 0,
        })
    }

    /// Allocates the ref index's buffers for `refs` refs now (at most
    /// [`BookConfig::ref_window`]'s), as [`BookConfig::ref_window_prealloc`]
    /// does at construction: a book made with a small preallocation can
    /// take the rest on the thread that will use it, while another thread
    /// does other work. Buffers that exist already count; none is counted
    /// in [`BookCounters::pool_grows`]; [`Book::config`]'s
    /// `ref_window_prealloc` is raised to `refs` (capped at the window).
    pub fn reserve_refs(&mut self, refs: usize) {
        self.index.reserve(refs);
        // The configuration says what the index holds now.
        let c = &mut self.config;
        c.ref_window_prealloc = c.ref_window_prealloc.max(refs.min(c.ref_window));
    }

    /// Moves the books and live orders of `other` into this one and adds
    /// its counters: the two were fed the messages of disjoint sets of
    /// locates of one stream (the shards of a replay on two threads), and
    /// the result is the book one [`Book`] fed the whole stream would be —
    /// the same [`Book::digest`], levels, orders and counters — for a
    /// stream whose messages name orders of their own locate, as ITCH's
    /// do. On other streams the counters can differ (a message naming an
    /// order the other shard holds was counted `unknown_ref` in its shard,
    /// where one book counts `locate_mismatch`), and a ref live in both
    /// (one ref added under two locates, in different shards) keeps this
    /// book's order while the other's leaves its level and is counted
    /// `duplicate_ref` (one book would have replaced the first with the
    /// second): the result is consistent (it passes
    /// [`Book::check_invariants`]) but not the one-book result. An order
    /// beyond [`MAX_ORDERS`] is dropped and counted `pool_exhausted`.
    /// O(locates + `other`'s ref window).
    ///
    /// # Errors
    /// [`AbsorbError`] (and nothing moved) when `other` was built with
    /// another configuration (but for `ref_window_prealloc`) or holds something for a locate this book
    /// also holds something for.
    pub fn absorb(&mut self, other: Book) -> Result<(), AbsorbError> {
        // The preallocation is a capacity hint: it may differ.
        let shape = |c: &BookConfig| BookConfig {
            ref_window_prealloc: 0,
            ..c.clone()
        };
        if shape(&other.config) != shape(&self.config) {
            return Err(AbsorbError::Config);
        }
        let held = |b: &LocateBook| !b.is_blank() || b.orders > 0;
        self.grow_books_to(other.books.len());
        if let Some(l) = self
            .books
            .iter()
            .zip(&other.books)
            .position(|(a, b)| held(a) && held(b))
        {
            return Err(AbsorbError::Overlap { locate: l as u16 });
        }
        let Book {
            books,
            index,
            counters: c,
            absorbed_grows,
            ..
        } = other;
        for (mine, theirs) in self.books.iter_mut().zip(books) {
            if held(&theirs) {
                *mine = theirs;
            }
        }
        index.for_each(|r, o| {
            if self.index.get(r).is_some() || self.live >= MAX_ORDERS {
                if self.live >= MAX_ORDERS {
                    self.counters.pool_exhausted += 1;
                } else {
                    self.counters.duplicate_ref += 1;
                }
                self.unlevel(o);
                return;
            }
            self.index.insert(r, o);
            self.live += 1;
        });
        // Destructured whole, so a counter added later cannot be missed.
        let BookCounters {
            adds,
            executes,
            cancels,
            deletes,
            replaces,
            directories,
            trading_actions,
            unknown_ref,
            oversized,
            duplicate_ref,
            zero_shares,
            locate_mismatch,
            bad_locate,
            bad_state,
            filtered,
            relocated,
            top_changes,
            pool_grows: _, // the index's own count: `absorbed_grows` below
            pool_exhausted,
        } = c;
        let m = &mut self.counters;
        for (a, b) in [
            (&mut m.adds, adds),
            (&mut m.executes, executes),
            (&mut m.cancels, cancels),
            (&mut m.deletes, deletes),
            (&mut m.replaces, replaces),
            (&mut m.directories, directories),
            (&mut m.trading_actions, trading_actions),
            (&mut m.unknown_ref, unknown_ref),
            (&mut m.oversized, oversized),
            (&mut m.duplicate_ref, duplicate_ref),
            (&mut m.zero_shares, zero_shares),
            (&mut m.locate_mismatch, locate_mismatch),
            (&mut m.bad_locate, bad_locate),
            (&mut m.bad_state, bad_state),
            (&mut m.filtered, filtered),
            (&mut m.relocated, relocated),
            (&mut m.top_changes, top_changes),
            (&mut m.pool_exhausted, pool_exhausted),
        ] {
            *a += b;
        }
        self.absorbed_grows += index.grown() + absorbed_grows;
        Ok(())
    }

    // ---------------------------------------------------------------- input

    /// Add Order (ITCH `A` or `F`): a new order `order_ref` of `shares` at
    /// `price` (4 implied decimals) on `side` of `locate`.
    #[inline]
    pub fn add(
        &mut self,
        locate: u16,
        order_ref: u64,
        side: Side,
        shares: u32,
        price: u32,
    ) -> TopChange {
        self.counters.adds += 1;
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        if shares == 0 {
            self.counters.zero_shares += 1;
            return TopChange::NONE;
        }
        let l = locate as usize;
        if let Some(old) = self.index.get(order_ref) {
            self.counters.duplicate_ref += 1;
            let before = self.books[l].tops();
            self.remove_order(order_ref, old);
            self.insert_order(locate, order_ref, side, shares, price);
            return self.changed_both(l, before);
        }
        let before = self.books[l].best(side);
        self.insert_order(locate, order_ref, side, shares, price);
        self.changed(l, side, before)
    }

    /// Order Executed (ITCH `E`): `shares` of `order_ref` traded; the order
    /// is removed when none remain.
    #[inline]
    pub fn execute(&mut self, locate: u16, order_ref: u64, shares: u32) -> TopChange {
        self.counters.executes += 1;
        self.reduce(locate, order_ref, shares)
    }

    /// Order Executed With Price (ITCH `C`): same effect on the book as
    /// [`execute`](Book::execute). `print_price` is the trade's price; the
    /// resting order keeps its own price, so it is not used here.
    #[inline]
    pub fn execute_with_price(
        &mut self,
        locate: u16,
        order_ref: u64,
        shares: u32,
        print_price: u32,
    ) -> TopChange {
        let _ = print_price;
        self.execute(locate, order_ref, shares)
    }

    /// Order Cancel (ITCH `X`): `shares` of `order_ref` cancelled; the order
    /// is removed when none remain.
    #[inline]
    pub fn cancel(&mut self, locate: u16, order_ref: u64, shares: u32) -> TopChange {
        self.counters.cancels += 1;
        self.reduce(locate, order_ref, shares)
    }

    /// Order Delete (ITCH `D`): removes `order_ref`.
    #[inline]
    pub fn delete(&mut self, locate: u16, order_ref: u64) -> TopChange {
        self.counters.deletes += 1;
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        let Some(o) = lookup(&mut self.index, &mut self.counters, locate, order_ref) else {
            return TopChange::NONE;
        };
        let o = *o;
        let l = locate as usize;
        let before = self.books[l].best(o.side);
        self.remove_order(order_ref, o);
        self.changed(l, o.side, before)
    }

    /// Order Replace (ITCH `U`): `orig_ref` is removed and `new_ref` added
    /// with `shares` at `price`, on the original's side and locate (it loses
    /// time priority; queue positions are not tracked here).
    #[inline]
    pub fn replace(
        &mut self,
        locate: u16,
        orig_ref: u64,
        new_ref: u64,
        shares: u32,
        price: u32,
    ) -> TopChange {
        self.counters.replaces += 1;
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        let Some(old) = lookup(&mut self.index, &mut self.counters, locate, orig_ref) else {
            return TopChange::NONE;
        };
        let old = *old;
        let side = old.side;
        let l = locate as usize;
        if new_ref != orig_ref
            && let Some(stale) = self.index.get(new_ref)
        {
            self.counters.duplicate_ref += 1;
            let before = self.books[l].tops();
            self.remove_order(new_ref, stale);
            self.remove_order(orig_ref, old);
            if shares == 0 {
                self.counters.zero_shares += 1;
            } else {
                self.insert_order(locate, new_ref, side, shares, price);
            }
            return self.changed_both(l, before);
        }
        let before = self.books[l].best(side);
        if shares == 0 {
            self.counters.zero_shares += 1;
            self.remove_order(orig_ref, old);
            return self.changed(l, side, before);
        }
        // The new order takes over the original's place in the counts.
        self.index.remove(orig_ref);
        self.index.insert(
            new_ref,
            OrderRec {
                shares,
                price,
                ..old
            },
        );
        let lv = &mut self.books[l].sides[side.index()];
        if price == old.price {
            levels::resize(lv, levels::key(side, price), old.shares, shares);
        } else {
            levels::remove_shares(lv, levels::key(side, old.price), old.shares, true);
            levels::add_order(lv, levels::key(side, price), shares);
        }
        self.changed(l, side, before)
    }

    /// Stock Directory (ITCH `R`): `locate` is `symbol` (8 bytes,
    /// space-padded). In selected mode this activates the locate's book when
    /// the symbol is selected (reserving `levels_per_side`), and deactivates
    /// it otherwise. Naming a locate that had another symbol drops its
    /// orders and state (counted `relocated`); the returned flags then say
    /// what that did to the top.
    pub fn stock_directory(&mut self, locate: u16, symbol: [u8; 8]) -> TopChange {
        self.counters.directories += 1;
        let l = locate as usize;
        if l >= self.books.len() && !self.grow_books(locate) {
            self.counters.bad_locate += 1;
            return TopChange::NONE;
        }
        let b = &self.books[l];
        let keep = match &self.selected {
            None => true,
            Some(v) => v.binary_search(&symbol).is_ok(),
        };
        let mut change = TopChange::NONE;
        if b.symbol.is_some_and(|s| s != symbol) {
            self.counters.relocated += 1;
            change = self.purge(l);
            if self.books[l].state.take().is_some() {
                change |= TopChange::STATE;
            }
        }
        // Otherwise the symbol is new or the same: an active locate keeps its
        // orders (in selected mode an active locate's symbol is selected).
        let per_side = self.config.levels_per_side;
        let b = &mut self.books[l];
        b.symbol = Some(symbol);
        b.active = keep;
        if keep {
            for side in &mut b.sides {
                side.reserve(per_side.saturating_sub(side.len()));
            }
        }
        change
    }

    /// Stock Trading Action (ITCH `H`): the trading state of `locate`, as
    /// the ITCH byte (`H`, `P`, `Q` or `T`). Returns [`TopChange::STATE`]
    /// when it differs from the previous state.
    pub fn trading_action(&mut self, locate: u16, state: u8) -> TopChange {
        self.counters.trading_actions += 1;
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        let Some(st) = TradingState::from_itch(state) else {
            self.counters.bad_state += 1;
            return TopChange::NONE;
        };
        let b = &mut self.books[locate as usize];
        if b.state == Some(st) {
            TopChange::NONE
        } else {
            b.state = Some(st);
            TopChange::STATE
        }
    }

    // -------------------------------------------------------------- queries

    /// Best bid and best offer of `locate` (both `None` for an unknown or
    /// empty locate).
    #[inline]
    pub fn top(&self, locate: u16) -> TopOfBook {
        TopOfBook {
            bid: self.best_bid(locate),
            ask: self.best_ask(locate),
        }
    }

    /// Best (highest) bid level of `locate`.
    #[inline]
    pub fn best_bid(&self, locate: u16) -> Option<Level> {
        self.best(locate, Side::Buy)
    }

    /// Best (lowest) offer level of `locate`.
    #[inline]
    pub fn best_ask(&self, locate: u16) -> Option<Level> {
        self.best(locate, Side::Sell)
    }

    /// Best level of one side of `locate`.
    #[inline]
    pub fn best(&self, locate: u16, side: Side) -> Option<Level> {
        let b = self.books.get(locate as usize)?;
        b.sides[side.index()]
            .last()
            .map(|l| Level::from_slot(side, l))
    }

    /// The levels of one side of `locate`, best first, without allocating;
    /// `.take(n)` for the top `n`.
    #[inline]
    pub fn levels(&self, locate: u16, side: Side) -> Levels<'_> {
        let slice: &[LevelSlot] = self
            .books
            .get(locate as usize)
            .map_or(&[], |b| &b.sides[side.index()]);
        Levels {
            inner: slice.iter().rev(),
            side,
        }
    }

    /// The live order `order_ref`.
    #[inline]
    pub fn order(&self, order_ref: u64) -> Option<OrderInfo> {
        let o = self.index.get(order_ref)?;
        Some(info(order_ref, &o))
    }

    /// The address of the ref-index entry of `order_ref`, for a prefetch
    /// hint before a message naming it is applied; `None` when the ref is
    /// outside the direct window (a far-map ref: nothing worth fetching).
    /// Reads nothing but the window's bookkeeping.
    #[inline]
    pub fn ref_entry_hint(&self, order_ref: u64) -> Option<*const u8> {
        self.index
            .entry_hint(order_ref)
            .map(<*const OrderRec>::cast)
    }

    /// The address of the order record of `order_ref`, for a prefetch
    /// hint; `None` when the ref is not live in the direct window. Orders
    /// are stored in the ref index, so this is the address
    /// [`Book::ref_entry_hint`] gives, once the order is live: prefetching
    /// both is redundant. A hint, never a lookup.
    #[inline]
    pub fn order_slot_hint(&self, order_ref: u64) -> Option<*const u8> {
        self.index.get_direct(order_ref)?;
        self.ref_entry_hint(order_ref)
    }

    /// The address of the per-locate record of `locate` (its level vectors,
    /// counts and state), for a prefetch hint; `None` out of range.
    #[inline]
    pub fn locate_hint(&self, locate: u16) -> Option<*const u8> {
        let l = usize::from(locate);
        (l < self.books.len()).then(|| self.books.as_ptr().wrapping_add(l).cast())
    }

    /// The addresses of the best level of each side of `locate` (where an
    /// add, an execution or a delete near the top lands), for prefetch
    /// hints; reads the locate's record (prefetch [`Book::locate_hint`]
    /// some time before). `None` for an empty side.
    #[inline]
    pub fn top_hints(&self, locate: u16) -> [Option<*const u8>; 2] {
        let Some(b) = self.books.get(usize::from(locate)) else {
            return [None, None];
        };
        b.sides.each_ref().map(|v| {
            v.len()
                .checked_sub(1)
                .map(|top| v.as_ptr().wrapping_add(top).cast())
        })
    }

    /// The symbol the last stock directory message gave `locate` (also
    /// for locates not kept in selected mode).
    pub fn symbol(&self, locate: u16) -> Option<[u8; 8]> {
        self.books.get(locate as usize)?.symbol
    }

    /// The trading state of `locate`, once a trading action set it.
    pub fn trading_state(&self, locate: u16) -> Option<TradingState> {
        self.books.get(locate as usize)?.state
    }

    /// Whether messages for `locate` are applied (all-symbols mode: every
    /// locate below `max_locates`; selected mode: locates named by a
    /// selected symbol).
    pub fn is_active(&self, locate: u16) -> bool {
        let l = usize::from(locate);
        self.books.get(l).map_or(
            self.selected.is_none() && l < self.config.max_locates,
            |b| b.active,
        )
    }

    /// Live orders in all books.
    #[inline]
    pub fn live_orders(&self) -> usize {
        self.live
    }

    /// Live orders of `locate`.
    pub fn orders_at(&self, locate: u16) -> usize {
        self.books
            .get(locate as usize)
            .map_or(0, |b| b.orders as usize)
    }

    /// The counters (a copy).
    #[inline]
    pub fn counters(&self) -> BookCounters {
        BookCounters {
            pool_grows: self.index.grown() + self.absorbed_grows,
            ..self.counters
        }
    }

    /// The configuration the book was built with.
    pub fn config(&self) -> &BookConfig {
        &self.config
    }

    /// Sizes of the ref index (window, far map), for capacity planning.
    pub fn index_stats(&self) -> RefIndexStats {
        self.index.stats()
    }

    /// A comparable copy of one locate's book: levels best first and live
    /// orders sorted by ref. `None` for a locate at or above `max_locates`.
    /// Allocates and walks the whole slab: for tests and tools, not the hot
    /// path.
    pub fn snapshot(&self, locate: u16) -> Option<BookSnapshot> {
        const BLANK: LocateBook = LocateBook {
            sides: [Vec::new(), Vec::new()],
            orders: 0,
            active: false,
            symbol: None,
            state: None,
        };
        let l = usize::from(locate);
        let b = match self.books.get(l) {
            Some(b) => b,
            None if l < self.config.max_locates => &BLANK,
            None => return None,
        };
        let side_levels = |side: Side| -> Vec<Level> {
            b.sides[side.index()]
                .iter()
                .rev()
                .map(|l| Level::from_slot(side, l))
                .collect()
        };
        let mut orders: Vec<OrderInfo> = Vec::with_capacity(b.orders as usize);
        if b.orders > 0 {
            self.index.for_each(|r, o| {
                if o.locate == locate {
                    orders.push(info(r, &o));
                }
            });
        }
        orders.sort_unstable();
        Some(BookSnapshot {
            locate,
            symbol: b.symbol,
            trading_state: b.state,
            bids: side_levels(Side::Buy),
            asks: side_levels(Side::Sell),
            orders,
        })
    }

    /// A 64-bit digest of every kept book, stable across runs, processes,
    /// machines and configurations (ref window, capacities): two processes
    /// fed the same messages compare books by it.
    ///
    /// FNV-1a over, for each active locate in increasing order that has a
    /// symbol, a state or a level: the locate, symbol, state and both sides'
    /// levels best first (price, shares, orders, little-endian); then the
    /// number of live orders and the wrapping sum of a per-order hash (ref,
    /// locate, side, shares, price), which needs no sort. No allocation;
    /// O(locates + ref window).
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::new();
        for (l, b) in self.books.iter().enumerate() {
            if !b.active || b.is_blank() {
                continue;
            }
            h.bytes(&(l as u16).to_le_bytes());
            h.bytes(&[u8::from(b.symbol.is_some())]);
            h.bytes(&b.symbol.unwrap_or([0; 8]));
            h.bytes(&[b.state.map_or(0, TradingState::to_itch)]);
            for side in [Side::Buy, Side::Sell] {
                let v = &b.sides[side.index()];
                h.bytes(&(v.len() as u64).to_le_bytes());
                for lv in v.iter().rev() {
                    h.bytes(&levels::price(side, lv.key).to_le_bytes());
                    h.bytes(&lv.shares.to_le_bytes());
                    h.bytes(&lv.orders.to_le_bytes());
                }
            }
        }
        let mut sum = 0u64;
        self.index.for_each(|r, o| {
            let mut oh = Fnv::new();
            oh.bytes(&r.to_le_bytes());
            oh.bytes(&o.locate.to_le_bytes());
            oh.bytes(&[o.side.to_itch()]);
            oh.bytes(&o.shares.to_le_bytes());
            oh.bytes(&o.price.to_le_bytes());
            sum = sum.wrapping_add(mix64(oh.0));
        });
        h.bytes(&(self.live as u64).to_le_bytes());
        h.bytes(&sum.to_le_bytes());
        h.0
    }

    /// Walks every structure and checks that they agree: each level's shares
    /// and order count equal the sum over its orders, levels are sorted with
    /// no duplicates and none is empty, every live order is indexed under
    /// its ref and sits at a level of its locate and side, counts match, and
    /// books that are not kept hold nothing. Crossed (bid > offer) and
    /// locked (bid = offer) books are legal in ITCH in some states, so they
    /// are listed in the report, not errors. Allocates (a few vectors the
    /// size of the locates and levels) and looks up every order's level;
    /// for tests and tools, and [`Book::check_invariants_fast`] for the end
    /// of a long replay. (Orders are stored in the ref index itself, so an
    /// order and its index entry cannot disagree.)
    ///
    /// # Errors
    ///
    /// The first violation found, as an [`InvariantError`].
    pub fn check_invariants(&self) -> Result<InvariantReport, InvariantError> {
        let offsets = self.level_offsets();
        // (shares, orders) summed over the live orders of each level.
        let mut sums = vec![(0u64, 0u32); offsets.last().copied().unwrap_or(0)];
        // The smallest (locate, side, price) of live orders without a level.
        let mut no_level: Option<(u16, Side, u32)> = None;
        let mut per_locate = vec![0usize; self.books.len()];
        let mut live = 0usize;
        let mut bad = None;
        self.index.for_each(|r, o| {
            live += 1;
            if bad.is_some() {
                return;
            }
            let b = match self.order_book_of(r, &o) {
                Ok(b) => b,
                Err(e) => {
                    bad = Some(e);
                    return;
                }
            };
            per_locate[o.locate as usize] += 1;
            let side_levels = &b.sides[o.side.index()];
            match levels::find(side_levels, levels::key(o.side, o.price)) {
                Ok(j) if side_levels[j].key == levels::key(o.side, o.price) => {
                    let e = &mut sums[offsets[2 * o.locate as usize + o.side.index()] + j];
                    e.0 += u64::from(o.shares);
                    e.1 += 1;
                }
                _ => {
                    let k = (o.locate, o.side, o.price);
                    if no_level.is_none_or(|n| k < n) {
                        no_level = Some(k);
                    }
                }
            }
        });
        if let Some(e) = bad {
            return Err(e);
        }
        count("live orders (counter vs index)", self.live, live)?;
        count("ref index entries", live, self.index.len())?;
        self.index.check().map_err(InvariantError::Index)?;
        let report = self.check_locates(&per_locate, |locate, side, j, lv| {
            let (order_shares, order_count) = sums[offsets[2 * locate as usize + side.index()] + j];
            if (order_shares, order_count) == (lv.shares, lv.orders) {
                Ok(())
            } else {
                Err(InvariantError::LevelMismatch {
                    locate,
                    side,
                    price: levels::price(side, lv.key),
                    level_shares: lv.shares,
                    level_orders: lv.orders,
                    order_shares,
                    order_count,
                })
            }
        })?;
        if let Some((locate, side, price)) = no_level {
            return Err(InvariantError::NoLevel {
                locate,
                side,
                price,
            });
        }
        Ok(report)
    }

    /// The same invariants as [`Book::check_invariants`], at the cost of
    /// one sequential pass over the ref index (where the orders live)
    /// instead of a level search per order: the level aggregates are
    /// compared through 64-bit fingerprints (sums of a hash of each level,
    /// weighted by shares and by orders) rather than level by level. The
    /// counts, the level order and emptiness, the per-locate totals and the
    /// index's own bookkeeping are checked exactly.
    ///
    /// A fingerprint that disagrees means a real inconsistency; the check
    /// then runs [`Book::check_invariants`] to name it, so the error is the
    /// same as the full check's. A corruption that leaves every fingerprint
    /// equal would need to cancel a 64-bit hash sum exactly: the chance is
    /// about 2⁻⁶³ per fingerprint.
    ///
    /// # Errors
    ///
    /// The first violation found, as an [`InvariantError`].
    pub fn check_invariants_fast(&self) -> Result<InvariantReport, InvariantError> {
        let mut per_locate = vec![0usize; self.books.len()];
        let mut live = 0usize;
        let (mut by_shares, mut by_orders) = (0u64, 0u64);
        let mut bad = None;
        self.index.for_each(|r, o| {
            live += 1;
            if bad.is_some() {
                return;
            }
            if let Err(e) = self.order_book_of(r, &o) {
                bad = Some(e);
                return;
            }
            per_locate[o.locate as usize] += 1;
            let h = level_hash(o.locate, o.side, o.price);
            by_shares = by_shares.wrapping_add(h.wrapping_mul(u64::from(o.shares)));
            by_orders = by_orders.wrapping_add(h);
        });
        if let Some(e) = bad {
            return Err(e);
        }
        count("live orders (counter vs index)", self.live, live)?;
        count("ref index entries", live, self.index.len())?;
        self.index.check().map_err(InvariantError::Index)?;
        let (mut level_shares, mut level_orders) = (0u64, 0u64);
        let report = self.check_locates(&per_locate, |locate, side, _, lv| {
            let h = level_hash(locate, side, levels::price(side, lv.key));
            level_shares = level_shares.wrapping_add(h.wrapping_mul(lv.shares));
            level_orders = level_orders.wrapping_add(h.wrapping_mul(u64::from(lv.orders)));
            Ok(())
        })?;
        if (level_shares, level_orders) != (by_shares, by_orders) {
            // Name it exactly; a fingerprint cannot disagree without cause.
            self.check_invariants()?;
            return Err(InvariantError::Index(
                "fingerprints of the orders and the levels disagree".to_owned(),
            ));
        }
        Ok(report)
    }

    /// The book of a live order's locate, which must exist and be kept.
    fn order_book_of(&self, order_ref: u64, o: &OrderRec) -> Result<&LocateBook, InvariantError> {
        let Some(b) = self.books.get(o.locate as usize) else {
            return Err(InvariantError::OrderLocate {
                order_ref,
                locate: o.locate,
            });
        };
        if !b.active {
            return Err(InvariantError::InactiveBookHasOrders { locate: o.locate });
        }
        Ok(b)
    }

    /// Where each (locate, side)'s levels start in one flat vector of all
    /// levels: entry `2 × locate + side`, the total last.
    fn level_offsets(&self) -> Vec<usize> {
        let mut offsets = Vec::with_capacity(2 * self.books.len() + 1);
        let mut n = 0usize;
        for b in &self.books {
            for v in &b.sides {
                offsets.push(n);
                n += v.len();
            }
        }
        offsets.push(n);
        offsets
    }

    /// The per-locate part of the checks: inactive books empty, order
    /// counts, levels sorted and non-empty, then `level` on every level
    /// (locate, side, position, level); crossed and locked books listed.
    fn check_locates(
        &self,
        per_locate: &[usize],
        mut level: impl FnMut(u16, Side, usize, &LevelSlot) -> Result<(), InvariantError>,
    ) -> Result<InvariantReport, InvariantError> {
        let mut report = InvariantReport {
            live_orders: self.live,
            ..InvariantReport::default()
        };
        for (l, b) in self.books.iter().enumerate() {
            let locate = l as u16;
            if !b.active && (b.orders > 0 || !b.sides[0].is_empty() || !b.sides[1].is_empty()) {
                return Err(InvariantError::InactiveBookHasOrders { locate });
            }
            count("orders of a locate", per_locate[l], b.orders as usize)?;
            for side in [Side::Buy, Side::Sell] {
                let v = &b.sides[side.index()];
                report.levels += v.len();
                for (pos, w) in v.windows(2).enumerate() {
                    if w[0].key >= w[1].key {
                        return Err(InvariantError::UnsortedLevels {
                            locate,
                            side,
                            position: pos + 1,
                        });
                    }
                }
                for (j, lv) in v.iter().enumerate() {
                    let price = levels::price(side, lv.key);
                    if lv.orders == 0 || lv.shares == 0 {
                        return Err(InvariantError::EmptyLevel {
                            locate,
                            side,
                            price,
                        });
                    }
                    level(locate, side, j, lv)?;
                }
            }
            if let (Some(bid), Some(ask)) = (b.best(Side::Buy), b.best(Side::Sell)) {
                let (bid, ask) = (
                    levels::price(Side::Buy, bid.key),
                    levels::price(Side::Sell, ask.key),
                );
                if bid > ask {
                    report.crossed.push(locate);
                } else if bid == ask {
                    report.locked.push(locate);
                }
            }
        }
        Ok(report)
    }

    // ------------------------------------------------------------ internals

    /// Whether `locate` is in range and kept; counts the reason if not.
    #[inline]
    fn admit(&mut self, locate: u16) -> bool {
        match self.books.get(locate as usize).map(|b| b.active) {
            Some(true) => true,
            Some(false) => {
                self.counters.filtered += 1;
                false
            }
            // In selected mode an ungrown locate is one no directory named
            // (which grows it): filtered without growing the table.
            None if self.selected.is_some() && usize::from(locate) < self.config.max_locates => {
                self.counters.filtered += 1;
                false
            }
            None if self.grow_books(locate) => self.admit(locate),
            None => {
                self.counters.bad_locate += 1;
                false
            }
        }
    }

    /// Grows the books to cover `locate` if it is below `max_locates`
    /// (new books active in all-symbols mode); false if it is not.
    #[cold]
    #[inline(never)]
    fn grow_books(&mut self, locate: u16) -> bool {
        let l = usize::from(locate);
        if l >= self.config.max_locates {
            return false;
        }
        self.grow_books_to(l + 1);
        true
    }

    /// Grows the books to `len` locates (no shrinking).
    fn grow_books_to(&mut self, len: usize) {
        let all = self.selected.is_none();
        if len > self.books.len() {
            self.books.resize_with(len, || LocateBook {
                active: all,
                ..LocateBook::default()
            });
        }
    }

    /// Execute or cancel.
    #[inline]
    fn reduce(&mut self, locate: u16, order_ref: u64, shares: u32) -> TopChange {
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        if shares == 0 {
            self.counters.zero_shares += 1;
            return TopChange::NONE;
        }
        let Some(o) = lookup(&mut self.index, &mut self.counters, locate, order_ref) else {
            return TopChange::NONE;
        };
        let l = locate as usize;
        let side = o.side;
        let before = self.books[l].best(side);
        if shares < o.shares {
            o.shares -= shares;
            let key = levels::key(side, o.price);
            levels::remove_shares(&mut self.books[l].sides[side.index()], key, shares, false);
        } else {
            if shares > o.shares {
                self.counters.oversized += 1;
            }
            let o = *o;
            self.remove_order(order_ref, o);
        }
        self.changed(l, side, before)
    }

    /// Indexes the order under its ref and adds it to its level. The ref
    /// must not be live.
    #[inline]
    fn insert_order(&mut self, locate: u16, order_ref: u64, side: Side, shares: u32, price: u32) {
        if self.live >= MAX_ORDERS {
            self.counters.pool_exhausted += 1;
            return;
        }
        self.index.insert(
            order_ref,
            OrderRec {
                shares,
                price,
                locate,
                side,
            },
        );
        self.live += 1;
        let b = &mut self.books[locate as usize];
        b.orders += 1;
        levels::add_order(&mut b.sides[side.index()], levels::key(side, price), shares);
    }

    /// Removes the live order `o` of `order_ref` from its level and the
    /// index.
    #[inline]
    fn remove_order(&mut self, order_ref: u64, o: OrderRec) {
        self.index.remove(order_ref);
        self.unlevel(o);
        self.live -= 1;
    }

    /// Takes the order `o` out of its level and its locate's count (not
    /// the index, not the live count).
    #[inline]
    fn unlevel(&mut self, o: OrderRec) {
        let b = &mut self.books[usize::from(o.locate)];
        b.orders -= 1;
        levels::remove_shares(
            &mut b.sides[o.side.index()],
            levels::key(o.side, o.price),
            o.shares,
            true,
        );
    }

    /// Drops every order and level of locate `l`; O(ref window). Returns
    /// the top change.
    fn purge(&mut self, l: usize) -> TopChange {
        let before = self.books[l].tops();
        if self.books[l].orders > 0 {
            let mut removed = 0usize;
            self.index.retain(|_, o| {
                let keep = usize::from(o.locate) != l;
                removed += usize::from(!keep);
                keep
            });
            self.live -= removed;
            self.books[l].orders -= removed as u32;
        }
        let b = &mut self.books[l];
        debug_assert_eq!(b.orders, 0);
        b.sides[0].clear();
        b.sides[1].clear();
        self.changed_both(l, before)
    }

    #[inline]
    fn changed(&mut self, l: usize, side: Side, before: Option<LevelSlot>) -> TopChange {
        // Without a branch: whether the top moved is as good as random
        // from one message to the next (about two in five do).
        let (a, b) = (top_bits(self.books[l].best(side)), top_bits(before));
        let differ = u8::from(((a.0 ^ b.0) | (a.1 ^ b.1)) != 0);
        self.counters.top_changes += u64::from(differ);
        TopChange(differ << side.index())
    }

    fn changed_both(&mut self, l: usize, before: [Option<LevelSlot>; 2]) -> TopChange {
        let after = self.books[l].tops();
        let mut c = TopChange::NONE;
        if after[0] != before[0] {
            c |= TopChange::BID;
        }
        if after[1] != before[1] {
            c |= TopChange::ASK;
        }
        if c.top() {
            self.counters.top_changes += 1;
        }
        c
    }
}

/// A level (or none) as one integer pair, compared without branches: an
/// empty side is all zeros, which no level is (a level has an order).
#[inline(always)]
fn top_bits(l: Option<LevelSlot>) -> (u64, u64) {
    l.map_or((0, 0), |l| {
        ((u64::from(l.key) << 32) | u64::from(l.orders), l.shares)
    })
}

/// The live order `o` of `order_ref`, as the API shows it.
#[inline]
fn info(order_ref: u64, o: &OrderRec) -> OrderInfo {
    OrderInfo {
        order_ref,
        locate: o.locate,
        side: o.side,
        shares: o.shares,
        price: o.price,
    }
}

/// The order `order_ref` if it is live under `locate`, to read or change
/// in place; counts the reason if not. (A function of the two fields it
/// needs, so the caller can use the book's other fields meanwhile.)
#[inline]
fn lookup<'a>(
    index: &'a mut RefIndex<OrderRec>,
    counters: &mut BookCounters,
    locate: u16,
    order_ref: u64,
) -> Option<&'a mut OrderRec> {
    let Some(o) = index.get_mut(order_ref) else {
        counters.unknown_ref += 1;
        return None;
    };
    if o.locate != locate {
        counters.locate_mismatch += 1;
        return None;
    }
    Some(o)
}

/// The levels of one side, best first. See [`Book::levels`].
#[derive(Clone, Debug)]
pub struct Levels<'a> {
    inner: std::iter::Rev<std::slice::Iter<'a, LevelSlot>>,
    side: Side,
}

impl Iterator for Levels<'_> {
    type Item = Level;

    #[inline]
    fn next(&mut self) -> Option<Level> {
        self.inner.next().map(|l| Level::from_slot(self.side, l))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Levels<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Level> {
        self.inner
            .next_back()
            .map(|l| Level::from_slot(self.side, l))
    }
}

impl ExactSizeIterator for Levels<'_> {}
impl std::iter::FusedIterator for Levels<'_> {}

/// A comparable copy of one locate's book. See [`Book::snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookSnapshot {
    /// The locate.
    pub locate: u16,
    /// Its symbol, if a stock directory message named it.
    pub symbol: Option<[u8; 8]>,
    /// Its trading state, if a trading action set it.
    pub trading_state: Option<TradingState>,
    /// Bid levels, best (highest) first.
    pub bids: Vec<Level>,
    /// Offer levels, best (lowest) first.
    pub asks: Vec<Level>,
    /// Live orders, by increasing ref.
    pub orders: Vec<OrderInfo>,
}

/// What [`Book::check_invariants`] found besides violations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvariantReport {
    /// Locates whose best bid is above their best offer.
    pub crossed: Vec<u16>,
    /// Locates whose best bid equals their best offer.
    pub locked: Vec<u16>,
    /// Live orders.
    pub live_orders: usize,
    /// Price levels, both sides of all books.
    pub levels: usize,
}

/// The first inconsistency [`Book::check_invariants`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvariantError {
    /// Levels out of order or duplicated at `position` (counted from the
    /// worst price).
    UnsortedLevels {
        /// Locate.
        locate: u16,
        /// Side.
        side: Side,
        /// Index in the side's vector (worst price first).
        position: usize,
    },
    /// A level with no order or no share.
    EmptyLevel {
        /// Locate.
        locate: u16,
        /// Side.
        side: Side,
        /// Price.
        price: u32,
    },
    /// A level's aggregates differ from the sum over its orders.
    LevelMismatch {
        /// Locate.
        locate: u16,
        /// Side.
        side: Side,
        /// Price.
        price: u32,
        /// Shares the level holds.
        level_shares: u64,
        /// Orders the level counts.
        level_orders: u32,
        /// Shares of the live orders at that price.
        order_shares: u64,
        /// Live orders at that price.
        order_count: u32,
    },
    /// Live orders at a price that has no level.
    NoLevel {
        /// Locate.
        locate: u16,
        /// Side.
        side: Side,
        /// Price.
        price: u32,
    },
    /// A live order, or an index entry, whose ref and slot disagree. Not
    /// produced since orders are stored in the ref index under their ref
    /// (nothing left to disagree); kept for code that matches on it.
    IndexMismatch {
        /// The order ref.
        order_ref: u64,
    },
    /// A live order with a locate outside the books.
    OrderLocate {
        /// The order ref.
        order_ref: u64,
        /// Its locate.
        locate: u16,
    },
    /// A book that is not kept holds orders or levels.
    InactiveBookHasOrders {
        /// Locate.
        locate: u16,
    },
    /// Two counts that must agree do not.
    Count {
        /// What was counted.
        what: &'static str,
        /// The count expected.
        expected: usize,
        /// The count found.
        found: usize,
    },
    /// The ref index's own bookkeeping is wrong.
    Index(String),
}

impl fmt::Display for InvariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvariantError::UnsortedLevels {
                locate,
                side,
                position,
            } => write!(
                f,
                "locate {locate} {side:?}: levels unsorted or duplicated at position {position}"
            ),
            InvariantError::EmptyLevel {
                locate,
                side,
                price,
            } => write!(f, "locate {locate} {side:?}: empty level at price {price}"),
            InvariantError::LevelMismatch {
                locate,
                side,
                price,
                level_shares,
                level_orders,
                order_shares,
                order_count,
            } => write!(
                f,
                "locate {locate} {side:?} price {price}: level holds {level_shares} shares \
                 in {level_orders} orders, its orders sum to {order_shares} shares in \
                 {order_count}"
            ),
            InvariantError::NoLevel {
                locate,
                side,
                price,
            } => write!(
                f,
                "locate {locate} {side:?}: live orders at price {price} have no level"
            ),
            InvariantError::IndexMismatch { order_ref } => {
                write!(f, "order ref {order_ref}: index and order disagree")
            }
            InvariantError::OrderLocate { order_ref, locate } => {
                write!(f, "order ref {order_ref}: locate {locate} has no book")
            }
            InvariantError::InactiveBookHasOrders { locate } => {
                write!(f, "locate {locate}: not kept but holds orders or levels")
            }
            InvariantError::Count {
                what,
                expected,
                found,
            } => write!(f, "{what}: expected {expected}, found {found}"),
            InvariantError::Index(s) => write!(f, "ref index: {s}"),
        }
    }
}

impl std::error::Error for InvariantError {}

/// Free-list entries [`Book::check_invariants_fast`] walked when orders
/// lived in a slab with a free list; orders now live in the ref index and
/// there is no free list, so nothing uses it. Kept for code that names it.
pub const FAST_CHECK_FREE_LIST: usize = 4096;

/// `Ok` when two counts agree, else the [`InvariantError::Count`] naming them.
fn count(what: &'static str, expected: usize, found: usize) -> Result<(), InvariantError> {
    if expected == found {
        Ok(())
    } else {
        Err(InvariantError::Count {
            what,
            expected,
            found,
        })
    }
}

/// A well-spread, odd hash of a level (odd: a weighted sum of them cannot
/// lose a difference to a factor of two).
#[inline]
fn level_hash(locate: u16, side: Side, price: u32) -> u64 {
    mix64((u64::from(locate) << 40) ^ ((side as u64) << 32) ^ u64::from(price) ^ 0x5bd1_e995) | 1
}

/// FNV-1a, 64 bits.
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Fnv {
        Fnv(Self::OFFSET)
    }

    #[inline]
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(Self::PRIME);
        }
    }
}
