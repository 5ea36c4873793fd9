//! Middlewares on any transport URI, in the smoltcp phy pattern (a
//! transport that wraps a transport): packet capture (`pcap=FILE`,
//! `pcap_max=BYTES`) and fault injection (`loss=`, `dup=`, `reorder=`,
//! `delay=`, `jitter=`, `seed=`, `faults_on=`, `fault_slots=`).
//!
//! Layer: between a backend and its caller. Zero cost when absent: a URI
//! without these parameters opens the bare backend, and [`AnyTransport`]
//! holds it directly; only a URI with them gets [`Layered`] (one more
//! enum arm of [`dispatch!`](crate::dispatch)).
//!
//! Capture: a layer-2 backend records its real frames (what AF_XDP or DPDK
//! take off the wire, which tcpdump cannot see); the others hand over
//! payloads only, so [`Layered`] writes synthesized Ethernet/IPv4 (or IPv6)
//! /UDP headers with the real addresses and ports, or for TCP a synthesized
//! connection whose sequence numbers let Wireshark reassemble the stream
//! (each message with its 4-byte length prefix, as it was on the wire).
//! Bounded by `pcap_max`, then it stops and says so; a write error never
//! stops the transport, it is counted.
//!
//! Faults: the seeded engine of [`hftnet_wire::faults`], on sends, receives
//! or both (`faults_on=tx|rx|both`, default both, each direction with its
//! own stream of draws from `seed`), at message level: a message is lost,
//! duplicated, swapped with the next, or delayed whole. Held messages wait in
//! `fault_slots` buffers allocated at open (default 1024), with their
//! destination or source; when all are in use a message that would be held
//! is dropped and counted (`overflow`). Delayed messages leave when due:
//! receives wake for them, so a caller waiting on a receive also releases
//! its delayed sends. A message held for reordering goes after the next one,
//! or, when none comes within [`REORDER_HOLD`], as if it passed then (after
//! the delay, if there is one). A message longer than the transport carries
//! skips the faults and goes to the backend, which refuses it.
//!
//! Capture sits inside the faults: it records what went to the backend
//! (after send faults) and what came from it (before receive faults).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_wire::faults::{FaultInjector, FaultStats, Faults};
use serde::Serialize;

use crate::capabilities::Capabilities;
use crate::error::OpenError;
use crate::lease::{self, CopyLease, CopyTx};
use crate::pcap::{
    HeaderBuf, MAX_HEADER_LEN, PcapStats, PcapWriter, Side, TcpSynth, UdpSynth, realtime_ns,
};
use crate::transport::{Addrs, Lease, RxBurst, RxMeta, Transport, TxMsg, TxStamp};
use crate::uri::{Uri, UriError};
use crate::{AnyTransport, Role};

/// The parameters every scheme accepts for the middlewares.
pub const PARAMS: &[&str] = &[
    "pcap",
    "pcap_max",
    "loss",
    "dup",
    "reorder",
    "delay",
    "jitter",
    "seed",
    "faults_on",
    "fault_slots",
];

/// How long a message held for reordering waits for a next one.
pub const REORDER_HOLD: Duration = Duration::from_millis(1);

/// Held-message buffers unless `fault_slots=` says otherwise.
pub const DEFAULT_FAULT_SLOTS: usize = 1024;

/// The most memory the held-message buffers of one direction may take
/// (`fault_slots` × the transport's largest message): 1 GiB.
pub const MAX_FAULT_BUFFERS: usize = 1 << 30;

/// Longest `delay=` or `jitter=`: 60 s (60.5 s was accepted before, the
/// check looking at whole seconds only).
pub const MAX_FAULT_DELAY: std::time::Duration = std::time::Duration::from_secs(60);

/// Where the capture goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapConfig {
    /// The file (created, or truncated).
    pub path: PathBuf,
    /// Largest size of the file, header included (`pcap_max=`).
    pub max_bytes: Option<u64>,
}

/// Which directions faults apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultsOn {
    /// Messages sent.
    Tx,
    /// Messages received.
    Rx,
    /// Both, with independent draws.
    Both,
}

/// The fault injection asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultConfig {
    /// The faults.
    pub faults: Faults,
    /// Seed of the draws (`seed=`, default 1).
    pub seed: u64,
    /// Directions (`faults_on=`).
    pub on: FaultsOn,
    /// Held-message buffers (`fault_slots=`).
    pub slots: usize,
}

/// The middlewares an endpoint asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layers {
    /// `pcap=` and `pcap_max=`.
    pub pcap: Option<PcapConfig>,
    /// `loss=`, `dup=`, `reorder=`, `delay=`, `jitter=`, `seed=`,
    /// `faults_on=`, `fault_slots=`.
    pub faults: Option<FaultConfig>,
}

