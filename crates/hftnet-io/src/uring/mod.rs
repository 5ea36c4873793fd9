//! UDP through io_uring (`uring://`): registered socket, registered transmit
//! buffers, optional SQPOLL, multishot receive into a provided-buffer ring,
//! `SEND_ZC`, spinning or waiting in the kernel.
//!
//! Layer: a backend of [`Transport`], and ring code: with the AF_XDP socket
//! (`xdp::socket`) and the in-process queues (`mem`), one of the modules of
//! the crate allowed `unsafe` (the crate is `#![deny(unsafe_code)]`, this
//! module `#![allow(unsafe_code)]`): the kernel reads and writes memory we hand it
//! through submission entries, so every buffer, `msghdr` and socket address
//! lives in a heap block this module owns (`RawMem`) whose address never
//! changes, is touched by us only after the completion that returns it, and is
//! freed only once every request that names it has completed (if the drain on
//! drop times out, the blocks are leaked rather than freed under the kernel).
//!
//! Hot path: `send_burst` copies each message into a free slot of the
//! registered transmit region (so the caller's bytes are not borrowed past the
//! call, and `SEND_ZC` can use the fixed buffer), pushes one `SENDMSG` or
//! `SEND_ZC` per message and submits once: one `io_uring_enter` per burst
//! without SQPOLL, none with SQPOLL unless the kernel thread went to sleep
//! (`IORING_SQ_NEED_WAKEUP`). A `SEND_ZC` slot is reused only after its
//! notification completion. Send errors arrive in completions, so a failed
//! send is reported by the next `send_burst`.
//!
//! `recv_burst` reaps completions into a queue and copies each datagram from
//! the ring's buffer into the burst's slot (one copy, by design: the burst
//! owns its memory), then hands the buffer back: a single-shot `RECVMSG` is
//! armed again with the next enter (after the messages of the next send, so a
//! reply leaves first), multishot buffers are returned to the provided-buffer
//! ring with one store. Exactly one single-shot receive is in flight at a
//! time: each armed receive has its own poll entry on the socket, so a
//! datagram would wake them all and those finding nothing would be handed to
//! io-wq worker threads (the main cost of this backend before). How a
//! receive waits:
//! - `mode=spin`, single-shot, no SQPOLL: each poll submits one non-blocking
//!   `RECVMSG` (`MSG_DONTWAIT`) that completes inline in the same enter, with
//!   the datagram or `EAGAIN`: no poll arming, no task work, one enter per
//!   poll — the ring's equivalent of a spinning `recvfrom`.
//! - `mode=spin` with `multishot=1` (or SQPOLL): the receive stays armed and
//!   the loop polls the completion queue in user space; without SQPOLL it
//!   enters the kernel (`GETEVENTS`, to run the task work that posts the
//!   completion) only when the kernel raised `IORING_SQ_TASKRUN`, or on every
//!   poll when the ring lacks the task-run flag.
//! - `mode=wait`: sleeps in `io_uring_enter` with the receive timeout as an
//!   `IORING_ENTER_EXT_ARG` timespec (Linux 5.11+; no timeout request), woken
//!   by the datagram's task work itself under `DEFER_TASKRUN`. Ring NAPI busy
//!   polling (`napi=`) runs in this wait.
//!
//! The ring is set up with the best task-run flags the kernel takes, probed
//! in order: `SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG` (Linux 6.1+), then
//! without `TASKRUN_FLAG`, then `COOP_TASKRUN` in place of `DEFER_TASKRUN`
//! (with and without `SINGLE_ISSUER` and `TASKRUN_FLAG`), then none; with SQPOLL `SINGLE_ISSUER`, then none. The
//! capabilities list what was granted (`setup_flags`). Without them, every
//! socket wake-up interrupts the receiving thread with an IPI to run task
//! work, which on this VM cost tens of microseconds per round trip. A
//! single-issuer ring is created disabled and enabled by the first send or
//! receive: the thread that first uses the transport drives it from then on
//! (open it anywhere; another thread driving it later gets an error that says
//! so). The socket is non-blocking, so a request the kernel hands to io-wq
//! returns `EAGAIN` (armed or sent again) instead of parking a worker.
//!
//! At open, the opcodes used are probed (`IORING_REGISTER_PROBE`); a feature
//! the kernel lacks (`SEND_ZC` before 6.0, multishot `RECVMSG` before 6.0,
//! `IORING_REGISTER_NAPI` before 6.9) falls back with a note in the
//! capabilities; a missing base opcode (`SENDMSG`/`RECVMSG`, Linux 5.3) is an
//! [`OpenError`] naming it.
//!
//! Leases ([`crate::Lease`]) copy, as for kernel sockets: a datagram is
//! copied out of the provided buffer into the lending buffer.

#![allow(unsafe_code)]

use std::alloc::Layout;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use io_uring::register::Probe;
use io_uring::types::{CancelBuilder, Fixed, Napi, RecvMsgOut, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use serde::Serialize;

use crate::Role;
use crate::backend::{Backend, CapsSection, RungContext, RungSpec};
use crate::capabilities::{Capabilities, LegacyFields, legacy_lines};
use crate::common::{self, COMMON_PARAMS, SocketCaps, SocketOptions};
use crate::error::{OpenError, from_io};
use crate::lease::{CopyLease, copy_lease};
use crate::transport::{Addrs, RxBurst, RxMeta, RxStrategy, Transport, TxMsg};
use crate::uri::{Uri, UriError};

/// The `uring://` backend.
#[derive(Debug)]
pub struct UringBackend;

impl Backend for UringBackend {
    const SCHEMES: &'static [&'static str] = &["uring"];
    type Config = UringConfig;
    type Transport = UringTransport;
    type Caps = UringCaps;

    fn parse(uri: &Uri) -> Result<UringConfig, UriError> {
        UringConfig::from_uri(uri)
    }

    fn open(cfg: &UringConfig, role: Role) -> Result<UringTransport, OpenError> {
        UringTransport::open(cfg.clone(), role)
    }

    fn max_message(cfg: &UringConfig) -> usize {
        cfg.max_message()
    }

    fn burst(cfg: &UringConfig) -> usize {
        // A ring: bursts of as many messages as it has receive buffers.
        cfg.bufs as usize
    }

    fn cpu(cfg: &UringConfig) -> Option<usize> {
        cfg.socket.cpu
    }

    fn rungs(_: &str, ctx: &RungContext<'_>) -> Vec<RungSpec> {
        // Completion modes instead of socket receive strategies (SQPOLL is
        // left out of the default ladder: on few CPUs its kernel thread
        // competes with the spinning ends; ask for it with a URI).
        let ip = ctx.server_ip;
        [
            ("wait", "mode=wait"),
            ("spin", "mode=spin"),
            ("spin+multishot", "mode=spin&multishot=1"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (name, q))| {
            let port = ctx.port + i as u16;
            RungSpec::same(name, format!("uring://{ip}:{port}?{q}"))
        })
        .collect()
    }
}

/// The `uring://` section of the capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UringCaps {
    /// What the kernel granted the socket.
    #[serde(flatten)]
    pub socket: SocketCaps,
    /// SQPOLL thread running.
    pub sqpoll: bool,
    /// CPU the SQPOLL thread is pinned to.
    pub sqpoll_cpu: Option<u32>,
    /// Multishot receive in use.
    pub multishot: bool,
    /// `SEND_ZC` in use.
    pub send_zc: bool,
    /// NAPI busy polling registered on the ring (microseconds).
    pub napi_usecs: Option<u32>,
    /// Receive buffers.
    pub bufs: u32,
    /// Send completions that failed.
    pub tx_errors: u64,
    /// Where the receive slots and transmit slots are now (the accounting a
    /// soak checks).
    pub slots: UringSlots,
    /// Ring setup flags the kernel granted, by their names without
    /// `IORING_SETUP_` (`SINGLE_ISSUER`, `DEFER_TASKRUN`, `COOP_TASKRUN`,
    /// `TASKRUN_FLAG`, `SQPOLL`); empty for a plain ring.
    pub setup_flags: Vec<&'static str>,
}

