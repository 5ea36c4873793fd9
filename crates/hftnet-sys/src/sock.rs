//! Socket system calls: integer socket options named by a table, `recvmsg`
//! with truncation and receive-timestamp detection, `sendto`, batched
//! `recvmmsg` / `sendmmsg`, stream reads and writes, and a one-socket epoll
//! waiter.
//!
//! Layer: the bottom of the kernel-socket transports in `hftnet-io`. Every
//! function takes a borrowed file descriptor and returns a [`SyscallError`]
//! naming the call (and option) that failed. Nothing here allocates per call:
//! the single-message receive keeps its control-message buffer on the stack,
//! and the batched calls reuse the headers of an [`MmsgBatch`] allocated once,
//! so a transport built on them can receive and send without touching the heap.
//!
//! Option numbers are the Linux asm-generic values (x86-64, arm64, riscv64),
//! written out here because the `libc` crate does not export all of them for
//! every target.

use std::mem::{self, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Result, SyscallError, cvt, cvt_size};

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
    /// 64-bit `timespec` layout on every 64-bit target). Use [`set_timestamping`].
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
    /// completions arrive on the error queue, read with [`recv_errqueue`].
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

/// `recvmsg(fd, ..., flags | MSG_TRUNC)`: one datagram into `buf`, with its
/// sender, whether it was truncated, and — when `control` is true and
/// `SO_TIMESTAMPNS` or [`SO_TIMESTAMPING`] is on — its software (and raw
/// hardware) receive stamp. `MSG_DONTWAIT` in
/// `flags` makes it non-blocking. Pass `control = false` when no control
/// message is wanted: the kernel then skips building them.
///
/// Allocation-free: the control buffer lives on the stack.
///
/// # Errors
/// `EAGAIN` (see [`SyscallError::would_block`]) when nothing is queued on a
/// non-blocking call or the receive timeout expired; `EINTR` when interrupted.
pub fn recv_msg(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: libc::c_int,
    control: bool,
) -> Result<RecvInfo> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut cmsg = CmsgSpace([0; 128]);
    // SAFETY: msghdr is plain data; all-zero is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = addr.as_mut_ptr().cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    if control {
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        msg.msg_controllen = cmsg.0.len();
    }
    // SAFETY: every pointer in msg refers to a live local or to `buf`, with the
    // matching length; the kernel writes within those lengths only.
    let ret = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags | libc::MSG_TRUNC) };
    let wire_len = cvt_size("recvmsg", ret)?;
    let len = wire_len.min(buf.len());
    let truncated = msg.msg_flags & libc::MSG_TRUNC != 0 || wire_len > buf.len();
    // SAFETY: the kernel filled msg_namelen bytes of the storage; a zero length
    // (connected stream) leaves it zeroed, which decodes to None.
    let src = unsafe { sockaddr_to_std(addr.as_ptr(), msg.msg_namelen) };
    // SAFETY: msg_control is null or the live `cmsg` buffer the kernel just
    // filled, msg_controllen bytes of it.
    let ts = unsafe { control_stamps(&msg) };
    Ok(RecvInfo {
        len,
        wire_len,
        truncated,
        src,
        rx_ts_ns: ts.sw,
        rx_hw_ts_ns: ts.hw,
    })
}

/// Timestamps and a transmit-timestamp report found among control messages.
#[derive(Debug, Clone, Copy, Default)]
struct ControlStamps {
    /// Software stamp, CLOCK_REALTIME ns.
    sw: Option<u64>,
    /// Raw hardware stamp, ns of the device clock.
    hw: Option<u64>,
    /// `(ee_info, ee_data)` of a `sock_extended_err` from
    /// `SO_EE_ORIGIN_TIMESTAMPING` (error queue only).
    tx: Option<(u32, u32)>,
    /// `(ee_info, ee_data, ee_code)` of a `sock_extended_err` from
    /// `SO_EE_ORIGIN_ZEROCOPY` (error queue only).
    zc: Option<(u32, u32, u8)>,
}

/// `SO_EE_ORIGIN_ZEROCOPY` (`linux/errqueue.h`): a `MSG_ZEROCOPY` completion.
pub const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;
/// `SO_EE_CODE_ZEROCOPY_COPIED`: the kernel copied the data after all.
pub const SO_EE_CODE_ZEROCOPY_COPIED: u8 = 1;

