//! The backend seam: what one transport backend says about itself, and the
//! table that turns a list of backends into the endpoint, transport and
//! capability enums, [`dispatch!`](crate::dispatch), the accepted schemes and
//! the ladder's rungs.
//!
//! Layer: configuration and set-up, never the hot path. A backend is one
//! module folder implementing [`Backend`] plus one line in the table in
//! `lib.rs` (the `backends!` invocation); nothing outside this crate names a
//! concrete backend. The hot path stays statically dispatched: callers match
//! an [`AnyTransport`](crate::AnyTransport) once and run a loop generic over
//! `T: Transport` in each arm.

use std::fmt::Debug;

use serde::Serialize;

use crate::Role;
use crate::error::OpenError;
use crate::transport::{Lease, Transport};
use crate::uri::{Uri, UriError};

/// One transport backend: its schemes, its configuration read from a URI,
/// how it opens, and what it contributes to the ladder.
pub trait Backend {
    /// The URI schemes it answers to, the canonical one first (`udp` also
    /// answers `mcast`).
    const SCHEMES: &'static [&'static str];
    /// Whether its URIs take a path after the authority (`xdp://veth0/QUEUE`).
    const TAKES_PATH: bool = false;
    /// Whether it carries messages as datagrams (each send one message,
    /// boundaries kept, as a MoldUDP64 feed needs); `false` for a byte
    /// stream.
    const DATAGRAMS: bool = true;

    /// Its configuration, as parsed from a URI or built by hand.
    type Config: Clone + Debug + PartialEq + Eq + Send + 'static;
    /// The open transport.
    type Transport: Transport + Lease + Debug + Send + 'static;
    /// Its own section of the capability report.
    type Caps: CapsSection;

    /// Reads a URI of one of [`Self::SCHEMES`].
    ///
    /// # Errors
    /// [`UriError`] naming the parameter or value at fault and what is accepted.
    fn parse(uri: &Uri) -> Result<Self::Config, UriError>;

    /// Which of [`Self::SCHEMES`] the configuration is.
    fn scheme(cfg: &Self::Config) -> &'static str {
        let _ = cfg;
        Self::SCHEMES[0]
    }

    /// Opens the transport in `role`.
    ///
    /// # Errors
    /// [`OpenError`] naming the step, option or privilege that failed.
    fn open(cfg: &Self::Config, role: Role) -> Result<Self::Transport, OpenError>;

    /// The largest message it carries, as far as the configuration tells
    /// (an interface's MTU may lower it once open).
    fn max_message(cfg: &Self::Config) -> usize;

    /// Messages per burst call the transport handles best (its batch or
    /// ring size); throughput tools default to it.
    fn burst(cfg: &Self::Config) -> usize;

    /// The CPU the URI asks the driving thread to be pinned to (`cpu=`).
    fn cpu(cfg: &Self::Config) -> Option<usize>;

    /// Makes the configuration one-way, for an end that only publishes
    /// (sends to whoever listens) or only subscribes, when the URI did not
    /// say: a shared-memory endpoint becomes the writer or a reader of one
    /// ring instead of a duplex pair. Sockets send and receive either way:
    /// the default changes nothing.
    fn one_way(cfg: &mut Self::Config, way: OneWay) {
        let _ = (cfg, way);
    }

    /// Where the two ends of `scheme` can run (see [`Placement`]).
    fn placement(scheme: &str) -> Placement {
        let _ = scheme;
        Placement::Anywhere
    }

    /// The rungs of `scheme` on the ladder: a name and the URIs of both
    /// ends, for a server at `ctx.server_ip`, rung `i` on port `ctx.port + i`.
    fn rungs(scheme: &str, ctx: &RungContext<'_>) -> Vec<RungSpec>;
}

/// The one direction of a one-way endpoint (see [`Backend::one_way`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneWay {
    /// It only sends (a market-data publisher).
    Publish,
    /// It only receives (a subscriber).
    Subscribe,
}

/// Where a backend's two ends can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// Any two hosts, loopback included.
    Anywhere,
    /// Needs a real interface between the ends (a lab's veth or a NIC):
    /// layer-2 rings and multicast are left out on loopback.
    Interface,
    /// Both ends on one machine, in any processes (shared memory).
    SameHost,
    /// Both ends in one process (in-process queues).
    InProcess,
}

/// What a backend's own section of the capabilities provides.
pub trait CapsSection: Serialize + Clone + Debug + PartialEq + Send + 'static {
    /// `# key: value` lines of the section (appended after the common ones).
    fn lines(&self, out: &mut Vec<(String, String)>);

    /// The flat kernel-socket fields the JSON report has always carried
    /// (kept there so readers of older reports keep working).
    fn legacy(&self) -> crate::capabilities::LegacyFields {
        crate::capabilities::LegacyFields::default()
    }
}

