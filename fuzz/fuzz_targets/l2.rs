//! The layer-2 codecs on arbitrary bytes taken as an Ethernet frame, walked
//! down the way the transports do: VLAN tag, then IPv4 and UDP, or ARP.
//! Once `new_checked` accepted a buffer no accessor panics; what a `Repr`
//! parses emits back to the same header bytes (where the format lets it:
//! IPv4's Don't Fragment and reserved flags are not kept, UDP's checksum is
//! not part of its `Repr`); and the whole-frame parser agrees with the
//! layer-by-layer walk and with its own emitter. The `AF_PACKET` socket
//! filter of `packet://` never drops a frame of its flow that the parser
//! delivers, and it only ever reads inside the frame. The shared layer-2
//! UDP endpoint of `packet://` and `xdp://` accepts exactly the frames the
//! parser delivers to its address and port, and counts every other frame
//! under one reason.
#![no_main]

use std::net::Ipv4Addr;

use hftnet_io::frames::{Neighbours, UdpCheck, UdpOverEthernet};
use hftnet_io::l2::{self, L2Iface};
use hftnet_sys::packet::{run_filter, udp_flow_filter};
use hftnet_wire::udp::{self, Checks, Reject};
use hftnet_wire::{arp, ethernet, ipv4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_endpoint(data);
    let Ok(frame) = ethernet::Frame::new_checked(data) else {
        assert!(data.len() < ethernet::VLAN_HEADER_LEN);
        assert_eq!(udp::parse_frame(data, Checks::ALL), Err(Reject::Truncated));
        return;
    };
    let _ = (
        frame.dst_addr(),
        frame.src_addr(),
        frame.ethertype(),
        frame.vlan(),
    );
    let hl = frame.header_len();
    assert_eq!(frame.payload().len(), data.len() - hl);

    let eth = ethernet::Repr::parse(&frame).expect("checked frame parses");
    assert_eq!(eth.header_len(), hl);
    let mut out = data.to_vec();
    eth.emit(&mut ethernet::Frame::new_unchecked(&mut out[..]));
    assert_eq!(out, data, "Ethernet header re-emits unchanged");

    match eth.ethertype {
        ethernet::EtherType::Ipv4 => walk_ipv4(frame.payload()),
        ethernet::EtherType::Arp => walk_arp(frame.payload()),
        _ => {}
    }

    for checks in [Checks::ALL, Checks::NONE] {
        match udp::parse_frame(data, checks) {
            Ok(f) => {
                check_udp_frame(data, &f, checks);
                if f.vlan.is_none() {
                    let prog = udp_flow_filter(Some(f.dst_ip), f.dst_port);
                    let verdict = run_filter(&prog, data).expect("known opcodes");
                    assert!(verdict > 0, "the flow filter drops a frame of its flow");
                }
            }
            Err(Reject::NotIpv4(t)) => assert_eq!(t, eth.ethertype),
            Err(_) => assert_eq!(eth.ethertype, ethernet::EtherType::Ipv4),
        }
    }
});

