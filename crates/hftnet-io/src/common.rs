//! Socket options shared by the UDP, multicast and TCP backends: read from URI
//! parameters once, applied to a fresh socket, and read back for the
//! capability report.
//!
//! Layer: set-up only, never on the hot path. Invariant: every option that was
//! asked for is either applied or refused with an [`OpenError`] naming it;
//! where the kernel quietly grants less (clamped buffers), a note says so.

use std::net::SocketAddr;
use std::os::fd::AsFd;

use hftnet_sys::SyscallError;
use hftnet_sys::ethtool::Ethtool;
use hftnet_sys::sock::{self, HwTstampConfig, IntOpt, tsflags};
use serde::Serialize;
use socket2::{SockAddr, Socket};

use crate::Role;
use crate::capabilities::LegacyFields;
use crate::error::{OpenError, from_io};
use crate::transport::RxStrategy;
use crate::uri::{Params, UriError};

/// Parameters every kernel-socket scheme accepts.
pub const COMMON_PARAMS: &[&str] = &[
    "rx",
    "spins",
    "busy_poll",
    "busy_budget",
    "prefer_busy_poll",
    "rcvbuf",
    "sndbuf",
    "priority",
    "tos",
    "device",
    "bind",
    "cpu",
    "reuseaddr",
    "reuseport",
];

/// Options common to every kernel socket, as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// How receives wait.
    pub strategy: RxStrategy,
    /// Requested `SO_RCVBUF` bytes (`SO_RCVBUFFORCE` tried first).
    pub rcvbuf: Option<u32>,
    /// Requested `SO_SNDBUF` bytes (`SO_SNDBUFFORCE` tried first).
    pub sndbuf: Option<u32>,
    /// `SO_PRIORITY`.
    pub priority: Option<i32>,
    /// `IP_TOS`.
    pub tos: Option<u8>,
    /// `SO_BINDTODEVICE`.
    pub device: Option<String>,
    /// Local address for a client (`bind=IP:PORT`).
    pub bind: Option<SocketAddr>,
    /// CPU the thread driving this transport should be pinned to (`cpu=N`);
    /// the transport records it, the program that runs the loop applies it.
    pub cpu: Option<usize>,
    /// `SO_REUSEADDR`.
    pub reuseaddr: Option<bool>,
    /// `SO_REUSEPORT`.
    pub reuseport: Option<bool>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            strategy: RxStrategy::Block,
            rcvbuf: None,
            sndbuf: None,
            priority: None,
            tos: None,
            device: None,
            bind: None,
            cpu: None,
            reuseaddr: None,
            reuseport: None,
        }
    }
}

impl SocketOptions {
    /// Reads the parameters common to every kernel-socket scheme (`rx`, `rcvbuf`, `cpu`, ...).
    ///
    /// # Errors
    /// [`UriError::BadValue`] naming the parameter.
    pub fn from_params(p: &mut Params<'_>) -> Result<Self, UriError> {
        Ok(Self {
            strategy: RxStrategy::from_params(p)?,
            rcvbuf: p.size("rcvbuf")?,
            sndbuf: p.size("sndbuf")?,
            priority: p
                .int("priority", 0..=i64::from(i32::MAX))?
                .map(|v| v as i32),
            tos: p.int("tos", 0..=255)?.map(|v| v as u8),
            device: p.get_with("device", "an interface name of 1 to 15 characters", |v| {
                (!v.is_empty() && v.len() < 16 && !v.contains('/')).then(|| v.to_string())
            })?,
            bind: p.get_with("bind", "a local IP:PORT such as 198.18.0.1:0", |v| {
                v.parse().ok()
            })?,
            cpu: p.int("cpu", 0..=4095)?.map(|v| v as usize),
            reuseaddr: p.bool("reuseaddr")?,
            reuseport: p.bool("reuseport")?,
        })
    }