/// Where the buffers of a `uring://` endpoint are: each single-shot receive
/// slot is armed (a `RECVMSG` with the kernel), completed and not yet read,
/// or waiting to be armed again; each transmit slot is free or in a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UringSlots {
    /// Receive slots with the kernel (single-shot `RECVMSG` submitted).
    pub rx_armed: u32,
    /// Receive completions not yet read (single-shot slots and multishot
    /// buffers).
    pub rx_ready: u32,
    /// Receive slots free to arm: read and waiting, or not armed yet (at
    /// most one single-shot receive is in flight at a time).
    pub rx_rearm: u32,
    /// Transmit slots in a send not yet completed.
    pub tx_busy: u32,
    /// Requests submitted and not yet completed, receives and sends.
    pub in_flight: u32,
    /// Single-shot receive: armed + ready + waiting == the receive slots.
    /// `None` with multishot, whose buffers the kernel holds unseen.
    pub rx_balanced: Option<bool>,
}

impl CapsSection for UringCaps {
    fn lines(&self, out: &mut Vec<(String, String)>) {
        legacy_lines(&self.legacy(), out);
    }

    fn legacy(&self) -> LegacyFields {
        self.socket.legacy()
    }
}

/// How a receive waits for completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UringMode {
    /// Poll without sleeping (one CPU at 100%): non-blocking receives
    /// submitted per poll, or the completion queue of an armed multishot
    /// receive (see the module documentation).
    Spin,
    /// Sleep in `io_uring_enter` until a completion or the timeout.
    Wait,
}

/// A `uring://` endpoint, as parsed from a URI or built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UringConfig {
    /// Server: the address to bind. Client: the peer to send to.
    pub addr: SocketAddr,
    /// Options common to kernel sockets (`rx=` other than `block` is refused:
    /// `mode=` says how a ring receive waits).
    pub socket: SocketOptions,
    /// Submission queue entries (`entries=`, a power of two, default 256);
    /// the completion queue has four times as many.
    pub entries: u32,
    /// Kernel submission thread (`sqpoll=1`).
    pub sqpoll: bool,
    /// CPU the SQPOLL thread is pinned to (`sqpoll_cpu=N`).
    pub sqpoll_cpu: Option<u32>,
    /// Milliseconds the SQPOLL thread spins idle before sleeping (`sqpoll_idle=`, default 1000).
    pub sqpoll_idle_ms: u32,
    /// How receives wait (`mode=spin|wait`, default wait).
    pub mode: UringMode,
    /// Multishot `RECVMSG` with a provided-buffer ring (`multishot=1`, Linux 6.0+).
    pub multishot: bool,
    /// `IORING_OP_SEND_ZC` from the registered buffer (`zc=1`, Linux 6.0+).
    pub zc: bool,
    /// Receive buffers and transmit slots, each (`bufs=`, a power of two, default 64).
    pub bufs: u32,
    /// Bytes per buffer: the largest message carried (`buf_size=`, default 2048).
    pub buf_size: u32,
    /// `IORING_REGISTER_NAPI` busy-poll microseconds (`napi=USECS`, Linux 6.9+).
    pub napi_usecs: Option<u32>,
    /// Prefer busy polling over interrupts in the NAPI registration (`napi_prefer=1`).
    pub napi_prefer: bool,
    /// Unicast client: `connect()` to the peer (`connect=`, default on).
    pub connect: bool,
    /// Test hook: features to treat as missing from the kernel, by the names
    /// used in notes (`SENDMSG`, `RECVMSG`, `SEND_ZC`, `RECVMSG_MULTISHOT`,
    /// `REGISTER_NAPI`), so the fallback paths run on any kernel.
    #[doc(hidden)]
    pub pretend_missing: Vec<String>,
}

const URING_PARAMS: &[&str] = &[
    "entries",
    "sqpoll",
    "sqpoll_cpu",
    "sqpoll_idle",
    "mode",
    "multishot",
    "zc",
    "bufs",
    "buf_size",
    "napi",
    "napi_prefer",
    "connect",
];

/// Default `entries=`.
pub const DEFAULT_ENTRIES: u32 = 256;
/// Default `bufs=`.
pub const DEFAULT_BUFS: u32 = 64;
/// Default `buf_size=`.
pub const DEFAULT_BUF_SIZE: u32 = 2048;

fn pow2(v: i64) -> bool {
    v > 0 && (v & (v - 1)) == 0
}

impl UringConfig {
    /// A plain endpoint with default options.
    #[must_use]
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            socket: SocketOptions::default(),
            entries: DEFAULT_ENTRIES,
            sqpoll: false,
            sqpoll_cpu: None,
            sqpoll_idle_ms: 1000,
            mode: UringMode::Wait,
            multishot: false,
            zc: false,
            bufs: DEFAULT_BUFS,
            buf_size: DEFAULT_BUF_SIZE,
            napi_usecs: None,
            napi_prefer: false,
            connect: true,
            pretend_missing: Vec::new(),
        }
    }

    /// Reads a `uring://` URI.
    ///
    /// # Errors
    /// [`UriError`] naming the parameter at fault and what it accepts.
    pub fn from_uri(uri: &Uri) -> Result<Self, UriError> {
        let addr = uri.socket_addr()?;
        let mut p = uri.params(&[COMMON_PARAMS, URING_PARAMS]);
        let socket = SocketOptions::from_params(&mut p)?;
        if socket.strategy != RxStrategy::Block {
            return Err(UriError::BadValue {
                param: "rx".into(),
                value: socket.strategy.name().into(),
                expected: "no rx= on uring://: a ring receive waits per mode=spin|wait \
                           (and busy-polls with napi=USECS)"
                    .into(),
            });
        }
        let bad = |param: &str, value: String, expected: String| UriError::BadValue {
            param: param.into(),
            value,
            expected,
        };
        let mut cfg = Self::new(addr);
        cfg.socket = socket;
        cfg.entries = p
            .get_with("entries", "a power of two from 8 to 32768", |v| {
                crate::uri::parse_int(v).filter(|&n| pow2(n) && (8..=32768).contains(&n))
            })?
            .map_or(DEFAULT_ENTRIES, |n| n as u32);
        cfg.sqpoll = p.bool("sqpoll")?.unwrap_or(false);
        cfg.sqpoll_cpu = p.int("sqpoll_cpu", 0..=4095)?.map(|v| v as u32);
        let idle = p.int("sqpoll_idle", 1..=60_000)?;
        if !cfg.sqpoll {
            if let Some(c) = cfg.sqpoll_cpu {
                return Err(bad(
                    "sqpoll_cpu",
                    c.to_string(),
                    "to be given only with sqpoll=1".into(),
                ));
            }
            if let Some(i) = idle {
                return Err(bad(
                    "sqpoll_idle",
                    i.to_string(),
                    "to be given only with sqpoll=1".into(),
                ));
            }
        }
        cfg.sqpoll_idle_ms = idle.map_or(1000, |v| v as u32);
        cfg.mode = match p.choice("mode", &["spin", "wait"])? {
            Some("spin") => UringMode::Spin,
            _ => UringMode::Wait,
        };
        cfg.multishot = p.bool("multishot")?.unwrap_or(false);
        cfg.zc = p.bool("zc")?.unwrap_or(false);
        let max_bufs = i64::from(cfg.entries / 2);
        let bufs_expected = format!("a power of two from 1 to entries/2 (= {max_bufs})");
        cfg.bufs = p
            .get_with("bufs", &bufs_expected, |v| {
                crate::uri::parse_int(v).filter(|&n| pow2(n) && n <= max_bufs)
            })?
            .map_or(DEFAULT_BUFS.min(max_bufs as u32), |n| n as u32);
        cfg.buf_size = p
            .get_with(
                "buf_size",
                "a size from 64 to 65536 bytes, e.g. 2048 or 64K",
                |v| crate::uri::parse_size(v).filter(|n| (64..=65536).contains(n)),
            )?
            .map_or(DEFAULT_BUF_SIZE, |n| n as u32);
        cfg.napi_usecs = p.int("napi", 1..=i64::from(i32::MAX))?.map(|v| v as u32);
        let prefer = p.bool("napi_prefer")?;
        if let (None, Some(b)) = (cfg.napi_usecs, prefer) {
            return Err(bad(
                "napi_prefer",
                b.to_string(),
                "to be given only with napi=USECS".into(),
            ));
        }
        cfg.napi_prefer = prefer.unwrap_or(false);
        cfg.connect = p.bool("connect")?.unwrap_or(true);
        p.finish()?;
        Ok(cfg)
    }

    /// Largest message carried: `buf_size` bytes (at most a UDP payload).
    #[must_use]
    pub fn max_message(&self) -> usize {
        (self.buf_size as usize).min(crate::udp::MAX_UDP_PAYLOAD)
    }
}

