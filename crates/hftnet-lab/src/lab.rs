//! The two-host lab: building it (namespaces, veth pair, addresses, routes),
//! describing it, and tearing it down on drop.
//!
//! Layer: public API of `hftnet-lab`. Invariants: every namespace this module
//! creates is recorded in the [`Lab`] *before* anything else can fail, so an
//! error half-way through, a panic, or a drop always removes it; a namespace
//! that existed before (another lab's) is never recorded, hence never
//! removed. Configuration goes through rtnetlink sockets opened *inside* each
//! lab namespace; the veth peer is created directly in the other lab
//! namespace (`IFLA_NET_NS_FD`); offload features (GRO) are set with the
//! ethtool ioctl from a thread inside each namespace. Must never: configure
//! anything in the default namespace, or leave a netlink or ethtool socket
//! open after building (it would keep a deleted namespace alive).

use std::fmt;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hftnet_sys::ethtool::{self, Feature};
use hftnet_sys::netlink::RtNetlink;
use hftnet_sys::netns;
use serde::Serialize;

use crate::manage::{LabInfo, check_privileges, delete_namespaces};
use crate::{
    DEFAULT_IFACE, EXCHANGE, EXCHANGE_ADDR, Host, LabError, MULTICAST_ROUTE, PREFIX_LEN, TRADER,
    TRADER_ADDR, netns_name, validate_name,
};

/// Process-wide counter making generated lab names unique between threads.
static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// How many generated names to try when one is taken (by a stale lab of an
/// earlier process that had the same pid).
const NAME_ATTEMPTS: usize = 8;

/// A running lab: two hosts, "trader" and "exchange", each in its own network
/// namespace, joined by a veth pair.
///
/// ```text
///  hft-N-trader                       hft-N-exchange
///  lo up                              lo up
///  veth0 198.18.0.1/24  <── veth ──>  veth0 198.18.0.2/24
///  224.0.0.0/4 dev veth0              224.0.0.0/4 dev veth0
/// ```
///
/// Built with [`LabBuilder::gro`], both veth ends also have GRO on (see
/// there for what that does and does not give busy polling).
///
/// Dropping it removes both namespaces (and with them the veth pair), also
/// while a panic unwinds; [`Lab::down`] does the same and reports errors.
/// If the process is killed, the namespaces stay: [`crate::remove_all`]
/// (`hftnet lab down --all`) removes them later.
#[derive(Debug, Serialize)]
pub struct Lab {
    name: String,
    hosts: Vec<Host>,
    /// GRO was turned on on both veth ends when building.
    gro: bool,
    napi: bool,
    /// Receive and transmit queues of each veth end.
    queues: u32,
    /// Namespaces this value created and must remove.
    #[serde(skip)]
    owned: Vec<String>,
}

/// Options for building a [`Lab`]; from [`Lab::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LabBuilder {
    name: Option<String>,
    iface: String,
    mtu: Option<u32>,
    gro: bool,
    napi: bool,
    queues: u32,
}

impl Default for LabBuilder {
    fn default() -> Self {
        Self {
            name: None,
            iface: DEFAULT_IFACE.to_owned(),
            mtu: None,
            gro: false,
            napi: false,
            queues: 1,
        }
    }
}

impl LabBuilder {
    /// Names the lab (namespaces `hft-NAME-trader`, `hft-NAME-exchange`).
    /// Without a name, a unique one is generated.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Name of the veth end in each namespace (default [`DEFAULT_IFACE`]).
    pub fn iface(mut self, iface: &str) -> Self {
        iface.clone_into(&mut self.iface);
        self
    }

    /// MTU of both veth ends (default: the kernel's, 1500).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Turns generic receive offload on both veth ends on (`true`) or leaves
    /// the kernel default, off (`false`, the default). Like
    /// `ethtool -K veth0 gro on` in each namespace.
    ///
    /// GRO on gives each veth receive queue a NAPI context (kernel 5.13+),
    /// which `SO_BUSY_POLL` and `SO_INCOMING_NAPI_ID` need. But veth hands a
    /// packet to that NAPI only when it is "eligible for GRO"
    /// (`veth_skb_is_eligible_for_gro`): when the *sending* veth has TSO
    /// off, or, for UDP sent from a socket, when the *receiving* veth also
    /// has `rx-udp-gro-forwarding` or `rx-gro-list` on. With the defaults
    /// (TSO on) datagrams still take the backlog path and a receiving socket
    /// sees NAPI id 0. To get NAPI ids, also turn TSO off on the sending end,
    /// e.g. `hftnet_sys::ethtool::set_feature(iface, Feature::Tso, false)` in
    /// [`Host::run`].
    pub fn gro(mut self, on: bool) -> Self {
        self.gro = on;
        self
    }

