//! The price-time priority matching engine: one book per instrument (stock
//! locate), limit orders only, events out through a [`MatchEvents`]
//! listener. Sans-IO and allocation-free once warmed up.
//!
//! The shape is parity's `parity-match` (`OrderBook` + `OrderBookListener`):
//! an incoming order matches against the best opposite level while it
//! crosses, taking the orders of a level oldest first; each partial or full
//! execution of a resting order is one [`Fill`] (maker and taker ids, price
//! — always the maker's —, quantity, what the maker has left); what remains
//! of the incoming order rests at its price, behind the orders already
//! there, if the caller asks for it.
//!
//! Storage reuses the L3 book's pieces where the logic is the same: price
//! levels are a vector per side sorted by the book's side-adjusted key, best
//! price last, searched with `book::levels::find`; order ids find their slot
//! through the book's sliding-window ref index (ids are ITCH order
//! reference numbers, increasing through the day). What the book does not
//! have and matching needs is queue order: here every level keeps a FIFO as
//! a doubly linked list threaded through the order slab (head = oldest), so
//! taking the head, appending at the tail and removing any order are O(1).
//!
//! Priority rules (those of Nasdaq):
//! - a size reduction ([`MatchingEngine::reduce`]) keeps the order's place;
//! - a replace ([`MatchingEngine::replace`]) is a cancel and a new entry: the
//!   new order goes to the back of its level, and may execute on entry.
//!
//! Not modelled: hidden orders' lower priority at a price (the engine does
//! not know about display; the exchange core does), self-match prevention,
//! market, pegged and reserve orders.
//!
//! Memory: the slab (40 bytes an order) is reserved for
//! [`MatchConfig::max_orders`] up front; levels for
//! [`MatchConfig::levels_per_side`] per side of every instrument; the ref
//! index as in the book. Beyond those the vectors grow (counted in
//! [`MatchCounters::pool_grows`]).

use std::fmt;

use hftnet_wire::itch50::Side;

use crate::book::Side as KeySide;
use crate::book::index::{NONE, RefIndex};
use crate::book::levels::{self, Keyed};
use crate::book::{Level, MAX_LOCATES, MAX_ORDERS, MAX_REF_WINDOW, REF_CHUNK};

/// An order's id: the exchange's ITCH order reference number.
pub type OrderId = u64;

/// Capacities of a [`MatchingEngine`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchConfig {
    /// Order slots reserved up front (40 bytes each), `1..=MAX_ORDERS`;
    /// default 1 Mi.
    pub max_orders: usize,
    /// Instruments: locates `0..max_locates` have a book, `1..=65536`;
    /// default 65536.
    pub max_locates: usize,
    /// Price levels reserved per side of every instrument; default 16.
    pub levels_per_side: usize,
    /// Ids covered by the direct id index: a multiple of
    /// [`REF_CHUNK`] up to [`MAX_REF_WINDOW`]; default 4 Mi (16 MiB).
    pub ref_window: usize,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            max_orders: 1 << 20,
            max_locates: MAX_LOCATES,
            levels_per_side: 16,
            ref_window: 1 << 22,
        }
    }
}

impl MatchConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range, named with its accepted values.
    pub fn validate(&self) -> Result<(), MatchConfigError> {
        if self.max_orders == 0 || self.max_orders > MAX_ORDERS {
            return Err(MatchConfigError(
                "max_orders must be in 1..=4294967295 (order slots reserved up front)",
            ));
        }
        if self.max_locates == 0 || self.max_locates > MAX_LOCATES {
            return Err(MatchConfigError("max_locates must be in 1..=65536"));
        }
        if self.levels_per_side > 1 << 16 {
            return Err(MatchConfigError("levels_per_side must be in 0..=65536"));
        }
        if self.ref_window == 0
            || !self.ref_window.is_multiple_of(REF_CHUNK)
            || self.ref_window > MAX_REF_WINDOW
        {
            return Err(MatchConfigError(
                "ref_window must be a non-zero multiple of 4096 up to 2^32",
            ));
        }
        Ok(())
    }
}

