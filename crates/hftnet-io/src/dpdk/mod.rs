//! UDP over a DPDK port (`dpdk://VDEV?iface=IF&port=P`, `dpdk://PCI?port=P`):
//! frames are received with `rte_eth_rx_burst` into mbufs of a mempool of
//! ours and sent with `rte_eth_tx_burst`, built and parsed in user space by
//! the shared UDP/IPv4/Ethernet layer. Built only with the cargo feature
//! `dpdk`.
//!
//! Layer: a [`Ring`] under the generic layer-2 transport ([`L2Transport`]:
//! the waiting, the frames, the send loop); the DPDK calls and the mbuf
//! ownership are in `hftnet_dpdk_sys`, so this module is safe code.
//!
//! Devices: a virtual device of DPDK's (`net_af_packet0`, `net_af_xdp0`,
//! `net_tap0`, `net_null0`, `net_ring0`) created by hot-plug
//! (`rte_dev_probe`) with `iface=` and the URI's `devargs=`, or a PCI device
//! bound to vfio-pci (`dpdk://0000:01:00.0`), allowed at EAL start. The
//! EAL is initialised once per process (module `eal`); every endpoint of the
//! process shares it, and each has its own device name, port, mempool and
//! one queue pair. Closing an endpoint stops and closes its port, removes
//! the device and frees the mempool.
//!
//! Addresses: with `iface=` the kernel interface gives the MAC address,
//! IPv4 address and MTU, and the kernel's neighbour table the peers' MAC
//! addresses (as for `packet://`); `net_af_packet` is a tap, so the kernel
//! keeps answering ARP, and the port is held with a kernel socket that
//! drops the kernel's copy of the flow (`reserve=1`). Without a kernel
//! interface (`net_null`, `net_ring`, PCI) the endpoint needs `ip=`, and
//! `peer=` with `peer_mac=`.
//!
//! Receive: `rx=spin` only — DPDK's poll-mode drivers have nothing to sleep
//! on. Each mbuf of a burst is lent in place to the caller and freed after
//! (owned types: none leaks, also on a panic). The device's checksum verdicts
//! are used when it offers receive checksum offload (good: not re-checked;
//! bad: checked and counted); otherwise the shared layer checks both sums
//! in software. Transmit: each message is written into an mbuf taken from
//! the pool, queued, and sent with one `rte_eth_tx_burst` per burst; what
//! the device does not take stays queued and is sent on the next kick.
//! When the device offers IPv4 and UDP transmit checksum offload (`net_tap`
//! does), the port is configured with it, the frame layer writes only the
//! pseudo-header sum ([`TxChecksum::Offloaded`]) and each mbuf asks the
//! device to finish both sums (`RTE_MBUF_F_TX_IP_CKSUM | _UDP_CKSUM`).
//!
//! Link: read at open and whenever the device stops taking frames; while
//! it is down a send fails with `ENETDOWN` after [`crate::l2::SLOT_WAIT`],
//! and traffic resumes by itself when it comes back. For `net_af_xdp`,
//! whose port reports the link up always, the kernel interface's link is
//! followed instead, through the kernel's link notifications (looked at at
//! most every millisecond while sending: a non-blocking read, no
//! allocation), and no burst is handed to the driver while it is down (see
//! `KernelLink` for why).

mod eal;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use hftnet_dpdk_sys::{self as sys, Cksum, Mempool, Port, RxBatch, StageError, TxQueue};
use hftnet_sys::SyscallError;
use hftnet_wire::ethernet;
use serde::Serialize;
use socket2::{Domain, Socket, Type};

pub use eal::{EalInfo, runtime_directory};

use crate::Role;
use crate::backend::{Backend, CapsSection, Placement, RungContext, RungSpec};
use crate::error::{OpenError, from_io};
use crate::l2::frames::{
    FrameStats, HEADERS, KernelNeighbours, Neighbours, TxChecksum, UdpCheck, UdpOverEthernet,
    open_iface, peer_mac_param,
};
use crate::l2::ring::{Ring, RxFrame, RxRing, TxRing};
use crate::l2::{L2Error, L2Iface, L2Transport};
use crate::transport::RxStrategy;
use crate::uri::{Uri, UriError};

/// The `dpdk://` backend.
#[derive(Debug)]
pub struct DpdkBackend;

/// UDP over a DPDK port.
pub type DpdkTransport = L2Transport<DpdkRing>;

/// The virtual-device drivers `dpdk://` accepts, with whether they attach
/// to a kernel interface (`iface=`).
pub const VDEV_DRIVERS: &[(&str, bool)] = &[
    ("net_af_packet", true),
    ("net_af_xdp", true),
    ("net_tap", true),
    ("net_null", false),
    ("net_ring", false),
];

/// Receive and transmit ring sizes asked of the device.
const RING_DESC: u16 = 1024;
/// How long a `net_af_xdp` open waits for its queue while an AF_XDP socket
/// (one closed a moment ago, until the kernel releases it) holds it.
const XSK_QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Per-lcore cache of the mempool.
const POOL_CACHE: u32 = 32;

impl Backend for DpdkBackend {
    const SCHEMES: &'static [&'static str] = &["dpdk"];
    type Config = DpdkConfig;
    type Transport = DpdkTransport;
    type Caps = DpdkCaps;

    fn parse(uri: &Uri) -> Result<DpdkConfig, UriError> {
        DpdkConfig::from_uri(uri)
    }

    fn open(cfg: &DpdkConfig, role: Role) -> Result<DpdkTransport, OpenError> {
        open(cfg, role)
    }

    fn max_message(cfg: &DpdkConfig) -> usize {
        cfg.max_message()
    }

    fn burst(_: &DpdkConfig) -> usize {
        sys::BURST
    }

    fn cpu(cfg: &DpdkConfig) -> Option<usize> {
        cfg.cpu
    }

    fn placement(_: &str) -> Placement {
        Placement::Interface
    }

    fn rungs(_: &str, ctx: &RungContext<'_>) -> Vec<RungSpec> {
        // Both ends live in one process in the lab: one EAL, two devices
        // (their names differ), each on its end's interface.
        let i = ctx.iface_or_lo();
        [("af_packet", "net_af_packet"), ("af_xdp", "net_af_xdp")]
            .iter()
            .enumerate()
            .map(|(k, (name, drv))| {
                let port = ctx.port + k as u16;
                RungSpec::pair(
                    name,
                    format!("dpdk://{drv}0?iface={i}&port={port}"),
                    format!(
                        "dpdk://{drv}1?iface={i}&port={port}&peer={}:{port}",
                        ctx.server_ip
                    ),
                )
            })
            .collect()
    }
}

/// Which device a `dpdk://` endpoint drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// A virtual device: its name (`net_af_packet0`) and driver (`net_af_packet`).
    Virtual {
        /// The device name, unique in the process.
        name: String,
        /// The driver.
        driver: &'static str,
    },
    /// A PCI device bound to vfio-pci or uio, by address (`0000:01:00.0`).
    Pci(String),
}

impl Device {
    /// The device name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Virtual { name, .. } => name,
            Self::Pci(a) => a,
        }
    }
}

/// A `dpdk://` endpoint, as parsed from a URI or built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkConfig {
    /// The device (the URI's authority).
    pub device: Device,
    /// The kernel interface a virtual device attaches to (`iface=`).
    pub iface: Option<String>,
    /// Local UDP port (`port=`).
    pub port: u16,
    /// Default destination (`peer=IP:PORT`); required for a client.
    pub peer: Option<SocketAddrV4>,
    /// The peer's MAC address, pinned (`peer_mac=`, with `peer=`).
    pub peer_mac: Option<ethernet::Address>,
    /// Local IPv4 address (`ip=`); by default the interface's.
    pub ip: Option<Ipv4Addr>,
    /// More driver arguments, appended to the device's (`devargs=k=v,k=v`).
    pub devargs: Option<String>,
    /// More EAL arguments, `+`-separated (`eal=--log-level=8+--huge-unlink`).
    pub eal: Vec<String>,
    /// EAL memory in MB (`mem=`, default 128).
    pub mem_mb: u32,
    /// Mbufs in the pool (`mbufs=`; default: both rings and the bursts in flight).
    pub mbufs: Option<u32>,
    /// Hold the port with a kernel socket that drops what it receives (`reserve=`, default 1).
    pub reserve: bool,
    /// The CPU the opening thread is pinned to, and its EAL lcore's
    /// (`cpu=`; applied by every endpoint, not only the first).
    pub cpu: Option<usize>,
}

