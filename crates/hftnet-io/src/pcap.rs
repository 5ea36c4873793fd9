//! Packet capture to classic pcap files, and the Ethernet/IP/UDP and TCP
//! headers to put in front of payloads that a transport carries without
//! them.
//!
//! Layer: the engine of the pcap middleware (`pcap=FILE`, `pcap_max=BYTES`
//! on any transport URI), which calls it for what a transport sent and
//! received. [`PcapWriter`] writes the file; [`UdpSynth`] and [`TcpSynth`]
//! make the headers for kernel sockets and in-process queues, which hand
//! over payloads only, so that `tcpdump` and Wireshark read the capture as
//! ordinary traffic (real addresses and ports, correct checksums, TCP
//! sequence numbers that let Wireshark reassemble the byte stream). Layer-2
//! backends record their frames as they are.
//!
//! The file: classic pcap with nanosecond timestamps (magic `0xa1b23c4d`,
//! written little-endian, which every reader accepts), version 2.4,
//! `LINKTYPE_ETHERNET`, snap length 65535. Each record is written from the
//! caller's header and payload slices as they are, without first copying
//! them together, through a buffered writer.
//!
//! Invariants: [`PcapWriter::record`] never returns an error and never
//! panics; it never allocates, locks, logs or formats, but it writes a file:
//! when its buffer fills it makes a `write` system call, so capturing costs
//! latency and a capture is for debugging, not for measured runs. The file
//! never grows past `pcap_max`; after the first write error or the first
//! record that would cross `pcap_max`, nothing more is written, and what was
//! not written is counted ([`PcapStats`]). The synthesizers write into a
//! small caller-owned [`HeaderBuf`] and never allocate either. No `unsafe`.

use core::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use hftnet_wire::checksum;
use hftnet_wire::ethernet::{self, Address, EtherType};
use hftnet_wire::ipv4::{self, Protocol};
use hftnet_wire::udp;
use serde::Serialize;

/// The pcap magic number of files with nanosecond timestamps.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// The link type of Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snap length: records longer than this keep only their first bytes.
pub const SNAPLEN: usize = 65_535;
/// Bytes of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Bytes of each record's header.
pub const RECORD_HEADER_LEN: usize = 16;
/// The buffer of [`PcapWriter::create`]'s writer.
const WRITE_BUFFER: usize = 256 * 1024;

/// What a [`PcapWriter`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PcapStats {
    /// Records written (handed to the buffered writer without error).
    pub records: u64,
    /// Bytes written, file header included: the file's size once flushed.
    pub bytes: u64,
    /// Records cut to the snap length (their original length is kept).
    pub snapped: u64,
    /// Records not written because the capture had stopped (`pcap_max`
    /// reached or a write error), the record that stopped it included.
    pub not_written: u64,
    /// Writes and flushes that failed.
    pub write_errors: u64,
    /// True once a record would have crossed `pcap_max`.
    pub max_reached: bool,
}

/// Why a [`PcapWriter`] stopped writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The next record would have made the file larger than `pcap_max`;
    /// `bytes` is the file's size then.
    Max {
        /// The file's size when it stopped.
        bytes: u64,
    },
    /// A write failed (disk full, file system error); the file may end in
    /// part of a record.
    WriteError(io::ErrorKind),
}

/// Appends records to a pcap file; see the module documentation.
///
/// ```no_run
/// use hftnet_io::pcap::{PcapWriter, realtime_ns};
/// let mut w = PcapWriter::create("/tmp/cap.pcap", Some(100 << 20))?;
/// let (eth_ip_udp, payload) = (&[0u8; 42][..], &b"hello"[..]);
/// w.record(realtime_ns(), &[eth_ip_udp, payload], 47);
/// if let Some(note) = w.note() {
///     eprintln!("{note}");
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PcapWriter<W: Write = BufWriter<File>> {
    out: W,
    max_bytes: Option<u64>,
    stop: Option<Stop>,
    stats: PcapStats,
}

impl PcapWriter {
    /// Creates (or truncates) the file at `path` and writes the file header
    /// into the writer's buffer. `max_bytes` bounds the file's size, header
    /// included.
    ///
    /// # Errors
    /// When the file cannot be created (missing directory, permissions), or
    /// `max_bytes` is smaller than the 24-byte file header
    /// ([`io::ErrorKind::InvalidInput`]). A full disk shows later, counted
    /// in [`PcapStats::write_errors`].
    pub fn create(path: impl AsRef<Path>, max_bytes: Option<u64>) -> Result<Self, io::Error> {
        check_max(max_bytes)?;
        let file = File::create(path)?;
        Self::new(BufWriter::with_capacity(WRITE_BUFFER, file), max_bytes)
    }
}

fn check_max(max_bytes: Option<u64>) -> io::Result<()> {
    match max_bytes {
        Some(m) if m < FILE_HEADER_LEN as u64 => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "pcap_max of {m} bytes is smaller than the {FILE_HEADER_LEN}-byte pcap file header"
            ),
        )),
        _ => Ok(()),
    }
}

