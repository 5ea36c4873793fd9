//! Seeded fault injection for a stream of packets, sans-IO: loss,
//! duplication, reordering, a constant delay and jitter, drawn from a seeded
//! [`Rng`] so that a run can be repeated exactly.
//!
//! Layer: the one fault engine of hftnet. The exchange simulator of
//! `hftnet-trade` runs its feeds through it, and `hftnet-io`'s fault
//! middleware (`loss=`, `dup=`, `reorder=`, `delay=`, `seed=` on any
//! transport URI) wraps a transport around it. It works in the caller's time
//! (`now_ns`, nanoseconds on any monotonic clock): it never reads a clock,
//! never sleeps, never does I/O, and hands every packet to send to a callback.
//!
//! # What happens to a packet
//!
//! [`FaultInjector::offer`] takes one packet and, in this order:
//! 1. drops it with probability [`Faults::loss`];
//! 2. else, with probability [`Faults::reorder`] and when no packet is
//!    already held for reordering, holds it back until the next packet that
//!    passes, and releases it right after that one (the two swap places; at
//!    most one packet is held for reordering at a time, as before delay
//!    existed);
//! 3. else sends it, twice with probability [`Faults::duplicate`] (both
//!    copies at the same time), [`Faults::delay_ns`] plus a uniform
//!    `0..=jitter_ns` later. A packet due later than now is held; packets
//!    with different jitter can overtake each other, so jitter reorders too.
//!
//! # Determinism
//!
//! Every offered packet consumes exactly four draws from the generator, in
//! the order loss, reorder, duplicate, jitter, whatever the outcome and
//! whatever the probabilities. So with a given seed the k-th packet's loss
//! decision is the same whether or not the other faults are on: `loss=0.05`
//! with seed 7 drops the same packets every run. The released sequence
//! depends only on the seed, the faults, the packets and the times given.
//!
//! # Memory
//!
//! Held packets (reordered or delayed) are copied into `max_held` buffers of
//! `max_packet_len` bytes allocated once, at construction
//! ([`FaultInjector::with_buffers`]); the steady state never allocates, locks,
//! logs or formats. When every buffer is in use, a packet that would be held
//! is dropped and counted in [`FaultStats::overflow`], like a packet arriving
//! at a router whose queue is full. A packet longer than `max_packet_len`
//! that would be held is dropped and counted the same way (and in
//! [`FaultStats::oversized`]), never truncated; one sent at once is never
//! copied, whatever its length.
//!
//! # Counters
//!
//! Once everything held is released ([`FaultInjector::flush`]), the packets
//! sent are exactly
//!
//! ```text
//! packets − dropped − overflow + duplicated
//! ```
//!
//! and at any time that number equals the packets sent so far plus the
//! copies still held.

use core::cmp::Reverse;
use core::fmt;
use std::collections::BinaryHeap;

use crate::rng::Rng;

/// The buffer size [`FaultInjector::new`] gives its one held packet: 64 KiB,
/// more than any UDP datagram or MoldUDP64 packet.
pub const DEFAULT_MAX_PACKET_LEN: usize = 64 * 1024;

/// Draws each offered packet takes from the generator (loss, reorder,
/// duplicate, jitter), whatever happens to it.
pub const DRAWS_PER_PACKET: u64 = 4;

/// The faults to inject: probabilities per packet, each in `[0, 1]`, and a
/// one-way delay with jitter.
///
/// Callers that name fields should finish with `..Faults::NONE`, so that
/// adding a fault later does not break them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Probability that a packet is dropped.
    pub loss: f64,
    /// Probability that a packet is sent twice.
    pub duplicate: f64,
    /// Probability that a packet is held back and sent right after the next
    /// one that passes.
    pub reorder: f64,
    /// Constant one-way delay added to every packet, in nanoseconds.
    pub delay_ns: u64,
    /// An extra delay per packet, uniform in `0..=jitter_ns` nanoseconds.
    /// Packets can overtake each other when it is larger than the gap
    /// between them.
    pub jitter_ns: u64,
}

impl Faults {
    /// No faults at all.
    pub const NONE: Self = Self {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        delay_ns: 0,
        jitter_ns: 0,
    };

