//! One AF_XDP socket with its own UMEM: the memory area, the fill,
//! completion, receive and transmit rings (through `xdpilone`), and the
//! accounting of every UMEM frame.
//!
//! This is the ring code of the `xdp://` transport and the only part of it
//! allowed `unsafe`: it reads and writes frames in the UMEM area. It makes no
//! raw system call: the area is a [`Mapping`] of `hftnet_sys::mmap`, the
//! transmit kick and the busy-poll receive are `hftnet_sys::sock`'s
//! [`xdp_tx_kick`] and [`xdp_busy_poll`].
//!
//! The socket splits into a receive half ([`XskRx`]) and a transmit half
//! ([`XskTx`]) that borrow disjoint parts of it, so a frame still held from
//! the receive ring can be answered in a transmit frame.
//!
//! The invariants that make that sound:
//! - the area is an anonymous private mapping owned by [`Xsk`], page
//!   aligned, unmapped only after every ring and socket that the kernel uses
//!   to reach it has been closed (field order: rings first, area last);
//! - every frame is in exactly one place at a time — the free list (ours,
//!   for transmit), the fill ring or the receive ring (the kernel's), held
//!   by us during one receive call, or the transmit ring until its
//!   completion (the kernel's). We read or write a frame only while it is
//!   ours, and never form a reference to the area as a whole;
//! - [`Xsk::accounting`] checks that `free + fill + tx_in_flight + lost =
//!   total` between calls (a frame taken for transmit and not yet committed
//!   counts as free), so a lost or doubly used frame shows;
//! - transmit frames are handed out only through the transmit half
//!   ([`XskTx::slot`], then [`XskTx::commit`] or [`XskTx::cancel`]), which
//!   takes them from and returns them to the free list itself: no caller
//!   names a frame by its address.

use std::num::NonZeroU32;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use hftnet_sys::SyscallError;
use hftnet_sys::mmap::Mapping;
use hftnet_sys::sock::{xdp_busy_poll, xdp_tx_kick};
use serde::Serialize;
use xdpilone::xdp::XdpDesc;
use xdpilone::{DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User};

/// Copy or zero-copy, as asked (`mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XskMode {
    /// Zero-copy if the driver has it, else copy (and say so).
    Auto,
    /// Copy mode (`XDP_COPY`): works on every device.
    Copy,
    /// Zero-copy (`XDP_ZEROCOPY`); falls back to copy, with a note, where
    /// the driver lacks it (veth does).
    ZeroCopy,
}

/// Sizes of the UMEM and rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskConfig {
    /// Interface index.
    pub ifindex: u32,
    /// Queue of the interface to bind to.
    pub queue: u32,
    /// UMEM frames (half for receiving, half for transmitting).
    pub frames: u32,
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: u32,
    /// Entries of each ring (a power of two).
    pub ring_size: u32,
    /// Copy or zero-copy.
    pub mode: XskMode,
    /// Ask the kernel to say when it needs a wake-up (`XDP_USE_NEED_WAKEUP`).
    pub need_wakeup: bool,
    /// Read a receive stamp from the [`RX_META_LEN`] bytes of XDP metadata
    /// just before each received packet (the steering program's, with
    /// `SteerOptions::stamp_rx`), and clear them.
    pub rx_meta: bool,
}

/// Bytes of XDP metadata read before a received packet with
/// [`XskConfig::rx_meta`]: a `u64` in native byte order, 0 for none.
pub const RX_META_LEN: usize = 8;

/// Where the UMEM frames are: the accounting identity is
/// `free + fill + tx_in_flight + lost == total` between calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UmemAccounting {
    /// Frames in the UMEM.
    pub total: u32,
    /// Ours, ready for transmit.
    pub free: u32,
    /// Given to the kernel for receiving (fill ring, or received and not yet read).
    pub fill: u32,
    /// Sent and not yet completed.
    pub tx_in_flight: u32,
    /// Given up on: a descriptor from the kernel named no frame of ours
    /// (never expected; counted so a leak cannot hide).
    pub lost: u32,
}

impl UmemAccounting {
    /// True when every frame is accounted for exactly once.
    #[must_use]
    pub fn balanced(&self) -> bool {
        self.free + self.fill + self.tx_in_flight + self.lost == self.total
    }
}

