//! One message per call: `recvmsg` with its control messages (truncation,
//! software and hardware receive stamps), `recvfrom`, `sendto`, `recv`; the
//! error queue (transmit timestamps, `MSG_ZEROCOPY` completions) and the
//! set-up of timestamping (`SO_TIMESTAMPING` flags, `SIOCSHWTSTAMP`); and the
//! two zero-length calls that drive an AF_XDP socket ([`xdp_tx_kick`],
//! [`xdp_busy_poll`]).
//!
//! Layer: part of [`sock`](super), on the receive and send paths of the
//! kernel-socket transports and of the AF_XDP rings.
//!
//! Invariants: nothing here allocates; control buffers live on the stack and
//! are aligned for `cmsghdr`; control messages are read in safe code from
//! the `msg_controllen` bytes the kernel wrote (the walk of `CMSG_NXTHDR`,
//! stopping at a header that runs past them), each only when its length
//! covers the structure read ([`parse_control`] is that code, for tests and
//! fuzzing); a datagram longer than the buffer is reported as truncated with its real
//! length (`MSG_TRUNC`), never silently cut.
//!
//! Must never: block when the caller asked for `MSG_DONTWAIT`, or read past
//! what the kernel wrote.

use std::mem::{self, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::opt::{SO_TIMESTAMPING, SO_TIMESTAMPNS, set_int};
use super::{CmsgSpace, RecvInfo, sockaddr_to_std, std_to_sockaddr};
use crate::error::{Result, SyscallError, cvt, cvt_size};

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
pub(super) struct ControlStamps {
    /// Software stamp, CLOCK_REALTIME ns.
    pub(super) sw: Option<u64>,
    /// Raw hardware stamp, ns of the device clock.
    pub(super) hw: Option<u64>,
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

/// Nanoseconds of a kernel `timespec` (`tv_sec`, `tv_nsec`); `None` for the
/// all-zero "no stamp", and for a value no clock gives (a negative second,
/// nanoseconds outside `0..1e9`, or more nanoseconds than a `u64` holds).
fn timespec_ns(tv_sec: i64, tv_nsec: i64) -> Option<u64> {
    if tv_sec == 0 && tv_nsec == 0 {
        return None;
    }
    let sec = u64::try_from(tv_sec).ok()?;
    let nsec = u64::try_from(tv_nsec).ok().filter(|&n| n < 1_000_000_000)?;
    sec.checked_mul(1_000_000_000)?.checked_add(nsec)
}

// The control messages are read from bytes with the 64-bit Linux layouts below.
const _: () = assert!(mem::size_of::<libc::timespec>() == 16);
const _: () = assert!(mem::size_of::<libc::sock_extended_err>() == 16);
const _: () = assert!(mem::size_of::<libc::cmsghdr>() == 16);

/// `CMSG_ALIGN`: control messages start at multiples of `sizeof(size_t)`.
const fn cmsg_align(n: usize) -> usize {
    let a = mem::size_of::<usize>();
    (n + a - 1) & !(a - 1)
}

/// The control messages in `control` as `(cmsg_level, cmsg_type, data)`, in
/// the order of the `CMSG_FIRSTHDR` / `CMSG_NXTHDR` walk, in safe code: the
/// walk stops at a header whose `cmsg_len` is shorter than a header or runs
/// past the end of the buffer, so no data is ever read from outside it.
fn cmsgs(control: &[u8]) -> impl Iterator<Item = (i32, i32, &[u8])> {
    const HDR: usize = mem::size_of::<libc::cmsghdr>();
    let mut rest = control;
    std::iter::from_fn(move || {
        let hdr = rest.get(..HDR)?;
        let len = usize::from_ne_bytes(hdr[..8].try_into().ok()?);
        let level = i32::from_ne_bytes(hdr[8..12].try_into().ok()?);
        let kind = i32::from_ne_bytes(hdr[12..16].try_into().ok()?);
        if len < HDR || len > rest.len() {
            rest = &[];
            return None;
        }
        let data = &rest[cmsg_align(HDR)..len];
        rest = rest.get(cmsg_align(len)..).unwrap_or(&[]);
        Some((level, kind, data))
    })
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    i64::from_ne_bytes(v)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(v)
}

/// The timestamps among the control messages in `control`:
/// `SCM_TIMESTAMPNS` (software), `SCM_TIMESTAMPING` (`ts[0]` software,
/// `ts[2]` raw hardware) and, from the error queue, the
/// `IP_RECVERR`/`IPV6_RECVERR` extended error that says which transmit
/// stamp it is. A message shorter than the structure it carries is skipped.
fn parse_stamps(control: &[u8]) -> ControlStamps {
    const TS: usize = mem::size_of::<libc::timespec>();
    let mut out = ControlStamps::default();
    for (level, kind, data) in cmsgs(control) {
        let ts = |i: usize| timespec_ns(i64_at(data, i * TS), i64_at(data, i * TS + 8));
        if level == libc::SOL_SOCKET && kind == SO_TIMESTAMPNS.name && data.len() >= TS {
            out.sw = ts(0);
        } else if level == libc::SOL_SOCKET && kind == SO_TIMESTAMPING.name && data.len() >= 3 * TS
        {
            // struct scm_timestamping { struct timespec ts[3]; }
            out.sw = ts(0);
            out.hw = ts(2);
        } else if ((level == libc::SOL_IP && kind == libc::IP_RECVERR)
            || (level == libc::SOL_IPV6 && kind == libc::IPV6_RECVERR))
            && data.len() >= mem::size_of::<libc::sock_extended_err>()
        {
            // struct sock_extended_err { u32 ee_errno; u8 ee_origin, ee_type,
            // ee_code, ee_pad; u32 ee_info; u32 ee_data; }
            let (errno, origin, code) = (u32_at(data, 0), data[4], data[6]);
            let (info, ee_data) = (u32_at(data, 8), u32_at(data, 12));
            if errno == libc::ENOMSG as u32 && origin == libc::SO_EE_ORIGIN_TIMESTAMPING {
                out.tx = Some((info, ee_data));
            } else if errno == 0 && origin == SO_EE_ORIGIN_ZEROCOPY {
                out.zc = Some((info, ee_data, code));
            }
        }
    }
    out
}

/// The timestamps among the control messages of a received `msg` (see
/// [`parse_stamps`]).
///
/// # Safety
/// `msg.msg_control` must be null or point to `msg.msg_controllen` readable
/// bytes of control messages, as the kernel leaves them after a receive.
pub(super) unsafe fn control_stamps(msg: &libc::msghdr) -> ControlStamps {
    if msg.msg_control.is_null() {
        return ControlStamps::default();
    }
    // SAFETY: per the contract, msg_control points to msg_controllen
    // readable bytes, alive for the duration of this call.
    let control =
        unsafe { std::slice::from_raw_parts(msg.msg_control.cast::<u8>(), msg.msg_controllen) };
    parse_stamps(control)
}

/// The report an error-queue message's control messages carry: a
/// zero-copy completion, or a transmit stamp of a known kind; `None` for
/// anything else (the caller reads on).
fn errqueue_event(st: &ControlStamps) -> Option<ErrQueueEvent> {
    if let Some((lo, hi, code)) = st.zc {
        return Some(ErrQueueEvent::ZeroCopy(ZcCompletion {
            lo,
            hi,
            copied: code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
        }));
    }
    let (info, id) = st.tx?;
    let kind = match info {
        0 => TxStampKind::Snd,
        1 => TxStampKind::Sched,
        2 => TxStampKind::Ack,
        _ => return None,
    };
    Some(ErrQueueEvent::TxStamp(TxStamp {
        id,
        kind,
        sw_ns: st.sw,
        hw_ns: st.hw,
    }))
}

/// What the control messages of one received message say, as
/// [`recv_msg`] and [`recv_errqueue`] read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControlInfo {
    /// The software receive stamp ([`RecvInfo::rx_ts_ns`](super::RecvInfo::rx_ts_ns)).
    pub rx_ts_ns: Option<u64>,
    /// The raw hardware stamp ([`RecvInfo::rx_hw_ts_ns`](super::RecvInfo::rx_hw_ts_ns)).
    pub rx_hw_ts_ns: Option<u64>,
    /// The report [`recv_errqueue`] would return for the message, if it is
    /// one (else it reads on).
    pub errqueue: Option<ErrQueueEvent>,
}

/// Parses a buffer of control messages (`msg_control`, `msg_controllen`
/// bytes of it, laid out as the kernel writes them on 64-bit Linux) with
/// the code the receive calls use. For tests and fuzzing: any bytes are
/// accepted, nothing outside `control` is read, and it never panics.
#[must_use]
pub fn parse_control(control: &[u8]) -> ControlInfo {
    let st = parse_stamps(control);
    ControlInfo {
        rx_ts_ns: st.sw,
        rx_hw_ts_ns: st.hw,
        errqueue: errqueue_event(&st),
    }
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
    /// With `OPT_ID` on a TCP socket: count from the bytes written
    /// (`write_seq`) when the flag was set, not from the bytes acknowledged,
    /// so each stamp's key is the offset of the last byte of its send even
    /// while earlier data is unacknowledged (Linux 6.2 and later).
    pub const OPT_ID_TCP: u32 = 1 << 16;
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
    /// datagram among those sent on the socket since OPT_ID was enabled, or
    /// on a TCP socket the offset of the last byte of the stamped send
    /// among the bytes written since then (wrapping at 2³²); 0 without
    /// OPT_ID.
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
        if let Some(ev) = errqueue_event(&st) {
            return Ok(Some(ev));
        }
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

/// `recv(fd, buf, flags)` on a stream socket. `Ok(0)` means the peer closed.
///
/// # Errors
/// `EAGAIN` when nothing is buffered on a non-blocking call or the timeout expired.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: libc::c_int) -> Result<usize> {
    // SAFETY: buf is a live, writable slice of the given length.
    let ret = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), flags) };
    cvt_size("recv", ret)
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0)`: the transmit kick of an
/// AF_XDP socket. It asks the kernel to process the socket's transmit ring:
/// in copy mode it sends up to its per-call budget (32 frames) and answers
/// `EAGAIN` if more wait; in zero-copy mode it wakes the driver. Needed
/// whenever the transmit ring carries `XDP_RING_NEED_WAKEUP`, and after
/// every submission on a socket bound without `XDP_USE_NEED_WAKEUP`.
///
/// Allocation-free; never blocks.
///
/// # Errors
/// `call = "sendto(AF_XDP kick)"` with the kernel's errno: `EAGAIN` /
/// `ENOBUFS` (budget spent or device queue full: kick again), `EBUSY` (the
/// device dropped the frames), `ENETDOWN` / `ENXIO` (link down, socket not
/// bound), `EOPNOTSUPP` on a socket that is not AF_XDP.
///
/// # References
/// `Documentation/networking/af_xdp.rst` (`XDP_USE_NEED_WAKEUP`);
/// `xsk_sendmsg()` in `net/xdp/xsk.c`.
pub fn xdp_tx_kick(fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: a zero-length send with a null buffer and no address: the
    // kernel reads no user memory; the descriptor is borrowed, so open.
    let ret = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    cvt_size("sendto(AF_XDP kick)", ret).map(drop)
}

/// `recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL)`: the busy-poll receive
/// of an AF_XDP socket. It copies nothing: with `SO_BUSY_POLL` on the socket
/// the kernel polls the device queue (NAPI) from this call, and in zero-copy
/// mode it wakes the driver's receive side. Make it when the receive ring
/// was found empty.
///
/// Allocation-free; never blocks.
///
/// # Errors
/// `call = "recvfrom(AF_XDP busy poll)"` with the kernel's errno: `EAGAIN` /
/// `EWOULDBLOCK` and `EINTR` are ordinary (nothing to do, or a signal);
/// `ENETDOWN` (link down), `ENXIO` (socket not bound), `ENOBUFS` (no
/// receive ring) are not.
///
/// # References
/// `Documentation/networking/af_xdp.rst`; `xsk_recvmsg()` in `net/xdp/xsk.c`.
pub fn xdp_busy_poll(fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: a zero-length receive with a null buffer and no address
    // buffers: the kernel writes no user memory; the descriptor is borrowed,
    // so open.
    let ret = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    cvt_size("recvfrom(AF_XDP busy poll)", ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::super::{SO_ZEROCOPY, poll_errqueue, set_recv_timeout};
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    /// A control buffer of 64 aligned bytes holding one `SCM_TIMESTAMPNS`
    /// of `(sec, nsec)`, its `cmsg_len` covering the stamp.
    fn timestampns_control(sec: i64, nsec: i64) -> CmsgSpace {
        let mut c = CmsgSpace([0; 128]);
        c.0[..8].copy_from_slice(&32usize.to_ne_bytes());
        c.0[8..12].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        c.0[12..16].copy_from_slice(&SO_TIMESTAMPNS.name.to_ne_bytes());
        c.0[16..24].copy_from_slice(&sec.to_ne_bytes());
        c.0[24..32].copy_from_slice(&nsec.to_ne_bytes());
        c
    }

    fn stamps_of(c: &mut CmsgSpace, controllen: usize) -> ControlStamps {
        // SAFETY: msghdr is plain data; all-zero is a valid (empty) value.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_control = c.0.as_mut_ptr().cast();
        msg.msg_controllen = controllen;
        // SAFETY: msg_control points to `c`, 128 readable bytes, and
        // controllen is at most that.
        unsafe { control_stamps(&msg) }
    }

    #[test]
    fn control_messages_are_read_only_within_msg_controllen() {
        let mut c = timestampns_control(1, 2);
        assert_eq!(stamps_of(&mut c, 32).sw, Some(1_000_000_002));
        // The header says 32 bytes but only 20 were written: its stamp lies
        // past what the kernel wrote and must not be read.
        assert_eq!(stamps_of(&mut c, 20).sw, None);
        assert_eq!(stamps_of(&mut c, 31).sw, None);
        assert_eq!(stamps_of(&mut c, 0).sw, None);
    }

    #[test]
    fn impossible_timestamps_are_no_timestamps() {
        // tv_sec = -1, tv_nsec = 1e9 overflowed the nanosecond sum (a panic
        // in debug builds); a time beyond what u64 nanoseconds hold wrapped.
        for (sec, nsec) in [
            (-1, 1_000_000_000),
            (0, -1),
            (1, 1_000_000_000),
            (i64::MAX, 0),
            (18_446_744_074, 0),
        ] {
            let mut c = timestampns_control(sec, nsec);
            assert_eq!(stamps_of(&mut c, 32).sw, None, "({sec}, {nsec})");
        }
        let mut c = timestampns_control(18_446_744_073, 709_551_615);
        assert_eq!(stamps_of(&mut c, 32).sw, Some(u64::MAX));
    }

    #[test]
    fn parse_control_reads_what_the_error_queue_delivers() {
        let cmsg = |level: i32, kind: i32, data: &[u8]| {
            let mut b = (16 + data.len()).to_ne_bytes().to_vec();
            b.extend_from_slice(&level.to_ne_bytes());
            b.extend_from_slice(&kind.to_ne_bytes());
            b.extend_from_slice(data);
            b.resize(cmsg_align(b.len()), 0);
            b
        };
        let ee = |errno: u32, origin: u8, code: u8, info: u32, data: u32| {
            let mut b = errno.to_ne_bytes().to_vec();
            b.extend_from_slice(&[origin, 0, code, 0]);
            b.extend_from_slice(&info.to_ne_bytes());
            b.extend_from_slice(&data.to_ne_bytes());
            b
        };
        let mut ts = Vec::new();
        for (s, n) in [(5i64, 6i64), (0, 0), (7, 8)] {
            ts.extend_from_slice(&s.to_ne_bytes());
            ts.extend_from_slice(&n.to_ne_bytes());
        }
        let mut c = cmsg(libc::SOL_SOCKET, SO_TIMESTAMPING.name, &ts);
        c.extend(cmsg(
            libc::SOL_IP,
            libc::IP_RECVERR,
            &ee(
                libc::ENOMSG as u32,
                libc::SO_EE_ORIGIN_TIMESTAMPING,
                0,
                1,
                42,
            ),
        ));
        let info = parse_control(&c);
        assert_eq!(info.rx_ts_ns, Some(5_000_000_006));
        assert_eq!(info.rx_hw_ts_ns, Some(7_000_000_008));
        assert_eq!(
            info.errqueue,
            Some(ErrQueueEvent::TxStamp(TxStamp {
                id: 42,
                kind: TxStampKind::Sched,
                sw_ns: Some(5_000_000_006),
                hw_ns: Some(7_000_000_008),
            }))
        );
        let z = cmsg(
            libc::SOL_IPV6,
            libc::IPV6_RECVERR,
            &ee(0, SO_EE_ORIGIN_ZEROCOPY, SO_EE_CODE_ZEROCOPY_COPIED, 3, 9),
        );
        assert_eq!(
            parse_control(&z).errqueue,
            Some(ErrQueueEvent::ZeroCopy(ZcCompletion {
                lo: 3,
                hi: 9,
                copied: true
            }))
        );
        // Cut anywhere, the buffer reads as the messages wholly inside it.
        for cut in 0..z.len() {
            assert_eq!(parse_control(&z[..cut]), ControlInfo::default(), "{cut}");
        }
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
    fn xdp_zero_length_calls_name_the_call_and_keep_the_errno() {
        // On a UDP socket the zero-length calls reach the ordinary socket
        // code: a send without a destination is refused, a receive finds
        // nothing. Both errors name the call.
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = xdp_tx_kick(s.as_fd()).unwrap_err();
        assert_eq!(e.call, "sendto(AF_XDP kick)");
        assert_eq!(e.errno(), Some(libc::EDESTADDRREQ));
        let e = xdp_busy_poll(s.as_fd()).unwrap_err();
        assert_eq!(e.call, "recvfrom(AF_XDP busy poll)");
        assert!(e.would_block(), "{e}");
        // A queued datagram is consumed by the zero-length receive (it is
        // truncated to nothing), which succeeds.
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", s.local_addr().unwrap()).unwrap();
        tx.connect(s.local_addr().unwrap()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let got = loop {
            match xdp_busy_poll(s.as_fd()) {
                Ok(()) => break true,
                Err(e) if e.would_block() && std::time::Instant::now() < deadline => {
                    std::thread::yield_now();
                }
                Err(_) => break false,
            }
        };
        assert!(got, "the queued datagram was received");
        // A connected UDP socket accepts a zero-length datagram: the kick succeeds.
        xdp_tx_kick(tx.as_fd()).unwrap();
        let mut buf = [0u8; 8];
        set_recv_timeout(s.as_fd(), Some(std::time::Duration::from_secs(2))).unwrap();
        let info = recv_from(s.as_fd(), &mut buf, 0).unwrap();
        assert_eq!((info.len, info.src), (0, Some(tx.local_addr().unwrap())));
    }
}
