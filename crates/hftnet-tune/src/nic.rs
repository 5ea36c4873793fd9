//! A network interface's ethtool settings as text keys and values, read and
//! written through the kernel's ethtool interface (never the `ethtool`
//! program): the typed view behind `hftnet tune audit` and the apply/revert
//! engine.
//!
//! - [`NicKey`] names one setting with a stable text form: `feature.gro`,
//!   `feature.rx-gro-hw`, `coalesce.rx-usecs`, `ring.rx`,
//!   `channels.combined`, `pause.rx`, `rss.equal`.
//! - [`get`] / [`set`] read and change one setting as text (`"on"`/`"off"`,
//!   decimal numbers). `set` changes only that field (read-modify-write of
//!   the coalescing, ring, channel and pause structs) and does nothing when
//!   the value is already in place, so a profile can be applied twice and
//!   a NIC is not reset for a ring size it already has.
//! - [`audit`] reads every fact of an interface into a [`NicReport`]; a
//!   query the driver does not support is recorded as such, never an error.
//!
//! "Not supported by the driver" is a finding ([`NicError::NotSupported`],
//! [`Fact::NotSupported`]): veth has no coalescing, rings, flow control or
//! RSS. A value the device refuses is [`NicError::Rejected`], with the
//! maximum when it is known.
//!
//! Features: the friendly names ([`Offload`]: `tso`, `sg`, `tx-checksum`,
//! ...) are groups, like `ethtool -K`: reading gives "on" when any member
//! is on, writing sets every member the driver lets change. For an exact
//! snapshot and revert, use the kernel names ([`keys`] lists them all).
//!
//! Namespaces: requests go to the namespace the [`Ethtool`] handle was
//! opened in. The NUMA node comes from sysfs, which shows the interfaces of
//! the namespace it was mounted from (the default one, normally), so it is
//! meaningful for physical NICs of the default namespace only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use hftnet_sys::SyscallError;
use hftnet_sys::ethtool::{
    Channels, Coalesce, Ethtool, FeatureState, Features, Pauseparam, Ringparam, StringSet, errno,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A friendly offload name: a group of kernel features, the same group the
/// kernel's legacy command for it covers (`ETHTOOL_[GS]TSO` and so on, as
/// `ethtool -K tso off` did before feature names existed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Offload {
    /// `tso`: `tx-tcp-segmentation`, `tx-tcp6-segmentation`,
    /// `tx-tcp-ecn-segmentation`, `tx-tcp-mangleid-segmentation` (the
    /// kernel's `NETIF_F_ALL_TSO`; not the separate AccECN GSO type
    /// `tx-tcp-accecn-segmentation`, which the `ethtool` program's pattern
    /// also catches).
    Tso,
    /// `gso`: `tx-generic-segmentation`.
    Gso,
    /// `gro`: `rx-gro`.
    Gro,
    /// `lro`: `rx-lro`.
    Lro,
    /// `sg`: `tx-scatter-gather` and `tx-scatter-gather-fraglist`.
    Sg,
    /// `rx-checksum`: `rx-checksum`.
    RxChecksum,
    /// `tx-checksum`: every `tx-checksum-*` feature (IPv4, IPv6, generic,
    /// SCTP, FCoE).
    TxChecksum,
    /// `ntuple`: `rx-ntuple-filter`.
    Ntuple,
}

impl Offload {
    /// Every friendly name, in display order.
    pub const ALL: [Self; 8] = [
        Self::Tso,
        Self::Gso,
        Self::Gro,
        Self::Lro,
        Self::Sg,
        Self::RxChecksum,
        Self::TxChecksum,
        Self::Ntuple,
    ];

    /// The friendly name, e.g. `"tso"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tso => "tso",
            Self::Gso => "gso",
            Self::Gro => "gro",
            Self::Lro => "lro",
            Self::Sg => "sg",
            Self::RxChecksum => "rx-checksum",
            Self::TxChecksum => "tx-checksum",
            Self::Ntuple => "ntuple",
        }
    }

    /// Whether the kernel feature `name` belongs to this group (the masks
    /// of `ethtool_get_feature_mask` in `net/ethtool/ioctl.c`).
    #[must_use]
    pub fn contains(self, name: &str) -> bool {
        match self {
            Self::Tso => matches!(
                name,
                "tx-tcp-segmentation"
                    | "tx-tcp6-segmentation"
                    | "tx-tcp-ecn-segmentation"
                    | "tx-tcp-mangleid-segmentation"
            ),
            Self::Gso => name == "tx-generic-segmentation",
            Self::Gro => name == "rx-gro",
            Self::Lro => name == "rx-lro",
            Self::Sg => name.starts_with("tx-scatter-gather"),
            Self::RxChecksum => name == "rx-checksum",
            Self::TxChecksum => name.starts_with("tx-checksum-"),
            Self::Ntuple => name == "rx-ntuple-filter",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// An interrupt coalescing field (`ethtool -C` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CoalesceField {
    /// `rx-usecs`: µs before an RX interrupt.
    RxUsecs,
    /// `rx-frames`: packets before an RX interrupt.
    RxFrames,
    /// `tx-usecs`: µs before a TX-completion interrupt.
    TxUsecs,
    /// `tx-frames`: packets before a TX-completion interrupt.
    TxFrames,
    /// `adaptive-rx`: the driver adapts RX coalescing (on/off).
    AdaptiveRx,
    /// `adaptive-tx`: the driver adapts TX coalescing (on/off).
    AdaptiveTx,
}

impl CoalesceField {
    /// Every field.
    pub const ALL: [Self; 6] = [
        Self::RxUsecs,
        Self::RxFrames,
        Self::TxUsecs,
        Self::TxFrames,
        Self::AdaptiveRx,
        Self::AdaptiveTx,
    ];

    /// The text name, e.g. `"rx-usecs"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RxUsecs => "rx-usecs",
            Self::RxFrames => "rx-frames",
            Self::TxUsecs => "tx-usecs",
            Self::TxFrames => "tx-frames",
            Self::AdaptiveRx => "adaptive-rx",
            Self::AdaptiveTx => "adaptive-tx",
        }
    }

    fn is_bool(self) -> bool {
        matches!(self, Self::AdaptiveRx | Self::AdaptiveTx)
    }

    fn slot(self, c: &mut Coalesce) -> &mut u32 {
        match self {
            Self::RxUsecs => &mut c.rx_coalesce_usecs,
            Self::RxFrames => &mut c.rx_max_coalesced_frames,
            Self::TxUsecs => &mut c.tx_coalesce_usecs,
            Self::TxFrames => &mut c.tx_max_coalesced_frames,
            Self::AdaptiveRx => &mut c.use_adaptive_rx_coalesce,
            Self::AdaptiveTx => &mut c.use_adaptive_tx_coalesce,
        }
    }
}

