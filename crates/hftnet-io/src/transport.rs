//! The transport traits every backend implements (the copying
//! [`Transport`] and the zero-copy [`Lease`]), the burst buffers it fills,
//! and the receive strategies.
//!
//! Layer: the seam between the syscall layer below and the harness and
//! trading engine above. Invariants: [`Transport::recv_burst`] and
//! [`Transport::send_burst`] never allocate, lock or log; a receive returns
//! `Ok(0)` when its timeout passed with nothing to deliver, never blocks past
//! it, and never loses a datagram it took from the kernel (a datagram larger
//! than the slot is delivered truncated and flagged).

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::sock::{self, Epoll};
pub use hftnet_sys::sock::{TxStamp, TxStampKind};
use serde::Serialize;

pub use crate::capabilities::Capabilities;
use crate::middleware::Capture;

/// How a transport waits for data. A first-class choice: latency, CPU cost and
/// jitter differ by an order of magnitude between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum RxStrategy {
    /// Sleep in the kernel until data arrives (the default of every socket).
    Block,
    /// Never sleep: poll with non-blocking receives in a loop (one CPU at 100%).
    Spin,
    /// Spin `spins` empty polls, then block in epoll until data or timeout.
    Adaptive {
        /// Empty polls before blocking.
        spins: u32,
    },
    /// Block, but let the kernel busy-poll the device queue first
    /// (`SO_BUSY_POLL`); only in effect when the queue has a NAPI id.
    BusyPoll {
        /// Microseconds the kernel polls per receive.
        usecs: u32,
        /// Packets per poll round (`SO_BUSY_POLL_BUDGET`), if set.
        budget: Option<u32>,
        /// `SO_PREFER_BUSY_POLL`.
        prefer: bool,
    },
}

impl RxStrategy {
    /// The words accepted by the `rx=` URI parameter.
    pub const NAMES: &'static [&'static str] = &["block", "spin", "adaptive", "busy-poll"];
    /// Default empty polls before an adaptive receive blocks.
    pub const DEFAULT_SPINS: u32 = 2000;
    /// Default `SO_BUSY_POLL` microseconds.
    pub const DEFAULT_BUSY_POLL_USECS: u32 = 50;

    /// The short name (`block`, `spin`, `adaptive`, `busy-poll`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Spin => "spin",
            Self::Adaptive { .. } => "adaptive",
            Self::BusyPoll { .. } => "busy-poll",
        }
    }

    /// As [`from_params`](Self::from_params), for a backend with no device
    /// to busy-poll (`what`, e.g. "shared memory"): `rx=busy-poll` is
    /// refused, naming it.
    ///
    /// # Errors
    /// As `from_params`, and [`crate::UriError::BadValue`] for `rx=busy-poll`.
    pub fn from_params_without_device(
        p: &mut crate::uri::Params<'_>,
        what: &str,
    ) -> Result<Self, crate::UriError> {
        let s = Self::from_params(p)?;
        if let Self::BusyPoll { .. } = s {
            return Err(crate::UriError::BadValue {
                param: "rx".into(),
                value: "busy-poll".into(),
                expected: format!("spin, block or adaptive ({what} has no device to busy-poll)"),
            });
        }
        Ok(s)
    }

    /// Reads `rx`, `spins`, `busy_poll`, `busy_budget` and `prefer_busy_poll`
    /// from URI parameters. Tuning parameters of a strategy not chosen are refused.
    ///
    /// # Errors
    /// [`crate::UriError::BadValue`] for an unknown strategy, or a parameter
    /// that only applies to another strategy.
    pub fn from_params(p: &mut crate::uri::Params<'_>) -> Result<Self, crate::UriError> {
        let name = p.choice("rx", Self::NAMES)?.unwrap_or("block");
        let spins = p.int("spins", 1..=i64::from(u32::MAX))?;
        let usecs = p.int("busy_poll", 1..=i64::from(i32::MAX))?;
        let budget = p.int("busy_budget", 1..=65535)?;
        let prefer = p.bool("prefer_busy_poll")?;
        let misplaced = |param: &str, value: String, wants: &str| crate::UriError::BadValue {
            param: param.to_string(),
            value,
            expected: format!("to be given only with rx={wants}"),
        };
        if let (false, Some(s)) = (name == "adaptive", spins) {
            return Err(misplaced("spins", s.to_string(), "adaptive"));
        }
        if name != "busy-poll" {
            if let Some(u) = usecs {
                return Err(misplaced("busy_poll", u.to_string(), "busy-poll"));
            }
            if let Some(b) = budget {
                return Err(misplaced("busy_budget", b.to_string(), "busy-poll"));
            }
            if let Some(b) = prefer {
                return Err(misplaced("prefer_busy_poll", b.to_string(), "busy-poll"));
            }
        }
        Ok(match name {
            "spin" => Self::Spin,
            "adaptive" => Self::Adaptive {
                spins: spins.map_or(Self::DEFAULT_SPINS, |s| s as u32),
            },
            "busy-poll" => Self::BusyPoll {
                usecs: usecs.map_or(Self::DEFAULT_BUSY_POLL_USECS, |u| u as u32),
                budget: budget.map(|b| b as u32),
                prefer: prefer.unwrap_or(false),
            },
            _ => Self::Block,
        })
    }
}

