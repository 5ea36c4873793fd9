//! `hftnet lab --ladder`: the paper's tuning ladder in a lab, each rung
//! judged against the seeds' claim, the host put back as it was — after a
//! full run and after a Ctrl-C in the middle of one.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{BIN, Proc, TempDir, skip_without_root};

/// The ladders of this file one at a time: each isolates a CPU and checks
/// the host against what it was before.
static ONE_LADDER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_ladder() -> std::sync::MutexGuard<'static, ()> {
    ONE_LADDER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the ladder may change on the host, as text: the cgroups named
/// hftnet under the cpuset mounts, the cpusets of init and of this
/// process, and the ladder's snapshot files.
fn host_state() -> String {
    let mut s = String::new();
    for dir in ["/sys/fs/cgroup/cpuset", "/sys/fs/cgroup"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut names: Vec<String> = rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("hftnet"))
                .collect();
            names.sort();
            s += &format!("{dir}: {names:?}\n");
        }
    }
    for p in ["/proc/1/cpuset", "/proc/self/cpuset"] {
        s += &format!("{p}: {:?}\n", std::fs::read_to_string(p).ok());
    }
    // Servers the ladders (this binary's hftnet) started and did not stop.
    let pongs = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| {
            let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
            // `hftnet pong URI …` (not a `pong --serve-ladder`, which the
            // peer test runs on purpose).
            args.first() == Some(&BIN.as_bytes())
                && args.get(1) == Some(&&b"pong"[..])
                && args.get(2).is_some_and(|a| !a.starts_with(b"--"))
        })
        .count();
    s += &format!("hftnet pong processes: {pongs}\n");
    if let Ok(rd) = std::fs::read_dir("/var/lib/hftnet") {
        let mut snaps: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ladder-snapshot-"))
            .collect();
        snaps.sort();
        s += &format!("snapshots: {snaps:?}\n");
    }
    s
}

fn namespaces_gone(j: &Value) {
    for ns in j["lab"]["namespaces"].as_array().unwrap() {
        let ns = ns.as_str().unwrap();
        assert!(
            !std::path::Path::new("/run/netns").join(ns).exists(),
            "{ns} left behind"
        );
    }
}