/// A [`MatchConfig`] field out of range; the text names it and the
/// accepted values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatchConfigError(pub &'static str);

impl fmt::Display for MatchConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "matching engine config: {}", self.0)
    }
}

impl std::error::Error for MatchConfigError {}

/// Why [`MatchingEngine::enter`] refused an order (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnterError {
    /// The locate is not below [`MatchConfig::max_locates`].
    BadLocate,
    /// Zero quantity.
    ZeroQuantity,
    /// Zero price.
    ZeroPrice,
    /// The id is live already (ids are unique for the day).
    DuplicateId,
    /// The slab holds [`MAX_ORDERS`] orders.
    Full,
}

impl fmt::Display for EnterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EnterError::BadLocate => "locate has no book (raise max_locates)",
            EnterError::ZeroQuantity => "quantity is zero",
            EnterError::ZeroPrice => "price is zero",
            EnterError::DuplicateId => "order id is live already; ids are unique",
            EnterError::Full => "order slab is full",
        })
    }
}

impl std::error::Error for EnterError {}

/// One execution: `quantity` of resting order `maker` at its price, against
/// incoming order `taker`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fill {
    /// Instrument.
    pub locate: u16,
    /// The resting order.
    pub maker: OrderId,
    /// The caller's value stored with the resting order.
    pub maker_user: u64,
    /// The resting order's side (the taker is on the other).
    pub maker_side: Side,
    /// The incoming order's id.
    pub taker: OrderId,
    /// Execution price, the maker's (Price(4)).
    pub price: u32,
    /// Shares executed.
    pub quantity: u32,
    /// Shares the maker has left (0: it left the book).
    pub maker_left: u32,
}

/// A resting order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Resting {
    /// Id.
    pub id: OrderId,
    /// The caller's value given at entry.
    pub user: u64,
    /// Instrument.
    pub locate: u16,
    /// Side.
    pub side: Side,
    /// Limit price (Price(4)).
    pub price: u32,
    /// Shares left (never 0).
    pub quantity: u32,
}

/// What [`MatchingEngine::enter`] did with an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Entered {
    /// Shares executed on entry.
    pub executed: u32,
    /// Shares now resting (0 when none, or when the caller did not ask to rest).
    pub rested: u32,
    /// Shares neither executed nor rested (the caller asked not to rest).
    pub unfilled: u32,
}

/// The listener of a [`MatchingEngine`], called synchronously during the
/// call that caused the event. Only [`fill`](MatchEvents::fill) is
/// required: adds and cancels are also what the calls return.
pub trait MatchEvents {
    /// A resting order executed (partly or fully).
    fn fill(&mut self, fill: &Fill);
    /// An order now rests on the book.
    fn added(&mut self, order: &Resting) {
        let _ = order;
    }
    /// `canceled` shares of a resting order were removed (`left` remain;
    /// 0: it left the book).
    fn canceled(&mut self, order: &Resting, canceled: u32, left: u32) {
        let _ = (order, canceled, left);
    }
}

impl<F: FnMut(&Fill)> MatchEvents for F {
    fn fill(&mut self, fill: &Fill) {
        self(fill);
    }
}

/// A listener that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvents;

impl MatchEvents for NoEvents {
    fn fill(&mut self, _: &Fill) {}
}

/// Counters of a [`MatchingEngine`], plain integers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatchCounters {
    /// Orders entered (accepted by [`MatchingEngine::enter`]).
    pub entered: u64,
    /// Orders refused by [`MatchingEngine::enter`].
    pub refused: u64,
    /// Fills.
    pub fills: u64,
    /// Shares executed.
    pub volume: u64,
    /// Orders that came to rest.
    pub rested: u64,
    /// Cancels and reductions applied.
    pub cancels: u64,
    /// Times the slab outgrew its reservation.
    pub pool_grows: u64,
}

