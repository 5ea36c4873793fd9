//! Apply and revert for real, inside a lab namespace on its veth: NIC
//! features and channels, and the sysctls that belong to a network
//! namespace. The snapshot round trip must be exact; a value the device
//! refuses is reported and the rest applied; a failure halfway (a sysctl a
//! child namespace may not write) rolls back what was changed.
//!
//! Everything runs in `Host::run` of a fresh lab, with an ethtool handle
//! opened there and `/proc/sys/net` as that namespace sees it, so nothing
//! here can change the machine's own namespace. Needs root; without it each
//! test prints `SKIPPED <test>: <reason>`.

use hftnet_lab::Lab;
use hftnet_sys::ethtool::Ethtool;
use hftnet_tune::access::System;
use hftnet_tune::audit::prepare;
use hftnet_tune::plan::{
    Access, EntryState, HostId, SNAPSHOT_FORMAT, Snapshot, Target, apply, plan, revert,
};
use hftnet_tune::profile::Profile;
use hftnet_tune::root::Root;
use hftnet_tune::services::FakeServices;

use hftnet_lab::skip_without_root as skip;

fn snapshot() -> Snapshot {
    Snapshot {
        format: SNAPSHOT_FORMAT.into(),
        host: HostId {
            machine_id: "lab".into(),
            hostname: "lab".into(),
        },
        created_unix: 0,
        profile: "lab".into(),
        entries: Vec::new(),
    }
}

/// Every target of the plan, read now.
fn values(access: &dyn Access, targets: &[Target]) -> Vec<Option<String>> {
    targets.iter().map(|t| access.read(t).unwrap()).collect()
}

/// Runs `f` inside the trader namespace of a fresh lab with the machine's
/// root, an ethtool handle opened there, no service manager, and a
/// snapshot path (removed afterwards).
fn in_lab(tag: &str, f: impl FnOnce(&Root, &System<'_>, &std::path::Path) + Send) {
    let lab = Lab::two_host(None).unwrap();
    let path = std::env::temp_dir().join(format!("hftnet-tune-{tag}-{}.json", std::process::id()));
    let p2 = path.clone();
    lab.trader()
        .run(move || {
            let services = FakeServices::new(&[]);
            let root = Root::system();
            let access = System {
                root: root.clone(),
                ethtool: Some(Ethtool::open().unwrap()),
                services: &services,
            };
            f(&root, &access, &p2);
        })
        .unwrap();
    let _ = std::fs::remove_file(&path);
}

const PROFILE: &str = r#"
name = "lab"
[sysctl]
"net.ipv4.tcp_slow_start_after_idle" = "0"
"net.ipv4.tcp_fastopen" = "3"
"net.core.somaxconn" = "8192"
"net.ipv4.tcp_rmem" = "4096 87380 8388608"
"net.core.busy_poll" = "50"
[nic]
"feature.gro" = "GRO"
"feature.tx-scatter-gather" = "off"
"channels.rx" = "2"
"coalesce.rx-usecs" = "0"
"#;

#[test]
fn apply_and_revert_round_trip_exactly_in_a_namespace() {
    if skip("apply_and_revert_round_trip_exactly_in_a_namespace") {
        return;
    }
    in_lab("lab", |root, access, p2| {
        // GRO flipped from whatever the lab set, so it is a change.
        let gro = access
            .read(&Target::Nic {
                iface: "veth0".into(),
                key: "feature.gro".into(),
            })
            .unwrap()
            .unwrap();
        let flipped = if gro == "on" { "off" } else { "on" };
        let profile = Profile::parse("lab", &PROFILE.replace("GRO", flipped)).unwrap();
        let ifaces = vec!["veth0".to_string()];
        let (input, _) = prepare(root, &profile, &ifaces, &[]).unwrap();
        let plan = plan(&profile, &input, access).unwrap();
        let targets: Vec<Target> = plan.changes.iter().map(|c| c.target.clone()).collect();
        let shown: Vec<String> = targets.iter().map(ToString::to_string).collect();
        for want in [
            "sysctl net.ipv4.tcp_slow_start_after_idle",
            "sysctl net.ipv4.tcp_fastopen",
            "sysctl net.core.somaxconn",
            "sysctl net.ipv4.tcp_rmem",
            "veth0 feature.gro",
            "veth0 feature.tx-scatter-gather",
            "veth0 channels.rx",
        ] {
            assert!(shown.iter().any(|s| s == want), "{want} planned: {shown:?}");
        }
        let skipped: Vec<(&str, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.target.as_str(), s.reason.as_str()))
            .collect();
        assert!(skipped.contains(&("veth0 coalesce.rx-usecs", "not supported by the driver")));
        assert!(
            skipped.contains(&("sysctl net.core.busy_poll", "not present on this kernel")),
            "busy_poll is not per namespace: {skipped:?}"
        );
        let before = values(access, &targets);

        let mut snap = snapshot();
        let report = apply(&plan, access, &mut snap, p2).unwrap();
        assert!(report.failed.is_none(), "{report:?}");
        for (c, o) in plan.changes.iter().zip(&report.outcomes) {
            assert_eq!(o.result, "applied", "{o:?}");
            let now = access.read(&c.target).unwrap().unwrap();
            assert_eq!(
                now.split_whitespace().collect::<Vec<_>>(),
                c.new.split_whitespace().collect::<Vec<_>>(),
                "{} is set",
                c.target
            );
        }
        let saved = Snapshot::load(p2, &snap.host, false).unwrap();
        assert!(saved.entries.iter().all(|e| e.state == EntryState::Applied));

        let r = revert(&saved, access, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0), "{r:?}");
        assert_eq!(
            values(access, &targets),
            before,
            "every value exactly as before"
        );
        let r = revert(&saved, access, false).unwrap();
        assert!(
            r.outcomes.iter().all(|o| o.result == "already restored"),
            "{r:?}"
        );
    });
}

