//! `mem://NAME`: an in-process pair of endpoints over two lock-free
//! single-producer single-consumer queues, the role of DPDK's `net_ring`:
//! exchange → feed handler, ping → pong, in one process without sockets,
//! for tests, simulations and the floor row of the ladder.
//!
//! The first endpoint opened under a name creates the pair; one server and
//! one client may be open at a time. The client's messages go to the
//! server's queue and the other way round; a message sent before the other
//! end opens waits in its queue. `to` addresses are ignored (there is one
//! peer) and received messages carry no peer address.
//!
//! Layer: a backend, and ring code: one of the modules of the crate allowed
//! `unsafe` (`#![allow(unsafe_code)]`), for the queue slots shared between
//! two threads. The invariants that make that sound:
//! - each queue has exactly one producer and one consumer: the pair hands
//!   each role's end out once at a time ([`MemTransport::open`]), and every
//!   method that touches the slots takes `&mut self`, so one thread at a
//!   time drives each end (the `&self` methods only read atomics);
//! - the producer writes slot `head % slots` only while `head - tail <
//!   slots` (the slot is free: the consumer moved past it), then publishes
//!   it with a `Release` store of `head + 1`; the consumer reads slots
//!   below `head` (loaded with `Acquire`) and hands them back with a
//!   `Release` store of `tail`, which the producer loads with `Acquire`
//!   before reusing them. So a slot is written by one side, then read by
//!   the other, never both at once; head and tail sit on their own cache
//!   lines, and each side caches the other's index (rigtorp's SPSCQueue).
//! - a consumer that sleeps announces it (`sleeping`) and re-checks the
//!   queue after a `SeqCst` fence; a producer whose consumer may sleep
//!   fences after publishing and wakes it (a futex on `seq`) when it sees
//!   the announcement. Dekker's argument: at least one of the two sees the
//!   other's store, so no wake-up is lost. A spinning consumer says so at
//!   open and spares its producer the fence; a consumer that sleeps on a
//!   queue a spinning one had says so before its first sleep, which it
//!   bounds to [`FIRST_SLEEP`] since a send under way may not have seen it.
//!
//! Leases lend received payloads in their queue slot and let the caller
//! write a message straight into the peer's queue slot: no copy at all
//! between the two ends' buffers.

#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::net::SocketAddr;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::futex::{self, Deadline, Scope, WaitOutcome};
use serde::Serialize;

use crate::Role;
use crate::backend::{Backend, CapsSection, Placement, RungContext, RungSpec};
use crate::capabilities::{Capabilities, CopyMode, LeaseMode};
use crate::error::OpenError;
use crate::l2::frames::{RingWait, Wait};
use crate::transport::{Addrs, Lease, RxBurst, RxMeta, RxStrategy, Transport, TxLease, TxMsg};
use crate::uri::{Uri, UriError};

/// Slots per queue unless `slots=` says otherwise.
pub const DEFAULT_SLOTS: u32 = 1024;

/// Most bytes of one direction's queue (`slots=` x `size=`): 1 GiB, the
/// bound of every ring of this crate. 2^20 slots of 64 KiB (64 GiB) were
/// accepted before and allocated on open.
pub const MAX_QUEUE_BYTES: u64 = 1 << 30;

/// Bytes per slot (the largest message) unless `size=` says otherwise.
pub const DEFAULT_SLOT_SIZE: u32 = 2048;
/// How long a send with `full=wait` waits for a free slot unless
/// `full_wait=` says otherwise.
pub const FULL_WAIT: Duration = Duration::from_millis(10);
/// The longest first sleep of a receiver on a queue a spinning receiver
/// had (see the module doc).
pub const FIRST_SLEEP: Duration = Duration::from_millis(1);
/// The addresses a capture (`pcap=`) writes for the server end and the
/// client end of a pair, which have none of their own.
pub const CAPTURE_ADDRS: [&str; 2] = ["127.0.0.1:1", "127.0.0.2:2"];

/// What a send does when the peer's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Full {
    /// Drop the message and count it, as a full socket buffer does: the
    /// sender never waits (`full=drop`, the default).
    Drop,
    /// Wait up to `full_wait=` ([`FULL_WAIT`] by default) for the receiver
    /// to make room, then fail with `ENOBUFS` (`full=wait`).
    Wait,
}

