//! `uring://` over loopback (no root needed): echoes with and without SQPOLL,
//! spin and wait, single-shot and multishot receive, SEND_ZC, a forced opcode
//! fallback, and URIs that must be refused.

use std::time::{Duration, Instant};

use hftnet_io::{
    AnyTransport, Endpoint, Role, RxBurst, Transport, TxMsg, Uri, UringConfig, UringTransport,
    dispatch,
};

fn pair(q: &str, pretend: &[&str]) -> (UringTransport, UringTransport) {
    let mut scfg =
        UringConfig::from_uri(&Uri::parse(&format!("uring://127.0.0.1:0?{q}")).unwrap()).unwrap();
    scfg.pretend_missing = pretend.iter().map(|s| s.to_string()).collect();
    let mut server = UringTransport::open(scfg, Role::Server).unwrap();
    let addr = server.capabilities().local.unwrap();
    let mut ccfg =
        UringConfig::from_uri(&Uri::parse(&format!("uring://{addr}?{q}")).unwrap()).unwrap();
    ccfg.pretend_missing = pretend.iter().map(|s| s.to_string()).collect();
    let mut client = UringTransport::open(ccfg, Role::Client).unwrap();
    server
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    client
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    (server, client)
}

fn payload(i: u32) -> Vec<u8> {
    let len = 8 + (i as usize % 200);
    let mut v = vec![(i % 251) as u8; len];
    v[..4].copy_from_slice(&i.to_le_bytes());
    v
}

/// Sends `total` messages in bursts of `burst`, the server echoes each, and
/// the client checks every echo: exact count, bytes and order.
fn echo<T: Transport, U: Transport>(
    server: &mut T,
    client: &mut U,
    total: u32,
    burst: usize,
    q: &str,
) {
    let mut rx = RxBurst::new(32, 2048);
    let mut crx = RxBurst::new(32, 2048);
    let (mut sent, mut echoed, mut back, mut bytes) = (0u32, 0u32, 0u32, 0usize);
    while back < total {
        if sent < total && sent - back < 64 {
            let n = (total - sent).min(burst as u32);
            let ps: Vec<Vec<u8>> = (sent..sent + n).map(payload).collect();
            let msgs: Vec<TxMsg<'_>> = ps.iter().map(|p| TxMsg { data: p, to: None }).collect();
            assert_eq!(client.send_burst(&msgs).unwrap(), n as usize, "{q}");
            sent += n;
        }
        while echoed < sent {
            let n = server.recv_burst(&mut rx).unwrap();
            assert!(n > 0, "{q}: server timed out after {echoed}");
            let mut out = Vec::new();
            for k in 0..n {
                let (d, m) = rx.get(k);
                assert_eq!(d, &payload(echoed)[..], "{q}: server got #{echoed}");
                assert!(!m.truncated);
                out.push((d.to_vec(), m.peer));
                echoed += 1;
            }
            let msgs: Vec<TxMsg<'_>> = out.iter().map(|(d, p)| TxMsg { data: d, to: *p }).collect();
            assert_eq!(server.send_burst(&msgs).unwrap(), n, "{q}");
        }
        while back < echoed {
            let n = client.recv_burst(&mut crx).unwrap();
            assert!(n > 0, "{q}: client timed out after {back}");
            for k in 0..n {
                let (d, m) = crx.get(k);
                assert_eq!(d, &payload(back)[..], "{q}: client got #{back}");
                assert_eq!(m.wire_len, d.len());
                bytes += d.len();
                back += 1;
            }
        }
    }
    let expect: usize = (0..total).map(|i| payload(i).len()).sum();
    assert_eq!((back, bytes), (total, expect), "{q}");
}

#[test]
fn echo_without_sqpoll() {
    for q in [
        "mode=wait",
        "mode=spin",
        "mode=wait&multishot=1",
        "mode=spin&multishot=1&zc=1",
        "mode=wait&zc=1&bufs=8&entries=16",
    ] {
        let (mut s, mut c) = pair(q, &[]);
        assert!(!s.status().sqpoll);
        echo(&mut s, &mut c, 1000, 8, q);
        // Every receive slot accounted for (single-shot), none lost.
        for (who, t) in [("server", &s), ("client", &c)] {
            let sl = t.slots();
            if q.contains("multishot") {
                assert_eq!(sl.rx_balanced, None, "{q} {who}: {sl:?}");
            } else {
                assert_eq!(sl.rx_balanced, Some(true), "{q} {who}: {sl:?}");
                // One single-shot receive in flight at most (armed with
                // the next send, or by the next poll when spinning).
                assert!(sl.rx_armed <= 1, "{q} {who}: {sl:?}");
            }
            assert!(sl.tx_busy <= sl.in_flight, "{q} {who}: {sl:?}");
        }
        if q.contains("multishot") {
            assert!(s.status().multishot, "{q}: {:?}", s.status());
        }
        if q.contains("zc") {
            assert!(c.status().zc, "{q}: {:?}", c.status());
        }
    }
}

