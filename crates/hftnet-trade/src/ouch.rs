//! The trader's order messages as OUCH 5.0 bytes, and OUCH 5.0 bytes as the
//! trader's exchange events: the glue between [`crate::trader::Trader`]
//! and the codec [`hftnet_wire::ouch50`].
//!
//! Layer: trading engine, sans-IO. [`encode`] writes one
//! [`OrderMsg`] as the payload of one SoupBinTCP Unsequenced Data packet
//! (Enter `O`, Replace `U`, Cancel `X`, no optional appendage; the
//! [`Price4`] widened to OUCH's 8-byte
//! price). [`Inbox::handle`] reads the payload of one Sequenced Data
//! packet and applies it: the five order-state messages the trader keeps
//! state from go to [`Trader::handle_exchange`]; the Account Query
//! Response raises the UserRefNum allocator
//! ([`crate::orders::UserRefNums::observe_next`]); AIQ Canceled (`D`) is a
//! cancel; the others (System Event, Broken Trade, Cancel Pending, Cancel
//! Reject, Order Priority Update, Order Modified, Order Restated) and
//! messages the codec refuses are counted in [`InboxCounters`], never
//! fatal: one bad message does not end a session.
//!
//! Nothing here allocates, reads a clock or does I/O.

use hftnet_wire::itch50::Price4;
use hftnet_wire::ouch50::{
    self, CancelOrderRepr, EnterOrderRepr, EventCode, OrderState, OutboundMessage, Price,
    ReplaceOrderRepr,
};

use crate::orders::{ExchangeEvent, OrderMsg, UserRefNum};
use crate::strategy::Strategy;
use crate::trader::Trader;

/// Longest message [`encode`] writes (an Enter Order without appendage).
pub const MAX_ORDER_LEN: usize = 47;

/// Writes `m` as an OUCH 5.0 inbound message into `buf`; returns its
/// length (47 for an enter, 40 for a replace, 9 for a cancel).
///
/// # Errors
/// [`ouch50::Error::BufferTooSmall`] when `buf` is too short (the code
/// fields are the codec's types: nothing else can fail).
#[inline]
pub fn encode(m: &OrderMsg, buf: &mut [u8]) -> Result<usize, ouch50::Error> {
    match m {
        OrderMsg::Enter(o, _) => EnterOrderRepr {
            user_ref_num: o.user_ref_num.0,
            side: o.side.into(),
            quantity: o.quantity,
            symbol: o.symbol,
            price: Price::from(o.price),
            time_in_force: o.time_in_force,
            display: o.display,
            capacity: o.capacity,
            intermarket_sweep: o.intermarket_sweep,
            cross_type: o.cross_type,
            cl_ord_id: o.cl_ord_id.into(),
            options: ouch50::Options::new(),
        }
        .encode(buf),
        OrderMsg::Replace(o, _) => ReplaceOrderRepr {
            orig_user_ref_num: o.orig_user_ref_num.0,
            user_ref_num: o.user_ref_num.0,
            quantity: o.quantity,
            price: Price::from(o.price),
            time_in_force: o.time_in_force,
            display: o.display,
            intermarket_sweep: o.intermarket_sweep,
            cl_ord_id: o.cl_ord_id.into(),
            options: ouch50::Options::new(),
        }
        .encode(buf),
        OrderMsg::Cancel(o, _) => CancelOrderRepr {
            user_ref_num: o.user_ref_num.0,
            quantity: o.quantity,
        }
        .encode(buf),
    }
}

/// What one OUCH outbound message means to the trader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// An order-state change for [`Trader::handle_exchange`].
    Event(ExchangeEvent),
    /// Account Query Response: the next UserRefNum the exchange expects.
    NextUserRefNum(u32),
    /// System Event: start or end of day.
    SystemEvent(EventCode),
    /// A message the trader only counts (its type byte).
    Counted(u8),
}

