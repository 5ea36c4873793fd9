//! The XDP steering program and its loader in a lab of two network
//! namespaces joined by a veth pair, for real (root). No AF_XDP socket is
//! registered, so a steered frame falls back to the kernel (`XDP_PASS`) and
//! is counted under `redirect_failed` — which lets these tests check, with
//! kernel sockets: the verifier accepts the program; it attaches in native
//! mode on veth through a `bpf_link`; flows are counted and still delivered;
//! every other kind of frame (ARP, ICMP, other ports, runts, truncated, IPv4
//! options, fragments, VLAN tags, multicast) is passed and counted under its
//! reason; dropping the owner — or killing its process — detaches it; a
//! foreign program is never replaced without `replace`, and is put back
//! when the one replacing it goes; and `stats_of`
//! reads the same numbers from elsewhere.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hftnet_io::l2::L2Iface;
use hftnet_io::xdp::steer::{
    self, AttachMode, AttachPref, MAX_FLOWS, PROGRAM_NAME, SteerError, SteerOptions, SteerStats,
    Steering, VERDICTS,
};
use hftnet_lab::{Host, Lab};
use hftnet_sys::packet::{self as ring, PacketRing, RingConfig};
use hftnet_wire::ethernet::{Address, VlanTag};
use hftnet_wire::udp::{FrameSpec, emit_frame};
use socket2::{Domain, Protocol, Socket, Type};

use hftnet_lab::skip_without_root;

/// Frame length of a UDP datagram with `payload` bytes, untagged.
const fn frame_len(payload: usize) -> u64 {
    (14 + 20 + 8 + payload) as u64
}

/// Attaches in the host's namespace.
fn attach(host: &Host, pref: AttachPref, replace: bool) -> Result<Steering, SteerError> {
    let iface = host.iface().to_string();
    host.run(move || Steering::attach(&iface, pref, replace))
        .unwrap()
}

fn attached(host: &Host) -> Option<steer::AttachedInfo> {
    let iface = host.iface().to_string();
    host.run(move || steer::attached_program(&iface))
        .unwrap()
        .unwrap()
}

/// A kernel UDP socket bound in the host's namespace.
fn bind(host: &Host, port: u16) -> UdpSocket {
    let ip = host.addr();
    host.run(move || {
        let s = UdpSocket::bind((ip, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s
    })
    .unwrap()
}

/// Receives `n` datagrams of `len` bytes on `s`.
fn expect_datagrams(s: &UdpSocket, n: usize, len: usize) {
    let mut buf = [0u8; 2048];
    for i in 0..n {
        let (got, _) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("datagram {i} of {n} on {:?}: {e}", s.local_addr()));
        assert_eq!(got, len);
    }
}

/// Sends `count` datagrams of `len` bytes from the host's namespace to `dst`.
fn send_udp(host: &Host, dst: SocketAddrV4, count: usize, len: usize) {
    host.run(move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for i in 0..count {
            s.send_to(&vec![i as u8; len], dst).unwrap();
        }
    })
    .unwrap();
}

/// An ICMP echo from the host's namespace; true when answered.
fn icmp_echo(host: &Host, to: Ipv4Addr) -> bool {
    host.run(move || {
        let mut s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut req = [8u8, 0, 0, 0, 0x51, 0x52, 0, 1, b'x', b'd', b'p', b'!'];
        let sum = hftnet_wire::checksum::data(&req);
        req[2..4].copy_from_slice(&(!sum).to_be_bytes());
        let dst: SocketAddr = SocketAddrV4::new(to, 0).into();
        s.send_to(&req, &dst.into()).unwrap();
        let mut b = [0u8; 1500];
        while let Ok(n) = s.read(&mut b) {
            let ihl = usize::from(b[0] & 0xf) * 4;
            if n >= ihl + 8 && b[ihl] == 0 && b[ihl + 4..ihl + 6] == [0x51, 0x52] {
                return true;
            }
        }
        false
    })
    .unwrap()
}

