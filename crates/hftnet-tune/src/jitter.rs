//! The OS jitter probe: how often, and for how long, the operating system (and
//! the hypervisor under it) takes each CPU away from a thread that wants it all
//! the time, in the manner of `sysjitter` and `hiccups`.
//!
//! # Method
//!
//! One thread per measured CPU is pinned to it and spins reading the
//! benchmark clock ([`hftnet_bench::clock::Clock`], the calibrated TSC or
//! `CLOCK_MONOTONIC`, and it says which). The loop does nothing else: no
//! syscall, no allocation, no lock — one clock read, one subtraction, one
//! compare and two relaxed loads of the stop flags per iteration. When two
//! consecutive reads are further apart than the threshold, something ran
//! instead of the loop (an interrupt, a softirq, the scheduler tick, another
//! task, a page fault, the hypervisor): that *gap* is recorded. The
//! interruption's length is the gap minus the loop's own iteration time, taken
//! as the fastest iteration seen on that CPU in the run ([`GapAccount`] does
//! this accounting and is tested on synthetic clock readings).
//!
//! The threads start together (after all are pinned) and stop at the end of
//! the duration or as soon as the caller's stop flag is set. Per CPU the
//! report gives the number of interruptions, their rate, p50 / p99 / p99.9 /
//! max length from an HDR histogram, the time lost in total and as a share of
//! the time measured, and the loop's fastest iteration.
//!
//! # Limits
//!
//! - Only interruptions longer than the threshold are seen; shorter ones are
//!   part of the loop's noise. A threshold near the loop's iteration time
//!   counts ordinary iterations (the report warns when it is under twice the
//!   fastest iteration).
//! - On a virtual machine, time the hypervisor gives another guest (steal
//!   time) and VM exits show up as interruptions: the probe measures what a
//!   spinning thread experiences, whatever its cause, not the guest kernel
//!   alone.
//! - The measuring threads compete with the rest of the system. When every
//!   CPU the process may use is measured (as on a 2-vCPU VM measured whole),
//!   every other task — the kernel's threads, daemons, this process's main
//!   thread — must preempt a spinning thread to run, and is counted as
//!   jitter. That is what a busy-polling application on those CPUs would see,
//!   but it is not the jitter of an idle machine; the report says so.
//! - The threads run under the normal scheduling policy (no `SCHED_FIFO`).
//! - On the `CLOCK_MONOTONIC` fallback each read goes through the vDSO; with a
//!   clocksource the vDSO cannot read (`hpet`, `acpi_pm`) it becomes a syscall
//!   and the loop is far slower and noisier.
//! - A gap that ends the run (the stop flag seen late) is counted like any
//!   other; the duration is honoured to within one interruption.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use hftnet_bench::clock::{Clock, ClockKind};
use hftnet_bench::stats::LatencyStats;
use hftnet_sys::SyscallError;
use hftnet_sys::sched::{PlacementError, cpu_list_string};
use serde::Serialize;

/// Shortest run accepted.
pub const MIN_DURATION: Duration = Duration::from_millis(10);
/// Longest run accepted (one hour).
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Lowest threshold accepted, ns: a few iterations of the spinning loop on
/// the slowest supported clock read (and hundreds of TSC ticks); below this
/// every iteration would count as an interruption.
pub const MIN_THRESHOLD_NS: u64 = 50;
/// Highest threshold accepted, ns (one second).
pub const MAX_THRESHOLD_NS: u64 = 1_000_000_000;
/// Highest CPU number [`parse_cpu_list`] accepts (the kernel's `NR_CPUS`
/// limit is 8192); the one of [`hftnet_sys::cpus`].
pub use hftnet_sys::cpus::MAX_CPU;

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitterConfig {
    /// CPUs to measure, one spinning thread each; distinct, and within the
    /// process's allowed set.
    pub cpus: Vec<usize>,
    /// How long to measure ([`MIN_DURATION`]..=[`MAX_DURATION`]).
    pub duration: Duration,
    /// A gap between two clock reads longer than this is an interruption, ns
    /// ([`MIN_THRESHOLD_NS`]..=[`MAX_THRESHOLD_NS`], and below the duration).
    pub threshold_ns: u64,
}

