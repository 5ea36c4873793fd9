//! Socket options and interface lookups: the table of integer options
//! ([`IntOpt`] and its constants), `setsockopt` / `getsockopt` of an `int`,
//! buffer sizes, the receive timeout, device binding, multicast membership
//! and the multicast interface, and the index and IPv4 address of an
//! interface by name.
//!
//! Layer: part of [`sock`](super), called when a socket is opened and
//! configured, not per message.
//!
//! Invariants: every failure names the call and the option
//! (`"setsockopt(SO_BUSY_POLL)"`), so a refused privileged value can be told
//! apart from a missing feature; interface names are checked for length and
//! NUL bytes before they reach the kernel.
//!
//! Must never: silently clamp or retry a value the kernel refused.

use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Result, SyscallError, cvt};

/// An integer socket option: its level, its number and the names used in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntOpt {
    /// `level` argument of `setsockopt` (`SOL_SOCKET`, `IPPROTO_IP`, ...).
    pub level: libc::c_int,
    /// Option number.
    pub name: libc::c_int,
    /// The call named when setting it fails, e.g. `"setsockopt(SO_BUSY_POLL)"`.
    pub set_call: &'static str,
    /// The call named when reading it fails.
    pub get_call: &'static str,
}

macro_rules! int_opts {
    ($($(#[$doc:meta])* $id:ident = ($level:expr, $num:expr);)*) => {
        $(
            $(#[$doc])*
            pub const $id: IntOpt = IntOpt {
                level: $level,
                name: $num,
                set_call: concat!("setsockopt(", stringify!($id), ")"),
                get_call: concat!("getsockopt(", stringify!($id), ")"),
            };
        )*
    };
}

int_opts! {
    /// Allow binding an address in TIME_WAIT or shared by multicast receivers.
    SO_REUSEADDR = (libc::SOL_SOCKET, 2);
    /// Let several sockets bind the same address and port (kernel load-balances).
    SO_REUSEPORT = (libc::SOL_SOCKET, 15);
    /// Queueing priority of sent packets (0..=6 without CAP_NET_ADMIN).
    SO_PRIORITY = (libc::SOL_SOCKET, 12);
    /// Receive buffer size; the kernel doubles it and clamps it at `rmem_max`.
    SO_RCVBUF = (libc::SOL_SOCKET, 8);
    /// Send buffer size; the kernel doubles it and clamps it at `wmem_max`.
    SO_SNDBUF = (libc::SOL_SOCKET, 7);
    /// Receive buffer size ignoring `rmem_max` (needs CAP_NET_ADMIN).
    SO_RCVBUFFORCE = (libc::SOL_SOCKET, 33);
    /// Send buffer size ignoring `wmem_max` (needs CAP_NET_ADMIN).
    SO_SNDBUFFORCE = (libc::SOL_SOCKET, 32);
    /// Software receive timestamps as `SCM_TIMESTAMPNS` control messages.
    SO_TIMESTAMPNS = (libc::SOL_SOCKET, 35);
    /// Software and hardware receive and transmit timestamps, chosen by the
    /// `SOF_TIMESTAMPING_*` flags of the value (`SO_TIMESTAMPING_OLD`: the
    /// 64-bit `timespec` layout on every 64-bit target). Use [`set_timestamping`](super::set_timestamping).
    SO_TIMESTAMPING = (libc::SOL_SOCKET, 37);
    /// CPU whose queue delivered the last packet; settable as a steering hint.
    SO_INCOMING_CPU = (libc::SOL_SOCKET, 49);
    /// Microseconds to busy-poll the device queue on a blocking receive.
    SO_BUSY_POLL = (libc::SOL_SOCKET, 46);
    /// NAPI id of the queue that delivered the last packet (0: none).
    SO_INCOMING_NAPI_ID = (libc::SOL_SOCKET, 56);
    /// Prefer busy polling over interrupts (kernel 5.11+).
    SO_PREFER_BUSY_POLL = (libc::SOL_SOCKET, 69);
    /// Packets processed per busy-poll round (kernel 5.11+; raising it needs CAP_NET_ADMIN).
    SO_BUSY_POLL_BUDGET = (libc::SOL_SOCKET, 70);
    /// Pending socket error, cleared by reading it.
    SO_ERROR = (libc::SOL_SOCKET, 4);
    /// Type of service / DSCP byte of sent IPv4 packets.
    IP_TOS = (libc::IPPROTO_IP, 1);
    /// Loop sent multicast back to local receivers.
    IP_MULTICAST_LOOP = (libc::IPPROTO_IP, 34);
    /// TTL of sent multicast.
    IP_MULTICAST_TTL = (libc::IPPROTO_IP, 33);
    /// Disable Nagle's algorithm.
    TCP_NODELAY = (libc::IPPROTO_TCP, 1);
    /// Send ACKs at once; the kernel clears it again, so re-arm after reads.
    TCP_QUICKACK = (libc::IPPROTO_TCP, 12);
    /// Hold partial frames until uncorked.
    TCP_CORK = (libc::IPPROTO_TCP, 3);
    /// Seconds of idle before keepalive probes.
    TCP_KEEPIDLE = (libc::IPPROTO_TCP, 4);
    /// Seconds between keepalive probes.
    TCP_KEEPINTVL = (libc::IPPROTO_TCP, 5);
    /// Keepalive probes before the connection is dropped.
    TCP_KEEPCNT = (libc::IPPROTO_TCP, 6);
    /// Allow `MSG_ZEROCOPY` sends (kernel 4.14+ for TCP, 5.0+ for UDP);
    /// completions arrive on the error queue, read with [`recv_errqueue`](super::recv_errqueue).
    SO_ZEROCOPY = (libc::SOL_SOCKET, 60);
    /// Enable keepalive probes.
    SO_KEEPALIVE = (libc::SOL_SOCKET, 9);
}

/// `setsockopt(fd, opt.level, opt.name, &value, sizeof(int))`.
///
/// # Errors
/// The kernel's refusal, naming the option (`EPERM` for a privileged value,
/// `ENOPROTOOPT` for an option this kernel lacks, `EINVAL` for a bad value).
pub fn set_int(fd: BorrowedFd<'_>, opt: IntOpt, value: libc::c_int) -> Result<()> {
    // SAFETY: the pointer is to a live c_int and the length is its size.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            opt.level,
            opt.name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(opt.set_call, ret).map(drop)
}

/// `getsockopt(fd, opt.level, opt.name, &value, &len)` for an `int` option.
///
/// # Errors
/// The kernel's refusal, naming the option.
pub fn get_int(fd: BorrowedFd<'_>, opt: IntOpt) -> Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are live locals; len holds the size of value.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            opt.level,
            opt.name,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    cvt(opt.get_call, ret).map(|_| value)
}

/// `setsockopt(fd, level, name, value, sizeof(T))` for an option whose value is
/// a plain C struct (`ip_mreqn`, `timeval`, ...).
fn set_struct<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    call: &'static str,
) -> Result<()> {
    // SAFETY: the pointer is a live reference to a T and the length is its size;
    // the kernel only reads those bytes.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(call, ret).map(drop)
}

/// `setsockopt(SO_BINDTODEVICE)`: receive and send only through `ifname`.
///
/// # Errors
/// `ENODEV` for an unknown interface, `EPERM` without CAP_NET_RAW on old kernels.
pub fn bind_to_device(fd: BorrowedFd<'_>, ifname: &str) -> Result<()> {
    let bytes = ifname.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(SyscallError::from_errno(
            "setsockopt(SO_BINDTODEVICE)",
            libc::EINVAL,
        ));
    }
    // SAFETY: the pointer and length describe the name's bytes; the kernel copies
    // at most IFNAMSIZ bytes and does not need a terminating NUL when given the length.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            bytes.as_ptr().cast(),
            bytes.len() as libc::socklen_t,
        )
    };
    cvt("setsockopt(SO_BINDTODEVICE)", ret).map(drop)
}

