//! Market data applied: ITCH 5.0 messages in, order books and counts out.
//!
//! [`MarketData`] is the glue between the codec ([`hftnet_wire::itch50`]) and
//! the [`Book`]: it reads each message in place through the codec's views
//! (no copy, no enum on the hot path), applies the order messages and the
//! directory and trading-state messages to the book, counts every message
//! by type, and keeps a digest of the stream itself so two parties can check
//! they saw the same messages in the same order.
//!
//! Malformed messages (too short for their type, a side byte other than `B`
//! or `S`) are counted and skipped; unknown types are counted and skipped by
//! length. Nothing here panics on any input.
//!
//! Two hooks for what reads the books: [`MarketData::handle_with`] calls
//! back on every change of a book's top ([`TopUpdate`]);
//! [`MarketData::handle_events`] also on every trade ([`TradeUpdate`]: the
//! executions `E` and `C` of orders in a kept book, and the non-cross trades
//! `P` of a kept book), through a [`MarketEvents`] listener.

use hftnet_wire::itch50::file::next_record;
use hftnet_wire::itch50::{
    AddOrder, AddOrderMpid, MessageType, OrderCancel, OrderDelete, OrderExecuted,
    OrderExecutedWithPrice, OrderReplace, StockDirectory, StockTradingAction, Trade,
};

use crate::book::{Book, BookConfig, ConfigError, Side, TopChange, TopOfBook, TradingState};

/// Counts of what [`MarketData`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCounts {
    /// Messages of each known type, indexed by [`MessageType::index`].
    pub by_type: [u64; MessageType::COUNT],
    /// Messages of a type ITCH 5.0 does not define (skipped).
    pub unknown: u64,
    /// Messages too short for their type or with a field out of range.
    pub malformed: u64,
}

impl Default for MessageCounts {
    fn default() -> Self {
        Self {
            by_type: [0; MessageType::COUNT],
            unknown: 0,
            malformed: 0,
        }
    }
}

impl MessageCounts {
    /// All messages seen, known, unknown and malformed.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.by_type.iter().sum::<u64>() + self.unknown + self.malformed
    }

    /// The count of one type.
    #[must_use]
    pub fn of(&self, t: MessageType) -> u64 {
        self.by_type[t.index()]
    }

    /// `(name, count)` of every known type seen at least once, in table order.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        (0..MessageType::COUNT).filter_map(|i| {
            let t = MessageType::from_index(i)?;
            let n = self.by_type[i];
            (n > 0).then_some((t.name(), n))
        })
    }
}

/// A digest of a message stream: FNV-1a's multiply, applied to the length
/// and then to 8-byte big-endian words (the last one zero-padded), so it
/// costs a few multiplies per message. Stable across runs, machines and
/// processes; not cryptographic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDigest(u64);

impl Default for StreamDigest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl StreamDigest {
    const PRIME: u64 = 0x0100_0000_01b3;

    /// Adds one message (its length first, so boundaries count).
    #[inline(always)]
    pub fn add(&mut self, msg: &[u8]) {
        self.mix(msg.len() as u64);
        let mut chunks = msg.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_be_bytes(w));
        }
        let rest = chunks.remainder();
        if rest.is_empty() {
            return;
        }
        if let Some(last) = msg.last_chunk::<8>() {
            // The 1–7 bytes left are the low end of the message's last 8
            // bytes: one load, shifted up, zero-padded below.
            self.mix(tail_word(u64::from_be_bytes(*last), rest.len()));
            return;
        }
        // A message shorter than 8 bytes (malformed in ITCH).
        self.add_short(rest);
    }

    /// The zero-padded word of a message shorter than 8 bytes (after its
    /// length was mixed).
    #[inline]
    fn add_short(&mut self, msg: &[u8]) {
        let mut w = [0u8; 8];
        let n = msg.len().min(8);
        w[..n].copy_from_slice(&msg[..n]);
        self.mix(u64::from_be_bytes(w));
    }

    #[inline]
    fn mix(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(Self::PRIME);
        self.0 ^= self.0 >> 29;
    }

    /// The digest so far.
    #[must_use]
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// The word of the last `rest` (1–7) bytes of a message, zero-padded
/// below, from the big-endian word `last` of its last 8 bytes.
#[inline(always)]
const fn tail_word(last: u64, rest: usize) -> u64 {
    last << (8 * (8 - rest))
}

/// A change of the best bid, best offer or trading state of one book, as
/// handed to the strategy by [`MarketData::handle_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopUpdate {
    /// The stock locate of the book.
    pub locate: u16,
    /// What changed.
    pub change: TopChange,
    /// The best bid and offer after the message.
    pub top: TopOfBook,
    /// The book's trading state after the message, once a trading action
    /// set it.
    pub state: Option<TradingState>,
    /// The book's symbol, once a stock directory message named it.
    pub symbol: Option<[u8; 8]>,
    /// The message's timestamp, nanoseconds since midnight.
    pub timestamp_ns: u64,
}

/// Which message printed a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeSource {
    /// Order Executed (`E`): a resting order traded at its price.
    Executed,
    /// Order Executed With Price (`C`): a resting order traded at another price.
    ExecutedWithPrice,
    /// Trade, non-cross (`P`): a non-displayed order traded.
    NonCross,
}

/// A trade, as handed to a listener by [`MarketData::handle_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeUpdate {
    /// The stock locate.
    pub locate: u16,
    /// The symbol: the book's (`E`, `C`) or the message's (`P`); `None`
    /// when no stock directory message named the book.
    pub symbol: Option<[u8; 8]>,
    /// Price, 4 implied decimals: the resting order's (`E`), the
    /// message's (`C`, `P`).
    pub price: u32,
    /// Shares traded, as the message says.
    pub shares: u32,
    /// The side that took liquidity: the opposite of the resting order's
    /// (`E`, `C`); `None` for `P` (ITCH has sent `B` there whatever the
    /// side since 2014).
    pub aggressor: Option<Side>,
    /// The exchange's match number.
    pub match_number: u64,
    /// Counted in volume now (`C` messages may say not: printed later).
    pub printable: bool,
    /// The message it came from.
    pub source: TradeSource,
    /// The message's timestamp, nanoseconds since midnight.
    pub timestamp_ns: u64,
}

/// What [`MarketData::handle_events`] tells a listener about. Both methods
/// run before the next message is handled; for an execution that also
/// changes the top, the trade comes first.
pub trait MarketEvents {
    /// A change of the best bid, best offer or trading state of one book.
    fn top(&mut self, update: &TopUpdate);
    /// A trade in a kept book.
    fn trade(&mut self, trade: &TradeUpdate);
}

/// Books plus counts; see the module doc.
#[derive(Debug)]
pub struct MarketData {
    book: Book,
    dec: Decoder,
}

/// The decoding half of [`MarketData`]: what it knows of the stream itself
/// (counts, digest, last timestamp), apart from the books, so a pipeline
/// can decode on one thread while another applies.
#[derive(Debug, Clone)]
struct Decoder {
    counts: MessageCounts,
    digest: StreamDigest,
    /// Whether messages go into `digest` (see [`MarketData::set_stream_digest`]).
    digest_on: bool,
    last_timestamp_ns: u64,
}

impl Decoder {
    fn new() -> Self {
        Self {
            counts: MessageCounts::default(),
            digest: StreamDigest::default(),
            digest_on: true,
            last_timestamp_ns: 0,
        }
    }

    /// See [`MarketData::decode`].
    #[inline(always)]
    fn decode(&mut self, msg: &[u8]) -> Option<BookOp> {
        if self.digest_on {
            // First, before the branch on the type: the multiply chain then
            // runs while the type's branch resolves.
            self.digest.add(msg);
        }
        match decode_op(msg) {
            Decoded::Op(op, t, ts) => {
                self.counts.by_type[t.index()] += 1;
                self.last_timestamp_ns = ts;
                Some(op)
            }
            Decoded::Unknown => {
                self.counts.unknown += 1;
                None
            }
            Decoded::Malformed => {
                self.counts.malformed += 1;
                None
            }
        }
    }
}

