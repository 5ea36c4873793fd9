//! The outbound message table (exchange to client, section 3 of the
//! specification): type byte, fixed length, field offsets as in its tables.
//! `macros.rs` generates the views, reprs, [`OutboundType`] and
//! [`OutboundMessage`] from it, and refuses to build when a table's fields
//! do not run contiguously from byte 1 to its length. Every outbound message
//! starts with the type byte and an 8-byte timestamp (nanoseconds since
//! midnight).

#[cfg(test)]
use crate::itch50::FromSeed;
use crate::itch50::Wire;

use super::types::Decode;
use super::{
    BrokenTradeReason, CancelReason, Capacity, ClOrdId, CrossType, Display, Error, EventCode,
    IntermarketSweep, LiquidityFlag, Options, OrderState, Price, RejectReason, RestateReason,
    Result, Side, Symbol, TimeInForce, be16,
};
use crate::{fields_contiguous, type_byte};

ouch_messages! {
    /// Every outbound message type OUCH 5.0 defines, in the order of the
    /// specification.
    type OutboundType;
    /// One outbound OUCH 5.0 message (exchange to client), parsed.
    message OutboundMessage;

    /// System Event (`S`): start or end of the trading day.
    SystemEvent / SystemEventRepr = 'S', 10, "system_event" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The event.
        event_code / set_event_code: EventCode @ 9,
    }

    /// Order Accepted (`A`): an Enter Order was accepted; its fields echoed
    /// as accepted (the price and time in force may differ from those
    /// entered). With [`OrderState::Dead`] it was accepted and at once
    /// canceled, and no more messages follow for it.
    OrderAccepted / OrderAcceptedRepr = 'A', 64 + options, "order_accepted" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum as entered.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// The side as entered.
        side / set_side: Side @ 13,
        /// Total shares accepted.
        quantity / set_quantity: u32 @ 14,
        /// The symbol as entered.
        symbol / set_symbol: Symbol @ 18,
        /// The accepted price (better than or equal to the entered one).
        price / set_price: Price @ 26,
        /// The accepted time in force.
        time_in_force / set_time_in_force: TimeInForce @ 34,
        /// The accepted display.
        display / set_display: Display @ 35,
        /// The day-unique order reference number Nasdaq assigned (as in ITCH).
        order_reference_number / set_order_reference_number: u64 @ 36,
        /// The capacity of the order.
        capacity / set_capacity: Capacity @ 44,
        /// InterMarket Sweep eligibility.
        intermarket_sweep / set_intermarket_sweep: IntermarketSweep @ 45,
        /// The cross type as entered.
        cross_type / set_cross_type: CrossType @ 46,
        /// Live or dead.
        order_state / set_order_state: OrderState @ 47,
        /// The customer order identifier.
        cl_ord_id / set_cl_ord_id: ClOrdId @ 48,
    }

    /// Order Replaced (`U`): a Replace Order was accepted; the quantity is
    /// the shares left exposed on the book.
    OrderReplaced / OrderReplacedRepr = 'U', 68 + options, "order_replaced" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order replaced.
        orig_user_ref_num / set_orig_user_ref_num: u32 @ 9,
        /// The UserRefNum of the replacement.
        user_ref_num / set_user_ref_num: u32 @ 13,
        /// The side as entered on the original order of the chain.
        side / set_side: Side @ 17,
        /// Total shares outstanding.
        quantity / set_quantity: u32 @ 18,
        /// The symbol as entered.
        symbol / set_symbol: Symbol @ 22,
        /// The accepted price of the replacement.
        price / set_price: Price @ 30,
        /// The accepted time in force.
        time_in_force / set_time_in_force: TimeInForce @ 38,
        /// The accepted display.
        display / set_display: Display @ 39,
        /// The order reference number Nasdaq assigned.
        order_reference_number / set_order_reference_number: u64 @ 40,
        /// The capacity of the order.
        capacity / set_capacity: Capacity @ 48,
        /// InterMarket Sweep eligibility.
        intermarket_sweep / set_intermarket_sweep: IntermarketSweep @ 49,
        /// The cross type as entered.
        cross_type / set_cross_type: CrossType @ 50,
        /// Live or dead.
        order_state / set_order_state: OrderState @ 51,
        /// The customer order identifier of the replacement.
        cl_ord_id / set_cl_ord_id: ClOrdId @ 52,
    }

    /// Order Canceled (`C`): an order was reduced or canceled (by request,
    /// timeout, IOC remainder, ...). Part of it may still be live.
    OrderCanceled / OrderCanceledRepr = 'C', 18, "order_canceled" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// Shares taken off the order (incremental, not cumulative).
        quantity / set_quantity: u32 @ 13,
        /// Why (Appendix C).
        reason / set_reason: CancelReason @ 17,
    }

    /// AIQ Canceled (`D`): an order was reduced by anti-internalization
    /// (self match prevention).
    AiqCanceled / AiqCanceledRepr = 'D', 32, "aiq_canceled" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// Shares just taken off the order (incremental).
        decrement_shares / set_decrement_shares: u32 @ 13,
        /// Always [`CancelReason::SelfMatchPrevention`] (`Q`).
        reason / set_reason: CancelReason @ 17,
        /// Shares that would have executed.
        quantity_prevented / set_quantity_prevented: u32 @ 18,
        /// The price the trade would have had.
        execution_price / set_execution_price: Price @ 22,
        /// The liquidity flag the order would have received.
        liquidity_flag / set_liquidity_flag: LiquidityFlag @ 30,
        /// The AIQ strategy used on the canceled order (a letter).
        aiq_strategy / set_aiq_strategy: u8 @ 31,
    }

    /// Order Executed (`E`): all or part of an order executed.
    OrderExecuted / OrderExecutedRepr = 'E', 36 + options, "order_executed" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// Shares just executed (incremental).
        quantity / set_quantity: u32 @ 13,
        /// The execution price.
        price / set_price: Price @ 17,
        /// The liquidity flag (Appendix E).
        liquidity_flag / set_liquidity_flag: LiquidityFlag @ 25,
        /// The match number, shared by both sides of the trade (as in ITCH).
        match_number / set_match_number: u64 @ 26,
    }

    /// Broken Trade (`B`): an execution was broken and will not clear.
    BrokenTrade / BrokenTradeRepr = 'B', 36, "broken_trade" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order whose execution is broken.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// The match number of the execution.
        match_number / set_match_number: u64 @ 13,
        /// Why.
        reason / set_reason: BrokenTradeReason @ 21,
        /// The customer order identifier.
        cl_ord_id / set_cl_ord_id: ClOrdId @ 22,
    }

    /// Rejected (`J`): an Enter or Replace Order was refused; its UserRefNum
    /// is consumed.
    Rejected / RejectedRepr = 'J', 29, "rejected" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order refused.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// Why (Appendix D).
        reason / set_reason: RejectReason @ 13,
        /// The customer order identifier of the order refused.
        cl_ord_id / set_cl_ord_id: ClOrdId @ 15,
    }

    /// Cancel Pending (`P`): a cross order cannot be canceled during the
    /// pre-cross late period; what is left is canceled after the cross.
    CancelPending / CancelPendingRepr = 'P', 13, "cancel_pending" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 9,
    }

    /// Cancel Reject (`I`): a partial cancel of a cross order during the
    /// pre-cross late period was refused.
    CancelReject / CancelRejectRepr = 'I', 13, "cancel_reject" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 9,
    }

    /// Order Priority Update (`T`): the system changed the order's priority
    /// (and its order reference number).
    OrderPriorityUpdate / OrderPriorityUpdateRepr = 'T', 30, "order_priority_update" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// The limit price of the order.
        price / set_price: Price @ 13,
        /// The new display.
        display / set_display: Display @ 21,
        /// The new order reference number.
        order_reference_number / set_order_reference_number: u64 @ 22,
    }

    /// Order Modified (`M`): the answer to a Modify Order.
    OrderModified / OrderModifiedRepr = 'M', 18, "order_modified" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// The side as requested.
        side / set_side: Side @ 13,
        /// Total shares outstanding.
        quantity / set_quantity: u32 @ 14,
    }

    /// Order Restated (`R`): the system changed the order as part of its
    /// order management (display refresh, displayed price update); the
    /// appendage carries the new Display Quantity / Display Price /
    /// SecondaryOrdRefNum.
    OrderRestated / OrderRestatedRepr = 'R', 16 + options, "order_restated" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 9,
        /// Why.
        reason / set_reason: RestateReason @ 13,
    }

    /// Account Query Response (`Q`): the next UserRefNum the account may use.
    AccountQueryResponse / AccountQueryResponseRepr = 'Q', 13, "account_query_response" {
        /// Nanoseconds since midnight.
        timestamp / set_timestamp: u64 @ 1,
        /// The next available UserRefNum.
        next_user_ref_num / set_next_user_ref_num: u32 @ 9,
    }
}

