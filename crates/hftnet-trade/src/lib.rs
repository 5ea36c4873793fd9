//! The trading engine of hftnet, sans-IO: bytes and a timestamp go in,
//! bytes and actions come out. Nothing here opens a socket, reads a clock or
//! spawns a thread, so every part is deterministic, fuzzable and testable in
//! simulation (see `tests/sim.rs` for the market-data path and
//! `tests/day_sim.rs` for a whole day across every part).
//!
//! Folder order follows the data path:
//! - [`exchange`]: the exchange side — an ITCH 5.0 stream generator, the
//!   MoldUDP64 publisher with its re-request history, and fault injection.
//! - [`feed`]: the feed handler — A/B arbitration, gap detection and
//!   recovery, in-order delivery of messages.
//! - [`book`]: the per-order (L3) book, price levels and top of book.
//! - [`market`]: ITCH messages applied to the books, counted by type.
//! - [`matching`]: the exchange's price-time matching engine, and the
//!   exchange core where generated flow and clients' orders meet.
//! - [`soupbin`]: SoupBinTCP 4 sessions — the server (login check,
//!   replayable per-session streams, heartbeats, timeouts) and the client
//!   (login, sequence tracking, reconnect).
//! - [`strategy`]: the strategy trait (book and trade events in, order
//!   intents out) and two samples, a taker and a market maker.
//! - [`risk`]: pre-trade risk, every check with a reason and a counter,
//!   and the kill switch.
//! - [`orders`]: order-entry domain types shaped after OUCH 5.0 — the OUCH
//!   code types (the codec's) and the ClOrdID both sides share — and the
//!   UserRefNum allocator with its persistence hook.
//! - [`position`]: position and P&L of a symbol, exact integers.
//! - [`trader`]: the trader engine tying them together — strategy, risk,
//!   order state, position — with `handle_*` inputs and order messages out.
//! - [`session`]: the trader's end of the order-entry session — OUCH over a
//!   SoupBinTCP client, with the Account Query after each login, the resend
//!   of what a broken connection lost and the cancels held while down.
//! - [`rng`]: the seeded generator behind every simulation (re-exported
//!   from `hftnet_wire::rng`, where the transports' fault injection uses it
//!   too).
//!
//! The hot path does not allocate, lock, log or format; counters are plain
//! integers read from outside. The loops that drive this engine over
//! transports (the exchange, the feed handler) are in `hftnet-apps`.

#![forbid(unsafe_code)]

pub mod book;
pub mod exchange;
pub mod feed;
pub mod market;
pub mod matching;
mod mem;
pub mod orders;
pub mod ouch;
pub mod position;
pub mod risk;
pub mod session;
pub mod soupbin;
pub mod strategy;
pub mod trader;
pub use hftnet_wire::rng;