impl MarketData {
    /// Empty books.
    ///
    /// # Errors
    /// When the book configuration is invalid.
    pub fn new(cfg: BookConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            book: Book::new(cfg)?,
            dec: Decoder::new(),
        })
    }

    /// The books.
    #[must_use]
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// Counts by type.
    #[must_use]
    pub fn counts(&self) -> &MessageCounts {
        &self.dec.counts
    }

    /// Digest of every message handled, in order (while the digest is
    /// on: see [`MarketData::set_stream_digest`]).
    #[must_use]
    pub fn stream_digest(&self) -> u64 {
        self.dec.digest.value()
    }

    /// Turns the stream digest on (the default) or off. It is a serial
    /// chain of some five multiplies per message that nothing else waits
    /// for: a replay that does not compare streams saves 2–5% of its
    /// time without it. Messages handled while it is off are not in it, so turn it off
    /// before the first message, or compare nothing after; the counts,
    /// timestamps and books are the same either way.
    pub fn set_stream_digest(&mut self, on: bool) {
        self.dec.digest_on = on;
    }

    /// Whether the stream digest is on.
    #[must_use]
    pub fn stream_digest_on(&self) -> bool {
        self.dec.digest_on
    }

    /// Timestamp of the last well-formed message, nanoseconds since midnight.
    #[must_use]
    pub fn last_timestamp_ns(&self) -> u64 {
        self.dec.last_timestamp_ns
    }

    /// Applies one message (without framing). Returns how the top of its
    /// book changed ([`TopChange::NONE`] for messages that do not touch a
    /// book, and for unknown or malformed ones, which are counted).
    #[inline]
    pub fn handle(&mut self, msg: &[u8]) -> TopChange {
        match self.decode(msg) {
            Some(op) => self.apply_op(&op),
            None => TopChange::NONE,
        }
    }

    /// Like [`MarketData::handle`], and calls `on_top` when the message
    /// changed the best bid, the best offer or the trading state of its book
    /// — the hook for a strategy. The callback runs before the next message
    /// is handled; it gets a copy of the top, nothing to free.
    pub fn handle_with(&mut self, msg: &[u8], on_top: &mut impl FnMut(&TopUpdate)) -> TopChange {
        let change = self.handle(msg);
        if !change.is_empty() {
            on_top(&self.top_update(msg, change));
        }
        change
    }

    /// Like [`MarketData::handle_with`], and also tells `events` of every
    /// trade: an `E` or `C` execution of an order in a kept book (the
    /// order's side gives the aggressor, an `E` its price; an execution of
    /// an order the book does not know gives none), a `P` non-cross trade
    /// of a kept book. Costs one order lookup per execution.
    pub fn handle_events(&mut self, msg: &[u8], events: &mut impl MarketEvents) -> TopChange {
        let trade = match msg.first() {
            Some(b'E' | b'C' | b'P') => self.trade_of(msg),
            _ => None,
        };
        let change = self.handle(msg);
        if let Some(t) = trade {
            events.trade(&t);
        }
        if !change.is_empty() {
            events.top(&self.top_update(msg, change));
        }
        change
    }

    /// The top update of a message that changed `change` (so it was well
    /// formed: its header is there).
    fn top_update(&self, msg: &[u8], change: TopChange) -> TopUpdate {
        let locate = u16::from_be_bytes([msg[1], msg[2]]);
        TopUpdate {
            locate,
            change,
            top: self.book.top(locate),
            state: self.book.trading_state(locate),
            symbol: self.book.symbol(locate),
            timestamp_ns: self.dec.last_timestamp_ns,
        }
    }

    /// The trade an `E`, `C` or `P` message prints, read before the book
    /// applies it (an execution may remove the order); `None` when it is
    /// malformed, of a book not kept, of no shares, or of an unknown order.
    fn trade_of(&self, msg: &[u8]) -> Option<TradeUpdate> {
        let b = &self.book;
        let resting = |locate: u16, order_ref: u64| {
            b.order(order_ref)
                .filter(|o| o.locate == locate && b.is_active(locate))
        };
        let t = match msg[0] {
            b'E' => {
                let m = OrderExecuted::new_checked(msg).ok()?;
                let o = resting(m.stock_locate(), m.order_ref())?;
                TradeUpdate {
                    locate: m.stock_locate(),
                    symbol: b.symbol(m.stock_locate()),
                    price: o.price,
                    shares: m.executed_shares(),
                    aggressor: Some(opposite(o.side)),
                    match_number: m.match_number(),
                    printable: true,
                    source: TradeSource::Executed,
                    timestamp_ns: m.timestamp().nanos(),
                }
            }
            b'C' => {
                let m = OrderExecutedWithPrice::new_checked(msg).ok()?;
                let o = resting(m.stock_locate(), m.order_ref())?;
                TradeUpdate {
                    locate: m.stock_locate(),
                    symbol: b.symbol(m.stock_locate()),
                    price: m.execution_price().raw(),
                    shares: m.executed_shares(),
                    aggressor: Some(opposite(o.side)),
                    match_number: m.match_number(),
                    printable: m.printable() != b'N',
                    source: TradeSource::ExecutedWithPrice,
                    timestamp_ns: m.timestamp().nanos(),
                }
            }
            _ => {
                let m = Trade::new_checked(msg).ok()?;
                if !b.is_active(m.stock_locate()) {
                    return None;
                }
                TradeUpdate {
                    locate: m.stock_locate(),
                    symbol: Some(m.stock().0),
                    price: m.price().raw(),
                    shares: m.shares(),
                    aggressor: None,
                    match_number: m.match_number(),
                    printable: true,
                    source: TradeSource::NonCross,
                    timestamp_ns: m.timestamp().nanos(),
                }
            }
        };
        (t.shares > 0).then_some(t)
    }

    /// Decodes one message (without framing) for the book, and counts it:
    /// the stream digest, the count of its type (or `unknown`,
    /// `malformed`), the last timestamp. `None` for an unknown or malformed
    /// message (counted, nothing to apply). Apply the result with
    /// [`MarketData::apply_op`], in stream order: [`MarketData::handle`] is
    /// exactly the two in a row; [`MarketData::handle_records`] decodes a
    /// few messages ahead of the one it applies.
    #[inline]
    pub fn decode(&mut self, msg: &[u8]) -> Option<BookOp> {
        self.decode_inline(msg)
    }

    /// [`MarketData::decode`], inlined into the pipeline's loop: the op is
    /// built in place rather than returned through memory (a call returned
    /// it field by field and the loop re-read it whole, a failed
    /// store-to-load forward per message).
    #[inline(always)]
    fn decode_inline(&mut self, msg: &[u8]) -> Option<BookOp> {
        self.dec.decode(msg)
    }

    /// Applies a decoded message to the books; returns how the top of its
    /// book changed.
    #[inline]
    pub fn apply_op(&mut self, op: &BookOp) -> TopChange {
        self.apply_inline(op)
    }

    /// [`MarketData::apply_op`], inlined into the pipeline's loop.
    #[inline(always)]
    fn apply_inline(&mut self, op: &BookOp) -> TopChange {
        apply_to(&mut self.book, op)
    }

    /// Handles every whole record of `bytes`, which holds records in the
    /// ITCH file framing (a 2-byte big-endian length, then the message), as
    /// [`MarketData::handle`] would one by one, with the same counts,
    /// digests and books — but faster on large books: it decodes
    /// [`LOOKAHEAD`] messages ahead of the one it applies, and hands
    /// `prefetch` the addresses of the ref-index entry and the locate's
    /// record of each message as it decodes it (the order itself lives in
    /// its ref-index entry), and of the best levels of its locate half-way
    /// to its turn, so the
    /// cache misses of the lookups overlap instead of stalling one after
    /// the other. `prefetch` is a hint (e.g. `hftnet_sys::hint::prefetch`):
    /// it must not read through the pointer; `|_| {}` is correct, only
    /// slower. No allocation.
    ///
    /// Stops at the first record that is not whole (a cut tail: `used`
    /// stops before it, the caller keeps those bytes for later or calls
    /// the file cut) or not valid (a zero length: `error`).
    pub fn handle_records(
        &mut self,
        bytes: &[u8],
        mut prefetch: impl FnMut(*const u8),
    ) -> RecordsHandled {
        const MASK: usize = LOOKAHEAD - 1;
        let mut ring = [BookOp::default(); LOOKAHEAD];
        let (mut head, mut tail) = (0usize, 0usize);
        let mut at = 0usize;
        let error = loop {
            let msg = match next_record(&bytes[at..]) {
                Ok(Some((msg, used))) => {
                    at += used;
                    msg
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            };
            let Some(op) = self.decode_inline(msg) else {
                continue;
            };
            // Whatever the kind, not a branch on it that no predictor
            // could guess: an add writes its slot soon too, and an op
            // without a ref carries 0 (a hint for slot 0 at most).
            if let Some(p) = self.book.ref_entry_hint(op.order_ref) {
                prefetch(p);
            }
            if let Some(p) = self.book.locate_hint(op.locate) {
                prefetch(p);
            }
            ring[tail & MASK] = op;
            tail += 1;
            if tail - head > SLOT_AHEAD {
                // The order itself lives in its ref-index entry, prefetched
                // above: only the levels are left to fetch.
                let o = &ring[(tail - 1 - SLOT_AHEAD) & MASK];
                for p in self.book.top_hints(o.locate).into_iter().flatten() {
                    prefetch(p);
                }
            }
            if tail - head == LOOKAHEAD {
                // Applied from its ring slot: the fields the op's kind
                // needs are read, not the whole op copied out first.
                self.apply_inline(&ring[head & MASK]);
                head += 1;
            }
        };
        while head < tail {
            let o = ring[head & MASK];
            self.apply_op(&o);
            head += 1;
        }
        RecordsHandled { used: at, error }
    }
}

