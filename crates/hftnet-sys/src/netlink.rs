//! A small synchronous rtnetlink client: enough to build a lab topology
//! (create a veth pair across namespaces, set links up, set the MTU, add IPv4
//! addresses and routes) without shelling out to `ip`, and to find a layer-2
//! path (look a route up, read and trigger the ARP table, read a link's MAC
//! address, MTU and IPv4 addresses) for the kernel-bypass transports.
//!
//! Layer: syscall wrappers, used by `hftnet-lab` and `hftnet_io::l2`.
//! Message building and parsing ([`MessageBuilder`], [`IfInfoMsg`],
//! [`IfAddrMsg`], [`RtMsg`], [`NdMsg`], [`split_messages`], [`attributes`],
//! the `*_request` and `parse_*` functions) are safe,
//! pure code over byte buffers, unit-tested byte for byte; `unsafe` is kept to
//! the socket calls of [`RtNetlink`].
//!
//! Invariants: every request carries `NLM_F_REQUEST | NLM_F_ACK` and a fresh
//! sequence number; [`RtNetlink::request`] reads until the kernel's
//! acknowledgement of *that* sequence number and turns a negative
//! acknowledgement into a [`SyscallError`] whose `call` names the operation
//! (e.g. `"rtnetlink RTM_NEWLINK(veth)"`) and whose `errno` is the kernel's.
//! Messages in host byte order, attributes 4-byte aligned, as the kernel wants.
//! A socket acts on the network namespace it was *created* in, whichever
//! thread later uses it.
//!
//! Must never: act on a namespace other than the socket's (or the one named by
//! `IFLA_NET_NS_FD` in a request built by the caller), block forever (the
//! socket has a receive timeout), or be used on a hot path (it allocates).
//!
//! # References
//! - `rtnetlink(7)`, `netlink(7)`; `include/uapi/linux/{netlink,rtnetlink,if_link,if_addr,veth,neighbour}.h`
//! - iproute2 `ip/iplink.c`, `ip/link_veth.c`, `ip/ipaddress.c`, `ip/iproute.c`, `ip/ipneigh.c`
//! - `net/core/neighbour.c` (`neigh_add`, `neigh_get`, `__neigh_event_send`)

use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Result, SyscallError, cvt, cvt_size};

// ---- constants from the uapi headers (values are ABI, identical on every arch) ----

const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;

/// `NLM_F_REQUEST`: this is a request.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`: ask for an acknowledgement (an `NLMSG_ERROR` with error 0).
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP_INTR`: set on dump replies when the table changed during the
/// dump, so the dump may be inconsistent; repeat it.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_REPLACE`: replace (or, for neighbours, override) an existing object.
pub const NLM_F_REPLACE: u16 = 0x100;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`): return every object, ending
/// with `NLMSG_DONE`.
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_EXCL`: fail with `EEXIST` if the object exists.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`: create the object if it does not exist.
pub const NLM_F_CREATE: u16 = 0x400;
/// `NLA_F_NESTED`: flag bit of an attribute type marking nested content.
pub const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | 0x4000);

/// `NLMSG_NOOP` message type.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR` message type (also carries positive acknowledgements).
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE` message type (end of a dump).
pub const NLMSG_DONE: u16 = 3;

/// `RTM_NEWLINK`: create or change a link.
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_GETLINK`: query a link.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_NEWADDR`: add an address (also the type of address replies).
pub const RTM_NEWADDR: u16 = 20;
/// `RTM_GETADDR`: query addresses (a dump).
pub const RTM_GETADDR: u16 = 22;
/// `RTM_NEWROUTE`: add a route (also the type of route replies).
pub const RTM_NEWROUTE: u16 = 24;
/// `RTM_GETROUTE`: look a route up (`ip route get`).
pub const RTM_GETROUTE: u16 = 26;
/// `RTM_NEWNEIGH`: add or change a neighbour entry (also the type of replies).
pub const RTM_NEWNEIGH: u16 = 28;
/// `RTM_GETNEIGH`: query a neighbour entry.
pub const RTM_GETNEIGH: u16 = 30;

/// `IFLA_ADDRESS`: link-layer address (`addr_len` bytes, 6 for Ethernet).
pub const IFLA_ADDRESS: u16 = 1;
/// `IFLA_IFNAME`: interface name (NUL-terminated string).
pub const IFLA_IFNAME: u16 = 3;
/// `IFLA_MTU`: MTU (u32).
pub const IFLA_MTU: u16 = 4;
/// `IFLA_LINKINFO`: nested link-kind information.
pub const IFLA_LINKINFO: u16 = 18;
/// `IFLA_NET_NS_FD`: put the link in the namespace this fd refers to (u32).
pub const IFLA_NET_NS_FD: u16 = 28;
/// `IFLA_INFO_KIND`: link kind, e.g. `"veth"` (inside `IFLA_LINKINFO`).
pub const IFLA_INFO_KIND: u16 = 1;
/// `IFLA_INFO_DATA`: kind-specific data (inside `IFLA_LINKINFO`).
pub const IFLA_INFO_DATA: u16 = 2;
/// `VETH_INFO_PEER`: the peer's `ifinfomsg` and attributes (inside `IFLA_INFO_DATA`).
pub const VETH_INFO_PEER: u16 = 1;

/// `IFA_ADDRESS`: prefix (peer) address.
pub const IFA_ADDRESS: u16 = 1;
/// `IFA_LOCAL`: local address.
pub const IFA_LOCAL: u16 = 2;
/// `IFA_BROADCAST`: broadcast address.
pub const IFA_BROADCAST: u16 = 4;

/// `RTA_DST`: route destination.
pub const RTA_DST: u16 = 1;
/// `RTA_OIF`: output interface index (u32).
pub const RTA_OIF: u16 = 4;
/// `RTA_GATEWAY`: next-hop router.
pub const RTA_GATEWAY: u16 = 5;
/// `RTA_PREFSRC`: preferred source address.
pub const RTA_PREFSRC: u16 = 7;

/// `NDA_DST`: the neighbour's network address.
pub const NDA_DST: u16 = 1;
/// `NDA_LLADDR`: the neighbour's link-layer address (only in valid states).
pub const NDA_LLADDR: u16 = 2;

/// `NUD_NONE`: a new entry, no resolution started.
pub const NUD_NONE: u16 = 0x00;
/// `NUD_INCOMPLETE`: a request was sent, no answer yet.
pub const NUD_INCOMPLETE: u16 = 0x01;
/// `NUD_REACHABLE`: confirmed recently.
pub const NUD_REACHABLE: u16 = 0x02;
/// `NUD_STALE`: known, not confirmed recently; still used.
pub const NUD_STALE: u16 = 0x04;
/// `NUD_DELAY`: stale and used; a probe follows shortly.
pub const NUD_DELAY: u16 = 0x08;
/// `NUD_PROBE`: stale and being re-confirmed by unicast probes.
pub const NUD_PROBE: u16 = 0x10;
/// `NUD_FAILED`: resolution gave up (no answer to the probes).
pub const NUD_FAILED: u16 = 0x20;
/// `NUD_NOARP`: no resolution needed on this device.
pub const NUD_NOARP: u16 = 0x40;
/// `NUD_PERMANENT`: a static entry (`ip neigh add ... nud permanent`).
pub const NUD_PERMANENT: u16 = 0x80;
/// `NTF_USE` (`ndm_flags`): in an `RTM_NEWNEIGH`, treat the entry as used by
/// traffic: the kernel starts (or refreshes) resolution as if a packet were
/// waiting for it, without any packet.
pub const NTF_USE: u8 = 0x01;

/// `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u8 = 254;
/// `RTPROT_BOOT`: the protocol `ip route add` uses by default.
pub const RTPROT_BOOT: u8 = 3;
/// `RT_SCOPE_UNIVERSE`.
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// `RT_SCOPE_LINK`: destination directly on the link.
pub const RT_SCOPE_LINK: u8 = 253;
/// `RTN_UNICAST`.
pub const RTN_UNICAST: u8 = 1;

