//! Zero heap allocations per message in `hftnet replay`, on one thread and
//! on two: a whole replay (set-up, loop, summary and report) of a day twenty
//! times longer allocates exactly as often, plain or gzip, mapped or read,
//! with every check. Counted for the whole process (the second thread's
//! allocations too), so this binary holds this one test: nothing else runs
//! while it counts.

use hftnet_apps::exchange::ExchangeConfig;
use hftnet_apps::market::BookCheck;
use hftnet_apps::replay::{ReplayConfig, replay};

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::all_allocs;

/// A written day in the temporary directory, removed on drop.
struct Day(std::path::PathBuf);

impl Drop for Day {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_day(name: &str, messages: u64) -> Day {
    let path =
        std::env::temp_dir().join(format!("apps-replay-alloc-{}-{name}", std::process::id()));
    let cfg = ExchangeConfig {
        messages: Some(messages),
        ..ExchangeConfig::default()
    };
    hftnet_apps::exchange::write_day(&cfg, &path).unwrap();
    Day(path)
}

/// Allocations of one whole replay, and its messages.
fn replay_allocs(day: &Day, map: bool, check: BookCheck, threads: usize) -> (u64, u64) {
    let cfg = ReplayConfig {
        map,
        check,
        threads,
        ..ReplayConfig::new(day.0.clone())
    };
    let before = all_allocs();
    let r = replay(&cfg).unwrap();
    let n = all_allocs() - before;
    assert_eq!(r.error, None);
    assert_eq!(r.mapped, map);
    assert_eq!(r.threads, threads);
    assert_eq!(r.market.book.invariants.ok, check != BookCheck::Off);
    (n, r.messages)
}

#[test]
fn replay_allocates_nothing_per_message_on_one_thread_or_two() {
    for name in ["day.itch", "day.itch.gz"] {
        let short = write_day(&format!("short-{name}"), 2_000);
        let long = write_day(&format!("long-{name}"), 40_000);
        for threads in [1, 2] {
            for map in [true, false] {
                if map && name.ends_with(".gz") {
                    continue; // gzip is never mapped
                }
                for check in [BookCheck::Fast, BookCheck::Full, BookCheck::Off] {
                    let (a, n) = replay_allocs(&short, map, check, threads);
                    let (b, m) = replay_allocs(&long, map, check, threads);
                    assert!(m > 15 * n, "{m} vs {n}");
                    eprintln!(
                        "{name} threads={threads} map={map} {check:?}: {n} messages {a} allocations, {m} messages {b}"
                    );
                    assert_eq!(
                        a, b,
                        "{name} threads={threads} map={map} {check:?}: allocations grew with the messages"
                    );
                }
            }
        }
    }
}