impl Layers {
    /// None at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pcap.is_none() && self.faults.is_none()
    }

    /// Takes the middleware parameters out of `uri` (so the backend sees
    /// only its own) and reads them.
    ///
    /// # Errors
    /// [`UriError::BadValue`] naming the parameter and what it accepts.
    pub fn take_from(uri: &mut Uri) -> Result<Self, UriError> {
        let mut own = uri.clone();
        own.params.retain(|(k, _)| PARAMS.contains(&k.as_str()));
        uri.params.retain(|(k, _)| !PARAMS.contains(&k.as_str()));
        if own.params.is_empty() {
            return Ok(Self::default());
        }
        let mut p = own.params(&[PARAMS]);
        let path = p.get_with("pcap", "a file path", |v| {
            (!v.is_empty()).then(|| PathBuf::from(v))
        })?;
        let max_bytes = p.get_with(
            "pcap_max",
            "a size in bytes of at least 24, such as 64M",
            |v| crate::uri::parse_size(v).filter(|n| *n >= 24),
        )?;
        let pcap = match (path, max_bytes) {
            (Some(path), max_bytes) => Some(PcapConfig { path, max_bytes }),
            (None, Some(m)) => {
                return Err(UriError::BadValue {
                    param: "pcap_max".into(),
                    value: m.to_string(),
                    expected: "to be given only with pcap=FILE".into(),
                });
            }
            (None, None) => None,
        };
        let prob = |p: &mut crate::uri::Params<'_>, k: &str| {
            p.get_with(k, "a probability from 0 to 1, e.g. 0.01", |v| {
                v.parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x))
            })
        };
        let loss = prob(&mut p, "loss")?;
        let dup = prob(&mut p, "dup")?;
        let reorder = prob(&mut p, "reorder")?;
        let dur = |p: &mut crate::uri::Params<'_>, k: &str| {
            p.get_with(k, "a duration such as 50us, 2ms or 1s (at most 60s)", |v| {
                crate::uri::parse_duration(v)
                    .filter(|d| *d <= MAX_FAULT_DELAY)
                    .map(|d| d.as_nanos() as u64)
            })
        };
        let delay = dur(&mut p, "delay")?;
        let jitter = dur(&mut p, "jitter")?;
        let seed = p.get_with("seed", "an unsigned 64-bit integer", |v| {
            v.parse::<u64>().ok()
        })?;
        let on = p.choice("faults_on", &["tx", "rx", "both"])?;
        let slots = p.int("fault_slots", 1..=1 << 20)?;
        p.finish()?;
        let any_fault =
            [loss, dup, reorder].iter().any(Option::is_some) || delay.is_some() || jitter.is_some();
        let faults = if any_fault {
            Some(FaultConfig {
                faults: Faults {
                    loss: loss.unwrap_or(0.0),
                    duplicate: dup.unwrap_or(0.0),
                    reorder: reorder.unwrap_or(0.0),
                    delay_ns: delay.unwrap_or(0),
                    jitter_ns: jitter.unwrap_or(0),
                },
                seed: seed.unwrap_or(1),
                on: match on {
                    Some("tx") => FaultsOn::Tx,
                    Some("rx") => FaultsOn::Rx,
                    _ => FaultsOn::Both,
                },
                slots: slots.map_or(DEFAULT_FAULT_SLOTS, |n| n as usize),
            })
        } else {
            for (k, given) in [
                ("seed", seed.is_some()),
                ("faults_on", on.is_some()),
                ("fault_slots", slots.is_some()),
            ] {
                if given {
                    return Err(UriError::BadValue {
                        param: k.into(),
                        value: String::new(),
                        expected: "to be given only with a fault: loss=, dup=, reorder=, \
                                   delay= or jitter="
                            .into(),
                    });
                }
            }
            None
        };
        Ok(Self { pcap, faults })
    }

    /// Wraps `t` (opened in `role`) in the middlewares; returns it unchanged
    /// when there are none, or when the only one is a capture the backend
    /// takes itself (layer-2 rings record their real frames).
    ///
    /// # Errors
    /// [`OpenError::Capture`] when the capture file cannot be created;
    /// [`OpenError::Uri`] for held-message buffers over
    /// [`MAX_FAULT_BUFFERS`] or a probability outside `[0, 1]`.
    pub fn wrap(&self, mut t: AnyTransport, role: Role) -> Result<AnyTransport, OpenError> {
        if self.is_empty() {
            return Ok(t);
        }
        let mut synth = None;
        if let Some(p) = &self.pcap {
            let w = PcapWriter::create(&p.path, p.max_bytes).map_err(|e| OpenError::Capture {
                path: p.path.clone(),
                cause: e,
            })?;
            let cap = Box::new(Capture::new(w, p.path.clone()));
            if let Err(cap) = t.capture_frames(cap) {
                let kind = Kind::of(&t);
                synth = Some(SynthCapture {
                    cap,
                    kind,
                    role,
                    udp: UdpSynth::new(),
                    tcp: None,
                });
            }
        }
        if self.faults.is_none() && synth.is_none() {
            return Ok(t);
        }
        Ok(AnyTransport::Layered(Box::new(Layered::new(
            t,
            synth,
            self.faults,
        )?)))
    }
}