/// What the receive path learned about one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// Bytes delivered into the slot.
    pub len: usize,
    /// Size of the message as sent; larger than `len` when truncated.
    pub wire_len: usize,
    /// The message did not fit the slot and its tail was dropped.
    pub truncated: bool,
    /// Who sent it (answer with [`TxMsg::to`]).
    pub peer: Option<SocketAddr>,
    /// Kernel software receive timestamp (CLOCK_REALTIME ns) when enabled.
    pub rx_ts_ns: Option<u64>,
    /// Raw hardware receive timestamp (ns of the device clock) when the
    /// device stamps and `timestamps=hw` asked for it.
    pub rx_hw_ts_ns: Option<u64>,
    /// Receive queue, where the backend knows it.
    pub queue: u32,
}

/// A burst of received messages in pre-allocated slots, reused call after call.
#[derive(Debug)]
pub struct RxBurst {
    data: Box<[u8]>,
    slot: usize,
    meta: Box<[RxMeta]>,
    len: usize,
    limit: usize,
}

impl RxBurst {
    /// Room for `count` messages of up to `slot_size` bytes each.
    ///
    /// # Panics
    /// When `count` or `slot_size` is zero.
    #[must_use]
    pub fn new(count: usize, slot_size: usize) -> Self {
        assert!(
            count > 0 && slot_size > 0,
            "an RxBurst needs at least one slot of one byte"
        );
        Self {
            data: vec![0; count * slot_size].into_boxed_slice(),
            slot: slot_size,
            meta: vec![RxMeta::default(); count].into_boxed_slice(),
            len: 0,
            limit: count,
        }
    }

    /// Lets the next receives fill at most `n` slots (at least one, at most
    /// the slots allocated); [`Self::capacity`] says `n` from now on.
    pub fn limit(&mut self, n: usize) {
        self.limit = n.clamp(1, self.meta.len());
    }

    /// Messages held after the last receive.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the last receive delivered nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Messages a receive may put into it (the slots, or fewer after [`Self::limit`]).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.limit
    }

    /// Slots allocated.
    #[must_use]
    pub fn slots(&self) -> usize {
        self.meta.len()
    }

    /// Largest message a slot holds untruncated.
    #[must_use]
    pub fn slot_size(&self) -> usize {
        self.slot
    }

    /// Message `i`: its bytes and metadata.
    ///
    /// # Panics
    /// When `i >= self.len()`.
    #[must_use]
    pub fn get(&self, i: usize) -> (&[u8], &RxMeta) {
        assert!(i < self.len, "message {i} of a burst of {}", self.len);
        let m = &self.meta[i];
        (&self.data[i * self.slot..i * self.slot + m.len], m)
    }

    /// For backends: slot `i` to receive into.
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.data[i * self.slot..(i + 1) * self.slot]
    }

    /// For backends: the slots from `first` on, to receive several messages
    /// in one call (`recvmmsg`, a ring) straight into the burst.
    pub fn slots_from(&mut self, first: usize) -> std::slice::ChunksExactMut<'_, u8> {
        let start = (first * self.slot).min(self.data.len());
        self.data[start..].chunks_exact_mut(self.slot)
    }

    /// For backends: record message `i` (`meta.len` must not exceed the slot).
    pub fn set(&mut self, i: usize, meta: RxMeta) {
        debug_assert!(meta.len <= self.slot);
        self.meta[i] = meta;
    }

    /// For backends: the number of messages now held.
    pub fn set_len(&mut self, n: usize) {
        debug_assert!(n <= self.capacity());
        self.len = n;
    }
}