/// Nanoseconds of a kernel `timespec`; `None` for the all-zero "no stamp".
fn timespec_ns(ts: &libc::timespec) -> Option<u64> {
    if ts.tv_sec == 0 && ts.tv_nsec == 0 {
        return None;
    }
    Some((ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64)
}

/// The timestamps among the control messages of a received `msg`:
/// `SCM_TIMESTAMPNS` (software), `SCM_TIMESTAMPING` (`ts[0]` software,
/// `ts[2]` raw hardware) and, from the error queue, the
/// `IP_RECVERR`/`IPV6_RECVERR` extended error that says which transmit
/// stamp it is.
///
/// # Safety
/// `msg.msg_control` must be null or point to `msg.msg_controllen` readable
/// bytes of control messages, as the kernel leaves them after a receive.
unsafe fn control_stamps(msg: &libc::msghdr) -> ControlStamps {
    let mut out = ControlStamps::default();
    if msg.msg_control.is_null() {
        return out;
    }
    let fits = |c: *const libc::cmsghdr, n: usize| -> bool {
        // SAFETY: c is a header the CMSG_* walk below returned, inside the buffer.
        unsafe { (*c).cmsg_len >= libc::CMSG_LEN(n as u32) as usize }
    };
    // SAFETY: per the contract, msg describes a filled control buffer; the
    // CMSG_* macros walk it within msg_controllen, and each header's payload is
    // read (unaligned) only when its length covers the struct read.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let (level, kind) = ((*c).cmsg_level, (*c).cmsg_type);
            if level == libc::SOL_SOCKET
                && kind == SO_TIMESTAMPNS.name
                && fits(c, mem::size_of::<libc::timespec>())
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                out.sw = timespec_ns(&ts);
            } else if level == libc::SOL_SOCKET
                && kind == SO_TIMESTAMPING.name
                && fits(c, 3 * mem::size_of::<libc::timespec>())
            {
                // struct scm_timestamping { struct timespec ts[3]; }
                let ts: [libc::timespec; 3] = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                out.sw = timespec_ns(&ts[0]);
                out.hw = timespec_ns(&ts[2]);
            } else if ((level == libc::SOL_IP && kind == libc::IP_RECVERR)
                || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR))
                && fits(c, mem::size_of::<libc::sock_extended_err>())
            {
                let ee: libc::sock_extended_err =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if ee.ee_errno == libc::ENOMSG as u32
                    && ee.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
                {
                    out.tx = Some((ee.ee_info, ee.ee_data));
                } else if ee.ee_errno == 0 && ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY {
                    out.zc = Some((ee.ee_info, ee.ee_data, ee.ee_code));
                }
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    out
}

/// `SOF_TIMESTAMPING_*` flags of [`SO_TIMESTAMPING`] (`linux/net_tstamp.h`).
pub mod tsflags {
    /// Generate hardware transmit stamps.
    pub const TX_HARDWARE: u32 = 1 << 0;
    /// Generate software transmit stamps (`SCM_TSTAMP_SND`, when the driver
    /// hands the packet to the device).
    pub const TX_SOFTWARE: u32 = 1 << 1;
    /// Generate hardware receive stamps.
    pub const RX_HARDWARE: u32 = 1 << 2;
    /// Generate software receive stamps.
    pub const RX_SOFTWARE: u32 = 1 << 3;
    /// Report software stamps (in `ts[0]`).
    pub const SOFTWARE: u32 = 1 << 4;
    /// Report raw hardware stamps (in `ts[2]`).
    pub const RAW_HARDWARE: u32 = 1 << 6;
    /// Tag each transmit stamp with a per-socket counter of sent datagrams
    /// (`ee_data`), starting at 0 when the flag is set.
    pub const OPT_ID: u32 = 1 << 7;
    /// Generate a software stamp when the packet enters the qdisc (`SCM_TSTAMP_SCHED`).
    pub const TX_SCHED: u32 = 1 << 8;
    /// Generate a stamp when the peer acknowledged all data (TCP only, `SCM_TSTAMP_ACK`).
    pub const TX_ACK: u32 = 1 << 9;
    /// Deliver `IP_PKTINFO`-style control messages with looped transmit stamps.
    pub const OPT_CMSG: u32 = 1 << 10;
    /// Loop only the stamp back to the error queue, not the packet.
    pub const OPT_TSONLY: u32 = 1 << 11;
}

