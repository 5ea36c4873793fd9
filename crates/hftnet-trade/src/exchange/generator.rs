//! A synthetic ITCH 5.0 trading day, generated from a seed.
//!
//! The stream has the shape of a real Nasdaq day, scaled down: the start
//! events (`O`, `S`, `Q`), one Stock Directory and one Trading Action per
//! instrument, then order flow until [`Generator::finish`] — adds,
//! deletes, replaces, partial cancels, executions (some with a price), hidden
//! trades, crosses and imbalance messages in roughly the proportions Nasdaq
//! publishes (adds and deletes dominate; about one add in ten executes) —
//! and finally the end events (`M`, `E`, `C`).
//!
//! Prices follow a random walk of each instrument's mid; orders rest a few
//! ticks behind the touch (mostly at it); executions take the best resting
//! order, so the book the stream builds is never crossed. Activity is skewed
//! towards the first instruments, as on a real feed, and arrives in bursts:
//! the timestamps (nanoseconds since midnight) advance by exponential gaps,
//! with occasional runs of messages much closer together.
//!
//! The same seed gives the same stream on every machine: tests compare
//! books built in different processes by seed.

use core::fmt;

use hftnet_wire::itch50::{
    AddOrderMpidRepr, AddOrderRepr, CrossTradeRepr, EventCode, HeaderRepr, IssueSubType, ItchRepr,
    Message, Mpid, NoiiRepr, OrderCancelRepr, OrderDeleteRepr, OrderExecutedRepr,
    OrderExecutedWithPriceRepr, OrderReplaceRepr, Price4, ReasonCode, Side, Stock,
    StockDirectoryRepr, StockTradingActionRepr, SystemEventRepr, Timestamp, TradeRepr, codes,
};

use crate::rng::Rng;

/// Well-known symbols used first; more instruments get synthetic names.
const SYMBOLS: [&str; 24] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "COST", "NFLX", "AMD", "PEP",
    "ADBE", "CSCO", "INTC", "QCOM", "TXN", "AMGN", "HON", "SBUX", "INTU", "AMAT", "BKNG", "ISRG",
];

/// Last timestamp of the day, in nanoseconds since midnight.
const END_OF_DAY_NS: u64 = 86_400 * 1_000_000_000 - 1;

/// One cent in ITCH's Price(4) units.
const TICK: u32 = 100;

/// How the day is generated.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Fixes the whole stream.
    pub seed: u64,
    /// Instruments (stock locates 1 ..= symbols).
    pub symbols: u16,
    /// Timestamp of the first message, nanoseconds since midnight.
    /// Default 09:30:00.
    pub start_ns: u64,
    /// Mean gap between two messages outside bursts. Default 20 µs.
    pub mean_gap_ns: u64,
    /// Resting orders kept per instrument at most; past it the generator
    /// deletes before it adds. Default 200.
    pub max_orders_per_symbol: usize,
}

impl GeneratorConfig {
    /// Defaults for `symbols` instruments from `seed`.
    #[must_use]
    pub fn new(seed: u64, symbols: u16) -> Self {
        Self {
            seed,
            symbols,
            start_ns: 34_200 * 1_000_000_000,
            mean_gap_ns: 20_000,
            max_orders_per_symbol: 200,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// Names the first field out of range.
    pub fn validate(&self) -> Result<(), GeneratorError> {
        if self.symbols == 0 {
            return Err(GeneratorError("symbols must be at least 1"));
        }
        if self.start_ns >= END_OF_DAY_NS {
            return Err(GeneratorError(
                "start_ns must be a time of day (below 86400 s)",
            ));
        }
        if self.max_orders_per_symbol == 0 {
            return Err(GeneratorError("max_orders_per_symbol must be at least 1"));
        }
        Ok(())
    }
}

/// A [`GeneratorConfig`] field out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorError(pub &'static str);

impl fmt::Display for GeneratorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "generator: {}", self.0)
    }
}

impl std::error::Error for GeneratorError {}

/// A resting order. Its price and side share one word ([`Resting::key`]),
/// so the scans for the best price and the oldest order at it compare one
/// word per order.
#[derive(Debug, Clone, Copy)]
struct Resting {
    order_ref: u64,
    key: u64,
    shares: u32,
}

