//! The ping-pong harness: a client that times round trips of probes, closed
//! loop (one in flight) or fixed rate (sent on a timetable), and an echo server
//! that returns every message byte for byte.
//!
//! Layer: above `hftnet-io`; generic over [`Transport`] so each backend gets
//! its own monomorphised loop. Invariants: after the buffers are allocated at
//! the start, neither loop allocates, locks or logs per message (a test with a
//! counting allocator checks it); every loop is bounded by a count, a duration
//! or a stop flag; every reply is classified — measured, duplicate, late,
//! foreign or truncated — and none is silently ignored.
//!
//! Honesty rules (DESIGN.md): warm-up probes are sent first and counted apart;
//! latency is the full round trip; in fixed-rate mode the probe carries its
//! *scheduled* send time and the round trip is measured from it, so a stalled
//! sender cannot hide the stall (coordinated omission).
//!
//! Two message formats ([`Protocol`]): hftnet's own probe, and sockperf's
//! header, so that ping measures against a `sockperf server` and pong
//! answers sockperf's clients. sockperf's header has no room for a send
//! stamp: ping keeps each probe's stamp in a table by sequence number,
//! allocated with the other buffers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hftnet_io::transport::{TxStamp, TxStampKind};
use hftnet_io::{Lease, RxBurst, SyscallError, Transport, TxLease};
use hftnet_wire::{probe, sockperf};

use crate::clock::{Clock, realtime_ns};
use crate::stats::LatencyStats;
use crate::timetable::Timetable;

/// The message format ping sends and pong answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// hftnet's probe ([`probe`]); pong echoes every message byte for byte.
    #[default]
    Hftnet,
    /// sockperf's header ([`sockperf`]): ping sends `CLIENT | PONG`
    /// messages and matches replies (`CLIENT` cleared) by sequence number;
    /// pong answers only the messages that ask for it, as sockperf's server.
    Sockperf,
}

impl Protocol {
    /// The smallest message of this format: its header.
    #[must_use]
    pub const fn header_len(self) -> usize {
        match self {
            Self::Hftnet => probe::HEADER_LEN,
            Self::Sockperf => sockperf::HEADER_LEN,
        }
    }

    /// The name the command line and reports use.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hftnet => "hftnet",
            Self::Sockperf => "sockperf",
        }
    }
}

/// How a ping run is bounded and paced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// Bytes per message, header included (at least the protocol's header:
    /// [`Protocol::header_len`]).
    pub size: usize,
    /// Measured round trips to attempt (after warm-up). With `duration` too,
    /// whichever ends first.
    pub count: Option<u64>,
    /// Time to run the measured part.
    pub duration: Option<Duration>,
    /// Probes sent first and not measured.
    pub warmup: u64,
    /// Fixed rate in probes per second; `None` for closed loop.
    pub rate: Option<u64>,
    /// How long to wait for a reply before counting it missing.
    pub reply_timeout: Duration,
    /// Consecutive missing replies after which the peer is declared unreachable
    /// and the run stops.
    pub give_up_after: u32,
    /// The message format.
    pub protocol: Protocol,
}

impl Default for PingConfig {
    fn default() -> Self {
        Self {
            size: 64,
            count: Some(100_000),
            duration: None,
            warmup: 10_000,
            rate: None,
            reply_timeout: Duration::from_secs(1),
            give_up_after: 3,
            protocol: Protocol::Hftnet,
        }
    }
}

/// Why a ping configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingConfigError {
    /// Too small for the protocol's header, or larger than the transport carries.
    #[error("message size {size} is outside {min}..={max} bytes for this transport")]
    Size {
        /// Asked size.
        size: usize,
        /// Smallest allowed (the protocol's header).
        min: usize,
        /// Largest the transport carries.
        max: usize,
    },
    /// Neither a count nor a duration bounds the run.
    #[error("a ping run needs --count or --duration")]
    Unbounded,
    /// A count or duration of zero: nothing would be measured.
    #[error("--count and --duration must be more than zero")]
    Empty,
    /// A reply timeout of zero would count every probe lost.
    #[error("--timeout must be more than zero")]
    ZeroTimeout,
    /// A rate of zero.
    #[error("--rate must be at least 1 probe per second")]
    ZeroRate,
}

