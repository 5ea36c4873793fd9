//! Who may re-request, and how much: the access list and the per-source
//! rate limits of the re-request server, sans-IO.
//!
//! A MoldUDP64 request is 20 bytes and asks for up to `max_request_count`
//! messages — tens of kilobytes of reply. Answered for anyone, the server is
//! a reflection amplifier aimed at whatever source address a request
//! forges. [`RequestGuard`] answers only sources its allow list names, and
//! gives each source a token bucket of messages and of bytes, refilled at a
//! fixed rate up to a burst: a request is answered only as far as its
//! source's buckets pay for (the rest is cut), and refused when they cannot
//! pay for one full reply packet. All sources together share one more pair
//! of buckets ([`RequestLimits::total_messages_per_sec`],
//! [`RequestLimits::total_bytes_per_sec`]), so a spoofer whose forged
//! addresses fall in a wide allow list, each with a full bucket, still gets
//! no more than the total rate: an answer is cut where either the source's
//! or the total buckets run out, and refused ([`Refusal::TotalLimited`])
//! when the total cannot pay for one full reply packet.
//!
//! Order of calls: [`RequestGuard::admit`] with the request's source and
//! `now` gives a [`Ticket`] holding the [`ReplyBudget`] (or a [`Refusal`]);
//! answer within the budget ([`Publisher::answer_request`]); then
//! [`RequestGuard::charge`] the ticket with the [`Reply`] sent.
//!
//! Sources are IP addresses (the port is not part of the key: a spoofer
//! picks ports freely); IPv4-mapped IPv6 addresses count as their IPv4
//! address. A request without a source address comes from an in-process
//! transport (`mem://`), where nothing can be forged from the network: it is
//! allowed, and all such requests share one bucket.
//!
//! Bounds: the table of sources is allocated once, [`RequestLimits::max_sources`]
//! entries, and never grows. A full table makes room only by forgetting a
//! source whose buckets have refilled completely (forgetting it gives it
//! nothing it would not have had); when there is none, the new source is
//! refused ([`Refusal::TooManySources`]). So a spoofer cycling through
//! addresses can neither grow memory nor refill a bucket by pushing it out.
//! Nothing allocates after [`RequestGuard::new`]. A source is found in O(1):
//! an open-addressing hash index (linear probing, keyed with a random
//! SipHash key so a spoofer cannot choose colliding addresses, at most half
//! full) maps it to its table entry. Only a new source on a full table
//! looks for one to forget: from where the last search stopped, and only
//! once the earliest time any entry can be full again has come (a search
//! that finds none records it), so a spoofer cycling addresses while the
//! table is full of limited sources is refused without a scan.
//!
//! [`Publisher::answer_request`]: super::Publisher::answer_request

use core::fmt;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::str::FromStr;

use super::publisher::{Reply, ReplyBudget};

/// Token units per token: the buckets count token-nanoseconds, so a refill
/// of `elapsed_ns × per_sec` is exact in integers.
const SCALE: u128 = 1_000_000_000;

/// The largest rate or burst accepted (10¹²: a terabyte per second).
pub const MAX_LIMIT: u64 = 1_000_000_000_000;
/// The largest table of sources.
pub const MAX_SOURCES: usize = 65_536;

/// A source address or prefix a re-request may come from: `198.18.0.2`,
/// `198.18.0.0/15`, `::1`, `fd00::/8`; `0.0.0.0/0` allows every IPv4 source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePrefix {
    addr: IpAddr,
    len: u8,
}

impl SourcePrefix {
    /// The prefix of `addr` of `len` bits (the bits after them cleared).
    ///
    /// # Errors
    /// [`PrefixError::Length`] when `len` exceeds the address's bits.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self, PrefixError> {
        let addr = addr.to_canonical();
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if len > bits {
            return Err(PrefixError::Length { len, bits });
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(len)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(len)).into()),
        };
        Ok(Self { addr, len })
    }

    /// One address.
    #[must_use]
    pub fn host(addr: IpAddr) -> Self {
        let addr = addr.to_canonical();
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Self { addr, len }
    }

    /// Whether `ip` is in the prefix.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(p), IpAddr::V4(a)) => u32::from(a) & mask32(self.len) == u32::from(p),
            (IpAddr::V6(p), IpAddr::V6(a)) => u128::from(a) & mask128(self.len) == u128::from(p),
            _ => false,
        }
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl fmt::Display for SourcePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.addr, self.len) {
            (IpAddr::V4(_), 32) | (IpAddr::V6(_), 128) => write!(f, "{}", self.addr),
            _ => write!(f, "{}/{}", self.addr, self.len),
        }
    }
}

