//! XDP steering: loads `bpf/xdp_steer.c` (embedded as an object), attaches it
//! to an interface through a `bpf_link`, and manages its maps — which UDP
//! flows go to which AF_XDP socket — and reads its counters.
//!
//! Layer: control plane of the `xdp://` transport, above aya and
//! `hftnet_sys::netlink`, below the AF_XDP socket code (`xdp::socket`), which
//! registers its sockets here. Nothing here runs on the hot path; every call
//! is a few syscalls and may allocate.
//!
//! The program looks up (destination IPv4 address, destination UDP port) of
//! every frame in its `flows` map; on a hit it redirects the frame to the
//! AF_XDP socket registered for the receive queue the frame came in on, and
//! hands it to the kernel (`XDP_PASS`) when that queue has no socket. Every
//! other frame — ARP, ICMP, TCP, other ports, fragments, IPv4 with options,
//! runts, 802.1ad / stacked VLAN tags — reaches the kernel unchanged and is
//! counted under its reason; the program never drops. A single 802.1Q tag is
//! looked through. See [`VERDICTS`] for the counters.
//!
//! Loaded with [`SteerOptions::stamp_rx`] (its `.rodata` switch, written
//! before the load), the program also writes `bpf_ktime_get_ns()` into 8
//! bytes of XDP metadata in front of each frame it redirects to a socket
//! (never into the frame, never on a frame the kernel gets), which the
//! `xdp://` receive reads as the frame's receive stamp.
//!
//! Invariants:
//! - The program is attached with `BPF_LINK_CREATE` (Linux ≥ 5.9) and the
//!   link is owned by [`Steering`]: dropping it, or the process dying for any
//!   reason (even `SIGKILL`), detaches the program. A kernel that would only
//!   take a netlink attachment (which outlives the process) is refused.
//! - A program someone else attached is never replaced silently: [`Steering::attach`]
//!   fails naming it unless `replace` is set. With `replace`, nothing is
//!   touched before every program found may be replaced and ours passed the
//!   verifier; then a program held by a `bpf_link` of this process (another
//!   [`Steering`]'s) is swapped for ours atomically (`BPF_LINK_UPDATE` with
//!   `BPF_F_REPLACE` naming the old program), and a program held by any
//!   other link is refused, named, and left alone. A program attached through
//!   netlink cannot be swapped for a link in one step (the kernel refuses a
//!   link over it: `dev_xdp_attach`, "Can't replace active XDP program with
//!   BPF link", `EBUSY`), so it is detached — exactly that program:
//!   `XDP_FLAGS_REPLACE` with its descriptor as `IFLA_XDP_EXPECTED_FD` — and
//!   ours attached; if that attach fails, the old program is attached again
//!   in its mode, as it was, and the error says whether that worked. When it
//!   succeeds, its descriptor is kept (so it stays loaded), and once our
//!   link ends — the last [`Steering`] holding it dropped — it is attached
//!   again through netlink in its mode, only where that slot is empty
//!   (`XDP_FLAGS_UPDATE_IF_NOEXIST`): the interface gets back what it had.
//! - Flow ids are indexes below [`MAX_FLOWS`]; a flow's counters are zeroed
//!   when its id is (re)assigned, before the flow is visible to the program.
//!
//! Must never: use `unsafe` (aya and `hftnet-sys` hold it), touch an
//! interface other than the one named, or leave our program attached after
//! the [`Steering`] is gone (the one it replaced is put back instead).
//!
//! Privileges: in practice root. Loading and attaching need `CAP_BPF` and
//! `CAP_NET_ADMIN`; [`stats_of`], [`attached_program`] and `attach` (which
//! looks for programs already attached) walk programs, links and maps by id,
//! which needs `CAP_SYS_ADMIN`.
//!
//! # References
//! - `Documentation/networking/af_xdp.rst`, `Documentation/bpf/map_xskmap.rst`
//! - `include/uapi/linux/if_link.h` (`IFLA_XDP_*`, `XDP_FLAGS_*`),
//!   `net/core/dev.c` (`dev_xdp_attach`), `net/core/rtnetlink.c` (`rtnl_xdp_fill`)
//! - aya 0.14: `aya::programs::Xdp`, `aya::maps::{HashMap, PerCpuArray, XskMap}`

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use aya::maps::{HashMap, Map, MapData, MapError, MapInfo, PerCpuArray, PerCpuValues, XskMap};
use aya::programs::links::LinkType;
use aya::programs::xdp::XdpLinkId;
use aya::programs::{
    ProgramError, ProgramFd, ProgramInfo, Xdp, XdpMode, loaded_links, loaded_programs,
};
use aya::{Ebpf, EbpfError};
use hftnet_sys::SyscallError;
use hftnet_sys::netlink::{
    self, IfInfoMsg, MessageBuilder, NLA_F_NESTED, NLM_F_ACK, NLM_F_REQUEST, RTM_NEWLINK, RtNetlink,
};
use thiserror::Error;

/// The compiled program: the committed `bpf/xdp_steer.o`, or with the
/// `xdp-build` feature the object the build script compiled from the source.
#[cfg(not(feature = "xdp-build"))]
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../../../bpf/xdp_steer.o");
#[cfg(feature = "xdp-build")]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xdp_steer.o"));

/// The program's name in the object and in the kernel (`bpftool prog` shows
/// it); [`stats_of`] recognises our program by it.
pub const PROGRAM_NAME: &str = "xdp_steer";

/// Most flows steered at once; flow ids are `0..MAX_FLOWS`.
pub const MAX_FLOWS: u32 = 64;

/// Receive queues a socket can be registered for: `0..MAX_QUEUES`.
pub const MAX_QUEUES: u32 = 64;

/// The program's counters, in slot order (`enum stat_slot` in
/// `bpf/xdp_steer.c`). The first nine are verdicts, one per frame: the
/// frames an interface received while attached add up to their sum.
/// The last three are not verdicts: `vlan_tagged` counts the frames that
/// carried one 802.1Q tag, whatever became of them; `rx_stamped` and
/// `rx_stamp_refused` count, with [`SteerOptions::stamp_rx`], the
/// redirected frames that got a receive stamp and those whose driver
/// refused the metadata it goes in.
///
/// - `pass_not_ipv4`: not IPv4 (ARP, IPv6, ...), to the kernel.
/// - `pass_not_udp`: IPv4 but not UDP (ICMP, TCP, ...), to the kernel.
/// - `pass_no_flow`: UDP to a destination no flow names, to the kernel.
/// - `pass_fragment`: an IPv4 fragment, to the kernel, which reassembles.
/// - `pass_ip_options`: IPv4 header with options, to the kernel (the
///   user-space UDP layer does not parse options).
/// - `pass_malformed`: a header cut short or inconsistent (runt, bad IHL,
///   total or UDP length beyond the frame), to the kernel.
/// - `pass_vlan`: an 802.1ad S-tag or a second tag, to the kernel.
/// - `redirect`: steered to the AF_XDP socket of the receive queue.
/// - `redirect_failed`: a flow's frame on a queue without a socket, so to
///   the kernel instead.
/// - `vlan_tagged`: carried one 802.1Q tag (looked through, not a verdict).
/// - `rx_stamped`: redirected with a receive stamp in its metadata.
/// - `rx_stamp_refused`: redirected without one, the driver having refused
///   `bpf_xdp_adjust_meta` (no metadata support, or no headroom).
pub const VERDICTS: [&str; 12] = [
    "pass_not_ipv4",
    "pass_not_udp",
    "pass_no_flow",
    "pass_fragment",
    "pass_ip_options",
    "pass_malformed",
    "pass_vlan",
    "redirect",
    "redirect_failed",
    "vlan_tagged",
    "rx_stamped",
    "rx_stamp_refused",
];

/// The program's `.rodata` switch for receive stamps (`stamp_rx` in
/// `bpf/xdp_steer.c`), written before the load.
const GLOBAL_STAMP_RX: &str = "stamp_rx";

/// Bytes of XDP metadata the program puts before a stamped frame: the
/// `CLOCK_MONOTONIC` time of `bpf_ktime_get_ns()`, native byte order.
pub const RX_STAMP_META_LEN: usize = 8;

/// What the program does besides steering, fixed when it is loaded (its
/// read-only data: the verifier sees the values as constants).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SteerOptions {
    /// Stamp each frame redirected to a socket: `bpf_ktime_get_ns()`
    /// (`CLOCK_MONOTONIC`) in [`RX_STAMP_META_LEN`] bytes of XDP metadata
    /// just before the packet, which AF_XDP copies into the UMEM frame in
    /// front of the packet's bytes. Counted in `rx_stamped`, or in
    /// `rx_stamp_refused` where the driver refuses metadata (no stamp
    /// then; the frame is still steered).
    pub stamp_rx: bool,
}

/// Slot of flow `id`'s packet counter; its byte counter follows.
const STAT_FLOW_BASE: u32 = 16;
const STAT_SLOTS: u32 = STAT_FLOW_BASE + 2 * MAX_FLOWS;

const MAP_FLOWS: &str = "flows";
const MAP_XSKS: &str = "xsks";
const MAP_STATS: &str = "stats";

// include/uapi/linux/if_link.h
const IFLA_XDP: u16 = 43;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;
const IFLA_XDP_EXPECTED_FD: u16 = 8;
const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const XDP_FLAGS_HW_MODE: u32 = 1 << 3;
const XDP_FLAGS_REPLACE: u32 = 1 << 4;

