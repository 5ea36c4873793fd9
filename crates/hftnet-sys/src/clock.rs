//! The two clocks stamps are read on, in nanoseconds: `CLOCK_MONOTONIC`
//! (what `bpf_ktime_get_ns()` and futex deadlines read) and
//! `CLOCK_REALTIME` (the kernel's software socket stamps), and the offset
//! between them.
//!
//! Layer: plain reads over [`crate::futex::Deadline::now`] and
//! `std::time::SystemTime` (no `unsafe` here); `hftnet-io` (AF_XDP receive
//! stamps) and `hftnet-bench` (its `clock` module) build on it. No
//! allocation.

use std::time::Duration;

/// `CLOCK_MONOTONIC` now, in nanoseconds since an unspecified start (boot):
/// the clock every process of the machine shares, and the clock of BPF's
/// `bpf_ktime_get_ns()`. Read through the vDSO where the clocksource allows;
/// 0 if the read fails (Linux does not fail it short of a seccomp filter).
#[inline]
#[must_use]
pub fn monotonic_ns() -> u64 {
    crate::futex::Deadline::now().map_or(0, |d| duration_ns(d.as_monotonic()))
}

/// `CLOCK_REALTIME` now, in nanoseconds since the Unix epoch (the clock of
/// the kernel's software receive stamps); 0 before 1970.
#[inline]
#[must_use]
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, duration_ns)
}

/// `CLOCK_REALTIME` minus `CLOCK_MONOTONIC`, in nanoseconds: add it to a
/// monotonic stamp to place it on the realtime scale, subtract it from a
/// kernel software stamp to place that on the monotonic one. The two clocks
/// run at the same (NTP-slewed) rate, so the offset changes only when the
/// wall clock is stepped. Read as the tightest of 16 pairs of monotonic
/// reads bracketing a realtime one (its error is at most half that
/// bracket, tens of nanoseconds).
#[must_use]
pub fn realtime_offset_ns() -> i64 {
    let mut best = (u64::MAX, 0i64);
    for _ in 0..16 {
        let a = monotonic_ns();
        let r = realtime_ns();
        let b = monotonic_ns();
        let width = b.saturating_sub(a);
        if width < best.0 {
            let mid = a + width / 2;
            best = (width, (i128::from(r) - i128::from(mid)) as i64);
        }
    }
    best.1
}

/// `d` in nanoseconds, saturating.
#[inline]
#[must_use]
pub fn duration_ns(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_realtime_read_lands_between_two_monotonic_reads_moved_by_the_offset() {
        let off = realtime_offset_ns();
        let a = monotonic_ns();
        let r = realtime_ns();
        let b = monotonic_ns();
        let r_mono = i128::from(r) - i128::from(off);
        // The offset's own error (half its bracket) and the microsecond
        // granularity of nothing here: allow 1 ms either side.
        assert!(
            i128::from(a) - 1_000_000 <= r_mono && r_mono <= i128::from(b) + 1_000_000,
            "{a} <= {r_mono} <= {b} (offset {off})"
        );
        assert!(b >= a && a > 0);
    }
}