/// `IFF_UP` link flag: administratively up.
pub const IFF_UP: u32 = 0x1;
/// `IFF_RUNNING` link flag: operationally up (RFC 2863 "up" or "unknown").
pub const IFF_RUNNING: u32 = 0x40;
/// `IFF_LOWER_UP` link flag: the driver reports carrier.
pub const IFF_LOWER_UP: u32 = 0x1_0000;

/// `ARPHRD_ETHER`: the `ifi_type` of Ethernet (and veth, bridges, ...).
pub const ARPHRD_ETHER: u16 = 1;
/// `ARPHRD_LOOPBACK`: the `ifi_type` of `lo`.
pub const ARPHRD_LOOPBACK: u16 = 772;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
/// `IFNAMSIZ`: interface names are at most `IFNAMSIZ - 1` bytes.
pub const IFNAMSIZ: usize = 16;

/// How long [`RtNetlink`] waits for the kernel's reply before giving up with
/// `EAGAIN`. The kernel answers rtnetlink requests synchronously; this only
/// bounds the damage of a bug.
pub const REPLY_TIMEOUT_SECS: i64 = 10;

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

// ---- family headers ----

/// `struct ifinfomsg` (16 bytes): the fixed header of link messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfInfoMsg {
    /// `ifi_family` (`AF_UNSPEC` for links).
    pub family: u8,
    /// `ifi_type` (ARPHRD_*), 0 in requests.
    pub link_type: u16,
    /// `ifi_index`, 0 to select by name or to let the kernel choose.
    pub index: i32,
    /// `ifi_flags` (IFF_*).
    pub flags: u32,
    /// `ifi_change`: which bits of `flags` to change.
    pub change: u32,
}

impl IfInfoMsg {
    /// Encoded length in bytes.
    pub const LEN: usize = 16;

    /// The wire form, host byte order.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.family;
        b[2..4].copy_from_slice(&self.link_type.to_ne_bytes());
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b[8..12].copy_from_slice(&self.flags.to_ne_bytes());
        b[12..16].copy_from_slice(&self.change.to_ne_bytes());
        b
    }

    /// Parses the header at the start of `payload`; `None` if too short.
    #[must_use]
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..Self::LEN)?;
        Some(Self {
            family: b[0],
            link_type: u16::from_ne_bytes([b[2], b[3]]),
            index: i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            flags: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            change: u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
        })
    }
}

/// `struct ifaddrmsg` (8 bytes): the fixed header of address messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfAddrMsg {
    /// `ifa_family` (`AF_INET` = 2).
    pub family: u8,
    /// `ifa_prefixlen`.
    pub prefix_len: u8,
    /// `ifa_flags`.
    pub flags: u8,
    /// `ifa_scope`.
    pub scope: u8,
    /// `ifa_index`: the interface.
    pub index: u32,
}

impl IfAddrMsg {
    /// Encoded length in bytes.
    pub const LEN: usize = 8;

    /// The wire form, host byte order.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.family;
        b[1] = self.prefix_len;
        b[2] = self.flags;
        b[3] = self.scope;
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b
    }

    /// Parses the header at the start of `payload`; `None` if too short.
    #[must_use]
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..Self::LEN)?;
        Some(Self {
            family: b[0],
            prefix_len: b[1],
            flags: b[2],
            scope: b[3],
            index: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// `struct rtmsg` (12 bytes): the fixed header of route messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtMsg {
    /// `rtm_family`.
    pub family: u8,
    /// `rtm_dst_len`: destination prefix length.
    pub dst_len: u8,
    /// `rtm_src_len`.
    pub src_len: u8,
    /// `rtm_tos`.
    pub tos: u8,
    /// `rtm_table`.
    pub table: u8,
    /// `rtm_protocol` (who installed the route).
    pub protocol: u8,
    /// `rtm_scope`.
    pub scope: u8,
    /// `rtm_type` (RTN_*).
    pub route_type: u8,
    /// `rtm_flags`.
    pub flags: u32,
}

impl RtMsg {
    /// Encoded length in bytes.
    pub const LEN: usize = 12;

    /// The wire form, host byte order.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[..8].copy_from_slice(&[
            self.family,
            self.dst_len,
            self.src_len,
            self.tos,
            self.table,
            self.protocol,
            self.scope,
            self.route_type,
        ]);
        b[8..12].copy_from_slice(&self.flags.to_ne_bytes());
        b
    }

    /// Parses the header at the start of `payload`; `None` if too short.
    #[must_use]
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..Self::LEN)?;
        Some(Self {
            family: b[0],
            dst_len: b[1],
            src_len: b[2],
            tos: b[3],
            table: b[4],
            protocol: b[5],
            scope: b[6],
            route_type: b[7],
            flags: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
        })
    }
}

/// `struct ndmsg` (12 bytes): the fixed header of neighbour messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NdMsg {
    /// `ndm_family` (`AF_INET` = 2 for the ARP table).
    pub family: u8,
    /// `ndm_ifindex`: the interface.
    pub index: i32,
    /// `ndm_state` (`NUD_*`).
    pub state: u16,
    /// `ndm_flags` (`NTF_*`).
    pub flags: u8,
    /// `ndm_type` (`RTN_*`), 0 in requests.
    pub ndm_type: u8,
}

impl NdMsg {
    /// Encoded length in bytes.
    pub const LEN: usize = 12;

    /// The wire form, host byte order (the two padding fields are zero, as
    /// the kernel's strict checks require).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.family;
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b[8..10].copy_from_slice(&self.state.to_ne_bytes());
        b[10] = self.flags;
        b[11] = self.ndm_type;
        b
    }

    /// Parses the header at the start of `payload`; `None` if too short.
    #[must_use]
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..Self::LEN)?;
        Some(Self {
            family: b[0],
            index: i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            state: u16::from_ne_bytes([b[8], b[9]]),
            flags: b[10],
            ndm_type: b[11],
        })
    }
}

