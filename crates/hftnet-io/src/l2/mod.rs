//! The layer-2 part of the crate: the ring trait of the kernel-bypass
//! backends ([`ring`]), the one generic transport over it ([`L2Transport`]),
//! the user-space UDP/IPv4/Ethernet layer it speaks ([`frames`]), and — in
//! this module — the path lookup they share.
//!
//! Path lookup, shared by the kernel-bypass transports (AF_PACKET,
//! AF_XDP, DPDK): which source MAC and IPv4 address to put in a frame for a
//! destination, and which destination MAC — found in the kernel's routing and
//! neighbour (ARP) tables, so the bypass transports agree with the kernel's
//! own view of the network.
//!
//! Layer: setup code above `hftnet_sys::netlink`, called when a transport is
//! opened, never on the hot path (it allocates and talks rtnetlink). Safe
//! code only.
//!
//! Rules of [`resolve`], in order:
//! - IPv4 multicast (224.0.0.0/4): the mapped group MAC (RFC 1112 §6.4),
//!   source = the interface's address; no table lookup.
//! - 255.255.255.255 and the interface subnet's broadcast address:
//!   `ff:ff:ff:ff:ff:ff`, source = the interface's address.
//! - Unicast: the kernel's route (`ip route get`) must leave through the
//!   interface; the next hop is its gateway, else the destination itself;
//!   the source is the route's preferred source, else the interface's
//!   address. The next hop's ARP entry is used if the kernel would use it;
//!   otherwise the kernel is asked to resolve it (`RTM_NEWNEIGH` with
//!   `NTF_USE`: it sends the ARP request itself, no packet of ours) and the
//!   table is polled every [`POLL_INTERVAL`] until the entry is usable, it
//!   fails, or the timeout passes.
//!
//! Invariants: everything happens in the calling thread's network namespace;
//! nothing is written to the tables except the `NTF_USE` nudge of an entry
//! that is missing, incomplete, failed or stale (which the kernel would do
//! itself for its own traffic). Must never: send application traffic to
//! trigger resolution, block longer than the caller's timeout (plus one
//! netlink round trip), or panic on any input.

pub mod frames;
pub mod ring;
mod transport;

pub use transport::{L2Transport, L2Tx, SLOT_WAIT};

use std::fmt;
use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::netlink::{self, ARPHRD_ETHER, LinkInfo, RtNetlink};
use hftnet_wire::ethernet::Address;

/// How often [`resolve`] reads the neighbour table while waiting for an ARP
/// answer.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// An Ethernet interface as the layer-2 backends see it: a snapshot taken by
/// [`L2Iface::lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Iface {
    /// The interface name, e.g. `veth0`.
    pub name: String,
    /// The interface index (`if_nametoindex`).
    pub index: u32,
    /// Its MAC address: the source of every frame sent on it.
    pub mac: Address,
    /// Its primary IPv4 address and prefix length, if it has one.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// Its MTU (the largest IPv4 packet, without the Ethernet header).
    pub mtu: u32,
    /// True if it is administratively up (`IFF_UP`).
    pub up: bool,
}

/// Where to send a frame for `dst_ip`: the result of [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// The IPv4 destination asked for.
    pub dst_ip: Ipv4Addr,
    /// The next hop: the gateway of the route, or `dst_ip` itself when it is
    /// on the link (and for multicast and broadcast).
    pub via: Ipv4Addr,
    /// The source IPv4 address to put in packets to `dst_ip`.
    pub src_ip: Ipv4Addr,
    /// The destination MAC address: `via`'s, or the multicast / broadcast MAC.
    pub dst_mac: Address,
}