/// Why the probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum JitterError {
    /// No CPU was given.
    #[error("no CPU to measure: give at least one (allowed CPUs: {})", list_or_unknown(.allowed))]
    NoCpus {
        /// The CPUs this process may run on.
        allowed: Vec<usize>,
    },
    /// A CPU was given twice (two spinning threads would measure each other).
    #[error("CPU {cpu} is given more than once: each CPU is measured by one thread")]
    DuplicateCpu {
        /// The repeated CPU.
        cpu: usize,
    },
    /// Some CPUs are outside the process's allowed set.
    #[error(
        "CPU{} {} not in this process's allowed set (allowed CPUs: {}); pick from those, or \
         widen the set (taskset, cgroup cpuset, container --cpuset-cpus)",
        if .cpus.len() == 1 { "" } else { "s" },
        cpu_list_string(.cpus),
        list_or_unknown(.allowed)
    )]
    CpuNotAllowed {
        /// The CPUs asked for that may not be used.
        cpus: Vec<usize>,
        /// The CPUs this process may run on.
        allowed: Vec<usize>,
    },
    /// The duration is out of range.
    #[error(
        "duration {duration:?} is out of range: measure for {MIN_DURATION:?} to {MAX_DURATION:?}"
    )]
    Duration {
        /// The duration asked for.
        duration: Duration,
    },
    /// The threshold is out of range.
    #[error(
        "threshold {threshold_ns} ns is out of range: use {MIN_THRESHOLD_NS} ns to \
         {MAX_THRESHOLD_NS} ns, and less than the duration"
    )]
    Threshold {
        /// The threshold asked for, ns.
        threshold_ns: u64,
    },
    /// The process's allowed CPUs could not be read.
    #[error("reading the allowed CPUs: {0}")]
    AllowedCpus(#[source] SyscallError),
    /// A measuring thread could not be pinned to its CPU.
    #[error("pinning the measuring thread to CPU {cpu}: {source}")]
    Pin {
        /// The CPU.
        cpu: usize,
        /// The failure.
        #[source]
        source: PlacementError,
    },
    /// A measuring thread could not be started.
    #[error("starting the measuring thread for CPU {cpu}: {source}")]
    Spawn {
        /// The CPU.
        cpu: usize,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A measuring thread panicked.
    #[error("the measuring thread for CPU {cpu} panicked: {message}")]
    Panicked {
        /// The CPU.
        cpu: usize,
        /// The panic message, if it was text.
        message: String,
    },
}

fn list_or_unknown(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        "unknown".to_owned()
    } else {
        cpu_list_string(cpus)
    }
}

impl JitterConfig {
    /// Checks the configuration against the CPUs this thread may run on
    /// (`sched_getaffinity`).
    ///
    /// # Errors
    /// As [`validate_with`](Self::validate_with), or
    /// [`JitterError::AllowedCpus`] when the allowed set cannot be read.
    pub fn validate(&self) -> Result<(), JitterError> {
        let allowed = hftnet_sys::sched::allowed_cpus().map_err(JitterError::AllowedCpus)?;
        self.validate_with(&allowed)
    }