/// The `flows` key: `struct flow_key { __u32 daddr; __u16 dport; __u16 pad; }`
/// with address and port in network byte order.
type FlowKey = [u8; 8];

fn flow_key(dst: SocketAddrV4) -> FlowKey {
    let [a, b, c, d] = dst.ip().octets();
    let [p0, p1] = dst.port().to_be_bytes();
    [a, b, c, d, p0, p1, 0, 0]
}

fn flow_dst(key: &FlowKey) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(key[0], key[1], key[2], key[3]),
        u16::from_be_bytes([key[4], key[5]]),
    )
}

/// Which XDP mode to ask for: the URI parameter `attach=auto|native|generic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachPref {
    /// Native (driver) mode if the driver supports it, else generic.
    #[default]
    Auto,
    /// Native (driver) mode only (`attach=native`): the program runs in the
    /// driver before any socket buffer exists. Fails if the driver lacks it.
    Driver,
    /// Generic (SKB) mode only (`attach=generic`): runs in the core network
    /// stack after the socket buffer is built; works on every device, slower.
    Generic,
}

impl AttachPref {
    /// The accepted values of the URI parameter, in the order of the variants.
    pub const NAMES: &'static [&'static str] = &["auto", "native", "generic"];

    /// Parses a URI value (`auto`, `native`, `generic`); `None` for anything else.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(Self::Auto),
            "native" => Some(Self::Driver),
            "generic" => Some(Self::Generic),
            _ => None,
        }
    }

    /// The URI value.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Driver => "native",
            Self::Generic => "generic",
        }
    }
}

/// The XDP mode a program is attached in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, `XDP_FLAGS_DRV_MODE`.
    Driver,
    /// Generic (SKB) mode, `XDP_FLAGS_SKB_MODE`.
    Generic,
}

impl AttachMode {
    /// `native` or `generic`, as in the URI parameter.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Driver => "native",
            Self::Generic => "generic",
        }
    }

    const fn flags(self) -> u32 {
        match self {
            Self::Driver => XDP_FLAGS_DRV_MODE,
            Self::Generic => XDP_FLAGS_SKB_MODE,
        }
    }
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An XDP program found attached to an interface ([`attached_program`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedInfo {
    /// The kernel's program id (`bpftool prog show id ID`).
    pub id: u32,
    /// The program's name (at most 15 bytes; [`PROGRAM_NAME`] for ours).
    pub name: String,
    /// The mode it runs in; `None` for hardware offload.
    pub mode: Option<AttachMode>,
    /// The id of the `bpf_link` holding it, if it was attached through one
    /// (then it goes away with the link's owner); `None` for a netlink
    /// attachment, which stays until someone detaches it.
    pub link_id: Option<u32>,
}

impl AttachedInfo {
    /// True if the program is ours ([`PROGRAM_NAME`]).
    #[must_use]
    pub fn is_steering(&self) -> bool {
        self.name == PROGRAM_NAME
    }

    fn mode_name(&self) -> &'static str {
        self.mode.map_or("offload", AttachMode::name)
    }
}

/// One flow's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowStats {
    /// The id [`Steering::add_flow`] returned.
    pub flow_id: u32,
    /// The destination the flow matches.
    pub dst: SocketAddrV4,
    /// Frames that matched, steered or not (see `redirect_failed`).
    pub packets: u64,
    /// Their bytes, whole frames as received (Ethernet header included).
    pub bytes: u64,
}

/// The program's counters, summed over CPUs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SteerStats {
    /// `(name, count)` for every entry of [`VERDICTS`], in that order.
    pub verdicts: Vec<(&'static str, u64)>,
    /// The flows in the table, by flow id.
    pub flows: Vec<FlowStats>,
}

impl SteerStats {
    /// The count of verdict `name` (one of [`VERDICTS`]); 0 for an unknown name.
    #[must_use]
    pub fn verdict(&self, name: &str) -> u64 {
        self.verdicts
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| *v)
    }

    /// The counters of the flow to `dst`, if it is in the table.
    #[must_use]
    pub fn flow(&self, dst: SocketAddrV4) -> Option<&FlowStats> {
        self.flows.iter().find(|f| f.dst == dst)
    }
}

/// What went wrong in steering, and what to do about it. As in
/// [`crate::OpenError`], each message includes the kernel's (or aya's)
/// answer, so the failed call is a `cause` field rather than an error source.
#[derive(Debug, Error)]
pub enum SteerError {
    /// The interface does not exist in this network namespace.
    #[error(
        "no interface {iface:?} in this network namespace ({cause}); list them with `ip link` \
         (inside an hftnet lab the interface is veth0)"
    )]
    NoInterface {
        /// The name given.
        iface: String,
        /// The netlink error (`ENODEV`, or `EINVAL` for an invalid name).
        cause: SyscallError,
    },
    /// A netlink request failed.
    #[error("{what} on {iface}: {cause}")]
    Netlink {
        /// What was being done.
        what: &'static str,
        /// The interface.
        iface: String,
        /// The kernel's answer.
        cause: SyscallError,
    },
    /// The object could not be parsed or its maps created.
    #[error(
        "loading the XDP steering object (bpf/xdp_steer.o) failed: {}; it needs root \
         (CAP_BPF and CAP_NET_ADMIN) and a kernel with BTF and BPF_LINK_CREATE (Linux >= 5.9)",
        chain(.cause.as_ref())
    )]
    Load {
        /// aya's error.
        cause: Box<EbpfError>,
    },
    /// An endpoint asked for receive stamps on an interface whose program,
    /// shared by the endpoints of this process there, was loaded without
    /// them (its stamp switch is fixed at load).
    #[error(
        "timestamps=rx on {iface}: the XDP program this process already runs there was loaded \
         without receive stamps, by an xdp:// endpoint opened without timestamps=rx; open every \
         xdp:// endpoint of {iface} with timestamps=rx, or none of them"
    )]
    StampsOff {
        /// The interface.
        iface: String,
    },
    /// The embedded object lacks something this loader expects.
    #[error("bpf/xdp_steer.o {what}; rebuild it with bpf/build.sh from bpf/xdp_steer.c")]
    BadObject {
        /// What is wrong.
        what: &'static str,
    },
    /// The kernel refused the program (the message includes the verifier's
    /// log), or another program operation failed.
    #[error("{what}: {}", chain(.cause.as_ref()))]
    Program {
        /// What was being done.
        what: &'static str,
        /// aya's error, with the verifier log for a load failure.
        cause: Box<ProgramError>,
    },
    /// The kernel does not let XDP programs write metadata: its verifier
    /// refuses `bpf_xdp_adjust_meta`, which the program's receive stamps
    /// ([`SteerOptions::stamp_rx`]) need. (Some kernels build XDP without
    /// it.) The `xdp://` transport then loads the program without stamps
    /// and stamps frames as it reads them off the ring instead.
    #[error(
        "this kernel does not let XDP programs write metadata (its verifier refuses \
         bpf_xdp_adjust_meta), which the steering program's receive stamps need: load it \
         without them (stamp_rx off; xdp:// then stamps frames as it reads them off the \
         ring): {}",
        chain(.cause.as_ref())
    )]
    MetadataRefused {
        /// aya's error, with the verifier log.
        cause: Box<ProgramError>,
    },
    /// Another program is attached and `replace` was not given.
    #[error(
        "{iface} already has XDP program id {id} ({name:?}, {mode}) attached; hftnet does not \
         replace someone else's program silently: pass replace=1 to replace it"
    )]
    Busy {
        /// The interface.
        iface: String,
        /// The attached program's id.
        id: u32,
        /// Its name.
        name: String,
        /// Its mode (`native`, `generic` or `offload`).
        mode: &'static str,
    },
    /// The program to replace is held by a `bpf_link` this process's
    /// steering does not own (another process's, or another loader's):
    /// `replace` leaves it alone, and nothing was changed.
    #[error(
        "{iface} has XDP program id {id} ({name:?}) attached through bpf_link id {link_id}, \
         which hftnet does not own (another process's or another loader's), so replace=1 \
         leaves it alone and changed nothing; stop its owner, or force it off with \
         `bpftool link detach id {link_id}`"
    )]
    HeldByLink {
        /// The interface.
        iface: String,
        /// The attached program's id.
        id: u32,
        /// Its name.
        name: String,
        /// The link's id.
        link_id: u32,
    },
    /// Attaching failed in every mode tried.
    #[error(
        "attaching XDP to {iface} in {tried} mode failed: {}{hint}",
        chain(.cause.as_ref())
    )]
    Attach {
        /// The interface.
        iface: String,
        /// The mode(s) tried.
        tried: &'static str,
        /// aya's error for the last mode tried.
        cause: Box<ProgramError>,
        /// What to try instead.
        hint: &'static str,
    },
    /// The kernel attached through netlink instead of a `bpf_link` (aya's
    /// fallback on kernels without `BPF_LINK_CREATE` for XDP); refused, since
    /// such a program would outlive the process.
    #[error(
        "the kernel attached XDP to {iface} without a bpf_link (netlink fallback), so the \
         program would outlive this process; hftnet needs BPF_LINK_CREATE for XDP (Linux >= 5.9). \
         It was detached again"
    )]
    NoLink {
        /// The interface.
        iface: String,
    },
    /// `replace`: the program held by a link of this process runs in
    /// another mode than the one asked for; taking the link over keeps its
    /// mode, so nothing was changed.
    #[error(
        "{iface} runs XDP program id {id} in {have} mode through a bpf_link of this process; \
         replacing it keeps that mode, but attach={want} was asked: ask attach={have} or \
         attach=auto (nothing was changed)"
    )]
    ModeMismatch {
        /// The interface.
        iface: String,
        /// The attached program's id.
        id: u32,
        /// Its mode.
        have: &'static str,
        /// The mode asked for.
        want: &'static str,
    },
    /// `replace`: swapping a program for ours failed. `cause` says why;
    /// `restored` lists the programs put back as they were, `not_restored`
    /// those that could not be (the interface may lack them now).
    #[error("replacing the XDP program on {iface} failed: {cause}; {}", restore_note(.restored, .not_restored, .iface))]
    ReplaceFailed {
        /// The interface.
        iface: String,
        /// Why the replacement failed.
        cause: Box<SteerError>,
        /// Ids of the programs detached and attached again.
        restored: Vec<u32>,
        /// Ids of the programs detached that could not be attached again,
        /// with the kernel's answer.
        not_restored: Vec<(u32, SyscallError)>,
    },
    /// A map operation failed.
    #[error("{what}: {}", chain(.cause.as_ref()))]
    Map {
        /// What was being done.
        what: String,
        /// aya's error.
        cause: Box<MapError>,
    },
    /// All [`MAX_FLOWS`] flow ids are in use.
    #[error(
        "cannot steer {dst}: all {max} flows are in use; remove one first",
        max = MAX_FLOWS
    )]
    TooManyFlows {
        /// The flow that did not fit.
        dst: SocketAddrV4,
    },
    /// [`Steering::remove_flow`] of a flow that is not in the table.
    #[error("no steered flow to {dst}")]
    UnknownFlow {
        /// The destination given.
        dst: SocketAddrV4,
    },
    /// A queue number at or above [`MAX_QUEUES`].
    #[error("receive queue {queue} is out of range: XDP steering supports queues 0..{max}", max = MAX_QUEUES)]
    QueueOutOfRange {
        /// The queue given.
        queue: u32,
    },
    /// No XDP program on the interface ([`stats_of`]).
    #[error("no XDP program is attached to {iface}: is an xdp:// transport running on it?")]
    NotAttached {
        /// The interface.
        iface: String,
    },
    /// The program on the interface is not ours ([`stats_of`]).
    #[error(
        "the XDP program on {iface} is id {id} ({name:?}), not hftnet's {PROGRAM_NAME:?}; \
         no steering statistics to read"
    )]
    NotOurs {
        /// The interface.
        iface: String,
        /// The program's id.
        id: u32,
        /// Its name.
        name: String,
    },
    /// The program lacks one of its maps, or has one of another size
    /// (another build of it?).
    #[error(
        "XDP program id {id} on {iface} has no map {map:?} of the expected size; it is not the \
         program this hftnet was built with"
    )]
    MissingMap {
        /// The interface.
        iface: String,
        /// The program's id.
        id: u32,
        /// The missing map's name.
        map: &'static str,
    },
    /// The number of possible CPUs could not be read.
    #[error("reading the number of possible CPUs ({what}) failed: {cause}")]
    Cpus {
        /// The file or call.
        what: &'static str,
        /// The error.
        cause: std::io::Error,
    },
}

