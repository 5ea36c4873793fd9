//! The throughput harness: a sender that blasts sequence-numbered probes as
//! fast as it can or at a fixed rate, and a sink that counts what arrives —
//! packets and bytes per second, and drops, reordering and duplicates seen
//! through the sequence numbers.
//!
//! Layer: above `hftnet-io`; generic over [`Transport`] so each backend gets
//! its own monomorphised loop, and it is the burst API ([`Transport::send_burst`],
//! [`Transport::recv_burst`]) that these loops drive: with `batch=N` on a UDP
//! URI each burst is one `sendmmsg` / `recvmmsg`.
//!
//! Invariants: after the buffers are allocated at the start, neither loop
//! allocates, locks or logs per message; both are bounded by a duration (and
//! optionally a count) and end early when the stop flag is set.
//!
//! Every message starts with the probe header of [`probe`] (magic, sequence
//! number, send stamp). Sequence numbers start at 0 in every blast run and
//! rise by one per message actually sent, so a sink sees a gap only where a
//! message was lost (or is still to come, reordered). Loss after the last
//! message received shows no gap: compare the sink's `packets` with the
//! sender's `sent` for that. A sink counts the stream of one sender: two
//! senders, or a second run into the same sink, look like duplicates and
//! reordering.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hftnet_io::{RxBurst, SyscallError, Transport, TxMsg};
use hftnet_wire::probe;
use serde::Serialize;

use crate::clock::Clock;
use crate::timetable::{Timetable, WaitPolicy};

/// Largest number of messages per burst call.
pub const MAX_BURST: usize = 1024;

/// Longest a blast run waits at the end for a transmit ring to empty.
pub const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// How a blast run is sized, paced and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlastConfig {
    /// Bytes per message, probe header included (at least [`probe::HEADER_LEN`]).
    pub size: usize,
    /// Longest the run sends for.
    pub duration: Duration,
    /// Messages to send; with the duration, whichever ends first.
    pub count: Option<u64>,
    /// Fixed rate in messages per second, on a timetable; `None`: as fast as possible.
    pub rate: Option<u64>,
    /// Messages handed to one [`Transport::send_burst`] (at most; at a fixed
    /// rate only those due are sent, so usually one).
    pub burst: usize,
}

impl Default for BlastConfig {
    fn default() -> Self {
        Self {
            size: 64,
            duration: Duration::from_secs(10),
            count: None,
            rate: None,
            burst: 32,
        }
    }
}

/// Why a blast configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlastConfigError {
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
    /// A duration of zero.
    #[error("--duration must be more than zero")]
    ZeroDuration,
    /// A count of zero.
    #[error("--count must be at least 1")]
    ZeroCount,
    /// A rate of zero.
    #[error("--rate must be at least 1 message per second")]
    ZeroRate,
    /// A burst outside 1..=[`MAX_BURST`].
    #[error("--burst {0} is outside 1..=1024")]
    Burst(usize),
}

impl BlastConfig {
    /// Checks the configuration against a transport's largest message.
    ///
    /// # Errors
    /// [`BlastConfigError`] naming the problem.
    pub fn validate(&self, max_message: usize) -> Result<(), BlastConfigError> {
        if self.size < probe::HEADER_LEN || self.size > max_message {
            return Err(BlastConfigError::Size {
                size: self.size,
                min: probe::HEADER_LEN,
                max: max_message,
            });
        }
        if self.duration.is_zero() {
            return Err(BlastConfigError::ZeroDuration);
        }
        if self.count == Some(0) {
            return Err(BlastConfigError::ZeroCount);
        }
        if self.rate == Some(0) {
            return Err(BlastConfigError::ZeroRate);
        }
        if !(1..=MAX_BURST).contains(&self.burst) {
            return Err(BlastConfigError::Burst(self.burst));
        }
        Ok(())
    }
}

/// What ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoppedBy {
    /// The asked count was reached.
    Count,
    /// The duration passed.
    Duration,
    /// Nothing arrived for the idle timeout after the first message (sink).
    Idle,
    /// The stop flag was set (SIGINT / SIGTERM).
    Interrupted,
}