impl Resting {
    #[inline]
    fn new(order_ref: u64, side: Side, shares: u32, price: u32) -> Self {
        Self {
            order_ref,
            key: Self::key(side, price),
            shares,
        }
    }

    /// The word of a price and a side.
    #[inline]
    fn key(side: Side, price: u32) -> u64 {
        (u64::from(price) << 1) | side_index(side) as u64
    }

    #[inline]
    fn price(&self) -> u32 {
        (self.key >> 1) as u32
    }

    #[inline]
    fn side(&self) -> Side {
        if self.key & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }
}

/// The best price of one side of an instrument's resting orders, how many
/// orders rest at it, and where the oldest of them is: kept up to date as
/// orders come and go, forgotten (`known` false) when the last order at the
/// best price leaves (`oldest` alone when the oldest one leaves), and found
/// again by a scan only when it is next needed. A cache: the stream is the
/// same as if every question scanned the orders.
///
/// Order refs only grow (an add or a replace takes the next one), so an
/// order joining the best price is never the oldest there, and one setting
/// a new best price is.
#[derive(Debug, Clone, Copy)]
struct Best {
    known: bool,
    /// The best price (`None`: no order on this side), when `known`.
    price: Option<u32>,
    /// Orders at `price`.
    count: u32,
    /// The index in `orders` of the oldest order (lowest ref) at `price`,
    /// when `known` and found.
    oldest: Option<usize>,
}

impl Best {
    const UNKNOWN: Self = Self {
        known: false,
        price: None,
        count: 0,
        oldest: None,
    };
    const EMPTY: Self = Self {
        known: true,
        price: None,
        count: 0,
        oldest: None,
    };

    /// Whether `a` is a better price than `b` on `side`.
    #[inline]
    fn better(side: Side, a: u32, b: u32) -> bool {
        match side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    /// An order at `price` took index `at` (its ref the highest so far).
    #[inline]
    fn added(&mut self, side: Side, price: u32, at: usize) {
        if !self.known {
            return;
        }
        match self.price {
            Some(b) if b == price => self.count += 1,
            Some(b) if !Self::better(side, price, b) => {}
            _ => {
                self.price = Some(price);
                self.count = 1;
                self.oldest = Some(at);
            }
        }
    }

    /// The order at index `at`, at `price`, left.
    #[inline]
    fn removed(&mut self, price: u32, at: usize) {
        if self.known && self.price == Some(price) {
            self.count -= 1;
            if self.count == 0 {
                *self = Self::UNKNOWN;
            } else if self.oldest == Some(at) {
                self.oldest = None;
            }
        }
    }

    /// The order at index `from` moved to index `to`.
    #[inline]
    fn moved(&mut self, from: usize, to: usize) {
        if self.oldest == Some(from) {
            self.oldest = Some(to);
        }
    }
}

#[derive(Debug, Clone)]
struct Instrument {
    stock: Stock,
    /// Mid price in Price(4) units, always a whole number of ticks.
    mid: u32,
    orders: Vec<Resting>,
    /// The best bid and the best offer of `orders` (indexed by [`side_index`]).
    best: [Best; 2],
}

#[inline]
fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

impl Instrument {
    #[inline]
    fn push(&mut self, o: Resting) {
        self.best[side_index(o.side())].added(o.side(), o.price(), self.orders.len());
        self.orders.push(o);
    }

    #[inline]
    fn swap_remove(&mut self, k: usize) -> Resting {
        let o = self.orders.swap_remove(k);
        self.best[side_index(o.side())].removed(o.price(), k);
        // The last order took its place.
        if let Some(m) = self.orders.get(k) {
            let last = self.orders.len();
            self.best[side_index(m.side())].moved(last, k);
        }
        o
    }

    #[inline]
    fn replace(&mut self, k: usize, new: Resting) {
        let old = self.orders[k];
        self.best[side_index(old.side())].removed(old.price(), k);
        self.best[side_index(new.side())].added(new.side(), new.price(), k);
        self.orders[k] = new;
    }

