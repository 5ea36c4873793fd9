//! The trader engine, sans-IO: market events in, a strategy's intents
//! through pre-trade risk, order messages out; exchange messages in, order
//! state, position and P&L kept.
//!
//! Layer: trading engine. [`Trader`] is to the trader loop in `hftnet-apps`
//! what `quinn-proto`'s connection is to `quinn`: every entry point takes
//! `now` (nanoseconds, the caller's clock) and a caller-owned [`Outbox`]
//! the order messages are appended to; nothing here does I/O, reads a
//! clock, logs or allocates once constructed.
//!
//! # Inputs (`handle_*`) and outputs
//!
//! | input | from | effect |
//! |-------|------|--------|
//! | [`Trader::handle_top`] | [`crate::market::MarketEvents::top`] | strategy [`Strategy::on_top`], intents through risk |
//! | [`Trader::handle_trade`] | [`crate::market::MarketEvents::trade`] | strategy [`Strategy::on_trade`], intents through risk |
//! | [`Trader::handle_timer`] | the loop | strategy [`Strategy::on_timer`] |
//! | [`Trader::handle_exchange`] | decoded OUCH outbound messages | order state, position, [`Strategy::on_order`] |
//! | [`Trader::submit`] | an operator, a test | one intent through risk |
//! | [`Trader::trip_kill_switch`], [`Trader::cancel_all`] | a signal, a file, the CLI | refuse everything new, cancel every open order |
//!
//! Outputs: [`OrderMsg`]s in the [`Outbox`] (encode each with the OUCH
//! codec and send it; [`OrderMsg::trigger`] gives the receive timestamp of
//! the packet that caused it, for internal tick-to-trade); a mark to
//! persist from [`Trader::refs_mut`]'s [`UserRefNums::poll_persist`].
//!
//! # Wiring (the trader loop)
//!
//! ```text
//! feed.handle(datagram, rx_ns)            // MoldUDP64: each message with its sequence number
//!   market.handle_events(msg, &mut L)     // L::top / L::trade call
//!     trader.handle_top(&u, Trigger { seq, rx_ns }, now, &mut outbox)
//! for m in outbox.as_slice() { ouch::encode(m) -> soupbin unsequenced data -> send }; outbox.clear()
//! soupbin sequenced data -> ouch::decode -> trader.handle_exchange(&ev)
//! if let Some(mark) = trader.refs_mut().poll_persist() { store(mark); trader.refs_mut().confirm_persisted(mark) }
//! ```
//!
//! # Orders and accounting
//!
//! Each order is tracked by its UserRefNum from the moment it is sent.
//! Requests that consume a UserRefNum (enters and replaces) are counted
//! `sent`; each is resolved exactly once, as `accepted` (Accepted,
//! Replaced, or implicitly by an execution or cancel of an order whose
//! Accepted never came) or `rejected` (a Rejected message, or a replace
//! the exchange ignored because its order ended first — OUCH says it is
//! silently dropped). So at every moment `sent = accepted + rejected +
//! pending` ([`Accounting`]). Exchange messages for numbers not open, or
//! out of state, change nothing and are counted (`unexpected`).
//!
//! A replace keeps the chain's record; while it is in flight the order
//! counts for the larger of its open shares and the replacement's in the
//! exposure risk sees. Cancels of an order with a replace in flight go to
//! both numbers (OUCH processes a port's messages in order: whichever of
//! the two is live when the cancel arrives is the one cancelled; the other
//! cancel is ignored as superfluous).
//!
//! # Recovery after a restart
//!
//! A trader process that restarts keeps only its persisted UserRefNum
//! mark; the exchange keeps the day's session, and a login from sequence
//! number 1 replays all of it (every Order Accepted, Replaced, Executed,
//! Canceled, Rejected of the earlier runs). A fresh trader rebuilds its
//! open orders, position and P&L from that history:
//!
//! 1. [`Trader::begin_recovery`] before the login (the trader refuses
//!    enters and replaces until the end, as [`RiskReject::Disconnected`]:
//!    its position is not known yet).
//! 2. Every replayed message through [`Trader::handle_exchange`]. An Order
//!    Accepted for a number the trader does not know is an earlier run's
//!    order: *adopted* — tracked from then on like the trader's own (open
//!    shares on its symbol's exposure, the open-order count, position
//!    limits and notional as risk sees them, the kill switch and
//!    [`Trader::cancel_all`] cancel it), counted `recovered_orders`, never
//!    counted sent or accepted, never told to the strategy (it is not the
//!    strategy's; its fills change the position the strategy sees). The
//!    Replaced, Executed, Canceled (AIQ Canceled too) that follow apply as
//!    they do live, so the position and P&L come out exactly as the
//!    earlier runs left them (`recovered_replaces`, `recovered_fills`). A
//!    Rejected of an unknown number was an earlier run's refused request
//!    (`recovered_rejects`). Only what cannot be reconciled is
//!    `unexpected`: an execution or cancel of an order the history never
//!    accepted, a replace of an unknown order, an order of a symbol this
//!    trader does not trade.
//! 3. [`Trader::end_recovery`] once the history is over: the apps' loop
//!    calls it when the answer to the Account Query it sends after its
//!    first login arrives (the exchange sequences it after everything
//!    sent before), or when it gives up waiting for it. From then on the
//!    numbers at or above the allocator's next one are this process's;
//!    an Order Accepted for an unknown lower number (an earlier run's
//!    order the exchange processed late, e.g. from a dead process's
//!    socket buffer) is still adopted, a higher one is unexpected.
//!
//! Earlier runs' orders are never sent again (the caller's resend ring is
//! per process). A reconnect within the process resumes the session at its
//! next expected sequence number, so nothing is replayed twice; a message
//! delivered twice anyway would find its number known and be counted
//! `unexpected`, not adopted again. The replay holds the earlier runs' own
//! Account Query Responses too, which OUCH gives nothing to tell apart
//! from this run's: a loop that takes one of them for its own ends
//! recovery early — the rest of the history still applies (adoption goes
//! by number), only trading may resume a few messages before the position
//! is complete.

use std::collections::HashMap;

use hftnet_wire::itch50::{Price4, Side, Stock};

