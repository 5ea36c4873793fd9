//! The ring trait of the layer-2 backends: what `packet://` (AF_PACKET
//! rings), `xdp://` (AF_XDP) and later `dpdk://` provide to the one generic
//! layer-2 transport ([`super::L2Transport`]) that owns the UDP/IPv4/Ethernet
//! handling, the send loop, the drain and the wait.
//!
//! Layer: between a backend's ring code (unsafe, in `hftnet-sys` or the
//! backend's own ring module) and the transport API. A ring splits into a
//! receive half and a transmit half that borrow disjoint parts of it, so a
//! caller can answer a frame it still holds by writing straight into a
//! transmit slot (an echo copies the payload once, from the receive frame to
//! the transmit frame).
//!
//! Invariants an implementation keeps: a received frame is the caller's only
//! during its call to the receive function and goes back to the device
//! after it; a transmit slot taken with [`TxRing::slot`] is the caller's
//! until [`TxRing::commit`] or [`TxRing::cancel`]; nothing allocates.

use std::fmt::Debug;
use std::os::fd::BorrowedFd;

use hftnet_sys::SyscallError;

use super::frames::UdpCheck;
use crate::backend::CapsSection;

/// One received frame, lent during one call.
#[derive(Debug, Clone, Copy)]
pub struct RxFrame<'a> {
    /// The bytes captured (from the Ethernet header on).
    pub data: &'a [u8],
    /// The frame's length on the wire (more than `data.len()` when the ring
    /// cut it short).
    pub wire_len: usize,
    /// What is known of its UDP checksum.
    pub udp_check: UdpCheck,
    /// The ring's receive timestamp (CLOCK_REALTIME ns), if it stamps.
    pub ts_ns: Option<u64>,
    /// The device queue it came from.
    pub queue: u32,
}

/// A layer-2 ring: a receive half, a transmit half, and a descriptor to
/// sleep on.
pub trait Ring: Debug + Send + 'static {
    /// The receive half.
    type Rx<'a>: RxRing
    where
        Self: 'a;
    /// The transmit half.
    type Tx<'a>: TxRing
    where
        Self: 'a;
    /// The backend's capability section.
    type Caps: CapsSection;

    /// Both halves, borrowing disjoint parts of the ring.
    fn split(&mut self) -> (Self::Rx<'_>, Self::Tx<'_>);

    /// The descriptor to `poll()` on: readable when a frame waits.
    fn fd(&self) -> BorrowedFd<'_>;

    /// After a receive pass: gives the frames it released back to the
    /// device (the AF_XDP fill ring). Default: nothing to do.
    fn after_rx(&mut self) {}

    /// A cheap look between receive passes of a spinning loop: true when a
    /// pass would find nothing to do (no frame waiting, no kick pending,
    /// nothing to drive). Default: never idle, so every poll is a pass.
    fn idle(&self) -> bool {
        false
    }

    /// Whether the device reads and writes the ring memory itself (AF_XDP
    /// zero-copy) rather than the kernel copying.
    fn zero_copy(&self) -> bool {
        false
    }

    /// Its capability section, with `frames` (the shared layer's counters).
    fn caps(&self, frames: super::frames::FrameStats) -> Self::Caps;

    /// Notes for the capability report (set-up facts, counters in words).
    fn notes(&self, out: &mut Vec<String>);
}

/// The receive half of a [`Ring`].
pub trait RxRing {
    /// Calls `f` for each of up to `max` received frames; each frame is the
    /// caller's during its call and goes back to the ring after it. Frames
    /// the ring skips itself (its own outgoing frames, seen again on an
    /// AF_PACKET tap) are given back without a call. Returns the frames
    /// handed to `f`. Never waits.
    fn recv(&mut self, max: usize, f: impl FnMut(RxFrame<'_>)) -> usize;
}

/// The transmit half of a [`Ring`].
pub trait TxRing {
    /// Whether [`Self::slot`] would give a frame now (taking back what the
    /// device is done with first).
    fn ready(&mut self) -> bool;

    /// A free transmit frame to build a frame in (its whole area), or
    /// `None` when every frame is in flight. A frame it gives can always be
    /// committed.
    fn slot(&mut self) -> Option<&mut [u8]>;

    /// Queues the frame taken with [`Self::slot`], `len` bytes long.
    ///
    /// # Panics
    /// When no frame was taken with [`Self::slot`], or `len` is longer than
    /// it: caller bugs.
    fn commit(&mut self, len: usize);

    /// Gives back the frame taken with [`Self::slot`], unsent.
    fn cancel(&mut self);

    /// Asks the device to send what is queued. A kick the device takes only
    /// in part (a full queue, a budget per call, the link down) leaves the
    /// rest queued and [`Self::needs_kick`] true; that is not an error.
    ///
    /// # Errors
    /// A kick the kernel refused for another reason.
    fn kick(&mut self) -> Result<(), SyscallError>;

    /// Frames wait for another kick.
    fn needs_kick(&self) -> bool;

    /// The error to return when no frame came free: `ENOBUFS`, or
    /// `ENETDOWN` while the link is down.
    fn full_error(&self) -> SyscallError;
}
