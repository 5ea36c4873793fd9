//! A shared-memory ring's identity line, as a hostile or broken file
//! gives it: `check_identity` never panics, and what it accepts has a
//! geometry that fits the file exactly (so every slot offset a reader
//! computes from it is inside its mapping).

#![no_main]

use hftnet_io::shm::file::{HEADER_LEN, check_identity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 72 {
        return;
    }
    let mut raw = [0u8; 64];
    raw.copy_from_slice(&data[..64]);
    let size = u64::from_le_bytes(data[64..72].try_into().expect("8 bytes"));
    if let Ok(shape) = check_identity(&raw, size) {
        let (slots, slot, stride) = (
            u64::from(shape.slots()),
            u64::from(shape.slot_size()),
            u64::from(shape.stride()),
        );
        assert!(slots.is_power_of_two() && slots >= 2);
        assert!(slot % 8 == 0 && 16 + slot <= stride && stride % 64 == 0);
        assert_eq!(HEADER_LEN as u64 + slots * stride, size);
    }
});
