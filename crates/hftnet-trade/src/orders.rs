//! Order-entry domain types shaped after OUCH 5.0, and the UserRefNum
//! allocator.
//!
//! Layer: trading engine, between the strategy/risk and the OUCH codec. The
//! types here are plain `Copy` values that map one to one onto OUCH 5.0
//! messages (`../shared/specs/ouch_spec_5.0.txt`), so the codec in
//! `hftnet_wire::ouch50` encodes and decodes them field by field:
//!
//! | here | OUCH 5.0 | direction |
//! |------|----------|-----------|
//! | [`EnterOrder`] | `O` Enter Order | to the exchange |
//! | [`ReplaceOrder`] | `U` Replace Order Request | to the exchange |
//! | [`CancelOrder`] | `X` Cancel Order Request | to the exchange |
//! | [`ExchangeEvent::Accepted`] | `A` Order Accepted | from the exchange |
//! | [`ExchangeEvent::Replaced`] | `U` Order Replaced | from the exchange |
//! | [`ExchangeEvent::Canceled`] | `C` Order Canceled | from the exchange |
//! | [`ExchangeEvent::Executed`] | `E` Order Executed | from the exchange |
//! | [`ExchangeEvent::Rejected`] | `J` Rejected | from the exchange |
//!
//! Differences to the wire, all lossless: prices are [`Price4`] (OUCH's
//! 8-byte price with 4 implied decimals; every price OUCH accepts,
//! up to `$199,999.9900`, fits in 32 bits — the codec widens and narrows);
//! the side is ITCH's `B`/`S` ([`Side`]; the trader never sells short,
//! OUCH's `T` and `E` are not produced); the optional appendage is empty.
//! Every code field is the codec's own type (re-exported below, also used
//! by the exchange core in [`crate::matching`]), so the encoder only copies.
//!
//! Nothing here allocates, reads a clock or does I/O.

use hftnet_wire::itch50::{Price4, Side, Stock};

/// The OUCH 5.0 code types both sides of order entry use, the codec's own:
/// side (`B`, `S`, `T`, `E`; the trader's orders carry the book [`Side`]),
/// time in force, display, capacity, intermarket sweep eligibility, cross
/// type, and the reasons of Appendices C, D and E.
pub use hftnet_wire::ouch50::{
    CancelReason, Capacity, CrossType, Display, IntermarketSweep, LiquidityFlag, RejectReason,
    Side as OrderSide, TimeInForce,
};

/// Whether OUCH's Modify Order may change side `from` into `to`: only
/// among the sells (S ↔ E, S ↔ T, E ↔ T), or to itself.
#[must_use]
pub const fn may_modify_to(from: OrderSide, to: OrderSide) -> bool {
    matches!(
        (from, to),
        (OrderSide::Buy, OrderSide::Buy)
            | (
                OrderSide::Sell | OrderSide::SellShort | OrderSide::SellShortExempt,
                OrderSide::Sell | OrderSide::SellShort | OrderSide::SellShortExempt
            )
    )
}

/// Whether `b` is an OUCH Capacity (`A` agency, `P` principal, `R`
/// riskless, `O` other).
#[must_use]
pub const fn valid_capacity(b: u8) -> bool {
    Capacity::from_byte(b).is_ok()
}

/// OUCH's UserRefNum: the client's day-unique, strictly increasing order
/// identifier on one OUCH account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct UserRefNum(pub u32);

/// What identifies the market-data packet that triggered a decision, for
/// tick-to-trade: its MoldUDP64 sequence number (of the message that
/// changed the book) and its receive timestamp on the trader's clock.
///
/// The sequence number travels to the exchange inside the order's
/// [`ClOrdId`] (external tick-to-trade: the exchange knows when it sent
/// that sequence number); the receive timestamp stays with the trader
/// (internal tick-to-trade: RX of the trigger to TX of the order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Trigger {
    /// MoldUDP64 sequence number of the triggering message; 0 = none
    /// (MoldUDP64 numbers messages from 1).
    pub seq: u64,
    /// Receive timestamp of the packet that carried it, nanoseconds on the
    /// caller's clock (the same clock as `now`).
    pub rx_ns: u64,
}

impl Trigger {
    /// No trigger (an order not caused by a market-data packet, e.g. a
    /// kill-switch cancel).
    pub const NONE: Trigger = Trigger { seq: 0, rx_ns: 0 };
}

