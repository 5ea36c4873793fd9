//! The capability report: what a transport actually got, read back after it
//! was set up.
//!
//! Layer: reporting, never the hot path (building one allocates). The fields
//! every backend has are typed here ([`Capabilities`]); each backend's own
//! facts are its [`Section`] (socket buffers and NAPI id for kernel sockets,
//! UMEM and wake-ups for AF_XDP, ring drops for AF_PACKET, queue use for
//! in-process queues), and the middlewares add theirs
//! ([`MiddlewareCaps`]).
//!
//! The JSON form keeps the flat kernel-socket fields earlier reports carried
//! (`rcvbuf`, `napi_id`, `tcp_nodelay`, ...: null where a backend has no such
//! thing) beside the new `mode`, `lease`, `burst`, `backend` and `middleware`,
//! so readers of older reports keep working.

use std::net::SocketAddr;

use serde::{Serialize, Serializer};

use crate::Section;

/// How bytes move between the device and the memory the transport reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyMode {
    /// The kernel copies each packet (sockets, AF_PACKET rings, AF_XDP copy
    /// mode) or the transport copies it (in-process queues).
    #[default]
    Copy,
    /// The device writes into and reads from memory the transport maps
    /// (AF_XDP zero-copy, DPDK).
    ZeroCopy,
}

/// What [`Lease`](crate::Lease) gives the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseMode {
    /// Payloads are copied into a buffer of the transport and lent from
    /// there (kernel sockets: the kernel hands over copies).
    #[default]
    Copied,
    /// Payloads are lent where they landed (a ring frame, a queue slot) and
    /// transmit slots are written in place.
    InPlace,
}

/// The flat fields of earlier JSON reports; a backend fills what it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LegacyFields {
    /// `SO_RCVBUF` as read back (the kernel doubles what is asked and clamps it).
    pub rcvbuf: Option<u32>,
    /// `SO_SNDBUF` as read back.
    pub sndbuf: Option<u32>,
    /// `SO_BUSY_POLL` microseconds as read back.
    pub busy_poll_usecs: Option<u32>,
    /// `SO_BUSY_POLL_BUDGET` as read back.
    pub busy_poll_budget: Option<u32>,
    /// `SO_PREFER_BUSY_POLL` as read back.
    pub prefer_busy_poll: Option<bool>,
    /// `SO_INCOMING_NAPI_ID` of the last received packet (0: no NAPI, so
    /// kernel busy polling cannot take effect; `None`: not known yet).
    pub napi_id: Option<u32>,
    /// Software receive timestamps on.
    pub rx_timestamps: bool,
    /// Software transmit timestamps (SCHED, SND) on.
    pub tx_timestamps: bool,
    /// Hardware timestamps granted by the device.
    pub hw_timestamps: bool,
    /// `SO_PRIORITY` as read back.
    pub priority: Option<i32>,
    /// `IP_TOS` as read back.
    pub tos: Option<i32>,
    /// `TCP_NODELAY` as read back (TCP only).
    pub tcp_nodelay: Option<bool>,
    /// `TCP_QUICKACK` re-armed after each receive (TCP only).
    pub tcp_quickack: Option<bool>,
}

impl LegacyFields {
    /// Whether kernel busy polling is in effect: asked for, granted, and the
    /// traffic comes from a NAPI queue. `None` until a packet was received.
    #[must_use]
    pub fn busy_poll_active(&self) -> Option<bool> {
        let granted = self.busy_poll_usecs.is_some_and(|u| u > 0);
        self.napi_id.map(|id| granted && id != 0)
    }
}

/// What the middlewares of a transport did (see [`crate::middleware`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MiddlewareCaps {
    /// Fault injection on sends, when on.
    pub faults_tx: Option<crate::middleware::FaultCounters>,
    /// Fault injection on receives, when on.
    pub faults_rx: Option<crate::middleware::FaultCounters>,
    /// The capture, when on.
    pub pcap: Option<crate::middleware::CaptureCaps>,
}

