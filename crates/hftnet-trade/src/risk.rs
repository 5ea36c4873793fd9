//! Pre-trade risk: every order the trader would send is checked here
//! before a byte of it is encoded.
//!
//! Layer: trading engine, between the strategy's intents and the order
//! messages ([`crate::trader`] calls it). Sans-IO: the caller passes `now`
//! (nanoseconds, its clock) and the state the checks need ([`RiskView`]);
//! nothing here allocates, reads a clock, logs or panics.
//!
//! # Checks, in the order they run
//!
//! Each refusal has a [`RiskReject`] reason and bumps its counter in
//! [`RiskCounters`]; the first failing check is the one counted.
//!
//! | reason | refuses when |
//! |--------|--------------|
//! | [`RiskReject::KillSwitch`] | the kill switch was tripped ([`Risk::trip`]) |
//! | [`RiskReject::Quantity`] | quantity is 0 or above [`RiskConfig::max_order_qty`] |
//! | [`RiskReject::Notional`] | price × quantity above [`RiskConfig::max_notional_dollars`] |
//! | [`RiskReject::NoReferencePrice`] | the book has neither a bid nor an offer |
//! | [`RiskReject::PriceBand`] | the price is outside the band around the BBO ([`PriceBand`]) |
//! | [`RiskReject::SymbolPosition`] | the symbol's potential position would exceed [`RiskConfig::max_position`] |
//! | [`RiskReject::TotalPosition`] | the sum of the symbols' potential positions would exceed [`RiskConfig::max_total_position`] |
//! | [`RiskReject::OpenOrders`] | [`RiskConfig::max_open_orders`] are open already |
//! | [`RiskReject::Duplicate`] | the same symbol, side, price and quantity passed within [`RiskConfig::duplicate_window_ns`] |
//! | [`RiskReject::RateLimit`] | the token bucket ([`RiskConfig::orders_per_sec`], [`RiskConfig::burst`]) is empty |
//!
//! The rate limit runs last so a refused order costs no token; the
//! duplicate guard records only orders that passed everything.
//! [`crate::trader::Trader`] refuses for its own reasons too
//! ([`RiskReject::UnknownSymbol`], [`RiskReject::UnknownOrder`],
//! [`RiskReject::OrderBusy`], [`RiskReject::NoUserRefNum`],
//! [`RiskReject::Backpressure`]), counted in the same table through
//! [`Risk::refuse`].
//!
//! # Potential position (open orders count as filled)
//!
//! Like exchange-side pre-trade risk engines (Nasdaq's, and most brokers'
//! "potential exposure"), open orders are counted as if they all filled.
//! A symbol's exposure is the worst position any combination of fills can
//! reach: `max(|position + open buys|, |position − open sells|)`; the total
//! is the sum over symbols. An order is refused only if it would *raise* an
//! exposure above its limit, so an order that reduces a position is
//! accepted even when the position is over the limit (after a manual
//! change of limits, say). A replace counts its new quantity instead of the
//! leaves of the order it replaces.
//!
//! Cancels pass no check: taking risk off is always allowed, kill switch
//! or not.

use hftnet_wire::itch50::{Price4, Side};
use serde::{Deserialize, Serialize};

use crate::book::TopOfBook;

/// Why an order was refused before it left. See the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RiskReject {
    /// The kill switch is tripped.
    KillSwitch,
    /// Quantity 0 or above the maximum.
    Quantity,
    /// Notional above the maximum.
    Notional,
    /// No bid and no offer to check the price against.
    NoReferencePrice,
    /// Price outside the band around the BBO.
    PriceBand,
    /// Potential position of the symbol above its limit.
    SymbolPosition,
    /// Potential position summed over symbols above its limit.
    TotalPosition,
    /// Too many open orders.
    OpenOrders,
    /// Same order passed within the duplicate window.
    Duplicate,
    /// Order rate above the token bucket's.
    RateLimit,
    /// The symbol is not one the trader trades.
    UnknownSymbol,
    /// A replace or cancel of an order that is not open.
    UnknownOrder,
    /// A replace of an order with a replace or cancel in flight.
    OrderBusy,
    /// No UserRefNum available: the persisted block is used up and the
    /// caller has not confirmed the next one.
    NoUserRefNum,
    /// The caller's outbox is full.
    Backpressure,
    /// The order session is down (not logged in): the order is refused
    /// rather than queued, so nothing decided on stale data leaves after a
    /// reconnect.
    Disconnected,
}

