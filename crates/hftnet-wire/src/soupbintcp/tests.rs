//! Byte-literal tests built from the specification's tables (section 2),
//! proptest round trips, and the splitter on every way of cutting a stream.

use proptest::prelude::*;

use super::*;

// 2.3.1 Login Request (4.0): length 47, 'L', username "alice" (6, padded
// right), password "Secret" (10, padded right), requested session "SESS1"
// (10), requested sequence number 1 (20, padded left).
static LOGIN_REQUEST_BYTES: &[u8; 49] = b"\x00\x2fLalice Secret    SESS1                        1";
// 4.1: the same with the heartbeat timeout 15000 ms (5, padded left).
static LOGIN_REQUEST_41_BYTES: &[u8; 54] =
    b"\x00\x34Lalice Secret    SESS1                        115000";
// 2.2.1 Login Accepted: length 31, 'A', session "SESS1" padded on the LEFT
// (10), sequence number 42 (20, padded left).
static LOGIN_ACCEPTED_BYTES: &[u8; 33] = b"\x00\x1fA     SESS1                  42";
// 2.2.2 Login Rejected: length 2, 'J', reason.
static LOGIN_REJECTED_A: &[u8; 4] = b"\x00\x02JA";
static LOGIN_REJECTED_S: &[u8; 4] = b"\x00\x02JS";
// 2.2.3 / 2.2.4 / 2.3.2 data packets and 2.1 debug: length = 1 + payload.
static SEQUENCED_BYTES: &[u8; 8] = b"\x00\x06Shello";
static UNSEQUENCED_BYTES: &[u8; 6] = b"\x00\x04Uabc";
static DEBUG_BYTES: &[u8; 7] = b"\x00\x05+host";
// 2.2.5, 2.2.6, 2.3.3, 2.3.4: length 1, type only.
static SERVER_HEARTBEAT_BYTES: &[u8; 3] = b"\x00\x01H";
static END_OF_SESSION_BYTES: &[u8; 3] = b"\x00\x01Z";
static CLIENT_HEARTBEAT_BYTES: &[u8; 3] = b"\x00\x01R";
static LOGOUT_BYTES: &[u8; 3] = b"\x00\x01O";

fn session() -> Session {
    Session::new("SESS1").unwrap()
}

fn login(hb: Option<u32>) -> LoginRequest {
    LoginRequest {
        username: Username::new("alice").unwrap(),
        password: Password::new("Secret").unwrap(),
        session: session(),
        sequence: 1,
        heartbeat_timeout_ms: hb,
    }
}

/// Every literal with the Repr it stands for.
fn table() -> Vec<(&'static [u8], Repr<'static>)> {
    vec![
        (&LOGIN_REQUEST_BYTES[..], Repr::LoginRequest(login(None))),
        (
            &LOGIN_REQUEST_41_BYTES[..],
            Repr::LoginRequest(login(Some(15_000))),
        ),
        (
            &LOGIN_ACCEPTED_BYTES[..],
            Repr::LoginAccepted {
                session: session(),
                sequence: 42,
            },
        ),
        (
            &LOGIN_REJECTED_A[..],
            Repr::LoginRejected(RejectReason::NotAuthorized),
        ),
        (
            &LOGIN_REJECTED_S[..],
            Repr::LoginRejected(RejectReason::SessionNotAvailable),
        ),
        (&SEQUENCED_BYTES[..], Repr::SequencedData(b"hello")),
        (&UNSEQUENCED_BYTES[..], Repr::UnsequencedData(b"abc")),
        (&DEBUG_BYTES[..], Repr::Debug(b"host")),
        (&SERVER_HEARTBEAT_BYTES[..], Repr::ServerHeartbeat),
        (&END_OF_SESSION_BYTES[..], Repr::EndOfSession),
        (&CLIENT_HEARTBEAT_BYTES[..], Repr::ClientHeartbeat),
        (&LOGOUT_BYTES[..], Repr::LogoutRequest),
    ]
}

#[test]
fn test_deconstruct() {
    let p = Packet::new_checked(&LOGIN_REQUEST_BYTES[..]).unwrap();
    assert_eq!(p.length(), 47);
    assert_eq!(p.frame_len(), 49);
    assert_eq!(p.packet_type(), packet_type::LOGIN_REQUEST);
    assert_eq!(&p.payload()[..6], b"alice ");
    let p = Packet::new_checked(&SEQUENCED_BYTES[..]).unwrap();
    assert_eq!(
        (p.length(), p.packet_type(), p.payload()),
        (6, b'S', &b"hello"[..])
    );
}