impl PingConfig {
    /// Checks the configuration against a transport's largest message.
    ///
    /// # Errors
    /// [`PingConfigError`] naming the problem.
    pub fn validate(&self, max_message: usize) -> Result<(), PingConfigError> {
        let min = self.protocol.header_len();
        if self.size < min || self.size > max_message {
            return Err(PingConfigError::Size {
                size: self.size,
                min,
                max: max_message,
            });
        }
        if self.count.is_none() && self.duration.is_none() {
            return Err(PingConfigError::Unbounded);
        }
        if self.count == Some(0) || self.duration.is_some_and(|d| d.is_zero()) {
            return Err(PingConfigError::Empty);
        }
        if self.reply_timeout.is_zero() {
            return Err(PingConfigError::ZeroTimeout);
        }
        if self.rate == Some(0) {
            return Err(PingConfigError::ZeroRate);
        }
        Ok(())
    }
}

/// Everything a ping run counted.
#[derive(Debug, Clone, Default)]
pub struct PingOutcome {
    /// Round trips of measured probes, in ns.
    pub rtt: LatencyStats,
    /// Measured probes sent.
    pub sent: u64,
    /// Warm-up probes sent.
    pub warmup_sent: u64,
    /// Distinct measured probes whose reply arrived.
    pub received: u64,
    /// Measured probes never answered: `sent - received`.
    pub lost: u64,
    /// Replies for a probe already answered.
    pub duplicated: u64,
    /// Replies that arrived after a later probe's reply (out of order).
    pub reordered: u64,
    /// Replies whose round trip exceeded the reply timeout: in closed loop,
    /// they came after ping stopped waiting for them. They count as received
    /// (not lost) and their true round trip is in the histogram.
    pub late: u64,
    /// Replies with this run's header whose padding came back changed.
    pub corrupted: u64,
    /// Messages that were not probes of this run (wrong magic, wrong size, unknown sequence).
    pub foreign: u64,
    /// Messages larger than the receive slot.
    pub truncated: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
    /// Receives that failed (e.g. ICMP port unreachable on a connected socket).
    pub recv_errors: u64,
    /// The first error seen, in words.
    pub first_error: Option<String>,
    /// Set when the run stopped early because the peer stopped answering.
    pub aborted: Option<String>,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Where each round trip's time went, from kernel timestamps; only from
    /// [`run_ping_timestamps_until`].
    pub breakdown: Option<Breakdown>,
}

/// Each measured round trip split at the kernel's timestamps. Every part is
/// a difference of two CLOCK_REALTIME readings on this host (kernel software
/// stamps and `clock_gettime(CLOCK_REALTIME)` around the user-space calls),
/// never mixed with the TSC.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    /// User space before `send` → the kernel's `SND` stamp (driver hands the
    /// packet to the device).
    pub send_to_tx: LatencyStats,
    /// Our `SND` stamp → our kernel's software receive stamp of the reply:
    /// the wire, the peer and its kernel, both ways.
    pub tx_to_rx: LatencyStats,
    /// Kernel receive stamp of the reply → user space after the receive returned.
    pub rx_to_user: LatencyStats,
    /// `SCHED` stamp (entering the qdisc) → `SND` stamp.
    pub sched_to_snd: LatencyStats,
    /// Measured round trips without all stamps (the kernel dropped a stamp,
    /// or stamping was not yet on), left out of the parts.
    pub incomplete: u64,
    /// Round trips whose stamps were out of order (a clock step): left out.
    pub disordered: u64,
}

/// Timestamps gathered for one probe, by sequence number.
#[derive(Debug, Clone, Copy, Default)]
struct TsSlot {
    /// Sequence number + 1 (0: empty).
    tag: u64,
    user_send: u64,
    sched: Option<u64>,
    snd: Option<u64>,
    kernel_rx: Option<u64>,
    user_rx: Option<u64>,
    done: bool,
}

/// The timestamp bookkeeping of a run, allocated once.
#[derive(Debug)]
struct TsState {
    /// By `seq % WINDOW`.
    slots: Box<[TsSlot]>,
    /// Sequence number of the datagram with OPT_ID counter `id`, by `id % WINDOW`.
    seq_of_id: Box<[u64]>,
    /// The kernel's OPT_ID counter: datagrams the socket sent.
    next_id: u32,
    warmup: u64,
    out: Breakdown,
}

impl TsState {
    const WINDOW: usize = 4096;

    fn new(warmup: u64) -> Self {
        Self {
            slots: vec![TsSlot::default(); Self::WINDOW].into_boxed_slice(),
            seq_of_id: vec![u64::MAX; Self::WINDOW].into_boxed_slice(),
            next_id: 0,
            warmup,
            out: Breakdown::default(),
        }
    }