/// Why an interface could not be looked up or a destination not resolved.
/// Each message names the interface or address at fault and what to check.
#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    /// No interface of that name in this network namespace.
    #[error(
        "interface {name:?} does not exist in this network namespace (list them with `ip link`; \
         inside an hftnet lab the interface is veth0)"
    )]
    NoSuchInterface {
        /// The name asked for.
        name: String,
    },
    /// The interface has no 6-byte hardware address (loopback, tun, ipip...).
    #[error(
        "interface {name:?} is not an Ethernet interface (link type {arphrd}, {}); the layer-2 \
         transports need one with a 6-byte MAC address",
        arphrd_name(*.arphrd)
    )]
    NotEthernet {
        /// The interface.
        name: String,
        /// Its `ARPHRD_*` link type.
        arphrd: u16,
    },
    /// The interface has no IPv4 address to send from.
    #[error(
        "interface {name:?} has no IPv4 address to send from (add one with \
         `ip addr add ADDR/PREFIX dev {name}`)"
    )]
    NoIpv4Address {
        /// The interface.
        name: String,
    },
    /// The interface is administratively down.
    #[error("interface {name:?} is down (bring it up with `ip link set {name} up`)")]
    InterfaceDown {
        /// The interface.
        name: String,
    },
    /// The kernel routes the destination through another interface.
    #[error(
        "{dst} is routed through {route_iface}, not {iface} (see `ip route get {dst}`): send \
         through {route_iface}, or add a route to {dst} via {iface}"
    )]
    WrongInterface {
        /// The destination.
        dst: Ipv4Addr,
        /// The interface the caller would send on.
        iface: String,
        /// The interface of the kernel's route (or `ifindex N` if its name
        /// could not be read).
        route_iface: String,
    },
    /// The kernel has no route to the destination.
    #[error(
        "no route to {dst} (to send through {iface}): {cause}; check `ip route get {dst}` and the \
         address and prefix of {iface}"
    )]
    NoRoute {
        /// The destination.
        dst: Ipv4Addr,
        /// The interface the caller would send on.
        iface: String,
        /// The kernel's answer to the route lookup.
        cause: SyscallError,
    },
    /// Nobody answered the ARP requests for the next hop in time.
    #[error(
        "could not resolve the MAC address of {ip}{} on {iface}: {} after {waited:.0?}; is the \
         peer up and on this link? (check its address and `ip neigh show dev {iface}`)",
        via_note(*.ip, *.dst),
        if *.failed { "the kernel's ARP requests got no answer (entry FAILED)" } else { "no ARP answer" }
    )]
    Unresolved {
        /// The address whose MAC was asked for (the next hop).
        ip: Ipv4Addr,
        /// The destination the next hop leads to (equal to `ip` on the link).
        dst: Ipv4Addr,
        /// The interface.
        iface: String,
        /// How long [`resolve`] waited.
        waited: Duration,
        /// True if the kernel marked the entry `FAILED` (it gave up probing)
        /// before the timeout.
        failed: bool,
    },
    /// A netlink request failed.
    #[error("{what}: {cause}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The failed request.
        cause: SyscallError,
    },
}

fn via_note(ip: Ipv4Addr, dst: Ipv4Addr) -> String {
    if ip == dst {
        String::new()
    } else {
        format!(" (the gateway to {dst})")
    }
}

/// A readable name for the common `ARPHRD_*` link types.
fn arphrd_name(arphrd: u16) -> &'static str {
    match arphrd {
        ARPHRD_ETHER => "Ethernet without a 6-byte address",
        netlink::ARPHRD_LOOPBACK => "loopback",
        768 => "IPIP tunnel",
        776 => "SIT tunnel",
        778 => "GRE tunnel",
        823 => "IPv6 GRE tunnel",
        32 => "InfiniBand",
        65534 => "no link layer, e.g. tun or wireguard",
        _ => "see include/uapi/linux/if_arp.h",
    }
}

fn netlink_err(what: impl Into<String>) -> impl FnOnce(SyscallError) -> L2Error {
    let what = what.into();
    move |cause| L2Error::Netlink { what, cause }
}

fn open_netlink() -> Result<RtNetlink, L2Error> {
    RtNetlink::open().map_err(netlink_err("opening an rtnetlink socket"))
}

impl L2Iface {
    /// Looks interface `name` up in the calling thread's network namespace:
    /// index, MAC address, primary IPv4 address, MTU and state.
    ///
    /// # Errors
    /// [`L2Error::NoSuchInterface`] (also for a name no interface can have),
    /// [`L2Error::NotEthernet`] if it has no 6-byte MAC address (type other
    /// than `ARPHRD_ETHER`), [`L2Error::Netlink`] if a query fails. A down
    /// interface or one without IPv4 address is returned; [`resolve`]
    /// refuses it.
    pub fn lookup(name: &str) -> Result<Self, L2Error> {
        let mut nl = open_netlink()?;
        let no_such = || L2Error::NoSuchInterface {
            name: name.to_owned(),
        };
        let index = match nl.link_index(name) {
            Ok(index) => index,
            Err(e) if matches!(e.errno(), Some(libc::ENODEV | libc::EINVAL)) => {
                return Err(no_such());
            }
            Err(e) => return Err(netlink_err(format!("looking up interface {name:?}"))(e)),
        };
        let link = match nl.link_info(index) {
            Ok(link) => link,
            Err(e) if e.errno() == Some(libc::ENODEV) => return Err(no_such()),
            Err(e) => return Err(netlink_err(format!("reading interface {name:?}"))(e)),
        };
        let ipv4 = nl
            .ipv4_addresses(index)
            .map_err(netlink_err(format!("reading the addresses of {name:?}")))?
            .first()
            .copied();
        Self::from_link(&link, ipv4)
    }

