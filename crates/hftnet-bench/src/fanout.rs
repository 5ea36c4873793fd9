//! Fanout: one multicast sender, N receivers, one-way latency and loss
//! measured at each receiver, and the spread between receivers — what
//! sockperf cannot do (its users ask for 1:N multicast in sockperf issue
//! #220).
//!
//! ```text
//!  sender ── probe(seq, scheduled send time) ──► group ──► rx0: p50 … max, lost, dup, reordered
//!                                                     ├──► rx1: …
//!                                                     └──► rxN-1: …
//!  spread = max − min of each percentile across receivers; the slowest named
//! ```
//!
//! Layer: `hftnet-bench`, above `hftnet-io` (any [`Transport`]) and
//! `hftnet-lab` (the [`Star`] topology of [`run_in_lab`]). Three parts:
//! - [`RxAccount`]: the per-receiver accounting, sans IO — sequence numbers
//!   to received / lost / duplicated / reordered, one-way samples to an HDR
//!   histogram. Unit-tested without sockets.
//! - [`run_fanout`]: the sender on the calling thread at a fixed rate on a
//!   [`Timetable`], each receiver on a thread of its own, over transports the
//!   caller opened. Bounded by the count or duration, the stop flag, and
//!   [`FanoutConfig::drain`] after the last send.
//! - [`run_in_lab`]: builds a [`Star`] (a sender and N receivers, each in its
//!   own namespace on a bridge, or N sockets in one receiver namespace),
//!   opens `mcast://` endpoints in each, runs, and removes the lab.
//!
//! Honesty rules (DESIGN.md): every probe carries its *scheduled* send time
//! (coordinated omission: a stalled sender cannot hide its stall) and the
//! one-way latency is the receiver's reading of the same [`Clock`] minus that
//! time — which needs one clock for both ends: true in the lab (one machine,
//! one TSC or `CLOCK_MONOTONIC`, one calibration shared by the threads), not
//! across machines ([`ONE_WAY_NOTE`]). Warm-up probes are counted apart;
//! loss, duplicates and reordering are counted per receiver, and for every
//! receiver `sent = received + lost` exactly (a late joiner, [`Join::After`],
//! included: what came before its first probe is its loss). Probes of 28
//! bytes or more also carry the sender's clock just before the send call,
//! giving a second distribution per receiver without the sender's lateness
//! (`one_way_from_send_ns`). Must never: block a receiver
//! past the drain, or let a receiver's stall delay the sender (the sender
//! never waits on receivers).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hftnet_io::{Endpoint, OpenError, Role, RxBurst, SyscallError, Transport, UriError};
use hftnet_lab::{LabError, Star};
use hftnet_wire::probe;
use serde::Serialize;

use crate::clock::Clock;
use crate::env::Environment;
use crate::pingpong::Seen;
use crate::stats::{LatencyStats, Summary};
use crate::timetable::{Timetable, WaitPolicy};

pub use hftnet_lab::MAX_RECEIVERS;

/// What the one-way figures mean, printed with them.
pub const ONE_WAY_NOTE: &str = "one_way_ns = receiver's clock at receive - sender's scheduled send \
     time (a late sender shows); one_way_from_send_ns = the same from the sender's clock just \
     before its send call (the path alone); one-way latency needs one clock at both ends: true in \
     the lab (one machine, one clock), not across machines";

/// Where the sender's actual send time goes in each probe, after the probe
/// header (when the message is long enough): u64 big-endian, the shared
/// clock's nanoseconds just before the send call.
const SEND_STAMP: std::ops::Range<usize> = probe::HEADER_LEN..probe::HEADER_LEN + 8;

/// How long a receiver waits in one receive before it checks whether the
/// sender is done.
const RX_POLL: Duration = Duration::from_millis(20);

/// Most warm-up messages a run sends (the warm-up is not bounded by
/// `count` or `duration`, so it has a bound of its own).
pub const MAX_WARMUP: u64 = 1_000_000;

/// The longest the sender waits for the receiver threads to start.
const READY_WAIT: Duration = Duration::from_secs(5);

/// Default multicast group and port of [`run_in_lab`].
pub const DEFAULT_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), 9400);

/// How a fanout run is bounded and paced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutConfig {
    /// Bytes per message, probe header included.
    pub size: usize,
    /// Measured messages to send (after warm-up); with `duration` too,
    /// whichever ends first.
    pub count: Option<u64>,
    /// Time to send the measured part.
    pub duration: Option<Duration>,
    /// Messages per second, on a timetable.
    pub rate: u64,
    /// Messages sent first and not measured (they also let each receiver's
    /// path warm up).
    pub warmup: u64,
    /// How long receivers keep waiting for stragglers after the last send.
    pub drain: Duration,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            size: 64,
            count: Some(10_000),
            duration: None,
            rate: 10_000,
            warmup: 100,
            drain: Duration::from_millis(500),
        }
    }
}

/// Why a fanout configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FanoutConfigError {
    /// Too small for the probe header, or larger than the transport carries.
    #[error("message size {size} is outside {min}..={max} bytes for this transport")]
    Size {
        /// Asked size.
        size: usize,
        /// Smallest allowed (the probe header).
        min: usize,
        /// Largest the transport carries.
        max: usize,
    },
    /// Neither a count nor a duration bounds the run.
    #[error("a fanout run needs --count or --duration")]
    Unbounded,
    /// A count or duration of zero.
    #[error("--count and --duration must be more than zero")]
    Empty,
    /// A rate of zero.
    #[error("--rate must be at least 1 message per second")]
    ZeroRate,
    /// More warm-up than [`MAX_WARMUP`].
    #[error("--warmup {0} is more than {max}", max = MAX_WARMUP)]
    Warmup(u64),
    /// A per-receiver option names a receiver the run does not have.
    #[error("{what} names receiver {index}, but there are only {receivers} (rx0 to rx{last})", last = receivers - 1)]
    NoSuchReceiver {
        /// The option, e.g. `--rx-param`.
        what: &'static str,
        /// The index given.
        index: usize,
        /// Receivers in the run (at least 1).
        receivers: usize,
    },
    /// No receivers, or more than [`MAX_RECEIVERS`].
    #[error("{0} receivers asked for; use 1 to {MAX_RECEIVERS}")]
    Receivers(usize),
}