// ---- message builder ----

/// Builds one netlink message: the `nlmsghdr`, a family header, then
/// attributes, possibly nested. Lengths and padding are filled in as it goes;
/// [`finish`](Self::finish) stamps the sequence number and total length.
///
/// ```
/// use hftnet_sys::netlink::{IfInfoMsg, MessageBuilder, IFLA_IFNAME, NLM_F_ACK, NLM_F_REQUEST, RTM_GETLINK};
/// let mut m = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
/// m.push_header(&IfInfoMsg::default().to_bytes());
/// m.attr_str(IFLA_IFNAME, "lo");
/// let bytes = m.finish(1);
/// assert_eq!(bytes.len(), 16 + 16 + 8);
/// ```
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
}

/// An open nested attribute, returned by [`MessageBuilder::begin_nested`] and
/// closed by [`MessageBuilder::end_nested`].
#[derive(Debug)]
#[must_use = "a nested attribute must be closed with end_nested"]
pub struct Nest {
    offset: usize,
}

impl MessageBuilder {
    /// Starts a message of type `msg_type` with `flags` (`NLM_F_*`).
    #[must_use]
    pub fn new(msg_type: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.resize(NLMSG_HDRLEN, 0);
        buf[4..6].copy_from_slice(&msg_type.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        Self { buf }
    }

    /// The message type given to [`new`](Self::new).
    #[must_use]
    pub fn msg_type(&self) -> u16 {
        u16::from_ne_bytes([self.buf[4], self.buf[5]])
    }

    /// Appends raw bytes (a family header such as [`IfInfoMsg::to_bytes`]),
    /// padded to 4 bytes.
    pub fn push_header(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.pad();
        self
    }

    /// Appends attribute `attr_type` with `payload`, padded to 4 bytes.
    ///
    /// # Panics
    /// If the attribute would be longer than 65535 bytes (its length field is 16 bits).
    pub fn attr(&mut self, attr_type: u16, payload: &[u8]) -> &mut Self {
        let len = u16::try_from(NLA_HDRLEN + payload.len())
            .expect("netlink attribute longer than 65535 bytes");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&attr_type.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    /// Appends a `u32` attribute (host byte order).
    pub fn attr_u32(&mut self, attr_type: u16, value: u32) -> &mut Self {
        self.attr(attr_type, &value.to_ne_bytes())
    }

    /// Appends a string attribute with its terminating NUL, as the kernel's
    /// `NLA_STRING`/`NLA_NUL_STRING` policies expect.
    pub fn attr_str(&mut self, attr_type: u16, value: &str) -> &mut Self {
        let mut payload = Vec::with_capacity(value.len() + 1);
        payload.extend_from_slice(value.as_bytes());
        payload.push(0);
        self.attr(attr_type, &payload)
    }

    /// Opens a nested attribute `attr_type`; everything appended until the
    /// matching [`end_nested`](Self::end_nested) is its content. The type is
    /// written as given: OR in [`NLA_F_NESTED`] where the kernel's policy
    /// wants it (iproute2 does not set it for `IFLA_LINKINFO`, nor do we).
    pub fn begin_nested(&mut self, attr_type: u16) -> Nest {
        let offset = self.buf.len();
        self.attr(attr_type, &[]);
        Nest { offset }
    }

    /// Closes `nest`: writes its length, which covers everything appended since.
    ///
    /// # Panics
    /// If the nested content is longer than 65535 bytes.
    pub fn end_nested(&mut self, nest: Nest) -> &mut Self {
        let len = u16::try_from(self.buf.len() - nest.offset)
            .expect("nested netlink attribute longer than 65535 bytes");
        self.buf[nest.offset..nest.offset + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// Completes the message with sequence number `seq` (port id 0: the kernel
    /// fills in the sender) and returns its bytes.
    #[must_use]
    pub fn finish(mut self, seq: u32) -> Vec<u8> {
        self.stamp(seq);
        self.buf
    }

    fn stamp(&mut self, seq: u32) {
        let len = u32::try_from(self.buf.len()).expect("netlink message longer than 4 GiB");
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    }

    fn pad(&mut self) {
        let aligned = align4(self.buf.len());
        self.buf.resize(aligned, 0);
    }
}

// ---- request builders (pure) ----

const CREATE_FLAGS: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/// `RTM_NEWLINK` creating a veth pair: end `name` in the namespace of the
/// socket the request is sent on, end `peer_name` in the namespace referred to
/// by `peer_netns_fd` (a descriptor of the *sending* process, e.g. from
/// [`crate::netns::open`]). Both ends get `mtu` if given. Like
/// `ip link add NAME [mtu M] type veth peer name PEER netns NS [mtu M]`.
#[must_use]
pub fn new_veth_request(
    name: &str,
    peer_name: &str,
    peer_netns_fd: RawFd,
    mtu: Option<u32>,
) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_NEWLINK, CREATE_FLAGS);
    m.push_header(
        &IfInfoMsg {
            family: AF_UNSPEC,
            ..IfInfoMsg::default()
        }
        .to_bytes(),
    );
    m.attr_str(IFLA_IFNAME, name);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    let linkinfo = m.begin_nested(IFLA_LINKINFO);
    m.attr_str(IFLA_INFO_KIND, "veth");
    let data = m.begin_nested(IFLA_INFO_DATA);
    let peer = m.begin_nested(VETH_INFO_PEER);
    m.push_header(
        &IfInfoMsg {
            family: AF_UNSPEC,
            ..IfInfoMsg::default()
        }
        .to_bytes(),
    );
    m.attr_str(IFLA_IFNAME, peer_name);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    // The fd travels as a u32; a valid fd is never negative.
    m.attr_u32(IFLA_NET_NS_FD, peer_netns_fd as u32);
    m.end_nested(peer);
    m.end_nested(data);
    m.end_nested(linkinfo);
    m
}

/// `RTM_GETLINK` for the link called `name` (`ip link show NAME`).
#[must_use]
pub fn get_link_by_name_request(name: &str) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(&IfInfoMsg::default().to_bytes());
    m.attr_str(IFLA_IFNAME, name);
    m
}

/// `RTM_NEWLINK` setting link `index` up or down (`ip link set DEV up|down`).
#[must_use]
pub fn set_link_state_request(index: u32, up: bool) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(
        &IfInfoMsg {
            index: index as i32,
            flags: if up { IFF_UP } else { 0 },
            change: IFF_UP,
            ..IfInfoMsg::default()
        }
        .to_bytes(),
    );
    m
}

/// `RTM_NEWLINK` setting the MTU of link `index` (`ip link set DEV mtu M`).
#[must_use]
pub fn set_mtu_request(index: u32, mtu: u32) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(
        &IfInfoMsg {
            index: index as i32,
            ..IfInfoMsg::default()
        }
        .to_bytes(),
    );
    m.attr_u32(IFLA_MTU, mtu);
    m
}

