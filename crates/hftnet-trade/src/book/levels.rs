//! Price levels of one side of one book: a vector sorted by a side-adjusted
//! key with the best price at the end.
//!
//! The key is the price for bids and its bitwise complement for asks, so
//! on both sides a larger key is a better price and the best level is the
//! last element. Most changes happen near the top of the book, where a
//! push, a pop or an in-place update of the last few elements costs
//! nothing; the search scans the last [`SCAN`] levels linearly and
//! bisects the rest.
//!
//! Invariants (checked by `Book::check_invariants`): keys strictly
//! increasing; every level has at least one order and at least one share.

use super::Side;

/// Levels scanned linearly from the top before bisecting.
const SCAN: usize = 16;

/// One price level, stored with its side-adjusted key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LevelSlot {
    pub(crate) key: u32,
    pub(crate) orders: u32,
    pub(crate) shares: u64,
}

/// A level stored by its side-adjusted key; [`find`] searches any vector of
/// them (the book's [`LevelSlot`], the matching engine's FIFO levels).
pub(crate) trait Keyed {
    /// The side-adjusted key (see the module doc).
    fn key(&self) -> u32;
}

impl Keyed for LevelSlot {
    #[inline]
    fn key(&self) -> u32 {
        self.key
    }
}

/// The sort key of `price` on `side`: larger is better on both sides.
#[inline]
pub(crate) fn key(side: Side, price: u32) -> u32 {
    price ^ side.key_mask()
}

/// The price of `key` on `side` (the key transform is an involution).
#[inline]
pub(crate) fn price(side: Side, key: u32) -> u32 {
    key ^ side.key_mask()
}

/// Position of `key`: `Ok(i)` if level `i` has it, `Err(i)` where it goes.
#[inline]
pub(crate) fn find<L: Keyed>(levels: &[L], key: u32) -> Result<usize, usize> {
    let n = levels.len();
    let lo = n.saturating_sub(SCAN);
    let mut i = n;
    while i > lo {
        let k = levels[i - 1].key();
        if k == key {
            return Ok(i - 1);
        }
        if k < key {
            return Err(i);
        }
        i -= 1;
    }
    // Every level in [lo, n) is better than `key`.
    levels[..lo].binary_search_by_key(&key, Keyed::key)
}

/// Adds an order of `shares` at `key`.
#[inline]
pub(crate) fn add_order(levels: &mut Vec<LevelSlot>, key: u32, shares: u32) {
    match find(levels, key) {
        Ok(i) => {
            let l = &mut levels[i];
            l.orders += 1;
            l.shares += u64::from(shares);
        }
        Err(i) => levels.insert(
            i,
            LevelSlot {
                key,
                orders: 1,
                shares: u64::from(shares),
            },
        ),
    }
}

/// Removes `shares` from the level at `key`, and the order itself when
/// `whole`; drops the level when its last order goes.
#[inline]
pub(crate) fn remove_shares(levels: &mut Vec<LevelSlot>, key: u32, shares: u32, whole: bool) {
    match find(levels, key) {
        Ok(i) => {
            let l = &mut levels[i];
            debug_assert!(
                l.shares >= u64::from(shares),
                "level {l:?} short of {shares}"
            );
            l.shares -= u64::from(shares);
            if whole {
                l.orders -= 1;
                if l.orders == 0 {
                    levels.remove(i);
                }
            }
        }
        Err(_) => debug_assert!(false, "no level at key {key}"),
    }
}

/// Changes one order's shares at `key` from `old` to `new` (both non-zero).
#[inline]
pub(crate) fn resize(levels: &mut [LevelSlot], key: u32, old: u32, new: u32) {
    match find(levels, key) {
        Ok(i) => {
            let l = &mut levels[i];
            l.shares = l.shares - u64::from(old) + u64::from(new);
        }
        Err(_) => debug_assert!(false, "no level at key {key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(levels: &[LevelSlot]) -> Vec<u32> {
        levels.iter().map(|l| l.key).collect()
    }

    #[test]
    fn find_linear_and_bisect_agree_with_a_plain_search() {
        for n in [0usize, 1, 5, SCAN, SCAN + 1, 100] {
            let levels: Vec<LevelSlot> = (0..n)
                .map(|i| LevelSlot {
                    key: 10 + 2 * i as u32,
                    orders: 1,
                    shares: 1,
                })
                .collect();
            for k in 0..(20 + 2 * n as u32) {
                assert_eq!(
                    find(&levels, k),
                    levels.binary_search_by_key(&k, |l| l.key),
                    "n={n} k={k}"
                );
            }
        }
    }

    #[test]
    fn best_is_last_on_both_sides() {
        let mut bids = Vec::new();
        let mut asks = Vec::new();
        for p in [100, 102, 101] {
            add_order(&mut bids, key(Side::Buy, p), 10);
            add_order(&mut asks, key(Side::Sell, p), 10);
        }
        assert_eq!(price(Side::Buy, bids.last().unwrap().key), 102);
        assert_eq!(price(Side::Sell, asks.last().unwrap().key), 100);
        assert!(keys(&bids).windows(2).all(|w| w[0] < w[1]));
        assert!(keys(&asks).windows(2).all(|w| w[0] < w[1]));
        remove_shares(&mut asks, key(Side::Sell, 100), 10, true);
        assert_eq!(price(Side::Sell, asks.last().unwrap().key), 101);
    }
}