#[test]
fn test_construct() {
    let mut buf = [0u8; 8];
    let mut p = Packet::new_unchecked(&mut buf[..]);
    p.set_length(6);
    p.set_packet_type(packet_type::SEQUENCED_DATA);
    p.payload_mut().copy_from_slice(b"hello");
    assert_eq!(&buf, SEQUENCED_BYTES);
}

#[test]
fn test_parse() {
    for (bytes, repr) in table() {
        assert_eq!(Repr::parse_frame(bytes).unwrap(), repr, "{bytes:?}");
        let p = Packet::new_checked(bytes).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), repr);
    }
}

#[test]
fn test_emit() {
    for (bytes, repr) in table() {
        let mut buf = [0xAAu8; 64];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(n, repr.buffer_len());
        assert_eq!(&buf[..n], bytes, "{repr:?}");
        // Exactly the frame's length is enough; one byte less is not.
        assert_eq!(repr.emit(&mut buf[..n]), Ok(n));
        assert_eq!(repr.emit(&mut buf[..n - 1]), Err(Error::Truncated));
    }
}

#[test]
fn fields_padded_either_way_and_blank_numbers() {
    // A Login Accepted whose session is padded on the right, with leading
    // zeros in the sequence number, parses to the same values.
    let b = b"\x00\x1fASESS1     00000000000000000042";
    assert_eq!(
        Repr::parse_frame(b).unwrap(),
        Repr::LoginAccepted {
            session: session(),
            sequence: 42
        }
    );
    // A Login Request with a blank session and a blank sequence number: the
    // current session, from the most recent message (0).
    let b = b"\x00\x2fLALICE SECRET                                    ";
    let Repr::LoginRequest(l) = Repr::parse_frame(b).unwrap() else {
        panic!("not a login request");
    };
    assert!(l.session.trimmed().is_empty());
    assert_eq!(l.sequence, 0);
    // Case-insensitive credentials.
    assert!(l.username.matches(&Username::new("alice").unwrap()));
    assert!(l.password.matches(&Password::new("secret").unwrap()));
    assert!(!l.password.matches(&Password::new("secret2").unwrap()));
    // The largest sequence number fits its 20 digits.
    let r = Repr::LoginAccepted {
        session: session(),
        sequence: u64::MAX,
    };
    let mut buf = [0u8; 33];
    r.emit(&mut buf).unwrap();
    assert_eq!(&buf[13..], b"18446744073709551615");
    assert_eq!(Repr::parse_frame(&buf).unwrap(), r);
}

#[test]
fn bad_packets_name_their_reason() {
    let cases: &[(&[u8], ParseError)] = &[
        (b"", ParseError::Truncated),
        (b"\x00", ParseError::Truncated),
        (b"\x00\x00", ParseError::ZeroLength),
        (b"\x00\x00X", ParseError::ZeroLength),
        (b"\x00\x02S", ParseError::Truncated),
        (b"\x00\x01Q", ParseError::UnknownType(b'Q')),
        (b"\x00\x01\x00", ParseError::UnknownType(0)),
        (
            b"\x00\x02Hx",
            ParseError::BadLength {
                packet_type: b'H',
                len: 1,
            },
        ),
        (
            b"\x00\x01J",
            ParseError::BadLength {
                packet_type: b'J',
                len: 0,
            },
        ),
        (
            b"\x00\x03JAS",
            ParseError::BadLength {
                packet_type: b'J',
                len: 2,
            },
        ),
        (&LOGIN_REQUEST_BYTES[..48], ParseError::Truncated),
        (
            b"\x00\x1eA     SESS1                  4",
            ParseError::BadLength {
                packet_type: b'A',
                len: 29,
            },
        ),
        (
            b"\x00\x1fA     SESS1                 4x2",
            ParseError::BadField { packet_type: b'A' },
        ),
        (
            b"\x00\x1fA     SESS199999999999999999999",
            ParseError::BadField { packet_type: b'A' },
        ),
        (
            b"\x00\x1fA     SESS1                 4 2",
            ParseError::BadField { packet_type: b'A' },
        ),
        (
            b"\x00\x1fA    SESS\x011                  42",
            ParseError::BadField { packet_type: b'A' },
        ),
    ];
    for (bytes, e) in cases {
        assert_eq!(Repr::parse_frame(bytes), Err(*e), "{bytes:?}");
    }
    // A login request between the 4.0 and 4.1 lengths.
    let mut b = LOGIN_REQUEST_41_BYTES.to_vec();
    b.truncate(51);
    b[1] = 49;
    assert_eq!(
        Repr::parse_frame(&b),
        Err(ParseError::BadLength {
            packet_type: b'L',
            len: 48
        })
    );
    // The errors read as sentences naming the problem.
    assert_eq!(
        ParseError::UnknownType(b'Q').to_string(),
        "unknown SoupBinTCP packet type 'Q'"
    );
    assert_eq!(Error::from(ParseError::ZeroLength), Error::Malformed);
    assert_eq!(Error::from(ParseError::Truncated), Error::Truncated);
}

