//! Matching: a price-time priority engine and the exchange core around it,
//! sans-IO.
//!
//! Layer: trading engine, exchange side. Inputs are decoded values (ITCH
//! [`Message`](hftnet_wire::itch50::Message)s from the generator, order-entry
//! [`Request`]s with OUCH 5.0 semantics); outputs are ITCH messages to publish
//! and [`OrderEvent`]s per session, handed to a caller's [`ExchangeOutput`]
//! synchronously. Nothing here does I/O, reads a clock or allocates once
//! warmed up (slabs, free lists and maps are reserved up front).
//!
//! - [`MatchingEngine`]: price-time books for every instrument, with
//!   [`Fill`]s out through a [`MatchEvents`] listener (parity-match's shape).
//! - [`Exchange`]: the books fed by two inputs, the generated ITCH day
//!   ([`Exchange::handle_generated`]) and client sessions
//!   ([`Exchange::open_session`], [`Exchange::handle_request`]).
//! - [`ouch`]: OUCH 5.0 messages into [`Request`]s and [`OrderEvent`]s
//!   into OUCH messages, the glue between the codec and the core.
//! - [`order_entry`]: the request and event types, and the OUCH reason codes
//!   (Appendix C [`CancelReason`], Appendix D [`RejectReason`], Appendix E
//!   [`LiquidityFlag`]).
//!
//! # The published feed equals the book
//!
//! A feed handler that applies every published ITCH message to an L3 book
//! ([`crate::market::MarketData`]) holds exactly the orders of
//! [`Exchange::published_orders`] (the engine's orders less hidden client
//! ones), same refs, sides, prices and shares. The tests check it after
//! random interleavings of generated flow and client orders. To keep it
//! true, the exchange owns the numbering: every order it adds gets the next
//! ITCH order reference number and every execution the next match number
//! (with no client orders, both sequences equal the generator's, so the
//! published stream is the generated stream byte for byte). Generated
//! messages are then applied to the book as it is, which the generator does
//! not know:
//!
//! | generated | the book has the order | published |
//! |-----------|------------------------|-----------|
//! | Add `A`/`F` | — | executes first against resting orders it crosses (`E`, or `P` for hidden client orders), then `A`/`F` for what rests |
//! | Delete `D` | yes | `D` |
//! | Cancel `X` of n | n < shares left | `X` |
//! | Cancel `X` of n | n ≥ shares left, or all the generator thought was left | `D` |
//! | Execute `E` of n | yes | a sweep: an opposite order of n shares limited to the order's price takes the book in price-time order (better-priced or older client orders first), one `E`/`P` per order touched |
//! | Execute `C` of n | yes | `C` of min(n, shares left) on that order |
//! | Replace `U` | yes | the original leaves; the new order executes what it crosses, then `U` to what rests (or `D` when nothing rests) |
//! | `D`, `X`, `E`, `C`, `U` | no (a client took it) | nothing |
//! | Trade `P`, Cross `Q` | — | as is, with the exchange's match number |
//! | Broken Trade `B` | — | nothing (it would name a generator match number) |
//! | others | — | as is |
//!
//! After an `E` or `C`, an order that the generator believes fully
//! executed but that still rests (the shares went to a better client order
//! instead) is deleted (`D`), so the generator's and the exchange's view of
//! which generated orders exist stay the same.
//!
//! Generated flow that crosses a client's resting order executes against
//! it — the generator stands for the rest of the market — so the book is
//! never crossed and a client sees fills from generated flow. The client's
//! fill is an `E` on the feed and an Executed event with liquidity Added.
//!
//! # Order entry, with OUCH 5.0's rules
//!
//! - Orders are taken during market hours, between the generated System
//!   Events Start (`Q`) and End (`M`) of Market Hours; outside them they
//!   are rejected [`RejectReason::DestinationClosed`]. At the end, every
//!   resting client order is canceled ([`CancelReason::Timeout`]: its
//!   DAY time in force expired) and deleted from the feed.
//! - Enter and Replace carry a new UserRefNum that must be above the
//!   session's last: a lower or equal one is ignored as a retransmission
//!   (counted in [`SessionCounters::retransmissions`], no event).
//!   Every other Enter/Replace is counted received, then either accepted or
//!   rejected with an Appendix D reason: [`RejectReason::InvalidSide`],
//!   [`RejectReason::InvalidQuantity`] (0 or above
//!   [`ExchangeConfig::max_quantity`]), [`RejectReason::InvalidSymbol`],
//!   [`RejectReason::Halted`] (trading state not `T`),
//!   [`RejectReason::InvalidPrice`] (0, above 4-byte ITCH prices, off the
//!   tick, outside the band), [`RejectReason::Other`] (Time In Force other
//!   than Day/IOC, unknown capacity), [`RejectReason::InvalidDisplay`],
//!   [`RejectReason::IsoNotAllowed`] (InterMarket Sweep not `N`),
//!   [`RejectReason::InvalidCrossOrder`] (CrossType not `N`).
//!   A Replace of an order that is no longer live in the session (or
//!   never was) is silently ignored and its UserRefNum not consumed, as
//!   OUCH 5.0 (2.2, case 1) says: no event, counted in
//!   [`SessionCounters::replaces_ignored`], neither received nor a
//!   retransmission.
//! - Day orders rest; what an IOC order does not execute on entry is
//!   canceled with [`CancelReason::ImmediateOrCancel`] (OUCH's Order Dead
//!   for an IOC remainder). Resting visible orders are ITCH `A`,
//!   attributable ones `F` (MPID [`CLIENT_MPID`]); hidden ones are not
//!   published and their executions are ITCH Trade `P` messages.
//! - Cancel gives the new open size: 0 deletes (ITCH `D`), less than open
//!   reduces and keeps priority (ITCH `X`), anything else and unknown
//!   orders are ignored silently as the spec says (counted). The event is
//!   Canceled with [`CancelReason::UserRequested`].
//! - Replace is a cancel and a new order (priority lost): the new order
//!   rests `quantity − executed so far`, may execute on entry, and is
//!   published as ITCH `U` from the original's ref (or `D`/`A` when one of
//!   the two is hidden).
//! - Modify changes the side among S/T/E (not buy ↔ sell) and may reduce
//!   the size (keeping priority); a disallowed side, a size increase or an
//!   unknown order is ignored (counted). Reduced to 0 it is a cancel.
//! - Every execution is one Executed event per side, with the ITCH message's
//!   match number, and liquidity Added (`A`; `J` hidden) or Removed (`R`).
//!
//! Not modelled: self-match prevention, hidden orders' lower priority,
//! order types beyond limit Day/IOC, crosses (the generator's cross trades
//! are published as they come) and the pre- and post-market sessions.
//!
//! # Wiring it (for the apps' exchange loop)
//!
//! Decode an OUCH message into a [`Request`] (field for field), call
//! [`Exchange::handle_request`] with the session's id; encode every
//! [`OrderEvent`] the output receives as the OUCH message of the same name
//! into that session's sequenced SoupBinTCP stream; pack every ITCH message
//! into the MoldUDP64 publisher. Feed the generator's messages through
//! [`Exchange::handle_generated`] instead of publishing them directly.
//!
//! Fields of the OUCH messages that the events do not carry, for the
//! encoder: the timestamp (the loop's clock when it encodes); Accepted's
//! Order State is always `L` (an IOC's unexecuted rest comes as a Canceled
//! event with reason `I` right after, never as Order Dead); InterMarket
//! Sweep Eligibility `N` and CrossType `N` (continuous market), the only
//! values accepted; no optional appendage is needed.
//! The Enter, Replace, Cancel and Modify requests' Alpha fields stay raw
//! bytes so the decoder hands them over unchecked and the exchange answers a
//! bad one with its Appendix D reason. Executed's price is OUCH's 8-byte
//! Price (the ITCH 4-byte price widened).

