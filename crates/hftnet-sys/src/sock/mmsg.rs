//! Many messages per call: `recvmmsg` and `sendmmsg` over the reusable
//! headers of an [`MmsgBatch`].
//!
//! Layer: part of [`sock`](super), the batched receive and send paths of the
//! UDP and multicast transports (`batch=N`).
//!
//! Invariants: the batch's headers, iovecs, addresses and control buffers
//! are allocated once, when it is built, and only rewritten per call; the
//! pointers in them are valid only during a call and are rewritten before
//! each; at most [`MMSG_MAX_BATCH`] messages go in one call; `EINTR` before
//! any datagram is retried, nothing else is.
//!
//! Must never: allocate per call, or describe a message the last receive did
//! not deliver.

use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::msg::control_stamps;
use super::{CmsgSpace, RecvInfo, sockaddr_to_std, std_to_sockaddr};
use crate::error::{Result, cvt};
#[cfg(doc)]
use crate::{
    SyscallError,
    sock::{SO_TIMESTAMPING, recv_msg, send_to},
};

/// Largest batch [`recv_mmsg`] and [`send_mmsg`] take in one call: the
/// kernel's `UIO_MAXIOV`, to which it silently clamps a larger `vlen`.
pub const MMSG_MAX_BATCH: usize = 1024;

/// The headers of batched receives and sends, allocated once and reused: one
/// `mmsghdr`, `iovec` and `sockaddr_storage` per message, and one control
/// buffer per message when receive timestamps are wanted. [`recv_mmsg`] and
/// [`send_mmsg`] only rewrite them, so the batched paths never touch the heap.
///
/// After [`recv_mmsg`] returned `n`, [`MmsgBatch::info`] describes messages
/// `0..n`. The pointers inside the headers are valid only during a call; they
/// are rewritten before each one.
pub struct MmsgBatch {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
    addrs: Box<[libc::sockaddr_storage]>,
    /// One per header when control messages are wanted, else empty.
    cmsgs: Box<[CmsgSpace]>,
    /// Messages described by the last [`recv_mmsg`] (0 after a send).
    received: usize,
}

// SAFETY: the raw pointers in `hdrs` and `iovs` point into this struct's own
// boxed arrays or into buffers borrowed for the duration of one call; they are
// rewritten before every call and dereferenced (by the kernel, or by `info`
// reading the struct's own control buffers) only while `self` is borrowed, so
// moving the struct to another thread moves everything they may refer to.
unsafe impl Send for MmsgBatch {}

// SAFETY: a shared reference only reads: `info` reads the headers and the
// struct's own address and control buffers; nothing is mutated through `&self`.
unsafe impl Sync for MmsgBatch {}

impl std::fmt::Debug for MmsgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgBatch")
            .field("capacity", &self.capacity())
            .field("control", &self.control())
            .field("received", &self.received)
            .finish()
    }
}

impl MmsgBatch {
    /// Room for `capacity` messages per call; `control` reserves a control
    /// buffer per message for `SCM_TIMESTAMPNS` / `SCM_TIMESTAMPING` (turn
    /// `SO_TIMESTAMPNS` or [`SO_TIMESTAMPING`] on too).
    ///
    /// Allocates; build it when the socket is opened, not per call.
    ///
    /// # Panics
    /// When `capacity` is 0 or above [`MMSG_MAX_BATCH`].
    #[must_use]
    pub fn new(capacity: usize, control: bool) -> Self {
        assert!(
            (1..=MMSG_MAX_BATCH).contains(&capacity),
            "an mmsg batch holds 1 to {MMSG_MAX_BATCH} messages, not {capacity}"
        );
        // SAFETY: mmsghdr, iovec and sockaddr_storage are plain C data; all-zero
        // (null pointers, zero lengths) is a valid value of each.
        let zeroed = || unsafe { mem::zeroed::<libc::mmsghdr>() };
        Self {
            hdrs: (0..capacity).map(|_| zeroed()).collect(),
            iovs: (0..capacity)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            // SAFETY: as above.
            addrs: (0..capacity)
                .map(|_| unsafe { mem::zeroed::<libc::sockaddr_storage>() })
                .collect(),
            cmsgs: (0..if control { capacity } else { 0 })
                .map(|_| CmsgSpace([0; 128]))
                .collect(),
            received: 0,
        }
    }