    /// Checks the configuration against an explicit allowed set.
    ///
    /// # Errors
    /// [`JitterError::NoCpus`], [`JitterError::DuplicateCpu`],
    /// [`JitterError::CpuNotAllowed`] (naming every offending CPU and the
    /// allowed ones), [`JitterError::Duration`] or [`JitterError::Threshold`].
    pub fn validate_with(&self, allowed: &[usize]) -> Result<(), JitterError> {
        if self.cpus.is_empty() {
            return Err(JitterError::NoCpus {
                allowed: allowed.to_vec(),
            });
        }
        let mut sorted = self.cpus.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(JitterError::DuplicateCpu { cpu: w[0] });
        }
        let missing: Vec<usize> = sorted
            .iter()
            .copied()
            .filter(|c| !allowed.contains(c))
            .collect();
        if !missing.is_empty() {
            return Err(JitterError::CpuNotAllowed {
                cpus: missing,
                allowed: allowed.to_vec(),
            });
        }
        if !(MIN_DURATION..=MAX_DURATION).contains(&self.duration) {
            return Err(JitterError::Duration {
                duration: self.duration,
            });
        }
        if !(MIN_THRESHOLD_NS..=MAX_THRESHOLD_NS).contains(&self.threshold_ns)
            || u128::from(self.threshold_ns) >= self.duration.as_nanos()
        {
            return Err(JitterError::Threshold {
                threshold_ns: self.threshold_ns,
            });
        }
        Ok(())
    }
}

/// Jitter measured on one CPU. Lengths are interruption lengths (gap minus
/// the loop's fastest iteration), in ns; `None` when there was no
/// interruption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuJitter {
    /// The CPU.
    pub cpu: usize,
    /// Time from the first to the last clock read, ns.
    pub measured_ns: u64,
    /// Loop iterations (clock reads after the first).
    pub iterations: u64,
    /// The loop's fastest iteration, ns: what each gap is reduced by.
    pub loop_min_ns: u64,
    /// Interruptions (gaps above the threshold).
    pub interruptions: u64,
    /// Interruptions per second of measured time.
    pub rate_per_s: f64,
    /// Median interruption, ns.
    pub p50_ns: Option<u64>,
    /// 99th percentile, ns.
    pub p99_ns: Option<u64>,
    /// 99.9th percentile, ns.
    pub p99_9_ns: Option<u64>,
    /// Longest interruption, ns (exact).
    pub max_ns: Option<u64>,
    /// Sum of all interruptions, ns (exact up to the tick → ns conversion).
    pub lost_ns: u64,
    /// `lost_ns` as a percentage of `measured_ns`.
    pub lost_pct: f64,
}

/// The result of [`run_jitter`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JitterReport {
    /// The clock the loops read.
    pub clock: ClockKind,
    /// Why the clock is not the TSC, when it is not.
    pub clock_note: Option<&'static str>,
    /// The calibrated TSC rate, on the TSC.
    pub tsc_hz: Option<u64>,
    /// The threshold, ns.
    pub threshold_ns: u64,
    /// The duration asked for, ns.
    pub duration_ns: u64,
    /// True when the stop flag ended the run before the duration.
    pub stopped_early: bool,
    /// One entry per measured CPU, in the order given.
    pub cpus: Vec<CpuJitter>,
    /// What makes these numbers less than clean (empty when nothing does).
    pub warnings: Vec<String>,
}

/// The gap accounting of one spinning loop, separate from the loop so it can
/// be fed synthetic readings.
///
/// Feed it every clock reading with [`observe`](Self::observe); it never
/// allocates after [`new`](Self::new) (the histogram's pages are touched
/// there, so the first record cannot page-fault inside the loop).
#[derive(Debug, Clone)]
pub struct GapAccount {
    clock: Clock,
    threshold_ticks: u64,
    first: u64,
    prev: u64,
    iterations: u64,
    min_iter_ticks: u64,
    interruptions: u64,
    gap_ticks_sum: u128,
    max_gap_ticks: u64,
    /// Raw gaps (not yet reduced by the loop's minimum), ns.
    gaps_ns: LatencyStats,
}