impl OutboundMessage {
    /// The timestamp every outbound message carries (nanoseconds since
    /// midnight).
    #[must_use]
    pub const fn timestamp(&self) -> u64 {
        match self {
            Self::SystemEvent(r) => r.timestamp,
            Self::OrderAccepted(r) => r.timestamp,
            Self::OrderReplaced(r) => r.timestamp,
            Self::OrderCanceled(r) => r.timestamp,
            Self::AiqCanceled(r) => r.timestamp,
            Self::OrderExecuted(r) => r.timestamp,
            Self::BrokenTrade(r) => r.timestamp,
            Self::Rejected(r) => r.timestamp,
            Self::CancelPending(r) => r.timestamp,
            Self::CancelReject(r) => r.timestamp,
            Self::OrderPriorityUpdate(r) => r.timestamp,
            Self::OrderModified(r) => r.timestamp,
            Self::OrderRestated(r) => r.timestamp,
            Self::AccountQueryResponse(r) => r.timestamp,
        }
    }

    /// The UserRefNum the message is about; `None` for System Event.
    /// (For Order Replaced, the replacement's; for Account Query Response,
    /// the next one available.)
    #[must_use]
    pub const fn user_ref_num(&self) -> Option<u32> {
        match self {
            Self::SystemEvent(_) => None,
            Self::OrderAccepted(r) => Some(r.user_ref_num),
            Self::OrderReplaced(r) => Some(r.user_ref_num),
            Self::OrderCanceled(r) => Some(r.user_ref_num),
            Self::AiqCanceled(r) => Some(r.user_ref_num),
            Self::OrderExecuted(r) => Some(r.user_ref_num),
            Self::BrokenTrade(r) => Some(r.user_ref_num),
            Self::Rejected(r) => Some(r.user_ref_num),
            Self::CancelPending(r) => Some(r.user_ref_num),
            Self::CancelReject(r) => Some(r.user_ref_num),
            Self::OrderPriorityUpdate(r) => Some(r.user_ref_num),
            Self::OrderModified(r) => Some(r.user_ref_num),
            Self::OrderRestated(r) => Some(r.user_ref_num),
            Self::AccountQueryResponse(r) => Some(r.next_user_ref_num),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ouch50::{Field, OptionTag, TagValue};
    use proptest::prelude::*;

    /// 09:30:00.000000001 = 34_200_000_000_001 ns = 0x1F1A_CED9_F001.
    const TS: u64 = 34_200_000_000_001;
    const TS_BYTES: [u8; 8] = [0, 0, 0x1f, 0x1a, 0xce, 0xd9, 0xf0, 0x01];

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Every check one literal gets: the view's length check and type byte,
    /// parse and exact decode equal the repr, encode gives the bytes back,
    /// a byte less is Truncated and a byte more is Length.
    fn check(bytes: &[u8], m: OutboundMessage) {
        let t = m.message_type();
        assert_eq!(bytes[0], t.byte());
        view_check_len(t, bytes).unwrap();
        assert_eq!(OutboundMessage::parse(bytes), Ok(m), "{t}");
        let mut buf = [0xaau8; 256];
        assert_eq!(m.emit(&mut buf), Ok(bytes.len()), "{t}");
        assert_eq!(&buf[..bytes.len()], bytes, "{t}");
        assert!(matches!(
            OutboundMessage::parse(&bytes[..bytes.len() - 1]),
            Err(Error::Truncated { .. })
        ));
        let mut long = bytes.to_vec();
        long.push(0);
        assert_eq!(
            OutboundMessage::parse(&long),
            Err(Error::Length {
                msg_type: t.byte(),
                len: bytes.len() + 1,
                expected: bytes.len()
            })
        );
        assert_eq!(m.timestamp(), TS);
    }

    #[test]
    fn test_system_event() {
        let b = cat(&[b"S", &TS_BYTES, b"S"]);
        let v = SystemEvent::new_checked(&b[..]).unwrap();
        assert_eq!(v.timestamp(), TS);
        assert_eq!(v.event_code(), Ok(EventCode::StartOfDay));
        let r = SystemEventRepr {
            timestamp: TS,
            event_code: EventCode::StartOfDay,
        };
        check(&b, r.into());
        let mut bad = b.clone();
        bad[9] = b'Q';
        assert_eq!(
            OutboundMessage::parse(&bad),
            Err(Error::InvalidField {
                field: Field::EventCode,
                byte: b'Q'
            })
        );
        assert_eq!(OutboundMessage::from(r).user_ref_num(), None);
    }

    // Order Accepted: UserRefNum 7, buy 100 AAPL at 185.2500, IOC, visible,
    // order reference 0x0102030405060708, agency, not ISO, continuous, live,
    // ClOrdID "123456", appendage: Firm "ABCD".
    fn accepted_bytes() -> Vec<u8> {
        cat(&[
            b"A",
            &TS_BYTES,
            &[0, 0, 0, 7],
            b"B",
            &[0, 0, 0, 100],
            b"AAPL    ",
            &[0, 0, 0, 0, 0, 0x1c, 0x44, 0x54],
            b"3Y",
            &[1, 2, 3, 4, 5, 6, 7, 8],
            b"ANNL",
            b"123456        ",
            &[0, 6],
            &[5, 2],
            b"ABCD",
        ])
    }

    fn accepted() -> OrderAcceptedRepr {
        let mut options = Options::new();
        options
            .push(TagValue::Firm(crate::ouch50::Firm::new("ABCD").unwrap()))
            .unwrap();
        OrderAcceptedRepr {
            timestamp: TS,
            user_ref_num: 7,
            side: Side::Buy,
            quantity: 100,
            symbol: sym("AAPL"),
            price: Price::from_raw(1_852_500),
            time_in_force: TimeInForce::Ioc,
            display: Display::Visible,
            order_reference_number: 0x0102_0304_0506_0708,
            capacity: Capacity::Agency,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ContinuousMarket,
            order_state: OrderState::Live,
            cl_ord_id: ClOrdId::from_number(123_456).unwrap(),
            options,
        }
    }

    #[test]
    fn test_order_accepted() {
        let b = accepted_bytes();
        assert_eq!(b.len(), 70);
        let v = OrderAccepted::new_checked(&b[..]).unwrap();
        assert_eq!(v.user_ref_num(), 7);
        assert_eq!(v.side(), Ok(Side::Buy));
        assert_eq!(v.quantity(), 100);
        assert_eq!(v.symbol(), sym("AAPL"));
        assert_eq!(v.price(), Price::from_raw(1_852_500));
        assert_eq!(v.time_in_force(), Ok(TimeInForce::Ioc));
        assert_eq!(v.display(), Ok(Display::Visible));
        assert_eq!(v.order_reference_number(), 0x0102_0304_0506_0708);
        assert_eq!(v.capacity(), Ok(Capacity::Agency));
        assert_eq!(v.intermarket_sweep(), Ok(IntermarketSweep::NotEligible));
        assert_eq!(v.cross_type(), Ok(CrossType::ContinuousMarket));
        assert_eq!(v.order_state(), Ok(OrderState::Live));
        assert_eq!(v.cl_ord_id().number(), Some(123_456));
        assert_eq!(v.appendage_len(), 6);
        check(&b, accepted().into());
        let mut dead = b.clone();
        dead[47] = b'D';
        assert!(matches!(
            OutboundMessage::parse(&dead),
            Ok(OutboundMessage::OrderAccepted(OrderAcceptedRepr {
                order_state: OrderState::Dead,
                ..
            }))
        ));
        dead[47] = b'X';
        assert_eq!(
            OutboundMessage::parse(&dead),
            Err(Error::InvalidField {
                field: Field::OrderState,
                byte: b'X'
            })
        );
    }

    #[test]
    fn test_order_replaced() {
        let b = cat(&[
            b"U",
            &TS_BYTES,
            &[0, 0, 0, 7],
            &[0, 0, 0, 8],
            b"S",
            &[0, 0, 1, 0x90],
            b"MSFT    ",
            &[0, 0, 0, 0, 0, 0x3d, 0x09, 0x00],
            b"0N",
            &[0, 0, 0, 0, 0, 0, 0, 9],
            b"PYNL",
            b"R8            ",
            &[0, 3],
            &[2, 16, b'Y'],
        ]);
        assert_eq!(b.len(), 71);
        let v = OrderReplaced::new_checked(&b[..]).unwrap();
        assert_eq!(v.orig_user_ref_num(), 7);
        assert_eq!(v.user_ref_num(), 8);
        assert_eq!(v.quantity(), 400);
        assert_eq!(v.price().to_string(), "400.0000");
        assert_eq!(v.order_state(), Ok(OrderState::Live));
        let mut options = Options::new();
        options
            .push(TagValue::TradeNow(crate::ouch50::TradeNow::Yes))
            .unwrap();
        check(
            &b,
            OrderReplacedRepr {
                timestamp: TS,
                orig_user_ref_num: 7,
                user_ref_num: 8,
                side: Side::Sell,
                quantity: 400,
                symbol: sym("MSFT"),
                price: Price::from_raw(4_000_000),
                time_in_force: TimeInForce::Day,
                display: Display::Hidden,
                order_reference_number: 9,
                capacity: Capacity::Principal,
                intermarket_sweep: IntermarketSweep::Eligible,
                cross_type: CrossType::ContinuousMarket,
                order_state: OrderState::Live,
                cl_ord_id: ClOrdId::new("R8").unwrap(),
                options,
            }
            .into(),
        );
    }

    #[test]
    fn test_order_canceled() {
        let b = cat(&[b"C", &TS_BYTES, &[0, 0, 0, 7], &[0, 0, 0, 60], b"U"]);
        let v = OrderCanceled::new_checked(&b[..]).unwrap();
        assert_eq!(v.reason(), CancelReason::UserRequested);
        check(
            &b,
            OrderCanceledRepr {
                timestamp: TS,
                user_ref_num: 7,
                quantity: 60,
                reason: CancelReason::UserRequested,
            }
            .into(),
        );
        // A reason Appendix C does not list is kept, not refused.
        let mut b2 = b.clone();
        b2[17] = b'#';
        let m = OutboundMessage::parse(&b2).unwrap();
        let OutboundMessage::OrderCanceled(c) = m else {
            panic!("{m:?}")
        };
        assert_eq!(c.reason, CancelReason::Unknown(b'#'));
        let mut out = [0u8; 18];
        assert_eq!(m.emit(&mut out), Ok(18));
        assert_eq!(&out[..], &b2[..]);
    }

    #[test]
    fn test_aiq_canceled() {
        let b = cat(&[
            b"D",
            &TS_BYTES,
            &[0, 0, 0, 7],
            &[0, 0, 0, 50],
            b"Q",
            &[0, 0, 0, 50],
            &[0, 0, 0, 0, 0, 0x1c, 0x44, 0x54],
            b"A",
            b"1",
        ]);
        assert_eq!(b.len(), 32);
        let v = AiqCanceled::new_checked(&b[..]).unwrap();
        assert_eq!(v.decrement_shares(), 50);
        assert_eq!(v.reason(), CancelReason::SelfMatchPrevention);
        assert_eq!(v.quantity_prevented(), 50);
        assert_eq!(v.execution_price(), Price::from_raw(1_852_500));
        assert_eq!(v.liquidity_flag(), LiquidityFlag::Added);
        assert_eq!(v.aiq_strategy(), b'1');
        check(
            &b,
            AiqCanceledRepr {
                timestamp: TS,
                user_ref_num: 7,
                decrement_shares: 50,
                reason: CancelReason::SelfMatchPrevention,
                quantity_prevented: 50,
                execution_price: Price::from_raw(1_852_500),
                liquidity_flag: LiquidityFlag::Added,
                aiq_strategy: b'1',
            }
            .into(),
        );
    }

    pub(crate) fn executed() -> OrderExecutedRepr {
        OrderExecutedRepr {
            timestamp: TS,
            user_ref_num: 7,
            quantity: 40,
            price: Price::from_raw(1_852_500),
            liquidity_flag: LiquidityFlag::Removed,
            match_number: 0x0a0b_0c0d,
            options: Options::new(),
        }
    }

    #[test]
    fn test_order_executed() {
        let b = cat(&[
            b"E",
            &TS_BYTES,
            &[0, 0, 0, 7],
            &[0, 0, 0, 40],
            &[0, 0, 0, 0, 0, 0x1c, 0x44, 0x54],
            b"R",
            &[0, 0, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d],
            &[0, 0],
        ]);
        assert_eq!(b.len(), 36);
        let v = OrderExecuted::new_checked(&b[..]).unwrap();
        assert_eq!(v.user_ref_num(), 7);
        assert_eq!(v.quantity(), 40);
        assert_eq!(v.price().to_string(), "185.2500");
        assert_eq!(v.liquidity_flag(), LiquidityFlag::Removed);
        assert_eq!(v.match_number(), 0x0a0b_0c0d);
        assert_eq!(v.appendage(), &[] as &[u8]);
        check(&b, executed().into());
        let mut buf = [0xaau8; 36];
        let mut v = OrderExecuted::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'E');
        v.set_timestamp(TS);
        v.set_user_ref_num(7);
        v.set_quantity(40);
        v.set_price(Price::from_raw(1_852_500));
        v.set_liquidity_flag(LiquidityFlag::Removed);
        v.set_match_number(0x0a0b_0c0d);
        v.set_options(&Options::EMPTY);
        assert_eq!(&buf[..], &b[..]);
    }

    #[test]
    fn test_broken_trade() {
        let b = cat(&[
            b"B",
            &TS_BYTES,
            &[0, 0, 0, 7],
            &[0, 0, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d],
            b"E",
            b"123456        ",
        ]);
        assert_eq!(b.len(), 36);
        let v = BrokenTrade::new_checked(&b[..]).unwrap();
        assert_eq!(v.reason(), Ok(BrokenTradeReason::Erroneous));
        check(
            &b,
            BrokenTradeRepr {
                timestamp: TS,
                user_ref_num: 7,
                match_number: 0x0a0b_0c0d,
                reason: BrokenTradeReason::Erroneous,
                cl_ord_id: ClOrdId::from_number(123_456).unwrap(),
            }
            .into(),
        );
        let mut bad = b.clone();
        bad[21] = b'Z';
        assert_eq!(
            OutboundMessage::parse(&bad),
            Err(Error::InvalidField {
                field: Field::BrokenTradeReason,
                byte: b'Z'
            })
        );
    }

    #[test]
    fn test_rejected() {
        let b = cat(&[
            b"J",
            &TS_BYTES,
            &[0, 0, 0, 7],
            &[0x00, 0x17],
            b"123456        ",
        ]);
        assert_eq!(b.len(), 29);
        let v = Rejected::new_checked(&b[..]).unwrap();
        assert_eq!(v.reason(), RejectReason::InvalidSymbol);
        assert_eq!(v.reason().to_string(), "invalid symbol");
        check(
            &b,
            RejectedRepr {
                timestamp: TS,
                user_ref_num: 7,
                reason: RejectReason::InvalidSymbol,
                cl_ord_id: ClOrdId::from_number(123_456).unwrap(),
            }
            .into(),
        );
    }

    #[test]
    fn test_cancel_pending_and_reject() {
        let p = cat(&[b"P", &TS_BYTES, &[0, 0, 0, 7]]);
        check(
            &p,
            CancelPendingRepr {
                timestamp: TS,
                user_ref_num: 7,
            }
            .into(),
        );
        let i = cat(&[b"I", &TS_BYTES, &[0, 0, 0, 7]]);
        check(
            &i,
            CancelRejectRepr {
                timestamp: TS,
                user_ref_num: 7,
            }
            .into(),
        );
        assert_eq!(CancelReject::new_checked(&i[..]).unwrap().user_ref_num(), 7);
    }

    #[test]
    fn test_order_priority_update() {
        let b = cat(&[
            b"T",
            &TS_BYTES,
            &[0, 0, 0, 7],
            &[0, 0, 0, 0, 0, 0x1c, 0x44, 0x54],
            b"Y",
            &[0, 0, 0, 0, 0, 0, 0x10, 0x00],
        ]);
        assert_eq!(b.len(), 30);
        let v = OrderPriorityUpdate::new_checked(&b[..]).unwrap();
        assert_eq!(v.order_reference_number(), 0x1000);
        check(
            &b,
            OrderPriorityUpdateRepr {
                timestamp: TS,
                user_ref_num: 7,
                price: Price::from_raw(1_852_500),
                display: Display::Visible,
                order_reference_number: 0x1000,
            }
            .into(),
        );
    }

    #[test]
    fn test_order_modified() {
        let b = cat(&[b"M", &TS_BYTES, &[0, 0, 0, 9], b"E", &[0, 0, 0x01, 0xf4]]);
        assert_eq!(b.len(), 18);
        check(
            &b,
            OrderModifiedRepr {
                timestamp: TS,
                user_ref_num: 9,
                side: Side::SellShortExempt,
                quantity: 500,
            }
            .into(),
        );
    }

    #[test]
    fn test_order_restated() {
        let b = cat(&[
            b"R",
            &TS_BYTES,
            &[0, 0, 0, 7],
            b"P",
            &[0, 16],
            &[5, 22, 0, 0, 0, 100],
            &[9, 23, 0, 0, 0, 0, 0, 0x1c, 0x44, 0x54],
        ]);
        assert_eq!(b.len(), 32);
        let v = OrderRestated::new_checked(&b[..]).unwrap();
        assert_eq!(v.reason(), Ok(RestateReason::PriceUpdate));
        let o = v.options().unwrap();
        assert_eq!(
            o.get(OptionTag::DisplayPrice),
            Some(TagValue::DisplayPrice(Price::from_raw(1_852_500)))
        );
        let mut options = Options::new();
        options
            .push(TagValue::DisplayQuantity(100))
            .unwrap()
            .push(TagValue::DisplayPrice(Price::from_raw(1_852_500)))
            .unwrap();
        check(
            &b,
            OrderRestatedRepr {
                timestamp: TS,
                user_ref_num: 7,
                reason: RestateReason::PriceUpdate,
                options,
            }
            .into(),
        );
        let mut bad = b.clone();
        bad[13] = b'X';
        assert_eq!(
            OutboundMessage::parse(&bad),
            Err(Error::InvalidField {
                field: Field::RestateReason,
                byte: b'X'
            })
        );
        // The appendage claims one byte more than it has: truncated.
        let mut bad = b.clone();
        bad[15] = 17;
        assert_eq!(
            OutboundMessage::parse(&bad),
            Err(Error::Truncated {
                msg_type: b'R',
                len: 32,
                need: 33
            })
        );
        // ...and one byte less: the last element runs past the appendage.
        let mut bad = b.clone();
        bad[15] = 15;
        assert_eq!(
            OutboundMessage::parse(&bad[..31]),
            Err(Error::OptionTruncated { offset: 6 })
        );
    }

    #[test]
    fn test_account_query_response() {
        let b = cat(&[b"Q", &TS_BYTES, &[0, 0, 0x30, 0x39]]);
        let r = AccountQueryResponseRepr {
            timestamp: TS,
            next_user_ref_num: 12_345,
        };
        check(&b, r.into());
        assert_eq!(OutboundMessage::from(r).user_ref_num(), Some(12_345));
    }

    #[test]
    fn types_and_dispatch() {
        assert_eq!(OutboundType::COUNT, 14);
        let lens: Vec<(u8, usize, bool)> = OutboundType::ALL
            .iter()
            .map(|t| (t.byte(), t.fixed_len(), t.has_appendage()))
            .collect();
        assert_eq!(
            lens,
            [
                (b'S', 10, false),
                (b'A', 64, true),
                (b'U', 68, true),
                (b'C', 18, false),
                (b'D', 32, false),
                (b'E', 36, true),
                (b'B', 36, false),
                (b'J', 29, false),
                (b'P', 13, false),
                (b'I', 13, false),
                (b'T', 30, false),
                (b'M', 18, false),
                (b'R', 16, true),
                (b'Q', 13, false),
            ]
        );
        for t in OutboundType::ALL {
            assert_eq!(OutboundType::from_byte(t.byte()), Some(t));
            assert_eq!(OutboundType::ALL[t.index()], t);
        }
        assert_eq!(OutboundMessage::parse(&[]), Err(Error::Empty));
        assert_eq!(
            OutboundMessage::parse(b"O"),
            Err(Error::UnknownType { msg_type: b'O' })
        );
        assert_eq!(
            crate::Error::from(Error::UnknownType { msg_type: b'O' }),
            crate::Error::Malformed
        );
        assert_eq!(crate::Error::from(Error::Empty), crate::Error::Truncated);
    }

    #[test]
    fn either_direction() {
        use crate::ouch50::{Direction, InboundMessage, Message};
        // `U` is Replace Order inbound (40 bytes) and Order Replaced
        // outbound (68 bytes): the direction decides.
        let mut buf = [0u8; 80];
        let n = OutboundMessage::from(executed()).emit(&mut buf).unwrap();
        let m = Message::parse(Direction::Outbound, &buf[..n]).unwrap();
        assert_eq!(m, Message::Outbound(executed().into()));
        assert_eq!(
            (m.direction(), m.msg_type(), m.name(), m.buffer_len()),
            (Direction::Outbound, b'E', "order_executed", 36)
        );
        assert_eq!(
            Message::parse(Direction::Inbound, &buf[..n]),
            Err(Error::UnknownType { msg_type: b'E' })
        );
        let q = Message::parse(Direction::Inbound, b"Q").unwrap();
        assert_eq!(q.name(), "account_query");
        assert!(matches!(
            q,
            Message::Inbound(InboundMessage::AccountQuery(_))
        ));
        let mut out = [0u8; 1];
        assert_eq!(q.emit(&mut out), Ok(1));
        assert!(Message::parse(Direction::Outbound, b"Q").is_err());
    }

    proptest! {
        #[test]
        fn round_trip_every_type(seeds in any::<[u64; 20]>()) {
            for t in OutboundType::ALL {
                let m = message_from_seeds(t, &seeds);
                let mut buf = [0u8; 256];
                let n = m.emit(&mut buf).unwrap();
                prop_assert_eq!(n, m.buffer_len());
                prop_assert_eq!(buf[0], t.byte());
                prop_assert_eq!(OutboundMessage::parse(&buf[..n]), Ok(m), "{}", t);
                prop_assert_eq!(m.emit(&mut buf[..n - 1]), Err(Error::BufferTooSmall { need: n, len: n - 1 }));
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(m) = OutboundMessage::parse(&bytes) {
                let mut buf = [0u8; 256];
                let n = m.emit(&mut buf).unwrap();
                prop_assert_eq!(&buf[..n], &bytes[..]);
            }
        }

        #[test]
        fn parse_mutated_literal(at in 0usize..70, byte in any::<u8>()) {
            // One byte of a valid message changed: parse is Ok and
            // re-emits the same bytes, or fails with a typed error.
            let mut b = accepted_bytes();
            b[at] = byte;
            match OutboundMessage::parse(&b) {
                Ok(m) => {
                    let mut buf = [0u8; 256];
                    let n = m.emit(&mut buf).unwrap();
                    prop_assert_eq!(&buf[..n], &b[..]);
                }
                Err(e) => {
                    let unexpected = matches!(e, Error::BufferTooSmall { .. } | Error::OutOfRange);
                    prop_assert!(!unexpected, "{:?}", e);
                }
            }
        }
    }
}
