//! rtnetlink replies from arbitrary bytes: splitting messages, decoding
//! errors, walking attributes and the typed readers (`parse_route`,
//! `parse_neighbour`, `parse_link`, `parse_address`) never panic and never
//! read out of bounds, and:
//! - the splitter's messages tile the buffer (4-byte aligned) and the
//!   attribute walk's payloads lie inside what it was given;
//! - what a typed reader returns is made of bytes of the message (names,
//!   addresses) and agrees with its header;
//! - the first byte picking the built mode: a reply built with
//!   `MessageBuilder` from values the input describes reads back as those
//!   values, through the splitter, and cut short anywhere it never panics
//!   and never reads a value past the cut.
#![no_main]

use std::net::Ipv4Addr;

use hftnet_sys::netlink::{
    IFA_ADDRESS, IFA_LOCAL, IFF_LOWER_UP, IFF_RUNNING, IFF_UP, IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU,
    IfAddrMsg, IfInfoMsg, LinkInfo, MessageBuilder, NDA_DST, NDA_LLADDR, NdMsg, Neighbour,
    RTA_GATEWAY, RTA_OIF, RTA_PREFSRC, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE,
    RouteInfo, RtMsg, attributes, decode_error, parse_address, parse_link, parse_neighbour,
    parse_route, split_messages,
};
use libfuzzer_sys::fuzz_target;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Every typed reader on one payload: no panic, and the results agree with
/// the bytes.
fn typed(payload: &[u8]) {
    if let Some(r) = parse_route(payload) {
        assert!(payload.len() >= RtMsg::LEN && payload[0] == 2);
        assert!(contains(payload, &r.oif.to_ne_bytes()));
        for a in [r.gateway, r.prefsrc].into_iter().flatten() {
            assert!(contains(&payload[RtMsg::LEN..], &a.octets()));
        }
    }
    if let Some(n) = parse_neighbour(payload) {
        let h = NdMsg::parse(payload).expect("a header");
        assert_eq!(n.state, h.state);
        if let Some(mac) = n.mac {
            assert!(contains(&payload[NdMsg::LEN..], &mac));
        }
        let _ = (n.is_usable(), n.is_failed());
    }
    if let Some(l) = parse_link(payload) {
        let h = IfInfoMsg::parse(payload).expect("a header");
        assert_eq!(i64::from(l.index), i64::from(h.index));
        assert_eq!(l.up, h.flags & IFF_UP != 0);
        assert!(
            l.name.len() <= 3 * payload.len(),
            "lossy UTF-8 at most triples"
        );
        if let Some(mac) = l.mac {
            assert!(contains(&payload[IfInfoMsg::LEN..], &mac));
        }
    } else if let Some(h) = IfInfoMsg::parse(payload) {
        assert!(h.index < 0);
    }
    if let Some((index, addr, prefix)) = parse_address(payload) {
        let h = IfAddrMsg::parse(payload).expect("a header");
        assert_eq!((index, prefix, h.family), (h.index, h.prefix_len, 2));
        assert!(contains(&payload[IfAddrMsg::LEN..], &addr.octets()));
    }
}

