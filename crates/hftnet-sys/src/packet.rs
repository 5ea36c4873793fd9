//! `AF_PACKET` sockets with memory-mapped `TPACKET_V2` / `TPACKET_V3` receive
//! and transmit rings, a classic-BPF socket filter, `PACKET_QDISC_BYPASS` and
//! `PACKET_FANOUT`.
//!
//! Layer: the bottom of the `packet://` transport in `hftnet-io`, which builds
//! and parses the frames with `hftnet-wire`. This module only moves frames
//! between the rings and the caller.
//!
//! The rings are one shared mapping: the receive ring first, then the
//! transmit ring. Each frame (each block, for a V3 receive ring) starts with a
//! header whose `tp_status` word says who owns it. The kernel hands a frame to
//! user space by storing `TP_STATUS_USER` after writing it (with a write
//! barrier); we load the status with `Acquire` before reading the frame and
//! hand it back by storing `TP_STATUS_KERNEL` with `Release` after we are done
//! with it. Transmit works the other way round: we write the frame, then
//! store `TP_STATUS_SEND_REQUEST` with `Release`; the kernel sets it back to
//! `TP_STATUS_AVAILABLE` once the frame has left. Nothing else in the mapping
//! is written by both sides, and a frame is only ever read or written by the
//! side that owns it. That is the whole safety argument of this module.
//!
//! Why two versions: V3 hands over whole blocks, and a block is handed over
//! only when it is full or its retire timer (`tp_retire_blk_tov`, at least a
//! millisecond) expires. That suits capture at high rates and costs a
//! millisecond of latency for a lone packet. V2 hands over each frame as soon
//! as it is written, so it is the latency choice; the transport measures both.

use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::{Result, SyscallError, cvt};

const SO_ATTACH_FILTER: libc::c_int = 26;
const TPACKET_ALIGNMENT: usize = 16;
const fn tpacket_align(x: usize) -> usize {
    (x + TPACKET_ALIGNMENT - 1) & !(TPACKET_ALIGNMENT - 1)
}
/// Where frame data starts in a V2 transmit frame (`TPACKET2_HDRLEN - sizeof(sockaddr_ll)`).
const V2_TX_DATA: usize = tpacket_align(mem::size_of::<libc::tpacket2_hdr>());
/// Where frame data starts in a V3 transmit frame.
const V3_TX_DATA: usize = tpacket_align(mem::size_of::<libc::tpacket3_hdr>());
/// Bytes of the `virtio_net_hdr` before each frame with
/// [`RingConfig::tx_copy`] (`PACKET_VNET_HDR`).
const VNET_HDR: usize = 10;
/// Offset of `sll_pkttype` in the `sockaddr_ll` that follows a V2 header.
const SLL_PKTTYPE: usize = 10;

/// The ring layout of the socket (`PACKET_VERSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// One frame per packet, handed over at once: the low-latency layout.
    V2,
    /// Variable-size packets packed into blocks, handed over when a block is
    /// full or its timer expires: the high-rate capture layout.
    V3,
}

impl Version {
    /// `2` or `3`.
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

/// How frames are spread over the sockets of a fanout group (`PACKET_FANOUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutMode {
    /// By flow hash: one flow always reaches the same socket.
    Hash,
    /// Round robin.
    LoadBalance,
    /// By the CPU that received the frame.
    Cpu,
    /// By receive queue.
    QueueMapping,
    /// Fill one socket, then roll over to the next.
    Rollover,
    /// At random.
    Random,
}

impl FanoutMode {
    /// Accepted names, in the order listed to users.
    pub const NAMES: &'static [&'static str] = &["hash", "lb", "cpu", "qm", "rollover", "rnd"];

    /// Parses one of [`Self::NAMES`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "hash" => Self::Hash,
            "lb" => Self::LoadBalance,
            "cpu" => Self::Cpu,
            "qm" => Self::QueueMapping,
            "rollover" => Self::Rollover,
            "rnd" => Self::Random,
            _ => return None,
        })
    }

    /// Its name in [`Self::NAMES`].
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Hash => "hash",
            Self::LoadBalance => "lb",
            Self::Cpu => "cpu",
            Self::QueueMapping => "qm",
            Self::Rollover => "rollover",
            Self::Random => "rnd",
        }
    }

    const fn raw(self) -> u32 {
        match self {
            Self::Hash => libc::PACKET_FANOUT_HASH,
            Self::LoadBalance => libc::PACKET_FANOUT_LB,
            Self::Cpu => libc::PACKET_FANOUT_CPU,
            Self::QueueMapping => libc::PACKET_FANOUT_QM,
            Self::Rollover => libc::PACKET_FANOUT_ROLLOVER,
            Self::Random => libc::PACKET_FANOUT_RND,
        }
    }
}

/// Membership of a fanout group: every socket of the group bound to the same
/// interface and protocol with the same `group` id shares the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    /// Group id (per network namespace).
    pub group: u16,
    /// How frames are spread.
    pub mode: FanoutMode,
}

/// Sizes and options of the rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Ring layout.
    pub version: Version,
    /// Bytes per frame (a multiple of 16, dividing `block_size`): the frame
    /// header plus the largest frame carried. Larger frames are truncated.
    pub frame_size: u32,
    /// Bytes per block: a multiple of the page size.
    pub block_size: u32,
    /// Receive ring size in frames (V3: `rx_frames * frame_size` bytes of blocks).
    pub rx_frames: u32,
    /// Transmit ring size in frames; 0 for no transmit ring.
    pub tx_frames: u32,
    /// V3 block retire timeout in milliseconds (at least 1).
    pub block_timeout_ms: u32,
    /// Hand frames straight to the driver, skipping the queueing discipline
    /// (`PACKET_QDISC_BYPASS`).
    pub qdisc_bypass: bool,
    /// Have the kernel copy each transmitted frame whole into its buffer
    /// (`PACKET_VNET_HDR`, a `virtio_net_hdr` whose `hdr_len` is the frame's
    /// length) instead of attaching the ring's pages to it. Without it a
    /// device that keeps the buffer (veth hands it to the peer) copies the
    /// attached pages again, a page per frame; a NIC sends from the pages
    /// as they are. Received frames then carry the 10-byte header before
    /// the Ethernet header (skipped: frames are read from `tp_mac`).
    pub tx_copy: bool,
}