    /// Applies everything that must precede `bind`/`connect`; returns notes on
    /// what the kernel granted differently.
    pub(crate) fn apply(&self, s: &Socket) -> Result<Vec<String>, OpenError> {
        let fd = s.as_fd();
        let mut notes = Vec::new();
        if let Some(v) = self.reuseaddr {
            sock::set_int(fd, sock::SO_REUSEADDR, i32::from(v))
                .map_err(OpenError::setup("setting SO_REUSEADDR"))?;
        }
        if let Some(v) = self.reuseport {
            sock::set_int(fd, sock::SO_REUSEPORT, i32::from(v))
                .map_err(OpenError::setup("setting SO_REUSEPORT"))?;
        }
        if let Some(dev) = &self.device {
            sock::bind_to_device(fd, dev).map_err(|e| match e.errno() {
                Some(libc::ENODEV) => OpenError::NoSuchInterface { name: dev.clone() },
                Some(libc::EPERM) => OpenError::Privilege {
                    what: "SO_BINDTODEVICE",
                    privilege: "CAP_NET_RAW on this kernel (run as root)",
                    cause: e,
                },
                _ => OpenError::Setup {
                    step: format!("binding to device {dev}"),
                    cause: e,
                },
            })?;
        }
        if let Some(b) = self.rcvbuf {
            set_buffer(
                s,
                b,
                sock::SO_RCVBUFFORCE,
                sock::SO_RCVBUF,
                "rcvbuf",
                "net.core.rmem_max",
                &mut notes,
            )?;
        }
        if let Some(b) = self.sndbuf {
            set_buffer(
                s,
                b,
                sock::SO_SNDBUFFORCE,
                sock::SO_SNDBUF,
                "sndbuf",
                "net.core.wmem_max",
                &mut notes,
            )?;
        }
        // IP_TOS first: setting it overwrites the socket priority with one derived
        // from the TOS bits, so an explicit priority must come after it.
        if let Some(t) = self.tos {
            sock::set_int(fd, sock::IP_TOS, i32::from(t))
                .map_err(OpenError::setup("setting IP_TOS"))?;
        }
        if let Some(p) = self.priority {
            sock::set_int(fd, sock::SO_PRIORITY, p).map_err(|e| {
                if e.is_permission() {
                    OpenError::Privilege {
                        what: "SO_PRIORITY above 6",
                        privilege: "CAP_NET_ADMIN (run as root or use priority=0..6)",
                        cause: e,
                    }
                } else {
                    OpenError::setup("setting SO_PRIORITY")(e)
                }
            })?;
        }
        if let RxStrategy::BusyPoll {
            usecs,
            budget,
            prefer,
        } = self.strategy
        {
            apply_busy_poll(s, usecs, budget, prefer, &mut notes)?;
        }
        Ok(notes)
    }

    /// Reads back from the kernel what these options control; returns the
    /// section and the local address.
    pub(crate) fn read_back(&self, s: &Socket) -> (SocketCaps, Option<SocketAddr>) {
        let fd = s.as_fd();
        let get = |o: IntOpt| sock::get_int(fd, o).ok();
        let busy = matches!(self.strategy, RxStrategy::BusyPoll { .. });
        let caps = SocketCaps {
            rcvbuf: get(sock::SO_RCVBUF).map(|v| v as u32),
            sndbuf: get(sock::SO_SNDBUF).map(|v| v as u32),
            priority: get(sock::SO_PRIORITY),
            tos: get(sock::IP_TOS),
            busy_poll_usecs: get(sock::SO_BUSY_POLL).map(|v| v as u32),
            busy_poll_budget: if busy {
                get(sock::SO_BUSY_POLL_BUDGET).map(|v| v as u32)
            } else {
                None
            },
            prefer_busy_poll: if busy {
                get(sock::SO_PREFER_BUSY_POLL).map(|v| v != 0)
            } else {
                None
            },
            ..SocketCaps::default()
        };
        (caps, s.local_addr().ok().and_then(|a| a.as_socket()))
    }
}