impl RiskReject {
    /// Number of reasons.
    pub const COUNT: usize = 16;
    /// Every reason, in table order.
    pub const ALL: [RiskReject; Self::COUNT] = [
        RiskReject::KillSwitch,
        RiskReject::Quantity,
        RiskReject::Notional,
        RiskReject::NoReferencePrice,
        RiskReject::PriceBand,
        RiskReject::SymbolPosition,
        RiskReject::TotalPosition,
        RiskReject::OpenOrders,
        RiskReject::Duplicate,
        RiskReject::RateLimit,
        RiskReject::UnknownSymbol,
        RiskReject::UnknownOrder,
        RiskReject::OrderBusy,
        RiskReject::NoUserRefNum,
        RiskReject::Backpressure,
        RiskReject::Disconnected,
    ];

    /// Index into [`RiskCounters::rejected`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A snake-case name, for reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            RiskReject::KillSwitch => "kill_switch",
            RiskReject::Quantity => "quantity",
            RiskReject::Notional => "notional",
            RiskReject::NoReferencePrice => "no_reference_price",
            RiskReject::PriceBand => "price_band",
            RiskReject::SymbolPosition => "symbol_position",
            RiskReject::TotalPosition => "total_position",
            RiskReject::OpenOrders => "open_orders",
            RiskReject::Duplicate => "duplicate",
            RiskReject::RateLimit => "rate_limit",
            RiskReject::UnknownSymbol => "unknown_symbol",
            RiskReject::UnknownOrder => "unknown_order",
            RiskReject::OrderBusy => "order_busy",
            RiskReject::NoUserRefNum => "no_user_ref_num",
            RiskReject::Backpressure => "backpressure",
            RiskReject::Disconnected => "disconnected",
        }
    }
}

/// The band an order's price must fall in, around the best bid and offer.
///
/// A buy may not be priced above the offer plus the band nor below the bid
/// minus the band; a sell likewise. When one side of the book is empty the
/// other side stands for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PriceBand {
    /// Basis points of the reference price (100 = 1 %).
    Bps(u32),
    /// Whole ticks of `tick` price units (a [`Price4`] unit is $0.0001).
    Ticks {
        /// Ticks.
        ticks: u32,
        /// Price units per tick (100 = one cent).
        tick: u32,
    },
}

impl PriceBand {
    /// The band's width, in price units, at `reference`.
    #[must_use]
    pub fn width(self, reference: u32) -> u64 {
        match self {
            PriceBand::Bps(bps) => u64::from(reference) * u64::from(bps) / 10_000,
            PriceBand::Ticks { ticks, tick } => u64::from(ticks) * u64::from(tick),
        }
    }
}

/// Largest [`RiskConfig::max_open_orders`]: the trader reserves its order
/// table for this many at construction.
pub const MAX_OPEN_ORDERS: u32 = 1 << 16;
/// OUCH's quantity limit: fewer than a million shares per order.
pub const OUCH_MAX_QTY: u32 = 999_999;
/// Largest [`RiskConfig::duplicate_window_ns`]: a minute.
pub const MAX_DUPLICATE_WINDOW_NS: u64 = 60_000_000_000;
/// Orders the duplicate guard remembers (the most recent ones that passed).
pub const DUPLICATE_SLOTS: usize = 32;