    /// Builds the snapshot from a link and its primary address.
    fn from_link(link: &LinkInfo, ipv4: Option<(Ipv4Addr, u8)>) -> Result<Self, L2Error> {
        let mac = match link.mac {
            Some(mac) if link.arphrd == ARPHRD_ETHER => Address(mac),
            _ => {
                return Err(L2Error::NotEthernet {
                    name: link.name.clone(),
                    arphrd: link.arphrd,
                });
            }
        };
        Ok(Self {
            name: link.name.clone(),
            index: link.index,
            mac,
            ipv4,
            mtu: link.mtu,
            up: link.up,
        })
    }

    /// The interface's IPv4 address, or [`L2Error::NoIpv4Address`].
    fn require_ipv4(&self) -> Result<Ipv4Addr, L2Error> {
        self.ipv4
            .map(|(addr, _)| addr)
            .ok_or_else(|| L2Error::NoIpv4Address {
                name: self.name.clone(),
            })
    }

    /// True if `ip` is the broadcast address of the interface's subnet
    /// (prefixes up to /30; /31 and /32 have none).
    fn is_subnet_broadcast(&self, ip: Ipv4Addr) -> bool {
        match self.ipv4 {
            Some((addr, prefix)) if prefix <= 30 => {
                let host_mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
                u32::from(ip) == u32::from(addr) | host_mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for L2Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (index {}, {}", self.name, self.index, self.mac)?;
        if let Some((addr, prefix)) = self.ipv4 {
            write!(f, ", {addr}/{prefix}")?;
        }
        write!(
            f,
            ", mtu {}, {})",
            self.mtu,
            if self.up { "up" } else { "down" }
        )
    }
}

/// The next hop of a destination that needs no table lookup: multicast and
/// broadcast. `Ok(None)` for unicast.
fn group_next_hop(iface: &L2Iface, dst: Ipv4Addr) -> Result<Option<NextHop>, L2Error> {
    let dst_mac = if dst.is_multicast() {
        Address::from_ipv4_multicast(dst)
    } else if dst.is_broadcast() || iface.is_subnet_broadcast(dst) {
        Address::BROADCAST
    } else {
        return Ok(None);
    };
    Ok(Some(NextHop {
        dst_ip: dst,
        via: dst,
        src_ip: iface.require_ipv4()?,
        dst_mac,
    }))
}

/// Finds where to send a frame for `dst_ip` out of `iface` (see the module
/// doc for the rules), waiting up to `timeout` for an ARP answer. Call it in
/// the network namespace `iface` was looked up in. A `timeout` of zero
/// answers from the table as it is (and starts resolution for next time).
///
/// A stale entry is returned at once, and the kernel is asked to re-confirm
/// it in the background (best effort).
///
/// # Errors
/// - [`L2Error::NoSuchInterface`] if `iface` is gone (or this is another
///   namespace), [`L2Error::InterfaceDown`] if it is down now;
/// - [`L2Error::NoIpv4Address`] if a source address is needed and neither
///   the route nor `iface` has one;
/// - [`L2Error::NoRoute`], [`L2Error::WrongInterface`] for unicast
///   destinations the kernel does not route through `iface`;
/// - [`L2Error::Unresolved`] if the next hop's entry failed or stayed
///   unusable for `timeout`;
/// - [`L2Error::Netlink`] if a query fails (`EPERM` for the resolution
///   request without `CAP_NET_ADMIN`).
pub fn resolve(iface: &L2Iface, dst_ip: Ipv4Addr, timeout: Duration) -> Result<NextHop, L2Error> {
    resolve_with(&mut open_netlink()?, iface, dst_ip, timeout)
}

/// [`resolve`] through `nl`, in the network namespace `nl` was opened in
/// (whichever thread calls it).
///
/// # Errors
/// As [`resolve`].
pub fn resolve_with(
    nl: &mut RtNetlink,
    iface: &L2Iface,
    dst_ip: Ipv4Addr,
    timeout: Duration,
) -> Result<NextHop, L2Error> {
    let start = Instant::now();
    check_link(nl, iface)?;
    if let Some(hop) = group_next_hop(iface, dst_ip)? {
        return Ok(hop);
    }

    let route = match nl.route_get(dst_ip) {
        Ok(route) => route,
        Err(cause)
            if matches!(
                cause.errno(),
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EINVAL)
            ) =>
        {
            return Err(L2Error::NoRoute {
                dst: dst_ip,
                iface: iface.name.clone(),
                cause,
            });
        }
        Err(e) => return Err(netlink_err(format!("looking up the route to {dst_ip}"))(e)),
    };
    if route.oif != iface.index {
        let route_iface = nl
            .link_info(route.oif)
            .map_or_else(|_| format!("ifindex {}", route.oif), |l| l.name);
        return Err(L2Error::WrongInterface {
            dst: dst_ip,
            iface: iface.name.clone(),
            route_iface,
        });
    }
    let via = route.gateway.unwrap_or(dst_ip);
    let src_ip = match route.prefsrc {
        Some(src) => src,
        None => iface.require_ipv4()?,
    };
    let dst_mac = wait_for_neighbour(nl, iface, via, dst_ip, start, timeout)?;
    Ok(NextHop {
        dst_ip,
        via,
        src_ip,
        dst_mac,
    })
}

/// The MAC address the kernel's tables give for `ip` out of `iface` right
/// now, asking nobody: the route to `ip` must leave through `iface`, and
/// its next hop (the gateway, else `ip`) must have a usable ARP entry.
/// `Ok(None)` when there is no such route or entry (nothing is resolved,
/// no ARP request is sent), and for multicast and broadcast addresses,
/// which no frame comes from. Reads through `nl`, in its namespace.
///
/// This is what the layer-2 endpoints compare a received frame's source
/// MAC with before they believe it (see [`frames`]).
///
/// # Errors
/// [`L2Error::Netlink`] if a query fails.
pub fn table_mac(
    nl: &mut RtNetlink,
    iface: &L2Iface,
    ip: Ipv4Addr,
) -> Result<Option<Address>, L2Error> {
    if ip.is_multicast() || ip.is_broadcast() || ip.is_unspecified() {
        return Ok(None);
    }
    let route = match nl.route_get(ip) {
        Ok(route) => route,
        Err(e)
            if matches!(
                e.errno(),
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EINVAL)
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(netlink_err(format!("looking up the route to {ip}"))(e)),
    };
    if route.oif != iface.index {
        return Ok(None);
    }
    let via = route.gateway.unwrap_or(ip);
    let entry = nl.neighbour(iface.index, via).map_err(netlink_err(format!(
        "reading the ARP entry of {via} on {}",
        iface.name
    )))?;
    Ok(entry
        .filter(netlink::Neighbour::is_usable)
        .and_then(|n| n.mac)
        .map(Address))
}

/// Re-reads the link: it must still exist under the same name and be up.
fn check_link(nl: &mut RtNetlink, iface: &L2Iface) -> Result<(), L2Error> {
    let gone = || L2Error::NoSuchInterface {
        name: iface.name.clone(),
    };
    let link = nl.link_info(iface.index).map_err(|cause| {
        if cause.errno() == Some(libc::ENODEV) {
            gone()
        } else {
            L2Error::Netlink {
                what: format!("reading interface {:?}", iface.name),
                cause,
            }
        }
    })?;
    if link.name != iface.name {
        return Err(gone());
    }
    if !link.up {
        return Err(L2Error::InterfaceDown {
            name: iface.name.clone(),
        });
    }
    Ok(())
}

/// Reads `via`'s ARP entry on `iface` until it is usable, starting
/// resolution once if it is not; see [`resolve`].
fn wait_for_neighbour(
    nl: &mut RtNetlink,
    iface: &L2Iface,
    via: Ipv4Addr,
    dst: Ipv4Addr,
    start: Instant,
    timeout: Duration,
) -> Result<Address, L2Error> {
    let read_err = || netlink_err(format!("reading the ARP entry of {via} on {}", iface.name));
    let mut triggered = false;
    loop {
        let entry = nl.neighbour(iface.index, via).map_err(read_err())?;
        match entry {
            Some(n) if n.is_usable() => {
                if n.state & netlink::NUD_STALE != 0 && !triggered {
                    // Best effort: have the kernel re-confirm the entry with a
                    // unicast probe; the stale address is still the one the
                    // kernel itself would use meanwhile.
                    let _ = nl.neighbour_resolve(iface.index, via);
                }
                // `is_usable` guarantees the address.
                if let Some(mac) = n.mac {
                    return Ok(Address(mac));
                }
            }
            Some(n) if n.is_failed() && triggered => {
                return Err(unresolved(iface, via, dst, start, true));
            }
            _ => {}
        }
        if !triggered {
            nl.neighbour_resolve(iface.index, via).map_err(|cause| {
                let hint = if cause.is_permission() {
                    " (RTM_NEWNEIGH needs CAP_NET_ADMIN)"
                } else {
                    ""
                };
                L2Error::Netlink {
                    what: format!("asking the kernel to resolve {via} on {}{hint}", iface.name),
                    cause,
                }
            })?;
            triggered = true;
            continue;
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(unresolved(iface, via, dst, start, false));
        }
        thread::sleep(POLL_INTERVAL.min(timeout - waited));
    }
}

fn unresolved(
    iface: &L2Iface,
    ip: Ipv4Addr,
    dst: Ipv4Addr,
    start: Instant,
    failed: bool,
) -> L2Error {
    L2Error::Unresolved {
        ip,
        dst,
        iface: iface.name.clone(),
        waited: start.elapsed(),
        failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(ipv4: Option<(Ipv4Addr, u8)>) -> L2Iface {
        L2Iface {
            name: "veth0".into(),
            index: 7,
            mac: Address([0x02, 0, 0, 0, 0, 1]),
            ipv4,
            mtu: 1500,
            up: true,
        }
    }

    const LAB: Option<(Ipv4Addr, u8)> = Some((Ipv4Addr::new(198, 18, 0, 1), 24));

    #[test]
    fn multicast_maps_to_group_mac() {
        let i = iface(LAB);
        let group = Ipv4Addr::new(239, 129, 2, 3);
        let hop = group_next_hop(&i, group).unwrap().unwrap();
        assert_eq!(
            hop,
            NextHop {
                dst_ip: group,
                via: group,
                src_ip: Ipv4Addr::new(198, 18, 0, 1),
                dst_mac: Address([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]),
            }
        );
        let hop = group_next_hop(&i, Ipv4Addr::new(224, 0, 0, 1))
            .unwrap()
            .unwrap();
        assert_eq!(hop.dst_mac, Address([0x01, 0x00, 0x5e, 0, 0, 1]));
        assert!(hop.dst_mac.is_multicast());
    }

    #[test]
    fn broadcast_maps_to_all_ones() {
        let i = iface(LAB);
        for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(198, 18, 0, 255)] {
            let hop = group_next_hop(&i, dst).unwrap().unwrap();
            assert_eq!(hop.dst_mac, Address::BROADCAST, "{dst}");
            assert_eq!((hop.via, hop.src_ip), (dst, Ipv4Addr::new(198, 18, 0, 1)));
        }
        // Unicast, including the network address and other subnets' broadcast.
        for dst in [
            Ipv4Addr::new(198, 18, 0, 2),
            Ipv4Addr::new(198, 18, 0, 0),
            Ipv4Addr::new(198, 18, 1, 255),
            Ipv4Addr::UNSPECIFIED,
        ] {
            assert!(group_next_hop(&i, dst).unwrap().is_none(), "{dst}");
        }
    }

    #[test]
    fn subnet_broadcast_per_prefix() {
        let at = |a: [u8; 4], p| iface(Some((Ipv4Addr::from(a), p)));
        assert!(at([10, 1, 2, 3], 8).is_subnet_broadcast(Ipv4Addr::new(10, 255, 255, 255)));
        assert!(at([10, 1, 2, 3], 0).is_subnet_broadcast(Ipv4Addr::BROADCAST));
        assert!(at([10, 1, 2, 1], 30).is_subnet_broadcast(Ipv4Addr::new(10, 1, 2, 3)));
        // /31 and /32 have no broadcast address; out-of-range prefixes none either.
        assert!(!at([10, 1, 2, 0], 31).is_subnet_broadcast(Ipv4Addr::new(10, 1, 2, 1)));
        assert!(!at([10, 1, 2, 3], 32).is_subnet_broadcast(Ipv4Addr::new(10, 1, 2, 3)));
        assert!(!at([10, 1, 2, 3], 200).is_subnet_broadcast(Ipv4Addr::new(10, 1, 2, 3)));
        assert!(!iface(None).is_subnet_broadcast(Ipv4Addr::new(10, 1, 2, 255)));
    }

    #[test]
    fn group_without_address_names_the_interface() {
        let e = group_next_hop(&iface(None), Ipv4Addr::new(239, 1, 1, 1)).unwrap_err();
        assert!(matches!(e, L2Error::NoIpv4Address { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("\"veth0\" has no IPv4 address"), "{msg}");
        // Unicast needs no interface address at this step.
        assert!(
            group_next_hop(&iface(None), Ipv4Addr::new(10, 0, 0, 1))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn from_link_requires_ethernet() {
        let mut link = LinkInfo {
            index: 7,
            name: "veth0".into(),
            mac: Some([0x02, 0, 0, 0, 0, 1]),
            mtu: 9000,
            up: false,
            running: false,
            arphrd: ARPHRD_ETHER,
        };
        let i = L2Iface::from_link(&link, LAB).unwrap();
        assert_eq!(
            (i.index, i.mac, i.mtu, i.up, i.ipv4),
            (7, Address([2, 0, 0, 0, 0, 1]), 9000, false, LAB)
        );
        assert_eq!(
            i.to_string(),
            "veth0 (index 7, 02:00:00:00:00:01, 198.18.0.1/24, mtu 9000, down)"
        );

        link.arphrd = netlink::ARPHRD_LOOPBACK;
        link.name = "lo".into();
        let msg = L2Iface::from_link(&link, None).unwrap_err().to_string();
        assert!(msg.contains("\"lo\" is not an Ethernet interface"), "{msg}");
        assert!(msg.contains("loopback"), "{msg}");

        link.arphrd = ARPHRD_ETHER;
        link.mac = None;
        let e = L2Iface::from_link(&link, None).unwrap_err();
        assert!(matches!(e, L2Error::NotEthernet { arphrd: 1, .. }), "{e:?}");
        link.arphrd = 65534;
        link.name = "tun0".into();
        let msg = L2Iface::from_link(&link, None).unwrap_err().to_string();
        assert!(msg.contains("tun"), "{msg}");
    }

    #[test]
    fn error_messages_say_what_to_check() {
        let e = L2Error::Unresolved {
            ip: Ipv4Addr::new(198, 18, 0, 99),
            dst: Ipv4Addr::new(198, 18, 0, 99),
            iface: "veth0".into(),
            waited: Duration::from_micros(301_400),
            failed: false,
        };
        assert_eq!(
            e.to_string(),
            "could not resolve the MAC address of 198.18.0.99 on veth0: no ARP answer after \
             301ms; is the peer up and on this link? (check its address and \
             `ip neigh show dev veth0`)"
        );
        let e = L2Error::Unresolved {
            ip: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(192, 0, 2, 7),
            iface: "eth1".into(),
            waited: Duration::from_secs(3),
            failed: true,
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("could not resolve the MAC address of 10.0.0.1 (the gateway to 192.0.2.7) on eth1: the kernel's ARP requests got no answer (entry FAILED) after 3s"),
            "{msg}"
        );

        let msg = L2Error::NoSuchInterface {
            name: "eth9".into(),
        }
        .to_string();
        assert!(msg.contains("\"eth9\" does not exist"), "{msg}");
        assert!(msg.contains("`ip link`"), "{msg}");

        let msg = L2Error::WrongInterface {
            dst: Ipv4Addr::new(10, 9, 9, 9),
            iface: "veth0".into(),
            route_iface: "eth0".into(),
        }
        .to_string();
        assert!(
            msg.starts_with("10.9.9.9 is routed through eth0, not veth0"),
            "{msg}"
        );

        let msg = L2Error::InterfaceDown {
            name: "veth0".into(),
        }
        .to_string();
        assert!(msg.contains("`ip link set veth0 up`"), "{msg}");

        let msg = L2Error::NoRoute {
            dst: Ipv4Addr::new(10, 9, 9, 9),
            iface: "veth0".into(),
            cause: SyscallError::from_errno("rtnetlink RTM_GETROUTE", libc::ENETUNREACH),
        }
        .to_string();
        assert!(
            msg.starts_with(
                "no route to 10.9.9.9 (to send through veth0): rtnetlink RTM_GETROUTE failed: "
            ),
            "{msg}"
        );

        let msg = L2Error::Netlink {
            what: "asking the kernel to resolve 198.18.0.2 on veth0".into(),
            cause: SyscallError::from_errno("rtnetlink RTM_NEWNEIGH(use)", libc::EPERM),
        }
        .to_string();
        assert!(
            msg.starts_with("asking the kernel to resolve 198.18.0.2 on veth0: rtnetlink RTM_NEWNEIGH(use) failed: "),
            "{msg}"
        );
    }
}
