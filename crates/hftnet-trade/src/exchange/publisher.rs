//! The MoldUDP64 publisher: sequences messages, packs them into downstream
//! packets, keeps a bounded history, answers re-requests from it, and sends
//! heartbeats and the end of the session.
//!
//! Inputs, each taking `now`: [`Publisher::publish`] (one message),
//! [`Publisher::flush`] (send what is packed; call after each burst),
//! [`Publisher::handle_request`] (a request packet from a subscriber),
//! [`Publisher::handle_timeout`] at [`Publisher::poll_timeout`] (heartbeats,
//! and repeats of the end of session),
//! [`Publisher::end_session`]. Outputs: packets handed to the `out` callback,
//! downstream ones for the feeds, replies for the requester.
//!
//! Invariant: sequence numbers are given out consecutively from
//! `first_sequence`; every message stays answerable until `history`
//! messages more have been published, or until its bytes are needed again in
//! the `history_bytes` ring (never, for messages of up to
//! `(history_bytes - longest) / history` bytes). All buffers are allocated in
//! [`Publisher::new`]: publishing, flushing, heartbeats and answering
//! requests never allocate.

use core::fmt;
use std::collections::VecDeque;

use hftnet_wire::moldudp64::{
    BLOCK_HEADER_LEN, END_OF_SESSION, HEADER_LEN, Packet, PacketWriter, Request, RequestRepr,
    Session,
};

/// Most messages a [`PublisherConfig::history`] may keep: 8,388,608
/// (2^23), eight times the default. The exchange gives its ring 64 bytes a
/// message (512 MiB) and the index takes 8 more (64 MiB); a larger history
/// asks for gigabytes before the first packet (`--history 1000000000000`
/// aborted on a failed allocation of 32 GiB).
pub const MAX_HISTORY: usize = 1 << 23;

/// How a [`Publisher`] packs, remembers and paces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// The MoldUDP64 session.
    pub session: Session,
    /// Sequence number of the first message (MoldUDP64 sessions start at 1).
    pub first_sequence: u64,
    /// Largest downstream packet, header included: the UDP payload the path
    /// carries without fragmenting (1472 on a 1500-byte MTU). Default 1400.
    pub max_payload: usize,
    /// Most messages in one packet. Default 65534 (the format's limit).
    pub max_messages_per_packet: u16,
    /// Messages kept for re-requests. Default 1,048,576.
    pub history: usize,
    /// Bytes of the ring the history's messages are kept in, allocated and
    /// made resident (every page written) when the publisher is made, so
    /// that publishing takes no page fault.
    /// A message also leaves the history when its bytes are needed for a new
    /// one, so with `history` messages of up to `L` bytes, at least
    /// `history × L + L` bytes keep all of them. At least the longest message
    /// (`max_payload - 22`), at most `u32::MAX`. Default 64 MiB: 1,048,576
    /// ITCH 5.0 messages (at most 50 bytes each).
    pub history_bytes: usize,
    /// Heartbeat after this long without a packet. Default 1 s.
    pub heartbeat_interval_ns: u64,
    /// Most messages answered for one request. Default 1024.
    pub max_request_count: u16,
}

impl PublisherConfig {
    /// Defaults for `session`.
    #[must_use]
    pub fn new(session: Session) -> Self {
        Self {
            session,
            first_sequence: 1,
            max_payload: 1400,
            max_messages_per_packet: END_OF_SESSION - 1,
            history: 1 << 20,
            history_bytes: 64 << 20,
            heartbeat_interval_ns: 1_000_000_000,
            max_request_count: 1024,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// Names the first field out of range and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, why| Err(ConfigError { field, why });
        if self.first_sequence == 0 {
            return bad("first_sequence", "must be at least 1");
        }
        if !(HEADER_LEN + BLOCK_HEADER_LEN + 1..=65_507).contains(&self.max_payload) {
            return bad(
                "max_payload",
                "must leave room for one message (≥ 23 bytes) and fit a UDP datagram (≤ 65507)",
            );
        }
        if self.max_messages_per_packet == 0 || self.max_messages_per_packet == END_OF_SESSION {
            return bad("max_messages_per_packet", "must be between 1 and 65534");
        }
        if !(1..=MAX_HISTORY).contains(&self.history) {
            return bad(
                "history",
                "must keep at least one message and at most 8388608 (MAX_HISTORY)",
            );
        }
        if self.history_bytes < self.max_payload - HEADER_LEN - BLOCK_HEADER_LEN
            || u32::try_from(self.history_bytes).is_err()
        {
            return bad(
                "history_bytes",
                "must hold the longest message (max_payload - 22 bytes) and be at most 4 GiB",
            );
        }
        if self.heartbeat_interval_ns == 0 {
            return bad("heartbeat_interval_ns", "must be positive");
        }
        if self.max_request_count == 0 || self.max_request_count == END_OF_SESSION {
            return bad("max_request_count", "must be between 1 and 65534");
        }
        Ok(())
    }
}

/// A [`PublisherConfig`] field out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// The field.
    pub field: &'static str,
    /// What is allowed.
    pub why: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "publisher {}: {}", self.field, self.why)
    }
}

