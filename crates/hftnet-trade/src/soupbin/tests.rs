//! Every transition of both ends, with the bytes on the wire checked frame
//! by frame. Time is virtual (nanoseconds).

use hftnet_wire::soupbintcp::{
    FrameSplitter, LoginRequest, Password, RejectReason, Repr, Session, SplitError, Username,
};

use super::*;

const S: u64 = 1_000_000_000;

fn user() -> Username {
    Username::new("alice").unwrap()
}

fn pass() -> Password {
    Password::new("secret").unwrap()
}

fn sess(name: &str) -> Session {
    Session::new(name).unwrap()
}

fn blank() -> Session {
    Session([b' '; 10])
}

fn frame(r: Repr<'_>) -> Vec<u8> {
    let mut b = vec![0u8; r.buffer_len()];
    r.emit(&mut b).unwrap();
    b
}

fn login_frame(user: &str, pass: &str, session: Session, sequence: u64) -> Vec<u8> {
    frame(Repr::LoginRequest(LoginRequest {
        username: Username::new(user).unwrap(),
        password: Password::new(pass).unwrap(),
        session,
        sequence,
        heartbeat_timeout_ms: None,
    }))
}

/// Splits output bytes into frames, each checked by the codec.
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut s = FrameSplitter::new(65535);
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = s.feed(rest);
        rest = &rest[n..];
        while let Some(f) = s.next_frame().unwrap() {
            Repr::parse_frame(f).unwrap();
            out.push(f.to_vec());
        }
    }
    assert_eq!(s.buffered(), 0, "output ends inside a frame");
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    LoggedIn(StreamId, u64),
    Rejected(RejectReason),
    Unseq(Vec<u8>),
    Logout,
}

/// A server with one shared stream "SESS1", and helpers around one
/// connection.
struct Harness {
    server: Server,
    stream: StreamId,
}

impl Harness {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut cfg = ServerConfig::new(user(), pass());
        cfg.store = StoreConfig {
            max_bytes: 1 << 16,
            max_messages: 1 << 10,
        };
        f(&mut cfg);
        let mut server = Server::new(cfg).unwrap();
        let stream = server.open(sess("SESS1"), None).unwrap();
        Self { server, stream }
    }

    fn input(&self, c: &mut ServerConnection, now: u64, bytes: &[u8]) -> Vec<Ev> {
        let mut evs = Vec::new();
        c.handle_input(now, bytes, &self.server, |e| {
            evs.push(match e {
                ServerEvent::LoggedIn {
                    stream,
                    next_sequence,
                    ..
                } => Ev::LoggedIn(stream, next_sequence),
                ServerEvent::LoginRejected { reason, .. } => Ev::Rejected(reason),
                ServerEvent::Unsequenced(m) => Ev::Unseq(m.to_vec()),
                ServerEvent::Logout => Ev::Logout,
            });
        });
        evs
    }

    fn out(&self, c: &mut ServerConnection, now: u64) -> Vec<Vec<u8>> {
        let mut buf = vec![0u8; 70_000];
        let n = c.poll_transmit(now, &self.server, &mut buf);
        frames(&buf[..n])
    }

    fn publish(&mut self, msgs: &[&[u8]]) {
        for m in msgs {
            self.server.publish(self.stream, m).unwrap();
        }
    }

    /// A connection logged in at `now` from `sequence`.
    fn logged_in(&self, now: u64, sequence: u64) -> ServerConnection {
        let mut c = self.server.connect(now);
        let evs = self.input(
            &mut c,
            now,
            &login_frame("alice", "secret", blank(), sequence),
        );
        assert!(matches!(evs[..], [Ev::LoggedIn(..)]), "{evs:?}");
        c
    }
}

fn seq(m: &[u8]) -> Vec<u8> {
    frame(Repr::SequencedData(m))
}

fn accepted(name: &str, sequence: u64) -> Vec<u8> {
    frame(Repr::LoginAccepted {
        session: sess(name),
        sequence,
    })
}

