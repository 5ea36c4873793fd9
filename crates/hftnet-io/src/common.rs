//! Socket options shared by the UDP, multicast and TCP backends: read from URI
//! parameters once, applied to a fresh socket, and read back for the
//! capability report.
//!
//! Layer: set-up only, never on the hot path. Invariant: every option that was
//! asked for is either applied or refused with an [`OpenError`] naming it;
//! where the kernel quietly grants less (clamped buffers), a note says so.

use std::net::SocketAddr;
use std::os::fd::AsFd;

use hftnet_sys::sock::{self, IntOpt};
use socket2::{SockAddr, Socket};

use crate::Role;
use crate::error::{OpenError, from_io};
use crate::transport::{Capabilities, RxStrategy};
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

    /// Fills the capability fields these options control, read back from the kernel.
    pub(crate) fn read_back(&self, s: &Socket, caps: &mut Capabilities) {
        let fd = s.as_fd();
        let get = |o: IntOpt| sock::get_int(fd, o).ok();
        caps.rx_strategy = self.strategy.name();
        caps.rcvbuf = get(sock::SO_RCVBUF).map(|v| v as u32);
        caps.sndbuf = get(sock::SO_SNDBUF).map(|v| v as u32);
        caps.priority = get(sock::SO_PRIORITY);
        caps.tos = get(sock::IP_TOS);
        caps.busy_poll_usecs = get(sock::SO_BUSY_POLL).map(|v| v as u32);
        if matches!(self.strategy, RxStrategy::BusyPoll { .. }) {
            caps.busy_poll_budget = get(sock::SO_BUSY_POLL_BUDGET).map(|v| v as u32);
            caps.prefer_busy_poll = get(sock::SO_PREFER_BUSY_POLL).map(|v| v != 0);
        }
        caps.local = s.local_addr().ok().and_then(|a| a.as_socket());
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
