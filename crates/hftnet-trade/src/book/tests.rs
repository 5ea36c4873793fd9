//! Tests of the book: each operation's exact effect, the anomaly policies,
//! selection, the ref window, and a randomized comparison against a naive
//! `BTreeMap` model after every message.

use std::collections::BTreeMap;

use super::*;

const AAPL: [u8; 8] = *b"AAPL    ";
const MSFT: [u8; 8] = *b"MSFT    ";
const TSLA: [u8; 8] = *b"TSLA    ";

fn small(symbols: Symbols) -> BookConfig {
    BookConfig {
        max_orders: 64,
        max_locates: 16,
        ref_window: REF_CHUNK * 4,
        ref_window_prealloc: REF_CHUNK,
        levels_per_side: 4,
        symbols,
    }
}

fn book() -> Book {
    let mut b = Book::new(small(Symbols::All)).unwrap();
    b.stock_directory(1, AAPL);
    b
}

fn lv(price: u32, shares: u64, orders: u32) -> Level {
    Level {
        price,
        shares,
        orders,
    }
}

fn bids(b: &Book, locate: u16) -> Vec<Level> {
    b.levels(locate, Side::Buy).collect()
}

fn asks(b: &Book, locate: u16) -> Vec<Level> {
    b.levels(locate, Side::Sell).collect()
}

fn ok(b: &Book) -> InvariantReport {
    match b.check_invariants() {
        Ok(r) => r,
        Err(e) => panic!("invariant violated: {e}"),
    }
}

// ------------------------------------------------------------------ add

#[test]
fn add_builds_levels_and_reports_top_changes() {
    let mut b = book();
    assert_eq!(b.add(1, 10, Side::Buy, 100, 10_000), TopChange::BID);
    assert_eq!(b.add(1, 11, Side::Sell, 50, 10_100), TopChange::ASK);
    // Worse bid: a new level below the top, no change.
    assert_eq!(b.add(1, 12, Side::Buy, 30, 9_900), TopChange::NONE);
    // Same price as the best: shares and count at the top change.
    assert_eq!(b.add(1, 13, Side::Buy, 20, 10_000), TopChange::BID);
    // Better offer.
    assert_eq!(b.add(1, 14, Side::Sell, 5, 10_050), TopChange::ASK);
    assert_eq!(bids(&b, 1), vec![lv(10_000, 120, 2), lv(9_900, 30, 1)]);
    assert_eq!(asks(&b, 1), vec![lv(10_050, 5, 1), lv(10_100, 50, 1)]);
    assert_eq!(
        b.top(1),
        TopOfBook {
            bid: Some(lv(10_000, 120, 2)),
            ask: Some(lv(10_050, 5, 1)),
        }
    );
    assert_eq!(b.live_orders(), 5);
    assert_eq!(b.orders_at(1), 5);
    assert_eq!(
        b.order(12),
        Some(OrderInfo {
            order_ref: 12,
            locate: 1,
            side: Side::Buy,
            shares: 30,
            price: 9_900
        })
    );
    let c = b.counters();
    assert_eq!((c.adds, c.top_changes), (5, 4));
    let r = ok(&b);
    assert_eq!((r.live_orders, r.levels), (5, 4));
    assert!(r.crossed.is_empty() && r.locked.is_empty());
}

#[test]
fn levels_iterate_best_first_and_take_n() {
    let mut b = book();
    for (i, p) in [100u32, 105, 103, 101, 104, 102].into_iter().enumerate() {
        b.add(1, i as u64 + 1, Side::Buy, 10, p);
        b.add(1, i as u64 + 100, Side::Sell, 10, p + 10);
    }
    let top3: Vec<u32> = b.levels(1, Side::Buy).take(3).map(|l| l.price).collect();
    assert_eq!(top3, vec![105, 104, 103]);
    let top3: Vec<u32> = b.levels(1, Side::Sell).take(3).map(|l| l.price).collect();
    assert_eq!(top3, vec![110, 111, 112]);
    assert_eq!(b.levels(1, Side::Sell).len(), 6);
    assert_eq!(b.levels(1, Side::Buy).next_back().unwrap().price, 100);
    assert_eq!(b.levels(2, Side::Buy).count(), 0);
    assert_eq!(b.levels(999, Side::Buy).count(), 0);
    assert_eq!(b.best_bid(1).unwrap().price, 105);
    assert_eq!(b.best_ask(1).unwrap().price, 110);
    assert_eq!(b.best(1, Side::Sell), b.best_ask(1));
    assert_eq!(b.top(999), TopOfBook::default());
}

// ------------------------------------------------------- execute, cancel

#[test]
fn execute_reduces_then_removes() {
    let mut b = book();
    b.add(1, 1, Side::Sell, 100, 500);
    b.add(1, 2, Side::Sell, 40, 500);
    b.add(1, 3, Side::Sell, 10, 510);
    assert_eq!(b.execute(1, 1, 30), TopChange::ASK);
    assert_eq!(asks(&b, 1), vec![lv(500, 110, 2), lv(510, 10, 1)]);
    assert_eq!(b.order(1).unwrap().shares, 70);
    // The rest of order 1: removed, level keeps order 2.
    assert_eq!(b.execute(1, 1, 70), TopChange::ASK);
    assert_eq!(b.order(1), None);
    assert_eq!(asks(&b, 1), vec![lv(500, 40, 1), lv(510, 10, 1)]);
    // Execute below the top: no top change.
    assert_eq!(b.execute(1, 3, 5), TopChange::NONE);
    assert_eq!(b.execute(1, 2, 40), TopChange::ASK);
    assert_eq!(asks(&b, 1), vec![lv(510, 5, 1)]);
    let c = b.counters();
    assert_eq!((c.executes, c.oversized, c.unknown_ref), (4, 0, 0));
    ok(&b);
}

#[test]
fn execute_with_price_does_not_move_the_level() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 100, 20_000);
    // Printed at another price (e.g. a cross): the resting order's price
    // and level stay.
    assert_eq!(b.execute_with_price(1, 1, 25, 19_950), TopChange::BID);
    assert_eq!(bids(&b, 1), vec![lv(20_000, 75, 1)]);
    assert_eq!(b.order(1).unwrap().price, 20_000);
    assert_eq!(b.execute_with_price(1, 1, 75, 20_100), TopChange::BID);
    assert!(bids(&b, 1).is_empty());
    assert_eq!(b.counters().executes, 2);
    ok(&b);
}

#[test]
fn cancel_reduces_and_exact_cancel_removes() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 100, 700);
    b.add(1, 2, Side::Buy, 100, 690);
    assert_eq!(b.cancel(1, 2, 60), TopChange::NONE);
    assert_eq!(bids(&b, 1), vec![lv(700, 100, 1), lv(690, 40, 1)]);
    assert_eq!(b.cancel(1, 1, 100), TopChange::BID);
    assert_eq!(bids(&b, 1), vec![lv(690, 40, 1)]);
    let c = b.counters();
    assert_eq!((c.cancels, c.oversized), (2, 0));
    ok(&b);
}

#[test]
fn oversized_execute_and_cancel_are_counted_and_remove() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 700);
    b.add(1, 2, Side::Sell, 10, 800);
    b.add(1, 3, Side::Sell, 10, 800);
    assert_eq!(b.execute(1, 1, 11), TopChange::BID);
    assert_eq!(b.cancel(1, 2, 1_000), TopChange::ASK);
    assert_eq!(b.order(1), None);
    assert_eq!(b.order(2), None);
    assert_eq!(asks(&b, 1), vec![lv(800, 10, 1)]);
    assert_eq!(b.counters().oversized, 2);
    ok(&b);
}