impl GapAccount {
    /// An account for readings of `clock`, starting at `first_reading`; gaps
    /// longer than `threshold_ns` are interruptions.
    #[must_use]
    pub fn new(clock: Clock, threshold_ns: u64, first_reading: u64) -> Self {
        let mut gaps_ns = LatencyStats::new();
        // Writes every count: faults the histogram's pages in now.
        gaps_ns.reset();
        Self {
            clock,
            threshold_ticks: ns_to_ticks(&clock, threshold_ns),
            first: first_reading,
            prev: first_reading,
            iterations: 0,
            min_iter_ticks: u64::MAX,
            interruptions: 0,
            gap_ticks_sum: 0,
            max_gap_ticks: 0,
            gaps_ns,
        }
    }

    /// Takes the next reading; true when the gap since the previous one is an
    /// interruption. A reading earlier than the previous one counts as a
    /// zero-length iteration.
    #[inline]
    pub fn observe(&mut self, now: u64) -> bool {
        let delta = now.saturating_sub(self.prev);
        self.prev = self.prev.max(now);
        self.iterations += 1;
        self.min_iter_ticks = self.min_iter_ticks.min(delta);
        if delta > self.threshold_ticks {
            self.interruptions += 1;
            self.gap_ticks_sum += u128::from(delta);
            self.max_gap_ticks = self.max_gap_ticks.max(delta);
            self.gaps_ns.record(self.clock.to_ns(delta));
            true
        } else {
            false
        }
    }

    /// Interruptions so far.
    #[must_use]
    pub fn interruptions(&self) -> u64 {
        self.interruptions
    }

    /// The summary for `cpu`: every length reduced by the loop's fastest
    /// iteration.
    #[must_use]
    pub fn summary(&self, cpu: usize) -> CpuJitter {
        let c = &self.clock;
        let min_ticks = if self.iterations == 0 {
            0
        } else {
            self.min_iter_ticks
        };
        let loop_min_ns = c.to_ns(min_ticks);
        let measured_ns = c.ns_between(self.first, self.prev);
        let lost_ticks =
            self.gap_ticks_sum - u128::from(self.interruptions) * u128::from(min_ticks);
        let lost_ns = c.to_ns(u64::try_from(lost_ticks).unwrap_or(u64::MAX));
        let max_ns = (self.interruptions > 0).then(|| c.to_ns(self.max_gap_ticks - min_ticks));
        let pct = |q: f64| {
            max_ns.map(|max| {
                self.gaps_ns
                    .value_at_quantile(q)
                    .saturating_sub(loop_min_ns)
                    .min(max)
            })
        };
        let (rate_per_s, lost_pct) = if measured_ns == 0 {
            (0.0, 0.0)
        } else {
            (
                self.interruptions as f64 * 1e9 / measured_ns as f64,
                lost_ns as f64 * 100.0 / measured_ns as f64,
            )
        };
        CpuJitter {
            cpu,
            measured_ns,
            iterations: self.iterations,
            loop_min_ns,
            interruptions: self.interruptions,
            rate_per_s,
            p50_ns: pct(0.5),
            p99_ns: pct(0.99),
            p99_9_ns: pct(0.999),
            max_ns,
            lost_ns,
            lost_pct,
        }
    }
}

/// Converts ns to ticks of `clock` (rounded down).
fn ns_to_ticks(clock: &Clock, ns: u64) -> u64 {
    match clock.tsc_hz() {
        Some(hz) => {
            u64::try_from(u128::from(ns) * u128::from(hz) / 1_000_000_000).unwrap_or(u64::MAX)
        }
        None => ns,
    }
}