/// A `mem://` endpoint, as parsed from a URI or built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemConfig {
    /// The pair's name (the URI's authority).
    pub name: String,
    /// Slots per queue, a power of two (`slots=`).
    pub slots: u32,
    /// Bytes per slot: the largest message (`size=`).
    pub slot_size: u32,
    /// What a send does when the queue is full (`full=drop|wait`).
    pub full: Full,
    /// How long a send with `full=wait` waits for room (`full_wait=`).
    pub full_wait: Duration,
    /// How receives wait (`rx=spin|block|adaptive`, `spins=`).
    pub strategy: RxStrategy,
    /// `cpu=`.
    pub cpu: Option<usize>,
}

const MEM_PARAMS: &[&str] = &[
    "slots",
    "size",
    "full",
    "full_wait",
    "rx",
    "spins",
    "busy_poll",
    "busy_budget",
    "prefer_busy_poll",
    "cpu",
];

impl MemConfig {
    /// A pair named `name` with the default sizes, dropping on full,
    /// blocking receives.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            slots: DEFAULT_SLOTS,
            slot_size: DEFAULT_SLOT_SIZE,
            full: Full::Drop,
            full_wait: FULL_WAIT,
            strategy: RxStrategy::Block,
            cpu: None,
        }
    }

    /// Reads a `mem://` URI.
    ///
    /// # Errors
    /// [`UriError`] naming the parameter at fault and what it accepts.
    pub fn from_uri(uri: &Uri) -> Result<Self, UriError> {
        let name = &uri.authority;
        if name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(UriError::Malformed {
                uri: uri.text.clone(),
                reason: format!(
                    "mem:// takes a name of up to 64 letters, digits, '-', '_' or '.', \
                     e.g. mem://feed-a; found {name:?}"
                ),
            });
        }
        let mut c = Self::new(name);
        let mut p = uri.params(&[MEM_PARAMS]);
        if let Some(n) = p.get_with("slots", "a power of two from 2 to 1048576", |v| {
            crate::uri::parse_int(v).filter(|n| (2..=1 << 20).contains(n) && n & (n - 1) == 0)
        })? {
            c.slots = n as u32;
        }
        if let Some(n) = p.get_with("size", "a size from 64 bytes to 64K, e.g. 2048", |v| {
            crate::uri::parse_size(v).filter(|n| (64..=65536).contains(n))
        })? {
            c.slot_size = n as u32;
        }
        if u64::from(c.slots) * u64::from(c.slot_size) > MAX_QUEUE_BYTES {
            return Err(UriError::BadValue {
                param: "slots".into(),
                value: format!("{} (with size={})", c.slots, c.slot_size),
                expected: format!(
                    "slots x size within {} MiB per queue (MAX_QUEUE_BYTES): lower slots= or size=",
                    MAX_QUEUE_BYTES >> 20
                ),
            });
        }
        c.full = match p.choice("full", &["drop", "wait"])? {
            Some("wait") => Full::Wait,
            _ => Full::Drop,
        };
        if let Some(d) = p.get_with("full_wait", "a duration from 1us to 60s, e.g. 10ms", |v| {
            crate::uri::parse_duration(v)
                .filter(|d| (Duration::from_micros(1)..=Duration::from_secs(60)).contains(d))
        })? {
            if c.full != Full::Wait {
                return Err(UriError::BadValue {
                    param: "full_wait".into(),
                    value: format!("{d:?}"),
                    expected: "full=wait with it (with full=drop a send never waits)".into(),
                });
            }
            c.full_wait = d;
        }
        c.strategy = RxStrategy::from_params_without_device(&mut p, "an in-process queue")?;
        c.cpu = p.int("cpu", 0..=4095)?.map(|v| v as usize);
        p.finish()?;
        Ok(c)
    }

    /// The largest message: a slot.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.slot_size as usize
    }
}

/// The `mem://` backend.
#[derive(Debug)]
pub struct MemBackend;

impl Backend for MemBackend {
    const SCHEMES: &'static [&'static str] = &["mem"];
    type Config = MemConfig;
    type Transport = MemTransport;
    type Caps = MemCaps;

    fn parse(uri: &Uri) -> Result<MemConfig, UriError> {
        MemConfig::from_uri(uri)
    }

    fn open(cfg: &MemConfig, role: Role) -> Result<MemTransport, OpenError> {
        MemTransport::open(cfg, role)
    }

    fn max_message(cfg: &MemConfig) -> usize {
        cfg.max_message()
    }

    fn burst(_: &MemConfig) -> usize {
        32
    }

    fn cpu(cfg: &MemConfig) -> Option<usize> {
        cfg.cpu
    }

    fn placement(_: &str) -> Placement {
        Placement::InProcess
    }

    fn rungs(_: &str, ctx: &RungContext<'_>) -> Vec<RungSpec> {
        ["block", "spin"]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                RungSpec::same(
                    s,
                    format!("mem://ladder-{}?rx={s}", u32::from(ctx.port) + i as u32),
                )
            })
            .collect()
    }
}