/// Waits until `f(stats)` holds, or panics with the last stats after 3 s.
fn wait_stats(s: &Steering, what: &str, f: impl Fn(&SteerStats) -> bool) -> SteerStats {
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let st = s.stats().unwrap();
        if f(&st) {
            return st;
        }
        assert!(Instant::now() < end, "{what}: {st:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn with_stamps_on_a_frame_falling_back_to_the_kernel_is_unstamped_and_unchanged() {
    if skip_without_root(
        "with_stamps_on_a_frame_falling_back_to_the_kernel_is_unstamped_and_unchanged",
    ) {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (ex, tr) = (lab.exchange(), lab.trader());
    let metadata = hftnet_io::xdp::steer::xdp_metadata_supported().unwrap();
    for pref in [AttachPref::Driver, AttachPref::Generic] {
        let iface = ex.iface().to_string();
        let attached_with_stamps = ex
            .run(move || {
                Steering::attach_with(&iface, pref, false, SteerOptions { stamp_rx: true })
            })
            .unwrap();
        if !metadata {
            // A kernel whose verifier refuses bpf_xdp_adjust_meta to XDP
            // programs: the stamping program is refused, by name, before
            // anything is attached (xdp:// then loads it without stamps:
            // tests/xdp_timestamps.rs).
            let e = attached_with_stamps.unwrap_err();
            assert!(
                matches!(e, hftnet_io::xdp::steer::SteerError::MetadataRefused { .. })
                    && e.to_string().contains("bpf_xdp_adjust_meta"),
                "{pref:?}: {e}"
            );
            assert_eq!(attached(ex), None, "{pref:?}: nothing attached");
            eprintln!(
                "{pref:?}: this kernel refuses bpf_xdp_adjust_meta to XDP programs: the \
                 stamping program was refused, nothing attached"
            );
            continue;
        }
        let mut st = attached_with_stamps.unwrap();
        assert!(st.options().stamp_rx);
        let flow = SocketAddrV4::new(ex.addr(), 9050);
        st.add_flow(flow).unwrap();
        let s_flow = bind(ex, 9050);
        // No AF_XDP socket on the queue: the flow's frames fall back to the
        // kernel, which delivers them whole (the stamp goes only on frames
        // redirected to a socket).
        send_udp(tr, flow, 20, 100);
        let mut buf = [0u8; 2048];
        for i in 0..20u8 {
            let (n, _) = s_flow.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 100][..], "{pref:?}: datagram {i}");
        }
        let after = wait_stats(&st, "after the traffic", |s| {
            s.verdict("redirect_failed") >= 20
        });
        assert_eq!(after.verdict("redirect_failed"), 20, "{pref:?}: {after:#?}");
        assert_eq!(after.verdict("rx_stamped"), 0, "{pref:?}: {after:#?}");
        assert_eq!(after.verdict("rx_stamp_refused"), 0, "{pref:?}: {after:#?}");
        drop(st);
        assert_eq!(attached(ex), None, "{pref:?}: detached with its owner");
    }
}

/// Verdict deltas `after - before`, by name.
fn delta(before: &SteerStats, after: &SteerStats, name: &str) -> u64 {
    after.verdict(name) - before.verdict(name)
}

