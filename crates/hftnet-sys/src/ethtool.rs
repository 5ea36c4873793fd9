//! The ethtool ioctl (`SIOCETHTOOL`): reading and changing a network
//! interface's offload features, interrupt coalescing, ring sizes, channel
//! counts, RSS indirection, flow control and timestamping capabilities, and
//! asking which driver runs it.
//!
//! Layer: syscall wrappers for the lab (GRO on veth, so busy polling finds a
//! NAPI context) and for host tuning (`hftnet tune audit|apply|revert`).
//! Requests go through an `AF_INET` datagram socket; the kernel resolves the
//! interface name in the network namespace *of that socket*, i.e. of the
//! thread that opened the [`Ethtool`] handle (the free functions open one in
//! the calling thread's namespace). A handle opened inside a lab namespace
//! keeps addressing that namespace from any thread.
//!
//! Invariants: every fixed-size request is a `repr(C)` struct starting with
//! its `u32` command, laid out exactly as in `<linux/ethtool.h>` (sizes are
//! checked at compile time), and the kernel reads and writes only within it.
//! Variable-length requests (string sets, feature words, the RSS indirection
//! table and hash key) are a `Vec<u32>` sized from a first query, and the
//! sizes written in their header never exceed that buffer. Every failure
//! names the command, e.g. `"ioctl(SIOCETHTOOL, ETHTOOL_SGRO)"`; a device
//! without the operation gives `EOPNOTSUPP` ([`SyscallError::errno`]). The
//! fixed-size getters and setters do not allocate; [`DriverInfo`], the
//! string sets, [`Features`] and the RSS wrappers do (each says so).
//!
//! Must never: change a setting other than the one asked for, or touch an
//! interface the caller did not name. Changing anything needs
//! `CAP_NET_ADMIN` in the socket's namespace (`EPERM` otherwise); reading
//! does not.
//!
//! Two ways to reach offload features: the legacy per-feature commands
//! ([`Ethtool::get_feature`] / [`Ethtool::set_feature`] with [`Feature`],
//! each covering a group such as all TSO variants), and
//! `ETHTOOL_GFEATURES` / `ETHTOOL_SFEATURES` with the `ETH_SS_FEATURES`
//! string set ([`Ethtool::get_features`] / [`Ethtool::set_features`]),
//! which reach every feature by its kernel name (`rx-gro-hw`,
//! `rx-udp-gro-forwarding`, ...) and say which ones the driver lets change.
//!
//! # References
//! - `include/uapi/linux/ethtool.h`, `net/ethtool/ioctl.c` (Linux 6.18).
//! - `ethtool(8)`, whose `-k/-K`, `-c/-C`, `-g/-G`, `-l/-L`, `-a/-A`,
//!   `-x/-X`, `-T` and `-i` options these commands back.

use std::fmt;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Result, SyscallError, cvt};

/// `SIOCETHTOOL`: the socket ioctl carrying every ethtool command.
pub const SIOCETHTOOL: libc::c_ulong = 0x8946;

/// `ETHTOOL_GDRVINFO`: driver name, version, firmware and bus information.
pub const ETHTOOL_GDRVINFO: u32 = 0x03;
/// `ETHTOOL_GRXCSUM`: is receive checksum offload on?
pub const ETHTOOL_GRXCSUM: u32 = 0x14;
/// `ETHTOOL_SRXCSUM`: turn receive checksum offload on or off.
pub const ETHTOOL_SRXCSUM: u32 = 0x15;
/// `ETHTOOL_GTXCSUM`: is transmit checksum offload on?
pub const ETHTOOL_GTXCSUM: u32 = 0x16;
/// `ETHTOOL_STXCSUM`: turn transmit checksum offload on or off.
pub const ETHTOOL_STXCSUM: u32 = 0x17;
/// `ETHTOOL_GSG`: is scatter-gather on?
pub const ETHTOOL_GSG: u32 = 0x18;
/// `ETHTOOL_SSG`: turn scatter-gather on or off.
pub const ETHTOOL_SSG: u32 = 0x19;
/// `ETHTOOL_GTSO`: is TCP segmentation offload on?
pub const ETHTOOL_GTSO: u32 = 0x1e;
/// `ETHTOOL_STSO`: turn TCP segmentation offload on or off.
pub const ETHTOOL_STSO: u32 = 0x1f;
/// `ETHTOOL_GGSO`: is generic segmentation offload on?
pub const ETHTOOL_GGSO: u32 = 0x23;
/// `ETHTOOL_SGSO`: turn generic segmentation offload on or off.
pub const ETHTOOL_SGSO: u32 = 0x24;
/// `ETHTOOL_GGRO`: is generic receive offload on?
pub const ETHTOOL_GGRO: u32 = 0x2b;
/// `ETHTOOL_SGRO`: turn generic receive offload on or off.
pub const ETHTOOL_SGRO: u32 = 0x2c;
/// `ETHTOOL_GCOALESCE`: interrupt coalescing parameters (`ethtool -c`).
pub const ETHTOOL_GCOALESCE: u32 = 0x0e;
/// `ETHTOOL_SCOALESCE`: change interrupt coalescing (`ethtool -C`).
pub const ETHTOOL_SCOALESCE: u32 = 0x0f;
/// `ETHTOOL_GRINGPARAM`: ring sizes and their maximums (`ethtool -g`).
pub const ETHTOOL_GRINGPARAM: u32 = 0x10;
/// `ETHTOOL_SRINGPARAM`: change ring sizes (`ethtool -G`).
pub const ETHTOOL_SRINGPARAM: u32 = 0x11;
/// `ETHTOOL_GPAUSEPARAM`: flow control (pause frame) settings (`ethtool -a`).
pub const ETHTOOL_GPAUSEPARAM: u32 = 0x12;
/// `ETHTOOL_SPAUSEPARAM`: change flow control (`ethtool -A`).
pub const ETHTOOL_SPAUSEPARAM: u32 = 0x13;
/// `ETHTOOL_GSTRINGS`: the strings of a string set.
pub const ETHTOOL_GSTRINGS: u32 = 0x1b;
/// `ETHTOOL_GSSET_INFO`: how many strings string sets hold.
pub const ETHTOOL_GSSET_INFO: u32 = 0x37;
/// `ETHTOOL_GRXFHINDIR`: the RSS indirection table (`ethtool -x`).
pub const ETHTOOL_GRXFHINDIR: u32 = 0x38;
/// `ETHTOOL_SRXFHINDIR`: change the RSS indirection table (`ethtool -X`).
pub const ETHTOOL_SRXFHINDIR: u32 = 0x39;
/// `ETHTOOL_GFEATURES`: every offload feature's state, as bit words.
pub const ETHTOOL_GFEATURES: u32 = 0x3a;
/// `ETHTOOL_SFEATURES`: request offload features by bit (`ethtool -K`).
pub const ETHTOOL_SFEATURES: u32 = 0x3b;
/// `ETHTOOL_GCHANNELS`: queue (channel) counts and maximums (`ethtool -l`).
pub const ETHTOOL_GCHANNELS: u32 = 0x3c;
/// `ETHTOOL_SCHANNELS`: change queue counts (`ethtool -L`).
pub const ETHTOOL_SCHANNELS: u32 = 0x3d;
/// `ETHTOOL_GET_TS_INFO`: timestamping capabilities and PHC (`ethtool -T`).
pub const ETHTOOL_GET_TS_INFO: u32 = 0x41;
/// `ETHTOOL_GRSSH`: RSS indirection table, hash key and hash function.
pub const ETHTOOL_GRSSH: u32 = 0x46;

/// `ETH_SS_FEATURES`: the string set naming feature bits.
pub const ETH_SS_FEATURES: u32 = 4;
/// `ETH_SS_RSS_HASH_FUNCS`: the string set naming RSS hash function bits.
pub const ETH_SS_RSS_HASH_FUNCS: u32 = 5;
/// `ETH_GSTRING_LEN`: bytes per string in a string set (NUL-padded).
pub const ETH_GSTRING_LEN: usize = 32;

/// `ETHTOOL_F_UNSUPPORTED`: `ETHTOOL_SFEATURES` ignored bits the device
/// cannot change.
pub const ETHTOOL_F_UNSUPPORTED: u32 = 1 << 0;
/// `ETHTOOL_F_WISH`: `ETHTOOL_SFEATURES` recorded the request, but the
/// resulting state differs from it (a dependency is off, or the driver
/// refused).
pub const ETHTOOL_F_WISH: u32 = 1 << 1;
/// `ETHTOOL_F_COMPAT`: `ETHTOOL_SFEATURES` went through compatibility code.
pub const ETHTOOL_F_COMPAT: u32 = 1 << 2;