/// The decoding half of a [`MarketData`] ([`MarketData::halves`]): it
/// reads records, keeps the counts, the stream digest and the last
/// timestamp, and hands out the [`BookOp`]s for the other half to apply.
#[derive(Debug)]
pub struct StreamDecoder<'a>(&'a mut Decoder);

/// The applying half of a [`MarketData`] ([`MarketData::halves`]): the
/// books, fed [`BookOp`]s in stream order.
#[derive(Debug)]
pub struct BookApplier<'a>(&'a mut Book);

impl MarketData {
    /// Splits into the half that decodes and the half that applies, so the
    /// two can run on two threads with the ops passed between them in
    /// stream order (`hftnet replay` does). Feeding every op
    /// [`StreamDecoder::decode_records`] gives, in order, to
    /// [`BookApplier::apply_ops`] leaves exactly the state
    /// [`MarketData::handle_records`] leaves for the same bytes.
    pub fn halves(&mut self) -> (StreamDecoder<'_>, BookApplier<'_>) {
        (StreamDecoder(&mut self.dec), BookApplier(&mut self.book))
    }
}

impl StreamDecoder<'_> {
    /// Decodes whole records of `bytes` (ITCH file framing) into `ops`
    /// until `ops` is full or a record is not whole (a cut tail) or not
    /// valid (a zero length: `error`). Counts and digests every message it
    /// takes; unknown and malformed ones are counted and give no op.
    /// Returns what it got through and how many ops it wrote. No
    /// allocation.
    pub fn decode_records(&mut self, bytes: &[u8], ops: &mut [BookOp]) -> (RecordsHandled, usize) {
        let mut at = 0usize;
        let mut n = 0usize;
        let error = loop {
            if n == ops.len() {
                break None;
            }
            let msg = match next_record(&bytes[at..]) {
                Ok(Some((msg, used))) => {
                    at += used;
                    msg
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            };
            if let Some(op) = self.0.decode(msg) {
                ops[n] = op;
                n += 1;
            }
        };
        (RecordsHandled { used: at, error }, n)
    }
}

impl MarketData {
    /// Moves the books and orders of `other` into these books
    /// ([`Book::absorb`]): `other` was fed, through a
    /// [`BookApplier::new`], the ops of locates these books never saw.
    ///
    /// # Errors
    /// As [`Book::absorb`]; nothing moved.
    pub fn absorb(&mut self, other: Book) -> Result<(), crate::book::AbsorbError> {
        self.book.absorb(other)
    }
}

impl<'a> BookApplier<'a> {
    /// An applier of ops to a book of its own (a second shard of one
    /// stream's locates: merge it back with [`MarketData::absorb`]).
    pub fn new(book: &'a mut Book) -> Self {
        BookApplier(book)
    }
}

impl StreamDecoder<'_> {
    /// [`StreamDecoder::decode_records`] and [`BookApplier::apply_ops`] in
    /// one loop, for a pipeline whose decoding thread also keeps some books
    /// itself: the ops `near` selects are applied to `books` as they are
    /// decoded ([`LOOKAHEAD`] behind, with the prefetch hints
    /// [`MarketData::handle_records`] gives), the others written to `far`
    /// in order. Interleaving the two lets the applies run while the
    /// stream digest's serial chain waits. Stops where `decode_records`
    /// does, or when `far` is full; every near op decoded is applied before
    /// it returns. Returns what it got through and how many ops it wrote to
    /// `far`. No allocation.
    pub fn decode_and_apply_near(
        &mut self,
        bytes: &[u8],
        books: &mut BookApplier<'_>,
        near: impl Fn(&BookOp) -> bool,
        far: &mut [BookOp],
        mut prefetch: impl FnMut(*const u8),
    ) -> (RecordsHandled, usize) {
        const MASK: usize = LOOKAHEAD - 1;
        let book = &mut *books.0;
        let mut ring = [BookOp::default(); LOOKAHEAD];
        let (mut head, mut tail) = (0usize, 0usize);
        let mut at = 0usize;
        let mut n = 0usize;
        let error = loop {
            let Some(slot) = far.get_mut(n) else {
                break None;
            };
            let msg = match next_record(&bytes[at..]) {
                Ok(Some((msg, used))) => {
                    at += used;
                    msg
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            };
            let Some(op) = self.0.decode(msg) else {
                continue;
            };
            // Written to both, kept by the one it belongs to: no branch on
            // which, which no predictor could guess.
            let mine = near(&op);
            *slot = op;
            n += usize::from(!mine);
            ring[tail & MASK] = op;
            tail += usize::from(mine);
            if !mine {
                continue;
            }
            // Whatever the kind, not a branch on it that no predictor
            // could guess: an add writes its slot soon too, and an op
            // without a ref carries 0 (a hint for slot 0 at most).
            if let Some(p) = book.ref_entry_hint(op.order_ref) {
                prefetch(p);
            }
            if let Some(p) = book.locate_hint(op.locate) {
                prefetch(p);
            }
            if tail - head > SLOT_AHEAD {
                let o = &ring[(tail - 1 - SLOT_AHEAD) & MASK];
                for p in book.top_hints(o.locate).into_iter().flatten() {
                    prefetch(p);
                }
            }
            if tail - head == LOOKAHEAD {
                apply_to(book, &ring[head & MASK]);
                head += 1;
            }
        };
        while head < tail {
            apply_to(book, &ring[head & MASK]);
            head += 1;
        }
        (RecordsHandled { used: at, error }, n)
    }
}