fn restore_note(restored: &[u32], not_restored: &[(u32, SyscallError)], iface: &str) -> String {
    let mut s = String::new();
    if !restored.is_empty() {
        let ids: Vec<String> = restored.iter().map(u32::to_string).collect();
        s.push_str(&format!(
            "the program attached before (id {}) was put back as it was",
            ids.join(", ")
        ));
    }
    for (id, e) in not_restored {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!(
            "PUTTING BACK program id {id} FAILED ({e}): {iface} may have no XDP program now; \
             attach it again (`bpftool net attach xdp id {id} dev {iface}`)"
        ));
    }
    if s.is_empty() {
        s.push_str("nothing was changed");
    }
    s
}

fn map_err(what: impl Into<String>) -> impl FnOnce(MapError) -> SteerError {
    let what = what.into();
    move |source| SteerError::Map {
        what,
        cause: Box::new(source),
    }
}

/// `e` and its sources, joined by ": "; a source whose text the message
/// already holds is left out (aya repeats some in its own messages).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        next = c.source();
    }
    s
}

fn nr_cpus() -> Result<usize, SteerError> {
    aya::util::nr_cpus().map_err(|(what, source)| SteerError::Cpus {
        what,
        cause: source,
    })
}

// ---- netlink: which programs are attached, and detaching one ----

/// The XDP state of a link, from `RTM_GETLINK` (see [`parse_xdp_state`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpState {
    /// `ifi_index`.
    pub ifindex: u32,
    /// `IFLA_XDP_DRV_PROG_ID`: the program attached in native (driver) mode.
    pub drv: Option<u32>,
    /// `IFLA_XDP_SKB_PROG_ID`: the program attached in generic mode.
    pub skb: Option<u32>,
    /// `IFLA_XDP_HW_PROG_ID`: the program offloaded to the device.
    pub hw: Option<u32>,
}

impl XdpState {
    /// `(program id, mode)` of each attached program, native first
    /// (`None`: offloaded).
    pub fn programs(&self) -> impl Iterator<Item = (u32, Option<AttachMode>)> {
        [
            self.drv.map(|id| (id, Some(AttachMode::Driver))),
            self.skb.map(|id| (id, Some(AttachMode::Generic))),
            self.hw.map(|id| (id, None)),
        ]
        .into_iter()
        .flatten()
    }
}

/// Reads the XDP state of a link from the payload of an `RTM_NEWLINK`
/// (after the netlink header): the programs of the `IFLA_XDP` attributes, a
/// program id 0 or of the wrong length read as none. `None` if the header
/// is short or the index negative. Never panics, whatever the bytes.
#[must_use]
pub fn parse_xdp_state(payload: &[u8]) -> Option<XdpState> {
    let hdr = IfInfoMsg::parse(payload)?;
    let mut st = XdpState {
        ifindex: u32::try_from(hdr.index).ok()?,
        ..XdpState::default()
    };
    let u32_of = |p: &[u8]| {
        <[u8; 4]>::try_from(p)
            .ok()
            .map(u32::from_ne_bytes)
            .filter(|&id| id != 0)
    };
    for a in netlink::attributes(&payload[IfInfoMsg::LEN..]) {
        if a.attr_type != IFLA_XDP {
            continue;
        }
        for x in netlink::attributes(a.payload) {
            match x.attr_type {
                IFLA_XDP_DRV_PROG_ID => st.drv = u32_of(x.payload),
                IFLA_XDP_SKB_PROG_ID => st.skb = u32_of(x.payload),
                IFLA_XDP_HW_PROG_ID => st.hw = u32_of(x.payload),
                _ => {}
            }
        }
    }
    Some(st)
}

fn xdp_state(nl: &mut RtNetlink, iface: &str) -> Result<XdpState, SteerError> {
    let call = "rtnetlink RTM_GETLINK";
    let no_such = |cause| SteerError::NoInterface {
        iface: iface.to_string(),
        cause,
    };
    // IFNAMSIZ is 16 with the NUL; the kernel would refuse such names anyway.
    if iface.is_empty() || iface.len() >= 16 || iface.contains(['/', ':', '\0']) {
        return Err(no_such(SyscallError::from_errno(call, libc::EINVAL)));
    }
    let replies = nl
        .request(call, netlink::get_link_by_name_request(iface))
        .map_err(|e| match e.errno() {
            Some(libc::ENODEV | libc::EINVAL) => no_such(e),
            _ => SteerError::Netlink {
                what: "reading the link (RTM_GETLINK)",
                iface: iface.to_string(),
                cause: e,
            },
        })?;
    replies
        .iter()
        .filter(|r| r.msg_type == netlink::RTM_NEWLINK)
        .find_map(|r| parse_xdp_state(&r.payload))
        .ok_or_else(|| SteerError::Netlink {
            what: "reading the XDP state (RTM_GETLINK)",
            iface: iface.to_string(),
            cause: SyscallError::from_errno(call, libc::EBADMSG),
        })
}

fn open_netlink(iface: &str) -> Result<RtNetlink, SteerError> {
    RtNetlink::open().map_err(|source| SteerError::Netlink {
        what: "opening an rtnetlink socket",
        iface: iface.to_string(),
        cause: source,
    })
}