#[test]
fn steers_flows_with_kernel_fallback_and_counts_the_rest() {
    if skip_without_root("steers_flows_with_kernel_fallback_and_counts_the_rest") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (ex, tr) = (lab.exchange(), lab.trader());
    let mut st = attach(ex, AttachPref::Auto, false).unwrap();
    // veth has native XDP; the kernel reports what is active.
    assert_eq!(st.mode(), AttachMode::Driver, "{st:?}");
    assert_eq!(st.native_error(), None);
    let iface = ex.iface().to_string();
    let index = ex
        .run({
            let i = iface.clone();
            move || L2Iface::lookup(&i).unwrap().index
        })
        .unwrap();
    assert_eq!(st.ifindex(), index);

    let info = attached(ex).expect("the program is attached");
    assert_eq!(info.id, st.program_id());
    assert_eq!(info.name, PROGRAM_NAME);
    assert!(info.is_steering());
    assert_eq!(info.mode, Some(AttachMode::Driver));
    assert!(
        info.link_id.is_some(),
        "attached through a bpf_link: {info:?}"
    );
    assert_eq!(attached(tr), None, "the other end has nothing attached");

    let flow = SocketAddrV4::new(ex.addr(), 9000);
    let other = SocketAddrV4::new(ex.addr(), 9001);
    assert_eq!(st.add_flow(flow).unwrap(), 0);
    assert_eq!(st.add_flow(flow).unwrap(), 0, "idempotent");
    assert_eq!(st.flow_id(flow), Some(0));
    let s_flow = bind(ex, 9000);
    let s_other = bind(ex, 9001);

    // 20 datagrams to the flow: no AF_XDP socket on the queue, so each is
    // counted for the flow and under redirect_failed, and the kernel still
    // delivers it. 10 to another port: pass_no_flow.
    send_udp(tr, flow, 20, 100);
    send_udp(tr, other, 10, 60);
    expect_datagrams(&s_flow, 20, 100);
    expect_datagrams(&s_other, 10, 60);
    assert!(
        icmp_echo(tr, ex.addr()),
        "ICMP still answered by the kernel"
    );
    let s1 = wait_stats(&st, "after the first traffic", |s| {
        s.verdict("pass_not_udp") >= 1
    });
    assert_eq!(s1.verdicts.len(), VERDICTS.len());
    assert_eq!(s1.verdict("redirect_failed"), 20, "{s1:#?}");
    assert_eq!(s1.verdict("redirect"), 0, "{s1:#?}");
    assert_eq!(s1.verdict("pass_no_flow"), 10, "{s1:#?}");
    assert_eq!(s1.verdict("pass_not_udp"), 1, "the ICMP echo: {s1:#?}");
    assert!(s1.verdict("pass_not_ipv4") >= 1, "ARP: {s1:#?}");
    for quiet in [
        "pass_fragment",
        "pass_ip_options",
        "pass_malformed",
        "pass_vlan",
        "vlan_tagged",
    ] {
        assert_eq!(s1.verdict(quiet), 0, "{quiet}: {s1:#?}");
    }
    assert_eq!(s1.flows.len(), 1);
    let f = s1.flow(flow).unwrap();
    assert_eq!(
        (f.flow_id, f.packets, f.bytes),
        (0, 20, 20 * frame_len(100))
    );

    // stats_of, from another thread in the namespace, reads the same maps.
    let other_view = ex
        .run({
            let i = iface.clone();
            move || steer::stats_of(&i)
        })
        .unwrap()
        .unwrap();
    let now = st.stats().unwrap();
    assert_eq!(other_view.flows, now.flows);
    for name in [
        "redirect_failed",
        "pass_no_flow",
        "pass_not_udp",
        "redirect",
    ] {
        assert_eq!(other_view.verdict(name), now.verdict(name), "{name}");
    }

    // A removed flow goes to the kernel as any other UDP.
    st.remove_flow(flow).unwrap();
    assert_eq!(st.flow_id(flow), None);
    let e = st.remove_flow(flow).unwrap_err();
    assert!(matches!(e, SteerError::UnknownFlow { .. }), "{e}");
    send_udp(tr, flow, 5, 10);
    expect_datagrams(&s_flow, 5, 10);
    let s2 = wait_stats(&st, "after removing the flow", |s| {
        s.verdict("pass_no_flow") >= 15
    });
    assert_eq!(s2.verdict("pass_no_flow"), 15);
    assert_eq!(s2.verdict("redirect_failed"), 20);
    assert!(s2.flows.is_empty());

    // Re-added, it gets id 0 back with fresh counters.
    assert_eq!(st.add_flow(other).unwrap(), 0);
    assert_eq!(st.add_flow(flow).unwrap(), 1);
    let s3 = st.stats().unwrap();
    assert_eq!(
        s3.flows
            .iter()
            .map(|f| (f.flow_id, f.dst, f.packets))
            .collect::<Vec<_>>(),
        [(0, other, 0), (1, flow, 0)]
    );

    // Dropping the owner detaches the program.
    drop(st);
    assert_eq!(attached(ex), None);
    let e = ex
        .run(move || steer::stats_of(&iface))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, SteerError::NotAttached { .. }), "{e}");
    assert!(e.to_string().contains("no XDP program"), "{e}");
}

/// Builds frames from the trader to the exchange and injects them raw.
struct Injector {
    spec: FrameSpec,
    iface: String,
}

impl Injector {
    fn new(lab: &Lab, dst_port: u16) -> Self {
        let (ex, tr) = (lab.exchange(), lab.trader());
        let mac = |h: &Host| {
            let i = h.iface().to_string();
            h.run(move || L2Iface::lookup(&i).unwrap().mac).unwrap()
        };
        Self {
            spec: FrameSpec::new(mac(tr), mac(ex), tr.addr(), ex.addr(), 4000, dst_port),
            iface: tr.iface().to_string(),
        }
    }

    fn frame(spec: &FrameSpec, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 1600];
        let n = emit_frame(&mut f, spec, payload).unwrap();
        f.truncate(n);
        f
    }

    fn good(&self, payload: &[u8]) -> Vec<u8> {
        Self::frame(&self.spec, payload)
    }

    fn send(&self, host: &Host, frames: Vec<Vec<u8>>) {
        let iface = self.iface.clone();
        host.run(move || {
            let index = L2Iface::lookup(&iface).unwrap().index;
            let cfg = RingConfig {
                tx_frames: 16,
                rx_frames: 2,
                ..RingConfig::DEFAULT
            };
            let mut r = PacketRing::open(index, cfg, Some(&ring::drop_all_filter()), None).unwrap();
            for f in &frames {
                let slot = r.tx_slot().expect("free transmit frame");
                slot[..f.len()].copy_from_slice(f);
                r.tx_commit(f.len());
                r.tx_kick(true).unwrap();
            }
        })
        .unwrap();
    }
}

