//! Strategies: book and trade events and `now` in, order intents out.
//!
//! Layer: trading engine, after the book ([`crate::market`]) and before
//! risk ([`crate::risk`]). A [`Strategy`] never sees bytes, sockets or
//! clocks: [`crate::trader::Trader`] calls it with
//!
//! - [`Strategy::on_top`] for every change of the best bid, best offer or
//!   trading state of a symbol the trader trades (a [`TopEvent`]: the
//!   [`TopUpdate`] of [`crate::market::MarketData::handle_events`], the
//!   symbol's slot, and the [`Trigger`] — MoldUDP64 sequence number and
//!   receive timestamp — of the packet that caused it);
//! - [`Strategy::on_trade`] for every trade printed in such a symbol
//!   (others' and, since the exchange publishes them too, its own);
//! - [`Strategy::on_order`] for every change of one of its own orders
//!   (sent, refused by risk, accepted, replaced, executed, canceled,
//!   rejected): own executions arrive here;
//! - [`Strategy::on_timer`] when the caller's loop ticks.
//!
//! The first, second and fourth append [`Intent`]s (enter, replace, cancel)
//! to a caller-provided fixed-capacity [`Intents`] buffer: nothing is
//! allocated per event. `on_order` emits nothing: it runs while the trader
//! processes other intents and exchange messages, and a strategy that
//! wants to act on it does so at its next event (this also rules out
//! feedback loops of refusals and retries).
//!
//! Every intent carries the [`Trigger`] of the event that caused it, so
//! the order's ClOrdID can carry it for tick-to-trade.
//!
//! Two sample strategies: [`Taker`] (hits the bid or lifts the offer when
//! the top moves by N ticks) and [`Maker`] (quotes both sides around the
//! BBO, skewed by its position, and cancels or replaces as it moves).

mod maker;
mod taker;

use hftnet_wire::itch50::{Price4, Side, Stock};

pub use maker::{Maker, MakerConfig};
pub use taker::{Taker, TakerConfig};

use crate::market::{TopUpdate, TradeUpdate};
pub use crate::orders::{TimeInForce, Trigger, UserRefNum};
use crate::position::Position;
use crate::risk::RiskReject;

/// What a strategy wants done. Quantities are shares, prices ITCH/OUCH
/// `Price(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// A new order.
    Enter {
        /// The symbol's slot in the trader's table.
        slot: u16,
        /// Side.
        side: Side,
        /// Limit price.
        price: Price4,
        /// Shares.
        quantity: u32,
        /// Day or IOC.
        time_in_force: TimeInForce,
        /// The strategy's own label, echoed in every [`OrderUpdate`] of
        /// the order and its replacements.
        tag: u32,
        /// What caused it.
        trigger: Trigger,
    },
    /// Replace an open order (new price and open quantity; the trader
    /// turns the open quantity into OUCH's chain quantity).
    Replace {
        /// The order, as last reported in an [`OrderUpdate`].
        user_ref_num: UserRefNum,
        /// New price.
        price: Price4,
        /// New open quantity.
        quantity: u32,
        /// What caused it.
        trigger: Trigger,
    },
    /// Cancel what is left of an order.
    Cancel {
        /// The order.
        user_ref_num: UserRefNum,
        /// What caused it.
        trigger: Trigger,
    },
}

impl Intent {
    /// The trigger of the intent.
    #[must_use]
    pub fn trigger(&self) -> Trigger {
        match self {
            Intent::Enter { trigger, .. }
            | Intent::Replace { trigger, .. }
            | Intent::Cancel { trigger, .. } => *trigger,
        }
    }
}

/// Capacity of an [`Intents`] buffer.
pub const INTENTS_CAP: usize = 16;

/// A fixed-capacity buffer of intents (no allocation). A push beyond
/// [`INTENTS_CAP`] is dropped and counted.
#[derive(Debug, Clone)]
pub struct Intents {
    buf: [Intent; INTENTS_CAP],
    len: usize,
    dropped: u64,
}

