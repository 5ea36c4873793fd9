//! The feed handler driven by arbitrary events: datagrams on feed A, feed B
//! and from the re-request server (raw bytes, or packets synthesized from a
//! compact description so the fuzzer reaches deep states), with time steps,
//! timeouts and answered re-requests. Nothing panics, and:
//! - the consumer sees messages and losses in strictly increasing, gap-free
//!   sequence order, each number once, and the end of session at most once,
//!   after everything before it;
//! - `delivered + lost == next_expected - first_expected`, and every message
//!   handed in is accounted for exactly once (accepted, duplicate, late,
//!   before start or after end);
//! - after each turn the next deadline lies in the future, and once input
//!   stops, the timers run down to nothing with everything up to the highest
//!   sequence seen delivered or declared lost.
#![no_main]

use hftnet_trade::feed::{
    Counters, Deliver, FeedConfig, FeedHandler, FeedId, MIN_BUFFER_BYTES, Start,
};
use hftnet_wire::moldudp64::{END_OF_SESSION, Packet, PacketWriter, RequestRepr, Session};
use libfuzzer_sys::fuzz_target;

const SESSION: Session = Session(*b"FUZZ      ");
const OTHER: Session = Session(*b"OTHER     ");
const BIG: usize = 20_000;

/// The message numbered `seq` in synthesized packets.
fn body(seq: u64, big: bool) -> Vec<u8> {
    let mut m = seq.to_be_bytes().to_vec();
    if big {
        m.resize(BIG, seq as u8);
    }
    m
}