/// Recomputes the IPv4 header checksum of the header at `ip`.
fn fix_ip_sum(f: &mut [u8], ip: usize) {
    let hl = usize::from(f[ip] & 0xf) * 4;
    f[ip + 10..ip + 12].copy_from_slice(&[0, 0]);
    let c = !hftnet_wire::checksum::data(&f[ip..ip + hl]);
    f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn crafted_frames_are_passed_and_counted_by_reason() {
    if skip_without_root("crafted_frames_are_passed_and_counted_by_reason") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (ex, tr) = (lab.exchange(), lab.trader());
    let mut st = attach(ex, AttachPref::Auto, false).unwrap();
    let flow = SocketAddrV4::new(ex.addr(), 9100);
    let group = SocketAddrV4::new(Ipv4Addr::new(239, 1, 2, 3), 9200);
    assert_eq!(st.add_flow(flow).unwrap(), 0);
    assert_eq!(st.add_flow(group).unwrap(), 1);
    let sock = bind(ex, 9100);
    let inj = Injector::new(&lab, 9100);
    const IP: usize = 14;

    let good = inj.good(b"steered, then passed");
    // 802.1Q tagged to the flow: looked through, steered.
    let mut tagged_spec = inj.spec;
    tagged_spec.vlan = Some(VlanTag::new(100));
    let tagged = Injector::frame(&tagged_spec, b"tagged");
    // 802.1ad S-tag, and two 802.1Q tags: passed.
    let mut qinq = tagged.clone();
    qinq[12..14].copy_from_slice(&[0x88, 0xa8]);
    let mut double = tagged[..16].to_vec();
    double.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    double.extend_from_slice(&tagged[16..]);
    // Multicast to the group's flow.
    let mut mc_spec = inj.spec;
    mc_spec.dst_ip = *group.ip();
    mc_spec.dst_port = group.port();
    mc_spec.dst_mac = Address::from_ipv4_multicast(*group.ip());
    mc_spec.ttl = 1;
    let multicast = Injector::frame(&mc_spec, b"market data");
    // IPv4 with 4 bytes of options (NOP NOP NOP EOL) to the flow's port.
    let mut options = good[..IP + 20].to_vec();
    options.extend_from_slice(&[1, 1, 1, 0]);
    options.extend_from_slice(&good[IP + 20..]);
    options[IP] = 0x46;
    let tot = u16::from_be_bytes([options[IP + 2], options[IP + 3]]) + 4;
    options[IP + 2..IP + 4].copy_from_slice(&tot.to_be_bytes());
    fix_ip_sum(&mut options, IP);
    // A first fragment (MF set, DF clear) to the flow.
    let mut frag = good.clone();
    frag[IP + 6..IP + 8].copy_from_slice(&0x2000u16.to_be_bytes());
    fix_ip_sum(&mut frag, IP);
    // A later fragment (offset 185 × 8), no UDP header in it.
    let mut frag2 = good.clone();
    frag2[IP + 6..IP + 8].copy_from_slice(&185u16.to_be_bytes());
    fix_ip_sum(&mut frag2, IP);
    // Not UDP: protocol 253 (experimentation).
    let mut not_udp = good.clone();
    not_udp[IP + 9] = 253;
    fix_ip_sum(&mut not_udp, IP);
    // Not IPv4: IPv6's EtherType over the same bytes.
    let mut not_ipv4 = good.clone();
    not_ipv4[12..14].copy_from_slice(&[0x86, 0xdd]);
    // Malformed: a runt (Ethernet + 10 bytes of IPv4), a frame cut short of
    // its total length, a UDP length beyond the IPv4 packet, IHL 4, version 6.
    let runt = good[..IP + 10].to_vec();
    let cut = good[..good.len() - 5].to_vec();
    let mut udp_len = good.clone();
    udp_len[IP + 24..IP + 26].copy_from_slice(&500u16.to_be_bytes());
    let mut ihl4 = good.clone();
    ihl4[IP] = 0x44;
    fix_ip_sum(&mut ihl4, IP);
    let mut v6 = good.clone();
    v6[IP] = 0x65;
    fix_ip_sum(&mut v6, IP);
    // A tagged runt: the tag, and nothing after it.
    let tagged_runt = tagged[..16].to_vec();
    // Last: a good one the kernel socket sees, so the rest went before it.
    let last = inj.good(b"last");

    let before = st.stats().unwrap();
    let frames = vec![
        good.clone(),
        tagged.clone(),
        qinq,
        double,
        multicast.clone(),
        options,
        frag,
        frag2,
        not_udp,
        not_ipv4,
        runt,
        cut,
        udp_len,
        ihl4,
        v6,
        tagged_runt,
        last.clone(),
    ];
    let injected = frames.len() as u64;
    inj.send(tr, frames);
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        got.push(buf[..n].to_vec());
        if buf[..n] == *b"last" {
            break;
        }
    }
    // The fallback delivered the steered frame; the IPv4-options one went to
    // the kernel, which accepts NOPs.
    assert!(got.contains(&b"steered, then passed".to_vec()), "{got:?}");
    assert_eq!(got.last().map(Vec::as_slice), Some(&b"last"[..]), "{got:?}");

    let after = wait_stats(&st, "crafted frames", |s| {
        s.verdict("redirect_failed") - before.verdict("redirect_failed") >= 4
    });
    let d = |name: &str| delta(&before, &after, name);
    assert_eq!(
        d("redirect_failed"),
        4,
        "good, tagged, multicast, last: {after:#?}"
    );
    assert_eq!(d("redirect"), 0);
    assert_eq!(
        d("vlan_tagged"),
        2,
        "tagged and double (not the runt): {after:#?}"
    );
    assert_eq!(d("pass_vlan"), 2, "802.1ad and double: {after:#?}");
    assert_eq!(d("pass_ip_options"), 1, "{after:#?}");
    assert_eq!(d("pass_fragment"), 2, "{after:#?}");
    assert_eq!(d("pass_not_udp"), 1, "{after:#?}");
    assert_eq!(d("pass_malformed"), 6, "{after:#?}");
    assert_eq!(d("pass_no_flow"), 0, "{after:#?}");
    assert!(d("pass_not_ipv4") >= 1, "{after:#?}");
    let verdicts: u64 = VERDICTS
        .iter()
        .filter(|n| !matches!(**n, "vlan_tagged" | "rx_stamped" | "rx_stamp_refused"))
        .map(|n| d(n))
        .sum();
    assert!(
        verdicts >= injected,
        "every frame has a verdict: {after:#?}"
    );

    let f = after.flow(flow).unwrap();
    assert_eq!(f.packets, 3, "good, tagged, last");
    assert_eq!(
        f.bytes,
        (good.len() + tagged.len() + last.len()) as u64,
        "whole frames as received"
    );
    let g = after.flow(group).unwrap();
    assert_eq!(
        (g.flow_id, g.packets, g.bytes),
        (1, 1, multicast.len() as u64)
    );
    drop(st);
}