/// System calls and events of the socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct XskCounters {
    /// Transmit kicks (`sendto`), made only when the kernel asked for one.
    pub tx_kicks: u64,
    /// Frames handed to the transmit ring.
    pub tx_frames: u64,
    /// Transmit completions reaped.
    pub tx_completions: u64,
    /// Fill-ring wake-ups (`poll`), made only when the kernel asked.
    pub fill_wakeups: u64,
    /// Busy-poll receive calls (`recvfrom` on an empty ring, `busy_poll=`).
    pub busy_polls: u64,
    /// Busy-poll receive calls the kernel failed with an error other than
    /// `EAGAIN` / `EWOULDBLOCK` / `EINTR` (e.g. `ENETDOWN` with the link
    /// down): counted, never fatal, the receive goes on.
    pub busy_poll_errors: u64,
    /// Kicks refused because the link was down (`ENETDOWN`, `ENXIO`).
    pub link_down_kicks: u64,
    /// Frames received.
    pub rx_frames: u64,
    /// With [`XskConfig::rx_meta`]: frames that carried a stamp in their
    /// metadata.
    pub rx_stamped: u64,
    /// With [`XskConfig::rx_meta`]: frames that came without one (the
    /// driver refused the metadata, or the program did not stamp).
    pub rx_unstamped: u64,
    /// Times the fill ring had no room for a recycled frame (frames kept
    /// aside and offered again on the next call).
    pub fill_full: u64,
    /// Kicks the device answered with a drop (`EBUSY`, e.g. the carrier is
    /// down): the frames completed without leaving.
    pub tx_dropped_kicks: u64,
    /// Descriptors from the kernel with an address outside the UMEM (never
    /// expected): the frame is not reused, and counted lost.
    pub bad_descriptors: u64,
    /// The kernel's count of frames for this socket it dropped
    /// (`XDP_STATISTICS` `rx_dropped`: e.g. too long for a UMEM frame).
    pub kernel_rx_dropped: u64,
    /// The kernel's count of frames dropped because the receive ring was
    /// full (`rx_ring_full`, Linux 5.9+): the reader fell behind.
    pub kernel_rx_ring_full: u64,
    /// The kernel's count of frames that found the fill ring empty
    /// (`rx_fill_ring_empty_descs`, Linux 5.9+).
    pub kernel_rx_fill_empty: u64,
}

/// Where the UMEM is, copied into both halves. The halves are fields of the
/// [`Xsk`] that owns the area and are reached only through borrows of it.
#[derive(Debug, Clone, Copy)]
struct AreaRef {
    ptr: NonNull<u8>,
    len: usize,
    frame_size: u32,
    frames: u32,
}

impl AreaRef {
    /// The frame chunk holding `addr`, if `addr..addr+len` lies inside one
    /// chunk of the area.
    fn chunk(&self, addr: u64, len: u32) -> Option<(u64, usize, usize)> {
        let fs = u64::from(self.frame_size);
        let chunk = addr & !(fs - 1);
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len as usize)?;
        let chunk_end = usize::try_from(chunk + fs).ok()?;
        (chunk_end <= self.len && end <= chunk_end).then_some((chunk, start, end))
    }
}

/// The receive side: the receive ring and the frames it released, waiting
/// for the fill ring.
struct RxSide {
    ring: RingRx,
    area: AreaRef,
    /// Received and read, to go back to the fill ring.
    recycle: Vec<u64>,
    /// Given to the kernel for receiving (fill ring, or received and not yet read).
    fill_in_flight: u32,
    lost: u32,
    busy_poll: bool,
    rx_meta: bool,
    rx_frames: u64,
    rx_stamped: u64,
    rx_unstamped: u64,
    busy_polls: u64,
    busy_poll_errors: u64,
    bad_descriptors: u64,
}

/// The transmit side: the transmit ring, the fill and completion rings
/// (one object in xdpilone), and the free frames.
struct TxSide {
    ring: RingTx,
    device: DeviceQueue,
    area: AreaRef,
    ring_size: u32,
    need_wakeup: bool,
    free: Vec<u64>,
    /// A frame handed out by `slot`, not yet committed.
    held: Option<u64>,
    tx_in_flight: u32,
    tx_queued: u32,
    lost: u32,
    link_down: bool,
    tx_kicks: u64,
    tx_frames: u64,
    tx_completions: u64,
    fill_wakeups: u64,
    link_down_kicks: u64,
    fill_full: u64,
    tx_dropped_kicks: u64,
    bad_descriptors: u64,
}