/// Why a [`SourcePrefix`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixError {
    /// Not an IP address.
    Address(String),
    /// The prefix length is not a number.
    LengthSyntax(String),
    /// The prefix length exceeds the address's bits.
    Length {
        /// The length given.
        len: u8,
        /// The address's bits (32 or 128).
        bits: u8,
    },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(s) => write!(
                f,
                "{s:?} is not an IP address: give ADDRESS or ADDRESS/LENGTH, e.g. 198.18.0.1 or 198.18.0.0/15"
            ),
            Self::LengthSyntax(s) => write!(
                f,
                "prefix length {s:?} is not a number: give ADDRESS/LENGTH, e.g. 198.18.0.0/15"
            ),
            Self::Length { len, bits } => write!(
                f,
                "prefix length {len} is longer than the address ({bits} bits)"
            ),
        }
    }
}

impl std::error::Error for PrefixError {}

impl FromStr for SourcePrefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| PrefixError::Address(addr.to_string()))?;
        match len {
            None => Ok(Self::host(ip)),
            Some(l) => {
                let len: u8 = l
                    .parse()
                    .map_err(|_| PrefixError::LengthSyntax(l.to_string()))?;
                // A mapped address (::ffff:a.b.c.d/n) counts as IPv4.
                let len = match (ip, ip.to_canonical()) {
                    (IpAddr::V6(_), IpAddr::V4(_)) => len
                        .checked_sub(96)
                        .ok_or(PrefixError::Length { len, bits: 128 })?,
                    _ => len,
                };
                Self::new(ip, len)
            }
        }
    }
}

/// How much each source may have answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Messages per second a source's bucket refills. Default 100,000.
    pub messages_per_sec: u64,
    /// Reply bytes (UDP payload) per second a source's bucket refills.
    /// Default 8,000,000 (64 Mbit/s).
    pub bytes_per_sec: u64,
    /// Messages a full bucket holds. Default 16,384.
    pub burst_messages: u64,
    /// Bytes a full bucket holds; at least one reply packet
    /// (`max_payload`). Default 1 MiB.
    pub burst_bytes: u64,
    /// Sources tracked at once (the table is allocated once).
    /// Default 1024, at most [`MAX_SOURCES`].
    pub max_sources: usize,
    /// Messages per second all sources together may have answered.
    /// Default 400,000 (4× a source's). The total bucket holds one second
    /// of this rate, and at least `burst_messages`.
    pub total_messages_per_sec: u64,
    /// Reply bytes per second all sources together may have answered.
    /// Default 32,000,000 (4× a source's). The total bucket holds one
    /// second of this rate, and at least `burst_bytes`.
    pub total_bytes_per_sec: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            messages_per_sec: 100_000,
            bytes_per_sec: 8_000_000,
            burst_messages: 16_384,
            burst_bytes: 1 << 20,
            max_sources: 1024,
            total_messages_per_sec: 400_000,
            total_bytes_per_sec: 32_000_000,
        }
    }
}

impl RequestLimits {
    /// Checks every field, for replies of up to `max_payload` bytes.
    ///
    /// # Errors
    /// Names the first field out of range and what is allowed.
    pub fn validate(&self, max_payload: usize) -> Result<(), LimitError> {
        let bad = |field, why| Err(LimitError { field, why });
        let in_range = |v: u64| (1..=MAX_LIMIT).contains(&v);
        if !in_range(self.messages_per_sec) {
            return bad("messages_per_sec", "must be between 1 and 10^12");
        }
        if !in_range(self.bytes_per_sec) {
            return bad("bytes_per_sec", "must be between 1 and 10^12");
        }
        if !in_range(self.burst_messages) {
            return bad("burst_messages", "must be between 1 and 10^12");
        }
        if self.burst_bytes < max_payload as u64 || self.burst_bytes > MAX_LIMIT {
            return bad(
                "burst_bytes",
                "must hold one full reply packet (max_payload bytes) and be at most 10^12",
            );
        }
        if !(1..=MAX_SOURCES).contains(&self.max_sources) {
            return bad("max_sources", "must be between 1 and 65536");
        }
        if !in_range(self.total_messages_per_sec) {
            return bad("total_messages_per_sec", "must be between 1 and 10^12");
        }
        if !in_range(self.total_bytes_per_sec) {
            return bad("total_bytes_per_sec", "must be between 1 and 10^12");
        }
        Ok(())
    }
}