// ------------------------------------------------------------- delete

#[test]
fn delete_removes_the_order_and_empty_levels() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 700);
    b.add(1, 2, Side::Buy, 20, 700);
    b.add(1, 3, Side::Buy, 30, 600);
    assert_eq!(b.delete(1, 3), TopChange::NONE);
    assert_eq!(bids(&b, 1), vec![lv(700, 30, 2)]);
    assert_eq!(b.delete(1, 1), TopChange::BID);
    assert_eq!(bids(&b, 1), vec![lv(700, 20, 1)]);
    assert_eq!(b.delete(1, 2), TopChange::BID);
    assert_eq!(b.top(1), TopOfBook::default());
    assert_eq!(b.live_orders(), 0);
    assert_eq!(b.delete(1, 2), TopChange::NONE);
    assert_eq!(b.counters().unknown_ref, 1);
    ok(&b);
}

// ------------------------------------------------------------ replace

#[test]
fn replace_keeps_side_and_moves_to_new_ref_and_price() {
    let mut b = book();
    b.add(1, 1, Side::Sell, 100, 1_000);
    b.add(1, 2, Side::Sell, 50, 1_010);
    // Move the best offer behind the other one: new ref, new price, same side.
    assert_eq!(b.replace(1, 1, 7, 80, 1_020), TopChange::ASK);
    assert_eq!(b.order(1), None);
    assert_eq!(
        b.order(7),
        Some(OrderInfo {
            order_ref: 7,
            locate: 1,
            side: Side::Sell,
            shares: 80,
            price: 1_020
        })
    );
    assert_eq!(asks(&b, 1), vec![lv(1_010, 50, 1), lv(1_020, 80, 1)]);
    assert!(bids(&b, 1).is_empty());
    // Same price, new size: the level is resized.
    assert_eq!(b.replace(1, 2, 8, 60, 1_010), TopChange::ASK);
    assert_eq!(asks(&b, 1), vec![lv(1_010, 60, 1), lv(1_020, 80, 1)]);
    // Same price and size: the top is unchanged (only priority is lost).
    assert_eq!(b.replace(1, 8, 9, 60, 1_010), TopChange::NONE);
    assert_eq!(b.order(9).unwrap().shares, 60);
    // Below the top: no change.
    assert_eq!(b.replace(1, 7, 10, 1, 1_030), TopChange::NONE);
    assert_eq!(asks(&b, 1), vec![lv(1_010, 60, 1), lv(1_030, 1, 1)]);
    assert_eq!(b.counters().replaces, 4);
    assert_eq!(b.live_orders(), 2);
    ok(&b);
}

#[test]
fn replace_of_a_buy_stays_a_buy_even_above_the_offer() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 100);
    b.add(1, 2, Side::Sell, 10, 110);
    assert_eq!(b.replace(1, 1, 3, 10, 120), TopChange::BID);
    assert_eq!(b.order(3).unwrap().side, Side::Buy);
    let r = ok(&b);
    assert_eq!(r.crossed, vec![1]);
    b.replace(1, 3, 4, 10, 110);
    let r = ok(&b);
    assert_eq!((r.crossed.len(), r.locked.clone()), (0, vec![1]));
}

#[test]
fn replace_to_a_live_new_ref_removes_the_stale_order() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 100);
    b.add(1, 2, Side::Sell, 20, 200);
    let c = b.replace(1, 1, 2, 30, 105);
    assert_eq!(c, TopChange::BID | TopChange::ASK);
    assert_eq!(b.order(1), None);
    assert_eq!(b.order(2).unwrap().side, Side::Buy);
    assert_eq!(bids(&b, 1), vec![lv(105, 30, 1)]);
    assert!(asks(&b, 1).is_empty());
    assert_eq!(b.counters().duplicate_ref, 1);
    ok(&b);
}

#[test]
fn replace_with_zero_shares_removes_the_original_only() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 100);
    assert_eq!(b.replace(1, 1, 2, 0, 101), TopChange::BID);
    assert_eq!((b.order(1), b.order(2)), (None, None));
    assert_eq!(b.counters().zero_shares, 1);
    ok(&b);
}

// ---------------------------------------------------------- anomalies

#[test]
fn unknown_refs_are_counted_and_change_nothing() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 100);
    let d = b.digest();
    assert_eq!(b.execute(1, 99, 1), TopChange::NONE);
    assert_eq!(b.cancel(1, 99, 1), TopChange::NONE);
    assert_eq!(b.delete(1, 99), TopChange::NONE);
    assert_eq!(b.replace(1, 99, 100, 1, 1), TopChange::NONE);
    assert_eq!(b.counters().unknown_ref, 4);
    assert_eq!(b.digest(), d);
    assert_eq!(b.order(100), None);
    ok(&b);
}

#[test]
fn duplicate_add_keeps_the_newest() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 100);
    assert_eq!(
        b.add(1, 1, Side::Sell, 20, 90),
        TopChange::BID | TopChange::ASK
    );
    assert_eq!(b.order(1).unwrap().side, Side::Sell);
    assert!(bids(&b, 1).is_empty());
    assert_eq!(asks(&b, 1), vec![lv(90, 20, 1)]);
    // A duplicate of an order of another locate moves it here.
    b.add(2, 5, Side::Buy, 1, 50);
    assert_eq!(b.add(1, 5, Side::Buy, 2, 60), TopChange::BID);
    assert_eq!(b.orders_at(2), 0);
    assert!(bids(&b, 2).is_empty());
    assert_eq!(b.counters().duplicate_ref, 2);
    ok(&b);
}

#[test]
fn zero_shares_are_ignored() {
    let mut b = book();
    assert_eq!(b.add(1, 1, Side::Buy, 0, 100), TopChange::NONE);
    assert_eq!(b.order(1), None);
    b.add(1, 2, Side::Buy, 5, 100);
    assert_eq!(b.execute(1, 2, 0), TopChange::NONE);
    assert_eq!(b.cancel(1, 2, 0), TopChange::NONE);
    assert_eq!(b.order(2).unwrap().shares, 5);
    assert_eq!(b.counters().zero_shares, 3);
    ok(&b);
}

