//! Errors of opening a transport. The hot path has none of its own: it returns
//! `Ok(0)` for "nothing yet" and the raw [`SyscallError`] for real failures.

use std::net::SocketAddr;

use hftnet_sys::SyscallError;

use crate::uri::UriError;

/// Why a transport could not be opened. Each message says what to do and
/// includes the kernel's answer, so the failed call is a `cause` field rather
/// than an error source (printing the chain would repeat it).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URI is malformed, of an unknown scheme, or has a bad parameter.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The local address is taken.
    #[error(
        "{addr} is already in use: another socket is bound to it; choose another port, stop the \
         program holding it, or set reuseport=1 on every socket that shares it"
    )]
    AddrInUse {
        /// The address we tried to bind.
        addr: SocketAddr,
    },
    /// A named interface does not exist in this network namespace.
    #[error(
        "interface {name:?} does not exist in this network namespace (list them with `ip link`; \
         inside an hftnet lab the interface is veth0)"
    )]
    NoSuchInterface {
        /// The interface asked for.
        name: String,
    },
    /// An option needs a privilege the process lacks.
    #[error("{what} needs {privilege}: {cause}")]
    Privilege {
        /// The option or action.
        what: &'static str,
        /// The capability or limit that is missing, and how to get it.
        privilege: &'static str,
        /// The kernel's refusal.
        cause: SyscallError,
    },
    /// No TCP connection could be made.
    #[error(
        "TCP connect to {addr} failed: {cause} (is `hftnet pong tcp://{addr}` or another echo server listening?)"
    )]
    Connect {
        /// The peer.
        addr: SocketAddr,
        /// The kernel's answer.
        cause: SyscallError,
    },
    /// A layer-2 backend could not find its way: an interface without an
    /// IPv4 address, a peer that does not answer ARP, a route through
    /// another interface.
    #[error(transparent)]
    L2(#[from] crate::l2::L2Error),
    /// The XDP steering program could not be loaded, attached or updated;
    /// the message includes the kernel's (or the verifier's) answer.
    #[error(transparent)]
    Steering(#[from] crate::xdp::steer::SteerError),
    /// The capture file of `pcap=` could not be created.
    #[error(
        "cannot create the capture file {}: {cause} (check the directory exists and is writable)",
        path.display()
    )]
    Capture {
        /// The file asked for.
        path: std::path::PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The DPDK environment or device refused (`dpdk://`, feature `dpdk`):
    /// the message names what was missing and what to do (no hugepages and
    /// no room, a driver plugin not installed, a busy device, a second EAL
    /// initialisation).
    #[error("{problem}")]
    Dpdk {
        /// What went wrong and what to do.
        problem: String,
    },
    /// The process may not hold the file descriptors a server of this many
    /// connections needs (`RLIMIT_NOFILE`), and its hard limit forbids
    /// raising the soft one that far.
    #[error(
        "{connections} concurrent connections need {need} file descriptors (with the {open} open \
         now and the listener), but RLIMIT_NOFILE allows {soft} (hard limit {hard}): lower the \
         connection limit (`--max-clients`) or raise the limit (`ulimit -n {need}`, or the \
         service's LimitNOFILE)",
        hard = hard.map_or_else(|| "unlimited".to_string(), |h| h.to_string())
    )]
    Descriptors {
        /// Connections asked for.
        connections: usize,
        /// Descriptors open now.
        open: u64,
        /// Descriptors needed.
        need: u64,
        /// The soft limit.
        soft: u64,
        /// The hard limit (`None`: unlimited).
        hard: Option<u64>,
    },
    /// Any other step of setting up the socket failed.
    #[error("{step}: {cause}")]
    Setup {
        /// What was being done.
        step: String,
        /// The failed call.
        cause: SyscallError,
    },
}

impl OpenError {
    /// Wraps a failed call with the step it belonged to.
    pub(crate) fn setup(step: impl Into<String>) -> impl FnOnce(SyscallError) -> Self {
        let step = step.into();
        move |cause| Self::Setup { step, cause }
    }
}

/// Converts an `std::io::Error` from socket2 into our syscall error.
pub(crate) fn from_io(call: &'static str, e: std::io::Error) -> SyscallError {
    SyscallError { call, io_error: e }
}