impl RingConfig {
    /// V2, 2048-byte frames, 4 KiB blocks, 256 receive and 256 transmit
    /// frames, 1 ms V3 timeout, qdisc bypass on.
    pub const DEFAULT: Self = Self {
        version: Version::V2,
        frame_size: 2048,
        block_size: 4096,
        rx_frames: 256,
        tx_frames: 256,
        block_timeout_ms: 1,
        qdisc_bypass: true,
        tx_copy: false,
    };

    /// The largest frame a receive slot holds untruncated.
    #[must_use]
    pub const fn max_rx_frame(&self) -> usize {
        let hdr = match self.version {
            Version::V2 => mem::size_of::<libc::tpacket2_hdr>(),
            Version::V3 => mem::size_of::<libc::tpacket3_hdr>(),
        };
        // Header, the sockaddr_ll the kernel puts after it, alignment,
        // room for the kernel's NET_IP_ALIGN-style offset of tp_mac, and the
        // virtio header with `tx_copy`.
        (self.frame_size as usize).saturating_sub(
            tpacket_align(hdr + mem::size_of::<libc::sockaddr_ll>())
                + TPACKET_ALIGNMENT
                + self.vnet_len(),
        )
    }

    /// The largest frame a transmit slot holds.
    #[must_use]
    pub const fn max_tx_frame(&self) -> usize {
        let off = match self.version {
            Version::V2 => V2_TX_DATA,
            Version::V3 => V3_TX_DATA,
        };
        (self.frame_size as usize).saturating_sub(off + self.vnet_len())
    }

    /// Bytes of the virtio header before each frame: 10 with `tx_copy`.
    const fn vnet_len(&self) -> usize {
        if self.tx_copy { VNET_HDR } else { 0 }
    }