const DPDK_PARAMS: &[&str] = &[
    "iface", "port", "peer", "peer_mac", "ip", "devargs", "eal", "mem", "mbufs", "reserve", "rx",
    "cpu",
];

/// Whether `s` is a PCI address `DDDD:BB:DD.F`.
fn is_pci(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

impl DpdkConfig {
    /// Reads a `dpdk://` URI.
    ///
    /// # Errors
    /// [`UriError`] naming the parameter at fault and what it accepts: an
    /// unknown driver, a missing `iface=` or `port=`, `rx=` other than spin.
    pub fn from_uri(uri: &Uri) -> Result<Self, UriError> {
        let malformed = |reason: String| UriError::Malformed {
            uri: uri.text.clone(),
            reason,
        };
        let auth = uri.authority.as_str();
        let device = if is_pci(auth) {
            Device::Pci(auth.to_ascii_lowercase())
        } else {
            let stem = auth.trim_end_matches(|c: char| c.is_ascii_digit());
            let Some((driver, _)) = VDEV_DRIVERS.iter().find(|(d, _)| *d == stem) else {
                let names: Vec<&str> = VDEV_DRIVERS.iter().map(|(d, _)| *d).collect();
                return Err(malformed(format!(
                    "unknown DPDK virtual device {auth:?}: dpdk:// takes a virtual device named \
                     DRIVER + number, with DRIVER one of {} (e.g. dpdk://net_af_packet0?iface=veth0&port=9000), \
                     or a PCI address bound to vfio-pci (e.g. dpdk://0000:01:00.0?port=9000&ip=...)",
                    names.join(", ")
                )));
            };
            if stem.len() == auth.len() || auth.len() > 31 {
                return Err(malformed(format!(
                    "DPDK device {auth:?} needs a number after the driver and at most 31 \
                     characters, e.g. {stem}0"
                )));
            }
            Device::Virtual {
                name: auth.to_owned(),
                driver,
            }
        };
        let mut p = uri.params(&[DPDK_PARAMS]);
        let iface = p.get_with("iface", "a kernel interface name, e.g. veth0", |v| {
            (!v.is_empty() && v.len() < 16 && !v.contains([',', '/', ':'])).then(|| v.to_owned())
        })?;
        let needs_iface = match &device {
            Device::Virtual { driver, .. } => VDEV_DRIVERS.iter().any(|(d, k)| d == driver && *k),
            Device::Pci(_) => false,
        };
        if needs_iface && iface.is_none() {
            return Err(malformed(format!(
                "{} attaches to a kernel interface: give iface=NAME (e.g. dpdk://{}?iface=veth0&port=9000)",
                device.name(),
                device.name()
            )));
        }
        if !needs_iface && iface.is_some() {
            return Err(UriError::BadValue {
                param: "iface".into(),
                value: iface.unwrap_or_default(),
                expected: format!(
                    "no iface= for {}: it has no kernel interface (give ip=, and peer= with peer_mac=)",
                    device.name()
                ),
            });
        }
        let Some(port) = p.int("port", 1..=65535)? else {
            return Err(malformed(
                "dpdk:// needs port=N, the local UDP port (e.g. dpdk://net_af_packet0?iface=veth0&port=9000)".into(),
            ));
        };
        let peer = p.get_with(
            "peer",
            "an IPv4 address and port, e.g. 198.18.0.2:9000",
            |v| v.parse::<SocketAddrV4>().ok(),
        )?;
        let peer_mac = peer_mac_param(&mut p, peer)?;
        let ip = p.get_with("ip", "an IPv4 address", |v| v.parse().ok())?;
        let devargs = p.get_with(
            "devargs",
            "driver arguments key=value separated by commas, e.g. qpairs=1",
            |v| (!v.is_empty() && v.split(',').all(|kv| kv.contains('='))).then(|| v.to_owned()),
        )?;
        let eal = p
            .get_with(
                "eal",
                "EAL arguments separated by +, e.g. --log-level=8+--huge-unlink",
                |v| {
                    let a: Vec<String> = v.split('+').map(str::to_owned).collect();
                    a.iter().all(|x| !x.is_empty()).then_some(a)
                },
            )?
            .unwrap_or_default();
        // getopt_long takes any unambiguous abbreviation of a long option
        // (`--file=x`, `--file-pre x`): every prefix of `--file-prefix` from
        // `--fi` on is the option (no other EAL option starts so).
        if let Some(a) = eal.iter().find(|a| {
            let opt = a.split_once('=').map_or(a.as_str(), |(o, _)| o);
            opt.len() >= 4 && "--file-prefix".starts_with(opt)
        }) {
            return Err(UriError::BadValue {
                param: "eal".into(),
                value: a.clone(),
                expected: "EAL arguments without --file-prefix: hftnet sets it to hftnet-PID so \
                           that the EAL's runtime directory (/var/run/dpdk/hftnet-PID) is removed \
                           at exit, and a killed run's at the next start; another prefix would \
                           leave its directory behind"
                    .into(),
            });
        }
        let mem_mb = p.int("mem", 16..=1 << 20)?.map_or(128, |m| m as u32);
        let mbufs = p.int("mbufs", 256..=1 << 20)?.map(|m| m as u32);
        let reserve = p.bool("reserve")?.unwrap_or(true);
        if let Some(rx) = p.choice("rx", RxStrategy::NAMES)?
            && rx != "spin"
        {
            return Err(UriError::BadValue {
                param: "rx".into(),
                value: rx.into(),
                expected: "spin (DPDK's poll-mode drivers have nothing to sleep on)".into(),
            });
        }
        let cpu = p.int("cpu", 0..=4095)?.map(|v| v as usize);
        p.finish()?;
        if iface.is_none() && ip.is_none() {
            return Err(malformed(format!(
                "{} has no kernel interface to take an address from: give ip=ADDR (and peer= \
                 with peer_mac= to send)",
                device.name()
            )));
        }
        Ok(Self {
            device,
            iface,
            port: port as u16,
            peer,
            peer_mac,
            ip,
            devargs,
            eal,
            mem_mb,
            mbufs,
            reserve: reserve && needs_iface,
            cpu,
        })
    }

    /// Largest UDP payload carried, before the interface's MTU is known: a
    /// one-segment mbuf.
    #[must_use]
    pub fn max_message(&self) -> usize {
        2048 - HEADERS
    }

    /// The kernel queue a `net_af_xdp` port's first queue binds to: the
    /// last `start_queue=` of the device arguments (the driver's kvargs
    /// keep the last), 0 by default.
    #[must_use]
    pub fn af_xdp_start_queue(&self) -> u32 {
        self.devargs_string()
            .split(',')
            .filter_map(|kv| kv.strip_prefix("start_queue="))
            .filter_map(|v| v.parse().ok())
            .next_back()
            .unwrap_or(0)
    }

    /// The argument string of `rte_dev_probe` for this device.
    #[must_use]
    pub fn devargs_string(&self) -> String {
        let mut s = self.device.name().to_owned();
        if let (Device::Virtual { driver, .. }, Some(i)) = (&self.device, &self.iface) {
            // net_tap names the tap it creates with iface= too.
            s.push_str(&format!(",iface={i}"));
            if *driver == "net_af_xdp" {
                s.push_str(",start_queue=0,queue_count=1");
                // Preferred busy polling (the driver's default budget of 64)
                // stalled veth queues here for up to a second; off unless asked.
                if !self.devargs.as_deref().is_some_and(|d| d.contains("busy_budget=")) {
                    s.push_str(",busy_budget=0");
                }
            }
        }
        if let Some(d) = &self.devargs {
            s.push(',');
            s.push_str(d);
        }
        s
    }
}

/// The name of a new mempool for device `device`: `hft` + a number unique
/// in the process + `_` + as much of the device name as fits DPDK's limit
/// (`sys::MEMPOOL_NAME_MAX`, 25 bytes): unique whatever the device name's
/// length (`net_af_packet0` → `hft1_net_af_packet0`), also when a pool of
/// the same device outlives its port (a port dropped open leaks its pool).
fn pool_name(device: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut s = format!("hft{n}_");
    for c in device.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
        if s.len() >= sys::MEMPOOL_NAME_MAX {
            break;
        }
        s.push(c);
    }
    s
}

/// The Debian package of a DPDK driver plugin (`net_af_xdp` → `librte-net-af-xdp23`).
#[must_use]
pub fn driver_package(driver: &str) -> String {
    let abi = sys::PMD_DIR
        .rsplit("pmds-")
        .next()
        .and_then(|v| v.split('.').next())
        .filter(|v| !v.is_empty())
        .unwrap_or("23");
    format!("librte-{}{abi}", driver.replace('_', "-"))
}

