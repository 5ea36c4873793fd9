//! The MoldUDP64 publisher and its re-request server driven by arbitrary
//! events: messages published, flushes, timeouts, the end of the session,
//! and requests — raw bytes, or requests built from a compact description
//! (our session or another, a sequence around what was published, any
//! count) so the fuzzer reaches the history's edges. Nothing panics, and:
//! - every downstream packet is a well-formed packet of our session, no
//!   longer than `max_payload`, and the messages of all of them are the
//!   published ones, in order, each once;
//! - a request is answered with packets holding exactly the messages asked
//!   for, as published, from the sequence asked, no more than asked, than
//!   `max_request_count` or than what was published; the return value and
//!   the counters say how many;
//! - a refused request sends nothing, says why truthfully (malformed,
//!   another session, not published yet, no longer kept), and is counted;
//! - a message is "no longer kept" only when it is before the first one,
//!   when `history` messages were published after it, or when a message
//!   longer than the configuration promises to keep may have pushed it out
//!   of the byte ring;
//! - requests from a source go through the re-request guard first: a
//!   source outside the allow list is refused and nothing is sent; an
//!   admitted answer stays within its ticket's budget; the table of sources
//!   never holds more than its limit; and what one source is sent never
//!   exceeds its bucket (burst plus refill since it was first seen), in
//!   messages and in bytes; nor does what all sources together are sent
//!   exceed the total bucket (one second of the total rate, at least one
//!   source's burst, plus refill since the start).
#![no_main]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use hftnet_trade::exchange::{
    Publisher, PublisherConfig, Refusal, ReplyBudget, RequestError, RequestGuard, RequestLimits,
    SourcePrefix,
};
use hftnet_wire::moldudp64::{
    BLOCK_HEADER_LEN, HEADER_LEN, Kind, Packet, Request, RequestRepr, Session,
};
use libfuzzer_sys::fuzz_target;

const OURS: Session = Session(*b"FUZZ      ");
const OTHER: Session = Session(*b"OTHER     ");

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// What the publisher was given, to check what it sends against.
struct Model {
    first: u64,
    published: Vec<Vec<u8>>,
    /// The next sequence expected on the downstream packets.
    downstream_next: u64,
    longest: usize,
}

impl Model {
    fn message(&self, seq: u64) -> &[u8] {
        &self.published[usize::try_from(seq - self.first).expect("small")]
    }

    /// Downstream packets: messages in order, each once; heartbeats and
    /// ends of session carry the next sequence.
    fn downstream(&mut self, cfg: &PublisherConfig, p: &[u8]) {
        assert!(p.len() <= cfg.max_payload);
        let p = Packet::new_checked(p).expect("a well-formed packet");
        assert_eq!(p.session(), OURS);
        assert_eq!(p.sequence(), self.downstream_next);
        match p.kind() {
            Kind::Messages(n) => {
                assert!(n <= cfg.max_messages_per_packet);
                for m in p.messages() {
                    assert_eq!(m, self.message(self.downstream_next));
                    self.downstream_next += 1;
                }
            }
            Kind::Heartbeat | Kind::EndOfSession => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (Some(b0), Some(b1), Some(b2), Some(b3)) =
        (input.byte(), input.byte(), input.byte(), input.byte())
    else {
        return;
    };
    let max_payload = HEADER_LEN + BLOCK_HEADER_LEN + 1 + usize::from(b0 % 64);
    let longest = max_payload - HEADER_LEN - BLOCK_HEADER_LEN;
    let cfg = PublisherConfig {
        first_sequence: match b1 % 4 {
            0 | 1 => 1,
            2 => 1 << 40,
            _ => u64::MAX - 300,
        },
        max_payload,
        max_messages_per_packet: 1 + u16::from(b1 >> 5),
        history: 1 + usize::from(b2 % 32),
        history_bytes: longest + usize::from(b3) * 4,
        heartbeat_interval_ns: 1_000,
        max_request_count: 1 + u16::from(b2 >> 5) * 3,
        ..PublisherConfig::new(OURS)
    };
    let mut publ = Publisher::new(cfg.clone()).expect("valid config");
    let mut model = Model {
        first: cfg.first_sequence,
        published: Vec::new(),
        downstream_next: cfg.first_sequence,
        longest: 0,
    };
    // Messages up to this length are kept until `history` newer ones came.
    let kept_len = (cfg.history_bytes - longest) / cfg.history;
    let limits = RequestLimits {
        messages_per_sec: 1 + u64::from(b3 % 16) * 1_000,
        bytes_per_sec: 1 + u64::from(b3 >> 4) * 50_000,
        burst_messages: 1 + u64::from(b2 % 8),
        burst_bytes: max_payload as u64 + u64::from(b0 >> 6) * 100,
        max_sources: 1 + usize::from(b1 % 3),
        total_messages_per_sec: 1 + u64::from((b1 >> 2) & 7) * 2_000,
        total_bytes_per_sec: 1 + u64::from(b1 >> 5) * 100_000,
    };
    // 198.18.0.0/30 may ask; 198.18.0.4 and up may not.
    let allowed = SourcePrefix::new(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)), 30).unwrap();
    let mut guard = Guarded {
        guard: RequestGuard::new(&[allowed], 0, limits, max_payload).expect("valid limits"),
        limits,
        sent: HashMap::new(),
        total: (0, 0),
    };
    let mut now = 0u64;
    let mut events = 0;
    let mut out: Vec<Vec<u8>> = Vec::new();