/// Measures OS jitter on every CPU of `cfg`, one pinned spinning thread each,
/// for `cfg.duration` or until `stop` is set. Blocks for the duration; the
/// calling thread sleeps meanwhile (it is not pinned).
///
/// Every thread started is joined before this returns, on every path.
///
/// # Errors
/// A configuration error ([`JitterConfig::validate`]); a thread that could
/// not be started, pinned, or that panicked (the others are stopped and
/// joined first).
pub fn run_jitter(
    cfg: &JitterConfig,
    clock: Clock,
    stop: &AtomicBool,
) -> Result<JitterReport, JitterError> {
    let allowed = hftnet_sys::sched::allowed_cpus().map_err(JitterError::AllowedCpus)?;
    cfg.validate_with(&allowed)?;
    let (cpus, stopped_early) = spin_all(cfg, clock, stop)?;
    let mut warnings = Vec::new();
    if allowed.iter().all(|c| cfg.cpus.contains(c)) {
        warnings.push(format!(
            "every CPU this process may use ({}) ran a spinning thread: every other task had \
             to preempt one to run, and counts as jitter here",
            cpu_list_string(&allowed)
        ));
    }
    for c in &cpus {
        if c.loop_min_ns.saturating_mul(2) > cfg.threshold_ns {
            warnings.push(format!(
                "CPU {}: the loop's fastest iteration ({} ns) is over half the threshold \
                 ({} ns): ordinary iterations may count as interruptions; raise the threshold",
                c.cpu, c.loop_min_ns, cfg.threshold_ns
            ));
        }
    }
    Ok(JitterReport {
        clock: clock.kind(),
        clock_note: clock.fallback_reason(),
        tsc_hz: clock.tsc_hz(),
        threshold_ns: cfg.threshold_ns,
        duration_ns: u64::try_from(cfg.duration.as_nanos()).unwrap_or(u64::MAX),
        stopped_early,
        cpus,
        warnings,
    })
}