use crate::book::{MAX_LOCATES, RefHashBuilder, TopOfBook};
use crate::market::{TopUpdate, TradeUpdate};
use crate::orders::{
    CancelOrder, ClOrdId, EnterOrder, ExchangeEvent, OrderMsg, ReplaceOrder, Trigger, UserRefNum,
    UserRefNums,
};
use crate::position::Position;
use crate::risk::{
    Exposure, OrderCheck, Risk, RiskConfig, RiskConfigError, RiskCounters, RiskReject, RiskView,
};
use crate::strategy::{
    Ctx, Intent, Intents, OrderUpdate, Strategy, TopEvent, TradeEvent, UpdateKind,
};

/// Capacity of an [`Outbox`].
pub const OUTBOX_CAP: usize = 64;
/// Largest number of symbols a trader trades.
pub const MAX_SYMBOLS: usize = 4_096;

const NO_SLOT: u16 = u16::MAX;
const NOT_TRADED: u16 = u16::MAX - 1;
const NO_ORDER: u32 = u32::MAX;

/// A fixed-capacity buffer of order messages to encode and send, owned by
/// the caller and appended to by the trader. Clear it once sent.
#[derive(Debug, Clone)]
pub struct Outbox {
    buf: [OrderMsg; OUTBOX_CAP],
    len: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        let filler = OrderMsg::Cancel(
            CancelOrder {
                user_ref_num: UserRefNum(0),
                quantity: 0,
            },
            Trigger::NONE,
        );
        Outbox {
            buf: [filler; OUTBOX_CAP],
            len: 0,
        }
    }
}

impl Outbox {
    /// The messages appended since the last [`Outbox::clear`], in order.
    #[must_use]
    pub fn as_slice(&self) -> &[OrderMsg] {
        &self.buf[..self.len]
    }

    /// Empties it.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Messages it can still take.
    #[must_use]
    pub fn room(&self) -> usize {
        OUTBOX_CAP - self.len
    }

    fn push(&mut self, m: OrderMsg) {
        // Callers check `room` first; a push on a full box is dropped
        // rather than panicking.
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = m;
            self.len += 1;
        }
    }
}

/// What the trader trades and its limits. Deserializes from JSON/TOML.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TraderConfig {
    /// Symbols traded, in slot order (1 to [`MAX_SYMBOLS`]).
    pub symbols: Vec<String>,
    /// Pre-trade risk limits.
    pub risk: RiskConfig,
    /// UserRefNums reserved per persisted mark (see [`UserRefNums`]).
    pub ref_block: u32,
}

impl Default for TraderConfig {
    fn default() -> Self {
        TraderConfig {
            symbols: Vec::new(),
            risk: RiskConfig::default(),
            ref_block: 1_024,
        }
    }
}

/// A [`TraderConfig`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraderConfigError {
    /// The symbol list is empty, too long, has a duplicate or a bad name.
    Symbols(String),
    /// `ref_block` is 0 or above a million.
    RefBlock(u32),
    /// A risk limit is out of range.
    Risk(RiskConfigError),
}

impl std::fmt::Display for TraderConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraderConfigError::Symbols(m) => write!(f, "symbols: {m}"),
            TraderConfigError::RefBlock(v) => {
                write!(f, "ref_block is {v}; accepted: 1..=1000000")
            }
            TraderConfigError::Risk(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TraderConfigError {}

impl TraderConfig {
    /// The symbol table (slot order), checked.
    ///
    /// # Errors
    /// An empty or too long list, a duplicate, or a name that is not 1 to 8
    /// printable ASCII characters.
    pub fn symbol_table(&self) -> Result<Vec<Stock>, TraderConfigError> {
        let bad = |m: String| Err(TraderConfigError::Symbols(m));
        if self.symbols.is_empty() || self.symbols.len() > MAX_SYMBOLS {
            return bad(format!(
                "{} symbols; accepted: 1..={MAX_SYMBOLS}",
                self.symbols.len()
            ));
        }
        let mut t: Vec<Stock> = Vec::with_capacity(self.symbols.len());
        for s in &self.symbols {
            let ok = !s.is_empty() && !s.contains(' ');
            let Some(st) = Stock::new(s).ok().filter(|_| ok) else {
                return bad(format!(
                    "{s:?} is not a symbol; accepted: 1 to 8 printable ASCII characters"
                ));
            };
            if t.contains(&st) {
                return bad(format!("{s:?} is listed twice"));
            }
            t.push(st);
        }
        Ok(t)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field refused.
    pub fn validate(&self) -> Result<(), TraderConfigError> {
        self.symbol_table()?;
        if !(1..=1_000_000).contains(&self.ref_block) {
            return Err(TraderConfigError::RefBlock(self.ref_block));
        }
        self.risk.validate().map_err(TraderConfigError::Risk)
    }
}

/// Counters of the trader (plain integers, read from outside).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraderCounters {
    /// Top updates of traded symbols handed to the strategy.
    pub tops: u64,
    /// Top updates of other symbols (or of unnamed locates), ignored.
    pub tops_ignored: u64,
    /// Trades of traded symbols handed to the strategy.
    pub trades: u64,
    /// Intents processed (through risk or refused).
    pub intents: u64,
    /// Enter Order messages sent.
    pub enters_sent: u64,
    /// Replace Order messages sent.
    pub replaces_sent: u64,
    /// Cancel Order messages sent.
    pub cancels_sent: u64,
    /// Cancels sent again after a login, for orders whose cancel was lost
    /// with a connection ([`Trader::recancel_unanswered`]); not in
    /// `cancels_sent`.
    pub cancels_resent: u64,
    /// Enters and replaces accepted (see the module doc).
    pub accepted: u64,
    /// Enters and replaces rejected, or replaces voided.
    pub rejected: u64,
    /// Of `rejected`: replaces voided because their order ended first.
    pub replaces_void: u64,
    /// Executions applied (those of adopted orders included).
    pub executions: u64,
    /// Shares executed (those of adopted orders included).
    pub executed_shares: u64,
    /// Executions of more shares than the order had open (applied to the
    /// position anyway: the exchange's word is the trade).
    pub overfills: u64,
    /// Exchange messages for numbers not open or out of state, ignored
    /// (during recovery too: a message that cannot be reconciled).
    pub unexpected: u64,
    /// Orders of earlier runs adopted from their Order Accepted (see
    /// [Recovery](crate::trader#recovery-after-a-restart)).
    pub recovered_orders: u64,
    /// Replacements of adopted orders adopted from their Order Replaced.
    pub recovered_replaces: u64,
    /// Rejected messages of earlier runs' requests (nothing to adopt).
    pub recovered_rejects: u64,
    /// Of `executions`: executions of adopted orders.
    pub recovered_fills: u64,
    /// Adopted orders open when recovery ended: the earlier runs' resting
    /// orders this trader took over.
    pub recovered_open: u64,
    /// Of `recovered_orders`, `recovered_replaces` and `recovered_rejects`:
    /// those that came after recovery ended (an earlier run's request the
    /// exchange answered late, or a recovery ended early).
    pub recovered_late: u64,
}

/// The order-count identity: `sent = accepted + rejected + pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounting {
    /// Enters and replaces sent.
    pub sent: u64,
    /// Of them, accepted.
    pub accepted: u64,
    /// Of them, rejected (or voided replaces).
    pub rejected: u64,
    /// Of them, not answered yet.
    pub pending: u64,
}

