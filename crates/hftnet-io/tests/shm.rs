//! `shm://` across processes: several readers in other processes get every
//! message in order; a reader that sleeps through a lap is told exactly how
//! many messages it missed; a killed writer is detected by its reader and
//! its stale ring listed and removed; a ring of another format version, a
//! broken file and a symbolic link are refused with named errors; a second
//! writer is refused and a stale ring taken over; files are 0600 and
//! nothing is left in `/dev/shm`.
//!
//! The other processes are this test binary run again with
//! `HFTNET_SHM_CHILD` set (see [`child_process_entry`]); they talk back on
//! stdout and are killed if the test fails first.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use hftnet_io::shm::{self, Poll, Publisher, ShmError, Subscriber, WriterState, path_of};
use hftnet_io::{Endpoint, Role, RxBurst, RxStrategy, Transport};

const DIR: &str = "/dev/shm";

/// Names unique to this test run; every file they name is removed on drop,
/// also when the test fails.
struct Names {
    prefix: String,
}

impl Names {
    fn new(test: &str) -> Self {
        Self {
            prefix: format!("t{}-{test}", std::process::id()),
        }
    }

    fn get(&self, which: &str) -> String {
        format!("{}-{which}", self.prefix)
    }

    fn left(&self) -> Vec<String> {
        std::fs::read_dir(DIR)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains(&self.prefix))
            .collect()
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        for n in self.left() {
            let _ = std::fs::remove_file(Path::new(DIR).join(n));
        }
    }
}

/// A child process of this binary, killed on drop.
struct Kid {
    child: Child,
    /// Lines the child printed, read by a thread so a wait can time out.
    out: std::sync::mpsc::Receiver<String>,
    input: Option<ChildStdin>,
}

impl Kid {
    fn spawn(role: &str, name: &str, arg: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_entry",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HFTNET_SHM_CHILD", role)
            .env("HFTNET_SHM_NAME", name)
            .env("HFTNET_SHM_ARG", arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, out) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let input = child.stdin.take();
        Self { child, out, input }
    }

    /// What the child said next: its next line with an `@` (the test
    /// harness prints its own lines too), within `within`.
    fn line(&mut self, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let s = match self.out.recv_timeout(left) {
                Ok(s) => s,
                Err(e) => panic!("child said nothing for {within:?} ({e})"),
            };
            // The harness may have printed "test NAME ... " on the line first.
            if let Some(i) = s.find('@') {
                return s[i + 1..].trim().to_string();
            }
        }
    }

    fn say(&mut self, what: &str) {
        let i = self.input.as_mut().unwrap();
        writeln!(i, "{what}").unwrap();
        i.flush().unwrap();
    }

    fn wait_ok(mut self) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success(), "child failed: {st}");
                return;
            }
            assert!(Instant::now() < end, "child did not finish in 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn num(buf: &[u8]) -> u64 {
    u64::from_le_bytes(buf[..8].try_into().unwrap())
}

