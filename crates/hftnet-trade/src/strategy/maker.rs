//! The sample market maker: quotes a bid and an offer around the BBO and
//! cancels or replaces them as it moves.
//!
//! For each symbol, on every top change with both sides present and the
//! symbol trading (state unknown or `T`):
//!
//! - center = mid − skew, where skew = `position × skew_ticks × tick /
//!   size` price units (long: quotes move down to sell more readily);
//! - bid = center − `width_ticks × tick / 2` rounded down to a tick, offer
//!   = center + the same rounded up; a bid at or above the best offer is
//!   moved one tick below it, an offer at or below the best bid one tick
//!   above it (the quotes never cross the book);
//! - no bid while the position is `max_position` or more, no offer while
//!   it is `−max_position` or less;
//! - per side: no quote wanted and one open → cancel it; one wanted and
//!   none open → enter it (day order, `size` shares); one open at another
//!   price or with fewer shares open → replace it. While an enter,
//!   replace or cancel of a side is in flight (until the exchange answers
//!   or risk refuses), that side waits.
//!
//! A halted symbol, or one side of the book empty, pulls both quotes.
//!
//! Tags: `slot × 2` for the bid, `slot × 2 + 1` for the offer.

use hftnet_wire::itch50::{Price4, Side, Stock};
use serde::{Deserialize, Serialize};

use super::{
    Ctx, Intent, Intents, OrderUpdate, Strategy, StrategyConfigError, TopEvent, UpdateKind,
    UserRefNum, ceil_tick, floor_tick, in_range, select,
};
use crate::book::TradingState;
use crate::orders::{TimeInForce, Trigger};

/// Configuration of [`Maker`]. Every field is optional in JSON/TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MakerConfig {
    /// Symbols to quote, a subset of the trader's; empty: all of them.
    pub symbols: Vec<String>,
    /// Price units per tick (100 = one cent).
    pub tick: u32,
    /// The quoted spread, offer − bid, in ticks (before rounding out to
    /// ticks and clamping to the book).
    pub width_ticks: u32,
    /// Shares per quote.
    pub size: u32,
    /// Position at which the side that would add to it is pulled, shares.
    pub max_position: u32,
    /// Ticks the quotes move per `size` shares of position.
    pub skew_ticks: u32,
}

