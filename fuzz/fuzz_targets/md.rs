//! The market-data record codec on arbitrary bytes: decoding never panics,
//! accepts only records of exactly `RECORD_LEN` bytes, and what decodes
//! encodes back to the same bytes (every byte of a record is checked).
#![no_main]

use hftnet_wire::md::{RECORD_LEN, Record, RecordError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Record::decode(data) {
        Ok(r) => {
            assert_eq!(data.len(), RECORD_LEN);
            let mut out = [0u8; RECORD_LEN];
            assert_eq!(r.encode(&mut out), Ok(RECORD_LEN));
            assert_eq!(&out[..], data);
            let _ = r.symbol_str();
        }
        Err(RecordError::Length { len }) => assert_ne!(len, RECORD_LEN),
        Err(e) => {
            assert_eq!(data.len(), RECORD_LEN);
            let _ = e.to_string();
        }
    }
    // Encoding into any buffer either fits or says so.
    if let Ok(r) = Record::decode(data.get(..RECORD_LEN).unwrap_or(data)) {
        let mut short = vec![0u8; data.len() % RECORD_LEN];
        assert_eq!(
            r.encode(&mut short),
            Err(RecordError::BufferTooSmall { len: short.len() })
        );
    }
});
