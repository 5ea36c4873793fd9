//! Futexes: sleep while a 32-bit word holds an expected value, and wake the
//! sleepers after changing it — the blocking half of a spin-then-sleep wait
//! between threads ([`Scope::Private`]) or between processes sharing memory
//! ([`Scope::Shared`], a word in a `MAP_SHARED` mapping such as a
//! shared-memory ring's).
//!
//! Layer: `hftnet-sys`, under the waiting strategies of rings and channels.
//! Waking is a system call, so a writer should wake only when a reader may
//! be asleep (e.g. a "sleeping" flag the reader sets before it waits).
//!
//! Timeouts are absolute [`Deadline`]s on `CLOCK_MONOTONIC`, passed to
//! `FUTEX_WAIT_BITSET` (with `FUTEX_BITSET_MATCH_ANY`, so any `FUTEX_WAKE`
//! reaches the waiter): a caller that loops after an early return (a signal,
//! a spurious wake-up, a wake for a value it does not want yet) waits again
//! with the *same* deadline and never stretches the total wait. [`wait_for`]
//! turns a relative timeout into a deadline once.
//!
//! Invariants and memory ordering: the kernel compares the word with
//! `expected` and queues the waiter atomically with respect to
//! `FUTEX_WAKE` on the same word (both under the futex hash-bucket lock,
//! ordered by the barrier in `futex_wait_setup` / `futex_wake`; see the
//! ordering comment at the top of `kernel/futex/waitwake.c`). So a waker
//! that first stores the new value (`Release` or stronger) and then calls
//! [`wake`] cannot be missed by a waiter that passed the old value: either
//! the waiter's kernel comparison sees the new value
//! ([`WaitOutcome::ValueChanged`]) or the waiter is queued and woken. A
//! return of [`WaitOutcome::Woken`] does not say the value changed (another
//! user of the word, or a spurious wake-up): re-read it with `Acquire` and
//! wait again if needed.
//!
//! Must never: be used on a word that other code also uses as a futex with
//! a different meaning, or with [`Scope::Private`] on memory another process
//! waits on (private futexes are keyed by this process's address space; the
//! other process would never be woken).
//!
//! # References
//! `futex(2)`; `kernel/futex/waitwake.c` (the ordering comment, `futex_wait`,
//! `futex_wake`); Ulrich Drepper, "Futexes Are Tricky".

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::error::{Result, SyscallError};

/// Who may share the futex word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Threads of this process only (`FUTEX_PRIVATE_FLAG`): the kernel keys
    /// the futex by address space and address, which is cheaper.
    Private,
    /// Any process mapping the word's memory shared (`MAP_SHARED`): the
    /// kernel keys the futex by the backing page, so waiters and wakers may
    /// map it at different addresses.
    Shared,
}

impl Scope {
    /// `op` with `FUTEX_PRIVATE_FLAG` for [`Scope::Private`].
    const fn op(self, op: libc::c_int) -> libc::c_int {
        match self {
            Scope::Private => op | libc::FUTEX_PRIVATE_FLAG,
            Scope::Shared => op,
        }
    }
}

/// How a [`wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitOutcome {
    /// A `FUTEX_WAKE` woke the waiter (or the kernel woke it spuriously):
    /// re-read the word.
    Woken,
    /// The word did not hold `expected` when the kernel looked (`EAGAIN`):
    /// it changed before the waiter could sleep.
    ValueChanged,
    /// The deadline passed first (`ETIMEDOUT`).
    TimedOut,
    /// A signal handler ran (`EINTR`); the deadline has not necessarily
    /// passed.
    Interrupted,
}

/// An instant on `CLOCK_MONOTONIC`, the clock futex deadlines use (the
/// clock `std::time::Instant` reads on Linux): time since an unspecified
/// start (boot, on Linux), not counting suspend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Duration);

impl Deadline {
    /// The deadline at `CLOCK_MONOTONIC` time `since_start`.
    #[must_use]
    pub const fn from_monotonic(since_start: Duration) -> Self {
        Self(since_start)
    }

    /// The `CLOCK_MONOTONIC` time of the deadline.
    #[must_use]
    pub const fn as_monotonic(&self) -> Duration {
        self.0
    }

