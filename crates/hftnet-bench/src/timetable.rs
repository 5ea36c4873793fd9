//! The fixed-rate timetable shared by every loop that sends on a schedule:
//! the fixed-rate ping, the rate-limited blast and the exchange's pacing.
//!
//! Item `k` is due at `start + k · interval`, computed exactly from the rate
//! (`k · 10⁹ / rate` nanoseconds, in 128-bit arithmetic, so a rate that does
//! not divide a second does not drift). The timetable measures how far behind
//! its schedule a send starts — the figure that exposes a stalled sender
//! (coordinated omission) — and optionally bounds the catch-up: after a stall
//! longer than the bound it restarts the schedule from now, counted, rather
//! than sending everything missed back to back.
//!
//! Layer: `hftnet-bench`, used by the harness loops here and by the exchange
//! of `hftnet-apps`. Invariants: [`Timetable`] is plain arithmetic on
//! nanosecond readings the caller passes in — it never reads a clock, so it
//! is deterministic and tested with explicit times; it never allocates, locks
//! or logs. [`WaitPolicy`] is the one place that turns "not due yet" into a
//! sleep or a spin; [`WaitPolicy::step`] is pure and [`WaitPolicy::wait_until`]
//! is the only function here that reads the clock.

use std::time::{Duration, Instant};

/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;

/// A fixed-rate schedule of items numbered from 0, in nanoseconds from an
/// origin of the caller's choosing (usually the `Instant` the loop started).
///
/// Use: before sending item `k` at time `now`, check
/// `now >= t.due_ns(k)`; then call [`Timetable::note_send`] to record how far
/// behind the send is (and, with a catch-up bound, maybe restart the
/// schedule). [`Timetable::due_count`] says how many items are due by a time,
/// for loops that send everything due in one burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timetable {
    /// Item `base_item + j` is due at `base_ns + j · num / den` ns.
    num: u64,
    den: u64,
    base_ns: u64,
    base_item: u64,
    catch_up_ns: Option<u64>,
    restarts: u64,
    behind_max_ns: u64,
}

impl Timetable {
    /// `rate` items per second, item 0 due at time 0. `None` for a rate of 0
    /// (no schedule: callers send as fast as they can).
    #[must_use]
    pub const fn per_second(rate: u64) -> Option<Self> {
        if rate == 0 {
            return None;
        }
        Some(Self::new(NS_PER_S, rate))
    }

    /// One item per `interval`, item 0 due at time 0. `None` for a zero
    /// interval, and for one longer than `u64::MAX` nanoseconds (584 years).
    #[must_use]
    pub fn every(interval: Duration) -> Option<Self> {
        match u64::try_from(interval.as_nanos()) {
            Ok(0) | Err(_) => None,
            Ok(ns) => Some(Self::new(ns, 1)),
        }
    }

    const fn new(num: u64, den: u64) -> Self {
        Self {
            num,
            den,
            base_ns: 0,
            base_item: 0,
            catch_up_ns: None,
            restarts: 0,
            behind_max_ns: 0,
        }
    }

    /// The same schedule with item 0 due at `origin_ns` instead of 0.
    #[must_use]
    pub const fn starting_at(mut self, origin_ns: u64) -> Self {
        self.base_ns = origin_ns;
        self
    }

    /// Bounds the catch-up: when a send starts more than `max_behind` after
    /// its due time, the schedule restarts with that item due now (counted in
    /// [`Timetable::restarts`]), so a long stall is not followed by a burst of
    /// everything it missed. Without this bound the schedule never moves.
    #[must_use]
    pub fn with_catch_up(mut self, max_behind: Duration) -> Self {
        self.catch_up_ns = Some(u64::try_from(max_behind.as_nanos()).unwrap_or(u64::MAX));
        self
    }

