//! OUCH 5.0 on the exchange core: inbound messages (the payloads of
//! SoupBinTCP Unsequenced Data) into [`Request`]s, and the core's
//! [`OrderEvent`]s into outbound OUCH messages (the payloads of Sequenced
//! Data), sans-IO.
//!
//! Layer: trading engine, exchange side, between the codec
//! ([`hftnet_wire::ouch50`]) and the core ([`Exchange`]). Nothing here
//! allocates, reads a clock or does I/O: the caller passes the timestamp
//! and the output buffer.
//!
//! # Inbound ([`OuchInbound`])
//!
//! Each message is read through the codec's views, field for field into
//! the request. A one-byte code the codec refuses (a Side of `x`, a Time
//! In Force of `9`, ...) is counted by field ([`BadFields`]) and handed to
//! the core as the raw byte, which answers it with its Appendix D reason
//! ([`RejectReason::InvalidSide`], [`RejectReason::InvalidDisplay`],
//! [`RejectReason::InvalidCrossOrder`], [`RejectReason::IsoNotAllowed`],
//! [`RejectReason::Other`] for Time In Force and Capacity) — so the reason
//! and the UserRefNum rules are the core's alone. An Enter or Replace
//! whose optional appendage does not parse is rejected
//! [`RejectReason::Other`] (through [`Exchange::reject_request`], with the
//! same UserRefNum rules). A message whose type byte is not an inbound
//! OUCH type, or whose length is not its type's, carries no UserRefNum to
//! answer: it is counted ([`BadOuch`]) and ignored, and the session stays
//! up.
//!
//! # Outbound ([`encode_event`], [`encode_system_event`])
//!
//! Every event becomes the OUCH message of the same name, stamped with the
//! caller's timestamp: Accepted (`A`, Order State Live, InterMarket Sweep
//! `N`, CrossType `N`), Replaced (`U`), Canceled (`C`, Appendix C reason),
//! Executed (`E`, Appendix E liquidity flag and the ITCH match number),
//! Rejected (`J`, Appendix D code), Modified (`M`) and Account Query
//! Response (`Q`); System Event (`S`) for the start and end of the day. No
//! optional appendage is written. Every message fits in
//! [`MAX_OUTBOUND_LEN`] bytes.

use hftnet_wire::ouch50::{
    self, AccountQueryResponseRepr, CancelOrder as CancelView, CrossType, EnterOrder as EnterView,
    Error, EventCode, InboundType, IntermarketSweep, ModifyOrder as ModifyView, Options,
    OrderAcceptedRepr, OrderCanceledRepr, OrderExecutedRepr, OrderModifiedRepr, OrderReplacedRepr,
    OrderState, Price, RejectedRepr, ReplaceOrder as ReplaceView, SystemEventRepr,
};
use serde::Serialize;

use super::{
    CancelOrder, EnterOrder, Exchange, ExchangeOutput, ModifyOrder, OrderEvent, RejectReason,
    ReplaceOrder, Request, SessionId,
};

/// The longest outbound message [`encode_event`] writes (Order Replaced
/// without appendage).
pub const MAX_OUTBOUND_LEN: usize = 68;

/// Inbound messages that carried no request, by reason (counted, ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BadOuch {
    /// Empty payload: no type byte.
    pub empty: u64,
    /// A type byte that names no inbound OUCH 5.0 message.
    pub unknown_type: u64,
    /// A length other than the message type's (fixed part plus the
    /// appendage length it declares).
    pub bad_length: u64,
}

impl BadOuch {
    /// All of them.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.empty + self.unknown_type + self.bad_length
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Self) {
        self.empty += o.empty;
        self.unknown_type += o.unknown_type;
        self.bad_length += o.bad_length;
    }
}

/// Code fields holding a byte OUCH 5.0 does not define for them, by field
/// (the request went on to the core, which rejected or ignored it), and
/// appendages that did not parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BadFields {
    /// Side (Enter, Modify).
    pub side: u64,
    /// Time In Force.
    pub time_in_force: u64,
    /// Display.
    pub display: u64,
    /// Capacity.
    pub capacity: u64,
    /// InterMarket Sweep Eligibility.
    pub intermarket_sweep: u64,
    /// CrossType.
    pub cross_type: u64,
    /// Optional appendages that did not parse (the order was rejected
    /// [`RejectReason::Other`]).
    pub appendage: u64,
}