/// A descriptor ring (`ethtool -G` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RingField {
    /// `rx`: RX ring entries.
    Rx,
    /// `tx`: TX ring entries.
    Tx,
}

impl RingField {
    /// Every ring.
    pub const ALL: [Self; 2] = [Self::Rx, Self::Tx];

    /// The text name, e.g. `"rx"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rx => "rx",
            Self::Tx => "tx",
        }
    }

    /// (current, maximum) in `r`.
    fn read(self, r: &Ringparam) -> (u32, u32) {
        match self {
            Self::Rx => (r.rx_pending, r.rx_max_pending),
            Self::Tx => (r.tx_pending, r.tx_max_pending),
        }
    }

    fn slot(self, r: &mut Ringparam) -> &mut u32 {
        match self {
            Self::Rx => &mut r.rx_pending,
            Self::Tx => &mut r.tx_pending,
        }
    }
}

/// A kind of channel (queue) (`ethtool -L` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelField {
    /// `rx`: RX-only channels.
    Rx,
    /// `tx`: TX-only channels.
    Tx,
    /// `other`: other channels (link interrupts, ...).
    Other,
    /// `combined`: channels with an RX and a TX queue.
    Combined,
}

impl ChannelField {
    /// Every kind.
    pub const ALL: [Self; 4] = [Self::Rx, Self::Tx, Self::Other, Self::Combined];

    /// The text name, e.g. `"combined"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rx => "rx",
            Self::Tx => "tx",
            Self::Other => "other",
            Self::Combined => "combined",
        }
    }

    /// (current, maximum) in `c`.
    fn read(self, c: &Channels) -> (u32, u32) {
        match self {
            Self::Rx => (c.rx_count, c.max_rx),
            Self::Tx => (c.tx_count, c.max_tx),
            Self::Other => (c.other_count, c.max_other),
            Self::Combined => (c.combined_count, c.max_combined),
        }
    }

    fn slot(self, c: &mut Channels) -> &mut u32 {
        match self {
            Self::Rx => &mut c.rx_count,
            Self::Tx => &mut c.tx_count,
            Self::Other => &mut c.other_count,
            Self::Combined => &mut c.combined_count,
        }
    }
}

/// A flow control setting (`ethtool -A` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PauseField {
    /// `autoneg`: negotiate pause use with the link partner.
    Autoneg,
    /// `rx`: honour received pause frames.
    Rx,
    /// `tx`: send pause frames.
    Tx,
}

impl PauseField {
    /// Every setting.
    pub const ALL: [Self; 3] = [Self::Autoneg, Self::Rx, Self::Tx];

    /// The text name, e.g. `"autoneg"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Autoneg => "autoneg",
            Self::Rx => "rx",
            Self::Tx => "tx",
        }
    }

    fn slot(self, p: &mut Pauseparam) -> &mut u32 {
        match self {
            Self::Autoneg => &mut p.autoneg,
            Self::Rx => &mut p.rx_pause,
            Self::Tx => &mut p.tx_pause,
        }
    }
}

/// One NIC setting, addressable by text (`feature.gro`, `ring.rx`, ...).
///
/// The text form is stable (scripts and profiles use it): see
/// [`NicKey::ACCEPTED`]. Serialized as that text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NicKey {
    /// `feature.<friendly name>`: an offload group ([`Offload`]).
    Offload(Offload),
    /// `feature.<kernel name>`: one feature by its `ETH_SS_FEATURES` name,
    /// e.g. `feature.rx-gro-hw`, `feature.rx-udp-gro-forwarding`.
    Feature(String),
    /// `coalesce.<field>`.
    Coalesce(CoalesceField),
    /// `ring.<rx|tx>`: ring entries.
    Ring(RingField),
    /// `channels.<rx|tx|other|combined>`: channel counts.
    Channels(ChannelField),
    /// `pause.<autoneg|rx|tx>`: flow control.
    Pause(PauseField),
    /// `rss.equal`: the number of RX queues the RSS indirection table spreads
    /// over equally (`ethtool -X IF equal N`). Reads as that number, or as
    /// the whole table (comma-separated queue numbers) when it is not an
    /// equal spread; both forms can be set.
    RssEqual,
}

impl NicKey {
    /// The accepted text forms, for messages and `--help`.
    pub const ACCEPTED: &'static str = "feature.{tso,gso,gro,lro,sg,rx-checksum,tx-checksum,ntuple}, \
         feature.<kernel feature name> (e.g. feature.rx-gro-hw), \
         coalesce.{rx-usecs,rx-frames,tx-usecs,tx-frames,adaptive-rx,adaptive-tx}, \
         ring.{rx,tx}, channels.{rx,tx,other,combined}, pause.{autoneg,rx,tx}, rss.equal";

    /// Every key except the kernel-name features (which depend on the
    /// kernel; [`keys`] adds them for a device).
    #[must_use]
    pub fn fixed() -> Vec<Self> {
        let mut keys: Vec<Self> = Offload::ALL.into_iter().map(Self::Offload).collect();
        keys.extend(CoalesceField::ALL.into_iter().map(Self::Coalesce));
        keys.extend(RingField::ALL.into_iter().map(Self::Ring));
        keys.extend(ChannelField::ALL.into_iter().map(Self::Channels));
        keys.extend(PauseField::ALL.into_iter().map(Self::Pause));
        keys.push(Self::RssEqual);
        keys
    }

    /// Whether the value is `"on"`/`"off"`.
    #[must_use]
    pub fn is_boolean(&self) -> bool {
        match self {
            Self::Offload(_) | Self::Feature(_) | Self::Pause(_) => true,
            Self::Coalesce(c) => c.is_bool(),
            Self::Ring(_) | Self::Channels(_) | Self::RssEqual => false,
        }
    }

    /// What a value of this key looks like, for messages.
    #[must_use]
    pub fn expected(&self) -> &'static str {
        if self.is_boolean() {
            "on or off"
        } else if *self == Self::RssEqual {
            "a number of RX queues (1 or more), or the whole indirection table \
             as comma-separated queue numbers"
        } else {
            "a whole number from 0 to 4294967295"
        }
    }
}

impl fmt::Display for NicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Offload(o) => write!(f, "feature.{}", o.name()),
            Self::Feature(name) => write!(f, "feature.{name}"),
            Self::Coalesce(c) => write!(f, "coalesce.{}", c.name()),
            Self::Ring(r) => write!(f, "ring.{}", r.name()),
            Self::Channels(c) => write!(f, "channels.{}", c.name()),
            Self::Pause(p) => write!(f, "pause.{}", p.name()),
            Self::RssEqual => f.write_str("rss.equal"),
        }
    }
}

