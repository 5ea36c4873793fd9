//! `hftnet tune` end to end against a fake /proc and /sys tree (the hidden
//! `--root`), so host-wide settings — IRQ affinity, governors, C-states,
//! transparent huge pages, global sysctls — are applied and reverted for
//! real without touching the machine; bad input; and the default-route
//! guard, inside a lab namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::BIN;

/// A fake root, removed on drop (also when the test fails).
struct Tree(PathBuf);

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Tree {
    fn new(name: &str) -> Tree {
        let d = std::env::temp_dir().join(format!("hftnet-tune-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut files: Vec<(String, String)> = vec![
            ("sys/devices/system/cpu/online".into(), "0-3".into()),
            ("proc/sys/net/core/busy_poll".into(), "0".into()),
            ("proc/sys/kernel/sched_rt_runtime_us".into(), "950000".into()),
            ("proc/sys/vm/swappiness".into(), "60".into()),
            (
                "sys/kernel/mm/transparent_hugepage/enabled".into(),
                "always [madvise] never".into(),
            ),
            ("proc/sys/kernel/hostname".into(), "fakehost".into()),
            ("etc/machine-id".into(), "f00d".into()),
            ("proc/cmdline".into(), "quiet".into()),
            (
                "proc/interrupts".into(),
                "           CPU0       CPU1       CPU2       CPU3\n  24:         10          0          0          0  PCI-MSI 1-edge  eth9-TxRx-0\n  25:         10          0          0          0  PCI-MSI 2-edge  eth9-TxRx-1\n  26:          5          0          0          0  PCI-MSI 3-edge  nvme0q1".into(),
            ),
            ("sys/class/net/eth9/operstate".into(), "up".into()),
        ];
        for irq in [24, 25, 26] {
            files.push((format!("proc/irq/{irq}/smp_affinity_list"), "0-3".into()));
        }
        for cpu in 0..4 {
            let c = format!("sys/devices/system/cpu/cpu{cpu}");
            files.push((format!("{c}/cpufreq/scaling_governor"), "powersave".into()));
            files.push((
                format!("{c}/cpufreq/scaling_available_governors"),
                "performance powersave".into(),
            ));
            for (k, name, lat) in [(0, "POLL", 0), (1, "C1", 2), (2, "C6", 133)] {
                let s = format!("{c}/cpuidle/state{k}");
                files.push((format!("{s}/name"), name.into()));
                files.push((format!("{s}/latency"), lat.to_string()));
                files.push((format!("{s}/disable"), "0".into()));
            }
        }
        for (p, v) in files {
            let f = d.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, format!("{v}\n")).unwrap();
        }
        Tree(d)
    }

    fn root(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// Every file, trimmed; THP by its bracketed word.
    fn state(&self) -> BTreeMap<String, String> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(base, &p, out);
                } else {
                    let rel = p.strip_prefix(base).unwrap().display().to_string();
                    let mut v = std::fs::read_to_string(&p).unwrap().trim().to_string();
                    if let (Some(a), Some(b)) = (v.find('['), v.find(']')) {
                        v = v[a + 1..b].to_string();
                    }
                    out.insert(rel, v);
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.0, &self.0, &mut out);
        out
    }

    fn get(&self, rel: &str) -> String {
        std::fs::read_to_string(self.0.join(rel))
            .unwrap()
            .trim()
            .to_string()
    }

    fn put(&self, rel: &str, v: &str) {
        std::fs::write(self.0.join(rel), v).unwrap();
    }
}

