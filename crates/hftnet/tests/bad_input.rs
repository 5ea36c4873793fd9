//! Hostile values on every command and every URI parameter: each is
//! refused at once, before anything is allocated, opened or started, with
//! an error naming the parameter and its limit, exit 2 — never a panic
//! (101), an abort (134), a hang, or gigabytes of memory.
//!
//! A table of (arguments, expected exit, words expected on stderr), each run
//! under a 1 GiB address-space limit (`ulimit -v`), so an allocation of
//! gigabytes fails (an abort) instead of passing unnoticed, and killed if it
//! is still running after a minute. Only refusals are in the table: with a
//! value that passed, a command would start traffic. URIs are tried with
//! `ping --size 0`, refused before anything opens even if the URI passed,
//! and layer-2 URIs name an interface that does not exist: nothing here
//! touches an interface, and nothing needs root.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::BIN;

/// Address space allowed to each run, in KiB (`ulimit -v`).
const ADDRESS_SPACE_KIB: u64 = 1 << 20;

/// A run still going after this is a hang.
const HANG: Duration = Duration::from_secs(60);

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
}

fn run(args: &[&str]) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(BIN)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hftnet {args:?} was still running after {HANG:?}: a hang, not a refusal");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        code: status.code(),
        signal: status.signal(),
        stderr: reader.join().unwrap(),
    }
}

