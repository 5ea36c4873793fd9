//! hftnet transports: one burst-oriented API over a table of backends, each
//! named by a URI that is the same in the CLI, configuration files and the
//! library.
//!
//! ```text
//! udp://198.18.0.2:9000?rx=spin&cpu=1     kernel UDP socket
//! tcp://198.18.0.2:9001                   kernel TCP (NODELAY, QUICKACK, framed messages)
//! mcast://239.1.1.1:30001?iface=veth0     multicast receive / send
//! uring://198.18.0.2:9000?sqpoll=1        UDP through io_uring
//! packet://veth0?port=9000                UDP over AF_PACKET rings, frames built in user space
//! xdp://veth0/0?port=9000                 UDP over AF_XDP, only that flow steered by an XDP program
//! dpdk://net_af_xdp0?iface=veth0&port=9000  UDP over a DPDK port (cargo feature `dpdk`)
//! shm://md?as=pub  /  shm://md?as=sub     a broadcast ring in shared memory between processes
//! mem://pair                              an in-process pair of queues
//! ...&pcap=/tmp/cap.pcap&pcap_max=64M     capture what is sent and received (any scheme)
//! ...&loss=0.01&dup=0.001&reorder=0.01&delay=50us&seed=7   inject faults (any scheme)
//! ```
//!
//! Open an [`Endpoint`] in a [`Role`], then drive the [`Transport`] it gives:
//! receive into a pre-allocated [`RxBurst`], send [`TxMsg`]s, and read the
//! [`Capabilities`] the transport was granted — or, without copies, lend
//! received payloads in place and write straight into transmit slots
//! ([`Lease`]). The hot path (`recv_burst`, `send_burst`, `recv_lease`,
//! `send_lease`) never allocates, locks or logs; it is statically dispatched
//! when the caller matches on [`AnyTransport`] once and runs a generic loop
//! (see [`dispatch!`]).
//!
//! The backends are a table (below): each is one module folder implementing
//! [`backend::Backend`] and one line of the table, which generates
//! [`EndpointConfig`], [`AnyTransport`], [`Section`], [`dispatch!`],
//! [`BACKENDS`] (the schemes accepted, the ladder's rungs, the CLI's list).
//! The layer-2 backends are rings ([`l2::ring::Ring`]) under one generic
//! transport ([`l2::L2Transport`]). Middlewares ([`middleware`]) wrap any
//! backend.
//!
//! [`BACKENDS`] lists every backend of the build with its schemes.
//!
//! Layer: above `hftnet-sys` (all raw calls go through it) and below the
//! harness, the apps and the trading engine. The crate is
//! `#![deny(unsafe_code)]`; only ring code opts out with an
//! `#![allow(unsafe_code)]` of its module, whose doc states the invariants
//! it keeps (io_uring submissions, the AF_XDP UMEM and rings, in-process
//! queues, shared-memory rings); the `AF_PACKET` rings live in `hftnet_sys::packet`
//! and DPDK's calls and mbufs in `hftnet_dpdk_sys` (feature `dpdk`).

#![deny(unsafe_code)]

pub mod backend;
pub mod capabilities;
mod common;
pub mod error;
pub mod l2;
pub mod lease;
pub mod middleware;
pub mod pcap;
pub mod transport;
pub mod uri;

use std::time::Duration;

pub use hftnet_sys::SyscallError;
use serde::Serialize;

pub use backend::{Backend, BackendInfo, OneWay, Placement, RungContext, RungSpec};
pub use capabilities::{Capabilities, CopyMode, LeaseMode, LegacyFields};
pub use common::{SocketCaps, SocketOptions};
#[cfg(feature = "dpdk")]
pub use dpdk::{DpdkConfig, DpdkTransport};
pub use error::OpenError;
pub use l2::frames;
pub use l2::{L2Error, L2Iface, NextHop};
pub use middleware::{Layered, Layers};
pub use packet::{PacketConfig, PacketStats, PacketTransport};
pub use tcp::{Framing, TcpConfig, TcpServer, TcpTransport};
pub use transport::{Addrs, Lease, RxBurst, RxMeta, RxStrategy, Transport, TxLease, TxMsg};
pub use udp::{McastOptions, UdpConfig, UdpTransport};
pub use uri::{Uri, UriError};
pub use uring::{UringConfig, UringMode, UringSlots, UringStatus, UringTransport};
pub use xdp::{XdpConfig, XdpStats, XdpTransport};