impl BadFields {
    /// All of them.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.side
            + self.time_in_force
            + self.display
            + self.capacity
            + self.intermarket_sweep
            + self.cross_type
            + self.appendage
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Self) {
        self.side += o.side;
        self.time_in_force += o.time_in_force;
        self.display += o.display;
        self.capacity += o.capacity;
        self.intermarket_sweep += o.intermarket_sweep;
        self.cross_type += o.cross_type;
        self.appendage += o.appendage;
    }
}

/// What one inbound message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// A request for the core.
    Request(Request),
    /// An Enter or Replace to reject without the core's checks (its
    /// appendage did not parse).
    Reject {
        /// Its UserRefNum.
        user_ref_num: u32,
        /// Its ClOrdID.
        cl_ord_id: crate::orders::ClOrdId,
        /// Why.
        reason: RejectReason,
    },
    /// Nothing to answer (counted in [`BadOuch`]).
    Ignored,
}

/// The inbound side of OUCH on the core: decodes messages, counts the bad
/// ones, hands the requests to the [`Exchange`]. Plain counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OuchInbound {
    /// Messages decoded (bad ones included).
    pub messages: u64,
    /// Messages ignored, by reason.
    pub bad_messages: BadOuch,
    /// Bad code fields, by field.
    pub bad_fields: BadFields,
}

/// The byte of a code field: the value's, or the one the codec refused
/// (counted in `bad`).
#[inline]
fn raw<T: Into<u8>>(r: ouch50::Result<T>, bad: &mut u64) -> u8 {
    match r {
        Ok(v) => v.into(),
        Err(Error::InvalidField { byte, .. }) => {
            *bad += 1;
            byte
        }
        // A code getter only fails with InvalidField.
        Err(_) => {
            *bad += 1;
            0
        }
    }
}

impl OuchInbound {
    /// New, all counters 0.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            messages: 0,
            bad_messages: BadOuch {
                empty: 0,
                unknown_type: 0,
                bad_length: 0,
            },
            bad_fields: BadFields {
                side: 0,
                time_in_force: 0,
                display: 0,
                capacity: 0,
                intermarket_sweep: 0,
                cross_type: 0,
                appendage: 0,
            },
        }
    }

    /// Decodes one inbound message (a SoupBinTCP Unsequenced Data
    /// payload); see the module doc for what becomes of bad ones.
    pub fn decode(&mut self, msg: &[u8]) -> Inbound {
        self.messages += 1;
        let Some(&t) = msg.first() else {
            self.bad_messages.empty += 1;
            return Inbound::Ignored;
        };
        let Some(ty) = InboundType::from_byte(t) else {
            self.bad_messages.unknown_type += 1;
            return Inbound::Ignored;
        };
        let bf = &mut self.bad_fields;
        let decoded = match ty {
            InboundType::EnterOrder => EnterView::new_checked(msg)
                .ok()
                .filter(|v| v.message_len() == msg.len())
                .map(|v| {
                    let o = EnterOrder {
                        user_ref_num: v.user_ref_num(),
                        side: raw(v.side(), &mut bf.side),
                        quantity: v.quantity(),
                        symbol: v.symbol(),
                        price: v.price().raw(),
                        time_in_force: raw(v.time_in_force(), &mut bf.time_in_force),
                        display: raw(v.display(), &mut bf.display),
                        capacity: raw(v.capacity(), &mut bf.capacity),
                        intermarket_sweep: raw(v.intermarket_sweep(), &mut bf.intermarket_sweep),
                        cross_type: raw(v.cross_type(), &mut bf.cross_type),
                        cl_ord_id: v.cl_ord_id().into(),
                    };
                    with_appendage(v.options().is_ok(), &mut bf.appendage, Request::Enter(o))
                }),
            InboundType::ReplaceOrder => ReplaceView::new_checked(msg)
                .ok()
                .filter(|v| v.message_len() == msg.len())
                .map(|v| {
                    let o = ReplaceOrder {
                        orig_user_ref_num: v.orig_user_ref_num(),
                        user_ref_num: v.user_ref_num(),
                        quantity: v.quantity(),
                        price: v.price().raw(),
                        time_in_force: raw(v.time_in_force(), &mut bf.time_in_force),
                        display: raw(v.display(), &mut bf.display),
                        intermarket_sweep: raw(v.intermarket_sweep(), &mut bf.intermarket_sweep),
                        cl_ord_id: v.cl_ord_id().into(),
                    };
                    with_appendage(v.options().is_ok(), &mut bf.appendage, Request::Replace(o))
                }),
            InboundType::CancelOrder => CancelView::new_checked(msg)
                .ok()
                .filter(|v| v.message_len() == msg.len())
                .map(|v| {
                    Inbound::Request(Request::Cancel(CancelOrder {
                        user_ref_num: v.user_ref_num(),
                        quantity: v.quantity(),
                    }))
                }),
            InboundType::ModifyOrder => ModifyView::new_checked(msg)
                .ok()
                .filter(|v| v.message_len() == msg.len())
                .map(|v| {
                    Inbound::Request(Request::Modify(ModifyOrder {
                        user_ref_num: v.user_ref_num(),
                        side: raw(v.side(), &mut bf.side),
                        quantity: v.quantity(),
                    }))
                }),
            InboundType::AccountQuery => {
                (msg.len() == ty.fixed_len()).then_some(Inbound::Request(Request::AccountQuery))
            }
        };
        decoded.unwrap_or_else(|| {
            self.bad_messages.bad_length += 1;
            Inbound::Ignored
        })
    }

    /// Decodes one inbound message of `session` and hands it to `x`
    /// ([`Exchange::handle_request`], or [`Exchange::reject_request`]);
    /// returns the request when there was one (the caller reads its
    /// ClOrdID for tick-to-trade).
    pub fn handle(
        &mut self,
        x: &mut Exchange,
        session: SessionId,
        msg: &[u8],
        now_ns: u64,
        out: &mut impl ExchangeOutput,
    ) -> Option<Request> {
        match self.decode(msg) {
            Inbound::Request(r) => {
                x.handle_request(session, &r, now_ns, out);
                Some(r)
            }
            Inbound::Reject {
                user_ref_num,
                cl_ord_id,
                reason,
            } => {
                x.reject_request(session, user_ref_num, reason, cl_ord_id, out);
                None
            }
            Inbound::Ignored => None,
        }
    }
}