/// The environment variable naming another directory of DPDK driver
/// plugins (a DPDK installed elsewhere): checked for the driver's plugin
/// and given to the EAL with `-d`.
pub const PMD_DIR_ENV: &str = "HFTNET_DPDK_PMD_DIR";

/// The directory the driver plugins are loaded from.
fn pmd_dir() -> String {
    std::env::var(PMD_DIR_ENV).unwrap_or_else(|_| sys::PMD_DIR.to_owned())
}

/// Whether the plugin of `driver` is installed (`None`: the plugin
/// directory is not known, so nothing can be said).
fn plugin_installed(driver: &str) -> Option<bool> {
    let dir = pmd_dir();
    if dir.is_empty() {
        return None;
    }
    let dir = std::fs::read_dir(dir).ok()?;
    let stem = format!("librte_{driver}.so");
    Some(
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&stem)),
    )
}

/// The ethdev counters of the port, as reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the device dropped (no descriptor or mbuf).
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Mbuf allocation failures on receive.
    pub rx_nombuf: u64,
    /// Queue 0 packets received.
    pub q0_ipackets: u64,
    /// Queue 0 packets sent.
    pub q0_opackets: u64,
}

impl From<sys::PortStats> for PortCounters {
    fn from(s: sys::PortStats) -> Self {
        Self {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            q0_ipackets: s.q0_ipackets,
            q0_opackets: s.q0_opackets,
        }
    }
}

/// The mempool's use now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MempoolUse {
    /// Mbufs in the pool.
    pub size: u32,
    /// Taken now (the device's receive ring, in flight, held).
    pub in_use: u32,
    /// Free now.
    pub available: u32,
}

/// The `dpdk://` section of the capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DpdkCaps {
    /// The device name.
    pub device: String,
    /// The driver (`net_af_packet`, ...).
    pub driver: String,
    /// The ethdev port id.
    pub port_id: u16,
    /// How the EAL runs (hugepages or not, memory, lcores, version).
    pub eal: EalInfo,
    /// The mempool.
    pub mempool: MempoolUse,
    /// Receive descriptors granted.
    pub rx_desc: u16,
    /// Transmit descriptors granted.
    pub tx_desc: u16,
    /// The device verifies receive checksums (offload on).
    pub rx_cksum_offload: bool,
    /// The device offers transmit checksum offload (IPv4 header and UDP).
    pub tx_cksum_offload_offered: bool,
    /// Who computes the checksums sent: `offloaded` (the device) or
    /// `software`.
    pub tx_checksum: &'static str,
    /// The link now (`None`: the driver cannot tell).
    pub link_up: Option<bool>,
    /// Link speed in Mb/s (0: unknown).
    pub link_speed_mbps: u32,
    /// Times the endpoint saw the link down.
    pub link_downs: u64,
    /// Times the link came back up after the endpoint saw it down (and
    /// sending resumed).
    pub link_recoveries: u64,
    /// The port counters (`rte_eth_stats`).
    pub port: PortCounters,
    /// The driver's extended counters (`rte_eth_xstats`), non-zero ones.
    pub xstats: Vec<(String, u64)>,
    /// What happened to the frames received and sent.
    pub frames: FrameStats,
    /// Kicks the device took only in part.
    pub tx_busy: u64,
    /// Mbuf allocations for sending that failed (pool empty).
    pub tx_nombuf: u64,
    /// Received mbufs of another port's pool (a driver passing mbufs
    /// between ports, e.g. `net_ring` attached to another port's rings):
    /// freed at once, dropped.
    pub foreign_mbufs: u64,
}

impl CapsSection for DpdkCaps {
    fn lines(&self, out: &mut Vec<(String, String)>) {
        out.push((
            "dpdk".into(),
            format!(
                "{} ({}) port {}, rx {} tx {} descriptors, DPDK {}",
                self.device, self.driver, self.port_id, self.rx_desc, self.tx_desc, self.eal.version
            ),
        ));
        out.push((
            "dpdk_memory".into(),
            if self.eal.hugepages {
                format!("hugepages, -m {} MB", self.eal.mem_mb)
            } else {
                format!(
                    "no hugepages: --no-huge --no-shconf -m {} MB (4 KiB pages)",
                    self.eal.mem_mb
                )
            },
        ));
        out.push((
            "dpdk_mempool".into(),
            format!(
                "{} mbufs, {} in use, {} free",
                self.mempool.size, self.mempool.in_use, self.mempool.available
            ),
        ));
        out.push(("dpdk_lcore".into(), self.eal.lcores.clone()));
        out.push(("tx_checksum".into(), self.tx_checksum.into()));
    }
}

/// The device, port and pool of one endpoint. Drop order (fields in
/// order): the receive batch and the transmit queue (with the mbuf staged
/// in it) give their mbufs back to the pool first; then the port is
/// stopped and closed and the device removed; then the pool is freed (the
/// batch and the queue hold it too, so no order of drops could free it
/// under their mbufs).
#[derive(Debug)]
pub struct DpdkRing {
    rx: RxBatch,
    txq: TxQueue,
    /// The device, its port, and the pool its queues take mbufs from (freed only
    /// after the port is closed).
    dev: Opened,
    wait_fd: Socket,
    rx_cksum: bool,
    /// Transmit checksum offload on: each frame's mbuf asks the device for both sums.
    tx_cksum: bool,
    tx_cksum_offered: bool,
    rx_desc: u16,
    tx_desc: u16,
    driver: String,
    eal: EalInfo,
    link: LinkWatch,
    tx_busy: u64,
    tx_nombuf: u64,
    _reservation: Option<Socket>,
}

/// What the endpoint knows of the link.
#[derive(Debug)]
struct LinkWatch {
    up: bool,
    downs: u64,
    /// Times the link came back up after the endpoint saw it down.
    recoveries: u64,
    checked: Option<Instant>,
    /// The kernel interface, read instead of the port's link for a driver
    /// whose port reports the link up whatever the interface does
    /// (`net_af_xdp`), and consulted before each transmit burst: see
    /// [`KernelLink`].
    kernel: Option<KernelLink>,
}

/// A kernel interface's link, followed through the kernel's link
/// notifications (`RTNLGRP_LINK`) on a socket opened in the interface's
/// network namespace: a check (at most every [`LINK_RECHECK`], while
/// sending) is one non-blocking `recvfrom` that finds nothing unless the
/// link changed — no request, no round trip, no allocation. Only when
/// notifications were lost (the socket overflowed) is the link read anew
/// with a request (which allocates).
///
/// Why `net_af_xdp` needs it (DPDK 22.11, kernel 6.18, veth): its port
/// reports the link up always and its transmit burst takes frames onto the
/// AF_XDP ring while the interface is down (each kick refused with
/// `ENETDOWN`). When a full ring of them waited through the outage, the
/// frames sent after the link came back were rejected by the kernel as
/// invalid descriptors (`XDP_STATISTICS.tx_invalid_descs` grew by exactly
/// their number, `sendto` returned 0, nothing left the interface and their
/// mbufs never completed); with at most two bursts on the ring during the
/// outage, traffic resumed. So no burst is handed to the driver while the
/// interface is down.
#[derive(Debug)]
struct KernelLink {
    events: hftnet_sys::netlink::LinkEvents,
    /// For the first read and after lost notifications.
    nl: hftnet_sys::netlink::RtNetlink,
    index: u32,
}

impl KernelLink {
    /// Subscribes to the link notifications of interface `index` (of this
    /// thread's namespace) and opens the socket for full reads.
    fn open(index: u32) -> Result<Self, OpenError> {
        let what = "opening a netlink socket to watch the link";
        Ok(Self {
            events: hftnet_sys::netlink::LinkEvents::open().map_err(OpenError::setup(what))?,
            nl: hftnet_sys::netlink::RtNetlink::open().map_err(OpenError::setup(what))?,
            index,
        })
    }

    /// Reads the link with a request (allocates): up with carrier.
    fn read_now(&mut self) -> Option<bool> {
        self.nl
            .link_info(self.index)
            .ok()
            .map(|l| l.up && l.running)
    }

    /// What changed since the last look: `None` when nothing did.
    #[inline]
    fn changed(&mut self) -> Option<bool> {
        match self.events.poll(self.index) {
            Ok(news) => news,
            // Notifications lost: read it whole.
            Err(_) => self.read_now(),
        }
    }
}

