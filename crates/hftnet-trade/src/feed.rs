//! The MoldUDP64 feed handler: A/B arbitration, gap detection, gap recovery
//! by re-request, and in-order delivery of every message exactly once — sans
//! IO. It takes datagrams and a timestamp, calls the consumer back with
//! messages, and hands out re-request packets and timer deadlines; it never
//! opens a socket, reads a clock, allocates, locks, logs or formats after
//! [`FeedHandler::new`].
//!
//! # Inputs, outputs, and the order to call them
//!
//! As in quinn's `Connection`, a [`FeedHandler`] is driven by its owner:
//!
//! Inputs (each takes `now`, a monotonic time in nanoseconds, and the
//! consumer):
//! - [`FeedHandler::handle_packet`]: every datagram received on feed A, on
//!   feed B, or from the re-request server (retransmission), in the order
//!   received, whatever it contains;
//! - [`FeedHandler::handle_timeout`]: when `now` has reached the deadline
//!   last returned by [`FeedHandler::poll_timeout`].
//!
//! Outputs:
//! - the [`Deliver`] consumer is called synchronously from the inputs:
//!   [`Deliver::message`] for every message in sequence order (straight from
//!   the caller's datagram when it arrives in order, from the reorder buffer
//!   otherwise), [`Deliver::lost`] for every range given up on, and
//!   [`Deliver::end_of_session`] once;
//! - [`FeedHandler::poll_request`]: re-requests to send to the re-request
//!   server (emit each with [`RequestRepr::emit`] into a
//!   [`moldudp64::HEADER_LEN`](hftnet_wire::moldudp64::HEADER_LEN)-byte buffer);
//! - [`FeedHandler::poll_timeout`]: when to call `handle_timeout` next;
//! - [`FeedHandler::counters`]: plain integer counters, per source and total.
//!
//! One turn of the owner's loop:
//! 1. `handle_packet` for every datagram received (any feed, any order);
//! 2. `handle_timeout` if `now >= poll_timeout()`;
//! 3. `poll_request(now)` until it returns `None`, sending each request;
//! 4. arm the timer (or bound the busy-poll) at `poll_timeout()`.
//!
//! # Semantics
//!
//! - Arbitration: the first copy of a sequence number to arrive, from any
//!   source, wins; later copies are dropped and counted as duplicates (or as
//!   `late` when the number had already been declared lost).
//! - Gaps: a message beyond the highest sequence seen, or a heartbeat or
//!   end-of-session packet announcing a later next sequence (tail loss),
//!   opens a gap. Messages after a gap are kept in a reorder buffer
//!   preallocated at construction (a window of [`FeedConfig::window`]
//!   sequence numbers and [`FeedConfig::buffer_bytes`] of message bytes).
//! - Recovery: a gap is given [`FeedConfig::gap_wait_ns`] for the other feed
//!   to fill it. Then, with [`FeedConfig::recovery`] on, what is still
//!   missing is re-requested in requests of at most
//!   [`FeedConfig::request_max_count`] messages; after
//!   [`FeedConfig::request_timeout_ns`], what is still missing is asked
//!   again. A round that recovered nothing counts as an attempt, and
//!   [`FeedConfig::request_attempts`] of them give the gap up; a round
//!   that brought part of it back (a re-request server whose rate limit
//!   cut its answer) does not, so a gap the server still holds is
//!   recovered at the pace its limit allows. Bounded: a gap gets at most
//!   `request_attempts + 2 * ceil(gap / request_max_count)` rounds in all
//!   (twice what a server answering whole requests needs), after which
//!   what is still missing is given up — a server that answers one number
//!   per round cannot keep a long gap open for as many rounds.
//! - Loss: a gap that cannot be filled (recovery off and the wait expired,
//!   attempts exhausted, gap longer than [`FeedConfig::max_recovery`], or the
//!   reorder buffer, its window or the gap table overflowed) is reported with
//!   [`Deliver::lost`] when it reaches the front, and delivery continues
//!   with what follows.
//! - Session: configured, or learned from the first well-formed packet on
//!   feed A or B that is not an end of session (a heartbeat or messages: a
//!   live exchange), never from a retransmission (anyone can send a unicast
//!   packet to the re-request socket; one before the session is known is
//!   counted as `foreign_session` and ignored); packets of any other session
//!   are counted (`foreign_session`) and ignored. A new session needs a new
//!   handler.
//! - End of session: reported once, after everything before it was
//!   delivered or declared lost. Messages numbered at or after its sequence
//!   are counted (`after_end`) and dropped. An end-of-session packet is not
//!   ours, and is counted (`foreign_end`) and ignored, when it comes before
//!   the session was learned (an exchange of an earlier run, lingering,
//!   repeats the end of its own session), or when it ends the session
//!   before a message already received (its sequence numbers are not the
//!   ones we follow: another exchange using the same session name).
//! - Malformed datagrams (codec errors, or a sequence range that would wrap
//!   the 64-bit counter) are counted and ignored; no input panics.
//!
//! # Invariants
//!
//! - Every sequence number from the first expected one to one before
//!   [`Counters::next_expected`] has been either delivered exactly once or
//!   reported lost exactly once, and the consumer saw these callbacks in
//!   strictly increasing sequence order with no hole between them; so
//!   `delivered + lost == next_expected - first_expected` at all times.
//! - A message is never delivered twice and never delivered after its
//!   sequence number was reported lost.
//! - Every number between `next_expected` and the highest seen is either
//!   buffered or part of a tracked gap; nothing is skipped silently.
//! - Nothing allocates after [`FeedHandler::new`].

use core::fmt;
use std::collections::VecDeque;

use hftnet_wire::moldudp64::{END_OF_SESSION, Kind, Packet, RequestRepr, Session};

/// The largest message a MoldUDP64 block can carry.
const MAX_MESSAGE_LEN: usize = u16::MAX as usize;
/// Bytes of bookkeeping in front of every message kept in the reorder
/// buffer: its length (u32, or [`SKIP`]) and its sequence number (u64).
const BLOCK_HDR: usize = 12;
/// Length marker of the unused tail of the reorder buffer before a wrap.
const SKIP: u32 = u32::MAX;
/// How many declared-lost ranges are remembered to tell `late` arrivals from
/// duplicates.
const LOST_HISTORY: usize = 64;

/// The smallest [`FeedConfig::buffer_bytes`]: room for one message of the
/// largest size MoldUDP64 allows, with its bookkeeping.
pub const MIN_BUFFER_BYTES: usize = BLOCK_HDR + MAX_MESSAGE_LEN;
/// The largest [`FeedConfig::window`].
pub const MAX_WINDOW: usize = 1 << 24;

/// Where a datagram came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedId {
    /// The A line of the A/B pair.
    A,
    /// The B line of the A/B pair.
    B,
    /// The re-request server's replies.
    Retransmission,
}

impl FeedId {
    /// Every source, in counter order.
    pub const ALL: [Self; 3] = [Self::A, Self::B, Self::Retransmission];

    const fn index(self) -> usize {
        match self {
            Self::A => 0,
            Self::B => 1,
            Self::Retransmission => 2,
        }
    }
}

/// Where delivery starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Deliver from this sequence number on (1 is the start of the session).
    /// Everything between it and the first packet seen is a gap to recover —
    /// only within the reorder window: what does not fit is reported lost.
    Sequence(u64),
    /// Start at the first packet seen (from any source): its first message,
    /// or the next sequence a heartbeat announces. Earlier messages that
    /// arrive afterwards are counted as `before_start` and dropped.
    FirstSeen,
}

/// Configuration of a [`FeedHandler`]. [`FeedConfig::default`] gives the
/// documented defaults; [`FeedConfig::validate`] checks a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedConfig {
    /// The session to accept; `None` (default) learns it from the first
    /// well-formed packet.
    pub session: Option<Session>,
    /// Where delivery starts. Default `Start::Sequence(1)`.
    pub start: Start,
    /// Reorder window, in sequence numbers: a message is buffered only if it
    /// is less than `window` ahead of the next expected one; a later one
    /// forces the front of the gap to be declared lost. A power of two, at
    /// most [`MAX_WINDOW`]. Default 65536: the answer to a re-request can
    /// queue behind the live packets already on their way (a sending
    /// CPU's backlog holds up to `net.core.netdev_max_backlog`, 1000,
    /// packets of ~44 messages each at this toolkit's exchange's rates),
    /// all of which the window must hold until it comes.
    pub window: usize,
    /// Bytes of message storage in the reorder buffer (each buffered
    /// message costs its length plus 12). At least [`MIN_BUFFER_BYTES`], at
    /// most `u32::MAX`. Default 4 MiB (the default window of ~36-byte
    /// messages, with their bookkeeping).
    pub buffer_bytes: usize,
    /// How many gaps can be tracked at once; one more forces the oldest to be
    /// declared lost. At least 1. Default 256.
    pub max_gaps: usize,
    /// How long a gap waits for the other feed before recovery starts (or,
    /// with recovery off, before it is declared lost). Default 1 ms.
    pub gap_wait_ns: u64,
    /// Whether to re-request what is missing. Default true.
    pub recovery: bool,
    /// The most messages asked for in one request, 1 to 65534. Default 1000.
    pub request_max_count: u16,
    /// How long to wait for the answer to a request before asking again.
    /// Not 0 when recovery is on. Default 50 ms.
    pub request_timeout_ns: u64,
    /// How many request rounds that recover nothing of a gap give it up
    /// (declared lost); rounds that recover part of it are not counted,
    /// but a gap gets at most `request_attempts + 2 * ceil(gap /
    /// request_max_count)` rounds in all. At least 1 when recovery is on.
    /// Default 3.
    pub request_attempts: u32,
    /// Gaps of more sequence numbers than this are not re-requested but
    /// declared lost once their wait expires. Default 100 000.
    pub max_recovery: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            session: None,
            start: Start::Sequence(1),
            window: 1 << 16,
            buffer_bytes: 4 << 20,
            max_gaps: 256,
            gap_wait_ns: 1_000_000,
            recovery: true,
            request_max_count: 1000,
            request_timeout_ns: 50_000_000,
            request_attempts: 3,
            max_recovery: 100_000,
        }
    }
}