/// The limits. Deserializes from JSON or TOML with every field optional
/// (the defaults are conservative); unknown fields are refused.
/// [`RiskConfig::validate`] refuses absurd values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Largest quantity of one order, shares (1..=999,999).
    pub max_order_qty: u32,
    /// Largest notional of one order (price × quantity), whole dollars.
    pub max_notional_dollars: u64,
    /// Largest potential position of one symbol, shares.
    pub max_position: u64,
    /// Largest sum over symbols of their potential positions, shares.
    pub max_total_position: u64,
    /// The price band around the BBO.
    pub price_band: PriceBand,
    /// Sustained order rate (enters and replaces), per second.
    pub orders_per_sec: u32,
    /// Orders allowed in a burst above the rate (the bucket's size).
    pub burst: u32,
    /// Open orders at most (sent and not yet finished).
    pub max_open_orders: u32,
    /// The duplicate guard's window, nanoseconds; 0 turns it off.
    pub duplicate_window_ns: u64,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_order_qty: 1_000,
            max_notional_dollars: 100_000,
            max_position: 5_000,
            max_total_position: 20_000,
            price_band: PriceBand::Bps(100),
            orders_per_sec: 1_000,
            burst: 50,
            max_open_orders: 256,
            duplicate_window_ns: 1_000_000,
        }
    }
}

/// A [`RiskConfig`] field out of range: the field, the value given and
/// what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskConfigError {
    /// The field, as named in the configuration.
    pub field: &'static str,
    /// The value given.
    pub value: u64,
    /// The accepted range, in words.
    pub accepted: String,
}

impl std::fmt::Display for RiskConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "risk.{} is {}; accepted: {}",
            self.field, self.value, self.accepted
        )
    }
}

impl std::error::Error for RiskConfigError {}

impl RiskConfig {
    /// Refuses absurd values.
    ///
    /// # Errors
    /// The first field out of range, naming it and the accepted range.
    pub fn validate(&self) -> Result<(), RiskConfigError> {
        fn range(field: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), RiskConfigError> {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(RiskConfigError {
                    field,
                    value: v,
                    accepted: format!("{lo}..={hi}"),
                })
            }
        }
        range(
            "max_order_qty",
            self.max_order_qty.into(),
            1,
            OUCH_MAX_QTY.into(),
        )?;
        // The largest order OUCH accepts: 999,999 shares at $199,999.99.
        range(
            "max_notional_dollars",
            self.max_notional_dollars,
            1,
            199_999_800_000,
        )?;
        range("max_position", self.max_position, 1, 1_000_000_000)?;
        range(
            "max_total_position",
            self.max_total_position,
            self.max_position,
            1_000_000_000_000,
        )
        .map_err(|mut e| {
            e.accepted.push_str(" (at least max_position)");
            e
        })?;
        match self.price_band {
            PriceBand::Bps(b) => range("price_band.bps", b.into(), 1, 10_000)?,
            PriceBand::Ticks { ticks, tick } => {
                range("price_band.ticks.ticks", ticks.into(), 1, 1_000_000)?;
                range("price_band.ticks.tick", tick.into(), 1, 1_000_000)?;
            }
        }
        range("orders_per_sec", self.orders_per_sec.into(), 1, 1_000_000)?;
        range("burst", self.burst.into(), 1, 1_000_000)?;
        range(
            "max_open_orders",
            self.max_open_orders.into(),
            1,
            MAX_OPEN_ORDERS.into(),
        )?;
        range(
            "duplicate_window_ns",
            self.duplicate_window_ns,
            0,
            MAX_DUPLICATE_WINDOW_NS,
        )
    }
}

/// Refusals by reason and orders passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RiskCounters {
    /// Orders that passed every check.
    pub passed: u64,
    /// Refusals, indexed by [`RiskReject::index`].
    pub rejected: [u64; RiskReject::COUNT],
}

impl RiskCounters {
    /// Refusals for one reason.
    #[must_use]
    pub fn of(&self, r: RiskReject) -> u64 {
        self.rejected[r.index()]
    }

    /// All refusals.
    #[must_use]
    pub fn total_rejected(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

/// An order to check: an enter, or a replace (`replaces` = the leaves of
/// the order it replaces, on the same side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCheck {
    /// The symbol's slot in the trader's table (for the duplicate guard).
    pub slot: u16,
    /// Side.
    pub side: Side,
    /// Limit price.
    pub price: Price4,
    /// Open quantity of the new order.
    pub quantity: u32,
    /// For a replace, the exposure the replaced order counts for now.
    pub replaces: Option<u32>,
}

/// A symbol's exposure: its position and its open orders per side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exposure {
    /// Shares held, signed.
    pub position: i64,
    /// Shares of open buy orders (their potential fills).
    pub open_buy: u64,
    /// Shares of open sell orders.
    pub open_sell: u64,
}

