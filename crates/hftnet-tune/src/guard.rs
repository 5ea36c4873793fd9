//! The default-route guard: whether an interface named on the command line
//! carries a default route of the caller's network namespace, so tuning it
//! could cut the machine off.
//!
//! The name is resolved over netlink to an interface index, alternative
//! names included (`ip link property add dev eth0 altname uplink`), and
//! compared with the interfaces of every unicast default route: IPv4 and
//! IPv6, every routing table (policy routing), every nexthop of a multipath
//! route and of a nexthop object ([`RtNetlink::default_routes`]). A route
//! leaving by a device stacked on the interface counts as leaving by it:
//! its bond or bridge (`IFLA_MASTER`), a vlan or macvlan on it
//! (`IFLA_LINK`), and so on up. The halves `0/1` + `128/1` (`::/1` +
//! `8000::/1`) a VPN installs count as default routes; a route through a
//! blackhole nexthop object leaves by no interface and does not.
//!
//! Reads only; acts on the namespace of the calling thread.

use hftnet_sys::SyscallError;
use hftnet_sys::netlink::{DefaultRoute, LinkNames, RtNetlink};

/// Why the guard could not look.
#[derive(Debug, thiserror::Error)]
#[error("cannot check whether {iface} carries a default route: {source}")]
pub struct GuardError {
    /// The interface asked about.
    pub iface: String,
    /// The netlink error.
    pub source: SyscallError,
}

/// `index` and every link stacked on it, transitively: its bond or bridge
/// (the master of a link in the set), a vlan or macvlan on it (`IFLA_LINK`
/// into the set).
#[must_use]
pub fn stacked_on(links: &[LinkNames], index: u32) -> Vec<u32> {
    let mut set = vec![index];
    // Each round adds at least one link, or ends: at most links.len() rounds.
    loop {
        let more: Vec<u32> = links
            .iter()
            .filter(|l| !set.contains(&l.index))
            .filter(|l| {
                l.link.is_some_and(|lower| set.contains(&lower))
                    || links
                        .iter()
                        .any(|m| set.contains(&m.index) && m.master == Some(l.index))
            })
            .map(|l| l.index)
            .collect();
        if more.is_empty() {
            return set;
        }
        set.extend(more);
    }
}

fn table_name(table: u32) -> String {
    match table {
        254 => "main".into(),
        255 => "local".into(),
        253 => "default".into(),
        t => t.to_string(),
    }
}

/// The default routes that leave by `iface` (by name or alternative name)
/// in this thread's network namespace, described for a person:
/// `Ok(None)` when none does, or when there is no such interface here
/// (the caller reports a missing interface).
///
/// # Errors
/// [`GuardError`] when the links or routes cannot be dumped.
pub fn default_routes_via(iface: &str) -> Result<Option<String>, GuardError> {
    let err = |source| GuardError {
        iface: iface.to_owned(),
        source,
    };
    let mut nl = RtNetlink::open().map_err(err)?;
    let links = nl.links().map_err(err)?;
    let Some(link) = links.iter().find(|l| l.is_called(iface)) else {
        return Ok(None);
    };
    let stacked = stacked_on(&links, link.index);
    let routes: Vec<DefaultRoute> = nl
        .default_routes()
        .map_err(err)?
        .into_iter()
        .filter(|r| r.oifs.iter().any(|o| stacked.contains(o)) || r.oifs.is_empty())
        .collect();
    if routes.is_empty() {
        return Ok(None);
    }
    let name_of = |index: u32| {
        links
            .iter()
            .find(|l| l.index == index)
            .map_or_else(|| format!("ifindex {index}"), |l| l.name.clone())
    };
    let what: Vec<String> = routes
        .iter()
        .map(|r| {
            let via = match r.nh_id {
                Some(id) if r.oifs.is_empty() => format!(
                    " (through nexthop object {id}, whose interface the kernel did not say)"
                ),
                Some(id) => format!(" (through nexthop object {id})"),
                None => String::new(),
            };
            let upper: Vec<String> = r
                .oifs
                .iter()
                .filter(|&&o| o != link.index && stacked.contains(&o))
                .map(|&o| name_of(o))
                .collect();
            let upper = if upper.is_empty() || r.oifs.contains(&link.index) {
                String::new()
            } else {
                format!(" via {}, stacked on it", upper.join(", "))
            };
            let kind = if r.prefix_len == 0 {
                "default route"
            } else {
                "half-default route (prefix length 1, as VPNs install)"
            };
            format!(
                "the IPv{} {kind} of table {}{via}{upper}",
                r.ip_version,
                table_name(r.table)
            )
        })
        .collect();
    let mut names = vec![link.name.clone()];
    names.extend(link.altnames.iter().cloned());
    let alias = if iface == link.name && link.altnames.is_empty() {
        String::new()
    } else {
        format!(" (interface {}, ifindex {})", names.join(" / "), link.index)
    };
    Ok(Some(format!("{iface}{alias} carries {}", what.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, master: Option<u32>, lower: Option<u32>) -> LinkNames {
        LinkNames {
            index,
            name: format!("if{index}"),
            altnames: vec![],
            master,
            link: lower,
        }
    }

    #[test]
    fn devices_stacked_on_a_link() {
        // 2 is a port of bond 3; vlan 4 on the bond; bridge 5 over the
        // vlan; macvlan 6 on 7 (unrelated); 8 a port of bridge 5.
        let links = [
            link(1, None, None),
            link(2, Some(3), None),
            link(3, None, None),
            link(4, Some(5), Some(3)),
            link(5, None, None),
            link(6, None, Some(7)),
            link(7, None, None),
            link(8, Some(5), None),
        ];
        let mut s = stacked_on(&links, 2);
        s.sort_unstable();
        assert_eq!(s, [2, 3, 4, 5]);
        assert_eq!(stacked_on(&links, 1), [1]);
        let mut s = stacked_on(&links, 7);
        s.sort_unstable();
        assert_eq!(s, [6, 7]);
        // The bridge's other port is not stacked on 2.
        assert!(!stacked_on(&links, 2).contains(&8));
        // A loop (a malformed answer) ends.
        let looped = [link(1, None, Some(2)), link(2, None, Some(1))];
        assert_eq!(stacked_on(&looped, 1).len(), 2);
    }
}