    /// The best price on `side`, scanning the orders only when it is not
    /// known.
    #[inline]
    fn best_price(&mut self, side: Side) -> Option<u32> {
        let b = &mut self.best[side_index(side)];
        if !b.known {
            // One pass: the best price, its orders and the oldest of them.
            *b = Best::EMPTY;
            let mut oldest_ref = u64::MAX;
            let bit = side_index(side) as u64;
            for (j, o) in self.orders.iter().enumerate() {
                if o.key & 1 != bit {
                    continue;
                }
                let price = o.price();
                match b.price {
                    Some(p) if p == price => {
                        b.count += 1;
                        if o.order_ref < oldest_ref {
                            oldest_ref = o.order_ref;
                            b.oldest = Some(j);
                        }
                    }
                    Some(p) if !Best::better(side, price, p) => {}
                    _ => {
                        b.price = Some(price);
                        b.count = 1;
                        b.oldest = Some(j);
                        oldest_ref = o.order_ref;
                    }
                }
            }
        }
        b.price
    }

    /// The index of the oldest order (lowest ref) at the best price on
    /// `side`, and that price; `None` when the side is empty.
    #[inline]
    fn oldest_at_best(&mut self, side: Side) -> Option<(usize, u32)> {
        let price = self.best_price(side)?;
        let b = &mut self.best[side_index(side)];
        if let Some(k) = b.oldest {
            return Some((k, price));
        }
        let key = Resting::key(side, price);
        let mut k = usize::MAX;
        let mut oldest = u64::MAX;
        for (j, o) in self.orders.iter().enumerate() {
            if o.key == key && o.order_ref < oldest {
                k = j;
                oldest = o.order_ref;
            }
        }
        b.oldest = Some(k);
        Some((k, price))
    }
}

/// Where a message the generator made goes: into a [`Message`]
/// ([`Generator::next_message`]), or straight into bytes
/// ([`Generator::next_into`]). Each step of the day is written once,
/// for both.
trait Sink {
    type Out;
    fn put<R: ItchRepr>(self, r: R) -> Self::Out;
}

struct ToMessage;

impl Sink for ToMessage {
    type Out = Message;

    #[inline(always)]
    fn put<R: ItchRepr>(self, r: R) -> Message {
        r.into()
    }
}

/// Writes the message at the start of the buffer; gives its length.
struct ToBytes<'a>(&'a mut [u8; 64]);

impl Sink for ToBytes<'_> {
    type Out = usize;

    #[inline(always)]
    fn put<R: ItchRepr>(self, r: R) -> usize {
        const { assert!(R::LEN <= 64) };
        r.emit_bytes(self.0).unwrap_or(R::LEN)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start(u8),
    Directory(u16),
    Trading(u16),
    Flow,
    End(u8),
    Done,
}

/// Generates the day; see the module doc.
#[derive(Debug, Clone)]
pub struct Generator {
    cfg: GeneratorConfig,
    rng: Rng,
    phase: Phase,
    now_ns: u64,
    burst_left: u32,
    tracking: u16,
    next_ref: u64,
    next_match: u64,
    instruments: Vec<Instrument>,
    generated: u64,
    flow_generated: u64,
    finish_requested: bool,
}

impl Generator {
    /// A generator at the start of the day.
    ///
    /// # Errors
    /// When the configuration is invalid.
    pub fn new(cfg: GeneratorConfig) -> Result<Self, GeneratorError> {
        cfg.validate()?;
        let mut rng = Rng::new(cfg.seed);
        let instruments = (0..cfg.symbols)
            .map(|i| {
                let name = SYMBOLS
                    .get(usize::from(i))
                    .map_or_else(|| format!("SYM{i:05}"), |s| (*s).to_string());
                // $5 .. $500, in whole cents.
                let mid = (rng.range(500, 50_000) as u32) * TICK;
                Instrument {
                    stock: Stock::new(&name).unwrap_or(Stock(*b"UNNAMED ")),
                    mid,
                    orders: Vec::with_capacity(cfg.max_orders_per_symbol + 1),
                    best: [Best::EMPTY; 2],
                }
            })
            .collect();
        Ok(Self {
            now_ns: cfg.start_ns,
            rng,
            phase: Phase::Start(0),
            burst_left: 0,
            tracking: 0,
            next_ref: 1,
            next_match: 1,
            instruments,
            generated: 0,
            flow_generated: 0,
            finish_requested: false,
            cfg,
        })
    }