/// `SOF_TIMESTAMPING_*` flag names by bit, as the kernel's
/// `sof_timestamping_names` (what `ethtool -T` prints).
pub const SOF_TIMESTAMPING_NAMES: [&str; 18] = [
    "hardware-transmit",
    "software-transmit",
    "hardware-receive",
    "software-receive",
    "software-system-clock",
    "hardware-legacy-clock",
    "hardware-raw-clock",
    "option-id",
    "sched-transmit",
    "ack-transmit",
    "option-cmsg",
    "option-tsonly",
    "option-stats",
    "option-pktinfo",
    "option-tx-swhw",
    "bind-phc",
    "option-id-tcp",
    "option-rx-filter",
];
/// `HWTSTAMP_TX_*` names by value, as the kernel's `ts_tx_type_names`.
pub const HWTSTAMP_TX_NAMES: [&str; 4] = ["off", "on", "onestep-sync", "onestep-p2p"];
/// `HWTSTAMP_FILTER_*` names by value, as the kernel's `ts_rx_filter_names`.
pub const HWTSTAMP_FILTER_NAMES: [&str; 16] = [
    "none",
    "all",
    "some",
    "ptpv1-l4-event",
    "ptpv1-l4-sync",
    "ptpv1-l4-delay-req",
    "ptpv2-l4-event",
    "ptpv2-l4-sync",
    "ptpv2-l4-delay-req",
    "ptpv2-l2-event",
    "ptpv2-l2-sync",
    "ptpv2-l2-delay-req",
    "ptpv2-event",
    "ptpv2-sync",
    "ptpv2-delay-req",
    "ntp-all",
];

/// The `errno` values ethtool requests fail with, for callers that compare
/// [`SyscallError::errno`] without depending on `libc`.
pub mod errno {
    /// The device lacks the operation, or cannot change that setting.
    pub const EOPNOTSUPP: i32 = libc::EOPNOTSUPP;
    /// No interface of that name in the socket's network namespace.
    pub const ENODEV: i32 = libc::ENODEV;
    /// A value the kernel or the driver rejects (above a maximum, ...).
    pub const EINVAL: i32 = libc::EINVAL;
    /// A value out of the driver's range.
    pub const ERANGE: i32 = libc::ERANGE;
    /// Changing settings needs `CAP_NET_ADMIN`.
    pub const EPERM: i32 = libc::EPERM;
    /// Permission denied.
    pub const EACCES: i32 = libc::EACCES;
    /// The device is busy (e.g. firmware flashing, AF_XDP on a queue).
    pub const EBUSY: i32 = libc::EBUSY;
}

/// An offload feature with a legacy get/set command pair (`ethtool -k` /
/// `ethtool -K` names in the docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feature {
    /// Generic receive offload (`gro`, `generic-receive-offload`). On veth
    /// it also gives the receive queue a NAPI context (kernel 5.13+).
    Gro,
    /// Generic segmentation offload (`gso`).
    Gso,
    /// TCP segmentation offload (`tso`); needs scatter-gather.
    Tso,
    /// Scatter-gather (`sg`).
    Sg,
    /// Receive checksum offload (`rx`, `rx-checksumming`).
    RxCsum,
    /// Transmit checksum offload (`tx`, `tx-checksumming`).
    TxCsum,
}

impl Feature {
    /// Every feature, in declaration order.
    pub const ALL: [Self; 6] = [
        Self::Gro,
        Self::Gso,
        Self::Tso,
        Self::Sg,
        Self::RxCsum,
        Self::TxCsum,
    ];

    /// The short name `ethtool -K` accepts, e.g. `"gro"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Gro => "gro",
            Self::Gso => "gso",
            Self::Tso => "tso",
            Self::Sg => "sg",
            Self::RxCsum => "rx",
            Self::TxCsum => "tx",
        }
    }

    /// The get command and the call named when it fails.
    const fn get_cmd(self) -> (u32, &'static str) {
        match self {
            Self::Gro => (ETHTOOL_GGRO, "ioctl(SIOCETHTOOL, ETHTOOL_GGRO)"),
            Self::Gso => (ETHTOOL_GGSO, "ioctl(SIOCETHTOOL, ETHTOOL_GGSO)"),
            Self::Tso => (ETHTOOL_GTSO, "ioctl(SIOCETHTOOL, ETHTOOL_GTSO)"),
            Self::Sg => (ETHTOOL_GSG, "ioctl(SIOCETHTOOL, ETHTOOL_GSG)"),
            Self::RxCsum => (ETHTOOL_GRXCSUM, "ioctl(SIOCETHTOOL, ETHTOOL_GRXCSUM)"),
            Self::TxCsum => (ETHTOOL_GTXCSUM, "ioctl(SIOCETHTOOL, ETHTOOL_GTXCSUM)"),
        }
    }

    /// The set command and the call named when it fails.
    const fn set_cmd(self) -> (u32, &'static str) {
        match self {
            Self::Gro => (ETHTOOL_SGRO, "ioctl(SIOCETHTOOL, ETHTOOL_SGRO)"),
            Self::Gso => (ETHTOOL_SGSO, "ioctl(SIOCETHTOOL, ETHTOOL_SGSO)"),
            Self::Tso => (ETHTOOL_STSO, "ioctl(SIOCETHTOOL, ETHTOOL_STSO)"),
            Self::Sg => (ETHTOOL_SSG, "ioctl(SIOCETHTOOL, ETHTOOL_SSG)"),
            Self::RxCsum => (ETHTOOL_SRXCSUM, "ioctl(SIOCETHTOOL, ETHTOOL_SRXCSUM)"),
            Self::TxCsum => (ETHTOOL_STXCSUM, "ioctl(SIOCETHTOOL, ETHTOOL_STXCSUM)"),
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `ETHTOOL_GDRVINFO` reports (`ethtool -i`). Empty strings are fields
/// the driver leaves blank (veth has no firmware or bus).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverInfo {
    /// Driver name, e.g. `"veth"`, `"virtio_net"`, `"ixgbe"`.
    pub driver: String,
    /// Driver version string.
    pub version: String,
    /// Firmware version string.
    pub fw_version: String,
    /// Bus address, e.g. `"0000:00:03.0"`.
    pub bus_info: String,
}

/// `struct ethtool_coalesce` without its command word: interrupt coalescing
/// (`ethtool -c`). Field names and meanings are the kernel's; a field the
/// driver does not implement reads 0, and setting it non-zero fails with
/// `EOPNOTSUPP`. Booleans (`use_adaptive_*`) are 0 or 1.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coalesce {
    /// µs to delay an RX interrupt after a packet arrives.
    pub rx_coalesce_usecs: u32,
    /// Packets to delay an RX interrupt for.
    pub rx_max_coalesced_frames: u32,
    /// As `rx_coalesce_usecs`, while the IRQ is being serviced.
    pub rx_coalesce_usecs_irq: u32,
    /// As `rx_max_coalesced_frames`, while the IRQ is being serviced.
    pub rx_max_coalesced_frames_irq: u32,
    /// µs to delay a TX-completion interrupt after a packet is sent.
    pub tx_coalesce_usecs: u32,
    /// Packets to delay a TX-completion interrupt for.
    pub tx_max_coalesced_frames: u32,
    /// As `tx_coalesce_usecs`, while the IRQ is being serviced.
    pub tx_coalesce_usecs_irq: u32,
    /// As `tx_max_coalesced_frames`, while the IRQ is being serviced.
    pub tx_max_coalesced_frames_irq: u32,
    /// µs between statistics block updates.
    pub stats_block_coalesce_usecs: u32,
    /// 1 if the driver adapts RX coalescing to the packet rate.
    pub use_adaptive_rx_coalesce: u32,
    /// 1 if the driver adapts TX coalescing to the packet rate.
    pub use_adaptive_tx_coalesce: u32,
    /// Packet rate (per second) below which the `*_low` values apply.
    pub pkt_rate_low: u32,
    /// RX µs at a low packet rate.
    pub rx_coalesce_usecs_low: u32,
    /// RX packets at a low packet rate.
    pub rx_max_coalesced_frames_low: u32,
    /// TX µs at a low packet rate.
    pub tx_coalesce_usecs_low: u32,
    /// TX packets at a low packet rate.
    pub tx_max_coalesced_frames_low: u32,
    /// Packet rate (per second) above which the `*_high` values apply.
    pub pkt_rate_high: u32,
    /// RX µs at a high packet rate.
    pub rx_coalesce_usecs_high: u32,
    /// RX packets at a high packet rate.
    pub rx_max_coalesced_frames_high: u32,
    /// TX µs at a high packet rate.
    pub tx_coalesce_usecs_high: u32,
    /// TX packets at a high packet rate.
    pub tx_max_coalesced_frames_high: u32,
    /// Seconds between packet rate samples.
    pub rate_sample_interval: u32,
}

