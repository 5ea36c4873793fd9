//! hftnet transports: one burst-oriented API over many backends, each named by
//! a URI that is the same in the CLI, configuration files and the library.
//!
//! ```text
//! udp://198.18.0.2:9000?rx=spin&cpu=1     kernel UDP socket
//! tcp://198.18.0.2:9001                   kernel TCP (NODELAY, QUICKACK, framed messages)
//! mcast://239.1.1.1:30001?iface=veth0     multicast receive / send
//! uring://198.18.0.2:9000?sqpoll=1        UDP through io_uring
//! packet://veth0?port=9000                UDP over AF_PACKET rings, frames built in user space
//! xdp://veth0/0?port=9000                 UDP over AF_XDP, only that flow steered by an XDP program
//! ```
//!
//! Open an [`Endpoint`] in a [`Role`], then drive the [`Transport`] it gives:
//! receive into a pre-allocated [`RxBurst`], send [`TxMsg`]s, and read the
//! [`Capabilities`] the kernel granted. The hot path (`recv_burst`,
//! `send_burst`) never allocates, locks or logs; it is statically dispatched
//! when the caller matches on [`AnyTransport`] once and runs a generic loop
//! (see [`dispatch!`]).
//!
//! Layer: above `hftnet-sys` (all raw calls go through it) and below the
//! harness and the trading engine. The crate is `#![deny(unsafe_code)]`; only
//! the ring code may opt out (`#[allow(unsafe_code)]` on [`uring`], whose
//! module doc states the invariants it keeps, and on [`xdp::socket`], the
//! AF_XDP UMEM and rings; the `AF_PACKET` rings of [`packet`] live in
//! `hftnet_sys::packet`).

#![deny(unsafe_code)]

mod common;
pub mod error;
pub mod frames;
pub mod l2;
pub mod packet;
pub mod pcap;
pub mod tcp;
pub mod transport;
pub mod udp;
pub mod uri;
#[allow(unsafe_code)]
pub mod uring;
pub mod xdp;

use std::time::Duration;

pub use common::SocketOptions;
pub use error::OpenError;
pub use hftnet_sys::SyscallError;
pub use l2::{L2Error, L2Iface, NextHop};
pub use packet::{PacketConfig, PacketStats, PacketTransport};
pub use tcp::{TcpConfig, TcpTransport};
pub use transport::{Capabilities, RxBurst, RxMeta, RxStrategy, Transport, TxMsg};
pub use udp::{McastOptions, UdpConfig, UdpTransport};
pub use uri::{Uri, UriError};
pub use uring::{UringConfig, UringMode, UringStatus, UringTransport};
pub use xdp::{XdpConfig, XdpStats, XdpTransport};

/// Which end of a conversation an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends to the URI's address and receives the answers (`hftnet ping`).
    Client,
    /// Binds or joins the URI's address and answers senders (`hftnet pong`).
    Server,
}

/// A parsed transport URI with its backend configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `udp://` or `mcast://`.
    Udp(UdpConfig),
    /// `tcp://`.
    Tcp(TcpConfig),
    /// `uring://`.
    Uring(UringConfig),
    /// `packet://`.
    Packet(PacketConfig),
    /// `xdp://`.
    Xdp(XdpConfig),
}

impl Endpoint {
    /// Parses and checks a URI without opening anything.
    ///
    /// # Errors
    /// [`UriError`] naming the scheme, parameter or value at fault and what is accepted.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let uri = Uri::parse(text)?;
        if !uri.path.is_empty() && uri.scheme != "xdp" {
            return Err(UriError::Malformed {
                uri: text.to_string(),
                reason: format!(
                    "{}:// takes no path after the address (found /{})",
                    uri.scheme, uri.path
                ),
            });
        }
        match uri.scheme.as_str() {
            "udp" | "mcast" => Ok(Self::Udp(UdpConfig::from_uri(&uri)?)),
            "tcp" => Ok(Self::Tcp(TcpConfig::from_uri(&uri)?)),
            "uring" => Ok(Self::Uring(UringConfig::from_uri(&uri)?)),
            "packet" => Ok(Self::Packet(PacketConfig::from_uri(&uri)?)),
            "xdp" => Ok(Self::Xdp(XdpConfig::from_uri(&uri)?)),
            other => Err(UriError::UnknownScheme {
                uri: text.to_string(),
                scheme: other.to_string(),
                accepted: uri::SCHEMES.join(", "),
            }),
        }
    }

    /// The scheme name (`udp`, `mcast`, `tcp`, `uring`, `packet`, `xdp`).
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Udp(c) if c.multicast.is_some() => "mcast",
            Self::Udp(_) => "udp",
            Self::Tcp(_) => "tcp",
            Self::Uring(_) => "uring",
            Self::Packet(_) => "packet",
            Self::Xdp(_) => "xdp",
        }
    }

    /// Options common to kernel sockets.
    #[must_use]
    pub fn socket_options(&self) -> &SocketOptions {
        match self {
            Self::Udp(c) => &c.socket,
            Self::Tcp(c) => &c.socket,
            Self::Uring(c) => &c.socket,
            Self::Packet(c) => &c.socket,
            Self::Xdp(c) => &c.socket,
        }
    }

    /// Largest message the transport carries.
    #[must_use]
    pub fn max_message(&self) -> usize {
        match self {
            Self::Udp(_) => udp::MAX_UDP_PAYLOAD,
            Self::Tcp(_) => tcp::MAX_TCP_MESSAGE,
            Self::Uring(c) => c.max_message(),
            Self::Packet(c) => c.max_message(),
            Self::Xdp(c) => c.max_message(),
        }
    }

    /// Opens it.
    ///
    /// # Errors
    /// [`OpenError`] naming the step, option or privilege that failed.
    pub fn open(&self, role: Role) -> Result<AnyTransport, OpenError> {
        Ok(match self {
            Self::Udp(c) => AnyTransport::Udp(UdpTransport::open(c.clone(), role)?),
            Self::Tcp(c) => AnyTransport::Tcp(TcpTransport::open(c.clone(), role)?),
            Self::Uring(c) => AnyTransport::Uring(UringTransport::open(c.clone(), role)?),
            Self::Packet(c) => AnyTransport::Packet(PacketTransport::open(c.clone(), role)?),
            Self::Xdp(c) => AnyTransport::Xdp(XdpTransport::open(c.clone(), role)?),
        })
    }
}