/// An Enter or Replace request, or its rejection (counted in `bad`) when
/// its appendage did not parse.
fn with_appendage(ok: bool, bad: &mut u64, r: Request) -> Inbound {
    let (user_ref_num, cl_ord_id) = match r {
        Request::Enter(o) => (o.user_ref_num, o.cl_ord_id),
        Request::Replace(o) => (o.user_ref_num, o.cl_ord_id),
        _ => return Inbound::Request(r),
    };
    if ok {
        return Inbound::Request(r);
    }
    *bad += 1;
    Inbound::Reject {
        user_ref_num,
        cl_ord_id,
        reason: RejectReason::Other,
    }
}

/// The ClOrdID of an Enter or Replace request.
#[must_use]
pub const fn cl_ord_id(r: &Request) -> Option<crate::orders::ClOrdId> {
    match r {
        Request::Enter(o) => Some(o.cl_ord_id),
        Request::Replace(o) => Some(o.cl_ord_id),
        _ => None,
    }
}

/// Writes `event` as its OUCH 5.0 outbound message, stamped `timestamp`
/// (nanoseconds since midnight), into `buf`; returns its length.
///
/// # Errors
/// [`Error::BufferTooSmall`] when `buf` is shorter than the message
/// ([`MAX_OUTBOUND_LEN`] always holds it).
pub fn encode_event(event: &OrderEvent, timestamp: u64, buf: &mut [u8]) -> ouch50::Result<usize> {
    match *event {
        OrderEvent::Accepted {
            user_ref_num,
            side,
            quantity,
            symbol,
            price,
            time_in_force,
            display,
            capacity,
            order_reference_number,
            cl_ord_id,
        } => OrderAcceptedRepr {
            timestamp,
            user_ref_num,
            side,
            quantity,
            symbol,
            price: Price::from_raw(price),
            time_in_force,
            display,
            order_reference_number,
            capacity,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ContinuousMarket,
            order_state: OrderState::Live,
            cl_ord_id: cl_ord_id.into(),
            options: Options::new(),
        }
        .encode(buf),
        OrderEvent::Replaced {
            user_ref_num,
            orig_user_ref_num,
            side,
            quantity,
            symbol,
            price,
            time_in_force,
            display,
            capacity,
            order_reference_number,
            cl_ord_id,
        } => OrderReplacedRepr {
            timestamp,
            orig_user_ref_num,
            user_ref_num,
            side,
            quantity,
            symbol,
            price: Price::from_raw(price),
            time_in_force,
            display,
            order_reference_number,
            capacity,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ContinuousMarket,
            order_state: OrderState::Live,
            cl_ord_id: cl_ord_id.into(),
            options: Options::new(),
        }
        .encode(buf),
        OrderEvent::Canceled {
            user_ref_num,
            decrement,
            reason,
        } => OrderCanceledRepr {
            timestamp,
            user_ref_num,
            quantity: decrement,
            reason,
        }
        .encode(buf),
        OrderEvent::Executed {
            user_ref_num,
            quantity,
            price,
            liquidity,
            match_number,
        } => OrderExecutedRepr {
            timestamp,
            user_ref_num,
            quantity,
            price: Price::from_raw(price),
            liquidity_flag: liquidity,
            match_number,
            options: Options::new(),
        }
        .encode(buf),
        OrderEvent::Rejected {
            user_ref_num,
            reason,
            cl_ord_id,
        } => RejectedRepr {
            timestamp,
            user_ref_num,
            reason,
            cl_ord_id: cl_ord_id.into(),
        }
        .encode(buf),
        OrderEvent::Modified {
            user_ref_num,
            side,
            quantity,
        } => OrderModifiedRepr {
            timestamp,
            user_ref_num,
            side,
            quantity,
        }
        .encode(buf),
        OrderEvent::AccountQuery { next_user_ref_num } => AccountQueryResponseRepr {
            timestamp,
            next_user_ref_num,
        }
        .encode(buf),
    }
}