#[test]
fn emit_refuses_what_does_not_fit_its_field() {
    let mut buf = [0u8; 64];
    let r = Repr::LoginRequest(login(Some(100_000)));
    assert_eq!(r.emit(&mut buf), Err(Error::Malformed));
    let mut l = login(None);
    l.session = Session(*b"SESS\n     ");
    assert_eq!(Repr::LoginRequest(l).emit(&mut buf), Err(Error::Malformed));
    let big = vec![0u8; MAX_PAYLOAD_LEN + 1];
    let mut out = vec![0u8; big.len() + 3];
    assert_eq!(
        Repr::SequencedData(&big).emit(&mut out),
        Err(Error::Malformed)
    );
    let max = &big[..MAX_PAYLOAD_LEN];
    let n = Repr::SequencedData(max).emit(&mut out).unwrap();
    assert_eq!(n, MAX_LENGTH + 2);
    assert_eq!(&out[..3], &[0xff, 0xff, b'S']);
    assert_eq!(
        Repr::parse_frame(&out[..n]).unwrap(),
        Repr::SequencedData(max)
    );
    assert!(Alpha::<6>::new("toolong").is_err());
    assert!(Alpha::<6>::new("a\tb").is_err());
}

/// Every literal of the table, back to back: one stream.
fn stream() -> Vec<u8> {
    table()
        .iter()
        .flat_map(|(b, _)| b.iter().copied())
        .collect()
}

fn split_all(
    s: &mut FrameSplitter,
    chunks: &[&[u8]],
) -> core::result::Result<Vec<Vec<u8>>, SplitError> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut chunk = *chunk;
        loop {
            let n = s.feed(chunk);
            chunk = &chunk[n..];
            while let Some(f) = s.next_frame()? {
                out.push(f.to_vec());
            }
            if chunk.is_empty() {
                break;
            }
        }
    }
    Ok(out)
}

#[test]
fn splitter_on_every_cut() {
    let all = stream();
    let want: Vec<Vec<u8>> = table().iter().map(|(b, _)| b.to_vec()).collect();
    // One chunk, byte by byte, and every single cut point.
    let mut s = FrameSplitter::new(64);
    assert_eq!(split_all(&mut s, &[&all]).unwrap(), want);
    let mut s = FrameSplitter::new(64);
    let bytes: Vec<&[u8]> = all.chunks(1).collect();
    assert_eq!(split_all(&mut s, &bytes).unwrap(), want);
    assert_eq!(s.buffered(), 0);
    for cut in 0..=all.len() {
        let mut s = FrameSplitter::new(64);
        let (a, b) = all.split_at(cut);
        assert_eq!(split_all(&mut s, &[a, b]).unwrap(), want, "cut at {cut}");
    }
}

#[test]
fn splitter_reads_in_place() {
    let all = stream();
    let mut s = FrameSplitter::new(64);
    let mut at = 0;
    let mut frames = 0;
    while at < all.len() {
        let spare = s.spare();
        let n = spare.len().min(all.len() - at).min(7);
        spare[..n].copy_from_slice(&all[at..at + n]);
        s.commit(n);
        at += n;
        while let Some(f) = s.next_frame().unwrap() {
            assert!(Repr::parse_frame(f).is_ok());
            frames += 1;
        }
    }
    assert_eq!(frames, table().len());
}

