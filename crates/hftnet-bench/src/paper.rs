//! The paper's tuning ladder, judged: the rungs of Waskiewicz's "Anatomy of
//! networking in HFT" (baseline; + CPU affinity; + interrupt affinity; +
//! CPU isolation; + polling) followed by the bypass rungs, each beside the
//! gain the project's seed documents claim for its technique, and a verdict
//! on whether the claim holds on this machine.
//!
//! Layer: pure (no I/O). The runner (`hftnet lab --ladder`) measures the
//! rungs; this module names them ([`Step`]), holds the claims ([`claim`])
//! and judges a measured change against a claim ([`judge`]), with the run's
//! own noise deciding what cannot be told apart ([`noise_pct`]).
//!
//! Invariants: a claim is a latency reduction in percent against a stated
//! reference rung; a change smaller than the run's noise never "holds" or
//! "misses" a claim that is itself below the noise: it is "not measurable
//! here", with the noise named.

use serde::Serialize;

/// One rung of the ladder, in the order the ladder runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// No pinning, blocking receives: what a program gets by default.
    Baseline,
    /// Both ends pinned to their own CPU.
    CpuAffinity,
    /// The device's interrupts on the receiving CPU, irqbalance stopped.
    IrqAffinity,
    /// The server's CPU isolated from the rest of the system (cpusets at
    /// run time, or the kernel's `isolcpus`).
    CpuIsolation,
    /// Kernel busy polling (`SO_BUSY_POLL`) on the sockets.
    BusyPoll,
    /// User-space spinning on non-blocking receives (the paper's "polling").
    Spin,
    /// `recvmmsg`/`sendmmsg` batching (spinning).
    Batching,
    /// io_uring completions, spinning.
    IoUring,
    /// `AF_PACKET` rings (TPACKET_V2), spinning.
    AfPacket,
    /// `AF_XDP` sockets (copy mode on veth), spinning.
    AfXdp,
    /// DPDK (`net_af_xdp` vdev on the same interface).
    Dpdk,
    /// Shared memory between the two ends: the floor no network path beats.
    SharedMemory,
}

impl Step {
    /// Every step, in the ladder's order.
    pub const ALL: [Step; 12] = [
        Step::Baseline,
        Step::CpuAffinity,
        Step::IrqAffinity,
        Step::CpuIsolation,
        Step::BusyPoll,
        Step::Spin,
        Step::Batching,
        Step::IoUring,
        Step::AfPacket,
        Step::AfXdp,
        Step::Dpdk,
        Step::SharedMemory,
    ];

    /// How the table names the rung.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Step::Baseline => "baseline",
            Step::CpuAffinity => "+ CPU affinity",
            Step::IrqAffinity => "+ IRQ affinity",
            Step::CpuIsolation => "+ CPU isolation",
            Step::BusyPoll => "+ busy polling",
            Step::Spin => "+ spinning",
            Step::Batching => "batching",
            Step::IoUring => "io_uring",
            Step::AfPacket => "AF_PACKET",
            Step::AfXdp => "AF_XDP",
            Step::Dpdk => "DPDK",
            Step::SharedMemory => "shared memory",
        }
    }

    /// Whether the rung is one of the paper's tuning rungs (run over both
    /// UDP and TCP) rather than a bypass rung (UDP or its own transport).
    #[must_use]
    pub fn is_tuning(self) -> bool {
        matches!(
            self,
            Step::Baseline
                | Step::CpuAffinity
                | Step::IrqAffinity
                | Step::CpuIsolation
                | Step::BusyPoll
                | Step::Spin
        )
    }
}

/// What a claimed reduction is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    /// The rung before it (of the same protocol).
    Previous,
    /// The baseline rung (of the same protocol).
    Baseline,
    /// The best kernel-socket rung (`+ spinning`, UDP): bypass against the
    /// kernel path it replaces.
    KernelSpin,
}

/// A seed document's claim for a technique.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// Where the claim comes from.
    pub source: &'static str,
    /// The claim in the seed's words (figures as the seed gives them).
    pub text: &'static str,
    /// The claimed latency reduction in percent, low and high; `None` when
    /// the seeds claim no figure for the technique.
    pub reduction_pct: Option<(f64, f64)>,
    /// The reference of the reduction.
    pub against: Against,
}