    /// Checks the sizes; `Err` says which rule is broken.
    ///
    /// # Errors
    /// A sentence naming the field and the rule.
    pub fn check(&self) -> std::result::Result<(), String> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
        if self.frame_size < 128 || !self.frame_size.is_multiple_of(TPACKET_ALIGNMENT as u32) {
            return Err(format!(
                "frame_size {} must be a multiple of 16 and at least 128",
                self.frame_size
            ));
        }
        if self.block_size < page || !self.block_size.is_multiple_of(page) {
            return Err(format!(
                "block_size {} must be a multiple of the page size ({page})",
                self.block_size
            ));
        }
        if !self.block_size.is_multiple_of(self.frame_size) {
            return Err(format!(
                "frame_size {} must divide block_size {}",
                self.frame_size, self.block_size
            ));
        }
        let per_block = self.block_size / self.frame_size;
        for (name, n) in [("frames", self.rx_frames), ("tx_frames", self.tx_frames)] {
            if name == "frames" && n == 0 {
                return Err("frames must be at least 1".into());
            }
            if !n.is_multiple_of(per_block) {
                return Err(format!(
                    "{name} {n} must be a multiple of the {per_block} frames a block holds"
                ));
            }
            if u64::from(n) * u64::from(self.frame_size) > 1 << 30 {
                return Err(format!("{name} {n} × frame_size is over 1 GiB"));
            }
        }
        if self.version == Version::V3 && self.block_timeout_ms == 0 {
            return Err("block_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant.
    pub k: u32,
}

/// Classic BPF opcodes used by [`udp_flow_filter`].
pub mod bpf {
    /// `ld` halfword at an absolute offset.
    pub const LDH_ABS: u16 = 0x28;
    /// `ld` byte at an absolute offset.
    pub const LDB_ABS: u16 = 0x30;
    /// `ld` word at an absolute offset.
    pub const LDW_ABS: u16 = 0x20;
    /// `ld` halfword at `x + k`.
    pub const LDH_IND: u16 = 0x48;
    /// `x = 4 * (packet[k] & 0xf)`.
    pub const LDXB_MSH: u16 = 0xb1;
    /// Jump if `a == k`.
    pub const JEQ_K: u16 = 0x15;
    /// Jump if `a & k != 0`.
    pub const JSET_K: u16 = 0x45;
    /// Return `k`.
    pub const RET_K: u16 = 0x06;
}

/// A classic BPF program accepting only IPv4/UDP frames to `dst_port` and,
/// when given, to `dst_ip` (untagged Ethernet; the kernel has already removed
/// an offloaded VLAN tag). Fragments other than the first carry no UDP header
/// and never match a port reliably, so the first fragment and everything
/// after it is left to the caller to count and drop.
#[must_use]
pub fn udp_flow_filter(dst_ip: Option<std::net::Ipv4Addr>, dst_port: u16) -> Vec<SockFilter> {
    let ins = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    let mut p = vec![
        ins(bpf::LDH_ABS, 0, 0, 12),   // EtherType
        ins(bpf::JEQ_K, 0, 0, 0x0800), // IPv4? (jf patched)
        ins(bpf::LDB_ABS, 0, 0, 23),   // protocol
        ins(bpf::JEQ_K, 0, 0, 17),     // UDP? (jf patched)
    ];
    if let Some(ip) = dst_ip {
        p.push(ins(bpf::LDW_ABS, 0, 0, 30));
        p.push(ins(bpf::JEQ_K, 0, 0, u32::from(ip)));
    }
    p.push(ins(bpf::LDXB_MSH, 0, 0, 14)); // x = IHL * 4
    p.push(ins(bpf::LDH_IND, 0, 0, 14 + 2)); // UDP destination port
    p.push(ins(bpf::JEQ_K, 0, 0, u32::from(dst_port)));
    p.push(ins(bpf::RET_K, 0, 0, 0x0004_0000)); // accept, whole frame
    p.push(ins(bpf::RET_K, 0, 0, 0)); // drop
    let drop_at = p.len() - 1;
    for (i, insn) in p.iter_mut().enumerate() {
        if insn.code == bpf::JEQ_K {
            insn.jf = u8::try_from(drop_at - i - 1).expect("short program");
        }
    }
    p
}

/// A program that accepts nothing: attached to a kernel socket, it makes the
/// kernel drop what that socket would receive.
#[must_use]
pub fn drop_all_filter() -> [SockFilter; 1] {
    [SockFilter {
        code: bpf::RET_K,
        jt: 0,
        jf: 0,
        k: 0,
    }]
}

/// Runs a classic BPF program over `frame` the way the kernel does for the
/// opcodes this module emits; returns the bytes accepted (0: dropped), or
/// `None` for an opcode it does not know. Out-of-bounds loads drop the frame,
/// as in the kernel. For tests and fuzzing of the filters.
#[must_use]
pub fn run_filter(prog: &[SockFilter], frame: &[u8]) -> Option<u32> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut pc = 0usize;
    let load = |at: usize, n: usize| -> Option<u32> {
        let b = frame.get(at..at.checked_add(n)?)?;
        Some(b.iter().fold(0u32, |v, &byte| (v << 8) | u32::from(byte)))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = i.k as usize;
        match i.code {
            bpf::LDH_ABS | bpf::LDB_ABS | bpf::LDW_ABS => {
                let n = match i.code {
                    bpf::LDB_ABS => 1,
                    bpf::LDH_ABS => 2,
                    _ => 4,
                };
                match load(k, n) {
                    Some(v) => a = v,
                    None => return Some(0),
                }
            }
            bpf::LDH_IND => match load(x as usize + k, 2) {
                Some(v) => a = v,
                None => return Some(0),
            },
            bpf::LDXB_MSH => match load(k, 1) {
                Some(v) => x = 4 * (v & 0xf),
                None => return Some(0),
            },
            bpf::JEQ_K | bpf::JSET_K => {
                let hit = if i.code == bpf::JEQ_K {
                    a == i.k
                } else {
                    a & i.k != 0
                };
                pc += usize::from(if hit { i.jt } else { i.jf });
            }
            bpf::RET_K => return Some(i.k),
            _ => return None,
        }
    }
    None
}

/// Attaches a classic BPF program to any socket (`SO_ATTACH_FILTER`).
///
/// # Errors
/// `setsockopt(SO_ATTACH_FILTER)`: `EINVAL` for a program the kernel rejects.
pub fn attach_filter(fd: BorrowedFd<'_>, prog: &[SockFilter]) -> Result<()> {
    let Ok(len) = u16::try_from(prog.len()) else {
        return Err(SyscallError::from_errno(
            "setsockopt(SO_ATTACH_FILTER)",
            libc::EINVAL,
        ));
    };
    let fprog = libc::sock_fprog {
        len,
        filter: prog.as_ptr().cast_mut().cast(),
    };
    // SAFETY: `fprog` points at `len` instructions that live for the call;
    // `SockFilter` has the layout of `struct sock_filter`; the kernel copies them.
    cvt("setsockopt(SO_ATTACH_FILTER)", unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_FILTER,
            (&raw const fprog).cast(),
            mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Counters of the socket (`PACKET_STATISTICS`), accumulated since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Frames that passed the filter (received into the ring or dropped).
    pub packets: u64,
    /// Frames dropped because the ring was full.
    pub drops: u64,
    /// V3: times the ring froze because every block was in user space.
    pub freezes: u64,
}

/// Where the frames of both rings are, read from their status words: the
/// ring accounting a soak checks at the end of a run. A frame user space
/// took and never gave back would shrink the ring for good; it shows as a
/// stray frame, owned by user space where the cursor will not come back to
/// it.
///
/// Read it at rest (no frame arriving or leaving): a frame the kernel fills
/// during the scan can be miscounted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingOccupancy {
    /// Receive slots (V2: frames; V3: blocks).
    pub rx_slots: u32,
    /// Receive slots owned by user space now: received, not yet given back.
    pub rx_user: u32,
    /// Of `rx_user`, those outside the run that starts at the receive
    /// cursor (which the reader will never see again): leaked.
    pub rx_stray: u32,
    /// Transmit frames.
    pub tx_slots: u32,
    /// Transmit frames handed to the kernel and not yet back `AVAILABLE`.
    pub tx_pending: u32,
    /// Transmit frames the bookkeeping counts as handed over
    /// (committed and not yet reclaimed).
    pub tx_committed: u32,
    /// Transmit frames not `AVAILABLE` outside the committed window: leaked.
    pub tx_stray: u32,
}

impl RingOccupancy {
    /// True when every frame is where the bookkeeping says: nothing stray,
    /// and no more frames with the kernel than committed.
    #[must_use]
    pub fn balanced(&self) -> bool {
        self.rx_stray == 0 && self.tx_stray == 0 && self.tx_pending <= self.tx_committed
    }
}

/// What the kernel wrote about one received frame.
#[derive(Debug, Clone, Copy)]
pub struct RxFrame<'a> {
    /// The frame bytes captured (`tp_snaplen` of them).
    pub data: &'a [u8],
    /// The frame's length on the wire; above `data.len()` when truncated.
    pub wire_len: u32,
    /// `tp_status` (`TP_STATUS_CSUMNOTREADY`, `TP_STATUS_CSUM_VALID`,
    /// `TP_STATUS_VLAN_VALID`, `TP_STATUS_TS_*`, ...).
    pub status: u32,
    /// Receive time, CLOCK_REALTIME nanoseconds (software unless a
    /// `TP_STATUS_TS_RAW_HARDWARE` bit says otherwise).
    pub ts_ns: u64,
    /// The VLAN tag the device removed, when `TP_STATUS_VLAN_VALID`.
    pub vlan_tci: Option<u16>,
    /// `PACKET_HOST`, `PACKET_BROADCAST`, `PACKET_MULTICAST`,
    /// `PACKET_OTHERHOST`, `PACKET_OUTGOING` (V2 only; V3 reports 0).
    pub pkttype: u8,
}

impl RxFrame<'_> {
    /// The device left the transport checksum partial (`CHECKSUM_PARTIAL`,
    /// e.g. a frame from a local socket over veth): it holds only the
    /// pseudo-header sum, so verifying it would fail.
    #[must_use]
    pub const fn csum_not_ready(&self) -> bool {
        self.status & libc::TP_STATUS_CSUMNOTREADY != 0
    }

    /// The device verified the transport checksum.
    #[must_use]
    pub const fn csum_valid(&self) -> bool {
        self.status & libc::TP_STATUS_CSUM_VALID != 0
    }

    /// Frames were dropped before this one since the last statistics read.
    #[must_use]
    pub const fn losing(&self) -> bool {
        self.status & libc::TP_STATUS_LOSING != 0
    }
}

/// The shared mapping of both rings.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned; nothing borrows
        // the mapping any more (borrows are tied to `&PacketRing`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain memory owned by the ring; moving it to another
// thread moves the only handle to it.
unsafe impl Send for Mapping {}

/// Where the mapping is and how it is laid out: copied into both halves.
/// Only the halves use it, and they are fields of the [`PacketRing`] that
/// owns the mapping, reached only through borrows of it.
#[derive(Clone, Copy)]
struct Base {
    ptr: NonNull<u8>,
    len: usize,
    cfg: RingConfig,
}