/// An index on a cache line of its own.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Line<T>(T);

/// One direction: a single-producer single-consumer queue of slots.
struct Queue {
    /// Next slot the producer writes (published with Release).
    head: Line<AtomicU64>,
    /// Next slot the consumer reads (handed back with Release).
    tail: Line<AtomicU64>,
    /// Bumped by the producer to wake a sleeping consumer (the futex word).
    seq: Line<AtomicU32>,
    /// The consumer is about to sleep or sleeping.
    sleeping: AtomicU32,
    /// The consumer may sleep (not spinning): the producer must check.
    may_sleep: AtomicBool,
    /// Messages dropped on a full queue (producer only).
    dropped: AtomicU64,
    slots: u64,
    size: usize,
    lens: Box<[UnsafeCell<u32>]>,
    data: Slots,
}

/// The slots' bytes: a zeroed heap block (calloc'd, so its pages are only
/// touched when used) reached only through its raw pointer, so writes by
/// the producer and reads by the consumer never form overlapping Rust
/// references to the block as a whole.
struct Slots {
    ptr: NonNull<u8>,
    len: usize,
}

impl Slots {
    fn zeroed(len: usize) -> Self {
        let b: Box<[u8]> = vec![0u8; len].into_boxed_slice();
        let len = b.len();
        let raw = Box::into_raw(b);
        Self {
            ptr: NonNull::new(raw.cast()).expect("Box::into_raw is never null"),
            len,
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // SAFETY: exactly the block `zeroed` leaked from its box; nothing
        // borrows it any more (the queue that owns it is being dropped).
        drop(unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len,
            ))
        });
    }
}

// SAFETY: the slots are shared by exactly one producer and one consumer,
// which touch a slot only while the head/tail protocol of the module doc
// gives it to them; everything else is atomic.
unsafe impl Sync for Queue {}
// SAFETY: as above; the queue owns its buffers.
unsafe impl Send for Queue {}

impl Queue {
    fn new(slots: u32, size: u32) -> Self {
        let slots = u64::from(slots);
        let size = size as usize;
        Self {
            head: Line::default(),
            tail: Line::default(),
            seq: Line::default(),
            sleeping: AtomicU32::new(0),
            may_sleep: AtomicBool::new(true),
            dropped: AtomicU64::new(0),
            slots,
            size,
            lens: (0..slots).map(|_| UnsafeCell::new(0)).collect(),
            data: Slots::zeroed(slots as usize * size),
        }
    }

    /// Slot `i`'s bytes, to write.
    ///
    /// # Safety
    /// The caller is the producer and slot `i` is free (`head - tail <
    /// slots` for `i = head`), so nobody else touches it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slot_mut(&self, i: u64) -> &mut [u8] {
        let at = (i % self.slots) as usize * self.size;
        // SAFETY: in bounds (`at + size <= slots * size = data.len`); the
        // block is only reached through its raw pointer; exclusivity of the
        // slot is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.data.ptr.as_ptr().add(at), self.size) }
    }

    /// Slot `i`'s message, to read.
    ///
    /// # Safety
    /// The caller is the consumer and slot `i` is published (`i < head`,
    /// loaded with Acquire) and not yet handed back.
    unsafe fn slot(&self, i: u64) -> &[u8] {
        let k = (i % self.slots) as usize;
        // SAFETY: published by the producer before its Release store of
        // head, which the caller loaded with Acquire; the producer does not
        // write it again until the caller's tail moves past it.
        let len = unsafe { *self.lens[k].get() } as usize;
        let at = k * self.size;
        // SAFETY: as above; in bounds, `len <= size` (checked by `commit`).
        unsafe { std::slice::from_raw_parts(self.data.ptr.as_ptr().add(at), len.min(self.size)) }
    }

    /// Publishes slot `i` with `len` bytes.
    ///
    /// # Safety
    /// As [`Self::slot_mut`].
    unsafe fn commit(&self, i: u64, len: usize) {
        let k = (i % self.slots) as usize;
        // SAFETY: the producer owns the free slot.
        unsafe { *self.lens[k].get() = len.min(self.size) as u32 };
        self.head.0.store(i + 1, Ordering::Release);
        if self.may_sleep.load(Ordering::Relaxed) {
            fence(Ordering::SeqCst);
            if self.sleeping.load(Ordering::Relaxed) != 0 {
                self.seq.0.fetch_add(1, Ordering::Release);
                let _ = futex::wake(&self.seq.0, Scope::Private, 1);
            }
        }
    }
}