/// Every backend in one enum. Match on it once, outside the loop, and run a
/// loop generic over `T: Transport` inside each arm ([`dispatch!`] does that),
/// so the hot path is statically dispatched.
///
/// The variants differ in size (the AF_XDP one carries its counters and
/// UMEM bookkeeping inline); the enum is built once per endpoint and not
/// moved on the hot path, so boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyTransport {
    /// UDP or multicast.
    Udp(UdpTransport),
    /// TCP.
    Tcp(TcpTransport),
    /// UDP through io_uring.
    Uring(UringTransport),
    /// UDP over AF_PACKET rings.
    Packet(PacketTransport),
    /// UDP over AF_XDP.
    Xdp(XdpTransport),
}

/// Runs `$body` with `$t` bound to the concrete transport inside an
/// [`AnyTransport`], so generic code is monomorphised per backend.
///
/// ```
/// # use hftnet_io::{AnyTransport, Transport, dispatch};
/// fn caps(t: &mut AnyTransport) -> &'static str {
///     dispatch!(t, inner => inner.capabilities().transport)
/// }
/// ```
#[macro_export]
macro_rules! dispatch {
    ($any:expr, $t:ident => $body:expr) => {
        match $any {
            $crate::AnyTransport::Udp($t) => $body,
            $crate::AnyTransport::Tcp($t) => $body,
            $crate::AnyTransport::Uring($t) => $body,
            $crate::AnyTransport::Packet($t) => $body,
            $crate::AnyTransport::Xdp($t) => $body,
        }
    };
}

impl Transport for AnyTransport {
    fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
        dispatch!(self, t => t.recv_burst(burst))
    }

    fn recv_burst_until(
        &mut self,
        burst: &mut RxBurst,
        deadline: std::time::Instant,
    ) -> Result<usize, SyscallError> {
        dispatch!(self, t => t.recv_burst_until(burst, deadline))
    }

    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        dispatch!(self, t => t.send_burst(msgs))
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        dispatch!(self, t => t.set_recv_timeout(timeout))
    }

    fn capabilities(&self) -> Capabilities {
        dispatch!(self, t => t.capabilities())
    }

    fn tx_timestamps(
        &mut self,
        f: &mut dyn FnMut(transport::TxStamp),
    ) -> Result<usize, SyscallError> {
        dispatch!(self, t => t.tx_timestamps(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_per_scheme() {
        assert_eq!(
            Endpoint::parse("udp://127.0.0.1:9000").unwrap().scheme(),
            "udp"
        );
        assert_eq!(
            Endpoint::parse("mcast://239.1.1.1:9000?iface=lo")
                .unwrap()
                .scheme(),
            "mcast"
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:9000?rx=spin")
                .unwrap()
                .scheme(),
            "tcp"
        );
        let e = Endpoint::parse("quic://veth0/0").unwrap_err();
        assert!(
            e.to_string()
                .contains("accepted schemes: udp, tcp, mcast, uring, packet"),
            "{e}"
        );
        let e = Endpoint::parse("udp://127.0.0.1:9000/x?rx=spin").unwrap_err();
        assert!(e.to_string().contains("takes no path"), "{e}");
        let e = Endpoint::parse("udp://127.0.0.1:9000?sqpoll=1").unwrap_err();
        assert!(e.to_string().contains("\"sqpoll\""), "{e}");
    }
}
