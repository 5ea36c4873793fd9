//! Order-entry domain types of the exchange core: the client requests it
//! takes and the events it emits per session, with OUCH 5.0's semantics and
//! codes, but independent of the codec.
//!
//! The OUCH code types ([`OrderSide`], [`TimeInForce`], [`Display`],
//! [`Capacity`], and the reasons: [`CancelReason`] Appendix C,
//! [`RejectReason`] Appendix D, [`LiquidityFlag`] Appendix E) are the ones
//! of [`crate::orders`], shared with the trader — the codec's own
//! (`hftnet_wire::ouch50`), so no side maps one enum onto another. Request
//! fields that the spec defines as Alpha codes are kept as raw bytes
//! ([`EnterOrder::side`], [`EnterOrder::time_in_force`], ...) so that a
//! bad byte from the wire reaches the exchange and is rejected with the
//! spec's reason. Mapping to and from the OUCH codec is one field to one
//! field.

use hftnet_wire::itch50::Stock;

/// A client session's index in the exchange (see
/// [`Exchange::open_session`](super::Exchange::open_session)).
pub type SessionId = u16;

pub use crate::orders::{
    CancelReason, Capacity, ClOrdId, Display, LiquidityFlag, OrderSide, RejectReason, TimeInForce,
    may_modify_to, valid_capacity,
};

/// OUCH Enter Order (`O`). Alpha fields are raw bytes (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnterOrder {
    /// Day-unique, strictly increasing per session.
    pub user_ref_num: u32,
    /// `B`, `S`, `T`, `E`.
    pub side: u8,
    /// Shares, `1..=max_quantity`.
    pub quantity: u32,
    /// Stock symbol.
    pub symbol: Stock,
    /// OUCH Price: 8 bytes, 4 implied decimals.
    pub price: u64,
    /// `0` (Day) or `3` (IOC).
    pub time_in_force: u8,
    /// `Y`, `A`, `N`.
    pub display: u8,
    /// `A`, `P`, `R`, `O`.
    pub capacity: u8,
    /// InterMarket Sweep Eligibility: `N` (`Y` is refused: no routing
    /// here).
    pub intermarket_sweep: u8,
    /// CrossType: `N`, the continuous market (crosses are refused).
    pub cross_type: u8,
    /// Customer order id, echoed.
    pub cl_ord_id: ClOrdId,
}

/// OUCH Replace Order (`U`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplaceOrder {
    /// The order's current UserRefNum.
    pub orig_user_ref_num: u32,
    /// The replacement's, strictly increasing per session.
    pub user_ref_num: u32,
    /// Total shares liable, inclusive of what the order chain executed: the
    /// new order rests `quantity − executed`.
    pub quantity: u32,
    /// New price (OUCH Price).
    pub price: u64,
    /// `0` or `3`.
    pub time_in_force: u8,
    /// `Y`, `A`, `N`.
    pub display: u8,
    /// InterMarket Sweep Eligibility: `N`.
    pub intermarket_sweep: u8,
    /// Customer order id of the replacement.
    pub cl_ord_id: ClOrdId,
}

/// OUCH Cancel Order (`X`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CancelOrder {
    /// The order's current UserRefNum.
    pub user_ref_num: u32,
    /// The new intended open size: 0 cancels the order; a smaller size
    /// than open reduces it and keeps its priority; anything else is
    /// superfluous and ignored (as the spec says).
    pub quantity: u32,
}

/// OUCH Modify Order (`M`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModifyOrder {
    /// The order's current UserRefNum.
    pub user_ref_num: u32,
    /// The new side byte: only S ↔ T ↔ E changes are allowed.
    pub side: u8,
    /// The new intended open size (at most the open size; 0 cancels).
    pub quantity: u32,
}

/// A client request, one OUCH inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// `O`.
    Enter(EnterOrder),
    /// `U`.
    Replace(ReplaceOrder),
    /// `X`.
    Cancel(CancelOrder),
    /// `M`.
    Modify(ModifyOrder),
    /// `Q`: answered with [`OrderEvent::AccountQuery`].
    AccountQuery,
}

/// An order-entry event for one session: one OUCH outbound message. The
/// caller stamps it with its own timestamp when encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// `A` Order Accepted.
    Accepted {
        /// The order's UserRefNum.
        user_ref_num: u32,
        /// Side as entered.
        side: OrderSide,
        /// Shares accepted.
        quantity: u32,
        /// Symbol.
        symbol: Stock,
        /// Price (OUCH Price).
        price: u64,
        /// Time in force.
        time_in_force: TimeInForce,
        /// Display.
        display: Display,
        /// Capacity.
        capacity: Capacity,
        /// The exchange's order reference number (the ITCH ref when the
        /// order is published).
        order_reference_number: u64,
        /// Customer order id.
        cl_ord_id: ClOrdId,
    },
    /// `U` Order Replaced.
    Replaced {
        /// The replacement's UserRefNum.
        user_ref_num: u32,
        /// The replaced order's UserRefNum.
        orig_user_ref_num: u32,
        /// Side.
        side: OrderSide,
        /// Open shares of the replacement (before it executes).
        quantity: u32,
        /// Symbol.
        symbol: Stock,
        /// Price.
        price: u64,
        /// Time in force.
        time_in_force: TimeInForce,
        /// Display.
        display: Display,
        /// Capacity (the original order's: Replace does not change it).
        capacity: Capacity,
        /// The replacement's order reference number.
        order_reference_number: u64,
        /// Customer order id of the replacement.
        cl_ord_id: ClOrdId,
    },
    /// `C` Order Canceled: `decrement` shares left the order (incremental).
    Canceled {
        /// The order.
        user_ref_num: u32,
        /// Shares removed.
        decrement: u32,
        /// Appendix C reason.
        reason: CancelReason,
    },
    /// `E` Order Executed.
    Executed {
        /// The order.
        user_ref_num: u32,
        /// Shares executed (incremental).
        quantity: u32,
        /// Execution price (OUCH Price).
        price: u64,
        /// Added or removed.
        liquidity: LiquidityFlag,
        /// The match number, shared by both sides and the ITCH message.
        match_number: u64,
    },
    /// `J` Rejected.
    Rejected {
        /// The Enter's or Replace's UserRefNum (cannot be reused).
        user_ref_num: u32,
        /// Appendix D reason.
        reason: RejectReason,
        /// Customer order id.
        cl_ord_id: ClOrdId,
    },
    /// `M` Order Modified.
    Modified {
        /// The order.
        user_ref_num: u32,
        /// Its side now.
        side: OrderSide,
        /// Its open shares now.
        quantity: u32,
    },
    /// `Q` Account Query Response.
    AccountQuery {
        /// The next UserRefNum this session may use.
        next_user_ref_num: u32,
    },
}