impl FanoutConfig {
    /// Checks the configuration against a transport's largest message.
    ///
    /// # Errors
    /// [`FanoutConfigError`] naming the problem.
    pub fn validate(&self, max_message: usize) -> Result<(), FanoutConfigError> {
        if self.size < probe::HEADER_LEN || self.size > max_message {
            return Err(FanoutConfigError::Size {
                size: self.size,
                min: probe::HEADER_LEN,
                max: max_message,
            });
        }
        if self.count.is_none() && self.duration.is_none() {
            return Err(FanoutConfigError::Unbounded);
        }
        if self.count == Some(0) || self.duration.is_some_and(|d| d.is_zero()) {
            return Err(FanoutConfigError::Empty);
        }
        if self.rate == 0 {
            return Err(FanoutConfigError::ZeroRate);
        }
        if self.warmup > MAX_WARMUP {
            return Err(FanoutConfigError::Warmup(self.warmup));
        }
        Ok(())
    }
}

/// What became of one arriving probe, per [`RxAccount::on_probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A measured probe seen for the first time: counted and its one-way
    /// latency recorded.
    Counted,
    /// A warm-up probe seen for the first time: counted apart.
    Warmup,
    /// A probe already seen.
    Duplicate,
    /// Older than the duplicate window ([`RxAccount::WINDOW`] probes behind
    /// the newest): cannot tell a duplicate from a late arrival, counted apart.
    Stale,
    /// A sequence number the sender had not sent yet: not this run's.
    Foreign,
}

/// One receiver's accounting, sans IO: feed it every probe that arrives
/// ([`RxAccount::on_probe`]), then [`RxAccount::finish`] with what the
/// sender sent.
///
/// Definitions: *received* = distinct measured sequence numbers; *lost* =
/// measured probes sent − received (so `sent = received + lost` exactly,
/// a late joiner's missed beginning included — [`ReceiverStats::first_seq`]
/// says where it started); *duplicated* = arrivals of a sequence number
/// already seen; *reordered* = distinct arrivals below the highest sequence
/// number seen before them.
#[derive(Debug)]
pub struct RxAccount {
    warmup: u64,
    seen: Seen,
    highest: Option<u64>,
    one_way: LatencyStats,
    from_send: LatencyStats,
    received: u64,
    warmup_received: u64,
    duplicated: u64,
    reordered: u64,
    stale: u64,
    foreign: u64,
    first_seq: Option<u64>,
}

impl RxAccount {
    /// Sequence numbers remembered for telling duplicates.
    pub const WINDOW: u64 = Seen::WINDOW;

    /// An empty account; probes below `warmup` are warm-up.
    #[must_use]
    pub fn new(warmup: u64) -> Self {
        Self {
            warmup,
            seen: Seen::new(),
            highest: None,
            one_way: LatencyStats::new(),
            from_send: LatencyStats::new(),
            received: 0,
            warmup_received: 0,
            duplicated: 0,
            reordered: 0,
            stale: 0,
            foreign: 0,
            first_seq: None,
        }
    }

    /// Accounts one probe `seq` that arrived `one_way_ns` after its scheduled
    /// send time, when the sender had sent sequence numbers below `sent_upto`.
    pub fn on_probe(&mut self, seq: u64, one_way_ns: u64, sent_upto: u64) -> Arrival {
        self.on_probe_sent(seq, one_way_ns, None, sent_upto)
    }

    /// [`on_probe`](Self::on_probe) with, when the probe carried it, the
    /// latency from the sender's actual send call (`from_send_ns`), recorded
    /// beside the one from the schedule.
    pub fn on_probe_sent(
        &mut self,
        seq: u64,
        one_way_ns: u64,
        from_send_ns: Option<u64>,
        sent_upto: u64,
    ) -> Arrival {
        if seq >= sent_upto {
            self.foreign += 1;
            return Arrival::Foreign;
        }
        match self.seen.mark(seq) {
            None => {
                self.stale += 1;
                return Arrival::Stale;
            }
            Some(true) => {
                self.duplicated += 1;
                return Arrival::Duplicate;
            }
            Some(false) => {}
        }
        self.first_seq.get_or_insert(seq);
        if self.highest.is_some_and(|h| seq < h) {
            self.reordered += 1;
        } else {
            self.highest = Some(seq);
        }
        if seq < self.warmup {
            self.warmup_received += 1;
            return Arrival::Warmup;
        }
        self.received += 1;
        self.one_way.record(one_way_ns);
        if let Some(ns) = from_send_ns {
            self.from_send.record(ns);
        }
        Arrival::Counted
    }

    /// Distinct probes seen, warm-up included: the receiver has everything
    /// when this reaches the number the sender sent.
    #[must_use]
    pub fn distinct(&self) -> u64 {
        self.received + self.warmup_received
    }

    /// Counts a message that was not a probe of this run (wrong magic or size).
    pub fn on_foreign(&mut self) {
        self.foreign += 1;
    }

    /// The counters, given `sent` measured probes sent.
    #[must_use]
    pub fn finish(self, sent: u64) -> ReceiverStats {
        ReceiverStats {
            received: self.received,
            lost: sent.saturating_sub(self.received),
            duplicated: self.duplicated,
            reordered: self.reordered,
            stale: self.stale,
            foreign: self.foreign,
            warmup_received: self.warmup_received,
            first_seq: self.first_seq,
            one_way_ns: self.one_way.summary(),
            one_way: self.one_way,
            one_way_from_send_ns: self.from_send.summary(),
            from_send: self.from_send,
        }
    }
}

/// One receiver's counters and one-way distribution.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverStats {
    /// Distinct measured probes received.
    pub received: u64,
    /// Measured probes sent and never received: `sent - received`.
    pub lost: u64,
    /// Arrivals of a probe already received.
    pub duplicated: u64,
    /// Distinct arrivals below the highest sequence number seen before them.
    pub reordered: u64,
    /// Arrivals too old to tell from duplicates (see [`Arrival::Stale`]).
    pub stale: u64,
    /// Messages that were not this run's probes.
    pub foreign: u64,
    /// Distinct warm-up probes received.
    pub warmup_received: u64,
    /// The first sequence number received (warm-up included): above 0 for a
    /// receiver that joined late or lost the beginning.
    pub first_seq: Option<u64>,
    /// One-way latency from the scheduled send time, ns; `null` when nothing
    /// was measured.
    pub one_way_ns: Option<Summary>,
    /// The histogram behind `one_way_ns` (for `.hgrm` files).
    #[serde(skip)]
    pub one_way: LatencyStats,
    /// One-way latency from the sender's actual send call, ns: the path
    /// without the sender's lateness; `null` when messages are shorter than
    /// 28 bytes (no room for the stamp) or nothing was measured.
    pub one_way_from_send_ns: Option<Summary>,
    /// The histogram behind `one_way_from_send_ns`.
    #[serde(skip)]
    pub from_send: LatencyStats,
}