    fn slot(&mut self, seq: u64) -> Option<&mut TsSlot> {
        let s = &mut self.slots[(seq % Self::WINDOW as u64) as usize];
        (s.tag == seq + 1).then_some(s)
    }

    /// A probe went to the kernel at `user_send`; it is datagram `next_id`.
    fn sent(&mut self, seq: u64, user_send: u64) {
        self.slots[(seq % Self::WINDOW as u64) as usize] = TsSlot {
            tag: seq + 1,
            user_send,
            ..TsSlot::default()
        };
        self.seq_of_id[self.next_id as usize % Self::WINDOW] = seq;
        self.next_id = self.next_id.wrapping_add(1);
    }

    fn tx_stamp(&mut self, st: TxStamp) {
        let seq = self.seq_of_id[st.id as usize % Self::WINDOW];
        let Some(slot) = self.slot(seq) else { return };
        match st.kind {
            TxStampKind::Sched => slot.sched = st.sw_ns,
            TxStampKind::Snd => slot.snd = st.sw_ns,
            TxStampKind::Ack => return,
        }
        self.complete(seq);
    }

    fn replied(&mut self, seq: u64, kernel_rx: Option<u64>, user_rx: u64) {
        if let Some(slot) = self.slot(seq) {
            slot.kernel_rx = kernel_rx;
            slot.user_rx = Some(user_rx);
            self.complete(seq);
        }
    }

    /// Records the parts once every stamp of `seq` is in.
    fn complete(&mut self, seq: u64) {
        let warmup = self.warmup;
        let Some(s) = self.slot(seq) else { return };
        let (Some(snd), Some(krx), Some(urx)) = (s.snd, s.kernel_rx, s.user_rx) else {
            return;
        };
        if s.done {
            return;
        }
        s.done = true;
        let (user_send, sched) = (s.user_send, s.sched);
        if seq < warmup {
            return;
        }
        if !(user_send <= snd && snd <= krx && krx <= urx) || sched.is_some_and(|x| x > snd) {
            self.out.disordered += 1;
            return;
        }
        self.out.send_to_tx.record(snd - user_send);
        self.out.tx_to_rx.record(krx - snd);
        self.out.rx_to_user.record(urx - krx);
        if let Some(x) = sched {
            self.out.sched_to_snd.record(snd - x);
        }
    }
}

/// Remembers which sequence numbers were answered, over a sliding window.
#[derive(Debug)]
pub(crate) struct Seen {
    bits: Box<[u64]>,
    /// Highest sequence number answered, plus one (0: none yet).
    top: u64,
}

impl Seen {
    pub(crate) const WINDOW: u64 = 1 << 16;

    pub(crate) fn new() -> Self {
        Self {
            bits: vec![0; (Self::WINDOW / 64) as usize].into_boxed_slice(),
            top: 0,
        }
    }

    /// Marks `seq`; returns `None` for a sequence number too old to judge,
    /// `Some(true)` when it was already marked.
    pub(crate) fn mark(&mut self, seq: u64) -> Option<bool> {
        if seq + Self::WINDOW <= self.top {
            return None;
        }
        // A jump past the whole window (a long gap, a late join) clears it
        // at once instead of slot by slot.
        if seq >= self.top + Self::WINDOW {
            self.bits.fill(0);
            self.top = seq;
        }
        // Clear the slots the window slides over.
        while self.top <= seq {
            let i = self.top % Self::WINDOW;
            self.bits[(i / 64) as usize] &= !(1 << (i % 64));
            self.top += 1;
        }
        let i = seq % Self::WINDOW;
        let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
        let was = self.bits[w] & b != 0;
        self.bits[w] |= b;
        Some(was)
    }
}

/// Send stamps of sockperf probes, whose header has no room for one: by
/// `seq % WINDOW`, tagged with the sequence number.
#[derive(Debug)]
struct Stamps {
    /// (sequence number + 1 (0: empty), stamp).
    slots: Box<[(u64, u64)]>,
}

impl Stamps {
    const WINDOW: u64 = Seen::WINDOW;

    fn new() -> Self {
        Self {
            slots: vec![(0, 0); Self::WINDOW as usize].into_boxed_slice(),
        }
    }

    fn sent(&mut self, seq: u64, stamp: u64) {
        self.slots[(seq % Self::WINDOW) as usize] = (seq + 1, stamp);
    }

    /// The stamp of `seq`; `None` once a later probe took its slot.
    fn get(&self, seq: u64) -> Option<u64> {
        let (tag, stamp) = self.slots[(seq % Self::WINDOW) as usize];
        (tag == seq + 1).then_some(stamp)
    }
}