impl StoppedBy {
    /// The word used in reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Duration => "duration",
            Self::Idle => "idle",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What a blast run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlastReport {
    /// Bytes per message.
    pub message_bytes: usize,
    /// Messages per send call, at most.
    pub burst: usize,
    /// Fixed rate asked for, or `null` for as fast as possible.
    pub rate_pps: Option<u64>,
    /// Messages the kernel accepted (sequence numbers `0..sent`).
    pub sent: u64,
    /// Payload bytes the kernel accepted.
    pub bytes: u64,
    /// Send calls the kernel failed (the messages were sent again).
    pub send_errors: u64,
    /// The first send error, in words.
    pub first_error: Option<String>,
    /// Every message counted in `sent` left the sender: at the end the run
    /// waits (up to [`FLUSH_WAIT`]) for what a transmit ring still held
    /// ([`Transport::flush_tx`]). False when some were still queued then
    /// (`sent` counts them, yet they never left).
    pub flushed: bool,
    /// Wall time from the first send to the end (the final flush included).
    pub elapsed_s: f64,
    /// `sent / elapsed_s`.
    pub pps: f64,
    /// `bytes / elapsed_s` (UDP payload bytes per second).
    pub bytes_per_s: f64,
    /// Fixed rate only: the most a send started after its scheduled time, ns.
    pub max_lag_ns: Option<u64>,
    /// What ended the run.
    pub stopped_by: StoppedBy,
}

/// Empties `v` and returns its allocation typed for another borrow: std
/// collects a `vec::IntoIter` into a `Vec` of the same layout in place, so this
/// does not allocate (the unit test checks the buffer is reused).
fn recycle<'b>(mut v: Vec<TxMsg<'_>>) -> Vec<TxMsg<'b>> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