/// A text that is not a [`NicKey`]; the message lists the accepted keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown NIC setting `{input}`; accepted: {}", NicKey::ACCEPTED)]
pub struct ParseKeyError {
    /// The text that did not parse.
    pub input: String,
}

/// Whether `name` can be a kernel feature name (`ETH_SS_FEATURES` strings
/// are lowercase ASCII words with `-` and `_`, under 32 bytes).
fn is_kernel_feature_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase()
}

impl FromStr for NicKey {
    type Err = ParseKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseKeyError {
            input: s.to_owned(),
        };
        let (group, name) = s.split_once('.').ok_or_else(err)?;
        let key = match group {
            "feature" => match Offload::from_name(name) {
                Some(o) => Self::Offload(o),
                None if is_kernel_feature_name(name) => Self::Feature(name.to_owned()),
                None => return Err(err()),
            },
            "coalesce" => CoalesceField::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .map(Self::Coalesce)
                .ok_or_else(err)?,
            "ring" => RingField::ALL
                .into_iter()
                .find(|r| r.name() == name)
                .map(Self::Ring)
                .ok_or_else(err)?,
            "channels" => ChannelField::ALL
                .into_iter()
                .find(|c| c.name() == name)
                .map(Self::Channels)
                .ok_or_else(err)?,
            "pause" => PauseField::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .map(Self::Pause)
                .ok_or_else(err)?,
            "rss" if name == "equal" => Self::RssEqual,
            _ => return Err(err()),
        };
        Ok(key)
    }
}

impl Serialize for NicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a NIC setting could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NicError {
    /// The driver does not offer this setting (veth has no coalescing, for
    /// example), or cannot change it (a feature fixed at another value).
    /// A finding for the audit and apply engine, not a failure.
    #[error("{key} is not supported by the driver of {iface}")]
    NotSupported {
        /// The interface.
        iface: String,
        /// The setting.
        key: NicKey,
    },
    /// The device or the kernel refused the value.
    #[error("{iface} rejected {key} = {value}: {reason}")]
    Rejected {
        /// The interface.
        iface: String,
        /// The setting.
        key: NicKey,
        /// The value asked for.
        value: String,
        /// The `errno`, when the kernel refused the request itself.
        errno: Option<i32>,
        /// What the kernel said, and the limit when it is known.
        reason: String,
    },
    /// The value is not of the key's form; nothing was sent to the kernel.
    #[error("invalid value `{value}` for {key}: expected {expected}")]
    BadValue {
        /// The setting.
        key: NicKey,
        /// The value given.
        value: String,
        /// What the key accepts.
        expected: String,
    },
    /// No such interface in the handle's network namespace (`ENODEV`).
    #[error(
        "no network interface named `{iface}` in this network namespace \
         (`ip link` lists them)"
    )]
    NoSuchInterface {
        /// The name asked for.
        iface: String,
    },
    /// Changing settings needs `CAP_NET_ADMIN` (`EPERM`).
    #[error(
        "changing {key} of {iface} needs CAP_NET_ADMIN in its network namespace \
         (run as root, or grant the capability)"
    )]
    Permission {
        /// The interface.
        iface: String,
        /// The setting.
        key: NicKey,
    },
    /// The kernel knows no feature of that name.
    #[error(
        "{iface} has no feature named `{name}`; the audit lists the kernel's \
         feature names"
    )]
    UnknownFeature {
        /// The interface.
        iface: String,
        /// The name asked for.
        name: String,
    },
    /// Any other failure of the ethtool request.
    #[error(transparent)]
    Other(SyscallError),
}

impl NicError {
    /// Whether this is a "the driver does not offer it" finding rather than
    /// a failure.
    #[must_use]
    pub fn is_not_supported(&self) -> bool {
        matches!(self, Self::NotSupported { .. })
    }
}

/// Turns a failed request about `key` into a [`NicError`]. `value` is the
/// value being set (None when reading); `limit` describes the limit, for a
/// rejected value.
fn classify(
    e: SyscallError,
    iface: &str,
    key: &NicKey,
    value: Option<&str>,
    limit: impl FnOnce() -> Option<String>,
) -> NicError {
    match (e.errno(), value) {
        (Some(errno::ENODEV), _) => NicError::NoSuchInterface {
            iface: iface.to_owned(),
        },
        (Some(errno::EOPNOTSUPP), _) => NicError::NotSupported {
            iface: iface.to_owned(),
            key: key.clone(),
        },
        (Some(errno::EPERM | errno::EACCES), _) => NicError::Permission {
            iface: iface.to_owned(),
            key: key.clone(),
        },
        (Some(code @ (errno::EINVAL | errno::ERANGE)), Some(value)) => NicError::Rejected {
            iface: iface.to_owned(),
            key: key.clone(),
            value: value.to_owned(),
            errno: Some(code),
            reason: match limit() {
                Some(limit) => format!("{limit} ({e})"),
                None => e.to_string(),
            },
        },
        _ => NicError::Other(e),
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn bad_value(key: &NicKey, value: &str) -> NicError {
    NicError::BadValue {
        key: key.clone(),
        value: value.to_owned(),
        expected: key.expected().to_owned(),
    }
}

fn parse_bool(key: &NicKey, value: &str) -> Result<bool, NicError> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(bad_value(key, value)),
    }
}

fn parse_u32(key: &NicKey, value: &str) -> Result<u32, NicError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_value(key, value));
    }
    value.parse().map_err(|_| bad_value(key, value))
}

/// A value of `rss.equal`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RssValue {
    Equal(u32),
    Table(Vec<u32>),
}