/// Why a received message is not a reply to this run.
enum Reject {
    /// Not a probe of this run.
    Foreign,
    /// This run's header, changed padding.
    Corrupted,
}

/// State of one run, shared by the closed-loop and fixed-rate drivers.
struct Run<'a, T: Transport> {
    t: &'a mut T,
    stop: &'a AtomicBool,
    clock: Clock,
    cfg: &'a PingConfig,
    tx: Vec<u8>,
    burst: RxBurst,
    seen: Seen,
    out: PingOutcome,
    /// Highest sequence number answered so far, for reordering.
    highest: Option<u64>,
    /// Sequence number of the next probe; anything at or above it was never sent.
    next_seq: u64,
    /// The reply timeout in ns, for telling late replies.
    reply_timeout_ns: u64,
    /// Timestamp bookkeeping, with [`run_ping_timestamps_until`].
    ts: Option<TsState>,
    /// Send stamps, for [`Protocol::Sockperf`].
    stamps: Option<Stamps>,
}

impl<T: Transport> Run<'_, T> {
    fn send_probe(&mut self, seq: u64, stamp: u64) {
        self.next_seq = seq + 1;
        match self.cfg.protocol {
            Protocol::Hftnet => {
                probe::fill_padding(seq, &mut self.tx);
                probe::Repr { seq, stamp }
                    .emit(&mut probe::Packet::new_unchecked(&mut self.tx[..]));
            }
            Protocol::Sockperf => {
                probe::fill_padding_after(sockperf::HEADER_LEN, seq, &mut self.tx);
                sockperf::Repr {
                    seq,
                    flags: sockperf::Flags::CLIENT.with(sockperf::Flags::PONG),
                    // validate() bounds the size by the transport's largest message.
                    length: u32::try_from(self.tx.len()).unwrap_or(u32::MAX),
                }
                .emit(&mut sockperf::Packet::new_unchecked(&mut self.tx[..]));
                if let Some(st) = self.stamps.as_mut() {
                    st.sent(seq, stamp);
                }
            }
        }
        let user_send = if self.ts.is_some() { realtime_ns() } else { 0 };
        match self.t.send(&self.tx, None) {
            Ok(()) => {
                if let Some(ts) = self.ts.as_mut() {
                    ts.sent(seq, user_send);
                }
            }
            Err(e) => {
                self.out.send_errors += 1;
                self.note_error(&e);
            }
        }
    }

    /// Takes the transmit stamps waiting in the kernel.
    fn drain_tx_stamps(&mut self) {
        let Self { t, ts, .. } = self;
        if let Some(ts) = ts.as_mut() {
            let res = t.tx_timestamps(&mut |st| ts.tx_stamp(st));
            if let Err(e) = res {
                self.out.recv_errors += 1;
                self.note_error(&e);
            }
        }
    }

    #[cold]
    fn note_error(&mut self, e: &SyscallError) {
        if self.out.first_error.is_none() {
            self.out.first_error = Some(e.to_string());
        }
        // A connection reset, closed or never made: no reply can come any
        // more, so stop now and say why (a connected stream's peer is gone).
        if self.out.aborted.is_none()
            && matches!(
                e.io_error.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::NotConnected
            )
        {
            self.out.aborted = Some(format!("the connection is gone: {e}"));
        }
    }

    /// Why the peer is declared unreachable, with the first error seen.
    #[cold]
    fn silent(&self, what: String) -> String {
        match &self.out.first_error {
            Some(e) => format!("{what} (first error: {e})"),
            None => what,
        }
    }

    /// Receives once (waiting per the transport's strategy and timeout) and
    /// classifies what came. Returns the sequence numbers answered, via `on_reply`.
    fn receive(&mut self, deadline: Option<Instant>, mut on_reply: impl FnMut(u64)) -> usize {
        let got = match deadline {
            None => self.t.recv_burst(&mut self.burst),
            Some(d) => self.t.recv_burst_until(&mut self.burst, d),
        };
        let n = match got {
            Ok(n) => n,
            Err(e) => {
                self.out.recv_errors += 1;
                self.note_error(&e);
                // Do not spin on a persistent error.
                std::thread::sleep(Duration::from_millis(1));
                return 0;
            }
        };
        let now = self.clock.now();
        let user_rx = if self.ts.is_some() {
            let t = realtime_ns();
            self.drain_tx_stamps();
            t
        } else {
            0
        };
        for i in 0..n {
            let (data, meta) = self.burst.get(i);
            if meta.truncated {
                self.out.truncated += 1;
                continue;
            }
            let (seq, in_message) = match self.decode(data) {
                Ok(x) => x,
                Err(Reject::Foreign) => {
                    self.out.foreign += 1;
                    continue;
                }
                Err(Reject::Corrupted) => {
                    self.out.corrupted += 1;
                    continue;
                }
            };
            match self.seen.mark(seq) {
                Some(true) => {
                    self.out.duplicated += 1;
                    continue;
                }
                None => {
                    // Older than the window: cannot tell duplicate from late.
                    self.out.late += 1;
                    continue;
                }
                Some(false) => {}
            }
            let stamp = match (in_message, self.stamps.as_ref()) {
                (Some(s), _) => s,
                (None, Some(st)) => match st.get(seq) {
                    Some(s) => s,
                    None => {
                        // A window of later probes sent since: too old to time.
                        self.out.late += 1;
                        continue;
                    }
                },
                (None, None) => {
                    self.out.foreign += 1;
                    continue;
                }
            };
            if self.highest.is_some_and(|h| seq < h) {
                self.out.reordered += 1;
            } else {
                self.highest = Some(seq);
            }
            let rtt = self.clock.ns_between(stamp, now);
            if rtt > self.reply_timeout_ns {
                self.out.late += 1;
            }
            if seq >= self.cfg.warmup {
                self.out.received += 1;
                self.out.rtt.record(rtt);
            }
            let kernel_rx = meta.rx_ts_ns;
            if let Some(ts) = self.ts.as_mut() {
                ts.replied(seq, kernel_rx, user_rx);
            }
            on_reply(seq);
        }
        n
    }

    /// Reads a reply of this run: its sequence number, and its send stamp
    /// when the message carries one (hftnet's probe does, sockperf's
    /// header does not).
    #[inline]
    fn decode(&self, data: &[u8]) -> Result<(u64, Option<u64>), Reject> {
        if data.len() != self.cfg.size {
            return Err(Reject::Foreign);
        }
        let (seq, stamp, header) = match self.cfg.protocol {
            Protocol::Hftnet => {
                let p = probe::Packet::new_checked(data).map_err(|_| Reject::Foreign)?;
                let r = probe::Repr::parse(&p).map_err(|_| Reject::Foreign)?;
                (r.seq, Some(r.stamp), probe::HEADER_LEN)
            }
            Protocol::Sockperf => {
                let r = sockperf::Repr::parse_datagram(data).map_err(|_| Reject::Foreign)?;
                // Our own message looped back (a multicast group) is no reply.
                if r.flags.contains(sockperf::Flags::CLIENT) {
                    return Err(Reject::Foreign);
                }
                (r.seq, None, sockperf::HEADER_LEN)
            }
        };
        if seq >= self.next_seq {
            return Err(Reject::Foreign);
        }
        if !probe::padding_ok_after(header, seq, data) {
            return Err(Reject::Corrupted);
        }
        Ok((seq, stamp))
    }
}

