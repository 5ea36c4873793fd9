//! One AF_XDP socket with its own UMEM: the memory area, the fill,
//! completion, receive and transmit rings (through `xdpilone`), and the
//! accounting of every UMEM frame.
//!
//! This is the ring code of the `xdp://` transport and the only part of it
//! allowed `unsafe`: it reads and writes frames in the UMEM area. It makes no
//! raw system call: the area is a [`Mapping`] of `hftnet_sys::mmap`, the
//! transmit kick and the busy-poll receive are `hftnet_sys::sock`'s
//! [`xdp_tx_kick`] and [`xdp_busy_poll`].
//! The invariants that make that sound:
//! - the area is an anonymous private mapping owned by [`Xsk`], page
//!   aligned, unmapped only after every ring and socket that the kernel uses
//!   to reach it has been closed (field order: rings first, area last);
//! - every frame is in exactly one place at a time — the free list (ours,
//!   for transmit), the fill ring or the receive ring (the kernel's), held
//!   by us during one receive call, or the transmit ring until its
//!   completion (the kernel's). We read or write a frame only while it is
//!   ours, and never form a reference to the area as a whole;
//! - [`Xsk::accounting`] checks that `free + fill + tx_in_flight = total`
//!   between calls, so a lost or doubly used frame shows.

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
}

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
    /// Times the fill ring had no room for a recycled frame (frames kept
    /// aside and offered again on the next call).
    pub fill_full: u64,
    /// Kicks the device answered with a drop (`EBUSY`, e.g. the carrier is
    /// down): the frames completed without leaving.
    pub tx_dropped_kicks: u64,
    /// Descriptors from the kernel with an address outside the UMEM (never
    /// expected): the frame is not reused, and counted lost.
    pub bad_descriptors: u64,
}

/// An AF_XDP socket bound to one queue, with its UMEM.
pub struct Xsk {
    // Field order is drop order: the rings and sockets close before the area
    // is unmapped.
    rx: RingRx,
    tx: RingTx,
    device: DeviceQueue,
    _user: User,
    _sock: Socket,
    _umem: Umem,
    area: Mapping,
    cfg: XskConfig,
    zerocopy: bool,
    free: Vec<u64>,
    recycle: Vec<u64>,
    fill_in_flight: u32,
    tx_in_flight: u32,
    tx_queued: u32,
    /// Frames given up on (bad descriptors): kept in the accounting.
    lost: u32,
    busy_poll: bool,
    link_down: bool,
    /// The counters.
    pub counters: XskCounters,
}