/// Where the ladder places a backend's rungs.
#[derive(Debug, Clone, Copy)]
pub struct RungContext<'a> {
    /// The server end's address (the client sends there).
    pub server_ip: &'a str,
    /// The interface between the ends, if any (`veth0` in a lab; `None` on loopback).
    pub iface: Option<&'a str>,
    /// The port of the first rung; rung `i` uses `port + i`.
    pub port: u16,
}

impl RungContext<'_> {
    /// The interface, or `lo` when there is none (the rung then fails with
    /// the reason, which the ladder reports).
    #[must_use]
    pub fn iface_or_lo(&self) -> &str {
        self.iface.unwrap_or("lo")
    }
}

/// One rung a backend offers: a receive strategy (or mode) and the URIs of
/// both ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RungSpec {
    /// The strategy column, e.g. `spin`, `spin+batch32`.
    pub strategy: String,
    /// URI the server (`pong`) opens.
    pub server_uri: String,
    /// URI the client (`ping`) opens.
    pub client_uri: String,
    /// The row means something only when the kernel grants busy polling.
    pub needs_busy_poll: bool,
}

impl RungSpec {
    /// A rung whose two ends open the same URI.
    #[must_use]
    pub fn same(strategy: &str, uri: String) -> Self {
        Self {
            strategy: strategy.to_string(),
            server_uri: uri.clone(),
            client_uri: uri,
            needs_busy_poll: false,
        }
    }

    /// A rung with different server and client URIs.
    #[must_use]
    pub fn pair(strategy: &str, server_uri: String, client_uri: String) -> Self {
        Self {
            strategy: strategy.to_string(),
            server_uri,
            client_uri,
            needs_busy_poll: false,
        }
    }
}

/// The kernel-socket strategies as rungs (`block`, `spin`, `adaptive`,
/// `busy-poll`), each URI made by `uri(port, query)`.
#[must_use]
pub fn socket_strategy_rungs(
    ctx: &RungContext<'_>,
    uri: impl Fn(u16, &str) -> String,
) -> Vec<RungSpec> {
    const STRATEGIES: [(&str, &str); 4] = [
        ("block", "rx=block"),
        ("spin", "rx=spin"),
        ("adaptive", "rx=adaptive"),
        ("busy-poll", "rx=busy-poll&busy_poll=50"),
    ];
    STRATEGIES
        .iter()
        .enumerate()
        .map(|(i, (name, q))| {
            let u = uri(ctx.port + i as u16, q);
            RungSpec {
                needs_busy_poll: *name == "busy-poll",
                ..RungSpec::same(name, u)
            }
        })
        .collect()
}

/// What the table knows of one backend, for listing (schemes, placement,
/// rungs) without naming its type.
#[derive(Debug, Clone, Copy)]
pub struct BackendInfo {
    /// The canonical scheme.
    pub name: &'static str,
    /// Every scheme it answers to.
    pub schemes: &'static [&'static str],
    /// Whether its URIs take a path.
    pub takes_path: bool,
    /// Whether it carries datagrams (see [`Backend::DATAGRAMS`]).
    pub datagrams: bool,
    /// Where the ends of a scheme can run.
    pub placement: fn(&str) -> Placement,
    /// The ladder rungs of a scheme.
    pub rungs: fn(&str, &RungContext<'_>) -> Vec<RungSpec>,
}

impl BackendInfo {
    /// The entry of backend `B`.
    #[must_use]
    pub const fn of<B: Backend>() -> Self {
        Self {
            name: B::SCHEMES[0],
            schemes: B::SCHEMES,
            takes_path: B::TAKES_PATH,
            datagrams: B::DATAGRAMS,
            placement: B::placement,
            rungs: B::rungs,
        }
    }
}

/// Every scheme of every backend in the table, in table order: the
/// transports `hftnet lab` knows.
pub fn schemes() -> impl Iterator<Item = &'static str> {
    crate::BACKENDS
        .iter()
        .flat_map(|b| b.schemes.iter().copied())
}

/// For a scheme of a backend this build left out (behind a cargo feature
/// not enabled): how to get it.
#[must_use]
pub fn left_out(scheme: &str) -> Option<&'static str> {
    match scheme {
        "dpdk" if find("dpdk").is_none() => Some(
            "dpdk:// is built only with the cargo feature `dpdk`: apt-get install -y libdpdk-dev \
             pkg-config libclang-dev librte-net-af-packet23 librte-net-af-xdp23, then cargo \
             build --release --features dpdk",
        ),
        _ => None,
    }
}

/// The backend that answers to `scheme`.
#[must_use]
pub fn find(scheme: &str) -> Option<&'static BackendInfo> {
    crate::BACKENDS.iter().find(|b| b.schemes.contains(&scheme))
}