impl BookApplier<'_> {
    /// The books.
    #[must_use]
    pub fn book(&self) -> &Book {
        self.0
    }

    /// [`Book::reserve_refs`] of the books: their index buffers for
    /// `refs` refs, allocated on the calling thread.
    pub fn reserve_refs(&mut self, refs: usize) {
        self.0.reserve_refs(refs);
    }

    /// Applies `ops` in order, with the prefetch hints
    /// [`MarketData::handle_records`] gives (the ref-index entry and
    /// locate record [`LOOKAHEAD`] ops ahead, the best levels
    /// `SLOT_AHEAD` ahead). No allocation.
    pub fn apply_ops(&mut self, ops: &[BookOp], mut prefetch: impl FnMut(*const u8)) {
        let book = &mut *self.0;
        let hint = |book: &Book, op: &BookOp, prefetch: &mut dyn FnMut(*const u8)| {
            // Whatever the kind, not a branch on it that no predictor
            // could guess: an add writes its slot soon too, and an op
            // without a ref carries 0 (a hint for slot 0 at most).
            if let Some(p) = book.ref_entry_hint(op.order_ref) {
                prefetch(p);
            }
            if let Some(p) = book.locate_hint(op.locate) {
                prefetch(p);
            }
        };
        for op in ops.iter().take(LOOKAHEAD) {
            hint(book, op, &mut prefetch);
        }
        for (i, op) in ops.iter().enumerate() {
            if let Some(ahead) = ops.get(i + LOOKAHEAD) {
                hint(book, ahead, &mut prefetch);
            }
            if let Some(mid) = ops.get(i + SLOT_AHEAD) {
                for p in book.top_hints(mid.locate).into_iter().flatten() {
                    prefetch(p);
                }
            }
            apply_to(book, op);
        }
    }
}

/// Applies a decoded message to `b`; returns how the top of its book
/// changed.
#[inline(always)]
fn apply_to(b: &mut Book, op: &BookOp) -> TopChange {
    match op.kind {
        OpKind::Add => b.add(op.locate, op.order_ref, op.side, op.shares, op.price),
        OpKind::Execute => b.execute(op.locate, op.order_ref, op.shares),
        OpKind::ExecuteWithPrice => {
            b.execute_with_price(op.locate, op.order_ref, op.shares, op.price)
        }
        OpKind::Cancel => b.cancel(op.locate, op.order_ref, op.shares),
        OpKind::Delete => b.delete(op.locate, op.order_ref),
        OpKind::Replace => b.replace(op.locate, op.order_ref, op.new_ref, op.shares, op.price),
        OpKind::Directory => b.stock_directory(op.locate, op.symbol()),
        OpKind::TradingAction => b.trading_action(op.locate, op.state()),
        OpKind::Other => TopChange::NONE,
    }
}

/// Messages [`MarketData::handle_records`] decodes ahead of the one it
/// applies (a power of two).
pub const LOOKAHEAD: usize = 16;
/// Messages after its decoding at which the best levels of a message's
/// locate are prefetched (its index entry and locate record were
/// prefetched when it was decoded).
const SLOT_AHEAD: usize = 8;

/// What [`MarketData::handle_records`] got through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordsHandled {
    /// Bytes of whole records handled, from the start.
    pub used: usize,
    /// The record at `used` is invalid (a zero length).
    pub error: Option<hftnet_wire::Error>,
}

/// What a decoded message does to the books (see [`BookOp`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OpKind {
    /// A known type the books do not apply (counted only).
    #[default]
    Other,
    /// Add Order, with or without MPID (`A`, `F`).
    Add,
    /// Order Executed (`E`).
    Execute,
    /// Order Executed With Price (`C`); `price` is the print price.
    ExecuteWithPrice,
    /// Order Cancel (`X`).
    Cancel,
    /// Order Delete (`D`).
    Delete,
    /// Order Replace (`U`): `order_ref` is the original, `new_ref` the new.
    Replace,
    /// Stock Directory (`R`): [`BookOp::symbol`] is the symbol.
    Directory,
    /// Stock Trading Action (`H`): [`BookOp::state`] is the state byte.
    TradingAction,
}

impl OpKind {
    /// Whether the message names a resting order by `order_ref`.
    #[inline]
    pub const fn has_ref(self) -> bool {
        matches!(
            self,
            OpKind::Execute
                | OpKind::ExecuteWithPrice
                | OpKind::Cancel
                | OpKind::Delete
                | OpKind::Replace
        )
    }
}

/// One well-formed ITCH message reduced to what the books need: a small
/// `Copy` value, so messages can be decoded ahead of their turn. Fields a
/// kind does not use are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(32))]
pub struct BookOp {
    /// What it does.
    pub kind: OpKind,
    /// Side (adds; `Buy` otherwise).
    pub side: Side,
    /// Stock locate.
    pub locate: u16,
    /// Shares added, executed, cancelled or of the replacement.
    pub shares: u32,
    /// Price (adds, replaces) or print price (`C`), 4 implied decimals.
    pub price: u32,
    /// The order ref (the original, for a replace).
    pub order_ref: u64,
    /// The new ref of a replace; for a stock directory its symbol (the 8
    /// bytes, big-endian: [`BookOp::symbol`]), for a trading action its
    /// state byte ([`BookOp::state`]). One field for the three keeps an op
    /// at 32 bytes, two to a cache line, for the ops a replay on two
    /// threads hands from one to the other.
    pub new_ref: u64,
}

impl BookOp {
    /// The symbol of a stock directory op.
    #[inline]
    #[must_use]
    pub const fn symbol(&self) -> [u8; 8] {
        self.new_ref.to_be_bytes()
    }

    /// The state byte of a trading action op.
    #[inline]
    #[must_use]
    pub const fn state(&self) -> u8 {
        self.new_ref as u8
    }
}

impl Default for BookOp {
    fn default() -> Self {
        Self {
            kind: OpKind::Other,
            side: Side::Buy,
            locate: 0,
            shares: 0,
            price: 0,
            order_ref: 0,
            new_ref: 0,
        }
    }
}

/// What [`decode_op`] made of a message.
enum Decoded {
    /// A well-formed message of a known type: its op, type and timestamp.
    Op(BookOp, MessageType, u64),
    /// An unknown type (or an empty message: see [`decode_op`]).
    Unknown,
    /// Too short for its type, or a bad side byte.
    Malformed,
}

