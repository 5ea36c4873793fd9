//! The inbound message table (client to exchange, section 2 of the
//! specification): type byte, fixed length, field offsets as in its tables.
//! `macros.rs` generates the views, reprs, [`InboundType`] and
//! [`InboundMessage`] from it, and refuses to build when a table's fields do
//! not run contiguously from byte 1 to its length.

#[cfg(test)]
use crate::itch50::FromSeed;
use crate::itch50::Wire;

use super::types::Decode;
use super::{
    Capacity, ClOrdId, CrossType, Display, Error, IntermarketSweep, Options, Price, Result, Side,
    Symbol, TimeInForce, be16,
};
use crate::{fields_contiguous, type_byte};

ouch_messages! {
    /// Every inbound message type OUCH 5.0 defines, in the order of the
    /// specification.
    type InboundType;
    /// One inbound OUCH 5.0 message (client to exchange), parsed.
    message InboundMessage;

    /// Enter Order (`O`): a new order. The UserRefNum must be day-unique and
    /// strictly increasing per OUCH account.
    EnterOrder / EnterOrderRepr = 'O', 47 + options, "enter_order" {
        /// The order's UserRefNum.
        user_ref_num / set_user_ref_num: u32 @ 1,
        /// Buy, sell, sell short, sell short exempt.
        side / set_side: Side @ 5,
        /// Total shares; the exchange accepts 1 to 999,999.
        quantity / set_quantity: u32 @ 6,
        /// The stock symbol.
        symbol / set_symbol: Symbol @ 10,
        /// The limit price (or [`Price::MARKET`] for a cross).
        price / set_price: Price @ 18,
        /// Time in force.
        time_in_force / set_time_in_force: TimeInForce @ 26,
        /// Display.
        display / set_display: Display @ 27,
        /// Capacity.
        capacity / set_capacity: Capacity @ 28,
        /// InterMarket Sweep eligibility.
        intermarket_sweep / set_intermarket_sweep: IntermarketSweep @ 29,
        /// Cross type.
        cross_type / set_cross_type: CrossType @ 30,
        /// Customer order identifier (not checked for uniqueness).
        cl_ord_id / set_cl_ord_id: ClOrdId @ 31,
    }

    /// Replace Order (`U`): replace a live order by a new one with a new
    /// UserRefNum (the quantity is the total liable for the whole chain).
    ReplaceOrder / ReplaceOrderRepr = 'U', 40 + options, "replace_order" {
        /// The UserRefNum of the order being replaced.
        orig_user_ref_num / set_orig_user_ref_num: u32 @ 1,
        /// The new UserRefNum of the replacement.
        user_ref_num / set_user_ref_num: u32 @ 5,
        /// Total shares liable, previous executions included.
        quantity / set_quantity: u32 @ 9,
        /// The replacement's price.
        price / set_price: Price @ 13,
        /// Time in force.
        time_in_force / set_time_in_force: TimeInForce @ 21,
        /// Display.
        display / set_display: Display @ 22,
        /// InterMarket Sweep eligibility.
        intermarket_sweep / set_intermarket_sweep: IntermarketSweep @ 23,
        /// Customer order identifier of the replacement.
        cl_ord_id / set_cl_ord_id: ClOrdId @ 24,
    }

    /// Cancel Order (`X`): reduce an order to an intended size (0 cancels
    /// what is left).
    CancelOrder / CancelOrderRepr = 'X', 9, "cancel_order" {
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 1,
        /// The new intended order size: the most shares that may execute
        /// in total after the cancel.
        quantity / set_quantity: u32 @ 5,
    }

    /// Modify Order (`M`): change the side (S↔E, S↔T, E↔T) or reduce the
    /// quantity without losing priority.
    ModifyOrder / ModifyOrderRepr = 'M', 10, "modify_order" {
        /// The UserRefNum of the order.
        user_ref_num / set_user_ref_num: u32 @ 1,
        /// The new side.
        side / set_side: Side @ 5,
        /// The new intended order size (0 cancels what is left).
        quantity / set_quantity: u32 @ 6,
    }

    /// Account Query (`Q`): ask for the next UserRefNum the account may use
    /// (when recovering state).
    AccountQuery / AccountQueryRepr = 'Q', 1, "account_query" {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ouch50::{Field, OptionTag, TagValue};
    use proptest::prelude::*;

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    // ---- Enter Order ----------------------------------------------------
    // UserRefNum 7, buy 100 AAPL at 185.2500 (1_852_500 = 0x1C_4454), IOC,
    // visible, agency, not ISO, continuous, ClOrdID "123456", appendage:
    // MinQty 100 (5, 3, 0,0,0,100).
    static ENTER_ORDER: [u8; 53] = [
        b'O', 0, 0, 0, 7, b'B', 0, 0, 0, 100, //
        b'A', b'A', b'P', b'L', b' ', b' ', b' ', b' ', //
        0, 0, 0, 0, 0, 0x1c, 0x44, 0x54, //
        b'3', b'Y', b'A', b'N', b'N', //
        b'1', b'2', b'3', b'4', b'5', b'6', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', //
        0, 6, //
        5, 3, 0, 0, 0, 100,
    ];

    fn enter_order() -> EnterOrderRepr {
        let mut options = Options::new();
        options.push(TagValue::MinQty(100)).unwrap();
        EnterOrderRepr {
            user_ref_num: 7,
            side: Side::Buy,
            quantity: 100,
            symbol: sym("AAPL"),
            price: Price::from_raw(1_852_500),
            time_in_force: TimeInForce::Ioc,
            display: Display::Visible,
            capacity: Capacity::Agency,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ContinuousMarket,
            cl_ord_id: ClOrdId::from_number(123_456).unwrap(),
            options,
        }
    }

    #[test]
    fn test_enter_order_deconstruct() {
        let v = EnterOrder::new_checked(&ENTER_ORDER[..]).unwrap();
        assert_eq!(v.msg_type(), b'O');
        assert_eq!(v.user_ref_num(), 7);
        assert_eq!(v.side(), Ok(Side::Buy));
        assert_eq!(v.quantity(), 100);
        assert_eq!(v.symbol().to_string(), "AAPL");
        assert_eq!(v.price().to_string(), "185.2500");
        assert_eq!(v.time_in_force(), Ok(TimeInForce::Ioc));
        assert_eq!(v.display(), Ok(Display::Visible));
        assert_eq!(v.capacity(), Ok(Capacity::Agency));
        assert_eq!(v.intermarket_sweep(), Ok(IntermarketSweep::NotEligible));
        assert_eq!(v.cross_type(), Ok(CrossType::ContinuousMarket));
        assert_eq!(v.cl_ord_id().number(), Some(123_456));
        assert_eq!(v.appendage_len(), 6);
        assert_eq!(v.appendage(), &[5, 3, 0, 0, 0, 100]);
        assert_eq!(v.message_len(), 53);
        assert_eq!(
            v.options().unwrap().get(OptionTag::MinQty),
            Some(TagValue::MinQty(100))
        );
    }

    #[test]
    fn test_enter_order_construct() {
        let mut buf = [0xaau8; 53];
        let mut v = EnterOrder::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'O');
        v.set_user_ref_num(7);
        v.set_side(Side::Buy);
        v.set_quantity(100);
        v.set_symbol(sym("AAPL"));
        v.set_price(Price::from_raw(1_852_500));
        v.set_time_in_force(TimeInForce::Ioc);
        v.set_display(Display::Visible);
        v.set_capacity(Capacity::Agency);
        v.set_intermarket_sweep(IntermarketSweep::NotEligible);
        v.set_cross_type(CrossType::ContinuousMarket);
        v.set_cl_ord_id(ClOrdId::new("123456").unwrap());
        let mut o = Options::new();
        o.push(TagValue::MinQty(100)).unwrap();
        v.set_options(&o);
        assert_eq!(buf, ENTER_ORDER);
    }

    #[test]
    fn test_enter_order_parse_emit() {
        assert_eq!(
            InboundMessage::parse(&ENTER_ORDER),
            Ok(InboundMessage::EnterOrder(enter_order()))
        );
        let mut buf = [0u8; 64];
        assert_eq!(enter_order().encode(&mut buf), Ok(53));
        assert_eq!(&buf[..53], &ENTER_ORDER[..]);
        // Without options: 47 bytes, appendage length 0.
        let mut bare = enter_order();
        bare.options.clear();
        assert_eq!(bare.buffer_len(), 47);
        let n = InboundMessage::from(bare).emit(&mut buf).unwrap();
        assert_eq!(n, 47);
        assert_eq!(&buf[45..47], &[0, 0]);
        assert_eq!(&buf[..45], &ENTER_ORDER[..45]);
        assert_eq!(EnterOrderRepr::decode(&buf[..47]), Ok(bare));
    }

    #[test]
    fn test_enter_order_bad_input() {
        // Every shorter length is Truncated, naming the length needed.
        for n in 1..53 {
            let need = if n < 47 { 47 } else { 53 };
            assert_eq!(
                InboundMessage::parse(&ENTER_ORDER[..n]),
                Err(Error::Truncated {
                    msg_type: b'O',
                    len: n,
                    need
                }),
                "{n}"
            );
        }
        // A byte too many.
        let mut long = [0u8; 54];
        long[..53].copy_from_slice(&ENTER_ORDER);
        assert_eq!(
            InboundMessage::parse(&long),
            Err(Error::Length {
                msg_type: b'O',
                len: 54,
                expected: 53
            })
        );
        // Each code field, one at a time.
        for (at, field) in [
            (5, Field::Side),
            (26, Field::TimeInForce),
            (27, Field::Display),
            (28, Field::Capacity),
            (29, Field::IntermarketSweep),
            (30, Field::CrossType),
        ] {
            let mut b = ENTER_ORDER;
            b[at] = b'?';
            assert_eq!(
                InboundMessage::parse(&b),
                Err(Error::InvalidField { field, byte: b'?' }),
                "{field}"
            );
            // What a Rejected echoes still reads from the view.
            let v = EnterOrder::new_checked(&b[..]).unwrap();
            assert_eq!(
                (v.user_ref_num(), v.cl_ord_id().number()),
                (7, Some(123_456))
            );
        }
        assert_eq!(
            Field::Side.reject_reason(),
            crate::ouch50::RejectReason::InvalidSide
        );
        // The appendage's element claims more than the appendage holds.
        let mut b = ENTER_ORDER;
        b[47] = 6;
        assert_eq!(
            InboundMessage::parse(&b),
            Err(Error::OptionTruncated { offset: 0 })
        );
        // A known option of the wrong size.
        let mut b = ENTER_ORDER;
        b[47] = 4;
        b[48] = 24; // GroupID takes 2 bytes, not 4
        b[52] = 0;
        b[51] = 0;
        b[46] = 5;
        assert_eq!(
            InboundMessage::parse(&b[..52]),
            Err(Error::OptionLength { tag: 24, len: 3 })
        );
        // Appendage length beyond the buffer.
        let mut b = ENTER_ORDER;
        b[46] = 7;
        assert_eq!(
            InboundMessage::parse(&b),
            Err(Error::Truncated {
                msg_type: b'O',
                len: 53,
                need: 54
            })
        );
        // Encoding into a short buffer writes nothing.
        let mut small = [0u8; 52];
        assert_eq!(
            enter_order().encode(&mut small),
            Err(Error::BufferTooSmall { need: 53, len: 52 })
        );
        assert_eq!(small, [0u8; 52]);
    }

    // ---- Replace Order --------------------------------------------------
    // Replace 7 by 8: 200 shares at 185.2600 (0x1C_44B8), day, hidden, ISO,
    // ClOrdID "R8", no appendage.
    static REPLACE_ORDER: [u8; 40] = [
        b'U', 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 200, //
        0, 0, 0, 0, 0, 0x1c, 0x44, 0xb8, //
        b'0', b'N', b'Y', //
        b'R', b'8', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', //
        0, 0,
    ];

    fn replace_order() -> ReplaceOrderRepr {
        ReplaceOrderRepr {
            orig_user_ref_num: 7,
            user_ref_num: 8,
            quantity: 200,
            price: Price::from_raw(1_852_600),
            time_in_force: TimeInForce::Day,
            display: Display::Hidden,
            intermarket_sweep: IntermarketSweep::Eligible,
            cl_ord_id: ClOrdId::new("R8").unwrap(),
            options: Options::new(),
        }
    }

    #[test]
    fn test_replace_order_deconstruct() {
        let v = ReplaceOrder::new_checked(&REPLACE_ORDER[..]).unwrap();
        assert_eq!(v.orig_user_ref_num(), 7);
        assert_eq!(v.user_ref_num(), 8);
        assert_eq!(v.quantity(), 200);
        assert_eq!(v.price(), Price::from_raw(1_852_600));
        assert_eq!(v.time_in_force(), Ok(TimeInForce::Day));
        assert_eq!(v.display(), Ok(Display::Hidden));
        assert_eq!(v.intermarket_sweep(), Ok(IntermarketSweep::Eligible));
        assert_eq!(v.cl_ord_id().to_string(), "R8");
        assert_eq!(v.appendage_len(), 0);
        assert!(v.options().unwrap().is_empty());
    }

    #[test]
    fn test_replace_order_construct_parse_emit() {
        let mut buf = [0xaau8; 40];
        replace_order().emit(&mut ReplaceOrder::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REPLACE_ORDER);
        assert_eq!(
            InboundMessage::parse(&REPLACE_ORDER),
            Ok(InboundMessage::ReplaceOrder(replace_order()))
        );
        assert_eq!(
            ReplaceOrderRepr::decode(&REPLACE_ORDER),
            Ok(replace_order())
        );
        // The same type letter outbound is Order Replaced, a longer message.
        assert!(crate::ouch50::OutboundMessage::parse(&REPLACE_ORDER).is_err());
    }

    // ---- Cancel Order ---------------------------------------------------
    static CANCEL_ORDER: [u8; 9] = [b'X', 0, 0, 0, 7, 0, 0, 0, 0];

    #[test]
    fn test_cancel_order() {
        let v = CancelOrder::new_checked(&CANCEL_ORDER[..]).unwrap();
        assert_eq!(v.user_ref_num(), 7);
        assert_eq!(v.quantity(), 0);
        let r = CancelOrderRepr {
            user_ref_num: 7,
            quantity: 0,
        };
        assert_eq!(InboundMessage::parse(&CANCEL_ORDER), Ok(r.into()));
        let mut buf = [0xaau8; 9];
        let mut v = CancelOrder::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'X');
        v.set_user_ref_num(7);
        v.set_quantity(0);
        assert_eq!(buf, CANCEL_ORDER);
        assert_eq!(
            InboundMessage::parse(&CANCEL_ORDER[..8]),
            Err(Error::Truncated {
                msg_type: b'X',
                len: 8,
                need: 9
            })
        );
    }

    // ---- Modify Order ---------------------------------------------------
    static MODIFY_ORDER: [u8; 10] = [b'M', 0, 0, 0, 9, b'T', 0, 0, 0x01, 0xf4];

    #[test]
    fn test_modify_order() {
        let v = ModifyOrder::new_checked(&MODIFY_ORDER[..]).unwrap();
        assert_eq!(v.user_ref_num(), 9);
        assert_eq!(v.side(), Ok(Side::SellShort));
        assert_eq!(v.quantity(), 500);
        let r = ModifyOrderRepr {
            user_ref_num: 9,
            side: Side::SellShort,
            quantity: 500,
        };
        assert_eq!(InboundMessage::parse(&MODIFY_ORDER), Ok(r.into()));
        let mut buf = [0u8; 10];
        assert_eq!(r.encode(&mut buf), Ok(10));
        assert_eq!(buf, MODIFY_ORDER);
        let mut b = MODIFY_ORDER;
        b[5] = b'X';
        assert_eq!(
            ModifyOrderRepr::decode(&b),
            Err(Error::InvalidField {
                field: Field::Side,
                byte: b'X'
            })
        );
        assert_eq!(v.into_inner().len(), 10);
    }

    // ---- Account Query --------------------------------------------------
    #[test]
    fn test_account_query() {
        assert_eq!(
            InboundMessage::parse(b"Q"),
            Ok(InboundMessage::AccountQuery(AccountQueryRepr {}))
        );
        let mut buf = [0u8; 1];
        assert_eq!(AccountQueryRepr {}.encode(&mut buf), Ok(1));
        assert_eq!(&buf, b"Q");
        assert_eq!(
            InboundMessage::parse(b"QQ"),
            Err(Error::Length {
                msg_type: b'Q',
                len: 2,
                expected: 1
            })
        );
        assert_eq!(
            AccountQueryRepr {}.encode(&mut []),
            Err(Error::BufferTooSmall { need: 1, len: 0 })
        );
    }

    // ---- Every type -----------------------------------------------------
    #[test]
    fn types_and_dispatch() {
        assert_eq!(InboundType::COUNT, 5);
        let lens: Vec<(u8, usize, bool)> = InboundType::ALL
            .iter()
            .map(|t| (t.byte(), t.fixed_len(), t.has_appendage()))
            .collect();
        assert_eq!(
            lens,
            [
                (b'O', 47, true),
                (b'U', 40, true),
                (b'X', 9, false),
                (b'M', 10, false),
                (b'Q', 1, false)
            ]
        );
        for t in InboundType::ALL {
            assert_eq!(InboundType::from_byte(t.byte()), Some(t));
            assert_eq!(t.to_string(), t.name());
            let b = [t.byte(); 1];
            if t.fixed_len() > 1 {
                assert_eq!(
                    view_check_len(t, &b),
                    Err(Error::Truncated {
                        msg_type: t.byte(),
                        len: 1,
                        need: t.fixed_len()
                    })
                );
            }
        }
        assert_eq!(InboundMessage::parse(&[]), Err(Error::Empty));
        assert_eq!(
            InboundMessage::parse(b"A"),
            Err(Error::UnknownType { msg_type: b'A' })
        );
        assert_eq!(
            EnterOrderRepr::decode(&CANCEL_ORDER),
            Err(Error::WrongType {
                expected: b'O',
                found: b'X'
            })
        );
        assert_eq!(
            EnterOrderRepr::parse(&EnterOrder::new_unchecked(&REPLACE_ORDER[..])),
            Err(Error::Truncated {
                msg_type: b'U',
                len: 40,
                need: 47
            })
        );
    }

    proptest! {
        #[test]
        fn round_trip_every_type(seeds in any::<[u64; 16]>()) {
            for t in InboundType::ALL {
                let m = message_from_seeds(t, &seeds);
                let mut buf = [0u8; 256];
                let n = m.emit(&mut buf).unwrap();
                prop_assert_eq!(n, m.buffer_len());
                prop_assert_eq!(buf[0], t.byte());
                prop_assert_eq!(m.message_type(), t);
                prop_assert_eq!(InboundMessage::parse(&buf[..n]), Ok(m), "{}", t);
                prop_assert_eq!(m.emit(&mut buf[..n - 1]), Err(Error::BufferTooSmall { need: n, len: n - 1 }));
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(m) = InboundMessage::parse(&bytes) {
                let mut buf = [0u8; 256];
                let n = m.emit(&mut buf).unwrap();
                prop_assert_eq!(&buf[..n], &bytes[..]);
            }
        }
    }
}
