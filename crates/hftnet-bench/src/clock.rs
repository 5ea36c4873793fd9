//! The benchmark clock: the CPU's time-stamp counter when it is invariant,
//! calibrated against `CLOCK_MONOTONIC` at start, otherwise `CLOCK_MONOTONIC`
//! itself — and it says which, and why (DESIGN.md, "Measuring honestly").
//!
//! Layer: `hftnet-bench`, used on the hot path of every measurement loop. The
//! raw counter read lives in `hftnet_sys::sched`; this module holds no
//! `unsafe`.
//!
//! Invariants: a [`Clock`] is `Copy` and immutable after construction;
//! [`Clock::now`] neither allocates, locks nor makes a syscall on the TSC path;
//! converting ticks to nanoseconds is one 64×64→128-bit multiply and a shift
//! (no float, no division), exact to about one part in 10¹¹ and free of
//! overflow for any `u64` tick count. Readings from two different `Clock`
//! values must never be mixed: each has its own base and calibration.
//!
//! It must never silently pass off a non-invariant TSC or a failed calibration
//! as nanoseconds: in that case it falls back to `CLOCK_MONOTONIC` and
//! [`Clock::fallback_reason`] says why.

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Fixed-point shift of the ticks → ns multiplier.
const SHIFT: u32 = 40;
/// Paired reads taken at each calibration point; the tightest pair wins.
const PAIRS_PER_POINT: usize = 64;
/// Spacing of the three calibration points (total ≈ 2 × this).
const CALIBRATION_STEP: Duration = Duration::from_millis(7);
/// The two half-interval rate estimates must agree this closely (parts per
/// million), or calibration is retried.
const MAX_DISAGREEMENT_PPM: u64 = 500;
/// Calibration attempts before giving up on the TSC.
const CALIBRATION_ATTEMPTS: usize = 3;
/// A TSC rate outside this range is treated as a calibration failure.
const PLAUSIBLE_HZ: std::ops::RangeInclusive<u64> = 100_000_000..=10_000_000_000;

/// Which time source a [`Clock`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// The invariant time-stamp counter, converted with a calibrated rate.
    Tsc,
    /// `CLOCK_MONOTONIC` (through `std::time::Instant`), in nanoseconds.
    Monotonic,
}

impl ClockKind {
    /// The name used in reports and JSON: `"tsc"` or `"monotonic"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tsc => "tsc",
            Self::Monotonic => "monotonic",
        }
    }
}

impl fmt::Display for ClockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Tsc {
        /// ns = (ticks × mult) >> SHIFT.
        mult: u64,
        /// Calibrated ticks per second.
        hz: u64,
        /// Counter value at the clock's base.
        base: u64,
    },
    Monotonic {
        /// The clock's base.
        base: Instant,
        /// Why the TSC is not used.
        reason: &'static str,
    },
}

/// A cheap, `Copy` clock for latency measurement.
///
/// Read it with [`now`](Self::now) (raw ticks: TSC ticks, or nanoseconds on the
/// fallback), keep the raw values on the hot path, and convert afterwards with
/// [`ns_between`](Self::ns_between) or [`to_ns`](Self::to_ns).
///
/// ```
/// let clock = hftnet_bench::clock::Clock::new();
/// let t0 = clock.now();
/// let t1 = clock.now();
/// assert!(clock.ns_between(t0, t1) < 1_000_000_000);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    source: Source,
}

impl Clock {
    /// The best clock this machine offers: the TSC if invariant
    /// (`constant_tsc` and `nonstop_tsc`) and its calibration against
    /// `CLOCK_MONOTONIC` is consistent, else `CLOCK_MONOTONIC`.
    ///
    /// Blocks for about 15 ms (up to ~45 ms if calibration must be retried)
    /// while it calibrates: build one clock at start-up and copy it.
    #[must_use]
    pub fn new() -> Self {
        if !cfg!(target_arch = "x86_64") {
            return Self::fallback("no TSC on this architecture");
        }
        if !hftnet_sys::sched::tsc_invariant() {
            return Self::fallback(
                "TSC not invariant (no constant_tsc/nonstop_tsc in /proc/cpuinfo)",
            );
        }
        match calibrate() {
            Ok(hz) => Self::from_tsc_hz(hz),
            Err(reason) => Self::fallback(reason),
        }
    }