/// OUCH's 14-byte ClOrdID (alphanumeric and spaces).
///
/// The trader writes the trigger's MoldUDP64 sequence number into it, in
/// decimal, left-justified and space padded (`1234          `), with the
/// codec's own [`hftnet_wire::ouch50::ClOrdId::from_number`], so the
/// exchange reads it back with [`hftnet_wire::ouch50::ClOrdId::number`]
/// (one encoding, not two). Sequence numbers of 15 digits or more (beyond
/// any trading day) and [`Trigger::NONE`] give an all-space ClOrdID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClOrdId(pub [u8; 14]);

impl From<hftnet_wire::ouch50::ClOrdId> for ClOrdId {
    fn from(c: hftnet_wire::ouch50::ClOrdId) -> Self {
        ClOrdId(c.0)
    }
}

impl From<ClOrdId> for hftnet_wire::ouch50::ClOrdId {
    fn from(c: ClOrdId) -> Self {
        hftnet_wire::ouch50::ClOrdId(c.0)
    }
}

impl ClOrdId {
    /// All spaces: no trigger.
    pub const BLANK: ClOrdId = ClOrdId([b' '; 14]);
    /// Largest sequence number a ClOrdID carries.
    pub const MAX_SEQ: u64 = hftnet_wire::ouch50::ClOrdId::MAX_NUMBER;

    /// The ClOrdID carrying `trigger`'s sequence number.
    #[must_use]
    pub fn from_trigger(trigger: Trigger) -> ClOrdId {
        if trigger.seq == 0 {
            return Self::BLANK;
        }
        hftnet_wire::ouch50::ClOrdId::from_number(trigger.seq).map_or(Self::BLANK, |c| ClOrdId(c.0))
    }

    /// The sequence number [`ClOrdId::from_trigger`] wrote; `None` when the
    /// field is blank, 0 or not a decimal number.
    #[must_use]
    pub fn trigger_seq(&self) -> Option<u64> {
        hftnet_wire::ouch50::ClOrdId(self.0)
            .number()
            .filter(|&v| v > 0)
    }
}

/// OUCH `O` Enter Order, without the optional appendage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnterOrder {
    /// New, strictly increasing.
    pub user_ref_num: UserRefNum,
    /// `B` or `S`.
    pub side: Side,
    /// Shares, 1..=999,999.
    pub quantity: u32,
    /// Symbol, space padded.
    pub symbol: Stock,
    /// Limit price.
    pub price: Price4,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Display (the strategies: visible).
    pub display: Display,
    /// Capacity (the strategies: principal).
    pub capacity: Capacity,
    /// Intermarket sweep eligibility (not eligible: the exchange routes
    /// nothing).
    pub intermarket_sweep: IntermarketSweep,
    /// Cross type (the continuous market).
    pub cross_type: CrossType,
    /// Carries the trigger's sequence number.
    pub cl_ord_id: ClOrdId,
}

/// OUCH `U` Replace Order Request, without the optional appendage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaceOrder {
    /// The order being replaced (the last of its chain).
    pub orig_user_ref_num: UserRefNum,
    /// The replacement's new, strictly increasing number.
    pub user_ref_num: UserRefNum,
    /// OUCH's quantity: shares liable for the whole chain, i.e. the shares
    /// the chain already executed plus the new open quantity.
    pub quantity: u32,
    /// New limit price.
    pub price: Price4,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Display.
    pub display: Display,
    /// Intermarket sweep eligibility.
    pub intermarket_sweep: IntermarketSweep,
    /// Carries the trigger's sequence number.
    pub cl_ord_id: ClOrdId,
}

/// OUCH `X` Cancel Order Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOrder {
    /// The order.
    pub user_ref_num: UserRefNum,
    /// The new intended order size; 0 cancels the rest.
    pub quantity: u32,
}

/// A message to the exchange, with the trigger that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderMsg {
    /// `O`.
    Enter(EnterOrder, Trigger),
    /// `U`.
    Replace(ReplaceOrder, Trigger),
    /// `X`.
    Cancel(CancelOrder, Trigger),
}

impl OrderMsg {
    /// The trigger of the message ([`Trigger::NONE`] for cancels the
    /// trader made itself).
    #[must_use]
    pub fn trigger(&self) -> Trigger {
        match self {
            OrderMsg::Enter(_, t) | OrderMsg::Replace(_, t) | OrderMsg::Cancel(_, t) => *t,
        }
    }
}