#[test]
fn echo_with_sqpoll() {
    for q in [
        "sqpoll=1&sqpoll_idle=20&mode=wait",
        "sqpoll=1&sqpoll_cpu=0&sqpoll_idle=20&mode=spin&multishot=1",
        "sqpoll=1&sqpoll_idle=20&mode=wait&zc=1&multishot=1",
    ] {
        let (mut s, mut c) = pair(q, &[]);
        assert!(s.status().sqpoll && c.status().sqpoll);
        let caps = c.capabilities();
        assert!(
            caps.notes.iter().any(|n| n.starts_with("sqpoll: on")),
            "{:?}",
            caps.notes
        );
        if q.contains("sqpoll_cpu=0") {
            assert_eq!(c.status().sqpoll_cpu, Some(0));
            assert!(caps.notes.iter().any(|n| n.contains("pinned to CPU 0")));
        }
        echo(&mut s, &mut c, 1000, 16, q);
    }
}

#[test]
fn missing_opcodes_fall_back_with_a_clear_message() {
    let q = "zc=1&multishot=1&napi=50";
    let (mut s, mut c) = pair(q, &["SEND_ZC", "RECVMSG_MULTISHOT", "REGISTER_NAPI"]);
    for t in [&s, &c] {
        let st = t.status();
        assert!(!st.zc && !st.multishot && st.napi_usecs.is_none(), "{st:?}");
        assert!(st.missing.contains(&"SEND_ZC"), "{st:?}");
        assert!(
            st.fallbacks.iter().any(|f| f.contains(
                "IORING_OP_SEND_ZC is not supported by this kernel (Linux 6.0+); sending with IORING_OP_SENDMSG"
            )),
            "{st:?}"
        );
        assert!(
            st.fallbacks
                .iter()
                .any(|f| f.contains("single-shot RECVMSG"))
        );
        let caps = t.capabilities();
        assert!(caps.notes.iter().any(|n| n == "send: SENDMSG (copy)"));
        assert!(
            caps.notes
                .iter()
                .any(|n| n.starts_with("opcodes missing: SEND_ZC"))
        );
        assert!(caps.notes.iter().any(|n| n.starts_with("fallback: zc=1")));
    }
    // The fallback paths really carry traffic.
    echo(&mut s, &mut c, 300, 4, q);

    // A base opcode missing is a clear open error.
    let mut cfg = UringConfig::from_uri(&Uri::parse("uring://127.0.0.1:0").unwrap()).unwrap();
    cfg.pretend_missing = vec!["RECVMSG".into()];
    let e = UringTransport::open(cfg, Role::Server)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("lacks IORING_OP_RECVMSG") && e.contains("use udp://"),
        "{e}"
    );
}

/// Whether this kernel takes `IORING_REGISTER_NAPI`, asked of a bare ring
/// independently of the transport (the kernel has no probe for register
/// operations: registering is the probe). `Err` holds the kernel's answer.
fn kernel_takes_register_napi() -> Result<(), std::io::Error> {
    let ring = io_uring::IoUring::new(8)?;
    let mut napi = io_uring::types::Napi::new()
        .set_busy_poll_timeout(50)
        .set_prefer_busy_poll(true);
    ring.submitter().register_napi(&mut napi)
}

#[test]
fn napi_registration_is_reported_as_the_kernel_grants_it() {
    let probe = kernel_takes_register_napi();
    let kernel = hftnet_sys::kernel::running().unwrap();
    if kernel >= hftnet_sys::kernel::KernelVersion::new(6, 9, 0) {
        // IORING_REGISTER_NAPI is in every 6.9+ kernel: a failed probe here
        // is a broken probe, not a reason to accept a fallback.
        assert!(
            probe.is_ok(),
            "kernel {kernel:?} has IORING_REGISTER_NAPI, yet registering failed: {probe:?}"
        );
    }
    let (s, _c) = pair("napi=50&napi_prefer=1", &[]);
    let caps = s.capabilities();
    let st = s.status();
    let has_note = |prefix: &str| caps.notes.iter().any(|n| n.starts_with(prefix));
    if probe.is_ok() {
        assert_eq!(st.napi_usecs, Some(50), "registered: {st:?}");
        assert!(!st.missing.contains(&"REGISTER_NAPI"), "{st:?}");
        assert!(
            has_note("napi: IORING_REGISTER_NAPI busy poll 50 us"),
            "{:?}",
            caps.notes
        );
        assert!(
            !caps
                .notes
                .iter()
                .any(|n| n.contains("IORING_REGISTER_NAPI refused")),
            "no silent fallback: {:?}",
            caps.notes
        );
        let json = serde_json::to_value(&caps).unwrap();
        assert_eq!(json["backend"]["napi_usecs"], 50, "{json}");
    } else {
        assert_eq!(st.napi_usecs, None, "{st:?}");
        assert!(st.missing.contains(&"REGISTER_NAPI"), "{st:?}");
        assert!(has_note("napi: not available"), "{:?}", caps.notes);
        assert!(
            has_note("fallback: napi=: IORING_REGISTER_NAPI refused"),
            "{:?}",
            caps.notes
        );
    }
}

