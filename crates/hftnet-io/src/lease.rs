//! Leases by copying, for the kernel-socket backends (`udp`, `mcast`, `tcp`,
//! `uring`): the kernel hands over copies, so a [`Lease`](crate::Lease)
//! receive lands in a burst buffer of the transport and is lent from there,
//! and what the caller writes into a transmit slot is sent from a scratch
//! buffer with one send call per message.
//!
//! Layer: glue between the copying [`Transport`] API and the lease API, off
//! the kernel's hot path: it adds one copy of each transmitted payload and
//! nothing else. The buffers are allocated on a transport's first lease and
//! reused; a lease asking for more messages per call than before reallocates
//! once.

use std::net::SocketAddr;
use std::time::Instant;

use hftnet_sys::SyscallError;

use crate::transport::{RxBurst, RxMeta, Transport, TxLease};

/// The most messages one copying lease lends per call.
pub const MAX_LEASE_BURST: usize = 1024;

/// The lending buffers of one kernel-socket transport, kept between calls.
#[derive(Debug, Default)]
pub struct CopyLease {
    buf: Option<Box<LeaseBuf>>,
}

#[derive(Debug)]
struct LeaseBuf {
    burst: RxBurst,
    scratch: Box<[u8]>,
}

impl CopyLease {
    /// No buffers yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the buffers out (allocating them on first use, or when `max`
    /// messages of `slot` bytes no longer fit), limited to `max` messages
    /// and to [`MAX_LEASE_BURST`]: a lease may lend fewer than asked, and a
    /// caller asking for an absurd number only gets the cap, never an
    /// allocation the machine cannot make.
    fn take(&mut self, max: usize, slot: usize) -> Box<LeaseBuf> {
        let max = max.clamp(1, MAX_LEASE_BURST);
        let mut b = match self.buf.take() {
            Some(b) if b.burst.slots() >= max && b.burst.slot_size() >= slot => b,
            _ => Box::new(LeaseBuf {
                burst: RxBurst::new(max, slot.max(1)),
                scratch: vec![0; slot.max(1)].into_boxed_slice(),
            }),
        };
        b.burst.limit(max);
        b
    }

    fn put(&mut self, b: Box<LeaseBuf>) {
        self.buf = Some(b);
    }
}

/// The transmit side of a kernel-socket lease: the payload is written into
/// a scratch buffer and sent with one call.
#[derive(Debug)]
pub struct CopyTx<'a, T: Transport> {
    t: &'a mut T,
    scratch: &'a mut [u8],
}

impl<T: Transport> TxLease for CopyTx<'_, T> {
    #[inline]
    fn send_with(
        &mut self,
        to: Option<SocketAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), SyscallError> {
        let n = fill(self.scratch);
        if n > self.scratch.len() {
            return Err(SyscallError::from_errno(
                "lease send (fill wrote past the slot)",
                libc::EMSGSIZE,
            ));
        }
        self.t.send(&self.scratch[..n], to)
    }

    fn max_message(&self) -> usize {
        self.scratch.len()
    }
}

/// [`Lease::recv_lease`](crate::Lease::recv_lease) for a copying transport
/// `t` whose lending buffers `lease` returns and whose messages are at most
/// `max_message` bytes.
///
/// # Errors
/// As [`Transport::recv_burst`].
pub fn recv<T, F>(
    t: &mut T,
    lease: fn(&mut T) -> &mut CopyLease,
    max_message: usize,
    max: usize,
    deadline: Option<Instant>,
    mut f: F,
) -> Result<usize, SyscallError>
where
    T: Transport,
    F: FnMut(&[u8], &RxMeta, &mut CopyTx<'_, T>),
{
    let mut buf = lease(t).take(max, max_message);
    let got = match deadline {
        None => t.recv_burst(&mut buf.burst),
        Some(d) => t.recv_burst_until(&mut buf.burst, d),
    };
    let n = match got {
        Ok(n) => n,
        Err(e) => {
            lease(t).put(buf);
            return Err(e);
        }
    };
    {
        let LeaseBuf { burst, scratch } = &mut *buf;
        let mut tx = CopyTx {
            t: &mut *t,
            scratch,
        };
        for i in 0..n {
            let (data, meta) = burst.get(i);
            f(data, meta, &mut tx);
        }
    }
    lease(t).put(buf);
    Ok(n)
}

/// [`Lease::send_lease`](crate::Lease::send_lease) for a copying transport.
///
/// # Errors
/// None of its own: sends report their errors to `f` through
/// [`TxLease::send_with`].
pub fn send<T, R>(
    t: &mut T,
    lease: fn(&mut T) -> &mut CopyLease,
    max_message: usize,
    f: impl FnOnce(&mut CopyTx<'_, T>) -> R,
) -> Result<R, SyscallError>
where
    T: Transport,
{
    let mut buf = lease(t).take(1, max_message);
    let r = f(&mut CopyTx {
        t: &mut *t,
        scratch: &mut buf.scratch,
    });
    lease(t).put(buf);
    Ok(r)
}

/// Implements [`Lease`](crate::Lease) by copying for a kernel-socket
/// transport with a `lease: CopyLease` field and a `max_message()` method.
macro_rules! copy_lease {
    ($t:ty) => {
        impl $crate::transport::Lease for $t {
            const IN_PLACE: bool = false;
            type Tx<'a> = $crate::lease::CopyTx<'a, $t>;

            #[inline]
            fn recv_lease<F>(
                &mut self,
                max: usize,
                deadline: Option<std::time::Instant>,
                f: F,
            ) -> Result<usize, hftnet_sys::SyscallError>
            where
                F: FnMut(&[u8], &$crate::transport::RxMeta, &mut Self::Tx<'_>),
            {
                let m = self.lease_slot();
                $crate::lease::recv(self, |t| &mut t.lease, m, max, deadline, f)
            }

            #[inline]
            fn send_lease<R>(
                &mut self,
                f: impl FnOnce(&mut Self::Tx<'_>) -> R,
            ) -> Result<R, hftnet_sys::SyscallError> {
                let m = self.lease_slot();
                $crate::lease::send(self, |t| &mut t.lease, m, f)
            }
        }
    };
}

pub(crate) use copy_lease;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absurd_lease_burst_is_capped_not_allocated() {
        let mut l = CopyLease::new();
        let b = l.take(usize::MAX, 64);
        assert_eq!(b.burst.slots(), MAX_LEASE_BURST);
        l.put(b);
        let b = l.take(0, 64);
        assert_eq!(b.burst.capacity(), 1, "at least one message");
    }
}