#[test]
fn generic_mode_when_asked_and_native_when_asked() {
    if skip_without_root("generic_mode_when_asked_and_native_when_asked") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let (ex, tr) = (lab.exchange(), lab.trader());
    let mut st = attach(ex, AttachPref::Generic, false).unwrap();
    assert_eq!(st.mode(), AttachMode::Generic);
    assert_eq!(attached(ex).unwrap().mode, Some(AttachMode::Generic));
    let flow = SocketAddrV4::new(ex.addr(), 9300);
    st.add_flow(flow).unwrap();
    let s = bind(ex, 9300);
    send_udp(tr, flow, 3, 30);
    expect_datagrams(&s, 3, 30);
    let stats = wait_stats(&st, "generic", |s| s.verdict("redirect_failed") >= 3);
    assert_eq!(stats.flow(flow).unwrap().packets, 3);
    drop(st);
    assert_eq!(attached(ex), None);

    let st = attach(ex, AttachPref::Driver, false).unwrap();
    assert_eq!(st.mode(), AttachMode::Driver);
    assert_eq!(attached(ex).unwrap().mode, Some(AttachMode::Driver));

    // The namespace's loopback has no native XDP: `native` fails and says
    // what to do, `auto` falls back to generic and says why.
    let e = ex
        .run(|| Steering::attach("lo", AttachPref::Driver, false))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, SteerError::Attach { .. }), "{e}");
    assert!(e.to_string().contains("attach=generic"), "{e}");
    let lo = ex
        .run(|| Steering::attach("lo", AttachPref::Auto, false))
        .unwrap()
        .unwrap();
    assert_eq!(lo.mode(), AttachMode::Generic);
    assert!(lo.native_error().is_some());
}

