//! The one layer-2 transport: UDP over any [`Ring`] — the drain into a
//! burst, the lease, the send loop and the wait, written once for
//! `packet://`, `xdp://` and later `dpdk://`.
//!
//! Layer: a [`Transport`] and [`Lease`] over a ring; the frames are parsed
//! and built by the shared [`UdpOverEthernet`], so the backends only move
//! frames. Safe code: the unsafe lives in the rings.
//!
//! Receive: frames are taken from the ring's receive half, checked and
//! counted by [`UdpOverEthernet::accept`], and either copied into the
//! caller's [`RxBurst`] or lent in place ([`Lease::recv_lease`]). Waiting:
//! `spin` polls the ring in memory (no system call), `block` sleeps in
//! `poll()`, `adaptive` spins then sleeps ([`RingWait`]). Frames a kick left
//! queued are kicked again before each receive pass.
//!
//! Transmit: each message is written into a free transmit frame — copied
//! from the caller's buffer, or written there by the caller through
//! [`TxLease::send_with`] — with its headers and checksums computed in
//! software, and the ring is kicked once per burst. When every frame is in
//! flight the send kicks, takes back what the device finished, and waits up
//! to [`SLOT_WAIT`] for a frame.
//!
//! Capture: with a [`Capture`] (the `pcap=` middleware) every frame taken
//! from the ring and every frame built is recorded as it is on the wire.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::clock::realtime_ns;
use hftnet_sys::sock;

use super::frames::{RingWait, UdpOverEthernet, Wait};
use super::ring::{Ring, RxFrame, RxRing, TxRing};
use crate::Section;
use crate::capabilities::{Capabilities, CopyMode, LeaseMode, MiddlewareCaps};
use crate::middleware::Capture;
use crate::transport::{Addrs, Lease, RxBurst, RxMeta, RxStrategy, Transport, TxLease, TxMsg};

/// How long a send waits for a free transmit frame.
pub const SLOT_WAIT: Duration = Duration::from_millis(10);

/// UDP over a layer-2 ring.
#[derive(Debug)]
pub struct L2Transport<R: Ring> {
    ring: R,
    ep: UdpOverEthernet,
    scheme: &'static str,
    strategy: RxStrategy,
    burst: usize,
    timeout: Option<Duration>,
    capture: Option<Box<Capture>>,
    notes: Vec<String>,
    /// Kicks of frames left queued that failed during a receive (they stay
    /// queued and are kicked again; the receive goes on).
    rx_kick_errors: u64,
}

/// The transmit side of a layer-2 lease: frames are built straight in the
/// ring's transmit frames.
#[derive(Debug)]
pub struct L2Tx<'a, T: TxRing> {
    tx: T,
    ep: &'a mut UdpOverEthernet,
    capture: &'a mut Option<Box<Capture>>,
    queued: usize,
}