    /// Messages per call.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Whether receives collect control messages (timestamps).
    #[must_use]
    pub fn control(&self) -> bool {
        !self.cmsgs.is_empty()
    }

    /// Messages the last [`recv_mmsg`] delivered.
    #[must_use]
    pub fn received(&self) -> usize {
        self.received
    }

    /// Message `i` of the last [`recv_mmsg`]: length, wire length,
    /// truncation, sender and (with control buffers) receive timestamp.
    ///
    /// # Panics
    /// When `i >= self.received()`.
    #[must_use]
    pub fn info(&self, i: usize) -> RecvInfo {
        assert!(
            i < self.received,
            "message {i} of a batch of {}",
            self.received
        );
        let h = &self.hdrs[i];
        let wire_len = h.msg_len as usize;
        let room = self.iovs[i].iov_len;
        // SAFETY: the kernel filled msg_namelen bytes of addrs[i] (zeroed
        // storage large enough for any address) during the last receive.
        let src = unsafe { sockaddr_to_std(&raw const self.addrs[i], h.msg_hdr.msg_namelen) };
        // SAFETY: msg_control is null (no control buffers) or points to
        // cmsgs[i], owned by self and filled up to msg_controllen by the kernel.
        let ts = unsafe { control_stamps(&h.msg_hdr) };
        RecvInfo {
            len: wire_len.min(room),
            wire_len,
            truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || wire_len > room,
            src,
            rx_ts_ns: ts.sw,
            rx_hw_ts_ns: ts.hw,
        }
    }
}