/// How often a stalled transmit reads the link again.
const LINK_RECHECK: Duration = Duration::from_millis(1);

impl LinkWatch {
    /// Looks at the link (at most every [`LINK_RECHECK`]).
    fn check(&mut self, port: &Port) {
        let now = Instant::now();
        if self.checked.is_some_and(|t| now.duration_since(t) < LINK_RECHECK) {
            return;
        }
        self.checked = Some(now);
        let up = match &mut self.kernel {
            Some(k) => k.changed(),
            None => port.link().ok().map(|l| l.up),
        };
        if let Some(up) = up {
            if self.up && !up {
                self.downs += 1;
            } else if !self.up && up {
                self.recoveries += 1;
            }
            self.up = up;
        }
    }
}

/// A device registered with the EAL; stopped, closed and removed on drop,
/// in the network namespace it was opened in: drivers act on their
/// interface by index when they close (net_af_xdp detaches its XDP
/// program), and the same index in the dropping thread's namespace may be
/// another interface.
#[derive(Debug)]
struct Opened {
    name: String,
    bus: &'static str,
    port: Option<Port>,
    netns: Option<std::os::fd::OwnedFd>,
    /// The pool the port's queues take mbufs from (net_af_xdp: its memory
    /// is the socket's UMEM). Dropped after [`Drop::drop`] has closed the
    /// port — never before, also on an error part-way through the set-up.
    pool: Option<std::sync::Arc<Mempool>>,
}

impl Opened {
    /// The pool, once created.
    fn pool(&self) -> &Mempool {
        self.pool.as_ref().expect("set before the endpoint exists")
    }

    /// The port, once claimed.
    fn port(&self) -> &Port {
        self.port.as_ref().expect("set before the endpoint exists")
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        use hftnet_sys::netns;
        // Into the device's namespace for the close, and back after.
        let back = match &self.netns {
            None => None,
            Some(ns) => match netns::open_current() {
                Ok(home) if netns::setns(ns.as_fd()).is_ok() => Some(home),
                // Not in its namespace: leave the port open and its name
                // taken (the process's exit reclaims it; the EAL is then
                // not cleaned up) rather than close it against another
                // interface. Its pool stays too: the open port's queues
                // (and for net_af_xdp the kernel) still use its memory.
                _ => {
                    std::mem::forget(self.port.take());
                    std::mem::forget(self.pool.take());
                    return;
                }
            },
        };
        if let Some(mut p) = self.port.take() {
            let _ = p.stop();
            let _ = p.close();
        }
        let _ = sys::hotplug_remove(self.bus, &self.name);
        if let Some(home) = back {
            let _ = netns::setns(home.as_fd());
        }
        eal::release(&self.name);
    }
}

/// The receive half of [`DpdkRing`].
#[derive(Debug)]
pub struct DpdkRx<'a> {
    batch: &'a mut RxBatch,
    port: &'a Port,
    rx_cksum: bool,
}

/// The transmit half of [`DpdkRing`].
#[derive(Debug)]
pub struct DpdkTx<'a> {
    q: &'a mut TxQueue,
    port: &'a Port,
    tx_cksum: bool,
    link: &'a mut LinkWatch,
    tx_busy: &'a mut u64,
    tx_nombuf: &'a mut u64,
}

impl Ring for DpdkRing {
    type Rx<'a> = DpdkRx<'a>;
    type Tx<'a> = DpdkTx<'a>;
    type Caps = DpdkCaps;

    #[inline]
    fn split(&mut self) -> (DpdkRx<'_>, DpdkTx<'_>) {
        (
            DpdkRx {
                batch: &mut self.rx,
                port: self.dev.port(),
                rx_cksum: self.rx_cksum,
            },
            DpdkTx {
                q: &mut self.txq,
                port: self.dev.port(),
                tx_cksum: self.tx_cksum,
                link: &mut self.link,
                tx_busy: &mut self.tx_busy,
                tx_nombuf: &mut self.tx_nombuf,
            },
        )
    }

    /// Never readable: `rx=spin` is the only strategy, so it is never slept on.
    fn fd(&self) -> BorrowedFd<'_> {
        self.wait_fd.as_fd()
    }

    fn zero_copy(&self) -> bool {
        // The driver writes into the mbufs itself; with af_packet/af_xdp
        // the kernel copies into them first.
        false
    }

    fn caps(&self, frames: FrameStats) -> DpdkCaps {
        let link = self.port().link().ok();
        DpdkCaps {
            device: self.dev.name.clone(),
            driver: self.driver.clone(),
            port_id: self.port().id(),
            eal: self.eal.clone(),
            mempool: self.mempool_use(),
            rx_desc: self.rx_desc,
            tx_desc: self.tx_desc,
            rx_cksum_offload: self.rx_cksum,
            tx_cksum_offload_offered: self.tx_cksum_offered,
            tx_checksum: if self.tx_cksum {
                TxChecksum::Offloaded.as_str()
            } else {
                TxChecksum::Software.as_str()
            },
            link_up: link.map(|l| l.up),
            link_speed_mbps: link.map_or(0, |l| l.speed_mbps),
            link_downs: self.link.downs,
            link_recoveries: self.link.recoveries,
            port: self.port().stats().map(PortCounters::from).unwrap_or_default(),
            xstats: self
                .port()
                .xstats()
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, v)| *v != 0)
                .collect(),
            frames,
            tx_busy: self.tx_busy,
            tx_nombuf: self.tx_nombuf,
            foreign_mbufs: self.rx.foreign_mbufs(),
        }
    }

    fn notes(&self, out: &mut Vec<String>) {
        let m = self.mempool_use();
        out.push(format!(
            "mempool: {} of {} mbufs in use; {} busy kicks, {} failed mbuf allocations",
            m.in_use, m.size, self.tx_busy, self.tx_nombuf
        ));
        if let Ok(s) = self.port().stats() {
            out.push(format!(
                "port {}: {} packets received, {} sent, {} missed, {} receive errors, {} transmit \
                 errors, {} receive mbuf failures",
                self.port().id(),
                s.ipackets,
                s.opackets,
                s.imissed,
                s.ierrors,
                s.oerrors,
                s.rx_nombuf
            ));
        }
        if self.rx.foreign_mbufs() > 0 {
            out.push(format!(
                "{} received mbufs of another port's pool dropped (a driver passing mbufs \
                 between ports, e.g. net_ring attached to another port's rings)",
                self.rx.foreign_mbufs()
            ));
        }
        if self.link.downs > 0 {
            out.push(format!(
                "link seen down {} times, back up {} times",
                self.link.downs, self.link.recoveries
            ));
        }
    }
}

impl DpdkRing {
    /// The mempool's use now.
    #[must_use]
    pub fn mempool_use(&self) -> MempoolUse {
        MempoolUse {
            size: self.dev.pool().size(),
            in_use: self.dev.pool().in_use(),
            available: self.dev.pool().available(),
        }
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> &Port {
        self.dev.port()
    }
}

impl RxRing for DpdkRx<'_> {
    #[inline]
    fn recv(&mut self, max: usize, mut f: impl FnMut(RxFrame<'_>)) -> usize {
        // A thread the EAL did not start gets an lcore id first (drivers
        // keep per-lcore state; net_af_xdp stalled without one).
        let _ = sys::register_thread();
        let n = self.batch.fill(self.port, 0, max);
        while let Some(m) = self.batch.take() {
            let udp_check = if !self.rx_cksum {
                // Nothing verified: a checksum a local sender left partial
                // over a virtual link is accepted (and counted).
                UdpCheck::VerifyOrPartial
            } else {
                match m.rx_l4_cksum() {
                    Cksum::Good | Cksum::None => UdpCheck::Skip,
                    Cksum::Bad => UdpCheck::Verify,
                    Cksum::Unknown => UdpCheck::VerifyOrPartial,
                }
            };
            f(RxFrame {
                data: m.data(),
                wire_len: m.pkt_len(),
                udp_check,
                ts_ns: None,
                queue: 0,
            });
            // `m` drops here: the mbuf goes back to the pool.
        }
        n
    }
}

impl DpdkTx<'_> {
    /// Takes an mbuf for the next frame, sending what is queued first when
    /// the queue is full; false when none can be had now.
    #[inline]
    fn take(&mut self) -> bool {
        match self.q.stage() {
            Ok(()) => true,
            Err(StageError::Full) => {
                self.flush();
                self.q.has_room() && self.take()
            }
            Err(StageError::NoMbuf) => {
                *self.tx_nombuf += 1;
                false
            }
        }
    }