impl std::fmt::Debug for Xsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xsk")
            .field("cfg", &self.cfg)
            .field("zerocopy", &self.zerocopy)
            .field("accounting", &self.accounting())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
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
        let mut x = Self {
            rx,
            tx,
            device,
            _user: user,
            _sock: sock,
            _umem: umem,
            area,
            cfg,
            zerocopy,
            free: (fill..cfg.frames)
                .map(|i| u64::from(i) * u64::from(cfg.frame_size))
                .collect(),
            recycle: Vec::with_capacity(cfg.frames as usize),
            fill_in_flight: 0,
            tx_in_flight: 0,
            tx_queued: 0,
            lost: 0,
            busy_poll,
            link_down: false,
            counters: XskCounters::default(),
        };
        x.recycle
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
        unsafe { BorrowedFd::borrow_raw(self.rx.as_raw_fd()) }
    }

    /// The descriptor the transmit ring belongs to (the kick goes there).
    fn tx_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor of the socket we own, valid while `self` lives.
        unsafe { BorrowedFd::borrow_raw(self.tx.as_raw_fd()) }
    }

    /// Where the frames are now.
    #[must_use]
    pub fn accounting(&self) -> UmemAccounting {
        UmemAccounting {
            total: self.cfg.frames,
            free: (self.free.len() + self.recycle.len()) as u32,
            fill: self.fill_in_flight,
            tx_in_flight: self.tx_in_flight,
            lost: self.lost,
        }
    }

    /// The link refused the last kick and has not taken one since.
    #[must_use]
    pub fn link_down(&self) -> bool {
        self.link_down
    }

    /// Gives the frames in `recycle` to the fill ring (as many as fit).
    fn refill(&mut self) {
        if self.recycle.is_empty() {
            return;
        }
        let mut w = self.device.fill(self.recycle.len() as u32);
        let n = w.insert(self.recycle.iter().copied()) as usize;
        w.commit();
        drop(w);
        if n < self.recycle.len() {
            self.counters.fill_full += 1;
        }
        self.recycle.drain(..n);
        self.fill_in_flight += n as u32;
        if self.cfg.need_wakeup && self.device.needs_wakeup() {
            self.device.wake();
            self.counters.fill_wakeups += 1;
        }
    }

    /// Hands up to `max` received frames to `f` (each as a slice of the
    /// UMEM, valid during the call), then gives them back to the fill ring.
    /// Returns how many there were. With busy polling on and nothing
    /// received, makes one non-blocking `recvfrom` so the kernel polls the
    /// device; its failure (other than `EAGAIN` or `EINTR`) is counted in
    /// [`XskCounters::busy_poll_errors`], never returned.
    #[inline]
    pub fn recv(&mut self, max: u32, mut f: impl FnMut(&[u8])) -> u32 {
        let mut r = self.rx.receive(max);
        let mut n = 0;
        let mask = !(u64::from(self.cfg.frame_size) - 1);
        while let Some(desc) = r.read() {
            n += 1;
            let chunk = desc.addr & mask;
            let start = desc.addr as usize;
            let end = start.saturating_add(desc.len as usize);
            if chunk as usize + self.cfg.frame_size as usize > self.area.len()
                || end > chunk as usize + self.cfg.frame_size as usize
            {
                // Not a frame of ours: never reuse it, count it lost.
                self.counters.bad_descriptors += 1;
                self.lost += 1;
                continue;
            }
            // SAFETY: the frame was just handed to us by the receive ring (it
            // is ours until we put it back on the fill ring), and the range
            // was checked to lie inside its chunk of the area.
            let data =
                unsafe { std::slice::from_raw_parts(self.area.as_ptr().add(start), end - start) };
            f(data);
            self.recycle.push(chunk);
        }
        r.release();
        drop(r);
        self.fill_in_flight -= n;
        self.counters.rx_frames += u64::from(n);
        self.refill();
        if n == 0 && self.busy_poll {
            self.counters.busy_polls += 1;
            // EAGAIN / EWOULDBLOCK (the same errno on Linux) and EINTR are
            // ordinary answers; anything else is counted, never fatal.
            if let Err(e) = xdp_busy_poll(self.as_fd())
                && !(e.would_block() || e.errno() == Some(libc::EINTR))
            {
                self.counters.busy_poll_errors += 1;
            }
        }
        n
    }

    /// Reaps transmit completions into the free list.
    #[inline]
    pub fn reap(&mut self) {
        let mut c = self.device.complete(self.tx_in_flight.max(1));
        let mut n = 0u32;
        let mask = !(u64::from(self.cfg.frame_size) - 1);
        let frames = u64::from(self.cfg.frames);
        while let Some(addr) = c.read() {
            n += 1;
            if addr & !mask != 0 || addr / u64::from(self.cfg.frame_size) >= frames {
                self.counters.bad_descriptors += 1;
                self.lost += 1;
                continue;
            }
            self.free.push(addr);
        }
        c.release();
        drop(c);
        self.tx_in_flight -= n;
        self.counters.tx_completions += u64::from(n);
    }

    /// A free frame to build an outgoing frame in: its address and bytes
    /// (`frame_size` of them); `None` when all are in flight.
    #[inline]
    pub fn tx_frame(&mut self) -> Option<(u64, &mut [u8])> {
        if self.free.is_empty() {
            self.reap();
        }
        let addr = self.free.pop()?;
        // SAFETY: the frame was on the free list, so it is ours until it is
        // submitted; it lies inside the area (addresses are multiples of
        // the frame size below `frames * frame_size`).
        let buf = unsafe {
            std::slice::from_raw_parts_mut(
                self.area.as_ptr().add(addr as usize),
                self.cfg.frame_size as usize,
            )
        };
        Some((addr, buf))
    }

    /// Gives back a frame taken with [`Self::tx_frame`] and not sent.
    pub fn tx_cancel(&mut self, addr: u64) {
        self.free.push(addr);
    }

    /// Puts a frame built with [`Self::tx_frame`] on the transmit ring;
    /// false (and the frame back on the free list) when the ring is full.
    #[inline]
    pub fn tx_submit(&mut self, addr: u64, len: u32) -> bool {
        let mut w = self.tx.transmit(1);
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
            self.counters.tx_frames += 1;
        } else {
            self.free.push(addr);
        }
        ok
    }

    /// Frames wait on the transmit ring for a kick (a kick that stopped at
    /// the kernel's per-call budget, or the link down).
    #[must_use]
    pub fn tx_needs_flush(&self) -> bool {
        self.tx_queued > 0 || self.link_down
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
    pub fn tx_flush(&mut self) -> Result<(), SyscallError> {
        if !self.tx_needs_flush() {
            return Ok(());
        }
        if self.cfg.need_wakeup && !self.link_down && !self.tx.needs_wakeup() {
            self.tx_queued = 0;
            return Ok(());
        }
        for _ in 0..=self.cfg.ring_size / 32 {
            self.counters.tx_kicks += 1;
            let Err(e) = xdp_tx_kick(self.tx_fd()) else {
                self.tx_queued = 0;
                self.link_down = false;
                return Ok(());
            };
            match e.errno() {
                Some(libc::EAGAIN | libc::ENOBUFS) => {
                    self.link_down = false;
                    if self.tx.pending() == 0 {
                        self.tx_queued = 0;
                        return Ok(());
                    }
                }
                Some(libc::EBUSY) => {
                    self.counters.tx_dropped_kicks += 1;
                    self.tx_queued = 0;
                    self.link_down = false;
                    return Ok(());
                }
                Some(libc::ENETDOWN | libc::ENXIO) => {
                    self.link_down = true;
                    self.counters.link_down_kicks += 1;
                    return Ok(());
                }
                _ => return Err(e),
            }
        }
        Ok(())
    }
}
