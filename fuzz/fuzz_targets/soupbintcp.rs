//! The SoupBinTCP codec and frame splitter on arbitrary bytes.
//!
//! Parser: whatever `Repr::parse_frame` accepts lies inside a checked
//! packet, emits to a frame of `buffer_len()` bytes, and that frame parses
//! back to the same value (padding and leading zeros are normalised, so the
//! bytes may differ; the values may not).
//!
//! Splitter: the first two bytes choose the limit and the chunk size; the
//! rest is fed in chunks. The frames that come out, back to back, are
//! exactly the start of the stream, each within the limit and of a non-zero
//! length; it stops only at the end of the input or with an error that names
//! a length field of 0 or above the limit, found right after the last frame.
#![no_main]

use hftnet_wire::soupbintcp::{FrameSplitter, Packet, Repr, SplitError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    parse(data);
    if let [a, b, rest @ ..] = data {
        split(usize::from(*a) * 4, usize::from(*b % 32) + 1, rest);
    }
});

fn parse(data: &[u8]) {
    let Ok(r) = Repr::parse_frame(data) else {
        return;
    };
    let p = Packet::new_checked(data).expect("what parses is a checked packet");
    assert!(p.frame_len() <= data.len());
    assert_eq!(p.packet_type(), r.packet_type());
    assert_eq!(p.payload().len(), r.payload_len());
    let mut out = vec![0u8; r.buffer_len()];
    let n = r.emit(&mut out).expect("what parses emits");
    assert_eq!(n, out.len());
    assert_eq!(n, p.frame_len());
    assert_eq!(Repr::parse_frame(&out).expect("what is emitted parses"), r);
}

fn split(max: usize, chunk: usize, stream: &[u8]) {
    let mut s = FrameSplitter::new(max);
    let limit = s.max_length();
    let mut joined = Vec::new();
    let mut rest = stream;
    let error = 'feed: loop {
        let n = s.feed(&rest[..chunk.min(rest.len())]);
        rest = &rest[n..];
        loop {
            match s.next_frame() {
                Ok(Some(f)) => {
                    let p = Packet::new_checked(f).expect("a split frame is a checked packet");
                    assert_eq!(p.frame_len(), f.len());
                    assert!(usize::from(p.length()) <= limit);
                    joined.extend_from_slice(f);
                }
                Ok(None) => break,
                Err(e) => break 'feed Some(e),
            }
        }
        if rest.is_empty() {
            break None;
        }
        assert_ne!(n, 0, "the splitter took nothing while no frame was waiting");
    };
    assert_eq!(&stream[..joined.len()], &joined[..]);
    let after = &stream[joined.len()..];
    match error {
        None => assert_eq!(s.buffered(), after.len()),
        Some(SplitError::ZeroLength) => assert_eq!(&after[..2], &[0, 0]),
        Some(SplitError::TooLong { len, max }) => {
            assert_eq!(len, usize::from(u16::from_be_bytes([after[0], after[1]])));
            assert!(len > max && max == limit);
        }
    }
}