/// An order-state message from the exchange (decoded OUCH outbound
/// message), as the trader consumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeEvent {
    /// `A` Order Accepted.
    Accepted {
        /// The order.
        user_ref_num: UserRefNum,
        /// The side as entered (OUCH's sell short `T` and `E` are sells).
        side: Side,
        /// Shares accepted.
        quantity: u32,
        /// The symbol as entered.
        symbol: Stock,
        /// Accepted price (may be better than entered).
        price: Price4,
        /// Nasdaq's order reference number.
        order_ref: u64,
        /// Order State: `true` for `L` (live), `false` for `D` (dead:
        /// accepted and cancelled at once, e.g. an IOC that did not trade).
        live: bool,
    },
    /// `U` Order Replaced.
    Replaced {
        /// The order replaced.
        orig_user_ref_num: UserRefNum,
        /// The replacement.
        user_ref_num: UserRefNum,
        /// Shares outstanding on the replacement.
        quantity: u32,
        /// Accepted price of the replacement.
        price: Price4,
        /// Nasdaq's order reference number of the replacement.
        order_ref: u64,
        /// Order State `L` (`true`) or `D`.
        live: bool,
    },
    /// `C` Order Canceled.
    Canceled {
        /// The order.
        user_ref_num: UserRefNum,
        /// Shares taken off the order (incremental).
        quantity: u32,
        /// Cancel reason (Appendix C).
        reason: CancelReason,
    },
    /// `E` Order Executed.
    Executed {
        /// The order.
        user_ref_num: UserRefNum,
        /// Shares executed (incremental).
        quantity: u32,
        /// Execution price.
        price: Price4,
        /// Liquidity flag (Appendix E).
        liquidity: LiquidityFlag,
        /// Exchange match number.
        match_number: u64,
    },
    /// `J` Rejected (an enter or a replace).
    Rejected {
        /// The number of the rejected enter or replacement.
        user_ref_num: UserRefNum,
        /// Reject reason (Appendix D).
        reason: RejectReason,
    },
}

/// The UserRefNum allocator: strictly increasing, across reconnects and
/// restarts, with a persistence hook.
///
/// OUCH ignores an order whose UserRefNum is not above the last one it
/// processed on the account that day. A trader that restarts must not reuse
/// numbers, so the allocator never hands out a number it has not first
/// asked the caller to persist:
///
/// - The caller persists a *high-water mark* `h` (every number ≤ `h` may
///   have been used). [`UserRefNums::restore`] at start-up takes it back
///   (and the exchange's view, [`UserRefNums::observe_next`], from an
///   account query response, raises it further).
/// - Numbers are reserved in blocks of `block`: when fewer than half a
///   block is left, [`UserRefNums::poll_persist`] returns the new mark to
///   store; the caller stores it durably and calls
///   [`UserRefNums::confirm_persisted`]. Until that confirmation the
///   allocator keeps handing out numbers of the current block only; when
///   it is used up, [`UserRefNums::allocate`] returns `None` (the trader
///   refuses the order, counted) rather than risk a reuse after a crash.
/// - `block = 1` persists before every order; a larger block skips at
///   most `block` numbers after a crash (gaps are allowed, reuse is not).
///
/// A reconnect keeps the same allocator: numbers continue from where they
/// were.
#[derive(Debug, Clone)]
pub struct UserRefNums {
    next: u32,
    /// Highest number usable: confirmed persisted.
    reserved: u32,
    block: u32,
    requested: Option<u32>,
}

impl UserRefNums {
    /// A fresh allocator (first number 1) reserving `block` numbers at a
    /// time (at least 1). Nothing is usable until the first mark is
    /// persisted: call [`UserRefNums::poll_persist`] and
    /// [`UserRefNums::confirm_persisted`], or [`UserRefNums::restore`].
    #[must_use]
    pub fn new(block: u32) -> UserRefNums {
        let mut a = UserRefNums {
            next: 1,
            reserved: 0,
            block: block.max(1),
            requested: None,
        };
        a.maybe_request();
        a
    }

    /// Restores the high-water mark the caller persisted (0 when none):
    /// numbers continue above it. Never lowers the next number. Usable
    /// numbers again need a persisted mark above it (requested at once).
    pub fn restore(&mut self, persisted_mark: u32) {
        self.observe_next(persisted_mark.saturating_add(1));
    }

    /// Raises the next number to at least `next` (e.g. the next available
    /// UserRefNum of an OUCH Account Query Response after a reconnect).
    /// Never lowers it.
    pub fn observe_next(&mut self, next: u32) {
        if next > self.next {
            self.next = next;
            if self.reserved < self.next {
                self.reserved = self.next - 1;
                self.requested = None;
            }
        }
        self.maybe_request();
    }

    fn maybe_request(&mut self) {
        let left = u64::from(self.reserved) + 1 - u64::from(self.next);
        if self.requested.is_none() && left <= u64::from(self.block / 2) {
            let mark = u64::from(self.reserved.max(self.next - 1)) + u64::from(self.block);
            self.requested = Some(mark.min(u64::from(u32::MAX)) as u32);
        }
    }