/// Runs ping over `t`: warm-up, then measured probes, closed loop or at a fixed rate.
///
/// The transport's receive timeout is set from the configuration.
///
/// # Errors
/// Only when the receive timeout cannot be set; failures of individual sends
/// and receives are counted in the outcome.
pub fn run_ping<T: Transport>(
    t: &mut T,
    cfg: &PingConfig,
    clock: Clock,
) -> Result<PingOutcome, SyscallError> {
    run_ping_until(t, cfg, clock, &AtomicBool::new(false))
}

/// [`run_ping`] that also ends, with what it measured so far, when `stop` is
/// set (e.g. by a signal handler); [`PingOutcome::aborted`] then says so.
///
/// # Errors
/// As [`run_ping`].
pub fn run_ping_until<T: Transport>(
    t: &mut T,
    cfg: &PingConfig,
    clock: Clock,
    stop: &AtomicBool,
) -> Result<PingOutcome, SyscallError> {
    ping(t, cfg, clock, stop, false)
}

/// [`run_ping_until`] that also splits each round trip at the kernel's
/// timestamps into [`PingOutcome::breakdown`]: user send → `SND` stamp,
/// `SND` → receive stamp of the reply, receive stamp → user receive. The
/// transport must have been opened with receive and transmit stamps
/// (`timestamps=rx,tx`); probes are matched to transmit stamps through the
/// socket's OPT_ID counter, so nothing else may send on it during the run.
///
/// # Errors
/// As [`run_ping`].
pub fn run_ping_timestamps_until<T: Transport>(
    t: &mut T,
    cfg: &PingConfig,
    clock: Clock,
    stop: &AtomicBool,
) -> Result<PingOutcome, SyscallError> {
    ping(t, cfg, clock, stop, true)
}

