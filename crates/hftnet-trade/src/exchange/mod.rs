//! The exchange side of the market-data path, sans-IO.
//!
//! - [`Publisher`] packs messages into MoldUDP64 downstream packets, keeps a
//!   bounded history and answers re-requests from it, sends heartbeats when
//!   idle and ends the session.
//! - [`RequestGuard`] decides who may re-request and how much: an allow list
//!   of sources and a token bucket per source, in a table of bounded size.
//! - [`Generator`] makes a synthetic ITCH 5.0 trading day from a seed.
//! - [`FaultInjector`] drops, duplicates, reorders and delays packets of one
//!   feed, from a seed, so that tests and demos can exercise a feed handler
//!   (re-exported from `hftnet_wire::faults`, the engine the transports'
//!   fault middleware uses too).
//!
//! Every entry point takes `now` (nanoseconds on any monotonic clock) and
//! hands the packets to send to a callback; nothing here does I/O. The
//! caller sends each downstream packet on both feeds (A and B), through a
//! fault injector each if it wants faults.

mod generator;
mod guard;
mod publisher;

pub use generator::{Generator, GeneratorConfig, GeneratorError};
pub use guard::{
    GuardStats, LimitError, MAX_LIMIT, MAX_SOURCES, PrefixError, Refusal, RequestGuard,
    RequestLimits, SourcePrefix, Ticket,
};
pub use hftnet_wire::faults::{BadProbability, FaultInjector, FaultStats, Faults};
pub use publisher::{
    ConfigError, MAX_HISTORY, PublishError, Publisher, PublisherConfig, PublisherStats, Reply,
    ReplyBudget, RequestError, write_request,
};
