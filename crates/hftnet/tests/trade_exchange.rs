//! `hftnet trade` against the real `hftnet exchange --orders` in the lab:
//! the exchange in the `exchange` namespace publishes a generated day to
//! the `trader` namespace and takes the trader's OUCH orders over
//! SoupBinTCP; both `--json` reports must agree exactly. And a trader
//! killed (SIGKILL) mid-session and restarted with the same `--state`:
//! its UserRefNums keep increasing, nothing is entered twice, and it
//! rebuilds the killed one's orders and position from the replayed
//! session (its position is the exchange's fills over both runs; the
//! killed maker's resting quotes are taken over and cancelled).

use std::path::Path;
use std::time::{Duration, Instant};

use hftnet_lab::{Host, Lab};
use serde_json::Value;

mod common;

use common::{Proc, TempDir, finish, skip_without_root, spawn_in};

const ORDER_PORT: u16 = 40_000;
const LOGIN: &str = "trader:secret";

fn json_of(out: &std::process::Output, what: &str) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} did not print one JSON object ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Waits (bounded) until something listens on TCP `port` in `host`'s
/// namespace: the exchange's order entry is up. Reads the namespace's
/// `/proc/thread-self/net/tcp` from a thread inside it; connects nothing.
fn wait_for_listener(host: &Host, port: u16, exchange: &mut Proc) {
    let start = Instant::now();
    loop {
        let listening = host
            .spawn_thread("probe", move || {
                let t = std::fs::read_to_string("/proc/thread-self/net/tcp").unwrap_or_default();
                t.lines().skip(1).any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[3] == "0A" && f[1].ends_with(&format!(":{port:04X}"))
                })
            })
            .unwrap()
            .join()
            .unwrap();
        if listening {
            return;
        }
        if exchange.child().try_wait().unwrap().is_some() {
            let out = exchange.0.take().unwrap().wait_with_output().unwrap();
            panic!("exchange exited: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the exchange never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `hftnet exchange` with order entry, waiting for one login, in the
/// exchange namespace.
fn exchange(lab: &Lab, messages: u64, rate: u64, hgrm: &Path, extra: &[&str]) -> Proc {
    let (ex_ip, tr_ip) = (lab.exchange().addr(), lab.trader().addr());
    let (feed_a, feed_b, rr, orders) = (
        format!("udp://{tr_ip}:30001"),
        format!("udp://{tr_ip}:30002"),
        format!("udp://{ex_ip}:30003"),
        format!("tcp://{ex_ip}:{ORDER_PORT}"),
    );
    let (messages, rate) = (messages.to_string(), rate.to_string());
    let mut args = vec![
        "exchange",
        "--feed-a",
        &feed_a,
        "--feed-b",
        &feed_b,
        "--retransmit",
        &rr,
        "--orders",
        &orders,
        "--login",
        LOGIN,
        "--wait-logins",
        "1",
        "--messages",
        &messages,
        "--rate",
        &rate,
        "--heartbeat",
        "50ms",
        "--linger",
        "1s",
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let mut p = spawn_in(lab.exchange(), &args);
    wait_for_listener(lab.exchange(), ORDER_PORT, &mut p);
    p
}

/// `hftnet trade` (the taker on four symbols) in the trader namespace.
fn trader(lab: &Lab, state: &Path, hgrm: &Path) -> Proc {
    trader_running(lab, state, hgrm, "taker")
}

/// `hftnet trade` running `strategy` on four symbols in the trader
/// namespace.
fn trader_running(lab: &Lab, state: &Path, hgrm: &Path, strategy: &str) -> Proc {
    let (ex_ip, tr_ip) = (lab.exchange().addr(), lab.trader().addr());
    spawn_in(
        lab.trader(),
        &[
            "trade",
            "--md",
            &format!("udp://{tr_ip}:30001?rcvbuf=4M&timestamps=rx"),
            "--md-b",
            &format!("udp://{tr_ip}:30002?rcvbuf=4M&timestamps=rx"),
            "--retransmit",
            &format!("udp://{ex_ip}:30003"),
            "--orders",
            &format!("tcp://{ex_ip}:{ORDER_PORT}"),
            "--login",
            LOGIN,
            "--strategy",
            strategy,
            "--symbols",
            "AAPL,MSFT,NVDA,AMZN",
            "--ticks",
            "1",
            "--max-order-qty",
            "10000",
            "--max-notional",
            "10000000",
            "--max-position",
            "1000000",
            "--max-total-position",
            "4000000",
            "--orders-per-sec",
            "100000",
            "--state",
            state.to_str().unwrap(),
            "--idle-timeout",
            "20s",
            "--duration",
            "120s",
            "--json",
            "--hgrm",
            hgrm.to_str().unwrap(),
        ],
    )
}

/// Waits for the exchange and the trader to end, checks both succeeded,
/// and returns their JSON reports (exchange, trader).
fn both_succeed(ex: Proc, tr: Proc) -> (Value, Value) {
    let ex_out = finish(ex, Duration::from_secs(120), "exchange");
    let tr_out = finish(tr, Duration::from_secs(60), "trade");
    let (x, r) = (json_of(&ex_out, "exchange"), json_of(&tr_out, "trade"));
    assert!(
        ex_out.status.success(),
        "{x} {}",
        String::from_utf8_lossy(&ex_out.stderr)
    );
    assert!(
        tr_out.status.success(),
        "{r} {}",
        String::from_utf8_lossy(&tr_out.stderr)
    );
    (x, r)
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not a count: {v}"))
}

fn percentiles_present(v: &Value, what: &str) {
    for k in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(v[k].as_u64().is_some_and(|x| x > 0), "{what} {k}: {v}");
    }
}

fn hgrm_written(p: &Path) {
    let h = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(
        h.contains("Percentile") && h.contains("#[Max") && h.lines().count() > 5,
        "{}: {h}",
        p.display()
    );
}

#[test]
fn trade_against_the_real_exchange_agrees_exactly() {
    if skip_without_root("trade_against_the_real_exchange_agrees_exactly") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let tmp = TempDir::new("hftnet-trade-exchange");
    let (ex_hgrm, tr_hgrm) = (tmp.0.join("external.hgrm"), tmp.0.join("internal.hgrm"));
    let ex = exchange(&lab, 60_000, 20_000, &ex_hgrm, &[]);
    let tr = trader(&lab, &tmp.0.join("state"), &tr_hgrm);
    let (x, r) = both_succeed(ex, tr);
    let oe = &x["order_entry"];
    let (t, o) = (&oe["totals"], &r["orders"]);
    // The trader saw the day and traded. (It stops at the OUCH End of
    // Day, which the exchange sends right after the feed's End of
    // Session: the last datagrams may still be unread then.)
    assert!(n(&r["feed"], "delivered") <= n(&x, "messages"), "{r}");
    assert_eq!(r["feed"]["lost"], 0, "{r}");
    assert!(n(o, "enters") > 0, "the taker traded: {r}");
    // Orders: sent = accepted + rejected at both ends, the same counts.
    assert_eq!(n(o, "pending"), 0, "{r}");
    assert_eq!(n(o, "sent"), n(o, "accepted") + n(o, "rejected"), "{r}");
    assert_eq!(
        n(t, "received"),
        n(t, "accepted") + n(t, "rejected"),
        "{oe}"
    );
    for (theirs, ours) in [
        ("received", "sent"),
        ("accepted", "accepted"),
        ("rejected", "rejected"),
    ] {
        assert_eq!(n(t, theirs), n(o, ours), "{theirs} vs {ours}: {oe} {r}");
    }
    assert_eq!(n(t, "retransmissions"), 0, "{oe}");
    // Executions and shares: the same at both ends.
    assert!(n(o, "executions") > 0, "{r}");
    assert_eq!(n(t, "executions"), n(o, "executions"), "{oe} {r}");
    assert_eq!(n(t, "executed_shares"), n(o, "executed_shares"), "{oe} {r}");
    assert_eq!(n(o, "unexpected"), 0, "{r}");
    let shares: i64 = r["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bought"].as_i64().unwrap() + p["sold"].as_i64().unwrap())
        .sum();
    assert_eq!(shares as u64, n(o, "executed_shares"), "{r}");
    // One login, one session, nothing bad on the wire either way.
    assert_eq!((n(oe, "logins_ok"), n(oe, "connections")), (1, 1), "{oe}");
    assert_eq!(r["session"]["logins"], 1, "{r}");
    // (The trader logs out at the End of Day, before End of Session.)
    assert_eq!((n(oe, "logouts"), n(oe, "open_at_end")), (1, 0), "{oe}");
    // Tick-to-trade at both ends, and the histograms asked for.
    assert!(n(oe, "tick_to_trade_samples") > 0, "{oe}");
    percentiles_present(&oe["tick_to_trade_external_ns"], "external");
    assert!(n(&r, "tick_to_trade_samples") > 0, "{r}");
    percentiles_present(&r["tick_to_trade_internal_ns"], "internal");
    hgrm_written(&ex_hgrm);
    hgrm_written(&tr_hgrm);
    eprintln!(
        "{} orders, {} executions; tick-to-trade external {} internal {}",
        n(o, "sent"),
        n(o, "executions"),
        oe["tick_to_trade_external_ns"],
        r["tick_to_trade_internal_ns"]
    );
}

/// The exchange of the restart tests, and a first trader running
/// `strategy`, killed with SIGKILL (no chance to cancel or write anything)
/// after it traded for a while; then a second one started with the same
/// state file. Returns both reports (the exchange's, the second trader's)
/// and the mark the killed one had stored.
fn kill_and_restart(strategy: &str, tmp: &TempDir) -> (Value, Value, u64) {
    let lab = Lab::two_host(None).unwrap();
    let state = tmp.0.join("state");
    // The restarted trader joins mid-day and re-requests the morning (the
    // stock directory with it): the exchange answers it without delay.
    let ex = exchange(
        &lab,
        40_000,
        5_000,
        &tmp.0.join("external.hgrm"),
        &[
            "--request-rate",
            "10000000",
            "--request-byte-rate",
            "1000000000",
            "--request-burst",
            "10000000",
            "--request-burst-bytes",
            "1000000000",
        ],
    );
    let mut first = trader_running(&lab, &state, &tmp.0.join("first.hgrm"), strategy);
    // Killed early in the eight-second day; the restarted one re-requests
    // the morning (within its feed handler's reorder window, 65,536
    // messages by default: the whole of this day).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        first.child().try_wait().unwrap().is_none(),
        "the first trader ended early"
    );
    first.child().kill().unwrap();
    let killed = finish(first, Duration::from_secs(10), "the killed trader");
    assert!(killed.stdout.is_empty(), "no report from a killed trader");
    let mark: u64 = std::fs::read_to_string(&state)
        .unwrap()
        .trim()
        .strip_prefix("user_ref_num_mark ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(mark > 0);
    // Restarted with the same state.
    let second = trader_running(&lab, &state, &tmp.0.join("second.hgrm"), strategy);
    let (x, r) = both_succeed(ex, second);
    (x, r, mark)
}

/// What both restart tests check: numbers above the mark, nothing
/// entered twice, and the second trader's state rebuilt from the replay —
/// every exchange message reconciled, every order of both runs accounted
/// for, its position the exchange's fills over both runs.
fn restarted_trader_agrees(x: &Value, r: &Value, mark: u64) {
    // It joined mid-day and re-requested the morning, all of it.
    assert!(n(&r["feed"], "requests") > 0, "{r}");
    assert_eq!(r["feed"]["lost"], 0, "{r}");
    let oe = &x["order_entry"];
    let (t, o) = (&oe["totals"], &r["orders"]);
    // The first trader had orders in; the second started above its mark.
    assert!(
        n(t, "received") > n(o, "sent"),
        "the first trader's orders: {oe} {r}"
    );
    // The restarted trader traded, every number it used above the mark the
    // killed one had stored (its allocator starts there).
    assert!(n(o, "sent") > 0, "the restarted trader traded: {r}");
    assert!(n(r, "user_ref_num_last") > mark, "{r}");
    assert!(n(r, "user_ref_num_mark") > mark, "{r}");
    // No UserRefNum was presented twice: nothing ignored as a
    // retransmission, nothing entered twice, every request answered.
    assert_eq!(n(t, "retransmissions"), 0, "{oe}");
    assert_eq!(
        n(t, "received"),
        n(t, "accepted") + n(t, "rejected"),
        "{oe}"
    );
    assert_eq!((n(oe, "logins_ok"), n(oe, "connections")), (2, 2), "{oe}");
    assert_eq!(r["session"]["logins"], 1, "{r}");
    // It logged in from sequence number 1 (the state file keeps only the
    // UserRefNum mark), so the first one's answers were replayed to it:
    // every one reconciled, the killed trader's orders adopted.
    assert_eq!(n(o, "unexpected"), 0, "{r}");
    assert!(n(o, "recovered_orders") > 0, "{r}");
    assert_eq!(n(o, "pending"), 0, "{r}");
    assert_eq!(n(o, "sent"), n(o, "accepted") + n(o, "rejected"), "{r}");
    // Every enter and replace the exchange accepted over the day is the
    // second trader's own or one it adopted.
    assert_eq!(
        n(t, "accepted"),
        n(o, "accepted") + n(o, "recovered_orders") + n(o, "recovered_replaces"),
        "{oe} {r}"
    );
    // The position is the exchange's fills over both runs: every
    // execution of the session, at both ends, in the position.
    assert!(n(o, "recovered_fills") > 0, "{r}");
    assert_eq!(n(o, "executions"), n(t, "executions"), "{oe} {r}");
    assert_eq!(n(o, "executed_shares"), n(t, "executed_shares"), "{oe} {r}");
    let mut shares = 0;
    for p in r["positions"].as_array().unwrap() {
        let (b, s) = (p["bought"].as_i64().unwrap(), p["sold"].as_i64().unwrap());
        assert_eq!(p["shares"].as_i64().unwrap(), b - s, "{p}");
        shares += b + s;
    }
    assert_eq!(shares as u64, n(t, "executed_shares"), "{r}");
    eprintln!(
        "exchange received {} (the restarted trader {}), mark {mark} -> {}; recovered {}",
        n(t, "received"),
        n(o, "sent"),
        n(r, "user_ref_num_mark"),
        o
    );
}

#[test]
fn a_trader_killed_and_restarted_reuses_no_user_ref_num() {
    if skip_without_root("a_trader_killed_and_restarted_reuses_no_user_ref_num") {
        return;
    }
    let tmp = TempDir::new("hftnet-trade-restart");
    let (x, r, mark) = kill_and_restart("taker", &tmp);
    restarted_trader_agrees(&x, &r, mark);
}

/// The maker leaves quotes resting when it is killed: the restarted one
/// takes them over (risk counts them) and follows each to its end (a fill,
/// or its cancel at the end of the run with its own).
#[test]
fn a_restarted_maker_takes_over_the_killed_ones_resting_quotes() {
    if skip_without_root("a_restarted_maker_takes_over_the_killed_ones_resting_quotes") {
        return;
    }
    let tmp = TempDir::new("hftnet-trade-restart-maker");
    let (x, r, mark) = kill_and_restart("maker", &tmp);
    restarted_trader_agrees(&x, &r, mark);
    let o = &r["orders"];
    assert!(n(o, "recovered_open") > 0, "resting quotes taken over: {r}");
    // The exchange cancels nothing at the end of the day: every one was
    // filled, or cancelled by the restarted trader (at the end of its run,
    // with its own), and it saw each end.
    assert_eq!(n(o, "open_at_end"), 0, "{r}");
}