// SAFETY: as `Mapping`: a pointer into memory owned by the ring it moves with.
unsafe impl Send for Base {}

impl Base {
    #[inline]
    fn status_at(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset + 4 <= self.len && offset.is_multiple_of(4));
        // SAFETY: `offset` is the start of a frame or block header inside the
        // mapping, 16-byte aligned; the status word is shared with the kernel,
        // so it is only accessed atomically. The reference lives no longer
        // than the borrow of the half, which keeps the mapping alive.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) }
    }

    #[inline]
    fn read_u32(&self, offset: usize) -> u32 {
        debug_assert!(offset + 4 <= self.len);
        // SAFETY: inside the mapping, in a header the caller owns (its status
        // was read with Acquire and says so), 4-byte aligned.
        unsafe { self.ptr.as_ptr().add(offset).cast::<u32>().read_volatile() }
    }

    #[inline]
    fn read_u16(&self, offset: usize) -> u16 {
        debug_assert!(offset + 2 <= self.len);
        // SAFETY: as `read_u32`, 2-byte aligned.
        unsafe { self.ptr.as_ptr().add(offset).cast::<u16>().read_volatile() }
    }

    #[inline]
    fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        let end = offset.saturating_add(len).min(self.len);
        let offset = offset.min(end);
        // SAFETY: the range is clamped to the mapping; the frame is owned by
        // user space until it is released, which needs `&mut` of the
        // receive half, so the slice cannot outlive our ownership.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), end - offset) }
    }
}

/// Where the receive cursor is.
#[derive(Debug, Clone, Copy)]
struct RxCursor {
    /// V2: current frame. V3: current block.
    index: u32,
    /// V3: packets left in the current block, and the offset of the next.
    left: u32,
    offset: u32,
}

/// The receive ring's state.
struct RxState {
    base: Base,
    /// V2: frames; V3: blocks.
    count: u32,
    cursor: RxCursor,
    /// A frame returned by `next` is waiting for `release`.
    held: bool,
}

/// The transmit ring's state.
struct TxState {
    base: Base,
    fd: RawFd,
    /// Where the transmit ring starts in the mapping.
    start: usize,
    head: u32,
    /// Oldest committed frame not yet seen back `AVAILABLE`.
    tail: u32,
    /// Frames committed and not yet seen back `AVAILABLE`.
    committed: u32,
    /// A slot returned by `slot` is waiting for `commit` or `cancel`.
    held: bool,
    /// The frame at `head` was seen `AVAILABLE`: it stays ours until we
    /// commit it (only we set `SEND_REQUEST`), so it need not be looked at
    /// again before then.
    head_free: bool,
}

/// An `AF_PACKET` socket bound to one interface, with its rings.
pub struct PacketRing {
    // The halves point into `map`; they are dropped with it and only ever
    // reached through borrows of this value.
    rx: RxState,
    tx: TxState,
    fd: OwnedFd,
    map: Mapping,
    cfg: RingConfig,
    /// Totals of `PACKET_STATISTICS`, which the kernel resets on each read:
    /// accumulated here so a read through `&self` (a capability report)
    /// loses nothing.
    stats: std::cell::Cell<RingStats>,
}

/// The receive half of a [`PacketRing`] (see [`PacketRing::split`]).
pub struct RxHalf<'a> {
    s: &'a mut RxState,
}

/// The transmit half of a [`PacketRing`] (see [`PacketRing::split`]).
pub struct TxHalf<'a> {
    s: &'a mut TxState,
}

impl std::fmt::Debug for PacketRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketRing")
            .field("fd", &self.fd)
            .field("cfg", &self.cfg)
            .field("stats", &self.stats.get())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RxHalf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxHalf").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TxHalf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxHalf").finish_non_exhaustive()
    }
}