impl<R: Ring> L2Transport<R>
where
    Section: From<R::Caps>,
{
    /// A transport over `ring`, speaking UDP as `ep`, waiting per
    /// `strategy`, reporting itself as `scheme`, handling bursts of `burst`
    /// best, with set-up `notes` for the capability report.
    #[must_use]
    pub fn new(
        ring: R,
        ep: UdpOverEthernet,
        scheme: &'static str,
        strategy: RxStrategy,
        burst: usize,
        notes: Vec<String>,
    ) -> Self {
        Self {
            ring,
            ep,
            scheme,
            strategy,
            burst: burst.max(1),
            timeout: None,
            capture: None,
            notes,
            rx_kick_errors: 0,
        }
    }

    /// The ring.
    #[must_use]
    pub fn ring(&self) -> &R {
        &self.ring
    }

    /// The ring, mutably (for its own statistics calls).
    pub fn ring_mut(&mut self) -> &mut R {
        &mut self.ring
    }

    /// The shared UDP/IPv4/Ethernet layer (its counters, local address, peer).
    #[must_use]
    pub fn endpoint(&self) -> &UdpOverEthernet {
        &self.ep
    }

    /// The local address frames are sent from and received at.
    #[must_use]
    pub fn local(&self) -> std::net::SocketAddrV4 {
        self.ep.local()
    }

    /// Runs `pass` until it yields messages, waiting per strategy between
    /// empty passes, until `deadline` (or the receive timeout).
    #[inline]
    fn wait_for(
        &mut self,
        deadline: Option<Instant>,
        mut pass: impl FnMut(&mut Self) -> Result<usize, SyscallError>,
    ) -> Result<usize, SyscallError> {
        let n = pass(self)?;
        if n > 0 {
            return Ok(n);
        }
        let deadline = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
        let mut wait = RingWait::new(self.strategy, deadline);
        loop {
            match wait.after_empty_poll() {
                // A cheap look first: a whole pass only when there is work.
                Wait::Again if self.ring.idle() => continue,
                Wait::Again => {}
                Wait::Sleep(left) => {
                    sock::poll_readable(self.ring.fd(), left)?;
                }
                Wait::TimedOut => return Ok(0),
            }
            let n = pass(self)?;
            if n > 0 {
                return Ok(n);
            }
        }
    }

    /// One receive pass into `burst`: kicks frames left queued, then copies
    /// what the ring holds.
    #[inline]
    fn drain(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
        let max = burst.capacity();
        let mut n = 0usize;
        {
            let (mut rx, mut tx) = self.ring.split();
            if tx.needs_kick() && tx.kick().is_err() {
                self.rx_kick_errors += 1;
            }
            let ep = &mut self.ep;
            let capture = &mut self.capture;
            rx.recv(max, |frame| {
                record(capture, &frame);
                let Some((payload, from)) = ep.accept(frame.data, frame.wire_len, frame.udp_check)
                else {
                    return;
                };
                let slot = burst.slots_from(n).next().expect("n < capacity");
                let len = payload.len().min(slot.len());
                slot[..len].copy_from_slice(&payload[..len]);
                burst.set(
                    n,
                    RxMeta {
                        len,
                        wire_len: payload.len(),
                        truncated: len < payload.len(),
                        peer: Some(SocketAddr::V4(from)),
                        rx_ts_ns: frame.ts_ns,
                        rx_hw_ts_ns: None,
                        queue: frame.queue,
                    },
                );
                n += 1;
            });
        }
        self.ring.after_rx();
        burst.set_len(n);
        Ok(n)
    }

    fn recv_impl(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        burst.set_len(0);
        self.wait_for(deadline, |t| t.drain(burst))
    }
}

/// Records a received frame in the capture, if there is one.
#[inline]
fn record(capture: &mut Option<Box<Capture>>, frame: &RxFrame<'_>) {
    if let Some(c) = capture {
        let ts = frame.ts_ns.unwrap_or_else(realtime_ns);
        c.frame(ts, frame.data, frame.wire_len);
    }
}

impl<T: TxRing> L2Tx<'_, T> {
    /// Kicks what was queued (and what an earlier kick left).
    #[inline]
    fn finish(&mut self) -> Result<(), SyscallError> {
        if self.queued > 0 || self.tx.needs_kick() {
            self.queued = 0;
            self.tx.kick()?;
        }
        Ok(())
    }
}

impl<T: TxRing> TxLease for L2Tx<'_, T> {
    #[inline]
    fn send_with(
        &mut self,
        to: Option<SocketAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), SyscallError> {
        let spec = self.ep.prepare(to)?;
        if !self.tx.ready() {
            // Every frame in flight: send what is queued, take back what
            // the device finished, and wait a little for a frame.
            let until = Instant::now() + SLOT_WAIT;
            loop {
                self.queued = 0;
                self.tx.kick()?;
                if self.tx.ready() {
                    break;
                }
                if Instant::now() >= until {
                    return Err(self.tx.full_error());
                }
                std::hint::spin_loop();
            }
        }
        // `ready` said a frame is free, so `slot` gives it without looking again.
        let Some(buf) = self.tx.slot() else {
            return Err(self.tx.full_error());
        };
        let len = match self.ep.emit_with(buf, &spec, fill) {
            Ok(len) => len,
            Err(e) => {
                self.tx.cancel();
                return Err(e);
            }
        };
        if let Some(c) = self.capture {
            c.frame(realtime_ns(), &buf[..len], len);
        }
        self.tx.commit(len);
        self.queued += 1;
        Ok(())
    }

    fn max_message(&self) -> usize {
        self.ep.max_message()
    }
}