/// The seeds' claim for `step`.
#[must_use]
pub fn claim(step: Step) -> Claim {
    const ANATOMY: &str = "seed 002 (Waskiewicz, netperf TCP_RR on 10 GbE)";
    const TABLE: &str = "seed 000 (optimisation table)";
    const BYPASS: &str = "seed 001 (kernel bypass)";
    let c = |source, text, r: Option<(f64, f64)>, against| Claim {
        source,
        text,
        reduction_pct: r,
        against,
    };
    match step {
        Step::Baseline => c(
            ANATOMY,
            "no tuning: min 51.6, mean 68.7 (the reference)",
            None,
            Against::Baseline,
        ),
        // 1–2 of a 68.7 mean.
        Step::CpuAffinity => c(
            ANATOMY,
            "pinning improves the figures by 1-2 (of a 68.7 mean)",
            Some((1.5, 2.9)),
            Against::Previous,
        ),
        Step::IrqAffinity => c(
            TABLE,
            "interrupt affinity: 15-25% latency reduction",
            Some((15.0, 25.0)),
            Against::Previous,
        ),
        // 5–6 of a 68.7 mean.
        Step::CpuIsolation => c(
            ANATOMY,
            "CPU isolation saves about 5-6 (of a 68.7 mean)",
            Some((7.3, 8.7)),
            Against::Previous,
        ),
        Step::BusyPoll => c(
            TABLE,
            "busy polling: 40-60% latency reduction",
            Some((40.0, 60.0)),
            Against::Previous,
        ),
        // Mean 68.7 -> 56.3, min 51.6 -> 41.9 with every tuning rung.
        Step::Spin => c(
            ANATOMY,
            "with polling on top of the rest: mean 68.7 -> 56.3, min 51.6 -> 41.9 (18-19% off the \
             baseline)",
            Some((18.0, 19.0)),
            Against::Baseline,
        ),
        Step::Batching => c(
            TABLE,
            "socket optimisation (recvmmsg/sendmmsg batching): 15-30% latency reduction",
            Some((15.0, 30.0)),
            Against::Previous,
        ),
        Step::IoUring => c(
            TABLE,
            "no latency figure claimed for io_uring",
            None,
            Against::KernelSpin,
        ),
        Step::AfPacket => c(
            TABLE,
            "zero-copy techniques (packet mmap rings): 25-45% latency reduction",
            Some((25.0, 45.0)),
            Against::KernelSpin,
        ),
        Step::AfXdp => c(
            BYPASS,
            "kernel bypass: 10-40 us -> 1.5-4 us, a 3-10x latency reduction",
            Some((66.7, 90.0)),
            Against::Baseline,
        ),
        Step::Dpdk => c(
            TABLE,
            "kernel bypass (DPDK/RDMA): 80-95% latency reduction",
            Some((80.0, 95.0)),
            Against::Baseline,
        ),
        Step::SharedMemory => c(
            TABLE,
            "no figure claimed: the floor any network path is read against",
            None,
            Against::KernelSpin,
        ),
    }
}

/// The verdict on a claim.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// The reference rung itself.
    Reference,
    /// The measured reduction is within the claimed range.
    Holds,
    /// Smaller than claimed (or a slowdown).
    Smaller,
    /// Larger than claimed.
    Larger,
    /// Measured, but the seeds claim no figure for it.
    NoClaim,
    /// Cannot be judged on this machine: why.
    NotMeasurable(String),
}

impl Verdict {
    /// The short word the table prints.
    #[must_use]
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Reference => "reference",
            Verdict::Holds => "holds",
            Verdict::Smaller => "smaller",
            Verdict::Larger => "larger",
            Verdict::NoClaim => "no claim",
            Verdict::NotMeasurable(_) => "not measurable here",
        }
    }
}

/// The reduction from `reference` to `value` in percent (positive: faster).
#[must_use]
pub fn reduction_pct(reference: u64, value: u64) -> Option<f64> {
    (reference > 0).then(|| (reference as f64 - value as f64) * 100.0 / reference as f64)
}

/// The run's noise for a rung, in percent: half the spread of its
/// per-round p50s around their median. `None` with fewer than two rounds.
#[must_use]
pub fn noise_pct(per_round_p50: &[u64]) -> Option<f64> {
    if per_round_p50.len() < 2 {
        return None;
    }
    let mut v = per_round_p50.to_vec();
    v.sort_unstable();
    let median = v[v.len() / 2] as f64;
    let spread = (v[v.len() - 1] - v[0]) as f64;
    (median > 0.0).then(|| spread * 50.0 / median)
}