    /// When `item` is due, in ns from the origin. Items before the last
    /// restart are due at the restart.
    #[must_use]
    pub const fn due_ns(&self, item: u64) -> u64 {
        let j = item.saturating_sub(self.base_item) as u128;
        let offset = j * self.num as u128 / self.den as u128;
        let due = self.base_ns as u128 + offset;
        if due > u64::MAX as u128 {
            u64::MAX
        } else {
            due as u64
        }
    }

    /// `origin + due_ns(item)`: when `item` is due, as an [`Instant`].
    #[must_use]
    pub fn due_instant(&self, origin: Instant, item: u64) -> Instant {
        origin + Duration::from_nanos(self.due_ns(item))
    }

    /// How many items are due at `now_ns`: every item `k` with
    /// `due_ns(k) <= now_ns` (items are due in order, so they are `0..count`).
    /// Before the origin (or the last restart) only the items before it count.
    #[must_use]
    pub const fn due_count(&self, now_ns: u64) -> u64 {
        if now_ns < self.base_ns {
            return self.base_item;
        }
        // floor(j·num/den) <= t  ⟺  j·num < (t+1)·den  ⟺  j < ceil((t+1)·den/num).
        let t = (now_ns - self.base_ns) as u128;
        let n = ((t + 1) * self.den as u128).div_ceil(self.num as u128);
        let count = self.base_item as u128 + n;
        if count > u64::MAX as u128 {
            u64::MAX
        } else {
            count as u64
        }
    }

    /// How far behind its schedule a send of `item` at `now_ns` is (0 when
    /// on time or early).
    #[must_use]
    pub const fn behind_ns(&self, item: u64, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.due_ns(item))
    }

    /// Records that the send of `item` starts at `now_ns` and returns how far
    /// behind schedule it is. The largest value is kept
    /// ([`Timetable::behind_max_ns`]); with a catch-up bound, a send further
    /// behind than the bound restarts the schedule: `item` becomes due at
    /// `now_ns` and the items after it follow at the rate from there.
    pub fn note_send(&mut self, item: u64, now_ns: u64) -> u64 {
        let behind = self.behind_ns(item, now_ns);
        if behind > self.behind_max_ns {
            self.behind_max_ns = behind;
        }
        if self.catch_up_ns.is_some_and(|max| behind > max) {
            self.restarts += 1;
            self.base_ns = now_ns;
            self.base_item = item;
        }
        behind
    }

    /// The most a send was behind its schedule, ns (restarts included: the
    /// stall that caused a restart is counted here).
    #[must_use]
    pub const fn behind_max_ns(&self) -> u64 {
        self.behind_max_ns
    }

    /// Times the schedule restarted after a stall longer than the catch-up
    /// bound.
    #[must_use]
    pub const fn restarts(&self) -> u64 {
        self.restarts
    }
}

/// What to do while an item is not due yet: sleep in the kernel while the
/// due time is far, spin (or poll something else) when it is near, because a
/// timed sleep wakes up late by the timer slack and the scheduler's latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Sleep only when more than this is left; otherwise spin.
    pub sleep_above: Duration,
    /// Wake up this long before the due time and spin the rest.
    pub wake_early: Duration,
    /// The longest single sleep, for loops with other work to come back to
    /// (`None`: sleep until `wake_early` before the due time at once).
    pub max_sleep: Option<Duration>,
}

/// One step of waiting, decided by [`WaitPolicy::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStep {
    /// Nothing left to wait: the item is due.
    Due,
    /// Sleep this long, then decide again.
    Sleep(Duration),
    /// Near the due time: spin (one pause) and decide again.
    Spin,
}

impl WaitPolicy {
    /// Sleep while more than 100 µs are left, waking 50 µs early; spin the
    /// rest. The fixed-rate blast waits this way.
    pub const SLEEP_THEN_SPIN: Self = Self {
        sleep_above: Duration::from_micros(100),
        wake_early: Duration::from_micros(50),
        max_sleep: None,
    };