    /// Now (`clock_gettime(CLOCK_MONOTONIC)`).
    ///
    /// # Errors
    /// `clock_gettime(CLOCK_MONOTONIC)` failing, which Linux does not do
    /// short of a seccomp filter that forbids it.
    pub fn now() -> Result<Self> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a live, writable timespec the kernel (or vDSO) fills.
        let ret = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        if ret != 0 {
            return Err(SyscallError::last("clock_gettime(CLOCK_MONOTONIC)"));
        }
        // CLOCK_MONOTONIC is never negative and tv_nsec is below 1e9.
        Ok(Self(Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )))
    }

    /// `timeout` from now (saturating far in the future).
    ///
    /// # Errors
    /// As [`Deadline::now`].
    pub fn after(timeout: Duration) -> Result<Self> {
        Ok(Self(Self::now()?.0.saturating_add(timeout)))
    }

    fn timespec(&self) -> libc::timespec {
        libc::timespec {
            tv_sec: libc::time_t::try_from(self.0.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(self.0.subsec_nanos() as i32),
        }
    }
}

/// `futex(word, FUTEX_WAIT_BITSET [| FUTEX_PRIVATE_FLAG], expected,
/// deadline, NULL, FUTEX_BITSET_MATCH_ANY)`: sleeps while `word` holds
/// `expected`, until woken, until `deadline` (absolute, `CLOCK_MONOTONIC`;
/// `None` waits without limit) or until a signal. One attempt: no outcome
/// is retried here, so the caller's loop sees signals and spurious
/// wake-ups (see the module doc for the loop and the ordering).
///
/// Kernel: `FUTEX_WAIT_BITSET` needs Linux 2.6.25.
///
/// # Errors
/// `call = "futex(FUTEX_WAIT_BITSET)"`: `EINVAL` for a deadline the kernel
/// refuses or a word it cannot use, `EFAULT`, `ENOSYS`. The ordinary ends
/// (`EAGAIN`, `ETIMEDOUT`, `EINTR`) are [`WaitOutcome`]s, not errors.
pub fn wait(
    word: &AtomicU32,
    expected: u32,
    scope: Scope,
    deadline: Option<Deadline>,
) -> Result<WaitOutcome> {
    let ts = deadline.map(|d| d.timespec());
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 for the whole call (borrowed);
    // `ts_ptr` is null or points to a live timespec; uaddr2 is unused by
    // FUTEX_WAIT_BITSET. The kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            scope.op(libc::FUTEX_WAIT_BITSET),
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
    if ret == 0 {
        return Ok(WaitOutcome::Woken);
    }
    let e = SyscallError::last("futex(FUTEX_WAIT_BITSET)");
    match e.errno() {
        Some(libc::EAGAIN) => Ok(WaitOutcome::ValueChanged),
        Some(libc::ETIMEDOUT) => Ok(WaitOutcome::TimedOut),
        Some(libc::EINTR) => Ok(WaitOutcome::Interrupted),
        _ => Err(e),
    }
}

/// [`wait`] with a timeout relative to now, turned into a [`Deadline`]
/// once (a caller that loops should build the deadline itself and call
/// [`wait`] with it, so the loop's total wait stays bounded).
///
/// # Errors
/// As [`wait`] and [`Deadline::now`].
pub fn wait_for(
    word: &AtomicU32,
    expected: u32,
    scope: Scope,
    timeout: Duration,
) -> Result<WaitOutcome> {
    wait(word, expected, scope, Some(Deadline::after(timeout)?))
}