impl Exposure {
    /// The worst position fills can reach: `max(|position + open buys|,
    /// |position − open sells|)`.
    #[must_use]
    pub fn potential(&self) -> u64 {
        let p = i128::from(self.position);
        let up = (p + i128::from(self.open_buy)).unsigned_abs();
        let down = (p - i128::from(self.open_sell)).unsigned_abs();
        u64::try_from(up.max(down)).unwrap_or(u64::MAX)
    }
}

/// The state the checks read.
#[derive(Debug, Clone, Copy)]
pub struct RiskView<'a> {
    /// The symbol's exposure before the order.
    pub exposure: Exposure,
    /// The sum over symbols of [`Exposure::potential`] before the order.
    pub total_potential: u64,
    /// The symbol's best bid and offer.
    pub top: &'a TopOfBook,
    /// Orders open now.
    pub open_orders: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Recent {
    at: u64,
    price: u32,
    quantity: u32,
    slot: u16,
    side: u8,
    used: bool,
}

/// The risk gate: limits, counters, the token bucket, the duplicate guard
/// and the kill switch. See the module doc.
#[derive(Debug, Clone)]
pub struct Risk {
    cfg: RiskConfig,
    counters: RiskCounters,
    /// Nanoseconds of credit; one order costs `cost_ns`.
    credit_ns: u64,
    cap_ns: u64,
    cost_ns: u64,
    last_ns: Option<u64>,
    recent: [Recent; DUPLICATE_SLOTS],
    next_recent: usize,
    tripped: bool,
}

impl Risk {
    /// A gate with a full bucket.
    ///
    /// # Errors
    /// When the configuration is invalid ([`RiskConfig::validate`]).
    pub fn new(cfg: RiskConfig) -> Result<Risk, RiskConfigError> {
        cfg.validate()?;
        let cost_ns = 1_000_000_000 / u64::from(cfg.orders_per_sec);
        let cap_ns = cost_ns * u64::from(cfg.burst);
        Ok(Risk {
            cfg,
            counters: RiskCounters::default(),
            credit_ns: cap_ns,
            cap_ns,
            cost_ns,
            last_ns: None,
            recent: [Recent::default(); DUPLICATE_SLOTS],
            next_recent: 0,
            tripped: false,
        })
    }

    /// The limits.
    #[must_use]
    pub fn config(&self) -> &RiskConfig {
        &self.cfg
    }

    /// Counters.
    #[must_use]
    pub fn counters(&self) -> &RiskCounters {
        &self.counters
    }

    /// Trips the kill switch: from now on every order is refused with
    /// [`RiskReject::KillSwitch`]. There is no reset: a new trader (a
    /// restart, after a human looked) is the way back.
    pub fn trip(&mut self) {
        self.tripped = true;
    }

    /// Whether the kill switch is tripped.
    #[must_use]
    pub fn is_tripped(&self) -> bool {
        self.tripped
    }

    /// Counts a refusal for `reason` and returns it (for the trader's own
    /// checks).
    #[inline]
    pub fn refuse(&mut self, reason: RiskReject) -> RiskReject {
        self.counters.rejected[reason.index()] += 1;
        reason
    }

    /// Checks one order at `now`; on success the order is counted as sent
    /// (a token taken, the duplicate guard told).
    ///
    /// # Errors
    /// The first check that fails, counted.
    #[inline]
    pub fn check(&mut self, o: &OrderCheck, v: &RiskView<'_>, now: u64) -> Result<(), RiskReject> {
        match self.evaluate(o, v, now) {
            Ok(()) => {
                self.credit_ns -= self.cost_ns;
                if self.cfg.duplicate_window_ns > 0 {
                    self.recent[self.next_recent] = Recent {
                        at: now,
                        price: o.price.raw(),
                        quantity: o.quantity,
                        slot: o.slot,
                        side: o.side.as_byte(),
                        used: true,
                    };
                    self.next_recent = (self.next_recent + 1) % DUPLICATE_SLOTS;
                }
                self.counters.passed += 1;
                Ok(())
            }
            Err(r) => Err(self.refuse(r)),
        }
    }