#[test]
fn through_any_transport_and_timeouts() {
    let server_ep = Endpoint::parse("uring://127.0.0.1:0?mode=spin&multishot=1").unwrap();
    assert_eq!(server_ep.scheme(), "uring");
    assert_eq!(server_ep.max_message(), 2048);
    let mut server = server_ep.open(Role::Server).unwrap();
    let addr = server.capabilities().local.unwrap();
    let mut client = Endpoint::parse(&format!("uring://{addr}"))
        .unwrap()
        .open(Role::Client)
        .unwrap();
    assert!(matches!(client, AnyTransport::Uring(_)));
    let kind: &str = dispatch!(&mut client, t => t.capabilities().transport);
    assert_eq!(kind, "uring");
    for t in [&mut server, &mut client] {
        t.set_recv_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    // Nothing sent: both strategies return 0 after about the timeout.
    let mut b = RxBurst::new(4, 2048);
    for t in [&mut server, &mut client] {
        let t0 = Instant::now();
        assert_eq!(t.recv_burst(&mut b).unwrap(), 0);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(45) && took < Duration::from_secs(1),
            "{took:?}"
        );
        let t0 = Instant::now();
        assert_eq!(
            t.recv_burst_until(&mut b, Instant::now() + Duration::from_millis(5))
                .unwrap(),
            0
        );
        assert!(t0.elapsed() < Duration::from_millis(500));
    }
    server
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    client
        .set_recv_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    echo(&mut server, &mut client, 200, 4, "any");
    // A message longer than buf_size is refused, not cut.
    let e = client.send(&[0u8; 4096], None).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EMSGSIZE));
    // A datagram longer than the burst slot is delivered truncated and flagged.
    client.send(&[7u8; 100], None).unwrap();
    let mut small = RxBurst::new(1, 10);
    assert_eq!(server.recv_burst(&mut small).unwrap(), 1);
    let (d, m) = small.get(0);
    assert_eq!((d, m.wire_len, m.truncated), (&[7u8; 10][..], 100, true));
}

#[test]
fn bad_uris_name_the_parameter() {
    for (uri, needle) in [
        (
            "uring://127.0.0.1:9?sqpoll_cpu=1",
            "to be given only with sqpoll=1",
        ),
        ("uring://127.0.0.1:9?sqpoll_idle=5", "\"sqpoll_idle\""),
        (
            "uring://127.0.0.1:9?entries=100",
            "a power of two from 8 to 32768",
        ),
        ("uring://127.0.0.1:9?entries=16&bufs=16", "entries/2 (= 8)"),
        ("uring://127.0.0.1:9?mode=poll", "one of spin, wait"),
        ("uring://127.0.0.1:9?zc=maybe", "\"zc\""),
        ("uring://127.0.0.1:9?multishot=2", "\"multishot\""),
        ("uring://127.0.0.1:9?buf_size=10", "from 64 to 65536"),
        ("uring://127.0.0.1:9?rx=spin", "mode=spin|wait"),
        ("uring://127.0.0.1:9?napi_prefer=1", "only with napi=USECS"),
        ("uring://127.0.0.1:9?batch=8", "accepted parameters"),
        ("uring://127.0.0.1:9/x", "takes no path"),
    ] {
        let e = Endpoint::parse(uri).unwrap_err().to_string();
        assert!(e.contains(needle), "{uri}: {e}");
    }
    let ok = Endpoint::parse(
        "uring://127.0.0.1:9?sqpoll=1&sqpoll_cpu=1&entries=512&mode=spin&multishot=1&zc=1&rcvbuf=1M&tos=0x10",
    )
    .unwrap();
    assert_eq!(ok.scheme(), "uring");
}

/// Every string under the key `key` anywhere in `v`.
fn json_strings(v: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == key
                    && let Some(a) = x.as_array()
                {
                    out.extend(a.iter().filter_map(|s| s.as_str().map(str::to_string)));
                }
                json_strings(x, key, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, key, out)),
        _ => {}
    }
}

fn setup_flags_in_caps(t: &UringTransport) -> Vec<String> {
    let caps = serde_json::to_value(t.capabilities()).unwrap();
    let mut out = Vec::new();
    json_strings(&caps, "setup_flags", &mut out);
    out
}