/// An AF_XDP socket bound to one queue, with its UMEM.
pub struct Xsk {
    // Field order is drop order: the rings and sockets close before the area
    // is unmapped.
    rx: RxSide,
    tx: TxSide,
    _user: User,
    _sock: Socket,
    _umem: Umem,
    _area: Mapping,
    cfg: XskConfig,
    zerocopy: bool,
}

/// The receive half of an [`Xsk`] (see [`Xsk::split`]).
pub struct XskRx<'a> {
    s: &'a mut RxSide,
}

/// The transmit half of an [`Xsk`] (see [`Xsk::split`]).
pub struct XskTx<'a> {
    s: &'a mut TxSide,
}

impl std::fmt::Debug for Xsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xsk")
            .field("cfg", &self.cfg)
            .field("zerocopy", &self.zerocopy)
            .field("accounting", &self.accounting())
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for XskRx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskRx").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for XskTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskTx").finish_non_exhaustive()
    }
}

// SAFETY: the raw pointers inside (the area, the rings' mappings) are owned
// by this value alone and move with it; nothing is shared between threads.
unsafe impl Send for Xsk {}

/// Why the socket could not be set up: the step and the kernel's answer.
#[derive(Debug)]
pub struct XskError {
    /// What was being done.
    pub step: &'static str,
    /// The errno.
    pub errno: i32,
}

impl std::fmt::Display for XskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            self.step,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

fn err(step: &'static str) -> impl FnOnce(xdpilone::Errno) -> XskError {
    move |e| XskError {
        step,
        errno: e.get_raw(),
    }
}

impl Xsk {
    /// Maps the UMEM, creates the socket and its rings, binds it to the
    /// queue (trying zero-copy first unless `mode` is `Copy`), and fills the
    /// fill ring with half the frames. Returns the socket and whether
    /// zero-copy is in force.
    ///
    /// # Errors
    /// [`XskError`] naming the step: `EPERM` without `CAP_NET_RAW` /
    /// `CAP_NET_ADMIN`, `EINVAL` for a bad queue, `EBUSY` when another
    /// socket holds the queue, `EOPNOTSUPP` for zero-copy without support.
    pub fn open(cfg: XskConfig, busy_poll: bool) -> Result<Self, XskError> {
        let total = cfg.frames as usize;
        let len = total * cfg.frame_size as usize;
        let area = Mapping::anonymous(len, true).map_err(|e| XskError {
            step: "mapping the UMEM",
            errno: e.errno().unwrap_or(libc::ENOMEM),
        })?;
        let region = NonNull::slice_from_raw_parts(area.as_non_null(), len);
        // A failed zero-copy bind consumes the fill and completion rings, so
        // the copy-mode fallback starts again from a fresh socket.
        let (umem, sock, device, user, zerocopy) = match cfg.mode {
            XskMode::Copy => {
                let (u, s, d, r) = Self::setup(&cfg, region, SocketConfig::XDP_BIND_COPY)?;
                (u, s, d, r, false)
            }
            XskMode::ZeroCopy | XskMode::Auto => {
                match Self::setup(&cfg, region, SocketConfig::XDP_BIND_ZEROCOPY) {
                    Ok((u, s, d, r)) => (u, s, d, r, true),
                    Err(_) => {
                        let (u, s, d, r) = Self::setup(&cfg, region, SocketConfig::XDP_BIND_COPY)?;
                        (u, s, d, r, false)
                    }
                }
            }
        };
        let rx = user.map_rx().map_err(err("mapping the receive ring"))?;
        let tx = user.map_tx().map_err(err("mapping the transmit ring"))?;
        let fill = (cfg.frames / 2).min(cfg.ring_size);
        let aref = AreaRef {
            ptr: area.as_non_null(),
            len,
            frame_size: cfg.frame_size,
            frames: cfg.frames,
        };
        let mut x = Self {
            rx: RxSide {
                ring: rx,
                area: aref,
                recycle: Vec::with_capacity(cfg.frames as usize),
                fill_in_flight: 0,
                lost: 0,
                busy_poll,
                rx_meta: cfg.rx_meta,
                rx_frames: 0,
                rx_stamped: 0,
                rx_unstamped: 0,
                busy_polls: 0,
                busy_poll_errors: 0,
                bad_descriptors: 0,
            },
            tx: TxSide {
                ring: tx,
                device,
                area: aref,
                ring_size: cfg.ring_size,
                need_wakeup: cfg.need_wakeup,
                free: (fill..cfg.frames)
                    .map(|i| u64::from(i) * u64::from(cfg.frame_size))
                    .collect(),
                held: None,
                tx_in_flight: 0,
                tx_queued: 0,
                lost: 0,
                link_down: false,
                tx_kicks: 0,
                tx_frames: 0,
                tx_completions: 0,
                fill_wakeups: 0,
                link_down_kicks: 0,
                fill_full: 0,
                tx_dropped_kicks: 0,
                bad_descriptors: 0,
            },
            _user: user,
            _sock: sock,
            _umem: umem,
            _area: area,
            cfg,
            zerocopy,
        };
        x.rx.recycle
            .extend((0..fill).map(|i| u64::from(i) * u64::from(cfg.frame_size)));
        x.refill();
        Ok(x)
    }

