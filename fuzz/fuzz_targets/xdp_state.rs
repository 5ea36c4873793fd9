//! The XDP state of a link (`RTM_NEWLINK`'s `IFLA_XDP` attributes), read by
//! `parse_xdp_state` before attaching the steering program and when
//! replacing another one. Raw bytes never panic the reader, and what it
//! returns agrees with the header and holds only non-zero program ids,
//! native first; a reply built from program ids the input describes (ids
//! of 0 are "none", other attributes around them, `NLA_F_NESTED` set or
//! not) reads back as those ids, and cut short anywhere it never panics.
#![no_main]

use hftnet_io::xdp::AttachMode;
use hftnet_io::xdp::steer::{XdpState, parse_xdp_state};
use hftnet_sys::netlink::{
    IFLA_IFNAME, IFLA_MTU, IfInfoMsg, MessageBuilder, NLA_F_NESTED, RTM_NEWLINK,
};
use libfuzzer_sys::fuzz_target;

const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_PROG_ID: u16 = 4;
const IFLA_XDP_DRV_PROG_ID: u16 = 5;
const IFLA_XDP_SKB_PROG_ID: u16 = 6;
const IFLA_XDP_HW_PROG_ID: u16 = 7;

fn check(payload: &[u8]) -> Option<XdpState> {
    let st = parse_xdp_state(payload)?;
    let h = IfInfoMsg::parse(payload).expect("a header");
    assert_eq!(i64::from(st.ifindex), i64::from(h.index));
    let progs: Vec<_> = st.programs().collect();
    assert!(progs.len() <= 3);
    assert!(progs.iter().all(|&(id, _)| id != 0));
    let modes: Vec<_> = progs.iter().map(|&(_, m)| m).collect();
    let order = [Some(AttachMode::Driver), Some(AttachMode::Generic), None];
    let mut at = 0;
    for m in modes {
        let i = order.iter().position(|o| *o == m).expect("a known mode");
        assert!(i >= at, "native first, then generic, then offloaded");
        at = i + 1;
    }
    Some(st)
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() < 16 {
        return;
    }
    let id = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().expect("4 bytes")) % 4;
    let want = XdpState {
        ifindex: u32::from(data[0]) + 1,
        drv: Some(id(4)).filter(|&v| v != 0),
        skb: Some(id(8)).filter(|&v| v != 0),
        hw: Some(id(12)).filter(|&v| v != 0),
    };
    let flags = data[1];
    let mut m = MessageBuilder::new(RTM_NEWLINK, 0);
    m.push_header(
        &IfInfoMsg {
            index: want.ifindex as i32,
            ..IfInfoMsg::default()
        }
        .to_bytes(),
    );
    m.attr_str(IFLA_IFNAME, "veth0");
    let nested = if flags & 1 != 0 { NLA_F_NESTED } else { 0 };
    let n = m.begin_nested(IFLA_XDP | nested);
    m.attr(IFLA_XDP_ATTACHED, &[data[2] % 5]);
    for (attr, v, raw) in [
        (IFLA_XDP_DRV_PROG_ID, want.drv, id(4)),
        (IFLA_XDP_SKB_PROG_ID, want.skb, id(8)),
        (IFLA_XDP_HW_PROG_ID, want.hw, id(12)),
    ] {
        // An id of 0 is sent as 0 or left out; both read as none.
        if v.is_some() || flags & 2 != 0 {
            m.attr_u32(attr, raw);
        }
    }
    if flags & 4 != 0 {
        m.attr_u32(IFLA_XDP_PROG_ID, 99);
    }
    m.end_nested(n);
    m.attr_u32(IFLA_MTU, 1500);
    let bytes = m.finish(1);
    assert_eq!(check(&bytes[16..]), Some(want));
    for cut in 0..bytes.len() - 16 {
        let _ = check(&bytes[16..16 + cut]);
    }
});
