//! The Internet checksum (RFC 1071): the ones' complement sum of 16-bit
//! big-endian words, used by the IPv4 header and by UDP.
//!
//! The functions here return *sums* — folded to 16 bits, not complemented —
//! so that partial sums over pieces can be joined with [`combine`]. A field
//! receives the complement of the final sum (`!sum`); a received packet is
//! intact when the sum over it, checksum field included, is `0xffff`.
//!
//! Sums over pieces join correctly only when every piece but the last has an
//! even length (an odd final byte is summed as if followed by a zero byte).
//!
//! Pure arithmetic: no allocation, no panics.

use core::net::Ipv4Addr;

use crate::ipv4::Protocol;

/// The ones' complement sum of `data` taken as big-endian 16-bit words, an
/// odd final byte padded with a zero byte; folded to 16 bits, not
/// complemented.
///
/// The sum runs over native-endian 32-bit words in a 64-bit accumulator and
/// is folded and byte-swapped once at the end (RFC 1071 §2: the sum does not
/// depend on byte order), which the compiler vectorises.
#[must_use]
pub fn data(data: &[u8]) -> u16 {
    // A block of 2^28 words below 2^32 each sums to less than 2^60, so the
    // inner loop needs no carry handling at all.
    const BLOCK: usize = 1 << 30;
    let mut acc: u64 = 0;
    for block in data.chunks(BLOCK) {
        let mut part: u64 = 0;
        let mut words = block.chunks_exact(4);
        for w in &mut words {
            part += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
        }
        let mut tail = words.remainder().chunks_exact(2);
        for w in &mut tail {
            part += u64::from(u16::from_ne_bytes([w[0], w[1]]));
        }
        if let [b] = tail.remainder() {
            // Big-endian, the odd byte is the high half of a word whose low
            // half is zero; in native order that is the word [b, 0].
            part += u64::from(u16::from_ne_bytes([*b, 0]));
        }
        acc = add_carry(acc, u64::from(fold(part)));
    }
    // The native-order sum is the big-endian sum with its bytes swapped on a
    // little-endian machine.
    u16::from_be(fold(acc))
}

/// The ones' complement sum of partial sums (each from [`data`],
/// [`pseudo_header_v4`] or a checksum field).
#[must_use]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|s| u64::from(*s)).sum())
}

/// The sum of the IPv4 pseudo-header that UDP and TCP checksums cover
/// (RFC 768): source and destination address, zero byte, protocol, and the
/// transport length (for UDP, its length field).
#[must_use]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: Protocol, length: u16) -> u16 {
    // A 32-bit word is congruent to the sum of its two halves modulo 0xffff.
    fold(
        u64::from(src.to_bits())
            + u64::from(dst.to_bits())
            + u64::from(u8::from(protocol))
            + u64::from(length),
    )
}

/// Adds with end-around carry.
#[inline]
fn add_carry(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    // After a carry `s` is at most 2^64 - 2, so adding it back cannot overflow.
    s + u64::from(carry)
}

/// Folds a sum to 16 bits with end-around carries. Never returns 0 for a
/// non-zero input, as ones' complement addition should.
#[inline]
fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s >> 16) + (s & 0xffff);
    }
    s as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 taken literally: one 16-bit big-endian word at a time.
    fn reference(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for w in data.chunks(2) {
            let hi = u32::from(w[0]) << 8;
            let lo = w.get(1).copied().map_or(0, u32::from);
            s += hi | lo;
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn test_rfc1071_example() {
        // RFC 1071 §3: these bytes sum to ddf2 (checksum 220d).
        let b = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&b), 0xddf2);
        assert_eq!(!data(&b), 0x220d);
        // Every split at an even offset gives the same total.
        for at in (0..=b.len()).step_by(2) {
            assert_eq!(combine(&[data(&b[..at]), data(&b[at..])]), 0xddf2);
        }
    }

    #[test]
    fn test_ipv4_header_example() {
        // The well-known worked example of the IPv4 header checksum:
        // 192.168.0.1 -> 192.168.0.199, UDP, total length 115, checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(data(&h), 0xffff, "an intact header sums to all ones");
        h[10] = 0;
        h[11] = 0;
        assert_eq!(!data(&h), 0xb861);
    }

    #[test]
    fn test_odd_and_empty() {
        assert_eq!(data(&[]), 0);
        assert_eq!(data(&[0xab]), 0xab00);
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(data(&[0xff; 7]), reference(&[0xff; 7]));
        // Carries wrap around: ffff + 0001 = 0001 in ones' complement.
        assert_eq!(data(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
        assert_eq!(combine(&[]), 0);
        assert_eq!(combine(&[0xffff, 0x0001]), 0x0001);
    }

    #[test]
    fn test_pseudo_header() {
        // 192.168.1.1 -> 192.168.1.2, UDP, length 12.
        let ph = [
            192, 168, 1, 1, 192, 168, 1, 2, 0, 17, 0, 12, // ...
        ];
        assert_eq!(
            pseudo_header_v4(
                Ipv4Addr::new(192, 168, 1, 1),
                Ipv4Addr::new(192, 168, 1, 2),
                Protocol::Udp,
                12
            ),
            data(&ph)
        );
    }

    #[test]
    fn test_large() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(data(&big), reference(&big));
        assert_eq!(data(&vec![0xff; 65_536]), 0xffff);
    }

    proptest! {
        #[test]
        fn matches_reference(bytes in proptest::collection::vec(any::<u8>(), 0..2048), skip in 0usize..8) {
            // `skip` moves the start off any alignment.
            let s = &bytes[skip.min(bytes.len())..];
            prop_assert_eq!(data(s), reference(s));
        }

        #[test]
        fn combine_splits(bytes in proptest::collection::vec(any::<u8>(), 0..512), at in 0usize..256) {
            let at = (at * 2).min(bytes.len() & !1);
            prop_assert_eq!(combine(&[data(&bytes[..at]), data(&bytes[at..])]), data(&bytes));
        }

        #[test]
        fn pseudo_matches_bytes(src in any::<u32>(), dst in any::<u32>(), proto in any::<u8>(), len in any::<u16>()) {
            let mut b = [0u8; 12];
            b[..4].copy_from_slice(&src.to_be_bytes());
            b[4..8].copy_from_slice(&dst.to_be_bytes());
            b[9] = proto;
            b[10..].copy_from_slice(&len.to_be_bytes());
            prop_assert_eq!(
                pseudo_header_v4(Ipv4Addr::from_bits(src), Ipv4Addr::from_bits(dst), Protocol::from(proto), len),
                data(&b)
            );
        }
    }
}
