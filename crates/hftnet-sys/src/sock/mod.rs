//! Socket system calls: integer socket options named by a table, `recvmsg`
//! with truncation and receive-timestamp detection, `sendto`, batched
//! `recvmmsg` / `sendmmsg`, stream reads and writes, and waits for
//! readiness (epoll, `ppoll`).
//!
//! Layer: the bottom of the kernel-socket transports in `hftnet-io`. Every
//! function takes a borrowed file descriptor and returns a [`SyscallError`]
//! naming the call (and option) that failed. Nothing here allocates per call:
//! the single-message receive keeps its control-message buffer on the stack,
//! and the batched calls reuse the headers of an [`MmsgBatch`] allocated once,
//! so a transport built on them can receive and send without touching the heap.
//!
//! The module is split by call family, every item re-exported here so that
//! it is `hftnet_sys::sock::X`:
//! - `opt`: socket options (the [`IntOpt`] table, [`set_int`] / [`get_int`],
//!   buffer sizes, [`set_recv_timeout`], device binding, multicast
//!   membership) and interface lookups;
//! - `msg`: one message per call — [`recv_msg`] and its control-message
//!   parsing, [`recv_from`], [`send_to`], [`recv`], the error queue
//!   (transmit timestamps, zero-copy completions), timestamping set-up, and
//!   the zero-length AF_XDP calls [`xdp_tx_kick`] and [`xdp_busy_poll`];
//! - `mmsg`: many messages per call ([`recv_mmsg`], [`send_mmsg`],
//!   [`MmsgBatch`]);
//! - `epoll`: waiting ([`Epoll`], [`poll_readable`], [`poll_errqueue`]).
//!
//! This file holds what they share: [`RecvInfo`], the aligned control
//! buffer, and the conversions between `std` and kernel socket addresses.
//!
//! Option numbers are the Linux asm-generic values (x86-64, arm64, riscv64),
//! written out because the `libc` crate does not export all of them for
//! every target.
//!
//! Must never: allocate on a receive or send path, retry anything but
//! `EINTR` behind the caller's back, or panic on what the kernel returns.

use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

#[cfg(doc)]
use crate::SyscallError;

mod epoll;
mod mmsg;
mod msg;
mod opt;

pub use epoll::{Epoll, PollSet, poll_errqueue, poll_readable};
pub use mmsg::{MMSG_MAX_BATCH, MmsgBatch, recv_mmsg, send_mmsg};
pub use msg::{
    ControlInfo, ErrQueueEvent, HWTSTAMP_FILTER_ALL, HWTSTAMP_FILTER_NONE, HWTSTAMP_TX_OFF,
    HWTSTAMP_TX_ON, HwTstampConfig, SO_EE_CODE_ZEROCOPY_COPIED, SO_EE_ORIGIN_ZEROCOPY, TxStamp,
    TxStampKind, ZcCompletion, get_hwtstamp, parse_control, recv, recv_errqueue, recv_from,
    recv_msg, recv_tx_timestamp, send_to, set_hwtstamp, set_timestamping, tsflags, xdp_busy_poll,
    xdp_tx_kick,
};
pub use opt::{
    IP_MULTICAST_LOOP, IP_MULTICAST_TTL, IP_TOS, IntOpt, SO_BUSY_POLL, SO_BUSY_POLL_BUDGET,
    SO_ERROR, SO_INCOMING_CPU, SO_INCOMING_NAPI_ID, SO_KEEPALIVE, SO_PREFER_BUSY_POLL, SO_PRIORITY,
    SO_RCVBUF, SO_RCVBUFFORCE, SO_REUSEADDR, SO_REUSEPORT, SO_SNDBUF, SO_SNDBUFFORCE,
    SO_TIMESTAMPING, SO_TIMESTAMPNS, SO_ZEROCOPY, TCP_CORK, TCP_KEEPCNT, TCP_KEEPIDLE,
    TCP_KEEPINTVL, TCP_NODELAY, TCP_QUICKACK, bind_to_device, get_int, if_index, if_ipv4_addr,
    multicast_if, multicast_membership, set_int, set_recv_timeout, source_membership,
};

/// What [`recv_msg`] learned about one received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvInfo {
    /// Bytes placed in the buffer.
    pub len: usize,
    /// Size of the datagram on the wire; larger than `len` when truncated.
    pub wire_len: usize,
    /// The datagram did not fit the buffer (`MSG_TRUNC`); its tail was dropped.
    pub truncated: bool,
    /// Sender address, when the socket reports one.
    pub src: Option<SocketAddr>,
    /// Kernel software receive time (`SCM_TIMESTAMPNS`, or `ts[0]` of
    /// `SCM_TIMESTAMPING`), CLOCK_REALTIME ns.
    pub rx_ts_ns: Option<u64>,
    /// Raw hardware receive time (`ts[2]` of `SCM_TIMESTAMPING`), ns of the
    /// device's clock (not CLOCK_REALTIME unless that clock is disciplined to it).
    pub rx_hw_ts_ns: Option<u64>,
}

/// Aligned room for the control messages we ask for.
#[repr(C, align(8))]
struct CmsgSpace([u8; 128]);

/// Decodes a kernel socket address.
///
/// # Safety
/// `addr` must point to at least `len` initialised bytes of a socket address
/// (a `sockaddr_storage` is always large enough).
unsafe fn sockaddr_to_std(
    addr: *const libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    if (len as usize) < mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: the caller guarantees the family field is initialised.
    let family = unsafe { (*addr).ss_family } as libc::c_int;
    match family {
        libc::AF_INET if len as usize >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: family and length say this is a sockaddr_in.
            let a = unsafe { &*addr.cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: family and length say this is a sockaddr_in6.
            let a = unsafe { &*addr.cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Encodes a socket address for the kernel.
fn std_to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), sin) };
            mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), sin6) };
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_round_trip_through_the_kernel_layout() {
        for addr in [
            SocketAddr::from(([198, 18, 0, 1], 9000)),
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                443,
                7,
                3,
            )),
        ] {
            let (storage, len) = std_to_sockaddr(&addr);
            // SAFETY: `storage` holds `len` initialised bytes of an address.
            let back = unsafe { sockaddr_to_std(&raw const storage, len) };
            assert_eq!(back, Some(addr));
            // SAFETY: as above; a shorter length than the family needs.
            let short = unsafe { sockaddr_to_std(&raw const storage, len - 1) };
            assert_eq!(short, None);
        }
        let (storage, _) = std_to_sockaddr(&SocketAddr::from(([127, 0, 0, 1], 1)));
        // SAFETY: a length of 0 reads nothing.
        assert_eq!(unsafe { sockaddr_to_std(&raw const storage, 0) }, None);
        let (mut storage, len) = std_to_sockaddr(&SocketAddr::from(([127, 0, 0, 1], 1)));
        storage.ss_family = libc::AF_UNIX as libc::sa_family_t;
        // SAFETY: as above; an unknown family decodes to None.
        assert_eq!(unsafe { sockaddr_to_std(&raw const storage, len) }, None);
    }
}