/// What the children do. Ignored in a normal run (reported as such, never
/// a vacuous pass); the tests run it with `--ignored`.
#[test]
#[ignore = "the child process of the other tests here, which run it"]
fn child_process_entry() {
    let role = std::env::var("HFTNET_SHM_CHILD")
        .expect("run by the other tests of this file, which set HFTNET_SHM_CHILD");
    let name = std::env::var("HFTNET_SHM_NAME").unwrap();
    let arg: u64 = std::env::var("HFTNET_SHM_ARG").unwrap().parse().unwrap();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut buf = [0u8; 256];
    match role.as_str() {
        // Reads `arg` messages numbered 0.. in order, then says so.
        "reader" => {
            let mut s = Subscriber::attach(Path::new(DIR), &name, RxStrategy::Block).unwrap();
            println!("@attached");
            let end = Instant::now() + Duration::from_secs(20);
            for want in 0..arg {
                let p = s.recv(&mut buf, Some(end)).unwrap();
                assert_eq!(
                    p,
                    Poll::Message(8 + (want % 100) as usize),
                    "message {want}"
                );
                assert_eq!(num(&buf), want);
                assert!(
                    buf[8..8 + (want % 100) as usize]
                        .iter()
                        .all(|&b| b == want as u8)
                );
            }
            let st = s.stats();
            assert_eq!((st.received, st.lapped, st.missed), (arg, 0, 0));
            println!("@done {}", st.received);
        }
        // Attaches, waits to be told, then expects one lap of exactly `arg`
        // messages and the 10 after it.
        "sleeper" => {
            let mut s = Subscriber::attach(Path::new(DIR), &name, RxStrategy::Spin).unwrap();
            println!("@attached");
            assert_eq!(lines.next().unwrap().unwrap(), "go");
            assert_eq!(s.try_recv(&mut buf), Poll::Lapped { missed: arg });
            println!("@lapped {arg}");
            assert_eq!(lines.next().unwrap().unwrap(), "more");
            let end = Instant::now() + Duration::from_secs(10);
            for want in arg..arg + 10 {
                assert_eq!(s.recv(&mut buf, Some(end)).unwrap(), Poll::Message(8));
                assert_eq!(num(&buf), want);
            }
            let st = s.stats();
            println!(
                "@got {} missed {} lapped {}",
                st.received, st.missed, st.lapped
            );
        }
        // Attaches blocking and waits (asleep on the futex) to be killed.
        "blocker" => {
            let mut s = Subscriber::attach(Path::new(DIR), &name, RxStrategy::Block).unwrap();
            println!("@attached");
            let _ = s.recv(&mut buf, Some(Instant::now() + Duration::from_secs(30)));
        }
        // Publishes `arg` messages, says so, and waits to be killed.
        "writer" => {
            let mut p = Publisher::create(Path::new(DIR), &name, 1024, 64, 0o600).unwrap();
            println!("@created");
            assert_eq!(lines.next().unwrap().unwrap(), "go");
            for i in 0..arg {
                p.publish(&i.to_le_bytes()).unwrap();
            }
            println!("@published");
            std::thread::sleep(Duration::from_secs(30));
        }
        r => panic!("unknown child role {r}"),
    }
}

#[test]
fn several_reader_processes_get_every_message_in_order() {
    let names = Names::new("fanout");
    let name = names.get("md");
    const N: u64 = 50_000;
    let mut p = Publisher::create(Path::new(DIR), &name, 256, 128, 0o600).unwrap();
    let mut kids: Vec<Kid> = (0..3)
        .map(|_| Kid::spawn("reader", &name, &N.to_string()))
        .collect();
    for k in &mut kids {
        assert_eq!(k.line(Duration::from_secs(10)), "attached");
    }
    assert_eq!(p.info().readers.len(), 3);
    let mut msg = [0u8; 108];
    let end = Instant::now() + Duration::from_secs(30);
    for i in 0..N {
        // The writer never waits for readers: this test keeps within a
        // ring of the slowest reader itself, from the cursors the readers
        // publish in the ring's header.
        while i - p.info().readers.iter().map(|r| r.cursor).min().unwrap() > 200 {
            assert!(Instant::now() < end, "readers stopped reading");
            std::thread::yield_now();
        }
        let len = 8 + (i % 100) as usize;
        msg[..8].copy_from_slice(&i.to_le_bytes());
        msg[8..len].fill(i as u8);
        p.publish(&msg[..len]).unwrap();
    }
    for mut k in kids {
        assert_eq!(k.line(Duration::from_secs(20)), format!("done {N}"));
        k.wait_ok();
    }
    let info = p.info();
    assert_eq!(info.head, N);
    assert!(
        info.readers.is_empty(),
        "readers detached: {:?}",
        info.readers
    );
    let path = p.path().to_path_buf();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(p);
    assert!(!path.exists(), "the writer removes its ring");
    assert!(names.left().is_empty(), "{:?}", names.left());
}

#[test]
fn a_reader_lapped_while_asleep_counts_exactly_what_it_missed() {
    let names = Names::new("lap");
    let name = names.get("md");
    let mut p = Publisher::create(Path::new(DIR), &name, 64, 64, 0o600).unwrap();
    let mut k = Kid::spawn("sleeper", &name, "10000");
    assert_eq!(k.line(Duration::from_secs(10)), "attached");
    for i in 0..10_000u64 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    k.say("go");
    assert_eq!(k.line(Duration::from_secs(10)), "lapped 10000");
    let r = &p.info().readers[0];
    assert_eq!(
        (r.lapped, r.missed, r.cursor, r.lag),
        (1, 10_000, 10_000, 0)
    );
    for i in 10_000..10_010u64 {
        p.publish(&i.to_le_bytes()).unwrap();
    }
    k.say("more");
    assert_eq!(
        k.line(Duration::from_secs(10)),
        "got 10 missed 10000 lapped 1"
    );
    k.wait_ok();
}