impl FeedConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.window.is_power_of_two() || self.window > MAX_WINDOW {
            return Err(ConfigError::Window(self.window));
        }
        if self.buffer_bytes < MIN_BUFFER_BYTES || u32::try_from(self.buffer_bytes).is_err() {
            return Err(ConfigError::BufferBytes(self.buffer_bytes));
        }
        if self.max_gaps == 0 {
            return Err(ConfigError::MaxGaps);
        }
        if self.request_max_count == 0 || self.request_max_count == END_OF_SESSION {
            return Err(ConfigError::RequestMaxCount(self.request_max_count));
        }
        if self.recovery && self.request_attempts == 0 {
            return Err(ConfigError::RequestAttempts);
        }
        if self.recovery && self.request_timeout_ns == 0 {
            return Err(ConfigError::RequestTimeout);
        }
        Ok(())
    }
}

/// Why a [`FeedConfig`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// `window` is not a power of two in 1..=[`MAX_WINDOW`].
    Window(usize),
    /// `buffer_bytes` is below [`MIN_BUFFER_BYTES`] or above `u32::MAX`.
    BufferBytes(usize),
    /// `max_gaps` is 0.
    MaxGaps,
    /// `request_max_count` is 0 or 65535 (the end-of-session marker).
    RequestMaxCount(u16),
    /// `request_attempts` is 0 while recovery is on.
    RequestAttempts,
    /// `request_timeout_ns` is 0 while recovery is on.
    RequestTimeout,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Window(w) => write!(
                f,
                "feed window {w} must be a power of two between 1 and {MAX_WINDOW}"
            ),
            Self::BufferBytes(b) => write!(
                f,
                "feed buffer_bytes {b} must be between {MIN_BUFFER_BYTES} and {}",
                u32::MAX
            ),
            Self::MaxGaps => f.write_str("feed max_gaps must be at least 1"),
            Self::RequestMaxCount(n) => {
                write!(f, "feed request_max_count {n} must be between 1 and 65534")
            }
            Self::RequestAttempts => {
                f.write_str("feed request_attempts must be at least 1 when recovery is on")
            }
            Self::RequestTimeout => {
                f.write_str("feed request_timeout_ns must not be 0 when recovery is on")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The consumer of a [`FeedHandler`]: called synchronously from
/// [`FeedHandler::handle_packet`] and [`FeedHandler::handle_timeout`], in
/// strictly increasing sequence order, with no hole between calls.
pub trait Deliver {
    /// The message numbered `sequence`. The slice borrows the caller's
    /// datagram (in-order case) or the reorder buffer; copy what you keep.
    fn message(&mut self, sequence: u64, message: &[u8]);

    /// `count` messages from `first` on will never be delivered.
    fn lost(&mut self, first: u64, count: u64);

    /// The session ended; `sequence` is one past its last message, and
    /// everything before it was delivered or reported lost. Called once.
    fn end_of_session(&mut self, sequence: u64) {
        let _ = sequence;
    }
}

/// Counters of one source (feed A, feed B, or the retransmissions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounters {
    /// Datagrams handed in, whatever they held.
    pub packets: u64,
    /// Well-formed heartbeats (count 0) of our session.
    pub heartbeats: u64,
    /// Messages in well-formed packets of our session, duplicates included.
    pub messages: u64,
    /// Forward jumps in this source's own sequence (line loss, whether or not
    /// the other source covered it). Not counted for retransmissions, whose
    /// replies are discontinuous by nature.
    pub gaps: u64,
    /// Messages from this source that filled a gap (numbered below the
    /// highest seen when they arrived, and not held yet).
    pub recovered: u64,
    /// Messages dropped because that number was already delivered or
    /// buffered.
    pub duplicates: u64,
    /// Messages dropped because that number had already been reported lost
    /// (for the last 64 lost ranges; older ones count as duplicates).
    pub late: u64,
    /// Messages dropped because they precede the first expected sequence.
    pub before_start: u64,
    /// Messages dropped because they are numbered at or after the end of the
    /// session.
    pub after_end: u64,
    /// Datagrams refused by the codec, or whose sequence range would wrap.
    pub malformed: u64,
    /// Well-formed datagrams of another session, ignored.
    pub foreign_session: u64,
    /// End-of-session packets that are not ours, ignored: seen before the
    /// session was learned from a live packet, or numbered below a message
    /// already received.
    pub foreign_end: u64,
}

/// Every counter of a [`FeedHandler`], by value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Feed A.
    pub a: SourceCounters,
    /// Feed B.
    pub b: SourceCounters,
    /// Replies of the re-request server.
    pub retransmission: SourceCounters,
    /// Messages delivered to the consumer.
    pub delivered: u64,
    /// Messages reported lost to the consumer.
    pub lost: u64,
    /// [`Deliver::lost`] calls (lost ranges).
    pub loss_reports: u64,
    /// Gaps opened in the arbitrated stream (numbers neither source had
    /// supplied when a later one arrived or was announced).
    pub gaps: u64,
    /// Times a bound (window, buffer bytes, gap table) forced the front of
    /// the stream to be declared lost early.
    pub overflows: u64,
    /// Re-requests returned by [`FeedHandler::poll_request`].
    pub requests: u64,
    /// Messages asked for by those requests, summed.
    pub requested_messages: u64,
    /// Messages held in the reorder buffer now.
    pub buffered: u64,
    /// The most messages ever held in the reorder buffer at once.
    pub buffered_high_water: u64,
    /// The first sequence number expected (0 until known with
    /// [`Start::FirstSeen`]).
    pub first_expected: u64,
    /// The next sequence number to deliver or declare lost.
    pub next_expected: u64,
    /// One past the highest sequence number seen or announced.
    pub horizon: u64,
}

impl Counters {
    /// The counters of one source.
    #[must_use]
    pub const fn source(&self, feed: FeedId) -> &SourceCounters {
        match feed {
            FeedId::A => &self.a,
            FeedId::B => &self.b,
            FeedId::Retransmission => &self.retransmission,
        }
    }
}

/// What is being done about a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GapState {
    /// Waiting for the other feed until `deadline`.
    Waiting,
    /// Requests for it are being handed out by `poll_request`.
    Requesting,
    /// Requested; waiting for the replies until `deadline`.
    Awaiting,
    /// Nothing was missing any more at the last check.
    Filled,
    /// Given up: what is still missing is declared lost when it reaches the
    /// front.
    Abandoned,
}

/// A range of sequence numbers that were missing when it was opened; what is
/// missing now is found by looking at the reorder buffer.
#[derive(Debug, Clone, Copy)]
struct Gap {
    first: u64,
    end: u64,
    state: GapState,
    deadline: u64,
    /// Request rounds that recovered nothing (a round that brought some of
    /// the gap back is not counted: a re-request server that rate-limits
    /// its answers is asked again for the rest).
    attempts: u32,
    /// Request rounds asked in all, recovering or not (capped by
    /// [`max_rounds`]).
    rounds: u64,
    /// Numbers missing when the last round was asked.
    missing: u64,
    /// Where the next request of this round starts.
    cursor: u64,
}

/// One reorder-window slot.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    seq: u64,
    /// Offset of the message bytes in the arena.
    off: u32,
    len: u16,
    full: bool,
}

/// The reorder buffer: a window of slots indexed by sequence number and a
/// ring arena of message bytes, allocated in arrival order and reclaimed from
/// its tail as messages leave (in sequence order, so possibly not in arena
/// order: a block that is still held pins the blocks behind it).
#[derive(Debug)]
struct Store {
    slots: Box<[Slot]>,
    mask: u64,
    arena: Box<[u8]>,
    head: usize,
    tail: usize,
    /// Arena bytes between tail and head, dead blocks included.
    used: usize,
    /// Messages held.
    held: u64,
}

impl Store {
    fn new(window: usize, bytes: usize) -> Self {
        Self {
            // Resident now: first written while a gap is being recovered,
            // their pages would fault then.
            slots: crate::mem::resident_vec(Slot::default(), window).into_boxed_slice(),
            mask: window as u64 - 1,
            arena: crate::mem::resident_vec(0u8, bytes).into_boxed_slice(),
            head: 0,
            tail: 0,
            used: 0,
            held: 0,
        }
    }

    fn window(&self) -> u64 {
        self.mask + 1
    }

    #[inline]
    fn index(&self, seq: u64) -> usize {
        // The mask is below the window size, itself a usize.
        (seq & self.mask) as usize
    }

    #[inline]
    fn contains(&self, seq: u64) -> bool {
        let s = &self.slots[self.index(seq)];
        s.full && s.seq == seq
    }

    fn get(&self, seq: u64) -> Option<&[u8]> {
        let s = &self.slots[self.index(seq)];
        if s.full && s.seq == seq {
            let off = s.off as usize;
            Some(&self.arena[off..off + usize::from(s.len)])
        } else {
            None
        }
    }

    fn remove(&mut self, seq: u64) {
        let i = self.index(seq);
        if self.slots[i].full && self.slots[i].seq == seq {
            self.slots[i].full = false;
            self.held -= 1;
            if self.held == 0 {
                self.head = 0;
                self.tail = 0;
                self.used = 0;
            }
        }
    }

