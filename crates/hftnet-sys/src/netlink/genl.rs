//! Generic netlink (`NETLINK_GENERIC`) messages: resolving a family by
//! name (`nlctrl`) and the `netdev` family's queue dump, which tells
//! whether an AF_XDP buffer pool holds a receive queue. Pure: building and
//! parsing only; [`GenNetlink`](super::GenNetlink) sends them.

#![forbid(unsafe_code)]

use super::message::{MessageBuilder, attributes};
use super::uapi::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

/// `GENL_ID_CTRL`: the controller family, fixed.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_GETFAMILY`.
const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string).
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `NETDEV_CMD_QUEUE_GET` of the `netdev` family.
const NETDEV_CMD_QUEUE_GET: u8 = 10;
/// `NETDEV_A_QUEUE_ID` (u32).
const NETDEV_A_QUEUE_ID: u16 = 1;
/// `NETDEV_A_QUEUE_IFINDEX` (u32).
const NETDEV_A_QUEUE_IFINDEX: u16 = 2;
/// `NETDEV_A_QUEUE_TYPE` (u32: 0 receive, 1 transmit).
const NETDEV_A_QUEUE_TYPE: u16 = 3;
/// `NETDEV_A_QUEUE_XSK` (nest): present while an AF_XDP buffer pool is
/// bound to the queue (recent kernels; 6.18 does, older ones may not).
const NETDEV_A_QUEUE_XSK: u16 = 7;
/// The size of `struct genlmsghdr` (cmd, version, reserved).
pub const GENL_HDRLEN: usize = 4;

fn genl_header(cmd: u8) -> [u8; GENL_HDRLEN] {
    [cmd, 1, 0, 0]
}

/// `CTRL_CMD_GETFAMILY` for the family `name` (e.g. `netdev`), answered by
/// one message whose [`parse_family_id`] is the family's id.
#[must_use]
pub fn get_family_request(name: &str) -> MessageBuilder {
    let mut m = MessageBuilder::new(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK);
    m.push_header(&genl_header(CTRL_CMD_GETFAMILY));
    m.attr_str(CTRL_ATTR_FAMILY_NAME, name);
    m
}

/// The family id in a `CTRL_CMD_NEWFAMILY` payload (after the netlink
/// header); `None` if the payload is short or has none.
#[must_use]
pub fn parse_family_id(payload: &[u8]) -> Option<u16> {
    attributes(payload.get(GENL_HDRLEN..)?)
        .find(|a| a.attr_type == CTRL_ATTR_FAMILY_ID)
        .and_then(|a| <[u8; 2]>::try_from(a.payload).ok())
        .map(u16::from_ne_bytes)
}

/// `NETDEV_CMD_QUEUE_GET` dump of the queues of link `ifindex` in the
/// `netdev` family `family` (its id, see [`get_family_request`]).
#[must_use]
pub fn dump_queues_request(family: u16, ifindex: u32) -> MessageBuilder {
    let mut m = MessageBuilder::new(family, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP);
    m.push_header(&genl_header(NETDEV_CMD_QUEUE_GET));
    m.attr_u32(NETDEV_A_QUEUE_IFINDEX, ifindex);
    m
}

/// One queue of a link, as the `netdev` family reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetdevQueue {
    /// The link's index.
    pub ifindex: u32,
    /// The queue's number.
    pub id: u32,
    /// A receive queue (else transmit).
    pub rx: bool,
    /// An AF_XDP buffer pool holds it (`NETDEV_A_QUEUE_XSK`): a bound
    /// socket, or one closed a moment ago whose pool the kernel has not
    /// released yet. Kernels without the attribute never say so.
    pub xsk: bool,
}

/// Parses one message of a [`dump_queues_request`] answer; `None` if the
/// payload is short or lacks the index, the id or the type.
#[must_use]
pub fn parse_queue(payload: &[u8]) -> Option<NetdevQueue> {
    let (mut ifindex, mut id, mut kind, mut xsk) = (None, None, None, false);
    for a in attributes(payload.get(GENL_HDRLEN..)?) {
        let v = <[u8; 4]>::try_from(a.payload).ok().map(u32::from_ne_bytes);
        match a.attr_type {
            NETDEV_A_QUEUE_IFINDEX => ifindex = v,
            NETDEV_A_QUEUE_ID => id = v,
            NETDEV_A_QUEUE_TYPE => kind = v,
            NETDEV_A_QUEUE_XSK => xsk = true,
            _ => {}
        }
    }
    Some(NetdevQueue {
        ifindex: ifindex?,
        id: id?,
        rx: kind? == 0,
        xsk,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(t: u16, v: &[u8]) -> Vec<u8> {
        let mut a = ((4 + v.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&t.to_ne_bytes());
        a.extend_from_slice(v);
        while !a.len().is_multiple_of(4) {
            a.push(0);
        }
        a
    }

    #[test]
    fn a_queue_with_and_without_its_xsk_pool() {
        let mut p = vec![1, 1, 0, 0];
        p.extend(attr(NETDEV_A_QUEUE_ID, &3u32.to_ne_bytes()));
        p.extend(attr(NETDEV_A_QUEUE_TYPE, &0u32.to_ne_bytes()));
        p.extend(attr(NETDEV_A_QUEUE_IFINDEX, &7u32.to_ne_bytes()));
        let free = parse_queue(&p).unwrap();
        assert_eq!(
            free,
            NetdevQueue {
                ifindex: 7,
                id: 3,
                rx: true,
                xsk: false
            }
        );
        p.extend(attr(NETDEV_A_QUEUE_XSK | 0x8000, &[]));
        assert!(parse_queue(&p).unwrap().xsk);
        // Short, or missing what identifies the queue: nothing.
        assert_eq!(parse_queue(&p[..3]), None);
        assert_eq!(parse_queue(&[1, 1, 0, 0]), None);
    }

    #[test]
    fn the_family_id_is_read_from_the_controller_answer() {
        let mut p = vec![1, 2, 0, 0];
        p.extend(attr(CTRL_ATTR_FAMILY_NAME, b"netdev\0"));
        p.extend(attr(CTRL_ATTR_FAMILY_ID, &20u16.to_ne_bytes()));
        assert_eq!(parse_family_id(&p), Some(20));
        assert_eq!(parse_family_id(&p[..2]), None);
        // A request carries the name, NUL-terminated, after the header.
        let bytes = get_family_request("netdev").finish(1);
        assert!(bytes.windows(7).any(|w| w == b"netdev\0"));
    }
}
