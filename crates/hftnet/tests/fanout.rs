//! `hftnet fanout`: bad input refused before any lab is built (exit 2, no
//! root needed), and real runs in a star lab (root; skipped with the reason
//! otherwise, a failure in CI): exact per-receiver counts in the JSON, one
//! `.hgrm` per receiver, exit 1 when a receiver lost messages. Every run is
//! bounded by its count at a fixed rate and by the test's time limit.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{BIN, TempDir, finish, skip_without_root, spawn};

fn refused(args: &[&str], words: &[&str]) {
    let out = Command::new(BIN).arg("fanout").args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for w in words {
        assert!(err.contains(w), "{args:?}: {w:?} not in {err}");
    }
    assert!(out.stdout.is_empty(), "{args:?}");
}

#[test]
fn bad_input_is_refused_before_building_anything() {
    refused(&["--receivers", "0"], &["use 1 to 16"]);
    refused(&["--receivers", "17"], &["use 1 to 16"]);
    refused(&["--receivers", "18446744073709551616"], &["use 1 to 16"]);
    refused(&["--rate", "0"], &["--rate must be at least 1"]);
    refused(&["--count", "0"], &["more than zero"]);
    refused(&["--size", "8"], &["message size 8", "20..="]);
    refused(&["--size", "1M"], &["message size 1048576"]);
    refused(
        &["--warmup", "18446744073709551615"],
        &["--warmup", "more than 1000000"],
    );
    refused(&["--group", "10.0.0.1:9400"], &["must be multicast"]);
    refused(&["--group", "239.1.1.1"], &["GROUP:PORT"]);
    refused(
        &["--count", "5", "--duration", "1s"],
        &["cannot be used with"],
    );
    refused(&["--rx-param", "x"], &["INDEX:PARAMS"]);
    refused(&["--rx-param", "99:rx=spin"], &["out of range"]);
    refused(
        &["--receivers", "2", "--rx-param", "3:rx=spin"],
        &["receiver 3", "only 2"],
    );
    refused(
        &["--receivers", "2", "--join-late", "2:100"],
        &["--join-late names receiver 2", "only 2"],
    );
    refused(&["--join-late", "1"], &["INDEX:SEQ"]);
    refused(&["--rx-params", "bogus=1"], &["rx0", "bogus"]);
    refused(&["--tx-params", "loss=2"], &["sender", "loss"]);
}

fn fanout_json(args: &[&str], want_code: i32) -> Value {
    let mut all = vec!["fanout", "--json"];
    all.extend_from_slice(args);
    let out = finish(spawn(&all), Duration::from_secs(60), "hftnet fanout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(want_code), "{args:?}: {err}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn four_receivers_exact_counts_json_and_hgrm() {
    if skip_without_root("four_receivers_exact_counts_json_and_hgrm") {
        return;
    }
    let dir = TempDir::new("hftnet-fanout-hgrm");
    let hgrm = dir.0.join("out");
    let j = fanout_json(
        &[
            "--receivers",
            "4",
            "--count",
            "2000",
            "--rate",
            "4000",
            "--warmup",
            "50",
            "--group",
            "239.1.2.1:9410",
            // Room for a stall of the shared CI machine: the counts are
            // about the accounting.
            "--rx-params",
            "rcvbuf=4M",
            "--hgrm-dir",
            hgrm.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(j["transport"], "mcast");
    assert_eq!(j["placement"], "namespaces");
    assert_eq!(
        (j["sent"].as_u64(), j["warmup_sent"].as_u64()),
        (Some(2000), Some(50))
    );
    assert_eq!(j["clean"], true);
    assert!(
        j["one_way_note"]
            .as_str()
            .unwrap()
            .contains("not across machines")
    );
    let rx = j["receivers"].as_array().unwrap();
    assert_eq!(rx.len(), 4);
    let mut p99 = Vec::new();
    for (i, r) in rx.iter().enumerate() {
        assert_eq!(r["name"], format!("rx{i}"));
        for (k, v) in [
            ("received", 2000),
            ("lost", 0),
            ("duplicated", 0),
            ("reordered", 0),
        ] {
            assert_eq!(r[k].as_u64(), Some(v), "rx{i} {k}: {r}");
        }
        assert!(r["one_way_ns"]["p50"].as_u64().unwrap() > 0, "{r}");
        p99.push(r["one_way_ns"]["p99"].as_u64().unwrap());
        for file in [format!("rx{i}.hgrm"), format!("rx{i}-from-send.hgrm")] {
            let text = std::fs::read_to_string(hgrm.join(&file)).unwrap();
            assert!(
                text.lines()
                    .any(|l| l.starts_with("#[Max") && l.trim_end().ends_with("2000]")),
                "{file}: {text}"
            );
        }
    }
    let spread = p99.iter().max().unwrap() - p99.iter().min().unwrap();
    assert_eq!(j["spread_one_way_ns"]["p99"].as_u64(), Some(spread));
    let slowest = j["slowest"].as_str().unwrap();
    let i: usize = slowest.trim_start_matches("rx").parse().unwrap();
    assert_eq!(p99[i], *p99.iter().max().unwrap());
}

#[test]
fn loss_at_one_receiver_is_counted_there_and_exits_1() {
    if skip_without_root("loss_at_one_receiver_is_counted_there_and_exits_1") {
        return;
    }
    let j = fanout_json(
        &[
            "--receivers",
            "3",
            "--count",
            "1000",
            "--rate",
            "4000",
            "--warmup",
            "20",
            "--group",
            "239.1.2.2:9411",
            "--rx-param",
            "1:loss=0.1&faults_on=rx&seed=11",
        ],
        1,
    );
    assert_eq!(j["clean"], false);
    let rx = j["receivers"].as_array().unwrap();
    for (i, r) in rx.iter().enumerate() {
        let (got, lost) = (r["received"].as_u64().unwrap(), r["lost"].as_u64().unwrap());
        assert_eq!(got + lost, 1000, "rx{i}: {r}");
        if i == 1 {
            let warm_missing = 20 - r["warmup_received"].as_u64().unwrap();
            assert_eq!(
                lost + warm_missing,
                r["injected_drops"].as_u64().unwrap(),
                "{r}"
            );
            assert!(lost > 0, "{r}");
        } else {
            assert_eq!(lost, 0, "rx{i}: {r}");
            assert!(r["injected_drops"].is_null());
        }
    }
}

#[test]
fn text_output_has_the_table_and_the_notes() {
    if skip_without_root("text_output_has_the_table_and_the_notes") {
        return;
    }
    let out = finish(
        spawn(&[
            "fanout",
            "--receivers",
            "2",
            "--sockets",
            "--count",
            "300",
            "--rate",
            "3000",
            "--group",
            "239.1.2.3:9412",
        ]),
        Duration::from_secs(60),
        "hftnet fanout",
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("# receivers: 2 (every receiver a socket of its own"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("rx     netns")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("spread ")), "{text}");
    assert!(text.contains("# one_way_note: "), "{text}");
    assert!(text.contains("# result: clean"), "{text}");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("rx") && !l.starts_with("rx     "))
        .collect();
    assert!(
        rows.iter().filter(|l| !l.contains("_uri")).count() == 2,
        "{text}"
    );
}
