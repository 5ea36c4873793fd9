//! The sample taker: hits the bid or lifts the offer when the top of book
//! moves by N ticks.
//!
//! Per symbol it keeps a reference bid (the lowest bid since it last
//! fired) and a reference offer (the highest offer since). When the best
//! bid rises N ticks or more above its reference, prices are moving up: it
//! lifts the offer (an IOC buy at the best offer). When the best offer
//! falls N ticks or more below its reference, it hits the bid (an IOC sell
//! at the best bid). After firing it resets both references to the current
//! top and stays quiet on that symbol for the cooldown. It trades only
//! while the symbol's trading state is unknown or `T` (trading), and only
//! when the side it takes is there.

use hftnet_wire::itch50::{Price4, Side, Stock};
use serde::{Deserialize, Serialize};

use super::{Ctx, Intent, Intents, Strategy, StrategyConfigError, TopEvent, in_range, select};
use crate::book::TradingState;
use crate::orders::TimeInForce;

/// Configuration of [`Taker`]. Every field is optional in JSON/TOML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TakerConfig {
    /// Symbols to trade, a subset of the trader's; empty: all of them.
    pub symbols: Vec<String>,
    /// The move that fires, in ticks (N).
    pub ticks: u32,
    /// Price units per tick (100 = one cent).
    pub tick: u32,
    /// Shares per order.
    pub quantity: u32,
    /// Quiet time per symbol after firing, nanoseconds.
    pub cooldown_ns: u64,
}

impl Default for TakerConfig {
    fn default() -> Self {
        TakerConfig {
            symbols: Vec::new(),
            ticks: 2,
            tick: 100,
            quantity: 100,
            cooldown_ns: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct SlotState {
    on: bool,
    ref_bid: Option<u32>,
    ref_ask: Option<u32>,
    quiet_until: u64,
}

/// The taker; see the module doc.
#[derive(Debug, Clone)]
pub struct Taker {
    cfg: TakerConfig,
    move_units: u32,
    slots: Vec<SlotState>,
    fired: u64,
}

impl Taker {
    /// A taker for the trader's symbol table `symbols` (slot order).
    ///
    /// # Errors
    /// A field out of range, or a symbol the trader does not trade.
    pub fn new(cfg: TakerConfig, symbols: &[Stock]) -> Result<Taker, StrategyConfigError> {
        in_range("taker.ticks", cfg.ticks.into(), 1, 10_000)?;
        in_range("taker.tick", cfg.tick.into(), 1, 1_000_000)?;
        in_range("taker.quantity", cfg.quantity.into(), 1, 999_999)?;
        in_range("taker.cooldown_ns", cfg.cooldown_ns, 0, 3_600_000_000_000)?;
        let on = select("taker.symbols", &cfg.symbols, symbols)?;
        let slots = on
            .into_iter()
            .map(|on| SlotState {
                on,
                ..SlotState::default()
            })
            .collect();
        Ok(Taker {
            move_units: cfg.ticks.saturating_mul(cfg.tick),
            cfg,
            slots,
            fired: 0,
        })
    }

    /// Orders emitted so far.
    #[must_use]
    pub fn fired(&self) -> u64 {
        self.fired
    }
}

impl Strategy for Taker {
    #[inline]
    fn on_top(&mut self, ev: &TopEvent, ctx: &Ctx<'_>, out: &mut Intents) {
        let Some(s) = self.slots.get_mut(usize::from(ev.slot)) else {
            return;
        };
        if !s.on {
            return;
        }
        let top = &ev.update.top;
        let bid = top.bid.map(|l| l.price);
        let ask = top.ask.map(|l| l.price);
        let trading = matches!(ev.update.state, None | Some(TradingState::Trading));
        let quiet = ctx.now < s.quiet_until;
        let n = u64::from(self.move_units);
        let up = matches!((bid, s.ref_bid), (Some(b), Some(r)) if u64::from(b) >= u64::from(r) + n);
        let down =
            matches!((ask, s.ref_ask), (Some(a), Some(r)) if u64::from(a) + n <= u64::from(r));
        let take = match (up, down) {
            (true, _) => ask.map(|a| (Side::Buy, a)),
            (false, true) => bid.map(|b| (Side::Sell, b)),
            _ => None,
        };
        if let Some((side, price)) = take.filter(|_| trading && !quiet) {
            let pushed = out.push(Intent::Enter {
                slot: ev.slot,
                side,
                price: Price4::from_raw(price),
                quantity: self.cfg.quantity,
                time_in_force: TimeInForce::Ioc,
                tag: u32::from(ev.slot),
                trigger: ev.trigger,
            });
            if pushed {
                self.fired += 1;
                s.quiet_until = ctx.now.saturating_add(self.cfg.cooldown_ns);
                s.ref_bid = bid;
                s.ref_ask = ask;
                return;
            }
        }
        // Track the extremes the next move is measured from.
        s.ref_bid = match (s.ref_bid, bid) {
            (Some(r), Some(b)) => Some(r.min(b)),
            (r, b) => b.or(r),
        };
        s.ref_ask = match (s.ref_ask, ask) {
            (Some(r), Some(a)) => Some(r.max(a)),
            (r, a) => a.or(r),
        };
    }
}
