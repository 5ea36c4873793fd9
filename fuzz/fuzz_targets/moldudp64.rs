//! The MoldUDP64 codec on arbitrary bytes: once `new_checked` accepted a
//! buffer no accessor panics, the message iterator yields exactly
//! `message_count()` messages whose blocks and the header cover the buffer
//! exactly, and what parses writes back to the same bytes. Requests likewise.
#![no_main]

use hftnet_wire::moldudp64::{
    BLOCK_HEADER_LEN, END_OF_SESSION, HEADER_LEN, Kind, Packet, PacketWriter, Repr, Request,
    RequestRepr,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    downstream(data);
    request(data);
});

fn downstream(data: &[u8]) {
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let n = p.message_count();
    let mut seen = 0usize;
    let mut covered = HEADER_LEN;
    for m in p.messages() {
        seen += 1;
        covered += BLOCK_HEADER_LEN + m.len();
    }
    assert_eq!(seen, usize::from(n));
    assert_eq!(covered, data.len());
    match p.kind() {
        Kind::Messages(c) => assert!(c == n && c != 0 && c != END_OF_SESSION),
        Kind::Heartbeat => assert!(n == 0 && p.count_field() == 0),
        Kind::EndOfSession => assert!(n == 0 && p.count_field() == END_OF_SESSION),
    }
    let _ = (p.session().to_string(), p.session().trimmed(), p.sequence());

    // The header parses and emits back to the same bytes.
    let r = Repr::parse(&p).expect("a checked packet parses");
    let mut out = data.to_vec();
    out[..HEADER_LEN].fill(0);
    r.emit(&mut Packet::new_unchecked(&mut out[..]));
    assert_eq!(out, data);

    // The writer rebuilds the same packet from its messages (it cannot write
    // an end-of-session marker).
    if p.kind() != Kind::EndOfSession {
        let mut buf = vec![0u8; data.len()];
        let mut w =
            PacketWriter::new(&mut buf, p.session(), p.sequence()).expect("room for header");
        for m in p.messages() {
            w.push(m).expect("the same messages fit the same length");
        }
        assert_eq!(w.count(), n);
        assert_eq!(w.finish(), data.len());
        assert_eq!(buf, data);
    }
}

fn request(data: &[u8]) {
    let Ok(q) = Request::new_checked(data) else {
        assert_ne!(data.len(), HEADER_LEN);
        return;
    };
    assert_eq!(data.len(), HEADER_LEN);
    let _ = (q.session(), q.sequence());
    match RequestRepr::parse(&q) {
        Ok(r) => {
            assert!(r.count != 0 && r.count != END_OF_SESSION);
            assert_eq!(
                (r.session, r.sequence, r.count),
                (q.session(), q.sequence(), q.count())
            );
            let mut out = [0u8; HEADER_LEN];
            r.emit(&mut Request::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], data);
            assert_eq!(r.buffer_len(), HEADER_LEN);
        }
        Err(_) => assert!(q.count() == 0 || q.count() == END_OF_SESSION),
    }
}