    /// Registers the UMEM on a new socket, sets up its four rings and binds
    /// it with `mode_flag` (copy or zero-copy).
    fn setup(
        cfg: &XskConfig,
        region: NonNull<[u8]>,
        mode_flag: u16,
    ) -> Result<(Umem, Socket, DeviceQueue, User), XskError> {
        let umem_cfg = UmemConfig {
            fill_size: cfg.ring_size,
            complete_size: cfg.ring_size,
            frame_size: cfg.frame_size,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: `region` is the page-aligned mapping owned by the `Xsk`
        // being built, kept alive (field `area`) until after the UMEM and
        // every ring are dropped; a failed attempt drops its UMEM first.
        let umem = unsafe { Umem::new(umem_cfg, region) }.map_err(err("registering the UMEM"))?;
        let mut info = IfInfo::invalid();
        info.from_ifindex(cfg.ifindex)
            .map_err(err("looking up the interface"))?;
        info.set_queue(cfg.queue);
        let sock = Socket::with_shared(&info, &umem).map_err(err("creating the AF_XDP socket"))?;
        let device = umem
            .fq_cq(&sock)
            .map_err(err("setting up the fill and completion rings"))?;
        let wake = if cfg.need_wakeup {
            SocketConfig::XDP_BIND_NEED_WAKEUP
        } else {
            0
        };
        let ring = NonZeroU32::new(cfg.ring_size);
        let user = umem
            .rx_tx(
                &sock,
                &SocketConfig {
                    rx_size: ring,
                    tx_size: ring,
                    bind_flags: mode_flag | wake,
                },
            )
            .map_err(err("setting up the receive and transmit rings"))?;
        let step = if mode_flag == SocketConfig::XDP_BIND_ZEROCOPY {
            "binding in zero-copy mode"
        } else {
            "binding in copy mode"
        };
        umem.bind(&user).map_err(err(step))?;
        Ok((umem, sock, device, user))
    }

    /// Zero-copy in force.
    #[must_use]
    pub fn zerocopy(&self) -> bool {
        self.zerocopy
    }

    /// The socket, to register in the XSKMAP, poll, or set options on.
    #[must_use]
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor of the socket we own, valid while `self` lives.
        unsafe { BorrowedFd::borrow_raw(self.rx.ring.as_raw_fd()) }
    }

    /// Where the frames are now.
    #[must_use]
    pub fn accounting(&self) -> UmemAccounting {
        UmemAccounting {
            total: self.cfg.frames,
            free: (self.tx.free.len() + self.rx.recycle.len() + usize::from(self.tx.held.is_some()))
                as u32,
            fill: self.rx.fill_in_flight,
            tx_in_flight: self.tx.tx_in_flight,
            lost: self.rx.lost + self.tx.lost,
        }
    }

    /// The counters, with the kernel's drop counts of the socket (one
    /// `getsockopt(XDP_STATISTICS)`; zero where the kernel does not say).
    #[must_use]
    pub fn counters(&self) -> XskCounters {
        let (r, t) = (&self.rx, &self.tx);
        let k = t.device.statistics_v2().unwrap_or_default();
        XskCounters {
            kernel_rx_dropped: k.rx_dropped,
            kernel_rx_ring_full: k.rx_ring_full,
            kernel_rx_fill_empty: k.rx_fill_ring_empty_descs,
            tx_kicks: t.tx_kicks,
            tx_frames: t.tx_frames,
            tx_completions: t.tx_completions,
            fill_wakeups: t.fill_wakeups,
            busy_polls: r.busy_polls,
            busy_poll_errors: r.busy_poll_errors,
            link_down_kicks: t.link_down_kicks,
            rx_frames: r.rx_frames,
            rx_stamped: r.rx_stamped,
            rx_unstamped: r.rx_unstamped,
            fill_full: t.fill_full,
            tx_dropped_kicks: t.tx_dropped_kicks,
            bad_descriptors: r.bad_descriptors + t.bad_descriptors,
        }
    }

