//! Network-namespace lab topologies for hftnet tests and demos: a "trader"
//! and an "exchange" host, each in its own network namespace, joined by a
//! veth pair ([`Lab`]), or one sender and up to [`MAX_RECEIVERS`] receivers
//! on a bridge ([`Star`]), built over rtnetlink and removed on drop.
//!
//! Layer: test and demo infrastructure on top of `hftnet_sys::{netns,
//! netlink}`; used by the `hftnet lab` CLI and by integration tests of every
//! crate. No `unsafe` here (`#![forbid(unsafe_code)]`).
//!
//! Invariants:
//! - A lab named `N` is the set of namespaces `hft-N-ROLE` in `/run/netns`
//!   (the same place `ip netns` uses, so `ip netns list` / `ip netns exec`
//!   work on them). [`list`], [`remove`] and [`remove_all`] find labs by that
//!   pattern alone, so labs of killed runs are found too.
//! - Addresses come from the RFC 2544 benchmarking range 198.18.0.0/15:
//!   trader [`TRADER_ADDR`], exchange [`EXCHANGE_ADDR`], /[`PREFIX_LEN`];
//!   each namespace has `lo` up and a route 224.0.0.0/4 via its veth, so
//!   multicast (239.0.0.0/8) works without a default route.
//! - [`Lab`] removes its namespaces on drop, also while unwinding a panic;
//!   a generated lab name is unique across threads and processes.
//!
//! Must never: touch an interface, route or sysctl of the default namespace
//! (the veth pair is created with both ends directly in lab namespaces), shell
//! out to `ip`, or remove a namespace that does not follow the `hft-N-ROLE`
//! pattern.
//!
//! ```no_run
//! # fn main() -> Result<(), hftnet_lab::LabError> {
//! let lab = hftnet_lab::Lab::two_host(None)?;
//! let rx = lab.exchange().run(|| std::net::UdpSocket::bind("198.18.0.2:9000"))?.unwrap();
//! let tx = lab.trader().run(|| std::net::UdpSocket::bind("198.18.0.1:0"))?.unwrap();
//! tx.send_to(b"hello", "198.18.0.2:9000").unwrap();
//! # drop(rx);
//! println!("{lab}");
//! # Ok(()) }
//! // lab dropped: both namespaces and the veth pair are gone
//! ```

#![forbid(unsafe_code)]

mod error;
mod host;
mod lab;
mod manage;
pub mod skip;
mod star;

use std::net::Ipv4Addr;

pub use error::LabError;
pub use host::Host;
pub use lab::{Lab, LabBuilder};
pub use manage::{
    LabInfo, check_privileges, creator_pid, in_use, list, remove, remove_all, remove_stale,
    remove_where,
};
pub use skip::{in_ci, skip_without_root};
pub use star::{BRIDGE, MAX_RECEIVERS, SENDER, SENDER_ADDR, Star, receiver_addr, receiver_role};

/// Prefix of every lab namespace name: a lab `N` has namespaces `hft-N-ROLE`.
pub const NETNS_PREFIX: &str = "hft-";
/// Role of the host that runs the trading side (client).
pub const TRADER: &str = "trader";
/// Role of the host that runs the exchange side (server).
pub const EXCHANGE: &str = "exchange";
/// Interface name of the veth end inside each namespace (the same name in
/// both: the namespaces are separate).
pub const DEFAULT_IFACE: &str = "veth0";
/// Trader address (RFC 2544 range).
pub const TRADER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Exchange address (RFC 2544 range).
pub const EXCHANGE_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Prefix length of the lab subnet 198.18.0.0/24.
pub const PREFIX_LEN: u8 = 24;
/// The multicast route added in every namespace: 224.0.0.0/4 via the veth.
pub const MULTICAST_ROUTE: (Ipv4Addr, u8) = (Ipv4Addr::new(224, 0, 0, 0), 4);
/// Longest accepted lab name.
pub const MAX_NAME_LEN: usize = 32;

/// Checks a user-given lab name: 1 to [`MAX_NAME_LEN`] characters from
/// `a-z A-Z 0-9 - _`, starting with a letter or digit.
///
/// # Errors
/// [`LabError::InvalidName`] saying what is wrong.
pub fn validate_name(name: &str) -> Result<(), LabError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is too long")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Some("it contains a character other than a-z, A-Z, 0-9, '-' and '_'")
    } else if !name.as_bytes()[0].is_ascii_alphanumeric() {
        Some("it does not start with a letter or digit")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(LabError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// True if `role` is a valid host role: 1 to 16 characters from `a-z 0-9 _`
/// (no `-`, so `hft-N-ROLE` splits unambiguously at its last `-`).
#[must_use]
pub fn is_valid_role(role: &str) -> bool {
    !role.is_empty()
        && role.len() <= 16
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The namespace name of host `role` in lab `lab`: `hft-LAB-ROLE`.
#[must_use]
pub fn netns_name(lab: &str, role: &str) -> String {
    format!("{NETNS_PREFIX}{lab}-{role}")
}

/// Splits a namespace name `hft-LAB-ROLE` into `(LAB, ROLE)`; `None` if it
/// does not follow the pattern (or LAB / ROLE are not valid).
#[must_use]
pub fn parse_netns_name(netns: &str) -> Option<(&str, &str)> {
    let rest = netns.strip_prefix(NETNS_PREFIX)?;
    let (lab, role) = rest.rsplit_once('-')?;
    (validate_name(lab).is_ok() && is_valid_role(role)).then_some((lab, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("demo").is_ok());
        assert!(validate_name("t12-3_x").is_ok());
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        for bad in [
            "",
            "-x",
            "_x",
            "a b",
            "a/b",
            "a.b",
            "é",
            &"a".repeat(MAX_NAME_LEN + 1),
        ] {
            let err = validate_name(bad).unwrap_err();
            assert!(matches!(err, LabError::InvalidName { .. }), "{bad:?}");
            assert!(err.to_string().contains("use 1 to 32 characters"), "{err}");
        }
        assert_eq!(netns_name("demo", TRADER), "hft-demo-trader");
        assert_eq!(
            parse_netns_name("hft-demo-trader"),
            Some(("demo", "trader"))
        );
        assert_eq!(
            parse_netns_name("hft-a-b-c-exchange"),
            Some(("a-b-c", "exchange"))
        );
        assert_eq!(parse_netns_name("hft-demo"), None);
        assert_eq!(parse_netns_name("hft--trader"), None);
        assert_eq!(parse_netns_name("other-demo-trader"), None);
        assert_eq!(parse_netns_name("hft-demo-Trader"), None);
    }
}