/// Judges `measured` (the reduction in percent against the claim's
/// reference; `None` when a figure is missing) with `noise` (percent, see
/// [`noise_pct`]; `None` with one round). `blocked`: why the technique did
/// not take effect, which makes the rung not measurable whatever its
/// figures.
///
/// The change is known to ± the noise: `smaller` when even its top is below
/// the claim, `larger` when even its bottom is above, `holds` when it lies
/// in the claimed range and is told apart from no change (beyond the
/// noise); anything else cannot be judged here and says so.
#[must_use]
pub fn judge(
    step: Step,
    measured: Option<f64>,
    noise: Option<f64>,
    blocked: Option<&str>,
) -> Verdict {
    if step == Step::Baseline {
        return Verdict::Reference;
    }
    if let Some(why) = blocked {
        return Verdict::NotMeasurable(why.to_string());
    }
    let c = claim(step);
    let Some(m) = measured else {
        return Verdict::NotMeasurable(
            "no figures: the rung or its reference measured nothing".into(),
        );
    };
    let Some((lo, hi)) = c.reduction_pct else {
        return Verdict::NoClaim;
    };
    let Some(noise) = noise else {
        return Verdict::NotMeasurable(
            "one round: no noise estimate to judge the change against (run 2 rounds or more)"
                .into(),
        );
    };
    if m + noise < lo {
        Verdict::Smaller
    } else if m - noise > hi {
        Verdict::Larger
    } else if (lo..=hi).contains(&m) && m.abs() > noise {
        Verdict::Holds
    } else {
        Verdict::NotMeasurable(format!(
            "the reduction measured ({m:.1}% ± {noise:.1}%: half the spread of the rungs' \
             per-round p50s) cannot be told from the claimed {lo:.1}-{hi:.1}% on this run"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_a_claim_with_an_ordered_range() {
        for s in Step::ALL {
            let c = claim(s);
            assert!(!c.text.is_empty() && !c.source.is_empty(), "{s:?}");
            if let Some((lo, hi)) = c.reduction_pct {
                assert!(0.0 < lo && lo <= hi && hi < 100.0, "{s:?}: {lo}..{hi}");
            }
        }
        assert_eq!(claim(Step::BusyPoll).reduction_pct, Some((40.0, 60.0)));
        assert_eq!(claim(Step::Spin).against, Against::Baseline);
    }

    #[test]
    fn reductions_and_noise() {
        assert_eq!(reduction_pct(100, 60), Some(40.0));
        assert_eq!(reduction_pct(100, 150), Some(-50.0));
        assert_eq!(reduction_pct(0, 10), None);
        assert_eq!(noise_pct(&[100]), None);
        // Spread 20 around a median of 100: ±10%.
        assert_eq!(noise_pct(&[90, 100, 110]), Some(10.0));
    }

    #[test]
    fn verdicts() {
        let nm =
            |v: Verdict, word: &str| matches!(v, Verdict::NotMeasurable(w) if w.contains(word));
        assert_eq!(judge(Step::Baseline, None, None, None), Verdict::Reference);
        assert_eq!(
            judge(Step::BusyPoll, Some(50.0), Some(2.0), None),
            Verdict::Holds
        );
        assert_eq!(
            judge(Step::BusyPoll, Some(10.0), Some(2.0), None),
            Verdict::Smaller
        );
        assert_eq!(
            judge(Step::BusyPoll, Some(-5.0), Some(2.0), None),
            Verdict::Smaller
        );
        assert_eq!(
            judge(Step::BusyPoll, Some(70.0), Some(2.0), None),
            Verdict::Larger
        );
        assert_eq!(
            judge(Step::IoUring, Some(5.0), Some(1.0), None),
            Verdict::NoClaim
        );
        assert!(nm(
            judge(
                Step::IrqAffinity,
                Some(30.0),
                Some(1.0),
                Some("veth has no IRQs")
            ),
            "veth"
        ));
        // One round: no noise to judge against.
        assert!(nm(
            judge(Step::BusyPoll, Some(50.0), None, None),
            "one round"
        ));
        // A 1.5-2.9% claim inside ±5% noise with a +1% change: not judged.
        assert!(nm(
            judge(Step::CpuAffinity, Some(1.0), Some(5.0), None),
            "cannot be told"
        ));
        // The same claim with a change beyond the noise is judged.
        assert_eq!(
            judge(Step::CpuAffinity, Some(-12.0), Some(5.0), None),
            Verdict::Smaller
        );
        // A 40-60% claim against a change within ±5% of zero: smaller.
        assert_eq!(
            judge(Step::BusyPoll, Some(1.0), Some(5.0), None),
            Verdict::Smaller
        );
        // In the claimed range but not told from no change: not judged.
        assert!(nm(
            judge(Step::IrqAffinity, Some(16.0), Some(20.0), None),
            "cannot be told"
        ));
        // Near the range, its noise reaching into it: not judged either way.
        assert!(nm(
            judge(Step::BusyPoll, Some(35.0), Some(10.0), None),
            "cannot be told"
        ));
        assert!(nm(
            judge(Step::BusyPoll, Some(65.0), Some(10.0), None),
            "cannot be told"
        ));
        assert!(nm(judge(Step::Spin, None, None, None), "no figures"));
    }
}