/// `futex(word, FUTEX_WAKE [| FUTEX_PRIVATE_FLAG], n)`: wakes up to `n`
/// waiters on `word` (`u32::MAX`: all of them) and returns how many it
/// woke. Store the new value before calling it.
///
/// # Errors
/// `call = "futex(FUTEX_WAKE)"`: `EFAULT`, `EINVAL` (e.g. a word the
/// kernel cannot use in this scope), `ENOSYS`.
pub fn wake(word: &AtomicU32, scope: Scope, n: u32) -> Result<u32> {
    let n = libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
    // SAFETY: `word` is a live, aligned u32 for the whole call (borrowed);
    // FUTEX_WAKE ignores the timeout, uaddr2 and val3 arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            scope.op(libc::FUTEX_WAKE),
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if ret < 0 {
        return Err(SyscallError::last("futex(FUTEX_WAKE)"));
    }
    Ok(u32::try_from(ret).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    /// Wakes one waiter on `word`, retrying until one was asleep (the
    /// waiter thread may not have reached the kernel yet).
    fn wake_one_sleeper(word: &AtomicU32, scope: Scope) -> u32 {
        let t0 = Instant::now();
        loop {
            let n = wake(word, scope, 1).unwrap();
            if n > 0 || t0.elapsed() > Duration::from_secs(20) {
                return n;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_waiting_thread_is_woken() {
        for scope in [Scope::Private, Scope::Shared] {
            let word = Arc::new(AtomicU32::new(0));
            let w = Arc::clone(&word);
            let waiter = std::thread::spawn(move || {
                wait_for(&w, 0, scope, Duration::from_secs(30)).unwrap()
            });
            assert_eq!(wake_one_sleeper(&word, scope), 1, "{scope:?}");
            assert_eq!(waiter.join().unwrap(), WaitOutcome::Woken, "{scope:?}");
            // Nobody waits any more.
            assert_eq!(wake(&word, scope, u32::MAX).unwrap(), 0);
        }
    }

    #[test]
    fn store_then_wake_ends_a_waiting_loop() {
        let word = Arc::new(AtomicU32::new(0));
        let w = Arc::clone(&word);
        let waiter = std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            // No deadline: the store and the wake below always come.
            while w.load(Ordering::Acquire) == 0 {
                outcomes.push(wait(&w, 0, Scope::Private, None).unwrap());
            }
            (w.load(Ordering::Acquire), outcomes)
        });
        std::thread::sleep(Duration::from_millis(20));
        word.store(7, Ordering::Release);
        let woken = wake(&word, Scope::Private, u32::MAX).unwrap();
        let (seen, outcomes) = waiter.join().unwrap();
        assert_eq!(seen, 7);
        assert!(woken <= 1, "{woken}");
        assert!(
            outcomes.iter().all(|o| matches!(
                o,
                WaitOutcome::Woken | WaitOutcome::ValueChanged | WaitOutcome::Interrupted
            )),
            "{outcomes:?}"
        );
    }

    #[test]
    fn a_timeout_returns_timed_out_and_not_early() {
        let word = AtomicU32::new(0);
        for scope in [Scope::Private, Scope::Shared] {
            let timeout = Duration::from_millis(50);
            let t0 = Instant::now();
            let deadline = Deadline::after(timeout).unwrap();
            let outcome = wait(&word, 0, scope, Some(deadline)).unwrap();
            let took = t0.elapsed();
            assert_eq!(outcome, WaitOutcome::TimedOut, "{scope:?}");
            assert!(took >= timeout, "{scope:?}: returned after {took:?}");
            assert!(Deadline::now().unwrap() >= deadline);
        }
        // A deadline already past times out at once.
        let past = Deadline::from_monotonic(Duration::ZERO);
        assert_eq!(
            wait(&word, 0, Scope::Private, Some(past)).unwrap(),
            WaitOutcome::TimedOut
        );
    }

    #[test]
    fn a_mismatched_value_returns_at_once() {
        let word = AtomicU32::new(5);
        for scope in [Scope::Private, Scope::Shared] {
            // A deadline far away: only the comparison can end the wait.
            let outcome = wait_for(&word, 4, scope, Duration::from_secs(3600)).unwrap();
            assert_eq!(outcome, WaitOutcome::ValueChanged, "{scope:?}");
        }
    }

    #[test]
    fn deadlines_read_the_monotonic_clock() {
        let a = Deadline::now().unwrap();
        let b = Deadline::after(Duration::from_secs(10)).unwrap();
        assert!(b.as_monotonic() >= a.as_monotonic() + Duration::from_secs(10));
        let far = Deadline::from_monotonic(Duration::MAX);
        assert_eq!(far.timespec().tv_sec, libc::time_t::MAX);
        assert_eq!(
            Deadline::from_monotonic(Duration::new(3, 5))
                .timespec()
                .tv_nsec,
            5
        );
    }

    /// The shared scope keys the futex by the page, not the address: a
    /// waiter on one mapping of a file is woken through another mapping of
    /// it at a different address — what two processes sharing a ring do.
    #[test]
    fn a_shared_futex_is_woken_through_another_mapping_of_the_same_page() {
        use crate::mmap::Mapping;
        use std::os::fd::AsFd;

        let path = std::env::temp_dir().join(format!("hftnet-sys-{}-futex", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.set_len(4096).unwrap();
        let m1 = Mapping::shared_fd(f.as_fd(), 4096).unwrap();
        let m2 = Mapping::shared_fd(f.as_fd(), 4096).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_ne!(m1.as_ptr(), m2.as_ptr());
        // SAFETY: both mappings are page aligned and 4096 bytes long, so
        // offset 64 holds an aligned u32 in each; they live until the end of
        // the test, and the word is only accessed atomically.
        let (w1, w2) = unsafe {
            (
                AtomicU32::from_ptr(m1.as_ptr().add(64).cast()),
                AtomicU32::from_ptr(m2.as_ptr().add(64).cast()),
            )
        };
        w1.store(3, Ordering::Release);
        assert_eq!(w2.load(Ordering::Acquire), 3, "one page behind both");
        let waiter = std::thread::scope(|s| {
            let h = s.spawn(|| wait_for(w1, 3, Scope::Shared, Duration::from_secs(30)).unwrap());
            assert_eq!(wake_one_sleeper(w2, Scope::Shared), 1);
            h.join().unwrap()
        });
        assert_eq!(waiter, WaitOutcome::Woken);
    }
}