/// `setsockopt(SO_TIMESTAMPING, flags)` with [`tsflags`] bits.
///
/// # Errors
/// `EINVAL` for an unknown flag or `OPT_ID` on a socket type without it;
/// the error names `setsockopt(SO_TIMESTAMPING)`.
pub fn set_timestamping(fd: BorrowedFd<'_>, flags: u32) -> Result<()> {
    set_int(fd, SO_TIMESTAMPING, flags as libc::c_int)
}

/// Which point of the transmit path a [`TxStamp`] marks (`ee_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxStampKind {
    /// `SCM_TSTAMP_SCHED`: the packet entered the queueing discipline.
    Sched,
    /// `SCM_TSTAMP_SND`: the driver handed the packet to the device (software),
    /// or the device sent it (hardware).
    Snd,
    /// `SCM_TSTAMP_ACK`: the peer acknowledged it (TCP).
    Ack,
}

/// One transmit timestamp read from the error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxStamp {
    /// The `SOF_TIMESTAMPING_OPT_ID` counter (`ee_data`): the index of the
    /// datagram among those sent on the socket since OPT_ID was enabled
    /// (0 without OPT_ID).
    pub id: u32,
    /// Which point of the path.
    pub kind: TxStampKind,
    /// Software stamp, CLOCK_REALTIME ns.
    pub sw_ns: Option<u64>,
    /// Raw hardware stamp, ns of the device clock.
    pub hw_ns: Option<u64>,
}

/// A `MSG_ZEROCOPY` completion read from the error queue: the sends
/// numbered `lo..=hi` (the socket's zero-copy send counter, from 0, wrapping)
/// are done and their buffers may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZcCompletion {
    /// First completed send (`ee_info`).
    pub lo: u32,
    /// Last completed send, inclusive (`ee_data`).
    pub hi: u32,
    /// `SO_EE_CODE_ZEROCOPY_COPIED` was set: the kernel copied the data
    /// (loopback, a device without scatter-gather, a local receiver), so the
    /// send paid for the copy and for the completion.
    pub copied: bool,
}

impl ZcCompletion {
    /// Sends covered, `hi - lo + 1` (wrapping).
    #[must_use]
    pub fn count(&self) -> u64 {
        u64::from(self.hi.wrapping_sub(self.lo)) + 1
    }
}

/// One report read from the error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrQueueEvent {
    /// A transmit timestamp.
    TxStamp(TxStamp),
    /// A zero-copy completion.
    ZeroCopy(ZcCompletion),
}