/// What a transport was granted, read back now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capabilities {
    /// Scheme: `udp`, `tcp`, `mcast`, `uring`, `packet`, `xdp`, `mem`, ...
    pub transport: &'static str,
    /// Receive strategy in force.
    pub rx_strategy: &'static str,
    /// Local address bound.
    pub local: Option<SocketAddr>,
    /// Default peer (connected, or the group sent to).
    pub peer: Option<SocketAddr>,
    /// Largest message the transport carries.
    pub max_message: usize,
    /// Whether the device-to-memory path copies.
    pub mode: CopyMode,
    /// What a lease lends.
    pub lease: LeaseMode,
    /// Messages per burst call the transport handles best.
    pub burst: usize,
    /// The backend's own facts.
    pub backend: Option<Section>,
    /// What the middlewares did, when there are any.
    pub middleware: Option<MiddlewareCaps>,
    /// Anything the kernel refused or changed, in words.
    pub notes: Vec<String>,
}

impl Capabilities {
    /// The flat kernel-socket fields (all empty for a backend without them).
    #[must_use]
    pub fn legacy(&self) -> LegacyFields {
        self.backend
            .as_ref()
            .map(Section::legacy)
            .unwrap_or_default()
    }

    /// `SO_RCVBUF` as read back, for kernel sockets.
    #[must_use]
    pub fn rcvbuf(&self) -> Option<u32> {
        self.legacy().rcvbuf
    }

    /// `SO_INCOMING_NAPI_ID` of the last received packet, for kernel sockets.
    #[must_use]
    pub fn napi_id(&self) -> Option<u32> {
        self.legacy().napi_id
    }

    /// Whether kernel busy polling is in effect (see [`LegacyFields::busy_poll_active`]).
    #[must_use]
    pub fn busy_poll_active(&self) -> Option<bool> {
        self.legacy().busy_poll_active()
    }

    /// `(key, value)` lines for `# key: value` printing.
    #[must_use]
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("transport".to_string(), self.transport.to_string()),
            ("rx_strategy".to_string(), self.rx_strategy.to_string()),
        ];
        if let Some(a) = self.local {
            v.push(("local".into(), a.to_string()));
        }
        if let Some(a) = self.peer {
            v.push(("peer".into(), a.to_string()));
        }
        if let Some(s) = &self.backend {
            s.lines(&mut v);
        }
        v.push(("max_message".into(), self.max_message.to_string()));
        v.push((
            "mode".into(),
            match self.mode {
                CopyMode::Copy => "copy",
                CopyMode::ZeroCopy => "zero-copy",
            }
            .into(),
        ));
        v.push((
            "lease".into(),
            match self.lease {
                LeaseMode::Copied => "copied (payloads copied, then lent)",
                LeaseMode::InPlace => "in place (payloads lent where they landed)",
            }
            .into(),
        ));
        v.push(("burst".into(), self.burst.to_string()));
        if let Some(m) = &self.middleware {
            m.lines(&mut v);
        }
        for n in &self.notes {
            v.push(("note".to_string(), n.clone()));
        }
        v
    }
}

impl MiddlewareCaps {
    fn lines(&self, v: &mut Vec<(String, String)>) {
        for (dir, f) in [("tx", &self.faults_tx), ("rx", &self.faults_rx)] {
            if let Some(f) = f {
                v.push((format!("faults_{dir}"), f.describe()));
            }
        }
        if let Some(p) = &self.pcap {
            v.push(("pcap".into(), p.describe()));
        }
    }
}