/// What the kernel granted a kernel socket, read back: the part of the
/// capability section every kernel-socket backend shares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SocketCaps {
    /// `SO_RCVBUF` as read back (the kernel doubles what is asked and clamps it).
    pub rcvbuf: Option<u32>,
    /// `SO_SNDBUF` as read back.
    pub sndbuf: Option<u32>,
    /// `SO_PRIORITY` as read back.
    pub priority: Option<i32>,
    /// `IP_TOS` as read back.
    pub tos: Option<i32>,
    /// `SO_BUSY_POLL` microseconds as read back.
    pub busy_poll_usecs: Option<u32>,
    /// `SO_BUSY_POLL_BUDGET` as read back.
    pub busy_poll_budget: Option<u32>,
    /// `SO_PREFER_BUSY_POLL` as read back.
    pub prefer_busy_poll: Option<bool>,
    /// `SO_INCOMING_NAPI_ID` of the last received packet (0: no NAPI, so
    /// kernel busy polling cannot take effect; `None`: not known yet).
    pub napi_id: Option<u32>,
    /// Software receive timestamps on.
    pub rx_timestamps: bool,
    /// Software transmit timestamps (SCHED, SND) on.
    pub tx_timestamps: bool,
    /// Hardware timestamps granted by the device.
    pub hw_timestamps: bool,
}

impl SocketCaps {
    /// As the flat fields of the JSON report.
    #[must_use]
    pub fn legacy(&self) -> LegacyFields {
        LegacyFields {
            rcvbuf: self.rcvbuf,
            sndbuf: self.sndbuf,
            busy_poll_usecs: self.busy_poll_usecs,
            busy_poll_budget: self.busy_poll_budget,
            prefer_busy_poll: self.prefer_busy_poll,
            napi_id: self.napi_id,
            rx_timestamps: self.rx_timestamps,
            tx_timestamps: self.tx_timestamps,
            hw_timestamps: self.hw_timestamps,
            priority: self.priority,
            tos: self.tos,
            tcp_nodelay: None,
            tcp_quickack: None,
        }
    }
}

fn set_buffer(
    s: &Socket,
    bytes: u32,
    force: IntOpt,
    plain: IntOpt,
    name: &str,
    sysctl: &str,
    notes: &mut Vec<String>,
) -> Result<(), OpenError> {
    let fd = s.as_fd();
    let v = bytes.min(i32::MAX as u32) as i32;
    match sock::set_int(fd, force, v) {
        Ok(()) => {}
        Err(e) if e.is_permission() => {
            sock::set_int(fd, plain, v).map_err(OpenError::setup(format!("setting {name}")))?;
            notes.push(format!(
                "{name}: {} refused without CAP_NET_ADMIN; used {} (capped by {sysctl})",
                force.set_call, plain.set_call
            ));
        }
        Err(e) => return Err(OpenError::setup(format!("setting {name}"))(e)),
    }
    let granted =
        sock::get_int(fd, plain).map_err(OpenError::setup(format!("reading back {name}")))?;
    // The kernel doubles the request for its bookkeeping; less than that means clamping.
    if (granted as u64) < 2 * u64::from(bytes) {
        notes.push(format!(
            "{name}: asked {bytes} bytes, kernel granted {granted} (clamped by {sysctl})"
        ));
    }
    Ok(())
}