    #[inline]
    fn flush(&mut self) {
        let _ = sys::register_thread();
        if self.link.kernel.is_some() {
            self.link.check(self.port);
            if !self.link.up {
                // Kept here until the interface is back (see KernelLink).
                return;
            }
        }
        self.q.flush(self.port, 0);
        if !self.q.is_empty() {
            *self.tx_busy += 1;
            self.link.check(self.port);
        } else if !self.link.up {
            self.link.check(self.port);
        }
    }
}

impl TxRing for DpdkTx<'_> {
    #[inline]
    fn ready(&mut self) -> bool {
        self.take()
    }

    #[inline]
    fn slot(&mut self) -> Option<&mut [u8]> {
        if !self.take() {
            return None;
        }
        self.q.staged_room()
    }

    #[inline]
    fn commit(&mut self, len: usize) {
        // The frame layer left the sums to the device (TxChecksum::Offloaded).
        let cksum = if self.tx_cksum {
            let room = self.q.staged_room().expect("commit without a slot");
            let l2_len = match room.get(12..14) {
                Some([0x81, 0x00]) => ethernet::VLAN_HEADER_LEN,
                _ => ethernet::HEADER_LEN,
            };
            Some((l2_len as u16, hftnet_wire::ipv4::HEADER_LEN as u16))
        } else {
            None
        };
        let committed = self.q.commit(len, cksum);
        assert!(committed, "commit without a slot");
    }

    fn cancel(&mut self) {
        self.q.cancel();
    }

    #[inline]
    fn kick(&mut self) -> Result<(), SyscallError> {
        self.flush();
        Ok(())
    }

    #[inline]
    fn needs_kick(&self) -> bool {
        !self.q.is_empty()
    }

    fn full_error(&self) -> SyscallError {
        if self.link.up {
            SyscallError::from_errno("dpdk:// send (transmit queue full)", libc::ENOBUFS)
        } else {
            SyscallError::from_errno("dpdk:// send (the link is down)", libc::ENETDOWN)
        }
    }
}

/// Neighbours of a port without a kernel interface: only the pinned peer
/// (`peer_mac=`) is known.
#[derive(Debug)]
struct PinnedOnly;

impl Neighbours for PinnedOnly {
    fn resolve(
        &mut self,
        iface: &L2Iface,
        ip: Ipv4Addr,
        timeout: Duration,
    ) -> Result<ethernet::Address, L2Error> {
        Err(L2Error::Unresolved {
            ip,
            dst: ip,
            iface: iface.name.clone(),
            waited: timeout.min(Duration::ZERO),
            failed: true,
        })
    }

    fn table_mac(&mut self, _: &L2Iface, _: Ipv4Addr) -> Result<Option<ethernet::Address>, L2Error> {
        Ok(None)
    }
}

/// The XDP program of `net_af_xdp` endpoints (`bpf/dpdk_udp.c`).
static DPDK_UDP_PROG: &[u8] = aya::include_bytes_aligned!("../../../../bpf/dpdk_udp.o");
/// Its function, and so the kernel's name of the program.
const DPDK_UDP_PROG_NAME: &str = "hftnet_dpdk_udp";

/// Makes sure the XDP slot of `iface` is free for our program
/// (`bpf/dpdk_udp.c`), which `net_af_xdp` attaches through netlink: a copy
/// a dead process left attached (it outlives a process killed before its
/// port was closed) is detached — only ours (its name and the tag of this
/// build's object) and only when the owner recorded in it (PID and start
/// time, written by [`XdpProgFile::write`]) is gone; any other program
/// makes the open fail, before the driver runs (its failed set-up would
/// detach whatever program the interface has, another live endpoint's
/// included), ours naming its live owner's PID; so does a program that
/// cannot be looked at (no privilege to read programs, no readable owner).
/// Returns a note when an orphan was removed.
///
/// # Errors
/// [`OpenError::Dpdk`] naming the program that holds the slot.
fn free_xdp_slot(iface: &str) -> Result<Option<String>, OpenError> {
    use crate::xdp::steer::{XdpSlot, claim_orphan, program_tag};
    match claim_orphan(iface, DPDK_UDP_PROG_NAME, || {
        program_tag(DPDK_UDP_PROG, DPDK_UDP_PROG_NAME)
    }) {
        Ok(XdpSlot::Free) => Ok(None),
        Ok(XdpSlot::OrphanRemoved(id)) => Ok(Some(format!(
            "removed our XDP program (id {id}) that a dead process had left attached to {iface}"
        ))),
        Ok(XdpSlot::Taken(p)) => Err(OpenError::Dpdk {
            problem: format!(
                "{iface} already has an XDP program attached ({:?}, id {}), and net_af_xdp \
                 attaches its own: another program uses the interface — detach it, or use \
                 another interface (`ip -d link show {iface}` shows the program)",
                p.name, p.id,
            ),
        }),
        Ok(XdpSlot::InUse(p, pid)) => Err(OpenError::Dpdk {
            problem: format!(
                "{iface} already has an XDP program attached ({:?}, id {}, ours, in use by live \
                 process {pid}), and net_af_xdp attaches its own: another endpoint uses the \
                 interface — close it (or end process {pid}), or use another interface; a \
                 program of ours is removed by the next start once its process is gone",
                p.name, p.id,
            ),
        }),
        Ok(XdpSlot::Unknown(id, why)) => Err(OpenError::Dpdk {
            problem: format!(
                "{iface} already has an XDP program attached (id {id}) that could not be \
                 looked at ({why}), and net_af_xdp would replace it: use another interface, \
                 or run as root (CAP_SYS_ADMIN) if a privilege was missing; if no endpoint uses \
                 it, `ip link set dev {iface} xdp off` removes it (`ip -d link show {iface}` \
                 shows it)"
            ),
        }),
        // The slot itself could not be read (no such interface): the driver
        // reports.
        Err(_) => Ok(None),
    }
}

/// The program written to a file of the EAL's runtime directory for the
/// driver to load; removed on drop.
#[derive(Debug)]
struct XdpProgFile(std::path::PathBuf);

impl XdpProgFile {
    /// Writes the program with this process recorded as its owner
    /// ([`ProgramOwner`](crate::xdp::steer::ProgramOwner)): the driver
    /// loads it with the record in place, before it attaches it.
    fn write(device: &str) -> Result<Self, OpenError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let object = crate::xdp::steer::ProgramOwner::this_process()
            .and_then(|o| o.stamp(DPDK_UDP_PROG))
            .map_err(|why| OpenError::Dpdk {
                problem: format!("recording this process as the XDP program's owner: {why}"),
            })?;
        let dir = runtime_directory().unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!("{device}-dpdk_udp.o"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&object).map(|()| f))
            .map_err(|e| {
                OpenError::setup(format!(
                    "writing the XDP program for net_af_xdp to {}",
                    path.display()
                ))(from_io("write", e))
            })?;
        let _ = f.flush();
        Ok(Self(path))
    }
}