impl Default for Intents {
    fn default() -> Self {
        Intents {
            buf: [Intent::Cancel {
                user_ref_num: UserRefNum(0),
                trigger: Trigger::NONE,
            }; INTENTS_CAP],
            len: 0,
            dropped: 0,
        }
    }
}

impl Intents {
    /// Appends; `false` (and counted) when full.
    #[inline]
    pub fn push(&mut self, i: Intent) -> bool {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = i;
                self.len += 1;
                true
            }
            None => {
                self.dropped += 1;
                false
            }
        }
    }

    /// The intents pushed since the last [`Intents::clear`].
    #[must_use]
    pub fn as_slice(&self) -> &[Intent] {
        &self.buf[..self.len]
    }

    /// Empties the buffer (the dropped count stays).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Intents dropped because the buffer was full, ever.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A change of the top of one traded symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopEvent {
    /// The symbol's slot in the trader's table.
    pub slot: u16,
    /// The packet that carried the message.
    pub trigger: Trigger,
    /// The change, as the market layer reported it.
    pub update: TopUpdate,
}

/// A trade printed in one traded symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeEvent {
    /// The symbol's slot.
    pub slot: u16,
    /// The packet that carried the message.
    pub trigger: Trigger,
    /// The trade, as the market layer reported it.
    pub trade: TradeUpdate,
}

/// What happened to one of the strategy's orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Refused before it left (nothing was sent); for a replace, the
    /// original order is unchanged.
    Refused(RiskReject),
    /// Sent (an enter; replaces and cancels are not reported when sent).
    Sent,
    /// The exchange accepted it.
    Accepted,
    /// Replaced: `user_ref_num` is now the replacement's.
    Replaced {
        /// The number of the order replaced.
        from: UserRefNum,
    },
    /// Executed, partly or fully.
    Executed {
        /// Shares.
        quantity: u32,
        /// Price.
        price: Price4,
    },
    /// Canceled, partly or fully.
    Canceled {
        /// Shares taken off.
        quantity: u32,
    },
    /// The exchange rejected the enter (then `done`) or a replace (the
    /// original order is unchanged).
    Rejected {
        /// OUCH reject reason (Appendix D).
        reason: crate::orders::RejectReason,
    },
}

/// One change of one own order, as [`Strategy::on_order`] gets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderUpdate {
    /// The order's current number (the replacement's after a replace; 0
    /// for an enter refused before a number was taken).
    pub user_ref_num: UserRefNum,
    /// The strategy's tag of the [`Intent::Enter`] that started the chain.
    pub tag: u32,
    /// Symbol slot.
    pub slot: u16,
    /// Side.
    pub side: Side,
    /// Current price.
    pub price: Price4,
    /// Shares open now (0 once done).
    pub open: u32,
    /// The order is finished: nothing more will be reported for it
    /// (filled, canceled, dead, rejected or refused); a replace or cancel
    /// in flight for it is void.
    pub done: bool,
    /// What happened.
    pub kind: UpdateKind,
}

/// Read-only state a strategy may consult: `now`, and each traded
/// symbol's name and position.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The caller's clock, nanoseconds.
    pub now: u64,
    symbols: &'a [Stock],
    positions: &'a [Position],
}

impl<'a> Ctx<'a> {
    /// A context over the trader's symbol table.
    #[must_use]
    pub fn new(now: u64, symbols: &'a [Stock], positions: &'a [Position]) -> Ctx<'a> {
        Ctx {
            now,
            symbols,
            positions,
        }
    }

    /// The position of the symbol in `slot` (0 for an unknown slot).
    #[must_use]
    pub fn position(&self, slot: u16) -> i64 {
        self.positions
            .get(usize::from(slot))
            .map_or(0, Position::shares)
    }

    /// The symbol in `slot`.
    #[must_use]
    pub fn symbol(&self, slot: u16) -> Option<Stock> {
        self.symbols.get(usize::from(slot)).copied()
    }
}