fn apply_busy_poll(
    s: &Socket,
    usecs: u32,
    budget: Option<u32>,
    prefer: bool,
    notes: &mut Vec<String>,
) -> Result<(), OpenError> {
    let fd = s.as_fd();
    sock::set_int(fd, sock::SO_BUSY_POLL, usecs.min(i32::MAX as u32) as i32).map_err(|e| {
        if e.is_permission() {
            OpenError::Privilege {
                what: "SO_BUSY_POLL above net.core.busy_read",
                privilege: "CAP_NET_ADMIN (run as root, or raise net.core.busy_read)",
                cause: e,
            }
        } else {
            OpenError::setup("setting SO_BUSY_POLL")(e)
        }
    })?;
    let optional = |opt: IntOpt, v: i32, notes: &mut Vec<String>| -> Result<(), OpenError> {
        match sock::set_int(fd, opt, v) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(libc::ENOPROTOOPT) => {
                notes.push(format!(
                    "{} is not supported by this kernel (needs 5.11+)",
                    opt.set_call
                ));
                Ok(())
            }
            Err(e) if e.is_permission() => Err(OpenError::Privilege {
                what: opt.set_call,
                privilege: "CAP_NET_ADMIN (run as root)",
                cause: e,
            }),
            Err(e) => Err(OpenError::setup(opt.set_call)(e)),
        }
    };
    optional(sock::SO_PREFER_BUSY_POLL, i32::from(prefer), notes)?;
    if let Some(b) = budget {
        optional(
            sock::SO_BUSY_POLL_BUDGET,
            b.min(i32::MAX as u32) as i32,
            notes,
        )?;
    }
    Ok(())
}

/// Which kernel timestamps a socket asks for: the `timestamps=` parameter.
///
/// Values: `0`/`off` (none, the default); `1`/`on` (software receive stamps
/// through `SO_TIMESTAMPNS`, as before); or a comma list of
/// - `rx`: software receive stamps (`SO_TIMESTAMPING`, CLOCK_REALTIME) in
///   [`crate::RxMeta::rx_ts_ns`];
/// - `tx`: software transmit stamps, `SCHED` (entering the qdisc) and `SND`
///   (handed to the device), read from the error queue with
///   [`crate::Transport::tx_timestamps`], each tagged with the socket's
///   `OPT_ID` counter (`OPT_TSONLY`: the packet is not looped back);
/// - `hw`: raw hardware stamps as well (receive, and transmit with `tx`),
///   after checking with `ETHTOOL_GET_TS_INFO` that the device offers them and
///   turning them on with `SIOCSHWTSTAMP` (CAP_NET_ADMIN). The device is the
///   one named by `device=`, which `hw` requires. Software stamps stay on;
///   the hardware receive stamp is in [`crate::RxMeta::rx_hw_ts_ns`].
///
/// With `tx`, drain the stamps regularly: while stamps wait in the error
/// queue, `poll` reports the socket as having an error, so waiting receives
/// wake at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamps {
    /// Software receive stamps.
    pub rx: bool,
    /// Software transmit stamps from the error queue.
    pub tx: bool,
    /// Hardware stamps too (needs `device=`).
    pub hw: bool,
    /// Plain `SO_TIMESTAMPNS` (`timestamps=1`) rather than `SO_TIMESTAMPING`.
    pub legacy: bool,
}

impl Timestamps {
    /// What `timestamps=` accepts, for error messages.
    pub const EXPECTED: &'static str =
        "0, 1, or a comma list of rx, tx and hw (e.g. rx,tx; hw needs device=)";

    /// Software receive stamps through `SO_TIMESTAMPNS` (`timestamps=1`).
    #[must_use]
    pub fn legacy_rx() -> Self {
        Self {
            rx: true,
            legacy: true,
            ..Self::default()
        }
    }

    /// Any stamp asked for.
    #[must_use]
    pub fn any(&self) -> bool {
        self.rx || self.tx || self.hw
    }

    /// Receives must collect control messages (a receive stamp is on).
    #[must_use]
    pub fn control(&self) -> bool {
        self.rx || self.hw
    }

