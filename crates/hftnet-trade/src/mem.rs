//! Memory made resident when it is allocated, not on the hot path.

/// A vector of `n` copies of `value` whose pages are all written now.
///
/// `vec![value; n]` of an all-zero `value` is `calloc`, whose fresh pages
/// stay unmapped (or the shared zero page) until first written: each first
/// write on the hot path then takes a page fault (and a copy-on-write of
/// the zero page, which flushes the TLB of every CPU the process runs on).
/// Here the values are written again after `black_box`, which the compiler
/// must assume changed them (a plain fill of a fresh zeroed allocation would
/// be fused into the `calloc`): one plain fault per page, now. A value that
/// is not zero is written by `vec!` already.
pub(crate) fn resident_vec<T: Copy>(value: T, n: usize, value_is_zero: bool) -> Vec<T> {
    let mut v = vec![value; n];
    if value_is_zero {
        std::hint::black_box(&mut v);
        v.fill(value);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_value_everywhere() {
        for (v, zero) in [(0u32, true), (7u32, false)] {
            let x = resident_vec(v, 100_000, zero);
            assert_eq!(x.len(), 100_000);
            assert!(x.iter().all(|&e| e == v));
        }
        assert!(resident_vec(0u8, 0, true).is_empty());
    }
}