/// One message to send.
#[derive(Debug, Clone, Copy)]
pub struct TxMsg<'a> {
    /// The bytes.
    pub data: &'a [u8],
    /// Destination; `None` for the transport's default peer.
    pub to: Option<SocketAddr>,
}

/// A burst-oriented transport: receive a burst, send a burst, say what the
/// kernel granted.
///
/// The hot-path methods never allocate. Receive honours the transport's
/// [`RxStrategy`] and its receive timeout.
pub trait Transport {
    /// Receives up to `burst.capacity()` messages. Waits (per strategy) for the
    /// first one up to the receive timeout and returns `Ok(0)` when none came.
    ///
    /// # Errors
    /// A receive the kernel failed (e.g. `ECONNREFUSED` after an ICMP port
    /// unreachable on a connected UDP socket; a reset TCP connection).
    fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError>;

    /// Like [`Transport::recv_burst`], but waits until `deadline` instead of
    /// the receive timeout, with sub-millisecond precision whatever the
    /// strategy (for timetabled loops such as fixed-rate sending).
    ///
    /// # Errors
    /// As [`Transport::recv_burst`].
    fn recv_burst_until(
        &mut self,
        burst: &mut RxBurst,
        deadline: Instant,
    ) -> Result<usize, SyscallError>;

    /// Sends the messages in order; returns how many were sent.
    ///
    /// # Errors
    /// The first send the kernel failed, if it was the first message.
    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError>;

    /// Sends one message; `to == None` sends to the default peer.
    ///
    /// # Errors
    /// As [`Transport::send_burst`].
    fn send(&mut self, data: &[u8], to: Option<SocketAddr>) -> Result<(), SyscallError> {
        self.send_burst(&[TxMsg { data, to }]).map(drop)
    }

    /// How long a receive waits for its first message (`None`: forever).
    ///
    /// # Errors
    /// When the kernel refuses the timeout.
    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError>;

    /// What the kernel granted, read back now (not for the hot path).
    fn capabilities(&self) -> Capabilities;

    /// Hands each transmit timestamp waiting in the kernel to `f`, without
    /// blocking, and returns how many there were. Only transports opened with
    /// transmit stamps on (`timestamps=...,tx`) have any; the default has none.
    ///
    /// # Errors
    /// An unexpected failure reading the error queue.
    fn tx_timestamps(&mut self, f: &mut dyn FnMut(TxStamp)) -> Result<usize, SyscallError> {
        let _ = f;
        Ok(0)
    }

    /// When messages travel on a byte stream, each behind a big-endian
    /// length prefix: the prefix's length in bytes (4 for `tcp://`); `None`
    /// for datagrams and rings. The pcap middleware writes such a stream as
    /// it was on the wire.
    fn stream_prefix(&self) -> Option<usize> {
        None
    }

    /// Sends now whatever a middleware holds back (messages delayed or held
    /// for reordering by fault injection) and returns how many; a sender
    /// calls it before going idle and at the end. Backends hold nothing:
    /// the default returns `Ok(0)`.
    ///
    /// # Errors
    /// The first send the backend refused.
    fn release_held(&mut self) -> Result<usize, SyscallError> {
        Ok(0)
    }