    /// Parses the value of `timestamps=`.
    #[must_use]
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "0" | "off" | "false" | "no" => return Some(Self::default()),
            "1" | "on" | "true" | "yes" => return Some(Self::legacy_rx()),
            _ => {}
        }
        let mut t = Self::default();
        for word in v.split(',') {
            let flag = match word {
                "rx" => &mut t.rx,
                "tx" => &mut t.tx,
                "hw" => &mut t.hw,
                _ => return None,
            };
            if *flag {
                return None;
            }
            *flag = true;
        }
        // Hardware stamps without a direction: receive.
        if t.hw && !t.tx {
            t.rx = true;
        }
        Some(t)
    }

    /// Reads `timestamps=`; `hw` without `device=` is refused, naming both.
    ///
    /// # Errors
    /// [`UriError::BadValue`] naming the parameter.
    pub fn from_params(p: &mut Params<'_>, device: Option<&str>) -> Result<Self, UriError> {
        let t = p
            .get_with("timestamps", Self::EXPECTED, Self::parse)?
            .unwrap_or_default();
        if t.hw && device.is_none() {
            return Err(UriError::BadValue {
                param: "timestamps".into(),
                value: "hw".into(),
                expected: "device=IFACE beside timestamps=hw: the interface whose hardware clock \
                           stamps the packets (it cannot be told from the address)"
                    .into(),
            });
        }
        Ok(t)
    }

    /// The `SOF_TIMESTAMPING_*` flags for `SO_TIMESTAMPING`.
    #[must_use]
    pub fn flags(&self) -> u32 {
        let mut f = tsflags::SOFTWARE;
        if self.rx {
            f |= tsflags::RX_SOFTWARE;
        }
        if self.tx {
            f |= tsflags::TX_SOFTWARE
                | tsflags::TX_SCHED
                | tsflags::OPT_ID
                | tsflags::OPT_TSONLY
                | tsflags::OPT_CMSG;
        }
        if self.hw {
            f |= tsflags::RX_HARDWARE | tsflags::RAW_HARDWARE;
            if self.tx {
                f |= tsflags::TX_HARDWARE;
            }
        }
        f
    }

    /// Short description for the capability report.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.legacy {
            return "rx software (SO_TIMESTAMPNS)".into();
        }
        let mut parts = Vec::new();
        if self.rx {
            parts.push(if self.hw {
                "rx software+hardware"
            } else {
                "rx software"
            });
        }
        if self.tx {
            parts.push(if self.hw {
                "tx SCHED+SND software+hardware"
            } else {
                "tx SCHED+SND software"
            });
        }
        format!("{} (SO_TIMESTAMPING)", parts.join(", "))
    }

    /// Turns the stamps on for socket `s`: hardware first (probe, then
    /// `SIOCSHWTSTAMP` on `device`), then `SO_TIMESTAMPING` (or
    /// `SO_TIMESTAMPNS` for `timestamps=1`). Returns notes on what was granted.
    pub(crate) fn apply(&self, s: &Socket, device: Option<&str>) -> Result<Vec<String>, OpenError> {
        let fd = s.as_fd();
        let mut notes = Vec::new();
        if !self.any() {
            return Ok(notes);
        }
        if self.legacy {
            sock::set_int(fd, sock::SO_TIMESTAMPNS, 1)
                .map_err(OpenError::setup("enabling SO_TIMESTAMPNS"))?;
            return Ok(notes);
        }
        if self.hw {
            let Some(dev) = device else {
                return Err(OpenError::Uri(UriError::BadValue {
                    param: "timestamps".into(),
                    value: "hw".into(),
                    expected: "device=IFACE beside timestamps=hw".into(),
                }));
            };
            notes.push(enable_hardware(s, dev, self.tx)?);
        }
        sock::set_timestamping(fd, self.flags())
            .map_err(OpenError::setup("enabling SO_TIMESTAMPING"))?;
        Ok(notes)
    }
}