#[test]
fn a_killed_writer_is_detected_and_its_stale_ring_listed_and_removed() {
    let names = Names::new("kill");
    let name = names.get("md");
    let mut k = Kid::spawn("writer", &name, "100");
    assert_eq!(k.line(Duration::from_secs(10)), "created");
    let mut s = Subscriber::attach(Path::new(DIR), &name, RxStrategy::Block).unwrap();
    k.say("go");
    assert_eq!(k.line(Duration::from_secs(10)), "published");
    let mut buf = [0u8; 64];
    for want in 0..100 {
        let p = s
            .recv(&mut buf, Some(Instant::now() + Duration::from_secs(5)))
            .unwrap();
        assert_eq!((p, num(&buf)), (Poll::Message(8), want));
    }
    // A second writer is refused while the first lives.
    let e = Publisher::create(Path::new(DIR), &name, 64, 64, 0o600).unwrap_err();
    assert!(
        matches!(e, ShmError::WriterExists { pid, .. } if pid == k.child.id()),
        "{e}"
    );
    assert!(e.to_string().contains("live writer"), "{e}");
    let e = shm::remove(Path::new(DIR), &name, false).unwrap_err();
    assert!(e.to_string().contains("live writer"), "{e}");

    let pid = k.child.id();
    k.child.kill().unwrap();
    k.child.wait().unwrap();
    let t0 = Instant::now();
    let p = s.recv(&mut buf, Some(t0 + Duration::from_secs(5))).unwrap();
    assert!(
        matches!(p, Poll::WriterDead { pid: d, .. } if d == pid),
        "{p:?} after {:?}",
        t0.elapsed()
    );
    assert_eq!(s.stats().writers_dead, 1);
    assert!(!s.attached());

    let listed: Vec<_> = shm::list(Path::new(DIR))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|r| r.name == name)
        .collect();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].stale(), "{:?}", listed[0].writer);
    assert!(matches!(listed[0].writer, WriterState::Dead { pid: d, .. } if d == pid));
    assert_eq!(listed[0].head, 100);

    // A new writer takes the stale ring over; the waiting reader finds it.
    let mut p = Publisher::create(Path::new(DIR), &name, 64, 64, 0o600).unwrap();
    assert!(p.replaced().is_some_and(|r| r.stale()));
    let got = s
        .recv(&mut buf, Some(Instant::now() + Duration::from_millis(50)))
        .unwrap();
    assert_eq!(
        got,
        Poll::Empty,
        "attached to the new ring, nothing in it yet"
    );
    assert!(s.attached());
    p.publish(&7u64.to_le_bytes()).unwrap();
    let got = s
        .recv(&mut buf, Some(Instant::now() + Duration::from_secs(5)))
        .unwrap();
    assert_eq!((got, num(&buf)), (Poll::Message(8), 7));
    drop(p);
    let got = s
        .recv(&mut buf, Some(Instant::now() + Duration::from_secs(5)))
        .unwrap();
    assert_eq!(got, Poll::WriterClosed);
    assert!(names.left().is_empty(), "{:?}", names.left());

    // A stale ring is removed without --force.
    let mut k = Kid::spawn("writer", &name, "1");
    assert_eq!(k.line(Duration::from_secs(10)), "created");
    k.child.kill().unwrap();
    k.child.wait().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    let removed = loop {
        match shm::remove(Path::new(DIR), &name, false) {
            Ok(r) => break r,
            Err(ShmError::WriterExists { .. }) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(removed.is_some_and(|r| r.stale()));
    assert!(names.left().is_empty(), "{:?}", names.left());
}

fn attach_err(name: &str) -> String {
    Subscriber::attach(Path::new(DIR), name, RxStrategy::Spin)
        .unwrap_err()
        .to_string()
}

#[test]
fn other_versions_broken_files_and_links_are_refused_by_name() {
    let names = Names::new("format");
    let name = names.get("md");
    let p = Publisher::create(Path::new(DIR), &name, 64, 64, 0o600).unwrap();
    let path: PathBuf = p.path().to_path_buf();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_at(&2u32.to_le_bytes(), 8).unwrap();
    let e = attach_err(&name);
    assert!(
        e.contains("format version 2") && e.contains("reads version 1"),
        "{e}"
    );
    // Endpoint-level: the same refusal, at open.
    let e = Endpoint::parse(&format!("shm://{name}?as=sub"))
        .unwrap()
        .open(Role::Client)
        .unwrap_err()
        .to_string();
    assert!(e.contains("format version 2"), "{e}");
    f.write_at(&1u32.to_le_bytes(), 8).unwrap();
    f.write_at(&3u32.to_le_bytes(), 16).unwrap();
    assert!(
        attach_err(&name).contains("slot count"),
        "{}",
        attach_err(&name)
    );
    f.write_at(b"NOTARING", 0).unwrap();
    assert!(attach_err(&name).contains("magic"));
    drop(p);

    let bad = names.get("short");
    std::fs::write(path_of(Path::new(DIR), &bad), b"short").unwrap();
    let e = attach_err(&bad);
    assert!(
        e.contains("shorter than a ring header") && e.contains("shm rm"),
        "{e}"
    );
    let e = Publisher::create(Path::new(DIR), &bad, 64, 64, 0o600).unwrap_err();
    assert!(
        matches!(e, ShmError::Format { .. }),
        "a writer leaves a foreign file alone: {e}"
    );
    assert!(shm::remove(Path::new(DIR), &bad, false).is_err());
    assert!(shm::remove(Path::new(DIR), &bad, true).unwrap().is_none());

    let link = names.get("link");
    std::os::unix::fs::symlink("/etc/passwd", path_of(Path::new(DIR), &link)).unwrap();
    let e = attach_err(&link);
    assert!(e.contains("symbolic link"), "{e}");
    std::fs::remove_file(path_of(Path::new(DIR), &link)).unwrap();

    for (uri, want) in [
        ("shm://a.b", "name of 1 to 64"),
        ("shm://x?slots=3", "power of two"),
        ("shm://x?slots=16777216&size=1M", "MiB per ring"),
        ("shm://x?perm=0777", "octal"),
        ("shm://x?as=both", "duplex, pub, sub"),
        ("shm://x?rx=busy-poll", "no device"),
        ("shm://x?dir=relative", "absolute"),
    ] {
        let e = Endpoint::parse(uri).unwrap_err().to_string();
        assert!(e.contains(want), "{uri}: {e}");
    }
    assert!(names.left().is_empty(), "{:?}", names.left());
}

#[test]
fn duplex_endpoints_carry_both_ways_and_sides_refuse_what_they_lack() {
    let names = Names::new("duplex");
    let name = names.get("pp");
    let uri = format!("shm://{name}?rx=adaptive&slots=64&size=256");
    let ep = Endpoint::parse(&uri).unwrap();
    let mut server = ep.open(Role::Server).unwrap();
    server
        .set_recv_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = RxBurst::new(32, 256);
    let mut client = ep.open(Role::Client).unwrap();
    client
        .set_recv_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for round in 0..100u64 {
        client.send(&round.to_le_bytes(), None).unwrap();
        assert_eq!(server.recv_burst(&mut b).unwrap(), 1);
        let (data, _) = b.get(0);
        assert_eq!(num(data), round);
        server.send(&(round + 1000).to_le_bytes(), None).unwrap();
        assert_eq!(client.recv_burst(&mut b).unwrap(), 1);
        assert_eq!(num(b.get(0).0), round + 1000);
    }
    let e = client.send(&[0; 300], None).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EMSGSIZE));
    let caps = server.capabilities();
    let Some(hftnet_io::Section::Shm(c)) = caps.backend else {
        panic!("{caps:?}")
    };
    assert_eq!(
        (c.published, c.reader.received, c.reader.missed),
        (100, 100, 0)
    );
    assert_eq!(c.rx_ring.as_deref(), Some(format!("{name}.c2s").as_str()));
    assert!(c.rx_attached);

    let mut publ = Endpoint::parse(&format!("shm://{name}?as=pub"))
        .unwrap()
        .open(Role::Server)
        .unwrap();
    let e = publ.recv_burst(&mut b).unwrap_err().to_string();
    assert!(e.contains("as=pub only writes"), "{e}");
    let mut sub = Endpoint::parse(&format!("shm://{name}?as=sub&rx=spin"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    let e = sub.send(b"x", None).unwrap_err().to_string();
    assert!(e.contains("as=sub only reads"), "{e}");
    sub.set_recv_timeout(Some(Duration::from_secs(5))).unwrap();
    publ.send_burst(&[
        hftnet_io::TxMsg {
            data: b"one",
            to: None,
        },
        hftnet_io::TxMsg {
            data: b"two",
            to: None,
        },
    ])
    .unwrap();
    assert_eq!(sub.recv_burst(&mut b).unwrap(), 2);
    assert_eq!((b.get(0).0, b.get(1).0), (&b"one"[..], &b"two"[..]));
    drop((server, client, publ, sub));
    assert!(names.left().is_empty(), "{:?}", names.left());
}

#[test]
fn a_reader_racing_a_writer_on_a_tiny_ring_never_takes_a_torn_message() {
    let names = Names::new("race");
    let name = names.get("md");
    const N: u64 = 300_000;
    let mut p = Publisher::create(Path::new(DIR), &name, 4, 64, 0o600).unwrap();
    let mut s = Subscriber::attach(Path::new(DIR), &name, RxStrategy::Spin).unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (mut got, mut last) = (0u64, None::<u64>);
        let end = Instant::now() + Duration::from_secs(30);
        // Until every message is delivered or counted missed (a lap near
        // the end rejoins past the last one).
        while got + s.stats().missed < N {
            match s.recv(&mut buf, Some(end)).unwrap() {
                Poll::Message(len) => {
                    let n = num(&buf);
                    assert_eq!(len, 8 + (n % 57) as usize, "length of message {n}");
                    assert!(
                        buf[8..len].iter().all(|&b| b == n as u8),
                        "torn message {n}"
                    );
                    assert!(last.is_none_or(|l| n > l), "{n} after {last:?}");
                    last = Some(n);
                    got += 1;
                }
                Poll::Lapped { .. } => {}
                other => panic!("{other:?} after {got} messages"),
            }
        }
        (got, s.stats())
    });
    let mut msg = [0u8; 64];
    for n in 0..N {
        let len = 8 + (n % 57) as usize;
        msg[..8].copy_from_slice(&n.to_le_bytes());
        msg[8..len].fill(n as u8);
        p.publish(&msg[..len]).unwrap();
    }
    let (got, st) = reader.join().unwrap();
    assert_eq!(st.received, got);
    assert_eq!(
        got + st.missed,
        N,
        "every message delivered or counted missed"
    );
    drop(p);
    assert!(names.left().is_empty(), "{:?}", names.left());
}

