//! `hftnet trade` end to end: `hftnet exchange` publishes a generated day
//! from the exchange namespace of a lab to the trader namespace; `hftnet
//! trade` there runs the taker and sends its orders over SoupBinTCP to a
//! scripted OUCH order server this test runs inside the exchange
//! namespace. And bad input, refused before anything opens.

use std::time::{Duration, Instant};

use hftnet_lab::Lab;
use serde_json::Value;

mod common;
#[allow(dead_code)]
#[path = "../../hftnet-apps/tests/support/order_server.rs"]
mod order_server;

use common::{Proc, TempDir, finish, run_in, skip_without_root, spawn, spawn_in};
use order_server::{OrderServer, Script};

/// Waits (bounded) until the trader logged in at the order server.
fn wait_for_login(srv: &OrderServer, trader: &mut Proc) {
    let start = Instant::now();
    while srv.log().logins.is_empty() {
        if trader.child().try_wait().unwrap().is_some() {
            let out = trader.0.take().unwrap().wait_with_output().unwrap();
            panic!("trade exited: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the trader never logged in"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn trade_against_the_exchange_feed_in_the_lab() {
    if skip_without_root("trade_against_the_exchange_feed_in_the_lab") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let ex_ip = lab.exchange().addr();
    let tr_ip = lab.trader().addr();
    let srv = lab
        .exchange()
        .spawn_thread("orders", move || {
            OrderServer::start_at(
                &format!("{ex_ip}:0"),
                Script {
                    fill: true,
                    ..Script::default()
                },
            )
        })
        .unwrap()
        .join()
        .unwrap();
    let tmp = TempDir::new("hftnet-trade-cli");
    let dir = tmp.0.clone();
    let state = dir.join("state");
    let hgrm = dir.join("t2t.hgrm");
    let (a, b, rr) = (
        // The kernel's receive stamps start internal tick-to-trade.
        format!("udp://{tr_ip}:30001?rcvbuf=4M&timestamps=rx"),
        format!("udp://{tr_ip}:30002?rcvbuf=4M&timestamps=rx"),
        format!("udp://{ex_ip}:30003"),
    );
    let orders = srv.uri();
    let mut trader = spawn_in(
        lab.trader(),
        &[
            "trade",
            "--md",
            &a,
            "--md-b",
            &b,
            "--retransmit",
            &rr,
            "--orders",
            &orders,
            "--login",
            "trader:secret",
            "--strategy",
            "taker",
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
            "90s",
            "--json",
            "--hgrm",
            hgrm.to_str().unwrap(),
        ],
    );
    // The trader logs in before it listens to the feed.
    wait_for_login(&srv, &mut trader);
    std::thread::sleep(Duration::from_millis(200));
    let exchange = run_in(
        lab.exchange(),
        &[
            "exchange",
            "--feed-a",
            &format!("udp://{tr_ip}:30001"),
            "--feed-b",
            &format!("udp://{tr_ip}:30002"),
            "--retransmit",
            &format!("udp://{ex_ip}:30003"),
            "--messages",
            "20000",
            "--rate",
            "50000",
            "--heartbeat",
            "50ms",
            "--linger",
            "1s",
            "--json",
        ],
        Duration::from_secs(90),
    );
    assert!(
        exchange.status.success(),
        "{}",
        String::from_utf8_lossy(&exchange.stderr)
    );
    let ex: Value = serde_json::from_slice(&exchange.stdout).unwrap();
    let out = finish(trader, Duration::from_secs(100), "trade");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "trade did not print one JSON object ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success(),
        "{r} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = srv.stop();
    let messages = ex["messages"].as_u64().unwrap();
    assert_eq!(r["feed"]["delivered"].as_u64(), Some(messages), "{r}");
    assert_eq!(r["feed"]["stopped"], "end of session");
    let o = &r["orders"];
    let n = |k: &str| o[k].as_u64().unwrap();
    assert!(n("enters") > 0, "the taker traded: {r}");
    assert_eq!(
        n("sent"),
        n("accepted") + n("rejected") + n("pending"),
        "{r}"
    );
    assert_eq!(n("enters"), log.enters.len() as u64);
    assert_eq!(n("executions"), log.fills.len() as u64);
    for (_, _, _, _, _, seq) in &log.enters {
        let seq = seq.expect("the trigger in every ClOrdID");
        assert!((1..=messages).contains(&seq));
    }
    for k in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(r["tick_to_trade_internal_ns"][k].is_u64(), "{k}: {r}");
    }
    // The stamps are on the trader's clock: the order leaves after its
    // trigger arrived.
    assert!(
        r["tick_to_trade_internal_ns"]["min"].as_u64().unwrap() > 0,
        "{r}"
    );
    eprintln!(
        "internal tick-to-trade, ns: {}",
        r["tick_to_trade_internal_ns"]
    );
    assert_eq!(r["session"]["logins"], 1);
    assert_eq!(r["risk_refusals"]["disconnected"], 0);
    let shares: i64 = r["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["shares"].as_i64().unwrap())
        .sum();
    let filled: i64 = log
        .fills
        .iter()
        .map(|f| {
            if f.1 == b'B' {
                i64::from(f.2)
            } else {
                -i64::from(f.2)
            }
        })
        .sum();
    assert_eq!(shares, filled);
    let h = std::fs::read_to_string(&hgrm).unwrap();
    assert!(h.contains("Value") && h.lines().count() > 5, "{h}");
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .starts_with("user_ref_num_mark ")
    );
}

/// No market data: the trader logs in, waits for the idle timeout,
/// cancels nothing (nothing open), logs out and exits 3.
#[test]
fn trade_without_market_data_exits_3() {
    let srv = OrderServer::start(Script::default());
    let tmp = TempDir::new("hftnet-trade-idle");
    let dir = tmp.0.clone();
    let state = dir.join("state");
    let orders = srv.uri();
    let out = finish(
        spawn(&[
            "trade",
            "--md",
            "udp://127.0.0.1:0",
            "--orders",
            &orders,
            "--login",
            "trader:secret",
            "--symbols",
            "AAPL",
            "--state",
            state.to_str().unwrap(),
            "--idle-timeout",
            "500ms",
            "--json",
        ]),
        Duration::from_secs(30),
        "trade",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("no market data"), "{err}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["session"]["logins"], 1, "{r}");
    assert_eq!(r["orders"]["sent"], 0);
    let log = srv.stop();
    assert_eq!(log.logins, [1]);
}

#[test]
fn trade_refuses_bad_input_up_front() {
    let tmp = TempDir::new("hftnet-trade-bad");
    let dir = tmp.0.clone();
    let cfg_unknown = dir.join("c.json");
    std::fs::write(&cfg_unknown, r#"{"risk": {"max_qty": 5}}"#).unwrap();
    let cfg_zero = dir.join("c.toml");
    std::fs::write(&cfg_zero, "[risk]\nmax_order_qty = 0\n").unwrap();
    let base = [
        "trade",
        "--md",
        "udp://127.0.0.1:0",
        "--symbols",
        "AAPL",
        "--state",
        "/nonexistent-dir/state",
    ];
    for (extra, want) in [
        (
            vec!["--orders", "tcp://127.0.0.1:1", "--login", "toolongname:x"],
            "1 to 6",
        ),
        (
            vec!["--orders", "tcp://127.0.0.1:1", "--login", "nocolon"],
            "USER:PASSWORD",
        ),
        (
            vec!["--orders", "udp://127.0.0.1:1", "--login", "a:b"],
            "tcp://",
        ),
        (
            vec![
                "--orders",
                "tcp://127.0.0.1:1?framing=len32",
                "--login",
                "a:b",
            ],
            "framing=len32",
        ),
        (vec!["--login", "a:b"], "--orders"),
        (
            vec![
                "--orders",
                "tcp://127.0.0.1:1",
                "--login",
                "a:b",
                "--window",
                "7",
            ],
            "--window 7: a power of two",
        ),
        (
            vec![
                "--orders",
                "tcp://127.0.0.1:1",
                "--login",
                "a:b",
                "--heartbeat",
                "15s",
            ],
            "--heartbeat 15s: from 10µs to below 15s",
        ),
        (
            vec![
                "--orders",
                "tcp://127.0.0.1:1",
                "--login",
                "a:b",
                "--heartbeat",
                "5us",
            ],
            "--heartbeat 5µs: from 10µs",
        ),
        (
            vec![
                "--orders",
                "tcp://127.0.0.1:1?timestamps=rx",
                "--login",
                "a:b",
            ],
            "timestamps",
        ),
        (
            vec![
                "--orders",
                "tcp://127.0.0.1:1",
                "--login",
                "a:b",
                "--config",
                cfg_unknown.to_str().unwrap(),
            ],
            "unknown field",
        ),
        (
            vec![
                "--orders",
                "tcp://127.0.0.1:1",
                "--login",
                "a:b",
                "--config",
                cfg_zero.to_str().unwrap(),
            ],
            "risk.max_order_qty is 0",
        ),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter());
        let out = finish(spawn(&args), Duration::from_secs(20), "trade");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `hftnet trade kill --state FILE` trips the kill switch of the trader
/// running with that state file: it cancels every open order (the maker's
/// resting quotes) and refuses new ones; a trader does not start again
/// while the kill file is there. Over loopback.
#[test]
fn trade_kill_cancels_every_open_order() {
    kill_run(Kill::File, 31411);
}

/// SIGUSR1 does the same.
#[test]
fn sigusr1_cancels_every_open_order() {
    kill_run(Kill::Usr1, 31421);
}

/// SIGTERM stops the trader, which cancels every open order first.
#[test]
fn sigterm_stops_after_cancelling_every_open_order() {
    kill_run(Kill::Term, 31431);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    File,
    Usr1,
    Term,
}

fn kill_run(how: Kill, port: u16) {
    let srv = OrderServer::start(Script::default());
    let (a, b, rr) = (
        format!("udp://127.0.0.1:{port}"),
        format!("udp://127.0.0.1:{}", port + 1),
        format!("udp://127.0.0.1:{}", port + 2),
    );
    let tmp = TempDir::new(&format!("hftnet-trade-kill-{how:?}"));
    let dir = tmp.0.clone();
    let state = dir.join("state");
    let state_s = state.to_str().unwrap();
    // The risk limits from a TOML file, as the library's config reads them.
    let cfg = dir.join("trader.toml");
    std::fs::write(
        &cfg,
        "symbols = [\"AAPL\", \"MSFT\", \"NVDA\", \"AMZN\"]\n\
         [risk]\nmax_notional_dollars = 10000000\n[maker]\nsize = 100\n",
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let orders = srv.uri();
    let args = [
        "trade",
        "--md",
        &a,
        "--md-b",
        &b,
        "--retransmit",
        &rr,
        "--orders",
        &orders,
        "--login",
        "trader:secret",
        "--strategy",
        "maker",
        "--config",
        cfg_s,
        "--state",
        state_s,
        "--idle-timeout",
        "10s",
        "--duration",
        "60s",
        "--json",
    ];
    let mut trader = spawn(&args);
    wait_for_login(&srv, &mut trader);
    let exchange = spawn(&[
        "exchange",
        "--feed-a",
        &a,
        "--feed-b",
        &b,
        "--retransmit",
        &rr,
        "--messages",
        "100000",
        "--rate",
        "20000",
        "--heartbeat",
        "20ms",
        "--linger",
        "500ms",
    ]);
    let start = Instant::now();
    while srv.log().enters.len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the maker never quoted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    if how != Kill::File {
        // The signal to the trader's PID only.
        let pid = trader.child().id().to_string();
        let sig = if how == Kill::Usr1 { "-USR1" } else { "-TERM" };
        let k = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(k.success());
    } else {
        let k = finish(
            spawn(&["trade", "kill", "--state", state_s]),
            Duration::from_secs(10),
            "kill",
        );
        assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
    }
    let out = finish(trader, Duration::from_secs(90), "trade");
    let _ = finish(exchange, Duration::from_secs(60), "exchange");
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(out.status.success(), "{r}");
    let source = match how {
        Kill::File => "kill file",
        Kill::Usr1 => "signal",
        Kill::Term => "stop",
    };
    assert_eq!(r["kill_switch"], source, "{r}");
    assert_eq!(r["orders"]["open_at_end"], 0, "{r}");
    if how == Kill::Term {
        assert_eq!(r["feed"]["stopped"], "interrupted", "{r}");
    } else {
        assert!(
            r["risk_refusals"]["kill_switch"].as_u64().unwrap() > 0,
            "{r}"
        );
    }
    if how != Kill::Term {
        // A run of seconds: heartbeats both ways (1 s interval).
        assert!(r["session"]["heartbeats_out"].as_u64().unwrap() > 0, "{r}");
        assert!(r["session"]["heartbeats_in"].as_u64().unwrap() > 0, "{r}");
    }
    let log = srv.stop();
    let mut live = std::collections::HashSet::new();
    for m in &log.inbound {
        let n = |at: usize| u32::from_be_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]);
        match m[0] {
            b'O' => {
                live.insert(n(1));
            }
            b'U' => {
                live.remove(&n(1));
                live.insert(n(5));
            }
            b'X' => {
                live.remove(&n(1));
            }
            _ => {}
        }
    }
    assert!(live.is_empty(), "left open: {live:?}");
    if how == Kill::File {
        // Not again until the kill file is removed.
        let again = finish(spawn(&args), Duration::from_secs(20), "trade again");
        assert_eq!(again.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&again.stderr).contains("kill file"));
    }
}