fn set_opt<T>(fd: BorrowedFd<'_>, call: &'static str, name: libc::c_int, v: &T) -> Result<()> {
    // SAFETY: `v` is valid for reads of its size for the duration of the call.
    cvt(call, unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            (v as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

impl PacketRing {
    /// Opens the socket on interface `ifindex` for IPv4 frames, attaches
    /// `filter` before any frame can arrive, sets up and maps the rings,
    /// binds, and joins `fanout`.
    ///
    /// # Errors
    /// The failing step: `socket(AF_PACKET)` (`EPERM` without `CAP_NET_RAW`),
    /// `setsockopt(PACKET_VERSION)`, `setsockopt(SO_ATTACH_FILTER)`,
    /// `setsockopt(PACKET_RX_RING)` / `(PACKET_TX_RING)` (`EINVAL` for sizes
    /// the kernel refuses, `ENOMEM`), `mmap(packet rings)`,
    /// `bind(AF_PACKET)` (`ENODEV`), `setsockopt(PACKET_QDISC_BYPASS)`,
    /// `setsockopt(PACKET_FANOUT)` (`EINVAL` when the group exists with
    /// other settings). `EINVAL` from `check` for bad sizes.
    pub fn open(
        ifindex: u32,
        cfg: RingConfig,
        filter: Option<&[SockFilter]>,
        fanout: Option<Fanout>,
    ) -> Result<Self> {
        if cfg.check().is_err() {
            return Err(SyscallError::from_errno("packet ring sizes", libc::EINVAL));
        }
        // Protocol 0: no frame is queued before `bind` names the protocol.
        // SAFETY: plain syscall with integer arguments; the fd is owned below.
        let raw = cvt("socket(AF_PACKET)", unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let b = fd.as_fd();
        let version: libc::c_int = match cfg.version {
            // enum tpacket_versions { TPACKET_V1, TPACKET_V2, TPACKET_V3 }
            Version::V2 => 1,
            Version::V3 => 2,
        };
        set_opt(
            b,
            "setsockopt(PACKET_VERSION)",
            libc::PACKET_VERSION,
            &version,
        )?;
        if let Some(prog) = filter {
            attach_filter(b, prog)?;
        }
        // Skip malformed transmit frames instead of stopping the ring at them.
        let one: libc::c_int = 1;
        set_opt(b, "setsockopt(PACKET_LOSS)", libc::PACKET_LOSS, &one)?;
        if cfg.tx_copy {
            // Before the rings: the kernel refuses it (EBUSY) after.
            set_opt(
                b,
                "setsockopt(PACKET_VNET_HDR)",
                libc::PACKET_VNET_HDR,
                &one,
            )?;
        }

        let per_block = cfg.block_size / cfg.frame_size;
        let rx_blocks = cfg.rx_frames / per_block;
        let tx_blocks = cfg.tx_frames / per_block;
        let req = |blocks: u32, frames: u32, rx: bool| libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: blocks,
            tp_frame_size: cfg.frame_size,
            tp_frame_nr: frames,
            tp_retire_blk_tov: if rx && cfg.version == Version::V3 {
                cfg.block_timeout_ms
            } else {
                0
            },
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        match cfg.version {
            Version::V2 => {
                let r = libc::tpacket_req {
                    tp_block_size: cfg.block_size,
                    tp_block_nr: rx_blocks,
                    tp_frame_size: cfg.frame_size,
                    tp_frame_nr: cfg.rx_frames,
                };
                set_opt(b, "setsockopt(PACKET_RX_RING)", libc::PACKET_RX_RING, &r)?;
                if tx_blocks > 0 {
                    let t = libc::tpacket_req {
                        tp_block_nr: tx_blocks,
                        tp_frame_nr: cfg.tx_frames,
                        ..r
                    };
                    set_opt(b, "setsockopt(PACKET_TX_RING)", libc::PACKET_TX_RING, &t)?;
                }
            }
            Version::V3 => {
                let r = req(rx_blocks, cfg.rx_frames, true);
                set_opt(b, "setsockopt(PACKET_RX_RING)", libc::PACKET_RX_RING, &r)?;
                if tx_blocks > 0 {
                    let t = req(tx_blocks, cfg.tx_frames, false);
                    set_opt(b, "setsockopt(PACKET_TX_RING)", libc::PACKET_TX_RING, &t)?;
                }
            }
        }
        let rx_len = rx_blocks as usize * cfg.block_size as usize;
        let len = rx_len + tx_blocks as usize * cfg.block_size as usize;
        // SAFETY: maps the rings the kernel just allocated for this socket;
        // the result is checked before use and unmapped on drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(SyscallError::last("mmap(packet rings)"));
        }
        let map = Mapping {
            ptr: NonNull::new(ptr.cast()).expect("mmap returned null without failing"),
            len,
        };
        if cfg.qdisc_bypass && cfg.tx_frames > 0 {
            set_opt(
                b,
                "setsockopt(PACKET_QDISC_BYPASS)",
                libc::PACKET_QDISC_BYPASS,
                &one,
            )?;
        }
        // SAFETY: sockaddr_ll is plain data for which all-zero bytes are valid.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
        cvt("bind(AF_PACKET)", unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const sll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        if let Some(f) = fanout {
            let arg: libc::c_int = (u32::from(f.group) | (f.mode.raw() << 16)) as libc::c_int;
            set_opt(b, "setsockopt(PACKET_FANOUT)", libc::PACKET_FANOUT, &arg)?;
        }
        let base = Base {
            ptr: map.ptr,
            len,
            cfg,
        };
        let ring = Self {
            rx: RxState {
                base,
                count: match cfg.version {
                    Version::V2 => cfg.rx_frames,
                    Version::V3 => rx_blocks,
                },
                cursor: RxCursor {
                    index: 0,
                    left: 0,
                    offset: 0,
                },
                held: false,
            },
            tx: TxState {
                base,
                fd: fd.as_raw_fd(),
                start: rx_len,
                head: 0,
                tail: 0,
                committed: 0,
                held: false,
                head_free: false,
            },
            fd,
            map,
            cfg,
            stats: std::cell::Cell::new(RingStats::default()),
        };
        // Start the counters at zero for this socket.
        ring.stats()?;
        ring.stats.set(RingStats::default());
        Ok(ring)
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &RingConfig {
        &self.cfg
    }

    /// The descriptor, to poll it (readable: a frame or block is waiting).
    #[must_use]
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether a received frame waits (a cheap look at the next status word,
    /// for spinning loops; it takes nothing off the ring).
    #[inline]
    #[must_use]
    pub fn rx_waiting(&self) -> bool {
        self.rx.waiting()
    }

    /// The receive and transmit halves, usable at the same time: a frame
    /// held from the receive half can be answered through the transmit half
    /// before it is released.
    pub fn split(&mut self) -> (RxHalf<'_>, TxHalf<'_>) {
        debug_assert!(self.map.len == self.rx.base.len);
        (RxHalf { s: &mut self.rx }, TxHalf { s: &mut self.tx })
    }

    /// The next received frame, without taking it off the ring; `None` when
    /// the ring is empty. Call [`Self::rx_release`] when done with it.
    #[inline]
    pub fn rx_next(&mut self) -> Option<RxFrame<'_>> {
        self.rx.next()
    }

    /// Gives the frame returned by the last [`Self::rx_next`] back to the
    /// kernel (V3: moves to the next packet, and gives the block back after
    /// its last one). Does nothing when no frame is held.
    #[inline]
    pub fn rx_release(&mut self) {
        self.rx.release();
    }

    /// The data area of the next free transmit frame, to write a frame into;
    /// `None` when the ring is full (every frame is waiting to be sent) or
    /// there is no transmit ring.
    #[inline]
    pub fn tx_slot(&mut self) -> Option<&mut [u8]> {
        self.tx.slot()
    }

    /// Queues the frame written into the last [`Self::tx_slot`] (`len` bytes)
    /// for sending; [`Self::tx_kick`] sends what is queued.
    ///
    /// # Panics
    /// When no slot is held (no [`Self::tx_slot`] returned one since the
    /// last commit) or `len` exceeds the slot: caller bugs.
    #[inline]
    pub fn tx_commit(&mut self, len: usize) {
        self.tx.commit(len);
    }

    /// True when a committed frame still waits for a kick (`SEND_REQUEST`):
    /// a kick can stop early (a full socket send buffer, a busy device), so
    /// the caller kicks again until this is false.
    #[must_use]
    pub fn tx_unsent(&mut self) -> bool {
        self.tx.unsent()
    }

    /// Asks the kernel to send every queued frame (`send(fd, NULL, 0)`);
    /// `wait` blocks until they have left. Returns the bytes sent.
    ///
    /// # Errors
    /// `send(AF_PACKET ring)`: `ENETDOWN` / `ENXIO` when the link is down,
    /// `ENOBUFS`, `EAGAIN` (without `wait`) when the device queue is full.
    #[inline]
    pub fn tx_kick(&mut self, wait: bool) -> Result<usize> {
        self.tx.kick(wait)
    }

    /// Where the frames of both rings are now (see [`RingOccupancy`]).
    #[must_use]
    pub fn occupancy(&self) -> RingOccupancy {
        let (rx_user, rx_stray) = self.rx.occupancy();
        let (tx_pending, tx_stray) = self.tx.occupancy();
        RingOccupancy {
            rx_slots: self.rx.count,
            rx_user,
            rx_stray,
            tx_slots: self.tx.frames(),
            tx_pending,
            tx_committed: self.tx.committed,
            tx_stray,
        }
    }

    /// The totals of the last [`Self::stats`] read, without asking the kernel.
    #[must_use]
    pub fn last_stats(&self) -> RingStats {
        self.stats.get()
    }

    /// Reads `PACKET_STATISTICS` (which the kernel resets on each read) and
    /// returns the totals since the socket opened. Needs only `&self`: the
    /// totals are kept in the ring, so every read adds to them and none is
    /// lost whoever reads.
    ///
    /// # Errors
    /// `getsockopt(PACKET_STATISTICS)`; the totals are then unchanged.
    pub fn stats(&self) -> Result<RingStats> {
        let mut s = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = match self.cfg.version {
            Version::V2 => mem::size_of::<libc::tpacket_stats>(),
            Version::V3 => mem::size_of::<libc::tpacket_stats_v3>(),
        } as libc::socklen_t;
        // SAFETY: `s` is valid for writes of `len` bytes (V2 stats are a prefix).
        cvt("getsockopt(PACKET_STATISTICS)", unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut s).cast(),
                &raw mut len,
            )
        })?;
        // tp_packets counts every frame that passed the filter, dropped or not.
        let mut t = self.stats.get();
        t.packets += u64::from(s.tp_packets);
        t.drops += u64::from(s.tp_drops);
        t.freezes += u64::from(s.tp_freeze_q_cnt);
        self.stats.set(t);
        Ok(t)
    }
}

impl RxHalf<'_> {
    /// As [`PacketRing::rx_next`].
    #[inline]
    pub fn next_frame(&mut self) -> Option<RxFrame<'_>> {
        self.s.next()
    }

    /// As [`PacketRing::rx_release`].
    #[inline]
    pub fn release(&mut self) {
        self.s.release();
    }
}