/// Lines for the flat kernel-socket fields, as earlier reports printed them.
pub(crate) fn legacy_lines(l: &LegacyFields, v: &mut Vec<(String, String)>) {
    let mut opt = |k: &str, val: Option<String>| {
        if let Some(val) = val {
            v.push((k.to_string(), val));
        }
    };
    opt("rcvbuf_granted", l.rcvbuf.map(|b| b.to_string()));
    opt("sndbuf_granted", l.sndbuf.map(|b| b.to_string()));
    opt("busy_poll_usecs", l.busy_poll_usecs.map(|b| b.to_string()));
    opt(
        "busy_poll_budget",
        l.busy_poll_budget.map(|b| b.to_string()),
    );
    opt(
        "prefer_busy_poll",
        l.prefer_busy_poll.map(|b| b.to_string()),
    );
    opt("napi_id", l.napi_id.map(|b| b.to_string()));
    opt(
        "busy_poll_active",
        l.busy_poll_active().map(|a| {
            if a {
                "yes".into()
            } else {
                "no (no NAPI id on the receiving queue, or SO_BUSY_POLL is 0)".into()
            }
        }),
    );
    opt(
        "rx_timestamps",
        Some(
            match (l.rx_timestamps, l.hw_timestamps) {
                (true, true) => "software+hardware",
                (true, false) => "software",
                _ => "off",
            }
            .to_string(),
        ),
    );
    opt(
        "tx_timestamps",
        l.tx_timestamps.then(|| {
            if l.hw_timestamps {
                "SCHED+SND software+hardware".to_string()
            } else {
                "SCHED+SND software".to_string()
            }
        }),
    );
    opt("priority", l.priority.map(|b| b.to_string()));
    opt("tos", l.tos.map(|b| format!("{b:#04x}")));
    opt("tcp_nodelay", l.tcp_nodelay.map(|b| b.to_string()));
    opt("tcp_quickack", l.tcp_quickack.map(|b| b.to_string()));
}

impl Serialize for Capabilities {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            transport: &'static str,
            rx_strategy: &'static str,
            local: Option<SocketAddr>,
            peer: Option<SocketAddr>,
            #[serde(flatten)]
            legacy: LegacyFields,
            max_message: usize,
            notes: &'a [String],
            mode: CopyMode,
            lease: LeaseMode,
            burst: usize,
            backend: &'a Option<Section>,
            middleware: &'a Option<MiddlewareCaps>,
        }
        Out {
            transport: self.transport,
            rx_strategy: self.rx_strategy,
            local: self.local,
            peer: self.peer,
            legacy: self.legacy(),
            max_message: self.max_message,
            notes: &self.notes,
            mode: self.mode,
            lease: self.lease,
            burst: self.burst,
            backend: &self.backend,
            middleware: &self.middleware,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Endpoint, Role, Transport};

    /// Every key the JSON report had before the capabilities were typed.
    const FLAT: &[&str] = &[
        "transport",
        "rx_strategy",
        "local",
        "peer",
        "rcvbuf",
        "sndbuf",
        "busy_poll_usecs",
        "busy_poll_budget",
        "prefer_busy_poll",
        "napi_id",
        "rx_timestamps",
        "tx_timestamps",
        "hw_timestamps",
        "priority",
        "tos",
        "tcp_nodelay",
        "tcp_quickack",
        "max_message",
        "notes",
    ];

    #[test]
    fn the_json_keeps_every_flat_field_and_adds_the_typed_ones() {
        let t = Endpoint::parse("udp://127.0.0.1:0?rcvbuf=1M")
            .unwrap()
            .open(Role::Server)
            .unwrap();
        let c = t.capabilities();
        let v = serde_json::to_value(&c).unwrap();
        for k in FLAT
            .iter()
            .chain(&["mode", "lease", "burst", "backend", "middleware"])
        {
            assert!(v.get(k).is_some(), "{k} missing from {v}");
        }
        assert_eq!(v["rcvbuf"], v["backend"]["rcvbuf"]);
        assert_eq!(v["backend"]["kind"], "udp");
        assert_eq!(v["tcp_nodelay"], serde_json::Value::Null);
        assert_eq!(c.rcvbuf(), c.legacy().rcvbuf);
        // A backend without sockets still has every flat key, null.
        let m = Endpoint::parse("mem://caps-json")
            .unwrap()
            .open(Role::Server)
            .unwrap();
        let v = serde_json::to_value(m.capabilities()).unwrap();
        for k in FLAT {
            assert!(v.get(k).is_some(), "{k} missing from {v}");
        }
        assert_eq!(v["rcvbuf"], serde_json::Value::Null);
        assert_eq!(v["lease"], "in-place");
    }
}