#[test]
fn login_accepted_then_live_data() {
    let mut h = Harness::new();
    let mut c = h.server.connect(0);
    assert!(!c.is_logged_in());
    assert_eq!(h.out(&mut c, 0), Vec::<Vec<u8>>::new());
    let evs = h.input(
        &mut c,
        10,
        &login_frame("alice", "secret", sess("SESS1"), 1),
    );
    assert_eq!(evs, [Ev::LoggedIn(h.stream, 1)]);
    assert!(c.is_logged_in());
    assert_eq!(h.out(&mut c, 20), [accepted("SESS1", 1)]);
    h.publish(&[b"one", b"two"]);
    assert_eq!(h.out(&mut c, 30), [seq(b"one"), seq(b"two")]);
    assert_eq!(h.out(&mut c, 40), Vec::<Vec<u8>>::new());
    assert_eq!(c.position(), Some((h.stream, 3)));
    let k = c.counters();
    assert_eq!(
        (
            k.logins_accepted,
            k.sequenced_out,
            k.replayed,
            k.traffic.frames_out,
            k.traffic.frames_in
        ),
        (1, 2, 0, 3, 1)
    );
    assert_eq!(k.traffic.bytes_out, 33 + 6 + 6);
    assert_eq!(c.close_reason(), None);
}

#[test]
fn bad_credentials_get_reject_a_then_close() {
    let h = Harness::new();
    for (u, p) in [("alice", "wrong"), ("bob", "secret"), ("", "")] {
        let mut c = h.server.connect(0);
        let evs = h.input(&mut c, 1, &login_frame(u, p, blank(), 1));
        assert_eq!(evs, [Ev::Rejected(RejectReason::NotAuthorized)]);
        assert_eq!(
            c.close_reason(),
            Some(CloseReason::LoginRejected(RejectReason::NotAuthorized))
        );
        // The Login Rejected still goes out, then nothing.
        assert_eq!(
            h.out(&mut c, 2),
            [frame(Repr::LoginRejected(RejectReason::NotAuthorized))]
        );
        assert_eq!(h.out(&mut c, 5 * S), Vec::<Vec<u8>>::new());
        // Later input is ignored.
        assert_eq!(
            h.input(&mut c, 3, &login_frame("alice", "secret", blank(), 1)),
            []
        );
        assert_eq!(c.counters().rejected_not_authorized, 1);
        assert_eq!(c.poll_timeout(), None);
    }
    // Credentials are case-insensitive.
    let mut c = h.server.connect(0);
    let evs = h.input(&mut c, 1, &login_frame("ALICE", "SeCrEt", blank(), 1));
    assert_eq!(evs, [Ev::LoggedIn(h.stream, 1)]);
}

#[test]
fn unknown_or_ended_session_gets_reject_s() {
    let mut h = Harness::new();
    let mut c = h.server.connect(0);
    let evs = h.input(&mut c, 1, &login_frame("alice", "secret", sess("NOPE"), 1));
    assert_eq!(evs, [Ev::Rejected(RejectReason::SessionNotAvailable)]);
    assert_eq!(
        h.out(&mut c, 2),
        [frame(Repr::LoginRejected(
            RejectReason::SessionNotAvailable
        ))]
    );
    assert_eq!(c.counters().rejected_session, 1);
    // Credentials are checked first: bad ones on an unknown session get A.
    let mut c = h.server.connect(0);
    let evs = h.input(&mut c, 1, &login_frame("alice", "x", sess("NOPE"), 1));
    assert_eq!(evs, [Ev::Rejected(RejectReason::NotAuthorized)]);
    // An ended session is not available, by name or blank.
    let stream = h.stream;
    h.server.end(stream).unwrap();
    for s in [sess("SESS1"), blank()] {
        let mut c = h.server.connect(0);
        let evs = h.input(&mut c, 1, &login_frame("alice", "secret", s, 1));
        assert_eq!(evs, [Ev::Rejected(RejectReason::SessionNotAvailable)]);
    }
    // A new session: blank logs into it.
    let next = h.server.open(sess("SESS2"), None).unwrap();
    let mut c = h.server.connect(0);
    let evs = h.input(&mut c, 1, &login_frame("alice", "secret", blank(), 1));
    assert_eq!(evs, [Ev::LoggedIn(next, 1)]);
    assert_eq!(h.out(&mut c, 2), [accepted("SESS2", 1)]);
}