impl std::error::Error for ConfigError {}

/// Why a request was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Not a request packet.
    Malformed(hftnet_wire::Error),
    /// For another session.
    ForeignSession(Session),
    /// Asks for messages not published yet.
    Future {
        /// First sequence asked for.
        sequence: u64,
        /// Next sequence to be published.
        next: u64,
    },
    /// Asks for messages that left the history.
    Unavailable {
        /// First sequence asked for.
        sequence: u64,
        /// Oldest sequence still kept.
        oldest: u64,
    },
    /// The budget given does not pay for the first message asked for.
    OverBudget,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed request: {e}"),
            Self::ForeignSession(s) => write!(f, "request for another session {s:?}"),
            Self::Future { sequence, next } => write!(
                f,
                "request for sequence {sequence}, not published yet (next is {next})"
            ),
            Self::Unavailable { sequence, oldest } => write!(
                f,
                "request for sequence {sequence}, no longer in the history (oldest kept is {oldest})"
            ),
            Self::OverBudget => f.write_str("request over the requester's budget"),
        }
    }
}

impl std::error::Error for RequestError {}

/// The most one answer to a request may send: the requester's share of
/// the re-request server (see [`super::RequestGuard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyBudget {
    /// Messages.
    pub messages: u64,
    /// Bytes of reply packets (UDP payload, headers included).
    pub bytes: u64,
}

impl ReplyBudget {
    /// No limit beyond the publisher's own `max_request_count`.
    pub const UNLIMITED: Self = Self {
        messages: u64::MAX,
        bytes: u64::MAX,
    };
}

/// What an answer to a request sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reply {
    /// Messages sent.
    pub messages: u64,
    /// Packets sent.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Whether the budget stopped the answer before everything the request
    /// could have had (its count, clipped at `max_request_count` and at the
    /// last message published).
    pub cut: bool,
}

/// Why a message was not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The message cannot fit a packet of `max_payload` bytes.
    TooLarge {
        /// The message length.
        len: usize,
        /// The most that fits.
        max: usize,
    },
    /// The session has ended.
    Ended,
    /// The session used up its sequence numbers (the next would be
    /// `u64::MAX`, which no message gets: `next_sequence` must stay
    /// representable).
    SequenceExhausted,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "message of {len} bytes does not fit a packet (at most {max}); raise max_payload"
            ),
            Self::Ended => f.write_str("the session has ended"),
            Self::SequenceExhausted => f.write_str(
                "the session's sequence numbers are used up (the next would be 2^64 - 1); \
                 start a new session with a lower first sequence",
            ),
        }
    }
}

impl std::error::Error for PublishError {}

/// What a [`Publisher`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublisherStats {
    /// Downstream packets with messages.
    pub packets: u64,
    /// Messages published.
    pub messages: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Requests answered.
    pub requests: u64,
    /// Requests refused (malformed, foreign, future, unavailable, over
    /// budget).
    pub bad_requests: u64,
    /// Packets sent in reply to requests.
    pub retransmit_packets: u64,
    /// Messages sent again in reply to requests.
    pub retransmitted: u64,
}

/// Sequences, packs and remembers messages; see the module doc.
#[derive(Debug)]
pub struct Publisher {
    cfg: PublisherConfig,
    /// The packet being filled.
    buf: Vec<u8>,
    len: usize,
    count: u16,
    /// Scratch for replies and heartbeats.
    reply: Vec<u8>,
    next_seq: u64,
    /// The bytes of the messages kept, written in order around the ring.
    arena: Box<[u8]>,
    /// Where the next message's bytes go in `arena`.
    arena_head: usize,
    /// (offset in `arena`, length) of messages `history_first ..`, in order.
    history: VecDeque<(u32, u16)>,
    history_first: u64,
    last_send_ns: Option<u64>,
    ended: bool,
    stats: PublisherStats,
}