    /// Makes veth deliver through NAPI as a real NIC does: GRO on and TSO off
    /// on both ends (see [`LabBuilder::gro`] for why both are needed). Then
    /// `SO_BUSY_POLL` takes effect and sockets report a NAPI id. TCP segments
    /// are then cut in software, which costs nothing at message sizes.
    pub fn napi(mut self, on: bool) -> Self {
        self.napi = on;
        self.gro |= on;
        self
    }

    /// Receive and transmit queues of each veth end (default 1; like
    /// `ethtool -L veth0 rx N tx N` in each namespace). veth offers as many
    /// as the machine has possible CPUs. Each queue has its own NAPI
    /// context, and a frame sent on queue N arrives on the peer's queue N:
    /// so `xdp://veth0/0` and `xdp://veth0/1` are two AF_XDP sockets with
    /// two queues of their own at each end (one queue takes one socket).
    /// Kernel sockets pick their queue by flow hash.
    pub fn queues(mut self, n: u32) -> Self {
        self.queues = n;
        self
    }

    /// Creates the lab.
    ///
    /// # Errors
    /// - [`LabError::InvalidName`] for an invalid name (checked first, before
    ///   privileges);
    /// - [`LabError::NotPrivileged`] without CAP_SYS_ADMIN and CAP_NET_ADMIN;
    /// - [`LabError::AlreadyExists`] if a namespace of that lab name exists;
    /// - [`LabError::InvalidTopology`] for 0 queues, or more than veth
    ///   offers on this machine (after the namespaces were made: the limit
    ///   is the device's; they are removed again);
    /// - [`LabError::Netns`] / [`LabError::Netlink`] naming the step that
    ///   failed (an invalid interface name or MTU shows up here as `EINVAL`;
    ///   GRO that cannot be turned on as the `ETHTOOL_SGRO` call failing).
    ///
    /// Whatever was created before the failure is removed again.
    pub fn build(self) -> Result<Lab, LabError> {
        if let Some(name) = &self.name {
            validate_name(name)?;
        }
        if self.queues == 0 {
            return Err(LabError::InvalidTopology {
                reason: "a veth end needs at least 1 queue".into(),
            });
        }
        check_privileges()?;
        match &self.name {
            Some(name) => self.build_named(name.clone()),
            None => {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match self.build_named(generate_name()) {
                        Err(LabError::AlreadyExists { .. }) if attempt < NAME_ATTEMPTS => continue,
                        other => return other,
                    }
                }
            }
        }
    }

    fn build_named(&self, name: String) -> Result<Lab, LabError> {
        let host = |role: &str, addr, peer| Host {
            role: role.to_owned(),
            netns: netns_name(&name, role),
            iface: self.iface.clone(),
            addr,
            prefix_len: PREFIX_LEN,
            peer,
            mtu: self.mtu,
        };
        let hosts = vec![
            host(TRADER, TRADER_ADDR, EXCHANGE_ADDR),
            host(EXCHANGE, EXCHANGE_ADDR, TRADER_ADDR),
        ];
        for h in &hosts {
            if netns::exists(&h.netns) {
                return Err(LabError::AlreadyExists {
                    name,
                    namespace: h.netns.clone(),
                });
            }
        }
        // From here on, `lab` removes whatever it recorded if we return early.
        let mut lab = Lab {
            name,
            hosts,
            gro: self.gro,
            napi: self.napi,
            queues: self.queues,
            owned: Vec::new(),
        };
        for i in 0..lab.hosts.len() {
            let ns = lab.hosts[i].netns.clone();
            match netns::add(&ns) {
                Ok(()) => lab.owned.push(ns),
                Err(e) if e.io_error.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(LabError::AlreadyExists {
                        name: lab.name.clone(),
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
        lab.configure(self.mtu, self.gro, self.napi, self.queues)?;
        Ok(lab)
    }
}

/// A lab name unique among concurrent threads (counter), processes (pid) and
/// stale labs of dead processes that had the same pid (time bits), e.g.
/// `t4711-0-9f3a`.
pub(crate) fn generate_name() -> String {
    let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let bits = (t.subsec_nanos() >> 10) ^ (t.as_secs() as u32);
    format!("t{}-{}-{:04x}", std::process::id(), n, bits & 0xffff)
}

impl Lab {
    /// Builds the standard two-host lab (see the type doc) named `name`, or a
    /// generated unique name if `None`. Same as
    /// `Lab::builder().name(name).build()`.
    ///
    /// # Errors
    /// See [`LabBuilder::build`].
    pub fn two_host(name: Option<&str>) -> Result<Self, LabError> {
        let mut builder = Self::builder();
        if let Some(name) = name {
            builder = builder.name(name);
        }
        builder.build()
    }

    /// A builder for a two-host lab with options (name, interface name, MTU,
    /// GRO).
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    /// The lab name (`N` in `hft-N-trader`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All hosts, trader first.
    #[must_use]
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host with role `role`, if there is one.
    #[must_use]
    pub fn host(&self, role: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.role == role)
    }

    /// The trader host (198.18.0.1).
    #[must_use]
    pub fn trader(&self) -> &Host {
        &self.hosts[0]
    }

    /// The exchange host (198.18.0.2).
    #[must_use]
    pub fn exchange(&self) -> &Host {
        &self.hosts[1]
    }

    /// Whether the lab was built with GRO on both veth ends
    /// ([`LabBuilder::gro`]). [`Host::gro`] asks the kernel instead.
    #[must_use]
    pub fn gro(&self) -> bool {
        self.gro
    }

    /// Whether the veth delivers through NAPI ([`LabBuilder::napi`]).
    #[must_use]
    pub fn napi(&self) -> bool {
        self.napi
    }

    /// Receive and transmit queues of each veth end ([`LabBuilder::queues`]).
    #[must_use]
    pub fn queues(&self) -> u32 {
        self.queues
    }

    /// The namespace names of this lab.
    #[must_use]
    pub fn namespaces(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.netns.as_str()).collect()
    }

    /// The summary [`crate::list`] would give for this lab.
    #[must_use]
    pub fn info(&self) -> LabInfo {
        let mut namespaces = self
            .hosts
            .iter()
            .map(|h| (h.netns.clone(), h.role.clone()))
            .collect::<Vec<_>>();
        namespaces.sort();
        let (namespaces, roles) = namespaces.into_iter().unzip();
        LabInfo {
            name: self.name.clone(),
            namespaces,
            roles,
        }
    }

    /// A multi-line description for people: namespaces, interfaces,
    /// addresses, and how to get a shell inside. Same as `to_string()`.
    #[must_use]
    pub fn describe(&self) -> String {
        self.to_string()
    }

    /// Removes the lab now, reporting what could not be removed (a drop does
    /// the same silently, apart from a line on stderr).
    ///
    /// # Errors
    /// [`LabError::Teardown`] listing the namespaces left behind.
    pub fn down(mut self) -> Result<(), LabError> {
        let owned = std::mem::take(&mut self.owned);
        delete_namespaces(&owned)
    }

    /// Every step after the namespaces exist: the veth pair and its queues,
    /// then in each namespace lo up, the address, the veth up, the
    /// multicast route, and GRO (and TSO off) on the veth if asked for.
    fn configure(
        &self,
        mtu: Option<u32>,
        gro: bool,
        napi: bool,
        queues: u32,
    ) -> Result<(), LabError> {
        let trader = self.trader();
        let exchange = self.exchange();
        // Sockets opened inside each namespace; closed at the end of this fn.
        let mut sockets = Vec::with_capacity(self.hosts.len());
        for host in &self.hosts {
            let socket = host
                .run(RtNetlink::open)?
                .map_err(host.step_failed("open rtnetlink socket"))?;
            sockets.push(socket);
        }
        let exchange_fd = netns::open(&exchange.netns).map_err(|source| LabError::Netns {
            action: "open",
            namespace: exchange.netns.clone(),
            source,
        })?;
        sockets[0]
            .create_veth(&trader.iface, &exchange.iface, exchange_fd.as_fd(), mtu)
            .map_err(trader.step_failed(format!(
                "create veth pair {} <-> {}:{}",
                trader.iface, exchange.netns, exchange.iface
            )))?;
        drop(exchange_fd);
        if queues != 1 {
            for host in &self.hosts {
                set_queues(host, queues)?;
            }
        }

        for (host, nl) in self.hosts.iter().zip(&mut sockets) {
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
                .map_err(host.step_failed(format!("add route {dst}/{len} dev {}", host.iface)))?;
        }
        if gro {
            for host in &self.hosts {
                // The ethtool socket is opened (and closed) on the namespace thread.
                host.run(|| ethtool::set_feature(&host.iface, Feature::Gro, true))?
                    .map_err(host.step_failed(format!("turn GRO on on {}", host.iface)))?;
            }
        }
        if napi {
            for host in &self.hosts {
                host.run(|| ethtool::set_feature(&host.iface, Feature::Tso, false))?
                    .map_err(host.step_failed(format!("turn TSO off on {}", host.iface)))?;
            }
        }
        Ok(())
    }
}

/// Gives `host`'s veth end `queues` receive and transmit queues.
fn set_queues(host: &Host, queues: u32) -> Result<(), LabError> {
    let mut c = host
        .run(|| ethtool::Ethtool::open()?.get_channels(&host.iface))?
        .map_err(host.step_failed(format!("read the queues of {}", host.iface)))?;
    let max = c.max_rx.min(c.max_tx);
    if queues > max {
        return Err(LabError::InvalidTopology {
            reason: format!(
                "{queues} queues asked for, but veth offers at most {max} here (one per \
                     possible CPU)"
            ),
        });
    }
    c.rx_count = queues;
    c.tx_count = queues;
    host.run(|| ethtool::Ethtool::open()?.set_channels(&host.iface, &c))?
        .map_err(host.step_failed(format!("set {queues} queues on {}", host.iface)))
}

impl fmt::Display for Lab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lab {}", self.name)?;
        for host in &self.hosts {
            write!(f, "  {host}")?;
            if self.napi {
                f.write_str(" napi (gro on, tso off)")?;
            } else if self.gro {
                f.write_str(" gro on")?;
            }
            if self.queues != 1 {
                write!(f, " {} queues", self.queues)?;
            }
            writeln!(f)?;
        }
        write!(
            f,
            "  shell inside: ip netns exec {} $SHELL",
            self.trader().netns
        )
    }
}