/// One receiver of a run: its name, where it ran, its counters.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverOutcome {
    /// `rx0`, `rx1`, ...
    pub name: String,
    /// The network namespace it received in, when known.
    pub netns: Option<String>,
    /// The counters and the distribution.
    #[serde(flatten)]
    pub stats: ReceiverStats,
    /// Messages larger than the receive slot.
    pub truncated: u64,
    /// Probes whose padding arrived changed.
    pub corrupted: u64,
    /// Receives that failed.
    pub recv_errors: u64,
    /// The first receive error, in words.
    pub first_error: Option<String>,
    /// Messages the fault middleware of this receiver's URI dropped
    /// (`loss=` with `faults_on=rx` or `both`), when it has one: part of
    /// `lost`, injected on purpose.
    pub injected_drops: Option<u64>,
    /// For a late joiner: how many probes (warm-up included) the sender had
    /// handed to the kernel when this receiver joined.
    pub joined_at_seq: Option<u64>,
}

/// The spread between receivers: for each percentile, the highest value
/// among receivers minus the lowest, ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Spread {
    /// Of the medians.
    pub p50: u64,
    /// Of the 90th percentiles.
    pub p90: u64,
    /// Of the 99th percentiles.
    pub p99: u64,
    /// Of the 99.9th percentiles.
    pub p99_9: u64,
    /// Of the maxima.
    pub max: u64,
}

/// What a fanout run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutOutcome {
    /// Measured probes sent.
    pub sent: u64,
    /// Warm-up probes sent.
    pub warmup_sent: u64,
    /// Sends the kernel refused (those probes count as lost at every receiver).
    pub send_errors: u64,
    /// The first send error, in words.
    pub first_send_error: Option<String>,
    /// The most a send started behind its schedule, ns (a stalled sender).
    pub behind_max_ns: u64,
    /// Seconds the measured sends took.
    pub duration_s: f64,
    /// Why the run stopped before its bound, if it did.
    pub aborted: Option<String>,
    /// Per receiver, in order.
    pub receivers: Vec<ReceiverOutcome>,
}

impl FanoutOutcome {
    /// The spread of each percentile across the receivers that measured
    /// something; `None` when none did.
    #[must_use]
    pub fn spread(&self) -> Option<Spread> {
        let sums: Vec<Summary> = self
            .receivers
            .iter()
            .filter_map(|r| r.stats.one_way_ns)
            .collect();
        if sums.is_empty() {
            return None;
        }
        let range = |f: fn(&Summary) -> u64| {
            let lo = sums.iter().map(f).min().unwrap_or(0);
            let hi = sums.iter().map(f).max().unwrap_or(0);
            hi - lo
        };
        Some(Spread {
            p50: range(|s| s.p50),
            p90: range(|s| s.p90),
            p99: range(|s| s.p99),
            p99_9: range(|s| s.p99_9),
            max: range(|s| s.max),
        })
    }

    /// The receiver with the highest p99 (ties: the highest p99.9, then max),
    /// among those that measured something.
    #[must_use]
    pub fn slowest(&self) -> Option<&ReceiverOutcome> {
        self.receivers
            .iter()
            .filter(|r| r.stats.one_way_ns.is_some())
            .max_by_key(|r| {
                let s = r.stats.one_way_ns.unwrap_or_default();
                (s.p99, s.p99_9, s.max)
            })
    }

    /// The receiver with the lowest p99 (ties: the lowest p99.9, then max).
    #[must_use]
    pub fn fastest(&self) -> Option<&ReceiverOutcome> {
        self.receivers
            .iter()
            .filter(|r| r.stats.one_way_ns.is_some())
            .min_by_key(|r| {
                let s = r.stats.one_way_ns.unwrap_or_default();
                (s.p99, s.p99_9, s.max)
            })
    }

    /// Every receiver received every measured probe sent once, and every
    /// send succeeded (a run cut short by the stop flag can be clean: it
    /// counts what it sent).
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.send_errors == 0
            && self.receivers.iter().all(|r| {
                r.stats.lost == 0 && r.stats.duplicated == 0 && r.corrupted == 0 && r.truncated == 0
            })
    }

    /// No receiver received any measured probe.
    #[must_use]
    pub fn all_silent(&self) -> bool {
        self.receivers.iter().all(|r| r.stats.received == 0)
    }

    /// The per-receiver table for people, with the spread and the slowest
    /// receiver, latencies in ns.
    #[must_use]
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<6} {:<24} {:>9} {:>7} {:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>11}",
            "rx",
            "netns",
            "received",
            "lost",
            "dup",
            "reord",
            "p50_ns",
            "p90_ns",
            "p99_ns",
            "p99.9_ns",
            "max_ns",
            "send_p50_ns",
            "send_p99_ns"
        );
        let dash = "-".to_string();
        for r in &self.receivers {
            let cols = match r.stats.one_way_ns {
                Some(x) => [x.p50, x.p90, x.p99, x.p99_9, x.max].map(|v| v.to_string()),
                None => std::array::from_fn(|_| dash.clone()),
            };
            let send = match r.stats.one_way_from_send_ns {
                Some(x) => [x.p50, x.p99].map(|v| v.to_string()),
                None => std::array::from_fn(|_| dash.clone()),
            };
            let _ = writeln!(
                s,
                "{:<6} {:<24} {:>9} {:>7} {:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>11} {:>11}",
                r.name,
                r.netns.as_deref().unwrap_or("-"),
                r.stats.received,
                r.stats.lost,
                r.stats.duplicated,
                r.stats.reordered,
                cols[0],
                cols[1],
                cols[2],
                cols[3],
                cols[4],
                send[0],
                send[1]
            );
        }
        if let Some(sp) = self.spread() {
            let _ = writeln!(
                s,
                "{:<6} {:<24} {:>9} {:>7} {:>5} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10}",
                "spread",
                "(max - min across rx)",
                "",
                "",
                "",
                "",
                sp.p50,
                sp.p90,
                sp.p99,
                sp.p99_9,
                sp.max,
            );
        }
        s
    }
}

/// A receiving end of [`run_fanout`]: its transport (or how to open it
/// late) and names for the report.
#[derive(Debug)]
pub struct Receiver<'a, R> {
    /// `rx0`, `rx1`, ...
    pub name: String,
    /// The namespace the transport lives in, for the report.
    pub netns: Option<String>,
    /// The transport, or when and how to open it.
    pub transport: Join<'a, R>,
}

/// When a receiver joins the group.
pub enum Join<'a, R> {
    /// Already open and receiving the group when the run starts.
    Now(R),
    /// A late joiner: opened (and so joined) on the receiver's thread once
    /// the sender has handed probe `seq` to the kernel.
    After {
        /// The sequence number to wait for.
        seq: u64,
        /// Opens the transport (in the receiver's namespace).
        open: Box<dyn FnOnce() -> Result<R, FanoutError> + Send + 'a>,
    },
}