/// A trading strategy, sans-IO. See the module doc for when each method
/// is called. Implementations must not allocate, block or read a clock in
/// these methods (they run on the hot path); they size their state in
/// their constructor from the trader's symbol table.
pub trait Strategy {
    /// The top of a traded symbol changed.
    fn on_top(&mut self, ev: &TopEvent, ctx: &Ctx<'_>, out: &mut Intents);

    /// A trade printed in a traded symbol. Default: nothing.
    fn on_trade(&mut self, ev: &TradeEvent, ctx: &Ctx<'_>, out: &mut Intents) {
        let _ = (ev, ctx, out);
    }

    /// One of the strategy's orders changed. Default: nothing.
    fn on_order(&mut self, update: &OrderUpdate) {
        let _ = update;
    }

    /// The caller's timer. Default: nothing.
    fn on_timer(&mut self, ctx: &Ctx<'_>, out: &mut Intents) {
        let _ = (ctx, out);
    }
}

/// A strategy configuration out of range or naming a symbol the trader
/// does not trade; the message names the field and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyConfigError(pub String);

impl std::fmt::Display for StrategyConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StrategyConfigError {}

/// `Err` naming `field` unless `v` is in `lo..=hi`.
pub(crate) fn in_range(field: &str, v: u64, lo: u64, hi: u64) -> Result<(), StrategyConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(StrategyConfigError(format!(
            "{field} is {v}; accepted: {lo}..={hi}"
        )))
    }
}

/// A symbol selection of a strategy config resolved against the trader's
/// table: one flag per slot. An empty selection is every slot.
///
/// # Errors
/// The first symbol the trader does not trade, or that is not a symbol.
pub(crate) fn select(
    field: &str,
    selection: &[String],
    table: &[Stock],
) -> Result<Vec<bool>, StrategyConfigError> {
    let mut on = vec![selection.is_empty(); table.len()];
    for s in selection {
        let st = Stock::new(s)
            .ok()
            .filter(|_| !s.is_empty() && !s.contains(' '));
        let Some(st) = st else {
            return Err(StrategyConfigError(format!(
                "{field}: {s:?} is not a symbol; accepted: 1 to 8 printable ASCII characters"
            )));
        };
        match table.iter().position(|t| *t == st) {
            Some(i) => on[i] = true,
            None => {
                return Err(StrategyConfigError(format!(
                    "{field}: {s:?} is not among the trader's symbols"
                )));
            }
        }
    }
    Ok(on)
}

/// Rounds `p` down to a multiple of `tick`.
#[inline]
pub(crate) fn floor_tick(p: i64, tick: i64) -> i64 {
    p.div_euclid(tick) * tick
}

/// Rounds `p` up to a multiple of `tick`.
#[inline]
pub(crate) fn ceil_tick(p: i64, tick: i64) -> i64 {
    -floor_tick(-p, tick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_beyond_capacity_are_dropped_and_counted() {
        let mut b = Intents::default();
        let i = Intent::Cancel {
            user_ref_num: UserRefNum(3),
            trigger: Trigger::NONE,
        };
        for _ in 0..INTENTS_CAP {
            assert!(b.push(i));
        }
        assert!(!b.push(i));
        assert_eq!((b.as_slice().len(), b.dropped()), (INTENTS_CAP, 1));
        b.clear();
        assert!(b.as_slice().is_empty());
        assert_eq!(b.dropped(), 1);
    }

    #[test]
    fn ticks_round_both_ways_for_negative_values_too() {
        assert_eq!((floor_tick(250, 100), ceil_tick(250, 100)), (200, 300));
        assert_eq!((floor_tick(-250, 100), ceil_tick(-250, 100)), (-300, -200));
        assert_eq!((floor_tick(300, 100), ceil_tick(300, 100)), (300, 300));
    }
}