fn parse_rss(key: &NicKey, value: &str) -> Result<RssValue, NicError> {
    if value.contains(',') {
        let table = value
            .split(',')
            .map(|v| parse_u32(key, v.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad_value(key, value))?;
        return Ok(RssValue::Table(table));
    }
    match parse_u32(key, value)? {
        0 => Err(bad_value(key, value)),
        n => Ok(RssValue::Equal(n)),
    }
}

/// Checks that `value` has the form `key` accepts, without asking the
/// device (for validating a whole profile before changing anything).
///
/// # Errors
/// [`NicError::BadValue`] naming what the key expects.
pub fn check_value(key: &NicKey, value: &str) -> Result<(), NicError> {
    match key {
        NicKey::RssEqual => parse_rss(key, value).map(drop),
        k if k.is_boolean() => parse_bool(key, value).map(drop),
        _ => parse_u32(key, value).map(drop),
    }
}

/// The indirection table that spreads `size` hash buckets equally over RX
/// queues `0..queues` (`ethtool -X IF equal N`: bucket `i` → `i % N`).
#[must_use]
pub fn rss_equal_table(size: usize, queues: u32) -> Vec<u32> {
    let queues = queues.max(1);
    (0..size)
        .map(|i| u32::try_from(i % queues as usize).unwrap_or(0))
        .collect()
}

/// The number of queues `table` spreads over equally (the inverse of
/// [`rss_equal_table`]), or None for another table or an empty one.
#[must_use]
pub fn rss_equal_of(table: &[u32]) -> Option<u32> {
    let queues = table.iter().max()?.checked_add(1)?;
    (table == rss_equal_table(table.len(), queues).as_slice()).then_some(queues)
}

fn rss_text(table: &[u32]) -> String {
    match rss_equal_of(table) {
        Some(n) => n.to_string(),
        None => table
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// The kernel features `key` (a feature key) stands for on this device.
fn feature_members<'a>(
    features: &'a Features,
    iface: &str,
    key: &NicKey,
) -> Result<Vec<FeatureState<'a>>, NicError> {
    let (members, name) = match key {
        NicKey::Offload(o) => (
            features.iter().filter(|f| o.contains(f.name)).collect(),
            o.name(),
        ),
        NicKey::Feature(name) => (features.get(name).into_iter().collect(), name.as_str()),
        _ => (Vec::new(), ""),
    };
    if members.is_empty() {
        return Err(NicError::UnknownFeature {
            iface: iface.to_owned(),
            name: name.to_owned(),
        });
    }
    Ok(members)
}

/// Every key `iface` can be asked about: [`NicKey::fixed`] and then every
/// kernel feature by name.
///
/// # Errors
/// [`NicError::NoSuchInterface`], or [`NicError::Other`] if the feature
/// names cannot be read.
pub fn keys(et: &Ethtool, iface: &str) -> Result<Vec<NicKey>, NicError> {
    let any = NicKey::Feature(String::new());
    let features = et
        .get_features(iface)
        .map_err(|e| classify(e, iface, &any, None, || None))?;
    let mut keys = NicKey::fixed();
    keys.extend(
        features
            .iter()
            .filter(|f| Offload::from_name(f.name).is_none())
            .map(|f| NicKey::Feature(f.name.to_owned())),
    );
    Ok(keys)
}

/// The current value of `key` on `iface` as text: `"on"`/`"off"` or a
/// decimal number (`rss.equal`: see [`NicKey::RssEqual`]). `None` when the
/// driver does not offer the setting (no coalescing on veth, no combined
/// channels on a device whose maximum is 0, ...).
///
/// # Errors
/// [`NicError::NoSuchInterface`], [`NicError::UnknownFeature`] for a feature
/// name the kernel does not know, [`NicError::Other`] for any other failure.
pub fn get(et: &Ethtool, iface: &str, key: &NicKey) -> Result<Option<String>, NicError> {
    let fail = |e| classify(e, iface, key, None, || None);
    let unsupported = |r: Result<Option<String>, NicError>| match r {
        Err(NicError::NotSupported { .. }) => Ok(None),
        other => other,
    };
    unsupported(match key {
        NicKey::Offload(_) | NicKey::Feature(_) => {
            let features = et.get_features(iface).map_err(fail)?;
            let members = feature_members(&features, iface, key)?;
            Ok(Some(on_off(members.iter().any(|f| f.active)).to_owned()))
        }
        NicKey::Coalesce(field) => et.get_coalesce(iface).map_err(fail).map(|mut c| {
            let v = *field.slot(&mut c);
            Some(if field.is_bool() {
                on_off(v != 0).to_owned()
            } else {
                v.to_string()
            })
        }),
        NicKey::Ring(field) => et.get_ringparam(iface).map_err(fail).map(|r| {
            let (current, max) = field.read(&r);
            (max != 0).then(|| current.to_string())
        }),
        NicKey::Channels(field) => et.get_channels(iface).map_err(fail).map(|c| {
            let (current, max) = field.read(&c);
            (max != 0).then(|| current.to_string())
        }),
        NicKey::Pause(field) => et
            .get_pauseparam(iface)
            .map_err(fail)
            .map(|mut p| Some(on_off(*field.slot(&mut p) != 0).to_owned())),
        NicKey::RssEqual => et
            .get_rxfh_indir(iface)
            .map_err(fail)
            .map(|t| (!t.is_empty()).then(|| rss_text(&t))),
    })
}

/// Sets `key` on `iface` to `value` (`"on"`/`"off"`, a decimal number, or
/// for `rss.equal` a queue count or a whole table), changing nothing else.
/// A value already in place is not written again.
///
/// Features: the members of a group the driver lets change are all set; a
/// feature the driver keeps fixed is fine when it already has the value and
/// [`NicError::NotSupported`] otherwise. When the kernel records the
/// request but cannot grant it (TSO asked for while scatter-gather is off),
/// the result is [`NicError::Rejected`]; the request stays recorded and
/// takes effect when the dependency comes back, as with `ethtool -K`.
///
/// # Errors
/// [`NicError::BadValue`] before any request; [`NicError::NotSupported`],
/// [`NicError::Rejected`] (with the maximum when known),
/// [`NicError::NoSuchInterface`], [`NicError::Permission`],
/// [`NicError::UnknownFeature`], [`NicError::Other`].
pub fn set(et: &Ethtool, iface: &str, key: &NicKey, value: &str) -> Result<(), NicError> {
    check_value(key, value)?;
    let read_fail = |e| classify(e, iface, key, None, || None);
    match key {
        NicKey::Offload(_) | NicKey::Feature(_) => {
            set_feature(et, iface, key, value, parse_bool(key, value)?)
        }
        NicKey::Coalesce(field) => {
            let want = if field.is_bool() {
                u32::from(parse_bool(key, value)?)
            } else {
                parse_u32(key, value)?
            };
            let mut c = et.get_coalesce(iface).map_err(read_fail)?;
            if *field.slot(&mut c) == want {
                return Ok(());
            }
            *field.slot(&mut c) = want;
            et.set_coalesce(iface, &c)
                .map_err(|e| classify(e, iface, key, Some(value), || None))
        }
        NicKey::Ring(field) => {
            let want = parse_u32(key, value)?;
            let mut r = et.get_ringparam(iface).map_err(read_fail)?;
            let (current, max) = field.read(&r);
            if current == want {
                return Ok(());
            }
            if max == 0 {
                return Err(classify_unsupported(iface, key));
            }
            *field.slot(&mut r) = want;
            et.set_ringparam(iface, &r).map_err(|e| {
                classify(e, iface, key, Some(value), || {
                    Some(if want > max {
                        format!("the maximum is {max}")
                    } else {
                        format!(
                            "the driver refused it (its maximum is {max}; it may have a minimum)"
                        )
                    })
                })
            })
        }
        NicKey::Channels(field) => {
            let want = parse_u32(key, value)?;
            let mut c = et.get_channels(iface).map_err(read_fail)?;
            let (current, max) = field.read(&c);
            if current == want {
                return Ok(());
            }
            if max == 0 {
                return Err(classify_unsupported(iface, key));
            }
            *field.slot(&mut c) = want;
            et.set_channels(iface, &c).map_err(|e| {
                classify(e, iface, key, Some(value), || {
                    Some(if want > max {
                        format!("the maximum is {max}")
                    } else {
                        "at least one RX and one TX channel (or one combined) must \
                         remain, and no fewer queues than the RSS table or an AF_XDP \
                         socket uses"
                            .to_owned()
                    })
                })
            })
        }
        NicKey::Pause(field) => {
            let want = u32::from(parse_bool(key, value)?);
            let mut p = et.get_pauseparam(iface).map_err(read_fail)?;
            if *field.slot(&mut p) == want {
                return Ok(());
            }
            *field.slot(&mut p) = want;
            et.set_pauseparam(iface, &p)
                .map_err(|e| classify(e, iface, key, Some(value), || None))
        }
        NicKey::RssEqual => set_rss(et, iface, key, value),
    }
}

fn classify_unsupported(iface: &str, key: &NicKey) -> NicError {
    NicError::NotSupported {
        iface: iface.to_owned(),
        key: key.clone(),
    }
}

fn set_feature(
    et: &Ethtool,
    iface: &str,
    key: &NicKey,
    value: &str,
    want: bool,
) -> Result<(), NicError> {
    let fail = |e| classify(e, iface, key, Some(value), || None);
    let features = et.get_features(iface).map_err(fail)?;
    let members = feature_members(&features, iface, key)?;
    let changeable: Vec<&FeatureState<'_>> = members.iter().filter(|f| f.changeable).collect();
    if changeable.is_empty() {
        let current = members.iter().any(|f| f.active);
        return if current == want {
            Ok(())
        } else {
            Err(classify_unsupported(iface, key))
        };
    }
    let mut change = features.change();
    for f in &changeable {
        change.set(f.index, want);
    }
    let outcome = et.set_features(iface, &change).map_err(fail)?;
    if !outcome.wish() {
        return Ok(());
    }
    let after = et.get_features(iface).map_err(fail)?;
    let stuck: Vec<&str> = changeable
        .iter()
        .filter(|f| after.get(f.name).is_some_and(|a| a.active != want))
        .map(|f| f.name)
        .collect();
    Err(NicError::Rejected {
        iface: iface.to_owned(),
        key: key.clone(),
        value: value.to_owned(),
        errno: None,
        reason: format!(
            "the kernel recorded the request, but {} stayed {}: a feature it depends \
             on is off (TSO needs sg and tx-checksum; GSO needs sg) or the driver \
             refused",
            if stuck.is_empty() {
                "some features".to_owned()
            } else {
                stuck.join(", ")
            },
            on_off(!want)
        ),
    })
}

fn set_rss(et: &Ethtool, iface: &str, key: &NicKey, value: &str) -> Result<(), NicError> {
    let current = et
        .get_rxfh_indir(iface)
        .map_err(|e| classify(e, iface, key, None, || None))?;
    if current.is_empty() {
        return Err(classify_unsupported(iface, key));
    }
    let table = match parse_rss(key, value)? {
        RssValue::Equal(n) => rss_equal_table(current.len(), n),
        RssValue::Table(t) if t.len() == current.len() => t,
        RssValue::Table(t) => {
            return Err(NicError::BadValue {
                key: key.clone(),
                value: value.to_owned(),
                expected: format!(
                    "a table of exactly {} entries (got {}), or a number of RX queues",
                    current.len(),
                    t.len()
                ),
            });
        }
    };
    if table == current {
        return Ok(());
    }
    et.set_rxfh_indir(iface, &table).map_err(|e| {
        classify(e, iface, key, Some(value), || {
            et.get_channels(iface).ok().map(|c| {
                format!(
                    "the device has {} RX queues (channels rx + combined)",
                    c.rx_count + c.combined_count
                )
            })
        })
    })
}

/// A fact of the audit: its value, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact<T> {
    /// The driver reported it.
    Value(T),
    /// The driver does not offer this query (`EOPNOTSUPP`). Serialized as
    /// the string `"not supported by the driver"`.
    NotSupported,
    /// The query failed otherwise. Serialized as `{"error": "..."}`.
    Failed(String),
}

