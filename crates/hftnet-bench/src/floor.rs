//! The floor: a bare cache-line ping-pong between two pinned threads, the
//! least time any inter-CPU IPC can take on this machine (DESIGN.md,
//! "Measuring honestly": ≈ 280 ns round trip on the reference 2-vCPU VM).
//!
//! Layer: `hftnet-bench`, beside the ping-pong harness but below every
//! transport: no socket, no queue, no kernel — two `AtomicU64` words, each on
//! its own 64-byte cache line. The client writes sequence `k` into the ping
//! line and spins until the pong line holds `k`; the server spins until the
//! ping line changes and copies the value into the pong line. Round trips are
//! timed with the same [`Clock`] as every other row, so the ladder can print
//! this row beside the transport rows ([`crate::ladder::floor_rung`]).
//!
//! Invariants: both threads are spawned here and pinned to the two CPUs asked
//! for (the caller's own thread is never pinned); warm-up round trips are
//! excluded from the histogram and counted apart; the measured loop neither
//! allocates, locks nor makes a syscall (the histogram is allocated before
//! the run, and its bounds are fixed, so recording never resizes it). Every
//! loop is bounded: the run by its duration, a sample cap and a stop flag;
//! every spin wait by [`FloorConfig::peer_timeout`] (checked every
//! 2¹⁶ spins), so a peer that was descheduled for good, or never answers,
//! ends the run with an error instead of hanging it; the server thread exits
//! when the client is done (a stop value in the ping line) or, should the
//! client vanish, after twice the peer timeout without a new ping. On
//! success the server has answered exactly `warmup + round_trips` pings.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::stats::LatencyStats;

/// How long a spin wait gives its peer by default before the run ends with
/// an error.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(1);

/// Spins between two looks at the clock in a wait (a power of two).
const CHECK_EVERY_SPINS: u32 = 1 << 16;

/// Ping value telling the server to exit. Sequence numbers never reach it
/// ([`FloorConfig`] bounds warm-up plus samples below it).
const STOP: u64 = u64::MAX;

/// Values of the ready line.
const STARTING: u64 = 0;
const READY: u64 = 1;
const FAILED: u64 = 2;

/// One word alone on its cache line.
#[repr(align(64))]
struct Line(AtomicU64);

impl Line {
    const fn new(v: u64) -> Self {
        Self(AtomicU64::new(v))
    }
}

/// What the two threads share: the ping line (client writes, server reads),
/// the pong line (server writes, client reads) and the server's start-up
/// state, each on a line of its own.
struct Lines {
    ping: Line,
    pong: Line,
    ready: Line,
}

/// How a floor run is placed and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorConfig {
    /// CPU of the client thread (the one that times round trips).
    pub client_cpu: usize,
    /// CPU of the server thread; must differ from `client_cpu`.
    pub server_cpu: usize,
    /// Time to run the measured part.
    pub duration: Duration,
    /// Round trips made first and not measured.
    pub warmup: u64,
    /// Measured round trips at most (the run ends at whichever bound comes first).
    pub max_samples: u64,
    /// How long a spin wait gives the peer before the run ends with an error
    /// (the wait looks at the clock every 2¹⁶ spins, so it may last a few ms
    /// longer).
    pub peer_timeout: Duration,
}

impl FloorConfig {
    /// A run of `duration` between `client_cpu` and `server_cpu`, with 1000
    /// warm-up round trips, at most 50 million samples and
    /// [`DEFAULT_PEER_TIMEOUT`].
    #[must_use]
    pub fn new(client_cpu: usize, server_cpu: usize, duration: Duration) -> Self {
        Self {
            client_cpu,
            server_cpu,
            duration,
            warmup: 1000,
            max_samples: 50_000_000,
            peer_timeout: DEFAULT_PEER_TIMEOUT,
        }
    }
}

/// What a floor run measured.
#[derive(Debug, Default)]
pub struct FloorResult {
    /// Measured round trips, in ns.
    pub rtt: LatencyStats,
    /// Measured round trips (equals `rtt.len()`).
    pub round_trips: u64,
    /// Warm-up round trips made before the measured ones.
    pub warmup: u64,
    /// Pings the server answered: always `warmup + round_trips` (checked).
    pub server_replies: u64,
    /// Set when the stop flag ended the run early.
    pub interrupted: bool,
    /// Wall time of the measured part.
    pub elapsed: Duration,
}