/// Runs every case; collects every mismatch before failing, so one run
/// lists all of them.
fn check(cases: &[(&[&str], i32, &[&str])]) {
    let mut failures = Vec::new();
    for (args, want_code, words) in cases {
        let o = run(args);
        let missing: Vec<&&str> = words.iter().filter(|w| !o.stderr.contains(**w)).collect();
        if o.code != Some(*want_code)
            || !missing.is_empty()
            || o.stderr.contains("panicked")
            || o.stderr.contains("memory allocation")
        {
            failures.push(format!(
                "hftnet {args:?}: exit {:?} (signal {:?}), expected {want_code}; missing \
                 {missing:?}; stderr: {}",
                o.code,
                o.signal,
                o.stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs not refused as they should be:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

const HUGE: &str = "18446744073709551615"; // u64::MAX

#[test]
fn ping_pong_blast_sink_refuse_hostile_values() {
    let u = "udp://127.0.0.1:9";
    check(&[
        // pong
        (&["pong", u, "--burst", "0"], 2, &["--burst 0", "1..=1024"]),
        (
            &["pong", u, "--protocol", "netperf"],
            2,
            &["--protocol", "hftnet", "sockperf"],
        ),
        (
            &[
                "pong",
                "tcp://127.0.0.1:9?framing=len32",
                "--protocol",
                "sockperf",
            ],
            2,
            &["framing=len32", "framing=sockperf"],
        ),
        (
            &["ping", u, "--protocol", "SOCKPERF2"],
            2,
            &["--protocol", "hftnet", "sockperf"],
        ),
        (
            &["ping", u, "--protocol", "sockperf", "--size", "13"],
            2,
            &["13", "14..="],
        ),
        (
            &[
                "ping",
                "tcp://127.0.0.1:9?framing=soupbin",
                "--protocol",
                "sockperf",
            ],
            2,
            &["framing=soupbin", "framing=sockperf"],
        ),
        (&["pong", u, "--burst", "100000000"], 2, &["1..=1024"]),
        (&["pong", u, "--burst", HUGE], 2, &["1..=1024"]),
        (&["pong", u, "--burst", "-1"], 2, &["unexpected argument"]),
        (&["pong", u, "--burst", "many"], 2, &["--burst"]),
        (
            &["pong", u, "--duration", "0s"],
            2,
            &["--duration", "more than zero"],
        ),
        (
            &["pong", u, "--duration", "1000000h"],
            2,
            &["--duration", "0 to 7 days"],
        ),
        (
            &["pong", u, "--duration", &format!("{HUGE}s")],
            2,
            &["not a duration"],
        ),
        (&["pong", u, "--duration", "1e12"], 2, &["not a duration"]),
        (&["pong", u, "--duration", ""], 2, &["not a duration"]),
        (
            &["pong", u, "--cpu", "4096"],
            2,
            &["CPU 4096", "allowed CPUs"],
        ),
        (&["pong", u, "--cpu", HUGE], 2, &["allowed CPUs"]),
        (&["pong", u, "--fifo", "0"], 2, &["priority 0", "1..=99"]),
        (&["pong", u, "--fifo", "100"], 2, &["1..=99"]),
        (&["pong", u, "--fifo", "2147483647"], 2, &["1..=99"]),
        // ping
        (
            &["ping", u, "--size", "0"],
            2,
            &["message size 0", "20..=65507"],
        ),
        (&["ping", u, "--size", "1"], 2, &["20..=65507"]),
        (&["ping", u, "--size", HUGE], 2, &["20..=65507"]),
        (&["ping", u, "--size", "16G"], 2, &["20..=65507"]),
        (&["ping", u, "--size", "1e12"], 2, &["not a size"]),
        (&["ping", u, "--size", "99999999999G"], 2, &["not a size"]),
        (&["ping", u, "--size", ""], 2, &["not a size"]),
        (
            &["ping", u, "--count", "0"],
            2,
            &["--count", "more than zero"],
        ),
        (&["ping", u, "--count", "-1"], 2, &["unexpected argument"]),
        (
            &["ping", u, "--duration", "0s"],
            2,
            &["--duration", "more than zero"],
        ),
        (&["ping", u, "--duration", "1000000h"], 2, &["0 to 7 days"]),
        (&["ping", u, "--rate", "0"], 2, &["--rate", "at least 1"]),
        (
            &["ping", u, "--timeout", "0s"],
            2,
            &["--timeout", "more than zero"],
        ),
        (&["ping", u, "--timeout", "1000000h"], 2, &["0 to 7 days"]),
        (&["ping", u, "--cpu", "4096"], 2, &["CPU 4096"]),
        (&["ping", u, "--fifo", "100"], 2, &["1..=99"]),
        // blast
        (
            &["blast", u, "--size", "0"],
            2,
            &["message size 0", "20..=65507"],
        ),
        (&["blast", u, "--size", HUGE], 2, &["20..=65507"]),
        (
            &["blast", u, "--duration", "0s"],
            2,
            &["--duration", "more than zero"],
        ),
        (&["blast", u, "--duration", "1000000h"], 2, &["0 to 7 days"]),
        (&["blast", u, "--count", "0"], 2, &["--count", "at least 1"]),
        (&["blast", u, "--rate", "0"], 2, &["--rate", "at least 1"]),
        (&["blast", u, "--burst", "0"], 2, &["--burst 0", "1..=1024"]),
        (&["blast", u, "--burst", HUGE], 2, &["1..=1024"]),
        (&["blast", u, "--cpu", "4096"], 2, &["CPU 4096"]),
        // sink
        (
            &["sink", u, "--duration", "0s"],
            2,
            &["--duration", "more than zero"],
        ),
        (
            &["sink", u, "--idle", "1000000h"],
            2,
            &["--idle", "0 to 7 days"],
        ),
        (&["sink", u, "--count", "0"], 2, &["--count", "at least 1"]),
        (&["sink", u, "--burst", "0"], 2, &["1..=1024"]),
        (&["sink", u, "--burst", HUGE], 2, &["1..=1024"]),
        (
            &["sink", u, "--max-size", "0"],
            2,
            &["--max-size 0", "20..=65507"],
        ),
        (&["sink", u, "--max-size", HUGE], 2, &["20..=65507"]),
        (&["sink", u, "--max-size", "1G"], 2, &["20..=65507"]),
        (&["sink", u, "--cpu", "4096"], 2, &["CPU 4096"]),
    ]);
}

/// `--loopback`: were a value to pass, the run would stay in this namespace
/// (no lab left behind by the kill of a hang).
#[test]
fn lab_refuses_hostile_values_before_building_anything() {
    check(&[
        (
            &["lab", "--loopback", "--duration", "0s"],
            2,
            &["--duration", "at least 1ms per round"],
        ),
        (
            &["lab", "--loopback", "--duration", "1000000h"],
            2,
            &["0 to 7 days"],
        ),
        (
            &["lab", "--loopback", "--duration", &format!("{HUGE}s")],
            2,
            &["not a duration"],
        ),
        (
            &["lab", "--loopback", "--rounds", "0"],
            2,
            &["--rounds", "at least 1"],
        ),
        (
            &["lab", "--loopback", "--rounds", "4294967295"],
            2,
            &["1ms per round"],
        ),
        (
            &["lab", "--loopback", "--rounds", "4294967296"],
            2,
            &["--rounds"],
        ),
        // A size no row can carry was found out only after the lab was built
        // and every row had failed (exit 1).
        (
            &["lab", "--loopback", "--size", "0"],
            2,
            &["--size 0", "20..=65507"],
        ),
        (&["lab", "--loopback", "--size", "1"], 2, &["20..=65507"]),
        (
            &["lab", "--loopback", "--size", "65508"],
            2,
            &["20..=65507"],
        ),
        (&["lab", "--loopback", "--size", "16G"], 2, &["20..=65507"]),
        (&["lab", "--loopback", "--size", HUGE], 2, &["20..=65507"]),
        (&["lab", "--loopback", "--size", "1e12"], 2, &["not a size"]),
        // Found out before the run, not after it.
        (
            &[
                "lab",
                "--loopback",
                "--hgrm-dir",
                "/proc/hftnet-no-such-dir",
            ],
            2,
            &[
                "--hgrm-dir /proc/hftnet-no-such-dir",
                "cannot create the directory",
            ],
        ),
        (
            &["lab", "--loopback", "--transports", ""],
            2,
            &["unknown transport", "accepted"],
        ),
        (
            &["lab", "--loopback", "--transports", "udp,bogus"],
            2,
            &["\"bogus\""],
        ),
        (
            &["lab", "up", "--name", ""],
            2,
            &["invalid lab name", "1 to 32"],
        ),
        (&["lab", "up", "--name", "a/b"], 2, &["invalid lab name"]),
        (
            &["lab", "up", "--queues", "0"],
            2,
            &["--queues", "0 is not in 1.."],
        ),
        (&["lab", "up", "--queues", "x"], 2, &["--queues"]),
        (
            &["lab", "up", "--name", &"a".repeat(73)],
            2,
            &["too long", "1 to 32"],
        ),
        (&["lab", "down", "--name", "../x"], 2, &["invalid lab name"]),
    ]);
}

#[test]
fn market_commands_refuse_hostile_values() {
    let f = "udp://127.0.0.1:9";
    let dir = std::env::temp_dir().join(format!("hftnet-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let w = dir.join("day.itch");
    let w = w.to_str().unwrap();
    let o = "tcp://127.0.0.1:9";
    check(&[
        (&["exchange"], 2, &["--feed-a", "--write"]),
        // Order entry: the listen URI, the logins, the client limit.
        (
            &[
                "exchange",
                "--feed-a",
                f,
                "--orders",
                "tcp://127.0.0.1:9?framing=len32",
                "--login",
                "a:b",
            ],
            2,
            &["--orders", "framing=len32", "soupbin"],
        ),
        (
            &[
                "exchange",
                "--feed-a",
                f,
                "--orders",
                "udp://127.0.0.1:9",
                "--login",
                "a:b",
            ],
            2,
            &["--orders", "tcp://IP:PORT"],
        ),
        (
            &[
                "exchange",
                "--feed-a",
                f,
                "--orders",
                o,
                "--login",
                "toolong:pw",
            ],
            2,
            &["--login", "1 to 6"],
        ),
        (
            &[
                "exchange",
                "--feed-a",
                f,
                "--orders",
                o,
                "--login",
                "bob:elevenchars",
            ],
            2,
            &["--login", "1 to 10"],
        ),
        (
            &["exchange", "--feed-a", f, "--orders", o, "--login", "alice"],
            2,
            &["--login", "USER:PASSWORD"],
        ),
        (
            &[
                "exchange", "--feed-a", f, "--orders", o, "--login", "a:b", "--login", "A:c",
            ],
            2,
            &["--login", "twice"],
        ),
        (
            &[
                "exchange",
                "--feed-a",
                f,
                "--orders",
                o,
                "--login",
                "a:b",
                "--max-clients",
                "0",
            ],
            2,
            &["--max-clients 0", "1 to 4096"],
        ),
        (
            &[
                "exchange",
                "--feed-a",
                f,
                "--orders",
                o,
                "--login",
                "a:b",
                "--max-clients",
                HUGE,
            ],
            2,
            &["--max-clients"],
        ),
        (&["exchange", "--feed-a", f, "--orders", o], 2, &["--login"]),
        (
            &["exchange", "--feed-a", f, "--login", "a:b"],
            2,
            &["--orders"],
        ),
        (
            &["exchange", "--feed-a", f, "--hgrm", "x.hgrm"],
            2,
            &["--orders"],
        ),
        (
            &["exchange", "--feed-a", f, "--symbols", "0"],
            2,
            &["symbols", "at least 1"],
        ),
        (
            &["exchange", "--feed-a", f, "--symbols", "65536"],
            2,
            &["0..=65535"],
        ),
        // A session of nothing ran and exited 0.
        (
            &["exchange", "--write", w, "--messages", "0"],
            2,
            &["--messages", "at least 1"],
        ),
        (
            &["exchange", "--feed-a", f, "--duration", "0s"],
            2,
            &["--duration", "more than zero"],
        ),
        (
            &["exchange", "--feed-a", f, "--burst", "0"],
            2,
            &["--burst 0", "between 1 and"],
        ),
        (
            &["exchange", "--feed-a", f, "--burst", HUGE],
            2,
            &["between 1 and"],
        ),
        (
            &["exchange", "--feed-a", f, "--heartbeat", "0s"],
            2,
            &["--heartbeat", "1ms or more"],
        ),
        (
            &["exchange", "--feed-a", f, "--heartbeat", "1000000h"],
            2,
            &["0 to 7 days"],
        ),
        // Aborted on a failed allocation of 32 GiB (exit 134).
        (
            &["exchange", "--feed-a", f, "--history", HUGE],
            2,
            &["--history", "8388608"],
        ),
        (
            &["exchange", "--feed-a", f, "--history", "1000000000000"],
            2,
            &["--history", "8388608"],
        ),
        (
            &["exchange", "--feed-a", f, "--history", "8388609"],
            2,
            &["--history", "8388608"],
        ),
        (
            &["exchange", "--feed-a", f, "--history", "0"],
            2,
            &["--history", "8388608"],
        ),
        (
            &["exchange", "--feed-a", f, "--tx-batch", "0"],
            2,
            &["--tx-batch 0", "between 1 and 64"],
        ),
        (
            &["exchange", "--feed-a", f, "--tx-batch", "65"],
            2,
            &["--tx-batch 65", "between 1 and 64"],
        ),
        (
            &["exchange", "--feed-a", f, "--max-payload", "0"],
            2,
            &["--max-payload 0", "72"],
        ),
        (
            &["exchange", "--feed-a", f, "--max-payload", HUGE],
            2,
            &["max_payload", "65507"],
        ),
        (
            &["exchange", "--feed-a", f, "--loss-a", "2"],
            2,
            &["--loss-a", "between 0 and 1"],
        ),
        (
            &["exchange", "--feed-a", f, "--loss-a", "NaN"],
            2,
            &["between 0 and 1"],
        ),
        (
            &["exchange", "--feed-a", f, "--dup-a", "inf"],
            2,
            &["--dup-a"],
        ),
        (
            &["exchange", "--feed-a", f, "--loss-a", "-1"],
            2,
            &["unexpected argument"],
        ),
        (
            &["exchange", "--feed-a", f, "--session", "12345678901"],
            2,
            &["--session", "at most 10"],
        ),
        (
            &["exchange", "--feed-a", f, "--linger", "1000000h"],
            2,
            &["0 to 7 days"],
        ),
        (
            &["exchange", "--feed-a", f, "--allow", "10.0.0.0/33"],
            2,
            &["prefix length 33"],
        ),
        (
            &["exchange", "--feed-a", f, "--allow", ""],
            2,
            &["not an IP address"],
        ),
        (
            &["exchange", "--feed-a", f, "--request-rate", "0"],
            2,
            &["--request-rate", "10^12"],
        ),
        (
            &["exchange", "--feed-a", f, "--request-rate", HUGE],
            2,
            &["--request-rate", "10^12"],
        ),
        (
            &["exchange", "--feed-a", f, "--request-burst", HUGE],
            2,
            &["--request-burst", "10^12"],
        ),
        (
            &["exchange", "--feed-a", f, "--request-burst-bytes", HUGE],
            2,
            &["--request-burst-bytes"],
        ),
        (
            &["exchange", "--feed-a", f, "--request-total-rate", "0"],
            2,
            &["--request-total-rate", "10^12"],
        ),
        (
            &["exchange", "--feed-a", f, "--request-total-byte-rate", HUGE],
            2,
            &["--request-total-byte-rate", "10^12"],
        ),
        (
            &["exchange", "--feed-a", f, "--request-sources", "0"],
            2,
            &["--request-sources", "65536"],
        ),
        (
            &["exchange", "--feed-a", f, "--request-sources", HUGE],
            2,
            &["--request-sources", "65536"],
        ),
        (
            &["exchange", "--feed-a", f, "--file", "/nonexistent.itch"],
            2,
            &["/nonexistent.itch"],
        ),
        (
            &["exchange", "--feed-a", f, "--file", "/"],
            2,
            &["Is a directory"],
        ),
        (
            &["exchange", "--write", "/nonexistent/dir/x.itch"],
            2,
            &["/nonexistent/dir/x.itch"],
        ),
        (
            &["exchange", "--feed-a", ""],
            2,
            &["feed A URI", "malformed"],
        ),
        (
            &["exchange", "--feed-a", "bogus://x"],
            2,
            &["unknown transport scheme"],
        ),
        (&["feed"], 2, &["--feed-a"]),
        // Ran and exited 3 ("nothing received"), or re-requested without waiting.
        (
            &["feed", "--feed-a", f, "--duration", "0s"],
            2,
            &["--duration", "more than zero"],
        ),
        (
            &["feed", "--feed-a", f, "--idle-timeout", "0s"],
            2,
            &["--idle-timeout", "more than zero"],
        ),
        (
            &["feed", "--feed-a", f, "--request-timeout", "0s"],
            2,
            &["--request-timeout", "more than zero"],
        ),
        (
            &["feed", "--feed-a", f, "--gap-wait", "1000000h"],
            2,
            &["0 to 7 days"],
        ),
        (
            &["feed", "--feed-a", f, "--window", "1000"],
            2,
            &["--window 1000", "power of two"],
        ),
        (
            &["feed", "--feed-a", f, "--window", "33554432"],
            2,
            &["--window", "16777216"],
        ),
        (
            &["feed", "--feed-a", f, "--buffer-bytes", "1k"],
            2,
            &["--buffer-bytes 1024", "64M"],
        ),
        (
            &["feed", "--feed-a", f, "--session", "12345678901"],
            2,
            &["--session", "at most 10"],
        ),
        (
            &["feed", "--feed-a", f, "--symbols", ""],
            2,
            &["--symbols", "1 to 8"],
        ),
        (
            &["feed", "--feed-a", f, "--symbols", "TOOLONGSYMBOL"],
            2,
            &["1 to 8"],
        ),
        (&["feed", "--feed-a", f, "--cpu", "4096"], 2, &["CPU 4096"]),
        (
            &["feed", "--feed-a", f, "--publish", "shm://x?slots=3"],
            2,
            &["slots", "power of two"],
        ),
        (&["replay", "/nonexistent.itch"], 2, &["/nonexistent.itch"]),
        (&["replay", "/"], 2, &["Is a directory"]),
        (&["replay", ""], 2, &["a value is required"]),
        (
            &["replay", "/nonexistent.itch", "--symbols", ""],
            2,
            &["--symbols"],
        ),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn host_commands_refuse_hostile_values() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("hftnet-bad-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A profile and a snapshot larger than any real one (sparse: no disk used).
    let big_profile = dir.join("big.toml");
    std::fs::File::create(&big_profile)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    let big_snapshot = dir.join("big.json");
    let f = std::fs::File::create(&big_snapshot).unwrap();
    f.set_len(65 << 20).unwrap();
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .unwrap();
    let bp = big_profile.to_str().unwrap();
    let bs = big_snapshot.to_str().unwrap();
    check(&[
        (
            &["jitter", "--cpus", "4096", "--duration", "10ms"],
            2,
            &["CPU 4096", "allowed CPUs"],
        ),
        (
            &["jitter", "--cpus", "0-8191", "--duration", "10ms"],
            2,
            &["allowed CPUs"],
        ),
        (&["jitter", "--cpus", ""], 2, &["empty CPU list"]),
        (
            &["jitter", "--cpus", "9999999999999999999"],
            2,
            &["largest CPU number (8191)"],
        ),
        (&["jitter", "--duration", "0s"], 2, &["10ms to 3600s"]),
        (&["jitter", "--duration", "2h"], 2, &["10ms to 3600s"]),
        (
            &["jitter", "--threshold", "0", "--duration", "10ms"],
            2,
            &["threshold 0", "50 ns"],
        ),
        (
            &["jitter", "--threshold", HUGE, "--duration", "10ms"],
            2,
            &["1000000000 ns"],
        ),
        (
            &["tune", "audit", "--cpus", "4096"],
            2,
            &["CPU 4096", "not online"],
        ),
        (&["tune", "audit", "--cpus", ""], 2, &["empty CPU list"]),
        (
            &["tune", "audit", "--iface", ""],
            2,
            &["--iface", "1 to 15 characters"],
        ),
        (
            &["tune", "audit", "--iface", &"a".repeat(16)],
            2,
            &["1 to 15 characters"],
        ),
        (&["tune", "audit", "--iface", "../../etc"], 2, &["no '/'"]),
        (
            &["tune", "apply", "--iface", "a b"],
            2,
            &["no '/', ':', spaces"],
        ),
        (
            &["tune", "audit", "--profile", "/nonexistent.toml"],
            2,
            &["no profile"],
        ),
        (&["tune", "audit", "--profile", ""], 2, &["no profile"]),
        // /dev/zero was read until memory ran out.
        (
            &["tune", "audit", "--profile", "/dev/zero"],
            2,
            &["/dev/zero", "not a regular file"],
        ),
        (
            &["tune", "audit", "--profile", bp],
            2,
            &["larger than 1048576 bytes", "MAX_PROFILE_BYTES"],
        ),
        (
            &["tune", "audit", "--jitter", "--jitter-duration", "0s"],
            2,
            &["10ms to 3600s"],
        ),
        (&["tune", "apply", "--cpus", "0-8191"], 2, &["not online"]),
        (
            &["tune", "revert", "/nonexistent.json"],
            2,
            &["/nonexistent.json"],
        ),
        (&["tune", "revert", "/dev/zero"], 2, &["not a regular file"]),
        (&["tune", "revert", "/"], 2, &["not a regular file"]),
        (
            &["tune", "revert", bs],
            2,
            &["larger than 67108864 bytes", "MAX_SNAPSHOT_BYTES"],
        ),
        (&["xdp", "stats", ""], 2, &["1 to 15 characters"]),
        (
            &["xdp", "stats", &"a".repeat(24)],
            2,
            &["1 to 15 characters"],
        ),
        (&["xdp", "stats", "../../etc"], 2, &["no '/'"]),
        (
            &["xdp", "stats", "hfxnosuch0"],
            2,
            &["no interface \"hfxnosuch0\""],
        ),
        (
            &["shm", "list", "--dir", "relative"],
            2,
            &["not a directory (--dir)"],
        ),
        (
            &["shm", "list", "--dir", "/nonexistent"],
            2,
            &["not a directory (--dir)"],
        ),
        (&["shm", "stat", ""], 2, &["bad shm ring name", "1 to 64"]),
        (
            &["shm", "stat", "../../etc/passwd"],
            2,
            &["bad shm ring name"],
        ),
        (&["shm", "stat", &"a".repeat(65)], 2, &["1 to 64"]),
        (
            &["shm", "rm", "../../etc/passwd"],
            2,
            &["bad shm ring name"],
        ),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every URI parameter of every scheme, refused before anything opens
/// (`ping --size 0` is refused even if the URI passed).
#[test]
fn uri_parameters_refuse_hostile_values() {
    let cases: &[(&str, &[&str])] = &[
        // common socket parameters (udp, mcast, tcp, uring)
        ("udp://127.0.0.1:9?rcvbuf=0", &["\"rcvbuf\"", "at most 2G"]),
        (
            "udp://127.0.0.1:9?rcvbuf=18446744073709551615",
            &["at most 2G"],
        ),
        ("udp://127.0.0.1:9?sndbuf=3G", &["\"sndbuf\"", "at most 2G"]),
        ("udp://127.0.0.1:9?sndbuf=-1", &["\"sndbuf\""]),
        (
            "udp://127.0.0.1:9?priority=-1",
            &["\"priority\"", "0 to 2147483647"],
        ),
        (
            "udp://127.0.0.1:9?priority=4294967296",
            &["0 to 2147483647"],
        ),
        ("udp://127.0.0.1:9?tos=256", &["\"tos\"", "0 to 255"]),
        ("udp://127.0.0.1:9?cpu=4096", &["\"cpu\"", "0 to 4095"]),
        ("udp://127.0.0.1:9?cpu=", &["\"cpu\"", "0 to 4095"]),
        (
            "udp://127.0.0.1:9?device=aaaaaaaaaaaaaaaaaaaa",
            &["\"device\"", "1 to 15"],
        ),
        ("udp://127.0.0.1:9?bind=1.2.3.4:99999", &["\"bind\""]),
        (
            "udp://127.0.0.1:9?rx=busy-poll&busy_poll=0",
            &["\"busy_poll\"", "1 to 2147483647"],
        ),
        (
            "udp://127.0.0.1:9?rx=busy-poll&busy_poll=18446744073709551615",
            &["1 to 2147483647"],
        ),
        ("udp://127.0.0.1:9?rx=fast", &["\"rx\""]),
        ("udp://127.0.0.1:99999", &["invalid port"]),
        ("udp://127.0.0.1:-1", &["invalid port"]),
        ("udp://127.0.0.1:9?=1", &["empty name"]),
        ("udp://127.0.0.1:9?timestamps=bogus", &["\"timestamps\""]),
        // udp
        (
            "udp://127.0.0.1:9?incoming_cpu=4096",
            &["\"incoming_cpu\"", "0 to 4095"],
        ),
        ("udp://127.0.0.1:9?batch=0", &["\"batch\"", "1 to 1024"]),
        ("udp://127.0.0.1:9?batch=1025", &["1 to 1024"]),
        (
            "udp://127.0.0.1:9?batch=18446744073709551615",
            &["1 to 1024"],
        ),
        (
            "udp://127.0.0.1:9?zerocopy=1&zc_slots=0",
            &["\"zc_slots\"", "1 to 1024"],
        ),
        (
            "udp://127.0.0.1:9?zerocopy=1&zc_slots=100000",
            &["1 to 1024"],
        ),
        // mcast
        ("mcast://239.1.1.1:9?ttl=256", &["\"ttl\"", "0 to 255"]),
        ("mcast://239.1.1.1:9?ttl=-1", &["0 to 255"]),
        ("mcast://1.1.1.1:9", &["not an IPv4 multicast group"]),
        (
            "mcast://239.1.1.1:9?iface=aaaaaaaaaaaaaaaaaaaaa",
            &["\"iface\""],
        ),
        // tcp
        (
            "tcp://127.0.0.1:9?keepidle=0",
            &["\"keepidle\"", "1 to 32767"],
        ),
        (
            "tcp://127.0.0.1:9?keepintvl=32768",
            &["\"keepintvl\"", "1 to 32767"],
        ),
        (
            "tcp://127.0.0.1:9?keepcnt=128",
            &["\"keepcnt\"", "1 to 127"],
        ),
        (
            "tcp://127.0.0.1:9?connect_timeout=0",
            &["\"connect_timeout\"", "1 to 600000"],
        ),
        (
            "tcp://127.0.0.1:9?connect_timeout=18446744073709551615",
            &["1 to 600000"],
        ),
        // uring
        (
            "uring://127.0.0.1:9?entries=0",
            &["\"entries\"", "8 to 32768"],
        ),
        ("uring://127.0.0.1:9?entries=65536", &["8 to 32768"]),
        ("uring://127.0.0.1:9?entries=3", &["power of two"]),
        ("uring://127.0.0.1:9?bufs=0", &["\"bufs\"", "entries/2"]),
        ("uring://127.0.0.1:9?bufs=256", &["\"bufs\"", "entries/2"]),
        (
            "uring://127.0.0.1:9?buf_size=63",
            &["\"buf_size\"", "64 to 65536"],
        ),
        ("uring://127.0.0.1:9?buf_size=1G", &["64 to 65536"]),
        (
            "uring://127.0.0.1:9?sqpoll=1&sqpoll_cpu=4096",
            &["\"sqpoll_cpu\"", "0 to 4095"],
        ),
        (
            "uring://127.0.0.1:9?sqpoll=1&sqpoll_idle=0",
            &["\"sqpoll_idle\"", "1 to 60000"],
        ),
        (
            "uring://127.0.0.1:9?napi=0",
            &["\"napi\"", "1 to 2147483647"],
        ),
        // packet (an interface that does not exist)
        ("packet://hfxnosuch0?port=0", &["\"port\"", "1 to 65535"]),
        ("packet://hfxnosuch0?port=65536", &["1 to 65535"]),
        ("packet://hfxnosuch0", &["needs port=N"]),
        (
            "packet://aaaaaaaaaaaaaaaaaaaa?port=9",
            &["at most 15 characters"],
        ),
        (
            "packet://hfxnosuch0?port=9&frames=0",
            &["\"frames\"", "1 to 1048576"],
        ),
        (
            "packet://hfxnosuch0?port=9&frames=1048577",
            &["1 to 1048576"],
        ),
        (
            "packet://hfxnosuch0?port=9&frames=1048576&frame_size=64K&block_size=4M",
            &["frames 1048576", "over 1 GiB"],
        ),
        (
            "packet://hfxnosuch0?port=9&tx_frames=1048576&frame_size=64K&block_size=4M",
            &["tx_frames 1048576", "over 1 GiB"],
        ),
        (
            "packet://hfxnosuch0?port=9&frame_size=0",
            &["\"frame_size\"", "256 to 65536"],
        ),
        (
            "packet://hfxnosuch0?port=9&frame_size=1G",
            &["256 to 65536"],
        ),
        (
            "packet://hfxnosuch0?port=9&block_size=1G",
            &["\"block_size\"", "4K to 4M"],
        ),
        (
            "packet://hfxnosuch0?port=9&version=3&block_ms=0",
            &["\"block_ms\"", "1 to 10000"],
        ),
        (
            "packet://hfxnosuch0?port=9&version=3&block_ms=18446744073709551615",
            &["1 to 10000"],
        ),
        (
            "packet://hfxnosuch0?port=9&fanout=65536",
            &["\"fanout\"", "0 to 65535"],
        ),
        (
            "packet://hfxnosuch0?port=9&cpu=4096",
            &["\"cpu\"", "0 to 4095"],
        ),
        (
            "packet://hfxnosuch0?port=9&peer=1.2.3.4:99999",
            &["\"peer\""],
        ),
        ("packet://hfxnosuch0?port=9&peer_mac=zz", &["\"peer_mac\""]),
        // xdp (an interface that does not exist)
        ("xdp://hfxnosuch0/0?port=0", &["\"port\"", "1 to 65535"]),
        // A queue the steering program has no slot for was found out only
        // after the UMEM was registered and the program attached.
        ("xdp://hfxnosuch0/64?port=9", &["queue 64", "queues 0..64"]),
        (
            "xdp://hfxnosuch0/4294967295?port=9",
            &["queue 4294967295", "queues 0..64"],
        ),
        ("xdp://hfxnosuch0/-1?port=9", &["must be a number"]),
        (
            "xdp://hfxnosuch0/99999999999999999999?port=9",
            &["must be a number"],
        ),
        (
            "xdp://hfxnosuch0/0?port=9&frames=63",
            &["\"frames\"", "64 to 1048576"],
        ),
        (
            "xdp://hfxnosuch0/0?port=9&frames=1048577",
            &["64 to 1048576"],
        ),
        // 4 GiB and 2 GiB of UMEM were accepted.
        (
            "xdp://hfxnosuch0/0?port=9&frames=1048576&frame_size=4096",
            &["\"frames\"", "1024 MiB of UMEM", "MAX_UMEM_BYTES"],
        ),
        (
            "xdp://hfxnosuch0/0?port=9&frames=1048576",
            &["\"frames\"", "1024 MiB of UMEM"],
        ),
        (
            "xdp://hfxnosuch0/0?port=9&frame_size=1",
            &["\"frame_size\"", "2048 or 4096"],
        ),
        (
            "xdp://hfxnosuch0/0?port=9&ring=0",
            &["\"ring\"", "64 to 32768"],
        ),
        ("xdp://hfxnosuch0/0?port=9&ring=65536", &["64 to 32768"]),
        (
            "xdp://hfxnosuch0/0?port=9&cpu=4096",
            &["\"cpu\"", "0 to 4095"],
        ),
        (
            "xdp://aaaaaaaaaaaaaaaaaaaa/0?port=9",
            &["interface name and a queue"],
        ),
        // shm
        ("shm://md?slots=0", &["\"slots\"", "2 to 16777216"]),
        ("shm://md?slots=33554432", &["2 to 16777216"]),
        (
            "shm://md?slots=16777216&size=1M",
            &["\"slots\"", "1024 MiB per ring"],
        ),
        ("shm://md?size=0", &["\"size\"", "8 bytes to 1M"]),
        ("shm://md?size=2M", &["8 bytes to 1M"]),
        ("shm://md?perm=0", &["\"perm\"", "0400 to 0666"]),
        ("shm://md?perm=0777", &["0400 to 0666"]),
        ("shm://md?dir=relative", &["\"dir\"", "absolute"]),
        ("shm://md?dir=", &["\"dir\"", "absolute"]),
        ("shm://md?cpu=4096", &["\"cpu\"", "0 to 4095"]),
        ("shm://../../etc", &["no path"]),
        // mem (its bounds are the library's: mem:// is in-process only)
        ("mem://x?slots=3", &["\"slots\"", "2 to 1048576"]),
        (
            "mem://x?slots=1048576&size=64K",
            &["\"slots\"", "MAX_QUEUE_BYTES"],
        ),
        // pcap middleware
        ("udp://127.0.0.1:9?pcap=", &["\"pcap\"", "a file path"]),
        (
            "udp://127.0.0.1:9?pcap=/tmp/x.pcap&pcap_max=0",
            &["\"pcap_max\"", "at least 24"],
        ),
        (
            "udp://127.0.0.1:9?pcap_max=1M",
            &["\"pcap_max\"", "only with pcap=FILE"],
        ),
        // fault middleware
        ("udp://127.0.0.1:9?loss=-0.1", &["\"loss\"", "from 0 to 1"]),
        ("udp://127.0.0.1:9?loss=NaN", &["from 0 to 1"]),
        ("udp://127.0.0.1:9?dup=1.5", &["\"dup\"", "from 0 to 1"]),
        (
            "udp://127.0.0.1:9?reorder=inf",
            &["\"reorder\"", "from 0 to 1"],
        ),
        ("udp://127.0.0.1:9?delay=61s", &["\"delay\"", "at most 60s"]),
        // 60.9 s passed the check of whole seconds.
        (
            "udp://127.0.0.1:9?delay=60.9s",
            &["\"delay\"", "at most 60s"],
        ),
        (
            "udp://127.0.0.1:9?delay=18446744073709551615s",
            &["at most 60s"],
        ),
        (
            "udp://127.0.0.1:9?jitter=1000000h",
            &["\"jitter\"", "at most 60s"],
        ),
        ("udp://127.0.0.1:9?seed=-1", &["\"seed\""]),
        (
            "udp://127.0.0.1:9?seed=7",
            &["\"seed\"", "only with a fault"],
        ),
        (
            "udp://127.0.0.1:9?fault_slots=7",
            &["\"fault_slots\"", "only with a fault"],
        ),
        (
            "udp://127.0.0.1:9?loss=0.1&fault_slots=0",
            &["\"fault_slots\"", "1 to 1048576"],
        ),
        (
            "udp://127.0.0.1:9?loss=0.1&fault_slots=1048577",
            &["1 to 1048576"],
        ),
        (
            "udp://127.0.0.1:9?faults_on=sideways&loss=0.1",
            &["\"faults_on\""],
        ),
    ];
    let table: Vec<(Vec<&str>, &[&str])> = cases
        .iter()
        .map(|(uri, words)| (vec!["ping", uri, "--size", "0"], *words))
        .collect();
    let refs: Vec<(&[&str], i32, &[&str])> = table
        .iter()
        .map(|(args, words)| (args.as_slice(), 2, *words))
        .collect();
    check(&refs);
}