/// Reads one timestamp or zero-copy completion from the socket's error queue
/// (`recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT)`), never blocking. `Ok(None)` when
/// the queue holds neither; other queued errors are read and skipped. A
/// looped packet (timestamps without `OPT_TSONLY`) is truncated into a small
/// stack buffer.
///
/// Allocation-free.
///
/// # Errors
/// Unexpected kernel failures, naming `recvmsg(MSG_ERRQUEUE)`.
pub fn recv_errqueue(fd: BorrowedFd<'_>) -> Result<Option<ErrQueueEvent>> {
    loop {
        let mut data = [0u8; 64];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        let mut cmsg = ErrCmsgSpace([0; 512]);
        // SAFETY: msghdr is plain data; all-zero is a valid (empty) value.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.0.as_mut_ptr().cast();
        msg.msg_controllen = cmsg.0.len();
        // SAFETY: the iovec and control buffer are live locals with their true
        // lengths; no name buffer is passed (msg_name null, length 0).
        let ret = unsafe {
            libc::recvmsg(
                fd.as_raw_fd(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        match cvt_size("recvmsg(MSG_ERRQUEUE)", ret) {
            Ok(_) => {}
            Err(e) if e.would_block() => return Ok(None),
            Err(e) if e.errno() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
        // SAFETY: msg_control points to the live `cmsg` buffer the kernel
        // just filled, msg_controllen bytes of it.
        let st = unsafe { control_stamps(&msg) };
        if let Some((lo, hi, code)) = st.zc {
            return Ok(Some(ErrQueueEvent::ZeroCopy(ZcCompletion {
                lo,
                hi,
                copied: code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
            })));
        }
        let Some((info, id)) = st.tx else {
            continue;
        };
        let kind = match info {
            0 => TxStampKind::Snd,
            1 => TxStampKind::Sched,
            2 => TxStampKind::Ack,
            _ => continue,
        };
        return Ok(Some(ErrQueueEvent::TxStamp(TxStamp {
            id,
            kind,
            sw_ns: st.sw,
            hw_ns: st.hw,
        })));
    }
}

/// Reads one transmit timestamp from the socket's error queue
/// (`recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT)`), never blocking. `Ok(None)`
/// when the queue holds no timestamp; other queued reports (zero-copy
/// completions included) are read and skipped, so do not mix it with
/// [`recv_errqueue`] users on one socket. With `OPT_TSONLY` the message
/// carries no payload; without it the looped packet is truncated into a
/// small stack buffer.
///
/// Allocation-free.
///
/// # Errors
/// Unexpected kernel failures, naming `recvmsg(MSG_ERRQUEUE)`.
pub fn recv_tx_timestamp(fd: BorrowedFd<'_>) -> Result<Option<TxStamp>> {
    loop {
        match recv_errqueue(fd)? {
            None => return Ok(None),
            Some(ErrQueueEvent::TxStamp(t)) => return Ok(Some(t)),
            Some(ErrQueueEvent::ZeroCopy(_)) => {}
        }
    }
}

/// `ppoll(fd, POLLERR, timeout)`: waits until the error queue holds a report
/// (zero-copy completion, timestamp). `EINTR` is `Ok(false)`.
///
/// # Errors
/// Only unexpected kernel failures.
pub fn poll_errqueue(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLERR,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: p is a live pollfd and we pass a count of one; ts is a live
    // timespec; a null signal mask leaves the mask unchanged.
    let ret = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
    match cvt("ppoll(POLLERR)", ret) {
        Ok(n) => Ok(n > 0 && p.revents & libc::POLLERR != 0),
        Err(e) if e.errno() == Some(libc::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Aligned room for an error-queue message's control messages (extended
/// error with its offender address, timestamps, packet info).
#[repr(C, align(8))]
struct ErrCmsgSpace([u8; 512]);

/// `HWTSTAMP_TX_OFF`: no hardware transmit stamps.
pub const HWTSTAMP_TX_OFF: i32 = 0;
/// `HWTSTAMP_TX_ON`: hardware transmit stamps on packets that ask for them.
pub const HWTSTAMP_TX_ON: i32 = 1;
/// `HWTSTAMP_FILTER_NONE`: no hardware receive stamps.
pub const HWTSTAMP_FILTER_NONE: i32 = 0;
/// `HWTSTAMP_FILTER_ALL`: hardware receive stamps on every packet.
pub const HWTSTAMP_FILTER_ALL: i32 = 1;

/// A device's hardware timestamping configuration (`struct hwtstamp_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwTstampConfig {
    /// `HWTSTAMP_TX_*`.
    pub tx_type: i32,
    /// `HWTSTAMP_FILTER_*` (the driver may widen what was asked).
    pub rx_filter: i32,
}

/// `ioctl(fd, req, &ifreq{ifr_data = &hwtstamp_config})` for `iface`.
fn hwtstamp_ioctl(
    fd: BorrowedFd<'_>,
    iface: &str,
    req: libc::c_ulong,
    cfg: &mut libc::hwtstamp_config,
    call: &'static str,
) -> Result<()> {
    let bytes = iface.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(SyscallError::from_errno(call, libc::ENODEV));
    }
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (cfg as *mut libc::hwtstamp_config).cast();
    // SAFETY: ifr is a live ifreq with a NUL-terminated name whose data pointer
    // refers to a live hwtstamp_config; SIOC[SG]HWTSTAMP copy exactly that struct.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, &mut ifr) };
    cvt(call, ret).map(drop)
}

/// `ioctl(SIOCSHWTSTAMP)`: asks `iface` to stamp in hardware; returns what
/// the driver granted (it may widen the receive filter).
///
/// # Errors
/// `EPERM` without CAP_NET_ADMIN, `EOPNOTSUPP` when the device has no
/// hardware timestamping, `ERANGE` for a type or filter it does not offer.
pub fn set_hwtstamp(
    fd: BorrowedFd<'_>,
    iface: &str,
    want: HwTstampConfig,
) -> Result<HwTstampConfig> {
    let mut cfg = libc::hwtstamp_config {
        flags: 0,
        tx_type: want.tx_type,
        rx_filter: want.rx_filter,
    };
    hwtstamp_ioctl(
        fd,
        iface,
        libc::SIOCSHWTSTAMP,
        &mut cfg,
        "ioctl(SIOCSHWTSTAMP)",
    )?;
    Ok(HwTstampConfig {
        tx_type: cfg.tx_type,
        rx_filter: cfg.rx_filter,
    })
}

/// `ioctl(SIOCGHWTSTAMP)`: the hardware timestamping configuration of `iface`.
///
/// # Errors
/// `EOPNOTSUPP` when the device has no hardware timestamping.
pub fn get_hwtstamp(fd: BorrowedFd<'_>, iface: &str) -> Result<HwTstampConfig> {
    let mut cfg = libc::hwtstamp_config {
        flags: 0,
        tx_type: 0,
        rx_filter: 0,
    };
    hwtstamp_ioctl(
        fd,
        iface,
        libc::SIOCGHWTSTAMP,
        &mut cfg,
        "ioctl(SIOCGHWTSTAMP)",
    )?;
    Ok(HwTstampConfig {
        tx_type: cfg.tx_type,
        rx_filter: cfg.rx_filter,
    })
}

/// `recvfrom(fd, buf, flags | MSG_TRUNC, &src)`: one datagram with its sender
/// and whether it was truncated, without control messages. Cheaper than
/// [`recv_msg`] (no `msghdr` or iovec to copy in), so the receive path uses it
/// whenever no timestamp is wanted.
///
/// # Errors
/// As [`recv_msg`].
#[inline]
pub fn recv_from(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> Result<RecvInfo> {
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut addr_len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: buf is a live writable slice of the given length; addr and
    // addr_len are live locals with addr_len holding the storage's size.
    let ret = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_TRUNC,
            addr.as_mut_ptr().cast(),
            &mut addr_len,
        )
    };
    let wire_len = cvt_size("recvfrom", ret)?;
    // SAFETY: the kernel filled addr_len bytes of the zeroed storage.
    let src = unsafe { sockaddr_to_std(addr.as_ptr(), addr_len) };
    Ok(RecvInfo {
        len: wire_len.min(buf.len()),
        wire_len,
        truncated: wire_len > buf.len(),
        src,
        rx_ts_ns: None,
        rx_hw_ts_ns: None,
    })
}

/// `sendto(fd, buf, flags, dest)`; `dest == None` sends on a connected socket.
///
/// # Errors
/// `EAGAIN` when the send buffer is full on a non-blocking socket,
/// `ECONNREFUSED` after an ICMP port unreachable on a connected socket,
/// `EMSGSIZE` when the datagram exceeds what the path allows.
pub fn send_to(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    dest: Option<&SocketAddr>,
    flags: libc::c_int,
) -> Result<usize> {
    let storage = dest.map(std_to_sockaddr);
    let (ptr, len) = match &storage {
        Some((s, l)) => (
            (s as *const libc::sockaddr_storage).cast::<libc::sockaddr>(),
            *l,
        ),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: buf is a live slice; ptr/len describe a live sockaddr_storage or are null/0.
    let ret = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            flags | libc::MSG_NOSIGNAL,
            ptr,
            len,
        )
    };
    cvt_size("sendto", ret)
}

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

/// `recv(fd, buf, flags)` on a stream socket. `Ok(0)` means the peer closed.
///
/// # Errors
/// `EAGAIN` when nothing is buffered on a non-blocking call or the timeout expired.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> Result<usize> {
    // SAFETY: buf is a live, writable slice of the given length.
    let ret = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
    cvt_size("recv", ret)
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

/// `ppoll(fd, POLLIN, timeout)`: waits until `fd` is readable (or, for a
/// listening socket, has a connection to accept), with nanosecond timeout
/// resolution (`None`: forever). `EINTR` is `Ok(false)`.
///
/// # Errors
/// Only unexpected kernel failures.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<std::time::Duration>) -> Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: p is a live pollfd and we pass a count of one; ts_ptr is null or
    // points to a live timespec; a null signal mask leaves the mask unchanged.
    let ret = unsafe { libc::ppoll(&mut p, 1, ts_ptr, std::ptr::null()) };
    match cvt("ppoll", ret) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.errno() == Some(libc::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// An epoll instance watching one file descriptor for readability: the
/// "block" half of the adaptive receive strategy.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)` + `epoll_ctl(ADD, watched, EPOLLIN)`.
    ///
    /// # Errors
    /// `EMFILE`/`ENFILE` when out of descriptors.
    pub fn for_readable(watched: BorrowedFd<'_>) -> Result<Self> {
        // SAFETY: plain syscall without pointers.
        let raw = cvt("epoll_create1", unsafe {
            libc::epoll_create1(libc::EPOLL_CLOEXEC)
        })?;
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open; ev is a live local.
        let ret = unsafe {
            libc::epoll_ctl(
                fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                watched.as_raw_fd(),
                &mut ev,
            )
        };
        cvt("epoll_ctl(EPOLL_CTL_ADD)", ret)?;
        Ok(Self { fd })
    }

    /// `epoll_wait` for up to `timeout_ms` (-1: forever). `Ok(true)` when the
    /// watched descriptor became readable; `EINTR` is reported as `Ok(false)`.
    ///
    /// # Errors
    /// Only unexpected kernel failures (`EBADF`, `EFAULT`).
    pub fn wait(&self, timeout_ms: i32) -> Result<bool> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: ev is a live local with room for the one event we ask for.
        let ret = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), &mut ev, 1, timeout_ms) };
        match cvt("epoll_wait", ret) {
            Ok(n) => Ok(n > 0),
            Err(e) if e.errno() == Some(libc::EINTR) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

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
    fn recv_msg_reports_source_truncation_and_timestamp() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_int(rx.as_fd(), SO_TIMESTAMPNS, 1).unwrap();
        set_recv_timeout(rx.as_fd(), Some(std::time::Duration::from_secs(2))).unwrap();
        let dest = rx.local_addr().unwrap();
        send_to(tx.as_fd(), &[7u8; 100], Some(&dest), 0).unwrap();
        let mut small = [0u8; 10];
        let info = recv_msg(rx.as_fd(), &mut small, 0, true).unwrap();
        assert_eq!(info.len, 10);
        assert_eq!(info.wire_len, 100);
        assert!(info.truncated);
        assert_eq!(info.src, Some(tx.local_addr().unwrap()));
        assert!(info.rx_ts_ns.unwrap() > 1_600_000_000_000_000_000);
        assert_eq!(small, [7u8; 10]);
        // recvfrom reports the same without control messages.
        send_to(tx.as_fd(), &[8u8; 50], Some(&dest), 0).unwrap();
        let info = recv_from(rx.as_fd(), &mut small, 0).unwrap();
        assert_eq!((info.len, info.wire_len, info.truncated), (10, 50, true));
        assert_eq!(info.src, Some(tx.local_addr().unwrap()));
        assert_eq!(info.rx_ts_ns, None);
        // Nothing left: a non-blocking receive says would-block.
        let err = recv_msg(rx.as_fd(), &mut small, libc::MSG_DONTWAIT, false).unwrap_err();
        assert!(err.would_block());
    }

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

    #[test]
    fn msg_zerocopy_completions_count_the_sends_and_report_copies() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_int(tx.as_fd(), SO_ZEROCOPY, 1).unwrap();
        set_recv_timeout(rx.as_fd(), Some(std::time::Duration::from_secs(2))).unwrap();
        let dest = rx.local_addr().unwrap();
        for i in 0..3u8 {
            send_to(tx.as_fd(), &[i; 2000], Some(&dest), libc::MSG_ZEROCOPY).unwrap();
        }
        let mut buf = [0u8; 4096];
        for i in 0..3u8 {
            let info = recv_msg(rx.as_fd(), &mut buf, 0, false).unwrap();
            assert_eq!(&buf[..info.len], &[i; 2000][..]);
        }
        // Completions may be coalesced into ranges: together they cover 0..=2.
        let mut covered = 0u64;
        let mut next = 0u32;
        let t0 = std::time::Instant::now();
        while covered < 3 && t0.elapsed() < std::time::Duration::from_secs(2) {
            poll_errqueue(tx.as_fd(), std::time::Duration::from_millis(100)).unwrap();
            while let Some(ev) = recv_errqueue(tx.as_fd()).unwrap() {
                let ErrQueueEvent::ZeroCopy(c) = ev else {
                    panic!("unexpected {ev:?}");
                };
                assert_eq!(c.lo, next, "{c:?}");
                next = c.hi.wrapping_add(1);
                covered += c.count();
                // Loopback delivers to a local socket: the kernel copies.
                assert!(c.copied, "{c:?}");
            }
        }
        assert_eq!(covered, 3);
        assert_eq!(recv_errqueue(tx.as_fd()).unwrap(), None);
    }

    #[test]
    fn so_timestamping_tx_sched_before_snd_before_peer_rx() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        set_timestamping(rx.as_fd(), tsflags::RX_SOFTWARE | tsflags::SOFTWARE).unwrap();
        set_timestamping(
            tx.as_fd(),
            tsflags::TX_SOFTWARE
                | tsflags::TX_SCHED
                | tsflags::SOFTWARE
                | tsflags::OPT_ID
                | tsflags::OPT_TSONLY
                | tsflags::OPT_CMSG,
        )
        .unwrap();
        set_recv_timeout(rx.as_fd(), Some(std::time::Duration::from_secs(2))).unwrap();
        let dest = rx.local_addr().unwrap();
        let mut buf = [0u8; 64];
        // Receive stamping is switched on host-wide a moment after the first
        // socket asks (a deferred static key): warm up until a datagram is
        // stamped, counting the OPT_ID counter along.
        let mut first = 0u32;
        for _ in 0..200 {
            send_to(tx.as_fd(), b"w", Some(&dest), 0).unwrap();
            first += 1;
            if recv_msg(rx.as_fd(), &mut buf, 0, true)
                .unwrap()
                .rx_ts_ns
                .is_some()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        while recv_tx_timestamp(tx.as_fd()).unwrap().is_some() {}
        for id in first..first + 5 {
            send_to(tx.as_fd(), &[id as u8; 32], Some(&dest), 0).unwrap();
            let info = recv_msg(rx.as_fd(), &mut buf, 0, true).unwrap();
            let peer_rx = info.rx_ts_ns.expect("SCM_TIMESTAMPING ts[0]");
            assert_eq!(info.rx_hw_ts_ns, None, "lo has no hardware clock");
            // Both stamps of this datagram, tagged with its OPT_ID counter.
            let (mut sched, mut snd) = (None, None);
            let t0 = std::time::Instant::now();
            while (sched.is_none() || snd.is_none()) && t0.elapsed().as_secs() < 2 {
                match recv_tx_timestamp(tx.as_fd()).unwrap() {
                    Some(s) => {
                        assert_eq!(s.id, id, "{s:?}");
                        assert_eq!(s.hw_ns, None);
                        match s.kind {
                            TxStampKind::Sched => sched = s.sw_ns,
                            TxStampKind::Snd => snd = s.sw_ns,
                            TxStampKind::Ack => panic!("no ACK stamps on UDP"),
                        }
                    }
                    None => std::thread::yield_now(),
                }
            }
            let (sched, snd) = (sched.expect("SCHED stamp"), snd.expect("SND stamp"));
            assert!(sched <= snd, "SCHED {sched} after SND {snd}");
            assert!(snd <= peer_rx, "SND {snd} after the peer's RX {peer_rx}");
            assert!(sched > 1_600_000_000_000_000_000, "CLOCK_REALTIME");
        }
        assert_eq!(
            recv_tx_timestamp(tx.as_fd()).unwrap(),
            None,
            "queue drained"
        );
        // SO_TIMESTAMPNS keeps working beside it (last one set wins the cmsg).
        set_int(rx.as_fd(), SO_TIMESTAMPNS, 1).unwrap();
        send_to(tx.as_fd(), b"x", Some(&dest), 0).unwrap();
        assert!(
            recv_msg(rx.as_fd(), &mut buf, 0, true)
                .unwrap()
                .rx_ts_ns
                .is_some()
        );
    }

    #[test]
    fn hwtstamp_on_loopback_is_not_supported() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = get_hwtstamp(s.as_fd(), "lo").unwrap_err();
        assert_eq!(e.call, "ioctl(SIOCGHWTSTAMP)");
        let want = HwTstampConfig {
            tx_type: HWTSTAMP_TX_ON,
            rx_filter: HWTSTAMP_FILTER_ALL,
        };
        let e = set_hwtstamp(s.as_fd(), "lo", want).unwrap_err();
        assert_eq!(e.call, "ioctl(SIOCSHWTSTAMP)");
        assert!(
            matches!(
                e.errno(),
                Some(libc::EOPNOTSUPP | libc::EPERM | libc::EINVAL)
            ),
            "{e}"
        );
        assert_eq!(
            set_hwtstamp(s.as_fd(), "", want).unwrap_err().errno(),
            Some(libc::ENODEV)
        );
    }

    #[test]
    fn epoll_sees_readable() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ep = Epoll::for_readable(rx.as_fd()).unwrap();
        assert!(!ep.wait(0).unwrap());
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        assert!(ep.wait(2000).unwrap());
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