/// A price the trader keeps as ITCH's 4-byte price; an 8-byte one that does
/// not fit is refused as out of range.
fn price4(p: Price) -> Result<Price4, ouch50::Error> {
    p.to_itch()
}

/// Reads one OUCH outbound message (the payload of one Sequenced Data
/// packet).
///
/// # Errors
/// The codec's [`ouch50::Error`]: an empty buffer, an unknown type, a
/// wrong length, a field outside its code set, a price beyond 4 bytes.
#[inline]
pub fn decode(bytes: &[u8]) -> Result<Decoded, ouch50::Error> {
    Ok(match OutboundMessage::parse(bytes)? {
        OutboundMessage::OrderAccepted(a) => Decoded::Event(ExchangeEvent::Accepted {
            user_ref_num: UserRefNum(a.user_ref_num),
            side: a.side.to_itch(),
            quantity: a.quantity,
            symbol: a.symbol,
            price: price4(a.price)?,
            order_ref: a.order_reference_number,
            live: a.order_state == OrderState::Live,
        }),
        OutboundMessage::OrderReplaced(r) => Decoded::Event(ExchangeEvent::Replaced {
            orig_user_ref_num: UserRefNum(r.orig_user_ref_num),
            user_ref_num: UserRefNum(r.user_ref_num),
            quantity: r.quantity,
            price: price4(r.price)?,
            order_ref: r.order_reference_number,
            live: r.order_state == OrderState::Live,
        }),
        OutboundMessage::OrderCanceled(c) => Decoded::Event(ExchangeEvent::Canceled {
            user_ref_num: UserRefNum(c.user_ref_num),
            quantity: c.quantity,
            reason: c.reason,
        }),
        OutboundMessage::AiqCanceled(c) => Decoded::Event(ExchangeEvent::Canceled {
            user_ref_num: UserRefNum(c.user_ref_num),
            quantity: c.decrement_shares,
            reason: c.reason,
        }),
        OutboundMessage::OrderExecuted(e) => Decoded::Event(ExchangeEvent::Executed {
            user_ref_num: UserRefNum(e.user_ref_num),
            quantity: e.quantity,
            price: price4(e.price)?,
            liquidity: e.liquidity_flag,
            match_number: e.match_number,
        }),
        OutboundMessage::Rejected(j) => Decoded::Event(ExchangeEvent::Rejected {
            user_ref_num: UserRefNum(j.user_ref_num),
            reason: j.reason,
        }),
        OutboundMessage::AccountQueryResponse(q) => Decoded::NextUserRefNum(q.next_user_ref_num),
        OutboundMessage::SystemEvent(s) => Decoded::SystemEvent(s.event_code),
        m => Decoded::Counted(m.message_type().byte()),
    })
}

/// Counters of [`Inbox`]; plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InboxCounters {
    /// Messages applied to the trader (A, U, C, D, E, J).
    pub events: u64,
    /// System Events (`S`).
    pub system_events: u64,
    /// End of day seen (`S` with `E`).
    pub end_of_day: u64,
    /// Account Query Responses (`Q`) applied to the UserRefNum allocator.
    pub account_queries: u64,
    /// Broken Trades (`B`): counted; the position keeps the execution (the
    /// report shows how many trades the exchange broke).
    pub broken_trades: u64,
    /// Cancel Pending (`P`).
    pub cancel_pending: u64,
    /// Cancel Reject (`I`).
    pub cancel_reject: u64,
    /// Order Priority Updates (`T`).
    pub priority_updates: u64,
    /// Order Modified (`M`).
    pub modified: u64,
    /// Order Restated (`R`).
    pub restated: u64,
    /// Messages the codec refused (bad type, length, field or price).
    pub malformed: u64,
}

/// Applies OUCH outbound messages to a trader and counts them; see the
/// module doc.
#[derive(Debug, Clone, Default)]
pub struct Inbox {
    counters: InboxCounters,
}

