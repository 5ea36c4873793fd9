//! Plumbing shared by the deterministic simulations (`tests/sim.rs`,
//! `tests/soupbin_sim.rs`, `tests/day_sim.rs`): the simulated market-data
//! network (feeds A and B through fault injectors, re-requests and their
//! answers, each with its latency) and the simulated TCP byte channel (a
//! FIFO pipe with latency, delivered in random chunks, whose bytes in
//! flight are lost when the connection is cut).
//!
//! Time is simulated (nanoseconds); every random choice comes from the
//! caller's seeded [`Rng`], so a failure reproduces exactly.

#![allow(dead_code)] // each binary uses the helpers it needs

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use hftnet_trade::exchange::FaultInjector;
use hftnet_trade::feed::FeedId;
use hftnet_trade::rng::Rng;
use hftnet_wire::moldudp64::{HEADER_LEN, Packet};

/// Something the market-data network delivers.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// A datagram reaches the feed handler on feed `0` (A), `1` (B) or `2`
    /// (the retransmissions).
    Arrive(u8, Vec<u8>),
    /// A re-request reaches the exchange.
    Request(Vec<u8>),
}

/// The feed a datagram of [`Event::Arrive`] came on.
pub fn feed_id(i: u8) -> FeedId {
    FeedId::ALL[usize::from(i)]
}

/// The simulated market-data network: events ordered by time, FIFO among
/// equal times.
pub struct FeedNet {
    pub events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    order: u64,
    /// One-way latency of feeds A and B, ns.
    pub latency: [u64; 2],
    /// What the test itself dropped on both feeds: (first sequence number,
    /// message count) read from each dropped packet's own header.
    pub dropped: Vec<(u64, u64)>,
}

impl FeedNet {
    /// A network whose feeds A and B take `latency` ns one way.
    pub fn new(latency: [u64; 2]) -> Self {
        Self {
            events: BinaryHeap::new(),
            order: 0,
            latency,
            dropped: Vec::new(),
        }
    }

    /// Schedules `ev` at `at`.
    pub fn push(&mut self, at: u64, ev: Event) {
        self.order += 1;
        self.events.push(Reverse((at, self.order, ev)));
    }

    /// The next event due at `now`, if any.
    pub fn pop_due(&mut self, now: u64) -> Option<Event> {
        if self
            .events
            .peek()
            .is_some_and(|Reverse((t, _, _))| *t <= now)
        {
            self.events.pop().map(|Reverse((_, _, ev))| ev)
        } else {
            None
        }
    }

    /// When the next event is due.
    pub fn next_due(&self) -> Option<u64> {
        self.events.peek().map(|Reverse((t, _, _))| *t)
    }

    /// One downstream packet, sent on both feeds through their injectors
    /// (unless its index is in `drop_on_both`).
    pub fn downstream(
        &mut self,
        now: u64,
        pkt: &[u8],
        injectors: &mut [FaultInjector; 2],
        drop_on_both: &[u64],
        packet_index: &mut u64,
    ) {
        if pkt.len() > HEADER_LEN {
            *packet_index += 1;
            if drop_on_both.contains(&(*packet_index - 1)) {
                let p = Packet::new_checked(pkt).expect("the publisher's packet is valid");
                self.dropped
                    .push((p.sequence(), u64::from(p.message_count())));
                return;
            }
        }
        for (i, inj) in injectors.iter_mut().enumerate() {
            let at = now + self.latency[i];
            let events = &mut self.events;
            let order = &mut self.order;
            inj.process(pkt, &mut |p: &[u8]| {
                *order += 1;
                events.push(Reverse((at, *order, Event::Arrive(i as u8, p.to_vec()))));
            });
        }
    }

    /// Releases the packets the injectors hold back.
    pub fn flush(&mut self, now: u64, injectors: &mut [FaultInjector; 2]) {
        for (i, inj) in injectors.iter_mut().enumerate() {
            let at = now + self.latency[i];
            let events = &mut self.events;
            let order = &mut self.order;
            inj.flush(&mut |p: &[u8]| {
                *order += 1;
                events.push(Reverse((at, *order, Event::Arrive(i as u8, p.to_vec()))));
            });
        }
    }
}

/// Bytes in flight one way on a simulated TCP connection: (delivery time,
/// bytes), in order. Dropping it (a cut connection) loses them.
#[derive(Default)]
pub struct Pipe(VecDeque<(u64, Vec<u8>)>);

impl Pipe {
    /// Sends `bytes`, arriving at `at` (never before what is in flight).
    pub fn send(&mut self, at: u64, bytes: &[u8]) {
        if !bytes.is_empty() {
            // FIFO: never overtake what is already in flight.
            let at = self.0.back().map_or(at, |(t, _)| at.max(*t));
            self.0.push_back((at, bytes.to_vec()));
        }
    }

    /// What is still in flight, oldest first (each as it was sent).
    pub fn in_flight(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(|(_, b)| b.as_slice())
    }

    /// Everything due, as one byte string.
    pub fn take(&mut self, now: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while self.0.front().is_some_and(|(t, _)| *t <= now) {
            out.extend(self.0.pop_front().map(|(_, b)| b).unwrap_or_default());
        }
        out
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// `bytes` cut into random pieces of 1 to 40 bytes (how TCP may hand a
/// byte stream to the reader).
pub fn chunks<'a>(bytes: &'a [u8], rng: &mut Rng) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = (rng.range(1, 40) as usize).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}