#[test]
fn streams_owned_by_a_user_are_theirs_only() {
    let mut h = Harness::with(|c| {
        c.credentials
            .push((Username::new("bob").unwrap(), Password::new("pw").unwrap()));
    });
    let bobs = h
        .server
        .open(sess("BOB1"), Some(Username::new("bob").unwrap()))
        .unwrap();
    // Bob's blank login gets his own stream (the most recent he may read).
    let mut c = h.server.connect(0);
    assert_eq!(
        h.input(&mut c, 1, &login_frame("bob", "pw", blank(), 1)),
        [Ev::LoggedIn(bobs, 1)]
    );
    // Alice's blank login gets the shared one; Bob's by name is refused.
    let mut c = h.server.connect(0);
    assert_eq!(
        h.input(&mut c, 1, &login_frame("alice", "secret", blank(), 1)),
        [Ev::LoggedIn(h.stream, 1)]
    );
    let mut c = h.server.connect(0);
    assert_eq!(
        h.input(&mut c, 1, &login_frame("alice", "secret", sess("BOB1"), 1)),
        [Ev::Rejected(RejectReason::SessionNotAvailable)]
    );
    // Names are used once per owner.
    assert_eq!(
        h.server.open(sess("SESS1"), None),
        Err(StoreError::Duplicate(sess("SESS1")))
    );
    assert_eq!(h.server.open(blank(), None), Err(StoreError::BlankName));
    h.publish(&[b"x"]);
}

#[test]
fn replay_from_the_requested_sequence_number_exactly_once() {
    let mut h = Harness::new();
    h.publish(&[b"m1", b"m2", b"m3", b"m4", b"m5"]);
    let mut c = h.logged_in(0, 3);
    assert_eq!(
        h.out(&mut c, 1),
        [accepted("SESS1", 3), seq(b"m3"), seq(b"m4"), seq(b"m5")]
    );
    h.publish(&[b"m6"]);
    assert_eq!(h.out(&mut c, 2), [seq(b"m6")]);
    assert_eq!((c.counters().replayed, c.counters().sequenced_out), (3, 4));

    // 0: only what comes next.
    let mut c = h.logged_in(0, 0);
    assert_eq!(h.out(&mut c, 1), [accepted("SESS1", 7)]);
    // Beyond the stream: the stream's next number, counted.
    let mut c = h.logged_in(0, 100);
    assert_eq!(h.out(&mut c, 1), [accepted("SESS1", 7)]);
    assert_eq!(c.counters().requested_beyond, 1);
    // Exactly the next one: nothing to replay.
    let mut c = h.logged_in(0, 7);
    assert_eq!(h.out(&mut c, 1), [accepted("SESS1", 7)]);
    h.publish(&[b"m7"]);
    assert_eq!(h.out(&mut c, 1), [seq(b"m7")]);
}

#[test]
fn a_small_transmit_buffer_gets_whole_frames_and_the_rest_later() {
    let mut h = Harness::new();
    h.publish(&[b"aaaa", b"bbbb", b"cccc"]);
    let mut c = h.logged_in(0, 1);
    let mut buf = [0u8; 40];
    // Login Accepted (33) + nothing else whole fits... 33 + 7 = 40: one.
    let n = c.poll_transmit(1, &h.server, &mut buf);
    assert_eq!(frames(&buf[..n]), [accepted("SESS1", 1), seq(b"aaaa")]);
    let n = c.poll_transmit(2, &h.server, &mut buf[..10]);
    assert_eq!(frames(&buf[..n]), [seq(b"bbbb")]);
    let n = c.poll_transmit(3, &h.server, &mut buf);
    assert_eq!(frames(&buf[..n]), [seq(b"cccc")]);
}

#[test]
fn server_heartbeat_after_one_second_without_output() {
    let mut h = Harness::new();
    let mut c = h.logged_in(0, 1);
    assert_eq!(h.out(&mut c, 100), [accepted("SESS1", 1)]);
    assert_eq!(c.poll_timeout(), Some(100 + S));
    assert_eq!(h.out(&mut c, 100 + S - 1), Vec::<Vec<u8>>::new());
    assert_eq!(h.out(&mut c, 100 + S), [frame(Repr::ServerHeartbeat)]);
    assert_eq!(c.poll_timeout(), Some(100 + 2 * S));
    // Data resets the interval.
    h.publish(&[b"x"]);
    assert_eq!(h.out(&mut c, 100 + S + S / 2), [seq(b"x")]);
    assert_eq!(h.out(&mut c, 100 + 2 * S), Vec::<Vec<u8>>::new());
    assert_eq!(
        h.out(&mut c, 100 + 2 * S + S / 2),
        [frame(Repr::ServerHeartbeat)]
    );
    assert_eq!(c.counters().traffic.heartbeats_out, 2);
    // No heartbeat before a login.
    let mut idle = h.server.connect(0);
    assert_eq!(h.out(&mut idle, 10 * S), Vec::<Vec<u8>>::new());
}

