//! The star lab: one sender and N receivers, each in its own network
//! namespace, the receivers' veth pairs enslaved to a bridge in the sender's
//! namespace — so one multicast send from the sender reaches every receiver,
//! as on a switch.
//!
//! Layer: public API of `hftnet-lab`, next to the two-host [`crate::Lab`]
//! and built the same way (rtnetlink sockets opened inside each namespace,
//! veth peers created directly in their namespace, namespaces removed on
//! drop). Invariants: every namespace is recorded in the [`Star`] before
//! anything else can fail, so an error half-way, a panic or a drop removes it;
//! the bridge has IGMP snooping off, so it floods every multicast frame to
//! every port whatever the receivers joined (each receiver's kernel then
//! delivers only what its sockets joined). Must never: configure anything in
//! the default namespace, or remove a namespace it did not create.

use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use hftnet_sys::netlink::RtNetlink;
use hftnet_sys::netns;
use serde::Serialize;

use crate::lab::generate_name;
use crate::manage::{check_privileges, delete_namespaces};
use crate::{
    DEFAULT_IFACE, Host, LabError, MULTICAST_ROUTE, PREFIX_LEN, netns_name, validate_name,
};

/// Role of the star's sending host.
pub const SENDER: &str = "sender";
/// The sender's address, on its bridge.
pub const SENDER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Name of the bridge in the sender's namespace.
pub const BRIDGE: &str = "br0";
/// Most receivers a star takes: each is a namespace, a veth pair and a
/// thread or process of its own; more would measure the machine's
/// scheduler (2 vCPUs here), not the network.
pub const MAX_RECEIVERS: usize = 16;

/// How long the bridge's ports may take to start forwarding.
const PORTS_READY: std::time::Duration = std::time::Duration::from_secs(5);

/// How many generated names to try when one is taken.
const NAME_ATTEMPTS: usize = 8;

/// Role of receiver `i`: `rx0`, `rx1`, ...
#[must_use]
pub fn receiver_role(i: usize) -> String {
    format!("rx{i}")
}

/// Address of receiver `i`: 198.18.0.11, .12, ...
#[must_use]
pub fn receiver_addr(i: usize) -> Ipv4Addr {
    // i < MAX_RECEIVERS, so this stays inside 198.18.0.0/24.
    Ipv4Addr::new(198, 18, 0, 11 + (i % 200) as u8)
}

/// A running star lab.
///
/// ```text
///  hft-N-sender                                 hft-N-rx0
///  br0 198.18.0.1/24, 224.0.0.0/4 dev br0       veth0 198.18.0.11/24
///   ├─ rx0  <──────────── veth ───────────────>  224.0.0.0/4 dev veth0
///   ├─ rx1  <──────────── veth ──> hft-N-rx1 veth0 198.18.0.12/24
///   └─ ...
/// ```
///
/// Dropping it removes every namespace (and with them the bridge and the veth
/// pairs), also while a panic unwinds. A killed run's namespaces are found and
/// removed by [`crate::remove_all`] (`hftnet lab down --all`) like any lab's.
#[derive(Debug, Serialize)]
pub struct Star {
    name: String,
    sender: Host,
    receivers: Vec<Host>,
    #[serde(skip)]
    owned: Vec<String>,
}

