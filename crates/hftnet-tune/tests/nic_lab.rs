//! `hftnet_tune::nic` against a real veth, inside a lab namespace: read
//! every key, change features and channels and read them back, restore, and
//! check what veth does not offer. They need root (CAP_SYS_ADMIN +
//! CAP_NET_ADMIN) to build the lab; without it each test prints
//! `SKIPPED <test>: <reason>` and returns.
//!
//! Every request goes through an `Ethtool` handle opened inside the lab's
//! trader namespace (in `Host::run`), so nothing here can reach an
//! interface of the default namespace; each lab is removed on drop, also
//! when an assertion fails.
//!
//! What veth offers (Linux 6.x `veth_ethtool_ops`, measured on 6.18):
//! driver info, features, channels (get and set: RX and TX counts up to
//! one per possible CPU, no combined or other channels) and the kernel's
//! software timestamping; no coalescing, rings, flow control or RSS ops,
//! so the kernel answers those with `EOPNOTSUPP`.

use std::collections::BTreeMap;
use std::path::Path;

use hftnet_lab::Lab;
use hftnet_sys::ethtool::{Ethtool, errno};
use hftnet_tune::nic::{
    self, ChannelField, CoalesceField, Fact, FeatureFacts, NicError, NicKey, Offload, PauseField,
    RingField,
};

const IF: &str = "veth0";

use hftnet_lab::skip_without_root as skip;

/// Runs `f` with an ethtool handle inside the trader namespace of a fresh
/// two-host lab.
fn in_trader<R: Send>(f: impl FnOnce(&Ethtool) -> R + Send) -> R {
    let lab = Lab::two_host(None).unwrap();
    lab.trader()
        .run(|| {
            let et = Ethtool::open().unwrap();
            f(&et)
        })
        .unwrap()
}

fn get(et: &Ethtool, key: &str) -> Option<String> {
    let key: NicKey = key.parse().unwrap();
    nic::get(et, IF, &key).unwrap_or_else(|e| panic!("get {key}: {e}"))
}

fn set(et: &Ethtool, key: &str, value: &str) -> Result<(), NicError> {
    nic::set(et, IF, &key.parse().unwrap(), value)
}

fn features(et: &Ethtool) -> BTreeMap<String, FeatureFacts> {
    let report = nic::audit(et, IF, Path::new("/sys")).unwrap();
    report.features.value().unwrap().clone()
}

#[test]
fn every_key_of_a_veth_reads() {
    if skip("every_key_of_a_veth_reads") {
        return;
    }
    in_trader(|et| {
        let keys = nic::keys(et, IF).unwrap();
        assert!(keys.len() > NicKey::fixed().len() + 40, "{}", keys.len());
        for key in &keys {
            let value = nic::get(et, IF, key).unwrap_or_else(|e| panic!("{key}: {e}"));
            match key {
                NicKey::Offload(_) | NicKey::Feature(_) => {
                    assert!(matches!(value.as_deref(), Some("on" | "off")), "{key}");
                }
                // veth has no coalescing, ring or flow control ops, no RSS
                // table, and no other or combined channels (maximum 0).
                NicKey::Coalesce(_)
                | NicKey::Ring(_)
                | NicKey::Pause(_)
                | NicKey::RssEqual
                | NicKey::Channels(ChannelField::Other | ChannelField::Combined) => {
                    assert_eq!(value, None, "{key}");
                }
                NicKey::Channels(ChannelField::Rx | ChannelField::Tx) => {
                    assert_eq!(value.as_deref(), Some("1"), "{key}");
                }
            }
        }
        // The lab's defaults: GRO off, the rest of veth's software offloads
        // on; LRO, ntuple and hardware GRO fixed off.
        for (key, want) in [
            ("feature.gro", "off"),
            ("feature.tso", "on"),
            ("feature.gso", "on"),
            ("feature.sg", "on"),
            ("feature.rx-checksum", "on"),
            ("feature.tx-checksum", "on"),
            ("feature.lro", "off"),
            ("feature.ntuple", "off"),
            ("feature.rx-gro-hw", "off"),
            ("feature.rx-gro-list", "off"),
            ("feature.tx-tcp-segmentation", "on"),
        ] {
            assert_eq!(get(et, key).as_deref(), Some(want), "{key}");
        }
    });
}