/// `RTM_NEWADDR` adding `addr/prefix_len` on link `index`, with the
/// broadcast address of the subnet for prefixes up to /30
/// (`ip addr add ADDR/PREFIX brd + dev DEV`).
#[must_use]
pub fn add_ipv4_address_request(index: u32, addr: Ipv4Addr, prefix_len: u8) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_NEWADDR, CREATE_FLAGS);
    m.push_header(
        &IfAddrMsg {
            family: AF_INET,
            prefix_len,
            flags: 0,
            scope: RT_SCOPE_UNIVERSE,
            index,
        }
        .to_bytes(),
    );
    m.attr(IFA_LOCAL, &addr.octets());
    m.attr(IFA_ADDRESS, &addr.octets());
    if prefix_len <= 30 {
        let host_mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
        let brd = Ipv4Addr::from(u32::from(addr) | host_mask);
        m.attr(IFA_BROADCAST, &brd.octets());
    }
    m
}

/// `RTM_NEWROUTE` adding `dst/prefix_len` directly on link `oif` in the main
/// table, scope link (`ip route add DST/PREFIX dev DEV`). E.g. 224.0.0.0/4 so
/// multicast leaves by that link in a namespace without a default route.
#[must_use]
pub fn add_ipv4_route_request(dst: Ipv4Addr, prefix_len: u8, oif: u32) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_NEWROUTE, CREATE_FLAGS);
    m.push_header(
        &RtMsg {
            family: AF_INET,
            dst_len: prefix_len,
            table: RT_TABLE_MAIN,
            protocol: RTPROT_BOOT,
            scope: RT_SCOPE_LINK,
            route_type: RTN_UNICAST,
            ..RtMsg::default()
        }
        .to_bytes(),
    );
    m.attr(RTA_DST, &dst.octets());
    m.attr_u32(RTA_OIF, oif);
    m
}

/// `RTM_GETROUTE` for the route the kernel would use to send to `dst`
/// (`ip route get DST`): a single lookup, not a dump. The answer is one
/// `RTM_NEWROUTE`; see [`parse_route`].
#[must_use]
pub fn get_route_request(dst: Ipv4Addr) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(
        &RtMsg {
            family: AF_INET,
            dst_len: 32,
            ..RtMsg::default()
        }
        .to_bytes(),
    );
    m.attr(RTA_DST, &dst.octets());
    m
}

/// `RTM_GETNEIGH` for the ARP entry of `ip` on link `ifindex`
/// (`ip neigh get IP dev DEV`): a single lookup, answered by one
/// `RTM_NEWNEIGH` (see [`parse_neighbour`]) or `ENOENT`. Kernel 5.0+.
#[must_use]
pub fn get_neighbour_request(ifindex: u32, ip: Ipv4Addr) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(
        &NdMsg {
            family: AF_INET,
            index: ifindex as i32,
            ..NdMsg::default()
        }
        .to_bytes(),
    );
    m.attr(NDA_DST, &ip.octets());
    m
}

/// `RTM_NEWNEIGH` with `ndm_flags = NTF_USE` for `ip` on link `ifindex`,
/// creating the entry if needed (`NLM_F_CREATE | NLM_F_REPLACE`): the kernel
/// marks the entry used and calls `neigh_event_send()`, which sends an ARP
/// request for a new, failed or incomplete entry and re-probes a stale one.
/// `ndm_state` is not applied with `NTF_USE` (left `NUD_NONE`) and no
/// link-layer address is given, so an existing address is kept.
#[must_use]
pub fn neighbour_use_request(ifindex: u32, ip: Ipv4Addr) -> MessageBuilder {
    let mut m = MessageBuilder::new(
        RTM_NEWNEIGH,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
    );
    m.push_header(
        &NdMsg {
            family: AF_INET,
            index: ifindex as i32,
            state: NUD_NONE,
            flags: NTF_USE,
            ndm_type: 0,
        }
        .to_bytes(),
    );
    m.attr(NDA_DST, &ip.octets());
    m
}

/// `RTM_GETLINK` for link `index` (`ip link show dev DEV`), answered by one
/// `RTM_NEWLINK`; see [`parse_link`].
#[must_use]
pub fn get_link_by_index_request(index: u32) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(
        &IfInfoMsg {
            index: index as i32,
            ..IfInfoMsg::default()
        }
        .to_bytes(),
    );
    m
}

/// `RTM_GETADDR` dump of the IPv4 addresses (`ip -4 addr show`). The header
/// names `ifindex`, but only a socket with `NETLINK_GET_STRICT_CHK` has the
/// kernel filter on it: callers filter the replies (see [`parse_address`]).
#[must_use]
pub fn dump_ipv4_addresses_request(ifindex: u32) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
    m.push_header(
        &IfAddrMsg {
            family: AF_INET,
            index: ifindex,
            ..IfAddrMsg::default()
        }
        .to_bytes(),
    );
    m
}

// ---- parsing (pure) ----

/// One netlink message inside a received buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub msg_type: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`: the port id of the socket the reply is for.
    pub port_id: u32,
    /// Everything after the 16-byte header, up to `nlmsg_len`.
    pub payload: &'a [u8],
}

/// A buffer that is not a well-formed sequence of netlink messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// Splits a datagram received from a netlink socket into its messages.
///
/// # Errors
/// [`Malformed`] if a header is truncated or a length points outside the buffer.
pub fn split_messages(mut buf: &[u8]) -> std::result::Result<Vec<Message<'_>>, Malformed> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let hdr = buf.get(..NLMSG_HDRLEN).ok_or(Malformed)?;
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(Malformed);
        }
        out.push(Message {
            msg_type: u16::from_ne_bytes([hdr[4], hdr[5]]),
            flags: u16::from_ne_bytes([hdr[6], hdr[7]]),
            seq: u32::from_ne_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]),
            port_id: u32::from_ne_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]),
            payload: &buf[NLMSG_HDRLEN..len],
        });
        buf = buf.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// The error code of an `NLMSG_ERROR` payload as a positive `errno`
/// (0 = acknowledgement); `None` if the payload is too short.
#[must_use]
pub fn decode_error(payload: &[u8]) -> Option<i32> {
    let b = payload.get(..4)?;
    Some(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]).wrapping_neg())
}

/// One attribute: its type (flag bits removed), whether [`NLA_F_NESTED`] was
/// set, and its payload (without padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Attribute type without `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`.
    pub attr_type: u16,
    /// True if the `NLA_F_NESTED` bit was set.
    pub nested_flag: bool,
    /// The payload.
    pub payload: &'a [u8],
}

/// Iterator over the attributes in a buffer; see [`attributes`].
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    buf: &'a [u8],
}