#[test]
fn silent_client_dropped_after_the_timeout() {
    let h = Harness::new();
    let mut c = h.logged_in(0, 1);
    let _ = h.out(&mut c, 0);
    // Heartbeats from the client keep it alive.
    assert_eq!(h.input(&mut c, 10 * S, &frame(Repr::ClientHeartbeat)), []);
    assert_eq!(c.counters().traffic.heartbeats_in, 1);
    assert_eq!(c.handle_timeout(10 * S + 15 * S - 1), None);
    assert_eq!(c.handle_timeout(25 * S), Some(CloseReason::PeerTimeout));
    assert_eq!(c.counters().client_timeouts, 1);
    assert!(!c.is_logged_in());
    assert_eq!(h.out(&mut c, 26 * S), Vec::<Vec<u8>>::new());

    // A 4.1 login sets its own timeout.
    let mut c = h.server.connect(0);
    let l = frame(Repr::LoginRequest(LoginRequest {
        username: user(),
        password: pass(),
        session: blank(),
        sequence: 1,
        heartbeat_timeout_ms: Some(5000),
    }));
    assert_eq!(h.input(&mut c, 0, &l).len(), 1);
    assert_eq!(c.handle_timeout(5 * S - 1), None);
    assert_eq!(c.handle_timeout(5 * S), Some(CloseReason::PeerTimeout));

    // No login within 30 s.
    let mut c = h.server.connect(S);
    assert_eq!(c.poll_timeout(), Some(31 * S));
    assert_eq!(c.handle_timeout(31 * S - 1), None);
    assert_eq!(c.handle_timeout(31 * S), Some(CloseReason::LoginTimeout));
    assert_eq!(c.counters().login_timeouts, 1);
}

#[test]
fn end_of_session_after_the_last_message_then_close() {
    let mut h = Harness::new();
    let mut c = h.logged_in(0, 1);
    h.publish(&[b"a"]);
    let _ = h.out(&mut c, 1);
    h.publish(&[b"b"]);
    h.server.end(h.stream).unwrap();
    assert_eq!(
        h.server.publish(h.stream, b"c"),
        Err(StoreError::Ended(sess("SESS1")))
    );
    assert_eq!(h.out(&mut c, 2), [seq(b"b"), frame(Repr::EndOfSession)]);
    assert_eq!(c.close_reason(), Some(CloseReason::EndOfSession));
    assert_eq!(c.counters().end_of_session, 1);
    assert_eq!(h.out(&mut c, 3 * S), Vec::<Vec<u8>>::new());
}

#[test]
fn logout_and_unsequenced_data() {
    let h = Harness::new();
    let mut c = h.logged_in(0, 1);
    let evs = h.input(
        &mut c,
        1,
        &[
            frame(Repr::UnsequencedData(b"order")),
            frame(Repr::LogoutRequest),
            frame(Repr::UnsequencedData(b"late")),
        ]
        .concat(),
    );
    // Nothing after the logout is handled.
    assert_eq!(evs, [Ev::Unseq(b"order".to_vec()), Ev::Logout]);
    assert_eq!(c.close_reason(), Some(CloseReason::Logout));
    assert_eq!(
        (c.counters().traffic.unsequenced_in, c.counters().logouts),
        (1, 1)
    );

    // The server sends unsequenced data once logged in, after what waits.
    let mut c = h.server.connect(0);
    let mut buf = [0u8; 64];
    assert_eq!(
        c.send_unsequenced(0, b"x", &mut buf),
        Err(SendError::NotLoggedIn)
    );
    h.input(&mut c, 0, &login_frame("alice", "secret", blank(), 1));
    assert_eq!(
        c.send_unsequenced(0, b"x", &mut buf[..35]),
        Err(SendError::BufferTooSmall { needed: 37 })
    );
    let n = c.send_unsequenced(0, b"x", &mut buf).unwrap();
    assert_eq!(
        frames(&buf[..n]),
        [accepted("SESS1", 1), frame(Repr::UnsequencedData(b"x"))]
    );
    assert_eq!(c.counters().traffic.unsequenced_out, 1);
}