impl<R: std::fmt::Debug> std::fmt::Debug for Join<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Now(t) => f.debug_tuple("Now").field(t).finish(),
            Self::After { seq, .. } => f.debug_struct("After").field("seq", seq).finish(),
        }
    }
}

/// Why a fanout run could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FanoutError {
    /// The configuration is not acceptable.
    #[error(transparent)]
    Config(#[from] FanoutConfigError),
    /// The lab could not be built.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// A URI built from the options does not parse (an extra parameter is wrong).
    #[error("{who}: {source}")]
    Uri {
        /// `sender` or the receiver's name.
        who: String,
        /// The parse error, naming the parameter.
        source: Box<UriError>,
    },
    /// A transport could not be opened.
    #[error("{who}: opening {uri}: {source}")]
    Open {
        /// `sender` or the receiver's name.
        who: String,
        /// The URI.
        uri: String,
        /// The open error.
        source: Box<OpenError>,
    },
    /// A receive timeout could not be set on a receiver.
    #[error("{who}: {source}")]
    Setup {
        /// The receiver's name.
        who: String,
        /// The failed call.
        source: SyscallError,
    },
    /// A receiver thread could not be started.
    #[error("could not start the thread of receiver {who}: {source}")]
    Thread {
        /// The receiver's name.
        who: String,
        /// The spawn error.
        source: std::io::Error,
    },
}

/// What the sender publishes to the receivers.
struct Shared {
    /// Sequence numbers below this were handed to the kernel (set before each send).
    next_seq: AtomicU64,
    /// The sender sent its last probe (or stopped).
    done: AtomicBool,
    /// Receiver threads running (the sender starts when all are).
    ready: AtomicUsize,
}

/// Sets `done` when the sender returns or unwinds, so receivers always end.
struct DoneOnDrop<'a>(&'a Shared);

impl Drop for DoneOnDrop<'_> {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Release);
    }
}

/// Runs a fanout: `sender` sends probes to its default peer (the group) at
/// `cfg.rate` on a timetable; each receiver counts what arrives on a thread of
/// its own, until it has everything the sender sent or `cfg.drain` passed
/// after the last send. `stop` ends the sending early (receivers still drain).
///
/// Every receiver must share `clock` with the sender (the same machine).
///
/// # Errors
/// [`FanoutError::Config`] for a bad configuration or receiver count,
/// [`FanoutError::Setup`] / [`FanoutError::Thread`] when a receiver cannot be
/// set up. Failures of single sends and receives are counted in the outcome.
///
/// # Panics
/// A panic of a receiver thread is resumed on the calling thread.
pub fn run_fanout<S, R>(
    sender: &mut S,
    receivers: Vec<Receiver<'_, R>>,
    cfg: &FanoutConfig,
    clock: Clock,
    stop: &AtomicBool,
) -> Result<FanoutOutcome, FanoutError>
where
    S: Transport,
    R: Transport + Send,
{
    cfg.validate(sender.capabilities().max_message)?;
    if receivers.is_empty() || receivers.len() > MAX_RECEIVERS {
        return Err(FanoutConfigError::Receivers(receivers.len()).into());
    }
    let mut receivers = receivers;
    for r in &mut receivers {
        if let Join::Now(t) = &mut r.transport {
            t.set_recv_timeout(Some(RX_POLL))
                .map_err(|source| FanoutError::Setup {
                    who: r.name.clone(),
                    source,
                })?;
        }
    }
    let shared = Shared {
        next_seq: AtomicU64::new(0),
        done: AtomicBool::new(false),
        ready: AtomicUsize::new(0),
    };
    let n = receivers.len();
    std::thread::scope(|scope| {
        // Whatever happens below, the receivers end: nothing more comes.
        let done = DoneOnDrop(&shared);
        let mut handles = Vec::with_capacity(n);
        for r in receivers {
            let shared = &shared;
            let name = r.name.clone();
            let h = std::thread::Builder::new()
                .name(format!("fanout-{}", r.name))
                .spawn_scoped(scope, move || receive(r, cfg, clock, shared))
                .map_err(|source| FanoutError::Thread { who: name, source })?;
            handles.push(h);
        }
        // The threads start in microseconds; the bound only keeps a broken
        // scheduler from hanging the run.
        let waited = Instant::now();
        while shared.ready.load(Ordering::Acquire) < n && waited.elapsed() < READY_WAIT {
            std::thread::sleep(Duration::from_micros(100));
        }
        let mut out = send(sender, cfg, clock, &shared, stop);
        drop(done);
        for h in handles {
            match h.join() {
                Ok(r) => out.receivers.push(r),
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        for r in &mut out.receivers {
            r.stats.lost = out.sent.saturating_sub(r.stats.received);
        }
        Ok(out)
    })
}

/// The sender: warm-up then measured probes on the timetable, each stamped
/// with its scheduled send time in the shared clock's nanoseconds.
fn send<S: Transport>(
    t: &mut S,
    cfg: &FanoutConfig,
    clock: Clock,
    shared: &Shared,
    stop: &AtomicBool,
) -> FanoutOutcome {
    // Best effort: timed waits otherwise wake up to 50 µs late.
    let _ = hftnet_sys::sched::set_timer_slack_ns(1);
    let mut out = FanoutOutcome {
        sent: 0,
        warmup_sent: 0,
        send_errors: 0,
        first_send_error: None,
        behind_max_ns: 0,
        duration_s: 0.0,
        aborted: None,
        receivers: Vec::new(),
    };
    let Some(mut timetable) = Timetable::per_second(cfg.rate) else {
        return out; // refused by validate
    };
    let mut msg = vec![0u8; cfg.size];
    let origin_ns = clock.now_ns();
    let mut measuring_since: Option<Instant> = None;
    let mut seq = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            out.aborted = Some("interrupted".into());
            break;
        }
        if seq >= cfg.warmup
            && (cfg.count.is_some_and(|c| out.sent >= c)
                || cfg
                    .duration
                    .is_some_and(|d| measuring_since.is_some_and(|s| s.elapsed() >= d)))
        {
            break;
        }
        // On the stamps' clock, so one-way latency and lateness compare
        // readings of one clock.
        WaitPolicy::SLEEP_THEN_SPIN.wait_until_ns(clock, origin_ns + timetable.due_ns(seq));
        let now_ns = clock.now_ns().saturating_sub(origin_ns);
        timetable.note_send(seq, now_ns);
        probe::fill_padding(seq, &mut msg);
        probe::Repr {
            seq,
            stamp: origin_ns + timetable.due_ns(seq),
        }
        .emit(&mut probe::Packet::new_unchecked(&mut msg[..]));
        shared.next_seq.store(seq + 1, Ordering::Release);
        if let Some(b) = msg.get_mut(SEND_STAMP) {
            b.copy_from_slice(&clock.now_ns().to_be_bytes());
        }
        if let Err(e) = t.send(&msg, None) {
            out.send_errors += 1;
            if out.first_send_error.is_none() {
                out.first_send_error = Some(e.to_string());
            }
        }
        if seq >= cfg.warmup {
            measuring_since.get_or_insert_with(Instant::now);
            out.sent += 1;
        } else {
            out.warmup_sent += 1;
        }
        seq += 1;
    }
    out.behind_max_ns = timetable.behind_max_ns();
    out.duration_s = measuring_since.map_or(0.0, |s| s.elapsed().as_secs_f64());
    out
}