    /// Waits up to `timeout` for what earlier sends left queued in a
    /// transmit ring to leave (a kick the device took only in part, a full
    /// device queue, the link down), kicking it again; true when nothing is
    /// left queued. A sender calls it at the end, so that every message it
    /// counted sent did leave. Transports that hand each message to the
    /// kernel within the send call leave nothing queued: the default
    /// returns `Ok(true)`.
    ///
    /// # Errors
    /// A kick the kernel failed.
    fn flush_tx(&mut self, timeout: Duration) -> Result<bool, SyscallError> {
        let _ = timeout;
        Ok(true)
    }

    /// The local address and default peer, cheaply (no allocation, at most
    /// one system call): what the pcap middleware writes into synthesized
    /// headers. The default reads them from [`Transport::capabilities`].
    fn addrs(&self) -> Addrs {
        let c = self.capabilities();
        Addrs {
            local: c.local,
            peer: c.peer,
        }
    }

    /// Offers the transport a capture of the real frames it sends and
    /// receives (layer-2 rings take it); the others give it back, and the
    /// pcap middleware then writes synthesized headers around the payloads.
    ///
    /// # Errors
    /// The capture, handed back, when the transport has no frames of its own.
    fn capture_frames(&mut self, capture: Box<Capture>) -> Result<(), Box<Capture>> {
        Err(capture)
    }
}

/// The addresses of a transport's two ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Addrs {
    /// Where it is bound (`None` when it has no IP address, e.g. `mem://`).
    pub local: Option<SocketAddr>,
    /// Its default peer.
    pub peer: Option<SocketAddr>,
}

/// Zero-copy access beside the copying API: a receive that lends the
/// payloads in place until the caller's function returns, and a transmit
/// that lets the caller write payloads straight into transmit slots.
///
/// Ring backends (AF_PACKET, AF_XDP, in-process queues) lend the frames
/// where they landed ([`Lease::IN_PLACE`]); kernel sockets cannot, so they
/// receive into a buffer of their own and lend from there, and copy what is
/// written into a transmit slot into the send call. Callers write one loop
/// either way.
///
/// The hot-path methods never allocate (a kernel socket allocates its
/// lending buffer on first use).
pub trait Lease: Transport + 'static {
    /// Payloads are lent where they landed, and transmit slots are the
    /// device's (true for rings; false when the transport copies).
    const IN_PLACE: bool;

    /// The transmit side lent to the caller.
    type Tx<'a>: TxLease
    where
        Self: 'a;

    /// Waits per the receive strategy until `deadline` (or, without one,
    /// for the receive timeout) for messages, then calls `f` for each of up
    /// to `max` of them with its payload in place, its metadata, and the
    /// transmit side (to answer at once). Each payload is valid during its
    /// call; the frames go back to the transport when `f` returns, and what
    /// `f` wrote into transmit slots leaves before this returns. Returns how
    /// many messages were lent (`Ok(0)`: the wait ended with none).
    ///
    /// # Errors
    /// A receive or transmit the kernel failed, as [`Transport::recv_burst`].
    fn recv_lease<F>(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
        f: F,
    ) -> Result<usize, SyscallError>
    where
        F: FnMut(&[u8], &RxMeta, &mut Self::Tx<'_>);

    /// Lends the transmit side to `f`; what it wrote leaves before this returns.
    ///
    /// # Errors
    /// The transmit kick the kernel failed.
    fn send_lease<R>(&mut self, f: impl FnOnce(&mut Self::Tx<'_>) -> R) -> Result<R, SyscallError>;
}

/// The transmit side of a [`Lease`].
pub trait TxLease {
    /// Writes one message straight into a transmit slot: `fill` gets the
    /// slot's payload area ([`Self::max_message`] bytes) and returns how many
    /// bytes it wrote. `to == None` sends to the default peer. When every
    /// slot is in flight a ring waits briefly (at most 10 ms) for one; an
    /// in-process queue with `full=drop` drops the message and counts it,
    /// as a full socket buffer does, and returns `Ok`.
    ///
    /// # Errors
    /// No slot came free (`ENOBUFS`), the destination is unknown or
    /// unreachable, or `fill` returned more than the slot holds (`EMSGSIZE`).
    fn send_with(
        &mut self,
        to: Option<SocketAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), SyscallError>;

    /// Largest payload a slot takes.
    fn max_message(&self) -> usize;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    #[inline]
    fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
        (**self).recv_burst(burst)
    }

    #[inline]
    fn recv_burst_until(
        &mut self,
        burst: &mut RxBurst,
        deadline: Instant,
    ) -> Result<usize, SyscallError> {
        (**self).recv_burst_until(burst, deadline)
    }

    #[inline]
    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        (**self).send_burst(msgs)
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        (**self).set_recv_timeout(timeout)
    }

    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }

    fn tx_timestamps(&mut self, f: &mut dyn FnMut(TxStamp)) -> Result<usize, SyscallError> {
        (**self).tx_timestamps(f)
    }

    fn addrs(&self) -> Addrs {
        (**self).addrs()
    }

    fn release_held(&mut self) -> Result<usize, SyscallError> {
        (**self).release_held()
    }

    fn flush_tx(&mut self, timeout: Duration) -> Result<bool, SyscallError> {
        (**self).flush_tx(timeout)
    }

    fn stream_prefix(&self) -> Option<usize> {
        (**self).stream_prefix()
    }

    fn capture_frames(&mut self, capture: Box<Capture>) -> Result<(), Box<Capture>> {
        (**self).capture_frames(capture)
    }
}