/// Writes a System Event (`S`: start or end of day) into `buf`; returns
/// its length (10).
///
/// # Errors
/// [`Error::BufferTooSmall`].
pub fn encode_system_event(
    code: EventCode,
    timestamp: u64,
    buf: &mut [u8],
) -> ouch50::Result<usize> {
    SystemEventRepr {
        timestamp,
        event_code: code,
    }
    .encode(buf)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{AAPL, started};
    use super::super::{CancelReason, Capacity, Display, LiquidityFlag, OrderSide, TimeInForce};
    use super::*;

    const TS: u64 = 1;
    const TSB: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];
    /// 185.2500 as an OUCH Price.
    const PRICE: [u8; 8] = [0, 0, 0, 0, 0, 0x1c, 0x44, 0x54];
    const CLORD: [u8; 14] = *b"00000000000042";
    const CLORD_ID: crate::orders::ClOrdId = crate::orders::ClOrdId(CLORD);

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Enter Order: UserRefNum `urn`, buy 100 AAPL at 185.25, IOC, visible,
    /// agency, not ISO, continuous, ClOrdID 42, no appendage; `fields`
    /// replaces bytes 26..31 (TIF, display, capacity, ISO, cross) and
    /// `side` byte 5.
    fn enter_bytes(urn: u8, side: u8, fields: [u8; 5]) -> Vec<u8> {
        cat(&[
            &[b'O', 0, 0, 0, urn, side, 0, 0, 0, 100],
            b"AAPL    ",
            &PRICE,
            &fields,
            &CLORD,
            &[0, 0],
        ])
    }

    const GOOD: [u8; 5] = *b"3YANN";

    #[test]
    fn enter_order_field_for_field() {
        let b = enter_bytes(7, b'B', GOOD);
        assert_eq!(b.len(), 47);
        let mut i = OuchInbound::new();
        assert_eq!(
            i.decode(&b),
            Inbound::Request(Request::Enter(EnterOrder {
                user_ref_num: 7,
                side: b'B',
                quantity: 100,
                symbol: AAPL,
                price: 1_852_500,
                time_in_force: b'3',
                display: b'Y',
                capacity: b'A',
                intermarket_sweep: b'N',
                cross_type: b'N',
                cl_ord_id: CLORD_ID,
            }))
        );
        assert_eq!(
            (i.messages, i.bad_messages.total(), i.bad_fields.total()),
            (1, 0, 0)
        );
        assert_eq!(cl_ord_id(&Request::AccountQuery), None);
    }

    #[test]
    fn replace_cancel_modify_query_field_for_field() {
        let mut i = OuchInbound::new();
        let replace = cat(&[
            &[b'U', 0, 0, 0, 7, 0, 0, 0, 8, 0, 0, 0, 150],
            &PRICE,
            b"0AN",
            &CLORD,
            &[0, 0],
        ]);
        assert_eq!(replace.len(), 40);
        let r = i.decode(&replace);
        assert_eq!(
            r,
            Inbound::Request(Request::Replace(ReplaceOrder {
                orig_user_ref_num: 7,
                user_ref_num: 8,
                quantity: 150,
                price: 1_852_500,
                time_in_force: b'0',
                display: b'A',
                intermarket_sweep: b'N',
                cl_ord_id: CLORD_ID,
            }))
        );
        let Inbound::Request(req) = r else {
            unreachable!()
        };
        assert_eq!(cl_ord_id(&req), Some(CLORD_ID));
        assert_eq!(
            i.decode(&[b'X', 0, 0, 0, 8, 0, 0, 0, 20]),
            Inbound::Request(Request::Cancel(CancelOrder {
                user_ref_num: 8,
                quantity: 20
            }))
        );
        assert_eq!(
            i.decode(&[b'M', 0, 0, 0, 8, b'T', 0, 0, 0, 10]),
            Inbound::Request(Request::Modify(ModifyOrder {
                user_ref_num: 8,
                side: b'T',
                quantity: 10
            }))
        );
        assert_eq!(i.decode(b"Q"), Inbound::Request(Request::AccountQuery));
        assert_eq!((i.messages, i.bad_messages.total()), (4, 0));
    }

    #[test]
    fn bad_messages_are_counted_and_ignored() {
        let mut i = OuchInbound::new();
        let good = enter_bytes(7, b'B', GOOD);
        assert_eq!(i.decode(&[]), Inbound::Ignored);
        assert_eq!(i.decode(b"Z123"), Inbound::Ignored);
        // 'A' is outbound only.
        assert_eq!(i.decode(b"A"), Inbound::Ignored);
        assert_eq!(i.decode(&good[..46]), Inbound::Ignored);
        let mut long = good.clone();
        long.push(0);
        assert_eq!(i.decode(&long), Inbound::Ignored);
        assert_eq!(i.decode(b"QQ"), Inbound::Ignored);
        assert_eq!(i.decode(&[b'X', 0, 0, 0, 8, 0, 0, 0]), Inbound::Ignored);
        assert_eq!(
            i.bad_messages,
            BadOuch {
                empty: 1,
                unknown_type: 2,
                bad_length: 4
            }
        );
        assert_eq!(i.messages, 7);
    }

    #[test]
    fn bad_fields_get_the_spec_reject_codes_from_the_core() {
        let (mut x, _g, s, mut out) = started();
        let mut i = OuchInbound::new();
        let cases: [(u8, [u8; 5], RejectReason, u16); 6] = [
            (b'x', GOOD, RejectReason::InvalidSide, 0x09),
            (b'B', *b"9YANN", RejectReason::Other, 0x0F),
            (b'B', *b"3QANN", RejectReason::InvalidDisplay, 0x03),
            (b'B', *b"3YZNN", RejectReason::Other, 0x0F),
            (b'B', *b"3YAYN", RejectReason::IsoNotAllowed, 0x08),
            (b'B', *b"3YANO", RejectReason::InvalidCrossOrder, 0x14),
        ];
        for (k, (side, fields, reason, code)) in cases.into_iter().enumerate() {
            let urn = k as u8 + 1;
            let b = enter_bytes(urn, side, fields);
            assert!(i.handle(&mut x, s, &b, 5, &mut out).is_some());
            let (_, ev) = out.take();
            assert_eq!(
                ev,
                [(
                    s,
                    OrderEvent::Rejected {
                        user_ref_num: u32::from(urn),
                        reason,
                        cl_ord_id: CLORD_ID
                    }
                )],
                "{k}"
            );
            let mut buf = [0u8; MAX_OUTBOUND_LEN];
            let n = encode_event(&ev[0].1, TS, &mut buf).unwrap();
            let want = cat(&[b"J", &TSB, &[0, 0, 0, urn], &code.to_be_bytes(), &CLORD]);
            assert_eq!(&buf[..n], &want[..], "{k}");
        }
        // Side and TIF, display and capacity counted; ISO `Y` and cross `O`
        // are OUCH values, refused by this exchange only.
        assert_eq!(
            i.bad_fields,
            BadFields {
                side: 1,
                time_in_force: 1,
                display: 1,
                capacity: 1,
                ..BadFields::default()
            }
        );
        // A bad appendage (an element of length 0): Rejected Other, and a
        // retransmission of it (same UserRefNum) is ignored.
        let mut b = enter_bytes(20, b'B', GOOD);
        b.truncate(45);
        b.extend_from_slice(&[0, 2, 0, 5]);
        for _ in 0..2 {
            assert_eq!(i.handle(&mut x, s, &b, 5, &mut out), None);
        }
        let (_, ev) = out.take();
        assert_eq!(
            ev,
            [(
                s,
                OrderEvent::Rejected {
                    user_ref_num: 20,
                    reason: RejectReason::Other,
                    cl_ord_id: CLORD_ID
                }
            )]
        );
        assert_eq!(i.bad_fields.appendage, 2);
        let c = x.session_counters(s).unwrap();
        assert_eq!((c.received, c.rejected, c.retransmissions), (7, 7, 1));
    }

    fn encoded(e: &OrderEvent) -> Vec<u8> {
        let mut buf = [0xaau8; MAX_OUTBOUND_LEN];
        let n = encode_event(e, TS, &mut buf).unwrap();
        // What it wrote parses back as OUCH outbound.
        ouch50::OutboundMessage::parse(&buf[..n]).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn every_event_as_its_outbound_message() {
        let accepted = OrderEvent::Accepted {
            user_ref_num: 7,
            side: OrderSide::Buy,
            quantity: 100,
            symbol: AAPL,
            price: 1_852_500,
            time_in_force: TimeInForce::Ioc,
            display: Display::Visible,
            capacity: Capacity::Agency,
            order_reference_number: 0x0102,
            cl_ord_id: CLORD_ID,
        };
        assert_eq!(
            encoded(&accepted),
            cat(&[
                b"A",
                &TSB,
                &[0, 0, 0, 7, b'B', 0, 0, 0, 100],
                b"AAPL    ",
                &PRICE,
                b"3Y",
                &[0, 0, 0, 0, 0, 0, 1, 2],
                b"ANNL",
                &CLORD,
                &[0, 0]
            ])
        );
        let replaced = OrderEvent::Replaced {
            user_ref_num: 8,
            orig_user_ref_num: 7,
            side: OrderSide::SellShort,
            quantity: 50,
            symbol: AAPL,
            price: 1_852_500,
            time_in_force: TimeInForce::Day,
            display: Display::Attributable,
            capacity: Capacity::Principal,
            order_reference_number: 9,
            cl_ord_id: CLORD_ID,
        };
        assert_eq!(
            encoded(&replaced),
            cat(&[
                b"U",
                &TSB,
                &[0, 0, 0, 7, 0, 0, 0, 8, b'T', 0, 0, 0, 50],
                b"AAPL    ",
                &PRICE,
                b"0A",
                &[0, 0, 0, 0, 0, 0, 0, 9],
                b"PNNL",
                &CLORD,
                &[0, 0]
            ])
        );
        let canceled = OrderEvent::Canceled {
            user_ref_num: 7,
            decrement: 30,
            reason: CancelReason::ImmediateOrCancel,
        };
        assert_eq!(
            encoded(&canceled),
            cat(&[b"C", &TSB, &[0, 0, 0, 7, 0, 0, 0, 30, b'I']])
        );
        let executed = OrderEvent::Executed {
            user_ref_num: 7,
            quantity: 100,
            price: 1_852_500,
            liquidity: LiquidityFlag::Removed,
            match_number: 42,
        };
        assert_eq!(
            encoded(&executed),
            cat(&[
                b"E",
                &TSB,
                &[0, 0, 0, 7, 0, 0, 0, 100],
                &PRICE,
                b"R",
                &[0, 0, 0, 0, 0, 0, 0, 42],
                &[0, 0]
            ])
        );
        let modified = OrderEvent::Modified {
            user_ref_num: 7,
            side: OrderSide::SellShortExempt,
            quantity: 10,
        };
        assert_eq!(
            encoded(&modified),
            cat(&[b"M", &TSB, &[0, 0, 0, 7, b'E', 0, 0, 0, 10]])
        );
        let query = OrderEvent::AccountQuery {
            next_user_ref_num: 9,
        };
        assert_eq!(encoded(&query), cat(&[b"Q", &TSB, &[0, 0, 0, 9]]));
        let mut buf = [0u8; 16];
        let n = encode_system_event(EventCode::EndOfDay, TS, &mut buf).unwrap();
        assert_eq!(&buf[..n], &cat(&[b"S", &TSB, b"E"])[..]);
        assert!(matches!(
            encode_event(&replaced, TS, &mut [0u8; 67]),
            Err(Error::BufferTooSmall { .. })
        ));
    }
}