    /// The link refused the last kick and has not taken one since.
    #[must_use]
    pub fn link_down(&self) -> bool {
        self.tx.link_down
    }

    /// Whether a receive pass has anything to do: frames on the receive
    /// ring (a relaxed look at the kernel's index), frames waiting for a
    /// kick, or a device to busy-poll. For spinning loops.
    #[inline]
    #[must_use]
    pub fn has_work(&self) -> bool {
        self.rx.busy_poll || self.tx.needs_flush() || self.rx.ring.available() > 0
    }

    /// The receive and transmit halves, usable at the same time: a frame
    /// held from the receive half can be answered through the transmit
    /// half before it goes back. Call [`Self::refill`] after a receive pass.
    pub fn split(&mut self) -> (XskRx<'_>, XskTx<'_>) {
        (XskRx { s: &mut self.rx }, XskTx { s: &mut self.tx })
    }

    /// Gives the frames the receive half released back to the fill ring
    /// (as many as fit; the rest on the next call).
    pub fn refill(&mut self) {
        let (r, t) = (&mut self.rx, &mut self.tx);
        if r.recycle.is_empty() {
            return;
        }
        let mut w = t.device.fill(r.recycle.len() as u32);
        let n = w.insert(r.recycle.iter().copied()) as usize;
        w.commit();
        drop(w);
        if n < r.recycle.len() {
            t.fill_full += 1;
        }
        r.recycle.drain(..n);
        r.fill_in_flight += n as u32;
        if t.need_wakeup && t.device.needs_wakeup() {
            t.device.wake();
            t.fill_wakeups += 1;
        }
    }

    /// Hands up to `max` received frames to `f` (each as a slice of the
    /// UMEM, valid during the call, with its metadata stamp as
    /// [`XskRx::recv`] reads it), then gives them back to the fill ring.
    /// Returns how many there were. With busy polling on and nothing
    /// received, makes one non-blocking `recvfrom` so the kernel polls the
    /// device.
    #[inline]
    pub fn recv(&mut self, max: u32, f: impl FnMut(&[u8], Option<u64>)) -> u32 {
        let n = XskRx { s: &mut self.rx }.recv(max, f);
        self.refill();
        n
    }

    /// Reaps transmit completions into the free list.
    #[inline]
    pub fn reap(&mut self) {
        self.tx.reap();
    }

    /// Frames wait on the transmit ring for a kick (a kick that stopped at
    /// the kernel's per-call budget, or the link down).
    #[must_use]
    pub fn tx_needs_flush(&self) -> bool {
        self.tx.needs_flush()
    }

    /// Makes the kernel send what was submitted (see [`XskTx::flush`]).
    ///
    /// # Errors
    /// As [`XskTx::flush`].
    #[inline]
    pub fn tx_flush(&mut self) -> Result<(), SyscallError> {
        self.tx.flush()
    }
}