/// A capture file being written; a layer-2 backend records its frames in
/// it, or [`Layered`] records payloads with synthesized headers.
#[derive(Debug)]
pub struct Capture {
    w: PcapWriter,
    path: PathBuf,
}

impl Capture {
    /// A capture into `w`, written at `path`.
    #[must_use]
    pub fn new(w: PcapWriter, path: PathBuf) -> Self {
        Self { w, path }
    }

    /// Records one frame as it is on the wire (`wire_len` bytes long; the
    /// frame may be cut short).
    #[inline]
    pub fn frame(&mut self, ts_ns: u64, frame: &[u8], wire_len: usize) {
        self.w.record(ts_ns, &[frame], wire_len);
    }

    /// Records one frame made of `parts`.
    #[inline]
    pub fn parts(&mut self, ts_ns: u64, parts: &[&[u8]]) {
        self.w.record_frame(ts_ns, parts);
    }

    /// What was written, for the capability report.
    #[must_use]
    pub fn caps(&self) -> CaptureCaps {
        CaptureCaps {
            path: self.path.display().to_string(),
            stats: self.w.stats(),
            stopped: self.w.note(),
        }
    }
}

/// What a capture wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureCaps {
    /// The file.
    pub path: String,
    /// Records and bytes written, and what was not.
    #[serde(flatten)]
    pub stats: PcapStats,
    /// Why it stopped early, if it did.
    pub stopped: Option<String>,
}

impl CaptureCaps {
    /// One line for the report.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = format!(
            "capture to {}: {} records, {} bytes",
            self.path, self.stats.records, self.stats.bytes
        );
        if self.stats.write_errors > 0 {
            s += &format!(", {} write errors", self.stats.write_errors);
        }
        if let Some(n) = &self.stopped {
            s += &format!("; {n}");
        }
        s
    }
}

/// What fault injection did in one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounters {
    /// Messages offered.
    pub messages: u64,
    /// Dropped by the loss draw.
    pub dropped: u64,
    /// Extra copies.
    pub duplicated: u64,
    /// Held back for reordering.
    pub reordered: u64,
    /// Held for a delay.
    pub delayed: u64,
    /// Dropped because every held-message buffer was in use.
    pub overflow: u64,
    /// Sent or delivered from the held buffers.
    pub released: u64,
    /// Messages the backend refused when they were released (sends).
    pub errors: u64,
}

impl FaultCounters {
    fn from(s: FaultStats, errors: u64) -> Self {
        Self {
            messages: s.packets,
            dropped: s.dropped,
            duplicated: s.duplicated,
            reordered: s.reordered,
            delayed: s.delayed,
            overflow: s.overflow,
            released: s.released,
            errors,
        }
    }

    /// One line for the report.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} messages: {} dropped, {} duplicated, {} reordered, {} delayed, {} overflow, \
             {} released from hold, {} errors",
            self.messages,
            self.dropped,
            self.duplicated,
            self.reordered,
            self.delayed,
            self.overflow,
            self.released,
            self.errors
        )
    }
}

/// What a captured transport carries, for the synthesized headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Datagram,
    /// A TCP byte stream, each message behind a big-endian length prefix
    /// of this many bytes.
    Tcp(usize),
}

impl Kind {
    fn of<T: Transport>(t: &T) -> Self {
        match t.stream_prefix() {
            Some(n) => Self::Tcp(n.clamp(1, 8)),
            None => Self::Datagram,
        }
    }
}

/// A capture with synthesized headers, for transports without frames.
#[derive(Debug)]
struct SynthCapture {
    cap: Box<Capture>,
    kind: Kind,
    role: Role,
    udp: UdpSynth,
    /// The TCP connection being captured: its addresses and synthesizer.
    tcp: Option<(Addrs, TcpSynth)>,
}

/// 0.0.0.0:0 for an end whose address is unknown (`mem://`).
const UNKNOWN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    match (a, b) {
        (SocketAddr::V4(_), SocketAddr::V6(_)) => (v6(a), b),
        (SocketAddr::V6(_), SocketAddr::V4(_)) => (a, v6(b)),
        _ => (a, b),
    }
}

fn v6(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port()),
        v6 => v6,
    }
}