/// `struct ethtool_ringparam` without its command word: descriptor ring
/// sizes (`ethtool -g`). A `*_max_pending` of 0 means the device has no such
/// ring. The maximums are read-only; setting a size above one gives
/// `EINVAL`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ringparam {
    /// Largest RX ring the device supports.
    pub rx_max_pending: u32,
    /// Largest RX mini ring.
    pub rx_mini_max_pending: u32,
    /// Largest RX jumbo ring.
    pub rx_jumbo_max_pending: u32,
    /// Largest TX ring.
    pub tx_max_pending: u32,
    /// Current RX ring size.
    pub rx_pending: u32,
    /// Current RX mini ring size.
    pub rx_mini_pending: u32,
    /// Current RX jumbo ring size.
    pub rx_jumbo_pending: u32,
    /// Current TX ring size.
    pub tx_pending: u32,
}

/// `struct ethtool_channels` without its command word: queue counts
/// (`ethtool -l`). A `max_*` of 0 means the device has no channel of that
/// kind. Setting a count above its maximum, or leaving no RX or no TX
/// channel, gives `EINVAL`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    /// Most RX-only channels.
    pub max_rx: u32,
    /// Most TX-only channels.
    pub max_tx: u32,
    /// Most other channels (link interrupts, ...).
    pub max_other: u32,
    /// Most combined (RX + TX) channels.
    pub max_combined: u32,
    /// Current RX-only channels.
    pub rx_count: u32,
    /// Current TX-only channels.
    pub tx_count: u32,
    /// Current other channels.
    pub other_count: u32,
    /// Current combined channels.
    pub combined_count: u32,
}

/// `struct ethtool_pauseparam` without its command word: Ethernet flow
/// control (`ethtool -a`). Each field is 0 or 1.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pauseparam {
    /// 1 if pause use is autonegotiated.
    pub autoneg: u32,
    /// 1 if received pause frames are honoured.
    pub rx_pause: u32,
    /// 1 if pause frames are sent.
    pub tx_pause: u32,
}

/// What `ETHTOOL_GET_TS_INFO` reports (`ethtool -T`): which
/// `SO_TIMESTAMPING` flags the device supports, its PTP hardware clock, and
/// the hardware timestamping modes (`SIOCSHWTSTAMP`) it offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TsInfo {
    /// Bit mask of supported `SOF_TIMESTAMPING_*` flags.
    pub so_timestamping: u32,
    /// Index of the PTP hardware clock (`/dev/ptpN`), if any.
    pub phc_index: Option<u32>,
    /// Bit mask of supported `HWTSTAMP_TX_*` values (bit = value).
    pub tx_types: u32,
    /// Bit mask of supported `HWTSTAMP_FILTER_*` values (bit = value).
    pub rx_filters: u32,
}

impl TsInfo {
    /// Names of the supported `SO_TIMESTAMPING` flags, e.g.
    /// `"software-receive"` (`"bit-N"` for a bit newer than this table).
    #[must_use]
    pub fn so_timestamping_names(&self) -> Vec<String> {
        bit_names(self.so_timestamping, &SOF_TIMESTAMPING_NAMES)
    }

    /// Names of the supported hardware TX timestamp types, e.g. `"on"`.
    #[must_use]
    pub fn tx_type_names(&self) -> Vec<String> {
        bit_names(self.tx_types, &HWTSTAMP_TX_NAMES)
    }

    /// Names of the supported hardware RX filters, e.g. `"all"`.
    #[must_use]
    pub fn rx_filter_names(&self) -> Vec<String> {
        bit_names(self.rx_filters, &HWTSTAMP_FILTER_NAMES)
    }

    /// Whether the device timestamps packets in hardware in both directions
    /// (`hardware-transmit`, `hardware-receive` and `hardware-raw-clock`).
    #[must_use]
    pub fn hardware(&self) -> bool {
        const HW: u32 = (1 << 0) | (1 << 2) | (1 << 6);
        self.so_timestamping & HW == HW
    }
}

/// The names of the set bits of `mask`, from `table` by bit number.
fn bit_names(mask: u32, table: &[&str]) -> Vec<String> {
    (0..32)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| {
            table
                .get(bit as usize)
                .map_or_else(|| format!("bit-{bit}"), |name| (*name).to_owned())
        })
        .collect()
}

/// What `ETHTOOL_GRSSH` reports: the RSS configuration of the default
/// context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rss {
    /// The indirection table: entry `i` is the RX queue of hash bucket `i`.
    /// Empty when the device has no table.
    pub indir: Vec<u32>,
    /// The hash key. Empty when the device does not expose one.
    pub key: Vec<u8>,
    /// The hash function as a one-bit mask (`ETH_RSS_HASH_*`: bit `n` is
    /// string `n` of [`StringSet::RssHashFuncs`]); 0 if not reported.
    pub hfunc: u8,
}

/// A global ethtool string set (the same for every device, so its size is
/// fixed while the kernel runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StringSet {
    /// `ETH_SS_FEATURES`: feature names by bit, e.g. `"rx-gro"`. Undefined
    /// bits have empty names.
    Features,
    /// `ETH_SS_RSS_HASH_FUNCS`: RSS hash functions by bit, e.g. `"toeplitz"`.
    RssHashFuncs,
}

impl StringSet {
    /// The `ETH_SS_*` number.
    #[must_use]
    pub const fn id(self) -> u32 {
        match self {
            Self::Features => ETH_SS_FEATURES,
            Self::RssHashFuncs => ETH_SS_RSS_HASH_FUNCS,
        }
    }
}

/// `struct ethtool_get_features_block`: 32 features.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FeatureWord {
    available: u32,
    requested: u32,
    active: u32,
    never_changed: u32,
}

/// Every offload feature of a device: names (`ETH_SS_FEATURES`) and state
/// (`ETHTOOL_GFEATURES`), read by [`Ethtool::get_features`]. Allocates the
/// names (about 70 strings) and the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    names: Vec<String>,
    words: Vec<FeatureWord>,
}

/// One feature of [`Features`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeatureState<'a> {
    /// Bit number.
    pub index: usize,
    /// Kernel name, e.g. `"rx-gro-hw"`.
    pub name: &'a str,
    /// The driver lets it change (`hw_features`); not `[fixed]`.
    pub changeable: bool,
    /// Requested on (`wanted_features`); may differ from `active` when a
    /// dependency is off.
    pub requested: bool,
    /// On now (`features`).
    pub active: bool,
    /// No device can ever change it (`NETIF_F_NEVER_CHANGE`).
    pub never_changed: bool,
}

impl Features {
    /// Builds the set from names and the raw `ethtool_get_features_block`
    /// words `[available, requested, active, never_changed]` (for tests and
    /// fakes; [`Ethtool::get_features`] reads the real ones).
    #[must_use]
    pub fn from_parts(names: Vec<String>, words: &[[u32; 4]]) -> Self {
        let words = words
            .iter()
            .map(|w| FeatureWord {
                available: w[0],
                requested: w[1],
                active: w[2],
                never_changed: w[3],
            })
            .collect();
        Self { names, words }
    }

    /// The state of bit `index`, if it has a name.
    #[must_use]
    pub fn at(&self, index: usize) -> Option<FeatureState<'_>> {
        let name = self.names.get(index)?;
        if name.is_empty() {
            return None;
        }
        let word = self.words.get(index / 32).copied().unwrap_or_default();
        let bit = 1u32 << (index % 32);
        Some(FeatureState {
            index,
            name,
            changeable: word.available & bit != 0,
            requested: word.requested & bit != 0,
            active: word.active & bit != 0,
            never_changed: word.never_changed & bit != 0,
        })
    }

    /// The feature named `name` (kernel name, exact).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<FeatureState<'_>> {
        let index = self.names.iter().position(|n| n == name)?;
        self.at(index)
    }

    /// Every named feature, by bit number.
    pub fn iter(&self) -> impl Iterator<Item = FeatureState<'_>> {
        (0..self.names.len()).filter_map(|i| self.at(i))
    }

    /// An empty change request sized for this device.
    #[must_use]
    pub fn change(&self) -> FeatureChange {
        FeatureChange {
            valid: vec![0; self.words.len()],
            requested: vec![0; self.words.len()],
        }
    }
}

/// A request for `ETHTOOL_SFEATURES`: which feature bits to change and to
/// what. Start from [`Features::change`] (the kernel rejects a request with
/// another number of words with `EINVAL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureChange {
    valid: Vec<u32>,
    requested: Vec<u32>,
}

impl FeatureChange {
    /// Asks for feature bit `index` to be on or off. Returns false (and
    /// changes nothing) if the index is beyond the device's words.
    pub fn set(&mut self, index: usize, on: bool) -> bool {
        let (word, bit) = (index / 32, 1u32 << (index % 32));
        let (Some(valid), Some(requested)) =
            (self.valid.get_mut(word), self.requested.get_mut(word))
        else {
            return false;
        };
        *valid |= bit;
        if on {
            *requested |= bit;
        } else {
            *requested &= !bit;
        }
        true
    }

    /// Whether no bit is to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.valid.iter().all(|&w| w == 0)
    }
}

/// What `ETHTOOL_SFEATURES` reported besides success: `ETHTOOL_F_*` bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeaturesOutcome(pub u32);