/// One receiver's loop: receive, classify, until it has everything or the
/// drain after the last send is over.
fn receive<R: Transport>(
    r: Receiver<'_, R>,
    cfg: &FanoutConfig,
    clock: Clock,
    shared: &Shared,
) -> ReceiverOutcome {
    let mut acct = RxAccount::new(cfg.warmup);
    let mut burst = RxBurst::new(1, (cfg.size * 2).max(2048));
    // The padding each probe must carry (past the send stamp, when there is one).
    let mut expect = vec![0u8; cfg.size];
    let pad_from = if cfg.size >= SEND_STAMP.end {
        SEND_STAMP.end
    } else {
        probe::HEADER_LEN
    };
    let (mut truncated, mut corrupted, mut recv_errors) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let mut done_since: Option<Instant> = None;
    shared.ready.fetch_add(1, Ordering::Release);
    let mut joined_at_seq = None;
    let mut t = match r.transport {
        Join::Now(t) => t,
        Join::After { seq, open } => {
            // Bounded by the sender: it ends, and says so, whatever happens.
            while shared.next_seq.load(Ordering::Acquire) < seq
                && !shared.done.load(Ordering::Acquire)
            {
                std::thread::sleep(Duration::from_micros(100));
            }
            joined_at_seq = Some(shared.next_seq.load(Ordering::Acquire));
            let opened = open().and_then(|mut t| {
                t.set_recv_timeout(Some(RX_POLL))
                    .map_err(|source| FanoutError::Setup {
                        who: r.name.clone(),
                        source,
                    })?;
                Ok(t)
            });
            match opened {
                Ok(t) => t,
                Err(e) => {
                    return ReceiverOutcome {
                        name: r.name,
                        netns: r.netns,
                        stats: acct.finish(0),
                        truncated: 0,
                        corrupted: 0,
                        recv_errors: 1,
                        first_error: Some(format!("joining late: {e}")),
                        injected_drops: None,
                        joined_at_seq,
                    };
                }
            }
        }
    };
    loop {
        match t.recv_burst_until(&mut burst, Instant::now() + RX_POLL) {
            Ok(n) => {
                let now_ns = clock.now_ns();
                let upto = shared.next_seq.load(Ordering::Acquire);
                for i in 0..n {
                    let (data, meta) = burst.get(i);
                    if meta.truncated {
                        truncated += 1;
                        continue;
                    }
                    let parsed = probe::Packet::new_checked(data)
                        .ok()
                        .and_then(|p| probe::Repr::parse(&p).ok());
                    let Some(p) = parsed.filter(|_| data.len() == cfg.size) else {
                        acct.on_foreign();
                        continue;
                    };
                    probe::fill_padding(p.seq, &mut expect);
                    if data[pad_from..] != expect[pad_from..] {
                        corrupted += 1;
                        continue;
                    }
                    let from_send = data.get(SEND_STAMP).map(|b| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(b);
                        now_ns.saturating_sub(u64::from_be_bytes(a))
                    });
                    acct.on_probe_sent(p.seq, now_ns.saturating_sub(p.stamp), from_send, upto);
                }
            }
            Err(e) => {
                recv_errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
                // Do not spin on a persistent error.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if shared.done.load(Ordering::Acquire) {
            let since = *done_since.get_or_insert_with(Instant::now);
            if acct.distinct() >= shared.next_seq.load(Ordering::Acquire)
                || since.elapsed() >= cfg.drain
            {
                break;
            }
        }
    }
    let injected_drops = t
        .capabilities()
        .middleware
        .and_then(|m| m.faults_rx)
        .map(|f| f.dropped + f.overflow);
    ReceiverOutcome {
        name: r.name,
        netns: r.netns,
        // `lost` is set by run_fanout once the sender's count is known.
        stats: acct.finish(0),
        truncated,
        corrupted,
        recv_errors,
        first_error,
        injected_drops,
        joined_at_seq,
    }
}

/// Where [`run_in_lab`] puts its receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Each receiver in its own namespace, behind its own veth on the bridge.
    Namespaces,
    /// Every receiver a socket of its own in one receiver namespace (one veth;
    /// the kernel copies each datagram to every socket).
    Sockets,
}

/// The lab side of a fanout run: how many receivers, where, on which group,
/// with which extra URI parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabFanout {
    /// Receivers, 1 to [`MAX_RECEIVERS`].
    pub receivers: usize,
    /// Namespaces or sockets.
    pub placement: Placement,
    /// Group and port.
    pub group: SocketAddrV4,
    /// Extra parameters of the sender's `mcast://` URI, e.g. `loss=0.01`.
    pub tx_params: String,
    /// Extra parameters of every receiver's URI, e.g. `rx=spin&rcvbuf=65536`.
    pub rx_params: String,
    /// Extra parameters of single receivers, by index (after `rx_params`),
    /// e.g. `(2, "loss=0.05&faults_on=rx&seed=7")`.
    pub receiver_params: Vec<(usize, String)>,
    /// Receivers that join late, by index: `(i, seq)` opens receiver `i`
    /// once the sender has sent probe `seq` (warm-up included).
    pub join_late: Vec<(usize, u64)>,
}

impl LabFanout {
    /// `receivers` receivers in their own namespaces on [`DEFAULT_GROUP`],
    /// default URIs.
    #[must_use]
    pub fn new(receivers: usize) -> Self {
        Self {
            receivers,
            placement: Placement::Namespaces,
            group: DEFAULT_GROUP,
            tx_params: String::new(),
            rx_params: String::new(),
            receiver_params: Vec::new(),
            join_late: Vec::new(),
        }
    }