#[test]
fn flow_table_limits_and_socket_registration_errors() {
    if skip_without_root("flow_table_limits_and_socket_registration_errors") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let ex = lab.exchange();
    let mut st = attach(ex, AttachPref::Auto, false).unwrap();
    let base = ex.addr();
    for i in 0..MAX_FLOWS {
        let id = st
            .add_flow(SocketAddrV4::new(base, 10_000 + i as u16))
            .unwrap();
        assert_eq!(id, i);
    }
    let extra = SocketAddrV4::new(base, 20_000);
    let e = st.add_flow(extra).unwrap_err();
    assert!(matches!(e, SteerError::TooManyFlows { .. }), "{e}");
    assert!(e.to_string().contains("all 64 flows are in use"), "{e}");
    // Freeing one makes room, and its id is reused.
    st.remove_flow(SocketAddrV4::new(base, 10_005)).unwrap();
    assert_eq!(st.add_flow(extra).unwrap(), 5);
    assert_eq!(st.stats().unwrap().flows.len(), MAX_FLOWS as usize);

    // Only AF_XDP sockets go into the xsks map.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let e = st.register_socket(0, udp.as_fd()).unwrap_err();
    assert!(matches!(e, SteerError::Map { .. }), "{e}");
    assert!(e.to_string().contains("AF_XDP socket"), "{e}");
    let e = st.register_socket(64, udp.as_fd()).unwrap_err();
    assert!(
        matches!(e, SteerError::QueueOutOfRange { queue: 64 }),
        "{e}"
    );
    st.unregister_socket(0).unwrap();
    assert!(matches!(
        st.unregister_socket(64),
        Err(SteerError::QueueOutOfRange { .. })
    ));

    // Errors that name the interface.
    let e = ex
        .run(|| Steering::attach("nosuch0", AttachPref::Auto, false))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, SteerError::NoInterface { .. }), "{e}");
    assert!(e.to_string().contains("nosuch0"), "{e}");
}

/// Attaches program `fd` to `ifindex` the old way (netlink, no link), as
/// `ip link set DEV xdpgeneric` does: it stays until someone detaches it.
fn netlink_attach_generic(ifindex: u32, fd: std::os::fd::RawFd) {
    use hftnet_sys::netlink::{
        IfInfoMsg, MessageBuilder, NLA_F_NESTED, NLM_F_ACK, NLM_F_REQUEST, RTM_NEWLINK, RtNetlink,
    };
    let mut m = MessageBuilder::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(
        &IfInfoMsg {
            index: ifindex as i32,
            ..IfInfoMsg::default()
        }
        .to_bytes(),
    );
    let n = m.begin_nested(43 | NLA_F_NESTED); // IFLA_XDP
    m.attr(1, &fd.to_ne_bytes()); // IFLA_XDP_FD
    m.attr_u32(3, 1 | 2); // IFLA_XDP_FLAGS: UPDATE_IF_NOEXIST | SKB_MODE
    m.end_nested(n);
    RtNetlink::open()
        .unwrap()
        .request("rtnetlink RTM_NEWLINK(xdp)", m)
        .unwrap();
}

#[test]
fn a_foreign_program_is_replaced_only_when_asked() {
    if skip_without_root("a_foreign_program_is_replaced_only_when_asked") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let ex = lab.exchange();
    let iface = ex.iface().to_string();
    // Someone else's program, attached through netlink in generic mode; it
    // outlives the loader's descriptors.
    let foreign_id = ex
        .run({
            let iface = iface.clone();
            move || {
                static OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/xdp_steer.o");
                let mut ebpf = aya::Ebpf::load(OBJ).unwrap();
                let p: &mut aya::programs::Xdp =
                    ebpf.program_mut(PROGRAM_NAME).unwrap().try_into().unwrap();
                p.load().unwrap();
                let index = L2Iface::lookup(&iface).unwrap().index;
                netlink_attach_generic(index, p.fd().unwrap().as_fd().as_raw_fd());
                p.info().unwrap().id()
            }
        })
        .unwrap();
    let info = attached(ex).unwrap();
    assert_eq!(
        (info.id, info.mode, info.link_id),
        (foreign_id, Some(AttachMode::Generic), None)
    );

    let e = attach(ex, AttachPref::Auto, false).unwrap_err();
    assert!(
        matches!(e, SteerError::Busy { id, .. } if id == foreign_id),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains(&format!("program id {foreign_id}")), "{msg}");
    assert!(msg.contains("replace=1"), "{msg}");
    assert_eq!(attached(ex).unwrap().id, foreign_id, "left in place");

    let first = attach(ex, AttachPref::Auto, true).unwrap();
    assert_eq!(first.mode(), AttachMode::Driver);
    let now = attached(ex).unwrap();
    assert_eq!(now.id, first.program_id());
    assert_ne!(now.id, foreign_id);

    // Ours, held by a bpf_link of this process: refused without replace;
    // with it, the link's program is swapped in one step (same link).
    let e = attach(ex, AttachPref::Auto, false).unwrap_err();
    assert!(matches!(e, SteerError::Busy { .. }), "{e}");
    assert!(e.to_string().contains(PROGRAM_NAME), "{e}");
    let link = attached(ex).unwrap().link_id.expect("held by a link");
    let e = attach(ex, AttachPref::Generic, true).unwrap_err();
    assert!(matches!(e, SteerError::ModeMismatch { .. }), "{e}");
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    assert_eq!(attached(ex).unwrap().id, first.program_id(), "unchanged");
    let second = attach(ex, AttachPref::Auto, true).unwrap();
    assert_eq!(second.mode(), AttachMode::Driver);
    let now = attached(ex).unwrap();
    assert_eq!((now.id, now.link_id), (second.program_id(), Some(link)));
    // The first owner going away does not take the second's program along.
    drop(first);
    assert_eq!(attached(ex).unwrap().id, second.program_id());
    // The last holder of the link going away puts the foreign program back.
    drop(second);
    assert_eq!(attached(ex), Some(info), "the foreign program is back");
}