impl Inbox {
    /// A fresh inbox.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> &InboxCounters {
        &self.counters
    }

    /// Reads one message and applies it to `trader`; returns what it was
    /// (`None`: malformed, counted).
    pub fn handle<S: Strategy>(&mut self, bytes: &[u8], trader: &mut Trader<S>) -> Option<Decoded> {
        let c = &mut self.counters;
        let Ok(d) = decode(bytes) else {
            c.malformed += 1;
            return None;
        };
        match d {
            Decoded::Event(ev) => {
                c.events += 1;
                trader.handle_exchange(&ev);
            }
            Decoded::NextUserRefNum(n) => {
                c.account_queries += 1;
                trader.refs_mut().observe_next(n);
            }
            Decoded::SystemEvent(e) => {
                c.system_events += 1;
                c.end_of_day += u64::from(e == EventCode::EndOfDay);
            }
            Decoded::Counted(t) => match t {
                b'B' => c.broken_trades += 1,
                b'P' => c.cancel_pending += 1,
                b'I' => c.cancel_reject += 1,
                b'T' => c.priority_updates += 1,
                b'M' => c.modified += 1,
                _ => c.restated += 1,
            },
        }
        Some(d)
    }
}

/// OUCH's Account Query Request (`Q`), one byte: send it after a login to
/// learn the next UserRefNum the exchange expects.
pub const ACCOUNT_QUERY: [u8; 1] = [b'Q'];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{CancelOrder, ClOrdId, EnterOrder, ReplaceOrder, Trigger};
    use hftnet_wire::itch50::{Side, Stock};

    const TRIG: Trigger = Trigger {
        seq: 1234,
        rx_ns: 9,
    };

    #[test]
    fn enter_is_ouch_o() {
        let m = OrderMsg::Enter(
            EnterOrder {
                user_ref_num: UserRefNum(7),
                side: Side::Buy,
                quantity: 100,
                symbol: Stock::new("AAPL").unwrap(),
                price: Price4::from_raw(1_852_500),
                time_in_force: crate::orders::TimeInForce::Ioc,
                display: crate::orders::Display::Visible,
                capacity: crate::orders::Capacity::Principal,
                intermarket_sweep: crate::orders::IntermarketSweep::NotEligible,
                cross_type: crate::orders::CrossType::ContinuousMarket,
                cl_ord_id: ClOrdId::from_trigger(TRIG),
            },
            TRIG,
        );
        let mut buf = [0u8; 64];
        let n = encode(&m, &mut buf).unwrap();
        let want: [u8; 47] = [
            b'O', 0, 0, 0, 7, b'B', 0, 0, 0, 100, //
            b'A', b'A', b'P', b'L', b' ', b' ', b' ', b' ', //
            0, 0, 0, 0, 0, 0x1c, 0x44, 0x54, //
            b'3', b'Y', b'P', b'N', b'N', //
            b'1', b'2', b'3', b'4', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ',
            b' ', //
            0, 0,
        ];
        assert_eq!(&buf[..n], &want[..]);
        // The exchange reads the trigger back with the codec's own helper.
        let v = ouch50::EnterOrder::new_checked(&buf[..n]).unwrap();
        assert_eq!(v.cl_ord_id().number(), Some(1234));
        assert_eq!(
            encode(&m, &mut [0u8; 46]),
            Err(ouch50::Error::BufferTooSmall { need: 47, len: 46 })
        );
    }

    #[test]
    fn replace_and_cancel_are_ouch_u_and_x() {
        let m = OrderMsg::Replace(
            ReplaceOrder {
                orig_user_ref_num: UserRefNum(7),
                user_ref_num: UserRefNum(8),
                quantity: 300,
                price: Price4::from_raw(1_000_100),
                time_in_force: crate::orders::TimeInForce::Day,
                display: crate::orders::Display::Visible,
                intermarket_sweep: crate::orders::IntermarketSweep::NotEligible,
                cl_ord_id: ClOrdId::from_trigger(Trigger::NONE),
            },
            Trigger::NONE,
        );
        let mut buf = [0u8; 64];
        let n = encode(&m, &mut buf).unwrap();
        let want: [u8; 40] = [
            b'U', 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 1, 0x2c, //
            0, 0, 0, 0, 0, 0x0f, 0x42, 0xa4, //
            b'0', b'Y', b'N', //
            b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ', b' ',
            b' ', //
            0, 0,
        ];
        assert_eq!(&buf[..n], &want[..]);
        let c = OrderMsg::Cancel(
            CancelOrder {
                user_ref_num: UserRefNum(0x0102_0304),
                quantity: 0,
            },
            Trigger::NONE,
        );
        let n = encode(&c, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[b'X', 1, 2, 3, 4, 0, 0, 0, 0]);
    }

    const TS: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn outbound_messages_become_events() {
        let accepted = cat(&[
            b"A",
            &TS,
            &[0, 0, 0, 7],
            b"B",
            &[0, 0, 0, 100],
            b"AAPL    ",
            &[0, 0, 0, 0, 0, 0x1c, 0x44, 0x54],
            b"3Y",
            &[0, 0, 0, 0, 0, 0, 0, 9],
            b"PNND",
            b"1234          ",
            &[0, 0],
        ]);
        assert_eq!(
            decode(&accepted),
            Ok(Decoded::Event(ExchangeEvent::Accepted {
                user_ref_num: UserRefNum(7),
                side: Side::Buy,
                quantity: 100,
                symbol: Stock::new("AAPL").unwrap(),
                price: Price4::from_raw(1_852_500),
                order_ref: 9,
                live: false,
            }))
        );
        let executed = cat(&[
            b"E",
            &TS,
            &[0, 0, 0, 7],
            &[0, 0, 0, 40],
            &[0, 0, 0, 0, 0, 0x1c, 0x44, 0x54],
            b"A",
            &[0, 0, 0, 0, 0, 0, 0, 5],
            &[0, 0],
        ]);
        assert_eq!(
            decode(&executed),
            Ok(Decoded::Event(ExchangeEvent::Executed {
                user_ref_num: UserRefNum(7),
                quantity: 40,
                price: Price4::from_raw(1_852_500),
                liquidity: crate::orders::LiquidityFlag::Added,
                match_number: 5,
            }))
        );
        let canceled = cat(&[b"C", &TS, &[0, 0, 0, 7], &[0, 0, 0, 60], b"U"]);
        assert_eq!(
            decode(&canceled),
            Ok(Decoded::Event(ExchangeEvent::Canceled {
                user_ref_num: UserRefNum(7),
                quantity: 60,
                reason: crate::orders::CancelReason::UserRequested,
            }))
        );
        let replaced = cat(&[
            b"U",
            &TS,
            &[0, 0, 0, 7],
            &[0, 0, 0, 8],
            b"S",
            &[0, 0, 0, 10],
            b"AAPL    ",
            &[0, 0, 0, 0, 0, 0, 0x27, 0x10],
            b"0Y",
            &[0, 0, 0, 0, 0, 0, 0, 10],
            b"PNNL",
            b"              ",
            &[0, 0],
        ]);
        assert_eq!(
            decode(&replaced),
            Ok(Decoded::Event(ExchangeEvent::Replaced {
                orig_user_ref_num: UserRefNum(7),
                user_ref_num: UserRefNum(8),
                quantity: 10,
                price: Price4::from_raw(10_000),
                order_ref: 10,
                live: true,
            }))
        );
        let rejected = cat(&[b"J", &TS, &[0, 0, 0, 9], &[0, 0x01], b"              "]);
        assert_eq!(
            decode(&rejected),
            Ok(Decoded::Event(ExchangeEvent::Rejected {
                user_ref_num: UserRefNum(9),
                reason: crate::orders::RejectReason::QuoteUnavailable,
            }))
        );
        let query = cat(&[b"Q", &TS, &[0, 0, 0x01, 0]]);
        assert_eq!(decode(&query), Ok(Decoded::NextUserRefNum(256)));
        let sys = cat(&[b"S", &TS, b"E"]);
        assert_eq!(decode(&sys), Ok(Decoded::SystemEvent(EventCode::EndOfDay)));
        let pending = cat(&[b"P", &TS, &[0, 0, 0, 7]]);
        assert_eq!(decode(&pending), Ok(Decoded::Counted(b'P')));
        // A price beyond 4 bytes cannot be a price the trader sent.
        let mut huge = executed.clone();
        huge[17] = 1;
        assert_eq!(decode(&huge), Err(ouch50::Error::OutOfRange));
    }

    #[test]
    fn inbox_counts_what_it_does_not_apply() {
        use crate::strategy::{Taker, TakerConfig};
        use crate::trader::TraderConfig;
        let cfg = TraderConfig {
            symbols: vec!["AAPL".into()],
            ..TraderConfig::default()
        };
        let strat = Taker::new(TakerConfig::default(), &cfg.symbol_table().unwrap()).unwrap();
        let mut t = Trader::new(cfg, strat).unwrap();
        let mut inbox = Inbox::new();
        for bytes in [
            &cat(&[b"S", &TS, b"S"])[..],
            &cat(&[b"S", &TS, b"E"]),
            &cat(&[b"P", &TS, &[0, 0, 0, 7]]),
            &cat(&[b"I", &TS, &[0, 0, 0, 7]]),
            &cat(&[b"Q", &TS, &[0, 0, 0, 50]]),
            &cat(&[b"C", &TS, &[0, 0, 0, 7], &[0, 0, 0, 60], b"U"]),
            b"",
            b"Z",
            &cat(&[b"S", &TS, b"X"]),
            &cat(&[b"C", &TS, &[0, 0, 0, 7]]),
        ] {
            inbox.handle(bytes, &mut t);
        }
        let c = *inbox.counters();
        assert_eq!(
            (
                c.system_events,
                c.end_of_day,
                c.cancel_pending,
                c.cancel_reject
            ),
            (2, 1, 1, 1)
        );
        assert_eq!((c.account_queries, c.events, c.malformed), (1, 1, 4));
        // The cancel of an order never sent is the trader's `unexpected`.
        assert_eq!(t.counters().unexpected, 1);
        // The exchange's next number raised the allocator.
        let m = t.refs_mut().poll_persist().unwrap();
        t.refs_mut().confirm_persisted(m);
        assert_eq!(t.refs_mut().allocate(), Some(UserRefNum(50)));
    }

    /// The trader's encoder and the exchange's decoder are the two ends of
    /// one path: every order the trader writes reads back on the exchange
    /// field for field, with the same code types; and every event the
    /// exchange writes reads back on the trader as the event it means.
    #[test]
    fn both_sides_read_what_the_other_writes() {
        use crate::matching::ouch::{Inbound, OuchInbound, encode_event};
        use crate::matching::{self as mx, OrderEvent, Request};
        use crate::orders::{
            CancelReason, Capacity, CrossType, Display, IntermarketSweep, LiquidityFlag, OrderSide,
            RejectReason, TimeInForce,
        };
        let aapl = Stock::new("AAPL").unwrap();
        let cl = ClOrdId::from_trigger(TRIG);
        let mut buf = [0u8; 80];
        let mut inbound = OuchInbound::new();
        for (side, tif) in [
            (Side::Buy, TimeInForce::Ioc),
            (Side::Sell, TimeInForce::Day),
        ] {
            let o = EnterOrder {
                user_ref_num: UserRefNum(9),
                side,
                quantity: 300,
                symbol: aapl,
                price: Price4::from_raw(1_000_100),
                time_in_force: tif,
                display: Display::Visible,
                capacity: Capacity::Principal,
                intermarket_sweep: IntermarketSweep::NotEligible,
                cross_type: CrossType::ContinuousMarket,
                cl_ord_id: cl,
            };
            let n = encode(&OrderMsg::Enter(o, TRIG), &mut buf).unwrap();
            assert_eq!(
                inbound.decode(&buf[..n]),
                Inbound::Request(Request::Enter(mx::EnterOrder {
                    user_ref_num: 9,
                    side: OrderSide::from(side).as_byte(),
                    quantity: 300,
                    symbol: aapl,
                    price: 1_000_100,
                    time_in_force: tif.as_byte(),
                    display: b'Y',
                    capacity: b'P',
                    intermarket_sweep: b'N',
                    cross_type: b'N',
                    cl_ord_id: cl,
                }))
            );
        }
        let r = ReplaceOrder {
            orig_user_ref_num: UserRefNum(9),
            user_ref_num: UserRefNum(10),
            quantity: 200,
            price: Price4::from_raw(999_900),
            time_in_force: TimeInForce::Day,
            display: Display::Hidden,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cl_ord_id: cl,
        };
        let n = encode(&OrderMsg::Replace(r, TRIG), &mut buf).unwrap();
        let Inbound::Request(Request::Replace(got)) = inbound.decode(&buf[..n]) else {
            panic!("not a replace");
        };
        assert_eq!(
            (
                got.orig_user_ref_num,
                got.user_ref_num,
                got.quantity,
                got.price
            ),
            (9, 10, 200, 999_900)
        );
        assert_eq!(
            (got.time_in_force, got.display, got.cl_ord_id),
            (b'0', b'N', cl)
        );
        let c = CancelOrder {
            user_ref_num: UserRefNum(10),
            quantity: 0,
        };
        let n = encode(&OrderMsg::Cancel(c, Trigger::NONE), &mut buf).unwrap();
        assert_eq!(
            inbound.decode(&buf[..n]),
            Inbound::Request(Request::Cancel(mx::CancelOrder {
                user_ref_num: 10,
                quantity: 0
            }))
        );
        assert_eq!(inbound.bad_fields.total() + inbound.bad_messages.total(), 0);

        // The exchange's events, as the trader reads them.
        let cases = [
            (
                OrderEvent::Accepted {
                    user_ref_num: 9,
                    side: OrderSide::Buy,
                    quantity: 300,
                    symbol: aapl,
                    price: 1_000_100,
                    time_in_force: TimeInForce::Day,
                    display: Display::Visible,
                    capacity: Capacity::Principal,
                    order_reference_number: 77,
                    cl_ord_id: cl,
                },
                ExchangeEvent::Accepted {
                    user_ref_num: UserRefNum(9),
                    side: Side::Buy,
                    quantity: 300,
                    symbol: aapl,
                    price: Price4::from_raw(1_000_100),
                    order_ref: 77,
                    live: true,
                },
            ),
            (
                OrderEvent::Executed {
                    user_ref_num: 9,
                    quantity: 100,
                    price: 1_000_000,
                    liquidity: LiquidityFlag::Removed,
                    match_number: 5,
                },
                ExchangeEvent::Executed {
                    user_ref_num: UserRefNum(9),
                    quantity: 100,
                    price: Price4::from_raw(1_000_000),
                    liquidity: LiquidityFlag::Removed,
                    match_number: 5,
                },
            ),
            (
                OrderEvent::Canceled {
                    user_ref_num: 9,
                    decrement: 200,
                    reason: CancelReason::ImmediateOrCancel,
                },
                ExchangeEvent::Canceled {
                    user_ref_num: UserRefNum(9),
                    quantity: 200,
                    reason: CancelReason::ImmediateOrCancel,
                },
            ),
            (
                OrderEvent::Rejected {
                    user_ref_num: 11,
                    reason: RejectReason::InvalidPrice,
                    cl_ord_id: cl,
                },
                ExchangeEvent::Rejected {
                    user_ref_num: UserRefNum(11),
                    reason: RejectReason::InvalidPrice,
                },
            ),
        ];
        for (ev, want) in cases {
            let n = encode_event(&ev, 1, &mut buf).unwrap();
            assert_eq!(decode(&buf[..n]), Ok(Decoded::Event(want)), "{ev:?}");
        }
    }
}