    /// The sender's URI: the group, sent from the bridge.
    #[must_use]
    pub fn sender_uri(&self) -> String {
        join_params(
            format!("mcast://{}?iface={}", self.group, hftnet_lab::BRIDGE),
            &[&self.tx_params],
        )
    }

    /// Receiver `i`'s URI: the group, joined on the receiver's veth.
    #[must_use]
    pub fn receiver_uri(&self, i: usize) -> String {
        let mut extra: Vec<&str> = vec![&self.rx_params];
        extra.extend(
            self.receiver_params
                .iter()
                .filter(|(k, _)| *k == i)
                .map(|(_, p)| p.as_str()),
        );
        join_params(
            format!("mcast://{}?iface={}", self.group, hftnet_lab::DEFAULT_IFACE),
            &extra,
        )
    }
}

fn join_params(mut uri: String, extra: &[&str]) -> String {
    for p in extra {
        let p = p.trim_start_matches(['?', '&']);
        if !p.is_empty() {
            uri.push('&');
            uri.push_str(p);
        }
    }
    uri
}

/// Builds a [`Star`] for `lab`, opens the sender and every receiver in their
/// namespaces, runs [`run_fanout`] and removes the lab (also on an error or
/// a panic).
///
/// # Errors
/// [`FanoutError::Config`] for a bad configuration (checked first, before
/// anything is built), [`FanoutError::Lab`] when the star cannot be built
/// (not root, no bridge driver), [`FanoutError::Uri`] / [`FanoutError::Open`]
/// naming the end and URI that failed, and the errors of [`run_fanout`].
pub fn run_in_lab(
    lab: &LabFanout,
    cfg: &FanoutConfig,
    clock: Clock,
    stop: &AtomicBool,
) -> Result<FanoutOutcome, FanoutError> {
    if lab.receivers == 0 || lab.receivers > MAX_RECEIVERS {
        return Err(FanoutConfigError::Receivers(lab.receivers).into());
    }
    let per_receiver = lab
        .receiver_params
        .iter()
        .map(|(i, _)| ("--rx-param", *i))
        .chain(lab.join_late.iter().map(|(i, _)| ("--join-late", *i)));
    for (what, index) in per_receiver {
        if index >= lab.receivers {
            return Err(FanoutConfigError::NoSuchReceiver {
                what,
                index,
                receivers: lab.receivers,
            }
            .into());
        }
    }
    let parse = |who: &str, uri: &str| {
        Endpoint::parse(uri).map_err(|source| FanoutError::Uri {
            who: who.to_owned(),
            source: Box::new(source),
        })
    };
    let tx_uri = lab.sender_uri();
    let tx_ep = parse("sender", &tx_uri)?;
    cfg.validate(tx_ep.max_message())?;
    let rx_eps = (0..lab.receivers)
        .map(|i| {
            let uri = lab.receiver_uri(i);
            parse(&hftnet_lab::receiver_role(i), &uri).map(|e| (uri, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let hosts = match lab.placement {
        Placement::Namespaces => lab.receivers,
        Placement::Sockets => 1,
    };
    let star = Star::build(None, hosts)?;
    let open = |host: &hftnet_lab::Host, who: String, uri: &str, ep: &Endpoint, role| {
        host.run(|| ep.open(role))?
            .map_err(|source| FanoutError::Open {
                who,
                uri: uri.to_owned(),
                source: Box::new(source),
            })
    };
    let mut sender = open(
        star.sender(),
        "sender".into(),
        &tx_uri,
        &tx_ep,
        Role::Client,
    )?;
    let mut receivers = Vec::with_capacity(lab.receivers);
    for (i, (uri, ep)) in rx_eps.iter().enumerate() {
        let host = &star.receivers()[i % hosts];
        let name = hftnet_lab::receiver_role(i);
        let late = lab.join_late.iter().find(|(k, _)| *k == i).map(|&(_, s)| s);
        let transport = match late {
            None => Join::Now(open(host, name.clone(), uri, ep, Role::Server)?),
            Some(seq) => {
                let who = name.clone();
                Join::After {
                    seq,
                    open: Box::new(move || open(host, who, uri, ep, Role::Server)),
                }
            }
        };
        receivers.push(Receiver {
            name,
            netns: Some(host.netns().to_owned()),
            transport,
        });
    }
    let out = hftnet_io::dispatch!(&mut sender, tx => run_fanout(tx, receivers, cfg, clock, stop));
    drop(sender);
    drop(star);
    out
}

/// The report of a lab fanout run: the JSON object `hftnet fanout --json`
/// prints (fields are added, never renamed), and the `# key: value` lines
/// around the table otherwise. Latency fields say `one_way_ns`.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutReport {
    /// Always `mcast`.
    pub transport: &'static str,
    /// Group and port.
    pub group: String,
    /// `namespaces` or `sockets`.
    pub placement: Placement,
    /// The sender's URI.
    pub sender_uri: String,
    /// Each receiver's URI, in order.
    pub receiver_uris: Vec<String>,
    /// Bytes per message.
    pub message_bytes: usize,
    /// Fixed send rate, messages per second.
    pub rate_pps: u64,
    /// Warm-up messages asked for (sent first, counted apart).
    pub warmup: u64,
    /// `tsc` or `monotonic`: the one clock both ends read.
    pub clock: String,
    /// Why the TSC was not used, if it was not.
    pub clock_note: Option<String>,
    /// What `one_way_ns` means and when it holds ([`ONE_WAY_NOTE`]).
    pub one_way_note: &'static str,
    /// Counters of the sender and of every receiver.
    #[serde(flatten)]
    pub outcome: FanoutOutcome,
    /// Max − min of each one-way percentile across receivers, ns.
    pub spread_one_way_ns: Option<Spread>,
    /// The receiver with the highest one-way p99.
    pub slowest: Option<String>,
    /// The receiver with the lowest one-way p99.
    pub fastest: Option<String>,
    /// Every receiver got every measured message once, with no send errors.
    pub clean: bool,
    /// Where it ran.
    pub environment: Environment,
}

impl FanoutReport {
    /// The report of `out`, a run of `lab` with `cfg` on `clock`.
    #[must_use]
    pub fn new(lab: &LabFanout, cfg: &FanoutConfig, out: FanoutOutcome, clock: &Clock) -> Self {
        Self {
            transport: "mcast",
            group: lab.group.to_string(),
            placement: lab.placement,
            sender_uri: lab.sender_uri(),
            receiver_uris: (0..lab.receivers).map(|i| lab.receiver_uri(i)).collect(),
            message_bytes: cfg.size,
            rate_pps: cfg.rate,
            warmup: cfg.warmup,
            clock: clock.kind().to_string(),
            clock_note: clock.fallback_reason().map(str::to_owned),
            one_way_note: ONE_WAY_NOTE,
            spread_one_way_ns: out.spread(),
            slowest: out.slowest().map(|r| r.name.clone()),
            fastest: out.fastest().map(|r| r.name.clone()),
            clean: out.is_clean(),
            outcome: out,
            environment: Environment::capture(),
        }
    }

    /// The run's configuration and environment as `# key: value` pairs.
    #[must_use]
    pub fn header_lines(&self) -> Vec<(String, String)> {
        let where_ = match self.placement {
            Placement::Namespaces => "each receiver in its own network namespace, on a bridge",
            Placement::Sockets => "every receiver a socket of its own in one network namespace",
        };
        let mut v = vec![
            ("transport".into(), self.transport.into()),
            ("group".into(), self.group.clone()),
            (
                "receivers".into(),
                format!("{} ({where_})", self.receiver_uris.len()),
            ),
            ("sender_uri".into(), self.sender_uri.clone()),
        ];
        for (i, u) in self.receiver_uris.iter().enumerate() {
            v.push((format!("rx{i}_uri"), u.clone()));
        }
        v.extend([
            ("message_bytes".into(), self.message_bytes.to_string()),
            ("rate_pps".into(), self.rate_pps.to_string()),
            ("warmup".into(), self.warmup.to_string()),
            ("clock".into(), self.clock.clone()),
        ]);
        if let Some(n) = &self.clock_note {
            v.push(("clock_note".into(), n.clone()));
        }
        v.extend(self.environment.lines());
        v
    }

    /// The sender's counters, the spread, the slowest receiver and the
    /// notes, as `# key: value` pairs (after the table).
    #[must_use]
    pub fn result_lines(&self) -> Vec<(String, String)> {
        let o = &self.outcome;
        let mut v = vec![
            ("sent".into(), o.sent.to_string()),
            ("warmup_sent".into(), o.warmup_sent.to_string()),
            ("send_errors".into(), o.send_errors.to_string()),
            ("behind_max_ns".into(), o.behind_max_ns.to_string()),
            ("duration_s".into(), format!("{:.3}", o.duration_s)),
        ];
        if let Some(e) = &o.first_send_error {
            v.push(("first_send_error".into(), e.clone()));
        }
        if let Some(a) = &o.aborted {
            v.push(("aborted".into(), a.clone()));
        }
        for r in &o.receivers {
            let mut extra = Vec::new();
            if let Some(d) = r.injected_drops {
                extra.push(format!(
                    "{d} dropped by its fault layer (part of lost, warm-up included)"
                ));
            }
            if let Some(j) = r.joined_at_seq {
                extra.push(format!("joined late, when {j} probes had been sent"));
            }
            if r.stats.first_seq.is_some_and(|f| f > 0) {
                extra.push(format!(
                    "first probe received: #{}",
                    r.stats.first_seq.unwrap_or(0)
                ));
            }
            if r.stats.one_way.is_empty() {
                // Out of the spread and of slowest/fastest, which compare
                // receivers that measured something: named here.
                extra.push("silent: no measured probe received".into());
            }
            for (n, what) in [
                (r.stats.stale, "stale"),
                (r.stats.foreign, "foreign"),
                (r.corrupted, "corrupted"),
                (r.truncated, "truncated"),
                (r.recv_errors, "receive errors"),
            ] {
                if n > 0 {
                    extra.push(format!("{n} {what}"));
                }
            }
            if !extra.is_empty() {
                v.push((r.name.clone(), extra.join("; ")));
            }
        }
        if let Some(s) = &self.slowest {
            v.push(("slowest".into(), format!("{s} (highest one-way p99)")));
        }
        if let Some(f) = &self.fastest {
            v.push(("fastest".into(), format!("{f} (lowest one-way p99)")));
        }
        v.push((
            "spread_note".into(),
            "spread = highest minus lowest value of each percentile across receivers".into(),
        ));
        v.push(("one_way_note".into(), self.one_way_note.into()));
        v.push((
            "result".into(),
            if self.clean {
                "clean: every receiver got every message once".into()
            } else {
                "NOT clean: loss, duplicates, corruption or send errors (see the table)".into()
            },
        ));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_arrivals_count_once() {
        let mut a = RxAccount::new(2);
        for seq in 0..10 {
            let want = if seq < 2 {
                Arrival::Warmup
            } else {
                Arrival::Counted
            };
            assert_eq!(a.on_probe(seq, 1_000 + seq, 10), want, "{seq}");
        }
        assert_eq!(a.distinct(), 10);
        let s = a.finish(8);
        assert_eq!((s.received, s.lost, s.warmup_received), (8, 0, 2));
        assert_eq!(
            (s.duplicated, s.reordered, s.stale, s.foreign),
            (0, 0, 0, 0)
        );
        assert_eq!(s.first_seq, Some(0));
        let sum = s.one_way_ns.unwrap();
        assert_eq!((sum.min, sum.max), (1_002, 1_009));
        assert_eq!(s.one_way.len(), 8);
    }

    #[test]
    fn latency_from_the_send_call_is_recorded_beside_the_schedule() {
        let mut a = RxAccount::new(1);
        assert_eq!(a.on_probe_sent(0, 900, Some(100), 3), Arrival::Warmup);
        assert_eq!(a.on_probe_sent(1, 5_000, Some(300), 3), Arrival::Counted);
        assert_eq!(a.on_probe_sent(1, 5_000, Some(300), 3), Arrival::Duplicate);
        assert_eq!(a.on_probe_sent(2, 7_000, None, 3), Arrival::Counted);
        let s = a.finish(2);
        assert_eq!((s.one_way.len(), s.from_send.len()), (2, 1));
        assert_eq!(s.one_way_from_send_ns.unwrap().max, 300);
        assert!(
            s.one_way_ns.unwrap().max.abs_diff(7_000) <= 7,
            "3 significant digits"
        );
    }

    #[test]
    fn gaps_are_lost_and_sent_is_received_plus_lost() {
        let mut a = RxAccount::new(0);
        // 0..100 with every 7th missing, and the last 5 never arriving.
        for seq in (0..95).filter(|s| s % 7 != 3) {
            assert_eq!(a.on_probe(seq, 10, 100), Arrival::Counted);
        }
        let s = a.finish(100);
        let missing = (0..95).filter(|s| s % 7 == 3).count() as u64 + 5;
        assert_eq!(s.lost, missing);
        assert_eq!(s.received + s.lost, 100);
        assert_eq!(s.reordered, 0);
    }

    #[test]
    fn duplicates_and_reordering_are_counted_apart() {
        let mut a = RxAccount::new(0);
        let arrivals = [0, 1, 3, 2, 2, 4, 1, 6, 5, 7];
        let got: Vec<Arrival> = arrivals.iter().map(|&s| a.on_probe(s, 5, 8)).collect();
        use Arrival::*;
        assert_eq!(
            got,
            [
                Counted, Counted, Counted, Counted, Duplicate, Counted, Duplicate, Counted,
                Counted, Counted
            ]
        );
        let s = a.finish(8);
        // 2 after 3, and 5 after 6: two reordered; 2 and 1 again: two duplicates.
        assert_eq!(
            (s.received, s.lost, s.duplicated, s.reordered),
            (8, 0, 2, 2)
        );
        assert_eq!(s.one_way.len(), 8, "duplicates are not measured twice");
    }

    #[test]
    fn late_joiner_first_seq_and_foreign_and_stale() {
        let mut a = RxAccount::new(10);
        // Joined at 40 of 100 sent; one probe from a future the sender had
        // not reached (another run's), one non-probe.
        for seq in 40..100 {
            a.on_probe(seq, 1, 100);
        }
        assert_eq!(a.on_probe(100, 1, 100), Arrival::Foreign);
        a.on_foreign();
        let s = a.finish(90);
        assert_eq!(s.first_seq, Some(40));
        assert_eq!((s.received, s.lost, s.foreign), (60, 30, 2));

        let mut b = RxAccount::new(0);
        let far = RxAccount::WINDOW + 5;
        assert_eq!(b.on_probe(far, 1, far + 1), Arrival::Counted);
        assert_eq!(b.on_probe(1, 1, far + 1), Arrival::Stale);
        let s = b.finish(far + 1);
        assert_eq!((s.received, s.stale, s.lost), (1, 1, far));
    }

    fn outcome(sums: &[(&str, Option<Summary>, u64)]) -> FanoutOutcome {
        FanoutOutcome {
            sent: 100,
            warmup_sent: 0,
            send_errors: 0,
            first_send_error: None,
            behind_max_ns: 0,
            duration_s: 1.0,
            aborted: None,
            receivers: sums
                .iter()
                .map(|(name, s, lost)| ReceiverOutcome {
                    name: (*name).into(),
                    netns: None,
                    stats: ReceiverStats {
                        received: 100 - lost,
                        lost: *lost,
                        duplicated: 0,
                        reordered: 0,
                        stale: 0,
                        foreign: 0,
                        warmup_received: 0,
                        first_seq: Some(0),
                        one_way_ns: *s,
                        one_way: LatencyStats::new(),
                        one_way_from_send_ns: None,
                        from_send: LatencyStats::new(),
                    },
                    truncated: 0,
                    corrupted: 0,
                    recv_errors: 0,
                    first_error: None,
                    injected_drops: None,
                    joined_at_seq: None,
                })
                .collect(),
        }
    }

    fn sum(p50: u64, p99: u64, max: u64) -> Option<Summary> {
        Some(Summary {
            p50,
            p90: p50 + 10,
            p99,
            p99_9: p99 + 1,
            max,
            ..Summary::default()
        })
    }

    #[test]
    fn spread_and_slowest() {
        let o = outcome(&[
            ("rx0", sum(5_000, 9_000, 20_000), 0),
            ("rx1", sum(7_000, 30_000, 40_000), 0),
            ("rx2", None, 100),
            ("rx3", sum(4_000, 8_000, 90_000), 0),
        ]);
        let sp = o.spread().unwrap();
        assert_eq!(
            sp,
            Spread {
                p50: 3_000,
                p90: 3_000,
                p99: 22_000,
                p99_9: 22_000,
                max: 70_000
            }
        );
        assert_eq!(o.slowest().unwrap().name, "rx1");
        assert_eq!(o.fastest().unwrap().name, "rx3");
        assert!(!o.is_clean(), "rx2 lost everything");
        assert!(!o.all_silent());
        let t = o.table();
        assert!(t.lines().nth(3).unwrap().starts_with("rx2 "), "{t}");
        assert!(t.contains(" - "), "{t}");
        assert!(t.lines().last().unwrap().starts_with("spread"), "{t}");
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["receivers"][1]["one_way_ns"]["p99"], 30_000);
        assert_eq!(json["receivers"][2]["one_way_ns"], serde_json::Value::Null);
        assert_eq!(json["receivers"][2]["lost"], 100);

        let silent = outcome(&[("rx0", None, 100)]);
        assert!(silent.spread().is_none() && silent.slowest().is_none());
        assert!(silent.all_silent());
        assert!(outcome(&[("rx0", sum(1, 2, 3), 0)]).is_clean());
    }

    #[test]
    fn config_and_uris() {
        let c = FanoutConfig::default();
        assert!(c.validate(65_507).is_ok());
        let bad = |f: fn(&mut FanoutConfig)| {
            let mut c = FanoutConfig::default();
            f(&mut c);
            c.validate(1000).unwrap_err()
        };
        assert!(matches!(
            bad(|c| c.size = 8),
            FanoutConfigError::Size { .. }
        ));
        assert_eq!(
            bad(|c| {
                c.count = None;
                c.duration = None;
            }),
            FanoutConfigError::Unbounded
        );
        assert_eq!(bad(|c| c.count = Some(0)), FanoutConfigError::Empty);
        assert_eq!(bad(|c| c.rate = 0), FanoutConfigError::ZeroRate);
        assert_eq!(
            bad(|c| c.warmup = u64::MAX),
            FanoutConfigError::Warmup(u64::MAX)
        );
        assert!(
            FanoutConfigError::Receivers(99)
                .to_string()
                .contains("use 1 to 16")
        );

        let mut l = LabFanout::new(3);
        l.rx_params = "rx=spin".into();
        l.receiver_params = vec![(1, "?loss=0.1&faults_on=rx".into())];
        assert_eq!(l.sender_uri(), "mcast://239.1.1.1:9400?iface=br0");
        assert_eq!(
            l.receiver_uri(0),
            "mcast://239.1.1.1:9400?iface=veth0&rx=spin"
        );
        assert_eq!(
            l.receiver_uri(1),
            "mcast://239.1.1.1:9400?iface=veth0&rx=spin&loss=0.1&faults_on=rx"
        );
        for i in 0..3 {
            Endpoint::parse(&l.receiver_uri(i)).unwrap();
        }
        let stop = AtomicBool::new(false);
        let err = run_in_lab(
            &LabFanout::new(17),
            &FanoutConfig::default(),
            Clock::monotonic(),
            &stop,
        )
        .unwrap_err();
        assert!(err.to_string().contains("17 receivers"), "{err}");
    }
}
