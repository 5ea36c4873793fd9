//! The ethtool ioctl (`SIOCETHTOOL`): reading and changing a network
//! interface's offload features, and asking which driver runs it.
//!
//! Layer: syscall wrappers for the lab (GRO on veth, so busy polling finds a
//! NAPI context) and for host tuning. Requests go through an `AF_INET`
//! datagram socket; the kernel resolves the interface name in the network
//! namespace *of that socket*, i.e. of the thread that opened the
//! [`Ethtool`] handle (the free functions open one in the calling thread's
//! namespace). A handle opened inside a lab namespace keeps addressing that
//! namespace from any thread.
//!
//! Invariants: every request is a `repr(C)` struct starting with its `u32`
//! command, laid out exactly as in `<linux/ethtool.h>` (sizes are checked at
//! compile time), and the kernel reads and writes only within it. Every
//! failure names the command, e.g. `"ioctl(SIOCETHTOOL, ETHTOOL_SGRO)"`; a
//! device without the operation gives `EOPNOTSUPP`. Only [`DriverInfo`]
//! allocates (its strings).
//!
//! Must never: change a feature other than the one asked for, or touch an
//! interface the caller did not name. Changing features needs
//! `CAP_NET_ADMIN` in the socket's namespace; reading does not.
//!
//! Only the legacy per-feature commands are wrapped so far (`ETHTOOL_G*`/
//! `ETHTOOL_S*` with `struct ethtool_value`). Features without one, such as
//! `rx-udp-gro-forwarding` or `rx-gro-list`, need `ETHTOOL_GFEATURES` /
//! `ETHTOOL_SFEATURES` with the `ETH_SS_FEATURES` string set; add them here.

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

    /// `ioctl(fd, SIOCETHTOOL, &ifreq)` with `ifr_name = iface` and
    /// `ifr_data = data`.
    fn request<T: Request>(&self, iface: &str, call: &'static str, data: &mut T) -> Result<()> {
        let bytes = iface.as_bytes();
        if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(SyscallError::from_errno(call, libc::ENODEV));
        }
        // SAFETY: ifreq is plain data; all-zero is valid.
        let mut req: libc::ifreq = unsafe { mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (data as *mut T).cast();
        // SAFETY: req is a live ifreq with a NUL-terminated name (zeroed past
        // it) whose ifr_data points to `data`, a live, exclusively borrowed
        // Request whose layout matches the command it carries (trait
        // contract), so the kernel stays within it.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
        cvt(call, ret).map(drop)
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
        // lo does software GRO by default (kernel default: on).
        assert!(get_feature("lo", Feature::Gro).is_ok());
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