/// Two queues and who has which end.
struct Pair {
    name: String,
    /// `[0]`: client → server; `[1]`: server → client.
    queues: [Queue; 2],
    /// `[0]`: a server is open; `[1]`: a client is open.
    open: [AtomicBool; 2],
    slots: u32,
    slot_size: u32,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("name", &self.name)
            .field("slots", &self.slots)
            .field("slot_size", &self.slot_size)
            .finish_non_exhaustive()
    }
}

/// The live pairs of this process, by name.
static PAIRS: Mutex<Vec<Weak<Pair>>> = Mutex::new(Vec::new());

fn end_index(role: Role) -> usize {
    match role {
        Role::Server => 0,
        Role::Client => 1,
    }
}

/// The receiving side of an end.
#[derive(Debug)]
struct RxEnd {
    pair: Arc<Pair>,
    q: usize,
    tail: u64,
    head_cache: u64,
    received: u64,
    sleeps: u64,
}

/// The sending side of an end.
#[derive(Debug)]
struct TxEnd {
    pair: Arc<Pair>,
    q: usize,
    head: u64,
    tail_cache: u64,
    full: Full,
    full_wait: Duration,
    sent: u64,
    waits: u64,
}

/// One end of a `mem://` pair.
#[derive(Debug)]
pub struct MemTransport {
    rx: RxEnd,
    tx: TxEnd,
    role: Role,
    strategy: RxStrategy,
    timeout: Option<Duration>,
    notes: Vec<String>,
}

/// The transmit side of a `mem://` lease: messages are written straight
/// into the peer's queue.
#[derive(Debug)]
pub struct MemTx<'a> {
    tx: &'a mut TxEnd,
}

/// The `mem://` section of the capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemCaps {
    /// The pair's name.
    pub name: String,
    /// `server` or `client`.
    pub end: &'static str,
    /// Slots per queue.
    pub slots: u32,
    /// Bytes per slot.
    pub slot_size: u32,
    /// What a send does on a full queue.
    pub full: Full,
    /// Whether the other end is open now.
    pub peer_open: bool,
    /// Messages sent (into the peer's queue).
    pub sent: u64,
    /// Messages dropped on a full queue.
    pub dropped: u64,
    /// Sends that waited for room (`full=wait`).
    pub full_waits: u64,
    /// Messages received.
    pub received: u64,
    /// Times a receive slept in the kernel.
    pub sleeps: u64,
}

impl CapsSection for MemCaps {
    fn lines(&self, out: &mut Vec<(String, String)>) {
        out.push((
            "mem".into(),
            format!(
                "{} end of {:?}: {} slots of {} bytes, full={}, peer {}",
                self.end,
                self.name,
                self.slots,
                self.slot_size,
                match self.full {
                    Full::Drop => "drop",
                    Full::Wait => "wait",
                },
                if self.peer_open { "open" } else { "not open" }
            ),
        ));
    }
}

