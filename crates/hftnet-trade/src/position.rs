//! Position and P&L of one symbol, from own executions, in exact integers.
//!
//! Layer: trading engine, fed by the order tracker ([`crate::trader`]) with
//! every execution the exchange reports. Money is counted in *price units
//! times shares*: a [`Price4`] raw unit is $0.0001, so `10_000` is one
//! dollar. Everything is `i128`, so no sum of a day's fills can overflow.
//!
//! Realized P&L uses the average-cost method: a fill that reduces the
//! position realizes the difference between its price and the average cost
//! of the shares it closes. The average cost is kept as the total cost of
//! the open position (`basis`), and the part a reduction removes is
//! `basis × closed / position`, truncated toward zero; the remainder stays in
//! the basis, so `realized + unrealized` is always exactly the cash flow plus
//! the position marked to the market — no fraction of a unit is ever lost,
//! only (at most one unit per fill) shifted between the two. Unrealized P&L
//! marks a long position to the best bid and a short one to the best offer:
//! what closing it at the touch would fetch.
//!
//! Nothing here allocates or panics.

use hftnet_wire::itch50::{Price4, Side};

use crate::book::TopOfBook;

/// Position and P&L of one symbol; see the module doc.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    shares: i64,
    basis: i128,
    realized: i128,
    cash: i128,
    bought: u64,
    sold: u64,
    fills: u64,
}

impl Position {
    /// Applies one execution of `quantity` shares at `price` on `side`.
    pub fn fill(&mut self, side: Side, quantity: u32, price: Price4) {
        let q = i64::from(quantity);
        let p = i128::from(price.raw());
        self.fills += 1;
        let signed = match side {
            Side::Buy => {
                self.bought += u64::from(quantity);
                self.cash -= i128::from(q) * p;
                q
            }
            Side::Sell => {
                self.sold += u64::from(quantity);
                self.cash += i128::from(q) * p;
                -q
            }
        };
        // The part that closes an opposite position.
        let closing = if self.shares.signum() * signed.signum() < 0 {
            signed.abs().min(self.shares.abs())
        } else {
            0
        };
        if closing > 0 {
            let removed = self.basis * i128::from(closing) / i128::from(self.shares.abs());
            // Long: sold `closing` shares that cost `removed`; short:
            // bought back `closing` shares sold for `-removed`.
            let value = i128::from(closing) * p;
            self.realized += if self.shares > 0 {
                value - removed
            } else {
                -removed - value
            };
            self.basis -= removed;
            self.shares += closing * signed.signum();
        }
        let opening = signed.abs() - closing;
        if opening > 0 {
            let s = opening * signed.signum();
            self.shares += s;
            self.basis += i128::from(s) * p;
        }
    }

    /// Shares held: positive long, negative short.
    #[must_use]
    pub fn shares(&self) -> i64 {
        self.shares
    }

    /// Total cost of the open position (negative for a short: what selling
    /// it brought in), price units × shares.
    #[must_use]
    pub fn basis(&self) -> i128 {
        self.basis
    }

    /// Realized P&L, price units × shares.
    #[must_use]
    pub fn realized(&self) -> i128 {
        self.realized
    }

    /// Cash flow of every fill: sales minus purchases.
    #[must_use]
    pub fn cash(&self) -> i128 {
        self.cash
    }

    /// Shares bought and sold, and fills applied.
    #[must_use]
    pub fn volume(&self) -> (u64, u64, u64) {
        (self.bought, self.sold, self.fills)
    }

    /// Unrealized P&L marked to `top` (long at the bid, short at the
    /// offer); `Some(0)` when flat, `None` when the side to mark against
    /// is empty.
    #[must_use]
    pub fn unrealized(&self, top: &TopOfBook) -> Option<i128> {
        let mark = match self.shares {
            0 => return Some(0),
            s if s > 0 => top.bid?.price,
            _ => top.ask?.price,
        };
        Some(i128::from(self.shares) * i128::from(mark) - self.basis)
    }

    /// Realized plus unrealized, marked to `top`.
    #[must_use]
    pub fn total(&self, top: &TopOfBook) -> Option<i128> {
        Some(self.realized + self.unrealized(top)?)
    }
}

// Prices in tests are grouped as dollars and ten-thousandths: 10_0500 is
// $10.0500.
#[cfg(test)]
#[allow(clippy::inconsistent_digit_grouping)]
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

    fn px(raw: u32) -> Price4 {
        Price4::from_raw(raw)
    }

    #[test]
    fn long_round_trip() {
        let mut p = Position::default();
        p.fill(Side::Buy, 100, px(10_0000));
        p.fill(Side::Buy, 100, px(11_0000));
        assert_eq!(p.shares(), 200);
        assert_eq!(p.basis(), 2_100_0000);
        // Marked at the bid 12: 200 × 12 − 2100 = 300 dollars.
        assert_eq!(p.unrealized(&top(12_0000, 12_0100)), Some(300_0000));
        // Sell 50 at 12: closes 50 of average 10.50 → +75 dollars.
        p.fill(Side::Sell, 50, px(12_0000));
        assert_eq!(p.realized(), 75_0000);
        assert_eq!(p.shares(), 150);
        assert_eq!(p.basis(), 1_575_0000);
        // Sell 250 at 9: closes 150 (−225) and opens a short of 100 at 9.
        p.fill(Side::Sell, 250, px(9_0000));
        assert_eq!(p.realized(), 75_0000 - 225_0000);
        assert_eq!(p.shares(), -100);
        assert_eq!(p.basis(), -900_0000);
        // Short marked at the offer 8.50: +50 dollars.
        assert_eq!(p.unrealized(&top(8_4900, 8_5000)), Some(50_0000));
        // Buy back 100 at 8.50: flat, +50 realized.
        p.fill(Side::Buy, 100, px(8_5000));
        assert_eq!(p.shares(), 0);
        assert_eq!(p.basis(), 0);
        assert_eq!(p.realized(), -100_0000);
        // Flat: realized equals the cash flow exactly.
        assert_eq!(p.realized(), p.cash());
        assert_eq!(p.volume(), (300, 300, 5));
        assert_eq!(p.unrealized(&TopOfBook::default()), Some(0));
    }

    #[test]
    fn truncation_is_never_lost() {
        // 3 shares at three prices, sold one at a time: the average cost
        // is a third of a unit, truncated each time, yet the total stays
        // exactly cash + marked position.
        let mut p = Position::default();
        for raw in [1, 2, 2] {
            p.fill(Side::Buy, 1, px(raw));
        }
        for _ in 0..2 {
            p.fill(Side::Sell, 1, px(10));
            let t = top(10, 11);
            let marked = i128::from(p.shares()) * 10;
            assert_eq!(p.total(&t), Some(p.cash() + marked));
        }
        p.fill(Side::Sell, 1, px(10));
        assert_eq!(p.realized(), 30 - 5);
        assert_eq!(p.unrealized(&top(0, 1)), Some(0));
    }

    #[test]
    fn no_mark_without_the_side() {
        let mut p = Position::default();
        p.fill(Side::Buy, 1, px(5));
        let only_ask = TopOfBook {
            bid: None,
            ..top(1, 6)
        };
        assert_eq!(p.unrealized(&only_ask), None);
    }
}
