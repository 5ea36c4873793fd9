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
//!   of the byte ring.
#![no_main]

use hftnet_trade::exchange::{Publisher, PublisherConfig, RequestError};
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
                request(&mut publ, &model, kept_len, now, &bytes);
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
                request(&mut publ, &model, kept_len, now, &bytes);
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

fn request(publ: &mut Publisher, model: &Model, kept_len: usize, now: u64, bytes: &[u8]) {
    let cfg = publ.config().clone();
    let before = publ.stats();
    let next = publ.next_sequence();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let res = publ.handle_request(now, bytes, &mut |p| out.push(p.to_vec()));
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
            // All that was asked and is published, up to the limit.
            assert_eq!(
                count,
                u64::from(r.count.min(cfg.max_request_count)).min(next - r.sequence)
            );
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
}