impl Default for MakerConfig {
    fn default() -> Self {
        MakerConfig {
            symbols: Vec::new(),
            tick: 100,
            width_ticks: 4,
            size: 100,
            max_position: 1_000,
            skew_ticks: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Quote {
    live: Option<(UserRefNum, u32, u32)>,
    busy: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct SlotState {
    on: bool,
    quotes: [Quote; 2],
}

/// The market maker; see the module doc.
#[derive(Debug, Clone)]
pub struct Maker {
    cfg: MakerConfig,
    slots: Vec<SlotState>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

impl Maker {
    /// A maker for the trader's symbol table `symbols` (slot order).
    ///
    /// # Errors
    /// A field out of range, or a symbol the trader does not trade.
    pub fn new(cfg: MakerConfig, symbols: &[Stock]) -> Result<Maker, StrategyConfigError> {
        in_range("maker.tick", cfg.tick.into(), 1, 1_000_000)?;
        in_range("maker.width_ticks", cfg.width_ticks.into(), 1, 10_000)?;
        in_range("maker.size", cfg.size.into(), 1, 999_999)?;
        in_range(
            "maker.max_position",
            cfg.max_position.into(),
            1,
            1_000_000_000,
        )?;
        in_range("maker.skew_ticks", cfg.skew_ticks.into(), 0, 10_000)?;
        let on = select("maker.symbols", &cfg.symbols, symbols)?;
        let slots = on
            .into_iter()
            .map(|on| SlotState {
                on,
                ..SlotState::default()
            })
            .collect();
        Ok(Maker { cfg, slots })
    }

    /// The open quote of `slot` on `side`: number, price, open shares.
    #[must_use]
    pub fn quote(&self, slot: u16, side: Side) -> Option<(UserRefNum, Price4, u32)> {
        let q = self.slots.get(usize::from(slot))?.quotes[side_index(side)];
        q.live.map(|(r, p, o)| (r, Price4::from_raw(p), o))
    }

    /// The prices wanted for `slot` given the top and position.
    fn wanted(&self, bid: u32, ask: u32, position: i64) -> [Option<u32>; 2] {
        let c = &self.cfg;
        let tick = i64::from(c.tick);
        let mid2 = i64::from(bid) + i64::from(ask);
        let skew = position.saturating_mul(i64::from(c.skew_ticks) * tick) / i64::from(c.size);
        let center2 = mid2 - 2 * skew;
        let half2 = i64::from(c.width_ticks) * tick;
        // Twice the prices, then halved: exact for odd spreads.
        let b = floor_tick((center2 - half2).div_euclid(2), tick).min(i64::from(ask) - tick);
        let a = ceil_tick((center2 + half2 + 1).div_euclid(2), tick).max(i64::from(bid) + tick);
        let max = i64::from(c.max_position);
        let ok = |p: i64| (p > 0 && p <= i64::from(u32::MAX)).then_some(p as u32);
        [
            ok(b).filter(|_| position < max),
            ok(a).filter(|_| position > -max),
        ]
    }
}

impl Strategy for Maker {
    fn on_top(&mut self, ev: &TopEvent, ctx: &Ctx<'_>, out: &mut Intents) {
        let Some(s) = self.slots.get(usize::from(ev.slot)) else {
            return;
        };
        if !s.on {
            return;
        }
        let top = &ev.update.top;
        let trading = matches!(ev.update.state, None | Some(TradingState::Trading));
        let wanted = match (top.bid, top.ask) {
            (Some(b), Some(a)) if trading => self.wanted(b.price, a.price, ctx.position(ev.slot)),
            _ => [None, None],
        };
        let size = self.cfg.size;
        let s = &mut self.slots[usize::from(ev.slot)];
        for (i, side) in [Side::Buy, Side::Sell].into_iter().enumerate() {
            let q = &mut s.quotes[i];
            if q.busy {
                continue;
            }
            let intent = match (wanted[i], q.live) {
                (None, Some((r, _, _))) => Some(cancel(r, ev.trigger)),
                (Some(p), None) => Some(Intent::Enter {
                    slot: ev.slot,
                    side,
                    price: Price4::from_raw(p),
                    quantity: size,
                    time_in_force: TimeInForce::Day,
                    tag: u32::from(ev.slot) * 2 + i as u32,
                    trigger: ev.trigger,
                }),
                (Some(p), Some((r, lp, open))) if p != lp || open < size => Some(Intent::Replace {
                    user_ref_num: r,
                    price: Price4::from_raw(p),
                    quantity: size,
                    trigger: ev.trigger,
                }),
                _ => None,
            };
            if let Some(intent) = intent {
                q.busy = out.push(intent);
            }
        }
    }

    fn on_order(&mut self, u: &OrderUpdate) {
        let slot = (u.tag / 2) as usize;
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        let q = &mut s.quotes[(u.tag % 2) as usize];
        match u.kind {
            UpdateKind::Sent => return,
            UpdateKind::Refused(_) | UpdateKind::Rejected { .. } => q.busy = false,
            UpdateKind::Accepted | UpdateKind::Replaced { .. } => {
                q.busy = false;
                q.live = Some((u.user_ref_num, u.price.raw(), u.open));
            }
            UpdateKind::Executed { .. } | UpdateKind::Canceled { .. } => {
                if let Some(l) = &mut q.live {
                    l.2 = u.open;
                }
            }
        }
        if u.done {
            q.live = None;
            q.busy = false;
        }
    }
}

fn cancel(user_ref_num: UserRefNum, trigger: Trigger) -> Intent {
    Intent::Cancel {
        user_ref_num,
        trigger,
    }
}