#[test]
fn veth_features_change_and_read_back() {
    if skip("veth_features_change_and_read_back") {
        return;
    }
    in_trader(|et| {
        let before = features(et);

        // Friendly names and kernel names, each way and back.
        for (key, first, then) in [
            ("feature.gro", "on", "off"),
            ("feature.tso", "off", "on"),
            ("feature.gso", "off", "on"),
            ("feature.tx-checksum", "off", "on"),
            ("feature.rx-gro-list", "on", "off"),
            ("feature.rx-udp-gro-forwarding", "on", "off"),
            ("feature.tx-udp-segmentation", "off", "on"),
        ] {
            for value in [first, then] {
                set(et, key, value).unwrap_or_else(|e| panic!("{key} {value}: {e}"));
                assert_eq!(get(et, key).as_deref(), Some(value), "{key}");
            }
        }
        // `tso` covers every TCP segmentation variant.
        set(et, "feature.tso", "off").unwrap();
        let now = features(et);
        for name in [
            "tx-tcp-segmentation",
            "tx-tcp6-segmentation",
            "tx-tcp-ecn-segmentation",
        ] {
            assert!(!now[name].on, "{name}");
        }
        set(et, "feature.tso", "on").unwrap();

        // Scatter-gather off takes TSO with it (it needs sg), without
        // touching the request: sg on brings TSO back.
        set(et, "feature.sg", "off").unwrap();
        assert_eq!(get(et, "feature.sg").as_deref(), Some("off"));
        assert_eq!(get(et, "feature.tso").as_deref(), Some("off"));
        // Asking for TSO now is recorded but cannot be granted: Rejected,
        // naming the features that stayed off.
        let err = set(et, "feature.tso", "on").unwrap_err();
        let NicError::Rejected { errno, reason, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*errno, None);
        assert!(reason.contains("tx-tcp-segmentation"), "{err}");
        assert!(err.to_string().contains("feature.tso"), "{err}");
        set(et, "feature.sg", "on").unwrap();
        assert_eq!(get(et, "feature.tso").as_deref(), Some("on"));

        // Fixed features: asking for the value they have is fine, the
        // other one is "not supported by the driver".
        for key in ["feature.lro", "feature.ntuple", "feature.rx-gro-hw"] {
            set(et, key, "off").unwrap_or_else(|e| panic!("{key}: {e}"));
            let err = set(et, key, "on").unwrap_err();
            assert!(err.is_not_supported(), "{key}: {err:?}");
            assert_eq!(
                err.to_string(),
                format!("{key} is not supported by the driver of {IF}")
            );
        }
        let err = set(et, "feature.no-such-feature", "on").unwrap_err();
        assert!(matches!(err, NicError::UnknownFeature { .. }), "{err:?}");
        let err = set(et, "feature.gro", "yes").unwrap_err();
        assert!(matches!(err, NicError::BadValue { .. }), "{err:?}");

        assert_eq!(features(et), before, "every feature restored");
    });
}

#[test]
fn veth_channels_change_and_read_back() {
    if skip("veth_channels_change_and_read_back") {
        return;
    }
    in_trader(|et| {
        let report = nic::audit(et, IF, Path::new("/sys")).unwrap();
        let ch = *report.channels.value().expect("veth reports channels");
        // veth: one RX and one TX queue in use, up to one per possible CPU
        // (the queues are allocated at creation), no combined or other.
        assert_eq!(
            (ch.rx, ch.tx, ch.combined, ch.other),
            (1, 1, 0, 0),
            "{ch:?}"
        );
        assert!(ch.rx_max >= 1 && ch.rx_max == ch.tx_max, "{ch:?}");
        assert_eq!((ch.combined_max, ch.other_max), (0, 0));

        let max = ch.rx_max.to_string();
        for key in ["channels.rx", "channels.tx"] {
            set(et, key, &max).unwrap_or_else(|e| panic!("{key} {max}: {e}"));
            assert_eq!(get(et, key).as_deref(), Some(max.as_str()), "{key}");
            // Only that field changed.
            let other = if key == "channels.rx" {
                "channels.tx"
            } else {
                "channels.rx"
            };
            assert_eq!(get(et, other).as_deref(), Some("1"), "{other}");
            set(et, key, "1").unwrap();
            assert_eq!(get(et, key).as_deref(), Some("1"), "{key}");
        }

        // Above the maximum: rejected by the kernel (EINVAL), the message
        // gives the maximum.
        let above = (ch.rx_max + 1).to_string();
        let err = set(et, "channels.rx", &above).unwrap_err();
        let NicError::Rejected {
            errno: code, value, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(
            (*code, value.as_str()),
            (Some(errno::EINVAL), above.as_str())
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{IF} rejected channels.rx = {above}: the maximum is {} \
                 (ioctl(SIOCETHTOOL, ETHTOOL_SCHANNELS) failed: Invalid argument \
                 (os error 22))",
                ch.rx_max
            )
        );
        // No RX channel at all: rejected too, saying why.
        let err = set(et, "channels.rx", "0").unwrap_err();
        assert!(matches!(err, NicError::Rejected { .. }), "{err:?}");
        assert!(err.to_string().contains("at least one RX"), "{err}");
        // veth has no combined channels (maximum 0): not supported, unless
        // asking for the 0 it has.
        set(et, "channels.combined", "0").unwrap();
        let err = set(et, "channels.combined", "1").unwrap_err();
        assert!(err.is_not_supported(), "{err:?}");

        let after = nic::audit(et, IF, Path::new("/sys")).unwrap();
        assert_eq!(after.channels, report.channels, "restored");
    });
}