#[test]
fn the_ladder_runs_every_rung_judges_each_claim_and_puts_the_host_back() {
    if skip_without_root("the_ladder_runs_every_rung_judges_each_claim_and_puts_the_host_back") {
        return;
    }
    let _one = one_ladder();
    let before = host_state();
    let dir = TempDir::new("hftnet-ladder");
    let json = dir.0.join("ladder.json");
    let out = Command::new(BIN)
        .args([
            "lab",
            "--ladder",
            "--quick",
            "--duration",
            "400ms",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(host_state(), before, "the host is as before the run");
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    namespaces_gone(&j);
    assert_eq!(j["mode"], "ladder");
    let rows = j["ladder"].as_array().unwrap();
    let steps: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["step"].as_str().unwrap().to_string(),
                r["protocol"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The paper's rungs over UDP and TCP, in its order, then the bypass
    // rungs of this build.
    let tuning: Vec<(String, String)> = [
        "baseline",
        "cpu_affinity",
        "irq_affinity",
        "cpu_isolation",
        "busy_poll",
        "spin",
    ]
    .iter()
    .flat_map(|s| [(s.to_string(), "udp".into()), (s.to_string(), "tcp".into())])
    .collect();
    assert_eq!(&steps[..12], &tuning[..], "{steps:?}");
    let bypass: Vec<&str> = steps[12..].iter().map(|(s, _)| s.as_str()).collect();
    let mut want = vec!["batching", "io_uring", "af_packet", "af_xdp"];
    if cfg!(feature = "dpdk") {
        want.push("dpdk");
    }
    want.push("shared_memory");
    assert_eq!(bypass, want);
    let verdicts = [
        "reference",
        "holds",
        "smaller",
        "larger",
        "no_claim",
        "not_measurable",
    ];
    for r in rows {
        let step = r["step"].as_str().unwrap();
        let v = r["verdict"].as_str().unwrap();
        assert!(verdicts.contains(&v), "{r}");
        assert!(!r["claim"]["text"].as_str().unwrap().is_empty(), "{r}");
        assert!(!r["claim"]["source"].as_str().unwrap().is_empty(), "{r}");
        if step == "baseline" {
            assert_eq!(v, "reference", "{r}");
            assert_eq!(r["pinned"], false, "{r}");
        } else {
            assert_eq!(r["pinned"], true, "{r}");
        }
        if v == "not_measurable" {
            assert!(!r["reason"].as_str().unwrap().is_empty(), "{r}");
        }
        // Every row measured round trips without loss (the busy-poll rows
        // measure at least their first slice, then stop if it took no
        // effect).
        let samples = r["samples"].as_u64().unwrap();
        assert!(samples > 0, "{r}");
        assert_eq!(
            r["sent"].as_u64().unwrap(),
            samples + r["lost"].as_u64().unwrap(),
            "{r}"
        );
        let p = &r["rtt_ns"];
        assert!(
            p["p50"].as_u64().unwrap() <= p["p99"].as_u64().unwrap(),
            "{r}"
        );
        // The changes are the p50s' against the rungs they name.
        if step != "baseline" {
            assert!(r["change_vs_baseline_pct"].is_f64(), "{r}");
            assert!(r["change_vs_previous_pct"].is_f64(), "{r}");
        }
        // A verdict that judges has a measured reduction beside the claim.
        if ["holds", "smaller", "larger"].contains(&v) {
            let m = r["measured_reduction_pct"].as_f64().unwrap();
            let lo = r["claim"]["reduction_pct"][0].as_f64().unwrap();
            let hi = r["claim"]["reduction_pct"][1].as_f64().unwrap();
            match v {
                "holds" => assert!(lo <= m && m <= hi, "{r}"),
                "smaller" => assert!(m < lo, "{r}"),
                _ => assert!(m > hi, "{r}"),
            }
        }
    }
    // The lab's veth has no IRQs: the IRQ rung says so.
    for r in rows.iter().filter(|r| r["step"] == "irq_affinity") {
        assert_eq!(r["verdict"], "not_measurable", "{r}");
        assert!(
            r["reason"].as_str().unwrap().contains("veth has no IRQs"),
            "{r}"
        );
    }
    // Isolation took effect for every isolated rung (as root with a cpuset
    // controller, which CI has), or says why it could not.
    for r in rows.iter().filter(|r| r["isolated"] == true) {
        let host: Vec<&str> = r["host"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap())
            .collect();
        // Isolated, or saying why not ("not isolated: …").
        assert!(host.iter().any(|h| h.contains("isolated")), "{r}");
        if std::env::var_os("CI").is_some() {
            assert!(
                host.iter().any(|h| h.starts_with("server CPU isolated")),
                "CI runs as root with cpusets: {r}"
            );
        }
    }
    assert!(stdout.contains("the paper's ladder"), "{stdout}");
    assert!(stdout.contains("+ CPU isolation"), "{stdout}");
}

/// Ctrl-C in the middle of the ladder (while rungs with the server CPU
/// isolated run) ends it with the host as it was and the lab removed.
#[test]
fn an_interrupted_ladder_puts_the_host_back() {
    if skip_without_root("an_interrupted_ladder_puts_the_host_back") {
        return;
    }
    let _one = one_ladder();
    let before = host_state();
    let dir = TempDir::new("hftnet-ladder-int");
    let json = dir.0.join("ladder.json");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "lab",
        "--ladder",
        "--duration",
        "4s",
        "--rounds",
        "2",
        "--json",
    ])
    .arg(&json)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut p = Proc(Some(cmd.spawn().unwrap()));
    // Wait until a rung with isolation is under way (the isolated cpuset
    // exists), then interrupt.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = host_state();
        if (state.contains("\"hftnet\"") || state.contains("\"hftnet.slice\"")) && state != before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no isolated rung started within 120 s: {state}"
        );
        assert!(
            matches!(p.child().try_wait(), Ok(None)),
            "the ladder ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    hftnet_sys::proc::interrupt(p.child()).unwrap();
    let out = common::finish(p, Duration::from_secs(60), "the interrupted ladder");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        host_state(),
        before,
        "the host is as before the run: {stderr}"
    );
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    namespaces_gone(&j);
}

#[test]
fn the_ladder_refuses_what_it_cannot_do() {
    // Options of the transport ladder do not mix with it.
    let out = Command::new(BIN)
        .args(["lab", "--ladder", "--transports", "udp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--transports") && err.contains("--ladder"),
        "{err}"
    );
    if skip_without_root("the_ladder_refuses_what_it_cannot_do (as nobody)") {
        return;
    }
    // Without root: refused before anything is built, naming why.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(["lab", "--ladder", "--quick"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs root"), "{err}");
}

