//! Control messages as `recvmsg` leaves them (receive timestamps) and as the
//! error queue delivers them (transmit timestamps, `MSG_ZEROCOPY`
//! completions), parsed by the code the receive calls use
//! (`hftnet_sys::sock::parse_control`).
//!
//! The first byte picks the mode. Raw: arbitrary bytes as the control
//! buffer; nothing panics, and a report is consistent with the stamps read.
//! Built: a sequence of well-formed messages described by the input is
//! encoded as the kernel lays them out; parsing gives what was encoded (the
//! last message of a kind wins, as in the kernel's order), and the buffer
//! cut at any byte parses exactly as the messages wholly before the cut.
#![no_main]

use hftnet_sys::sock::{
    ControlInfo, ErrQueueEvent, SO_EE_CODE_ZEROCOPY_COPIED, SO_EE_ORIGIN_ZEROCOPY, TxStamp,
    TxStampKind, ZcCompletion, parse_control,
};
use libfuzzer_sys::fuzz_target;

const SCM_TIMESTAMPNS: i32 = 35; // SO_TIMESTAMPNS
const SCM_TIMESTAMPING: i32 = 37; // SO_TIMESTAMPING
const SOL_SOCKET: i32 = 1;
const SOL_IP: i32 = 0;
const IP_RECVERR: i32 = 11;
const SOL_IPV6: i32 = 41;
const IPV6_RECVERR: i32 = 25;
const ENOMSG: u32 = 42;
const ORIGIN_TIMESTAMPING: u8 = 4;

fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
    let mut b = (16 + data.len()).to_ne_bytes().to_vec();
    b.extend_from_slice(&level.to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(data);
    b.resize(b.len().div_ceil(8) * 8, 0);
    b
}

fn timespec(ns: Option<u64>) -> [u8; 16] {
    let (s, n) = ns.map_or((0i64, 0i64), |ns| {
        ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
    });
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&s.to_ne_bytes());
    b[8..].copy_from_slice(&n.to_ne_bytes());
    b
}

fn ee(errno: u32, origin: u8, code: u8, info: u32, data: u32) -> Vec<u8> {
    let mut b = errno.to_ne_bytes().to_vec();
    b.extend_from_slice(&[origin, 0, code, 0]);
    b.extend_from_slice(&info.to_ne_bytes());
    b.extend_from_slice(&data.to_ne_bytes());
    b
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (a, b) = self.0.split_at_checked(N)?;
        self.0 = b;
        a.try_into().ok()
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }
    fn stamp(&mut self) -> Option<Option<u64>> {
        // Stamps a clock gives: up to the year 2554 (u64 nanoseconds); the
        // zero time is the kernel's "no stamp".
        let v = u64::from_le_bytes(self.bytes::<8>()?);
        Some((v % 4 != 0 && v >> 2 != 0).then_some(v >> 2))
    }
}

/// What the parser must report for these messages, in order.
#[derive(Default, Clone, Copy)]
struct Model {
    sw: Option<u64>,
    hw: Option<u64>,
    tx: Option<(u32, u32)>,
    zc: Option<(u32, u32, u8)>,
}

impl Model {
    fn expect(&self) -> ControlInfo {
        let errqueue = if let Some((lo, hi, code)) = self.zc {
            Some(ErrQueueEvent::ZeroCopy(ZcCompletion {
                lo,
                hi,
                copied: code & SO_EE_CODE_ZEROCOPY_COPIED != 0,
            }))
        } else {
            self.tx.and_then(|(info, id)| {
                let kind = match info {
                    0 => TxStampKind::Snd,
                    1 => TxStampKind::Sched,
                    2 => TxStampKind::Ack,
                    _ => return None,
                };
                Some(ErrQueueEvent::TxStamp(TxStamp {
                    id,
                    kind,
                    sw_ns: self.sw,
                    hw_ns: self.hw,
                }))
            })
        };
        ControlInfo {
            rx_ts_ns: self.sw,
            rx_hw_ts_ns: self.hw,
            errqueue,
        }
    }
}