#[test]
fn bad_frames_are_counted_by_reason_and_the_session_stays_up() {
    let mut h = Harness::new();
    let mut c = h.server.connect(0);
    // Before login: data, heartbeats, logout are counted, not delivered.
    let before = [
        frame(Repr::UnsequencedData(b"early")),
        frame(Repr::ClientHeartbeat),
        frame(Repr::LogoutRequest),
        frame(Repr::Debug(b"hello")),
    ]
    .concat();
    assert_eq!(h.input(&mut c, 0, &before), []);
    assert_eq!(c.counters().traffic.bad_frames.before_login, 3);
    assert_eq!(c.counters().traffic.debug_in, 1);
    assert_eq!(c.close_reason(), None);
    // A malformed login (bad numeric field) is counted; the next one works.
    let mut bad_login = login_frame("alice", "secret", blank(), 1);
    bad_login[40] = b'x';
    assert_eq!(h.input(&mut c, 0, &bad_login), []);
    assert_eq!(c.counters().traffic.bad_frames.bad_field, 1);
    assert_eq!(
        h.input(&mut c, 0, &login_frame("alice", "secret", blank(), 1)),
        [Ev::LoggedIn(h.stream, 1)]
    );
    let junk: &[(&[u8], BadFrame)] = &[
        (b"\x00\x01Q", BadFrame::UnknownType),
        (b"\x00\x03Rxx", BadFrame::BadLength),
        (b"\x00\x01H", BadFrame::WrongDirection),
        (b"\x00\x04Sabc", BadFrame::WrongDirection),
        (b"\x00\x02JA", BadFrame::WrongDirection),
        (b"\x00\x01Z", BadFrame::WrongDirection),
    ];
    for (bytes, reason) in junk {
        let before = c.counters().traffic.bad_frames.get(*reason);
        assert_eq!(h.input(&mut c, 1, bytes), [], "{bytes:?}");
        assert_eq!(
            c.counters().traffic.bad_frames.get(*reason),
            before + 1,
            "{bytes:?}"
        );
        assert!(c.is_logged_in());
    }
    assert_eq!(
        h.input(&mut c, 1, &login_frame("alice", "secret", blank(), 1)),
        []
    );
    assert_eq!(c.counters().traffic.bad_frames.login_after_login, 1);
    // Still up: data flows.
    h.publish(&[b"ok"]);
    assert_eq!(h.out(&mut c, 2), [accepted("SESS1", 1), seq(b"ok")]);
    assert_eq!(
        h.input(&mut c, 1, &frame(Repr::UnsequencedData(b"u"))),
        [Ev::Unseq(b"u".to_vec())]
    );
    assert_eq!(c.counters().traffic.bad_frames.total(), 3 + 1 + 6 + 1);
    assert_eq!(c.counters().traffic.frames_in, 4 + 2 + 6 + 1 + 1);

    // A zero length or oversized length closes: the stream cannot be split.
    let mut c = h.logged_in(0, 1);
    assert_eq!(h.input(&mut c, 1, b"\x00\x00"), []);
    assert_eq!(
        c.close_reason(),
        Some(CloseReason::BadStream(SplitError::ZeroLength))
    );
    assert_eq!(c.counters().traffic.bad_frames.zero_length, 1);
    let mut c = h.logged_in(0, 1);
    assert_eq!(h.input(&mut c, 1, b"\x10\x01U"), []);
    assert_eq!(
        c.close_reason(),
        Some(CloseReason::BadStream(SplitError::TooLong {
            len: 4097,
            max: 4096
        }))
    );
    assert_eq!(c.counters().traffic.bad_frames.too_long, 1);
}

#[test]
fn input_in_any_chunks() {
    let h = Harness::new();
    let stream = [
        login_frame("alice", "secret", blank(), 1),
        frame(Repr::UnsequencedData(b"first")),
        frame(Repr::ClientHeartbeat),
        frame(Repr::UnsequencedData(b"second")),
    ]
    .concat();
    for chunk in 1..stream.len() {
        let mut c = h.server.connect(0);
        let mut evs = Vec::new();
        for part in stream.chunks(chunk) {
            evs.extend(h.input(&mut c, 1, part));
        }
        assert_eq!(
            evs,
            [
                Ev::LoggedIn(h.stream, 1),
                Ev::Unseq(b"first".to_vec()),
                Ev::Unseq(b"second".to_vec())
            ],
            "chunks of {chunk}"
        );
    }
}