/// Decodes one message: one branch on its type, whose arm reads the fields
/// from a fixed-size array of the type's length (no bounds checks, no
/// second dispatch on the type). An empty message is `Malformed`.
#[inline(always)]
fn decode_op(msg: &[u8]) -> Decoded {
    /// `msg` read through `$View` from its first `$View::LEN` bytes, or
    /// `Malformed` when it is shorter.
    macro_rules! view {
        ($View:ident) => {{
            match msg.first_chunk::<{ $View::<&[u8]>::LEN }>() {
                Some(a) => $View::new_unchecked(&a[..]),
                None => return Decoded::Malformed,
            }
        }};
    }
    let Some(&ty) = msg.first() else {
        return Decoded::Malformed;
    };
    let mut op = BookOp::default();
    let (t, ts) = match ty {
        b'A' => {
            let m = view!(AddOrder);
            op.kind = OpKind::Add;
            let Ok(side) = m.side() else {
                return Decoded::Malformed;
            };
            op.side = book_side(side);
            (op.locate, op.order_ref) = (m.stock_locate(), m.order_ref());
            (op.shares, op.price) = (m.shares(), m.price().raw());
            (MessageType::AddOrder, m.timestamp())
        }
        b'F' => {
            let m = view!(AddOrderMpid);
            op.kind = OpKind::Add;
            let Ok(side) = m.side() else {
                return Decoded::Malformed;
            };
            op.side = book_side(side);
            (op.locate, op.order_ref) = (m.stock_locate(), m.order_ref());
            (op.shares, op.price) = (m.shares(), m.price().raw());
            (MessageType::AddOrderMpid, m.timestamp())
        }
        b'E' => {
            let m = view!(OrderExecuted);
            op.kind = OpKind::Execute;
            (op.locate, op.order_ref) = (m.stock_locate(), m.order_ref());
            op.shares = m.executed_shares();
            (MessageType::OrderExecuted, m.timestamp())
        }
        b'C' => {
            let m = view!(OrderExecutedWithPrice);
            op.kind = OpKind::ExecuteWithPrice;
            (op.locate, op.order_ref) = (m.stock_locate(), m.order_ref());
            (op.shares, op.price) = (m.executed_shares(), m.execution_price().raw());
            (MessageType::OrderExecutedWithPrice, m.timestamp())
        }
        b'X' => {
            let m = view!(OrderCancel);
            op.kind = OpKind::Cancel;
            (op.locate, op.order_ref) = (m.stock_locate(), m.order_ref());
            op.shares = m.cancelled_shares();
            (MessageType::OrderCancel, m.timestamp())
        }
        b'D' => {
            let m = view!(OrderDelete);
            op.kind = OpKind::Delete;
            (op.locate, op.order_ref) = (m.stock_locate(), m.order_ref());
            (MessageType::OrderDelete, m.timestamp())
        }
        b'U' => {
            let m = view!(OrderReplace);
            op.kind = OpKind::Replace;
            (op.locate, op.order_ref) = (m.stock_locate(), m.original_order_ref());
            op.new_ref = m.new_order_ref();
            (op.shares, op.price) = (m.shares(), m.price().raw());
            (MessageType::OrderReplace, m.timestamp())
        }
        b'R' => {
            let m = view!(StockDirectory);
            op.kind = OpKind::Directory;
            op.locate = m.stock_locate();
            op.new_ref = u64::from_be_bytes(m.stock().0);
            (MessageType::StockDirectory, m.timestamp())
        }
        b'H' => {
            let m = view!(StockTradingAction);
            op.kind = OpKind::TradingAction;
            op.locate = m.stock_locate();
            op.new_ref = u64::from(m.trading_state());
            (MessageType::StockTradingAction, m.timestamp())
        }
        _ => {
            // Every other known type: checked for length, not applied.
            let Some(t) = MessageType::from_byte(ty) else {
                return Decoded::Unknown;
            };
            if msg.len() < t.message_len() {
                return Decoded::Malformed;
            }
            let Ok(h) = hftnet_wire::itch50::Header::new_checked(msg) else {
                return Decoded::Malformed;
            };
            op.locate = h.stock_locate();
            (t, h.timestamp())
        }
    };
    Decoded::Op(op, t, ts.nanos())
}

/// The book's side of an ITCH side, without a branch on which it is.
#[inline(always)]
fn book_side(s: hftnet_wire::itch50::Side) -> Side {
    std::hint::select_unpredictable(s == hftnet_wire::itch50::Side::Sell, Side::Sell, Side::Buy)
}