impl MemTransport {
    /// Opens the `role` end of the pair named in `cfg`, creating the pair
    /// when it is the first end.
    ///
    /// # Errors
    /// [`OpenError::Setup`] (`EADDRINUSE`) when that end is already open in
    /// this process, or when the pair exists with other sizes.
    pub fn open(cfg: &MemConfig, role: Role) -> Result<Self, OpenError> {
        let pair = {
            let mut pairs = PAIRS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pairs.retain(|w| w.strong_count() > 0);
            match pairs
                .iter()
                .filter_map(Weak::upgrade)
                .find(|p| p.name == cfg.name)
            {
                Some(p) => p,
                None => {
                    let p = Arc::new(Pair {
                        name: cfg.name.clone(),
                        queues: [
                            Queue::new(cfg.slots, cfg.slot_size),
                            Queue::new(cfg.slots, cfg.slot_size),
                        ],
                        open: [AtomicBool::new(false), AtomicBool::new(false)],
                        slots: cfg.slots,
                        slot_size: cfg.slot_size,
                    });
                    pairs.push(Arc::downgrade(&p));
                    p
                }
            }
        };
        let in_use = |step: String| OpenError::Setup {
            step,
            cause: SyscallError::from_errno("mem://", libc::EADDRINUSE),
        };
        if (pair.slots, pair.slot_size) != (cfg.slots, cfg.slot_size) {
            return Err(in_use(format!(
                "mem://{} is open with slots={} size={}; open both ends with the same sizes \
                 (asked slots={} size={})",
                cfg.name, pair.slots, pair.slot_size, cfg.slots, cfg.slot_size
            )));
        }
        let me = end_index(role);
        if pair.open[me].swap(true, Ordering::AcqRel) {
            return Err(in_use(format!(
                "the {} end of mem://{} is already open in this process (one server and one \
                 client per name)",
                match role {
                    Role::Server => "server",
                    Role::Client => "client",
                },
                cfg.name
            )));
        }
        // The server receives from queue 0 and sends on queue 1.
        let (rq, tq) = (me, 1 - me);
        let q = &pair.queues[rq];
        q.may_sleep
            .store(cfg.strategy != RxStrategy::Spin, Ordering::Relaxed);
        let tail = q.tail.0.load(Ordering::Acquire);
        let t = &pair.queues[tq];
        let head = t.head.0.load(Ordering::Acquire);
        let tail_cache = t.tail.0.load(Ordering::Acquire);
        let notes = vec![format!(
            "in-process queues of {} slots of {} bytes each way; full={}",
            cfg.slots,
            cfg.slot_size,
            match cfg.full {
                Full::Drop => "drop (sends never wait; drops counted)".to_string(),
                Full::Wait => format!("wait (sends wait up to {:?} for room)", cfg.full_wait),
            }
        )];
        Ok(Self {
            rx: RxEnd {
                pair: pair.clone(),
                q: rq,
                tail,
                head_cache: tail,
                received: 0,
                sleeps: 0,
            },
            tx: TxEnd {
                pair,
                q: tq,
                head,
                tail_cache,
                full: cfg.full,
                full_wait: cfg.full_wait,
                sent: 0,
                waits: 0,
            },
            role,
            strategy: cfg.strategy,
            timeout: None,
            notes,
        })
    }

    /// Waits per strategy until a message is queued for us or `deadline`
    /// passes; returns whether one is.
    #[inline]
    fn wait(&mut self, deadline: Option<Instant>) -> Result<bool, SyscallError> {
        if self.rx.available() > 0 {
            return Ok(true);
        }
        let deadline = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
        let mut w = RingWait::new(self.strategy, deadline);
        loop {
            match w.after_empty_poll() {
                Wait::Again => {}
                Wait::TimedOut => return Ok(false),
                Wait::Sleep(left) => self.rx.sleep(left)?,
            }
            if self.rx.available() > 0 {
                return Ok(true);
            }
        }
    }

    fn recv_impl(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        burst.set_len(0);
        if !self.wait(deadline)? {
            return Ok(0);
        }
        let n = self.rx.take(burst.capacity(), |i, data| {
            let slot = burst.slots_from(i).next().expect("i < capacity");
            let len = data.len().min(slot.len());
            slot[..len].copy_from_slice(&data[..len]);
            burst.set(
                i,
                RxMeta {
                    len,
                    wire_len: data.len(),
                    truncated: len < data.len(),
                    ..RxMeta::default()
                },
            );
        });
        burst.set_len(n);
        Ok(n)
    }
}

impl RxEnd {
    fn queue(&self) -> &Queue {
        &self.pair.queues[self.q]
    }

    /// Messages published and not yet taken (loads the head when the cached
    /// one says none).
    #[inline]
    fn available(&mut self) -> u64 {
        if self.head_cache == self.tail {
            self.head_cache = self.queue().head.0.load(Ordering::Acquire);
        }
        self.head_cache - self.tail
    }

    /// Sleeps on the futex until the producer publishes, or `left` passes.
    fn sleep(&mut self, left: Option<Duration>) -> Result<(), SyscallError> {
        let q = &self.pair.queues[self.q];
        let mut left = left;
        if !q.may_sleep.load(Ordering::Relaxed) {
            q.may_sleep.store(true, Ordering::SeqCst);
            left = Some(left.map_or(FIRST_SLEEP, |l| l.min(FIRST_SLEEP)));
        }
        let seq = q.seq.0.load(Ordering::Acquire);
        q.sleeping.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if q.head.0.load(Ordering::Acquire) != self.tail {
            q.sleeping.store(0, Ordering::Relaxed);
            return Ok(());
        }
        let deadline = match left {
            Some(l) => Some(Deadline::after(l)?),
            None => None,
        };
        self.sleeps += 1;
        let r = futex::wait(&q.seq.0, seq, Scope::Private, deadline);
        q.sleeping.store(0, Ordering::Relaxed);
        match r? {
            WaitOutcome::Woken
            | WaitOutcome::ValueChanged
            | WaitOutcome::TimedOut
            | WaitOutcome::Interrupted => Ok(()),
        }
    }