impl SynthCapture {
    /// Records a message sent (`tx`) or received, between `local` and `peer`.
    fn message(&mut self, ts: u64, tx: bool, addrs: Addrs, data: &[u8]) {
        let local = addrs.local.unwrap_or(UNKNOWN);
        let peer = addrs.peer.unwrap_or(UNKNOWN);
        match self.kind {
            Kind::Datagram => {
                let (src, dst) = if tx { (local, peer) } else { (peer, local) };
                let (src, dst) = same_family(src, dst);
                let mut h: HeaderBuf = [0; MAX_HEADER_LEN];
                if let Ok(n) = self.udp.headers(&mut h, src, dst, &[data]) {
                    self.cap.parts(ts, &[&h[..n], data]);
                }
            }
            Kind::Tcp(prefix_len) => {
                let fresh = !matches!(&self.tcp, Some((a, _)) if *a == addrs);
                if fresh {
                    let (initiator, responder) = match self.role {
                        Role::Client => (local, peer),
                        Role::Server => (peer, local),
                    };
                    let (i, r) = same_family(initiator, responder);
                    let Ok(s) = TcpSynth::new(i, r, true) else {
                        return;
                    };
                    self.tcp = Some((addrs, s));
                }
                let Some((_, s)) = &mut self.tcp else { return };
                let from = match (self.role, tx) {
                    (Role::Client, true) | (Role::Server, false) => Side::Initiator,
                    _ => Side::Responder,
                };
                let len = (data.len() as u64).to_be_bytes();
                let prefix = &len[8 - prefix_len..];
                let cap = &mut self.cap;
                s.segments(from, &[prefix, data], &mut |parts| cap.parts(ts, parts));
            }
        }
    }
}

/// Bytes in front of a held message: where it goes (sends) or came from and
/// when (receives).
const TAG_LEN: usize = 32;

/// Writes the tag of a held message: an address and a timestamp.
fn tag(buf: &mut [u8; TAG_LEN], addr: Option<SocketAddr>, ts: Option<u64>) {
    buf.fill(0);
    match addr {
        Some(SocketAddr::V4(a)) => {
            buf[0] = 4;
            buf[1..5].copy_from_slice(&a.ip().octets());
            buf[17..19].copy_from_slice(&a.port().to_be_bytes());
        }
        Some(SocketAddr::V6(a)) => {
            buf[0] = 6;
            buf[1..17].copy_from_slice(&a.ip().octets());
            buf[17..19].copy_from_slice(&a.port().to_be_bytes());
        }
        None => {}
    }
    if let Some(t) = ts {
        buf[19] = 1;
        buf[20..28].copy_from_slice(&t.to_be_bytes());
    }
}

/// Reads a tag back: the address, the timestamp and the message.
fn untag(p: &[u8]) -> (Option<SocketAddr>, Option<u64>, &[u8]) {
    let (t, data) = p.split_at(TAG_LEN.min(p.len()));
    if t.len() < TAG_LEN {
        return (None, None, data);
    }
    let port = u16::from_be_bytes([t[17], t[18]]);
    let addr = match t[0] {
        4 => Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(t[1], t[2], t[3], t[4])),
            port,
        )),
        6 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&t[1..17]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), port))
        }
        _ => None,
    };
    let ts = (t[19] == 1).then(|| u64::from_be_bytes(t[20..28].try_into().expect("8 bytes")));
    (addr, ts, data)
}

/// One direction's fault injection, with the scratch buffer a message is
/// tagged in.
struct FaultLayer {
    inj: FaultInjector,
    scratch: Box<[u8]>,
    /// When a message went on hold for reordering with none after it.
    reorder_since: Option<Instant>,
    errors: u64,
}