/// Where the ends of `scheme` can run; `None` for an unknown scheme.
#[must_use]
pub fn placement(scheme: &str) -> Option<Placement> {
    find(scheme).map(|b| (b.placement)(scheme))
}

/// Whether `scheme` carries datagrams (a market-data feed can run over
/// it); `None` for an unknown scheme.
#[must_use]
pub fn datagrams(scheme: &str) -> Option<bool> {
    find(scheme).map(|b| b.datagrams)
}

/// The ladder rungs of `scheme`; `None` for an unknown scheme.
#[must_use]
pub fn rungs(scheme: &str, ctx: &RungContext<'_>) -> Option<Vec<RungSpec>> {
    find(scheme).map(|b| (b.rungs)(scheme, ctx))
}

/// Generates, from one list of `Variant: module::BackendType` lines, the
/// backend modules, [`crate::BACKENDS`], [`crate::EndpointConfig`],
/// [`crate::AnyTransport`] (with its `Transport` impl), [`crate::Section`]
/// and the exported `dispatch!` macro. The `$d` argument is a literal `$`,
/// so the macro can write the `dispatch!` macro.
macro_rules! backends {
    ($d:tt; $( $(#[$doc:meta])* $variant:ident : $module:ident :: $backend:ident ),+ $(,)?) => {
        $( $(#[$doc])* pub mod $module; )+

        /// Every backend this build has, in the order they are listed to users.
        pub const BACKENDS: &[$crate::backend::BackendInfo] = &[
            $( $crate::backend::BackendInfo::of::<$module::$backend>(), )+
        ];

        /// A backend's configuration (the part of an [`Endpoint`] that
        /// names the backend).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum EndpointConfig {
            $( #[doc = concat!("`", stringify!($module), "://`")]
               $variant(<$module::$backend as $crate::backend::Backend>::Config), )+
        }

        impl EndpointConfig {
            /// Reads a URI whose scheme is in the table.
            ///
            /// # Errors
            /// [`UriError`] naming what is wrong.
            pub fn parse(uri: &Uri) -> Result<Self, UriError> {
                use $crate::backend::Backend as _;
                $(
                    if <$module::$backend>::SCHEMES.contains(&uri.scheme.as_str()) {
                        if !<$module::$backend>::TAKES_PATH && !uri.path.is_empty() {
                            return Err(UriError::Malformed {
                                uri: uri.text.clone(),
                                reason: format!(
                                    "{}:// takes no path after the address (found /{})",
                                    uri.scheme, uri.path
                                ),
                            });
                        }
                        return Ok(Self::$variant(<$module::$backend>::parse(uri)?));
                    }
                )+
                Err(UriError::UnknownScheme {
                    uri: uri.text.clone(),
                    scheme: uri.scheme.clone(),
                    accepted: $crate::backend::schemes().collect::<Vec<_>>().join(", "),
                })
            }

            /// The scheme (`udp`, `mcast`, `tcp`, ...).
            #[must_use]
            pub fn scheme(&self) -> &'static str {
                match self { $( Self::$variant(c) => <$module::$backend as $crate::backend::Backend>::scheme(c), )+ }
            }

            /// Largest message the transport carries.
            #[must_use]
            pub fn max_message(&self) -> usize {
                match self { $( Self::$variant(c) => <$module::$backend as $crate::backend::Backend>::max_message(c), )+ }
            }

            /// Messages per burst call the transport handles best.
            #[must_use]
            pub fn burst(&self) -> usize {
                match self { $( Self::$variant(c) => <$module::$backend as $crate::backend::Backend>::burst(c), )+ }
            }

            /// The `cpu=` of the URI.
            #[must_use]
            pub fn cpu(&self) -> Option<usize> {
                match self { $( Self::$variant(c) => <$module::$backend as $crate::backend::Backend>::cpu(c), )+ }
            }

            /// Makes it one-way when the URI did not say (see
            /// [`Backend::one_way`](crate::backend::Backend::one_way)).
            pub fn one_way(&mut self, way: $crate::backend::OneWay) {
                match self { $( Self::$variant(c) => <$module::$backend as $crate::backend::Backend>::one_way(c, way), )+ }
            }

            /// Opens the bare backend (no middleware).
            ///
            /// # Errors
            /// [`OpenError`] naming the step, option or privilege that failed.
            pub fn open(&self, role: Role) -> Result<AnyTransport, OpenError> {
                Ok(match self {
                    $( Self::$variant(c) => AnyTransport::$variant(
                        <$module::$backend as $crate::backend::Backend>::open(c, role)?), )+
                })
            }
        }

        /// Every backend in one enum, plus the middlewares. Match on it once,
        /// outside the loop, and run a loop generic over `T: Transport` (and
        /// [`Lease`](transport::Lease)) inside each arm ([`dispatch!`] does
        /// that), so the hot path is statically dispatched.
        ///
        /// The variants differ in size (the AF_XDP one carries its counters
        /// and UMEM bookkeeping inline); the enum is built once per endpoint
        /// and not moved on the hot path, so boxing would only add an
        /// indirection.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug)]
        pub enum AnyTransport {
            $( #[doc = concat!("`", stringify!($module), "://`")]
               $variant(<$module::$backend as $crate::backend::Backend>::Transport), )+
            /// A backend wrapped in middlewares (pcap capture, fault injection).
            Layered(Box<$crate::middleware::Layered<AnyTransport>>),
        }

        /// Runs `$body` with `$t` bound to the concrete transport inside an
        /// [`AnyTransport`], so generic code is monomorphised per backend
        /// (and once for the middleware-wrapped transport).
        ///
        /// ```
        /// # use hftnet_io::{AnyTransport, Transport, dispatch};
        /// fn caps(t: &mut AnyTransport) -> &'static str {
        ///     dispatch!(t, inner => inner.capabilities().transport)
        /// }
        /// ```
        #[macro_export]
        macro_rules! dispatch {
            ($d any:expr, $d t:ident => $d body:expr) => {
                match $d any {
                    $( $crate::AnyTransport::$variant($d t) => $d body, )+
                    $crate::AnyTransport::Layered($d t) => $d body,
                }
            };
        }

        impl Transport for AnyTransport {
            fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
                match self { $( Self::$variant(t) => t.recv_burst(burst), )+ Self::Layered(t) => t.recv_burst(burst) }
            }

            fn recv_burst_until(
                &mut self,
                burst: &mut RxBurst,
                deadline: std::time::Instant,
            ) -> Result<usize, SyscallError> {
                match self { $( Self::$variant(t) => t.recv_burst_until(burst, deadline), )+ Self::Layered(t) => t.recv_burst_until(burst, deadline) }
            }

            fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
                match self { $( Self::$variant(t) => t.send_burst(msgs), )+ Self::Layered(t) => t.send_burst(msgs) }
            }

            fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
                match self { $( Self::$variant(t) => t.set_recv_timeout(timeout), )+ Self::Layered(t) => t.set_recv_timeout(timeout) }
            }

            fn capabilities(&self) -> Capabilities {
                match self { $( Self::$variant(t) => t.capabilities(), )+ Self::Layered(t) => t.capabilities() }
            }

            fn tx_timestamps(
                &mut self,
                f: &mut dyn FnMut(transport::TxStamp),
            ) -> Result<usize, SyscallError> {
                match self { $( Self::$variant(t) => t.tx_timestamps(f), )+ Self::Layered(t) => t.tx_timestamps(f) }
            }

            fn stream_prefix(&self) -> Option<usize> {
                match self { $( Self::$variant(t) => t.stream_prefix(), )+ Self::Layered(t) => t.stream_prefix() }
            }

            fn release_held(&mut self) -> Result<usize, SyscallError> {
                match self { $( Self::$variant(t) => t.release_held(), )+ Self::Layered(t) => t.release_held() }
            }

            fn flush_tx(&mut self, timeout: Duration) -> Result<bool, SyscallError> {
                match self { $( Self::$variant(t) => t.flush_tx(timeout), )+ Self::Layered(t) => t.flush_tx(timeout) }
            }

            fn addrs(&self) -> transport::Addrs {
                match self { $( Self::$variant(t) => t.addrs(), )+ Self::Layered(t) => t.addrs() }
            }

            fn capture_frames(
                &mut self,
                capture: Box<$crate::middleware::Capture>,
            ) -> Result<(), Box<$crate::middleware::Capture>> {
                match self { $( Self::$variant(t) => t.capture_frames(capture), )+ Self::Layered(t) => t.capture_frames(capture) }
            }
        }

        /// Each backend's own section of the [`Capabilities`].
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum Section {
            $( #[doc = concat!("`", stringify!($module), "://`")]
               $variant(<$module::$backend as $crate::backend::Backend>::Caps), )+
        }

        $(
            impl From<<$module::$backend as $crate::backend::Backend>::Caps> for Section {
                fn from(c: <$module::$backend as $crate::backend::Backend>::Caps) -> Self {
                    Self::$variant(c)
                }
            }
        )+

        impl Section {
            /// `# key: value` lines of the section.
            pub fn lines(&self, out: &mut Vec<(String, String)>) {
                use $crate::backend::CapsSection as _;
                match self { $( Self::$variant(c) => c.lines(out), )+ }
            }

            /// The flat kernel-socket fields of the JSON report.
            #[must_use]
            pub fn legacy(&self) -> $crate::capabilities::LegacyFields {
                use $crate::backend::CapsSection as _;
                match self { $( Self::$variant(c) => c.legacy(), )+ }
            }
        }
    };
}

pub(crate) use backends;
