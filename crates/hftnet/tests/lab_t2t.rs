//! `hftnet lab`'s tick-to-trade table: after the ping-pong rows, the
//! exchange (order entry on) in the lab's exchange namespace and a taker in
//! the trader namespace trade a short day per row, market data over the
//! row's transport and orders over TCP; the JSON carries the rows with
//! internal and external percentiles, and every order the trader sent was
//! answered alike at both ends. `--no-t2t` leaves the table out.

use std::process::Command;

use serde_json::Value;

mod common;

use common::{BIN, skip_without_root};

/// Runs `hftnet lab ARGS --json FILE` and returns the JSON and stdout.
fn lab_json(tag: &str, args: &[&str]) -> (Value, String) {
    let json = std::env::temp_dir().join(format!("hftnet-lab-{tag}-{}.json", std::process::id()));
    let out = Command::new(BIN)
        .arg("lab")
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&json);
    let _ = std::fs::remove_file(&json);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_str(&text.unwrap()).unwrap();
    (j, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A percentile object in ns: every percentile there, non-decreasing, > 0.
/// The lab's namespaces are gone after the run.
fn namespaces_gone(j: &Value) {
    for ns in j["lab"]["namespaces"].as_array().unwrap() {
        let ns = ns.as_str().unwrap();
        assert!(
            !std::path::Path::new("/run/netns").join(ns).exists(),
            "{ns} left behind"
        );
    }
}

fn assert_percentiles(v: &Value, row: &Value) {
    let mut last = 0;
    for k in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        let x = v[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} missing: {row}"));
        assert!(x > 0 && x >= last, "{k} = {x}: {row}");
        last = x;
    }
}

#[test]
fn the_lab_measures_tick_to_trade_over_udp_and_mcast() {
    if skip_without_root("the_lab_measures_tick_to_trade_over_udp_and_mcast") {
        return;
    }
    let (j, stdout) = lab_json(
        "t2t",
        &[
            "--quick",
            "--duration",
            "200ms",
            "--transports",
            "udp/spin,udp/block,mcast/spin,tcp/spin",
        ],
    );
    assert!(stdout.contains("tick-to-trade (µs)"), "{stdout}");
    let rows = j["tick_to_trade"].as_array().unwrap();
    let names: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{}", r["row"]["transport"], r["row"]["strategy"]).replace('"', ""))
        .collect();
    // The rows named that carry datagrams (tcp carries the orders).
    assert_eq!(names, ["udp/block", "udp/spin", "mcast/spin"]);
    for r in rows {
        assert!(r["note"].is_null(), "{r}");
        assert_eq!(r["slices"], 2, "{r}");
        let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {r}"));
        let orders = n("orders");
        assert!(n("accepted") > 0, "the taker had no order accepted: {r}");
        // Every order sent reached the exchange and was answered: the same
        // accepted and rejected counts at both ends. (A rejection is
        // "destination closed": a taker lagging the feed fires on the day's
        // last messages after the market closed — a debug build on a
        // loaded machine does.)
        assert_eq!(n("exchange_received"), orders, "{r}");
        assert_eq!(n("accepted") + n("rejected"), orders, "{r}");
        assert_eq!(n("exchange_accepted"), n("accepted"), "{r}");
        assert_eq!(n("exchange_rejected"), n("rejected"), "{r}");
        assert_eq!(n("fills"), n("exchange_fills"), "{r}");
        // Loss is counted, not asserted: a debug-build trader on a loaded
        // machine falls behind the feed and its socket overflows.
        assert!(n("md_delivered") > n("md_lost"), "{r}");
        assert!(r["internal_samples"].as_u64().unwrap() > 0, "{r}");
        assert!(r["external_samples"].as_u64().unwrap() > 0, "{r}");
        assert!(r["internal_samples"].as_u64().unwrap() <= orders, "{r}");
        assert_percentiles(&r["internal_ns"], r);
        assert_percentiles(&r["external_ns"], r);
        // The application's part (to the send call) is part of the whole.
        assert_percentiles(&r["internal_to_send_call_ns"], r);
        assert!(
            r["internal_to_send_call_ns"]["min"].as_u64() <= r["internal_ns"]["min"].as_u64(),
            "{r}"
        );
        // Internal ends at the order's kernel transmit stamp; the send's
        // return is reported beside it.
        assert!(
            r["internal_end"]
                .as_str()
                .is_some_and(|e| e.contains("SCM_TSTAMP_SND")),
            "{r}"
        );
        assert_percentiles(&r["internal_to_send_return_ns"], r);
        assert_eq!(r["internal_stamps_missing"], 0, "{r}");
        assert_eq!(
            r["row"]["trader_heartbeat_us"], 100,
            "the default warm heartbeat: {r}"
        );
        assert_eq!(r["trader_orders_params"], "timestamps=tx", "{r}");
        let line = stdout
            .lines()
            .find(|l| {
                l.split_whitespace().take(2).collect::<Vec<_>>()
                    == [
                        r["row"]["transport"].as_str().unwrap(),
                        r["row"]["strategy"].as_str().unwrap(),
                    ]
                    && l.contains('|')
            })
            .unwrap_or_else(|| panic!("no table line for {r}: {stdout}"));
        assert!(line.contains(&format!(" {orders} ")), "{line}");
    }
    // Its namespaces are gone.
    namespaces_gone(&j);
}