    /// Messages generated so far.
    #[must_use]
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// Order-flow messages generated so far (after the directory, before the
    /// end events).
    #[must_use]
    pub fn flow_generated(&self) -> u64 {
        self.flow_generated
    }

    /// True while order flow is being generated (after the directory,
    /// before [`Generator::finish`]).
    #[must_use]
    pub fn in_flow(&self) -> bool {
        self.phase == Phase::Flow
    }

    /// Ends the day: the next messages are the end events, then `None`.
    /// (Called during the start or directory, it first completes them.)
    pub fn finish(&mut self) {
        if self.phase == Phase::Flow {
            self.phase = Phase::End(0);
        } else {
            self.finish_requested = true;
        }
    }

    /// The symbol of a stock locate (1-based), if it exists.
    #[must_use]
    pub fn symbol(&self, locate: u16) -> Option<Stock> {
        let i = usize::from(locate.checked_sub(1)?);
        self.instruments.get(i).map(|s| s.stock)
    }

    #[inline(always)]
    fn header(&mut self, locate: u16) -> HeaderRepr {
        self.tracking = self.tracking.wrapping_add(1);
        let gap = if self.burst_left > 0 {
            self.burst_left -= 1;
            self.rng.exp(self.cfg.mean_gap_ns as f64 / 50.0)
        } else {
            if self.rng.chance(0.005) {
                self.burst_left = self.rng.range(20, 200) as u32;
            }
            self.rng.exp(self.cfg.mean_gap_ns as f64)
        };
        self.now_ns = (self.now_ns + gap as u64).min(END_OF_DAY_NS);
        HeaderRepr {
            stock_locate: locate,
            tracking_number: self.tracking,
            timestamp: Timestamp::new(self.now_ns).unwrap_or_default(),
        }
    }

    fn system_event<S: Sink>(&mut self, code: EventCode, out: S) -> S::Out {
        out.put(SystemEventRepr {
            header: self.header(0),
            event_code: code,
        })
    }

    /// The next message of the day, or `None` once the end-of-messages event
    /// was generated.
    pub fn next_message(&mut self) -> Option<Message> {
        self.next_with(ToMessage)
    }

    /// The next message of the day written at the start of `buf`, and its
    /// length; `None` once the end-of-messages event was generated. The
    /// bytes [`Generator::next_message`] then [`Message::emit`] give, with
    /// no [`Message`] in between (each message is written where it is made).
    #[inline]
    pub fn next_into(&mut self, buf: &mut [u8; 64]) -> Option<usize> {
        self.next_with(ToBytes(buf))
    }

    #[inline(always)]
    fn next_with<S: Sink>(&mut self, out: S) -> Option<S::Out> {
        let m = match self.phase {
            Phase::Start(i) => {
                let code = [
                    EventCode::StartOfMessages,
                    EventCode::StartOfSystemHours,
                    EventCode::StartOfMarketHours,
                ][usize::from(i)];
                self.phase = if i == 2 {
                    Phase::Directory(1)
                } else {
                    Phase::Start(i + 1)
                };
                self.system_event(code, out)
            }
            Phase::Directory(locate) => {
                self.phase = if locate == self.cfg.symbols {
                    Phase::Trading(1)
                } else {
                    Phase::Directory(locate + 1)
                };
                self.directory(locate, out)
            }
            Phase::Trading(locate) => {
                self.phase = if locate < self.cfg.symbols {
                    Phase::Trading(locate + 1)
                } else if self.finish_requested {
                    Phase::End(0)
                } else {
                    Phase::Flow
                };
                let header = self.header(locate);
                let stock = self.instruments[usize::from(locate - 1)].stock;
                out.put(StockTradingActionRepr {
                    header,
                    stock,
                    trading_state: codes::trading_state::TRADING,
                    reserved: b' ',
                    reason: ReasonCode::BLANK,
                })
            }
            Phase::Flow => {
                self.flow_generated += 1;
                self.flow(out)
            }
            Phase::End(i) => {
                let code = [
                    EventCode::EndOfMarketHours,
                    EventCode::EndOfSystemHours,
                    EventCode::EndOfMessages,
                ][usize::from(i)];
                self.phase = if i == 2 {
                    Phase::Done
                } else {
                    Phase::End(i + 1)
                };
                self.system_event(code, out)
            }
            Phase::Done => return None,
        };
        self.generated += 1;
        Some(m)
    }

