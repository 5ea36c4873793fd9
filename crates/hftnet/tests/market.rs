//! The market-data commands end to end: `exchange` and `feed` in two lab
//! namespaces over multicast with loss, duplication and reordering injected
//! on both feeds; the same over loopback with recovery off (loss must be
//! reported); `feed --publish shm://NAME` publishing every record to a
//! subscriber in this process; `exchange --write` and `replay` agreeing on
//! a file; bad input.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hftnet_lab::Lab;
use serde_json::Value;

mod common;

use common::{BIN, Proc, finish, run_in, skip_without_root, spawn, spawn_in};

fn json_of(out: &Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} did not print one JSON object ({e}): stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn hftnet(args: &[&str]) -> Output {
    finish(
        spawn(args),
        Duration::from_secs(120),
        &format!("hftnet {args:?}"),
    )
}

/// The feed built exactly what the exchange published.
fn assert_same_market(exchange: &Value, feed: &Value) {
    let messages = exchange["messages"].as_u64().unwrap();
    assert!(messages > 1_000, "{exchange}");
    assert_eq!(feed["lost"], 0, "feed: {feed}");
    assert_eq!(feed["delivered"].as_u64(), Some(messages), "feed: {feed}");
    assert_eq!(feed["end_of_session"].as_u64(), Some(messages + 1));
    assert_eq!(
        feed["stream_digest"], exchange["stream_digest"],
        "message for message"
    );
    assert_eq!(feed["counts"], exchange["counts"]);
    assert_eq!(
        feed["book"]["digest"], exchange["book"]["digest"],
        "book for book"
    );
    assert_eq!(feed["book"]["live_orders"], exchange["book"]["live_orders"]);
    assert_eq!(feed["book"]["invariants"]["ok"], true);
    assert!(
        feed["top_updates"].as_u64().unwrap() > 0,
        "the strategy hook ran"
    );
    // The feed's sustained rate and its time per packet.
    let rate = feed["messages_per_sec"].as_u64().unwrap();
    let seconds = feed["seconds"].as_f64().unwrap();
    assert!(rate > 0 && seconds > 0.0, "{feed}");
    for k in ["p50", "p99", "p99_9", "max"] {
        assert!(feed["handle_packet_ns"][k].is_u64(), "{k}: {feed}");
    }
}

#[test]
fn exchange_and_feed_over_multicast_with_faults() {
    if skip_without_root("exchange_and_feed_over_multicast_with_faults") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let a = "mcast://239.1.1.1:30001?iface=veth0&rcvbuf=4M";
    let b = "mcast://239.1.1.2:30002?iface=veth0&rcvbuf=4M";
    let feed = spawn_in(
        lab.trader(),
        &[
            "feed",
            "--feed-a",
            a,
            "--feed-b",
            b,
            "--retransmit",
            "udp://198.18.0.2:30003",
            "--idle-timeout",
            "20s",
            "--duration",
            "90s",
            "--json",
        ],
    );
    // The feed starts from sequence 1: whatever it misses while it joins is
    // re-requested, so there is nothing to wait for.
    let exchange = run_in(
        lab.exchange(),
        &[
            "exchange",
            // The reference books, compared with the feed's.
            "--book",
            "--feed-a",
            "mcast://239.1.1.1:30001?iface=veth0",
            "--feed-b",
            "mcast://239.1.1.2:30002?iface=veth0",
            "--retransmit",
            "udp://198.18.0.2:30003",
            // Multicast subscribers are unknown to the exchange: the
            // trader host is named.
            "--allow",
            "198.18.0.1",
            "--messages",
            "30000",
            "--rate",
            "100000",
            "--loss-a",
            "0.03",
            "--loss-b",
            "0.03",
            "--dup-a",
            "0.01",
            "--dup-b",
            "0.01",
            "--reorder-a",
            "0.01",
            "--reorder-b",
            "0.01",
            "--heartbeat",
            "50ms",
            "--linger",
            "3s",
            "--json",
        ],
        Duration::from_secs(90),
    );
    assert!(
        exchange.status.success(),
        "{}",
        String::from_utf8_lossy(&exchange.stderr)
    );
    let ex = json_of(&exchange, "exchange");
    let fd = finish(feed, Duration::from_secs(100), "feed");
    let fj = json_of(&fd, "feed");
    assert!(
        fd.status.success(),
        "feed: {fj} {}",
        String::from_utf8_lossy(&fd.stderr)
    );
    assert_same_market(&ex, &fj);
    // The faults happened, reached the feed handler and were repaired.
    for line in ["a", "b"] {
        for fault in ["dropped", "duplicated", "reordered"] {
            assert!(
                ex["faults"][line][fault].as_u64().unwrap() > 0,
                "{fault}: {ex}"
            );
        }
        assert!(fj[line]["gaps"].as_u64().unwrap() > 0, "{fj}");
    }
    // Every message received is accounted for exactly once: delivered, or
    // dropped as a duplicate (B repeats A, plus the injected copies).
    let n = |src: &str, k: &str| fj[src][k].as_u64().unwrap();
    let received: u64 = ["a", "b", "retransmission"]
        .iter()
        .map(|s| n(s, "messages"))
        .sum();
    let dropped: u64 = ["a", "b", "retransmission"]
        .iter()
        .map(|s| n(s, "duplicates") + n(s, "late") + n(s, "before_start") + n(s, "after_end"))
        .sum();
    assert_eq!(
        received,
        fj["delivered"].as_u64().unwrap() + dropped,
        "{fj}"
    );
    assert!(
        n("a", "duplicates") + n("b", "duplicates") > fj["delivered"].as_u64().unwrap() / 2,
        "{fj}"
    );
    assert_eq!(fj["unresolved"], 0);
    assert_eq!(fj["stopped"], "end of session");
    // Every re-request came from the allowed trader, within its limit.
    let rt = &ex["retransmission"];
    assert_eq!(rt["allowed"], serde_json::json!(["198.18.0.1"]), "{ex}");
    // Re-requests happen only when A and B lose the same message (1% each,
    // by chance): when the feed sent some, the exchange answered them.
    if fj["requests"].as_u64().unwrap() > 0 {
        assert!(rt["requests"].as_u64().unwrap() > 0, "{ex} {fj}");
    }
    for k in [
        "not_allowed",
        "rate_limited",
        "too_many_sources",
        "total_limited",
    ] {
        assert_eq!(rt["refusals"][k], 0, "{k}: {ex}");
    }
}