fn walk_ipv4(bytes: &[u8]) {
    let Ok(p) = ipv4::Packet::new_checked(bytes) else {
        assert!(matches!(
            ipv4::Repr::parse(&ipv4::Packet::new_unchecked(bytes)),
            Err(ipv4::ParseError::Truncated | ipv4::ParseError::Malformed)
        ));
        return;
    };
    let _ = (
        p.version(),
        p.dscp(),
        p.ecn(),
        p.ident(),
        p.dont_frag(),
        p.more_frags(),
        p.reserved_flag(),
        p.frag_offset(),
        p.ttl(),
        p.checksum(),
    );
    assert_eq!(p.options().len() + ipv4::HEADER_LEN, p.header_len());
    assert_eq!(
        p.header_len() + p.payload().len(),
        usize::from(p.total_len())
    );

    // fill_checksum repairs any header, options included.
    let mut fixed = bytes.to_vec();
    let mut q = ipv4::Packet::new_unchecked(&mut fixed[..]);
    q.fill_checksum();
    assert!(q.verify_checksum());

    match ipv4::Repr::parse(&p) {
        Ok(r) => {
            assert!(p.verify_checksum() && p.options().is_empty() && !p.is_fragment());
            assert_eq!(r.payload_len, p.payload().len());
            let mut out = bytes.to_vec();
            r.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
            let emitted = ipv4::Packet::new_checked(&out[..]).expect("emitted header checks");
            assert!(emitted.verify_checksum());
            assert!(emitted.dont_frag());
            assert_eq!(ipv4::Repr::parse(&emitted), Ok(r));
            // Same bytes but for the flags Repr does not keep and so the checksum.
            let mask = |b: &mut [u8]| {
                b[6] &= 0x1f;
                b[10] = 0;
                b[11] = 0;
            };
            let mut a = bytes[..ipv4::HEADER_LEN].to_vec();
            let mut e = out[..ipv4::HEADER_LEN].to_vec();
            mask(&mut a);
            mask(&mut e);
            assert_eq!(a, e);
            assert_eq!(out[ipv4::HEADER_LEN..], bytes[ipv4::HEADER_LEN..]);
            if r.protocol == ipv4::Protocol::Udp {
                walk_udp(p.payload(), r.src_addr, r.dst_addr);
            }
        }
        Err(ipv4::ParseError::Checksum) => assert!(!p.verify_checksum()),
        Err(ipv4::ParseError::Options) => assert!(!p.options().is_empty()),
        Err(ipv4::ParseError::Fragment) => assert!(p.is_fragment()),
        Err(e) => panic!("checked packet refused as {e:?}"),
    }
}

fn walk_udp(bytes: &[u8], src: Ipv4Addr, dst: Ipv4Addr) {
    let Ok(p) = udp::Packet::new_checked(bytes) else {
        return;
    };
    let _ = (
        p.src_port(),
        p.dst_port(),
        p.checksum(),
        p.verify_checksum(src, dst),
    );
    assert_eq!(p.payload().len() + udp::HEADER_LEN, usize::from(p.length()));
    let r = udp::Repr::parse(&p).expect("checked datagram parses");
    let mut out = bytes.to_vec();
    let mut q = udp::Packet::new_unchecked(&mut out[..]);
    r.emit(&mut q);
    q.fill_checksum(src, dst);
    assert!(q.checksum() != 0 && q.verify_checksum(src, dst));
    assert_eq!(out[..6], bytes[..6], "ports and length re-emit unchanged");
    assert_eq!(out[8..], bytes[8..], "payload untouched");
}

fn walk_arp(bytes: &[u8]) {
    let Ok(p) = arp::Packet::new_checked(bytes) else {
        return;
    };
    let _ = (p.hardware_type(), p.protocol_type(), p.operation());
    let addrs = p.source_hardware_addr().len()
        + p.source_protocol_addr().len()
        + p.target_hardware_addr().len()
        + p.target_protocol_addr().len();
    assert_eq!(arp::FIXED_LEN + addrs, p.packet_len());
    if let Ok(r) = arp::Repr::parse(&p) {
        let mut out = bytes.to_vec();
        r.emit(&mut arp::Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes, "ARP re-emits unchanged");
    }
}

