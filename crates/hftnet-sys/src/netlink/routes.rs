//! Every link with its alternative names, and every default route of every
//! table and family with the interfaces it leaves through: what a tool needs
//! to tell whether an interface carries a default route, however the
//! interface is named and wherever the route is.
//!
//! Pure request builders and parsers (tested byte for byte), and two dumps
//! on [`RtNetlink`]: [`RtNetlink::links`] and [`RtNetlink::default_routes`].
//!
//! # References
//! - `include/uapi/linux/{if_link,rtnetlink,nexthop}.h`
//! - iproute2 `ip/iproute.c` (`print_rta_multipath`), `ip/ipnexthop.c`
//! - `net/core/rtnetlink.c` (`rtnl_fill_prop_list`), `net/ipv4/fib_frontend.c`
//!   (`inet_dump_fib`: without a table filter every table is dumped)

#![forbid(unsafe_code)]

use super::message::{MessageBuilder, attributes};
use super::socket::RtNetlink;
use super::uapi::{
    IFLA_IFNAME, IFLA_MASTER, IfInfoMsg, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
    RTA_DST, RTA_OIF, RTM_GETLINK, RTM_GETROUTE, RTM_NEWLINK, RTM_NEWROUTE, RTN_UNICAST, RtMsg,
};
use crate::SyscallError;

type Result<T> = std::result::Result<T, SyscallError>;

/// `IFLA_PROP_LIST`: nested list of link properties (alternative names).
pub const IFLA_PROP_LIST: u16 = 52;
/// `IFLA_ALT_IFNAME`: one alternative name (inside `IFLA_PROP_LIST`). Kernel 5.5+.
pub const IFLA_ALT_IFNAME: u16 = 53;
/// `IFLA_LINK`: the link this one is stacked on (vlan, macvlan; a veth's
/// peer), an index of this namespace unless `IFLA_LINK_NETNSID` is there.
pub const IFLA_LINK: u16 = 5;
/// `IFLA_LINK_NETNSID`: `IFLA_LINK` is an index of another namespace.
pub const IFLA_LINK_NETNSID: u16 = 37;
/// `NHA_BLACKHOLE`: a nexthop that drops packets (flag, no interface).
pub const NHA_BLACKHOLE: u16 = 3;
/// `RTA_MULTIPATH`: a list of `struct rtnexthop`, each with its attributes.
pub const RTA_MULTIPATH: u16 = 9;
/// `RTA_TABLE`: the routing table (u32; `rtm_table` holds only 8 bits).
pub const RTA_TABLE: u16 = 15;
/// `RTA_NH_ID`: the route uses nexthop object N (kernel 5.3+).
pub const RTA_NH_ID: u16 = 30;
/// `RTM_NEWNEXTHOP`: a nexthop object (also the type of replies).
pub const RTM_NEWNEXTHOP: u16 = 104;
/// `RTM_GETNEXTHOP`: query nexthop objects.
pub const RTM_GETNEXTHOP: u16 = 106;
/// `NHA_ID`: the nexthop's id (u32).
pub const NHA_ID: u16 = 1;
/// `NHA_GROUP`: array of `struct nexthop_grp` (8 bytes each, id first).
pub const NHA_GROUP: u16 = 2;
/// `NHA_OIF`: the nexthop's interface (u32).
pub const NHA_OIF: u16 = 5;
/// `AF_INET6` as the `u8` family field holds it.
pub const AF_INET6: u8 = 10;
const AF_INET: u8 = 2;
/// Length of `struct nhmsg`.
const NHMSG_LEN: usize = 8;
/// Length of `struct rtnexthop`.
const RTNH_LEN: usize = 8;

/// A link's index, name and alternative names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkNames {
    /// `ifi_index`.
    pub index: u32,
    /// `IFLA_IFNAME`.
    pub name: String,
    /// Every `IFLA_ALT_IFNAME` (`ip link property add dev X altname Y`).
    pub altnames: Vec<String>,
    /// `IFLA_MASTER`: the bond or bridge it is a port of.
    pub master: Option<u32>,
    /// `IFLA_LINK` when it is an index of this namespace (no
    /// `IFLA_LINK_NETNSID`) and not the link itself: the link a vlan or
    /// macvlan is stacked on.
    pub link: Option<u32>,
}

impl LinkNames {
    /// Whether `name` is this link's name or one of its alternative names.
    #[must_use]
    pub fn is_called(&self, name: &str) -> bool {
        self.name == name || self.altnames.iter().any(|a| a == name)
    }
}

