//! Thread placement and real-time setup: CPU affinity, `SCHED_FIFO`, memory
//! locking, plus the raw time-stamp-counter read the benchmark clock is built on.
//!
//! Layer: `hftnet-sys`, called once at start-up by the CLI, the benchmark
//! harness and the tuned transports — never on the hot path (the one exception
//! is [`rdtsc`], which is a single instruction and meant for it).
//!
//! Invariants: every call here acts on the *calling thread* (Linux treats a
//! `pid` of 0 as the caller's thread id for `sched_setaffinity` and
//! `sched_setscheduler`), so pin and promote the thread that will run the loop,
//! from inside that thread. A refusal is never silent: the error names the call
//! and says which capability or rlimit was missing and how to grant it, because
//! "Operation not permitted" alone sends users to the wrong fix.
//!
//! It must never change anything but the calling thread (or, for `mlockall`,
//! the calling process), never retry with weaker settings behind the caller's
//! back, and never panic on a CPU number, however large.

use std::fmt;
use std::fs;

use crate::error::{SyscallError, cvt};

/// Number of CPUs our affinity masks can describe: the kernel's largest
/// `NR_CPUS` (8192), so the mask is never too small for `sched_getaffinity`.
const MASK_BITS: usize = 8192;
/// `MASK_BITS` as 64-bit words.
const MASK_WORDS: usize = MASK_BITS / 64;

/// Capability bit numbers from `<linux/capability.h>`.
const CAP_IPC_LOCK: u32 = 14;
/// See [`CAP_IPC_LOCK`].
const CAP_SYS_NICE: u32 = 23;

/// Why a placement call (affinity, real-time priority, memory locking) failed,
/// worded so that the user knows what to change.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// `sched_setaffinity` returned `EINVAL`: the CPU does not exist or is
    /// outside the set this thread may run on (cgroup cpuset, `taskset`,
    /// container limits).
    #[error(
        "sched_setaffinity: CPU {cpu} does not exist or is not in this thread's allowed set \
         (allowed CPUs: {}); pick one of those, or widen the set (taskset, cgroup cpuset, \
         container --cpuset-cpus)",
        cpu_list_or_unknown(.allowed)
    )]
    CpuNotAllowed {
        /// The CPU that was asked for.
        cpu: usize,
        /// The CPUs this thread may run on (empty if they could not be read).
        allowed: Vec<usize>,
    },

    /// The requested `SCHED_FIFO` priority is outside the range the kernel
    /// accepts (`sched_get_priority_min/max(SCHED_FIFO)`, 1..=99 on Linux).
    #[error("SCHED_FIFO priority {priority} is out of range: valid priorities are {min}..={max}")]
    PriorityOutOfRange {
        /// The priority that was asked for.
        priority: i32,
        /// `sched_get_priority_min(SCHED_FIFO)`.
        min: i32,
        /// `sched_get_priority_max(SCHED_FIFO)`.
        max: i32,
    },

    /// `sched_setscheduler(SCHED_FIFO)` was refused (`EPERM`).
    #[error("{}", fifo_refused_text(*.priority, .rtprio, *.cap_sys_nice))]
    RealtimeRefused {
        /// The priority that was asked for.
        priority: i32,
        /// `RLIMIT_RTPRIO` of the process, if it could be read.
        rtprio: Option<Rlimit>,
        /// Whether `CAP_SYS_NICE` is in the effective set, if it could be read.
        cap_sys_nice: Option<bool>,
        /// The failed call.
        source: SyscallError,
    },

    /// `mlockall` was refused (`EPERM` or `ENOMEM`).
    #[error("{}", memlock_refused_text(.source, .memlock, *.cap_ipc_lock))]
    MemlockRefused {
        /// `RLIMIT_MEMLOCK` of the process (bytes), if it could be read.
        memlock: Option<Rlimit>,
        /// Whether `CAP_IPC_LOCK` is in the effective set, if it could be read.
        cap_ipc_lock: Option<bool>,
        /// The failed call.
        source: SyscallError,
    },

    /// Any other failure of the underlying call.
    #[error(transparent)]
    Syscall(#[from] SyscallError),
}

