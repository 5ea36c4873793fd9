//! The transports an app runs over: feed A, feed B and the re-request
//! channel, each optional and each of its own type.
//!
//! Layer: the apps crate's entry points take a [`Transports`]; its three
//! type parameters make every loop monomorphised for the backends it is
//! given (a loop over two `UdpTransport`s calls the socket code directly).
//! The builder methods change one parameter at a time, so unused slots keep
//! a default type and nobody writes `None::<&mut T>`.

use hftnet_io::{AnyTransport, Transport};

/// Feed A, feed B and the re-request channel of an app run.
///
/// For the [exchange](crate::exchange), feeds A and B are where it
/// publishes and `retransmit` is where it serves re-requests (opened as a
/// server); for the [feed handler](crate::feed), feeds A and B are where it
/// listens and `retransmit` is where it sends re-requests (opened as a
/// client).
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
pub struct Transports<'a, A = AnyTransport, B = AnyTransport, R = AnyTransport> {
    /// Feed A.
    pub feed_a: Option<&'a mut A>,
    /// Feed B.
    pub feed_b: Option<&'a mut B>,
    /// The re-request channel.
    pub retransmit: Option<&'a mut R>,
}

impl Transports<'_> {
    /// No transport at all; add them with the builder methods.
    #[must_use]
    pub fn new() -> Self {
        Self {
            feed_a: None,
            feed_b: None,
            retransmit: None,
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
        }
    }

    /// With `t` as feed B.
    #[must_use]
    pub fn feed_b<T: Transport>(self, t: &'a mut T) -> Transports<'a, A, T, R> {
        Transports {
            feed_a: self.feed_a,
            feed_b: Some(t),
            retransmit: self.retransmit,
        }
    }

    /// With `t` as the re-request channel.
    #[must_use]
    pub fn retransmit<T: Transport>(self, t: &'a mut T) -> Transports<'a, A, B, T> {
        Transports {
            feed_a: self.feed_a,
            feed_b: self.feed_b,
            retransmit: Some(t),
        }
    }
}