#[test]
fn splitter_refuses_zero_and_oversized_lengths_for_good() {
    // A heartbeat, then a zero length: the heartbeat comes out, then the
    // error, and the error again on every later call.
    let mut s = FrameSplitter::new(64);
    assert_eq!(s.feed(b"\x00\x01H\x00\x00R"), 6);
    assert_eq!(s.next_frame().unwrap(), Some(&b"\x00\x01H"[..]));
    assert_eq!(s.next_frame(), Err(SplitError::ZeroLength));
    assert_eq!(s.next_frame(), Err(SplitError::ZeroLength));
    assert_eq!(s.feed(b"\x00\x01H"), 0);
    assert_eq!(s.error(), Some(SplitError::ZeroLength));

    // A length above the limit is refused from its header alone (the
    // payload never has to arrive).
    let mut s = FrameSplitter::new(64);
    s.feed(b"\x00\x41");
    assert_eq!(
        s.next_frame(),
        Err(SplitError::TooLong { len: 65, max: 64 })
    );
    assert!(s.to_owned().error().is_some());
    // Exactly the limit passes.
    let mut s = FrameSplitter::new(64);
    let mut f = vec![0, 64, b'S'];
    f.extend_from_slice(&[7u8; 63]);
    assert_eq!(split_all(&mut s, &[&f, &f]).unwrap(), vec![f.clone(), f]);
    assert!(
        SplitError::TooLong { len: 65, max: 64 }
            .to_string()
            .contains("max_length")
    );
    // The limit is clamped to what the length field can say.
    assert_eq!(FrameSplitter::new(0).max_length(), 1);
    assert_eq!(FrameSplitter::new(1 << 20).max_length(), MAX_LENGTH);
}

fn any_session() -> impl Strategy<Value = Session> {
    "[A-Za-z0-9]{0,10}".prop_map(|s| Session::new(&s).unwrap())
}

fn any_alpha<const N: usize>() -> impl Strategy<Value = Alpha<N>> {
    proptest::string::string_regex(&format!("[!-~]{{0,{N}}}"))
        .unwrap()
        .prop_map(|s| Alpha::new(&s).unwrap())
}

proptest! {
    #[test]
    fn login_request_round_trip(
        username in any_alpha::<6>(),
        password in any_alpha::<10>(),
        session in any_session(),
        sequence in any::<u64>(),
        hb in proptest::option::of(0..=MAX_HEARTBEAT_TIMEOUT_MS),
    ) {
        let r = Repr::LoginRequest(LoginRequest { username, password, session, sequence, heartbeat_timeout_ms: hb });
        let mut buf = [0u8; 64];
        let n = r.emit(&mut buf).unwrap();
        prop_assert_eq!(Repr::parse_frame(&buf[..n]).unwrap(), r);
    }

    #[test]
    fn login_accepted_round_trip(session in any_session(), sequence in any::<u64>()) {
        let r = Repr::LoginAccepted { session, sequence };
        let mut buf = [0u8; 64];
        let n = r.emit(&mut buf).unwrap();
        prop_assert_eq!(Repr::parse_frame(&buf[..n]).unwrap(), r);
    }

    #[test]
    fn data_round_trip_through_the_splitter(
        payloads in proptest::collection::vec((0u8..4, proptest::collection::vec(any::<u8>(), 0..80)), 0..20),
        chunk in 1usize..40,
    ) {
        let reprs: Vec<Repr<'_>> = payloads.iter().map(|(k, p)| match k {
            0 => Repr::SequencedData(p),
            1 => Repr::UnsequencedData(p),
            2 => Repr::Debug(p),
            _ => Repr::ServerHeartbeat,
        }).collect();
        let mut wire = Vec::new();
        for r in &reprs {
            let mut buf = vec![0u8; r.buffer_len()];
            prop_assert_eq!(r.emit(&mut buf).unwrap(), buf.len());
            wire.extend_from_slice(&buf);
        }
        let mut s = FrameSplitter::new(81);
        let chunks: Vec<&[u8]> = wire.chunks(chunk).collect();
        let frames = split_all(&mut s, &chunks).unwrap();
        prop_assert_eq!(frames.len(), reprs.len());
        for (f, r) in frames.iter().zip(&reprs) {
            prop_assert_eq!(&Repr::parse_frame(f).unwrap(), r);
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), max in 0usize..100) {
        let _ = Repr::parse_frame(&bytes);
        let mut s = FrameSplitter::new(max);
        let mut rest = &bytes[..];
        loop {
            let n = s.feed(rest);
            rest = &rest[n..];
            let mut stop = false;
            loop {
                match s.next_frame() {
                    Ok(Some(f)) => { let _ = Repr::parse_frame(f); }
                    Ok(None) => break,
                    Err(_) => { stop = true; break; }
                }
            }
            if stop || rest.is_empty() || n == 0 { break; }
        }
    }
}
