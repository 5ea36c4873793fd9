//! The default-route guard: whether an interface named on the command line
//! carries a default route of the caller's network namespace, so tuning it
//! could cut the machine off.
//!
//! The name is resolved over netlink to an interface index, alternative
//! names included (`ip link property add dev eth0 altname uplink`), and
//! compared with the interfaces of every unicast default route: IPv4 and
//! IPv6, every routing table (policy routing), every nexthop of a multipath
//! route and of a nexthop object ([`RtNetlink::default_routes`]).
//!
//! Reads only; acts on the namespace of the calling thread.

use hftnet_sys::SyscallError;
use hftnet_sys::netlink::{DefaultRoute, RtNetlink};

/// Why the guard could not look.
#[derive(Debug, thiserror::Error)]
#[error("cannot check whether {iface} carries a default route: {source}")]
pub struct GuardError {
    /// The interface asked about.
    pub iface: String,
    /// The netlink error.
    pub source: SyscallError,
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
    let routes: Vec<DefaultRoute> = nl
        .default_routes()
        .map_err(err)?
        .into_iter()
        .filter(|r| r.oifs.contains(&link.index) || r.oifs.is_empty())
        .collect();
    if routes.is_empty() {
        return Ok(None);
    }
    let what: Vec<String> = routes
        .iter()
        .map(|r| {
            let unknown = if r.oifs.is_empty() {
                " (through a nexthop object whose interface the kernel did not say)"
            } else {
                ""
            };
            format!(
                "the IPv{} default route of table {}{unknown}",
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