impl TxHalf<'_> {
    /// As [`PacketRing::tx_slot`].
    #[inline]
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        self.s.slot()
    }

    /// Whether [`Self::slot`] would give a frame now.
    #[inline]
    pub fn ready(&mut self) -> bool {
        self.s.ready()
    }

    /// As [`PacketRing::tx_commit`].
    ///
    /// # Panics
    /// As [`PacketRing::tx_commit`].
    #[inline]
    pub fn commit(&mut self, len: usize) {
        self.s.commit(len);
    }

    /// Gives back the slot taken with [`Self::slot`], unsent. Does nothing
    /// when no slot is held.
    #[inline]
    pub fn cancel(&mut self) {
        self.s.held = false;
    }

    /// As [`PacketRing::tx_unsent`].
    #[must_use]
    pub fn unsent(&mut self) -> bool {
        self.s.unsent()
    }

    /// As [`PacketRing::tx_kick`].
    ///
    /// # Errors
    /// As [`PacketRing::tx_kick`].
    #[inline]
    pub fn kick(&mut self, wait: bool) -> Result<usize> {
        self.s.kick(wait)
    }
}

impl RxState {
    /// User-owned slots, and of them those outside the run from the cursor.
    fn occupancy(&self) -> (u32, u32) {
        let b = &self.base;
        let (stride, status) = match b.cfg.version {
            Version::V2 => (b.cfg.frame_size as usize, 0),
            Version::V3 => (b.cfg.block_size as usize, 8),
        };
        let (mut user, mut run, mut in_run) = (0, 0, true);
        for k in 0..self.count {
            let i = (self.cursor.index + k) % self.count;
            let owned = b
                .status_at(i as usize * stride + status)
                .load(Ordering::Acquire)
                & libc::TP_STATUS_USER
                != 0;
            in_run &= owned;
            user += u32::from(owned);
            run += u32::from(in_run);
        }
        (user, user - run)
    }

    #[inline]
    fn waiting(&self) -> bool {
        let b = &self.base;
        match b.cfg.version {
            Version::V2 => {
                let at = self.cursor.index as usize * b.cfg.frame_size as usize;
                b.status_at(at).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
            }
            Version::V3 => {
                self.cursor.left > 0
                    || b.status_at(self.block_at() + 8).load(Ordering::Acquire)
                        & libc::TP_STATUS_USER
                        != 0
            }
        }
    }