impl<T: Lease> Lease for Box<T> {
    const IN_PLACE: bool = T::IN_PLACE;
    type Tx<'a> = T::Tx<'a>;

    #[inline]
    fn recv_lease<F>(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
        f: F,
    ) -> Result<usize, SyscallError>
    where
        F: FnMut(&[u8], &RxMeta, &mut Self::Tx<'_>),
    {
        (**self).recv_lease(max, deadline, f)
    }

    #[inline]
    fn send_lease<R>(&mut self, f: impl FnOnce(&mut Self::Tx<'_>) -> R) -> Result<R, SyscallError> {
        (**self).send_lease(f)
    }
}

/// The wait loop shared by the kernel-socket backends: tries `attempt` with
/// `MSG_DONTWAIT` (spin, adaptive) or blocking (block, busy-poll) until it
/// yields a value, the timeout passes (`Ok(None)`), or it fails.
#[derive(Debug)]
pub(crate) struct Waiter {
    strategy: RxStrategy,
    timeout: Option<Duration>,
    epoll: Option<Epoll>,
}

/// Empty spins between two reads of the clock while spinning.
const SPINS_PER_CLOCK_READ: u32 = 64;

impl Waiter {
    pub(crate) fn new(fd: BorrowedFd<'_>, strategy: RxStrategy) -> Result<Self, SyscallError> {
        let epoll = match strategy {
            RxStrategy::Adaptive { .. } => Some(Epoll::for_readable(fd)?),
            _ => None,
        };
        Ok(Self {
            strategy,
            timeout: None,
            epoll,
        })
    }

    pub(crate) fn strategy(&self) -> RxStrategy {
        self.strategy
    }

    /// Records the timeout; for blocking strategies the kernel enforces it (`SO_RCVTIMEO`).
    pub(crate) fn set_timeout(
        &mut self,
        fd: BorrowedFd<'_>,
        timeout: Option<Duration>,
    ) -> Result<(), SyscallError> {
        if matches!(
            self.strategy,
            RxStrategy::Block | RxStrategy::BusyPoll { .. }
        ) && timeout != self.timeout
        {
            sock::set_recv_timeout(fd, timeout)?;
        }
        self.timeout = timeout;
        Ok(())
    }

    /// Runs `attempt(flags)` until it yields, per strategy, until `deadline`
    /// or, without one, for the configured timeout.
    ///
    /// Blocking strategies without a deadline sleep in the receive itself
    /// (the kernel enforces `SO_RCVTIMEO`: one syscall per message). With a
    /// deadline they poll with a nanosecond timeout (`ppoll`), since
    /// `SO_RCVTIMEO` is rounded to scheduler ticks.
    #[inline]
    pub(crate) fn wait<T>(
        &self,
        fd: BorrowedFd<'_>,
        deadline: Option<Instant>,
        mut attempt: impl FnMut(libc::c_int) -> Result<T, SyscallError>,
    ) -> Result<Option<T>, SyscallError> {
        let blocking = matches!(
            self.strategy,
            RxStrategy::Block | RxStrategy::BusyPoll { .. }
        );
        if blocking && deadline.is_none() {
            return loop {
                match attempt(0) {
                    Ok(v) => break Ok(Some(v)),
                    Err(e) if e.would_block() => break Ok(None),
                    Err(e) if e.errno() == Some(libc::EINTR) => {}
                    Err(e) => break Err(e),
                }
            };
        }
        let exact = deadline.is_some();
        let deadline = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
        // Empty polls before sleeping: none for blocking strategies, `spins`
        // for adaptive, never for spin.
        let spins = match self.strategy {
            RxStrategy::Block | RxStrategy::BusyPoll { .. } => Some(0),
            RxStrategy::Adaptive { spins } => Some(spins),
            RxStrategy::Spin => None,
        };
        let mut n = 0u32;
        loop {
            match attempt(libc::MSG_DONTWAIT) {
                Ok(v) => return Ok(Some(v)),
                Err(e) if e.would_block() || e.errno() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
            n = n.wrapping_add(1);
            // No PAUSE hint here: the syscall already paces the loop, and
            // under a hypervisor PAUSE loops can cause VM exits.
            if spins.is_none_or(|s| n < s) {
                // Reading the clock costs a fraction of the syscall; with a
                // timetable deadline read it every time, else now and then.
                if (exact || n.is_multiple_of(SPINS_PER_CLOCK_READ))
                    && deadline.is_some_and(|d| Instant::now() >= d)
                {
                    return Ok(None);
                }
                continue;
            }
            // Past the spin budget: sleep until readable or the deadline, and
            // stay in this phase (no counter overflow).
            n = n.saturating_sub(1);
            let left = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
            };
            match (&self.epoll, exact) {
                (Some(epoll), false) => {
                    // Round up so a sub-millisecond wait still sleeps.
                    let ms = left.map_or(-1, |l| {
                        l.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                    });
                    epoll.wait(ms)?;
                }
                _ => {
                    sock::poll_readable(fd, left)?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::Uri;

    fn strategy(q: &str) -> Result<RxStrategy, crate::UriError> {
        let u = Uri::parse(&format!("udp://1.2.3.4:5?{q}")).unwrap();
        let mut p = u.params(&[&[
            "rx",
            "spins",
            "busy_poll",
            "busy_budget",
            "prefer_busy_poll",
        ]]);
        let s = RxStrategy::from_params(&mut p)?;
        p.finish()?;
        Ok(s)
    }

    #[test]
    fn strategies_from_params() {
        assert_eq!(strategy("").unwrap(), RxStrategy::Block);
        assert_eq!(strategy("rx=spin").unwrap(), RxStrategy::Spin);
        assert_eq!(
            strategy("rx=adaptive&spins=10").unwrap(),
            RxStrategy::Adaptive { spins: 10 }
        );
        assert_eq!(
            strategy("rx=busy-poll&busy_poll=20&busy_budget=8").unwrap(),
            RxStrategy::BusyPoll {
                usecs: 20,
                budget: Some(8),
                prefer: false
            }
        );
        let e = strategy("rx=spin&spins=5").unwrap_err();
        assert!(e.to_string().contains("rx=adaptive"), "{e}");
        let e = strategy("rx=poll").unwrap_err();
        assert!(
            e.to_string().contains("block, spin, adaptive, busy-poll"),
            "{e}"
        );
    }

    #[test]
    fn burst_slots() {
        let mut b = RxBurst::new(2, 8);
        b.slot_mut(1)[..3].copy_from_slice(b"abc");
        b.set(
            1,
            RxMeta {
                len: 3,
                wire_len: 3,
                ..RxMeta::default()
            },
        );
        b.set_len(2);
        assert_eq!(b.get(1).0, b"abc");
        assert_eq!(b.capacity(), 2);
        assert_eq!(b.slot_size(), 8);
    }
}