/// Joins (or leaves) an IPv4 multicast group on an interface given by index
/// (`IP_ADD_MEMBERSHIP` / `IP_DROP_MEMBERSHIP` with `struct ip_mreqn`).
///
/// `ifindex == 0` lets the kernel choose the interface by route.
///
/// # Errors
/// `ENODEV` when no route or interface fits, `EADDRINUSE` when already joined.
pub fn multicast_membership(
    fd: BorrowedFd<'_>,
    group: Ipv4Addr,
    ifindex: u32,
    join: bool,
) -> Result<()> {
    let mreq = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(group).to_be(),
        },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    let (name, call) = if join {
        (libc::IP_ADD_MEMBERSHIP, "setsockopt(IP_ADD_MEMBERSHIP)")
    } else {
        (libc::IP_DROP_MEMBERSHIP, "setsockopt(IP_DROP_MEMBERSHIP)")
    };
    set_struct(fd, libc::IPPROTO_IP, name, &mreq, call)
}

/// Joins (or leaves) a source-specific multicast channel
/// (`IP_ADD_SOURCE_MEMBERSHIP` / `IP_DROP_SOURCE_MEMBERSHIP`, `struct ip_mreq_source`).
///
/// `interface` is the local address of the interface to join on
/// (`0.0.0.0` lets the kernel choose).
///
/// # Errors
/// As [`multicast_membership`].
pub fn source_membership(
    fd: BorrowedFd<'_>,
    group: Ipv4Addr,
    source: Ipv4Addr,
    interface: Ipv4Addr,
    join: bool,
) -> Result<()> {
    let mreq = libc::ip_mreq_source {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(group).to_be(),
        },
        imr_interface: libc::in_addr {
            s_addr: u32::from(interface).to_be(),
        },
        imr_sourceaddr: libc::in_addr {
            s_addr: u32::from(source).to_be(),
        },
    };
    let (name, call) = if join {
        (
            libc::IP_ADD_SOURCE_MEMBERSHIP,
            "setsockopt(IP_ADD_SOURCE_MEMBERSHIP)",
        )
    } else {
        (
            libc::IP_DROP_SOURCE_MEMBERSHIP,
            "setsockopt(IP_DROP_SOURCE_MEMBERSHIP)",
        )
    };
    set_struct(fd, libc::IPPROTO_IP, name, &mreq, call)
}