impl FeaturesOutcome {
    /// Some requested bits are fixed for this device and were ignored
    /// (`ETHTOOL_F_UNSUPPORTED`).
    #[must_use]
    pub const fn unsupported(self) -> bool {
        self.0 & ETHTOOL_F_UNSUPPORTED != 0
    }

    /// The request was recorded but the active state differs from it
    /// (`ETHTOOL_F_WISH`): a dependency is off (TSO needs scatter-gather and
    /// checksumming) or the driver refused.
    #[must_use]
    pub const fn wish(self) -> bool {
        self.0 & ETHTOOL_F_WISH != 0
    }

    /// Compatibility code made the change (`ETHTOOL_F_COMPAT`).
    #[must_use]
    pub const fn compat(self) -> bool {
        self.0 & ETHTOOL_F_COMPAT != 0
    }
}

/// `struct ethtool_value`: a legacy command and its one `u32` value.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ethtool_drvinfo`.
#[repr(C)]
#[derive(Clone, Copy)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

const _: () = assert!(mem::size_of::<EthtoolValue>() == 8);
const _: () = assert!(mem::size_of::<EthtoolDrvinfo>() == 196);

/// A fixed-size command: the command word followed by the public body
/// (`struct ethtool_coalesce` = `Cmd<Coalesce>`, and so on).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Cmd<T> {
    cmd: u32,
    body: T,
}

/// `struct ethtool_ts_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct EthtoolTsInfo {
    cmd: u32,
    so_timestamping: u32,
    phc_index: i32,
    tx_types: u32,
    tx_reserved: [u32; 3],
    rx_filters: u32,
    rx_reserved: [u32; 3],
}

/// `struct ethtool_sset_info` with room for the size of one string set.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct EthtoolSsetInfo1 {
    cmd: u32,
    reserved: u32,
    sset_mask: u64,
    data: [u32; 1],
}

/// The header shared by `struct ethtool_gfeatures`, `ethtool_sfeatures`
/// and `ethtool_rxfh_indir`: command and array size, with the array (empty
/// here) following. Used alone for the size queries (size 0).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct SizeHeader {
    cmd: u32,
    size: u32,
}

/// `struct ethtool_rxfh` without its `rss_config[]` array (6.x names the
/// first reserved byte `input_xfrm`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct EthtoolRxfh {
    cmd: u32,
    rss_context: u32,
    indir_size: u32,
    key_size: u32,
    hfunc: u8,
    input_xfrm: u8,
    rsvd8: [u8; 2],
    rsvd32: u32,
}

/// `u32` words in the header of `struct ethtool_gstrings` (cmd,
/// string_set, len) before `data[]`.
const GSTRINGS_HEADER_WORDS: usize = 3;
/// `u32` words in the header of `struct ethtool_gfeatures` /
/// `ethtool_sfeatures` / `ethtool_rxfh_indir` before their arrays.
const SIZE_HEADER_WORDS: usize = 2;
/// `u32` words per `struct ethtool_get_features_block`.
const GET_BLOCK_WORDS: usize = 4;
/// `u32` words per `struct ethtool_set_features_block`.
const SET_BLOCK_WORDS: usize = 2;
/// `u32` words in `struct ethtool_rxfh` before `rss_config[]`.
const RXFH_HEADER_WORDS: usize = 6;
/// Sanity bound on sizes the kernel reports for the arrays read here, so a
/// bogus value cannot make us allocate without limit (real values: about
/// 70 feature names, 3 feature words, indirection tables of up to a few
/// thousand entries, keys of 40-64 bytes).
const MAX_ARRAY: usize = 1 << 16;

const _: () = assert!(mem::size_of::<Cmd<Coalesce>>() == 92);
const _: () = assert!(mem::size_of::<Cmd<Ringparam>>() == 36);
const _: () = assert!(mem::size_of::<Cmd<Channels>>() == 36);
const _: () = assert!(mem::size_of::<Cmd<Pauseparam>>() == 16);
const _: () = assert!(mem::size_of::<EthtoolTsInfo>() == 44);
const _: () = assert!(mem::offset_of!(EthtoolTsInfo, rx_filters) == 28);
const _: () = assert!(mem::offset_of!(EthtoolSsetInfo1, data) == 16);
const _: () = assert!(mem::size_of::<SizeHeader>() == SIZE_HEADER_WORDS * 4);
const _: () = assert!(mem::size_of::<EthtoolRxfh>() == RXFH_HEADER_WORDS * 4);
const _: () = assert!(mem::offset_of!(EthtoolRxfh, hfunc) == 16);
const _: () = assert!(ETH_GSTRING_LEN.is_multiple_of(4));

/// A request struct the kernel may read and write through `ifr_data`.
///
/// # Safety
/// Implementors are `repr(C)` plain data (any bit pattern valid) whose
/// layout is the kernel struct for every command they are used with, so the
/// kernel reads and writes only within `size_of::<Self>()`.
unsafe trait Request {}

// SAFETY: repr(C), two u32 fields, as `struct ethtool_value`; the legacy
// value commands copy exactly that struct in and out.
unsafe impl Request for EthtoolValue {}
// SAFETY: repr(C) integers and byte arrays, as `struct ethtool_drvinfo`
// (196 bytes, checked above); ETHTOOL_GDRVINFO copies that struct out.
unsafe impl Request for EthtoolDrvinfo {}
// SAFETY: repr(C): a u32 command and 22 u32 fields, as `struct
// ethtool_coalesce` (92 bytes, checked above), which ETHTOOL_[GS]COALESCE
// copy in and out whole.
unsafe impl Request for Cmd<Coalesce> {}
// SAFETY: repr(C), 9 u32 as `struct ethtool_ringparam` (36 bytes, checked);
// ETHTOOL_[GS]RINGPARAM copy exactly that.
unsafe impl Request for Cmd<Ringparam> {}
// SAFETY: repr(C), 9 u32 as `struct ethtool_channels` (36 bytes, checked);
// ETHTOOL_[GS]CHANNELS copy exactly that.
unsafe impl Request for Cmd<Channels> {}
// SAFETY: repr(C), 4 u32 as `struct ethtool_pauseparam` (16 bytes,
// checked); ETHTOOL_[GS]PAUSEPARAM copy exactly that.
unsafe impl Request for Cmd<Pauseparam> {}
// SAFETY: repr(C) integers as `struct ethtool_ts_info` (44 bytes, checked);
// ETHTOOL_GET_TS_INFO copies exactly that out.
unsafe impl Request for EthtoolTsInfo {}
// SAFETY: repr(C) as `struct ethtool_sset_info` plus one `data` slot (24
// bytes with tail padding, data at 16, checked). ETHTOOL_GSSET_INFO writes
// the 16-byte header and one u32 per bit set in the `sset_mask` we pass;
// every caller sets exactly one bit.
unsafe impl Request for EthtoolSsetInfo1 {}
// SAFETY: repr(C), two u32 as the header of `struct ethtool_gfeatures` /
// `ethtool_rxfh_indir`. Callers send it only with size 0, for which
// ETHTOOL_GFEATURES and ETHTOOL_GRXFHINDIR write back the header alone.
unsafe impl Request for SizeHeader {}
// SAFETY: repr(C) as `struct ethtool_rxfh` without `rss_config[]` (24
// bytes, checked). Callers send it only with indir_size = key_size = 0, for
// which ETHTOOL_GRSSH copies zero bytes of `rss_config` and writes only
// header fields.
unsafe impl Request for EthtoolRxfh {}

/// A socket for ethtool requests, bound to the network namespace of the
/// thread that opened it. Reuse one for several requests; it is `Send` and
/// `Sync` (the kernel serialises requests).
#[derive(Debug)]
pub struct Ethtool {
    fd: OwnedFd,
}

