//! The `NETLINK_ROUTE` socket: [`RtNetlink`] sends the requests built by
//! `message` and reads the kernel's answers, and wraps each rtnetlink
//! operation the lab and the layer-2 backends use in one typed method.
//!
//! Layer: the syscall half of [`netlink`](super) and the only file of it with
//! `unsafe` (socket, bind, getsockname, setsockopt, sendto, recvfrom; each
//! block carries its SAFETY line). Building and parsing happen in the safe
//! `message` file.
//!
//! Invariants: requests go out with a fresh sequence number and the socket
//! reads until the kernel's acknowledgement of that number, skipping stale
//! answers and anything not from the kernel (port 0); a reply longer than
//! the receive buffer is an error, never silently cut; `EINTR` is retried.
//!
//! Must never: block forever (the socket has a receive timeout of
//! [`REPLY_TIMEOUT_SECS`]) or act on a namespace other than the one it was
//! created in.

use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::message::{
    LinkInfo, MessageBuilder, Neighbour, Reply, RouteInfo, add_ipv4_address_request,
    add_ipv4_route_request, decode_error, dump_bridge_ports_request, dump_ipv4_addresses_request,
    get_link_by_index_request, get_link_by_name_request, get_neighbour_request, get_route_request,
    neighbour_use_request, new_bridge_request, new_veth_request, parse_address, parse_bridge_port,
    parse_link, parse_neighbour, parse_route, set_link_state_request, set_master_request,
    set_mtu_request, split_messages,
};
use super::uapi::{
    IFNAMSIZ, IfInfoMsg, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NUD_NOARP,
    NUD_PERMANENT, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE,
};
use crate::error::{Result, SyscallError, cvt, cvt_size};

/// How long [`RtNetlink`] waits for the kernel's reply before giving up with
/// `EAGAIN`. The kernel answers rtnetlink requests synchronously; this only
/// bounds the damage of a bug.
pub const REPLY_TIMEOUT_SECS: i64 = 10;

fn check_ifname(call: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() < IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(SyscallError::from_errno(call, libc::EINVAL))
    }
}

/// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC|extra_flags, NETLINK_ROUTE)`,
/// `SO_RCVTIMEO`, `bind` to the multicast `groups` (0: none) with a
/// kernel-chosen port id, in the calling thread's network namespace; returns
/// the socket and its port id.
fn open_route_socket(groups: u32, extra_flags: libc::c_int) -> Result<(OwnedFd, u32)> {
    open_socket(libc::NETLINK_ROUTE, groups, extra_flags)
}

