//! Memory made resident when it is allocated, not on the hot path.

/// A vector of `n` copies of `value` whose pages are all written now.
///
/// `vec![value; n]` of an all-zero `value` is `calloc`, whose fresh pages
/// stay unmapped (or the shared zero page) until first written: each first
/// write on the hot path then takes a page fault (and a copy-on-write of
/// the zero page, which flushes the TLB of every CPU the process runs on).
/// Here every element is written again after `black_box`, which the
/// compiler must assume changed the vector (a plain fill of a fresh zeroed
/// allocation would be fused into the `calloc`): one plain fault per page,
/// now. (A value that is not zero is written twice: a pass at allocation.)
pub(crate) fn resident_vec<T: Copy>(value: T, n: usize) -> Vec<T> {
    let mut v = vec![value; n];
    std::hint::black_box(&mut v);
    v.fill(value);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minor page faults of this thread so far (other tests run on other
    /// threads of the process).
    fn minor_faults() -> u64 {
        let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // After the command name's closing parenthesis: state is field 3,
        // minflt field 10.
        let rest = &s[s.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(7).unwrap().parse().unwrap()
    }

    #[test]
    fn holds_the_value_everywhere() {
        for v in [0u32, 7] {
            let x = resident_vec(v, 100_000);
            assert_eq!(x.len(), 100_000);
            assert!(x.iter().all(|&e| e == v));
        }
        assert!(resident_vec(0u8, 0).is_empty());
    }

    /// Faults of writing one byte per page of `x` (allocated just before).
    fn faults_writing(x: Vec<u8>) -> u64 {
        let before = minor_faults();
        let mut x = std::hint::black_box(x);
        for i in (0..x.len()).step_by(4096) {
            x[i] = 1;
        }
        let faults = minor_faults() - before;
        assert_eq!(std::hint::black_box(&x)[4096], 1);
        faults
    }

    #[test]
    fn its_pages_are_written_at_allocation() {
        // 64 MiB: far above the allocator's mmap threshold, so fresh pages.
        const N: usize = 64 << 20;
        let plain = faults_writing(vec![0u8; N]);
        let resident = faults_writing(resident_vec(0u8, N));
        // A plain zeroed vector faults on its first writes (a page each,
        // fewer with transparent huge pages); a resident one took them at
        // allocation.
        assert!(
            plain >= 16 && resident * 8 < plain,
            "writing after allocation: {resident} faults resident, {plain} plain"
        );
    }
}