impl Ethtool {
    /// `socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)` in the calling
    /// thread's network namespace.
    ///
    /// # Errors
    /// `EMFILE`/`ENFILE` when out of descriptors (call `"socket"`).
    pub fn open() -> Result<Self> {
        // SAFETY: plain syscall without pointers.
        let raw = cvt("socket", unsafe {
            libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: raw is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self { fd })
    }

    /// Whether `feature` is on for `iface` (`ETHTOOL_G*`).
    ///
    /// # Errors
    /// `ENODEV` for an unknown or invalid interface name, `EOPNOTSUPP` when
    /// the device does not report it; the error names the command.
    pub fn get_feature(&self, iface: &str, feature: Feature) -> Result<bool> {
        let (cmd, call) = feature.get_cmd();
        let mut value = EthtoolValue { cmd, data: 0 };
        self.request(iface, call, &mut value)?;
        Ok(value.data != 0)
    }

    /// Turns `feature` on or off for `iface` (`ETHTOOL_S*`), like
    /// `ethtool -K IFACE NAME on|off`.
    ///
    /// The kernel may accept the request yet not apply it, when another
    /// feature it depends on is off (TSO needs scatter-gather and checksum
    /// offload); read it back with [`get_feature`](Self::get_feature) when
    /// that matters.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the device cannot change it (fixed feature), `EPERM`
    /// without `CAP_NET_ADMIN`, `ENODEV` for an unknown interface; the error
    /// names the command, e.g. `"ioctl(SIOCETHTOOL, ETHTOOL_SGRO)"`.
    pub fn set_feature(&self, iface: &str, feature: Feature, on: bool) -> Result<()> {
        let (cmd, call) = feature.set_cmd();
        let mut value = EthtoolValue {
            cmd,
            data: u32::from(on),
        };
        self.request(iface, call, &mut value)
    }

    /// Driver name, version, firmware version and bus address of `iface`
    /// (`ETHTOOL_GDRVINFO`, `ethtool -i`).
    ///
    /// # Errors
    /// `EOPNOTSUPP` for a device without a driver to name (`lo`), `ENODEV`
    /// for an unknown interface; call `"ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)"`.
    pub fn driver_info(&self, iface: &str) -> Result<DriverInfo> {
        // SAFETY: EthtoolDrvinfo is plain data; all-zero is valid.
        let mut info: EthtoolDrvinfo = unsafe { mem::zeroed() };
        info.cmd = ETHTOOL_GDRVINFO;
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)", &mut info)?;
        Ok(DriverInfo {
            driver: c_string(&info.driver),
            version: c_string(&info.version),
            fw_version: c_string(&info.fw_version),
            bus_info: c_string(&info.bus_info),
        })
    }

    /// Interrupt coalescing of `iface` (`ETHTOOL_GCOALESCE`, `ethtool -c`).
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver has no coalescing (veth, lo), `ENODEV`
    /// for an unknown interface; call `"ioctl(SIOCETHTOOL, ETHTOOL_GCOALESCE)"`.
    pub fn get_coalesce(&self, iface: &str) -> Result<Coalesce> {
        let mut req = Cmd {
            cmd: ETHTOOL_GCOALESCE,
            body: Coalesce::default(),
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_GCOALESCE)", &mut req)?;
        Ok(req.body)
    }

    /// Sets every coalescing field of `iface` to `coalesce`
    /// (`ETHTOOL_SCOALESCE`). Read with [`get_coalesce`](Self::get_coalesce)
    /// first and change only the fields meant to change.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver has no coalescing or a field it does not
    /// implement is non-zero, `EINVAL` for a value the driver rejects,
    /// `EPERM` without `CAP_NET_ADMIN`; call
    /// `"ioctl(SIOCETHTOOL, ETHTOOL_SCOALESCE)"`.
    pub fn set_coalesce(&self, iface: &str, coalesce: &Coalesce) -> Result<()> {
        let mut req = Cmd {
            cmd: ETHTOOL_SCOALESCE,
            body: *coalesce,
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_SCOALESCE)", &mut req)
    }

    /// Ring sizes of `iface` and their maximums (`ETHTOOL_GRINGPARAM`,
    /// `ethtool -g`).
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver does not report rings (veth, lo);
    /// call `"ioctl(SIOCETHTOOL, ETHTOOL_GRINGPARAM)"`.
    pub fn get_ringparam(&self, iface: &str) -> Result<Ringparam> {
        let mut req = Cmd {
            cmd: ETHTOOL_GRINGPARAM,
            body: Ringparam::default(),
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_GRINGPARAM)", &mut req)?;
        Ok(req.body)
    }

    /// Sets the ring sizes of `iface` (`ETHTOOL_SRINGPARAM`; the `*_max_*`
    /// fields are ignored). Many drivers reset the device to resize rings:
    /// the link drops briefly.
    ///
    /// # Errors
    /// `EINVAL` for a size above its maximum, `EOPNOTSUPP` when the driver
    /// cannot resize, `EPERM` without `CAP_NET_ADMIN`; call
    /// `"ioctl(SIOCETHTOOL, ETHTOOL_SRINGPARAM)"`.
    pub fn set_ringparam(&self, iface: &str, rings: &Ringparam) -> Result<()> {
        let mut req = Cmd {
            cmd: ETHTOOL_SRINGPARAM,
            body: *rings,
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_SRINGPARAM)", &mut req)
    }

    /// Channel (queue) counts of `iface` and their maximums
    /// (`ETHTOOL_GCHANNELS`, `ethtool -l`).
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver does not report channels (lo); call
    /// `"ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS)"`.
    pub fn get_channels(&self, iface: &str) -> Result<Channels> {
        let mut req = Cmd {
            cmd: ETHTOOL_GCHANNELS,
            body: Channels::default(),
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_GCHANNELS)", &mut req)?;
        Ok(req.body)
    }

    /// Sets the channel counts of `iface` (`ETHTOOL_SCHANNELS`; the `max_*`
    /// fields are ignored). Counts equal to the current ones are a no-op.
    ///
    /// # Errors
    /// `EINVAL` for a count above its maximum or no RX/TX channel left (or
    /// fewer queues than the RSS table or an AF_XDP socket uses),
    /// `EOPNOTSUPP` when the driver cannot change them, `EPERM` without
    /// `CAP_NET_ADMIN`; call `"ioctl(SIOCETHTOOL, ETHTOOL_SCHANNELS)"`.
    pub fn set_channels(&self, iface: &str, channels: &Channels) -> Result<()> {
        let mut req = Cmd {
            cmd: ETHTOOL_SCHANNELS,
            body: *channels,
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_SCHANNELS)", &mut req)
    }

    /// Flow control (pause frame) settings of `iface`
    /// (`ETHTOOL_GPAUSEPARAM`, `ethtool -a`).
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the driver has no flow control (veth, lo); call
    /// `"ioctl(SIOCETHTOOL, ETHTOOL_GPAUSEPARAM)"`.
    pub fn get_pauseparam(&self, iface: &str) -> Result<Pauseparam> {
        let mut req = Cmd {
            cmd: ETHTOOL_GPAUSEPARAM,
            body: Pauseparam::default(),
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_GPAUSEPARAM)", &mut req)?;
        Ok(req.body)
    }

    /// Sets flow control of `iface` (`ETHTOOL_SPAUSEPARAM`).
    ///
    /// # Errors
    /// `EINVAL` for a combination the link refuses (autoneg without link
    /// autonegotiation), `EOPNOTSUPP` without flow control, `EPERM` without
    /// `CAP_NET_ADMIN`; call `"ioctl(SIOCETHTOOL, ETHTOOL_SPAUSEPARAM)"`.
    pub fn set_pauseparam(&self, iface: &str, pause: &Pauseparam) -> Result<()> {
        let mut req = Cmd {
            cmd: ETHTOOL_SPAUSEPARAM,
            body: *pause,
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_SPAUSEPARAM)", &mut req)
    }

    /// Timestamping capabilities of `iface` (`ETHTOOL_GET_TS_INFO`,
    /// `ethtool -T`). Devices without their own report get the kernel's
    /// software defaults.
    ///
    /// # Errors
    /// `ENODEV` for an unknown interface, or the driver's error; call
    /// `"ioctl(SIOCETHTOOL, ETHTOOL_GET_TS_INFO)"`.
    pub fn get_ts_info(&self, iface: &str) -> Result<TsInfo> {
        let mut req = EthtoolTsInfo {
            cmd: ETHTOOL_GET_TS_INFO,
            ..EthtoolTsInfo::default()
        };
        self.request(iface, "ioctl(SIOCETHTOOL, ETHTOOL_GET_TS_INFO)", &mut req)?;
        Ok(TsInfo {
            so_timestamping: req.so_timestamping,
            phc_index: u32::try_from(req.phc_index).ok(),
            tx_types: req.tx_types,
            rx_filters: req.rx_filters,
        })
    }