/// Runs the floor: a server thread pinned to `cfg.server_cpu` and a client
/// thread pinned to `cfg.client_cpu` ping-pong one 64-bit word on two cache
/// lines, `cfg.warmup` round trips unmeasured and then measured ones until
/// `cfg.duration` has passed, `cfg.max_samples` were taken or `stop` is set
/// (then [`FloorResult::interrupted`] says so). Each round trip is timed with
/// `clock` from before the client's store to after it sees the reply.
/// Blocks until both threads have ended.
///
/// # Errors
/// In words: the two CPUs are the same, a thread could not be spawned or
/// pinned, the peer did not answer within `cfg.peer_timeout`, or the reply
/// count does not match the round trips.
pub fn cache_line_pingpong(
    cfg: &FloorConfig,
    clock: Clock,
    stop: &AtomicBool,
) -> Result<FloorResult, String> {
    run(cfg, clock, stop, Server::Echo)
}

/// What the server thread does with a ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// Answer it (the floor).
    Echo,
    /// Never answer (tests of the bounded wait).
    #[cfg_attr(not(test), allow(dead_code))]
    Silent,
}

fn run(
    cfg: &FloorConfig,
    clock: Clock,
    stop: &AtomicBool,
    behaviour: Server,
) -> Result<FloorResult, String> {
    if cfg.client_cpu == cfg.server_cpu {
        return Err(format!(
            "the floor needs two different CPUs; client and server are both on CPU {}",
            cfg.client_cpu
        ));
    }
    if cfg
        .warmup
        .checked_add(cfg.max_samples)
        .is_none_or(|n| n == STOP)
    {
        return Err("warm-up plus samples must stay below 2^64 - 1".into());
    }
    let lines = Lines {
        ping: Line::new(0),
        pong: Line::new(0),
        ready: Line::new(STARTING),
    };
    // Allocated here, before either thread starts: the measured loop only
    // records into it.
    let mut rtt = LatencyStats::new();
    let server_idle = cfg.peer_timeout.saturating_mul(2);
    let (client, server) = thread::scope(|s| {
        let lines = &lines;
        let server = thread::Builder::new()
            .name("hftnet-floor-pong".into())
            .spawn_scoped(s, move || {
                serve(
                    lines,
                    cfg.server_cpu,
                    server_idle,
                    behaviour == Server::Echo,
                )
            })
            .map_err(|e| format!("spawning the floor server thread: {e}"));
        let server = match server {
            Ok(h) => h,
            Err(e) => return (Err(e), Ok(0)),
        };
        let rtt = &mut rtt;
        let client = thread::Builder::new()
            .name("hftnet-floor-ping".into())
            .spawn_scoped(s, move || {
                let out = ping(lines, cfg, clock, stop, rtt);
                // Whatever happened, the server exits now.
                lines.ping.0.store(STOP, Ordering::Release);
                out
            })
            .map_err(|e| format!("spawning the floor client thread: {e}"));
        let client = match client {
            Ok(h) => h.join().unwrap_or_else(|_| {
                lines.ping.0.store(STOP, Ordering::Release);
                Err("the floor client thread panicked".into())
            }),
            Err(e) => {
                lines.ping.0.store(STOP, Ordering::Release);
                Err(e)
            }
        };
        let server = server
            .join()
            .unwrap_or_else(|_| Err("the floor server thread panicked".into()));
        (client, server)
    });
    // The client's error comes first (it is what the run saw); the server's
    // explains it when both failed (e.g. the server could not be pinned).
    let (client, server_replies) = match (client, server) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(c), Err(s)) => return Err(format!("{c}: {s}")),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
    };
    if server_replies != client.warmup + client.round_trips {
        return Err(format!(
            "the floor server answered {server_replies} pings, the client made {} warm-up and {} measured round trips",
            client.warmup, client.round_trips
        ));
    }
    if rtt.len() != client.round_trips {
        return Err(format!(
            "the floor recorded {} samples for {} round trips",
            rtt.len(),
            client.round_trips
        ));
    }
    Ok(FloorResult {
        rtt,
        round_trips: client.round_trips,
        warmup: client.warmup,
        server_replies,
        interrupted: client.interrupted,
        elapsed: client.elapsed,
    })
}

/// What the client thread counted.
struct PingCounts {
    round_trips: u64,
    warmup: u64,
    interrupted: bool,
    elapsed: Duration,
}

/// Spins until `done(value of word)` holds, and returns that value; `None`
/// when `limit` passed first. Looks at the clock only every
/// [`CHECK_EVERY_SPINS`] spins, so the wait may exceed `limit` by one such
/// interval.
#[inline]
fn spin_until(word: &AtomicU64, limit: Duration, done: impl Fn(u64) -> bool) -> Option<u64> {
    let mut spins: u32 = 0;
    let mut since: Option<Instant> = None;
    loop {
        let v = word.load(Ordering::Acquire);
        if done(v) {
            return Some(v);
        }
        spins = spins.wrapping_add(1);
        if spins & (CHECK_EVERY_SPINS - 1) == 0 {
            let t = *since.get_or_insert_with(Instant::now);
            if t.elapsed() >= limit {
                return None;
            }
        }
        std::hint::spin_loop();
    }
}