#[test]
fn refused_values_are_reported_and_a_failure_rolls_back() {
    if skip("refused_values_are_reported_and_a_failure_rolls_back") {
        return;
    }
    in_lab("lab-rb", |root, access, p2| {
        // net.core.wmem_max is read-only in a child namespace: a
        // failure, after somaxconn was changed, which is rolled back.
        let profile = Profile::parse(
            "rb",
            r#"name = "rb"
[sysctl]
"net.core.somaxconn" = "8192"
"net.core.wmem_max" = "8388608"
[nic]
"channels.rx" = "3"
"feature.gro" = "off"
"#,
        )
        .unwrap();
        let (input, _) = prepare(root, &profile, &["veth0".to_string()], &[]).unwrap();
        let first = plan(&profile, &input, access).unwrap();
        let targets: Vec<Target> = first.changes.iter().map(|c| c.target.clone()).collect();
        let before = values(access, &targets);
        let mut snap = snapshot();
        let report = apply(&first, access, &mut snap, p2).unwrap();
        let failed = report
            .failed
            .as_deref()
            .expect("wmem_max cannot be written here");
        assert!(
            failed.contains("wmem_max") && failed.contains("read-only here"),
            "{failed}"
        );
        assert_eq!(values(access, &targets), before, "rolled back: {report:?}");
        let rolled = report
            .outcomes
            .iter()
            .filter(|o| o.result == "rolled back")
            .count();
        assert!(rolled >= 1, "{report:?}");

        // channels.rx 3 is more than veth offers: refused and
        // reported, the rest applied.
        let profile = Profile::parse(
                "rb2",
                "name = \"rb2\"\n[nic]\n\"channels.rx\" = \"3\"\n\"feature.tx-scatter-gather\" = \"off\"\n",
            )
            .unwrap();
        let second = plan(&profile, &input, access).unwrap();
        let mut snap = snapshot();
        // A snapshot is never overwritten: the first one is still there.
        let e = apply(&second, access, &mut snap, p2).unwrap_err();
        assert!(e.to_string().contains("never overwritten"), "{e}");
        std::fs::remove_file(p2).unwrap();
        let report = apply(&second, access, &mut snap, p2).unwrap();
        assert!(report.failed.is_none(), "{report:?}");
        let ch = report
            .outcomes
            .iter()
            .find(|o| o.target == "veth0 channels.rx")
            .unwrap();
        assert!(
            ch.result.starts_with("refused") && ch.result.contains("maximum is 2"),
            "{ch:?}"
        );
        let sg = report
            .outcomes
            .iter()
            .find(|o| o.target == "veth0 feature.tx-scatter-gather")
            .unwrap();
        assert_eq!(sg.result, "applied");
        let r = revert(&snap, access, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0), "{r:?}");
    });
}

