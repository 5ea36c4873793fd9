//! CPU hints that are not system calls but need an intrinsic: a software
//! prefetch.
//!
//! Layer: `hftnet-sys`, called on hot paths by crates that forbid `unsafe`
//! (a book walking its messages ahead of applying them). Invariants: a hint
//! never changes what the program computes and never faults, whatever the
//! address; on an architecture without the instruction it does nothing.
//!
//! # References
//! Intel SDM vol. 2, `PREFETCHh`; Intel optimization manual, "Software
//! prefetching".

/// Asks the CPU to bring the cache line holding `p` into every cache level
/// (`PREFETCHT0`), so that a load of it a few hundred cycles later hits.
///
/// A hint only: it reads nothing architecturally, so any address is
/// allowed (dangling, null, unmapped — the CPU drops such a prefetch), and
/// it does not order anything. A no-op off x86_64.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 needs SSE, part of the x86_64 baseline. It performs
    // no architectural memory access and cannot fault on any address, so no
    // validity requirement on `p` exists.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_address_is_a_valid_hint() {
        let v = [1u64; 8];
        prefetch(v.as_ptr());
        prefetch(std::ptr::null::<u8>());
        prefetch(usize::MAX as *const u8);
        prefetch(v.as_ptr().wrapping_add(1 << 40));
        assert_eq!(v.iter().sum::<u64>(), 8, "nothing changed");
    }
}