    #[inline]
    fn next(&mut self) -> Option<RxFrame<'_>> {
        match self.base.cfg.version {
            Version::V2 => self.next_v2(),
            Version::V3 => self.next_v3(),
        }
    }

    #[inline]
    fn next_v2(&mut self) -> Option<RxFrame<'_>> {
        let b = &self.base;
        let frame_size = b.cfg.frame_size as usize;
        let at = self.cursor.index as usize * frame_size;
        let status = b.status_at(at).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        self.held = true;
        let b = &self.base;
        // tpacket2_hdr: status, len, snaplen, mac(u16), net(u16), sec, nsec, vlan_tci, vlan_tpid.
        let len = b.read_u32(at + 4);
        let snap = b.read_u32(at + 8);
        let mac = b.read_u16(at + 12) as usize;
        let sec = b.read_u32(at + 16);
        let nsec = b.read_u32(at + 20);
        let tci = b.read_u16(at + 24);
        let sll = at + tpacket_align(mem::size_of::<libc::tpacket2_hdr>());
        let pkttype = b.bytes(sll + SLL_PKTTYPE, 1).first().copied().unwrap_or(0);
        let room = frame_size.saturating_sub(mac);
        Some(RxFrame {
            data: b.bytes(at + mac, (snap as usize).min(room)),
            wire_len: len,
            status,
            ts_ns: u64::from(sec) * 1_000_000_000 + u64::from(nsec),
            vlan_tci: (status & libc::TP_STATUS_VLAN_VALID != 0).then_some(tci),
            pkttype,
        })
    }

    #[inline]
    fn block_at(&self) -> usize {
        self.cursor.index as usize * self.base.cfg.block_size as usize
    }

    #[inline]
    fn next_v3(&mut self) -> Option<RxFrame<'_>> {
        let block = self.block_at();
        // tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1:
        // block_status (+8), num_pkts (+12), offset_to_first_pkt (+16).
        if self.cursor.left == 0 {
            let status = self.base.status_at(block + 8).load(Ordering::Acquire);
            if status & libc::TP_STATUS_USER == 0 {
                return None;
            }
            let n = self.base.read_u32(block + 12);
            if n == 0 {
                // An empty block retired by the timer: give it back.
                self.release_block();
                return None;
            }
            self.cursor.left = n;
            self.cursor.offset = self.base.read_u32(block + 16);
        }
        let at = block + self.cursor.offset as usize;
        let bs = self.base.cfg.block_size as usize;
        if self.cursor.offset as usize + mem::size_of::<libc::tpacket3_hdr>() > bs {
            // A corrupt offset would be a kernel bug; drop the block rather
            // than read outside it.
            self.cursor.left = 0;
            self.release_block();
            return None;
        }
        self.held = true;
        let b = &self.base;
        // tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac(u16),
        // net(u16), rxhash, vlan_tci(u32), vlan_tpid.
        let sec = b.read_u32(at + 4);
        let nsec = b.read_u32(at + 8);
        let snap = b.read_u32(at + 12);
        let len = b.read_u32(at + 16);
        let status = b.read_u32(at + 20);
        let mac = b.read_u16(at + 24) as usize;
        let tci = b.read_u32(at + 32) as u16;
        let room = (block + bs).saturating_sub(at + mac);
        Some(RxFrame {
            data: b.bytes(at + mac, (snap as usize).min(room)),
            wire_len: len,
            status,
            ts_ns: u64::from(sec) * 1_000_000_000 + u64::from(nsec),
            vlan_tci: (status & libc::TP_STATUS_VLAN_VALID != 0).then_some(tci),
            pkttype: 0,
        })
    }

    #[inline]
    fn release_block(&mut self) {
        let block = self.block_at();
        self.base
            .status_at(block + 8)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.cursor.index = (self.cursor.index + 1) % self.count;
    }

    #[inline]
    fn release(&mut self) {
        if !std::mem::take(&mut self.held) {
            return;
        }
        match self.base.cfg.version {
            Version::V2 => {
                let at = self.cursor.index as usize * self.base.cfg.frame_size as usize;
                self.base
                    .status_at(at)
                    .store(libc::TP_STATUS_KERNEL, Ordering::Release);
                self.cursor.index = (self.cursor.index + 1) % self.count;
            }
            Version::V3 => {
                if self.cursor.left == 0 {
                    return;
                }
                // `next_v3` checked that this header lies in the block.
                let at = self.block_at() + self.cursor.offset as usize;
                let next = self.base.read_u32(at);
                self.cursor.left -= 1;
                self.cursor.offset = self.cursor.offset.saturating_add(next);
                // A next packet must start after this one, inside the block;
                // anything else (a kernel bug) gives the block back.
                let bad = next == 0
                    || self.cursor.offset as usize + mem::size_of::<libc::tpacket3_hdr>()
                        > self.base.cfg.block_size as usize;
                if self.cursor.left == 0 || bad {
                    self.cursor.left = 0;
                    self.release_block();
                }
            }
        }
    }
}

impl TxState {
    #[inline]
    fn frames(&self) -> u32 {
        self.base.cfg.tx_frames
    }

    /// Frames not `AVAILABLE`, and of them those outside the committed window.
    fn occupancy(&self) -> (u32, u32) {
        let n = self.frames();
        let (mut pending, mut stray) = (0, 0);
        for k in 0..n {
            let i = (self.tail + k) % n;
            let busy = self
                .base
                .status_at(self.status_offset(i))
                .load(Ordering::Acquire)
                != libc::TP_STATUS_AVAILABLE;
            pending += u32::from(busy);
            stray += u32::from(busy && k >= self.committed);
        }
        (pending, stray)
    }

    #[inline]
    fn at(&self, i: u32) -> usize {
        self.start + i as usize * self.base.cfg.frame_size as usize
    }

    /// Where the status word of transmit frame `i` is: first in a
    /// `tpacket2_hdr`, sixth in a `tpacket3_hdr`.
    #[inline]
    fn status_offset(&self, i: u32) -> usize {
        self.at(i)
            + match self.base.cfg.version {
                Version::V2 => 0,
                Version::V3 => 20,
            }
    }

    /// Where the frame (after the virtio header with `tx_copy`) starts.
    #[inline]
    fn data_offset(&self) -> usize {
        self.header_offset() + self.base.cfg.vnet_len()
    }

    /// Where the data the kernel reads starts: the virtio header with
    /// `tx_copy`, else the frame.
    #[inline]
    fn header_offset(&self) -> usize {
        match self.base.cfg.version {
            Version::V2 => V2_TX_DATA,
            Version::V3 => V3_TX_DATA,
        }
    }

    #[inline]
    fn ready(&mut self) -> bool {
        if self.head_free {
            return true;
        }
        if self.frames() == 0 {
            return false;
        }
        self.reclaim();
        // With PACKET_LOSS the kernel skips a malformed frame and marks it
        // AVAILABLE, so WRONG_FORMAT never appears here.
        self.head_free = self
            .base
            .status_at(self.status_offset(self.head))
            .load(Ordering::Acquire)
            == libc::TP_STATUS_AVAILABLE;
        self.head_free
    }

    #[inline]
    fn slot(&mut self) -> Option<&mut [u8]> {
        if !self.ready() {
            return None;
        }
        self.held = true;
        let off = self.at(self.head) + self.data_offset();
        let len = self.base.cfg.max_tx_frame();
        // SAFETY: the frame is AVAILABLE, so user space owns it until we set
        // SEND_REQUEST; the range lies inside the transmit ring; the slice
        // borrows the state mutably, so no other view of it exists.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.ptr.as_ptr().add(off), len) })
    }

