//! Fault injection from the command line, on loopback (no root needed):
//! `hftnet ping` with `loss=0.05&seed=S` on its URI loses the same probes
//! every run — the same count, within the binomial bounds — and another
//! seed loses others; `hftnet exchange` refuses faults given twice.

use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{BIN, Proc};
use hftnet_wire::faults::binomial_bounds;
use serde_json::Value;

const PROBES: u64 = 2000;

fn ping(port: u16, seed: u64) -> Value {
    let uri = format!("udp://127.0.0.1:{port}?loss=0.05&faults_on=tx&seed={seed}");
    let count = PROBES.to_string();
    let out = Command::new(BIN)
        .args(["ping", &uri, "--count", &count, "--warmup", "0"])
        .args(["--timeout", "30ms", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ping {uri}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn ping_with_a_seed_loses_the_same_probes_every_run() {
    let port = 19_850;
    let mut pong = Proc(Some(
        Command::new(BIN)
            .args([
                "pong",
                &format!("udp://127.0.0.1:{port}"),
                "--duration",
                "60s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    std::thread::sleep(Duration::from_millis(300));
    let a = ping(port, 7);
    let b = ping(port, 7);
    let c = ping(port, 9);
    drop(pong.0.take().map(|mut p| {
        let _ = p.kill();
        p.wait()
    }));
    let lost = |j: &Value| j["lost"].as_u64().unwrap();
    assert_eq!(lost(&a), lost(&b), "the same seed loses the same probes");
    let (lo, hi) = binomial_bounds(PROBES, 0.05, 5.0);
    for j in [&a, &c] {
        assert!(
            (lo..=hi).contains(&lost(j)),
            "{} lost, outside {lo}..={hi}",
            lost(j)
        );
        // The middleware counted every probe it dropped, and said so.
        let f = &j["capabilities"]["middleware"]["faults_tx"];
        assert_eq!(f["messages"], PROBES, "{j}");
        assert_eq!(f["dropped"].as_u64(), Some(lost(j)), "{j}");
    }
    assert_eq!(a["sent"], PROBES);
}

#[test]
fn exchange_refuses_faults_given_twice() {
    let out = Command::new(BIN)
        .args(["exchange", "--feed-a", "udp://127.0.0.1:9?loss=0.1"])
        .args(["--loss-a", "0.2", "--messages", "10"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("either with --loss-a"), "{e}");
}