/// What the ring was granted, for tests and the capability report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UringStatus {
    /// SQPOLL thread running.
    pub sqpoll: bool,
    /// CPU it is pinned to.
    pub sqpoll_cpu: Option<u32>,
    /// Multishot receive in use.
    pub multishot: bool,
    /// `SEND_ZC` in use.
    pub zc: bool,
    /// NAPI busy polling registered on the ring (microseconds).
    pub napi_usecs: Option<u32>,
    /// Probed opcodes (or features) that this kernel lacks, among those this backend uses.
    pub missing: Vec<&'static str>,
    /// Fallbacks taken, in words.
    pub fallbacks: Vec<String>,
    /// Ring setup flags the kernel granted (see [`UringCaps::setup_flags`]).
    pub setup_flags: Vec<&'static str>,
}

/// A heap block handed to the kernel: page aligned, zeroed, at a fixed address.
#[derive(Debug)]
struct RawMem {
    ptr: NonNull<u8>,
    layout: Layout,
    /// Set when the kernel may still use it: never freed then.
    leak: bool,
}

// SAFETY: the block is owned exclusively by one transport; the pointer is not
// shared with other threads except the kernel, which is not a Rust thread.
unsafe impl Send for RawMem {}

impl RawMem {
    fn zeroed(bytes: usize) -> Self {
        let layout = Layout::from_size_align(bytes.max(1), 4096).expect("buffer size overflows");
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Self {
            ptr,
            layout,
            leak: false,
        }
    }

    #[inline]
    fn at(&self, off: usize) -> *mut u8 {
        debug_assert!(off < self.layout.size());
        self.ptr.as_ptr().wrapping_add(off)
    }
}

impl Drop for RawMem {
    fn drop(&mut self) {
        if !self.leak {
            // SAFETY: allocated in `zeroed` with this layout, freed once.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
        }
    }
}

/// Per-slot header block: `msghdr` at 0, `iovec` at 64, socket address at 128.
const HDR_STRIDE: usize = 256;
const HDR_IOV: usize = 64;
const HDR_NAME: usize = 128;
const NAME_LEN: usize = 128;

const KIND_RX: u64 = 1 << 32;
const KIND_TX: u64 = 2 << 32;
const KIND_MULTI: u64 = 3 << 32;
const KIND_CANCEL: u64 = 4 << 32;
const KIND_MASK: u64 = 0xff << 32;
const BGID: u16 = 7;

/// Single-shot receives armed at once. One: every armed receive has its own
/// poll entry on the socket, so each datagram would wake them all, and those
/// that then find nothing (the poll had already fired once) are handed to
/// io-wq worker threads — the cause of most of the former 10–20× cost.
/// Bursts are what `multishot=1` is for.
const SINGLE_SHOT_DEPTH: u32 = 1;

/// `IORING_ENTER_GETEVENTS`.
const ENTER_GETEVENTS: u32 = 1;

#[derive(Debug, Clone, Copy)]
enum Ready {
    /// Single-shot slot and its result.
    Slot(u32, i32),
    /// Provided buffer id and its result.
    Buf(u16, i32),
}

/// Everything but the ring, so completions can be handled while the ring's
/// completion queue is borrowed.
#[derive(Debug)]
struct State {
    bufs: u32,
    buf_size: usize,
    rx_stride: usize,
    ms_stride: usize,
    rx_mem: RawMem,
    tx_mem: RawMem,
    hdrs: RawMem,
    bufring: Option<RawMem>,
    ring_tail: u16,
    ready: VecDeque<Ready>,
    /// Single-shot receive slots free to arm.
    rearm: VecDeque<u32>,
    /// Single-shot receives in flight (at most [`SINGLE_SHOT_DEPTH`]).
    single_armed: u32,
    multi_armed: bool,
    /// Transmit slots whose send completed with EAGAIN, to submit again.
    tx_retry: VecDeque<u32>,
    tx_busy: Box<[bool]>,
    tx_next: usize,
    inflight: usize,
    tx_error: Option<i32>,
    rx_error: Option<i32>,
    tx_errors: u64,
}

impl State {
    fn slots(&self, multishot: bool) -> UringSlots {
        let ready_slots = self
            .ready
            .iter()
            .filter(|r| matches!(r, Ready::Slot(..)))
            .count() as u32;
        let rx_rearm = self.rearm.len() as u32;
        UringSlots {
            rx_armed: self.single_armed,
            rx_ready: self.ready.len() as u32,
            rx_rearm,
            tx_busy: self.tx_busy.iter().filter(|b| **b).count() as u32,
            in_flight: self.inflight as u32,
            rx_balanced: (!multishot).then(|| self.single_armed + ready_slots + rx_rearm == self.bufs),
        }
    }

    #[inline]
    fn hdr(&self, i: usize) -> *mut u8 {
        self.hdrs.at(i * HDR_STRIDE)
    }

    #[inline]
    fn handle(&mut self, cqe: &cqueue::Entry) {
        let ud = cqe.user_data();
        let idx = (ud & 0xffff_ffff) as u32;
        let res = cqe.result();
        let flags = cqe.flags();
        match ud & KIND_MASK {
            KIND_RX => {
                self.inflight -= 1;
                self.single_armed -= 1;
                if res >= 0 {
                    self.ready.push_back(Ready::Slot(idx, res));
                } else {
                    // ECANCELED: our own cancel. EAGAIN: a retry after the
                    // poll wake-up found nothing (non-blocking socket); the
                    // slot is simply armed again.
                    if res != -libc::ECANCELED && res != -libc::EAGAIN {
                        self.rx_error = Some(-res);
                    }
                    self.rearm.push_back(idx);
                }
            }
            KIND_MULTI => {
                if !cqueue::more(flags) {
                    self.multi_armed = false;
                    self.inflight -= 1;
                }
                match cqueue::buffer_select(flags) {
                    Some(bid) if res >= 0 => self.ready.push_back(Ready::Buf(bid, res)),
                    Some(bid) => self.give_back(bid),
                    None => {
                        if res < 0
                            && res != -libc::ENOBUFS
                            && res != -libc::ECANCELED
                            && res != -libc::EAGAIN
                        {
                            self.rx_error = Some(-res);
                        }
                    }
                }
            }
            KIND_TX => {
                let i = idx as usize;
                if cqueue::notif(flags) {
                    self.inflight -= 1;
                    self.tx_busy[i] = false;
                    return;
                }
                let more = cqueue::more(flags);
                if res == -libc::EAGAIN && !more {
                    // Not sent (the socket buffer was full at the retry the
                    // kernel made): the slot stays busy and is sent again.
                    self.inflight -= 1;
                    self.tx_retry.push_back(idx);
                    return;
                }
                if res < 0 {
                    self.tx_error = Some(-res);
                    self.tx_errors += 1;
                }
                if !more {
                    self.inflight -= 1;
                    self.tx_busy[i] = false;
                }
            }
            _ => {}
        }
    }