/// The guard resolves alternative names and sees default routes of every
/// table and family, multipath nexthops and nexthop objects. The routes are
/// added in the lab's trader namespace (`ip -n`), never in the machine's.
#[test]
fn the_default_route_guard_sees_every_default_route() {
    use hftnet_tune::guard::default_routes_via;
    if skip("the_default_route_guard_sees_every_default_route") {
        return;
    }
    let lab = Lab::two_host(None).unwrap();
    let h = lab.trader();
    let (ns, dev, peer) = (h.netns().to_string(), h.iface().to_string(), h.peer());
    let ip = |args: &str| {
        let mut full = vec!["-n", ns.as_str()];
        full.extend(args.split_whitespace());
        let o = std::process::Command::new("ip")
            .args(&full)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "ip {args}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let guard = |name: &str| {
        let name = name.to_string();
        h.run(move || default_routes_via(&name)).unwrap().unwrap()
    };
    ip(&format!("link property add dev {dev} altname hft-uplink-b"));
    assert_eq!(guard(&dev), None, "no default route in a fresh lab");
    assert_eq!(guard("hft-uplink-b"), None);
    assert_eq!(
        guard("hft-no-such"),
        None,
        "a missing interface is the caller's to report"
    );
    let cases = [
        (
            format!("route add default dev {dev} table 100"),
            "IPv4 default route of table 100",
        ),
        (
            format!("-6 route add default dev {dev}"),
            "IPv6 default route of table main",
        ),
        (
            format!("route add default table 101 nexthop via {peer} dev {dev} nexthop dev lo"),
            "IPv4 default route of table 101",
        ),
        (
            format!("-6 route add default dev {dev} table 4000000"),
            "IPv6 default route of table 4000000",
        ),
    ];
    for (add, needle) in &cases {
        ip(add);
        for name in [dev.as_str(), "hft-uplink-b"] {
            let got = guard(name).unwrap_or_else(|| panic!("{add}: {name} not caught"));
            assert!(got.contains(needle) && got.contains(&dev), "{add}: {got}");
        }
        assert_eq!(guard("lo").is_some(), add.contains("dev lo"), "{add}: lo");
        ip(&add.replacen(" add ", " del ", 1));
        assert_eq!(guard(&dev), None, "{add} removed");
    }
    // A route through a nexthop object names no interface itself.
    ip(&format!("nexthop add id 77 dev {dev}"));
    ip("route add default nhid 77 table 102");
    let got = guard("hft-uplink-b").expect("nexthop object");
    assert!(
        got.contains("IPv4 default route of table 102") && got.contains("nexthop object 77"),
        "{got}"
    );
    assert_eq!(guard("lo"), None);
    ip("route del default nhid 77 table 102");

    // A blackhole nexthop leaves by no interface: it refuses nothing.
    ip("nexthop add id 78 blackhole");
    ip("route add default nhid 78 table 103");
    assert_eq!(guard(&dev), None, "blackhole nexthop");
    assert_eq!(guard("lo"), None, "blackhole nexthop");
    ip("route del default nhid 78 table 103");

    // The halves a VPN installs cover everything too.
    ip(&format!("route add 0.0.0.0/1 dev {dev} table 104"));
    ip(&format!("route add 128.0.0.0/1 dev {dev} table 104"));
    let got = guard(&dev).expect("0/1");
    assert!(
        got.contains("IPv4 half-default route") && got.contains("table 104"),
        "{got}"
    );
    ip("route flush table 104");
    ip(&format!("-6 route add 8000::/1 dev {dev} table 105"));
    let got = guard(&dev).expect("8000::/1");
    assert!(got.contains("IPv6 half-default route"), "{got}");
    ip("-6 route flush table 105");
    assert_eq!(guard(&dev), None, "halves removed");

    // Through devices stacked on it: a macvlan on it (IFLA_LINK, as a vlan;
    // this kernel has no 8021q), a bridge over that macvlan (IFLA_MASTER).
    ip(&format!("link add link {dev} name hftvl7 type macvlan"));
    ip("link set hftvl7 up");
    ip("route add default dev hftvl7 table 106");
    let got = guard("hft-uplink-b").expect("via a macvlan");
    assert!(got.contains("via hftvl7, stacked on it"), "{got}");
    assert_eq!(guard("lo"), None);
    ip("route del default dev hftvl7 table 106");
    ip("link add hftbr0 type bridge");
    ip("link set hftvl7 master hftbr0");
    ip("link set hftbr0 up");
    ip("-6 route add default dev hftbr0 table 107");
    let got = guard(&dev).expect("via a bridge over the macvlan");
    assert!(
        got.contains("IPv6 default route of table 107 via hftbr0, stacked on it"),
        "{got}"
    );
    // The macvlan itself carries it too; lo does not.
    assert!(guard("hftvl7").is_some());
    assert_eq!(guard("lo"), None);
    ip("link del hftbr0");
    ip("link del hftvl7");
    assert_eq!(guard(&dev), None, "stacked devices removed");
}