/// The books are grown to the highest locate a message names, not made
/// for all `max_locates` up front: a locate never named reads as an empty,
/// active (all-symbols) book, answers as one in queries and snapshots, and
/// the digest and checks are those of a book made whole.
#[test]
fn locates_not_named_yet_read_as_empty_books() {
    let mut b = Book::new(small(Symbols::All)).unwrap();
    assert!(b.is_active(15) && !b.is_active(16));
    let empty = b.snapshot(15).unwrap();
    assert!(empty.bids.is_empty() && empty.asks.is_empty() && empty.orders.is_empty());
    assert_eq!(b.top(15), TopOfBook::default());
    let blank = b.digest();
    // An order on the last locate, then gone: the digest of the empty book.
    b.add(15, 7, Side::Sell, 5, 100);
    assert_eq!(b.snapshot(15).unwrap().asks, vec![lv(100, 5, 1)]);
    b.delete(15, 7);
    assert_eq!(b.digest(), blank);
    ok(&b);
    // Selected mode: a locate no directory named is inactive, named or not.
    let mut sel = Book::new(small(Symbols::Selected(vec![MSFT]))).unwrap();
    assert!(!sel.is_active(3));
    assert_eq!(sel.add(3, 1, Side::Buy, 5, 100), TopChange::NONE);
    assert_eq!(sel.counters().filtered, 1);
    sel.stock_directory(3, MSFT);
    assert!(sel.is_active(3));
    // Merging books of different extents: the shorter grows.
    let mut far = Book::new(small(Symbols::All)).unwrap();
    far.add(9, 1, Side::Buy, 5, 100);
    let mut near = Book::new(small(Symbols::All)).unwrap();
    near.add(2, 2, Side::Buy, 6, 101);
    near.absorb(far).unwrap();
    assert_eq!(near.snapshot(9).unwrap().bids, vec![lv(100, 5, 1)]);
    assert_eq!(near.live_orders(), 2);
    ok(&near);
}

#[test]
fn locates_out_of_range_and_mismatched_are_counted() {
    let mut b = book();
    assert_eq!(b.add(16, 1, Side::Buy, 5, 100), TopChange::NONE);
    assert_eq!(b.stock_directory(u16::MAX, MSFT), TopChange::NONE);
    assert_eq!(b.trading_action(16, b'T'), TopChange::NONE);
    assert_eq!(b.execute(16, 1, 1), TopChange::NONE);
    assert_eq!(b.counters().bad_locate, 4);
    assert_eq!(b.snapshot(16), None);
    assert_eq!(b.symbol(16), None);
    b.add(1, 2, Side::Buy, 5, 100);
    // The ref is live under locate 1: a message with locate 3 is ignored.
    assert_eq!(b.delete(3, 2), TopChange::NONE);
    assert_eq!(b.execute(3, 2, 1), TopChange::NONE);
    assert_eq!(b.replace(3, 2, 4, 1, 1), TopChange::NONE);
    assert_eq!(b.counters().locate_mismatch, 3);
    assert_eq!(b.order(2).unwrap().shares, 5);
    ok(&b);
}

#[test]
fn all_symbols_mode_keeps_locates_without_a_directory_entry() {
    let mut b = Book::new(small(Symbols::All)).unwrap();
    assert!(b.is_active(9));
    assert_eq!(b.add(9, 1, Side::Buy, 5, 100), TopChange::BID);
    assert_eq!(b.symbol(9), None);
    // The directory arriving late keeps the orders.
    assert_eq!(b.stock_directory(9, TSLA), TopChange::NONE);
    assert_eq!(b.orders_at(9), 1);
    assert_eq!(b.symbol(9), Some(TSLA));
    assert_eq!(b.counters().filtered, 0);
    ok(&b);
}

// ------------------------------------------------------------ selection

#[test]
fn selected_symbols_keep_only_their_books() {
    let mut b = Book::new(small(Symbols::Selected(vec![AAPL, TSLA]))).unwrap();
    // Before any directory message nothing is kept.
    assert!(!b.is_active(1));
    assert_eq!(b.add(1, 1, Side::Buy, 5, 100), TopChange::NONE);
    assert_eq!(b.counters().filtered, 1);
    b.stock_directory(1, AAPL);
    b.stock_directory(2, MSFT);
    b.stock_directory(3, TSLA);
    assert!(b.is_active(1) && !b.is_active(2) && b.is_active(3));
    assert_eq!(b.symbol(2), Some(MSFT));
    assert_eq!(b.add(1, 10, Side::Buy, 5, 100), TopChange::BID);
    assert_eq!(b.add(2, 11, Side::Buy, 5, 100), TopChange::NONE);
    assert_eq!(b.add(3, 12, Side::Sell, 5, 100), TopChange::ASK);
    // Messages for the filtered locate are dropped without a lookup.
    assert_eq!(b.execute(2, 11, 1), TopChange::NONE);
    assert_eq!(b.cancel(2, 11, 1), TopChange::NONE);
    assert_eq!(b.delete(2, 11), TopChange::NONE);
    assert_eq!(b.replace(2, 11, 13, 1, 1), TopChange::NONE);
    assert_eq!(b.trading_action(2, b'H'), TopChange::NONE);
    assert_eq!(b.trading_state(2), None);
    let c = b.counters();
    assert_eq!((c.filtered, c.unknown_ref), (7, 0));
    assert_eq!(b.order(11), None);
    assert_eq!(b.live_orders(), 2);
    assert!(b.snapshot(2).unwrap().orders.is_empty());
    ok(&b);
}

#[test]
fn a_locate_renamed_drops_its_orders() {
    let mut b = Book::new(small(Symbols::Selected(vec![AAPL, TSLA]))).unwrap();
    b.stock_directory(1, AAPL);
    b.add(1, 1, Side::Buy, 5, 100);
    b.add(1, 2, Side::Sell, 5, 110);
    b.trading_action(1, b'T');
    // Same symbol again: nothing happens.
    assert_eq!(b.stock_directory(1, AAPL), TopChange::NONE);
    assert_eq!(b.live_orders(), 2);
    // Renamed to a symbol not kept: orders and state gone, book off.
    let c = b.stock_directory(1, MSFT);
    assert_eq!(c, TopChange::BID | TopChange::ASK | TopChange::STATE);
    assert!(!b.is_active(1));
    assert_eq!((b.live_orders(), b.trading_state(1)), (0, None));
    assert_eq!(b.order(1), None);
    assert_eq!(b.counters().relocated, 1);
    ok(&b);
    // Renamed to a kept one: active again, empty.
    assert_eq!(b.stock_directory(1, TSLA), TopChange::NONE);
    assert!(b.is_active(1));
    assert_eq!(b.add(1, 3, Side::Buy, 5, 100), TopChange::BID);
    ok(&b);
}

// ------------------------------------------------------- trading action

#[test]
fn trading_action_records_the_state() {
    let mut b = book();
    assert_eq!(b.trading_state(1), None);
    assert_eq!(b.trading_action(1, b'H'), TopChange::STATE);
    assert_eq!(b.trading_state(1), Some(TradingState::Halted));
    assert_eq!(b.trading_action(1, b'H'), TopChange::NONE);
    assert_eq!(b.trading_action(1, b'Q'), TopChange::STATE);
    assert_eq!(b.trading_action(1, b'P'), TopChange::STATE);
    assert_eq!(b.trading_action(1, b'T'), TopChange::STATE);
    assert_eq!(b.trading_state(1), Some(TradingState::Trading));
    assert_eq!(b.trading_action(1, b'Z'), TopChange::NONE);
    assert_eq!(b.trading_state(1), Some(TradingState::Trading));
    let c = b.counters();
    assert_eq!((c.trading_actions, c.bad_state, c.top_changes), (6, 1, 0));
    for s in [b'H', b'P', b'Q', b'T'] {
        assert_eq!(TradingState::from_itch(s).unwrap().to_itch(), s);
    }
    assert_eq!(Side::from_itch(b'B'), Some(Side::Buy));
    assert_eq!(Side::from_itch(b'S').map(Side::to_itch), Some(b'S'));
    assert_eq!(Side::from_itch(b'X'), None);
}

// ------------------------------------------------------------ ref window