impl<W: Write> PcapWriter<W> {
    /// A writer onto `out` (buffer it: every record is two or more writes),
    /// after writing the file header to it.
    ///
    /// # Errors
    /// When `max_bytes` is smaller than the file header, or writing the
    /// header fails.
    pub fn new(mut out: W, max_bytes: Option<u64>) -> Result<Self, io::Error> {
        check_max(max_bytes)?;
        let mut h = [0u8; FILE_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC_NANOS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs: zero.
        h[16..20].copy_from_slice(&(SNAPLEN as u32).to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self {
            out,
            max_bytes,
            stop: None,
            stats: PcapStats {
                bytes: FILE_HEADER_LEN as u64,
                ..PcapStats::default()
            },
        })
    }

    /// Appends one record made of `parts` (a frame's headers and payload,
    /// in order), stamped `ts_ns` nanoseconds since the Unix epoch
    /// (`CLOCK_REALTIME`, see [`realtime_ns`]). `orig_len` is the frame's
    /// length on the wire (at least the parts' total, which it is raised
    /// to); the parts are cut to [`SNAPLEN`] bytes.
    ///
    /// Never fails and never panics: once the capture has stopped (a record
    /// would cross `pcap_max`, or a write failed) nothing is written and the
    /// record is counted in [`PcapStats::not_written`]; see
    /// [`PcapWriter::stopped`] and [`PcapWriter::note`].
    pub fn record(&mut self, ts_ns: u64, parts: &[&[u8]], orig_len: usize) {
        if self.stop.is_some() {
            self.stats.not_written += 1;
            return;
        }
        let total = parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
        let incl = total.min(SNAPLEN);
        let size = (RECORD_HEADER_LEN + incl) as u64;
        if let Some(max) = self.max_bytes
            && self.stats.bytes + size > max
        {
            self.stop = Some(Stop::Max {
                bytes: self.stats.bytes,
            });
            self.stats.max_reached = true;
            self.stats.not_written += 1;
            return;
        }
        if incl < total {
            self.stats.snapped += 1;
        }
        let secs = u32::try_from(ts_ns / 1_000_000_000).unwrap_or(u32::MAX);
        let nanos = (ts_ns % 1_000_000_000) as u32;
        let orig = u32::try_from(orig_len.max(total)).unwrap_or(u32::MAX);
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&nanos.to_le_bytes());
        h[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        h[12..16].copy_from_slice(&orig.to_le_bytes());
        match self.write_record(&h, parts, incl) {
            Ok(()) => {
                self.stats.records += 1;
                self.stats.bytes += size;
            }
            Err(e) => {
                self.stats.write_errors += 1;
                self.stats.not_written += 1;
                self.stop = Some(Stop::WriteError(e.kind()));
            }
        }
    }

    /// [`PcapWriter::record`] of a whole frame: its length on the wire is
    /// the parts' total.
    pub fn record_frame(&mut self, ts_ns: u64, parts: &[&[u8]]) {
        self.record(ts_ns, parts, 0);
    }

    fn write_record(&mut self, h: &[u8], parts: &[&[u8]], incl: usize) -> io::Result<()> {
        self.out.write_all(h)?;
        let mut left = incl;
        for p in parts {
            if left == 0 {
                break;
            }
            let n = p.len().min(left);
            self.out.write_all(&p[..n])?;
            left -= n;
        }
        Ok(())
    }

    /// Writes what is buffered to the file (also done on drop, where an
    /// error can only be counted).
    ///
    /// # Errors
    /// The write error, also counted in [`PcapStats::write_errors`] and
    /// stopping the capture.
    pub fn flush(&mut self) -> Result<(), io::Error> {
        self.out.flush().inspect_err(|e| {
            self.stats.write_errors += 1;
            if self.stop.is_none() {
                self.stop = Some(Stop::WriteError(e.kind()));
            }
        })
    }

    /// What was written and what was not.
    #[must_use]
    pub fn stats(&self) -> PcapStats {
        self.stats
    }

    /// Why the capture stopped, if it did.
    #[must_use]
    pub fn stopped(&self) -> Option<Stop> {
        self.stop
    }

    /// A line for the user when the capture stopped early, e.g. `capture
    /// stopped at 1048576 bytes (pcap_max); 1234 records not written`.
    /// Formats: call it at the end of a run, not per packet.
    #[must_use]
    pub fn note(&self) -> Option<String> {
        let n = self.stats.not_written;
        match self.stop? {
            Stop::Max { bytes } => Some(format!(
                "capture stopped at {bytes} bytes (pcap_max); {n} records not written"
            )),
            Stop::WriteError(kind) => Some(format!(
                "capture stopped after a write error ({kind}); {n} records not written, \
                 the file may end in part of a record"
            )),
        }
    }

    /// The underlying writer.
    #[must_use]
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

impl<W: Write> Drop for PcapWriter<W> {
    fn drop(&mut self) {
        // Counted in the stats; nobody is left to tell.
        let _ = self.flush();
    }
}

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`, through the vDSO),
/// the clock pcap timestamps use; 0 before 1970.
#[must_use]
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Bytes of an IPv6 header (no extension headers).
pub const IPV6_HEADER_LEN: usize = 40;
/// Bytes of a TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;
/// The longest header the synthesizers write: Ethernet, IPv6, TCP.
pub const MAX_HEADER_LEN: usize = ethernet::HEADER_LEN + IPV6_HEADER_LEN + TCP_HEADER_LEN;
/// The caller-owned buffer the synthesizers write headers into.
pub type HeaderBuf = [u8; MAX_HEADER_LEN];
/// The most stream bytes [`TcpSynth`] puts in one segment: the largest that
/// keeps every frame within [`SNAPLEN`].
pub const MAX_SEGMENT: usize = SNAPLEN - MAX_HEADER_LEN;
/// The most payload slices [`TcpSynth`] puts in one segment (a segment
/// ends early at the ninth).
pub const MAX_SEGMENT_PARTS: usize = 8;
/// The hop limit (TTL) of synthesized packets.
const HOP_LIMIT: u8 = 64;

/// Why headers could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthError {
    /// One address is IPv4 and the other IPv6 (IPv4-mapped IPv6 addresses
    /// count as IPv4).
    MixedFamilies,
    /// The payload does not fit one IP packet.
    TooLong {
        /// The payload's length.
        len: usize,
        /// The most that fits.
        max: usize,
    },
}

impl fmt::Display for SynthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MixedFamilies => {
                f.write_str("source and destination are not both IPv4 or both IPv6")
            }
            Self::TooLong { len, max } => write!(
                f,
                "a {len}-byte payload does not fit one IP packet (at most {max})"
            ),
        }
    }
}

impl std::error::Error for SynthError {}

/// The made-up MAC address of a host in a synthesized frame: locally
/// administered `02:00` followed by the IPv4 address, or by the last four
/// bytes of the IPv6 address; the group address for multicast
/// (`01:00:5e:..`, `33:33:..`) and broadcast.
#[must_use]
pub fn fake_mac(ip: IpAddr) -> Address {
    match ip.to_canonical() {
        IpAddr::V4(a) if a.is_broadcast() => Address::BROADCAST,
        IpAddr::V4(a) if a.is_multicast() => Address::from_ipv4_multicast(a),
        IpAddr::V4(a) => {
            let o = a.octets();
            Address([0x02, 0x00, o[0], o[1], o[2], o[3]])
        }
        IpAddr::V6(a) => {
            let o = a.octets();
            let head = if a.is_multicast() {
                [0x33, 0x33]
            } else {
                [0x02, 0x00]
            };
            Address([head[0], head[1], o[12], o[13], o[14], o[15]])
        }
    }
}

/// Both addresses in one family, IPv4-mapped IPv6 read as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

impl Pair {
    fn new(src: IpAddr, dst: IpAddr) -> Result<Self, SynthError> {
        match (src.to_canonical(), dst.to_canonical()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Ok(Self::V4(s, d)),
            (IpAddr::V6(s), IpAddr::V6(d)) => Ok(Self::V6(s, d)),
            _ => Err(SynthError::MixedFamilies),
        }
    }

    fn reversed(self) -> Self {
        match self {
            Self::V4(s, d) => Self::V4(d, s),
            Self::V6(s, d) => Self::V6(d, s),
        }
    }

    /// The most transport bytes (header included) one packet carries.
    fn max_transport_len(self) -> usize {
        match self {
            Self::V4(..) => ipv4::MAX_PAYLOAD_LEN,
            Self::V6(..) => usize::from(u16::MAX),
        }
    }

    /// Writes Ethernet and IP headers for `transport_len` bytes of
    /// `protocol`; returns where the transport header starts.
    fn emit_ip(
        self,
        buf: &mut HeaderBuf,
        protocol: Protocol,
        transport_len: usize,
        ident: u16,
    ) -> usize {
        let (src, dst, ethertype) = match self {
            Self::V4(s, d) => (IpAddr::V4(s), IpAddr::V4(d), EtherType::Ipv4),
            Self::V6(s, d) => (IpAddr::V6(s), IpAddr::V6(d), EtherType::Ipv6),
        };
        ethernet::Repr {
            dst_addr: fake_mac(dst),
            src_addr: fake_mac(src),
            vlan: None,
            ethertype,
        }
        .emit(&mut ethernet::Frame::new_unchecked(&mut buf[..]));
        let at = ethernet::HEADER_LEN;
        match self {
            Self::V4(s, d) => {
                ipv4::Repr {
                    src_addr: s,
                    dst_addr: d,
                    protocol,
                    payload_len: transport_len,
                    ttl: HOP_LIMIT,
                    dscp: 0,
                    ecn: 0,
                    ident,
                }
                .emit(&mut ipv4::Packet::new_unchecked(
                    &mut buf[at..at + ipv4::HEADER_LEN],
                ));
                at + ipv4::HEADER_LEN
            }
            Self::V6(s, d) => {
                let h = &mut buf[at..at + IPV6_HEADER_LEN];
                // Version 6, traffic class 0, flow label 0.
                h[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
                h[4..6].copy_from_slice(&(transport_len as u16).to_be_bytes());
                h[6] = u8::from(protocol);
                h[7] = HOP_LIMIT;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                at + IPV6_HEADER_LEN
            }
        }
    }

    /// The pseudo-header sum the UDP and TCP checksums start from.
    fn pseudo_sum(self, protocol: Protocol, transport_len: usize) -> u16 {
        match self {
            Self::V4(s, d) => checksum::pseudo_header_v4(s, d, protocol, transport_len as u16),
            // RFC 8200 §8.1: addresses, 32-bit length, zeros, next header.
            Self::V6(s, d) => checksum::combine(&[
                checksum::data(&s.octets()),
                checksum::data(&d.octets()),
                checksum::data(&(transport_len as u32).to_be_bytes()),
                u16::from(u8::from(protocol)),
            ]),
        }
    }
}

/// The Internet checksum sum over `parts` taken as one byte string: a part
/// that starts at an odd offset has its sum byte-swapped (RFC 1071 §2(B)).
fn sum_parts(parts: &[&[u8]]) -> u16 {
    let mut sum = 0;
    let mut odd = false;
    for p in parts {
        let s = checksum::data(p);
        sum = checksum::combine(&[sum, if odd { s.swap_bytes() } else { s }]);
        odd ^= p.len() % 2 == 1;
    }
    sum
}

fn total_len(parts: &[&[u8]]) -> usize {
    parts.iter().fold(0usize, |n, p| n.saturating_add(p.len()))
}

/// Ethernet + IPv4 + UDP, or Ethernet + IPv6 + UDP, headers for datagrams
/// a transport carried as payloads. Keeps the IPv4 identification, which
/// increases by one per datagram.
#[derive(Debug, Clone, Default)]
pub struct UdpSynth {
    ident: u16,
}

impl UdpSynth {
    /// A synthesizer whose first IPv4 identification is 0.
    #[must_use]
    pub const fn new() -> Self {
        Self { ident: 0 }
    }

    /// Writes the headers of a datagram from `src` to `dst` carrying
    /// `payload` (its parts in order, read for the checksum and not
    /// copied) into `buf`; returns their length. Record
    /// `[&buf[..len], payload...]`. The IPv4 header checksum and the UDP
    /// checksum are computed; MAC addresses are [`fake_mac`]s.
    ///
    /// # Errors
    /// [`SynthError::MixedFamilies`], or [`SynthError::TooLong`] for more
    /// than 65507 bytes over IPv4 (65527 over IPv6); `buf` is then left
    /// unspecified.
    pub fn headers(
        &mut self,
        buf: &mut HeaderBuf,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[&[u8]],
    ) -> Result<usize, SynthError> {
        let pair = Pair::new(src.ip(), dst.ip())?;
        let len = total_len(payload);
        let max = pair.max_transport_len() - udp::HEADER_LEN;
        if len > max {
            return Err(SynthError::TooLong { len, max });
        }
        let udp_len = udp::HEADER_LEN + len;
        let at = pair.emit_ip(buf, Protocol::Udp, udp_len, self.ident);
        self.ident = self.ident.wrapping_add(1);
        let mut p = udp::Packet::new_unchecked(&mut buf[at..at + udp::HEADER_LEN]);
        udp::Repr {
            src_port: src.port(),
            dst_port: dst.port(),
            payload_len: len,
        }
        .emit(&mut p);
        let sum = checksum::combine(&[
            pair.pseudo_sum(Protocol::Udp, udp_len),
            checksum::data(p.as_ref()),
            sum_parts(payload),
        ]);
        // A computed zero is sent as all ones (zero means "none" over IPv4
        // and is forbidden over IPv6).
        let c = !sum;
        p.set_checksum(if c == 0 { 0xffff } else { c });
        Ok(at + udp::HEADER_LEN)
    }
}

/// Which end of a TCP connection sent the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The end that connected (sent the SYN): a client.
    Initiator,
    /// The end that accepted: a server.
    Responder,
}

impl Side {
    const fn index(self) -> usize {
        match self {
            Self::Initiator => 0,
            Self::Responder => 1,
        }
    }

    const fn other(self) -> Self {
        match self {
            Self::Initiator => Self::Responder,
            Self::Responder => Self::Initiator,
        }
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
/// The window every synthesized segment advertises (no scaling).
const WINDOW: u16 = u16::MAX;

/// The TCP segments of one connection, made up from the bytes each end put
/// on the stream, with sequence and acknowledgement numbers that let
/// Wireshark and `tshark -z follow,tcp` reassemble both directions.
///
/// Optionally the three-way handshake first (SYN, SYN-ACK, ACK, before the
/// first segment); then every call to [`TcpSynth::segments`] gives PSH|ACK
/// segments of at most [`MAX_SEGMENT`] bytes, each acknowledging everything
/// the other end sent; [`TcpSynth::fin`] closes one direction. Checksums
/// are computed; the initial sequence numbers come from the ports, so a
/// capture is the same every run.
#[derive(Debug, Clone)]
pub struct TcpSynth {
    /// Initiator → responder.
    pair: Pair,
    ports: [u16; 2],
    next_seq: [u32; 2],
    ident: [u16; 2],
    handshake: bool,
    started: bool,
    fin_sent: [bool; 2],
}

impl TcpSynth {
    /// A connection from `initiator` (the end that connected) to
    /// `responder`; `handshake` asks for SYN, SYN-ACK and ACK before the
    /// first segment.
    ///
    /// # Errors
    /// [`SynthError::MixedFamilies`].
    pub fn new(
        initiator: SocketAddr,
        responder: SocketAddr,
        handshake: bool,
    ) -> Result<Self, SynthError> {
        let pair = Pair::new(initiator.ip(), responder.ip())?;
        let ports = [initiator.port(), responder.port()];
        let isn = |a: u16, b: u16| ((u32::from(a) << 16) | u32::from(b)).wrapping_mul(0x9e37_79b9);
        Ok(Self {
            pair,
            ports,
            next_seq: [isn(ports[0], ports[1]), isn(ports[1], ports[0])],
            ident: [0, 0],
            handshake,
            started: false,
            fin_sent: [false, false],
        })
    }

    /// The sequence number of the next byte `side` sends.
    #[must_use]
    pub fn next_seq(&self, side: Side) -> u32 {
        let isn_consumed = u32::from(!self.started);
        self.next_seq[side.index()].wrapping_add(isn_consumed)
    }

    /// Calls `out` with each frame (headers first, then slices of `data`)
    /// carrying the bytes `from` put on the stream — `data`'s parts in
    /// order, e.g. the 4-byte length prefix and the message of an hftnet
    /// TCP frame — preceded by the handshake on the first call if asked
    /// for. Nothing for empty data.
    pub fn segments(&mut self, from: Side, data: &[&[u8]], out: &mut impl FnMut(&[&[u8]])) {
        if total_len(data) == 0 {
            return;
        }
        self.start(out);
        let (mut part, mut offset) = (0, 0);
        while part < data.len() {
            let mut hdr: HeaderBuf = [0; MAX_HEADER_LEN];
            let mut frame: [&[u8]; 1 + MAX_SEGMENT_PARTS] = [&[]; 1 + MAX_SEGMENT_PARTS];
            let (mut k, mut len) = (0, 0);
            while part < data.len() && k < MAX_SEGMENT_PARTS && len < MAX_SEGMENT {
                let rest = &data[part][offset..];
                let take = rest.len().min(MAX_SEGMENT - len);
                if take > 0 {
                    frame[1 + k] = &rest[..take];
                    k += 1;
                    len += take;
                }
                offset += take;
                if offset == data[part].len() {
                    part += 1;
                    offset = 0;
                }
            }
            if len == 0 {
                break;
            }
            let n = self.segment(&mut hdr, from, PSH | ACK, &frame[1..=k]);
            frame[0] = &hdr[..n];
            out(&frame[..=k]);
        }
    }

    /// Calls `out` with a FIN|ACK from `from` (after the handshake, if asked
    /// for and not yet sent); nothing if `from` already sent its FIN.
    pub fn fin(&mut self, from: Side, out: &mut impl FnMut(&[&[u8]])) {
        if self.fin_sent[from.index()] {
            return;
        }
        self.start(out);
        self.fin_sent[from.index()] = true;
        let mut hdr: HeaderBuf = [0; MAX_HEADER_LEN];
        let n = self.segment(&mut hdr, from, FIN | ACK, &[]);
        out(&[&hdr[..n]]);
    }

    /// The handshake, once, if asked for; the initial sequence numbers are
    /// consumed either way (a capture without the handshake starts as if
    /// it happened unseen).
    fn start(&mut self, out: &mut impl FnMut(&[&[u8]])) {
        if self.started {
            return;
        }
        self.started = true;
        let mut hdr: HeaderBuf = [0; MAX_HEADER_LEN];
        if self.handshake {
            let n = self.segment(&mut hdr, Side::Initiator, SYN, &[]);
            out(&[&hdr[..n]]);
            let n = self.segment(&mut hdr, Side::Responder, SYN | ACK, &[]);
            out(&[&hdr[..n]]);
            let n = self.segment(&mut hdr, Side::Initiator, ACK, &[]);
            out(&[&hdr[..n]]);
        } else {
            self.next_seq[0] = self.next_seq[0].wrapping_add(1);
            self.next_seq[1] = self.next_seq[1].wrapping_add(1);
        }
    }

    /// Writes the headers of one segment from `from` and advances its
    /// sequence number past the payload (and past a SYN or FIN).
    fn segment(&mut self, buf: &mut HeaderBuf, from: Side, flags: u8, payload: &[&[u8]]) -> usize {
        let (i, o) = (from.index(), from.other().index());
        let len = total_len(payload);
        let pair = match from {
            Side::Initiator => self.pair,
            Side::Responder => self.pair.reversed(),
        };
        let tcp_len = TCP_HEADER_LEN + len;
        let at = pair.emit_ip(buf, Protocol::Tcp, tcp_len, self.ident[i]);
        self.ident[i] = self.ident[i].wrapping_add(1);
        let seq = self.next_seq[i];
        let ack = if flags & ACK != 0 {
            self.next_seq[o]
        } else {
            0
        };
        let t = &mut buf[at..at + TCP_HEADER_LEN];
        t[0..2].copy_from_slice(&self.ports[i].to_be_bytes());
        t[2..4].copy_from_slice(&self.ports[o].to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&ack.to_be_bytes());
        t[12] = ((TCP_HEADER_LEN / 4) as u8) << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&WINDOW.to_be_bytes());
        t[16..20].fill(0);
        let sum = checksum::combine(&[
            pair.pseudo_sum(Protocol::Tcp, tcp_len),
            checksum::data(t),
            sum_parts(payload),
        ]);
        t[16..18].copy_from_slice(&(!sum).to_be_bytes());
        let control = u32::from(flags & (SYN | FIN) != 0);
        self.next_seq[i] = seq.wrapping_add(len as u32).wrapping_add(control);
        at + TCP_HEADER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    use hftnet_wire::rng::Rng;
    use hftnet_wire::udp::{Checks, parse_frame};

    /// A file in the temporary directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str) -> Self {
            Self(
                std::env::temp_dir()
                    .join(format!("hftnet-pcap-{}-{name}.pcap", std::process::id())),
            )
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// True when `tool` runs; otherwise fails under CI (which installs it)
    /// or prints `SKIPPED` and returns false.
    fn have(test: &str, tool: &str, package: &str, required_in_ci: bool) -> bool {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            assert!(
                !(required_in_ci && std::env::var("CI").is_ok_and(|v| v == "true")),
                "{test}: {tool} is not installed: apt-get install {package}"
            );
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {tool} not installed");
        }
        ok
    }

    fn run(tool: &str, args: &[&str]) -> String {
        let o = Command::new(tool).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// `tcpdump -r FILE -nn -tt -x` as (summary line, packet bytes from the
    /// IP header on).
    fn tcpdump(path: &Path) -> Vec<(String, Vec<u8>)> {
        let text = run(
            "tcpdump",
            &["-r", path.to_str().unwrap(), "-nn", "-tt", "-x"],
        );
        let mut packets: Vec<(String, Vec<u8>)> = Vec::new();
        for line in text.lines() {
            if let Some(hex) = line.trim_start().strip_prefix("0x") {
                let (_, words) = hex.split_once(':').unwrap();
                let bytes = &mut packets.last_mut().unwrap().1;
                for w in words.split_whitespace() {
                    for i in (0..w.len()).step_by(2) {
                        bytes.push(u8::from_str_radix(&w[i..i + 2], 16).unwrap());
                    }
                }
            } else {
                packets.push((line.to_string(), Vec::new()));
            }
        }
        packets
    }

    /// `tcpdump -vv` has something to say about every bad checksum.
    fn assert_checksums_ok(path: &Path) {
        let text = run("tcpdump", &["-r", path.to_str().unwrap(), "-nn", "-vv"]);
        for bad in ["bad cksum", "bad udp cksum", "incorrect"] {
            assert!(!text.contains(bad), "{bad}:\n{text}");
        }
    }

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    const TS: u64 = 1_700_000_000_123_456_789;

    #[test]
    fn file_header_and_records_byte_for_byte() {
        let mut w = PcapWriter::new(Vec::new(), None).unwrap();
        w.record(TS, &[b"ab", b"", b"cde"], 9);
        w.record_frame(5, &[b"xyz"]);
        let b = w.get_ref().clone();
        #[rustfmt::skip]
        let want: &[u8] = &[
            0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, // magic (ns), version 2.4
            0, 0, 0, 0, 0, 0, 0, 0, // thiszone, sigfigs
            0xff, 0xff, 0, 0, 1, 0, 0, 0, // snaplen 65535, Ethernet
            0x00, 0xf1, 0x53, 0x65, 0x15, 0xcd, 0x5b, 0x07, // 1700000000 s, 123456789 ns
            5, 0, 0, 0, 9, 0, 0, 0, // captured 5, on the wire 9
            b'a', b'b', b'c', b'd', b'e',
            0, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, b'x', b'y', b'z',
        ];
        assert_eq!(b, want);
        let st = w.stats();
        assert_eq!((st.records, st.bytes), (2, want.len() as u64));
        assert_eq!(w.stopped(), None);
        assert_eq!(w.note(), None);
    }

    #[test]
    fn records_are_cut_to_the_snap_length() {
        let mut w = PcapWriter::new(Vec::new(), None).unwrap();
        let big = vec![7u8; 70_000];
        w.record(0, &[&big[..10], &big[10..]], 0);
        let b = w.get_ref();
        assert_eq!(b.len(), FILE_HEADER_LEN + RECORD_HEADER_LEN + SNAPLEN);
        assert_eq!(b[32..36], (SNAPLEN as u32).to_le_bytes());
        assert_eq!(b[36..40], 70_000u32.to_le_bytes());
        assert_eq!(w.stats().snapped, 1);
    }

    #[test]
    fn the_size_bound_stops_the_capture() {
        let f = TempFile::new("max");
        let max = (FILE_HEADER_LEN + 2 * (RECORD_HEADER_LEN + 10) + 5) as u64;
        let mut w = PcapWriter::create(&f.0, Some(max)).unwrap();
        for _ in 0..3 {
            w.record(TS, &[&[1u8; 10]], 10);
        }
        // Stopped: even a record that would fit is not written.
        w.record(TS, &[], 0);
        let st = w.stats();
        assert_eq!((st.records, st.not_written), (2, 2));
        assert!(st.max_reached);
        assert_eq!(st.bytes, 76);
        assert_eq!(w.stopped(), Some(Stop::Max { bytes: 76 }));
        assert_eq!(
            w.note().unwrap(),
            "capture stopped at 76 bytes (pcap_max); 2 records not written"
        );
        w.flush().unwrap();
        assert_eq!(std::fs::metadata(&f.0).unwrap().len(), 76);
        drop(w);
        assert_eq!(std::fs::metadata(&f.0).unwrap().len(), 76);
        let e = PcapWriter::create(&f.0, Some(10)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("pcap_max of 10 bytes"), "{e}");
    }

    #[test]
    fn a_write_error_is_counted_never_raised() {
        // The error shows when the buffer is flushed: here by flush().
        let mut w = PcapWriter::create("/dev/full", None).unwrap();
        w.record(TS, &[&[0u8; 100]], 100);
        assert_eq!(w.stats().write_errors, 0);
        let e = w.flush().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            w.stopped(),
            Some(Stop::WriteError(io::ErrorKind::StorageFull))
        );
        w.record(TS, &[&[0u8; 100]], 100);
        let st = w.stats();
        assert_eq!((st.write_errors, st.not_written), (1, 1));
        assert!(w.note().unwrap().contains("write error"));
        drop(w);
        // Here by a record that fills the buffer: counted, no panic, and
        // nothing written after it.
        let mut w = PcapWriter::create("/dev/full", None).unwrap();
        let big = vec![0u8; 60_000];
        for _ in 0..10 {
            w.record(TS, &[&big], big.len());
        }
        let st = w.stats();
        assert_eq!(st.write_errors, 1);
        assert!(
            st.records >= 3 && st.records + st.not_written == 10,
            "{st:?}"
        );
        assert!(w.flush().is_err());
        assert_eq!(w.stats().write_errors, 2);
    }

    #[test]
    fn checksums_over_parts_match_the_whole() {
        let mut rng = Rng::new(3);
        let bytes: Vec<u8> = (0..301).map(|_| rng.next_u64() as u8).collect();
        for _ in 0..500 {
            let a = rng.below(bytes.len() as u64 + 1) as usize;
            let b = a + rng.below((bytes.len() - a) as u64 + 1) as usize;
            let parts = [&bytes[..a], &bytes[a..b], &bytes[b..]];
            assert_eq!(sum_parts(&parts), checksum::data(&bytes), "{a} {b}");
        }
        assert_eq!(sum_parts(&[]), 0);
    }

    fn v4(a: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, a)), port)
    }

    fn v6(a: u16, port: u16) -> SocketAddr {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, a)),
            port,
        )
    }

    #[test]
    fn udp_over_ipv4_headers() {
        let mut s = UdpSynth::new();
        let mut buf = [0; MAX_HEADER_LEN];
        let payload: [&[u8]; 2] = [b"abc", b"defgh"];
        let n = s
            .headers(&mut buf, v4(1, 40_000), v4(2, 9_000), &payload)
            .unwrap();
        assert_eq!(n, 42);
        assert_eq!(buf[0..6], [0x02, 0, 198, 18, 0, 2]);
        assert_eq!(buf[6..12], [0x02, 0, 198, 18, 0, 1]);
        assert_eq!(buf[12..14], [0x08, 0x00]);
        assert_eq!(buf[14], 0x45);
        assert_eq!(buf[16..18], 36u16.to_be_bytes(), "IPv4 total length");
        assert_eq!(buf[23], 17);
        assert_eq!(buf[34..36], 40_000u16.to_be_bytes());
        assert_eq!(buf[38..40], 16u16.to_be_bytes(), "UDP length");
        let frame = concat(&[&buf[..n], payload[0], payload[1]]);
        let f = parse_frame(&frame, Checks::ALL).unwrap();
        assert_eq!(
            (f.src_ip, f.dst_ip),
            (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2))
        );
        assert_eq!(
            (f.src_port, f.dst_port, f.ttl, f.ident),
            (40_000, 9_000, 64, 0)
        );
        assert_eq!(f.payload, b"abcdefgh");
        assert!(
            ipv4::Packet::new_checked(&frame[14..])
                .unwrap()
                .verify_checksum()
        );
        // The identification increases; the other direction works alike.
        let n = s
            .headers(&mut buf, v4(2, 9_000), v4(1, 40_000), &[b"x"])
            .unwrap();
        let frame = concat(&[&buf[..n], b"x"]);
        let f = parse_frame(&frame, Checks::ALL).unwrap();
        assert_eq!((f.ident, f.src_port, f.payload), (1, 9_000, &b"x"[..]));
        // Multicast gets the group's MAC address.
        let group = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)), 30_001);
        s.headers(&mut buf, v4(1, 1), group, &[]).unwrap();
        assert_eq!(buf[0..6], [0x01, 0x00, 0x5e, 1, 1, 1]);
        // IPv4-mapped IPv6 addresses (a dual-stack socket's peers) are IPv4.
        let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(198, 18, 0, 2).to_ipv6_mapped()), 9);
        assert_eq!(s.headers(&mut buf, v4(1, 1), mapped, &[]), Ok(42));
        assert_eq!(
            s.headers(&mut buf, v4(1, 1), v6(2, 9), &[]),
            Err(SynthError::MixedFamilies)
        );
        let big = vec![0u8; udp::MAX_PAYLOAD_LEN + 1];
        assert_eq!(
            s.headers(&mut buf, v4(1, 1), v4(2, 2), &[&big]),
            Err(SynthError::TooLong {
                len: 65_508,
                max: 65_507
            })
        );
    }

    #[test]
    fn udp_over_ipv6_headers() {
        let mut s = UdpSynth::new();
        let mut buf = [0; MAX_HEADER_LEN];
        let payload: [&[u8]; 2] = [b"hello", b" v6"];
        let n = s
            .headers(&mut buf, v6(1, 5_000), v6(2, 6_000), &payload)
            .unwrap();
        assert_eq!(n, 14 + 40 + 8);
        assert_eq!(buf[0..6], [0x02, 0, 0, 0, 0, 2]);
        assert_eq!(buf[12..14], [0x86, 0xdd]);
        assert_eq!(buf[14..18], [0x60, 0, 0, 0]);
        assert_eq!(buf[18..20], 16u16.to_be_bytes(), "payload length");
        assert_eq!((buf[20], buf[21]), (17, 64));
        assert_eq!(
            buf[22..38],
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets()
        );
        assert_eq!(
            buf[38..54],
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets()
        );
        assert_eq!(buf[54..56], 5_000u16.to_be_bytes());
        assert_eq!(buf[58..60], 16u16.to_be_bytes());
        // The checksum verifies: pseudo-header and datagram sum to all ones.
        let dgram = concat(&[&buf[54..n], payload[0], payload[1]]);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&buf[22..54]);
        pseudo.extend_from_slice(&16u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(
            checksum::combine(&[checksum::data(&pseudo), checksum::data(&dgram)]),
            0xffff
        );
        assert_ne!(buf[60..62], [0, 0]);
        let group = SocketAddr::new("ff02::1:2".parse().unwrap(), 1);
        s.headers(&mut buf, v6(1, 1), group, &[]).unwrap();
        assert_eq!(buf[0..6], [0x33, 0x33, 0, 1, 0, 2]);
    }

    /// (seq, ack, flags, payload) of a synthesized IPv4 TCP frame, after
    /// checking both checksums.
    fn tcp_fields(frame: &[u8]) -> (u32, u32, u8, Vec<u8>) {
        let ip = ipv4::Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.protocol(), Protocol::Tcp);
        let t = ip.payload();
        let sum = checksum::combine(&[
            checksum::pseudo_header_v4(ip.src_addr(), ip.dst_addr(), Protocol::Tcp, t.len() as u16),
            checksum::data(t),
        ]);
        assert_eq!(sum, 0xffff, "TCP checksum");
        let u32_at = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
        (u32_at(4), u32_at(8), t[13], t[20..].to_vec())
    }

    #[test]
    fn tcp_segments_carry_the_stream() {
        let mut c = TcpSynth::new(v4(1, 40_000), v4(2, 9_001), true).unwrap();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut out = |f: &[&[u8]]| frames.push(f.concat());
        // Sequence numbers wrap: `s(isn, k)` is isn + k modulo 2^32.
        let s = |isn: u32, k: u32| isn.wrapping_add(k);
        let isn_i = s(c.next_seq(Side::Initiator), u32::MAX);
        let isn_r = s(c.next_seq(Side::Responder), u32::MAX);
        c.segments(Side::Initiator, &[&5u32.to_be_bytes(), b"hello"], &mut out);
        c.segments(Side::Responder, &[&2u32.to_be_bytes(), b"ok"], &mut out);
        c.segments(Side::Initiator, &[], &mut out);
        let f: Vec<_> = frames.iter().map(|f| tcp_fields(f)).collect();
        assert_eq!(f.len(), 5);
        assert_eq!((f[0].0, f[0].1, f[0].2), (isn_i, 0, SYN));
        assert_eq!((f[1].0, f[1].1, f[1].2), (isn_r, s(isn_i, 1), SYN | ACK));
        assert_eq!((f[2].0, f[2].1, f[2].2), (s(isn_i, 1), s(isn_r, 1), ACK));
        assert_eq!(
            f[3],
            (
                s(isn_i, 1),
                s(isn_r, 1),
                PSH | ACK,
                b"\0\0\0\x05hello".to_vec()
            )
        );
        assert_eq!(
            f[4],
            (
                s(isn_r, 1),
                s(isn_i, 10),
                PSH | ACK,
                b"\0\0\0\x02ok".to_vec()
            )
        );
        // Ports follow the direction.
        assert_eq!(frames[4][34..38], [0x23, 0x29, 0x9c, 0x40]);
        // A message longer than a segment is split, in order.
        let big: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
        frames.clear();
        let mut out = |f: &[&[u8]]| frames.push(f.concat());
        c.segments(
            Side::Initiator,
            &[&(big.len() as u32).to_be_bytes(), &big],
            &mut out,
        );
        c.fin(Side::Initiator, &mut out);
        c.fin(Side::Initiator, &mut out);
        assert_eq!(frames.len(), 4, "three segments and one FIN");
        let mut stream = Vec::new();
        let mut seq = s(isn_i, 10);
        for fr in &frames[..3] {
            let (sq, a, flags, p) = tcp_fields(fr);
            assert_eq!((sq, a, flags), (seq, s(isn_r, 7), PSH | ACK));
            assert!(p.len() <= MAX_SEGMENT && fr.len() <= SNAPLEN);
            seq = s(seq, p.len() as u32);
            stream.extend(p);
        }
        assert_eq!(stream[4..], big[..]);
        let (sq, a, flags, p) = tcp_fields(&frames[3]);
        assert_eq!((sq, a, flags, p.len()), (seq, s(isn_r, 7), FIN | ACK, 0));
        assert_eq!(c.next_seq(Side::Initiator), s(seq, 1));
        assert_eq!(
            TcpSynth::new(v4(1, 1), v6(2, 2), false).unwrap_err(),
            SynthError::MixedFamilies
        );
    }

    #[test]
    fn tcp_without_handshake_starts_mid_stream() {
        let mut c = TcpSynth::new(v4(1, 1_000), v4(2, 2_000), false).unwrap();
        let first = c.next_seq(Side::Initiator);
        let mut frames = Vec::new();
        c.segments(
            Side::Initiator,
            &[b"a", b"b", b"c"],
            &mut |f: &[&[u8]]| {
                assert_eq!(f.len(), 4, "headers and the three slices, not copied");
                frames.push(f.concat());
            },
        );
        assert_eq!(frames.len(), 1);
        let (s, _, flags, p) = tcp_fields(&frames[0]);
        assert_eq!((s, flags, p), (first, PSH | ACK, b"abc".to_vec()));
    }

    #[test]
    fn tcpdump_reads_udp_over_ipv4_and_ipv6() {
        let test = "tcpdump_reads_udp_over_ipv4_and_ipv6";
        if !have(test, "tcpdump", "tcpdump", true) {
            return;
        }
        let f = TempFile::new("udp");
        let mut w = PcapWriter::create(&f.0, None).unwrap();
        let mut s = UdpSynth::new();
        let mut buf = [0; MAX_HEADER_LEN];
        let sent: [(SocketAddr, SocketAddr, &[u8]); 3] = [
            (v4(1, 40_000), v4(2, 9_000), b"ping 1"),
            (v4(2, 9_000), v4(1, 40_000), b"pong 1, odd"),
            (v6(1, 5_000), v6(2, 6_000), b"over IPv6"),
        ];
        let mut frames = Vec::new();
        for (i, (src, dst, payload)) in sent.iter().enumerate() {
            let n = s.headers(&mut buf, *src, *dst, &[payload]).unwrap();
            w.record_frame(TS + i as u64 * 1_000, &[&buf[..n], payload]);
            frames.push(concat(&[&buf[..n], payload]));
        }
        drop(w);
        let got = tcpdump(&f.0);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].0.starts_with("1700000000.123456"), "{}", got[0].0);
        assert!(
            got[0]
                .0
                .contains("IP 198.18.0.1.40000 > 198.18.0.2.9000: UDP, length 6"),
            "{}",
            got[0].0
        );
        assert!(
            got[1]
                .0
                .contains("IP 198.18.0.2.9000 > 198.18.0.1.40000: UDP, length 11"),
            "{}",
            got[1].0
        );
        assert!(
            got[2]
                .0
                .contains("IP6 2001:db8::1.5000 > 2001:db8::2.6000: UDP, length 9"),
            "{}",
            got[2].0
        );
        // -x prints the packet from the IP header on: all of it, as built.
        for ((_, bytes), frame) in got.iter().zip(&frames) {
            assert_eq!(bytes[..], frame[ethernet::HEADER_LEN..]);
        }
        assert!(got[0].1.ends_with(b"ping 1"));
        assert_eq!(got[2].1.len(), 40 + 8 + 9);
        assert_checksums_ok(&f.0);
        let v = run("tcpdump", &["-r", f.0.to_str().unwrap(), "-nn", "-vv"]);
        assert_eq!(v.matches("udp sum ok").count(), 3, "{v}");
    }

    #[test]
    fn tcpdump_and_tshark_follow_a_tcp_stream() {
        let test = "tcpdump_and_tshark_follow_a_tcp_stream";
        if !have(test, "tcpdump", "tcpdump", true) {
            return;
        }
        let f = TempFile::new("tcp");
        let mut w = PcapWriter::create(&f.0, None).unwrap();
        let mut c = TcpSynth::new(v4(1, 40_001), v4(2, 9_001), true).unwrap();
        // The last message spans three segments.
        let big: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let msgs: [(Side, &[u8]); 6] = [
            (Side::Initiator, b"login"),
            (Side::Responder, b"accepted"),
            (Side::Initiator, b"order 1: buy 100"),
            (Side::Initiator, b"order 2"),
            (Side::Responder, b"executed 1"),
            (Side::Initiator, &big),
        ];
        let mut streams = [Vec::new(), Vec::new()];
        let mut frames = Vec::new();
        let mut rec = |fr: &[&[u8]]| {
            w.record_frame(TS, fr);
            frames.push(fr.concat());
        };
        for (side, m) in msgs {
            let prefix = (m.len() as u32).to_be_bytes();
            streams[side.index()].extend_from_slice(&prefix);
            streams[side.index()].extend_from_slice(m);
            c.segments(side, &[&prefix, m], &mut rec);
        }
        c.fin(Side::Initiator, &mut rec);
        c.fin(Side::Responder, &mut rec);
        drop(w);
        let got = tcpdump(&f.0);
        assert_eq!(got.len(), 3 + 5 + 3 + 2, "{got:?}");
        assert!(
            got[0]
                .0
                .contains("IP 198.18.0.1.40001 > 198.18.0.2.9001: Flags [S]"),
            "{}",
            got[0].0
        );
        assert!(
            got[1]
                .0
                .contains("IP 198.18.0.2.9001 > 198.18.0.1.40001: Flags [S.]"),
            "{}",
            got[1].0
        );
        assert!(got[2].0.contains("Flags [.]"), "{}", got[2].0);
        assert!(
            got[3]
                .0
                .contains("IP 198.18.0.1.40001 > 198.18.0.2.9001: Flags [P.], seq 1:10, ack 1,"),
            "{}",
            got[3].0
        );
        assert!(
            got[4]
                .0
                .contains("IP 198.18.0.2.9001 > 198.18.0.1.40001: Flags [P.], seq 1:13, ack 10,"),
            "{}",
            got[4].0
        );
        // 150004 stream bytes in segments of MAX_SEGMENT (65461).
        assert!(got[8].0.contains("seq 41:65502, ack 27,"), "{}", got[8].0);
        assert!(
            got[10].0.contains("seq 130963:150045, ack 27,"),
            "{}",
            got[10].0
        );
        assert!(got[11].0.contains("Flags [F.]"), "{}", got[11].0);
        for ((line, _), (_, m)) in got[3..8].iter().zip(&msgs[..5]) {
            assert!(line.ends_with(&format!("length {}", m.len() + 4)), "{line}");
        }
        for ((_, bytes), frame) in got.iter().zip(&frames) {
            assert_eq!(bytes[..], frame[ethernet::HEADER_LEN..]);
        }
        assert_checksums_ok(&f.0);
        if !have(
            &format!("{test} (the tshark part)"),
            "tshark",
            "tshark",
            true,
        ) {
            return;
        }
        // tshark reassembles both directions: node 0 (the initiator) at the
        // start of the line, node 1 indented.
        let text = run(
            "tshark",
            &["-r", f.0.to_str().unwrap(), "-q", "-z", "follow,tcp,raw,0"],
        );
        let mut seen = [Vec::new(), Vec::new()];
        for line in text.lines() {
            let node = usize::from(line.starts_with('\t'));
            let hex = line.trim();
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() % 2 == 1 {
                continue;
            }
            for i in (0..hex.len()).step_by(2) {
                seen[node].push(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
            }
        }
        assert_eq!(seen, streams, "{text}");
    }
}