/// The threads, without validation (so tests can reach the failure paths).
/// Returns the per-CPU results in `cfg.cpus` order and whether `stop` ended
/// the run early.
fn spin_all(
    cfg: &JitterConfig,
    clock: Clock,
    stop: &AtomicBool,
) -> Result<(Vec<CpuJitter>, bool), JitterError> {
    // Set when any thread fails, to release the others.
    let abort = AtomicBool::new(false);
    // Threads pinned and ready; `go` starts them together.
    let ready = AtomicUsize::new(0);
    let go = AtomicBool::new(false);
    let duration_ticks = ns_to_ticks(
        &clock,
        u64::try_from(cfg.duration.as_nanos()).unwrap_or(u64::MAX),
    );
    let threshold_ns = cfg.threshold_ns;
    thread::scope(|s| {
        let mut handles = Vec::with_capacity(cfg.cpus.len());
        let mut first_err = None;
        for &cpu in &cfg.cpus {
            let (abort, ready, go) = (&abort, &ready, &go);
            let spawned = thread::Builder::new()
                .name(format!("jitter-cpu{cpu}"))
                .spawn_scoped(s, move || {
                    if let Err(source) = hftnet_sys::sched::pin_thread_to_cpu(cpu) {
                        abort.store(true, Ordering::Relaxed);
                        return Err(JitterError::Pin { cpu, source });
                    }
                    ready.fetch_add(1, Ordering::Release);
                    while !go.load(Ordering::Acquire) {
                        if abort.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                            return Ok(None);
                        }
                        std::hint::spin_loop();
                    }
                    Ok(Some(
                        spin(clock, threshold_ns, duration_ticks, stop, abort).summary(cpu),
                    ))
                });
            match spawned {
                Ok(h) => handles.push((cpu, h)),
                Err(source) => {
                    abort.store(true, Ordering::Relaxed);
                    first_err = Some(JitterError::Spawn { cpu, source });
                    break;
                }
            }
        }
        if first_err.is_none() {
            while ready.load(Ordering::Acquire) < handles.len()
                && !abort.load(Ordering::Relaxed)
                && !stop.load(Ordering::Relaxed)
            {
                thread::sleep(Duration::from_micros(200));
            }
            go.store(true, Ordering::Release);
        }
        let mut results = Vec::with_capacity(handles.len());
        for (cpu, h) in handles {
            match h.join() {
                Ok(Ok(Some(r))) => results.push(r),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(panic) => {
                    abort.store(true, Ordering::Relaxed);
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    first_err.get_or_insert(JitterError::Panicked { cpu, message });
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let stopped_early = results.len() < cfg.cpus.len()
            || (stop.load(Ordering::Relaxed)
                && results
                    .iter()
                    .any(|r| r.measured_ns < clock.to_ns(duration_ticks)));
        Ok((results, stopped_early))
    })
}

/// The spinning loop of one thread: reads the clock until the duration has
/// passed or a flag is set. No syscall, no allocation, no lock inside.
fn spin(
    clock: Clock,
    threshold_ns: u64,
    duration_ticks: u64,
    stop: &AtomicBool,
    abort: &AtomicBool,
) -> GapAccount {
    let start = clock.now();
    let mut acct = GapAccount::new(clock, threshold_ns, start);
    // The histogram set-up above took time: restart from a fresh reading.
    let start = clock.now();
    acct.first = start;
    acct.prev = start;
    let deadline = start.saturating_add(duration_ticks);
    loop {
        let now = clock.now();
        acct.observe(now);
        if now >= deadline || stop.load(Ordering::Relaxed) || abort.load(Ordering::Relaxed) {
            break;
        }
    }
    acct
}

/// Parses a CPU list as the kernel and `taskset -c` write it: `0-3,5,8-9`
/// (whitespace around items allowed). Returns the CPUs ascending, without
/// repeats. Format one with [`hftnet_sys::cpus::format_cpu_list`].
///
/// # Errors
/// A text naming the offending item: empty list or item, not a number, a
/// range whose end is below its start, a CPU above [`MAX_CPU`].
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    if s.trim().is_empty() {
        return Err("empty CPU list: give CPUs such as 0-3,5".to_owned());
    }
    hftnet_sys::cpus::parse_cpu_list(s).map_err(|e| e.to_string())
}

impl fmt::Display for CpuJitter {
    /// One line: `cpu 0: 12 interruptions (6.0/s), p50 … max, lost …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        write!(
            f,
            "cpu {}: {} interruptions ({:.1}/s), ns p50 {} p99 {} p99.9 {} max {}, lost {} ns \
             ({:.4} %), loop min {} ns",
            self.cpu,
            self.interruptions,
            self.rate_per_s,
            o(self.p50_ns),
            o(self.p99_ns),
            o(self.p99_9_ns),
            o(self.max_ns),
            self.lost_ns,
            self.lost_pct,
            self.loop_min_ns
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(cpus: &[usize], ms: u64, threshold_ns: u64) -> JitterConfig {
        JitterConfig {
            cpus: cpus.to_vec(),
            duration: Duration::from_millis(ms),
            threshold_ns,
        }
    }

    #[test]
    fn validation_names_the_bad_cpus_and_the_allowed_ones() {
        let allowed = [0, 1];
        assert!(cfg(&[0, 1], 1000, 1000).validate_with(&allowed).is_ok());
        let e = cfg(&[1, 7, 5], 1000, 1000)
            .validate_with(&allowed)
            .unwrap_err();
        assert!(matches!(&e, JitterError::CpuNotAllowed { cpus, .. } if cpus == &[5, 7]));
        let text = e.to_string();
        assert!(text.contains("CPUs 5,7 not in"), "{text}");
        assert!(text.contains("allowed CPUs: 0-1"), "{text}");
        let text = cfg(&[4], 1000, 1000)
            .validate_with(&allowed)
            .unwrap_err()
            .to_string();
        assert!(text.contains("CPU 4 not in"), "{text}");
        assert!(matches!(
            cfg(&[], 1000, 1000).validate_with(&allowed),
            Err(JitterError::NoCpus { .. })
        ));
        assert!(matches!(
            cfg(&[1, 0, 1], 1000, 1000).validate_with(&allowed),
            Err(JitterError::DuplicateCpu { cpu: 1 })
        ));
    }

    #[test]
    fn validation_bounds_duration_and_threshold() {
        let allowed = [0];
        for ms in [0, 9, 3_600_001] {
            let e = cfg(&[0], ms, 1000).validate_with(&allowed).unwrap_err();
            assert!(matches!(e, JitterError::Duration { .. }), "{ms}: {e}");
        }
        assert!(cfg(&[0], 3_600_000, 1000).validate_with(&allowed).is_ok());
        for t in [0, MIN_THRESHOLD_NS - 1, MAX_THRESHOLD_NS + 1] {
            let e = cfg(&[0], 10_000, t).validate_with(&allowed).unwrap_err();
            assert!(matches!(e, JitterError::Threshold { .. }), "{t}: {e}");
        }
        // Not shorter than the run itself.
        let e = cfg(&[0], 10, 10_000_000)
            .validate_with(&allowed)
            .unwrap_err();
        assert!(e.to_string().contains("less than the duration"), "{e}");
        assert!(
            cfg(&[0], 10, MIN_THRESHOLD_NS)
                .validate_with(&allowed)
                .is_ok()
        );
    }

    #[test]
    fn gap_accounting_on_synthetic_readings() {
        // Monotonic clock: ticks are ns.
        let clock = Clock::monotonic();
        let mut a = GapAccount::new(clock, 100, 1_000);
        let reads = [
            1_010, 1_020, 1_030, 2_030, 2_040, 2_052, 4_052, 4_062, 4_162, 4_163,
        ];
        let flagged: Vec<bool> = reads.iter().map(|&r| a.observe(r)).collect();
        // Deltas 10,10,10,1000,10,12,2000,10,100,1: the threshold is strict.
        assert_eq!(
            flagged,
            [
                false, false, false, true, false, false, true, false, false, false
            ]
        );
        let s = a.summary(3);
        assert_eq!(s.cpu, 3);
        assert_eq!(s.iterations, 10);
        assert_eq!(s.interruptions, 2);
        assert_eq!(s.loop_min_ns, 1);
        assert_eq!(s.measured_ns, 3_163);
        // (1000 - 1) + (2000 - 1)
        assert_eq!(s.lost_ns, 2_998);
        assert_eq!(s.max_ns, Some(1_999));
        assert_eq!(s.p50_ns, Some(999));
        assert_eq!(s.p99_ns, Some(1_999));
        assert_eq!(s.p99_9_ns, Some(1_999));
        assert!((s.lost_pct - 2_998.0 * 100.0 / 3_163.0).abs() < 1e-9);
        assert!((s.rate_per_s - 2.0e9 / 3_163.0).abs() < 1e-6);
    }

    #[test]
    fn gap_accounting_converts_ticks() {
        // 2 GHz: a tick is 0.5 ns; threshold 1000 ns = 2000 ticks.
        let clock = Clock::from_tsc_hz(2_000_000_000);
        let mut a = GapAccount::new(clock, 1_000, 0);
        let mut t = 0;
        for _ in 0..1_000 {
            t += 40; // 20 ns iterations
            assert!(!a.observe(t));
        }
        t += 2_000; // exactly the threshold: not an interruption
        assert!(!a.observe(t));
        t += 2_001;
        assert!(a.observe(t));
        t += 20_040; // 10 µs + one iteration
        assert!(a.observe(t));
        // Backwards reading: a zero-length iteration, not a huge gap.
        assert!(!a.observe(t - 5));
        let s = a.summary(0);
        assert_eq!(s.interruptions, 2);
        assert_eq!(s.loop_min_ns, 0);
        // ((2001 - 0) + (20040 - 0)) ticks = 22041 ticks = 11020.5 ns
        assert_eq!(s.lost_ns, 11_020);
        assert_eq!(s.max_ns, Some(10_020));
        assert_eq!(s.measured_ns, (40_000 + 2_000 + 2_001 + 20_040) / 2);
    }

    #[test]
    fn no_interruption_is_none_not_zero() {
        let clock = Clock::monotonic();
        let mut a = GapAccount::new(clock, 1_000, 0);
        for t in 1..=100 {
            a.observe(t * 30);
        }
        let s = a.summary(0);
        assert_eq!((s.interruptions, s.lost_ns, s.loop_min_ns), (0, 0, 30));
        assert_eq!((s.p50_ns, s.max_ns), (None, None));
        assert_eq!(s.lost_pct, 0.0);
        let json = serde_json::to_value(&s).unwrap();
        assert!(json["p99_9_ns"].is_null(), "{json}");
        // An account that saw nothing.
        let empty = GapAccount::new(clock, 1_000, 5).summary(1);
        assert_eq!(
            (empty.iterations, empty.measured_ns, empty.rate_per_s),
            (0, 0, 0.0)
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5").unwrap(), [0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list(" 7 , 1-2,2 ").unwrap(), [1, 2, 7]);
        assert_eq!(parse_cpu_list("4").unwrap(), [4]);
        assert!(parse_cpu_list("").unwrap_err().contains("empty CPU list"));
        // The parser is root's (its own tests check each message); errors
        // name the list.
        for bad in ["1,,2", "3-1", "a", "1-"] {
            let e = parse_cpu_list(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn short_real_run_on_one_cpu() {
        let cpu = hftnet_sys::sched::allowed_cpus().unwrap()[0];
        let clock = Clock::new();
        let stop = AtomicBool::new(false);
        let c = cfg(&[cpu], 200, 1_000);
        let t0 = std::time::Instant::now();
        let r = run_jitter(&c, clock, &stop).unwrap();
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert_eq!(r.clock, clock.kind());
        assert_eq!((r.threshold_ns, r.duration_ns), (1_000, 200_000_000));
        assert!(!r.stopped_early);
        assert_eq!(r.cpus.len(), 1);
        let s = &r.cpus[0];
        eprintln!("{s}\n{:?}", r.warnings);
        assert_eq!(s.cpu, cpu);
        assert!(s.iterations > 1_000, "{s:?}");
        // The clock may be off by a little; the run is 200 ms plus one gap.
        assert!(
            s.measured_ns >= 190_000_000 && s.measured_ns < 2_000_000_000,
            "{s:?}"
        );
        assert!(s.loop_min_ns < 1_000, "{s:?}");
        assert!(s.lost_ns <= s.measured_ns && (0.0..=100.0).contains(&s.lost_pct));
        if s.interruptions > 0 {
            let (p50, p99, p999, max) = (
                s.p50_ns.unwrap(),
                s.p99_ns.unwrap(),
                s.p99_9_ns.unwrap(),
                s.max_ns.unwrap(),
            );
            assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{s:?}");
            assert!(s.lost_ns >= max);
        } else {
            assert_eq!(s.max_ns, None);
        }
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["cpus"][0]["cpu"], cpu);
        assert!(json["clock"].is_string());
    }

    #[test]
    fn stop_flag_ends_the_run_early() {
        let allowed = hftnet_sys::sched::allowed_cpus().unwrap();
        let stop = AtomicBool::new(false);
        let c = cfg(&allowed, 60_000, 1_000);
        let t0 = std::time::Instant::now();
        let r = thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(100));
                stop.store(true, Ordering::Relaxed);
            });
            run_jitter(&c, Clock::new(), &stop)
        })
        .unwrap();
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert!(r.stopped_early);
        assert!(r.cpus.len() <= allowed.len());
        assert!(
            r.warnings.iter().any(|w| w.contains("every CPU")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn pin_failure_stops_and_joins_the_others() {
        let cpu = hftnet_sys::sched::allowed_cpus().unwrap()[0];
        let stop = AtomicBool::new(false);
        // Bypasses validation to reach the thread's own failure path.
        let c = cfg(&[cpu, 4095], 60_000, 1_000);
        let t0 = std::time::Instant::now();
        let e = spin_all(&c, Clock::new(), &stop).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        assert!(matches!(e, JitterError::Pin { cpu: 4095, .. }), "{e}");
        assert!(e.to_string().contains("CPU 4095"), "{e}");
    }
}