/// A [`RequestLimits`] field out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitError {
    /// The field.
    pub field: &'static str,
    /// What is allowed.
    pub why: &'static str,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "re-request limit {}: {}", self.field, self.why)
    }
}

impl std::error::Error for LimitError {}

/// Why a request was not answered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source is not in the allow list.
    NotAllowed,
    /// The source's buckets cannot pay for one full reply packet.
    RateLimited,
    /// The table of sources is full of sources still being limited.
    TooManySources,
    /// All sources together are over the total rate limit: the total
    /// buckets cannot pay for one full reply packet.
    TotalLimited,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAllowed => "source not allowed to re-request",
            Self::RateLimited => "source over its re-request rate limit",
            Self::TooManySources => "too many sources re-requesting at once",
            Self::TotalLimited => "all sources together over the total re-request rate limit",
        })
    }
}

impl std::error::Error for Refusal {}

/// What a [`RequestGuard`] decided so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardStats {
    /// Requests let through to be answered.
    pub admitted: u64,
    /// Requests refused: source not in the allow list.
    pub not_allowed: u64,
    /// Requests refused: the source's buckets were empty.
    pub rate_limited: u64,
    /// Requests refused: no room in the table of sources.
    pub too_many_sources: u64,
    /// Requests refused: the total buckets were empty.
    pub total_limited: u64,
    /// Admitted requests answered only in part (the budget ran out).
    pub cut: u64,
    /// Sources in the table now.
    pub sources: usize,
}

/// Permission to answer one request within [`Ticket::budget`]; hand it
/// back to [`RequestGuard::charge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "charge the ticket with what was sent"]
pub struct Ticket {
    slot: usize,
    budget: ReplyBudget,
}

impl Ticket {
    /// The most the answer may send.
    #[must_use]
    pub fn budget(&self) -> ReplyBudget {
        self.budget
    }
}

/// A source's two buckets, in token-nanoseconds, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    source: Option<IpAddr>,
    /// The source's hash, for the index.
    hash: u64,
    messages: u128,
    bytes: u128,
    at: u64,
}

/// The total buckets, in token-nanoseconds, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    messages: u128,
    bytes: u128,
    at: u64,
}

/// An empty index position.
const VACANT: u32 = u32::MAX;

/// The allow list and the per-source buckets; see the module doc.
#[derive(Debug)]
pub struct RequestGuard {
    allow: Vec<SourcePrefix>,
    limits: RequestLimits,
    /// Bytes of the largest reply packet.
    packet_bytes: u64,
    table: Vec<Entry>,
    /// Open-addressing index into `table` (a power of two, at least twice
    /// `max_sources`): `VACANT` or a table position.
    index: Vec<u32>,
    hasher: RandomState,
    /// The buckets all sources share.
    total: Buckets,
    /// Where the next search for a source to forget starts.
    hand: usize,
    /// No entry can be full again before this time (ns): a new source is
    /// refused without a search until then.
    no_room_until: u64,
    /// Entries looked at by searches for a source to forget.
    #[cfg(test)]
    scanned: u64,
    stats: GuardStats,
}

impl RequestGuard {
    /// A guard answering the sources in `allow` (and requests without a
    /// source address) within `limits`, for replies of up to `max_payload`
    /// bytes. Room for `extra_allow` more prefixes is kept for
    /// [`RequestGuard::allow`], so adding them later does not allocate.
    ///
    /// # Errors
    /// When `limits` is out of range.
    pub fn new(
        allow: &[SourcePrefix],
        extra_allow: usize,
        limits: RequestLimits,
        max_payload: usize,
    ) -> Result<Self, LimitError> {
        limits.validate(max_payload)?;
        let mut list = Vec::with_capacity(allow.len() + extra_allow);
        list.extend_from_slice(allow);
        let (cap_m, cap_b) = total_caps(&limits);
        Ok(Self {
            allow: list,
            limits,
            packet_bytes: max_payload as u64,
            table: Vec::with_capacity(limits.max_sources),
            index: vec![VACANT; (limits.max_sources * 2).next_power_of_two()],
            hasher: RandomState::new(),
            total: Buckets {
                messages: cap_m,
                bytes: cap_b,
                at: 0,
            },
            hand: 0,
            no_room_until: 0,
            #[cfg(test)]
            scanned: 0,
            stats: GuardStats::default(),
        })
    }

