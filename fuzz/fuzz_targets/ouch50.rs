//! OUCH 5.0 on arbitrary bytes, read as an inbound and as an outbound
//! message and as a bare appendage: parsing never panics, every error is the
//! one its bytes call for (a short buffer is `Truncated` with the length it
//! needs, a long one `Length`, an unknown type `UnknownType`), what parses
//! emits back to exactly the same bytes and re-parses equal, and a parsed
//! appendage rebuilt option by option with the builder is the same bytes.
#![no_main]

use hftnet_wire::ouch50::{
    EnterOrder, Error, InboundMessage, InboundType, OptionsIter, OrderExecuted, Options,
    OutboundMessage, OutboundType,
};
use libfuzzer_sys::fuzz_target;

/// The checks common to both directions, given the direction's parse
/// result, its re-parse, and its type table.
fn check<M: PartialEq + core::fmt::Debug>(
    data: &[u8],
    parsed: Result<M, Error>,
    emit: impl Fn(&M, &mut [u8]) -> Result<usize, Error>,
    reparse: impl Fn(&[u8]) -> Result<M, Error>,
    fixed_len: Option<usize>,
) {
    match parsed {
        Ok(m) => {
            let mut out = [0u8; 512];
            let n = emit(&m, &mut out).expect("a parsed message fits 512 bytes");
            // Every field keeps its wire value and the length is exact, so
            // the bytes come back as sent.
            assert_eq!(&out[..n], data);
            assert_eq!(reparse(&out[..n]).as_ref(), Ok(&m));
            assert_eq!(
                emit(&m, &mut out[..n - 1]),
                Err(Error::BufferTooSmall { need: n, len: n - 1 })
            );
        }
        Err(Error::Empty) => assert!(data.is_empty()),
        Err(Error::UnknownType { msg_type }) => {
            assert_eq!(msg_type, data[0]);
            assert!(fixed_len.is_none());
        }
        Err(Error::Truncated { msg_type, len, need }) => {
            assert_eq!(msg_type, data[0]);
            assert_eq!(len, data.len());
            assert!(len < need);
            assert!(need >= fixed_len.expect("a known type"));
        }
        Err(Error::Length { len, expected, .. }) => {
            assert_eq!(len, data.len());
            assert!(len > expected);
        }
        Err(
            Error::InvalidField { .. }
            | Error::OptionTruncated { .. }
            | Error::OptionLength { .. }
            | Error::AppendageTooLong { .. },
        ) => assert!(data.len() >= fixed_len.expect("a known type")),
        Err(e @ (Error::WrongType { .. } | Error::BufferTooSmall { .. } | Error::OutOfRange)) => {
            panic!("parse cannot fail with {e:?}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let t = data.first().copied().unwrap_or(0);

    check(
        data,
        InboundMessage::parse(data),
        InboundMessage::emit,
        InboundMessage::parse,
        InboundType::from_byte(t).map(InboundType::fixed_len),
    );
    check(
        data,
        OutboundMessage::parse(data),
        OutboundMessage::emit,
        OutboundMessage::parse,
        OutboundType::from_byte(t).map(OutboundType::fixed_len),
    );

    // The hot-path views: once new_checked accepted the bytes, no getter
    // panics, whatever they are.
    if let Ok(v) = EnterOrder::new_checked(data) {
        let _ = (
            v.user_ref_num(),
            v.side(),
            v.quantity(),
            v.symbol(),
            v.price(),
            v.time_in_force(),
            v.display(),
            v.capacity(),
            v.intermarket_sweep(),
            v.cross_type(),
            v.cl_ord_id().number(),
            v.options(),
        );
        assert!(v.message_len() <= data.len());
        assert!(OptionsIter::new(v.appendage()).count() <= v.appendage().len());
    }
    if let Ok(v) = OrderExecuted::new_checked(data) {
        let _ = (
            v.timestamp(),
            v.user_ref_num(),
            v.quantity(),
            v.price().to_string(),
            v.liquidity_flag().description(),
            v.match_number(),
            v.options(),
        );
        assert!(v.message_len() <= data.len());
    }

    // The bytes as an appendage: what parses rebuilds to the same bytes with
    // the builder, and the zero-copy iterator agrees with the parse.
    match Options::parse(data) {
        Ok(o) => {
            assert_eq!(o.as_bytes(), data);
            let mut rebuilt = Options::new();
            for v in o.iter() {
                rebuilt.push(v).expect("a parsed option fits again");
            }
            assert_eq!(rebuilt, o);
            assert!(OptionsIter::new(data).all(|e| e.is_ok()));
        }
        Err(Error::AppendageTooLong { len }) => {
            assert_eq!(len, data.len());
            assert!(len > Options::CAPACITY);
        }
        Err(e) => {
            assert_eq!(OptionsIter::new(data).find_map(Result::err), Some(e));
        }
    }
});