//!
//! # Example
//!
//! ```
//! use hftnet_trade::exchange::{Generator, GeneratorConfig};
//! use hftnet_trade::matching::{
//!     EnterOrder, Exchange, ExchangeConfig, ExchangeOutput, LiquidityFlag, OrderEvent, Request,
//!     SessionId,
//! };
//! use hftnet_wire::itch50::{Message, Side};
//!
//! #[derive(Default)]
//! struct Out {
//!     itch: Vec<Message>,
//!     events: Vec<(SessionId, OrderEvent)>,
//! }
//! impl ExchangeOutput for Out {
//!     fn itch(&mut self, m: &Message) {
//!         self.itch.push(*m); // the apps loop packs it into MoldUDP64
//!     }
//!     fn order_event(&mut self, s: SessionId, e: &OrderEvent) {
//!         self.events.push((s, *e)); // ... encodes it as OUCH on session s
//!     }
//! }
//!
//! let mut x = Exchange::new(&ExchangeConfig::default()).unwrap();
//! let mut g = Generator::new(GeneratorConfig::new(7, 2)).unwrap();
//! let mut out = Out::default();
//! while x.engine().best(1, Side::Sell).is_none() {
//!     x.handle_generated(&g.next_message().unwrap(), &mut out);
//! }
//! let ask = x.engine().best(1, Side::Sell).unwrap();
//! let session = x.open_session().unwrap();
//! // Lift the offer with an IOC buy of one share.
//! let buy = EnterOrder {
//!     intermarket_sweep: b'N',
//!     cross_type: b'N',
//!     user_ref_num: 1,
//!     side: b'B',
//!     quantity: 1,
//!     symbol: g.symbol(1).unwrap(),
//!     price: u64::from(ask.price),
//!     time_in_force: b'3',
//!     display: b'Y',
//!     capacity: b'A',
//!     cl_ord_id: hftnet_trade::orders::ClOrdId(*b"ORDER-1       "),
//! };
//! x.handle_request(session, &Request::Enter(buy), 0, &mut out);
//! assert!(matches!(out.itch.last(), Some(Message::OrderExecuted(e)) if e.executed_shares == 1));
//! assert!(matches!(
//!     out.events.last(),
//!     Some((_, OrderEvent::Executed { liquidity: LiquidityFlag::Removed, quantity: 1, .. }))
//! ));
//! let c = x.session_counters(session).unwrap();
//! assert_eq!((c.received, c.accepted, c.executions), (1, 1, 1));
//! ```

mod engine;
mod exchange;
pub mod order_entry;
pub mod ouch;
#[cfg(test)]
mod tests;

pub use engine::{
    EnterError, Entered, Fill, MatchConfig, MatchConfigError, MatchCounters, MatchEvents,
    MatchingEngine, NoEvents, OrderId, Resting, crosses, opposite,
};
pub use exchange::{
    CLIENT_MPID, ClientOrderInfo, Exchange, ExchangeConfig, ExchangeCounters, ExchangeError,
    ExchangeOutput, SessionCounters,
};
pub use order_entry::{
    CancelOrder, CancelReason, Capacity, ClOrdId, Display, EnterOrder, LiquidityFlag, ModifyOrder,
    OrderEvent, OrderSide, RejectReason, ReplaceOrder, Request, SessionId, TimeInForce,
};
