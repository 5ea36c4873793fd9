//! ITCH 5.0 on arbitrary bytes: parsing one message never panics, what parses
//! emits back to the same bytes and re-parses equal, and splitting the bytes
//! as an ITCH file (incrementally and with the iterator) never panics and
//! agrees with itself.
#![no_main]

use hftnet_wire::Error;
use hftnet_wire::itch50::{Header, Message, MessageType, file};
use libfuzzer_sys::fuzz_target;

/// One message as framed: parse, and when it parses, emit and re-parse.
fn check_message(data: &[u8]) {
    if let Ok(h) = Header::new_checked(data) {
        let _ = (
            h.msg_type(),
            h.stock_locate(),
            h.tracking_number(),
            h.timestamp(),
        );
    }
    match Message::parse(data) {
        Ok(Message::Unknown { msg_type, len }) => {
            assert_eq!(msg_type, data[0]);
            assert_eq!(len, data.len());
            assert!(MessageType::from_byte(msg_type).is_none());
        }
        Ok(m) => {
            let t = m.message_type().expect("a known type");
            assert_eq!(t.byte(), data[0]);
            let n = m.buffer_len();
            assert_eq!(n, t.message_len());
            assert!(n <= data.len());
            let mut out = [0u8; 64];
            assert_eq!(m.emit(&mut out), Ok(n));
            // Every field keeps its wire value, so the bytes come back as sent
            // (extra bytes past the defined length are dropped).
            assert_eq!(&out[..n], &data[..n]);
            assert_eq!(Message::parse(&out[..n]), Ok(m));
            assert_eq!(m.emit(&mut out[..n - 1]), Err(Error::Truncated));
        }
        Err(Error::Truncated) => {
            let short = match data.first() {
                None => true,
                Some(&b) => MessageType::from_byte(b).is_some_and(|t| data.len() < t.message_len()),
            };
            assert!(short, "Truncated only for short input");
        }
        Err(Error::Malformed) => {
            let t = MessageType::from_byte(data[0]).expect("Malformed only for a known type");
            assert!(data.len() >= t.message_len());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_message(data);

    // The bytes as an ITCH file: the incremental splitter...
    let mut at = 0;
    let mut split = 0usize;
    let end = loop {
        match file::next_record(&data[at..]) {
            Ok(Some((msg, used))) => {
                assert_eq!(used, file::record_len(msg.len()));
                assert!(!msg.is_empty());
                check_message(msg);
                at += used;
                split += 1;
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert!(at <= data.len());

    // ...and the iterator over the same bytes agree.
    let mut recs = file::Records::new(data);
    let mut n = 0usize;
    let mut last = Ok(());
    for r in recs.by_ref() {
        match r {
            Ok(_) => n += 1,
            Err(e) => last = Err(e),
        }
    }
    assert_eq!(n, split);
    assert_eq!(recs.offset(), at);
    match end {
        Err(e) => assert_eq!(last, Err(e)),
        Ok(()) if at == data.len() => assert_eq!(last, Ok(())),
        Ok(()) => assert_eq!(last, Err(Error::Truncated)),
    }
});