impl<R: Ring> Transport for L2Transport<R>
where
    Section: From<R::Caps>,
{
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
        let max = self.ep.max_message();
        self.send_lease(|tx| {
            let mut sent = 0;
            for m in msgs {
                let r = if m.data.len() > max {
                    Err(SyscallError::from_errno(
                        "layer-2 send (message longer than a ring frame or the MTU)",
                        libc::EMSGSIZE,
                    ))
                } else {
                    tx.send_with(m.to, |buf| {
                        buf[..m.data.len()].copy_from_slice(m.data);
                        m.data.len()
                    })
                };
                match r {
                    Ok(()) => sent += 1,
                    Err(e) if sent == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            Ok(sent)
        })?
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        self.timeout = timeout;
        Ok(())
    }

    fn flush_tx(&mut self, timeout: Duration) -> Result<bool, SyscallError> {
        let until = Instant::now() + timeout;
        let (_rx, mut tx) = self.ring.split();
        while tx.needs_kick() {
            tx.kick()?;
            if !tx.needs_kick() {
                break;
            }
            if Instant::now() >= until {
                return Ok(false);
            }
            // The device drains its queue meanwhile (or the link comes
            // back). Yield rather than sleep: on a loaded machine a sleep
            // lasts a scheduler tick, and a full ring needs many kicks.
            std::thread::yield_now();
        }
        Ok(true)
    }

    fn capabilities(&self) -> Capabilities {
        let mut notes = self.notes.clone();
        self.ring.notes(&mut notes);
        notes.push(self.ep.stats.describe());
        if self.rx_kick_errors > 0 {
            notes.push(format!(
                "{} transmit kicks failed during receives (the frames stayed queued)",
                self.rx_kick_errors
            ));
        }
        let pcap = self.capture.as_ref().map(|c| c.caps());
        if let Some(p) = &pcap {
            notes.push(p.describe());
        }
        Capabilities {
            transport: self.scheme,
            rx_strategy: self.strategy.name(),
            local: Some(SocketAddr::V4(self.ep.local())),
            peer: self.ep.default_peer().map(SocketAddr::V4),
            max_message: self.ep.max_message(),
            mode: if self.ring.zero_copy() {
                CopyMode::ZeroCopy
            } else {
                CopyMode::Copy
            },
            lease: LeaseMode::InPlace,
            burst: self.burst,
            backend: Some(Section::from(self.ring.caps(self.ep.stats))),
            middleware: pcap.map(|p| MiddlewareCaps {
                pcap: Some(p),
                ..MiddlewareCaps::default()
            }),
            notes,
        }
    }

    fn addrs(&self) -> Addrs {
        Addrs {
            local: Some(SocketAddr::V4(self.ep.local())),
            peer: self.ep.default_peer().map(SocketAddr::V4),
        }
    }

    fn capture_frames(&mut self, capture: Box<Capture>) -> Result<(), Box<Capture>> {
        self.capture = Some(capture);
        Ok(())
    }
}

impl<R: Ring> Lease for L2Transport<R>
where
    Section: From<R::Caps>,
{
    const IN_PLACE: bool = true;
    type Tx<'a> = L2Tx<'a, R::Tx<'a>>;

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
        let max = max.max(1);
        self.wait_for(deadline, |t| {
            let mut n = 0usize;
            {
                let (mut rx, tx) = t.ring.split();
                let mut l2 = L2Tx {
                    tx,
                    ep: &mut t.ep,
                    capture: &mut t.capture,
                    queued: 0,
                };
                if l2.tx.needs_kick() && l2.tx.kick().is_err() {
                    t.rx_kick_errors += 1;
                }
                rx.recv(max, |frame| {
                    record(l2.capture, &frame);
                    let Some((payload, from)) =
                        l2.ep.accept(frame.data, frame.wire_len, frame.udp_check)
                    else {
                        return;
                    };
                    let meta = RxMeta {
                        len: payload.len(),
                        wire_len: payload.len(),
                        truncated: false,
                        peer: Some(SocketAddr::V4(from)),
                        rx_ts_ns: frame.ts_ns,
                        rx_hw_ts_ns: None,
                        queue: frame.queue,
                    };
                    n += 1;
                    f(payload, &meta, &mut l2);
                });
                // The frames are taken: a failed kick of the answers is
                // counted, and they are kicked again on the next pass.
                if l2.finish().is_err() {
                    t.rx_kick_errors += 1;
                }
            }
            t.ring.after_rx();
            Ok(n)
        })
    }

    #[inline]
    fn send_lease<T>(&mut self, f: impl FnOnce(&mut Self::Tx<'_>) -> T) -> Result<T, SyscallError> {
        let (_rx, tx) = self.ring.split();
        let mut l2 = L2Tx {
            tx,
            ep: &mut self.ep,
            capture: &mut self.capture,
            queued: 0,
        };
        let out = f(&mut l2);
        l2.finish()?;
        Ok(out)
    }
}