    /// Adds `prefix` to the allow list (without allocating while within the
    /// `extra_allow` room given to [`RequestGuard::new`]).
    pub fn allow(&mut self, prefix: SourcePrefix) {
        if !self.allow.contains(&prefix) {
            self.allow.push(prefix);
        }
    }

    /// The allow list.
    #[must_use]
    pub fn allowed(&self) -> &[SourcePrefix] {
        &self.allow
    }

    /// The limits.
    #[must_use]
    pub fn limits(&self) -> RequestLimits {
        self.limits
    }

    /// What was decided so far.
    #[must_use]
    pub fn stats(&self) -> GuardStats {
        GuardStats {
            sources: self.table.len(),
            ..self.stats
        }
    }

    /// Decides whether a request from `source` (`None`: an in-process
    /// transport) is answered at `now_ns`, and how much it may be sent.
    ///
    /// # Errors
    /// The [`Refusal`], counted in [`GuardStats`].
    pub fn admit(&mut self, now_ns: u64, source: Option<IpAddr>) -> Result<Ticket, Refusal> {
        let source = source.map(|ip| ip.to_canonical());
        if let Some(ip) = source
            && !self.allow.iter().any(|p| p.contains(ip))
        {
            self.stats.not_allowed += 1;
            return Err(Refusal::NotAllowed);
        }
        let Some(slot) = self.slot(now_ns, source) else {
            self.stats.too_many_sources += 1;
            return Err(Refusal::TooManySources);
        };
        let tokens = |v: u128| u64::try_from(v / SCALE).unwrap_or(u64::MAX);
        let e = &self.table[slot];
        let budget = ReplyBudget {
            messages: tokens(e.messages),
            bytes: tokens(e.bytes),
        };
        if budget.messages == 0 || budget.bytes < self.packet_bytes {
            self.stats.rate_limited += 1;
            return Err(Refusal::RateLimited);
        }
        let (cap_m, cap_b) = total_caps(&self.limits);
        let t = &mut self.total;
        let dt = u128::from(now_ns.saturating_sub(t.at));
        t.messages = (t.messages + dt * u128::from(self.limits.total_messages_per_sec)).min(cap_m);
        t.bytes = (t.bytes + dt * u128::from(self.limits.total_bytes_per_sec)).min(cap_b);
        t.at = t.at.max(now_ns);
        let budget = ReplyBudget {
            messages: budget.messages.min(tokens(t.messages)),
            bytes: budget.bytes.min(tokens(t.bytes)),
        };
        if budget.messages == 0 || budget.bytes < self.packet_bytes {
            self.stats.total_limited += 1;
            return Err(Refusal::TotalLimited);
        }
        self.stats.admitted += 1;
        Ok(Ticket { slot, budget })
    }

    /// Takes what `reply` sent from the buckets of the ticket's source.
    pub fn charge(&mut self, ticket: Ticket, reply: &Reply) {
        if reply.cut {
            self.stats.cut += 1;
        }
        let take = |v: &mut u128, n: u64| *v = v.saturating_sub(u128::from(n) * SCALE);
        if let Some(e) = self.table.get_mut(ticket.slot) {
            take(&mut e.messages, reply.messages);
            take(&mut e.bytes, reply.bytes);
        }
        take(&mut self.total.messages, reply.messages);
        take(&mut self.total.bytes, reply.bytes);
    }