    fn directory<S: Sink>(&mut self, locate: u16, out: S) -> S::Out {
        let header = self.header(locate);
        let stock = self.instruments[usize::from(locate - 1)].stock;
        out.put(StockDirectoryRepr {
            header,
            stock,
            market_category: codes::market_category::NASDAQ_GLOBAL_SELECT,
            financial_status: codes::financial_status::NORMAL,
            round_lot_size: 100,
            round_lots_only: codes::flag::NO,
            issue_classification: b'C',
            issue_sub_type: IssueSubType::BLANK,
            authenticity: codes::authenticity::PRODUCTION,
            short_sale_threshold: codes::flag::NO,
            ipo_flag: codes::flag::NO,
            luld_tier: codes::luld_tier::TIER_1,
            etp_flag: codes::flag::NO,
            etp_leverage_factor: 0,
            inverse_indicator: codes::flag::NO,
        })
    }

    /// An instrument index, skewed towards the first ones.
    #[inline(always)]
    fn pick_instrument(&mut self) -> usize {
        let u = self.rng.next_f64();
        ((u * u * f64::from(self.cfg.symbols)) as usize).min(usize::from(self.cfg.symbols) - 1)
    }

    #[inline(always)]
    fn lot(&mut self) -> u32 {
        if self.rng.chance(0.15) {
            self.rng.range(1, 99) as u32 // odd lot
        } else {
            self.rng.range(1, 10) as u32 * 100
        }
    }

    #[inline(always)]
    fn flow<S: Sink>(&mut self, out: S) -> S::Out {
        let i = self.pick_instrument();
        let locate = i as u16 + 1;
        if self.rng.chance(0.05) {
            // The mid moves one tick, but never through resting orders.
            let s = &mut self.instruments[i];
            let up = self.rng.chance(0.5);
            if up {
                if s.best_price(Side::Sell).is_none_or(|a| s.mid + TICK < a) {
                    s.mid += TICK;
                }
            } else if s.mid > 2 * TICK && s.best_price(Side::Buy).is_none_or(|b| s.mid - TICK > b) {
                s.mid -= TICK;
            }
        }
        let n = self.instruments[i].orders.len();
        let full = n >= self.cfg.max_orders_per_symbol;
        let r = self.rng.next_f64();
        // Proportions after Nasdaq's daily message statistics, scaled.
        if n == 0 || (!full && r < 0.44) {
            return self.add(i, locate, out);
        }
        if r < 0.80 {
            return self.delete(i, locate, out);
        }
        if r < 0.89 {
            return self.replace(i, locate, out);
        }
        if r < 0.915 {
            return self.cancel(i, locate, out);
        }
        if r < 0.965 {
            return self.execute(i, locate, out);
        }
        if r < 0.98 {
            return self.hidden_trade(i, locate, out);
        }
        if r < 0.995 {
            return self.imbalance(i, locate, out);
        }
        self.cross(i, locate, out)
    }