    /// What to do with `left_ns` nanoseconds left before the due time.
    #[must_use]
    pub fn step(&self, left_ns: u64) -> WaitStep {
        if left_ns == 0 {
            return WaitStep::Due;
        }
        let left = Duration::from_nanos(left_ns);
        if left <= self.sleep_above {
            return WaitStep::Spin;
        }
        let sleep = left.saturating_sub(self.wake_early);
        let sleep = self.max_sleep.map_or(sleep, |m| sleep.min(m));
        if sleep.is_zero() {
            WaitStep::Spin
        } else {
            WaitStep::Sleep(sleep)
        }
    }

    /// Waits until `deadline`, sleeping and spinning as the policy says.
    pub fn wait_until(&self, deadline: Instant) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.step(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)) {
                WaitStep::Due => return,
                WaitStep::Sleep(d) => std::thread::sleep(d),
                WaitStep::Spin => std::hint::spin_loop(),
            }
        }
    }

    /// Waits until `clock` reads `deadline_ns` or later: the schedule kept
    /// on the same clock as the stamps it is compared with (an `Instant`
    /// deadline runs on CLOCK_MONOTONIC, which drifts from a calibrated TSC
    /// and is slewed by NTP).
    pub fn wait_until_ns(&self, clock: crate::clock::Clock, deadline_ns: u64) {
        loop {
            match self.step(deadline_ns.saturating_sub(clock.now_ns())) {
                WaitStep::Due => return,
                WaitStep::Sleep(d) => std::thread::sleep(d),
                WaitStep::Spin => std::hint::spin_loop(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_exact_at_any_rate() {
        let t = Timetable::per_second(1000).unwrap();
        assert_eq!(t.due_ns(0), 0);
        assert_eq!(t.due_ns(1), 1_000_000);
        assert_eq!(t.due_ns(2500), 2_500_000_000);
        // 3 per second: no drift from a rounded interval.
        let t = Timetable::per_second(3).unwrap();
        assert_eq!(t.due_ns(1), 333_333_333);
        assert_eq!(t.due_ns(2), 666_666_666);
        assert_eq!(t.due_ns(3), 1_000_000_000);
        assert_eq!(t.due_ns(3_000_000), 1_000_000_000_000_000);
        assert!(Timetable::per_second(0).is_none());
        // An interval, and an origin.
        let t = Timetable::every(Duration::from_micros(250))
            .unwrap()
            .starting_at(7);
        assert_eq!(t.due_ns(0), 7);
        assert_eq!(t.due_ns(4), 1_000_007);
        assert!(Timetable::every(Duration::ZERO).is_none());
        let origin = Instant::now();
        assert_eq!(
            t.due_instant(origin, 4),
            origin + Duration::from_nanos(1_000_007)
        );
        // Far items saturate instead of wrapping.
        assert_eq!(Timetable::per_second(1).unwrap().due_ns(u64::MAX), u64::MAX);
    }

    #[test]
    fn due_count_agrees_with_due_times() {
        for rate in [1, 3, 7, 1000, 999_983, 1_000_000_000, 3_000_000_000] {
            let mut t = Timetable::per_second(rate).unwrap().starting_at(5);
            for pass in 0..2 {
                for now in (0..3_000_000u64).step_by(4_999).chain([4, 5, 6]) {
                    let count = t.due_count(now);
                    assert!(
                        count == t.base_item || t.due_ns(count - 1) <= now,
                        "rate {rate} pass {pass}: item {} not due at {now}",
                        count - 1
                    );
                    assert!(
                        t.due_ns(count) > now,
                        "rate {rate} pass {pass}: item {count} due at {now} but not counted"
                    );
                }
                // The same after a restart.
                t.base_ns = 1_000;
                t.base_item = 17;
            }
        }
        let t = Timetable::per_second(1000).unwrap().starting_at(100);
        assert_eq!(t.due_count(99), 0);
        assert_eq!(t.due_count(100), 1);
        assert_eq!(t.due_count(1_000_099), 1);
        assert_eq!(t.due_count(1_000_100), 2);
    }

    #[test]
    fn sends_behind_schedule_are_measured_without_restarts_by_default() {
        let mut t = Timetable::per_second(1000).unwrap();
        assert_eq!(t.note_send(0, 0), 0);
        assert_eq!(t.note_send(1, 1_000_500), 500);
        // Early sends are not behind.
        assert_eq!(t.note_send(2, 1_500_000), 0);
        // A long stall: measured, but the schedule stays, so the items it
        // missed are all due at once.
        assert_eq!(t.note_send(3, 503_000_000), 500_000_000);
        assert_eq!(t.behind_max_ns(), 500_000_000);
        assert_eq!(t.restarts(), 0);
        assert_eq!(t.due_ns(4), 4_000_000);
        assert_eq!(t.due_count(503_000_000), 504);
    }

    #[test]
    fn bounded_catch_up_restarts_the_schedule_after_a_stall() {
        let mut t = Timetable::per_second(1000)
            .unwrap()
            .with_catch_up(Duration::from_millis(10));
        assert_eq!(t.note_send(0, 0), 0);
        // Exactly at the bound: caught up, not restarted.
        assert_eq!(t.note_send(5, 15_000_000), 10_000_000);
        assert_eq!(t.restarts(), 0);
        assert_eq!(t.due_ns(6), 6_000_000);
        // Past the bound: item 6 becomes due now and the rest follow at the rate.
        assert_eq!(t.note_send(6, 30_000_000), 24_000_000);
        assert_eq!(t.restarts(), 1);
        assert_eq!(t.behind_max_ns(), 24_000_000, "the stall is still reported");
        assert_eq!(t.due_ns(6), 30_000_000);
        assert_eq!(t.due_ns(7), 31_000_000);
        assert_eq!(t.due_ns(2), 30_000_000, "earlier items count as due");
        assert_eq!(t.due_count(30_999_999), 7);
        assert_eq!(t.due_count(31_000_000), 8);
        assert_eq!(t.note_send(7, 31_000_100), 100);
        assert_eq!(t.restarts(), 1);
    }

    #[test]
    fn wait_policy_sleeps_when_far_and_spins_when_near() {
        let p = WaitPolicy::SLEEP_THEN_SPIN;
        assert_eq!(p.step(0), WaitStep::Due);
        assert_eq!(p.step(1), WaitStep::Spin);
        assert_eq!(p.step(100_000), WaitStep::Spin);
        assert_eq!(
            p.step(100_001),
            WaitStep::Sleep(Duration::from_nanos(50_001))
        );
        assert_eq!(
            p.step(5_000_000),
            WaitStep::Sleep(Duration::from_micros(4_950))
        );
        let capped = WaitPolicy {
            sleep_above: Duration::from_micros(200),
            wake_early: Duration::from_micros(100),
            max_sleep: Some(Duration::from_millis(1)),
        };
        assert_eq!(capped.step(150_000), WaitStep::Spin);
        assert_eq!(
            capped.step(300_000),
            WaitStep::Sleep(Duration::from_micros(200))
        );
        assert_eq!(
            capped.step(50_000_000),
            WaitStep::Sleep(Duration::from_millis(1))
        );
        // Waking early by more than is left never yields a zero sleep.
        let odd = WaitPolicy {
            sleep_above: Duration::from_micros(1),
            wake_early: Duration::from_micros(10),
            max_sleep: None,
        };
        assert_eq!(odd.step(5_000), WaitStep::Spin);
    }

    #[test]
    fn wait_until_returns_at_once_for_a_past_deadline() {
        let past = Instant::now();
        WaitPolicy::SLEEP_THEN_SPIN.wait_until(past);
        assert!(Instant::now() >= past);
    }
}