    /// A `CLOCK_MONOTONIC` clock, even where the TSC would do: for tests and
    /// for comparing the two sources.
    #[must_use]
    pub fn monotonic() -> Self {
        Self::fallback("monotonic clock requested (Clock::monotonic)")
    }

    /// A TSC clock with a known rate instead of a calibrated one (for tests,
    /// or to reuse a rate calibrated earlier). Its base is now.
    ///
    /// # Panics
    /// If `hz` is below 60 Hz (no real TSC is), where the fixed-point
    /// multiplier would not fit.
    #[must_use]
    pub fn from_tsc_hz(hz: u64) -> Self {
        assert!(
            hz >= 60,
            "TSC rate {hz} Hz is too low for the fixed-point multiplier"
        );
        let hz128 = u128::from(hz);
        let mult = u64::try_from(((1_000_000_000u128 << SHIFT) + hz128 / 2) / hz128)
            .expect("multiplier fits u64 for hz >= 60");
        Self {
            source: Source::Tsc {
                mult,
                hz,
                base: hftnet_sys::sched::rdtsc_ordered(),
            },
        }
    }

    fn fallback(reason: &'static str) -> Self {
        Self {
            source: Source::Monotonic {
                base: Instant::now(),
                reason,
            },
        }
    }

    /// Which source this clock reads.
    #[must_use]
    pub fn kind(&self) -> ClockKind {
        match self.source {
            Source::Tsc { .. } => ClockKind::Tsc,
            Source::Monotonic { .. } => ClockKind::Monotonic,
        }
    }