/// `recvmmsg(fd, hdrs, n, flags | MSG_TRUNC | MSG_WAITFORONE, NULL)`: up to
/// `batch.capacity()` datagrams in one call, one into each buffer `bufs`
/// yields (in order; extra buffers are ignored). Returns how many arrived;
/// [`MmsgBatch::info`] describes each.
///
/// `MSG_WAITFORONE` makes a blocking call wait for the first datagram only
/// (bounded by `SO_RCVTIMEO`) and then take what is queued without waiting,
/// so a batch never holds a datagram back to fill itself; with `MSG_DONTWAIT`
/// in `flags` nothing waits. The `timeout` argument is not used: the kernel
/// checks it only between datagrams, so it cannot bound the wait.
/// `EINTR` before any datagram is retried. An error after some datagrams
/// (other than `EAGAIN`) is kept by the kernel and reported by the next call.
///
/// Kernel: `recvmmsg` needs Linux 2.6.33, `MSG_WAITFORONE` 2.6.34.
///
/// # Errors
/// As [`recv_msg`]: `EAGAIN` ([`SyscallError::would_block`]) when nothing is
/// queued on a non-blocking call or the receive timeout expired;
/// `ECONNREFUSED` after an ICMP port unreachable on a connected socket.
///
/// # References
/// `recvmmsg(2)`
pub fn recv_mmsg<'a, I>(
    fd: BorrowedFd<'_>,
    batch: &mut MmsgBatch,
    bufs: I,
    flags: libc::c_int,
) -> Result<usize>
where
    I: IntoIterator<Item = &'a mut [u8]>,
{
    batch.received = 0;
    let mut n = 0;
    for (iov, buf) in batch.iovs.iter_mut().zip(bufs) {
        // The borrow of `buf` ('a) outlives this call, so the pointer stays
        // valid until the kernel is done with it.
        *iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        n += 1;
    }
    if n == 0 {
        return Ok(0);
    }
    let control = batch.control();
    loop {
        // The kernel rewrites the name and control lengths and the flags:
        // reset them before every attempt.
        for i in 0..n {
            let h = &mut batch.hdrs[i];
            h.msg_len = 0;
            let m = &mut h.msg_hdr;
            m.msg_name = (&raw mut batch.addrs[i]).cast();
            m.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_iov = &raw mut batch.iovs[i];
            m.msg_iovlen = 1;
            if control {
                m.msg_control = batch.cmsgs[i].0.as_mut_ptr().cast();
                m.msg_controllen = batch.cmsgs[i].0.len();
            } else {
                m.msg_control = std::ptr::null_mut();
                m.msg_controllen = 0;
            }
            m.msg_flags = 0;
        }
        // SAFETY: the first n headers point to live entries of batch.addrs,
        // batch.iovs and batch.cmsgs with their true sizes, and each iovec to a
        // buffer borrowed for longer than this call; the kernel writes within
        // those lengths only. n <= capacity <= UIO_MAXIOV. A null timeout is allowed.
        let ret = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                batch.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags | libc::MSG_TRUNC | libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        match cvt("recvmmsg", ret) {
            Ok(k) => {
                batch.received = k as usize;
                return Ok(k as usize);
            }
            Err(e) if e.errno() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// `sendmmsg(fd, hdrs, n, flags | MSG_NOSIGNAL)`: up to `batch.capacity()`
/// datagrams in one call, each `(bytes, destination)`; `None` sends to the
/// connected peer. Returns how many the kernel took, which is less than asked
/// when one failed after the first (send the rest again to see its error).
/// `EINTR` before any datagram is retried.
///
/// Kernel: Linux 3.0 (glibc 2.14).
///
/// # Errors
/// As [`send_to`], when the first datagram fails: `EAGAIN` on a full
/// non-blocking socket, `ECONNREFUSED` after an ICMP port unreachable on a
/// connected socket, `EMSGSIZE`, `EDESTADDRREQ` for `None` on an unconnected socket.
///
/// # References
/// `sendmmsg(2)`
pub fn send_mmsg<'a, I>(
    fd: BorrowedFd<'_>,
    batch: &mut MmsgBatch,
    msgs: I,
    flags: libc::c_int,
) -> Result<usize>
where
    I: IntoIterator<Item = (&'a [u8], Option<SocketAddr>)>,
{
    batch.received = 0;
    let mut n = 0;
    let cap = batch.capacity();
    for (i, (data, dest)) in msgs.into_iter().take(cap).enumerate() {
        // The borrow of `data` ('a) outlives this call; the kernel only reads it.
        batch.iovs[i] = libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        let m = &mut batch.hdrs[i].msg_hdr;
        match dest {
            Some(a) => {
                let (storage, len) = std_to_sockaddr(&a);
                batch.addrs[i] = storage;
                m.msg_name = (&raw mut batch.addrs[i]).cast();
                m.msg_namelen = len;
            }
            None => {
                m.msg_name = std::ptr::null_mut();
                m.msg_namelen = 0;
            }
        }
        m.msg_iov = &raw mut batch.iovs[i];
        m.msg_iovlen = 1;
        m.msg_control = std::ptr::null_mut();
        m.msg_controllen = 0;
        m.msg_flags = 0;
        batch.hdrs[i].msg_len = 0;
        n = i + 1;
    }
    if n == 0 {
        return Ok(0);
    }
    loop {
        // SAFETY: the first n headers point to live entries of batch.addrs (or
        // null with length 0) and batch.iovs, each iovec to bytes borrowed for
        // longer than this call; the kernel reads them and writes only msg_len.
        let ret = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                batch.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                flags | libc::MSG_NOSIGNAL,
            )
        };
        match cvt("sendmmsg", ret) {
            Ok(k) => return Ok(k as usize),
            Err(e) if e.errno() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SO_TIMESTAMPNS, set_int, set_recv_timeout};
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn mmsg_batches_round_trip_with_sources_truncation_and_timestamps() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_int(rx.as_fd(), SO_TIMESTAMPNS, 1).unwrap();
        set_recv_timeout(rx.as_fd(), Some(std::time::Duration::from_secs(2))).unwrap();
        let dest = rx.local_addr().unwrap();
        // Five datagrams in one sendmmsg; the last one too large for its slot.
        let payloads: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; if i == 4 { 100 } else { 10 + usize::from(i) }])
            .collect();
        let mut txb = MmsgBatch::new(8, false);
        let sent = send_mmsg(
            tx.as_fd(),
            &mut txb,
            payloads.iter().map(|p| (p.as_slice(), Some(dest))),
            0,
        )
        .unwrap();
        assert_eq!(sent, 5);
        // A blocking receive of up to 8 returns the 5 queued (MSG_WAITFORONE).
        let mut slots = vec![0u8; 8 * 32];
        let mut rxb = MmsgBatch::new(8, true);
        let n = recv_mmsg(rx.as_fd(), &mut rxb, slots.chunks_exact_mut(32), 0).unwrap();
        assert_eq!(n, 5);
        assert_eq!(rxb.received(), 5);
        for i in 0..5 {
            let info = rxb.info(i);
            assert_eq!(info.src, Some(tx.local_addr().unwrap()));
            assert!(info.rx_ts_ns.unwrap() > 1_600_000_000_000_000_000);
            if i == 4 {
                assert_eq!((info.len, info.wire_len, info.truncated), (32, 100, true));
            } else {
                assert_eq!(
                    (info.len, info.wire_len, info.truncated),
                    (10 + i, 10 + i, false)
                );
            }
            assert!(
                slots[i * 32..i * 32 + info.len]
                    .iter()
                    .all(|&b| b == i as u8)
            );
        }
        // Fewer buffers than capacity: only that many are filled.
        send_mmsg(
            tx.as_fd(),
            &mut txb,
            [(&b"ab"[..], Some(dest)), (&b"cd"[..], Some(dest))],
            0,
        )
        .unwrap();
        let mut rxb = MmsgBatch::new(4, false);
        let n = recv_mmsg(rx.as_fd(), &mut rxb, slots.chunks_exact_mut(32).take(1), 0).unwrap();
        assert_eq!(n, 1);
        assert_eq!(rxb.info(0).rx_ts_ns, None, "no control buffers asked for");
        assert_eq!(&slots[..2], b"ab");
        let n = recv_mmsg(rx.as_fd(), &mut rxb, slots.chunks_exact_mut(32), 0).unwrap();
        assert_eq!((n, &slots[..2]), (1, &b"cd"[..]));
        // Nothing queued: non-blocking says would-block, naming the call.
        let e = recv_mmsg(
            rx.as_fd(),
            &mut rxb,
            slots.chunks_exact_mut(32),
            libc::MSG_DONTWAIT,
        )
        .unwrap_err();
        assert!(e.would_block());
        assert_eq!(e.call, "recvmmsg");
        // Connected sender: destination None.
        tx.connect(dest).unwrap();
        assert_eq!(
            send_mmsg(tx.as_fd(), &mut txb, [(&b"xyz"[..], None)], 0).unwrap(),
            1
        );
        assert_eq!(
            recv_mmsg(rx.as_fd(), &mut rxb, slots.chunks_exact_mut(32), 0).unwrap(),
            1
        );
        assert_eq!(rxb.info(0).len, 3);
        // An unconnected socket without a destination: the error names sendmmsg.
        let lone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = send_mmsg(lone.as_fd(), &mut txb, [(&b"x"[..], None)], 0).unwrap_err();
        assert_eq!(e.call, "sendmmsg");
        assert_eq!(e.errno(), Some(libc::EDESTADDRREQ));
    }

    #[test]
    fn mmsg_batch_more_than_capacity_sends_capacity() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = rx.local_addr().unwrap();
        let mut b = MmsgBatch::new(3, false);
        let sent = send_mmsg(
            tx.as_fd(),
            &mut b,
            (0..10).map(|_| (&b"z"[..], Some(dest))),
            0,
        )
        .unwrap();
        assert_eq!(sent, 3);
        assert!(std::panic::catch_unwind(|| MmsgBatch::new(0, false)).is_err());
        assert!(std::panic::catch_unwind(|| MmsgBatch::new(MMSG_MAX_BATCH + 1, false)).is_err());
    }
}