    /// A mark to persist, once: store it durably, then call
    /// [`UserRefNums::confirm_persisted`] with it.
    pub fn poll_persist(&mut self) -> Option<u32> {
        match self.requested {
            Some(m) if m > self.reserved => Some(m),
            _ => None,
        }
    }

    /// The caller stored `mark` durably: numbers up to it are usable.
    pub fn confirm_persisted(&mut self, mark: u32) {
        if mark > self.reserved {
            self.reserved = mark;
        }
        if self.requested.is_some_and(|r| r <= mark) {
            self.requested = None;
        }
        self.maybe_request();
    }

    /// The next number, or `None` when the persisted block is used up
    /// (or the 32-bit space is).
    #[inline]
    pub fn allocate(&mut self) -> Option<UserRefNum> {
        if self.next > self.reserved || self.next == u32::MAX {
            return None;
        }
        let n = self.next;
        self.next += 1;
        self.maybe_request();
        Some(UserRefNum(n))
    }

    /// The last number handed out (0 when none).
    #[must_use]
    pub fn last(&self) -> u32 {
        self.next - 1
    }

    /// Numbers still usable without another persisted mark.
    #[must_use]
    pub fn available(&self) -> u32 {
        (u64::from(self.reserved) + 1 - u64::from(self.next)).min(u64::from(u32::MAX)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cl_ord_id_round_trip() {
        let t = Trigger {
            seq: 1234,
            rx_ns: 5,
        };
        let c = ClOrdId::from_trigger(t);
        assert_eq!(&c.0, b"1234          ");
        assert_eq!(c.trigger_seq(), Some(1234));
        assert_eq!(ClOrdId::from_trigger(Trigger::NONE), ClOrdId::BLANK);
        assert_eq!(ClOrdId::BLANK.trigger_seq(), None);
        let max = ClOrdId::from_trigger(Trigger {
            seq: ClOrdId::MAX_SEQ,
            rx_ns: 0,
        });
        assert_eq!(max.trigger_seq(), Some(ClOrdId::MAX_SEQ));
        let over = Trigger {
            seq: ClOrdId::MAX_SEQ + 1,
            rx_ns: 0,
        };
        assert_eq!(ClOrdId::from_trigger(over), ClOrdId::BLANK);
    }

    #[test]
    fn refs_need_a_persisted_mark() {
        let mut a = UserRefNums::new(4);
        assert_eq!(a.allocate(), None, "nothing persisted yet");
        assert_eq!(a.poll_persist(), Some(4));
        a.confirm_persisted(4);
        assert_eq!(a.allocate(), Some(UserRefNum(1)));
        assert_eq!(a.allocate(), Some(UserRefNum(2)));
        // Half the block left: the next mark is requested, not yet stored.
        assert_eq!(a.poll_persist(), Some(8));
        assert_eq!(a.allocate(), Some(UserRefNum(3)));
        assert_eq!(a.allocate(), Some(UserRefNum(4)));
        assert_eq!(a.allocate(), None, "block used up, next mark unconfirmed");
        a.confirm_persisted(8);
        assert_eq!(a.allocate(), Some(UserRefNum(5)));
        assert_eq!(a.last(), 5);
    }

    #[test]
    fn restart_and_exchange_view_never_go_back() {
        let mut a = UserRefNums::new(1);
        a.restore(41);
        assert_eq!(a.allocate(), None);
        let m = a.poll_persist().unwrap();
        assert_eq!(m, 42);
        a.confirm_persisted(m);
        assert_eq!(a.allocate(), Some(UserRefNum(42)));
        // A lower mark or exchange view changes nothing.
        a.restore(10);
        a.observe_next(3);
        a.confirm_persisted(m + 1);
        assert_eq!(a.allocate(), Some(UserRefNum(43)));
        // The exchange says 100 is next.
        a.observe_next(100);
        let m = a.poll_persist().unwrap();
        a.confirm_persisted(m);
        assert_eq!(a.allocate(), Some(UserRefNum(100)));
    }

    #[test]
    fn refs_stop_at_the_top_of_u32() {
        let mut a = UserRefNums::new(8);
        a.restore(u32::MAX - 3);
        let m = a.poll_persist().unwrap();
        assert_eq!(m, u32::MAX);
        a.confirm_persisted(m);
        let got: Vec<_> = std::iter::from_fn(|| a.allocate()).collect();
        assert_eq!(got, [UserRefNum(u32::MAX - 2), UserRefNum(u32::MAX - 1)]);
    }
}
