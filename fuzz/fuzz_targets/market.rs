//! ITCH messages applied to the books: arbitrary message sequences (raw
//! bytes, or well-formed order messages synthesized from a compact
//! description so the fuzzer reaches deep book states) never panic, every
//! message is counted once, and the book stays internally consistent.
#![no_main]

use hftnet_trade::book::BookConfig;
use hftnet_trade::market::MarketData;
use libfuzzer_sys::fuzz_target;

/// A well-formed order message from 12 bytes of description.
fn synth(d: &[u8]) -> Vec<u8> {
    let locate = u16::from(d[1] % 4);
    let order_ref = u64::from(d[2] % 32) + 1;
    let new_ref = u64::from(d[3] % 32) + 1;
    let shares = u32::from(u16::from_be_bytes([d[4], d[5]]) % 500);
    let price = 10_000 + u32::from(d[6] % 16) * 100;
    let side = if d[7] & 1 == 0 { b'B' } else { b'S' };
    let mut m = vec![0u8; 11];
    m[1..3].copy_from_slice(&locate.to_be_bytes());
    match d[0] % 7 {
        0 => {
            m[0] = b'A';
            m.extend_from_slice(&order_ref.to_be_bytes());
            m.push(side);
            m.extend_from_slice(&shares.to_be_bytes());
            m.extend_from_slice(b"FUZZ    ");
            m.extend_from_slice(&price.to_be_bytes());
        }
        1 => {
            m[0] = b'E';
            m.extend_from_slice(&order_ref.to_be_bytes());
            m.extend_from_slice(&shares.to_be_bytes());
            m.extend_from_slice(&7u64.to_be_bytes());
        }
        2 => {
            m[0] = b'X';
            m.extend_from_slice(&order_ref.to_be_bytes());
            m.extend_from_slice(&shares.to_be_bytes());
        }
        3 => {
            m[0] = b'D';
            m.extend_from_slice(&order_ref.to_be_bytes());
        }
        4 => {
            m[0] = b'U';
            m.extend_from_slice(&order_ref.to_be_bytes());
            m.extend_from_slice(&new_ref.to_be_bytes());
            m.extend_from_slice(&shares.to_be_bytes());
            m.extend_from_slice(&price.to_be_bytes());
        }
        5 => {
            m[0] = b'H';
            m.extend_from_slice(b"FUZZ    ");
            m.push(b"HPQTZ"[usize::from(d[8] % 5)]);
            m.push(b' ');
            m.extend_from_slice(b"    ");
        }
        _ => {
            m[0] = b'R';
            m.extend_from_slice(&[b'S', b'Y', b'M', b'0' + d[9] % 4, b' ', b' ', b' ', b' ']);
            m.resize(39, b' ');
        }
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let cfg = BookConfig {
        max_orders: 64,
        max_locates: 8,
        ref_window: 4096,
        ref_window_prealloc: 4096,
        levels_per_side: 4,
        ..BookConfig::default()
    };
    let mut md = MarketData::new(cfg).expect("valid config");
    let mut rest = data;
    let mut handled = 0u64;
    let mut updates = 0u64;
    while let Some((&tag, tail)) = rest.split_first() {
        let msg: Vec<u8> = if tag & 0x80 == 0 {
            // Raw message of `tag` bytes.
            let n = usize::from(tag).min(tail.len());
            let (m, t) = tail.split_at(n);
            rest = t;
            m.to_vec()
        } else if tail.len() >= 12 {
            let (d, t) = tail.split_at(12);
            rest = t;
            synth(d)
        } else {
            break;
        };
        let change = md.handle_with(&msg, &mut |u| {
            updates += 1;
            assert_eq!(u.change.is_empty(), false);
        });
        let _ = change;
        handled += 1;
        assert_eq!(md.counts().total(), handled, "every message counted once");
    }
    assert!(updates <= handled);
    if let Err(e) = md.book().check_invariants() {
        panic!("book inconsistent after {handled} messages: {e}");
    }
});