fn ping<T: Transport>(
    t: &mut T,
    cfg: &PingConfig,
    clock: Clock,
    stop: &AtomicBool,
    timestamps: bool,
) -> Result<PingOutcome, SyscallError> {
    if timestamps {
        // Stamps of anything sent before the run would shift the counter.
        t.tx_timestamps(&mut |_| {})?;
    }
    let slot = (cfg.size * 2).max(2048);
    let mut run = Run {
        t,
        stop,
        clock,
        cfg,
        tx: vec![0; cfg.size],
        burst: RxBurst::new(1, slot),
        seen: Seen::new(),
        out: PingOutcome::default(),
        highest: None,
        next_seq: 0,
        reply_timeout_ns: u64::try_from(cfg.reply_timeout.as_nanos()).unwrap_or(u64::MAX),
        ts: timestamps.then(|| TsState::new(cfg.warmup)),
        stamps: (cfg.protocol == Protocol::Sockperf).then(Stamps::new),
    };
    match cfg.rate {
        None => closed_loop(&mut run)?,
        Some(rate) => fixed_rate(&mut run, rate)?,
    }
    if run.ts.is_some() {
        run.drain_tx_stamps();
    }
    let mut out = run.out;
    if let Some(ts) = run.ts {
        let mut b = ts.out;
        b.incomplete = out
            .received
            .saturating_sub(b.send_to_tx.len() + b.disordered);
        out.breakdown = Some(b);
    }
    if stop.load(Ordering::Relaxed) && out.aborted.is_none() {
        out.aborted = Some("interrupted".into());
    }
    out.lost = out.sent.saturating_sub(out.received);
    Ok(out)
}

fn closed_loop<T: Transport>(run: &mut Run<'_, T>) -> Result<(), SyscallError> {
    run.t.set_recv_timeout(Some(run.cfg.reply_timeout))?;
    let mut seq = 0u64;
    let mut missed_in_a_row = 0u32;
    let mut measure_start: Option<Instant> = None;
    while !run.stop.load(Ordering::Relaxed) && run.out.aborted.is_none() {
        let measuring = seq >= run.cfg.warmup;
        if measuring {
            let start = *measure_start.get_or_insert_with(Instant::now);
            if run.cfg.count.is_some_and(|c| run.out.sent >= c)
                || run.cfg.duration.is_some_and(|d| start.elapsed() >= d)
            {
                break;
            }
        }
        let stamp = run.clock.now();
        run.send_probe(seq, stamp);
        if measuring {
            run.out.sent += 1;
        } else {
            run.out.warmup_sent += 1;
        }
        // Wait for this probe's reply; earlier replies arriving now are late.
        let waited = Instant::now();
        let mut answered = false;
        while !answered
            && waited.elapsed() < run.cfg.reply_timeout
            && !run.stop.load(Ordering::Relaxed)
            && run.out.aborted.is_none()
        {
            run.receive(None, |s| answered |= s == seq);
        }
        if answered {
            missed_in_a_row = 0;
        } else {
            missed_in_a_row += 1;
            if missed_in_a_row >= run.cfg.give_up_after && run.out.aborted.is_none() {
                run.out.aborted = Some(run.silent(format!(
                    "no reply to {missed_in_a_row} probes in a row ({} warm-up and {} measured probes sent), each \
                     waited for {:?}: the peer is unreachable or not echoing",
                    run.out.warmup_sent, run.out.sent, run.cfg.reply_timeout
                )));
                break;
            }
        }
        seq += 1;
    }
    run.out.elapsed = measure_start.map_or(Duration::ZERO, |s| s.elapsed());
    Ok(())
}

