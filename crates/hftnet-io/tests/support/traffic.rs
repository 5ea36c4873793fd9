//! Helpers shared by the layer-2 transport tests (`packet.rs`, `xdp.rs`):
//! the root check, numbered payloads, a bounded receive loop, an ICMP echo
//! and raw frame injection.

#![allow(dead_code)] // each test file uses its own subset

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use hftnet_io::l2::L2Iface;
use hftnet_io::{RxBurst, Transport};
use hftnet_sys::packet::{self as ring, PacketRing, RingConfig};
use socket2::{Domain, Protocol, Socket, Type};

pub fn skip_without_root(test: &str) -> bool {
    if let Err(e) = hftnet_lab::check_privileges() {
        eprintln!("SKIPPED {test}: {e}");
        return true;
    }
    false
}

/// Message `i`: its number, then a pattern, 16 to 315 bytes long.
pub fn payload(i: u32) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; 16 + (i as usize % 300)];
    v[..4].copy_from_slice(&i.to_le_bytes());
    v
}

/// Receives until `want` messages came or `limit` passed; returns them.
pub fn collect<T: Transport>(
    t: &mut T,
    want: usize,
    limit: Duration,
) -> Vec<(Vec<u8>, SocketAddr)> {
    let mut b = RxBurst::new(32, 2048);
    let mut out = Vec::new();
    let end = Instant::now() + limit;
    while out.len() < want && Instant::now() < end {
        let n = t.recv_burst(&mut b).unwrap();
        for i in 0..n {
            let (d, m) = b.get(i);
            assert!(!m.truncated);
            out.push((d.to_vec(), m.peer.unwrap()));
        }
    }
    out
}

/// ICMP echo from a raw socket; true when the reply came back.
pub fn icmp_echo(to: Ipv4Addr) -> bool {
    let mut s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut req = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'f', b't', b'n'];
    let sum = hftnet_wire::checksum::data(&req);
    req[2..4].copy_from_slice(&(!sum).to_be_bytes());
    let dst: SocketAddr = SocketAddrV4::new(to, 0).into();
    for _ in 0..5 {
        s.send_to(&req, &dst.into()).unwrap();
        let mut b = [0u8; 1500];
        while let Ok(n) = s.read(&mut b) {
            // A raw IPv4 socket reads the IP header, then the ICMP message.
            let ihl = usize::from(b[0] & 0xf) * 4;
            if n >= ihl + 8 && b[ihl] == 0 && b[ihl + 4..ihl + 6] == [0x12, 0x34] {
                return true;
            }
        }
    }
    false
}

/// Sends raw frames out of `iface` through a transmit ring of our own.
pub fn inject(iface: &str, frames: &[Vec<u8>]) {
    let iface = L2Iface::lookup(iface).unwrap();
    let cfg = RingConfig {
        rx_frames: 2,
        tx_frames: 16,
        ..RingConfig::DEFAULT
    };
    let mut r = PacketRing::open(iface.index, cfg, Some(&ring::drop_all_filter()), None).unwrap();
    for f in frames {
        let slot = r.tx_slot().expect("free transmit frame");
        slot[..f.len()].copy_from_slice(f);
        r.tx_commit(f.len());
        r.tx_kick(true).unwrap();
    }
}