    while let Some(op) = input.byte() {
        events += 1;
        if events > 1_000 {
            break;
        }
        now += u64::from(op >> 5) * 400;
        out.clear();
        match op % 8 {
            0 | 1 => {
                let len = usize::from(input.byte().unwrap_or(0)) % (longest + 2);
                let msg = input.take(len).to_vec();
                let before = publ.next_sequence();
                match publ.publish(now, &msg, &mut |p| out.push(p.to_vec())) {
                    Ok(seq) => {
                        assert_eq!(seq, before);
                        assert_eq!(seq, model.first + model.published.len() as u64);
                        // Even an empty message takes a byte of the ring.
                        model.longest = model.longest.max(msg.len().max(1));
                        model.published.push(msg);
                    }
                    Err(_) => {
                        assert!(
                            msg.len() > longest || publ.ended() || before == u64::MAX,
                            "refused {} bytes at {before}",
                            msg.len()
                        );
                        assert_eq!(publ.next_sequence(), before);
                    }
                }
            }
            2 => publ.flush(now, &mut |p| out.push(p.to_vec())),
            3 => {
                if publ.poll_timeout().is_some_and(|t| t <= now) {
                    publ.handle_timeout(now, &mut |p| out.push(p.to_vec()));
                }
            }
            4 => publ.end_session(now, &mut |p| out.push(p.to_vec())),
            5 => {
                // A raw request.
                let len = usize::from(input.byte().unwrap_or(0) % 24);
                let bytes = input.take(len).to_vec();
                request(
                    &mut publ,
                    &model,
                    kept_len,
                    now,
                    &bytes,
                    ReplyBudget::UNLIMITED,
                );
                continue;
            }
            _ => {
                // A request built from [session, offset from next (i8), count].
                let (Some(s), Some(off), Some(c)) = (input.byte(), input.byte(), input.byte())
                else {
                    break;
                };
                let seq = publ
                    .next_sequence()
                    .wrapping_add_signed(i64::from(off as i8));
                let r = RequestRepr {
                    session: if s & 1 == 0 { OURS } else { OTHER },
                    sequence: if s & 2 == 0 { seq } else { 0 },
                    count: if s & 4 == 0 {
                        u16::from(c)
                    } else {
                        u16::MAX - u16::from(c)
                    },
                };
                let mut bytes = [0u8; HEADER_LEN];
                r.emit(&mut Request::new_unchecked(&mut bytes[..]));
                if op & 0x10 == 0 {
                    request(
                        &mut publ,
                        &model,
                        kept_len,
                        now,
                        &bytes,
                        ReplyBudget::UNLIMITED,
                    );
                } else {
                    let source = match input.byte().unwrap_or(0) % 8 {
                        7 => None,
                        n => Some(IpAddr::V4(Ipv4Addr::new(198, 18, 0, n))),
                    };
                    guard.request(&mut publ, &model, kept_len, now, &bytes, source);
                }
                continue;
            }
        }
        for p in &out {
            model.downstream(&cfg, p);
        }
    }
    // Everything published went out once the session ends.
    out.clear();
    publ.end_session(now, &mut |p| out.push(p.to_vec()));
    for p in &out {
        model.downstream(&cfg, p);
    }
    assert_eq!(model.downstream_next, publ.next_sequence());
    assert_eq!(publ.stats().messages, model.published.len() as u64);
});