    /// Hands up to `max` queued messages to `f` in place (index, bytes),
    /// then gives their slots back to the producer; returns how many.
    #[inline]
    fn take(&mut self, max: usize, mut f: impl FnMut(usize, &[u8])) -> usize {
        let n = self.available().min(max as u64);
        let q = &self.pair.queues[self.q];
        for k in 0..n {
            // SAFETY: we are this queue's one consumer (the end is ours),
            // and slot tail + k is below the head we loaded with Acquire.
            let data = unsafe { q.slot(self.tail + k) };
            f(k as usize, data);
        }
        self.tail += n;
        q.tail.0.store(self.tail, Ordering::Release);
        self.received += n;
        n as usize
    }
}

impl TxEnd {
    fn queue(&self) -> &Queue {
        &self.pair.queues[self.q]
    }

    /// Whether a slot is free (loads the tail when the cached one says none).
    #[inline]
    fn room(&mut self) -> bool {
        let slots = self.queue().slots;
        if self.head - self.tail_cache >= slots {
            self.tail_cache = self.queue().tail.0.load(Ordering::Acquire);
        }
        self.head - self.tail_cache < slots
    }

    /// Writes one message with `fill` (given the slot, returning the
    /// length); drops it, waits, or fails when the queue is full, per policy.
    #[inline]
    fn push(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> Result<(), SyscallError> {
        if !self.room() {
            match self.full {
                Full::Drop => {
                    self.queue().dropped.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Full::Wait => {
                    self.waits += 1;
                    let until = Instant::now() + self.full_wait;
                    while !self.room() {
                        if Instant::now() >= until {
                            return Err(SyscallError::from_errno(
                                "mem:// send (the receiver left the queue full for all of full_wait=, 10 ms unless \
                                 the URI says otherwise)",
                                libc::ENOBUFS,
                            ));
                        }
                        std::thread::yield_now();
                    }
                }
            }
        }
        let q = &self.pair.queues[self.q];
        // SAFETY: we are this queue's one producer and `room` saw the slot
        // at head free.
        let slot = unsafe { q.slot_mut(self.head) };
        let len = fill(slot);
        if len > q.size {
            return Err(SyscallError::from_errno(
                "mem:// send (message longer than a slot: raise size=)",
                libc::EMSGSIZE,
            ));
        }
        // SAFETY: as above; the slot is written.
        unsafe { q.commit(self.head, len) };
        self.head += 1;
        self.sent += 1;
        Ok(())
    }
}

impl TxLease for MemTx<'_> {
    #[inline]
    fn send_with(
        &mut self,
        _to: Option<SocketAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), SyscallError> {
        self.tx.push(fill)
    }

    fn max_message(&self) -> usize {
        self.tx.queue().size
    }
}

impl Drop for MemTransport {
    fn drop(&mut self) {
        self.rx.pair.open[end_index(self.role)].store(false, Ordering::Release);
    }
}

impl Transport for MemTransport {
    #[inline]
    fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
        self.recv_impl(burst, None)
    }

    #[inline]
    fn recv_burst_until(
        &mut self,
        burst: &mut RxBurst,
        deadline: Instant,
    ) -> Result<usize, SyscallError> {
        self.recv_impl(burst, Some(deadline))
    }

    #[inline]
    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        let size = self.tx.queue().size;
        for (i, m) in msgs.iter().enumerate() {
            let r = if m.data.len() > size {
                Err(SyscallError::from_errno(
                    "mem:// send (message longer than a slot: raise size=)",
                    libc::EMSGSIZE,
                ))
            } else {
                self.tx.push(|slot| {
                    slot[..m.data.len()].copy_from_slice(m.data);
                    m.data.len()
                })
            };
            if let Err(e) = r {
                return if i == 0 { Err(e) } else { Ok(i) };
            }
        }
        Ok(msgs.len())
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        self.timeout = timeout;
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        let p = &self.rx.pair;
        Capabilities {
            transport: "mem",
            rx_strategy: self.strategy.name(),
            local: None,
            peer: None,
            max_message: p.slot_size as usize,
            mode: CopyMode::Copy,
            lease: LeaseMode::InPlace,
            burst: 32,
            backend: Some(
                MemCaps {
                    name: p.name.clone(),
                    end: match self.role {
                        Role::Server => "server",
                        Role::Client => "client",
                    },
                    slots: p.slots,
                    slot_size: p.slot_size,
                    full: self.tx.full,
                    peer_open: p.open[1 - end_index(self.role)].load(Ordering::Acquire),
                    sent: self.tx.sent,
                    dropped: self.tx.queue().dropped.load(Ordering::Relaxed),
                    full_waits: self.tx.waits,
                    received: self.rx.received,
                    sleeps: self.rx.sleeps,
                }
                .into(),
            ),
            middleware: None,
            notes: self.notes.clone(),
        }
    }

    /// Made-up addresses, so a capture tells the two ends apart:
    /// [`CAPTURE_ADDRS`] (the server end's first).
    fn addrs(&self) -> Addrs {
        let [server, client] =
            CAPTURE_ADDRS.map(|a| a.parse::<SocketAddr>().expect("literal addresses parse"));
        let (local, peer) = match self.role {
            Role::Server => (server, client),
            Role::Client => (client, server),
        };
        Addrs {
            local: Some(local),
            peer: Some(peer),
        }
    }
}