/// The client: pin, wait for the server, warm up, then time round trips.
fn ping(
    lines: &Lines,
    cfg: &FloorConfig,
    clock: Clock,
    stop: &AtomicBool,
    rtt: &mut LatencyStats,
) -> Result<PingCounts, String> {
    hftnet_sys::sched::pin_thread_to_cpu(cfg.client_cpu)
        .map_err(|e| format!("pinning the floor client to CPU {}: {e}", cfg.client_cpu))?;
    match spin_until(&lines.ready.0, cfg.peer_timeout, |v| v != STARTING) {
        Some(READY) => {}
        Some(_) => return Err("the floor server could not start".into()),
        None => {
            return Err(format!(
                "the floor server did not start within {:?}",
                cfg.peer_timeout
            ));
        }
    }
    let silent = |k: u64| {
        format!(
            "the floor server did not answer ping {k} within {:?} (CPU {} descheduled?)",
            cfg.peer_timeout, cfg.server_cpu
        )
    };
    let mut k: u64 = 0;
    let mut warmup = 0;
    while warmup < cfg.warmup && !stop.load(Ordering::Relaxed) {
        k += 1;
        lines.ping.0.store(k, Ordering::Release);
        spin_until(&lines.pong.0, cfg.peer_timeout, |v| v == k).ok_or_else(|| silent(k))?;
        warmup += 1;
    }
    let duration_ns = u64::try_from(cfg.duration.as_nanos()).unwrap_or(u64::MAX);
    let start = clock.now();
    let mut last = start;
    let mut round_trips = 0;
    while round_trips < cfg.max_samples
        && clock.ns_between(start, last) < duration_ns
        && !stop.load(Ordering::Relaxed)
    {
        k += 1;
        let t0 = clock.now();
        lines.ping.0.store(k, Ordering::Release);
        spin_until(&lines.pong.0, cfg.peer_timeout, |v| v == k).ok_or_else(|| silent(k))?;
        let t1 = clock.now();
        rtt.record(clock.ns_between(t0, t1));
        round_trips += 1;
        last = t1;
    }
    Ok(PingCounts {
        round_trips,
        warmup,
        interrupted: stop.load(Ordering::Relaxed),
        elapsed: Duration::from_nanos(clock.ns_between(start, last)),
    })
}

