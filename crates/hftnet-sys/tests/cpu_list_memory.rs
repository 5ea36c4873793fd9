//! A CPU list's parse takes memory bounded by the number of CPUs, not by
//! how many parts repeat a range: `"0-8191,"` repeated pushed 8192 numbers
//! per part before sorting them out (a 128 KiB command-line argument made
//! it allocate over a gigabyte).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, keeping the live and the peak number of bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's contract is the one of System.alloc.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the one of System.dealloc.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_list_repeating_the_whole_range_takes_bounded_memory() {
    let list = "0-8191,".repeat(2000) + "0";
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let before = LIVE.load(Ordering::Relaxed);
    let cpus = hftnet_sys::cpus::parse_cpu_list(&list).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert_eq!(cpus, (0..=8191).collect::<Vec<usize>>());
    // The result is 64 KiB; the old parse peaked above 128 MiB here.
    assert!(peak < 1 << 20, "parsing took {peak} bytes at its peak");
}