    /// Why this clock is not the TSC (`None` when it is), e.g. `"TSC not
    /// invariant (no constant_tsc/nonstop_tsc in /proc/cpuinfo)"`.
    #[must_use]
    pub fn fallback_reason(&self) -> Option<&'static str> {
        match self.source {
            Source::Tsc { .. } => None,
            Source::Monotonic { reason, .. } => Some(reason),
        }
    }

    /// The calibrated TSC rate in ticks per second, `None` on the fallback.
    #[must_use]
    pub fn tsc_hz(&self) -> Option<u64> {
        match self.source {
            Source::Tsc { hz, .. } => Some(hz),
            Source::Monotonic { .. } => None,
        }
    }

    /// A raw reading: TSC ticks (ordered after earlier instructions, see
    /// `hftnet_sys::sched::rdtsc_ordered`), or nanoseconds since the clock's
    /// base on the fallback. Only differences between readings of the same
    /// clock mean anything.
    #[inline]
    #[must_use]
    pub fn now(&self) -> u64 {
        match self.source {
            Source::Tsc { .. } => hftnet_sys::sched::rdtsc_ordered(),
            Source::Monotonic { base, .. } => duration_ns(base.elapsed()),
        }
    }

    /// Converts a tick count (a difference of two [`now`](Self::now) readings)
    /// to nanoseconds.
    #[inline]
    #[must_use]
    pub fn to_ns(&self, ticks: u64) -> u64 {
        match self.source {
            Source::Tsc { mult, .. } => ticks_to_ns(ticks, mult),
            Source::Monotonic { .. } => ticks,
        }
    }

    /// Nanoseconds from reading `a` to the later reading `b`; 0 if `b` is
    /// earlier than `a` (possible across CPUs whose counters differ slightly).
    #[inline]
    #[must_use]
    pub fn ns_between(&self, a: u64, b: u64) -> u64 {
        self.to_ns(b.saturating_sub(a))
    }

    /// Nanoseconds since this clock was built (its base).
    #[inline]
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        match self.source {
            Source::Tsc { base, .. } => self.ns_between(base, self.now()),
            Source::Monotonic { base, .. } => duration_ns(base.elapsed()),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds since an unspecified start (boot):
/// the clock every process of the machine shares, for stamps compared
/// across processes (a [`Clock`] has a base of its own). Read through the
/// vDSO where the clocksource allows (`tsc`, `kvm-clock`): no syscall, no
/// allocation.
#[inline]
#[must_use]
pub fn monotonic_ns() -> u64 {
    hftnet_sys::clock::monotonic_ns()
}

/// `CLOCK_REALTIME` now, in nanoseconds since the Unix epoch (the clock of
/// the kernel's software receive stamps); 0 before 1970.
#[must_use]
pub fn realtime_ns() -> u64 {
    hftnet_sys::clock::realtime_ns()
}

/// `CLOCK_REALTIME` minus `CLOCK_MONOTONIC`, in nanoseconds: subtract it
/// from a kernel software stamp (realtime) to place the stamp on
/// `CLOCK_MONOTONIC`. The two clocks run at the same (NTP-slewed) rate, so
/// the offset changes only when the wall clock is stepped; it is read here
/// as the tightest of a few monotonic reads bracketing a realtime one.
#[must_use]
pub fn realtime_offset_ns() -> i64 {
    hftnet_sys::clock::realtime_offset_ns()
}

#[inline]
fn ticks_to_ns(ticks: u64, mult: u64) -> u64 {
    // 64×64→128 multiply and a shift: cannot overflow; the result fits u64 for
    // any rate ≥ 1 GHz, and saturates (centuries away) otherwise.
    let ns = (u128::from(ticks) * u128::from(mult)) >> SHIFT;
    u64::try_from(ns).unwrap_or(u64::MAX)
}

#[inline]
fn duration_ns(d: Duration) -> u64 {
    hftnet_sys::clock::duration_ns(d)
}

/// One calibration point: a monotonic time (ns since `anchor`) and the TSC
/// value at that instant (midpoint of two TSC reads bracketing it).
#[derive(Clone, Copy)]
struct Point {
    mono_ns: u64,
    tsc: u64,
}

/// Takes [`PAIRS_PER_POINT`] bracketed reads and keeps the one whose TSC
/// bracket is tightest (least likely to contain an interrupt or preemption).
fn sample_point(anchor: Instant) -> Point {
    let mut best = Point { mono_ns: 0, tsc: 0 };
    let mut best_width = u64::MAX;
    for _ in 0..PAIRS_PER_POINT {
        let t0 = hftnet_sys::sched::rdtsc_ordered();
        let mono = duration_ns(anchor.elapsed());
        let t1 = hftnet_sys::sched::rdtsc_ordered();
        let width = t1.wrapping_sub(t0);
        if t1 > t0 && width < best_width {
            best_width = width;
            best = Point {
                mono_ns: mono,
                tsc: t0 + width / 2,
            };
        }
    }
    best
}

fn rate(a: Point, b: Point) -> Option<u64> {
    let ticks = b.tsc.checked_sub(a.tsc)?;
    let ns = b.mono_ns.checked_sub(a.mono_ns).filter(|&ns| ns > 0)?;
    u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(ns)).ok()
}