#[test]
fn loss_on_both_feeds_without_recovery_is_reported() {
    let a = "udp://127.0.0.1:31101";
    let b = "udp://127.0.0.1:31102";
    let feed = spawn(&[
        "feed",
        "--feed-a",
        a,
        "--feed-b",
        b,
        "--no-recovery",
        "--idle-timeout",
        "10s",
        "--json",
    ]);
    std::thread::sleep(Duration::from_millis(300)); // bound before the first packet
    let exchange = hftnet(&[
        "exchange",
        "--feed-a",
        a,
        "--feed-b",
        b,
        "--messages",
        "5000",
        "--rate",
        "50000",
        "--loss-a",
        "1",
        "--loss-b",
        "0.05",
        "--heartbeat",
        "20ms",
        "--linger",
        "500ms",
        "--json",
    ]);
    assert!(
        exchange.status.success(),
        "{}",
        String::from_utf8_lossy(&exchange.stderr)
    );
    let ex = json_of(&exchange, "exchange");
    let fd = finish(feed, Duration::from_secs(60), "feed");
    let fj = json_of(&fd, "feed");
    assert_eq!(fd.status.code(), Some(1), "loss gives exit code 1: {fj}");
    let err = String::from_utf8_lossy(&fd.stderr);
    assert!(
        err.contains("lost for good") && err.contains("recovery is off"),
        "{err}"
    );
    let messages = ex["messages"].as_u64().unwrap();
    // Without --book the exchange keeps no books, only the counts and the
    // stream digest.
    assert_eq!(ex["book"], Value::Null, "{ex}");
    assert_eq!(ex["counts"]["total"].as_u64(), Some(messages), "{ex}");
    assert!(ex["stream_digest"].is_string(), "{ex}");
    let lost = fj["lost"].as_u64().unwrap();
    assert!(lost > 0, "{fj}");
    assert_eq!(fj["delivered"].as_u64().unwrap() + lost, messages, "{fj}");
    assert!(!fj["lost_ranges"].as_array().unwrap().is_empty());
    assert_eq!(fj["requests"], 0);
    assert_eq!(fj["a"]["packets"], 0, "feed A lost everything");
}

