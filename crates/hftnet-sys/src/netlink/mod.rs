//! A small synchronous rtnetlink client: enough to build a lab topology
//! (create a veth pair across namespaces, set links up, set the MTU, add IPv4
//! addresses and routes) without shelling out to `ip`, and to find a layer-2
//! path (look a route up, read and trigger the ARP table, read a link's MAC
//! address, MTU and IPv4 addresses) for the kernel-bypass transports.
//!
//! Layer: syscall wrappers, used by `hftnet-lab` and `hftnet_io::l2`. The
//! module is five files, re-exported here so every item is
//! `hftnet_sys::netlink::X`:
//! - `uapi`: the kernel's constants and fixed family headers ([`IfInfoMsg`],
//!   [`IfAddrMsg`], [`RtMsg`], [`NdMsg`]), byte for byte as in
//!   `include/uapi/linux/`;
//! - `message`: message building and parsing ([`MessageBuilder`],
//!   [`split_messages`], [`attributes`], the `*_request` and `parse_*`
//!   functions) — safe, pure code over byte buffers (`unsafe` is forbidden
//!   there), unit-tested byte for byte;
//! - `socket`: the `NETLINK_ROUTE` socket [`RtNetlink`], the only file with
//!   `unsafe` (its socket calls);
//! - `routes`: every link with its alternative names and every default
//!   route of every table and family ([`RtNetlink::links`],
//!   [`RtNetlink::default_routes`]), built on the two above, no `unsafe`;
//! - `genl`: generic netlink's family lookup and the `netdev` family's queue
//!   dump ([`NetdevQueue`]: whether an AF_XDP pool holds a queue), pure like
//!   `message`, sent by the `NETLINK_GENERIC` socket [`GenNetlink`].
//!
//! Invariants: every request carries `NLM_F_REQUEST | NLM_F_ACK` and a fresh
//! sequence number; [`RtNetlink::request`] reads until the kernel's
//! acknowledgement of *that* sequence number and turns a negative
//! acknowledgement into a [`SyscallError`](crate::SyscallError) whose `call`
//! names the operation (e.g. `"rtnetlink RTM_NEWLINK(veth)"`) and whose
//! `errno` is the kernel's. Messages in host byte order, attributes 4-byte
//! aligned, as the kernel wants. A socket acts on the network namespace it was
//! *created* in, whichever thread later uses it.
//!
//! Must never: act on a namespace other than the socket's (or the one named by
//! `IFLA_NET_NS_FD` in a request built by the caller), block forever (the
//! socket has a receive timeout), or be used on a hot path (it allocates).
//!
//! # References
//! - `rtnetlink(7)`, `netlink(7)`; `include/uapi/linux/{netlink,rtnetlink,if_link,if_addr,veth,neighbour}.h`
//! - iproute2 `ip/iplink.c`, `ip/link_veth.c`, `ip/ipaddress.c`, `ip/iproute.c`, `ip/ipneigh.c`
//! - `net/core/neighbour.c` (`neigh_add`, `neigh_get`, `__neigh_event_send`)

mod genl;
mod message;
mod routes;
mod socket;
mod uapi;

pub use genl::{
    GENL_ID_CTRL, NetdevQueue, dump_queues_request, get_family_request, parse_family_id,
    parse_queue,
};
pub use message::{
    Attr, Attributes, LinkInfo, Malformed, Message, MessageBuilder, Messages, Neighbour, Nest,
    Reply, RouteInfo, add_ipv4_address_request, add_ipv4_route_request, attributes, decode_error,
    dump_bridge_ports_request, dump_ipv4_addresses_request, get_link_by_index_request,
    get_link_by_name_request, get_neighbour_request, get_route_request, link_event_state, messages,
    neighbour_use_request, new_bridge_request, new_veth_request, parse_address, parse_bridge_port,
    parse_link, parse_neighbour, parse_route, set_link_state_request, set_master_request,
    set_mtu_request, split_messages,
};
pub use routes::{
    AF_INET6, DefaultRoute, IFLA_ALT_IFNAME, IFLA_PROP_LIST, LinkNames, NHA_GROUP, NHA_ID, NHA_OIF,
    Nexthop, RTA_MULTIPATH, RTA_NH_ID, RTA_TABLE, RTM_GETNEXTHOP, RTM_NEWNEXTHOP, RouteEntry,
    dump_links_request, dump_nexthops_request, dump_routes_request, parse_link_names,
    parse_nexthop, parse_route_entry,
};
pub use socket::{GenNetlink, LinkEvents, REPLY_TIMEOUT_SECS, RtNetlink};
pub use uapi::{AF_BRIDGE, BR_STATE_FORWARDING, IFLA_BRPORT_STATE, IFLA_PROTINFO};
pub use uapi::{
    ARPHRD_ETHER, ARPHRD_LOOPBACK, IFA_ADDRESS, IFA_BROADCAST, IFA_LOCAL, IFF_LOWER_UP,
    IFF_RUNNING, IFF_UP, IFLA_ADDRESS, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO,
    IFLA_MTU, IFLA_NET_NS_FD, IFNAMSIZ, IfAddrMsg, IfInfoMsg, NDA_DST, NDA_LLADDR, NLA_F_NESTED,
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NTF_USE, NUD_DELAY, NUD_FAILED, NUD_INCOMPLETE, NUD_NOARP,
    NUD_NONE, NUD_PERMANENT, NUD_PROBE, NUD_REACHABLE, NUD_STALE, NdMsg, RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PREFSRC, RTM_DELLINK,
    RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH,
    RTM_NEWROUTE, RTMGRP_LINK, RTN_UNICAST, RTPROT_BOOT, RtMsg, VETH_INFO_PEER,
};