/// The guard, its limits, what each source was sent: (first seen,
/// messages, bytes), and what all were sent: (messages, bytes).
struct Guarded {
    guard: RequestGuard,
    limits: RequestLimits,
    sent: HashMap<Option<IpAddr>, (u64, u64, u64)>,
    total: (u64, u64),
}

impl Guarded {
    fn request(
        &mut self,
        publ: &mut Publisher,
        model: &Model,
        kept_len: usize,
        now: u64,
        bytes: &[u8],
        source: Option<IpAddr>,
    ) {
        let before = self.guard.stats();
        let publ_before = publ.stats();
        let allowed = source.is_none_or(|ip| matches!(ip, IpAddr::V4(v) if v.octets()[3] < 4));
        let ticket = match self.guard.admit(now, source) {
            Ok(t) => t,
            Err(refusal) => {
                let after = self.guard.stats();
                match refusal {
                    Refusal::NotAllowed => {
                        assert!(!allowed, "{source:?} is allowed");
                        assert_eq!(after.not_allowed, before.not_allowed + 1);
                    }
                    Refusal::RateLimited => {
                        assert!(allowed);
                        assert_eq!(after.rate_limited, before.rate_limited + 1);
                    }
                    Refusal::TooManySources => {
                        assert!(allowed);
                        assert_eq!(after.sources, self.limits.max_sources);
                    }
                    Refusal::TotalLimited => {
                        assert!(allowed);
                        assert_eq!(after.total_limited, before.total_limited + 1);
                    }
                }
                assert_eq!(publ.stats(), publ_before, "a refusal sends nothing");
                return;
            }
        };
        assert!(allowed, "{source:?} admitted");
        let budget = ticket.budget();
        assert!(budget.messages >= 1);
        assert!(budget.bytes >= publ.config().max_payload as u64);
        let reply = request(publ, model, kept_len, now, bytes, budget);
        self.guard.charge(ticket, &reply);
        let stats = self.guard.stats();
        assert!(stats.sources <= self.limits.max_sources);
        assert_eq!(stats.admitted, before.admitted + 1);
        // What a source was sent fits its buckets: full at first sight,
        // refilled since (a source is forgotten only once full again, so
        // counting from its first sight only loosens the bound).
        let e = self.sent.entry(source).or_insert((now, 0, 0));
        e.1 += reply.messages;
        e.2 += reply.bytes;
        let secs_ns = u128::from(now - e.0);
        let cap = |burst: u64, rate: u64| {
            u128::from(burst) + u128::from(rate) * secs_ns / 1_000_000_000 + 1
        };
        assert!(
            u128::from(e.1) <= cap(self.limits.burst_messages, self.limits.messages_per_sec),
            "{source:?} was sent {} messages in {secs_ns} ns: {:?}",
            e.1,
            self.limits
        );
        assert!(
            u128::from(e.2) <= cap(self.limits.burst_bytes, self.limits.bytes_per_sec),
            "{source:?} was sent {} bytes in {secs_ns} ns: {:?}",
            e.2,
            self.limits
        );
        // And all sources together fit the total buckets, full at the
        // start (time 0) and refilled since.
        self.total.0 += reply.messages;
        self.total.1 += reply.bytes;
        let l = &self.limits;
        let total_cap = |burst: u64, rate: u64| {
            u128::from(burst.max(rate)) + u128::from(rate) * u128::from(now) / 1_000_000_000 + 1
        };
        assert!(
            u128::from(self.total.0) <= total_cap(l.burst_messages, l.total_messages_per_sec),
            "all sources were sent {} messages by {now} ns: {l:?}",
            self.total.0
        );
        assert!(
            u128::from(self.total.1) <= total_cap(l.burst_bytes, l.total_bytes_per_sec),
            "all sources were sent {} bytes by {now} ns: {l:?}",
            self.total.1
        );
    }
}