    #[inline(always)]
    fn random_side(&mut self) -> Side {
        if self.rng.chance(0.5) {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    /// A price on `side`, at the touch or a few ticks behind it, never
    /// crossing the mid.
    #[inline(always)]
    fn passive_price(&mut self, i: usize, side: Side) -> u32 {
        let behind = if self.rng.chance(0.4) {
            0
        } else {
            self.rng.range(1, 8) as u32
        };
        let mid = self.instruments[i].mid;
        match side {
            Side::Buy => mid.saturating_sub((1 + behind) * TICK).max(TICK),
            Side::Sell => mid + (1 + behind) * TICK,
        }
    }

    #[inline(always)]
    fn add<S: Sink>(&mut self, i: usize, locate: u16, out: S) -> S::Out {
        let side = self.random_side();
        let price = self.passive_price(i, side);
        let shares = self.lot();
        let order_ref = self.next_ref;
        self.next_ref += 1;
        self.instruments[i].push(Resting::new(order_ref, side, shares, price));
        let header = self.header(locate);
        let stock = self.instruments[i].stock;
        if self.rng.chance(0.05) {
            out.put(AddOrderMpidRepr {
                header,
                order_ref,
                side,
                shares,
                stock,
                price: Price4::from_raw(price),
                attribution: Mpid(*b"HFTN"),
            })
        } else {
            out.put(AddOrderRepr {
                header,
                order_ref,
                side,
                shares,
                stock,
                price: Price4::from_raw(price),
            })
        }
    }

    #[inline(always)]
    fn random_order(&mut self, i: usize) -> usize {
        self.rng.below(self.instruments[i].orders.len() as u64) as usize
    }

    #[inline(always)]
    fn delete<S: Sink>(&mut self, i: usize, locate: u16, out: S) -> S::Out {
        let k = self.random_order(i);
        let o = self.instruments[i].swap_remove(k);
        out.put(OrderDeleteRepr {
            header: self.header(locate),
            order_ref: o.order_ref,
        })
    }

    #[inline(always)]
    fn replace<S: Sink>(&mut self, i: usize, locate: u16, out: S) -> S::Out {
        let k = self.random_order(i);
        let old = self.instruments[i].orders[k];
        let price = self.passive_price(i, old.side());
        let shares = self.lot();
        let new_ref = self.next_ref;
        self.next_ref += 1;
        self.instruments[i].replace(k, Resting::new(new_ref, old.side(), shares, price));
        out.put(OrderReplaceRepr {
            header: self.header(locate),
            original_order_ref: old.order_ref,
            new_order_ref: new_ref,
            shares,
            price: Price4::from_raw(price),
        })
    }

    #[inline(always)]
    fn cancel<S: Sink>(&mut self, i: usize, locate: u16, out: S) -> S::Out {
        let k = self.random_order(i);
        let o = self.instruments[i].orders[k];
        if o.shares < 2 {
            return self.delete(i, locate, out);
        }
        let cancelled = self.rng.range(1, u64::from(o.shares - 1)) as u32;
        self.instruments[i].orders[k].shares -= cancelled;
        out.put(OrderCancelRepr {
            header: self.header(locate),
            order_ref: o.order_ref,
            cancelled_shares: cancelled,
        })
    }

    /// Executes (part of) the best resting order of a random side, oldest
    /// first at that price.
    #[inline(always)]
    fn execute<S: Sink>(&mut self, i: usize, locate: u16, out: S) -> S::Out {
        let side = self.random_side();
        // The oldest order at the best price.
        let Some((k, _)) = self.instruments[i].oldest_at_best(side) else {
            return self.add(i, locate, out);
        };
        let o = self.instruments[i].orders[k];
        let executed = if self.rng.chance(0.6) {
            o.shares
        } else {
            self.rng.range(1, u64::from(o.shares)) as u32
        };
        if executed == o.shares {
            self.instruments[i].swap_remove(k);
        } else {
            self.instruments[i].orders[k].shares -= executed;
        }
        let match_number = self.next_match;
        self.next_match += 1;
        let header = self.header(locate);
        if self.rng.chance(0.05) {
            // A print at another price (e.g. a cross); the order's price stays.
            out.put(OrderExecutedWithPriceRepr {
                header,
                order_ref: o.order_ref,
                executed_shares: executed,
                match_number,
                printable: codes::flag::YES,
                execution_price: Price4::from_raw(self.instruments[i].mid),
            })
        } else {
            out.put(OrderExecutedRepr {
                header,
                order_ref: o.order_ref,
                executed_shares: executed,
                match_number,
            })
        }
    }

    fn hidden_trade<S: Sink>(&mut self, i: usize, locate: u16, out: S) -> S::Out {
        let side = self.random_side();
        let shares = self.lot();
        let match_number = self.next_match;
        self.next_match += 1;
        let header = self.header(locate);
        let s = &self.instruments[i];
        out.put(TradeRepr {
            header,
            order_ref: 0,
            side,
            shares,
            stock: s.stock,
            price: Price4::from_raw(s.mid),
            match_number,
        })
    }

    fn imbalance<S: Sink>(&mut self, i: usize, locate: u16, out: S) -> S::Out {
        let paired = self.rng.range(0, 100_000) * 100;
        let imbalance = self.rng.range(0, 20_000) * 100;
        let direction = [b'B', b'S', b'N', b'O'][self.rng.below(4) as usize];
        let header = self.header(locate);
        let s = &self.instruments[i];
        let p = Price4::from_raw(s.mid);
        out.put(NoiiRepr {
            header,
            paired_shares: paired,
            imbalance_shares: imbalance,
            imbalance_direction: direction,
            stock: s.stock,
            far_price: p,
            near_price: p,
            current_reference_price: p,
            cross_type: b'C',
            price_variation: b'L',
        })
    }

    fn cross<S: Sink>(&mut self, i: usize, locate: u16, out: S) -> S::Out {
        let shares = self.rng.range(1, 5_000) * 100;
        let match_number = self.next_match;
        self.next_match += 1;
        let header = self.header(locate);
        let s = &self.instruments[i];
        out.put(CrossTradeRepr {
            header,
            shares,
            stock: s.stock,
            cross_price: Price4::from_raw(s.mid),
            match_number,
            cross_type: b'H',
        })
    }
}

#[cfg(test)]
mod tests {
    use hftnet_wire::itch50::MessageType;

    use super::*;

    fn day(seed: u64, symbols: u16, flow: u64) -> Vec<Message> {
        let mut g = Generator::new(GeneratorConfig::new(seed, symbols)).unwrap();
        let mut v = Vec::new();
        while let Some(m) = g.next_message() {
            v.push(m);
            if g.in_flow() && g.generated() >= flow {
                g.finish();
            }
        }
        v
    }

    #[test]
    fn a_day_has_the_shape_of_a_day() {
        let msgs = day(1, 5, 20_000);
        let t = |m: &Message| m.msg_type();
        assert_eq!(msgs.iter().take(3).map(t).collect::<Vec<_>>(), b"SSS");
        assert_eq!(
            msgs.iter().skip(3).take(5).map(t).collect::<Vec<_>>(),
            b"RRRRR"
        );
        assert_eq!(
            msgs.iter().skip(8).take(5).map(t).collect::<Vec<_>>(),
            b"HHHHH"
        );
        assert_eq!(msgs.iter().rev().take(3).map(t).collect::<Vec<_>>(), b"SSS");
        let Message::SystemEvent(last) = msgs[msgs.len() - 1] else {
            panic!("last is not a system event")
        };
        assert_eq!(last.event_code, EventCode::EndOfMessages);

        let mut counts = [0u64; MessageType::COUNT];
        for m in &msgs {
            let ty = MessageType::from_byte(m.msg_type()).expect("known type");
            counts[ty.index()] += 1;
        }
        let c = |ty: MessageType| counts[ty.index()];
        let adds = c(MessageType::AddOrder) + c(MessageType::AddOrderMpid);
        assert!(adds > 6_000, "{adds}");
        assert!(c(MessageType::OrderDelete) > 4_000);
        for ty in [
            MessageType::OrderReplace,
            MessageType::OrderCancel,
            MessageType::OrderExecuted,
            MessageType::OrderExecutedWithPrice,
            MessageType::Trade,
            MessageType::Noii,
            MessageType::CrossTrade,
        ] {
            assert!(c(ty) > 0, "{} never generated", ty.name());
        }
        // Timestamps never go back.
        let ts: Vec<u64> = msgs
            .iter()
            .map(|m| m.header().unwrap().timestamp.nanos())
            .collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        // Every message emits and parses back to itself.
        let mut buf = [0u8; 64];
        for m in &msgs {
            let n = m.emit(&mut buf).unwrap();
            assert_eq!(&Message::parse(&buf[..n]).unwrap(), m);
        }
    }

    /// The digest of a day as the exchange publishes it: `flow` order-flow
    /// messages, then the end events.
    fn digest_of_day(seed: u64, symbols: u16, flow: u64) -> (u64, u64) {
        let mut g = Generator::new(GeneratorConfig::new(seed, symbols)).unwrap();
        let mut d = crate::market::StreamDigest::default();
        let mut buf = [0u8; 64];
        let mut n = 0;
        loop {
            if g.in_flow() && g.flow_generated() >= flow {
                g.finish();
            }
            let Some(m) = g.next_message() else { break };
            let len = m.emit(&mut buf).unwrap();
            d.add(&buf[..len]);
            n += 1;
        }
        (n, d.value())
    }

    #[test]
    fn the_stream_is_pinned() {
        // Taken from the generator before its best prices were cached
        // (`hftnet exchange --write F --messages 300000 --seed 7 --symbols S`):
        // a seed gives the same day in every version.
        assert_eq!(
            digest_of_day(7, 8, 300_000),
            (300_022, 0x5960_a917_a002_65ec)
        );
        assert_eq!(
            digest_of_day(7, 500, 300_000),
            (301_006, 0xfce6_a164_a393_c28a)
        );
    }

    #[test]
    fn the_cached_best_prices_are_the_scanned_ones() {
        let mut g = Generator::new(GeneratorConfig {
            max_orders_per_symbol: 20,
            ..GeneratorConfig::new(3, 4)
        })
        .unwrap();
        let (mut unknown, mut known_oldest, mut unknown_oldest) = (0, 0, 0);
        for _ in 0..50_000 {
            g.next_message().unwrap();
            for s in &mut g.instruments {
                for side in [Side::Buy, Side::Sell] {
                    let on_side = s.orders.iter().filter(|o| o.side() == side);
                    let scanned = match side {
                        Side::Buy => on_side.clone().map(|o| o.price()).max(),
                        Side::Sell => on_side.clone().map(|o| o.price()).min(),
                    };
                    let b = s.best[side_index(side)];
                    let at_best = || on_side.clone().filter(|o| Some(o.price()) == scanned);
                    // The lowest ref at the best price, by a scan.
                    let oldest = at_best().map(|o| o.order_ref).min();
                    if b.known {
                        assert_eq!(b.price, scanned);
                        assert_eq!(b.count as usize, at_best().count());
                        match b.oldest {
                            Some(k) => {
                                assert_eq!(Some(s.orders[k].order_ref), oldest);
                                known_oldest += 1;
                            }
                            None => unknown_oldest += 1,
                        }
                    } else {
                        unknown += 1;
                    }
                    assert_eq!(s.best_price(side), scanned);
                    let found = s.oldest_at_best(side).map(|(k, _)| s.orders[k].order_ref);
                    assert_eq!(found, oldest);
                }
            }
        }
        assert!(unknown > 0, "the cache was forgotten and found again");
        assert!(
            known_oldest > 0 && unknown_oldest > 0,
            "{known_oldest} {unknown_oldest}"
        );
    }

    #[test]
    fn next_into_writes_the_bytes_of_next_message() {
        for symbols in [3, 500] {
            let cfg = GeneratorConfig::new(11, symbols);
            let (mut a, mut b) = (
                Generator::new(cfg.clone()).unwrap(),
                Generator::new(cfg).unwrap(),
            );
            let (mut want, mut got) = ([0u8; 64], [0u8; 64]);
            let mut n = 0u64;
            loop {
                if a.in_flow() && a.flow_generated() >= 30_000 {
                    a.finish();
                    b.finish();
                }
                match (a.next_message(), b.next_into(&mut got)) {
                    (None, None) => break,
                    (Some(m), Some(len)) => {
                        let l = m.emit(&mut want).unwrap();
                        assert_eq!(&got[..len], &want[..l], "message {n}: {m:?}");
                    }
                    other => panic!("message {n}: {other:?}"),
                }
                n += 1;
            }
            assert_eq!(n, 30_000 + 2 * u64::from(symbols) + 6);
        }
    }

    #[test]
    fn same_seed_same_day() {
        assert_eq!(day(7, 3, 2_000), day(7, 3, 2_000));
        assert_ne!(day(7, 3, 2_000), day(8, 3, 2_000));
    }

    #[test]
    fn finish_before_the_flow_still_lists_the_instruments() {
        let mut g = Generator::new(GeneratorConfig::new(1, 2)).unwrap();
        g.finish();
        let types: Vec<u8> = std::iter::from_fn(|| g.next_message())
            .map(|m| m.msg_type())
            .collect();
        assert_eq!(types, b"SSSRRHHSSS");
    }

    #[test]
    fn bad_config() {
        assert!(Generator::new(GeneratorConfig::new(1, 0)).is_err());
        let e = GeneratorConfig {
            start_ns: u64::MAX,
            ..GeneratorConfig::new(1, 1)
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("start_ns"));
        assert_eq!(
            Generator::new(GeneratorConfig::new(1, 30))
                .unwrap()
                .symbol(30)
                .unwrap()
                .to_string(),
            "SYM00029"
        );
    }
}
