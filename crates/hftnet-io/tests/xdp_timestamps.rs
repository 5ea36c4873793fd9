//! `xdp://…?timestamps=rx` in a lab of two network namespaces joined by a
//! veth pair, for real (root): the steering program, loaded with its stamp
//! switch on, writes `bpf_ktime_get_ns()` into 8 bytes of XDP metadata of
//! each frame it redirects; AF_XDP (copy mode, the only one veth has)
//! copies them in front of the packet, and the transport delivers them as
//! `RxMeta::rx_ts_ns` on `CLOCK_REALTIME`. Checked in both places the
//! program runs (native and generic XDP), through `recv_burst` and the
//! lease path: every stamp lies between a realtime read before the send and
//! one after the receive returned; without the parameter there is none;
//! the program counts what it stamped; a stamping endpoint is refused
//! beside a plain one on the same interface (one program per interface,
//! its stamp switch fixed at load). On a kernel whose verifier refuses
//! `bpf_xdp_adjust_meta` to XDP programs (`xdp_metadata_supported()`
//! false), the same endpoints load the program without stamps and stamp
//! each frame as it is read off the ring: checked then that every stamp
//! lies between the moment the socket was readable and the receive's
//! return, and that the capabilities and notes say so.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use hftnet_io::{Lease, Role, RxBurst, Transport, Uri, XdpConfig, XdpTransport};
use hftnet_lab::{Host, Lab};
use hftnet_sys::clock::realtime_ns;
use hftnet_sys::sock::poll_readable;

#[path = "support/traffic.rs"]
mod traffic;
use traffic::skip_without_root;

fn open(h: &Host, q: &str) -> Result<XdpTransport, String> {
    let uri = format!("xdp://{}/0?{q}", h.iface());
    h.run(move || {
        let cfg = XdpConfig::from_uri(&Uri::parse(&uri).unwrap()).unwrap();
        let mut t = XdpTransport::open(cfg, Role::Server).map_err(|e| format!("{uri}: {e}"))?;
        t.set_recv_timeout(Some(Duration::from_secs(2))).unwrap();
        Ok(t)
    })
    .unwrap()
}

