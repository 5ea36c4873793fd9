//! The kernel's side of rtnetlink: constants from the uapi headers and the
//! fixed family headers (`ifinfomsg`, `ifaddrmsg`, `rtmsg`, `ndmsg`) with
//! their exact wire layout.
//!
//! Layer: the bottom of [`netlink`](super); plain data, no I/O. Values are
//! ABI, identical on every architecture; headers are encoded in host byte
//! order with their padding zeroed, as the kernel's strict checks require.
//!
//! Must never: hold `unsafe` code (it is forbidden here), or change a value
//! the kernel defines.

#![forbid(unsafe_code)]

// ---- constants from the uapi headers (values are ABI, identical on every arch) ----

/// `NLMSG_HDRLEN`: size of `struct nlmsghdr`.
pub(super) const NLMSG_HDRLEN: usize = 16;
/// `NLA_HDRLEN`: size of `struct nlattr`.
pub(super) const NLA_HDRLEN: usize = 4;

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
/// `NLA_TYPE_MASK`: an attribute type without `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`.
pub(super) const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | 0x4000);

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
/// `RTM_DELLINK`: a link was removed (a notification, for us).
pub const RTM_DELLINK: u16 = 17;
/// `RTMGRP_LINK`: the multicast group mask of link notifications
/// (`RTNLGRP_LINK`, group 1), for `sockaddr_nl.nl_groups`.
pub const RTMGRP_LINK: u32 = 1;
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
/// `IFLA_MASTER`: index of the link's master, e.g. its bridge (u32; 0 to release).
pub const IFLA_MASTER: u16 = 10;
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
/// `IFLA_PROTINFO`: protocol-specific link information; for a bridge port
/// in an `AF_BRIDGE` dump, the nested `IFLA_BRPORT_*` attributes.
pub const IFLA_PROTINFO: u16 = 12;
/// `IFLA_BRPORT_STATE`: a bridge port's STP state (u8, inside `IFLA_PROTINFO`).
pub const IFLA_BRPORT_STATE: u16 = 1;
/// `BR_STATE_FORWARDING`: a bridge port that forwards frames.
pub const BR_STATE_FORWARDING: u8 = 3;
/// `AF_BRIDGE` (`PF_BRIDGE`), the family of bridge-port link dumps.
pub const AF_BRIDGE: u8 = 7;
/// `IFLA_BR_MCAST_SNOOPING`: a bridge's IGMP snooping on or off (u8, inside
/// `IFLA_INFO_DATA` of kind `"bridge"`).
pub const IFLA_BR_MCAST_SNOOPING: u16 = 23;

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

/// `AF_UNSPEC`, as the `u8` family field of the headers holds it.
pub(super) const AF_UNSPEC: u8 = 0;
/// `AF_INET`, as the `u8` family field of the headers holds it.
pub(super) const AF_INET: u8 = 2;
/// `IFNAMSIZ`: interface names are at most `IFNAMSIZ - 1` bytes.
pub const IFNAMSIZ: usize = 16;

/// `NLMSG_ALIGN` / `NLA_ALIGN`: rounds up to a multiple of 4.
pub(super) const fn align4(n: usize) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