/// One order slot; free slots have `qty == 0` and chain through `next`.
#[derive(Clone, Copy, Debug)]
struct Slot {
    id: u64,
    user: u64,
    qty: u32,
    price: u32,
    prev: u32,
    next: u32,
    locate: u16,
    side: KeySide,
}

/// A price level with its FIFO of orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FifoLevel {
    key: u32,
    orders: u32,
    head: u32,
    tail: u32,
    shares: u64,
}

impl Keyed for FifoLevel {
    #[inline]
    fn key(&self) -> u32 {
        self.key
    }
}

#[derive(Debug, Default)]
struct Instrument {
    sides: [Vec<FifoLevel>; 2],
}

/// Converts the wire side to the book's key side.
#[inline]
pub(crate) const fn key_side(s: Side) -> KeySide {
    match s {
        Side::Buy => KeySide::Buy,
        Side::Sell => KeySide::Sell,
    }
}

#[inline]
const fn wire_side(s: KeySide) -> Side {
    match s {
        KeySide::Buy => Side::Buy,
        KeySide::Sell => Side::Sell,
    }
}

/// The other side.
#[inline]
#[must_use]
pub const fn opposite(s: Side) -> Side {
    match s {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

/// Whether a `side` order at `limit` crosses a resting opposite order at
/// `resting`.
#[inline]
#[must_use]
pub const fn crosses(side: Side, limit: u32, resting: u32) -> bool {
    match side {
        Side::Buy => resting <= limit,
        Side::Sell => resting >= limit,
    }
}

/// Price-time priority books of every instrument; see the module doc.
///
/// Inputs: [`enter`](Self::enter), [`reduce`](Self::reduce),
/// [`cancel`](Self::cancel), [`replace`](Self::replace); queries:
/// [`order`](Self::order), [`best`](Self::best), [`levels`](Self::levels),
/// [`queue`](Self::queue), [`orders`](Self::orders),
/// [`check_invariants`](Self::check_invariants). No method panics on any
/// input.
pub struct MatchingEngine {
    books: Vec<Instrument>,
    slots: Vec<Slot>,
    free_head: u32,
    live: usize,
    index: RefIndex,
    counters: MatchCounters,
}

impl fmt::Debug for MatchingEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchingEngine")
            .field("live", &self.live)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl MatchingEngine {
    /// Empty books.
    ///
    /// # Errors
    /// [`MatchConfigError`] when a field is out of range.
    pub fn new(cfg: &MatchConfig) -> Result<Self, MatchConfigError> {
        cfg.validate()?;
        let books = (0..cfg.max_locates)
            .map(|_| Instrument {
                sides: [
                    Vec::with_capacity(cfg.levels_per_side),
                    Vec::with_capacity(cfg.levels_per_side),
                ],
            })
            .collect();
        Ok(MatchingEngine {
            books,
            slots: Vec::with_capacity(cfg.max_orders),
            free_head: NONE,
            live: 0,
            index: RefIndex::new(cfg.ref_window, cfg.ref_window.min(1 << 20)),
            counters: MatchCounters::default(),
        })
    }

    /// Enters a limit order `id` (`user` is stored with it and handed back
    /// in fills): it executes against the opposite side while it crosses,
    /// best price first, oldest first at a price; the rest rests at `price`
    /// when `rest` is true (a DAY order), else it is reported `unfilled`
    /// (IOC). `rest == false` with a fresh id also serves as a sweep of the
    /// opposite side up to `price`.
    ///
    /// # Errors
    /// [`EnterError`]; nothing changed.
    #[allow(clippy::too_many_arguments)]
    pub fn enter(
        &mut self,
        locate: u16,
        id: OrderId,
        user: u64,
        side: Side,
        price: u32,
        quantity: u32,
        rest: bool,
        ev: &mut impl MatchEvents,
    ) -> Result<Entered, EnterError> {
        let err = if usize::from(locate) >= self.books.len() {
            Some(EnterError::BadLocate)
        } else if quantity == 0 {
            Some(EnterError::ZeroQuantity)
        } else if price == 0 {
            Some(EnterError::ZeroPrice)
        } else if rest && self.index.get(id).is_some() {
            Some(EnterError::DuplicateId)
        } else if rest && self.free_head == NONE && self.slots.len() >= MAX_ORDERS {
            Some(EnterError::Full)
        } else {
            None
        };
        if let Some(e) = err {
            self.counters.refused += 1;
            return Err(e);
        }
        self.counters.entered += 1;
        let left = self.take(locate, id, side, price, quantity, ev);
        let mut out = Entered {
            executed: quantity - left,
            ..Entered::default()
        };
        if left > 0 {
            if rest {
                self.insert(locate, id, user, side, price, left);
                out.rested = left;
                self.counters.rested += 1;
                ev.added(&Resting {
                    id,
                    user,
                    locate,
                    side,
                    price,
                    quantity: left,
                });
            } else {
                out.unfilled = left;
            }
        }
        Ok(out)
    }

    /// Removes `by` shares from resting order `id`, keeping its place in
    /// the queue; removes the order when none are left. Returns the shares
    /// left, `None` when `id` does not rest (nothing changed). `by` above
    /// what is left removes what is left.
    pub fn reduce(&mut self, id: OrderId, by: u32, ev: &mut impl MatchEvents) -> Option<u32> {
        let i = self.index.get(id)?;
        let s = self.slots[i as usize];
        let by = by.min(s.qty);
        if by == 0 {
            return Some(s.qty);
        }
        self.counters.cancels += 1;
        let left = s.qty - by;
        if left == 0 {
            self.unlink(i);
        } else {
            self.slots[i as usize].qty = left;
            let lv = &mut self.books[usize::from(s.locate)].sides[s.side.index()];
            if let Ok(j) = levels::find(lv, levels::key(s.side, s.price)) {
                lv[j].shares -= u64::from(by);
            }
        }
        ev.canceled(&self.resting(&s), by, left);
        Some(left)
    }

    /// Removes resting order `id`; returns it as it was, `None` when it
    /// does not rest.
    pub fn cancel(&mut self, id: OrderId, ev: &mut impl MatchEvents) -> Option<Resting> {
        let i = self.index.get(id)?;
        let r = self.resting(&self.slots[i as usize]);
        self.counters.cancels += 1;
        self.unlink(i);
        ev.canceled(&r, r.quantity, 0);
        Some(r)
    }

    /// Cancels resting order `id` and enters `new_id` on the same side and
    /// instrument at `price` for `quantity` (priority lost; it may execute).
    /// Returns the original and what became of the new order; `None` when
    /// `id` does not rest.
    ///
    /// # Errors
    /// As [`enter`](Self::enter); the original is then canceled all the same.
    #[allow(clippy::too_many_arguments)]
    pub fn replace(
        &mut self,
        id: OrderId,
        new_id: OrderId,
        user: u64,
        price: u32,
        quantity: u32,
        rest: bool,
        ev: &mut impl MatchEvents,
    ) -> Option<(Resting, Result<Entered, EnterError>)> {
        let old = self.cancel(id, ev)?;
        let r = self.enter(
            old.locate, new_id, user, old.side, price, quantity, rest, ev,
        );
        Some((old, r))
    }

    /// Resting order `id`.
    #[must_use]
    pub fn order(&self, id: OrderId) -> Option<Resting> {
        let i = self.index.get(id)?;
        Some(self.resting(&self.slots[i as usize]))
    }

    /// Best level of one side.
    #[must_use]
    pub fn best(&self, locate: u16, side: Side) -> Option<Level> {
        self.levels(locate, side).next()
    }

    /// Levels of one side, best first.
    pub fn levels(&self, locate: u16, side: Side) -> impl Iterator<Item = Level> + '_ {
        let ks = key_side(side);
        let v: &[FifoLevel] = self
            .books
            .get(usize::from(locate))
            .map_or(&[], |b| &b.sides[ks.index()]);
        v.iter().rev().map(move |l| Level {
            price: levels::price(ks, l.key),
            shares: l.shares,
            orders: l.orders,
        })
    }

    /// The orders resting at one price, oldest (first to execute) first.
    pub fn queue(&self, locate: u16, side: Side, price: u32) -> impl Iterator<Item = Resting> + '_ {
        let ks = key_side(side);
        let head = self
            .books
            .get(usize::from(locate))
            .and_then(|b| {
                let v = &b.sides[ks.index()];
                levels::find(v, levels::key(ks, price))
                    .ok()
                    .map(|j| v[j].head)
            })
            .unwrap_or(NONE);
        let mut i = head;
        std::iter::from_fn(move || {
            if i == NONE {
                return None;
            }
            let s = &self.slots[i as usize];
            i = s.next;
            Some(self.resting(s))
        })
    }

    /// Every resting order of an instrument: bids then asks, best price
    /// first, oldest first within a price.
    pub fn orders(&self, locate: u16) -> impl Iterator<Item = Resting> + '_ {
        [Side::Buy, Side::Sell].into_iter().flat_map(move |side| {
            self.levels(locate, side)
                .flat_map(move |l| self.queue(locate, side, l.price))
        })
    }

    /// Resting orders, all instruments.
    #[must_use]
    pub fn live_orders(&self) -> usize {
        self.live
    }

    /// Counters.
    #[must_use]
    pub fn counters(&self) -> &MatchCounters {
        &self.counters
    }

    /// Checks every structure (O(orders)): levels sorted and non-empty,
    /// FIFO links and level aggregates consistent, the index, no crossed
    /// book. The first inconsistency, as text.
    ///
    /// # Errors
    /// The first inconsistency found.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = 0usize;
        for (l, b) in self.books.iter().enumerate() {
            for ks in [KeySide::Buy, KeySide::Sell] {
                let v = &b.sides[ks.index()];
                if v.windows(2).any(|w| w[0].key >= w[1].key) {
                    return Err(format!("locate {l} {ks:?}: levels unsorted"));
                }
                for lv in v {
                    let (mut n, mut sh, mut i, mut prev) = (0u32, 0u64, lv.head, NONE);
                    while i != NONE {
                        let s = &self.slots[i as usize];
                        if s.prev != prev || s.qty == 0 || s.side != ks {
                            return Err(format!("locate {l}: bad fifo at slot {i}"));
                        }
                        if levels::key(ks, s.price) != lv.key || usize::from(s.locate) != l {
                            return Err(format!("locate {l}: order {} in the wrong level", s.id));
                        }
                        if self.index.get(s.id) != Some(i) {
                            return Err(format!("order {}: index disagrees", s.id));
                        }
                        n += 1;
                        sh += u64::from(s.qty);
                        prev = i;
                        i = s.next;
                    }
                    if prev != lv.tail || n != lv.orders || sh != lv.shares || n == 0 {
                        return Err(format!(
                            "locate {l} {ks:?} price {}: level says {} orders {} shares, \
                             queue has {n} and {sh}",
                            levels::price(ks, lv.key),
                            lv.orders,
                            lv.shares
                        ));
                    }
                    seen += n as usize;
                }
            }
            if let (Some(bid), Some(ask)) = (b.sides[0].last(), b.sides[1].last()) {
                let (bid, ask) = (
                    levels::price(KeySide::Buy, bid.key),
                    levels::price(KeySide::Sell, ask.key),
                );
                if bid >= ask {
                    return Err(format!(
                        "locate {l}: crossed or locked, bid {bid} ask {ask}"
                    ));
                }
            }
        }
        if seen != self.live || self.index.len() != self.live {
            return Err(format!(
                "{} live, {seen} in queues, {} indexed",
                self.live,
                self.index.len()
            ));
        }
        self.index.check()
    }

    // ------------------------------------------------------------ internals

    #[inline]
    fn resting(&self, s: &Slot) -> Resting {
        Resting {
            id: s.id,
            user: s.user,
            locate: s.locate,
            side: wire_side(s.side),
            price: s.price,
            quantity: s.qty,
        }
    }

    /// Executes `qty` of `side` at `limit` against the opposite side;
    /// returns what is left.
    #[inline]
    fn take(
        &mut self,
        locate: u16,
        taker: OrderId,
        side: Side,
        limit: u32,
        mut qty: u32,
        ev: &mut impl MatchEvents,
    ) -> u32 {
        let opp = key_side(opposite(side));
        let l = usize::from(locate);
        while qty > 0 {
            let Some(lv) = self.books[l].sides[opp.index()].last_mut() else {
                break;
            };
            let price = levels::price(opp, lv.key);
            if !crosses(side, limit, price) {
                break;
            }
            let i = lv.head;
            let s = &mut self.slots[i as usize];
            let q = qty.min(s.qty);
            s.qty -= q;
            lv.shares -= u64::from(q);
            qty -= q;
            let fill = Fill {
                locate,
                maker: s.id,
                maker_user: s.user,
                maker_side: wire_side(opp),
                taker,
                price,
                quantity: q,
                maker_left: s.qty,
            };
            if s.qty == 0 {
                let next = s.next;
                let id = s.id;
                lv.head = next;
                lv.orders -= 1;
                if next == NONE {
                    self.books[l].sides[opp.index()].pop();
                } else {
                    self.slots[next as usize].prev = NONE;
                }
                self.index.remove(id);
                self.free(i);
            }
            self.counters.fills += 1;
            self.counters.volume += u64::from(q);
            ev.fill(&fill);
        }
        qty
    }

    /// Appends a new order at the tail of its level.
    fn insert(&mut self, locate: u16, id: u64, user: u64, side: Side, price: u32, qty: u32) {
        let ks = key_side(side);
        let slot = Slot {
            id,
            user,
            qty,
            price,
            prev: NONE,
            next: NONE,
            locate,
            side: ks,
        };
        let i = if self.free_head == NONE {
            if self.slots.len() == self.slots.capacity() {
                self.counters.pool_grows += 1;
            }
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        } else {
            let i = self.free_head;
            self.free_head = self.slots[i as usize].next;
            self.slots[i as usize] = slot;
            i
        };
        self.index.insert(id, i);
        self.live += 1;
        let key = levels::key(ks, price);
        let v = &mut self.books[usize::from(locate)].sides[ks.index()];
        match levels::find(v, key) {
            Ok(j) => {
                let lv = &mut v[j];
                let tail = lv.tail;
                lv.tail = i;
                lv.orders += 1;
                lv.shares += u64::from(qty);
                self.slots[tail as usize].next = i;
                self.slots[i as usize].prev = tail;
            }
            Err(j) => v.insert(
                j,
                FifoLevel {
                    key,
                    orders: 1,
                    head: i,
                    tail: i,
                    shares: u64::from(qty),
                },
            ),
        }
    }

    /// Removes the live order in slot `i` from its level and the index and
    /// frees the slot.
    fn unlink(&mut self, i: u32) {
        let s = self.slots[i as usize];
        let v = &mut self.books[usize::from(s.locate)].sides[s.side.index()];
        if let Ok(j) = levels::find(v, levels::key(s.side, s.price)) {
            let lv = &mut v[j];
            lv.orders -= 1;
            lv.shares -= u64::from(s.qty);
            if s.prev == NONE {
                lv.head = s.next;
            }
            if s.next == NONE {
                lv.tail = s.prev;
            }
            if lv.orders == 0 {
                v.remove(j);
            }
        }
        if s.prev != NONE {
            self.slots[s.prev as usize].next = s.next;
        }
        if s.next != NONE {
            self.slots[s.next as usize].prev = s.prev;
        }
        self.index.remove(s.id);
        self.free(i);
    }

    #[inline]
    fn free(&mut self, i: u32) {
        let s = &mut self.slots[i as usize];
        s.qty = 0;
        s.next = self.free_head;
        s.prev = NONE;
        self.free_head = i;
        self.live -= 1;
    }
}