    /// The strings of a global string set (`ETHTOOL_GSSET_INFO` for the
    /// count, then `ETHTOOL_GSTRINGS`). Allocates a buffer of
    /// `count × ETH_GSTRING_LEN` bytes and one `String` per entry.
    ///
    /// # Errors
    /// `ENODEV` for an unknown interface; `EOPNOTSUPP` if the kernel does
    /// not know the set. The call named is the step that failed.
    pub fn get_strings(&self, iface: &str, set: StringSet) -> Result<Vec<String>> {
        const INFO: &str = "ioctl(SIOCETHTOOL, ETHTOOL_GSSET_INFO)";
        const STRINGS: &str = "ioctl(SIOCETHTOOL, ETHTOOL_GSTRINGS)";
        let id = set.id();
        let mut info = EthtoolSsetInfo1 {
            cmd: ETHTOOL_GSSET_INFO,
            sset_mask: 1 << id,
            ..EthtoolSsetInfo1::default()
        };
        self.request(iface, INFO, &mut info)?;
        if info.sset_mask & (1 << id) == 0 {
            return Err(SyscallError::from_errno(INFO, libc::EOPNOTSUPP));
        }
        let count = info.data[0] as usize;
        if count > MAX_ARRAY {
            return Err(SyscallError::from_errno(INFO, libc::EOVERFLOW));
        }
        // Allocation: header + count strings of ETH_GSTRING_LEN bytes, as
        // u32 words so the buffer is aligned like the kernel struct.
        let mut buf = vec![0u32; GSTRINGS_HEADER_WORDS + count * (ETH_GSTRING_LEN / 4)];
        buf[0] = ETHTOOL_GSTRINGS;
        buf[1] = id;
        buf[2] = info.data[0];
        // SAFETY: ETHTOOL_GSTRINGS writes the 12-byte header and then as many
        // strings as the set holds. Both sets StringSet allows are global,
        // compiled-in tables (`netdev_features_strings`,
        // `rss_hash_func_strings`), so that number is the `count` just read
        // and the buffer holds all of it.
        unsafe { self.request_words(iface, STRINGS, &mut buf) }?;
        let len = (buf[2] as usize).min(count);
        let bytes: Vec<u8> = buf[GSTRINGS_HEADER_WORDS..]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        Ok(bytes
            .chunks_exact(ETH_GSTRING_LEN)
            .take(len)
            .map(c_string)
            .collect())
    }

    /// Every offload feature of `iface` by kernel name, with whether it is
    /// on, requested and changeable (`ETH_SS_FEATURES` strings, then
    /// `ETHTOOL_GFEATURES` twice: once for the word count, once for the
    /// words), like `ethtool -k`. Allocates the names and the words.
    ///
    /// # Errors
    /// `ENODEV` for an unknown interface; the call named is the step that
    /// failed.
    pub fn get_features(&self, iface: &str) -> Result<Features> {
        const CALL: &str = "ioctl(SIOCETHTOOL, ETHTOOL_GFEATURES)";
        let names = self.get_strings(iface, StringSet::Features)?;
        let mut header = SizeHeader {
            cmd: ETHTOOL_GFEATURES,
            size: 0,
        };
        self.request(iface, CALL, &mut header)?;
        let n = header.size as usize;
        if n > MAX_ARRAY {
            return Err(SyscallError::from_errno(CALL, libc::EOVERFLOW));
        }
        // Allocation: header + n blocks of 4 u32.
        let mut buf = vec![0u32; SIZE_HEADER_WORDS + n * GET_BLOCK_WORDS];
        buf[0] = ETHTOOL_GFEATURES;
        buf[1] = header.size;
        // SAFETY: ETHTOOL_GFEATURES writes the header and min(size, its own
        // word count) blocks of 16 bytes; size = n and the buffer holds n
        // blocks after the header.
        unsafe { self.request_words(iface, CALL, &mut buf) }?;
        let got = (buf[1] as usize).min(n);
        let words: Vec<[u32; 4]> = buf[SIZE_HEADER_WORDS..]
            .chunks_exact(GET_BLOCK_WORDS)
            .take(got)
            .map(|b| [b[0], b[1], b[2], b[3]])
            .collect();
        Ok(Features::from_parts(names, &words))
    }

    /// Requests the feature changes in `change` (`ETHTOOL_SFEATURES`, like
    /// `ethtool -K`). Bits the device cannot change are ignored and
    /// reported as [`FeaturesOutcome::unsupported`]; a request the kernel
    /// recorded but could not (fully) apply as [`FeaturesOutcome::wish`].
    ///
    /// # Errors
    /// `EINVAL` when `change` was not made for this kernel's word count or
    /// names a bit that no device may change, `EPERM` without
    /// `CAP_NET_ADMIN`; call `"ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)"`.
    pub fn set_features(&self, iface: &str, change: &FeatureChange) -> Result<FeaturesOutcome> {
        const CALL: &str = "ioctl(SIOCETHTOOL, ETHTOOL_SFEATURES)";
        let n = change.valid.len();
        let size = u32::try_from(n).map_err(|_| SyscallError::from_errno(CALL, libc::EINVAL))?;
        // Allocation: header + n blocks of 2 u32.
        let mut buf = vec![0u32; SIZE_HEADER_WORDS + n * SET_BLOCK_WORDS];
        buf[0] = ETHTOOL_SFEATURES;
        buf[1] = size;
        for (i, (valid, requested)) in change.valid.iter().zip(&change.requested).enumerate() {
            buf[SIZE_HEADER_WORDS + i * SET_BLOCK_WORDS] = *valid;
            buf[SIZE_HEADER_WORDS + i * SET_BLOCK_WORDS + 1] = *requested;
        }
        // SAFETY: ETHTOOL_SFEATURES reads the header, fails with EINVAL
        // unless size equals its word count, and then reads exactly that
        // many 8-byte blocks: n, which the buffer holds. It writes nothing.
        let ret = unsafe { self.request_words(iface, CALL, &mut buf) }?;
        Ok(FeaturesOutcome(ret.unsigned_abs()))
    }

    /// The RSS indirection table of `iface` (`ETHTOOL_GRXFHINDIR` twice:
    /// the size, then the table; `ethtool -x`). Allocates the table.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the device has no RSS table (veth, lo); call
    /// `"ioctl(SIOCETHTOOL, ETHTOOL_GRXFHINDIR)"`.
    pub fn get_rxfh_indir(&self, iface: &str) -> Result<Vec<u32>> {
        const CALL: &str = "ioctl(SIOCETHTOOL, ETHTOOL_GRXFHINDIR)";
        let mut header = SizeHeader {
            cmd: ETHTOOL_GRXFHINDIR,
            size: 0,
        };
        self.request(iface, CALL, &mut header)?;
        let n = header.size as usize;
        if n > MAX_ARRAY {
            return Err(SyscallError::from_errno(CALL, libc::EOVERFLOW));
        }
        // Allocation: header + n entries.
        let mut buf = vec![0u32; SIZE_HEADER_WORDS + n];
        buf[0] = ETHTOOL_GRXFHINDIR;
        buf[1] = header.size;
        // SAFETY: ETHTOOL_GRXFHINDIR writes the size field, fails with EINVAL
        // if our size is below the device's table size, and otherwise writes
        // the device's table (at most n entries) after the header; the buffer
        // holds n entries.
        unsafe { self.request_words(iface, CALL, &mut buf) }?;
        let got = (buf[1] as usize).min(n);
        Ok(buf[SIZE_HEADER_WORDS..SIZE_HEADER_WORDS + got].to_vec())
    }

    /// Replaces the RSS indirection table of `iface` (`ETHTOOL_SRXFHINDIR`,
    /// `ethtool -X`): entry `i` is the RX queue of hash bucket `i`. `table`
    /// must have exactly the device's table size
    /// ([`get_rxfh_indir`](Self::get_rxfh_indir)`.len()`); an empty table
    /// resets the default spread over all RX queues. Allocates the request.
    ///
    /// # Errors
    /// `EINVAL` for a wrong table size or a queue the device does not have,
    /// `EOPNOTSUPP` without RSS, `EPERM` without `CAP_NET_ADMIN`; call
    /// `"ioctl(SIOCETHTOOL, ETHTOOL_SRXFHINDIR)"`.
    pub fn set_rxfh_indir(&self, iface: &str, table: &[u32]) -> Result<()> {
        const CALL: &str = "ioctl(SIOCETHTOOL, ETHTOOL_SRXFHINDIR)";
        let size =
            u32::try_from(table.len()).map_err(|_| SyscallError::from_errno(CALL, libc::EINVAL))?;
        let mut buf = Vec::with_capacity(SIZE_HEADER_WORDS + table.len());
        buf.extend_from_slice(&[ETHTOOL_SRXFHINDIR, size]);
        buf.extend_from_slice(table);
        // SAFETY: ETHTOOL_SRXFHINDIR reads the size field and then, unless it
        // is 0 or fails with EINVAL for a size other than the device's, reads
        // exactly `size` entries: table.len(), which follow the header in buf.
        unsafe { self.request_words(iface, CALL, &mut buf) }.map(drop)
    }