#[test]
fn no_t2t_leaves_the_table_out() {
    if skip_without_root("no_t2t_leaves_the_table_out") {
        return;
    }
    let (j, stdout) = lab_json(
        "no-t2t",
        &[
            "--no-t2t",
            "--duration",
            "100ms",
            "--rounds",
            "1",
            "--transports",
            "udp/spin",
        ],
    );
    assert!(j["tick_to_trade"].is_null(), "{j}");
    assert!(!stdout.contains("tick-to-trade (µs)"), "{stdout}");
    assert!(
        stdout.contains("# tick_to_trade: off (--no-t2t)"),
        "{stdout}"
    );
}

#[test]
fn the_lab_runs_an_xdp_row_with_the_programs_receive_stamps() {
    if skip_without_root("the_lab_runs_an_xdp_row_with_the_programs_receive_stamps") {
        return;
    }
    let (j, stdout) = lab_json(
        "xdp-ts",
        &[
            "--quick",
            "--duration",
            "200ms",
            "--transports",
            "xdp/spin+timestamps",
        ],
    );
    // The ping-pong row: both ends AF_XDP, frames stamped by the program.
    let results = j["results"].as_array().unwrap();
    let ping: Vec<&Value> = results
        .iter()
        .filter(|r| r["rung"]["transport"] == "xdp")
        .collect();
    assert_eq!(ping.len(), 1, "{j}");
    let row = ping[0];
    assert_eq!(row["rung"]["strategy"], "spin+timestamps", "{row}");
    assert!(
        row["rung"]["server_uri"]
            .as_str()
            .is_some_and(|u| u.contains("timestamps=rx")),
        "{row}"
    );
    assert!(row["samples"].as_u64().unwrap() > 10, "{row}");
    assert_eq!(row["lost"], 0, "{row}");
    assert!(
        stdout.lines().any(
            |l| l.split_whitespace().take(2).eq(["xdp", "spin+timestamps"]) && !l.contains('|')
        ),
        "no ping-pong line: {stdout}"
    );
    // The tick-to-trade row over it.
    assert!(stdout.contains("tick-to-trade (µs)"), "{stdout}");
    let rows = j["tick_to_trade"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{j}");
    let r = &rows[0];
    assert_eq!(r["row"]["transport"], "xdp", "{r}");
    assert_eq!(r["row"]["strategy"], "spin+timestamps", "{r}");
    assert!(
        r["row"]["trader_md_uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("xdp://") && u.contains("timestamps=rx")),
        "{r}"
    );
    assert!(r["note"].is_null(), "{r}");
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {r}"));
    let orders = n("orders");
    assert!(n("accepted") > 0, "the taker had no order accepted: {r}");
    assert_eq!(n("exchange_received"), orders, "{r}");
    assert_eq!(n("accepted") + n("rejected"), orders, "{r}");
    assert!(n("internal_samples") > 0, "{r}");
    assert!(n("external_samples") > 0, "{r}");
    assert_percentiles(&r["internal_ns"], r);
    assert_percentiles(&r["external_ns"], r);
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().take(2).eq(["xdp", "spin+timestamps"]) && l.contains('|'))
        .unwrap_or_else(|| panic!("no tick-to-trade line: {stdout}"));
    assert!(line.contains(&format!(" {orders} ")), "{line}");
    namespaces_gone(&j);
}