fn check_consistent(info: &ControlInfo) {
    match info.errqueue {
        Some(ErrQueueEvent::TxStamp(t)) => {
            assert_eq!((t.sw_ns, t.hw_ns), (info.rx_ts_ns, info.rx_hw_ts_ns));
        }
        Some(ErrQueueEvent::ZeroCopy(z)) => assert!(z.count() >= 1),
        None => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let info = parse_control(rest);
        check_consistent(&info);
        return;
    }

    let mut input = Input(rest);
    let mut buf = Vec::new();
    // (where the message's cmsg_len ends in buf, model after the message):
    // a message is read when the buffer holds its length, padding or not.
    let mut marks: Vec<(usize, Model)> = vec![(0, Model::default())];
    let mut m = Model::default();
    while let Some([op]) = input.bytes::<1>() {
        if marks.len() > 64 {
            break;
        }
        let msg = match op % 7 {
            0 => {
                let Some(s) = input.stamp() else { break };
                m.sw = s;
                cmsg(SOL_SOCKET, SCM_TIMESTAMPNS, &timespec(s))
            }
            1 => {
                let (Some(a), Some(b), Some(c)) = (input.stamp(), input.stamp(), input.stamp())
                else {
                    break;
                };
                m.sw = a;
                m.hw = c;
                let mut d = timespec(a).to_vec();
                d.extend_from_slice(&timespec(b));
                d.extend_from_slice(&timespec(c));
                cmsg(SOL_SOCKET, SCM_TIMESTAMPING, &d)
            }
            2 | 3 => {
                let (Some(info), Some(id)) = (input.u32(), input.u32()) else {
                    break;
                };
                let info = info % 5; // mostly known kinds
                m.tx = Some((info, id));
                let (level, kind) = if op % 7 == 2 {
                    (SOL_IP, IP_RECVERR)
                } else {
                    (SOL_IPV6, IPV6_RECVERR)
                };
                // The offender address the kernel appends after the error.
                let mut d = ee(ENOMSG, ORIGIN_TIMESTAMPING, 0, info, id);
                d.extend_from_slice(&[0u8; 16][..usize::from(op >> 4)]);
                cmsg(level, kind, &d)
            }
            4 => {
                let (Some(lo), Some(hi), Some([code])) =
                    (input.u32(), input.u32(), input.bytes::<1>())
                else {
                    break;
                };
                m.zc = Some((lo, hi, code));
                cmsg(
                    SOL_IP,
                    IP_RECVERR,
                    &ee(0, SO_EE_ORIGIN_ZEROCOPY, code, lo, hi),
                )
            }
            5 => {
                // Another error (ICMP, a local error): no report.
                let Some(errno) = input.u32() else { break };
                let errno = errno | 1; // never 0 nor ENOMSG (42)
                cmsg(SOL_IP, IP_RECVERR, &ee(errno, 2, 3, 0, 0))
            }
            _ => {
                // Something the parser does not read (IP_PKTINFO, a short
                // stamp): skipped.
                let Some([n]) = input.bytes::<1>() else { break };
                let kind = if n & 1 == 0 { 8 } else { SCM_TIMESTAMPNS };
                cmsg(
                    SOL_SOCKET * i32::from(n & 1),
                    kind,
                    &vec![0xa5; usize::from(n % 16)],
                )
            }
        };
        let len = usize::from_ne_bytes(msg[..8].try_into().expect("8 bytes"));
        marks.push((buf.len() + len, m));
        buf.extend_from_slice(&msg);
    }

    let got = parse_control(&buf);
    check_consistent(&got);
    assert_eq!(got, m.expect(), "all messages");
    // Cut anywhere: exactly the messages wholly before the cut are read.
    for cut in 0..buf.len() {
        let whole = marks
            .iter()
            .rev()
            .find(|(end, _)| *end <= cut)
            .expect("mark 0");
        assert_eq!(parse_control(&buf[..cut]), whole.1.expect(), "cut at {cut}");
    }
});