    /// The index position holding `source` (hashing to `hash`), or the
    /// vacant one where it would go. The index is at most half full, so
    /// there is always a vacant position.
    fn probe(&self, hash: u64, source: Option<IpAddr>) -> (usize, bool) {
        let mask = self.index.len() - 1;
        #[allow(clippy::cast_possible_truncation)] // masked to the index
        let mut i = hash as usize & mask;
        loop {
            match self.index[i] {
                VACANT => return (i, false),
                slot if self.table[slot as usize].source == source => return (i, true),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Removes index position `hole` (linear probing's backward shift:
    /// the entries after it that may move closer to home do).
    fn unindex(&mut self, mut hole: usize) {
        let mask = self.index.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let slot = self.index[j];
            if slot == VACANT {
                break;
            }
            #[allow(clippy::cast_possible_truncation)] // masked to the index
            let home = self.table[slot as usize].hash as usize & mask;
            // It may move to `hole` when `hole` is between home and j.
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.index[hole] = slot;
                hole = j;
            }
        }
        self.index[hole] = VACANT;
    }

    /// The table slot of `source`, refilled to `now`: found, new, or made
    /// by forgetting a source whose buckets are full again. `None` when the
    /// table is full of sources still being limited.
    fn slot(&mut self, now: u64, source: Option<IpAddr>) -> Option<usize> {
        let l = self.limits;
        let cap_m = u128::from(l.burst_messages) * SCALE;
        let cap_b = u128::from(l.burst_bytes) * SCALE;
        let refill = |e: &mut Entry| {
            let dt = u128::from(now.saturating_sub(e.at));
            e.messages = (e.messages + dt * u128::from(l.messages_per_sec)).min(cap_m);
            e.bytes = (e.bytes + dt * u128::from(l.bytes_per_sec)).min(cap_b);
            e.at = e.at.max(now);
        };
        let hash = self.hasher.hash_one(source);
        let (pos, found) = self.probe(hash, source);
        if found {
            let i = self.index[pos] as usize;
            refill(&mut self.table[i]);
            return Some(i);
        }
        let fresh = Entry {
            source,
            hash,
            messages: cap_m,
            bytes: cap_b,
            at: now,
        };
        if self.table.len() < l.max_sources {
            self.table.push(fresh);
            let i = self.table.len() - 1;
            self.index[pos] = u32::try_from(i).ok()?;
            return Some(i);
        }
        if now < self.no_room_until {
            return None;
        }
        // When an entry is full again: charges only push it later, and
        // refills do not move it.
        let ceil_div = |deficit: u128, rate: u64| deficit.div_ceil(u128::from(rate));
        let full_at = |e: &Entry| {
            let wait = ceil_div(cap_m - e.messages, l.messages_per_sec)
                .max(ceil_div(cap_b - e.bytes, l.bytes_per_sec));
            u64::try_from(u128::from(e.at) + wait).unwrap_or(u64::MAX)
        };
        let n = self.table.len();
        let mut soonest = u64::MAX;
        let mut free = None;
        for k in 0..n {
            let i = (self.hand + k) % n;
            let e = &mut self.table[i];
            refill(e);
            #[cfg(test)]
            {
                self.scanned += 1;
            }
            if e.messages == cap_m && e.bytes == cap_b {
                free = Some(i);
                break;
            }
            soonest = soonest.min(full_at(e));
        }
        let Some(i) = free else {
            self.no_room_until = soonest;
            return None;
        };
        self.hand = (i + 1) % n;
        let old = self.table[i];
        let (old_pos, _) = self.probe(old.hash, old.source);
        self.unindex(old_pos);
        self.table[i] = fresh;
        // The removal may have moved the vacant position found above.
        let (pos, _) = self.probe(hash, source);
        self.index[pos] = u32::try_from(i).ok()?;
        Some(i)
    }

    /// Checks that the index finds every source in the table, and nothing
    /// else.
    #[cfg(test)]
    fn index_consistent(&self) -> bool {
        let filled = self.index.iter().filter(|&&s| s != VACANT).count();
        filled == self.table.len()
            && self.table.iter().enumerate().all(|(i, e)| {
                let (pos, found) = self.probe(e.hash, e.source);
                found && self.index[pos] as usize == i
            })
    }
}

/// The total buckets' capacities: one second of the total rate, and at
/// least one source's burst.
fn total_caps(l: &RequestLimits) -> (u128, u128) {
    (
        u128::from(l.total_messages_per_sec.max(l.burst_messages)) * SCALE,
        u128::from(l.total_bytes_per_sec.max(l.burst_bytes)) * SCALE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn prefix(s: &str) -> SourcePrefix {
        s.parse().unwrap()
    }

    fn reply(messages: u64, bytes: u64, cut: bool) -> Reply {
        Reply {
            messages,
            packets: 1,
            bytes,
            cut,
        }
    }

    #[test]
    fn prefixes_parse_match_and_name_their_errors() {
        let p = prefix("198.18.0.0/15");
        assert!(p.contains(ip("198.18.0.1")) && p.contains(ip("198.19.255.255")));
        assert!(!p.contains(ip("198.20.0.1")) && !p.contains(ip("::1")));
        assert!(p.contains(ip("::ffff:198.18.3.4")), "mapped counts as IPv4");
        assert_eq!(p.to_string(), "198.18.0.0/15");
        assert_eq!(prefix("198.18.7.9/15"), p, "host bits cleared");
        assert_eq!(prefix("::ffff:198.18.0.0/111"), p);
        let h = prefix("127.0.0.1");
        assert!(h.contains(ip("127.0.0.1")) && !h.contains(ip("127.0.0.2")));
        assert_eq!(h.to_string(), "127.0.0.1");
        assert!(prefix("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!prefix("0.0.0.0/0").contains(ip("::2")));
        assert!(prefix("fd00::/8").contains(ip("fd12::1")));
        assert!(prefix("::/0").contains(ip("2001:db8::1")));
        assert_eq!(
            "198.18.0.0/33".parse::<SourcePrefix>(),
            Err(PrefixError::Length { len: 33, bits: 32 })
        );
        assert!(matches!(
            "exchange.local".parse::<SourcePrefix>(),
            Err(PrefixError::Address(_))
        ));
        assert!(matches!(
            "10.0.0.0/x".parse::<SourcePrefix>(),
            Err(PrefixError::LengthSyntax(_))
        ));
        assert!(matches!(
            "::ffff:10.0.0.0/64".parse::<SourcePrefix>(),
            Err(PrefixError::Length { .. })
        ));
        assert!(
            PrefixError::Address("x".into())
                .to_string()
                .contains("198.18.0.0/15")
        );
    }

    #[test]
    fn limits_are_validated() {
        let ok = RequestLimits::default();
        assert_eq!(ok.validate(1400), Ok(()));
        let field = |l: RequestLimits| l.validate(1400).unwrap_err().field;
        assert_eq!(
            field(RequestLimits {
                messages_per_sec: 0,
                ..ok
            }),
            "messages_per_sec"
        );
        assert_eq!(
            field(RequestLimits {
                bytes_per_sec: MAX_LIMIT + 1,
                ..ok
            }),
            "bytes_per_sec"
        );
        assert_eq!(
            field(RequestLimits {
                burst_messages: 0,
                ..ok
            }),
            "burst_messages"
        );
        assert_eq!(
            field(RequestLimits {
                burst_bytes: 1399,
                ..ok
            }),
            "burst_bytes"
        );
        assert_eq!(
            field(RequestLimits {
                max_sources: MAX_SOURCES + 1,
                ..ok
            }),
            "max_sources"
        );
        assert_eq!(
            field(RequestLimits {
                total_messages_per_sec: 0,
                ..ok
            }),
            "total_messages_per_sec"
        );
        assert_eq!(
            field(RequestLimits {
                total_bytes_per_sec: MAX_LIMIT + 1,
                ..ok
            }),
            "total_bytes_per_sec"
        );
        assert!(RequestGuard::new(&[], 0, ok, 1 << 21).is_err());
    }

    #[test]
    fn only_allowed_sources_are_admitted() {
        let mut g =
            RequestGuard::new(&[prefix("198.18.0.1")], 1, RequestLimits::default(), 1400).unwrap();
        assert_eq!(g.admit(0, Some(ip("198.18.0.9"))), Err(Refusal::NotAllowed));
        assert_eq!(g.admit(0, Some(ip("::1"))), Err(Refusal::NotAllowed));
        let t = g.admit(0, Some(ip("198.18.0.1"))).unwrap();
        assert_eq!(t.budget().messages, 16_384);
        assert_eq!(t.budget().bytes, 1 << 20);
        g.charge(t, &reply(1, 100, false));
        // In-process requests carry no address and cannot be forged.
        let t = g.admit(0, None).unwrap();
        g.charge(t, &reply(1, 100, false));
        g.allow(prefix("198.18.0.9"));
        let t = g.admit(0, Some(ip("198.18.0.9"))).unwrap();
        g.charge(t, &reply(1, 100, false));
        let s = g.stats();
        assert_eq!((s.admitted, s.not_allowed, s.sources), (3, 2, 3));
        assert_eq!(g.allowed().len(), 2);
    }

    #[test]
    fn a_source_is_cut_at_its_buckets_and_refilled_at_its_rate() {
        let limits = RequestLimits {
            messages_per_sec: 1000,
            bytes_per_sec: 100_000,
            burst_messages: 100,
            burst_bytes: 10_000,
            ..RequestLimits::default()
        };
        let src = Some(ip("10.0.0.1"));
        let mut g = RequestGuard::new(&[prefix("10.0.0.0/8")], 0, limits, 1000).unwrap();
        // Spend the bytes a full packet at a time: 10 packets of 1000 bytes.
        let mut answered = 0;
        for _ in 0..20 {
            match g.admit(0, src) {
                Ok(t) => {
                    assert!(t.budget().bytes >= 1000);
                    g.charge(t, &reply(5, 1000, false));
                    answered += 1;
                }
                Err(e) => assert_eq!(e, Refusal::RateLimited),
            }
        }
        assert_eq!(answered, 10);
        assert_eq!(g.stats().rate_limited, 10);
        // 10 ms later: 1000 bytes (one packet) and 10 messages are back.
        let t = g.admit(10_000_000, src).unwrap();
        assert_eq!(
            t.budget(),
            ReplyBudget {
                messages: 60,
                bytes: 1000
            }
        );
        g.charge(t, &reply(60, 1000, true));
        assert_eq!(g.stats().cut, 1);
        assert_eq!(g.admit(10_000_000, src), Err(Refusal::RateLimited));
        // Never more than the burst, however long it waited; time going
        // backwards gives nothing.
        let t = g.admit(u64::MAX, src).unwrap();
        assert_eq!(
            t.budget(),
            ReplyBudget {
                messages: 100,
                bytes: 10_000
            }
        );
        g.charge(t, &reply(100, 10_000, false));
        assert_eq!(g.admit(5, src), Err(Refusal::RateLimited));
    }

    #[test]
    fn the_table_is_bounded_and_a_busy_source_is_not_pushed_out() {
        let limits = RequestLimits {
            messages_per_sec: 1000,
            bytes_per_sec: 1_000_000,
            burst_messages: 1000,
            burst_bytes: 1_000_000,
            max_sources: 4,
            ..RequestLimits::default()
        };
        let mut g = RequestGuard::new(&[prefix("0.0.0.0/0")], 0, limits, 1000).unwrap();
        let victim = Some(ip("192.0.2.1"));
        let t = g.admit(0, victim).unwrap();
        g.charge(t, &reply(1000, 5000, false));
        // A spoofer cycling through 10,000 addresses, each spending.
        let mut refused = 0;
        for i in 0..10_000u32 {
            let src = Some(IpAddr::V4((0x0a00_0000 + i).into()));
            match g.admit(1, src) {
                Ok(t) => g.charge(t, &reply(1, 1000, false)),
                Err(e) => {
                    assert_eq!(e, Refusal::TooManySources);
                    refused += 1;
                }
            }
        }
        assert_eq!(g.stats().sources, 4, "the table never grows");
        assert_eq!(g.table.capacity(), 4, "nor reallocates");
        assert_eq!(refused, 10_000 - 3);
        assert_eq!(g.stats().too_many_sources, refused);
        // The victim's empty bucket was not forgotten (and refilled).
        assert_eq!(g.admit(1, victim), Err(Refusal::RateLimited));
        // Once the others' buckets are full again, a new source gets a slot.
        let later = 2_000_000_000;
        assert!(g.admit(later, Some(ip("203.0.113.7"))).is_ok());
        assert_eq!(g.stats().sources, 4);
        assert!(g.index_consistent());
    }

    #[test]
    fn a_full_table_refuses_new_sources_without_scanning_it_each_time() {
        let limits = RequestLimits {
            messages_per_sec: 1000,
            bytes_per_sec: 1_000_000,
            burst_messages: 1000,
            burst_bytes: 1_000_000,
            max_sources: 1000,
            ..RequestLimits::default()
        };
        let mut g = RequestGuard::new(&[prefix("0.0.0.0/0")], 0, limits, 1000).unwrap();
        let src = |i: u32| Some(IpAddr::V4((0x0a00_0000 + i).into()));
        // The table fills with sources still limited (each spent 1 ms of
        // refill, the last at 1 µs).
        for i in 0..1000 {
            let t = g.admit(u64::from(i), src(i)).unwrap();
            g.charge(t, &reply(1, 1000, false));
        }
        // A spoofer cycling through 10,000 more addresses meanwhile: one
        // search of the table, not one per address.
        for i in 1000..11_000 {
            assert_eq!(g.admit(1000, src(i)), Err(Refusal::TooManySources));
        }
        assert_eq!(g.scanned, 1000, "one search");
        // Once the first entry is full again (1 ms after it spent), a new
        // source takes its place at once, and the next the one after it.
        assert_eq!(g.admit(999_999, src(20_000)), Err(Refusal::TooManySources));
        assert!(g.admit(1_000_000, src(20_000)).is_ok());
        assert!(g.admit(1_000_001, src(20_001)).is_ok());
        assert_eq!(g.scanned, 1000 + 1 + 1);
        assert_eq!(
            g.admit(1_000_001, src(0)).map(|_| ()),
            Ok(()),
            "forgotten: a fresh bucket"
        );
        assert!(g.index_consistent());
    }

    #[test]
    fn all_sources_together_stay_within_the_total_rate() {
        // A spoofer with a wide allow list: every forged address comes
        // with a full bucket of its own.
        let limits = RequestLimits {
            messages_per_sec: 1000,
            bytes_per_sec: 100_000,
            burst_messages: 100,
            burst_bytes: 10_000,
            total_messages_per_sec: 300,
            total_bytes_per_sec: 20_000,
            ..RequestLimits::default()
        };
        let mut g = RequestGuard::new(&[prefix("10.0.0.0/8")], 0, limits, 1000).unwrap();
        let spend = |g: &mut RequestGuard, now: u64, first: u32| {
            let (mut messages, mut bytes) = (0, 0);
            for i in first..first + 100 {
                match g.admit(now, Some(IpAddr::V4((0x0a00_0000 + i).into()))) {
                    Ok(t) => {
                        let b = t.budget();
                        assert!(b.messages <= 100 && b.bytes <= 10_000);
                        messages += b.messages;
                        bytes += b.bytes;
                        g.charge(t, &reply(b.messages, b.bytes, false));
                    }
                    Err(e) => assert_eq!(e, Refusal::TotalLimited),
                }
            }
            (messages, bytes)
        };
        // At most the total bucket (one second of the total rate) at once,
        // not 100 sources' bursts.
        let (m, b) = spend(&mut g, 0, 0);
        assert!(m <= 300 && b <= 20_000, "{m} messages, {b} bytes");
        assert_eq!(b, 20_000, "what the total holds is given");
        assert_eq!(g.stats().total_limited, 98);
        // Half a second later, half a second of the total rate.
        let (m, b) = spend(&mut g, 500_000_000, 100);
        assert!(m <= 150 && b == 10_000, "{m} messages, {b} bytes");
        // A source's own limit still applies within the total.
        let src = Some(ip("10.9.9.9"));
        let t = g.admit(10_000_000_000, src).unwrap();
        assert_eq!(t.budget().bytes, 10_000);
        g.charge(t, &reply(1, 10_000, false));
        assert_eq!(g.admit(10_000_000_000, src), Err(Refusal::RateLimited));
        assert_eq!(g.stats().sources, 201);
        assert!(g.index_consistent());
    }

    #[test]
    fn the_index_finds_every_source_through_forgetting() {
        let limits = RequestLimits {
            messages_per_sec: 1000,
            bytes_per_sec: 1_000_000,
            burst_messages: 1000,
            burst_bytes: 1_000_000,
            max_sources: 64,
            ..RequestLimits::default()
        };
        let mut g =
            RequestGuard::new(&[prefix("0.0.0.0/0"), prefix("::/0")], 0, limits, 1000).unwrap();
        // Sources come and go (each spends a little, then refills within a
        // second): the index follows the table through every forgetting.
        let mut now = 0;
        for i in 0..5_000u32 {
            now += 20_000_000;
            let src = if i % 3 == 0 {
                IpAddr::V6((u128::from(i % 97) << 64).into())
            } else {
                IpAddr::V4((i % 211).into())
            };
            let t = g.admit(now, Some(src)).unwrap();
            g.charge(t, &reply(1, 1000, false));
            assert!(g.stats().sources <= 64);
        }
        assert_eq!(g.stats().sources, 64);
        assert_eq!(g.index.len(), 128);
        assert!(g.index_consistent());
        // A source still in the table is found, with what it spent.
        let last = Some(IpAddr::V4((4_999 % 211).into()));
        let t = g.admit(now, last).unwrap();
        assert_eq!(t.budget().messages, 999);
    }
}