    /// The same probability `p` for loss, duplication and reordering; no
    /// delay.
    #[must_use]
    pub fn uniform(p: f64) -> Self {
        Self {
            loss: p,
            duplicate: p,
            reorder: p,
            ..Self::NONE
        }
    }

    /// True when no fault can happen: every packet passes at once, in order.
    #[must_use]
    pub fn is_none(&self) -> bool {
        self.loss <= 0.0
            && self.duplicate <= 0.0
            && self.reorder <= 0.0
            && self.delay_ns == 0
            && self.jitter_ns == 0
    }

    /// True when packets can be held (reordering, delay or jitter), so that
    /// the injector needs buffers and the caller needs to poll it.
    #[must_use]
    pub fn holds_packets(&self) -> bool {
        self.reorder > 0.0 || self.delay_ns > 0 || self.jitter_ns > 0
    }

    /// Checks every probability is a number in `[0, 1]`.
    ///
    /// # Errors
    /// Names the first bad field and its value.
    pub fn validate(&self) -> Result<(), BadProbability> {
        for (name, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(BadProbability { name, value: v });
            }
        }
        Ok(())
    }
}

/// A fault probability outside `[0, 1]` (or not a number).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BadProbability {
    /// Which fault: `"loss"`, `"duplicate"` or `"reorder"`.
    pub name: &'static str,
    /// The value given.
    pub value: f64,
}

impl fmt::Display for BadProbability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} probability {} is not between 0 and 1 (e.g. 0.01 for 1%)",
            self.name, self.value
        )
    }
}

impl std::error::Error for BadProbability {}

/// What a [`FaultInjector`] did. See the module documentation for the
/// identity they keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Packets offered.
    pub packets: u64,
    /// Packets dropped by the loss draw.
    pub dropped: u64,
    /// Extra copies sent or scheduled (a duplicated packet lost to
    /// `overflow` counts there once, and not here).
    pub duplicated: u64,
    /// Packets held back for reordering.
    pub reordered: u64,
    /// Packets held for a delay (due later than the time they were offered).
    pub delayed: u64,
    /// Packets that would have been held but were dropped: every buffer was
    /// in use, or the packet was longer than a buffer.
    pub overflow: u64,
    /// Of `overflow`, packets longer than the buffers' `max_packet_len`.
    pub oversized: u64,
    /// Copies sent from the held buffers (reordered or delayed packets).
    pub released: u64,
}

/// One held-packet buffer's contents.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    len: usize,
    copies: u8,
}

