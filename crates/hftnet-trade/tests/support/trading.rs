//! Helpers shared by the trader tests and the strategy bench: top updates
//! built by hand, and a minimal exchange that answers every order message
//! at once (accepts, fills IOCs, replaces, cancels) without allocating
//! once constructed.

#![allow(dead_code)] // each binary uses the helpers it needs

use std::collections::HashMap;

use hftnet_trade::book::{Level, TopChange, TopOfBook, TradingState};
use hftnet_trade::market::TopUpdate;
use hftnet_trade::orders::{ExchangeEvent, OrderMsg, TimeInForce, Trigger, UserRefNum};
use hftnet_trade::strategy::Strategy;
use hftnet_trade::trader::{OUTBOX_CAP, Outbox, Trader};
use hftnet_wire::itch50::{Price4, Stock};

/// The 8 ITCH bytes of a symbol.
pub fn sym(s: &str) -> [u8; 8] {
    Stock::new(s).unwrap().0
}

/// A top with the given bid and offer prices (100 shares each); 0 = empty.
pub fn top(bid: u32, ask: u32) -> TopOfBook {
    let l = |price| {
        (price > 0).then_some(Level {
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

/// A top update of `locate` named `symbol`.
pub fn update(locate: u16, symbol: &str, bid: u32, ask: u32) -> TopUpdate {
    TopUpdate {
        locate,
        change: TopChange::BID | TopChange::ASK,
        top: top(bid, ask),
        state: Some(TradingState::Trading),
        symbol: Some(sym(symbol)),
        timestamp_ns: 0,
    }
}

/// An exchange that answers at once: enters accepted (IOCs executed in
/// full at their price, then done), replaces replaced with the new open
/// quantity, cancels cancelled in full. Orders it does not know (cancels
/// of a replacement number not yet live, say) are ignored, as OUCH does.
pub struct InstantExchange {
    open: HashMap<u32, u32>,
    next_ref: u64,
    next_match: u64,
}

impl InstantExchange {
    pub fn new(capacity: usize) -> InstantExchange {
        InstantExchange {
            open: HashMap::with_capacity(4 * capacity),
            next_ref: 1,
            next_match: 1,
        }
    }

    /// Answers `m` through `f`.
    pub fn answer(&mut self, m: &OrderMsg, mut f: impl FnMut(&ExchangeEvent)) {
        match *m {
            OrderMsg::Enter(o, _) => {
                self.next_ref += 1;
                let ioc = o.time_in_force == TimeInForce::Ioc;
                f(&ExchangeEvent::Accepted {
                    user_ref_num: o.user_ref_num,
                    side: o.side,
                    quantity: o.quantity,
                    symbol: o.symbol,
                    price: o.price,
                    order_ref: self.next_ref,
                    live: true,
                });
                if ioc {
                    self.next_match += 1;
                    f(&ExchangeEvent::Executed {
                        user_ref_num: o.user_ref_num,
                        quantity: o.quantity,
                        price: o.price,
                        liquidity: hftnet_trade::orders::LiquidityFlag::Removed,
                        match_number: self.next_match,
                    });
                } else {
                    self.open.insert(o.user_ref_num.0, o.quantity);
                }
            }
            OrderMsg::Replace(r, _) => {
                let Some(open) = self.open.remove(&r.orig_user_ref_num.0) else {
                    return;
                };
                let _ = open;
                self.next_ref += 1;
                // No executions happen here, so the chain's quantity is
                // the new open quantity.
                self.open.insert(r.user_ref_num.0, r.quantity);
                f(&ExchangeEvent::Replaced {
                    orig_user_ref_num: r.orig_user_ref_num,
                    user_ref_num: r.user_ref_num,
                    quantity: r.quantity,
                    price: r.price,
                    order_ref: self.next_ref,
                    live: true,
                });
            }
            OrderMsg::Cancel(c, _) => {
                if let Some(open) = self.open.remove(&c.user_ref_num.0) {
                    f(&ExchangeEvent::Canceled {
                        user_ref_num: c.user_ref_num,
                        quantity: open,
                        reason: hftnet_trade::orders::CancelReason::UserRequested,
                    });
                }
            }
        }
    }

    /// Fills `quantity` of the open order `n` at `price`.
    pub fn execute(
        &mut self,
        n: UserRefNum,
        quantity: u32,
        price: Price4,
    ) -> Option<ExchangeEvent> {
        let open = self.open.get_mut(&n.0)?;
        *open -= quantity.min(*open);
        if *open == 0 {
            self.open.remove(&n.0);
        }
        self.next_match += 1;
        Some(ExchangeEvent::Executed {
            user_ref_num: n,
            quantity,
            price,
            liquidity: hftnet_trade::orders::LiquidityFlag::Added,
            match_number: self.next_match,
        })
    }

    /// Sends everything in `out` to the exchange and hands its answers to
    /// the trader; repeats until the trader has nothing more to send.
    /// Returns the messages sent.
    pub fn settle<S: Strategy>(&mut self, trader: &mut Trader<S>, out: &mut Outbox) -> usize {
        let mut sent = 0;
        while !out.as_slice().is_empty() {
            let mut msgs = [*out.as_slice().first().unwrap(); OUTBOX_CAP];
            let n = out.as_slice().len();
            msgs[..n].copy_from_slice(out.as_slice());
            out.clear();
            sent += n;
            for m in &msgs[..n] {
                self.answer(m, |ev| trader.handle_exchange(ev));
            }
        }
        sent
    }
}

/// Top updates random-walking each symbol's bid and offer a tick (a cent)
/// at a time, the spread one or two ticks, symbols taken at random; locate
/// `k + 1` is `symbols[k]`. Deterministic for a seed.
pub struct Walk {
    rng: u64,
    mids: Vec<u32>,
    names: Vec<[u8; 8]>,
    seq: u64,
}

impl Walk {
    pub fn new(symbols: &[Stock], seed: u64) -> Walk {
        Walk {
            rng: seed,
            mids: vec![100_0000; symbols.len()],
            names: symbols.iter().map(|s| s.0).collect(),
            seq: 1 << 32,
        }
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next update, its trigger (a MoldUDP64 sequence number and a
    /// receive time 10 µs after the previous one) and the random word it
    /// came from (for the caller's own choices).
    pub fn next_update(&mut self) -> (TopUpdate, Trigger, u64) {
        let r = self.next();
        let k = (r % self.mids.len() as u64) as usize;
        let m = &mut self.mids[k];
        *m = if r & 0x100 == 0 { *m + 100 } else { *m - 100 };
        let spread = 100 * (1 + (r >> 9) % 2) as u32;
        let mut u = update(k as u16 + 1, "X", *m, *m + spread);
        u.symbol = Some(self.names[k]);
        self.seq += 1;
        let rx_ns = 50_000_000_000_000 + self.seq * 10_000;
        (
            u,
            Trigger {
                seq: self.seq,
                rx_ns,
            },
            r,
        )
    }
}