/// Measures the TSC rate over ≈ 2 × [`CALIBRATION_STEP`] against
/// `CLOCK_MONOTONIC`, checking that both halves of the interval agree.
fn calibrate() -> Result<u64, &'static str> {
    let anchor = Instant::now();
    for _ in 0..CALIBRATION_ATTEMPTS {
        let p0 = sample_point(anchor);
        thread::sleep(CALIBRATION_STEP);
        let p1 = sample_point(anchor);
        thread::sleep(CALIBRATION_STEP);
        let p2 = sample_point(anchor);
        let (Some(r01), Some(r12), Some(r02)) = (rate(p0, p1), rate(p1, p2), rate(p0, p2)) else {
            continue;
        };
        let diff_ppm = u128::from(r01.abs_diff(r12)) * 1_000_000 / u128::from(r02.max(1));
        if diff_ppm <= u128::from(MAX_DISAGREEMENT_PPM) && PLAUSIBLE_HZ.contains(&r02) {
            return Ok(r02);
        }
    }
    Err("TSC calibration against CLOCK_MONOTONIC was inconsistent (rate drifted or implausible)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_elapsed_agrees_with_instant() {
        let clock = Clock::new();
        if clock.kind() != ClockKind::Tsc {
            eprintln!("skipped: clock fell back: {:?}", clock.fallback_reason());
            return;
        }
        let hz = clock.tsc_hz().unwrap();
        assert!(PLAUSIBLE_HZ.contains(&hz), "{hz}");
        eprintln!("calibrated TSC: {hz} Hz");
        // Best of a few tries: a preempted read on a noisy 2-vCPU VM can skew
        // one try; a correct clock agrees within 3 % at least once.
        let mut worst = 0.0;
        for _ in 0..5 {
            let i0 = Instant::now();
            let t0 = clock.now();
            thread::sleep(Duration::from_millis(20));
            let t1 = clock.now();
            let real = duration_ns(i0.elapsed());
            let tsc = clock.ns_between(t0, t1);
            let err = (tsc as f64 - real as f64).abs() / real as f64;
            if err < 0.03 {
                return;
            }
            worst = err;
        }
        panic!("TSC clock disagrees with Instant by {:.2} %", worst * 100.0);
    }

    #[test]
    fn now_ns_counts_from_the_base() {
        for clock in [Clock::new(), Clock::monotonic()] {
            let a = clock.now_ns();
            thread::sleep(Duration::from_millis(2));
            let b = clock.now_ns();
            assert!(b >= a + 1_500_000, "{:?}: {a} → {b}", clock.kind());
            assert!(a < 60_000_000_000);
        }
    }

    #[test]
    fn monotonic_ns_is_clock_monotonic() {
        // std's Instant reads CLOCK_MONOTONIC on Linux: the two agree in
        // order, and a sleep shows in both.
        let a = monotonic_ns();
        let t = Instant::now();
        thread::sleep(Duration::from_millis(5));
        let b = monotonic_ns();
        let elapsed = duration_ns(t.elapsed());
        assert!(b > a);
        assert!(b - a >= 5_000_000, "{}", b - a);
        assert!(b - a <= elapsed + 1_000_000, "{} vs {elapsed}", b - a);
        // A realtime stamp taken now lands between two monotonic reads.
        let off = realtime_offset_ns();
        let before = monotonic_ns();
        let r = realtime_ns();
        let after = monotonic_ns();
        let placed = (i128::from(r) - i128::from(off)) as u64;
        assert!(
            placed + 100_000 >= before && placed <= after + 100_000,
            "{before} <= {placed} <= {after}"
        );
    }

    #[test]
    fn monotonic_fallback_works() {
        let clock = Clock::monotonic();
        assert_eq!(clock.kind(), ClockKind::Monotonic);
        assert!(clock.fallback_reason().unwrap().contains("requested"));
        assert_eq!(clock.tsc_hz(), None);
        assert_eq!(clock.to_ns(12_345), 12_345);
        let i0 = Instant::now();
        let a = clock.now();
        thread::sleep(Duration::from_millis(5));
        let b = clock.now();
        let real = duration_ns(i0.elapsed());
        let ns = clock.ns_between(a, b);
        assert!(ns >= 5_000_000 && ns <= real, "{ns} vs {real}");
        assert_eq!(clock.ns_between(b, a), 0);
    }

    #[test]
    fn conversion_does_not_overflow_over_an_hour_at_5_ghz() {
        let clock = Clock::from_tsc_hz(5_000_000_000);
        let hour_ticks = 3_600 * 5_000_000_000u64;
        let ns = clock.to_ns(hour_ticks);
        assert!(ns.abs_diff(3_600_000_000_000) <= 10, "{ns}"); // < 3 ppt
        // And at an awkward rate, over a day, still within 1e-11.
        let clock = Clock::from_tsc_hz(2_893_437_123);
        let day_ticks = 86_400 * 2_893_437_123u64;
        let ns = clock.to_ns(day_ticks);
        assert!(ns.abs_diff(86_400_000_000_000) <= 864, "{ns}");
        // Extreme inputs saturate instead of wrapping.
        assert_eq!(Clock::from_tsc_hz(100_000_000).to_ns(u64::MAX), u64::MAX);
        assert_eq!(clock.to_ns(0), 0);
    }

    #[test]
    fn kind_names_match_the_json() {
        assert_eq!(serde_json::to_string(&ClockKind::Tsc).unwrap(), "\"tsc\"");
        assert_eq!(ClockKind::Monotonic.to_string(), "monotonic");
    }
}