    /// Puts provided buffer `bid` back in the ring (published by `publish_tail`).
    #[inline]
    fn give_back(&mut self, bid: u16) {
        let Some(ring) = &self.bufring else { return };
        let mask = (self.bufs - 1) as u16;
        let slot = usize::from(self.ring_tail & mask);
        let entry = ring.at(slot * 16).cast::<io_uring::types::BufRingEntry>();
        let addr = self.rx_mem.at(usize::from(bid) * self.ms_stride) as u64;
        // SAFETY: `slot < bufs` entries of 16 bytes lie in the ring block; the
        // kernel does not read entries at or past the published tail.
        unsafe {
            (*entry).set_addr(addr);
            (*entry).set_len(self.ms_stride as u32);
            (*entry).set_bid(bid);
        }
        self.ring_tail = self.ring_tail.wrapping_add(1);
    }

    #[inline]
    fn publish_tail(&self) {
        if let Some(ring) = &self.bufring {
            // SAFETY: the tail is the u16 at byte 14 of the ring block (the
            // `resv` of entry 0), 2-aligned, shared with the kernel atomically.
            let tail = unsafe { &*ring.at(14).cast::<AtomicU16>() };
            tail.store(self.ring_tail, Ordering::Release);
        }
    }
}

/// A UDP socket driven through io_uring behind the [`Transport`] trait.
pub struct UringTransport {
    // Declared first: the ring is closed before the memory it used is freed.
    ring: Box<IoUring>,
    st: Box<State>,
    sock: Socket,
    cfg: UringConfig,
    status: UringStatus,
    notes: Vec<String>,
    default_peer: Option<SocketAddr>,
    connected: bool,
    timeout: Option<Duration>,
    mode: UringMode,
    received_any: bool,
    /// The setup flags granted.
    setup: RingSetup,
    /// The ring is enabled and its receives armed: done by the first send or
    /// receive (so a single-issuer ring belongs to the thread that uses it,
    /// not necessarily the one that opened it).
    started: bool,
    /// `mode=spin` with single-shot receives and no SQPOLL: each poll submits
    /// one non-blocking `RECVMSG` (`MSG_DONTWAIT`) that completes inline, no
    /// receive is armed on the socket between polls.
    polled_rx: bool,
    /// Buffers of the lease API (allocated on first use).
    lease: CopyLease,
    /// The local address, read once at open.
    local: Option<SocketAddr>,
}

copy_lease!(UringTransport);

impl std::fmt::Debug for UringTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringTransport")
            .field("sock", &self.sock)
            .field("cfg", &self.cfg)
            .field("status", &self.status)
            .field("mode", &self.mode)
            .field("inflight", &self.st.inflight)
            .finish_non_exhaustive()
    }
}

/// True if the running kernel is `major.minor` or later; false when its
/// version cannot be told.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    hftnet_sys::kernel::running().is_ok_and(|v| v.at_least(major, minor))
}

fn ring_err(
    step: impl Into<String>,
    call: &'static str,
) -> impl FnOnce(std::io::Error) -> OpenError {
    let step = step.into();
    move |e| OpenError::Setup {
        step,
        cause: from_io(call, e),
    }
}