/// The program with `id`: its info, or `None` if it is gone.
fn program_info(id: u32) -> Result<Option<ProgramInfo>, SteerError> {
    let mut first_err = None;
    for p in loaded_programs() {
        match p {
            Ok(p) if p.id() == id => return Ok(Some(p)),
            Ok(_) => {}
            // ENOENT: a program unloaded during the walk. Remember others.
            Err(ProgramError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(source) => Err(SteerError::Program {
            what: "listing the loaded BPF programs (BPF_PROG_GET_NEXT_ID)",
            cause: Box::new(source),
        }),
        None => Ok(None),
    }
}

/// The id of the XDP `bpf_link` holding program `prog_id`, if any.
fn xdp_link_of(prog_id: u32) -> Option<u32> {
    loaded_links()
        .flatten()
        .find(|l| l.program_id() == prog_id && matches!(l.link_type(), Ok(LinkType::Xdp)))
        .map(|l| l.id())
}

fn describe(id: u32, mode: Option<AttachMode>) -> Result<AttachedInfo, SteerError> {
    let name = program_info(id)?
        .map(|p| String::from_utf8_lossy(p.name()).into_owned())
        .unwrap_or_default();
    Ok(AttachedInfo {
        id,
        name,
        mode,
        link_id: xdp_link_of(id),
    })
}

/// The XDP program attached to `iface` (in this thread's network namespace),
/// or `None` if there is none. With programs in several modes at once, the
/// native one is reported, else the generic one.
///
/// # Errors
/// [`SteerError::NoInterface`], [`SteerError::Netlink`], or
/// [`SteerError::Program`] if the programs cannot be listed (`EPERM` without
/// `CAP_SYS_ADMIN`/`CAP_BPF`).
pub fn attached_program(iface: &str) -> Result<Option<AttachedInfo>, SteerError> {
    let mut nl = open_netlink(iface)?;
    let st = xdp_state(&mut nl, iface)?;
    st.programs()
        .next()
        .map(|(id, mode)| describe(id, mode))
        .transpose()
}

/// The record of who loaded a copy of a program that carries one
/// (`hftnet_owner` in `bpf/dpdk_udp.c`): the loader's PID, its start time
/// (field 22 of `/proc/PID/stat`, so a PID reused later is not taken for
/// it) and its PID namespace. The loader writes it into the object before
/// the load ([`ProgramOwner::stamp`]); it is the value of the program's
/// `.rodata` map, which libbpf binds to the program, so the next start finds
/// it among the program's maps ([`program_owner`]). The program never
/// reads it.
#[cfg(feature = "dpdk")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProgramOwner {
    pub(crate) pid: u32,
    pub(crate) start_time: u64,
    pub(crate) pid_ns: u64,
}

#[cfg(feature = "dpdk")]
impl ProgramOwner {
    /// `"hftowner"`: the first 8 bytes of the record, so it is known among
    /// a program's maps and in the object.
    const MAGIC: [u8; 8] = *b"hftowner";
    /// `struct hftnet_owner`: magic, pid, pad, start_time, pid_ns.
    pub(crate) const SIZE: usize = 32;

    /// This process.
    ///
    /// # Errors
    /// Why its start time or PID namespace cannot be read.
    pub(crate) fn this_process() -> Result<Self, String> {
        let pid = std::process::id();
        Ok(Self {
            pid,
            start_time: hftnet_sys::proc::start_time(pid)?
                .ok_or_else(|| format!("/proc/{pid}/stat (this process) is missing"))?,
            pid_ns: hftnet_sys::proc::pid_namespace()?,
        })
    }

    fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..8].copy_from_slice(&Self::MAGIC);
        b[8..12].copy_from_slice(&self.pid.to_le_bytes());
        b[16..24].copy_from_slice(&self.start_time.to_le_bytes());
        b[24..32].copy_from_slice(&self.pid_ns.to_le_bytes());
        b
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != Self::SIZE || b[..8] != Self::MAGIC {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        Some(Self {
            pid: u32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
            start_time: u64_at(16),
            pid_ns: u64_at(24),
        })
    }

    /// `object` (a BPF object file) with its owner record — the one place
    /// its bytes are the magic followed by zeros — filled in with `self`.
    ///
    /// # Errors
    /// The object has no blank record, or more than one.
    pub(crate) fn stamp(self, object: &[u8]) -> Result<Vec<u8>, String> {
        let mut blank = [0u8; Self::SIZE];
        blank[..8].copy_from_slice(&Self::MAGIC);
        let mut at = object
            .windows(Self::SIZE)
            .enumerate()
            .filter(|(_, w)| *w == blank)
            .map(|(i, _)| i);
        match (at.next(), at.next()) {
            (Some(i), None) => {
                let mut out = object.to_vec();
                out[i..i + Self::SIZE].copy_from_slice(&self.to_bytes());
                Ok(out)
            }
            (None, _) => Err("the BPF object has no blank owner record (hftnet_owner)".into()),
            (Some(_), Some(_)) => {
                Err("the BPF object has more than one blank owner record (hftnet_owner)".into())
            }
        }
    }

    /// Whether the owner is a live process: its PID names a process of this
    /// PID namespace with the same start time (a zombie counts as alive).
    ///
    /// # Errors
    /// Why it cannot be told: a blank record (PID 0: the object was loaded
    /// as committed, by someone who wrote no owner), another PID namespace,
    /// or an unreadable `/proc/PID/stat`.
    pub(crate) fn alive(&self) -> Result<bool, String> {
        if self.pid == 0 {
            return Err("its owner record is blank (the object was loaded by something other \
                        than hftnet, which writes its PID there)"
                .into());
        }
        let ns = hftnet_sys::proc::pid_namespace()?;
        if self.pid_ns != ns {
            return Err(format!(
                "it was loaded by PID {} of another PID namespace (inode {}, ours {ns}), which \
                 cannot be checked from here",
                self.pid, self.pid_ns
            ));
        }
        Ok(hftnet_sys::proc::start_time(self.pid)? == Some(self.start_time))
    }
}

/// The owner record of program `info` ([`ProgramOwner`]): found among its
/// maps (`BPF_OBJ_GET_INFO_BY_FD` map ids, each opened with
/// `BPF_MAP_GET_FD_BY_ID`) as a one-entry array whose value starts with the
/// magic.
///
/// # Errors
/// Why it cannot be read: the maps cannot be listed or opened, or none
/// holds a record (a copy loaded by a build that wrote none, or by a loader
/// that did not bind `.rodata`).
#[cfg(feature = "dpdk")]
fn program_owner(info: &ProgramInfo) -> Result<ProgramOwner, String> {
    use aya::maps::{Array, MapType};
    let ids = info
        .map_ids()
        .map_err(|e| format!("listing its maps (BPF_OBJ_GET_INFO_BY_FD): {e}"))?
        .ok_or("the kernel does not list a program's maps")?;
    let mut first_err = None;
    for id in ids {
        let looked = MapData::from_id(id).and_then(|data| {
            let mi = data.info()?;
            if !matches!(mi.map_type(), Ok(MapType::Array))
                || mi.value_size() as usize != ProgramOwner::SIZE
                || mi.max_entries() != 1
            {
                return Ok(None);
            }
            let arr: Array<MapData, [u8; ProgramOwner::SIZE]> =
                Array::try_from(Map::from_map_data(data)?)?;
            Ok(ProgramOwner::from_bytes(&arr.get(&0, 0)?))
        });
        match looked {
            Ok(Some(owner)) => return Ok(owner),
            Ok(None) => {}
            Err(e) => {
                first_err.get_or_insert_with(|| format!("reading its map {id}: {e}"));
            }
        }
    }
    Err(first_err.unwrap_or_else(|| {
        "none of its maps holds an owner record (loaded by a build of hftnet that wrote none)"
            .into()
    }))
}

/// What [`claim_orphan`] found in an interface's XDP slot.
#[cfg(feature = "dpdk")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum XdpSlot {
    /// No XDP program attached.
    Free,
    /// Ours, left by a dead process: detached now (its id).
    OrphanRemoved(u32),
    /// A program that stays: not ours.
    Taken(AttachedInfo),
    /// Ours, in use: its owner (the PID) is alive.
    InUse(AttachedInfo, u32),
    /// A program (its id) that stays because it could not be looked at
    /// (why: e.g. no `CAP_SYS_ADMIN` to read BPF programs or maps, or an
    /// owner record that cannot be read or checked).
    Unknown(u32, String),
}

/// Looks at the XDP slot of `iface` (this thread's network namespace) and
/// detaches a program a dead process left there: attached through netlink
/// (no `bpf_link`, whose owner would be alive), named `name`, with the tag
/// `tag()` gives (the SHA the kernel computes over the instructions, the
/// same for every load of one object; asked only when a program of that
/// name is found), and whose owner record ([`ProgramOwner`], among its maps)
/// names a process that is gone (or a PID now another process's). Exactly
/// that program is detached (`XDP_FLAGS_REPLACE` naming it). Any other
/// program is left alone and reported as [`XdpSlot::Taken`], ours with a
/// live owner as [`XdpSlot::InUse`]; one that cannot be looked at or
/// detached (no privilege to read programs or maps, no readable owner
/// record, a failed detach) as [`XdpSlot::Unknown`] — never as free.
///
/// # Errors
/// [`SteerError::NoInterface`], [`SteerError::Netlink`]: the slot could not
/// be read at all.
#[cfg(feature = "dpdk")]
pub(crate) fn claim_orphan(
    iface: &str,
    name: &str,
    tag: impl FnOnce() -> Option<u64>,
) -> Result<XdpSlot, SteerError> {
    let mut nl = open_netlink(iface)?;
    let st = xdp_state(&mut nl, iface)?;
    let Some((id, mode)) = st.programs().next() else {
        return Ok(XdpSlot::Free);
    };
    Ok(remove_if_orphan(&mut nl, iface, st.ifindex, id, mode, name, tag)
        .unwrap_or_else(|e| XdpSlot::Unknown(id, e.to_string())))
}

/// [`claim_orphan`] once a program (`id`, attached in `mode`) was seen.
#[cfg(feature = "dpdk")]
fn remove_if_orphan(
    nl: &mut RtNetlink,
    iface: &str,
    ifindex: u32,
    id: u32,
    mode: Option<AttachMode>,
    name: &str,
    tag: impl FnOnce() -> Option<u64>,
) -> Result<XdpSlot, SteerError> {
    let attached = describe(id, mode)?;
    let ours = attached.name == name && attached.link_id.is_none();
    let info = match program_info(id)? {
        Some(info) if ours && tag() == Some(info.tag()) => info,
        _ => return Ok(XdpSlot::Taken(attached)),
    };
    match program_owner(&info).and_then(|o| o.alive().map(|alive| (o, alive))) {
        Ok((_, false)) => {}
        Ok((owner, true)) => return Ok(XdpSlot::InUse(attached, owner.pid)),
        Err(why) => return Ok(XdpSlot::Unknown(id, format!("its owner: {why}"))),
    }
    let fd = info.fd().map_err(|e| SteerError::Program {
        what: "opening the orphaned XDP program (BPF_PROG_GET_FD_BY_ID)",
        cause: Box::new(e),
    })?;
    netlink_detach(nl, iface, ifindex, &attached, fd.as_fd())?;
    Ok(XdpSlot::OrphanRemoved(id))
}