/// One route of a dump, reduced to what says where it leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteEntry {
    /// `rtm_family` (2 = IPv4, 10 = IPv6).
    pub family: u8,
    /// `rtm_dst_len`: 0 for a default route.
    pub dst_len: u8,
    /// `RTA_TABLE`, else `rtm_table`.
    pub table: u32,
    /// `rtm_type` (`RTN_UNICAST` = 1).
    pub route_type: u8,
    /// `RTA_OIF`, and the interface of every `RTA_MULTIPATH` nexthop.
    pub oifs: Vec<u32>,
    /// `RTA_NH_ID`: a nexthop object, resolved with [`parse_nexthop`].
    pub nh_id: Option<u32>,
}

/// A nexthop object: its id, interface, and the ids of a group's members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nexthop {
    /// `NHA_ID`.
    pub id: u32,
    /// `NHA_OIF`.
    pub oif: Option<u32>,
    /// `NHA_GROUP` member ids.
    pub group: Vec<u32>,
    /// `NHA_BLACKHOLE`: drops packets, leaves by no interface.
    pub blackhole: bool,
}

/// A default route (unicast, prefix length 0, or 1 for the two halves
/// `0/1` + `128/1` a VPN installs) and the interfaces it leaves by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// 4 or 6.
    pub ip_version: u8,
    /// The prefix length: 0, or 1 for half of the address space.
    pub prefix_len: u8,
    /// The nexthop object it names (`RTA_NH_ID`), if any.
    pub nh_id: Option<u32>,
    /// The routing table (254 = main).
    pub table: u32,
    /// Interface indexes; empty when it names a nexthop object this kernel
    /// did not describe.
    pub oifs: Vec<u32>,
}

fn u32_of(payload: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(payload).ok().map(u32::from_ne_bytes)
}

fn c_string(payload: &[u8]) -> String {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[..end]).into_owned()
}

/// `RTM_GETLINK` dump of every link (`ip link show`).
#[must_use]
pub fn dump_links_request() -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
    m.push_header(&IfInfoMsg::default().to_bytes());
    m
}

/// `RTM_GETROUTE` dump of every route of `family` in every table (`ip
/// route show table all`; no table filter, so the kernel dumps them all).
#[must_use]
pub fn dump_routes_request(family: u8) -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
    m.push_header(
        &RtMsg {
            family,
            ..RtMsg::default()
        }
        .to_bytes(),
    );
    m
}