#[test]
fn refs_far_outside_the_window_still_work() {
    let cfg = BookConfig {
        ref_window: 2 * REF_CHUNK,
        ref_window_prealloc: 0,
        ..small(Symbols::All)
    };
    let mut b = Book::new(cfg).unwrap();
    let mut wide = Book::new(BookConfig {
        max_locates: 16,
        ..BookConfig::default()
    })
    .unwrap();
    let base = 5_000_000_000u64;
    let mut both = |f: &mut dyn FnMut(&mut Book)| {
        f(&mut b);
        f(&mut wide);
    };
    // An old resting order, then a stream of short-lived ones pushing the
    // window past it.
    both(&mut |x| {
        x.add(1, base, Side::Buy, 100, 1_000);
    });
    for k in 1..(5 * REF_CHUNK as u64) {
        both(&mut |x| {
            x.add(1, base + k, Side::Sell, 1, 2_000 + (k % 7) as u32);
            x.delete(1, base + k);
        });
    }
    // A live order in the window, one below it, and a one-off jump far
    // ahead.
    let recent = base + 5 * REF_CHUNK as u64 + 1;
    both(&mut |x| {
        x.add(1, recent, Side::Buy, 2, 800);
        x.add(1, 17, Side::Sell, 3, 1_500);
        x.add(1, u64::MAX - 1, Side::Buy, 4, 900);
    });
    let st = b.index_stats();
    assert!(st.far_refs >= 3, "{st:?}");
    assert!(st.evicted_chunks >= 1, "{st:?}");
    assert!(st.window_chunks <= 2, "{st:?}");
    assert!(st.chunk_buffers <= 2, "{st:?}");
    assert_eq!(b.digest(), wide.digest());
    for x in [&mut b, &mut wide] {
        assert_eq!(x.order(base).unwrap().shares, 100);
        assert_eq!(x.execute(1, base, 40), TopChange::BID);
        assert_eq!(x.cancel(1, 17, 3), TopChange::ASK);
        assert_eq!(
            x.replace(1, u64::MAX - 1, u64::MAX, 5, 950),
            TopChange::NONE
        );
        assert_eq!(x.order(u64::MAX).unwrap().price, 950);
        assert_eq!(x.counters().unknown_ref, 0);
        ok(x);
    }
    assert_eq!(b.digest(), wide.digest());
    assert_eq!(b.snapshot(1), wide.snapshot(1));
    b.delete(1, base);
    b.delete(1, u64::MAX);
    b.delete(1, recent);
    assert_eq!(b.index_stats().far_refs, 0);
    assert_eq!(b.live_orders(), 0);
    ok(&b);
}

/// Buffers reserved after construction (on the thread that will use
/// them) serve as the preallocation does: none counted as grown, and the
/// window fills them before it grows; reserving past the window stops at
/// it, and what exists already counts.
#[test]
fn reserved_buffers_are_a_preallocation_made_later() {
    let mut b = Book::new(BookConfig {
        ref_window_prealloc: 0,
        ..small(Symbols::All)
    })
    .unwrap();
    assert_eq!(b.index_stats().chunk_buffers, 0);
    b.reserve_refs(2 * REF_CHUNK);
    assert_eq!(b.index_stats().chunk_buffers, 2);
    b.reserve_refs(REF_CHUNK);
    assert_eq!(b.index_stats().chunk_buffers, 2, "what exists counts");
    assert_eq!(b.config().ref_window_prealloc, 2 * REF_CHUNK);
    b.reserve_refs(usize::MAX);
    assert_eq!(b.index_stats().chunk_buffers, 4, "at most the window's");
    assert_eq!(b.config().ref_window_prealloc, b.config().ref_window);
    let chunk = REF_CHUNK as u64;
    for r in [0, chunk, 2 * chunk, 3 * chunk] {
        b.add(1, r, Side::Buy, 1, 100);
    }
    assert_eq!(b.counters().pool_grows, 0);
    assert_eq!(b.index_stats().chunk_buffers, 4);
    ok(&b);
}

#[test]
fn the_order_storage_grows_past_its_preallocation() {
    // Orders live in the ref index: storage grows a chunk at a time once
    // the preallocation is used (max_orders reserves nothing).
    let mut b = Book::new(BookConfig {
        max_orders: 4,
        ref_window_prealloc: 0,
        ..small(Symbols::All)
    })
    .unwrap();
    for r in 0..100u64 {
        b.add(1, r, Side::Buy, 1, 100 + (r % 10) as u32);
    }
    assert_eq!(b.live_orders(), 100);
    assert_eq!(b.counters().pool_grows, 1);
    assert_eq!(bids(&b, 1).len(), 10);
    ok(&b);
    // Moving on to the next chunk while the first still holds orders
    // takes a second buffer; the one after that reuses the first's.
    let chunk = REF_CHUNK as u64;
    for r in 0..100u64 {
        b.delete(1, r);
        b.add(1, chunk + r, Side::Sell, 2, 200);
    }
    assert_eq!(b.counters().pool_grows, 2);
    assert_eq!(asks(&b, 1), vec![lv(200, 200, 100)]);
    for r in 0..100u64 {
        b.delete(1, chunk + r);
        b.add(1, 2 * chunk + r, Side::Sell, 3, 300);
    }
    assert_eq!(b.counters().pool_grows, 2);
    assert_eq!(b.index_stats().chunk_buffers, 2);
    assert_eq!(asks(&b, 1), vec![lv(300, 300, 100)]);
    ok(&b);
}

// ----------------------------------------------------- config, checks

#[test]
fn hot_structures_keep_their_documented_sizes() {
    assert_eq!(std::mem::size_of::<OrderRec>(), 16);
    assert!(std::mem::size_of::<LocateBook>() <= 64);
    assert_eq!(std::mem::size_of::<levels::LevelSlot>(), 16);
    assert_eq!(std::mem::size_of::<TopChange>(), 1);
}

#[test]
fn order_records_never_straddle_a_cache_line() {
    assert_eq!(std::mem::size_of::<OrderRec>(), 16);
    assert_eq!(std::mem::align_of::<OrderRec>(), 16);
    let mut b = book();
    for r in 1..10 {
        b.add(1, r, Side::Buy, 100, 10_000);
        let p = b.ref_entry_hint(r).unwrap();
        assert_eq!(p.addr() % 16, 0);
        assert_eq!(b.order_slot_hint(r), Some(p));
    }
    assert_eq!(b.order_slot_hint(99), None);
}