    /// The RSS configuration of `iface`: indirection table, hash key and
    /// hash function (`ETHTOOL_GRSSH` twice: the sizes, then the data;
    /// `ethtool -x`). Allocates the table and the key.
    ///
    /// # Errors
    /// `EOPNOTSUPP` when the device has no RSS (veth, lo); call
    /// `"ioctl(SIOCETHTOOL, ETHTOOL_GRSSH)"`.
    pub fn get_rss(&self, iface: &str) -> Result<Rss> {
        const CALL: &str = "ioctl(SIOCETHTOOL, ETHTOOL_GRSSH)";
        let mut header = EthtoolRxfh {
            cmd: ETHTOOL_GRSSH,
            ..EthtoolRxfh::default()
        };
        self.request(iface, CALL, &mut header)?;
        let (n, k) = (header.indir_size as usize, header.key_size as usize);
        if n > MAX_ARRAY || k > MAX_ARRAY {
            return Err(SyscallError::from_errno(CALL, libc::EOVERFLOW));
        }
        // Allocation: header + n table entries + k key bytes (rounded up to
        // whole words).
        let mut buf = vec![0u32; RXFH_HEADER_WORDS + n + k.div_ceil(4)];
        buf[0] = ETHTOOL_GRSSH;
        buf[2] = header.indir_size;
        buf[3] = header.key_size;
        // SAFETY: ETHTOOL_GRSSH writes the 24-byte header, fails with EINVAL
        // unless our sizes are 0 or the device's, and then writes n * 4 + k
        // bytes after the header (table, then key); the buffer holds
        // n + ceil(k / 4) words there.
        unsafe { self.request_words(iface, CALL, &mut buf) }?;
        let hfunc = buf[4].to_ne_bytes()[0];
        let key_len = (buf[3] as usize).min(k);
        let indir = buf[RXFH_HEADER_WORDS..RXFH_HEADER_WORDS + n].to_vec();
        let key = buf[RXFH_HEADER_WORDS + n..]
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .take(key_len)
            .collect();
        Ok(Rss { indir, key, hfunc })
    }

    /// `ioctl(fd, SIOCETHTOOL, &ifreq)` with `ifr_name = iface` and
    /// `ifr_data = data`.
    fn request<T: Request>(&self, iface: &str, call: &'static str, data: &mut T) -> Result<()> {
        // SAFETY: `data` is a live, exclusively borrowed Request whose layout
        // matches the command it carries (trait contract), so the kernel
        // stays within it.
        unsafe { self.request_ptr(iface, call, (data as *mut T).cast()) }.map(drop)
    }

    /// [`request_ptr`](Self::request_ptr) on a `u32` buffer holding a
    /// variable-length request (header, then array).
    ///
    /// # Safety
    /// The command and sizes in `buf`'s header must make the kernel read and
    /// write no more than `buf.len() * 4` bytes.
    unsafe fn request_words(
        &self,
        iface: &str,
        call: &'static str,
        buf: &mut [u32],
    ) -> Result<libc::c_int> {
        // SAFETY: buf is live and exclusively borrowed for the call; the
        // caller guarantees the kernel stays within it.
        unsafe { self.request_ptr(iface, call, buf.as_mut_ptr().cast()) }
    }

    /// `ioctl(fd, SIOCETHTOOL, &ifreq)` with `ifr_name = iface` and
    /// `ifr_data = data`; returns the ioctl's non-negative result.
    ///
    /// # Safety
    /// `data` must be valid for reads and writes of every byte the kernel
    /// accesses for the command in its first `u32` (given the sizes in its
    /// header), and not be accessed otherwise during the call.
    unsafe fn request_ptr(
        &self,
        iface: &str,
        call: &'static str,
        data: *mut libc::c_void,
    ) -> Result<libc::c_int> {
        let bytes = iface.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(SyscallError::from_errno(call, libc::ENODEV));
        }
        // SAFETY: ifreq is plain data; all-zero is valid.
        let mut req: libc::ifreq = unsafe { mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        req.ifr_ifru.ifru_data = data.cast();
        // SAFETY: req is a live ifreq with a NUL-terminated name (zeroed past
        // it) whose ifr_data is `data`, valid for everything the command
        // touches (caller contract).
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
        cvt(call, ret)
    }
}

impl AsFd for Ethtool {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Whether `feature` is on for `iface` in the calling thread's namespace.
/// Opens a socket per call; keep an [`Ethtool`] for repeated requests.
///
/// # Errors
/// As [`Ethtool::open`] and [`Ethtool::get_feature`].
pub fn get_feature(iface: &str, feature: Feature) -> Result<bool> {
    Ethtool::open()?.get_feature(iface, feature)
}

/// Turns `feature` on or off for `iface` in the calling thread's namespace.
///
/// # Errors
/// As [`Ethtool::open`] and [`Ethtool::set_feature`].
pub fn set_feature(iface: &str, feature: Feature, on: bool) -> Result<()> {
    Ethtool::open()?.set_feature(iface, feature, on)
}

/// The driver of `iface` in the calling thread's namespace.
///
/// # Errors
/// As [`Ethtool::open`] and [`Ethtool::driver_info`].
pub fn driver_info(iface: &str) -> Result<DriverInfo> {
    Ethtool::open()?.driver_info(iface)
}

/// The text of a fixed-size, NUL-padded C string field (lossy UTF-8).
fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::RtNetlink;
    use crate::netns;