/// Answers `bytes` within `budget` and checks the answer; returns what was
/// sent (nothing on a refusal).
fn request(
    publ: &mut Publisher,
    model: &Model,
    kept_len: usize,
    now: u64,
    bytes: &[u8],
    budget: ReplyBudget,
) -> hftnet_trade::exchange::Reply {
    let cfg = publ.config().clone();
    let before = publ.stats();
    let next = publ.next_sequence();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let res = if budget == ReplyBudget::UNLIMITED {
        publ.handle_request(now, bytes, &mut |p| out.push(p.to_vec()))
            .map(|messages| hftnet_trade::exchange::Reply {
                messages,
                packets: out.len() as u64,
                bytes: out.iter().map(|p| p.len() as u64).sum(),
                cut: false,
            })
    } else {
        publ.answer_request(now, bytes, budget, &mut |p| out.push(p.to_vec()))
    };
    let reply = res.as_ref().copied().unwrap_or_default();
    let res = res.map(|r| r.messages);
    let after = publ.stats();
    let parsed = Request::new_checked(bytes)
        .ok()
        .and_then(|q| RequestRepr::parse(&q).ok());
    match res {
        Ok(count) => {
            let r = parsed.expect("answered only a well-formed request");
            assert_eq!(r.session, OURS);
            assert!(count >= 1);
            assert!(count <= u64::from(r.count.min(cfg.max_request_count)));
            assert!(r.sequence + count <= next);
            // All that was asked and is published, up to the limit and,
            // when one is given, the budget.
            let want = u64::from(r.count.min(cfg.max_request_count)).min(next - r.sequence);
            if budget == ReplyBudget::UNLIMITED {
                assert_eq!(count, want);
            } else {
                assert!(count <= want && count <= budget.messages);
                assert!(reply.bytes <= budget.bytes, "{reply:?} over {budget:?}");
                assert_eq!(reply.cut, count < want, "{reply:?}");
                assert_eq!(reply.packets, out.len() as u64);
                assert_eq!(reply.bytes, out.iter().map(|p| p.len() as u64).sum::<u64>());
            }
            let mut seq = r.sequence;
            for p in &out {
                assert!(p.len() <= cfg.max_payload);
                let p = Packet::new_checked(&p[..]).expect("a well-formed reply");
                assert_eq!(p.session(), OURS);
                assert_eq!(p.sequence(), seq);
                let Kind::Messages(n) = p.kind() else {
                    panic!("a reply without messages");
                };
                assert!(n <= cfg.max_messages_per_packet);
                for m in p.messages() {
                    assert_eq!(m, model.message(seq), "message {seq}");
                    seq += 1;
                }
            }
            assert_eq!(seq, r.sequence + count, "replies hold exactly the count");
            assert_eq!(after.requests, before.requests + 1);
            assert_eq!(after.retransmitted, before.retransmitted + count);
            assert_eq!(
                after.retransmit_packets,
                before.retransmit_packets + out.len() as u64
            );
            assert_eq!(after.bad_requests, before.bad_requests);
        }
        Err(e) => {
            assert!(out.is_empty(), "a refused request sends nothing");
            assert_eq!(after.bad_requests, before.bad_requests + 1);
            assert_eq!(after.requests, before.requests);
            assert!(!e.to_string().is_empty());
            match e {
                RequestError::Malformed(_) => assert!(parsed.is_none()),
                RequestError::OverBudget => {
                    assert_ne!(budget, ReplyBudget::UNLIMITED);
                    assert!(parsed.is_some());
                }
                RequestError::ForeignSession(s) => {
                    assert_eq!(parsed.map(|r| r.session), Some(s));
                    assert_ne!(s, OURS);
                }
                RequestError::Future { sequence, next: n } => {
                    assert_eq!(n, next);
                    assert!(sequence >= next || sequence == 0);
                }
                RequestError::Unavailable { sequence, oldest } => {
                    assert!(sequence < oldest && oldest <= next);
                    let newer = next - sequence - 1;
                    assert!(
                        sequence < model.first
                            || newer >= cfg.history as u64
                            || model.longest > kept_len,
                        "message {sequence} dropped with {newer} newer ones, history {}",
                        cfg.history
                    );
                }
            }
        }
    }
    reply
}