impl<T> Fact<T> {
    /// The value, if there is one.
    #[must_use]
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            Self::NotSupported | Self::Failed(_) => None,
        }
    }

    fn from_result<U>(r: Result<U, SyscallError>, f: impl FnOnce(U) -> T) -> Self {
        match r {
            Ok(v) => Self::Value(f(v)),
            Err(e) if e.errno() == Some(errno::EOPNOTSUPP) => Self::NotSupported,
            Err(e) => Self::Failed(e.to_string()),
        }
    }
}

/// The marker a [`Fact::NotSupported`] serializes as.
pub const NOT_SUPPORTED: &str = "not supported by the driver";

impl<T: Serialize> Serialize for Fact<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Failed<'a> {
            error: &'a str,
        }
        match self {
            Self::Value(v) => v.serialize(serializer),
            Self::NotSupported => serializer.serialize_str(NOT_SUPPORTED),
            Self::Failed(error) => Failed { error }.serialize(serializer),
        }
    }
}

/// The driver of an interface (`ethtool -i`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverFacts {
    /// Driver name, e.g. `"veth"`, `"ixgbe"`.
    pub driver: String,
    /// Driver version.
    pub version: String,
    /// Firmware version (empty if none).
    pub firmware: String,
    /// Bus address, e.g. `"0000:00:03.0"` (empty if none).
    pub bus_info: String,
}

/// A friendly offload group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OffloadFacts {
    /// Any member feature is on.
    pub on: bool,
    /// No member can be changed (`[fixed]` in `ethtool -k`).
    pub fixed: bool,
}

/// One kernel feature's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeatureFacts {
    /// On now.
    pub on: bool,
    /// Requested on (differs from `on` when a dependency is off).
    pub requested: bool,
    /// The driver does not let it change.
    pub fixed: bool,
}