#[test]
fn veth_lacks_coalescing_rings_pause_and_rss() {
    if skip("veth_lacks_coalescing_rings_pause_and_rss") {
        return;
    }
    in_trader(|et| {
        // veth_ethtool_ops has no get/set_coalesce, get/set_ringparam,
        // get/set_pauseparam or get/set_rxfh: the kernel's ethtool ioctl
        // answers EOPNOTSUPP before reaching the driver, for reads and
        // writes alike. Reads give None, writes NotSupported.
        for key in [
            NicKey::Coalesce(CoalesceField::RxUsecs),
            NicKey::Coalesce(CoalesceField::AdaptiveRx),
            NicKey::Ring(RingField::Rx),
            NicKey::Ring(RingField::Tx),
            NicKey::Pause(PauseField::Autoneg),
            NicKey::Pause(PauseField::Rx),
            NicKey::RssEqual,
        ] {
            assert_eq!(nic::get(et, IF, &key).unwrap(), None, "{key}");
            let value = if key.is_boolean() { "off" } else { "1" };
            let err = nic::set(et, IF, &key, value).unwrap_err();
            assert!(err.is_not_supported(), "{key}: {err:?}");
            assert!(
                err.to_string().contains("not supported by the driver"),
                "{err}"
            );
        }
        // The value is checked first: a bad one is BadValue even here.
        let err = nic::set(et, IF, &NicKey::Ring(RingField::Rx), "big").unwrap_err();
        assert!(matches!(err, NicError::BadValue { .. }), "{err:?}");
    });
}

#[test]
fn a_missing_interface_is_named() {
    if skip("a_missing_interface_is_named") {
        return;
    }
    in_trader(|et| {
        let gro = NicKey::Offload(Offload::Gro);
        for err in [
            nic::get(et, "nosuch0", &gro).unwrap_err(),
            nic::set(et, "nosuch0", &gro, "on").unwrap_err(),
            nic::set(et, "nosuch0", &NicKey::Channels(ChannelField::Rx), "1").unwrap_err(),
            nic::audit(et, "nosuch0", Path::new("/sys")).unwrap_err(),
            nic::keys(et, "nosuch0").unwrap_err(),
        ] {
            let NicError::NoSuchInterface { iface } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(iface, "nosuch0");
            let msg = err.to_string();
            assert!(
                msg.contains("`nosuch0`") && msg.contains("ip link"),
                "{msg}"
            );
        }
    });
}

#[test]
fn audit_of_a_veth() {
    if skip("audit_of_a_veth") {
        return;
    }
    in_trader(|et| {
        let report = nic::audit(et, IF, Path::new("/sys")).unwrap();
        assert_eq!(report.iface, IF);
        let driver = report.driver.value().expect("driver");
        assert_eq!(driver.driver, "veth");
        assert!(driver.bus_info.is_empty());
        // A virtual device: no NUMA node (and the lab's veth0 is not in the
        // namespace sysfs shows anyway).
        assert_eq!(report.numa_node, None);

        let ts = report.timestamping.value().expect("timestamping");
        for cap in [
            "software-transmit",
            "software-receive",
            "software-system-clock",
        ] {
            assert!(ts.capabilities.iter().any(|c| c == cap), "{ts:?}");
        }
        assert!(!ts.hardware && ts.phc_index.is_none(), "{ts:?}");
        assert!(ts.tx_types.is_empty() && ts.rx_filters.is_empty(), "{ts:?}");

        for (name, fact) in [
            ("coalesce", report.coalesce.value().is_some()),
            ("rings", report.rings.value().is_some()),
            ("pause", report.pause.value().is_some()),
            ("rss", report.rss.value().is_some()),
        ] {
            assert!(!fact, "{name}");
        }
        assert_eq!(report.coalesce, Fact::NotSupported);
        assert_eq!(report.rss, Fact::NotSupported);

        let offloads = report.offloads.value().unwrap();
        assert!(!offloads["gro"].on && !offloads["gro"].fixed);
        assert!(offloads["tso"].on && !offloads["tso"].fixed);
        assert!(!offloads["lro"].on && offloads["lro"].fixed);
        let features = report.features.value().unwrap();
        assert!(features["rx-gro-hw"].fixed && !features["rx-gro-hw"].on);

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["driver"]["driver"], "veth");
        assert_eq!(json["pause"], nic::NOT_SUPPORTED);
        assert_eq!(json["channels"]["rx"], 1);
        assert_eq!(json["numa_node"], serde_json::Value::Null);
        assert!(
            json["timestamping"]["capabilities"]
                .as_array()
                .unwrap()
                .contains(&"software-receive".into())
        );
    });
}