/// Iterates over the attributes in `buf` (the bytes after a family header, or
/// the payload of a nested attribute). Iteration stops at the end or at the
/// first malformed attribute; it never panics.
#[must_use]
pub fn attributes(buf: &[u8]) -> Attributes<'_> {
    Attributes { buf }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        let hdr = self.buf.get(..NLA_HDRLEN)?;
        let len = u16::from_ne_bytes([hdr[0], hdr[1]]) as usize;
        let raw_type = u16::from_ne_bytes([hdr[2], hdr[3]]);
        if len < NLA_HDRLEN || len > self.buf.len() {
            self.buf = &[];
            return None;
        }
        let attr = Attr {
            attr_type: raw_type & NLA_TYPE_MASK,
            nested_flag: raw_type & NLA_F_NESTED != 0,
            payload: &self.buf[NLA_HDRLEN..len],
        };
        self.buf = self.buf.get(align4(len)..).unwrap_or(&[]);
        Some(attr)
    }
}

// ---- typed replies (pure) ----

/// The kernel's answer to [`RtNetlink::route_get`]: how a packet to the
/// destination would leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// Output interface index (`RTA_OIF`).
    pub oif: u32,
    /// The router to send through (`RTA_GATEWAY`); `None` if the destination
    /// is directly on the link.
    pub gateway: Option<Ipv4Addr>,
    /// The source address the kernel would use (`RTA_PREFSRC`).
    pub prefsrc: Option<Ipv4Addr>,
}

/// A neighbour (ARP) table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// The link-layer address (`NDA_LLADDR`), if the entry has a 6-byte one;
    /// the kernel reports it only in the valid states.
    pub mac: Option<[u8; 6]>,
    /// `ndm_state`: one of the `NUD_*` constants.
    pub state: u16,
}

impl Neighbour {
    /// States in which the kernel itself would send to the entry's address.
    const USABLE: u16 =
        NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;

    /// True if the entry has a MAC address the kernel would send to:
    /// `REACHABLE`, `STALE`, `DELAY`, `PROBE`, `PERMANENT` or `NOARP`.
    #[must_use]
    pub fn is_usable(&self) -> bool {
        self.state & Self::USABLE != 0 && self.mac.is_some()
    }

    /// True if resolution failed (`NUD_FAILED`): nobody answered the probes.
    #[must_use]
    pub fn is_failed(&self) -> bool {
        self.state & NUD_FAILED != 0
    }
}

/// What [`RtNetlink::link_info`] reports about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// `ifi_index`.
    pub index: u32,
    /// `IFLA_IFNAME` (empty if the kernel sent none).
    pub name: String,
    /// `IFLA_ADDRESS` if it is 6 bytes long (Ethernet-like links).
    pub mac: Option<[u8; 6]>,
    /// `IFLA_MTU` (0 if the kernel sent none).
    pub mtu: u32,
    /// `IFF_UP`: administratively up.
    pub up: bool,
    /// `IFF_RUNNING` or `IFF_LOWER_UP`: the link has carrier.
    pub running: bool,
    /// `ifi_type`: [`ARPHRD_ETHER`], [`ARPHRD_LOOPBACK`], ...
    pub arphrd: u16,
}

fn ipv4_attr(payload: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(payload).ok().map(Ipv4Addr::from)
}

fn u32_attr(payload: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(payload).ok().map(u32::from_ne_bytes)
}

/// Parses the payload of an `RTM_NEWROUTE` answering [`get_route_request`].
/// `None` if the header is short, the family is not `AF_INET`, or there is
/// no `RTA_OIF`. Attributes of the wrong length are ignored.
#[must_use]
pub fn parse_route(payload: &[u8]) -> Option<RouteInfo> {
    let hdr = RtMsg::parse(payload)?;
    if hdr.family != AF_INET {
        return None;
    }
    let (mut oif, mut gateway, mut prefsrc) = (None, None, None);
    for a in attributes(&payload[RtMsg::LEN..]) {
        match a.attr_type {
            RTA_OIF => oif = u32_attr(a.payload),
            RTA_GATEWAY => gateway = ipv4_attr(a.payload),
            RTA_PREFSRC => prefsrc = ipv4_attr(a.payload),
            _ => {}
        }
    }
    Some(RouteInfo {
        oif: oif?,
        gateway,
        prefsrc,
    })
}

/// Parses the payload of an `RTM_NEWNEIGH` (the answer to
/// [`get_neighbour_request`], or one entry of a dump). `None` if the header
/// is short. A link-layer address that is not 6 bytes gives `mac: None`.
#[must_use]
pub fn parse_neighbour(payload: &[u8]) -> Option<Neighbour> {
    let hdr = NdMsg::parse(payload)?;
    let mac = attributes(&payload[NdMsg::LEN..])
        .find(|a| a.attr_type == NDA_LLADDR)
        .and_then(|a| <[u8; 6]>::try_from(a.payload).ok());
    Some(Neighbour {
        mac,
        state: hdr.state,
    })
}

/// Parses the payload of an `RTM_NEWLINK` (the answer to an `RTM_GETLINK`).
/// `None` if the header is short or the index negative.
#[must_use]
pub fn parse_link(payload: &[u8]) -> Option<LinkInfo> {
    let hdr = IfInfoMsg::parse(payload)?;
    let mut info = LinkInfo {
        index: u32::try_from(hdr.index).ok()?,
        name: String::new(),
        mac: None,
        mtu: 0,
        up: hdr.flags & IFF_UP != 0,
        running: hdr.flags & (IFF_RUNNING | IFF_LOWER_UP) != 0,
        arphrd: hdr.link_type,
    };
    for a in attributes(&payload[IfInfoMsg::LEN..]) {
        match a.attr_type {
            IFLA_IFNAME => {
                let end = a
                    .payload
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(a.payload.len());
                info.name = String::from_utf8_lossy(&a.payload[..end]).into_owned();
            }
            IFLA_ADDRESS => info.mac = <[u8; 6]>::try_from(a.payload).ok(),
            IFLA_MTU => info.mtu = u32_attr(a.payload).unwrap_or(0),
            _ => {}
        }
    }
    Some(info)
}

/// Parses the payload of an `RTM_NEWADDR` into `(ifindex, address,
/// prefix length)`: the local address (`IFA_LOCAL`, else `IFA_ADDRESS`).
/// `None` if the header is short, the family is not `AF_INET`, or there is
/// no address.
#[must_use]
pub fn parse_address(payload: &[u8]) -> Option<(u32, Ipv4Addr, u8)> {
    let hdr = IfAddrMsg::parse(payload)?;
    if hdr.family != AF_INET {
        return None;
    }
    let (mut local, mut address) = (None, None);
    for a in attributes(&payload[IfAddrMsg::LEN..]) {
        match a.attr_type {
            IFA_LOCAL => local = ipv4_attr(a.payload),
            IFA_ADDRESS => address = ipv4_attr(a.payload),
            _ => {}
        }
    }
    Some((hdr.index, local.or(address)?, hdr.prefix_len))
}