/// Sends probes over `t` until the count, the duration or `stop`.
///
/// As fast as possible, each call sends a full burst. At a fixed rate,
/// message `k` is due at `start + k / rate`; each call sends those due (up to
/// a burst), stamped with their scheduled time, and the loop sleeps (then
/// spins, for the last 100 µs) until the next one is due. Send errors are
/// counted and the messages sent again after 1 ms, so sequence numbers stay
/// contiguous.
///
/// # Errors
/// None today (failed sends are counted in the report); the `Result` leaves
/// room for set-up steps of future transports.
pub fn run_blast<T: Transport>(
    t: &mut T,
    cfg: &BlastConfig,
    clock: Clock,
    stop: &AtomicBool,
) -> Result<BlastReport, SyscallError> {
    let burst = cfg.burst.clamp(1, MAX_BURST);
    let size = cfg.size.max(probe::HEADER_LEN);
    // The padding is the pattern of probe 0 in every message: a receiver may
    // check it, and the sender does not rewrite it per message.
    let mut bufs = vec![0u8; burst * size];
    for chunk in bufs.chunks_exact_mut(size) {
        probe::fill_padding(0, chunk);
    }
    let mut msgs: Vec<TxMsg<'static>> = Vec::with_capacity(burst);
    let mut out = BlastReport {
        message_bytes: size,
        burst,
        rate_pps: cfg.rate,
        sent: 0,
        bytes: 0,
        send_errors: 0,
        first_error: None,
        flushed: true,
        elapsed_s: 0.0,
        pps: 0.0,
        bytes_per_s: 0.0,
        max_lag_ns: cfg.rate.map(|_| 0),
        stopped_by: StoppedBy::Duration,
    };
    if cfg.rate.is_some() {
        // Timed sleeps otherwise wake up to 50 µs late (the default timer
        // slack). Best effort: the run is correct without it, only less punctual.
        let _ = hftnet_sys::sched::set_timer_slack_ns(1);
    }
    let tsc_hz = clock.tsc_hz();
    let ticks_after = |ns: u64| -> u64 {
        match tsc_hz {
            Some(hz) => (u128::from(ns) * u128::from(hz) / 1_000_000_000) as u64,
            None => ns,
        }
    };
    // At a fixed rate, message k is due k / rate after the start; no
    // catch-up bound, so a stall is followed by full bursts of what it missed.
    let mut timetable = cfg.rate.and_then(Timetable::per_second);
    let start = Instant::now();
    let start_ticks = clock.now();
    let end = start + cfg.duration;
    loop {
        if stop.load(Ordering::Relaxed) {
            out.stopped_by = StoppedBy::Interrupted;
            break;
        }
        let left = cfg.count.map_or(u64::MAX, |c| c - out.sent);
        if left == 0 {
            out.stopped_by = StoppedBy::Count;
            break;
        }
        let now = Instant::now();
        if now >= end {
            out.stopped_by = StoppedBy::Duration;
            break;
        }
        let mut n = (burst as u64).min(left) as usize;
        if let Some(tt) = timetable.as_mut() {
            let since = u64::try_from(now.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
            if since < tt.due_ns(out.sent) {
                WaitPolicy::SLEEP_THEN_SPIN.wait_until(tt.due_instant(start, out.sent).min(end));
                continue;
            }
            // Every message due by now, up to a burst.
            n = n.min((tt.due_count(since) - out.sent) as usize);
            tt.note_send(out.sent, since);
            out.max_lag_ns = Some(tt.behind_max_ns());
            for (i, chunk) in bufs.chunks_exact_mut(size).take(n).enumerate() {
                let seq = out.sent + i as u64;
                let stamp = start_ticks + ticks_after(tt.due_ns(seq));
                probe::Repr { seq, stamp }.emit(&mut probe::Packet::new_unchecked(chunk));
            }
        } else {
            let stamp = clock.now();
            for (i, chunk) in bufs.chunks_exact_mut(size).take(n).enumerate() {
                let seq = out.sent + i as u64;
                probe::Repr { seq, stamp }.emit(&mut probe::Packet::new_unchecked(chunk));
            }
        }
        let mut batch = recycle(msgs);
        batch.extend(
            bufs.chunks_exact(size)
                .take(n)
                .map(|data| TxMsg { data, to: None }),
        );
        let res = t.send_burst(&batch);
        msgs = recycle(batch);
        match res {
            Ok(k) => {
                out.sent += k as u64;
                out.bytes += (k * size) as u64;
            }
            Err(e) => {
                out.send_errors += 1;
                note_error(&mut out.first_error, &e);
                // Do not spin on a persistent error (e.g. no route).
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    out.flushed = match t.flush_tx(FLUSH_WAIT) {
        Ok(all) => all,
        Err(e) => {
            out.send_errors += 1;
            note_error(&mut out.first_error, &e);
            false
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    out.elapsed_s = elapsed;
    if elapsed > 0.0 {
        out.pps = out.sent as f64 / elapsed;
        out.bytes_per_s = out.bytes as f64 / elapsed;
    }
    Ok(out)
}

#[cold]
fn note_error(first: &mut Option<String>, e: &SyscallError) {
    if first.is_none() {
        *first = Some(e.to_string());
    }
}

/// How a sink run is bounded and what it receives into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// Longest the run receives for.
    pub duration: Duration,
    /// Stop when nothing arrived for this long after the first message
    /// (`None`: only the duration, count or stop flag end the run).
    pub idle: Option<Duration>,
    /// Stop after this many messages (of any kind).
    pub count: Option<u64>,
    /// Slots of the receive burst: messages taken per [`Transport::recv_burst`].
    pub burst: usize,
    /// Bytes per slot: larger messages are counted as truncated.
    pub slot: usize,
    /// How often a blocking receive wakes to check the clock and stop flag.
    pub check_every: Duration,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(10),
            idle: Some(Duration::from_secs(2)),
            count: None,
            burst: 32,
            slot: 65_507,
            check_every: Duration::from_millis(20),
        }
    }
}

/// Why a sink configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkConfigError {
    /// A duration of zero.
    #[error("--duration must be more than zero")]
    ZeroDuration,
    /// A count of zero.
    #[error("--count must be at least 1")]
    ZeroCount,
    /// A burst outside 1..=[`MAX_BURST`].
    #[error("--burst {0} is outside 1..=1024")]
    Burst(usize),
    /// A slot too small for the probe header or larger than the transport carries.
    #[error("--max-size {size} is outside {min}..={max} bytes for this transport")]
    Slot {
        /// Asked slot size.
        size: usize,
        /// Smallest allowed (the probe header).
        min: usize,
        /// Largest the transport carries.
        max: usize,
    },
    /// A wake-up interval of zero.
    #[error("the check interval must be more than zero")]
    ZeroCheck,
}

impl SinkConfig {
    /// Checks the configuration against a transport's largest message.
    ///
    /// # Errors
    /// [`SinkConfigError`] naming the problem.
    pub fn validate(&self, max_message: usize) -> Result<(), SinkConfigError> {
        if self.duration.is_zero() {
            return Err(SinkConfigError::ZeroDuration);
        }
        if self.count == Some(0) {
            return Err(SinkConfigError::ZeroCount);
        }
        if !(1..=MAX_BURST).contains(&self.burst) {
            return Err(SinkConfigError::Burst(self.burst));
        }
        if self.slot < probe::HEADER_LEN || self.slot > max_message {
            return Err(SinkConfigError::Slot {
                size: self.slot,
                min: probe::HEADER_LEN,
                max: max_message,
            });
        }
        if self.check_every.is_zero() {
            return Err(SinkConfigError::ZeroCheck);
        }
        Ok(())
    }
}

/// What a sink run counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkReport {
    /// Messages received, of any kind.
    pub packets: u64,
    /// Their bytes as sent (UDP payload; a truncated message counts whole).
    pub bytes: u64,
    /// Messages that carried a probe header.
    pub probes: u64,
    /// Sequence numbers skipped and not (yet) arrived: messages lost, as far
    /// as gaps show (loss after the last message received shows no gap).
    pub drops: u64,
    /// Probes that arrived after a higher sequence number (each filled a gap).
    pub reordered: u64,
    /// Probes whose sequence number had already arrived.
    pub duplicates: u64,
    /// Probes too far behind the highest sequence number (more than 65536)
    /// to tell a late one from a duplicate; not counted in either.
    pub too_old: u64,
    /// Messages without a probe header (wrong magic or shorter than it).
    pub foreign: u64,
    /// Messages larger than the receive slot (counted in `packets`, not parsed).
    pub truncated: u64,
    /// Receives that failed.
    pub recv_errors: u64,
    /// The first receive error, in words.
    pub first_error: Option<String>,
    /// The first sequence number that arrived.
    pub first_seq: Option<u64>,
    /// The highest sequence number that arrived.
    pub highest_seq: Option<u64>,
    /// Wall time of the whole run.
    pub elapsed_s: f64,
    /// From the first message to the last: the window rates are measured over.
    pub active_s: f64,
    /// `packets / active_s`; `null` when fewer than two receives delivered.
    pub pps: Option<f64>,
    /// `bytes / active_s`; `null` as for `pps`.
    pub bytes_per_s: Option<f64>,
    /// What ended the run.
    pub stopped_by: StoppedBy,
}

/// Sequence-number accounting over a sliding window of the last
/// [`SeqTracker::WINDOW`] numbers: gaps (drops), late arrivals that fill a
/// gap (reordered), repeats (duplicates).
#[derive(Debug)]
struct SeqTracker {
    bits: Box<[u64]>,
    /// Highest sequence number seen, plus one (0: none yet). Numbers below it
    /// and not marked are the gaps still open.
    next: u64,
    drops: u64,
    reordered: u64,
    duplicates: u64,
    too_old: u64,
}

impl SeqTracker {
    const WINDOW: u64 = 1 << 16;

    fn new() -> Self {
        Self {
            bits: vec![0; (Self::WINDOW / 64) as usize].into_boxed_slice(),
            next: 0,
            drops: 0,
            reordered: 0,
            duplicates: 0,
            too_old: 0,
        }
    }

    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % Self::WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    #[inline]
    fn observe(&mut self, seq: u64) {
        if seq >= self.next {
            // New highest: everything skipped is a gap until it arrives.
            self.drops += seq - self.next;
            if seq - self.next >= Self::WINDOW {
                self.bits.fill(0);
            } else {
                // Clear the slots the window slides over.
                for s in self.next..seq {
                    let (w, b) = Self::bit(s);
                    self.bits[w] &= !b;
                }
            }
            let (w, b) = Self::bit(seq);
            self.bits[w] |= b;
            self.next = seq + 1;
            return;
        }
        if seq + Self::WINDOW < self.next {
            self.too_old += 1;
            return;
        }
        let (w, b) = Self::bit(seq);
        if self.bits[w] & b != 0 {
            self.duplicates += 1;
        } else {
            self.bits[w] |= b;
            self.reordered += 1;
            self.drops -= 1;
        }
    }
}

/// Receives until the duration, the count, the idle timeout or `stop`, and
/// counts every message.
///
/// The transport's receive timeout is set to `cfg.check_every`.
///
/// # Errors
/// Only when the receive timeout cannot be set; failed receives are counted.
pub fn run_sink<T: Transport>(
    t: &mut T,
    cfg: &SinkConfig,
    stop: &AtomicBool,
) -> Result<SinkReport, SyscallError> {
    t.set_recv_timeout(Some(cfg.check_every))?;
    let mut burst = RxBurst::new(cfg.burst.clamp(1, MAX_BURST), cfg.slot.max(1));
    let mut seq = SeqTracker::new();
    let mut out = SinkReport {
        packets: 0,
        bytes: 0,
        probes: 0,
        drops: 0,
        reordered: 0,
        duplicates: 0,
        too_old: 0,
        foreign: 0,
        truncated: 0,
        recv_errors: 0,
        first_error: None,
        first_seq: None,
        highest_seq: None,
        elapsed_s: 0.0,
        active_s: 0.0,
        pps: None,
        bytes_per_s: None,
        stopped_by: StoppedBy::Duration,
    };
    let start = Instant::now();
    let end = start + cfg.duration;
    let mut first: Option<Instant> = None;
    let mut last = start;
    let mut receives = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            out.stopped_by = StoppedBy::Interrupted;
            break;
        }
        if cfg.count.is_some_and(|c| out.packets >= c) {
            out.stopped_by = StoppedBy::Count;
            break;
        }
        let now = Instant::now();
        if now >= end {
            out.stopped_by = StoppedBy::Duration;
            break;
        }
        if first.is_some() && cfg.idle.is_some_and(|i| now.duration_since(last) >= i) {
            out.stopped_by = StoppedBy::Idle;
            break;
        }
        let n = match t.recv_burst(&mut burst) {
            Ok(0) => continue,
            Ok(n) => n,
            Err(e) => {
                out.recv_errors += 1;
                note_error(&mut out.first_error, &e);
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        let now = Instant::now();
        first.get_or_insert(now);
        last = now;
        receives += 1;
        for i in 0..n {
            let (data, meta) = burst.get(i);
            out.packets += 1;
            out.bytes += meta.wire_len as u64;
            if meta.truncated {
                out.truncated += 1;
                continue;
            }
            let Ok(p) = probe::Packet::new_checked(data) else {
                out.foreign += 1;
                continue;
            };
            let Ok(r) = probe::Repr::parse(&p) else {
                out.foreign += 1;
                continue;
            };
            out.probes += 1;
            out.first_seq.get_or_insert(r.seq);
            seq.observe(r.seq);
        }
    }
    out.elapsed_s = start.elapsed().as_secs_f64();
    out.drops = seq.drops;
    out.reordered = seq.reordered;
    out.duplicates = seq.duplicates;
    out.too_old = seq.too_old;
    out.highest_seq = seq.next.checked_sub(1);
    if let Some(f) = first {
        out.active_s = last.duration_since(f).as_secs_f64();
        if receives >= 2 && out.active_s > 0.0 {
            out.pps = Some(out.packets as f64 / out.active_s);
            out.bytes_per_s = Some(out.bytes as f64 / out.active_s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hftnet_io::{Endpoint, Role};

    #[test]
    fn recycle_reuses_the_allocation() {
        let data = [1u8; 4];
        let mut v: Vec<TxMsg<'_>> = Vec::with_capacity(16);
        v.push(TxMsg {
            data: &data,
            to: None,
        });
        let ptr = v.as_ptr() as usize;
        let w: Vec<TxMsg<'static>> = recycle(v);
        assert_eq!(w.capacity(), 16);
        assert_eq!(w.as_ptr() as usize, ptr);
        assert!(w.is_empty());
    }

    #[test]
    fn sequence_accounting() {
        let mut s = SeqTracker::new();
        for q in [0, 1, 2, 5, 3, 3, 6, 4] {
            s.observe(q);
        }
        // 3 and 4 skipped then arrived; 3 twice.
        assert_eq!(
            (s.drops, s.reordered, s.duplicates, s.too_old, s.next),
            (0, 2, 1, 0, 7)
        );
        s.observe(10);
        assert_eq!(s.drops, 3, "7, 8 and 9 missing");
        s.observe(8);
        assert_eq!((s.drops, s.reordered), (2, 3));
        // A jump beyond the window clears it; far behind is too old.
        s.observe(10 + SeqTracker::WINDOW * 2);
        s.observe(9);
        assert_eq!(s.too_old, 1);
        s.observe(10 + SeqTracker::WINDOW * 2);
        assert_eq!(s.duplicates, 2);
        // A first sequence number above 0: the ones before it count as drops.
        let mut s = SeqTracker::new();
        s.observe(3);
        s.observe(0);
        assert_eq!((s.drops, s.reordered), (2, 1));
    }

    #[test]
    fn config_validation() {
        let ok = BlastConfig::default();
        assert!(ok.validate(65_507).is_ok());
        let e = BlastConfig {
            size: 8,
            ..ok.clone()
        }
        .validate(65_507)
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "message size 8 is outside 20..=65507 bytes for this transport"
        );
        assert_eq!(
            BlastConfig {
                rate: Some(0),
                ..ok.clone()
            }
            .validate(100),
            Err(BlastConfigError::ZeroRate)
        );
        assert_eq!(
            BlastConfig {
                count: Some(0),
                ..ok.clone()
            }
            .validate(100),
            Err(BlastConfigError::ZeroCount)
        );
        assert_eq!(
            BlastConfig {
                burst: 2000,
                ..ok.clone()
            }
            .validate(100),
            Err(BlastConfigError::Burst(2000))
        );
        assert_eq!(
            BlastConfig {
                duration: Duration::ZERO,
                ..ok
            }
            .validate(100),
            Err(BlastConfigError::ZeroDuration)
        );
        let s = SinkConfig::default();
        assert!(s.validate(65_507).is_ok());
        assert!(matches!(
            SinkConfig {
                slot: 10,
                ..s.clone()
            }
            .validate(65_507),
            Err(SinkConfigError::Slot { .. })
        ));
        assert_eq!(
            SinkConfig { burst: 0, ..s }.validate(65_507),
            Err(SinkConfigError::Burst(0))
        );
    }

    /// A sink on a loopback port in a thread and a blast into it.
    fn exchange(batch: usize, blast: &BlastConfig) -> (BlastReport, SinkReport) {
        let mut rx = Endpoint::parse(&format!("udp://127.0.0.1:0?batch={batch}&rcvbuf=4M"))
            .unwrap()
            .open(Role::Server)
            .unwrap();
        let addr = rx.capabilities().local.unwrap();
        let mut tx = Endpoint::parse(&format!("udp://{addr}?batch={batch}"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        let stop = AtomicBool::new(false);
        let sink_cfg = SinkConfig {
            duration: Duration::from_secs(20),
            idle: Some(Duration::from_millis(300)),
            count: blast.count,
            burst: batch.max(8),
            slot: 2048,
            ..SinkConfig::default()
        };
        std::thread::scope(|s| {
            let sink = s.spawn(|| run_sink(&mut rx, &sink_cfg, &stop).unwrap());
            let b = run_blast(&mut tx, blast, Clock::monotonic(), &stop).unwrap();
            (b, sink.join().unwrap())
        })
    }

    #[test]
    fn blast_into_sink_over_loopback_batch_1_and_32() {
        for batch in [1, 32] {
            let cfg = BlastConfig {
                size: 100,
                count: Some(1000),
                rate: Some(100_000),
                burst: batch,
                duration: Duration::from_secs(10),
            };
            let (b, s) = exchange(batch, &cfg);
            assert_eq!(
                (b.sent, b.bytes, b.send_errors),
                (1000, 100_000, 0),
                "{b:?}"
            );
            assert_eq!(b.stopped_by, StoppedBy::Count);
            assert!(b.flushed, "{b:?}");
            assert_eq!(s.packets, 1000, "batch={batch}: {s:?}");
            assert_eq!(s.bytes, 100_000);
            assert_eq!(s.probes, 1000);
            assert_eq!((s.drops, s.reordered, s.duplicates), (0, 0, 0), "{s:?}");
            assert_eq!((s.foreign, s.truncated), (0, 0));
            assert_eq!((s.first_seq, s.highest_seq), (Some(0), Some(999)));
            assert_eq!(s.stopped_by, StoppedBy::Count);
            // 1000 at 100 000/s take about 10 ms; the timetable holds them back.
            assert!(b.elapsed_s >= 0.009, "{b:?}");
        }
    }

    #[test]
    fn blast_into_sink_over_mem_in_one_process() {
        // `full=wait`: the sender waits for the receiver, so nothing is
        // dropped even as fast as possible (up to 10 s: a test thread can be
        // off its CPU for more than the default 10 ms while others run).
        let uri = "mem://bench-blast-sink?slots=256&full=wait&full_wait=10s&rx=spin";
        let mut rx = Endpoint::parse(uri).unwrap().open(Role::Server).unwrap();
        let mut tx = Endpoint::parse(uri).unwrap().open(Role::Client).unwrap();
        let stop = AtomicBool::new(false);
        let blast = BlastConfig {
            size: 100,
            count: Some(20_000),
            rate: None,
            burst: 32,
            duration: Duration::from_secs(20),
        };
        let sink_cfg = SinkConfig {
            duration: Duration::from_secs(20),
            idle: Some(Duration::from_millis(300)),
            count: blast.count,
            burst: 32,
            slot: 2048,
            ..SinkConfig::default()
        };
        let (b, s) = std::thread::scope(|sc| {
            let sink = sc.spawn(|| run_sink(&mut rx, &sink_cfg, &stop).unwrap());
            let b = run_blast(&mut tx, &blast, Clock::monotonic(), &stop).unwrap();
            (b, sink.join().unwrap())
        });
        assert_eq!((b.sent, b.send_errors), (20_000, 0), "{b:?}");
        assert_eq!(s.packets, 20_000, "{s:?}");
        assert_eq!(s.bytes, 2_000_000);
        assert_eq!((s.drops, s.reordered, s.duplicates), (0, 0, 0), "{s:?}");
        assert_eq!((s.first_seq, s.highest_seq), (Some(0), Some(19_999)));
    }

    #[test]
    fn blast_as_fast_as_possible_is_bounded_by_duration() {
        let cfg = BlastConfig {
            size: 64,
            duration: Duration::from_millis(200),
            count: None,
            rate: None,
            burst: 16,
        };
        let (b, s) = exchange(16, &cfg);
        assert_eq!(b.stopped_by, StoppedBy::Duration);
        assert!(b.elapsed_s < 1.0, "{b:?}");
        assert!(b.sent > 100, "{b:?}");
        // The sink may drop (as fast as possible), but what it saw adds up.
        assert_eq!(s.stopped_by, StoppedBy::Idle, "{s:?}");
        assert!(s.packets <= b.sent);
        assert_eq!(s.bytes, s.packets * 64);
        assert_eq!(s.duplicates, 0);
        let seen = s.highest_seq.unwrap() + 1;
        assert_eq!(s.packets + s.drops, seen, "{s:?}");
    }

    #[test]
    fn foreign_and_truncated_messages_are_counted() {
        let mut rx = Endpoint::parse("udp://127.0.0.1:0?batch=4")
            .unwrap()
            .open(Role::Server)
            .unwrap();
        let addr = rx.capabilities().local.unwrap();
        let mut tx = Endpoint::parse(&format!("udp://{addr}"))
            .unwrap()
            .open(Role::Client)
            .unwrap();
        tx.send(b"not a probe", None).unwrap();
        tx.send(&[0u8; 200], None).unwrap();
        let mut p = [0u8; 20];
        probe::Repr { seq: 0, stamp: 0 }.emit(&mut probe::Packet::new_unchecked(&mut p[..]));
        tx.send(&p, None).unwrap();
        tx.send(&p, None).unwrap();
        let cfg = SinkConfig {
            duration: Duration::from_secs(5),
            count: Some(4),
            slot: 100,
            burst: 4,
            ..SinkConfig::default()
        };
        let s = run_sink(&mut rx, &cfg, &AtomicBool::new(false)).unwrap();
        assert_eq!(
            (
                s.packets,
                s.bytes,
                s.foreign,
                s.truncated,
                s.probes,
                s.duplicates
            ),
            (4, 11 + 200 + 40, 1, 1, 2, 1),
            "{s:?}"
        );
        assert_eq!(s.stopped_by, StoppedBy::Count);
    }
}
