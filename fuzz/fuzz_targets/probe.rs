//! The probe codec on arbitrary bytes: once `new_checked` accepted a buffer no
//! accessor panics, and what parses emits back to the same header bytes.
#![no_main]

use hftnet_wire::probe::{HEADER_LEN, Packet, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        assert!(data.len() < HEADER_LEN);
        return;
    };
    let _ = (p.magic(), p.seq(), p.stamp());
    if let Ok(r) = Repr::parse(&p) {
        let mut out = data.to_vec();
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..HEADER_LEN], &data[..HEADER_LEN]);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&out[..])), Ok(r));
    }
});