#[test]
fn a_reader_killed_asleep_gives_back_its_entry_and_sleeping_count() {
    let names = Names::new("asleep");
    let name = names.get("md");
    let p = Publisher::create(Path::new(DIR), &name, 64, 64, 0o600).unwrap();
    let mut k = Kid::spawn("blocker", &name, "0");
    assert_eq!(k.line(Duration::from_secs(10)), "attached");
    let end = Instant::now() + Duration::from_secs(10);
    while p.info().sleeping != 1 {
        assert!(
            Instant::now() < end,
            "the reader never slept: {:?}",
            p.info()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!((p.info().may_sleep, p.info().readers.len()), (1, 1));
    k.child.kill().unwrap();
    k.child.wait().unwrap();
    // The writer's heartbeat sweeps dead readers every 100 ms: without it
    // the writer would wake a sleeper that no longer exists on every message.
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let i = p.info();
        if (i.sleeping, i.may_sleep, i.readers.len()) == (0, 0, 0) {
            break;
        }
        assert!(Instant::now() < end, "not swept: {i:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_ring_of_another_user_is_refused() {
    if hftnet_sys::proc::euid() != 0
        && hftnet_lab::skip::skip(
            "a_ring_of_another_user_is_refused",
            &"needs root to give a file to another user",
        )
    {
        return;
    }
    let names = Names::new("owner");
    let name = names.get("md");
    let p = Publisher::create(Path::new(DIR), &name, 64, 64, 0o600).unwrap();
    std::os::unix::fs::chown(p.path(), Some(65534), Some(65534)).unwrap();
    let e = attach_err(&name);
    assert!(e.contains("belongs to uid 65534"), "{e}");
}