    /// Whether an order like `o` passed within the window. The ring is
    /// walked newest first and the walk stops at the first entry outside
    /// the window (entries are in the order they passed, so in `now`
    /// order for a caller whose clock does not go back; one whose clock
    /// does merely sees fewer duplicates).
    #[inline]
    fn duplicate(&self, o: &OrderCheck, now: u64) -> bool {
        let (price, side) = (o.price.raw(), o.side.as_byte());
        for k in 1..=DUPLICATE_SLOTS {
            let r = &self.recent[(self.next_recent + DUPLICATE_SLOTS - k) % DUPLICATE_SLOTS];
            if !r.used || now.saturating_sub(r.at) >= self.cfg.duplicate_window_ns {
                return false;
            }
            if r.price == price && r.quantity == o.quantity && r.slot == o.slot && r.side == side {
                return true;
            }
        }
        false
    }

    fn evaluate(&mut self, o: &OrderCheck, v: &RiskView<'_>, now: u64) -> Result<(), RiskReject> {
        let c = &self.cfg;
        if self.tripped {
            return Err(RiskReject::KillSwitch);
        }
        if o.quantity == 0 || o.quantity > c.max_order_qty {
            return Err(RiskReject::Quantity);
        }
        let notional = u128::from(o.price.raw()) * u128::from(o.quantity);
        if notional > u128::from(c.max_notional_dollars) * u128::from(Price4::SCALE) {
            return Err(RiskReject::Notional);
        }
        // Price band: a buy is bounded above by the offer, below by the
        // bid; a sell the same; an empty side takes the other's price.
        let bid = v.top.bid.map(|l| l.price);
        let ask = v.top.ask.map(|l| l.price);
        let (Some(lo_ref), Some(hi_ref)) = (bid.or(ask), ask.or(bid)) else {
            return Err(RiskReject::NoReferencePrice);
        };
        let p = u64::from(o.price.raw());
        let lo = u64::from(lo_ref).saturating_sub(c.price_band.width(lo_ref));
        let hi = u64::from(hi_ref) + c.price_band.width(hi_ref);
        if p < lo.max(1) || p > hi {
            return Err(RiskReject::PriceBand);
        }
        // Potential position, symbol and total.
        let before = v.exposure;
        let mut after = before;
        let side_qty = match o.side {
            Side::Buy => &mut after.open_buy,
            Side::Sell => &mut after.open_sell,
        };
        *side_qty =
            (*side_qty + u64::from(o.quantity)).saturating_sub(u64::from(o.replaces.unwrap_or(0)));
        let (pb, pa) = (before.potential(), after.potential());
        if pa > pb {
            if pa > c.max_position {
                return Err(RiskReject::SymbolPosition);
            }
            if v.total_potential - pb.min(v.total_potential) + pa > c.max_total_position {
                return Err(RiskReject::TotalPosition);
            }
        }
        if o.replaces.is_none() && v.open_orders >= c.max_open_orders {
            return Err(RiskReject::OpenOrders);
        }
        if c.duplicate_window_ns > 0 && self.duplicate(o, now) {
            return Err(RiskReject::Duplicate);
        }
        // Token bucket on `now`: credit grows with time up to the burst.
        let elapsed = self.last_ns.map_or(0, |l| now.saturating_sub(l));
        self.last_ns = Some(self.last_ns.map_or(now, |l| l.max(now)));
        self.credit_ns = (self.credit_ns + elapsed.min(self.cap_ns)).min(self.cap_ns);
        if self.credit_ns < self.cost_ns {
            return Err(RiskReject::RateLimit);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::Level;

    fn top(bid: u32, ask: u32) -> TopOfBook {
        let l = |price| {
            Some(Level {
                price,
                shares: 100,
                orders: 1,
            })
        };
        TopOfBook {
            bid: l(bid),
            ask: l(ask),
        }
    }

    fn buy(price: u32, quantity: u32) -> OrderCheck {
        OrderCheck {
            slot: 0,
            side: Side::Buy,
            price: Price4::from_raw(price),
            quantity,
            replaces: None,
        }
    }

    fn cfg() -> RiskConfig {
        RiskConfig {
            max_order_qty: 500,
            max_notional_dollars: 20_000,
            max_position: 1_000,
            max_total_position: 1_500,
            price_band: PriceBand::Ticks {
                ticks: 5,
                tick: 100,
            },
            orders_per_sec: 10,
            burst: 3,
            max_open_orders: 4,
            duplicate_window_ns: 1_000,
        }
    }

    struct Case {
        risk: Risk,
        top: TopOfBook,
        exposure: Exposure,
        total: u64,
        open: u32,
        now: u64,
    }

    impl Case {
        fn new() -> Case {
            Case {
                risk: Risk::new(cfg()).unwrap(),
                top: top(10_0000, 10_0100),
                exposure: Exposure::default(),
                total: 0,
                open: 0,
                now: 1_000_000_000,
            }
        }
        fn check(&mut self, o: OrderCheck) -> Result<(), RiskReject> {
            let v = RiskView {
                exposure: self.exposure,
                total_potential: self.total,
                top: &self.top,
                open_orders: self.open,
            };
            self.risk.check(&o, &v, self.now)
        }
        /// Asserts `o` is refused for `r`, and that exactly that counter
        /// moved.
        fn refused(&mut self, o: OrderCheck, r: RiskReject) {
            let before = *self.risk.counters();
            assert_eq!(self.check(o), Err(r));
            let after = *self.risk.counters();
            for x in RiskReject::ALL {
                let want = before.of(x) + u64::from(x == r);
                assert_eq!(after.of(x), want, "counter {}", x.name());
            }
            assert_eq!(after.passed, before.passed);
        }
    }

    #[test]
    fn each_check_refuses_with_its_reason_and_counter() {
        let mut c = Case::new();
        assert_eq!(c.check(buy(10_0100, 100)), Ok(()));
        c.now += 1_000_000;
        c.refused(buy(10_0100, 0), RiskReject::Quantity);
        c.refused(buy(10_0100, 501), RiskReject::Quantity);
        // 500 × $50.00 = $25,000 > $20,000; the band is moved out of the way.
        c.top = top(50_0000, 50_0000);
        c.refused(buy(50_0000, 500), RiskReject::Notional);
        c.top = TopOfBook::default();
        c.refused(buy(10_0000, 10), RiskReject::NoReferencePrice);
        c.top = top(10_0000, 10_0100);
        // Offer 10.01 + 5 ticks = 10.06 is the highest buy; 9.95 the lowest.
        assert_eq!(c.check(buy(10_0600, 11)), Ok(()));
        c.refused(buy(10_0601, 12), RiskReject::PriceBand);
        assert_eq!(c.check(buy(9_9500, 13)), Ok(()));
        c.refused(buy(9_9499, 14), RiskReject::PriceBand);
        // Position: long 700 with 200 open buys; 101 more is 1001 > 1000.
        c.now += 1_000_000_000;
        c.exposure = Exposure {
            position: 700,
            open_buy: 200,
            open_sell: 0,
        };
        c.total = 900;
        c.refused(buy(10_0000, 101), RiskReject::SymbolPosition);
        assert_eq!(c.check(buy(10_0000, 100)), Ok(()), "exactly at the limit");
        // Total: 900 here + 600 elsewhere; 1 more is over 1500.
        c.total = 1_500;
        c.exposure.open_buy = 100;
        c.refused(buy(10_0000, 1), RiskReject::TotalPosition);
        c.total = 0;
        c.exposure = Exposure::default();
        c.open = 4;
        c.refused(buy(10_0000, 21), RiskReject::OpenOrders);
        c.open = 0;
        // Duplicate of the order that passed just before (same now).
        c.refused(buy(10_0000, 100), RiskReject::Duplicate);
        // Past the window it is not a duplicate.
        c.now += 1_000;
        // Three tokens at most; three passed within this second... the
        // bucket refilled a whole second above, so it holds 3 now: use
        // them, the fourth is refused.
        for q in [100, 101] {
            assert_eq!(c.check(buy(10_0000, q)), Ok(()));
        }
        c.refused(buy(10_0000, 102), RiskReject::RateLimit);
        // A tenth of a second later one token is back.
        c.now += 100_000_000;
        assert_eq!(c.check(buy(10_0000, 102)), Ok(()));
        c.refused(buy(10_0000, 103), RiskReject::RateLimit);
        c.risk.trip();
        c.now += 10_000_000_000;
        c.refused(buy(10_0000, 104), RiskReject::KillSwitch);
        assert!(c.risk.is_tripped());
    }

    #[test]
    fn reducing_orders_pass_over_the_limit() {
        let mut c = Case::new();
        c.exposure = Exposure {
            position: 1_200,
            open_buy: 0,
            open_sell: 0,
        };
        c.total = 1_200;
        let sell = OrderCheck {
            side: Side::Sell,
            ..buy(10_0000, 500)
        };
        assert_eq!(c.check(sell), Ok(()));
        c.refused(buy(10_0000, 1), RiskReject::SymbolPosition);
        // Selling through zero to −1001 raises the exposure: refused.
        c.exposure.position = 0;
        c.total = 0;
        c.exposure.open_sell = 600;
        let sell = OrderCheck {
            side: Side::Sell,
            ..buy(10_0000, 401)
        };
        c.refused(sell, RiskReject::SymbolPosition);
    }

    #[test]
    fn a_replace_counts_its_new_quantity_only() {
        let mut c = Case::new();
        c.exposure = Exposure {
            position: 0,
            open_buy: 950,
            open_sell: 0,
        };
        c.total = 950;
        c.open = 4;
        // Replacing the 400-share order by 450 shares: 1000, at the limit,
        // and no new open order (4 are open, the most allowed).
        let r = OrderCheck {
            replaces: Some(400),
            ..buy(10_0000, 450)
        };
        assert_eq!(c.check(r), Ok(()));
        let r = OrderCheck {
            replaces: Some(400),
            ..buy(10_0000, 451)
        };
        c.refused(r, RiskReject::SymbolPosition);
    }

    #[test]
    fn absurd_configs_are_refused_by_name() {
        type Edit = (fn(&mut RiskConfig), &'static str);
        let cases: [Edit; 9] = [
            (
                |c| c.max_order_qty = 0,
                "risk.max_order_qty is 0; accepted: 1..=999999",
            ),
            (
                |c| c.max_order_qty = 1_000_000,
                "risk.max_order_qty is 1000000",
            ),
            (
                |c| c.max_notional_dollars = 0,
                "risk.max_notional_dollars is 0",
            ),
            (|c| c.max_position = 0, "risk.max_position is 0"),
            (
                |c| c.max_total_position = 10,
                "risk.max_total_position is 10; accepted: 5000..=1000000000000 (at least max_position)",
            ),
            (
                |c| c.price_band = PriceBand::Bps(0),
                "risk.price_band.bps is 0",
            ),
            (|c| c.orders_per_sec = 0, "risk.orders_per_sec is 0"),
            (
                |c| c.max_open_orders = 1 << 20,
                "risk.max_open_orders is 1048576",
            ),
            (
                |c| c.duplicate_window_ns = u64::MAX,
                "risk.duplicate_window_ns is",
            ),
        ];
        for (f, want) in cases {
            let mut c = RiskConfig::default();
            f(&mut c);
            let e = Risk::new(c).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e} / {want}");
        }
        RiskConfig::default().validate().unwrap();
    }

    #[test]
    fn config_from_json() {
        let c: RiskConfig = serde_json::from_str(
            r#"{"max_order_qty": 10, "price_band": {"ticks": {"ticks": 3, "tick": 100}}}"#,
        )
        .unwrap();
        assert_eq!(c.max_order_qty, 10);
        assert_eq!(
            c.price_band,
            PriceBand::Ticks {
                ticks: 3,
                tick: 100
            }
        );
        assert_eq!(c.burst, RiskConfig::default().burst);
        let e = serde_json::from_str::<RiskConfig>(r#"{"max_qty": 1}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `max_qty`"), "{e}");
    }
}