impl Lease for MemTransport {
    const IN_PLACE: bool = true;
    type Tx<'a> = MemTx<'a>;

    #[inline]
    fn recv_lease<F>(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
        mut f: F,
    ) -> Result<usize, SyscallError>
    where
        F: FnMut(&[u8], &RxMeta, &mut Self::Tx<'_>),
    {
        if !self.wait(deadline)? {
            return Ok(0);
        }
        let mut tx = MemTx { tx: &mut self.tx };
        Ok(self.rx.take(max.max(1), |_, data| {
            let meta = RxMeta {
                len: data.len(),
                wire_len: data.len(),
                ..RxMeta::default()
            };
            f(data, &meta, &mut tx);
        }))
    }

    #[inline]
    fn send_lease<R>(&mut self, f: impl FnOnce(&mut Self::Tx<'_>) -> R) -> Result<R, SyscallError> {
        Ok(f(&mut MemTx { tx: &mut self.tx }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(q: &str) -> Result<MemConfig, UriError> {
        MemConfig::from_uri(&Uri::parse(&format!("mem://{q}")).unwrap())
    }

    #[test]
    fn uri_parameters() {
        let c = cfg("pair").unwrap();
        assert_eq!((c.slots, c.slot_size, c.full), (1024, 2048, Full::Drop));
        let c = cfg("a-b.c_d?slots=8&size=4K&full=wait&rx=spin&cpu=1").unwrap();
        assert_eq!((c.slots, c.slot_size, c.full), (8, 4096, Full::Wait));
        assert_eq!((c.strategy, c.cpu), (RxStrategy::Spin, Some(1)));
        for (q, want) in [
            ("x?slots=3", "power of two"),
            ("x?size=10", "from 64 bytes"),
            ("x?full=block", "drop, wait"),
            ("x?rx=busy-poll", "no device"),
            ("x?port=1", "accepted parameters"),
            ("a:b", "name of up to 64"),
        ] {
            let e = cfg(q).unwrap_err().to_string();
            assert!(e.contains(want), "{q}: {e}");
        }
    }

    #[test]
    fn a_pair_carries_both_ways_and_ends_are_exclusive() {
        let c = MemConfig::new("unit-pair");
        let mut s = MemTransport::open(&c, Role::Server).unwrap();
        let mut k = MemTransport::open(&c, Role::Client).unwrap();
        let e = MemTransport::open(&c, Role::Server).unwrap_err().to_string();
        assert!(e.contains("already open"), "{e}");
        let other = MemConfig {
            slots: 8,
            ..MemConfig::new("unit-pair")
        };
        let e = MemTransport::open(&other, Role::Client).unwrap_err().to_string();
        assert!(e.contains("same sizes"), "{e}");
        k.send(b"ping", None).unwrap();
        s.set_recv_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut b = RxBurst::new(4, 64);
        assert_eq!(s.recv_burst(&mut b).unwrap(), 1);
        assert_eq!(b.get(0).0, b"ping");
        s.send(b"pong", None).unwrap();
        k.set_recv_timeout(Some(Duration::from_millis(10))).unwrap();
        assert_eq!(k.recv_burst(&mut b).unwrap(), 1);
        assert_eq!(b.get(0).0, b"pong");
        assert_eq!(k.recv_burst(&mut b).unwrap(), 0, "times out empty");
        drop(s);
        let _again = MemTransport::open(&c, Role::Server).unwrap();
    }

    #[test]
    fn captures_tell_the_two_ends_apart() {
        let c = MemConfig::new("unit-addrs");
        let s = MemTransport::open(&c, Role::Server).unwrap();
        let k = MemTransport::open(&c, Role::Client).unwrap();
        let (sa, ka) = (s.addrs(), k.addrs());
        assert_eq!(sa.local, ka.peer);
        assert_eq!(sa.peer, ka.local);
        assert_ne!(sa.local, sa.peer);
        assert_eq!(sa.local.unwrap().to_string(), CAPTURE_ADDRS[0]);
    }

    #[test]
    fn full_queues_drop_and_count_or_wait_and_fail() {
        let c = MemConfig {
            slots: 4,
            ..MemConfig::new("unit-full")
        };
        let mut k = MemTransport::open(&c, Role::Client).unwrap();
        for i in 0..10u8 {
            k.send(&[i], None).unwrap();
        }
        let caps = k.capabilities();
        let Some(crate::Section::Mem(m)) = caps.backend else {
            panic!("{caps:?}")
        };
        assert_eq!((m.sent, m.dropped, m.peer_open), (4, 6, false));
        let mut s = MemTransport::open(&c, Role::Server).unwrap();
        let mut b = RxBurst::new(8, 64);
        assert_eq!(s.recv_burst(&mut b).unwrap(), 4, "queued before it opened");
        assert_eq!(
            (0..4).map(|i| b.get(i).0[0]).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        let w = MemConfig {
            slots: 2,
            full: Full::Wait,
            ..MemConfig::new("unit-wait")
        };
        let mut k = MemTransport::open(&w, Role::Client).unwrap();
        k.send(b"a", None).unwrap();
        k.send(b"b", None).unwrap();
        let e = k.send(b"c", None).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOBUFS));
        let e = k.send(&[0; 4096], None).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EMSGSIZE));
    }

    #[test]
    fn full_wait_is_how_long_a_waiting_send_waits() {
        let parse = |u: &str| MemConfig::from_uri(&crate::uri::Uri::parse(u).unwrap());
        let c = parse("mem://unit-fw?slots=2&full=wait&full_wait=40ms").unwrap();
        assert_eq!((c.full, c.full_wait), (Full::Wait, Duration::from_millis(40)));
        assert_eq!(parse("mem://unit-fw?full=wait").unwrap().full_wait, FULL_WAIT);
        for (bad, names) in [
            ("mem://x?full_wait=1s", "full=wait"),
            ("mem://x?full=wait&full_wait=2m", "60s"),
            ("mem://x?full=wait&full_wait=soon", "duration"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("full_wait") && e.contains(names), "{bad}: {e}");
        }
        let mut k = MemTransport::open(&c, Role::Client).unwrap();
        k.send(b"a", None).unwrap();
        k.send(b"b", None).unwrap();
        let t = Instant::now();
        let e = k.send(b"c", None).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOBUFS));
        assert!(t.elapsed() >= Duration::from_millis(40), "{:?}", t.elapsed());
        assert!(k.capabilities().lines().iter().any(|(_, v)| v.contains("40ms")));
    }