#[test]
fn ring_setup_flags_are_probed_and_reported() {
    let k = hftnet_sys::kernel::running().unwrap();
    if !k.at_least(6, 1) {
        hftnet_lab::skip::skip(
            "ring_setup_flags_are_probed_and_reported",
            &format!("DEFER_TASKRUN needs Linux 6.1+, this is {k:?}"),
        );
        return;
    }
    // (query, features treated as missing, flags expected)
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "mode=spin",
            &[],
            &["SINGLE_ISSUER", "DEFER_TASKRUN", "TASKRUN_FLAG"],
        ),
        (
            "mode=wait",
            &[],
            &["SINGLE_ISSUER", "DEFER_TASKRUN", "TASKRUN_FLAG"],
        ),
        (
            "mode=spin&multishot=1",
            &["DEFER_TASKRUN"],
            &["SINGLE_ISSUER", "COOP_TASKRUN", "TASKRUN_FLAG"],
        ),
        (
            "mode=wait",
            &["SINGLE_ISSUER"],
            &["COOP_TASKRUN", "TASKRUN_FLAG"],
        ),
        (
            "mode=spin&multishot=1",
            &["DEFER_TASKRUN", "TASKRUN_FLAG"],
            &["SINGLE_ISSUER", "COOP_TASKRUN"],
        ),
        ("mode=spin", &["DEFER_TASKRUN", "COOP_TASKRUN"], &[]),
        (
            "mode=wait&multishot=1",
            &["DEFER_TASKRUN", "COOP_TASKRUN"],
            &[],
        ),
        (
            "sqpoll=1&sqpoll_idle=20&mode=spin&multishot=1",
            &[],
            &["SQPOLL", "SINGLE_ISSUER"],
        ),
    ];
    for (q, pretend, want) in cases {
        let (mut s, mut c) = pair(q, pretend);
        for t in [&s, &c] {
            assert_eq!(t.status().setup_flags, *want, "{q} {pretend:?}");
            assert_eq!(setup_flags_in_caps(t), *want, "{q} {pretend:?}");
            let notes = t.capabilities().notes;
            assert!(
                notes.iter().any(|n| n.starts_with("ring: ")),
                "{q}: {notes:?}"
            );
            if !pretend.is_empty() {
                assert!(
                    t.status()
                        .fallbacks
                        .iter()
                        .any(|f| f.starts_with("ring setup ") && f.contains("treated as missing")),
                    "{q} {pretend:?}: {:?}",
                    t.status().fallbacks
                );
            }
        }
        // Every setup carries traffic, spinning or waiting.
        echo(&mut s, &mut c, 300, 4, q);
    }
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

#[test]
fn receives_are_never_handed_to_io_wq_workers() {
    // The io-wq workers of requests issued by a thread are named after it
    // (`iou-wrk-TID`): none may appear for this thread's rings. Several
    // receives armed on one socket used to be woken together by each
    // datagram, and those that found nothing went to io-wq workers.
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let worker = format!("iou-wrk-{tid}");
    for q in [
        "mode=wait",
        "mode=spin",
        "mode=spin&multishot=1",
        "mode=wait&multishot=1&zc=1",
    ] {
        let (mut s, mut c) = pair(q, &[]);
        // One at a time (round trips) and in bursts.
        echo(&mut s, &mut c, 500, 1, q);
        echo(&mut s, &mut c, 1000, 16, q);
        let names = thread_names();
        assert!(
            !names.contains(&worker),
            "{q}: a request went to an io-wq worker ({worker} among {names:?})"
        );
    }
}

#[test]
fn a_transport_runs_in_the_thread_that_first_uses_it() {
    // Opened here, driven in another thread: the single-issuer ring belongs
    // to the thread that first sends or receives.
    for q in ["mode=spin", "mode=wait&multishot=1"] {
        let (s, c) = pair(q, &[]);
        let (mut s, mut c) = std::thread::spawn(move || {
            let (mut s, mut c) = (s, c);
            echo(&mut s, &mut c, 300, 4, q);
            (s, c)
        })
        .join()
        .unwrap();
        if !s.status().setup_flags.contains(&"SINGLE_ISSUER") {
            continue;
        }
        // Back in this thread, the ring refuses with an error that says why.
        let e = c.send(&[1u8; 32], None).unwrap_err().to_string();
        assert!(e.contains("single-issuer"), "{q}: {e}");
        let mut b = RxBurst::new(4, 2048);
        let e = s.recv_burst(&mut b).unwrap_err().to_string();
        assert!(e.contains("single-issuer"), "{q}: {e}");
        // Dropping here (not the issuer) must neither hang nor crash.
        let t0 = Instant::now();
        drop((s, c));
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
}