/// A successful replace of a program attached through netlink puts it
/// back, in its mode, when ours goes away.
#[test]
fn a_replaced_program_is_put_back_when_ours_goes() {
    if skip_without_root("a_replaced_program_is_put_back_when_ours_goes") {
        return;
    }
    // The lab's namespaces (and with their veth, any XDP program on it)
    // are removed when `lab` is dropped, also when an assertion fails.
    let lab = Lab::two_host(None).unwrap();
    let ex = lab.exchange();
    let iface = ex.iface().to_string();
    // Attached through netlink in generic mode; the loader's descriptors
    // are closed once attached, so only the attachment keeps it loaded.
    let foreign_id = ex
        .run(move || {
            let mut ebpf = load_foreign();
            let p = foreign_prog(&mut ebpf);
            let index = L2Iface::lookup(&iface).unwrap().index;
            netlink_attach_generic(index, p.fd().unwrap().as_fd().as_raw_fd());
            p.info().unwrap().id()
        })
        .unwrap();
    let before = attached(ex).unwrap();
    assert_eq!(
        (before.id, before.mode, before.link_id),
        (foreign_id, Some(AttachMode::Generic), None)
    );
    // Ours runs natively in its place (the foreign one is detached).
    let st = attach(ex, AttachPref::Auto, true).unwrap();
    assert_eq!(st.mode(), AttachMode::Driver);
    let now = attached(ex).unwrap();
    assert_eq!(now.id, st.program_id());
    assert!(now.link_id.is_some());
    // Gone with ours: the foreign program is attached again, as it was.
    drop(st);
    assert_eq!(attached(ex), Some(before), "the foreign program is back");
}

/// Loads the steering object with aya alone (no `Steering`), in the
/// calling thread's namespace.
fn load_foreign() -> aya::Ebpf {
    static OBJ: &[u8] = aya::include_bytes_aligned!("../../../bpf/xdp_steer.o");
    let mut ebpf = aya::Ebpf::load(OBJ).unwrap();
    let p: &mut aya::programs::Xdp = ebpf.program_mut(PROGRAM_NAME).unwrap().try_into().unwrap();
    p.load().unwrap();
    ebpf
}

fn foreign_prog(ebpf: &mut aya::Ebpf) -> &mut aya::programs::Xdp {
    ebpf.program_mut(PROGRAM_NAME).unwrap().try_into().unwrap()
}

/// A replace whose attach fails (native XDP on a veth whose peer's MTU is
/// too large for it) puts the program that was there back, as it was.
#[test]
fn a_failed_replace_puts_the_old_program_back() {
    if skip_without_root("a_failed_replace_puts_the_old_program_back") {
        return;
    }
    let lab = Lab::builder().mtu(9000).build().unwrap();
    let ex = lab.exchange();
    let iface = ex.iface().to_string();
    // Kept loaded by the test only until attached: the netlink attachment
    // holds it after that.
    let foreign_id = ex
        .run(move || {
            let mut ebpf = load_foreign();
            let p = foreign_prog(&mut ebpf);
            let index = L2Iface::lookup(&iface).unwrap().index;
            netlink_attach_generic(index, p.fd().unwrap().as_fd().as_raw_fd());
            p.info().unwrap().id()
        })
        .unwrap();
    let before = attached(ex).unwrap();
    assert_eq!(
        (before.id, before.mode, before.link_id),
        (foreign_id, Some(AttachMode::Generic), None)
    );

    let e = attach(ex, AttachPref::Driver, true).unwrap_err();
    match &e {
        SteerError::ReplaceFailed {
            cause,
            restored,
            not_restored,
            ..
        } => {
            assert!(matches!(**cause, SteerError::Attach { .. }), "{e}");
            assert_eq!(
                (restored.as_slice(), not_restored.len()),
                (&[foreign_id][..], 0)
            );
        }
        other => panic!("expected ReplaceFailed, got {other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "the program attached before (id {foreign_id}) was put back"
        )),
        "{msg}"
    );
    assert_eq!(attached(ex), Some(before.clone()), "exactly what was there");

    // The same replace in a mode the device can do succeeds, and replaces;
    // ours gone, the old one is back.
    let st = attach(ex, AttachPref::Generic, true).unwrap();
    assert_eq!(attached(ex).unwrap().id, st.program_id());
    drop(st);
    assert_eq!(attached(ex), Some(before), "the old program is back");
}