#[test]
fn connections_share_a_stream_each_at_its_own_position() {
    let mut h = Harness::new();
    h.publish(&[b"1", b"2"]);
    let mut a = h.logged_in(0, 1);
    let mut b = h.logged_in(0, 2);
    h.publish(&[b"3"]);
    assert_eq!(
        h.out(&mut a, 1),
        [accepted("SESS1", 1), seq(b"1"), seq(b"2"), seq(b"3")]
    );
    assert_eq!(
        h.out(&mut b, 1),
        [accepted("SESS1", 2), seq(b"2"), seq(b"3")]
    );
    h.publish(&[b"4"]);
    assert_eq!(h.out(&mut a, 2), [seq(b"4")]);
    assert_eq!(h.out(&mut b, 2), [seq(b"4")]);
}

#[test]
fn the_store_is_bounded_and_says_so() {
    let mut h = Harness::with(|c| {
        c.store = StoreConfig {
            max_bytes: 10,
            max_messages: 3,
        };
    });
    assert_eq!(h.server.publish(h.stream, b"12345"), Ok(1));
    assert_eq!(h.server.publish(h.stream, b"1234"), Ok(2));
    let full = h.server.publish(h.stream, b"12").unwrap_err();
    assert!(
        matches!(
            full,
            StoreError::Full {
                messages: 2,
                bytes: 9,
                ..
            }
        ),
        "{full:?}"
    );
    assert!(full.to_string().contains("end the session"), "{full}");
    assert_eq!(h.server.publish(h.stream, b"1"), Ok(3));
    assert!(matches!(
        h.server.publish(h.stream, b""),
        Err(StoreError::Full { messages: 3, .. })
    ));
    // Ending cleanly still works, and replay has everything kept.
    h.server.end(h.stream).unwrap();
    let s = h.server.streams().get(h.stream).unwrap();
    assert_eq!(
        (s.len(), s.bytes(), s.get(2), s.get(4)),
        (3, 10, Some(&b"1234"[..]), None)
    );
    assert_eq!(s.get(0), None);
    assert!(
        StoreConfig {
            max_bytes: 0,
            max_messages: 1
        }
        .validate()
        .is_err()
    );
    let mut bad = ServerConfig::new(user(), pass());
    bad.credentials.clear();
    assert_eq!(Server::new(bad).unwrap_err().field, "credentials");
    let mut bad = ServerConfig::new(user(), pass());
    bad.client_timeout_ns = S;
    assert_eq!(Server::new(bad).unwrap_err().field, "client_timeout_ns");
}

// ---- client ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cv {
    LoggedIn(Session, u64),
    Rejected(RejectReason),
    Seq(u64, Vec<u8>),
    Unseq(Vec<u8>),
    Gap(u64, u64),
    End,
}

fn client_input(c: &mut ClientConnection, now: u64, bytes: &[u8]) -> Vec<Cv> {
    let mut evs = Vec::new();
    c.handle_input(now, bytes, |e| {
        evs.push(match e {
            ClientEvent::LoggedIn { session, sequence } => Cv::LoggedIn(session, sequence),
            ClientEvent::LoginRejected(r) => Cv::Rejected(r),
            ClientEvent::Sequenced { sequence, message } => Cv::Seq(sequence, message.to_vec()),
            ClientEvent::Unsequenced(m) => Cv::Unseq(m.to_vec()),
            ClientEvent::Gap { first, count } => Cv::Gap(first, count),
            ClientEvent::EndOfSession => Cv::End,
        });
    });
    evs
}

fn client_out(c: &mut ClientConnection, now: u64) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 256];
    let n = c.poll_transmit(now, &mut buf);
    frames(&buf[..n])
}

fn client(next: u64) -> ClientConnection {
    let mut cfg = ClientConfig::new(user(), pass());
    cfg.next_sequence = next;
    ClientConnection::new(cfg, 0).unwrap()
}

#[test]
fn client_logs_in_and_counts_sequence_numbers() {
    let mut c = client(1);
    assert_eq!(
        client_out(&mut c, 0),
        [login_frame("alice", "secret", blank(), 1)]
    );
    assert_eq!(
        client_out(&mut c, 5 * S),
        Vec::<Vec<u8>>::new(),
        "no heartbeat before login"
    );
    let evs = client_input(
        &mut c,
        1,
        &[
            accepted("SESS1", 1),
            seq(b"a"),
            frame(Repr::UnsequencedData(b"u")),
            seq(b"b"),
        ]
        .concat(),
    );
    assert_eq!(
        evs,
        [
            Cv::LoggedIn(sess("SESS1"), 1),
            Cv::Seq(1, b"a".to_vec()),
            Cv::Unseq(b"u".to_vec()),
            Cv::Seq(2, b"b".to_vec())
        ]
    );
    assert_eq!(c.next_expected(), 3);
    assert_eq!(c.session(), sess("SESS1"));
    let r = c.reconnect_config();
    assert_eq!((r.session, r.next_sequence), (sess("SESS1"), 3));
    // The next connection asks for exactly that.
    let mut next = ClientConnection::new(r, 0).unwrap();
    assert_eq!(
        client_out(&mut next, 0),
        [login_frame("alice", "secret", sess("SESS1"), 3)]
    );
    let k = c.counters();
    assert_eq!(
        (k.sequenced_in, k.traffic.unsequenced_in, k.logins_accepted),
        (2, 1, 1)
    );
}