#[test]
fn a_feed_stopped_before_recovery_says_what_is_unresolved() {
    let a = "udp://127.0.0.1:31111";
    let b = "udp://127.0.0.1:31112";
    let feed = spawn(&[
        "feed",
        "--feed-a",
        a,
        "--feed-b",
        b,
        // A re-request server nobody runs, answers never come.
        "--retransmit",
        "udp://127.0.0.1:31113",
        "--request-timeout",
        "30s",
        "--duration",
        "3s",
        "--json",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let exchange = hftnet(&[
        "exchange",
        "--feed-a",
        a,
        "--feed-b",
        b,
        "--messages",
        "3000",
        "--rate",
        "50000",
        "--loss-a",
        "1",
        "--loss-b",
        "0.2",
        "--linger",
        "0s",
        "--json",
    ]);
    assert!(
        exchange.status.success(),
        "{}",
        String::from_utf8_lossy(&exchange.stderr)
    );
    let fd = finish(feed, Duration::from_secs(30), "feed");
    let fj = json_of(&fd, "feed");
    assert_eq!(fd.status.code(), Some(1), "{fj}");
    let unresolved = fj["unresolved"].as_u64().unwrap();
    assert!(unresolved > 0, "{fj}");
    assert_eq!(
        fj["delivered"].as_u64().unwrap() + fj["lost"].as_u64().unwrap() + unresolved,
        fj["highest_seen"].as_u64().unwrap(),
        "every sequence seen is delivered, lost or unresolved: {fj}"
    );
    let err = String::from_utf8_lossy(&fd.stderr);
    assert!(err.contains("neither delivered nor declared lost"), "{err}");
}

/// A shared-memory ring name unique to this process; its file is removed on
/// drop, also when the test fails.
struct Ring(String);

impl Drop for Ring {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(hftnet_io::shm::path_of(
            std::path::Path::new(hftnet_io::shm::DEFAULT_DIR),
            &self.0,
        ));
    }
}

#[test]
fn feed_publishes_every_record_to_a_subscriber_over_shm() {
    use hftnet_apps::md_subscriber::{MdSubscriber, SubscriberConfig, SubscriberStop};
    use hftnet_io::{Endpoint, OneWay, Role, dispatch};

    let ring = Ring(format!("cli-md-{}", std::process::id()));
    let (a, b, rr) = (
        "udp://127.0.0.1:31131",
        "udp://127.0.0.1:31132",
        "udp://127.0.0.1:31133",
    );
    // The subscriber first: it waits for the ring and reads it from its
    // first record. Bounded by its idle timeout and duration.
    let mut reader = Endpoint::parse(&format!("shm://{}", ring.0))
        .unwrap()
        .one_way(OneWay::Subscribe)
        .open(Role::Server)
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let sub = s.spawn(|| {
            let mut sub = MdSubscriber::new(SubscriberConfig {
                idle_timeout: Duration::from_secs(30),
                duration: Some(Duration::from_secs(100)),
                ..SubscriberConfig::default()
            });
            dispatch!(&mut reader, t => sub.run(t, &stop));
            sub.report()
        });
        let publish = format!("shm://{}?slots=65536&size=64", ring.0);
        let feed = spawn(&[
            "feed",
            "--feed-a",
            a,
            "--feed-b",
            b,
            "--retransmit",
            rr,
            "--publish",
            &publish,
            "--idle-timeout",
            "10s",
            "--duration",
            "90s",
            "--json",
        ]);
        std::thread::sleep(Duration::from_millis(300)); // bound before the first packet
        let exchange = hftnet(&[
            "exchange",
            "--feed-a",
            a,
            "--feed-b",
            b,
            "--retransmit",
            rr,
            "--book",
            "--messages",
            "20000",
            "--rate",
            "50000",
            "--loss-a",
            "0.02",
            "--loss-b",
            "0.02",
            "--heartbeat",
            "20ms",
            "--linger",
            "1s",
            "--json",
        ]);
        assert!(
            exchange.status.success(),
            "{}",
            String::from_utf8_lossy(&exchange.stderr)
        );
        let ex = json_of(&exchange, "exchange");
        let fd = finish(feed, Duration::from_secs(60), "feed");
        let fj = json_of(&fd, "feed");
        if !fd.status.success() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let r = sub.join().unwrap();
        assert!(
            fd.status.success(),
            "feed: {fj} {}",
            String::from_utf8_lossy(&fd.stderr)
        );
        assert_same_market(&ex, &fj);
        let p = &fj["publish"];
        let n = |k: &str| p[k].as_u64().unwrap_or_else(|| panic!("publish.{k}: {fj}"));
        assert_eq!(p["uri"].as_str(), Some(publish.as_str()));
        assert_eq!(n("errors"), 0, "{fj}");
        assert_eq!(n("top_of_book"), fj["top_updates"].as_u64().unwrap());
        assert_eq!(n("records"), n("top_of_book") + n("trades") + n("end"));
        assert_eq!(n("end"), 1);
        let c = |k: &str| ex["counts"][k].as_u64().unwrap_or(0);
        assert_eq!(
            n("trades"),
            c("order_executed") + c("order_executed_with_price") + c("trade"),
            "one trade record per execution: {ex}"
        );
        for k in ["p50", "p90", "p99", "p99_9", "max"] {
            assert!(p["receive_to_publish_ns"][k].as_u64().is_some(), "{fj}");
        }
        assert_eq!(p["rx_stamp"], "handler", "{fj}");
        // Everything published was received, in order, nothing missed.
        assert_eq!(r.stopped, SubscriberStop::EndOfStream, "{r:#?}");
        assert_eq!(r.first_sequence, Some(1), "{r:#?}");
        assert_eq!(r.last_sequence, Some(n("records")), "{r:#?}");
        assert_eq!(r.received, n("records"), "{r:#?}");
        assert_eq!((r.gaps, r.missed, r.late, r.malformed), (0, 0, 0, 0));
        assert_eq!(r.records.top_of_book, n("top_of_book"));
        assert_eq!(r.records.trades, n("trades"));
        assert_eq!(r.clock_inversions, 0, "one machine, one CLOCK_MONOTONIC");
        assert!(r.end_to_end_ns.is_some() && r.publish_to_receive_ns.is_some());
    });
    // The feed's ring went with its process.
    let path = hftnet_io::shm::path_of(std::path::Path::new(hftnet_io::shm::DEFAULT_DIR), &ring.0);
    assert!(!path.exists(), "{} left behind", path.display());
}