fn raw(data: &[u8]) {
    if let Ok(msgs) = split_messages(data) {
        let mut covered = 0usize;
        for m in &msgs {
            assert!(m.payload.len() <= data.len());
            covered = (covered + 16 + m.payload.len())
                .next_multiple_of(4)
                .min(data.len());
            let _ = decode_error(m.payload);
            typed(m.payload);
            let body = m.payload.get(IfInfoMsg::LEN..).unwrap_or(&[]);
            for a in attributes(body).take(1024) {
                assert!(a.payload.len() + 4 <= body.len());
            }
        }
        assert_eq!(covered, data.len(), "the messages tile the buffer");
    }
    typed(data);
    for a in attributes(data).take(1024) {
        assert!(a.payload.len() + 4 <= data.len());
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn opt_ip(&mut self) -> Option<Ipv4Addr> {
        let [flag] = self.bytes::<1>();
        let ip = Ipv4Addr::from(self.bytes::<4>());
        (flag & 1 != 0).then_some(ip)
    }
}

/// Builds one reply from the input, and what its reader must return.
fn built(input: &mut Input<'_>) -> (u16, Vec<u8>) {
    let [kind] = input.bytes::<1>();
    match kind % 4 {
        0 => {
            let r = RouteInfo {
                oif: input.u32(),
                gateway: input.opt_ip(),
                prefsrc: input.opt_ip(),
            };
            let mut m = MessageBuilder::new(RTM_NEWROUTE, 0);
            m.push_header(
                &RtMsg {
                    family: 2,
                    dst_len: 32,
                    ..RtMsg::default()
                }
                .to_bytes(),
            );
            m.attr(1, &input.bytes::<4>()); // RTA_DST
            if let Some(g) = r.gateway {
                m.attr(RTA_GATEWAY, &g.octets());
            }
            m.attr_u32(RTA_OIF, r.oif);
            if let Some(p) = r.prefsrc {
                m.attr(RTA_PREFSRC, &p.octets());
            }
            let bytes = m.finish(1);
            assert_eq!(parse_route(&bytes[16..]), Some(r));
            (RTM_NEWROUTE, bytes)
        }
        1 => {
            let [flag] = input.bytes::<1>();
            let n = Neighbour {
                mac: (flag & 1 != 0).then(|| input.bytes::<6>()),
                state: u16::from_le_bytes(input.bytes()),
            };
            let mut m = MessageBuilder::new(RTM_NEWNEIGH, 0);
            m.push_header(
                &NdMsg {
                    family: 2,
                    index: 3,
                    state: n.state,
                    ..NdMsg::default()
                }
                .to_bytes(),
            );
            m.attr(NDA_DST, &input.bytes::<4>());
            if let Some(mac) = n.mac {
                m.attr(NDA_LLADDR, &mac);
            }
            let bytes = m.finish(1);
            assert_eq!(parse_neighbour(&bytes[16..]), Some(n));
            (RTM_NEWNEIGH, bytes)
        }
        2 => {
            let [len, flags] = input.bytes::<2>();
            let name: String = (0..usize::from(len % 16))
                .map(|_| char::from(b'a' + input.bytes::<1>()[0] % 26))
                .collect();
            let flags = u32::from(flags);
            let [has_mac] = input.bytes::<1>();
            let l = LinkInfo {
                index: input.u32() & 0x7fff_ffff,
                name,
                mac: (has_mac & 1 != 0).then(|| input.bytes::<6>()),
                mtu: input.u32(),
                up: flags & IFF_UP != 0,
                running: flags & (IFF_RUNNING | IFF_LOWER_UP) != 0,
                arphrd: 1,
            };
            let mut m = MessageBuilder::new(RTM_NEWLINK, 0);
            m.push_header(
                &IfInfoMsg {
                    link_type: l.arphrd,
                    index: l.index as i32,
                    flags,
                    ..IfInfoMsg::default()
                }
                .to_bytes(),
            );
            m.attr_str(IFLA_IFNAME, &l.name);
            if let Some(mac) = l.mac {
                m.attr(IFLA_ADDRESS, &mac);
            }
            m.attr_u32(IFLA_MTU, l.mtu);
            let bytes = m.finish(1);
            assert_eq!(parse_link(&bytes[16..]).as_ref(), Some(&l));
            (RTM_NEWLINK, bytes)
        }
        _ => {
            let (local, address) = (input.opt_ip(), input.opt_ip());
            let [prefix] = input.bytes::<1>();
            let index = input.u32();
            let mut m = MessageBuilder::new(RTM_NEWADDR, 0);
            m.push_header(
                &IfAddrMsg {
                    family: 2,
                    prefix_len: prefix,
                    index,
                    ..IfAddrMsg::default()
                }
                .to_bytes(),
            );
            if let Some(a) = address {
                m.attr(IFA_ADDRESS, &a.octets());
            }
            if let Some(l) = local {
                m.attr(IFA_LOCAL, &l.octets());
            }
            let bytes = m.finish(1);
            let want = local.or(address).map(|a| (index, a, prefix));
            assert_eq!(parse_address(&bytes[16..]), want);
            (RTM_NEWADDR, bytes)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    raw(data);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        return;
    }
    // Several replies in one datagram, as a dump delivers them.
    let mut input = Input(rest);
    let mut buf = Vec::new();
    let mut types = Vec::new();
    for _ in 0..1 + usize::from(mode >> 6) {
        let (t, bytes) = built(&mut input);
        types.push(t);
        buf.extend_from_slice(&bytes);
    }
    let msgs = split_messages(&buf).expect("built messages split");
    assert_eq!(msgs.iter().map(|m| m.msg_type).collect::<Vec<_>>(), types);
    for m in &msgs {
        typed(m.payload);
    }
    // Cut anywhere: the splitter refuses the cut message, and each reader
    // on the cut payload neither panics nor invents a value.
    for cut in 0..buf.len() {
        raw(&buf[..cut]);
        if cut >= 16 {
            typed(&buf[16..cut]);
        }
    }
});