/// Interrupt coalescing (`ethtool -c`); fields the driver does not
/// implement read 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CoalesceFacts {
    /// µs before an RX interrupt.
    pub rx_usecs: u32,
    /// Packets before an RX interrupt.
    pub rx_frames: u32,
    /// µs before a TX-completion interrupt.
    pub tx_usecs: u32,
    /// Packets before a TX-completion interrupt.
    pub tx_frames: u32,
    /// Adaptive RX coalescing.
    pub adaptive_rx: bool,
    /// Adaptive TX coalescing.
    pub adaptive_tx: bool,
}

/// Ring sizes and maximums (`ethtool -g`); a maximum of 0 means no such ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RingFacts {
    /// RX ring entries.
    pub rx: u32,
    /// Largest RX ring.
    pub rx_max: u32,
    /// TX ring entries.
    pub tx: u32,
    /// Largest TX ring.
    pub tx_max: u32,
    /// RX mini ring entries.
    pub rx_mini: u32,
    /// Largest RX mini ring.
    pub rx_mini_max: u32,
    /// RX jumbo ring entries.
    pub rx_jumbo: u32,
    /// Largest RX jumbo ring.
    pub rx_jumbo_max: u32,
}

/// Channel counts and maximums (`ethtool -l`); a maximum of 0 means no such
/// channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChannelFacts {
    /// RX-only channels.
    pub rx: u32,
    /// Most RX-only channels.
    pub rx_max: u32,
    /// TX-only channels.
    pub tx: u32,
    /// Most TX-only channels.
    pub tx_max: u32,
    /// Other channels.
    pub other: u32,
    /// Most other channels.
    pub other_max: u32,
    /// Combined channels.
    pub combined: u32,
    /// Most combined channels.
    pub combined_max: u32,
}

/// RSS configuration (`ethtool -x`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RssFacts {
    /// Entries in the indirection table.
    pub table_size: usize,
    /// The number of queues the table spreads over equally, if it does.
    pub equal: Option<u32>,
    /// The indirection table: bucket `i` → RX queue.
    pub indirection: Vec<u32>,
    /// The hash key as colon-separated hex bytes (`ethtool -x` style), if
    /// the device exposes it.
    pub hash_key: Option<String>,
    /// The hash function (`"toeplitz"`, `"xor"`, `"crc32"`), if reported.
    pub hash_function: Option<String>,
}

/// Flow control (`ethtool -a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PauseFacts {
    /// Pause use is autonegotiated.
    pub autoneg: bool,
    /// Received pause frames are honoured.
    pub rx: bool,
    /// Pause frames are sent.
    pub tx: bool,
}

/// Timestamping capabilities (`ethtool -T`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimestampingFacts {
    /// Supported `SO_TIMESTAMPING` flags by name, e.g. `"software-receive"`.
    pub capabilities: Vec<String>,
    /// The same as a bit mask.
    pub so_timestamping: u32,
    /// Hardware timestamps in both directions are available.
    pub hardware: bool,
    /// PTP hardware clock index (`/dev/ptpN`), if any.
    pub phc_index: Option<u32>,
    /// Hardware TX timestamp types, e.g. `"on"`.
    pub tx_types: Vec<String>,
    /// Hardware RX filters, e.g. `"all"`.
    pub rx_filters: Vec<String>,
}

/// Everything the audit reads about one interface. Serializes to JSON for
/// the CLI; each query's result is a [`Fact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicReport {
    /// The interface.
    pub iface: String,
    /// Its driver.
    pub driver: Fact<DriverFacts>,
    /// The NUMA node of its device, if it has one (from sysfs).
    pub numa_node: Option<u32>,
    /// The friendly offload groups (`tso`, `gro`, ...), by name.
    pub offloads: Fact<BTreeMap<String, OffloadFacts>>,
    /// Every kernel feature, by name.
    pub features: Fact<BTreeMap<String, FeatureFacts>>,
    /// Interrupt coalescing.
    pub coalesce: Fact<CoalesceFacts>,
    /// Ring sizes.
    pub rings: Fact<RingFacts>,
    /// Channel counts.
    pub channels: Fact<ChannelFacts>,
    /// RSS.
    pub rss: Fact<RssFacts>,
    /// Flow control.
    pub pause: Fact<PauseFacts>,
    /// Timestamping capabilities.
    pub timestamping: Fact<TimestampingFacts>,
}

/// The NUMA node of `iface`'s device, from
/// `<sysfs>/class/net/<iface>/device/numa_node` (`sysfs` is normally
/// `/sys`). None when absent (virtual devices), `-1` (no affinity), or
/// unreadable.
#[must_use]
pub fn numa_node(sysfs: &Path, iface: &str) -> Option<u32> {
    if iface.is_empty() || iface.contains('/') || iface == "." || iface == ".." {
        return None;
    }
    let path = sysfs.join("class/net").join(iface).join("device/numa_node");
    let text = std::fs::read_to_string(path).ok()?;
    text.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| u32::try_from(n).ok())
}