impl Drop for XdpProgFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Waits up to [`XSK_QUEUE_WAIT`] while an AF_XDP buffer pool holds receive
/// queue `queue` of `iface`, as the kernel says (`netdev` generic netlink,
/// where the kernel reports it, as 6.18 does): a socket closed a moment ago (a restart, the previous
/// endpoint of this process) holds it until the kernel's deferred release,
/// ~20 ms here. `net_af_xdp` must meet the queue free, because its set-up
/// cannot be asked again on the same device: the fill ring's producer index
/// survives a refused attempt (libxdp 1.3 does not reset it), so the second
/// attempt hands the kernel 2048 empty fill entries (frames written at UMEM
/// offset 0) and the third finds the ring full — and each keeps the 2048
/// mbufs it took. A kernel that cannot say is not waited for.
///
/// # Errors
/// [`OpenError::Setup`] when the queue is still held after the wait.
fn wait_for_free_xsk_queue(iface: &L2Iface, queue: u32) -> Result<(), OpenError> {
    let Ok(mut nl) = hftnet_sys::netlink::GenNetlink::open() else {
        return Ok(());
    };
    let until = Instant::now() + XSK_QUEUE_WAIT;
    let mut held = false;
    loop {
        let busy = match nl.xsk_holds_rx_queue(iface.index, queue) {
            Ok(Some(true)) => {
                held = true;
                true
            }
            // Once seen held, a failed ask (a timeout) is not "free".
            Err(_) => held,
            // Free, or the kernel cannot say.
            Ok(_) => false,
        };
        if !busy {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(OpenError::Setup {
                step: format!(
                    "queue {queue} of {} is taken by another AF_XDP socket (still after \
                     {XSK_QUEUE_WAIT:?}: an `xdp://` endpoint or another DPDK process?); use \
                     another start_queue= in devargs=, or close it",
                    iface.name
                ),
                cause: SyscallError::from_errno("netdev queue-get (xsk)", libc::EBUSY),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Maps a failed probe to the error that says what to do.
fn probe_error(cfg: &DpdkConfig, e: &sys::DpdkError) -> OpenError {
    let name = cfg.device.name();
    let args = cfg.devargs_string();
    let problem = match (&cfg.device, e.errno) {
        (_, libc::EPERM | libc::EACCES) => {
            return OpenError::Privilege {
                what: "dpdk:// (creating the DPDK device)",
                privilege: "root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_IPC_LOCK)",
                cause: SyscallError::from_errno("rte_dev_probe", e.errno),
            };
        }
        (_, libc::EEXIST | libc::EBUSY) => format!(
            "DPDK device {name} is busy ({e}): it, or its interface's queue, is taken — by another \
             endpoint of this process or another program (an AF_XDP socket or XDP program on the \
             interface, `ip link show`)"
        ),
        (Device::Pci(a), _) => format!(
            "could not probe PCI device {a} ({e}): is it bound to vfio-pci (`dpdk-devbind.py \
             --status`) and is its driver's plugin installed?"
        ),
        (Device::Virtual { .. }, _) => format!(
            "could not create DPDK device {name} with {args:?} ({e}): check the interface and the \
             devargs= (the driver's messages above say which)"
        ),
    };
    OpenError::Dpdk { problem }
}

/// The drivers that open an `AF_PACKET` or `AF_XDP` socket need
/// `CAP_NET_RAW`: asked first with a socket of that family, so a missing
/// privilege is named before the EAL starts (the drivers report it as a
/// failed probe, `ENOTSUP`).
fn check_socket_privilege(driver: &str) -> Result<(), OpenError> {
    let domain = match driver {
        "net_af_packet" => Domain::PACKET,
        "net_af_xdp" => Domain::from(libc::AF_XDP),
        _ => return Ok(()),
    };
    match Socket::new(domain, Type::RAW.cloexec(), None) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
            Err(OpenError::Privilege {
                what: "dpdk:// (the driver's AF_PACKET / AF_XDP socket)",
                privilege: "CAP_NET_RAW (run as root)",
                cause: from_io("socket", e),
            })
        }
        // Anything else is the driver's to report.
        Err(_) => Ok(()),
    }
}

/// Opens the endpoint: EAL (once), device, pool, port, addresses. With
/// `cpu=`, a failed open gives the thread back the CPUs it had.
fn open(cfg: &DpdkConfig, role: Role) -> Result<DpdkTransport, OpenError> {
    let before = match cfg.cpu {
        Some(_) => hftnet_sys::sched::allowed_cpus().ok(),
        None => None,
    };
    open_pinned(cfg, role).inspect_err(|_| {
        if let Some(cpus) = &before {
            // The pin (ours, or the EAL's of its main lcore) is undone; if
            // that fails too, the open's error is still the one to report.
            let _ = hftnet_sys::sched::set_allowed_cpus(cpus);
        }
    })
}

/// [`open`], which pins the thread early (`cpu=`).
fn open_pinned(cfg: &DpdkConfig, role: Role) -> Result<DpdkTransport, OpenError> {
    // The kernel interface first: a missing one is named before DPDK starts.
    let example = "dpdk://net_af_packet1?iface=veth0&port=9001&peer=198.18.0.2:9000";
    let kernel = match &cfg.iface {
        Some(i) => Some(open_iface(i, cfg.ip, cfg.peer, role, example)?),
        None => None,
    };
    if role == Role::Client && cfg.peer.is_none() {
        return Err(UriError::BadValue {
            param: "peer".into(),
            value: String::new(),
            expected: format!("an IPv4 address and port to send to, e.g. {example}"),
        }
        .into());
    }
    if let Device::Virtual { driver, .. } = &cfg.device
        && plugin_installed(driver) == Some(false)
    {
        return Err(OpenError::Dpdk {
            problem: format!(
                "the DPDK driver {driver} is not installed (no librte_{driver}.so in {}): \
                 apt-get install -y {}",
                pmd_dir(),
                driver_package(driver)
            ),
        });
    }
    if let Device::Virtual { driver, .. } = &cfg.device {
        check_socket_privilege(driver)?;
    }
    if let Some(c) = cfg.cpu {
        // Every endpoint's cpu= pins the opening thread: the first one's
        // also through the EAL's lcore (--lcores 0@(c)), a later one's here
        // (its thread's EAL lcore, taken at its first burst, follows the
        // thread's CPUs).
        hftnet_sys::sched::pin_thread_to_cpu(c).map_err(|e| UriError::BadValue {
            param: "cpu".into(),
            value: c.to_string(),
            expected: e.to_string(),
        })?;
    }
    let pci = match &cfg.device {
        Device::Pci(a) => Some(a.as_str()),
        Device::Virtual { .. } => None,
    };
    let name = cfg.device.name().to_owned();
    let eal = eal::acquire(
        &eal::EalRequest {
            extra: &cfg.eal,
            cpu: cfg.cpu,
            mem_mb: cfg.mem_mb,
            pci,
        },
        &name,
    )?;
    // From here the device is registered: `Opened` releases it on any error.
    let mut dev = Opened {
        name: name.clone(),
        bus: if pci.is_some() { "pci" } else { "vdev" },
        port: None,
        netns: match &cfg.iface {
            Some(_) => Some(
                hftnet_sys::netns::open_current()
                    .map_err(OpenError::setup("opening this thread's network namespace"))?,
            ),
            None => None,
        },
        pool: None,
    };
    let reservation = match (&kernel, cfg.reserve) {
        (Some((iface, ip)), true) => Some(crate::packet::reserve_port(
            SocketAddrV4::new(*ip, cfg.port),
            None,
            iface,
            false,
        )?),
        _ => None,
    };
    // net_af_xdp: our program (UDP to the socket, the rest to the kernel)
    // instead of the driver's, which takes every frame (ARP included). The
    // driver loads it when the queue is set up; the file goes after.
    let xdp_prog = match &cfg.device {
        Device::Virtual { driver, .. }
            if *driver == "net_af_xdp"
                && !cfg.devargs.as_deref().is_some_and(|d| d.contains("xdp_prog=")) =>
        {
            Some(XdpProgFile::write(&name)?)
        }
        _ => None,
    };
    let orphan_note = match (&xdp_prog, &kernel) {
        (Some(_), Some((iface, _))) => free_xdp_slot(&iface.name)?,
        _ => None,
    };
    if pci.is_none() {
        let mut args = cfg.devargs_string();
        if let Some(f) = &xdp_prog {
            args.push_str(&format!(",xdp_prog={}", f.0.display()));
        }
        sys::dev_probe(&args).map_err(|e| probe_error(cfg, &e))?;
    }
    let mut port = sys::port_by_name(&name).and_then(Port::new).ok_or_else(|| OpenError::Dpdk {
        problem: format!(
            "DPDK device {name} has no ethdev port (not probed: for a PCI device, check it is \
             bound to vfio-pci with `dpdk-devbind.py --status`), or another endpoint of this \
             process holds it"
        ),
    })?;
    let port_id = port.id();
    port.set_af_xdp_start_queue(cfg.af_xdp_start_queue());
    // Owned by the device from here, so any error below closes it.
    let port = dev.port.insert(port);
    let step = |what: &str| {
        let what = format!("setting up DPDK port {port_id} ({name}): {what}");
        move |e: sys::DpdkError| OpenError::Dpdk {
            problem: format!("{what}: {e}"),
        }
    };
    let info = port.info().map_err(step("reading its capabilities"))?;
    let rx_cksum_bits = sys::RX_OFFLOAD_IPV4_CKSUM | sys::RX_OFFLOAD_UDP_CKSUM;
    let rx_cksum = info.rx_offload_capa & rx_cksum_bits == rx_cksum_bits;
    let tx_cksum_bits = sys::TX_OFFLOAD_IPV4_CKSUM | sys::TX_OFFLOAD_UDP_CKSUM;
    let tx_cksum_offered = info.tx_offload_capa & tx_cksum_bits == tx_cksum_bits;
    // Used whenever offered: every frame then leaves both sums to the device.
    let tx_cksum = tx_cksum_offered;
    let rx_want = RING_DESC.min(info.rx_desc_max.max(1));
    let tx_want = RING_DESC.min(info.tx_desc_max.max(1));
    let n = cfg.mbufs.unwrap_or(
        // Both rings full twice over (net_af_xdp keeps its fill ring, twice
        // the receive ring, stocked from the pool), a burst each way in
        // hand, and the caches.
        2 * (u32::from(rx_want) + u32::from(tx_want)) + 4 * sys::BURST as u32 + 2 * POOL_CACHE,
    );
    let socket = port.socket().max(0);
    let pool_name = pool_name(&name);
    // net_af_xdp's UMEM is the pool's first n objects' bytes: they must lie
    // back to back (see Mempool::new_packed; without it, 40% of the mbufs
    // were invalid descriptors and frames sent from them vanished).
    let af_xdp = matches!(&cfg.device, Device::Virtual { driver, .. } if *driver == "net_af_xdp");
    let create = if af_xdp {
        Mempool::new_packed
    } else {
        Mempool::new
    };
    let new_pool = create(&pool_name, n, POOL_CACHE, 2048 + 128, socket).map_err(|e| {
        OpenError::Dpdk {
            problem: if e.errno == libc::ENOMEM {
                format!(
                    "no room for a mempool of {n} mbufs in the EAL's memory ({e}){}: {} — raise \
                     mem= (now {} MB) or lower mbufs=",
                    if af_xdp {
                        " as one contiguous block (net_af_xdp's UMEM covers one block only)"
                    } else {
                        ""
                    },
                    if eal.hugepages {
                        "too few free hugepages"
                    } else {
                        "no hugepages, and -m is too small"
                    },
                    eal.mem_mb
                )
            } else {
                format!("creating the mempool of {name}: {e}")
            },
        }
    })?;
    // Owned by the device from here, so any error below closes the port
    // before the pool is freed.
    let pool = &*dev.pool.insert(std::sync::Arc::new(new_pool));
    if let (true, Some((iface, _))) = (af_xdp, &kernel) {
        wait_for_free_xsk_queue(iface, cfg.af_xdp_start_queue())?;
    }
    let (rx_desc, tx_desc) = port
        .setup(
            if rx_cksum { rx_cksum_bits } else { 0 },
            if tx_cksum { tx_cksum_bits } else { 0 },
            rx_want,
            tx_want,
            pool,
            socket as u32,
        )
        .map_err(|e| {
            if af_xdp && e.errno == libc::EINVAL {
                step(&format!(
                    "configuring one queue pair (is queue {} of the interface held by an AF_XDP \
                     socket? one may have taken it meanwhile; and a kernel that does not report AF_XDP \
                     pools cannot say when a socket closed a moment ago still holds it: then open again)",
                    cfg.af_xdp_start_queue()
                ))(e)
            } else {
                step("configuring one queue pair")(e)
            }
        })?;
    port.start().map_err(|e| match e.errno {
        libc::EBUSY => probe_error(cfg, &e),
        _ => step("starting it")(e),
    })?;
    drop(xdp_prog);
    // Wait a little for the link (a vdev reports its interface's at once).
    let until = Instant::now() + Duration::from_millis(500);
    let mut link = port.link().ok();
    while link.is_some_and(|l| !l.up) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        link = port.link().ok();
    }
    let kernel_link = match &kernel {
        Some((iface, _)) if info.driver == "net_af_xdp" => {
            let mut k = KernelLink::open(iface.index)?;
            // The kernel's word, not the port's (which says up always).
            link = k.read_now().map(|up| sys::Link {
                up,
                ..sys::Link::default()
            });
            Some(k)
        }
        _ => None,
    };
    let (iface, ip, neighbours): (L2Iface, Ipv4Addr, Box<dyn Neighbours>) = match kernel {
        Some((iface, ip)) => (iface, ip, Box::new(KernelNeighbours::open()?)),
        None => {
            let ip = cfg.ip.expect("checked at parse");
            let mac = port.mac().map_err(step("reading its MAC address"))?;
            let iface = L2Iface {
                name: name.clone(),
                index: 0,
                mac: ethernet::Address(mac),
                ipv4: Some((ip, 32)),
                mtu: 1500,
                up: true,
            };
            if cfg.peer.is_some() && cfg.peer_mac.is_none() {
                return Err(UriError::BadValue {
                    param: "peer_mac".into(),
                    value: String::new(),
                    expected: format!(
                        "the peer's MAC address: {name} has no kernel interface whose neighbour \
                         table could give it"
                    ),
                }
                .into());
            }
            (iface, ip, Box::new(PinnedOnly))
        }
    };
    let local = SocketAddrV4::new(ip, cfg.port);
    let mut ep = UdpOverEthernet::new(iface, local, None, cfg.peer, cfg.max_message(), neighbours);
    if let Some(mac) = cfg.peer_mac {
        ep.pin_peer_mac(mac)?;
    }
    if tx_cksum {
        ep.set_tx_checksum(TxChecksum::Offloaded);
    }
    if let Some(peer) = cfg.peer {
        ep.mac_for(*peer.ip()).map_err(OpenError::from)?;
    }
    let wait_fd = Socket::new(Domain::IPV4, Type::DGRAM.cloexec(), None)
        .map_err(|e| OpenError::setup("a socket to wait on")(from_io("socket(UDP)", e)))?;
    let mut notes = vec![
        format!(
            "dpdk: {} ({}) as port {}, one queue pair of {rx_desc}/{tx_desc} descriptors, {n} \
             mbufs; DPDK {}",
            cfg.devargs_string(),
            info.driver,
            port.id(),
            eal.version
        ),
        if eal.hugepages {
            format!("EAL memory: hugepages, -m {} MB", eal.mem_mb)
        } else {
            format!(
                "EAL memory: no hugepages mounted with free pages: --no-huge --no-shconf -m {} MB",
                eal.mem_mb
            )
        },
        format!("EAL lcore {}", eal.lcores),
        format!(
            "checksums: receive {}; transmit {}",
            if rx_cksum {
                "verified by the device"
            } else {
                "not offloaded, verified in software"
            },
            if tx_cksum {
                "offloaded (IPv4 header and UDP computed by the device)"
            } else {
                "computed in software (the device offers no offload)"
            }
        ),
        crate::l2::frames::mac_note(cfg.peer, cfg.peer_mac),
    ];
    notes.extend(orphan_note);
    if cfg.reserve && reservation.is_some() {
        notes.push(format!(
            "port {} held by a kernel socket that drops the kernel's copy of each datagram",
            cfg.port
        ));
    }
    let pool = dev.pool.as_ref().expect("created above");
    let ring = DpdkRing {
        rx: RxBatch::new(pool),
        txq: TxQueue::new(pool),
        dev,
        wait_fd,
        rx_cksum,
        tx_cksum,
        tx_cksum_offered,
        rx_desc,
        tx_desc,
        driver: info.driver,
        eal,
        link: LinkWatch {
            up: link.is_none_or(|l| l.up),
            downs: 0,
            recoveries: 0,
            checked: None,
            kernel: kernel_link,
        },
        tx_busy: 0,
        tx_nombuf: 0,
        _reservation: reservation,
    };
    Ok(L2Transport::new(
        ring,
        ep,
        "dpdk",
        RxStrategy::Spin,
        sys::BURST,
        notes,
    ))
}

impl DpdkTransport {
    /// Opens the endpoint: the EAL (the first time in the process), the
    /// device, its mempool and port, and the peer's MAC address.
    ///
    /// # Errors
    /// [`OpenError::Dpdk`] naming what the EAL or device refused and what to
    /// do; [`OpenError::NoSuchInterface`], [`OpenError::L2`],
    /// [`OpenError::AddrInUse`] as for `packet://`; [`OpenError::Privilege`].
    pub fn open(cfg: &DpdkConfig, role: Role) -> Result<Self, OpenError> {
        open(cfg, role)
    }

    /// The mempool's use now (the leak check: back to its value after open
    /// once the traffic stopped).
    #[must_use]
    pub fn mempool_use(&self) -> MempoolUse {
        self.ring().mempool_use()
    }

    /// Takes back the mbufs the device finished sending but still holds
    /// (an empty transmit burst: net_af_xdp frees sent mbufs only when its
    /// completion ring is read on the next send). Read
    /// [`Self::mempool_use`] after it for the leak check.
    pub fn settle(&mut self) {
        let _ = sys::register_thread();
        let ring = self.ring_mut();
        let port = ring.dev.port();
        ring.txq.flush(port, 0);
        port.reclaim_tx(0);
    }

    /// Sets the port's link down or up (drivers that can).
    ///
    /// # Errors
    /// The driver's refusal (`ENOTSUP`).
    pub fn set_link(&self, up: bool) -> Result<(), SyscallError> {
        self.ring()
            .port()
            .set_link(up)
            .map_err(|e| SyscallError::from_errno(e.call, e.errno))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(u: &str) -> Result<DpdkConfig, UriError> {
        DpdkConfig::from_uri(&Uri::parse(u).unwrap())
    }

    #[test]
    fn uri_parameters() {
        let c = cfg("dpdk://net_af_packet0?iface=veth0&port=9000").unwrap();
        assert_eq!(
            c.device,
            Device::Virtual {
                name: "net_af_packet0".into(),
                driver: "net_af_packet"
            }
        );
        assert_eq!(c.devargs_string(), "net_af_packet0,iface=veth0");
        let c = cfg("dpdk://net_af_xdp0?iface=veth0&port=9000").unwrap();
        assert_eq!(
            c.devargs_string(),
            "net_af_xdp0,iface=veth0,start_queue=0,queue_count=1,busy_budget=0"
        );
        assert_eq!((c.port, c.mem_mb, c.reserve), (9000, 128, true));
        let c = cfg(
            "dpdk://net_af_xdp3?iface=veth1&port=1&peer=198.18.0.2:9&devargs=busy_budget=0&eal=--log-level=8+--huge-unlink&mem=256&cpu=1",
        )
        .unwrap();
        assert_eq!(
            c.devargs_string(),
            "net_af_xdp3,iface=veth1,start_queue=0,queue_count=1,busy_budget=0"
        );
        assert_eq!(c.eal, vec!["--log-level=8", "--huge-unlink"]);
        assert_eq!((c.mem_mb, c.cpu), (256, Some(1)));
        assert_eq!(c.af_xdp_start_queue(), 0);
        let c = cfg("dpdk://net_af_xdp3?iface=veth1&port=1&devargs=start_queue=2").unwrap();
        assert_eq!(c.af_xdp_start_queue(), 2);
        let c = cfg("dpdk://0000:01:00.0?port=9000&ip=10.0.0.1").unwrap();
        assert_eq!(c.device, Device::Pci("0000:01:00.0".into()));
        assert!(!c.reserve);
        let c = cfg("dpdk://net_ring0?port=9&ip=10.0.0.1&peer=10.0.0.2:9&peer_mac=02:00:00:00:00:02")
            .unwrap();
        assert_eq!(c.devargs_string(), "net_ring0");
    }

    #[test]
    fn bad_uris_name_the_problem() {
        let e = cfg("dpdk://net_foo0?iface=veth0&port=1").unwrap_err().to_string();
        assert!(e.contains("unknown DPDK virtual device \"net_foo0\""), "{e}");
        assert!(e.contains("net_af_packet, net_af_xdp"), "{e}");
        let e = cfg("dpdk://net_af_packet?iface=veth0&port=1").unwrap_err().to_string();
        assert!(e.contains("needs a number"), "{e}");
        let e = cfg("dpdk://net_af_packet0?port=1").unwrap_err().to_string();
        assert!(e.contains("give iface=NAME"), "{e}");
        let e = cfg("dpdk://net_af_packet0?iface=veth0").unwrap_err().to_string();
        assert!(e.contains("needs port=N"), "{e}");
        let e = cfg("dpdk://net_af_packet0?iface=veth0&port=1&rx=block")
            .unwrap_err()
            .to_string();
        assert!(e.contains("poll-mode"), "{e}");
        let e = cfg("dpdk://net_null0?iface=veth0&port=1&ip=1.2.3.4").unwrap_err().to_string();
        assert!(e.contains("no kernel interface"), "{e}");
        let e = cfg("dpdk://net_null0?port=1").unwrap_err().to_string();
        assert!(e.contains("give ip=ADDR"), "{e}");
        let e = cfg("dpdk://net_af_packet0?iface=veth0&port=1&devargs=x").unwrap_err().to_string();
        assert!(e.contains("\"devargs\""), "{e}");
        for eal in [
            "--file-prefix=x",
            "--log-level=8+--file-prefix+x",
            "--file=x",
            "--file-pre=x",
            "--fi+x",
            "--log-level=8+--file-prefi+x",
        ] {
            let e = cfg(&format!("dpdk://net_af_packet0?iface=veth0&port=1&eal={eal}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("without --file-prefix") && e.contains("runtime directory"), "{e}");
        }
        // Not the option: too short to be taken for it, or another name.
        for eal in ["--f=x", "--file-prefixes=x", "--log-level=8"] {
            let c = cfg(&format!("dpdk://net_af_packet0?iface=veth0&port=1&eal={eal}"));
            assert!(c.is_ok(), "{eal}: {c:?}");
        }
        let e = cfg("dpdk://net_af_packet0?iface=veth0&port=1&burst=3").unwrap_err().to_string();
        assert!(e.contains("accepted parameters"), "{e}");
    }

    #[test]
    fn pool_names_fit_and_differ() {
        let long = "net_af_packet123456789012345678"; // 31 bytes, the longest name
        let (a, b) = (pool_name(long), pool_name(long));
        assert_ne!(a, b);
        for p in [&a, &b] {
            assert!(p.len() <= sys::MEMPOOL_NAME_MAX && p.starts_with("hft"), "{p}");
            assert!(p.contains("_net_af_packet"), "{p}");
        }
        let short = pool_name("0000:01:00.0");
        assert!(short.ends_with("_000001000"), "{short}");
    }

    #[test]
    fn packages_are_named_like_debian_s() {
        assert_eq!(driver_package("net_af_xdp"), "librte-net-af-xdp23");
        assert_eq!(driver_package("net_af_packet"), "librte-net-af-packet23");
        assert!(is_pci("0000:01:00.0") && !is_pci("net_af_packet0") && !is_pci("0000:01:00"));
    }

    /// The object handed to the driver carries this process as its owner
    /// in one 32-byte record and nowhere else; its program's instructions —
    /// its tag, which the next start compares — are those of the committed
    /// object. A dead owner, a reused PID (another start time) and another
    /// PID namespace are told apart from a live one.
    #[test]
    fn the_xdp_program_records_its_owner_and_keeps_its_tag() {
        use crate::xdp::steer::{ProgramOwner, program_tag};
        let me = ProgramOwner::this_process().unwrap();
        assert_eq!(me.pid, std::process::id());
        let stamped = me.stamp(DPDK_UDP_PROG).unwrap();
        assert_eq!(stamped.len(), DPDK_UDP_PROG.len());
        let changed: Vec<usize> =
            (0..stamped.len()).filter(|&i| stamped[i] != DPDK_UDP_PROG[i]).collect();
        let magic: Vec<usize> = (0..stamped.len() - 8)
            .filter(|&i| &stamped[i..i + 8] == b"hftowner")
            .collect();
        assert_eq!(magic.len(), 1, "{magic:?}");
        let at = magic[0];
        assert!(
            changed.iter().all(|&i| (at + 8..at + ProgramOwner::SIZE).contains(&i)),
            "bytes outside the record changed: {changed:?} (record at {at})"
        );
        assert_eq!(
            ProgramOwner::from_bytes(&stamped[at..at + ProgramOwner::SIZE]),
            Some(me)
        );
        let again = me.stamp(&stamped).unwrap_err();
        assert!(again.contains("no blank owner record"), "{again}");

        assert_eq!(me.alive(), Ok(true));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = ProgramOwner { pid, ..me };
        assert_eq!(gone.alive(), Ok(false), "reaped child {pid}");
        let reused = ProgramOwner {
            start_time: me.start_time + 1,
            ..me
        };
        assert_eq!(reused.alive(), Ok(false), "same PID, another start time");
        let elsewhere = ProgramOwner {
            pid_ns: me.pid_ns + 1,
            ..me
        };
        let e = elsewhere.alive().unwrap_err();
        assert!(e.contains("another PID namespace"), "{e}");
        let blank = ProgramOwner { pid: 0, ..me };
        let e = blank.alive().unwrap_err();
        assert!(e.contains("owner record is blank"), "{e}");

        if hftnet_lab::skip_without_root("the_xdp_program_records_its_owner_and_keeps_its_tag") {
            return;
        }
        let tag = program_tag(DPDK_UDP_PROG, DPDK_UDP_PROG_NAME);
        assert!(tag.is_some(), "the committed object did not load");
        assert_eq!(program_tag(&stamped, DPDK_UDP_PROG_NAME), tag);
    }
}