/// Probes `dev` with `ETHTOOL_GET_TS_INFO`, then asks it for hardware stamps
/// (`SIOCSHWTSTAMP`: every received packet, and transmit when `tx`).
fn enable_hardware(s: &Socket, dev: &str, tx: bool) -> Result<String, OpenError> {
    let probe_call = "ioctl(SIOCETHTOOL, ETHTOOL_GET_TS_INFO)";
    let info = Ethtool::open()
        .and_then(|e| e.get_ts_info(dev))
        .map_err(|e| match e.errno() {
            Some(libc::ENODEV) => OpenError::NoSuchInterface { name: dev.into() },
            _ => OpenError::setup(format!("asking {dev} which timestamps it offers"))(e),
        })?;
    if !info.hardware() {
        let offers = info.so_timestamping_names();
        let offers = if offers.is_empty() {
            "nothing".to_string()
        } else {
            offers.join(", ")
        };
        return Err(OpenError::Setup {
            step: format!(
                "timestamps=hw: {dev} has no hardware timestamps; it supports {offers} \
                 (use timestamps=rx,tx for software stamps)"
            ),
            cause: SyscallError::from_errno(probe_call, libc::EOPNOTSUPP),
        });
    }
    // HWTSTAMP_FILTER_ALL is bit 1 of the filter mask.
    if info.rx_filters & (1 << sock::HWTSTAMP_FILTER_ALL) == 0 {
        return Err(OpenError::Setup {
            step: format!(
                "timestamps=hw: {dev} cannot stamp every received packet (filter all); its receive \
                 filters are {}",
                info.rx_filter_names().join(", ")
            ),
            cause: SyscallError::from_errno(probe_call, libc::EOPNOTSUPP),
        });
    }
    let want = HwTstampConfig {
        tx_type: if tx {
            sock::HWTSTAMP_TX_ON
        } else {
            sock::HWTSTAMP_TX_OFF
        },
        rx_filter: sock::HWTSTAMP_FILTER_ALL,
    };
    let got = sock::set_hwtstamp(s.as_fd(), dev, want).map_err(|e| {
        if e.is_permission() {
            OpenError::Privilege {
                what: "SIOCSHWTSTAMP (timestamps=hw)",
                privilege: "CAP_NET_ADMIN (run as root)",
                cause: e,
            }
        } else {
            OpenError::setup(format!("turning on hardware timestamps of {dev}"))(e)
        }
    })?;
    Ok(format!(
        "timestamps=hw: {dev} stamps in hardware (tx_type {}, rx_filter {}; PHC {})",
        got.tx_type,
        got.rx_filter,
        info.phc_index
            .map_or_else(|| "none".to_string(), |i| format!("/dev/ptp{i}"))
    ))
}

/// Refuses what makes no sense for the role: sending to port 0, or `bind=`
/// on a server (which binds the URI's own address).
pub(crate) fn check_role_addr(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    role: Role,
) -> Result<(), OpenError> {
    let bad = |reason: String| {
        OpenError::Uri(UriError::BadValue {
            param: "address".into(),
            value: addr.to_string(),
            expected: reason,
        })
    };
    match role {
        Role::Client if addr.port() == 0 => {
            Err(bad("a port other than 0 for a client to send to".into()))
        }
        Role::Server if bind.is_some() => Err(OpenError::Uri(UriError::BadValue {
            param: "bind".into(),
            value: bind.map(|b| b.to_string()).unwrap_or_default(),
            expected: "no bind= on a server: it binds the address of the URI itself".into(),
        })),
        _ => Ok(()),
    }
}

/// `bind`, turning `EADDRINUSE` into [`OpenError::AddrInUse`].
pub(crate) fn bind(s: &Socket, addr: SocketAddr) -> Result<(), OpenError> {
    s.bind(&SockAddr::from(addr)).map_err(|e| {
        if e.raw_os_error() == Some(libc::EADDRINUSE) {
            OpenError::AddrInUse { addr }
        } else if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
            OpenError::Setup {
                step: format!(
                    "binding {addr} (no interface in this network namespace has that address)"
                ),
                cause: from_io("bind", e),
            }
        } else {
            OpenError::Setup {
                step: format!("binding {addr}"),
                cause: from_io("bind", e),
            }
        }
    })
}

/// The unspecified address of the same family, for client sockets.
pub(crate) fn any_addr_like(peer: &SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        SocketAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    }
}