/// The tag of the XDP program `program` of the BPF object `object` (as
/// loaded by the kernel now: the program is loaded, read and unloaded,
/// never attached), or `None` if it cannot be loaded.
#[cfg(feature = "dpdk")]
pub(crate) fn program_tag(object: &[u8], program: &str) -> Option<u64> {
    let mut ebpf = Ebpf::load(object).ok()?;
    let xdp: &mut Xdp = ebpf.program_mut(program)?.try_into().ok()?;
    xdp.load().ok()?;
    xdp.info().ok().map(|i| i.tag())
}

/// The netlink mode flags of a program attached in `mode` (`None`: offload).
fn mode_flags(mode: Option<AttachMode>) -> u32 {
    match mode {
        Some(m) => m.flags(),
        None => XDP_FLAGS_HW_MODE,
    }
}

/// `RTM_NEWLINK` with `IFLA_XDP`: attaches `prog` (detaches, with `None`) on
/// `ifindex` with `flags`, and with `expected` as `IFLA_XDP_EXPECTED_FD`
/// (then `XDP_FLAGS_REPLACE` is set: the kernel acts only if that program is
/// the one attached, else `EEXIST`). Linux ≥ 5.7 for the expected program.
fn netlink_set_xdp(
    nl: &mut RtNetlink,
    call: &'static str,
    ifindex: u32,
    prog: Option<BorrowedFd<'_>>,
    mut flags: u32,
    expected: Option<BorrowedFd<'_>>,
) -> Result<(), SyscallError> {
    if expected.is_some() {
        flags |= XDP_FLAGS_REPLACE;
    }
    let mut m = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(
        &IfInfoMsg {
            index: i32::try_from(ifindex).unwrap_or(i32::MAX),
            ..IfInfoMsg::default()
        }
        .to_bytes(),
    );
    let nest = m.begin_nested(IFLA_XDP | NLA_F_NESTED);
    let fd = prog.map_or(-1, |p| p.as_raw_fd());
    m.attr(IFLA_XDP_FD, &fd.to_ne_bytes());
    m.attr_u32(IFLA_XDP_FLAGS, flags);
    if let Some(e) = expected {
        m.attr(IFLA_XDP_EXPECTED_FD, &e.as_raw_fd().to_ne_bytes());
    }
    m.end_nested(nest);
    nl.request(call, m).map(|_| ())
}

/// Detaches program `info`, whose descriptor is `fd`, from `ifindex` —
/// exactly that program: the kernel refuses with `EEXIST` if another took
/// its place, and with `EBUSY` if a `bpf_link` holds it.
fn netlink_detach(
    nl: &mut RtNetlink,
    iface: &str,
    ifindex: u32,
    info: &AttachedInfo,
    fd: BorrowedFd<'_>,
) -> Result<(), SteerError> {
    let call = "rtnetlink RTM_NEWLINK(xdp detach)";
    match netlink_set_xdp(nl, call, ifindex, None, mode_flags(info.mode), Some(fd)) {
        Ok(()) => Ok(()),
        Err(e) if e.errno() == Some(libc::EBUSY) => Err(SteerError::HeldByLink {
            iface: iface.to_string(),
            id: info.id,
            name: info.name.clone(),
            link_id: xdp_link_of(info.id).unwrap_or(0),
        }),
        Err(source) => Err(SteerError::Netlink {
            what: "detaching the XDP program to replace (replace=1)",
            iface: iface.to_string(),
            cause: source,
        }),
    }
}

