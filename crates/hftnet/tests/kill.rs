//! SIGKILL of each process that creates something, by its PID, and what is
//! left afterwards: nothing, or what the documented clean-up removes.
//! - `hftnet lab` (a ladder run): its namespaces and its shm rows' rings in
//!   /dev/shm stay; `hftnet lab down` removes both.
//! - `hftnet exchange` with shm:// feeds: its rings stay, marked dead;
//!   `hftnet shm rm` removes them.
//! - `hftnet ping` over xdp://: the steering program goes with the process
//!   (its `bpf_link`); `hftnet pong` over xdp:// is checked the same way in
//!   cli.rs (`xdp_stats_and_no_program_left_after_sigkill`).
//! - `hftnet tune apply`: in tune.rs, against a fake tree
//!   (`a_killed_apply_is_undone_by_revert_wherever_it_was_killed`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Proc, skip_without_root, spawn_in};
use hftnet_lab::Lab;

fn hftnet(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Files of /dev/shm whose name contains `part`.
fn shm_files(part: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.contains(part))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigkill(p: &mut Proc) {
    let c = p.child();
    c.kill().unwrap(); // SIGKILL, to this child's PID only
    c.wait().unwrap();
}

#[test]
fn a_killed_lab_run_is_cleaned_by_lab_down() {
    if skip_without_root("a_killed_lab_run_is_cleaned_by_lab_down") {
        return;
    }
    let mut run = Proc(Some(
        Command::new(BIN)
            .args([
                "lab",
                "--transports",
                "shm",
                "--duration",
                "20s",
                "--rounds",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let pid = run.child().id();
    let lab = || {
        hftnet_lab::list()
            .into_iter()
            .find(|l| hftnet_lab::creator_pid(&l.name) == Some(pid))
    };
    let rings = format!("hftnet-shm.{}{pid}-", hftnet_io::shm::LADDER_PREFIX);
    // The lab first, then the shm rows (after the floor row).
    wait_for("the run's lab", Duration::from_secs(60), || lab().is_some());
    wait_for("the shm rows' rings", Duration::from_secs(120), || {
        !shm_files(&rings).is_empty()
    });
    sigkill(&mut run);
    let name = lab().expect("a killed run's lab stays").name;
    assert!(!shm_files(&rings).is_empty(), "its rings stay too");
    let o = hftnet(&["lab", "down", "--name", &name]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("removed ring"), "{out}");
    assert!(lab().is_none(), "namespaces gone");
    assert!(
        !hftnet_sys::netns::list()
            .unwrap_or_default()
            .iter()
            .any(|n| n.contains(&name)),
        "no namespace of {name}"
    );
    assert_eq!(shm_files(&rings), Vec::<String>::new(), "rings gone");
}

/// What `hftnet lab down --all` does with rings: those of dead lab runs go,
/// those of running processes and other rings stay (in a directory of the
/// test's own, so nobody else's rings are touched).
#[test]
fn stale_ladder_rings_are_told_from_live_ones() {
    let dir = std::env::temp_dir().join(format!("hftnet-kill-rings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display().to_string();
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let me = std::process::id();
    let names = [
        format!("{}{dead}-9000", hftnet_io::shm::LADDER_PREFIX),
        format!("{}{me}-9001", hftnet_io::shm::LADDER_PREFIX),
        format!("other-{dead}"),
    ];
    // Writers killed without a word: their rings stay, writer dead.
    for n in &names {
        let uri = format!("shm://{n}?dir={d}&as=pub");
        let mut w = Proc(Some(
            Command::new(BIN)
                .args(["blast", &uri, "--duration", "60s", "--rate", "10"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        let file = dir.join(format!("hftnet-shm.{n}"));
        wait_for("the ring", Duration::from_secs(30), || file.exists());
        sigkill(&mut w);
    }
    let removed: Vec<String> = hftnet_io::shm::remove_stale_ladder_rings(&dir, None)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(removed, vec![names[0].clone()]);
    assert!(!dir.join(format!("hftnet-shm.{}", names[0])).exists());
    assert!(
        dir.join(format!("hftnet-shm.{}", names[1])).exists(),
        "a live process's"
    );
    assert!(
        dir.join(format!("hftnet-shm.{}", names[2])).exists(),
        "not a ladder ring"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Needs no root: the exchange's feeds are shm rings here.
#[test]
fn a_killed_exchange_leaves_dead_rings_that_shm_rm_removes() {
    let me = std::process::id();
    let (a, b) = (format!("kill-ex-{me}-a"), format!("kill-ex-{me}-b"));
    let port = 31_000 + (me % 1000) as u16;
    let retransmit = format!("udp://127.0.0.1:{port}");
    let mut ex = Proc(Some(
        Command::new(BIN)
            .args([
                "exchange",
                "--feed-a",
                &format!("shm://{a}"),
                "--feed-b",
                &format!("shm://{b}"),
                "--retransmit",
                &retransmit,
                "--messages",
                "10000000",
                "--rate",
                "10000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let part = format!("kill-ex-{me}-");
    wait_for("both feed rings", Duration::from_secs(30), || {
        shm_files(&part).len() == 2
    });
    sigkill(&mut ex);
    assert_eq!(shm_files(&part).len(), 2, "a killed writer cannot unlink");
    let o = hftnet(&["shm", "list"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with(&a))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("dead") && line.contains("stale"), "{line}");
    for n in [&a, &b] {
        let o = hftnet(&["shm", "rm", n]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(shm_files(&part), Vec::<String>::new());
}

#[test]
fn a_killed_xdp_ping_leaves_no_program() {
    if skip_without_root("a_killed_xdp_ping_leaves_no_program") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let attached = |h: &hftnet_lab::Host| {
        h.run(|| hftnet_io::xdp::steer::attached_program("veth0").unwrap())
            .unwrap()
    };
    let _pong = spawn_in(
        lab.exchange(),
        &["pong", "udp://198.18.0.2:9750", "--duration", "60s"],
    );
    let mut ping = spawn_in(
        lab.trader(),
        &[
            "ping",
            "xdp://veth0/0?port=9750&peer=198.18.0.2:9750",
            "--rate",
            "1000",
            "--duration",
            "60s",
        ],
    );
    wait_for("ping's steering program", Duration::from_secs(30), || {
        attached(lab.trader()).is_some()
    });
    sigkill(&mut ping);
    wait_for(
        "the program to go with the process",
        Duration::from_secs(10),
        || attached(lab.trader()).is_none(),
    );
}

/// `hftnet lab up` killed at any point of building: whatever namespaces it
/// made so far, `hftnet lab down --name` removes them all.
#[test]
fn a_killed_lab_up_is_cleaned_by_lab_down() {
    if skip_without_root("a_killed_lab_up_is_cleaned_by_lab_down") {
        return;
    }
    let (mut partial, mut whole) = (0, 0);
    for step in 0..16u64 {
        let name = format!("k{}-{step}", std::process::id());
        let mut up = Proc(Some(
            Command::new(BIN)
                .args(["lab", "up", "--name", &name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        std::thread::sleep(Duration::from_micros(step * 600));
        sigkill(&mut up);
        let mine = || {
            hftnet_sys::netns::list()
                .unwrap_or_default()
                .into_iter()
                .filter(|n| n.starts_with(&format!("hft-{name}-")))
                .count()
        };
        match mine() {
            1 => partial += 1,
            2 => whole += 1,
            _ => {}
        }
        if mine() > 0 {
            let o = hftnet(&["lab", "down", "--name", &name]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert_eq!(mine(), 0, "step {step}: namespaces of {name} left");
    }
    eprintln!("killed with one of two namespaces made {partial} times, with both {whole} times");
}
