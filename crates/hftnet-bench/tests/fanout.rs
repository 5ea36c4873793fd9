//! Fanout in a star lab: one multicast sender, receivers in their own
//! namespaces (or sockets in one), exact per-receiver counts. Needs root
//! (skipped with the reason otherwise, a failure in CI). Every run is bounded
//! by its count at a fixed rate plus the drain; the lab is removed on drop.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use hftnet_bench::clock::Clock;
use hftnet_bench::fanout::{FanoutConfig, FanoutOutcome, LabFanout, Placement, run_in_lab};

fn cfg(count: u64, rate: u64) -> FanoutConfig {
    FanoutConfig {
        count: Some(count),
        rate,
        warmup: 50,
        drain: Duration::from_secs(1),
        ..FanoutConfig::default()
    }
}

fn run(lab: &LabFanout, cfg: &FanoutConfig) -> FanoutOutcome {
    run_in_lab(lab, cfg, Clock::new(), &AtomicBool::new(false)).unwrap()
}

/// `n` receivers with room for a stall of the shared CI machine (4 MiB
/// receive buffers): the exact counts below are about the accounting, not
/// about how long a receiver thread may be off its CPU.
fn star(n: usize) -> LabFanout {
    let mut l = LabFanout::new(n);
    l.rx_params = "rcvbuf=4M".into();
    l
}

#[test]
fn four_namespaces_each_receive_every_message_once() {
    if hftnet_lab::skip_without_root("four_namespaces_each_receive_every_message_once") {
        return;
    }
    let out = run(&star(4), &cfg(2000, 4000));
    assert_eq!((out.sent, out.warmup_sent, out.send_errors), (2000, 50, 0));
    assert_eq!(out.aborted, None);
    assert_eq!(out.receivers.len(), 4);
    let mut netns = Vec::new();
    for (i, r) in out.receivers.iter().enumerate() {
        let s = &r.stats;
        assert_eq!(r.name, format!("rx{i}"));
        assert_eq!(
            (s.received, s.lost, s.duplicated, s.reordered),
            (2000, 0, 0, 0),
            "{r:?}"
        );
        assert_eq!((s.warmup_received, s.first_seq), (50, Some(0)), "{r:?}");
        assert_eq!((s.foreign, s.stale, r.corrupted, r.truncated), (0, 0, 0, 0));
        assert_eq!((r.recv_errors, r.injected_drops), (0, None));
        assert_eq!(s.one_way.len(), 2000);
        let sum = s.one_way_ns.unwrap();
        assert!(
            sum.min > 0 && sum.p50 <= sum.p99 && sum.p99 <= sum.max,
            "{sum:?}"
        );
        // 64-byte probes carry the send call's time too: one sample each.
        assert_eq!(s.from_send.len(), 2000);
        assert!(s.one_way_from_send_ns.is_some());
        netns.push(r.netns.clone().unwrap());
    }
    netns.dedup();
    assert_eq!(netns.len(), 4, "one namespace per receiver: {netns:?}");
    assert!(out.is_clean());
    let sp = out.spread().unwrap();
    let p99s: Vec<u64> = out
        .receivers
        .iter()
        .map(|r| r.stats.one_way_ns.unwrap().p99)
        .collect();
    assert_eq!(
        sp.p99,
        p99s.iter().max().unwrap() - p99s.iter().min().unwrap()
    );
    let slowest = out.slowest().unwrap();
    assert_eq!(
        slowest.stats.one_way_ns.unwrap().p99,
        *p99s.iter().max().unwrap()
    );
    for n in &netns {
        assert!(
            !std::path::Path::new("/run/netns").join(n).exists(),
            "{n} left behind"
        );
    }
}