fn check_udp_frame(data: &[u8], f: &udp::UdpFrame<'_>, checks: Checks) {
    let end = f.payload_offset + f.payload.len();
    assert!(end <= data.len());
    assert_eq!(&data[f.payload_offset..end], f.payload);

    // Rebuild it from what was read: it reads back the same.
    let spec = udp::FrameSpec {
        src_mac: f.src_mac,
        dst_mac: f.dst_mac,
        vlan: f.vlan,
        src_ip: f.src_ip,
        dst_ip: f.dst_ip,
        src_port: f.src_port,
        dst_port: f.dst_port,
        ttl: f.ttl,
        dscp: f.dscp,
        ident: f.ident,
        udp_checksum: true,
    };
    assert_eq!(spec.header_len(), f.payload_offset);
    let mut out = vec![0u8; spec.frame_len(f.payload.len())];
    let n = udp::emit_frame(&mut out, &spec, f.payload).expect("room for the frame");
    assert_eq!(n, out.len());
    let back = udp::parse_frame(&out, Checks::ALL).expect("emitted frame parses");
    assert_eq!(
        back,
        udp::UdpFrame {
            payload: back.payload,
            ..*f
        }
    );
    assert_eq!(back.payload, f.payload);
    // A frame that passed every check differs from the rebuilt one only in
    // what the spec does not carry: IPv4 flags, ECN, checksums, trailing bytes.
    if checks == Checks::ALL && f.vlan.is_none() {
        assert_eq!(out[..14], data[..14]);
        assert_eq!(out[26..34], data[26..34], "addresses");
        assert_eq!(out[34..40], data[34..40], "ports and length");
    }
}

/// The shared endpoint, at the address and port of the frame if it is a
/// UDP frame (so the accepting path runs too), else at a fixed one.
fn check_endpoint(data: &[u8]) {
    let (ip, port) = match udp::parse_frame(data, Checks::NONE) {
        Ok(f) => (f.dst_ip, f.dst_port),
        Err(_) => (Ipv4Addr::new(198, 18, 0, 2), 9000),
    };
    let iface = L2Iface {
        name: "veth0".into(),
        index: 2,
        mac: ethernet::Address([2, 0, 0, 0, 0, 2]),
        ipv4: Some((ip, 24)),
        mtu: 9000,
        up: true,
    };
    let local = std::net::SocketAddrV4::new(ip, port);
    // The neighbour table agrees with the frame's source MAC or not, as
    // the input says: both learning paths are walked.
    let table = match data.get(6..12) {
        Some(src) if data.len() % 2 == 0 => Some(ethernet::Address(src.try_into().unwrap())),
        _ => None,
    };
    for check in [UdpCheck::Verify, UdpCheck::Skip, UdpCheck::VerifyOrPartial] {
        let mut e = UdpOverEthernet::new(
            iface.clone(),
            local,
            None,
            None,
            9000,
            Box::new(Table(table)),
        );
        let got = e
            .accept(data, data.len(), check)
            .map(|(p, from)| (p.to_vec(), from));
        let s = e.stats;
        assert_eq!(s.rx_frames, 1);
        assert_eq!(s.delivered + s.dropped(), 1, "one outcome per frame: {s:?}");
        let checks = Checks {
            ip_header: true,
            udp: check != UdpCheck::Skip,
        };
        if let Ok(f) = udp::parse_frame(data, checks)
            && f.dst_ip == ip
            && f.dst_port == port
        {
            let (p, from) = got
                .clone()
                .expect("a frame the parser delivers to us is accepted");
            assert_eq!(p, f.payload);
            assert_eq!(from, std::net::SocketAddrV4::new(f.src_ip, f.src_port));
        }
        if check == UdpCheck::Skip && got.is_none() {
            assert!(
                udp::parse_frame(
                    data,
                    Checks {
                        ip_header: true,
                        udp: false
                    }
                )
                .is_err()
            );
        }
    }
}

/// A neighbour table of one answer for every address, no resolving.
#[derive(Debug)]
struct Table(Option<ethernet::Address>);

impl Neighbours for Table {
    fn resolve(
        &mut self,
        iface: &L2Iface,
        ip: Ipv4Addr,
        _: std::time::Duration,
    ) -> Result<ethernet::Address, l2::L2Error> {
        self.0.ok_or(l2::L2Error::Unresolved {
            ip,
            dst: ip,
            iface: iface.name.clone(),
            waited: std::time::Duration::ZERO,
            failed: true,
        })
    }
    fn table_mac(
        &mut self,
        _: &L2Iface,
        _: Ipv4Addr,
    ) -> Result<Option<ethernet::Address>, l2::L2Error> {
        Ok(self.0)
    }
}
