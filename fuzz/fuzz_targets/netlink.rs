//! rtnetlink replies from arbitrary bytes: splitting messages, decoding errors
//! and walking attributes never panic and never read out of bounds.
#![no_main]

use hftnet_sys::netlink::{IfInfoMsg, attributes, decode_error, split_messages};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msgs) = split_messages(data) {
        for m in msgs {
            let _ = decode_error(m.payload);
            let _ = IfInfoMsg::parse(m.payload);
            let body = m.payload.get(IfInfoMsg::LEN..).unwrap_or(&[]);
            for a in attributes(body).take(1024) {
                let _ = a;
            }
        }
    }
    for a in attributes(data).take(1024) {
        let _ = a;
    }
});