    #[test]
    fn features_of_lo_can_be_read() {
        let eth = Ethtool::open().unwrap();
        for feature in Feature::ALL {
            eth.get_feature("lo", feature)
                .unwrap_or_else(|e| panic!("{feature}: {e}"));
        }
        // The legacy command and the feature words say the same of GRO.
        let gro = get_feature("lo", Feature::Gro).unwrap();
        let words = eth.get_features("lo").unwrap();
        assert_eq!(gro, words.get("rx-gro").unwrap().active);
        // In a fresh namespace lo has the kernel's default: software GRO on.
        let fresh = std::thread::spawn(|| {
            // SAFETY: plain syscall; it moves only this (test-owned) thread.
            let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            cvt("unshare(CLONE_NEWNET)", ret).map_err(|e| e.to_string())?;
            get_feature("lo", Feature::Gro).map_err(|e| e.to_string())
        })
        .join()
        .unwrap();
        match fresh {
            Ok(on) => assert!(on, "GRO of lo in a fresh namespace"),
            Err(e) => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED features_of_lo_can_be_read (fresh namespace part): {e}"
                );
            }
        }
    }

    #[test]
    fn driver_info_of_lo_is_not_supported() {
        // lo has neither get_drvinfo, a parent device nor rtnl_link_ops.
        let err = driver_info("lo").unwrap_err();
        assert_eq!(err.call, "ioctl(SIOCETHTOOL, ETHTOOL_GDRVINFO)");
        assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{err}");
    }

    #[test]
    fn unknown_and_invalid_interfaces_name_the_command() {
        let err = get_feature("no-such-if0", Feature::Gro).unwrap_err();
        assert_eq!(err.call, "ioctl(SIOCETHTOOL, ETHTOOL_GGRO)");
        assert_eq!(err.errno(), Some(libc::ENODEV));
        assert!(err.to_string().contains("ETHTOOL_GGRO"), "{err}");
        for bad in ["", "a-name-far-too-long", "l\0o"] {
            let err = get_feature(bad, Feature::Tso).unwrap_err();
            assert_eq!(err.call, "ioctl(SIOCETHTOOL, ETHTOOL_GTSO)");
            assert_eq!(err.errno(), Some(libc::ENODEV));
        }
        let err = driver_info("no-such-if0").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENODEV));
    }

    #[test]
    fn command_table() {
        for f in Feature::ALL {
            let (get, get_call) = f.get_cmd();
            let (set, set_call) = f.set_cmd();
            assert_eq!(set, get + 1, "{f}");
            assert!(
                get_call.starts_with("ioctl(SIOCETHTOOL, ETHTOOL_G"),
                "{get_call}"
            );
            assert!(
                set_call.starts_with("ioctl(SIOCETHTOOL, ETHTOOL_S"),
                "{set_call}"
            );
            assert_eq!(get_call.replacen("_G", "_S", 1), set_call);
        }
        assert_eq!(Feature::Gro.to_string(), "gro");
        assert_eq!(c_string(b"veth\0\0\0"), "veth");
        assert_eq!(c_string(b"full"), "full");
    }

    #[test]
    fn lo_lacks_coalescing_rings_channels_pause_and_rss() {
        // The loopback driver implements only get_link and get_ts_info.
        let eth = Ethtool::open().unwrap();
        let errors = [
            eth.get_coalesce("lo").map(drop).unwrap_err(),
            eth.get_ringparam("lo").map(drop).unwrap_err(),
            eth.get_channels("lo").map(drop).unwrap_err(),
            eth.get_pauseparam("lo").map(drop).unwrap_err(),
            eth.get_rxfh_indir("lo").map(drop).unwrap_err(),
            eth.get_rss("lo").map(drop).unwrap_err(),
        ];
        let calls = [
            "GCOALESCE",
            "GRINGPARAM",
            "GCHANNELS",
            "GPAUSEPARAM",
            "GRXFHINDIR",
            "GRSSH",
        ];
        for (err, cmd) in errors.iter().zip(calls) {
            assert_eq!(err.call, format!("ioctl(SIOCETHTOOL, ETHTOOL_{cmd})"));
            assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{err}");
        }
        let err = eth.get_channels("no-such-if0").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENODEV));
    }

    #[test]
    fn lo_timestamps_in_software() {
        let ts = Ethtool::open().unwrap().get_ts_info("lo").unwrap();
        let names = ts.so_timestamping_names();
        for want in ["software-receive", "software-system-clock"] {
            assert!(names.iter().any(|n| n == want), "{names:?}");
        }
        assert_eq!(ts.phc_index, None);
        assert!(!ts.hardware());
        assert!(ts.tx_type_names().is_empty() && ts.rx_filter_names().is_empty());
    }

    #[test]
    fn features_of_lo_by_kernel_name() {
        let eth = Ethtool::open().unwrap();
        let features = eth.get_features("lo").unwrap();
        assert!(features.iter().count() > 40);
        let gro = features.get("rx-gro").unwrap();
        assert_eq!(gro.active, eth.get_feature("lo", Feature::Gro).unwrap());
        assert!(gro.changeable);
        // Fixed on lo: refused by ETHTOOL_SRXCSUM (see below), so not changeable.
        assert!(!features.get("rx-checksum").unwrap().changeable);
        assert!(features.get("rx-lro").is_some());
        assert!(features.get("no-such-feature").is_none());
        for f in features.iter() {
            assert_eq!(features.at(f.index), Some(f));
            assert!(!f.name.is_empty());
        }
        let funcs = eth.get_strings("lo", StringSet::RssHashFuncs).unwrap();
        assert_eq!(
            funcs.first().map(String::as_str),
            Some("toeplitz"),
            "{funcs:?}"
        );
        let err = eth.get_features("no-such-if0").unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENODEV));
        assert_eq!(err.call, "ioctl(SIOCETHTOOL, ETHTOOL_GSSET_INFO)");
    }

    #[test]
    fn feature_words_and_changes() {
        let names = ["a", "", "c"].map(String::from).to_vec();
        // available, requested, active, never_changed
        let features = Features::from_parts(names, &[[0b001, 0b101, 0b100, 0b010]]);
        let a = features.get("a").unwrap();
        assert!(a.changeable && a.requested && !a.active && !a.never_changed);
        let c = features.at(2).unwrap();
        assert_eq!(c.name, "c");
        assert!(!c.changeable && c.requested && c.active);
        assert_eq!(features.at(1), None, "unnamed bit");
        assert_eq!(features.iter().count(), 2);
        let mut change = features.change();
        assert!(change.is_empty());
        assert!(change.set(2, true));
        assert!(change.set(0, false));
        assert!(!change.set(32, true), "beyond the device's words");
        assert_eq!((change.valid[0], change.requested[0]), (0b101, 0b100));
        let outcome = FeaturesOutcome(ETHTOOL_F_UNSUPPORTED | ETHTOOL_F_WISH);
        assert!(outcome.unsupported() && outcome.wish() && !outcome.compat());
    }

    #[test]
    fn timestamping_names() {
        let ts = TsInfo {
            so_timestamping: 0b101_0101 | (1 << 31),
            phc_index: Some(0),
            tx_types: 0b11,
            rx_filters: 1 << 15,
        };
        assert_eq!(
            ts.so_timestamping_names(),
            [
                "hardware-transmit",
                "hardware-receive",
                "software-system-clock",
                "hardware-raw-clock",
                "bit-31"
            ]
        );
        assert!(ts.hardware());
        assert_eq!(ts.tx_type_names(), ["off", "on"]);
        assert_eq!(ts.rx_filter_names(), ["ntp-all"]);
    }

    /// Changes features only in a private network namespace, on a thread of
    /// its own that ends with it: never in the default namespace.
    #[test]
    fn set_features_in_a_private_namespace() {
        let outcome = std::thread::spawn(|| -> std::result::Result<(), String> {
            // SAFETY: plain syscall; it moves only this (test-owned) thread.
            let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            if let Err(e) = cvt("unshare(CLONE_NEWNET)", ret) {
                return Err(format!("SKIPPED set_features_in_a_private_namespace: {e}"));
            }
            let eth = Ethtool::open().unwrap();
            // rx-checksumming is fixed on lo: setting it (even to its
            // current value) is refused with EOPNOTSUPP, naming the command.
            let err = eth.set_feature("lo", Feature::RxCsum, true).unwrap_err();
            assert_eq!(err.call, "ioctl(SIOCETHTOOL, ETHTOOL_SRXCSUM)");
            assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{err}");
            // GRO is a software feature lo may change.
            for on in [false, true] {
                eth.set_feature("lo", Feature::Gro, on).unwrap();
                assert_eq!(eth.get_feature("lo", Feature::Gro).unwrap(), on);
            }
            // A veth pair with both ends here: the driver names itself, GRO
            // starts off and can be turned on.
            let mut nl = RtNetlink::open().unwrap();
            let here = netns::open_current().unwrap();
            nl.create_veth("ethtst0", "ethtst1", here.as_fd(), None)
                .unwrap();
            let info = eth.driver_info("ethtst0").unwrap();
            assert_eq!(info.driver, "veth");
            assert!(info.bus_info.is_empty(), "{info:?}");
            assert!(!eth.get_feature("ethtst0", Feature::Gro).unwrap());
            eth.set_feature("ethtst0", Feature::Gro, true).unwrap();
            assert!(eth.get_feature("ethtst0", Feature::Gro).unwrap());
            eth.set_feature("ethtst0", Feature::Tso, false).unwrap();
            assert!(!eth.get_feature("ethtst0", Feature::Tso).unwrap());

            // Features by kernel name: a changeable one, a fixed one, and a
            // wish the kernel records but cannot grant.
            let features = eth.get_features("ethtst0").unwrap();
            let gro = features.get("rx-gro").unwrap();
            assert!(gro.active && gro.changeable);
            let mut change = features.change();
            change.set(gro.index, false);
            let outcome = eth.set_features("ethtst0", &change).unwrap();
            assert_eq!(outcome, FeaturesOutcome(0));
            assert!(!eth.get_feature("ethtst0", Feature::Gro).unwrap());
            let lro = features.get("rx-lro").unwrap();
            assert!(!lro.changeable && !lro.active, "{lro:?}");
            let mut change = features.change();
            change.set(lro.index, true);
            let outcome = eth.set_features("ethtst0", &change).unwrap();
            assert!(outcome.unsupported(), "{outcome:?}");
            assert!(
                !eth.get_features("ethtst0")
                    .unwrap()
                    .get("rx-lro")
                    .unwrap()
                    .active
            );
            // TSO needs scatter-gather: with sg off, asking for
            // tx-tcp-segmentation is recorded (requested) but not granted.
            eth.set_feature("ethtst0", Feature::Sg, false).unwrap();
            let features = eth.get_features("ethtst0").unwrap();
            let tso = features.get("tx-tcp-segmentation").unwrap();
            let mut change = features.change();
            change.set(tso.index, true);
            let outcome = eth.set_features("ethtst0", &change).unwrap();
            assert!(outcome.wish() && !outcome.unsupported(), "{outcome:?}");
            let tso = eth.get_features("ethtst0").unwrap();
            let tso = tso.get("tx-tcp-segmentation").unwrap();
            assert!(tso.requested && !tso.active, "{tso:?}");
            eth.set_feature("ethtst0", Feature::Sg, true).unwrap();
            assert!(eth.get_feature("ethtst0", Feature::Tso).unwrap());

            // veth: channels yes (one queue pair per possible CPU at most),
            // coalescing, rings, pause and RSS no; software timestamps.
            let ch = eth.get_channels("ethtst0").unwrap();
            assert_eq!((ch.rx_count, ch.tx_count, ch.combined_count), (1, 1, 0));
            assert!(ch.max_rx >= 1 && ch.max_tx >= 1 && ch.max_combined == 0);
            let too_many = Channels {
                rx_count: ch.max_rx + 1,
                ..ch
            };
            let err = eth.set_channels("ethtst0", &too_many).unwrap_err();
            assert_eq!(err.call, "ioctl(SIOCETHTOOL, ETHTOOL_SCHANNELS)");
            assert_eq!(err.errno(), Some(libc::EINVAL));
            eth.set_channels("ethtst0", &ch).unwrap();
            for err in [
                eth.get_coalesce("ethtst0").map(drop).unwrap_err(),
                eth.set_coalesce("ethtst0", &Coalesce::default())
                    .unwrap_err(),
                eth.get_ringparam("ethtst0").map(drop).unwrap_err(),
                eth.set_ringparam("ethtst0", &Ringparam::default())
                    .unwrap_err(),
                eth.get_pauseparam("ethtst0").map(drop).unwrap_err(),
                eth.set_pauseparam("ethtst0", &Pauseparam::default())
                    .unwrap_err(),
                eth.get_rss("ethtst0").map(drop).unwrap_err(),
                eth.set_rxfh_indir("ethtst0", &[]).unwrap_err(),
            ] {
                assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{err}");
            }
            let ts = eth.get_ts_info("ethtst0").unwrap();
            assert!(
                ts.so_timestamping_names()
                    .contains(&"software-transmit".to_owned())
            );
            Ok(())
        })
        .join()
        .unwrap();
        if let Err(skip) = outcome {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{skip}");
        }
    }
}