/// The other side.
const fn opposite(s: Side) -> Side {
    match s {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

#[cfg(test)]
mod tests {
    use hftnet_wire::itch50::Message;

    use super::*;
    use crate::exchange::{Generator, GeneratorConfig};

    fn small_book() -> BookConfig {
        BookConfig {
            max_orders: 1 << 12,
            ref_window: 1 << 16,
            ref_window_prealloc: 1 << 12,
            max_locates: 256,
            ..BookConfig::default()
        }
    }

    #[test]
    fn applies_a_generated_day_consistently() {
        let mut g = Generator::new(GeneratorConfig::new(3, 4)).unwrap();
        let mut md = MarketData::new(small_book()).unwrap();
        let mut buf = [0u8; 64];
        let mut n_msgs = 0;
        while let Some(m) = g.next_message() {
            let n = m.emit(&mut buf).unwrap();
            md.handle(&buf[..n]);
            n_msgs += 1;
            if g.in_flow() && g.generated() > 5_000 {
                g.finish();
            }
        }
        let c = md.counts();
        assert_eq!(c.total(), n_msgs);
        assert_eq!((c.unknown, c.malformed), (0, 0));
        let bc = md.book().counters();
        assert_eq!(
            bc.adds,
            c.of(MessageType::AddOrder) + c.of(MessageType::AddOrderMpid)
        );
        assert_eq!(
            (bc.unknown_ref, bc.oversized, bc.duplicate_ref),
            (0, 0, 0),
            "the generator only references live orders"
        );
        let report = md.book().check_invariants().unwrap();
        assert!(
            report.crossed.is_empty(),
            "the generated book never crosses"
        );
        assert!(report.locked.is_empty(), "nor locks");
        assert!(md.book().live_orders() > 0);
        assert_eq!(&md.book().symbol(1).unwrap(), b"AAPL    ");
    }

    #[test]
    fn the_strategy_hook_sees_every_top_change() {
        let mut g = Generator::new(GeneratorConfig::new(11, 3)).unwrap();
        let mut md = MarketData::new(small_book()).unwrap();
        let mut buf = [0u8; 64];
        let mut updates = Vec::new();
        let mut last_top = [TopOfBook::default(); 4];
        while let Some(m) = g.next_message() {
            let n = m.emit(&mut buf).unwrap();
            let before = updates.len();
            let change = md.handle_with(&buf[..n], &mut |u: &TopUpdate| updates.push(*u));
            let locate = m.header().unwrap().stock_locate;
            if let Some(u) = updates.get(before) {
                // One call per changing message, with the top as it now is.
                assert_eq!(updates.len(), before + 1);
                assert_eq!((u.locate, u.change), (locate, change));
                assert_eq!(u.top, md.book().top(locate));
                assert_eq!(u.timestamp_ns, m.header().unwrap().timestamp.nanos());
                last_top[usize::from(locate)] = u.top;
            } else {
                assert!(change.is_empty());
                // No call: the top of that book is as last reported.
                if usize::from(locate) < last_top.len() {
                    assert_eq!(md.book().top(locate), last_top[usize::from(locate)]);
                }
            }
            if g.in_flow() && g.generated() > 3_000 {
                g.finish();
            }
        }
        assert!(updates.len() > 500, "{}", updates.len());
        // Best bid/offer changes, plus one trading-state change per instrument.
        assert_eq!(updates.len() as u64, md.book().counters().top_changes + 3);
    }

    #[test]
    fn the_events_hook_sees_every_trade_and_every_top_change() {
        struct Seen {
            tops: Vec<TopUpdate>,
            trades: Vec<TradeUpdate>,
        }
        impl MarketEvents for Seen {
            fn top(&mut self, u: &TopUpdate) {
                self.tops.push(*u);
            }
            fn trade(&mut self, t: &TradeUpdate) {
                self.trades.push(*t);
            }
        }
        let mut g = Generator::new(GeneratorConfig::new(5, 4)).unwrap();
        let mut md = MarketData::new(small_book()).unwrap();
        let mut plain = MarketData::new(small_book()).unwrap();
        let mut buf = [0u8; 64];
        let mut seen = Seen {
            tops: Vec::new(),
            trades: Vec::new(),
        };
        let mut plain_tops = 0u64;
        while let Some(m) = g.next_message() {
            let n = m.emit(&mut buf).unwrap();
            let msg = &buf[..n];
            // The resting order, before the execution removes it.
            let resting = match &m {
                Message::OrderExecuted(e) => md.book().order(e.order_ref),
                Message::OrderExecutedWithPrice(e) => md.book().order(e.order_ref),
                _ => None,
            };
            let (tops, trades) = (seen.tops.len(), seen.trades.len());
            let change = md.handle_events(msg, &mut seen);
            assert_eq!(plain.handle_with(msg, &mut |_| plain_tops += 1), change);
            assert_eq!(seen.tops.len() - tops, usize::from(!change.is_empty()));
            let t = seen.trades.get(trades).copied();
            match m {
                Message::OrderExecuted(e) => {
                    let (t, o) = (t.unwrap(), resting.unwrap());
                    assert_eq!(t.source, TradeSource::Executed);
                    assert_eq!((t.price, t.shares), (o.price, e.executed_shares));
                    assert_eq!(t.aggressor, Some(opposite(o.side)));
                    assert_eq!(t.match_number, e.match_number);
                    assert_eq!(t.symbol, md.book().symbol(e.header.stock_locate));
                }
                Message::OrderExecutedWithPrice(e) => {
                    let (t, o) = (t.unwrap(), resting.unwrap());
                    assert_eq!(t.source, TradeSource::ExecutedWithPrice);
                    assert_eq!(t.price, e.execution_price.raw());
                    assert_eq!(t.aggressor, Some(opposite(o.side)));
                    assert_eq!(t.printable, e.printable == b'Y');
                }
                Message::Trade(p) => {
                    let t = t.unwrap();
                    assert_eq!(t.source, TradeSource::NonCross);
                    assert_eq!((t.price, t.shares), (p.price.raw(), p.shares));
                    assert_eq!((t.aggressor, t.symbol), (None, Some(p.stock.0)));
                    assert_eq!(t.timestamp_ns, p.header.timestamp.nanos());
                }
                _ => assert_eq!(t, None, "{m:?} printed no trade"),
            }
            assert_eq!(seen.trades.len() - trades, usize::from(t.is_some()));
            if g.in_flow() && g.generated() > 5_000 {
                g.finish();
            }
        }
        let c = md.counts();
        let executions = c.of(MessageType::OrderExecuted)
            + c.of(MessageType::OrderExecutedWithPrice)
            + c.of(MessageType::Trade);
        assert!(executions > 100, "{executions}");
        assert_eq!(seen.trades.len() as u64, executions);
        assert_eq!(seen.tops.len() as u64, plain_tops);
        assert_eq!(md.book().digest(), plain.book().digest());
        let last = seen.tops.last().unwrap();
        assert_eq!(last.top, md.book().top(last.locate));
        assert_eq!(last.symbol, md.book().symbol(last.locate));
        assert_eq!(last.state, Some(TradingState::Trading));
    }

    #[test]
    fn executions_of_unknown_orders_and_unkept_books_print_no_trade() {
        struct Count(u64);
        impl MarketEvents for Count {
            fn top(&mut self, _: &TopUpdate) {}
            fn trade(&mut self, _: &TradeUpdate) {
                self.0 += 1;
            }
        }
        let aapl = crate::book::pad_symbol("AAPL").unwrap();
        let mut md = MarketData::new(BookConfig {
            symbols: crate::book::Symbols::Selected(vec![aapl]),
            ..small_book()
        })
        .unwrap();
        let mut n = Count(0);
        let mut buf = [0u8; 64];
        let mut feed = |md: &mut MarketData, m: Message, n: &mut Count| {
            let len = m.emit(&mut buf).unwrap();
            md.handle_events(&buf[..len], n);
        };
        use hftnet_wire::itch50::{HeaderRepr, OrderExecutedRepr, Price4, Stock, TradeRepr};
        let h = |locate| HeaderRepr {
            stock_locate: locate,
            ..HeaderRepr::default()
        };
        // An execution of an order nobody added, a hidden trade of a book
        // not kept (no directory named locate 3 AAPL).
        feed(
            &mut md,
            Message::OrderExecuted(OrderExecutedRepr {
                header: h(3),
                order_ref: 77,
                executed_shares: 10,
                match_number: 1,
            }),
            &mut n,
        );
        let p = TradeRepr {
            header: h(3),
            order_ref: 0,
            side: hftnet_wire::itch50::Side::Buy,
            shares: 100,
            stock: Stock(aapl),
            price: Price4::from_raw(10_000),
            match_number: 2,
        };
        feed(&mut md, Message::Trade(p), &mut n);
        assert_eq!(n.0, 0);
        md.book.stock_directory(3, aapl);
        feed(&mut md, Message::Trade(p), &mut n);
        feed(
            &mut md,
            Message::Trade(TradeRepr { shares: 0, ..p }),
            &mut n,
        );
        assert_eq!(n.0, 1, "a kept book's hidden trade, not one of no shares");
        md.handle_events(b"P12", &mut n);
        assert_eq!(n.0, 1, "a truncated trade is malformed, not a trade");
    }

    /// A generated day in the ITCH file framing, with a malformed, an
    /// unknown and an empty message mixed in.
    fn day_records(seed: u64, messages: u64) -> Vec<u8> {
        let mut g = Generator::new(GeneratorConfig::new(seed, 6)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        while let Some(m) = g.next_message() {
            let n = m.emit(&mut buf).unwrap();
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out.extend_from_slice(&buf[..n]);
            if g.generated() == 100 {
                for odd in [&b"A12"[..], b"z1234", b"D"] {
                    out.extend_from_slice(&(odd.len() as u16).to_be_bytes());
                    out.extend_from_slice(odd);
                }
            }
            if g.in_flow() && g.generated() > messages {
                g.finish();
            }
        }
        out
    }

    #[test]
    fn handle_records_matches_handle_one_by_one_across_cuts() {
        let bytes = day_records(9, 20_000);
        let mut one = MarketData::new(small_book()).unwrap();
        let mut at = 0;
        while at < bytes.len() {
            let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
            one.handle(&bytes[at + 2..at + 2 + len]);
            at += 2 + len;
        }
        // Whole, and in pieces cut anywhere (inside a length prefix, inside
        // a message), as a stream reader hands them over.
        for piece in [bytes.len(), 4096, 1000, 37, 1] {
            let mut many = MarketData::new(small_book()).unwrap();
            let (mut start, mut end) = (0, 0);
            let mut seen = Vec::new();
            while start < bytes.len() {
                end = (end + piece).min(bytes.len());
                let done = many.handle_records(&bytes[start..end], |p| seen.push(p as usize));
                assert_eq!(done.error, None);
                start += done.used;
            }
            assert_eq!(many.counts(), one.counts(), "piece {piece}");
            assert_eq!(many.stream_digest(), one.stream_digest());
            assert_eq!(many.last_timestamp_ns(), one.last_timestamp_ns());
            assert_eq!(many.book().digest(), one.book().digest());
            assert_eq!(many.book().counters(), one.book().counters());
            assert_eq!(
                many.book().check_invariants(),
                one.book().check_invariants()
            );
            if piece == bytes.len() {
                assert!(seen.len() > 20_000, "hints were given: {}", seen.len());
            }
        }
        let c = one.counts();
        assert_eq!((c.malformed, c.unknown), (2, 1));
        assert!(one.book().live_orders() > 0);
    }

    #[test]
    fn the_halves_on_two_books_merge_to_what_one_builds() {
        let bytes = day_records(11, 20_000);
        let mut one = MarketData::new(small_book()).unwrap();
        assert_eq!(one.handle_records(&bytes, |_| {}).error, None);
        for (share, batch) in [(2u16, 1usize), (3, 97), (5, 4096)] {
            let mut md = MarketData::new(small_book()).unwrap();
            let mut near = Book::new(BookConfig {
                ref_window_prealloc: 0,
                ..small_book()
            })
            .unwrap();
            {
                let (mut dec, mut far) = md.halves();
                let mut near_app = BookApplier::new(&mut near);
                let mut ops = vec![BookOp::default(); batch];
                let (mut mine, mut theirs) = (Vec::new(), Vec::new());
                let mut at = 0;
                loop {
                    let (done, n) = dec.decode_records(&bytes[at..], &mut ops);
                    assert_eq!(done.error, None);
                    at += done.used;
                    mine.clear();
                    theirs.clear();
                    for op in &ops[..n] {
                        if op.locate % share == 0 {
                            mine.push(*op);
                        } else {
                            theirs.push(*op);
                        }
                    }
                    near_app.apply_ops(&mine, |_| {});
                    far.apply_ops(&theirs, |_| {});
                    if n < batch {
                        break;
                    }
                }
                assert_eq!(at, bytes.len());
                assert!(near_app.book().live_orders() > 0, "share {share}");
            }
            md.absorb(near).unwrap();
            assert_eq!(md.counts(), one.counts(), "share {share}");
            assert_eq!(md.stream_digest(), one.stream_digest());
            assert_eq!(md.last_timestamp_ns(), one.last_timestamp_ns());
            assert_eq!(md.book().digest(), one.book().digest());
            let pool =
                |c: crate::book::BookCounters| crate::book::BookCounters { pool_grows: 0, ..c };
            assert_eq!(pool(md.book().counters()), pool(one.book().counters()));
            assert_eq!(md.book().check_invariants(), one.book().check_invariants());
        }
    }

    #[test]
    fn decoding_with_the_near_books_applied_in_the_loop_merges_to_what_one_builds() {
        let bytes = day_records(12, 20_000);
        let mut one = MarketData::new(small_book()).unwrap();
        assert_eq!(one.handle_records(&bytes, |_| {}).error, None);
        // `far` sizes from one op (it fills at every call) to more than the day.
        for (share, far_len) in [(2u16, 1usize), (3, 97), (4, 50_000)] {
            let mut md = MarketData::new(small_book()).unwrap();
            let mut near = Book::new(small_book()).unwrap();
            let mut hints = 0usize;
            {
                let (mut dec, mut far_app) = md.halves();
                let mut near_app = BookApplier::new(&mut near);
                let mut far = vec![BookOp::default(); far_len];
                let mut at = 0;
                loop {
                    let (done, n) = dec.decode_and_apply_near(
                        &bytes[at..],
                        &mut near_app,
                        |op| op.locate % share == 0,
                        &mut far,
                        |_| hints += 1,
                    );
                    assert_eq!(done.error, None);
                    assert!(far[..n].iter().all(|op| op.locate % share != 0));
                    at += done.used;
                    far_app.apply_ops(&far[..n], |_| {});
                    if n < far_len {
                        break;
                    }
                }
                assert_eq!(at, bytes.len());
            }
            assert!(near.live_orders() > 0 && hints > 1000, "share {share}");
            md.absorb(near).unwrap();
            assert_eq!(md.counts(), one.counts(), "share {share}");
            assert_eq!(md.stream_digest(), one.stream_digest());
            assert_eq!(md.book().digest(), one.book().digest());
            assert_eq!(md.book().check_invariants(), one.book().check_invariants());
        }
    }

    /// `bytes` through the two halves as `hftnet replay` runs them on two
    /// threads (here one after the other): the ops of locates `% share ==
    /// 0` applied to a near book in the decoding loop, the others through
    /// `far` slices of `far_len`, merged at the end.
    fn split_replay(bytes: &[u8], share: u16, far_len: usize) -> (MarketData, RecordsHandled) {
        let mut md = MarketData::new(small_book()).unwrap();
        let mut near = Book::new(small_book()).unwrap();
        let mut at = 0;
        let last = {
            let (mut dec, mut far_app) = md.halves();
            let mut near_app = BookApplier::new(&mut near);
            let mut far = vec![BookOp::default(); far_len];
            loop {
                let (done, n) = dec.decode_and_apply_near(
                    &bytes[at..],
                    &mut near_app,
                    |op| op.locate % share == 0,
                    &mut far,
                    |_| {},
                );
                at += done.used;
                far_app.apply_ops(&far[..n], |_| {});
                if n < far_len || done.error.is_some() {
                    break done;
                }
            }
        };
        md.absorb(near).unwrap();
        (md, RecordsHandled { used: at, ..last })
    }

    /// One ITCH record (length prefix and message) of type `ty`, `len`
    /// bytes, with `locate` and the 8 bytes at 11 (ref or stock) set.
    fn record(ty: u8, len: usize, locate: u16, at11: [u8; 8], more: &[(usize, &[u8])]) -> Vec<u8> {
        let mut m = vec![0u8; len];
        m[0] = ty;
        m[1..3].copy_from_slice(&locate.to_be_bytes());
        m[11..19].copy_from_slice(&at11);
        for (off, b) in more {
            m[*off..*off + b.len()].copy_from_slice(b);
        }
        let mut r = (len as u16).to_be_bytes().to_vec();
        r.extend_from_slice(&m);
        r
    }

    fn add(locate: u16, order_ref: u64, side: u8, shares: u32, price: u32) -> Vec<u8> {
        record(
            b'A',
            36,
            locate,
            order_ref.to_be_bytes(),
            &[
                (19, &[side]),
                (20, &shares.to_be_bytes()),
                (24, b"ZZZZ    "),
                (32, &price.to_be_bytes()),
            ],
        )
    }

    #[test]
    fn split_books_merge_to_one_across_relocations_bad_locates_and_states() {
        let mut bytes = day_records(21, 8_000);
        // A locate re-pointed to another symbol while orders rest on it
        // (its orders and state dropped: `relocated`), trading actions, a
        // locate out of range, adds and deletes after all that, twice.
        for round in 0..2u64 {
            for l in 1..=6u16 {
                bytes.extend(record(b'H', 25, l, *b"SYM     ", &[(19, b"H")]));
                bytes.extend(add(
                    l,
                    7_000_000 + round * 100 + u64::from(l),
                    b'B',
                    100,
                    10_000,
                ));
            }
            bytes.extend(record(b'R', 39, 2 + round as u16, *b"QQQQ    ", &[]));
            bytes.extend(add(300, 7_500_000 + round, b'S', 5, 10_100));
            bytes.extend(record(
                b'D',
                19,
                4,
                (7_000_004 + round * 100).to_be_bytes(),
                &[],
            ));
            bytes.extend(record(b'H', 25, 5, *b"SYM     ", &[(19, b"T")]));
        }
        let mut one = MarketData::new(small_book()).unwrap();
        assert_eq!(one.handle_records(&bytes, |_| {}).error, None);
        let c = one.book().counters();
        assert!(
            c.relocated >= 2 && c.bad_locate >= 2 && c.trading_actions >= 14,
            "{c:?}"
        );
        for (share, far_len) in [(2u16, 64usize), (3, 1), (4, 4096)] {
            let (two, done) = split_replay(&bytes, share, far_len);
            assert_eq!((done.used, done.error), (bytes.len(), None));
            assert_eq!(two.counts(), one.counts(), "share {share}");
            assert_eq!(two.stream_digest(), one.stream_digest());
            assert_eq!(two.book().digest(), one.book().digest());
            let pool =
                |c: crate::book::BookCounters| crate::book::BookCounters { pool_grows: 0, ..c };
            assert_eq!(pool(two.book().counters()), pool(one.book().counters()));
            assert_eq!(two.book().check_invariants(), one.book().check_invariants());
            for l in 0..=7 {
                assert_eq!(
                    two.book().top(l),
                    one.book().top(l),
                    "share {share} locate {l}"
                );
                assert_eq!(two.book().symbol(l), one.book().symbol(l));
                assert_eq!(two.book().trading_state(l), one.book().trading_state(l));
            }
        }
    }

    #[test]
    fn split_books_count_a_message_naming_another_locates_order_as_unknown() {
        // Hostile: ref 9 added under locate 1, deleted under locate 2.
        let mut bytes = add(1, 9, b'B', 10, 10_000);
        bytes.extend(record(b'D', 19, 2, 9u64.to_be_bytes(), &[]));
        let mut one = MarketData::new(small_book()).unwrap();
        one.handle_records(&bytes, |_| {});
        assert_eq!(one.book().counters().locate_mismatch, 1);
        // Locates 1 and 2 in different shards: the delete finds no order.
        let (two, _) = split_replay(&bytes, 2, 16);
        let (c1, c2) = (one.book().counters(), two.book().counters());
        assert_eq!(
            (c2.locate_mismatch, c2.unknown_ref),
            (0, c1.unknown_ref + 1)
        );
        assert_eq!(
            two.book().digest(),
            one.book().digest(),
            "the order stays either way"
        );
        assert!(two.book().check_invariants().is_ok());
        // In one shard, as one book.
        let (same, _) = split_replay(&bytes, 3, 16);
        assert_eq!(same.book().counters().locate_mismatch, 1);
    }

    #[test]
    fn split_books_keep_the_far_copy_of_a_ref_live_under_two_locates() {
        // Hostile: ref 9 added under locate 1, then again under locate 2
        // with no delete between. One book keeps the newer (locate 2);
        // split across two books, the merge keeps the far book's (locate 1:
        // `md`'s, the applying thread's), counted `duplicate_ref`.
        let mut bytes = add(1, 9, b'B', 10, 10_000);
        bytes.extend(add(2, 9, b'S', 7, 10_100));
        let mut one = MarketData::new(small_book()).unwrap();
        one.handle_records(&bytes, |_| {});
        assert_eq!(one.book().order(9).map(|o| o.locate), Some(2));
        assert_eq!(one.book().counters().duplicate_ref, 1);
        let (two, _) = split_replay(&bytes, 2, 16);
        assert_eq!(two.book().order(9).map(|o| o.locate), Some(1));
        assert_eq!(two.book().counters().duplicate_ref, 1);
        assert_eq!(two.book().live_orders(), 1);
        assert_ne!(two.book().digest(), one.book().digest());
        assert!(two.book().check_invariants().is_ok());
    }

    #[test]
    fn decode_and_apply_near_stops_at_a_cut_or_bad_record_with_every_op_applied() {
        let mut rec = day_records(3, 200);
        let whole = rec.len();
        let mut one = MarketData::new(small_book()).unwrap();
        let cut = one.handle_records(&rec[..whole - 3], |_| {});
        let (two, done) = split_replay(&rec[..whole - 3], 2, 16);
        assert_eq!((done.used, done.error), (cut.used, None));
        assert_eq!(two.counts(), one.counts());
        assert_eq!(two.book().digest(), one.book().digest());
        // A zero length where the next record starts.
        rec[cut.used] = 0;
        rec[cut.used + 1] = 0;
        let (bad, done) = split_replay(&rec, 2, 7);
        assert_eq!(
            (done.used, done.error),
            (cut.used, Some(hftnet_wire::Error::Malformed))
        );
        assert_eq!(bad.book().digest(), one.book().digest());
    }

    #[test]
    fn an_op_is_half_a_cache_line() {
        assert_eq!((size_of::<BookOp>(), align_of::<BookOp>()), (32, 32));
        let mut md = MarketData::new(small_book()).unwrap();
        let mut dir = [0u8; 39];
        dir[0] = b'R';
        dir[1..3].copy_from_slice(&7u16.to_be_bytes());
        dir[11..19].copy_from_slice(b"ZVZZT   ");
        let op = md.decode(&dir).unwrap();
        assert_eq!(
            (op.kind, op.locate, op.symbol()),
            (OpKind::Directory, 7, *b"ZVZZT   ")
        );
        let mut h = [0u8; 25];
        h[0] = b'H';
        h[19] = b'T';
        let op = md.decode(&h).unwrap();
        assert_eq!((op.kind, op.state()), (OpKind::TradingAction, b'T'));
    }

    #[test]
    fn decode_records_stops_where_handle_records_does() {
        let mut rec = day_records(3, 200);
        let whole = rec.len();
        let mut md = MarketData::new(small_book()).unwrap();
        let mut ops = vec![BookOp::default(); 4096];
        let (dec_cut, n) = md.halves().0.decode_records(&rec[..whole - 3], &mut ops);
        assert!(n > 100);
        let mut md2 = MarketData::new(small_book()).unwrap();
        assert_eq!(dec_cut, md2.handle_records(&rec[..whole - 3], |_| {}));
        rec[dec_cut.used] = 0;
        rec[dec_cut.used + 1] = 0;
        let mut md = MarketData::new(small_book()).unwrap();
        let (bad, _) = md.halves().0.decode_records(&rec, &mut ops);
        assert_eq!(bad.used, dec_cut.used);
        assert_eq!(bad.error, Some(hftnet_wire::Error::Malformed));
        // A full op buffer stops it between two records.
        let mut md = MarketData::new(small_book()).unwrap();
        let (part, n) = md.halves().0.decode_records(&rec, &mut ops[..10]);
        assert_eq!((n, part.error), (10, None));
        assert!(part.used > 0 && part.used < dec_cut.used);
    }

    #[test]
    fn without_the_stream_digest_everything_else_is_the_same() {
        let bytes = day_records(4, 5_000);
        let mut on = MarketData::new(small_book()).unwrap();
        let mut off = MarketData::new(small_book()).unwrap();
        off.set_stream_digest(false);
        assert!(on.stream_digest_on() && !off.stream_digest_on());
        assert_eq!(
            on.handle_records(&bytes, |_| {}),
            off.handle_records(&bytes, |_| {})
        );
        assert_eq!(on.counts(), off.counts());
        assert_eq!(on.last_timestamp_ns(), off.last_timestamp_ns());
        assert_eq!(on.book().digest(), off.book().digest());
        assert_eq!(on.book().counters(), off.book().counters());
        assert_ne!(on.stream_digest(), StreamDigest::default().value());
        assert_eq!(off.stream_digest(), StreamDigest::default().value());
    }

    #[test]
    fn handle_records_stops_at_a_zero_length_and_at_a_cut_record() {
        let mut rec = day_records(3, 200);
        let whole = rec.len();
        let mut md = MarketData::new(small_book()).unwrap();
        // A cut tail: everything before it is handled, the tail is left.
        let done = md.handle_records(&rec[..whole - 3], |_| {});
        assert_eq!(done.error, None);
        assert!(done.used < whole - 3 && done.used > whole - 64);
        let handled = md.counts().total();
        // A zero length where the next record starts.
        let mut md = MarketData::new(small_book()).unwrap();
        rec[done.used] = 0;
        rec[done.used + 1] = 0;
        let bad = md.handle_records(&rec, |_| {});
        assert_eq!(bad.used, done.used);
        assert_eq!(bad.error, Some(hftnet_wire::Error::Malformed));
        assert_eq!(md.counts().total(), handled);
        assert!(md.handle_records(&[], |_| {}).used == 0);
    }

    #[test]
    fn unknown_and_malformed_are_counted() {
        let mut md = MarketData::new(small_book()).unwrap();
        md.handle(&[]);
        md.handle(b"z123");
        md.handle(b"A12");
        let mut add = [0u8; 36];
        let n = Message::parse(&{
            let mut b = [0u8; 36];
            b[0] = b'A';
            b[19] = b'B';
            b
        })
        .unwrap()
        .emit(&mut add)
        .unwrap();
        add[19] = b'Q'; // not a side
        md.handle(&add[..n]);
        let c = md.counts();
        assert_eq!((c.unknown, c.malformed, c.total()), (1, 3, 4));
        assert_eq!(md.book().live_orders(), 0);
    }

    #[test]
    fn stream_digest_sees_order_and_boundaries() {
        let digest = |msgs: &[&[u8]]| {
            let mut d = StreamDigest::default();
            msgs.iter().for_each(|m| d.add(m));
            d.value()
        };
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"c", b"ab"]));
        assert_eq!(digest(&[b"ab", b"c"]), digest(&[b"ab", b"c"]));
        assert_ne!(
            digest(&[b"ab\0"]),
            digest(&[b"ab"]),
            "padding is not content"
        );
        assert_ne!(digest(&[b"12345678x"]), digest(&[b"12345678y"]));
        // The tail word of every length is the zero-padded big-endian word.
        let msg: Vec<u8> = (1..=23u8).collect();
        for n in 0..msg.len() {
            let mut d = StreamDigest::default();
            d.add(&msg[..n]);
            let mut want = StreamDigest::default();
            want.mix(n as u64);
            for c in msg[..n].chunks(8) {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                want.mix(u64::from_be_bytes(w));
            }
            assert_eq!(d.value(), want.value(), "{n} bytes");
        }
        // Pinned: processes of different versions compare digests.
        assert_eq!(digest(&[b"hftnet"]), 0x974d_1d43_431b_f178);
    }
}
