//! The ITCH 5.0 file reader `hftnet replay` and the exchange use
//! (`ItchReader::from_reader`, what `ItchReader::open` does once the file is
//! open), on arbitrary bytes as a plain file, the same bytes gzip-compressed
//! (one member or two, as `MultiGzDecoder` reads concatenated members), and
//! the bytes as they are when they start like gzip. Nothing panics, and:
//! - plain or compressed, the reader returns exactly the records the wire
//!   splitter (`itch50::file::Records`) finds in the uncompressed bytes,
//!   then ends, or stops with the error at the offset the splitter stops at
//!   (a zero length: a bad record; a cut record: truncated, with the bytes
//!   left over), and counts the bytes it returned;
//! - on a hostile gzip stream it returns an error or records, never more
//!   bytes than deflate can expand the input to (1032:1), its memory fixed.
#![no_main]

use std::io::{Cursor, Write as _};

use flate2::Compression;
use flate2::write::GzEncoder;
use hftnet_apps::itch_file::{ItchReadError, ItchReader};
use hftnet_wire::Error;
use hftnet_wire::itch50::file;
use libfuzzer_sys::fuzz_target;

/// How a read ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Ok,
    BadRecord { offset: u64 },
    Truncated { offset: u64, left: usize },
    Read,
}

/// Every record of `bytes`, and how reading ended.
fn read_all(bytes: Vec<u8>) -> (Vec<Vec<u8>>, End, u64) {
    let mut r = ItchReader::from_reader(Cursor::new(bytes)).expect("a Cursor reads");
    let mut records = Vec::new();
    let mut total = 0u64;
    let end = loop {
        match r.next_record() {
            Ok(Some(m)) => {
                assert!(!m.is_empty());
                total += file::record_len(m.len()) as u64;
                records.push(m.to_vec());
            }
            Ok(None) => break End::Ok,
            Err(ItchReadError::BadRecord { offset, reason }) => {
                assert_eq!(reason, Error::Malformed);
                break End::BadRecord { offset };
            }
            Err(ItchReadError::Truncated { offset, left }) => {
                break End::Truncated { offset, left };
            }
            Err(ItchReadError::Read(_)) => break End::Read,
            Err(e) => panic!("unexpected {e}"),
        }
    };
    assert_eq!(r.consumed(), total);
    (records, end, total)
}

/// What the wire splitter finds in uncompressed bytes.
fn expected(data: &[u8]) -> (Vec<Vec<u8>>, End) {
    let mut recs = file::Records::new(data);
    let mut out = Vec::new();
    let mut end = End::Ok;
    for r in recs.by_ref() {
        match r {
            Ok(m) => out.push(m.to_vec()),
            Err(Error::Malformed) => {
                end = End::BadRecord { offset: 0 };
                break;
            }
            Err(Error::Truncated) => {
                end = End::Truncated { offset: 0, left: 0 };
                break;
            }
        }
    }
    let at = recs.offset();
    let end = match end {
        End::Ok => End::Ok,
        End::BadRecord { .. } => End::BadRecord { offset: at as u64 },
        _ => End::Truncated {
            offset: at as u64,
            left: data.len() - at,
        },
    };
    (out, end)
}

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(p).expect("to memory");
        out.extend(e.finish().expect("to memory"));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (want, want_end) = expected(data);

    // As a plain file (unless it starts like gzip: then it is read as one).
    let (got, end, total) = read_all(data.to_vec());
    if data.starts_with(&[0x1f, 0x8b]) {
        // A hostile gzip stream: bounded by deflate's ratio, never panics.
        assert!(total <= 1032 * data.len() as u64 + 1024);
    } else {
        assert_eq!(got, want);
        assert_eq!(end, want_end);
    }

    // Compressed, in one gzip member or two: the same records and end.
    let (got, end, _) = read_all(gzip(&[data]));
    assert_eq!(got, want);
    assert_eq!(end, want_end);
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (got, end, _) = read_all(gzip(&[&data[..cut], &data[cut..]]));
    assert_eq!(got, want);
    assert_eq!(end, want_end);

    // A compressed file cut short is an error, never a silently short day.
    let z = gzip(&[data]);
    let (got, end, _) = read_all(z[..z.len() - 1 - usize::from(data.len() % 8)].to_vec());
    assert!(got.len() <= want.len());
    assert_ne!(end, End::Ok, "a cut gzip stream must not read as complete");
});
