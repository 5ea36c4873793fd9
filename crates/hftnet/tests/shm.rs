//! `shm://` from the command line, in separate processes (no root needed):
//! ping against pong and blast into sink with exact counts; `hftnet shm
//! stat` shows the rings of a running pong with its reader, `shm rm`
//! refuses a live ring; a killed pong leaves stale rings that `shm list`
//! marks and `shm rm` removes; bad URIs and names exit 2 naming the
//! problem. Nothing is left in `/dev/shm`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Proc};
use serde_json::Value;

/// Names unique to this run; their files are removed on drop.
struct Name(String);

impl Name {
    fn new(test: &str) -> Self {
        Self(format!("c{}-{test}", std::process::id()))
    }

    fn left(&self) -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains(&self.0))
            .collect()
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        for n in self.left() {
            let _ = std::fs::remove_file(format!("/dev/shm/{n}"));
        }
    }
}

fn hftnet(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn ping_pong_over_shm_then_stat_list_and_rm_of_live_and_stale_rings() {
    let name = Name::new("pp");
    let n = &name.0;
    let uri = format!("shm://{n}?rx=spin");
    let mut pong = Proc(Some(
        Command::new(BIN)
            .args(["pong", &uri, "--duration", "60s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    // The pong's rings exist once it runs: the one it writes at once.
    let end = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&format!("/dev/shm/hftnet-shm.{n}.s2c")).exists() {
        assert!(Instant::now() < end, "pong made no ring");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = hftnet(&["ping", &uri, "--count", "5000", "--warmup", "100", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = json(&out);
    assert_eq!(p["samples"], 5000);
    assert_eq!(
        (p["lost"].as_u64(), p["corrupted"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(p["capabilities"]["backend"]["kind"], "shm");
    assert_eq!(p["capabilities"]["backend"]["reader"]["missed"], 0);
    assert!(p["rtt_ns"]["p50"].as_u64().unwrap() > 0);

    // The ping is gone (its ring closed and removed); the pong's reader
    // waits for a new one, and its own ring is live.
    let s = hftnet(&["shm", "stat", &format!("{n}.s2c"), "--json"]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let v = json(&s);
    assert_eq!(v["writer"]["state"], "live");
    assert_eq!(
        v["writer"]["pid"].as_u64(),
        Some(u64::from(pong.child().id()))
    );
    assert_eq!(v["head"], 5100, "every probe answered once");
    // A duplex name stats both rings; rm refuses the live one.
    let s = hftnet(&["shm", "stat", n]);
    assert!(s.status.success());
    let text = String::from_utf8_lossy(&s.stdout);
    assert!(text.contains(&format!("# ring: {n}.s2c")), "{text}");
    let rm = hftnet(&["shm", "rm", &format!("{n}.s2c")]);
    assert_eq!(rm.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&rm.stderr).contains("live writer"),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );

    // Another ping finds the pong's reader waiting: it attaches to the new ring.
    let out = hftnet(&["ping", &uri, "--count", "1000", "--warmup", "0", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["samples"], 1000);

    // Killed, the pong leaves a stale ring: listed as such, removed without --force.
    let pid = pong.child().id();
    pong.child().kill().unwrap();
    pong.child().wait().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    let ring = loop {
        let l = json(&hftnet(&["shm", "list", "--json"]));
        let r = l["rings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ring"]["name"] == format!("{n}.s2c"))
            .cloned()
            .expect("the pong's ring is listed");
        if r["stale"] == true {
            break r;
        }
        assert!(Instant::now() < end, "killed writer not seen dead: {r}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ring["ring"]["writer"]["state"], "dead");
    assert_eq!(ring["ring"]["writer"]["pid"].as_u64(), Some(u64::from(pid)));
    let text = String::from_utf8_lossy(&hftnet(&["shm", "list"]).stdout).to_string();
    assert!(text.contains("[stale"), "{text}");
    let rm = hftnet(&["shm", "rm", n]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
    assert!(
        String::from_utf8_lossy(&rm.stdout).contains(&format!("removed shm ring {n}.s2c")),
        "{}",
        String::from_utf8_lossy(&rm.stdout)
    );
    assert!(name.left().is_empty(), "{:?}", name.left());
    let gone = hftnet(&["shm", "stat", n]);
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no shm ring"));
}

#[test]
fn blast_into_sink_over_shm_delivers_every_message() {
    let name = Name::new("bs");
    let n = &name.0;
    let mut sink = Proc(Some(
        Command::new(BIN)
            .args([
                "sink",
                &format!("shm://{n}?rx=adaptive"),
                "--count",
                "200000",
                "--duration",
                "30s",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // The sink's own (unused) ring appears when it runs.
    let end = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&format!("/dev/shm/hftnet-shm.{n}.s2c")).exists() {
        assert!(Instant::now() < end, "sink made no ring");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A ring larger than the whole run, so a sink that attaches late still
    // reads every message from the start; a second of sending, so it has
    // that long to attach on a loaded 2-vCPU machine.
    let out = hftnet(&[
        "blast",
        &format!("shm://{n}?slots=262144&size=64"),
        "--count",
        "200000",
        "--rate",
        "200000",
        "--size",
        "64",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["sent"], 200_000);
    let end = Instant::now() + Duration::from_secs(30);
    while sink.child().try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "sink did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = sink.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(
        (v["packets"].as_u64(), v["drops"].as_u64()),
        (Some(200_000), Some(0))
    );
    let r = &v["capabilities"]["backend"]["reader"];
    assert_eq!(
        (r["received"].as_u64(), r["missed"].as_u64()),
        (Some(200_000), Some(0))
    );
    assert!(name.left().is_empty(), "{:?}", name.left());
}

#[test]
fn bad_shm_uris_and_names_exit_2_naming_the_problem() {
    for (args, want) in [
        (vec!["ping", "shm://bad.name"], "name of 1 to 64"),
        (vec!["pong", "shm://x?slots=1000"], "power of two"),
        (vec!["sink", "shm://x?perm=0777"], "octal"),
        (vec!["shm", "stat", "../etc"], "bad shm ring name"),
        (vec!["shm", "rm", "no-such-ring-anywhere"], "no shm ring"),
        (
            vec!["shm", "list", "--dir", "/no/such/dir"],
            "not a directory",
        ),
    ] {
        let out = hftnet(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