fn hex_key(key: &[u8]) -> String {
    key.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads every fact of `iface`: driver, offloads and features, coalescing,
/// rings, channels, RSS, flow control, timestamping, and the NUMA node from
/// `sysfs` (normally `/sys`; a fake tree in tests). A query the driver does
/// not offer becomes [`Fact::NotSupported`], any other failed query
/// [`Fact::Failed`]; neither stops the audit.
///
/// # Errors
/// Only [`NicError::NoSuchInterface`] (or [`NicError::Other`] if even the
/// feature list cannot be read): an audit of a missing interface is a
/// mistake to report, not a report.
pub fn audit(et: &Ethtool, iface: &str, sysfs: &Path) -> Result<NicReport, NicError> {
    let any = NicKey::Feature(String::new());
    let features = et
        .get_features(iface)
        .map_err(|e| classify(e, iface, &any, None, || None))?;
    let offloads = Offload::ALL
        .into_iter()
        .filter_map(|o| {
            let members: Vec<_> = features.iter().filter(|f| o.contains(f.name)).collect();
            (!members.is_empty()).then(|| {
                (
                    o.name().to_owned(),
                    OffloadFacts {
                        on: members.iter().any(|f| f.active),
                        fixed: members.iter().all(|f| !f.changeable),
                    },
                )
            })
        })
        .collect();
    let feature_map = features
        .iter()
        .map(|f| {
            (
                f.name.to_owned(),
                FeatureFacts {
                    on: f.active,
                    requested: f.requested,
                    fixed: !f.changeable,
                },
            )
        })
        .collect();
    let hash_names = et.get_strings(iface, StringSet::RssHashFuncs).ok();
    Ok(NicReport {
        iface: iface.to_owned(),
        driver: Fact::from_result(et.driver_info(iface), |d| DriverFacts {
            driver: d.driver,
            version: d.version,
            firmware: d.fw_version,
            bus_info: d.bus_info,
        }),
        numa_node: numa_node(sysfs, iface),
        offloads: Fact::Value(offloads),
        features: Fact::Value(feature_map),
        coalesce: Fact::from_result(et.get_coalesce(iface), |c| CoalesceFacts {
            rx_usecs: c.rx_coalesce_usecs,
            rx_frames: c.rx_max_coalesced_frames,
            tx_usecs: c.tx_coalesce_usecs,
            tx_frames: c.tx_max_coalesced_frames,
            adaptive_rx: c.use_adaptive_rx_coalesce != 0,
            adaptive_tx: c.use_adaptive_tx_coalesce != 0,
        }),
        rings: Fact::from_result(et.get_ringparam(iface), |r| RingFacts {
            rx: r.rx_pending,
            rx_max: r.rx_max_pending,
            tx: r.tx_pending,
            tx_max: r.tx_max_pending,
            rx_mini: r.rx_mini_pending,
            rx_mini_max: r.rx_mini_max_pending,
            rx_jumbo: r.rx_jumbo_pending,
            rx_jumbo_max: r.rx_jumbo_max_pending,
        }),
        channels: Fact::from_result(et.get_channels(iface), |c| ChannelFacts {
            rx: c.rx_count,
            rx_max: c.max_rx,
            tx: c.tx_count,
            tx_max: c.max_tx,
            other: c.other_count,
            other_max: c.max_other,
            combined: c.combined_count,
            combined_max: c.max_combined,
        }),
        rss: Fact::from_result(et.get_rss(iface), |r| RssFacts {
            table_size: r.indir.len(),
            equal: rss_equal_of(&r.indir),
            hash_key: (!r.key.is_empty()).then(|| hex_key(&r.key)),
            hash_function: (r.hfunc != 0).then(|| {
                let bit = r.hfunc.trailing_zeros() as usize;
                hash_names
                    .as_ref()
                    .and_then(|names| names.get(bit))
                    .cloned()
                    .unwrap_or_else(|| format!("bit-{bit}"))
            }),
            indirection: r.indir,
        }),
        pause: Fact::from_result(et.get_pauseparam(iface), |p| PauseFacts {
            autoneg: p.autoneg != 0,
            rx: p.rx_pause != 0,
            tx: p.tx_pause != 0,
        }),
        timestamping: Fact::from_result(et.get_ts_info(iface), |t| TimestampingFacts {
            capabilities: t.so_timestamping_names(),
            so_timestamping: t.so_timestamping,
            hardware: t.hardware(),
            phc_index: t.phc_index,
            tx_types: t.tx_type_names(),
            rx_filters: t.rx_filter_names(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fixed_key_prints_and_parses_back() {
        let keys = NicKey::fixed();
        assert_eq!(keys.len(), 8 + 6 + 2 + 4 + 3 + 1);
        for key in keys {
            let text = key.to_string();
            assert_eq!(text.parse::<NicKey>().unwrap(), key, "{text}");
            assert!(NicKey::ACCEPTED.contains(text.split('.').next().unwrap()));
        }
        let samples = [
            ("feature.gro", NicKey::Offload(Offload::Gro)),
            ("feature.tso", NicKey::Offload(Offload::Tso)),
            ("feature.rx-checksum", NicKey::Offload(Offload::RxChecksum)),
            ("feature.rx-gro-hw", NicKey::Feature("rx-gro-hw".into())),
            (
                "feature.tx-udp_tnl-segmentation",
                NicKey::Feature("tx-udp_tnl-segmentation".into()),
            ),
            (
                "coalesce.rx-usecs",
                NicKey::Coalesce(CoalesceField::RxUsecs),
            ),
            (
                "coalesce.adaptive-tx",
                NicKey::Coalesce(CoalesceField::AdaptiveTx),
            ),
            ("ring.rx", NicKey::Ring(RingField::Rx)),
            (
                "channels.combined",
                NicKey::Channels(ChannelField::Combined),
            ),
            ("pause.autoneg", NicKey::Pause(PauseField::Autoneg)),
            ("rss.equal", NicKey::RssEqual),
        ];
        for (text, key) in samples {
            assert_eq!(text.parse::<NicKey>().unwrap(), key);
            assert_eq!(key.to_string(), text);
        }
    }

    #[test]
    fn bad_keys_list_the_accepted_ones() {
        for bad in [
            "",
            "gro",
            "feature.",
            "feature.GRO",
            "feature.rx gro",
            "feature.-x",
            "feature.abcdefghijklmnopqrstuvwxyzabcdef",
            "coalesce.rx-usec",
            "ring.rx-mini",
            "channels.all",
            "pause.on",
            "rss.queues",
            "rss",
            "nic.gro",
        ] {
            let err = bad.parse::<NicKey>().unwrap_err();
            assert_eq!(err.input, bad);
            let msg = err.to_string();
            assert!(msg.contains(&format!("`{bad}`")), "{msg}");
            for k in [
                "feature.{tso",
                "coalesce.{rx-usecs",
                "ring.{rx,tx}",
                "rss.equal",
            ] {
                assert!(msg.contains(k), "{msg}");
            }
        }
    }

    #[test]
    fn keys_serialize_as_text() {
        let keys = vec![NicKey::Offload(Offload::Sg), NicKey::RssEqual];
        let json = serde_json::to_string(&keys).unwrap();
        assert_eq!(json, r#"["feature.sg","rss.equal"]"#);
        let back: Vec<NicKey> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, keys);
        let err = serde_json::from_str::<NicKey>(r#""ring.big""#).unwrap_err();
        assert!(err.to_string().contains("accepted"), "{err}");
    }

    #[test]
    fn values_are_checked_before_any_request() {
        let gro = NicKey::Offload(Offload::Gro);
        let ring = NicKey::Ring(RingField::Rx);
        let adaptive = NicKey::Coalesce(CoalesceField::AdaptiveRx);
        assert!(check_value(&gro, "on").is_ok() && check_value(&gro, "off").is_ok());
        assert!(check_value(&adaptive, "on").is_ok());
        assert!(check_value(&ring, "0").is_ok() && check_value(&ring, "4294967295").is_ok());
        assert!(check_value(&NicKey::RssEqual, "4").is_ok());
        assert!(check_value(&NicKey::RssEqual, "0,1,0,1").is_ok());
        for (key, bad) in [
            (&gro, "yes"),
            (&gro, "ON"),
            (&gro, ""),
            (&adaptive, "1"),
            (&ring, "-1"),
            (&ring, "+4"),
            (&ring, "4294967296"),
            (&ring, "1k"),
            (&ring, "on"),
            (&NicKey::RssEqual, "0"),
            (&NicKey::RssEqual, "0,x"),
            (&NicKey::RssEqual, ""),
        ] {
            let err = check_value(key, bad).unwrap_err();
            let NicError::BadValue { expected, .. } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(expected, key.expected());
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        // set() checks before it opens anything: no interface needed.
        let et = Ethtool::open().unwrap();
        let err = set(&et, "no-such-if0", &ring, "lots").unwrap_err();
        assert!(matches!(err, NicError::BadValue { .. }), "{err:?}");
    }

    #[test]
    fn rss_equal_tables() {
        assert_eq!(rss_equal_table(8, 3), [0, 1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(rss_equal_table(4, 0), [0, 0, 0, 0]);
        assert_eq!(rss_equal_of(&rss_equal_table(128, 4)), Some(4));
        assert_eq!(rss_equal_of(&[0, 0, 0]), Some(1));
        assert_eq!(rss_equal_of(&[1, 0, 1, 0]), None);
        assert_eq!(rss_equal_of(&[0, 1, 1, 0]), None);
        assert_eq!(rss_equal_of(&[]), None);
        assert_eq!(rss_text(&[0, 1, 0, 1]), "2");
        assert_eq!(rss_text(&[1, 0, 1, 0]), "1,0,1,0");
        let key = NicKey::RssEqual;
        assert_eq!(parse_rss(&key, "3").unwrap(), RssValue::Equal(3));
        assert_eq!(
            parse_rss(&key, "1, 0,1,0").unwrap(),
            RssValue::Table(vec![1, 0, 1, 0])
        );
    }

    #[test]
    fn offload_groups_match_kernel_names() {
        let names = [
            ("tx-tcp-segmentation", Offload::Tso),
            ("tx-tcp6-segmentation", Offload::Tso),
            ("tx-tcp-ecn-segmentation", Offload::Tso),
            ("tx-tcp-mangleid-segmentation", Offload::Tso),
            ("tx-generic-segmentation", Offload::Gso),
            ("rx-gro", Offload::Gro),
            ("rx-lro", Offload::Lro),
            ("tx-scatter-gather", Offload::Sg),
            ("tx-scatter-gather-fraglist", Offload::Sg),
            ("rx-checksum", Offload::RxChecksum),
            ("tx-checksum-ip-generic", Offload::TxChecksum),
            ("tx-checksum-sctp", Offload::TxChecksum),
            ("rx-ntuple-filter", Offload::Ntuple),
        ];
        for (name, group) in names {
            for o in Offload::ALL {
                assert_eq!(o.contains(name), o == group, "{name} in {o:?}");
            }
        }
        for other in [
            "rx-gro-hw",
            "rx-gro-list",
            "tx-udp-segmentation",
            "tx-gso-list",
            "tx-tcp-accecn-segmentation",
        ] {
            assert!(
                !Offload::ALL.into_iter().any(|o| o.contains(other)),
                "{other}"
            );
        }
    }

    #[test]
    fn facts_serialize_with_a_marker() {
        let v: Fact<u32> = Fact::Value(3);
        let n: Fact<u32> = Fact::NotSupported;
        let f: Fact<u32> = Fact::Failed("boom".into());
        assert_eq!(serde_json::to_string(&v).unwrap(), "3");
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#""not supported by the driver""#
        );
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"error":"boom"}"#);
        assert_eq!(v.value(), Some(&3));
        assert_eq!(n.value(), None);
    }

    /// A private fake sysfs tree under the temp directory, removed on drop.
    struct FakeSys(std::path::PathBuf);

    impl FakeSys {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "hftnet-nic-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn numa(&self, iface: &str, text: &str) {
            let dev = self.0.join("class/net").join(iface).join("device");
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::write(dev.join("numa_node"), text).unwrap();
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn numa_node_from_a_fake_sysfs() {
        let sys = FakeSys::new("numa");
        sys.numa("eth0", "1\n");
        sys.numa("eth1", "-1\n");
        sys.numa("eth2", "garbage");
        assert_eq!(numa_node(&sys.0, "eth0"), Some(1));
        assert_eq!(numa_node(&sys.0, "eth1"), None, "-1 is no node");
        assert_eq!(numa_node(&sys.0, "eth2"), None);
        assert_eq!(numa_node(&sys.0, "veth0"), None, "absent");
        assert_eq!(numa_node(&sys.0, "../eth0"), None);
        assert_eq!(numa_node(&sys.0, ".."), None);
    }

    /// Reading lo in the default namespace changes nothing and needs no
    /// privilege.
    #[test]
    fn lo_reads_and_audits_without_privilege() {
        let et = Ethtool::open().unwrap();
        for key in NicKey::fixed() {
            let value = get(&et, "lo", &key).unwrap_or_else(|e| panic!("{key}: {e}"));
            match key {
                NicKey::Offload(_) => assert!(matches!(value.as_deref(), Some("on" | "off"))),
                // The loopback driver has none of these.
                _ => assert_eq!(value, None, "{key}"),
            }
        }
        let err = get(&et, "lo", &NicKey::Feature("no-such-feature".into())).unwrap_err();
        assert!(matches!(err, NicError::UnknownFeature { .. }), "{err:?}");
        let keys = keys(&et, "lo").unwrap();
        assert!(keys.contains(&NicKey::Feature("rx-gro-hw".into())));
        assert!(
            !keys.contains(&NicKey::Feature("rx-checksum".into())),
            "alias only"
        );

        let sys = FakeSys::new("lo");
        let report = audit(&et, "lo", &sys.0).unwrap();
        assert_eq!(report.driver, Fact::NotSupported);
        assert_eq!(report.coalesce, Fact::NotSupported);
        assert_eq!(report.numa_node, None);
        let ts = report.timestamping.value().unwrap();
        assert!(ts.capabilities.contains(&"software-receive".to_owned()));
        assert!(!report.features.value().unwrap().is_empty());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rings"], NOT_SUPPORTED);
        assert_eq!(json["offloads"]["rx-checksum"]["fixed"], true);

        let err = audit(&et, "no-such-if0", &sys.0).unwrap_err();
        assert!(matches!(err, NicError::NoSuchInterface { .. }), "{err:?}");
        assert!(err.to_string().contains("ip link"), "{err}");
        let err = get(&et, "no-such-if0", &NicKey::RssEqual).unwrap_err();
        assert!(matches!(err, NicError::NoSuchInterface { .. }), "{err:?}");
    }
}