#[test]
fn nonsense_configs_are_rejected_with_the_field_named() {
    let base = small(Symbols::All);
    let cases: Vec<(BookConfig, &str)> = vec![
        (
            BookConfig {
                max_orders: 0,
                ..base.clone()
            },
            "max_orders",
        ),
        (
            BookConfig {
                max_locates: 0,
                ..base.clone()
            },
            "max_locates",
        ),
        (
            BookConfig {
                max_locates: MAX_LOCATES + 1,
                ..base.clone()
            },
            "max_locates",
        ),
        (
            BookConfig {
                ref_window: REF_CHUNK + 1,
                ..base.clone()
            },
            "ref_window",
        ),
        (
            BookConfig {
                ref_window: 0,
                ..base.clone()
            },
            "ref_window",
        ),
        (
            BookConfig {
                ref_window_prealloc: base.ref_window + 1,
                ..base.clone()
            },
            "ref_window_prealloc",
        ),
        (
            BookConfig {
                levels_per_side: MAX_LEVELS_PER_SIDE + 1,
                ..base.clone()
            },
            "levels_per_side",
        ),
        (
            BookConfig {
                symbols: Symbols::Selected(vec![]),
                ..base.clone()
            },
            "selection is empty",
        ),
        (
            BookConfig {
                symbols: Symbols::Selected(vec![*b" AAPL   "]),
                ..base.clone()
            },
            "not an ITCH symbol",
        ),
        (
            BookConfig {
                symbols: Symbols::Selected(vec![*b"AA PL   "]),
                ..base.clone()
            },
            "not an ITCH symbol",
        ),
        (
            BookConfig {
                symbols: Symbols::Selected(vec![*b"AAPL\0\0\0\0"]),
                ..base.clone()
            },
            "not an ITCH symbol",
        ),
    ];
    for (cfg, needle) in cases {
        let e = Book::new(cfg.clone()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(needle), "{cfg:?}: {msg}");
        assert!(
            msg.contains("accepted") || needle.contains("empty"),
            "{msg}"
        );
    }
    assert!(BookConfig::default().validate().is_ok());
    assert!(BookConfig::selected([AAPL]).validate().is_ok());
    assert_eq!(pad_symbol("AAPL"), Some(AAPL));
    assert_eq!(pad_symbol("BRK.A"), Some(*b"BRK.A   "));
    assert_eq!(pad_symbol("ABCDEFGHI"), None);
    assert_eq!(pad_symbol(""), None);
    assert_eq!(pad_symbol("A B"), None);
}