impl XskRx<'_> {
    /// Hands up to `max` received frames to `f` (each as a slice of the
    /// UMEM, valid during the call) and puts them on the list for the fill
    /// ring ([`Xsk::refill`]). Returns how many there were. With busy
    /// polling on and nothing received, makes one non-blocking `recvfrom`
    /// so the kernel polls the device.
    ///
    /// With [`XskConfig::rx_meta`], the second argument of `f` is the
    /// nonzero `u64` in the [`RX_META_LEN`] bytes before the packet (the
    /// program's metadata, which AF_XDP copies there), else `None`; those
    /// bytes are then zeroed, so a later frame in the same UMEM frame that
    /// comes without metadata reads `None`, never an old stamp. (Receive
    /// frames are never used for transmit, and the kernel writes nothing
    /// else there: the packet starts after them.) Without it, `None`.
    #[inline]
    pub fn recv(&mut self, max: u32, mut f: impl FnMut(&[u8], Option<u64>)) -> u32 {
        let s = &mut *self.s;
        let mut r = s.ring.receive(max);
        let mut n = 0;
        while let Some(desc) = r.read() {
            n += 1;
            let Some((chunk, start, end)) = s.area.chunk(desc.addr, desc.len) else {
                // Not a frame of ours: never reuse it, count it lost.
                s.bad_descriptors += 1;
                s.lost += 1;
                continue;
            };
            let stamp = if s.rx_meta {
                // The metadata lies before the packet in the same chunk,
                // or there is none.
                let stamp = (start >= chunk as usize + RX_META_LEN)
                    .then(|| {
                        // SAFETY: the frame was just handed to us by the receive
                        // ring, so it is ours; the 8 bytes
                        // `start - RX_META_LEN .. start` lie inside its
                        // chunk (checked just now) and end where the
                        // packet starts; unaligned access is used, so any
                        // alignment the device gave the packet is fine.
                        unsafe {
                            let p = s.area.ptr.as_ptr().add(start - RX_META_LEN).cast::<u64>();
                            let v = p.read_unaligned();
                            p.write_unaligned(0);
                            v
                        }
                    })
                    .filter(|v| *v != 0);
                if stamp.is_some() {
                    s.rx_stamped += 1;
                } else {
                    s.rx_unstamped += 1;
                }
                stamp
            } else {
                None
            };
            // SAFETY: the frame was just handed to us by the receive ring (it
            // is ours until it goes back on the fill ring), and the range
            // was checked to lie inside its chunk of the area.
            let data = unsafe {
                std::slice::from_raw_parts(s.area.ptr.as_ptr().add(start), end - start)
            };
            f(data, stamp);
            s.recycle.push(chunk);
        }
        r.release();
        drop(r);
        s.fill_in_flight -= n;
        s.rx_frames += u64::from(n);
        if n == 0 && s.busy_poll {
            s.busy_polls += 1;
            // EAGAIN / EWOULDBLOCK (the same errno on Linux) and EINTR are
            // ordinary answers; anything else is counted, never fatal.
            // SAFETY: the descriptor of the socket this half belongs to,
            // open while the half is borrowed.
            let fd = unsafe { BorrowedFd::borrow_raw(s.ring.as_raw_fd()) };
            if let Err(e) = xdp_busy_poll(fd)
                && !(e.would_block() || e.errno() == Some(libc::EINTR))
            {
                s.busy_poll_errors += 1;
            }
        }
        n
    }
}

impl XskTx<'_> {
    /// Whether [`Self::slot`] would give a frame now: a free frame (reaping
    /// completions first when there is none) and room on the transmit ring.
    #[inline]
    pub fn ready(&mut self) -> bool {
        let s = &mut *self.s;
        if s.held.is_some() {
            return true;
        }
        // Completions free both a frame and a place on the transmit ring:
        // reap when either runs out (the transmit pool can be larger than
        // the ring).
        if s.free.is_empty() || s.tx_in_flight >= s.ring_size {
            s.reap();
        }
        !s.free.is_empty() && s.tx_in_flight < s.ring_size
    }

    /// A free frame to build an outgoing frame in (`frame_size` bytes);
    /// `None` when every frame is in flight. Commit or cancel it.
    #[inline]
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        if !self.ready() {
            return None;
        }
        let s = &mut *self.s;
        let addr = match s.held {
            Some(a) => a,
            None => {
                let a = s.free.pop()?;
                s.held = Some(a);
                a
            }
        };
        Some(s.frame_mut(addr))
    }

    /// Puts the frame from [`Self::slot`] on the transmit ring, `len` bytes.
    ///
    /// # Panics
    /// When no frame is held: a caller bug.
    #[inline]
    pub fn commit(&mut self, len: usize) {
        assert!(
            len <= self.s.area.frame_size as usize,
            "frame longer than its UMEM frame"
        );
        let addr = self.s.held.take().expect("commit without a slot");
        // `ready` kept the ring from filling: in flight < ring size.
        let ok = self.s.submit(addr, len as u32);
        debug_assert!(ok, "transmit ring full despite the in-flight bound");
    }

    /// Gives back the frame from [`Self::slot`], unsent.
    pub fn cancel(&mut self) {
        if let Some(a) = self.s.held.take() {
            self.s.free.push(a);
        }
    }

    /// Frames wait for a kick.
    #[must_use]
    pub fn needs_flush(&self) -> bool {
        self.s.needs_flush()
    }

    /// The link refused the last kick and has not taken one since.
    #[must_use]
    pub fn link_down(&self) -> bool {
        self.s.link_down
    }

    /// Makes the kernel send what was submitted: a `sendto` kick when it
    /// asked for one (always in copy mode), none otherwise. A kick stops
    /// after the kernel's per-call budget (32 frames in copy mode) with
    /// `EAGAIN`; the kick is repeated while frames wait, a bounded number of
    /// times, and what is left is kicked by the next call.
    ///
    /// # Errors
    /// A kick the kernel failed other than for its budget or a full queue
    /// (`EAGAIN`, `ENOBUFS`: retried), a drop (`EBUSY`: counted in
    /// [`XskCounters::tx_dropped_kicks`]) or a link down (`ENETDOWN`,
    /// `ENXIO`: counted, see [`Self::link_down`]).
    #[inline]
    pub fn flush(&mut self) -> Result<(), SyscallError> {
        self.s.flush()
    }
}