// The backend table: one line per backend, `Variant: module::BackendType`.
// The backends behind a cargo feature come in as `$extra`, so every item
// the table generates — the exported `dispatch!` included, whose arms are
// expanded in other crates where this crate's features cannot be tested
// with `cfg` — lists exactly the backends of this build.
macro_rules! table {
    ($d:tt; $($extra:tt)*) => {
        backend::backends! { $d;
            Udp: udp::UdpBackend,
            Tcp: tcp::TcpBackend,
            Uring: uring::UringBackend,
            Packet: packet::PacketBackend,
            Xdp: xdp::XdpBackend,
            $($extra)*
            Mem: mem::MemBackend,
            Shm: shm::ShmBackend,
        }
    };
}
#[cfg(feature = "dpdk")]
table! { $; Dpdk: dpdk::DpdkBackend, }
#[cfg(not(feature = "dpdk"))]
table! { $; }

/// Which end of a conversation an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends to the URI's address and receives the answers (`hftnet ping`).
    Client,
    /// Binds or joins the URI's address and answers senders (`hftnet pong`).
    Server,
}

/// A parsed transport URI: the backend's configuration and the middlewares
/// asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The backend and its configuration.
    pub config: EndpointConfig,
    /// Capture and fault injection (`pcap=`, `loss=`, ...), when asked for.
    pub layers: Layers,
}

impl Endpoint {
    /// Parses and checks a URI without opening anything.
    ///
    /// # Errors
    /// [`UriError`] naming the scheme, parameter or value at fault and what is accepted.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let mut uri = Uri::parse(text)?;
        let layers = Layers::take_from(&mut uri)?;
        let config = EndpointConfig::parse(&uri)?;
        Ok(Self { config, layers })
    }

    /// The scheme name (`udp`, `mcast`, `tcp`, `uring`, `packet`, `xdp`, ...).
    #[must_use]
    pub fn scheme(&self) -> &'static str {
        self.config.scheme()
    }

    /// Largest message the transport carries.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.config.max_message()
    }

    /// Messages per burst call the transport handles best (its `batch=`, or
    /// its ring's size up to 32).
    #[must_use]
    pub fn burst(&self) -> usize {
        self.config.burst()
    }

    /// The `cpu=` of the URI: where the thread driving it should run.
    #[must_use]
    pub fn cpu(&self) -> Option<usize> {
        self.config.cpu()
    }

    /// The same endpoint made one-way for an end that only publishes or
    /// only subscribes, when the URI did not say (`shm://md` becomes the
    /// writer or a reader of ring `md`; sockets are unchanged).
    #[must_use]
    pub fn one_way(mut self, way: OneWay) -> Self {
        self.config.one_way(way);
        self
    }

    /// Opens it: the backend, wrapped in the middlewares asked for.
    ///
    /// # Errors
    /// [`OpenError`] naming the step, option or privilege that failed (a
    /// capture file that cannot be created included).
    pub fn open(&self, role: Role) -> Result<AnyTransport, OpenError> {
        let t = self.config.open(role)?;
        self.layers.wrap(t, role)
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
                .contains("accepted schemes: udp, mcast, tcp, uring, packet, xdp"),
            "{e}"
        );
        let e = Endpoint::parse("udp://127.0.0.1:9000/x?rx=spin").unwrap_err();
        assert!(e.to_string().contains("takes no path"), "{e}");
        let e = Endpoint::parse("udp://127.0.0.1:9000?sqpoll=1").unwrap_err();
        assert!(e.to_string().contains("\"sqpoll\""), "{e}");
    }

    #[test]
    fn dpdk_is_in_the_table_only_with_its_feature() {
        let r = Endpoint::parse("dpdk://net_af_packet0?iface=veth0&port=9000");
        if cfg!(feature = "dpdk") {
            assert_eq!(r.unwrap().scheme(), "dpdk");
            assert!(backend::schemes().any(|s| s == "dpdk"));
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("cargo build --release --features dpdk"), "{e}");
            assert!(!backend::schemes().any(|s| s == "dpdk"));
        }
    }

    #[test]
    fn the_table_lists_every_scheme_once() {
        let all: Vec<&str> = backend::schemes().collect();
        for s in &all {
            assert_eq!(all.iter().filter(|x| *x == s).count(), 1, "{s}");
            assert!(backend::find(s).is_some());
        }
        assert!(all.contains(&"xdp") && all.contains(&"mcast"));
        for b in BACKENDS {
            let ctx = RungContext {
                server_ip: "198.18.0.2",
                iface: Some("veth0"),
                port: 9000,
            };
            for s in b.schemes {
                let rungs = (b.rungs)(s, &ctx);
                assert!(!rungs.is_empty(), "{s} has no rungs");
                for r in rungs {
                    Endpoint::parse(&r.server_uri).unwrap();
                    Endpoint::parse(&r.client_uri).unwrap();
                }
            }
        }
    }
}