#[test]
fn check_invariants_names_the_first_violation() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 100);
    b.add(1, 2, Side::Buy, 10, 90);
    ok(&b);
    b.books[1].sides[0][1].shares += 1;
    match b.check_invariants() {
        Err(InvariantError::LevelMismatch {
            locate: 1,
            side: Side::Buy,
            price: 100,
            level_shares: 11,
            order_shares: 10,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    b.books[1].sides[0][1].shares -= 1;
    b.books[1].sides[0].swap(0, 1);
    assert!(matches!(
        b.check_invariants(),
        Err(InvariantError::UnsortedLevels { locate: 1, .. })
    ));
    b.books[1].sides[0].swap(0, 1);
    let removed = b.books[1].sides[0].remove(0);
    assert!(matches!(
        b.check_invariants(),
        Err(InvariantError::NoLevel { price: 90, .. })
    ));
    b.books[1].sides[0].insert(0, removed);
    b.index.get_mut(1).unwrap().locate = 999;
    let e = b.check_invariants().unwrap_err();
    assert_eq!(
        e,
        InvariantError::OrderLocate {
            order_ref: 1,
            locate: 999
        }
    );
    assert!(e.to_string().contains("999"));
    b.index.get_mut(1).unwrap().locate = 1;
    ok(&b);
}

#[test]
fn digest_is_stable_and_content_only() {
    // Pinned value: a change here breaks comparisons across versions and
    // processes; change it only on purpose.
    let mut b = book();
    b.stock_directory(2, MSFT);
    b.trading_action(2, b'T');
    b.add(1, 1, Side::Buy, 100, 1_000);
    b.add(1, 2, Side::Sell, 50, 1_100);
    b.add(2, 3, Side::Buy, 10, 500);
    b.execute(1, 1, 10);
    let d = b.digest();
    assert_eq!(d, PINNED_DIGEST, "digest is {d:#x}");

    // Same content reached another way, with another configuration.
    let mut other = Book::new(BookConfig {
        max_locates: 300,
        max_orders: 1,
        ref_window: 64 * REF_CHUNK,
        ref_window_prealloc: 0,
        ..BookConfig::default()
    })
    .unwrap();
    other.add(2, 3, Side::Buy, 10, 500);
    other.add(1, 99, Side::Sell, 50, 1_100);
    other.add(1, 1, Side::Buy, 90, 1_000);
    other.replace(1, 99, 2, 50, 1_100);
    other.stock_directory(2, MSFT);
    other.stock_directory(1, AAPL);
    other.trading_action(2, b'T');
    assert_eq!(other.digest(), d);
    assert_eq!(other.snapshot(1), b.snapshot(1));
    // Any change shows.
    other.cancel(1, 2, 1);
    assert_ne!(other.digest(), d);
}

const PINNED_DIGEST: u64 = 0x478a_9223_de20_276c;

// ------------------------------------------------------ randomized model

/// splitmix64: a small, seeded, dependency-free PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        index::mix64(self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// The naive reference: orders in a `BTreeMap`, levels derived on demand,
/// the same tolerance policies written the obvious way.
struct Model {
    max_locates: usize,
    selected: Option<Vec<[u8; 8]>>,
    orders: BTreeMap<u64, OrderInfo>,
    symbol: Vec<Option<[u8; 8]>>,
    state: Vec<Option<TradingState>>,
    active: Vec<bool>,
    c: BookCounters,
}

impl Model {
    fn new(cfg: &BookConfig) -> Model {
        let selected = match &cfg.symbols {
            Symbols::All => None,
            Symbols::Selected(v) => Some(v.clone()),
        };
        Model {
            max_locates: cfg.max_locates,
            active: vec![selected.is_none(); cfg.max_locates],
            selected,
            orders: BTreeMap::new(),
            symbol: vec![None; cfg.max_locates],
            state: vec![None; cfg.max_locates],
            c: BookCounters::default(),
        }
    }

    fn side_levels(&self, locate: u16, side: Side) -> Vec<Level> {
        let mut m: BTreeMap<u32, (u64, u32)> = BTreeMap::new();
        for o in self.orders.values() {
            if o.locate == locate && o.side == side {
                let e = m.entry(o.price).or_default();
                e.0 += u64::from(o.shares);
                e.1 += 1;
            }
        }
        let it = m.into_iter().map(|(price, (shares, orders))| Level {
            price,
            shares,
            orders,
        });
        match side {
            Side::Buy => it.rev().collect(),
            Side::Sell => it.collect(),
        }
    }

    fn tops(&self, locate: u16) -> [Option<Level>; 2] {
        [
            self.side_levels(locate, Side::Buy).first().copied(),
            self.side_levels(locate, Side::Sell).first().copied(),
        ]
    }

    fn diff(&mut self, locate: u16, before: [Option<Level>; 2]) -> TopChange {
        let after = self.tops(locate);
        let mut c = TopChange::NONE;
        if before[0] != after[0] {
            c |= TopChange::BID;
        }
        if before[1] != after[1] {
            c |= TopChange::ASK;
        }
        if c.top() {
            self.c.top_changes += 1;
        }
        c
    }

    fn snapshot(&self, locate: u16) -> Option<BookSnapshot> {
        let l = locate as usize;
        if l >= self.max_locates {
            return None;
        }
        Some(BookSnapshot {
            locate,
            symbol: self.symbol[l],
            trading_state: self.state[l],
            bids: self.side_levels(locate, Side::Buy),
            asks: self.side_levels(locate, Side::Sell),
            orders: self
                .orders
                .values()
                .filter(|o| o.locate == locate)
                .copied()
                .collect(),
        })
    }

    fn admit(&mut self, locate: u16) -> bool {
        let l = locate as usize;
        if l >= self.max_locates {
            self.c.bad_locate += 1;
            false
        } else if !self.active[l] {
            self.c.filtered += 1;
            false
        } else {
            true
        }
    }

    fn lookup(&mut self, locate: u16, r: u64) -> Option<OrderInfo> {
        match self.orders.get(&r) {
            None => {
                self.c.unknown_ref += 1;
                None
            }
            Some(o) if o.locate != locate => {
                self.c.locate_mismatch += 1;
                None
            }
            Some(o) => Some(*o),
        }
    }

    fn add(&mut self, locate: u16, r: u64, side: Side, shares: u32, price: u32) -> TopChange {
        self.c.adds += 1;
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        if shares == 0 {
            self.c.zero_shares += 1;
            return TopChange::NONE;
        }
        let before = self.tops(locate);
        if self.orders.contains_key(&r) {
            self.c.duplicate_ref += 1;
        }
        self.orders.insert(
            r,
            OrderInfo {
                order_ref: r,
                locate,
                side,
                shares,
                price,
            },
        );
        self.diff(locate, before)
    }

    fn reduce(&mut self, locate: u16, r: u64, shares: u32) -> TopChange {
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        if shares == 0 {
            self.c.zero_shares += 1;
            return TopChange::NONE;
        }
        let Some(o) = self.lookup(locate, r) else {
            return TopChange::NONE;
        };
        let before = self.tops(locate);
        if shares < o.shares {
            self.orders.get_mut(&r).unwrap().shares -= shares;
        } else {
            if shares > o.shares {
                self.c.oversized += 1;
            }
            self.orders.remove(&r);
        }
        self.diff(locate, before)
    }

    fn execute(&mut self, locate: u16, r: u64, shares: u32) -> TopChange {
        self.c.executes += 1;
        self.reduce(locate, r, shares)
    }

    fn cancel(&mut self, locate: u16, r: u64, shares: u32) -> TopChange {
        self.c.cancels += 1;
        self.reduce(locate, r, shares)
    }

    fn delete(&mut self, locate: u16, r: u64) -> TopChange {
        self.c.deletes += 1;
        if !self.admit(locate) || self.lookup(locate, r).is_none() {
            return TopChange::NONE;
        }
        let before = self.tops(locate);
        self.orders.remove(&r);
        self.diff(locate, before)
    }

    fn replace(&mut self, locate: u16, r: u64, new: u64, shares: u32, price: u32) -> TopChange {
        self.c.replaces += 1;
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        let Some(o) = self.lookup(locate, r) else {
            return TopChange::NONE;
        };
        let before = self.tops(locate);
        if new != r && self.orders.remove(&new).is_some() {
            self.c.duplicate_ref += 1;
        }
        self.orders.remove(&r);
        if shares == 0 {
            self.c.zero_shares += 1;
        } else {
            self.orders.insert(
                new,
                OrderInfo {
                    order_ref: new,
                    locate,
                    side: o.side,
                    shares,
                    price,
                },
            );
        }
        self.diff(locate, before)
    }

    fn directory(&mut self, locate: u16, symbol: [u8; 8]) -> TopChange {
        self.c.directories += 1;
        let l = locate as usize;
        if l >= self.max_locates {
            self.c.bad_locate += 1;
            return TopChange::NONE;
        }
        let keep = self.selected.as_ref().is_none_or(|v| v.contains(&symbol));
        let mut change = TopChange::NONE;
        if self.symbol[l].is_some_and(|s| s != symbol) {
            self.c.relocated += 1;
            let before = self.tops(locate);
            self.orders.retain(|_, o| o.locate != locate);
            change = self.diff(locate, before);
            if self.state[l].take().is_some() {
                change |= TopChange::STATE;
            }
        }
        self.symbol[l] = Some(symbol);
        self.active[l] = keep;
        change
    }

    fn trading_action(&mut self, locate: u16, state: u8) -> TopChange {
        self.c.trading_actions += 1;
        if !self.admit(locate) {
            return TopChange::NONE;
        }
        let Some(st) = TradingState::from_itch(state) else {
            self.c.bad_state += 1;
            return TopChange::NONE;
        };
        let slot = &mut self.state[locate as usize];
        if *slot == Some(st) {
            TopChange::NONE
        } else {
            *slot = Some(st);
            TopChange::STATE
        }
    }
}

/// One message of the randomized stream.
#[derive(Clone, Copy, Debug)]
enum Msg {
    Add(u16, u64, Side, u32, u32),
    Execute(u16, u64, u32),
    ExecuteWithPrice(u16, u64, u32, u32),
    Cancel(u16, u64, u32),
    Delete(u16, u64),
    Replace(u16, u64, u64, u32, u32),
    Directory(u16, [u8; 8]),
    Trading(u16, u8),
}

fn apply(b: &mut Book, m: Msg) -> TopChange {
    match m {
        Msg::Add(l, r, s, q, p) => b.add(l, r, s, q, p),
        Msg::Execute(l, r, q) => b.execute(l, r, q),
        Msg::ExecuteWithPrice(l, r, q, p) => b.execute_with_price(l, r, q, p),
        Msg::Cancel(l, r, q) => b.cancel(l, r, q),
        Msg::Delete(l, r) => b.delete(l, r),
        Msg::Replace(l, r, n, q, p) => b.replace(l, r, n, q, p),
        Msg::Directory(l, s) => b.stock_directory(l, s),
        Msg::Trading(l, s) => b.trading_action(l, s),
    }
}

fn apply_model(m: &mut Model, msg: Msg) -> TopChange {
    match msg {
        Msg::Add(l, r, s, q, p) => m.add(l, r, s, q, p),
        Msg::Execute(l, r, q) | Msg::ExecuteWithPrice(l, r, q, _) => m.execute(l, r, q),
        Msg::Cancel(l, r, q) => m.cancel(l, r, q),
        Msg::Delete(l, r) => m.delete(l, r),
        Msg::Replace(l, r, n, q, p) => m.replace(l, r, n, q, p),
        Msg::Directory(l, s) => m.directory(l, s),
        Msg::Trading(l, s) => m.trading_action(l, s),
    }
}

/// Generates a plausible ITCH-like stream with every anomaly mixed in.
struct Gen {
    rng: Rng,
    next_ref: u64,
    mids: [u32; 6],
}

const SYMS: [[u8; 8]; 4] = [*b"AAA     ", *b"BBB     ", *b"CCC     ", *b"DDD     "];

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut rng = Rng(seed);
        let next_ref = rng.below(1 << 40);
        Gen {
            rng,
            next_ref,
            mids: [10_000; 6],
        }
    }

    fn locate(&mut self) -> u16 {
        // 0..=4 are books (max_locates 5); 5 is out of range.
        if self.rng.chance(2) {
            5
        } else {
            self.rng.below(5) as u16
        }
    }

    fn shares(&mut self) -> u32 {
        if self.rng.chance(2) {
            0
        } else {
            1 + self.rng.below(300) as u32
        }
    }

    fn price(&mut self, locate: u16, side: Side) -> u32 {
        let mid = &mut self.mids[locate as usize];
        if self.rng.chance(5) {
            *mid = (*mid as i64 + self.rng.below(21) as i64 - 10).max(100) as u32;
        }
        let off = self.rng.below(12) as u32;
        // Mostly on the own side of the mid, sometimes through it (crossed).
        let through = self.rng.chance(3);
        match (side, through) {
            (Side::Buy, false) | (Side::Sell, true) => *mid - off - 1,
            (Side::Buy, true) | (Side::Sell, false) => *mid + off,
        }
    }

    fn fresh_ref(&mut self) -> u64 {
        if self.rng.chance(1) {
            // A jump in numbering, usually followed by the stream itself.
            self.next_ref += (1 + self.rng.below(3)) * 3 * REF_CHUNK as u64;
        }
        self.next_ref += 1 + self.rng.below(30);
        self.next_ref
    }

    /// A live ref most of the time; sometimes an unknown one.
    fn target(&mut self, m: &Model) -> (u16, u64) {
        if m.orders.is_empty() || self.rng.chance(4) {
            let r = self.next_ref - self.rng.below(50);
            return (self.locate(), r);
        }
        let lo = *m.orders.keys().next().unwrap();
        let hi = *m.orders.keys().next_back().unwrap();
        // Mostly recent orders, so that old ones linger (as on a real
        // feed) while the ref window moves on.
        let k = if self.rng.chance(75) {
            hi - self.rng.below((hi - lo) / 4 + 1)
        } else {
            lo + self.rng.below(hi - lo + 1)
        };
        let o = m.orders.range(k..).next().unwrap().1;
        let locate = if self.rng.chance(3) {
            self.locate()
        } else {
            o.locate
        };
        (locate, o.order_ref)
    }

    fn next(&mut self, m: &Model) -> Msg {
        let roll = self.rng.below(100);
        match roll {
            0..=37 => {
                let l = self.locate();
                let side = if self.rng.chance(50) {
                    Side::Buy
                } else {
                    Side::Sell
                };
                let r = if self.rng.chance(2) {
                    self.target(m).1
                } else {
                    self.fresh_ref()
                };
                let q = self.shares();
                let p = self.price(l.min(4), side);
                Msg::Add(l, r, side, q, p)
            }
            38..=54 => {
                let (l, r) = self.target(m);
                let rem = m.orders.get(&r).map_or(100, |o| o.shares);
                let q = match self.rng.below(10) {
                    0 => 0,
                    1 => rem + 1 + self.rng.below(5) as u32,
                    2..=4 => rem,
                    _ => 1 + self.rng.below(u64::from(rem)) as u32,
                };
                match roll {
                    38..=45 => Msg::Execute(l, r, q),
                    46..=49 => Msg::ExecuteWithPrice(l, r, q, self.rng.next() as u32),
                    _ => Msg::Cancel(l, r, q),
                }
            }
            55..=76 => {
                let (l, r) = self.target(m);
                Msg::Delete(l, r)
            }
            77..=94 => {
                let (l, r) = self.target(m);
                let n = match self.rng.below(40) {
                    0 => r,
                    1 => self.target(m).1,
                    _ => self.fresh_ref(),
                };
                let side = m.orders.get(&r).map_or(Side::Buy, |o| o.side);
                let q = self.shares();
                let p = self.price(l.min(4), side);
                Msg::Replace(l, r, n, q, p)
            }
            95 => {
                // Usually a repeat of the locate's symbol, sometimes a rename.
                let l = self.locate();
                let sym = match m.symbol.get(l as usize).copied().flatten() {
                    Some(s) if self.rng.chance(70) => s,
                    _ => SYMS[self.rng.below(4) as usize],
                };
                Msg::Directory(l, sym)
            }
            _ => {
                let l = self.locate();
                let s = b"HPQTZ"[self.rng.below(5) as usize];
                Msg::Trading(l, s)
            }
        }
    }
}