/// The server: pin, say ready, then answer every new ping value until the
/// stop value; returns the pings answered.
fn serve(lines: &Lines, cpu: usize, idle_limit: Duration, echo: bool) -> Result<u64, String> {
    if let Err(e) = hftnet_sys::sched::pin_thread_to_cpu(cpu) {
        lines.ready.0.store(FAILED, Ordering::Release);
        return Err(format!("pinning the floor server to CPU {cpu}: {e}"));
    }
    lines.ready.0.store(READY, Ordering::Release);
    let mut last = 0;
    let mut replies = 0;
    loop {
        let v = spin_until(&lines.ping.0, idle_limit, |v| v != last).ok_or_else(|| {
            format!("the floor client sent nothing for {idle_limit:?}; server gave up")
        })?;
        if v == STOP {
            return Ok(replies);
        }
        if echo {
            lines.pong.0.store(v, Ordering::Release);
            replies += 1;
        }
        last = v;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Mutex, MutexGuard};

    use super::*;

    /// Held by every test that spins on the two CPUs, so that they do not
    /// run at once and fight over them.
    pub(crate) fn lock_cpus() -> MutexGuard<'static, ()> {
        static CPUS: Mutex<()> = Mutex::new(());
        CPUS.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Two allowed CPUs, or `None` (the test then says it is skipped).
    pub(crate) fn two_cpus(test: &str) -> Option<(usize, usize)> {
        let cpus = hftnet_sys::sched::allowed_cpus().unwrap_or_default();
        if cpus.len() < 2 {
            hftnet_lab::skip::skip(test, &format!("fewer than two allowed CPUs ({cpus:?})"));
            return None;
        }
        Some((cpus[0], cpus[1]))
    }

    fn cfg(duration: Duration) -> Option<FloorConfig> {
        let (c, s) = two_cpus("floor")?;
        Some(FloorConfig {
            warmup: 500,
            ..FloorConfig::new(c, s, duration)
        })
    }

    #[test]
    fn a_run_counts_every_round_trip() {
        let _cpus = lock_cpus();
        let Some(cfg) = cfg(Duration::from_millis(150)) else {
            return;
        };
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        let r = cache_line_pingpong(&cfg, Clock::new(), &stop).unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(r.round_trips > 0, "{r:?}");
        assert_eq!(r.rtt.len(), r.round_trips);
        assert_eq!(r.warmup, 500);
        assert_eq!(r.server_replies, r.warmup + r.round_trips);
        assert!(!r.interrupted);
        // The duration bound ended it (not the cap), a bit after 150 ms.
        assert!(r.round_trips < cfg.max_samples);
        assert!(r.elapsed >= cfg.duration, "{r:?}");
        assert!(r.rtt.summary().unwrap().min > 0);
    }

    #[test]
    fn the_sample_cap_ends_a_run_exactly() {
        let _cpus = lock_cpus();
        let Some(cfg) = cfg(Duration::from_secs(60)) else {
            return;
        };
        let cfg = FloorConfig {
            max_samples: 2000,
            ..cfg
        };
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        let r = cache_line_pingpong(&cfg, Clock::new(), &stop).unwrap();
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(r.round_trips, 2000);
        assert_eq!(r.rtt.len(), 2000);
        assert_eq!(r.server_replies, 2500);
    }

    #[test]
    fn the_stop_flag_ends_a_run() {
        let _cpus = lock_cpus();
        let Some(cfg) = cfg(Duration::from_secs(60)) else {
            return;
        };
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        let r = thread::scope(|s| {
            s.spawn(|| {
                thread::sleep(Duration::from_millis(100));
                stop.store(true, Ordering::Relaxed);
            });
            cache_line_pingpong(&cfg, Clock::new(), &stop).unwrap()
        });
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(r.interrupted);
        assert!(
            r.round_trips > 0 && r.round_trips < cfg.max_samples,
            "{r:?}"
        );
        assert_eq!(r.server_replies, r.warmup + r.round_trips);
        // Set before the start: nothing measured, still a clean end.
        let r = cache_line_pingpong(&cfg, Clock::new(), &stop).unwrap();
        assert!(r.interrupted);
        assert_eq!((r.warmup, r.round_trips, r.server_replies), (0, 0, 0));
        assert!(r.rtt.summary().is_none());
    }

    #[test]
    fn a_silent_server_ends_the_run_with_an_error_within_the_bound() {
        let _cpus = lock_cpus();
        let Some(cfg) = cfg(Duration::from_secs(60)) else {
            return;
        };
        let cfg = FloorConfig {
            peer_timeout: Duration::from_millis(200),
            ..cfg
        };
        let stop = AtomicBool::new(false);
        let t = Instant::now();
        let e = run(&cfg, Clock::new(), &stop, Server::Silent).unwrap_err();
        let took = t.elapsed();
        assert!(e.contains("did not answer ping 1 within"), "{e}");
        assert!(took >= cfg.peer_timeout, "{took:?}");
        assert!(took < cfg.peer_timeout + Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn bad_configurations_are_refused() {
        let _cpus = lock_cpus();
        let stop = AtomicBool::new(false);
        let same = FloorConfig::new(0, 0, Duration::from_millis(10));
        let e = cache_line_pingpong(&same, Clock::monotonic(), &stop).unwrap_err();
        assert!(e.contains("two different CPUs"), "{e}");
        let Some(cfg) = cfg(Duration::from_millis(10)) else {
            return;
        };
        let huge = FloorConfig {
            max_samples: u64::MAX - 10,
            ..cfg.clone()
        };
        let e = cache_line_pingpong(&huge, Clock::monotonic(), &stop).unwrap_err();
        assert!(e.contains("below 2^64"), "{e}");
        // A CPU the process may not use: the client's pin fails, the server
        // is stopped, and the error names the CPU.
        let absent = FloorConfig {
            client_cpu: 4000,
            ..cfg.clone()
        };
        let t = Instant::now();
        let e = cache_line_pingpong(&absent, Clock::monotonic(), &stop).unwrap_err();
        assert!(e.contains("pinning the floor client to CPU 4000"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
        // The server's: the client hears it could not start, and why.
        let absent = FloorConfig {
            server_cpu: 4000,
            ..cfg
        };
        let t = Instant::now();
        let e = cache_line_pingpong(&absent, Clock::monotonic(), &stop).unwrap_err();
        assert!(e.contains("could not start"), "{e}");
        assert!(e.contains("pinning the floor server to CPU 4000"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn the_two_words_sit_on_their_own_cache_lines() {
        let l = Lines {
            ping: Line::new(0),
            pong: Line::new(0),
            ready: Line::new(0),
        };
        let a = std::ptr::addr_of!(l.ping) as usize;
        let b = std::ptr::addr_of!(l.pong) as usize;
        assert_eq!(a % 64, 0);
        assert_eq!(b % 64, 0);
        assert!(a.abs_diff(b) >= 64);
        assert_eq!(std::mem::size_of::<Line>(), 64);
    }
}
