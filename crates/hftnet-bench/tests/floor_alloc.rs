//! The floor's measured loop does not allocate: a run of many more round
//! trips allocates exactly as often, across all its threads, as a short one
//! (thread start-up and the histogram are per run, not per round trip).
//! One test in this binary, so no other test's allocations are counted.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use hftnet_bench::clock::Clock;
use hftnet_bench::floor::{FloorConfig, cache_line_pingpong};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::all_allocs;

#[test]
fn no_allocation_per_round_trip() {
    let cpus = hftnet_sys::sched::allowed_cpus().unwrap_or_default();
    if cpus.len() < 2 {
        hftnet_lab::skip::skip(
            "no_allocation_per_round_trip",
            &format!("fewer than two allowed CPUs ({cpus:?})"),
        );
        return;
    }
    let clock = Clock::new();
    let stop = AtomicBool::new(false);
    let run = |samples: u64| {
        let cfg = FloorConfig {
            warmup: 100,
            max_samples: samples,
            ..FloorConfig::new(cpus[0], cpus[1], Duration::from_secs(60))
        };
        let before = all_allocs();
        let r = cache_line_pingpong(&cfg, clock, &stop).unwrap();
        let allocs = all_allocs() - before;
        assert_eq!(r.round_trips, samples);
        drop(r);
        allocs
    };
    let short = run(100);
    let long = run(100_000);
    assert_eq!(
        short, long,
        "the floor's allocations grew with the round trips"
    );
}