fn without_pool(mut c: BookCounters) -> BookCounters {
    c.pool_grows = 0;
    c
}

fn run_model(seed: u64, symbols: Symbols, steps: usize) {
    let selected = matches!(symbols, Symbols::Selected(_));
    let tight = BookConfig {
        max_orders: 8,
        max_locates: 5,
        ref_window: 2 * REF_CHUNK,
        ref_window_prealloc: 0,
        levels_per_side: 1,
        symbols: symbols.clone(),
    };
    let roomy = BookConfig {
        max_orders: 4096,
        max_locates: 5,
        ref_window: 1 << 20,
        ref_window_prealloc: 1 << 16,
        levels_per_side: 64,
        symbols,
    };
    let mut a = Book::new(tight.clone()).unwrap();
    let mut b = Book::new(roomy).unwrap();
    let mut m = Model::new(&tight);
    let mut g = Gen::new(seed);
    let mut log: Vec<Msg> = Vec::new();
    let mut max_far = 0;
    // Start of day: directory entries for some locates (0 left without).
    for l in 1..5u16 {
        let msg = Msg::Directory(l, SYMS[(l as usize - 1) % 4]);
        log.push(msg);
        apply(&mut a, msg);
        apply(&mut b, msg);
        apply_model(&mut m, msg);
    }
    for step in 0..steps {
        let msg = g.next(&m);
        log.push(msg);
        let ctx = || {
            let tail: Vec<_> = log.iter().rev().take(8).rev().collect();
            format!("seed {seed} step {step}, last messages {tail:?}")
        };
        let want = apply_model(&mut m, msg);
        let got_a = apply(&mut a, msg);
        let got_b = apply(&mut b, msg);
        assert_eq!(got_a, want, "top change (tight), {}", ctx());
        assert_eq!(got_b, want, "top change (roomy), {}", ctx());
        let ra = a
            .check_invariants()
            .unwrap_or_else(|e| panic!("tight: {e}, {}", ctx()));
        let rb = b
            .check_invariants()
            .unwrap_or_else(|e| panic!("roomy: {e}, {}", ctx()));
        assert_eq!(ra, rb, "{}", ctx());
        assert_eq!(ra.live_orders, m.orders.len(), "{}", ctx());
        assert_eq!(without_pool(a.counters()), m.c, "counters, {}", ctx());
        assert_eq!(without_pool(b.counters()), m.c, "counters, {}", ctx());
        for l in 0..6u16 {
            let want = m.snapshot(l);
            assert_eq!(a.snapshot(l), want, "locate {l}, {}", ctx());
            assert_eq!(b.snapshot(l), want, "locate {l}, {}", ctx());
            assert_eq!(a.top(l).bid, m.tops(l)[0], "{}", ctx());
            assert_eq!(a.top(l).ask, m.tops(l)[1], "{}", ctx());
            if let Some(w) = &want {
                let crossed = matches!(
                    (w.bids.first(), w.asks.first()),
                    (Some(bid), Some(ask)) if bid.price > ask.price
                );
                assert_eq!(ra.crossed.contains(&l), crossed, "{}", ctx());
            }
        }
        assert_eq!(a.digest(), b.digest(), "digest, {}", ctx());
        max_far = max_far.max(a.index_stats().far_refs);
        if let Msg::Add(_, r, ..) | Msg::Replace(_, _, r, ..) = msg {
            assert_eq!(a.order(r), m.orders.get(&r).copied(), "{}", ctx());
        }
    }
    // The stream reached every path.
    let c = a.counters();
    let st = a.index_stats();
    let reached = [
        c.unknown_ref,
        c.oversized,
        c.duplicate_ref,
        c.zero_shares,
        c.locate_mismatch,
        c.bad_locate,
        c.bad_state,
        c.relocated,
        c.top_changes,
        c.pool_grows,
        st.evicted_chunks + st.relocations + max_far as u64,
    ];
    assert!(reached.iter().all(|&n| n > 0), "seed {seed}: {c:?} {st:?}");
    assert_eq!(c.filtered > 0, selected, "seed {seed}: {c:?}");
}