/// `RTM_GETNEXTHOP` dump of every nexthop object (`ip nexthop show`).
#[must_use]
pub fn dump_nexthops_request() -> MessageBuilder {
    let mut m = MessageBuilder::new(RTM_GETNEXTHOP, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
    m.push_header(&[0u8; NHMSG_LEN]);
    m
}

/// Parses an `RTM_NEWLINK` into its index, name and alternative names.
/// `None` if the header is short or the index negative.
#[must_use]
pub fn parse_link_names(payload: &[u8]) -> Option<LinkNames> {
    let hdr = IfInfoMsg::parse(payload)?;
    let mut out = LinkNames {
        index: u32::try_from(hdr.index).ok()?,
        name: String::new(),
        altnames: Vec::new(),
        master: None,
        link: None,
    };
    let mut other_netns = false;
    for a in attributes(payload.get(IfInfoMsg::LEN..)?) {
        match a.attr_type {
            IFLA_IFNAME => out.name = c_string(a.payload),
            IFLA_MASTER => out.master = u32_of(a.payload).filter(|&m| m != 0),
            IFLA_LINK => out.link = u32_of(a.payload).filter(|&l| l != 0),
            IFLA_LINK_NETNSID => other_netns = true,
            IFLA_PROP_LIST => out.altnames.extend(
                attributes(a.payload)
                    .filter(|p| p.attr_type == IFLA_ALT_IFNAME)
                    .map(|p| c_string(p.payload)),
            ),
            _ => {}
        }
    }
    if other_netns || out.link == Some(out.index) {
        out.link = None;
    }
    Some(out)
}

/// Parses an `RTM_NEWROUTE` of a dump. `None` if the header is short.
/// Malformed nexthops end the multipath list; attributes of the wrong
/// length are ignored.
#[must_use]
pub fn parse_route_entry(payload: &[u8]) -> Option<RouteEntry> {
    let hdr = RtMsg::parse(payload)?;
    let mut r = RouteEntry {
        family: hdr.family,
        dst_len: hdr.dst_len,
        table: u32::from(hdr.table),
        route_type: hdr.route_type,
        ..RouteEntry::default()
    };
    for a in attributes(payload.get(RtMsg::LEN..)?) {
        match a.attr_type {
            RTA_TABLE => r.table = u32_of(a.payload).unwrap_or(r.table),
            RTA_OIF => r.oifs.extend(u32_of(a.payload)),
            RTA_NH_ID => r.nh_id = u32_of(a.payload),
            RTA_MULTIPATH => {
                let mut rest = a.payload;
                while let Some(h) = rest.get(..RTNH_LEN) {
                    let len = usize::from(u16::from_ne_bytes([h[0], h[1]]));
                    if len < RTNH_LEN || len > rest.len() {
                        break;
                    }
                    r.oifs.push(u32::from_ne_bytes([h[4], h[5], h[6], h[7]]));
                    rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
                }
            }
            // RTA_DST of a default route is all zeros; a prefix length of 0
            // is what makes it default.
            RTA_DST => {}
            _ => {}
        }
    }
    Some(r)
}

/// Parses an `RTM_NEWNEXTHOP`. `None` if the header is short or there is
/// no id.
#[must_use]
pub fn parse_nexthop(payload: &[u8]) -> Option<Nexthop> {
    let mut n = Nexthop::default();
    let mut id = None;
    for a in attributes(payload.get(NHMSG_LEN..)?) {
        match a.attr_type {
            NHA_ID => id = u32_of(a.payload),
            NHA_OIF => n.oif = u32_of(a.payload),
            NHA_BLACKHOLE => n.blackhole = true,
            NHA_GROUP => n.group.extend(
                a.payload
                    .chunks_exact(8)
                    .map(|g| u32::from_ne_bytes([g[0], g[1], g[2], g[3]])),
            ),
            _ => {}
        }
    }
    n.id = id?;
    Some(n)
}

/// The interfaces nexthop `id` leaves by, following groups (bounded depth:
/// the kernel does not nest groups, a malformed answer cannot loop).
fn nexthop_oifs(all: &[Nexthop], id: u32, depth: u8, out: &mut Vec<u32>) {
    let Some(n) = all.iter().find(|n| n.id == id) else {
        return;
    };
    out.extend(n.oif);
    if depth < 4 {
        for &m in &n.group {
            nexthop_oifs(all, m, depth + 1, out);
        }
    }
}

/// Whether nexthop `id` only drops packets: a blackhole, or a group of
/// blackholes (bounded depth, as [`nexthop_oifs`]).
fn nexthop_is_blackhole(all: &[Nexthop], id: u32, depth: u8) -> bool {
    all.iter().find(|n| n.id == id).is_some_and(|n| {
        n.blackhole
            || (depth < 4
                && !n.group.is_empty()
                && n.group
                    .iter()
                    .all(|&m| nexthop_is_blackhole(all, m, depth + 1)))
    })
}

/// The default routes of `entries` (already filtered to unicast, prefix
/// length at most 1) with the interfaces they leave by, nexthop objects
/// resolved through `nexthops`. A route whose nexthop object only drops
/// packets (a blackhole, or a group of them) leaves by no interface and is
/// left out: some kernels dump it as unicast without an interface.
#[must_use]
pub fn resolve_default_routes(entries: Vec<RouteEntry>, nexthops: &[Nexthop]) -> Vec<DefaultRoute> {
    entries
        .into_iter()
        .filter_map(|r| {
            let mut oifs = r.oifs;
            if let Some(id) = r.nh_id {
                if oifs.is_empty() && nexthop_is_blackhole(nexthops, id, 0) {
                    return None;
                }
                nexthop_oifs(nexthops, id, 0, &mut oifs);
            }
            oifs.sort_unstable();
            oifs.dedup();
            Some(DefaultRoute {
                ip_version: if r.family == AF_INET6 { 6 } else { 4 },
                prefix_len: r.dst_len,
                nh_id: r.nh_id,
                table: r.table,
                oifs,
            })
        })
        .collect()
}

impl RtNetlink {
    /// Sends a dump request and returns the payloads of the replies of
    /// type `reply`, repeating a dump the kernel marks inconsistent
    /// (`NLM_F_DUMP_INTR`) up to three times.
    fn dump(
        &mut self,
        call: &'static str,
        reply: u16,
        make: fn() -> MessageBuilder,
    ) -> Result<Vec<Vec<u8>>> {
        for _ in 0..3 {
            let replies = self.request(call, make())?;
            if replies.iter().any(|r| r.flags & NLM_F_DUMP_INTR != 0) {
                continue;
            }
            return Ok(replies
                .into_iter()
                .filter(|r| r.msg_type == reply)
                .map(|r| r.payload)
                .collect());
        }
        Err(SyscallError::from_errno(call, libc::EINTR))
    }

    /// Every link of this socket's namespace with its alternative names
    /// (`ip link show`).
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_GETLINK(dump)"`: the dump's error, or `EINTR`
    /// if it stayed inconsistent.
    pub fn links(&mut self) -> Result<Vec<LinkNames>> {
        Ok(self
            .dump(
                "rtnetlink RTM_GETLINK(dump)",
                RTM_NEWLINK,
                dump_links_request,
            )?
            .iter()
            .filter_map(|p| parse_link_names(p))
            .collect())
    }

    /// Every unicast default route (prefix length 0, or 1: the `0/1` +
    /// `128/1` pair a VPN installs covers everything too), IPv4 and IPv6, of
    /// every routing table, with the interfaces it leaves by: its `RTA_OIF`,
    /// every multipath nexthop's, and those of the nexthop object it names.
    /// A route through a blackhole nexthop object leaves by no interface and
    /// is left out.
    ///
    /// # Errors
    /// `call = "rtnetlink RTM_GETROUTE(dump)"` or
    /// `"rtnetlink RTM_GETNEXTHOP(dump)"` (only asked when a route names a
    /// nexthop object): the dump's error.
    pub fn default_routes(&mut self) -> Result<Vec<DefaultRoute>> {
        let mut entries = Vec::new();
        for family in [AF_INET, AF_INET6] {
            let call = "rtnetlink RTM_GETROUTE(dump)";
            let make = if family == AF_INET {
                || dump_routes_request(AF_INET)
            } else {
                || dump_routes_request(AF_INET6)
            };
            entries.extend(
                self.dump(call, RTM_NEWROUTE, make)?
                    .iter()
                    .filter_map(|p| parse_route_entry(p))
                    .filter(|r| r.dst_len <= 1 && r.route_type == RTN_UNICAST),
            );
        }
        let nexthops: Vec<Nexthop> = if entries.iter().any(|r| r.nh_id.is_some()) {
            self.dump(
                "rtnetlink RTM_GETNEXTHOP(dump)",
                RTM_NEWNEXTHOP,
                dump_nexthops_request,
            )?
            .iter()
            .filter_map(|p| parse_nexthop(p))
            .collect()
        } else {
            Vec::new()
        };
        Ok(resolve_default_routes(entries, &nexthops))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(t: u16, p: &[u8]) -> Vec<u8> {
        let mut v = ((4 + p.len()) as u16).to_ne_bytes().to_vec();
        v.extend(t.to_ne_bytes());
        v.extend(p);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    #[test]
    fn test_parse_link_names() {
        let mut p = IfInfoMsg {
            index: 7,
            ..IfInfoMsg::default()
        }
        .to_bytes()
        .to_vec();
        p.extend(attr(IFLA_IFNAME, b"veth0\0"));
        let mut props = attr(IFLA_ALT_IFNAME, b"trading-port-a\0");
        props.extend(attr(IFLA_ALT_IFNAME, b"tp0\0"));
        p.extend(attr(
            IFLA_PROP_LIST | super::super::uapi::NLA_F_NESTED,
            &props,
        ));
        let l = parse_link_names(&p).unwrap();
        assert_eq!(l.index, 7);
        assert_eq!(l.name, "veth0");
        assert_eq!(l.altnames, ["trading-port-a", "tp0"]);
        assert!(l.is_called("tp0") && l.is_called("veth0") && !l.is_called("tp"));
        assert_eq!((l.master, l.link), (None, None));
        // A vlan on link 3, port of bridge 9; a veth whose peer is in
        // another namespace (its IFLA_LINK is not an index of ours).
        let mut v = p.clone();
        v.extend(attr(IFLA_LINK, &3u32.to_ne_bytes()));
        v.extend(attr(IFLA_MASTER, &9u32.to_ne_bytes()));
        let l = parse_link_names(&v).unwrap();
        assert_eq!((l.master, l.link), (Some(9), Some(3)));
        v.extend(attr(IFLA_LINK_NETNSID, &1i32.to_ne_bytes()));
        assert_eq!(parse_link_names(&v).unwrap().link, None);
        assert!(parse_link_names(&p[..10]).is_none());
    }

    #[test]
    fn test_parse_route_entry() {
        let mut p = RtMsg {
            family: AF_INET6,
            table: 252,
            route_type: RTN_UNICAST,
            ..RtMsg::default()
        }
        .to_bytes()
        .to_vec();
        p.extend(attr(RTA_TABLE, &1000u32.to_ne_bytes()));
        p.extend(attr(RTA_OIF, &3u32.to_ne_bytes()));
        // Two nexthops: ifindex 5 (with a gateway attribute), ifindex 9.
        let mut mp = Vec::new();
        let gw = attr(5, &[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        mp.extend(((8 + gw.len()) as u16).to_ne_bytes());
        mp.extend([0, 0]);
        mp.extend(5i32.to_ne_bytes());
        mp.extend(&gw);
        mp.extend(8u16.to_ne_bytes());
        mp.extend([0, 0]);
        mp.extend(9i32.to_ne_bytes());
        p.extend(attr(RTA_MULTIPATH, &mp));
        p.extend(attr(RTA_NH_ID, &77u32.to_ne_bytes()));
        let r = parse_route_entry(&p).unwrap();
        assert_eq!(
            r,
            RouteEntry {
                family: AF_INET6,
                dst_len: 0,
                table: 1000,
                route_type: RTN_UNICAST,
                oifs: vec![3, 5, 9],
                nh_id: Some(77),
            }
        );
        // A nexthop claiming more bytes than there are ends the list.
        let mut bad = RtMsg::default().to_bytes().to_vec();
        bad.extend(attr(RTA_MULTIPATH, &[200, 0, 0, 0, 1, 0, 0, 0]));
        assert!(parse_route_entry(&bad).unwrap().oifs.is_empty());
        assert!(parse_route_entry(&p[..5]).is_none());
    }

    #[test]
    fn test_parse_nexthop_groups() {
        let nh = |id: u32, attrs: Vec<u8>| {
            let mut p = vec![0u8; NHMSG_LEN];
            p.extend(attr(NHA_ID, &id.to_ne_bytes()));
            p.extend(attrs);
            parse_nexthop(&p).unwrap()
        };
        let a = nh(1, attr(NHA_OIF, &4u32.to_ne_bytes()));
        let b = nh(2, attr(NHA_OIF, &6u32.to_ne_bytes()));
        let mut grp = Vec::new();
        for id in [1u32, 2] {
            grp.extend(id.to_ne_bytes());
            grp.extend([1, 0, 0, 0]);
        }
        let g = nh(3, attr(NHA_GROUP, &grp));
        assert_eq!(g.group, [1, 2]);
        let all = [a, b, g];
        let mut out = Vec::new();
        nexthop_oifs(&all, 3, 0, &mut out);
        assert_eq!(out, [4, 6]);
        assert!(parse_nexthop(&[0u8; NHMSG_LEN]).is_none(), "no id");
        assert!(!nexthop_is_blackhole(&all, 3, 0));
        let bh = nh(5, attr(NHA_BLACKHOLE, &[]));
        assert!(bh.blackhole && bh.oif.is_none());
        let mut grp = Vec::new();
        grp.extend(5u32.to_ne_bytes());
        grp.extend([1, 0, 0, 0]);
        let g = nh(6, attr(NHA_GROUP, &grp));
        let all = [all[0].clone(), bh, g];
        assert!(nexthop_is_blackhole(&all, 5, 0) && nexthop_is_blackhole(&all, 6, 0));
        assert!(!nexthop_is_blackhole(&all, 1, 0) && !nexthop_is_blackhole(&all, 99, 0));
        // A unicast default route through the blackhole (or its group) is
        // left out; one through nexthop 1 leaves by ifindex 4; one through
        // an unknown nexthop by an interface nobody knows (kept, empty).
        let route = |nh: u32| RouteEntry {
            family: AF_INET,
            route_type: RTN_UNICAST,
            table: 254,
            nh_id: Some(nh),
            ..RouteEntry::default()
        };
        let got = resolve_default_routes(vec![route(5), route(6), route(1), route(99)], &all);
        let seen: Vec<(Option<u32>, Vec<u32>)> =
            got.iter().map(|r| (r.nh_id, r.oifs.clone())).collect();
        assert_eq!(seen, [(Some(1), vec![4]), (Some(99), vec![])]);
    }

    /// Read-only dumps of the current namespace: need no privilege and
    /// change nothing.
    #[test]
    fn live_links_and_default_routes() {
        let mut nl = RtNetlink::open().unwrap();
        let links = nl.links().unwrap();
        let lo = nl.link_index("lo").unwrap();
        assert!(
            links.iter().any(|l| l.index == lo && l.is_called("lo")),
            "{links:?}"
        );
        // Whatever default routes there are leave by links that exist.
        for r in nl.default_routes().unwrap() {
            assert!(matches!(r.ip_version, 4 | 6), "{r:?}");
            for oif in &r.oifs {
                assert!(links.iter().any(|l| l.index == *oif), "{r:?} {links:?}");
            }
        }
        assert_eq!(nl.link_index("lo").unwrap(), lo, "still in step");
    }
}