    /// Keeps `msg` as `seq`, whose slot must be free (`seq` within the
    /// window of the next expected number and not held). Returns false when
    /// the arena has no room.
    fn insert(&mut self, seq: u64, msg: &[u8]) -> bool {
        let need = BLOCK_HDR + msg.len();
        let at = match self.alloc(need) {
            Some(at) => at,
            None => {
                self.reclaim();
                match self.alloc(need) {
                    Some(at) => at,
                    None => return false,
                }
            }
        };
        // `msg.len()` fits u16 (a MoldUDP64 block) and `at` fits u32
        // (buffer_bytes is validated).
        let len = msg.len() as u32;
        self.arena[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.arena[at + 4..at + BLOCK_HDR].copy_from_slice(&seq.to_le_bytes());
        self.arena[at + BLOCK_HDR..at + need].copy_from_slice(msg);
        let i = self.index(seq);
        debug_assert!(!self.slots[i].full, "slot of {seq} taken");
        self.slots[i] = Slot {
            seq,
            off: (at + BLOCK_HDR) as u32,
            len: msg.len() as u16,
            full: true,
        };
        self.held += 1;
        true
    }

    /// Reserves `need` contiguous arena bytes at the head.
    fn alloc(&mut self, need: usize) -> Option<usize> {
        let n = self.arena.len();
        if self.used == 0 {
            self.head = 0;
            self.tail = 0;
        }
        if self.used == n {
            return None;
        }
        if self.head >= self.tail {
            // Free: [head, n) and [0, tail).
            if n - self.head >= need {
                let at = self.head;
                self.head += need;
                self.used += need;
                if self.head == n {
                    self.head = 0;
                }
                return Some(at);
            }
            if self.tail >= need {
                if n - self.head >= BLOCK_HDR {
                    self.arena[self.head..self.head + 4].copy_from_slice(&SKIP.to_le_bytes());
                }
                self.used += n - self.head + need;
                self.head = need;
                return Some(0);
            }
            None
        } else if self.tail - self.head >= need {
            let at = self.head;
            self.head += need;
            self.used += need;
            Some(at)
        } else {
            None
        }
    }

    /// Frees the blocks at the tail whose message has left.
    fn reclaim(&mut self) {
        let n = self.arena.len();
        while self.used > 0 {
            if n - self.tail < BLOCK_HDR {
                self.used -= n - self.tail;
                self.tail = 0;
                continue;
            }
            let t = self.tail;
            let mut len = [0u8; 4];
            len.copy_from_slice(&self.arena[t..t + 4]);
            let len = u32::from_le_bytes(len);
            if len == SKIP {
                self.used -= n - t;
                self.tail = 0;
                continue;
            }
            let mut seq = [0u8; 8];
            seq.copy_from_slice(&self.arena[t + 4..t + BLOCK_HDR]);
            let seq = u64::from_le_bytes(seq);
            let s = &self.slots[self.index(seq)];
            if s.full && s.seq == seq && s.off as usize == t + BLOCK_HDR {
                break;
            }
            let size = BLOCK_HDR + len as usize;
            self.used -= size;
            self.tail = t + size;
            if self.tail == n {
                self.tail = 0;
            }
        }
        if self.used == 0 {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// The first held number in `[from, to)`, or `to`; `base` is the next
    /// expected number (nothing at or beyond `base + window` is held).
    fn next_held(&self, from: u64, to: u64, base: u64) -> u64 {
        if self.held == 0 {
            return to.max(from);
        }
        let lim = to.min(base.saturating_add(self.window()));
        let mut s = from;
        while s < lim {
            if self.contains(s) {
                return s;
            }
            s += 1;
        }
        to.max(from)
    }

    /// How many numbers in `[from, to)` are not held; `base` is the next
    /// expected number.
    fn count_missing(&self, from: u64, to: u64, base: u64) -> u64 {
        let mut n = 0;
        let mut m = self.next_missing(from, to, base);
        while m < to {
            let e = self.next_held(m, to, base);
            n += e - m;
            m = self.next_missing(e, to, base);
        }
        n
    }

    /// The first number in `[from, to)` that is not held, or a number `>= to`.
    fn next_missing(&self, from: u64, to: u64, base: u64) -> u64 {
        if self.held == 0 {
            return from;
        }
        let lim = to.min(base.saturating_add(self.window()));
        let mut s = from;
        while s < lim && self.contains(s) {
            s += 1;
        }
        s
    }
}

/// The most request rounds a gap of `size` numbers gets in all:
/// `request_attempts` plus twice the requests of one round that asks the
/// whole gap, so a rate-limited server that answers part of each round
/// still ends within it, and one that answers a number per round cannot
/// keep the gap open for `size` rounds.
fn max_rounds(config: &FeedConfig, size: u64) -> u64 {
    let per_round = size.div_ceil(u64::from(config.request_max_count));
    u64::from(config.request_attempts).saturating_add(per_round.saturating_mul(2))
}

/// The last lost ranges, ascending (losses are declared in sequence order).
#[derive(Debug)]
struct LostHistory {
    ranges: [(u64, u64); LOST_HISTORY],
    len: usize,
    /// Index of the newest range.
    newest: usize,
}

impl LostHistory {
    fn push(&mut self, first: u64, end: u64) {
        if self.len > 0 && self.ranges[self.newest].1 == first {
            self.ranges[self.newest].1 = end;
            return;
        }
        self.newest = (self.newest + 1) % LOST_HISTORY;
        self.ranges[self.newest] = (first, end);
        self.len = (self.len + 1).min(LOST_HISTORY);
    }

    fn contains(&self, seq: u64) -> bool {
        let mut i = self.newest;
        for _ in 0..self.len {
            let (first, end) = self.ranges[i];
            if seq >= end {
                return false;
            }
            if seq >= first {
                return true;
            }
            i = (i + LOST_HISTORY - 1) % LOST_HISTORY;
        }
        false
    }
}

/// The feed handler; see the [module documentation](self) for the inputs,
/// the outputs and the order to call them.
#[derive(Debug)]
pub struct FeedHandler {
    config: FeedConfig,
    session: Option<Session>,
    started: bool,
    first: u64,
    next: u64,
    horizon: u64,
    end: Option<u64>,
    end_reported: bool,
    /// One past the highest message number received, from any source.
    seen_end: u64,
    store: Store,
    gaps: VecDeque<Gap>,
    /// Gaps in state `Requesting`.
    requesting: usize,
    lost_history: LostHistory,
    /// Per line (A, B): one past the last sequence it carried.
    line_next: [Option<u64>; 2],
    /// The message being placed (`u64::MAX` when none): losses are never
    /// declared at or beyond it, as it is in hand.
    in_hand: u64,
    counters: Counters,
}

impl FeedHandler {
    /// A handler with all its storage allocated.
    ///
    /// # Errors
    /// The [`ConfigError`] of [`FeedConfig::validate`].
    pub fn new(config: FeedConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut h = Self {
            config,
            session: config.session,
            started: false,
            first: 0,
            next: 0,
            horizon: 0,
            end: None,
            end_reported: false,
            seen_end: 0,
            store: Store::new(config.window, config.buffer_bytes),
            gaps: VecDeque::with_capacity(config.max_gaps),
            requesting: 0,
            lost_history: LostHistory {
                ranges: [(0, 0); LOST_HISTORY],
                len: 0,
                newest: 0,
            },
            line_next: [None; 2],
            in_hand: u64::MAX,
            counters: Counters::default(),
        };
        if let Start::Sequence(s) = config.start {
            h.start_at(s);
        }
        Ok(h)
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &FeedConfig {
        &self.config
    }

    /// The session, once configured or learned.
    #[must_use]
    pub const fn session(&self) -> Option<Session> {
        self.session
    }

    /// The next sequence number to deliver or declare lost.
    #[must_use]
    pub const fn next_expected(&self) -> u64 {
        self.next
    }

    /// Whether the end of session has been reported.
    #[must_use]
    pub const fn is_ended(&self) -> bool {
        self.end_reported
    }

    /// All counters, by value.
    #[must_use]
    pub fn counters(&self) -> Counters {
        Counters {
            buffered: self.store.held,
            first_expected: self.first,
            next_expected: self.next,
            horizon: self.horizon,
            ..self.counters
        }
    }

    /// Takes one datagram from `feed`, received at `now` (ns), and delivers
    /// to `out` whatever it makes deliverable or declares lost.
    pub fn handle_packet<D: Deliver + ?Sized>(
        &mut self,
        feed: FeedId,
        now: u64,
        bytes: &[u8],
        out: &mut D,
    ) {
        self.source(feed).packets += 1;
        let Ok(p) = Packet::new_checked(bytes) else {
            self.source(feed).malformed += 1;
            return;
        };
        let seq = p.sequence();
        let count = u64::from(p.message_count());
        let Some(after) = seq.checked_add(count) else {
            self.source(feed).malformed += 1;
            return;
        };
        let session = p.session();
        let kind = p.kind();
        match self.session {
            Some(s) if s != session => {
                self.source(feed).foreign_session += 1;
                return;
            }
            Some(_) => {}
            // An end of session does not choose the session: it may be a
            // lingering exchange of an earlier run repeating its end.
            None if kind == Kind::EndOfSession => {
                self.source(feed).foreign_end += 1;
                return;
            }
            // Nor does a retransmission: anyone can send a unicast packet
            // to the re-request socket, and nothing was asked yet.
            None if feed == FeedId::Retransmission => {
                self.source(feed).foreign_session += 1;
                return;
            }
            None => self.session = Some(session),
        }
        match kind {
            // An end before a message we hold is another exchange's.
            Kind::EndOfSession if seq < self.seen_end => {
                self.source(feed).foreign_end += 1;
                return;
            }
            Kind::Messages(_) => self.seen_end = self.seen_end.max(after),
            _ => {}
        }
        if !self.started {
            self.start_at(seq);
        }
        if feed != FeedId::Retransmission {
            let line = self.line_next[feed.index()];
            if line.is_some_and(|n| seq > n) {
                self.source(feed).gaps += 1;
            }
            self.line_next[feed.index()] = Some(line.map_or(after, |n| n.max(after)));
        }
        match kind {
            Kind::Messages(_) => {
                // Messages first: the range is advanced only for a message,
                // so at most to `seq + count`, which did not wrap.
                for (msg, s) in p.messages().zip(seq..) {
                    self.on_message(feed, now, s, msg, out);
                }
            }
            Kind::Heartbeat => {
                self.source(feed).heartbeats += 1;
                self.extend_horizon(seq, now, out);
            }
            Kind::EndOfSession => {
                self.extend_horizon(seq, now, out);
                if self.end.is_none() {
                    self.end = Some(seq.max(self.horizon));
                }
            }
        }
        self.advance(out);
    }

    /// Acts on the deadlines that have passed at `now`: starts or repeats
    /// recovery, or gives gaps up (delivering to `out` what that unblocks).
    pub fn handle_timeout<D: Deliver + ?Sized>(&mut self, now: u64, out: &mut D) {
        let next = self.next;
        for i in 0..self.gaps.len() {
            let g = self.gaps[i];
            if !matches!(g.state, GapState::Waiting | GapState::Awaiting) || g.deadline > now {
                continue;
            }
            let start = g.first.max(next);
            let missing = self.store.count_missing(start, g.end, next);
            let g = &mut self.gaps[i];
            if g.state == GapState::Awaiting && missing < g.missing {
                // The last round recovered part of the gap (a rate-limited
                // answer): it does not count as a failed attempt. Bounded
                // by the gap's round cap (`max_rounds`).
                g.attempts -= 1;
            }
            if missing == 0 {
                g.state = GapState::Filled;
            } else if self.config.recovery
                && g.attempts < self.config.request_attempts
                && g.rounds < max_rounds(&self.config, g.end - g.first)
                && g.end - start <= self.config.max_recovery
            {
                g.state = GapState::Requesting;
                g.cursor = start;
                g.attempts += 1;
                g.rounds += 1;
                g.missing = missing;
                self.requesting += 1;
            } else {
                g.state = GapState::Abandoned;
            }
        }
        self.advance(out);
    }

    /// The next re-request to send, if any; call until `None` after every
    /// input. Each covers a run of missing numbers, at most
    /// [`FeedConfig::request_max_count`] long. The reply timer of a gap
    /// starts when its last request has been returned.
    pub fn poll_request(&mut self, now: u64) -> Option<RequestRepr> {
        if self.requesting == 0 {
            return None;
        }
        let session = self.session?;
        let next = self.next;
        let max = u64::from(self.config.request_max_count);
        let timeout = self.config.request_timeout_ns;
        for g in &mut self.gaps {
            if g.state != GapState::Requesting {
                continue;
            }
            let from = g.cursor.max(next).max(g.first);
            let m = self.store.next_missing(from, g.end, next);
            if m >= g.end {
                g.state = GapState::Awaiting;
                g.deadline = now.saturating_add(timeout);
                self.requesting -= 1;
                continue;
            }
            let e = self
                .store
                .next_held(m, g.end.min(m.saturating_add(max)), next);
            g.cursor = e;
            if e >= g.end {
                g.state = GapState::Awaiting;
                g.deadline = now.saturating_add(timeout);
                self.requesting -= 1;
            }
            self.counters.requests += 1;
            self.counters.requested_messages += e - m;
            return Some(RequestRepr {
                session,
                sequence: m,
                // At most `request_max_count`, a u16.
                count: (e - m) as u16,
            });
        }
        None
    }

    /// When to call [`FeedHandler::handle_timeout`] next, if anything waits
    /// on time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        self.gaps
            .iter()
            .filter(|g| matches!(g.state, GapState::Waiting | GapState::Awaiting))
            .map(|g| g.deadline)
            .min()
    }

    fn source(&mut self, feed: FeedId) -> &mut SourceCounters {
        match feed {
            FeedId::A => &mut self.counters.a,
            FeedId::B => &mut self.counters.b,
            FeedId::Retransmission => &mut self.counters.retransmission,
        }
    }

    fn start_at(&mut self, seq: u64) {
        self.started = true;
        self.first = seq;
        self.next = seq;
        self.horizon = seq;
    }

    #[inline]
    fn on_message<D: Deliver + ?Sized>(
        &mut self,
        feed: FeedId,
        now: u64,
        seq: u64,
        msg: &[u8],
        out: &mut D,
    ) {
        self.source(feed).messages += 1;
        if self.end.is_some_and(|e| seq >= e) {
            self.source(feed).after_end += 1;
            return;
        }
        if seq < self.next {
            let c = if seq < self.first {
                &mut self.source(feed).before_start
            } else if self.lost_history.len > 0 && self.lost_history.contains(seq) {
                &mut self.source(feed).late
            } else {
                &mut self.source(feed).duplicates
            };
            *c += 1;
            return;
        }
        let fills = seq < self.horizon;
        self.in_hand = seq;
        if seq > self.horizon {
            self.open_gap(self.horizon, seq, now, out);
            self.horizon = seq;
        }
        // While it is being placed, `seq` itself stays outside the horizon:
        // every number in `[next, horizon)` is held or in a gap.
        let accepted = self.place(seq, msg, out);
        self.in_hand = u64::MAX;
        if !fills {
            // `seq` is below the end of a packet whose range did not wrap.
            self.horizon = seq + 1;
        }
        if !accepted {
            self.source(feed).duplicates += 1;
        } else if fills {
            self.source(feed).recovered += 1;
        }
    }

    /// Delivers or buffers a message numbered at or after `next`; false when
    /// it was already held.
    fn place<D: Deliver + ?Sized>(&mut self, seq: u64, msg: &[u8], out: &mut D) -> bool {
        loop {
            debug_assert!(seq >= self.next);
            if seq == self.next {
                out.message(seq, msg);
                self.counters.delivered += 1;
                self.next = seq + 1;
                self.in_hand = u64::MAX;
                self.advance(out);
                return true;
            }
            if self.store.contains(seq) {
                return false;
            }
            let window = self.store.window();
            if seq - self.next >= window {
                self.counters.overflows += 1;
                self.force_until(seq - window + 1, out);
                continue;
            }
            if self.store.insert(seq, msg) {
                let held = self.store.held;
                if held > self.counters.buffered_high_water {
                    self.counters.buffered_high_water = held;
                }
                return true;
            }
            // No room left: give up the front run of missing numbers (the
            // messages after it leave the buffer), and try again.
            self.counters.overflows += 1;
            let to = self.store.next_held(self.next, seq, self.next);
            self.declare_lost(self.next, to, out);
            self.advance(out);
        }
    }

    fn extend_horizon<D: Deliver + ?Sized>(&mut self, to: u64, now: u64, out: &mut D) {
        let to = self.end.map_or(to, |e| to.min(e));
        if to > self.horizon {
            self.open_gap(self.horizon, to, now, out);
            self.horizon = to;
        }
    }

    fn open_gap<D: Deliver + ?Sized>(&mut self, first: u64, end: u64, now: u64, out: &mut D) {
        self.counters.gaps += 1;
        if self.gaps.len() >= self.config.max_gaps {
            self.counters.overflows += 1;
            if let Some(front) = self.gaps.front() {
                let end = front.end;
                self.force_until(end, out);
            }
        }
        debug_assert!(self.gaps.len() < self.config.max_gaps);
        self.gaps.push_back(Gap {
            first,
            end,
            state: GapState::Waiting,
            deadline: now.saturating_add(self.config.gap_wait_ns),
            attempts: 0,
            rounds: 0,
            missing: end - first,
            cursor: first,
        });
    }

    /// Moves `next` to at least `target`, delivering what is held and
    /// declaring the rest lost.
    fn force_until<D: Deliver + ?Sized>(&mut self, target: u64, out: &mut D) {
        while self.next < target {
            if self.store.contains(self.next) {
                self.deliver_held(out);
            } else {
                let to = self.store.next_held(self.next, target, self.next);
                self.declare_lost(self.next, to, out);
            }
        }
        self.advance(out);
    }

    fn deliver_held<D: Deliver + ?Sized>(&mut self, out: &mut D) {
        let seq = self.next;
        if let Some(m) = self.store.get(seq) {
            out.message(seq, m);
            self.store.remove(seq);
            self.counters.delivered += 1;
            self.next = seq + 1;
        }
    }

    fn declare_lost<D: Deliver + ?Sized>(&mut self, first: u64, end: u64, out: &mut D) {
        debug_assert!(first == self.next && end > first);
        out.lost(first, end - first);
        self.counters.lost += end - first;
        self.counters.loss_reports += 1;
        self.lost_history.push(first, end);
        self.next = end;
    }

    /// Delivers what has become deliverable, declares lost the front gaps
    /// given up on, drops passed gaps, and reports the end of session.
    #[inline]
    fn advance<D: Deliver + ?Sized>(&mut self, out: &mut D) {
        loop {
            if self.store.held > 0 && self.store.contains(self.next) {
                self.deliver_held(out);
                continue;
            }
            if self.next >= self.horizon {
                break;
            }
            self.pop_passed_gaps();
            match self.gaps.front() {
                Some(g)
                    if g.first <= self.next
                        && g.state == GapState::Abandoned
                        && self.next < self.in_hand =>
                {
                    let to = self
                        .store
                        .next_held(self.next, g.end.min(self.in_hand), self.next);
                    self.declare_lost(self.next, to, out);
                }
                g => {
                    debug_assert!(
                        self.next == self.in_hand || g.is_some_and(|g| g.first <= self.next),
                        "missing {} not in a gap",
                        self.next
                    );
                    break;
                }
            }
        }
        self.pop_passed_gaps();
        if let Some(e) = self.end
            && !self.end_reported
            && self.next >= e
        {
            self.end_reported = true;
            out.end_of_session(e);
        }
    }

    fn pop_passed_gaps(&mut self) {
        while let Some(g) = self.gaps.front() {
            if g.end > self.next {
                break;
            }
            if g.state == GapState::Requesting {
                self.requesting -= 1;
            }
            self.gaps.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hftnet_wire::moldudp64::{HEADER_LEN, PacketWriter, Request};

    const MS: u64 = 1_000_000;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Msg(u64, Vec<u8>),
        Lost(u64, u64),
        End(u64),
    }

    #[derive(Default)]
    struct Rec(Vec<Ev>);

    impl Deliver for Rec {
        fn message(&mut self, sequence: u64, message: &[u8]) {
            self.0.push(Ev::Msg(sequence, message.to_vec()));
        }
        fn lost(&mut self, first: u64, count: u64) {
            self.0.push(Ev::Lost(first, count));
        }
        fn end_of_session(&mut self, sequence: u64) {
            self.0.push(Ev::End(sequence));
        }
    }

    impl Rec {
        fn take(&mut self) -> Vec<Ev> {
            core::mem::take(&mut self.0)
        }
    }

    fn sess() -> Session {
        Session::new("TEST1").unwrap()
    }

    fn body(seq: u64) -> Vec<u8> {
        format!("m{seq}").into_bytes()
    }

    /// A packet of `sess()` carrying messages `first..first + n`.
    fn pkt_in(session: Session, first: u64, n: u64) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let mut w = PacketWriter::new(&mut buf, session, first).unwrap();
        for s in first..first + n {
            w.push(&body(s)).unwrap();
        }
        let len = w.finish();
        buf.truncate(len);
        buf
    }

    fn pkt(first: u64, n: u64) -> Vec<u8> {
        pkt_in(sess(), first, n)
    }

    fn heartbeat(next: u64) -> Vec<u8> {
        pkt(next, 0)
    }

    fn end_of_session(next: u64) -> Vec<u8> {
        let mut b = heartbeat(next);
        Packet::new_unchecked(&mut b[..]).set_count_field(END_OF_SESSION);
        b
    }

    fn msgs(range: core::ops::Range<u64>) -> Vec<Ev> {
        range.map(|s| Ev::Msg(s, body(s))).collect()
    }

    fn handler(f: impl FnOnce(&mut FeedConfig)) -> FeedHandler {
        let mut c = FeedConfig {
            session: Some(sess()),
            ..FeedConfig::default()
        };
        f(&mut c);
        FeedHandler::new(c).unwrap()
    }

    fn check_invariant(h: &FeedHandler) {
        let c = h.counters();
        assert_eq!(c.delivered + c.lost, c.next_expected - c.first_expected);
    }

    #[test]
    fn in_order_delivery() {
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 3), &mut r);
        h.handle_packet(FeedId::A, 1, &pkt(4, 2), &mut r);
        assert_eq!(r.take(), msgs(1..6));
        let c = h.counters();
        assert_eq!((c.delivered, c.lost, c.next_expected), (5, 0, 6));
        assert_eq!((c.a.packets, c.a.messages, c.a.recovered), (2, 5, 0));
        assert_eq!(c.buffered_high_water, 0);
        assert_eq!(h.poll_timeout(), None);
        assert_eq!(h.poll_request(2), None);
    }

    #[test]
    fn ab_duplicates_dropped() {
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 3), &mut r);
        h.handle_packet(FeedId::B, 1, &pkt(1, 3), &mut r);
        h.handle_packet(FeedId::B, 2, &pkt(4, 2), &mut r);
        h.handle_packet(FeedId::A, 3, &pkt(4, 2), &mut r);
        assert_eq!(r.take(), msgs(1..6));
        let c = h.counters();
        assert_eq!((c.a.duplicates, c.b.duplicates), (2, 3));
        assert_eq!((c.a.messages, c.b.messages), (5, 5));
        assert_eq!(c.delivered, 5);
    }

    #[test]
    fn gap_filled_by_other_feed_without_request() {
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 2), &mut r);
        // A loses 3..5.
        h.handle_packet(FeedId::A, 10, &pkt(5, 2), &mut r);
        assert_eq!(r.take(), msgs(1..3));
        assert_eq!(h.poll_timeout(), Some(10 + MS));
        let c = h.counters();
        assert_eq!((c.gaps, c.a.gaps, c.buffered), (1, 1, 2));
        h.handle_packet(FeedId::B, 20, &pkt(1, 4), &mut r);
        assert_eq!(r.take(), msgs(3..7));
        assert_eq!(h.poll_timeout(), None);
        h.handle_timeout(10 + MS, &mut r);
        assert_eq!(h.poll_request(10 + MS), None);
        let c = h.counters();
        assert_eq!((c.b.recovered, c.b.duplicates, c.requests), (2, 2, 0));
        assert_eq!((c.buffered, c.buffered_high_water), (0, 2));
        check_invariant(&h);
    }

    #[test]
    fn gap_filled_by_retransmission() {
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 2), &mut r);
        h.handle_packet(FeedId::B, 0, &pkt(1, 2), &mut r);
        h.handle_packet(FeedId::A, 5, &pkt(6, 1), &mut r);
        h.handle_packet(FeedId::B, 6, &pkt(6, 1), &mut r);
        assert_eq!(r.take(), msgs(1..3));
        // Not before the wait expired.
        h.handle_timeout(5 + MS - 1, &mut r);
        assert_eq!(h.poll_request(5 + MS - 1), None);
        assert_eq!(h.poll_timeout(), Some(5 + MS));
        h.handle_timeout(5 + MS, &mut r);
        let req = h.poll_request(5 + MS).unwrap();
        assert_eq!(
            req,
            RequestRepr {
                session: sess(),
                sequence: 3,
                count: 3
            }
        );
        assert_eq!(h.poll_request(5 + MS), None);
        assert_eq!(h.poll_timeout(), Some(5 + MS + 50 * MS));
        // The request encodes as the 20 bytes the server expects.
        let mut wire = [0u8; HEADER_LEN];
        req.emit(&mut Request::new_unchecked(&mut wire[..]));
        let back = RequestRepr::parse(&Request::new_checked(&wire[..]).unwrap()).unwrap();
        assert_eq!(back, req);
        h.handle_packet(FeedId::Retransmission, 6 * MS, &pkt(3, 3), &mut r);
        assert_eq!(r.take(), msgs(3..7));
        let c = h.counters();
        assert_eq!((c.requests, c.requested_messages), (1, 3));
        assert_eq!(c.retransmission.recovered, 3);
        assert_eq!(c.b.duplicates, 3);
        assert_eq!(h.poll_timeout(), None);
        check_invariant(&h);
    }

    #[test]
    fn tail_loss_revealed_by_heartbeat() {
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 2), &mut r);
        // 3 and 4 lost on both lines; a heartbeat says 5 is next.
        h.handle_packet(FeedId::A, 10, &heartbeat(5), &mut r);
        h.handle_packet(FeedId::B, 11, &heartbeat(5), &mut r);
        let c = h.counters();
        assert_eq!(
            (c.gaps, c.horizon, c.a.heartbeats, c.b.heartbeats),
            (1, 5, 1, 1)
        );
        h.handle_timeout(10 + MS, &mut r);
        assert_eq!(
            h.poll_request(10 + MS).map(|q| (q.sequence, q.count)),
            Some((3, 2))
        );
        h.handle_packet(FeedId::Retransmission, 10 + 2 * MS, &pkt(3, 2), &mut r);
        assert_eq!(r.take(), msgs(1..5));
        assert_eq!(h.next_expected(), 5);
    }

    #[test]
    fn reordering_within_bound_delivered_in_order() {
        let mut h = handler(|c| c.window = 8);
        let mut r = Rec::default();
        for s in [3, 5, 2, 7, 4, 6, 1] {
            h.handle_packet(FeedId::A, 0, &pkt(s, 1), &mut r);
        }
        assert_eq!(r.take(), msgs(1..8));
        let c = h.counters();
        assert_eq!((c.lost, c.overflows, c.buffered_high_water), (0, 0, 6));
        // 2, 4, 6 and 1 arrived below the highest seen: they filled gaps.
        assert_eq!(c.a.recovered, 4);
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn window_overflow_declares_front_lost() {
        let mut h = handler(|c| c.window = 4);
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &pkt(3, 2), &mut r);
        assert_eq!(r.take(), msgs(1..2));
        // 6 is 4 ahead of next expected (2): 2 must go.
        h.handle_packet(FeedId::A, 0, &pkt(6, 1), &mut r);
        let mut want = vec![Ev::Lost(2, 1)];
        want.extend(msgs(3..5));
        assert_eq!(r.take(), want);
        assert_eq!(h.counters().overflows, 1);
        // 5 still has its chance.
        h.handle_packet(FeedId::B, 0, &pkt(5, 1), &mut r);
        assert_eq!(r.take(), msgs(5..7));
        // A late 2 is counted as late.
        h.handle_packet(FeedId::B, 0, &pkt(2, 1), &mut r);
        assert!(r.take().is_empty());
        assert_eq!(h.counters().b.late, 1);
        check_invariant(&h);
    }

    #[test]
    fn buffer_bytes_overflow_declares_front_lost() {
        // Room for two 30 000-byte messages, not three.
        let mut h = handler(|c| c.buffer_bytes = MIN_BUFFER_BYTES);
        let mut r = Rec::default();
        let big = |seq: u64| vec![seq as u8; 30_000];
        let mut buf = vec![0u8; 31_000];
        let mut write = |seq: u64| {
            let mut w = PacketWriter::new(&mut buf, sess(), seq).unwrap();
            w.push(&big(seq)).unwrap();
            let n = w.finish();
            buf[..n].to_vec()
        };
        let summary = |ev: Vec<Ev>| -> Vec<Ev> {
            ev.into_iter()
                .map(|e| match e {
                    Ev::Msg(s, m) => {
                        assert_eq!(m, big(s));
                        Ev::Msg(s, Vec::new())
                    }
                    e => e,
                })
                .collect()
        };
        h.handle_packet(FeedId::A, 0, &write(3), &mut r);
        h.handle_packet(FeedId::A, 0, &write(5), &mut r);
        assert_eq!(h.counters().buffered, 2);
        // 6 does not fit: 1..3 is declared lost and 3 leaves; 6 then takes
        // the place of 3 (the arena wraps).
        h.handle_packet(FeedId::A, 0, &write(6), &mut r);
        assert_eq!(
            summary(r.take()),
            vec![Ev::Lost(1, 2), Ev::Msg(3, Vec::new())]
        );
        let c = h.counters();
        assert_eq!((c.overflows, c.buffered, c.lost), (1, 2, 2));
        h.handle_packet(FeedId::B, 0, &write(4), &mut r);
        let want: Vec<Ev> = (4..7).map(|s| Ev::Msg(s, Vec::new())).collect();
        assert_eq!(summary(r.take()), want);
        // The arena keeps turning over: pairs arrive swapped.
        for base in (7..60).step_by(2) {
            h.handle_packet(FeedId::A, 0, &write(base + 1), &mut r);
            h.handle_packet(FeedId::A, 0, &write(base), &mut r);
        }
        let want: Vec<Ev> = (7..61).map(|s| Ev::Msg(s, Vec::new())).collect();
        assert_eq!(summary(r.take()), want);
        assert_eq!(h.counters().overflows, 1);
        check_invariant(&h);
    }

    #[test]
    fn message_in_hand_is_not_declared_lost() {
        // The front gap is being recovered, the one after it was given up;
        // a message of the second forces the window and so the second gap to
        // the front: it must be delivered, not declared lost with its gap.
        let mut h = handler(|c| {
            c.window = 8;
            c.max_recovery = 2;
        });
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(3, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &heartbeat(30), &mut r);
        h.handle_timeout(MS, &mut r);
        assert_eq!(
            h.poll_request(MS).map(|q| (q.sequence, q.count)),
            Some((1, 2))
        );
        assert_eq!(h.poll_request(MS), None);
        assert!(r.take().is_empty());
        h.handle_packet(FeedId::B, MS, &pkt(12, 1), &mut r);
        assert_eq!(
            r.take(),
            vec![
                Ev::Lost(1, 2),
                Ev::Msg(3, body(3)),
                Ev::Lost(4, 1),
                Ev::Lost(5, 7),
                Ev::Msg(12, body(12)),
                Ev::Lost(13, 17),
            ]
        );
        let c = h.counters();
        assert_eq!((c.overflows, c.b.recovered, c.next_expected), (1, 1, 30));
        check_invariant(&h);
    }

    #[test]
    fn gap_table_overflow_declares_oldest_lost() {
        let mut h = handler(|c| c.max_gaps = 2);
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(2, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &pkt(4, 1), &mut r);
        assert!(r.take().is_empty());
        h.handle_packet(FeedId::A, 0, &pkt(6, 1), &mut r);
        let mut want = vec![Ev::Lost(1, 1)];
        want.extend(msgs(2..3));
        assert_eq!(r.take(), want);
        assert_eq!(h.counters().overflows, 1);
        check_invariant(&h);
    }

    #[test]
    fn recovery_off_reports_exact_loss() {
        let mut h = handler(|c| c.recovery = false);
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 2), &mut r);
        h.handle_packet(FeedId::A, 100, &pkt(7, 2), &mut r);
        h.handle_packet(FeedId::B, 200, &pkt(4, 1), &mut r);
        assert_eq!(r.take(), msgs(1..3));
        h.handle_timeout(100 + MS - 1, &mut r);
        assert!(r.take().is_empty());
        h.handle_timeout(100 + MS, &mut r);
        assert_eq!(h.poll_request(100 + MS), None);
        let mut want = vec![Ev::Lost(3, 1), Ev::Msg(4, body(4)), Ev::Lost(5, 2)];
        want.extend(msgs(7..9));
        assert_eq!(r.take(), want);
        let c = h.counters();
        assert_eq!((c.lost, c.loss_reports, c.requests), (3, 2, 0));
        assert_eq!(h.poll_timeout(), None);
        check_invariant(&h);
    }

    #[test]
    fn retries_exhausted_reports_loss() {
        let mut h = handler(|c| {
            c.request_attempts = 2;
            c.request_timeout_ns = 10 * MS;
        });
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &pkt(4, 1), &mut r);
        let mut now = 0;
        let mut asked = Vec::new();
        while let Some(t) = h.poll_timeout() {
            now = t;
            h.handle_timeout(now, &mut r);
            while let Some(q) = h.poll_request(now) {
                asked.push((now, q.sequence, q.count));
            }
        }
        assert_eq!(asked, vec![(MS, 2, 2), (11 * MS, 2, 2)]);
        assert_eq!(now, 21 * MS);
        let mut want = msgs(1..2);
        want.push(Ev::Lost(2, 2));
        want.extend(msgs(4..5));
        assert_eq!(r.take(), want);
        let c = h.counters();
        assert_eq!((c.requests, c.requested_messages, c.lost), (2, 4, 2));
        // The answer comes too late.
        h.handle_packet(FeedId::Retransmission, now + 1, &pkt(2, 2), &mut r);
        assert!(r.take().is_empty());
        assert_eq!(h.counters().retransmission.late, 2);
        check_invariant(&h);
    }

    /// A re-request server whose rate limit answers only part of each
    /// round (600 messages per 50 ms, as the exchange's guard cuts a
    /// reply to what its token bucket pays): rounds that recover some of
    /// the gap are not failed attempts, so a 5,000-message gap the server
    /// holds is recovered whole — with 3 attempts counted per round it was
    /// given up after 1,800.
    #[test]
    fn a_rate_limited_answer_is_asked_again_until_the_gap_is_recovered() {
        const GAP: u64 = 5_000;
        const PER_ROUND: u64 = 600;
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &pkt(GAP + 2, 1), &mut r);
        let mut now = 0;
        let mut rounds = 0;
        while let Some(t) = h.poll_timeout() {
            now = t;
            h.handle_timeout(now, &mut r);
            // The guard's budget for this round.
            let mut budget = PER_ROUND;
            let mut any = false;
            while let Some(q) = h.poll_request(now) {
                any = true;
                let (mut s, end) = (q.sequence, q.sequence + u64::from(q.count));
                while s < end && budget > 0 {
                    let n = (end - s).min(budget).min(100);
                    h.handle_packet(FeedId::Retransmission, now + 1, &pkt(s, n), &mut r);
                    s += n;
                    budget -= n;
                }
            }
            rounds += u64::from(any);
            assert!(rounds <= 2 * GAP / PER_ROUND, "{rounds} rounds");
        }
        let c = h.counters();
        assert_eq!(c.lost, 0, "{c:?}");
        assert_eq!(c.retransmission.recovered, GAP);
        assert_eq!(c.delivered, GAP + 2);
        assert_eq!(rounds, GAP.div_ceil(PER_ROUND));
        assert_eq!(r.take(), msgs(1..GAP + 3));
        assert!(now > 0);
        check_invariant(&h);
        // A server that answers nothing still ends the gap after the
        // configured attempts.
        let mut h = handler(|_| {});
        h.handle_packet(FeedId::A, 0, &pkt(1, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &pkt(GAP + 2, 1), &mut r);
        let mut rounds = 0;
        while let Some(t) = h.poll_timeout() {
            h.handle_timeout(t, &mut r);
            while h.poll_request(t).is_some() {}
            rounds += 1;
        }
        assert_eq!(h.counters().lost, GAP);
        assert_eq!(rounds, 1 + 3, "the wait, then three silent rounds");
    }

    /// A server that answers one number per round recovers something every
    /// round, so no round counts as a failed attempt; the gap still ends
    /// after `request_attempts + 2 * ceil(gap / request_max_count)` rounds
    /// with the rest declared lost, not after one round per number.
    #[test]
    fn a_server_answering_one_number_per_round_ends_within_the_round_cap() {
        const GAP: u64 = 50;
        let mut h = handler(|c| {
            c.request_max_count = 10;
            c.request_timeout_ns = 10 * MS;
        });
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &pkt(GAP + 2, 1), &mut r);
        let mut rounds = 0;
        while let Some(t) = h.poll_timeout() {
            h.handle_timeout(t, &mut r);
            let mut first = None;
            while let Some(q) = h.poll_request(t) {
                first = first.or(Some(q.sequence));
            }
            if let Some(s) = first {
                rounds += 1;
                assert!(rounds <= 100, "{rounds} rounds");
                h.handle_packet(FeedId::Retransmission, t + 1, &pkt(s, 1), &mut r);
            }
        }
        // 3 attempts + 2 * ceil(50 / 10).
        assert_eq!(rounds, 13);
        let c = h.counters();
        assert_eq!(c.retransmission.recovered, 13, "{c:?}");
        assert_eq!(c.lost, GAP - 13);
        assert_eq!(c.delivered, 2 + 13);
        let mut want = msgs(1..15);
        want.push(Ev::Lost(15, GAP - 13));
        want.extend(msgs(GAP + 2..GAP + 3));
        assert_eq!(r.take(), want);
        check_invariant(&h);
    }

    #[test]
    fn retry_asks_only_what_is_still_missing() {
        let mut h = handler(|c| c.request_timeout_ns = 10 * MS);
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &pkt(10, 1), &mut r);
        h.handle_timeout(MS, &mut r);
        assert_eq!(
            h.poll_request(MS).map(|q| (q.sequence, q.count)),
            Some((2, 8))
        );
        // Part of the reply arrives (5..7), the rest is lost on the way.
        h.handle_packet(FeedId::Retransmission, 2 * MS, &pkt(5, 2), &mut r);
        h.handle_timeout(11 * MS, &mut r);
        let mut asked = Vec::new();
        while let Some(q) = h.poll_request(11 * MS) {
            asked.push((q.sequence, q.count));
        }
        assert_eq!(asked, vec![(2, 3), (7, 3)]);
        h.handle_packet(FeedId::Retransmission, 12 * MS, &pkt(2, 3), &mut r);
        h.handle_packet(FeedId::Retransmission, 12 * MS, &pkt(7, 3), &mut r);
        assert_eq!(r.take(), msgs(1..11));
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn late_message_after_loss_is_counted() {
        let mut h = handler(|c| c.recovery = false);
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 1), &mut r);
        h.handle_packet(FeedId::A, 0, &pkt(3, 1), &mut r);
        h.handle_timeout(MS, &mut r);
        h.handle_packet(FeedId::B, 2 * MS, &pkt(1, 3), &mut r);
        let mut want = msgs(1..2);
        want.push(Ev::Lost(2, 1));
        want.extend(msgs(3..4));
        assert_eq!(r.take(), want);
        let c = h.counters();
        assert_eq!((c.b.late, c.b.duplicates), (1, 2));
    }

    #[test]
    fn foreign_session_ignored_and_session_learned() {
        let mut h = FeedHandler::new(FeedConfig::default()).unwrap();
        let mut r = Rec::default();
        assert_eq!(h.session(), None);
        h.handle_packet(FeedId::A, 0, &pkt(1, 2), &mut r);
        assert_eq!(h.session(), Some(sess()));
        let other = Session::new("OTHER").unwrap();
        h.handle_packet(FeedId::B, 0, &pkt_in(other, 3, 2), &mut r);
        h.handle_packet(FeedId::B, 0, &pkt_in(other, 1, 0), &mut r);
        assert_eq!(r.take(), msgs(1..3));
        let c = h.counters();
        assert_eq!((c.b.foreign_session, c.b.packets, c.b.messages), (2, 2, 0));
        assert_eq!((c.horizon, c.gaps), (3, 0));
        // A configured session refuses another from the start.
        let mut h = handler(|_| {});
        h.handle_packet(FeedId::A, 0, &pkt_in(other, 1, 1), &mut r);
        assert!(r.take().is_empty());
        assert_eq!(h.counters().a.foreign_session, 1);
    }

    #[test]
    fn a_retransmission_never_chooses_the_session() {
        // A unicast packet to the re-request socket, before anything was
        // asked, of a session chosen by whoever sent it.
        let spoof = Session::new("SPOOF").unwrap();
        let mut h = FeedHandler::new(FeedConfig::default()).unwrap();
        let mut r = Rec::default();
        h.handle_packet(FeedId::Retransmission, 0, &pkt_in(spoof, 1, 2), &mut r);
        h.handle_packet(FeedId::Retransmission, 0, &pkt(1, 2), &mut r);
        assert_eq!(h.session(), None, "a retransmission chooses no session");
        assert!(r.take().is_empty());
        let c = h.counters();
        assert_eq!(
            (c.retransmission.foreign_session, c.retransmission.messages),
            (2, 0)
        );
        // The feed chooses it, and the spoofer's session is then foreign.
        h.handle_packet(FeedId::A, 1, &pkt(1, 3), &mut r);
        assert_eq!(h.session(), Some(sess()));
        h.handle_packet(FeedId::Retransmission, 2, &pkt_in(spoof, 4, 1), &mut r);
        h.handle_packet(FeedId::B, 3, &pkt(4, 1), &mut r);
        assert_eq!(r.take(), msgs(1..5));
        assert_eq!(h.counters().retransmission.foreign_session, 3);
        check_invariant(&h);
    }

    /// An end-of-session packet of `session`.
    fn end_in(session: Session, next: u64) -> Vec<u8> {
        let mut b = pkt_in(session, next, 0);
        Packet::new_unchecked(&mut b[..]).set_count_field(END_OF_SESSION);
        b
    }

    #[test]
    fn a_lingering_exchange_of_another_session_neither_chooses_nor_ends_ours() {
        // An exchange of an earlier run repeats the end of its session
        // (OLD, 5000 messages) while a new one (TEST1) starts.
        let old = Session::new("OLD").unwrap();
        let mut h = FeedHandler::new(FeedConfig::default()).unwrap();
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &end_in(old, 5001), &mut r);
        h.handle_packet(FeedId::B, 0, &end_in(old, 5001), &mut r);
        assert_eq!(h.session(), None, "an end of session chooses no session");
        assert!(!h.is_ended());
        h.handle_packet(FeedId::A, 1, &pkt(1, 3), &mut r);
        assert_eq!(h.session(), Some(sess()), "the live one is chosen");
        h.handle_packet(FeedId::A, 2, &end_in(old, 5001), &mut r);
        h.handle_packet(FeedId::A, 3, &pkt(4, 2), &mut r);
        h.handle_packet(FeedId::A, 4, &end_of_session(6), &mut r);
        let mut want = msgs(1..6);
        want.push(Ev::End(6));
        assert_eq!(r.take(), want);
        let c = h.counters();
        assert_eq!((c.a.foreign_end, c.b.foreign_end), (1, 1));
        assert_eq!((c.a.foreign_session, c.a.after_end, c.lost), (1, 0, 0));
        check_invariant(&h);
    }

    #[test]
    fn an_end_of_session_before_messages_received_is_not_ours() {
        // Another exchange with the same session name ended at 4; ours has
        // sent up to 10 already.
        let mut h = FeedHandler::new(FeedConfig::default()).unwrap();
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 10), &mut r);
        h.handle_packet(FeedId::B, 0, &end_of_session(4), &mut r);
        h.handle_packet(FeedId::A, 0, &end_of_session(10), &mut r);
        assert!(!h.is_ended());
        h.handle_packet(FeedId::A, 0, &pkt(11, 2), &mut r);
        assert_eq!(r.take(), msgs(1..13));
        // Ours, at the message after the last: the end.
        h.handle_packet(FeedId::B, 0, &end_of_session(13), &mut r);
        assert_eq!(r.take(), vec![Ev::End(13)]);
        let c = h.counters();
        assert_eq!((c.a.foreign_end, c.b.foreign_end), (1, 1));
        assert_eq!((c.a.after_end, c.b.after_end, c.gaps), (0, 0, 0));
        check_invariant(&h);
    }

    #[test]
    fn malformed_ignored() {
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        let good = pkt(1, 2);
        h.handle_packet(FeedId::A, 0, &good[..good.len() - 1], &mut r);
        h.handle_packet(FeedId::A, 0, &good[..5], &mut r);
        h.handle_packet(FeedId::A, 0, &[], &mut r);
        let mut long = good.clone();
        long.push(0);
        h.handle_packet(FeedId::B, 0, &long, &mut r);
        // A range that would wrap the sequence counter.
        let mut wrap = pkt(1, 2);
        Packet::new_unchecked(&mut wrap[..]).set_sequence(u64::MAX - 1);
        h.handle_packet(FeedId::B, 0, &wrap, &mut r);
        assert!(r.take().is_empty());
        let c = h.counters();
        assert_eq!((c.a.malformed, c.b.malformed, c.a.packets), (3, 2, 3));
        assert_eq!((c.horizon, c.gaps), (1, 0));
        h.handle_packet(FeedId::A, 0, &good, &mut r);
        assert_eq!(r.take(), msgs(1..3));
    }

    #[test]
    fn sequence_range_ending_at_the_top() {
        let mut h = handler(|c| c.start = Start::FirstSeen);
        let mut r = Rec::default();
        let top = u64::MAX - 2;
        let mut p = pkt(1, 2);
        Packet::new_unchecked(&mut p[..]).set_sequence(top);
        h.handle_packet(FeedId::A, 0, &p, &mut r);
        h.handle_packet(FeedId::B, 0, &p, &mut r);
        h.handle_packet(FeedId::B, 0, &heartbeat(u64::MAX), &mut r);
        assert_eq!(
            r.take(),
            vec![Ev::Msg(top, body(1)), Ev::Msg(top + 1, body(2))]
        );
        let c = h.counters();
        assert_eq!(
            (c.next_expected, c.b.duplicates, c.a.malformed),
            (u64::MAX, 2, 0)
        );
        check_invariant(&h);
    }

    #[test]
    fn end_of_session_reported_once_after_everything() {
        let mut h = handler(|c| c.recovery = false);
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 2), &mut r);
        h.handle_packet(FeedId::A, 0, &end_of_session(5), &mut r);
        assert_eq!(r.take(), msgs(1..3));
        assert!(!h.is_ended());
        h.handle_packet(FeedId::B, 0, &pkt(3, 1), &mut r);
        assert_eq!(r.take(), msgs(3..4));
        h.handle_timeout(MS, &mut r);
        assert_eq!(r.take(), vec![Ev::Lost(4, 1), Ev::End(5)]);
        assert!(h.is_ended());
        h.handle_packet(FeedId::B, 2 * MS, &end_of_session(5), &mut r);
        h.handle_packet(FeedId::B, 2 * MS, &pkt(5, 1), &mut r);
        h.handle_packet(FeedId::B, 2 * MS, &heartbeat(9), &mut r);
        assert!(r.take().is_empty());
        let c = h.counters();
        assert_eq!((c.b.after_end, c.horizon, c.next_expected), (1, 5, 5));
        check_invariant(&h);
    }

    #[test]
    fn end_of_session_in_order() {
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(1, 2), &mut r);
        h.handle_packet(FeedId::A, 0, &end_of_session(3), &mut r);
        let mut want = msgs(1..3);
        want.push(Ev::End(3));
        assert_eq!(r.take(), want);
        assert_eq!(h.poll_timeout(), None);
    }

    #[test]
    fn requests_chunked_by_max_count() {
        let mut h = handler(|c| c.request_max_count = 4);
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &heartbeat(12), &mut r);
        h.handle_timeout(MS, &mut r);
        let mut asked = Vec::new();
        while let Some(q) = h.poll_request(MS) {
            asked.push((q.sequence, q.count));
        }
        assert_eq!(asked, vec![(1, 4), (5, 4), (9, 3)]);
        let c = h.counters();
        assert_eq!((c.requests, c.requested_messages), (3, 11));
        for (s, n) in asked {
            h.handle_packet(
                FeedId::Retransmission,
                2 * MS,
                &pkt(s, u64::from(n)),
                &mut r,
            );
        }
        assert_eq!(r.take(), msgs(1..12));
    }

    #[test]
    fn too_long_gap_not_requested() {
        let mut h = handler(|c| c.max_recovery = 5);
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &heartbeat(100), &mut r);
        h.handle_timeout(MS, &mut r);
        assert_eq!(h.poll_request(MS), None);
        assert_eq!(r.take(), vec![Ev::Lost(1, 99)]);
    }

    #[test]
    fn join_at_first_packet_seen() {
        let mut h = handler(|c| c.start = Start::FirstSeen);
        let mut r = Rec::default();
        assert_eq!(h.counters().next_expected, 0);
        h.handle_packet(FeedId::A, 0, &pkt(100, 2), &mut r);
        h.handle_packet(FeedId::B, 0, &pkt(98, 3), &mut r);
        assert_eq!(r.take(), msgs(100..102));
        let c = h.counters();
        assert_eq!(
            (c.first_expected, c.b.before_start, c.b.duplicates),
            (100, 2, 1)
        );
        assert_eq!(h.poll_timeout(), None);
        check_invariant(&h);
    }

    #[test]
    fn start_from_one_recovers_what_came_before() {
        let mut h = handler(|_| {});
        let mut r = Rec::default();
        h.handle_packet(FeedId::A, 0, &pkt(4, 1), &mut r);
        h.handle_timeout(MS, &mut r);
        assert_eq!(
            h.poll_request(MS).map(|q| (q.sequence, q.count)),
            Some((1, 3))
        );
        h.handle_packet(FeedId::Retransmission, MS, &pkt(1, 3), &mut r);
        assert_eq!(r.take(), msgs(1..5));
    }

    #[test]
    fn config_validation() {
        assert_eq!(FeedConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut FeedConfig)| {
            let mut c = FeedConfig::default();
            f(&mut c);
            let e = c.validate().unwrap_err();
            assert!(!e.to_string().is_empty());
            assert_eq!(FeedHandler::new(c).unwrap_err(), e);
            e
        };
        assert_eq!(bad(|c| c.window = 1000), ConfigError::Window(1000));
        assert_eq!(bad(|c| c.window = 0), ConfigError::Window(0));
        assert_eq!(bad(|c| c.buffer_bytes = 100), ConfigError::BufferBytes(100));
        assert_eq!(bad(|c| c.max_gaps = 0), ConfigError::MaxGaps);
        assert_eq!(
            bad(|c| c.request_max_count = 0),
            ConfigError::RequestMaxCount(0)
        );
        assert_eq!(
            bad(|c| c.request_attempts = 0),
            ConfigError::RequestAttempts
        );
        assert_eq!(
            bad(|c| c.request_timeout_ns = 0),
            ConfigError::RequestTimeout
        );
        let off = FeedConfig {
            recovery: false,
            request_attempts: 0,
            ..FeedConfig::default()
        };
        assert_eq!(off.validate(), Ok(()));
    }

    #[test]
    fn lost_history_wraps() {
        let mut l = LostHistory {
            ranges: [(0, 0); LOST_HISTORY],
            len: 0,
            newest: 0,
        };
        for i in 0..100u64 {
            l.push(i * 10, i * 10 + 3);
        }
        l.push(1003, 1005);
        assert!(l.contains(1004) && l.contains(1003) && !l.contains(1005) && !l.contains(1000));
        // Adjacent ranges merge rather than push out an old one.
        l.push(1005, 1007);
        assert!(l.contains(1006) && l.contains(370));
        assert!(l.contains(990) && !l.contains(993));
        // 64 ranges are kept: 370..373 to 990..993, and 1003..1007.
        assert!(!l.contains(360) && !l.contains(5));
    }

    /// SplitMix64: a seeded stream for the randomized test.
    struct Prng(u64);

    impl Prng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    /// Lossy, duplicating, reordering A and B lines over a simulated clock,
    /// a lossless re-request server: every message arrives exactly once, in
    /// order, and the session end is reported.
    #[test]
    fn randomized_lossy_lines_lossless_recovery() {
        let seeds: u64 = std::env::var("FEED_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(40);
        let mut sum = Counters::default();
        for seed in 0..seeds {
            let c = run_randomized(seed);
            sum.requests += c.requests;
            sum.retransmission.recovered += c.retransmission.recovered;
            sum.a.recovered += c.a.recovered + c.b.recovered;
            sum.a.duplicates += c.a.duplicates + c.b.duplicates;
            sum.a.gaps += c.a.gaps + c.b.gaps;
            sum.buffered_high_water = sum.buffered_high_water.max(c.buffered_high_water);
        }
        // The faults did happen, and each kind of repair was exercised.
        assert!(sum.requests > 0 && sum.retransmission.recovered > 0);
        assert!(sum.a.recovered > 0 && sum.a.duplicates > 0 && sum.a.gaps > 0);
        assert!(sum.buffered_high_water > 10);
    }

    fn run_randomized(seed: u64) -> Counters {
        let mut rng = Prng(seed);
        let total: u64 = 2_000 + rng.below(2_000);
        let loss = rng.below(20);
        // Build the exchange's packets: (send time, first, count).
        let mut packets = Vec::new();
        let mut s = 1;
        let mut t = 0;
        while s <= total {
            let n = (1 + rng.below(6)).min(total + 1 - s);
            packets.push((t, s, n));
            s += n;
            t += 1_000 + rng.below(20_000);
        }
        // Events: (arrival time, tiebreak, feed, bytes).
        let mut events: Vec<(u64, u64, FeedId, Vec<u8>)> = Vec::new();
        let mut k = 0;
        for feed in [FeedId::A, FeedId::B] {
            let base = rng.below(300_000);
            for &(t, first, n) in &packets {
                if rng.chance(loss) {
                    continue;
                }
                let copies = if rng.chance(3) { 2 } else { 1 };
                for _ in 0..copies {
                    // Jitter reorders packets within a line.
                    let at = t + base + rng.below(60_000);
                    k += 1;
                    events.push((at, k, feed, pkt(first, n)));
                }
            }
            // The session end, repeated; the last copy on A always arrives.
            for i in 0..3 {
                if feed == FeedId::B && rng.chance(50) {
                    continue;
                }
                k += 1;
                events.push((t + base + i * 1_000_000, k, feed, end_of_session(total + 1)));
            }
        }
        events.sort_by_key(|e| (e.0, e.1));
        let config = FeedConfig {
            session: Some(sess()),
            window: 4096,
            gap_wait_ns: 500_000,
            request_timeout_ns: 5_000_000,
            request_max_count: 1 + rng.below(40) as u16,
            ..FeedConfig::default()
        };
        let mut h = FeedHandler::new(config).unwrap();
        let mut r = Rec::default();
        // The re-request server answers after a delay, never losing.
        let mut replies: Vec<(u64, u64, u64)> = Vec::new();
        let mut i = 0;
        loop {
            let next_ev = events.get(i).map(|e| e.0);
            let next_reply = replies.iter().map(|r| r.0).min();
            let next_timer = h.poll_timeout();
            let Some(now) = [next_ev, next_reply, next_timer]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            while let Some(e) = events.get(i).filter(|e| e.0 <= now) {
                h.handle_packet(e.2, now, &e.3, &mut r);
                i += 1;
            }
            let mut j = 0;
            while j < replies.len() {
                if replies[j].0 <= now {
                    let (_, first, n) = replies.swap_remove(j);
                    let n = n.min(total + 1 - first.min(total + 1));
                    if n > 0 {
                        h.handle_packet(FeedId::Retransmission, now, &pkt(first, n), &mut r);
                    }
                } else {
                    j += 1;
                }
            }
            if h.poll_timeout().is_some_and(|t| t <= now) {
                h.handle_timeout(now, &mut r);
            }
            while let Some(q) = h.poll_request(now) {
                assert!(q.count >= 1 && q.count <= config.request_max_count);
                // Reply in packets of at most 5 messages.
                let mut f = q.sequence;
                let end = q.sequence + u64::from(q.count);
                while f < end {
                    let n = (end - f).min(5);
                    replies.push((now + 200_000 + rng.below(300_000), f, n));
                    f += n;
                }
            }
            check_invariant(&h);
        }
        let mut want = msgs(1..total + 1);
        want.push(Ev::End(total + 1));
        let got = r.take();
        assert_eq!(got.len(), want.len(), "seed {seed}");
        assert!(got == want, "seed {seed}");
        let c = h.counters();
        assert_eq!(
            (c.delivered, c.lost, c.buffered),
            (total, 0, 0),
            "seed {seed}"
        );
        let recovered = c.a.recovered + c.b.recovered + c.retransmission.recovered;
        assert!(recovered <= total);
        c
    }
}