/// As [`open_route_socket`], for netlink `protocol` (`NETLINK_ROUTE`,
/// `NETLINK_GENERIC`).
fn open_socket(
    protocol: libc::c_int,
    groups: u32,
    extra_flags: libc::c_int,
) -> Result<(OwnedFd, u32)> {
    // SAFETY: plain syscall with integer arguments; the fd is owned below.
    let fd = cvt("socket(AF_NETLINK)", unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | extra_flags,
            protocol,
        )
    })?;
    // SAFETY: `socket` succeeded, so `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };

    let timeout = libc::timeval {
        tv_sec: REPLY_TIMEOUT_SECS as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: `timeout` is a valid timeval and the length passed is its size.
    cvt("setsockopt(SO_RCVTIMEO)", unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;

    // SAFETY: sockaddr_nl is plain data for which all-zero bytes are valid.
    let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = groups;
    // SAFETY: `addr` is a valid sockaddr_nl and the length is its size.
    cvt("bind(AF_NETLINK)", unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    let mut len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: `addr` and `len` are valid for writes of the sizes given.
    cvt("getsockname(AF_NETLINK)", unsafe {
        libc::getsockname(fd.as_raw_fd(), (&raw mut addr).cast(), &raw mut len)
    })?;
    Ok((fd, addr.nl_pid))
}

// ---- the socket ----

/// A `NETLINK_ROUTE` socket, bound, with a receive timeout of
/// [`REPLY_TIMEOUT_SECS`]. It acts on the network namespace of the thread that
/// called [`open`](Self::open), for its whole life, whichever thread uses it
/// later; keeping it open keeps that namespace alive.
#[derive(Debug)]
pub struct RtNetlink {
    fd: OwnedFd,
    port_id: u32,
    seq: u32,
    buf: Vec<u8>,
}

impl RtNetlink {
    /// `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE)`, `bind`
    /// (kernel-chosen port id), `SO_RCVTIMEO`, in the calling thread's
    /// current network namespace.
    ///
    /// # Errors
    /// The failing call: `socket(AF_NETLINK)`, `setsockopt(SO_RCVTIMEO)`,
    /// `bind(AF_NETLINK)` or `getsockname(AF_NETLINK)`.
    pub fn open() -> Result<Self> {
        let (fd, port_id) = open_route_socket(0, 0)?;
        Ok(Self {
            fd,
            port_id,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// The descriptor (e.g. to poll it).
    #[must_use]
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// The port id the kernel assigned to this socket.
    #[must_use]
    pub fn port_id(&self) -> u32 {
        self.port_id
    }

    /// Sends `msg` with the next sequence number and reads until the kernel
    /// acknowledges it. Returns the replies that came before the
    /// acknowledgement (e.g. the link of an `RTM_GETLINK`), or an empty list.
    /// A dump (`NLM_F_DUMP`) is not acknowledged even with `NLM_F_ACK`: it
    /// ends with `NLMSG_DONE`, possibly after several datagrams, and returns
    /// every entry.
    ///
    /// # Errors
    /// A negative acknowledgement becomes `SyscallError { call, errno }` with
    /// the kernel's errno (`EEXIST`, `EPERM`, `ENODEV`, ...). Socket errors
    /// name `sendto(AF_NETLINK)` / `recvfrom(AF_NETLINK)` (`EAGAIN` after
    /// [`REPLY_TIMEOUT_SECS`] without an answer); a malformed or truncated
    /// reply gives `call` with `EBADMSG` / `EMSGSIZE`.
    pub fn request(&mut self, call: &'static str, msg: MessageBuilder) -> Result<Vec<Reply>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = msg.finish(seq);
        self.send(&bytes)?;
        let mut replies = Vec::new();
        loop {
            let n = self.recv()?;
            if n > self.buf.len() {
                return Err(SyscallError::from_errno(call, libc::EMSGSIZE));
            }
            let msgs = split_messages(&self.buf[..n])
                .map_err(|_| SyscallError::from_errno(call, libc::EBADMSG))?;
            for m in msgs {
                if m.seq != seq || m.port_id != self.port_id {
                    continue; // stale answer to an earlier request, or not ours
                }
                match m.msg_type {
                    NLMSG_ERROR => {
                        let errno = decode_error(m.payload)
                            .ok_or(SyscallError::from_errno(call, libc::EBADMSG))?;
                        return if errno == 0 {
                            Ok(replies)
                        } else {
                            Err(SyscallError::from_errno(call, errno))
                        };
                    }
                    // The end of a dump carries the dump's own error code
                    // (0, or e.g. EMSGSIZE if an entry did not fit).
                    NLMSG_DONE => {
                        return match decode_error(m.payload).unwrap_or(0) {
                            0 => Ok(replies),
                            errno => Err(SyscallError::from_errno(call, errno)),
                        };
                    }
                    NLMSG_NOOP => {}
                    _ => replies.push(Reply {
                        msg_type: m.msg_type,
                        flags: m.flags,
                        payload: m.payload.to_vec(),
                    }),
                }
            }
        }
    }

    fn send(&self, bytes: &[u8]) -> Result<()> {
        // SAFETY: sockaddr_nl is plain data for which all-zero bytes are valid.
        let mut kernel: libc::sockaddr_nl = unsafe { mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `bytes` is valid for reads of its length; `kernel` is a
            // valid sockaddr_nl and the length passed is its size.
            let ret = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    0,
                    (&raw const kernel).cast(),
                    mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            match cvt_size("sendto(AF_NETLINK)", ret) {
                Err(e) if e.errno() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
                Ok(n) if n != bytes.len() => {
                    return Err(SyscallError::from_errno(
                        "sendto(AF_NETLINK)",
                        libc::EMSGSIZE,
                    ));
                }
                Ok(_) => return Ok(()),
            }
        }
    }

    /// Receives one datagram from the kernel into `self.buf`; returns its real
    /// length (`MSG_TRUNC`), which may exceed the buffer.
    fn recv(&mut self) -> Result<usize> {
        loop {
            // SAFETY: sockaddr_nl is plain data for which all-zero bytes are valid.
            let mut from: libc::sockaddr_nl = unsafe { mem::zeroed() };
            let mut from_len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: `self.buf` is valid for writes of its length; `from` and
            // `from_len` are valid for writes of the sizes given.
            let ret = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                    (&raw mut from).cast(),
                    &raw mut from_len,
                )
            };
            match cvt_size("recvfrom(AF_NETLINK)", ret) {
                Err(e) if e.errno() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
                // Only the kernel (port 0) answers requests; ignore anything else.
                Ok(_) if from.nl_pid != 0 => continue,
                Ok(n) => return Ok(n),
            }
        }
    }

    /// Creates a veth pair: `name` in this socket's namespace, `peer_name` in
    /// the namespace `peer_netns` refers to, both with `mtu` if given. The
    /// peer is created directly in its namespace; nothing appears in any
    /// other. Both ends are left down.
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWLINK(veth)"`: `EEXIST` if a link of either
    /// name exists in its namespace, `EINVAL` for a bad name or MTU,
    /// `EOPNOTSUPP` without the veth driver, `EPERM` without `CAP_NET_ADMIN`.
    pub fn create_veth(
        &mut self,
        name: &str,
        peer_name: &str,
        peer_netns: BorrowedFd<'_>,
        mtu: Option<u32>,
    ) -> Result<()> {
        let call = "rtnetlink RTM_NEWLINK(veth)";
        check_ifname(call, name)?;
        check_ifname(call, peer_name)?;
        self.request(
            call,
            new_veth_request(name, peer_name, peer_netns.as_raw_fd(), mtu),
        )
        .map(drop)
    }

    /// Creates a bridge `name` in this socket's namespace, with IGMP snooping
    /// on or off (see [`new_bridge_request`]); left down.
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWLINK(bridge)"`: `EEXIST` if a link of that
    /// name exists, `EINVAL` for a bad name, `EOPNOTSUPP` without the bridge
    /// driver (`CONFIG_BRIDGE`), `EPERM` without `CAP_NET_ADMIN`.
    pub fn create_bridge(&mut self, name: &str, mcast_snooping: bool) -> Result<()> {
        let call = "rtnetlink RTM_NEWLINK(bridge)";
        check_ifname(call, name)?;
        self.request(call, new_bridge_request(name, mcast_snooping))
            .map(drop)
    }

    /// Makes link `master` (a bridge) the master of link `index`
    /// (`ip link set DEV master BRIDGE`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWLINK(master)"`: `ENODEV`, `EINVAL` if
    /// `master` cannot take ports, `EBUSY` if `index` has a master already, ...
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        self.request(
            "rtnetlink RTM_NEWLINK(master)",
            set_master_request(index, master),
        )
        .map(drop)
    }

    /// Every bridge port of this namespace with its STP state
    /// (`bridge link show`): `(link index, IFLA_BRPORT_STATE)`.
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_GETLINK(AF_BRIDGE)"`: `EOPNOTSUPP` without the
    /// bridge driver, and the socket errors of [`RtNetlink::request`].
    pub fn bridge_port_states(&mut self) -> Result<Vec<(u32, u8)>> {
        let replies = self.request(
            "rtnetlink RTM_GETLINK(AF_BRIDGE)",
            dump_bridge_ports_request(),
        )?;
        Ok(replies
            .iter()
            .filter(|r| r.msg_type == RTM_NEWLINK)
            .filter_map(|r| parse_bridge_port(&r.payload))
            .collect())
    }

    /// Waits until every link of `ports` is a bridge port in the forwarding
    /// state, polling [`RtNetlink::bridge_port_states`] every millisecond.
    /// A port turns forwarding only once the kernel's link watcher has seen
    /// its carrier, which may lag the link going up; frames sent before are
    /// dropped by the bridge.
    ///
    /// # Errors
    /// `call = "rtnetlink wait for bridge ports to forward"` with `ETIMEDOUT`
    /// when `timeout` passes first, and the errors of
    /// [`RtNetlink::bridge_port_states`].
    pub fn wait_bridge_forwarding(
        &mut self,
        ports: &[u32],
        timeout: std::time::Duration,
    ) -> Result<()> {
        let start = std::time::Instant::now();
        loop {
            let states = self.bridge_port_states()?;
            let ready = ports.iter().all(|p| {
                states
                    .iter()
                    .any(|&(i, st)| i == *p && st == super::uapi::BR_STATE_FORWARDING)
            });
            if ready {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(SyscallError::from_errno(
                    "rtnetlink wait for bridge ports to forward",
                    libc::ETIMEDOUT,
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Index of link `name` in this socket's namespace (`RTM_GETLINK`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_GETLINK"`: `ENODEV` if there is no such link,
    /// `EINVAL` for an invalid name, `EBADMSG` for an unexpected reply.
    pub fn link_index(&mut self, name: &str) -> Result<u32> {
        let call = "rtnetlink RTM_GETLINK";
        check_ifname(call, name)?;
        let replies = self.request(call, get_link_by_name_request(name))?;
        replies
            .iter()
            .filter(|r| r.msg_type == RTM_NEWLINK)
            .find_map(|r| IfInfoMsg::parse(&r.payload))
            .and_then(|info| u32::try_from(info.index).ok())
            .ok_or(SyscallError::from_errno(call, libc::EBADMSG))
    }

    /// Sets link `index` up (`ip link set DEV up`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWLINK(up)"`: `ENODEV`, `EPERM`, ...
    pub fn set_link_up(&mut self, index: u32) -> Result<()> {
        self.request(
            "rtnetlink RTM_NEWLINK(up)",
            set_link_state_request(index, true),
        )
        .map(drop)
    }

    /// Sets link `index` down (`ip link set DEV down`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWLINK(down)"`: `ENODEV`, `EPERM`, ...
    pub fn set_link_down(&mut self, index: u32) -> Result<()> {
        self.request(
            "rtnetlink RTM_NEWLINK(down)",
            set_link_state_request(index, false),
        )
        .map(drop)
    }

    /// Sets the MTU of link `index` (`ip link set DEV mtu M`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWLINK(mtu)"`: `EINVAL` if the device refuses the MTU, ...
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        self.request("rtnetlink RTM_NEWLINK(mtu)", set_mtu_request(index, mtu))
            .map(drop)
    }

    /// Adds `addr/prefix_len` on link `index` (`ip addr add A/P brd + dev DEV`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWADDR"`: `EEXIST` if already there, `EINVAL`
    /// for a prefix over 32, `ENODEV`, `EPERM`, ...
    pub fn add_ipv4_address(&mut self, index: u32, addr: Ipv4Addr, prefix_len: u8) -> Result<()> {
        let call = "rtnetlink RTM_NEWADDR";
        if prefix_len > 32 {
            return Err(SyscallError::from_errno(call, libc::EINVAL));
        }
        self.request(call, add_ipv4_address_request(index, addr, prefix_len))
            .map(drop)
    }

    /// Adds the route `dst/prefix_len dev oif` (scope link, main table).
    /// The link must be up (`ENETDOWN` otherwise).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWROUTE"`: `EEXIST`, `ENETDOWN`, `EINVAL`
    /// (e.g. host bits set in `dst`), `ENODEV`, `EPERM`, ...
    pub fn add_ipv4_route(&mut self, dst: Ipv4Addr, prefix_len: u8, oif: u32) -> Result<()> {
        let call = "rtnetlink RTM_NEWROUTE";
        if prefix_len > 32 {
            return Err(SyscallError::from_errno(call, libc::EINVAL));
        }
        self.request(call, add_ipv4_route_request(dst, prefix_len, oif))
            .map(drop)
    }

    /// The route the kernel would use to send to `dst` (`ip route get DST`,
    /// an `RTM_GETROUTE` lookup, not a dump): output interface, gateway and
    /// source address.
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_GETROUTE"`: `ENETUNREACH` / `EHOSTUNREACH` if no
    /// route leads there, `EINVAL` / `EACCES` for blackhole or prohibit
    /// routes, `EBADMSG` for an unexpected reply.
    pub fn route_get(&mut self, dst: Ipv4Addr) -> Result<RouteInfo> {
        let call = "rtnetlink RTM_GETROUTE";
        self.request(call, get_route_request(dst))?
            .iter()
            .filter(|r| r.msg_type == RTM_NEWROUTE)
            .find_map(|r| parse_route(&r.payload))
            .ok_or(SyscallError::from_errno(call, libc::EBADMSG))
    }

    /// The ARP entry of `ip` on link `ifindex` (`ip neigh get IP dev DEV`),
    /// or `None` if the table has none. Needs Linux 5.0 (single-entry
    /// `RTM_GETNEIGH`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_GETNEIGH"`: `ENODEV` for an unknown link,
    /// `EINVAL` / `EOPNOTSUPP` on kernels before 5.0, `EBADMSG` for an
    /// unexpected reply.
    pub fn neighbour(&mut self, ifindex: u32, ip: Ipv4Addr) -> Result<Option<Neighbour>> {
        let call = "rtnetlink RTM_GETNEIGH";
        match self.request(call, get_neighbour_request(ifindex, ip)) {
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
            Ok(replies) => replies
                .iter()
                .filter(|r| r.msg_type == RTM_NEWNEIGH)
                .find_map(|r| parse_neighbour(&r.payload))
                .map(Some)
                .ok_or(SyscallError::from_errno(call, libc::EBADMSG)),
        }
    }

    /// Asks the kernel to resolve `ip` on link `ifindex` without sending any
    /// traffic: an `RTM_NEWNEIGH` with `NTF_USE` (see
    /// [`neighbour_use_request`]) creates the entry if needed and runs
    /// `neigh_event_send()` on it, so a new, incomplete or failed entry goes
    /// to `INCOMPLETE` and an ARP request leaves at once, and a stale one is
    /// re-confirmed. Returns when the request is sent, not when it is
    /// answered: poll [`neighbour`](Self::neighbour). The kernel leaves a
    /// `REACHABLE` entry alone.
    ///
    /// A `PERMANENT` or `NOARP` entry is not touched: the request is not
    /// sent (the entry is read first). Since Linux 5.16 `NTF_USE` clears
    /// `NUD_PERMANENT` (`__neigh_update`: `new = old & ~NUD_PERMANENT`),
    /// which would turn a static ARP entry into a dynamic one.
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_NEWNEIGH(use)"`: `EPERM` without
    /// `CAP_NET_ADMIN`, `ENODEV` for an unknown link, `EINVAL` on a link
    /// that does not resolve addresses; or the errors of
    /// [`neighbour`](Self::neighbour).
    pub fn neighbour_resolve(&mut self, ifindex: u32, ip: Ipv4Addr) -> Result<()> {
        if let Some(n) = self.neighbour(ifindex, ip)?
            && n.state & (NUD_PERMANENT | NUD_NOARP) != 0
        {
            return Ok(());
        }
        self.request(
            "rtnetlink RTM_NEWNEIGH(use)",
            neighbour_use_request(ifindex, ip),
        )
        .map(drop)
    }

    /// Name, MAC address, MTU, flags and type of link `ifindex`
    /// (`ip link show dev DEV`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_GETLINK"`: `ENODEV` if there is no such link,
    /// `EBADMSG` for an unexpected reply.
    pub fn link_info(&mut self, ifindex: u32) -> Result<LinkInfo> {
        let call = "rtnetlink RTM_GETLINK";
        self.request(call, get_link_by_index_request(ifindex))?
            .iter()
            .filter(|r| r.msg_type == RTM_NEWLINK)
            .find_map(|r| parse_link(&r.payload))
            .ok_or(SyscallError::from_errno(call, libc::EBADMSG))
    }

    /// The IPv4 addresses on link `ifindex` with their prefix lengths, in the
    /// kernel's order (primary addresses first), from an `RTM_GETADDR` dump
    /// filtered here. Empty if the link has none or does not exist. A dump
    /// the kernel marks inconsistent (`NLM_F_DUMP_INTR`, addresses changed
    /// meanwhile) is repeated, up to three times.
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_GETADDR"`: the dump's error, or `EINTR` if it
    /// stayed inconsistent.
    pub fn ipv4_addresses(&mut self, ifindex: u32) -> Result<Vec<(Ipv4Addr, u8)>> {
        let call = "rtnetlink RTM_GETADDR";
        for _ in 0..3 {
            let replies = self.request(call, dump_ipv4_addresses_request(ifindex))?;
            if replies.iter().any(|r| r.flags & NLM_F_DUMP_INTR != 0) {
                continue;
            }
            return Ok(replies
                .iter()
                .filter(|r| r.msg_type == RTM_NEWADDR)
                .filter_map(|r| parse_address(&r.payload))
                .filter(|&(index, _, _)| index == ifindex)
                .map(|(_, addr, prefix)| (addr, prefix))
                .collect());
        }
        Err(SyscallError::from_errno(call, libc::EINTR))
    }
}

// ---- link notifications ----

/// A `NETLINK_GENERIC` socket, with [`RtNetlink`]'s request handling (a
/// fresh sequence number, read until the acknowledgement or the end of the
/// dump, a receive timeout), in the network namespace of the thread that
/// opened it.
#[derive(Debug)]
pub struct GenNetlink {
    inner: RtNetlink,
    netdev: Option<Option<u16>>,
}

impl GenNetlink {
    /// Opens it in the calling thread's network namespace.
    ///
    /// # Errors
    /// As [`RtNetlink::open`].
    pub fn open() -> Result<Self> {
        let (fd, port_id) = open_socket(libc::NETLINK_GENERIC, 0, 0)?;
        Ok(Self {
            inner: RtNetlink {
                fd,
                port_id,
                seq: 0,
                buf: vec![0; 64 * 1024],
            },
            netdev: None,
        })
    }

    /// The id of family `name`; `None` when the kernel has no such family.
    ///
    /// # Errors
    /// `genetlink CTRL_CMD_GETFAMILY` with the kernel's errno (but
    /// `ENOENT`, which is `None`), or the socket's.
    pub fn family_id(&mut self, name: &str) -> Result<Option<u16>> {
        let call = "genetlink CTRL_CMD_GETFAMILY";
        match self
            .inner
            .request(call, super::genl::get_family_request(name))
        {
            Ok(replies) => Ok(replies
                .iter()
                .find_map(|r| super::genl::parse_family_id(&r.payload))),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The queues of link `ifindex` as the `netdev` family reports them
    /// (`NETDEV_CMD_QUEUE_GET`); `None` when the kernel has no such
    /// family or command (older kernels).
    ///
    /// # Errors
    /// `genetlink NETDEV_CMD_QUEUE_GET` with the kernel's errno (`ENODEV`
    /// for no such link), or the socket's.
    pub fn queues(&mut self, ifindex: u32) -> Result<Option<Vec<super::genl::NetdevQueue>>> {
        let family = match self.netdev {
            Some(f) => f,
            None => {
                let f = self.family_id("netdev")?;
                *self.netdev.insert(f)
            }
        };
        let Some(family) = family else {
            return Ok(None);
        };
        let call = "genetlink NETDEV_CMD_QUEUE_GET";
        match self
            .inner
            .request(call, super::genl::dump_queues_request(family, ifindex))
        {
            Ok(replies) => Ok(Some(
                replies
                    .iter()
                    .filter_map(|r| super::genl::parse_queue(&r.payload))
                    .filter(|q| q.ifindex == ifindex)
                    .collect(),
            )),
            Err(e) if matches!(e.errno(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether an AF_XDP buffer pool holds receive queue `queue` of link
    /// `ifindex` (a bound socket, or one closed a moment ago that the
    /// kernel has not released yet); `None` when the kernel cannot say
    /// (no queue dump, or no such queue). Older kernels dump queues without
    /// the AF_XDP attribute: there every queue looks free.
    ///
    /// # Errors
    /// As [`GenNetlink::queues`].
    pub fn xsk_holds_rx_queue(&mut self, ifindex: u32, queue: u32) -> Result<Option<bool>> {
        Ok(self
            .queues(ifindex)?
            .and_then(|qs| qs.iter().find(|q| q.rx && q.id == queue).map(|q| q.xsk)))
    }
}

/// A `NETLINK_ROUTE` socket subscribed to the kernel's link notifications
/// (`RTNLGRP_LINK`), non-blocking, with its receive buffer allocated once:
/// [`poll`](Self::poll) tells a link's changes without a request, a round
/// trip or an allocation — one `recvfrom` that finds nothing when nothing
/// changed. It hears the links of the network namespace of the thread that
/// called [`open`](Self::open).
#[derive(Debug)]
pub struct LinkEvents {
    fd: OwnedFd,
    buf: Box<[u8]>,
}

impl LinkEvents {
    /// Opens the socket, bound to the link group, in the calling thread's
    /// network namespace. Notifications sent after this call are queued.
    ///
    /// # Errors
    /// `socket(AF_NETLINK)`, `setsockopt(SO_RCVTIMEO)`, `bind(AF_NETLINK)`.
    pub fn open() -> Result<Self> {
        let (fd, _) = open_route_socket(super::uapi::RTMGRP_LINK, libc::SOCK_NONBLOCK)?;
        Ok(Self {
            fd,
            buf: vec![0; 16 * 1024].into_boxed_slice(),
        })
    }

    /// Reads every notification queued, without blocking or allocating, and
    /// returns the last word on link `ifindex` among them (see
    /// [`link_event_state`](super::link_event_state): up with carrier, or
    /// not), `None` when there was none.
    ///
    /// # Errors
    /// `recvfrom(AF_NETLINK)` with `ENOBUFS` when the socket overflowed and
    /// notifications were lost, or with `EMSGSIZE` when one was longer than
    /// the buffer (16 KiB; a link's is a few): read the link anew
    /// ([`RtNetlink::link_info`]) — later notifications are queued again.
    pub fn poll(&mut self, ifindex: u32) -> Result<Option<bool>> {
        let mut last = None;
        loop {
            // SAFETY: sockaddr_nl is plain data for which all-zero bytes are valid.
            let mut from: libc::sockaddr_nl = unsafe { mem::zeroed() };
            let mut from_len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: `self.buf` is valid for writes of its length; `from` and
            // `from_len` are valid for writes of the sizes given.
            let ret = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    (&raw mut from).cast(),
                    &raw mut from_len,
                )
            };
            let n = match cvt_size("recvfrom(AF_NETLINK)", ret) {
                Err(e) if e.errno() == Some(libc::EINTR) => continue,
                Err(e) if e.errno() == Some(libc::EAGAIN) => return Ok(last),
                Err(e) => return Err(e),
                // Only the kernel (port 0) sends notifications.
                Ok(_) if from.nl_pid != 0 => continue,
                Ok(n) if n > self.buf.len() => {
                    return Err(SyscallError::from_errno(
                        "recvfrom(AF_NETLINK)",
                        libc::EMSGSIZE,
                    ));
                }
                Ok(n) => n,
            };
            for m in super::message::messages(&self.buf[..n]).map_while(|m| m.ok()) {
                if let Some(up) = super::message::link_event_state(&m, ifindex) {
                    last = Some(up);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::ARPHRD_LOOPBACK;

    #[test]
    fn test_ifname_check() {
        assert!(check_ifname("x", "veth0").is_ok());
        assert!(check_ifname("x", "").is_err());
        assert!(check_ifname("x", "a-very-long-name0").is_err());
        assert!(check_ifname("x", "a b").is_err());
        assert!(check_ifname("x", "a/b").is_err());
    }

    /// Read-only lookups in the current namespace (a dump included): need
    /// no privilege and change nothing.
    #[test]
    fn live_lookups_on_lo() {
        let mut nl = RtNetlink::open().unwrap();
        let lo = nl.link_index("lo").unwrap();
        let link = nl.link_info(lo).unwrap();
        assert_eq!(
            (link.index, link.name.as_str(), link.arphrd),
            (lo, "lo", ARPHRD_LOOPBACK)
        );
        assert!(link.mtu > 0);
        assert_eq!(
            nl.link_info(u32::MAX >> 1).unwrap_err().errno(),
            Some(libc::ENODEV)
        );
        if link.up {
            let addrs = nl.ipv4_addresses(lo).unwrap();
            assert!(addrs.contains(&(Ipv4Addr::LOCALHOST, 8)), "{addrs:?}");
            let route = nl.route_get(Ipv4Addr::LOCALHOST).unwrap();
            assert_eq!(route.oif, lo);
            assert_eq!(route.gateway, None);
        }
        // The socket is still in step after a dump: the next request works.
        assert_eq!(nl.link_index("lo").unwrap(), lo);
    }

    /// Read-only query in the current namespace: needs no privilege and
    /// changes nothing.
    #[test]
    fn live_getlink_lo() {
        let mut nl = RtNetlink::open().unwrap();
        assert_eq!(
            nl.link_index("lo").unwrap(),
            crate::netns::if_nametoindex("lo").unwrap()
        );
        let err = nl.link_index("hftnet-nosuch").unwrap_err();
        assert_eq!(err.call, "rtnetlink RTM_GETLINK");
        assert_eq!(err.errno(), Some(libc::ENODEV));
    }
}