impl Star {
    /// Builds a star of `receivers` receivers named `name` (generated when
    /// `None`).
    ///
    /// # Errors
    /// - [`LabError::InvalidTopology`] for 0 or more than [`MAX_RECEIVERS`]
    ///   receivers, [`LabError::InvalidName`] for a bad name (both checked
    ///   before privileges);
    /// - the errors of [`crate::LabBuilder::build`] (privileges, a lab of that
    ///   name already up, a failed netlink step named), plus the bridge's
    ///   (`EOPNOTSUPP` from `RTM_NEWLINK(bridge)` without `CONFIG_BRIDGE`).
    ///
    /// Whatever was created before a failure is removed again.
    pub fn build(name: Option<&str>, receivers: usize) -> Result<Self, LabError> {
        if receivers == 0 || receivers > MAX_RECEIVERS {
            return Err(LabError::InvalidTopology {
                reason: format!(
                    "{receivers} receivers asked for; a star takes 1 to {MAX_RECEIVERS}"
                ),
            });
        }
        if let Some(name) = name {
            validate_name(name)?;
        }
        check_privileges()?;
        match name {
            Some(name) => Self::build_named(name.to_owned(), receivers),
            None => {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match Self::build_named(generate_name(), receivers) {
                        Err(LabError::AlreadyExists { .. }) if attempt < NAME_ATTEMPTS => continue,
                        other => return other,
                    }
                }
            }
        }
    }

    fn build_named(name: String, receivers: usize) -> Result<Self, LabError> {
        let sender = Host {
            role: SENDER.to_owned(),
            netns: netns_name(&name, SENDER),
            iface: BRIDGE.to_owned(),
            addr: SENDER_ADDR,
            prefix_len: PREFIX_LEN,
            peer: receiver_addr(0),
            mtu: None,
        };
        let receivers = (0..receivers)
            .map(|i| Host {
                role: receiver_role(i),
                netns: netns_name(&name, &receiver_role(i)),
                iface: DEFAULT_IFACE.to_owned(),
                addr: receiver_addr(i),
                prefix_len: PREFIX_LEN,
                peer: SENDER_ADDR,
                mtu: None,
            })
            .collect::<Vec<_>>();
        for h in std::iter::once(&sender).chain(&receivers) {
            if netns::exists(&h.netns) {
                return Err(LabError::AlreadyExists {
                    name,
                    namespace: h.netns.clone(),
                });
            }
        }
        let mut star = Star {
            name,
            sender,
            receivers,
            owned: Vec::new(),
        };
        let all: Vec<String> = star.hosts().map(|h| h.netns.clone()).collect();
        for ns in all {
            match netns::add(&ns) {
                Ok(()) => star.owned.push(ns),
                Err(e) if e.io_error.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(LabError::AlreadyExists {
                        name: star.name.clone(),
                        namespace: ns,
                    });
                }
                Err(source) => {
                    return Err(LabError::Netns {
                        action: "create",
                        namespace: ns,
                        source,
                    });
                }
            }
        }
        star.configure()?;
        Ok(star)
    }

    /// The bridge, one veth pair per receiver (the sender's end named like
    /// the receiver's role and enslaved to the bridge), then addresses, links
    /// up and the multicast route in every namespace; returns once every
    /// port of the bridge forwards.
    fn configure(&self) -> Result<(), LabError> {
        let s = &self.sender;
        let mut nl = s
            .run(RtNetlink::open)?
            .map_err(s.step_failed("open rtnetlink socket"))?;
        nl.create_bridge(BRIDGE, false)
            .map_err(s.step_failed(format!("create bridge {BRIDGE}")))?;
        let bridge = nl
            .link_index(BRIDGE)
            .map_err(s.step_failed(format!("find {BRIDGE}")))?;
        let mut ports = Vec::with_capacity(self.receivers.len());
        for r in &self.receivers {
            let peer_ns = netns::open(&r.netns).map_err(|source| LabError::Netns {
                action: "open",
                namespace: r.netns.clone(),
                source,
            })?;
            nl.create_veth(&r.role, &r.iface, peer_ns.as_fd(), None)
                .map_err(s.step_failed(format!(
                    "create veth pair {} <-> {}:{}",
                    r.role, r.netns, r.iface
                )))?;
            drop(peer_ns);
            let port = nl
                .link_index(&r.role)
                .map_err(s.step_failed(format!("find {}", r.role)))?;
            nl.set_master(port, bridge)
                .map_err(s.step_failed(format!("enslave {} to {BRIDGE}", r.role)))?;
            nl.set_link_up(port)
                .map_err(s.step_failed(format!("set {} up", r.role)))?;
            ports.push(port);
        }
        up_with_address(&mut nl, s)?;
        for r in &self.receivers {
            let mut rx_nl = r
                .run(RtNetlink::open)?
                .map_err(r.step_failed("open rtnetlink socket"))?;
            up_with_address(&mut rx_nl, r)?;
        }
        // Only now is every port's carrier on; until the bridge has seen it,
        // the port drops what the sender sends (the first probes of a run).
        nl.wait_bridge_forwarding(&ports, PORTS_READY)
            .map_err(s.step_failed(format!("wait for the ports of {BRIDGE} to forward")))
    }

    /// The lab name (`N` in `hft-N-sender`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sending host: its [`Host::iface`] is the bridge.
    #[must_use]
    pub fn sender(&self) -> &Host {
        &self.sender
    }

    /// The receiving hosts, `rx0` first; each one's [`Host::peer`] is the sender.
    #[must_use]
    pub fn receivers(&self) -> &[Host] {
        &self.receivers
    }

    /// Every host, the sender first.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        std::iter::once(&self.sender).chain(&self.receivers)
    }

    /// Removes the star now, reporting what could not be removed.
    ///
    /// # Errors
    /// [`LabError::Teardown`] listing the namespaces left behind.
    pub fn down(mut self) -> Result<(), LabError> {
        let owned = std::mem::take(&mut self.owned);
        delete_namespaces(&owned)
    }
}

