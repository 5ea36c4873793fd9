//! Helpers shared by the layer-2 transport tests (`packet.rs`, `xdp.rs`):
//! the root check, numbered payloads, a bounded receive loop, an ICMP echo
//! and raw frame injection.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use hftnet_io::l2::L2Iface;
use hftnet_io::{RxBurst, RxMeta, Transport, TxMsg};
use hftnet_lab::Host;
use hftnet_sys::packet::{self as ring, PacketRing, RingConfig};
use socket2::{Domain, Protocol, Socket, Type};

#[allow(unused_imports)] // each test file uses its own subset
pub use hftnet_lab::skip_without_root;

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

/// The client sends `total` numbered messages in bursts of `burst`, the
/// server echoes each to its sender, and the client checks every echo:
/// exact count, bytes and order. Returns the bytes echoed. The server's
/// receive metadata goes through `check_meta`.
pub fn echo<S: Transport, C: Transport>(
    server: &mut S,
    client: &mut C,
    total: u32,
    burst: u32,
    check_meta: impl Fn(&RxMeta),
) -> usize {
    let mut srx = RxBurst::new(64, 2048);
    let mut crx = RxBurst::new(64, 2048);
    let (mut sent, mut back, mut bytes) = (0u32, 0u32, 0usize);
    let deadline = Instant::now() + Duration::from_secs(120);
    while back < total {
        assert!(Instant::now() < deadline, "echo stalled at {back}");
        let n = (total - sent).min(burst);
        let ps: Vec<Vec<u8>> = (sent..sent + n).map(payload).collect();
        let msgs: Vec<TxMsg<'_>> = ps.iter().map(|p| TxMsg { data: p, to: None }).collect();
        assert_eq!(client.send_burst(&msgs).unwrap(), n as usize);
        sent += n;
        let mut echoed = 0;
        while echoed < n {
            let got = server.recv_burst(&mut srx).unwrap();
            assert!(got > 0, "server timed out after {back}");
            let replies: Vec<(Vec<u8>, Option<SocketAddr>)> = (0..got)
                .map(|i| {
                    let (d, m) = srx.get(i);
                    check_meta(m);
                    (d.to_vec(), m.peer)
                })
                .collect();
            let msgs: Vec<TxMsg<'_>> = replies
                .iter()
                .map(|(d, to)| TxMsg { data: d, to: *to })
                .collect();
            assert_eq!(server.send_burst(&msgs).unwrap(), got);
            echoed += got as u32;
        }
        while back < sent {
            let got = client.recv_burst(&mut crx).unwrap();
            assert!(got > 0, "client timed out after {back}");
            for i in 0..got {
                let d = crx.get(i).0;
                assert_eq!(d, payload(back).as_slice(), "echo {back}");
                bytes += d.len();
                back += 1;
            }
        }
    }
    bytes
}