/// Sets the interface multicast is sent from (`IP_MULTICAST_IF` with `ip_mreqn`).
///
/// # Errors
/// `ENODEV` for an unknown interface index.
pub fn multicast_if(fd: BorrowedFd<'_>, ifindex: u32) -> Result<()> {
    let mreq = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    set_struct(
        fd,
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        &mreq,
        "setsockopt(IP_MULTICAST_IF)",
    )
}

/// `if_nametoindex(name)`: the index of an interface in the calling thread's
/// network namespace.
///
/// # Errors
/// `ENODEV` when there is no such interface.
pub fn if_index(name: &str) -> Result<u32> {
    let mut buf = [0u8; libc::IFNAMSIZ];
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= buf.len() || bytes.contains(&0) {
        return Err(SyscallError::from_errno("if_nametoindex", libc::ENODEV));
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: buf is NUL-terminated (zeroed beyond the name).
    let idx = unsafe { libc::if_nametoindex(buf.as_ptr().cast()) };
    if idx == 0 {
        Err(SyscallError::last("if_nametoindex"))
    } else {
        Ok(idx)
    }
}

/// The primary IPv4 address of interface `name` (`ioctl(SIOCGIFADDR)`), for
/// calls such as `IP_ADD_SOURCE_MEMBERSHIP` that name an interface by address.
///
/// # Errors
/// `ENODEV` for an unknown interface, `EADDRNOTAVAIL` when it has no IPv4 address.
pub fn if_ipv4_addr(name: &str) -> Result<Ipv4Addr> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(SyscallError::from_errno("ioctl(SIOCGIFADDR)", libc::ENODEV));
    }
    // SAFETY: plain syscall without pointers.
    let raw = cvt("socket", unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: raw is a fresh descriptor we own; OwnedFd closes it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: req is a live ifreq with a NUL-terminated name; SIOCGIFADDR writes
    // a sockaddr into its union, which is large enough for one.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFADDR, &mut req) };
    cvt("ioctl(SIOCGIFADDR)", ret)?;
    // SAFETY: the kernel stored a sockaddr_in (AF_INET socket) in ifru_addr;
    // sockaddr and sockaddr_in have the same size.
    let sin: libc::sockaddr_in =
        unsafe { std::ptr::read_unaligned((&raw const req.ifr_ifru.ifru_addr).cast()) };
    Ok(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
}

/// Sets `SO_RCVTIMEO`: a blocking receive returns `EAGAIN` after `timeout`
/// (`None`: wait forever).
///
/// # Errors
/// `EDOM` for a timeout too large for the kernel.
pub fn set_recv_timeout(fd: BorrowedFd<'_>, timeout: Option<std::time::Duration>) -> Result<()> {
    let tv = match timeout {
        Some(t) => libc::timeval {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            // Round a sub-microsecond timeout up so it never means "forever".
            tv_usec: if t.as_secs() == 0 && t.subsec_micros() == 0 && !t.is_zero() {
                1
            } else {
                t.subsec_micros() as libc::suseconds_t
            },
        },
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    set_struct(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVTIMEO,
        &tv,
        "setsockopt(SO_RCVTIMEO)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn int_option_round_trip_and_error_names_option() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_int(s.as_fd(), SO_PRIORITY, 3).unwrap();
        assert_eq!(get_int(s.as_fd(), SO_PRIORITY).unwrap(), 3);
        // TCP_NODELAY on a UDP socket is refused; the error names the option.
        let err = set_int(s.as_fd(), TCP_NODELAY, 1).unwrap_err();
        assert_eq!(err.call, "setsockopt(TCP_NODELAY)");
        assert!(err.to_string().contains("TCP_NODELAY"));
    }

    #[test]
    fn bad_interface_names_are_refused() {
        assert!(if_index("no-such-if0").is_err());
        assert!(if_index("").is_err());
        assert_eq!(if_index("lo").unwrap(), 1);
        assert_eq!(if_ipv4_addr("lo").unwrap(), Ipv4Addr::LOCALHOST);
        assert!(if_ipv4_addr("no-such-if0").is_err());
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = bind_to_device(s.as_fd(), "a-name-far-too-long-for-linux").unwrap_err();
        assert_eq!(e.call, "setsockopt(SO_BINDTODEVICE)");
    }
}