impl TxSide {
    fn frame_mut(&mut self, addr: u64) -> &mut [u8] {
        // SAFETY: the frame came off the free list, so it is ours until it
        // is submitted; it lies inside the area (addresses are multiples of
        // the frame size below `frames * frame_size`); the slice borrows
        // this side mutably, so no other view of it exists.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.area.ptr.as_ptr().add(addr as usize),
                self.area.frame_size as usize,
            )
        }
    }

    fn reap(&mut self) {
        let mut c = self.device.complete(self.tx_in_flight.max(1));
        let mut n = 0u32;
        let fs = u64::from(self.area.frame_size);
        let frames = u64::from(self.area.frames);
        while let Some(addr) = c.read() {
            n += 1;
            if addr % fs != 0 || addr / fs >= frames {
                self.bad_descriptors += 1;
                self.lost += 1;
                continue;
            }
            self.free.push(addr);
        }
        c.release();
        drop(c);
        self.tx_in_flight -= n;
        self.tx_completions += u64::from(n);
    }

    fn submit(&mut self, addr: u64, len: u32) -> bool {
        let mut w = self.ring.transmit(1);
        let ok = w.insert_once(XdpDesc {
            addr,
            len,
            options: 0,
        });
        w.commit();
        drop(w);
        if ok {
            self.tx_in_flight += 1;
            self.tx_queued += 1;
            self.tx_frames += 1;
        } else {
            self.free.push(addr);
        }
        ok
    }

    fn needs_flush(&self) -> bool {
        self.tx_queued > 0 || self.link_down
    }

    /// Kicks (see [`XskTx::flush`]), then reaps the completions: in copy
    /// mode the kernel sends during the kick, so the frames just sent come
    /// back to the free list at once and the next burst reuses them while
    /// their cache lines are warm (without it, the sender would cycle
    /// through every free frame of the UMEM, missing the cache on each).
    fn flush(&mut self) -> Result<(), SyscallError> {
        let r = self.kick_queued();
        if self.tx_in_flight > 0 {
            self.reap();
        }
        r
    }

    fn kick_queued(&mut self) -> Result<(), SyscallError> {
        if !self.needs_flush() {
            return Ok(());
        }
        if self.need_wakeup && !self.link_down && !self.ring.needs_wakeup() {
            self.tx_queued = 0;
            return Ok(());
        }
        for _ in 0..=self.ring_size / 32 {
            self.tx_kicks += 1;
            // SAFETY: the descriptor of the socket this half belongs to,
            // open while the half is borrowed.
            let fd = unsafe { BorrowedFd::borrow_raw(self.ring.as_raw_fd()) };
            let Err(e) = xdp_tx_kick(fd) else {
                self.tx_queued = 0;
                self.link_down = false;
                return Ok(());
            };
            match e.errno() {
                Some(libc::EAGAIN | libc::ENOBUFS) => {
                    self.link_down = false;
                    if self.ring.pending() == 0 {
                        self.tx_queued = 0;
                        return Ok(());
                    }
                }
                Some(libc::EBUSY) => {
                    self.tx_dropped_kicks += 1;
                    self.tx_queued = 0;
                    self.link_down = false;
                    return Ok(());
                }
                Some(libc::ENETDOWN | libc::ENXIO) => {
                    self.link_down = true;
                    self.link_down_kicks += 1;
                    return Ok(());
                }
                _ => return Err(e),
            }
        }
        Ok(())
    }
}