/// Ring setup flags beyond SQPOLL, as tried and as granted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RingSetup {
    sqpoll: bool,
    /// `IORING_SETUP_SINGLE_ISSUER` (Linux 6.0+): one task submits. The ring
    /// is then created disabled (`IORING_SETUP_R_DISABLED`) and enabled by
    /// the first thread that sends or receives, which becomes its issuer.
    single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1+): task work (the receive
    /// that a socket wake-up triggers) is queued on the ring and run only by
    /// our own `io_uring_enter(GETEVENTS)`: no IPI, no signal-like interrupt
    /// of the spinning or sleeping thread.
    defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` (Linux 5.19+): task work is added without
    /// an IPI and runs at the next kernel entry.
    coop_taskrun: bool,
    /// `IORING_SETUP_TASKRUN_FLAG` (Linux 5.19+): the kernel raises
    /// `IORING_SQ_TASKRUN` when task work waits, so a spinning receive enters
    /// the kernel only then.
    taskrun_flag: bool,
}

impl RingSetup {
    const fn new(single_issuer: bool, defer: bool, coop: bool, flag: bool) -> Self {
        Self {
            sqpoll: false,
            single_issuer,
            defer_taskrun: defer,
            coop_taskrun: coop,
            taskrun_flag: flag,
        }
    }

    /// The candidates, best first: the kernel's answer picks the first it takes.
    /// SQPOLL rings take none of the task-run flags (the kernel refuses them:
    /// completions are the SQPOLL thread's business).
    fn candidates(sqpoll: bool) -> &'static [RingSetup] {
        const PLAIN: &[RingSetup] = &[
            RingSetup::new(true, true, false, true),
            RingSetup::new(true, true, false, false),
            RingSetup::new(true, false, true, true),
            RingSetup::new(true, false, true, false),
            RingSetup::new(false, false, true, true),
            RingSetup::new(false, false, true, false),
            RingSetup::new(false, false, false, false),
        ];
        const SQPOLL: &[RingSetup] = &[
            RingSetup::new(true, false, false, false),
            RingSetup::new(false, false, false, false),
        ];
        if sqpoll { SQPOLL } else { PLAIN }
    }

    /// The granted flags by name (without `IORING_SETUP_`).
    fn names(&self) -> Vec<&'static str> {
        [
            (self.sqpoll, "SQPOLL"),
            (self.single_issuer, "SINGLE_ISSUER"),
            (self.defer_taskrun, "DEFER_TASKRUN"),
            (self.coop_taskrun, "COOP_TASKRUN"),
            (self.taskrun_flag, "TASKRUN_FLAG"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }

    /// `A|B|C`, or `no task-run flags`.
    fn describe(&self) -> String {
        let n: Vec<_> = self.names().into_iter().filter(|n| *n != "SQPOLL").collect();
        if n.is_empty() {
            "no task-run flags".into()
        } else {
            n.join("|")
        }
    }
}

/// Setups the kernel refused: (the flags, why).
type Refused = Vec<(String, String)>;

/// Creates the ring with the best setup flags the kernel grants: tries
/// [`RingSetup::candidates`] in order, taking `EINVAL` as "this kernel lacks
/// a flag" and any other error as final. Returns the ring, what it was
/// granted and the refused candidates with the reason.
fn build_ring(
    cfg: &UringConfig,
    pretend: &dyn Fn(&str) -> bool,
) -> Result<(IoUring, RingSetup, Refused), OpenError> {
    let mut refused = Vec::new();
    let candidates = RingSetup::candidates(cfg.sqpoll);
    for (k, cand) in candidates.iter().enumerate() {
        let last = k + 1 == candidates.len();
        if let Some(name) = cand.names().into_iter().find(|n| pretend(n)) {
            refused.push((cand.describe(), format!("{name} treated as missing")));
            continue;
        }
        let mut b = IoUring::builder();
        b.setup_cqsize(cfg.entries * 4);
        if cfg.sqpoll {
            b.setup_sqpoll(cfg.sqpoll_idle_ms);
            if let Some(c) = cfg.sqpoll_cpu {
                b.setup_sqpoll_cpu(c);
            }
        }
        if cand.single_issuer {
            b.setup_single_issuer();
            b.setup_r_disabled();
        }
        if cand.defer_taskrun {
            b.setup_defer_taskrun();
        }
        if cand.coop_taskrun {
            b.setup_coop_taskrun();
        }
        if cand.taskrun_flag {
            b.setup_taskrun_flag();
        }
        match b.build(cfg.entries) {
            Ok(ring) => {
                let mut granted = *cand;
                granted.sqpoll = cfg.sqpoll;
                return Ok((ring, granted, refused));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !last => {
                refused.push((cand.describe(), "EINVAL: this kernel lacks a flag".into()));
            }
            Err(e) => {
                let why = match e.raw_os_error() {
                    Some(libc::ENOSYS) => {
                        "io_uring is not available in this kernel; use udp:// instead"
                    }
                    Some(libc::EPERM) if cfg.sqpoll => {
                        "io_uring_setup refused: SQPOLL needs CAP_SYS_NICE before Linux 5.11, or \\
                         kernel.io_uring_disabled is set; drop sqpoll=1 or use udp://"
                    }
                    Some(libc::EPERM) => {
                        "io_uring_setup refused: kernel.io_uring_disabled is set (or seccomp \\
                         forbids io_uring); use udp:// instead"
                    }
                    Some(libc::EINVAL) if cfg.sqpoll_cpu.is_some() => {
                        "io_uring_setup refused sqpoll_cpu=: that CPU is not online"
                    }
                    _ => "creating the io_uring",
                };
                return Err(OpenError::Setup {
                    step: why.to_string(),
                    cause: from_io("io_uring_setup", e),
                });
            }
        }
    }
    // Not reached: the last candidate asks for no flag, so it is never
    // skipped, and its failure returns above.
    Err(OpenError::Setup {
        step: "creating the io_uring: no setup was accepted".into(),
        cause: from_io(
            "io_uring_setup",
            std::io::Error::from_raw_os_error(libc::EINVAL),
        ),
    })
}

impl UringTransport {
    /// Opens the endpoint in `role`.
    ///
    /// # Errors
    /// [`OpenError`] naming the step that failed: io_uring missing or disabled
    /// (`kernel.io_uring_disabled`), SQPOLL refused, an opcode this backend
    /// cannot do without, or a socket option.
    pub fn open(cfg: UringConfig, role: Role) -> Result<Self, OpenError> {
        common::check_role_addr(cfg.addr, cfg.socket.bind, role)?;
        let domain = if cfg.addr.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| OpenError::setup("creating a UDP socket")(from_io("socket", e)))?;
        let mut notes = cfg.socket.apply(&s)?;
        // Non-blocking: a request the kernel hands to an io-wq worker (a
        // receive whose poll-triggered retry found nothing) then returns
        // EAGAIN, which is re-armed, instead of parking a kernel thread in a
        // blocking recvmsg. Requests issued inline are non-blocking anyway.
        s.set_nonblocking(true).map_err(|e| {
            OpenError::setup("making the socket non-blocking")(from_io("fcntl(O_NONBLOCK)", e))
        })?;
        let mut default_peer = None;
        let mut connected = false;
        match role {
            Role::Server => common::bind(&s, cfg.addr)?,
            Role::Client => {
                common::bind(
                    &s,
                    cfg.socket
                        .bind
                        .unwrap_or_else(|| common::any_addr_like(&cfg.addr)),
                )?;
                if cfg.connect {
                    s.connect(&SockAddr::from(cfg.addr))
                        .map_err(|e| OpenError::Connect {
                            addr: cfg.addr,
                            cause: from_io("connect", e),
                        })?;
                    connected = true;
                }
                default_peer = Some(cfg.addr);
            }
        }

        let pretend = |name: &str| cfg.pretend_missing.iter().any(|p| p == name);
        let (ring, setup, refused) = build_ring(&cfg, &pretend)?;
        let sub = ring.submitter();

        // Probe what we use; the hidden hook removes features on purpose.
        let mut probe = Probe::new();
        let probed = sub.register_probe(&mut probe).is_ok();
        if !probed {
            notes.push("opcode probe unavailable (Linux < 5.6): assuming SENDMSG/RECVMSG".into());
        }
        let has = |code: u8, name: &str| !pretend(name) && (!probed || probe.is_supported(code));
        let mut status = UringStatus {
            sqpoll: cfg.sqpoll,
            sqpoll_cpu: cfg.sqpoll_cpu.filter(|_| cfg.sqpoll),
            setup_flags: setup.names(),
            ..UringStatus::default()
        };
        for (tried, why) in refused {
            status.fallbacks.push(format!(
                "ring setup {tried} refused by the kernel ({why}); set up with {} instead",
                setup.describe()
            ));
        }
        for (code, name) in [
            (opcode::SendMsg::CODE, "SENDMSG"),
            (opcode::RecvMsg::CODE, "RECVMSG"),
            (opcode::SendZc::CODE, "SEND_ZC"),
            (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        ] {
            if !has(code, name) {
                status.missing.push(name);
            }
        }
        for base in ["SENDMSG", "RECVMSG"] {
            if status.missing.contains(&base) {
                return Err(OpenError::Setup {
                    step: format!(
                        "this kernel's io_uring lacks IORING_OP_{base} (Linux 5.3+), which \
                         uring:// cannot do without; use udp:// instead"
                    ),
                    cause: from_io(
                        "io_uring_register(IORING_REGISTER_PROBE)",
                        std::io::Error::from_raw_os_error(libc::EOPNOTSUPP),
                    ),
                });
            }
        }
        status.zc = cfg.zc;
        if cfg.zc && status.missing.contains(&"SEND_ZC") {
            status.zc = false;
            status.fallbacks.push(
                "zc=1: IORING_OP_SEND_ZC is not supported by this kernel (Linux 6.0+); \
                 sending with IORING_OP_SENDMSG (copy) instead"
                    .into(),
            );
        }
        status.multishot = cfg.multishot;
        if cfg.multishot && (pretend("RECVMSG_MULTISHOT") || !kernel_at_least(6, 0)) {
            status.missing.push("RECVMSG_MULTISHOT");
            status.multishot = false;
            status.fallbacks.push(
                "multishot=1: multishot IORING_OP_RECVMSG with a provided-buffer ring needs \
                 Linux 6.0+; receiving with one single-shot RECVMSG per buffer instead"
                    .into(),
            );
        }

        sub.register_files(&[s.as_raw_fd()]).map_err(ring_err(
            "registering the socket as a fixed file",
            "io_uring_register(IORING_REGISTER_FILES)",
        ))?;

        let bufs = cfg.bufs as usize;
        let buf_size = cfg.buf_size as usize;
        let ms_stride = buf_size + 16 + NAME_LEN;
        let rx_stride = if status.multishot {
            ms_stride
        } else {
            buf_size
        };
        let tx_mem = RawMem::zeroed(bufs * buf_size);
        let iov = libc::iovec {
            iov_base: tx_mem.at(0).cast(),
            iov_len: bufs * buf_size,
        };
        // SAFETY: the transmit block lives as long as the ring (it is freed
        // after the ring is closed, or leaked).
        unsafe { sub.register_buffers(&[iov]) }.map_err(ring_err(
            "registering the transmit buffers (RLIMIT_MEMLOCK may be too low: raise it or lower bufs=/buf_size=)",
            "io_uring_register(IORING_REGISTER_BUFFERS)",
        ))?;

        let mut st = State {
            bufs: cfg.bufs,
            buf_size,
            rx_stride,
            ms_stride,
            rx_mem: RawMem::zeroed(bufs * rx_stride),
            tx_mem,
            hdrs: RawMem::zeroed((2 * bufs + 1) * HDR_STRIDE),
            bufring: None,
            ring_tail: 0,
            ready: VecDeque::with_capacity(bufs + 1),
            rearm: VecDeque::with_capacity(bufs + 1),
            single_armed: 0,
            multi_armed: false,
            tx_retry: VecDeque::with_capacity(bufs + 1),
            tx_busy: vec![false; bufs].into_boxed_slice(),
            tx_next: 0,
            inflight: 0,
            tx_error: None,
            rx_error: None,
            tx_errors: 0,
        };
        // Headers: receive slots 0..bufs, transmit slots bufs..2*bufs, multishot last.
        for i in 0..2 * bufs + 1 {
            let h = st.hdr(i);
            let data = if i < bufs {
                st.rx_mem.at(i * rx_stride)
            } else if i < 2 * bufs {
                st.tx_mem.at((i - bufs) * buf_size)
            } else {
                std::ptr::null_mut()
            };
            // SAFETY: the header block has room for 2*bufs+1 strides of 256
            // bytes, each a msghdr (56 bytes) at 0, an iovec at 64 and a
            // 128-byte address at 128; the memory is zeroed and 8-aligned.
            unsafe {
                let hdr = &mut *h.cast::<libc::msghdr>();
                let iov = &mut *h.add(HDR_IOV).cast::<libc::iovec>();
                iov.iov_base = data.cast();
                iov.iov_len = buf_size;
                hdr.msg_name = h.add(HDR_NAME).cast();
                hdr.msg_namelen = NAME_LEN as u32;
                if i < 2 * bufs {
                    hdr.msg_iov = iov;
                    hdr.msg_iovlen = 1;
                }
            }
        }
        if status.multishot {
            let ring_mem = RawMem::zeroed(bufs * 16);
            // SAFETY: the ring block of `bufs` 16-byte entries, page aligned,
            // outlives the ring (freed after it, or leaked).
            let reg = unsafe {
                sub.register_buf_ring_with_flags(ring_mem.at(0) as u64, cfg.bufs as u16, BGID, 0)
            };
            match reg {
                Ok(()) => {
                    st.bufring = Some(ring_mem);
                    for bid in 0..cfg.bufs as u16 {
                        st.give_back(bid);
                    }
                    st.publish_tail();
                }
                Err(e) => {
                    status.multishot = false;
                    status.missing.push("REGISTER_PBUF_RING");
                    status.fallbacks.push(format!(
                        "multishot=1: registering the provided-buffer ring failed ({e}); \
                         receiving with single-shot RECVMSG instead"
                    ));
                }
            }
        }
        // The single-shot fallback after a failed ring registration uses the
        // larger multishot stride, which is harmless.
        if !status.multishot {
            for i in 0..cfg.bufs {
                st.rearm.push_back(i);
            }
        }

        if let Some(us) = cfg.napi_usecs {
            if pretend("REGISTER_NAPI") {
                status.missing.push("REGISTER_NAPI");
                status
                    .fallbacks
                    .push("napi=: IORING_REGISTER_NAPI is not available (Linux 6.9+); no ring busy polling".into());
            } else {
                let mut napi = Napi::new()
                    .set_busy_poll_timeout(us)
                    .set_prefer_busy_poll(cfg.napi_prefer);
                match sub.register_napi(&mut napi) {
                    Ok(()) => status.napi_usecs = Some(us),
                    Err(e) => {
                        status.missing.push("REGISTER_NAPI");
                        status.fallbacks.push(format!(
                            "napi=: IORING_REGISTER_NAPI refused ({e}; needs Linux 6.9+); no ring busy polling"
                        ));
                    }
                }
            }
        }
        let mut mode = cfg.mode;
        if mode == UringMode::Wait && !ring.params().is_feature_ext_arg() {
            mode = UringMode::Spin;
            status.fallbacks.push(
                "mode=wait: IORING_FEAT_EXT_ARG (Linux 5.11+) missing, so a wait cannot carry \
                 the receive timeout; spinning on the completion queue instead"
                    .into(),
            );
        }
        notes.push("rx: each datagram is copied from the ring's buffer into the burst slot".into());
        let polled_rx = mode == UringMode::Spin && !status.sqpoll && !status.multishot;
        let mut t = Self {
            ring: Box::new(ring),
            st: Box::new(st),
            sock: s,
            cfg,
            status,
            notes,
            default_peer,
            connected,
            timeout: None,
            mode,
            received_any: false,
            setup,
            started: false,
            polled_rx,
            lease: CopyLease::new(),
            local: None,
        };
        t.local = t.sock.local_addr().ok().and_then(|a| a.as_socket());
        Ok(t)
    }

    /// What was granted and which fallbacks were taken.
    #[must_use]
    pub fn status(&self) -> &UringStatus {
        &self.status
    }

    /// Where its receive and transmit slots are now (also in the
    /// capabilities).
    #[must_use]
    pub fn slots(&self) -> UringSlots {
        self.st.slots(self.status.multishot)
    }

    /// The configuration it was opened with.
    #[must_use]
    pub fn config(&self) -> &UringConfig {
        &self.cfg
    }

    /// Largest message a lease lends whole.
    fn lease_slot(&self) -> usize {
        self.cfg.max_message()
    }

    fn sys_err(call: &'static str, errno: i32) -> SyscallError {
        SyscallError {
            call,
            io_error: std::io::Error::from_raw_os_error(errno),
        }
    }

    /// Pushes one entry, submitting first when the queue is full.
    #[inline]
    fn push(&mut self, e: &squeue::Entry) -> Result<(), SyscallError> {
        loop {
            // SAFETY: every entry built here points only into this
            // transport's blocks, which outlive the request (see module doc).
            if unsafe { self.ring.submission().push(e) }.is_ok() {
                self.st.inflight += 1;
                return Ok(());
            }
            self.submit()?;
            if self.ring.submission().is_full() {
                self.ring
                    .submitter()
                    .squeue_wait()
                    .map_err(|e| from_io("io_uring_enter(SQ_WAIT)", e))?;
            }
        }
    }

    /// Submits what is queued: one `io_uring_enter`, or none under SQPOLL
    /// while its thread is awake.
    #[inline]
    fn submit(&mut self) -> Result<(), SyscallError> {
        if self.ring.submission().is_empty() && !self.ring.params().is_setup_sqpoll() {
            return Ok(());
        }
        loop {
            match self.ring.submit() {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    self.reap();
                    return Ok(());
                }
                Err(e) => return Err(enter_err(e)),
            }
        }
    }

    #[inline]
    fn reap(&mut self) {
        let Self { ring, st, .. } = self;
        for cqe in ring.completion() {
            st.handle(&cqe);
        }
    }

    /// Queues (without submitting) what must be in flight before waiting:
    /// the single-shot receive or the multishot one, and the sends that
    /// completed with EAGAIN.
    #[inline]
    fn arm_receives(&mut self) -> Result<(), SyscallError> {
        while self.st.single_armed < SINGLE_SHOT_DEPTH
            && let Some(i) = self.st.rearm.pop_front()
        {
            let h = self.st.hdr(i as usize);
            // SAFETY: slot i's header is ours again (its completion was
            // reaped); reset the address length the kernel overwrote.
            unsafe { (*h.cast::<libc::msghdr>()).msg_namelen = NAME_LEN as u32 };
            let e = opcode::RecvMsg::new(Fixed(0), h.cast())
                .flags(if self.polled_rx {
                    (libc::MSG_TRUNC | libc::MSG_DONTWAIT) as u32
                } else {
                    libc::MSG_TRUNC as u32
                })
                .build()
                .user_data(KIND_RX | u64::from(i));
            self.push(&e)?;
            self.st.single_armed += 1;
        }
        if self.status.multishot && !self.st.multi_armed {
            let h = self.st.hdr(2 * self.st.bufs as usize);
            let e = opcode::RecvMsgMulti::new(Fixed(0), h.cast_const().cast(), BGID)
                .flags(libc::MSG_TRUNC as u32)
                .build()
                .user_data(KIND_MULTI);
            self.push(&e)?;
            self.st.multi_armed = true;
        }
        while let Some(i) = self.st.tx_retry.pop_front() {
            let e = self.tx_entry(i as usize);
            self.push(&e)?;
        }
        Ok(())
    }

    /// The send of transmit slot `i`, whose data, `iovec` length and
    /// destination are in place.
    #[inline]
    fn tx_entry(&self, i: usize) -> squeue::Entry {
        let data = self.st.tx_mem.at(i * self.st.buf_size);
        let h = self.st.hdr(self.st.bufs as usize + i);
        let e = if self.status.zc {
            // SAFETY: slot i is ours (busy, no request names it now); its
            // header was written by `send_burst`.
            let (len, namelen) = unsafe {
                (
                    (*h.add(HDR_IOV).cast::<libc::iovec>()).iov_len,
                    (*h.cast::<libc::msghdr>()).msg_namelen,
                )
            };
            let mut op = opcode::SendZc::new(Fixed(0), data.cast_const(), len as u32)
                .buf_index(Some(0));
            if namelen > 0 {
                op = op
                    .dest_addr(h.wrapping_add(HDR_NAME).cast_const().cast())
                    .dest_addr_len(namelen);
            }
            op.build()
        } else {
            opcode::SendMsg::new(Fixed(0), h.cast_const().cast()).build()
        };
        e.user_data(KIND_TX | i as u64)
    }

    /// First use: enables a ring created disabled (its caller becomes the
    /// single issuer) and queues the receives.
    #[cold]
    fn start(&mut self) -> Result<(), SyscallError> {
        if self.setup.single_issuer {
            self.ring
                .submitter()
                .register_enable_rings()
                .map_err(|e| from_io("io_uring_register(IORING_REGISTER_ENABLE_RINGS)", e))?;
        }
        self.started = true;
        self.arm_receives()
    }

    /// Whether a spinning receive must enter the kernel for completions to
    /// appear: with the task-run flag only when the kernel says task work
    /// (or a completion-queue overflow) waits; without it, always.
    #[inline]
    fn needs_getevents(&mut self) -> bool {
        if self.setup.taskrun_flag {
            let sq = self.ring.submission();
            sq.taskrun() || sq.cq_overflow()
        } else {
            true
        }
    }

    /// Copies ready datagrams into the burst and recycles their buffers.
    #[inline]
    fn deliver(&mut self, burst: &mut RxBurst) -> usize {
        let mut n = 0;
        while n < burst.capacity() {
            let Some(r) = self.st.ready.pop_front() else {
                break;
            };
            let slot = burst.slot_mut(n);
            let meta = match r {
                Ready::Slot(i, res) => {
                    let i = i as usize;
                    let h = self.st.hdr(i);
                    // SAFETY: the slot's receive completed (reaped with
                    // acquire ordering) and is not re-armed until below.
                    let (data, name) = unsafe {
                        let hdr = &*h.cast::<libc::msghdr>();
                        let got = (res as usize).min(self.st.buf_size);
                        (
                            std::slice::from_raw_parts(
                                self.st.rx_mem.at(i * self.st.rx_stride),
                                got,
                            ),
                            std::slice::from_raw_parts(
                                h.add(HDR_NAME),
                                (hdr.msg_namelen as usize).min(NAME_LEN),
                            ),
                        )
                    };
                    let len = data.len().min(slot.len());
                    slot[..len].copy_from_slice(&data[..len]);
                    self.st.rearm.push_back(i as u32);
                    RxMeta {
                        len,
                        wire_len: res as usize,
                        truncated: (res as usize) > len,
                        peer: decode_addr(name),
                        rx_ts_ns: None,
                        rx_hw_ts_ns: None,
                        queue: 0,
                    }
                }
                Ready::Buf(bid, res) => {
                    let stride = self.st.ms_stride;
                    // SAFETY: the kernel filled `res` bytes of buffer `bid`
                    // (completion reaped) and it is not given back until below.
                    let buf = unsafe {
                        std::slice::from_raw_parts(
                            self.st.rx_mem.at(usize::from(bid) * stride),
                            (res as usize).min(stride),
                        )
                    };
                    // SAFETY: the multishot header is only read by the kernel.
                    let hdr = unsafe {
                        &*self
                            .st
                            .hdr(2 * self.st.bufs as usize)
                            .cast::<libc::msghdr>()
                    };
                    let meta = match RecvMsgOut::parse(buf, hdr) {
                        Ok(out) => {
                            let data = out.payload_data();
                            let len = data.len().min(slot.len());
                            slot[..len].copy_from_slice(&data[..len]);
                            let wire = out.incoming_payload_len() as usize;
                            RxMeta {
                                len,
                                wire_len: wire.max(len),
                                truncated: wire > len || out.is_payload_truncated(),
                                peer: decode_addr(out.name_data()),
                                rx_ts_ns: None,
                                rx_hw_ts_ns: None,
                                queue: 0,
                            }
                        }
                        Err(()) => RxMeta::default(),
                    };
                    self.st.give_back(bid);
                    meta
                }
            };
            burst.set(n, meta);
            n += 1;
        }
        self.st.publish_tail();
        n
    }

    fn recv_impl(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        if !self.started {
            self.start()?;
        }
        if let Some(e) = self.st.rx_error.take() {
            burst.set_len(0);
            return Err(Self::sys_err("io_uring recvmsg", e));
        }
        self.reap();
        if self.st.ready.is_empty() {
            let exact = deadline.is_some();
            let deadline = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
            let mut spins = 0u32;
            loop {
                self.arm_receives()?;
                if self.mode == UringMode::Spin {
                    self.submit()?;
                    if !self.status.sqpoll && self.needs_getevents() {
                        // Without SQPOLL, receive completions are posted by
                        // task work, run by a GETEVENTS enter: with the
                        // task-run flag only when the kernel raised it (user
                        // space polling otherwise), without it on every poll.
                        // SAFETY: no submissions, no argument.
                        let r = unsafe {
                            self.ring.submitter().enter::<libc::sigset_t>(
                                0,
                                0,
                                ENTER_GETEVENTS,
                                None,
                            )
                        };
                        if let Err(e) = r
                            && !matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY))
                        {
                            return Err(enter_err(e));
                        }
                    }
                    self.reap();
                    if !self.st.ready.is_empty() {
                        break;
                    }
                    if let Some(e) = self.st.rx_error.take() {
                        burst.set_len(0);
                        return Err(Self::sys_err("io_uring recvmsg", e));
                    }
                    spins = spins.wrapping_add(1);
                    if (exact || spins.is_multiple_of(64))
                        && deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        burst.set_len(0);
                        return Ok(0);
                    }
                    std::hint::spin_loop();
                    continue;
                }
                let r = match deadline {
                    None => self.ring.submit_and_wait(1),
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            self.submit()?;
                            self.reap();
                            if self.st.ready.is_empty() {
                                burst.set_len(0);
                                return Ok(0);
                            }
                            break;
                        }
                        // The timeout travels as the enter's argument
                        // (IORING_ENTER_EXT_ARG): no timeout request.
                        let ts = Timespec::from(left);
                        let args = SubmitArgs::new().timespec(&ts);
                        self.ring.submitter().submit_with_args(1, &args)
                    }
                };
                match r {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                        ) => {}
                    Err(e) => return Err(enter_err(e)),
                }
                self.reap();
                if !self.st.ready.is_empty() {
                    break;
                }
                if let Some(e) = self.st.rx_error.take() {
                    burst.set_len(0);
                    return Err(Self::sys_err("io_uring recvmsg", e));
                }
            }
        }
        let n = self.deliver(burst);
        burst.set_len(n);
        self.received_any = true;
        // The freed receive is armed again by the next send (after its
        // message, in the same enter: the reply leaves first) or by the next
        // receive; datagrams arriving meanwhile wait in the socket.
        Ok(n)
    }

    /// A free transmit slot, waiting for completions if all are in flight.
    #[inline]
    fn tx_slot(&mut self) -> Result<usize, SyscallError> {
        let n = self.st.tx_busy.len();
        loop {
            for k in 0..n {
                let i = (self.st.tx_next + k) % n;
                if !self.st.tx_busy[i] {
                    self.st.tx_next = (i + 1) % n;
                    return Ok(i);
                }
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(enter_err(e)),
            }
            self.reap();
        }
    }
}

/// An `io_uring_enter` error as a [`SyscallError`]; `EEXIST` is a second
/// thread driving a single-issuer ring, said in words.
fn enter_err(e: std::io::Error) -> SyscallError {
    if e.raw_os_error() == Some(libc::EEXIST) {
        from_io(
            "io_uring_enter (this uring:// ring is single-issuer: only the thread that first \
             sent or received on the transport may drive it; open one transport per thread)",
            e,
        )
    } else {
        from_io("io_uring_enter", e)
    }
}

/// Writes `a` as a `sockaddr_in`/`sockaddr_in6` at `p`; returns its length.
///
/// # Safety
/// `p` must be valid for writes of 28 bytes.
unsafe fn encode_addr(p: *mut u8, a: &SocketAddr) -> u32 {
    let mut b = [0u8; 28];
    let len = match a {
        SocketAddr::V4(v4) => {
            b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            16
        }
        SocketAddr::V6(v6) => {
            b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            28
        }
    };
    // SAFETY: the caller grants 28 writable bytes.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), p, len) };
    len as u32
}

/// Reads a `sockaddr_in`/`sockaddr_in6` the kernel wrote.
fn decode_addr(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes(b.get(..2)?.try_into().ok()?));
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flow = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(b.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

impl Transport for UringTransport {
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

    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        if !self.started {
            self.start()?;
        }
        self.reap();
        if let Some(e) = self.st.tx_error.take() {
            return Err(Self::sys_err("io_uring sendmsg", e));
        }
        let mut sent = 0;
        for m in msgs {
            if m.data.len() > self.st.buf_size {
                if sent == 0 {
                    return Err(Self::sys_err(
                        "io_uring sendmsg (message larger than buf_size=)",
                        libc::EMSGSIZE,
                    ));
                }
                break;
            }
            let i = self.tx_slot()?;
            let dest = match m.to {
                Some(a) => Some(a),
                None if self.connected => None,
                None => self.default_peer,
            };
            let data = self.st.tx_mem.at(i * self.st.buf_size);
            let h = self.st.hdr(self.st.bufs as usize + i);
            // SAFETY: slot i is free (no request names it); its data area has
            // buf_size bytes and its header block room for a 28-byte address.
            unsafe {
                std::ptr::copy_nonoverlapping(m.data.as_ptr(), data, m.data.len());
                let namelen = match &dest {
                    Some(a) => encode_addr(h.add(HDR_NAME), a),
                    None => 0,
                };
                let hdr = &mut *h.cast::<libc::msghdr>();
                hdr.msg_name = if namelen == 0 {
                    std::ptr::null_mut()
                } else {
                    h.add(HDR_NAME).cast()
                };
                hdr.msg_namelen = namelen;
                (*h.add(HDR_IOV).cast::<libc::iovec>()).iov_len = m.data.len();
            }
            let e = self.tx_entry(i);
            self.st.tx_busy[i] = true;
            self.push(&e)?;
            sent += 1;
        }
        // The receive freed by the last `recv_burst` goes in the same enter,
        // after the messages: a reply leaves before the receive is armed.
        // (A polled receive is submitted by the next poll instead: here it
        // would only find nothing and delay the return.)
        if !self.polled_rx {
            self.arm_receives()?;
        }
        self.submit()?;
        Ok(sent)
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        self.timeout = timeout;
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        let (mut socket, local) = self.cfg.socket.read_back(&self.sock);
        if self.received_any {
            socket.napi_id =
                hftnet_sys::sock::get_int(self.sock.as_fd(), hftnet_sys::sock::SO_INCOMING_NAPI_ID)
                    .ok()
                    .map(|v| v as u32);
        }
        let s = &self.status;
        let mut notes = self.notes.clone();
        notes.push(format!(
            "sqpoll: {}",
            match (s.sqpoll, s.sqpoll_cpu) {
                (true, Some(c)) => format!(
                    "on, pinned to CPU {c}, idle {} ms (no syscall to send)",
                    self.cfg.sqpoll_idle_ms
                ),
                (true, None) => format!(
                    "on, unpinned, idle {} ms (no syscall to send)",
                    self.cfg.sqpoll_idle_ms
                ),
                (false, _) => "off (one io_uring_enter per send burst)".into(),
            }
        ));
        notes.push(format!(
            "ring: {}",
            if self.setup.defer_taskrun {
                format!(
                    "{} (task work runs in our own GETEVENTS enter, {}; no IPI)",
                    self.setup.describe(),
                    if self.setup.taskrun_flag {
                        "entered only when the kernel flags pending work"
                    } else {
                        "entered on every spin"
                    }
                )
            } else if self.setup.coop_taskrun {
                format!(
                    "{} (task work runs at the next kernel entry, no IPI)",
                    self.setup.describe()
                )
            } else if s.sqpoll {
                format!(
                    "SQPOLL{} (completions by the kernel thread)",
                    if self.setup.single_issuer {
                        "|SINGLE_ISSUER"
                    } else {
                        ""
                    }
                )
            } else {
                "no task-run flags (task work interrupts the thread with an IPI)".into()
            }
        ));
        notes.push(format!(
            "receive: {} ({} buffers of {} bytes, socket and transmit region registered)",
            if s.multishot {
                "multishot RECVMSG, provided-buffer ring"
            } else if self.polled_rx {
                "single-shot RECVMSG, one non-blocking receive submitted per poll"
            } else {
                "single-shot RECVMSG, one armed at a time"
            },
            self.cfg.bufs,
            self.cfg.buf_size
        ));
        notes.push(format!(
            "send: {}",
            if s.zc {
                "SEND_ZC from the registered buffer"
            } else {
                "SENDMSG (copy)"
            }
        ));
        notes.push(match s.napi_usecs {
            Some(u) => format!("napi: IORING_REGISTER_NAPI busy poll {u} us"),
            None if self.cfg.napi_usecs.is_some() => "napi: not available".into(),
            None => "napi: not requested (napi=USECS)".into(),
        });
        notes.push(if s.missing.is_empty() {
            "opcodes missing: none of those used".into()
        } else {
            format!("opcodes missing: {}", s.missing.join(", "))
        });
        notes.extend(s.fallbacks.iter().map(|f| format!("fallback: {f}")));
        if self.st.tx_errors > 0 {
            notes.push(format!("send completions failed: {}", self.st.tx_errors));
        }
        Capabilities {
            transport: "uring",
            rx_strategy: match self.mode {
                UringMode::Spin => "uring-spin",
                UringMode::Wait => "uring-wait",
            },
            local,
            peer: self.default_peer,
            max_message: self.cfg.max_message(),
            burst: self.cfg.bufs as usize,
            backend: Some(
                UringCaps {
                    socket,
                    sqpoll: s.sqpoll,
                    sqpoll_cpu: s.sqpoll_cpu,
                    multishot: s.multishot,
                    send_zc: s.zc,
                    napi_usecs: s.napi_usecs,
                    bufs: self.cfg.bufs,
                    tx_errors: self.st.tx_errors,
                    slots: self.st.slots(s.multishot),
                    setup_flags: s.setup_flags.clone(),
                }
                .into(),
            ),
            notes,
            ..Capabilities::default()
        }
    }

    fn addrs(&self) -> Addrs {
        Addrs {
            local: self.local,
            peer: self.default_peer,
        }
    }
}

impl Drop for UringTransport {
    fn drop(&mut self) {
        if !self.started {
            // Never enabled: no request was ever submitted.
            return;
        }
        // Cancel what is pending and wait (bounded) for every request naming
        // our memory to complete; if that cannot be confirmed (e.g. dropped
        // by another thread than the single issuer), leak the memory.
        let cancel = opcode::AsyncCancel2::new(CancelBuilder::any())
            .build()
            .user_data(KIND_CANCEL);
        // SAFETY: a cancel entry names no memory.
        let pushed = unsafe { self.ring.submission().push(&cancel) }.is_ok();
        let give_up = Instant::now() + Duration::from_secs(1);
        if pushed {
            let _ = self.ring.submit();
        }
        while self.st.inflight > 0 && Instant::now() < give_up {
            let ts = Timespec::from(Duration::from_millis(10));
            let args = SubmitArgs::new().timespec(&ts);
            let r = self.ring.submitter().submit_with_args(1, &args);
            self.reap();
            if let Err(e) = r
                && !matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                )
            {
                // E.g. EEXIST: dropped by another thread than the single
                // issuer, which alone may wait on this ring.
                break;
            }
        }
        if self.st.inflight > 0 {
            self.st.rx_mem.leak = true;
            self.st.tx_mem.leak = true;
            self.st.hdrs.leak = true;
            if let Some(r) = &mut self.st.bufring {
                r.leak = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        let mut b = [0u8; 28];
        for a in ["1.2.3.4:5", "[::1]:7"] {
            let a: SocketAddr = a.parse().unwrap();
            // SAFETY: 28 bytes.
            let n = unsafe { encode_addr(b.as_mut_ptr(), &a) };
            assert_eq!(decode_addr(&b[..n as usize]), Some(a));
        }
        assert_eq!(decode_addr(&[0; 3]), None);
    }
}