impl Host {
    /// Whether GRO is on on this host's veth end now, as the kernel reports
    /// it (`ETHTOOL_GGRO`, asked from a thread inside the namespace); see
    /// [`LabBuilder::gro`]. [`Lab::gro`] says what the lab was built with.
    ///
    /// # Errors
    /// The errors of [`Host::run`] (e.g. the lab is down), or
    /// [`LabError::Netlink`] with the failed ethtool call as its source.
    pub fn gro(&self) -> Result<bool, LabError> {
        self.run(|| ethtool::get_feature(&self.iface, Feature::Gro))?
            .map_err(self.step_failed(format!("read GRO of {}", self.iface)))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let owned = std::mem::take(&mut self.owned);
        if let Err(e) = delete_namespaces(&owned) {
            // Drop cannot return the error; say it where a person will see it.
            eprintln!("hftnet-lab: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_and_distinct() {
        let a = generate_name();
        let b = generate_name();
        assert_ne!(a, b);
        validate_name(&a).unwrap();
        assert!(a.starts_with(&format!("t{}-", std::process::id())));
        assert!(crate::parse_netns_name(&netns_name(&a, EXCHANGE)).is_some());
    }

    #[test]
    fn invalid_name_is_reported_before_privileges() {
        let err = Lab::two_host(Some("no spaces")).unwrap_err();
        assert!(matches!(err, LabError::InvalidName { .. }), "{err}");
    }
}