#[test]
fn client_rejected_closes() {
    for reason in [
        RejectReason::NotAuthorized,
        RejectReason::SessionNotAvailable,
    ] {
        let mut c = client(1);
        let _ = client_out(&mut c, 0);
        assert_eq!(
            client_input(&mut c, 1, &frame(Repr::LoginRejected(reason))),
            [Cv::Rejected(reason)]
        );
        assert_eq!(c.close_reason(), Some(CloseReason::LoginRejected(reason)));
        assert_eq!(client_input(&mut c, 2, &accepted("SESS1", 1)), []);
        let mut buf = [0u8; 8];
        assert_eq!(
            c.send_unsequenced(3, b"x", &mut buf),
            Err(SendError::NotLoggedIn)
        );
    }
}

#[test]
fn client_heartbeats_and_server_timeout() {
    let mut c = client(1);
    let _ = client_out(&mut c, 0);
    client_input(&mut c, S / 2, &accepted("SESS1", 1));
    assert_eq!(c.poll_timeout(), Some(S));
    assert_eq!(client_out(&mut c, S - 1), Vec::<Vec<u8>>::new());
    assert_eq!(client_out(&mut c, S), [frame(Repr::ClientHeartbeat)]);
    // Sending data resets the interval.
    let mut buf = [0u8; 16];
    assert_eq!(c.send_unsequenced(S + S / 2, b"ord", &mut buf), Ok(6));
    assert_eq!(client_out(&mut c, 2 * S), Vec::<Vec<u8>>::new());
    assert_eq!(
        client_out(&mut c, 2 * S + S / 2),
        [frame(Repr::ClientHeartbeat)]
    );
    assert_eq!(c.counters().traffic.heartbeats_out, 2);
    // Server heartbeats keep the server alive; silence for 15 s does not.
    client_input(&mut c, 10 * S, &frame(Repr::ServerHeartbeat));
    assert_eq!(c.counters().traffic.heartbeats_in, 1);
    assert_eq!(c.handle_timeout(25 * S - 1), None);
    assert_eq!(c.handle_timeout(25 * S), Some(CloseReason::PeerTimeout));
    assert_eq!(c.counters().server_timeouts, 1);
    assert_eq!(c.poll_timeout(), None);
    // Silence before the login is answered too.
    let mut c = client(1);
    assert_eq!(c.poll_timeout(), Some(15 * S));
    assert_eq!(c.handle_timeout(15 * S), Some(CloseReason::PeerTimeout));
}

#[test]
fn client_end_of_session_and_logout() {
    let mut c = client(1);
    let _ = client_out(&mut c, 0);
    let evs = client_input(
        &mut c,
        1,
        &[accepted("SESS1", 1), seq(b"a"), frame(Repr::EndOfSession)].concat(),
    );
    assert_eq!(
        evs,
        [
            Cv::LoggedIn(sess("SESS1"), 1),
            Cv::Seq(1, b"a".to_vec()),
            Cv::End
        ]
    );
    assert_eq!(c.close_reason(), Some(CloseReason::EndOfSession));

    let mut c = client(1);
    let _ = client_out(&mut c, 0);
    client_input(&mut c, 1, &accepted("SESS1", 1));
    c.logout();
    assert!(!c.is_logged_in());
    assert_eq!(c.close_reason(), None);
    // Data already on its way is still counted.
    assert_eq!(
        client_input(&mut c, 2, &seq(b"z")),
        [Cv::Seq(1, b"z".to_vec())]
    );
    assert_eq!(client_out(&mut c, 3), [frame(Repr::LogoutRequest)]);
    assert_eq!(c.close_reason(), Some(CloseReason::Logout));
    assert_eq!(c.next_expected(), 2);
}