#[test]
fn loss_is_counted_per_receiver_exactly() {
    if hftnet_lab::skip_without_root("loss_is_counted_per_receiver_exactly") {
        return;
    }
    let mut lab = star(4);
    lab.group = "239.1.1.2:9401".parse().unwrap();
    // rx2 drops a tenth of what arrives (seeded), the others nothing.
    lab.receiver_params = vec![(2, "loss=0.1&faults_on=rx&seed=7".into())];
    let out = run(&lab, &cfg(2000, 4000));
    assert_eq!(out.sent, 2000);
    for (i, r) in out.receivers.iter().enumerate() {
        let s = &r.stats;
        assert_eq!(s.received + s.lost, out.sent, "rx{i}: {r:?}");
        assert_eq!((s.duplicated, s.foreign, r.corrupted), (0, 0, 0), "rx{i}");
        if i == 2 {
            let injected = r.injected_drops.expect("rx2 has a fault layer");
            // Every probe the layer dropped, warm-up or measured, is missing
            // at rx2, and nothing else is.
            let missing = s.lost + (out.warmup_sent - s.warmup_received);
            assert_eq!(missing, injected, "{r:?}");
            // 2050 draws at p = 0.1: 205 expected; far outside this is a bug.
            assert!((120..=300).contains(&injected), "{injected}");
            assert_eq!(s.one_way.len(), s.received);
        } else {
            assert_eq!(
                (s.received, s.lost, r.injected_drops),
                (2000, 0, None),
                "rx{i}"
            );
        }
    }
    assert!(!out.is_clean());
}

#[test]
fn sockets_in_one_namespace_each_get_a_copy() {
    if hftnet_lab::skip_without_root("sockets_in_one_namespace_each_get_a_copy") {
        return;
    }
    let mut lab = star(3);
    lab.placement = Placement::Sockets;
    lab.group = "239.1.1.3:9402".parse().unwrap();
    lab.receiver_params = vec![(0, "loss=0.2&faults_on=rx&seed=3".into())];
    let out = run(&lab, &cfg(1000, 4000));
    let netns: Vec<&str> = out
        .receivers
        .iter()
        .map(|r| r.netns.as_deref().unwrap())
        .collect();
    assert!(netns.iter().all(|n| *n == netns[0]), "{netns:?}");
    let r0 = &out.receivers[0];
    assert_eq!(
        r0.stats.lost + (out.warmup_sent - r0.stats.warmup_received),
        r0.injected_drops.unwrap()
    );
    assert!(r0.stats.lost > 0);
    for r in &out.receivers[1..] {
        assert_eq!(
            (r.stats.received, r.stats.lost, r.stats.duplicated),
            (1000, 0, 0)
        );
    }
}

#[test]
fn a_late_joiner_misses_exactly_what_came_before_it_joined() {
    if hftnet_lab::skip_without_root("a_late_joiner_misses_exactly_what_came_before_it_joined") {
        return;
    }
    let mut lab = star(3);
    lab.group = "239.1.1.4:9403".parse().unwrap();
    lab.join_late = vec![(1, 1000)];
    let out = run(&lab, &cfg(2000, 4000));
    assert_eq!((out.sent, out.warmup_sent), (2000, 50));
    let late = &out.receivers[1];
    let s = &late.stats;
    let joined = late.joined_at_seq.expect("rx1 joined late");
    assert!(joined >= 1000, "{late:?}");
    // Probes in flight when it joined may still reach it, none much older
    // (how soon after its join the first one is read depends on the
    // machine: not bounded here).
    let first = s.first_seq.unwrap();
    assert!(first >= 950, "{late:?}");
    // From its first probe on it has every one: what it lost is exactly
    // what came before (warm-up apart).
    assert_eq!(s.warmup_received, 0);
    assert_eq!(s.lost, first - 50, "{late:?}");
    assert_eq!(s.received + s.lost, out.sent);
    assert_eq!((s.duplicated, s.reordered), (0, 0));
    for r in [&out.receivers[0], &out.receivers[2]] {
        assert_eq!(
            (r.stats.received, r.stats.lost, r.joined_at_seq),
            (2000, 0, None)
        );
    }
}