impl Accounting {
    /// Whether the identity holds.
    #[must_use]
    pub fn balanced(&self) -> bool {
        self.sent == self.accepted + self.rejected + self.pending
    }
}

#[derive(Debug, Clone, Copy)]
struct PendingReplace {
    user_ref_num: u32,
    open: u32,
}

#[derive(Debug, Clone, Copy)]
struct OrderRec {
    user_ref_num: u32,
    slot: u16,
    side: Side,
    price: u32,
    /// Shares open (before the Accepted: as entered).
    open: u32,
    /// Shares executed over the replace chain.
    executed: u32,
    tag: u32,
    accepted: bool,
    cancel_sent: bool,
    replace: Option<PendingReplace>,
    in_use: bool,
    /// An earlier run's order, adopted from the replayed history: not the
    /// strategy's (it is never told about it), never counted sent.
    adopted: bool,
    next_free: u32,
}

impl OrderRec {
    /// Shares this order counts for in its side's open exposure.
    fn exposure(&self) -> u32 {
        self.replace.map_or(self.open, |r| r.open.max(self.open))
    }
}

/// UserRefNum → order index: a direct-mapped ring indexed by the low bits
/// of the number (numbers are dense and increasing, so nearly every number
/// finds its slot free), with a hash map for the numbers whose slot an
/// older, still open order holds. A hash map alone, with orders coming and
/// going at every event, filled with tombstones and made every miss a
/// long probe.
#[derive(Debug)]
struct RefMap {
    /// (number, order index); number 0 = free (0 is never allocated).
    ring: Vec<(u32, u32)>,
    mask: u32,
    far: HashMap<u64, u32, RefHashBuilder>,
    len: usize,
}

impl RefMap {
    fn new(max_open: usize) -> RefMap {
        // Up to two numbers per open order (one with a replace in flight);
        // four times that keeps the far map at most half full, so it
        // never grows or reallocates to rehash.
        let size = (4 * max_open).next_power_of_two().max(1_024);
        let mut far = HashMap::with_hasher(RefHashBuilder);
        far.reserve(4 * max_open);
        RefMap {
            ring: vec![(0, 0); size],
            mask: (size - 1) as u32,
            far,
            len: 0,
        }
    }

    #[inline]
    fn get(&self, n: u32) -> Option<u32> {
        let (k, v) = self.ring[(n & self.mask) as usize];
        if k == n && n != 0 {
            Some(v)
        } else if self.far.is_empty() {
            None
        } else {
            self.far.get(&u64::from(n)).copied()
        }
    }

    #[inline]
    fn insert(&mut self, n: u32, v: u32) {
        let slot = &mut self.ring[(n & self.mask) as usize];
        if slot.0 == 0 {
            *slot = (n, v);
        } else {
            self.far.insert(u64::from(n), v);
        }
        self.len += 1;
    }