/// A kernel UDP socket in `h`'s namespace, for sending.
fn sender(h: &Host) -> UdpSocket {
    h.run(|| UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap()
}

/// Sends `count` datagrams one at a time from `tx` to `x`'s flow and
/// receives each (through a burst, or a lease when `lease`); returns, per
/// datagram, (realtime before the send, its stamp, realtime once the
/// socket was readable and before the receive began, realtime after the
/// receive returned). The third tells a stamp taken when the frame arrived
/// from one taken when user space read it.
fn stamped(
    x: &mut XdpTransport,
    tx: &UdpSocket,
    to: (std::net::Ipv4Addr, u16),
    count: u32,
    lease: bool,
) -> Vec<(u64, Option<u64>, u64, u64)> {
    let mut b = RxBurst::new(4, 2048);
    let mut out = Vec::new();
    for i in 0..count {
        let payload = i.to_be_bytes();
        let before = realtime_ns();
        tx.send_to(&payload, to).unwrap();
        // Readable: the frame is on the receive ring, so the program has
        // run (and stamped it) already.
        assert!(
            poll_readable(x.as_fd(), Some(Duration::from_secs(2))).unwrap(),
            "datagram {i} never came: {:?}",
            x.stats()
        );
        let ready = realtime_ns();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut got = None;
        while got.is_none() && Instant::now() < deadline {
            if lease {
                x.recv_lease(1, Some(deadline), |d, m, _| {
                    assert_eq!(d, payload);
                    got = Some(m.rx_ts_ns);
                })
                .unwrap();
            } else if x.recv_burst(&mut b).unwrap() > 0 {
                let (d, m) = b.get(0);
                assert_eq!(d, payload);
                got = Some(m.rx_ts_ns);
            }
        }
        let after = realtime_ns();
        let ts = got.unwrap_or_else(|| panic!("datagram {i} never came: {:?}", x.stats()));
        out.push((before, ts, ready, after));
    }
    out
}

/// Whether this kernel lets the steering program stamp (else the ring does).
fn program_stamps() -> bool {
    let yes = hftnet_io::xdp::steer::xdp_metadata_supported().unwrap();
    if !yes {
        eprintln!(
            "this kernel refuses bpf_xdp_adjust_meta to XDP programs: checking the stamps taken \
             at the ring instead of the program's"
        );
    }
    yes
}

/// Checks one received stamp: the program's lies between the send and the
/// moment the socket was readable; one taken at the ring between that
/// moment and the receive's return.
fn check_stamp(
    program: bool,
    what: &str,
    (before, ts, ready, after): (u64, Option<u64>, u64, u64),
) {
    let ts = ts.unwrap_or_else(|| panic!("{what}: unstamped"));
    let (lo, hi) = if program {
        (before, ready)
    } else {
        (ready, after)
    };
    assert!(
        lo <= ts && ts <= hi && ready <= after,
        "{what}: stamp {ts} not within [{lo}, {hi}] (sent at {before}, readable at {ready}, \
         received at {after}; program stamps: {program})"
    );
}

#[test]
fn frames_carry_the_programs_stamp_in_native_and_generic_mode() {
    if skip_without_root("frames_carry_the_programs_stamp_in_native_and_generic_mode") {
        return;
    }
    let program = program_stamps();
    for (mode, port) in [("native", 9500u16), ("generic", 9510)] {
        let lab = Lab::two_host(None).unwrap();
        let (sh, ch) = (lab.exchange(), lab.trader());
        let to = (sh.addr(), port);
        let mut x = open(
            sh,
            &format!("port={port}&rx=spin&timestamps=rx&attach={mode}"),
        )
        .unwrap();
        assert_eq!(x.attach_mode().to_string(), mode);
        let caps = x.capabilities();
        assert!(caps.legacy().rx_timestamps, "{caps:?}");
        assert!(!caps.legacy().tx_timestamps, "{caps:?}");
        let line = caps
            .lines()
            .into_iter()
            .find(|(k, _)| k == "rx_timestamps")
            .unwrap_or_else(|| panic!("{caps:?}"));
        if program {
            assert!(
                line.1.contains("XDP program") && line.1.contains(mode),
                "{line:?}"
            );
        } else {
            assert!(
                line.1.contains("read off the AF_XDP ring")
                    && line.1.contains("bpf_xdp_adjust_meta"),
                "{line:?}"
            );
        }
        let tx = sender(ch);
        for lease in [false, true] {
            for (i, s) in stamped(&mut x, &tx, to, 50, lease).into_iter().enumerate() {
                // The program's stamp: after the send and before user space
                // read the ring (so not at the read). The ring's: at the read.
                check_stamp(program, &format!("{mode} lease={lease}: datagram {i}"), s);
            }
        }
        let s = x.stats();
        let st = x.steering_stats().unwrap();
        assert_eq!(st.verdict("redirect"), 100, "{mode}: {st:?}");
        assert_eq!(st.verdict("rx_stamp_refused"), 0, "{mode}: {st:?}");
        if program {
            assert_eq!(
                (s.socket.rx_stamped, s.socket.rx_unstamped),
                (100, 0),
                "{mode}: {s:?}"
            );
            assert_eq!(st.verdict("rx_stamped"), 100, "{mode}: {st:?}");
        } else {
            // No metadata read: the program ran without its stamps.
            assert_eq!(
                (s.socket.rx_stamped, s.socket.rx_unstamped),
                (0, 0),
                "{mode}: {s:?}"
            );
            assert_eq!(st.verdict("rx_stamped"), 0, "{mode}: {st:?}");
        }
        let note = if program {
            "frames stamped by the XDP program"
        } else {
            "read off the ring"
        };
        assert!(
            caps.notes
                .iter()
                .any(|n| n.contains("receive stamps") && n.contains(note)),
            "{caps:?}"
        );
    }
}

#[test]
fn without_the_parameter_there_is_no_stamp() {
    if skip_without_root("without_the_parameter_there_is_no_stamp") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    let mut x = open(sh, "port=9520&rx=spin").unwrap();
    let caps = x.capabilities();
    assert!(!caps.legacy().rx_timestamps, "{caps:?}");
    assert!(
        !caps.lines().iter().any(|(k, _)| k == "rx_timestamps"),
        "{caps:?}"
    );
    let tx = sender(ch);
    for lease in [false, true] {
        for (i, (_, ts, _, _)) in stamped(&mut x, &tx, (sh.addr(), 9520), 20, lease)
            .into_iter()
            .enumerate()
        {
            assert_eq!(ts, None, "lease={lease}: datagram {i}");
        }
    }
    let st = x.steering_stats().unwrap();
    assert_eq!(st.verdict("redirect"), 40, "{st:?}");
    assert_eq!(st.verdict("rx_stamped"), 0, "{st:?}");
    let s = x.stats();
    assert_eq!(
        (s.socket.rx_stamped, s.socket.rx_unstamped),
        (0, 0),
        "{s:?}"
    );
}

#[test]
fn a_stamping_endpoint_is_refused_beside_a_plain_one_on_its_interface() {
    if skip_without_root("a_stamping_endpoint_is_refused_beside_a_plain_one_on_its_interface") {
        return;
    }
    let program = program_stamps();
    let lab = Lab::two_host(None).unwrap();
    let (sh, ch) = (lab.exchange(), lab.trader());
    // A plain endpoint loaded the program without stamps: a stamping one on
    // the same interface is refused, saying what to do.
    let plain = open(sh, "port=9530&rx=spin").unwrap();
    let e = open(sh, "port=9531&rx=spin&timestamps=rx").unwrap_err();
    assert!(
        e.contains("loaded without receive stamps")
            && e.contains("with timestamps=rx, or none of them"),
        "{e}"
    );
    drop(plain);
    // With the plain endpoint gone, so is its program: a stamping endpoint
    // loads its own, which stamps.
    let mut stamping = open(sh, "port=9532&rx=spin&timestamps=rx").unwrap();
    let tx = sender(ch);
    for (i, s) in stamped(&mut stamping, &tx, (sh.addr(), 9532), 10, false)
        .into_iter()
        .enumerate()
    {
        check_stamp(program, &format!("datagram {i}"), s);
    }
}
