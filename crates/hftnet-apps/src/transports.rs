//! The transports an app runs over: feed A, feed B and the re-request
//! channel, each optional and each of its own type, and where the feed
//! handler publishes its market-data records.
//!
//! Layer: the apps crate's entry points take a [`Transports`]; its three
//! type parameters make every loop monomorphised for the backends it is
//! given (a loop over two `UdpTransport`s calls the socket code directly).
//! The builder methods change one parameter at a time, so unused slots keep
//! a default type ([`Absent`]) and nobody writes `None::<&mut T>`. The
//! publish slot is a `&mut dyn RecordOut` (see [`crate::publish`]: one
//! indirect call per record, the backend's send inside still static).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hftnet_io::transport::TxLease;

use crate::publish::RecordOut;
use hftnet_io::{
    AnyTransport, Capabilities, Lease, RxBurst, RxMeta, SyscallError, Transport, TxMsg,
};

/// Feed A, feed B and the re-request channel of an app run.
///
/// For the [exchange](crate::exchange), feeds A and B are where it
/// publishes and `retransmit` is where it serves re-requests (opened as a
/// server); for the [feed handler](crate::feed), feeds A and B are where it
/// listens and `retransmit` is where it sends re-requests (opened as a
/// client). `publish` is where the feed handler publishes its
/// market-data records ([`crate::publish`]); the exchange takes none.
///
/// ```
/// # use hftnet_apps::Transports;
/// # use hftnet_io::Transport;
/// fn feed_a_and_requests<A: Transport, R: Transport>(a: &mut A, r: &mut R) {
///     let io = Transports::new().feed_a(a).retransmit(r);
///     assert!(io.feed_b.is_none());
/// }
/// ```
#[derive(Debug)]
pub struct Transports<'a, A = Absent, B = Absent, R = AnyTransport> {
    /// Feed A.
    pub feed_a: Option<&'a mut A>,
    /// Feed B.
    pub feed_b: Option<&'a mut B>,
    /// The re-request channel.
    pub retransmit: Option<&'a mut R>,
    /// Where the feed handler publishes its market-data records.
    pub publish: Option<&'a mut dyn RecordOut>,
}

impl Transports<'_> {
    /// No transport at all; add them with the builder methods.
    #[must_use]
    pub fn new() -> Self {
        Self {
            feed_a: None,
            feed_b: None,
            retransmit: None,
            publish: None,
        }
    }
}

impl Default for Transports<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, A: Transport, B: Transport, R: Transport> Transports<'a, A, B, R> {
    /// With `t` as feed A.
    #[must_use]
    pub fn feed_a<T: Transport>(self, t: &'a mut T) -> Transports<'a, T, B, R> {
        Transports {
            feed_a: Some(t),
            feed_b: self.feed_b,
            retransmit: self.retransmit,
            publish: self.publish,
        }
    }

    /// With `t` as feed B.
    #[must_use]
    pub fn feed_b<T: Transport>(self, t: &'a mut T) -> Transports<'a, A, T, R> {
        Transports {
            feed_a: self.feed_a,
            feed_b: Some(t),
            retransmit: self.retransmit,
            publish: self.publish,
        }
    }

    /// With `t` as the re-request channel.
    #[must_use]
    pub fn retransmit<T: Transport>(self, t: &'a mut T) -> Transports<'a, A, B, T> {
        Transports {
            feed_a: self.feed_a,
            feed_b: self.feed_b,
            retransmit: Some(t),
            publish: self.publish,
        }
    }

    /// With `t` as where the feed handler publishes its records (any
    /// [`Lease`] transport: `&mut t` coerces, e.g. a reference to the
    /// concrete transport inside an `AnyTransport`, taken with
    /// [`hftnet_io::dispatch!`]).
    #[must_use]
    pub fn publish(self, t: &'a mut dyn RecordOut) -> Self {
        Transports {
            publish: Some(t),
            ..self
        }
    }
}

/// The type of a slot of [`Transports`] left empty: a transport that is
/// never there. Every call on it fails with `ENOTCONN` (none is made: the
/// slot holds `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Absent;

fn absent() -> SyscallError {
    SyscallError::from_errno("no transport in this slot", libc::ENOTCONN)
}

impl Transport for Absent {
    fn recv_burst(&mut self, _: &mut RxBurst) -> Result<usize, SyscallError> {
        Err(absent())
    }

    fn recv_burst_until(&mut self, _: &mut RxBurst, _: Instant) -> Result<usize, SyscallError> {
        Err(absent())
    }

    fn send_burst(&mut self, _: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        Err(absent())
    }

    fn set_recv_timeout(&mut self, _: Option<Duration>) -> Result<(), SyscallError> {
        Err(absent())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transport: "absent",
            ..Capabilities::default()
        }
    }
}

impl TxLease for Absent {
    fn send_with(
        &mut self,
        _: Option<SocketAddr>,
        _: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), SyscallError> {
        Err(absent())
    }

    fn max_message(&self) -> usize {
        0
    }
}

impl Lease for Absent {
    const IN_PLACE: bool = false;
    type Tx<'a> = Absent;

    fn recv_lease<F>(&mut self, _: usize, _: Option<Instant>, _: F) -> Result<usize, SyscallError>
    where
        F: FnMut(&[u8], &RxMeta, &mut Self::Tx<'_>),
    {
        Err(absent())
    }

    fn send_lease<T>(&mut self, _: impl FnOnce(&mut Self::Tx<'_>) -> T) -> Result<T, SyscallError> {
        Err(absent())
    }
}