/// A resource limit: soft and hard values, `None` meaning unlimited
/// (`RLIM_INFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    /// The soft limit, the one the kernel enforces.
    pub soft: Option<u64>,
    /// The hard limit, the ceiling an unprivileged process may raise the soft
    /// limit to.
    pub hard: Option<u64>,
}

impl fmt::Display for Rlimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn one(v: Option<u64>) -> String {
            v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string())
        }
        write!(f, "{} (hard limit {})", one(self.soft), one(self.hard))
    }
}

/// Pins the calling thread to one CPU.
///
/// Calls `sched_setaffinity(0, mask)` with only `cpu` set.
///
/// # Errors
/// [`PlacementError::CpuNotAllowed`] (with the allowed CPUs listed) when the
/// CPU does not exist or is outside the thread's allowed set;
/// [`PlacementError::Syscall`] for anything else.
///
/// # References
/// `sched_setaffinity(2)`
pub fn pin_thread_to_cpu(cpu: usize) -> Result<(), PlacementError> {
    if cpu >= MASK_BITS {
        return Err(PlacementError::CpuNotAllowed {
            cpu,
            allowed: allowed_cpus().unwrap_or_default(),
        });
    }
    let mut mask = [0u64; MASK_WORDS];
    mask[cpu / 64] |= 1u64 << (cpu % 64);
    match set_affinity(&mask) {
        Ok(_) => Ok(()),
        Err(e) if e.errno() == Some(libc::EINVAL) => Err(PlacementError::CpuNotAllowed {
            cpu,
            allowed: allowed_cpus().unwrap_or_default(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Lets the calling thread run on every CPU its cpuset allows: an
/// all-ones mask to `sched_setaffinity`, which the kernel narrows to the
/// cpuset. For a helper thread (a heartbeat) started by a thread pinned to
/// one CPU, which it would otherwise inherit.
///
/// # Errors
/// The failed `sched_setaffinity` call.
pub fn unpin_thread() -> crate::Result<()> {
    set_affinity(&[u64::MAX; MASK_WORDS])
}

/// Lets the calling thread run on exactly `cpus` (those at or past the
/// mask's 1024 bits are ignored): to put back what [`allowed_cpus`] read
/// before a temporary pin.
///
/// # Errors
/// The failed `sched_setaffinity` call (`EINVAL` when none of `cpus` is
/// allowed by the cpuset).
///
/// # References
/// `sched_setaffinity(2)`
pub fn set_allowed_cpus(cpus: &[usize]) -> crate::Result<()> {
    let mut mask = [0u64; MASK_WORDS];
    for &c in cpus.iter().filter(|&&c| c < MASK_BITS) {
        mask[c / 64] |= 1u64 << (c % 64);
    }
    set_affinity(&mask)
}

/// `sched_setaffinity(0, mask)`: the calling thread's CPUs.
fn set_affinity(mask: &[u64; MASK_WORDS]) -> crate::Result<()> {
    // SAFETY: `mask` is a live, initialised buffer of exactly
    // `size_of_val(mask)` bytes (a whole number of `unsigned long`s, as the
    // kernel requires); the kernel only reads it. pid 0 is the calling thread.
    let ret = unsafe {
        libc::sched_setaffinity(
            0,
            size_of_val(mask),
            mask.as_ptr().cast::<libc::cpu_set_t>(),
        )
    };
    cvt("sched_setaffinity", ret).map(drop)
}

/// The CPUs the calling thread may run on, ascending.
///
/// Calls `sched_getaffinity(0, ...)`. Allocates the returned vector.
///
/// # Errors
/// The failed `sched_getaffinity` call.
///
/// # References
/// `sched_getaffinity(2)`
pub fn allowed_cpus() -> crate::Result<Vec<usize>> {
    let mut mask = [0u64; MASK_WORDS];
    // SAFETY: `mask` is a live, writable buffer of `size_of_val(&mask)` bytes;
    // the kernel writes at most that many bytes into it. pid 0 is the caller.
    let ret = unsafe {
        libc::sched_getaffinity(
            0,
            size_of_val(&mask),
            mask.as_mut_ptr().cast::<libc::cpu_set_t>(),
        )
    };
    cvt("sched_getaffinity", ret)?;
    let mut cpus = Vec::new();
    for (w, word) in mask.iter().enumerate() {
        for bit in 0..64 {
            if word & (1u64 << bit) != 0 {
                cpus.push(w * 64 + bit);
            }
        }
    }
    Ok(cpus)
}

/// The CPU the calling thread is running on right now (it may migrate a moment
/// later unless pinned).
///
/// # Errors
/// The failed `sched_getcpu` call (`ENOSYS` on kernels without `getcpu`).
///
/// # References
/// `sched_getcpu(3)`, `getcpu(2)`
pub fn current_cpu() -> crate::Result<usize> {
    // SAFETY: `sched_getcpu` takes no arguments and touches no memory of ours.
    let ret = unsafe { libc::sched_getcpu() };
    cvt("sched_getcpu", ret).map(|cpu| cpu as usize)
}

/// The valid `SCHED_FIFO` priority range, `(min, max)`.
///
/// # Errors
/// The failed `sched_get_priority_min` / `sched_get_priority_max` call.
pub fn fifo_priority_range() -> crate::Result<(i32, i32)> {
    // SAFETY: both calls take a policy number and touch no memory of ours.
    let min = unsafe { libc::sched_get_priority_min(libc::SCHED_FIFO) };
    let min = cvt("sched_get_priority_min(SCHED_FIFO)", min)?;
    // SAFETY: as above.
    let max = unsafe { libc::sched_get_priority_max(libc::SCHED_FIFO) };
    let max = cvt("sched_get_priority_max(SCHED_FIFO)", max)?;
    Ok((min, max))
}

/// Makes the calling thread real-time: `SCHED_FIFO` at `priority`.
///
/// A spinning `SCHED_FIFO` thread can starve everything else on its CPU
/// (kernel threads included, up to the RT throttling limit in
/// `/proc/sys/kernel/sched_rt_runtime_us`); only use it on a CPU that has
/// nothing else to do. Undo it with [`set_normal`].
///
/// # Errors
/// [`PlacementError::PriorityOutOfRange`] before any change is attempted;
/// [`PlacementError::RealtimeRefused`] when the kernel says `EPERM`, naming
/// whether `CAP_SYS_NICE` or `RLIMIT_RTPRIO` is the missing piece;
/// [`PlacementError::Syscall`] otherwise.
///
/// # References
/// `sched_setscheduler(2)`, `sched(7)`, `getrlimit(2)` (`RLIMIT_RTPRIO`)
pub fn set_fifo(priority: i32) -> Result<(), PlacementError> {
    let (min, max) = fifo_priority_range()?;
    if priority < min || priority > max {
        return Err(PlacementError::PriorityOutOfRange { priority, min, max });
    }
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a live, initialised `sched_param` the kernel only
    // reads; pid 0 is the calling thread.
    let ret = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    match cvt("sched_setscheduler(SCHED_FIFO)", ret) {
        Ok(_) => Ok(()),
        Err(source) if source.is_permission() => Err(PlacementError::RealtimeRefused {
            priority,
            rtprio: rtprio_limit().ok(),
            cap_sys_nice: has_effective_capability(CAP_SYS_NICE),
            source,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Returns the calling thread to the default time-sharing policy
/// (`SCHED_OTHER`, priority 0), undoing [`set_fifo`].
///
/// # Errors
/// The failed `sched_setscheduler(SCHED_OTHER)` call.
pub fn set_normal() -> crate::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a live, initialised `sched_param` the kernel only
    // reads; pid 0 is the calling thread.
    let ret = unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    cvt("sched_setscheduler(SCHED_OTHER)", ret).map(drop)
}

/// Locks every page of the process in RAM, now and for future mappings, so the
/// hot path never takes a major page fault.
///
/// With `MCL_FUTURE` every later `mmap`/`brk` must also fit under
/// `RLIMIT_MEMLOCK` (unless privileged), so large allocations after this call
/// can fail; undo it with [`munlockall`].
///
/// # Errors
/// [`PlacementError::MemlockRefused`] on `EPERM`/`ENOMEM`, naming
/// `CAP_IPC_LOCK` and the current `RLIMIT_MEMLOCK`;
/// [`PlacementError::Syscall`] otherwise.
///
/// # References
/// `mlockall(2)`, `getrlimit(2)` (`RLIMIT_MEMLOCK`)
pub fn mlockall_current_and_future() -> Result<(), PlacementError> {
    // SAFETY: `mlockall` takes flags only and touches no memory of ours.
    let ret = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
    match cvt("mlockall(MCL_CURRENT|MCL_FUTURE)", ret) {
        Ok(_) => Ok(()),
        Err(source) if matches!(source.errno(), Some(libc::EPERM | libc::ENOMEM)) => {
            Err(PlacementError::MemlockRefused {
                memlock: memlock_limit().ok(),
                cap_ipc_lock: has_effective_capability(CAP_IPC_LOCK),
                source,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Unlocks every page of the process, undoing [`mlockall_current_and_future`].
///
/// # Errors
/// The failed `munlockall` call.
///
/// # References
/// `munlockall(2)`
pub fn munlockall() -> crate::Result<()> {
    // SAFETY: `munlockall` takes no arguments and touches no memory of ours.
    let ret = unsafe { libc::munlockall() };
    cvt("munlockall", ret).map(drop)
}

/// `RLIMIT_RTPRIO` of the process: the highest real-time priority it may set
/// without `CAP_SYS_NICE`.
///
/// # Errors
/// The failed `getrlimit` call.
pub fn rtprio_limit() -> crate::Result<Rlimit> {
    getrlimit("getrlimit(RLIMIT_RTPRIO)", libc::RLIMIT_RTPRIO)
}

/// `RLIMIT_MEMLOCK` of the process, in bytes: how much it may lock without
/// `CAP_IPC_LOCK`.
///
/// # Errors
/// The failed `getrlimit` call.
pub fn memlock_limit() -> crate::Result<Rlimit> {
    getrlimit("getrlimit(RLIMIT_MEMLOCK)", libc::RLIMIT_MEMLOCK)
}

/// `RLIMIT_NOFILE` of the process: how many file descriptors it may hold
/// open (every socket is one).
///
/// # Errors
/// The failed `getrlimit` call.
pub fn nofile_limit() -> crate::Result<Rlimit> {
    getrlimit("getrlimit(RLIMIT_NOFILE)", libc::RLIMIT_NOFILE)
}

/// Sets the soft `RLIMIT_NOFILE` to `soft`, keeping the hard limit (an
/// unprivileged process may raise its soft limit up to the hard one).
///
/// # Errors
/// The failed `getrlimit` or `setrlimit` call (`EINVAL` above the hard
/// limit, `EPERM` above `fs.nr_open`).
///
/// # References
/// `setrlimit(2)`
pub fn set_nofile_soft(soft: u64) -> crate::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable `rlimit` the kernel fills in.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    cvt("getrlimit(RLIMIT_NOFILE)", ret)?;
    lim.rlim_cur = soft as libc::rlim_t;
    // SAFETY: `lim` is a live, initialised `rlimit` the kernel only reads.
    let ret = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    cvt("setrlimit(RLIMIT_NOFILE)", ret).map(drop)
}

/// Formats CPU numbers the way the kernel and `taskset -c` do: `0-3,6,8-9`
/// (in any order, repeats allowed). The same formatter as
/// [`crate::cpus::format_cpu_list`], under the name earlier callers use.
#[must_use]
pub fn cpu_list_string(cpus: &[usize]) -> String {
    crate::cpus::format_cpu_list(cpus)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type RlimitResource = libc::c_int;

fn getrlimit(call: &'static str, resource: RlimitResource) -> crate::Result<Rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live, writable `rlimit` the kernel fills in.
    let ret = unsafe { libc::getrlimit(resource, &mut lim) };
    cvt(call, ret)?;
    // `rlim_t` is 32 bits on some 32-bit targets, hence the cast.
    #[allow(clippy::unnecessary_cast)]
    let conv = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v as u64);
    Ok(Rlimit {
        soft: conv(lim.rlim_cur),
        hard: conv(lim.rlim_max),
    })
}

/// Whether capability `bit` is in the effective set, read from
/// `/proc/self/status` (`CapEff`). `None` if that cannot be read.
fn has_effective_capability(bit: u32) -> Option<bool> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps & (1u64 << bit) != 0)
}

fn cpu_list_or_unknown(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        "unknown".to_owned()
    } else {
        cpu_list_string(cpus)
    }
}

fn fifo_refused_text(priority: i32, rtprio: &Option<Rlimit>, cap_sys_nice: Option<bool>) -> String {
    let rt_allows = rtprio.map(|r| r.soft.is_none_or(|s| s >= priority as u64));
    let why = match (cap_sys_nice, rt_allows, rtprio) {
        (Some(true), _, _) => "the process has CAP_SYS_NICE, so the refusal comes from elsewhere: \
             most likely a cgroup with no real-time runtime (cpu.rt_runtime_us = 0) or a \
             container/LSM policy"
            .to_owned(),
        (_, Some(true), Some(r)) => format!(
            "RLIMIT_RTPRIO is {r}, which allows priority {priority}, so the refusal comes from \
             elsewhere: most likely a cgroup with no real-time runtime (cpu.rt_runtime_us = 0) \
             or a container/LSM policy"
        ),
        (cap, _, Some(r)) => format!(
            "the process {} CAP_SYS_NICE and RLIMIT_RTPRIO is {r}, below {priority}",
            if cap == Some(false) {
                "lacks"
            } else {
                "probably lacks"
            }
        ),
        (_, _, None) => "the process lacks CAP_SYS_NICE or a high enough RLIMIT_RTPRIO \
             (neither could be read)"
            .to_owned(),
    };
    format!(
        "sched_setscheduler(SCHED_FIFO, priority {priority}) was refused: {why}. To fix: run as \
         root, or grant CAP_SYS_NICE (setcap cap_sys_nice+ep BINARY, or AmbientCapabilities= in \
         a systemd unit), or raise RLIMIT_RTPRIO to at least {priority} (ulimit -r {priority}, \
         `rtprio` in /etc/security/limits.conf, LimitRTPRIO= in a systemd unit)"
    )
}

fn memlock_refused_text(
    source: &SyscallError,
    memlock: &Option<Rlimit>,
    cap: Option<bool>,
) -> String {
    let bytes = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |v| format!("{v} bytes"));
    let limit = memlock.map_or_else(
        || "unreadable".to_owned(),
        |r| format!("{} (hard limit {})", bytes(r.soft), bytes(r.hard)),
    );
    let cap = match cap {
        Some(true) => {
            "has CAP_IPC_LOCK (so the limit should not apply; the machine may be out of \
             memory)"
        }
        Some(false) => "lacks CAP_IPC_LOCK",
        None => "may lack CAP_IPC_LOCK",
    };
    format!(
        "{source}: the process {cap} and RLIMIT_MEMLOCK is {limit}, less than the memory \
         it maps. To fix: run as root, or grant CAP_IPC_LOCK, or raise RLIMIT_MEMLOCK (ulimit -l \
         unlimited, `memlock` in /etc/security/limits.conf, LimitMEMLOCK=infinity in a systemd \
         unit)"
    )
}

// ---------------------------------------------------------------------------
// Time-stamp counter (used by hftnet-bench's clock, which may not use unsafe)
// ---------------------------------------------------------------------------

/// Reads the CPU's time-stamp counter (`RDTSC`): a free-running tick count,
/// about 20 cycles to read and never a syscall.
///
/// Plain `RDTSC` is not ordered: the CPU may execute it before earlier
/// instructions finish. Use [`rdtsc_ordered`] to time short code.
///
/// On architectures without a TSC this returns `CLOCK_MONOTONIC` in
/// nanoseconds instead, and [`tsc_invariant`] returns `false`, so callers
/// that check it never treat these as TSC ticks.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[must_use]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU, reads no memory and has no
    // side effects; Linux does not set CR4.TSD, so it does not fault in user
    // mode.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Like [`rdtsc`], but waits for all earlier instructions to complete first
/// (`LFENCE; RDTSC`, as the kernel's `rdtsc_ordered`), so it cannot be hoisted
/// above the code being timed. A few cycles dearer than [`rdtsc`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[must_use]
pub fn rdtsc_ordered() -> u64 {
    // SAFETY: LFENCE needs SSE2, which every x86_64 CPU has (it is part of the
    // x86_64 baseline); it reads and writes no memory.
    unsafe { core::arch::x86_64::_mm_lfence() };
    rdtsc()
}

/// Fallback for architectures without a TSC: `CLOCK_MONOTONIC` in ns.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
#[must_use]
pub fn rdtsc() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable `timespec`; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Fallback for architectures without a TSC: same as [`rdtsc`].
#[cfg(not(target_arch = "x86_64"))]
#[inline]
#[must_use]
pub fn rdtsc_ordered() -> u64 {
    rdtsc()
}

/// True when the TSC ticks at a constant rate regardless of frequency scaling
/// (`constant_tsc`) and keeps ticking in deep idle states (`nonstop_tsc`),
/// according to the `flags` line of `/proc/cpuinfo`; only then is it a clock.
///
/// Always `false` off x86_64, and `false` if `/proc/cpuinfo` cannot be read.
#[must_use]
pub fn tsc_invariant() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| cpuinfo_has_invariant_tsc(&info))
}

/// The parsing half of [`tsc_invariant`]: the first `flags` line must list
/// both `constant_tsc` and `nonstop_tsc`.
fn cpuinfo_has_invariant_tsc(cpuinfo: &str) -> bool {
    let Some(flags) = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .and_then(|l| l.split_once(':').map(|(_, v)| v))
    else {
        return false;
    };
    let mut constant = false;
    let mut nonstop = false;
    for flag in flags.split_whitespace() {
        constant |= flag == "constant_tsc";
        nonstop |= flag == "nonstop_tsc";
    }
    constant && nonstop
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_to_allowed_cpu_and_read_back() {
        let allowed = allowed_cpus().unwrap();
        assert!(!allowed.is_empty());
        // Run in a scratch thread so the test runner's thread keeps its mask.
        std::thread::spawn(move || {
            for &cpu in &allowed {
                pin_thread_to_cpu(cpu).unwrap();
                assert_eq!(current_cpu().unwrap(), cpu);
                assert_eq!(allowed_cpus().unwrap(), vec![cpu]);
            }
            // And back to the set read before.
            set_allowed_cpus(&allowed).unwrap();
            assert_eq!(allowed_cpus().unwrap(), allowed);
            assert!(set_allowed_cpus(&[]).is_err(), "an empty set is refused");
            assert_eq!(allowed_cpus().unwrap(), allowed);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn pin_to_missing_cpu_is_a_clear_error() {
        let allowed = allowed_cpus().unwrap();
        for cpu in [4096, 1_000_000] {
            let err = pin_thread_to_cpu(cpu).unwrap_err();
            match &err {
                PlacementError::CpuNotAllowed { cpu: c, allowed: a } => {
                    assert_eq!(*c, cpu);
                    assert_eq!(*a, allowed);
                }
                other => panic!("unexpected error {other:?}"),
            }
            let text = err.to_string();
            assert!(text.contains(&format!("CPU {cpu}")), "{text}");
            assert!(text.contains(&cpu_list_string(&allowed)), "{text}");
        }
    }

    #[test]
    fn fifo_priority_out_of_range() {
        assert_eq!(fifo_priority_range().unwrap(), (1, 99));
        for p in [0, 100, -5] {
            let err = set_fifo(p).unwrap_err();
            assert!(
                matches!(err, PlacementError::PriorityOutOfRange { priority, min: 1, max: 99 } if priority == p),
                "{err:?}"
            );
            assert!(err.to_string().contains("1..=99"), "{err}");
        }
    }

    #[test]
    fn fifo_then_normal_in_scratch_thread() {
        std::thread::spawn(|| match set_fifo(1) {
            Ok(()) => {
                // SAFETY: reading our own policy; no memory is passed.
                let policy = unsafe { libc::sched_getscheduler(0) };
                assert_eq!(policy, libc::SCHED_FIFO);
                set_normal().unwrap();
                // SAFETY: as above.
                let policy = unsafe { libc::sched_getscheduler(0) };
                assert_eq!(policy, libc::SCHED_OTHER);
            }
            Err(e @ PlacementError::RealtimeRefused { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("CAP_SYS_NICE") && text.contains("RLIMIT_RTPRIO"),
                    "{text}"
                );
            }
            Err(e) => panic!("unexpected error {e:?}"),
        })
        .join()
        .unwrap();
    }

    #[test]
    fn fifo_refusal_text_names_the_missing_piece() {
        let lacking = fifo_refused_text(
            10,
            &Some(Rlimit {
                soft: Some(0),
                hard: Some(0),
            }),
            Some(false),
        );
        assert!(
            lacking.contains("lacks CAP_SYS_NICE and RLIMIT_RTPRIO is 0 (hard limit 0), below 10"),
            "{lacking}"
        );
        let rlimit_ok = fifo_refused_text(
            10,
            &Some(Rlimit {
                soft: None,
                hard: None,
            }),
            Some(false),
        );
        assert!(rlimit_ok.contains("allows priority 10"), "{rlimit_ok}");
    }

    #[test]
    fn mlockall_as_root_then_unlock() {
        match mlockall_current_and_future() {
            Ok(()) => munlockall().unwrap(),
            Err(e @ PlacementError::MemlockRefused { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("CAP_IPC_LOCK") && text.contains("RLIMIT_MEMLOCK"),
                    "{text}"
                );
                // As root (CAP_IPC_LOCK) the call must succeed.
                assert_ne!(has_effective_capability(CAP_IPC_LOCK), Some(true), "{text}");
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }

    #[test]
    fn cpu_lists_format_like_the_kernel() {
        assert_eq!(cpu_list_string(&[]), "");
        assert_eq!(cpu_list_string(&[0]), "0");
        assert_eq!(cpu_list_string(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
    }

    #[test]
    fn invariant_tsc_flags() {
        assert!(cpuinfo_has_invariant_tsc(
            "processor : 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n"
        ));
        assert!(!cpuinfo_has_invariant_tsc(
            "flags\t\t: fpu tsc constant_tsc\n"
        ));
        assert!(!cpuinfo_has_invariant_tsc("processor : 0\n"));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn tsc_moves_forward() {
        let a = rdtsc_ordered();
        let b = rdtsc_ordered();
        assert!(b > a);
    }
}

/// `prctl(PR_SET_TIMERSLACK, ns)`: how late the kernel may fire the calling
/// thread's timers (`poll`, `nanosleep` timeouts) to batch wake-ups. The
/// default is 50 µs; timetabled loops want 1 ns.
///
/// # Errors
/// `EINVAL` for a value the kernel rejects.
pub fn set_timer_slack_ns(ns: u64) -> crate::Result<()> {
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long by value; no pointers.
    let ret = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
    crate::error::cvt("prctl(PR_SET_TIMERSLACK)", ret).map(drop)
}

/// `prctl(PR_GET_TIMERSLACK)`: the calling thread's timer slack in ns.
///
/// # Errors
/// Only unexpected kernel failures.
pub fn timer_slack_ns() -> crate::Result<u64> {
    // SAFETY: PR_GET_TIMERSLACK takes no arguments and returns the value.
    let ret = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    crate::error::cvt("prctl(PR_GET_TIMERSLACK)", ret).map(|v| v as u64)
}

#[cfg(test)]
mod timer_slack_tests {
    #[test]
    fn timer_slack_round_trip() {
        // On a scratch thread: the setting is per thread.
        std::thread::spawn(|| {
            super::set_timer_slack_ns(1).unwrap();
            assert_eq!(super::timer_slack_ns().unwrap(), 1);
        })
        .join()
        .unwrap();
    }
}