/// Attaches the programs `detached` (each with its descriptor) again in
/// their modes through netlink, only where the mode's slot is empty
/// (`XDP_FLAGS_UPDATE_IF_NOEXIST`). Returns the ids put back and those
/// that could not be.
fn restore(
    nl: &mut RtNetlink,
    ifindex: u32,
    detached: &[(&AttachedInfo, BorrowedFd<'_>)],
) -> (Vec<u32>, Vec<(u32, SyscallError)>) {
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for (info, fd) in detached {
        let flags = mode_flags(info.mode) | XDP_FLAGS_UPDATE_IF_NOEXIST;
        match netlink_set_xdp(nl, "rtnetlink RTM_NEWLINK(xdp restore)", ifindex, Some(*fd), flags, None) {
            Ok(()) => ok.push(info.id),
            Err(e) => failed.push((info.id, e)),
        }
    }
    (ok, failed)
}

// ---- reading the counters ----

fn read_stats<F, S>(
    flows: &HashMap<F, FlowKey, u32>,
    stats: &PerCpuArray<S, u64>,
) -> Result<SteerStats, SteerError>
where
    F: std::borrow::Borrow<MapData>,
    S: std::borrow::Borrow<MapData>,
{
    let slot = |i: u32| -> Result<u64, SteerError> {
        let v = stats
            .get(&i, 0)
            .map_err(map_err(format!("reading stats slot {i}")))?;
        Ok(v.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
    };
    let mut verdicts = Vec::with_capacity(VERDICTS.len());
    for (i, name) in (0u32..).zip(VERDICTS) {
        verdicts.push((name, slot(i)?));
    }
    let mut out = Vec::new();
    for entry in flows.iter() {
        let (key, flow_id) = entry.map_err(map_err("reading the flows map"))?;
        let (packets, bytes) = if flow_id < MAX_FLOWS {
            let base = STAT_FLOW_BASE + 2 * flow_id;
            (slot(base)?, slot(base + 1)?)
        } else {
            (0, 0)
        };
        out.push(FlowStats {
            flow_id,
            dst: flow_dst(&key),
            packets,
            bytes,
        });
    }
    out.sort_by_key(|f| f.flow_id);
    Ok(SteerStats {
        verdicts,
        flows: out,
    })
}

/// The counters of the steering program attached to `iface` (in this
/// thread's network namespace), read from another process (`hftnet xdp
/// stats IFACE`): finds the program through netlink, checks it is ours by
/// name, and opens its maps by id.
///
/// # Errors
/// [`SteerError::NotAttached`] if no XDP program is attached,
/// [`SteerError::NotOurs`] if it is someone else's,
/// [`SteerError::MissingMap`] if it lacks our maps, and netlink, program or
/// map errors (`EPERM` without privileges).
pub fn stats_of(iface: &str) -> Result<SteerStats, SteerError> {
    let info = attached_program(iface)?.ok_or_else(|| SteerError::NotAttached {
        iface: iface.to_string(),
    })?;
    if !info.is_steering() {
        return Err(SteerError::NotOurs {
            iface: iface.to_string(),
            id: info.id,
            name: info.name,
        });
    }
    let prog = program_info(info.id)?.ok_or_else(|| SteerError::NotAttached {
        iface: iface.to_string(),
    })?;
    let ids = prog
        .map_ids()
        .map_err(|source| SteerError::Program {
            what: "reading the program's map ids (BPF_OBJ_GET_INFO_BY_FD)",
            cause: Box::new(source),
        })?
        .unwrap_or_default();
    let (mut flows, mut stats) = (None, None);
    for id in ids {
        let name = MapInfo::from_id(id)
            .map_err(map_err(format!("reading map id {id}")))?
            .name_as_str()
            .map(str::to_string);
        let slot = match name.as_deref() {
            Some(MAP_FLOWS) => &mut flows,
            Some(MAP_STATS) => &mut stats,
            _ => continue,
        };
        let data = MapData::from_id(id).map_err(map_err(format!("opening map id {id}")))?;
        *slot = Some(Map::from_map_data(data).map_err(map_err(format!("opening map id {id}")))?);
    }
    let missing = |map| SteerError::MissingMap {
        iface: iface.to_string(),
        id: info.id,
        map,
    };
    let flows: HashMap<MapData, FlowKey, u32> = flows
        .ok_or_else(|| missing(MAP_FLOWS))?
        .try_into()
        .map_err(map_err("map flows"))?;
    let stats: PerCpuArray<MapData, u64> = stats
        .ok_or_else(|| missing(MAP_STATS))?
        .try_into()
        .map_err(map_err("map stats"))?;
    if stats.len() != STAT_SLOTS {
        return Err(missing(MAP_STATS));
    }
    read_stats(&flows, &stats)
}

// ---- the owner ----

/// Ids of the XDP links the [`Steering`]s of this process hold, one entry
/// per holder: the links `replace` may take over.
static OWN_LINKS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Programs attached through netlink that a `replace` detached, by the id
/// of the link of ours that took their place: attached again when that
/// link ends. The netlink socket was opened in the interface's namespace.
struct Replaced {
    link_id: u32,
    ifindex: u32,
    nl: RtNetlink,
    programs: Vec<(AttachedInfo, ProgramFd)>,
}

static REPLACED: Mutex<Vec<Replaced>> = Mutex::new(Vec::new());

fn replaced() -> std::sync::MutexGuard<'static, Vec<Replaced>> {
    REPLACED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn own_links() -> std::sync::MutexGuard<'static, Vec<u32>> {
    OWN_LINKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a [`Steering`] holds its attachment.
enum Hold {
    /// The link it created, in aya's link table.
    Created(XdpLinkId),
    /// A link of another `Steering` of this process whose program it
    /// swapped for its own (`BPF_LINK_UPDATE`); detached with
    /// `BPF_LINK_DETACH`, which ends it for every holder.
    TakenOver(OwnedFd),
}

/// The steering program loaded and attached to one interface, with its maps.
///
/// Dropping it detaches the program (its `bpf_link` is closed) and unloads
/// it once nothing else holds it; so does the process ending in any way.
pub struct Steering {
    iface: String,
    ifindex: u32,
    mode: AttachMode,
    options: SteerOptions,
    prog_id: u32,
    native_error: Option<String>,
    flows: HashMap<MapData, FlowKey, u32>,
    xsks: XskMap<MapData>,
    stats: PerCpuArray<MapData, u64>,
    /// Destination of each flow id in use.
    table: [Option<SocketAddrV4>; MAX_FLOWS as usize],
    /// Our link, detached by `Drop`.
    link: Option<Hold>,
    /// The kernel's id of that link (in [`OWN_LINKS`] while we hold it).
    link_id: u32,
    /// Owns the program and its link (in aya's link table): dropping it
    /// closes the link too, so the program is detached even if `Drop`'s
    /// explicit detach failed.
    ebpf: Ebpf,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("iface", &self.iface)
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .field("options", &self.options)
            .field("prog_id", &self.prog_id)
            .field("link_id", &self.link_id)
            .field("native_error", &self.native_error)
            .field("flows", &self.table.iter().flatten().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What attaching our program produced.
struct Attached {
    hold: Hold,
    link_id: u32,
    mode: AttachMode,
    native_error: Option<String>,
}

impl Steering {
    /// Loads the program and attaches it to `iface` (in this thread's network
    /// namespace) through a `bpf_link`, in the mode `pref` asks for:
    /// [`AttachPref::Auto`] tries native mode and falls back to generic
    /// ([`native_error`](Self::native_error) says why). No flow is steered
    /// until [`add_flow`](Self::add_flow).
    ///
    /// If an XDP program is already attached, this fails with
    /// [`SteerError::Busy`] naming it, unless `replace` is true. Then,
    /// after ours passed the verifier (nothing is touched before):
    /// - a program held by a `bpf_link` of another `Steering` of this
    ///   process is swapped for ours in one step (`BPF_LINK_UPDATE`, only
    ///   if that program is still the link's); the link keeps its mode
    ///   ([`SteerError::ModeMismatch`] if `pref` asks another);
    /// - a program held by any other `bpf_link` is refused
    ///   ([`SteerError::HeldByLink`]) and left alone;
    /// - a program attached through netlink is detached (exactly that one)
    ///   and ours attached through a link; if ours cannot be attached, the
    ///   old one is attached again as it was, and
    ///   [`SteerError::ReplaceFailed`] says whether that worked. When ours
    ///   is attached, the old one is kept loaded and attached again (in its
    ///   mode, where that slot is still empty) once our link ends: when the
    ///   last `Steering` holding it is dropped.
    ///
    /// Minimum kernel: 5.9 (`BPF_LINK_CREATE` for XDP).
    ///
    /// # Errors
    /// [`SteerError::NoInterface`], [`SteerError::Busy`],
    /// [`SteerError::HeldByLink`], [`SteerError::ModeMismatch`],
    /// [`SteerError::ReplaceFailed`], [`SteerError::Load`] /
    /// [`SteerError::Program`] (the verifier's log included),
    /// [`SteerError::MetadataRefused`] (with receive stamps asked for, on a
    /// kernel that refuses XDP programs their metadata; nothing touched),
    /// [`SteerError::Attach`] (e.g. `EOPNOTSUPP` for native mode on a driver
    /// without it), [`SteerError::NoLink`], [`SteerError::Netlink`].
    pub fn attach(iface: &str, pref: AttachPref, replace: bool) -> Result<Self, SteerError> {
        Self::attach_with(iface, pref, replace, SteerOptions::default())
    }

    /// [`attach`](Self::attach) of the program loaded with `options`.
    ///
    /// # Errors
    /// As [`attach`](Self::attach).
    pub fn attach_with(
        iface: &str,
        pref: AttachPref,
        replace: bool,
        options: SteerOptions,
    ) -> Result<Self, SteerError> {
        let mut nl = open_netlink(iface)?;
        let before = xdp_state(&mut nl, iface)?;
        let mut existing = Vec::new();
        for (id, mode) in before.programs() {
            existing.push(describe(id, mode)?);
        }
        if let Some(first) = existing.first()
            && !replace
        {
            return Err(SteerError::Busy {
                iface: iface.to_string(),
                id: first.id,
                name: first.name.clone(),
                mode: first.mode_name(),
            });
        }
        // Every program found must be one we may replace, before anything
        // is touched.
        let owned_link = {
            let own = own_links();
            let mut owned = None;
            for info in &existing {
                match info.link_id {
                    Some(link_id) if own.contains(&link_id) && existing.len() == 1 => {
                        owned = Some((info, link_id));
                    }
                    Some(link_id) => {
                        return Err(SteerError::HeldByLink {
                            iface: iface.to_string(),
                            id: info.id,
                            name: info.name.clone(),
                            link_id,
                        });
                    }
                    None => {}
                }
            }
            owned
        };
        if let Some((info, _)) = owned_link {
            let have = info.mode_name();
            let want = match pref {
                AttachPref::Auto => have,
                AttachPref::Driver => "native",
                AttachPref::Generic => "generic",
            };
            if want != have {
                return Err(SteerError::ModeMismatch {
                    iface: iface.to_string(),
                    id: info.id,
                    have,
                    want,
                });
            }
        }

        let mut ebpf = load_program(options)?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .ok_or(SteerError::BadObject {
                what: "has no XDP program xdp_steer",
            })?;
        let prog_id = prog
            .info()
            .map_err(|source| SteerError::Program {
                what: "reading the loaded program's id",
                cause: Box::new(source),
            })?
            .id();
        let flows = HashMap::try_from(take_map(&mut ebpf, MAP_FLOWS)?)
            .map_err(map_err("map flows"))?;
        let xsks = XskMap::try_from(take_map(&mut ebpf, MAP_XSKS)?).map_err(map_err("map xsks"))?;
        let stats = PerCpuArray::try_from(take_map(&mut ebpf, MAP_STATS)?)
            .map_err(map_err("map stats"))?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .ok_or(SteerError::BadObject {
                what: "has no XDP program xdp_steer",
            })?;

        let attached = if let Some((info, link_id)) = owned_link {
            take_over(&mut nl, iface, prog, prog_id, info, link_id)?
        } else if existing.is_empty() {
            attach_link(&mut nl, iface, before.ifindex, prog, prog_id, pref)?
        } else {
            let (attached, programs) =
                replace_netlink(&mut nl, iface, before.ifindex, prog, prog_id, pref, &existing)?;
            replaced().push(Replaced {
                link_id: attached.link_id,
                ifindex: before.ifindex,
                nl,
                programs,
            });
            attached
        };
        own_links().push(attached.link_id);
        Ok(Self {
            iface: iface.to_string(),
            ifindex: before.ifindex,
            mode: attached.mode,
            options,
            prog_id,
            native_error: attached.native_error,
            flows,
            xsks,
            stats,
            table: [None; MAX_FLOWS as usize],
            link: Some(attached.hold),
            link_id: attached.link_id,
            ebpf,
        })
    }
}

/// The mode the kernel lists program `prog_id` in on the interface, if any.
fn listed_mode(
    nl: &mut RtNetlink,
    iface: &str,
    prog_id: u32,
) -> Result<Option<AttachMode>, SteerError> {
    let after = xdp_state(nl, iface)?;
    Ok(if after.drv == Some(prog_id) {
        Some(AttachMode::Driver)
    } else if after.skb == Some(prog_id) {
        Some(AttachMode::Generic)
    } else {
        None
    })
}

fn not_listed(iface: &str) -> SteerError {
    SteerError::Netlink {
        what: "checking the attachment: the kernel does not list our program on the interface",
        iface: iface.to_string(),
        cause: SyscallError::from_errno("rtnetlink RTM_GETLINK", libc::ENOENT),
    }
}

/// Attaches `prog` to an interface with no XDP program (or none left)
/// through a new `bpf_link`, in the mode `pref` asks for. On failure
/// nothing of ours is attached.
fn attach_link(
    nl: &mut RtNetlink,
    iface: &str,
    ifindex: u32,
    prog: &mut Xdp,
    prog_id: u32,
    pref: AttachPref,
) -> Result<Attached, SteerError> {
    let (try_native, try_generic) = match pref {
        AttachPref::Auto => (true, true),
        AttachPref::Driver => (true, false),
        AttachPref::Generic => (false, true),
    };
    let mut native_error = None;
    let mut native = None;
    if try_native {
        match prog.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(link) => native = Some(link),
            Err(source) if !try_generic || is_conflict(&source) => {
                return Err(SteerError::Attach {
                    iface: iface.to_string(),
                    tried: "native",
                    hint: if is_conflict(&source) {
                        "; another XDP program was attached meanwhile"
                    } else {
                        "; native XDP is unavailable on this device (no driver support, or an MTU \
                         too large for it): try attach=generic or attach=auto"
                    },
                    cause: Box::new(source),
                });
            }
            Err(e) => native_error = Some(chain(&e)),
        }
    }
    let link = match native {
        Some(link) => link,
        None => prog
            .attach_to_if_index(ifindex, XdpMode::Skb)
            .map_err(|source| SteerError::Attach {
                iface: iface.to_string(),
                tried: if try_native {
                    "native and generic"
                } else {
                    "generic"
                },
                hint: "",
                cause: Box::new(source),
            })?,
    };
    let Some(link_id) = xdp_link_of(prog_id) else {
        let _ = prog.detach(link);
        return Err(SteerError::NoLink {
            iface: iface.to_string(),
        });
    };
    // What the kernel reports, not what we asked for.
    match listed_mode(nl, iface, prog_id) {
        Ok(Some(mode)) => Ok(Attached {
            hold: Hold::Created(link),
            link_id,
            mode,
            native_error,
        }),
        Ok(None) => {
            let _ = prog.detach(link);
            Err(not_listed(iface))
        }
        Err(e) => {
            let _ = prog.detach(link);
            Err(e)
        }
    }
}

/// `replace` over programs attached through netlink: detaches each (exactly
/// that program), attaches ours through a link, and on any failure attaches
/// the detached ones again as they were. On success, returns the detached
/// programs with their descriptors, to be put back when our link ends.
fn replace_netlink(
    nl: &mut RtNetlink,
    iface: &str,
    ifindex: u32,
    prog: &mut Xdp,
    prog_id: u32,
    pref: AttachPref,
    existing: &[AttachedInfo],
) -> Result<(Attached, Vec<(AttachedInfo, ProgramFd)>), SteerError> {
    // Their descriptors, held across the change: a detached program stays
    // loaded while we hold one, so it can be put back.
    let mut fds: Vec<(&AttachedInfo, ProgramFd)> = Vec::new();
    for info in existing {
        let Some(p) = program_info(info.id)? else {
            continue; // gone meanwhile
        };
        let fd = p.fd().map_err(|source| SteerError::Program {
            what: "opening the XDP program to replace (BPF_PROG_GET_FD_BY_ID)",
            cause: Box::new(source),
        })?;
        fds.push((info, fd));
    }
    let mut detached: Vec<(&AttachedInfo, BorrowedFd<'_>)> = Vec::new();
    let mut failure = None;
    for (info, fd) in &fds {
        match netlink_detach(nl, iface, ifindex, info, fd.as_fd()) {
            Ok(()) => detached.push((info, fd.as_fd())),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let cause = match failure {
        Some(e) => e,
        None => match attach_link(nl, iface, ifindex, prog, prog_id, pref) {
            Ok(a) => {
                drop(detached);
                let kept = fds
                    .into_iter()
                    .map(|(info, fd)| (info.clone(), fd))
                    .collect();
                return Ok((a, kept));
            }
            Err(e) => e,
        },
    };
    let (restored, not_restored) = restore(nl, ifindex, &detached);
    Err(SteerError::ReplaceFailed {
        iface: iface.to_string(),
        cause: Box::new(cause),
        restored,
        not_restored,
    })
}

/// `replace` over a program held by link `link_id` of another [`Steering`]
/// of this process: swaps it for ours in one step (`BPF_LINK_UPDATE` with
/// `BPF_F_REPLACE`), so the interface never runs without a program and a
/// failure changes nothing.
fn take_over(
    nl: &mut RtNetlink,
    iface: &str,
    prog: &mut Xdp,
    prog_id: u32,
    info: &AttachedInfo,
    link_id: u32,
) -> Result<Attached, SteerError> {
    let failed = |cause: SyscallError| SteerError::ReplaceFailed {
        iface: iface.to_string(),
        cause: Box::new(SteerError::Netlink {
            what: "swapping the program of a bpf_link of this process for ours",
            iface: iface.to_string(),
            cause,
        }),
        restored: Vec::new(),
        not_restored: Vec::new(),
    };
    let link = hftnet_sys::bpf::link_fd_by_id(link_id).map_err(failed)?;
    let old = program_info(info.id)?
        .ok_or_else(|| {
            failed(SyscallError::from_errno(
                "bpf(BPF_PROG_GET_FD_BY_ID)",
                libc::ENOENT,
            ))
        })?
        .fd()
        .map_err(|source| SteerError::Program {
            what: "opening the XDP program to replace (BPF_PROG_GET_FD_BY_ID)",
            cause: Box::new(source),
        })?;
    let new = prog.fd().map_err(|source| SteerError::Program {
        what: "reading our program's descriptor",
        cause: Box::new(source),
    })?;
    hftnet_sys::bpf::link_update(link.as_fd(), new.as_fd(), old.as_fd()).map_err(failed)?;
    match listed_mode(nl, iface, prog_id) {
        Ok(Some(mode)) => Ok(Attached {
            hold: Hold::TakenOver(link),
            link_id,
            mode,
            native_error: None,
        }),
        other => {
            // Put the old program back in the link, then report.
            let back = hftnet_sys::bpf::link_update(link.as_fd(), old.as_fd(), new.as_fd());
            let cause = other.err().unwrap_or_else(|| not_listed(iface));
            let (restored, not_restored) = match back {
                Ok(()) => (vec![info.id], Vec::new()),
                Err(e) => (Vec::new(), vec![(info.id, e)]),
            };
            Err(SteerError::ReplaceFailed {
                iface: iface.to_string(),
                cause: Box::new(cause),
                restored,
                not_restored,
            })
        }
    }
}

/// The embedded object loaded with `options`, its program through the
/// verifier (not attached anywhere).
fn load_program(options: SteerOptions) -> Result<Ebpf, SteerError> {
    let stamp_rx = u32::from(options.stamp_rx);
    let mut ebpf = aya::EbpfLoader::new()
        .override_global(GLOBAL_STAMP_RX, &stamp_rx, true)
        .load(OBJECT)
        .map_err(|source| SteerError::Load {
            cause: Box::new(source),
        })?;
    let prog: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or(SteerError::BadObject {
            what: "has no program xdp_steer",
        })?
        .try_into()
        .map_err(|_| SteerError::BadObject {
            what: "has a program xdp_steer that is not an XDP program",
        })?;
    prog.load().map_err(|source| {
        if options.stamp_rx && refuses_metadata(&source) {
            SteerError::MetadataRefused {
                cause: Box::new(source),
            }
        } else {
            SteerError::Program {
                what: "the kernel refused the XDP steering program",
                cause: Box::new(source),
            }
        }
    })?;
    Ok(ebpf)
}

/// Whether a load failed because the verifier does not offer
/// `bpf_xdp_adjust_meta` to XDP programs (its log: "program of this type
/// cannot use helper bpf_xdp_adjust_meta#54").
fn refuses_metadata(e: &ProgramError) -> bool {
    match e {
        ProgramError::LoadError { verifier_log, .. } => {
            let log = verifier_log.to_string();
            log.contains("cannot use helper bpf_xdp_adjust_meta")
                || log.contains("unknown func bpf_xdp_adjust_meta")
        }
        _ => false,
    }
}

/// Whether this kernel lets the steering program write receive stamps
/// into XDP metadata ([`SteerOptions::stamp_rx`]): the stamping program
/// is loaded through the verifier, not attached. `Ok(false)`: the
/// verifier refuses `bpf_xdp_adjust_meta` to XDP programs
/// ([`SteerError::MetadataRefused`]).
///
/// # Errors
/// Any other load failure (no `CAP_BPF`, a kernel without BPF).
pub fn xdp_metadata_supported() -> Result<bool, SteerError> {
    match load_program(SteerOptions { stamp_rx: true }) {
        Ok(_) => Ok(true),
        Err(SteerError::MetadataRefused { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

impl Steering {

    /// The mode the program runs in, as the kernel reports it.
    #[must_use]
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// What the program was loaded to do besides steering.
    #[must_use]
    pub fn options(&self) -> SteerOptions {
        self.options
    }

    /// The interface's index.
    #[must_use]
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's name.
    #[must_use]
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The kernel's id of our program (`bpftool prog show id ID`).
    #[must_use]
    pub fn program_id(&self) -> u32 {
        self.prog_id
    }

    /// Why native mode was not used when [`AttachPref::Auto`] fell back to
    /// generic mode; `None` otherwise.
    #[must_use]
    pub fn native_error(&self) -> Option<&str> {
        self.native_error.as_deref()
    }

    /// Steers UDP to `dst` (a unicast address of this host or a multicast
    /// group, and a port) to the AF_XDP socket of each receive queue, and
    /// returns the flow's id (`< MAX_FLOWS`). Adding a flow already present
    /// returns its id and changes nothing. A new flow's counters start at 0.
    ///
    /// # Errors
    /// [`SteerError::TooManyFlows`], or [`SteerError::Map`] if the kernel
    /// refuses the update.
    pub fn add_flow(&mut self, dst: SocketAddrV4) -> Result<u32, SteerError> {
        if let Some(id) = self.flow_id(dst) {
            return Ok(id);
        }
        let free = self
            .table
            .iter()
            .position(Option::is_none)
            .ok_or(SteerError::TooManyFlows { dst })?;
        let id = u32::try_from(free).unwrap_or(u32::MAX);
        let cpus = nr_cpus()?;
        let base = STAT_FLOW_BASE + 2 * id;
        for slot in [base, base + 1] {
            let zeros =
                PerCpuValues::try_from(vec![0u64; cpus]).map_err(|source| SteerError::Cpus {
                    what: "per-CPU value count",
                    cause: source,
                })?;
            self.stats.set(slot, zeros, 0).map_err(map_err(format!(
                "zeroing the counters of flow {id} ({dst})"
            )))?;
        }
        self.flows
            .insert(flow_key(dst), id, 0)
            .map_err(map_err(format!("adding flow {dst} to the flows map")))?;
        self.table[free] = Some(dst);
        Ok(id)
    }

    /// Stops steering `dst`: its frames go to the kernel again (counted as
    /// `pass_no_flow`). Its id may be reused by a later [`add_flow`](Self::add_flow).
    ///
    /// # Errors
    /// [`SteerError::UnknownFlow`] if `dst` is not steered, [`SteerError::Map`].
    pub fn remove_flow(&mut self, dst: SocketAddrV4) -> Result<(), SteerError> {
        let id = self.flow_id(dst).ok_or(SteerError::UnknownFlow { dst })?;
        self.flows
            .remove(&flow_key(dst))
            .map_err(map_err(format!("removing flow {dst} from the flows map")))?;
        self.table[id as usize] = None;
        Ok(())
    }

    /// The id of the flow to `dst`, if it is steered.
    #[must_use]
    pub fn flow_id(&self, dst: SocketAddrV4) -> Option<u32> {
        self.table
            .iter()
            .position(|d| *d == Some(dst))
            .and_then(|i| u32::try_from(i).ok())
    }

    /// Makes `xsk`, an AF_XDP socket bound to this interface and `queue`,
    /// the target of the flows' frames arriving on `queue`, replacing any
    /// socket registered there before. The map holds its own reference: the
    /// socket stays registered until [`unregister_socket`](Self::unregister_socket)
    /// or until it is closed.
    ///
    /// # Errors
    /// [`SteerError::QueueOutOfRange`], or [`SteerError::Map`] (`EOPNOTSUPP`
    /// / `EINVAL` if `xsk` is not an AF_XDP socket, `EBUSY`... as the kernel says).
    pub fn register_socket(&mut self, queue: u32, xsk: BorrowedFd<'_>) -> Result<(), SteerError> {
        if queue >= MAX_QUEUES {
            return Err(SteerError::QueueOutOfRange { queue });
        }
        self.xsks.set(queue, xsk, 0).map_err(map_err(format!(
            "registering the AF_XDP socket of queue {queue} in the xsks map (is it an AF_XDP \
             socket bound to {}?)",
            self.iface
        )))
    }

    /// Removes the socket of `queue`: the flows' frames arriving there go to
    /// the kernel again (`redirect_failed`). Nothing registered is not an error.
    ///
    /// # Errors
    /// [`SteerError::QueueOutOfRange`], [`SteerError::Map`].
    pub fn unregister_socket(&mut self, queue: u32) -> Result<(), SteerError> {
        if queue >= MAX_QUEUES {
            return Err(SteerError::QueueOutOfRange { queue });
        }
        match self.xsks.unset(queue) {
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            r => r.map_err(map_err(format!(
                "removing the socket of queue {queue} from the xsks map"
            ))),
        }
    }

    /// The program's counters and the flow table, summed over CPUs.
    ///
    /// # Errors
    /// [`SteerError::Map`] if a map cannot be read.
    pub fn stats(&self) -> Result<SteerStats, SteerError> {
        read_stats(&self.flows, &self.stats)
    }
}

impl Drop for Steering {
    /// Detaches the program: closes our `bpf_link` (one taken over from
    /// another `Steering` is detached for every holder). When no other
    /// `Steering` holds the link any more, the programs attached through
    /// netlink that it replaced are attached again, each in its mode, where
    /// that slot is empty (`XDP_FLAGS_UPDATE_IF_NOEXIST`); one that cannot
    /// be is left detached (and unloaded if nothing else holds it).
    fn drop(&mut self) {
        match self.link.take() {
            Some(Hold::Created(link)) => {
                if let Some(p) = self.ebpf.program_mut(PROGRAM_NAME)
                    && let Ok(xdp) = <&mut Xdp>::try_from(p)
                {
                    let _ = xdp.detach(link);
                }
            }
            Some(Hold::TakenOver(fd)) => {
                let _ = hftnet_sys::bpf::link_detach(fd.as_fd());
            }
            None => {}
        }
        let link_ended = {
            let mut own = own_links();
            if let Some(i) = own.iter().position(|&l| l == self.link_id) {
                own.swap_remove(i);
            }
            !own.contains(&self.link_id)
        };
        if link_ended {
            let taken = {
                let mut r = replaced();
                r.iter()
                    .position(|r| r.link_id == self.link_id)
                    .map(|i| r.swap_remove(i))
            };
            if let Some(mut r) = taken {
                let programs: Vec<(&AttachedInfo, BorrowedFd<'_>)> =
                    r.programs.iter().map(|(i, fd)| (i, fd.as_fd())).collect();
                // Nothing to report to from Drop: a program that cannot be
                // put back (its slot was taken meanwhile) stays detached.
                let _ = restore(&mut r.nl, r.ifindex, &programs);
            }
        }
    }
}

fn is_conflict(e: &ProgramError) -> bool {
    matches!(e, ProgramError::SyscallError(s) if matches!(s.io_error.raw_os_error(), Some(libc::EBUSY | libc::EEXIST)))
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, SteerError> {
    ebpf.take_map(name).ok_or(SteerError::BadObject {
        what: match name {
            MAP_FLOWS => "has no map flows",
            MAP_XSKS => "has no map xsks",
            _ => "has no map stats",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_keys_are_network_order() {
        let dst = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 0x2328);
        let k = flow_key(dst);
        assert_eq!(k, [198, 18, 0, 2, 0x23, 0x28, 0, 0]);
        assert_eq!(flow_dst(&k), dst);
    }

    #[test]
    fn attach_pref_names_round_trip() {
        for (i, name) in AttachPref::NAMES.iter().enumerate() {
            let p = AttachPref::from_name(name).unwrap();
            assert_eq!(p.name(), *name);
            assert_eq!(
                p,
                [AttachPref::Auto, AttachPref::Driver, AttachPref::Generic][i]
            );
        }
        assert_eq!(AttachPref::from_name("driver"), None);
        assert_eq!(AttachMode::Driver.to_string(), "native");
        assert_eq!(AttachMode::Generic.to_string(), "generic");
    }

    #[test]
    fn stat_layout_matches_the_program() {
        // enum stat_slot in bpf/xdp_steer.c
        let src = include_str!("../../../../bpf/xdp_steer.c");
        for (i, name) in VERDICTS.iter().enumerate() {
            let line = format!("STAT_{} = {i},", name.to_uppercase());
            assert!(src.contains(&line), "bpf/xdp_steer.c lacks {line:?}");
        }
        assert!(src.contains(&format!("STAT_FLOW_BASE = {STAT_FLOW_BASE},")));
        assert!(src.contains(&format!("#define MAX_FLOWS {MAX_FLOWS}\n")));
        assert!(src.contains(&format!("#define MAX_QUEUES {MAX_QUEUES}\n")));
        assert!(src.contains(&format!("int {PROGRAM_NAME}(struct xdp_md *ctx)")));
        assert_eq!(STAT_SLOTS, 144);
    }

    #[test]
    fn the_embedded_object_is_an_aligned_bpf_elf_with_our_names() {
        assert!(
            OBJECT.starts_with(b"\x7fELF\x02\x01"),
            "not a 64-bit LE ELF"
        );
        assert_eq!(
            u16::from_le_bytes([OBJECT[18], OBJECT[19]]),
            247,
            "e_machine EM_BPF"
        );
        assert_eq!(
            OBJECT.as_ptr().align_offset(8),
            0,
            "aya wants 8-byte alignment"
        );
        let has = |s: &str| OBJECT.windows(s.len()).any(|w| w == s.as_bytes());
        for name in [
            PROGRAM_NAME,
            MAP_FLOWS,
            MAP_XSKS,
            MAP_STATS,
            GLOBAL_STAMP_RX,
            "Dual BSD/GPL",
        ] {
            assert!(has(name), "bpf/xdp_steer.o lacks {name:?}");
        }
    }

    #[test]
    fn xdp_state_parses_rtnetlink_attributes() {
        let mut m = MessageBuilder::new(RTM_NEWLINK, 0);
        m.push_header(
            &IfInfoMsg {
                index: 7,
                ..IfInfoMsg::default()
            }
            .to_bytes(),
        );
        m.attr_str(netlink::IFLA_IFNAME, "veth0");
        let n = m.begin_nested(IFLA_XDP | NLA_F_NESTED);
        m.attr(2, &[4]); // IFLA_XDP_ATTACHED = XDP_ATTACHED_MULTI
        m.attr_u32(IFLA_XDP_SKB_PROG_ID, 11);
        m.attr_u32(IFLA_XDP_DRV_PROG_ID, 12);
        m.end_nested(n);
        let bytes = m.finish(1);
        let st = parse_xdp_state(&bytes[16..]).unwrap();
        assert_eq!(
            st,
            XdpState {
                ifindex: 7,
                drv: Some(12),
                skb: Some(11),
                hw: None
            }
        );
        let progs: Vec<_> = st.programs().collect();
        assert_eq!(
            progs,
            [
                (12, Some(AttachMode::Driver)),
                (11, Some(AttachMode::Generic))
            ]
        );
        // No IFLA_XDP: nothing attached.
        let mut m = MessageBuilder::new(RTM_NEWLINK, 0);
        m.push_header(&IfInfoMsg::default().to_bytes());
        let bytes = m.finish(1);
        assert_eq!(parse_xdp_state(&bytes[16..]).unwrap().programs().count(), 0);
    }
}