/// Two machines, played by the lab's two namespaces: `hftnet pong
/// --serve-ladder` in one, `hftnet lab --ladder --peer … --iface …` in the
/// other. The same rungs as in a lab run except shared memory (one host
/// only), each measured, isolation applied on the peer's side, the host
/// put back, and the peer still serving a second client afterwards until
/// Ctrl-C ends it cleanly.
#[test]
fn the_ladder_runs_across_two_machines_through_the_control_channel() {
    if skip_without_root("the_ladder_runs_across_two_machines_through_the_control_channel") {
        return;
    }
    let _one = one_ladder();
    let before = host_state();
    let lab = hftnet_lab::Lab::two_host(None).unwrap();
    let (peer, me) = (lab.exchange(), lab.trader());
    let ctl = format!("{}:7100", peer.addr());
    let mut serve = common::spawn_in(
        peer,
        &["pong", "--serve-ladder", &ctl, "--iface", peer.iface()],
    );
    // Listening once it printed where.
    {
        use std::io::BufRead;
        let out = serve.child().stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(out).lines();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let l = lines.next().expect("the peer ended").unwrap();
            if l.starts_with("# listen:") {
                break;
            }
            assert!(Instant::now() < deadline, "the peer did not start");
        }
        std::thread::spawn(move || for _ in lines {});
    }
    let dir = TempDir::new("hftnet-ladder-peer");
    let json = dir.0.join("peer.json");
    let run = |json: &std::path::Path| {
        common::run_in(
            me,
            &[
                "lab",
                "--ladder",
                "--quick",
                "--duration",
                "400ms",
                "--peer",
                &ctl,
                "--iface",
                me.iface(),
                "--json",
                json.to_str().unwrap(),
            ],
            Duration::from_secs(180),
        )
    };
    let out = run(&json);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["mode"], "ladder-peer");
    assert!(j["lab"].is_null(), "{}", j["lab"]);
    let rows = j["ladder"].as_array().unwrap();
    let steps: Vec<&str> = rows.iter().map(|r| r["step"].as_str().unwrap()).collect();
    assert_eq!(steps.len(), 12 + 4, "{steps:?}");
    assert!(!steps.contains(&"shared_memory"), "{steps:?}");
    assert!(
        j["missing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap().contains("shared memory")),
        "{}",
        j["missing"]
    );
    for r in rows {
        assert!(r["samples"].as_u64().unwrap() > 0, "{r}");
        // The layer-2 rungs name each end's own interface.
        if r["protocol"] == "packet" || r["protocol"] == "xdp" {
            assert!(
                r["server_uri"].as_str().unwrap().contains(peer.iface()),
                "{r}"
            );
            assert!(
                r["client_uri"].as_str().unwrap().contains(me.iface()),
                "{r}"
            );
        }
        if r["isolated"] == true && std::env::var_os("CI").is_some() {
            assert!(
                r["host"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|h| h.as_str().unwrap().contains("isolated")),
                "{r}"
            );
        }
    }
    // The peer still runs, holding its lock on the snapshot directory
    // (which it made, if there was none): the rest is as before; the
    // directory goes with the peer (checked at the end).
    let no_empty_dir = |s: String| s.replace("snapshots: []\n", "");
    assert_eq!(
        no_empty_dir(host_state()),
        no_empty_dir(before.clone()),
        "the host is as before the run"
    );
    // The peer serves the next client too (a bad HELLO first: refused,
    // the session goes on; a row it would not build: refused); a third
    // client meanwhile is told the peer is busy.
    {
        use std::io::{BufRead, Write};
        let connect = || {
            let c = me
                .run({
                    let ctl = ctl.clone();
                    move || std::net::TcpStream::connect(&ctl).unwrap()
                })
                .unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let r = std::io::BufReader::new(c.try_clone().unwrap());
            (c, r)
        };
        let (mut c, mut r) = connect();
        let mut line = String::new();
        c.write_all(
            b"START {}\nHELLO other 9\nHELLO hftnet-ladder 1\n\
              START {\"row\":\"shm/spin\",\"port\":9000,\"pinned\":true,\"isolate\":true,\"max_ms\":1000}\n",
        )
        .unwrap();
        for want in [
            "ERROR say HELLO first",
            "ERROR this peer speaks",
            "HELLO hftnet-ladder 1 {",
            "ERROR shm:// is not a network transport",
        ] {
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(want), "{line:?}, wanted {want:?}");
        }
        let (_c2, mut r2) = connect();
        line.clear();
        r2.read_line(&mut line).unwrap();
        assert!(line.starts_with("ERROR busy"), "{line:?}");
        c.write_all(b"BYE\n").unwrap();
    }
    hftnet_sys::proc::interrupt(serve.child()).unwrap();
    let st = common::finish(serve, Duration::from_secs(10), "pong --serve-ladder");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_eq!(host_state(), before, "the host is as before, the peer gone");
}