fn fixed_rate<T: Transport>(run: &mut Run<'_, T>, rate: u64) -> Result<(), SyscallError> {
    // Timed waits may otherwise wake up to 50 µs late (the default timer
    // slack), and every late wake-up delays a send. Best effort: the run is
    // still correct without it, only less punctual.
    let _ = hftnet_sys::sched::set_timer_slack_ns(1);
    // The timetable: probe k is due at start + k / rate. Between sends the
    // loop receives until the next due time exactly, so the harness adds no
    // slack of its own to the round trips it measures from the schedule.
    // There is no catch-up bound: after a stall every probe missed is sent
    // at once, each stamped with its own due time, so the stall shows.
    let Some(timetable) = Timetable::per_second(rate) else {
        return Ok(()); // a rate of 0 is refused by PingConfig::validate
    };
    let start_ticks = run.clock.now();
    let tsc_hz = run.clock.tsc_hz();
    // Scheduled times travel in clock ticks: convert through the clock's rate.
    let ticks_after = |ns: u64| -> u64 {
        match tsc_hz {
            Some(hz) => (u128::from(ns) * u128::from(hz) / 1_000_000_000) as u64,
            None => ns,
        }
    };
    let mut seq = 0u64;
    let mut last_reply = Instant::now();
    let mut measuring_since: Option<Instant> = None;
    let give_up = run.cfg.reply_timeout * run.cfg.give_up_after;
    while !run.stop.load(Ordering::Relaxed) && run.out.aborted.is_none() {
        // Checked before sending too: a send that waits (a full TCP send
        // buffer) keeps every probe overdue, and the peer is silent all the same.
        if last_reply.elapsed() >= give_up {
            run.out.aborted = Some(run.silent(format!(
                "no reply for {:?} while sending at {rate}/s ({} warm-up and {} measured probes sent): the peer is \
                 unreachable or not echoing",
                last_reply.elapsed(),
                run.out.warmup_sent,
                run.out.sent
            )));
            break;
        }
        let done_sending = seq >= run.cfg.warmup
            && (run.cfg.count.is_some_and(|c| run.out.sent >= c)
                || run
                    .cfg
                    .duration
                    .is_some_and(|d| measuring_since.is_some_and(|s| s.elapsed() >= d)));
        if done_sending {
            break;
        }
        // Due on the clock the stamps are read from (a CLOCK_MONOTONIC
        // deadline would drift from the calibrated TSC over a long run); the
        // receive below waits for it as an Instant computed from now.
        let due_ticks = start_ticks + ticks_after(timetable.due_ns(seq));
        let now_ticks = run.clock.now();
        let due = Instant::now() + Duration::from_nanos(run.clock.ns_between(now_ticks, due_ticks));
        if now_ticks >= due_ticks {
            // Stamp with the scheduled time, not the actual one.
            run.send_probe(seq, start_ticks + ticks_after(timetable.due_ns(seq)));
            if seq >= run.cfg.warmup {
                measuring_since.get_or_insert_with(Instant::now);
                run.out.sent += 1;
            } else {
                run.out.warmup_sent += 1;
            }
            seq += 1;
            continue;
        }
        if run.receive(Some(due), |_| {}) > 0 {
            last_reply = Instant::now();
        }
    }
    // Collect replies still in flight, for at most one reply timeout.
    let drain_end = Instant::now() + run.cfg.reply_timeout;
    while run.out.received < run.out.sent
        && Instant::now() < drain_end
        && run.out.aborted.is_none()
        && !run.stop.load(Ordering::Relaxed)
    {
        run.receive(Some(drain_end), |_| {});
    }
    run.out.elapsed = measuring_since.map_or(Duration::ZERO, |s| s.elapsed());
    Ok(())
}

/// How a pong run is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PongConfig {
    /// Stop after this long (`None`: until the stop flag is set).
    pub duration: Option<Duration>,
    /// Messages received per call (1 is lowest latency).
    pub burst: usize,
    /// Largest message echoed whole; larger ones are counted as truncated and not echoed.
    pub max_message: usize,
    /// How often a blocking receive wakes to check the stop flag and duration.
    pub check_every: Duration,
    /// What to answer: everything byte for byte ([`Protocol::Hftnet`]), or
    /// as sockperf's server ([`Protocol::Sockperf`]).
    pub protocol: Protocol,
}

impl Default for PongConfig {
    fn default() -> Self {
        Self {
            duration: None,
            burst: 1,
            max_message: 65_536,
            check_every: Duration::from_millis(50),
            protocol: Protocol::Hftnet,
        }
    }
}

/// What a pong run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PongOutcome {
    /// Messages received.
    pub received: u64,
    /// Messages sent back (answered).
    pub echoed: u64,
    /// Bytes sent back.
    pub bytes: u64,
    /// Messages too large to echo whole (dropped, not echoed in part).
    pub truncated: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
    /// Receives that failed.
    pub recv_errors: u64,
    /// [`Protocol::Sockperf`]: messages whose header could not be read
    /// (shorter than the header, or a length field that is not the
    /// message's length), dropped.
    pub malformed: u64,
    /// [`Protocol::Sockperf`]: warm-up messages (`WARMUP`), not answered.
    pub warmup: u64,
    /// [`Protocol::Sockperf`]: well-formed messages that asked for no
    /// reply (no `PONG` flag: under-load and throughput clients send most
    /// or all of theirs so; or no `CLIENT` flag), not answered.
    pub not_requested: u64,
}