/// In `host`'s namespace: `lo` up, the address on the host's interface, the
/// interface up, and 224.0.0.0/4 through it.
fn up_with_address(nl: &mut RtNetlink, host: &Host) -> Result<(), LabError> {
    let lo = nl.link_index("lo").map_err(host.step_failed("find lo"))?;
    nl.set_link_up(lo).map_err(host.step_failed("set lo up"))?;
    let index = nl
        .link_index(&host.iface)
        .map_err(host.step_failed(format!("find {}", host.iface)))?;
    nl.add_ipv4_address(index, host.addr, host.prefix_len)
        .map_err(host.step_failed(format!(
            "add {}/{} on {}",
            host.addr, host.prefix_len, host.iface
        )))?;
    nl.set_link_up(index)
        .map_err(host.step_failed(format!("set {} up", host.iface)))?;
    let (dst, len) = MULTICAST_ROUTE;
    nl.add_ipv4_route(dst, len, index)
        .map_err(host.step_failed(format!("add route {dst}/{len} dev {}", host.iface)))
}

impl fmt::Display for Star {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "star lab {} ({} receivers on bridge {BRIDGE})",
            self.name,
            self.receivers.len()
        )?;
        for host in self.hosts() {
            writeln!(f, "  {host}")?;
        }
        write!(
            f,
            "  shell inside: ip netns exec {} $SHELL",
            self.sender.netns
        )
    }
}

impl Drop for Star {
    fn drop(&mut self) {
        let owned = std::mem::take(&mut self.owned);
        if let Err(e) = delete_namespaces(&owned) {
            eprintln!("hftnet-lab: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_count_is_checked_before_privileges() {
        for n in [0, MAX_RECEIVERS + 1, 10_000] {
            let err = Star::build(None, n).unwrap_err();
            assert!(
                matches!(err, LabError::InvalidTopology { .. }),
                "{n}: {err}"
            );
            assert!(err.to_string().contains("a star takes 1 to 16"), "{err}");
        }
        let err = Star::build(Some("bad name"), 2).unwrap_err();
        assert!(matches!(err, LabError::InvalidName { .. }), "{err}");
    }

    #[test]
    fn roles_and_addresses() {
        assert_eq!(receiver_role(0), "rx0");
        assert!(crate::is_valid_role(&receiver_role(MAX_RECEIVERS - 1)));
        assert!(crate::is_valid_role(SENDER));
        assert_eq!(receiver_addr(0), Ipv4Addr::new(198, 18, 0, 11));
        assert_eq!(
            receiver_addr(MAX_RECEIVERS - 1),
            Ipv4Addr::new(198, 18, 0, 26)
        );
    }
}