#[test]
fn randomized_against_a_btreemap_model_all_symbols() {
    for seed in 1..=4 {
        run_model(seed, Symbols::All, 3_000);
    }
}

#[test]
fn randomized_against_a_btreemap_model_selected_symbols() {
    for seed in 11..=14 {
        run_model(seed, Symbols::Selected(vec![SYMS[0], SYMS[2]]), 3_000);
    }
}

#[test]
fn fast_check_names_the_same_violation_as_the_full_check() {
    let mut b = book();
    b.add(1, 1, Side::Buy, 10, 100);
    b.add(1, 2, Side::Buy, 10, 90);
    b.add(1, 3, Side::Sell, 7, 120);
    b.add(2, 4, Side::Sell, 5, 130);
    assert_eq!(b.check_invariants_fast(), b.check_invariants());
    assert!(b.check_invariants_fast().is_ok());
    type Corrupt = fn(&mut Book);
    let corruptions: &[(&str, Corrupt, Corrupt)] = &[
        (
            "level shares",
            |b| b.books[1].sides[0][1].shares += 1,
            |b| b.books[1].sides[0][1].shares -= 1,
        ),
        (
            "level orders",
            |b| b.books[1].sides[1][0].orders += 1,
            |b| b.books[1].sides[1][0].orders -= 1,
        ),
        (
            // Counts all agree: only the level sums can tell.
            "shares moved between two levels",
            |b| {
                b.index.get_mut(1).unwrap().shares += 3;
                b.index.get_mut(2).unwrap().shares -= 3;
            },
            |b| {
                b.index.get_mut(1).unwrap().shares -= 3;
                b.index.get_mut(2).unwrap().shares += 3;
            },
        ),
        (
            "order moved to a price without a level",
            |b| b.index.get_mut(2).unwrap().price = 95,
            |b| b.index.get_mut(2).unwrap().price = 90,
        ),
        (
            "order moved to the other side",
            |b| b.index.get_mut(3).unwrap().side = Side::Buy,
            |b| b.index.get_mut(3).unwrap().side = Side::Sell,
        ),
        (
            "order moved to an unkept locate",
            |b| b.index.get_mut(4).unwrap().locate = 99,
            |b| b.index.get_mut(4).unwrap().locate = 2,
        ),
        (
            "unsorted levels",
            |b| b.books[1].sides[0].swap(0, 1),
            |b| b.books[1].sides[0].swap(0, 1),
        ),
        ("live counter", |b| b.live += 1, |b| b.live -= 1),
    ];
    for (what, corrupt, repair) in corruptions {
        corrupt(&mut b);
        let full = b.check_invariants();
        assert!(full.is_err(), "{what}: the full check misses it");
        assert_eq!(b.check_invariants_fast(), full, "{what}");
        repair(&mut b);
        assert!(b.check_invariants_fast().is_ok(), "{what}: repaired");
    }
}

// ------------------------------------------------------------- absorb

#[test]
fn absorb_merges_disjoint_locates_into_what_one_book_builds() {
    // One book fed everything, and two fed the odd and even locates.
    let mut one = Book::new(small(Symbols::All)).unwrap();
    let mut odd = Book::new(small(Symbols::All)).unwrap();
    let mut even = Book::new(small(Symbols::All)).unwrap();
    let mut feed = |locate: u16, f: &dyn Fn(&mut Book)| {
        f(&mut one);
        f(if locate % 2 == 1 { &mut odd } else { &mut even });
    };
    feed(1, &|b| _ = b.stock_directory(1, AAPL));
    feed(2, &|b| _ = b.stock_directory(2, MSFT));
    feed(3, &|b| _ = b.trading_action(3, b'T'));
    for r in 0..40u64 {
        let l = 1 + (r % 3) as u16;
        let side = if r % 2 == 0 { Side::Buy } else { Side::Sell };
        let px = 1000 + (r % 5) as u32 * 10 + if side == Side::Sell { 100 } else { 0 };
        feed(l, &|b| _ = b.add(l, 100 + r, side, 10 + r as u32, px));
    }
    for r in (0..40u64).step_by(3) {
        let l = 1 + (r % 3) as u16;
        feed(l, &|b| _ = b.delete(l, 100 + r));
    }
    feed(2, &|b| _ = b.execute(2, 101, 4));
    feed(1, &|b| _ = b.replace(1, 103, 500, 7, 1040));
    feed(3, &|b| _ = b.cancel(3, 999, 1)); // unknown ref, counted
    let odd_grows = odd.counters().pool_grows;
    assert!(odd.live_orders() > 0 && even.live_orders() > 0);
    odd.absorb(even).unwrap();
    assert_eq!(odd.digest(), one.digest());
    assert_eq!(odd.live_orders(), one.live_orders());
    assert_eq!(odd.counters(), one.counters());
    assert!(odd.counters().pool_grows >= odd_grows);
    assert_eq!(odd.check_invariants(), one.check_invariants());
    assert_eq!(odd.check_invariants_fast(), one.check_invariants_fast());
    for l in 1..=3 {
        assert_eq!(odd.top(l), one.top(l), "locate {l}");
        assert_eq!(odd.symbol(l), one.symbol(l));
        assert_eq!(odd.trading_state(l), one.trading_state(l));
    }
    assert_eq!(odd.order(500), one.order(500));
}

#[test]
fn absorb_refuses_overlapping_locates_and_other_configs_and_moves_nothing() {
    let mut a = book();
    a.add(1, 7, Side::Buy, 10, 1000);
    let mut b = Book::new(small(Symbols::All)).unwrap();
    b.add(1, 8, Side::Buy, 5, 1000);
    let before = a.digest();
    assert_eq!(a.absorb(b), Err(AbsorbError::Overlap { locate: 1 }));
    assert_eq!(a.digest(), before);
    let other = Book::new(BookConfig {
        max_locates: 8,
        ..small(Symbols::All)
    })
    .unwrap();
    assert_eq!(a.absorb(other), Err(AbsorbError::Config));
    // The preallocation is only a capacity hint.
    let mut c = Book::new(BookConfig {
        ref_window_prealloc: 0,
        ..small(Symbols::All)
    })
    .unwrap();
    c.add(2, 9, Side::Sell, 3, 1100);
    a.absorb(c).unwrap();
    assert_eq!(a.live_orders(), 2);
    assert!(
        AbsorbError::Overlap { locate: 1 }
            .to_string()
            .contains("locate 1")
    );
}

#[test]
fn absorb_of_a_ref_live_in_both_keeps_one_and_stays_consistent() {
    // A hostile stream: ref 7 added under locate 1 and under locate 2,
    // which two shards saw apart.
    let mut a = book();
    a.add(1, 7, Side::Buy, 10, 1000);
    let mut b = Book::new(small(Symbols::All)).unwrap();
    b.add(2, 7, Side::Sell, 5, 1100);
    b.add(2, 8, Side::Sell, 6, 1100);
    a.absorb(b).unwrap();
    assert_eq!(a.counters().duplicate_ref, 1);
    assert_eq!(a.live_orders(), 2);
    assert_eq!(a.order(7).unwrap().locate, 1);
    assert_eq!(asks(&a, 2), vec![lv(1100, 6, 1)]);
    assert!(a.check_invariants().is_ok());
}