/// Applies [`Faults`] to one stream of packets; see the module
/// documentation.
///
/// Call [`offer`](Self::offer) for each packet, [`poll`](Self::poll) when the
/// time [`next_due`](Self::next_due) says has come, and
/// [`flush`](Self::flush) when the stream ends or goes idle (a packet held
/// for reordering waits for the next packet, not for a time).
#[derive(Clone)]
pub struct FaultInjector {
    faults: Faults,
    rng: Rng,
    max_packet_len: usize,
    /// `max_held` buffers of `max_packet_len` bytes, back to back.
    pool: Box<[u8]>,
    slots: Box<[Slot]>,
    /// Buffers not in use (capacity `max_held`: pushing never allocates).
    free: Vec<usize>,
    /// Delayed packets by (due time, order of scheduling, buffer); capacity
    /// `max_held`, so pushing never allocates.
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// The buffer of the packet held for reordering.
    reorder_held: Option<usize>,
    /// Breaks ties between packets due at the same time: first scheduled,
    /// first sent.
    order: u64,
    /// The last time given, for [`FaultInjector::process`].
    now_ns: u64,
    stats: FaultStats,
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("faults", &self.faults)
            .field("max_packet_len", &self.max_packet_len)
            .field("max_held", &self.slots.len())
            .field("held", &self.held())
            .field("next_due", &self.next_due())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FaultInjector {
    /// An injector drawing from `seed`, with one held-packet buffer of
    /// [`DEFAULT_MAX_PACKET_LEN`] bytes: enough for reordering, which holds
    /// one packet at a time. With a delay or jitter, give it more buffers
    /// with [`FaultInjector::with_buffers`], or most delayed packets
    /// overflow.
    ///
    /// # Errors
    /// When a probability is outside `[0, 1]`.
    pub fn new(faults: Faults, seed: u64) -> Result<Self, BadProbability> {
        Self::with_buffers(faults, seed, DEFAULT_MAX_PACKET_LEN, 1)
    }

    /// An injector drawing from `seed` that can hold up to `max_held`
    /// packets of up to `max_packet_len` bytes each; the buffers are
    /// allocated here, once. Size `max_held` for the packets in flight
    /// during the longest delay (rate × (delay + jitter)) plus one for
    /// reordering.
    ///
    /// # Errors
    /// When a probability is outside `[0, 1]`.
    ///
    /// # Panics
    /// When `max_held × max_packet_len` overflows `usize`, or the memory
    /// cannot be allocated.
    pub fn with_buffers(
        faults: Faults,
        seed: u64,
        max_packet_len: usize,
        max_held: usize,
    ) -> Result<Self, BadProbability> {
        faults.validate()?;
        let pool_len = max_held
            .checked_mul(max_packet_len)
            .expect("fault injector buffers: max_held × max_packet_len overflows usize");
        Ok(Self {
            faults,
            rng: Rng::new(seed),
            max_packet_len,
            pool: vec![0; pool_len].into_boxed_slice(),
            slots: vec![Slot::default(); max_held].into_boxed_slice(),
            free: (0..max_held).rev().collect(),
            queue: BinaryHeap::with_capacity(max_held),
            reorder_held: None,
            order: 0,
            now_ns: 0,
            stats: FaultStats::default(),
        })
    }

    /// Offers one packet at `now_ns` and calls `out` for every packet due
    /// now: first the held ones whose time came (in due order), then this
    /// one (zero, one or two copies) if it is not lost or held, then the
    /// packet held for reordering if this one passed.
    ///
    /// `now_ns` should not go backwards; if it does, packets are simply
    /// scheduled from the time given.
    pub fn offer(&mut self, now_ns: u64, packet: &[u8], out: &mut impl FnMut(&[u8])) {
        self.stats.packets += 1;
        // Four draws, always, in this order (see the module documentation).
        let lose = self.rng.next_f64() < self.faults.loss;
        let reorder = self.rng.next_f64() < self.faults.reorder;
        let duplicate = self.rng.next_f64() < self.faults.duplicate;
        let jitter = uniform_up_to(self.rng.next_u64(), self.faults.jitter_ns);

        self.poll(now_ns, out);
        if lose {
            self.stats.dropped += 1;
            return;
        }
        if reorder && self.reorder_held.is_none() {
            if let Some(slot) = self.store(packet, 1) {
                self.reorder_held = Some(slot);
                self.stats.reordered += 1;
            }
            return;
        }
        let due = now_ns
            .saturating_add(self.faults.delay_ns)
            .saturating_add(jitter);
        let copies = 1 + u8::from(duplicate);
        if due <= now_ns {
            out(packet);
            if duplicate {
                out(packet);
            }
        } else {
            let Some(slot) = self.store(packet, copies) else {
                return;
            };
            self.stats.delayed += 1;
            self.schedule(due, slot);
        }
        self.stats.duplicated += u64::from(duplicate);
        // The packet held for reordering goes right after this one.
        if let Some(slot) = self.reorder_held.take() {
            if due <= now_ns {
                self.release(slot, out);
            } else {
                self.schedule(due, slot);
            }
        }
    }

    /// Calls `out` for every held packet due at or before `now_ns`, in due
    /// order (packets due at the same time in the order they were
    /// scheduled). A packet held for reordering is not released by time:
    /// it waits for the next packet, or [`FaultInjector::flush`].
    pub fn poll(&mut self, now_ns: u64, out: &mut impl FnMut(&[u8])) {
        self.now_ns = now_ns;
        while let Some(&Reverse((due, _, slot))) = self.queue.peek() {
            if due > now_ns {
                break;
            }
            self.queue.pop();
            self.release(slot, out);
        }
    }

    /// When the next delayed packet is due: call [`FaultInjector::poll`]
    /// then. `None` when no packet waits for a time (one held for
    /// reordering waits for the next packet instead).
    #[must_use]
    pub fn next_due(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Sends everything held at once, in due order, the packet held for
    /// reordering last. Call it when the stream ends, and when it goes idle
    /// if a reordered packet should not wait (before a heartbeat).
    pub fn flush(&mut self, out: &mut impl FnMut(&[u8])) {
        while let Some(Reverse((_, _, slot))) = self.queue.pop() {
            self.release(slot, out);
        }
        if let Some(slot) = self.reorder_held.take() {
            self.release(slot, out);
        }
    }

    /// [`FaultInjector::offer`] at the last time given (0 at first): the
    /// call of an injector without delay or jitter, for which time does not
    /// matter; `out` is called zero to three times.
    pub fn process(&mut self, packet: &[u8], out: &mut impl FnMut(&[u8])) {
        self.offer(self.now_ns, packet, out);
    }

    /// True while a packet is held back for reordering (waiting for the
    /// next packet that passes, or [`FaultInjector::release_reordered`]).
    #[must_use]
    pub fn reorder_held(&self) -> bool {
        self.reorder_held.is_some()
    }

    /// Lets the packet held back for reordering, if any, go as if it passed
    /// at `now_ns`: after the delay (without jitter, so no draw is made and
    /// the other decisions stay as they were), or at once without one.
    /// Other delayed packets keep their due times. Call it when the stream
    /// went quiet and a reordered packet should not wait for the next one.
    pub fn release_reordered(&mut self, now_ns: u64, out: &mut impl FnMut(&[u8])) {
        if let Some(slot) = self.reorder_held.take() {
            let due = now_ns.saturating_add(self.faults.delay_ns);
            if due <= now_ns {
                self.release(slot, out);
            } else {
                self.schedule(due, slot);
            }
        }
    }

    /// True while a packet is held (for reordering or a delay).
    #[must_use]
    pub fn holding(&self) -> bool {
        self.held() > 0
    }

    /// Packets held (a duplicated one counts once: its two copies share a
    /// buffer).
    #[must_use]
    pub fn held(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// The faults applied.
    #[must_use]
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// What was done so far.
    #[must_use]
    pub fn stats(&self) -> FaultStats {
        self.stats
    }

    /// Copies `packet` into a free buffer, or counts it in `overflow`.
    fn store(&mut self, packet: &[u8], copies: u8) -> Option<usize> {
        if packet.len() > self.max_packet_len {
            self.stats.overflow += 1;
            self.stats.oversized += 1;
            return None;
        }
        let Some(slot) = self.free.pop() else {
            self.stats.overflow += 1;
            return None;
        };
        let at = slot * self.max_packet_len;
        self.pool[at..at + packet.len()].copy_from_slice(packet);
        self.slots[slot] = Slot {
            len: packet.len(),
            copies,
        };
        Some(slot)
    }

    fn schedule(&mut self, due: u64, slot: usize) {
        self.order += 1;
        self.queue.push(Reverse((due, self.order, slot)));
    }

    /// Sends a held packet's copies and frees its buffer.
    fn release(&mut self, slot: usize, out: &mut impl FnMut(&[u8])) {
        let Slot { len, copies } = self.slots[slot];
        let at = slot * self.max_packet_len;
        for _ in 0..copies {
            out(&self.pool[at..at + len]);
        }
        self.stats.released += u64::from(copies);
        self.free.push(slot);
    }
}

/// Maps 64 random bits to a uniform integer in `0..=max` (Lemire's
/// multiply-shift; the bias is below 2^-64 per value).
fn uniform_up_to(bits: u64, max: u64) -> u64 {
    ((u128::from(bits) * (u128::from(max) + 1)) >> 64) as u64
}

/// Bounds `(lo, hi)` that the number of successes in `n` independent trials
/// of probability `p` falls within, `sigmas` standard deviations either side
/// of the mean (normal approximation to the binomial; good when
/// `n·p·(1−p)` is 10 or more). For tests of injected faults: with
/// `sigmas = 5.0`, a correct injector fails about once in 1.7 million runs.
///
/// `lo` is at least 0 and `hi` at most `n`; `p` is clamped to `[0, 1]`.
#[must_use]
pub fn binomial_bounds(n: u64, p: f64, sigmas: f64) -> (u64, u64) {
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    let nf = n as f64;
    let mean = nf * p;
    let sd = (nf * p * (1.0 - p)).sqrt();
    let lo = (mean - sigmas * sd).floor().max(0.0) as u64;
    let hi = ((mean + sigmas * sd).ceil() as u64).min(n);
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_reordered_packet_let_go_keeps_the_delay() {
        let mut f = FaultInjector::with_buffers(
            Faults {
                reorder: 1.0,
                delay_ns: 1_000,
                ..Faults::NONE
            },
            1,
            16,
            8,
        )
        .unwrap();
        let mut sent = Vec::new();
        f.offer(0, b"a", &mut |p| sent.push(p.to_vec()));
        assert!(f.reorder_held());
        // Reorder probability 1: the next packet is held for reordering
        // too only when none is; "b" passes (delayed), "a" goes after it.
        f.offer(10, b"b", &mut |p| sent.push(p.to_vec()));
        assert!(!f.reorder_held());
        f.offer(20, b"c", &mut |p| sent.push(p.to_vec()));
        assert!(f.reorder_held());
        f.release_reordered(500, &mut |p| sent.push(p.to_vec()));
        assert!(sent.is_empty(), "nothing leaves before its delay");
        assert!(!f.reorder_held());
        assert_eq!(
            f.next_due(),
            Some(1_010),
            "the delayed ones keep their time"
        );
        f.poll(1_010, &mut |p| sent.push(p.to_vec()));
        assert_eq!(sent, vec![b"b".to_vec(), b"a".to_vec()]);
        f.poll(1_500, &mut |p| sent.push(p.to_vec()));
        assert_eq!(
            sent[2], b"c",
            "the reordered one, the delay after its release"
        );
        let mut g = FaultInjector::new(
            Faults {
                reorder: 1.0,
                ..Faults::NONE
            },
            1,
        )
        .unwrap();
        g.offer(0, b"x", &mut |_| panic!("held"));
        let mut out = Vec::new();
        g.release_reordered(5, &mut |p| out.push(p.to_vec()));
        assert_eq!(out, vec![b"x".to_vec()], "without a delay: at once");
    }

    /// Packet `i`: its index, then `extra` bytes of a pattern.
    fn packet(i: u32, extra: usize) -> Vec<u8> {
        let mut p = i.to_le_bytes().to_vec();
        p.extend((0..extra).map(|k| (i as usize + k) as u8));
        p
    }

    fn index(p: &[u8]) -> u32 {
        u32::from_le_bytes([p[0], p[1], p[2], p[3]])
    }

    /// Offers `n` packets, one every `gap_ns`, polling at every due time in
    /// between, then flushes. Returns (release time, packet) in order; a
    /// flushed packet has time `u64::MAX`.
    fn drive(f: &mut FaultInjector, n: u32, gap_ns: u64) -> Vec<(u64, Vec<u8>)> {
        let mut sent = Vec::new();
        for i in 0..n {
            let now = u64::from(i) * gap_ns;
            while let Some(due) = f.next_due().filter(|d| *d < now) {
                f.poll(due, &mut |p| sent.push((due, p.to_vec())));
            }
            f.offer(now, &packet(i, i as usize % 7), &mut |p| {
                sent.push((now, p.to_vec()))
            });
        }
        while let Some(due) = f.next_due() {
            f.poll(due, &mut |p| sent.push((due, p.to_vec())));
        }
        f.flush(&mut |p| sent.push((u64::MAX, p.to_vec())));
        sent
    }

    fn run(faults: Faults, n: u8) -> (Vec<u8>, FaultStats) {
        let mut f = FaultInjector::new(faults, 42).unwrap();
        let mut sent = Vec::new();
        for i in 0..n {
            f.process(&[i], &mut |p| sent.push(p[0]));
        }
        f.flush(&mut |p| sent.push(p[0]));
        (sent, f.stats())
    }

    /// Indices of the packets that never came out.
    fn missing(sent: &[(u64, Vec<u8>)], n: u32) -> Vec<u32> {
        let mut seen = vec![false; n as usize];
        for (_, p) in sent {
            seen[index(p) as usize] = true;
        }
        (0..n).filter(|i| !seen[*i as usize]).collect()
    }

    #[test]
    fn no_faults_pass_everything_in_order() {
        let (sent, st) = run(Faults::NONE, 100);
        assert_eq!(sent, (0..100).collect::<Vec<_>>());
        assert_eq!(st.packets, 100);
        assert_eq!(
            st,
            FaultStats {
                packets: 100,
                ..FaultStats::default()
            }
        );
    }

    #[test]
    fn counts_match_what_was_sent() {
        let (sent, st) = run(Faults::uniform(0.2), 200);
        assert!(
            st.dropped > 0 && st.duplicated > 0 && st.reordered > 0,
            "{st:?}"
        );
        assert_eq!(st.overflow, 0, "one buffer is enough for reordering");
        assert_eq!(
            sent.len() as u64,
            st.packets - st.dropped + st.duplicated,
            "{st:?}"
        );
        assert_eq!(st.released, st.reordered);
        // Every packet not dropped arrives at least once.
        let mut seen = [0u32; 200];
        for p in &sent {
            seen[usize::from(*p)] += 1;
        }
        let missing = seen.iter().filter(|c| **c == 0).count() as u64;
        assert_eq!(missing, st.dropped);
        // Reordering swaps neighbours: something arrives after a later one.
        assert!(sent.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn reordering_swaps_each_packet_with_the_next_that_passes() {
        // Reorder always: the first packet is held, the second passes (one
        // is already held) and releases it, and so on.
        let (sent, st) = run(
            Faults {
                reorder: 1.0,
                ..Faults::NONE
            },
            7,
        );
        assert_eq!(sent, [1, 0, 3, 2, 5, 4, 6]);
        assert_eq!(st.reordered, 4);
        assert_eq!(st.released, 4);
        // With a delay, the held packet leaves right after the next one,
        // at that one's due time.
        let mut f = FaultInjector::with_buffers(
            Faults {
                reorder: 1.0,
                delay_ns: 50,
                ..Faults::NONE
            },
            1,
            16,
            4,
        )
        .unwrap();
        let mut sent = Vec::new();
        f.offer(0, &[0], &mut |p| sent.push(p[0]));
        f.offer(10, &[1], &mut |p| sent.push(p[0]));
        assert!(sent.is_empty());
        assert_eq!(f.next_due(), Some(60));
        f.poll(60, &mut |p| sent.push(p[0]));
        assert_eq!(sent, [1, 0]);
        assert!(!f.holding());
    }

    #[test]
    fn same_seed_same_output_byte_for_byte() {
        let faults = Faults {
            loss: 0.1,
            duplicate: 0.1,
            reorder: 0.1,
            delay_ns: 1_000,
            jitter_ns: 5_000,
        };
        let go = |seed| {
            drive(
                &mut FaultInjector::with_buffers(faults, seed, 64, 256).unwrap(),
                2_000,
                300,
            )
        };
        let a = go(7);
        assert_eq!(a, go(7));
        assert_ne!(a, go(8));
        assert!(a.len() > 1_500, "{}", a.len());
    }

    #[test]
    fn loss_decisions_do_not_depend_on_the_other_faults() {
        let loss = Faults {
            loss: 0.05,
            ..Faults::NONE
        };
        let all = Faults {
            duplicate: 0.3,
            reorder: 0.2,
            delay_ns: 700,
            jitter_ns: 2_000,
            ..loss
        };
        let n = 5_000;
        let lost = |f| {
            let mut inj = FaultInjector::with_buffers(f, 7, 64, 1_024).unwrap();
            let sent = drive(&mut inj, n, 100);
            assert_eq!(inj.stats().overflow, 0);
            missing(&sent, n)
        };
        let alone = lost(loss);
        assert_eq!(alone, lost(all));
        // Pinned: loss=0.05 with seed 7 drops these packets, every run, on
        // every machine, in every version.
        // (Checked against an independent implementation of xoshiro256**:
        // packet k's loss draw is the generator's draw 4k.)
        assert_eq!(alone[..8], [20, 33, 57, 68, 89, 99, 103, 143]);
    }

    #[test]
    fn a_delay_releases_exactly_at_the_due_time() {
        let mut f = FaultInjector::with_buffers(
            Faults {
                delay_ns: 1_000,
                ..Faults::NONE
            },
            3,
            8,
            4,
        )
        .unwrap();
        let mut sent: Vec<(u64, u8)> = Vec::new();
        f.offer(100, &[1], &mut |p| sent.push((100, p[0])));
        f.offer(150, &[2], &mut |p| sent.push((150, p[0])));
        assert!(sent.is_empty());
        assert_eq!(f.next_due(), Some(1_100));
        f.poll(1_099, &mut |p| sent.push((1_099, p[0])));
        assert!(sent.is_empty(), "not before its time");
        f.poll(1_100, &mut |p| sent.push((1_100, p[0])));
        assert_eq!(sent, [(1_100, 1)]);
        assert_eq!(f.next_due(), Some(1_150));
        // Offering a packet releases the ones due by then first.
        f.offer(1_200, &[3], &mut |p| sent.push((1_200, p[0])));
        assert_eq!(sent, [(1_100, 1), (1_200, 2)]);
        assert_eq!(f.next_due(), Some(2_200));
        let st = f.stats();
        assert_eq!((st.delayed, st.released), (3, 2));
        f.flush(&mut |p| sent.push((0, p[0])));
        assert_eq!(sent.last(), Some(&(0, 3)));
        assert_eq!(f.next_due(), None);
    }

    #[test]
    fn jitter_reorders_within_its_bounds() {
        let faults = Faults {
            delay_ns: 500,
            jitter_ns: 10_000,
            ..Faults::NONE
        };
        let n = 1_000;
        let gap = 100;
        let mut f = FaultInjector::with_buffers(faults, 11, 64, 256).unwrap();
        let sent = drive(&mut f, n, gap);
        assert_eq!(sent.len(), n as usize, "nothing lost");
        assert!(missing(&sent, n).is_empty());
        let order: Vec<u32> = sent.iter().map(|(_, p)| index(p)).collect();
        assert!(order.windows(2).any(|w| w[0] > w[1]), "jitter reorders");
        for (t, p) in &sent {
            let offered = u64::from(index(p)) * gap;
            assert!(*t >= offered + 500, "{t} {offered}");
            assert!(*t <= offered + 500 + 10_000, "{t} {offered}");
        }
        let st = f.stats();
        assert_eq!((st.delayed, st.released), (u64::from(n), u64::from(n)));
    }

    #[test]
    fn full_buffers_overflow_and_long_packets_are_never_truncated() {
        let faults = Faults {
            delay_ns: 100,
            ..Faults::NONE
        };
        let mut f = FaultInjector::with_buffers(faults, 5, 4, 2).unwrap();
        let mut sent = Vec::new();
        for i in 0..5u8 {
            f.offer(0, &[i], &mut |p| sent.push(p.to_vec()));
        }
        assert_eq!(f.held(), 2);
        assert_eq!(f.stats().overflow, 3);
        // Too long to hold: dropped and counted, not cut.
        f.poll(100, &mut |p| sent.push(p.to_vec()));
        f.offer(100, &[9; 5], &mut |p| sent.push(p.to_vec()));
        f.flush(&mut |p| sent.push(p.to_vec()));
        assert_eq!(sent, [vec![0], vec![1]]);
        let st = f.stats();
        assert_eq!((st.overflow, st.oversized), (4, 1));
        // Sent at once, a long packet is never copied, so never dropped.
        let mut g = FaultInjector::with_buffers(Faults::NONE, 5, 4, 0).unwrap();
        let mut n = 0;
        g.offer(0, &[7; 100], &mut |p| n += p.len());
        assert_eq!(n, 100);
        // Reordering with no buffer free drops the packet it would hold.
        let mut h = FaultInjector::with_buffers(
            Faults {
                reorder: 1.0,
                ..Faults::NONE
            },
            5,
            4,
            0,
        )
        .unwrap();
        h.offer(0, &[1], &mut |_| panic!("nothing to send"));
        assert_eq!(h.stats().overflow, 1);
    }

    #[test]
    fn loss_stays_within_binomial_bounds() {
        let n = 10_000u32;
        let (lo, hi) = binomial_bounds(u64::from(n), 0.05, 5.0);
        assert!(lo > 350 && hi < 650, "{lo} {hi}");
        for seed in [1, 2, 3, 7, 42, 1 << 40] {
            let mut f = FaultInjector::new(
                Faults {
                    loss: 0.05,
                    ..Faults::NONE
                },
                seed,
            )
            .unwrap();
            let mut sent = 0u64;
            for i in 0..n {
                f.process(&i.to_le_bytes(), &mut |_| sent += 1);
            }
            let d = f.stats().dropped;
            assert!(
                (lo..=hi).contains(&d),
                "seed {seed}: {d} not in {lo}..={hi}"
            );
            assert_eq!(sent, u64::from(n) - d);
        }
    }

    #[test]
    fn binomial_bounds_are_clamped() {
        assert_eq!(binomial_bounds(100, 0.0, 5.0), (0, 0));
        assert_eq!(binomial_bounds(100, 1.0, 5.0), (100, 100));
        assert_eq!(binomial_bounds(0, 0.5, 5.0), (0, 0));
        assert_eq!(binomial_bounds(100, f64::NAN, 3.0), (0, 0));
        let (lo, hi) = binomial_bounds(100, 0.5, 100.0);
        assert_eq!((lo, hi), (0, 100));
    }

    #[test]
    fn bad_probabilities_are_named() {
        let e = FaultInjector::new(
            Faults {
                duplicate: 1.5,
                ..Faults::NONE
            },
            1,
        )
        .unwrap_err();
        assert_eq!(e.name, "duplicate");
        assert!(e.to_string().contains("between 0 and 1"));
        let e = Faults {
            reorder: -0.1,
            ..Faults::NONE
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.name, "reorder");
        assert!(
            Faults {
                loss: f64::NAN,
                ..Faults::NONE
            }
            .validate()
            .is_err()
        );
        assert!(Faults::NONE.is_none() && !Faults::NONE.holds_packets());
        let d = Faults {
            jitter_ns: 1,
            ..Faults::NONE
        };
        assert!(!d.is_none() && d.holds_packets());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn counters_add_up(
            loss in 0.0f64..=1.0,
            duplicate in 0.0f64..=1.0,
            reorder in 0.0f64..=1.0,
            delay_ns in prop_oneof![Just(0u64), 0u64..2_000],
            jitter_ns in prop_oneof![Just(0u64), 0u64..2_000],
            seed in any::<u64>(),
            max_packet_len in 4usize..40,
            max_held in 0usize..8,
            steps in proptest::collection::vec((0u64..500, 0usize..48, any::<bool>()), 0..300),
        ) {
            let faults = Faults { loss, duplicate, reorder, delay_ns, jitter_ns };
            let mut f = FaultInjector::with_buffers(faults, seed, max_packet_len, max_held).unwrap();
            let mut offered_at = Vec::new();
            let mut emitted = 0u64;
            let mut now = 0u64;
            let mut early = None;
            for (i, (gap, extra, poll)) in steps.iter().enumerate() {
                now += gap;
                offered_at.push(now);
                let mut check = |p: &[u8], at: u64| {
                    emitted += 1;
                    let t: u64 = offered_at[index(p) as usize];
                    if at < t + delay_ns { early = Some((t, at)); }
                };
                if *poll {
                    f.poll(now, &mut |p| check(p, now));
                }
                f.offer(now, &packet(i as u32, *extra), &mut |p| check(p, now));
                let st = f.stats();
                // Before the flush: what was sent plus the copies still held.
                prop_assert!(f.held() <= max_held);
                prop_assert!(st.packets - st.dropped - st.overflow + st.duplicated >= emitted);
            }
            prop_assert_eq!(early, None, "a packet left before its delay");
            f.flush(&mut |_| emitted += 1);
            let st = f.stats();
            prop_assert_eq!(st.packets, steps.len() as u64);
            prop_assert_eq!(st.packets - st.dropped - st.overflow + st.duplicated, emitted, "{:?}", st);
            prop_assert!(st.oversized <= st.overflow);
            prop_assert!(!f.holding());
            prop_assert_eq!(f.next_due(), None);
        }
    }
}