#[test]
fn client_skips_duplicates_and_reports_gaps() {
    // The server resumes earlier than asked: the repeats are skipped.
    let mut c = client(3);
    let _ = client_out(&mut c, 0);
    let evs = client_input(
        &mut c,
        1,
        &[accepted("SESS1", 1), seq(b"1"), seq(b"2"), seq(b"3")].concat(),
    );
    assert_eq!(
        evs,
        [Cv::LoggedIn(sess("SESS1"), 1), Cv::Seq(3, b"3".to_vec())]
    );
    assert_eq!(c.counters().duplicates, 2);
    // Later than asked: the gap is reported once.
    let mut c = client(3);
    let _ = client_out(&mut c, 0);
    let evs = client_input(&mut c, 1, &[accepted("SESS1", 7), seq(b"7")].concat());
    assert_eq!(
        evs,
        [
            Cv::Gap(3, 4),
            Cv::LoggedIn(sess("SESS1"), 7),
            Cv::Seq(7, b"7".to_vec())
        ]
    );
    assert_eq!(c.counters().missing, 4);
    // 0: whatever the server sends next.
    let mut c = client(0);
    let _ = client_out(&mut c, 0);
    let evs = client_input(&mut c, 1, &[accepted("SESS1", 9), seq(b"9")].concat());
    assert_eq!(
        evs,
        [Cv::LoggedIn(sess("SESS1"), 9), Cv::Seq(9, b"9".to_vec())]
    );
}

#[test]
fn client_counts_bad_frames_and_stays_up() {
    let mut c = client(1);
    let _ = client_out(&mut c, 0);
    // Before the Login Accepted: data and heartbeats are not counted as such.
    assert_eq!(
        client_input(
            &mut c,
            1,
            &[seq(b"x"), frame(Repr::ServerHeartbeat)].concat()
        ),
        []
    );
    assert_eq!(c.counters().traffic.bad_frames.before_login, 2);
    client_input(&mut c, 1, &accepted("SESS1", 1));
    let junk: &[(&[u8], BadFrame)] = &[
        (b"\x00\x01Q", BadFrame::UnknownType),
        (b"\x00\x02Zx", BadFrame::BadLength),
        (b"\x00\x01R", BadFrame::WrongDirection),
        (b"\x00\x01O", BadFrame::WrongDirection),
        (b"\x00\x02JA", BadFrame::LoginAfterLogin),
    ];
    for (bytes, reason) in junk {
        let before = c.counters().traffic.bad_frames.get(*reason);
        assert_eq!(client_input(&mut c, 1, bytes), []);
        assert_eq!(
            c.counters().traffic.bad_frames.get(*reason),
            before + 1,
            "{bytes:?}"
        );
        assert!(c.is_logged_in());
    }
    assert_eq!(client_input(&mut c, 1, &accepted("SESS1", 5)), []);
    assert_eq!(c.counters().traffic.bad_frames.login_after_login, 2);
    assert_eq!(
        client_input(&mut c, 1, &seq(b"a")),
        [Cv::Seq(1, b"a".to_vec())]
    );
    assert_eq!(client_input(&mut c, 1, b"\x00\x00"), []);
    assert_eq!(
        c.close_reason(),
        Some(CloseReason::BadStream(SplitError::ZeroLength))
    );

    let mut cfg = ClientConfig::new(user(), pass());
    cfg.heartbeat_timeout_ms = Some(100_000);
    assert_eq!(
        ClientConnection::new(cfg, 0).unwrap_err().field,
        "heartbeat_timeout_ms"
    );
    cfg.heartbeat_timeout_ms = None;
    cfg.max_length = 0;
    assert_eq!(
        ClientConnection::new(cfg, 0).unwrap_err().field,
        "max_length"
    );
}

#[test]
fn client_survives_a_server_announcing_the_last_sequence_number() {
    let mut c = client(0);
    let _ = client_out(&mut c, 0);
    let evs = client_input(
        &mut c,
        1,
        &[accepted("SESS1", u64::MAX), seq(b"last"), seq(b"beyond")].concat(),
    );
    // The message numbered u64::MAX would leave no next expected number:
    // it and what follows are counted, not delivered; nothing panics, the
    // session stays up.
    assert_eq!(evs, [Cv::LoggedIn(sess("SESS1"), u64::MAX)]);
    assert_eq!(c.counters().traffic.bad_frames.bad_field, 2);
    assert!(c.is_logged_in());
}