/// Echoes every message back to its sender, byte for byte, until `stop` is
/// set or the duration passes. With [`Protocol::Sockperf`] it answers as
/// sockperf's server does: only a client's message that asks for a reply
/// (`CLIENT | PONG`, not `WARMUP`), with the same bytes and `CLIENT`
/// cleared; the others are counted by kind ([`PongOutcome`]).
///
/// It receives through the lease API: on ring transports (AF_PACKET,
/// AF_XDP, in-process queues) each message is read where it landed and
/// written straight into a transmit slot, one copy in all; kernel sockets
/// lend from their own buffer. Messages larger than `cfg.max_message` are
/// counted as truncated and not echoed.
///
/// # Errors
/// When the receive timeout cannot be set.
pub fn run_pong<T: Lease>(
    t: &mut T,
    cfg: &PongConfig,
    stop: &AtomicBool,
) -> Result<PongOutcome, SyscallError> {
    t.set_recv_timeout(Some(cfg.check_every))?;
    let mut out = PongOutcome::default();
    let start = Instant::now();
    let burst = cfg.burst.max(1);
    let max = cfg.max_message;
    let protocol = cfg.protocol;
    while !stop.load(Ordering::Relaxed) && cfg.duration.is_none_or(|d| start.elapsed() < d) {
        let got = t.recv_lease(burst, None, |data, meta, tx| {
            out.received += 1;
            if meta.truncated || data.len() > max {
                out.truncated += 1;
                return;
            }
            // The flags of the answer, for sockperf.
            let mut reply_flags = None;
            if protocol == Protocol::Sockperf {
                let Ok(r) = sockperf::Repr::parse_datagram(data) else {
                    out.malformed += 1;
                    return;
                };
                if r.flags.contains(sockperf::Flags::WARMUP) {
                    out.warmup += 1;
                    return;
                }
                if !r.wants_reply() {
                    out.not_requested += 1;
                    return;
                }
                reply_flags = Some(r.reply().flags);
            }
            let sent = tx.send_with(meta.peer, |buf| {
                let n = data.len();
                if let Some(dst) = buf.get_mut(..n) {
                    dst.copy_from_slice(data);
                    if let Some(f) = reply_flags {
                        sockperf::Packet::new_unchecked(dst).set_flags(f);
                    }
                }
                n
            });
            match sent {
                Ok(()) => {
                    out.echoed += 1;
                    out.bytes += data.len() as u64;
                }
                Err(_) => out.send_errors += 1,
            }
        });
        if got.is_err() {
            out.recv_errors += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_window_marks_duplicates_and_old() {
        let mut s = Seen::new();
        assert_eq!(s.mark(0), Some(false));
        assert_eq!(s.mark(0), Some(true));
        assert_eq!(s.mark(5), Some(false));
        assert_eq!(s.mark(3), Some(false));
        assert_eq!(s.mark(3), Some(true));
        let far = Seen::WINDOW + 10;
        assert_eq!(s.mark(far), Some(false));
        assert_eq!(s.mark(5), None, "slid out of the window");
        // A slot reused by the window starts clear.
        assert_eq!(s.mark(Seen::WINDOW + 5), Some(false));
        // A jump of billions (a late joiner) is one step, and the window
        // after it works as before.
        let jump = 5_000_000_000;
        assert_eq!(s.mark(jump), Some(false));
        assert_eq!(s.mark(jump), Some(true));
        assert_eq!(s.mark(jump - 1), Some(false));
        assert_eq!(s.mark(far), None);
        assert_eq!(s.mark(jump + 3), Some(false));
    }

    #[test]
    fn config_validation() {
        let c = PingConfig {
            size: 10,
            ..PingConfig::default()
        };
        assert!(matches!(
            c.validate(1000),
            Err(PingConfigError::Size { .. })
        ));
        let c = PingConfig {
            size: 2000,
            ..PingConfig::default()
        };
        assert!(
            c.validate(1000)
                .unwrap_err()
                .to_string()
                .contains("20..=1000")
        );
        let c = PingConfig {
            count: None,
            duration: None,
            ..PingConfig::default()
        };
        assert_eq!(c.validate(1000), Err(PingConfigError::Unbounded));
        let c = PingConfig {
            rate: Some(0),
            ..PingConfig::default()
        };
        assert_eq!(c.validate(1000), Err(PingConfigError::ZeroRate));
        assert!(PingConfig::default().validate(65507).is_ok());
    }
}