fn hftnet(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const PROFILE: &str = r#"name = "fake"
[sysctl]
"net.core.busy_poll" = { value = "50", why = "busy polling" }
"kernel.sched_rt_runtime_us" = "-1"
"vm.swappiness" = "10"
"net.ipv4.not_on_this_kernel" = "1"
[irq]
affinity = "{cpus}"
[cpu]
governor = "performance"
max_cstate_latency_us = "10"
[thp]
enabled = "never"
[cmdline]
params = ["nohz_full={cpus}"]
"#;

fn profile_file(t: &Tree) -> String {
    let p = t.0.join("profile.toml");
    std::fs::write(&p, PROFILE).unwrap();
    p.display().to_string()
}

#[test]
fn host_wide_settings_apply_and_revert_exactly_on_a_fake_tree() {
    let t = Tree::new("roundtrip");
    let profile = profile_file(&t);
    let snap = t.0.join("snap.json").display().to_string();
    let base = [
        "tune",
        "apply",
        "--root",
        t.root(),
        "--profile",
        &profile,
        "--iface",
        "eth9",
        "--cpus",
        "2-3",
    ];
    let original = t.state();

    // Without --yes: the plan, and nothing changed.
    let mut args = base.to_vec();
    let o = hftnet(&args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("change sysctl net.core.busy_poll: \"0\" → \"50\""),
        "{out}"
    );
    assert!(
        out.contains("/proc/irq/24/smp_affinity_list: \"0-3\" → \"2-3\""),
        "{out}"
    );
    assert!(
        out.contains("reboot kernel command line: add nohz_full=2-3"),
        "{out}"
    );
    assert!(out.contains("not present on this kernel"), "{out}");
    assert!(
        !out.contains("nvme0q1") && !out.contains("irq/26"),
        "only eth9's IRQs: {out}"
    );
    assert_eq!(t.state(), original, "a plan changes nothing");

    // With --yes: snapshot first, then every value.
    args.extend(["--yes", "--snapshot", &snap]);
    let o = hftnet(&args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("undo with: hftnet tune revert"), "{out}");
    assert_eq!(t.get("proc/sys/net/core/busy_poll"), "50");
    assert_eq!(t.get("proc/sys/kernel/sched_rt_runtime_us"), "-1");
    assert_eq!(t.get("proc/irq/24/smp_affinity_list"), "2-3");
    assert_eq!(t.get("proc/irq/25/smp_affinity_list"), "2-3");
    assert_eq!(t.get("proc/irq/26/smp_affinity_list"), "0-3", "not eth9's");
    assert_eq!(
        t.get("sys/devices/system/cpu/cpu2/cpufreq/scaling_governor"),
        "performance"
    );
    assert_eq!(
        t.get("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "powersave"
    );
    assert_eq!(
        t.get("sys/devices/system/cpu/cpu3/cpuidle/state2/disable"),
        "1"
    );
    assert_eq!(
        t.get("sys/devices/system/cpu/cpu3/cpuidle/state1/disable"),
        "0"
    );
    assert_eq!(t.get("sys/kernel/mm/transparent_hugepage/enabled"), "never");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    assert_eq!(s["host"]["machine_id"], "f00d");
    assert!(s["entries"].as_array().unwrap().len() >= 10, "{s}");

    // Revert: exactly as before; twice is safe.
    let o = hftnet(&["tune", "revert", &snap, "--root", t.root()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    let mut now = t.state();
    now.remove("snap.json");
    let mut was = original.clone();
    was.remove("snap.json");
    assert_eq!(now.len(), was.len(), "no file added or removed");
    assert_eq!(now, was, "exactly as before");
    let o = hftnet(&["tune", "revert", &snap, "--root", t.root()]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(
        out.contains("already restored") && !out.contains(": restored"),
        "{out}"
    );
}

#[test]
fn revert_refuses_what_changed_since_another_host_and_a_cut_snapshot() {
    let t = Tree::new("conflict");
    let profile = profile_file(&t);
    let snap = t.0.join("snap.json").display().to_string();
    let o = hftnet(&[
        "tune",
        "apply",
        "--root",
        t.root(),
        "--profile",
        &profile,
        "--cpus",
        "2",
        "--yes",
        "--snapshot",
        &snap,
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    // Someone else changes a value we set.
    t.put("proc/sys/net/core/busy_poll", "77\n");
    let o = hftnet(&["tune", "revert", &snap, "--root", t.root()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        err.contains("--force") && out.contains("changed since the apply"),
        "{out}{err}"
    );
    assert_eq!(t.get("proc/sys/net/core/busy_poll"), "77", "left alone");
    assert_eq!(t.get("proc/sys/vm/swappiness"), "60", "the rest restored");
    let o = hftnet(&["tune", "revert", &snap, "--root", t.root(), "--force"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(t.get("proc/sys/net/core/busy_poll"), "0");

    // Another machine.
    t.put("etc/machine-id", "beef\n");
    let o = hftnet(&["tune", "revert", &snap, "--root", t.root()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("taken on fakehost") && err.contains("--force"),
        "{err}"
    );

    // Cut short.
    let whole = std::fs::read_to_string(&snap).unwrap();
    std::fs::write(&snap, &whole[..whole.len() / 3]).unwrap();
    let o = hftnet(&["tune", "revert", &snap, "--root", t.root(), "--force"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("not a complete hftnet snapshot"), "{err}");
}

#[test]
fn bad_input_is_named() {
    let t = Tree::new("bad");
    let bad_profile = t.0.join("bad.toml");
    std::fs::write(
        &bad_profile,
        "name = \"x\"\n[cpu]\ngovernour = \"performance\"\n",
    )
    .unwrap();
    let bad = bad_profile.display().to_string();
    let fake = profile_file(&t);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["tune", "audit", "--root", t.root(), "--iface", "nosuch0"],
            "no interface \"nosuch0\"",
        ),
        (
            vec!["tune", "audit", "--root", t.root(), "--profile", &bad],
            "governour",
        ),
        (
            vec!["tune", "audit", "--root", t.root(), "--profile", "fastest"],
            "no profile \"fastest\"",
        ),
        (
            vec![
                "tune",
                "apply",
                "--root",
                t.root(),
                "--profile",
                &fake,
                "--cpus",
                "9",
            ],
            "CPU 9 is not online",
        ),
        (vec!["tune", "apply", "--root", t.root()], "--iface"),
        // ethtool and systemctl would act on this machine, not the tree.
        (
            vec![
                "tune",
                "apply",
                "--root",
                t.root(),
                "--iface",
                "eth9",
                "--i-know",
            ],
            "is a fake tree, but profile latency changes interface settings on this machine",
        ),
        (
            vec!["tune", "apply", "--root", t.root(), "--cpus", "2"],
            "changes the irqbalance service on this machine",
        ),
        (
            vec!["tune", "audit", "--root", t.root(), "--cpus", "2-x"],
            "2-x",
        ),
    ];
    for (args, needle) in cases {
        let o = hftnet(&args);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn audit_reads_and_never_writes() {
    let t = Tree::new("audit");
    let before = t.state();
    let o = hftnet(&[
        "tune",
        "audit",
        "--root",
        t.root(),
        "--cpus",
        "2-3",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let f = v["findings"].as_array().unwrap();
    let find = |item: &str| {
        f.iter()
            .find(|x| x["item"] == item)
            .unwrap_or_else(|| panic!("{item}: {v}"))
    };
    let bp = find("sysctl net.core.busy_poll");
    assert_eq!(
        (bp["status"].as_str(), bp["current"].as_str()),
        (Some("change"), Some("0"))
    );
    assert_eq!(bp["fix"], "sysctl -w net.core.busy_poll='50'");
    assert!(f.iter().any(|x| x["status"] == "reboot"), "{v}");
    assert!(f.iter().any(|x| x["item"] == "kernel bypass stacks"), "{v}");
    assert_eq!(
        v["facts"]["cpus"]["online"],
        serde_json::json!([0, 1, 2, 3])
    );
    assert_eq!(t.state(), before, "audit wrote nothing");
}

/// Writes `entries` as a snapshot of the fake host (mode 0600), as an
/// attacker would hand-craft one.
fn crafted_snapshot(t: &Tree, name: &str, entries: serde_json::Value) -> String {
    use std::os::unix::fs::PermissionsExt;
    let s = serde_json::json!({
        "format": "hftnet-tune-snapshot-1",
        "host": {"machine_id": "f00d", "hostname": "fakehost"},
        "created_unix": 0,
        "profile": "latency",
        "entries": entries,
    });
    let p = t.0.join(name);
    std::fs::write(&p, s.to_string()).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p.display().to_string()
}

#[test]
fn a_crafted_snapshot_cannot_make_revert_write_anywhere() {
    let t = Tree::new("crafted");
    std::fs::create_dir_all(t.0.join("tmp")).unwrap();
    t.put("tmp/x", "secret\n");
    // The issue's attack: a file target outside what a profile can name.
    let snap = crafted_snapshot(
        &t,
        "evil.json",
        serde_json::json!([{"target": {"kind": "file", "path": "tmp/x"},
                             "old": "pwned", "new": "secret", "state": "applied"}]),
    );
    for force in [false, true] {
        let mut args = vec!["tune", "revert", &snap, "--root", t.root()];
        if force {
            args.push("--force");
        }
        let o = hftnet(&args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "force={force}: {out}{err}");
        assert!(
            err.contains("entry 1") && err.contains("/tmp/x") && err.contains("refusing"),
            "force={force}: {err}"
        );
        assert_eq!(t.get("tmp/x"), "secret", "force={force}: nothing written");
    }
    // One bad entry among good ones: nothing at all is reverted.
    t.put("proc/sys/vm/swappiness", "10\n");
    let bad: Vec<(serde_json::Value, &str)> = vec![
        (
            serde_json::json!({"kind": "sysctl", "name": "vm.no_such_sysctl"}),
            "no such sysctl",
        ),
        (
            serde_json::json!({"kind": "sysctl", "name": "kernel.core_pattern"}),
            "kernel.core_pattern is outside what an apply tunes",
        ),
        (
            serde_json::json!({"kind": "sysctl", "name": "vm.mmap_min_addr"}),
            "vm.mmap_min_addr is a security setting",
        ),
        (
            serde_json::json!({"kind": "sysctl", "name": "../../tmp/x"}),
            "not a sysctl name",
        ),
        (
            serde_json::json!({"kind": "file", "path": "/tmp/x"}),
            "not a file",
        ),
        (
            serde_json::json!({"kind": "file", "path": "proc/irq/24/../../../tmp/x"}),
            "not a file",
        ),
        (
            serde_json::json!({"kind": "service", "name": "sshd"}),
            "service",
        ),
        (
            serde_json::json!({"kind": "host_op", "op": {"op": "move_process", "pid": 1,
                               "from": "tmp/x", "to": "tmp/x"}}),
            "move_process",
        ),
        (
            serde_json::json!({"kind": "host_op", "op": {"op": "enable_controller",
                               "path": "tmp/x", "old": "", "controller": "cpuset"}}),
            "enable_controller",
        ),
        (
            serde_json::json!({"kind": "host_op", "op": {"op": "create_dir", "path": "tmp"}}),
            "create_dir",
        ),
    ];
    for (i, (target, needle)) in bad.into_iter().enumerate() {
        let snap = crafted_snapshot(
            &t,
            &format!("evil{i}.json"),
            serde_json::json!([
                {"target": {"kind": "sysctl", "name": "vm.swappiness"},
                 "old": "60", "new": "10", "state": "applied"},
                {"target": target, "old": "pwned", "new": "secret", "state": "applied"},
            ]),
        );
        let o = hftnet(&["tune", "revert", &snap, "--root", t.root(), "--force"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{target}: {out}{err}");
        assert!(
            err.contains("entry 2") && err.contains(needle),
            "{target}: {err}"
        );
        assert_eq!(
            t.get("proc/sys/vm/swappiness"),
            "10",
            "{target}: nothing reverted"
        );
        assert_eq!(t.get("tmp/x"), "secret");
        assert!(t.0.join("tmp").is_dir());
    }
}

/// `tune apply --iface` is refused for an interface that carries a default
/// route of any table or family, however it is named, in the namespace the
/// command runs in (a lab's: nothing here touches the machine's own).
#[test]
fn the_default_route_guard_sees_altnames_ipv6_and_every_table() {
    if hftnet_lab::skip_without_root("the_default_route_guard_sees_altnames_ipv6_and_every_table") {
        return;
    }
    let lab = hftnet_lab::Lab::two_host(None).unwrap();
    let h = lab.trader();
    let (ns, dev) = (h.netns().to_string(), h.iface().to_string());
    let ip = |args: &str| {
        let mut full = vec!["-n", ns.as_str()];
        full.extend(args.split_whitespace());
        let o = Command::new("ip").args(&full).output().unwrap();
        assert!(o.status.success(), "ip {args}: {:?}", text(&o));
    };
    ip(&format!("link property add dev {dev} altname hft-uplink-a"));
    let apply = |name: &str| {
        common::run_in(
            h,
            &["tune", "apply", "--iface", name, "--profile", "throughput"],
            std::time::Duration::from_secs(30),
        )
    };
    // No default route yet: the dry run goes through.
    let o = apply("hft-uplink-a");
    assert!(o.status.success(), "{:?}", text(&o));
    let cases = [
        (
            format!("route add default dev {dev} table 100"),
            "IPv4 default route of table 100",
        ),
        (
            format!("-6 route add default dev {dev}"),
            "IPv6 default route of table main",
        ),
    ];
    for (add, needle) in &cases {
        ip(add);
        let o = apply("hft-uplink-a");
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{add}: {out}{err}");
        assert!(
            err.contains(needle) && err.contains(&dev) && err.contains("--i-know"),
            "{add}: {err}"
        );
        ip(&add.replacen(" add ", " del ", 1));
    }
    let o = apply(&dev);
    assert!(o.status.success(), "routes removed again: {:?}", text(&o));
}

/// SIGKILL of `tune apply` (by its PID) wherever it lands — before the
/// snapshot, between changes, after the last — leaves a host that
/// `tune revert` of the snapshot brings back exactly, or, killed before the
/// snapshot exists, a host nothing was changed on. Against the fake tree
/// only: never the real host. Where the kills land depends on timing, so
/// the test kills at many points and counts the landings it saw.
#[test]
fn a_killed_apply_is_undone_by_revert_wherever_it_was_killed() {
    let (mut before_snapshot, mut mid_apply, mut finished) = (0, 0, 0);
    for step in 0..32u64 {
        let t = Tree::new(&format!("kill{step}"));
        let profile = profile_file(&t);
        let snap = t.0.join("snap.json").display().to_string();
        let mut original = t.state();
        original.remove("profile.toml");
        let mut child = Command::new(BIN)
            .args([
                "tune",
                "apply",
                "--root",
                t.root(),
                "--profile",
                &profile,
                "--cpus",
                "2",
                "--yes",
                "--snapshot",
                &snap,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(step * 500));
        let _ = child.kill(); // SIGKILL, by this child's PID
        let st = child.wait().unwrap();
        let state_now = |t: &Tree| {
            let mut s = t.state();
            s.remove("profile.toml");
            s.remove("snap.json");
            // A write to the fake tree is a new file renamed over the old
            // (whole or not made, as a kernel attribute write is); killed
            // between the two it leaves `NAME.PID.new`, a file /proc and
            // /sys never have. The value itself is the old one or the new.
            s.retain(|k, _| {
                k.strip_suffix(".new")
                    .and_then(|k| k.rsplit_once('.'))
                    .is_none_or(|(_, pid)| pid.parse::<u32>().is_err())
            });
            s
        };
        if !Path::new(&snap).exists() {
            before_snapshot += 1;
            assert_eq!(
                state_now(&t),
                original,
                "step {step}: changed without a snapshot"
            );
            continue;
        }
        if st.success() {
            finished += 1;
        } else if state_now(&t) != original {
            mid_apply += 1;
        }
        let o = hftnet(&["tune", "revert", &snap, "--root", t.root()]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "step {step} ({st}): {out}{err}");
        assert_eq!(state_now(&t), original, "step {step} ({st}): {out}");
    }
    eprintln!(
        "killed before the snapshot {before_snapshot}, with changes made {mid_apply}, \
         after the end {finished} times"
    );
}

/// `tune revert` removes the temporary file an apply killed while rewriting
/// the snapshot left beside it (its process gone), and nothing else.
#[test]
fn revert_removes_what_a_killed_snapshot_rewrite_left() {
    let t = Tree::new("tmpleft");
    let profile = profile_file(&t);
    let snap = t.0.join("snap.json").display().to_string();
    let o = hftnet(&[
        "tune",
        "apply",
        "--root",
        t.root(),
        "--profile",
        &profile,
        "--cpus",
        "2",
        "--yes",
        "--snapshot",
        &snap,
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let left = format!("{snap}.{dead}.123456.tmp");
    let alive = format!("{snap}.{}.123456.tmp", std::process::id());
    let other = format!("{snap}.notes");
    for f in [&left, &alive, &other] {
        std::fs::write(f, "{").unwrap();
    }
    let o = hftnet(&["tune", "revert", &snap, "--root", t.root()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(!Path::new(&left).exists(), "{err}");
    assert!(err.contains("left by an apply that was killed"), "{err}");
    assert!(Path::new(&alive).exists(), "a live process's file is kept");
    assert!(Path::new(&other).exists(), "another name is kept");
}