    #[inline]
    fn commit(&mut self, len: usize) {
        assert!(
            std::mem::take(&mut self.held),
            "tx_commit without a slot from tx_slot"
        );
        assert!(
            len <= self.base.cfg.max_tx_frame(),
            "frame longer than its slot"
        );
        let at = self.at(self.head);
        let vnet = self.base.cfg.vnet_len();
        if vnet > 0 {
            // virtio_net_hdr (little-endian on every host this runs on):
            // no offloads, hdr_len = the whole frame, which makes the kernel
            // copy it into the buffer's head rather than attach the page.
            let mut hdr = [0u8; VNET_HDR];
            hdr[2..4].copy_from_slice(&(len as u16).to_le_bytes());
            let off = at + self.header_offset();
            // SAFETY: the frame is still ours (AVAILABLE, checked by `slot`);
            // the header lies inside it, before the data `slot` handed out.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    hdr.as_ptr(),
                    self.base.ptr.as_ptr().add(off),
                    VNET_HDR,
                );
            }
        }
        let len = len + vnet;
        // SAFETY: the frame is still ours (AVAILABLE, checked by `slot`);
        // the header fields written are inside it and aligned.
        unsafe {
            let h = self.base.ptr.as_ptr().add(at);
            match self.base.cfg.version {
                Version::V2 => {
                    h.add(4).cast::<u32>().write_volatile(len as u32); // tp_len
                    h.add(8).cast::<u32>().write_volatile(len as u32); // tp_snaplen
                }
                Version::V3 => {
                    h.cast::<u32>().write_volatile(0); // tp_next_offset
                    h.add(12).cast::<u32>().write_volatile(len as u32); // tp_snaplen
                    h.add(16).cast::<u32>().write_volatile(len as u32); // tp_len
                }
            }
        }
        self.base
            .status_at(self.status_offset(self.head))
            .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (self.head + 1) % self.frames();
        self.head_free = false;
        self.committed += 1;
    }

    /// Moves the tail past frames the kernel has sent (back to `AVAILABLE`).
    #[inline]
    fn reclaim(&mut self) {
        while self.committed > 0 {
            let st = self.status_offset(self.tail);
            if self.base.status_at(st).load(Ordering::Acquire) != libc::TP_STATUS_AVAILABLE {
                break;
            }
            self.tail = (self.tail + 1) % self.frames();
            self.committed -= 1;
        }
    }

    #[inline]
    fn unsent(&mut self) -> bool {
        self.reclaim();
        (0..self.committed).any(|k| {
            let i = (self.tail + k) % self.frames();
            self.base
                .status_at(self.status_offset(i))
                .load(Ordering::Acquire)
                == libc::TP_STATUS_SEND_REQUEST
        })
    }

    #[inline]
    fn kick(&mut self, wait: bool) -> Result<usize> {
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        // SAFETY: a null buffer of length 0 tells the kernel to send the
        // ring; the descriptor is the ring's own, open while it lives.
        let n = unsafe { libc::send(self.fd, std::ptr::null(), 0, flags) };
        if n < 0 {
            return Err(SyscallError::last("send(AF_PACKET ring)"));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// An Ethernet/IPv4/UDP frame 198.18.0.1:4000 -> 198.18.0.2:9000 with a
    /// 4-byte payload (header checksums not needed by the filter).
    fn frame(ihl_words: u8, proto: u8, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = vec![
            0x02,
            0,
            0,
            0,
            0,
            2,
            0x02,
            0,
            0,
            0,
            0,
            1,
            0x08,
            0x00, // Ethernet
            0x40 | ihl_words,
            0,
            0,
            0,
            0,
            0,
            0x40,
            0,
            64,
            proto,
            0,
            0,
            198,
            18,
            0,
            1,
        ];
        f.extend_from_slice(&dst);
        f.extend(std::iter::repeat_n(0, usize::from(ihl_words - 5) * 4));
        f.extend_from_slice(&[0x0f, 0xa0]);
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
        f
    }

    #[test]
    fn flow_filter_accepts_only_the_flow() {
        let me = Ipv4Addr::new(198, 18, 0, 2);
        let p = udp_flow_filter(Some(me), 9000);
        let accept = |f: &[u8]| run_filter(&p, f).expect("known opcodes") > 0;
        assert!(accept(&frame(5, 17, [198, 18, 0, 2], 9000)));
        assert!(accept(&frame(6, 17, [198, 18, 0, 2], 9000)), "options");
        assert!(!accept(&frame(5, 17, [198, 18, 0, 2], 9001)), "other port");
        assert!(!accept(&frame(5, 17, [198, 18, 0, 3], 9000)), "other host");
        assert!(!accept(&frame(5, 6, [198, 18, 0, 2], 9000)), "TCP");
        assert!(!accept(&frame(5, 1, [198, 18, 0, 2], 9000)), "ICMP");
        let mut arp = frame(5, 17, [198, 18, 0, 2], 9000);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!accept(&arp), "ARP");
        let mut tagged = frame(5, 17, [198, 18, 0, 2], 9000);
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        assert!(
            !accept(&tagged),
            "an in-band VLAN tag is left to the kernel"
        );
        for cut in 0..36 {
            assert!(
                !accept(&frame(5, 17, [198, 18, 0, 2], 9000)[..cut]),
                "{cut}"
            );
        }
        let any = udp_flow_filter(None, 9000);
        assert_eq!(
            run_filter(&any, &frame(5, 17, [10, 0, 0, 1], 9000)),
            Some(0x4_0000)
        );
        assert_eq!(run_filter(&drop_all_filter(), &[0; 64]), Some(0));
    }

    #[test]
    fn ring_config_rules() {
        assert!(RingConfig::DEFAULT.check().is_ok());
        let bad = |f: fn(&mut RingConfig)| {
            let mut c = RingConfig::DEFAULT;
            f(&mut c);
            c.check().unwrap_err()
        };
        assert!(bad(|c| c.frame_size = 100).contains("multiple of 16"));
        assert!(bad(|c| c.block_size = 5000).contains("page size"));
        assert!(bad(|c| c.frame_size = 4096 - 16).contains("divide"));
        assert!(bad(|c| c.rx_frames = 3).contains("multiple of the 2 frames"));
        assert!(bad(|c| c.rx_frames = 0).contains("at least 1"));
        assert!(
            bad(|c| {
                c.version = Version::V3;
                c.block_timeout_ms = 0;
            })
            .contains("block_ms")
        );
        assert_eq!(RingConfig::DEFAULT.max_tx_frame(), 2048 - 32);
        assert!(RingConfig::DEFAULT.max_rx_frame() >= 1514);
    }

    #[test]
    fn fanout_names_round_trip() {
        for n in FanoutMode::NAMES {
            assert_eq!(FanoutMode::from_name(n).unwrap().name(), *n);
        }
        assert_eq!(FanoutMode::from_name("x"), None);
    }
}