impl fmt::Debug for FaultLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultLayer")
            .field("inj", &self.inj)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl FaultLayer {
    /// The injection of `cfg` for messages of up to `max_message` bytes,
    /// drawing from `seed`.
    fn new(cfg: &FaultConfig, seed: u64, max_message: usize) -> Result<Self, OpenError> {
        let len = max_message + TAG_LEN;
        let bad = |why: String| {
            OpenError::Uri(crate::uri::UriError::BadValue {
                param: "fault_slots".into(),
                value: cfg.slots.to_string(),
                expected: why,
            })
        };
        if cfg.slots == 0 || cfg.slots.saturating_mul(len) > MAX_FAULT_BUFFERS {
            return Err(bad(format!(
                "at least 1, and at most {} for messages of up to {max_message} bytes \
                 (the held-message buffers may take at most 1 GiB)",
                MAX_FAULT_BUFFERS / len
            )));
        }
        let inj = FaultInjector::with_buffers(cfg.faults, seed, len, cfg.slots).map_err(|e| {
            OpenError::Uri(crate::uri::UriError::BadValue {
                param: match e.name {
                    "duplicate" => "dup",
                    n => n,
                }
                .into(),
                value: e.value.to_string(),
                expected: "a probability from 0 to 1, e.g. 0.01".into(),
            })
        })?;
        Ok(Self {
            inj,
            scratch: vec![0; len].into_boxed_slice(),
            reorder_since: None,
            errors: 0,
        })
    }

    /// Whether a message of `len` bytes fits the buffers (the transport's
    /// largest message).
    fn fits(&self, len: usize) -> bool {
        TAG_LEN + len <= self.scratch.len()
    }

    /// Offers `data` (tagged with `addr`, `ts`) at `now`; `out` gets each
    /// tagged message due, and whether it is this one (`true`) or one held
    /// earlier (`false`). The caller checked [`Self::fits`].
    fn offer(
        &mut self,
        now: u64,
        addr: Option<SocketAddr>,
        ts: Option<u64>,
        data: &[u8],
        out: &mut impl FnMut(&[u8], bool),
    ) {
        let n = TAG_LEN + data.len();
        debug_assert!(n <= self.scratch.len());
        let mut t = [0u8; TAG_LEN];
        tag(&mut t, addr, ts);
        self.scratch[..TAG_LEN].copy_from_slice(&t);
        self.scratch[TAG_LEN..n].copy_from_slice(data);
        let Self { inj, scratch, .. } = self;
        let own = scratch.as_ptr();
        inj.offer(now, &scratch[..n], &mut |p| out(p, p.as_ptr() == own));
        self.note_reorder();
    }

    /// Starts or stops the clock of a message held for reordering.
    fn note_reorder(&mut self) {
        match (self.inj.reorder_held(), self.reorder_since) {
            (true, None) => self.reorder_since = Some(Instant::now()),
            (false, Some(_)) => self.reorder_since = None,
            _ => {}
        }
    }

    /// Releases what is due at `now`, and a message held for reordering
    /// longer than [`REORDER_HOLD`] (delayed ones keep their due times).
    fn poll(&mut self, now: u64, out: &mut impl FnMut(&[u8])) {
        self.inj.poll(now, out);
        if self
            .reorder_since
            .is_some_and(|t| t.elapsed() >= REORDER_HOLD)
        {
            self.inj.release_reordered(now, out);
        }
        self.note_reorder();
    }

    /// When to poll next, on `base`'s clock.
    fn next_wake(&self, base: Instant) -> Option<Instant> {
        let due = self
            .inj
            .next_due()
            .map(|ns| base + Duration::from_nanos(ns));
        let reorder = self.reorder_since.map(|t| t + REORDER_HOLD);
        match (due, reorder) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A transport wrapped in the middlewares. See the module documentation.
#[derive(Debug)]
pub struct Layered<T: Transport> {
    inner: T,
    synth: Option<SynthCapture>,
    tx: Option<FaultLayer>,
    rx: Option<FaultLayer>,
    /// Received from the backend when receive faults are on.
    rx_burst: Option<RxBurst>,
    /// Receive-fault output waiting for the caller: (bytes, meta).
    pending: Pending,
    timeout: Option<Duration>,
    base: Instant,
    max_message: usize,
    lease: CopyLease,
}

/// A FIFO of received messages that came out of the receive faults and did
/// not fit the caller's burst; fixed capacity, allocated once.
#[derive(Debug)]
struct Pending {
    data: Box<[u8]>,
    slot: usize,
    meta: Box<[RxMeta]>,
    head: usize,
    len: usize,
    dropped: u64,
}

impl Pending {
    fn new(count: usize, slot: usize) -> Self {
        Self {
            data: vec![0; count * slot].into_boxed_slice(),
            slot,
            meta: vec![RxMeta::default(); count].into_boxed_slice(),
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, bytes: &[u8], meta: RxMeta) {
        let cap = self.meta.len();
        if cap == 0 || self.len == cap {
            self.dropped += 1;
            return;
        }
        let i = (self.head + self.len) % cap;
        let n = bytes.len().min(self.slot);
        self.data[i * self.slot..i * self.slot + n].copy_from_slice(&bytes[..n]);
        self.meta[i] = RxMeta {
            len: n,
            truncated: meta.truncated || n < bytes.len(),
            ..meta
        };
        self.len += 1;
    }

    /// Moves what fits into `burst` from slot `at`; returns how many.
    fn drain_into(&mut self, burst: &mut RxBurst, at: usize) -> usize {
        let cap = self.meta.len();
        let mut k = 0;
        while self.len > 0 && at + k < burst.capacity() {
            let m = self.meta[self.head];
            let src = &self.data[self.head * self.slot..self.head * self.slot + m.len];
            let slot = burst.slots_from(at + k).next().expect("at + k < capacity");
            let n = m.len.min(slot.len());
            slot[..n].copy_from_slice(&src[..n]);
            burst.set(
                at + k,
                RxMeta {
                    len: n,
                    truncated: m.truncated || n < m.len,
                    ..m
                },
            );
            self.head = (self.head + 1) % cap;
            self.len -= 1;
            k += 1;
        }
        k
    }
}

impl<T: Transport> Layered<T> {
    fn new(
        inner: T,
        synth: Option<SynthCapture>,
        faults: Option<FaultConfig>,
    ) -> Result<Self, OpenError> {
        let max_message = inner.capabilities().max_message.max(1);
        let (tx, rx) = match faults {
            Some(f) => {
                let tx = matches!(f.on, FaultsOn::Tx | FaultsOn::Both)
                    .then(|| FaultLayer::new(&f, f.seed, max_message))
                    .transpose()?;
                let rx = matches!(f.on, FaultsOn::Rx | FaultsOn::Both)
                    .then(|| FaultLayer::new(&f, f.seed ^ 0x5851_f42d_4c95_7f2d, max_message))
                    .transpose()?;
                (tx, rx)
            }
            None => (None, None),
        };
        let pending = if rx.is_some() {
            Pending::new(faults.map_or(1, |f| f.slots), max_message)
        } else {
            Pending::new(0, 0)
        };
        Ok(Self {
            inner,
            synth,
            tx,
            rx,
            rx_burst: None,
            pending,
            timeout: None,
            base: Instant::now(),
            max_message,
            lease: CopyLease::new(),
        })
    }

    /// A transport wrapped in `layers` by hand (the library form of the URI
    /// parameters), opened as `role`.
    ///
    /// # Errors
    /// [`OpenError::Capture`] when the capture file cannot be created;
    /// [`OpenError::Uri`] for a fault probability outside `[0, 1]` or
    /// held-message buffers (`fault_slots` × the largest message) over
    /// [`MAX_FAULT_BUFFERS`].
    pub fn wrap(inner: T, layers: &Layers, role: Role) -> Result<Self, OpenError> {
        let mut synth = None;
        if let Some(p) = &layers.pcap {
            let w = PcapWriter::create(&p.path, p.max_bytes).map_err(|e| OpenError::Capture {
                path: p.path.clone(),
                cause: e,
            })?;
            let kind = Kind::of(&inner);
            synth = Some(SynthCapture {
                cap: Box::new(Capture::new(w, p.path.clone())),
                kind,
                role,
                udp: UdpSynth::new(),
                tcp: None,
            });
        }
        Self::new(inner, synth, layers.faults)
    }

    /// The wrapped transport.
    #[must_use]
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The wrapped transport, mutably.
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Sends the due delayed messages.
    fn release_tx(&mut self) {
        let now = self.now_ns();
        let Self {
            inner, synth, tx, ..
        } = self;
        if let Some(tx) = tx {
            let mut errors = 0;
            tx.poll(now, &mut |p| {
                let (to, _, data) = untag(p);
                if send_one(inner, synth, to, data).is_err() {
                    errors += 1;
                }
            });
            tx.errors += errors;
        }
    }

    /// When a held message needs attention.
    fn next_wake(&self) -> Option<Instant> {
        let a = self.tx.as_ref().and_then(|f| f.next_wake(self.base));
        let b = self.rx.as_ref().and_then(|f| f.next_wake(self.base));
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records what a receive from the backend delivered into `burst` from
    /// slot `at`.
    fn record_rx(&mut self, burst: &RxBurst, at: usize, n: usize) {
        let Some(s) = &mut self.synth else { return };
        let local = self.inner.addrs();
        for i in at..at + n {
            let (data, meta) = burst.get(i);
            let ts = meta.rx_ts_ns.unwrap_or_else(realtime_ns);
            let addrs = Addrs {
                local: local.local,
                peer: meta.peer.or(local.peer),
            };
            s.message(ts, false, addrs, data);
        }
    }

    fn recv_impl(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        burst.set_len(0);
        let deadline = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
        loop {
            self.release_tx();
            let mut n = 0;
            if self.rx.is_some() {
                let now = self.now_ns();
                let Self { rx, pending, .. } = self;
                if let Some(rx) = rx {
                    rx.poll(now, &mut |p| deliver(pending, p));
                }
                n = self.pending.drain_into(burst, 0);
                if n > 0 {
                    burst.set_len(n);
                    return Ok(n);
                }
            }
            let wake = match (deadline, self.next_wake()) {
                (Some(d), Some(w)) => Some(d.min(w)),
                (d, w) => d.or(w),
            };
            if self.rx.is_none() {
                let got = match wake {
                    None => self.inner.recv_burst(burst)?,
                    Some(w) => self.inner.recv_burst_until(burst, w)?,
                };
                if got > 0 {
                    self.record_rx(burst, 0, got);
                    burst.set_len(got);
                    return Ok(got);
                }
            } else {
                let mut inner_burst = self
                    .rx_burst
                    .take()
                    .unwrap_or_else(|| RxBurst::new(burst.capacity().max(1), self.max_message));
                let got = match wake {
                    None => self.inner.recv_burst(&mut inner_burst),
                    Some(w) => self.inner.recv_burst_until(&mut inner_burst, w),
                };
                let got = match got {
                    Ok(g) => g,
                    Err(e) => {
                        self.rx_burst = Some(inner_burst);
                        return Err(e);
                    }
                };
                self.record_rx(&inner_burst, 0, got);
                let now = self.now_ns();
                let Self { rx, pending, .. } = self;
                if let Some(rx) = rx {
                    for i in 0..got {
                        let (data, meta) = inner_burst.get(i);
                        if rx.fits(data.len()) {
                            rx.offer(now, meta.peer, meta.rx_ts_ns, data, &mut |p, _| {
                                deliver(pending, p)
                            });
                        } else {
                            // Cut short by the transport: delivered as it is.
                            pending.push(data, *meta);
                        }
                    }
                }
                self.rx_burst = Some(inner_burst);
                n = self.pending.drain_into(burst, 0);
                if n > 0 {
                    burst.set_len(n);
                    return Ok(n);
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(n);
            }
        }
    }
}

/// Puts a tagged received message into the pending FIFO.
fn deliver(pending: &mut Pending, p: &[u8]) {
    let (peer, ts, data) = untag(p);
    pending.push(
        data,
        RxMeta {
            len: data.len(),
            wire_len: data.len(),
            truncated: false,
            peer,
            rx_ts_ns: ts,
            rx_hw_ts_ns: None,
            queue: 0,
        },
    );
}

/// Sends one message through the backend, recording it in the capture.
fn send_one<T: Transport>(
    inner: &mut T,
    synth: &mut Option<SynthCapture>,
    to: Option<SocketAddr>,
    data: &[u8],
) -> Result<(), SyscallError> {
    inner.send(data, to)?;
    if let Some(s) = synth {
        let a = inner.addrs();
        s.message(
            realtime_ns(),
            true,
            Addrs {
                local: a.local,
                peer: to.or(a.peer),
            },
            data,
        );
    }
    Ok(())
}

impl<T: Transport> Transport for Layered<T> {
    fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
        self.recv_impl(burst, None)
    }

    fn recv_burst_until(
        &mut self,
        burst: &mut RxBurst,
        deadline: Instant,
    ) -> Result<usize, SyscallError> {
        self.recv_impl(burst, Some(deadline))
    }

    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        self.release_tx();
        if self.tx.is_none() {
            if self.synth.is_none() {
                return self.inner.send_burst(msgs);
            }
            let sent = self.inner.send_burst(msgs)?;
            let a = self.inner.addrs();
            if let Some(s) = &mut self.synth {
                let ts = realtime_ns();
                for m in &msgs[..sent] {
                    let addrs = Addrs {
                        local: a.local,
                        peer: m.to.or(a.peer),
                    };
                    s.message(ts, true, addrs, m.data);
                }
            }
            return Ok(sent);
        }
        let now = self.now_ns();
        let Self {
            inner, synth, tx, ..
        } = self;
        let tx = tx.as_mut().expect("checked above");
        // A message the backend refuses right away ends the burst, as in
        // every backend: the caller learns which. Messages released from
        // hold that the backend refuses are counted (`errors`).
        let mut own_err = None;
        let mut errors = 0;
        let mut done = msgs.len();
        for (i, m) in msgs.iter().enumerate() {
            if !tx.fits(m.data.len()) {
                // Longer than the transport says it carries: straight to
                // the backend, which refuses it (or, if it takes it after
                // all, sends it without faults).
                if let Err(e) = send_one(inner, synth, m.to, m.data) {
                    own_err = Some(e);
                    done = i;
                    break;
                }
                continue;
            }
            tx.offer(now, m.to, None, m.data, &mut |p, own| {
                let (to, _, data) = untag(p);
                if let Err(e) = send_one(inner, synth, to, data) {
                    if own {
                        own_err.get_or_insert(e);
                    } else {
                        errors += 1;
                    }
                }
            });
            if own_err.is_some() {
                done = i;
                break;
            }
        }
        tx.errors += errors;
        match own_err {
            Some(e) if done == 0 => Err(e),
            _ => Ok(done),
        }
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        self.timeout = timeout;
        self.inner.set_recv_timeout(timeout)
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = self.inner.capabilities();
        let mut m = c.middleware.take().unwrap_or_default();
        m.faults_tx = self
            .tx
            .as_ref()
            .map(|f| FaultCounters::from(f.inj.stats(), f.errors));
        m.faults_rx = self.rx.as_ref().map(|f| {
            let mut k = FaultCounters::from(f.inj.stats(), 0);
            k.overflow += self.pending.dropped;
            k
        });
        if let Some(s) = &self.synth {
            m.pcap = Some(s.cap.caps());
            c.notes.push(s.cap.caps().describe());
        }
        if let Some(f) = &self.tx {
            let fa = f.inj.faults();
            c.notes.push(format!(
                "faults on sends: loss {} dup {} reorder {} delay {} ns jitter {} ns",
                fa.loss, fa.duplicate, fa.reorder, fa.delay_ns, fa.jitter_ns
            ));
        }
        if let Some(f) = &self.rx {
            let fa = f.inj.faults();
            c.notes.push(format!(
                "faults on receives: loss {} dup {} reorder {} delay {} ns jitter {} ns",
                fa.loss, fa.duplicate, fa.reorder, fa.delay_ns, fa.jitter_ns
            ));
        }
        c.middleware = Some(m);
        c
    }

    fn tx_timestamps(&mut self, f: &mut dyn FnMut(TxStamp)) -> Result<usize, SyscallError> {
        self.inner.tx_timestamps(f)
    }

    fn addrs(&self) -> Addrs {
        self.inner.addrs()
    }

    fn stream_prefix(&self) -> Option<usize> {
        self.inner.stream_prefix()
    }

    fn flush_tx(&mut self, timeout: Duration) -> Result<bool, SyscallError> {
        self.inner.flush_tx(timeout)
    }

    fn release_held(&mut self) -> Result<usize, SyscallError> {
        let Self {
            inner, synth, tx, ..
        } = self;
        let Some(tx) = tx else {
            return inner.release_held();
        };
        let mut n = 0;
        let mut first_err = None;
        tx.reorder_since = None;
        tx.inj.flush(&mut |p| {
            let (to, _, data) = untag(p);
            match send_one(inner, synth, to, data) {
                Ok(()) => n += 1,
                Err(e) => {
                    tx.errors += 1;
                    first_err.get_or_insert(e);
                }
            }
        });
        match first_err {
            Some(e) if n == 0 => Err(e),
            _ => Ok(n + inner.release_held()?),
        }
    }

    fn capture_frames(&mut self, capture: Box<Capture>) -> Result<(), Box<Capture>> {
        self.inner.capture_frames(capture)
    }
}

impl<T: Transport + 'static> Lease for Layered<T> {
    const IN_PLACE: bool = false;
    type Tx<'a> = CopyTx<'a, Self>;

    fn recv_lease<F>(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
        f: F,
    ) -> Result<usize, SyscallError>
    where
        F: FnMut(&[u8], &RxMeta, &mut Self::Tx<'_>),
    {
        let m = self.max_message;
        lease::recv(self, |t| &mut t.lease, m, max, deadline, f)
    }

    fn send_lease<R>(&mut self, f: impl FnOnce(&mut Self::Tx<'_>) -> R) -> Result<R, SyscallError> {
        let m = self.max_message;
        lease::send(self, |t| &mut t.lease, m, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        let mut t = [0u8; TAG_LEN];
        for (a, ts) in [
            (Some("198.18.0.2:9000".parse().unwrap()), Some(123)),
            (Some("[::1]:7".parse().unwrap()), None),
            (None, Some(u64::MAX)),
            (None, None),
        ] {
            tag(&mut t, a, ts);
            let mut p = t.to_vec();
            p.extend_from_slice(b"payload");
            assert_eq!(untag(&p), (a, ts, &b"payload"[..]));
        }
    }

    fn layers(q: &str) -> Result<Layers, UriError> {
        let mut u = Uri::parse(&format!("udp://127.0.0.1:9?{q}")).unwrap();
        let l = Layers::take_from(&mut u)?;
        assert!(
            u.params.iter().all(|(k, _)| !PARAMS.contains(&k.as_str())),
            "middleware parameters left for the backend"
        );
        Ok(l)
    }

    #[test]
    fn parameters() {
        assert!(layers("rx=spin").unwrap().is_empty());
        let l = layers("loss=0.05&seed=7&delay=50us&rx=spin").unwrap();
        let f = l.faults.unwrap();
        assert_eq!(f.faults.loss, 0.05);
        assert_eq!(f.faults.delay_ns, 50_000);
        assert_eq!(
            (f.seed, f.on, f.slots),
            (7, FaultsOn::Both, DEFAULT_FAULT_SLOTS)
        );
        let l = layers("pcap=/tmp/x.pcap&pcap_max=1M").unwrap();
        assert_eq!(l.pcap.unwrap().max_bytes, Some(1 << 20));
        for (q, want) in [
            ("loss=1.5", "probability"),
            ("loss=x", "probability"),
            ("delay=5", "duration"),
            ("pcap_max=1M", "pcap=FILE"),
            ("seed=3", "only with a fault"),
            ("faults_on=up&loss=0.1", "tx, rx, both"),
            ("pcap_max=10&pcap=/tmp/x", "at least 24"),
        ] {
            let e = layers(q).unwrap_err().to_string();
            assert!(e.contains(want), "{q}: {e}");
        }
    }
}
