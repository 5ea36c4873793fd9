//! The fault injector allocates its buffers when it is built and never
//! again: offering, polling and flushing many packets — dropped, duplicated,
//! reordered, delayed, overflowing — makes no allocation at all (a counting
//! global allocator, per thread, shared with the other allocation tests).

use hftnet_wire::faults::{FaultInjector, Faults};

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocs;

#[test]
fn the_steady_state_never_allocates() {
    let faults = Faults {
        loss: 0.05,
        duplicate: 0.05,
        reorder: 0.05,
        delay_ns: 2_000,
        jitter_ns: 3_000,
    };
    // 32 buffers for about 50 packets in flight: some overflow, on purpose.
    let mut f = FaultInjector::with_buffers(faults, 9, 256, 32).unwrap();
    let mut packet = [0u8; 300];
    let mut sent = 0u64;
    let before = allocs();
    for i in 0..100_000u64 {
        let now = i * 100;
        packet[..8].copy_from_slice(&i.to_le_bytes());
        let len = 8 + (i as usize % 292);
        f.offer(now, &packet[..len], &mut |_| sent += 1);
        if f.next_due().is_some_and(|d| d <= now + 50) {
            f.poll(now + 50, &mut |_| sent += 1);
        }
        if i % 10_000 == 0 {
            f.flush(&mut |_| sent += 1);
        }
    }
    f.flush(&mut |_| sent += 1);
    assert_eq!(allocs() - before, 0, "no allocation after construction");
    let st = f.stats();
    assert!(st.overflow > 0 && st.oversized > 0, "{st:?}");
    assert!(st.dropped > 0 && st.duplicated > 0 && st.reordered > 0 && st.delayed > 0);
    assert_eq!(st.packets - st.dropped - st.overflow + st.duplicated, sent);
}