impl Publisher {
    /// A publisher whose first message gets `cfg.first_sequence`.
    ///
    /// # Errors
    /// When the configuration is invalid.
    pub fn new(cfg: PublisherConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            buf: vec![0; cfg.max_payload],
            len: HEADER_LEN,
            count: 0,
            reply: vec![0; cfg.max_payload],
            next_seq: cfg.first_sequence,
            // Resident now: its first writes would fault on the publishing
            // path (~5% of an exchange publishing flat out: one fault per
            // 4 KiB of messages until the ring wraps).
            arena: crate::mem::resident_vec(0u8, cfg.history_bytes).into_boxed_slice(),
            arena_head: 0,
            // Every message takes at least one byte of the ring, so this
            // capacity is never exceeded.
            history: VecDeque::with_capacity(cfg.history.min(cfg.history_bytes)),
            history_first: cfg.first_sequence,
            last_send_ns: None,
            ended: false,
            stats: PublisherStats::default(),
            cfg,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &PublisherConfig {
        &self.cfg
    }

    /// The sequence number the next message gets.
    #[must_use]
    pub fn next_sequence(&self) -> u64 {
        self.next_seq
    }

    /// What was done so far.
    #[must_use]
    pub fn stats(&self) -> PublisherStats {
        self.stats
    }

    /// True once [`Publisher::end_session`] was called.
    #[must_use]
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The largest message that fits a packet.
    #[must_use]
    pub fn max_message_len(&self) -> usize {
        self.cfg.max_payload - HEADER_LEN - BLOCK_HEADER_LEN
    }

    /// Adds one message to the packet being filled, sending that packet
    /// first when the message does not fit. Returns its sequence number.
    ///
    /// # Errors
    /// [`PublishError::TooLarge`] for a message no packet can hold,
    /// [`PublishError::Ended`] after the end of the session,
    /// [`PublishError::SequenceExhausted`] when no sequence number is left.
    pub fn publish(
        &mut self,
        now_ns: u64,
        msg: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<u64, PublishError> {
        if self.ended {
            return Err(PublishError::Ended);
        }
        if self.next_seq == u64::MAX {
            return Err(PublishError::SequenceExhausted);
        }
        let max = self.max_message_len();
        if msg.len() > max {
            return Err(PublishError::TooLarge {
                len: msg.len(),
                max,
            });
        }
        if self.len + BLOCK_HEADER_LEN + msg.len() > self.buf.len()
            || self.count == self.cfg.max_messages_per_packet
        {
            self.flush(now_ns, out);
        }
        let at = self.len;
        let len = msg.len() as u16; // ≤ max_payload ≤ 65507
        self.buf[at..at + BLOCK_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        self.buf[at + BLOCK_HEADER_LEN..at + BLOCK_HEADER_LEN + msg.len()].copy_from_slice(msg);
        self.len += BLOCK_HEADER_LEN + msg.len();
        self.count += 1;
        self.remember(msg);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.stats.messages += 1;
        Ok(seq)
    }

    /// Keeps `msg` in the history, evicting the oldest messages as the count
    /// or the ring's bytes require. Messages are laid out in publication order
    /// around the ring, so the ones in the way of a new message are always the
    /// oldest: the front of `history`.
    fn remember(&mut self, msg: &[u8]) {
        if self.history.len() == self.cfg.history {
            self.forget_oldest();
        }
        // An empty message still takes one byte, so that every message has a
        // place in the ring that the overlap test below can see.
        let need = msg.len().max(1);
        let mut at = self.arena_head;
        if at + need > self.arena.len() {
            // Too little room before the end: skip it. The messages stored
            // there are older than everything at the start of the ring.
            while self
                .history
                .front()
                .is_some_and(|&(off, _)| off as usize >= at)
            {
                self.forget_oldest();
            }
            at = 0;
        }
        while self.history.front().is_some_and(|&(off, len)| {
            let (off, len) = (off as usize, usize::from(len).max(1));
            off < at + need && off + len > at
        }) {
            self.forget_oldest();
        }
        // `need` ≤ the longest message ≤ the ring (validated), and offsets fit
        // u32 (validated), lengths u16 (≤ max_payload ≤ 65507).
        self.arena[at..at + msg.len()].copy_from_slice(msg);
        self.history.push_back((at as u32, msg.len() as u16));
        self.arena_head = at + need;
    }

    fn forget_oldest(&mut self) {
        if self.history.pop_front().is_some() {
            self.history_first += 1;
        }
    }

    /// Sends the packet being filled, if it holds any message.
    pub fn flush(&mut self, now_ns: u64, out: &mut impl FnMut(&[u8])) {
        if self.count == 0 {
            return;
        }
        let first = self.next_seq - u64::from(self.count);
        let mut p = Packet::new_unchecked(&mut self.buf[..]);
        p.set_session(self.cfg.session);
        p.set_sequence(first);
        p.set_count_field(self.count);
        out(&self.buf[..self.len]);
        self.len = HEADER_LEN;
        self.count = 0;
        self.stats.packets += 1;
        self.last_send_ns = Some(now_ns);
    }

    /// When [`Publisher::handle_timeout`] wants to be called: a heartbeat,
    /// or after the end of the session a repeat of the end-of-session packet,
    /// is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        Some(
            self.last_send_ns
                .map_or(0, |t| t.saturating_add(self.cfg.heartbeat_interval_ns)),
        )
    }

    /// Sends what is pending, or a heartbeat when nothing was sent for the
    /// heartbeat interval. After the end of the session it repeats the
    /// end-of-session packet instead, at the same interval, so that a
    /// subscriber that lost it (or joined late) still learns of the end.
    pub fn handle_timeout(&mut self, now_ns: u64, out: &mut impl FnMut(&[u8])) {
        if self.ended {
            if self.poll_timeout().is_some_and(|t| now_ns >= t) {
                self.send_empty(END_OF_SESSION, out);
                self.last_send_ns = Some(now_ns);
            }
            return;
        }
        if self.count > 0 {
            self.flush(now_ns, out);
        } else if self.poll_timeout().is_some_and(|t| now_ns >= t) {
            self.send_empty(0, out);
            self.stats.heartbeats += 1;
            self.last_send_ns = Some(now_ns);
        }
    }

    /// Sends what is pending and the end-of-session packet. Requests are
    /// still answered afterwards; further messages are refused.
    pub fn end_session(&mut self, now_ns: u64, out: &mut impl FnMut(&[u8])) {
        if self.ended {
            return;
        }
        self.flush(now_ns, out);
        self.send_empty(END_OF_SESSION, out);
        self.ended = true;
        self.last_send_ns = Some(now_ns);
    }

    fn send_empty(&mut self, count: u16, out: &mut impl FnMut(&[u8])) {
        let mut p = Packet::new_unchecked(&mut self.reply[..HEADER_LEN]);
        p.set_session(self.cfg.session);
        p.set_sequence(self.next_seq);
        p.set_count_field(count);
        out(&self.reply[..HEADER_LEN]);
    }

    /// Answers one request packet with downstream packets holding the
    /// messages asked for (at most `max_request_count`, and none past the
    /// last published). Returns how many messages were sent.
    ///
    /// This answers anyone without limit: a server facing a network answers
    /// through [`Publisher::answer_request`] with the budget of a
    /// [`super::RequestGuard`].
    ///
    /// # Errors
    /// A [`RequestError`] naming why nothing was sent.
    pub fn handle_request(
        &mut self,
        now_ns: u64,
        bytes: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<u64, RequestError> {
        self.answer_request(now_ns, bytes, ReplyBudget::UNLIMITED, out)
            .map(|r| r.messages)
    }

    /// Answers one request packet like [`Publisher::handle_request`], sending
    /// no more than `budget`: the answer stops at the last whole message the
    /// budget pays for (the requester asks again for the rest).
    ///
    /// # Errors
    /// A [`RequestError`] naming why nothing was sent;
    /// [`RequestError::OverBudget`] when the budget does not pay for the
    /// first message.
    pub fn answer_request(
        &mut self,
        _now_ns: u64,
        bytes: &[u8],
        budget: ReplyBudget,
        out: &mut impl FnMut(&[u8]),
    ) -> Result<Reply, RequestError> {
        let r = self.check_request(bytes).inspect_err(|_| {
            self.stats.bad_requests += 1;
        })?;
        let want =
            u64::from(r.count.min(self.cfg.max_request_count)).min(self.next_seq - r.sequence);
        let end = r.sequence + want.min(budget.messages);
        let mut reply = Reply::default();
        let mut seq = r.sequence;
        let mut index = (r.sequence - self.history_first) as usize;
        while seq < end {
            // The packet may use what is left of the byte budget, up to a
            // full payload.
            let room = usize::try_from(budget.bytes - reply.bytes)
                .unwrap_or(usize::MAX)
                .min(self.reply.len());
            let Ok(mut w) = PacketWriter::new(&mut self.reply[..room], self.cfg.session, seq)
            else {
                break;
            };
            while seq < end && w.count() < self.cfg.max_messages_per_packet {
                let (off, len) = self.history[index];
                let msg = &self.arena[off as usize..off as usize + usize::from(len)];
                if w.push(msg).is_err() {
                    break;
                }
                seq += 1;
                index += 1;
            }
            if w.count() == 0 {
                // Not even one more message fits what is left.
                break;
            }
            let n = w.finish();
            out(&self.reply[..n]);
            reply.packets += 1;
            reply.bytes += n as u64;
        }
        reply.messages = seq - r.sequence;
        reply.cut = reply.messages < want;
        if reply.messages == 0 {
            self.stats.bad_requests += 1;
            return Err(RequestError::OverBudget);
        }
        self.stats.retransmit_packets += reply.packets;
        self.stats.requests += 1;
        self.stats.retransmitted += reply.messages;
        Ok(reply)
    }

    fn check_request(&self, bytes: &[u8]) -> Result<RequestRepr, RequestError> {
        let p = Request::new_checked(bytes).map_err(RequestError::Malformed)?;
        let r = RequestRepr::parse(&p).map_err(RequestError::Malformed)?;
        if r.session != self.cfg.session {
            return Err(RequestError::ForeignSession(r.session));
        }
        if r.sequence >= self.next_seq || r.sequence == 0 {
            return Err(RequestError::Future {
                sequence: r.sequence,
                next: self.next_seq,
            });
        }
        if r.sequence < self.history_first {
            return Err(RequestError::Unavailable {
                sequence: r.sequence,
                oldest: self.history_first,
            });
        }
        Ok(r)
    }
}

/// Builds a request packet for `count` messages of `session` from
/// `sequence` on, into `buf` (at least [`HEADER_LEN`] bytes);
/// returns its length.
///
/// # Panics
/// When `buf` is shorter than a request.
pub fn write_request(buf: &mut [u8], session: Session, sequence: u64, count: u16) -> usize {
    let r = RequestRepr {
        session,
        sequence,
        count,
    };
    r.emit(&mut Request::new_unchecked(&mut buf[..HEADER_LEN]));
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use hftnet_wire::moldudp64::Kind;

    use super::*;

    fn session() -> Session {
        Session::new("TEST").unwrap()
    }

    fn cfg() -> PublisherConfig {
        PublisherConfig {
            max_payload: HEADER_LEN + 3 * (BLOCK_HEADER_LEN + 4),
            history: 10,
            ..PublisherConfig::new(session())
        }
    }

    /// (sequence, kind, messages) of each packet.
    fn decode(packets: &[Vec<u8>]) -> Vec<(u64, Kind, Vec<Vec<u8>>)> {
        packets
            .iter()
            .map(|b| {
                let p = Packet::new_checked(&b[..]).unwrap();
                assert_eq!(p.session(), session());
                (
                    p.sequence(),
                    p.kind(),
                    p.messages().map(<[u8]>::to_vec).collect(),
                )
            })
            .collect()
    }

    fn msg(i: u32) -> [u8; 4] {
        i.to_be_bytes()
    }

    #[test]
    fn packs_sequences_and_flushes() {
        let mut p = Publisher::new(cfg()).unwrap();
        let mut sent = Vec::new();
        let mut out = |b: &[u8]| sent.push(b.to_vec());
        for i in 1..=7 {
            assert_eq!(p.publish(0, &msg(i), &mut out).unwrap(), u64::from(i));
        }
        p.flush(0, &mut out);
        p.flush(0, &mut out); // nothing pending: no packet
        let d = decode(&sent);
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].0, d[0].1), (1, Kind::Messages(3)));
        assert_eq!((d[1].0, d[1].1), (4, Kind::Messages(3)));
        assert_eq!((d[2].0, d[2].1), (7, Kind::Messages(1)));
        let all: Vec<Vec<u8>> = d.into_iter().flat_map(|x| x.2).collect();
        assert_eq!(all, (1..=7).map(|i| msg(i).to_vec()).collect::<Vec<_>>());
        assert_eq!(p.stats().packets, 3);
        assert_eq!(p.stats().messages, 7);
    }

    #[test]
    fn heartbeats_when_idle_and_end_of_session() {
        let mut p = Publisher::new(PublisherConfig {
            heartbeat_interval_ns: 100,
            ..cfg()
        })
        .unwrap();
        let mut sent = Vec::new();
        let mut out = |b: &[u8]| sent.push(b.to_vec());
        assert_eq!(p.poll_timeout(), Some(0));
        p.handle_timeout(0, &mut out); // nothing sent yet: heartbeat at once
        p.publish(10, &msg(1), &mut out).unwrap();
        p.handle_timeout(10, &mut out); // flushes the pending message
        assert_eq!(p.poll_timeout(), Some(110));
        p.handle_timeout(50, &mut out); // not due
        p.handle_timeout(110, &mut out);
        p.end_session(120, &mut out);
        p.end_session(130, &mut out); // once only
        assert_eq!(p.publish(140, &msg(2), &mut out), Err(PublishError::Ended));
        assert_eq!(p.poll_timeout(), Some(220));
        p.handle_timeout(200, &mut out); // not due
        p.handle_timeout(220, &mut out); // repeated
        let d: Vec<(u64, Kind)> = decode(&sent).into_iter().map(|x| (x.0, x.1)).collect();
        assert_eq!(
            d,
            vec![
                (1, Kind::Heartbeat),
                (1, Kind::Messages(1)),
                (2, Kind::Heartbeat),
                (2, Kind::EndOfSession),
                (2, Kind::EndOfSession)
            ]
        );
        assert_eq!(p.stats().heartbeats, 2);
    }

    #[test]
    fn answers_requests_from_history() {
        let mut p = Publisher::new(cfg()).unwrap();
        let mut sink = |_: &[u8]| {};
        for i in 1..=15 {
            p.publish(0, &msg(i), &mut sink).unwrap();
        }
        // History holds 6..=15.
        let mut req = [0u8; HEADER_LEN];
        let mut replies = Vec::new();
        write_request(&mut req, session(), 8, 5);
        assert_eq!(
            p.handle_request(0, &req, &mut |b: &[u8]| replies.push(b.to_vec())),
            Ok(5)
        );
        let d = decode(&replies);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0, 8);
        assert_eq!(d[1].0, 11);
        let got: Vec<Vec<u8>> = d.into_iter().flat_map(|x| x.2).collect();
        assert_eq!(got, (8..=12).map(|i| msg(i).to_vec()).collect::<Vec<_>>());

        // Clipped at the last published message.
        write_request(&mut req, session(), 14, 100);
        assert_eq!(p.handle_request(0, &req, &mut |_: &[u8]| {}), Ok(2));

        // Refusals, each named.
        write_request(&mut req, session(), 5, 1);
        assert_eq!(
            p.handle_request(0, &req, &mut |_: &[u8]| panic!("no reply")),
            Err(RequestError::Unavailable {
                sequence: 5,
                oldest: 6
            })
        );
        write_request(&mut req, session(), 16, 1);
        assert!(matches!(
            p.handle_request(0, &req, &mut |_: &[u8]| {}),
            Err(RequestError::Future { next: 16, .. })
        ));
        write_request(&mut req, Session::new("OTHER").unwrap(), 8, 1);
        assert!(matches!(
            p.handle_request(0, &req, &mut |_: &[u8]| {}),
            Err(RequestError::ForeignSession(_))
        ));
        assert!(matches!(
            p.handle_request(0, &req[..10], &mut |_: &[u8]| {}),
            Err(RequestError::Malformed(hftnet_wire::Error::Truncated))
        ));
        write_request(&mut req, session(), 8, 0);
        assert!(matches!(
            p.handle_request(0, &req, &mut |_: &[u8]| {}),
            Err(RequestError::Malformed(hftnet_wire::Error::Malformed))
        ));
        let st = p.stats();
        assert_eq!((st.requests, st.bad_requests, st.retransmitted), (2, 5, 7));
        assert!(
            RequestError::Unavailable {
                sequence: 5,
                oldest: 6
            }
            .to_string()
            .contains("no longer in the history")
        );
    }

    #[test]
    fn an_answer_stops_at_its_budget() {
        // Packets of up to 3 four-byte messages: 20 + 3 × 6 = 38 bytes.
        let mut p = Publisher::new(cfg()).unwrap();
        for i in 1..=10 {
            p.publish(0, &msg(i), &mut |_: &[u8]| {}).unwrap();
        }
        let mut req = [0u8; HEADER_LEN];
        write_request(&mut req, session(), 1, 10);
        let answer = |p: &mut Publisher, budget| {
            let mut got = Vec::new();
            let r = p.answer_request(0, &req, budget, &mut |b: &[u8]| got.push(b.to_vec()));
            (r, decode(&got))
        };
        // Unlimited: all 10, in 4 packets.
        let (r, d) = answer(&mut p, ReplyBudget::UNLIMITED);
        let r = r.unwrap();
        assert_eq!(
            (r.messages, r.packets, r.bytes, r.cut),
            (10, 4, 3 * 38 + 26, false)
        );
        assert_eq!(d.len(), 4);
        // Four messages: a full packet and one of one message.
        let (r, d) = answer(
            &mut p,
            ReplyBudget {
                messages: 4,
                bytes: u64::MAX,
            },
        );
        let r = r.unwrap();
        assert_eq!(
            (r.messages, r.packets, r.bytes, r.cut),
            (4, 2, 38 + 26, true)
        );
        let got: Vec<Vec<u8>> = d.into_iter().flat_map(|x| x.2).collect();
        assert_eq!(got, (1..=4).map(|i| msg(i).to_vec()).collect::<Vec<_>>());
        // 70 bytes: one full packet (38), then 32 bytes hold 2 messages.
        let (r, d) = answer(
            &mut p,
            ReplyBudget {
                messages: 100,
                bytes: 70,
            },
        );
        let r = r.unwrap();
        assert_eq!((r.messages, r.packets, r.bytes, r.cut), (5, 2, 70, true));
        assert_eq!((d[1].0, d[1].2.len()), (4, 2));
        // Not one message: refused, nothing sent.
        let (r, d) = answer(
            &mut p,
            ReplyBudget {
                messages: 100,
                bytes: 25,
            },
        );
        assert_eq!(r, Err(RequestError::OverBudget));
        assert!(d.is_empty());
        let (r, _) = answer(
            &mut p,
            ReplyBudget {
                messages: 0,
                bytes: 1000,
            },
        );
        assert_eq!(r, Err(RequestError::OverBudget));
        let st = p.stats();
        assert_eq!((st.requests, st.bad_requests, st.retransmitted), (3, 2, 19));
        assert_eq!(st.retransmit_packets, 8);
    }

    /// Publishes `n` messages of random lengths (0 to `max_len` bytes) and
    /// checks every message the history still claims is answered with its
    /// exact bytes, and that none is evicted earlier than the byte budget
    /// forces. Returns how many the history held at the end.
    fn ring_round(history: usize, history_bytes: usize, max_len: usize, n: u32, seed: u64) -> u64 {
        let mut p = Publisher::new(PublisherConfig {
            max_payload: 200,
            history,
            history_bytes,
            ..PublisherConfig::new(session())
        })
        .unwrap();
        let mut rng = crate::rng::Rng::new(seed);
        let mut all: Vec<Vec<u8>> = Vec::new();
        let mut req = [0u8; HEADER_LEN];
        for i in 0..n {
            let len = rng.range(0, max_len as u64) as usize;
            let m: Vec<u8> = (0..len).map(|k| (i as usize * 31 + k) as u8).collect();
            p.publish(0, &m, &mut |_: &[u8]| {}).unwrap();
            all.push(m);
            if i % 7 == 0 || i + 1 == n {
                let oldest = p.history_first;
                let kept = p.next_sequence() - oldest;
                assert!(kept >= 1 && kept <= history as u64);
                // Everything kept is intact, byte for byte. (Read from the
                // ring: answering requests is tested above, and the packet
                // writer of the wire crate cannot take an empty message into
                // a packet with less than 2 bytes left.)
                for (k, &(off, len)) in p.history.iter().enumerate() {
                    let kept = &p.arena[off as usize..off as usize + usize::from(len)];
                    assert_eq!(
                        kept,
                        &all[(oldest - 1) as usize + k][..],
                        "seed {seed} after {i}: message {}",
                        oldest + k as u64
                    );
                }
                // And answered when asked for, for the non-empty ones.
                let last = p.next_sequence() - 1;
                if !all[(last - 1) as usize].is_empty() {
                    write_request(&mut req, session(), last, 1);
                    let mut got = Vec::new();
                    p.handle_request(0, &req, &mut |b: &[u8]| got.push(b.to_vec()))
                        .unwrap();
                    assert_eq!(decode(&got)[0].2, vec![all[(last - 1) as usize].clone()]);
                }
                // Evicted only when the count or the bytes require it: the
                // message before the oldest would not have fitted as well.
                if oldest > 1 && kept < history as u64 {
                    let span: usize = all[(oldest - 2) as usize..]
                        .iter()
                        .map(|m| m.len().max(1))
                        .sum();
                    assert!(
                        span + max_len > history_bytes,
                        "seed {seed}: evicted with {span} bytes kept of {history_bytes}"
                    );
                }
            }
        }
        p.next_sequence() - p.history_first
    }

    #[test]
    fn history_ring_keeps_exact_bytes_and_evicts_only_when_needed() {
        for seed in 1..=20 {
            // Bytes bind: few long messages.
            ring_round(1000, 500, 120, 400, seed);
            // Count binds: the ring has room for more.
            assert_eq!(ring_round(10, 5000, 120, 300, seed), 10);
            // Empty and one-byte messages, a ring just larger than one message.
            ring_round(50, 178, 2, 300, seed);
            ring_round(50, 178, 178, 300, seed);
        }
        // Room for history × L + L bytes keeps exactly `history` messages of
        // up to L bytes: the default 64 MiB keeps 1,048,576 ITCH messages.
        assert_eq!(ring_round(100, 100 * 50 + 50, 50, 5000, 9), 100);
    }

    #[test]
    fn sequence_numbers_run_out_with_an_error() {
        // A first sequence near the top used to overflow `next_seq` (a
        // panic in debug builds, sequence 0 after u64::MAX in release).
        let mut p = Publisher::new(PublisherConfig {
            first_sequence: u64::MAX - 2,
            ..cfg()
        })
        .unwrap();
        let mut out = Vec::new();
        assert_eq!(
            p.publish(0, &msg(1), &mut |b| out.push(b.to_vec())),
            Ok(u64::MAX - 2)
        );
        assert_eq!(
            p.publish(0, &msg(2), &mut |b| out.push(b.to_vec())),
            Ok(u64::MAX - 1)
        );
        let e = p.publish(0, &msg(3), &mut |b| out.push(b.to_vec()));
        assert_eq!(e, Err(PublishError::SequenceExhausted));
        assert!(e.unwrap_err().to_string().contains("new session"));
        assert_eq!(p.next_sequence(), u64::MAX);
        // What was published is still sent and answered.
        p.end_session(1, &mut |b| out.push(b.to_vec()));
        let d = decode(&out);
        assert_eq!(
            d[0],
            (
                u64::MAX - 2,
                Kind::Messages(2),
                vec![msg(1).to_vec(), msg(2).to_vec()]
            )
        );
        assert_eq!((d[1].0, d[1].1), (u64::MAX, Kind::EndOfSession));
        let mut req = [0u8; HEADER_LEN];
        write_request(&mut req, session(), u64::MAX - 1, 5);
        out.clear();
        assert_eq!(
            p.handle_request(2, &req, &mut |b| out.push(b.to_vec())),
            Ok(1)
        );
        assert_eq!(decode(&out)[0].2, vec![msg(2).to_vec()]);
    }

    #[test]
    fn history_is_bounded_before_anything_is_allocated() {
        for history in [MAX_HISTORY + 1, usize::MAX] {
            let e = PublisherConfig { history, ..cfg() }.validate().unwrap_err();
            assert_eq!(e.field, "history");
            assert!(e.why.contains(&MAX_HISTORY.to_string()), "{e}");
        }
        let e = PublisherConfig {
            history: 0,
            ..cfg()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "history");
        assert!(
            PublisherConfig {
                history: MAX_HISTORY,
                ..cfg()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn bad_config_and_oversized_messages() {
        let e = Publisher::new(PublisherConfig {
            max_payload: 10,
            ..cfg()
        })
        .unwrap_err();
        assert_eq!(e.field, "max_payload");
        assert!(
            Publisher::new(PublisherConfig {
                first_sequence: 0,
                ..cfg()
            })
            .is_err()
        );
        let e = Publisher::new(PublisherConfig {
            history_bytes: 15,
            ..cfg()
        })
        .unwrap_err();
        assert_eq!(e.field, "history_bytes");
        assert!(
            Publisher::new(PublisherConfig {
                history_bytes: 16,
                ..cfg()
            })
            .is_ok()
        );
        let mut p = Publisher::new(cfg()).unwrap();
        assert_eq!(
            p.publish(0, &[0; 100], &mut |_: &[u8]| {}),
            Err(PublishError::TooLarge { len: 100, max: 16 })
        );
    }
}
