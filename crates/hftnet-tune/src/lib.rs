//! Host tuning for hftnet: read what a machine is set to (`audit`), change it
//! to a profile with a snapshot of every value touched (`apply`), and put it
//! back exactly (`revert`); and measure OS jitter per CPU.
//!
//! - [`root`]: the one place files under `/proc` and `/sys` are read and
//!   written, relative to a root directory so tests run against a fake tree.
//! - [`facts`]: CPU, kernel, sysctl, IRQ and process facts of the host.
//! - [`cpuset`]: run-time CPU isolation with cpusets, and the cgroup
//!   operations ([`cpuset::HostOp`]) an apply makes.
//! - [`services`]: the service manager (irqbalance).
//! - [`nic`]: a network interface's ethtool settings, read and written
//!   through the kernel's ethtool interface (never the `ethtool` program).
//! - [`guard`]: whether a named interface carries a default route (every
//!   table, IPv4 and IPv6, alternative names resolved).
//! - [`profile`]: tuning profiles (built-in `latency` and `throughput`, or
//!   a checked TOML file).
//! - [`plan`]: profile → changes (old → new), applied with a snapshot and
//!   reverted exactly.
//! - [`scope`]: what an apply can touch, the allowlist every plan and
//!   every snapshot is checked against before anything is written.
//! - [`jitter`]: the OS jitter probe.
//!
//! Nothing here touches an interface the caller did not name.

#![forbid(unsafe_code)]

pub mod access;
pub mod audit;
pub mod cpuset;
pub mod facts;
pub mod guard;
pub mod jitter;
pub mod nic;
pub mod plan;
pub mod profile;
pub mod root;
pub mod scope;
pub mod services;
pub mod trusted;