fn synth(session: Session, seq: u64, count: u8, big: bool) -> Vec<u8> {
    let n: u64 = match count {
        0 => 0,
        255 => 0,
        c => 1 + u64::from(c % 6),
    };
    let n = n.min(u64::MAX - seq);
    let mut buf = vec![0u8; 20 + n as usize * (2 + BIG)];
    let mut w = PacketWriter::new(&mut buf, session, seq).unwrap();
    for s in seq..seq + n {
        w.push(&body(s, big)).unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    if count == 255 {
        Packet::new_unchecked(&mut buf[..]).set_count_field(END_OF_SESSION);
    }
    buf
}

#[derive(Default)]
struct Consumer {
    /// The next number expected by the consumer, once anything arrived.
    next: Option<u64>,
    start: Option<u64>,
    delivered: u64,
    lost: u64,
    ended: Option<u64>,
    /// Whether only synthesized packets were handed in (so contents are known).
    check_content: bool,
}

impl Consumer {
    fn step(&mut self, first: u64, count: u64) {
        assert!(self.ended.is_none(), "callback after end of session");
        assert!(count >= 1);
        match self.next {
            Some(n) => assert_eq!(first, n, "hole or repeat in the sequence"),
            None => self.start = Some(first),
        }
        self.next = Some(first + count);
    }
}

impl Deliver for Consumer {
    fn message(&mut self, sequence: u64, message: &[u8]) {
        self.step(sequence, 1);
        self.delivered += 1;
        if self.check_content {
            assert!(message == body(sequence, false) || message == body(sequence, true));
        }
    }

    fn lost(&mut self, first: u64, count: u64) {
        self.step(first, count);
        self.lost += count;
    }

    fn end_of_session(&mut self, sequence: u64) {
        assert!(self.ended.is_none(), "end of session twice");
        if let Some(n) = self.next {
            assert_eq!(sequence, n, "end of session before everything");
        }
        self.ended = Some(sequence);
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

fn check(h: &FeedHandler, c: &Consumer, fed: &[u64; 3], config: &FeedConfig) {
    let k: Counters = h.counters();
    assert_eq!(k.delivered, c.delivered);
    assert_eq!(k.lost, c.lost);
    assert_eq!(k.delivered + k.lost, k.next_expected - k.first_expected);
    match c.next {
        Some(n) => {
            assert_eq!(n, k.next_expected);
            assert_eq!(c.start, Some(k.first_expected));
        }
        None => assert_eq!(k.next_expected, k.first_expected),
    }
    assert!(k.next_expected <= k.horizon);
    assert!(k.buffered <= config.window as u64);
    assert!(k.buffered <= k.buffered_high_water);
    assert_eq!(h.is_ended(), c.ended.is_some());
    let mut accepted = 0;
    for (feed, &n) in FeedId::ALL.iter().zip(fed) {
        let s = k.source(*feed);
        assert_eq!(s.packets, n);
        assert!(s.malformed + s.foreign_session + s.foreign_end + s.heartbeats <= s.packets);
        let dropped = s.duplicates + s.late + s.before_start + s.after_end;
        assert!(dropped <= s.messages);
        assert!(s.recovered <= s.messages - dropped);
        accepted += s.messages - dropped;
    }
    assert_eq!(accepted, k.delivered + k.buffered);
}

fn drain_requests(
    h: &mut FeedHandler,
    now: u64,
    pending: &mut Vec<RequestRepr>,
    config: &FeedConfig,
) {
    while let Some(q) = h.poll_request(now) {
        assert!(config.recovery);
        assert!(q.count >= 1 && q.count <= config.request_max_count);
        assert_eq!(Some(q.session), h.session());
        assert!(q.sequence >= h.counters().first_expected);
        if pending.len() < 64 {
            pending.push(q);
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
    let config = FeedConfig {
        session: if b0 & 4 == 0 { Some(SESSION) } else { None },
        start: if b0 & 2 == 0 {
            Start::Sequence(1 + u64::from(b0 >> 6))
        } else {
            Start::FirstSeen
        },
        window: 1 << ((b0 >> 3) & 7),
        buffer_bytes: MIN_BUFFER_BYTES,
        max_gaps: 1 + usize::from(b1 % 8),
        gap_wait_ns: 1 + u64::from(b2 % 8) * 10_000,
        recovery: b0 & 1 == 0,
        request_max_count: 1 + u16::from(b1 >> 4),
        request_timeout_ns: 1 + u64::from(b2 >> 3) * 10_000,
        request_attempts: 1 + u32::from(b3 % 3),
        max_recovery: 1 + u64::from(b3 >> 2) * 4,
    };
    let mut h = FeedHandler::new(config).expect("valid config");
    let mut c = Consumer {
        check_content: true,
        ..Consumer::default()
    };
    let mut fed = [0u64; 3];
    let mut pending: Vec<RequestRepr> = Vec::new();
    let mut now: u64 = 0;
    let mut events = 0;

    while let (Some(op), Some(step)) = (input.byte(), input.byte()) {
        events += 1;
        if events > 2_000 {
            break;
        }
        now += u64::from(step) * 5_000;
        if h.poll_timeout().is_some_and(|t| t <= now) {
            h.handle_timeout(now, &mut c);
        }
        let feed = match op & 3 {
            0 => Some(FeedId::A),
            1 => Some(FeedId::B),
            2 => Some(FeedId::Retransmission),
            _ => None,
        };
        match feed {
            Some(feed) if op & 4 != 0 => {
                // Synthesized: [offset from the horizon (i8), count].
                let off = input.byte().unwrap_or(0) as i8;
                let count = input.byte().unwrap_or(1);
                let k = h.counters();
                let base = if k.horizon == 0 { 1000 } else { k.horizon };
                let seq = base.saturating_add_signed(i64::from(off));
                let session = if op & 8 != 0 { OTHER } else { SESSION };
                let p = synth(session, seq, count, op & 16 != 0);
                h.handle_packet(feed, now, &p, &mut c);
                fed[index(feed)] += 1;
            }
            Some(feed) => {
                // Raw bytes, behind our session name when bit 3 is set.
                let len = usize::from(input.byte().unwrap_or(0));
                let mut p = Vec::new();
                if op & 8 != 0 {
                    p.extend_from_slice(&SESSION.0);
                }
                p.extend_from_slice(input.take(len));
                c.check_content = false;
                h.handle_packet(feed, now, &p, &mut c);
                fed[index(feed)] += 1;
            }
            None if op & 4 != 0 => {
                // The re-request server answers everything asked so far.
                for q in pending.drain(..) {
                    let mut s = q.sequence;
                    let end = q.sequence.saturating_add(u64::from(q.count));
                    while s < end {
                        let n = (end - s).min(6);
                        // A count byte c carries 1 + c % 6 messages.
                        let p = synth(q.session, s, (n + 5) as u8, op & 16 != 0);
                        h.handle_packet(FeedId::Retransmission, now, &p, &mut c);
                        fed[2] += 1;
                        s += n;
                    }
                }
            }
            None => {}
        }
        drain_requests(&mut h, now, &mut pending, &config);
        assert!(
            h.poll_timeout().is_none_or(|t| t > now),
            "deadline in the past"
        );
        check(&h, &c, &fed, &config);
    }

    // Input over: the timers run down, nothing is answered any more.
    let mut turns = 0;
    while let Some(t) = h.poll_timeout() {
        turns += 1;
        assert!(turns < 10_000, "timers never run down");
        now = now.max(t);
        h.handle_timeout(now, &mut c);
        drain_requests(&mut h, now, &mut pending, &config);
        check(&h, &c, &fed, &config);
    }
    let k = h.counters();
    assert_eq!(
        k.next_expected, k.horizon,
        "something neither delivered nor lost"
    );
    assert_eq!(k.buffered, 0);
});

fn index(feed: FeedId) -> usize {
    match feed {
        FeedId::A => 0,
        FeedId::B => 1,
        FeedId::Retransmission => 2,
    }
}
