//! Fault injection for one feed: loss, duplication and reordering, each an
//! independent probability per packet, drawn from a seeded [`Rng`] so a run
//! can be repeated exactly.
//!
//! Reordering holds one packet back and releases it after the next packet
//! that passes (or at [`FaultInjector::flush`]), so the two swap places.
//! At most one packet is held; its buffer is reused, so steady state does
//! not allocate, and after [`FaultInjector::reserve`] nothing does.

use core::fmt;

use crate::rng::Rng;

/// Probabilities of each fault, per packet, each in `[0, 1]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Probability that a packet is dropped.
    pub loss: f64,
    /// Probability that a packet is sent twice.
    pub duplicate: f64,
    /// Probability that a packet is held back and sent after the next one.
    pub reorder: f64,
}

impl Faults {
    /// No faults at all.
    pub const NONE: Self = Self {
        loss: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
    };

    /// The same probability `p` for loss, duplication and reordering.
    #[must_use]
    pub fn uniform(p: f64) -> Self {
        Self {
            loss: p,
            duplicate: p,
            reorder: p,
        }
    }

    /// True when no fault can happen.
    #[must_use]
    pub fn is_none(&self) -> bool {
        self.loss <= 0.0 && self.duplicate <= 0.0 && self.reorder <= 0.0
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

/// A fault probability outside `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BadProbability {
    /// Which fault.
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

/// What a [`FaultInjector`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Packets offered.
    pub packets: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Packets held back and sent after a later one.
    pub reordered: u64,
}

/// Applies [`Faults`] to the packets of one feed.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    faults: Faults,
    rng: Rng,
    held: Vec<u8>,
    holding: bool,
    stats: FaultStats,
}

impl FaultInjector {
    /// An injector drawing from `seed`.
    ///
    /// # Errors
    /// When a probability is outside `[0, 1]`.
    pub fn new(faults: Faults, seed: u64) -> Result<Self, BadProbability> {
        faults.validate()?;
        Ok(Self {
            faults,
            rng: Rng::new(seed),
            held: Vec::new(),
            holding: false,
            stats: FaultStats::default(),
        })
    }

    /// Sets aside room to hold back a packet of up to `max_packet` bytes, so
    /// that reordering packets no longer than that never allocates.
    pub fn reserve(&mut self, max_packet: usize) {
        self.held.reserve(max_packet);
    }

    /// Offers one packet; `out` is called for each packet to send now (zero,
    /// one, two or three times).
    pub fn process(&mut self, packet: &[u8], out: &mut impl FnMut(&[u8])) {
        self.stats.packets += 1;
        if self.rng.chance(self.faults.loss) {
            self.stats.dropped += 1;
            return;
        }
        if !self.holding && self.rng.chance(self.faults.reorder) {
            self.held.clear();
            self.held.extend_from_slice(packet);
            self.holding = true;
            self.stats.reordered += 1;
            return;
        }
        out(packet);
        if self.rng.chance(self.faults.duplicate) {
            self.stats.duplicated += 1;
            out(packet);
        }
        self.flush(out);
    }

    /// Sends the packet held back for reordering, if any. Call it when the
    /// feed goes idle (before a heartbeat) and at the end.
    pub fn flush(&mut self, out: &mut impl FnMut(&[u8])) {
        if self.holding {
            self.holding = false;
            out(&self.held);
        }
    }

    /// True while a packet is held back.
    #[must_use]
    pub fn holding(&self) -> bool {
        self.holding
    }

    /// What was done so far.
    #[must_use]
    pub fn stats(&self) -> FaultStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(faults: Faults, n: u8) -> (Vec<u8>, FaultStats) {
        let mut f = FaultInjector::new(faults, 42).unwrap();
        let mut sent = Vec::new();
        for i in 0..n {
            f.process(&[i], &mut |p| sent.push(p[0]));
        }
        f.flush(&mut |p| sent.push(p[0]));
        (sent, f.stats())
    }

    #[test]
    fn no_faults_pass_everything_in_order() {
        let (sent, st) = run(Faults::NONE, 100);
        assert_eq!(sent, (0..100).collect::<Vec<_>>());
        assert_eq!(st.packets, 100);
        assert_eq!(st.dropped + st.duplicated + st.reordered, 0);
    }

    #[test]
    fn counts_match_what_was_sent() {
        let (sent, st) = run(Faults::uniform(0.2), 200);
        assert!(
            st.dropped > 0 && st.duplicated > 0 && st.reordered > 0,
            "{st:?}"
        );
        assert_eq!(
            sent.len() as u64,
            st.packets - st.dropped + st.duplicated,
            "{st:?}"
        );
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
    fn reserved_room_holds_every_packet_in_place() {
        let mut f = FaultInjector::new(
            Faults {
                reorder: 0.5,
                ..Faults::NONE
            },
            3,
        )
        .unwrap();
        f.reserve(64);
        let (ptr, cap) = (f.held.as_ptr(), f.held.capacity());
        assert!(cap >= 64);
        let packet = [7u8; 64];
        for len in (1..=64).cycle().take(500) {
            f.process(&packet[..len], &mut |_| {});
        }
        assert!(f.stats().reordered > 100);
        assert_eq!((f.held.as_ptr(), f.held.capacity()), (ptr, cap));
    }

    #[test]
    fn same_seed_same_faults() {
        assert_eq!(
            run(Faults::uniform(0.1), 100),
            run(Faults::uniform(0.1), 100)
        );
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
        assert!(
            Faults {
                loss: f64::NAN,
                ..Faults::NONE
            }
            .validate()
            .is_err()
        );
    }
}