#[test]
fn written_file_replays_to_the_same_books() {
    let dir = std::env::temp_dir().join(format!("hftnet-market-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["day.itch", "day.itch.gz"] {
        let path = dir.join(name);
        let p = path.to_str().unwrap();
        let w = hftnet(&[
            "exchange",
            "--write",
            p,
            "--messages",
            "20000",
            "--symbols",
            "12",
            "--seed",
            "5",
            "--json",
        ]);
        assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
        let wj = json_of(&w, "exchange --write");
        // Both thread counts, whatever this machine's default.
        let one = json_of(
            &hftnet(&["replay", p, "--json", "--top", "3", "--threads", "1"]),
            "replay --threads 1",
        );
        let r = hftnet(&["replay", p, "--json", "--top", "3", "--threads", "2"]);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let rj = json_of(&r, "replay");
        for key in ["messages", "counts", "stream_digest", "book", "top_of_book"] {
            assert_eq!(rj[key], one[key], "{name}: {key}");
        }
        assert_eq!(
            (one["threads"].as_u64(), rj["threads"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(rj["gzip"], name.ends_with(".gz"));
        assert_eq!(rj["messages"], wj["records"]);
        assert_eq!(rj["counts"], wj["counts"]);
        assert_eq!(rj["stream_digest"], wj["stream_digest"]);
        assert_eq!(rj["book"], wj["book"]);
        assert_eq!(rj["book"]["invariants"]["crossed_books"], 0);
        assert_eq!(rj["top_of_book"].as_object().unwrap().len(), 3);
        assert!(rj["top_of_book"]["AAPL"].as_str().unwrap().contains(" x "));
        assert!(rj["messages_per_sec"].as_f64().unwrap() > 0.0);
        // Selected symbols: only their books are kept.
        let r = hftnet(&["replay", p, "--json", "--symbols", "MSFT,NVDA"]);
        let rj = json_of(&r, "replay --symbols");
        let tops = rj["top_of_book"].as_object().unwrap();
        assert_eq!(tops.keys().collect::<Vec<_>>(), vec!["MSFT", "NVDA"]);
        assert!(rj["book"]["filtered"].as_u64().unwrap() > 0);
    }
    // A file cut in the middle of a record: the figures so far, and an error.
    let whole = std::fs::read(dir.join("day.itch")).unwrap();
    let cut = dir.join("cut.itch");
    std::fs::write(&cut, &whole[..whole.len() - 7]).unwrap();
    let mut first: Option<Value> = None;
    for threads in ["1", "2"] {
        let c = cut.to_str().unwrap();
        let r = hftnet(&["replay", c, "--threads", threads]);
        assert_eq!(r.status.code(), Some(1));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains("ends inside a record"), "{err}");
        assert!(String::from_utf8_lossy(&r.stdout).contains("# messages: "));
        // The same figures and error either way.
        let rj = json_of(
            &hftnet(&["replay", c, "--threads", threads, "--json"]),
            "replay cut",
        );
        assert_eq!(
            rj["threads"].to_string(),
            threads,
            "no fallback to one thread"
        );
        let first = first.get_or_insert_with(|| rj.clone());
        for key in [
            "messages",
            "bytes",
            "counts",
            "stream_digest",
            "book",
            "error",
        ] {
            assert_eq!(rj[key], first[key], "--threads {threads}: {key}");
        }
    }
    // The exchange replaying it ends the session properly and says why.
    let ex = hftnet(&[
        "exchange",
        "--file",
        cut.to_str().unwrap(),
        "--feed-a",
        "udp://127.0.0.1:31121",
        "--rate",
        "0",
        "--linger",
        "0s",
        "--json",
    ]);
    assert_eq!(ex.status.code(), Some(1));
    let ej = json_of(&ex, "exchange --file cut");
    assert!(
        ej["error"]
            .as_str()
            .unwrap()
            .contains("ends inside a record"),
        "{ej}"
    );
    assert!(
        ej["messages"].as_u64().unwrap() > 1000,
        "what came before was sent: {ej}"
    );
    assert_eq!(
        ej["behind_schedule_max_us"],
        Value::Null,
        "no schedule at --rate 0"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_without_the_stream_digest_reports_the_same_books() {
    let dir = std::env::temp_dir().join(format!("hftnet-replay-nodigest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("day.itch");
    let p = plain.to_str().unwrap();
    let w = hftnet(&[
        "exchange",
        "--write",
        p,
        "--messages",
        "20000",
        "--symbols",
        "12",
        "--json",
    ]);
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let wj = json_of(&w, "exchange --write");
    let with = json_of(&hftnet(&["replay", p, "--json"]), "replay");
    let r = hftnet(&["replay", p, "--json", "--no-stream-digest"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let without = json_of(&r, "replay --no-stream-digest");
    assert_eq!(with["stream_digest"], wj["stream_digest"]);
    assert_eq!(without["stream_digest"], Value::Null);
    for key in ["messages", "bytes", "counts", "book", "top_of_book"] {
        assert_eq!(without[key], with[key], "{key}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_modes_agree_and_report_what_they_did() {
    let dir = std::env::temp_dir().join(format!("hftnet-replay-modes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("day.itch");
    let p = plain.to_str().unwrap();
    let w = hftnet(&[
        "exchange",
        "--write",
        p,
        "--messages",
        "20000",
        "--symbols",
        "12",
        "--json",
    ]);
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    let wj = json_of(&w, "exchange --write");
    let replay = |extra: &[&str]| {
        let mut args = vec!["replay", p, "--json"];
        args.extend_from_slice(extra);
        let r = hftnet(&args);
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        json_of(&r, "replay")
    };
    let base = replay(&[]);
    assert_eq!(base["mapped"], true, "a plain file is mapped");
    assert_eq!(base["check"], "fast");
    assert!(base["check_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        base["book"], wj["book"],
        "the fast check says what the full one said"
    );
    assert_eq!(base["apply_latency_ns"], Value::Null, "only with --latency");
    for extra in [
        &["--no-mmap"][..],
        &["--check", "full"],
        &["--no-prefetch"],
        &["--latency"],
        &["--threads", "1"],
        &["--threads", "2"],
        &["--threads", "2", "--no-mmap", "--no-prefetch"],
    ] {
        let r = replay(extra);
        for key in [
            "messages",
            "bytes",
            "counts",
            "stream_digest",
            "book",
            "top_of_book",
        ] {
            assert_eq!(r[key], base[key], "{extra:?}: {key}");
        }
        assert_eq!(r["mapped"], !extra.contains(&"--no-mmap"), "{extra:?}");
        // The timed replay runs on one thread, whatever was asked.
        let threads = match extra {
            ["--threads", n, ..] => n.parse().unwrap(),
            ["--latency"] => 1,
            _ => base["threads"].as_u64().unwrap(),
        };
        assert_eq!(r["threads"], threads, "{extra:?}");
    }
    // The default takes the second thread where there is a second CPU.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(base["threads"], cpus.min(2));
    let r = hftnet(&["replay", p, "--threads", "3"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--threads"));
    // With a selection, two threads build the same books as one.
    let sel = |t: &str| replay(&["--symbols", "MSFT,NVDA", "--threads", t]);
    let (one, two) = (sel("1"), sel("2"));
    for key in ["counts", "stream_digest", "book", "top_of_book"] {
        assert_eq!(one[key], two[key], "--symbols: {key}");
    }
    assert!(one["book"]["filtered"].as_u64() > Some(0));
    // Off: the books are not checked, and the report says so.
    let off = replay(&["--check=off"]);
    assert_eq!(off["check"], "off");
    assert_eq!(off["book"]["invariants"], serde_json::json!({ "ok": null }));
    assert_eq!(off["book"]["digest"], base["book"]["digest"]);
    // Latency per operation, as many as the book counted.
    let lat = replay(&["--latency"]);
    let ops = &lat["apply_latency_ns"];
    let counts = &base["counts"];
    let adds = counts["add_order"].as_u64().unwrap() + counts["add_order_mpid"].as_u64().unwrap();
    assert_eq!(ops["add"]["count"].as_u64(), Some(adds));
    assert_eq!(ops["delete"]["count"], counts["order_delete"]);
    assert_eq!(ops["replace"]["count"], counts["order_replace"]);
    for (op, v) in ops.as_object().unwrap() {
        let (p50, p99, max) = (v["p50"].as_u64(), v["p99"].as_u64(), v["max"].as_u64());
        assert!(p50 > Some(0) && p50 <= p99 && p99 <= max, "{op}: {v}");
    }
    // A zero length in the middle of a mapped file: the records before it,
    // and the offset.
    let mut bytes = std::fs::read(&plain).unwrap();
    let mut at = 0;
    for _ in 0..1000 {
        at += 2 + usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
    }
    bytes[at..at + 2].copy_from_slice(&[0, 0]);
    let bad = dir.join("bad.itch");
    std::fs::write(&bad, &bytes).unwrap();
    let mut first = None;
    for threads in ["1", "2"] {
        let r = hftnet(&[
            "replay",
            bad.to_str().unwrap(),
            "--json",
            "--threads",
            threads,
        ]);
        assert_eq!(r.status.code(), Some(1));
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains(&format!("bad ITCH record at byte {at}")),
            "{err}"
        );
        let rj = json_of(&r, "replay bad");
        assert_eq!(rj["messages"], 1000);
        assert_eq!(rj["mapped"], true);
        // Every message before the bad record is in the books either way.
        let first = first.get_or_insert_with(|| rj.clone());
        for key in ["counts", "stream_digest", "book", "error"] {
            assert_eq!(rj[key], first[key], "--threads {threads}: {key}");
        }
    }
    // An empty file is an empty day.
    let empty = dir.join("empty.itch");
    std::fs::write(&empty, b"").unwrap();
    let r = hftnet(&["replay", empty.to_str().unwrap(), "--json"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(json_of(&r, "replay empty")["messages"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["replay", "/nonexistent/day.itch"],
            "/nonexistent/day.itch",
        ),
        (&["feed"], "--feed-a"),
        (&["exchange"], "--write"),
        (
            &[
                "exchange",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--session",
                "MUCH-TOO-LONG",
            ],
            "--session",
        ),
        (
            &["exchange", "--feed-a", "udp://127.0.0.1:9", "--loss-a", "2"],
            "loss probability 2 is not between 0 and 1",
        ),
        (&["exchange", "--feed-a", "bogus://x"], "bogus"),
        (
            &[
                "feed",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--publish",
                "bogus://x",
            ],
            "--publish URI bogus://x",
        ),
        (
            &[
                "feed",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--publish",
                "shm://md?size=16",
            ],
            "a market-data record is 64",
        ),
        (
            &[
                "feed",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--symbols",
                "TOOLONGSYM",
            ],
            "TOOLONGSYM",
        ),
        (
            &[
                "exchange",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--max-payload",
                "40",
            ],
            "--max-payload 40 is too small",
        ),
        (
            &[
                "exchange",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--heartbeat",
                "0s",
            ],
            "--heartbeat",
        ),
        (
            &["exchange", "--feed-a", "udp://127.0.0.1:9", "--burst", "0"],
            "--burst 0",
        ),
        (
            &[
                "exchange",
                "--feed-a",
                "mcast://239.1.1.1:31152?iface=lo",
                "--retransmit",
                "udp://127.0.0.1:31153",
            ],
            "its subscribers are unknown",
        ),
        (
            &[
                "exchange",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--allow",
                "h0st",
            ],
            "\"h0st\" is not an IP address",
        ),
        (
            &[
                "exchange",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--allow",
                "10.0.0.0/40",
            ],
            "prefix length 40 is longer than the address",
        ),
        (
            &[
                "exchange",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--request-burst-bytes",
                "100",
            ],
            "--request-burst-bytes: must hold one full reply packet",
        ),
        (
            &[
                "exchange",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--request-sources",
                "0",
            ],
            "--request-sources: must be between 1 and 65536",
        ),
        (
            &[
                "exchange",
                "--feed-a",
                "udp://127.0.0.1:9",
                "--request-rate",
                "0",
            ],
            "--request-rate: must be between 1",
        ),
        (
            &["replay", "/nonexistent/day.itch", "--check", "sometimes"],
            "accepted: full, fast, off",
        ),
    ];
    for (args, needle) in cases {
        let out = hftnet(args);
        assert_eq!(out.status.code(), Some(2), "hftnet {args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "hftnet {args:?}: {err}");
    }
}

#[test]
fn a_feed_whose_exchange_dies_mid_session_exits_1_session_incomplete() {
    let (a, b) = ("udp://127.0.0.1:31141", "udp://127.0.0.1:31142");
    let feed = spawn(&[
        "feed",
        "--feed-a",
        a,
        "--feed-b",
        b,
        "--no-recovery",
        "--idle-timeout",
        "3s",
        "--json",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    // An exchange that would take a minute, killed after half a second.
    let mut exchange = Proc(Some(
        Command::new(BIN)
            .args([
                "exchange",
                "--feed-a",
                a,
                "--feed-b",
                b,
                "--messages",
                "3000000",
                "--rate",
                "50000",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ));
    std::thread::sleep(Duration::from_millis(500));
    exchange.child().kill().unwrap();
    let out = finish(feed, Duration::from_secs(30), "feed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It was exit 0 with lost 0: a complete-looking, incomplete day.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("session incomplete"), "{stderr}");
    let j = json_of(&out, "feed");
    assert_eq!(j["stopped"], "idle timeout", "{j}");
    assert!(j["delivered"].as_u64().unwrap() > 0, "{j}");
}

/// The (first sequence, message count) of a MoldUDP64 downstream packet.
fn mold_header(p: &[u8]) -> Option<(u64, u16)> {
    let seq = u64::from_be_bytes(p.get(10..18)?.try_into().ok()?);
    let count = u16::from_be_bytes(p.get(18..20)?.try_into().ok()?);
    Some((seq, count))
}

/// A MoldUDP64 request of session `HFTNET`.
fn mold_request(sequence: u64, count: u16) -> [u8; 20] {
    let mut r = [0u8; 20];
    r[..10].copy_from_slice(b"HFTNET    ");
    r[10..18].copy_from_slice(&sequence.to_be_bytes());
    r[18..20].copy_from_slice(&count.to_be_bytes());
    r
}

#[test]
fn re_requests_are_answered_only_for_allowed_sources_within_their_limit() {
    use std::net::UdpSocket;
    // This test is feed A's subscriber, at 127.0.0.2: the exchange answers
    // 127.0.0.2 by default, and nobody else (127.0.0.3 here).
    let sub = UdpSocket::bind("127.0.0.2:0").unwrap();
    let feed_a = format!("udp://{}", sub.local_addr().unwrap());
    let server = "127.0.0.1:31151";
    let start = Instant::now();
    let mut exchange = spawn(&[
        "exchange",
        "--feed-a",
        &feed_a,
        "--retransmit",
        &format!("udp://{server}"),
        "--session",
        "HFTNET",
        "--messages",
        "5000",
        "--rate",
        "2000",
        // A burst of 2000 messages, then 1 a second.
        "--request-burst",
        "2000",
        "--request-rate",
        "1",
        "--heartbeat",
        "50ms",
        "--linger",
        "1s",
        "--json",
    ]);
    // Wait until messages 1..=2048 are published (bounded).
    sub.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut published = 0;
    while published < 2048 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the exchange published {published} messages in 30 s"
        );
        assert!(
            exchange.child().try_wait().unwrap().is_none(),
            "the exchange ended early"
        );
        if let Ok(n) = sub.recv(&mut buf)
            && let Some((seq, count)) = mold_header(&buf[..n])
            && count < 0xffff
        {
            published = published.max(seq + u64::from(count) - 1);
        }
    }
    let stranger = UdpSocket::bind("127.0.0.3:0").unwrap();
    let asker = UdpSocket::bind("127.0.0.2:0").unwrap();
    for _ in 0..5 {
        stranger.send_to(&mold_request(1, 100), server).unwrap();
    }
    // A flood: 100 requests of 1024 messages each.
    for _ in 0..100 {
        asker.send_to(&mold_request(1, 1024), server).unwrap();
    }
    // Every reply, until the exchange has gone (bounded by its run).
    asker
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut answered = 0u64;
    loop {
        match asker.recv(&mut buf) {
            Ok(n) => {
                let (seq, count) = mold_header(&buf[..n]).expect("a MoldUDP64 reply");
                assert!(
                    (1..=1024).contains(&seq),
                    "a reply to what was asked: {seq}"
                );
                answered += u64::from(count);
            }
            Err(_) if exchange.child().try_wait().unwrap().is_some() => break,
            Err(_) => assert!(
                start.elapsed() < Duration::from_secs(60),
                "the exchange did not end within 60 s"
            ),
        }
    }
    let seconds = start.elapsed().as_secs() + 1;
    let out = exchange.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ex = json_of(&out, "exchange");
    let rt = &ex["retransmission"];
    let n = |k: &str| rt[k].as_u64().unwrap_or_else(|| panic!("{k}: {ex}"));
    let refused = |k: &str| {
        rt["refusals"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {ex}"))
    };
    // Nothing for the stranger, and counted.
    stranger.set_nonblocking(true).unwrap();
    assert!(
        stranger.recv(&mut buf).is_err(),
        "a source not allowed got an answer"
    );
    assert_eq!(refused("not_allowed"), 5, "{ex}");
    assert_eq!(rt["allowed"], serde_json::json!(["127.0.0.2"]), "{ex}");
    // The flood was cut at the burst (plus what 1 message/s refilled), every
    // request of it answered, cut or refused, and counted.
    assert_eq!(n("messages"), answered, "{ex}");
    assert!(
        answered >= 1024,
        "the first request is answered in full: {ex}"
    );
    assert!(
        answered <= 2000 + seconds,
        "{answered} messages answered in {seconds} s: {ex}"
    );
    assert!(n("cut") >= 1, "{ex}");
    assert!(refused("rate_limited") >= 1, "{ex}");
    assert_eq!(n("requests") + refused("rate_limited"), 100, "{ex}");
    assert_eq!(
        (n("bad_requests"), refused("too_many_sources")),
        (0, 0),
        "{ex}"
    );
    assert_eq!(n("sources"), 1, "{ex}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("5 from sources not allowed") && err.contains("--allow"),
        "{err}"
    );
}

#[test]
fn a_lingering_exchange_of_an_earlier_run_neither_stops_nor_joins_a_new_feed() {
    let a = "udp://127.0.0.1:31161";
    // The earlier run: a short day, then lingering, repeating its end of
    // session every 20 ms (killed on drop).
    let mut old = spawn(&[
        "exchange",
        "--feed-a",
        a,
        "--messages",
        "300",
        "--rate",
        "0",
        "--heartbeat",
        "20ms",
        "--linger",
        "60s",
        "--json",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        old.child().try_wait().unwrap().is_none(),
        "the old exchange lingers"
    );
    let feed = spawn(&[
        "feed",
        "--feed-a",
        a,
        "--no-recovery",
        "--idle-timeout",
        "5s",
        "--duration",
        "60s",
        "--json",
    ]);
    // The feed hears the old end of session repeated before the new day.
    std::thread::sleep(Duration::from_millis(500));
    let new = hftnet(&[
        "exchange",
        "--book",
        "--feed-a",
        a,
        "--messages",
        "3000",
        "--rate",
        "10000",
        "--heartbeat",
        "20ms",
        "--linger",
        "0s",
        "--json",
    ]);
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    let ex = json_of(&new, "new exchange");
    let fd = finish(feed, Duration::from_secs(60), "feed");
    let fj = json_of(&fd, "feed");
    drop(old);
    assert!(
        fd.status.success(),
        "feed: {fj} {}",
        String::from_utf8_lossy(&fd.stderr)
    );
    assert_eq!(fj["stopped"], "end of session", "{fj}");
    assert_eq!(
        fj["session"], ex["session"],
        "the new session followed: {fj} {ex}"
    );
    assert_same_market(&ex, &fj);
    assert_eq!(fj["delivered"], ex["messages"], "{fj}");
    assert_eq!(fj["lost"], 0, "{fj}");
    // The old ends were heard, before the new session was chosen and after,
    // and ignored.
    assert!(fj["a"]["foreign_end"].as_u64().unwrap() > 0, "{fj}");
    assert!(fj["a"]["foreign_session"].as_u64().unwrap() > 0, "{fj}");
    assert_eq!(fj["a"]["after_end"], 0, "{fj}");
    let err = String::from_utf8_lossy(&fd.stderr);
    assert!(
        err.contains("end-of-session packets that were not this session's"),
        "{err}"
    );
}

#[test]
fn replay_exits_1_on_malformed_itch_as_the_feed_does() {
    let dir = std::env::temp_dir().join(format!("hftnet-replay-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.itch");
    // A system event (12 bytes, well formed) and an add order of 3 bytes
    // (too short for its type).
    let mut f = vec![0, 12, b'S', 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'O'];
    f.extend_from_slice(&[0, 3, b'A', 0, 1]);
    std::fs::write(&path, f).unwrap();
    let r = hftnet(&["replay", path.to_str().unwrap(), "--json"]);
    std::fs::remove_dir_all(&dir).unwrap();
    let rj = json_of(&r, "replay");
    assert_eq!(rj["counts"]["malformed"], 1, "{rj}");
    assert_eq!(r.status.code(), Some(1), "{rj}");
    let err = String::from_utf8_lossy(&r.stderr);
    // The words of `hftnet feed` too (one function decides for both).
    assert!(
        err.contains("hftnet replay: the books are incomplete: 1 malformed ITCH messages"),
        "{err}"
    );
}

/// A MoldUDP64 packet of session `SAME` with `n` ITCH system events from
/// `first` on (`n` = 0xffff: an end of session).
fn mold_packet(first: u64, n: u16) -> Vec<u8> {
    let mut p = b"SAME      ".to_vec();
    p.extend_from_slice(&first.to_be_bytes());
    p.extend_from_slice(&n.to_be_bytes());
    for _ in 0..if n == 0xffff { 0 } else { n } {
        p.extend_from_slice(&[0, 12, b'S', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'O']);
    }
    p
}

#[test]
fn messages_after_the_end_of_session_give_exit_1() {
    use std::net::UdpSocket;
    let feed = spawn(&[
        "feed",
        "--feed-a",
        "udp://127.0.0.1:31171",
        "--no-recovery",
        "--gap-wait",
        "2s",
        "--idle-timeout",
        "5s",
        "--duration",
        "30s",
        "--json",
    ]);
    std::thread::sleep(Duration::from_millis(300)); // bound before the first packet
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Messages 1..=5; an end at 10 (the tail 6..=9 is awaited); then 6..=15
    // of the same session name: 10..=15 come after that end.
    for p in [
        mold_packet(1, 5),
        mold_packet(10, 0xffff),
        mold_packet(6, 10),
    ] {
        tx.send_to(&p, "127.0.0.1:31171").unwrap();
    }
    let fd = finish(feed, Duration::from_secs(30), "feed");
    let fj = json_of(&fd, "feed");
    assert_eq!(fj["stopped"], "end of session", "{fj}");
    assert_eq!(
        (fj["delivered"].as_u64(), fj["lost"].as_u64()),
        (Some(9), Some(0)),
        "{fj}"
    );
    assert_eq!(fj["a"]["after_end"], 6, "{fj}");
    assert_eq!(fd.status.code(), Some(1), "{fj}");
    let err = String::from_utf8_lossy(&fd.stderr);
    assert!(
        err.contains("6 messages numbered after the end of session"),
        "{err}"
    );
}

/// Feed handlers started thousands of messages into the day: with a
/// window smaller than that (`--window 1024`; the default is 65 536) the
/// front of the session is declared lost — the system event and stock
/// directory among it — while one started at the same moment with
/// `--window 131072` re-requests the whole morning and ends with the
/// exchange's stream and books.
#[test]
fn a_late_joiner_recovers_the_morning_with_a_wide_window() {
    let (a, b, r) = (
        "udp://127.0.0.1:31191",
        "udp://127.0.0.1:31192",
        "udp://127.0.0.1:31193",
    );
    let exchange = spawn(&[
        "exchange",
        "--feed-a",
        a,
        "--feed-b",
        b,
        "--retransmit",
        r,
        "--book",
        "--messages",
        "80000",
        "--rate",
        "40000",
        "--linger",
        "10s",
        "--json",
    ]);
    // Feed B's port read until the day is past message 5 000 (however
    // late the exchange started), then handed to the handlers.
    {
        let probe = std::net::UdpSocket::bind("127.0.0.1:31192").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 2048];
        loop {
            assert!(Instant::now() < deadline, "the exchange never got going");
            if let Ok(n) = probe.recv(&mut buf)
                && n >= 20
                && u64::from_be_bytes(buf[10..18].try_into().unwrap()) > 5_000
            {
                break;
            }
        }
    }
    let feed = |uri: &str, wide: bool| {
        let mut args = vec!["feed", "--feed-a", uri, "--retransmit", r, "--json"];
        if !wide {
            args.extend(["--window", "1024"]);
        }
        if wide {
            // Room for the live stream while the morning comes back, and
            // time for a big answer before asking again.
            args.extend([
                "--window",
                "131072",
                "--buffer-bytes",
                "64M",
                "--request-timeout",
                "500ms",
            ]);
        }
        spawn(&args)
    };
    let narrow = feed(a, false);
    let wide = feed(&format!("{b}?rcvbuf=16M"), true);
    let ex = finish(exchange, Duration::from_secs(60), "exchange");
    let ex = json_of(&ex, "exchange");
    let wide = finish(wide, Duration::from_secs(30), "wide feed");
    let narrow = finish(narrow, Duration::from_secs(30), "narrow feed");
    let (wj, nj) = (json_of(&wide, "wide feed"), json_of(&narrow, "narrow feed"));
    assert_eq!(
        wide.status.code(),
        Some(0),
        "{wj}\nexchange retransmission: {}",
        ex["retransmission"]
    );
    assert_same_market(&ex, &wj);
    assert!(
        wj["requested_messages"].as_u64().unwrap() > 5_000,
        "the morning was re-requested: {wj}"
    );
    // The narrow window: the front is gone for good, from message 1.
    assert_eq!(narrow.status.code(), Some(1), "{nj}");
    assert!(nj["lost"].as_u64().unwrap() > 0, "{nj}");
    assert!(
        nj["lost_ranges"][0]
            .as_str()
            .is_some_and(|r| r.starts_with("1+")),
        "{nj}"
    );
}