    #[test]
    fn blocking_receive_wakes_on_send_from_another_thread() {
        let c = MemConfig::new("unit-block");
        let mut s = MemTransport::open(&c, Role::Server).unwrap();
        s.set_recv_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = std::thread::spawn(move || {
            let mut k = MemTransport::open(&MemConfig::new("unit-block"), Role::Client).unwrap();
            for i in 0..1000u32 {
                k.send(&i.to_le_bytes(), None).unwrap();
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            k
        });
        let mut b = RxBurst::new(32, 64);
        let mut next = 0u32;
        let end = Instant::now() + Duration::from_secs(10);
        while next < 1000 && Instant::now() < end {
            let n = s.recv_burst(&mut b).unwrap();
            for i in 0..n {
                assert_eq!(b.get(i).0, next.to_le_bytes());
                next += 1;
            }
        }
        assert_eq!(next, 1000);
        drop(t.join().unwrap());
    }

    #[test]
    fn leases_lend_in_place_and_answer_in_place() {
        let c = MemConfig::new("unit-lease");
        let mut s = MemTransport::open(&c, Role::Server).unwrap();
        let mut k = MemTransport::open(&c, Role::Client).unwrap();
        k.send_lease(|tx| {
            for i in 0..5u8 {
                tx.send_with(None, |buf| {
                    buf[..3].copy_from_slice(&[i, i, i]);
                    3
                })
                .unwrap();
            }
        })
        .unwrap();
        let n = s
            .recv_lease(8, None, |data, meta, tx| {
                assert_eq!(meta.len, 3);
                tx.send_with(None, |buf| {
                    buf[..3].copy_from_slice(data);
                    buf[0] += 100;
                    3
                })
                .unwrap();
            })
            .unwrap();
        assert_eq!(n, 5);
        let mut got = Vec::new();
        k.recv_lease(8, Some(Instant::now()), |data, _, _| got.push(data.to_vec()))
            .unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[4], vec![104, 4, 4]);
    }
}