/// The "only the flow" exchange shared by the layer-2 tests. `transport`
/// (opened on `server`, holding UDP port 9000) receives the flow and echoes
/// each datagram; at the same time `client` sends 200 numbered datagrams to
/// the flow, 100 to port 9001 and makes a TCP exchange on port 9002 and an
/// ICMP echo, which kernel sockets on `server` must get. Asserts every
/// datagram (bytes, order, sender), every echo and every kernel exchange.
pub fn flow_and_the_rest<T: Transport>(server: &Host, client: &Host, transport: &mut T) {
    let ip = server.addr();
    let (other, tcp) = server
        .run(move || {
            let other = UdpSocket::bind((ip, 9001)).unwrap();
            other
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            (other, TcpListener::bind((ip, 9002)).unwrap())
        })
        .unwrap();
    let peer = client
        .spawn_thread("traffic", move || {
            let s = UdpSocket::bind("0.0.0.0:4000").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            for i in 0..200u32 {
                s.send_to(&payload(i), (ip, 9000)).unwrap();
                if i % 2 == 0 {
                    s.send_to(b"other", (ip, 9001)).unwrap();
                }
                if i % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            let mut c = TcpStream::connect((ip, 9002)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            c.write_all(b"over tcp").unwrap();
            let mut back = [0u8; 8];
            c.read_exact(&mut back).unwrap();
            let icmp = icmp_echo(ip);
            let mut echoes = 0u32;
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                assert_eq!(from, SocketAddr::from((ip, 9000)));
                assert_eq!(&buf[..n], payload(echoes).as_slice(), "echo {echoes}");
                echoes += 1;
                if echoes == 200 {
                    break;
                }
            }
            (icmp, &back == b"over tcp", echoes)
        })
        .unwrap();
    let tcp_server = std::thread::spawn(move || {
        let (mut c, _) = tcp.accept().unwrap();
        let mut b = [0u8; 8];
        c.read_exact(&mut b).unwrap();
        c.write_all(&b).unwrap();
    });
    let got = collect(transport, 200, Duration::from_secs(10));
    assert_eq!(got.len(), 200);
    for (i, (data, from)) in got.iter().enumerate() {
        assert_eq!(data, &payload(i as u32), "datagram {i}: bytes and order");
        assert_eq!(*from, SocketAddr::from((client.addr(), 4000)));
        transport
            .send_burst(&[TxMsg {
                data,
                to: Some(*from),
            }])
            .unwrap();
    }
    let mut b = [0u8; 64];
    for k in 0..100 {
        let n = other
            .recv(&mut b)
            .unwrap_or_else(|e| panic!("UDP {k} to 9001 reaches the kernel: {e}"));
        assert_eq!(&b[..n], b"other");
    }
    tcp_server.join().unwrap();
    let (icmp, tcp_ok, echoes) = peer.join().unwrap();
    assert!(icmp, "ICMP echo answered by the kernel");
    assert!(tcp_ok, "TCP exchange through the kernel");
    assert_eq!(echoes, 200, "every echo sent from the transport arrived");
}

/// A forged frame does not redirect answers: `transport` (a server on
/// `server`, UDP port `port`, echoing each datagram to its sender) talks
/// with a kernel socket on `client`; between two real exchanges a frame is
/// injected from `client`'s interface with the client's IP address and
/// port but a forged source MAC. Its echo, and the echo of the next real
/// datagram, must still reach the client's kernel socket (a frame to the
/// forged MAC would be dropped by the client's veth). Returns the
/// transport's `mac_mismatch` count as `mismatch` reads it.
pub fn forged_source_mac_does_not_redirect<T: Transport>(
    server: &Host,
    client: &Host,
    transport: &mut T,
    port: u16,
    mismatch: impl Fn(&mut T) -> u64,
) -> u64 {
    use hftnet_wire::ethernet;
    use hftnet_wire::udp::{FrameSpec, emit_frame};

    let (sip, cip) = (server.addr(), client.addr());
    let si = server.iface().to_string();
    let server_mac = server
        .run(move || L2Iface::lookup(&si).unwrap().mac)
        .unwrap();
    let sock = client
        .run(move || {
            let s = UdpSocket::bind((cip, 4000)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s
        })
        .unwrap();
    let echo_one = |t: &mut T| {
        let got = collect(t, 1, Duration::from_secs(3));
        assert_eq!(got.len(), 1, "the server got the datagram");
        let (data, from) = &got[0];
        assert_eq!(*from, SocketAddr::from((cip, 4000)));
        t.send_burst(&[TxMsg {
            data,
            to: Some(*from),
        }])
        .unwrap();
        data.clone()
    };
    let back = |what: &[u8]| {
        let mut b = [0u8; 256];
        let (n, from) = sock
            .recv_from(&mut b)
            .unwrap_or_else(|e| panic!("the echo of {what:?} reached the client: {e}"));
        assert_eq!((&b[..n], from), (what, SocketAddr::from((sip, port))));
    };

    sock.send_to(b"one", (sip, port)).unwrap();
    assert_eq!(echo_one(transport), b"one");
    back(b"one");
    assert_eq!(
        mismatch(transport),
        0,
        "the real client agrees with the table"
    );

    let forged_mac = ethernet::Address([0x02, 0x66, 0x66, 0x66, 0x66, 0x66]);
    let spec = FrameSpec::new(forged_mac, server_mac, cip, sip, 4000, port);
    let mut f = vec![0u8; 256];
    let n = emit_frame(&mut f, &spec, b"forged").unwrap();
    f.truncate(n);
    let ci = client.iface().to_string();
    client.run(move || inject(&ci, &[f])).unwrap();
    assert_eq!(echo_one(transport), b"forged");
    back(b"forged");

    sock.send_to(b"two", (sip, port)).unwrap();
    assert_eq!(echo_one(transport), b"two");
    back(b"two");
    mismatch(transport)
}