    #[inline]
    fn remove(&mut self, n: u32) {
        let slot = &mut self.ring[(n & self.mask) as usize];
        if slot.0 == n && n != 0 {
            *slot = (0, 0);
            self.len -= 1;
        } else if self.far.remove(&u64::from(n)).is_some() {
            self.len -= 1;
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// The trader engine; see the module doc.
#[derive(Debug)]
pub struct Trader<S> {
    strategy: S,
    risk: Risk,
    refs: UserRefNums,
    symbols: Vec<Stock>,
    positions: Vec<Position>,
    tops: Vec<TopOfBook>,
    exposure: Vec<Exposure>,
    total_potential: u64,
    locate_slot: Vec<u16>,
    orders: Vec<OrderRec>,
    free_head: u32,
    by_ref: RefMap,
    open_orders: u32,
    pending: u64,
    intents: Intents,
    counters: TraderCounters,
    connected: bool,
    /// Between [`Trader::begin_recovery`] and [`Trader::end_recovery`].
    recovering: bool,
    /// Numbers below this that the trader does not know are an earlier
    /// run's: adopted from their Order Accepted. 0 = none (no recovery
    /// begun), `u32::MAX` while recovering.
    adopt_below: u32,
}

impl<S: Strategy> Trader<S> {
    /// A trader running `strategy` (built for `cfg.symbol_table()`). Its
    /// UserRefNums start at 1 and need a persisted mark first: restore the
    /// last one with [`Trader::refs_mut`] before trading.
    ///
    /// # Errors
    /// A configuration field refused ([`TraderConfig::validate`]).
    pub fn new(cfg: TraderConfig, strategy: S) -> Result<Trader<S>, TraderConfigError> {
        cfg.validate()?;
        let symbols = cfg.symbol_table()?;
        let n = symbols.len();
        let max_open = cfg.risk.max_open_orders as usize;
        let risk = Risk::new(cfg.risk).map_err(TraderConfigError::Risk)?;
        let by_ref = RefMap::new(max_open);
        Ok(Trader {
            strategy,
            risk,
            refs: UserRefNums::new(cfg.ref_block),
            symbols,
            positions: vec![Position::default(); n],
            tops: vec![TopOfBook::default(); n],
            exposure: vec![Exposure::default(); n],
            total_potential: 0,
            locate_slot: vec![NO_SLOT; MAX_LOCATES],
            orders: Vec::with_capacity(max_open),
            free_head: NO_ORDER,
            by_ref,
            open_orders: 0,
            pending: 0,
            intents: Intents::default(),
            counters: TraderCounters::default(),
            connected: true,
            recovering: false,
            adopt_below: 0,
        })
    }

    // ---- inputs -------------------------------------------------------

    /// A top change from the market layer, caused by the message numbered
    /// `trigger.seq` received at `trigger.rx_ns`. Updates of symbols not
    /// traded (or of locates no directory message named yet) are counted
    /// and ignored. A locate is resolved to its slot once, by the symbol of
    /// its first update; a traded locate renamed later is resolved again,
    /// an untraded one stays ignored.
    #[inline]
    pub fn handle_top(&mut self, update: &TopUpdate, trigger: Trigger, now: u64, out: &mut Outbox) {
        let Some(slot) = self.slot_of(update.locate, update.symbol) else {
            self.counters.tops_ignored += 1;
            return;
        };
        self.counters.tops += 1;
        self.tops[usize::from(slot)] = update.top;
        let ev = TopEvent {
            slot,
            trigger,
            update: *update,
        };
        let ctx = Ctx::new(now, &self.symbols, &self.positions);
        self.strategy.on_top(&ev, &ctx, &mut self.intents);
        self.run_intents(now, out);
    }

    /// A trade from the market layer; trades of symbols not traded are
    /// ignored.
    pub fn handle_trade(
        &mut self,
        trade: &TradeUpdate,
        trigger: Trigger,
        now: u64,
        out: &mut Outbox,
    ) {
        let Some(slot) = self.slot_of(trade.locate, trade.symbol) else {
            return;
        };
        self.counters.trades += 1;
        let ev = TradeEvent {
            slot,
            trigger,
            trade: *trade,
        };
        let ctx = Ctx::new(now, &self.symbols, &self.positions);
        self.strategy.on_trade(&ev, &ctx, &mut self.intents);
        self.run_intents(now, out);
    }

    /// The loop's timer.
    pub fn handle_timer(&mut self, now: u64, out: &mut Outbox) {
        let ctx = Ctx::new(now, &self.symbols, &self.positions);
        self.strategy.on_timer(&ctx, &mut self.intents);
        self.run_intents(now, out);
    }

    /// One intent through the same path as the strategy's (an operator's
    /// order, a test). The outcome is also reported to the strategy's
    /// [`Strategy::on_order`].
    ///
    /// # Errors
    /// The reason it was refused, counted in [`Trader::risk_counters`].
    pub fn submit(
        &mut self,
        intent: &Intent,
        now: u64,
        out: &mut Outbox,
    ) -> Result<(), RiskReject> {
        self.counters.intents += 1;
        match *intent {
            Intent::Enter {
                slot,
                side,
                price,
                quantity,
                time_in_force,
                tag,
                trigger,
            } => {
                let r = self.enter(
                    (slot, side, price, quantity),
                    time_in_force,
                    tag,
                    trigger,
                    now,
                    out,
                );
                let update = |user_ref_num, open, kind| OrderUpdate {
                    user_ref_num,
                    tag,
                    slot,
                    side,
                    price,
                    open,
                    done: r.is_err(),
                    kind,
                };
                match r {
                    Ok(n) => self
                        .strategy
                        .on_order(&update(n, quantity, UpdateKind::Sent)),
                    Err(e) => {
                        self.strategy
                            .on_order(&update(UserRefNum(0), 0, UpdateKind::Refused(e)))
                    }
                }
                r.map(drop)
            }
            Intent::Replace {
                user_ref_num,
                price,
                quantity,
                trigger,
            } => {
                let r = self.replace(user_ref_num, price, quantity, trigger, now, out);
                self.refused_update(user_ref_num, r)
            }
            Intent::Cancel {
                user_ref_num,
                trigger,
            } => {
                let r = self.cancel(user_ref_num, trigger, out);
                self.refused_update(user_ref_num, r)
            }
        }
    }

    /// One order-state message from the exchange.
    pub fn handle_exchange(&mut self, ev: &ExchangeEvent) {
        match *ev {
            ExchangeEvent::Accepted {
                user_ref_num,
                side,
                quantity,
                symbol,
                price,
                live,
                ..
            } => {
                let Some(i) = self
                    .current(user_ref_num)
                    .filter(|&i| !self.rec(i).accepted)
                else {
                    self.adopt(user_ref_num, side, symbol, price, quantity, live);
                    return;
                };
                self.counters.accepted += 1;
                self.pending -= 1;
                self.change(i, |r| {
                    r.accepted = true;
                    r.price = price.raw();
                    r.open = if live { quantity } else { 0 };
                });
                self.report(i, UpdateKind::Accepted);
            }
            ExchangeEvent::Replaced {
                orig_user_ref_num,
                user_ref_num,
                quantity,
                price,
                live,
                ..
            } => {
                let i = self.current(orig_user_ref_num).filter(|&i| {
                    self.rec(i).replace.map(|p| p.user_ref_num) == Some(user_ref_num.0)
                });
                let i = if let Some(i) = i {
                    self.counters.accepted += 1;
                    self.pending -= 1;
                    self.implicit_accept(i);
                    i
                } else {
                    // Or an earlier run's replace of an adopted order.
                    let earlier = self.current(orig_user_ref_num).filter(|&i| {
                        let r = self.rec(i);
                        r.adopted && r.replace.is_none() && self.adoptable(user_ref_num)
                    });
                    let Some(i) = earlier else {
                        self.counters.unexpected += 1;
                        return;
                    };
                    self.counters.recovered_replaces += 1;
                    self.counters.recovered_late += u64::from(!self.recovering);
                    self.by_ref.insert(user_ref_num.0, i);
                    i
                };
                self.by_ref.remove(orig_user_ref_num.0);
                self.change(i, |r| {
                    r.user_ref_num = user_ref_num.0;
                    r.price = price.raw();
                    r.open = if live { quantity } else { 0 };
                    r.replace = None;
                });
                self.report(
                    i,
                    UpdateKind::Replaced {
                        from: orig_user_ref_num,
                    },
                );
            }
            ExchangeEvent::Canceled {
                user_ref_num,
                quantity,
                ..
            } => {
                let Some(i) = self.current(user_ref_num) else {
                    self.counters.unexpected += 1;
                    return;
                };
                self.implicit_accept(i);
                self.change(i, |r| r.open -= quantity.min(r.open));
                self.report(i, UpdateKind::Canceled { quantity });
            }
            ExchangeEvent::Executed {
                user_ref_num,
                quantity,
                price,
                ..
            } => {
                let Some(i) = self.current(user_ref_num) else {
                    self.counters.unexpected += 1;
                    return;
                };
                self.implicit_accept(i);
                let (slot, side) = (usize::from(self.rec(i).slot), self.rec(i).side);
                self.counters.recovered_fills += u64::from(self.rec(i).adopted);
                self.counters.executions += 1;
                self.counters.executed_shares += u64::from(quantity);
                if quantity > self.rec(i).open {
                    self.counters.overfills += 1;
                }
                self.positions[slot].fill(side, quantity, price);
                let shares = self.positions[slot].shares();
                self.reexpose(slot, |e| e.position = shares);
                self.change(i, |r| {
                    r.open -= quantity.min(r.open);
                    r.executed = r.executed.saturating_add(quantity);
                });
                self.report(i, UpdateKind::Executed { quantity, price });
            }
            ExchangeEvent::Rejected {
                user_ref_num,
                reason,
            } => {
                let Some(i) = self.by_ref.get(user_ref_num.0) else {
                    // An earlier run's enter or replace, refused: nothing
                    // to adopt.
                    if self.adoptable(user_ref_num) {
                        self.counters.recovered_rejects += 1;
                        self.counters.recovered_late += u64::from(!self.recovering);
                    } else {
                        self.counters.unexpected += 1;
                    }
                    return;
                };
                let r = *self.rec(i);
                if r.user_ref_num == user_ref_num.0 && !r.accepted {
                    // The enter: the order is finished.
                    self.change(i, |r| r.open = 0);
                } else if r.replace.map(|p| p.user_ref_num) == Some(user_ref_num.0) {
                    // The replace: the original stays as it was.
                    self.by_ref.remove(user_ref_num.0);
                    self.change(i, |r| r.replace = None);
                } else {
                    self.counters.unexpected += 1;
                    return;
                }
                self.counters.rejected += 1;
                self.pending -= 1;
                self.report(i, UpdateKind::Rejected { reason });
            }
        }
    }

    /// Trips the kill switch (from a signal, a file, the CLI): every new
    /// order is refused from now on ([`RiskReject::KillSwitch`]), and a
    /// cancel is sent for every open order ([`Trader::cancel_all`]).
    /// Returns the orders left without a cancel because `out` filled up:
    /// send `out`, clear it, and call [`Trader::cancel_all`] until it
    /// returns 0.
    pub fn trip_kill_switch(&mut self, out: &mut Outbox) -> usize {
        self.risk.trip();
        self.cancel_all(out)
    }

    /// Sends a cancel for every open order not already being cancelled
    /// (both numbers of an order with a replace in flight). Returns the
    /// orders left for lack of room in `out`.
    pub fn cancel_all(&mut self, out: &mut Outbox) -> usize {
        let mut left = 0;
        for i in 0..self.orders.len() {
            let r = self.orders[i];
            if !r.in_use || r.cancel_sent {
                continue;
            }
            let need = 1 + usize::from(r.replace.is_some());
            if out.room() < need {
                left += 1;
                continue;
            }
            self.send_cancels(i as u32, Trigger::NONE, out);
        }
        left
    }

    /// Cancels again, from order slot `from`, every open order whose cancel
    /// went out but was never answered and is not among the `held` cancels
    /// about to go out: a cancel lost with a connection that broke (or
    /// with a flush after a login that failed to leave). Call it after a
    /// login once the session's replay and the answer to the Account Query
    /// were applied: a cancel the exchange processed is answered by then.
    /// OUCH ignores a cancel of an order that is gone, so one sent twice
    /// does no harm. Returns the slot to go on from when `out` filled up,
    /// `None` when done. Not on the hot path (a scan of the order table).
    pub fn recancel_unanswered(
        &mut self,
        out: &mut Outbox,
        from: usize,
        held: &[OrderMsg],
    ) -> Option<usize> {
        for i in from..self.orders.len() {
            let r = self.orders[i];
            if !r.in_use || !r.cancel_sent {
                continue;
            }
            let is_held = held
                .iter()
                .any(|m| matches!(m, OrderMsg::Cancel(c, _) if c.user_ref_num.0 == r.user_ref_num));
            if is_held {
                continue;
            }
            if out.room() < 1 + usize::from(r.replace.is_some()) {
                return Some(i);
            }
            for n in std::iter::once(r.user_ref_num).chain(r.replace.map(|p| p.user_ref_num)) {
                out.push(OrderMsg::Cancel(
                    CancelOrder {
                        user_ref_num: UserRefNum(n),
                        quantity: 0,
                    },
                    Trigger::NONE,
                ));
                self.counters.cancels_resent += 1;
            }
        }
        None
    }

    /// Starts recovery: the trader of a restarted process, before its
    /// session's history is replayed (see
    /// [Recovery](crate::trader#recovery-after-a-restart)). Until
    /// [`Trader::end_recovery`] every enter and replace is refused
    /// ([`RiskReject::Disconnected`]: the position is not known yet), and
    /// an Order Accepted for a number the trader does not know is an
    /// earlier run's order, adopted.
    pub fn begin_recovery(&mut self) {
        self.recovering = true;
        self.adopt_below = u32::MAX;
    }

    /// Ends recovery: the history has been applied (the caller saw the
    /// answer to the Account Query it sent after its login, or gave up
    /// waiting for it). Numbers at or above the allocator's next one are
    /// this process's from now on; an Order Accepted for an unknown lower
    /// number (an earlier run's order the exchange answered late) is still
    /// adopted. When the kill switch was tripped during recovery, cancels
    /// go out for the orders adopted since (returns those left for lack of
    /// room in `out`, as [`Trader::cancel_all`]). Does nothing when not
    /// recovering.
    pub fn end_recovery(&mut self, out: &mut Outbox) -> usize {
        if !self.recovering {
            return 0;
        }
        self.recovering = false;
        self.adopt_below = self.refs.last().saturating_add(1);
        self.counters.recovered_open =
            self.orders.iter().filter(|r| r.in_use && r.adopted).count() as u64;
        if self.killed() {
            self.cancel_all(out)
        } else {
            0
        }
    }

    /// Whether the trader is recovering ([`Trader::begin_recovery`]).
    #[must_use]
    pub fn recovering(&self) -> bool {
        self.recovering
    }

    // ---- queries ------------------------------------------------------

    /// Tells the trader whether its order session is up (logged in). While
    /// it is down, new enters and replaces are refused with
    /// [`RiskReject::Disconnected`] (not queued: a decision taken on market
    /// data must not leave late, after a reconnect); cancels still go into
    /// the outbox, and the caller holds them until the session is back.
    /// Starts connected (a test or simulation without a session).
    pub fn set_connected(&mut self, up: bool) {
        self.connected = up;
    }

    /// Whether the order session is up, as last told.
    #[must_use]
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The strategy.
    #[must_use]
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// The strategy, mutably (reconfiguration between events).
    pub fn strategy_mut(&mut self) -> &mut S {
        &mut self.strategy
    }

    /// The UserRefNum allocator: restore the persisted mark at start-up,
    /// poll and confirm marks to persist.
    pub fn refs_mut(&mut self) -> &mut UserRefNums {
        &mut self.refs
    }

    /// The UserRefNum allocator.
    #[must_use]
    pub fn refs(&self) -> &UserRefNums {
        &self.refs
    }

    /// Risk refusals by reason, and orders passed.
    #[must_use]
    pub fn risk_counters(&self) -> &RiskCounters {
        self.risk.counters()
    }

    /// Whether the kill switch is tripped.
    #[must_use]
    pub fn killed(&self) -> bool {
        self.risk.is_tripped()
    }

    /// The trader's counters.
    #[must_use]
    pub fn counters(&self) -> TraderCounters {
        self.counters
    }

    /// Intents the strategy pushed beyond the buffer's capacity (dropped).
    #[must_use]
    pub fn intents_dropped(&self) -> u64 {
        self.intents.dropped()
    }

    /// The order-count identity.
    #[must_use]
    pub fn accounting(&self) -> Accounting {
        Accounting {
            sent: self.counters.enters_sent + self.counters.replaces_sent,
            accepted: self.counters.accepted,
            rejected: self.counters.rejected,
            pending: self.pending,
        }
    }

    /// The symbol table (slot order).
    #[must_use]
    pub fn symbols(&self) -> &[Stock] {
        &self.symbols
    }

    /// The slot of `symbol`.
    #[must_use]
    pub fn slot(&self, symbol: Stock) -> Option<u16> {
        self.symbols
            .iter()
            .position(|s| *s == symbol)
            .map(|i| i as u16)
    }

    /// Position and P&L of `slot`.
    #[must_use]
    pub fn position(&self, slot: u16) -> Option<&Position> {
        self.positions.get(usize::from(slot))
    }

    /// The last top of `slot` the market layer reported.
    #[must_use]
    pub fn top(&self, slot: u16) -> Option<&TopOfBook> {
        self.tops.get(usize::from(slot))
    }

    /// Exposure of `slot`: position and open shares per side.
    #[must_use]
    pub fn exposure(&self, slot: u16) -> Option<Exposure> {
        self.exposure.get(usize::from(slot)).copied()
    }

    /// Sum of the absolute positions, shares.
    #[must_use]
    pub fn total_position(&self) -> u64 {
        self.positions
            .iter()
            .map(|p| p.shares().unsigned_abs())
            .sum()
    }

    /// Realized P&L over all symbols, price units × shares.
    #[must_use]
    pub fn realized(&self) -> i128 {
        self.positions.iter().map(Position::realized).sum()
    }

    /// Unrealized P&L over all symbols marked to their last tops; `None`
    /// when a symbol with a position has no price on the side to mark.
    #[must_use]
    pub fn unrealized(&self) -> Option<i128> {
        self.positions
            .iter()
            .zip(&self.tops)
            .map(|(p, t)| p.unrealized(t))
            .sum()
    }

    /// Orders open (sent and not finished).
    #[must_use]
    pub fn open_orders(&self) -> u32 {
        self.open_orders
    }

    /// Open orders: (number, slot, side, price, open shares), in table
    /// order (for reports and tests).
    pub fn orders(&self) -> impl Iterator<Item = (UserRefNum, u16, Side, Price4, u32)> + '_ {
        self.orders.iter().filter(|r| r.in_use).map(|r| {
            (
                UserRefNum(r.user_ref_num),
                r.slot,
                r.side,
                Price4::from_raw(r.price),
                r.open,
            )
        })
    }

    /// Recomputes the derived state from the order table and compares it
    /// (tests and simulation).
    ///
    /// # Errors
    /// The first mismatch, described.
    pub fn check_invariants(&self) -> Result<(), String> {
        let n = self.symbols.len();
        let (mut buy, mut sell) = (vec![0u64; n], vec![0u64; n]);
        let (mut open, mut pending, mut refs) = (0u32, 0u64, 0usize);
        for (i, r) in self.orders.iter().enumerate().filter(|(_, r)| r.in_use) {
            open += 1;
            pending += u64::from(!r.accepted) + u64::from(r.replace.is_some());
            let side = if r.side == Side::Buy {
                &mut buy
            } else {
                &mut sell
            };
            side[usize::from(r.slot)] += u64::from(r.exposure());
            for n in std::iter::once(r.user_ref_num).chain(r.replace.map(|p| p.user_ref_num)) {
                refs += 1;
                if self.by_ref.get(n) != Some(i as u32) {
                    return Err(format!("number {n} does not map to its order {i}"));
                }
            }
        }
        if refs != self.by_ref.len() {
            return Err(format!(
                "{} numbers mapped, {refs} in use",
                self.by_ref.len()
            ));
        }
        if open != self.open_orders || pending != self.pending {
            return Err(format!(
                "open {open}/{} pending {pending}/{}",
                self.open_orders, self.pending
            ));
        }
        let mut total = 0;
        for s in 0..n {
            let e = self.exposure[s];
            if e.open_buy != buy[s] || e.open_sell != sell[s] {
                return Err(format!(
                    "slot {s}: exposure {e:?}, orders {}/{}",
                    buy[s], sell[s]
                ));
            }
            if e.position != self.positions[s].shares() {
                return Err(format!(
                    "slot {s}: position {} vs {}",
                    e.position,
                    self.positions[s].shares()
                ));
            }
            total += e.potential();
        }
        if total != self.total_potential {
            return Err(format!(
                "total potential {total} vs {}",
                self.total_potential
            ));
        }
        if !self.accounting().balanced() {
            return Err(format!("accounting {:?}", self.accounting()));
        }
        Ok(())
    }

    // ---- internals ----------------------------------------------------

    fn slot_of(&mut self, locate: u16, symbol: Option<[u8; 8]>) -> Option<u16> {
        let cached = self.locate_slot[usize::from(locate)];
        let sym = symbol?;
        if cached < NOT_TRADED && self.symbols[usize::from(cached)].0 == sym {
            return Some(cached);
        }
        if cached == NOT_TRADED {
            return None;
        }
        // First sight of this locate (or a locate renamed): resolve.
        let slot = self.symbols.iter().position(|s| s.0 == sym);
        let v = slot.map_or(NOT_TRADED, |s| s as u16);
        self.locate_slot[usize::from(locate)] = v;
        slot.map(|s| s as u16)
    }

    fn run_intents(&mut self, now: u64, out: &mut Outbox) {
        let n = self.intents.as_slice().len();
        for k in 0..n {
            let it = self.intents.as_slice()[k];
            let _ = self.submit(&it, now, out);
        }
        self.intents.clear();
    }

    fn rec(&self, i: u32) -> &OrderRec {
        &self.orders[i as usize]
    }

    /// The order whose current number is `n`.
    fn current(&self, n: UserRefNum) -> Option<u32> {
        let i = self.by_ref.get(n.0)?;
        (self.rec(i).user_ref_num == n.0).then_some(i)
    }

    /// An execution or cancel of an order whose Accepted never came: the
    /// exchange evidently accepted it.
    fn implicit_accept(&mut self, i: u32) {
        if !self.rec(i).accepted {
            self.orders[i as usize].accepted = true;
            self.counters.accepted += 1;
            self.pending -= 1;
        }
    }

    /// Applies `f` to the symbol's exposure, keeping the total in step.
    fn reexpose(&mut self, slot: usize, f: impl FnOnce(&mut Exposure)) {
        let e = &mut self.exposure[slot];
        let before = e.potential();
        f(e);
        self.total_potential = self.total_potential - before + e.potential();
    }

    /// Applies `f` to order `i`, keeping its side's open shares in step.
    fn change(&mut self, i: u32, f: impl FnOnce(&mut OrderRec)) {
        let r = &mut self.orders[i as usize];
        let before = u64::from(r.exposure());
        f(r);
        let after = u64::from(r.exposure());
        let (slot, side) = (usize::from(r.slot), r.side);
        self.reexpose(slot, |e| {
            let s = if side == Side::Buy {
                &mut e.open_buy
            } else {
                &mut e.open_sell
            };
            *s = *s - before + after;
        });
    }

    /// Tells the strategy, and frees the order when nothing is open.
    fn report(&mut self, i: u32, kind: UpdateKind) {
        let r = *self.rec(i);
        let done = r.open == 0;
        if !r.adopted {
            self.strategy.on_order(&OrderUpdate {
                user_ref_num: UserRefNum(r.user_ref_num),
                tag: r.tag,
                slot: r.slot,
                side: r.side,
                price: Price4::from_raw(r.price),
                open: r.open,
                done,
                kind,
            });
        }
        if done {
            self.finish(i);
        }
    }

    fn finish(&mut self, i: u32) {
        if let Some(p) = self.rec(i).replace {
            // OUCH drops a replace of an order no longer live.
            self.by_ref.remove(p.user_ref_num);
            self.counters.rejected += 1;
            self.counters.replaces_void += 1;
            self.pending -= 1;
        }
        self.change(i, |r| {
            r.open = 0;
            r.replace = None;
        });
        let r = &mut self.orders[i as usize];
        self.by_ref.remove(r.user_ref_num);
        r.in_use = false;
        r.next_free = self.free_head;
        self.free_head = i;
        self.open_orders -= 1;
    }

    /// Puts `rec` (open 0) in the table under its number; returns its index.
    fn insert_order(&mut self, rec: OrderRec) -> u32 {
        let i = if self.free_head == NO_ORDER {
            self.orders.push(rec);
            (self.orders.len() - 1) as u32
        } else {
            let i = self.free_head;
            self.free_head = self.rec(i).next_free;
            self.orders[i as usize] = rec;
            i
        };
        self.by_ref.insert(rec.user_ref_num, i);
        self.open_orders += 1;
        i
    }

    /// Whether `n` may be an earlier run's number: below the first this
    /// process may use (any while recovering) and not one it knows.
    fn adoptable(&self, n: UserRefNum) -> bool {
        n.0 != 0 && n.0 < self.adopt_below && self.by_ref.get(n.0).is_none()
    }

    /// An Order Accepted for a number the trader does not track: an
    /// earlier run's order, adopted (open as accepted, on its symbol's
    /// exposure); otherwise unexpected.
    fn adopt(
        &mut self,
        n: UserRefNum,
        side: Side,
        symbol: Stock,
        price: Price4,
        quantity: u32,
        live: bool,
    ) {
        // Not on the hot path: a linear search of the symbol table.
        let slot = self.slot(symbol);
        let Some(slot) = slot.filter(|_| self.adoptable(n)) else {
            self.counters.unexpected += 1;
            return;
        };
        let i = self.insert_order(OrderRec {
            user_ref_num: n.0,
            slot,
            side,
            price: price.raw(),
            open: 0,
            executed: 0,
            tag: 0,
            accepted: true,
            cancel_sent: false,
            replace: None,
            in_use: true,
            adopted: true,
            next_free: NO_ORDER,
        });
        self.counters.recovered_orders += 1;
        self.counters.recovered_late += u64::from(!self.recovering);
        self.change(i, |r| r.open = if live { quantity } else { 0 });
        self.report(i, UpdateKind::Accepted);
    }

    fn refused_update(
        &mut self,
        n: UserRefNum,
        r: Result<(), RiskReject>,
    ) -> Result<(), RiskReject> {
        if let Err(e) = r
            && let Some(i) = self.current(n)
        {
            let o = *self.rec(i);
            self.strategy.on_order(&OrderUpdate {
                user_ref_num: n,
                tag: o.tag,
                slot: o.slot,
                side: o.side,
                price: Price4::from_raw(o.price),
                open: o.open,
                done: false,
                kind: UpdateKind::Refused(e),
            });
        }
        r
    }

    /// Checks shared by enters and replaces before risk proper.
    fn precheck(&mut self, out: &Outbox) -> Result<(), RiskReject> {
        if self.risk.is_tripped() {
            return Err(self.risk.refuse(RiskReject::KillSwitch));
        }
        if !self.connected || self.recovering {
            return Err(self.risk.refuse(RiskReject::Disconnected));
        }
        if out.room() == 0 {
            return Err(self.risk.refuse(RiskReject::Backpressure));
        }
        if self.refs.available() == 0 {
            return Err(self.risk.refuse(RiskReject::NoUserRefNum));
        }
        Ok(())
    }

    fn enter(
        &mut self,
        (slot, side, price, quantity): (u16, Side, Price4, u32),
        time_in_force: crate::orders::TimeInForce,
        tag: u32,
        trigger: Trigger,
        now: u64,
        out: &mut Outbox,
    ) -> Result<UserRefNum, RiskReject> {
        let s = usize::from(slot);
        if s >= self.symbols.len() {
            return Err(self.risk.refuse(RiskReject::UnknownSymbol));
        }
        self.precheck(out)?;
        let check = OrderCheck {
            slot,
            side,
            price,
            quantity,
            replaces: None,
        };
        let view = RiskView {
            exposure: self.exposure[s],
            total_potential: self.total_potential,
            top: &self.tops[s],
            open_orders: self.open_orders,
        };
        self.risk.check(&check, &view, now)?;
        let Some(n) = self.refs.allocate() else {
            return Err(self.risk.refuse(RiskReject::NoUserRefNum));
        };
        let rec = OrderRec {
            user_ref_num: n.0,
            slot,
            side,
            price: price.raw(),
            open: 0,
            executed: 0,
            tag,
            accepted: false,
            cancel_sent: false,
            replace: None,
            in_use: true,
            adopted: false,
            next_free: NO_ORDER,
        };
        let i = self.insert_order(rec);
        self.pending += 1;
        self.counters.enters_sent += 1;
        self.change(i, |r| r.open = quantity);
        out.push(OrderMsg::Enter(
            EnterOrder {
                user_ref_num: n,
                side,
                quantity,
                symbol: self.symbols[s],
                price,
                time_in_force,
                display: crate::orders::Display::Visible,
                capacity: crate::orders::Capacity::Principal,
                intermarket_sweep: crate::orders::IntermarketSweep::NotEligible,
                cross_type: crate::orders::CrossType::ContinuousMarket,
                cl_ord_id: ClOrdId::from_trigger(trigger),
            },
            trigger,
        ));
        Ok(n)
    }

    fn replace(
        &mut self,
        n: UserRefNum,
        price: Price4,
        quantity: u32,
        trigger: Trigger,
        now: u64,
        out: &mut Outbox,
    ) -> Result<(), RiskReject> {
        let Some(i) = self.current(n) else {
            return Err(self.risk.refuse(RiskReject::UnknownOrder));
        };
        let r = *self.rec(i);
        if r.replace.is_some() || r.cancel_sent {
            return Err(self.risk.refuse(RiskReject::OrderBusy));
        }
        self.precheck(out)?;
        let s = usize::from(r.slot);
        let check = OrderCheck {
            slot: r.slot,
            side: r.side,
            price,
            quantity,
            replaces: Some(r.exposure()),
        };
        let view = RiskView {
            exposure: self.exposure[s],
            total_potential: self.total_potential,
            top: &self.tops[s],
            open_orders: self.open_orders,
        };
        self.risk.check(&check, &view, now)?;
        let Some(new) = self.refs.allocate() else {
            return Err(self.risk.refuse(RiskReject::NoUserRefNum));
        };
        self.by_ref.insert(new.0, i);
        self.pending += 1;
        self.counters.replaces_sent += 1;
        self.change(i, |r| {
            r.replace = Some(PendingReplace {
                user_ref_num: new.0,
                open: quantity,
            });
        });
        out.push(OrderMsg::Replace(
            ReplaceOrder {
                orig_user_ref_num: n,
                user_ref_num: new,
                quantity: r.executed.saturating_add(quantity),
                price,
                time_in_force: crate::orders::TimeInForce::Day,
                display: crate::orders::Display::Visible,
                intermarket_sweep: crate::orders::IntermarketSweep::NotEligible,
                cl_ord_id: ClOrdId::from_trigger(trigger),
            },
            trigger,
        ));
        Ok(())
    }

    fn cancel(
        &mut self,
        n: UserRefNum,
        trigger: Trigger,
        out: &mut Outbox,
    ) -> Result<(), RiskReject> {
        let Some(i) = self.current(n) else {
            return Err(self.risk.refuse(RiskReject::UnknownOrder));
        };
        let r = *self.rec(i);
        if r.cancel_sent {
            return Err(self.risk.refuse(RiskReject::OrderBusy));
        }
        if out.room() < 1 + usize::from(r.replace.is_some()) {
            return Err(self.risk.refuse(RiskReject::Backpressure));
        }
        self.send_cancels(i, trigger, out);
        Ok(())
    }

    fn send_cancels(&mut self, i: u32, trigger: Trigger, out: &mut Outbox) {
        let r = *self.rec(i);
        for n in std::iter::once(r.user_ref_num).chain(r.replace.map(|p| p.user_ref_num)) {
            out.push(OrderMsg::Cancel(
                CancelOrder {
                    user_ref_num: UserRefNum(n),
                    quantity: 0,
                },
                trigger,
            ));
            self.counters.cancels_sent += 1;
        }
        self.orders[i as usize].cancel_sent = true;
    }
}

#[cfg(test)]
mod tests {
    use super::RefMap;

    #[test]
    fn ref_map_sends_collisions_to_the_far_map() {
        let mut m = RefMap::new(8);
        let size = m.ring.len() as u32;
        m.insert(5, 1);
        // Same ring slot, the first still open: kept in the far map.
        m.insert(5 + size, 2);
        m.insert(5 + 2 * size, 3);
        assert_eq!(m.far.len(), 2);
        assert_eq!(
            (m.get(5), m.get(5 + size), m.get(5 + 2 * size)),
            (Some(1), Some(2), Some(3))
        );
        assert_eq!(m.len(), 3);
        m.remove(5);
        assert_eq!((m.get(5), m.get(5 + size)), (None, Some(2)));
        // The slot is free again: the next number takes it.
        m.insert(5 + 3 * size, 4);
        assert_eq!(m.get(5 + 3 * size), Some(4));
        assert_eq!(m.far.len(), 2);
        m.remove(5 + size);
        m.remove(5 + 2 * size);
        m.remove(5 + 2 * size); // twice: nothing
        m.remove(6); // never there: nothing
        assert_eq!((m.len(), m.far.len()), (1, 0));
        assert_eq!(m.get(0), None, "0 is never a number");
    }
}