/// A program held by a bpf_link hftnet does not own is refused by replace,
/// named, and left exactly as it was.
#[test]
fn a_program_held_by_a_foreign_link_is_left_alone() {
    if skip_without_root("a_program_held_by_a_foreign_link_is_left_alone") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let ex = lab.exchange();
    let iface = ex.iface().to_string();
    // A link created with bpf_link_create (aya), held by this test.
    let foreign = ex
        .run(move || {
            let mut ebpf = load_foreign();
            let index = L2Iface::lookup(&iface).unwrap().index;
            foreign_prog(&mut ebpf)
                .attach_to_if_index(index, aya::programs::XdpMode::Skb)
                .unwrap();
            ebpf
        })
        .unwrap();
    let before = attached(ex).unwrap();
    let link_id = before.link_id.expect("held by a bpf_link");
    assert_eq!(before.mode, Some(AttachMode::Generic));
    for pref in [AttachPref::Auto, AttachPref::Generic, AttachPref::Driver] {
        let e = attach(ex, pref, true).unwrap_err();
        assert!(
            matches!(e, SteerError::HeldByLink { id, link_id: l, .. } if id == before.id && l == link_id),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&format!("bpf_link id {link_id}")), "{msg}");
        assert!(msg.contains("changed nothing"), "{msg}");
        assert_eq!(attached(ex), Some(before.clone()), "left exactly as it was");
    }
    drop(foreign);
    assert_eq!(attached(ex), None);
}

/// Not a test by itself: the process that `the_program_goes_away_when_its_owner_is_killed`
/// starts (this binary, this test only, with `HFTNET_XDP_CHILD_IFACE` set)
/// attaches, says so on stdout, and waits to be killed. Ignored in a
/// normal run (reported as such, never a vacuous pass); run with
/// `--ignored` by that test only, and never in the default network
/// namespace.
#[test]
#[ignore = "the child process of the_program_goes_away_when_its_owner_is_killed, which runs it"]
fn child_holds_steering_until_killed() {
    let iface = std::env::var_os("HFTNET_XDP_CHILD_IFACE").expect(
        "run by the_program_goes_away_when_its_owner_is_killed, which sets HFTNET_XDP_CHILD_IFACE",
    );
    // Only inside the lab namespace the parent named: never the default one.
    let ino = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let lab = std::env::var("HFTNET_XDP_CHILD_NETNS").expect("the lab namespace to run in");
    assert_eq!(
        ino("/proc/self/ns/net").unwrap(),
        ino(&format!("/run/netns/{lab}")).unwrap(),
        "refusing to attach XDP outside the lab namespace {lab}"
    );
    let st = Steering::attach(iface.to_str().unwrap(), AttachPref::Auto, false).unwrap();
    println!("XDP-CHILD attached {}", st.program_id());
    std::thread::sleep(Duration::from_secs(60));
    panic!("not killed within 60 s");
}

#[test]
fn the_program_goes_away_when_its_owner_is_killed() {
    if skip_without_root("the_program_goes_away_when_its_owner_is_killed") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let ex = lab.exchange();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_holds_steering_until_killed",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("HFTNET_XDP_CHILD_IFACE", ex.iface())
    .env("HFTNET_XDP_CHILD_NETNS", ex.netns())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    let mut child = ex.spawn(&mut cmd).unwrap();
    // Killed and reaped even if an assertion below fails.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let out = child.stdout.take().unwrap();
    let mut child = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // libtest prints "test NAME ... " on the same line first.
            if let Some((_, id)) = line.split_once("XDP-CHILD attached ") {
                let _ = tx.send(id.trim().parse::<u32>().unwrap());
            }
        }
    });
    let id = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the child attached");
    let info = attached(ex).unwrap();
    assert_eq!(info.id, id);
    assert!(info.link_id.is_some());
    child.0.kill().unwrap(); // SIGKILL: no destructor runs
    child.0.wait().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while attached(ex).is_some() {
        assert!(
            Instant::now() < end,
            "the program outlived its killed owner: {:?}",
            attached(ex)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
