//! The sockperf header codec on arbitrary bytes: once `new_checked` accepted
//! a buffer no accessor panics, a parsed header describes a message that
//! fits, and what parses emits back to the same header bytes; the reply
//! differs only in the CLIENT bit.
#![no_main]

use hftnet_wire::sockperf::{Flags, HEADER_LEN, Packet, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        assert!(data.len() < HEADER_LEN);
        assert!(Repr::parse_datagram(data).is_err());
        return;
    };
    let _ = (p.seq(), p.flags(), p.length());
    let datagram = Repr::parse_datagram(data);
    if let Ok(r) = Repr::parse(&p) {
        assert!(r.length as usize >= HEADER_LEN && r.length as usize <= data.len());
        assert_eq!(datagram.is_ok(), r.length as usize == data.len());
        let mut out = data.to_vec();
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], data);
        r.reply().emit(&mut Packet::new_unchecked(&mut out[..]));
        let back = Repr::parse(&Packet::new_unchecked(&out[..])).unwrap();
        assert_eq!(back, r.reply());
        assert!(!back.flags.contains(Flags::CLIENT));
        assert_eq!(out[9] | (data[9] & 1), data[9]);
        assert_eq!(&out[..9], &data[..9]);
        assert_eq!(&out[10..], &data[10..]);
    } else {
        assert!(datagram.is_err());
    }
});