/// A reply message of [`RtNetlink::request`] (acknowledgements are not included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `nlmsg_type`, e.g. [`RTM_NEWLINK`] in answer to [`RTM_GETLINK`].
    pub msg_type: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// The payload after the netlink header.
    pub payload: Vec<u8>,
}

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
        // SAFETY: plain syscall with integer arguments; the fd is owned below.
        let fd = cvt("socket(AF_NETLINK)", unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
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
        Ok(Self {
            fd,
            port_id: addr.nl_pid,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn test_emit_newaddr() {
        let bytes = add_ipv4_address_request(2, Ipv4Addr::new(198, 18, 0, 1), 24).finish(7);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // nlmsghdr: len 48, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE, seq 7, pid 0
            0x30, 0x00, 0x00, 0x00,  0x14, 0x00,  0x05, 0x06,
            0x07, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // ifaddrmsg: AF_INET, /24, flags 0, scope universe, index 2
            0x02, 0x18, 0x00, 0x00,  0x02, 0x00, 0x00, 0x00,
            // IFA_LOCAL 198.18.0.1
            0x08, 0x00, 0x02, 0x00,  0xc6, 0x12, 0x00, 0x01,
            // IFA_ADDRESS 198.18.0.1
            0x08, 0x00, 0x01, 0x00,  0xc6, 0x12, 0x00, 0x01,
            // IFA_BROADCAST 198.18.0.255
            0x08, 0x00, 0x04, 0x00,  0xc6, 0x12, 0x00, 0xff,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn test_emit_route_and_link_up() {
        let bytes = add_ipv4_route_request(Ipv4Addr::new(224, 0, 0, 0), 4, 3).finish(1);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x2c, 0x00, 0x00, 0x00,  0x18, 0x00,  0x05, 0x06,
            0x01, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // rtmsg: AF_INET, dst_len 4, src 0, tos 0, main, boot, link, unicast, flags 0
            0x02, 0x04, 0x00, 0x00,  0xfe, 0x03, 0xfd, 0x01,  0x00, 0x00, 0x00, 0x00,
            // RTA_DST 224.0.0.0
            0x08, 0x00, 0x01, 0x00,  0xe0, 0x00, 0x00, 0x00,
            // RTA_OIF 3
            0x08, 0x00, 0x04, 0x00,  0x03, 0x00, 0x00, 0x00,
        ];
        assert_eq!(bytes, expected);

        let bytes = set_link_state_request(5, true).finish(2);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x20, 0x00, 0x00, 0x00,  0x10, 0x00,  0x05, 0x00,
            0x02, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // ifinfomsg: AF_UNSPEC, pad, type 0, index 5, flags IFF_UP, change IFF_UP
            0x00, 0x00, 0x00, 0x00,  0x05, 0x00, 0x00, 0x00,
            0x01, 0x00, 0x00, 0x00,  0x01, 0x00, 0x00, 0x00,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn test_veth_nesting() {
        let bytes = new_veth_request("veth0", "veth0", 9, Some(1500)).finish(3);
        let msgs = split_messages(&bytes).unwrap();
        assert_eq!(msgs.len(), 1);
        let m = msgs[0];
        assert_eq!((m.msg_type, m.seq), (RTM_NEWLINK, 3));
        assert_eq!(
            m.flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        assert_eq!(bytes.len() % 4, 0);

        let top: Vec<_> = attributes(&m.payload[IfInfoMsg::LEN..]).collect();
        assert_eq!(
            top.iter().map(|a| a.attr_type).collect::<Vec<_>>(),
            [IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO]
        );
        assert_eq!(top[0].payload, b"veth0\0");
        assert_eq!(top[1].payload, 1500u32.to_ne_bytes());

        let info: Vec<_> = attributes(top[2].payload).collect();
        assert_eq!(info[0].attr_type, IFLA_INFO_KIND);
        assert_eq!(info[0].payload, b"veth\0");
        assert_eq!(info[1].attr_type, IFLA_INFO_DATA);
        let peer = attributes(info[1].payload).next().unwrap();
        assert_eq!(peer.attr_type, VETH_INFO_PEER);
        assert_eq!(IfInfoMsg::parse(peer.payload), Some(IfInfoMsg::default()));
        let peer_attrs: Vec<_> = attributes(&peer.payload[IfInfoMsg::LEN..]).collect();
        assert_eq!(
            peer_attrs.iter().map(|a| a.attr_type).collect::<Vec<_>>(),
            [IFLA_IFNAME, IFLA_MTU, IFLA_NET_NS_FD]
        );
        assert_eq!(peer_attrs[2].payload, 9u32.to_ne_bytes());
        // The nested lengths add up exactly to the message.
        let linkinfo_len = u16::from_ne_bytes([
            m.payload[IfInfoMsg::LEN + 20],
            m.payload[IfInfoMsg::LEN + 21],
        ]);
        assert_eq!(
            NLMSG_HDRLEN + IfInfoMsg::LEN + 12 + 8 + usize::from(linkinfo_len),
            bytes.len()
        );
    }

    #[test]
    fn test_parse_error_and_ack() {
        let mut ack = MessageBuilder::new(NLMSG_ERROR, 0);
        ack.push_header(&0i32.to_ne_bytes());
        ack.push_header(&[0u8; 16]);
        let mut nack = MessageBuilder::new(NLMSG_ERROR, 0);
        nack.push_header(&(-libc::EEXIST).to_ne_bytes());
        nack.push_header(&[0u8; 16]);
        let mut buf = ack.finish(1);
        buf.extend(nack.finish(2));
        let msgs = split_messages(&buf).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(decode_error(msgs[0].payload), Some(0));
        assert_eq!(decode_error(msgs[1].payload), Some(libc::EEXIST));
        assert_eq!(msgs[1].seq, 2);
        assert_eq!(decode_error(&[1, 2]), None);
    }

    #[test]
    fn test_parse_malformed() {
        assert_eq!(split_messages(&[1, 2, 3]), Err(Malformed));
        let mut bad = MessageBuilder::new(RTM_NEWLINK, 0).finish(1);
        bad[0] = 200; // length beyond the buffer
        assert_eq!(split_messages(&bad), Err(Malformed));
        bad[0] = 4; // length shorter than a header
        assert_eq!(split_messages(&bad), Err(Malformed));
        assert_eq!(split_messages(&[]), Ok(vec![]));
        // Attribute iteration stops at garbage instead of panicking.
        assert_eq!(attributes(&[0xff, 0xff, 0, 0, 1]).count(), 0);
        assert_eq!(attributes(&[2, 0, 0, 0]).count(), 0);
        assert_eq!(attributes(&[5, 0, 1, 0, 9]).count(), 1);
    }

    #[test]
    fn test_ifname_check() {
        assert!(check_ifname("x", "veth0").is_ok());
        assert!(check_ifname("x", "").is_err());
        assert!(check_ifname("x", "a-very-long-name0").is_err());
        assert!(check_ifname("x", "a b").is_err());
        assert!(check_ifname("x", "a/b").is_err());
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn test_emit_getroute_and_getlink() {
        let bytes = get_route_request(Ipv4Addr::new(198, 18, 0, 2)).finish(5);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // nlmsghdr: len 36, RTM_GETROUTE, REQUEST|ACK, seq 5, pid 0
            0x24, 0x00, 0x00, 0x00,  0x1a, 0x00,  0x05, 0x00,
            0x05, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // rtmsg: AF_INET, dst_len 32, everything else 0
            0x02, 0x20, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // RTA_DST 198.18.0.2
            0x08, 0x00, 0x01, 0x00,  0xc6, 0x12, 0x00, 0x02,
        ];
        assert_eq!(bytes, expected);

        let bytes = get_link_by_index_request(5).finish(2);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // nlmsghdr: len 32, RTM_GETLINK, REQUEST|ACK, seq 2
            0x20, 0x00, 0x00, 0x00,  0x12, 0x00,  0x05, 0x00,
            0x02, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // ifinfomsg: AF_UNSPEC, type 0, index 5, flags 0, change 0
            0x00, 0x00, 0x00, 0x00,  0x05, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn test_emit_neighbour_requests() {
        let ip = Ipv4Addr::new(198, 18, 0, 2);
        let bytes = get_neighbour_request(3, ip).finish(9);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // nlmsghdr: len 36, RTM_GETNEIGH, REQUEST|ACK, seq 9
            0x24, 0x00, 0x00, 0x00,  0x1e, 0x00,  0x05, 0x00,
            0x09, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // ndmsg: AF_INET, pad, pad, ifindex 3, state 0, flags 0, type 0
            0x02, 0x00, 0x00, 0x00,  0x03, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // NDA_DST 198.18.0.2
            0x08, 0x00, 0x01, 0x00,  0xc6, 0x12, 0x00, 0x02,
        ];
        assert_eq!(bytes, expected);

        let bytes = neighbour_use_request(3, ip).finish(10);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // nlmsghdr: len 36, RTM_NEWNEIGH, REQUEST|ACK|REPLACE|CREATE, seq 10
            0x24, 0x00, 0x00, 0x00,  0x1c, 0x00,  0x05, 0x05,
            0x0a, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // ndmsg: AF_INET, ifindex 3, state NUD_NONE, flags NTF_USE, type 0
            0x02, 0x00, 0x00, 0x00,  0x03, 0x00, 0x00, 0x00,  0x00, 0x00, 0x01, 0x00,
            // NDA_DST 198.18.0.2, and no NDA_LLADDR
            0x08, 0x00, 0x01, 0x00,  0xc6, 0x12, 0x00, 0x02,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn test_emit_address_dump() {
        let bytes = dump_ipv4_addresses_request(4).finish(3);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // nlmsghdr: len 24, RTM_GETADDR, REQUEST|ACK|ROOT|MATCH (dump), seq 3
            0x18, 0x00, 0x00, 0x00,  0x16, 0x00,  0x05, 0x03,
            0x03, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
            // ifaddrmsg: AF_INET, prefix 0, flags 0, scope 0, index 4
            0x02, 0x00, 0x00, 0x00,  0x04, 0x00, 0x00, 0x00,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn test_parse_route() {
        // The payload of the RTM_NEWROUTE answering `ip route get 10.0.0.5`
        // through a gateway (as the kernel sends it, cacheinfo left out).
        #[rustfmt::skip]
        let payload: &[u8] = &[
            // rtmsg: AF_INET, /32, src 0, tos 0, main, proto 0, universe, unicast, RTM_F_CLONED
            0x02, 0x20, 0x00, 0x00,  0xfe, 0x00, 0x00, 0x01,  0x00, 0x02, 0x00, 0x00,
            // RTA_TABLE 254
            0x08, 0x00, 0x0f, 0x00,  0xfe, 0x00, 0x00, 0x00,
            // RTA_DST 10.0.0.5
            0x08, 0x00, 0x01, 0x00,  0x0a, 0x00, 0x00, 0x05,
            // RTA_OIF 3
            0x08, 0x00, 0x04, 0x00,  0x03, 0x00, 0x00, 0x00,
            // RTA_GATEWAY 10.0.0.1
            0x08, 0x00, 0x05, 0x00,  0x0a, 0x00, 0x00, 0x01,
            // RTA_PREFSRC 10.0.0.2
            0x08, 0x00, 0x07, 0x00,  0x0a, 0x00, 0x00, 0x02,
            // RTA_UID 0
            0x08, 0x00, 0x19, 0x00,  0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            parse_route(payload),
            Some(RouteInfo {
                oif: 3,
                gateway: Some(Ipv4Addr::new(10, 0, 0, 1)),
                prefsrc: Some(Ipv4Addr::new(10, 0, 0, 2)),
            })
        );
        // On the link: no gateway.
        let mut direct = payload[..36].to_vec();
        direct.extend_from_slice(&payload[44..52]);
        assert_eq!(
            parse_route(&direct),
            Some(RouteInfo {
                oif: 3,
                gateway: None,
                prefsrc: Some(Ipv4Addr::new(10, 0, 0, 2)),
            })
        );
        // No RTA_OIF, a short header, another family: no route.
        assert_eq!(parse_route(&payload[..28]), None);
        assert_eq!(parse_route(&payload[..11]), None);
        let mut v6 = payload.to_vec();
        v6[0] = 10;
        assert_eq!(parse_route(&v6), None);
        // An attribute of the wrong length is ignored, not trusted.
        let mut bad_gw = payload.to_vec();
        bad_gw[36] = 0x07;
        assert_eq!(parse_route(&bad_gw).map(|r| r.gateway), Some(None));
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn test_parse_neighbour() {
        #[rustfmt::skip]
        let reachable: &[u8] = &[
            // ndmsg: AF_INET, ifindex 3, NUD_REACHABLE, flags 0, RTN_UNICAST
            0x02, 0x00, 0x00, 0x00,  0x03, 0x00, 0x00, 0x00,  0x02, 0x00, 0x00, 0x01,
            // NDA_DST 198.18.0.2
            0x08, 0x00, 0x01, 0x00,  0xc6, 0x12, 0x00, 0x02,
            // NDA_LLADDR 7e:b4:dc:e4:30:b1 (length 10, padded to 12)
            0x0a, 0x00, 0x02, 0x00,  0x7e, 0xb4, 0xdc, 0xe4,  0x30, 0xb1, 0x00, 0x00,
            // NDA_PROBES 1
            0x08, 0x00, 0x04, 0x00,  0x01, 0x00, 0x00, 0x00,
        ];
        let n = parse_neighbour(reachable).unwrap();
        assert_eq!(
            n,
            Neighbour {
                mac: Some([0x7e, 0xb4, 0xdc, 0xe4, 0x30, 0xb1]),
                state: NUD_REACHABLE,
            }
        );
        assert!(n.is_usable() && !n.is_failed());

        // INCOMPLETE: the kernel sends no NDA_LLADDR.
        #[rustfmt::skip]
        let incomplete: &[u8] = &[
            0x02, 0x00, 0x00, 0x00,  0x03, 0x00, 0x00, 0x00,  0x01, 0x00, 0x00, 0x01,
            0x08, 0x00, 0x01, 0x00,  0xc6, 0x12, 0x00, 0x63,
        ];
        let n = parse_neighbour(incomplete).unwrap();
        assert_eq!((n.mac, n.state), (None, NUD_INCOMPLETE));
        assert!(!n.is_usable() && !n.is_failed());
        assert_eq!(parse_neighbour(&incomplete[..11]), None);

        let mac = Some([2, 0, 0, 0, 0, 1]);
        for state in [NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_PERMANENT, NUD_NOARP] {
            assert!(Neighbour { mac, state }.is_usable(), "{state:#x}");
            assert!(!Neighbour { mac: None, state }.is_usable(), "{state:#x}");
        }
        for state in [NUD_NONE, NUD_INCOMPLETE, NUD_FAILED] {
            assert!(!Neighbour { mac, state }.is_usable(), "{state:#x}");
        }
        let failed = Neighbour {
            mac: None,
            state: NUD_FAILED,
        };
        assert!(failed.is_failed());

        // A link-layer address that is not 6 bytes (e.g. InfiniBand's 20) is no MAC.
        let mut long = reachable[..20].to_vec();
        long.extend_from_slice(&[0x18, 0x00, 0x02, 0x00]);
        long.extend_from_slice(&[0xaa; 20]);
        assert_eq!(parse_neighbour(&long).unwrap().mac, None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn test_parse_link() {
        #[rustfmt::skip]
        let payload: &[u8] = &[
            // ifinfomsg: AF_UNSPEC, ARPHRD_ETHER, index 5,
            // flags UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP, change 0
            0x00, 0x00, 0x01, 0x00,  0x05, 0x00, 0x00, 0x00,
            0x43, 0x10, 0x01, 0x00,  0x00, 0x00, 0x00, 0x00,
            // IFLA_IFNAME "veth0"
            0x0a, 0x00, 0x03, 0x00,  b'v', b'e', b't', b'h',  b'0', 0x00, 0x00, 0x00,
            // IFLA_MTU 1500
            0x08, 0x00, 0x04, 0x00,  0xdc, 0x05, 0x00, 0x00,
            // IFLA_ADDRESS 02:00:00:00:00:01
            0x0a, 0x00, 0x01, 0x00,  0x02, 0x00, 0x00, 0x00,  0x00, 0x01, 0x00, 0x00,
            // IFLA_BROADCAST ff:ff:ff:ff:ff:ff
            0x0a, 0x00, 0x02, 0x00,  0xff, 0xff, 0xff, 0xff,  0xff, 0xff, 0x00, 0x00,
        ];
        assert_eq!(
            parse_link(payload),
            Some(LinkInfo {
                index: 5,
                name: "veth0".into(),
                mac: Some([2, 0, 0, 0, 0, 1]),
                mtu: 1500,
                up: true,
                running: true,
                arphrd: ARPHRD_ETHER,
            })
        );
        // Down, no carrier, loopback type, no attributes.
        #[rustfmt::skip]
        let bare: &[u8] = &[
            0x00, 0x00, 0x04, 0x03,  0x01, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00,
        ];
        let lo = parse_link(bare).unwrap();
        assert_eq!(
            (lo.up, lo.running, lo.arphrd),
            (false, false, ARPHRD_LOOPBACK)
        );
        assert_eq!((lo.mac, lo.mtu, lo.name.as_str()), (None, 0, ""));
        // IFF_LOWER_UP alone counts as running.
        let mut lower = bare.to_vec();
        lower[10] = 0x01;
        assert!(parse_link(&lower).unwrap().running);
        assert_eq!(parse_link(&bare[..15]), None);
        let mut negative = bare.to_vec();
        negative[7] = 0x80;
        assert_eq!(parse_link(&negative), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn test_parse_address() {
        #[rustfmt::skip]
        let payload: &[u8] = &[
            // ifaddrmsg: AF_INET, /24, IFA_F_PERMANENT, universe, index 4
            0x02, 0x18, 0x80, 0x00,  0x04, 0x00, 0x00, 0x00,
            // IFA_ADDRESS 198.18.0.1
            0x08, 0x00, 0x01, 0x00,  0xc6, 0x12, 0x00, 0x01,
            // IFA_LOCAL 198.18.0.1
            0x08, 0x00, 0x02, 0x00,  0xc6, 0x12, 0x00, 0x01,
            // IFA_BROADCAST 198.18.0.255
            0x08, 0x00, 0x04, 0x00,  0xc6, 0x12, 0x00, 0xff,
            // IFA_LABEL "veth0"
            0x0a, 0x00, 0x03, 0x00,  b'v', b'e', b't', b'h',  b'0', 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            parse_address(payload),
            Some((4, Ipv4Addr::new(198, 18, 0, 1), 24))
        );
        // Point-to-point: IFA_LOCAL is ours, IFA_ADDRESS the peer's.
        let mut ptp = payload.to_vec();
        ptp[15] = 0x09;
        assert_eq!(
            parse_address(&ptp).map(|a| a.1),
            Some(Ipv4Addr::new(198, 18, 0, 1))
        );
        // Only IFA_ADDRESS.
        assert_eq!(
            parse_address(&payload[..16]).map(|a| a.1),
            Some(Ipv4Addr::new(198, 18, 0, 1))
        );
        assert_eq!(parse_address(&payload[..8]), None);
        assert_eq!(parse_address(&payload[..7]), None);
        let mut v6 = payload.to_vec();
        v6[0] = 10;
        assert_eq!(parse_address(&v6), None);
    }

    #[test]
    fn test_headers_round_trip() {
        let nd = NdMsg {
            family: AF_INET,
            index: 42,
            state: NUD_STALE,
            flags: NTF_USE,
            ndm_type: RTN_UNICAST,
        };
        assert_eq!(NdMsg::parse(&nd.to_bytes()), Some(nd));
        let rt = RtMsg {
            family: AF_INET,
            dst_len: 24,
            table: RT_TABLE_MAIN,
            scope: RT_SCOPE_LINK,
            flags: 0x200,
            ..RtMsg::default()
        };
        assert_eq!(RtMsg::parse(&rt.to_bytes()), Some(rt));
        let ifa = IfAddrMsg {
            family: AF_INET,
            prefix_len: 8,
            flags: 0x80,
            scope: RT_SCOPE_LINK,
            index: 1,
        };
        assert_eq!(IfAddrMsg::parse(&ifa.to_bytes()), Some(ifa));
        assert_eq!(NdMsg::parse(&[0; 11]), None);
        assert_eq!(RtMsg::parse(&[0; 11]), None);
        assert_eq!(IfAddrMsg::parse(&[0; 7]), None);
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
